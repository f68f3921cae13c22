use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::sip::message::{call_id, cseq, header, to_tag};

/// The tags of our replies come from a seeded generator, so every run writes the same bytes.
fn rng() -> StdRng {
    StdRng::seed_from_u64(1)
}

const INVITE: &str = "INVITE sip:100@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1\r\n\
From: <sip:a@127.0.0.1>;tag=f1\r\n\
To: <sip:100@127.0.0.1>\r\n\
Call-ID: c1@host\r\n\
CSeq: 1 INVITE\r\n\
Max-Forwards: 70\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\n";

fn req(msg: &rsip::SipMessage) -> &rsip::Request {
    match msg {
        rsip::SipMessage::Request(r) => r,
        _ => panic!("expected a request"),
    }
}

#[test]
fn parses_a_plain_invite_and_keeps_only_content_length_bytes_of_body() {
    let mut raw = INVITE.as_bytes().to_vec();
    raw.extend_from_slice(b"trailing junk");
    let msg = parse(&raw).unwrap();
    let r = req(&msg);
    assert_eq!(r.method, rsip::Method::Invite);
    assert_eq!(r.body, b"v=0\n");
    assert_eq!(call_id(&r.headers), Some("c1@host"));
    assert_eq!(cseq(&r.headers), Some((1, "INVITE")));
}

#[test]
fn compact_names_and_folded_lines_are_understood() {
    let raw = "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\n\
v: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-2\r\n\
f: <sip:a@127.0.0.1>;tag=f1\r\n\
t: <sip:x@127.0.0.1>\r\n\
i: c2\r\n\
CSeq: 7\r\n  OPTIONS\r\n\
l: 0\r\n\r\n";
    let msg = parse(raw.as_bytes()).unwrap();
    let r = req(&msg);
    assert_eq!(call_id(&r.headers), Some("c2"));
    assert_eq!(cseq(&r.headers), Some((7, "OPTIONS")));
    assert!(header(&r.headers, "Via").unwrap().contains("z9hG4bK-2"));
}

#[test]
fn bare_lf_line_endings_are_accepted() {
    let raw = INVITE.replace("\r\n", "\n");
    let msg = parse(raw.as_bytes()).unwrap();
    assert_eq!(req(&msg).body, b"v=0\n");
}

#[test]
fn the_tag_of_a_reply_repeats_with_the_seed_and_differs_across_seeds() {
    let raw = INVITE.replace("Content-Length: 4", "Content-Length: 400");
    let err = parse(raw.as_bytes()).unwrap_err();
    let reply = |seed| {
        let bytes = err.reply("tg", &mut StdRng::seed_from_u64(seed)).unwrap();
        let rsip::SipMessage::Response(resp) = parse(&bytes).unwrap() else {
            panic!("a reply is a response")
        };
        to_tag(&resp.headers).unwrap().to_string()
    };
    assert_eq!(reply(1), reply(1));
    assert_ne!(reply(1), reply(2));
}

#[test]
fn content_length_larger_than_body_is_refused_with_a_400() {
    let raw = INVITE.replace("Content-Length: 4", "Content-Length: 400");
    let err = parse(raw.as_bytes()).unwrap_err();
    assert_eq!(
        err.error,
        CodecError::ShortBody {
            declared: 400,
            available: 4
        }
    );
    let reply = String::from_utf8(err.reply("tg", &mut rng()).unwrap().to_vec()).unwrap();
    assert!(
        reply.starts_with("SIP/2.0 400 Content-length 400 but only 4 body bytes\r\n"),
        "{reply}"
    );
    assert!(reply.contains("Call-ID: c1@host\r\n"));
    assert!(reply.contains("branch=z9hG4bK-1"));
    let parsed = parse(reply.as_bytes()).unwrap();
    let rsip::SipMessage::Response(resp) = parsed else {
        panic!()
    };
    assert!(to_tag(&resp.headers).is_some(), "a 400 must carry a To tag");
}

#[test]
fn missing_call_id_is_refused_but_cannot_be_answered_without_it() {
    let raw = INVITE.replace("Call-ID: c1@host\r\n", "");
    let err = parse(raw.as_bytes()).unwrap_err();
    assert_eq!(err.error, CodecError::Missing("Call-ID"));
    assert!(err.reply("tg", &mut rng()).is_none());
}

#[test]
fn missing_max_forwards_is_fine_but_a_bad_one_is_not() {
    let ok = INVITE.replace("Max-Forwards: 70\r\n", "");
    assert!(parse(ok.as_bytes()).is_ok());
    let bad = INVITE.replace("Max-Forwards: 70", "Max-Forwards: seventy");
    let err = parse(bad.as_bytes()).unwrap_err();
    assert!(matches!(
        err.error,
        CodecError::BadHeader("Max-Forwards", _)
    ));
    assert!(err.reply("tg", &mut rng()).is_some());
}

#[test]
fn cseq_method_must_match_the_request() {
    let raw = INVITE.replace("CSeq: 1 INVITE", "CSeq: 1 BYE");
    let err = parse(raw.as_bytes()).unwrap_err();
    assert!(matches!(err.error, CodecError::CSeqMismatch { .. }));
}

#[test]
fn unknown_method_gets_501_with_allow() {
    let raw = INVITE
        .replace("INVITE sip", "FROBNICATE sip")
        .replace("1 INVITE", "1 FROBNICATE");
    let err = parse(raw.as_bytes()).unwrap_err();
    assert_eq!(err.error, CodecError::UnknownMethod("FROBNICATE".into()));
    let reply = String::from_utf8(err.reply("tg", &mut rng()).unwrap().to_vec()).unwrap();
    assert!(reply.starts_with("SIP/2.0 501 Not Implemented\r\n"));
    assert!(reply.contains("Allow: INVITE"));
}

#[test]
fn ack_is_never_answered() {
    let raw = INVITE
        .replace("INVITE sip", "ACK sip")
        .replace("1 INVITE", "1 ACK")
        .replace("Content-Length: 4", "Content-Length: 99");
    let err = parse(raw.as_bytes()).unwrap_err();
    assert!(err.reply("tg", &mut rng()).is_none());
}

#[test]
fn binary_junk_and_empty_input_are_errors_not_panics() {
    assert_eq!(parse(b"").unwrap_err().error, CodecError::Empty);
    assert_eq!(parse(b"\r\n\r\n").unwrap_err().error, CodecError::Empty);
    assert!(parse(&[0xff, 0xfe, 0x00, 0x13, 0x37]).is_err());
    assert!(parse(b"INVITE\r\n\r\n").is_err());
    assert!(parse(b"SIP/2.0 99999 Huh\r\n\r\n").is_err());
}

#[test]
fn huge_messages_are_refused() {
    let mut raw = INVITE.replace("Content-Length: 4\r\n", "");
    let pad = format!("X-Pad: {}\r\n", "a".repeat(1000));
    raw = raw.replacen(
        "Max-Forwards",
        &format!("{}Max-Forwards", pad.repeat(70)),
        1,
    );
    assert!(matches!(
        parse(raw.as_bytes()).unwrap_err().error,
        CodecError::TooLarge(_)
    ));
    let many = INVITE.replacen("Max-Forwards", &"X-A: b\r\n".repeat(300), 1);
    assert_eq!(
        parse(many.as_bytes()).unwrap_err().error,
        CodecError::TooManyHeaders
    );
}

#[test]
fn stream_framing_waits_for_the_whole_body() {
    let raw = INVITE.as_bytes();
    assert_eq!(frame_stream(&raw[..20]).unwrap(), Frame::Incomplete);
    assert_eq!(
        frame_stream(&raw[..raw.len() - 1]).unwrap(),
        Frame::Incomplete
    );
    assert_eq!(frame_stream(raw).unwrap(), Frame::Message(raw.len()));
    let mut two = raw.to_vec();
    two.extend_from_slice(raw);
    assert_eq!(frame_stream(&two).unwrap(), Frame::Message(raw.len()));
}

#[test]
fn stream_content_length_of_usize_max_is_refused_not_wrapped() {
    // Found by the sip_codec fuzz target: body offset + usize::MAX overflowed.
    let raw = INVITE.replace(
        "Content-Length: 4",
        &format!("Content-Length: 000{}", usize::MAX),
    );
    assert!(matches!(
        frame_stream(raw.as_bytes()),
        Err(CodecError::TooLarge(_))
    ));
    assert!(parse(raw.as_bytes()).is_err());
}

#[test]
fn stream_keepalives_are_recognised() {
    assert_eq!(
        frame_stream(b"\r\n\r\nINVITE").unwrap(),
        Frame::KeepAlive { n: 4, ping: true }
    );
    assert_eq!(frame_stream(b"\r\n").unwrap(), Frame::Incomplete);
    assert_eq!(
        frame_stream(b"\r\nINVITE").unwrap(),
        Frame::KeepAlive { n: 2, ping: false }
    );
}

#[test]
fn stream_with_bad_content_length_cannot_be_framed() {
    let raw = INVITE.replace("Content-Length: 4", "Content-Length: -1");
    assert!(frame_stream(raw.as_bytes()).is_err());
    let big = INVITE.replace("Content-Length: 4", "Content-Length: 99999999");
    assert!(matches!(
        frame_stream(big.as_bytes()),
        Err(CodecError::TooLarge(_))
    ));
    assert!(matches!(
        frame_stream(&vec![b'a'; MAX_MESSAGE + 1]),
        Err(CodecError::TooLarge(_))
    ));
}

#[test]
fn reply_to_a_non_utf8_request_with_folded_cseq_is_itself_valid() {
    // Found by the sip_codec fuzz target: the salvage path echoed "CSeq: 7" without its folded
    // method, so our own 400 was unparsable.
    let raw = b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nv: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK-2\r\n\
f: <sip:\xe1@127.0.0.1>;tag=f1\r\nt: <sip:x@127.0.0.1>\r\ni: c2\r\nCSeq: 7\r\n  OPTIONS\r\nl: 0\r\n\r\n";
    let err = parse(raw).unwrap_err();
    assert_eq!(err.error, CodecError::NotUtf8);
    let reply = err.reply("tg", &mut rng()).expect("enough to answer");
    let text = String::from_utf8(reply.to_vec()).unwrap();
    assert!(text.contains("CSeq: 7 OPTIONS\r\n"), "{text}");
    assert!(parse(&reply).is_ok(), "{text}");
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
        if let Err(e) = parse(&bytes) {
            if let Some(reply) = e.reply("tg", &mut rng()) {
                proptest::prop_assert!(parse(&reply).is_ok(), "our reply must parse");
            }
        }
        let _ = frame_stream(&bytes);
    }

    #[test]
    fn mutated_invites_never_panic(pos in 0usize..300, byte in proptest::prelude::any::<u8>(), cut in 0usize..320) {
        let mut raw = INVITE.as_bytes().to_vec();
        let p = pos % raw.len();
        raw[p] = byte;
        raw.truncate(cut.max(1));
        if let Err(e) = parse(&raw) {
            if let Some(reply) = e.reply("tg", &mut rng()) {
                proptest::prop_assert!(parse(&reply).is_ok(), "our reply must parse");
            }
        }
        let _ = frame_stream(&raw);
    }
}

/// Torture cases in the spirit of RFC 4475 (written here, not copied): what a tolerant but
/// correct parser must accept.
mod torture_valid {
    use super::*;

    fn accepts(raw: &str) -> rsip::SipMessage {
        parse(raw.as_bytes()).unwrap_or_else(|e| panic!("refused ({}):\n{raw}", e.error))
    }

    #[test]
    fn whitespace_tabs_and_folding_everywhere() {
        let raw = "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\r\n\
TO :\r\n sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\r\n\
from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8\r\n\
MaX-fOrWaRdS: 0068\r\nCall-ID: wsinv.ndaksdj@192.0.2.1\r\nContent-Length   : 0\r\n\
cseq: 0009\r\n  INVITE\r\nVia  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw\r\n\
s :\r\nNewFangledHeader:   newfangled value\r\n continued newfangled value\r\n\r\n";
        let msg = accepts(raw);
        let rsip::SipMessage::Request(r) = msg else {
            panic!()
        };
        assert_eq!(cseq(&r.headers), Some((9, "INVITE")));
        assert_eq!(call_id(&r.headers), Some("wsinv.ndaksdj@192.0.2.1"));
    }

    #[test]
    fn display_name_without_space_before_angle_bracket() {
        let raw = "OPTIONS sip:user@example.com SIP/2.0\r\nTo: sip:user@example.com\r\n\
From: caller<sip:caller@example.com>;tag=323\r\nMax-Forwards: 70\r\nCall-ID: lwsdisp.1234abcd@funky.example.com\r\n\
CSeq: 60 OPTIONS\r\nVia: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw\r\nl: 0\r\n\r\n";
        let rsip::SipMessage::Request(r) = accepts(raw) else {
            panic!()
        };
        assert_eq!(crate::sip::message::from_tag(&r.headers), Some("323"));
    }

    #[test]
    fn many_vias_and_long_values() {
        let long_tag = "a".repeat(600);
        let vias: String = (0..12)
            .map(|i| format!("Via: SIP/2.0/TCP host{i}.example.com;branch=z9hG4bK{i}\r\n"))
            .collect();
        let raw = format!(
            "INVITE sip:user@example.com SIP/2.0\r\n{vias}To: <sip:user@example.com>\r\n\
From: <sip:c@example.com>;tag={long_tag}\r\nCall-ID: longreq.{long_tag}\r\nCSeq: 1 INVITE\r\n\
Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        let rsip::SipMessage::Request(r) = accepts(&raw) else {
            panic!()
        };
        assert_eq!(
            crate::sip::message::list_values(&r.headers, "Via").len(),
            12
        );
    }

    #[test]
    fn several_vias_on_one_line() {
        let raw = "BYE sip:user@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/SCTP b.example.com;branch=z9hG4bK2,\r\n SIP/2.0/TLS c.example.com;branch=z9hG4bK3\r\n\
To: <sip:user@example.com>;tag=1\r\nFrom: <sip:c@example.com>;tag=2\r\nCall-ID: transports\r\n\
CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n";
        let rsip::SipMessage::Request(r) = accepts(raw) else {
            panic!()
        };
        assert_eq!(crate::sip::message::list_values(&r.headers, "Via").len(), 3);
    }

    #[test]
    fn response_with_unusual_or_empty_reason_phrase() {
        let base = "Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1\r\nTo: <sip:a@example.com>;tag=1\r\n\
From: <sip:b@example.com>;tag=2\r\nCall-ID: unreason\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        accepts(&format!(
            "SIP/2.0 200 = 2**3 * 5**2 но сто девяносто девять - простое\r\n{base}"
        ));
        accepts(&format!("SIP/2.0 100 \r\n{base}"));
    }

    #[test]
    fn second_message_in_one_datagram_is_ignored() {
        let one = "OPTIONS sip:user@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK7\r\n\
To: <sip:user@example.com>\r\nFrom: <sip:c@example.com>;tag=9\r\nCall-ID: dblreq\r\nCSeq: 8 OPTIONS\r\n\
Content-Length: 0\r\n\r\n";
        let rsip::SipMessage::Request(r) = accepts(&format!("{one}{one}")) else {
            panic!()
        };
        assert!(r.body.is_empty());
    }
}

/// Torture cases a parser must refuse, without panicking, answering 400 where it can.
mod torture_invalid {
    use super::*;

    fn refuses(raw: &str) -> Malformed {
        match parse(raw.as_bytes()) {
            Ok(_) => panic!("accepted:\n{raw}"),
            Err(m) => {
                if let Some(reply) = m.reply("tg", &mut rng()) {
                    assert!(parse(&reply).is_ok(), "our reply must be valid SIP");
                }
                m
            }
        }
    }

    const HEADERS: &str = "Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw\r\nTo: <sip:j@example.com>\r\n\
From: <sip:c@example.com>;tag=1\r\nCall-ID: bad.1@192.0.2.15\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n";

    #[test]
    fn cseq_number_beyond_32_bits() {
        let m = refuses(&format!("OPTIONS sip:j@example.com SIP/2.0\r\n{HEADERS}CSeq: 36893488147419103232 OPTIONS\r\n\r\n"));
        assert!(
            matches!(m.error, CodecError::BadHeader("CSeq", _)),
            "{:?}",
            m.error
        );
        assert!(
            m.reply("tg", &mut rng()).is_none(),
            "an unmatchable CSeq cannot be echoed"
        );
    }

    #[test]
    fn wrong_protocol_version() {
        let m = refuses(&format!(
            "OPTIONS sip:j@example.com SIP/7.0\r\n{HEADERS}CSeq: 1 OPTIONS\r\n\r\n"
        ));
        assert!(matches!(m.error, CodecError::BadStartLine(_)));
        assert!(
            m.reply("tg", &mut rng()).is_some(),
            "readable enough for a 400"
        );
    }

    #[test]
    fn request_uri_in_angle_brackets_or_with_spaces() {
        refuses(&format!(
            "INVITE <sip:j@example.com> SIP/2.0\r\n{HEADERS}CSeq: 1 INVITE\r\n\r\n"
        ));
        refuses(&format!(
            "INVITE sip:j@example.com; lr SIP/2.0\r\n{HEADERS}CSeq: 1 INVITE\r\n\r\n"
        ));
        refuses(&format!(
            "INVITE  sip:j@example.com  SIP/2.0\r\n{HEADERS}CSeq: 1 INVITE\r\n\r\n"
        ));
    }

    #[test]
    fn negative_and_conflicting_content_lengths() {
        refuses(&format!(
            "OPTIONS sip:j@example.com SIP/2.0\r\n{}CSeq: 1 OPTIONS\r\n\r\n",
            HEADERS.replace("Content-Length: 0", "Content-Length: -999")
        ));
        refuses(&format!(
            "OPTIONS sip:j@example.com SIP/2.0\r\n{HEADERS}l: 5\r\nCSeq: 1 OPTIONS\r\n\r\nhello"
        ));
    }

    #[test]
    fn header_line_without_a_colon() {
        let m = refuses(&format!("OPTIONS sip:j@example.com SIP/2.0\r\n{HEADERS}CSeq: 1 OPTIONS\r\nThis is not a header\r\n\r\n"));
        assert!(matches!(m.error, CodecError::Syntax(_)));
    }
}
