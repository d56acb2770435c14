//! Both simulators wired together by a deliberately tiny bridge (a stand-in
//! for the product's own bridge) to prove the simulated call plays out: host
//! cues (Answer, Interrupt, AfterAgent), VAD turns, barge-in with clear +
//! truncate, finish_call, goodbye, hang-up over REST. Also the template for
//! the product's end-to-end tests: start both sims, point the product at
//! `api_base()` / `url()`, place a call, `wait_ended`, assert on the records.

use axum::extract::ws::{Message as AxMessage, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use reservoice::sim::realtime::RealtimeSim;
use reservoice::sim::scenario::{Booking, Scenario};
use reservoice::sim::telephone::{TelephoneConfig, TelephoneSim};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const AC: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const TOKEN: &str = "12345678901234567890123456789012";
const KEY: &str = "sk-loopback";

struct Bridge {
    realtime_url: String,
    api_base: String,
}

async fn media(State(b): State<Arc<Bridge>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |s| bridge(s, b))
}

/// Minimal mark-based bridge (openai-realtime.md 8.2, simplified to one playing item).
async fn bridge(mut twilio: WebSocket, b: Arc<Bridge>) {
    let mut req = format!("{}?model=gpt-realtime", b.realtime_url)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {KEY}").parse().unwrap());
    let (mut oai, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let update: Value =
        serde_json::from_str(include_str!("fixtures/protocol/openai_session_update.json")).unwrap();
    oai.send(WsMessage::Text(update.to_string().into()))
        .await
        .unwrap();

    let (mut sid, mut call_sid) = (String::new(), String::new());
    let mut pending: HashSet<String> = HashSet::new();
    let mut flushed: HashSet<String> = HashSet::new();
    let (mut item, mut sent_ms, mut played_ms) = (String::new(), 0u64, 0u64);
    let (mut mark_n, mut finished, mut goodbye_done, mut discard) =
        (0u64, false, false, None::<String>);
    loop {
        tokio::select! {
            m = twilio.recv() => {
                let Some(Ok(AxMessage::Text(t))) = m else { break };
                let v: Value = serde_json::from_str(&t).unwrap();
                match v["event"].as_str().unwrap_or("") {
                    "start" => {
                        sid = v["streamSid"].as_str().unwrap().into();
                        call_sid = v["start"]["callSid"].as_str().unwrap().into();
                    }
                    "media" => {
                        let ev = json!({"type": "input_audio_buffer.append", "audio": v["media"]["payload"]});
                        oai.send(WsMessage::Text(ev.to_string().into())).await.unwrap();
                    }
                    "mark" => {
                        let name = v["mark"]["name"].as_str().unwrap().to_string();
                        if flushed.remove(&name) { continue; }
                        if pending.remove(&name) {
                            if let Some(ms) = name.split(':').nth(1).and_then(|x| x.parse().ok()) {
                                played_ms = played_ms.max(ms);
                            }
                        }
                        if goodbye_done && pending.is_empty() {
                            reqwest::Client::new()
                                .post(format!("{}/2010-04-01/Accounts/{AC}/Calls/{call_sid}.json", b.api_base))
                                .basic_auth(AC, Some(TOKEN))
                                .form(&[("Status", "completed")])
                                .send().await.unwrap();
                        }
                    }
                    _ => {}
                }
            }
            m = oai.next() => {
                let Some(Ok(WsMessage::Text(t))) = m else { break };
                let v: Value = serde_json::from_str(&t).unwrap();
                match v["type"].as_str().unwrap_or("") {
                    "response.output_audio.delta" => {
                        if discard.as_deref() == v["response_id"].as_str() { continue; }
                        let id = v["item_id"].as_str().unwrap();
                        if id != item { item = id.into(); sent_ms = 0; played_ms = 0; }
                        let len = base64_len(v["delta"].as_str().unwrap());
                        sent_ms += len as u64 / 8;
                        mark_n += 1;
                        let name = format!("{item}:{sent_ms}:m{mark_n}");
                        for out in [json!({"event": "media", "streamSid": sid, "media": {"payload": v["delta"]}}),
                                    json!({"event": "mark", "streamSid": sid, "mark": {"name": name}})] {
                            twilio.send(AxMessage::Text(out.to_string().into())).await.unwrap();
                        }
                        pending.insert(name);
                    }
                    "input_audio_buffer.speech_started" if !pending.is_empty() => {
                        let clear = json!({"event": "clear", "streamSid": sid});
                        twilio.send(AxMessage::Text(clear.to_string().into())).await.unwrap();
                        flushed.extend(pending.drain());
                        let end = sent_ms.min(played_ms + 50);
                        let tr = json!({"type": "conversation.item.truncate", "item_id": item, "content_index": 0, "audio_end_ms": end});
                        oai.send(WsMessage::Text(tr.to_string().into())).await.unwrap();
                    }
                    "response.created" => discard = None,
                    "response.function_call_arguments.done" => {
                        finished = true;
                        let out = json!({"type": "conversation.item.create", "item": {"type": "function_call_output",
                            "call_id": v["call_id"], "output": "{\"recorded\":true}"}});
                        oai.send(WsMessage::Text(out.to_string().into())).await.unwrap();
                    }
                    "response.done" => {
                        let has_audio = v["response"]["output"].as_array().unwrap().iter().any(|i| i["type"] == "message");
                        let is_call = v["response"]["output"].as_array().unwrap().iter().any(|i| i["type"] == "function_call");
                        if is_call {
                            let rc = json!({"type": "response.create"});
                            oai.send(WsMessage::Text(rc.to_string().into())).await.unwrap();
                        } else if finished && has_audio {
                            goodbye_done = true;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

fn base64_len(s: &str) -> usize {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map(|b| b.len())
        .unwrap_or(0)
}

#[tokio::test]
async fn simulated_barge_in_call_plays_out() {
    let t0 = Instant::now();
    let booking = Booking::demo();
    let scenario = Scenario::barge_in(&booking);
    let rt = RealtimeSim::start(scenario.clone(), Some(KEY.into()))
        .await
        .unwrap();
    let tel = TelephoneSim::start(TelephoneConfig {
        account_sid: AC.into(),
        auth_token: TOKEN.into(),
        scenario: scenario.clone(),
        lines: HashMap::new(),
        ring_ms: 200,
        key_press_update: Default::default(),
    })
    .await
    .unwrap();
    let bridge = Arc::new(Bridge {
        realtime_url: rt.url(),
        api_base: tel.api_base(),
    });
    let app = Router::new().route("/media", get(media)).with_state(bridge);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let twiml = format!("<Response><Connect><Stream url=\"ws://{addr}/media\"><Parameter name=\"call_token\" value=\"t\"/></Stream></Connect></Response>");
    let resp: Value = reqwest::Client::new()
        .post(format!(
            "{}/2010-04-01/Accounts/{AC}/Calls.json",
            tel.api_base()
        ))
        .basic_auth(AC, Some(TOKEN))
        .form(&[
            ("To", "+15551234567"),
            ("From", "+15557654321"),
            ("Twiml", &twiml),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sid = resp["sid"].as_str().unwrap();
    let call = tel
        .wait_ended(sid, Duration::from_secs(60))
        .await
        .expect("call ended within 60 s");

    assert_eq!(call.ended_by.as_deref(), Some("rest:completed"));
    assert_eq!(
        call.host_lines_spoken,
        vec!["greeting", "interrupt", "barge_confirm"]
    );
    assert_eq!(call.clears.len(), 1, "{:?}", call.clears);
    let heard = call.clears[0].played_in_turn_ms;
    assert!(
        (1500..=1800).contains(&heard),
        "clear after {heard} ms of the intro"
    );
    assert_eq!(call.ignored_messages, 0);

    let sessions = rt.sessions();
    assert_eq!(sessions.len(), 1);
    let s = &sessions[0];
    assert_eq!(s.truncates.len(), 1);
    let tr = &s.truncates[0];
    assert!(
        tr.audio_end_ms <= tr.item_audio_ms && tr.audio_end_ms >= 1500,
        "{tr:?}"
    );
    assert_eq!(s.unscripted_responses, 0);
    // The agent audio heard: the cut intro, then "For four people." and the goodbye in full.
    let four = reservoice::sim::voice::speak(scenario.agent[1].say.as_deref().unwrap());
    let bye = reservoice::sim::voice::speak(scenario.agent[3].say.as_deref().unwrap());
    assert_eq!(
        call.agent_audio.len(),
        (heard as usize) * 8 + four.len() + bye.len()
    );
    assert!(call.agent_audio.ends_with(&bye));
    eprintln!("simulated barge-in call took {:?}", t0.elapsed());
    tel.shutdown().await;
    rt.shutdown().await;
}
