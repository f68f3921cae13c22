//! ITU-T G.711 µ-law (PCMU) and A-law (PCMA) companding.
//!
//! Both laws work on 16-bit linear PCM at 8 kHz. Every media leg runs this once per 20 ms frame in
//! each direction, so both directions are table lookups built at compile time:
//!
//! - decode: one 256-entry table per law;
//! - encode: one table per law indexed by the top bits of the sample. µ-law quantises a 14-bit
//!   value and A-law a 13-bit one, so the low 2 (µ-law) or 3 (A-law) bits of a 16-bit sample never
//!   change the code and the tables need only 16 Ki and 8 Ki entries. The arithmetic encoders that
//!   fill them stay in the file as the readable definition, and a test checks every i16 against
//!   them.
//!
//! Negative samples are folded with one's complement (`!x`, i.e. `-x - 1`) as in the ITU-T G.191
//! reference software, which keeps the two halves of each law mirror images and needs no special
//! case for `-32768`. Implementations that negate instead (Sun's g711.c, Python's audioop) give
//! the same A-law codes and the same µ-law codes except for negative samples sitting exactly on a
//! µ-law decision boundary, which land one code apart. Decoding returns the middle of each
//! quantisation interval, as the G.711 tables do.

/// Which companding law a payload uses; the RTP/AVP static payload type follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum G711Law {
    /// µ-law, RTP payload type 0 (PCMU), used in North America and Japan.
    Ulaw,
    /// A-law, RTP payload type 8 (PCMA), used nearly everywhere else.
    Alaw,
}

impl G711Law {
    /// The static payload type RFC 3551 assigns, so SDP needs no rtpmap for it.
    pub const fn payload_type(self) -> u8 {
        match self {
            G711Law::Ulaw => 0,
            G711Law::Alaw => 8,
        }
    }

    /// The law a static payload type stands for, if it is one of the two.
    pub const fn from_payload_type(payload_type: u8) -> Option<Self> {
        match payload_type {
            0 => Some(G711Law::Ulaw),
            8 => Some(G711Law::Alaw),
            _ => None,
        }
    }

    /// The code of linear zero, for filling frames when there is nothing to send.
    pub const fn silence_byte(self) -> u8 {
        match self {
            G711Law::Ulaw => 0xFF,
            G711Law::Alaw => 0xD5,
        }
    }

    #[inline]
    pub fn encode_sample(self, sample: i16) -> u8 {
        // Reinterpreting as u16 and shifting keeps the top bits of the two's complement value,
        // which is exactly what the tables are indexed by; the results are < table length.
        let bits = sample as u16;
        match self {
            G711Law::Ulaw => ULAW_ENCODE[(bits >> ULAW_DROPPED_BITS) as usize],
            G711Law::Alaw => ALAW_ENCODE[(bits >> ALAW_DROPPED_BITS) as usize],
        }
    }

    #[inline]
    pub fn decode_sample(self, code: u8) -> i16 {
        match self {
            G711Law::Ulaw => ULAW_DECODE[code as usize],
            G711Law::Alaw => ALAW_DECODE[code as usize],
        }
    }

    /// Appends one code per sample, so a caller can build a packet after its RTP header in place.
    pub fn encode(self, pcm: &[i16], out: &mut Vec<u8>) {
        // Matching once outside the loop keeps the hot loop a plain lookup.
        match self {
            G711Law::Ulaw => out.extend(
                pcm.iter()
                    .map(|&s| ULAW_ENCODE[((s as u16) >> ULAW_DROPPED_BITS) as usize]),
            ),
            G711Law::Alaw => out.extend(
                pcm.iter()
                    .map(|&s| ALAW_ENCODE[((s as u16) >> ALAW_DROPPED_BITS) as usize]),
            ),
        }
    }

    /// Appends one sample per code; any byte string is valid G.711, so this cannot fail.
    pub fn decode(self, bytes: &[u8], out: &mut Vec<i16>) {
        let table = match self {
            G711Law::Ulaw => &ULAW_DECODE,
            G711Law::Alaw => &ALAW_DECODE,
        };
        out.extend(bytes.iter().map(|&b| table[b as usize]));
    }
}

/// µ-law quantises 14 bits: the 2 low bits of a 16-bit sample never affect the code.
const ULAW_DROPPED_BITS: u32 = 2;
/// A-law quantises 13 bits: the 3 low bits of a 16-bit sample never affect the code.
const ALAW_DROPPED_BITS: u32 = 3;

/// 33 in the 14-bit domain of G.711, scaled to 16 bits; it shifts the µ-law segments so each one
/// starts at a power of two.
const ULAW_BIAS: i32 = 132;
/// Largest magnitude µ-law can represent before the bias would overflow the top segment.
const ULAW_CLIP: i32 = 32635;

static ULAW_ENCODE: [u8; 1 << (16 - ULAW_DROPPED_BITS)] = build_encode_table(G711Law::Ulaw);
static ALAW_ENCODE: [u8; 1 << (16 - ALAW_DROPPED_BITS)] = build_encode_table(G711Law::Alaw);
static ULAW_DECODE: [i16; 256] = build_decode_table(G711Law::Ulaw);
static ALAW_DECODE: [i16; 256] = build_decode_table(G711Law::Alaw);

/// Position of the highest set bit; `value` must be non-zero.
const fn highest_bit(value: i32) -> i32 {
    31 - value.leading_zeros() as i32
}

/// The definition of µ-law encoding that fills `ULAW_ENCODE`.
const fn ulaw_encode_arith(sample: i16) -> u8 {
    // The code is sent inverted, so positive samples end up with the top bit set.
    let (sign, magnitude) = if sample < 0 {
        (0x80, !(sample as i32))
    } else {
        (0x00, sample as i32)
    };
    let magnitude = if magnitude > ULAW_CLIP {
        ULAW_CLIP
    } else {
        magnitude
    };
    // Biased values lie in 132..=32767: the highest bit is 7..=14, i.e. segment 0..=7.
    let biased = magnitude + ULAW_BIAS;
    let segment = highest_bit(biased) - 7;
    let mantissa = (biased >> (segment + 3)) & 0x0F;
    !((sign | (segment << 4) | mantissa) as u8)
}

/// The definition of A-law encoding that fills `ALAW_ENCODE`.
const fn alaw_encode_arith(sample: i16) -> u8 {
    let (sign, magnitude) = if sample < 0 {
        (0x00, !(sample as i32))
    } else {
        (0x80, sample as i32)
    };
    // Segments 0 and 1 share a step of 16; each later segment doubles it.
    let (segment, mantissa) = if magnitude < 256 {
        (0, (magnitude >> 4) & 0x0F)
    } else {
        let segment = highest_bit(magnitude) - 7;
        (segment, (magnitude >> (segment + 3)) & 0x0F)
    };
    ((sign | (segment << 4) | mantissa) as u8) ^ 0x55
}

const fn ulaw_decode_arith(code: u8) -> i16 {
    let bits = !code as i32;
    let segment = (bits >> 4) & 0x07;
    let mantissa = bits & 0x0F;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << segment) - ULAW_BIAS;
    if bits & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_decode_arith(code: u8) -> i16 {
    let bits = (code ^ 0x55) as i32;
    let segment = (bits >> 4) & 0x07;
    let mantissa = bits & 0x0F;
    let magnitude = if segment == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (segment - 1)
    };
    if bits & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn encode_arith(law: G711Law, sample: i16) -> u8 {
    match law {
        G711Law::Ulaw => ulaw_encode_arith(sample),
        G711Law::Alaw => alaw_encode_arith(sample),
    }
}

const fn build_encode_table<const N: usize>(law: G711Law) -> [u8; N] {
    let dropped = 16 - N.trailing_zeros();
    let mut table = [0u8; N];
    let mut index = 0;
    while index < N {
        // Any sample with these top bits gives the same code; the lowest one stands for them all.
        let sample = ((index as u32) << dropped) as u16 as i16;
        table[index] = encode_arith(law, sample);
        index += 1;
    }
    table
}

const fn build_decode_table(law: G711Law) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        table[code] = match law {
            G711Law::Ulaw => ulaw_decode_arith(code as u8),
            G711Law::Alaw => alaw_decode_arith(code as u8),
        };
        code += 1;
    }
    table
}

#[cfg(test)]
mod tests;
