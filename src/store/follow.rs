//! Following one call live, whichever instance handles it: the record so
//! far, then every change once and in order, then the final record.
//!
//! A follower hears news (see `events.rs`) and reads what it lacks from the
//! store: lines after the last `seq` it sent, and the call row when its status
//! or outcome changed. It never trusts memory for data, so a line written by
//! another instance, or announced while the listening connection was down,
//! arrives exactly like one written here. On SQLite, where other processes
//! cannot announce their changes, it also reads the store every second.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::mpsc;
use tracing::{debug, Instrument};

use super::events::{CallEvent, News, Subscription};
use super::{CallStore, StoreError};
use crate::domain::{CallRecord, CallStatus, Outcome};

/// How often a follower on SQLite reads the store for changes made by
/// another process.
pub const SQLITE_POLL: Duration = Duration::from_secs(1);
/// After a failed read, wait this long before trying again.
const RETRY_READ: Duration = Duration::from_millis(500);

/// What a follower of a call receives, in this order: one `Snapshot`, any
/// number of `Event`s, and `Finished` when the record is final.
#[derive(Debug, Clone, PartialEq)]
pub enum Followed {
    /// The record as it was when following began.
    Snapshot(CallRecord),
    /// A change since.
    Event(CallEvent),
    /// The final record; nothing follows.
    Finished(CallRecord),
}

/// What one follower has been sent so far.
struct Sent {
    lines: u64,
    status: CallStatus,
    outcome: Option<Outcome>,
}

impl CallStore {
    /// Follow call `id` live; `None` when there is no such call. The stream
    /// ends after [`Followed::Finished`], or when dropped.
    pub async fn follow(
        &self,
        id: &str,
    ) -> Result<Option<impl Stream<Item = Followed> + Send + 'static>, StoreError> {
        // Subscribe before reading, so nothing falls between the two.
        let news = self.hub.subscribe(id);
        let Some(record) = self.get(id).await? else {
            return Ok(None);
        };
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(follow_call(self.clone(), id.to_string(), record, news, tx));
        Ok(Some(futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|f| (f, rx)) },
        )))
    }
}

async fn follow_call(
    store: CallStore,
    id: String,
    record: CallRecord,
    mut news: Subscription,
    tx: mpsc::Sender<Followed>,
) {
    let mut sent = Sent {
        lines: record.transcript.len() as u64,
        status: record.status,
        outcome: record.outcome.clone(),
    };
    let finished = record.is_finished();
    if tx.send(Followed::Snapshot(record.clone())).await.is_err() {
        return;
    }
    if finished {
        let _ = tx.send(Followed::Finished(record)).await;
        return;
    }
    let mut poll = store.polls_for_news().then(|| {
        let mut t = tokio::time::interval(SQLITE_POLL);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let mut pending = Some(News::Resync); // read once: news may predate the snapshot
    loop {
        let heard = match pending.take() {
            Some(n) => n,
            None => tokio::select! {
                n = news.recv() => n,
                _ = tick(&mut poll) => News::Resync,
                _ = tx.closed() => return,
            },
        };
        match catch_up(&store, &id, heard, &mut sent).await {
            Ok((events, done)) => {
                for event in events {
                    if tx.send(Followed::Event(event)).await.is_err() {
                        return;
                    }
                }
                if let Some(record) = done {
                    let _ = tx.send(Followed::Finished(record)).await;
                    return;
                }
            }
            Err(e) => {
                debug!(call_sid = %id, error = %e, "cannot read the call yet; trying again");
                tokio::select! {
                    _ = tokio::time::sleep(RETRY_READ) => {}
                    _ = tx.closed() => return,
                }
                pending = Some(News::Resync);
            }
        }
    }
}

async fn tick(poll: &mut Option<tokio::time::Interval>) {
    match poll {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Read what `news` says changed and `sent` lacks: the events to send, and
/// the final record once the call is finished.
async fn catch_up(
    store: &CallStore,
    id: &str,
    news: News,
    sent: &mut Sent,
) -> Result<(Vec<CallEvent>, Option<CallRecord>), StoreError> {
    let mut events = Vec::new();
    let read_row = !matches!(news, News::Line(_));
    let read_lines = match news {
        News::Line(seq) => seq > sent.lines,
        News::Resync | News::Status | News::Outcome => true,
        News::AnsweredBy => false,
    };
    // The row first: a finished row is final, so lines read after it are all there are.
    let row = if read_row {
        store.record_without_transcript(id).await?
    } else {
        None
    };
    if let Some(row) = &row {
        if row.status != sent.status {
            sent.status = row.status;
            events.push(CallEvent::Status { status: row.status });
        }
    }
    if read_lines {
        for (seq, line) in store.lines_after(id, sent.lines).await? {
            sent.lines = seq;
            events.push(CallEvent::Transcript { line, seq });
        }
    }
    let Some(row) = row else {
        return Ok((events, None));
    };
    if row.outcome.is_some() && row.outcome != sent.outcome {
        sent.outcome = row.outcome.clone();
        if let Some(outcome) = &row.outcome {
            events.push(CallEvent::Outcome {
                outcome: outcome.clone(),
            });
        }
    }
    if row.is_finished() {
        if let Some(record) = store.get(id).await? {
            // Lines written between the two reads: sent as events too.
            for (ix, line) in record
                .transcript
                .iter()
                .enumerate()
                .skip(sent.lines as usize)
            {
                events.push(CallEvent::Transcript {
                    line: line.clone(),
                    seq: ix as u64 + 1,
                });
            }
            sent.lines = sent.lines.max(record.transcript.len() as u64);
            return Ok((events, Some(record)));
        }
    }
    Ok((events, None))
}

/// How often, on SQLite, the calls of a process waiting for their
/// answering-machine verdict are read (the callback may reach another
/// process, whose news this one does not hear).
pub const SQLITE_VERDICT_POLL: Duration = Duration::from_millis(500);
/// Most calls one verdict read names (SQLite allows 32 766 parameters).
const VERDICT_READ_BATCH: usize = 500;

/// The calls of this process waiting for a verdict on SQLite: read together,
/// one statement per [`SQLITE_VERDICT_POLL`] for all of them, by one task
/// that runs while any waits. (It was one statement per call per period:
/// at 500 calls, 1 000 statements a second on SQLite's threads, the largest
/// cost of a live call in the profile, docs/PERFORMANCE.md.)
#[derive(Debug, Default)]
pub(crate) struct AwaitedVerdicts {
    /// Each waiting call, with how many wait for it.
    calls: HashMap<String, usize>,
    /// Whether the reading task is running.
    reading: bool,
    /// Statements the reading task ran (what a test can count).
    reads: u64,
}

/// A call's place among the awaited verdicts, given up when dropped.
struct AwaitingVerdict {
    store: CallStore,
    id: String,
}

impl Drop for AwaitingVerdict {
    fn drop(&mut self) {
        let mut awaited = self.store.awaited_verdicts();
        if let Some(n) = awaited.calls.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                awaited.calls.remove(&self.id);
            }
        }
    }
}

impl CallStore {
    /// Wait for call `id`'s answering-machine verdict, whichever instance
    /// received Twilio's callback;
    /// `None` if none came within `give_up`. On PostgreSQL the verdict's
    /// notification wakes the waiter; on SQLite this process's news does,
    /// and the process reads all its waiting calls' verdicts every
    /// [`SQLITE_VERDICT_POLL`] for those another process wrote.
    pub async fn answered_by_verdict(
        &self,
        id: &str,
        give_up: Duration,
    ) -> Option<crate::domain::AnsweredBy> {
        let deadline = tokio::time::Instant::now() + give_up;
        let mut news = self.hub.subscribe(id);
        let _awaiting = self.polls_for_news().then(|| self.await_verdict(id));
        let mut read = true;
        loop {
            if read {
                match self.answered_by(id).await {
                    Ok(Some(who)) => return Some(who),
                    Ok(None) => {}
                    Err(e) => debug!(call_sid = id, error = %e, "cannot read who answered yet"),
                }
            }
            read = tokio::select! {
                n = news.recv() => matches!(n, News::AnsweredBy | News::Resync),
                _ = tokio::time::sleep_until(deadline) => return None,
            };
        }
    }

    pub(crate) fn awaited_verdicts(&self) -> std::sync::MutexGuard<'_, AwaitedVerdicts> {
        super::lock(&self.shared.verdicts)
    }

    /// Statements this process ran to read awaited verdicts (SQLite).
    pub fn verdict_reads(&self) -> u64 {
        self.awaited_verdicts().reads
    }

    /// Put call `id` among the awaited verdicts (starting the reader if it
    /// is not running) until the returned guard is dropped.
    fn await_verdict(&self, id: &str) -> AwaitingVerdict {
        let start = {
            let mut awaited = self.awaited_verdicts();
            *awaited.calls.entry(id.to_string()).or_insert(0) += 1;
            !std::mem::replace(&mut awaited.reading, true)
        };
        if start {
            let store = self.clone();
            tokio::spawn(async move { store.read_verdicts().await }.in_current_span());
        }
        AwaitingVerdict {
            store: self.clone(),
            id: id.to_string(),
        }
    }

    /// Every [`SQLITE_VERDICT_POLL`], read which awaited calls have a verdict
    /// and tell their waiters; stop once none waits (or the store closed).
    async fn read_verdicts(self) {
        let mut every = tokio::time::interval(SQLITE_VERDICT_POLL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await; // the first tick is now: each waiter read once itself
        loop {
            let stopped = tokio::select! {
                _ = every.tick() => false,
                _ = self.shared.stop.cancelled() => true,
            };
            let ids: Vec<String> = {
                let mut awaited = self.awaited_verdicts();
                if stopped || awaited.calls.is_empty() {
                    awaited.reading = false;
                    return;
                }
                awaited.calls.keys().cloned().collect()
            };
            for batch in ids.chunks(VERDICT_READ_BATCH) {
                self.awaited_verdicts().reads += 1;
                match self.calls_with_a_verdict(batch).await {
                    Ok(found) => {
                        for id in found {
                            self.hub.publish(&id, News::AnsweredBy);
                        }
                    }
                    Err(e) => debug!(error = %e, "cannot read the awaited verdicts yet"),
                }
            }
        }
    }
}
