//! The call store: call records and transcripts in SQLite (sqlx, migrations,
//! WAL), plus the live event feed (`GET /api/calls/{id}/events`).
//!
//! Every change goes through here, which both writes it and announces it to
//! anyone following the call. The announcements are in-process (a broadcast
//! channel per call); the database is the source of truth: a follower first
//! reads the record, then follows the broadcast, and reads the store again
//! every second for changes made by another instance (`server::api`).

mod events;
mod page;

use std::path::Path;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
};
use sqlx::Row;

pub use events::{CallEvent, EventHub};
pub use page::{CallPage, ListedCall, PageCursor};

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

fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Database { context, source }
}

/// The call store (cheap to clone).
#[derive(Clone)]
pub struct CallStore {
    pool: SqlitePool,
    hub: EventHub,
}

impl std::fmt::Debug for CallStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallStore")
    }
}

fn now() -> String {
    Utc::now().to_rfc3339()
}

fn parse_time(
    id: &str,
    what: &'static str,
    s: Option<String>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    s.map(|s| {
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| StoreError::Corrupt {
                what,
                id: id.to_string(),
                problem: e.to_string(),
            })
    })
    .transpose()
}

impl CallStore {
    /// Open (creating if needed) the database at `database_url`
    /// (`sqlite://path`), switch it to WAL and apply migrations.
    pub async fn open(database_url: &str) -> Result<CallStore, StoreError> {
        let path = database_url
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
        let options = SqliteConnectOptions::from_str(database_url)
            .map_err(db("reading DATABASE_URL"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(db("opening the database"))?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(CallStore {
            pool,
            hub: EventHub::default(),
        })
    }

    /// Follow a call's live events.
    pub fn subscribe(&self, id: &str) -> tokio::sync::broadcast::Receiver<CallEvent> {
        self.hub.subscribe(id)
    }

    /// Record a call Twilio accepted.
    pub async fn insert(
        &self,
        id: &str,
        reservation: &Reservation,
        call_token: &str,
        status: CallStatus,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(reservation).map_err(|e| StoreError::Corrupt {
            what: "reservation",
            id: id.into(),
            problem: e.to_string(),
        })?;
        let t = now();
        // One transaction with `apply_status`'s, so an early callback is
        // either kept for us here or finds the row: never lost in between.
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db("starting a transaction"))?;
        sqlx::query("INSERT INTO calls (id, created_at, updated_at, status, to_number, restaurant, reservation, call_token) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(id)
            .bind(&t)
            .bind(&t)
            .bind(status.as_str())
            .bind(reservation.restaurant_phone.as_str())
            .bind(reservation.restaurant_name.as_str())
            .bind(json)
            .bind(call_token)
            .execute(&mut *tx)
            .await
            .map_err(db("inserting a call"))?;
        let early = sqlx::query(
            "SELECT status, status_seq, reason FROM early_statuses WHERE call_id = ? ORDER BY status_seq",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db("reading early statuses"))?;
        sqlx::query("DELETE FROM early_statuses WHERE call_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db("clearing early statuses"))?;
        tx.commit().await.map_err(db("storing a call"))?;
        for row in early {
            if let Some(status) = CallStatus::parse(&row.get::<String, _>(0)) {
                let reason: Option<String> = row.get(2);
                Box::pin(self.apply_status_with_reason(id, status, row.get(1), reason.as_deref()))
                    .await?;
            }
        }
        Ok(())
    }

    /// The per-call token carried in the stream parameters (defence in depth).
    pub async fn call_token(&self, id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT call_token FROM calls WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("reading a call token"))?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }

    /// One call with its transcript.
    pub async fn get(&self, id: &str) -> Result<Option<CallRecord>, StoreError> {
        let Some(row) = sqlx::query("SELECT * FROM calls WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("reading a call"))?
        else {
            return Ok(None);
        };
        let lines = sqlx::query(
            "SELECT speaker, text, at_ms FROM transcript_lines WHERE call_id = ? ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading a transcript"))?;
        let mut record = record_from_row(&row)?;
        record.transcript = lines
            .iter()
            .map(|l| TranscriptLine {
                speaker: if l.get::<String, _>(0) == "agent" {
                    Speaker::Agent
                } else {
                    Speaker::Callee
                },
                text: l.get(1),
                at_ms: l.get::<i64, _>(2).max(0) as u64,
            })
            .collect();
        Ok(Some(record))
    }

    /// The most recent calls, newest first.
    pub async fn list(&self, limit: u32) -> Result<Vec<CallSummary>, StoreError> {
        let rows = sqlx::query("SELECT id, created_at, restaurant, to_number, status, outcome FROM calls ORDER BY created_at DESC LIMIT ?")
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db("listing calls"))?;
        rows.iter().map(page::summary_from_row).collect()
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
        let terminal: Vec<&str> = ["completed", "busy", "no-answer", "failed", "canceled"].to_vec();
        let t = now();
        let ended = if status.is_terminal() {
            Some(t.clone())
        } else {
            None
        };
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db("starting a transaction"))?;
        let result = sqlx::query(
            "UPDATE calls SET status = ?, status_seq = COALESCE(?, status_seq), updated_at = ?, ended_at = COALESCE(ended_at, ?)
             WHERE id = ? AND status NOT IN (?, ?, ?, ?, ?) AND (? IS NULL OR ? > status_seq)",
        )
        .bind(status.as_str())
        .bind(sequence)
        .bind(&t)
        .bind(ended)
        .bind(id)
        .bind(terminal[0])
        .bind(terminal[1])
        .bind(terminal[2])
        .bind(terminal[3])
        .bind(terminal[4])
        .bind(sequence)
        .bind(sequence)
        .execute(&mut *tx)
        .await
        .map_err(db("updating a call status"))?;
        let changed = result.rows_affected() > 0;
        if !changed {
            let known = sqlx::query("SELECT 1 FROM calls WHERE id = ?")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db("looking up a call"))?;
            if known.is_none() {
                // Twilio called back before the REST answer reached us: keep it for `insert`.
                sqlx::query("INSERT INTO early_statuses (call_id, status, status_seq, reason, received_at) VALUES (?, ?, ?, ?, ?)")
                    .bind(id)
                    .bind(status.as_str())
                    .bind(sequence)
                    .bind(reason)
                    .bind(&t)
                    .execute(&mut *tx)
                    .await
                    .map_err(db("keeping an early status"))?;
            }
        }
        tx.commit().await.map_err(db("updating a call status"))?;
        if changed {
            self.hub.publish(id, CallEvent::Status { status });
            if status.is_terminal() {
                self.settle_unanswered(id, status, reason).await?;
                self.announce_if_finished(id).await?;
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
                let row = sqlx::query("SELECT started_at FROM calls WHERE id = ?")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db("reading a call"))?;
                let started = row.and_then(|r| r.get::<Option<String>, _>(0)).is_some();
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
        let t = now();
        sqlx::query("UPDATE calls SET started_at = COALESCE(started_at, ?), updated_at = ?, outcome = COALESCE(outcome, ?) WHERE id = ?")
            .bind(&t)
            .bind(&t)
            .bind(serde_json::json!({"status": "in_progress"}).to_string())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db("marking a stream started"))?;
        Ok(())
    }

    /// Append a transcript line (as it is spoken, not at the end).
    pub async fn add_line(&self, id: &str, line: &TranscriptLine) -> Result<(), StoreError> {
        let speaker = match line.speaker {
            Speaker::Agent => "agent",
            Speaker::Callee => "callee",
        };
        let seq: i64 = sqlx::query_scalar("INSERT INTO transcript_lines (call_id, seq, speaker, text, at_ms) SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ? FROM transcript_lines WHERE call_id = ? RETURNING seq")
            .bind(id)
            .bind(speaker)
            .bind(&line.text)
            .bind(line.at_ms as i64)
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .map_err(db("adding a transcript line"))?;
        self.hub.publish(
            id,
            CallEvent::Transcript {
                line: line.clone(),
                seq: seq.max(0) as u64,
            },
        );
        Ok(())
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
        let json = serde_json::to_string(outcome).map_err(|e| StoreError::Corrupt {
            what: "outcome",
            id: id.into(),
            problem: e.to_string(),
        })?;
        let sql = match how {
            OutcomeWrite::Fallback => "UPDATE calls SET outcome = ?, updated_at = ? WHERE id = ? AND (outcome IS NULL OR json_extract(outcome, '$.status') = 'in_progress')",
            OutcomeWrite::Report => "UPDATE calls SET outcome = ?, updated_at = ? WHERE id = ?",
        };
        let result = sqlx::query(sql)
            .bind(json)
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db("recording an outcome"))?;
        let written = result.rows_affected() > 0;
        if written {
            self.hub.publish(
                id,
                CallEvent::Outcome {
                    outcome: outcome.clone(),
                },
            );
            self.announce_if_finished(id).await?;
        }
        Ok(written)
    }

    /// Record a problem worth telling the person.
    pub async fn set_error(&self, id: &str, error: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE calls SET error = ?, updated_at = ? WHERE id = ?")
            .bind(error)
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db("recording an error"))?;
        Ok(())
    }

    /// Record who answered (answering-machine detection).
    pub async fn set_answered_by(
        &self,
        id: &str,
        answered_by: AnsweredBy,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE calls SET answered_by = ?, updated_at = ? WHERE id = ?")
            .bind(answered_by.as_str())
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db("recording who answered"))?;
        Ok(())
    }

    /// Who answered, per AMD, if reported yet. A primary-key lookup of one
    /// column: cheap enough for a live session to poll, which is how a
    /// callback that reached another server instance still reaches the
    /// session holding the stream.
    pub async fn answered_by(&self, id: &str) -> Result<Option<AnsweredBy>, StoreError> {
        let row = sqlx::query("SELECT answered_by FROM calls WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("reading who answered"))?;
        row.and_then(|r| r.get::<Option<String>, _>(0))
            .map(|text| {
                AnsweredBy::parse(&text).ok_or_else(|| StoreError::Corrupt {
                    what: "answered_by",
                    id: id.to_string(),
                    problem: format!("unknown verdict {text:?}"),
                })
            })
            .transpose()
    }

    async fn announce_if_finished(&self, id: &str) -> Result<(), StoreError> {
        if let Some(record) = self.get(id).await? {
            if record.is_finished() {
                self.hub.publish(id, CallEvent::Finished);
            }
        }
        Ok(())
    }

    /// Ids of calls with a given status (used at shutdown and by tests).
    pub async fn ids_with_status(&self, status: CallStatus) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT id FROM calls WHERE status = ?")
            .bind(status.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(db("listing calls by status"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Close the pool (flushes WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn record_from_row(row: &SqliteRow) -> Result<CallRecord, StoreError> {
    let id: String = row.get("id");
    let corrupt = |what: &'static str, problem: String| StoreError::Corrupt {
        what,
        id: id.clone(),
        problem,
    };
    let reservation: Reservation = serde_json::from_str(&row.get::<String, _>("reservation"))
        .map_err(|e| corrupt("reservation", e.to_string()))?;
    let outcome = row
        .get::<Option<String>, _>("outcome")
        .map(|o| serde_json::from_str::<Outcome>(&o))
        .transpose()
        .map_err(|e| corrupt("outcome", e.to_string()))?;
    let status_text: String = row.get("status");
    let status =
        CallStatus::parse(&status_text).ok_or_else(|| corrupt("status", status_text.clone()))?;
    Ok(CallRecord {
        status,
        reservation,
        outcome,
        transcript: Vec::new(),
        answered_by: row.get("answered_by"),
        recording: None,
        error: row.get("error"),
        created_at: parse_time(&id, "created_at", Some(row.get("created_at")))?.unwrap_or_default(),
        updated_at: parse_time(&id, "updated_at", Some(row.get("updated_at")))?.unwrap_or_default(),
        started_at: parse_time(&id, "started_at", row.get("started_at"))?,
        ended_at: parse_time(&id, "ended_at", row.get("ended_at"))?,
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reservation::{RequestRules, ReservationRequest};

    async fn store() -> (CallStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("sub/calls.db").display());
        (CallStore::open(&url).await.unwrap(), dir)
    }

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
            },
            Utc::now(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn status_callbacks_are_ordered_and_terminal_is_final() {
        let (s, _d) = store().await;
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
    }

    #[tokio::test]
    async fn transcript_and_outcome_are_kept_and_announced() {
        let (s, _d) = store().await;
        s.insert("CA2", &reservation(), "tok", CallStatus::Queued)
            .await
            .unwrap();
        let mut events = s.subscribe("CA2");
        s.apply_status("CA2", CallStatus::InProgress, Some(2))
            .await
            .unwrap();
        s.stream_started("CA2").await.unwrap();
        let line = TranscriptLine {
            speaker: Speaker::Callee,
            text: "Chez Demo, hello?".into(),
            at_ms: 300,
        };
        s.add_line("CA2", &line).await.unwrap();
        s.add_line(
            "CA2",
            &TranscriptLine {
                speaker: Speaker::Agent,
                text: "Hi!".into(),
                at_ms: 2000,
            },
        )
        .await
        .unwrap();
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
        assert_eq!(r.transcript[0], line);
        assert_eq!(r.outcome.unwrap().status, OutcomeStatus::Booked);
        let mut names = Vec::new();
        while let Ok(e) = events.try_recv() {
            names.push(e.name());
        }
        assert_eq!(
            names,
            vec![
                "status",
                "transcript",
                "transcript",
                "outcome",
                "status",
                "finished"
            ]
        );
        let list = s.list(10).await.unwrap();
        assert_eq!(list[0].id, "CA2");
        assert_eq!(s.call_token("CA2").await.unwrap().as_deref(), Some("tok"));
    }

    #[tokio::test]
    async fn callbacks_before_the_call_is_stored_are_applied_on_insert() {
        let (s, _d) = store().await;
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
    }

    #[tokio::test]
    async fn unanswered_calls_keep_twilios_reason_and_amd_is_readable() {
        let (s, _d) = store().await;
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

    #[tokio::test]
    async fn completed_without_a_stream_is_a_failure() {
        let (s, _d) = store().await;
        s.insert("CA3", &reservation(), "tok", CallStatus::Queued)
            .await
            .unwrap();
        s.apply_status("CA3", CallStatus::Completed, Some(3))
            .await
            .unwrap();
        let r = s.get("CA3").await.unwrap().unwrap();
        assert!(r.is_finished());
        assert_eq!(r.outcome.unwrap().status, OutcomeStatus::Failed);
    }
}
