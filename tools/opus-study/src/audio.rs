//! 16-bit mono WAV in and out, and G.711 µ-law.

use std::fs;
use std::path::Path;

pub fn read_wav(path: &Path) -> (u32, Vec<i16>) {
    let b = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(&b[0..4] == b"RIFF" && &b[8..12] == b"WAVE", "{}: not a WAV", path.display());
    let mut pos = 12;
    let mut rate = 0;
    let mut fmt_ok = false;
    while pos + 8 <= b.len() {
        let id = &b[pos..pos + 4];
        let len = u32::from_le_bytes(b[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let body = &b[pos + 8..(pos + 8 + len).min(b.len())];
        if id == b"fmt " {
            let format = u16::from_le_bytes([body[0], body[1]]);
            let channels = u16::from_le_bytes([body[2], body[3]]);
            rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
            let bits = u16::from_le_bytes([body[14], body[15]]);
            assert!(
                (format == 1 || format == 0xFFFE) && channels == 1 && bits == 16,
                "{}: want 16-bit mono PCM",
                path.display()
            );
            fmt_ok = true;
        } else if id == b"data" {
            assert!(fmt_ok, "{}: data before fmt", path.display());
            let s = body.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect();
            return (rate, s);
        }
        pos += 8 + len + (len & 1);
    }
    panic!("{}: no data chunk", path.display());
}

pub fn write_wav(path: &Path, rate: u32, s: &[i16]) {
    let data_len = (s.len() * 2) as u32;
    let mut b = Vec::with_capacity(44 + s.len() * 2);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * 2).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for v in s {
        b.extend_from_slice(&v.to_le_bytes());
    }
    fs::write(path, b).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// G.711 µ-law encoder (segment/mantissa form, bias 0x84, clip at 32635).
pub fn ulaw_encode(x: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut v = x as i32;
    let sign = if v < 0 {
        v = -v;
        0x80
    } else {
        0
    };
    if v > CLIP {
        v = CLIP;
    }
    v += BIAS;
    // Segment: position of the highest set bit above bit 7.
    let mut seg = 0;
    let mut t = v >> 7;
    while t > 1 && seg < 7 {
        t >>= 1;
        seg += 1;
    }
    let mant = (v >> (seg + 3)) & 0x0F;
    !((sign | (seg << 4) | mant) as u8)
}

pub fn ulaw_decode(u: u8) -> i16 {
    let u = !u;
    let sign = u & 0x80;
    let seg = ((u >> 4) & 0x07) as i32;
    let mant = (u & 0x0F) as i32;
    let mag = (((mant << 3) + 0x84) << seg) - 0x84;
    if sign != 0 {
        -mag as i16
    } else {
        mag as i16
    }
}

/// The caller's leg: each sample through µ-law and back.
pub fn ulaw_round_trip(s: &mut [i16]) {
    for v in s {
        *v = ulaw_decode(ulaw_encode(*v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn ulaw_known_values() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        for x in (-32768i32..32768).step_by(7) {
            let y = ulaw_decode(ulaw_encode(x as i16)) as i32;
            let err = (x.clamp(-32635, 32635) - y).abs();
            assert!(err <= (x.abs() / 16).max(8) + 1, "{x} -> {y}");
        }
    }
}
