//! A stand-in for the OpenAI Realtime API (GA protocol) on loopback.
//!
//! One WebSocket session per connection, each following a fresh copy of the
//! [`Scenario`]: an energy [`Vad`] over the appended audio emits the
//! `input_audio_buffer.*` turn events, each utterance is "transcribed" as the
//! next host line of the scenario, and each model response plays the next
//! scripted [`crate::sim::scenario::AgentResponse`] (speech from
//! [`voice::speak`], then an optional function call), streamed faster than
//! real time in 100 ms audio deltas like the real service. Event shapes follow
//! the `tests/fixtures/protocol/openai_*.json` fixtures exactly.
//!
//! A scenario whose restaurant speaks another language ([`HostLanguage`])
//! is played only for a session whose brief asks for that language (and whose
//! transcription hint names it); otherwise the stand-in fails the call
//! loudly: an `error` event saying what is missing, then a close frame
//! ([`REFUSAL_CLOSE_CODE`]) with the same reason.
//!
//! The session logic ([`Session`]) is synchronous and produces an outbox of
//! JSON events; the socket task only moves frames and drives the pacing timer,
//! so nothing here can panic on bad client input.

#[cfg(doc)]
use crate::sim::scenario::HostLanguage;
use crate::sim::scenario::Scenario;
use crate::sim::switchboard::Switchboard;
use crate::sim::vad::{Vad, VadEvent};
use crate::sim::voice;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Bytes per `response.output_audio.delta`: 100 ms of mu-law, like the real API.
pub const AUDIO_CHUNK_BYTES: usize = 800;
/// Pause between two audio deltas: 10 ms per 100 ms of audio (10x real time).
pub const AUDIO_CHUNK_INTERVAL: Duration = Duration::from_millis(10);

/// What one session received, for test assertions.
#[derive(Clone, Debug, Default)]
pub struct SessionLog {
    /// `model` query parameter of the connection URL.
    pub model: Option<String>,
    /// Every client event received, in order (non-JSON frames as `{"_unparsed": text}`).
    pub client_events: Vec<Value>,
    /// Every `conversation.item.truncate` received, with the item's audio length.
    pub truncates: Vec<Truncate>,
    /// Responses the product triggered after the scenario's agent script ran out
    /// (nothing was produced for them).
    pub unscripted_responses: u32,
    /// Why the stand-in refused to play the call (a restaurant speaking
    /// another language than the brief asks for); it then closed the session.
    pub refusal: Option<String>,
}

/// WebSocket close code the stand-in uses when it refuses a session
/// (1008, policy violation: the session breaks the scenario's rules).
pub const REFUSAL_CLOSE_CODE: u16 = 1008;

/// One `conversation.item.truncate` as received, with the audio the item had.
#[derive(Clone, Debug)]
pub struct Truncate {
    /// The assistant item truncated.
    pub item_id: String,
    /// Where the product cut it (ms of that item's audio).
    pub audio_end_ms: u64,
    /// Total audio generated for the item (ms) when the truncate arrived.
    pub item_audio_ms: u64,
}

struct Shared {
    scenario: Scenario,
    api_key: Option<String>,
    sessions: Mutex<Vec<SessionLog>>,
    cancel: CancellationToken,
    /// Script position (agent response, host line) a new session resumes at.
    cursor: Mutex<(usize, usize)>,
    /// Drop the connection after this many `response.done` (one-shot).
    drop_after: Mutex<Option<usize>>,
    /// When set, each session plays the script of the call it is briefed
    /// for, and resumes per call (instead of `scenario` and `cursor`).
    switchboard: std::sync::OnceLock<Arc<Switchboard>>,
}

/// The running Realtime stand-in: an HTTP/WebSocket server on 127.0.0.1.
pub struct RealtimeSim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl RealtimeSim {
    /// Listen on 127.0.0.1:0. Each WebSocket session follows `scenario` (a
    /// fresh copy per session). `api_key`: if `Some`, require `Authorization:
    /// Bearer <key>` on the upgrade (401 otherwise), so tests catch a product
    /// that forgets the header.
    pub async fn start(scenario: Scenario, api_key: Option<String>) -> anyhow::Result<RealtimeSim> {
        let shared = Arc::new(Shared {
            scenario,
            api_key,
            sessions: Mutex::new(Vec::new()),
            cancel: CancellationToken::new(),
            cursor: Mutex::new((0, 0)),
            drop_after: Mutex::new(None),
            switchboard: std::sync::OnceLock::new(),
        });
        let app = Router::new()
            .route("/v1/realtime", get(ws_handler))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let cancel = shared.cancel.clone();
        let server = tokio::spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(async move { cancel.cancelled().await })
                .await;
            if let Err(e) = result {
                warn!(error = %e, "realtime sim server stopped with an error");
            }
        });
        info!(%addr, "realtime sim listening");
        Ok(RealtimeSim {
            addr,
            shared,
            server,
        })
    }

    /// `ws://127.0.0.1:PORT/v1/realtime` (clients append `?model=...`), the
    /// value to use as the product's Realtime base URL.
    pub fn url(&self) -> String {
        format!("ws://{}/v1/realtime", self.addr)
    }

    /// From now on, each session plays the script `switchboard` wrote for the
    /// call its instructions name (several calls, several scenarios). Set once.
    pub fn use_switchboard(&self, switchboard: Arc<Switchboard>) {
        let _ = self.shared.switchboard.set(switchboard);
    }

    /// Every client event received, per session (in connection order), for assertions.
    pub fn sessions(&self) -> Vec<SessionLog> {
        lock(&self.shared.sessions).clone()
    }

    /// Make the live session (or the next one) drop its connection abruptly
    /// right after its `n`-th `response.done`, as a network loss would. The
    /// next session resumes the script where the dropped one stopped, as the
    /// real model would continue a conversation the product restored.
    pub fn drop_session_after_responses(&self, n: usize) {
        *lock(&self.shared.drop_after) = Some(n);
    }

    /// Close all sessions and stop listening.
    pub async fn shutdown(self) {
        self.shared.cancel.cancel();
        let mut server = self.server;
        if tokio::time::timeout(Duration::from_secs(2), &mut server)
            .await
            .is_err()
        {
            server.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn ws_handler(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    if let Some(key) = &shared.api_key {
        let expected = format!("Bearer {key}");
        let ok = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == expected);
        if !ok {
            let body = json!({"error": {
                "message": "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
                "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}});
            return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
        }
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let model = query.get("model").cloned();
    let idx = {
        let mut sessions = lock(&shared.sessions);
        sessions.push(SessionLog {
            model: model.clone(),
            ..Default::default()
        });
        sessions.len() - 1
    };
    ws.on_upgrade(move |socket| run_socket(socket, shared, idx, model))
}

async fn run_socket(socket: WebSocket, shared: Arc<Shared>, idx: usize, model: Option<String>) {
    let (mut tx, mut rx) = socket.split();
    let mut session = Session::new(shared.scenario.clone(), model);
    let switchboard = shared.switchboard.get().cloned();
    // With a switchboard, the call this session serves (known once briefed).
    let mut seat: Option<String> = None;
    // Where this session last left the shared cursor.
    let mut saved = (0, 0);
    if switchboard.is_none() {
        let (agent_idx, host_idx) = *lock(&shared.cursor);
        session.agent_idx = agent_idx;
        session.host_idx = host_idx;
        saved = (agent_idx, host_idx);
    }
    let mut responses_done = 0usize;
    info!(
        session = idx,
        scenario = shared.scenario.name,
        "realtime sim session opened"
    );
    'outer: loop {
        // Keep the script position current while the session runs, not only
        // when it closes: a session opened meanwhile for the same call (its
        // stream moved to another instance of the product) resumes there.
        let at = (session.agent_idx, session.host_idx);
        if switchboard.is_none() && at != saved {
            *lock(&shared.cursor) = at;
            saved = at;
        }
        for event in session.outbox.drain(..) {
            if event["type"] == "response.done" {
                responses_done += 1;
            }
            debug!(session = idx, r#type = %event["type"], "realtime sim → client");
            if tx
                .send(Message::Text(event.to_string().into()))
                .await
                .is_err()
            {
                break 'outer;
            }
        }
        let dropping = {
            let mut drop_after = lock(&shared.drop_after);
            match *drop_after {
                Some(n) if responses_done >= n => {
                    *drop_after = None;
                    true
                }
                _ => false,
            }
        };
        if dropping {
            info!(
                session = idx,
                "realtime sim dropping the connection (as asked)"
            );
            leave(&shared, &seat, &session, saved);
            // Closed with the client's frames unread, the socket is reset,
            // and a reset can discard what the client had not read yet
            // (the last transcript of the response just sent). A model that
            // drops after a response has sent it all: let the client read
            // it (reading its frames meanwhile), then drop.
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while let Some(Ok(_)) = rx.next().await {}
            })
            .await;
            drop(tx);
            drop(rx);
            return;
        }
        let wake = session
            .next_step_at()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = shared.cancel.cancelled() => break,
            _ = tokio::time::sleep_until(wake) => session.pump(Instant::now()),
            msg = rx.next() => {
                let text = match msg {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                    Some(Ok(Message::Text(t))) => t.to_string(),
                    Some(Ok(Message::Binary(_))) => {
                        session.error_event(json!({"type": "invalid_request_error", "code": "invalid_event",
                            "message": "Binary frames are not supported; send JSON text frames.", "param": null, "event_id": null}));
                        continue;
                    }
                    Some(Ok(_)) => continue,
                };
                let logged = session.on_text(&text, Instant::now());
                if let (Some(sb), None) = (&switchboard, &seat) {
                    let instructions = session.session["instructions"].as_str().unwrap_or("");
                    if logged["type"] == "session.update" && !instructions.is_empty() {
                        if let Some(s) = sb.model_joins(instructions) {
                            info!(session = idx, call = %s.call_sid, scenario = s.scenario.name, "realtime sim session joins its call");
                            session.scenario = s.scenario;
                            (session.agent_idx, session.host_idx) = s.resume;
                            seat = Some(s.call_sid);
                        }
                    }
                }
                let mut sessions = lock(&shared.sessions);
                if let Some(log) = sessions.get_mut(idx) {
                    log.client_events.push(logged);
                    log.truncates.append(&mut session.new_truncates);
                    log.unscripted_responses = session.unscripted_responses;
                    log.refusal = session.refusal().map(str::to_string);
                }
            }
        }
        if let Some(reason) = session.refusal().map(str::to_string) {
            for event in session.outbox.drain(..) {
                if tx
                    .send(Message::Text(event.to_string().into()))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            // A close reason is at most 123 bytes.
            let mut cut = reason.len().min(120);
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            let frame = axum::extract::ws::CloseFrame {
                code: REFUSAL_CLOSE_CODE,
                reason: reason[..cut].to_string().into(),
            };
            let _ = tx.send(Message::Close(Some(frame))).await;
            // Finish the closing handshake: read (and drop) what the client
            // still sends until its own close. Dropping the socket with its
            // frames unread would reset the connection, and the client could
            // lose our close frame (and its reason) before reading it.
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while let Some(Ok(m)) = rx.next().await {
                    if matches!(m, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
            break;
        }
    }
    leave(&shared, &seat, &session, saved);
    info!(session = idx, "realtime sim session closed");
    let _ = tx.close().await;
}

/// Keep where a closing session stopped, so a reconnection resumes there
/// (unless it did not move since it last saved: a newer session may have).
fn leave(shared: &Shared, seat: &Option<String>, session: &Session, saved: (usize, usize)) {
    let at = (session.agent_idx, session.host_idx);
    match (shared.switchboard.get(), seat) {
        (Some(sb), Some(call)) => sb.model_leaves(call, at),
        (Some(_), None) => {}
        (None, _) if at != saved => *lock(&shared.cursor) = at,
        (None, _) => {}
    }
}

/// Random id shaped like OpenAI's: `prefix_` + 21 alphanumerics.
fn new_id(prefix: &str) -> String {
    let tail: String = rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(21)
        .map(char::from)
        .collect();
    format!("{prefix}_{tail}")
}

/// Turn-detection parameters in effect.
#[derive(Clone, Debug)]
struct TurnConfig {
    threshold: f64,
    silence_ms: u64,
    prefix_ms: u64,
    create_response: bool,
    interrupt_response: bool,
}

enum Step {
    /// Send as is.
    Emit(Value),
    /// `response.output_item.done`: send and remember the finished item for `response.done`.
    ItemDone(Value, Value),
    /// One audio delta (with its transcript delta), then wait [`AUDIO_CHUNK_INTERVAL`].
    Audio { chunk: Vec<u8>, text: String },
    /// `response.output_audio.done` for the message: closes the audio.
    AudioDone(Value),
}

struct MessageState {
    item_id: String,
    output_index: u32,
    transcript_sent: String,
    audio_open: bool,
}

struct ActiveResponse {
    id: String,
    steps: VecDeque<Step>,
    next_at: Instant,
    message: Option<MessageState>,
    done_items: Vec<Value>,
}

/// One Realtime session's protocol state (synchronous; the socket task feeds
/// it client frames and timer ticks and sends its `outbox`).
pub struct Session {
    scenario: Scenario,
    agent_idx: usize,
    host_idx: usize,
    session: Value,
    turn: Option<TurnConfig>,
    transcription: bool,
    vad: Vad,
    frame: Vec<u8>,
    uncommitted_bytes: u64,
    user_item: Option<String>,
    last_item_id: Option<String>,
    conversation_id: String,
    active: Option<ActiveResponse>,
    item_audio_bytes: HashMap<String, u64>,
    outbox: Vec<Value>,
    new_truncates: Vec<Truncate>,
    unscripted_responses: u32,
    /// A system message matched the scenario's `on_system` keyword.
    system_armed: bool,
    /// The session's configuration passed the scenario's language check
    /// (always true for a scenario without one).
    language_ok: bool,
    /// Set once the session breaks the scenario's rules: nothing more is
    /// played, and the socket task closes the connection.
    refusal: Option<String>,
}

fn default_session(model: &str) -> Value {
    json!({
        "type": "realtime",
        "object": "realtime.session",
        "id": new_id("sess"),
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "Your knowledge cutoff is 2023-10. You are a helpful, witty, and friendly AI.",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": null,
        "prompt": null,
        "expires_at": unix_now() + 3600,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": null,
                "noise_reduction": null,
                "turn_detection": normalize_turn_detection(&json!({"type": "server_vad"}))
            },
            "output": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "voice": "marin",
                "speed": 1.0
            }
        },
        "include": null
    })
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Fill a turn_detection object with the server's defaults for its type.
fn normalize_turn_detection(v: &Value) -> Value {
    let Some(obj) = v.as_object() else {
        return Value::Null;
    };
    let kind = obj
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("server_vad");
    let mut out = if kind == "semantic_vad" {
        json!({"type": "semantic_vad", "eagerness": "auto", "create_response": true, "interrupt_response": true})
    } else {
        json!({"type": kind, "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 200,
               "idle_timeout_ms": null, "create_response": true, "interrupt_response": true})
    };
    if let Some(o) = out.as_object_mut() {
        for (k, val) in obj {
            o.insert(k.clone(), val.clone());
        }
    }
    out
}

fn turn_config(td: &Value) -> Option<TurnConfig> {
    let obj = td.as_object()?;
    let b = |k: &str| obj.get(k).and_then(Value::as_bool).unwrap_or(true);
    let semantic = obj.get("type").and_then(Value::as_str) == Some("semantic_vad");
    let silence_ms = if semantic {
        match obj.get("eagerness").and_then(Value::as_str) {
            Some("low") => 1000,
            Some("high") => 400,
            _ => 700,
        }
    } else {
        obj.get("silence_duration_ms")
            .and_then(Value::as_u64)
            .unwrap_or(200)
    };
    Some(TurnConfig {
        threshold: obj.get("threshold").and_then(Value::as_f64).unwrap_or(0.5),
        silence_ms,
        prefix_ms: obj
            .get("prefix_padding_ms")
            .and_then(Value::as_u64)
            .unwrap_or(300),
        create_response: b("create_response"),
        interrupt_response: b("interrupt_response"),
    })
}

/// Split `text` into `n` consecutive pieces (on char boundaries) whose
/// concatenation is `text`, proportionally to position.
fn split_text(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let n = n.max(1);
    (0..n)
        .map(|i| {
            let a = i * chars.len() / n;
            let b = (i + 1) * chars.len() / n;
            chars[a..b].iter().collect()
        })
        .collect()
}

fn usage() -> Value {
    json!({
        "total_tokens": 1480, "input_tokens": 1210, "output_tokens": 270,
        "input_token_details": {"text_tokens": 402, "audio_tokens": 808, "image_tokens": 0, "cached_tokens": 384,
            "cached_tokens_details": {"text_tokens": 384, "audio_tokens": 0, "image_tokens": 0}},
        "output_token_details": {"text_tokens": 41, "audio_tokens": 229}
    })
}

impl Session {
    /// A fresh session following `scenario`; queues `session.created`.
    pub fn new(scenario: Scenario, model: Option<String>) -> Self {
        let session = default_session(model.as_deref().unwrap_or("gpt-realtime"));
        let turn = turn_config(&session["audio"]["input"]["turn_detection"]);
        let vad = turn
            .as_ref()
            .map(|t| Vad::new(t.threshold, t.silence_ms, t.prefix_ms))
            .unwrap_or_else(|| Vad::new(0.5, 200, 300));
        let mut s = Session {
            scenario,
            agent_idx: 0,
            host_idx: 0,
            session,
            turn,
            transcription: false,
            vad,
            frame: Vec::new(),
            uncommitted_bytes: 0,
            user_item: None,
            last_item_id: None,
            conversation_id: new_id("conv"),
            active: None,
            item_audio_bytes: HashMap::new(),
            outbox: Vec::new(),
            new_truncates: Vec::new(),
            unscripted_responses: 0,
            system_armed: false,
            language_ok: false,
            refusal: None,
        };
        s.language_ok = s.scenario.language.is_none();
        let created = json!({"type": "session.created", "session": s.session.clone()});
        s.send(created);
        s
    }

    /// Events waiting to be sent, in order.
    pub fn take_outbox(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.outbox)
    }

    /// Why this session was refused, if it was (the connection must close).
    pub fn refusal(&self) -> Option<&str> {
        self.refusal.as_deref()
    }

    /// Fail the call loudly: an `error` event that says what is wrong, no
    /// more responses, and (in the socket task) a close frame with the reason.
    fn refuse(&mut self, reason: String) {
        warn!(
            scenario = self.scenario.name,
            "realtime sim refuses the session: {reason}"
        );
        self.error_event(
            json!({"type": "invalid_request_error", "code": "sim_wrong_language",
            "message": reason, "param": null, "event_id": null}),
        );
        self.active = None;
        self.refusal = Some(reason);
    }

    /// The scenario's language check, over the session as configured now.
    fn check_language(&mut self) {
        let Some(language) = self.scenario.language.clone() else {
            return;
        };
        let instructions = self.session["instructions"].as_str().unwrap_or("");
        let missing = language.missing(
            instructions,
            &self.session["audio"]["input"]["transcription"],
        );
        if missing.is_empty() {
            self.language_ok = true;
        } else {
            self.language_ok = false;
            self.refuse(format!(
                "the simulated restaurant speaks {}, but {}",
                language.name,
                missing.join("; ")
            ));
        }
    }

    /// When the active response wants its next step (None when idle).
    pub fn next_step_at(&self) -> Option<Instant> {
        self.active.as_ref().map(|a| a.next_at)
    }

    fn send(&mut self, mut event: Value) {
        if let Some(obj) = event.as_object_mut() {
            // event_id right after type, like the real server
            let mut ordered = Map::new();
            if let Some(t) = obj.remove("type") {
                ordered.insert("type".into(), t);
            }
            ordered.insert("event_id".into(), json!(new_id("event")));
            ordered.append(obj);
            event = Value::Object(ordered);
        }
        self.outbox.push(event);
    }

    fn error_event(&mut self, error: Value) {
        self.send(json!({"type": "error", "error": error}));
    }

    fn simple_error(
        &mut self,
        code: &str,
        message: String,
        param: Option<&str>,
        client_event_id: &Value,
    ) {
        self.error_event(
            json!({"type": "invalid_request_error", "code": code, "message": message,
            "param": param, "event_id": client_event_id}),
        );
    }

    /// Handle one client text frame; returns the value to log for it. A
    /// refused session only logs what it receives.
    pub fn on_text(&mut self, text: &str, now: Instant) -> Value {
        let event: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                self.simple_error(
                    "invalid_json",
                    format!("The server could not parse the event as JSON: {e}"),
                    None,
                    &Value::Null,
                );
                return json!({"_unparsed": text});
            }
        };
        if self.refusal.is_none() {
            self.on_event(&event, now);
            self.pump(now);
        }
        event
    }

    fn on_event(&mut self, event: &Value, now: Instant) {
        let eid = event.get("event_id").cloned().unwrap_or(Value::Null);
        let Some(kind) = event.get("type").and_then(Value::as_str) else {
            self.simple_error(
                "invalid_event",
                "The 'type' field is missing.".into(),
                None,
                &eid,
            );
            return;
        };
        match kind {
            "session.update" => self.on_session_update(event, &eid),
            "input_audio_buffer.append" => self.on_append(event, &eid, now),
            "input_audio_buffer.commit" => self.on_commit(&eid),
            "input_audio_buffer.clear" => {
                self.uncommitted_bytes = 0;
                self.send(json!({"type": "input_audio_buffer.cleared"}));
            }
            "response.create" => {
                if let Some(a) = &self.active {
                    let msg = format!("Conversation already has an active response in progress: {}. Wait until the response is finished before creating a new one.", a.id);
                    self.simple_error(
                        "conversation_already_has_active_response",
                        msg,
                        None,
                        &Value::Null,
                    );
                } else {
                    self.start_response(now);
                }
            }
            "response.cancel" => {
                if self.active.is_some() {
                    self.cancel_response("client_cancelled");
                } else {
                    self.simple_error(
                        "response_cancel_not_active",
                        "Cancellation failed: no active response found".into(),
                        None,
                        &Value::Null,
                    );
                }
            }
            "conversation.item.create" => self.on_item_create(event, &eid),
            "conversation.item.truncate" => self.on_truncate(event, &eid),
            other => {
                self.simple_error(
                    "invalid_event",
                    format!("Invalid value: '{other}'. This event type is not supported."),
                    Some("type"),
                    &eid,
                );
            }
        }
    }

    fn on_session_update(&mut self, event: &Value, eid: &Value) {
        let Some(update) = event.get("session").and_then(Value::as_object) else {
            self.simple_error(
                "missing_required_parameter",
                "Missing required parameter: 'session'.".into(),
                Some("session"),
                eid,
            );
            return;
        };
        match update.get("type").and_then(Value::as_str) {
            Some("realtime") => {}
            Some(other) => {
                self.simple_error("invalid_value", format!("Invalid value: '{other}'. Supported values are: 'realtime' and 'transcription'."), Some("session.type"), eid);
                return;
            }
            None => {
                self.simple_error(
                    "missing_required_parameter",
                    "Missing required parameter: 'session.type'.".into(),
                    Some("session.type"),
                    eid,
                );
                return;
            }
        }
        for dir in ["input", "output"] {
            let fmt = update
                .get("audio")
                .and_then(|a| a.get(dir))
                .and_then(|d| d.get("format"));
            if let Some(fmt) = fmt {
                let t = fmt.get("type").and_then(Value::as_str).unwrap_or("");
                if t != "audio/pcmu" {
                    let msg = format!("Invalid value: '{t}'. This simulator supports only 'audio/pcmu' (G.711 mu-law, what Twilio streams).");
                    let param = format!("session.audio.{dir}.format.type");
                    self.simple_error("invalid_value", msg, Some(&param), eid);
                    return;
                }
            }
        }
        let mut session = self.session.clone();
        for (k, v) in update {
            match k.as_str() {
                "type" => {}
                "audio" => {
                    for dir in ["input", "output"] {
                        let Some(d) = v.get(dir).and_then(Value::as_object) else {
                            continue;
                        };
                        for (dk, dv) in d {
                            let value = match dk.as_str() {
                                "turn_detection" => normalize_turn_detection(dv),
                                "transcription" if dv.is_object() => {
                                    let mut t =
                                        json!({"model": null, "language": null, "prompt": null});
                                    if let (Some(to), Some(src)) =
                                        (t.as_object_mut(), dv.as_object())
                                    {
                                        for (a, b) in src {
                                            to.insert(a.clone(), b.clone());
                                        }
                                    }
                                    t
                                }
                                _ => dv.clone(),
                            };
                            session["audio"][dir][dk] = value;
                        }
                    }
                }
                _ => session[k] = v.clone(),
            }
        }
        self.session = session;
        self.turn = turn_config(&self.session["audio"]["input"]["turn_detection"]);
        if let Some(t) = &self.turn {
            self.vad.set_params(t.threshold, t.silence_ms, t.prefix_ms);
        }
        self.transcription = self.session["audio"]["input"]["transcription"].is_object();
        let updated = json!({"type": "session.updated", "session": self.session.clone()});
        self.send(updated);
        self.check_language();
    }

    fn on_append(&mut self, event: &Value, eid: &Value, now: Instant) {
        let Some(audio) = event.get("audio").and_then(Value::as_str) else {
            self.simple_error(
                "missing_required_parameter",
                "Missing required parameter: 'audio'.".into(),
                Some("audio"),
                eid,
            );
            return;
        };
        let bytes = match base64::engine::general_purpose::STANDARD.decode(audio) {
            Ok(b) => b,
            Err(_) => {
                self.simple_error(
                    "invalid_value",
                    "Invalid 'audio'. Expected base64-encoded audio bytes.".into(),
                    Some("audio"),
                    eid,
                );
                return;
            }
        };
        self.uncommitted_bytes += bytes.len() as u64;
        self.frame.extend_from_slice(&bytes);
        while self.frame.len() >= 160 {
            let frame: Vec<u8> = self.frame.drain(..160).collect();
            if self.turn.is_none() {
                continue;
            }
            match self.vad.push(&frame) {
                Some(VadEvent::SpeechStarted { audio_start_ms }) => {
                    let item_id = new_id("item");
                    self.user_item = Some(item_id.clone());
                    self.send(json!({"type": "input_audio_buffer.speech_started",
                        "audio_start_ms": audio_start_ms, "item_id": item_id}));
                    let interrupt = self.turn.as_ref().is_some_and(|t| t.interrupt_response);
                    if interrupt && self.active.is_some() {
                        self.cancel_response("turn_detected");
                    }
                }
                Some(VadEvent::SpeechStopped { audio_end_ms }) => {
                    let item_id = self.user_item.take().unwrap_or_else(|| new_id("item"));
                    self.send(json!({"type": "input_audio_buffer.speech_stopped",
                        "audio_end_ms": audio_end_ms, "item_id": item_id}));
                    self.commit_user_turn(item_id);
                    let create = self.turn.as_ref().is_some_and(|t| t.create_response);
                    if create && self.active.is_none() {
                        self.start_response(now);
                    }
                }
                None => {}
            }
        }
    }

    fn on_commit(&mut self, eid: &Value) {
        let ms = self.uncommitted_bytes / 8;
        if ms < 100 {
            let msg = format!("Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only has {ms}.00ms of audio.");
            self.simple_error("input_audio_buffer_commit_empty", msg, None, eid);
            return;
        }
        let item_id = self.user_item.take().unwrap_or_else(|| new_id("item"));
        self.commit_user_turn(item_id);
    }

    /// committed → conversation.item.added → transcription → conversation.item.done.
    /// The "ASR" is the scenario: the n-th utterance is the n-th host line.
    fn commit_user_turn(&mut self, item_id: String) {
        self.uncommitted_bytes = 0;
        let previous = self.last_item_id.clone();
        self.send(json!({"type": "input_audio_buffer.committed", "previous_item_id": previous, "item_id": item_id}));
        let item = |transcript: Value| {
            json!({"id": item_id, "type": "message", "status": "completed", "role": "user",
                   "content": [{"type": "input_audio", "transcript": transcript}]})
        };
        self.send(json!({"type": "conversation.item.added", "previous_item_id": previous, "item": item(Value::Null)}));
        let transcript = self
            .scenario
            .host
            .get(self.host_idx)
            .map(|l| l.text.clone())
            .unwrap_or_default();
        self.host_idx += 1;
        if self.transcription {
            self.send(json!({"type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id, "content_index": 0, "transcript": transcript,
                "usage": {"type": "tokens", "total_tokens": 31, "input_tokens": 20,
                          "input_token_details": {"text_tokens": 0, "audio_tokens": 20}, "output_tokens": 11}}));
        }
        let final_transcript = if self.transcription {
            json!(transcript)
        } else {
            Value::Null
        };
        self.send(json!({"type": "conversation.item.done", "previous_item_id": previous, "item": item(final_transcript)}));
        self.last_item_id = Some(item_id);
    }

    fn response_object(
        &self,
        id: &str,
        status: &str,
        details: Value,
        output: Vec<Value>,
        usage: Value,
    ) -> Value {
        let out_audio = &self.session["audio"]["output"];
        json!({
            "object": "realtime.response",
            "id": id,
            "status": status,
            "status_details": details,
            "output": output,
            "conversation_id": self.conversation_id,
            "output_modalities": self.session.get("output_modalities").cloned().unwrap_or(json!(["audio"])),
            "max_output_tokens": self.session.get("max_output_tokens").cloned().unwrap_or(json!("inf")),
            "audio": {"output": {"format": out_audio.get("format").cloned().unwrap_or(json!({"type": "audio/pcmu"})),
                                 "voice": out_audio.get("voice").cloned().unwrap_or(json!("marin"))}},
            "usage": usage,
            "metadata": null
        })
    }

    fn start_response(&mut self, now: Instant) {
        if !self.language_ok {
            if self.refusal.is_none() {
                let name = self.scenario.language.as_ref().map_or("", |l| l.name);
                self.refuse(format!(
                    "the simulated restaurant speaks {name}, but a response was asked for before any instructions"
                ));
            }
            return;
        }
        let armed = if self.system_armed {
            self.system_armed = false;
            self.scenario.on_system.as_ref().map(|(_, r)| r.clone())
        } else {
            None
        };
        let script = match armed {
            Some(r) => Some(r),
            None => {
                let next = self.scenario.agent.get(self.agent_idx).cloned();
                if next.is_some() {
                    self.agent_idx += 1;
                }
                next
            }
        };
        let Some(script) = script else {
            self.unscripted_responses += 1;
            info!(
                scenario = self.scenario.name,
                "realtime sim: agent script exhausted; producing no response"
            );
            return;
        };
        let resp_id = new_id("resp");
        let created = json!({"type": "response.created",
            "response": self.response_object(&resp_id, "in_progress", Value::Null, vec![], Value::Null)});
        self.send(created);
        self.send(json!({"type": "rate_limits.updated", "rate_limits": [
            {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
            {"name": "tokens", "limit": 40000, "remaining": 38562, "reset_seconds": 2.157}]}));

        let mut steps = VecDeque::new();
        let mut message = None;
        let mut output_index = 0u32;
        if let Some(say) = &script.say {
            let item_id = new_id("item");
            let ids = json!({"response_id": resp_id, "item_id": item_id, "output_index": output_index, "content_index": 0});
            let with = |extra: Value| {
                let mut v = ids.clone();
                if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                    for (k, val) in e {
                        o.insert(k.clone(), val.clone());
                    }
                }
                v
            };
            let in_progress = json!({"id": item_id, "object": "realtime.item", "type": "message",
                "status": "in_progress", "role": "assistant", "content": []});
            steps.push_back(Step::Emit(
                json!({"type": "response.output_item.added", "response_id": resp_id,
                "output_index": output_index, "item": in_progress}),
            ));
            steps.push_back(Step::Emit(json!({"type": "conversation.item.added",
                "previous_item_id": self.last_item_id, "item": in_progress})));
            steps.push_back(Step::Emit(with(
                json!({"type": "response.content_part.added",
                "part": {"type": "audio", "transcript": ""}}),
            )));
            let audio = voice::speak(say);
            let chunks: Vec<&[u8]> = audio.chunks(AUDIO_CHUNK_BYTES).collect();
            let texts = split_text(say, chunks.len());
            for (chunk, text) in chunks.into_iter().zip(texts) {
                steps.push_back(Step::Audio {
                    chunk: chunk.to_vec(),
                    text,
                });
            }
            steps.push_back(Step::AudioDone(with(
                json!({"type": "response.output_audio.done"}),
            )));
            steps.push_back(Step::Emit(with(
                json!({"type": "response.output_audio_transcript.done", "transcript": say}),
            )));
            steps.push_back(Step::Emit(with(
                json!({"type": "response.content_part.done",
                "part": {"type": "audio", "transcript": say}}),
            )));
            let done_item = json!({"id": item_id, "object": "realtime.item", "type": "message",
                "status": "completed", "role": "assistant",
                "content": [{"type": "output_audio", "transcript": say}]});
            steps.push_back(Step::ItemDone(
                json!({"type": "response.output_item.done", "response_id": resp_id,
                       "output_index": output_index, "item": done_item}),
                done_item.clone(),
            ));
            steps.push_back(Step::Emit(json!({"type": "conversation.item.done",
                "previous_item_id": self.last_item_id, "item": done_item})));
            self.item_audio_bytes.insert(item_id.clone(), 0);
            self.last_item_id = Some(item_id.clone());
            message = Some(MessageState {
                item_id,
                output_index,
                transcript_sent: String::new(),
                audio_open: true,
            });
            output_index += 1;
        }
        if let Some((name, args)) = &script.tool_call {
            let item_id = new_id("item");
            let call_id = new_id("call");
            let arguments = args.to_string();
            let halves = split_text(&arguments, 2);
            steps.push_back(Step::Emit(json!({"type": "response.output_item.added", "response_id": resp_id,
                "output_index": output_index,
                "item": {"id": item_id, "object": "realtime.item", "type": "function_call", "status": "in_progress",
                         "name": name, "call_id": call_id, "arguments": ""}})));
            for half in halves {
                steps.push_back(Step::Emit(
                    json!({"type": "response.function_call_arguments.delta",
                    "response_id": resp_id, "item_id": item_id, "output_index": output_index,
                    "call_id": call_id, "delta": half}),
                ));
            }
            steps.push_back(Step::Emit(
                json!({"type": "response.function_call_arguments.done",
                "response_id": resp_id, "item_id": item_id, "output_index": output_index,
                "call_id": call_id, "name": name, "arguments": arguments}),
            ));
            let done_item = json!({"id": item_id, "object": "realtime.item", "type": "function_call",
                "status": "completed", "name": name, "call_id": call_id, "arguments": arguments});
            steps.push_back(Step::ItemDone(
                json!({"type": "response.output_item.done", "response_id": resp_id,
                       "output_index": output_index, "item": done_item}),
                done_item,
            ));
            self.last_item_id = Some(item_id);
        }
        self.active = Some(ActiveResponse {
            id: resp_id,
            steps,
            next_at: now,
            message,
            done_items: Vec::new(),
        });
    }

    /// Advance the active response up to `now`: emit everything due, at most
    /// one audio delta per [`AUDIO_CHUNK_INTERVAL`]; finish with `response.done`.
    pub fn pump(&mut self, now: Instant) {
        loop {
            let step = {
                let Some(active) = self.active.as_mut() else {
                    return;
                };
                if matches!(active.steps.front(), Some(Step::Audio { .. })) && now < active.next_at
                {
                    return;
                }
                match active.steps.pop_front() {
                    Some(step) => step,
                    None => {
                        let Some(active) = self.active.take() else {
                            return;
                        };
                        let done = json!({"type": "response.done",
                            "response": self.response_object(&active.id, "completed", Value::Null, active.done_items, usage())});
                        self.send(done);
                        return;
                    }
                }
            };
            match step {
                Step::Emit(v) => self.send(v),
                Step::ItemDone(v, item) => {
                    if let Some(a) = self.active.as_mut() {
                        a.done_items.push(item);
                    }
                    self.send(v);
                }
                Step::AudioDone(v) => {
                    if let Some(m) = self.active.as_mut().and_then(|a| a.message.as_mut()) {
                        m.audio_open = false;
                    }
                    self.send(v);
                }
                Step::Audio { chunk, text } => {
                    let Some(active) = self.active.as_mut() else {
                        return;
                    };
                    active.next_at = now + AUDIO_CHUNK_INTERVAL;
                    let resp_id = active.id.clone();
                    let Some(m) = active.message.as_mut() else {
                        continue;
                    };
                    m.transcript_sent.push_str(&text);
                    let (item_id, output_index) = (m.item_id.clone(), m.output_index);
                    *self.item_audio_bytes.entry(item_id.clone()).or_insert(0) +=
                        chunk.len() as u64;
                    let ids = |kind: &str, key: &str, val: Value| {
                        json!({"type": kind, "response_id": resp_id, "item_id": item_id,
                               "output_index": output_index, "content_index": 0, key: val})
                    };
                    if !text.is_empty() {
                        let ev = ids(
                            "response.output_audio_transcript.delta",
                            "delta",
                            json!(text),
                        );
                        self.send(ev);
                    }
                    let b64 = base64::engine::general_purpose::STANDARD.encode(&chunk);
                    let ev = ids("response.output_audio.delta", "delta", json!(b64));
                    self.send(ev);
                }
            }
        }
    }

    fn cancel_response(&mut self, reason: &str) {
        let Some(active) = self.active.take() else {
            return;
        };
        let mut output = active.done_items;
        if let Some(m) = &active.message {
            if m.audio_open {
                self.send(
                    json!({"type": "response.output_audio.done", "response_id": active.id,
                    "item_id": m.item_id, "output_index": m.output_index, "content_index": 0}),
                );
                output.insert(
                    0,
                    json!({"id": m.item_id, "type": "message", "status": "incomplete", "role": "assistant",
                           "content": [{"type": "output_audio", "transcript": m.transcript_sent}]}),
                );
            }
        }
        debug!(response = %active.id, reason, "realtime sim: response cancelled");
        let done = json!({"type": "response.done", "response": self.response_object(&active.id, "cancelled",
            json!({"type": "cancelled", "reason": reason}), output, usage())});
        self.send(done);
    }

    fn on_item_create(&mut self, event: &Value, eid: &Value) {
        let Some(item) = event.get("item").and_then(Value::as_object) else {
            self.simple_error(
                "missing_required_parameter",
                "Missing required parameter: 'item'.".into(),
                Some("item"),
                eid,
            );
            return;
        };
        if item.get("role").and_then(Value::as_str) == Some("system") {
            if let Some((keyword, _)) = &self.scenario.on_system {
                let text = item
                    .get("content")
                    .map(Value::to_string)
                    .unwrap_or_default();
                if text.contains(keyword) {
                    self.system_armed = true;
                }
            }
        }
        let mut item = item.clone();
        let id = item
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| new_id("item"));
        item.insert("id".into(), json!(id));
        item.insert("object".into(), json!("realtime.item"));
        item.insert("status".into(), json!("completed"));
        let previous = event
            .get("previous_item_id")
            .cloned()
            .unwrap_or_else(|| json!(self.last_item_id));
        let item = Value::Object(item);
        self.send(
            json!({"type": "conversation.item.added", "previous_item_id": previous, "item": item}),
        );
        self.send(
            json!({"type": "conversation.item.done", "previous_item_id": previous, "item": item}),
        );
        self.last_item_id = Some(id);
    }

    fn on_truncate(&mut self, event: &Value, eid: &Value) {
        let item_id = event
            .get("item_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let audio_end_ms = event
            .get("audio_end_ms")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let content_index = event
            .get("content_index")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let Some(bytes) = self.item_audio_bytes.get(&item_id).copied() else {
            self.new_truncates.push(Truncate {
                item_id: item_id.clone(),
                audio_end_ms,
                item_audio_ms: 0,
            });
            self.simple_error(
                "item_truncate_invalid_item_id",
                format!("Only model output audio messages can be truncated; item '{item_id}' is not one."),
                Some("item_id"),
                eid,
            );
            return;
        };
        let item_audio_ms = bytes / 8;
        self.new_truncates.push(Truncate {
            item_id: item_id.clone(),
            audio_end_ms,
            item_audio_ms,
        });
        if audio_end_ms > item_audio_ms {
            self.error_event(json!({"type": "invalid_request_error",
                "message": format!("Audio content of {item_audio_ms}ms is already shorter than {audio_end_ms}ms"),
                "event_id": eid}));
        } else {
            self.send(
                json!({"type": "conversation.item.truncated", "item_id": item_id,
                "content_index": content_index, "audio_end_ms": audio_end_ms}),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::scenario::{clip, Booking};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message as WsMessage;

    type Ws = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;

    const KEY: &str = "sk-test-123";

    async fn connect(
        sim: &RealtimeSim,
        key: Option<&str>,
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let mut req = format!("{}?model=gpt-realtime", sim.url())
            .into_client_request()
            .unwrap();
        if let Some(k) = key {
            req.headers_mut()
                .insert("authorization", format!("Bearer {k}").parse().unwrap());
        }
        tokio_tungstenite::connect_async(req)
            .await
            .map(|(ws, _)| ws)
    }

    async fn send(ws: &mut Ws, v: Value) {
        ws.send(WsMessage::Text(v.to_string().into()))
            .await
            .unwrap();
    }

    async fn next(ws: &mut Ws) -> Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .expect("timed out waiting for an event")
                .expect("socket closed")
                .expect("socket error");
            if let WsMessage::Text(t) = msg {
                return serde_json::from_str(&t).unwrap();
            }
        }
    }

    /// Collect events up to and including the first of type `kind`.
    async fn until(ws: &mut Ws, kind: &str) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let ev = next(ws).await;
            let done = ev["type"] == kind;
            out.push(ev);
            if done {
                return out;
            }
        }
    }

    fn types(evs: &[Value]) -> Vec<&str> {
        evs.iter()
            .map(|e| e["type"].as_str().unwrap_or("?"))
            .collect()
    }

    async fn append(ws: &mut Ws, audio: &[u8]) {
        for frame in audio.chunks(160) {
            let b64 = base64::engine::general_purpose::STANDARD.encode(frame);
            send(
                ws,
                json!({"type": "input_audio_buffer.append", "audio": b64}),
            )
            .await;
        }
    }

    async fn open_session(sim: &RealtimeSim) -> Ws {
        let mut ws = connect(sim, Some(KEY)).await.unwrap();
        let created = next(&mut ws).await;
        assert_eq!(created["type"], "session.created");
        assert!(created["event_id"].as_str().unwrap().starts_with("event_"));
        let update: Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/protocol/openai_session_update.json"
        ))
        .unwrap();
        send(&mut ws, update).await;
        let updated = next(&mut ws).await;
        assert_eq!(updated["type"], "session.updated", "{updated}");
        let s = &updated["session"];
        assert_eq!(s["audio"]["input"]["format"]["type"], "audio/pcmu");
        assert_eq!(s["audio"]["output"]["format"]["type"], "audio/pcmu");
        assert_eq!(
            s["audio"]["input"]["turn_detection"]["silence_duration_ms"],
            500
        );
        assert_eq!(
            s["audio"]["input"]["turn_detection"]["idle_timeout_ms"],
            Value::Null
        );
        assert_eq!(s["audio"]["input"]["transcription"]["prompt"], Value::Null);
        assert_eq!(s["tools"][0]["name"], "finish_call");
        ws
    }

    /// The fixture's `session.update` with these instructions and transcription hint.
    fn session_update(instructions: &str, hint: Option<&str>) -> Value {
        let mut update: Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/protocol/openai_session_update.json"
        ))
        .unwrap();
        update["session"]["instructions"] = json!(instructions);
        update["session"]["audio"]["input"]["transcription"]["language"] = json!(hint);
        update
    }

    fn french_scenario() -> Scenario {
        Scenario::french(&Booking {
            date: "2026-11-26".into(),
            ..Booking::demo()
        })
    }

    #[tokio::test]
    async fn realtime_sim_plays_the_french_host_for_a_french_brief() {
        let scenario = french_scenario();
        let intro = scenario.agent[0].say.clone().unwrap();
        let sim = RealtimeSim::start(scenario.clone(), Some(KEY.into()))
            .await
            .unwrap();
        let mut ws = connect(&sim, Some(KEY)).await.unwrap();
        assert_eq!(next(&mut ws).await["type"], "session.created");
        let brief = "You are calling Chez Demo. Speak French from your first word. In French, say the date and time the way people say them there: \"jeudi 26 novembre à 19 h\".";
        send(&mut ws, session_update(brief, Some("fr"))).await;
        assert_eq!(next(&mut ws).await["type"], "session.updated");

        let mut audio = vec![0xFF; 4000];
        audio.extend_from_slice(clip("fr_greeting").unwrap());
        audio.extend(vec![0xFF; 12000]);
        append(&mut ws, &audio).await;
        let evs = until(&mut ws, "response.done").await;
        let heard = evs
            .iter()
            .find(|e| e["type"] == "conversation.item.input_audio_transcription.completed")
            .expect("the host's greeting is transcribed");
        assert_eq!(heard["transcript"], "Bonsoir, Chez Demo, je vous écoute.");
        let mut said = String::new();
        let mut audio_out = Vec::new();
        for e in &evs {
            if e["type"] == "response.output_audio_transcript.delta" {
                said.push_str(e["delta"].as_str().unwrap());
            }
            if e["type"] == "response.output_audio.delta" {
                audio_out.extend(
                    base64::engine::general_purpose::STANDARD
                        .decode(e["delta"].as_str().unwrap())
                        .unwrap(),
                );
            }
        }
        assert_eq!(said, intro);
        assert!(said.contains("jeudi 26 novembre à 19 h"), "{said}");
        assert_eq!(audio_out, voice::speak(&intro));
        assert!(sim.sessions()[0].refusal.is_none());
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn realtime_sim_fails_the_call_when_a_french_host_gets_an_english_brief() {
        for (brief, hint, why) in [
            (
                "You are calling Chez Demo to book a table on Thursday 26 November at 7 PM. Use the language the host speaks.",
                Some("en"),
                "never ask for French",
            ),
            (
                "Speak French from your first word: \"jeudi 26 novembre à 19 h\".",
                None,
                "transcription.language is None",
            ),
        ] {
            let sim = RealtimeSim::start(french_scenario(), Some(KEY.into()))
                .await
                .unwrap();
            let mut ws = connect(&sim, Some(KEY)).await.unwrap();
            assert_eq!(next(&mut ws).await["type"], "session.created");
            send(&mut ws, session_update(brief, hint)).await;
            assert_eq!(next(&mut ws).await["type"], "session.updated");
            let error = next(&mut ws).await;
            assert_eq!(error["type"], "error", "{error}");
            assert_eq!(error["error"]["code"], "sim_wrong_language");
            let message = error["error"]["message"].as_str().unwrap();
            assert!(message.contains(why), "{message}");
            assert!(message.starts_with("the simulated restaurant speaks French"));
            // Then the connection closes with the reason, and nothing is played.
            let close = loop {
                match tokio::time::timeout(Duration::from_secs(10), ws.next())
                    .await
                    .expect("closes")
                {
                    Some(Ok(WsMessage::Close(frame))) => break frame,
                    Some(Ok(WsMessage::Text(t))) => panic!("played after refusing: {t}"),
                    Some(Ok(_)) => continue,
                    other => panic!("expected a close frame, got {other:?}"),
                }
            };
            let frame = close.expect("a close frame with a reason");
            assert_eq!(u16::from(frame.code), REFUSAL_CLOSE_CODE);
            assert!(frame.reason.as_str().contains("French"), "{}", frame.reason);
            let log = &sim.sessions()[0];
            assert!(log.refusal.as_deref().unwrap().contains(why));
            sim.shutdown().await;
        }
    }

    #[test]
    fn a_french_scenario_plays_nothing_before_it_is_briefed() {
        let mut session = Session::new(french_scenario(), None);
        let now = Instant::now();
        session.on_text(r#"{"type": "response.create"}"#, now);
        let out = session.take_outbox();
        assert!(
            out.iter().all(|e| e["type"] != "response.created"),
            "{out:?}"
        );
        assert!(session
            .refusal()
            .unwrap()
            .contains("before any instructions"));
    }

    #[tokio::test]
    async fn realtime_sim_refuses_a_missing_key() {
        let sim = RealtimeSim::start(Scenario::booked(&Booking::demo()), Some(KEY.into()))
            .await
            .unwrap();
        match connect(&sim, None).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 401)
            }
            other => panic!("expected 401, got {:?}", other.map(|_| ())),
        }
        assert!(matches!(
            connect(&sim, Some("sk-wrong")).await,
            Err(tokio_tungstenite::tungstenite::Error::Http(_))
        ));
        assert!(sim.sessions().is_empty());
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn realtime_sim_plays_a_booked_turn() {
        let booking = Booking::demo();
        let scenario = Scenario::booked(&booking);
        let intro = scenario.agent[0].say.clone().unwrap();
        let sim = RealtimeSim::start(scenario.clone(), Some(KEY.into()))
            .await
            .unwrap();
        let mut ws = open_session(&sim).await;

        // The host's greeting: 0.5 s silence, the clip, 1.5 s silence, as 20 ms appends.
        let mut audio = vec![0xFF; 4000];
        audio.extend_from_slice(clip("greeting").unwrap());
        audio.extend(vec![0xFF; 12000]);
        append(&mut ws, &audio).await;

        let evs = until(&mut ws, "response.done").await;
        let t = types(&evs);
        let pos = |k: &str| {
            t.iter()
                .position(|x| *x == k)
                .unwrap_or_else(|| panic!("no {k} in {t:?}"))
        };
        assert!(
            pos("input_audio_buffer.speech_started") < pos("input_audio_buffer.speech_stopped")
        );
        assert!(pos("input_audio_buffer.speech_stopped") < pos("input_audio_buffer.committed"));
        assert!(pos("input_audio_buffer.committed") < pos("conversation.item.added"));
        assert!(
            pos("conversation.item.input_audio_transcription.completed") < pos("response.created")
        );
        assert!(pos("response.created") < pos("response.output_item.added"));
        assert!(pos("response.content_part.added") < pos("response.output_audio.delta"));
        assert!(pos("response.output_audio.done") < pos("response.output_audio_transcript.done"));
        assert!(pos("response.output_item.done") < pos("response.done"));
        let started = &evs[pos("input_audio_buffer.speech_started")];
        let start_ms = started["audio_start_ms"].as_u64().unwrap();
        assert!((200..=400).contains(&start_ms), "audio_start_ms {start_ms}");
        let stopped = &evs[pos("input_audio_buffer.speech_stopped")];
        let clip_end = 500 + clip("greeting").unwrap().len() as u64 / 8;
        let end_ms = stopped["audio_end_ms"].as_u64().unwrap();
        assert!(
            end_ms >= clip_end + 500 && end_ms <= clip_end + 600,
            "audio_end_ms {end_ms} vs {clip_end}"
        );
        assert_eq!(started["item_id"], stopped["item_id"]);
        let transcript = &evs[pos("conversation.item.input_audio_transcription.completed")];
        assert_eq!(transcript["transcript"], scenario.host[0].text);
        assert_eq!(transcript["item_id"], started["item_id"]);

        let mut audio_out = Vec::new();
        let mut transcript_out = String::new();
        let mut item_id = String::new();
        for e in &evs {
            if e["type"] == "response.output_audio.delta" {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(e["delta"].as_str().unwrap())
                    .unwrap();
                assert!(bytes.len() <= AUDIO_CHUNK_BYTES);
                audio_out.extend(bytes);
                item_id = e["item_id"].as_str().unwrap().to_string();
            }
            if e["type"] == "response.output_audio_transcript.delta" {
                transcript_out.push_str(e["delta"].as_str().unwrap());
            }
        }
        assert_eq!(audio_out, voice::speak(&intro));
        assert_eq!(transcript_out, intro);
        assert!(item_id.starts_with("item_"));
        let done = evs.last().unwrap();
        assert_eq!(done["response"]["status"], "completed");
        assert!(done["response"]["id"]
            .as_str()
            .unwrap()
            .starts_with("resp_"));
        assert_eq!(
            done["response"]["output"][0]["content"][0]["transcript"],
            intro
        );

        // Truncating beyond the generated audio is an error with the real numbers.
        let item_ms = audio_out.len() as u64 / 8;
        send(
            &mut ws,
            json!({"type": "conversation.item.truncate", "event_id": "client_truncate_7",
            "item_id": item_id, "content_index": 0, "audio_end_ms": item_ms + 60}),
        )
        .await;
        let err = next(&mut ws).await;
        assert_eq!(err["type"], "error");
        assert_eq!(
            err["error"]["message"],
            format!(
                "Audio content of {item_ms}ms is already shorter than {}ms",
                item_ms + 60
            )
        );
        assert_eq!(err["error"]["event_id"], "client_truncate_7");
        send(
            &mut ws,
            json!({"type": "conversation.item.truncate", "item_id": item_id,
            "content_index": 0, "audio_end_ms": 1480}),
        )
        .await;
        let ok = next(&mut ws).await;
        assert_eq!(ok["type"], "conversation.item.truncated");
        assert_eq!(ok["audio_end_ms"], 1480);

        // Next response: the finish_call tool call, no speech.
        send(&mut ws, json!({"type": "response.create"})).await;
        let evs = until(&mut ws, "response.done").await;
        let args_done = evs
            .iter()
            .find(|e| e["type"] == "response.function_call_arguments.done")
            .expect("function call");
        assert_eq!(args_done["name"], "finish_call");
        let args: Value = serde_json::from_str(args_done["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args["status"], "booked");
        assert_eq!(args["confirmation"], "4217");
        assert!(!types(&evs).contains(&"response.output_audio.delta"));
        assert_eq!(
            evs.last().unwrap()["response"]["output"][0]["type"],
            "function_call"
        );
        let call_id = args_done["call_id"].as_str().unwrap().to_string();
        send(
            &mut ws,
            json!({"type": "conversation.item.create", "item": {"type": "function_call_output",
            "call_id": call_id, "output": "{\"recorded\":true}"}}),
        )
        .await;
        assert_eq!(next(&mut ws).await["type"], "conversation.item.added");
        assert_eq!(next(&mut ws).await["type"], "conversation.item.done");

        // Goodbye; a second response.create while it is active is refused.
        send(&mut ws, json!({"type": "response.create"})).await;
        send(&mut ws, json!({"type": "response.create"})).await;
        let evs = until(&mut ws, "response.done").await;
        let err = evs
            .iter()
            .find(|e| e["type"] == "error")
            .expect("active-response error");
        assert_eq!(
            err["error"]["code"],
            "conversation_already_has_active_response"
        );
        assert_eq!(evs.last().unwrap()["response"]["status"], "completed");

        // Odds and ends: nothing to cancel, unknown type, bad base64, non-JSON.
        send(&mut ws, json!({"type": "response.cancel"})).await;
        assert_eq!(
            next(&mut ws).await["error"]["code"],
            "response_cancel_not_active"
        );
        send(&mut ws, json!({"type": "bogus.event"})).await;
        assert_eq!(next(&mut ws).await["error"]["code"], "invalid_event");
        send(
            &mut ws,
            json!({"type": "input_audio_buffer.append", "audio": "!!!"}),
        )
        .await;
        assert_eq!(next(&mut ws).await["type"], "error");
        ws.send(WsMessage::Text("not json".into())).await.unwrap();
        assert_eq!(next(&mut ws).await["type"], "error");
        // Script exhausted: a response.create produces nothing.
        send(&mut ws, json!({"type": "response.create"})).await;
        send(&mut ws, json!({"type": "response.cancel"})).await;
        assert_eq!(
            next(&mut ws).await["error"]["code"],
            "response_cancel_not_active"
        );

        let sessions = sim.sessions();
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].model.as_deref(), Some("gpt-realtime"));
        assert_eq!(sessions[0].client_events[0]["type"], "session.update");
        assert_eq!(sessions[0].truncates.len(), 2);
        assert_eq!(sessions[0].truncates[0].item_audio_ms, item_ms);
        assert_eq!(sessions[0].unscripted_responses, 1);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn realtime_sim_cancels_on_barge_in() {
        let sim = RealtimeSim::start(Scenario::barge_in(&Booking::demo()), Some(KEY.into()))
            .await
            .unwrap();
        let mut ws = open_session(&sim).await;
        send(&mut ws, json!({"type": "response.create"})).await;
        let evs = until(&mut ws, "response.output_audio.delta").await;
        assert!(types(&evs).contains(&"response.created"));
        // The callee talks while the (long) response is still being generated.
        append(&mut ws, &clip("interrupt").unwrap()[..8000]).await;
        let evs = until(&mut ws, "response.done").await;
        let t = types(&evs);
        let started = t
            .iter()
            .position(|x| *x == "input_audio_buffer.speech_started")
            .unwrap();
        let audio_done = t
            .iter()
            .position(|x| *x == "response.output_audio.done")
            .unwrap();
        assert!(started < audio_done, "{t:?}");
        let done = evs.last().unwrap();
        assert_eq!(done["response"]["status"], "cancelled");
        assert_eq!(
            done["response"]["status_details"]["reason"],
            "turn_detected"
        );
        assert_eq!(done["response"]["output"][0]["status"], "incomplete");
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn realtime_sim_rejects_other_audio_formats() {
        let sim = RealtimeSim::start(Scenario::booked(&Booking::demo()), None)
            .await
            .unwrap();
        let mut ws = connect(&sim, None).await.unwrap();
        assert_eq!(next(&mut ws).await["type"], "session.created");
        send(
            &mut ws,
            json!({"type": "session.update", "event_id": "e1", "session": {"type": "realtime",
            "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}}}}}),
        )
        .await;
        let err = next(&mut ws).await;
        assert_eq!(err["error"]["param"], "session.audio.input.format.type");
        assert_eq!(err["error"]["event_id"], "e1");
        send(
            &mut ws,
            json!({"type": "session.update", "session": {"instructions": "x"}}),
        )
        .await;
        assert_eq!(next(&mut ws).await["error"]["param"], "session.type");
        sim.shutdown().await;
    }

    #[test]
    fn split_text_keeps_every_char() {
        let parts = split_text("héllo wörld", 4);
        assert_eq!(parts.len(), 4);
        assert_eq!(parts.concat(), "héllo wörld");
        assert_eq!(split_text("ab", 5).concat(), "ab");
    }
}
