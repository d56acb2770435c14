//! The two databases under the call store, and the little that differs
//! between them.
//!
//! Every statement the store shares is written once, with `$1`-style
//! placeholders (SQLite accepts them too), binding and decoding the same Rust
//! types on both (timestamps are `timestamptz` on PostgreSQL and RFC 3339 text
//! on SQLite, JSON is `jsonb` or text), and runs on either pool through
//! [`with_db!`]. What cannot be shared is here: opening each database, the
//! database clock in lease statements, and the per-call lock PostgreSQL needs
//! where SQLite's single writer already serialises.

use std::future::Future;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqliteSynchronous,
};
use sqlx::Connection;

use super::{StoreError, StoreOptions};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
pub(crate) static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long start-up keeps trying a PostgreSQL server that refuses
/// connections (it may be starting too) before giving up.
const STARTUP_WAIT: Duration = Duration::from_secs(3);

/// How the store's connections appear in `pg_stat_activity`.
pub(crate) const APPLICATION_NAME: &str = "reservoice";

/// A pool on one of the two databases (cheap to clone).
#[derive(Clone, Debug)]
pub(crate) enum Db {
    /// The embedded default: a file, one process or several on one machine.
    Sqlite(SqlitePool),
    /// Shared by several instances.
    Postgres(PgPool),
}

/// Run `$body` with `$pool` bound to whichever pool `$db` holds. The body is
/// compiled once per database, so the same statement text and the same
/// binds serve both.
macro_rules! with_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::db::Db::Sqlite($pool) => $body,
            $crate::store::db::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_db;

/// Whether `url` names a PostgreSQL database.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl Db {
    /// Open the database `url` names and bring its schema up to date.
    pub(crate) async fn open(url: &str, options: &StoreOptions) -> Result<Db, StoreError> {
        if is_postgres(url) {
            open_postgres(url, options).await.map(Db::Postgres)
        } else {
            open_sqlite(url).await.map(Db::Sqlite)
        }
    }

    /// The statements whose text differs between the databases.
    pub(crate) fn dialect(&self) -> &'static Dialect {
        match self {
            Db::Sqlite(_) => &SQLITE,
            Db::Postgres(_) => &POSTGRES,
        }
    }

    pub(crate) async fn close(&self) {
        with_db!(self, pool => pool.close().await)
    }
}

/// Why a connection failed, without sqlx's wrapping.
fn problem(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Database(db) => db.message().to_string(),
        other => other.to_string(),
    }
}

async fn open_sqlite(url: &str) -> Result<SqlitePool, StoreError> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
            path: parent.display().to_string(),
            source,
        })?;
    }
    let options = SqliteConnectOptions::from_str(url)
        .map_err(super::db("reading DATABASE_URL"))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // With WAL, NORMAL syncs at checkpoints instead of at every commit:
        // the file stays consistent, and a power cut (not a crash of the
        // server) may lose the last commits. Every transcript line and lease
        // renewal is a commit; an fsync each cost about 2 % of the server's
        // CPU at 500 calls (docs/PERFORMANCE.md).
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .map_err(super::db("opening the database"))?;
    SQLITE_MIGRATIONS.run(&pool).await?;
    Ok(pool)
}

/// Where a PostgreSQL URL points, for messages: never the password.
pub(crate) fn describe(options: &PgConnectOptions) -> String {
    format!(
        "{}:{} (database \"{}\", user \"{}\")",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or(options.get_username()),
        options.get_username(),
    )
}

async fn open_postgres(url: &str, store: &StoreOptions) -> Result<PgPool, StoreError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::BadUrl {
            problem: e.to_string(),
        })?
        .application_name(APPLICATION_NAME);
    let target = describe(&options);
    // One connection first, to report why the server cannot be used (the
    // pool would only say that it timed out).
    let deadline = tokio::time::Instant::now() + STARTUP_WAIT;
    loop {
        match PgConnection::connect_with(&options).await {
            Ok(conn) => {
                let _ = conn.close().await;
                break;
            }
            Err(sqlx::Error::Io(e))
                if e.kind() == std::io::ErrorKind::ConnectionRefused
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => {
                return Err(StoreError::Unreachable {
                    target,
                    problem: problem(&e),
                })
            }
        }
    }
    let pool = PgPoolOptions::new()
        .max_connections(store.max_connections)
        .acquire_timeout(store.acquire_timeout)
        .connect_with(options)
        .await
        .map_err(|e| StoreError::Unreachable {
            target: target.clone(),
            problem: problem(&e),
        })?;
    // sqlx holds a PostgreSQL advisory lock (per database) while it migrates,
    // so instances starting together apply each migration once, in turn.
    POSTGRES_MIGRATIONS.run(&pool).await?;
    Ok(pool)
}

/// The statements whose text differs: leases compare against the
/// database's own clock, so instances on machines whose clocks disagree still
/// agree on when a lease expired.
#[derive(Debug)]
pub(crate) struct Dialect {
    /// Take (or take over) the lease of call `$1` for holder `$2` for `$3` ms.
    pub lease_acquire: &'static str,
    /// Extend every lease held by `$1` by `$2` ms; the calls whose lease
    /// it extended (one held here but missing: lost).
    pub lease_renew_all: &'static str,
    /// Leases that expired, not held by `$1`.
    pub lease_expired: &'static str,
    /// Claim the expired lease of call `$1` last held by `$2` (one claimer wins).
    pub lease_claim: &'static str,
}

macro_rules! dialect {
    ($now_ms:literal) => {
        Dialect {
            lease_acquire: concat!(
                "INSERT INTO call_leases (call_id, holder, expires_ms) VALUES ($1, $2, ",
                $now_ms,
                " + $3) ON CONFLICT (call_id) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms"
            ),
            lease_renew_all: concat!(
                "UPDATE call_leases SET expires_ms = ",
                $now_ms,
                " + $2 WHERE holder = $1 RETURNING call_id"
            ),
            lease_expired: concat!(
                "SELECT call_id, holder FROM call_leases WHERE expires_ms < ",
                $now_ms,
                " AND holder <> $1 ORDER BY expires_ms LIMIT 100"
            ),
            lease_claim: concat!(
                "DELETE FROM call_leases WHERE call_id = $1 AND holder = $2 AND expires_ms < ",
                $now_ms,
                " RETURNING call_id"
            ),
        }
    };
}

static SQLITE: Dialect = dialect!("CAST(unixepoch('subsec') * 1000 AS INTEGER)");
static POSTGRES: Dialect = dialect!("CAST(extract(epoch FROM clock_timestamp()) * 1000 AS BIGINT)");

/// Serialise the writers of one call inside a transaction. SQLite has one
/// writer at a time anyway; PostgreSQL takes a transaction-scoped advisory
/// lock on the call id, so that storing a call and a status callback racing
/// it (Twilio can call back before its REST answer reaches us) see each other.
pub(crate) trait LockCall {
    /// Hold the call's lock until the transaction ends.
    fn lock_call<'a>(
        &'a mut self,
        id: &'a str,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send + 'a;
}

impl LockCall for SqliteConnection {
    fn lock_call<'a>(
        &'a mut self,
        _id: &'a str,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send + 'a {
        std::future::ready(Ok(()))
    }
}

impl LockCall for PgConnection {
    async fn lock_call(&mut self, id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7193))")
            .bind(id)
            .execute(self)
            .await
            .map(|_| ())
    }
}
