//! The reservation's journey through Twilio, without the network:
//! reservation → TwiML `<Parameter>`s → (Twilio) → `start.customParameters`
//! → the same reservation, for awkward values too.

use chrono::{TimeZone, Utc};
use reservoice::domain::reservation::RequestRules;
use reservoice::domain::{Reservation, ReservationRequest};
use reservoice::twilio::stream::StreamEvent;
use reservoice::twilio::twiml;
use serde_json::{json, Map, Value};

fn round_trip(request: ReservationRequest) {
    let rules = RequestRules {
        default_timezone: chrono_tz::Tz::Europe__Paris,
        max_party_size: 20,
        dial_policy: Default::default(),
    };
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
    let reservation = request
        .into_reservation(&rules, now)
        .expect("valid request");

    let mut params = reservation.to_parameters();
    params.push(("call_token".into(), "k7Qx2mPz9LwR4tVb".into()));
    let doc = twiml::connect_stream(
        "wss://reservoice.example.com/media-stream",
        Some("https://reservoice.example.com/twilio/stream-status"),
        &params,
    )
    .expect("fits in TwiML");
    assert!(doc.len() < 4000);

    // What Twilio does: read the document, hand the parameters back in `start`.
    let parsed = twiml::parse(&doc).expect("Twilio can read it");
    assert_eq!(
        parsed.stream_url.as_deref(),
        Some("wss://reservoice.example.com/media-stream")
    );
    let custom: Map<String, Value> = parsed
        .parameters
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let start = json!({
        "event": "start", "sequenceNumber": "1", "streamSid": "MZbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "start": {"accountSid": "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "streamSid": "MZbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                  "callSid": "CAcccccccccccccccccccccccccccccccc", "tracks": ["inbound"],
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                  "customParameters": custom}
    })
    .to_string();
    let StreamEvent::Start { start, .. } = StreamEvent::parse(&start).expect("start parses") else {
        panic!("not a start")
    };
    assert_eq!(start.custom_parameters["call_token"], "k7Qx2mPz9LwR4tVb");
    let rebuilt = Reservation::from_parameters(&start.custom_parameters, 20).expect("rebuilt");
    assert_eq!(rebuilt, reservation);
}

#[test]
fn plain_reservation_survives_the_trip() {
    round_trip(ReservationRequest {
        to: "+33142685300".into(),
        restaurant: "Chez Demo".into(),
        party_size: 4,
        date: "tomorrow".into(),
        time: "7pm".into(),
        name: "Alex Doe".into(),
        ..Default::default()
    });
}

#[test]
fn markup_quotes_and_accents_survive_the_trip() {
    round_trip(ReservationRequest {
        to: "+12125550123".into(),
        restaurant: "Bob & Sue's \"Grill\" <Downtown>".into(),
        party_size: 20,
        date: "2026-12-31".into(),
        time: "23:45".into(),
        name: "Zoë O'Brien-Łukasiewicz".into(),
        flexibility: Some("1h30m".into()),
        callback: Some("+44 20 7946 0958".into()),
        notes: Some("x".repeat(250) + " & <b>café</b> \"quoted\" 'single' ]]> &amp;"),
        timezone: Some("America/New_York".into()),
    });
}
