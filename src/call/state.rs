//! The call core: everything one live call decides, with no I/O and no clock.
//!
//! [`CallState`] is a state machine in the manner of str0m's `Rtc`. The
//! driver (`session.rs`) hands it an [`Input`] (a Twilio frame, a model
//! event, the answering-machine verdict, shutdown, the model connection lost
//! or restored, a deadline reached) with the time it happened, and the core
//! answers with [`Action`]s (frames to send, store writes, audio to record,
//! hang up, apologise, reconnect the model, close) in a buffer the driver
//! reuses. It never touches a socket and never reads the clock: its next
//! deadline comes out of [`CallState::poll_timeout`] and comes back as
//! [`Input::Timeout`], so the unit tests (`state/tests.rs`) play whole
//! conversations faster than real time.
//!
//! The call's phase is one [`Phase`]; each agent item's state (when its audio
//! started, its words waiting to be heard, how much of it a barge-in let
//! through, whether its line was written) is one `AgentItem` in one map.
//!
//! Hot path: a Twilio `media` frame becomes one `input_audio_buffer.append`
//! (or, with `RESERVOICE_APPEND_MS` above 20, frames the model decides
//! nothing from are joined into one append of up to that many ms:
//! `joining.rs`), and a model audio delta a Twilio
//! `media` plus a `mark` (or a mark per `RESERVOICE_MARK_MS` of audio and at
//! the end of each item). Frames are parsed borrowed (`twilio::stream`,
//! `realtime::events`), and each outgoing message is one `String`, moved into
//! its [`Action`] and from there into the socket.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;
use tracing::{debug, info, warn};

use super::joining::{Joiner, NotBase64};
use super::playback::{Echo, Playback};
use super::voicemail::MESSAGE_TIMEOUT;
use crate::agent::tools::ToolCall;
use crate::agent::Prompts;
use crate::audio::dtmf::{self, Key, Keys};
use crate::audio::recording::Audio;
use crate::config::{CallTimings, DtmfMode, VoicemailPolicy};
use crate::domain::{AnsweredBy, Outcome, OutcomeStatus, OutcomeWrite, Speaker, TranscriptLine};
use crate::phrases::Phrases;
use crate::realtime::events::{self as rt, ResponseRef, ServerEvent};
use crate::twilio::rest::UpdateFailure;
use crate::twilio::stream::{self as ts, StreamEvent};
use crate::twilio::twiml::{PlayDigits, LEAD_PAUSE};

#[cfg(test)]
mod tests;

/// How long Twilio has to end the stream after our REST hang-up before we
/// close it ourselves (which ends `<Connect>`, and so the call).
pub const HANGUP_CONFIRM: Duration = Duration::from_secs(10);
/// After the apology redirect, how long Twilio has to end the stream itself
/// (the apology plays after it; closing first could cut the call before it).
pub const APOLOGY_WAIT: Duration = Duration::from_secs(5);
/// Hang-up delay once the goodbye is sent and every mark has come back.
pub const LAST_WORDS: Duration = Duration::from_millis(300);
/// Playback item ids of keypad tones (never a model item).
const DTMF_ITEM: &str = "dtmf_";
/// After Twilio accepted a key-press update (`<Play digits>`, then a new
/// `<Connect><Stream>`), how long the new stream has to arrive before the
/// call ends as failed (issue 14: it must not hang). Also how long the
/// driver has to report Twilio's answer to the update.
pub const REJOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Before a key-press update, the agent's queued speech plays out; if its
/// marks have not all come back this long after it should have ended, the
/// rest is cleared and the keys pressed anyway.
pub const KEYS_WAIT_GRACE: Duration = Duration::from_secs(2);
/// Twilio's `w` pause (half a second) that leads the keys it plays
/// ([`LEAD_PAUSE`]): where the keys' tones go in a recording.
const LEAD_PAUSE_MS: u64 = 500;
/// Milliseconds of audio in one Twilio `media` frame.
const TWILIO_FRAME_MS: u64 = 20;

/// What the core is told about one call when it starts.
#[derive(Debug, Clone)]
pub struct CallSetup {
    /// Twilio's stream id: every frame sent to Twilio names it.
    pub stream_sid: String,
    /// Greeting wait, goodbye grace and timeout, call and silence limits.
    pub timings: CallTimings,
    /// What to do when an answering machine answers.
    pub voicemail: VoicemailPolicy,
    /// `--record`: hand the audio to the recorder ([`Action::Record`]).
    pub record: bool,
    /// What the restaurant hears from the server itself (the apologies), in
    /// the call's language.
    pub spoken: Phrases,
    /// What the model is told during the call.
    pub prompts: &'static Prompts,
    /// The system message that makes the model leave the voicemail message
    /// (built from the reservation, in the call's language).
    pub voicemail_message: String,
    /// How `send_dtmf` presses keys: through Twilio (a call update, then a
    /// new stream) or as tones inside the stream (`--dtmf`).
    pub dtmf: DtmfMode,
}

/// Where a call taken over from another stream stands (its stream landed on
/// an instance that did not hold its model session): see
/// [`CallState::resume`].
#[derive(Debug, Clone)]
pub struct Resume {
    /// Which stream of the call this is (2 or more).
    pub stream_number: u32,
    /// The call's clock when this stream started (ms since the first
    /// stream started).
    pub call_clock_ms: u64,
    /// The transcript so far, from the store, in order: the new model
    /// session is briefed with it.
    pub history: Vec<(Speaker, String)>,
}

/// A key press through Twilio, for the driver to send as a call update:
/// `<Play digits>` then a new `<Connect><Stream>` whose parameters are the
/// current stream's plus the continuation (stream number, call clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPress {
    /// The keys as `<Play digits>` plays them (with the lead pause).
    pub digits: PlayDigits,
    /// The number of the stream the update opens.
    pub stream_number: u32,
    /// The call's clock when the update is sent.
    pub call_clock_ms: u64,
}

/// Something that happened on the call.
#[derive(Debug)]
pub enum Input<'a> {
    /// A text frame from Twilio's Media Stream (after `start`).
    Twilio(&'a str),
    /// Twilio's socket closed, or failed, without `stop`.
    TwilioClosed,
    /// A text frame from the model.
    Model(&'a str),
    /// The model's connection closed or failed (why, for the record).
    ModelLost(String),
    /// The new model session asked for with [`Action::ReconnectModel`] is
    /// open and briefed.
    ModelReconnected,
    /// It could not be opened.
    ModelReconnectFailed,
    /// Twilio's answering-machine detection decided (the driver reads it
    /// from the store: the webhook may reach another instance).
    AnsweredBy(AnsweredBy),
    /// The drain time after a shutdown signal is over: end the call politely.
    Shutdown,
    /// Another instance took the call over: this instance's lease on it
    /// expired (it was judged dead, e.g. cut off from the database for too
    /// long) and a reaper finished the record and hung up. The call closes at
    /// once and writes nothing more, so the reaper's record stands.
    LeaseLost,
    /// The deadline [`CallState::poll_timeout`] gave has come.
    Timeout,
    /// Twilio accepted the key-press update of [`Action::PressKeys`]: the
    /// stream will end, Twilio plays the keys, a new stream opens.
    KeysAccepted,
    /// The key-press update failed: what that means for the call, and
    /// Twilio's words.
    KeysFailed(UpdateFailure, String),
    /// The call's new stream (after a key press) reached this instance and
    /// the driver now talks to it: its `streamSid`.
    StreamRejoined(String),
    /// The call's new stream reached another instance, which goes on with
    /// the call: this session yields (no outcome, no apology).
    StreamMoved,
}

/// What the driver must do, in the order given.
#[derive(Debug)]
pub enum Action {
    /// Send this text frame to Twilio. The frames of one input are fed
    /// together and flushed once.
    Twilio(String),
    /// Send this client event to the model (fed, then flushed once per input).
    Model(String),
    /// Write to the call store, in order, off the audio path.
    Store(Write),
    /// Give audio to the recorder (only with `--record`).
    Record(Audio),
    /// Ask Twilio (REST) to end the call, without waiting for the answer.
    HangUp,
    /// Replace the call's TwiML with this spoken apology and a hang-up (in
    /// the call's language: [`Phrases`]).
    Apologise(&'static str),
    /// Open a new model session with the same brief, then report
    /// [`Input::ModelReconnected`] or [`Input::ModelReconnectFailed`].
    ReconnectModel,
    /// Update the call through Twilio's REST API to press these keys and
    /// reconnect the stream; report [`Input::KeysAccepted`] or
    /// [`Input::KeysFailed`], then [`Input::StreamRejoined`] or
    /// [`Input::StreamMoved`] when the new stream arrives.
    PressKeys(KeyPress),
    /// The call is over: close both sockets.
    Close,
}

/// A write to the call store. Applied in order by the session's writer
/// task, so the database never stalls the audio.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// A transcript line.
    Line(TranscriptLine),
    /// The outcome, as a report or as a fallback.
    Outcome(Outcome, OutcomeWrite),
    /// A problem worth telling the person.
    Error(String),
}

/// Where the call is. One value, so that combinations that cannot happen
/// cannot be written down either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Nobody has spoken yet. At `until` the agent speaks first.
    Greeting {
        /// When the agent stops waiting for the callee's greeting.
        until: Instant,
    },
    /// The conversation.
    Talking,
    /// An outcome is recorded (`finish_call`, or an answering machine): the
    /// goodbye or the voicemail message is being said.
    Finishing {
        /// The goodbye reply's audio is complete (its `response.done` came).
        goodbye_sent: bool,
        /// Hang up then: a timeout until the goodbye is sent, then the end
        /// of its playback plus a grace.
        hang_up_at: Instant,
    },
    /// Twilio was asked to end the call.
    HungUp {
        /// Close the stream ourselves if Twilio has not ended it by then.
        give_up_at: Instant,
    },
    /// The call was ended on our side with a spoken apology; waiting for
    /// Twilio to end the stream.
    Apologising {
        /// Close the stream ourselves then.
        close_at: Instant,
    },
    /// Keys are being pressed through Twilio ([`DtmfMode::Twilio`]): first
    /// the agent's queued speech plays out, then the call update is sent and
    /// its answer awaited.
    PressingKeys {
        /// The update ([`Action::PressKeys`]) was sent.
        update_sent: bool,
        /// Before it is sent: send it then even if speech is still queued.
        /// After: give up waiting for Twilio's answer then.
        until: Instant,
    },
    /// Twilio accepted the update: the old stream ends, Twilio plays the
    /// keys, and the call's new stream is awaited.
    Rejoining {
        /// The new stream has not come by then: the call ends as failed.
        give_up_at: Instant,
    },
    /// Over: [`Action::Close`] was given.
    Closed,
}

/// A key press through Twilio under way.
#[derive(Debug)]
struct PendingKeys {
    /// The `send_dtmf` call to answer.
    call_id: String,
    keys: Keys,
    digits: PlayDigits,
    /// The call's clock when the update was sent.
    clock_at_update: u64,
    /// When the update was sent (the gap is counted from then).
    sent_at: Option<Instant>,
    /// The transcript line and the tool output were given (once the update
    /// is known to have landed).
    told: bool,
}

/// One agent item (a spoken reply) as far as the call is concerned.
#[derive(Debug, Default)]
struct AgentItem {
    /// Audio clock when its first audio was forwarded: where its line goes
    /// on the transcript.
    started_at_ms: Option<u64>,
    /// Its transcript line.
    line: AgentLine,
    /// Cut off by a barge-in: how much of it the callee heard.
    cut: Option<Heard>,
}

/// The transcript line of an agent item.
#[derive(Debug, Default)]
enum AgentLine {
    /// The model has not given its words yet.
    #[default]
    Unknown,
    /// The words, waiting for their audio to be heard (or cut).
    Pending(String),
    /// On the transcript (each item is written once).
    Written,
}

/// How much of an agent item was heard when it was cut off.
#[derive(Debug, Clone, Copy)]
struct Heard {
    /// Milliseconds the callee heard.
    heard_ms: u64,
    /// Milliseconds that had been forwarded.
    sent_ms: u64,
}

/// One model reply (`response`).
#[derive(Debug, Default)]
struct Reply {
    /// Some of its audio was forwarded.
    had_audio: bool,
    /// Cut off by a barge-in: the rest of its audio is dropped.
    discarded: bool,
}

/// The one reconnection a call may make when the model connection drops.
#[derive(Debug)]
enum Reconnect {
    /// Not used yet.
    Available,
    /// Asked for; the connection was lost for this reason.
    Pending(String),
    /// Used.
    Spent,
}

/// Why the call ended.
#[derive(Debug)]
enum End {
    /// Twilio sent `stop`.
    Stopped,
    /// Twilio's socket closed without `stop` (or never ended after a hang-up).
    TwilioClosed,
    /// The model connection was lost (and could not be restored).
    ModelLost(String),
    /// A limit (call length, silence) was reached.
    Limit(String),
    /// The server is shutting down and the drain time is over.
    Shutdown,
    /// After a key press through Twilio, the new stream never came.
    NoNewStream,
    /// A call update found the call over.
    CallOver,
}

/// The state of one live call, from the stream's `start` to its end.
#[derive(Debug)]
pub struct CallState {
    setup: CallSetup,
    phase: Phase,
    /// Latest inbound `media.timestamp`: the call's audio clock (ms).
    clock_ms: u64,
    playback: Playback,
    /// The model's reply in progress, if any.
    active_response: Option<String>,
    replies: HashMap<String, Reply>,
    items: HashMap<String, AgentItem>,
    /// Call audio clock where each callee item's speech began.
    callee_started_at: HashMap<String, u64>,
    /// Call audio clock when the current model session started (its
    /// `audio_start_ms` count from there; non-zero after a reconnect).
    model_clock_offset_ms: u64,
    handled_tool_calls: HashSet<String>,
    /// Ask for a reply when the current one is done (after a tool output).
    create_after_done: bool,
    reconnect: Reconnect,
    /// Lines spoken so far (to restore a new model session).
    history: Vec<(Speaker, String)>,
    /// When the call-length limit ends the call.
    call_deadline: Instant,
    /// Last time anybody spoke (for the silence limit).
    last_activity: Instant,
    bad_frames: u64,
    truncate_seq: u64,
    /// Which stream of the call is current (1: the first).
    stream_number: u32,
    /// The call's clock when the current stream started: its
    /// `media.timestamp`s count from there.
    stream_offset_ms: u64,
    /// The current stream has not ended (`stop` or close).
    stream_open: bool,
    /// A key press through Twilio under way.
    key_press: Option<PendingKeys>,
    /// Twilio refused a key-press update: later keys play in-band.
    keys_inband: bool,
    /// With `append_ms` above 20: the callee's frames held to be joined.
    inbound: Option<Joiner>,
}

impl CallState {
    /// A call whose stream started (and whose model session opened) at `now`.
    pub fn new(setup: CallSetup, now: Instant) -> CallState {
        let timings = &setup.timings;
        let inbound = (timings.append_ms > TWILIO_FRAME_MS)
            .then(|| Joiner::new(timings.append_ms, timings.append_join));
        CallState {
            phase: Phase::Greeting {
                until: now + timings.greeting_wait,
            },
            call_deadline: now + timings.max_call,
            last_activity: now,
            setup,
            clock_ms: 0,
            playback: Playback::default(),
            active_response: None,
            replies: HashMap::new(),
            items: HashMap::new(),
            callee_started_at: HashMap::new(),
            model_clock_offset_ms: 0,
            handled_tool_calls: HashSet::new(),
            create_after_done: false,
            reconnect: Reconnect::Available,
            history: Vec::new(),
            bad_frames: 0,
            truncate_seq: 0,
            stream_number: 1,
            stream_offset_ms: 0,
            stream_open: true,
            key_press: None,
            keys_inband: false,
            inbound,
        }
    }

    /// A call whose new stream (after a key press through Twilio) reached
    /// this instance, which did not hold its model session: the new session
    /// (opened at `now`) gets the conversation so far, and the call's clock
    /// goes on from `resume.call_clock_ms`. The agent does not speak first:
    /// keys were just pressed, and whoever answers speaks next.
    pub fn resume(
        setup: CallSetup,
        resume: Resume,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> CallState {
        let mut call = CallState::new(setup, now);
        call.phase = Phase::Talking;
        call.stream_number = resume.stream_number;
        call.stream_offset_ms = resume.call_clock_ms;
        call.clock_ms = resume.call_clock_ms;
        call.model_clock_offset_ms = resume.call_clock_ms;
        call.history = resume.history;
        let restore = call.setup.prompts.restore(&call.history);
        out.push(Action::Model(rt::text_item("system", &restore)));
        info!(
            stream_number = call.stream_number,
            call_clock_ms = call.clock_ms,
            restored_lines = call.history.len(),
            "call resumed on a new stream"
        );
        call
    }

    /// Which stream of the call is current (1: the first).
    pub fn stream_number(&self) -> u32 {
        self.stream_number
    }

    /// Where the call is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Malformed or unexpected Twilio frames ignored so far.
    pub fn bad_frames(&self) -> u64 {
        self.bad_frames
    }

    /// When the core next needs [`Input::Timeout`] (`None`: no deadline).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let phase = match self.phase {
            Phase::Greeting { until } => Some(until),
            Phase::Finishing { hang_up_at, .. } => Some(hang_up_at),
            Phase::HungUp { give_up_at } => Some(give_up_at),
            Phase::Apologising { close_at } => Some(close_at),
            Phase::PressingKeys { until, .. } => Some(until),
            Phase::Rejoining { give_up_at } => Some(give_up_at),
            Phase::Talking | Phase::Closed => None,
        };
        let limits = self
            .is_live()
            .then(|| self.call_deadline.min(self.silence_deadline()));
        phase.into_iter().chain(limits).min()
    }

    /// Decide what `input`, arriving at `now`, calls for; the actions are
    /// appended to `out` (the driver carries them out and clears it).
    pub fn handle(&mut self, input: Input<'_>, now: Instant, out: &mut Vec<Action>) {
        // Whatever the phase, frames must name the stream the driver talks to.
        if let Input::StreamRejoined(stream_sid) = input {
            return self.on_stream_rejoined(stream_sid, now, out);
        }
        match self.phase {
            Phase::Closed => return,
            _ if matches!(input, Input::LeaseLost) => return self.on_lease_lost(out),
            Phase::Apologising { close_at } => {
                // Only the end of the stream matters now.
                let ended = match input {
                    Input::Twilio(text) => {
                        matches!(StreamEvent::parse(text), Ok(StreamEvent::Stop {}))
                    }
                    Input::TwilioClosed => true,
                    Input::Timeout => now >= close_at,
                    _ => false,
                };
                if ended {
                    self.close(out);
                }
                return;
            }
            _ => {}
        }
        match input {
            Input::Twilio(text) => self.on_twilio(text, now, out),
            Input::TwilioClosed if self.between_streams() => self.old_stream_ended(out),
            Input::TwilioClosed => self.end(End::TwilioClosed, now, out),
            Input::Model(text) => self.on_model(text, now, out),
            Input::ModelLost(why) => self.on_model_lost(why, now, out),
            Input::ModelReconnected => self.on_model_reconnected(out),
            Input::ModelReconnectFailed => {
                let why = match std::mem::replace(&mut self.reconnect, Reconnect::Spent) {
                    Reconnect::Pending(why) => why,
                    _ => "the model connection ended".to_string(),
                };
                self.end(End::ModelLost(why), now, out);
            }
            Input::AnsweredBy(who) => self.on_answered_by(who, now, out),
            Input::Shutdown => {
                // A call already hanging up ends by itself.
                if self.is_live() {
                    self.end(End::Shutdown, now, out);
                }
            }
            Input::Timeout => self.on_timeout(now, out),
            Input::KeysAccepted => self.on_keys_accepted(now, out),
            Input::KeysFailed(failure, why) => self.on_keys_failed(failure, &why, now, out),
            Input::StreamRejoined(_) => {}
            Input::StreamMoved => {
                if self.between_streams() {
                    info!("the call's new stream reached another instance; it goes on there");
                    self.flush_pending_lines(false, out);
                    self.close(out);
                }
            }
            Input::LeaseLost => self.on_lease_lost(out),
        }
    }

    /// The record is the reaper's now (finished `failed`, the line hung up
    /// through Twilio's REST API): close without a line, an outcome or an
    /// apology, whatever phase the call was in. What is still waiting to be
    /// heard is dropped, and said so in the log.
    fn on_lease_lost(&mut self, out: &mut Vec<Action>) {
        if self.between_streams() {
            // Not a reaper: the instance the call's new stream reached took
            // the lease, and goes on with the call (as `StreamMoved`).
            info!("the call's new stream reached another instance, which took its lease; closing");
            return self.close(out);
        }
        let unwritten = self
            .items
            .values()
            .filter(|i| matches!(i.line, AgentLine::Pending(_)))
            .count();
        warn!(
            unwritten,
            "another instance finished this call (its lease was lost); closing without writing"
        );
        self.close(out);
    }

    /// Greeting, talking or finishing: the limits apply and the call may
    /// still end politely.
    fn is_live(&self) -> bool {
        matches!(
            self.phase,
            Phase::Greeting { .. }
                | Phase::Talking
                | Phase::Finishing { .. }
                | Phase::PressingKeys { .. }
                | Phase::Rejoining { .. }
        )
    }

    /// The key-press update was sent: the current stream is going away (or
    /// gone) and the next one is awaited.
    fn between_streams(&self) -> bool {
        matches!(
            self.phase,
            Phase::PressingKeys {
                update_sent: true,
                ..
            } | Phase::Rejoining { .. }
        )
    }

    fn silence_deadline(&self) -> Instant {
        self.last_activity + self.setup.timings.max_silence
    }

    /// Somebody spoke: the agent no longer waits for a greeting.
    fn greeting_over(&mut self) {
        if let Phase::Greeting { .. } = self.phase {
            self.phase = Phase::Talking;
        }
    }

    fn on_timeout(&mut self, now: Instant, out: &mut Vec<Action>) {
        match self.phase {
            Phase::Greeting { until } if now >= until => {
                self.phase = Phase::Talking;
                if self.active_response.is_none() {
                    info!("no greeting from the callee; the agent speaks first");
                    out.push(Action::Model(rt::response_create(None)));
                }
            }
            Phase::Finishing { hang_up_at, .. } if now >= hang_up_at => {
                self.hang_up("goodbye played (or its grace period ran out)", now, out);
            }
            Phase::HungUp { give_up_at } if now >= give_up_at => {
                warn!("Twilio did not end the stream after the hang-up; closing it");
                self.end(End::TwilioClosed, now, out);
                return;
            }
            Phase::PressingKeys {
                update_sent: false,
                until,
            } if now >= until => self.maybe_send_keys(now, out),
            Phase::PressingKeys {
                update_sent: true,
                until,
            } if now >= until => {
                let why = "no answer from Twilio to the key-press update";
                self.on_keys_failed(UpdateFailure::Unknown, why, now, out);
            }
            Phase::Rejoining { give_up_at } if now >= give_up_at => {
                if self.stream_open {
                    // The old stream never ended: the update did not land.
                    let why = "Twilio did not apply the call update";
                    self.keys_not_pressed(why, now, out);
                } else {
                    self.end(End::NoNewStream, now, out);
                    return;
                }
            }
            _ => {}
        }
        if !self.is_live() {
            return;
        }
        let timings = &self.setup.timings;
        if now >= self.call_deadline {
            let why = format!(
                "the call reached its {} s limit",
                timings.max_call.as_secs()
            );
            self.end(End::Limit(why), now, out);
        } else if now >= self.silence_deadline() {
            let why = format!("nobody spoke for {} s", timings.max_silence.as_secs());
            self.end(End::Limit(why), now, out);
        }
    }

    fn count_bad_frame(&mut self) {
        self.bad_frames += 1;
        if self.bad_frames == 1 {
            warn!("ignoring a malformed or unexpected media stream frame (further ones are counted, not logged)");
        }
    }

    fn on_twilio(&mut self, text: &str, now: Instant, out: &mut Vec<Action>) {
        let Ok(event) = StreamEvent::parse(text) else {
            self.count_bad_frame();
            return;
        };
        match event {
            StreamEvent::Media { media } => {
                // The call's clock: this stream's timestamps count from its start.
                let timestamp = media.timestamp_ms().map(|ts| self.stream_offset_ms + ts);
                if let Some(ts) = timestamp {
                    self.clock_ms = self.clock_ms.max(ts);
                }
                match &mut self.inbound {
                    // Twilio's frame as is: checked, not decoded.
                    None if rt::is_base64_text(&media.payload) => {
                        let mut append = String::with_capacity(media.payload.len() + 56);
                        rt::input_audio_append(&media.payload, &mut append);
                        out.push(Action::Model(append));
                    }
                    // Joined frames (the joiner decodes, and so checks, them).
                    Some(joiner) => match joiner.push(&media.payload) {
                        Ok(Some(append)) => out.push(Action::Model(append)),
                        Ok(None) => {}
                        Err(NotBase64) => {
                            self.count_bad_frame();
                            return;
                        }
                    },
                    None => {
                        self.count_bad_frame();
                        return;
                    }
                }
                if let (true, Some(ts)) = (self.setup.record, timestamp) {
                    out.push(Action::Record(Audio::Inbound(
                        ts,
                        media.payload.into_owned(),
                    )));
                }
            }
            StreamEvent::Mark { .. } if self.between_streams() => {}
            StreamEvent::Mark { mark } => {
                let echo = self.playback.mark_echoed(&mark.name, self.clock_ms);
                if let Echo::Played { item_id, .. } = &echo {
                    if !self.playback.is_playing(item_id) {
                        self.flush_agent_line(item_id, out);
                    }
                }
                if echo == Echo::Unknown {
                    debug!(mark = %mark.name, "unknown mark echoed");
                }
                self.maybe_schedule_hangup(now);
                self.maybe_send_keys(now, out);
            }
            StreamEvent::Dtmf { dtmf } => {
                let mut chars = dtmf.digit.chars();
                match (chars.next().map(Key::parse), chars.next()) {
                    (Some(Ok(key)), None) => self.on_callee_key(key, out),
                    _ => self.count_bad_frame(),
                }
            }
            StreamEvent::Stop {} if self.between_streams() => self.old_stream_ended(out),
            StreamEvent::Stop {} => self.end(End::Stopped, now, out),
            StreamEvent::Start { .. } | StreamEvent::Connected { .. } | StreamEvent::Other => {
                self.count_bad_frame()
            }
        }
    }

    /// The restaurant pressed a key: it goes on the transcript and the model
    /// is told (it cannot hear tones as words).
    fn on_callee_key(&mut self, key: Key, out: &mut Vec<Action>) {
        info!(digit = %key, "the callee pressed a key");
        let prompts = self.setup.prompts;
        self.write_line(Speaker::Callee, prompts.pressed(key), self.clock_ms, out);
        let note = prompts.callee_pressed(key);
        out.push(Action::Model(rt::text_item("user", &note)));
    }

    fn on_model(&mut self, text: &str, now: Instant, out: &mut Vec<Action>) {
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
            } => self.on_audio_delta(&response_id, &item_id, &delta, now, out),
            ServerEvent::AudioDone { item_id, .. } => {
                self.mark_tail(out);
                self.playback.audio_done(&item_id);
            }
            ServerEvent::SpeechStarted {
                audio_start_ms,
                item_id,
            } => {
                self.last_activity = now;
                self.greeting_over();
                if let Some(joiner) = &mut self.inbound {
                    joiner.model_heard_speech();
                }
                self.callee_started_at.insert(
                    item_id.into_owned(),
                    self.model_clock_offset_ms + audio_start_ms,
                );
                self.barge_in(out);
            }
            ServerEvent::SpeechStopped { .. } => {
                self.last_activity = now;
                if let Some(joiner) = &mut self.inbound {
                    joiner.model_ended_the_turn();
                }
            }
            ServerEvent::InputTranscriptionCompleted {
                item_id,
                transcript,
            } => {
                let text = transcript.trim();
                if !text.is_empty() {
                    let at_ms = self
                        .callee_started_at
                        .get(item_id.as_ref())
                        .copied()
                        .unwrap_or(self.clock_ms);
                    self.write_line(Speaker::Callee, text.to_string(), at_ms, out);
                }
            }
            ServerEvent::InputTranscriptionFailed { item_id, error } => {
                debug!(item_id = %item_id, error = %error, "callee transcription failed");
            }
            ServerEvent::AudioTranscriptDone {
                item_id,
                transcript,
                ..
            } => self.agent_said(&item_id, &transcript, out),
            ServerEvent::ResponseCreated { response } => {
                self.replies
                    .insert(response.id.to_string(), Reply::default());
                self.active_response = Some(response.id.into_owned());
            }
            ServerEvent::OutputItemDone { item, .. } => {
                if item.kind == "function_call"
                    && item.status.as_deref().unwrap_or("completed") == "completed"
                {
                    if let (Some(call_id), Some(name)) =
                        (item.call_id.as_deref(), item.name.as_deref())
                    {
                        let arguments = item.arguments.as_deref().unwrap_or("{}");
                        self.on_tool_call(call_id, name, arguments, now, out);
                    }
                }
            }
            ServerEvent::ResponseDone { response } => self.on_response_done(response, now, out),
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

    /// A chunk of the agent's voice: forward it with a mark behind it.
    fn on_audio_delta(
        &mut self,
        response_id: &str,
        item_id: &str,
        delta: &str,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if !rt::is_base64_text(delta) {
            return;
        }
        if self.between_streams() {
            return self.drop_audio_between_streams(response_id, item_id, out);
        }
        // Look before inserting: keys are allocated once per reply and per
        // item, not per chunk.
        match self.replies.get_mut(response_id) {
            Some(reply) if reply.discarded => return,
            Some(reply) => reply.had_audio = true,
            None => {
                self.replies.insert(
                    response_id.to_string(),
                    Reply {
                        had_audio: true,
                        discarded: false,
                    },
                );
            }
        }
        self.greeting_over();
        self.last_activity = now;
        let clock_ms = self.clock_ms;
        match self.items.get_mut(item_id) {
            Some(item) => {
                item.started_at_ms.get_or_insert(clock_ms);
            }
            None => {
                self.items.insert(
                    item_id.to_string(),
                    AgentItem {
                        started_at_ms: Some(clock_ms),
                        ..AgentItem::default()
                    },
                );
            }
        }
        let bytes = rt::base64_decoded_len(delta) as u64;
        let every_ms = self.setup.timings.mark_ms;
        let mark_name = self
            .playback
            .audio_sent_every(item_id, bytes, clock_ms, every_ms);
        let mut media = String::with_capacity(delta.len() + 96);
        ts::media(&self.setup.stream_sid, delta, &mut media);
        out.push(Action::Twilio(media));
        if let Some(name) = mark_name {
            out.push(Action::Twilio(ts::mark(&self.setup.stream_sid, &name)));
        }
        if self.setup.record {
            out.push(Action::Record(Audio::Outbound(clock_ms, delta.to_string())));
        }
    }

    /// Mark the agent audio sent since the last mark (its item ended).
    fn mark_tail(&mut self, out: &mut Vec<Action>) {
        if let Some(name) = self.playback.mark_tail() {
            out.push(Action::Twilio(ts::mark(&self.setup.stream_sid, &name)));
        }
    }

    fn on_response_done(&mut self, response: ResponseRef<'_>, now: Instant, out: &mut Vec<Action>) {
        // Its audio is over even if `output_audio.done` went missing.
        self.mark_tail(out);
        let reply = self
            .replies
            .remove(response.id.as_ref())
            .unwrap_or_default();
        if self.active_response.as_deref() == Some(response.id.as_ref()) {
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
                    self.agent_said(id, &words.join(" "), out);
                }
            }
        }
        // Tool calls missed as separate events still count (once per call_id).
        for item in &response.output {
            if item.kind == "function_call" {
                if let (Some(call_id), Some(name)) = (item.call_id.as_deref(), item.name.as_deref())
                {
                    let arguments = item.arguments.as_deref().unwrap_or("{}");
                    self.on_tool_call(call_id, name, arguments, now, out);
                }
            }
        }
        if let Phase::Finishing { goodbye_sent, .. } = &mut self.phase {
            if reply.had_audio && !self.create_after_done {
                *goodbye_sent = true;
            }
        }
        if self.create_after_done {
            self.create_after_done = false;
            out.push(Action::Model(rt::response_create(None)));
        }
        self.maybe_schedule_hangup(now);
    }

    /// The callee talks over the agent: stop the audio at once, and tell the
    /// model how much of its reply was heard.
    fn barge_in(&mut self, out: &mut Vec<Action>) {
        let Some(cut) = self.playback.interrupt(self.clock_ms) else {
            return;
        };
        out.push(Action::Twilio(ts::clear(&self.setup.stream_sid)));
        if self.setup.record {
            out.push(Action::Record(Audio::Clear(self.clock_ms)));
        }
        self.discard_active_reply();
        // Keypad tones are ours, not the model's: there is nothing to truncate.
        for c in cut
            .truncates
            .iter()
            .filter(|c| !c.item_id.starts_with(DTMF_ITEM))
        {
            info!(item_id = %c.item_id, audio_end_ms = c.audio_end_ms, sent_ms = c.sent_ms, "barge-in: the callee spoke over the agent");
            self.truncate_seq += 1;
            let event_id = format!("client_truncate_{}", self.truncate_seq);
            out.push(Action::Model(rt::item_truncate(
                &event_id,
                &c.item_id,
                c.audio_end_ms,
            )));
            self.item_mut(&c.item_id).cut = Some(Heard {
                heard_ms: c.audio_end_ms,
                sent_ms: c.sent_ms,
            });
            self.flush_agent_line(&c.item_id, out);
        }
    }

    /// The reply in progress will not be heard: drop the rest of its audio.
    fn discard_active_reply(&mut self) {
        if let Some(active) = &self.active_response {
            match self.replies.get_mut(active) {
                Some(reply) => reply.discarded = true,
                None => {
                    self.replies.insert(
                        active.clone(),
                        Reply {
                            had_audio: false,
                            discarded: true,
                        },
                    );
                }
            }
        }
    }

    /// The state of `item_id`, made if new (not on the audio path: a
    /// delta looks its item up before allocating a key).
    fn item_mut(&mut self, item_id: &str) -> &mut AgentItem {
        self.items.entry(item_id.to_string()).or_default()
    }

    /// Put a line on the transcript (and in the history a reconnect restores).
    fn write_line(&mut self, speaker: Speaker, text: String, at_ms: u64, out: &mut Vec<Action>) {
        let who = match speaker {
            Speaker::Agent => "agent",
            Speaker::Callee => "callee",
        };
        info!(speaker = who, at_ms, "{text}");
        self.history.push((speaker, text.clone()));
        out.push(Action::Store(Write::Line(TranscriptLine {
            speaker,
            text,
            at_ms,
        })));
    }

    /// The model's words for an agent item: write them once the audio is
    /// heard (now, if nothing of it is still playing).
    fn agent_said(&mut self, item_id: &str, text: &str, out: &mut Vec<Action>) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        let item = self.item_mut(item_id);
        if let AgentLine::Written = item.line {
            return;
        }
        item.line = AgentLine::Pending(text.to_string());
        if !self.playback.is_playing(item_id) {
            self.flush_agent_line(item_id, out);
        }
    }

    /// Write an agent line: in full, or the words heard before a barge-in.
    fn flush_agent_line(&mut self, item_id: &str, out: &mut Vec<Action>) {
        let Some(item) = self.items.get_mut(item_id) else {
            return;
        };
        if !matches!(item.line, AgentLine::Pending(_)) {
            return;
        }
        let AgentLine::Pending(text) = std::mem::replace(&mut item.line, AgentLine::Written) else {
            return;
        };
        let at_ms = item.started_at_ms.unwrap_or(self.clock_ms);
        let text = match item.cut {
            Some(h) => cut_text(&text, h.heard_ms, h.sent_ms.max(1)),
            None => text,
        };
        if !text.is_empty() {
            self.write_line(Speaker::Agent, text, at_ms, out);
        }
    }

    /// Write every agent line still waiting, in the order they were spoken.
    /// `cut_unheard`: the call is over, so what had not played yet was not
    /// heard (after a reconnect it still plays, and is written in full).
    fn flush_pending_lines(&mut self, cut_unheard: bool, out: &mut Vec<Action>) {
        let mut pending: Vec<(u64, String)> = self
            .items
            .iter()
            .filter(|(_, item)| matches!(item.line, AgentLine::Pending(_)))
            .map(|(id, item)| (item.started_at_ms.unwrap_or(u64::MAX), id.clone()))
            .collect();
        pending.sort();
        for (_, id) in pending {
            if cut_unheard {
                if let (Some(heard_ms), Some(sent_ms)) = (
                    self.playback.heard_ms_of(&id, self.clock_ms),
                    self.playback.item_sent_ms(&id),
                ) {
                    self.item_mut(&id).cut = Some(Heard { heard_ms, sent_ms });
                }
            }
            self.flush_agent_line(&id, out);
        }
    }

    fn on_tool_call(
        &mut self,
        call_id: &str,
        name: &str,
        arguments: &str,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if !self.handled_tool_calls.insert(call_id.to_string()) {
            return;
        }
        let prompts = self.setup.prompts;
        // After keys are pressed the agent waits for the line to speak, so no reply is asked for.
        let mut reply = true;
        let output = match ToolCall::parse(name, arguments) {
            Ok(ToolCall::FinishCall(outcome)) => {
                info!(status = %outcome.status, "outcome: {}", outcome.describe());
                let machine = outcome.status == OutcomeStatus::Voicemail;
                out.push(Action::Store(Write::Outcome(outcome, OutcomeWrite::Report)));
                match (machine, self.setup.voicemail) {
                    (true, VoicemailPolicy::Hangup) => {
                        self.hang_up("the agent reached an answering machine", now, out);
                        return;
                    }
                    (true, VoicemailPolicy::Leave) => {
                        self.start_finishing(now + MESSAGE_TIMEOUT);
                        json!({"recorded": true, "next": self.setup.voicemail_message})
                    }
                    (false, _) => {
                        self.start_finishing(now + self.setup.timings.goodbye_timeout);
                        json!({"recorded": true, "next": prompts.say_goodbye_now})
                    }
                }
            }
            Ok(ToolCall::SendDtmf(_)) if self.key_press.is_some() => {
                reply = false;
                json!({"error": prompts.keys_busy})
            }
            Ok(ToolCall::SendDtmf(keys)) => {
                if self.setup.dtmf == DtmfMode::Twilio
                    && !self.keys_inband
                    && matches!(self.phase, Phase::Greeting { .. } | Phase::Talking)
                {
                    match PlayDigits::press(&keys.to_string()) {
                        Ok(digits) => {
                            // Answered once Twilio answers the update.
                            return self.start_key_press(call_id, keys, digits, now, out);
                        }
                        // Not one of today's keys (0-9 * # are all playable),
                        // but a key Twilio cannot press still gets pressed.
                        Err(e) => warn!(error = %e, "pressing the keys in-band instead"),
                    }
                }
                self.press_keys(&keys, out);
                reply = false;
                json!({"done": true, "pressed": keys.to_string(), "next": prompts.keys_played_wait})
            }
            Err(e) => {
                warn!(tool = %name, error = %e, "the model called a tool wrongly");
                json!({"error": e.0})
            }
        };
        out.push(Action::Model(rt::function_call_output(call_id, &output)));
        if reply {
            self.ask_for_reply(None, out);
        }
    }

    /// Ask the model to speak: now, or when its reply in progress is done.
    fn ask_for_reply(&mut self, instructions: Option<&str>, out: &mut Vec<Action>) {
        if self.active_response.is_some() {
            self.create_after_done = true;
        } else {
            out.push(Action::Model(rt::response_create(instructions)));
        }
    }

    /// The outcome is known: say goodbye, and hang up by `hang_up_at` at
    /// the latest (unless the goodbye's playback decides otherwise).
    fn start_finishing(&mut self, hang_up_at: Instant) {
        if self.is_live() {
            self.phase = Phase::Finishing {
                goodbye_sent: false,
                hang_up_at,
            };
        }
    }

    /// Play the keys in-band (the Media Stream has no "send digits"), after
    /// anything still queued at Twilio.
    fn press_keys(&mut self, keys: &Keys, out: &mut Vec<Action>) {
        info!(digits = %keys, "pressing keys");
        let audio = dtmf::tones(keys);
        let bytes = audio.len() as u64;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&audio);
        let item_id = format!(
            "{DTMF_ITEM}{keys}_{}_{}",
            self.clock_ms,
            self.handled_tool_calls.len()
        );
        if self.setup.record {
            out.push(Action::Record(Audio::OutboundMulaw(self.clock_ms, audio)));
        }
        // The keys go on the transcript too, where they play (after any
        // speech still queued at Twilio).
        let at_ms = self.clock_ms + self.playback.unplayed_ms(self.clock_ms);
        let line = self.setup.prompts.pressed(keys);
        self.write_line(Speaker::Agent, line, at_ms, out);
        let mark_name = self.playback.audio_sent(&item_id, bytes, self.clock_ms);
        self.playback.audio_done(&item_id);
        let mut media = String::with_capacity(b64.len() + 96);
        ts::media(&self.setup.stream_sid, &b64, &mut media);
        out.push(Action::Twilio(media));
        out.push(Action::Twilio(ts::mark(&self.setup.stream_sid, &mark_name)));
    }

    /// `send_dtmf` in [`DtmfMode::Twilio`]: let the agent's queued speech
    /// play out, then ask the driver to update the call.
    fn start_key_press(
        &mut self,
        call_id: &str,
        keys: Keys,
        digits: PlayDigits,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        info!(digits = %keys, "pressing keys through Twilio");
        let unplayed = Duration::from_millis(self.playback.unplayed_ms(self.clock_ms));
        self.key_press = Some(PendingKeys {
            call_id: call_id.to_string(),
            keys,
            digits,
            clock_at_update: self.clock_ms,
            sent_at: None,
            told: false,
        });
        self.phase = Phase::PressingKeys {
            update_sent: false,
            until: now + unplayed + KEYS_WAIT_GRACE,
        };
        self.maybe_send_keys(now, out);
    }

    /// Send the key-press update once nothing of the agent's speech is
    /// waiting at Twilio (or the wait is over: then what is left is cleared,
    /// so it cannot play after the keys, twilio.md 5.10).
    fn maybe_send_keys(&mut self, now: Instant, out: &mut Vec<Action>) {
        let Phase::PressingKeys {
            update_sent: false,
            until,
        } = self.phase
        else {
            return;
        };
        if !self.playback.is_idle() {
            if now < until {
                return;
            }
            warn!("the agent's speech did not finish playing; clearing it to press the keys");
            self.barge_in(out);
        }
        let clock_ms = self.clock_ms;
        let Some(keys) = self.key_press.as_mut() else {
            return;
        };
        keys.clock_at_update = clock_ms;
        keys.sent_at = Some(now);
        out.push(Action::PressKeys(KeyPress {
            digits: keys.digits.clone(),
            stream_number: self.stream_number.saturating_add(1),
            call_clock_ms: clock_ms,
        }));
        self.last_activity = now;
        self.phase = Phase::PressingKeys {
            update_sent: true,
            until: now + REJOIN_TIMEOUT,
        };
    }

    /// Twilio accepted the update: the keys will be played; the new stream
    /// is awaited.
    fn on_keys_accepted(&mut self, now: Instant, out: &mut Vec<Action>) {
        if !matches!(
            self.phase,
            Phase::PressingKeys {
                update_sent: true,
                ..
            }
        ) {
            return;
        }
        self.phase = Phase::Rejoining {
            give_up_at: now + REJOIN_TIMEOUT,
        };
        self.keys_pressed(out);
    }

    /// The keys were (or are being) played on the line: the transcript shows
    /// them once, the recording gets their tones where Twilio plays them,
    /// and the agent is told to wait for the line.
    fn keys_pressed(&mut self, out: &mut Vec<Action>) {
        let Some(keys) = self.key_press.as_mut() else {
            return;
        };
        if keys.told {
            return;
        }
        keys.told = true;
        let (call_id, pressed, at_ms) = (
            keys.call_id.clone(),
            keys.keys.clone(),
            keys.clock_at_update,
        );
        let prompts = self.setup.prompts;
        if self.setup.record {
            let tones = dtmf::tones(&pressed);
            out.push(Action::Record(Audio::OutboundMulaw(
                at_ms + LEAD_PAUSE_MS * LEAD_PAUSE.len() as u64,
                tones,
            )));
        }
        self.write_line(Speaker::Agent, prompts.pressed(&pressed), at_ms, out);
        let output =
            json!({"done": true, "pressed": pressed.to_string(), "next": prompts.keys_played_wait});
        out.push(Action::Model(rt::function_call_output(&call_id, &output)));
    }

    /// The key-press update failed.
    fn on_keys_failed(
        &mut self,
        failure: UpdateFailure,
        why: &str,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if !matches!(
            self.phase,
            Phase::PressingKeys {
                update_sent: true,
                ..
            }
        ) {
            return;
        }
        match failure {
            UpdateFailure::CallOver => {
                info!("the key-press update found the call over ({why})");
                self.end(End::CallOver, now, out);
            }
            UpdateFailure::Refused if self.stream_open => self.keys_not_pressed(why, now, out),
            // Refused, yet the stream is gone: nothing can carry the call on.
            UpdateFailure::Refused => self.end(End::NoNewStream, now, out),
            UpdateFailure::Unknown => {
                // It may have landed: the old stream's end will tell (then
                // the keys are being played), or the deadline will.
                warn!("no clear answer to the key-press update ({why}); watching the stream");
                self.phase = Phase::Rejoining {
                    give_up_at: now + REJOIN_TIMEOUT,
                };
                if !self.stream_open {
                    self.keys_pressed(out);
                }
            }
        }
    }

    /// The keys were not pressed and the stream goes on: the agent is told,
    /// and its next `send_dtmf` plays them in-band.
    fn keys_not_pressed(&mut self, why: &str, now: Instant, out: &mut Vec<Action>) {
        let Some(keys) = self.key_press.take() else {
            return;
        };
        warn!("Twilio did not press the keys ({why}); later keys are played in-band");
        self.keys_inband = true;
        self.phase = Phase::Talking;
        self.last_activity = now;
        let prompts = self.setup.prompts;
        if keys.told {
            // The agent was told they were pressed: correct that.
            out.push(Action::Model(rt::text_item(
                "system",
                prompts.keys_refused_try_tones,
            )));
        } else {
            let output = json!({
                "error": format!("Twilio did not press the keys: {why}"),
                "next": prompts.keys_refused_try_tones,
            });
            out.push(Action::Model(rt::function_call_output(
                &keys.call_id,
                &output,
            )));
        }
        self.ask_for_reply(None, out);
    }

    /// The old stream ended (`stop` or its socket closed) after the update:
    /// Twilio applied it and plays the keys.
    fn old_stream_ended(&mut self, out: &mut Vec<Action>) {
        if !self.stream_open {
            return;
        }
        info!("the stream ended for the key press; waiting for the new one");
        self.stream_open = false;
        if let Phase::Rejoining { .. } = self.phase {
            self.keys_pressed(out);
        }
    }

    /// The driver now talks to the call's new stream `stream_sid`: its
    /// timestamps count on from the call's clock (the gap included), its
    /// marks are new, and the conversation goes on.
    fn on_stream_rejoined(&mut self, stream_sid: String, now: Instant, out: &mut Vec<Action>) {
        let (clock_at_update, sent_at) = match &self.key_press {
            Some(k) => (k.clock_at_update, k.sent_at.unwrap_or(now)),
            None => (self.clock_ms, now),
        };
        let gap_ms = now.saturating_duration_since(sent_at).as_millis() as u64;
        let offset = self.clock_ms.max(clock_at_update + gap_ms);
        // The model heard nothing in the gap: its audio clock lags the call's by it.
        self.model_clock_offset_ms += offset - self.clock_ms;
        self.clock_ms = offset;
        self.stream_offset_ms = offset;
        self.stream_number = self.stream_number.saturating_add(1);
        self.setup.stream_sid = stream_sid;
        self.stream_open = true;
        // Marks of the old stream never come back.
        self.flush_pending_lines(false, out);
        self.playback = Playback::default();
        info!(
            stream_number = self.stream_number,
            call_clock_ms = offset,
            gap_ms,
            "the call goes on over its new stream"
        );
        if self.between_streams() {
            // Its arrival proves the update landed.
            if let Phase::PressingKeys { .. } = self.phase {
                self.phase = Phase::Rejoining {
                    give_up_at: now + REJOIN_TIMEOUT,
                };
            }
            self.keys_pressed(out);
            self.key_press = None;
            self.phase = Phase::Talking;
            self.last_activity = now;
        }
    }

    /// Agent audio while no stream can play it (between the update and the
    /// new stream): the reply is dropped and its words are not written.
    fn drop_audio_between_streams(
        &mut self,
        response_id: &str,
        item_id: &str,
        out: &mut Vec<Action>,
    ) {
        let reply = self.replies.entry(response_id.to_string()).or_default();
        if reply.discarded {
            return;
        }
        reply.discarded = true;
        debug!("agent audio between two streams; dropping the reply");
        self.item_mut(item_id).cut = Some(Heard {
            heard_ms: 0,
            sent_ms: 1,
        });
        out.push(Action::Model(rt::response_cancel()));
    }

    /// Twilio's AMD says who answered. A machine: leave the message (stop
    /// whatever the agent was saying, have it speak the message, hang up once
    /// heard) or hang up at once, per `--voicemail` (always for a fax). Only
    /// a certain verdict is acted on; an unsure one is a hint to the agent.
    /// Ignored once the call is finishing.
    fn on_answered_by(&mut self, who: AnsweredBy, now: Instant, out: &mut Vec<Action>) {
        info!(answered_by = %who, "answering machine detection");
        if !who.is_machine() || !matches!(self.phase, Phase::Greeting { .. } | Phase::Talking) {
            return;
        }
        let prompts = self.setup.prompts;
        if !who.is_certain_machine() {
            // Could be a phone menu: let the agent judge from what it hears.
            out.push(Action::Model(rt::text_item(
                "system",
                prompts.machine_maybe,
            )));
            return;
        }
        let policy = if who == AnsweredBy::Fax {
            VoicemailPolicy::Hangup
        } else {
            self.setup.voicemail
        };
        if policy == VoicemailPolicy::Hangup {
            let note = format!("answered by a machine ({who}); hung up without leaving a message");
            out.push(Action::Store(Write::Outcome(
                Outcome::bare(OutcomeStatus::Voicemail, Some(note)),
                OutcomeWrite::Report,
            )));
            self.hang_up("an answering machine answered", now, out);
            return;
        }
        let note = format!("answered by a machine ({who}); left a message, nothing booked");
        out.push(Action::Store(Write::Outcome(
            Outcome::bare(OutcomeStatus::Voicemail, Some(note)),
            OutcomeWrite::Report,
        )));
        self.start_finishing(now + MESSAGE_TIMEOUT);
        if self.active_response.is_some() {
            self.discard_active_reply();
            out.push(Action::Model(rt::response_cancel()));
        }
        self.barge_in(out);
        out.push(Action::Model(rt::text_item(
            "system",
            &self.setup.voicemail_message,
        )));
        self.ask_for_reply(Some(prompts.leave_message_now), out);
    }

    /// Once the goodbye has been sent and every mark has come back, hang up
    /// (with a short grace for the last words).
    fn maybe_schedule_hangup(&mut self, now: Instant) {
        let Phase::Finishing {
            goodbye_sent: true,
            hang_up_at,
        } = &mut self.phase
        else {
            return;
        };
        let grace = if self.playback.is_idle() {
            LAST_WORDS
        } else {
            self.setup.timings.goodbye_grace
                + Duration::from_millis(self.playback.unplayed_ms(self.clock_ms))
        };
        // Once the goodbye is fully sent, its playback decides (a long
        // goodbye is not cut by the timeout set when `finish_call` came).
        *hang_up_at = now + grace;
    }

    fn hang_up(&mut self, why: &str, now: Instant, out: &mut Vec<Action>) {
        if !self.is_live() {
            return;
        }
        info!("hanging up: {why}");
        out.push(Action::HangUp);
        // If Twilio does not end the stream soon, closing our side ends the call.
        self.phase = Phase::HungUp {
            give_up_at: now + HANGUP_CONFIRM,
        };
    }

    fn on_model_lost(&mut self, why: String, now: Instant, out: &mut Vec<Action>) {
        // Hanging up anyway: nothing to restore.
        if matches!(self.phase, Phase::HungUp { .. }) {
            return self.end(End::ModelLost(why), now, out);
        }
        match self.reconnect {
            Reconnect::Available => {
                warn!("model connection lost mid-call ({why}); reconnecting once");
                self.reconnect = Reconnect::Pending(why);
                out.push(Action::ReconnectModel);
            }
            Reconnect::Pending(_) | Reconnect::Spent => self.end(End::ModelLost(why), now, out),
        }
    }

    /// A new model session is open: restore the conversation so far as text,
    /// so the agent can go on.
    fn on_model_reconnected(&mut self, out: &mut Vec<Action>) {
        self.reconnect = Reconnect::Spent;
        self.model_clock_offset_ms = self.clock_ms;
        // What the old session said is still playing and will be heard: write
        // it now, so the restored conversation includes it.
        self.flush_pending_lines(false, out);
        // Audio of the old session can no longer be truncated in the new one.
        self.playback = Playback::default();
        self.active_response = None;
        self.replies.clear();
        self.create_after_done = false;
        let restore = self.setup.prompts.restore(&self.history);
        out.push(Action::Model(rt::text_item("system", &restore)));
        if matches!(self.phase, Phase::Greeting { .. } | Phase::Talking) {
            out.push(Action::Model(rt::response_create(None)));
        }
        info!(
            restored_lines = self.history.len(),
            "model session restored"
        );
    }

    /// The call ends: write what is left, the fallback outcome, and end it
    /// politely when we are the ones ending it.
    fn end(&mut self, end: End, now: Instant, out: &mut Vec<Action>) {
        match &end {
            End::Stopped => info!("media stream stopped (call ended)"),
            End::TwilioClosed => info!("media stream closed without `stop`"),
            End::ModelLost(why) => warn!("model connection lost mid-call: {why}"),
            End::Limit(why) => warn!("ending the call politely: {why}"),
            End::Shutdown => warn!("ending the call politely: the server is shutting down"),
            End::NoNewStream => warn!("the call's new stream never came after the key press"),
            End::CallOver => info!("the call is over"),
        }
        self.flush_pending_lines(true, out);
        let spoken = self.setup.spoken;
        let (reason, apology) = match end {
            End::ModelLost(why) => {
                out.push(Action::Store(Write::Error(format!(
                    "the AI model connection dropped: {why}"
                ))));
                (
                    "the AI model connection dropped mid-call".to_string(),
                    Some(spoken.apology_technical()),
                )
            }
            End::Limit(why) => (
                format!("the call was ended: {why}"),
                Some(spoken.apology_limit()),
            ),
            End::Shutdown => (
                "the call was ended because the server shut down".to_string(),
                Some(spoken.apology_shutdown()),
            ),
            End::NoNewStream => {
                let why = format!(
                    "the call's audio did not come back within {} s after the keys were pressed",
                    REJOIN_TIMEOUT.as_secs()
                );
                out.push(Action::Store(Write::Error(why.clone())));
                (why, Some(spoken.apology_technical()))
            }
            End::Stopped | End::TwilioClosed | End::CallOver => (
                "the call ended before the agent reported an outcome".to_string(),
                None,
            ),
        };
        out.push(Action::Store(Write::Outcome(
            Outcome::bare(OutcomeStatus::Failed, Some(reason)),
            OutcomeWrite::Fallback,
        )));
        self.key_press = None;
        match apology {
            // No stream to wait for: the apology replaces the TwiML anyway.
            Some(text) if self.is_live() && !self.stream_open => {
                out.push(Action::Apologise(text));
                self.close(out);
            }
            Some(text) if self.is_live() => {
                out.push(Action::Apologise(text));
                self.phase = Phase::Apologising {
                    close_at: now + APOLOGY_WAIT,
                };
            }
            _ => self.close(out),
        }
    }

    fn close(&mut self, out: &mut Vec<Action>) {
        out.push(Action::Close);
        self.phase = Phase::Closed;
    }
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
