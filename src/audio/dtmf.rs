//! Keypad tones (DTMF), synthesised as mu-law audio for the Media Stream.
//!
//! Twilio's Media Stream has no "send digits" message, so `send_dtmf` plays the
//! tones in-band: each key is the sum of a low-group and a high-group sine
//! (ITU-T Q.23), about 100 ms of tone and 60 ms of silence.

use std::f32::consts::PI;

use super::mulaw;

/// Samples per second of the Media Stream.
pub const SAMPLE_RATE: u32 = 8000;
/// Tone length per key.
pub const TONE_MS: u32 = 100;
/// Silence after each key.
pub const GAP_MS: u32 = 60;
/// Peak amplitude of each of the two sines (a moderate level: mu-law clips near full scale).
const LEVEL: f32 = 7000.0;

/// A key that is not on a phone keypad.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a key on a phone keypad (use 0-9, * and #)")]
pub struct NotAKey(pub char);

/// The (low, high) frequency pair of a key.
pub fn frequencies(key: char) -> Result<(f32, f32), NotAKey> {
    let (row, col) = match key {
        '1' => (0, 0),
        '2' => (0, 1),
        '3' => (0, 2),
        'A' => (0, 3),
        '4' => (1, 0),
        '5' => (1, 1),
        '6' => (1, 2),
        'B' => (1, 3),
        '7' => (2, 0),
        '8' => (2, 1),
        '9' => (2, 2),
        'C' => (2, 3),
        '*' => (3, 0),
        '0' => (3, 1),
        '#' => (3, 2),
        'D' => (3, 3),
        other => return Err(NotAKey(other)),
    };
    const LOW: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
    const HIGH: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    Ok((LOW[row], HIGH[col]))
}

/// The mu-law audio for pressing `digits` in order.
pub fn tones(digits: &str) -> Result<Vec<u8>, NotAKey> {
    let tone_samples = (SAMPLE_RATE * TONE_MS / 1000) as usize;
    let gap_samples = (SAMPLE_RATE * GAP_MS / 1000) as usize;
    let mut out = Vec::with_capacity(digits.len() * (tone_samples + gap_samples));
    for key in digits.chars() {
        let (low, high) = frequencies(key)?;
        for n in 0..tone_samples {
            let t = n as f32 / SAMPLE_RATE as f32;
            let s = LEVEL * ((2.0 * PI * low * t).sin() + (2.0 * PI * high * t).sin());
            out.push(mulaw::encode(s as i16));
        }
        out.extend(std::iter::repeat_n(0xFF, gap_samples));
    }
    Ok(out)
}
