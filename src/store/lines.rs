//! Transcript lines of all of an instance's live calls, written together.
//!
//! Every call writes a line per utterance (its own and the agent's): at 500
//! calls, 150 a second, and each was a statement of its own. On SQLite a
//! statement is a round trip to sqlx's connection thread (two thread
//! switches on a busy core), on PostgreSQL a round trip on the network and
//! a commit: the largest cost of a live call after its sockets
//! (docs/PERFORMANCE.md). So [`CallStore::put_line`] queues the line, and
//! one task writes what is queued in one statement, at once when it is
//! idle and then at most once every [`LINE_BATCH_WINDOW`] while lines keep
//! coming: a line waits at most that long (and the store's followers hear
//! of it that much later), nobody hears the difference.
//!
//! Each line keeps its meaning: written once whatever the retries
//! (`ON CONFLICT DO NOTHING`), `false` when another line holds its place.
//! If the batch fails (the database is away, or one line cannot be
//! written), its lines are written one by one, so each gets its own answer
//! and its writer retries as before.

use std::collections::HashSet;
use std::time::Duration;

use tokio::sync::oneshot;
use tracing::{debug, Instrument};

use super::db::with_db;
use super::{db, speaker_name, CallStore, News, StoreError};
use crate::domain::TranscriptLine;

/// While lines keep coming, a batch is written at most this often.
pub const LINE_BATCH_WINDOW: Duration = Duration::from_millis(50);
/// Most lines per statement (five parameters each: well inside SQLite's
/// 32 766 and PostgreSQL's 65 535).
const MAX_BATCH: usize = 400;

/// A line waiting for its batch.
struct Queued {
    call_id: String,
    seq: u64,
    line: TranscriptLine,
    done: oneshot::Sender<Result<bool, StoreError>>,
}

/// The lines waiting, and whether the task writing them runs.
#[derive(Default)]
pub(crate) struct LineQueue {
    queued: Vec<Queued>,
    writing: bool,
    /// Statements the batches took (what a test can count).
    statements: u64,
}

impl std::fmt::Debug for LineQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineQueue")
            .field("queued", &self.queued.len())
            .field("writing", &self.writing)
            .finish()
    }
}

impl CallStore {
    /// Write transcript line `seq` (from 1) of call `id` unless it is
    /// already there: writing the same line twice (a retry after a lost
    /// answer) changes nothing. Returns `false` when a different line holds
    /// `seq`. Written with the other calls' lines of the moment, in one
    /// statement (the module's doc).
    pub async fn put_line(
        &self,
        id: &str,
        seq: u64,
        line: &TranscriptLine,
    ) -> Result<bool, StoreError> {
        let (done, answer) = oneshot::channel();
        let start = {
            let mut queue = self.line_queue();
            queue.queued.push(Queued {
                call_id: id.to_string(),
                seq,
                line: line.clone(),
                done,
            });
            !std::mem::replace(&mut queue.writing, true)
        };
        if start {
            let store = self.clone();
            self.shared
                .tasks
                .spawn(async move { store.write_queued_lines().await }.in_current_span());
        }
        match answer.await {
            Ok(written) => written,
            // The writing task is gone (the runtime is shutting down).
            Err(_) => self.put_one_line(id, seq, line).await,
        }
    }

    /// Statements the queued transcript lines took so far.
    pub fn line_statements(&self) -> u64 {
        self.line_queue().statements
    }

    fn line_queue(&self) -> std::sync::MutexGuard<'_, LineQueue> {
        super::lock(&self.shared.lines)
    }

    /// Write what is queued, then again once [`LINE_BATCH_WINDOW`] has
    /// passed, until nothing is.
    async fn write_queued_lines(self) {
        loop {
            let mut queued = {
                let mut queue = self.line_queue();
                if queue.queued.is_empty() {
                    queue.writing = false;
                    return;
                }
                std::mem::take(&mut queue.queued)
            };
            while !queued.is_empty() {
                let rest = queued.split_off(queued.len().min(MAX_BATCH));
                self.write_batch(queued).await;
                queued = rest;
            }
            tokio::time::sleep(LINE_BATCH_WINDOW).await;
        }
    }

    async fn write_batch(&self, batch: Vec<Queued>) {
        self.line_queue().statements += 1;
        let mut sql = String::from(
            "INSERT INTO transcript_lines (call_id, seq, speaker, text, at_ms) VALUES ",
        );
        for n in 0..batch.len() {
            if n > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            super::push_placeholders(&mut sql, 5 * n + 1, 5);
            sql.push(')');
        }
        sql.push_str(" ON CONFLICT (call_id, seq) DO NOTHING RETURNING call_id, seq");
        let inserted: Result<Vec<(String, i64)>, _> = with_db!(&self.db, pool => {
            let mut query = sqlx::query_as(&sql);
            for q in &batch {
                query = query
                    .bind(&q.call_id)
                    .bind(q.seq as i64)
                    .bind(speaker_name(q.line.speaker))
                    .bind(&q.line.text)
                    .bind(q.line.at_ms as i64);
            }
            query.fetch_all(pool).await
        });
        let mut inserted: HashSet<(String, u64)> = match inserted {
            Ok(rows) => rows
                .into_iter()
                .map(|(id, seq)| (id, seq.max(0) as u64))
                .collect(),
            Err(e) => {
                debug!(error = %e, lines = batch.len(), "a batch of transcript lines failed; writing them one by one");
                for q in batch {
                    let written = self.put_one_line(&q.call_id, q.seq, &q.line).await;
                    let _ = q.done.send(written);
                }
                return;
            }
        };
        for q in batch {
            let written = if inserted.remove(&(q.call_id.clone(), q.seq)) {
                self.announce(&q.call_id, News::Line(q.seq));
                Ok(true)
            } else {
                self.holds_line(&q.call_id, q.seq, &q.line).await
            };
            let _ = q.done.send(written);
        }
    }

    /// [`CallStore::put_line`] in a statement of its own.
    async fn put_one_line(
        &self,
        id: &str,
        seq: u64,
        line: &TranscriptLine,
    ) -> Result<bool, StoreError> {
        let inserted = with_db!(&self.db, pool => {
            sqlx::query("INSERT INTO transcript_lines (call_id, seq, speaker, text, at_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (call_id, seq) DO NOTHING")
                .bind(id)
                .bind(seq as i64)
                .bind(speaker_name(line.speaker))
                .bind(&line.text)
                .bind(line.at_ms as i64)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db("adding a transcript line"))?
            > 0;
        if inserted {
            self.announce(id, News::Line(seq));
            return Ok(true);
        }
        self.holds_line(id, seq, line).await
    }

    /// Whether line `seq` of call `id` is `line` (it was there already).
    async fn holds_line(
        &self,
        id: &str,
        seq: u64,
        line: &TranscriptLine,
    ) -> Result<bool, StoreError> {
        let held = self.lines_after(id, seq.saturating_sub(1)).await?;
        Ok(held.first().is_some_and(|(s, l)| *s == seq && l == line))
    }
}
