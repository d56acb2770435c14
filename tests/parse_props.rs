//! Property tests for everything that parses what arrives from outside: the
//! Media Stream and Realtime frames, stream parameters, TwiML, signatures,
//! tool arguments. None may panic, whatever the input. (A bounded stand-in for
//! a fuzzer: it runs in `cargo test`, so CI runs it on every change.)

use std::collections::HashMap;

use proptest::prelude::*;
use reservoice::agent::ToolCall;
use reservoice::domain::Reservation;
use reservoice::realtime::ServerEvent;
use reservoice::twilio::stream::StreamEvent;
use reservoice::twilio::{signature, twiml};
use serde_json::Value;

fn fixtures() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/protocol");
    let mut out = Vec::new();
    for sub in ["", "/beta"] {
        for entry in std::fs::read_dir(format!("{dir}{sub}")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                out.push(std::fs::read_to_string(path).unwrap());
            }
        }
    }
    out
}

const EVENTS: &[&str] = &[
    "connected",
    "start",
    "media",
    "mark",
    "dtmf",
    "stop",
    "clear",
];
const TYPES: &[&str] = &[
    "session.created",
    "session.updated",
    "input_audio_buffer.speech_started",
    "input_audio_buffer.speech_stopped",
    "conversation.item.input_audio_transcription.completed",
    "conversation.item.input_audio_transcription.failed",
    "response.created",
    "response.output_item.added",
    "response.output_audio.delta",
    "response.audio.delta",
    "response.output_audio.done",
    "response.output_audio_transcript.done",
    "response.function_call_arguments.done",
    "response.output_item.done",
    "response.done",
    "conversation.item.truncated",
    "error",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::hash_map("[a-zA-Z_]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object shaped like a protocol frame: a known discriminator plus arbitrary fields.
fn frame(key: &'static str, names: &'static [&'static str]) -> impl Strategy<Value = String> {
    (
        prop::sample::select(names),
        prop::collection::hash_map(
            prop::sample::select(vec![
                "start",
                "media",
                "mark",
                "dtmf",
                "stop",
                "streamSid",
                "response",
                "item",
                "item_id",
                "delta",
                "response_id",
                "transcript",
                "error",
                "session",
                "call_id",
                "arguments",
                "name",
                "payload",
                "timestamp",
                "customParameters",
                "callSid",
                "output",
            ]),
            json_value(),
            0..6,
        ),
    )
        .prop_map(move |(name, fields)| {
            let mut obj: serde_json::Map<String, Value> = fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            obj.insert(key.to_string(), Value::String(name.to_string()));
            Value::Object(obj).to_string()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn stream_frames_never_panic(text in ".{0,300}") {
        let _ = StreamEvent::parse(&text);
        let _ = ServerEvent::parse(&text);
    }

    #[test]
    fn shaped_twilio_frames_never_panic(text in frame("event", EVENTS)) {
        if let Ok(StreamEvent::Media { media }) = StreamEvent::parse(&text) {
            let _ = media.timestamp_ms();
            let _ = reservoice::realtime::events::is_base64_text(&media.payload);
            let _ = reservoice::realtime::events::base64_decoded_len(&media.payload);
        }
    }

    #[test]
    fn shaped_realtime_events_never_panic(text in frame("type", TYPES)) {
        let _ = ServerEvent::parse(&text);
    }

    #[test]
    fn mutated_fixtures_never_panic(ix in 0usize..64, cut in 0usize..4000, flips in prop::collection::vec((0usize..4000, any::<u8>()), 0..8)) {
        let all = fixtures();
        let mut bytes = all[ix % all.len()].clone().into_bytes();
        for (at, b) in flips {
            if !bytes.is_empty() {
                let i = at % bytes.len();
                bytes[i] = b;
            }
        }
        bytes.truncate(cut.max(1).min(bytes.len()));
        let text = String::from_utf8_lossy(&bytes);
        let _ = StreamEvent::parse(&text);
        let _ = ServerEvent::parse(&text);
    }

    #[test]
    fn stream_parameters_never_panic(params in prop::collection::hash_map(
        prop::sample::select(vec!["restaurant_name", "restaurant_phone", "party_size", "date", "time", "timezone", "customer_name", "callback", "notes", "flexibility_minutes", "call_token", "other"]),
        ".{0,30}", 0..12)) {
        let params: HashMap<String, String> = params.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let _ = Reservation::from_parameters(&params, 20);
    }

    #[test]
    fn tool_arguments_never_panic(name in prop::sample::select(vec!["finish_call", "send_dtmf", "x"]), args in json_value()) {
        let _ = ToolCall::parse(name, &args.to_string());
    }

    #[test]
    fn twiml_and_signatures_never_panic(doc in ".{0,200}", url in ".{0,60}", sig in ".{0,40}") {
        let _ = twiml::parse(&doc);
        let _ = signature::validate("token", &url, &[("a".into(), doc.clone())], None, &sig);
        let _ = signature::validate("token", &url, &[], Some(doc.as_bytes()), &sig);
    }
}
