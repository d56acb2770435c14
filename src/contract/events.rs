//! The live events of one call, as `GET /api/calls/{id}/events` sends them
//! (Server-Sent Events).
//!
//! Each event is an SSE frame: its `event:` line names the kind (`snapshot`,
//! `status`, `transcript`, `outcome`, `finished`) and its `data:` line is the
//! payload as JSON. [`LiveEvent`] is that pair as one Rust value; serde's
//! adjacently tagged form (`{"event": …, "data": …}`) is exactly the frame's
//! two parts, so the names are written once, here, by the enum.
//!
//! A follower gets `snapshot` first (the record so far), then `status`,
//! `transcript` and `outcome` as they happen, and `finished` (the final
//! record) last, after which the server closes the stream.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::{CallRecord, CallStatus, Outcome, TranscriptLine};

/// One event of a call's live stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub enum LiveEvent {
    /// The record as it is when the follower connects; always first.
    Snapshot(Box<CallRecord>),
    /// Twilio reported a new call status.
    Status(StatusChanged),
    /// A line of the conversation.
    Transcript(LineSpoken),
    /// The outcome was recorded (or changed).
    Outcome(OutcomeRecorded),
    /// The call is over: its final record. Always last.
    Finished(Box<CallRecord>),
}

/// Data of a `status` event: `{"type": "status", "status": "ringing"}`.
///
/// (The `type` key repeats the event name; it stays for the clients that
/// already read it.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "status")]
pub struct StatusChanged {
    /// The call's status now.
    pub status: CallStatus,
}

/// Data of a `transcript` event:
/// `{"type": "transcript", "line": {"speaker", "text", "at_ms"}, "seq": 3}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "transcript")]
pub struct LineSpoken {
    /// The line.
    pub line: TranscriptLine,
    /// Its position in the transcript, from 1. After a reconnection the
    /// server may send a line the follower already has; `seq` tells.
    pub seq: u64,
}

/// Data of an `outcome` event: `{"type": "outcome", "outcome": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "outcome")]
pub struct OutcomeRecorded {
    /// The outcome as recorded now (`in_progress` while the call is live).
    pub outcome: Outcome,
}

/// One SSE frame's two parts: the `event:` name and the `data:` JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseFrame {
    /// The event name.
    pub event: String,
    /// The payload, JSON on one line.
    pub data: String,
}

/// Why a frame is not a [`LiveEvent`].
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// An event this version does not know (a newer server): skip it.
    #[error("unknown live event '{0}'")]
    Unknown(String),
    /// A known event whose data does not read.
    #[error("unreadable '{event}' event: {problem}")]
    Malformed {
        /// The event name.
        event: String,
        /// What is wrong.
        problem: String,
    },
}

impl LiveEvent {
    /// Every event name the server sends, in the order a follower meets them.
    pub const NAMES: [&'static str; 5] =
        ["snapshot", "status", "transcript", "outcome", "finished"];

    /// The frame the server writes.
    pub fn to_frame(&self) -> Result<SseFrame, serde_json::Error> {
        let data = match self {
            LiveEvent::Snapshot(record) | LiveEvent::Finished(record) => {
                serde_json::to_string(record)
            }
            LiveEvent::Status(e) => serde_json::to_string(e),
            LiveEvent::Transcript(e) => serde_json::to_string(e),
            LiveEvent::Outcome(e) => serde_json::to_string(e),
        }?;
        Ok(SseFrame {
            event: self.name().to_string(),
            data,
        })
    }

    /// Read a frame the server wrote.
    pub fn from_frame(event: &str, data: &str) -> Result<LiveEvent, EventError> {
        if !Self::NAMES.contains(&event) {
            return Err(EventError::Unknown(event.to_string()));
        }
        let malformed = |problem: serde_json::Error| EventError::Malformed {
            event: event.to_string(),
            problem: problem.to_string(),
        };
        let data: Value = serde_json::from_str(data).map_err(malformed)?;
        serde_json::from_value(serde_json::json!({ "event": event, "data": data }))
            .map_err(malformed)
    }

    /// The event's name on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            LiveEvent::Snapshot(_) => "snapshot",
            LiveEvent::Status(_) => "status",
            LiveEvent::Transcript(_) => "transcript",
            LiveEvent::Outcome(_) => "outcome",
            LiveEvent::Finished(_) => "finished",
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::{OutcomeStatus, Speaker};

    /// A call record as the server sends it.
    pub(crate) fn record() -> CallRecord {
        serde_json::from_value(serde_json::json!({
            "id": "CA0123456789abcdef0123456789abcdef",
            "status": "in-progress",
            "reservation": {
                "restaurant_name": "Chez Demo", "restaurant_phone": "+12125550123", "party_size": 4,
                "slot": {"date": "2099-11-25", "time": "19:00:00", "timezone": "Europe/Paris"},
                "customer_name": "Alex Doe", "callback": null, "notes": "window seat", "flexibility": 30
            },
            "outcome": {"status": "in_progress"},
            "transcript": [{"speaker": "callee", "text": "Chez Demo, bonsoir.", "at_ms": 800}],
            "answered_by": "human", "error": null,
            "created_at": "2099-11-24T12:00:00Z", "updated_at": "2099-11-24T12:00:05Z",
            "started_at": "2099-11-24T12:00:03Z", "ended_at": null
        }))
        .expect("a valid record")
    }

    /// One event of each kind. `name()` has no wildcard arm, so a new kind
    /// cannot be added without the compiler pointing here.
    pub(crate) fn one_of_each() -> Vec<LiveEvent> {
        let mut finished = record();
        finished.status = CallStatus::Completed;
        finished.outcome = Some(Outcome::bare(OutcomeStatus::Unavailable, None));
        vec![
            LiveEvent::Snapshot(Box::new(record())),
            LiveEvent::Status(StatusChanged {
                status: CallStatus::Ringing,
            }),
            LiveEvent::Transcript(LineSpoken {
                line: TranscriptLine {
                    speaker: Speaker::Agent,
                    text: "Bonsoir, I am an automated assistant calling for Alex Doe.".into(),
                    at_ms: 2100,
                },
                seq: 2,
            }),
            LiveEvent::Outcome(OutcomeRecorded {
                outcome: Outcome::bare(OutcomeStatus::Unavailable, Some("full".into())),
            }),
            LiveEvent::Finished(Box::new(finished)),
        ]
    }

    #[test]
    fn every_event_survives_the_wire() {
        let events = one_of_each();
        let names: Vec<&str> = events.iter().map(LiveEvent::name).collect();
        assert_eq!(names, LiveEvent::NAMES, "one sample of every kind");
        for event in events {
            let frame = event.to_frame().unwrap();
            assert_eq!(frame.event, event.name());
            assert!(!frame.data.contains('\n'), "one data line");
            assert_eq!(
                LiveEvent::from_frame(&frame.event, &frame.data).unwrap(),
                event
            );
        }
    }

    #[test]
    fn the_data_keeps_the_shape_clients_already_read() {
        let frames: Vec<Value> = one_of_each()
            .iter()
            .map(|e| serde_json::from_str(&e.to_frame().unwrap().data).unwrap())
            .collect();
        assert_eq!(frames[0]["reservation"]["customer_name"], "Alex Doe");
        assert_eq!(
            frames[1],
            serde_json::json!({"type": "status", "status": "ringing"})
        );
        assert_eq!(frames[2]["type"], "transcript");
        assert_eq!(frames[2]["seq"], 2);
        assert_eq!(frames[2]["line"]["speaker"], "agent");
        assert_eq!(frames[2]["line"]["at_ms"], 2100);
        assert_eq!(frames[3]["type"], "outcome");
        assert_eq!(frames[3]["outcome"]["status"], "unavailable");
        assert_eq!(frames[4]["status"], "completed");
    }

    #[test]
    fn unknown_events_and_bad_data_are_told_apart() {
        assert!(matches!(
            LiveEvent::from_frame("message", "{}"),
            Err(EventError::Unknown(name)) if name == "message"
        ));
        assert!(matches!(
            LiveEvent::from_frame("status", r#"{"status": "on-the-moon"}"#),
            Err(EventError::Malformed { .. })
        ));
        assert!(matches!(
            LiveEvent::from_frame("transcript", "not json"),
            Err(EventError::Malformed { .. })
        ));
        // Data without the `type` key reads too (it only repeats the name).
        assert_eq!(
            LiveEvent::from_frame("status", r#"{"status": "busy"}"#).unwrap(),
            LiveEvent::Status(StatusChanged {
                status: CallStatus::Busy
            })
        );
    }
}
