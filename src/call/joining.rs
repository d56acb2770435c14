//! Which of the callee's frames may wait, to be joined with the next ones
//! into one `input_audio_buffer.append`.
//!
//! Twilio sends 20 ms frames, 50 a second per call; each append is one more
//! message on the model's socket, the bridge's main cost in a real
//! conversation (docs/PERFORMANCE.md). Joining frames saves those messages,
//! but a held frame reaches the model later, and the model decides two
//! things from the audio's timing: that the callee started talking (speech
//! start, which interrupts the agent: barge-in) and that the callee stopped
//! (the end of a turn, when [`SILENCE_DURATION_MS`] of silence have come
//! in). So with [`AppendJoin::Safe`] (the default) a frame waits only where
//! the model is deciding nothing from it:
//!
//! - the first [`ONSET_MS`] of speech go out frame by frame (speech start
//!   and barge-in are not delayed);
//! - in a silence, the frames that may close the model's turn window go out
//!   frame by frame: those from [`WINDOW_OPENS_MS`] to [`TURN_WINDOW_MS`],
//!   [`WINDOW_MARGIN_MS`] either side of [`SILENCE_DURATION_MS`] (the model
//!   and the bridge may disagree on where the speech ended), each with
//!   everything held before it. The window closes on the model's side when
//!   its last frame comes in, whenever the frames before it came: those
//!   wait;
//! - speech that goes on, and the start of a silence, are joined up to
//!   `append_ms` per append;
//! - once the model has announced its decision (`speech_started`: it heard
//!   the speech start, [`Joiner::model_heard_speech`]; `speech_stopped`:
//!   the turn is over, [`Joiner::model_ended_the_turn`]), the rest of that
//!   onset or window decides nothing more, and is joined too;
//! - a silence past the turn window is joined up to [`STILL_HOLD_MS`] while
//!   the line is still ([`STILL_RMS`]: nobody talking near the phone), and
//!   up to `append_ms` while it is merely quiet. Nothing is decided from it:
//!   it goes out at the latest with the next speech start, which is not
//!   delayed.
//!
//! Loud or quiet is the frame's level ([`LOUD_RMS`], well below what the
//! model's VAD calls speech). Where the two disagree (noise the bridge calls
//! loud, the model silence; a voice too soft for the bridge that the model
//! hears) the model hears a frame at most `append_ms` − 20 ms late: the
//! bound of the fixed join ([`AppendJoin::Always`]), which joins every frame
//! and so costs that delay everywhere. Only on a still line (below
//! [`STILL_RMS`], about −50 dBFS) past the turn window can a frame wait
//! longer, up to [`STILL_HOLD_MS`].
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
/// How far the model's idea of where speech ended may be from the
/// bridge's (in either direction) with every frame that may close the
/// model's turn window still sent as it comes.
pub const WINDOW_MARGIN_MS: u64 = 200;
/// From this far into a silence, frames go out as they come: the model's
/// turn window may close with any of them.
pub const WINDOW_OPENS_MS: u64 = SILENCE_DURATION_MS - WINDOW_MARGIN_MS;
/// Up to this far into a silence, frames go out as they come (the model's
/// silence window that ends a turn, and the margin).
pub const TURN_WINDOW_MS: u64 = SILENCE_DURATION_MS + WINDOW_MARGIN_MS;
/// A pause at least this long makes the next speech a new start (its first
/// [`ONSET_MS`] go out as they come again): shorter than the turn window, so
/// speech after any pause the model may have taken for a turn end counts.
pub const RESTART_AFTER_MS: u64 = SILENCE_DURATION_MS / 2;
/// A frame whose RMS (16-bit linear) reaches this is loud: about −44 dBFS,
/// above a phone line's idle noise and far below speech (the model's VAD
/// stand-in in `sim/vad.rs` starts speech at 800).
pub const LOUD_RMS: f64 = 200.0;
/// A frame below this RMS is still: about −50 dBFS, a line with nobody
/// talking near the phone (digital silence, comfort noise, a quiet room).
pub const STILL_RMS: f64 = 100.0;
/// Past the turn window, a still line's frames are joined up to this much.
pub const STILL_HOLD_MS: u64 = 1000;

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
    /// Most bytes one append carries on a still line past the turn window
    /// ([`STILL_HOLD_MS`], or `append_ms` if that is longer).
    still_bytes: usize,
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
            still_bytes: max_bytes.max(STILL_HOLD_MS as usize * mulaw::BYTES_PER_MS),
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
        let send_at = match self.policy {
            AppendJoin::Always => self.max_bytes,
            AppendJoin::Safe => self.send_at(before),
        };
        if self.held.len() < send_at {
            return Ok(None);
        }
        let mut append = String::with_capacity(self.held.len() * 4 / 3 + 60);
        rt::input_audio_append_bytes(&self.held, &mut append);
        self.held.clear();
        Ok(Some(append))
    }

    /// The model heard the callee start talking (`speech_started`): its
    /// decision is made, so the rest of this speech's onset may wait.
    pub fn model_heard_speech(&mut self) {
        self.talk_ms = self.talk_ms.max(ONSET_MS);
    }

    /// The model ended the callee's turn (`speech_stopped`): its window
    /// closed, so the rest of this silence's window may wait. Speech after
    /// it is a new start.
    pub fn model_ended_the_turn(&mut self) {
        if self.quiet_ms > 0 {
            self.quiet_ms = self.quiet_ms.max(TURN_WINDOW_MS);
        }
    }

    /// Classify the frame at `held[from..]`: how many bytes may be held
    /// with it (0: the model may be deciding something from it, send now).
    fn send_at(&mut self, from: usize) -> usize {
        let frame = &self.held[from..];
        let ms = (frame.len() / mulaw::BYTES_PER_MS) as u64;
        let level = mulaw::rms(frame);
        if level >= LOUD_RMS {
            if self.quiet_ms >= RESTART_AFTER_MS {
                self.talk_ms = 0;
            }
            self.quiet_ms = 0;
            self.talk_ms = self.talk_ms.saturating_add(ms);
            return if self.talk_ms <= ONSET_MS {
                0
            } else {
                self.max_bytes
            };
        }
        self.quiet_ms = self.quiet_ms.saturating_add(ms);
        if (WINDOW_OPENS_MS..=TURN_WINDOW_MS).contains(&self.quiet_ms) {
            0
        } else if self.quiet_ms > TURN_WINDOW_MS && level < STILL_RMS {
            self.still_bytes
        } else {
            self.max_bytes
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    const LOUD: i16 = 6000;
    /// Between [`STILL_RMS`] and [`LOUD_RMS`]: a quiet line that is not still.
    const NOISE: i16 = 150;
    const STILL: i16 = 0;

    /// A 20 ms frame: a square wave of `amplitude` (0: mu-law silence).
    fn frame(amplitude: i16) -> String {
        let bytes: Vec<u8> = (0..160)
            .map(|i| match (amplitude, i % 8 < 4) {
                (0, _) => mulaw::SILENCE,
                (a, true) => mulaw::encode(a),
                (a, false) => mulaw::encode(-a),
            })
            .collect();
        b64(&bytes)
    }

    /// Push `n` frames of each amplitude; the number of frames each append carried.
    fn play(j: &mut Joiner, script: &[(i16, usize)]) -> Vec<usize> {
        let mut sent = Vec::new();
        for &(amplitude, n) in script {
            let f = frame(amplitude);
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

    fn ones(n: usize) -> Vec<usize> {
        vec![1; n]
    }

    #[test]
    fn the_levels_are_what_the_tests_say() {
        let level = |a| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(frame(a))
                .unwrap();
            mulaw::rms(&bytes)
        };
        assert!(level(LOUD) >= LOUD_RMS);
        assert!((STILL_RMS..LOUD_RMS).contains(&level(NOISE)));
        assert!(level(STILL) < STILL_RMS);
    }

    #[test]
    fn speech_start_and_the_turn_window_go_out_frame_by_frame() {
        let mut j = Joiner::new(100, AppendJoin::Safe);
        // A silence from the start: its first 380 ms joined by five (100
        // ms), then from 400 to 800 ms (where the model's 600 ms window may
        // close) frame by frame, the first with the four held before it.
        let sent = play(&mut j, &[(STILL, 40)]);
        assert_eq!(sent, [vec![5, 5, 5, 5], ones(20)].concat());
        // Past the window a still line is held up to a second...
        assert_eq!(play(&mut j, &[(STILL, 49)]), Vec::<usize>::new());
        assert_eq!(play(&mut j, &[(STILL, 1)]), vec![50]);
        // ...and goes out at the latest with the next speech start, whose
        // first 400 ms go out frame by frame; speech that goes on is joined.
        play(&mut j, &[(STILL, 12)]);
        let sent = play(&mut j, &[(LOUD, 20 + 10)]);
        assert_eq!(sent[0], 13, "held silence goes with the speech start");
        assert_eq!(&sent[1..20], &ones(19)[..]);
        assert_eq!(&sent[20..], &[5, 5]);
        // Three loud frames and the start of the silence after them are
        // joined; the frames that may close the window go frame by frame.
        let sent = play(&mut j, &[(LOUD, 3), (STILL, 40)]);
        assert_eq!(sent, [vec![5, 5, 5, 5, 3], ones(20)].concat());
    }

    #[test]
    fn once_the_model_has_decided_the_rest_of_the_onset_or_window_is_joined() {
        let mut j = Joiner::new(100, AppendJoin::Safe);
        // Twenty still frames held past the window.
        play(&mut j, &[(STILL, 60)]);
        // A speech start goes out frame by frame until the model says it
        // heard it; then the rest of the onset is joined.
        assert_eq!(play(&mut j, &[(LOUD, 3)]), vec![21, 1, 1]);
        j.model_heard_speech();
        assert_eq!(play(&mut j, &[(LOUD, 10)]), vec![5, 5]);
        // The window goes out frame by frame until the model ends the turn.
        let sent = play(&mut j, &[(STILL, 25)]);
        assert_eq!(sent, [vec![5, 5, 5, 5], ones(5)].concat());
        j.model_ended_the_turn();
        assert_eq!(play(&mut j, &[(STILL, 49)]), Vec::<usize>::new());
        assert_eq!(play(&mut j, &[(STILL, 1)]), vec![50]);
        // The next speech is a new start.
        assert_eq!(play(&mut j, &[(LOUD, 2)]), vec![1, 1]);
        // The model's word does not end a window the bridge calls speech.
        let mut j = Joiner::new(100, AppendJoin::Safe);
        play(&mut j, &[(LOUD, 25)]);
        j.model_ended_the_turn();
        assert_eq!(play(&mut j, &[(STILL, 20)]), vec![5, 5, 5, 5]);
        assert_eq!(play(&mut j, &[(STILL, 2)]), vec![1, 1]);
    }

    #[test]
    fn a_quiet_line_that_is_not_still_is_joined_only_up_to_append_ms() {
        let mut j = Joiner::new(100, AppendJoin::Safe);
        play(&mut j, &[(NOISE, 40)]); // through the turn window
        assert_eq!(play(&mut j, &[(NOISE, 20)]), vec![5; 4]);
        // Still frames are held longer; a noisy one takes them out once
        // append_ms is reached.
        assert_eq!(play(&mut j, &[(STILL, 20)]), Vec::<usize>::new());
        assert_eq!(play(&mut j, &[(NOISE, 1)]), vec![21]);
    }

    #[test]
    fn a_short_pause_does_not_restart_the_speech_but_a_longer_one_does() {
        let mut j = Joiner::new(100, AppendJoin::Safe);
        // Past the onset.
        play(&mut j, &[(LOUD, 25)]);
        // A 200 ms pause is joined like the speech around it (the window
        // opens at 400 ms), and the speech goes on: still joined.
        assert_eq!(play(&mut j, &[(STILL, 10)]), vec![5, 5]);
        assert_eq!(play(&mut j, &[(LOUD, 5)]), vec![5]);
        // A 300 ms pause: the next speech is a new start, frame by frame.
        assert_eq!(play(&mut j, &[(STILL, 15)]), vec![5, 5, 5]);
        assert_eq!(play(&mut j, &[(LOUD, 3)]), vec![1, 1, 1]);
    }

    #[test]
    fn always_joins_every_frame_and_bad_base64_spoils_nothing() {
        let mut j = Joiner::new(60, AppendJoin::Always);
        assert_eq!(play(&mut j, &[(LOUD, 7)]), vec![3, 3]);
        assert_eq!(j.push("A==="), Err(NotBase64));
        assert_eq!(play(&mut j, &[(STILL, 2)]), vec![3]);
    }
}
