//! A DTMF (keypad tone) detector: Goertzel filters at the eight keypad
//! frequencies over 10 ms blocks of mu-law audio.
//!
//! The telephone simulator runs it over the agent audio it actually played, so
//! the end-to-end tests prove that what `send_dtmf` puts on the line is what a
//! phone menu would hear: the right keys, in order, each long enough. It is
//! written from the ITU-T Q.23 frequency table, independently of the
//! generator in `audio::dtmf`, so a bug in one is not mirrored in the other.

use crate::audio::mulaw;

const RATE: f32 = 8000.0;
/// Samples per analysis block (10 ms).
pub const BLOCK: usize = 80;
const BLOCK_MS: u64 = 10;
const LOW: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const HIGH: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];
/// Mean-square level below which a block is silence (about -50 dBFS).
const MIN_POWER: f32 = 100.0 * 100.0;
/// Share of the block's energy the two strongest keypad bins must hold.
const MIN_PURITY: f32 = 0.6;
/// Blocks a key must last to count (30 ms; Q.24 receivers accept 40 ms tones).
const MIN_BLOCKS: u64 = 3;

/// The (low, high) tone pair of a keypad key, from the same Q.23 table the
/// detector listens for; `None` for a character that is not a key. The
/// simulated Twilio uses it to play `<Play digits>` on the line.
pub fn key_frequencies(key: char) -> Option<(f32, f32)> {
    KEYS.iter().enumerate().find_map(|(row, keys)| {
        keys.iter()
            .position(|&k| k == key)
            .map(|col| (LOW[row], HIGH[col]))
    })
}

/// One key heard: which, when it started and how long it lasted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectedKey {
    /// The key (`0-9`, `*`, `#`, `A-D`).
    pub key: char,
    /// Start, in ms from the first byte given to the detector (10 ms resolution).
    pub start_ms: u64,
    /// Tone length in ms (10 ms resolution).
    pub duration_ms: u64,
}

/// Goertzel power of `samples` at `freq`.
fn goertzel(samples: &[f32], freq: f32) -> f32 {
    let coeff = 2.0 * (2.0 * std::f32::consts::PI * freq / RATE).cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &x in samples {
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

/// The key a block holds, if it is a clean dual tone.
fn classify(block: &[f32]) -> Option<char> {
    let n = block.len() as f32;
    let energy: f32 = block.iter().map(|x| x * x).sum();
    if energy / n < MIN_POWER {
        return None;
    }
    let strongest = |freqs: &[f32; 4]| {
        freqs.iter().map(|&f| goertzel(block, f)).enumerate().fold(
            (0usize, 0.0f32),
            |best, (i, p)| if p > best.1 { (i, p) } else { best },
        )
    };
    let (row, p_low) = strongest(&LOW);
    let (col, p_high) = strongest(&HIGH);
    // A sine of amplitude A gives Goertzel power ≈ (N·A/2)² and energy N·A²/2,
    // so a pure dual tone has 2·(P_low + P_high) / (N·E) ≈ 1.
    let purity = 2.0 * (p_low + p_high) / (n * energy);
    // Neither tone may be much weaker than the other (twist, Q.24: ≤ 8 dB).
    let twist_ok = p_low > 0.0 && p_high > 0.0 && (p_low / p_high).max(p_high / p_low) < 6.3;
    (purity >= MIN_PURITY && twist_ok).then(|| KEYS[row][col])
}

/// A streaming detector: feed it audio as it plays, collect keys as they end.
#[derive(Debug, Default)]
pub struct DtmfDetector {
    pending: Vec<f32>,
    blocks: u64,
    run: Option<(char, u64, u64)>,
}

impl DtmfDetector {
    /// Feed mu-law bytes; returns the keys whose tone ended within them.
    pub fn push(&mut self, mulaw_bytes: &[u8]) -> Vec<DetectedKey> {
        let mut out = Vec::new();
        self.pending
            .extend(mulaw_bytes.iter().map(|&b| f32::from(mulaw::decode(b))));
        let mut at = 0;
        while self.pending.len() - at >= BLOCK {
            let key = classify(&self.pending[at..at + BLOCK]);
            at += BLOCK;
            self.step(key, &mut out);
        }
        self.pending.drain(..at);
        out
    }

    /// End of audio: a tone still sounding counts too.
    pub fn finish(&mut self) -> Vec<DetectedKey> {
        let mut out = Vec::new();
        self.step(None, &mut out);
        out
    }

    fn step(&mut self, key: Option<char>, out: &mut Vec<DetectedKey>) {
        let index = self.blocks;
        self.blocks += 1;
        match (self.run, key) {
            (Some((k, start, len)), Some(now)) if k == now => {
                self.run = Some((k, start, len + 1));
                return;
            }
            (Some((k, start, len)), _) if len >= MIN_BLOCKS => out.push(DetectedKey {
                key: k,
                start_ms: start * BLOCK_MS,
                duration_ms: len * BLOCK_MS,
            }),
            _ => {}
        }
        self.run = key.map(|k| (k, index, 1));
    }
}

/// Every key in a whole buffer of mu-law audio.
pub fn detect(mulaw_bytes: &[u8]) -> Vec<DetectedKey> {
    let mut d = DtmfDetector::default();
    let mut keys = d.push(mulaw_bytes);
    keys.extend(d.finish());
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::dtmf;

    #[test]
    fn decodes_every_key_the_generator_makes_with_its_timing() {
        let all = "0123456789*#";
        let audio = dtmf::tones(&dtmf::Keys::parse(all).unwrap());
        let keys = detect(&audio);
        let got: String = keys.iter().map(|k| k.key).collect();
        assert_eq!(got, all);
        let period = u64::from(dtmf::TONE_MS + dtmf::GAP_MS);
        for (i, k) in keys.iter().enumerate() {
            // 100 ms tones, measured on a 10 ms grid.
            assert!((90..=110).contains(&k.duration_ms), "{k:?}");
            assert!(k.start_ms.abs_diff(i as u64 * period) <= 10, "{k:?}");
        }
        // The gaps: about 60 ms of silence between keys.
        for w in keys.windows(2) {
            let gap = w[1].start_ms - (w[0].start_ms + w[0].duration_ms);
            assert!((50..=70).contains(&gap), "{w:?}");
        }
    }

    #[test]
    fn finds_keys_at_any_offset_after_speech_and_not_in_speech() {
        // Speech-like audio (a voice), then a key starting mid-block.
        let speech = crate::sim::voice::speak("For reservations, press two.");
        let mut audio = speech.clone();
        audio.extend(std::iter::repeat_n(mulaw::SILENCE, 37));
        audio.extend(dtmf::tones(&dtmf::Keys::parse("2#").unwrap()));
        let keys = detect(&audio);
        assert_eq!(keys.iter().map(|k| k.key).collect::<String>(), "2#");
        assert!(detect(&speech).is_empty(), "speech is not a key");
        assert!(detect(&[mulaw::SILENCE; 8000]).is_empty());
        // A single 1 kHz tone (a voicemail beep) is not a key either.
        assert!(detect(&crate::sim::voice::tone(1000.0, 500, 0.3)).is_empty());
    }

    #[test]
    fn key_frequencies_follow_the_keypad() {
        assert_eq!(key_frequencies('1'), Some((697.0, 1209.0)));
        assert_eq!(key_frequencies('#'), Some((941.0, 1477.0)));
        assert_eq!(key_frequencies('D'), Some((941.0, 1633.0)));
        assert_eq!(key_frequencies('w'), None);
        for key in "0123456789*#".chars() {
            assert_eq!(
                key_frequencies(key).map(|(l, h)| (l as u32, h as u32)),
                dtmf::Key::parse(key)
                    .ok()
                    .map(|k| k.frequencies())
                    .map(|(l, h)| (l as u32, h as u32)),
                "{key}"
            );
        }
        // A-D exist on the line's keypad, but are no key the agent presses.
        for key in "ABCD".chars() {
            assert!(key_frequencies(key).is_some() && dtmf::Key::parse(key).is_err());
        }
    }

    #[test]
    fn streaming_in_frames_matches_one_pass() {
        let audio = dtmf::tones(&dtmf::Keys::parse("937").unwrap());
        let mut d = DtmfDetector::default();
        let mut keys = Vec::new();
        for frame in audio.chunks(160) {
            keys.extend(d.push(frame));
        }
        keys.extend(d.finish());
        assert_eq!(keys, detect(&audio));
    }
}
