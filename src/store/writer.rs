//! The writer a live call writes through: transcript lines, the outcome and
//! errors go into a channel (the call never waits), and one task per call
//! applies them in order.
//!
//! When the database is away (restarted, a failover, the network), a write
//! is retried until it succeeds, and the ones behind it wait their turn: once
//! the database is back, everything said is written, in the order it was
//! said. Retrying is safe because the writer numbers the call's lines itself
//! and writing line `n` twice changes nothing ([`CallStore::put_line`]).

use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{info, warn, Instrument};

use super::{CallStore, StoreError};
use crate::domain::{Outcome, OutcomeWrite, TranscriptLine};

/// How long a write is retried while the database is away before it is
/// given up (with an error in the log naming what was lost).
pub const RETRY_WRITES_FOR: Duration = Duration::from_secs(300);
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(2);

/// One write of a live call.
#[derive(Debug, Clone, PartialEq)]
pub enum CallWrite {
    /// A transcript line, appended after the previous one.
    Line(TranscriptLine),
    /// The outcome, as a report or as a fallback.
    Outcome(Outcome, OutcomeWrite),
    /// A problem worth telling the person.
    Error(String),
}

/// Start the writer of call `call_sid`. Send writes (anything that converts
/// to a [`CallWrite`], such as the call core's) to the returned channel;
/// drop it and await the handle to know they are all written.
pub fn spawn_writer<W>(
    store: CallStore,
    call_sid: String,
) -> (mpsc::UnboundedSender<W>, tokio::task::JoinHandle<()>)
where
    W: Into<CallWrite> + Send + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<W>();
    let handle = tokio::spawn(
        async move {
            let mut writer = Writer {
                store,
                call_sid,
                next_line: None,
            };
            while let Some(write) = rx.recv().await {
                writer.write(write.into(), rx.len()).await;
            }
        }
        .in_current_span(),
    );
    (tx, handle)
}

struct Writer {
    store: CallStore,
    call_sid: String,
    /// The position of the next line; read from the store before the first.
    next_line: Option<u64>,
}

impl Writer {
    /// Apply `write`, retrying while the database is away. `queued`: writes
    /// waiting behind it (for the log).
    async fn write(&mut self, write: CallWrite, queued: usize) {
        let started = tokio::time::Instant::now();
        let mut pause = FIRST_RETRY;
        let mut attempts = 0u32;
        loop {
            match self.apply(&write).await {
                Ok(()) => {
                    if attempts > 0 {
                        info!(
                            attempts,
                            delayed_ms = started.elapsed().as_millis() as u64,
                            "call store reachable again; delayed writes go through in order"
                        );
                    }
                    return;
                }
                Err(e) if e.is_transient() && started.elapsed() < RETRY_WRITES_FOR => {
                    if attempts == 0 {
                        warn!(error = %e, queued, "call store unreachable; the call goes on and its writes wait");
                    }
                    attempts += 1;
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_RETRY);
                }
                Err(e) => {
                    warn!(error = %e, lost = ?write, "call store write failed and was dropped");
                    return;
                }
            }
        }
    }

    async fn apply(&mut self, write: &CallWrite) -> Result<(), StoreError> {
        let store = &self.store;
        let id = self.call_sid.as_str();
        match write {
            CallWrite::Line(line) => {
                let seq = match self.next_line {
                    Some(seq) => seq,
                    None => store.last_line(id).await? + 1,
                };
                self.next_line = Some(seq);
                if !store.put_line(id, seq, line).await? {
                    // Someone else wrote line `seq` (never expected): append ours after theirs.
                    warn!(
                        seq,
                        "a transcript line was taken by another writer; appending"
                    );
                    let written = store.add_line(id, line).await?;
                    self.next_line = Some(written + 1);
                    return Ok(());
                }
                self.next_line = Some(seq + 1);
                Ok(())
            }
            CallWrite::Outcome(outcome, how) => {
                store.set_outcome(id, outcome, *how).await.map(|_| ())
            }
            CallWrite::Error(e) => store.set_error(id, e).await,
        }
    }
}

impl CallStore {
    /// The position of call `id`'s last transcript line (0: none).
    pub async fn last_line(&self, id: &str) -> Result<u64, StoreError> {
        let seq: Option<i64> = super::db::with_db!(&self.db, pool => {
            sqlx::query_scalar("SELECT MAX(seq) FROM transcript_lines WHERE call_id = $1")
                .bind(id)
                .fetch_one(pool)
                .await
        })
        .map_err(super::db("reading a transcript"))?;
        Ok(seq.unwrap_or(0).max(0) as u64)
    }
}
