//! The bridge: one task per call, one `select!` loop over Twilio frames, model
//! events and timers.
//!
//! Audio is forwarded as the base64 text it arrived in, both ways; it is never
//! decoded here. Transcript lines and the outcome go to a per-call writer task,
//! so the database never stalls the audio.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use chrono::Utc;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tracing::{debug, info, warn, Instrument};

use super::playback::{Echo, Playback};
use super::{voicemail, CallContext};
use crate::agent::tools::{self, ToolCall};
use crate::agent::Brief;
use crate::audio::dtmf::Keys;
use crate::audio::recording::{self, Recorder};
use crate::config::VoicemailPolicy;
use crate::domain::reservation::ParameterError;
use crate::domain::{
    AnsweredBy, Outcome, OutcomeStatus, OutcomeWrite, Reservation, Speaker, TranscriptLine,
};
use crate::realtime::events::{self as rt, ServerEvent};
use crate::realtime::{self, RealtimeConnection};
use crate::twilio::stream::{self as ts, StreamEvent};

type TwilioSink = SplitSink<WebSocket, Message>;
type TwilioStream = SplitStream<WebSocket>;
type ModelSink = SplitSink<RealtimeConnection, WsMessage>;
type ModelStream = SplitStream<RealtimeConnection>;

/// How long Twilio has to end the stream after our REST hang-up before we
/// close it ourselves (which ends `<Connect>`, and so the call).
const HANGUP_CONFIRM: Duration = Duration::from_secs(10);
/// Playback item ids of keypad tones (never a model item).
const DTMF_ITEM: &str = "dtmf_";

/// How long Twilio has to send `start` after the upgrade.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Writes that must not stall the audio, applied in order by a writer task.
enum Write {
    Line(TranscriptLine),
    Outcome(Outcome, OutcomeWrite),
    Error(String),
}

/// Handle a Media Stream WebSocket from upgrade to close.
pub async fn run(ctx: CallContext, socket: WebSocket) {
    let (twilio_tx, mut twilio_rx) = socket.split();
    let mut bad_frames = 0u64;
    let start = match tokio::time::timeout(
        START_TIMEOUT,
        wait_for_start(&mut twilio_rx, &mut bad_frames),
    )
    .await
    {
        Ok(Some(start)) => start,
        Ok(None) => {
            warn!(bad_frames, "media stream closed before `start`");
            return;
        }
        Err(_) => {
            warn!(
                bad_frames,
                "no `start` within {START_TIMEOUT:?}; closing the media stream"
            );
            return;
        }
    };
    let span = tracing::info_span!("call", call_sid = %start.call_sid);
    run_call(ctx, start, twilio_tx, twilio_rx, bad_frames)
        .instrument(span)
        .await;
}

async fn wait_for_start(rx: &mut TwilioStream, bad_frames: &mut u64) -> Option<ts::Start> {
    while let Some(msg) = rx.next().await {
        let Ok(Message::Text(text)) = msg else {
            match msg {
                Ok(Message::Close(_)) | Err(_) => return None,
                _ => continue,
            }
        };
        match StreamEvent::parse(text.as_str()) {
            Ok(StreamEvent::Connected { .. }) => info!("media stream connected"),
            Ok(StreamEvent::Start { start, .. }) => return Some(start),
            Ok(_) => *bad_frames += 1, // media before start, etc.
            Err(_) => *bad_frames += 1,
        }
    }
    None
}

async fn run_call(
    ctx: CallContext,
    start: ts::Start,
    twilio_tx: TwilioSink,
    twilio_rx: TwilioStream,
    bad_frames: u64,
) {
    let call_sid = start.call_sid.clone();
    info!(
        stream_sid = %start.stream_sid,
        call_sid = %call_sid,
        parameters = %loggable_parameters(&start.custom_parameters),
        "media stream started"
    );

    // Defence in depth: the stream must carry the token we put in the TwiML.
    match ctx.store.call_token(&call_sid).await {
        Ok(Some(expected)) => {
            let given = start.custom_parameters.get("call_token");
            if !given.is_some_and(|got| crate::crypto::constant_time_eq(got, &expected)) {
                warn!("media stream refused: missing or wrong call token; ending the call");
                let reason = "the media stream did not carry this call's token";
                let _ = ctx.store.set_error(&call_sid, reason).await;
                let _ = ctx
                    .store
                    .set_outcome(
                        &call_sid,
                        &Outcome::bare(OutcomeStatus::Failed, Some(reason.to_string())),
                        OutcomeWrite::Fallback,
                    )
                    .await;
                // Closing our side ends <Connect>; the call then ends.
                let mut tx = twilio_tx;
                let _ = tx.send(Message::Close(None)).await;
                return;
            }
        }
        Ok(None) => {
            warn!("media stream refused: no call with this CallSid was placed here");
            let mut tx = twilio_tx;
            let _ = tx.send(Message::Close(None)).await;
            return;
        }
        Err(e) => {
            warn!(error = %e, "cannot check the call token; refusing the stream");
            let mut tx = twilio_tx;
            let _ = tx.send(Message::Close(None)).await;
            return;
        }
    }

    let reservation =
        match Reservation::from_parameters(&start.custom_parameters, ctx.settings.max_party_size) {
            Ok(r) => r,
            Err(e) => {
                end_unusable(&ctx, &call_sid, e).await;
                return;
            }
        };
    info!(
        restaurant = %reservation.restaurant_name,
        to = %reservation.restaurant_phone.masked(),
        party_size = reservation.party_size.get(),
        date = %reservation.slot.date,
        time = %reservation.slot.time.format("%H:%M"),
        timezone = %reservation.slot.timezone.name(),
        flexibility_min = reservation.flexibility.get(),
        "agent briefed: {}",
        reservation.summary()
    );
    if let Err(e) = ctx.store.stream_started(&call_sid).await {
        warn!(error = %e, "cannot record the stream start");
    }

    let (writes, writer) = spawn_writer(ctx.clone(), call_sid.clone());
    let brief = Brief::with_options(
        &reservation,
        Utc::now(),
        crate::agent::BriefOptions {
            recording: ctx.settings.record,
            voicemail: ctx.settings.voicemail,
        },
    );
    let model = match open_model(&ctx, &brief).await {
        Ok(m) => m,
        Err(e) => {
            warn!(error = %e, "Realtime API unavailable; ending the call politely");
            let _ = writes.send(Write::Error(format!(
                "the AI model could not be reached: {e}"
            )));
            let _ = writes.send(Write::Outcome(
                Outcome::bare(
                    OutcomeStatus::Failed,
                    Some(format!("the AI model could not be reached: {e}")),
                ),
                OutcomeWrite::Fallback,
            ));
            apologise_and_hang_up(&ctx, &call_sid, APOLOGY_TECHNICAL).await;
            drop(writes);
            let _ = writer.await;
            return;
        }
    };
    let (model_tx, model_rx) = model.split();
    let now = Instant::now();
    let timings = &ctx.settings.timings;
    let (recorder, recording) = match recording::recording_path(&ctx.settings.data_dir, &call_sid) {
        Some(path) if ctx.settings.record => {
            let (r, task) = Recorder::start(path);
            (Some(r), Some(task))
        }
        _ => (None, None),
    };
    let mut bridge = Bridge {
        recorder,
        amd: Some(voicemail::watch_answered_by(
            ctx.store.clone(),
            call_sid.clone(),
        )),
        voicemail_message: voicemail::message_instructions(&reservation),
        ctx: ctx.clone(),
        call_sid: call_sid.clone(),
        stream_sid: start.stream_sid.clone(),
        twilio_tx,
        model_tx,
        writes,
        clock_ms: 0,
        playback: Playback::default(),
        active_response: None,
        discarded: HashSet::new(),
        response_had_audio: HashSet::new(),
        item_started_at: HashMap::new(),
        speech_started_at: HashMap::new(),
        model_clock_offset_ms: 0,
        pending_agent_lines: HashMap::new(),
        cut_items: HashMap::new(),
        written_agent_items: HashSet::new(),
        handled_tool_calls: HashSet::new(),
        create_after_done: false,
        finishing: None,
        hangup_at: None,
        hung_up: false,
        heard_speech: false,
        greeting_deadline: Some(now + timings.greeting_wait),
        bad_frames,
        truncate_seq: 0,
        brief,
        history: Vec::new(),
        reconnected: false,
        call_deadline: now + timings.max_call,
        last_activity: now,
    };
    let mut twilio_rx = twilio_rx;
    let end = bridge.run(&mut twilio_rx, model_rx).await;
    bridge.finish(end, &mut twilio_rx).await;
    drop(bridge);
    if let Some(task) = recording {
        if let Ok(Some(path)) = task.await {
            info!(path = %path.display(), "call recorded");
        }
    }
    let _ = writer.await;
    info!("call session ended");
}

fn spawn_writer(
    ctx: CallContext,
    call_sid: String,
) -> (mpsc::UnboundedSender<Write>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Write>();
    let handle = tokio::spawn(
        async move {
            while let Some(w) = rx.recv().await {
                let result = match &w {
                    Write::Line(line) => ctx.store.add_line(&call_sid, line).await,
                    Write::Outcome(o, how) => {
                        ctx.store.set_outcome(&call_sid, o, *how).await.map(|_| ())
                    }
                    Write::Error(e) => ctx.store.set_error(&call_sid, e).await,
                };
                if let Err(e) = result {
                    warn!(error = %e, "call store write failed");
                }
            }
        }
        .in_current_span(),
    );
    (tx, handle)
}

/// Open the model session, trying a second time after a short pause.
async fn open_model(
    ctx: &CallContext,
    brief: &Brief,
) -> Result<RealtimeConnection, realtime::RealtimeError> {
    match open_model_once(ctx, brief).await {
        Ok(ws) => Ok(ws),
        Err(first) => {
            warn!(error = %first, "Realtime API unavailable; trying once more");
            tokio::time::sleep(Duration::from_millis(500)).await;
            open_model_once(ctx, brief).await
        }
    }
}

async fn open_model_once(
    ctx: &CallContext,
    brief: &Brief,
) -> Result<RealtimeConnection, realtime::RealtimeError> {
    let settings = &ctx.settings.realtime;
    let mut ws = realtime::connect(settings).await?;
    let update = realtime::client::session_update(settings, brief.as_str(), tools::definitions());
    ws.send(WsMessage::text(update))
        .await
        .map_err(|e| realtime::RealtimeError::Unreachable {
            host: "realtime".into(),
            problem: e.to_string(),
        })?;
    info!(model = %settings.model, voice = %settings.voice, "model session started");
    Ok(ws)
}

/// A `start` without a usable reservation: record why, hang up.
async fn end_unusable(ctx: &CallContext, call_sid: &str, e: ParameterError) {
    warn!(error = %e, "the stream's parameters do not describe a reservation; hanging up");
    let reason = format!("the call carried no usable reservation ({e})");
    let _ = ctx.store.set_error(call_sid, &reason).await;
    let _ = ctx
        .store
        .set_outcome(
            call_sid,
            &Outcome::bare(OutcomeStatus::Failed, Some(reason)),
            OutcomeWrite::Fallback,
        )
        .await;
    if let Err(e) = ctx.twilio.hang_up(call_sid).await {
        warn!(error = %e, "hang-up failed");
    }
}

/// What the callee hears when the call must end for a technical reason.
const APOLOGY_TECHNICAL: &str =
    "Sorry, we are having a technical problem and will call back later. Goodbye.";
/// What the callee hears when a limit ends the call.
const APOLOGY_LIMIT: &str = "Sorry, I have to end the call now. Thank you for your time. Goodbye.";

/// Replace the call's TwiML with a short apology and a hang-up.
async fn apologise_and_hang_up(ctx: &CallContext, call_sid: &str, text: &str) {
    let twiml = crate::twilio::twiml::say_and_hangup(text);
    if let Err(e) = ctx.twilio.redirect_twiml(call_sid, &twiml).await {
        warn!(error = %e, "could not redirect the call to the apology; hanging up");
        let _ = ctx.twilio.hang_up(call_sid).await;
    }
}

/// Why the loop ended.
#[derive(Debug)]
enum End {
    /// Twilio sent `stop`.
    Stopped,
    /// Twilio's socket closed without `stop`.
    TwilioClosed,
    /// The model's socket closed or failed (after one reconnection attempt).
    ModelLost(String),
    /// A limit (call length, silence) was reached.
    Limit(String),
    /// The server is shutting down and the drain time is over.
    Shutdown,
}

/// After `finish_call`: waiting for the goodbye to be said and heard.
struct Finishing {
    /// The goodbye reply's audio is complete (its `response.done` came).
    goodbye_sent: bool,
}

struct Bridge {
    /// `--record`: the recorder task's handle (audio is decoded there, not here).
    recorder: Option<Recorder>,
    /// Who answered (async AMD), read from the call store; taken by `run`.
    amd: Option<tokio::sync::oneshot::Receiver<AnsweredBy>>,
    /// What to leave on an answering machine (system message for the model).
    voicemail_message: String,
    ctx: CallContext,
    call_sid: String,
    stream_sid: String,
    twilio_tx: TwilioSink,
    model_tx: ModelSink,
    writes: mpsc::UnboundedSender<Write>,
    /// Latest inbound `media.timestamp`: the call's audio clock (ms).
    clock_ms: u64,
    playback: Playback,
    active_response: Option<String>,
    /// Responses cut off by barge-in: their remaining audio is dropped.
    discarded: HashSet<String>,
    response_had_audio: HashSet<String>,
    /// Audio clock when each agent item's first audio was forwarded.
    item_started_at: HashMap<String, u64>,
    /// Call audio clock when the current model session started (its
    /// `audio_start_ms` count from there; non-zero after a reconnect).
    model_clock_offset_ms: u64,
    /// `audio_start_ms` of each callee item.
    speech_started_at: HashMap<String, u64>,
    /// Agent lines waiting for their audio to be heard (or cut).
    pending_agent_lines: HashMap<String, String>,
    /// Agent items cut off by barge-in: (ms heard, ms sent).
    cut_items: HashMap<String, (u64, u64)>,
    /// Agent items whose line was written (each is written once).
    written_agent_items: HashSet<String>,
    handled_tool_calls: HashSet<String>,
    /// Send `response.create` when the current response is done (after a tool output).
    create_after_done: bool,
    finishing: Option<Finishing>,
    hangup_at: Option<Instant>,
    hung_up: bool,
    heard_speech: bool,
    greeting_deadline: Option<Instant>,
    bad_frames: u64,
    truncate_seq: u64,
    /// The instructions (kept to brief a new session after a reconnect).
    brief: Brief,
    /// Lines spoken so far (to restore a new session after a reconnect).
    history: Vec<(Speaker, String)>,
    /// Whether the one reconnection attempt was used.
    reconnected: bool,
    /// When the call-length limit ends the call.
    call_deadline: Instant,
    /// Last time anybody spoke (for the silence limit).
    last_activity: Instant,
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}

impl Bridge {
    async fn run(&mut self, twilio_rx: &mut TwilioStream, mut model_rx: ModelStream) -> End {
        let shutdown = self.ctx.shutdown.clone();
        let max_silence = self.ctx.settings.timings.max_silence;
        let mut amd = self.amd.take();
        loop {
            let greeting = self.greeting_deadline.unwrap_or_else(far_future);
            let hangup = self.hangup_at.unwrap_or_else(far_future);
            let silence_deadline = self.last_activity + max_silence;
            let lost = tokio::select! {
                frame = twilio_rx.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(end) = self.on_twilio(&text).await {
                            return end;
                        }
                        None
                    }
                    Some(Ok(Message::Close(_))) | None => return End::TwilioClosed,
                    Some(Ok(_)) => None,
                    Some(Err(e)) => {
                        debug!(error = %e, "twilio socket error");
                        return End::TwilioClosed;
                    }
                },
                event = model_rx.next() => match event {
                    Some(Ok(WsMessage::Text(text))) => {
                        self.on_model(text.as_str()).await;
                        None
                    }
                    Some(Ok(WsMessage::Close(frame))) => Some(format!("the model closed the session ({frame:?})")),
                    Some(Ok(_)) => None,
                    Some(Err(e)) => Some(e.to_string()),
                    None => Some("the model connection ended".to_string()),
                },
                _ = sleep_until(greeting), if self.greeting_deadline.is_some() => {
                    self.greeting_deadline = None;
                    if !self.heard_speech && self.active_response.is_none() {
                        info!("no greeting from the callee; the agent speaks first");
                        self.send_model(rt::response_create(None)).await;
                    }
                    None
                }
                who = async {
                    match amd.as_mut() {
                        Some(rx) => rx.await.ok(),
                        None => std::future::pending().await,
                    }
                }, if amd.is_some() => {
                    amd = None;
                    if let Some(who) = who {
                        self.on_answered_by(who).await;
                    }
                    None
                }
                _ = sleep_until(hangup), if self.hangup_at.is_some() => {
                    self.hangup_at = None;
                    if self.hung_up {
                        warn!("Twilio did not end the stream after the hang-up; closing it");
                        return End::TwilioClosed;
                    }
                    self.hang_up("goodbye played (or its grace period ran out)").await;
                    None
                }
                _ = sleep_until(self.call_deadline), if !self.hung_up => {
                    return End::Limit(format!("the call reached its {} s limit", self.ctx.settings.timings.max_call.as_secs()));
                }
                _ = sleep_until(silence_deadline), if !self.hung_up => {
                    return End::Limit(format!("nobody spoke for {} s", max_silence.as_secs()));
                }
                _ = shutdown.cancelled(), if !self.hung_up => return End::Shutdown,
            };
            if let Some(why) = lost {
                if self.hung_up {
                    // The call is ending anyway; nothing to restore.
                    return End::ModelLost(why);
                }
                match self.reconnect(&why).await {
                    Some(rx) => model_rx = rx,
                    None => return End::ModelLost(why),
                }
            }
        }
    }

    /// The model connection dropped mid-call: open a new session once and
    /// restore the conversation so far as text, so the agent can go on.
    async fn reconnect(&mut self, why: &str) -> Option<ModelStream> {
        if self.reconnected {
            return None;
        }
        self.reconnected = true;
        warn!("model connection lost mid-call ({why}); reconnecting once");
        let ws = match open_model(&self.ctx, &self.brief).await {
            Ok(ws) => ws,
            Err(e) => {
                warn!(error = %e, "reconnecting to the model failed");
                return None;
            }
        };
        let (tx, rx) = ws.split();
        self.model_tx = tx;
        self.model_clock_offset_ms = self.clock_ms;
        // What the old session said is still playing and will be heard: write
        // it now, so the restored conversation includes it.
        let pending: Vec<String> = self.pending_agent_lines.keys().cloned().collect();
        for item in pending {
            self.flush_agent_line(&item);
        }
        // Audio of the old session can no longer be truncated in the new one.
        self.playback = Playback::default();
        self.active_response = None;
        self.discarded.clear();
        self.create_after_done = false;
        let mut so_far = String::from(
            "The connection was interrupted and restored. The phone call is still going on. The conversation so far:\n",
        );
        for (speaker, text) in &self.history {
            let who = match speaker {
                Speaker::Agent => "You",
                Speaker::Callee => "Restaurant",
            };
            so_far.push_str(&format!("{who}: {text}\n"));
        }
        so_far.push_str("Continue the call from where it stopped; do not start over.");
        self.send_model(rt::text_item("system", &so_far)).await;
        if self.finishing.is_none() {
            self.send_model(rt::response_create(None)).await;
        }
        info!(
            restored_lines = self.history.len(),
            "model session restored"
        );
        Some(rx)
    }

    async fn send_twilio(&mut self, text: String) {
        if let Err(e) = self
            .twilio_tx
            .send(Message::Text(Utf8Bytes::from(text)))
            .await
        {
            debug!(error = %e, "send to twilio failed");
        }
    }

    async fn send_model(&mut self, text: String) {
        if let Err(e) = self.model_tx.send(WsMessage::text(text)).await {
            debug!(error = %e, "send to model failed");
        }
    }

    async fn on_twilio(&mut self, text: &str) -> Option<End> {
        let event = match StreamEvent::parse(text) {
            Ok(e) => e,
            Err(_) => {
                self.count_bad_frame();
                return None;
            }
        };
        match event {
            StreamEvent::Media { media } => {
                if let Some(ts) = media.timestamp_ms() {
                    self.clock_ms = self.clock_ms.max(ts);
                }
                if !rt::is_base64_text(&media.payload) {
                    self.count_bad_frame();
                    return None;
                }
                let mut out = String::with_capacity(media.payload.len() + 56);
                rt::input_audio_append(&media.payload, &mut out);
                self.send_model(out).await;
                if let (Some(r), Some(ts)) = (&self.recorder, media.timestamp_ms()) {
                    r.inbound(ts, &media.payload);
                }
            }
            StreamEvent::Mark { mark } => {
                let echo = self.playback.mark_echoed(&mark.name, self.clock_ms);
                if let Echo::Played { item_id, .. } = &echo {
                    if !self.playback.is_playing(item_id) {
                        self.flush_agent_line(item_id);
                    }
                }
                if echo == Echo::Unknown {
                    debug!(mark = %mark.name, "unknown mark echoed");
                }
                self.maybe_schedule_hangup();
            }
            StreamEvent::Dtmf { dtmf } => {
                info!(digit = %dtmf.digit, "the callee pressed a key");
                let at_ms = self.clock_ms;
                self.write_line(Speaker::Callee, format!("(pressed {})", dtmf.digit), at_ms);
                let note = format!(
                    "(The restaurant pressed key {} on the phone keypad.)",
                    dtmf.digit
                );
                self.send_model(rt::text_item("user", &note)).await;
            }
            StreamEvent::Stop {} => return Some(End::Stopped),
            StreamEvent::Start { .. } | StreamEvent::Connected { .. } | StreamEvent::Other => {
                self.count_bad_frame()
            }
        }
        None
    }

    fn count_bad_frame(&mut self) {
        self.bad_frames += 1;
        if self.bad_frames == 1 {
            warn!("ignoring a malformed or unexpected media stream frame (further ones are counted, not logged)");
        }
    }

    async fn on_model(&mut self, text: &str) {
        let event = match ServerEvent::parse(text) {
            Ok(e) => e,
            Err(e) => {
                debug!(error = %e, "unparseable model event");
                return;
            }
        };
        match event {
            ServerEvent::AudioDelta {
                response_id,
                item_id,
                delta,
                ..
            } => {
                if self.discarded.contains(response_id.as_ref()) || !rt::is_base64_text(&delta) {
                    return;
                }
                self.greeting_deadline = None;
                self.last_activity = Instant::now();
                // Look before inserting: keys are allocated once per reply, not per chunk.
                if !self.response_had_audio.contains(response_id.as_ref()) {
                    self.response_had_audio.insert(response_id.to_string());
                }
                let bytes = rt::base64_decoded_len(&delta) as u64;
                if !self.item_started_at.contains_key(item_id.as_ref()) {
                    self.item_started_at
                        .insert(item_id.to_string(), self.clock_ms);
                }
                let mark_name = self.playback.audio_sent(&item_id, bytes, self.clock_ms);
                let mut media = String::with_capacity(delta.len() + 96);
                ts::media(&self.stream_sid, &delta, &mut media);
                let mark = ts::mark(&self.stream_sid, &mark_name);
                // Feed both, flush once.
                let sent = async {
                    self.twilio_tx
                        .feed(Message::Text(Utf8Bytes::from(media)))
                        .await?;
                    self.twilio_tx
                        .feed(Message::Text(Utf8Bytes::from(mark)))
                        .await?;
                    self.twilio_tx.flush().await
                }
                .await;
                if let Err(e) = sent {
                    debug!(error = %e, "forwarding audio to twilio failed");
                }
                if let Some(r) = &self.recorder {
                    r.outbound(self.clock_ms, &delta);
                }
            }
            ServerEvent::AudioDone { item_id, .. } => self.playback.audio_done(&item_id),
            ServerEvent::SpeechStarted {
                audio_start_ms,
                item_id,
            } => {
                self.heard_speech = true;
                self.last_activity = Instant::now();
                self.greeting_deadline = None;
                self.speech_started_at.insert(
                    item_id.to_string(),
                    self.model_clock_offset_ms + audio_start_ms,
                );
                self.barge_in().await;
            }
            ServerEvent::SpeechStopped { .. } => self.last_activity = Instant::now(),
            ServerEvent::InputTranscriptionCompleted {
                item_id,
                transcript,
            } => {
                let text = transcript.trim();
                if !text.is_empty() {
                    let at_ms = self
                        .speech_started_at
                        .get(item_id.as_ref())
                        .copied()
                        .unwrap_or(self.clock_ms);
                    self.write_line(Speaker::Callee, text.to_string(), at_ms);
                }
            }
            ServerEvent::InputTranscriptionFailed { item_id, error } => {
                debug!(item_id = %item_id, error = %error, "callee transcription failed");
            }
            ServerEvent::AudioTranscriptDone {
                item_id,
                transcript,
                ..
            } => self.agent_said(&item_id, &transcript),
            ServerEvent::ResponseCreated { response } => {
                self.active_response = Some(response.id.to_string());
            }
            ServerEvent::OutputItemDone { item, .. } => {
                if item.kind == "function_call"
                    && item.status.as_deref().unwrap_or("completed") == "completed"
                {
                    let (Some(call_id), Some(name)) =
                        (item.call_id.as_deref(), item.name.as_deref())
                    else {
                        return;
                    };
                    let arguments = item.arguments.as_deref().unwrap_or("{}");
                    self.on_tool_call(call_id.to_string(), name.to_string(), arguments.to_string())
                        .await;
                }
            }
            ServerEvent::ResponseDone { response } => {
                let id = response.id.to_string();
                self.discarded.remove(&id);
                if self.active_response.as_deref() == Some(id.as_str()) {
                    self.active_response = None;
                }
                // A reply cut off before its transcript event still has its words here.
                for item in &response.output {
                    if item.kind == "message" {
                        if let Some(id) = item.id.as_deref() {
                            let words: Vec<&str> = item
                                .content
                                .iter()
                                .filter_map(|c| c.transcript.as_deref())
                                .collect();
                            self.agent_said(id, &words.join(" "));
                        }
                    }
                }
                // Tool calls missed as separate events still count (once per call_id).
                for item in &response.output {
                    if item.kind == "function_call" {
                        if let (Some(call_id), Some(name)) =
                            (item.call_id.as_deref(), item.name.as_deref())
                        {
                            if !self.handled_tool_calls.contains(call_id) {
                                let arguments =
                                    item.arguments.as_deref().unwrap_or("{}").to_string();
                                self.on_tool_call(call_id.to_string(), name.to_string(), arguments)
                                    .await;
                            }
                        }
                    }
                }
                if let Some(f) = self.finishing.as_mut() {
                    if self.response_had_audio.contains(&id) && !self.create_after_done {
                        f.goodbye_sent = true;
                    }
                }
                self.response_had_audio.remove(&id);
                if self.create_after_done {
                    self.create_after_done = false;
                    self.send_model(rt::response_create(None)).await;
                }
                self.maybe_schedule_hangup();
            }
            ServerEvent::Error { error } => {
                let code = error.code.as_deref().unwrap_or("");
                match code {
                    "conversation_already_has_active_response" | "response_cancel_not_active" => {
                        debug!(code, "benign race with the model")
                    }
                    _ => {
                        warn!(code, kind = ?error.kind, event_id = ?error.event_id, "model error: {}", error.message)
                    }
                }
            }
            ServerEvent::SessionCreated { .. } => debug!("model session created"),
            ServerEvent::SessionUpdated { .. } => debug!("model session configured"),
            ServerEvent::ItemTruncated {
                item_id,
                audio_end_ms,
            } => debug!(item_id = %item_id, audio_end_ms, "truncated"),
            ServerEvent::OutputItemAdded { .. }
            | ServerEvent::FunctionCallArgumentsDone { .. }
            | ServerEvent::Other => {}
        }
    }

    /// The callee talks over the agent: stop the audio at once, and tell the
    /// model how much of its reply was heard.
    async fn barge_in(&mut self) {
        let Some(cut) = self.playback.interrupt(self.clock_ms) else {
            return;
        };
        let clear = ts::clear(&self.stream_sid);
        self.send_twilio(clear).await;
        if let Some(r) = &self.recorder {
            r.clear(self.clock_ms);
        }
        if let Some(active) = self.active_response.clone() {
            self.discarded.insert(active);
        }
        // Keypad tones are ours, not the model's: there is nothing to truncate.
        for c in cut
            .truncates
            .iter()
            .filter(|c| !c.item_id.starts_with(DTMF_ITEM))
        {
            info!(item_id = %c.item_id, audio_end_ms = c.audio_end_ms, sent_ms = c.sent_ms, "barge-in: the callee spoke over the agent");
            self.truncate_seq += 1;
            let event_id = format!("client_truncate_{}", self.truncate_seq);
            self.send_model(rt::item_truncate(&event_id, &c.item_id, c.audio_end_ms))
                .await;
            self.cut_items
                .insert(c.item_id.clone(), (c.audio_end_ms, c.sent_ms));
            self.flush_agent_line(&c.item_id);
        }
    }

    /// Put a line on the transcript (and in the history a reconnect restores).
    fn write_line(&mut self, speaker: Speaker, text: String, at_ms: u64) {
        let who = match speaker {
            Speaker::Agent => "agent",
            Speaker::Callee => "callee",
        };
        info!(speaker = who, at_ms, "{text}");
        self.history.push((speaker, text.clone()));
        let _ = self.writes.send(Write::Line(TranscriptLine {
            speaker,
            text,
            at_ms,
        }));
    }

    /// The model's words for an agent item: write them once the audio is
    /// heard (now, if nothing of it is still playing).
    fn agent_said(&mut self, item_id: &str, text: &str) {
        let text = text.trim();
        if text.is_empty() || self.written_agent_items.contains(item_id) {
            return;
        }
        self.pending_agent_lines
            .insert(item_id.to_string(), text.to_string());
        if !self.playback.is_playing(item_id) {
            self.flush_agent_line(item_id);
        }
    }

    /// Write an agent line: in full, or the words heard before a barge-in.
    fn flush_agent_line(&mut self, item_id: &str) {
        let Some(text) = self.pending_agent_lines.remove(item_id) else {
            return;
        };
        self.written_agent_items.insert(item_id.to_string());
        let at_ms = self
            .item_started_at
            .get(item_id)
            .copied()
            .unwrap_or(self.clock_ms);
        let text = match self.cut_items.get(item_id) {
            Some(&(heard_ms, sent_ms)) => cut_text(&text, heard_ms, sent_ms.max(1)),
            None => text,
        };
        if text.is_empty() {
            return;
        }
        self.write_line(Speaker::Agent, text, at_ms);
    }

    async fn on_tool_call(&mut self, call_id: String, name: String, arguments: String) {
        if !self.handled_tool_calls.insert(call_id.clone()) {
            return;
        }
        // After keys are pressed the agent waits for the line to speak, so no reply is asked for.
        let mut reply = true;
        let output = match ToolCall::parse(&name, &arguments) {
            Ok(ToolCall::FinishCall(outcome)) => {
                info!(status = %outcome.status, "outcome: {}", outcome.describe());
                let machine = outcome.status == OutcomeStatus::Voicemail;
                let _ = self
                    .writes
                    .send(Write::Outcome(outcome, OutcomeWrite::Report));
                self.finishing = Some(Finishing {
                    goodbye_sent: false,
                });
                match (machine, self.ctx.settings.voicemail) {
                    (true, VoicemailPolicy::Hangup) => {
                        self.hang_up("the agent reached an answering machine").await;
                        return;
                    }
                    (true, VoicemailPolicy::Leave) => {
                        self.hangup_at = Some(Instant::now() + voicemail::MESSAGE_TIMEOUT);
                        json!({"recorded": true, "next": self.voicemail_message.clone()})
                    }
                    (false, _) => {
                        self.hangup_at =
                            Some(Instant::now() + self.ctx.settings.timings.goodbye_timeout);
                        json!({"recorded": true, "next": "Say a short goodbye now. The call ends after your goodbye."})
                    }
                }
            }
            Ok(ToolCall::SendDtmf(keys)) => {
                self.send_dtmf(&keys).await;
                reply = false;
                json!({"done": true, "pressed": keys.to_string(), "next": "The keys were played on the line, in order, after anything you said. Say nothing now; wait for whoever answers."})
            }
            Err(e) => {
                warn!(tool = %name, error = %e, "the model called a tool wrongly");
                json!({"error": e.0})
            }
        };
        self.send_model(rt::function_call_output(&call_id, &output))
            .await;
        if !reply {
            return;
        }
        if self.active_response.is_some() {
            self.create_after_done = true;
        } else {
            self.send_model(rt::response_create(None)).await;
        }
    }

    async fn send_dtmf(&mut self, digits: &Keys) {
        info!(%digits, "pressing keys");
        let audio = crate::audio::dtmf::tones(digits);
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &audio);
        let item_id = format!(
            "{DTMF_ITEM}{digits}_{}_{}",
            self.clock_ms,
            self.handled_tool_calls.len()
        );
        if let Some(r) = &self.recorder {
            r.outbound_mulaw(self.clock_ms, audio.clone());
        }
        // The keys go on the transcript too, where they play (after any
        // speech still queued at Twilio).
        let at_ms = self.clock_ms + self.playback.unplayed_ms(self.clock_ms);
        self.write_line(Speaker::Agent, format!("(pressed {digits})"), at_ms);
        let mark_name = self
            .playback
            .audio_sent(&item_id, audio.len() as u64, self.clock_ms);
        self.playback.audio_done(&item_id);
        let mut media = String::with_capacity(b64.len() + 96);
        ts::media(&self.stream_sid, &b64, &mut media);
        self.send_twilio(media).await;
        let mark = ts::mark(&self.stream_sid, &mark_name);
        self.send_twilio(mark).await;
    }

    /// Twilio's AMD says who answered. A machine: leave the message (stop
    /// whatever the agent was saying, have it speak the message, hang up once
    /// heard) or hang up at once, per `--voicemail`. Ignored when the agent
    /// already reported an outcome.
    async fn on_answered_by(&mut self, who: AnsweredBy) {
        info!(answered_by = %who, "answering machine detection");
        if !who.is_machine() || self.finishing.is_some() || self.hung_up {
            return;
        }
        if !who.is_certain_machine() {
            // Could be a phone menu: let the agent judge from what it hears.
            self.send_model(rt::text_item("system", voicemail::UNSURE_HINT))
                .await;
            return;
        }
        let policy = if who == AnsweredBy::Fax {
            VoicemailPolicy::Hangup
        } else {
            self.ctx.settings.voicemail
        };
        self.finishing = Some(Finishing {
            goodbye_sent: false,
        });
        if policy == VoicemailPolicy::Hangup {
            let note = format!("answered by a machine ({who}); hung up without leaving a message");
            let _ = self.writes.send(Write::Outcome(
                Outcome::bare(OutcomeStatus::Voicemail, Some(note)),
                OutcomeWrite::Report,
            ));
            self.hang_up("an answering machine answered").await;
            return;
        }
        let note = format!("answered by a machine ({who}); left a message, nothing booked");
        let _ = self.writes.send(Write::Outcome(
            Outcome::bare(OutcomeStatus::Voicemail, Some(note)),
            OutcomeWrite::Report,
        ));
        if let Some(active) = self.active_response.clone() {
            self.discarded.insert(active);
            self.send_model(rt::response_cancel()).await;
        }
        self.barge_in().await;
        let message = rt::text_item("system", &self.voicemail_message);
        self.send_model(message).await;
        if self.active_response.is_some() {
            self.create_after_done = true;
        } else {
            self.send_model(rt::response_create(Some(
                "Leave the voicemail message now.",
            )))
            .await;
        }
        self.hangup_at = Some(Instant::now() + voicemail::MESSAGE_TIMEOUT);
    }

    /// Once the goodbye has been sent and every mark has come back, hang up
    /// (with a short grace for the last words).
    fn maybe_schedule_hangup(&mut self) {
        let Some(f) = &self.finishing else { return };
        if self.hung_up || !f.goodbye_sent {
            return;
        }
        let grace = if self.playback.is_idle() {
            Duration::from_millis(300)
        } else {
            self.ctx.settings.timings.goodbye_grace
                + Duration::from_millis(self.playback.unplayed_ms(self.clock_ms))
        };
        // Once the goodbye is fully sent, its playback decides (a long
        // goodbye is not cut by the timeout set when `finish_call` came).
        self.hangup_at = Some(Instant::now() + grace);
    }

    async fn hang_up(&mut self, why: &str) {
        if self.hung_up {
            return;
        }
        self.hung_up = true;
        info!("hanging up: {why}");
        let ctx = self.ctx.clone();
        let call_sid = self.call_sid.clone();
        tokio::spawn(
            async move {
                if let Err(e) = ctx.twilio.hang_up(&call_sid).await {
                    warn!(error = %e, "hang-up through Twilio failed");
                }
            }
            .in_current_span(),
        );
        // If Twilio does not end the stream soon, closing our side ends the call.
        self.hangup_at = Some(Instant::now() + HANGUP_CONFIRM);
    }

    async fn finish(&mut self, end: End, twilio_rx: &mut TwilioStream) {
        match &end {
            End::Stopped => info!("media stream stopped (call ended)"),
            End::TwilioClosed => info!("media stream closed without `stop`"),
            End::ModelLost(why) => warn!("model connection lost mid-call: {why}"),
            End::Limit(why) => warn!("ending the call politely: {why}"),
            End::Shutdown => warn!("ending the call politely: the server is shutting down"),
        }
        let pending: Vec<String> = self.pending_agent_lines.keys().cloned().collect();
        for item in pending {
            if let (Some(heard), Some(sent)) = (
                self.playback.heard_ms_of(&item, self.clock_ms),
                self.playback.item_sent_ms(&item),
            ) {
                self.cut_items.insert(item.clone(), (heard, sent));
            }
            self.flush_agent_line(&item);
        }
        let (reason, apology) = match &end {
            End::ModelLost(why) => {
                let _ = self.writes.send(Write::Error(format!(
                    "the AI model connection dropped: {why}"
                )));
                (
                    "the AI model connection dropped mid-call".to_string(),
                    Some(APOLOGY_TECHNICAL),
                )
            }
            End::Limit(why) => (format!("the call was ended: {why}"), Some(APOLOGY_LIMIT)),
            End::Shutdown => (
                "the call was ended because the server shut down".to_string(),
                Some(APOLOGY_TECHNICAL),
            ),
            End::Stopped | End::TwilioClosed => (
                "the call ended before the agent reported an outcome".to_string(),
                None,
            ),
        };
        let _ = self.writes.send(Write::Outcome(
            Outcome::bare(OutcomeStatus::Failed, Some(reason)),
            OutcomeWrite::Fallback,
        ));
        if let Some(text) = apology {
            if !self.hung_up {
                self.hung_up = true;
                apologise_and_hang_up(&self.ctx, &self.call_sid, text).await;
                // Let Twilio end the stream itself (the apology plays after
                // it); closing first could cut the call before the apology.
                let _ = tokio::time::timeout(Duration::from_secs(5), async {
                    while let Some(Ok(msg)) = twilio_rx.next().await {
                        if let Message::Text(t) = &msg {
                            if matches!(StreamEvent::parse(t.as_str()), Ok(StreamEvent::Stop {})) {
                                break;
                            }
                        }
                        if matches!(msg, Message::Close(_)) {
                            break;
                        }
                    }
                })
                .await;
            }
        }
        if self.bad_frames > 0 {
            warn!(
                bad_frames = self.bad_frames,
                "malformed or unexpected media stream frames were ignored"
            );
        }
        let _ = self.model_tx.send(WsMessage::Close(None)).await;
        let _ = self.twilio_tx.send(Message::Close(None)).await;
    }
}

/// The stream's custom parameters for the log: phone numbers masked, the
/// call token withheld, in a stable order.
fn loggable_parameters(params: &HashMap<String, String>) -> String {
    use crate::domain::reservation::param;
    let mut names: Vec<&String> = params.keys().collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let value = &params[name];
            let shown = match name.as_str() {
                "call_token" => "(withheld)".to_string(),
                n if n == param::RESTAURANT_PHONE || n == param::CALLBACK => {
                    crate::domain::phone::mask(value)
                }
                _ => value.chars().take(80).collect(),
            };
            format!("{name}={shown:?}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The words of `text` the callee heard when cut at `heard_ms` of `total_ms`
/// (proportional, at a word boundary, marked with an ellipsis).
pub fn cut_text(text: &str, heard_ms: u64, total_ms: u64) -> String {
    if heard_ms >= total_ms {
        return text.to_string();
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let keep = ((words.len() as u64 * heard_ms) / total_ms.max(1)) as usize;
    if keep == 0 {
        return String::new();
    }
    format!(
        "{}…",
        words[..keep.min(words.len())]
            .join(" ")
            .trim_end_matches([',', '.', ';'])
    )
}

#[cfg(test)]
mod tests {
    use super::cut_text;

    #[test]
    fn logged_parameters_mask_numbers_and_withhold_the_token() {
        let params: std::collections::HashMap<String, String> = [
            ("call_token", "k7Qx2mPz9LwR4tVb"),
            ("restaurant_phone", "+12125550123"),
            ("restaurant_name", "Chez Demo"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let line = super::loggable_parameters(&params);
        assert_eq!(
            line,
            r#"call_token="(withheld)" restaurant_name="Chez Demo" restaurant_phone="+1212•••23""#
        );
    }

    #[test]
    fn cut_lines_keep_the_heard_words() {
        assert_eq!(cut_text("one two three four", 500, 1000), "one two…");
        assert_eq!(
            cut_text("one two three four", 1000, 1000),
            "one two three four"
        );
        assert_eq!(cut_text("one two, three four", 100, 1000), "");
        assert_eq!(cut_text("one two, three four", 600, 1000), "one two…");
    }
}
