//! Live events of calls, fanned out to followers (SSE) in this process.
//!
//! These are the store's in-process notices of a change; what a follower is
//! sent over HTTP is `contract::LiveEvent`, made from them by `server::api`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::domain::{CallStatus, Outcome, TranscriptLine};

/// Something that happened on a call, as the store announces it.
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
    /// The call is over and its record final.
    Finished,
}

impl CallEvent {
    /// A short label for logs and tests (the names on the wire are
    /// `contract::LiveEvent`'s).
    pub fn name(&self) -> &'static str {
        match self {
            CallEvent::Status { .. } => "status",
            CallEvent::Transcript { .. } => "transcript",
            CallEvent::Outcome { .. } => "outcome",
            CallEvent::Finished => "finished",
        }
    }
}

/// One broadcast channel per followed call.
#[derive(Clone, Default)]
pub struct EventHub {
    channels: Arc<Mutex<HashMap<String, broadcast::Sender<CallEvent>>>>,
}

impl EventHub {
    fn sender(&self, id: &str) -> broadcast::Sender<CallEvent> {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id.to_string())
            .or_insert_with(|| broadcast::channel(256).0)
            .clone()
    }

    /// Follow `id` from now on.
    pub fn subscribe(&self, id: &str) -> broadcast::Receiver<CallEvent> {
        self.sender(id).subscribe()
    }

    /// Tell the followers of `id` (nobody listening is fine).
    pub fn publish(&self, id: &str, event: CallEvent) {
        let finished = event == CallEvent::Finished;
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(id) {
            let _ = tx.send(event);
            if finished || tx.receiver_count() == 0 {
                map.remove(id);
            }
        }
    }
}
