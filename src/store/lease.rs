//! No call left behind: a lease per live call.
//!
//! The instance holding a call's media stream holds its lease ([`LeaseGuard`])
//! and renews it every few seconds, with all its other leases in one
//! statement. If that instance dies (kill -9, a lost
//! machine), the lease expires, and the reaper of a surviving instance
//! ([`CallStore::reap_expired`], run by `server::reaper`) claims it: exactly
//! one claimer wins, because the claim is a conditional delete of the lease
//! row. It then finishes the record in the same transaction, so the call is
//! never half-finished, and a terminal status, so no late Twilio callback can
//! reopen it.
//!
//! Expiry is judged by the database's clock, never an instance's own.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::Utc;
use sqlx::types::Json;
use tokio::sync::{oneshot, watch};
use tracing::{debug, info, warn, Instrument};

use super::db::with_db;
use super::{db, CallStore, News, StoreError, TERMINAL_SQL, UNSETTLED_SQL};
use crate::domain::{CallStatus, Outcome, OutcomeStatus};

/// Why a reaped call failed, as the person reads it.
pub const REAPED_REASON: &str = "the server handling the call stopped";

/// How leases are kept and judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimings {
    /// A lease not renewed for this long is expired.
    pub ttl: Duration,
    /// How often the holder renews it.
    pub renew_every: Duration,
    /// After a failed renewal (the database is away), try again this soon,
    /// so the lease is renewed as soon as the database is back.
    pub retry_every: Duration,
    /// How often each instance looks for expired leases.
    pub reap_every: Duration,
    /// An instance reaps only once its own database connection has worked for
    /// this long: after an outage of the database itself, every holder gets
    /// the time to renew before anyone judges its leases.
    pub reap_grace: Duration,
}

impl LeaseTimings {
    /// Leases lasting `ttl`, everything else in proportion: renewed and
    /// looked for every quarter of it (a live holder misses three renewals
    /// before its lease expires, and a dead instance's calls are found within
    /// `ttl * 5/4` of its last renewal), a reaper waits half of it after a
    /// database outage, and a failed renewal is retried after a tenth of it
    /// (at most a second).
    pub fn lasting(ttl: Duration) -> LeaseTimings {
        LeaseTimings {
            ttl,
            renew_every: ttl / 4,
            retry_every: (ttl / 10).min(Duration::from_secs(1)),
            reap_every: ttl / 4,
            reap_grace: ttl / 2,
        }
    }
}

impl Default for LeaseTimings {
    /// 20 s leases: a dead instance's calls are found within 25 s of its
    /// last renewal (the issue asks for 30 s).
    fn default() -> Self {
        LeaseTimings::lasting(Duration::from_secs(20))
    }
}

/// This instance's name in leases and logs: `host:pid:random` (the random
/// part tells a restarted process from its predecessor).
pub(crate) fn instance_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    format!(
        "{host}:{}:{:06x}",
        std::process::id(),
        rand::random::<u32>() & 0xff_ffff
    )
}

/// Held by a live call for as long as it runs: the lease is taken and renewed
/// in the background (the call never waits on the database), and released
/// when the guard is dropped.
#[derive(Debug)]
pub struct LeaseGuard {
    release: Option<oneshot::Sender<()>>,
    lost: watch::Receiver<bool>,
}

impl LeaseGuard {
    /// Resolves if another instance took the call over (it judged this
    /// instance dead); the call should then end. Never resolves otherwise,
    /// even once the keeper has stopped (the store closed).
    pub async fn lost(&mut self) {
        self.when_lost().await;
    }

    /// [`LeaseGuard::lost`] as a future that owns what it watches, so a
    /// driver can keep one alive across all the turns of its loop instead of
    /// registering a new waiter on every wake-up.
    pub fn when_lost(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut lost = self.lost.clone();
        async move {
            if lost.wait_for(|lost| *lost).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.send(());
        }
    }
}

/// A call a reaper finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReapedCall {
    /// The CallSid.
    pub id: String,
    /// The instance that held it and stopped renewing.
    pub holder: String,
    /// Whether the call was still going on (so the phone line may still be
    /// open and should be hung up); `false` when Twilio had already ended it.
    pub was_live: bool,
}

/// The leases this instance holds, renewed together: one statement per
/// renewal period for all of them (it was one per call: 100 transactions a
/// second at 500 calls), by one renewer task that runs while any is held.
#[derive(Debug, Default)]
pub(crate) struct Held {
    /// Each held call's "lost" signal.
    pub(crate) calls: HashMap<String, watch::Sender<bool>>,
    /// Whether the renewer task is running.
    pub(crate) renewing: bool,
}

impl CallStore {
    /// Hold the lease of live call `id` until the guard is dropped. Returns
    /// at once; the lease is taken in the background, retried while the
    /// database is away, then renewed with the instance's other leases.
    pub fn hold_lease(&self, id: &str) -> LeaseGuard {
        let (release_tx, release_rx) = oneshot::channel();
        let (lost_tx, lost_rx) = watch::channel(false);
        let store = self.clone();
        let id = id.to_string();
        self.shared.tasks.spawn(
            async move { store.keep_lease(&id, release_rx, lost_tx).await }.in_current_span(),
        );
        LeaseGuard {
            release: Some(release_tx),
            lost: lost_rx,
        }
    }

    pub(crate) fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        super::lock(&self.shared.leases)
    }

    async fn keep_lease(
        &self,
        id: &str,
        mut release: oneshot::Receiver<()>,
        lost: watch::Sender<bool>,
    ) {
        let timings = self.shared.options.lease;
        let mut wait = Duration::ZERO;
        let taken = loop {
            tokio::select! {
                _ = &mut release => break false,
                _ = tokio::time::sleep(wait) => {}
            }
            match self.lease_statement(id, |d| d.lease_acquire).await {
                Ok(_) => break true,
                Err(e) => {
                    debug!(call_sid = id, error = %e, "cannot take the call's lease yet");
                    wait = timings.retry_every;
                }
            }
        };
        if taken {
            // From here the instance's renewer keeps it, until released.
            let start = {
                let mut held = self.held();
                held.calls.insert(id.to_string(), lost);
                !std::mem::replace(&mut held.renewing, true)
            };
            if start {
                let store = self.clone();
                self.shared
                    .tasks
                    .spawn(async move { store.renew_leases().await }.in_current_span());
            }
            let _ = release.await;
            self.held().calls.remove(id);
        }
        // Released: keep trying for a while (a lease left behind expires,
        // and a reaper clears it without touching the finished call).
        let until = tokio::time::Instant::now() + timings.ttl;
        while let Err(e) = self.release_lease(id).await {
            if tokio::time::Instant::now() >= until {
                warn!(call_sid = id, error = %e, "cannot release the call's lease; it will expire");
                return;
            }
            tokio::time::sleep(timings.retry_every).await;
        }
    }

    /// Renew every lease this instance holds, each renewal period, until it
    /// holds none. A held call whose lease the renewal did not extend was
    /// taken over (another instance judged this one dead): it is told.
    async fn renew_leases(&self) {
        let timings = self.shared.options.lease;
        let mut wait = timings.renew_every;
        loop {
            tokio::time::sleep(wait).await;
            // Judged: the calls held before the renewal began (a call taken
            // meanwhile may not be in its answer).
            let judged: Vec<String> = {
                let mut held = self.held();
                if held.calls.is_empty() {
                    held.renewing = false;
                    return;
                }
                held.calls.keys().cloned().collect()
            };
            wait = match self.renew_all().await {
                Ok(renewed) => {
                    let mut held = self.held();
                    for id in judged.iter().filter(|id| !renewed.contains(*id)) {
                        if let Some(lost) = held.calls.remove(id) {
                            warn!(
                                call_sid = %id,
                                "another instance took this call over: its lease expired"
                            );
                            let _ = lost.send(true);
                        }
                    }
                    timings.renew_every
                }
                Err(e) => {
                    debug!(error = %e, "cannot renew this instance's leases yet");
                    timings.retry_every
                }
            };
        }
    }

    /// Extend every lease this instance holds; the calls whose lease it
    /// extended.
    async fn renew_all(&self) -> Result<HashSet<String>, StoreError> {
        let sql = self.db.dialect().lease_renew_all;
        let ttl_ms = self.shared.options.lease.ttl.as_millis() as i64;
        let renewed: Vec<String> = with_db!(&self.db, pool => {
            sqlx::query_scalar(sql)
                .bind(&self.shared.instance)
                .bind(ttl_ms)
                .fetch_all(pool)
                .await
        })
        .map_err(db("renewing this instance's leases"))?;
        Ok(renewed.into_iter().collect())
    }

    /// Run a lease statement taking (call id, holder, ttl ms); whether it
    /// touched the lease.
    async fn lease_statement(
        &self,
        id: &str,
        sql: impl Fn(&super::db::Dialect) -> &'static str,
    ) -> Result<bool, StoreError> {
        let sql = sql(self.db.dialect());
        let ttl_ms = self.shared.options.lease.ttl.as_millis() as i64;
        with_db!(&self.db, pool => {
            sqlx::query(sql)
                .bind(id)
                .bind(&self.shared.instance)
                .bind(ttl_ms)
                .execute(pool)
                .await
                .map(|r| r.rows_affected() > 0)
        })
        .map_err(db("keeping a call's lease"))
    }

    async fn release_lease(&self, id: &str) -> Result<(), StoreError> {
        with_db!(&self.db, pool => {
            sqlx::query("DELETE FROM call_leases WHERE call_id = $1 AND holder = $2")
                .bind(id)
                .bind(&self.shared.instance)
                .execute(pool)
                .await
                .map(|_| ())
        })
        .map_err(db("releasing a call's lease"))
    }

    /// Find the calls whose lease expired (held by other instances), claim
    /// each (exactly one reaper wins a given call) and finish its record:
    /// status `failed` and a `failed` outcome ("the server handling the call
    /// stopped") unless the agent had already reported one, which is kept
    /// (status `completed`). Transcript lines are kept. Returns what this
    /// instance claimed; the caller hangs up those still live.
    pub async fn reap_expired(&self) -> Result<Vec<ReapedCall>, StoreError> {
        let dialect = self.db.dialect();
        let expired: Vec<(String, String)> = with_db!(&self.db, pool => {
            sqlx::query_as(dialect.lease_expired)
                .bind(&self.shared.instance)
                .fetch_all(pool)
                .await
        })
        .map_err(db("looking for expired leases"))?;
        let mut reaped = Vec::new();
        for (id, holder) in expired {
            if let Some(call) = self.reap(&id, &holder).await? {
                info!(
                    call_sid = %call.id,
                    holder = %call.holder,
                    was_live = call.was_live,
                    "finished a call whose server stopped"
                );
                reaped.push(call);
            }
        }
        Ok(reaped)
    }

    async fn reap(&self, id: &str, holder: &str) -> Result<Option<ReapedCall>, StoreError> {
        let dialect = self.db.dialect();
        let t = Utc::now();
        let failed = Json(Outcome::bare(
            OutcomeStatus::Failed,
            Some(REAPED_REASON.to_string()),
        ));
        let settle = format!(
            "UPDATE calls SET outcome = $1, error = COALESCE(error, $2), updated_at = $3 WHERE id = $4 AND {UNSETTLED_SQL}"
        );
        let end = format!(
            "UPDATE calls SET status = $1, ended_at = COALESCE(ended_at, $2), updated_at = $2 WHERE id = $3 AND status NOT IN {TERMINAL_SQL}"
        );
        let outcome = with_db!(&self.db, pool => {
            let mut tx = pool.begin().await.map_err(db("starting a transaction"))?;
            let claimed: Option<String> = sqlx::query_scalar(dialect.lease_claim)
                .bind(id)
                .bind(holder)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db("claiming an expired lease"))?;
            if claimed.is_none() {
                None // another reaper won, or the holder renewed after all
            } else {
                let settled = sqlx::query(&settle)
                    .bind(&failed)
                    .bind(REAPED_REASON)
                    .bind(t)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db("finishing a call"))?
                    .rows_affected()
                    > 0;
                let status = if settled {
                    CallStatus::Failed
                } else {
                    CallStatus::Completed
                };
                let was_live = sqlx::query(&end)
                    .bind(status.as_str())
                    .bind(t)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db("finishing a call"))?
                    .rows_affected()
                    > 0;
                tx.commit().await.map_err(db("finishing a call"))?;
                Some((settled, was_live))
            }
        });
        let Some((settled, was_live)) = outcome else {
            return Ok(None);
        };
        if was_live {
            self.announce(id, News::Status);
        }
        if settled {
            self.announce(id, News::Outcome);
        }
        Ok(Some(ReapedCall {
            id: id.to_string(),
            holder: holder.to_string(),
            was_live,
        }))
    }
}
