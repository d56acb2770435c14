//! Keypad keys and their tones (DTMF), synthesised as mu-law audio for the
//! Media Stream.
//!
//! Twilio's Media Stream has no "send digits" message, so `send_dtmf` plays the
//! tones in-band: each key is the sum of a low-group and a high-group sine
//! (ITU-T Q.23), about 100 ms of tone and 60 ms of silence.
//!
//! Keys are parsed once into [`Key`] / [`Keys`] (the agent's tool call, the
//! restaurant's `dtmf` frame); the tone generator trusts the type.

use std::f32::consts::PI;
use std::fmt;

use super::mulaw;

/// Samples per second of the Media Stream.
pub const SAMPLE_RATE: u32 = 8000;
/// Tone length per key.
pub const TONE_MS: u32 = 100;
/// Silence after each key.
pub const GAP_MS: u32 = 60;
/// Peak amplitude of each of the two sines (a moderate level: mu-law clips near full scale).
const LEVEL: f32 = 7000.0;
/// Row frequencies (Hz).
const LOW: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// Column frequencies (Hz) of the twelve keys of a phone keypad.
const HIGH: [f32; 3] = [1209.0, 1336.0, 1477.0];

/// A key that is not on a phone keypad.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a key on a phone keypad (use 0-9, * and #)")]
pub struct NotAKey(pub char);

/// One key of a phone keypad: `0`-`9`, `*` or `#`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    symbol: char,
    row: u8,
    col: u8,
}

impl Key {
    /// The key printed `symbol`.
    pub fn parse(symbol: char) -> Result<Key, NotAKey> {
        let (row, col) = match symbol {
            '1' => (0, 0),
            '2' => (0, 1),
            '3' => (0, 2),
            '4' => (1, 0),
            '5' => (1, 1),
            '6' => (1, 2),
            '7' => (2, 0),
            '8' => (2, 1),
            '9' => (2, 2),
            '*' => (3, 0),
            '0' => (3, 1),
            '#' => (3, 2),
            other => return Err(NotAKey(other)),
        };
        Ok(Key { symbol, row, col })
    }

    /// The (low, high) frequency pair of its tone.
    pub fn frequencies(self) -> (f32, f32) {
        (LOW[usize::from(self.row)], HIGH[usize::from(self.col)])
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.symbol)
    }
}

/// Keys to press in order: 1 to [`Keys::MAX`] keys of a phone keypad.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys(Vec<Key>);

/// Why text is not a sequence of keys to press.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeysError {
    /// None, or too many.
    #[error("digits must be 1 to {} keys", Keys::MAX)]
    Count,
    /// A character that is no key.
    #[error(transparent)]
    NotAKey(#[from] NotAKey),
}

impl Keys {
    /// The most keys one press may hold (a menu choice, an extension).
    pub const MAX: usize = 32;

    /// Parse keys as a person writes them; whitespace is ignored (`"2 #"`).
    pub fn parse(text: &str) -> Result<Keys, KeysError> {
        let symbols: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
        if symbols.is_empty() || symbols.len() > Keys::MAX {
            return Err(KeysError::Count);
        }
        let keys = symbols
            .into_iter()
            .map(Key::parse)
            .collect::<Result<Vec<Key>, NotAKey>>()?;
        Ok(Keys(keys))
    }

    /// The keys, in order.
    pub fn iter(&self) -> impl Iterator<Item = Key> + '_ {
        self.0.iter().copied()
    }
}

impl fmt::Display for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|k| k.fmt(f))
    }
}

/// The mu-law audio for pressing `keys` in order.
pub fn tones(keys: &Keys) -> Vec<u8> {
    let tone_samples = (SAMPLE_RATE * TONE_MS / 1000) as usize;
    let gap_samples = (SAMPLE_RATE * GAP_MS / 1000) as usize;
    let mut out = Vec::with_capacity(keys.0.len() * (tone_samples + gap_samples));
    for key in keys.iter() {
        let (low, high) = key.frequencies();
        for n in 0..tone_samples {
            let t = n as f32 / SAMPLE_RATE as f32;
            let s = LEVEL * ((2.0 * PI * low * t).sin() + (2.0 * PI * high * t).sin());
            out.push(mulaw::encode(s as i16));
        }
        out.extend(std::iter::repeat_n(0xFF, gap_samples));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_once_when_parsed() {
        assert_eq!(Keys::parse("2 #").unwrap().to_string(), "2#");
        assert_eq!(Keys::parse("").unwrap_err(), KeysError::Count);
        assert_eq!(Keys::parse(&"1".repeat(33)).unwrap_err(), KeysError::Count);
        assert_eq!(
            Keys::parse("12a").unwrap_err().to_string(),
            "'a' is not a key on a phone keypad (use 0-9, * and #)"
        );
        assert_eq!(Key::parse('A'), Err(NotAKey('A')));
        assert_eq!(Key::parse('#').unwrap().frequencies(), (941.0, 1477.0));
        assert_eq!(Key::parse('5').unwrap().frequencies(), (770.0, 1336.0));
    }

    #[test]
    fn each_key_is_a_tone_then_a_gap() {
        let audio = tones(&Keys::parse("19").unwrap());
        let per_key = (SAMPLE_RATE * (TONE_MS + GAP_MS) / 1000) as usize;
        assert_eq!(audio.len(), 2 * per_key);
        let gap = (SAMPLE_RATE * GAP_MS / 1000) as usize;
        assert!(audio[per_key - gap..per_key].iter().all(|&b| b == 0xFF));
        assert!(audio[..per_key - gap].iter().any(|&b| b != 0xFF));
    }
}
