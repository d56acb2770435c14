//! Realtime wire types: the server events the bridge reacts to (borrowed from
//! the frame where it matters), and builders for the client events it sends.
//!
//! The audio events are on the hot path: `response.output_audio.delta` is
//! parsed with its base64 payload borrowed from the frame, and
//! `input_audio_buffer.append` is written by hand around the payload Twilio
//! sent, so audio is never decoded or copied into an intermediate value.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::json;

/// A server event. Unknown types become [`ServerEvent::Other`]: the API adds
/// event types without notice and the bridge must ignore them.
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub enum ServerEvent<'a> {
    /// First event on a connection.
    #[serde(rename = "session.created")]
    SessionCreated {
        /// The session's effective configuration.
        #[serde(default)]
        session: serde_json::Value,
    },
    /// Our `session.update` was applied.
    #[serde(rename = "session.updated")]
    SessionUpdated {
        /// The session's effective configuration.
        #[serde(default)]
        session: serde_json::Value,
    },
    /// The callee started speaking (server VAD): the barge-in trigger.
    #[serde(rename = "input_audio_buffer.speech_started")]
    SpeechStarted {
        /// Milliseconds of input audio (our appends) at which speech began.
        #[serde(default)]
        audio_start_ms: u64,
        /// The user item that will hold this speech.
        #[serde(borrow, default)]
        item_id: Cow<'a, str>,
    },
    /// The callee stopped speaking.
    #[serde(rename = "input_audio_buffer.speech_stopped")]
    SpeechStopped {
        /// Milliseconds of input audio at which speech ended.
        #[serde(default)]
        audio_end_ms: u64,
        /// The user item.
        #[serde(borrow, default)]
        item_id: Cow<'a, str>,
    },
    /// What the callee said, transcribed.
    #[serde(rename = "conversation.item.input_audio_transcription.completed")]
    InputTranscriptionCompleted {
        /// The user item.
        #[serde(borrow)]
        item_id: Cow<'a, str>,
        /// The words.
        #[serde(borrow)]
        transcript: Cow<'a, str>,
    },
    /// Transcription of the callee failed (the audio was still heard by the model).
    #[serde(rename = "conversation.item.input_audio_transcription.failed")]
    InputTranscriptionFailed {
        /// The user item.
        #[serde(borrow)]
        item_id: Cow<'a, str>,
        /// Why.
        #[serde(default)]
        error: serde_json::Value,
    },
    /// A reply began.
    #[serde(rename = "response.created")]
    ResponseCreated {
        /// The response object (`id`, `status`).
        response: ResponseRef<'a>,
    },
    /// An output item (assistant message or function call) was added to a reply.
    #[serde(rename = "response.output_item.added")]
    OutputItemAdded {
        /// The reply.
        #[serde(borrow)]
        response_id: Cow<'a, str>,
        /// The item.
        item: OutputItem<'a>,
    },
    /// A chunk of the agent's voice: base64 mu-law, forwarded to Twilio as is.
    #[serde(rename = "response.output_audio.delta", alias = "response.audio.delta")]
    AudioDelta {
        /// The reply.
        #[serde(borrow)]
        response_id: Cow<'a, str>,
        /// The assistant item the audio belongs to (what truncate names).
        #[serde(borrow)]
        item_id: Cow<'a, str>,
        /// Content part index (0 for audio).
        #[serde(default)]
        content_index: u32,
        /// Base64 audio.
        #[serde(borrow)]
        delta: Cow<'a, str>,
    },
    /// All audio of an item was sent.
    #[serde(rename = "response.output_audio.done", alias = "response.audio.done")]
    AudioDone {
        /// The reply.
        #[serde(borrow)]
        response_id: Cow<'a, str>,
        /// The item.
        #[serde(borrow)]
        item_id: Cow<'a, str>,
    },
    /// The full text of what the agent said in an item.
    #[serde(
        rename = "response.output_audio_transcript.done",
        alias = "response.audio_transcript.done"
    )]
    AudioTranscriptDone {
        /// The reply.
        #[serde(borrow)]
        response_id: Cow<'a, str>,
        /// The item.
        #[serde(borrow)]
        item_id: Cow<'a, str>,
        /// The words.
        #[serde(borrow)]
        transcript: Cow<'a, str>,
    },
    /// A function call's arguments are complete.
    #[serde(rename = "response.function_call_arguments.done")]
    FunctionCallArgumentsDone {
        /// The reply.
        #[serde(borrow)]
        response_id: Cow<'a, str>,
        /// The function call id to answer with `function_call_output`.
        #[serde(borrow)]
        call_id: Cow<'a, str>,
        /// Tool name.
        #[serde(borrow, default)]
        name: Cow<'a, str>,
        /// JSON text of the arguments.
        #[serde(borrow)]
        arguments: Cow<'a, str>,
    },
    /// An output item is final.
    #[serde(rename = "response.output_item.done")]
    OutputItemDone {
        /// The reply.
        #[serde(borrow)]
        response_id: Cow<'a, str>,
        /// The item, complete (a function call carries name, call_id, arguments).
        item: OutputItem<'a>,
    },
    /// A reply finished (completed, cancelled, failed, incomplete).
    #[serde(rename = "response.done")]
    ResponseDone {
        /// The response object.
        response: ResponseRef<'a>,
    },
    /// Our truncate was applied.
    #[serde(rename = "conversation.item.truncated")]
    ItemTruncated {
        /// The item.
        #[serde(borrow)]
        item_id: Cow<'a, str>,
        /// Where it was cut.
        audio_end_ms: u64,
    },
    /// Something we sent was refused, or the server had trouble.
    #[serde(rename = "error")]
    Error {
        /// The error.
        error: ErrorBody<'a>,
    },
    /// Any other event: ignored.
    #[serde(other)]
    Other,
}

/// The parts of a response object the bridge uses.
#[derive(Debug, Deserialize)]
pub struct ResponseRef<'a> {
    /// `resp_…`
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// `in_progress`, `completed`, `cancelled`, `failed`, `incomplete`.
    #[serde(borrow, default)]
    pub status: Option<Cow<'a, str>>,
    /// Why it was cancelled or failed.
    #[serde(default)]
    pub status_details: Option<serde_json::Value>,
    /// The items the reply produced (without audio).
    #[serde(default)]
    pub output: Vec<OutputItem<'a>>,
}

/// An item in a response: an assistant message or a function call.
#[derive(Debug, Deserialize)]
pub struct OutputItem<'a> {
    /// `item_…`
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    /// `message`, `function_call`, …
    #[serde(borrow, rename = "type")]
    pub kind: Cow<'a, str>,
    /// `in_progress`, `completed`, `incomplete`.
    #[serde(borrow, default)]
    pub status: Option<Cow<'a, str>>,
    /// Function name (function calls).
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    /// Function call id (function calls).
    #[serde(borrow, default)]
    pub call_id: Option<Cow<'a, str>>,
    /// JSON text of the arguments (function calls).
    #[serde(borrow, default)]
    pub arguments: Option<Cow<'a, str>>,
    /// Content parts (messages): for audio, the transcript of what was said.
    #[serde(borrow, default)]
    pub content: Vec<ContentPart<'a>>,
}

/// A content part of a message item (only the transcript matters here).
#[derive(Debug, Deserialize)]
pub struct ContentPart<'a> {
    /// Transcript of an audio part (absent or null for others).
    #[serde(borrow, default)]
    pub transcript: Option<Cow<'a, str>>,
}

/// The body of an `error` event.
#[derive(Debug, Deserialize)]
pub struct ErrorBody<'a> {
    /// `invalid_request_error`, `server_error`, …
    #[serde(borrow, rename = "type", default)]
    pub kind: Option<Cow<'a, str>>,
    /// Machine code, when given.
    #[serde(borrow, default)]
    pub code: Option<Cow<'a, str>>,
    /// Human message.
    #[serde(borrow, default)]
    pub message: Cow<'a, str>,
    /// The client `event_id` that caused it.
    #[serde(borrow, default)]
    pub event_id: Option<Cow<'a, str>>,
}

impl<'a> ServerEvent<'a> {
    /// Parse one text frame.
    pub fn parse(frame: &'a str) -> Result<Self, serde_json::Error> {
        // Hot path: audio deltas are most of what the model sends. An
        // internally tagged enum makes serde buffer every field (its private
        // `Content` tree) before choosing the variant; this flat struct reads
        // a delta straight, borrowed. Anything else takes the general path.
        if let Ok(hot) = serde_json::from_str::<HotDelta<'a>>(frame) {
            let is_delta = matches!(
                hot.kind.as_ref(),
                "response.output_audio.delta" | "response.audio.delta"
            );
            if is_delta
                && !hot.response_id.is_empty()
                && !hot.item_id.is_empty()
                && !hot.delta.is_empty()
            {
                return Ok(ServerEvent::AudioDelta {
                    response_id: hot.response_id,
                    item_id: hot.item_id,
                    content_index: hot.content_index,
                    delta: hot.delta,
                });
            }
        }
        serde_json::from_str(frame)
    }
}

/// The fields of an audio delta, read without the enum's buffering. Plain
/// `Cow`s (serde borrows only those, not `Option<Cow>`); empty when absent,
/// and then the general path decides.
#[derive(Deserialize)]
struct HotDelta<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    response_id: Cow<'a, str>,
    #[serde(borrow, default)]
    item_id: Cow<'a, str>,
    #[serde(default)]
    content_index: u32,
    #[serde(borrow, default)]
    delta: Cow<'a, str>,
}

/// Number of audio bytes a base64 string decodes to, without decoding it
/// (mu-law: 8 bytes per millisecond).
pub fn base64_decoded_len(b64: &str) -> usize {
    let bytes = b64.as_bytes();
    let padding = bytes
        .iter()
        .rev()
        .take_while(|&&b| b == b'=')
        .count()
        .min(2);
    (bytes.len() / 4) * 3
        + match bytes.len() % 4 {
            2 => 1,
            3 => 2,
            _ => 0,
        }
        - if bytes.len().is_multiple_of(4) {
            padding
        } else {
            0
        }
}

/// True when `s` is non-empty base64 (standard alphabet, optional padding):
/// safe to splice into JSON text without escaping.
pub fn is_base64_text(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
}

/// `input_audio_buffer.append` around a base64 payload (caller checked it with
/// [`is_base64_text`]). Written by hand: this runs 50 times a second per call.
pub fn input_audio_append(audio_b64: &str, out: &mut String) {
    out.clear();
    out.push_str(r#"{"type":"input_audio_buffer.append","audio":""#);
    out.push_str(audio_b64);
    out.push_str(r#""}"#);
}

/// `input_audio_buffer.append` of raw audio bytes (several Twilio frames
/// joined), base64-encoded straight into `out`.
pub fn input_audio_append_bytes(audio: &[u8], out: &mut String) {
    use base64::Engine;
    out.clear();
    out.push_str(r#"{"type":"input_audio_buffer.append","audio":""#);
    base64::engine::general_purpose::STANDARD.encode_string(audio, out);
    out.push_str(r#""}"#);
}

/// `conversation.item.truncate`: the agent's item was heard only up to `audio_end_ms`.
pub fn item_truncate(event_id: &str, item_id: &str, audio_end_ms: u64) -> String {
    json!({"type": "conversation.item.truncate", "event_id": event_id, "item_id": item_id, "content_index": 0, "audio_end_ms": audio_end_ms}).to_string()
}

/// `conversation.item.create` with a tool result.
pub fn function_call_output(call_id: &str, output: &serde_json::Value) -> String {
    json!({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": call_id, "output": output.to_string()}}).to_string()
}

/// `conversation.item.create` with a text message (`role`: `user` or `system`).
pub fn text_item(role: &str, text: &str) -> String {
    json!({"type": "conversation.item.create", "item": {"type": "message", "role": role, "content": [{"type": "input_text", "text": text}]}}).to_string()
}

/// `response.create`, optionally with instructions for this reply only.
pub fn response_create(instructions: Option<&str>) -> String {
    match instructions {
        Some(i) => json!({"type": "response.create", "response": {"instructions": i}}).to_string(),
        None => r#"{"type":"response.create"}"#.to_string(),
    }
}

/// `response.cancel`.
pub fn response_cancel() -> String {
    r#"{"type":"response.cancel"}"#.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/protocol/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn every_server_fixture_parses_to_its_event() {
        let dir = format!("{}/tests/fixtures/protocol", env!("CARGO_MANIFEST_DIR"));
        let mut checked = 0;
        for sub in ["", "beta/"] {
            for entry in std::fs::read_dir(format!("{dir}/{sub}")).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().to_string();
                if !name.starts_with("openai_") || !name.ends_with(".json") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                let ty = v["type"].as_str().unwrap();
                let event = ServerEvent::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
                let expect_known = matches!(
                    ty,
                    "session.created"
                        | "session.updated"
                        | "input_audio_buffer.speech_started"
                        | "input_audio_buffer.speech_stopped"
                        | "conversation.item.input_audio_transcription.completed"
                        | "conversation.item.input_audio_transcription.failed"
                        | "response.created"
                        | "response.output_item.added"
                        | "response.output_audio.delta"
                        | "response.audio.delta"
                        | "response.output_audio.done"
                        | "response.audio.done"
                        | "response.output_audio_transcript.done"
                        | "response.audio_transcript.done"
                        | "response.function_call_arguments.done"
                        | "response.output_item.done"
                        | "response.done"
                        | "conversation.item.truncated"
                        | "error"
                );
                assert_eq!(
                    !matches!(event, ServerEvent::Other),
                    expect_known,
                    "{name} ({ty}) parsed as {event:?}"
                );
                checked += 1;
            }
        }
        assert!(checked >= 45, "only {checked} fixtures checked");
    }

    #[test]
    fn audio_delta_borrows_the_payload() {
        let text = fixture("openai_response_output_audio_delta.json");
        match ServerEvent::parse(&text).unwrap() {
            ServerEvent::AudioDelta {
                delta,
                item_id,
                response_id,
                ..
            } => {
                assert!(matches!(delta, Cow::Borrowed(_)));
                assert_eq!(item_id, "item_HNpa8WL1J29x1IXnToPUP");
                assert_eq!(response_id, "resp_2tVDZNVAg9lTphK2GsPOM");
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(delta.as_bytes())
                    .unwrap();
                assert_eq!(base64_decoded_len(&delta), bytes.len());
            }
            other => panic!("{other:?}"),
        }
        let beta = fixture("beta/openai_beta_response_audio_delta.json");
        assert!(matches!(
            ServerEvent::parse(&beta).unwrap(),
            ServerEvent::AudioDelta { .. }
        ));
    }

    #[test]
    fn delta_hot_path_matches_the_general_path() {
        let text = fixture("openai_response_output_audio_delta.json");
        let general: ServerEvent = serde_json::from_str(&text).unwrap();
        let hot = ServerEvent::parse(&text).unwrap();
        assert_eq!(format!("{general:?}"), format!("{hot:?}"));
        // Missing fields: an error, as on the general path.
        assert!(
            ServerEvent::parse(r#"{"type":"response.output_audio.delta","delta":"AA=="}"#).is_err()
        );
        // A transcript delta is not audio.
        assert!(matches!(
            ServerEvent::parse(r#"{"type":"response.output_audio_transcript.delta","response_id":"r","item_id":"i","delta":"Hi"}"#).unwrap(),
            ServerEvent::Other
        ));
    }

    #[test]
    fn function_call_and_errors_parse() {
        let text = fixture("openai_response_output_item_done_function_call.json");
        match ServerEvent::parse(&text).unwrap() {
            ServerEvent::OutputItemDone { item, .. } => {
                assert_eq!(item.kind, "function_call");
                assert_eq!(item.name.as_deref(), Some("finish_call"));
                assert_eq!(item.call_id.as_deref(), Some("call_2Su30LTIhUOCpPEk"));
                let args: serde_json::Value =
                    serde_json::from_str(item.arguments.as_deref().unwrap()).unwrap();
                assert_eq!(args["party_size"], 4);
            }
            other => panic!("{other:?}"),
        }
        let text = fixture("openai_error_active_response.json");
        match ServerEvent::parse(&text).unwrap() {
            ServerEvent::Error { error } => assert_eq!(
                error.code.as_deref(),
                Some("conversation_already_has_active_response")
            ),
            other => panic!("{other:?}"),
        }
        let text = fixture("openai_error_truncate_beyond_audio.json");
        assert!(matches!(
            ServerEvent::parse(&text).unwrap(),
            ServerEvent::Error { .. }
        ));
    }

    #[test]
    fn unknown_events_and_fields_are_ignored() {
        assert!(matches!(
            ServerEvent::parse(r#"{"type":"brand.new","x":1}"#).unwrap(),
            ServerEvent::Other
        ));
        assert!(ServerEvent::parse("not json").is_err());
        assert!(ServerEvent::parse(r#"{"no_type":1}"#).is_err());
    }

    #[test]
    fn client_events_match_fixtures() {
        let mut out = String::new();
        let append: serde_json::Value =
            serde_json::from_str(&fixture("openai_input_audio_buffer_append.json")).unwrap();
        input_audio_append(append["audio"].as_str().unwrap(), &mut out);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&out).unwrap(),
            append
        );

        let truncate: serde_json::Value =
            serde_json::from_str(&fixture("openai_conversation_item_truncate.json")).unwrap();
        let built: serde_json::Value = serde_json::from_str(&item_truncate(
            "client_truncate_7",
            "item_HNpa8WL1J29x1IXnToPUP",
            1480,
        ))
        .unwrap();
        assert_eq!(built, truncate);

        let output: serde_json::Value = serde_json::from_str(&fixture(
            "openai_conversation_item_create_function_call_output.json",
        ))
        .unwrap();
        let built: serde_json::Value = serde_json::from_str(&function_call_output(
            "call_2Su30LTIhUOCpPEk",
            &json!({"recorded": true}),
        ))
        .unwrap();
        assert_eq!(built, output);

        let user: serde_json::Value =
            serde_json::from_str(&fixture("openai_conversation_item_create_user_text.json"))
                .unwrap();
        let built: serde_json::Value = serde_json::from_str(&text_item(
            "user",
            "(The restaurant pressed key 5 on the phone keypad.)",
        ))
        .unwrap();
        assert_eq!(built, user);

        let create: serde_json::Value =
            serde_json::from_str(&fixture("openai_response_create.json")).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&response_create(None)).unwrap(),
            create
        );
        let with: serde_json::Value =
            serde_json::from_str(&fixture("openai_response_create_with_instructions.json"))
                .unwrap();
        let built = response_create(Some(
            "Thank the host, confirm the booking back in one sentence, and say goodbye.",
        ));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&built).unwrap(),
            with
        );
        let cancel: serde_json::Value =
            serde_json::from_str(&fixture("openai_response_cancel.json")).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&response_cancel()).unwrap(),
            cancel
        );
    }

    #[test]
    fn base64_length_arithmetic() {
        let engine = base64::engine::general_purpose::STANDARD;
        for n in 0..50usize {
            let data = vec![0xABu8; n];
            let text = engine.encode(&data);
            assert_eq!(base64_decoded_len(&text), n, "n={n}");
        }
        assert!(is_base64_text("/7mr+A=="));
        assert!(!is_base64_text("ab\"c"));
        assert!(!is_base64_text(""));
    }
}
