//! Compound RTCP packets (RFC 3550 §6.1): several packets back to back in one datagram, each
//! framed by its common header's length.

use super::{
    begin_packet, finish_packet, Goodbye, ReceiverReport, RtcpError, SenderReport,
    SourceDescription, PACKET_TYPE_GOODBYE, PACKET_TYPE_RECEIVER_REPORT, PACKET_TYPE_SENDER_REPORT,
    PACKET_TYPE_SOURCE_DESCRIPTION,
};

/// One packet of a compound packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    SenderReport(SenderReport),
    ReceiverReport(ReceiverReport),
    SourceDescription(SourceDescription),
    Goodbye(Goodbye),
    /// APP, XR, feedback and anything newer: kept whole so one unfamiliar packet does not cost
    /// us the reports beside it.
    Other {
        packet_type: u8,
        /// The five bits after V and P, whose meaning depends on the type.
        count: u8,
        /// Without the common header and without padding.
        body: Vec<u8>,
    },
}

impl RtcpPacket {
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Self::SenderReport(packet) => packet.write_to(out),
            Self::ReceiverReport(packet) => packet.write_to(out),
            Self::SourceDescription(packet) => packet.write_to(out),
            Self::Goodbye(packet) => packet.write_to(out),
            Self::Other {
                packet_type,
                count,
                body,
            } => {
                let start = begin_packet(out, usize::from(*count), *packet_type);
                // The length field counts at most 65535 words after the header.
                let max_body_len = usize::from(u16::MAX) * 4;
                out.extend_from_slice(&body[..body.len().min(max_body_len)]);
                finish_packet(out, start);
            }
        }
    }
}

/// Parses every packet of a compound packet. The lengths must tile the datagram exactly and only
/// the last packet may be padded (RFC 3550 A.2); a failure anywhere rejects the whole datagram.
/// Unlike A.2 we do not insist the first packet is SR or RR: a lone BYE or an RFC 5506
/// reduced-size packet still carries information worth having.
pub fn parse_compound(datagram: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
    if datagram.is_empty() {
        return Err(RtcpError::Empty);
    }
    let mut packets = Vec::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        let Some((header, _)) = rest.split_first_chunk::<4>() else {
            return Err(RtcpError::ShorterThanHeader { len: rest.len() });
        };
        let version = header[0] >> 6;
        if version != 2 {
            return Err(RtcpError::BadVersion { version });
        }
        let padded = header[0] & 0x20 != 0;
        let count = header[0] & 0x1f;
        let packet_type = header[1];
        let declared = (usize::from(u16::from_be_bytes([header[2], header[3]])) + 1) * 4;
        if declared > rest.len() {
            return Err(RtcpError::LengthBeyondDatagram {
                declared,
                available: rest.len(),
            });
        }
        // declared <= rest.len() was checked just above.
        let (packet, after) = rest.split_at(declared);
        if padded && !after.is_empty() {
            return Err(RtcpError::PaddingNotLast { packet_type });
        }
        // declared is at least 4: the length field counts words beyond the first.
        let body = strip_padding(&packet[4..], padded)?;
        packets.push(parse_one(packet_type, count, body)?);
        rest = after;
    }
    Ok(packets)
}

/// Writes `packets` back to back into one datagram.
pub fn write_compound(packets: &[RtcpPacket]) -> Vec<u8> {
    let mut out = Vec::new();
    for packet in packets {
        packet.write_to(&mut out);
    }
    out
}

fn strip_padding(body: &[u8], padded: bool) -> Result<&[u8], RtcpError> {
    if !padded {
        return Ok(body);
    }
    let Some(&count) = body.last() else {
        return Err(RtcpError::PaddingTooLong {
            count: 0,
            available: 0,
        });
    };
    if count == 0 {
        return Err(RtcpError::ZeroPadding);
    }
    let unpadded_len =
        body.len()
            .checked_sub(usize::from(count))
            .ok_or(RtcpError::PaddingTooLong {
                count,
                available: body.len(),
            })?;
    // checked_sub above keeps unpadded_len within the body.
    Ok(&body[..unpadded_len])
}

fn parse_one(packet_type: u8, count: u8, body: &[u8]) -> Result<RtcpPacket, RtcpError> {
    Ok(match packet_type {
        PACKET_TYPE_SENDER_REPORT => {
            RtcpPacket::SenderReport(SenderReport::parse_body(count, body)?)
        }
        PACKET_TYPE_RECEIVER_REPORT => {
            RtcpPacket::ReceiverReport(ReceiverReport::parse_body(count, body)?)
        }
        PACKET_TYPE_SOURCE_DESCRIPTION => {
            RtcpPacket::SourceDescription(SourceDescription::parse_body(count, body)?)
        }
        PACKET_TYPE_GOODBYE => RtcpPacket::Goodbye(Goodbye::parse_body(count, body)?),
        _ => RtcpPacket::Other {
            packet_type,
            count,
            body: body.to_vec(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::super::{NtpTimestamp, ReportBlock, SdesChunk};
    use super::*;
    use proptest::prelude::*;

    fn typical_compound() -> Vec<RtcpPacket> {
        vec![
            RtcpPacket::SenderReport(SenderReport {
                ssrc: 5,
                ntp_time: NtpTimestamp(0xe8a0_0000_4000_0000),
                rtp_time: 8000,
                packet_count: 50,
                octet_count: 8000,
                reports: vec![ReportBlock {
                    ssrc: 6,
                    fraction_lost: 3,
                    cumulative_lost: 2,
                    extended_highest_sequence: 100,
                    jitter: 12,
                    last_sender_report: 0,
                    delay_since_last_sender_report: 0,
                }],
            }),
            RtcpPacket::SourceDescription(SourceDescription {
                chunks: vec![SdesChunk::with_cname(5, "gw@branch")],
            }),
            RtcpPacket::Other {
                packet_type: 207,
                count: 0,
                body: vec![0, 0, 0, 5, 1, 2, 3, 4],
            },
            RtcpPacket::Goodbye(Goodbye {
                sources: vec![5],
                reason: Some("bye".into()),
            }),
        ]
    }

    #[test]
    fn every_part_of_a_compound_packet_is_parsed() {
        let packets = typical_compound();
        let datagram = write_compound(&packets);
        assert_eq!(parse_compound(&datagram).unwrap(), packets);
    }

    #[test]
    fn length_running_past_the_datagram_is_rejected() {
        let mut datagram = write_compound(&typical_compound());
        datagram.truncate(datagram.len() - 4);
        assert_eq!(
            parse_compound(&datagram),
            Err(RtcpError::LengthBeyondDatagram {
                declared: 12,
                available: 8
            })
        );
    }

    #[test]
    fn trailing_bytes_shorter_than_a_header_are_rejected() {
        let mut datagram = write_compound(&typical_compound());
        datagram.extend_from_slice(&[0x80, 201]);
        assert_eq!(
            parse_compound(&datagram),
            Err(RtcpError::ShorterThanHeader { len: 2 })
        );
    }

    #[test]
    fn bad_version_in_a_later_packet_rejects_the_datagram() {
        let mut datagram = write_compound(&typical_compound());
        let sr_len = 4 + 24 + 24;
        datagram[sr_len] &= 0x3f;
        assert_eq!(
            parse_compound(&datagram),
            Err(RtcpError::BadVersion { version: 0 })
        );
    }

    #[test]
    fn padding_is_stripped_from_the_last_packet_only() {
        // RR with no blocks, P set, length 2 words + padding of 4 bytes (count byte 4).
        let padded_rr = [0xa0, 201, 0, 2, 0, 0, 0, 9, 0, 0, 0, 4];
        assert_eq!(
            parse_compound(&padded_rr).unwrap(),
            vec![RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc: 9,
                reports: vec![]
            })]
        );
        let mut not_last = padded_rr.to_vec();
        not_last.extend_from_slice(&[0x80, 201, 0, 1, 0, 0, 0, 9]);
        assert_eq!(
            parse_compound(&not_last),
            Err(RtcpError::PaddingNotLast { packet_type: 201 })
        );
    }

    #[test]
    fn bad_padding_counts_are_rejected() {
        assert_eq!(
            parse_compound(&[0xa0, 201, 0, 1, 0, 0, 0, 0]),
            Err(RtcpError::ZeroPadding)
        );
        assert_eq!(
            parse_compound(&[0xa0, 201, 0, 1, 0, 0, 0, 9]),
            Err(RtcpError::PaddingTooLong {
                count: 9,
                available: 4
            })
        );
    }

    #[test]
    fn empty_datagram_is_rejected() {
        assert_eq!(parse_compound(&[]), Err(RtcpError::Empty));
    }

    #[test]
    fn errors_name_the_offending_value() {
        assert_eq!(
            RtcpError::LengthBeyondDatagram {
                declared: 12,
                available: 8
            }
            .to_string(),
            "rtcp packet declares 12 bytes but only 8 remain in the datagram"
        );
    }

    fn any_block() -> impl Strategy<Value = ReportBlock> {
        (
            any::<u32>(),
            any::<u8>(),
            -0x80_0000i32..=0x7f_ffff,
            any::<[u32; 4]>(),
        )
            .prop_map(
                |(ssrc, fraction_lost, cumulative_lost, words)| ReportBlock {
                    ssrc,
                    fraction_lost,
                    cumulative_lost,
                    extended_highest_sequence: words[0],
                    jitter: words[1],
                    last_sender_report: words[2],
                    delay_since_last_sender_report: words[3],
                },
            )
    }

    fn any_packet() -> impl Strategy<Value = RtcpPacket> {
        let blocks = || proptest::collection::vec(any_block(), 0..4);
        prop_oneof![
            (any::<[u32; 5]>(), any::<u64>(), blocks()).prop_map(|(w, ntp, reports)| {
                RtcpPacket::SenderReport(SenderReport {
                    ssrc: w[0],
                    ntp_time: NtpTimestamp(ntp),
                    rtp_time: w[1],
                    packet_count: w[2],
                    octet_count: w[3],
                    reports,
                })
            }),
            (any::<u32>(), blocks()).prop_map(|(ssrc, reports)| {
                RtcpPacket::ReceiverReport(ReceiverReport { ssrc, reports })
            }),
            proptest::collection::vec((any::<u32>(), "[a-z@.0-9]{0,40}"), 0..4).prop_map(
                |chunks| RtcpPacket::SourceDescription(SourceDescription {
                    chunks: chunks
                        .iter()
                        .map(|(ssrc, cname)| SdesChunk::with_cname(*ssrc, cname))
                        .collect(),
                })
            ),
            (
                proptest::collection::vec(any::<u32>(), 0..5),
                proptest::option::of("[ -~]{1,60}")
            )
                .prop_map(|(sources, reason)| RtcpPacket::Goodbye(Goodbye { sources, reason })),
        ]
    }

    proptest! {
        #[test]
        fn any_compound_packet_round_trips(packets in proptest::collection::vec(any_packet(), 1..5)) {
            let datagram = write_compound(&packets);
            prop_assert_eq!(parse_compound(&datagram).unwrap(), packets);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_compound(&bytes);
        }

        #[test]
        fn arbitrary_bodies_behind_valid_headers_never_panic(
            count in 0u8..32,
            packet_type in 200u8..=204,
            body_words in proptest::collection::vec(any::<[u8; 4]>(), 0..20),
        ) {
            let mut datagram = vec![0x80 | count, packet_type];
            datagram.extend_from_slice(&(body_words.len() as u16).to_be_bytes());
            datagram.extend(body_words.iter().flatten());
            let _ = parse_compound(&datagram);
        }
    }
}
