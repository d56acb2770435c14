//! What the call store's database costs under the bench's load
//! (`reservoice bench --database URL`), to size it (docs/DEPLOY.md).
//!
//! On PostgreSQL: the transactions the database committed or rolled back
//! (`pg_stat_database`), per call, and the CPU time of the backends serving
//! that database (`/proc`: every `postgres` process whose title names it),
//! per call-minute. A transaction is one round trip for a single statement
//! and a few (`BEGIN`, the statements, `COMMIT`) for an explicit one.
//! Background processes (WAL writer, checkpointer) are shared with every other
//! database of the server and are left out.
//!
//! On SQLite the database is a library inside each server: its cost is part
//! of the servers' CPU (`--pid`), and there is nothing else to read.

use std::time::Duration;

use serde::Serialize;

use super::procstat;

/// One reading of the database.
#[derive(Debug, Clone, Copy, Default)]
pub struct DbSample {
    /// Transactions committed + rolled back so far (PostgreSQL).
    pub transactions: Option<u64>,
    /// CPU time of the backends serving the database (PostgreSQL, Linux).
    pub backends_cpu: Option<Duration>,
    /// How many such backends there were.
    pub backends: usize,
}

/// The database's cost over a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DatabaseCost {
    /// `postgres` or `sqlite`.
    pub kind: &'static str,
    /// Transactions over the whole run (ramp, calls, hang-ups) per call.
    pub transactions_per_call: Option<f64>,
    /// CPU milliseconds of its backends per call-minute in steady state.
    pub cpu_ms_per_call_minute: Option<f64>,
    /// Backends serving it in steady state.
    pub backends: usize,
}

/// The database at `url` (`postgres://…` or `sqlite://…`), as the servers use it.
#[derive(Debug, Clone)]
pub struct Database {
    url: String,
    name: Option<String>,
}

impl Database {
    /// The database of `url`; only PostgreSQL is read.
    pub fn new(url: &str) -> Database {
        let name = crate::store::is_postgres(url)
            .then(|| url::Url::parse(url).ok())
            .flatten()
            .map(|u| u.path().trim_start_matches('/').to_string())
            .filter(|n| !n.is_empty());
        Database {
            url: url.to_string(),
            name,
        }
    }

    /// Read it now (never fails: what cannot be read is `None`).
    pub async fn sample(&self) -> DbSample {
        let Some(name) = &self.name else {
            return DbSample::default();
        };
        let (backends_cpu, backends) = match backends_cpu(name) {
            Some((cpu, n)) => (Some(cpu), n),
            None => (None, 0),
        };
        DbSample {
            transactions: transactions(&self.url).await,
            backends_cpu,
            backends,
        }
    }

    /// The cost from four readings: before the first call, all connected,
    /// end of the steady state, after the last call; `calls` calls of which
    /// `bridged` streamed for `steady`.
    pub fn cost(
        &self,
        readings: [DbSample; 4],
        calls: u64,
        bridged: u64,
        steady: Duration,
    ) -> DatabaseCost {
        let [before, connected, steady_end, after] = readings;
        if self.name.is_none() {
            return DatabaseCost {
                kind: "sqlite",
                ..Default::default()
            };
        }
        let round1 = |v: f64| (v * 10.0).round() / 10.0;
        let call_minutes = bridged as f64 * steady.as_secs_f64() / 60.0;
        let transactions = match (before.transactions, after.transactions) {
            (Some(b), Some(a)) if calls > 0 => {
                Some(round1(a.saturating_sub(b) as f64 / calls as f64))
            }
            _ => None,
        };
        let cpu = match (connected.backends_cpu, steady_end.backends_cpu) {
            (Some(c), Some(e)) if call_minutes > 0.0 => Some(round1(
                e.saturating_sub(c).as_secs_f64() * 1000.0 / call_minutes,
            )),
            _ => None,
        };
        DatabaseCost {
            kind: "postgres",
            transactions_per_call: transactions,
            cpu_ms_per_call_minute: cpu,
            backends: steady_end.backends,
        }
    }
}

/// Transactions of the database at `url` so far (this reading's own
/// connection adds one or two).
async fn transactions(url: &str) -> Option<u64> {
    use sqlx::Connection;
    let read = async {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        let n: i64 = sqlx::query_scalar(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(&mut conn)
        .await?;
        let _ = conn.close().await;
        Ok::<_, sqlx::Error>(n.max(0) as u64)
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .ok()?
        .ok()
}

/// CPU time of the PostgreSQL backends serving database `name`, and how
/// many there are: processes whose title is `postgres: USER NAME …`.
fn backends_cpu(name: &str) -> Option<(Duration, usize)> {
    let mut total = Duration::ZERO;
    let mut count = 0;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if !is_backend_of(&String::from_utf8_lossy(&cmdline).replace('\0', " "), name) {
            continue;
        }
        if let Some(cpu) = procstat::cpu_of(pid) {
            total += cpu;
            count += 1;
        }
    }
    Some((total, count))
}

/// Whether a process title (`/proc/PID/cmdline`) is a backend serving
/// database `name`: `postgres: [CLUSTER: ]USER NAME HOST(PORT) STATE` (the
/// cluster's name when `cluster_name` is set, as Debian sets it: `15/main:`).
fn is_backend_of(title: &str, name: &str) -> bool {
    let Some(rest) = title.strip_prefix("postgres: ") else {
        return false;
    };
    let mut words = rest.split_whitespace().peekable();
    if words.peek().is_some_and(|w| w.ends_with(':')) {
        words.next();
    }
    let _user = words.next();
    words.next() == Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_titles_name_their_database() {
        assert!(is_backend_of(
            "postgres: postgres reservoice 127.0.0.1(51234) idle",
            "reservoice"
        ));
        assert!(!is_backend_of(
            "postgres: postgres reservoice_other 127.0.0.1(51234) idle",
            "reservoice"
        ));
        assert!(is_backend_of(
            "postgres: 15/main: postgres reservoice [local] SELECT",
            "reservoice"
        ));
        assert!(!is_backend_of("postgres: checkpointer ", "reservoice"));
        assert!(!is_backend_of(
            "postgres: 15/main: checkpointer ",
            "reservoice"
        ));
        assert!(!is_backend_of(
            "/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql",
            "reservoice"
        ));
    }

    #[test]
    fn sqlite_has_nothing_to_read_and_postgres_divides_by_calls_and_minutes() {
        let sqlite = Database::new("sqlite:///tmp/x.db");
        let c = sqlite.cost([DbSample::default(); 4], 10, 10, Duration::from_secs(60));
        assert_eq!(c.kind, "sqlite");
        assert_eq!(c.transactions_per_call, None);

        let pg = Database::new("postgres://u@127.0.0.1:5432/calls");
        let at = |tx: u64, cpu_ms: u64| DbSample {
            transactions: Some(tx),
            backends_cpu: Some(Duration::from_millis(cpu_ms)),
            backends: 4,
        };
        // 10 calls, 600 transactions; 10 calls × 1 min steady, 1,000 CPU-ms.
        let c = pg.cost(
            [at(100, 0), at(300, 500), at(500, 1500), at(700, 1600)],
            10,
            10,
            Duration::from_secs(60),
        );
        assert_eq!(c.kind, "postgres");
        assert_eq!(c.transactions_per_call, Some(60.0));
        assert_eq!(c.cpu_ms_per_call_minute, Some(100.0));
        assert_eq!(c.backends, 4);
    }
}
