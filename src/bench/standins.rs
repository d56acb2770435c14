//! The outside world of a load test, made as cheap as possible so that what is
//! measured is the server: a Realtime API that echoes every appended chunk of
//! audio straight back as the agent's voice, a Twilio REST API that accepts
//! every call and does nothing else, and (for `--floor`) a trivial Media
//! Stream server that echoes audio without any bridge in between.
//!
//! Each parses the wire with its own few lines of code (as the simulators do),
//! so a wire bug in the product shows up as lost frames instead of being shared.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use tracing::debug;

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

// ------------------------------------------------------------ Realtime echo

/// The Realtime stand-in: `session.created` on connect; on `session.update`,
/// `session.updated` then a reply begins (`response.created`,
/// `response.output_item.added`); every `input_audio_buffer.append` comes
/// straight back as `response.output_audio.delta` with the same base64 text.
pub struct ModelEcho {
    addr: SocketAddr,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl ModelEcho {
    /// Listen on `127.0.0.1:port` (0: any free port).
    pub async fn start(port: u16) -> anyhow::Result<ModelEcho> {
        let listener = bind_loopback(port, "Realtime stand-in").await?;
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let task = spawn_acceptor(listener, cancel.clone(), model_session);
        Ok(ModelEcho { addr, cancel, task })
    }

    /// The `OPENAI_REALTIME_URL` the server must be started with.
    pub fn url(&self) -> String {
        format!("ws://{}/v1/realtime", self.addr)
    }

    /// Stop accepting and close every session.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// The fields of a client event the echo needs, borrowed from the frame.
#[derive(Deserialize)]
struct ClientEvent<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    audio: Option<Cow<'a, str>>,
}

const RESPONSE_ID: &str = "resp_bench";
const ITEM_ID: &str = "item_bench";

async fn model_session(stream: TcpStream) {
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
    while let Some(msg) = rx.next().await {
        let text = match msg {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        let Ok(event) = serde_json::from_str::<ClientEvent>(text.as_str()) else {
            continue;
        };
        let mut out: Vec<String> = Vec::new();
        match event.kind.as_ref() {
            "session.update" => {
                out.push(r#"{"type":"session.updated","event_id":"event_bench_updated","session":{"type":"realtime","object":"realtime.session","id":"sess_bench"}}"#.to_string());
            }
            "input_audio_buffer.append" => {
                let Some(audio) = event.audio else { continue };
                if !responding {
                    responding = true;
                    out.extend(response_start());
                }
                seq += 1;
                let mut delta = String::with_capacity(audio.len() + 160);
                // `audio` came from a JSON string unescaped; base64 needs no escaping back.
                let _ = write!(
                    delta,
                    r#"{{"type":"response.output_audio.delta","event_id":"event_bench_{seq}","response_id":"{RESPONSE_ID}","item_id":"{ITEM_ID}","output_index":0,"content_index":0,"delta":"{audio}"}}"#
                );
                out.push(delta);
            }
            _ => {}
        }
        if out.is_empty() {
            continue;
        }
        let mut ok = true;
        for m in out {
            ok &= tx.feed(Message::text(m)).await.is_ok();
        }
        if !ok || tx.flush().await.is_err() {
            break;
        }
    }
}

fn response_start() -> [String; 2] {
    [
        format!(
            r#"{{"type":"response.created","event_id":"event_bench_rc","response":{{"object":"realtime.response","id":"{RESPONSE_ID}","status":"in_progress","status_details":null,"output":[],"output_modalities":["audio"]}}}}"#
        ),
        format!(
            r#"{{"type":"response.output_item.added","event_id":"event_bench_ia","response_id":"{RESPONSE_ID}","output_index":0,"item":{{"id":"{ITEM_ID}","object":"realtime.item","type":"message","status":"in_progress","role":"assistant","content":[]}}}}"#
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

// ------------------------------------------------------------ floor echo

/// The `--floor` target: a Media Stream endpoint with no bridge at all. Each
/// inbound `media` goes straight back as outbound `media` followed by a `mark`
/// (the same two messages per frame the real server sends), so the load
/// generator does the same work and only the bridge is missing.
pub struct FloorEcho {
    addr: SocketAddr,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl FloorEcho {
    /// Listen on `127.0.0.1:port` (0: any free port).
    pub async fn start(port: u16) -> anyhow::Result<FloorEcho> {
        let listener = bind_loopback(port, "floor echo server").await?;
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let task = spawn_acceptor(listener, cancel.clone(), floor_session);
        Ok(FloorEcho { addr, cancel, task })
    }

    /// The `<Stream url>` the load connects to.
    pub fn stream_url(&self) -> String {
        format!("ws://{}/media-stream", self.addr)
    }

    /// Stop accepting and close every stream.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
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

async fn floor_session(stream: TcpStream) {
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(small_ws_config())).await
    else {
        return;
    };
    let (mut tx, mut rx) = ws.split();
    let mut stream_sid = String::new();
    let mut marks = 0u64;
    while let Some(msg) = rx.next().await {
        let text = match msg {
            Ok(Message::Text(t)) => t,
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        let Ok(frame) = serde_json::from_str::<InboundFrame>(text.as_str()) else {
            continue;
        };
        match (frame.event.as_ref(), frame.media) {
            ("start", _) => stream_sid = frame.stream_sid.unwrap_or_default().into_owned(),
            ("media", Some(media)) => {
                marks += 1;
                let mut out = String::with_capacity(media.payload.len() + 96);
                let _ = write!(
                    out,
                    r#"{{"event":"media","streamSid":"{stream_sid}","media":{{"payload":"{}"}}}}"#,
                    media.payload
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
            ("stop", _) => break,
            _ => {}
        }
    }
    let _ = tx.close().await;
}
