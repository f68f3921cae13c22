//! Source description, packet type 202 (RFC 3550 §6.5). We send only CNAME, the one item every
//! compound packet must carry; other items from the peer are kept but not interpreted.

use super::{
    begin_packet, finish_packet, read_u32, RtcpError, MAX_COUNT, PACKET_TYPE_SOURCE_DESCRIPTION,
};

/// Item type of the canonical name, which stays stable when the SSRC changes.
pub const SDES_CNAME: u8 = 1;

/// Items per chunk that are written; bounds the packet below the 16-bit length field's reach.
const MAX_ITEMS_PER_CHUNK: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceDescription {
    /// At most [`MAX_COUNT`] are written.
    pub chunks: Vec<SdesChunk>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SdesChunk {
    pub ssrc: u32,
    /// At most 16 are written.
    pub items: Vec<SdesItem>,
}

/// Item text is UTF-8 by the RFC; invalid bytes from the wire become U+FFFD rather than an error,
/// because a mangled display name is no reason to drop the report beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesItem {
    pub item_type: u8,
    /// Cut to 255 bytes (at a character boundary) when written.
    pub text: String,
}

impl SdesChunk {
    pub fn with_cname(ssrc: u32, cname: &str) -> Self {
        Self {
            ssrc,
            items: vec![SdesItem {
                item_type: SDES_CNAME,
                text: cname.to_owned(),
            }],
        }
    }

    pub fn cname(&self) -> Option<&str> {
        self.items
            .iter()
            .find(|item| item.item_type == SDES_CNAME)
            .map(|item| item.text.as_str())
    }
}

impl SourceDescription {
    /// Bytes after the last chunk are ignored: they can only be padding.
    pub(super) fn parse_body(count: u8, body: &[u8]) -> Result<Self, RtcpError> {
        let mut chunks = Vec::with_capacity(usize::from(count));
        let mut offset = 0;
        for _ in 0..count {
            let (chunk, next) = parse_chunk(body, offset)?;
            chunks.push(chunk);
            offset = next;
        }
        Ok(Self { chunks })
    }

    pub fn write_to(&self, out: &mut Vec<u8>) {
        let chunks = &self.chunks[..self.chunks.len().min(MAX_COUNT)];
        let start = begin_packet(out, chunks.len(), PACKET_TYPE_SOURCE_DESCRIPTION);
        for chunk in chunks {
            out.extend_from_slice(&chunk.ssrc.to_be_bytes());
            for item in chunk.items.iter().take(MAX_ITEMS_PER_CHUNK) {
                let text = truncate_at_char_boundary(&item.text, usize::from(u8::MAX));
                out.push(item.item_type);
                // At most 255 after the cut above.
                out.push(text.len() as u8);
                out.extend_from_slice(text.as_bytes());
            }
            // The list ends with a null item, then zeros to the next word: at least one zero.
            let terminator = 4 - (out.len() - start) % 4;
            out.resize(out.len() + terminator, 0);
        }
        finish_packet(out, start);
    }
}

/// Parses the chunk at `offset`; returns it and the offset of the next chunk.
fn parse_chunk(body: &[u8], offset: usize) -> Result<(SdesChunk, usize), RtcpError> {
    let truncated = |needed: usize| RtcpError::Truncated {
        part: "sdes chunk",
        needed,
        available: body.len(),
    };
    let ssrc = read_u32(body, offset).ok_or(truncated(offset + 4))?;
    let mut items = Vec::new();
    let mut position = offset + 4;
    loop {
        let &item_type = body.get(position).ok_or(truncated(position + 1))?;
        if item_type == 0 {
            // Chunks start on word boundaries; the body itself starts on one.
            let next_chunk = (position + 1).next_multiple_of(4);
            return Ok((SdesChunk { ssrc, items }, next_chunk));
        }
        let &length = body.get(position + 1).ok_or(truncated(position + 2))?;
        let text_start = position + 2;
        let text_end = text_start + usize::from(length);
        let text = body.get(text_start..text_end).ok_or(truncated(text_end))?;
        items.push(SdesItem {
            item_type,
            text: String::from_utf8_lossy(text).into_owned(),
        });
        position = text_end;
    }
}

fn truncate_at_char_boundary(text: &str, max_len: usize) -> &str {
    if text.len() <= max_len {
        return text;
    }
    let mut end = max_len;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::super::{parse_compound, RtcpPacket};
    use super::*;

    #[test]
    fn cname_chunk_matches_the_rfc_layout() {
        let mut out = Vec::new();
        SourceDescription {
            chunks: vec![SdesChunk::with_cname(0x0102_0304, "ab")],
        }
        .write_to(&mut out);
        // Header, SSRC, CNAME item (1, 2, 'a', 'b'), then a null item padded to the word.
        assert_eq!(
            out,
            [0x81, 202, 0, 3, 1, 2, 3, 4, 1, 2, b'a', b'b', 0, 0, 0, 0]
        );
    }

    #[test]
    fn several_chunks_and_items_round_trip() {
        let description = SourceDescription {
            chunks: vec![
                SdesChunk::with_cname(1, "trunkgate@10.0.0.1"),
                SdesChunk {
                    ssrc: 2,
                    items: vec![
                        SdesItem {
                            item_type: SDES_CNAME,
                            text: "carrier".into(),
                        },
                        SdesItem {
                            item_type: 6,
                            text: "SBC 4.2 ünïcode".into(),
                        },
                    ],
                },
                SdesChunk {
                    ssrc: 3,
                    items: vec![],
                },
            ],
        };
        let mut out = Vec::new();
        description.write_to(&mut out);
        assert_eq!(out.len() % 4, 0);
        let parsed = parse_compound(&out).unwrap();
        assert_eq!(
            parsed,
            vec![RtcpPacket::SourceDescription(description.clone())]
        );
        assert_eq!(description.chunks[1].cname(), Some("carrier"));
    }

    #[test]
    fn long_text_is_cut_at_255_bytes_on_a_character_boundary() {
        let text = "é".repeat(200); // 400 bytes
        let mut out = Vec::new();
        SourceDescription {
            chunks: vec![SdesChunk::with_cname(1, &text)],
        }
        .write_to(&mut out);
        let [RtcpPacket::SourceDescription(parsed)] = &parse_compound(&out).unwrap()[..] else {
            panic!("expected one sdes packet");
        };
        assert_eq!(parsed.chunks[0].cname().unwrap(), "é".repeat(127));
    }

    #[test]
    fn item_running_past_the_packet_is_truncated() {
        // One chunk, CNAME item claiming 10 bytes while the packet holds 2.
        let bytes = [0x81, 202, 0, 2, 0, 0, 0, 1, 1, 10, b'a', b'b'];
        assert_eq!(
            parse_compound(&bytes),
            Err(RtcpError::Truncated {
                part: "sdes chunk",
                needed: 16,
                available: 8
            })
        );
    }

    #[test]
    fn chunk_without_terminator_is_truncated() {
        let bytes = [0x81, 202, 0, 2, 0, 0, 0, 1, 1, 2, b'a', b'b'];
        assert!(matches!(
            parse_compound(&bytes),
            Err(RtcpError::Truncated {
                part: "sdes chunk",
                ..
            })
        ));
    }
}
