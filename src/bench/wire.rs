//! What the bench's audio bytes carry, and the conversation of the realistic
//! traffic mode.
//!
//! The server forwards audio without looking at it, so the bench writes
//! what it needs to check and time into the audio itself:
//!
//! - every 160-byte frame the callee sends starts with a [`FrameHeader`]:
//!   frame id, call index, when it was sent (µs on the bench's clock) and
//!   whether it is speech, the last frame of a turn, silence or echo fodder;
//! - every agent audio delta of the realistic mode starts with a
//!   [`DeltaHeader`]: call index, turn, delta number and count.
//!
//! The realistic mode ([`Traffic::Realistic`]): the callee speaks in turns
//! ([`callee_turn_ms`]), then stays silent while the model's turn window
//! passes and the agent answers; the
//! model (or the floor) answers each turn with a reply ([`ReplyPlan`]) of
//! deltas of a documented mix of sizes ([`DELTA_MIX_MS`]), sent faster than
//! real time ([`REPLY_SPEEDUP`]).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The traffic a run plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Traffic {
    /// Full duplex, the worst case: every appended chunk comes straight back
    /// as the agent's audio, so each 20 ms frame makes the whole trip.
    #[default]
    Echo,
    /// A conversation: the callee talks in turns, the model answers each
    /// turn with audio and transcript deltas faster than real time, and
    /// Twilio plays it back in real time.
    Realistic,
}

impl Traffic {
    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Traffic::Echo => "echo",
            Traffic::Realistic => "realistic",
        }
    }
}

/// µs since the bench process's first reading: the clock frame headers carry
/// (the load generator and the stand-ins share the process, so the clock).
pub fn clock_us() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// A 20 ms frame of a 400 Hz tone at about −16 dBFS, in mu-law: what the
/// callee's speech sounds like to anything that looks at its level.
fn speech_tone() -> &'static [u8; FRAME_BYTES] {
    static TONE: OnceLock<[u8; FRAME_BYTES]> = OnceLock::new();
    TONE.get_or_init(|| {
        let mut tone = [0u8; FRAME_BYTES];
        for (i, b) in tone.iter_mut().enumerate() {
            let phase = 2.0 * std::f64::consts::PI * 400.0 * i as f64 / 8000.0;
            *b = crate::audio::mulaw::encode((5000.0 * phase.sin()) as i16);
        }
        tone
    })
}

/// Bytes of one 20 ms mu-law frame.
pub const FRAME_BYTES: usize = 160;
/// mu-law at 8 kHz: bytes per millisecond.
pub const BYTES_PER_MS: usize = 8;

/// What a callee frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// Echo mode: comes back as the agent's audio.
    Echo = 0,
    /// The callee is talking.
    Speech = 1,
    /// The frame that ends a turn: the last of the silence after the
    /// callee's speech that the model waits for ([`TURN_WINDOW_FRAMES`]);
    /// the model answers now.
    TurnEnd = 2,
    /// Silence between turns.
    Silence = 3,
}

/// The first bytes of every callee frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Frame number in the call.
    pub frame_id: u32,
    /// The call's index in the run.
    pub call: u32,
    /// When it was sent ([`clock_us`]).
    pub sent_us: u64,
    /// What it is.
    pub kind: FrameKind,
    /// The callee's turn it belongs to (realistic mode).
    pub turn: u32,
}

impl FrameHeader {
    /// Bytes of the header's fields.
    const FIELDS: usize = 21;
    /// Bytes the header takes in the audio: each field byte is written as
    /// two bytes of near-silence, one per nibble (mu-law `0xF0..=0xFF`,
    /// ±120 at most in 16-bit linear), so the header does not make a frame
    /// loud: the bridge may look at the frame's level (`call::joining`).
    pub const LEN: usize = 2 * Self::FIELDS;

    /// Write it at the start of `frame`. The rest is a tone if the callee
    /// is talking in this frame (speech, and every echo-mode frame: full
    /// duplex), mu-law silence otherwise.
    pub fn write(&self, frame: &mut [u8; FRAME_BYTES]) {
        if matches!(self.kind, FrameKind::Speech | FrameKind::Echo) {
            frame.copy_from_slice(speech_tone());
        } else {
            frame.fill(0xFF);
        }
        let mut fields = [0u8; Self::FIELDS];
        fields[0..4].copy_from_slice(&self.frame_id.to_le_bytes());
        fields[4..8].copy_from_slice(&self.call.to_le_bytes());
        fields[8..16].copy_from_slice(&self.sent_us.to_le_bytes());
        fields[16] = self.kind as u8;
        fields[17..21].copy_from_slice(&self.turn.to_le_bytes());
        for (i, b) in fields.iter().enumerate() {
            frame[2 * i] = 0xF0 | (b >> 4);
            frame[2 * i + 1] = 0xF0 | (b & 0x0F);
        }
    }

    /// Read it from the start of a frame (`None`: too short, not a header,
    /// or an unknown kind).
    pub fn read(audio: &[u8]) -> Option<FrameHeader> {
        if audio.len() < Self::LEN {
            return None;
        }
        let mut frame = [0u8; Self::FIELDS];
        for (i, b) in frame.iter_mut().enumerate() {
            let (hi, lo) = (audio[2 * i], audio[2 * i + 1]);
            if hi < 0xF0 || lo < 0xF0 {
                return None;
            }
            *b = (hi << 4) | (lo & 0x0F);
        }
        let u32_at =
            |i: usize| u32::from_le_bytes([frame[i], frame[i + 1], frame[i + 2], frame[i + 3]]);
        let mut sent = [0u8; 8];
        sent.copy_from_slice(&frame[8..16]);
        let kind = match frame[16] {
            0 => FrameKind::Echo,
            1 => FrameKind::Speech,
            2 => FrameKind::TurnEnd,
            3 => FrameKind::Silence,
            _ => return None,
        };
        Some(FrameHeader {
            frame_id: u32_at(0),
            call: u32_at(4),
            sent_us: u64::from_le_bytes(sent),
            kind,
            turn: u32_at(17),
        })
    }
}

/// The first bytes of every agent delta in the realistic mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeltaHeader {
    /// The call's index in the run.
    pub call: u32,
    /// The callee turn this reply answers.
    pub turn: u32,
    /// Delta number in the reply, from 0.
    pub index: u16,
    /// Deltas in the reply.
    pub count: u16,
}

impl DeltaHeader {
    /// Bytes the header takes (the smallest delta is larger).
    pub const LEN: usize = 12;

    /// The delta's audio: the header, then mu-law silence.
    pub fn audio(&self, bytes: usize) -> Vec<u8> {
        let mut audio = vec![0xFFu8; bytes.max(Self::LEN)];
        audio[0..4].copy_from_slice(&self.call.to_le_bytes());
        audio[4..8].copy_from_slice(&self.turn.to_le_bytes());
        audio[8..10].copy_from_slice(&self.index.to_le_bytes());
        audio[10..12].copy_from_slice(&self.count.to_le_bytes());
        audio
    }

    /// Read it from a delta's audio.
    pub fn read(audio: &[u8]) -> Option<DeltaHeader> {
        if audio.len() < Self::LEN {
            return None;
        }
        Some(DeltaHeader {
            call: u32::from_le_bytes([audio[0], audio[1], audio[2], audio[3]]),
            turn: u32::from_le_bytes([audio[4], audio[5], audio[6], audio[7]]),
            index: u16::from_le_bytes([audio[8], audio[9]]),
            count: u16::from_le_bytes([audio[10], audio[11]]),
        })
    }
}

/// Milliseconds of audio per delta, in the order a reply uses them (cycled).
///
/// What the GA Realtime API sends per `response.output_audio.delta` for
/// `audio/pcmu` is not documented (docs/protocol/openai-realtime.md); the
/// project's simulator assumes 100 ms (800 bytes). The bench uses a mix
/// around that, from 40 ms to 300 ms (mean 125 ms), so that neither the
/// smallest nor the largest size decides the figures.
pub const DELTA_MIX_MS: [u64; 8] = [40, 100, 100, 200, 100, 60, 100, 300];

/// The model sends a reply this many times faster than it plays.
pub const REPLY_SPEEDUP: u32 = 5;

/// Silence the callee leaves after the agent's reply has played.
pub const CALLEE_PAUSE: Duration = Duration::from_millis(400);

/// Frames of silence after the callee's speech before the model answers:
/// its `server_vad` silence window (the session the server configures).
/// The last of them is the [`FrameKind::TurnEnd`] frame.
pub const TURN_WINDOW_FRAMES: u64 = crate::realtime::client::SILENCE_DURATION_MS / 20;

/// How long the callee talks in `turn` of call `call` (1.2 to 2.8 s).
pub fn callee_turn_ms(call: u32, turn: u32) -> u64 {
    1200 + u64::from((call.wrapping_mul(7) + turn.wrapping_mul(13)) % 9) * 200
}

/// How long the agent's reply to `turn` of call `call` is (1.5 to 3.9 s).
pub fn reply_ms(call: u32, turn: u32) -> u64 {
    1500 + u64::from((call.wrapping_mul(5) + turn.wrapping_mul(11)) % 7) * 400
}

/// One reply being sent: its deltas and when each is due.
#[derive(Debug, Clone)]
pub struct ReplyPlan {
    call: u32,
    turn: u32,
    sizes_ms: Vec<u64>,
    next: usize,
    started: tokio::time::Instant,
    sent_ms: u64,
}

impl ReplyPlan {
    /// The reply to `turn` of call `call`, starting at `now`.
    pub fn new(call: u32, turn: u32, now: tokio::time::Instant) -> ReplyPlan {
        let total = reply_ms(call, turn);
        let mut sizes_ms = Vec::new();
        let mut sum = 0;
        let mut i = (call + turn) as usize;
        while sum < total {
            let ms = DELTA_MIX_MS[i % DELTA_MIX_MS.len()].min(total - sum);
            sizes_ms.push(ms);
            sum += ms;
            i += 1;
        }
        ReplyPlan {
            call,
            turn,
            sizes_ms,
            next: 0,
            started: now,
            sent_ms: 0,
        }
    }

    /// The callee turn it answers.
    pub fn turn(&self) -> u32 {
        self.turn
    }

    /// When the next delta is due (`None`: all sent).
    pub fn due(&self) -> Option<tokio::time::Instant> {
        (self.next < self.sizes_ms.len())
            .then(|| self.started + Duration::from_millis(self.sent_ms) / REPLY_SPEEDUP)
    }

    /// The next delta's audio (`None`: all sent).
    pub fn next_delta(&mut self) -> Option<Vec<u8>> {
        let ms = *self.sizes_ms.get(self.next)?;
        let header = DeltaHeader {
            call: self.call,
            turn: self.turn,
            index: self.next as u16,
            count: self.sizes_ms.len() as u16,
        };
        self.next += 1;
        self.sent_ms += ms;
        Some(header.audio(ms as usize * BYTES_PER_MS))
    }

    /// Every delta was sent.
    pub fn is_done(&self) -> bool {
        self.next >= self.sizes_ms.len()
    }

    /// Words of the reply, one per delta (for the transcript deltas).
    pub fn word(&self) -> &'static str {
        const WORDS: [&str; 8] = [
            "We ", "have ", "a ", "table ", "for ", "two ", "at ", "seven ",
        ];
        WORDS[self.next % WORDS.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_survive_the_bytes() {
        let h = FrameHeader {
            frame_id: 70_000,
            call: 999,
            sent_us: 123_456_789_012,
            kind: FrameKind::TurnEnd,
            turn: 42,
        };
        let mut frame = [0u8; FRAME_BYTES];
        h.write(&mut frame);
        assert_eq!(FrameHeader::read(&frame), Some(h));
        assert_eq!(frame[FRAME_BYTES - 1], 0xFF);
        // The header leaves a quiet frame quiet; speech is loud.
        let level = crate::audio::mulaw::rms;
        assert!(level(&frame) < crate::call::joining::STILL_RMS);
        let speech = FrameHeader {
            kind: FrameKind::Speech,
            ..h
        };
        speech.write(&mut frame);
        assert_eq!(FrameHeader::read(&frame), Some(speech));
        assert!(level(&frame) > 8.0 * crate::call::joining::LOUD_RMS);
        frame[2 * 16 + 1] = 0xF9; // kind 9
        assert_eq!(FrameHeader::read(&frame), None);
        frame[0] = 0x12; // not a header byte
        assert_eq!(FrameHeader::read(&frame), None);

        let d = DeltaHeader {
            call: 7,
            turn: 3,
            index: 2,
            count: 30,
        };
        let audio = d.audio(320);
        assert_eq!(audio.len(), 320);
        assert_eq!(DeltaHeader::read(&audio), Some(d));
        assert_eq!(DeltaHeader::read(&audio[..5]), None);
    }

    #[test]
    fn a_reply_adds_up_to_its_length_and_runs_faster_than_real_time() {
        let t0 = tokio::time::Instant::now();
        let mut plan = ReplyPlan::new(3, 1, t0);
        let mut bytes = 0;
        let mut n = 0;
        let mut last_due = t0;
        while let Some(due) = plan.due() {
            assert!(due >= last_due);
            last_due = due;
            let audio = plan.next_delta().unwrap();
            let h = DeltaHeader::read(&audio).unwrap();
            assert_eq!((h.call, h.turn, h.index as usize), (3, 1, n));
            bytes += audio.len();
            n += 1;
        }
        assert!(plan.is_done());
        assert_eq!(bytes as u64, reply_ms(3, 1) * BYTES_PER_MS as u64);
        let played = Duration::from_millis(reply_ms(3, 1));
        assert!(last_due - t0 < played / REPLY_SPEEDUP);
        assert!((1200..=2800).contains(&callee_turn_ms(5, 9)));
    }
}
