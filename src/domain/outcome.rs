//! How a call ended, in the structure the person gets back.

use std::fmt;

use chrono::{NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};

/// The kind of ending. The first seven are what the agent may report through
/// `finish_call`; `no_answer`, `busy` come from Twilio; `in_progress` is the
/// state of a call still going on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    /// The table is booked as requested.
    Booked,
    /// Another slot inside the person's window is booked.
    AlternativeBooked,
    /// Only slots outside the window were offered; none booked.
    DeclinedAlternative,
    /// Nothing available.
    Unavailable,
    /// The restaurant does not take reservations.
    NoReservationsTaken,
    /// An answering machine took the call.
    Voicemail,
    /// Nobody answered.
    NoAnswer,
    /// The line was busy.
    Busy,
    /// The call could not be completed (technical trouble, refused, dropped).
    Failed,
    /// Still going on.
    InProgress,
}

impl OutcomeStatus {
    /// The statuses the agent itself may report with `finish_call`.
    pub const AGENT_REPORTABLE: [OutcomeStatus; 7] = [
        OutcomeStatus::Booked,
        OutcomeStatus::AlternativeBooked,
        OutcomeStatus::DeclinedAlternative,
        OutcomeStatus::Unavailable,
        OutcomeStatus::NoReservationsTaken,
        OutcomeStatus::Voicemail,
        OutcomeStatus::Failed,
    ];

    /// The wire name (`alternative_booked`).
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeStatus::Booked => "booked",
            OutcomeStatus::AlternativeBooked => "alternative_booked",
            OutcomeStatus::DeclinedAlternative => "declined_alternative",
            OutcomeStatus::Unavailable => "unavailable",
            OutcomeStatus::NoReservationsTaken => "no_reservations_taken",
            OutcomeStatus::Voicemail => "voicemail",
            OutcomeStatus::NoAnswer => "no_answer",
            OutcomeStatus::Busy => "busy",
            OutcomeStatus::Failed => "failed",
            OutcomeStatus::InProgress => "in_progress",
        }
    }

    /// Parse a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }

    /// Whether a table was booked.
    pub fn is_booking(self) -> bool {
        matches!(
            self,
            OutcomeStatus::Booked | OutcomeStatus::AlternativeBooked
        )
    }
}

impl fmt::Display for OutcomeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The structured result of a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// How it ended.
    pub status: OutcomeStatus,
    /// Booked date (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
    /// Booked time (`HH:MM`, 24 h).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hhmm")]
    pub time: Option<NaiveTime>,
    /// Booked party size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party_size: Option<u32>,
    /// Name the booking is under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Confirmation code or detail the host gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<String>,
    /// Slots offered that were not taken.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<String>,
    /// Anything else worth knowing (or why the call failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

mod hhmm {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<NaiveTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&t.format("%H:%M").to_string()),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveTime>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        match s {
            Some(s) => NaiveTime::parse_from_str(&s, "%H:%M")
                .or_else(|_| NaiveTime::parse_from_str(&s, "%H:%M:%S"))
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

/// How an outcome is written when one may already be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeWrite {
    /// A report (the agent's `finish_call`, a certain answering machine, a
    /// call Twilio refused): it replaces whatever is recorded.
    Report,
    /// What the server concludes when nobody reported (the call ended,
    /// failed, was never answered): written only while the outcome is
    /// unsettled (absent or `in_progress`), so it never hides a report.
    Fallback,
}

impl Outcome {
    /// An outcome with only a status and a note (failures, unanswered calls).
    pub fn bare(status: OutcomeStatus, notes: impl Into<Option<String>>) -> Self {
        Outcome {
            status,
            date: None,
            time: None,
            party_size: None,
            name: None,
            confirmation: None,
            alternatives: Vec::new(),
            notes: notes.into(),
        }
    }

    /// The outcome in plain words, as `reservoice call` prints it:
    /// "Booked: table for 4, Wednesday 25 November, 19:00, under Alex Doe".
    pub fn describe(&self) -> String {
        let booking = || {
            let mut parts = Vec::new();
            if let Some(n) = self.party_size {
                parts.push(format!("table for {n}"));
            }
            if let Some(d) = self.date {
                parts.push(d.format("%A %-d %B").to_string());
            }
            if let Some(t) = self.time {
                parts.push(t.format("%H:%M").to_string());
            }
            let mut line = parts.join(", ");
            if let Some(name) = &self.name {
                line.push_str(&format!(", under {name}"));
            }
            if let Some(c) = &self.confirmation {
                line.push_str(&format!(" (confirmation {c})"));
            }
            line
        };
        let with_notes = |head: String| match &self.notes {
            Some(n) if !n.is_empty() => format!("{head} — {n}"),
            _ => head,
        };
        match self.status {
            OutcomeStatus::Booked => format!("Booked: {}", booking()),
            OutcomeStatus::AlternativeBooked => format!("Booked another time: {}", booking()),
            OutcomeStatus::DeclinedAlternative => {
                let offers = if self.alternatives.is_empty() {
                    "none in your window".to_string()
                } else {
                    self.alternatives.join("; ")
                };
                with_notes(format!(
                    "Not booked: only times outside your window were offered ({offers})"
                ))
            }
            OutcomeStatus::Unavailable => with_notes("Not booked: nothing available".into()),
            OutcomeStatus::NoReservationsTaken => {
                with_notes("Not booked: the restaurant does not take reservations".into())
            }
            OutcomeStatus::Voicemail => with_notes("Not booked: reached voicemail".into()),
            OutcomeStatus::NoAnswer => with_notes("Not booked: nobody answered".into()),
            OutcomeStatus::Busy => with_notes("Not booked: the line was busy".into()),
            OutcomeStatus::Failed => with_notes("Call failed".into()),
            OutcomeStatus::InProgress => "In progress".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booked_outcome_reads_plainly() {
        let o = Outcome {
            status: OutcomeStatus::Booked,
            date: NaiveDate::from_ymd_opt(2026, 11, 25),
            time: NaiveTime::from_hms_opt(19, 0, 0),
            party_size: Some(4),
            name: Some("Alex Doe".into()),
            confirmation: None,
            alternatives: vec![],
            notes: None,
        };
        assert_eq!(
            o.describe(),
            "Booked: table for 4, Wednesday 25 November, 19:00, under Alex Doe"
        );
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(json["time"], "19:00");
        assert_eq!(json["status"], "booked");
        assert_eq!(serde_json::from_value::<Outcome>(json).unwrap(), o);
    }

    #[test]
    fn status_names_round_trip() {
        for s in OutcomeStatus::AGENT_REPORTABLE {
            assert_eq!(OutcomeStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(OutcomeStatus::parse("nonsense"), None);
    }
}
