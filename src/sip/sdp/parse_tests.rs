//! Parsing and serialising: carrier-shaped examples, precise errors, round trips, and that no
//! input panics.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;

/// Shaped like a Cisco CUBE offer towards a customer trunk.
const CARRIER_OFFER: &str = "v=0\r\n\
o=CiscoSystemsSIP-GW-UserAgent 4416 2743 IN IP4 192.0.2.10\r\n\
s=SIP Call\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 17342 RTP/AVP 0 8 18 101\r\n\
c=IN IP4 192.0.2.11\r\n\
b=AS:80\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n\
a=rtcp:17343 IN IP4 192.0.2.11\r\n\
a=X-sqn:0\r\n";

#[test]
fn carrier_offer_parses_into_typed_fields() {
    let sdp = parse(CARRIER_OFFER).unwrap();
    assert_eq!(sdp.origin.username, "CiscoSystemsSIP-GW-UserAgent");
    assert_eq!(sdp.origin.session_id, 4416);
    assert_eq!(sdp.origin.session_version, 2743);
    assert_eq!(sdp.session_name, "SIP Call");
    assert_eq!(
        sdp.connection,
        Some(Connection::from_ip(IpAddr::V4(Ipv4Addr::new(
            192, 0, 2, 10
        ))))
    );
    assert_eq!(sdp.timing, vec![Timing::default()]);
    let [audio] = &sdp.media[..] else {
        panic!("expected one m= line, got {:?}", sdp.media)
    };
    assert_eq!(audio.media_type, "audio");
    assert_eq!(audio.port, 17342);
    assert_eq!(audio.proto, "RTP/AVP");
    assert_eq!(audio.formats, ["0", "8", "18", "101"]);
    assert_eq!(
        audio.connection.as_ref().and_then(Connection::ip),
        Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11)))
    );
    assert_eq!(
        audio.bandwidths,
        vec![Bandwidth {
            kind: "AS".into(),
            value: 80
        }]
    );
    assert_eq!(audio.codec_of(0), Some(Codec::Pcmu));
    assert_eq!(audio.codec_of(8), Some(Codec::Pcma));
    assert_eq!(audio.codec_of(18), None);
    assert!(audio.is_telephone_event(101));
    assert_eq!(
        audio.fmtp(101).map(|fmtp| fmtp.params.as_str()),
        Some("0-16")
    );
    assert_eq!(audio.ptime(), Some(20));
    assert_eq!(audio.direction(), Some(Direction::SendRecv));
    assert_eq!(audio.rtcp().map(|rtcp| rtcp.port), Some(17343));
    assert!(audio.attributes.contains(&Attribute::Other {
        name: "X-sqn".into(),
        value: Some("0".into())
    }));
}

#[test]
fn serialising_writes_crlf_lines_in_rfc_order() {
    let text = parse(CARRIER_OFFER).unwrap().to_string();
    assert_eq!(text, CARRIER_OFFER);
}

#[test]
fn lf_only_and_trailing_blank_lines_are_accepted() {
    let lf_only = CARRIER_OFFER.replace("\r\n", "\n") + "\n\n";
    assert_eq!(parse(&lf_only).unwrap(), parse(CARRIER_OFFER).unwrap());
}

#[test]
fn tolerates_extra_spaces_attribute_case_and_missing_timing() {
    let sdp = parse(
        "v=0\n\
         o=- 1  2 IN IP4 10.0.0.1 \n\
         s=-\n\
         c=IN  IP4 10.0.0.1\n\
         m=audio 4000  RTP/AVP 8\n\
         a=RTPMAP:8 pcma/8000\n\
         a=PTime:30.0\n\
         a=SendOnly\n",
    )
    .unwrap();
    assert_eq!(sdp.timing, vec![Timing::default()]);
    let audio = &sdp.media[0];
    assert_eq!(audio.codec_of(8), Some(Codec::Pcma));
    assert_eq!(audio.ptime(), Some(30));
    assert_eq!(audio.direction(), Some(Direction::SendOnly));
}

#[test]
fn ipv6_connection_and_origin() {
    let sdp = parse(
        "v=0\r\no=- 7 7 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP6 2001:db8::2\r\nt=0 0\r\n\
         m=audio 5004 RTP/AVP 0\r\n",
    )
    .unwrap();
    assert_eq!(sdp.origin.addr_type, AddrType::Ip6);
    let expected: Ipv6Addr = "2001:db8::2".parse().unwrap();
    assert_eq!(
        sdp.connection.as_ref().and_then(Connection::ip),
        Some(IpAddr::V6(expected))
    );
}

#[test]
fn non_rtp_formats_are_opaque_tokens() {
    let sdp = parse(
        "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
         m=image 4002 udptl t38\r\na=T38FaxVersion:0\r\n",
    )
    .unwrap();
    assert_eq!(sdp.media[0].formats, ["t38"]);
    assert_eq!(sdp.media[0].payload_types().count(), 0);
}

/// The error a SIP log shows must point at the line: its number and its text.
fn line_error(input: &str) -> (usize, String, SdpLineError) {
    match parse(input) {
        Err(SdpError::Line { line, text, reason }) => (line, text, reason),
        other => panic!("expected a line error for {input:?}, got {other:?}"),
    }
}

const HEAD: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n";

#[test]
fn errors_name_line_number_text_and_value() {
    let (line, text, reason) = line_error(&format!("{HEAD}m=audio 99999 RTP/AVP 0\r\n"));
    assert_eq!(line, 6);
    assert_eq!(text, "m=audio 99999 RTP/AVP 0");
    assert_eq!(
        reason,
        SdpLineError::OutOfRange {
            field: "port",
            text: "99999".into()
        }
    );
    assert_eq!(reason.to_string(), "port 99999 is out of range");

    let (line, _, reason) = line_error(&format!("{HEAD}m=audio 4000 RTP/AVP 0 abc\r\n"));
    assert_eq!(line, 6);
    assert_eq!(
        reason.to_string(),
        "payload type \"abc\" is not a decimal number"
    );

    let (line, _, reason) = line_error(&format!(
        "{HEAD}m=audio 4000 RTP/AVP 0\r\na=rtpmap:200 X/8000\r\n"
    ));
    assert_eq!(line, 7);
    assert_eq!(reason, SdpLineError::PayloadTypeAbove127(200));
    assert_eq!(reason.to_string(), "payload type 200 is above 127");

    let (line, _, reason) = line_error("v=0\r\no=- 1 1 IN IP4 999.1.1.1\r\n");
    assert_eq!(line, 2);
    assert_eq!(
        reason.to_string(),
        "address \"999.1.1.1\" is neither an IP4 address nor a host name"
    );

    let (_, _, reason) = line_error("v=0\r\no=- 1 1 IN IP4 2001:db8::1\r\n");
    assert_eq!(
        reason,
        SdpLineError::WrongAddressFamily {
            address: "2001:db8::1".into(),
            expected: AddrType::Ip4
        }
    );
    assert_eq!(
        reason.to_string(),
        "address 2001:db8::1 is not an IP4 address"
    );

    let (_, _, reason) = line_error("v=0\r\no=- +1 1 IN IP4 10.0.0.1\r\n");
    assert_eq!(
        reason.to_string(),
        "session id \"+1\" is not a decimal number"
    );

    let (_, _, reason) = line_error("v=0\r\no=- 99999999999999999999999 1 IN IP4 10.0.0.1\r\n");
    assert_eq!(
        reason.to_string(),
        "session id 99999999999999999999999 is out of range"
    );

    let (line, _, reason) = line_error(&format!("{HEAD}m=audio 4000 RTP/AVP 0\r\nt=0 0\r\n"));
    assert_eq!(line, 7);
    assert_eq!(reason, SdpLineError::SessionLineInMedia('t'));
    assert_eq!(
        reason.to_string(),
        "t= line belongs before the first m= line, not inside a media description"
    );

    let (_, _, reason) = line_error(&format!("{HEAD}c=IN IP4 10.0.0.2\r\n"));
    assert_eq!(reason, SdpLineError::DuplicateLine('c'));
    assert_eq!(reason.to_string(), "duplicate c= line");

    let (_, _, reason) = line_error(&format!("{HEAD}x=1\r\n"));
    assert_eq!(reason.to_string(), "unknown line type 'x'");
}

/// SIP logs print the whole error, and operators search them for its wording.
#[test]
fn a_line_error_prints_number_line_and_reason() {
    let error = parse(&format!(
        "{HEAD}m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n"
    ))
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "sdp line 7 \"a=rtpmap:0 PCMU\": encoding \"PCMU\" lacks /<clock rate>"
    );
}

#[test]
fn garbage_is_refused_at_its_first_line() {
    let (line, text, reason) = line_error("INVITE sip:bob@example.com SIP/2.0\r\n");
    assert_eq!(
        (line, text.as_str()),
        (1, "INVITE sip:bob@example.com SIP/2.0")
    );
    assert_eq!(reason.to_string(), "not a <type>=<value> line");

    let (line, _, reason) = line_error("o=- 1 1 IN IP4 10.0.0.1\r\n");
    assert_eq!(line, 1);
    assert_eq!(reason.to_string(), "expected v=0 as the first line");

    let (line, _, reason) = line_error("\n\nv=1\n");
    assert_eq!(line, 3);
    assert_eq!(reason.to_string(), "unsupported sdp version \"1\"");

    let (_, _, reason) = line_error("v=0\r\ns=a\rb\r\n");
    assert_eq!(reason.to_string(), "line contains a carriage return or NUL");

    let (_, _, reason) = line_error("v=0\r\nÖ=x\r\n");
    assert_eq!(
        reason.to_string(),
        "line type 'Ö' is not a lowercase letter"
    );
}

#[test]
fn missing_mandatory_lines_and_empty_bodies() {
    assert_eq!(parse(""), Err(SdpError::Empty));
    assert_eq!(parse("\r\n \r\n"), Err(SdpError::Empty));
    assert_eq!(parse("v=0\r\ns=-\r\n"), Err(SdpError::Missing("o=")));
    assert_eq!(
        parse("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\n"),
        Err(SdpError::Missing("s="))
    );
}

#[test]
fn oversized_bodies_are_refused_before_parsing() {
    let huge = format!("{HEAD}{}", "a=x-padding:0123456789\r\n".repeat(4000));
    assert_eq!(parse(&huge), Err(SdpError::TooLarge { len: huge.len() }));
}

#[test]
fn long_lines_are_cut_in_error_messages() {
    let (_, text, _) = line_error(&format!("{}\r\n", "ß".repeat(10_000)));
    assert_eq!(text.chars().count(), 121);
    assert!(text.ends_with('…'));
}

#[test]
fn every_truncation_of_a_carrier_offer_parses_or_errs() {
    for (cut, _) in CARRIER_OFFER.char_indices() {
        let prefix = &CARRIER_OFFER[..cut];
        if let Ok(sdp) = parse(prefix) {
            assert_eq!(parse(&sdp.to_string()).unwrap(), sdp, "prefix {prefix:?}");
        }
    }
}

// ---- property tests ------------------------------------------------------------------------

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9.+_~!-]{0,10}"
}

/// Free text: anything but CR, LF and NUL, non-ASCII included.
fn text() -> impl Strategy<Value = String> {
    "[^\r\n\0]{0,24}"
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<Ipv4Addr>().prop_map(IpAddr::V4),
        any::<Ipv6Addr>().prop_map(IpAddr::V6),
    ]
}

fn connection() -> impl Strategy<Value = Connection> {
    prop_oneof![
        4 => ip().prop_map(Connection::from_ip),
        1 => "[a-z]{1,8}\\.example\\.net".prop_map(|host| Connection {
            addr_type: AddrType::Ip4,
            address: host,
        }),
    ]
}

fn origin() -> impl Strategy<Value = Origin> {
    ("[!-~]{1,12}", any::<u64>(), any::<u64>(), ip()).prop_map(
        |(username, session_id, session_version, addr)| Origin {
            username,
            session_id,
            session_version,
            addr_type: AddrType::of(addr),
            address: addr.to_string(),
        },
    )
}

fn bandwidth() -> impl Strategy<Value = Bandwidth> {
    (token(), any::<u64>()).prop_map(|(kind, value)| Bandwidth { kind, value })
}

fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![
        Just(Direction::SendRecv),
        Just(Direction::SendOnly),
        Just(Direction::RecvOnly),
        Just(Direction::Inactive),
    ]
}

fn attribute() -> impl Strategy<Value = Attribute> {
    prop_oneof![
        (0u8..=127, token(), 1u32.., proptest::option::of("[12]")).prop_map(
            |(payload_type, encoding, clock_rate, params)| Attribute::Rtpmap(Rtpmap {
                payload_type,
                encoding,
                clock_rate,
                params,
            })
        ),
        (token(), "([!-~]([ -~]{0,14}[!-~])?)?")
            .prop_map(|(format, params)| Attribute::Fmtp(Fmtp { format, params })),
        any::<u32>().prop_map(Attribute::Ptime),
        any::<u32>().prop_map(Attribute::MaxPtime),
        direction().prop_map(Attribute::Direction),
        (any::<u16>(), proptest::option::of(connection()))
            .prop_map(|(port, connection)| Attribute::Rtcp(Rtcp { port, connection })),
        ("x-[A-Za-z0-9-]{1,8}", proptest::option::of(text()))
            .prop_map(|(name, value)| Attribute::Other { name, value }),
    ]
}

fn media() -> impl Strategy<Value = MediaDescription> {
    let rtp = (
        prop_oneof![Just("RTP/AVP"), Just("RTP/SAVP"), Just("UDP/TLS/RTP/SAVPF")],
        proptest::collection::vec(0u8..=127, 0..6),
    )
        .prop_map(|(proto, pts)| (proto.to_owned(), pts.iter().map(u8::to_string).collect()));
    let other = (
        Just("udptl".to_owned()),
        proptest::collection::vec(token(), 0..3),
    );
    (
        prop_oneof![Just("audio".to_owned()), Just("video".to_owned()), token()],
        any::<u16>(),
        proptest::option::of(any::<u16>()),
        prop_oneof![rtp, other],
        proptest::option::of(text()),
        proptest::option::of(connection()),
        proptest::collection::vec(bandwidth(), 0..2),
        proptest::option::of(text()),
        proptest::collection::vec(attribute(), 0..8),
    )
        .prop_map(
            |(
                media_type,
                port,
                port_count,
                (proto, formats),
                information,
                connection,
                bandwidths,
                encryption_key,
                attributes,
            )| MediaDescription {
                media_type,
                port,
                port_count,
                proto,
                formats,
                information,
                connection,
                bandwidths,
                encryption_key,
                attributes,
            },
        )
}

fn timing() -> impl Strategy<Value = Timing> {
    (
        any::<u64>(),
        any::<u64>(),
        proptest::collection::vec(text(), 0..2),
    )
        .prop_map(|(start, stop, repeats)| Timing {
            start,
            stop,
            repeats,
        })
}

prop_compose! {
    pub(super) fn description()(
        origin in origin(),
        session_name in text(),
        information in proptest::option::of(text()),
        uri in proptest::option::of(text()),
        emails in proptest::collection::vec(text(), 0..2),
        phones in proptest::collection::vec(text(), 0..2),
        connection in proptest::option::of(connection()),
        bandwidths in proptest::collection::vec(bandwidth(), 0..2),
        timing in proptest::collection::vec(timing(), 1..3),
        time_zones in proptest::option::of(text()),
        encryption_key in proptest::option::of(text()),
        attributes in proptest::collection::vec(attribute(), 0..5),
        media in proptest::collection::vec(media(), 0..4),
    ) -> SessionDescription {
        SessionDescription {
            origin, session_name, information, uri, emails, phones, connection, bandwidths,
            timing, time_zones, encryption_key, attributes, media,
        }
    }
}

proptest! {
    #[test]
    fn generated_descriptions_survive_serialise_then_parse(sdp in description()) {
        let text = sdp.to_string();
        prop_assert!(text.ends_with("\r\n"));
        prop_assert!(!text.replace("\r\n", "").contains('\n'));
        prop_assert_eq!(parse(&text), Ok(sdp));
    }

    #[test]
    fn reparsing_what_we_serialised_from_lf_input_is_stable(sdp in description()) {
        let lf_text = sdp.to_string().replace("\r\n", "\n");
        let parsed = parse(&lf_text).unwrap();
        prop_assert_eq!(parse(&parsed.to_string()), Ok(parsed));
    }

    #[test]
    fn arbitrary_strings_never_panic(input in "\\PC{0,400}") {
        if let Ok(sdp) = parse(&input) {
            prop_assert_eq!(parse(&sdp.to_string()), Ok(sdp));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let input = String::from_utf8_lossy(&bytes);
        if let Ok(sdp) = parse(&input) {
            prop_assert_eq!(parse(&sdp.to_string()), Ok(sdp));
        }
    }

    /// Random lines that each look like SDP reach the deeper parsers instead of failing on the
    /// first character.
    #[test]
    fn sdp_shaped_lines_never_panic(
        lines in proptest::collection::vec("[vostcmabkiuepzr]=[ -~]{0,40}", 0..20)
    ) {
        let input = format!("v=0\r\n{}", lines.join("\r\n"));
        if let Ok(sdp) = parse(&input) {
            prop_assert_eq!(parse(&sdp.to_string()), Ok(sdp));
        }
    }

    #[test]
    fn huge_numbers_are_errors(digits in "[1-9][0-9]{20,60}") {
        let offer = format!("{HEAD}m=audio {digits} RTP/AVP 0\r\n");
        let is_line_error = matches!(
            parse(&offer),
            Err(SdpError::Line {
                line: 6,
                reason: SdpLineError::OutOfRange { field: "port", .. },
                ..
            })
        );
        prop_assert!(is_line_error);
        let ptime = format!("{HEAD}m=audio 4000 RTP/AVP 0\r\na=ptime:{digits}\r\n");
        let is_line_error = matches!(
            parse(&ptime),
            Err(SdpError::Line {
                line: 7,
                reason: SdpLineError::OutOfRange { field: "ptime", .. },
                ..
            })
        );
        prop_assert!(is_line_error);
    }
}
