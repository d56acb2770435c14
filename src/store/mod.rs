//! The call store: call records and transcripts, in SQLite (the embedded
//! default) or PostgreSQL (several instances sharing the work), with the same
//! API and behaviour on both; plus everything around it that lets any
//! instance follow and finish any call.
//!
//! - `db.rs`: the two databases, opening them, migrations, what differs.
//! - `events.rs`: call events for followers, and the news that wakes them.
//! - `news.rs`: PostgreSQL `LISTEN/NOTIFY` turned into news.
//! - `follow.rs`: [`CallStore::follow`], the live view of one call.
//! - `writer.rs`: the ordered, retrying writer a live call writes through.
//! - `lease.rs`: a lease per live call, and finding calls whose instance died.
//! - `page.rs`: calls a page at a time, newest first, for the web page.
//! - `scratch.rs`: throwaway PostgreSQL databases for tests and the bench.
//!
//! Every change goes through here. The database is the source of truth:
//! followers read it when they hear news, never take data from memory.

mod db;
mod events;
mod follow;
mod lease;
mod lines;
mod news;
mod page;
pub mod scratch;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use tokio_util::sync::CancellationToken;

pub use db::is_postgres;
use db::{with_db, Db, LockCall};
pub use events::{CallEvent, EventHub, News, Subscription};
pub use follow::{Followed, SQLITE_POLL};
pub use lease::{LeaseGuard, LeaseTimings, ReapedCall};
pub use lines::LINE_BATCH_WINDOW;
pub use page::{CallPage, ListedCall, PageCursor};
pub use writer::{spawn_writer, CallWrite, RETRY_WRITES_FOR};

use crate::domain::{
    AnsweredBy, CallRecord, CallStatus, CallSummary, Outcome, OutcomeStatus, OutcomeWrite,
    Reservation, Speaker, TranscriptLine,
};

/// The store failed; the message says what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Database trouble.
    #[error("call store: {context}: {source}")]
    Database {
        /// What we were doing.
        context: &'static str,
        /// The database error.
        #[source]
        source: sqlx::Error,
    },
    /// The database server could not be used at start-up.
    #[error("call store: cannot use PostgreSQL at {target}: {problem} (is it running, and is DATABASE_URL right?)")]
    Unreachable {
        /// Host, port, database and user (never the password).
        target: String,
        /// Why, in the server's or the network's words.
        problem: String,
    },
    /// `DATABASE_URL` could not be read.
    #[error("call store: DATABASE_URL is not a usable PostgreSQL URL: {problem}")]
    BadUrl {
        /// Why.
        problem: String,
    },
    /// Schema migration failed.
    #[error("call store: migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be read back.
    #[error("call store: corrupt {what} for call {id}: {problem}")]
    Corrupt {
        /// Which column.
        what: &'static str,
        /// Which call.
        id: String,
        /// Why.
        problem: String,
    },
    /// The data directory could not be created.
    #[error("call store: cannot create {path}: {source}")]
    Io {
        /// The directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether trying again later may succeed: the database could not be
    /// reached or was busy, as opposed to a write it refuses.
    pub fn is_transient(&self) -> bool {
        let StoreError::Database { source, .. } = self else {
            return false;
        };
        match source {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(e) => {
                let code = e.code().unwrap_or_default();
                // PostgreSQL: connection exceptions (08…), shutting down or
                // starting (57P01-03), too many connections (53300),
                // serialisation failures and deadlocks (40…). SQLite: busy (5)
                // and locked (6).
                code.starts_with("08")
                    || code.starts_with("57P")
                    || code.starts_with("40")
                    || code == "53300"
                    || code == "5"
                    || code == "6"
            }
            _ => false,
        }
    }
}

/// Lock one of the store's in-memory queues (leases held, verdicts
/// awaited, lines to write). A panic while holding one leaves nothing
/// half-done, so a poisoned lock is used as it is.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Append `$first, $first+1, …` (`count` numbered placeholders) to `sql`:
/// statements whose number of values is known only when they run.
fn push_placeholders(sql: &mut String, first: usize, count: usize) {
    use std::fmt::Write;
    for n in first..first + count {
        if n > first {
            sql.push_str(", ");
        }
        let _ = write!(sql, "${n}");
    }
}

fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Database { context, source }
}

/// How the store uses its database (the defaults suit production).
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// PostgreSQL: connections in this instance's pool (plus one that
    /// listens for news). SQLite uses a fixed small pool.
    pub max_connections: u32,
    /// PostgreSQL: how long a query waits for a connection before it fails
    /// (and a live call's writer retries it).
    pub acquire_timeout: Duration,
    /// Leases of live calls.
    pub lease: LeaseTimings,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            lease: LeaseTimings::default(),
        }
    }
}

/// The call store (cheap to clone).
#[derive(Clone)]
pub struct CallStore {
    db: Db,
    hub: EventHub,
    shared: Arc<Shared>,
}

/// What every clone shares.
struct Shared {
    options: StoreOptions,
    /// This instance's name in leases (`host:pid:random`).
    instance: String,
    /// Stops the news listener.
    stop: CancellationToken,
    /// Background writes (lease releases) that `close` waits for.
    tasks: tokio_util::task::TaskTracker,
    /// The leases this instance holds, renewed together (`lease.rs`).
    leases: std::sync::Mutex<lease::Held>,
    /// The calls waiting for their answering-machine verdict (`follow.rs`).
    verdicts: std::sync::Mutex<follow::AwaitedVerdicts>,
    /// Transcript lines waiting to be written together (`lines.rs`).
    lines: std::sync::Mutex<lines::LineQueue>,
}

impl std::fmt::Debug for CallStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallStore")
    }
}

/// The columns a [`CallRecord`] is made from (decoded the same way on both
/// databases).
const CALL_COLUMNS: &str = "id, status, reservation, outcome, answered_by, error, created_at, updated_at, started_at, ended_at";

#[derive(sqlx::FromRow)]
struct CallRow {
    id: String,
    status: String,
    reservation: Json<Value>,
    outcome: Option<Json<Value>>,
    answered_by: Option<String>,
    error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
}

impl CallRow {
    fn into_record(self) -> Result<CallRecord, StoreError> {
        let id = self.id;
        let corrupt = |what: &'static str, problem: String| StoreError::Corrupt {
            what,
            id: id.clone(),
            problem,
        };
        let reservation: Reservation = serde_json::from_value(self.reservation.0)
            .map_err(|e| corrupt("reservation", e.to_string()))?;
        let outcome = self
            .outcome
            .map(|o| serde_json::from_value::<Outcome>(o.0))
            .transpose()
            .map_err(|e| corrupt("outcome", e.to_string()))?;
        let status = CallStatus::parse(&self.status)
            .ok_or_else(|| corrupt("status", self.status.clone()))?;
        Ok(CallRecord {
            status,
            reservation,
            outcome,
            transcript: Vec::new(),
            answered_by: self.answered_by,
            recording: None,
            error: self.error,
            created_at: self.created_at,
            updated_at: self.updated_at,
            started_at: self.started_at,
            ended_at: self.ended_at,
            id,
        })
    }
}

#[derive(sqlx::FromRow)]
struct LineRow {
    seq: i64,
    speaker: String,
    text: String,
    at_ms: i64,
}

impl LineRow {
    fn into_line(self) -> (u64, TranscriptLine) {
        let speaker = if self.speaker == "agent" {
            Speaker::Agent
        } else {
            Speaker::Callee
        };
        (
            self.seq.max(0) as u64,
            TranscriptLine {
                speaker,
                text: self.text,
                at_ms: self.at_ms.max(0) as u64,
            },
        )
    }
}

fn speaker_name(speaker: Speaker) -> &'static str {
    match speaker {
        Speaker::Agent => "agent",
        Speaker::Callee => "callee",
    }
}

/// Twilio's terminal statuses, for SQL (`status NOT IN …`).
const TERMINAL_SQL: &str = "('completed', 'busy', 'no-answer', 'failed', 'canceled')";

/// An outcome nobody reported yet (SQL, both databases).
const UNSETTLED_SQL: &str = "(outcome IS NULL OR (outcome ->> 'status') = 'in_progress')";

impl CallStore {
    /// Open the store at `database_url` (`sqlite://path` or
    /// `postgres://…`), creating and migrating what is needed, with the
    /// default options.
    pub async fn open(database_url: &str) -> Result<CallStore, StoreError> {
        CallStore::open_with(database_url, StoreOptions::default()).await
    }

    /// [`CallStore::open`] with `options`. On PostgreSQL this also starts
    /// listening for the news of every instance.
    pub async fn open_with(
        database_url: &str,
        options: StoreOptions,
    ) -> Result<CallStore, StoreError> {
        let db = Db::open(database_url, &options).await?;
        let hub = EventHub::default();
        let stop = CancellationToken::new();
        if let Db::Postgres(pool) = &db {
            news::spawn_listener(pool, hub.clone(), stop.clone());
        }
        Ok(CallStore {
            db,
            hub,
            shared: Arc::new(Shared {
                options,
                instance: lease::instance_name(),
                stop,
                tasks: tokio_util::task::TaskTracker::new(),
                leases: std::sync::Mutex::new(lease::Held::default()),
                verdicts: std::sync::Mutex::new(follow::AwaitedVerdicts::default()),
                lines: std::sync::Mutex::new(lines::LineQueue::default()),
            }),
        })
    }

    /// Whether this store runs on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self.db, Db::Postgres(_))
    }

    /// This instance's name, as it appears in leases and logs.
    pub fn instance(&self) -> &str {
        &self.shared.instance
    }

    /// The news of call `id` (see [`News`]): what a live session waits on.
    pub fn subscribe(&self, id: &str) -> Subscription {
        self.hub.subscribe(id)
    }

    /// Whether news only covers this process (SQLite), so that followers
    /// must also read the store now and then for other processes' changes.
    fn polls_for_news(&self) -> bool {
        !self.is_postgres()
    }

    /// Tell this process's followers. On PostgreSQL the database announces
    /// every commit to every instance, this one included.
    fn announce(&self, id: &str, news: News) {
        if !self.is_postgres() {
            self.hub.publish(id, news);
        }
    }

    /// Record a call Twilio accepted.
    pub async fn insert(
        &self,
        id: &str,
        reservation: &Reservation,
        call_token: &str,
        status: CallStatus,
    ) -> Result<(), StoreError> {
        let t = Utc::now();
        // One transaction with `apply_status`'s, so an early callback is
        // either kept for us here or finds the row: never lost in between.
        let early: Vec<(String, Option<i64>, Option<String>)> = with_db!(&self.db, pool => {
            let mut tx = pool.begin().await.map_err(db("starting a transaction"))?;
            tx.lock_call(id).await.map_err(db("locking a call"))?;
            sqlx::query("INSERT INTO calls (id, created_at, updated_at, status, to_number, restaurant, reservation, call_token) VALUES ($1, $2, $2, $3, $4, $5, $6, $7)")
                .bind(id)
                .bind(t)
                .bind(status.as_str())
                .bind(reservation.restaurant_phone.as_str())
                .bind(reservation.restaurant_name.as_str())
                .bind(Json(reservation))
                .bind(call_token)
                .execute(&mut *tx)
                .await
                .map_err(db("inserting a call"))?;
            let early = sqlx::query_as(
                "SELECT status, status_seq, reason FROM early_statuses WHERE call_id = $1 ORDER BY status_seq NULLS FIRST",
            )
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .map_err(db("reading early statuses"))?;
            sqlx::query("DELETE FROM early_statuses WHERE call_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db("clearing early statuses"))?;
            tx.commit().await.map_err(db("storing a call"))?;
            early
        });
        self.announce(id, News::Status);
        for (status, seq, reason) in early {
            if let Some(status) = CallStatus::parse(&status) {
                Box::pin(self.apply_status_with_reason(id, status, seq, reason.as_deref())).await?;
            }
        }
        Ok(())
    }

    /// The per-call token carried in the stream parameters (defence in depth).
    pub async fn call_token(&self, id: &str) -> Result<Option<String>, StoreError> {
        with_db!(&self.db, pool => {
            sqlx::query_scalar("SELECT call_token FROM calls WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })
        .map_err(db("reading a call token"))
    }

    /// Claim stream number `stream_number` of call `id` as its newest (a
    /// stream after a key press through Twilio). `false` when the call is
    /// unknown or a stream that new, or newer, was claimed already: the
    /// stream is stale or repeated, and the call is not this stream's.
    pub async fn claim_stream(&self, id: &str, stream_number: u32) -> Result<bool, StoreError> {
        let t = Utc::now();
        let claimed = with_db!(&self.db, pool => {
            sqlx::query("UPDATE calls SET stream_number = $1, updated_at = $2 WHERE id = $3 AND stream_number < $1")
                .bind(i64::from(stream_number))
                .bind(t)
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db("claiming a call's new stream"))?;
        Ok(claimed > 0)
    }

    /// The newest stream number claimed for call `id` (1 until a key press
    /// through Twilio opened another), `None` for an unknown call.
    pub async fn newest_stream(&self, id: &str) -> Result<Option<u32>, StoreError> {
        let n: Option<i64> = with_db!(&self.db, pool => {
            sqlx::query_scalar("SELECT CAST(stream_number AS BIGINT) FROM calls WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })
        .map_err(db("reading a call's newest stream"))?;
        Ok(n.map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    /// One call with its transcript.
    pub async fn get(&self, id: &str) -> Result<Option<CallRecord>, StoreError> {
        let Some(mut record) = self.record_without_transcript(id).await? else {
            return Ok(None);
        };
        record.transcript = self
            .lines_after(id, 0)
            .await?
            .into_iter()
            .map(|(_, line)| line)
            .collect();
        Ok(Some(record))
    }

    /// One call's row: everything but the transcript.
    pub(crate) async fn record_without_transcript(
        &self,
        id: &str,
    ) -> Result<Option<CallRecord>, StoreError> {
        let sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = $1");
        let row: Option<CallRow> = with_db!(&self.db, pool => {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await
        })
        .map_err(db("reading a call"))?;
        row.map(CallRow::into_record).transpose()
    }

    /// Transcript lines after position `seq` (0: all), in order, with their positions.
    pub async fn lines_after(
        &self,
        id: &str,
        seq: u64,
    ) -> Result<Vec<(u64, TranscriptLine)>, StoreError> {
        let rows: Vec<LineRow> = with_db!(&self.db, pool => {
            sqlx::query_as(
                "SELECT seq, speaker, text, at_ms FROM transcript_lines WHERE call_id = $1 AND seq > $2 ORDER BY seq",
            )
            .bind(id)
            .bind(seq as i64)
            .fetch_all(pool)
            .await
        })
        .map_err(db("reading a transcript"))?;
        Ok(rows.into_iter().map(LineRow::into_line).collect())
    }

    /// The most recent calls, newest first.
    pub async fn list(&self, limit: u32) -> Result<Vec<CallSummary>, StoreError> {
        let rows: Vec<page::SummaryRow> = with_db!(&self.db, pool => {
            sqlx::query_as("SELECT id, created_at, restaurant, to_number, status, outcome FROM calls ORDER BY created_at DESC LIMIT $1")
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
        })
        .map_err(db("listing calls"))?;
        Ok(rows
            .into_iter()
            .map(page::SummaryRow::into_summary)
            .collect())
    }

    /// Apply a Twilio status. Callbacks can arrive out of order or twice: a
    /// status with a `SequenceNumber` not above the stored one is ignored, and
    /// a terminal status is never overwritten. Returns whether it changed.
    pub async fn apply_status(
        &self,
        id: &str,
        status: CallStatus,
        sequence: Option<i64>,
    ) -> Result<bool, StoreError> {
        self.apply_status_with_reason(id, status, sequence, None)
            .await
    }

    /// [`CallStore::apply_status`] with Twilio's reason for a call that was
    /// never answered (from `SipResponseCode`), kept in the outcome's notes so
    /// the person learns why.
    pub async fn apply_status_with_reason(
        &self,
        id: &str,
        status: CallStatus,
        sequence: Option<i64>,
        reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        let t = Utc::now();
        let ended = status.is_terminal().then_some(t);
        let update = format!(
            "UPDATE calls SET status = $1, status_seq = COALESCE($2, status_seq), updated_at = $3, ended_at = COALESCE(ended_at, $4)
             WHERE id = $5 AND status NOT IN {TERMINAL_SQL} AND ($2 IS NULL OR $2 > status_seq)"
        );
        let changed = with_db!(&self.db, pool => {
            let mut tx = pool.begin().await.map_err(db("starting a transaction"))?;
            tx.lock_call(id).await.map_err(db("locking a call"))?;
            let result = sqlx::query(&update)
                .bind(status.as_str())
                .bind(sequence)
                .bind(t)
                .bind(ended)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db("updating a call status"))?;
            let changed = result.rows_affected() > 0;
            if !changed {
                let known = sqlx::query("SELECT 1 FROM calls WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db("looking up a call"))?;
                if known.is_none() {
                    // Twilio called back before the REST answer reached us: keep it for `insert`.
                    sqlx::query("INSERT INTO early_statuses (call_id, status, status_seq, reason, received_at) VALUES ($1, $2, $3, $4, $5)")
                        .bind(id)
                        .bind(status.as_str())
                        .bind(sequence)
                        .bind(reason)
                        .bind(t)
                        .execute(&mut *tx)
                        .await
                        .map_err(db("keeping an early status"))?;
                }
            }
            tx.commit().await.map_err(db("updating a call status"))?;
            changed
        });
        if changed {
            self.announce(id, News::Status);
            if status.is_terminal() {
                self.settle_unanswered(id, status, reason).await?;
            }
        }
        Ok(changed)
    }

    /// A call that ended without a conversation gets its outcome from the status.
    async fn settle_unanswered(
        &self,
        id: &str,
        status: CallStatus,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let reason = reason.map(str::to_string);
        let outcome = match status {
            CallStatus::NoAnswer => Outcome::bare(OutcomeStatus::NoAnswer, reason),
            CallStatus::Busy => Outcome::bare(OutcomeStatus::Busy, reason),
            CallStatus::Failed => Outcome::bare(
                OutcomeStatus::Failed,
                Some(match reason {
                    Some(r) => format!("Twilio could not place the call: {r}"),
                    None => "Twilio could not place the call".to_string(),
                }),
            ),
            CallStatus::Canceled => Outcome::bare(
                OutcomeStatus::Failed,
                Some("the call was cancelled before it was answered".to_string()),
            ),
            CallStatus::Completed => {
                let started = with_db!(&self.db, pool => {
                    sqlx::query("SELECT 1 FROM calls WHERE id = $1 AND started_at IS NOT NULL")
                        .bind(id)
                        .fetch_optional(pool)
                        .await
                        .map(|r| r.is_some())
                })
                .map_err(db("reading a call"))?;
                if started {
                    return Ok(()); // the live session writes the outcome
                }
                Outcome::bare(
                    OutcomeStatus::Failed,
                    Some("the call was answered but its audio stream never connected".to_string()),
                )
            }
            _ => return Ok(()),
        };
        self.set_outcome(id, &outcome, OutcomeWrite::Fallback)
            .await
            .map(|_| ())
    }

    /// The media stream started: the conversation is on.
    pub async fn stream_started(&self, id: &str) -> Result<(), StoreError> {
        let t = Utc::now();
        let in_progress = Json(serde_json::json!({"status": "in_progress"}));
        let result = with_db!(&self.db, pool => {
            sqlx::query("UPDATE calls SET started_at = COALESCE(started_at, $1), updated_at = $1, outcome = COALESCE(outcome, $2) WHERE id = $3")
                .bind(t)
                .bind(&in_progress)
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db("marking a stream started"))?;
        if result > 0 {
            self.announce(id, News::Outcome);
        }
        Ok(())
    }

    /// Append a transcript line after the last one (as it is spoken, not at
    /// the end). A live call writes through [`spawn_writer`], which numbers
    /// its lines itself so that a retried write is never doubled.
    pub async fn add_line(&self, id: &str, line: &TranscriptLine) -> Result<u64, StoreError> {
        let seq: i64 = with_db!(&self.db, pool => {
            sqlx::query_scalar("INSERT INTO transcript_lines (call_id, seq, speaker, text, at_ms) SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4 FROM transcript_lines WHERE call_id = $1 RETURNING seq")
                .bind(id)
                .bind(speaker_name(line.speaker))
                .bind(&line.text)
                .bind(line.at_ms as i64)
                .fetch_one(pool)
                .await
        })
        .map_err(db("adding a transcript line"))?;
        let seq = seq.max(0) as u64;
        self.announce(id, News::Line(seq));
        Ok(seq)
    }

    /// Record the outcome: a report replaces what is there; a fallback keeps
    /// an outcome already reported (anything but `in_progress`). Returns
    /// whether it was written.
    pub async fn set_outcome(
        &self,
        id: &str,
        outcome: &Outcome,
        how: OutcomeWrite,
    ) -> Result<bool, StoreError> {
        let sql = match how {
            OutcomeWrite::Fallback => format!(
                "UPDATE calls SET outcome = $1, updated_at = $2 WHERE id = $3 AND {UNSETTLED_SQL}"
            ),
            OutcomeWrite::Report => {
                "UPDATE calls SET outcome = $1, updated_at = $2 WHERE id = $3".to_string()
            }
        };
        let t = Utc::now();
        let result = with_db!(&self.db, pool => {
            sqlx::query(&sql)
                .bind(Json(outcome))
                .bind(t)
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db("recording an outcome"))?;
        let written = result > 0;
        if written {
            self.announce(id, News::Outcome);
        }
        Ok(written)
    }

    /// Record a problem worth telling the person.
    pub async fn set_error(&self, id: &str, error: &str) -> Result<(), StoreError> {
        let t = Utc::now();
        with_db!(&self.db, pool => {
            sqlx::query("UPDATE calls SET error = $1, updated_at = $2 WHERE id = $3")
                .bind(error)
                .bind(t)
                .bind(id)
                .execute(pool)
                .await
                .map(|_| ())
        })
        .map_err(db("recording an error"))?;
        Ok(())
    }

    /// Record who answered (answering-machine detection).
    pub async fn set_answered_by(
        &self,
        id: &str,
        answered_by: AnsweredBy,
    ) -> Result<(), StoreError> {
        let t = Utc::now();
        with_db!(&self.db, pool => {
            sqlx::query("UPDATE calls SET answered_by = $1, updated_at = $2 WHERE id = $3")
                .bind(answered_by.as_str())
                .bind(t)
                .bind(id)
                .execute(pool)
                .await
                .map(|_| ())
        })
        .map_err(db("recording who answered"))?;
        self.announce(id, News::AnsweredBy);
        Ok(())
    }

    /// Which of calls `ids` have an answering-machine verdict: one statement
    /// for all of them.
    pub(crate) async fn calls_with_a_verdict(
        &self,
        ids: &[String],
    ) -> Result<Vec<String>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql =
            String::from("SELECT id FROM calls WHERE answered_by IS NOT NULL AND id IN (");
        push_placeholders(&mut sql, 1, ids.len());
        sql.push(')');
        with_db!(&self.db, pool => {
            let mut query = sqlx::query_scalar(&sql);
            for id in ids {
                query = query.bind(id);
            }
            query.fetch_all(pool).await
        })
        .map_err(db("reading which calls have a verdict"))
    }

    /// Who answered, per AMD, if reported yet.
    pub async fn answered_by(&self, id: &str) -> Result<Option<AnsweredBy>, StoreError> {
        let who: Option<Option<String>> = with_db!(&self.db, pool => {
            sqlx::query_scalar("SELECT answered_by FROM calls WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })
        .map_err(db("reading who answered"))?;
        who.flatten()
            .map(|text| {
                AnsweredBy::parse(&text).ok_or_else(|| StoreError::Corrupt {
                    what: "answered_by",
                    id: id.to_string(),
                    problem: format!("unknown verdict {text:?}"),
                })
            })
            .transpose()
    }

    /// Ids of calls with a given status (used at shutdown and by tests).
    pub async fn ids_with_status(&self, status: CallStatus) -> Result<Vec<String>, StoreError> {
        with_db!(&self.db, pool => {
            sqlx::query_scalar("SELECT id FROM calls WHERE status = $1")
                .bind(status.as_str())
                .fetch_all(pool)
                .await
        })
        .map_err(db("listing calls by status"))
    }

    /// Whether the database answers now.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_db!(&self.db, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
            .map_err(db("reaching the database"))
    }

    /// Resolves once [`CallStore::close`] was called.
    pub async fn closed(&self) {
        self.shared.stop.cancelled().await
    }

    /// Finish background writes (lease releases, for a few seconds at most),
    /// stop listening for news and close the pool (on SQLite this flushes the WAL).
    pub async fn close(&self) {
        self.shared.tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.shared.tasks.wait()).await;
        self.shared.stop.cancel();
        self.db.close().await;
    }
}

/// One suite, both databases: every test below runs on SQLite and, when a
/// server is available (always under `CI=true`), on PostgreSQL.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reservation::{RequestRules, ReservationRequest};
    use futures_util::StreamExt;

    /// Where a test's database lives; [`Backend::open`] opens one more
    /// "instance" on it.
    enum Backend {
        Sqlite(tempfile::TempDir),
        Postgres(Box<scratch::ScratchDatabase>),
    }

    impl Backend {
        fn url(&self) -> String {
            match self {
                Backend::Sqlite(dir) => {
                    format!("sqlite://{}", dir.path().join("sub/calls.db").display())
                }
                Backend::Postgres(db) => db.url().to_string(),
            }
        }

        async fn open(&self) -> CallStore {
            CallStore::open_with(&self.url(), test_options())
                .await
                .expect("store opens")
        }
    }

    fn test_options() -> StoreOptions {
        StoreOptions {
            lease: LeaseTimings {
                ttl: Duration::from_millis(800),
                renew_every: Duration::from_millis(150),
                retry_every: Duration::from_millis(50),
                reap_every: Duration::from_millis(100),
                reap_grace: Duration::ZERO,
            },
            ..StoreOptions::default()
        }
    }

    macro_rules! on_both {
        ($($name:ident),* $(,)?) => {$(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let dir = tempfile::tempdir().unwrap();
                    super::$name(&super::Backend::Sqlite(dir)).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(db) = super::scratch::ScratchDatabase::for_test().await {
                        super::$name(&super::Backend::Postgres(Box::new(db))).await;
                    }
                }
            }
        )*};
    }

    on_both!(
        status_callbacks_are_ordered_and_terminal_is_final,
        transcript_and_outcome_are_kept_and_followed,
        callbacks_before_the_call_is_stored_are_applied_on_insert,
        unanswered_calls_keep_twilios_reason_and_amd_is_readable,
        completed_without_a_stream_is_a_failure,
        a_line_written_twice_is_kept_once,
        another_instance_follows_every_line_once_in_order,
        the_verdict_reaches_a_session_on_another_instance,
        a_dead_instances_call_is_reaped_once_and_stays_failed,
        a_renewed_lease_is_never_reaped,
        a_holder_hears_that_its_lease_was_taken,
        the_writer_keeps_the_order_of_what_was_said,
        the_lines_of_many_calls_are_written_together,
        a_calls_newest_stream_is_claimed_once_and_never_goes_back,
    );

    /// A valid reservation (the page tests use it too).
    pub(super) fn reservation() -> Reservation {
        ReservationRequest {
            to: "+12125550123".into(),
            restaurant: "Chez Demo".into(),
            party_size: 2,
            date: "2099-01-01".into(),
            time: "19:00".into(),
            name: "Alex Doe".into(),
            ..Default::default()
        }
        .into_reservation(
            &RequestRules {
                default_timezone: chrono_tz::Tz::UTC,
                max_party_size: 20,
                dial_policy: Default::default(),
                default_language: None,
            },
            Utc::now(),
        )
        .unwrap()
    }

    fn line(speaker: Speaker, text: &str, at_ms: u64) -> TranscriptLine {
        TranscriptLine {
            speaker,
            text: text.into(),
            at_ms,
        }
    }

    /// A call that is live: placed, answered, its stream started.
    async fn live_call(s: &CallStore, id: &str) {
        s.insert(id, &reservation(), "tok", CallStatus::Queued)
            .await
            .unwrap();
        s.apply_status(id, CallStatus::InProgress, Some(2))
            .await
            .unwrap();
        s.stream_started(id).await.unwrap();
    }

    /// Start following `id` now (the snapshot is taken before this returns);
    /// the handle yields everything received until `Finished` (or panics after 20 s).
    async fn follow_in_background(
        s: &CallStore,
        id: &str,
    ) -> tokio::task::JoinHandle<Vec<Followed>> {
        let mut follow = Box::pin(s.follow(id).await.unwrap().expect("the call exists"));
        let first = follow.next().await.expect("a snapshot");
        tokio::spawn(async move {
            let rest = tokio::time::timeout(Duration::from_secs(20), follow.collect::<Vec<_>>())
                .await
                .expect("the call finishes");
            std::iter::once(first).chain(rest).collect()
        })
    }

    fn transcript_seqs(followed: &[Followed]) -> Vec<u64> {
        followed
            .iter()
            .filter_map(|f| match f {
                Followed::Event(CallEvent::Transcript { seq, .. }) => Some(*seq),
                _ => None,
            })
            .collect()
    }

    async fn status_callbacks_are_ordered_and_terminal_is_final(b: &Backend) {
        let s = b.open().await;
        s.insert("CA1", &reservation(), "tok", CallStatus::Queued)
            .await
            .unwrap();
        assert!(s
            .apply_status("CA1", CallStatus::Ringing, Some(1))
            .await
            .unwrap());
        assert!(
            !s.apply_status("CA1", CallStatus::Initiated, Some(0))
                .await
                .unwrap(),
            "late initiated must not win"
        );
        assert!(
            !s.apply_status("CA1", CallStatus::Ringing, Some(1))
                .await
                .unwrap(),
            "duplicate ignored"
        );
        assert!(s
            .apply_status("CA1", CallStatus::NoAnswer, Some(2))
            .await
            .unwrap());
        assert!(
            !s.apply_status("CA1", CallStatus::InProgress, Some(3))
                .await
                .unwrap(),
            "terminal is final"
        );
        let r = s.get("CA1").await.unwrap().unwrap();
        assert_eq!(r.status, CallStatus::NoAnswer);
        assert_eq!(r.outcome.unwrap().status, OutcomeStatus::NoAnswer);
        assert!(r.ended_at.is_some());
        assert!(r.created_at <= r.updated_at);
    }

    async fn transcript_and_outcome_are_kept_and_followed(b: &Backend) {
        let s = b.open().await;
        s.insert("CA2", &reservation(), "tok", CallStatus::Queued)
            .await
            .unwrap();
        let follower = follow_in_background(&s, "CA2").await;
        s.apply_status("CA2", CallStatus::InProgress, Some(2))
            .await
            .unwrap();
        s.stream_started("CA2").await.unwrap();
        let first = line(Speaker::Callee, "Chez Demo, hello?", 300);
        assert_eq!(s.add_line("CA2", &first).await.unwrap(), 1);
        assert_eq!(
            s.add_line("CA2", &line(Speaker::Agent, "Hi!", 2000))
                .await
                .unwrap(),
            2
        );
        let booked = Outcome::bare(OutcomeStatus::Booked, None);
        assert!(s
            .set_outcome("CA2", &booked, OutcomeWrite::Report)
            .await
            .unwrap());
        assert!(
            !s.set_outcome(
                "CA2",
                &Outcome::bare(OutcomeStatus::Failed, None),
                OutcomeWrite::Fallback
            )
            .await
            .unwrap(),
            "a reported outcome is kept"
        );
        s.apply_status("CA2", CallStatus::Completed, Some(3))
            .await
            .unwrap();
        let r = s.get("CA2").await.unwrap().unwrap();
        assert_eq!(r.transcript.len(), 2);
        assert_eq!(r.transcript[0], first);
        assert_eq!(r.outcome.as_ref().unwrap().status, OutcomeStatus::Booked);
        assert!(r.is_finished());

        let followed = follower.await.unwrap();
        assert!(matches!(followed[0], Followed::Snapshot(_)), "{followed:?}");
        assert_eq!(transcript_seqs(&followed), vec![1, 2], "{followed:?}");
        let statuses: Vec<CallStatus> = followed
            .iter()
            .filter_map(|f| match f {
                Followed::Event(CallEvent::Status { status }) => Some(*status),
                _ => None,
            })
            .collect();
        assert_eq!(
            statuses.last(),
            Some(&CallStatus::Completed),
            "{followed:?}"
        );
        assert_eq!(followed.last(), Some(&Followed::Finished(r)));

        let list = s.list(10).await.unwrap();
        assert_eq!(list[0].id, "CA2");
        assert_eq!(list[0].outcome, Some(OutcomeStatus::Booked));
        assert_eq!(s.call_token("CA2").await.unwrap().as_deref(), Some("tok"));
        assert_eq!(s.call_token("CA404").await.unwrap(), None);
        assert!(s.follow("CA404").await.unwrap().is_none());
    }

    async fn callbacks_before_the_call_is_stored_are_applied_on_insert(b: &Backend) {
        let s = b.open().await;
        assert!(!s
            .apply_status("CA4", CallStatus::Ringing, Some(1))
            .await
            .unwrap());
        assert!(!s
            .apply_status("CA4", CallStatus::Initiated, Some(0))
            .await
            .unwrap());
        s.insert("CA4", &reservation(), "tok", CallStatus::Queued)
            .await
            .unwrap();
        assert_eq!(
            s.get("CA4").await.unwrap().unwrap().status,
            CallStatus::Ringing
        );
        // …and a terminal one keeps Twilio's reason too.
        assert!(!s
            .apply_status_with_reason(
                "CA5",
                CallStatus::NoAnswer,
                Some(2),
                Some("nobody picked up (SIP 480)")
            )
            .await
            .unwrap());
        s.insert("CA5", &reservation(), "tok", CallStatus::Queued)
            .await
            .unwrap();
        let r5 = s.get("CA5").await.unwrap().unwrap();
        assert_eq!(r5.status, CallStatus::NoAnswer);
        assert_eq!(
            r5.outcome.unwrap().notes.as_deref(),
            Some("nobody picked up (SIP 480)")
        );

        // Racing: the callback and the insert at the same moment, from two
        // instances, many times; the callback is never lost.
        let other = b.open().await;
        let booking = reservation();
        for n in 0..20 {
            let id = format!("CArace{n}");
            let (a, i) = tokio::join!(
                other.apply_status(&id, CallStatus::Ringing, Some(1)),
                s.insert(&id, &booking, "tok", CallStatus::Queued)
            );
            a.unwrap();
            i.unwrap();
            assert_eq!(
                s.get(&id).await.unwrap().unwrap().status,
                CallStatus::Ringing,
                "{id}"
            );
        }
    }

    async fn unanswered_calls_keep_twilios_reason_and_amd_is_readable(b: &Backend) {
        let s = b.open().await;
        s.insert("CA5", &reservation(), "tok", CallStatus::Queued)
            .await
            .unwrap();
        assert_eq!(s.answered_by("CA5").await.unwrap(), None);
        s.set_answered_by("CA5", AnsweredBy::MachineEndBeep)
            .await
            .unwrap();
        assert_eq!(
            s.answered_by("CA5").await.unwrap(),
            Some(AnsweredBy::MachineEndBeep)
        );
        s.apply_status_with_reason(
            "CA5",
            CallStatus::Busy,
            Some(3),
            crate::twilio::sip::reason("486"),
        )
        .await
        .unwrap();
        let o = s.get("CA5").await.unwrap().unwrap().outcome.unwrap();
        assert_eq!(o.status, OutcomeStatus::Busy);
        assert_eq!(o.notes.as_deref(), Some("the line was busy (SIP 486)"));
    }

    async fn a_calls_newest_stream_is_claimed_once_and_never_goes_back(b: &Backend) {
        let s = b.open().await;
        let other = b.open().await;
        s.insert("CA7", &reservation(), "tok", CallStatus::InProgress)
            .await
            .unwrap();
        assert_eq!(s.newest_stream("CA7").await.unwrap(), Some(1));
        assert_eq!(s.newest_stream("CAnope").await.unwrap(), None);
        // The instance the second stream reached claims it; the other sees it.
        assert!(other.claim_stream("CA7", 2).await.unwrap());
        assert_eq!(s.newest_stream("CA7").await.unwrap(), Some(2));
        // The same stream again, or an older one, is stale.
        assert!(!s.claim_stream("CA7", 2).await.unwrap());
        assert!(!s.claim_stream("CA7", 1).await.unwrap());
        assert!(!s.claim_stream("CAnope", 2).await.unwrap());
        assert!(s.claim_stream("CA7", 3).await.unwrap());
        assert_eq!(other.newest_stream("CA7").await.unwrap(), Some(3));
    }

    async fn completed_without_a_stream_is_a_failure(b: &Backend) {
        let s = b.open().await;
        s.insert("CA3", &reservation(), "tok", CallStatus::Queued)
            .await
            .unwrap();
        s.apply_status("CA3", CallStatus::Completed, Some(3))
            .await
            .unwrap();
        let r = s.get("CA3").await.unwrap().unwrap();
        assert!(r.is_finished());
        assert_eq!(r.outcome.unwrap().status, OutcomeStatus::Failed);
        assert_eq!(
            s.ids_with_status(CallStatus::Completed).await.unwrap(),
            vec!["CA3"]
        );
    }

    async fn a_line_written_twice_is_kept_once(b: &Backend) {
        let s = b.open().await;
        live_call(&s, "CA6").await;
        let hello = line(Speaker::Callee, "Hello?", 100);
        assert!(s.put_line("CA6", 1, &hello).await.unwrap());
        assert!(
            s.put_line("CA6", 1, &hello).await.unwrap(),
            "a retry is fine"
        );
        assert!(
            !s.put_line("CA6", 1, &line(Speaker::Agent, "Hi", 200))
                .await
                .unwrap(),
            "another line at the same place is refused"
        );
        assert_eq!(s.get("CA6").await.unwrap().unwrap().transcript, vec![hello]);
        assert_eq!(s.last_line("CA6").await.unwrap(), 1);
        assert_eq!(s.last_line("CA404").await.unwrap(), 0);
    }

    async fn another_instance_follows_every_line_once_in_order(b: &Backend) {
        let a = b.open().await;
        let other = b.open().await;
        live_call(&a, "CA7").await;
        a.add_line("CA7", &line(Speaker::Callee, "line 1", 10))
            .await
            .unwrap();
        let follower = follow_in_background(&other, "CA7").await;
        for n in 2..=30u64 {
            a.add_line("CA7", &line(Speaker::Agent, &format!("line {n}"), n * 10))
                .await
                .unwrap();
            if n.is_multiple_of(10) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        a.set_outcome(
            "CA7",
            &Outcome::bare(OutcomeStatus::Booked, None),
            OutcomeWrite::Report,
        )
        .await
        .unwrap();
        a.apply_status("CA7", CallStatus::Completed, Some(9))
            .await
            .unwrap();
        let followed = follower.await.unwrap();
        assert_eq!(
            transcript_seqs(&followed),
            (2..=30).collect::<Vec<_>>(),
            "each line once, in order"
        );
        let Some(Followed::Finished(record)) = followed.last() else {
            panic!("{followed:?}")
        };
        assert_eq!(record.transcript.len(), 30);
    }

    async fn the_verdict_reaches_a_session_on_another_instance(b: &Backend) {
        let a = b.open().await;
        let other = b.open().await;
        live_call(&a, "CA8").await;
        let waiting = {
            let other = other.clone();
            tokio::spawn(async move {
                other
                    .answered_by_verdict("CA8", Duration::from_secs(20))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        a.set_answered_by("CA8", AnsweredBy::MachineEndBeep)
            .await
            .unwrap();
        assert_eq!(waiting.await.unwrap(), Some(AnsweredBy::MachineEndBeep));
        // Already known: answered at once; never known: gives up.
        assert_eq!(
            other
                .answered_by_verdict("CA8", Duration::from_secs(5))
                .await,
            Some(AnsweredBy::MachineEndBeep)
        );
        live_call(&a, "CA9").await;
        assert_eq!(
            other
                .answered_by_verdict("CA9", Duration::from_millis(300))
                .await,
            None
        );
        // Many calls waiting on one instance, their verdicts written by
        // another: each gets its own; on SQLite the waiting instance reads
        // them together, one statement a period, not one per call.
        let ids: Vec<String> = (0..40).map(|n| format!("CA8w{n}")).collect();
        for id in &ids {
            live_call(&a, id).await;
        }
        let reads_before = other.verdict_reads();
        let waiters: Vec<_> = ids
            .iter()
            .map(|id| {
                let (other, id) = (other.clone(), id.clone());
                tokio::spawn(async move {
                    other
                        .answered_by_verdict(&id, Duration::from_secs(20))
                        .await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(1600)).await;
        for (n, id) in ids.iter().enumerate() {
            let who = if n % 2 == 0 {
                AnsweredBy::Human
            } else {
                AnsweredBy::MachineEndSilence
            };
            a.set_answered_by(id, who).await.unwrap();
        }
        for (n, waiter) in waiters.into_iter().enumerate() {
            let want = if n % 2 == 0 {
                AnsweredBy::Human
            } else {
                AnsweredBy::MachineEndSilence
            };
            assert_eq!(waiter.await.unwrap(), Some(want), "call {n}");
        }
        let reads = other.verdict_reads() - reads_before;
        if other.is_postgres() {
            assert_eq!(reads, 0, "PostgreSQL announces verdicts: nothing to read");
        } else {
            assert!(
                (2..=8).contains(&reads),
                "{reads} verdict reads for 40 calls waiting about four periods"
            );
        }
    }

    /// Wait until `reaper` reaps something (at most 20 s).
    async fn reap_until_found(reaper: &CallStore) -> Vec<ReapedCall> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let reaped = reaper.reap_expired().await.unwrap();
            if !reaped.is_empty() || tokio::time::Instant::now() > deadline {
                return reaped;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn a_dead_instances_call_is_reaped_once_and_stays_failed(b: &Backend) {
        let dying = b.open().await;
        live_call(&dying, "CA10").await;
        let said = line(Speaker::Callee, "Chez Demo, good evening", 100);
        dying.add_line("CA10", &said).await.unwrap();
        let guard = dying.hold_lease("CA10");
        // The lease is taken: nobody reaps it while it is renewed.
        let (b1, b2) = (b.open().await, b.open().await);
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert!(b1.reap_expired().await.unwrap().is_empty());
        // The instance dies: no more renewals, no release.
        std::mem::forget(guard);
        dying.db.close().await;

        let (r1, r2) = tokio::join!(reap_until_found(&b1), reap_until_found(&b2));
        let mut all = r1.clone();
        all.extend(r2.clone());
        // One reaper may find it first and the other find nothing, or both
        // see it expired and race: either way exactly one claims it.
        let again = b1.reap_expired().await.unwrap();
        all.extend(again);
        assert_eq!(all.len(), 1, "exactly one reaper: {r1:?} {r2:?}");
        assert_eq!(all[0].id, "CA10");
        assert_eq!(all[0].holder, dying.instance());
        assert!(all[0].was_live);

        let r = b1.get("CA10").await.unwrap().unwrap();
        assert!(r.is_finished());
        assert_eq!(r.status, CallStatus::Failed);
        let outcome = r.outcome.clone().unwrap();
        assert_eq!(outcome.status, OutcomeStatus::Failed);
        assert_eq!(outcome.notes.as_deref(), Some(lease::REAPED_REASON));
        assert_eq!(r.transcript, vec![said], "what was said is kept");
        // Twilio's late `completed` changes nothing.
        assert!(!b2
            .apply_status("CA10", CallStatus::Completed, Some(7))
            .await
            .unwrap());
        assert_eq!(b2.get("CA10").await.unwrap().unwrap(), r);
    }

    async fn a_renewed_lease_is_never_reaped(b: &Backend) {
        let holder = b.open().await;
        let reaper = b.open().await;
        live_call(&holder, "CA11").await;
        let mut guard = holder.hold_lease("CA11");
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            assert!(reaper.reap_expired().await.unwrap().is_empty());
        }
        // A holder's own leases are never its reaper's business.
        assert!(holder.reap_expired().await.unwrap().is_empty());
        // Released at the end: nothing left to reap, the record untouched.
        drop(guard);
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert!(reaper.reap_expired().await.unwrap().is_empty());
        let r = reaper.get("CA11").await.unwrap().unwrap();
        assert_eq!(r.status, CallStatus::InProgress);

        // A finished call whose holder died before releasing: the lease is
        // cleared, the record left as it was, no hang-up needed.
        guard = holder.hold_lease("CA11");
        tokio::time::sleep(Duration::from_millis(300)).await;
        holder
            .set_outcome(
                "CA11",
                &Outcome::bare(OutcomeStatus::Booked, None),
                OutcomeWrite::Report,
            )
            .await
            .unwrap();
        holder
            .apply_status("CA11", CallStatus::Completed, Some(5))
            .await
            .unwrap();
        std::mem::forget(guard);
        holder.db.close().await;
        let reaped = reap_until_found(&reaper).await;
        assert_eq!(reaped.len(), 1);
        assert!(!reaped[0].was_live);
        let after = reaper.get("CA11").await.unwrap().unwrap();
        assert_eq!(after.status, CallStatus::Completed);
        assert_eq!(after.outcome.unwrap().status, OutcomeStatus::Booked);
    }

    async fn a_holder_hears_that_its_lease_was_taken(b: &Backend) {
        let holder = b.open().await;
        let reaper = b.open().await;
        live_call(&holder, "CA13").await;
        live_call(&holder, "CA14").await;
        let mut guard = holder.hold_lease("CA13");
        let mut kept = holder.hold_lease("CA14");
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Judged dead (as if its renewals had stopped reaching the database):
        // the lease now names another holder and has expired; a reaper takes it.
        with_db!(&reaper.db, pool => {
            sqlx::query("UPDATE call_leases SET holder = $1, expires_ms = 0 WHERE call_id = $2")
                .bind("gone")
                .bind("CA13")
                .execute(pool)
                .await
                .map(|_| ())
        })
        .unwrap();
        let reaped = reap_until_found(&reaper).await;
        assert_eq!(reaped.len(), 1, "{reaped:?}");
        assert_eq!(reaped[0].id, "CA13");
        tokio::time::timeout(Duration::from_secs(10), guard.lost())
            .await
            .expect("the holder hears that its lease was taken");
        // The other call's lease is still its own.
        assert!(
            tokio::time::timeout(Duration::from_millis(600), kept.lost())
                .await
                .is_err(),
            "a lease still held is not lost"
        );
        let r = reaper.get("CA13").await.unwrap().unwrap();
        assert_eq!(r.status, CallStatus::Failed);
        // The kept lease is still renewed (with all of the instance's, by one
        // renewer), and nothing is reaped; released, the renewer stops.
        tokio::time::sleep(holder.shared.options.lease.ttl * 3 / 2).await;
        assert!(reaper.reap_expired().await.unwrap().is_empty());
        drop((guard, kept));
        tokio::time::sleep(holder.shared.options.lease.renew_every * 3).await;
        let held = holder.held();
        assert!(held.calls.is_empty(), "{held:?}");
        assert!(!held.renewing, "the renewer stops once nothing is held");
    }

    async fn the_writer_keeps_the_order_of_what_was_said(b: &Backend) {
        let s = b.open().await;
        live_call(&s, "CA12").await;
        s.add_line("CA12", &line(Speaker::Callee, "before", 1))
            .await
            .unwrap();
        let (writes, writer) = spawn_writer(s.clone(), "CA12".into());
        for n in 0..40u64 {
            writes
                .send(CallWrite::Line(line(Speaker::Agent, &format!("w{n}"), n)))
                .unwrap();
        }
        writes
            .send(CallWrite::Outcome(
                Outcome::bare(OutcomeStatus::Booked, None),
                OutcomeWrite::Report,
            ))
            .unwrap();
        writes.send(CallWrite::Error("a hiccup".into())).unwrap();
        drop(writes);
        writer.await.unwrap();
        let r = s.get("CA12").await.unwrap().unwrap();
        let texts: Vec<&str> = r.transcript.iter().map(|l| l.text.as_str()).collect();
        let mut want = vec!["before".to_string()];
        want.extend((0..40).map(|n| format!("w{n}")));
        assert_eq!(texts, want);
        assert_eq!(r.outcome.unwrap().status, OutcomeStatus::Booked);
        assert_eq!(r.error.as_deref(), Some("a hiccup"));
    }

    async fn the_lines_of_many_calls_are_written_together(b: &Backend) {
        let s = b.open().await;
        let calls: Vec<String> = (0..30).map(|n| format!("CA14c{n}")).collect();
        for id in &calls {
            live_call(&s, id).await;
        }
        // A different line already holds the first call's line 1: the batch
        // that meets it says so for that line alone.
        s.add_line(&calls[0], &line(Speaker::Callee, "first", 1))
            .await
            .unwrap();
        let before = s.line_statements();
        let writers: Vec<_> = calls
            .iter()
            .map(|id| {
                let (s, id) = (s.clone(), id.clone());
                tokio::spawn(async move {
                    let mut answers = Vec::new();
                    for n in 1..=5u64 {
                        let said = line(Speaker::Agent, &format!("{id} {n}"), n);
                        answers.push(s.put_line(&id, n, &said).await.unwrap());
                    }
                    answers
                })
            })
            .collect();
        for (i, writer) in writers.into_iter().enumerate() {
            let answers = writer.await.unwrap();
            assert_eq!(answers, vec![i != 0, true, true, true, true], "call {i}");
        }
        let statements = s.line_statements() - before;
        assert!(
            (1..=30).contains(&statements),
            "{statements} statements for the 150 lines of 30 calls"
        );
        for (i, id) in calls.iter().enumerate() {
            let r = s.get(id).await.unwrap().unwrap();
            let texts: Vec<String> = r.transcript.iter().map(|l| l.text.clone()).collect();
            let mut want: Vec<String> = (1..=5).map(|n| format!("{id} {n}")).collect();
            if i == 0 {
                want[0] = "first".into();
            }
            assert_eq!(texts, want, "call {i}");
        }
    }

    #[tokio::test]
    async fn postgres_unreachable_names_host_and_database_not_the_password() {
        let err = CallStore::open("postgres://app:s3cr3t-pw@127.0.0.1:1/reservoice_calls")
            .await
            .expect_err("nothing listens on port 1");
        let message = format!("{err}");
        assert!(message.contains("127.0.0.1:1"), "{message}");
        assert!(message.contains("reservoice_calls"), "{message}");
        assert!(!message.contains("s3cr3t-pw"), "{message}");
        assert!(!err.is_transient());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_instances_starting_together_migrate_once() {
        let Some(db) = scratch::ScratchDatabase::for_test().await else {
            return;
        };
        let opened = futures_util::future::join_all(
            (0..6).map(|_| CallStore::open_with(db.url(), test_options())),
        )
        .await;
        let stores: Vec<CallStore> = opened
            .into_iter()
            .map(|s| s.expect("every instance starts"))
            .collect();
        let Db::Postgres(pool) = &stores[0].db else {
            unreachable!()
        };
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!(applied as usize, db::POSTGRES_MIGRATIONS.iter().count());
        for s in &stores {
            s.close().await;
        }
        db.drop_now().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_connections_can_require_tls() {
        let Some(db) = scratch::ScratchDatabase::for_test().await else {
            return;
        };
        let plain = CallStore::open(db.url()).await.unwrap();
        let Db::Postgres(pool) = &plain.db else {
            unreachable!()
        };
        let ssl: String = sqlx::query_scalar("SHOW ssl")
            .fetch_one(pool)
            .await
            .unwrap();
        if ssl != "on" {
            eprintln!("note: this PostgreSQL server has ssl = off; TLS not tested");
            return;
        }
        let mut url = url::Url::parse(db.url()).unwrap();
        url.query_pairs_mut().append_pair("sslmode", "require");
        let s = CallStore::open(url.as_str()).await.expect("opens over TLS");
        let Db::Postgres(pool) = &s.db else {
            unreachable!()
        };
        let over_tls: bool =
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(pool)
                .await
                .unwrap();
        assert!(over_tls);
        live_call(&s, "CA14").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_followers_catch_up_after_the_listener_drops() {
        let Some(db) = scratch::ScratchDatabase::for_test().await else {
            return;
        };
        let b = Backend::Postgres(Box::new(db));
        let a = b.open().await;
        let other = b.open().await;
        live_call(&a, "CA13").await;
        let follower = follow_in_background(&other, "CA13").await;
        let Db::Postgres(pool) = &a.db else {
            unreachable!()
        };
        for n in 1..=20u64 {
            if n.is_multiple_of(5) {
                // Cut every listening connection: lines written now are
                // announced to nobody, and must still arrive.
                sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()")
                    .bind(news::APPLICATION_NAME)
                    .execute(pool)
                    .await
                    .unwrap();
            }
            a.add_line("CA13", &line(Speaker::Agent, &format!("line {n}"), n))
                .await
                .unwrap();
        }
        a.set_outcome(
            "CA13",
            &Outcome::bare(OutcomeStatus::Booked, None),
            OutcomeWrite::Report,
        )
        .await
        .unwrap();
        a.apply_status("CA13", CallStatus::Completed, Some(9))
            .await
            .unwrap();
        let followed = follower.await.unwrap();
        assert_eq!(transcript_seqs(&followed), (1..=20).collect::<Vec<_>>());
    }
}
