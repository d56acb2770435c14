//! A stand-in for Twilio on loopback: the REST API that places and controls
//! calls, signed status callbacks, and the Media Stream WebSocket it opens to
//! our server, with a scripted restaurant host on the line.
//!
//! What it checks on the product, the way Twilio would: HTTP Basic auth,
//! E.164 `To`, the TwiML (`<Connect><Stream url>` with `<Parameter>`s, parsed
//! with quick-xml), the `streamSid` on every message we send, base64 media.
//! What it gives the product, the way Twilio does: callbacks signed with
//! `X-Twilio-Signature` (twilio.md 6.1), a signed WebSocket upgrade (6.4),
//! `connected`/`start`/real-time 20 ms `media` frames, a playback buffer for our
//! audio that echoes `mark`s when played (or flushed by `clear`), and `stop`.
//!
//! A call update with new TwiML runs it as Twilio does: the stream gets `stop`
//! and closes; `<Play digits>` are played on the line as keypad tones that the
//! line's DTMF detector (the phone menu) hears; a `<Connect><Stream>` opens a
//! new stream (new `streamSid`, its own `<Parameter>`s, numbering and
//! timestamps from the start, signed like the first) and the host goes on with
//! its script. [`KeyPressUpdate`] makes such an update fail instead.
//!
//! Several server instances behind one public address: [`Routes`] sends
//! each kind of request (status callbacks, the Media Stream, the AMD
//! callback) to the instance chosen for it, at the socket level, while the
//! URL, the `Host` and the signature stay those of the public address, as a
//! load balancer in front of a fleet would have it.
//!
//! Everything that happened is recorded in a [`SimCall`] for assertions.

use crate::audio::mulaw;
use crate::sim::scenario::{host_audio, Cue, Scenario};
use crate::sim::switchboard::Switchboard;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use rand::Rng;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// If neither the host nor the agent makes a sound for this long, the callee hangs up.
pub const IDLE_HANGUP_MS: u64 = 20_000;
/// Inbound frame length: 20 ms = 160 bytes of mu-law, as Twilio sends.
const FRAME_BYTES: usize = 160;
const FRAME_MS: u64 = 20;

/// How the simulated Twilio account and its callees behave.
pub struct TelephoneConfig {
    /// Account SID the REST API accepts (HTTP Basic user) and reports.
    pub account_sid: String,
    /// Auth token: HTTP Basic password, and the key every signature uses.
    pub auth_token: String,
    /// What the host says on answered calls (and when).
    pub scenario: Scenario,
    /// Numbers that behave differently (default for unknown numbers: [`Line::Answer`]).
    pub lines: HashMap<String, Line>,
    /// How long a call rings before the line's outcome, in ms.
    pub ring_ms: u64,
    /// What the network does with a call update that presses keys
    /// (`<Play digits>` then `<Connect><Stream>`).
    pub key_press_update: KeyPressUpdate,
}

/// What the simulated Twilio does with a call update whose TwiML presses keys
/// (`<Play digits>`) and then opens a new stream: what Twilio does, or one of
/// the ways it can go wrong, for the tests of those cases.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum KeyPressUpdate {
    /// As Twilio does: the current stream gets `stop` and closes, the keys
    /// are played on the line (the phone menu hears them), and a new stream
    /// opens to the `<Stream url>` with the new parameters and `streamSid`.
    #[default]
    Follow,
    /// Twilio refuses the update with this HTTP status and error body (e.g.
    /// 429 and code 20429 when requests come too fast): nothing changes on
    /// the call, its stream goes on.
    Refuse {
        /// HTTP status of the answer.
        status: u16,
        /// Twilio's error code in the body.
        code: u32,
        /// Twilio's message in the body.
        message: String,
    },
    /// The update is accepted, the stream stops and the keys are played, but
    /// the new stream never opens: the line stays up and silent until the
    /// call is ended or updated again (or the callee gives up after
    /// [`IDLE_HANGUP_MS`]).
    NoNewStream,
}

impl KeyPressUpdate {
    /// Refuse key-press updates the way Twilio answers requests that come too
    /// fast: HTTP 429, code 20429.
    pub fn refuse_too_many_requests() -> Self {
        KeyPressUpdate::Refuse {
            status: 429,
            code: 20429,
            message: "Too Many Requests".into(),
        }
    }
}

/// A kind of request the telephone sends to our server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Call progress callbacks (`StatusCallback`).
    Status,
    /// The Media Stream WebSocket (`<Stream url>`).
    Stream,
    /// The asynchronous answering-machine callback (`AsyncAmdStatusCallback`).
    Amd,
}

/// Which server instance receives each kind of request (none: the address in
/// the URL, as usual). Requests keep the public URL and `Host` and are signed
/// for it (signatures cover the URL Twilio was given); only the TCP
/// connection goes to the chosen instance, in plain HTTP, as behind a load
/// balancer that ends TLS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Routes {
    /// Where status callbacks go.
    pub status: Option<SocketAddr>,
    /// Where Media Streams are opened.
    pub stream: Option<SocketAddr>,
    /// Where AMD callbacks go.
    pub amd: Option<SocketAddr>,
}

impl Routes {
    /// The instance chosen for `kind`, if any.
    pub fn of(&self, kind: Route) -> Option<SocketAddr> {
        match kind {
            Route::Status => self.status,
            Route::Stream => self.stream,
            Route::Amd => self.amd,
        }
    }
}

/// How a called number behaves.
#[derive(Clone, Debug)]
pub enum Line {
    /// Picks up after `ring_ms`; the host follows the scenario.
    Answer,
    /// Busy signal: terminal `busy`.
    Busy,
    /// Rings out: terminal `no-answer`.
    NoAnswer,
    /// Cannot be placed: terminal `failed`.
    Fail,
    /// An answering machine picks up after `ring_ms` and plays the scenario's
    /// lines (its greeting and beep); when the call asked for async AMD, the
    /// signed AMD callback says `machine_end_beep` once the beep has played.
    Voicemail,
}

/// A `clear` the product sent, with what the callee had heard of the turn.
#[derive(Clone, Debug)]
pub struct Clear {
    /// Stream clock (ms since the stream started) when the clear arrived.
    pub at_stream_ms: u64,
    /// Agent audio played in the current turn (since playback last started
    /// from an empty buffer) when the clear arrived.
    pub played_in_turn_ms: u64,
}

/// Everything recorded about one call.
#[derive(Clone, Debug, Default)]
pub struct SimCall {
    /// `CA` + 32 hex.
    pub call_sid: String,
    /// Called number (`To`).
    pub to: String,
    /// Caller ID (`From`).
    pub from: String,
    /// The `Twiml` the call was created with.
    pub twiml: String,
    /// `<Stream url>` from the TwiML the call was created with, if any.
    pub stream_url: Option<String>,
    /// That stream's `<Parameter>` name/value pairs, unescaped, in document order.
    pub parameters: Vec<(String, String)>,
    /// Status callbacks sent: (`CallStatus`, HTTP status our server answered; 0 = request failed).
    pub status_callbacks: Vec<(String, u16)>,
    /// HTTP status of the first WebSocket upgrade that got an answer (101 ok,
    /// 403 refused, ...), None if never tried or no HTTP answer; every
    /// stream's is in `streams`.
    pub upgrade_status: Option<u16>,
    /// Every `clear` received.
    pub clears: Vec<Clear>,
    /// Number of `mark` echoes sent back.
    pub marks_echoed: u64,
    /// Every byte of outbound (agent) audio actually played, in order.
    pub agent_audio: Vec<u8>,
    /// How the call ended: `rest:completed`, `rest:canceled`, `rest:twiml`,
    /// `callee`, `socket_closed`, `stream_failed`, `twiml_done`, `busy`,
    /// `no-answer`, `failed`, `shutdown`.
    pub ended_by: Option<String>,
    /// `<Say>` texts from a TwiML redirect, or from the TwiML after
    /// `</Connect>` when our server closed the stream.
    pub say_texts: Vec<String>,
    /// True once the call is over and every callback was sent.
    pub ended: bool,
    /// Current Twilio call status (`queued`, `ringing`, `in-progress`, `completed`, ...).
    pub status: String,
    /// Messages from our server ignored because malformed, of an unknown
    /// event, or without the right `streamSid`.
    pub ignored_messages: u64,
    /// Inbound `media` frames sent to our server.
    pub media_frames_sent: u64,
    /// Host lines spoken so far (clip ids, in order).
    pub host_lines_spoken: Vec<String>,
    /// The create-call form as received (name/value pairs, in order).
    pub create_form: Vec<(String, String)>,
    /// Keys the telephone heard pressed, in order: in the agent audio it
    /// played (a Goertzel DTMF detector over that audio), and in the keys
    /// Twilio played for `<Play digits>` (the same detector over their tones).
    pub dtmf_detected: String,
    /// The keys heard in the agent audio, with where they started in the
    /// played agent audio and how long they sounded (for `<Play digits>`,
    /// see `play_digits`).
    pub dtmf_tones: Vec<crate::sim::dtmf_detect::DetectedKey>,
    /// Async AMD callbacks sent: (`AnsweredBy`, HTTP status our server answered; 0 = failed).
    pub amd_callbacks: Vec<(String, u16)>,
    /// REST requests to end the call (`Status=completed` or `canceled`),
    /// including those that came after it had ended.
    pub hangup_requests: u32,
    /// Every Media Stream of the call, in order: the first, then one per call
    /// update that reconnected (a key press through Twilio).
    pub streams: Vec<SimStream>,
    /// Every `<Play digits>` played on the line, in order. The keys heard in
    /// them are in `dtmf_detected` too.
    pub play_digits: Vec<PlayedDigits>,
    /// Every call update with new TwiML: the document and the HTTP status the
    /// simulated Twilio answered.
    pub updates: Vec<(String, u16)>,
    /// Warnings Twilio would log in its debugger for the call's TwiML (e.g.
    /// `13430` for `<Play digits>` it cannot play); the call goes on.
    pub twiml_warnings: Vec<String>,
    /// Requests sent to a chosen instance ([`Routes`]), in order: the kind
    /// and the address the connection went to.
    pub routed: Vec<(Route, SocketAddr)>,
}

/// One Media Stream of a call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStream {
    /// `MZ` + 32 hex; empty when the stream never started.
    pub stream_sid: String,
    /// The `<Stream url>` it was opened to.
    pub url: String,
    /// Its `<Parameter>`s (its `start.customParameters`), in document order.
    pub parameters: Vec<(String, String)>,
    /// HTTP status of its WebSocket upgrade; None without an HTTP answer.
    pub upgrade_status: Option<u16>,
    /// The call's clock (ms since the first stream started) when its
    /// `start` was sent.
    pub started_at_call_ms: Option<u64>,
    /// The call's clock when it ended.
    pub ended_at_call_ms: Option<u64>,
    /// True when the telephone ended it (`stop`, then close: a call update,
    /// a hang-up); false when our server closed it.
    pub stopped: bool,
    /// Inbound `media` frames sent on it.
    pub media_frames: u64,
}

/// Keys the telephone played on the line for `<Play digits>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayedDigits {
    /// The `digits` attribute as received (keys and `w`/`W` pauses).
    pub digits: String,
    /// The call's clock when the first key or pause started.
    pub at_call_ms: u64,
    /// How long the keys and pauses took on the line, in ms.
    pub duration_ms: u64,
    /// The keys the line's DTMF detector heard in what was played, with
    /// their start relative to `at_call_ms`.
    pub heard: Vec<crate::sim::dtmf_detect::DetectedKey>,
}

enum Control {
    Hangup(&'static str),
    Redirect(String),
}

struct CallEntry {
    call: SimCall,
    control: mpsc::UnboundedSender<Control>,
    date_created: String,
}

struct Shared {
    account_sid: String,
    auth_token: String,
    scenario: Scenario,
    lines: HashMap<String, Line>,
    /// When set, numbers and scripts come from here (several restaurants).
    switchboard: std::sync::OnceLock<Arc<Switchboard>>,
    ring_ms: u64,
    key_press_update: KeyPressUpdate,
    routes: Mutex<Routes>,
    calls: Mutex<Vec<CallEntry>>,
    http: reqwest::Client,
    cancel: CancellationToken,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// The running Twilio stand-in (REST API on 127.0.0.1 plus one task per call).
pub struct TelephoneSim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl TelephoneSim {
    /// Start the REST API on 127.0.0.1:0.
    pub async fn start(config: TelephoneConfig) -> anyhow::Result<TelephoneSim> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .user_agent("TwilioProxy/1.1")
            .no_proxy()
            .build()?;
        let shared = Arc::new(Shared {
            account_sid: config.account_sid,
            auth_token: config.auth_token,
            scenario: config.scenario,
            lines: config.lines,
            switchboard: std::sync::OnceLock::new(),
            ring_ms: config.ring_ms,
            key_press_update: config.key_press_update,
            routes: Mutex::new(Routes::default()),
            calls: Mutex::new(Vec::new()),
            http,
            cancel: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .fallback(rest_handler)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let cancel = shared.cancel.clone();
        let server = tokio::spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(async move { cancel.cancelled().await })
                .await;
            if let Err(e) = result {
                warn!(error = %e, "telephone sim server stopped with an error");
            }
        });
        info!(%addr, "telephone sim listening");
        Ok(TelephoneSim {
            addr,
            shared,
            server,
        })
    }

    /// From now on, each number behaves as `switchboard` says and each
    /// answered call follows the script it writes for that call (instead of
    /// the one scenario and `lines` of the config). Set once.
    pub fn use_switchboard(&self, switchboard: Arc<Switchboard>) {
        let _ = self.shared.switchboard.set(switchboard);
    }

    /// From now on, send each kind of request to the instance `routes`
    /// names (see [`Routes`]).
    pub fn route(&self, routes: Routes) {
        *lock(&self.shared.routes) = routes;
    }

    /// `http://127.0.0.1:PORT`, what the product uses as `TWILIO_API_BASE`.
    pub fn api_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Snapshot of every call so far, in creation order.
    pub fn calls(&self) -> Vec<SimCall> {
        lock(&self.shared.calls)
            .iter()
            .map(|c| c.call.clone())
            .collect()
    }

    /// Wait until the call has ended and all its callbacks were sent; None on timeout or unknown sid.
    pub async fn wait_ended(&self, call_sid: &str, timeout: Duration) -> Option<SimCall> {
        let deadline = Instant::now() + timeout;
        loop {
            let call = lock(&self.shared.calls)
                .iter()
                .find(|c| c.call.call_sid == call_sid)
                .map(|c| c.call.clone());
            match call {
                Some(c) if c.ended => return Some(c),
                _ if Instant::now() >= deadline => return None,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Stop listening and end every call task (no further callbacks are sent).
    pub async fn shutdown(self) {
        self.shared.cancel.cancel();
        let tasks: Vec<_> = lock(&self.shared.tasks).drain(..).collect();
        for mut t in tasks {
            if tokio::time::timeout(Duration::from_secs(2), &mut t)
                .await
                .is_err()
            {
                t.abort();
            }
        }
        let mut server = self.server;
        if tokio::time::timeout(Duration::from_secs(2), &mut server)
            .await
            .is_err()
        {
            server.abort();
        }
    }
}

// ---------------------------------------------------------------- signing

/// `X-Twilio-Signature` for a request (twilio.md 6.1): base64(HMAC-SHA1(auth
/// token, URL + every param name+value sorted by name, then value)). For a
/// WebSocket upgrade pass no params (6.4). Exact duplicate name/value pairs
/// count once, as in twilio-python.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut data = String::from(url);
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    // HMAC accepts keys of any length; new_from_slice cannot fail for HMAC.
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()) else {
        return String::new();
    };
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

// ---------------------------------------------------------------- TwiML

/// The parts of a TwiML document the simulator acts on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Twiml {
    /// `<Connect><Stream>` (bidirectional) if present.
    pub stream: Option<TwimlStream>,
    /// `<Say>` texts before the `<Connect>` (or all of them if there is none).
    pub says: Vec<String>,
    /// `<Say>` texts after `</Connect>`: what Twilio says when our server closes the stream.
    pub says_after_connect: Vec<String>,
    /// A `<Hangup/>` is present.
    pub hangup: bool,
    /// `digits` of each `<Play>` before the `<Connect>` (or of all of them if
    /// there is none), unescaped, in order: keys Twilio presses first.
    pub play_digits: Vec<String>,
}

/// A `<Stream>` element.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TwimlStream {
    /// `url` attribute, unescaped, exactly as written (the URL Twilio signs).
    pub url: String,
    /// `statusCallback` attribute.
    pub status_callback: Option<String>,
    /// `<Parameter name value>` pairs, unescaped, in document order.
    pub parameters: Vec<(String, String)>,
}

/// Parse TwiML with quick-xml (attribute values unescaped, including numeric
/// references). Errors describe what is wrong, for logs and 400 answers.
pub fn parse_twiml(xml: &str) -> Result<Twiml, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = Twiml::default();
    let mut stack: Vec<String> = Vec::new();
    let mut seen_connect = false;
    let mut say_text: Option<String> = None;
    let mut root_seen = false;
    loop {
        let event = reader.read_event().map_err(|e| {
            format!(
                "TwiML is not well-formed XML at byte {}: {e}",
                reader.error_position()
            )
        })?;
        let (e, empty) = match &event {
            Event::Start(e) => (Some(e.clone()), false),
            Event::Empty(e) => (Some(e.clone()), true),
            _ => (None, false),
        };
        if let Some(e) = e {
            let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
            if !root_seen {
                if name != "Response" {
                    return Err(format!(
                        "TwiML root element must be <Response>, found <{name}>"
                    ));
                }
                root_seen = true;
            }
            let mut attrs: HashMap<String, String> = HashMap::new();
            for a in e.attributes() {
                let a = a.map_err(|e| format!("bad attribute in <{name}>: {e}"))?;
                let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
                let value = a
                    .unescape_value()
                    .map_err(|e| format!("bad attribute value in <{name} {key}>: {e}"))?
                    .into_owned();
                attrs.insert(key, value);
            }
            let parent = stack.last().map(String::as_str);
            match name.as_str() {
                "Stream" if parent == Some("Connect") => {
                    let url = attrs
                        .get("url")
                        .cloned()
                        .ok_or_else(|| "<Stream> without url".to_string())?;
                    out.stream = Some(TwimlStream {
                        url,
                        status_callback: attrs.get("statusCallback").cloned(),
                        parameters: Vec::new(),
                    });
                }
                "Parameter" if parent == Some("Stream") => {
                    if let Some(s) = out.stream.as_mut() {
                        let n = attrs.get("name").cloned().unwrap_or_default();
                        let v = attrs.get("value").cloned().unwrap_or_default();
                        s.parameters.push((n, v));
                    }
                }
                "Connect" => seen_connect = true,
                "Hangup" => out.hangup = true,
                "Play" if !seen_connect => {
                    if let Some(digits) = attrs.get("digits") {
                        out.play_digits.push(digits.clone());
                    }
                }
                "Say" => {
                    if empty {
                        // <Say/> says nothing
                    } else {
                        say_text = Some(String::new());
                    }
                }
                _ => {}
            }
            if !empty {
                stack.push(name);
            }
            continue;
        }
        match event {
            Event::Text(t) => {
                if let Some(s) = say_text.as_mut() {
                    let text = t
                        .unescape()
                        .map_err(|e| format!("bad text in <Say>: {e}"))?;
                    s.push_str(&text);
                }
            }
            Event::CData(t) => {
                if let Some(s) = say_text.as_mut() {
                    s.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::End(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if name == "Say" {
                    if let Some(text) = say_text.take() {
                        if seen_connect {
                            out.says_after_connect.push(text);
                        } else {
                            out.says.push(text);
                        }
                    }
                }
                stack.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !root_seen {
        return Err("TwiML is empty".into());
    }
    Ok(out)
}

// ---------------------------------------------------------------- REST

fn new_sid(prefix: &str) -> String {
    let mut rng = rand::thread_rng();
    let hex: String = (0..32)
        .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0'))
        .collect();
    format!("{prefix}{hex}")
}

fn rest_error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({"code": code, "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status.as_u16()});
    (status, axum::Json(body)).into_response()
}

fn is_e164(n: &str) -> bool {
    let Some(digits) = n.strip_prefix('+') else {
        return false;
    };
    digits.len() >= 7
        && digits.len() <= 15
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

fn formatted(n: &str) -> String {
    match n.strip_prefix("+1") {
        Some(d) if d.len() == 10 => format!("({}) {}-{}", &d[..3], &d[3..6], &d[6..]),
        _ => n.to_string(),
    }
}

fn rfc2822_now() -> String {
    chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S +0000")
        .to_string()
}

fn call_json(account_sid: &str, entry: &CallEntry) -> Value {
    let c = &entry.call;
    let base = format!("/2010-04-01/Accounts/{account_sid}/Calls/{}", c.call_sid);
    let sub = |name: &str| format!("{base}/{name}.json");
    json!({
        "account_sid": account_sid,
        "answered_by": null,
        "api_version": "2010-04-01",
        "caller_name": null,
        "date_created": entry.date_created,
        "date_updated": rfc2822_now(),
        "direction": "outbound-api",
        "duration": null,
        "end_time": null,
        "forwarded_from": null,
        "from": c.from,
        "from_formatted": formatted(&c.from),
        "group_sid": null,
        "parent_call_sid": null,
        "phone_number_sid": "PNdddddddddddddddddddddddddddddddd",
        "price": null,
        "price_unit": "USD",
        "sid": c.call_sid,
        "start_time": null,
        "status": c.status,
        "subresource_uris": {
            "notifications": sub("Notifications"), "recordings": sub("Recordings"),
            "payments": sub("Payments"), "events": sub("Events"), "siprec": sub("Siprec"),
            "streams": sub("Streams"), "transcriptions": sub("Transcriptions"),
            "user_defined_message_subscriptions": sub("UserDefinedMessageSubscriptions"),
            "user_defined_messages": sub("UserDefinedMessages")
        },
        "to": c.to,
        "to_formatted": formatted(&c.to),
        "trunk_sid": null,
        "uri": format!("{base}.json"),
        "queue_time": "0"
    })
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(value.trim()) else {
        return false;
    };
    decoded == format!("{}:{}", shared.account_sid, shared.auth_token).as_bytes()
}

async fn rest_handler(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let (account, rest) = match segments.as_slice() {
        ["2010-04-01", "Accounts", account, rest @ ..] => (*account, rest),
        _ => {
            return rest_error(
                StatusCode::NOT_FOUND,
                20404,
                "The requested resource was not found",
            )
        }
    };
    if !authorized(&shared, &headers) || account != shared.account_sid {
        return rest_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let form: Vec<(String, String)> = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(_) => {
            return rest_error(
                StatusCode::BAD_REQUEST,
                20001,
                "The request body is not valid form data",
            )
        }
    };
    match (method, rest) {
        (Method::POST, ["Calls.json"]) => create_call(shared, form),
        (Method::POST, ["Calls", call]) if call.ends_with(".json") => {
            update_call(&shared, call.trim_end_matches(".json"), form)
        }
        (Method::GET, ["Calls", call]) if call.ends_with(".json") => {
            let sid = call.trim_end_matches(".json");
            let calls = lock(&shared.calls);
            match calls.iter().find(|c| c.call.call_sid == sid) {
                Some(entry) => (
                    StatusCode::OK,
                    axum::Json(call_json(&shared.account_sid, entry)),
                )
                    .into_response(),
                None => rest_error(
                    StatusCode::NOT_FOUND,
                    20404,
                    "The requested resource was not found",
                ),
            }
        }
        _ => rest_error(
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found",
        ),
    }
}

/// The request fields a call needs after creation.
struct CreateParams {
    /// `AsyncAmdStatusCallback`, when `MachineDetection` and `AsyncAmd=true` were sent.
    amd_callback: Option<String>,
    status_callback: Option<String>,
    status_callback_method: String,
    events: Vec<String>,
    twiml: Twiml,
}

fn create_call(shared: Arc<Shared>, form: Vec<(String, String)>) -> Response {
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let Some(to) = get("To") else {
        return rest_error(
            StatusCode::BAD_REQUEST,
            21201,
            "No 'To' number is specified",
        );
    };
    let Some(from) = get("From") else {
        return rest_error(
            StatusCode::BAD_REQUEST,
            21603,
            "A 'From' phone number is required.",
        );
    };
    if !is_e164(&to) {
        return rest_error(
            StatusCode::BAD_REQUEST,
            21211,
            &format!("The 'To' number {to} is not a valid phone number."),
        );
    }
    let Some(twiml_text) = get("Twiml") else {
        return rest_error(
            StatusCode::BAD_REQUEST,
            21205,
            "Twiml is required (this simulator does not fetch Url)",
        );
    };
    if twiml_text.chars().count() > 4000 {
        return rest_error(
            StatusCode::BAD_REQUEST,
            20001,
            "Twiml exceeds the maximum length of 4000 characters",
        );
    }
    let twiml = match parse_twiml(&twiml_text) {
        Ok(t) => t,
        Err(e) => {
            return rest_error(
                StatusCode::BAD_REQUEST,
                12100,
                &format!("Document parse failure: {e}"),
            )
        }
    };
    let async_amd = get("MachineDetection").is_some()
        && get("AsyncAmd").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let params = CreateParams {
        amd_callback: get("AsyncAmdStatusCallback").filter(|_| async_amd),
        status_callback: get("StatusCallback"),
        status_callback_method: get("StatusCallbackMethod").unwrap_or_else(|| "POST".into()),
        events: form
            .iter()
            .filter(|(n, _)| n == "StatusCallbackEvent")
            .flat_map(|(_, v)| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .collect(),
        twiml: twiml.clone(),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let call_sid = new_sid("CA");
    let entry = CallEntry {
        call: SimCall {
            call_sid: call_sid.clone(),
            to: to.clone(),
            from,
            twiml: twiml_text,
            stream_url: twiml.stream.as_ref().map(|s| s.url.clone()),
            parameters: twiml
                .stream
                .as_ref()
                .map(|s| s.parameters.clone())
                .unwrap_or_default(),
            status: "queued".into(),
            create_form: form.clone(),
            ..Default::default()
        },
        control: tx,
        date_created: rfc2822_now(),
    };
    let body = call_json(&shared.account_sid, &entry);
    lock(&shared.calls).push(entry);
    info!(%call_sid, %to, "telephone sim: call created");
    let task = tokio::spawn(run_call(shared.clone(), call_sid, params, rx));
    lock(&shared.tasks).push(task);
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

fn update_call(shared: &Shared, sid: &str, form: Vec<(String, String)>) -> Response {
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut calls = lock(&shared.calls);
    let Some(entry) = calls.iter_mut().find(|c| c.call.call_sid == sid) else {
        return rest_error(
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found",
        );
    };
    let mut body = call_json(&shared.account_sid, entry);
    if let Some(twiml) = get("Twiml") {
        let refusal = if entry.call.ended {
            Some((
                StatusCode::BAD_REQUEST,
                21220,
                "Call is not in-progress. Cannot redirect.".to_string(),
            ))
        } else {
            match parse_twiml(&twiml) {
                Err(e) => Some((
                    StatusCode::BAD_REQUEST,
                    12100,
                    format!("Document parse failure: {e}"),
                )),
                Ok(parsed) => match &shared.key_press_update {
                    KeyPressUpdate::Refuse {
                        status,
                        code,
                        message,
                    } if !parsed.play_digits.is_empty() && parsed.stream.is_some() => Some((
                        StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST),
                        *code,
                        message.clone(),
                    )),
                    _ => None,
                },
            }
        };
        if let Some((status, code, message)) = refusal {
            info!(call = sid, code, "telephone sim: call update refused");
            entry.call.updates.push((twiml, status.as_u16()));
            return rest_error(status, code, &message);
        }
        entry
            .call
            .updates
            .push((twiml.clone(), StatusCode::OK.as_u16()));
        let _ = entry.control.send(Control::Redirect(twiml));
    } else if let Some(status) = get("Status") {
        let reason = match status.as_str() {
            "completed" => "rest:completed",
            "canceled" => "rest:canceled",
            _ => {
                return rest_error(
                    StatusCode::BAD_REQUEST,
                    20001,
                    &format!("Invalid Status '{status}': expected completed or canceled"),
                )
            }
        };
        entry.call.hangup_requests += 1;
        if !entry.call.ended {
            let _ = entry.control.send(Control::Hangup(reason));
            body["status"] = json!(status);
        }
    } else {
        return rest_error(
            StatusCode::BAD_REQUEST,
            20001,
            "Nothing to update: send Status, Twiml or Url",
        );
    }
    (StatusCode::OK, axum::Json(body)).into_response()
}

// ---------------------------------------------------------------- the call

fn update<R>(shared: &Shared, sid: &str, f: impl FnOnce(&mut SimCall) -> R) -> Option<R> {
    let mut calls = lock(&shared.calls);
    calls
        .iter_mut()
        .find(|c| c.call.call_sid == sid)
        .map(|c| f(&mut c.call))
}

/// Where an HTTP request for `url` (the public URL, which is signed) really
/// goes: the URL with the chosen instance's address and plain `http`, and the
/// public `Host` header to send with it; `None` when `kind` is not routed.
fn routed_http(shared: &Shared, sid: &str, kind: Route, url: &str) -> Option<(String, String)> {
    let addr = lock(&shared.routes).of(kind)?;
    let mut target = url::Url::parse(url).ok()?;
    let host = match (target.host_str(), target.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => return None,
    };
    target.set_scheme("http").ok()?;
    target.set_ip_host(addr.ip()).ok()?;
    target.set_port(Some(addr.port())).ok()?;
    update(shared, sid, |c| c.routed.push((kind, addr)));
    Some((target.to_string(), host))
}

/// POST a signed form to `url` (signed for `url`), routed as `kind` says.
async fn post_signed(
    shared: &Shared,
    sid: &str,
    kind: Route,
    url: &str,
    params: &[(String, String)],
) -> reqwest::Result<reqwest::Response> {
    let sig = signature(&shared.auth_token, url, params);
    let request = match routed_http(shared, sid, kind, url) {
        Some((target, host)) => shared.http.post(target).header("Host", host),
        None => shared.http.post(url),
    };
    request
        .header("X-Twilio-Signature", sig)
        .form(params)
        .send()
        .await
}

struct Callbacks {
    url: Option<String>,
    method: String,
    events: Vec<String>,
    seq: u32,
}

impl Callbacks {
    /// Send the status callback for `event` (if subscribed; `completed` always)
    /// and record it.
    async fn send(
        &mut self,
        shared: &Shared,
        call: &SimCall,
        event: &str,
        call_status: &str,
        extra: &[(&str, String)],
    ) {
        let subscribed = if self.events.is_empty() {
            event == "completed"
        } else {
            event == "completed" || self.events.iter().any(|e| e == event)
        };
        let Some(url) = self.url.clone().filter(|_| subscribed) else {
            return;
        };
        let mut params: Vec<(String, String)> = [
            ("AccountSid", shared.account_sid.clone()),
            ("ApiVersion", "2010-04-01".into()),
            ("CallSid", call.call_sid.clone()),
            ("Called", call.to.clone()),
            ("Caller", call.from.clone()),
            ("Direction", "outbound-api".into()),
            ("From", call.from.clone()),
            ("To", call.to.clone()),
            ("CallStatus", call_status.into()),
            ("CallbackSource", "call-progress-events".into()),
            ("SequenceNumber", self.seq.to_string()),
            ("Timestamp", rfc2822_now()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        params.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        self.seq += 1;
        let result = if self.method.eq_ignore_ascii_case("GET") {
            let query = serde_urlencoded::to_string(&params).unwrap_or_default();
            let sep = if url.contains('?') { '&' } else { '?' };
            let full = format!("{url}{sep}{query}");
            let sig = signature(&shared.auth_token, &full, &[]);
            let request = match routed_http(shared, &call.call_sid, Route::Status, &full) {
                Some((target, host)) => shared.http.get(target).header("Host", host),
                None => shared.http.get(&full),
            };
            request.header("X-Twilio-Signature", sig).send().await
        } else {
            post_signed(shared, &call.call_sid, Route::Status, &url, &params).await
        };
        let code = match result {
            Ok(r) => r.status().as_u16(),
            Err(e) => {
                warn!(%url, error = %e, "telephone sim: status callback failed");
                0
            }
        };
        debug!(call = %call.call_sid, call_status, code, "telephone sim: status callback");
        update(shared, &call.call_sid, |c| {
            c.status_callbacks.push((call_status.to_string(), code))
        });
    }
}

async fn run_call(
    shared: Arc<Shared>,
    sid: String,
    params: CreateParams,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    let mut cb = Callbacks {
        url: params.status_callback.clone(),
        method: params.status_callback_method.clone(),
        events: params.events.clone(),
        seq: 0,
    };
    let snapshot = |shared: &Shared| update(shared, &sid, |c| c.clone()).unwrap_or_default();
    let set_status = |shared: &Shared, s: &str| {
        update(shared, &sid, |c| c.status = s.to_string());
    };

    set_status(&shared, "initiated");
    cb.send(&shared, &snapshot(&shared), "initiated", "initiated", &[])
        .await;
    set_status(&shared, "ringing");
    cb.send(&shared, &snapshot(&shared), "ringing", "ringing", &[])
        .await;

    let to = snapshot(&shared).to;
    let line = shared
        .switchboard
        .get()
        .and_then(|sb| sb.line(&to))
        .or_else(|| shared.lines.get(&to).cloned())
        .unwrap_or(Line::Answer);
    let ring = if matches!(line, Line::Fail) {
        0
    } else {
        shared.ring_ms
    };
    let early: Option<(&str, &str)> = tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(ring)) => None,
        ctrl = control.recv() => match ctrl {
            Some(Control::Hangup(_)) | Some(Control::Redirect(_)) | None => Some(("canceled", "rest:canceled")),
        },
        _ = shared.cancel.cancelled() => Some(("canceled", "shutdown")),
    };
    let outcome = early.or(match line {
        Line::Answer | Line::Voicemail => None,
        Line::Busy => Some(("busy", "busy")),
        Line::NoAnswer => Some(("no-answer", "no-answer")),
        Line::Fail => Some(("failed", "failed")),
    });
    if let Some((status, ended_by)) = outcome {
        let sip = match status {
            "busy" => "486",
            "failed" => "404",
            _ => "487",
        };
        finish(&shared, &sid, &mut cb, status, ended_by, 0, sip).await;
        return;
    }

    set_status(&shared, "in-progress");
    cb.send(&shared, &snapshot(&shared), "answered", "in-progress", &[])
        .await;
    let answered_at = Instant::now();
    let amd = params.amd_callback.clone().map(|url| {
        let who = if matches!(line, Line::Voicemail) {
            "machine_end_beep"
        } else {
            "human"
        };
        (url, who)
    });
    let ended_by = run_twiml(&shared, &sid, &params.twiml, &mut control, amd).await;
    if let Some(sb) = shared.switchboard.get() {
        sb.disconnect(&sid);
    }
    let secs = answered_at.elapsed().as_millis().div_ceil(1000) as u64;
    finish(&shared, &sid, &mut cb, "completed", ended_by, secs, "200").await;
}

/// POST the signed async AMD result (twilio.md 3.1, `fixtures/http/callback_amd.json`).
async fn post_amd(
    shared: Arc<Shared>,
    call_sid: String,
    url: String,
    answered_by: &'static str,
    duration_ms: u64,
) {
    let params: Vec<(String, String)> = [
        ("AccountSid", shared.account_sid.clone()),
        ("AnsweredBy", answered_by.to_string()),
        ("CallSid", call_sid.clone()),
        ("MachineDetectionDuration", duration_ms.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let code = match post_signed(&shared, &call_sid, Route::Amd, &url, &params).await {
        Ok(r) => r.status().as_u16(),
        Err(e) => {
            warn!(%url, error = %e, "telephone sim: AMD callback failed");
            0
        }
    };
    info!(call = %call_sid, answered_by, code, "telephone sim: AMD callback");
    update(&shared, &call_sid, |c| {
        c.amd_callbacks.push((answered_by.to_string(), code))
    });
}

async fn finish(
    shared: &Shared,
    sid: &str,
    cb: &mut Callbacks,
    status: &str,
    ended_by: &str,
    secs: u64,
    sip: &str,
) {
    update(shared, sid, |c| {
        c.status = status.to_string();
        c.ended_by = Some(ended_by.to_string());
    });
    if ended_by != "shutdown" {
        let call = update(shared, sid, |c| c.clone()).unwrap_or_default();
        let extra = [
            ("CallDuration", secs.to_string()),
            ("Duration", secs.div_ceil(60).to_string()),
            ("SipResponseCode", sip.to_string()),
        ];
        cb.send(shared, &call, "completed", status, &extra).await;
    }
    update(shared, sid, |c| c.ended = true);
    info!(call = sid, status, ended_by, "telephone sim: call ended");
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The line's state, advanced one 20 ms frame per tick: the call's clock and
/// the host's place in the script, which carry on from one Media Stream to the
/// next, and the current stream's own numbering and playback buffer, which
/// [`StreamState::begin_stream`] starts afresh.
struct StreamState {
    stream_sid: String,
    call_sid: String,
    account_sid: String,
    seq: u64,
    /// The call's clock: frames since the first stream started, gaps between
    /// streams included.
    frames: u64,
    /// `frames` when the current stream started: Twilio counts `chunk` and
    /// `media.timestamp` from the start of each stream (twilio.md 5.3).
    stream_start_frame: u64,
    buffer: VecDeque<u8>,
    enqueued: u64,
    played: u64,
    marks: VecDeque<(u64, String)>,
    playing: bool,
    turn_played: u64,
    agent_since_host: bool,
    last_agent_end_ms: u64,
    last_activity_ms: u64,
    host_next: usize,
    host_speaking: Option<(Vec<u8>, usize)>,
    out: Vec<Value>,
    /// Host lines finished.
    host_lines_done: u32,
    /// DTMF detector over the played agent audio.
    dtmf: crate::sim::dtmf_detect::DtmfDetector,
    /// Keys heard since the host's last line started.
    dtmf_since_host: String,
}

impl StreamState {
    /// A line on which no stream has started yet.
    fn new(call_sid: &str, account_sid: &str) -> Self {
        StreamState {
            stream_sid: String::new(),
            call_sid: call_sid.to_string(),
            account_sid: account_sid.to_string(),
            seq: 0,
            frames: 0,
            stream_start_frame: 0,
            buffer: VecDeque::new(),
            enqueued: 0,
            played: 0,
            marks: VecDeque::new(),
            playing: false,
            turn_played: 0,
            agent_since_host: false,
            last_agent_end_ms: 0,
            last_activity_ms: 0,
            host_next: 0,
            host_speaking: None,
            out: Vec::new(),
            host_lines_done: 0,
            dtmf: Default::default(),
            dtmf_since_host: String::new(),
        }
    }

    /// A new stream starts on the line: new `streamSid`, numbering from 1,
    /// timestamps from 0, an empty playback buffer (audio queued on the old
    /// stream was never played), no pending marks. The call's clock, the
    /// host's script and the keys heard carry on.
    fn begin_stream(&mut self, stream_sid: String) {
        self.stream_sid = stream_sid;
        self.seq = 0;
        self.stream_start_frame = self.frames;
        self.buffer.clear();
        self.enqueued = 0;
        self.played = 0;
        self.marks.clear();
        self.playing = false;
        self.turn_played = 0;
        self.out.clear();
    }

    /// The call's clock, ms since the first stream started.
    fn call_ms(&self) -> u64 {
        self.frames * FRAME_MS
    }

    /// The current stream's clock, ms since it started: its `media.timestamp`.
    fn stream_ms(&self) -> u64 {
        (self.frames - self.stream_start_frame) * FRAME_MS
    }

    /// One 20 ms frame while no stream is open (Twilio playing keys, or
    /// connecting the next stream): the clock runs, a host line already
    /// under way goes on (our server never hears it), and `line_audio` (keys
    /// Twilio plays, silence otherwise) is our side's sound on the line, as
    /// agent audio is. No new host line starts while the line has no stream.
    fn gap_tick(&mut self, line_audio: &[u8]) {
        let now_ms = self.call_ms();
        if let Some((audio, pos)) = self.host_speaking.as_mut() {
            *pos = (*pos + FRAME_BYTES).min(audio.len());
            self.last_activity_ms = now_ms;
            if *pos >= audio.len() {
                self.host_speaking = None;
                self.agent_since_host = false;
                self.host_lines_done += 1;
            }
        }
        self.frames += 1;
        if line_audio.iter().any(|&b| b != mulaw::SILENCE) {
            self.agent_since_host = true;
            self.last_agent_end_ms = self.call_ms();
            self.last_activity_ms = self.call_ms();
        }
    }

    fn next_seq(&mut self) -> String {
        self.seq += 1;
        self.seq.to_string()
    }

    fn echo(&mut self, name: String) {
        let seq = self.next_seq();
        self.out.push(json!({"event": "mark", "sequenceNumber": seq,
            "streamSid": self.stream_sid, "mark": {"name": name}}));
    }

    /// Should the host start its next line now?
    fn cue_ready(&self, cue: &Cue) -> bool {
        let now = self.call_ms();
        match cue {
            Cue::Answer { after_ms } => now >= *after_ms,
            Cue::AfterAgent { silence_ms } => {
                self.agent_since_host
                    && self.buffer.is_empty()
                    && now >= self.last_agent_end_ms + silence_ms
            }
            Cue::Interrupt { after_heard_ms } => {
                self.playing && self.turn_played / 8 >= *after_heard_ms
            }
            Cue::AfterDtmf { digit, silence_ms } => {
                self.dtmf_since_host.contains(*digit)
                    && self.buffer.is_empty()
                    && now >= self.last_agent_end_ms + silence_ms
            }
        }
    }

    /// One 20 ms tick: host cue, inbound frame, playback, mark echoes.
    /// Returns (agent bytes played, marks echoed, host line started).
    fn tick(&mut self, scenario: &Scenario) -> (Vec<u8>, u64, Option<&'static str>) {
        let mut started = None;
        if self.host_speaking.is_none() {
            if let Some(line) = scenario.host.get(self.host_next) {
                if self.cue_ready(&line.cue) {
                    self.host_speaking = Some((host_audio(line.clip), 0));
                    self.host_next += 1;
                    self.dtmf_since_host.clear();
                    started = Some(line.clip);
                }
            }
        }
        let mut frame = [mulaw::SILENCE; FRAME_BYTES];
        let now_ms = self.call_ms();
        if let Some((audio, pos)) = self.host_speaking.as_mut() {
            let n = (audio.len() - *pos).min(FRAME_BYTES);
            frame[..n].copy_from_slice(&audio[*pos..*pos + n]);
            *pos += n;
            self.last_activity_ms = now_ms;
            if *pos >= audio.len() {
                self.host_speaking = None;
                self.agent_since_host = false;
                self.host_lines_done += 1;
            }
        }
        let seq = self.next_seq();
        let ts = self.stream_ms();
        let chunk = self.frames - self.stream_start_frame + 1;
        let b64 = base64::engine::general_purpose::STANDARD.encode(frame);
        self.out.push(json!({"event": "media", "sequenceNumber": seq,
            "media": {"track": "inbound", "chunk": chunk.to_string(), "timestamp": ts.to_string(), "payload": b64},
            "streamSid": self.stream_sid}));

        let n = self.buffer.len().min(FRAME_BYTES);
        let played: Vec<u8> = self.buffer.drain(..n).collect();
        if n > 0 {
            if !self.playing {
                self.playing = true;
                self.turn_played = 0;
            }
            self.turn_played += n as u64;
            self.played += n as u64;
            self.agent_since_host = true;
            self.last_activity_ms = self.call_ms();
        }
        self.frames += 1;
        if n > 0 {
            self.last_agent_end_ms = self.call_ms();
        }
        if self.buffer.is_empty() {
            self.playing = false;
        }
        let mut echoed = 0;
        while self
            .marks
            .front()
            .is_some_and(|(pos, _)| *pos <= self.played)
        {
            if let Some((_, name)) = self.marks.pop_front() {
                self.echo(name);
                echoed += 1;
            }
        }
        (played, echoed, started)
    }

    /// A text frame from our server. Returns `Some(clear)` for a clear,
    /// Err(()) when the message was ignored.
    fn on_message(&mut self, text: &str) -> Result<(u64, Option<Clear>), ()> {
        let v: Value = serde_json::from_str(text).map_err(|_| ())?;
        if v.get("streamSid").and_then(Value::as_str) != Some(self.stream_sid.as_str()) {
            return Err(());
        }
        match v.get("event").and_then(Value::as_str) {
            Some("media") => {
                let payload = v
                    .get("media")
                    .and_then(|m| m.get("payload"))
                    .and_then(Value::as_str)
                    .ok_or(())?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(payload)
                    .map_err(|_| ())?;
                self.enqueued += bytes.len() as u64;
                self.buffer.extend(bytes);
                Ok((0, None))
            }
            Some("mark") => {
                let name = v
                    .get("mark")
                    .and_then(|m| m.get("name"))
                    .and_then(Value::as_str)
                    .ok_or(())?
                    .to_string();
                if self.buffer.is_empty() {
                    self.echo(name);
                    Ok((1, None))
                } else {
                    self.marks.push_back((self.enqueued, name));
                    Ok((0, None))
                }
            }
            Some("clear") => {
                let clear = Clear {
                    at_stream_ms: self.stream_ms(),
                    played_in_turn_ms: self.turn_played / 8,
                };
                self.buffer.clear();
                self.played = self.enqueued;
                self.playing = false;
                let names: Vec<String> = self.marks.drain(..).map(|(_, n)| n).collect();
                let n = names.len() as u64;
                for name in names {
                    self.echo(name);
                }
                Ok((n, Some(clear)))
            }
            _ => Err(()),
        }
    }
}

async fn flush(ws: &mut Ws, st: &mut StreamState) -> bool {
    for v in st.out.drain(..) {
        if ws
            .send(WsMessage::Text(v.to_string().into()))
            .await
            .is_err()
        {
            return false;
        }
    }
    true
}

async fn stop_and_close(ws: &mut Ws, st: &mut StreamState) {
    let seq = st.next_seq();
    st.out.push(json!({"event": "stop", "sequenceNumber": seq,
        "stop": {"accountSid": st.account_sid, "callSid": st.call_sid}, "streamSid": st.stream_sid}));
    let _ = flush(ws, st).await;
    let _ = ws.close(None).await;
    // Let the close handshake finish (bounded).
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// How one stretch of the call ended: the call is over (`ended_by`), or our
/// server replaced the TwiML (a call update) and the line goes on with it.
enum StreamEnd {
    Over(&'static str),
    Redirect(Twiml),
}

/// What the telephone does on a control message from the REST API.
fn on_control(ctrl: Option<Control>) -> StreamEnd {
    match ctrl {
        Some(Control::Hangup(reason)) => StreamEnd::Over(reason),
        // `update_call` only forwards TwiML that parses.
        Some(Control::Redirect(xml)) => match parse_twiml(&xml) {
            Ok(twiml) => StreamEnd::Redirect(twiml),
            Err(_) => StreamEnd::Over("rest:twiml"),
        },
        None => StreamEnd::Over("shutdown"),
    }
}

/// Run the call's TwiML as Twilio does, until the call ends; returns
/// `ended_by`. A call update replaces the TwiML: the current stream stops,
/// then the new document runs from its start: `<Play digits>` (the keys
/// are played on the line), then `<Connect><Stream>` (a new stream, its own
/// `streamSid` and parameters), or its `<Say>`s when it has no stream.
async fn run_twiml(
    shared: &Arc<Shared>,
    sid: &str,
    first: &Twiml,
    control: &mut mpsc::UnboundedReceiver<Control>,
    mut amd: Option<(String, &'static str)>,
) -> &'static str {
    let mut st = StreamState::new(sid, &shared.account_sid);
    let mut twiml = first.clone();
    let mut redirected = false;
    loop {
        let key_press = redirected && !twiml.play_digits.is_empty();
        if let Some(end) = play_digits(shared, sid, &mut st, &twiml.play_digits, control).await {
            match end {
                StreamEnd::Over(reason) => return reason,
                StreamEnd::Redirect(next) => {
                    twiml = next;
                    redirected = true;
                    continue;
                }
            }
        }
        let Some(stream) = twiml.stream.clone() else {
            let says = twiml.says.clone();
            update(shared, sid, |c| c.say_texts.extend(says));
            return if redirected {
                "rest:twiml"
            } else {
                "twiml_done"
            };
        };
        let end = if key_press && matches!(shared.key_press_update, KeyPressUpdate::NoNewStream) {
            info!(
                call = sid,
                "telephone sim: told not to open the new stream; the line stays silent"
            );
            hold_the_line(shared, sid, &mut st, control).await
        } else {
            run_stream(
                shared,
                sid,
                &stream,
                &twiml.says_after_connect,
                &mut st,
                control,
                &mut amd,
            )
            .await
        };
        match end {
            StreamEnd::Over(reason) => return reason,
            StreamEnd::Redirect(next) => {
                twiml = next;
                redirected = true;
            }
        }
    }
}

/// Length of one key Twilio plays for `<Play digits>`, and the silence after
/// it, in ms. Twilio does not document them; these are the common 100 ms tone
/// and 100 ms gap (twilio.md 5.9).
const PLAYED_KEY_MS: u32 = 100;
const PLAYED_KEY_GAP_MS: u32 = 100;
/// Twilio's pauses: `w` half a second, `W` a second.
const PAUSE_W_MS: u32 = 500;
const PAUSE_CAPITAL_W_MS: u32 = 1000;

/// The sound of `<Play digits>` on the line: each key a dual tone (its own
/// synthesis, not the product's), each pause silence. `None` when `digits`
/// holds a character Twilio does not play (warning 13430: the verb is
/// skipped) or no key at all.
pub fn play_digits_audio(digits: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut keys = 0;
    for c in digits.chars() {
        let silence = |ms: u32| std::iter::repeat_n(mulaw::SILENCE, (ms * 8) as usize);
        match c {
            'w' => out.extend(silence(PAUSE_W_MS)),
            'W' => out.extend(silence(PAUSE_CAPITAL_W_MS)),
            key => {
                let (low, high) = crate::sim::dtmf_detect::key_frequencies(key)?;
                keys += 1;
                for n in 0..PLAYED_KEY_MS * 8 {
                    let t = n as f32 / 8000.0;
                    let tau = 2.0 * std::f32::consts::PI;
                    let sample = 6000.0 * ((tau * low * t).sin() + (tau * high * t).sin());
                    out.push(mulaw::encode(sample as i16));
                }
                out.extend(silence(PLAYED_KEY_GAP_MS));
            }
        }
    }
    (keys > 0).then_some(out)
}

/// Play each `<Play digits>` on the line in real time, while no stream is
/// open. The line's DTMF detector (the phone menu's ears) hears the keys and
/// the host reacts to them as to keys played inside a stream. Returns early
/// when a control message ends the call or replaces the TwiML.
async fn play_digits(
    shared: &Arc<Shared>,
    sid: &str,
    st: &mut StreamState,
    plays: &[String],
    control: &mut mpsc::UnboundedReceiver<Control>,
) -> Option<StreamEnd> {
    for digits in plays {
        let Some(audio) = play_digits_audio(digits) else {
            warn!(call = sid, digits = %digits, "telephone sim: warning 13430, <Play digits> skipped");
            let warning = format!("13430 Play: Invalid DTMF String {digits:?}");
            update(shared, sid, |c| c.twiml_warnings.push(warning));
            continue;
        };
        info!(call = sid, digits = %digits, "telephone sim: playing keys on the line");
        let at_call_ms = st.call_ms();
        let mut detector = crate::sim::dtmf_detect::DtmfDetector::default();
        let mut heard = Vec::new();
        let mut interval = tokio::time::interval(Duration::from_millis(FRAME_MS));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut frames = audio.chunks(FRAME_BYTES);
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    let Some(frame) = frames.next() else { break };
                    let keys = detector.push(frame);
                    st.gap_tick(frame);
                    st.dtmf_since_host.extend(keys.iter().map(|k| k.key));
                    heard.extend(keys);
                }
                ctrl = control.recv() => return Some(on_control(ctrl)),
                _ = shared.cancel.cancelled() => return Some(StreamEnd::Over("shutdown")),
            }
        }
        let last = detector.finish();
        st.dtmf_since_host.extend(last.iter().map(|k| k.key));
        heard.extend(last);
        let played = PlayedDigits {
            digits: digits.clone(),
            at_call_ms,
            duration_ms: st.call_ms() - at_call_ms,
            heard,
        };
        info!(call = sid, keys = %played.heard.iter().map(|k| k.key).collect::<String>(), "telephone sim: the line heard the keys");
        update(shared, sid, |c| {
            c.dtmf_detected.extend(played.heard.iter().map(|k| k.key));
            c.play_digits.push(played);
        });
    }
    None
}

/// The line with no stream (told never to open the new one): the clock runs,
/// the callee listens, and hangs up after [`IDLE_HANGUP_MS`] of silence,
/// unless the REST API ends the call or replaces its TwiML first.
async fn hold_the_line(
    shared: &Arc<Shared>,
    sid: &str,
    st: &mut StreamState,
    control: &mut mpsc::UnboundedReceiver<Control>,
) -> StreamEnd {
    let silence = [mulaw::SILENCE; FRAME_BYTES];
    let mut interval = tokio::time::interval(Duration::from_millis(FRAME_MS));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {
                st.gap_tick(&silence);
                if st.call_ms().saturating_sub(st.last_activity_ms) >= IDLE_HANGUP_MS {
                    info!(call = sid, "telephone sim: 20 s of silence, the callee hangs up");
                    return StreamEnd::Over("callee");
                }
            }
            ctrl = control.recv() => return on_control(ctrl),
            _ = shared.cancel.cancelled() => return StreamEnd::Over("shutdown"),
        }
    }
}

/// Note the end of stream number `index` of the call on the call clock.
fn stream_ended(shared: &Shared, sid: &str, index: usize, at_call_ms: u64, stopped: bool) {
    update(shared, sid, |c| {
        if let Some(s) = c.streams.get_mut(index) {
            s.ended_at_call_ms = Some(at_call_ms);
            s.stopped = stopped;
        }
    });
}

/// Open one Media Stream and run it until the call ends or its TwiML is
/// replaced. On failure to connect, Twilio goes on with the TwiML after
/// `</Connect>` (`says_after`), and with nothing more the call ends.
async fn run_stream(
    shared: &Arc<Shared>,
    sid: &str,
    stream: &TwimlStream,
    says_after: &[String],
    st: &mut StreamState,
    control: &mut mpsc::UnboundedReceiver<Control>,
    amd: &mut Option<(String, &'static str)>,
) -> StreamEnd {
    let says_after = says_after.to_vec();
    let index = update(shared, sid, |c| {
        c.streams.push(SimStream {
            url: stream.url.clone(),
            parameters: stream.parameters.clone(),
            ..Default::default()
        });
        c.streams.len() - 1
    })
    .unwrap_or_default();
    let failed = |code: Option<u16>| {
        update(shared, sid, |c| {
            c.upgrade_status = c.upgrade_status.or(code);
            if let Some(s) = c.streams.get_mut(index) {
                s.upgrade_status = code;
            }
            c.say_texts.extend(says_after.clone());
        });
        StreamEnd::Over("stream_failed")
    };
    let mut req = match stream.url.as_str().into_client_request() {
        Ok(r) => r,
        Err(e) => {
            warn!(url = %stream.url, error = %e, "telephone sim: bad stream url");
            return failed(None);
        }
    };
    let sig = signature(&shared.auth_token, &stream.url, &[]);
    if let Ok(h) = sig.parse() {
        req.headers_mut().insert("X-Twilio-Signature", h);
    }
    let connecting = Instant::now();
    let routed = lock(&shared.routes).of(Route::Stream);
    if let Some(addr) = routed {
        update(shared, sid, |c| c.routed.push((Route::Stream, addr)));
    }
    let connect = tokio::time::timeout(Duration::from_secs(5), async move {
        match routed {
            // The request (URL, Host, signature) is the public one; only the
            // connection goes to the chosen instance.
            Some(addr) => match tokio::net::TcpStream::connect(addr).await {
                Ok(tcp) => {
                    let tcp = tokio_tungstenite::MaybeTlsStream::Plain(tcp);
                    tokio_tungstenite::client_async(req, tcp).await
                }
                Err(e) => Err(tokio_tungstenite::tungstenite::Error::Io(e)),
            },
            None => tokio_tungstenite::connect_async(req).await,
        }
    })
    .await;
    let mut ws = match connect {
        Ok(Ok((ws, resp))) => {
            let code = resp.status().as_u16();
            update(shared, sid, |c| {
                c.upgrade_status = c.upgrade_status.or(Some(code));
                if let Some(s) = c.streams.get_mut(index) {
                    s.upgrade_status = Some(code);
                }
            });
            ws
        }
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
            let code = resp.status().as_u16();
            warn!(url = %stream.url, code, "telephone sim: stream upgrade refused");
            return failed(Some(code));
        }
        Ok(Err(e)) => {
            warn!(url = %stream.url, error = %e, "telephone sim: stream connect failed");
            return failed(None);
        }
        Err(_) => {
            warn!(url = %stream.url, "telephone sim: stream connect timed out");
            return failed(None);
        }
    };

    // The script is chosen before `start` is sent: the product briefs its
    // model only after reading `start`, and the model stand-in looks the call up.
    let scenario = match shared.switchboard.get() {
        Some(sb) => {
            let to = update(shared, sid, |c| c.to.clone()).unwrap_or_default();
            sb.connect(sid, &to, &stream.parameters)
        }
        None => shared.scenario.clone(),
    };
    let custom: serde_json::Map<String, Value> = stream
        .parameters
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    // Between two streams, connecting the next one is part of the gap: the
    // call's clock counts it (the first stream starts the clock at 0).
    if !st.stream_sid.is_empty() {
        let silence = [mulaw::SILENCE; FRAME_BYTES];
        for _ in 0..connecting.elapsed().as_millis() as u64 / FRAME_MS {
            st.gap_tick(&silence);
        }
    }
    st.begin_stream(new_sid("MZ"));
    let stream_sid = st.stream_sid.clone();
    let started_at = st.call_ms();
    update(shared, sid, |c| {
        if let Some(s) = c.streams.get_mut(index) {
            s.stream_sid = stream_sid;
            s.started_at_call_ms = Some(started_at);
        }
    });
    st.out
        .push(json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}));
    let seq = st.next_seq();
    st.out.push(json!({"event": "start", "sequenceNumber": seq,
        "start": {"accountSid": st.account_sid, "streamSid": st.stream_sid, "callSid": st.call_sid,
                  "tracks": ["inbound"],
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                  "customParameters": custom},
        "streamSid": st.stream_sid}));
    // Our server closed the stream: Twilio goes on after `</Connect>`.
    let closed = |st: &StreamState| {
        stream_ended(shared, sid, index, st.call_ms(), false);
        update(shared, sid, |c| c.say_texts.extend(says_after.clone()));
        StreamEnd::Over("socket_closed")
    };
    // Twilio ends the stream: `stop`, then the socket closes.
    async fn stopped(
        shared: &Shared,
        sid: &str,
        index: usize,
        ws: &mut Ws,
        st: &mut StreamState,
        end: StreamEnd,
    ) -> StreamEnd {
        stop_and_close(ws, st).await;
        stream_ended(shared, sid, index, st.call_ms(), true);
        end
    }
    if !flush(&mut ws, st).await {
        return closed(st);
    }

    let mut interval = tokio::time::interval(Duration::from_millis(FRAME_MS));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let scenario = &scenario;
    loop {
        tokio::select! {
            _ = interval.tick() => {
                let (played, echoed, started) = st.tick(scenario);
                let keys = st.dtmf.push(&played);
                for k in &keys {
                    info!(call = sid, key = %k.key, duration_ms = k.duration_ms, "telephone sim: heard a key press");
                    st.dtmf_since_host.push(k.key);
                }
                // Async AMD: decided once the first thing the callee said (a
                // person's greeting, or a machine's greeting and beep) is over.
                if st.host_lines_done >= 1 {
                    if let Some((url, who)) = amd.take() {
                        let task = tokio::spawn(post_amd(shared.clone(), sid.to_string(), url, who, st.call_ms()));
                        lock(&shared.tasks).push(task);
                    }
                }
                if let Some(clip) = started {
                    debug!(call = sid, clip, at_ms = st.call_ms(), "telephone sim: host speaks");
                }
                update(shared, sid, |c| {
                    c.agent_audio.extend_from_slice(&played);
                    c.dtmf_detected.extend(keys.iter().map(|k| k.key));
                    c.dtmf_tones.extend(keys);
                    c.marks_echoed += echoed;
                    c.media_frames_sent += 1;
                    if let Some(s) = c.streams.get_mut(index) {
                        s.media_frames += 1;
                    }
                    if let Some(clip) = started {
                        c.host_lines_spoken.push(clip.to_string());
                    }
                });
                if !flush(&mut ws, st).await {
                    return closed(st);
                }
                if st.call_ms().saturating_sub(st.last_activity_ms) >= IDLE_HANGUP_MS {
                    info!(call = sid, "telephone sim: 20 s of silence, the callee hangs up");
                    return stopped(shared, sid, index, &mut ws, st, StreamEnd::Over("callee")).await;
                }
            }
            msg = ws.next() => {
                match msg {
                    Some(Ok(WsMessage::Text(text))) => {
                        match st.on_message(&text) {
                            Ok((echoed, clear)) => {
                                update(shared, sid, |c| {
                                    c.marks_echoed += echoed;
                                    c.clears.extend(clear);
                                });
                            }
                            Err(()) => {
                                debug!(call = sid, "telephone sim: ignored a message from our server");
                                update(shared, sid, |c| c.ignored_messages += 1);
                            }
                        }
                        if !flush(&mut ws, st).await {
                            return closed(st);
                        }
                    }
                    Some(Ok(WsMessage::Binary(_))) => {
                        update(shared, sid, |c| c.ignored_messages += 1);
                    }
                    Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => {
                        return closed(st);
                    }
                    Some(Ok(_)) => {}
                }
            }
            ctrl = control.recv() => {
                let end = on_control(ctrl);
                return stopped(shared, sid, index, &mut ws, st, end).await;
            }
            _ = shared.cancel.cancelled() => {
                return stopped(shared, sid, index, &mut ws, st, StreamEnd::Over("shutdown")).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::scenario::Booking;
    use axum::extract::ws::{Message as AxMessage, WebSocket, WebSocketUpgrade};
    use axum::extract::State;
    use axum::routing::{get, post};

    const AC: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const TOKEN: &str = "12345678901234567890123456789012";
    const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/protocol");

    fn fixture(name: &str) -> Value {
        let text = std::fs::read_to_string(format!("{FIX}/{name}")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn pairs(v: &Value) -> Vec<(String, String)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p[0].as_str().unwrap().to_string(),
                    p[1].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn signing_reproduces_the_fixtures() {
        let ringing = fixture("http/callback_status_ringing.json");
        let sig = signature(
            TOKEN,
            ringing["url"].as_str().unwrap(),
            &pairs(&ringing["form"]),
        );
        assert_eq!(sig, ringing["headers"]["X-Twilio-Signature"]);
        let completed = fixture("http/callback_status_completed.json");
        let sig = signature(
            TOKEN,
            completed["url"].as_str().unwrap(),
            &pairs(&completed["form"]),
        );
        assert_eq!(sig, completed["headers"]["X-Twilio-Signature"]);
        let vectors = fixture("signature_vectors.json");
        for v in vectors["vectors"].as_array().unwrap() {
            if v.get("body").is_some_and(|b| !b.is_null()) {
                continue;
            }
            let sig = signature(
                v["auth_token"].as_str().unwrap(),
                v["url"].as_str().unwrap(),
                &pairs(&v["params"]),
            );
            assert_eq!(sig, v["expected_signature"], "vector {}", v["id"]);
        }
        let ws = vectors["vectors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["id"] == "ws-upgrade")
            .unwrap();
        assert_eq!(
            signature(TOKEN, ws["url"].as_str().unwrap(), &[]),
            "YrVkHBLTW0mFfgTJ5hpNA+ZxJSw="
        );
    }

    #[test]
    fn twiml_parameters_match_the_start_fixture() {
        let xml = std::fs::read_to_string(format!("{FIX}/twiml_expected.xml")).unwrap();
        let t = parse_twiml(&xml).unwrap();
        let s = t.stream.unwrap();
        assert_eq!(s.url, "wss://reservoice.example.com/media-stream");
        assert_eq!(
            s.status_callback.as_deref(),
            Some("https://reservoice.example.com/twilio/stream-status")
        );
        let start = fixture("twilio_start.json");
        let expected: Vec<(String, String)> = start["start"]["customParameters"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        let mut got = s.parameters.clone();
        let mut want = expected;
        got.sort();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(s.parameters[0].1, "Bob & Sue's \"Grill\" <Downtown>");

        let redirect = fixture("http/rest_redirect_twiml_request.json");
        let t = parse_twiml(redirect["form"][0][1].as_str().unwrap()).unwrap();
        assert_eq!(t.says, vec!["Sorry, we have a technical problem. Goodbye."]);
        assert!(t.hangup && t.stream.is_none());
        let t = parse_twiml("<Response><Say>a&#10;b</Say><Connect><Stream url=\"wss://x/y\"><Parameter name=\"n\" value=\"l1&#10;l2&#09;\"/></Stream></Connect><Say>bye</Say></Response>").unwrap();
        assert_eq!(t.says, vec!["a\nb"]);
        assert_eq!(t.says_after_connect, vec!["bye"]);
        assert_eq!(t.stream.unwrap().parameters[0].1, "l1\nl2\t");
        assert!(parse_twiml("<Foo/>").is_err());
        assert!(parse_twiml("").is_err());
        assert!(parse_twiml("<Response><Connect><Stream/></Connect></Response>").is_err());
    }

    #[test]
    fn e164_check() {
        assert!(is_e164("+15551234567"));
        assert!(!is_e164("+1555"));
        assert!(!is_e164("15551234567"));
        assert!(!is_e164("+05551234567"));
        assert!(!is_e164("+1555123456x"));
    }

    // ------------------------------------------------------------ product stand-in

    #[derive(Clone, Copy, PartialEq)]
    enum Mode {
        /// On `start`: 1 s of media + a mark (and one message with a wrong streamSid).
        Normal,
        /// Refuse the upgrade with 403.
        Refuse,
        /// On `start`: 2 s of media + a mark; clear after 500 ms; close on the mark echo.
        ClearThenClose,
        /// Once the first stream's clock reaches `at_ms`, update the call with
        /// TwiML that plays `digits` and reconnects to `/media` with the first
        /// stream's parameters and the continuation (the product's key press).
        PressKey { digits: &'static str, at_ms: u64 },
    }

    #[derive(Default)]
    struct Seen {
        base: String,
        /// The simulated Twilio's REST base, for the product's call update.
        api_base: String,
        callbacks: Vec<(Vec<(String, String)>, bool)>,
        upgrade_sig_ok: Option<bool>,
        /// Whether each upgrade's signature was right, in order.
        upgrade_sigs: Vec<bool>,
        events: Vec<Value>,
        last_media_ts: u64,
        loud_frames: u64,
        mark_echo_ts: Option<u64>,
        sent_audio: Vec<u8>,
        closed: bool,
        /// Sockets that ended.
        sockets_closed: u32,
        /// The first `media` of each stream, in order.
        first_media: Vec<Value>,
        /// The last `media` of each stream, by `streamSid`.
        last_media: HashMap<String, Value>,
        /// Loud inbound frames (the host speaking), by `streamSid`.
        loud_by_stream: HashMap<String, u64>,
        /// The key-press update: its TwiML and the HTTP status and body Twilio answered.
        update: Option<(String, u16, Value)>,
    }

    struct Product {
        seen: Arc<Mutex<Seen>>,
        mode: Mode,
    }

    async fn start_product(mode: Mode) -> (String, Arc<Mutex<Seen>>) {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let product = Arc::new(Product {
            seen: seen.clone(),
            mode,
        });
        let app = Router::new()
            .route("/status", post(status_route))
            .route("/media", get(media_route))
            .with_state(product);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
        lock(&seen).base = base.clone();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (base, seen)
    }

    async fn status_route(
        State(p): State<Arc<Product>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap();
        let mut seen = lock(&p.seen);
        let url = format!("http://{}/status", seen.base);
        let sig = headers
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let ok = sig == signature(TOKEN, &url, &form);
        seen.callbacks.push((form, ok));
        StatusCode::NO_CONTENT
    }

    async fn media_route(
        State(p): State<Arc<Product>>,
        headers: HeaderMap,
        ws: WebSocketUpgrade,
    ) -> Response {
        if p.mode == Mode::Refuse {
            return StatusCode::FORBIDDEN.into_response();
        }
        {
            let mut seen = lock(&p.seen);
            let url = format!("ws://{}/media", seen.base);
            let sig = headers
                .get("x-twilio-signature")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let ok = sig == signature(TOKEN, &url, &[]);
            seen.upgrade_sig_ok = Some(ok);
            seen.upgrade_sigs.push(ok);
        }
        ws.on_upgrade(move |socket| product_socket(socket, p))
    }

    /// The product's key press: update the call with `<Play digits>` and a
    /// new `<Connect><Stream>` carrying `received` and the continuation;
    /// notes Twilio's answer in `seen.update`.
    async fn press_key(
        seen: Arc<Mutex<Seen>>,
        call_sid: String,
        received: HashMap<String, String>,
        digits: &'static str,
        clock_ms: u64,
    ) {
        let (base, api_base) = {
            let s = lock(&seen);
            (s.base.clone(), s.api_base.clone())
        };
        let next = crate::domain::StreamContinuation::after(1, clock_ms, chrono::Utc::now());
        let parameters = next.next_stream_parameters(&received);
        let url = format!("ws://{base}/media");
        let twiml = match crate::twilio::twiml::PlayDigits::parse(digits) {
            Ok(play) => crate::twilio::twiml::play_digits_then_connect_stream(
                &play,
                &url,
                None,
                &parameters,
            )
            .unwrap(),
            // Digits the product would never send: written by hand.
            Err(_) => format!(
                "<Response><Play digits=\"{digits}\" /><Connect><Stream url=\"{url}\" /></Connect></Response>"
            ),
        };
        let resp = reqwest::Client::new()
            .post(format!(
                "{api_base}/2010-04-01/Accounts/{AC}/Calls/{call_sid}.json"
            ))
            .basic_auth(AC, Some(TOKEN))
            .form(&[("Twiml", twiml.as_str())])
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        lock(&seen).update = Some((twiml, status, body));
    }

    async fn product_socket(mut socket: WebSocket, p: Arc<Product>) {
        let mut sid = String::new();
        let mut cleared = false;
        let mut received: HashMap<String, String> = HashMap::new();
        let mut call_sid = String::new();
        while let Some(Ok(msg)) = socket.recv().await {
            let AxMessage::Text(text) = msg else { continue };
            let v: Value = serde_json::from_str(&text).unwrap();
            let mut replies: Vec<Value> = Vec::new();
            let mut close = false;
            {
                let mut seen = lock(&p.seen);
                match v["event"].as_str().unwrap() {
                    "start" => {
                        sid = v["streamSid"].as_str().unwrap().to_string();
                        call_sid = v["start"]["callSid"].as_str().unwrap().to_string();
                        received =
                            serde_json::from_value(v["start"]["customParameters"].clone()).unwrap();
                        if matches!(p.mode, Mode::PressKey { .. }) {
                            seen.events.push(v);
                            continue;
                        }
                        let secs = if p.mode == Mode::ClearThenClose {
                            2000
                        } else {
                            1000
                        };
                        let audio = crate::sim::voice::tone(440.0, secs, 0.3);
                        seen.sent_audio = audio.clone();
                        let b64 = base64::engine::general_purpose::STANDARD.encode(&audio);
                        replies.push(
                            json!({"event": "media", "streamSid": sid, "media": {"payload": b64}}),
                        );
                        replies.push(
                            json!({"event": "mark", "streamSid": sid, "mark": {"name": "m1"}}),
                        );
                        replies.push(
                            json!({"event": "mark", "streamSid": "MZwrong", "mark": {"name": "x"}}),
                        );
                    }
                    "media" => {
                        seen.last_media_ts =
                            v["media"]["timestamp"].as_str().unwrap().parse().unwrap();
                        let bytes = base64::engine::general_purpose::STANDARD
                            .decode(v["media"]["payload"].as_str().unwrap())
                            .unwrap();
                        assert_eq!(bytes.len(), 160);
                        if mulaw::rms(&bytes) > 500.0 {
                            seen.loud_frames += 1;
                            *seen.loud_by_stream.entry(sid.clone()).or_default() += 1;
                        }
                        if !seen.last_media.contains_key(&sid) {
                            seen.first_media.push(v.clone());
                        }
                        seen.last_media.insert(sid.clone(), v.clone());
                        if let Mode::PressKey { digits, at_ms } = p.mode {
                            let first_stream = !received
                                .contains_key(crate::domain::reservation::param::STREAM_NUMBER);
                            if first_stream && seen.last_media_ts == at_ms {
                                tokio::spawn(press_key(
                                    p.seen.clone(),
                                    call_sid.clone(),
                                    received.clone(),
                                    digits,
                                    at_ms,
                                ));
                            }
                        }
                        if p.mode == Mode::ClearThenClose && !cleared && seen.last_media_ts >= 500 {
                            cleared = true;
                            replies.push(json!({"event": "clear", "streamSid": sid}));
                        }
                    }
                    "mark" => {
                        seen.mark_echo_ts = Some(seen.last_media_ts);
                        close = p.mode == Mode::ClearThenClose;
                    }
                    _ => {}
                }
                if v["event"] != "media" {
                    seen.events.push(v);
                }
            }
            for r in replies {
                socket
                    .send(AxMessage::Text(r.to_string().into()))
                    .await
                    .unwrap();
            }
            if close {
                let _ = socket.send(AxMessage::Close(None)).await;
                break;
            }
        }
        let mut seen = lock(&p.seen);
        seen.closed = true;
        seen.sockets_closed += 1;
    }

    fn twiml(base: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect><Stream url=\"ws://{base}/media\"><Parameter name=\"call_token\" value=\"k7 &amp; &quot;z&quot;\" /><Parameter name=\"party_size\" value=\"4\" /></Stream></Connect><Say>Fallback</Say></Response>"
        )
    }

    async fn sim(lines: HashMap<String, Line>) -> TelephoneSim {
        TelephoneSim::start(TelephoneConfig {
            account_sid: AC.into(),
            auth_token: TOKEN.into(),
            scenario: Scenario::booked(&Booking::demo()),
            lines,
            ring_ms: 100,
            key_press_update: KeyPressUpdate::Follow,
        })
        .await
        .unwrap()
    }

    /// A phone menu in short: the host says one line at once, and says
    /// `greeting` once it hears a 2 and then 200 ms of quiet.
    fn menu_in_short() -> Scenario {
        let line = |clip: &'static str, cue: Cue| crate::sim::scenario::HostLine {
            clip,
            text: crate::sim::scenario::clip_text(clip).to_string(),
            cue,
        };
        Scenario {
            name: "menu_in_short",
            host: vec![
                line("interrupt", Cue::Answer { after_ms: 0 }),
                line(
                    "greeting",
                    Cue::AfterDtmf {
                        digit: '2',
                        silence_ms: 200,
                    },
                ),
            ],
            agent: vec![],
            on_system: None,
            language: None,
        }
    }

    /// The simulated Twilio with [`menu_in_short`], treating key presses as told.
    async fn key_press_sim(update: KeyPressUpdate) -> TelephoneSim {
        TelephoneSim::start(TelephoneConfig {
            account_sid: AC.into(),
            auth_token: TOKEN.into(),
            scenario: menu_in_short(),
            lines: HashMap::new(),
            ring_ms: 50,
            key_press_update: update,
        })
        .await
        .unwrap()
    }

    /// When the product presses the key: after the host's first line.
    const PRESS_AT_MS: u64 = 2000;
    /// The product presses 2 (after the lead pause) once the host's first line is over.
    const PRESS_TWO: Mode = Mode::PressKey {
        digits: "w2",
        at_ms: PRESS_AT_MS,
    };

    /// Start the product in `mode`, the sim, and a call to the product.
    async fn key_press_call(
        mode: Mode,
        update: KeyPressUpdate,
    ) -> (TelephoneSim, Arc<Mutex<Seen>>, String, String) {
        let (base, seen) = start_product(mode).await;
        let sim = key_press_sim(update).await;
        lock(&seen).api_base = sim.api_base();
        let body: Value = create(&sim, &base, "+15551234567", TOKEN)
            .await
            .json()
            .await
            .unwrap();
        let sid = body["sid"].as_str().unwrap().to_string();
        (sim, seen, base, sid)
    }

    async fn create(sim: &TelephoneSim, base: &str, to: &str, password: &str) -> reqwest::Response {
        let form: Vec<(&str, String)> = vec![
            ("To", to.into()),
            ("From", "+15557654321".into()),
            ("StatusCallback", format!("http://{base}/status")),
            ("StatusCallbackEvent", "initiated".into()),
            ("StatusCallbackEvent", "ringing".into()),
            ("StatusCallbackEvent", "answered".into()),
            ("StatusCallbackEvent", "completed".into()),
            ("StatusCallbackMethod", "POST".into()),
            ("Timeout", "30".into()),
            ("Twiml", twiml(base)),
        ];
        reqwest::Client::new()
            .post(format!(
                "{}/2010-04-01/Accounts/{AC}/Calls.json",
                sim.api_base()
            ))
            .basic_auth(AC, Some(password))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    async fn update_call(
        sim: &TelephoneSim,
        sid: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!(
                "{}/2010-04-01/Accounts/{AC}/Calls/{sid}.json",
                sim.api_base()
            ))
            .basic_auth(AC, Some(TOKEN))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    async fn wait_for(seen: &Arc<Mutex<Seen>>, what: impl Fn(&Seen) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !what(&lock(seen)) {
            assert!(Instant::now() < deadline, "timed out");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn names(form: &[(String, String)]) -> Vec<String> {
        form.iter().map(|(k, _)| k.clone()).collect()
    }

    #[tokio::test]
    async fn telephone_sim_runs_a_call() {
        let (base, seen) = start_product(Mode::Normal).await;
        let sim = sim(HashMap::new()).await;
        let resp = create(&sim, &base, "+15551234567", TOKEN).await;
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.unwrap();
        let sid = body["sid"].as_str().unwrap().to_string();
        assert!(sid.starts_with("CA") && sid.len() == 34);
        assert_eq!(body["status"], "queued");
        assert_eq!(body["direction"], "outbound-api");
        let fixture_keys: Vec<String> = fixture("http/rest_create_call_response_201.json")
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let keys: Vec<String> = body.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, fixture_keys);

        wait_for(&seen, |s| s.mark_echo_ts.is_some()).await;
        let echo_ts = lock(&seen).mark_echo_ts.unwrap();
        assert!(
            (960..=1100).contains(&echo_ts),
            "mark echoed at stream {echo_ts} ms"
        );

        let resp = update_call(&sim, &sid, &[("Status", "completed")]).await;
        assert_eq!(resp.status(), 200);
        let call = sim
            .wait_ended(&sid, Duration::from_secs(5))
            .await
            .expect("call ended");
        wait_for(&seen, |s| s.closed).await;

        // Move everything out so no lock is held across the awaits below.
        let seen = std::mem::take(&mut *lock(&seen));
        // Callbacks: signed, in order, exactly the fixture parameter sets.
        let statuses: Vec<(String, String)> = seen
            .callbacks
            .iter()
            .map(|(f, _)| {
                let get = |k: &str| f.iter().find(|(n, _)| n == k).unwrap().1.clone();
                (get("CallStatus"), get("SequenceNumber"))
            })
            .collect();
        let want: Vec<(String, String)> = [
            ("initiated", "0"),
            ("ringing", "1"),
            ("in-progress", "2"),
            ("completed", "3"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(statuses, want);
        assert!(
            seen.callbacks.iter().all(|(_, ok)| *ok),
            "every callback signed"
        );
        assert_eq!(
            names(&seen.callbacks[1].0),
            names(&pairs(
                &fixture("http/callback_status_ringing.json")["form"]
            ))
        );
        assert_eq!(
            names(&seen.callbacks[3].0),
            names(&pairs(
                &fixture("http/callback_status_completed.json")["form"]
            ))
        );
        assert_eq!(seen.upgrade_sig_ok, Some(true));

        // Stream: connected, start (with parameters), ..., mark echo, stop.
        assert_eq!(seen.events[0]["event"], "connected");
        let start = &seen.events[1];
        assert_eq!(start["event"], "start");
        assert_eq!(start["sequenceNumber"], "1");
        assert_eq!(start["start"]["callSid"], sid.as_str());
        assert_eq!(start["start"]["accountSid"], AC);
        assert_eq!(start["start"]["streamSid"], start["streamSid"]);
        assert_eq!(start["start"]["tracks"], json!(["inbound"]));
        assert_eq!(
            start["start"]["mediaFormat"],
            json!({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1})
        );
        assert_eq!(
            start["start"]["customParameters"],
            json!({"call_token": "k7 & \"z\"", "party_size": "4"})
        );
        let mark = seen.events.iter().find(|e| e["event"] == "mark").unwrap();
        assert_eq!(mark["mark"]["name"], "m1");
        assert_eq!(mark["streamSid"], start["streamSid"]);
        let stop = seen.events.last().unwrap();
        assert_eq!(stop["event"], "stop");
        assert_eq!(stop["stop"]["callSid"], sid.as_str());
        assert!(
            seen.loud_frames > 10,
            "the host greeted ({} loud frames)",
            seen.loud_frames
        );

        // What the simulator recorded.
        assert_eq!(call.upgrade_status, Some(101));
        assert_eq!(
            call.stream_url.as_deref(),
            Some(format!("ws://{base}/media").as_str())
        );
        assert_eq!(
            call.parameters[0],
            ("call_token".to_string(), "k7 & \"z\"".to_string())
        );
        assert_eq!(call.agent_audio, seen.sent_audio);
        assert_eq!(call.marks_echoed, 1);
        assert_eq!(call.ignored_messages, 1);
        assert_eq!(call.ended_by.as_deref(), Some("rest:completed"));
        assert_eq!(call.status, "completed");
        assert!(call.say_texts.is_empty());
        assert_eq!(call.host_lines_spoken, vec!["greeting"]);
        let cbs: Vec<(&str, u16)> = call
            .status_callbacks
            .iter()
            .map(|(s, c)| (s.as_str(), *c))
            .collect();
        assert_eq!(
            cbs,
            vec![
                ("initiated", 204),
                ("ringing", 204),
                ("in-progress", 204),
                ("completed", 204)
            ]
        );
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn telephone_sim_rest_errors_and_lines() {
        let (base, seen) = start_product(Mode::Normal).await;
        let lines = HashMap::from([
            ("+15550000001".to_string(), Line::Busy),
            ("+15550000002".to_string(), Line::NoAnswer),
            ("+15550000003".to_string(), Line::Fail),
        ]);
        let sim = sim(lines).await;
        let resp = create(&sim, &base, "+15551234567", "wrong-token").await;
        assert_eq!(resp.status(), 401);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], 20003);
        assert_eq!(body["status"], 401);
        let resp = create(&sim, &base, "+1555", TOKEN).await;
        assert_eq!(resp.status(), 400);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body, fixture("http/rest_error_400.json"));
        let resp = update_call(
            &sim,
            "CA00000000000000000000000000000000",
            &[("Status", "completed")],
        )
        .await;
        assert_eq!(resp.status(), 404);
        assert_eq!(resp.json::<Value>().await.unwrap()["code"], 20404);

        for (to, status) in [
            ("+15550000001", "busy"),
            ("+15550000002", "no-answer"),
            ("+15550000003", "failed"),
        ] {
            let body: Value = create(&sim, &base, to, TOKEN).await.json().await.unwrap();
            let sid = body["sid"].as_str().unwrap();
            let call = sim.wait_ended(sid, Duration::from_secs(5)).await.unwrap();
            let cbs: Vec<&str> = call
                .status_callbacks
                .iter()
                .map(|(s, _)| s.as_str())
                .collect();
            assert_eq!(cbs, vec!["initiated", "ringing", status], "{to}");
            assert_eq!(call.upgrade_status, None);
            assert_eq!(call.ended_by.as_deref(), Some(status));
        }
        // Canceled while ringing.
        let body: Value = create(&sim, &base, "+15551234567", TOKEN)
            .await
            .json()
            .await
            .unwrap();
        let sid = body["sid"].as_str().unwrap();
        update_call(&sim, sid, &[("Status", "canceled")]).await;
        let call = sim.wait_ended(sid, Duration::from_secs(5)).await.unwrap();
        assert_eq!(call.status_callbacks.last().unwrap().0, "canceled");
        assert_eq!(call.ended_by.as_deref(), Some("rest:canceled"));
        assert!(lock(&seen).callbacks.iter().all(|(_, ok)| *ok));
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn telephone_sim_refused_upgrade_ends_the_call() {
        let (base, _seen) = start_product(Mode::Refuse).await;
        let sim = sim(HashMap::new()).await;
        let body: Value = create(&sim, &base, "+15551234567", TOKEN)
            .await
            .json()
            .await
            .unwrap();
        let call = sim
            .wait_ended(body["sid"].as_str().unwrap(), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(call.upgrade_status, Some(403));
        assert_eq!(call.ended_by.as_deref(), Some("stream_failed"));
        assert_eq!(call.status_callbacks.last().unwrap().0, "completed");
        assert_eq!(call.say_texts, vec!["Fallback"]);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn telephone_sim_clear_flushes_and_socket_close_ends() {
        let (base, seen) = start_product(Mode::ClearThenClose).await;
        let sim = sim(HashMap::new()).await;
        let body: Value = create(&sim, &base, "+15551234567", TOKEN)
            .await
            .json()
            .await
            .unwrap();
        let call = sim
            .wait_ended(body["sid"].as_str().unwrap(), Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(call.ended_by.as_deref(), Some("socket_closed"));
        assert_eq!(call.clears.len(), 1);
        let clear = &call.clears[0];
        assert!((400..=700).contains(&clear.played_in_turn_ms), "{clear:?}");
        assert_eq!(call.marks_echoed, 1);
        // the mark came back right after the clear, long before 2 s of playback
        let echo_ts = lock(&seen).mark_echo_ts.unwrap();
        assert!(echo_ts < 800, "{echo_ts}");
        assert_eq!(call.agent_audio.len() as u64, clear.played_in_turn_ms * 8);
        assert_eq!(
            call.agent_audio[..],
            lock(&seen).sent_audio[..call.agent_audio.len()]
        );
        assert_eq!(call.say_texts, vec!["Fallback"]);
        assert_eq!(call.status_callbacks.last().unwrap().0, "completed");
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn telephone_sim_redirect_says_and_ends() {
        let (base, seen) = start_product(Mode::Normal).await;
        let sim = sim(HashMap::new()).await;
        let body: Value = create(&sim, &base, "+15551234567", TOKEN)
            .await
            .json()
            .await
            .unwrap();
        let sid = body["sid"].as_str().unwrap();
        wait_for(&seen, |s| s.events.len() >= 2).await;
        let redirect = fixture("http/rest_redirect_twiml_request.json");
        let twiml = redirect["form"][0][1].as_str().unwrap();
        assert_eq!(
            update_call(&sim, sid, &[("Twiml", twiml)]).await.status(),
            200
        );
        let call = sim.wait_ended(sid, Duration::from_secs(5)).await.unwrap();
        assert_eq!(call.ended_by.as_deref(), Some("rest:twiml"));
        assert_eq!(
            call.say_texts,
            vec!["Sorry, we have a technical problem. Goodbye."]
        );
        assert_eq!(lock(&seen).events.last().unwrap()["event"], "stop");
        sim.shutdown().await;
    }

    #[test]
    fn play_digits_sound_like_twilio_playing_keys() {
        // Pauses are silence; keys are 100 ms tones and 100 ms of quiet.
        let audio = play_digits_audio("w1W#").unwrap();
        assert_eq!(audio.len(), (500 + 200 + 1000 + 200) * 8);
        let keys = crate::sim::dtmf_detect::detect(&audio);
        assert_eq!(keys.iter().map(|k| k.key).collect::<String>(), "1#");
        assert!(keys[0].start_ms.abs_diff(500) <= 10, "{keys:?}");
        assert!(keys[1].start_ms.abs_diff(1700) <= 10, "{keys:?}");
        assert!((90..=110).contains(&keys[0].duration_ms), "{keys:?}");
        let every = play_digits_audio("0123456789*#ABCD").unwrap();
        let heard: String = crate::sim::dtmf_detect::detect(&every)
            .iter()
            .map(|k| k.key)
            .collect();
        assert_eq!(heard, "0123456789*#ABCD");
        // What Twilio would not play (warning 13430).
        assert_eq!(play_digits_audio("2x"), None);
        assert_eq!(play_digits_audio("a"), None);
        assert_eq!(play_digits_audio("ww"), None);
        assert_eq!(play_digits_audio(""), None);
    }

    #[test]
    fn twiml_play_digits_before_connect_are_read() {
        let t = parse_twiml("<Response><Play digits=\"w2\"/><Play>https://x/a.mp3</Play><Connect><Stream url=\"wss://x/y\"><Parameter name=\"stream_number\" value=\"2\"/></Stream></Connect><Play digits=\"9\"/></Response>").unwrap();
        assert_eq!(t.play_digits, vec!["w2"]);
        let s = t.stream.unwrap();
        assert_eq!(s.parameters, vec![("stream_number".into(), "2".into())]);
        let fixture_doc =
            std::fs::read_to_string(format!("{FIX}/twiml_play_digits_reconnect.xml")).unwrap();
        let t = parse_twiml(&fixture_doc).unwrap();
        assert_eq!(t.play_digits, vec!["w2"]);
        assert_eq!(t.stream.unwrap().parameters.len(), 11);
    }

    #[tokio::test]
    async fn key_press_update_stops_the_stream_plays_the_keys_and_reconnects() {
        let (sim, seen, base, sid) = key_press_call(PRESS_TWO, KeyPressUpdate::Follow).await;
        // The host's greeting, heard on the new stream, then our hang-up.
        wait_for(&seen, |s| {
            s.loud_by_stream.len() == 2 && s.loud_by_stream.values().all(|n| *n > 60)
        })
        .await;
        assert_eq!(
            update_call(&sim, &sid, &[("Status", "completed")])
                .await
                .status(),
            200
        );
        let call = sim.wait_ended(&sid, Duration::from_secs(5)).await.unwrap();
        wait_for(&seen, |s| s.sockets_closed == 2).await;
        let seen = std::mem::take(&mut *lock(&seen));

        // Twilio accepted the update and ran it.
        let (twiml, status, body) = seen.update.clone().unwrap();
        assert_eq!(status, 200);
        assert_eq!(body["sid"], sid.as_str());
        assert_eq!(call.updates, vec![(twiml, 200)]);

        // The first stream: start, stop (its own streamSid), then closed.
        let starts: Vec<&Value> = seen
            .events
            .iter()
            .filter(|e| e["event"] == "start")
            .collect();
        let stops: Vec<&Value> = seen
            .events
            .iter()
            .filter(|e| e["event"] == "stop")
            .collect();
        assert_eq!((starts.len(), stops.len()), (2, 2));
        let (sid1, sid2) = (
            starts[0]["streamSid"].as_str().unwrap(),
            starts[1]["streamSid"].as_str().unwrap(),
        );
        assert_ne!(sid1, sid2);
        assert!(sid2.starts_with("MZ") && sid2.len() == 34);
        assert_eq!(stops[0]["streamSid"], sid1);
        assert_eq!(stops[0]["stop"]["callSid"], sid.as_str());
        let order: Vec<(&str, &str)> = seen
            .events
            .iter()
            .filter(|e| e["event"] != "connected")
            .map(|e| {
                (
                    e["event"].as_str().unwrap(),
                    e["streamSid"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            order,
            vec![
                ("start", sid1),
                ("stop", sid1),
                ("start", sid2),
                ("stop", sid2)
            ]
        );
        // The first stream ran until the update: its last frame is at the press.
        let last1: u64 = seen.last_media[sid1]["media"]["timestamp"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(last1 >= PRESS_AT_MS, "{last1}");

        // The second stream: signed like the first, numbered from the start,
        // with the first stream's parameters and the continuation.
        assert_eq!(seen.upgrade_sigs, vec![true, true]);
        assert_eq!(starts[1]["sequenceNumber"], "1");
        assert_eq!(starts[1]["start"]["callSid"], sid.as_str());
        let params2 = starts[1]["start"]["customParameters"].as_object().unwrap();
        assert_eq!(params2["call_token"], "k7 & \"z\"");
        assert_eq!(params2["party_size"], "4");
        assert_eq!(params2["stream_number"], "2");
        assert_eq!(params2["call_clock_ms"], PRESS_AT_MS.to_string());
        let first2 = &seen.first_media[1];
        assert_eq!(first2["streamSid"], sid2);
        assert_eq!(first2["sequenceNumber"], "2");
        assert_eq!(first2["media"]["chunk"], "1");
        assert_eq!(first2["media"]["timestamp"], "0");
        assert_eq!(seen.first_media[0]["media"]["timestamp"], "0");

        // The keys were played on the line and the menu heard them.
        assert_eq!(call.play_digits.len(), 1);
        let played = &call.play_digits[0];
        assert_eq!(played.digits, "w2");
        assert_eq!(played.duration_ms, 700);
        assert_eq!(played.heard.len(), 1);
        assert_eq!(played.heard[0].key, '2');
        assert!(played.heard[0].start_ms.abs_diff(500) <= 10, "{played:?}");
        assert_eq!(call.dtmf_detected, "2");
        assert!(call.dtmf_tones.is_empty(), "no tones in the agent audio");
        assert!(call.agent_audio.is_empty());
        assert!(call.twiml_warnings.is_empty());

        // The call's clock ran on through the gap; the host went on with its
        // script on the new stream.
        assert_eq!(call.streams.len(), 2);
        let (s1, s2) = (&call.streams[0], &call.streams[1]);
        assert_eq!(
            (s1.stream_sid.as_str(), s2.stream_sid.as_str()),
            (sid1, sid2)
        );
        assert!(s1.stopped && s2.stopped);
        assert_eq!(s1.started_at_call_ms, Some(0));
        let ended1 = s1.ended_at_call_ms.unwrap();
        assert!(ended1 <= played.at_call_ms, "{s1:?} {played:?}");
        let started2 = s2.started_at_call_ms.unwrap();
        assert!(
            started2 >= played.at_call_ms + played.duration_ms,
            "{s2:?} {played:?}"
        );
        assert_eq!(s2.url, format!("ws://{base}/media"));
        assert_eq!(s2.upgrade_status, Some(101));
        assert_eq!(
            s2.parameters
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>(),
            [
                "call_token",
                "party_size",
                "stream_number",
                "call_clock_ms",
                "updated_at"
            ]
        );
        assert_eq!(call.host_lines_spoken, vec!["interrupt", "greeting"]);
        // The host spoke on both streams: its first line before the keys,
        // the greeting (more than a second of it) after.
        assert!(seen.loud_by_stream[sid1] > 60 && seen.loud_by_stream[sid2] > 60);
        assert_eq!(call.ended_by.as_deref(), Some("rest:completed"));
        assert_eq!(call.media_frames_sent, s1.media_frames + s2.media_frames);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn key_press_update_can_be_refused_and_the_stream_goes_on() {
        let (sim, seen, _base, sid) =
            key_press_call(PRESS_TWO, KeyPressUpdate::refuse_too_many_requests()).await;
        wait_for(&seen, |s| s.update.is_some()).await;
        let (_, status, body) = lock(&seen).update.clone().unwrap();
        assert_eq!(status, 429);
        assert_eq!(body["code"], 20429);
        assert_eq!(body["status"], 429);
        // The first stream goes on: a second later it still streams.
        wait_for(&seen, |s| s.last_media_ts >= PRESS_AT_MS + 1000).await;
        // Other updates are not refused: the apology ends the call.
        let apology = crate::twilio::twiml::say_and_hangup("Goodbye.");
        assert_eq!(
            update_call(&sim, &sid, &[("Twiml", apology.as_str())])
                .await
                .status(),
            200
        );
        let call = sim.wait_ended(&sid, Duration::from_secs(5)).await.unwrap();
        assert_eq!(call.updates.len(), 2);
        assert_eq!(call.updates[0].1, 429);
        assert_eq!(call.updates[1], (apology, 200));
        assert_eq!(call.streams.len(), 1);
        assert!(call.play_digits.is_empty());
        assert_eq!(call.dtmf_detected, "");
        assert_eq!(call.ended_by.as_deref(), Some("rest:twiml"));
        assert_eq!(call.say_texts, vec!["Goodbye."]);
        assert_eq!(call.host_lines_spoken, vec!["interrupt"]);
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn key_press_update_can_leave_the_line_without_a_new_stream() {
        let (sim, seen, _base, sid) = key_press_call(PRESS_TWO, KeyPressUpdate::NoNewStream).await;
        wait_for(&seen, |s| s.update.is_some() && s.sockets_closed == 1).await;
        assert_eq!(lock(&seen).update.as_ref().unwrap().1, 200);
        // The keys are played (700 ms), then nothing: no second stream.
        let deadline = Instant::now() + Duration::from_secs(5);
        while sim.calls()[0].play_digits.is_empty() {
            assert!(Instant::now() < deadline, "the keys were never played");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(800)).await;
        let call = sim.calls().remove(0);
        assert_eq!(call.dtmf_detected, "2");
        assert_eq!(call.streams.len(), 1);
        assert!(call.streams[0].stopped);
        assert!(!call.ended);
        assert_eq!(lock(&seen).upgrade_sigs.len(), 1);
        // Our side gives up: the apology still ends the call.
        let apology = crate::twilio::twiml::say_and_hangup("Sorry. Goodbye.");
        update_call(&sim, &sid, &[("Twiml", apology.as_str())]).await;
        let call = sim.wait_ended(&sid, Duration::from_secs(5)).await.unwrap();
        assert_eq!(call.ended_by.as_deref(), Some("rest:twiml"));
        assert_eq!(call.say_texts, vec!["Sorry. Goodbye."]);
        assert_eq!(call.host_lines_spoken, vec!["interrupt"]);
        assert_eq!(call.status_callbacks.last().unwrap().0, "completed");
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn digits_twilio_cannot_play_are_skipped_with_a_warning() {
        let (sim, seen, _base, sid) = key_press_call(
            Mode::PressKey {
                digits: "2x",
                at_ms: 200,
            },
            KeyPressUpdate::Follow,
        )
        .await;
        // Twilio accepts the document (a warning is not a refusal), skips the
        // <Play> and goes straight on to the new stream.
        wait_for(&seen, |s| s.upgrade_sigs.len() == 2).await;
        assert_eq!(lock(&seen).update.as_ref().unwrap().1, 200);
        update_call(&sim, &sid, &[("Status", "completed")]).await;
        let call = sim.wait_ended(&sid, Duration::from_secs(5)).await.unwrap();
        assert_eq!(
            call.twiml_warnings,
            vec!["13430 Play: Invalid DTMF String \"2x\"".to_string()]
        );
        assert!(call.play_digits.is_empty());
        assert_eq!(call.dtmf_detected, "");
        assert_eq!(call.streams.len(), 2);
        sim.shutdown().await;
    }
}
