//! How a record sits in a segment file: its length, its CRC-32C, its bytes.
//!
//! ```text
//! u32 LE payload length | u32 LE CRC-32C of the payload | payload (one JSON record, no newline)
//! ```
//!
//! Sans-IO: [`decode`] reads one frame from the front of a byte slice and says whether it is
//! whole, cut short (a torn write: the tail of the last segment after power loss or a full
//! disk) or damaged.

/// Bytes before the payload.
pub const HEADER_LEN: usize = 8;
/// No record comes near this; a length beyond it is damage, not a record.
pub const MAX_PAYLOAD: usize = 1 << 20;

/// The frame of one payload.
pub fn encode(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
    // Lossless: payloads are bounded by MAX_PAYLOAD, checked by the writer.
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    frame.extend_from_slice(payload);
    frame
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole frame: its payload and how many bytes it took.
    Frame { payload: &'a [u8], len: usize },
    /// Nothing left.
    End,
    /// The bytes end inside a frame.
    Truncated,
    /// A length no record has, or a checksum that does not match.
    Damaged,
}

pub fn decode(bytes: &[u8]) -> Decoded<'_> {
    if bytes.is_empty() {
        return Decoded::End;
    }
    let Some((header, rest)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Decoded::Truncated;
    };
    let (len, crc) = header.split_at(4);
    // Infallible: both halves of an 8-byte array are 4 bytes long.
    let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(crc.try_into().expect("4 bytes"));
    if len == 0 || len > MAX_PAYLOAD {
        return Decoded::Damaged;
    }
    let Some(payload) = rest.get(..len) else {
        return Decoded::Truncated;
    };
    if crc32c::crc32c(payload) != crc {
        return Decoded::Damaged;
    }
    Decoded::Frame {
        payload,
        len: HEADER_LEN + len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_reads_back_and_every_cut_or_flipped_bit_is_noticed() {
        let frame = encode(br#"{"seq":1}"#);
        assert_eq!(
            decode(&frame),
            Decoded::Frame {
                payload: br#"{"seq":1}"#,
                len: frame.len()
            }
        );
        for cut in 1..frame.len() {
            assert_eq!(decode(&frame[..cut]), Decoded::Truncated, "cut at {cut}");
        }
        for bit in 0..frame.len() * 8 {
            let mut bad = frame.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                matches!(decode(&bad), Decoded::Damaged | Decoded::Truncated),
                "bit {bit} flipped went unnoticed"
            );
        }
        assert_eq!(decode(&[]), Decoded::End);
    }
}
