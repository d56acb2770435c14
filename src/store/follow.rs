//! Following one call live, whichever instance handles it: the record so
//! far, then every change once and in order, then the final record.
//!
//! A follower hears news (see `events.rs`) and reads what it lacks from the
//! store: lines after the last `seq` it sent, and the call row when its status
//! or outcome changed. It never trusts memory for data, so a line written by
//! another instance, or announced while the listening connection was down,
//! arrives exactly like one written here. On SQLite, where other processes
//! cannot announce their changes, it also reads the store every second.

use std::time::Duration;

use futures_util::Stream;
use tokio::sync::mpsc;
use tracing::debug;

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

/// How often a session on SQLite reads the answering-machine verdict (the
/// callback may reach another process).
pub const SQLITE_VERDICT_POLL: Duration = Duration::from_millis(500);

impl CallStore {
    /// Wait for call `id`'s answering-machine verdict, whichever instance
    /// received Twilio's callback;
    /// `None` if none came within `give_up`. On PostgreSQL the verdict's
    /// notification wakes the waiter; on SQLite it reads the store every
    /// [`SQLITE_VERDICT_POLL`].
    pub async fn answered_by_verdict(
        &self,
        id: &str,
        give_up: Duration,
    ) -> Option<crate::domain::AnsweredBy> {
        let deadline = tokio::time::Instant::now() + give_up;
        let mut news = self.hub.subscribe(id);
        let mut poll = self.polls_for_news().then(|| {
            let mut t = tokio::time::interval(SQLITE_VERDICT_POLL);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
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
                _ = tick(&mut poll) => true,
                _ = tokio::time::sleep_until(deadline) => return None,
            };
        }
    }
}
