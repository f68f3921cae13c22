//! RTP packets (RFC 3550 §5) for the carrier media leg, and the sending side's numbering.
//!
//! Parsing borrows from the datagram: the payload of a G.711 packet goes straight to the jitter
//! buffer without a copy. CSRCs, the header extension and padding are skipped but exposed, so a
//! relay can preserve them; a G.711 endpoint sends none of them, which is why plain [`write()`]
//! omits them and [`write_with_extras`] exists for the rare caller that needs them.
//!
//! RTP and RTCP may share one port (RFC 5761): [`looks_like_rtcp`] tells them apart before either
//! parser runs.

use rand::RngCore;
use thiserror::Error;

/// The only RTP version in use; anything else on the wire is not RTP (often STUN or garbage).
pub const RTP_VERSION: u8 = 2;
/// Bytes before the CSRC list: flags, payload type, sequence, timestamp, SSRC.
pub const FIXED_HEADER_LEN: usize = 12;
/// The CC field has four bits.
pub const MAX_CSRCS: usize = 15;

/// The fixed RTP header. `padding`, `extension` and `csrc_count` describe the parsed packet;
/// writers derive them from what they actually emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub version: u8,
    pub padding: bool,
    pub extension: bool,
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub csrc_count: u8,
}

impl RtpHeader {
    /// A header with no optional parts, the shape every packet we originate has.
    pub fn new(payload_type: u8, sequence: u16, timestamp: u32, ssrc: u32, marker: bool) -> Self {
        Self {
            version: RTP_VERSION,
            padding: false,
            extension: false,
            marker,
            payload_type,
            sequence,
            timestamp,
            ssrc,
            csrc_count: 0,
        }
    }
}

/// A header extension (RFC 3550 §5.3.1): opaque to us, kept so a relay can forward it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderExtension<'a> {
    /// The "defined by profile" field, e.g. 0xBEDE for RFC 8285 one-byte extensions.
    pub profile: u16,
    /// Whole 32-bit words, as the length field counts them.
    pub data: &'a [u8],
}

/// A parsed packet borrowing from the datagram it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub header: RtpHeader,
    csrc_bytes: &'a [u8],
    pub extension: Option<HeaderExtension<'a>>,
    /// The media, with CSRCs, extension and padding already cut away.
    pub payload: &'a [u8],
    /// Padding bytes removed from the end, including the count byte itself; 0 without padding.
    pub padding_len: u8,
}

impl<'a> RtpPacket<'a> {
    /// Contributing sources, in wire order.
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + 'a {
        self.csrc_bytes
            .chunks_exact(4)
            // chunks_exact yields exactly 4 bytes, so the conversion cannot fail.
            .map(|word| u32::from_be_bytes(word.try_into().expect("chunk of 4 bytes")))
    }
}

/// Why a datagram is not a usable RTP packet.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RtpError {
    #[error("rtp packet of {len} bytes is shorter than the 12-byte fixed header")]
    ShorterThanFixedHeader { len: usize },
    #[error("rtp version {version} is not 2")]
    BadVersion { version: u8 },
    #[error("rtp packet of {len} bytes ends inside its list of {csrc_count} csrcs")]
    TruncatedCsrcs { len: usize, csrc_count: u8 },
    #[error("rtp header extension needs {needed} bytes but the packet has only {available} left")]
    TruncatedExtension { needed: usize, available: usize },
    #[error("rtp padding count is 0, but it must at least count its own byte")]
    ZeroPadding,
    #[error("rtp padding count {count} is longer than the {available} bytes after the header")]
    PaddingTooLong { count: u8, available: usize },
}

/// Parses one RTP packet; any byte string yields either a packet or an error, never a panic.
pub fn parse(buf: &[u8]) -> Result<RtpPacket<'_>, RtpError> {
    let Some((fixed, after_fixed)) = buf.split_first_chunk::<FIXED_HEADER_LEN>() else {
        return Err(RtpError::ShorterThanFixedHeader { len: buf.len() });
    };
    let version = fixed[0] >> 6;
    if version != RTP_VERSION {
        return Err(RtpError::BadVersion { version });
    }
    let header = RtpHeader {
        version,
        padding: fixed[0] & 0x20 != 0,
        extension: fixed[0] & 0x10 != 0,
        marker: fixed[1] & 0x80 != 0,
        payload_type: fixed[1] & 0x7f,
        sequence: u16::from_be_bytes([fixed[2], fixed[3]]),
        timestamp: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
        ssrc: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
        csrc_count: fixed[0] & 0x0f,
    };

    let csrc_len = usize::from(header.csrc_count) * 4;
    if after_fixed.len() < csrc_len {
        return Err(RtpError::TruncatedCsrcs {
            len: buf.len(),
            csrc_count: header.csrc_count,
        });
    }
    // Length checked just above.
    let (csrc_bytes, mut rest) = after_fixed.split_at(csrc_len);

    let mut extension = None;
    if header.extension {
        let Some((ext_header, after_ext_header)) = rest.split_first_chunk::<4>() else {
            return Err(RtpError::TruncatedExtension {
                needed: 4,
                available: rest.len(),
            });
        };
        let profile = u16::from_be_bytes([ext_header[0], ext_header[1]]);
        let data_len = usize::from(u16::from_be_bytes([ext_header[2], ext_header[3]])) * 4;
        if after_ext_header.len() < data_len {
            return Err(RtpError::TruncatedExtension {
                needed: 4 + data_len,
                available: rest.len(),
            });
        }
        // Length checked just above.
        let (data, after_ext) = after_ext_header.split_at(data_len);
        extension = Some(HeaderExtension { profile, data });
        rest = after_ext;
    }

    let mut padding_len = 0;
    if header.padding {
        // The padding flag promises at least the count byte; an empty remainder breaks that.
        let Some(&count) = rest.last() else {
            return Err(RtpError::PaddingTooLong {
                count: 0,
                available: 0,
            });
        };
        if count == 0 {
            return Err(RtpError::ZeroPadding);
        }
        if usize::from(count) > rest.len() {
            return Err(RtpError::PaddingTooLong {
                count,
                available: rest.len(),
            });
        }
        padding_len = count;
        // count <= rest.len() was checked just above.
        rest = &rest[..rest.len() - usize::from(count)];
    }

    Ok(RtpPacket {
        header,
        csrc_bytes,
        extension,
        payload: rest,
        padding_len,
    })
}

/// Appends a packet with no CSRCs, extension or padding: what a G.711 endpoint sends.
/// The header's `padding`, `extension` and `csrc_count` are ignored (written as absent) and
/// `payload_type` keeps its low 7 bits, the width of the field.
pub fn write(header: &RtpHeader, payload: &[u8], out: &mut Vec<u8>) {
    write_with_extras(header, &RtpExtras::default(), payload, out);
}

/// The optional parts of a packet, for callers that forward or test them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtpExtras<'a> {
    /// At most [`MAX_CSRCS`] are written; the CC field cannot count more.
    pub csrcs: &'a [u32],
    /// Data is zero-filled to a word boundary, because the length field counts words.
    pub extension: Option<HeaderExtension<'a>>,
    /// Total padding bytes including the count byte; 0 for none.
    pub padding_len: u8,
}

/// Appends a packet carrying `extras`; the header's flag and count fields are derived from them.
pub fn write_with_extras(
    header: &RtpHeader,
    extras: &RtpExtras<'_>,
    payload: &[u8],
    out: &mut Vec<u8>,
) {
    let csrcs = &extras.csrcs[..extras.csrcs.len().min(MAX_CSRCS)];
    let padded = extras.padding_len > 0;
    let mut first = RTP_VERSION << 6;
    if padded {
        first |= 0x20;
    }
    if extras.extension.is_some() {
        first |= 0x10;
    }
    // At most 15 after the cut above, so it fits the four-bit field.
    first |= csrcs.len() as u8;
    out.push(first);
    out.push((u8::from(header.marker) << 7) | (header.payload_type & 0x7f));
    out.extend_from_slice(&header.sequence.to_be_bytes());
    out.extend_from_slice(&header.timestamp.to_be_bytes());
    out.extend_from_slice(&header.ssrc.to_be_bytes());
    for csrc in csrcs {
        out.extend_from_slice(&csrc.to_be_bytes());
    }
    if let Some(extension) = extras.extension {
        let max_data_len = usize::from(u16::MAX) * 4;
        let data = &extension.data[..extension.data.len().min(max_data_len)];
        let words = data.len().div_ceil(4);
        out.extend_from_slice(&extension.profile.to_be_bytes());
        // At most u16::MAX words after the cut above.
        out.extend_from_slice(&(words as u16).to_be_bytes());
        out.extend_from_slice(data);
        out.resize(out.len() + (words * 4 - data.len()), 0);
    }
    out.extend_from_slice(payload);
    if padded {
        out.resize(out.len() + usize::from(extras.padding_len) - 1, 0);
        out.push(extras.padding_len);
    }
}

/// RTCP packet types 192–223 occupy the second byte where RTP has marker + payload types 64–95,
/// which RFC 5761 §4 forbids for RTP when the two share a port. Checking the whole range rather
/// than only SR..APP (200–204) also routes XR (207) and feedback (205/206) to the RTCP parser.
pub fn looks_like_rtcp(buf: &[u8]) -> bool {
    match buf {
        [first, second, ..] => first >> 6 == RTP_VERSION && (192..=223).contains(second),
        _ => false,
    }
}

/// Numbers the packets of one outgoing stream. Start values are random (RFC 3550 §5.1) so a
/// restarted call cannot be confused with the old one and plaintext attacks get no known start.
#[derive(Debug, Clone)]
pub struct RtpSender {
    ssrc: u32,
    next_sequence: u16,
    next_timestamp: u32,
    talkspurt_pending: bool,
}

impl RtpSender {
    /// The first packet is the start of a talk-spurt, so it carries the marker.
    pub fn new(ssrc: u32, first_sequence: u16, first_timestamp: u32) -> Self {
        Self {
            ssrc,
            next_sequence: first_sequence,
            next_timestamp: first_timestamp,
            talkspurt_pending: true,
        }
    }

    /// Draws the start sequence number and timestamp from `rng`.
    pub fn with_random_start(ssrc: u32, rng: &mut impl RngCore) -> Self {
        // Truncating a random u32 keeps the sequence uniformly random.
        let first_sequence = rng.next_u32() as u16;
        Self::new(ssrc, first_sequence, rng.next_u32())
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The sequence number the next packet will carry.
    pub fn next_sequence(&self) -> u16 {
        self.next_sequence
    }

    /// The media time, in clock units, of the next frame.
    pub fn next_timestamp(&self) -> u32 {
        self.next_timestamp
    }

    /// Header for a frame of `samples` clock units starting now; the media clock then moves past
    /// it. The marker is set if `marker` asks for it or a talk-spurt is starting (first packet or
    /// first after [`skip_silence`](Self::skip_silence)).
    pub fn next_header(&mut self, payload_type: u8, samples: u32, marker: bool) -> RtpHeader {
        let header = self.next_header_with_timestamp(payload_type, self.next_timestamp, marker);
        self.next_timestamp = self.next_timestamp.wrapping_add(samples);
        header
    }

    /// Header for a packet whose timestamp the caller chooses, as RFC 4733 events need (all
    /// packets of one event carry its start time). Advances only the sequence number.
    pub fn next_header_with_timestamp(
        &mut self,
        payload_type: u8,
        timestamp: u32,
        marker: bool,
    ) -> RtpHeader {
        let header = RtpHeader::new(
            payload_type,
            self.next_sequence,
            timestamp,
            self.ssrc,
            marker || self.talkspurt_pending,
        );
        self.talkspurt_pending = false;
        self.next_sequence = self.next_sequence.wrapping_add(1);
        header
    }

    /// Lets media time pass without sending (silence suppression); the receiver learns of the gap
    /// from the timestamp jump, and the next packet is marked as a talk-spurt start.
    pub fn skip_silence(&mut self, samples: u32) {
        self.advance_timestamp(samples);
        self.talkspurt_pending = true;
    }

    /// Lets media time pass without marking a new talk-spurt, e.g. while an RFC 4733 event
    /// occupied the stream.
    pub fn advance_timestamp(&mut self, samples: u32) {
        self.next_timestamp = self.next_timestamp.wrapping_add(samples);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PCMU: u8 = 0;

    fn sample_header() -> RtpHeader {
        RtpHeader::new(PCMU, 0x1234, 0xdead_beef, 0x0102_0304, true)
    }

    #[test]
    fn fixed_header_is_laid_out_as_in_rfc_3550() {
        let mut out = Vec::new();
        write(&sample_header(), &[0xff, 0x7f], &mut out);
        assert_eq!(
            out,
            [0x80, 0x80, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0xff, 0x7f]
        );
    }

    #[test]
    fn write_then_parse_gives_back_header_and_payload() {
        let header = RtpHeader::new(8, 65535, u32::MAX, 7, false);
        let mut out = Vec::new();
        write(&header, &[1, 2, 3], &mut out);
        let packet = parse(&out).unwrap();
        assert_eq!(packet.header, header);
        assert_eq!(packet.payload, &[1, 2, 3]);
        assert_eq!(packet.csrcs().count(), 0);
        assert_eq!(packet.extension, None);
        assert_eq!(packet.padding_len, 0);
    }

    #[test]
    fn plain_write_omits_optional_parts_even_if_the_header_claims_them() {
        let mut header = sample_header();
        header.padding = true;
        header.extension = true;
        header.csrc_count = 3;
        let mut out = Vec::new();
        write(&header, &[9; 160], &mut out);
        assert_eq!(out.len(), FIXED_HEADER_LEN + 160);
        let parsed = parse(&out).unwrap();
        assert_eq!(parsed.header, sample_header());
    }

    #[test]
    fn csrcs_extension_and_padding_are_cut_from_the_payload() {
        // Hand-built: V=2 P=1 X=1 CC=2, PT 0, then 2 CSRCs, a 1-word extension, payload, 3 pad.
        let mut buf = vec![0xb2, 0x00, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        buf.extend_from_slice(&[0, 0, 0, 0x11, 0, 0, 0, 0x22]);
        buf.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0]);
        buf.extend_from_slice(&[0x55, 0x66]);
        buf.extend_from_slice(&[0, 0, 3]);
        let packet = parse(&buf).unwrap();
        assert!(packet.header.padding && packet.header.extension);
        assert_eq!(packet.header.csrc_count, 2);
        assert_eq!(packet.csrcs().collect::<Vec<_>>(), [0x11, 0x22]);
        assert_eq!(
            packet.extension,
            Some(HeaderExtension {
                profile: 0xbede,
                data: &[0x10, 0xaa, 0, 0]
            })
        );
        assert_eq!(packet.payload, &[0x55, 0x66]);
        assert_eq!(packet.padding_len, 3);
    }

    #[test]
    fn padding_may_consume_the_whole_payload() {
        let mut buf = vec![0xa0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        buf.extend_from_slice(&[0, 0, 0, 4]);
        let packet = parse(&buf).unwrap();
        assert_eq!(packet.payload, &[] as &[u8]);
        assert_eq!(packet.padding_len, 4);
    }

    #[test]
    fn padding_longer_than_the_payload_is_rejected() {
        let mut buf = vec![0xa0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        buf.extend_from_slice(&[0xaa, 0, 5]);
        assert_eq!(
            parse(&buf),
            Err(RtpError::PaddingTooLong {
                count: 5,
                available: 3
            })
        );
    }

    #[test]
    fn zero_padding_count_and_missing_count_byte_are_rejected() {
        let mut buf = vec![0xa0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        assert_eq!(
            parse(&buf),
            Err(RtpError::PaddingTooLong {
                count: 0,
                available: 0
            })
        );
        buf.extend_from_slice(&[0xaa, 0]);
        assert_eq!(parse(&buf), Err(RtpError::ZeroPadding));
    }

    #[test]
    fn truncated_packets_name_what_is_missing() {
        assert_eq!(
            parse(&[0x80; 11]),
            Err(RtpError::ShorterThanFixedHeader { len: 11 })
        );
        // CC=3 but only one CSRC present.
        let mut buf = vec![0x83, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 9];
        assert_eq!(
            parse(&buf),
            Err(RtpError::TruncatedCsrcs {
                len: 16,
                csrc_count: 3
            })
        );
        // X=1 with an extension header claiming 2 words but carrying 1.
        buf[0] = 0x90;
        buf.truncate(12);
        buf.extend_from_slice(&[0xbe, 0xde, 0, 2, 1, 2, 3, 4]);
        assert_eq!(
            parse(&buf),
            Err(RtpError::TruncatedExtension {
                needed: 12,
                available: 8
            })
        );
        buf.truncate(14);
        assert_eq!(
            parse(&buf),
            Err(RtpError::TruncatedExtension {
                needed: 4,
                available: 2
            })
        );
    }

    #[test]
    fn versions_other_than_2_are_rejected() {
        for (first, version) in [(0x00, 0), (0x40, 1), (0xc0, 3)] {
            let buf = [first, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
            assert_eq!(parse(&buf), Err(RtpError::BadVersion { version }));
        }
    }

    #[test]
    fn errors_name_the_offending_value() {
        assert_eq!(
            RtpError::BadVersion { version: 1 }.to_string(),
            "rtp version 1 is not 2"
        );
        assert_eq!(
            RtpError::PaddingTooLong {
                count: 9,
                available: 4
            }
            .to_string(),
            "rtp padding count 9 is longer than the 4 bytes after the header"
        );
    }

    #[test]
    fn rtcp_is_told_apart_from_rtp_on_a_shared_port() {
        let rr = [0x80, 201, 0, 1, 0, 0, 0, 1];
        let sr = [0x81, 200, 0, 7];
        let bye = [0x81, 203, 0, 1];
        assert!(looks_like_rtcp(&rr));
        assert!(looks_like_rtcp(&sr));
        assert!(looks_like_rtcp(&bye));
        // Extended reports and feedback share the range RFC 5761 reserves.
        assert!(looks_like_rtcp(&[0x80, 207, 0, 1]));
        assert!(looks_like_rtcp(&[0x81, 205, 0, 2]));
        // Edges: marker + PT 63 (191) and marker + PT 96 (224) are RTP.
        assert!(looks_like_rtcp(&[0x80, 192]) && looks_like_rtcp(&[0x80, 223]));
        assert!(!looks_like_rtcp(&[0x80, 191]) && !looks_like_rtcp(&[0x80, 224]));
        let mut pcmu = Vec::new();
        write(&sample_header(), &[0; 160], &mut pcmu);
        assert!(!looks_like_rtcp(&pcmu));
        // Dynamic payload type 101 (telephone-event) with the marker: 0x80 | 101 = 229.
        let mut event = Vec::new();
        write(&RtpHeader::new(101, 1, 1, 1, true), &[0; 4], &mut event);
        assert!(!looks_like_rtcp(&event));
        assert!(!looks_like_rtcp(&[0x80]));
        assert!(
            !looks_like_rtcp(&[0x00, 200, 0, 1]),
            "version 0 is STUN-like"
        );
    }

    #[test]
    fn sender_advances_sequence_and_timestamp_per_frame_and_wraps() {
        let mut sender = RtpSender::new(0xabcd, 65534, u32::MAX - 159);
        let first = sender.next_header(PCMU, 160, false);
        assert_eq!(
            (first.sequence, first.timestamp, first.ssrc),
            (65534, u32::MAX - 159, 0xabcd)
        );
        assert!(first.marker, "first packet starts a talk-spurt");
        let second = sender.next_header(PCMU, 160, false);
        assert_eq!((second.sequence, second.timestamp), (65535, 0));
        assert!(!second.marker);
        let third = sender.next_header(PCMU, 160, false);
        assert_eq!((third.sequence, third.timestamp), (0, 160));
    }

    #[test]
    fn sender_marks_the_first_packet_after_silence() {
        let mut sender = RtpSender::new(1, 100, 1000);
        sender.next_header(PCMU, 160, false);
        sender.skip_silence(800);
        let after_silence = sender.next_header(PCMU, 160, false);
        assert_eq!(after_silence.sequence, 101, "silence sends nothing");
        assert_eq!(after_silence.timestamp, 1000 + 160 + 800);
        assert!(after_silence.marker);
        assert!(!sender.next_header(PCMU, 160, false).marker);
        assert!(
            sender.next_header(PCMU, 160, true).marker,
            "explicit marker"
        );
    }

    #[test]
    fn events_share_a_timestamp_while_sequence_advances() {
        let mut sender = RtpSender::new(1, 10, 5000);
        sender.next_header(PCMU, 160, false);
        let event_start = sender.next_timestamp();
        let a = sender.next_header_with_timestamp(101, event_start, true);
        let b = sender.next_header_with_timestamp(101, event_start, false);
        sender.advance_timestamp(320);
        let audio = sender.next_header(PCMU, 160, false);
        assert_eq!((a.sequence, b.sequence, audio.sequence), (11, 12, 13));
        assert_eq!((a.timestamp, b.timestamp), (5160, 5160));
        assert_eq!(audio.timestamp, 5480);
        assert!(!audio.marker);
    }

    #[test]
    fn random_start_comes_from_the_injected_source() {
        let mut rng = rand::rngs::mock::StepRng::new(0x0001_2345_0006_789a, 0);
        let mut sender = RtpSender::with_random_start(42, &mut rng);
        let header = sender.next_header(PCMU, 160, false);
        assert_eq!(header.sequence, 0x789a);
        assert_eq!(header.timestamp, 0x0006_789a);
        assert_eq!(header.ssrc, 42);
    }

    fn any_header() -> impl Strategy<Value = RtpHeader> {
        (
            any::<bool>(),
            0u8..128,
            any::<u16>(),
            any::<u32>(),
            any::<u32>(),
        )
            .prop_map(|(marker, payload_type, sequence, timestamp, ssrc)| {
                RtpHeader::new(payload_type, sequence, timestamp, ssrc, marker)
            })
    }

    proptest! {
        #[test]
        fn any_header_and_payload_round_trip(
            header in any_header(),
            payload in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut out = Vec::new();
            write(&header, &payload, &mut out);
            let packet = parse(&out).unwrap();
            prop_assert_eq!(packet.header, header);
            prop_assert_eq!(packet.payload, &payload[..]);
        }

        #[test]
        fn any_packet_with_extras_round_trips(
            header in any_header(),
            csrcs in proptest::collection::vec(any::<u32>(), 0..=MAX_CSRCS),
            extension in proptest::option::of((any::<u16>(), proptest::collection::vec(any::<u8>(), 0..5).prop_map(|words| {
                words.iter().flat_map(|w| [*w; 4]).collect::<Vec<u8>>()
            }))),
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            padding_len in any::<u8>(),
        ) {
            let extras = RtpExtras {
                csrcs: &csrcs,
                extension: extension.as_ref().map(|(profile, data)| HeaderExtension { profile: *profile, data }),
                padding_len,
            };
            let mut out = Vec::new();
            write_with_extras(&header, &extras, &payload, &mut out);
            let packet = parse(&out).unwrap();
            let expected_header = RtpHeader {
                padding: padding_len > 0,
                extension: extension.is_some(),
                csrc_count: csrcs.len() as u8,
                ..header
            };
            prop_assert_eq!(packet.header, expected_header);
            prop_assert_eq!(packet.csrcs().collect::<Vec<_>>(), csrcs.clone());
            prop_assert_eq!(packet.extension, extras.extension);
            prop_assert_eq!(packet.payload, &payload[..]);
            prop_assert_eq!(packet.padding_len, padding_len);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(packet) = parse(&bytes) {
                // Whatever parsed must lie inside the buffer it came from.
                prop_assert!(packet.payload.len() + FIXED_HEADER_LEN <= bytes.len());
            }
            let _ = looks_like_rtcp(&bytes);
        }

        #[test]
        fn bytes_after_a_valid_fixed_header_never_panic(
            first in 0x80u8..0xc0,
            rest in proptest::collection::vec(any::<u8>(), 11..120),
        ) {
            let mut bytes = vec![first];
            bytes.extend_from_slice(&rest);
            let _ = parse(&bytes);
        }
    }
}
