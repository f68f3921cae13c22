//! Offer/answer in the shapes of RFC 4317 and of what carriers send: codec choice, refused
//! streams, hold, late offer, and that any parseable offer gets a well-formed answer or an error.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use proptest::prelude::*;

use super::parse_tests::description;
use super::*;

fn local() -> LocalMedia {
    LocalMedia {
        addr: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5)),
        rtp_port: 30000,
        codecs: vec![Codec::Pcmu, Codec::Pcma],
        telephone_event_pt: 101,
        ptime_ms: 20,
        session_id: 42,
        session_version: 7,
        direction: Direction::SendRecv,
        username: "trunkgate".into(),
        srtp: SrtpPolicy::Off,
        secure_signalling: false,
        srtp_keys: Vec::new(),
    }
}

fn carrier(addr: &str) -> SocketAddr {
    addr.parse().unwrap()
}

/// An offer from 192.0.2.10 with the given m= section(s) after the session lines.
fn offer_with(media: &str) -> SessionDescription {
    let text = format!(
        "v=0\r\no=carrier 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\n\
         c=IN IP4 192.0.2.10\r\nt=0 0\r\n{media}"
    );
    parse(&text).unwrap_or_else(|error| panic!("test offer does not parse: {error}\n{text}"))
}

fn answer_ok(offer: &SessionDescription, local: &LocalMedia) -> (String, Negotiated) {
    let (sdp, negotiated) = answer(offer, local).unwrap();
    (sdp.to_string(), negotiated)
}

/// RFC 4317 §2.1 in G.711 form: PCMU, PCMA and telephone-event offered, PCMU preferred locally.
#[test]
fn audio_offer_with_pcmu_pcma_and_telephone_event() {
    let offer = offer_with(
        "m=audio 49170 RTP/AVP 0 8 101\r\n\
         a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n",
    );
    let (text, negotiated) = answer_ok(&offer, &local());
    assert_eq!(
        text,
        "v=0\r\n\
         o=trunkgate 42 7 IN IP4 203.0.113.5\r\n\
         s=-\r\n\
         c=IN IP4 203.0.113.5\r\n\
         t=0 0\r\n\
         m=audio 30000 RTP/AVP 0 101\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-15\r\n\
         a=ptime:20\r\n\
         a=sendrecv\r\n"
    );
    assert_eq!(
        negotiated,
        Negotiated {
            remote_rtp: Some(carrier("192.0.2.10:49170")),
            remote_rtcp: Some(carrier("192.0.2.10:49171")),
            codec: Codec::Pcmu,
            payload_type: 0,
            telephone_event_pt: Some(101),
            ptime_ms: 20,
            local_direction: Direction::SendRecv,
            srtp: None,
        }
    );
    assert!(negotiated.we_send() && negotiated.we_receive());
}

#[test]
fn local_preference_beats_offer_order() {
    let offer = offer_with("m=audio 49170 RTP/AVP 0 8\r\n");
    let local = LocalMedia {
        codecs: vec![Codec::Pcma, Codec::Pcmu],
        ..local()
    };
    let (text, negotiated) = answer_ok(&offer, &local);
    assert_eq!(
        (negotiated.codec, negotiated.payload_type),
        (Codec::Pcma, 8)
    );
    assert!(
        text.contains("m=audio 30000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"),
        "{text}"
    );
}

#[test]
fn dynamic_payload_type_for_pcma_is_answered_with_the_offerers_number() {
    let offer = offer_with(
        "m=audio 49170 RTP/AVP 96 97\r\n\
         a=rtpmap:96 pcma/8000/1\r\na=rtpmap:97 telephone-event/8000\r\n",
    );
    let local = LocalMedia {
        codecs: vec![Codec::Pcma],
        ..local()
    };
    let (text, negotiated) = answer_ok(&offer, &local);
    assert_eq!(
        (negotiated.codec, negotiated.payload_type),
        (Codec::Pcma, 96)
    );
    assert_eq!(negotiated.telephone_event_pt, Some(97));
    assert!(
        text.contains("m=audio 30000 RTP/AVP 96 97\r\na=rtpmap:96 PCMA/8000\r\na=rtpmap:97 telephone-event/8000\r\na=ptime"),
        "{text}"
    );
}

#[test]
fn rtpmap_overrides_the_static_table() {
    // PT 8 remapped to something else is not PCMA, whatever RFC 3551 says.
    let offer = offer_with("m=audio 49170 RTP/AVP 8\r\na=rtpmap:8 G729/8000\r\n");
    assert!(matches!(
        answer(&offer, &local()),
        Err(NegotiationError::NoCommonCodec { .. })
    ));
}

#[test]
fn g729_only_offer_is_refused_naming_the_offered_codecs() {
    let offer = offer_with("m=audio 49170 RTP/AVP 18 101\r\na=rtpmap:101 telephone-event/8000\r\n");
    let error = answer(&offer, &local()).unwrap_err();
    assert_eq!(
        error,
        NegotiationError::NoCommonCodec {
            offered: "audio RTP/AVP [18 G729/8000, 101 telephone-event/8000]".into(),
            supported: "PCMU/8000, PCMA/8000".into(),
        }
    );
    assert_eq!(error.sip_status(), 488);
    assert!(error.to_string().contains("18 G729/8000"));
}

#[test]
fn srtp_offer_to_a_trunk_without_srtp_is_refused_with_488() {
    let offer = offer_with(
        "m=audio 49170 RTP/SAVP 0 8\r\n\
         a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n",
    );
    let error = answer(&offer, &local()).unwrap_err();
    assert_eq!(error, NegotiationError::SrtpOff);
    assert_eq!(error.sip_status(), 488);
}

const THEIR_KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

fn srtp_local(policy: SrtpPolicy) -> LocalMedia {
    LocalMedia {
        srtp: policy,
        secure_signalling: true,
        srtp_keys: SrtpSuite::ALL
            .iter()
            .map(|suite| SrtpKey::from_random(*suite, &[9; 30]))
            .collect(),
        ..local()
    }
}

#[test]
fn an_srtp_offer_over_tls_is_answered_with_our_key_under_the_offerers_tag() {
    let offer = offer_with(&format!(
        "m=audio 49170 RTP/SAVP 0 101\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:{THEIR_KEY}{THEIR_KEY}\r\n\
         a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{THEIR_KEY}|2^31\r\n"
    ));
    for policy in [SrtpPolicy::Offered, SrtpPolicy::Required] {
        let local = srtp_local(policy);
        let (text, negotiated) = answer_ok(&offer, &local);
        assert!(text.contains("m=audio 30000 RTP/SAVP 0 101\r\n"), "{text}");
        let ours = local.srtp_keys[0].clone();
        let line = format!(
            "a=crypto:{}\r\n",
            Crypto {
                tag: 2,
                key: ours.clone()
            }
            .value()
        );
        assert!(text.contains(&line), "{text}");
        assert_eq!(text.matches("a=crypto").count(), 1, "{text}");
        let keys = negotiated.srtp.expect("srtp negotiated");
        assert_eq!(keys.send, ours);
        assert_eq!(
            Some(keys.receive),
            Crypto::parse(&format!("2 AES_CM_128_HMAC_SHA1_80 inline:{THEIR_KEY}")).map(|c| c.key)
        );
    }
}

#[test]
fn srtp_policy_refuses_what_it_must_with_a_reason_and_takes_the_rest() {
    let plain = offer_with("m=audio 49170 RTP/AVP 0\r\n");
    let secure = offer_with(&format!(
        "m=audio 49170 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{THEIR_KEY}\r\n"
    ));
    let unusable = offer_with(&format!(
        "m=audio 49170 RTP/SAVP 0\r\na=crypto:1 F8_128_HMAC_SHA1_80 inline:{THEIR_KEY}\r\n"
    ));
    let in_the_clear = |policy| LocalMedia {
        secure_signalling: false,
        ..srtp_local(policy)
    };
    let required = srtp_local(SrtpPolicy::Required);
    let offered = srtp_local(SrtpPolicy::Offered);
    assert_eq!(
        answer(&plain, &required).unwrap_err(),
        NegotiationError::SrtpRequired
    );
    assert_eq!(
        answer(&plain, &in_the_clear(SrtpPolicy::Required)).unwrap_err(),
        NegotiationError::SrtpNeedsTls
    );
    assert_eq!(
        answer(&secure, &in_the_clear(SrtpPolicy::Offered)).unwrap_err(),
        NegotiationError::SrtpKeysInTheClear
    );
    assert_eq!(
        answer(&unusable, &offered).unwrap_err(),
        NegotiationError::NoUsableCrypto {
            offered: "F8_128_HMAC_SHA1_80".into()
        }
    );
    assert_eq!(
        answer_ok(&plain, &offered).1.srtp,
        None,
        "offered takes plain"
    );
    assert_eq!(
        answer_ok(&plain, &in_the_clear(SrtpPolicy::Offered)).1.srtp,
        None
    );
    for error in [
        NegotiationError::SrtpRequired,
        NegotiationError::SrtpNeedsTls,
        NegotiationError::SrtpOff,
    ] {
        assert_eq!(error.sip_status(), 488);
    }
}

#[test]
fn a_best_effort_offer_of_both_profiles_gets_the_first_the_policy_allows() {
    let offer = offer_with(&format!(
        "m=audio 49170 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{THEIR_KEY}\r\n\
         m=audio 49172 RTP/AVP 0\r\n"
    ));
    let (text, negotiated) = answer_ok(&offer, &srtp_local(SrtpPolicy::Offered));
    assert!(negotiated.srtp.is_some());
    assert!(text.contains("m=audio 0 RTP/AVP 0"), "{text}");
    let (text, negotiated) = answer_ok(&offer, &local());
    assert_eq!(negotiated.srtp, None);
    assert!(text.contains("m=audio 0 RTP/SAVP 0"), "{text}");
    assert!(text.contains("m=audio 30000 RTP/AVP 0"), "{text}");
}

#[test]
fn our_srtp_offer_lists_a_key_per_suite_and_takes_the_answer_that_picks_one() {
    let local = srtp_local(SrtpPolicy::Offered);
    let text = offer(&local).unwrap().to_string();
    assert!(
        text.contains("m=audio 30000 RTP/SAVP 0 8 101\r\n"),
        "{text}"
    );
    assert!(
        text.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"),
        "{text}"
    );
    assert!(
        text.contains("a=crypto:2 AEAD_AES_128_GCM inline:"),
        "{text}"
    );
    assert!(
        text.contains("a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:"),
        "{text}"
    );
    let gcm_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw==";
    let answer = answer_to_our_offer(&format!(
        "m=audio 6000 RTP/SAVP 0\r\na=crypto:2 AEAD_AES_128_GCM inline:{gcm_key}\r\n"
    ));
    let keys = accept_answer(&local, &answer).unwrap().srtp.expect("srtp");
    assert_eq!(keys.send, local.srtp_keys[1]);
    assert_eq!(keys.receive.suite, SrtpSuite::AeadAes128Gcm);
    let wrong_suite = answer_to_our_offer(&format!(
        "m=audio 6000 RTP/SAVP 0\r\na=crypto:1 AEAD_AES_128_GCM inline:{gcm_key}\r\n"
    ));
    assert_eq!(
        accept_answer(&local, &wrong_suite),
        Err(NegotiationError::AnswerCrypto)
    );
    let plain = answer_to_our_offer("m=audio 6000 RTP/AVP 0\r\n");
    assert!(matches!(
        accept_answer(&local, &plain),
        Err(NegotiationError::AnswerNotAudio { .. })
    ));
    assert_eq!(
        offer(&LocalMedia {
            secure_signalling: false,
            ..srtp_local(SrtpPolicy::Required)
        }),
        Err(NegotiationError::SrtpNeedsTls)
    );
    let over_udp = offer(&LocalMedia {
        secure_signalling: false,
        ..local.clone()
    })
    .unwrap()
    .to_string();
    assert!(
        over_udp.contains("RTP/AVP") && !over_udp.contains("crypto"),
        "{over_udp}"
    );
}

#[test]
fn offer_without_audio_is_refused() {
    let offer = offer_with("m=video 51372 RTP/AVP 31\r\n");
    assert!(matches!(
        answer(&offer, &local()),
        Err(NegotiationError::NoCommonCodec { offered, .. }) if offered == "video RTP/AVP [31]"
    ));
    let empty = offer_with("");
    assert!(matches!(
        answer(&empty, &local()),
        Err(NegotiationError::NoCommonCodec { offered, .. }) if offered == "no m= lines"
    ));
}

/// RFC 4317 §2.2: audio and video offered, video refused with port 0, m-line order kept.
#[test]
fn video_is_refused_with_port_zero_and_audio_accepted() {
    let offer = offer_with(
        "m=video 51372 RTP/AVP 31 32\r\na=rtpmap:31 H261/90000\r\n\
         m=audio 49170 RTP/AVP 0\r\n\
         m=image 49180 udptl t38\r\n",
    );
    let (sdp, negotiated) = answer(&offer, &local()).unwrap();
    let lines: Vec<String> = sdp
        .media
        .iter()
        .map(|media| {
            format!(
                "{} {} {} {:?}",
                media.media_type, media.port, media.proto, media.formats
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            "video 0 RTP/AVP [\"31\", \"32\"]",
            "audio 30000 RTP/AVP [\"0\"]",
            "image 0 udptl [\"t38\"]",
        ]
    );
    assert_eq!(negotiated.remote_rtp, Some(carrier("192.0.2.10:49170")));
    assert!(sdp
        .to_string()
        .contains("m=video 0 RTP/AVP 31 32\r\nm=audio 30000"));
}

#[test]
fn only_the_first_usable_audio_stream_is_accepted() {
    let offer = offer_with(
        "m=audio 40000 RTP/SAVP 0\r\n\
         m=audio 40010 RTP/AVP 18\r\n\
         m=audio 40020 RTP/AVP 8\r\n\
         m=audio 40030 RTP/AVP 0\r\n",
    );
    let (sdp, negotiated) = answer(&offer, &local()).unwrap();
    let ports: Vec<u16> = sdp.media.iter().map(|media| media.port).collect();
    assert_eq!(ports, [0, 0, 30000, 0]);
    assert_eq!(negotiated.remote_rtp, Some(carrier("192.0.2.10:40020")));
    assert_eq!(negotiated.codec, Codec::Pcma);
}

/// RFC 4317 §2.3 style hold: the re-offer says sendonly, we answer recvonly and stop sending.
#[test]
fn sendonly_hold_is_answered_recvonly() {
    let offer = offer_with("m=audio 49170 RTP/AVP 0\r\na=sendonly\r\n");
    let (text, negotiated) = answer_ok(&offer, &local());
    assert!(text.ends_with("a=recvonly\r\n"), "{text}");
    assert_eq!(negotiated.local_direction, Direction::RecvOnly);
    assert!(!negotiated.we_send());
    assert!(negotiated.we_receive());
    assert_eq!(negotiated.remote_rtp, Some(carrier("192.0.2.10:49170")));
}

#[test]
fn recvonly_offer_is_answered_sendonly() {
    let offer = offer_with("m=audio 49170 RTP/AVP 0\r\na=recvonly\r\n");
    let (text, negotiated) = answer_ok(&offer, &local());
    assert!(text.ends_with("a=sendonly\r\n"), "{text}");
    assert!(negotiated.we_send() && !negotiated.we_receive());
}

#[test]
fn inactive_offer_is_answered_inactive() {
    let offer = offer_with("m=audio 49170 RTP/AVP 0\r\na=inactive\r\n");
    let (text, negotiated) = answer_ok(&offer, &local());
    assert!(text.ends_with("a=inactive\r\n"), "{text}");
    assert!(!negotiated.we_send() && !negotiated.we_receive());
}

#[test]
fn session_level_direction_applies_to_media_without_its_own() {
    let text = "v=0\r\no=- 1 2 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
                a=sendonly\r\nm=audio 49170 RTP/AVP 0\r\nm=audio 49180 RTP/AVP 0\r\n";
    let (_, negotiated) = answer(&parse(text).unwrap(), &local()).unwrap();
    assert_eq!(negotiated.local_direction, Direction::RecvOnly);
}

#[test]
fn local_sendonly_against_sendonly_offer_is_inactive() {
    let offer = offer_with("m=audio 49170 RTP/AVP 0\r\na=sendonly\r\n");
    let local = LocalMedia {
        direction: Direction::SendOnly,
        ..local()
    };
    let (text, _) = answer_ok(&offer, &local);
    assert!(text.ends_with("a=inactive\r\n"), "{text}");
}

/// RFC 2543 hold: c=0.0.0.0 means the offerer wants nothing sent; we still give our real address
/// so it can resume by re-offering.
#[test]
fn zero_address_hold_sends_nothing_and_reports_no_remote() {
    let offer = offer_with("m=audio 49170 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\n");
    let (text, negotiated) = answer_ok(&offer, &local());
    assert_eq!(negotiated.remote_rtp, None);
    assert_eq!(negotiated.remote_rtcp, None);
    assert!(!negotiated.we_send());
    assert!(negotiated.we_receive());
    assert!(text.contains("c=IN IP4 203.0.113.5\r\n"));
    assert!(text.ends_with("a=recvonly\r\n"), "{text}");
}

#[test]
fn zero_address_with_recvonly_is_inactive() {
    let offer = offer_with("m=audio 49170 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\na=recvonly\r\n");
    let (text, negotiated) = answer_ok(&offer, &local());
    assert!(text.ends_with("a=inactive\r\n"), "{text}");
    assert_eq!(negotiated.local_direction, Direction::Inactive);
}

#[test]
fn ptime_comes_from_the_offer_capped_by_maxptime() {
    let cases = [
        ("", 20),
        ("a=ptime:30\r\n", 30),
        ("a=ptime:40\r\na=maxptime:30\r\n", 30),
        ("a=maxptime:10\r\n", 10),
        ("a=ptime:0\r\n", 20),
        ("a=ptime:4000000\r\n", 20),
    ];
    for (attributes, expected) in cases {
        let offer = offer_with(&format!("m=audio 49170 RTP/AVP 0\r\n{attributes}"));
        let (text, negotiated) = answer_ok(&offer, &local());
        assert_eq!(
            negotiated.ptime_ms, expected,
            "offer attributes {attributes:?}"
        );
        assert!(text.contains(&format!("a=ptime:{expected}\r\n")), "{text}");
    }
}

#[test]
fn session_level_ptime_is_honoured() {
    let text = "v=0\r\no=- 1 2 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
                a=ptime:30\r\nm=audio 49170 RTP/AVP 0\r\n";
    let (_, negotiated) = answer(&parse(text).unwrap(), &local()).unwrap();
    assert_eq!(negotiated.ptime_ms, 30);
}

#[test]
fn rtcp_attribute_sets_the_rtcp_destination() {
    let offer = offer_with("m=audio 49170 RTP/AVP 0\r\na=rtcp:53020 IN IP4 192.0.2.99\r\n");
    let (_, negotiated) = answer_ok(&offer, &local());
    assert_eq!(negotiated.remote_rtcp, Some(carrier("192.0.2.99:53020")));
    let offer = offer_with("m=audio 49170 RTP/AVP 0\r\na=rtcp:53020\r\n");
    let (_, negotiated) = answer_ok(&offer, &local());
    assert_eq!(negotiated.remote_rtcp, Some(carrier("192.0.2.10:53020")));
}

#[test]
fn no_telephone_event_offered_means_none_answered() {
    let offer = offer_with("m=audio 49170 RTP/AVP 0\r\n");
    let (text, negotiated) = answer_ok(&offer, &local());
    assert_eq!(negotiated.telephone_event_pt, None);
    assert!(!text.contains("telephone-event"));
}

#[test]
fn ipv6_offer_and_local_address() {
    let text = "v=0\r\no=- 1 2 IN IP6 2001:db8::10\r\ns=-\r\nc=IN IP6 2001:db8::10\r\nt=0 0\r\n\
                m=audio 49170 RTP/AVP 8\r\n";
    let local = LocalMedia {
        addr: "2001:db8::5".parse().unwrap(),
        ..local()
    };
    let (sdp, negotiated) = answer(&parse(text).unwrap(), &local).unwrap();
    assert_eq!(negotiated.remote_rtp, Some(carrier("[2001:db8::10]:49170")));
    let text = sdp.to_string();
    assert!(
        text.contains("o=trunkgate 42 7 IN IP6 2001:db8::5\r\n"),
        "{text}"
    );
    assert!(text.contains("c=IN IP6 2001:db8::5\r\n"), "{text}");
}

#[test]
fn ipv6_unspecified_address_is_hold_too() {
    let text = "v=0\r\no=- 1 2 IN IP6 2001:db8::10\r\ns=-\r\nc=IN IP6 ::\r\nt=0 0\r\n\
                m=audio 49170 RTP/AVP 0\r\n";
    let (_, negotiated) = answer(&parse(text).unwrap(), &local()).unwrap();
    assert_eq!(negotiated.remote_rtp, None);
    assert!(!negotiated.we_send());
}

#[test]
fn audio_without_any_connection_line_is_an_error() {
    let text = "v=0\r\no=- 1 2 IN IP4 192.0.2.10\r\ns=-\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\n";
    assert_eq!(
        answer(&parse(text).unwrap(), &local()).unwrap_err(),
        NegotiationError::MissingConnection { media_index: 0 }
    );
}

#[test]
fn host_name_connection_is_an_error_naming_it() {
    let offer = offer_with("m=audio 49170 RTP/AVP 0\r\nc=IN IP4 media.carrier.example\r\n");
    let error = answer(&offer, &local()).unwrap_err();
    assert!(
        error.to_string().contains("media.carrier.example"),
        "{error}"
    );
}

#[test]
fn answer_copies_the_offers_timing() {
    let text = "v=0\r\no=- 1 2 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\n\
                t=3034423619 3042462419\r\nm=audio 49170 RTP/AVP 0\r\n";
    let (sdp, _) = answer(&parse(text).unwrap(), &local()).unwrap();
    assert!(sdp.to_string().contains("t=3034423619 3042462419\r\n"));
}

// ---- late offer: we offer, the ACK answers --------------------------------------------------

#[test]
fn late_offer_lists_local_codecs_in_order_with_telephone_event() {
    let local = LocalMedia {
        codecs: vec![Codec::Pcma, Codec::Pcmu],
        ptime_ms: 30,
        session_version: 8,
        ..local()
    };
    assert_eq!(
        offer(&local).unwrap().to_string(),
        "v=0\r\n\
         o=trunkgate 42 8 IN IP4 203.0.113.5\r\n\
         s=-\r\n\
         c=IN IP4 203.0.113.5\r\n\
         t=0 0\r\n\
         m=audio 30000 RTP/AVP 8 0 101\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\n\
         a=ptime:30\r\n\
         a=sendrecv\r\n"
    );
}

#[test]
fn offer_drops_a_telephone_event_pt_that_collides_and_sanitises_username() {
    let local = LocalMedia {
        telephone_event_pt: 8,
        username: "two words".into(),
        ..local()
    };
    let text = offer(&local).unwrap().to_string();
    assert!(text.contains("m=audio 30000 RTP/AVP 0 8\r\n"), "{text}");
    assert!(!text.contains("telephone-event"), "{text}");
    assert!(text.starts_with("v=0\r\no=- 42 7 IN IP4"), "{text}");
}

fn answer_to_our_offer(media: &str) -> SessionDescription {
    parse(&format!(
        "v=0\r\no=carrier 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n{media}"
    ))
    .unwrap()
}

#[test]
fn accept_answer_takes_the_answerers_codec_and_numbers() {
    let answer = answer_to_our_offer(
        "m=audio 6000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:30\r\n",
    );
    assert_eq!(
        accept_answer(&local(), &answer).unwrap(),
        Negotiated {
            remote_rtp: Some(carrier("192.0.2.10:6000")),
            remote_rtcp: Some(carrier("192.0.2.10:6001")),
            codec: Codec::Pcma,
            payload_type: 8,
            telephone_event_pt: Some(101),
            ptime_ms: 30,
            local_direction: Direction::SendRecv,
            srtp: None,
        }
    );
}

#[test]
fn accept_answer_uses_local_ptime_when_the_answer_has_none() {
    let local = LocalMedia {
        ptime_ms: 30,
        ..local()
    };
    let answer = answer_to_our_offer("m=audio 6000 RTP/AVP 0\r\n");
    assert_eq!(accept_answer(&local, &answer).unwrap().ptime_ms, 30);
}

#[test]
fn accept_answer_refuses_a_codec_we_did_not_offer() {
    let local = LocalMedia {
        codecs: vec![Codec::Pcmu],
        ..local()
    };
    let answer = answer_to_our_offer("m=audio 6000 RTP/AVP 8 18\r\n");
    assert_eq!(
        accept_answer(&local, &answer).unwrap_err(),
        NegotiationError::AnswerCodecNotOffered {
            answered: "8 PCMA/8000, 18 G729/8000".into()
        }
    );
}

#[test]
fn accept_answer_refuses_rejection_and_wrong_shapes() {
    let rejected = answer_to_our_offer("m=audio 0 RTP/AVP 0\r\n");
    assert_eq!(
        accept_answer(&local(), &rejected).unwrap_err(),
        NegotiationError::AnswerRejected
    );
    let two_lines = answer_to_our_offer("m=audio 6000 RTP/AVP 0\r\nm=video 0 RTP/AVP 31\r\n");
    assert_eq!(
        accept_answer(&local(), &two_lines),
        Err(NegotiationError::AnswerMediaCount { count: 2 })
    );
    let srtp = answer_to_our_offer("m=audio 6000 RTP/SAVP 0\r\n");
    assert!(matches!(
        accept_answer(&local(), &srtp),
        Err(NegotiationError::AnswerNotAudio { .. })
    ));
}

#[test]
fn accept_answer_recvonly_means_we_only_send() {
    let answer = answer_to_our_offer("m=audio 6000 RTP/AVP 0\r\na=recvonly\r\n");
    let negotiated = accept_answer(&local(), &answer).unwrap();
    assert_eq!(negotiated.local_direction, Direction::SendOnly);
    assert!(negotiated.we_send() && !negotiated.we_receive());
}

#[test]
fn direction_answer_rule_matches_rfc_3264_section_6_1() {
    use Direction::*;
    let table = [
        (SendOnly, SendRecv, RecvOnly),
        (RecvOnly, SendRecv, SendOnly),
        (Inactive, SendRecv, Inactive),
        (SendRecv, SendRecv, SendRecv),
        (SendRecv, SendOnly, SendOnly),
        (SendRecv, RecvOnly, RecvOnly),
        (SendRecv, Inactive, Inactive),
        (SendOnly, SendOnly, Inactive),
        (RecvOnly, RecvOnly, Inactive),
    ];
    for (offered, local, expected) in table {
        assert_eq!(
            offered.answer_to(local),
            expected,
            "{offered} offered, {local} wanted"
        );
    }
}

fn codec_list() -> impl Strategy<Value = Vec<Codec>> {
    proptest::sample::subsequence(vec![Codec::Pcmu, Codec::Pcma], 0..=2).prop_shuffle()
}

fn direction() -> impl Strategy<Value = Direction> {
    proptest::sample::select(vec![
        Direction::SendRecv,
        Direction::SendOnly,
        Direction::RecvOnly,
        Direction::Inactive,
    ])
}

/// One way a carrier may list a payload type.
#[derive(Debug, Clone)]
enum OfferedFormat {
    Static(u8),
    Mapped {
        payload_type: u8,
        encoding: &'static str,
        clock_rate: u32,
    },
}

fn offered_format() -> impl Strategy<Value = OfferedFormat> {
    prop_oneof![
        proptest::sample::select(vec![0u8, 8, 18, 3, 9]).prop_map(OfferedFormat::Static),
        (
            96u8..=127,
            proptest::sample::select(vec!["PCMU", "pcma", "telephone-event", "G729", "opus"]),
            proptest::sample::select(vec![8000u32, 48000]),
        )
            .prop_map(
                |(payload_type, encoding, clock_rate)| OfferedFormat::Mapped {
                    payload_type,
                    encoding,
                    clock_rate
                }
            ),
    ]
}

fn offered_connection() -> impl Strategy<Value = Connection> {
    prop_oneof![
        3 => any::<Ipv4Addr>().prop_map(|ip| Connection::from_ip(IpAddr::V4(ip))),
        1 => Just(Connection::from_ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED))),
        1 => any::<std::net::Ipv6Addr>().prop_map(|ip| Connection::from_ip(IpAddr::V6(ip))),
    ]
}

fn offered_stream() -> impl Strategy<Value = MediaDescription> {
    (
        proptest::sample::select(vec!["audio", "audio", "audio", "video", "image"]),
        prop_oneof![3 => 1u16.., 1 => Just(0u16)],
        proptest::sample::select(vec![
            "RTP/AVP", "RTP/AVP", "rtp/avp", "RTP/SAVP", "RTP/AVPF",
        ]),
        proptest::collection::vec(offered_format(), 0..5),
        proptest::option::of(offered_connection()),
        proptest::option::of(direction()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
    )
        .prop_map(
            |(media_type, port, proto, formats, connection, direction, ptime, maxptime)| {
                let mut media = MediaDescription::new(media_type, port, proto);
                media.connection = connection;
                for format in formats {
                    match format {
                        OfferedFormat::Static(payload_type) => {
                            media.formats.push(payload_type.to_string())
                        }
                        OfferedFormat::Mapped {
                            payload_type,
                            encoding,
                            clock_rate,
                        } => {
                            media.formats.push(payload_type.to_string());
                            media.attributes.push(Attribute::Rtpmap(Rtpmap {
                                payload_type,
                                encoding: encoding.into(),
                                clock_rate,
                                params: None,
                            }));
                        }
                    }
                }
                media.attributes.extend(direction.map(Attribute::Direction));
                media.attributes.extend(ptime.map(Attribute::Ptime));
                media.attributes.extend(maxptime.map(Attribute::MaxPtime));
                media
            },
        )
}

prop_compose! {
    fn carrier_offer()(
        connection in offered_connection(),
        direction in proptest::option::of(direction()),
        media in proptest::collection::vec(offered_stream(), 0..5),
    ) -> SessionDescription {
        let origin = Origin {
            username: "carrier".into(),
            session_id: 1,
            session_version: 1,
            addr_type: AddrType::Ip4,
            address: "192.0.2.10".into(),
        };
        let mut sdp = SessionDescription::new(origin, "-");
        sdp.connection = Some(connection);
        sdp.attributes.extend(direction.map(Attribute::Direction));
        sdp.media = media;
        sdp
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Late offer end to end: our offer, a peer running this same code answering it, our check of
    /// its answer. Both ends must agree on codec and payload type, and on who sends.
    #[test]
    fn our_offer_answered_by_a_peer_agrees_on_both_ends(
        ours in codec_list(),
        theirs in codec_list(),
        our_direction in direction(),
        their_direction in direction(),
    ) {
        let us = LocalMedia { codecs: ours.clone(), direction: our_direction, ..local() };
        let peer = LocalMedia {
            addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
            codecs: theirs.clone(),
            direction: their_direction,
            ..local()
        };
        let our_offer = parse(&offer(&us).unwrap().to_string()).unwrap();
        let common = theirs.iter().find(|codec| ours.contains(codec));
        match (answer(&our_offer, &peer), common) {
            (Ok((their_answer, peer_view)), Some(common)) => {
                prop_assert_eq!(peer_view.codec, *common);
                let their_answer = parse(&their_answer.to_string()).unwrap();
                let our_view = accept_answer(&us, &their_answer).unwrap();
                prop_assert_eq!(our_view.codec, peer_view.codec);
                prop_assert_eq!(our_view.payload_type, peer_view.payload_type);
                prop_assert_eq!(our_view.telephone_event_pt, Some(101));
                prop_assert_eq!(our_view.local_direction, peer_view.local_direction.reversed());
                prop_assert_eq!(our_view.remote_rtp, Some(carrier("192.0.2.10:30000")));
            }
            (Err(NegotiationError::NoCommonCodec { .. }), None) => {}
            (outcome, common) => prop_assert!(false, "{:?} with common codec {:?}", outcome, common),
        }
    }

    /// Whatever a carrier sends that parses, the answer keeps its m-line count, accepts at most
    /// one stream (plain RTP/AVP audio), and is itself valid SDP.
    #[test]
    fn any_parseable_offer_gets_a_well_formed_answer_or_an_error(offer in description()) {
        if let Ok((sdp, negotiated)) = answer(&offer, &local()) {
            prop_assert_eq!(sdp.media.len(), offer.media.len());
            let accepted: Vec<&MediaDescription> =
                sdp.media.iter().filter(|media| media.port != 0).collect();
            prop_assert_eq!(accepted.len(), 1);
            prop_assert!(accepted[0].is_audio());
            prop_assert!(accepted[0].proto.eq_ignore_ascii_case("RTP/AVP"));
            prop_assert_eq!(accepted[0].codec_of(negotiated.payload_type), Some(negotiated.codec));
            prop_assert_eq!(parse(&sdp.to_string()), Ok(sdp));
        }
    }

    /// Carrier-shaped offers against an independent reading of the rules: which stream is
    /// accepted, which codec, where media goes, and in which direction.
    #[test]
    fn carrier_offers_are_answered_by_the_rules(
        offer in carrier_offer(),
        codecs in codec_list(),
        local_direction in direction(),
    ) {
        let local = LocalMedia { codecs, direction: local_direction, ..local() };
        let preferred_codec = |media: &MediaDescription| {
            local.codecs.iter().copied().find(|codec| {
                media.payload_types().any(|payload_type| media.codec_of(payload_type) == Some(*codec))
            })
        };
        let expected = offer.media.iter().position(|media| {
            media.media_type == "audio"
                && media.port != 0
                && media.proto.eq_ignore_ascii_case("RTP/AVP")
                && preferred_codec(media).is_some()
        });
        match (answer(&offer, &local), expected) {
            (Ok((sdp, negotiated)), Some(index)) => {
                let offered = &offer.media[index];
                for (position, (answered, offered)) in sdp.media.iter().zip(&offer.media).enumerate() {
                    if position != index {
                        prop_assert_eq!(answered.port, 0);
                        prop_assert_eq!(&answered.formats, &offered.formats);
                    }
                }
                prop_assert_eq!(sdp.media[index].port, 30000);
                prop_assert_eq!(Some(negotiated.codec), preferred_codec(offered));
                prop_assert_eq!(offered.codec_of(negotiated.payload_type), Some(negotiated.codec));
                let connection = offered.connection.as_ref().or(offer.connection.as_ref()).unwrap();
                let held = connection.is_hold_address();
                prop_assert_eq!(negotiated.remote_rtp.is_none(), held);
                if !held {
                    prop_assert_eq!(
                        negotiated.remote_rtp,
                        Some(SocketAddr::new(connection.ip().unwrap(), offered.port))
                    );
                }
                let mut offered_direction = offer.direction_for(offered);
                if held {
                    offered_direction = Direction::from_flags(offered_direction.sends(), false);
                }
                let answered_direction = offered_direction.answer_to(local.direction);
                prop_assert_eq!(negotiated.local_direction, answered_direction);
                prop_assert_eq!(sdp.media[index].direction(), Some(answered_direction));
                prop_assert!((10..=120).contains(&negotiated.ptime_ms));
                prop_assert_eq!(sdp.media[index].ptime(), Some(negotiated.ptime_ms));
                prop_assert_eq!(parse(&sdp.to_string()), Ok(sdp));
            }
            // An SRTP stream is refused by name on a trunk without SRTP.
            (Err(NegotiationError::NoCommonCodec { .. } | NegotiationError::SrtpOff), None) => {}
            (outcome, expected) => {
                prop_assert!(false, "{:?}, expected stream {:?}", outcome, expected)
            }
        }
    }
}

/// The fuzz seeds are hand-written carrier offers; answering them shows what each vendor shape
/// gets, and keeps the seeds valid.
#[test]
fn fuzz_seed_offers_get_the_expected_answers() {
    struct Expected {
        codec: Codec,
        payload_type: u8,
        telephone_event_pt: Option<u8>,
        ptime_ms: u32,
        remote_rtp: Option<&'static str>,
        local_direction: Direction,
    }
    let accepted =
        |codec, payload_type, telephone_event_pt, ptime_ms, remote_rtp, local_direction| {
            Some(Expected {
                codec,
                payload_type,
                telephone_event_pt,
                ptime_ms,
                remote_rtp,
                local_direction,
            })
        };
    use Codec::*;
    use Direction::*;
    let seeds = [
        (
            include_str!("../../../fuzz/seeds/sdp/cisco_cube_offer.sdp"),
            accepted(
                Pcmu,
                0,
                Some(101),
                20,
                Some("198.51.100.20:16384"),
                SendRecv,
            ),
        ),
        (
            include_str!("../../../fuzz/seeds/sdp/audiocodes_mediant_offer.sdp"),
            accepted(Pcmu, 0, Some(101), 20, Some("198.51.100.30:6010"), SendRecv),
        ),
        (
            include_str!("../../../fuzz/seeds/sdp/asterisk_offer.sdp"),
            accepted(
                Pcmu,
                0,
                Some(101),
                20,
                Some("198.51.100.40:10236"),
                SendRecv,
            ),
        ),
        (
            include_str!("../../../fuzz/seeds/sdp/hold_reinvite_sendonly.sdp"),
            accepted(
                Pcmu,
                0,
                Some(101),
                20,
                Some("198.51.100.50:21036"),
                RecvOnly,
            ),
        ),
        (
            include_str!("../../../fuzz/seeds/sdp/hold_rfc2543_zero_address.sdp"),
            accepted(Pcma, 8, Some(101), 20, None, RecvOnly),
        ),
        (
            include_str!("../../../fuzz/seeds/sdp/audio_video_offer.sdp"),
            accepted(Pcmu, 0, Some(97), 20, Some("198.51.100.70:49170"), SendRecv),
        ),
        (
            include_str!("../../../fuzz/seeds/sdp/srtp_only_offer.sdp"),
            None,
        ),
        (
            include_str!("../../../fuzz/seeds/sdp/ipv6_lf_offer.sdp"),
            accepted(
                Pcmu,
                0,
                Some(101),
                30,
                Some("[2001:db8:100::10]:20000"),
                SendRecv,
            ),
        ),
        (
            include_str!("../../../fuzz/seeds/sdp/t38_reinvite.sdp"),
            None,
        ),
        (
            include_str!("../../../fuzz/seeds/sdp/sonus_dynamic_pcma_session_ptime.sdp"),
            accepted(
                Pcma,
                98,
                Some(100),
                20,
                Some("198.51.100.90:1152"),
                SendRecv,
            ),
        ),
    ];
    for (text, expected) in seeds {
        let offer = parse(text).unwrap_or_else(|error| panic!("seed does not parse: {error}"));
        assert_eq!(parse(&offer.to_string()).as_ref(), Ok(&offer));
        match (answer(&offer, &local()), expected) {
            (Ok((sdp, negotiated)), Some(expected)) => {
                assert_eq!(sdp.media.len(), offer.media.len());
                assert_eq!(
                    (
                        negotiated.codec,
                        negotiated.payload_type,
                        negotiated.telephone_event_pt,
                        negotiated.ptime_ms,
                        negotiated.remote_rtp,
                        negotiated.local_direction,
                    ),
                    (
                        expected.codec,
                        expected.payload_type,
                        expected.telephone_event_pt,
                        expected.ptime_ms,
                        expected.remote_rtp.map(carrier),
                        expected.local_direction,
                    ),
                    "seed {}",
                    offer.origin.username
                );
            }
            (Err(error), None) => assert_eq!(error.sip_status(), 488),
            (outcome, _) => panic!("seed {}: unexpected {outcome:?}", offer.origin.username),
        }
    }
}
