//! End-to-end: calls held in the restaurant's language, through the
//! simulated Twilio network, a restaurant host speaking that language and the
//! Realtime stand-in (which insists on a brief in the host's language).

use std::collections::HashMap;
use std::time::Duration;

use reservoice::cli::render;
use reservoice::domain::{spoken, CallStatus, Language, OutcomeStatus, Speaker};
use reservoice::sim::rig::{Rig, RigOptions, ScenarioKind, FRENCH_RESTAURANT_NUMBER};
use reservoice::sim::scenario::{french_slot, CLIP_TEXTS};
use serde_json::Value;

mod common;

/// A French host and a brief that does not ask for French: the stand-in
/// refuses every model session (an error event, then a close frame
/// `sim::realtime::REFUSAL_CLOSE_CODE` saying why), so the call cannot quietly "work" in
/// the wrong language: it fails, with the apology, and the outcome says the
/// model was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_french_host_given_an_english_brief_fails_the_call_loudly() {
    let rig = Rig::start(RigOptions {
        scenario: ScenarioKind::French,
        ..Default::default()
    })
    .await
    .expect("rig starts");
    let mut request = rig.request();
    assert_eq!(request.to, FRENCH_RESTAURANT_NUMBER);
    // The person asks for English, although the number is French.
    request.language = Some("en".into());
    let (placed, record) = common::place_and_follow(&rig, &request).await;
    assert_eq!(placed.reservation.language, Language::ENGLISH);
    let outcome = record.outcome.clone().expect("an outcome");
    assert_eq!(outcome.status, OutcomeStatus::Failed, "{record:?}");
    let notes = outcome.notes.unwrap_or_default();
    assert!(notes.contains("AI model"), "{notes}");
    // The person reads why: the stand-in's close reason reaches the record.
    let error = record.error.clone().unwrap_or_default();
    assert!(
        error.contains("the simulated restaurant speaks French"),
        "{error}"
    );

    let sessions = rig.model.as_ref().expect("stand-in").sessions();
    assert!(!sessions.is_empty());
    for s in &sessions {
        let why = s.refusal.as_deref().expect("every session refused");
        assert!(
            why.starts_with(
                "the simulated restaurant speaks French, but the instructions never ask for French"
            ),
            "{why}"
        );
    }
    // Nothing the agent scripted was played to the restaurant.
    assert!(
        record
            .transcript
            .iter()
            .all(|l| !l.text.contains("assistant automatisé")),
        "{:?}",
        record.transcript
    );
    let call = rig
        .phone
        .wait_ended(&record.id, Duration::from_secs(20))
        .await
        .expect("the call ends");
    assert!(!call.say_texts.is_empty(), "the call ends with an apology");
    rig.shutdown().await;
}

/// The words of a recorded host clip.
fn clip(id: &str) -> &'static str {
    CLIP_TEXTS
        .iter()
        .find(|(c, _)| *c == id)
        .map(|(_, words)| *words)
        .expect("a clip")
}

/// The `session.update` the product sent the model, as the stand-in received it.
fn session_update(events: &[Value]) -> &Value {
    events
        .iter()
        .find(|e| e["type"] == "session.update")
        .expect("the session was configured")
}

/// A call to a Paris number with no language asked for: held in French from
/// the first word to the goodbye, through the simulated Twilio network, a
/// French host (recorded French speech) and the stand-in model (which plays
/// its French script only for a brief that asks for French, with the slot as
/// a French host says it, and a French transcription hint). What the person
/// reads stays English; the transcript shows what was said, in French.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_paris_is_held_in_french_end_to_end() {
    let rig = Rig::start(RigOptions {
        scenario: ScenarioKind::French,
        ..Default::default()
    })
    .await
    .expect("rig starts");
    let request = rig.request();
    assert_eq!(request.to, FRENCH_RESTAURANT_NUMBER);
    assert_eq!(request.language, None, "the number chooses");
    let (placed, record) = common::place_and_follow(&rig, &request).await;
    let french = Language::parse("fr-FR").expect("fr-FR");
    assert_eq!(placed.reservation.language, french);

    // Booked, and the outcome's fields are the same in any language.
    assert_eq!(record.status, CallStatus::Completed, "{record:?}");
    let outcome = record.outcome.clone().expect("an outcome");
    assert_eq!(outcome.status, OutcomeStatus::Booked, "{record:?}");
    assert_eq!(outcome.party_size, Some(4));
    assert_eq!(
        outcome.date.map(|d| d.format("%Y-%m-%d").to_string()),
        Some(rig.booking.date.clone())
    );
    assert_eq!(
        outcome.time.map(|t| t.format("%H:%M").to_string()),
        Some("19:00".into())
    );
    assert_eq!(outcome.confirmation.as_deref(), Some("4217"));
    assert_eq!(render::exit_code(&record), 0);
    // The person reads English.
    assert!(
        render::outcome_text(&record).starts_with("Booked: table for 4"),
        "{}",
        render::outcome_text(&record)
    );

    // The transcript: what was said, as said, in French on both sides.
    let t = &record.transcript;
    let said = |who: Speaker| -> Vec<&str> {
        t.iter()
            .filter(|l| l.speaker == who)
            .map(|l| l.text.as_str())
            .collect()
    };
    let host = said(Speaker::Callee);
    let agent = said(Speaker::Agent);
    assert_eq!(
        host,
        [clip("fr_greeting"), clip("fr_booked_confirm")],
        "{t:?}"
    );
    let slot = french_slot(&rig.booking.date, "19:00");
    assert!(
        agent[0].starts_with(
            "Bonjour, je suis un assistant automatisé et j'appelle de la part de Alex Doe."
        ) && agent[0].contains(&slot),
        "{agent:?}"
    );
    assert!(
        agent.last().is_some_and(|l| l.contains("Au revoir")),
        "{agent:?}"
    );

    // What the model was told: speak French, say the slot the French way,
    // open with the French disclosure; the restaurant's side is transcribed
    // with French as the hint.
    let events = common::model_events(&rig);
    let update = session_update(&events);
    let instructions = update["session"]["instructions"].as_str().unwrap_or("");
    assert!(
        instructions.contains("Speak French from your first word."),
        "{instructions}"
    );
    assert!(
        instructions.contains("switch to that language"),
        "{instructions}"
    );
    assert!(
        instructions.contains(&format!("\"{slot}\"")),
        "{instructions}"
    );
    let date = chrono::NaiveDate::parse_from_str(&rig.booking.date, "%Y-%m-%d").expect("date");
    assert!(
        instructions.contains(&format!(
            "Je voudrais réserver une table pour 4 personnes le {}.",
            spoken::date_and_time(
                date,
                chrono::NaiveTime::from_hms_opt(19, 0, 0).expect("time"),
                french
            )
        )),
        "{instructions}"
    );
    assert_eq!(
        update["session"]["audio"]["input"]["transcription"]["language"],
        "fr"
    );
    let sessions = rig.model.as_ref().expect("stand-in").sessions();
    assert!(sessions.iter().all(|s| s.refusal.is_none()), "{sessions:?}");

    // The language travelled with the call, in the stream's parameters.
    let call = rig
        .phone
        .wait_ended(&record.id, Duration::from_secs(20))
        .await
        .expect("the call ends");
    let params: HashMap<_, _> = call.parameters.iter().cloned().collect();
    assert_eq!(params["language"], "fr-FR");
    assert_eq!(call.host_lines_spoken, ["fr_greeting", "fr_booked_confirm"]);
    assert!(
        call.say_texts.is_empty(),
        "no apology: {:?}",
        call.say_texts
    );
    rig.shutdown().await;
}

/// The model cannot be reached on a call to Paris: the restaurant hears the
/// apology in French, in a `<Say>` with Twilio's `language` attribute and a
/// French voice; the person reads why in English.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_down_apology_to_paris_is_said_in_french() {
    let rig = Rig::start(RigOptions {
        scenario: ScenarioKind::French,
        realtime_url_override: Some("ws://127.0.0.1:9/v1/realtime".into()),
        ..Default::default()
    })
    .await
    .expect("rig starts");
    let (_, record) = common::place_and_follow(&rig, &rig.request()).await;
    let outcome = record.outcome.clone().expect("an outcome");
    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(
        outcome.notes.unwrap_or_default().contains("AI model"),
        "the person reads English"
    );
    let call = rig
        .phone
        .wait_ended(&record.id, Duration::from_secs(20))
        .await
        .expect("the call ends");
    let apology = "Désolé, nous rencontrons un problème technique et nous vous rappellerons plus tard. Au revoir.";
    assert_eq!(call.say_texts, [apology]);
    assert!(
        call.updates.iter().any(|(twiml, status)| *status == 200
            && twiml.contains(&format!(
                "<Say language=\"fr-FR\" voice=\"Google.fr-FR-Standard-A\">{apology}</Say>"
            ))),
        "{:?}",
        call.updates
    );
    rig.shutdown().await;
}

/// The server's `RESERVOICE_LANGUAGE` is the language of calls that name
/// none, whatever the number; a request's `language` beats it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_language_applies_unless_the_request_names_one() {
    let rig = Rig::start(RigOptions {
        language: Some("es-MX".into()),
        ..Default::default()
    })
    .await
    .expect("rig starts");
    let mut request = rig.request();
    request.to = "+12125550123".into();
    let (placed, record) = common::place_and_follow(&rig, &request).await;
    assert_eq!(placed.reservation.language.to_string(), "es-MX");
    assert!(record.is_finished());
    let events = common::model_events(&rig);
    let update = session_update(&events);
    assert_eq!(
        update["session"]["audio"]["input"]["transcription"]["language"],
        "es"
    );
    let instructions = update["session"]["instructions"].as_str().unwrap_or("");
    assert!(
        instructions.contains("Speak Spanish from your first word."),
        "{instructions}"
    );

    // The request's own language wins, and a bad one is the field's error.
    let client = reservoice::cli::client::ApiClient::new(&rig.server_url, None).expect("client");
    let mut english = rig.request();
    english.language = Some("en-GB".into());
    english.to = "+12125550123".into();
    let record = client.create_call(&english).await.expect("placed");
    assert_eq!(record.reservation.language.to_string(), "en-GB");
    let mut bad = rig.request();
    bad.language = Some("xx".into());
    match client.create_call(&bad).await {
        Err(reservoice::cli::client::ClientError::Invalid(errors)) => {
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert_eq!(errors[0].field, "language");
            assert!(
                errors[0].message.ends_with("supported: en (English), fr (French), es (Spanish), de (German), it (Italian), pt (Portuguese), ja (Japanese)"),
                "{}",
                errors[0].message
            );
        }
        other => panic!("expected the language field's error, got {other:?}"),
    }
    rig.shutdown().await;
}
