//! Goodbye, packet type 203 (RFC 3550 §6.6).

use super::{
    begin_packet, finish_packet, read_u32, require, RtcpError, MAX_COUNT, PACKET_TYPE_GOODBYE,
};

/// Tells the peer these sources are leaving, so it can stop expecting media instead of waiting
/// for the RTP timeout.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Goodbye {
    /// At most [`MAX_COUNT`] are written.
    pub sources: Vec<u32>,
    /// Cut to 255 bytes (at a character boundary) when written; invalid UTF-8 from the wire
    /// becomes U+FFFD.
    pub reason: Option<String>,
}

impl Goodbye {
    pub(super) fn parse_body(count: u8, body: &[u8]) -> Result<Self, RtcpError> {
        let sources_len = usize::from(count) * 4;
        require("bye", body, sources_len)?;
        let sources = (0..usize::from(count))
            .map(|index| {
                read_u32(body, index * 4).ok_or(RtcpError::Truncated {
                    part: "bye",
                    needed: sources_len,
                    available: body.len(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // `require` above guarantees body.len() >= sources_len.
        let after_sources = &body[sources_len..];
        // Anything after the sources starts with the reason's length; zero bytes there are the
        // word padding of a reason-less BYE some stacks add.
        let reason = match after_sources.split_first() {
            None | Some((0, _)) => None,
            Some((&length, text)) => {
                let text = text
                    .get(..usize::from(length))
                    .ok_or(RtcpError::Truncated {
                        part: "bye reason",
                        needed: sources_len + 1 + usize::from(length),
                        available: body.len(),
                    })?;
                Some(String::from_utf8_lossy(text).into_owned())
            }
        };
        Ok(Self { sources, reason })
    }

    pub fn write_to(&self, out: &mut Vec<u8>) {
        let sources = &self.sources[..self.sources.len().min(MAX_COUNT)];
        let start = begin_packet(out, sources.len(), PACKET_TYPE_GOODBYE);
        for source in sources {
            out.extend_from_slice(&source.to_be_bytes());
        }
        if let Some(reason) = &self.reason {
            let mut end = reason.len().min(usize::from(u8::MAX));
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            // At most 255 after the cut above.
            out.push(end as u8);
            out.extend_from_slice(&reason.as_bytes()[..end]);
        }
        finish_packet(out, start);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_compound, RtcpPacket};
    use super::*;

    #[test]
    fn bye_with_reason_round_trips_and_is_word_aligned() {
        let bye = Goodbye {
            sources: vec![0x0a0b_0c0d],
            reason: Some("call ended".into()),
        };
        let mut out = Vec::new();
        bye.write_to(&mut out);
        assert_eq!(&out[..8], &[0x81, 203, 0, 4, 0x0a, 0x0b, 0x0c, 0x0d]);
        assert_eq!(out[8], 10);
        assert_eq!(out.len(), 20);
        assert_eq!(
            parse_compound(&out).unwrap(),
            vec![RtcpPacket::Goodbye(bye)]
        );
    }

    #[test]
    fn bye_without_reason_round_trips() {
        let bye = Goodbye {
            sources: vec![1, 2, 3],
            reason: None,
        };
        let mut out = Vec::new();
        bye.write_to(&mut out);
        assert_eq!(out.len(), 16);
        assert_eq!(
            parse_compound(&out).unwrap(),
            vec![RtcpPacket::Goodbye(bye)]
        );
    }

    #[test]
    fn reason_longer_than_the_packet_is_truncated() {
        let bytes = [0x81, 203, 0, 2, 0, 0, 0, 1, 20, b'x', b'y', 0];
        assert_eq!(
            parse_compound(&bytes),
            Err(RtcpError::Truncated {
                part: "bye reason",
                needed: 25,
                available: 8
            })
        );
    }

    #[test]
    fn more_sources_claimed_than_present_is_truncated() {
        let bytes = [0x83, 203, 0, 1, 0, 0, 0, 1];
        assert_eq!(
            parse_compound(&bytes),
            Err(RtcpError::Truncated {
                part: "bye",
                needed: 12,
                available: 4
            })
        );
    }
}
