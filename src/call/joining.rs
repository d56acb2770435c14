//! Which of the callee's frames may wait, to be joined with the next ones
//! into one `input_audio_buffer.append`.
//!
//! Twilio sends 20 ms frames, 50 a second per call; each append is one more
//! message on the model's socket, the bridge's main cost in a real
//! conversation (docs/PERFORMANCE.md). Joining frames saves those messages,
//! but a held frame reaches the model later, and the model decides two
//! things from the audio's timing: that the callee started talking (speech
//! start, which interrupts the agent: barge-in) and that the callee stopped
//! (the end of a turn, after [`SILENCE_DURATION_MS`] of silence). So with
//! [`AppendJoin::Safe`] (the default) a frame waits only where the model is
//! deciding nothing from it:
//!
//! - the first [`ONSET_MS`] of speech go out frame by frame (speech start
//!   and barge-in are not delayed), and so does the first quiet frame after
//!   speech, with everything held before it;
//! - the first [`TURN_WINDOW_MS`] of a silence go out frame by frame (the
//!   model's turn window closes on time);
//! - past those, speech that goes on and silence that goes on are joined,
//!   up to `append_ms` per append.
//!
//! Loud or quiet is the frame's level ([`LOUD_RMS`], well below what the
//! model's VAD calls speech). Where the two disagree (noise the bridge calls
//! loud, the model silence) the model hears a frame at most `append_ms` − 20
//! ms late: the bound of the fixed join ([`AppendJoin::Always`]), which joins
//! every frame and so costs that delay everywhere.
//!
//! Joined audio is decoded and re-encoded: base64 with padding cannot be
//! concatenated. This is the only place the bridge decodes audio; with
//! `append_ms` at 20 no frame is held and none is decoded.

use base64::Engine;

use crate::audio::mulaw;
use crate::config::AppendJoin;
use crate::realtime::client::{PREFIX_PADDING_MS, SILENCE_DURATION_MS};
use crate::realtime::events as rt;

/// Speech's first milliseconds, sent as they come: the model's prefix
/// padding (the audio it keeps from before the speech start) and a margin.
pub const ONSET_MS: u64 = PREFIX_PADDING_MS + 100;
/// A silence's first milliseconds, sent as they come: the model's silence
/// window that ends a turn, and a margin.
pub const TURN_WINDOW_MS: u64 = SILENCE_DURATION_MS + 200;
/// A pause at least this long makes the next speech a new start (its first
/// [`ONSET_MS`] go out as they come again): shorter than the turn window, so
/// speech after any pause the model may have taken for a turn end counts.
pub const RESTART_AFTER_MS: u64 = SILENCE_DURATION_MS / 2;
/// A frame whose RMS (16-bit linear) reaches this is loud: about −44 dBFS,
/// above a phone line's idle noise and far below speech (the model's VAD
/// stand-in in `sim/vad.rs` starts speech at 800).
pub const LOUD_RMS: f64 = 200.0;

/// Why a frame was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotBase64;

/// The callee's audio on its way to the model: frames held, and how long
/// the current speech or silence has lasted.
#[derive(Debug, Clone)]
pub struct Joiner {
    policy: AppendJoin,
    /// Most bytes one append carries (`append_ms` of mu-law).
    max_bytes: usize,
    held: Vec<u8>,
    /// How long the current silence has lasted (0 while loud).
    quiet_ms: u64,
    /// How long the current speech has lasted (through pauses shorter than
    /// [`RESTART_AFTER_MS`]).
    talk_ms: u64,
}

impl Joiner {
    /// Appends of up to `append_ms` (above 20), joined by `policy`.
    pub fn new(append_ms: u64, policy: AppendJoin) -> Joiner {
        let max_bytes = append_ms as usize * mulaw::BYTES_PER_MS;
        Joiner {
            policy,
            max_bytes,
            held: Vec::with_capacity(max_bytes + 160),
            quiet_ms: 0,
            talk_ms: 0,
        }
    }

    /// Take one frame's base64 payload; `Some`: the append to send now (this
    /// frame and the ones held before it).
    pub fn push(&mut self, payload_b64: &str) -> Result<Option<String>, NotBase64> {
        let before = self.held.len();
        if base64::engine::general_purpose::STANDARD
            .decode_vec(payload_b64.as_bytes(), &mut self.held)
            .is_err()
        {
            self.held.truncate(before);
            return Err(NotBase64);
        }
        let urgent = match self.policy {
            AppendJoin::Always => false,
            AppendJoin::Safe => self.model_is_listening(before),
        };
        if !urgent && self.held.len() < self.max_bytes {
            return Ok(None);
        }
        let mut append = String::with_capacity(self.held.len() * 4 / 3 + 60);
        rt::input_audio_append_bytes(&self.held, &mut append);
        self.held.clear();
        Ok(Some(append))
    }

    /// Classify the frame at `held[from..]` and say whether the model may be
    /// deciding something from it now.
    fn model_is_listening(&mut self, from: usize) -> bool {
        let frame = &self.held[from..];
        let ms = (frame.len() / mulaw::BYTES_PER_MS) as u64;
        if mulaw::rms(frame) >= LOUD_RMS {
            if self.quiet_ms >= RESTART_AFTER_MS {
                self.talk_ms = 0;
            }
            self.quiet_ms = 0;
            self.talk_ms = self.talk_ms.saturating_add(ms);
            self.talk_ms <= ONSET_MS
        } else {
            self.quiet_ms = self.quiet_ms.saturating_add(ms);
            self.quiet_ms <= TURN_WINDOW_MS
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// A 20 ms frame: a loud square wave or mu-law silence.
    fn frame(loud: bool) -> String {
        let bytes: Vec<u8> = (0..160)
            .map(|i| match (loud, i % 8 < 4) {
                (false, _) => mulaw::SILENCE,
                (true, true) => mulaw::encode(6000),
                (true, false) => mulaw::encode(-6000),
            })
            .collect();
        b64(&bytes)
    }

    /// Push `n` frames; the number of frames each append carried.
    fn play(j: &mut Joiner, script: &[(bool, usize)]) -> Vec<usize> {
        let mut sent = Vec::new();
        for &(loud, n) in script {
            let f = frame(loud);
            for _ in 0..n {
                if let Some(append) = j.push(&f).unwrap() {
                    let v: serde_json::Value = serde_json::from_str(&append).unwrap();
                    let audio = base64::engine::general_purpose::STANDARD
                        .decode(v["audio"].as_str().unwrap())
                        .unwrap();
                    assert_eq!(audio.len() % 160, 0);
                    sent.push(audio.len() / 160);
                }
            }
        }
        sent
    }

    #[test]
    fn speech_start_and_the_turn_window_go_out_frame_by_frame() {
        let mut j = Joiner::new(100, AppendJoin::Safe);
        // 800 ms of silence from the start: the turn window, frame by frame.
        assert_eq!(play(&mut j, &[(false, 40)]), vec![1; 40]);
        // Silence goes on: joined by five (100 ms).
        assert_eq!(play(&mut j, &[(false, 12)]), vec![5, 5]);
        // Speech: the two held frames leave with the first loud one, then
        // the first 400 ms frame by frame, then joined.
        let sent = play(&mut j, &[(true, 20 + 10)]);
        assert_eq!(sent[0], 3, "held silence goes with the speech start");
        assert_eq!(&sent[1..20], &[1; 19]);
        assert_eq!(&sent[20..], &[5, 5]);
        // Three more loud frames are held; the first quiet one takes them out.
        assert_eq!(play(&mut j, &[(true, 3), (false, 1)]), vec![4]);
        // The silence that follows is the turn window: frame by frame.
        assert_eq!(play(&mut j, &[(false, 39)]), vec![1; 39]);
        assert_eq!(play(&mut j, &[(false, 5)]), vec![5]);
    }

    #[test]
    fn a_short_pause_does_not_restart_the_speech_but_a_longer_one_does() {
        let mut j = Joiner::new(100, AppendJoin::Safe);
        play(&mut j, &[(true, 25)]); // past the onset
                                     // A 200 ms pause (frame by frame: it may be a turn's end), then the
                                     // speech goes on: still joined.
        assert_eq!(play(&mut j, &[(false, 10)]), vec![1; 10]);
        assert_eq!(play(&mut j, &[(true, 5)]), vec![5]);
        // A 300 ms pause: the next speech is a new start, frame by frame.
        assert_eq!(play(&mut j, &[(false, 15)]), vec![1; 15]);
        assert_eq!(play(&mut j, &[(true, 3)]), vec![1, 1, 1]);
    }

    #[test]
    fn always_joins_every_frame_and_bad_base64_spoils_nothing() {
        let mut j = Joiner::new(60, AppendJoin::Always);
        assert_eq!(play(&mut j, &[(true, 7)]), vec![3, 3]);
        assert_eq!(j.push("A==="), Err(NotBase64));
        assert_eq!(play(&mut j, &[(false, 2)]), vec![3]);
    }
}
