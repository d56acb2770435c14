//! The stand-in agent's "voice": deterministic, speech-like mu-law audio.
//!
//! Not intelligible speech, but it has what the pipeline cares about: a voiced
//! buzz (120–180 Hz fundamental with harmonics), a syllable-rate amplitude
//! envelope, short gaps between words and longer ones at punctuation, a
//! length proportional to the text (about 65 ms per character), and a level
//! an energy VAD clearly hears. Deterministic so tests can compare lengths and bytes.

use crate::audio::mulaw;
use std::f32::consts::PI;

const RATE: f32 = 8000.0;
/// Duration of one voiced character in ms.
const CHAR_MS: u32 = 65;
/// Quiet gap for a space.
const SPACE_MS: u32 = 50;
/// Quiet gap for `,` `;` `:`.
const COMMA_MS: u32 = 120;
/// Quiet gap for `.` `!` `?`.
const STOP_MS: u32 = 180;
/// Characters per syllable of the envelope (~5 syllables per second).
const CHARS_PER_SYLLABLE: f32 = 3.0;
/// Peak level as a fraction of full scale.
const LEVEL: f32 = 0.45;

enum Seg {
    Voiced { chars: u32, vowels: Vec<bool> },
    Quiet(u32),
}

fn segments(text: &str) -> Vec<Seg> {
    let mut segs = Vec::new();
    let mut word: Vec<bool> = Vec::new();
    let flush = |word: &mut Vec<bool>, segs: &mut Vec<Seg>| {
        if !word.is_empty() {
            segs.push(Seg::Voiced {
                chars: word.len() as u32,
                vowels: std::mem::take(word),
            });
        }
    };
    for c in text.chars() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                flush(&mut word, &mut segs);
                segs.push(Seg::Quiet(SPACE_MS));
            }
            ',' | ';' | ':' => {
                flush(&mut word, &mut segs);
                segs.push(Seg::Quiet(COMMA_MS));
            }
            '.' | '!' | '?' => {
                flush(&mut word, &mut segs);
                segs.push(Seg::Quiet(STOP_MS));
            }
            c => word.push(matches!(
                c.to_ascii_lowercase(),
                'a' | 'e' | 'i' | 'o' | 'u' | 'y'
            )),
        }
    }
    flush(&mut word, &mut segs);
    segs
}

/// Synthesize `text` as speech-like mu-law (8 kHz mono). Same text, same bytes.
/// Empty or all-punctuation text gives only the quiet gaps (possibly nothing).
pub fn speak(text: &str) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    let mut phase = 0.0f32; // fundamental phase, continuous across the utterance
    let mut t_total = 0usize; // samples since the start, drives the intonation
    let harmonics: [f32; 10] = std::array::from_fn(|k| 1.0 / (k as f32 + 1.0));
    let norm: f32 = harmonics.iter().sum();
    for seg in segments(text) {
        match seg {
            Seg::Quiet(ms) => {
                let n = (ms * 8) as usize;
                out.extend(std::iter::repeat_n(mulaw::SILENCE, n));
                t_total += n;
            }
            Seg::Voiced { chars, vowels } => {
                let n = (chars * CHAR_MS * 8) as usize;
                let samples_per_char = (CHAR_MS * 8) as usize;
                let ramp = 80usize; // 10 ms attack/release against clicks
                for i in 0..n {
                    let t = t_total as f32 / RATE;
                    // intonation: 150 Hz ± 25 Hz, slow wander plus a faster wobble
                    let f0 = 150.0
                        + 22.0 * (2.0 * PI * t / 1.7).sin()
                        + 6.0 * (2.0 * PI * t * 3.1).sin();
                    phase += 2.0 * PI * f0 / RATE;
                    if phase > 2.0 * PI {
                        phase -= 2.0 * PI;
                    }
                    let mut s = 0.0;
                    for (k, a) in harmonics.iter().enumerate() {
                        s += a * ((k as f32 + 1.0) * phase).sin();
                    }
                    s /= norm;
                    // syllable envelope (never fully closed inside a word)
                    let char_pos = i as f32 / samples_per_char as f32;
                    let syl = (char_pos / CHARS_PER_SYLLABLE).fract();
                    let env_syl = 0.35 + 0.65 * (PI * syl).sin();
                    let vowel = vowels.get(i / samples_per_char).copied().unwrap_or(false);
                    let env_char = if vowel { 1.0 } else { 0.7 };
                    let edge = (i.min(n - 1 - i) as f32 / ramp as f32).min(1.0);
                    let v = s * env_syl * env_char * edge * LEVEL * 32767.0;
                    out.push(mulaw::encode(v.clamp(-32768.0, 32767.0) as i16));
                    t_total += 1;
                }
            }
        }
    }
    out
}

/// A sine tone of `freq_hz` for `ms` at `level` (fraction of full scale,
/// clamped to 0..=1), with 5 ms fades; used for the voicemail beep and DTMF-like tests.
pub fn tone(freq_hz: f32, ms: u32, level: f32) -> Vec<u8> {
    let n = (ms * 8) as usize;
    let level = level.clamp(0.0, 1.0);
    let ramp = 40usize;
    (0..n)
        .map(|i| {
            let edge = (i.min(n - 1 - i) as f32 / ramp as f32).min(1.0);
            let v = (2.0 * PI * freq_hz * i as f32 / RATE).sin() * level * edge * 32767.0;
            mulaw::encode(v.clamp(-32768.0, 32767.0) as i16)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speak_is_deterministic_and_sized() {
        let a = speak("Hello there, world.");
        assert_eq!(a, speak("Hello there, world."));
        // 15 letters*65 + space 50 + comma 120 + space 50 + stop 180 = 1375 ms
        assert_eq!(a.len(), 1375 * 8);
        assert!(speak("").is_empty());
    }

    #[test]
    fn speak_is_loud_enough() {
        let a = speak("Good evening");
        assert!(
            mulaw::rms(&a[..160 * 10]) > 1500.0,
            "{}",
            mulaw::rms(&a[..1600])
        );
    }

    #[test]
    fn tone_has_the_level() {
        let t = tone(1000.0, 500, 0.3);
        assert_eq!(t.len(), 4000);
        let rms = mulaw::rms(&t[400..3600]);
        assert!((rms - 0.3 * 32767.0 / 2f64.sqrt()).abs() < 400.0, "{rms}");
    }
}
