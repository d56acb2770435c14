//! Throwaway PostgreSQL databases, for the tests and the bench: each one is
//! created empty on a server the developer or CI provides, and dropped
//! afterwards.
//!
//! The server is `RESERVOICE_TEST_POSTGRES` (an administrative URL whose user
//! may create databases), by default `postgres://postgres@127.0.0.1:5432/postgres`.
//! Without a server, PostgreSQL tests are skipped with a note, except under
//! `CI=true`, where they fail: CI must prove both databases.

use std::str::FromStr;

use rand::Rng;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor};

/// The variable naming the server for throwaway databases.
pub const SERVER_VAR: &str = "RESERVOICE_TEST_POSTGRES";
/// The server used when [`SERVER_VAR`] is not set.
pub const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database that exists until this is dropped.
#[derive(Debug)]
pub struct ScratchDatabase {
    admin: PgConnectOptions,
    name: String,
    url: String,
    dropped: bool,
}

impl ScratchDatabase {
    /// Create an empty database on the server [`SERVER_VAR`] names.
    pub async fn create() -> anyhow::Result<ScratchDatabase> {
        let server = std::env::var(SERVER_VAR).unwrap_or_else(|_| DEFAULT_SERVER.to_string());
        ScratchDatabase::create_on(&server).await
    }

    /// Create an empty database on `server` (an administrative URL).
    pub async fn create_on(server: &str) -> anyhow::Result<ScratchDatabase> {
        use anyhow::Context;
        let admin = PgConnectOptions::from_str(server)
            .with_context(|| format!("{SERVER_VAR} is not a PostgreSQL URL"))?;
        let mut url = url::Url::parse(server)
            .with_context(|| format!("{SERVER_VAR} is not a PostgreSQL URL"))?;
        let name = format!(
            "reservoice_scratch_{}_{:08x}",
            std::process::id(),
            rand::thread_rng().gen::<u32>()
        );
        let mut conn = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            sqlx::PgConnection::connect_with(&admin),
        )
        .await
        .map_err(|_| anyhow::anyhow!("timed out"))
        .and_then(|r| r.map_err(anyhow::Error::from))
        .with_context(|| format!("cannot reach PostgreSQL at {}", super::db::describe(&admin)))?;
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .with_context(|| format!("cannot create database {name}"))?;
        let _ = conn.close().await;
        url.set_path(&format!("/{name}"));
        let url = url.to_string();
        Ok(ScratchDatabase {
            admin,
            name,
            url,
            dropped: false,
        })
    }

    /// A database for one test; `None` (with a note on stderr saying how to
    /// run it) when no PostgreSQL server answers, unless `CI=true`, where
    /// that is a failure.
    pub async fn for_test() -> Option<ScratchDatabase> {
        match ScratchDatabase::create().await {
            Ok(db) => Some(db),
            Err(e) => skip_or_fail(&e, must_run()),
        }
    }

    /// The `postgres://` URL of this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drop the database now (also done on drop, less politely).
    pub async fn drop_now(mut self) -> anyhow::Result<()> {
        self.dropped = true;
        drop_database(&self.admin, &self.name).await
    }
}

/// Without a server: a note and a skip, or (`must_run`) a failure.
fn skip_or_fail(e: &anyhow::Error, must_run: bool) -> Option<ScratchDatabase> {
    if must_run {
        panic!("PostgreSQL tests must run under CI=true, but: {e:#}");
    }
    eprintln!(
        "note: skipping a PostgreSQL test ({e:#}). To run it, start PostgreSQL on 127.0.0.1:5432 \
         with trust authentication (or set {SERVER_VAR}=postgres://USER@HOST:PORT/postgres, a user \
         who may create databases) and run cargo test again; .ci/run does this for you."
    );
    None
}

fn must_run() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

async fn drop_database(admin: &PgConnectOptions, name: &str) -> anyhow::Result<()> {
    let mut conn = sqlx::PgConnection::connect_with(admin).await?;
    conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await?;
    let _ = conn.close().await;
    Ok(())
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Drop may run inside a runtime that cannot block: use a thread of
        // its own with a runtime of its own.
        let admin = self.admin.clone();
        let name = self.name.clone();
        let worker = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                if let Err(e) = rt.block_on(drop_database(&admin, &name)) {
                    eprintln!("note: could not drop scratch database {name}: {e:#}");
                }
            }
        });
        let _ = worker.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_a_server_tests_skip_but_ci_fails() {
        let e = ScratchDatabase::create_on("postgres://postgres@127.0.0.1:1/postgres")
            .await
            .expect_err("nothing listens on port 1");
        assert!(format!("{e:#}").contains("127.0.0.1:1"), "{e:#}");
        assert!(skip_or_fail(&e, false).is_none());
        let failed = std::panic::catch_unwind(|| skip_or_fail(&e, true));
        assert!(
            failed.is_err(),
            "under CI=true a missing server fails the test"
        );
    }
}
