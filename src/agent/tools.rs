//! The agent's tools: their JSON schemas (sent in `session.update`) and the
//! parsing of the model's calls, which are untrusted input like any other.

use chrono::{NaiveDate, NaiveTime};
use serde::Deserialize;
use serde_json::json;

use crate::audio::dtmf::Keys;
use crate::domain::{Outcome, OutcomeStatus};

/// `finish_call`: record the outcome; the server hangs up after the goodbye.
pub const FINISH_CALL: &str = "finish_call";
/// `send_dtmf`: press keys on the phone keypad.
pub const SEND_DTMF: &str = "send_dtmf";

/// The tool definitions for `session.update`.
pub fn definitions() -> serde_json::Value {
    let statuses: Vec<&str> = OutcomeStatus::AGENT_REPORTABLE
        .iter()
        .map(|s| s.as_str())
        .collect();
    json!([
        {
            "type": "function",
            "name": FINISH_CALL,
            "description": "Record the outcome of the reservation call. Call exactly once, when the outcome is known, before saying goodbye.",
            "parameters": {
                "type": "object",
                "properties": {
                    "status": {"type": "string", "enum": statuses},
                    "date": {"type": "string", "description": "Booked date, YYYY-MM-DD"},
                    "time": {"type": "string", "description": "Booked time, HH:MM (24h)"},
                    "party_size": {"type": "integer"},
                    "name": {"type": "string", "description": "Name the booking is under"},
                    "confirmation": {"type": "string", "description": "Confirmation code or detail the host gave"},
                    "alternatives": {"type": "array", "items": {"type": "string"}, "description": "Times offered that were not booked"},
                    "notes": {"type": "string"}
                },
                "required": ["status"],
                "additionalProperties": false
            }
        },
        {
            "type": "function",
            "name": SEND_DTMF,
            "description": "Press keys on the phone keypad, e.g. to choose an option in a phone menu.",
            "parameters": {
                "type": "object",
                "properties": {
                    "digits": {"type": "string", "description": "Keys to press: 0-9, * and #"}
                },
                "required": ["digits"],
                "additionalProperties": false
            }
        }
    ])
}

/// A tool call the session can act on.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolCall {
    /// Record this outcome and end the call after the goodbye.
    FinishCall(Outcome),
    /// Play these keys (checked here, once).
    SendDtmf(Keys),
}

/// A tool call the model got wrong; the message goes back to it as the tool
/// output so it can correct itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ToolError(pub String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FinishArgs {
    status: String,
    date: Option<String>,
    time: Option<String>,
    party_size: Option<i64>,
    name: Option<String>,
    confirmation: Option<String>,
    #[serde(default)]
    alternatives: Vec<String>,
    notes: Option<String>,
}

#[derive(Deserialize)]
struct DtmfArgs {
    digits: String,
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

impl ToolCall {
    /// Parse a call by name with its JSON arguments text.
    pub fn parse(name: &str, arguments: &str) -> Result<ToolCall, ToolError> {
        match name {
            FINISH_CALL => {
                let a: FinishArgs = serde_json::from_str(arguments)
                    .map_err(|e| ToolError(format!("finish_call arguments are not valid: {e}")))?;
                let status = OutcomeStatus::parse(a.status.trim())
                    .filter(|s| OutcomeStatus::AGENT_REPORTABLE.contains(s))
                    .ok_or_else(|| ToolError(format!("unknown status '{}'", a.status)))?;
                let date = match non_empty(a.date) {
                    Some(d) => Some(
                        NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                            .map_err(|_| ToolError(format!("date '{d}' must be YYYY-MM-DD")))?,
                    ),
                    None => None,
                };
                let time = match non_empty(a.time) {
                    Some(t) => Some(
                        NaiveTime::parse_from_str(&t, "%H:%M")
                            .map_err(|_| ToolError(format!("time '{t}' must be HH:MM (24h)")))?,
                    ),
                    None => None,
                };
                let party_size = match a.party_size {
                    Some(n) if (1..=1000).contains(&n) => Some(n as u32),
                    Some(n) => {
                        return Err(ToolError(format!(
                            "party_size {n} is not a number of guests"
                        )))
                    }
                    None => None,
                };
                if status.is_booking() && (date.is_none() || time.is_none()) {
                    return Err(ToolError("a booking needs the booked date and time".into()));
                }
                Ok(ToolCall::FinishCall(Outcome {
                    status,
                    date,
                    time,
                    party_size,
                    name: non_empty(a.name),
                    confirmation: non_empty(a.confirmation),
                    alternatives: a
                        .alternatives
                        .into_iter()
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect(),
                    notes: non_empty(a.notes),
                }))
            }
            SEND_DTMF => {
                let a: DtmfArgs = serde_json::from_str(arguments)
                    .map_err(|e| ToolError(format!("send_dtmf arguments are not valid: {e}")))?;
                Keys::parse(&a.digits)
                    .map(ToolCall::SendDtmf)
                    .map_err(|e| ToolError(e.to_string()))
            }
            other => Err(ToolError(format!("there is no tool named '{other}'"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_finish_call_parses() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/protocol/openai_response_function_call_arguments_done.json"
        ))
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let call = ToolCall::parse(
            v["name"].as_str().unwrap(),
            v["arguments"].as_str().unwrap(),
        )
        .unwrap();
        match call {
            ToolCall::FinishCall(o) => {
                assert_eq!(o.status, OutcomeStatus::Booked);
                assert_eq!(
                    o.describe(),
                    "Booked: table for 4, Wednesday 25 November, 19:00, under Alex Doe"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_calls_come_back_as_readable_errors() {
        assert!(ToolCall::parse("finish_call", r#"{"status":"great"}"#)
            .unwrap_err()
            .0
            .contains("unknown status"));
        assert!(ToolCall::parse("finish_call", r#"{"status":"in_progress"}"#).is_err());
        assert!(ToolCall::parse("finish_call", r#"{"status":"booked"}"#)
            .unwrap_err()
            .0
            .contains("date and time"));
        assert!(ToolCall::parse(
            "finish_call",
            r#"{"status":"booked","date":"25/11","time":"19:00"}"#
        )
        .is_err());
        assert!(ToolCall::parse("finish_call", "not json").is_err());
        assert!(ToolCall::parse("finish_call", r#"{"status":"unavailable","extra":1}"#).is_err());
        assert!(ToolCall::parse("send_dtmf", r#"{"digits":"12a"}"#)
            .unwrap_err()
            .0
            .contains("'a'"));
        assert_eq!(
            ToolCall::parse("send_dtmf", r#"{"digits":""}"#).unwrap_err(),
            ToolError("digits must be 1 to 32 keys".into())
        );
        assert!(ToolCall::parse("order_pizza", "{}").is_err());
        assert_eq!(
            ToolCall::parse("send_dtmf", r#"{"digits":"2 #"}"#).unwrap(),
            ToolCall::SendDtmf(Keys::parse("2#").unwrap())
        );
        let ok = ToolCall::parse(
            "finish_call",
            r#"{"status":"declined_alternative","alternatives":["21:30"," "]}"#,
        )
        .unwrap();
        assert!(
            matches!(ok, ToolCall::FinishCall(o) if o.alternatives == vec!["21:30".to_string()])
        );
    }

    #[test]
    fn schemas_name_every_reportable_status() {
        let defs = definitions();
        let statuses = defs[0]["parameters"]["properties"]["status"]["enum"]
            .as_array()
            .unwrap();
        assert_eq!(statuses.len(), 7);
        assert_eq!(defs[1]["name"], "send_dtmf");
    }
}
