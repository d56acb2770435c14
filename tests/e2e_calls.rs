//! End-to-end: the real server on port 0, driven through whole calls by the
//! simulated Twilio network, restaurant host and Realtime stand-in.

use std::collections::HashMap;
use std::time::Duration;

use common::model_events;
use reservoice::cli::client::ApiClient;
use reservoice::cli::render;
use reservoice::config::AppendJoin;
use reservoice::contract::{LineSpoken, LiveEvent};
use reservoice::domain::{CallRecord, CallStatus, OutcomeStatus, Speaker};
use reservoice::sim::rig::{Rig, RigOptions, ScenarioKind};
use reservoice::sim::telephone::Line;
use serde_json::Value;

mod common;

async fn rig(scenario: ScenarioKind) -> Rig {
    Rig::start(RigOptions {
        scenario,
        ..Default::default()
    })
    .await
    .expect("rig starts")
}

/// Place the rig's reservation through the API and follow it to the end.
async fn place_and_finish(
    rig: &Rig,
    request: &reservoice::domain::ReservationRequest,
) -> CallRecord {
    let (placed, done) = common::place_and_follow(rig, request).await;
    assert!(
        placed.outcome.is_none() && placed.transcript.is_empty(),
        "{placed:?}"
    );
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booked_call_records_outcome_and_transcript() {
    let rig = rig(ScenarioKind::Booked).await;
    let mut request = rig.request();
    request.restaurant = "Bob & Sue's \"Grill\" <Downtown>".into();
    request.notes = Some("window seat; it's a <surprise> & \"anniversary\" — café au lait".into());
    let record = place_and_finish(&rig, &request).await;

    // The outcome, structured.
    assert_eq!(record.status, CallStatus::Completed);
    let outcome = record.outcome.clone().unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Booked);
    assert_eq!(outcome.party_size, Some(4));
    assert_eq!(
        outcome.date.unwrap().format("%Y-%m-%d").to_string(),
        rig.booking.date
    );
    assert_eq!(outcome.time.unwrap().format("%H:%M").to_string(), "19:00");
    assert_eq!(outcome.name.as_deref(), Some("Alex Doe"));
    assert_eq!(outcome.confirmation.as_deref(), Some("4217"));
    assert_eq!(render::exit_code(&record), 0);

    // The transcript, both sides, in speaking order.
    let t = &record.transcript;
    assert!(t.len() >= 4, "{t:?}");
    assert_eq!(t[0].speaker, Speaker::Callee);
    assert!(t[0].text.contains("Chez Demo"));
    let agent = common::said_by(t, Speaker::Agent);
    assert!(agent[0].contains("automated assistant"), "{agent:?}");
    assert!(agent.last().unwrap().contains("Goodbye"));
    assert!(t.windows(2).all(|w| w[0].at_ms <= w[1].at_ms), "{t:?}");

    // What the telephone network saw: every parameter intact, signed callbacks
    // accepted, the call ended by our REST hang-up after the goodbye played.
    let call = rig
        .phone
        .wait_ended(&record.id, Duration::from_secs(10))
        .await
        .expect("sim call ended");
    let params: HashMap<_, _> = call.parameters.iter().cloned().collect();
    assert_eq!(
        params["restaurant_name"],
        "Bob & Sue's \"Grill\" <Downtown>"
    );
    assert_eq!(
        params["notes"],
        "window seat; it's a <surprise> & \"anniversary\" — café au lait"
    );
    assert_eq!(params["party_size"], "4");
    assert_eq!(params["time"], "19:00");
    assert!(params.contains_key("call_token"));
    assert!(
        !call.twiml.contains("<Say"),
        "no announcement before the stream"
    );
    assert_eq!(call.upgrade_status, Some(101));
    assert!(
        call.status_callbacks.iter().all(|(_, code)| *code == 204),
        "{:?}",
        call.status_callbacks
    );
    let statuses: Vec<&str> = call
        .status_callbacks
        .iter()
        .map(|(s, _)| s.as_str())
        .collect();
    assert_eq!(
        statuses,
        ["initiated", "ringing", "in-progress", "completed"]
    );
    assert_eq!(call.ended_by.as_deref(), Some("rest:completed"));
    assert!(call.clears.is_empty(), "nobody interrupted");
    // The goodbye was heard to its end before the hang-up: all agent audio played.
    assert!(call.marks_echoed > 0);

    // What the model saw: a telephony session, the brief, the tools, the tool output.
    let events = model_events(&rig);
    let update = events
        .iter()
        .find(|e| e["type"] == "session.update")
        .expect("session.update");
    let session = &update["session"];
    assert_eq!(session["audio"]["input"]["format"]["type"], "audio/pcmu");
    assert_eq!(session["audio"]["output"]["format"]["type"], "audio/pcmu");
    assert_eq!(
        session["audio"]["input"]["turn_detection"]["interrupt_response"],
        true
    );
    let instructions = session["instructions"].as_str().unwrap();
    assert!(
        instructions.contains(&rig.booking.spoken_date),
        "{instructions}"
    );
    assert!(instructions.contains("Alex Doe"));
    assert!(instructions.contains("Bob & Sue's \"Grill\" <Downtown>"));
    let tools: Vec<&str> = session["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["finish_call", "send_dtmf"]);
    assert!(events
        .iter()
        .any(|e| e["type"] == "conversation.item.create"
            && e["item"]["type"] == "function_call_output"));
    let appends = events
        .iter()
        .filter(|e| e["type"] == "input_audio_buffer.append")
        .count();
    assert!(appends > 100, "callee audio forwarded ({appends} appends)");

    // The API shows the same record, and the list has it.
    let api = ApiClient::new(&rig.server_url, None).unwrap();
    assert_eq!(api.get_call(&record.id).await.unwrap(), record);
    let list = api.list_calls(10).await.unwrap();
    assert_eq!(list[0].id, record.id);
    assert_eq!(list[0].outcome, Some(OutcomeStatus::Booked));
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alternative_inside_the_window_is_booked() {
    let rig = rig(ScenarioKind::Alternative).await;
    let record = place_and_finish(&rig, &rig.request()).await;
    let outcome = record.outcome.clone().unwrap();
    assert_eq!(
        outcome.status,
        OutcomeStatus::AlternativeBooked,
        "{record:?}"
    );
    assert_eq!(outcome.time.unwrap().format("%H:%M").to_string(), "19:30");
    assert!(outcome
        .describe()
        .starts_with("Booked another time: table for 4"));
    assert_eq!(render::exit_code(&record), 0);
    let callee = common::said_by(&record.transcript, Speaker::Callee);
    assert!(
        callee.iter().any(|l| l.contains("seven thirty")),
        "{callee:?}"
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_stops_playback_and_truncates_to_what_was_heard() {
    barge_in_truncates_to_what_was_heard(rig(ScenarioKind::BargeIn).await).await;
}

/// With every one of the callee's frames joined into 100 ms appends and a
/// mark only every 500 ms of agent audio, the truncate is still within one
/// frame of what was heard (the playback position is extrapolated between
/// marks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_stays_exact_with_joined_appends_and_sparse_marks() {
    barge_in_with(100, AppendJoin::Always, 500).await;
}

/// Every frame its own append and a mark after every delta (the defaults
/// join frames where the model decides nothing from them, with a mark per
/// 200 ms, above): the same accuracy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_stays_exact_frame_by_frame() {
    barge_in_with(20, AppendJoin::Safe, 0).await;
}

async fn barge_in_with(append_ms: u64, append_join: AppendJoin, mark_ms: u64) {
    let rig = Rig::start(RigOptions {
        scenario: ScenarioKind::BargeIn,
        append_ms,
        append_join,
        mark_ms,
        ..Default::default()
    })
    .await
    .expect("rig starts");
    barge_in_truncates_to_what_was_heard(rig).await;
}

async fn barge_in_truncates_to_what_was_heard(rig: Rig) {
    let record = place_and_finish(&rig, &rig.request()).await;
    assert_eq!(
        record.outcome.as_ref().unwrap().status,
        OutcomeStatus::Booked
    );

    let call = rig
        .phone
        .wait_ended(&record.id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(call.clears.len(), 1, "exactly one clear: {:?}", call.clears);
    let played = call.clears[0].played_in_turn_ms;
    assert!(played >= 1500, "the host interrupts after 1.5 s: {played}");

    let sessions = rig.model.as_ref().unwrap().sessions();
    let truncates = &sessions[0].truncates;
    assert_eq!(truncates.len(), 1, "{truncates:?}");
    let t = &truncates[0];
    assert!(
        t.audio_end_ms < t.item_audio_ms,
        "cut inside the item: {t:?}"
    );
    let diff = t.audio_end_ms.abs_diff(played);
    assert!(
        diff <= 20,
        "audio_end_ms {} must be within one 20 ms frame of what was played ({played})",
        t.audio_end_ms
    );

    // The transcript keeps only the words heard of the interrupted line.
    let agent = common::said_by(&record.transcript, Speaker::Agent);
    assert!(agent[0].ends_with('…'), "{agent:?}");
    assert!(agent[0].len() < 60, "{agent:?}");
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_and_busy_calls_end_without_a_conversation() {
    let mut lines = HashMap::new();
    lines.insert("+12125550101".to_string(), Line::Busy);
    lines.insert("+12125550102".to_string(), Line::NoAnswer);
    let rig = Rig::start(RigOptions {
        lines,
        ring_ms: 300,
        ..Default::default()
    })
    .await
    .unwrap();
    for (number, status, outcome) in [
        ("+12125550101", CallStatus::Busy, OutcomeStatus::Busy),
        (
            "+12125550102",
            CallStatus::NoAnswer,
            OutcomeStatus::NoAnswer,
        ),
    ] {
        let mut request = rig.request();
        request.to = number.into();
        let record = place_and_finish(&rig, &request).await;
        assert_eq!(record.status, status);
        assert_eq!(record.outcome.as_ref().unwrap().status, outcome);
        // Twilio's SipResponseCode, in words (the simulator sends 486 / 487).
        let notes = record
            .outcome
            .as_ref()
            .unwrap()
            .notes
            .clone()
            .unwrap_or_default();
        let want = if status == CallStatus::Busy {
            "busy (SIP 486)"
        } else {
            "no answer (SIP 487)"
        };
        assert!(notes.contains(want), "{notes}");
        assert!(record.transcript.is_empty());
        assert_eq!(render::exit_code(&record), 4);
    }
    assert!(
        rig.model.as_ref().unwrap().sessions().is_empty(),
        "no model session for unanswered calls"
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_twilio_requests_change_nothing() {
    let rig = rig(ScenarioKind::Booked).await;
    let store = rig.store().clone();
    let reservation = rig.request().into_reservation(
        &reservoice::domain::reservation::RequestRules {
            default_timezone: chrono_tz::Tz::UTC,
            max_party_size: 20,
            dial_policy: Default::default(),
            default_language: None,
        },
        chrono::Utc::now(),
    );
    store
        .insert("CAforged", &reservation.unwrap(), "tok", CallStatus::Queued)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let body = "CallSid=CAforged&CallStatus=completed&SequenceNumber=9";
    for signature in [None, Some("AAAAAAAAAAAAAAAAAAAAAAAAAAA=")] {
        let mut req = http
            .post(format!("{}/twilio/status", rig.server_url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(s) = signature {
            req = req.header("X-Twilio-Signature", s);
        }
        assert_eq!(req.send().await.unwrap().status(), 403);
    }
    assert_eq!(
        store.get("CAforged").await.unwrap().unwrap().status,
        CallStatus::Queued
    );

    // A correctly signed one is accepted.
    let url = format!("{}/twilio/status", rig.server_url);
    let params: Vec<(String, String)> = serde_urlencoded::from_str(body).unwrap();
    let sig = reservoice::twilio::signature::compute(&rig.auth_token, &url, &params);
    let res = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        store.get("CAforged").await.unwrap().unwrap().status,
        CallStatus::Completed
    );

    // The other webhooks are signed too.
    for hook in ["amd", "stream-status"] {
        let res = http
            .post(format!("{}/twilio/{hook}", rig.server_url))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", "forged")
            .body("CallSid=CAforged&AnsweredBy=machine_end_beep&StreamEvent=stream-error&StreamError=boom")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{hook}");
    }
    let after = store.get("CAforged").await.unwrap().unwrap();
    assert!(after.answered_by.is_none() && after.error.is_none());

    // The media stream upgrade without a signature is refused before anything opens.
    let ws_url = format!("ws://{}/media-stream", rig.server_addr);
    let err = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(r) => assert_eq!(r.status(), 403),
        other => panic!("expected a 403, got {other}"),
    }
    assert!(rig.model.as_ref().unwrap().sessions().is_empty());
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_requests_get_one_message_per_field_and_reach_nobody() {
    let rig = rig(ScenarioKind::Booked).await;
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/api/calls", rig.server_url))
        .json(&serde_json::json!({"to": "911", "restaurant": "", "party_size": 0, "date": "yesterday-ish", "time": "25:00", "name": "Alex"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for f in ["to", "restaurant", "party_size", "date", "time"] {
        assert!(fields.contains(&f), "{f} missing in {body}");
    }
    let res = http
        .post(format!("{}/api/calls", rig.server_url))
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert!(rig.phone.calls().is_empty(), "nothing reached Twilio");
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_followed_live_from_another_instance_sharing_the_store() {
    use futures_util::StreamExt;
    let rig = rig(ScenarioKind::Booked).await;
    // A second server instance on the same database (as behind a load balancer).
    let mut settings = (*rig.state.settings).clone();
    settings.bind = "127.0.0.1:0".parse().unwrap();
    let other = reservoice::server::Application::build(settings, None)
        .await
        .unwrap();
    let other_url = format!("http://{}", other.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let other_server = tokio::spawn(other.run_until(async move {
        let _ = stopped.await;
    }));

    let placed = ApiClient::new(&rig.server_url, None)
        .unwrap()
        .create_call(&rig.request())
        .await
        .unwrap();
    let follower = ApiClient::new(&other_url, None).unwrap();
    let mut events = Box::pin(follower.events(&placed.id).await.unwrap());
    let mut lines = Vec::new();
    let mut finished = None;
    let _ = tokio::time::timeout(Duration::from_secs(90), async {
        while let Some(Ok(event)) = events.next().await {
            match event {
                LiveEvent::Transcript(LineSpoken { line, seq }) => lines.push((seq, line.text)),
                LiveEvent::Finished(record) => {
                    finished = Some(record);
                    break;
                }
                _ => {}
            }
        }
    })
    .await;
    let finished = finished.expect("the other instance saw the call finish");
    assert_eq!(
        finished.outcome.as_ref().map(|o| o.status),
        Some(OutcomeStatus::Booked)
    );
    let transcript = &finished.transcript;
    assert!(
        lines.len() >= 3,
        "lines arrived live, not only in the final record: {lines:?}"
    );
    let seqs: Vec<u64> = lines.iter().map(|(s, _)| *s).collect();
    let expected: Vec<u64> = (seqs[0]..seqs[0] + seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "each line once, in order");
    assert_eq!(*seqs.last().unwrap() as usize, transcript.len());
    let _ = stop.send(());
    let _ = other_server.await;
    rig.shutdown().await;
}
