//! Where a call's next stream finds the session that holds its model.
//!
//! A key press through Twilio ends the call's Media Stream and opens a new
//! one (`<Play digits>`, then `<Connect><Stream>`). When the new stream lands
//! on the instance whose session holds the call's model session, that session
//! must get it: the model keeps its memory and nothing is re-sent. Sessions
//! waiting for their next stream register here, keyed by CallSid; the media
//! stream handler hands a continuation stream to the waiting session, or,
//! when none waits here (the stream reached another instance), runs the call
//! on from the store (`session.rs`).
//!
//! In-process only, one per [`crate::server::Application`]: instances share
//! nothing but the database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::ws::WebSocket;
use tokio::sync::oneshot;

use crate::twilio::stream as ts;

/// A call's new Media Stream, after its `start`.
#[derive(Debug)]
pub struct NewStream {
    /// Its `start` (new `streamSid`, the continuation parameters).
    pub start: ts::Start,
    /// Its socket, whole: the session reads and writes it from one task.
    pub socket: WebSocket,
}

#[derive(Debug)]
struct Waiting {
    stream_number: u32,
    deliver: oneshot::Sender<Box<NewStream>>,
}

/// The sessions of this instance waiting for their call's next stream.
#[derive(Clone, Debug, Default)]
pub struct Rejoins {
    waiting: Arc<Mutex<HashMap<String, Waiting>>>,
}

/// A session's place in [`Rejoins`]: receives the stream; leaves the
/// registry when dropped.
#[derive(Debug)]
pub struct Expected {
    rejoins: Rejoins,
    call_sid: String,
    stream_number: u32,
    /// Resolves with the new stream when it reaches this instance.
    pub arrival: oneshot::Receiver<Box<NewStream>>,
}

impl Drop for Expected {
    fn drop(&mut self) {
        let mut waiting = self.rejoins.lock();
        if waiting
            .get(&self.call_sid)
            .is_some_and(|w| w.stream_number == self.stream_number)
        {
            waiting.remove(&self.call_sid);
        }
    }
}

impl Rejoins {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiting>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Register the session of `call_sid` as waiting for its stream number
    /// `stream_number` (before the update that opens it is sent, so a fast
    /// stream cannot miss it).
    pub fn expect(&self, call_sid: &str, stream_number: u32) -> Expected {
        let (deliver, arrival) = oneshot::channel();
        self.lock().insert(
            call_sid.to_string(),
            Waiting {
                stream_number,
                deliver,
            },
        );
        Expected {
            rejoins: self.clone(),
            call_sid: call_sid.to_string(),
            stream_number,
            arrival,
        }
    }

    /// Give stream number `stream_number` of `call_sid` to the session
    /// waiting for it here; `Err` gives the stream back when no session here
    /// waits for that stream (another instance holds the call, or the stream
    /// is stale).
    pub fn hand_over(
        &self,
        call_sid: &str,
        stream_number: u32,
        stream: Box<NewStream>,
    ) -> Result<(), Box<NewStream>> {
        let waiting = {
            let mut waiting = self.lock();
            match waiting.get(call_sid) {
                Some(w) if w.stream_number == stream_number => waiting.remove(call_sid),
                _ => None,
            }
        };
        match waiting {
            Some(w) => w.deliver.send(stream),
            None => Err(stream),
        }
    }
}
