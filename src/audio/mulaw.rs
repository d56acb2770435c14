//! G.711 mu-law (PCMU) codec, bit-exact with Python's `audioop` (ITU-T G.711).
//!
//! 8 kHz mono, one byte per sample, 8 bytes per millisecond. Silence is `0xFF`
//! (`0x7F`, "negative zero", also decodes to 0).

/// Mu-law byte for digital silence (decodes to 0); what Twilio pads gaps with.
pub const SILENCE: u8 = 0xFF;

/// Bytes of mu-law audio per millisecond at 8 kHz, for `duration_ms = bytes / 8`.
pub const BYTES_PER_MS: usize = 8;

const fn decode_const(byte: u8) -> i16 {
    let u = !byte;
    let exponent = (u >> 4) & 0x07;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn build_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = decode_const(i as u8);
        i += 1;
    }
    table
}

/// Decode table: `DECODE_TABLE[byte]` is the 16-bit linear sample; a table
/// because decoding runs per sample in VADs and level meters.
pub static DECODE_TABLE: [i16; 256] = build_table();

/// Decode one mu-law byte to a 16-bit linear sample.
#[inline]
pub fn decode(byte: u8) -> i16 {
    DECODE_TABLE[byte as usize]
}

/// Encode one 16-bit linear sample to mu-law (audioop `lin2ulaw` semantics:
/// the sample is reduced to 14 bits, clipped at 8159, biased by 33).
pub fn encode(sample: i16) -> u8 {
    const CLIP: i32 = 8159;
    const BIAS: i32 = 0x84 >> 2;
    let mut pcm = (sample as i32) >> 2;
    let mask: u8 = if pcm < 0 {
        pcm = -pcm;
        0x7F
    } else {
        0xFF
    };
    if pcm > CLIP {
        pcm = CLIP;
    }
    pcm += BIAS;
    // Segment = position of the highest set bit above bit 5 (0..=7), 8 = overflow.
    let mut seg: i32 = 0;
    let mut limit = 0x3F;
    while seg < 8 && pcm > limit {
        seg += 1;
        limit = (limit << 1) | 1;
    }
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let uval = ((seg << 4) | ((pcm >> (seg + 1)) & 0x0F)) as u8;
    uval ^ mask
}

/// Decode a whole buffer (convenience for tests and analysis).
pub fn decode_all(bytes: &[u8]) -> Vec<i16> {
    bytes.iter().map(|&b| decode(b)).collect()
}

/// Encode a whole buffer (convenience for synthesised audio).
pub fn encode_all(samples: &[i16]) -> Vec<u8> {
    samples.iter().map(|&s| encode(s)).collect()
}

/// Root-mean-square level of a mu-law buffer in linear 16-bit units (0 for an empty buffer).
pub fn rms(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let sum: f64 = bytes
        .iter()
        .map(|&b| {
            let s = decode(b) as f64;
            s * s
        })
        .sum();
    (sum / bytes.len() as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_reference_values() {
        assert_eq!(decode(0x00), -32124);
        assert_eq!(decode(0x80), 32124);
        assert_eq!(decode(0x0F), -16764);
        assert_eq!(decode(0x8F), 16764);
        assert_eq!(decode(0x7F), 0);
        assert_eq!(decode(0xFF), 0);
    }

    #[test]
    fn encode_reference_values() {
        assert_eq!(encode(0), 0xFF);
        assert_eq!(encode(1000), 0xCE);
        assert_eq!(encode(-1000), 0x4E);
        assert_eq!(encode(32767), 0x80);
        assert_eq!(encode(-32768), 0x00);
    }

    #[test]
    fn round_trip_every_byte() {
        for b in 0..=255u8 {
            let back = encode(decode(b));
            if b == 0x7F {
                // "negative zero" decodes to 0, which encodes as the positive zero.
                assert_eq!(back, 0xFF);
            } else {
                assert_eq!(back, b, "byte {b:#04x}");
            }
        }
    }

    #[test]
    fn table_is_monotonic_per_sign() {
        // 0x80..=0xFF are positive, decreasing magnitude as the byte grows.
        for b in 0x80..0xFFu8 {
            assert!(decode(b) > decode(b + 1));
        }
        assert!(rms(&[SILENCE; 160]) == 0.0);
    }
}
