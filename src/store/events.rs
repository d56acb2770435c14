//! Live events of calls, and the news that brings them to this process.
//!
//! Followers never receive data through memory: they hear *news* (a call
//! changed: its status, its outcome, who answered, line `seq` was written) and
//! read the store, which is the one source of truth. Where the news comes
//! from depends on the database: on PostgreSQL every change, made by any
//! instance, is announced by the database itself (`NOTIFY`, `news.rs`); on
//! SQLite this process announces its own changes, and followers also read
//! the store every second for changes other processes made.
//!
//! [`CallEvent`]s are what a follower is told; what it is sent over HTTP is
//! `contract::LiveEvent`, made from them by `server::api`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::domain::{CallStatus, Outcome, TranscriptLine};

/// A change to a call, as a follower is told it (the end of the call is
/// `follow::Followed::Finished`, with the final record).
#[derive(Debug, Clone, PartialEq)]
pub enum CallEvent {
    /// Twilio reported a new status.
    Status {
        /// The status.
        status: CallStatus,
    },
    /// A line of the conversation.
    Transcript {
        /// The line.
        line: TranscriptLine,
        /// Its position in the transcript, from 1 (lets a follower skip a
        /// line it already has).
        seq: u64,
    },
    /// The outcome was recorded (or changed).
    Outcome {
        /// The outcome.
        outcome: Outcome,
    },
}

impl CallEvent {
    /// A short label for logs and tests (the names on the wire are
    /// `contract::LiveEvent`'s).
    pub fn name(&self) -> &'static str {
        match self {
            CallEvent::Status { .. } => "status",
            CallEvent::Transcript { .. } => "transcript",
            CallEvent::Outcome { .. } => "outcome",
        }
    }
}

/// What changed on a call: a reference to read, never the data itself (a
/// PostgreSQL notification carries at most 8000 bytes, and the store is the
/// source of truth anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum News {
    /// The status changed.
    Status,
    /// The outcome changed.
    Outcome,
    /// Answering-machine detection reported who answered.
    AnsweredBy,
    /// Transcript line `seq` (from 1) was written.
    Line(u64),
    /// News may have been missed (the listening connection dropped and came
    /// back, or a follower fell behind): read everything again.
    Resync,
}

impl News {
    /// Parse the payload of a notification: `kind:seq:call_id`. Returns the
    /// call id and the news.
    pub fn parse(payload: &str) -> Option<(&str, News)> {
        let mut parts = payload.splitn(3, ':');
        let (kind, seq, id) = (parts.next()?, parts.next()?, parts.next()?);
        let news = match kind {
            "status" => News::Status,
            "outcome" => News::Outcome,
            "amd" => News::AnsweredBy,
            "line" => News::Line(seq.parse().ok()?),
            _ => return None,
        };
        (!id.is_empty()).then_some((id, news))
    }
}

/// How many news a slow follower may fall behind before it resyncs.
const CHANNEL_CAPACITY: usize = 256;

/// One broadcast channel of news per followed call (cheap to clone).
#[derive(Clone, Default)]
pub struct EventHub {
    channels: Arc<Mutex<HashMap<String, broadcast::Sender<News>>>>,
}

impl EventHub {
    /// Hear the news of call `id` from now on.
    pub fn subscribe(&self, id: &str) -> Subscription {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        let rx = map
            .entry(id.to_string())
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe();
        Subscription {
            rx,
            hub: self.clone(),
            id: id.to_string(),
        }
    }

    /// Tell the followers of `id` (nobody listening is fine, and cheap).
    pub fn publish(&self, id: &str, news: News) {
        let map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(id) {
            let _ = tx.send(news);
        }
    }

    /// Tell every follower that news may have been missed.
    pub fn resync_all(&self) {
        let map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        for tx in map.values() {
            let _ = tx.send(News::Resync);
        }
    }

    /// Calls someone in this process follows (for tests and metrics).
    pub fn followed(&self) -> usize {
        self.channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    fn unsubscribed(&self, id: &str) {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(id).is_some_and(|tx| tx.receiver_count() == 0) {
            map.remove(id);
        }
    }
}

/// The news of one call; the hub forgets the call when its last
/// subscription is dropped.
pub struct Subscription {
    rx: broadcast::Receiver<News>,
    hub: EventHub,
    id: String,
}

impl Subscription {
    /// The next news. A follower that fell behind gets [`News::Resync`].
    pub async fn recv(&mut self) -> News {
        match self.rx.recv().await {
            Ok(news) => news,
            Err(broadcast::error::RecvError::Lagged(_)) => News::Resync,
            // The hub holds the sender while a subscription exists.
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // Drop our receiver first so the count the hub sees excludes it.
        let (_, rx) = broadcast::channel(1);
        drop(std::mem::replace(&mut self.rx, rx));
        self.hub.unsubscribed(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_references() {
        assert_eq!(News::parse("line:12:CA1"), Some(("CA1", News::Line(12))));
        assert_eq!(News::parse("status:0:CA:x"), Some(("CA:x", News::Status)));
        assert_eq!(News::parse("amd:0:CA1"), Some(("CA1", News::AnsweredBy)));
        assert_eq!(News::parse("outcome:0:CA1"), Some(("CA1", News::Outcome)));
        for bad in ["", "line:x:CA1", "gossip:0:CA1", "status:0:", "status"] {
            assert_eq!(News::parse(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn the_hub_forgets_calls_nobody_follows() {
        let hub = EventHub::default();
        let mut a = hub.subscribe("CA1");
        let b = hub.subscribe("CA1");
        hub.publish("CA1", News::Line(1));
        hub.publish("CA2", News::Status); // nobody follows: dropped
        assert_eq!(a.recv().await, News::Line(1));
        drop(b);
        assert_eq!(hub.followed(), 1);
        hub.resync_all();
        assert_eq!(a.recv().await, News::Resync);
        drop(a);
        assert_eq!(hub.followed(), 0);
    }
}
