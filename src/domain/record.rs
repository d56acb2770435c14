//! The call record: what outlives a call in the call store.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::outcome::Outcome;
use super::reservation::Reservation;

/// Twilio's call status, plus our own `queued` before Twilio reports anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallStatus {
    /// Accepted by Twilio, waiting to be dialled.
    Queued,
    /// Twilio started dialling.
    Initiated,
    /// The phone rings.
    Ringing,
    /// Answered; the conversation is on.
    InProgress,
    /// Answered and ended.
    Completed,
    /// Busy signal.
    Busy,
    /// Nobody answered.
    NoAnswer,
    /// Twilio could not place it.
    Failed,
    /// We cancelled it before it was answered.
    Canceled,
}

impl CallStatus {
    /// Twilio's wire name (`in-progress`).
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Queued => "queued",
            CallStatus::Initiated => "initiated",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in-progress",
            CallStatus::Completed => "completed",
            CallStatus::Busy => "busy",
            CallStatus::NoAnswer => "no-answer",
            CallStatus::Failed => "failed",
            CallStatus::Canceled => "canceled",
        }
    }

    /// Parse Twilio's `CallStatus` value.
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }

    /// A terminal status is final: nothing may overwrite it.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            CallStatus::Completed
                | CallStatus::Busy
                | CallStatus::NoAnswer
                | CallStatus::Failed
                | CallStatus::Canceled
        )
    }
}

/// Who said a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    /// Our AI agent.
    Agent,
    /// Whoever answered at the restaurant.
    Callee,
}

/// One line of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptLine {
    /// Who spoke.
    pub speaker: Speaker,
    /// What was said (for the agent: what the callee actually heard, when cut off).
    pub text: String,
    /// Milliseconds since the media stream started, when the line began.
    pub at_ms: u64,
}

/// Everything known about one call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// Twilio's CallSid.
    pub id: String,
    /// Latest call status.
    pub status: CallStatus,
    /// What was asked for.
    pub reservation: Reservation,
    /// How it ended (`in_progress` while live).
    pub outcome: Option<Outcome>,
    /// The conversation, in order.
    pub transcript: Vec<TranscriptLine>,
    /// Who answered, from answering-machine detection, when known.
    pub answered_by: Option<String>,
    /// Where the call's recording is on the server (`--record`), when there is
    /// one; served at `GET /api/calls/{id}/recording`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<String>,
    /// A problem worth telling the person (Twilio's refusal, a dropped model connection).
    pub error: Option<String>,
    /// When the call was placed.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// When the media stream started (the callee answered and audio flowed).
    pub started_at: Option<DateTime<Utc>>,
    /// When the call reached a terminal status.
    pub ended_at: Option<DateTime<Utc>>,
}

impl CallRecord {
    /// Finished: terminal status and an outcome (or a terminal status that
    /// never had a conversation).
    pub fn is_finished(&self) -> bool {
        self.status.is_terminal()
            && self.outcome.as_ref().map(|o| o.status)
                != Some(crate::domain::OutcomeStatus::InProgress)
            && self.outcome.is_some()
    }
}

/// One row of `reservoice calls`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallSummary {
    /// CallSid.
    pub id: String,
    /// When placed.
    pub created_at: DateTime<Utc>,
    /// Restaurant name.
    pub restaurant: String,
    /// Restaurant number.
    pub to: String,
    /// Latest call status.
    pub status: CallStatus,
    /// Outcome status, if any.
    pub outcome: Option<crate::domain::OutcomeStatus>,
}
