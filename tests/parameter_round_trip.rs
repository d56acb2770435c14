//! The reservation's journey through Twilio, without the network:
//! reservation → TwiML `<Parameter>`s → (Twilio) → `start.customParameters`
//! → the same reservation, for awkward values too.

use chrono::{TimeZone, Utc};
use reservoice::domain::reservation::RequestRules;
use std::collections::HashMap;

use reservoice::domain::{FieldError, Reservation, ReservationRequest};
use reservoice::twilio::stream::StreamEvent;
use reservoice::twilio::twiml;
use serde_json::{json, Map, Value};

fn accept(request: ReservationRequest) -> Result<Reservation, Vec<FieldError>> {
    let rules = RequestRules {
        default_timezone: chrono_tz::Tz::Europe__Paris,
        max_party_size: 20,
        dial_policy: Default::default(),
        default_language: None,
    };
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
    request.into_reservation(&rules, now)
}

fn round_trip(request: ReservationRequest) {
    let reservation = accept(request).expect("valid request");
    let rebuilt = Reservation::from_parameters(&through_twilio(reservation.to_parameters()), 20)
        .expect("rebuilt");
    assert_eq!(rebuilt, reservation);
}

/// `params` (plus a call token) into TwiML, read by Twilio, handed back in
/// the stream's `start` message: the custom parameters the server receives.
fn through_twilio(mut params: Vec<(String, String)>) -> HashMap<String, String> {
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
    start.custom_parameters
}

/// A plain request: a Paris number, tomorrow at 7pm, four people.
fn plain() -> ReservationRequest {
    ReservationRequest {
        to: "+33142685300".into(),
        restaurant: "Chez Demo".into(),
        party_size: 4,
        date: "tomorrow".into(),
        time: "7pm".into(),
        name: "Alex Doe".into(),
        ..Default::default()
    }
}

#[test]
fn plain_reservation_survives_the_trip() {
    round_trip(plain());
}

/// The call's language travels too, so whichever instance takes the stream
/// speaks to the restaurant in it: the Paris number's French when none was
/// asked for, and the asked-for language otherwise.
#[test]
fn the_calls_language_survives_the_trip() {
    for (tag, want) in [
        (None, "fr-FR"),
        (Some("en"), "en"),
        (Some("pt_br"), "pt-BR"),
    ] {
        let reservation = accept(ReservationRequest {
            language: tag.map(Into::into),
            ..plain()
        })
        .expect("valid request");
        let params = through_twilio(reservation.to_parameters());
        assert_eq!(params["language"], want);
        let rebuilt = Reservation::from_parameters(&params, 20).expect("rebuilt");
        assert_eq!(rebuilt.language.to_string(), want);
        assert_eq!(rebuilt, reservation);
    }
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
        language: Some("es-MX".into()),
    });
}

/// A stream's parameters may come from TwiML we did not write (an older
/// server, a forgery): a value the API refuses is refused there too, in the
/// same words, naming the parameter.
#[test]
fn what_the_api_refuses_the_stream_refuses_too() {
    let plain = plain();
    let good = accept(plain.clone()).expect("valid request");
    let long_name = "N".repeat(101);
    let long_notes = "w".repeat(301);
    let cases: Vec<(ReservationRequest, &str, &str, String)> = vec![
        (
            ReservationRequest {
                name: long_name.clone(),
                ..plain.clone()
            },
            "name",
            "customer_name",
            long_name.clone(),
        ),
        (
            ReservationRequest {
                restaurant: long_name.clone(),
                ..plain.clone()
            },
            "restaurant",
            "restaurant_name",
            long_name,
        ),
        (
            ReservationRequest {
                notes: Some(long_notes.clone()),
                ..plain.clone()
            },
            "notes",
            "notes",
            long_notes,
        ),
        (
            ReservationRequest {
                flexibility: Some("13h".into()),
                ..plain.clone()
            },
            "flexibility",
            "flexibility_minutes",
            "780".into(),
        ),
        (
            ReservationRequest {
                party_size: 21,
                ..plain.clone()
            },
            "party_size",
            "party_size",
            "21".into(),
        ),
        (
            ReservationRequest {
                language: Some("tlh".into()),
                ..plain.clone()
            },
            "language",
            "language",
            "tlh".into(),
        ),
    ];
    for (request, field, parameter, value) in cases {
        let refused = accept(request).expect_err(field);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].field, field);

        let mut params: Vec<_> = good
            .to_parameters()
            .into_iter()
            .filter(|(name, _)| name != parameter)
            .collect();
        params.push((parameter.to_string(), value));
        let e = Reservation::from_parameters(&through_twilio(params), 20).expect_err(parameter);
        assert_eq!(e.name, parameter);
        assert_eq!(e.problem, refused[0].message, "same words for {parameter}");
    }
    // A control character cannot travel in TwiML (XML), but a forged stream
    // can carry one in its JSON: refused all the same.
    let mut params: HashMap<String, String> = good.to_parameters().into_iter().collect();
    params.insert("customer_name".into(), "Alex\u{1b}[2J Doe".into());
    assert_eq!(
        Reservation::from_parameters(&params, 20).unwrap_err().name,
        "customer_name"
    );
}
