//! One simulated Twilio Media Stream under load: a signed upgrade,
//! `connected`, `start` with the TwiML's custom parameters, a 160-byte mu-law
//! `media` frame every 20 ms in real time, `mark` echoes on a playback clock,
//! and `stop`.
//!
//! Each frame carries its id (u32, little endian) in bytes 0..4 and the
//! call's index in bytes 4..8. The server forwards audio without decoding it,
//! so the bytes that come back as outbound `media` say which frame they are,
//! and the round trip is measured frame by frame.

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

/// 20 ms of mu-law at 8 kHz, as Twilio sends.
pub const FRAME_BYTES: usize = 160;
/// Frame period.
pub const FRAME: Duration = Duration::from_millis(20);
/// mu-law: 8 bytes per millisecond of audio.
const BYTES_PER_MS: u64 = 8;
/// Send times kept per call: frames older than this (20 s) count as lost.
const RING: usize = 1024;

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
}

impl Stream<'_> {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn media_frame(&mut self, frame_id: u32, out: &mut String, b64: &mut String) {
        let mut audio = [0xFFu8; FRAME_BYTES]; // mu-law silence
        audio[..4].copy_from_slice(&frame_id.to_le_bytes());
        audio[4..8].copy_from_slice(&self.index.to_le_bytes());
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
        let mut audio = [0u8; 3 * FRAME_BYTES];
        let Ok(n) = base64::engine::general_purpose::STANDARD.decode_slice(payload, &mut audio)
        else {
            self.tally.unexpected.fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.playback.audio(n, now);
        if n < 8 {
            self.tally.unexpected.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let id = u32::from_le_bytes([audio[0], audio[1], audio[2], audio[3]]);
        let index = u32::from_le_bytes([audio[4], audio[5], audio[6], audio[7]]);
        let slot = &mut self.sent_at[id as usize % RING];
        let sent = match slot {
            Some((sid, at)) if *sid == id && index == self.index => *at,
            _ => {
                self.tally.unexpected.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        *slot = None;
        self.outstanding = self.outstanding.saturating_sub(1);
        if !self.got_any {
            self.got_any = true;
            self.tally.bridged.fetch_add(1, Ordering::Relaxed);
        }
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

    let mut ticks = tokio::time::interval(FRAME);
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
                st.media_frame(frame_id, &mut out, &mut b64);
                let sent = Instant::now();
                ok &= tx.feed(Message::text(out.as_str())).await.is_ok();
                ok &= tx.flush().await.is_ok();
                st.sent_at[frame_id as usize % RING] = Some((frame_id, sent));
                // A frame whose slot is reused before it came back is lost (counted by sent - returned).
                st.outstanding += 1;
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
    // Let the frames still in flight come back, then hang up as Twilio does.
    let drain_until = Instant::now() + timeline.drain;
    while !closed && st.outstanding > 0 {
        tokio::select! {
            _ = tokio::time::sleep_until(drain_until) => break,
            msg = rx.next() => match msg {
                Some(Ok(Message::Text(text))) => st.on_message(text.as_str(), Instant::now()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => closed = true,
                Some(Ok(_)) => {}
            },
        }
    }
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
