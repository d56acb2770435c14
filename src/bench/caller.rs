//! One simulated Twilio Media Stream under load: a signed upgrade,
//! `connected`, `start` with the TwiML's custom parameters, a 160-byte mu-law
//! `media` frame every 20 ms in real time (on a tick whose phase in the 20 ms
//! period is the call's own, so that streams do not all tick in the same
//! millisecond), agent audio played back in real time with `mark` echoes
//! when playback reaches them, and `stop`.
//!
//! Each frame starts with a [`FrameHeader`] (frame id, call index, send
//! time, kind). The server forwards audio without looking at it, so in the
//! echo mode the bytes that come back as outbound `media` say which frames
//! they are (one or several, when the server joins frames), and the round
//! trip is measured frame by frame. In the realistic mode the callee talks
//! in turns and the time from the end of each turn to the first audio of the
//! answer is measured.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::standins::small_ws_config;
use super::wire::{self, DeltaHeader, FrameHeader, FrameKind, Traffic};

pub use super::wire::FRAME_BYTES;
/// Frame period.
pub const FRAME: Duration = Duration::from_millis(20);
/// mu-law: 8 bytes per millisecond of audio.
const BYTES_PER_MS: u64 = wire::BYTES_PER_MS as u64;
/// Send times kept per call: frames older than this (20 s) count as lost.
const RING: usize = 1024;
/// Frames sent this close to the end may still sit in the server's append
/// buffer (`RESERVOICE_APPEND_MS` is at most 100): not counted as lost.
const TAIL: Duration = Duration::from_millis(100);
/// A callee turn with no answer for this long counts as unanswered.
const NO_ANSWER: Duration = Duration::from_secs(15);

/// Where one stream connects and what it announces.
#[derive(Debug, Clone)]
pub struct StreamPlan {
    /// The `<Stream url>` (the URL signed in `X-Twilio-Signature`).
    pub url: String,
    /// `CA…` of the call.
    pub call_sid: String,
    /// `<Parameter>`s, sent as `start.customParameters`.
    pub parameters: Vec<(String, String)>,
    /// Index of the call in the run (written into every frame).
    pub index: u32,
    /// Frames are sent on the 20 ms grid through this instant: its place in
    /// the period is the call's phase.
    pub tick_origin: Instant,
}

/// The run's timeline, shared by every stream.
#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    /// Latencies of frames sent from here on count as steady state.
    pub steady_from: Instant,
    /// No frame is sent after this.
    pub until: Instant,
    /// How long to wait for frames still in flight at `until`.
    pub drain: Duration,
    /// What the callee and the model do.
    pub traffic: Traffic,
}

/// Counters and histograms shared by all streams (one runtime, so the locks
/// are uncontended).
#[derive(Debug)]
pub struct Tally {
    /// Media frames sent.
    pub sent: AtomicU64,
    /// Frames that came back (each once, to the call that sent it).
    pub returned: AtomicU64,
    /// Outbound audio that was not an expected frame: duplicates, another
    /// call's frame, late beyond the ring, undecodable.
    pub unexpected: AtomicU64,
    /// Outbound messages without this stream's `streamSid`, or unparseable.
    pub bad_messages: AtomicU64,
    /// Marks echoed back to the server.
    pub marks_echoed: AtomicU64,
    /// Streams that got through the upgrade and sent `start`.
    pub connected: AtomicU64,
    /// Streams that got at least one frame back (the server bridged them).
    pub bridged: AtomicU64,
    /// Round trips (µs) of frames sent in steady state.
    pub steady: Mutex<Histogram<u64>>,
    /// Round trips (µs) of every frame, ramp included.
    pub all: Mutex<Histogram<u64>>,
    /// Frames sent in the last moments, still in the server's append buffer
    /// when the call ended (not lost).
    pub excused: AtomicU64,
    /// Realistic mode: callee turns ended.
    pub turns: AtomicU64,
    /// Realistic mode: turns that got an answer.
    pub turns_answered: AtomicU64,
    /// Realistic mode: turns left without an answer for [`NO_ANSWER`].
    pub turns_unanswered: AtomicU64,
    /// Realistic mode: agent audio deltas received.
    pub deltas: AtomicU64,
    /// Realistic mode: end of a turn sent → first audio of its answer (µs),
    /// turns ended in steady state.
    pub reply: Mutex<Histogram<u64>>,
}

impl Tally {
    /// Empty counters; histograms from 1 µs to 1 h at 3 significant digits.
    pub fn new() -> anyhow::Result<Tally> {
        let hist = || Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3);
        Ok(Tally {
            sent: AtomicU64::new(0),
            returned: AtomicU64::new(0),
            unexpected: AtomicU64::new(0),
            bad_messages: AtomicU64::new(0),
            marks_echoed: AtomicU64::new(0),
            connected: AtomicU64::new(0),
            bridged: AtomicU64::new(0),
            steady: Mutex::new(hist()?),
            all: Mutex::new(hist()?),
            excused: AtomicU64::new(0),
            turns: AtomicU64::new(0),
            turns_answered: AtomicU64::new(0),
            turns_unanswered: AtomicU64::new(0),
            deltas: AtomicU64::new(0),
            reply: Mutex::new(hist()?),
        })
    }
}

/// What the server sends on the stream, borrowed from the frame.
#[derive(Deserialize)]
struct Outbound<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow, rename = "streamSid", default)]
    stream_sid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    media: Option<OutboundMedia<'a>>,
    #[serde(borrow, default)]
    mark: Option<OutboundMark<'a>>,
}

#[derive(Deserialize)]
struct OutboundMedia<'a> {
    #[serde(borrow)]
    payload: Cow<'a, str>,
}

#[derive(Deserialize)]
struct OutboundMark<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

/// Twilio's side of the playback: agent audio plays at 8 bytes per ms from
/// when it arrives (or when the audio before it ends); a mark is echoed once
/// the audio sent before it has played.
struct Playback {
    ends_at: Instant,
    marks: VecDeque<(Instant, String)>,
}

impl Playback {
    fn audio(&mut self, bytes: usize, now: Instant) {
        let ms = bytes as u64 / BYTES_PER_MS;
        self.ends_at = self.ends_at.max(now) + Duration::from_millis(ms);
    }
    fn mark(&mut self, name: String, now: Instant) {
        self.marks.push_back((self.ends_at.max(now), name));
    }
    fn clear(&mut self, now: Instant) {
        self.ends_at = now;
        for m in self.marks.iter_mut() {
            m.0 = now;
        }
    }
    fn due(&mut self, now: Instant) -> Option<String> {
        if self.marks.front().is_some_and(|(at, _)| *at <= now) {
            return self.marks.pop_front().map(|(_, n)| n);
        }
        None
    }
}

/// Where the callee is in the conversation (realistic mode).
#[derive(Debug, Clone, Copy)]
enum Talk {
    /// Talking: `left` frames of this turn to send (speech, then the
    /// silence of the model's turn window).
    Speaking { turn: u32, left: u64 },
    /// Silent, waiting for the answer to `turn` to arrive and play.
    Waiting {
        turn: u32,
        /// When its last frame was sent.
        ended: Instant,
        /// Its answer's first audio arrived.
        answered: bool,
        /// Its answer's last delta arrived.
        complete: bool,
    },
}

struct Stream<'t> {
    stream_sid: String,
    index: u32,
    seq: u64,
    sent_at: Vec<Option<(u32, Instant)>>,
    outstanding: u64,
    got_any: bool,
    playback: Playback,
    tally: &'t Tally,
    steady_from: Instant,
    traffic: Traffic,
    talk: Talk,
    audio: Vec<u8>,
}

impl Stream<'_> {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// What the callee sends now (realistic mode: speech, the end of a
    /// turn, or silence while the agent answers).
    fn next_kind(&mut self, now: Instant) -> (FrameKind, u32) {
        if self.traffic == Traffic::Echo {
            return (FrameKind::Echo, 0);
        }
        if let Talk::Waiting {
            turn,
            ended,
            answered,
            complete,
        } = self.talk
        {
            let played = complete
                && self.playback.marks.is_empty()
                && self.playback.ends_at + wire::CALLEE_PAUSE <= now;
            let gave_up = now.saturating_duration_since(ended) >= NO_ANSWER;
            if gave_up && !answered {
                self.tally.turns_unanswered.fetch_add(1, Ordering::Relaxed);
            }
            if !(played || gave_up) {
                return (FrameKind::Silence, turn);
            }
            let next = turn + 1;
            self.talk = Talk::Speaking {
                turn: next,
                left: wire::callee_turn_ms(self.index, next) / 20 + wire::TURN_WINDOW_FRAMES,
            };
        }
        let Talk::Speaking { turn, left } = self.talk else {
            return (FrameKind::Silence, 0);
        };
        if left > 1 {
            self.talk = Talk::Speaking {
                turn,
                left: left - 1,
            };
            // Speech, then the silence of the model's turn window.
            if left > wire::TURN_WINDOW_FRAMES {
                return (FrameKind::Speech, turn);
            }
            return (FrameKind::Silence, turn);
        }
        self.talk = Talk::Waiting {
            turn,
            ended: now,
            answered: false,
            complete: false,
        };
        self.tally.turns.fetch_add(1, Ordering::Relaxed);
        (FrameKind::TurnEnd, turn)
    }

    fn media_frame(&mut self, frame_id: u32, now: Instant, out: &mut String, b64: &mut String) {
        let (kind, turn) = self.next_kind(now);
        let mut audio = [0xFFu8; FRAME_BYTES];
        FrameHeader {
            frame_id,
            call: self.index,
            sent_us: wire::clock_us(),
            kind,
            turn,
        }
        .write(&mut audio);
        b64.clear();
        base64::engine::general_purpose::STANDARD.encode_string(audio, b64);
        let seq = self.next_seq();
        out.clear();
        let _ = write!(
            out,
            r#"{{"event":"media","sequenceNumber":"{seq}","media":{{"track":"inbound","chunk":"{}","timestamp":"{}","payload":"{b64}"}},"streamSid":"{}"}}"#,
            frame_id + 1,
            u64::from(frame_id) * 20,
            self.stream_sid
        );
    }

    fn mark_echo(&mut self, name: &str) -> String {
        let seq = self.next_seq();
        serde_json::json!({"event": "mark", "sequenceNumber": seq.to_string(),
            "streamSid": self.stream_sid, "mark": {"name": name}})
        .to_string()
    }

    /// An outbound message from the server.
    fn on_message(&mut self, text: &str, now: Instant) {
        let Ok(msg) = serde_json::from_str::<Outbound>(text) else {
            self.tally.bad_messages.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if msg.stream_sid.as_deref() != Some(self.stream_sid.as_str()) {
            self.tally.bad_messages.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match (msg.event.as_ref(), msg.media, msg.mark) {
            ("media", Some(media), _) => self.on_audio(&media.payload, now),
            ("mark", _, Some(mark)) => self.playback.mark(mark.name.into_owned(), now),
            ("clear", _, _) => self.playback.clear(now),
            _ => {
                self.tally.bad_messages.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn on_audio(&mut self, payload: &str, now: Instant) {
        self.audio.clear();
        if base64::engine::general_purpose::STANDARD
            .decode_vec(payload, &mut self.audio)
            .is_err()
        {
            self.tally.unexpected.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.playback.audio(self.audio.len(), now);
        if !self.got_any {
            self.got_any = true;
            self.tally.bridged.fetch_add(1, Ordering::Relaxed);
        }
        match self.traffic {
            Traffic::Echo => self.on_echo(now),
            Traffic::Realistic => self.on_answer(now),
        }
    }

    /// Echo mode: the audio is our own frames, one or several.
    fn on_echo(&mut self, now: Instant) {
        if self.audio.is_empty() || !self.audio.len().is_multiple_of(FRAME_BYTES) {
            self.tally.unexpected.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let audio = std::mem::take(&mut self.audio);
        for frame in audio.chunks_exact(FRAME_BYTES) {
            self.on_echoed_frame(frame, now);
        }
        self.audio = audio;
    }

    fn on_echoed_frame(&mut self, frame: &[u8], now: Instant) {
        let Some(header) = FrameHeader::read(frame) else {
            self.tally.unexpected.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let id = header.frame_id;
        let slot = &mut self.sent_at[id as usize % RING];
        let sent = match slot {
            Some((sid, at)) if *sid == id && header.call == self.index => *at,
            _ => {
                self.tally.unexpected.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        *slot = None;
        self.outstanding = self.outstanding.saturating_sub(1);
        self.tally.returned.fetch_add(1, Ordering::Relaxed);
        let micros = now.saturating_duration_since(sent).as_micros() as u64;
        if let Ok(mut h) = self.tally.all.lock() {
            h.saturating_record(micros.max(1));
        }
        if sent >= self.steady_from {
            if let Ok(mut h) = self.tally.steady.lock() {
                h.saturating_record(micros.max(1));
            }
        }
    }

    /// Realistic mode: a delta of the answer to a turn.
    fn on_answer(&mut self, now: Instant) {
        let Some(header) = DeltaHeader::read(&self.audio) else {
            self.tally.unexpected.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if header.call != self.index {
            self.tally.unexpected.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.tally.deltas.fetch_add(1, Ordering::Relaxed);
        let Talk::Waiting {
            turn,
            ended,
            answered,
            complete,
        } = &mut self.talk
        else {
            // An answer still arriving after the callee went on: a late one.
            return;
        };
        if header.turn != *turn {
            return;
        }
        if !*answered {
            *answered = true;
            self.tally.turns_answered.fetch_add(1, Ordering::Relaxed);
            let micros = now.saturating_duration_since(*ended).as_micros() as u64;
            if *ended >= self.steady_from {
                if let Ok(mut h) = self.tally.reply.lock() {
                    h.saturating_record(micros.max(1));
                }
            }
        }
        if header.index + 1 >= header.count {
            *complete = true;
        }
    }

    /// Frames sent before `cutoff` that have not come back (echo mode).
    fn outstanding_before(&self, cutoff: Instant) -> u64 {
        self.sent_at
            .iter()
            .filter(|s| s.is_some_and(|(_, at)| at < cutoff))
            .count() as u64
    }
}

/// The first instant on the 20 ms grid through `origin` that is not before `now`.
fn on_grid(origin: Instant, now: Instant) -> Instant {
    if origin >= now {
        return origin;
    }
    let behind = now.duration_since(origin).as_nanos();
    let period = FRAME.as_nanos();
    let periods = behind.div_ceil(period) as u32;
    origin + FRAME * periods
}

/// Run one stream to the end of the timeline. `Err` says why it never
/// connected; once connected it always runs to `stop`.
pub async fn run(
    plan: StreamPlan,
    auth_token: &str,
    account_sid: &str,
    timeline: Timeline,
    tally: &Tally,
) -> Result<(), String> {
    let mut request = plan
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("bad stream url {}: {e}", plan.url))?;
    let signature = crate::sim::telephone::signature(auth_token, &plan.url, &[]);
    let header = signature
        .parse()
        .map_err(|_| "the signature is not a valid header".to_string())?;
    request.headers_mut().insert("X-Twilio-Signature", header);
    let connect =
        tokio_tungstenite::connect_async_with_config(request, Some(small_ws_config()), true);
    let ws = match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
            return Err(format!("upgrade refused: HTTP {}", resp.status().as_u16()))
        }
        Ok(Err(e)) => return Err(format!("upgrade failed: {e}")),
        Err(_) => return Err("upgrade timed out after 10 s".into()),
    };
    let (mut tx, mut rx) = ws.split();
    let mut st = Stream {
        stream_sid: format!("MZ{:032x}", rand::random::<u128>()),
        index: plan.index,
        seq: 0,
        sent_at: vec![None; RING],
        outstanding: 0,
        got_any: false,
        playback: Playback {
            ends_at: Instant::now(),
            marks: VecDeque::new(),
        },
        tally,
        steady_from: timeline.steady_from,
        traffic: timeline.traffic,
        talk: Talk::Speaking {
            turn: 0,
            left: wire::callee_turn_ms(plan.index, 0) / 20 + wire::TURN_WINDOW_FRAMES,
        },
        audio: Vec::with_capacity(4 * FRAME_BYTES),
    };
    let custom: serde_json::Map<String, serde_json::Value> = plan
        .parameters
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let connected = r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#;
    let seq = st.next_seq();
    let start = serde_json::json!({"event": "start", "sequenceNumber": seq.to_string(),
        "start": {"accountSid": account_sid, "streamSid": st.stream_sid, "callSid": plan.call_sid,
                  "tracks": ["inbound"],
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                  "customParameters": custom},
        "streamSid": st.stream_sid})
    .to_string();
    let opened = tx.feed(Message::text(connected)).await.is_ok()
        && tx.feed(Message::text(start)).await.is_ok()
        && tx.flush().await.is_ok();
    if !opened {
        return Err("the server closed the stream before `start`".into());
    }
    tally.connected.fetch_add(1, Ordering::Relaxed);

    let first = on_grid(plan.tick_origin, Instant::now());
    let mut ticks = tokio::time::interval_at(first, FRAME);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut frame_id: u32 = 0;
    let mut out = String::with_capacity(512);
    let mut b64 = String::with_capacity(256);
    let mut closed = false;
    while !closed {
        tokio::select! {
            _ = ticks.tick() => {
                let now = Instant::now();
                if now >= timeline.until {
                    break;
                }
                let mut ok = true;
                while let Some(name) = st.playback.due(now) {
                    let echo = st.mark_echo(&name);
                    ok &= tx.feed(Message::text(echo)).await.is_ok();
                    tally.marks_echoed.fetch_add(1, Ordering::Relaxed);
                }
                st.media_frame(frame_id, now, &mut out, &mut b64);
                let sent = Instant::now();
                ok &= tx.feed(Message::text(out.as_str())).await.is_ok();
                ok &= tx.flush().await.is_ok();
                if st.traffic == Traffic::Echo {
                    st.sent_at[frame_id as usize % RING] = Some((frame_id, sent));
                    // A frame whose slot is reused before it came back is lost (counted by sent - returned).
                    st.outstanding += 1;
                }
                tally.sent.fetch_add(1, Ordering::Relaxed);
                frame_id = frame_id.wrapping_add(1);
                closed = !ok;
            }
            msg = rx.next() => match msg {
                Some(Ok(Message::Text(text))) => st.on_message(text.as_str(), Instant::now()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => closed = true,
                Some(Ok(_)) => {}
            },
        }
    }
    // Let the frames still in flight come back (but for the last ones, which
    // may wait in the server's append buffer), then hang up as Twilio does.
    let drain_until = Instant::now() + timeline.drain;
    let cutoff = timeline.until - TAIL;
    while !closed && st.outstanding > 0 && st.outstanding_before(cutoff) > 0 {
        tokio::select! {
            _ = tokio::time::sleep_until(drain_until) => break,
            msg = rx.next() => match msg {
                Some(Ok(Message::Text(text))) => st.on_message(text.as_str(), Instant::now()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => closed = true,
                Some(Ok(_)) => {}
            },
        }
    }
    let excused = st
        .sent_at
        .iter()
        .filter(|s| s.is_some_and(|(_, at)| at >= cutoff))
        .count() as u64;
    tally.excused.fetch_add(excused, Ordering::Relaxed);
    if !closed {
        let seq = st.next_seq();
        let stop = serde_json::json!({"event": "stop", "sequenceNumber": seq.to_string(),
            "stop": {"accountSid": account_sid, "callSid": plan.call_sid}, "streamSid": st.stream_sid})
        .to_string();
        let _ = tx.send(Message::text(stop)).await;
        let _ = tx.close().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = rx.next().await {}
        })
        .await;
    }
    Ok(())
}
