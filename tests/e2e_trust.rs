//! Trust and bad input (issue 3), end to end: only Twilio gets in, nothing a
//! user types breaks a call, and a live call survives the unexpected.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reservoice::cli::client::ApiClient;
use reservoice::domain::reservation::RequestRules;
use reservoice::domain::{CallRecord, CallStatus, OutcomeStatus, Speaker};
use reservoice::sim::rig::{Rig, RigOptions};
use reservoice::sim::scenario::Scenario;
use reservoice::twilio::signature;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

async fn wait_finished(rig: &Rig, id: &str, secs: u64) -> CallRecord {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(r) = rig.store().get(id).await.unwrap() {
            if r.is_finished() {
                return r;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("call {id} not finished in {secs} s: {r:?}");
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A restaurant that picks up and never says a word.
fn silent() -> Scenario {
    Scenario {
        name: "silent",
        host: vec![],
        agent: vec![],
        on_system: None,
        language: None,
    }
}

async fn place(rig: &Rig) -> String {
    let client = ApiClient::new(&rig.server_url, None).unwrap();
    client
        .create_call(&rig.request())
        .await
        .expect("call placed")
        .id
}

/// A signed Media Stream connection, as Twilio would open it.
async fn twilio_socket(
    rig: &Rig,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = format!("ws://{}/media-stream", rig.server_addr);
    let mut request = url.as_str().into_client_request().unwrap();
    let sig = signature::compute(&rig.auth_token, &url, &[]);
    request
        .headers_mut()
        .insert("X-Twilio-Signature", sig.parse().unwrap());
    tokio_tungstenite::connect_async(request)
        .await
        .expect("signed upgrade accepted")
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_refusal_reaches_the_user_and_is_recorded() {
    let rig = Rig::start(RigOptions {
        server_auth_token_override: Some("wrong-token-wrong-token-wrong-tok".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let res = reqwest::Client::new()
        .post(format!("{}/api/calls", rig.server_url))
        .json(&rig.request())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["twilio_code"], 20003);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("Twilio refused the call (20003):"),
        "{body}"
    );
    assert_eq!(body["call"]["status"], "failed");
    assert_eq!(body["call"]["outcome"]["status"], "failed");
    // The same body, read as the contract's type.
    let typed: reservoice::contract::ApiError = serde_json::from_value(body.clone()).unwrap();
    match typed.kind {
        reservoice::contract::ErrorKind::CallNotPlaced {
            twilio_code: Some(20003),
            call: Some(call),
        } => assert_eq!(call.status, CallStatus::Failed),
        other => panic!("not a refusal: {other:?}"),
    }

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_reservoice"))
        .args([
            "call",
            "--to",
            "+12125550123",
            "--restaurant",
            "X",
            "--party-size",
            "2",
            "--date",
            "tomorrow",
            "--time",
            "7pm",
            "--name",
            "A B",
        ])
        .env("RESERVOICE_SERVER", &rig.server_url)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Twilio refused the call (20003)"), "{err}");
    // `calls show` tells the refusal once, not as the outcome and again as a problem.
    let id = body["call"]["id"].as_str().expect("the refused call's id");
    let show = tokio::process::Command::new(env!("CARGO_BIN_EXE_reservoice"))
        .args(["calls", "show", id])
        .env("RESERVOICE_SERVER", &rig.server_url)
        .output()
        .await
        .unwrap();
    let shown = String::from_utf8_lossy(&show.stdout);
    assert_eq!(show.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("Call failed — Twilio refused the call (20003)"),
        "{shown}"
    );
    assert_eq!(
        shown.matches("Twilio refused the call").count(),
        1,
        "{shown}"
    );
    let calls = ApiClient::new(&rig.server_url, None)
        .unwrap()
        .list_calls(10)
        .await
        .unwrap();
    assert_eq!(calls.len(), 2);
    assert!(calls
        .iter()
        .all(|c| c.status == CallStatus::Failed && c.outcome == Some(OutcomeStatus::Failed)));
    assert!(rig.phone.calls().is_empty());
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_needs_its_token_when_one_is_set() {
    let rig = Rig::start(RigOptions {
        api_token: Some("s3cret-token".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/api/calls", rig.server_url);
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(
        http.get(&url)
            .bearer_auth("nope")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        http.get(&url)
            .bearer_auth("s3cret-token")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http.post(&url)
            .json(&rig.request())
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert!(
        rig.phone.calls().is_empty(),
        "an unauthenticated request places no call"
    );
    // Twilio's webhooks and the health check are not behind the API token.
    assert_eq!(
        http.get(format!("{}/healthz", rig.server_url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_reservoice"))
        .args(["calls"])
        .env("RESERVOICE_SERVER", &rig.server_url)
        .env("RESERVOICE_API_TOKEN", "wrong")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused the API token"));
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_model_ends_the_call_with_an_apology() {
    let rig = Rig::start(RigOptions {
        realtime_url_override: Some("ws://127.0.0.1:9/v1/realtime".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let id = place(&rig).await;
    let record = wait_finished(&rig, &id, 60).await;
    let outcome = record.outcome.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(outcome
        .notes
        .unwrap()
        .contains("AI model could not be reached"));
    let call = rig
        .phone
        .wait_ended(&id, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(call.ended_by.as_deref(), Some("rest:twiml"));
    assert!(
        call.say_texts
            .iter()
            .any(|t| t.contains("technical problem")),
        "{:?}",
        call.say_texts
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_dropping_mid_call_is_reconnected_with_the_conversation_so_far() {
    let rig = Rig::start(RigOptions::default()).await.unwrap();
    rig.model.as_ref().unwrap().drop_session_after_responses(1);
    let id = place(&rig).await;
    let record = wait_finished(&rig, &id, 90).await;
    assert_eq!(
        record.outcome.as_ref().unwrap().status,
        OutcomeStatus::Booked,
        "{record:?}"
    );
    let sessions = rig.model.as_ref().unwrap().sessions();
    assert_eq!(sessions.len(), 2, "one reconnection");
    let restore = sessions[1]
        .client_events
        .iter()
        .find(|e| e["type"] == "conversation.item.create" && e["item"]["role"] == "system")
        .expect("the conversation so far is restored as text");
    let text = restore["item"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("Restaurant: Good evening, Chez Demo"),
        "{text}"
    );
    assert!(
        text.contains("You: Hello, this is an automated assistant"),
        "{text}"
    );
    assert!(sessions[1]
        .client_events
        .iter()
        .any(|e| e["type"] == "session.update"));
    // Times stay on the call's clock across the two model sessions.
    assert!(
        record
            .transcript
            .windows(2)
            .all(|w| w[0].at_ms <= w[1].at_ms),
        "{:?}",
        record.transcript
    );
    // Nothing said before the drop is lost.
    assert!(record
        .transcript
        .iter()
        .any(|l| l.speaker == Speaker::Agent && l.text.contains("automated assistant")));
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_ends_the_call_politely() {
    let rig = Rig::start(RigOptions {
        custom_scenario: Some(silent()),
        max_silence_secs: 5,
        ..Default::default()
    })
    .await
    .unwrap();
    let id = place(&rig).await;
    let record = wait_finished(&rig, &id, 60).await;
    let notes = record.outcome.as_ref().unwrap().notes.clone().unwrap();
    assert!(notes.contains("nobody spoke for 5 s"), "{notes}");
    let call = rig
        .phone
        .wait_ended(&id, Duration::from_secs(20))
        .await
        .unwrap();
    assert!(
        call.say_texts
            .iter()
            .any(|t| t.contains("I have to end the call now")),
        "{call:?}"
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_one_stream_does_not_touch_another_call() {
    let rig = Rig::start(RigOptions::default()).await.unwrap();
    let id = place(&rig).await;

    // A stream that sends nonsense, then an oversized frame.
    let mut junk = twilio_socket(&rig).await;
    for frame in [
        "{",
        "[]",
        r#"{"event":"media","media":{"payload":"AAAA"}}"#,
        r#"{"event":"launch"}"#,
        "\u{0}\u{1}",
    ] {
        junk.send(Message::text(frame)).await.unwrap();
    }
    let _ = junk.send(Message::text("x".repeat(200 * 1024))).await;
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match junk.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                _ => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "an oversized frame closes that stream");

    // A stream whose `start` names no call we placed, and one missing parameters.
    let mut stranger = twilio_socket(&rig).await;
    stranger
        .send(Message::text(
            json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}).to_string(),
        ))
        .await
        .unwrap();
    let start = json!({"event": "start", "sequenceNumber": "1", "streamSid": "MZx", "start": {"accountSid": "ACx", "streamSid": "MZx", "callSid": "CAnot-ours", "tracks": ["inbound"], "customParameters": {}}});
    stranger
        .send(Message::text(start.to_string()))
        .await
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(m)) = stranger.next().await {
            if m.is_close() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "an unknown call's stream is closed");

    // A stream for a known call that closes without `stop`: the record is finalised.
    let rules = RequestRules {
        default_timezone: chrono_tz::Tz::UTC,
        max_party_size: 20,
        dial_policy: Default::default(),
        default_language: None,
    };
    let reservation = rig
        .request()
        .into_reservation(&rules, chrono::Utc::now())
        .unwrap();
    rig.store()
        .insert(
            "CAabrupt",
            &reservation,
            "tok-abrupt",
            CallStatus::InProgress,
        )
        .await
        .unwrap();
    let mut params: serde_json::Map<String, Value> = reservation
        .to_parameters()
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    params.insert("call_token".into(), "tok-abrupt".into());
    let mut abrupt = twilio_socket(&rig).await;
    let start = json!({"event": "start", "sequenceNumber": "1", "streamSid": "MZy", "start": {"accountSid": "ACx", "streamSid": "MZy", "callSid": "CAabrupt", "tracks": ["inbound"], "customParameters": params}});
    abrupt.send(Message::text(start.to_string())).await.unwrap();
    // The restaurant presses a key: the model is told in words.
    let dtmf = json!({"event": "dtmf", "streamSid": "MZy", "sequenceNumber": "2", "dtmf": {"track": "inbound_track", "digit": "5"}});
    abrupt.send(Message::text(dtmf.to_string())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    drop(abrupt);
    let abrupt_record = wait_finished_outcome(&rig, "CAabrupt").await;
    assert!(abrupt_record
        .transcript
        .iter()
        .any(|l| l.speaker == Speaker::Callee && l.text == "(pressed 5)"));
    assert_eq!(abrupt_record.outcome.unwrap().status, OutcomeStatus::Failed);
    let told = rig.model.as_ref().unwrap().sessions().iter().any(|s| {
        s.client_events.iter().any(|e| {
            e["type"] == "conversation.item.create"
                && e["item"]["content"][0]["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("pressed key 5"))
        })
    });
    assert!(told, "the model heard about the key press");

    // Meanwhile the real call went on unharmed.
    let record = wait_finished(&rig, &id, 90).await;
    assert_eq!(record.outcome.unwrap().status, OutcomeStatus::Booked);
    rig.shutdown().await;
}

async fn wait_finished_outcome(rig: &Rig, id: &str) -> CallRecord {
    for _ in 0..100 {
        let r = rig.store().get(id).await.unwrap().unwrap();
        if r.outcome
            .as_ref()
            .is_some_and(|o| o.status != OutcomeStatus::InProgress)
        {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no outcome for {id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_then_ends_live_calls_politely_keeping_the_transcript() {
    let mut rig = Rig::start(RigOptions {
        drain_secs: 2,
        ..Default::default()
    })
    .await
    .unwrap();
    let id = place(&rig).await;
    // Wait until the conversation is on.
    for _ in 0..200 {
        let r = rig.store().get(&id).await.unwrap().unwrap();
        if !r.transcript.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = rig.server_url.clone();
    let request = rig.request();
    let probe = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        reqwest::Client::new()
            .post(format!("{url}/api/calls"))
            .json(&request)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    rig.stop_server().await;
    assert_eq!(
        probe.await.unwrap().unwrap(),
        503,
        "no new calls while draining"
    );
    // Reopen the database the stopped server wrote.
    let store = reservoice::store::CallStore::open(&rig.database_url)
        .await
        .unwrap();
    let record = store.get(&id).await.unwrap().unwrap();
    assert!(
        !record.transcript.is_empty(),
        "lines spoken before the shutdown are kept"
    );
    let outcome = record.outcome.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Failed);
    assert!(outcome.notes.unwrap().contains("server shut down"));
    let call = rig
        .phone
        .wait_ended(&id, Duration::from_secs(20))
        .await
        .unwrap();
    assert!(
        call.say_texts
            .iter()
            .any(|t| t.contains("technical problem")),
        "{:?}",
        call.say_texts
    );
    rig.shutdown().await;
}

/// Another instance took the call's lease over (as if this one had been cut
/// off from the database and judged dead): at its next renewal the live
/// session hears of it and closes the stream without writing, long before
/// any limit of the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_lease_was_taken_over_closes_its_stream() {
    let rig = Rig::start(RigOptions {
        custom_scenario: Some(silent()),
        lease: Some(reservoice::store::LeaseTimings::lasting(
            Duration::from_secs(2),
        )),
        ..Default::default()
    })
    .await
    .unwrap();
    let id = place(&rig).await;
    let db = sqlx::SqlitePool::connect(&rig.database_url).await.unwrap();
    // The session takes the lease once its stream started.
    let mut holder: Option<String> = None;
    for _ in 0..100 {
        holder = sqlx::query_scalar("SELECT holder FROM call_leases WHERE call_id = $1")
            .bind(&id)
            .fetch_optional(&db)
            .await
            .unwrap();
        if holder.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(holder.is_some(), "the live call holds its lease");
    // Another holder, not expired: no reaper touches it, only the renewal
    // finds it gone.
    sqlx::query("UPDATE call_leases SET holder = 'another-instance', expires_ms = expires_ms + 600000 WHERE call_id = $1")
        .bind(&id)
        .execute(&db)
        .await
        .unwrap();
    let call = rig
        .phone
        .wait_ended(&id, Duration::from_secs(15))
        .await
        .expect("the call ends well before its 60 s silence limit");
    assert_eq!(call.ended_by.as_deref(), Some("socket_closed"), "{call:?}");
    // Closed without a word of its own: no apology redirect.
    assert!(
        call.say_texts.iter().all(|t| !t.contains("end the call")),
        "{call:?}"
    );
    db.close().await;
    rig.shutdown().await;
}
