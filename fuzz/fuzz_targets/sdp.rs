//! SDP arrives from the carrier in every INVITE, re-INVITE and ACK: parsing it and negotiating
//! against it must never panic, and what we serialise must parse back to the same description
//! (otherwise our answers would say something other than what we negotiated).
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use trunkgate::sip::sdp::{self, Codec, Direction, LocalMedia, SrtpPolicy};

fn local_media() -> LocalMedia {
    LocalMedia {
        addr: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5)),
        rtp_port: 30000,
        codecs: vec![Codec::Pcma, Codec::Pcmu],
        telephone_event_pt: 101,
        ptime_ms: 20,
        session_id: 42,
        session_version: 1,
        direction: Direction::SendRecv,
        username: "trunkgate".to_owned(),
        srtp: SrtpPolicy::Off,
        secure_signalling: false,
        srtp_keys: Vec::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    // Borrowed as-is when the bytes are UTF-8, lossily converted otherwise (as the SIP layer
    // will have to for a body in a broken charset).
    let text = String::from_utf8_lossy(data);
    let Ok(offer) = sdp::parse(&text) else {
        return;
    };
    let reparsed = sdp::parse(&offer.to_string());
    assert_eq!(reparsed.as_ref(), Ok(&offer), "serialise then parse changed the description");

    let local = local_media();
    if let Ok((answer, negotiated)) = sdp::answer(&offer, &local) {
        assert_eq!(answer.media.len(), offer.media.len(), "answer changed the m-line count");
        let answer_again = sdp::parse(&answer.to_string());
        assert_eq!(answer_again.as_ref(), Ok(&answer), "our answer does not round-trip");
        assert!(local.codecs.contains(&negotiated.codec));
    }
    // The same bytes seen as the peer's answer to our late offer.
    let _ = sdp::accept_answer(&local, &offer);
});
