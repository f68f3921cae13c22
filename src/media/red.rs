//! Redundant audio (RFC 2198) for the agent link: each packet may repeat the frames sent just
//! before it, so a run of lost packets is rebuilt exactly from the packet after the run.
//!
//! Opus's in-band FEC repeats only the previous frame, at lower quality; a burst of two or three
//! lost packets — what home Wi-Fi and LTE do — defeats it. RFC 2198's payload carries whole older
//! frames, at the price of their bytes. The sender decides how many (its *depth*) from what the
//! receiver asks for ([`crate::media::feedback`]), so a clean link carries none.
//!
//! The payload (RTP payload type [`RED_PAYLOAD_TYPE`]):
//!
//! ```text
//! redundant block header, 4 bytes each, oldest first:
//!   |1| block PT (7) | timestamp offset (14) | block length (10) |
//! primary block header, 1 byte:
//!   |0| block PT (7) |
//! the redundant blocks' data in the same order, then the primary's.
//! ```
//!
//! Our sender adds one rule RFC 2198 leaves open: the redundant blocks are the frames sent
//! immediately before the primary, one per 20 ms, so the block with timestamp offset `k × 960`
//! had sequence number `primary − k`. That lets the receiver give each block its place in the
//! jitter buffer. A sender that skipped media time (silence, hold) starts its history over.

use thiserror::Error;

use crate::media::rtp_quic::{OPUS_PAYLOAD_TYPE, RTP_TICKS_PER_FRAME};

/// The dynamic payload type for RED (RFC 2198 §5 leaves it to signalling; 63 is what Chromium
/// uses for `red/48000/2`, which keeps captures readable).
pub const RED_PAYLOAD_TYPE: u8 = 63;
/// Frames a packet may repeat: each costs as many bytes as the frame itself.
pub const MAX_DEPTH: usize = 3;
/// How far back a repeated frame may lie: a copy six frames back rebuilds every frame of a
/// burst of six lost packets, and needs the receiver to hold 120 ms for it.
pub const MAX_SPAN: usize = 6;
/// The 10-bit length field of a redundant block header.
const MAX_BLOCK_LEN: usize = 1023;
const REDUNDANT_HEADER_LEN: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RedError {
    #[error("red payload ends inside its block headers")]
    TruncatedHeaders,
    #[error("red block lengths add up to {declared} bytes but the payload has {available}")]
    BlocksBeyondPayload { declared: usize, available: usize },
    #[error("red payload has more than {MAX_DEPTH} redundant blocks")]
    TooManyBlocks,
}

/// One frame repeated from an earlier packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedundantFrame<'a> {
    /// How many packets before the primary it was sent first.
    pub frames_back: u16,
    pub payload: &'a [u8],
}

/// A parsed RED payload; only Opus blocks one whole frame apart are kept (others are skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedPayload<'a> {
    pub redundant: [Option<RedundantFrame<'a>>; MAX_DEPTH],
    pub primary: &'a [u8],
}

/// Splits a RED payload into its blocks. Any byte string gives a result or an error, never a
/// panic.
pub fn parse(payload: &[u8]) -> Result<RedPayload<'_>, RedError> {
    // Block type, timestamp offset and length of each redundant block; an array, as this runs
    // for every packet while copies ride.
    let mut headers = [(0u8, 0u32, 0usize); MAX_DEPTH];
    let mut count = 0;
    let mut at = 0;
    loop {
        let Some(&first) = payload.get(at) else {
            return Err(RedError::TruncatedHeaders);
        };
        if first & 0x80 == 0 {
            at += 1;
            break;
        }
        let Some(header) = payload.get(at..at + REDUNDANT_HEADER_LEN) else {
            return Err(RedError::TruncatedHeaders);
        };
        let Some(slot) = headers.get_mut(count) else {
            return Err(RedError::TooManyBlocks);
        };
        let word = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        *slot = (first & 0x7f, (word >> 10) & 0x3fff, (word & 0x3ff) as usize);
        count += 1;
        at += REDUNDANT_HEADER_LEN;
    }
    let headers = &headers[..count];
    // The loop only ends past the primary's header byte, so `at` is at least 1.
    let primary_type = payload[at - 1] & 0x7f;
    let declared: usize = at + headers.iter().map(|&(_, _, len)| len).sum::<usize>();
    if declared > payload.len() {
        return Err(RedError::BlocksBeyondPayload {
            declared,
            available: payload.len(),
        });
    }
    let mut parsed = RedPayload {
        redundant: [None; MAX_DEPTH],
        primary: if primary_type == OPUS_PAYLOAD_TYPE {
            // declared <= payload.len(), checked above.
            &payload[declared..]
        } else {
            &[]
        },
    };
    for (slot, &(block_type, offset, len)) in parsed.redundant.iter_mut().zip(headers) {
        // The blocks add up to `declared`, which was checked against the payload's length.
        let block = &payload[at..at + len];
        at += len;
        let whole_frames = offset % RTP_TICKS_PER_FRAME == 0;
        let frames_back = offset / RTP_TICKS_PER_FRAME;
        if block_type == OPUS_PAYLOAD_TYPE
            && whole_frames
            && (1..=MAX_SPAN as u32).contains(&frames_back)
            && !block.is_empty()
        {
            *slot = Some(RedundantFrame {
                // At most MAX_SPAN, checked just above.
                frames_back: frames_back as u16,
                payload: block,
            });
        }
    }
    Ok(parsed)
}

/// The sender's memory of the frames it just sent, to repeat them.
///
/// The receiver asks for a *span*: how many frames back a burst's first lost frame must still
/// be found. The packet repeats at most [`MAX_DEPTH`] frames spread over that span — the one
/// just before it, the one `span` back, and one halfway — so a burst as long as the span is
/// rebuilt whole, each frame from the first copy that comes after the burst.
#[derive(Debug, Clone, Default)]
pub struct RedHistory {
    /// Most recent first; each slot keeps its allocation.
    frames: [Vec<u8>; MAX_SPAN],
    /// How many of `frames` are consecutive with the next packet.
    held: usize,
    span: usize,
}

impl RedHistory {
    /// How far back packets repeat frames from now on (at most [`MAX_SPAN`]; 0 for none).
    pub fn set_span(&mut self, span: usize) {
        self.span = span.min(MAX_SPAN);
    }

    pub fn span(&self) -> usize {
        self.span
    }

    /// Distances (frames back) the next packet repeats, oldest first; zeros unused.
    fn distances(&self) -> [usize; MAX_DEPTH] {
        let span = self.span;
        let mut chosen = match span {
            0 => [0, 0, 0],
            1 => [1, 0, 0],
            2 => [2, 1, 0],
            _ => [span, span.div_ceil(2), 1],
        };
        for distance in &mut chosen {
            if *distance > self.held {
                *distance = 0;
            }
        }
        chosen
    }

    /// Whether the next packet carries any copy.
    pub fn repeats(&self) -> bool {
        self.distances().iter().any(|&d| d > 0)
    }

    /// Media time passed unsent: what is held no longer precedes the next packet.
    pub fn forget(&mut self) {
        self.held = 0;
    }

    /// Writes the block headers and the redundant blocks, to be followed directly by the
    /// primary's Opus data. Only called when [`RedHistory::repeats`].
    pub fn write_before_primary(&self, out: &mut Vec<u8>) {
        let distances = self.distances();
        for &back in distances.iter().filter(|&&d| d > 0) {
            let block = &self.frames[back - 1];
            // `remember` never keeps a block longer than the 10-bit length field, and
            // `back` is at most MAX_SPAN, so both fields fit their widths.
            let offset = back as u32 * RTP_TICKS_PER_FRAME;
            let word = 0x8000_0000
                | u32::from(OPUS_PAYLOAD_TYPE) << 24
                | offset << 10
                | block.len() as u32;
            out.extend_from_slice(&word.to_be_bytes());
        }
        out.push(OPUS_PAYLOAD_TYPE);
        for &back in distances.iter().filter(|&&d| d > 0) {
            out.extend_from_slice(&self.frames[back - 1]);
        }
    }

    /// The frame just sent, to repeat in the next packets.
    pub fn remember(&mut self, frame: &[u8]) {
        if frame.len() > MAX_BLOCK_LEN {
            // Cannot be described by a block header; the next packet starts over.
            self.held = 0;
            return;
        }
        self.frames.rotate_right(1);
        let slot = &mut self.frames[0];
        slot.clear();
        slot.extend_from_slice(frame);
        self.held = (self.held + 1).min(MAX_SPAN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history_of(frames: &[&[u8]], span: usize) -> RedHistory {
        let mut history = RedHistory::default();
        history.set_span(span);
        for frame in frames {
            history.remember(frame);
        }
        history
    }

    #[test]
    fn the_blocks_come_back_oldest_first_with_their_distance() {
        let history = history_of(&[b"one", b"two", b"three"], 2);
        let mut out = Vec::new();
        history.write_before_primary(&mut out);
        out.extend_from_slice(b"four");
        let parsed = parse(&out).unwrap();
        assert_eq!(parsed.primary, b"four");
        assert_eq!(
            parsed.redundant,
            [
                Some(RedundantFrame {
                    frames_back: 2,
                    payload: b"two"
                }),
                Some(RedundantFrame {
                    frames_back: 1,
                    payload: b"three"
                }),
                None
            ]
        );
        assert_eq!(out.len(), 2 * 4 + 1 + 3 + 5 + 4, "rfc 2198 header sizes");
        // The desk's tests (src/desk/page/tests/protection.test.mjs) pin the same bytes.
        assert_eq!(
            out,
            b"\xef\x1e\x00\x03\xef\x0f\x00\x05\x6ftwothreefour".as_slice()
        );
    }

    fn frames_back(history: &RedHistory) -> Vec<u16> {
        let mut out = Vec::new();
        history.write_before_primary(&mut out);
        out.push(0);
        let parsed = parse(&out).unwrap();
        parsed
            .redundant
            .iter()
            .flatten()
            .map(|f| f.frames_back)
            .collect()
    }

    #[test]
    fn a_long_span_spreads_three_copies_over_it() {
        let frames: [&[u8]; 6] = [b"1", b"2", b"3", b"4", b"5", b"6"];
        assert_eq!(frames_back(&history_of(&frames, 6)), [6, 3, 1]);
        assert_eq!(frames_back(&history_of(&frames, 5)), [5, 3, 1]);
        assert_eq!(frames_back(&history_of(&frames, 3)), [3, 2, 1]);
        assert_eq!(frames_back(&history_of(&frames, 2)), [2, 1]);
        assert_eq!(frames_back(&history_of(&frames, 1)), [1]);
        assert!(!history_of(&frames, 0).repeats());
        assert_eq!(frames_back(&history_of(&frames, 9)), [6, 3, 1], "capped");
    }

    #[test]
    fn a_fresh_history_repeats_only_what_it_has() {
        assert_eq!(frames_back(&history_of(&[b"one"], 6)), [1]);
        assert_eq!(frames_back(&history_of(&[b"1", b"2", b"3"], 6)), [3, 1]);
    }

    #[test]
    fn forgetting_starts_a_new_run() {
        let mut history = history_of(&[b"one", b"two"], 3);
        history.forget();
        assert!(!history.repeats());
        history.remember(b"three");
        assert_eq!(frames_back(&history), [1]);
    }

    #[test]
    fn a_lone_primary_header_is_a_plain_frame() {
        let parsed = parse(&[OPUS_PAYLOAD_TYPE, 1, 2, 3]).unwrap();
        assert_eq!(parsed.primary, [1, 2, 3]);
        assert_eq!(parsed.redundant, [None; MAX_DEPTH]);
    }

    #[test]
    fn malformed_payloads_are_errors() {
        assert_eq!(parse(&[]), Err(RedError::TruncatedHeaders));
        assert_eq!(parse(&[0x80 | 111, 0, 0]), Err(RedError::TruncatedHeaders));
        // One redundant block claiming 5 bytes with only 2 after the headers.
        let word: u32 = 0x8000_0000 | 111 << 24 | 960 << 10 | 5;
        let mut payload = word.to_be_bytes().to_vec();
        payload.extend_from_slice(&[111, 1, 2]);
        assert_eq!(
            parse(&payload),
            Err(RedError::BlocksBeyondPayload {
                declared: 10,
                available: 7
            })
        );
        let many: Vec<u8> = std::iter::repeat_n(word.to_be_bytes(), MAX_DEPTH + 1)
            .flatten()
            .collect();
        assert_eq!(parse(&many), Err(RedError::TooManyBlocks));
    }

    #[test]
    fn blocks_of_other_formats_or_odd_offsets_are_skipped() {
        let mut payload = Vec::new();
        for (pt, offset) in [(0u32, 960u32), (111, 500)] {
            let word: u32 = 0x8000_0000 | pt << 24 | offset << 10 | 1;
            payload.extend_from_slice(&word.to_be_bytes());
        }
        payload.extend_from_slice(&[111, 9, 9, 7]);
        let parsed = parse(&payload).unwrap();
        assert_eq!(parsed.redundant, [None; MAX_DEPTH]);
        assert_eq!(parsed.primary, [7]);
    }

    #[test]
    fn any_bytes_parse_or_fail_without_panicking() {
        let mut state = 0x1234_5678u32;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as u8
                })
                .collect();
            let _ = parse(&bytes);
        }
    }
}
