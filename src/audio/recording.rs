//! Call recording (`--record`): a stereo 8 kHz WAV per call, left = the
//! restaurant (inbound), right = the agent, time-aligned on the call's audio
//! clock.
//!
//! The live bridge only hands over the base64 text it already has (one small
//! copy per frame, through an unbounded channel); base64 and mu-law decoding
//! and the file writing happen in the recorder's own task, off the media hot
//! path. The agent's audio is placed where Twilio actually played it: Twilio
//! plays our audio back to back, so a chunk starts at the end of the previous
//! one, or when it was sent if the buffer had run dry, and a `clear` cuts
//! everything not yet played.
//!
//! The file is written as the call goes: audio older than a couple of seconds
//! on the call's clock can no longer change, so once a second it is appended
//! to `{CallSid}.wav.part` and the header updated; at the end the file is
//! finalised and renamed to `{CallSid}.wav`. A crash loses at most the last
//! few seconds, and memory stays flat however long the call.

use std::path::{Path, PathBuf};

use base64::Engine;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::mulaw;

/// Samples per millisecond at 8 kHz.
const SAMPLES_PER_MS: usize = 8;
/// Audio this far behind the inbound clock is final and may be written out.
const SETTLED_MS: u64 = 2000;
/// Write out at least this much at a time.
const WRITE_CHUNK_SAMPLES: usize = 8000;

/// Where the recording of `call_sid` lives under `data_dir`, or `None` when the
/// id could not be a CallSid (so a crafted id can never name another path).
pub fn recording_path(data_dir: &Path, call_sid: &str) -> Option<PathBuf> {
    let plausible = !call_sid.is_empty()
        && call_sid.len() <= 64
        && call_sid.bytes().all(|b| b.is_ascii_alphanumeric());
    plausible.then(|| data_dir.join("recordings").join(format!("{call_sid}.wav")))
}

/// The two tracks being assembled, as linear 16-bit samples, from sample
/// `base` of the call on (what came before was written out).
#[derive(Debug, Default, Clone)]
pub struct Tracks {
    /// The restaurant (inbound), indexed by the call's audio clock minus `base`.
    pub left: Vec<i16>,
    /// The agent, where it played, indexed the same way.
    pub right: Vec<i16>,
    /// Sample index where the agent audio queued so far stops playing.
    play_end: usize,
    /// Call sample index of `left[0]` / `right[0]`.
    base: usize,
}

fn write_at(track: &mut Vec<i16>, base: usize, at: usize, bytes: &[u8]) {
    // Audio for a stretch already written out is too late: drop that part.
    if at + bytes.len() <= base {
        return;
    }
    let skip = base.saturating_sub(at);
    let (at, bytes) = (at + skip - base, &bytes[skip..]);
    let end = at + bytes.len();
    if track.len() < end {
        track.resize(end, 0);
    }
    for (slot, &b) in track[at..end].iter_mut().zip(bytes) {
        *slot = mulaw::decode(b);
    }
}

impl Tracks {
    /// Inbound audio whose first sample is at `at_ms` (Twilio's `media.timestamp`).
    pub fn inbound(&mut self, at_ms: u64, mulaw_bytes: &[u8]) {
        write_at(
            &mut self.left,
            self.base,
            at_ms as usize * SAMPLES_PER_MS,
            mulaw_bytes,
        );
    }

    /// Agent audio sent to Twilio at `sent_ms`: it plays after whatever is
    /// still queued, or at once if nothing is.
    pub fn outbound(&mut self, sent_ms: u64, mulaw_bytes: &[u8]) {
        let start = self.play_end.max(sent_ms as usize * SAMPLES_PER_MS);
        write_at(&mut self.right, self.base, start, mulaw_bytes);
        self.play_end = start + mulaw_bytes.len();
    }

    /// Twilio `clear` at `at_ms`: agent audio not yet played is dropped.
    pub fn clear(&mut self, at_ms: u64) {
        let cut = (at_ms as usize * SAMPLES_PER_MS).max(self.base);
        if self.right.len() > cut - self.base {
            self.right.truncate(cut - self.base);
        }
        self.play_end = self.play_end.min(cut);
    }

    /// Take the samples before call sample `until` (both tracks,
    /// interleaved left/right) out of the buffers: they are final.
    pub fn take_settled(&mut self, until: usize) -> Vec<i16> {
        let n = until.saturating_sub(self.base);
        let mut out = Vec::with_capacity(2 * n);
        for i in 0..n {
            out.push(self.left.get(i).copied().unwrap_or(0));
            out.push(self.right.get(i).copied().unwrap_or(0));
        }
        self.left.drain(..n.min(self.left.len()));
        self.right.drain(..n.min(self.right.len()));
        self.base += n;
        out
    }

    /// Everything still buffered, interleaved (the end of the call).
    pub fn take_rest(&mut self) -> Vec<i16> {
        let end = self.base + self.left.len().max(self.right.len());
        self.take_settled(end)
    }
}

/// Audio for the recorder, stamped on the call's audio clock (ms).
pub enum Audio {
    /// Inbound media (base64 as received) at `media.timestamp`.
    Inbound(u64, String),
    /// Agent audio (base64 as forwarded) sent at this clock.
    Outbound(u64, String),
    /// Agent audio already in mu-law (keypad tones) sent at this clock.
    OutboundMulaw(u64, Vec<u8>),
    /// A `clear` sent at this clock: unplayed agent audio is cut.
    Clear(u64),
}

/// The live call's handle on its recorder task. Dropping it ends the
/// recording; the task then writes the file.
#[derive(Debug)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Audio>,
}

impl std::fmt::Debug for Audio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("recorder audio")
    }
}

type WavFile = hound::WavWriter<std::io::BufWriter<std::fs::File>>;

fn open_wav(path: &Path) -> Result<WavFile, hound::Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    hound::WavWriter::create(path, wav_spec())
}

fn wav_spec() -> hound::WavSpec {
    hound::WavSpec {
        channels: 2,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    }
}

fn write_samples(w: &mut WavFile, interleaved: &[i16]) -> Result<(), hound::Error> {
    for &s in interleaved {
        w.write_sample(s)?;
    }
    Ok(())
}

fn decode_b64(b64: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

impl Recorder {
    /// Start recording to `path`; the returned task resolves to the path once
    /// the WAV is written (after the `Recorder` is dropped), or `None` if it
    /// could not be.
    pub fn start(path: PathBuf) -> (Recorder, tokio::task::JoinHandle<Option<PathBuf>>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Audio>();
        let task = tokio::spawn(async move {
            let part = path.with_extension("wav.part");
            let mut file = match open_wav(&part) {
                Ok(w) => Some(w),
                Err(e) => {
                    warn!(error = %e, path = %part.display(), "cannot create the call recording");
                    None
                }
            };
            let mut tracks = Tracks::default();
            let mut bad = 0u64;
            while let Some(event) = rx.recv().await {
                match event {
                    Audio::Inbound(at, b64) => {
                        match decode_b64(&b64) {
                            Some(bytes) => tracks.inbound(at, &bytes),
                            None => bad += 1,
                        }
                        let settled = at.saturating_sub(SETTLED_MS) as usize * SAMPLES_PER_MS;
                        if settled >= tracks.base + WRITE_CHUNK_SAMPLES {
                            let samples = tracks.take_settled(settled);
                            if let Some(w) = file.as_mut() {
                                // A second of audio: small enough to write inline.
                                if let Err(e) = write_samples(w, &samples).and_then(|()| w.flush())
                                {
                                    warn!(error = %e, "cannot write the call recording");
                                    file = None;
                                }
                            }
                        }
                    }
                    Audio::Outbound(at, b64) => match decode_b64(&b64) {
                        Some(bytes) => tracks.outbound(at, &bytes),
                        None => bad += 1,
                    },
                    Audio::OutboundMulaw(at, bytes) => tracks.outbound(at, &bytes),
                    Audio::Clear(at) => tracks.clear(at),
                }
            }
            if bad > 0 {
                debug!(bad, "recorder skipped undecodable audio");
            }
            let mut w = file?;
            let rest = tracks.take_rest();
            let finished = write_samples(&mut w, &rest)
                .and_then(|()| w.finalize())
                .map_err(|e| e.to_string())
                .and_then(|()| std::fs::rename(&part, &path).map_err(|e| e.to_string()));
            match finished {
                Ok(()) => Some(path),
                Err(e) => {
                    warn!(error = %e, "cannot finish the call recording");
                    None
                }
            }
        });
        (Recorder { tx }, task)
    }

    /// Hand `audio` to the recorder task (a channel send; never blocks).
    pub fn record(&self, audio: Audio) {
        let _ = self.tx.send(audio);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOUD: u8 = 0x80; // decodes to +32124

    #[test]
    fn agent_audio_plays_back_to_back_or_when_sent_and_clear_cuts() {
        let mut t = Tracks::default();
        t.inbound(0, &[LOUD; 160]);
        t.inbound(20, &[LOUD; 160]);
        assert_eq!(t.left.len(), 320);
        // 100 ms sent at 10 ms, then another 100 ms at 10 ms: back to back.
        t.outbound(10, &[LOUD; 800]);
        t.outbound(10, &[LOUD; 800]);
        assert_eq!(t.right.len(), 80 + 1600);
        assert!(t.right[..80].iter().all(|&s| s == 0));
        assert!(t.right[80..].iter().all(|&s| s == 32124));
        // Sent long after the buffer ran dry: starts when sent.
        t.outbound(1000, &[LOUD; 80]);
        assert_eq!(t.right.len(), 8080);
        assert_eq!(t.right[7999], 0);
        assert_eq!(t.right[8000], 32124);
        // 200 ms queued at 2000 ms, cleared at 2050 ms: only 50 ms remain.
        t.outbound(2000, &[LOUD; 1600]);
        t.clear(2050);
        assert_eq!(t.right.len(), 2050 * 8);
        // The next chunk plays from when it is sent, not after the flushed audio.
        t.outbound(2060, &[LOUD; 8]);
        assert_eq!(t.right.len(), 2060 * 8 + 8);
    }

    #[tokio::test]
    async fn the_file_grows_during_the_call_and_holds_everything_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = recording_path(dir.path(), "CAlong").unwrap();
        let (rec, task) = Recorder::start(path.clone());
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let frame = b64(&[LOUD; 160]);
        for i in 0..250u64 {
            rec.record(Audio::Inbound(i * 20, frame.clone()));
            if i == 50 {
                rec.record(Audio::Outbound(1000, b64(&[0x00; 800])));
            }
        }
        // Mid-call, the settled part is already on disk with a valid header.
        let part = path.with_extension("wav.part");
        let mut on_disk = 0;
        for _ in 0..50 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            if let Ok(r) = hound::WavReader::open(&part) {
                on_disk = r.len();
                if on_disk > 0 {
                    break;
                }
            }
        }
        assert!(
            on_disk >= 2 * 8000,
            "only {on_disk} samples written mid-call"
        );
        drop(rec);
        assert_eq!(task.await.unwrap(), Some(path.clone()));
        assert!(!part.exists());
        let mut r = hound::WavReader::open(&path).unwrap();
        let s: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
        assert_eq!(s.len(), 2 * 250 * 160, "5 s of stereo");
        assert!(s.chunks(2).all(|p| p[0] == 32124));
        // The agent's 100 ms at 1 s, on the right only.
        assert_eq!(s[2 * 8000 + 1], -32124);
        assert_eq!(s[2 * 8800 + 1], 0);
    }

    #[test]
    fn ids_that_are_not_call_sids_name_no_file() {
        let dir = Path::new("/data");
        assert_eq!(
            recording_path(dir, "CA0123abcd"),
            Some(PathBuf::from("/data/recordings/CA0123abcd.wav"))
        );
        assert_eq!(recording_path(dir, "../etc/passwd"), None);
        assert_eq!(recording_path(dir, ""), None);
        assert_eq!(recording_path(dir, "CA1.wav"), None);
    }

    #[tokio::test]
    async fn the_task_writes_a_stereo_wav() {
        let dir = tempfile::tempdir().unwrap();
        let path = recording_path(dir.path(), "CAtest").unwrap();
        let (rec, task) = Recorder::start(path.clone());
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        rec.record(Audio::Inbound(0, b64(&[LOUD; 160])));
        rec.record(Audio::Outbound(0, b64(&[0x00; 160])));
        rec.record(Audio::Inbound(20, "not base64!".to_string()));
        drop(rec);
        assert_eq!(task.await.unwrap(), Some(path.clone()));
        let mut r = hound::WavReader::open(&path).unwrap();
        let spec = r.spec();
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (2, 8000, 16)
        );
        let s: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
        assert_eq!(s.len(), 320);
        assert_eq!((s[0], s[1]), (32124, -32124));
    }
}
