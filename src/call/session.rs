//! The driver of one live call: the stream's start (with its token check),
//! the model session, then one loop that turns socket messages, the
//! answering-machine verdict (from the store's news), the loss of the
//! call's lease, shutdown and the core's deadline into [`Input`]s for the
//! call core ([`CallState`], `state.rs`) and carries out the [`Action`]s it
//! returns; what one input produces goes out in one write and one flush per
//! socket.
//!
//! One task owns both sockets whole (split halves cost a lock per frame and
//! the wake-up of another task), and each source it waits on has a waker of
//! its own ([`Wakes`]): a wake-up polls only what woke it. Polling every
//! source on every wake-up, as `select!` does, cost about 13 % of the
//! server's CPU in a conversation: a Twilio frame made the model's socket
//! try a read, and tungstenite zero-fills its read buffer before each read
//! attempt (docs/PERFORMANCE.md). (Taking every message already waiting
//! into the same wake-up was tried and removed for the same reason.)
//!
//! All decisions are the core's; this file only does I/O. Audio is forwarded
//! as the base64 text it arrived in, both ways; it is never decoded here
//! (the core's joiner decodes the frames it joins).
//! Transcript lines and the outcome go to a per-call writer task, so the
//! database never stalls the audio.
//!
//! A key press through Twilio ([`Action::PressKeys`]) is a call update; the
//! call's stream then ends and a new one opens, marked as its continuation
//! ([`StreamContinuation`]). Landing here, it is handed to the waiting
//! session ([`super::rejoin`]); landing on an instance with no such session,
//! it carries the call on from the store ([`CallState::resume`]), and the
//! instance that waited sees the claim in the store and yields.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use chrono::Utc;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tracing::{debug, info, warn, Instrument};

use super::rejoin::{Expected, NewStream};
use super::state::{Action, CallSetup, CallState, Input, KeyPress, Phase, Resume, Write};
use super::wakes::Wakes;
use super::{voicemail, CallContext};
use crate::agent::{prompts, tools, Brief};
use crate::audio::recording::{self, Recorder};
use crate::domain::reservation::ParameterError;
use crate::domain::{
    AnsweredBy, Language, Outcome, OutcomeStatus, OutcomeWrite, Reservation, StreamContinuation,
};
use crate::phrases::{CallFacts, Phrases};
use crate::realtime::{self, RealtimeConnection};
use crate::store::{spawn_writer, CallWrite, LeaseGuard};
use crate::twilio::rest::{TwilioError, UpdateFailure};
use crate::twilio::stream::{self as ts, StreamEvent};
use crate::twilio::twiml;

/// How long Twilio has to send `start` after the upgrade.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// While waiting for the call's next stream, how often the store is asked
/// whether it reached another instance.
const MOVED_POLL: Duration = Duration::from_millis(250);

/// Handle a Media Stream WebSocket from upgrade to close.
pub async fn run(ctx: CallContext, socket: WebSocket) {
    let mut twilio = socket;
    let mut bad_frames = 0u64;
    let start =
        match tokio::time::timeout(START_TIMEOUT, wait_for_start(&mut twilio, &mut bad_frames))
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
    let continuation = match StreamContinuation::from_parameters(&start.custom_parameters) {
        Ok(c) => c,
        Err(e) => {
            span.in_scope(
                || warn!(error = %e, "a stream that cannot be placed in its call; closing it"),
            );
            close_twilio(twilio).await;
            return;
        }
    };
    let Some(continuation) = continuation else {
        run_call(ctx, start, twilio, bad_frames)
            .instrument(span)
            .await;
        return;
    };
    rejoin(ctx, start, continuation, twilio, bad_frames)
        .instrument(span)
        .await;
}

/// A call's later stream (after a key press through Twilio): checked like a
/// first stream, then handed to the session waiting for it here, or, when
/// none waits here, the call goes on from the store.
async fn rejoin(
    ctx: CallContext,
    start: ts::Start,
    continuation: StreamContinuation,
    twilio: WebSocket,
    bad_frames: u64,
) {
    let call_sid = start.call_sid.clone();
    info!(
        stream_sid = %start.stream_sid,
        stream_number = continuation.stream_number,
        parameters = %loggable_parameters(&start.custom_parameters),
        "media stream started: the call goes on"
    );
    let expected = ctx.store.call_token(&call_sid).await;
    let given = start.custom_parameters.get("call_token");
    let token_ok = matches!(&expected, Ok(Some(expected))
        if given.is_some_and(|got| crate::crypto::constant_time_eq(got, expected)));
    if !token_ok {
        // Not the call's stream: refused, and the call is left alone.
        warn!("continuation stream refused: unknown call, or a missing or wrong call token");
        close_twilio(twilio).await;
        return;
    }
    let stream = Box::new(NewStream {
        start,
        socket: twilio,
    });
    match ctx
        .rejoins
        .hand_over(&call_sid, continuation.stream_number, stream)
    {
        Ok(()) => info!("handed the new stream to the session holding the call"),
        Err(stream) => {
            info!("no session here holds the call; it goes on from the store");
            run_resumed(ctx, stream, continuation, bad_frames).await;
        }
    }
}

async fn wait_for_start(socket: &mut WebSocket, bad_frames: &mut u64) -> Option<ts::Start> {
    while let Some(msg) = socket.next().await {
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

/// A continuation stream that reached an instance without the call's
/// session: claim the stream in the store (the instance that waited for it
/// yields on seeing the claim), then run the call on, briefing a new model
/// session from the `<Parameter>`s and the transcript so far.
async fn run_resumed(
    ctx: CallContext,
    stream: Box<NewStream>,
    continuation: StreamContinuation,
    bad_frames: u64,
) {
    let call_sid = stream.start.call_sid.clone();
    match ctx
        .store
        .claim_stream(&call_sid, continuation.stream_number)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            warn!(
                stream_number = continuation.stream_number,
                "a stale or repeated stream of the call; closing it"
            );
            close_twilio(stream.socket).await;
            return;
        }
        Err(e) => {
            warn!(error = %e, "cannot claim the call's new stream; closing it");
            close_twilio(stream.socket).await;
            return;
        }
    }
    let history = match ctx.store.lines_after(&call_sid, 0).await {
        Ok(lines) => lines
            .into_iter()
            .map(|(_, line)| (line.speaker, line.text))
            .collect(),
        Err(e) => {
            warn!(error = %e, "cannot read the conversation so far; going on without it");
            Vec::new()
        }
    };
    let resume = Resume {
        stream_number: continuation.stream_number,
        call_clock_ms: continuation.call_clock_at(Utc::now()),
        history,
    };
    run_session(ctx, stream.start, stream.socket, bad_frames, Some(resume)).await;
}

async fn run_call(ctx: CallContext, start: ts::Start, twilio: WebSocket, bad_frames: u64) {
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
                close_twilio(twilio).await;
                return;
            }
        }
        Ok(None) => {
            warn!("media stream refused: no call with this CallSid was placed here");
            close_twilio(twilio).await;
            return;
        }
        Err(e) => {
            warn!(error = %e, "cannot check the call token; refusing the stream");
            close_twilio(twilio).await;
            return;
        }
    }
    if let Err(e) = ctx.store.stream_started(&call_sid).await {
        warn!(error = %e, "cannot record the stream start");
    }
    run_session(ctx, start, twilio, bad_frames, None).await;
}

/// The call from its (checked) stream on: the reservation from the
/// `<Parameter>`s, the model session, the core and its driver. `resume`: a
/// later stream taken over from another instance.
async fn run_session(
    ctx: CallContext,
    start: ts::Start,
    twilio: WebSocket,
    bad_frames: u64,
    resume: Option<Resume>,
) {
    let call_sid = start.call_sid.clone();
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
        language = %reservation.language,
        "agent briefed: {}",
        reservation.summary()
    );
    // Held for the whole call: if this instance is judged dead, another
    // finishes the record and the driver hears of it (`Input::LeaseLost`).
    let lease = ctx.store.hold_lease(&call_sid);

    let (writes, writer) = spawn_writer(ctx.store.clone(), call_sid.clone());
    // What the restaurant hears from the server itself, in the call's
    // language (it travelled in the stream's parameters).
    let language = reservation.language;
    let spoken = Phrases::new(language);
    let brief = Brief::with_options(
        &reservation,
        Utc::now(),
        crate::agent::BriefOptions {
            recording: ctx.settings.record,
            voicemail: ctx.settings.voicemail,
        },
    );
    let model = match open_model(&ctx, &brief, language).await {
        Ok(m) => m,
        Err(e) => {
            warn!(error = %e, "Realtime API unavailable; ending the call politely");
            let why = format!("the AI model could not be reached: {e}");
            let _ = writes.send(Write::Error(why.clone()));
            let _ = writes.send(Write::Outcome(
                Outcome::bare(OutcomeStatus::Failed, Some(why)),
                OutcomeWrite::Fallback,
            ));
            apologise_and_hang_up(&ctx, &call_sid, spoken.apology_technical(), language).await;
            drop(writes);
            let _ = writer.await;
            return;
        }
    };
    let (recorder, recording) = match recording::recording_path(&ctx.settings.data_dir, &call_sid) {
        // A call taken over from another instance is not recorded here: its
        // recording is that instance's file.
        Some(path) if ctx.settings.record && resume.is_none() => {
            let (r, task) = Recorder::start(path);
            (Some(r), Some(task))
        }
        _ => (None, None),
    };
    let setup = CallSetup {
        stream_sid: start.stream_sid.clone(),
        timings: ctx.settings.timings.clone(),
        voicemail: ctx.settings.voicemail,
        record: recorder.is_some(),
        voicemail_message: spoken.voicemail_instructions(&CallFacts {
            customer: reservation.customer_name.as_str(),
            restaurant: reservation.restaurant_name.as_str(),
            party_size: reservation.party_size.get(),
            slot: &reservation.slot,
            callback: reservation.callback.as_ref().map(|c| c.as_str()),
        }),
        spoken,
        prompts: &prompts::ENGLISH,
        dtmf: ctx.settings.dtmf,
    };
    let mut first = Vec::new();
    let resumed = resume.is_some();
    let call = match resume {
        Some(resume) => CallState::resume(setup, resume, Instant::now(), &mut first),
        None => CallState::new(setup, Instant::now()),
    };
    let driver = Driver {
        // A call taken over already had its verdict acted on.
        amd: (!resumed).then(|| voicemail::watch_answered_by(ctx.store.clone(), call_sid.clone())),
        ctx,
        call_sid,
        brief,
        language,
        stream_params: start.custom_parameters,
        twilio,
        twilio_open: true,
        model,
        model_open: true,
        writes,
        recorder,
        keys_update: None,
        rejoin: None,
        lease,
        wakes: Wakes::new(source::COUNT),
    };
    let ignored = bad_frames + driver.run(call, first).await;
    if ignored > 0 {
        warn!(
            bad_frames = ignored,
            "malformed or unexpected media stream frames were ignored"
        );
    }
    if let Some(task) = recording {
        if let Ok(Some(path)) = task.await {
            info!(path = %path.display(), "call recorded");
        }
    }
    let _ = writer.await;
    info!("call session ended");
}

async fn close_twilio(mut socket: WebSocket) {
    let _ = socket.send(Message::Close(None)).await;
}

/// The store's writer takes the core's writes as they are.
impl From<Write> for CallWrite {
    fn from(w: Write) -> CallWrite {
        match w {
            Write::Line(line) => CallWrite::Line(line),
            Write::Outcome(outcome, how) => CallWrite::Outcome(outcome, how),
            Write::Error(e) => CallWrite::Error(e),
        }
    }
}

/// Open the model session, trying a second time after a short pause.
/// `language` is the call's: the hint for transcribing the restaurant.
async fn open_model(
    ctx: &CallContext,
    brief: &Brief,
    language: Language,
) -> Result<RealtimeConnection, realtime::RealtimeError> {
    match open_model_once(ctx, brief, language).await {
        Ok(ws) => Ok(ws),
        Err(first) => {
            warn!(error = %first, "Realtime API unavailable; trying once more");
            tokio::time::sleep(Duration::from_millis(500)).await;
            open_model_once(ctx, brief, language).await
        }
    }
}

async fn open_model_once(
    ctx: &CallContext,
    brief: &Brief,
    language: Language,
) -> Result<RealtimeConnection, realtime::RealtimeError> {
    let settings = &ctx.settings.realtime;
    let mut ws = realtime::connect(settings).await?;
    let update =
        realtime::client::session_update(settings, brief.as_str(), tools::definitions(), language);
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

/// Replace the call's TwiML with a short apology and a hang-up, said in the
/// call's language by a voice that speaks it.
async fn apologise_and_hang_up(ctx: &CallContext, call_sid: &str, text: &str, language: Language) {
    let twiml = crate::twilio::twiml::say_and_hangup_in(text, &language);
    if let Err(e) = ctx.twilio.redirect_twiml(call_sid, &twiml).await {
        warn!(error = %e, "could not redirect the call to the apology; hanging up");
        let _ = ctx.twilio.hang_up(call_sid).await;
    }
}

/// What woke the loop.
enum Wake {
    Twilio(Option<Result<Message, axum::Error>>),
    Model(Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>),
    AnsweredBy(Option<AnsweredBy>),
    LeaseLost,
    Shutdown,
    Timeout,
    /// Twilio's answer to the key-press update.
    KeysUpdate(Result<(), TwilioError>),
    /// The call's next stream reached this instance (`None`: no longer awaited).
    Rejoined(Option<Box<NewStream>>),
    /// Time to ask the store whether the next stream went elsewhere.
    CheckMoved,
}

/// The sockets and tasks of one call: everything the core may not touch.
struct Driver {
    ctx: CallContext,
    call_sid: String,
    /// The instructions (kept to brief a new session after a reconnect).
    brief: Brief,
    /// The call's language: the transcription hint of a new session, the
    /// language and voice of the apology `<Say>`.
    language: Language,
    /// The Media Stream, whole: read and written by this one task, so a
    /// frame costs no lock between split halves and no other task's wake-up.
    twilio: WebSocket,
    /// False once Twilio's side ended.
    twilio_open: bool,
    /// The model session's socket, whole, like `twilio`.
    model: RealtimeConnection,
    /// False once the model's side ended (until a reconnect).
    model_open: bool,
    /// Who answered (async AMD), read from the call store.
    amd: Option<oneshot::Receiver<AnsweredBy>>,
    writes: mpsc::UnboundedSender<Write>,
    /// `--record`: the recorder task's handle (audio is decoded there, not here).
    recorder: Option<Recorder>,
    /// The current stream's `<Parameter>`s (the next stream carries them on).
    stream_params: HashMap<String, String>,
    /// Twilio's answer to a key-press update under way.
    keys_update: Option<oneshot::Receiver<Result<(), TwilioError>>>,
    /// Waiting for the call's next stream (after a key-press update).
    rejoin: Option<Expected>,
    /// The call's lease, renewed in the background until the driver ends.
    lease: LeaseGuard,
    /// Which of the sources below woke the driver.
    wakes: Wakes,
}

/// The driver's sources, one flag each in [`Wakes`].
mod source {
    pub const TWILIO: u32 = 0;
    pub const MODEL: u32 = 1;
    pub const TIMER: u32 = 2;
    pub const AMD: u32 = 3;
    pub const LEASE: u32 = 4;
    pub const SHUTDOWN: u32 = 5;
    pub const KEYS: u32 = 6;
    pub const ARRIVAL: u32 = 7;
    pub const MOVED: u32 = 8;
    /// How many.
    pub const COUNT: u32 = 9;
}

impl Driver {
    /// Run the call until the core closes it; returns the Twilio frames it
    /// ignored.
    async fn run(mut self, mut call: CallState, first: Vec<Action>) -> u64 {
        // Kept across the loop's turns: a future made anew on each turn
        // would register (and drop) a waiter on every wake-up.
        let shutdown = self.ctx.shutdown.clone();
        let shutdown_signal = shutdown.cancelled();
        tokio::pin!(shutdown_signal);
        let lease_signal = self.lease.when_lost();
        tokio::pin!(lease_signal);
        let mut moved_poll = tokio::time::interval(MOVED_POLL);
        moved_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut shutdown_told = false;
        let mut lease_lost = false;
        // One timer, moved only when the core's deadline moves.
        let sleep = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(sleep);
        let mut armed: Option<Instant> = None;
        // Reused for every input: the hot path allocates no action list.
        let mut out: Vec<Action> = Vec::with_capacity(16);
        let mut doing: Vec<Action> = Vec::with_capacity(16);
        out.extend(first);
        self.carry_out(&mut call, &mut out, &mut doing).await;
        // Which socket is polled first, alternating so neither waits behind
        // the other's backlog.
        let mut twilio_first = false;
        while call.phase() != Phase::Closed {
            let deadline = call.poll_timeout();
            if deadline != armed {
                if let Some(at) = deadline {
                    sleep.as_mut().reset(tokio::time::Instant::from_std(at));
                    self.wakes.due(source::TIMER);
                }
                armed = deadline;
            }
            twilio_first = !twilio_first;
            // Only the sources that woke the task (or just gave something)
            // are polled: `wakes.rs`.
            let wake = std::future::poll_fn(|cx| {
                self.wakes.begin(cx);
                let sockets = if twilio_first {
                    [source::TWILIO, source::MODEL]
                } else {
                    [source::MODEL, source::TWILIO]
                };
                for socket in sockets {
                    let polled = match socket {
                        source::TWILIO if self.twilio_open => self
                            .wakes
                            .poll(socket, |cx| self.twilio.poll_next_unpin(cx))
                            .map(Wake::Twilio),
                        source::MODEL if self.model_open => self
                            .wakes
                            .poll(socket, |cx| self.model.poll_next_unpin(cx))
                            .map(Wake::Model),
                        _ => Poll::Pending,
                    };
                    if polled.is_ready() {
                        return polled;
                    }
                }
                let w = &mut self.wakes;
                if armed.is_some()
                    && w.poll(source::TIMER, |cx| sleep.as_mut().poll(cx))
                        .is_ready()
                {
                    return Poll::Ready(Wake::Timeout);
                }
                if let Some(rx) = &mut self.amd {
                    if let Poll::Ready(who) = w.poll(source::AMD, |cx| Pin::new(rx).poll(cx)) {
                        return Poll::Ready(Wake::AnsweredBy(who.ok()));
                    }
                }
                if !lease_lost
                    && w.poll(source::LEASE, |cx| lease_signal.as_mut().poll(cx))
                        .is_ready()
                {
                    return Poll::Ready(Wake::LeaseLost);
                }
                if !shutdown_told
                    && w.poll(source::SHUTDOWN, |cx| shutdown_signal.as_mut().poll(cx))
                        .is_ready()
                {
                    return Poll::Ready(Wake::Shutdown);
                }
                if let Some(rx) = &mut self.keys_update {
                    if let Poll::Ready(answer) = w.poll(source::KEYS, |cx| Pin::new(rx).poll(cx)) {
                        return Poll::Ready(Wake::KeysUpdate(answer.unwrap_or_else(|_| {
                            Err(TwilioError::Transport(
                                "the key-press update was abandoned".into(),
                            ))
                        })));
                    }
                }
                if let Some(expected) = &mut self.rejoin {
                    let arrival = &mut expected.arrival;
                    if let Poll::Ready(s) = w.poll(source::ARRIVAL, |cx| Pin::new(arrival).poll(cx))
                    {
                        return Poll::Ready(Wake::Rejoined(s.ok()));
                    }
                    if w.poll(source::MOVED, |cx| moved_poll.poll_tick(cx))
                        .is_ready()
                    {
                        return Poll::Ready(Wake::CheckMoved);
                    }
                }
                Poll::Pending
            })
            .await;
            let now = Instant::now();
            match wake {
                Wake::Twilio(m) => self.on_twilio(m, &mut call, now, &mut out),
                Wake::Model(m) => self.on_model(m, &mut call, now, &mut out),
                Wake::AnsweredBy(who) => {
                    self.amd = None;
                    if let Some(who) = who {
                        call.handle(Input::AnsweredBy(who), now, &mut out);
                    }
                }
                Wake::LeaseLost => {
                    lease_lost = true;
                    call.handle(Input::LeaseLost, now, &mut out);
                }
                Wake::Shutdown => {
                    shutdown_told = true;
                    call.handle(Input::Shutdown, now, &mut out);
                }
                Wake::Timeout => {
                    // Re-arm even if the core keeps the same deadline.
                    armed = None;
                    call.handle(Input::Timeout, now, &mut out);
                }
                Wake::KeysUpdate(answer) => {
                    self.keys_update = None;
                    let input = match answer {
                        Ok(()) => Input::KeysAccepted,
                        Err(e) => {
                            warn!(error = %e, "the key-press update failed");
                            Input::KeysFailed(e.update_failure(), e.to_string())
                        }
                    };
                    call.handle(input, now, &mut out);
                }
                Wake::Rejoined(Some(stream)) => {
                    self.rejoin = None;
                    let old = std::mem::replace(&mut self.twilio, stream.socket);
                    close_twilio(old).await;
                    self.twilio_open = true;
                    self.wakes.due(source::TWILIO);
                    self.stream_params = stream.start.custom_parameters;
                    self.claim_stream(call.stream_number().saturating_add(1));
                    call.handle(
                        Input::StreamRejoined(stream.start.stream_sid),
                        now,
                        &mut out,
                    );
                }
                Wake::Rejoined(None) => self.rejoin = None,
                Wake::CheckMoved => {
                    let waiting_for = call.stream_number().saturating_add(1);
                    match self.ctx.store.newest_stream(&self.call_sid).await {
                        Ok(Some(newest)) if newest >= waiting_for => {
                            self.rejoin = None;
                            call.handle(Input::StreamMoved, Instant::now(), &mut out);
                        }
                        Ok(_) => {}
                        Err(e) => debug!(error = %e, "cannot read the call's newest stream yet"),
                    }
                }
            }
            self.carry_out(&mut call, &mut out, &mut doing).await;
            if !matches!(
                call.phase(),
                Phase::PressingKeys { .. } | Phase::Rejoining { .. }
            ) {
                // Nothing is awaited any more (refused, or the call ended).
                self.rejoin = None;
                self.keys_update = None;
            }
        }
        call.bad_frames()
    }

    /// A message (or the end) of Twilio's socket.
    fn on_twilio(
        &mut self,
        msg: Option<Result<Message, axum::Error>>,
        call: &mut CallState,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        match msg {
            Some(Ok(Message::Text(text))) => call.handle(Input::Twilio(text.as_str()), now, out),
            Some(Ok(Message::Close(_))) | None => {
                self.twilio_open = false;
                call.handle(Input::TwilioClosed, now, out);
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                debug!(error = %e, "twilio socket error");
                self.twilio_open = false;
                call.handle(Input::TwilioClosed, now, out);
            }
        }
    }

    /// A message (or the end) of the model's socket.
    fn on_model(
        &mut self,
        msg: Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>,
        call: &mut CallState,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        match msg {
            Some(Ok(WsMessage::Text(text))) => call.handle(Input::Model(text.as_str()), now, out),
            Some(Ok(WsMessage::Close(frame))) => {
                self.model_open = false;
                let why = format!("the model closed the session ({frame:?})");
                call.handle(Input::ModelLost(why), now, out);
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                self.model_open = false;
                call.handle(Input::ModelLost(e.to_string()), now, out);
            }
            None => {
                self.model_open = false;
                let why = "the model connection ended".to_string();
                call.handle(Input::ModelLost(why), now, out);
            }
        }
    }

    /// Carry out the core's actions in order; frames are fed as they come
    /// and each socket flushed once. Actions that report back (a reconnect)
    /// give the core an input, whose actions are carried out in turn.
    async fn carry_out(
        &mut self,
        call: &mut CallState,
        out: &mut Vec<Action>,
        doing: &mut Vec<Action>,
    ) {
        while !out.is_empty() {
            std::mem::swap(out, doing);
            let (mut to_twilio, mut to_model) = (false, false);
            for action in doing.drain(..) {
                match action {
                    Action::Twilio(text) => {
                        to_twilio = true;
                        let frame = Message::Text(Utf8Bytes::from(text));
                        if let Err(e) = self.twilio.feed(frame).await {
                            debug!(error = %e, "send to twilio failed");
                        }
                    }
                    Action::Model(text) => {
                        to_model = true;
                        if let Err(e) = self.model.feed(WsMessage::text(text)).await {
                            debug!(error = %e, "send to model failed");
                        }
                    }
                    Action::Store(write) => {
                        let _ = self.writes.send(write);
                    }
                    Action::Record(audio) => {
                        if let Some(r) = &self.recorder {
                            r.record(audio);
                        }
                    }
                    Action::HangUp => self.hang_up(),
                    Action::Apologise(text) => {
                        apologise_and_hang_up(&self.ctx, &self.call_sid, text, self.language).await;
                    }
                    Action::ReconnectModel => {
                        let input = self.reconnect().await;
                        to_model = false;
                        call.handle(input, Instant::now(), out);
                    }
                    Action::PressKeys(keys) => {
                        if let Err(input) = self.press_keys(keys) {
                            call.handle(input, Instant::now(), out);
                        }
                    }
                    Action::Close => {
                        let _ = self.model.send(WsMessage::Close(None)).await;
                        let _ = self.twilio.send(Message::Close(None)).await;
                        return;
                    }
                }
            }
            if to_twilio {
                if let Err(e) = self.twilio.flush().await {
                    debug!(error = %e, "forwarding to twilio failed");
                }
            }
            if to_model {
                if let Err(e) = self.model.flush().await {
                    debug!(error = %e, "forwarding to the model failed");
                }
            }
        }
    }

    /// Ask Twilio to end the call, without holding up the audio.
    fn hang_up(&self) {
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
    }

    /// Update the call to press `keys` and open its next stream with the
    /// current stream's parameters plus the continuation; the answer comes
    /// back as [`Wake::KeysUpdate`]. `Err`: the update could not be written
    /// (the core is told it was refused).
    fn press_keys(&mut self, keys: KeyPress) -> Result<(), Input<'static>> {
        let continuation = StreamContinuation {
            stream_number: keys.stream_number,
            call_clock_ms: keys.call_clock_ms,
            updated_at: Utc::now(),
        };
        let parameters = continuation.next_stream_parameters(&self.stream_params);
        let public = &self.ctx.settings.public_url;
        let doc = twiml::play_digits_then_connect_stream(
            &keys.digits,
            &public.stream_url(),
            Some(&public.stream_status_callback()),
            &parameters,
        )
        .map_err(|e| {
            warn!(error = %e, "cannot write the key-press TwiML");
            Input::KeysFailed(UpdateFailure::Refused, e.to_string())
        })?;
        // Registered before the update, so a fast stream cannot miss us.
        self.rejoin = Some(self.ctx.rejoins.expect(&self.call_sid, keys.stream_number));
        let (answer_tx, answer_rx) = oneshot::channel();
        self.keys_update = Some(answer_rx);
        for new in [source::KEYS, source::ARRIVAL, source::MOVED] {
            self.wakes.due(new);
        }
        let ctx = self.ctx.clone();
        let call_sid = self.call_sid.clone();
        info!(digits = %keys.digits, stream_number = keys.stream_number, "updating the call to press keys");
        tokio::spawn(
            async move {
                let answer = ctx.twilio.redirect_twiml(&call_sid, &doc).await;
                let _ = answer_tx.send(answer.map(|_| ()));
            }
            .in_current_span(),
        );
        Ok(())
    }

    /// Record in the store that the call's newest stream is here (a copy of
    /// an older stream arriving elsewhere is then refused as stale).
    fn claim_stream(&self, stream_number: u32) {
        let store = self.ctx.store.clone();
        let call_sid = self.call_sid.clone();
        tokio::spawn(
            async move {
                if let Err(e) = store.claim_stream(&call_sid, stream_number).await {
                    warn!(error = %e, "cannot record the call's new stream");
                }
            }
            .in_current_span(),
        );
    }

    /// Open a new model session with the same brief.
    async fn reconnect(&mut self) -> Input<'static> {
        match open_model(&self.ctx, &self.brief, self.language).await {
            Ok(ws) => {
                self.model = ws;
                self.model_open = true;
                self.wakes.due(source::MODEL);
                Input::ModelReconnected
            }
            Err(e) => {
                warn!(error = %e, "reconnecting to the model failed");
                Input::ModelReconnectFailed
            }
        }
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

#[cfg(test)]
mod tests {
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
}
