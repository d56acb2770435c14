//! A small energy VAD over mu-law frames, standing in for the Realtime API's
//! `server_vad`: it decides when the callee starts and stops talking on the
//! audio clock (bytes / 8), which drives turn events in the Realtime stand-in.

use crate::audio::mulaw;

/// A turn boundary, in ms on the audio clock (all audio pushed so far).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VadEvent {
    /// Speech began; like OpenAI, `audio_start_ms` includes the prefix padding.
    SpeechStarted {
        /// Start of the speech minus `prefix_padding_ms` (not below 0).
        audio_start_ms: u64,
    },
    /// Speech ended; like OpenAI, `audio_end_ms` includes the trailing silence.
    SpeechStopped {
        /// Audio clock when the silence reached `silence_duration_ms`.
        audio_end_ms: u64,
    },
}

/// Energy VAD state. Feed it consecutive frames (20 ms = 160 bytes is
/// typical, any length works) with [`Vad::push`].
#[derive(Clone, Debug)]
pub struct Vad {
    rms_threshold: f64,
    silence_duration_ms: u64,
    prefix_padding_ms: u64,
    bytes: u64,
    speaking: bool,
    loud_run: u32,
    run_start_ms: u64,
    quiet_ms: u64,
}

/// Loud frames in a row needed before speech counts as started (rejects clicks).
const START_FRAMES: u32 = 2;

impl Vad {
    /// `threshold` is OpenAI's `server_vad` threshold (0.0–1.0, default 0.5;
    /// higher needs louder audio), mapped to a frame RMS of `300 + 1000 *
    /// threshold` (16-bit linear units; 800 at 0.5, far above `0xFF` silence
    /// and well below speech at a normal phone level).
    pub fn new(threshold: f64, silence_duration_ms: u64, prefix_padding_ms: u64) -> Self {
        let t = if threshold.is_finite() {
            threshold.clamp(0.0, 1.0)
        } else {
            0.5
        };
        Vad {
            rms_threshold: 300.0 + 1000.0 * t,
            silence_duration_ms,
            prefix_padding_ms,
            bytes: 0,
            speaking: false,
            loud_run: 0,
            run_start_ms: 0,
            quiet_ms: 0,
        }
    }

    /// Change the parameters (after a `session.update`) keeping the audio
    /// clock and the current speech state.
    pub fn set_params(&mut self, threshold: f64, silence_duration_ms: u64, prefix_padding_ms: u64) {
        let fresh = Vad::new(threshold, silence_duration_ms, prefix_padding_ms);
        self.rms_threshold = fresh.rms_threshold;
        self.silence_duration_ms = silence_duration_ms;
        self.prefix_padding_ms = prefix_padding_ms;
    }

    /// The audio clock: ms of audio pushed so far.
    pub fn audio_ms(&self) -> u64 {
        self.bytes / mulaw::BYTES_PER_MS as u64
    }

    /// True between `SpeechStarted` and `SpeechStopped`.
    pub fn is_speaking(&self) -> bool {
        self.speaking
    }

    /// Feed one frame; returns a turn boundary if this frame produced one.
    pub fn push(&mut self, frame: &[u8]) -> Option<VadEvent> {
        let start_ms = self.audio_ms();
        self.bytes += frame.len() as u64;
        let end_ms = self.audio_ms();
        let frame_ms = end_ms - start_ms;
        let loud = mulaw::rms(frame) >= self.rms_threshold;
        if self.speaking {
            if loud {
                self.quiet_ms = 0;
                None
            } else {
                self.quiet_ms += frame_ms;
                if self.quiet_ms >= self.silence_duration_ms {
                    self.speaking = false;
                    self.loud_run = 0;
                    self.quiet_ms = 0;
                    Some(VadEvent::SpeechStopped {
                        audio_end_ms: end_ms,
                    })
                } else {
                    None
                }
            }
        } else if loud {
            if self.loud_run == 0 {
                self.run_start_ms = start_ms;
            }
            self.loud_run += 1;
            if self.loud_run >= START_FRAMES {
                self.speaking = true;
                self.quiet_ms = 0;
                Some(VadEvent::SpeechStarted {
                    audio_start_ms: self.run_start_ms.saturating_sub(self.prefix_padding_ms),
                })
            } else {
                None
            }
        } else {
            self.loud_run = 0;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::scenario::{clip, CLIP_TEXTS};

    fn run(vad: &mut Vad, audio: &[u8]) -> Vec<VadEvent> {
        audio.chunks(160).filter_map(|f| vad.push(f)).collect()
    }

    #[test]
    fn silence_never_triggers() {
        let mut vad = Vad::new(0.5, 500, 300);
        assert!(run(&mut vad, &[0xFF; 8000 * 5]).is_empty());
        assert!(run(&mut vad, &[0x7F; 8000]).is_empty());
        assert_eq!(vad.audio_ms(), 6000);
    }

    #[test]
    fn each_clip_is_one_utterance() {
        for (id, _) in CLIP_TEXTS {
            let mut vad = Vad::new(0.5, 500, 300);
            let mut audio = vec![0xFF; 8000]; // 1 s lead-in
            let bytes = clip(id).unwrap();
            audio.extend_from_slice(bytes);
            audio.extend(vec![0xFF; 8000]);
            let events = run(&mut vad, &audio);
            assert_eq!(events.len(), 2, "{id}: {events:?}");
            let VadEvent::SpeechStarted { audio_start_ms } = events[0] else {
                panic!("{id}: {events:?}")
            };
            let VadEvent::SpeechStopped { audio_end_ms } = events[1] else {
                panic!("{id}: {events:?}")
            };
            // starts within the first 200 ms of the clip (minus 300 ms padding)
            assert!(
                (700..=900).contains(&audio_start_ms),
                "{id}: start {audio_start_ms}"
            );
            let clip_end = 1000 + bytes.len() as u64 / 8;
            assert!(
                audio_end_ms >= clip_end && audio_end_ms <= clip_end + 500 + 40,
                "{id}: end {audio_end_ms} clip end {clip_end}"
            );
        }
    }

    #[test]
    fn synthetic_voice_is_one_utterance() {
        let mut vad = Vad::new(0.5, 500, 0);
        let mut audio = crate::sim::voice::speak(
            "Hello, this is an automated assistant calling on behalf of Alex Doe. I'd like a table.",
        );
        audio.extend(vec![0xFF; 8000]);
        let events = run(&mut vad, &audio);
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0], VadEvent::SpeechStarted { audio_start_ms: 0 });
    }

    #[test]
    fn a_single_click_is_not_speech() {
        let mut vad = Vad::new(0.5, 500, 0);
        let mut audio = vec![0xFF; 1600];
        audio.extend(crate::sim::voice::tone(300.0, 20, 0.5));
        audio.extend(vec![0xFF; 1600]);
        assert!(run(&mut vad, &audio).is_empty());
    }
}
