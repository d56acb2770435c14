//! The outside world of a load test, made as cheap as possible so that what is
//! measured is the server: a Realtime API ([`ModelStandIn`]) that echoes
//! every appended chunk of audio straight back as the agent's voice (echo
//! mode) or answers each turn of the callee the way the real API does
//! (realistic mode), a Twilio REST API that accepts every call and does
//! nothing else, and (for `--floor`) a trivial Media Stream server
//! ([`Floor`]) that does the model's part itself, with no bridge in between.
//!
//! Each parses the wire with its own few lines of code (as the simulators do),
//! so a wire bug in the product shows up as lost frames instead of being shared.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::wire::{self, FrameHeader, FrameKind, ReplyPlan, Traffic};

/// WebSocket buffers for the stand-ins and the load generator: every message
/// here is well under 1 KiB, and the default 128 KiB read buffer (zero-filled
/// on every read) would make the load generator, not the server, the
/// bottleneck.
pub fn small_ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(1024 * 1024))
}

/// Bind `127.0.0.1:port` (0: any free port).
async fn bind_loopback(port: u16, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port} for the {what}"))
}

/// Accept connections until cancelled, one task per connection.
fn spawn_acceptor<F, Fut>(
    listener: TcpListener,
    cancel: CancellationToken,
    handle: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        let cancel = cancel.clone();
                        let fut = handle(stream);
                        tokio::spawn(async move {
                            tokio::select! {
                                _ = cancel.cancelled() => {}
                                _ = fut => {}
                            }
                        });
                    }
                    Err(e) => {
                        debug!(error = %e, "bench: accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    }
                },
            }
        }
    })
}

// ------------------------------------------------------------ Realtime stand-in

/// What the model stand-in saw of the callee's audio: how late each 20 ms
/// frame reached the model (what joining frames into fewer appends costs
/// the model's turn detection).
#[derive(Debug)]
pub struct ModelStats {
    /// Frames sent before this ([`wire::clock_us`]) are not counted.
    steady_from_us: AtomicU64,
    /// `input_audio_buffer.append`s received.
    pub appends: AtomicU64,
    /// Frames received (in those appends).
    pub frames: AtomicU64,
    /// Frame sent by the callee → received by the model (µs), steady state.
    pub to_model: Mutex<Histogram<u64>>,
    /// The same for the last frame of each callee turn (realistic mode).
    pub turn_end: Mutex<Histogram<u64>>,
}

impl ModelStats {
    fn new() -> anyhow::Result<ModelStats> {
        let hist = || Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3);
        Ok(ModelStats {
            steady_from_us: AtomicU64::new(u64::MAX),
            appends: AtomicU64::new(0),
            frames: AtomicU64::new(0),
            to_model: Mutex::new(hist()?),
            turn_end: Mutex::new(hist()?),
        })
    }

    /// Count frames sent from `us` on ([`wire::clock_us`]).
    pub fn count_from(&self, us: u64) {
        self.steady_from_us.store(us, Ordering::Relaxed);
    }

    fn frame(&self, header: &FrameHeader) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        if header.sent_us < self.steady_from_us.load(Ordering::Relaxed) {
            return;
        }
        let late = wire::clock_us().saturating_sub(header.sent_us).max(1);
        if let Ok(mut h) = self.to_model.lock() {
            h.saturating_record(late);
        }
        if header.kind == FrameKind::TurnEnd {
            if let Ok(mut h) = self.turn_end.lock() {
                h.saturating_record(late);
            }
        }
    }
}

/// The Realtime stand-in: `session.created` on connect; on `session.update`,
/// `session.updated`. Echo mode: a reply begins (`response.created`,
/// `response.output_item.added`) and every `input_audio_buffer.append` comes
/// straight back as `response.output_audio.delta` with the same base64 text.
/// Realistic mode: speech start and stop, the callee's transcript, then a
/// reply per turn ([`ReplyPlan`]): audio deltas of the documented mix of
/// sizes, each with a transcript delta, faster than real time, then
/// `output_audio.done`, `output_audio_transcript.done`,
/// `output_item.done` and `response.done`.
pub struct ModelStandIn {
    addr: SocketAddr,
    stats: Arc<ModelStats>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl ModelStandIn {
    /// Listen on `127.0.0.1:port` (0: any free port).
    pub async fn start(port: u16, traffic: Traffic) -> anyhow::Result<ModelStandIn> {
        let listener = bind_loopback(port, "Realtime stand-in").await?;
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let stats = Arc::new(ModelStats::new()?);
        let shared = stats.clone();
        let task = spawn_acceptor(listener, cancel.clone(), move |stream| {
            model_session(stream, traffic, shared.clone())
        });
        Ok(ModelStandIn {
            addr,
            stats,
            cancel,
            task,
        })
    }

    /// The `OPENAI_REALTIME_URL` the server must be started with.
    pub fn url(&self) -> String {
        format!("ws://{}/v1/realtime", self.addr)
    }

    /// What it saw of the callee's audio.
    pub fn stats(&self) -> Arc<ModelStats> {
        self.stats.clone()
    }

    /// Stop accepting and close every session.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// The fields of a client event the stand-in needs, borrowed from the frame.
#[derive(Deserialize)]
struct ClientEvent<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    audio: Option<Cow<'a, str>>,
}

const RESPONSE_ID: &str = "resp_bench";
const ITEM_ID: &str = "item_bench";

/// Sleep until `at`, or forever.
async fn until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn model_session(stream: TcpStream, traffic: Traffic, stats: Arc<ModelStats>) {
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(small_ws_config())).await
    else {
        return;
    };
    let (mut tx, mut rx) = ws.split();
    let created = r#"{"type":"session.created","event_id":"event_bench_created","session":{"type":"realtime","object":"realtime.session","id":"sess_bench","model":"gpt-realtime","output_modalities":["audio"]}}"#;
    if tx.send(Message::text(created)).await.is_err() {
        return;
    }
    let mut responding = false;
    let mut seq = 0u64;
    let mut audio: Vec<u8> = Vec::with_capacity(1024);
    let mut reply: Option<ReplyPlan> = None;
    let mut speaking: Option<u32> = None;
    let mut out: Vec<String> = Vec::new();
    loop {
        let due = reply.as_ref().and_then(ReplyPlan::due);
        tokio::select! {
            msg = rx.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                let Ok(event) = serde_json::from_str::<ClientEvent>(text.as_str()) else {
                    continue;
                };
                match event.kind.as_ref() {
                    "session.update" => {
                        out.push(r#"{"type":"session.updated","event_id":"event_bench_updated","session":{"type":"realtime","object":"realtime.session","id":"sess_bench"}}"#.to_string());
                    }
                    "input_audio_buffer.append" => {
                        let Some(b64) = event.audio else { continue };
                        stats.appends.fetch_add(1, Ordering::Relaxed);
                        audio.clear();
                        if base64::engine::general_purpose::STANDARD
                            .decode_vec(b64.as_bytes(), &mut audio)
                            .is_err()
                        {
                            continue;
                        }
                        let mut turn_end = None;
                        for frame in audio.chunks(wire::FRAME_BYTES) {
                            let Some(header) = FrameHeader::read(frame) else { continue };
                            stats.frame(&header);
                            match header.kind {
                                FrameKind::Speech if speaking != Some(header.turn) => {
                                    speaking = Some(header.turn);
                                    out.push(speech_started(&header));
                                }
                                FrameKind::TurnEnd => turn_end = Some(header),
                                _ => {}
                            }
                        }
                        match traffic {
                            Traffic::Echo => {
                                if !responding {
                                    responding = true;
                                    out.extend(response_start(RESPONSE_ID, ITEM_ID));
                                }
                                // Frame by frame, whatever the append's size:
                                // the model's deltas do not follow the
                                // bridge's appends, and the floor echoes
                                // each frame too.
                                if audio.len() <= wire::FRAME_BYTES {
                                    seq += 1;
                                    out.push(audio_delta(seq, RESPONSE_ID, ITEM_ID, &b64));
                                } else {
                                    for frame in audio.chunks(wire::FRAME_BYTES) {
                                        seq += 1;
                                        let b64 = base64::engine::general_purpose::STANDARD.encode(frame);
                                        out.push(audio_delta(seq, RESPONSE_ID, ITEM_ID, &b64));
                                    }
                                }
                            }
                            Traffic::Realistic => {
                                if let Some(end) = turn_end {
                                    out.extend(turn_over(&end));
                                    let plan = ReplyPlan::new(end.call, end.turn, tokio::time::Instant::now());
                                    let (resp, item) = reply_ids(end.turn);
                                    out.extend(response_start(&resp, &item));
                                    reply = Some(plan);
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            () = until(due) => {
                if let Some(plan) = &mut reply {
                    let (resp, item) = reply_ids(plan.turn());
                    let word = plan.word();
                    if let Some(bytes) = plan.next_delta() {
                        seq += 1;
                        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
                        out.push(audio_delta(seq, &resp, &item, &b64));
                        out.push(format!(
                            r#"{{"type":"response.output_audio_transcript.delta","event_id":"event_bench_t{seq}","response_id":"{resp}","item_id":"{item}","output_index":0,"content_index":0,"delta":"{word}"}}"#
                        ));
                    }
                    if plan.is_done() {
                        out.extend(reply_over(&resp, &item));
                        reply = None;
                    }
                }
            }
        }
        if out.is_empty() {
            continue;
        }
        let mut ok = true;
        for m in out.drain(..) {
            ok &= tx.feed(Message::text(m)).await.is_ok();
        }
        if !ok || tx.flush().await.is_err() {
            break;
        }
    }
}

/// `resp_…` and `item_…` of the reply to `turn`.
fn reply_ids(turn: u32) -> (String, String) {
    (format!("resp_bench_{turn}"), format!("item_bench_a{turn}"))
}

const AGENT_WORDS: &str = "We have a table for two at seven.";

fn audio_delta(seq: u64, resp: &str, item: &str, b64: &str) -> String {
    let mut delta = String::with_capacity(b64.len() + 160);
    // base64 needs no escaping in JSON.
    let _ = write!(
        delta,
        r#"{{"type":"response.output_audio.delta","event_id":"event_bench_{seq}","response_id":"{resp}","item_id":"{item}","output_index":0,"content_index":0,"delta":"{b64}"}}"#
    );
    delta
}

fn speech_started(h: &FrameHeader) -> String {
    format!(
        r#"{{"type":"input_audio_buffer.speech_started","event_id":"event_bench_ss{}","audio_start_ms":{},"item_id":"item_bench_c{}"}}"#,
        h.turn,
        u64::from(h.frame_id) * 20,
        h.turn
    )
}

/// The callee's turn is over: speech stopped, the buffer committed, the
/// words transcribed.
fn turn_over(h: &FrameHeader) -> [String; 3] {
    let (turn, end_ms) = (h.turn, u64::from(h.frame_id) * 20 + 20);
    [
        format!(
            r#"{{"type":"input_audio_buffer.speech_stopped","event_id":"event_bench_sp{turn}","audio_end_ms":{end_ms},"item_id":"item_bench_c{turn}"}}"#
        ),
        format!(
            r#"{{"type":"input_audio_buffer.committed","event_id":"event_bench_cm{turn}","previous_item_id":null,"item_id":"item_bench_c{turn}"}}"#
        ),
        format!(
            r#"{{"type":"conversation.item.input_audio_transcription.completed","event_id":"event_bench_tc{turn}","item_id":"item_bench_c{turn}","content_index":0,"transcript":"Yes, for two at seven, please."}}"#
        ),
    ]
}

fn response_start(resp: &str, item: &str) -> [String; 2] {
    [
        format!(
            r#"{{"type":"response.created","event_id":"event_bench_rc","response":{{"object":"realtime.response","id":"{resp}","status":"in_progress","status_details":null,"output":[],"output_modalities":["audio"]}}}}"#
        ),
        format!(
            r#"{{"type":"response.output_item.added","event_id":"event_bench_ia","response_id":"{resp}","output_index":0,"item":{{"id":"{item}","object":"realtime.item","type":"message","status":"in_progress","role":"assistant","content":[]}}}}"#
        ),
    ]
}

/// The end of a reply, as the API sends it.
fn reply_over(resp: &str, item: &str) -> [String; 4] {
    let message = format!(
        r#"{{"id":"{item}","object":"realtime.item","type":"message","status":"completed","role":"assistant","content":[{{"type":"output_audio","transcript":"{AGENT_WORDS}"}}]}}"#
    );
    [
        format!(
            r#"{{"type":"response.output_audio.done","event_id":"event_bench_ad","response_id":"{resp}","item_id":"{item}","output_index":0,"content_index":0}}"#
        ),
        format!(
            r#"{{"type":"response.output_audio_transcript.done","event_id":"event_bench_td","response_id":"{resp}","item_id":"{item}","output_index":0,"content_index":0,"transcript":"{AGENT_WORDS}"}}"#
        ),
        format!(
            r#"{{"type":"response.output_item.done","event_id":"event_bench_id","response_id":"{resp}","output_index":0,"item":{message}}}"#
        ),
        format!(
            r#"{{"type":"response.done","event_id":"event_bench_rd","response":{{"object":"realtime.response","id":"{resp}","status":"completed","status_details":null,"output":[{message}],"output_modalities":["audio"]}}}}"#
        ),
    ]
}

// ------------------------------------------------------------ Twilio REST

/// The Twilio REST stand-in: `POST …/Calls.json` answers `201` with a new
/// `CallSid` and keeps the `Twiml` form field for the bench, which then opens
/// the Media Stream itself; `POST …/Calls/{sid}.json` (hang up) answers `200`.
/// No callbacks, no ringing: only what it takes to place a call for real.
pub struct FakeTwilio {
    addr: SocketAddr,
    twiml: Arc<Mutex<HashMap<String, String>>>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl FakeTwilio {
    /// Listen on `127.0.0.1:port` (0: any free port).
    pub async fn start(port: u16) -> anyhow::Result<FakeTwilio> {
        let listener = bind_loopback(port, "Twilio REST stand-in").await?;
        let addr = listener.local_addr()?;
        let twiml: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let cancel = CancellationToken::new();
        let router = axum::Router::new()
            .fallback(rest_handler)
            .with_state(twiml.clone());
        let stop = cancel.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
        });
        Ok(FakeTwilio {
            addr,
            twiml,
            cancel,
            task,
        })
    }

    /// The `TWILIO_API_BASE` the server must be started with.
    pub fn api_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The TwiML call `sid` was created with (once).
    pub fn take_twiml(&self, sid: &str) -> Option<String> {
        self.handle().take(sid)
    }

    /// A handle to the TwiML it received, for the call tasks.
    pub fn handle(&self) -> TwimlBook {
        TwimlBook(self.twiml.clone())
    }

    /// Stop serving.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// The TwiML of each call the REST stand-in created, by `CallSid`.
#[derive(Clone, Debug)]
pub struct TwimlBook(Arc<Mutex<HashMap<String, String>>>);

impl TwimlBook {
    /// The TwiML call `sid` was created with (once).
    pub fn take(&self, sid: &str) -> Option<String> {
        self.0.lock().ok()?.remove(sid)
    }
}

async fn rest_handler(
    axum::extract::State(store): axum::extract::State<Arc<Mutex<HashMap<String, String>>>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (Method::POST, ["2010-04-01", "Accounts", account, "Calls.json"]) => {
            let form: Vec<(String, String)> =
                serde_urlencoded::from_bytes(&body).unwrap_or_default();
            let Some((_, twiml)) = form.into_iter().find(|(k, _)| k == "Twiml") else {
                return (StatusCode::BAD_REQUEST, "Twiml is required").into_response();
            };
            let sid = format!("CA{:032x}", rand::random::<u128>());
            if let Ok(mut map) = store.lock() {
                map.insert(sid.clone(), twiml);
            }
            let body = serde_json::json!({"sid": sid, "account_sid": account, "status": "queued", "direction": "outbound-api"});
            (StatusCode::CREATED, axum::Json(body)).into_response()
        }
        (Method::POST, ["2010-04-01", "Accounts", account, "Calls", file]) => {
            let sid = file.trim_end_matches(".json");
            let body =
                serde_json::json!({"sid": sid, "account_sid": account, "status": "completed"});
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

// ------------------------------------------------------------ floor

/// The `--floor` target: a Media Stream endpoint with no bridge at all,
/// doing the model's part itself. Echo mode: each inbound `media` goes
/// straight back as outbound `media` followed by a `mark` (the same two
/// messages per frame the real server sends). Realistic mode: at the end of
/// each callee turn it sends the same reply the model stand-in would
/// ([`ReplyPlan`], same sizes, same pace), a `media` and a `mark` per delta.
/// So the load generator does the same work and only the bridge is missing.
/// Run in its own process (`reservoice bench --serve-floor PORT`), its CPU
/// is measured like the server's.
pub struct Floor {
    addr: SocketAddr,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Floor {
    /// Listen on `127.0.0.1:port` (0: any free port).
    pub async fn start(port: u16, traffic: Traffic) -> anyhow::Result<Floor> {
        let listener = bind_loopback(port, "floor server").await?;
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let task = spawn_acceptor(listener, cancel.clone(), move |stream| {
            floor_session(stream, traffic)
        });
        Ok(Floor { addr, cancel, task })
    }

    /// The `<Stream url>` the load connects to.
    pub fn stream_url(&self) -> String {
        floor_url(self.addr.port())
    }

    /// Stop accepting and close every stream.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// The stream URL of a floor listening on loopback `port`.
pub fn floor_url(port: u16) -> String {
    format!("ws://127.0.0.1:{port}/media-stream")
}

#[derive(Deserialize)]
struct InboundFrame<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow, default)]
    media: Option<InboundMedia<'a>>,
    #[serde(borrow, rename = "streamSid", default)]
    stream_sid: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct InboundMedia<'a> {
    #[serde(borrow)]
    payload: Cow<'a, str>,
}

async fn floor_session(stream: TcpStream, traffic: Traffic) {
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(small_ws_config())).await
    else {
        return;
    };
    let (mut tx, mut rx) = ws.split();
    let mut stream_sid = String::new();
    let mut marks = 0u64;
    let mut reply: Option<ReplyPlan> = None;
    let mut audio: Vec<u8> = Vec::with_capacity(wire::FRAME_BYTES);
    loop {
        let due = reply.as_ref().and_then(ReplyPlan::due);
        let send: Option<String> = tokio::select! {
            msg = rx.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                let Ok(frame) = serde_json::from_str::<InboundFrame>(text.as_str()) else {
                    continue;
                };
                match (frame.event.as_ref(), frame.media, traffic) {
                    ("start", _, _) => {
                        stream_sid = frame.stream_sid.unwrap_or_default().into_owned();
                        None
                    }
                    ("media", Some(media), Traffic::Echo) => Some(media.payload.into_owned()),
                    ("media", Some(media), Traffic::Realistic) => {
                        audio.clear();
                        let decoded = base64::engine::general_purpose::STANDARD
                            .decode_vec(media.payload.as_bytes(), &mut audio)
                            .is_ok();
                        if let Some(h) = FrameHeader::read(&audio).filter(|_| decoded) {
                            if h.kind == FrameKind::TurnEnd {
                                reply = Some(ReplyPlan::new(h.call, h.turn, tokio::time::Instant::now()));
                            }
                        }
                        None
                    }
                    ("stop", _, _) => break,
                    _ => None,
                }
            }
            () = until(due) => {
                let delta = reply.as_mut().and_then(ReplyPlan::next_delta);
                if reply.as_ref().is_some_and(ReplyPlan::is_done) {
                    reply = None;
                }
                delta.map(|bytes| base64::engine::general_purpose::STANDARD.encode(bytes))
            }
        };
        let Some(payload) = send else { continue };
        marks += 1;
        let mut out = String::with_capacity(payload.len() + 96);
        let _ = write!(
            out,
            r#"{{"event":"media","streamSid":"{stream_sid}","media":{{"payload":"{payload}"}}}}"#
        );
        let mark = format!(
            r#"{{"event":"mark","streamSid":"{stream_sid}","mark":{{"name":"floor:{marks}"}}}}"#
        );
        let ok = tx.feed(Message::text(out)).await.is_ok()
            && tx.feed(Message::text(mark)).await.is_ok()
            && tx.flush().await.is_ok();
        if !ok {
            break;
        }
    }
    let _ = tx.close().await;
}
