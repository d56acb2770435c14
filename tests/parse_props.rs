//! Property tests for everything that parses what arrives from outside: the
//! Media Stream and Realtime frames, stream parameters, TwiML, signatures,
//! tool arguments. None may panic, whatever the input. (A bounded stand-in for
//! a fuzzer: it runs in `cargo test`, so CI runs it on every change.)
//!
//! And the reservation has one set of rules: whatever value the API's request
//! refuses, the stream's parameters refuse too, and the other way round.

use std::collections::HashMap;

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use reservoice::agent::ToolCall;
use reservoice::domain::reservation::RequestRules;
use reservoice::domain::{Reservation, ReservationRequest, StreamContinuation};
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

/// A valid request; each property changes one field of it.
fn request() -> ReservationRequest {
    ReservationRequest {
        to: "+12125550123".into(),
        restaurant: "Chez Demo".into(),
        party_size: 4,
        date: "2026-11-25".into(),
        time: "19:00".into(),
        name: "Alex Doe".into(),
        ..Default::default()
    }
}

/// The request path: `Ok` with the reservation, or the refused fields.
fn via_api(request: ReservationRequest) -> Result<Reservation, Vec<String>> {
    let rules = RequestRules {
        default_timezone: chrono_tz::Tz::UTC,
        max_party_size: 20,
        dial_policy: Default::default(),
        default_language: None,
    };
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
    request
        .into_reservation(&rules, now)
        .map_err(|errors| errors.into_iter().map(|e| e.field).collect())
}

/// The stream path: the valid request's parameters with `name` set to `value`.
fn via_stream(name: &str, value: &str) -> Result<Reservation, &'static str> {
    let mut params: HashMap<String, String> = via_api(request())
        .unwrap()
        .to_parameters()
        .into_iter()
        .collect();
    params.insert(name.into(), value.into());
    Reservation::from_parameters(&params, 20).map_err(|e| e.name)
}

/// Text people (and forgers) send: plain words, control characters, blanks,
/// and lengths around the limits.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "[a-zA-Zé '\\-]{0,8}[\\x00-\\x1f\\x7f\\u{85}]?[a-z ]{0,8}",
        "[ \\t]{0,3}[a-z]{1,4}[ \\t]{0,3}",
        (95usize..106).prop_map(|n| "n".repeat(n)),
        (295usize..306).prop_map(|n| "w".repeat(n)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn names_and_notes_follow_one_rule_on_both_paths(value in text()) {
        for (field, parameter) in [("name", "customer_name"), ("restaurant", "restaurant_name"), ("notes", "notes")] {
            let mut req = request();
            match field {
                "name" => req.name = value.clone(),
                "restaurant" => req.restaurant = value.clone(),
                _ => req.notes = Some(value.clone()),
            }
            let api = via_api(req);
            let stream = via_stream(parameter, &value);
            match (&api, &stream) {
                (Ok(a), Ok(s)) => prop_assert_eq!(a, s),
                (Err(fields), Err(name)) => {
                    prop_assert_eq!(fields, &vec![field.to_string()]);
                    prop_assert_eq!(*name, parameter);
                }
                _ => prop_assert!(false, "{field} {value:?}: the API says {api:?}, the stream says {stream:?}"),
            }
        }
    }

    #[test]
    fn flexibility_and_party_size_follow_one_rule_on_both_paths(minutes in 0u32..1500, guests in -3i64..130) {
        let api = via_api(ReservationRequest { flexibility: Some(format!("{minutes}m")), ..request() });
        let stream = via_stream("flexibility_minutes", &minutes.to_string());
        prop_assert_eq!(api.is_ok(), stream.is_ok(), "{} minutes", minutes);
        prop_assert_eq!(api.is_ok(), minutes <= 12 * 60);
        let api = via_api(ReservationRequest { party_size: guests, ..request() });
        let stream = via_stream("party_size", &guests.to_string());
        prop_assert_eq!(api.is_ok(), stream.is_ok(), "{} guests", guests);
        prop_assert_eq!(api.is_ok(), (1..=20).contains(&guests));
    }
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
    fn continuation_parameters_never_panic(params in prop::collection::hash_map(
        prop::sample::select(vec!["stream_number", "call_clock_ms", "updated_at", "call_token", "other"]),
        prop_oneof![".{0,30}", "[0-9]{1,25}", "2026-11-[0-9]{2}T[0-9:.]{0,14}Z?"], 0..5)) {
        let params: HashMap<String, String> = params.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        if let Ok(Some(c)) = StreamContinuation::from_parameters(&params) {
            // Whatever is accepted is a later stream, and reads back the same.
            prop_assert!(c.stream_number >= 2);
            let again: HashMap<String, String> = c.to_parameters().into_iter().collect();
            prop_assert_eq!(StreamContinuation::from_parameters(&again), Ok(Some(c.clone())));
            let _ = c.call_clock_at(Utc::now());
        }
    }

    #[test]
    fn play_digits_never_panic_and_only_hold_what_twilio_plays(digits in ".{0,40}") {
        if let Ok(d) = twiml::PlayDigits::parse(&digits) {
            prop_assert!(d.as_str().chars().all(|c| twiml::PLAYABLE_KEYS.contains(c) || c == 'w' || c == 'W'));
            prop_assert!(!d.keys().is_empty());
        }
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
