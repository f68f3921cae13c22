//! Calls we place, driven in virtual time with real SIP text as a carrier would answer them.
//!
//! The callee's address (192.0.2.10) is allowed by no trunk: everything it sends reaches the
//! call only because the call lives.
use std::time::{Duration, Instant};

use md5::Digest as _;

use super::super::*;
use super::reason_phrase;
use crate::sip::codec;
use crate::sip::message;
use crate::sip::peer::Transport;
use crate::sip::ua::tests::{
    body, branch, hdr, hdrs, response, run_timers, tag, trunk_with as trunk, ANSWER, CALLEE, LOCAL,
    OFFER,
};

const RURI: &str = "sip:+4930123456@carrier.example";

struct Harness {
    ua: UserAgent,
    now: Instant,
    transport: Transport,
}

impl Harness {
    fn new() -> Self {
        Self::with(Transport::Udp, false)
    }

    fn with(transport: Transport, credentials: bool) -> Self {
        Harness {
            ua: UserAgent::new(
                TimerConfig::default(),
                "tg-test".into(),
                vec![trunk(credentials)],
                rand::SeedableRng::seed_from_u64(7),
            ),
            now: Instant::now(),
            transport,
        }
    }

    fn callee(&self) -> Peer {
        Peer::new(self.transport, CALLEE.parse().unwrap())
    }

    fn outgoing(&self) -> OutgoingCall {
        OutgoingCall {
            trunk: "carrier".into(),
            peer: self.callee(),
            local: LOCAL.parse().unwrap(),
            request_uri: RURI.into(),
            from: "<sip:+15551230000@carrier.example>".into(),
            to: "<sip:+4930123456@carrier.example>".into(),
            headers: vec![(
                "P-Asserted-Identity".into(),
                "<sip:+15551230000@gw.example>".into(),
            )],
            sdp: OFFER.as_bytes().to_vec(),
            call_id: None,
        }
    }

    /// Places call `call` and returns the INVITE as sent.
    fn place(&mut self, call: CallRef) -> String {
        let outgoing = self.outgoing();
        self.ua.invite(self.now, call, outgoing).unwrap();
        let sent = self.sent();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert!(sent[0].starts_with("INVITE "), "{}", sent[0]);
        sent.into_iter().next().unwrap()
    }

    /// A message from the callee.
    fn send(&mut self, text: &str) {
        let msg = codec::parse(text.as_bytes()).expect("test message parses");
        self.ua
            .handle_message(self.now, self.callee(), LOCAL.parse().unwrap(), msg);
    }

    /// Everything the UA sent since the last call, as text; all of it to the callee.
    fn sent(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(t) = self.ua.poll_transmit() {
            assert_eq!(t.peer, self.callee());
            out.push(String::from_utf8(t.payload.to_vec()).unwrap());
        }
        out
    }

    fn events(&mut self) -> Vec<CallEvent> {
        std::iter::from_fn(|| self.ua.poll_event()).collect()
    }

    fn advance(&mut self, d: Duration) {
        self.now = run_timers(&mut self.ua, self.now, d);
    }

    /// A call placed, answered with 200 (Contact and two Record-Routes) and ACKed; returns
    /// (INVITE, 200, ACK).
    fn established(&mut self, call: CallRef) -> (String, String, String) {
        let invite = self.place(call);
        let ok = response(&invite, "200 OK", Some("callee1"), ANSWERED_HEADERS, ANSWER);
        self.send(&ok);
        let sent = self.sent();
        assert_eq!(sent.len(), 1, "only the ACK: {sent:?}");
        assert_eq!(
            self.events(),
            vec![CallEvent::Answered {
                call,
                sdp: Some(ANSWER.as_bytes().to_vec())
            }]
        );
        (invite, ok, sent.into_iter().next().unwrap())
    }
}

const ANSWERED_HEADERS: &str =
    "Record-Route: <sip:p1.carrier.example;lr>, <sip:p2.carrier.example;lr>\r\n\
Record-Route: <sip:p3.carrier.example;lr>\r\n\
Contact: <sip:callee@192.0.2.10:5070>\r\n";

/// A request from the callee inside the dialog the 200 `ok` set up.
fn from_callee(ok: &str, method: &str, cseq: u32, branch: &str, body: &str) -> String {
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "{method} sip:trunkgate@{LOCAL} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLEE};branch=z9hG4bK{branch}\r\n\
Max-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n\
Contact: <sip:callee@192.0.2.10:5070>\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        hdr(ok, "To"),
        hdr(ok, "From"),
        hdr(ok, "Call-ID"),
        body.len()
    )
}

#[test]
fn the_invite_carries_our_headers_and_offer() {
    let mut h = Harness::new();
    let invite = h.place(5);
    assert!(
        invite.starts_with(&format!("INVITE {RURI} SIP/2.0\r\n")),
        "{invite}"
    );
    let via = hdr(&invite, "Via");
    assert!(
        via.starts_with("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK") && via.ends_with(";rport"),
        "{via}"
    );
    assert_eq!(hdr(&invite, "Max-Forwards"), "70");
    let from = hdr(&invite, "From");
    assert!(
        from.starts_with("<sip:+15551230000@carrier.example>;tag=") && tag(from).len() >= 8,
        "{from}"
    );
    assert_eq!(hdr(&invite, "To"), "<sip:+4930123456@carrier.example>");
    assert!(hdr(&invite, "Call-ID").ends_with("@127.0.0.1"), "{invite}");
    assert_eq!(hdr(&invite, "CSeq"), "1 INVITE");
    assert_eq!(hdr(&invite, "Contact"), "<sip:trunkgate@127.0.0.1:5060>");
    assert_eq!(hdr(&invite, "Allow"), message::ALLOW);
    assert_eq!(hdr(&invite, "User-Agent"), "tg-test");
    assert_eq!(
        hdr(&invite, "P-Asserted-Identity"),
        "<sip:+15551230000@gw.example>"
    );
    assert_eq!(hdr(&invite, "Content-Type"), "application/sdp");
    assert_eq!(hdr(&invite, "Content-Length"), OFFER.len().to_string());
    assert_eq!(body(&invite), OFFER);
    assert_eq!(h.ua.active_calls(), 1);
    assert!(h.events().is_empty());

    // The same reference twice is refused, and so is a Request-URI that cannot be parsed.
    let again = h.outgoing();
    assert_eq!(h.ua.invite(h.now, 5, again), Err(UaError::CallInUse(5)));
    let mut bad = h.outgoing();
    bad.request_uri = "not a uri".into();
    assert!(matches!(
        h.ua.invite(h.now, 6, bad),
        Err(UaError::InvalidUri(_))
    ));
    assert!(h.sent().is_empty());
    assert_eq!(h.ua.active_calls(), 1);

    // An extra header that would break into further header lines is left out.
    let mut injected = h.outgoing();
    injected.headers = vec![
        ("X-Ok".into(), "fine".into()),
        ("X-Bad".into(), "1\r\nContact: <sip:evil@example>".into()),
    ];
    h.ua.invite(h.now, 7, injected).unwrap();
    let invite = h.sent().pop().unwrap();
    assert_eq!(hdr(&invite, "X-Ok"), "fine");
    assert!(hdrs(&invite, "X-Bad").is_empty(), "{invite}");
    assert_eq!(hdrs(&invite, "Contact").len(), 1, "{invite}");
}

#[test]
fn provisionals_become_progress_once_each_and_100_tells_nothing() {
    let mut h = Harness::new();
    let invite = h.place(1);
    h.send(&response(&invite, "100 Trying", None, "", ""));
    assert!(h.events().is_empty());
    let ringing = response(&invite, "180 Ringing", Some("callee1"), "", "");
    h.send(&ringing);
    let progress = response(&invite, "183 Session Progress", Some("callee1"), "", ANSWER);
    h.send(&progress);
    // A retransmission of the 183 (our INVITE was retransmitted) is no new progress.
    h.send(&progress);
    assert_eq!(
        h.events(),
        vec![
            CallEvent::Progress {
                call: 1,
                code: 180,
                sdp: None
            },
            CallEvent::Progress {
                call: 1,
                code: 183,
                sdp: Some(ANSWER.as_bytes().to_vec())
            },
        ]
    );
    // After a provisional the INVITE is no longer retransmitted (Proceeding).
    h.advance(Duration::from_secs(2));
    assert!(h.sent().is_empty());
}

#[test]
fn a_200_is_acked_along_its_route_and_each_retransmission_acked_again() {
    let mut h = Harness::new();
    let (invite, ok, ack) = h.established(1);
    assert!(
        ack.starts_with("ACK sip:callee@192.0.2.10:5070 SIP/2.0\r\n"),
        "the Request-URI is the 200's Contact: {ack}"
    );
    assert_eq!(hdr(&ack, "CSeq"), "1 ACK");
    assert_ne!(
        branch(&ack),
        branch(&invite),
        "the ACK for a 2xx is a new transaction"
    );
    assert_eq!(
        hdrs(&ack, "Route"),
        vec![
            "<sip:p3.carrier.example;lr>",
            "<sip:p2.carrier.example;lr>",
            "<sip:p1.carrier.example;lr>"
        ],
        "the Record-Route set reversed: {ack}"
    );
    assert_eq!(hdr(&ack, "From"), hdr(&invite, "From"));
    assert_eq!(hdr(&ack, "To"), hdr(&ok, "To"));
    assert_eq!(tag(hdr(&ack, "To")), "callee1");
    assert_eq!(hdr(&ack, "Call-ID"), hdr(&invite, "Call-ID"));
    assert_eq!(hdr(&ack, "Max-Forwards"), "70");
    assert_eq!(hdr(&ack, "Content-Length"), "0");

    // The callee did not get our ACK and re-sends its 200: the same ACK again, no new event.
    h.send(&ok);
    assert_eq!(h.sent(), vec![ack.clone()]);
    // Also once the INVITE transaction is gone (Timer M, 64·T1).
    h.advance(Duration::from_secs(40));
    assert!(h.sent().is_empty());
    h.send(&ok);
    assert_eq!(h.sent(), vec![ack]);
    assert!(h.events().is_empty());
    assert_eq!(h.ua.active_calls(), 1);
}

#[test]
fn a_busy_callee_fails_the_call_and_the_transaction_acks_it() {
    let mut h = Harness::new();
    let invite = h.place(3);
    h.send(&response(&invite, "180 Ringing", Some("b1"), "", ""));
    h.events();
    h.send(&response(&invite, "486 Busy Here", Some("b1"), "", ""));
    let sent = h.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].starts_with(&format!("ACK {RURI} SIP/2.0")),
        "{}",
        sent[0]
    );
    assert_eq!(
        branch(&sent[0]),
        branch(&invite),
        "the non-2xx ACK shares the INVITE's branch"
    );
    assert_eq!(hdr(&sent[0], "CSeq"), "1 ACK");
    assert_eq!(
        h.events(),
        vec![CallEvent::Failed {
            call: 3,
            code: 486,
            reason: "Busy Here".into()
        }]
    );
    assert_eq!(h.ua.active_calls(), 0);
    // A 486 with a phrase rsip does not know keeps the carrier's phrase.
    let invite = h.place(4);
    h.send(&response(
        &invite,
        "499 Carrier Says No",
        Some("b2"),
        "",
        "",
    ));
    h.sent();
    assert_eq!(
        h.events(),
        vec![CallEvent::Failed {
            call: 4,
            code: 499,
            reason: "Carrier Says No".into()
        }]
    );
}

/// The digest parameters of an Authorization value.
fn digest_params(value: &str) -> std::collections::HashMap<String, String> {
    value
        .trim_start_matches("Digest ")
        .split(", ")
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.trim().to_string(), v.trim_matches('"').to_string()))
        })
        .collect()
}

fn md5_hex(s: &str) -> String {
    md5::Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const CHALLENGE: &str = "Proxy-Authenticate: Digest realm=\"carrier.example\", nonce=\"n0nce42\", qop=\"auth\", opaque=\"op1\"\r\n";

#[test]
fn a_proxy_challenge_is_answered_once_with_the_trunks_credentials() {
    let mut h = Harness::with(Transport::Udp, true);
    let invite = h.place(1);
    h.send(&response(
        &invite,
        "407 Proxy Authentication Required",
        Some("px"),
        CHALLENGE,
        "",
    ));
    let sent = h.sent();
    assert_eq!(
        sent.len(),
        2,
        "the transaction's ACK, then the INVITE again: {sent:?}"
    );
    assert!(sent[0].starts_with("ACK "), "{}", sent[0]);
    let again = &sent[1];
    assert!(
        again.starts_with(&format!("INVITE {RURI} SIP/2.0")),
        "{again}"
    );
    assert_eq!(hdr(again, "CSeq"), "2 INVITE");
    assert_eq!(hdr(again, "Call-ID"), hdr(&invite, "Call-ID"));
    assert_eq!(hdr(again, "From"), hdr(&invite, "From"), "same From tag");
    assert_eq!(hdr(again, "To"), hdr(&invite, "To"), "no To tag");
    assert_ne!(branch(again), branch(&invite));
    assert_eq!(body(again), OFFER);
    assert_eq!(
        hdr(again, "P-Asserted-Identity"),
        "<sip:+15551230000@gw.example>"
    );
    assert!(hdrs(again, "Authorization").is_empty());
    // The digest, computed independently (RFC 2617 §3.2.2 with qop=auth).
    let p = digest_params(hdr(again, "Proxy-Authorization"));
    assert_eq!(p["username"], "gw1");
    assert_eq!(p["realm"], "carrier.example");
    assert_eq!(p["nonce"], "n0nce42");
    assert_eq!(p["uri"], RURI);
    assert_eq!(p["nc"], "00000001");
    assert_eq!(p["opaque"], "op1");
    let ha1 = md5_hex("gw1:carrier.example:s3cret");
    let ha2 = md5_hex(&format!("INVITE:{RURI}"));
    let expected = md5_hex(&format!(
        "{ha1}:n0nce42:00000001:{}:auth:{ha2}",
        p["cnonce"]
    ));
    assert_eq!(p["response"], expected);
    assert!(
        h.events().is_empty(),
        "a challenge answered is no news for the call"
    );

    // A second challenge in a row: our credentials are refused.
    h.send(&response(
        again,
        "407 Proxy Authentication Required",
        Some("px2"),
        CHALLENGE,
        "",
    ));
    let sent = h.sent();
    assert_eq!(sent.len(), 1, "only the ACK: {sent:?}");
    assert_eq!(hdr(&sent[0], "CSeq"), "2 ACK");
    assert_eq!(
        h.events(),
        vec![CallEvent::Failed {
            call: 1,
            code: 407,
            reason: "credentials refused".into()
        }]
    );
    assert_eq!(h.ua.active_calls(), 0);
}

#[test]
fn the_ack_for_an_authenticated_invite_carries_its_credentials() {
    let mut h = Harness::with(Transport::Udp, true);
    let invite = h.place(1);
    let challenge = CHALLENGE.replace("Proxy-Authenticate", "WWW-Authenticate");
    h.send(&response(
        &invite,
        "401 Unauthorized",
        Some("u"),
        &challenge,
        "",
    ));
    let again = h.sent().pop().unwrap();
    let credentials = hdr(&again, "Authorization").to_string();
    h.send(&response(
        &again,
        "200 OK",
        Some("c1"),
        ANSWERED_HEADERS,
        ANSWER,
    ));
    let ack = h.sent().pop().unwrap();
    assert_eq!(hdr(&ack, "CSeq"), "2 ACK");
    assert_eq!(hdr(&ack, "Authorization"), credentials);
    assert!(matches!(
        h.events().as_slice(),
        [CallEvent::Answered { call: 1, .. }]
    ));
    // Our BYE continues the CSeq space after the second INVITE.
    h.ua.hangup(h.now, 1).unwrap();
    let bye = h.sent().pop().unwrap();
    assert_eq!(hdr(&bye, "CSeq"), "3 BYE");
}

#[test]
fn a_challenge_to_a_trunk_without_credentials_fails_the_call() {
    let mut h = Harness::new();
    let invite = h.place(1);
    h.send(&response(
        &invite,
        "407 Proxy Authentication Required",
        Some("px"),
        CHALLENGE,
        "",
    ));
    assert_eq!(h.sent().len(), 1, "only the ACK");
    assert_eq!(
        h.events(),
        vec![CallEvent::Failed {
            call: 1,
            code: 407,
            reason: "Proxy Authentication Required".into()
        }]
    );
}

#[test]
fn a_hangup_before_any_provisional_waits_for_one_to_cancel() {
    let mut h = Harness::new();
    let invite = h.place(2);
    h.ua.hangup(h.now, 2).unwrap();
    assert!(h.sent().is_empty(), "§9.1: no CANCEL before a provisional");
    // The INVITE is still retransmitted meanwhile, and still no CANCEL goes.
    h.advance(Duration::from_millis(600));
    let sent = h.sent();
    assert!(sent.iter().all(|m| m.starts_with("INVITE ")), "{sent:?}");
    h.send(&response(&invite, "180 Ringing", Some("r1"), "", ""));
    let sent = h.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let cancel = &sent[0];
    assert!(
        cancel.starts_with(&format!("CANCEL {RURI} SIP/2.0")),
        "{cancel}"
    );
    assert_eq!(
        hdr(cancel, "Via"),
        hdr(&invite, "Via"),
        "the INVITE's Via and branch"
    );
    assert_eq!(hdr(cancel, "CSeq"), "1 CANCEL");
    assert_eq!(hdr(cancel, "From"), hdr(&invite, "From"));
    assert_eq!(hdr(cancel, "To"), hdr(&invite, "To"), "no To tag");
    assert_eq!(hdr(cancel, "Call-ID"), hdr(&invite, "Call-ID"));
    assert!(
        h.events().is_empty(),
        "a call being cancelled reports no progress"
    );
    // The CANCEL's 200 changes nothing; the INVITE's 487 ends the call.
    h.send(&response(cancel, "200 OK", Some("r1"), "", ""));
    assert!(h.events().is_empty());
    assert_eq!(h.ua.active_calls(), 1);
    h.send(&response(
        &invite,
        "487 Request Terminated",
        Some("r1"),
        "",
        "",
    ));
    let sent = h.sent();
    assert!(
        sent.len() == 1 && sent[0].starts_with("ACK "),
        "the transaction ACKs the 487: {sent:?}"
    );
    assert_eq!(
        h.events(),
        vec![CallEvent::Failed {
            call: 2,
            code: 487,
            reason: "Request Terminated".into()
        }]
    );
    assert_eq!(h.ua.active_calls(), 0);
    assert!(h.ua.hangup(h.now, 2).is_err(), "the call is gone");
}

#[test]
fn a_200_that_wins_the_race_against_our_cancel_is_acked_and_ended() {
    let mut h = Harness::new();
    let invite = h.place(2);
    h.send(&response(&invite, "180 Ringing", Some("r1"), "", ""));
    h.events();
    h.ua.hangup(h.now, 2).unwrap();
    let cancel = h.sent().pop().unwrap();
    assert!(cancel.starts_with("CANCEL "), "{cancel}");
    let ok = response(&invite, "200 OK", Some("r1"), ANSWERED_HEADERS, ANSWER);
    h.send(&ok);
    let sent = h.sent();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(
        sent[0].starts_with("ACK sip:callee@192.0.2.10:5070 "),
        "{}",
        sent[0]
    );
    let bye = &sent[1];
    assert!(bye.starts_with("BYE sip:callee@192.0.2.10:5070 "), "{bye}");
    assert_eq!(tag(hdr(bye, "To")), "r1");
    assert_eq!(
        h.events(),
        vec![CallEvent::Failed {
            call: 2,
            code: 487,
            reason: "cancelled".into()
        }]
    );
    // The callee's BYE crossing ours is answered and tells nothing more.
    h.send(&from_callee(&ok, "BYE", 1, "xbye", ""));
    let sent = h.sent();
    assert!(
        sent.iter().any(|m| m.starts_with("SIP/2.0 200")),
        "{sent:?}"
    );
    assert!(h.events().is_empty());
    h.send(&response(bye, "200 OK", None, "", ""));
    assert!(h.events().is_empty());
    assert_eq!(h.ua.active_calls(), 0);
}

#[test]
fn our_hangup_after_the_answer_sends_bye_along_the_route() {
    let mut h = Harness::new();
    let (invite, ok, _ack) = h.established(1);
    h.ua.hangup(h.now, 1).unwrap();
    assert_eq!(
        h.events(),
        vec![CallEvent::Ended {
            call: 1,
            reason: EndReason::Local
        }]
    );
    let bye = h.sent().pop().unwrap();
    assert!(
        bye.starts_with("BYE sip:callee@192.0.2.10:5070 SIP/2.0\r\n"),
        "{bye}"
    );
    assert_eq!(
        hdr(&bye, "From"),
        hdr(&invite, "From"),
        "our From with our tag"
    );
    assert_eq!(hdr(&bye, "To"), hdr(&ok, "To"), "their To with their tag");
    assert_eq!(hdr(&bye, "CSeq"), "2 BYE");
    assert_eq!(
        hdrs(&bye, "Route"),
        vec![
            "<sip:p3.carrier.example;lr>",
            "<sip:p2.carrier.example;lr>",
            "<sip:p1.carrier.example;lr>"
        ]
    );
    h.send(&response(&bye, "200 OK", None, "", ""));
    assert_eq!(h.ua.active_calls(), 0);
    assert!(h.events().is_empty());
}

#[test]
fn the_callees_requests_reach_the_call_and_its_bye_ends_it() {
    let mut h = Harness::new();
    let (_invite, ok, _ack) = h.established(1);
    // A re-INVITE (hold) from the callee, whose first CSeq we cannot know.
    let hold = ANSWER.replace("RTP/AVP 0\r\n", "RTP/AVP 0\r\na=sendonly\r\n");
    h.send(&from_callee(&ok, "INVITE", 1, "re1", &hold));
    assert_eq!(
        h.events(),
        vec![CallEvent::ReInvite {
            call: 1,
            offer: Some(hold.into_bytes())
        }]
    );
    h.ua.answer_reinvite(h.now, 1, Ok(OFFER.as_bytes().to_vec()))
        .unwrap();
    let answer = h
        .sent()
        .into_iter()
        .find(|m| m.starts_with("SIP/2.0 200"))
        .unwrap();
    assert_eq!(hdr(&answer, "CSeq"), "1 INVITE");
    assert_eq!(hdr(&answer, "To"), hdr(&ok, "From"), "our tag, unchanged");
    h.send(&from_callee(&ok, "ACK", 1, "reack", ""));
    assert_eq!(
        h.events(),
        vec![CallEvent::Confirmed {
            call: 1,
            answer: None
        }]
    );
    h.send(&from_callee(&ok, "BYE", 2, "bye1", ""));
    let sent = h.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].starts_with("SIP/2.0 200 "), "not 403: {}", sent[0]);
    assert_eq!(
        h.events(),
        vec![CallEvent::Ended {
            call: 1,
            reason: EndReason::RemoteBye
        }]
    );
    assert_eq!(h.ua.active_calls(), 0);
    assert_eq!(h.ua.stats().forbidden, 0);
    // With the call gone, the callee's address is a stranger's again.
    h.send(&from_callee(&ok, "BYE", 3, "bye2", ""));
    let sent = h.sent();
    assert!(sent[0].starts_with("SIP/2.0 403"), "{sent:?}");
}

#[test]
fn a_callee_that_never_answers_fails_the_call_with_408() {
    let mut h = Harness::new();
    h.place(9);
    h.advance(Duration::from_secs(31));
    let retransmits = h.sent();
    assert!(
        retransmits.len() == 5 && retransmits.iter().all(|m| m.starts_with("INVITE ")),
        "Timer A: {retransmits:?}"
    );
    assert!(h.events().is_empty());
    h.advance(Duration::from_secs(2));
    assert_eq!(
        h.events(),
        vec![CallEvent::Failed {
            call: 9,
            code: 408,
            reason: "no response".into()
        }]
    );
    assert_eq!(h.ua.active_calls(), 0);
    assert_eq!(h.ua.stats().transaction_timeouts, 1);
}

#[test]
fn a_second_fork_that_answers_is_acked_and_ended() {
    let mut h = Harness::new();
    let (invite, _ok, _ack) = h.established(1);
    let fork = response(
        &invite,
        "200 OK",
        Some("fork2"),
        "Contact: <sip:other@192.0.2.10:5080>\r\n",
        ANSWER,
    );
    h.send(&fork);
    let sent = h.sent();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(
        sent[0].starts_with("ACK sip:other@192.0.2.10:5080 "),
        "{}",
        sent[0]
    );
    assert_eq!(tag(hdr(&sent[0], "To")), "fork2");
    assert!(
        sent[1].starts_with("BYE sip:other@192.0.2.10:5080 "),
        "{}",
        sent[1]
    );
    assert_eq!(tag(hdr(&sent[1], "To")), "fork2");
    assert!(
        h.events().is_empty(),
        "the call goes on with the first fork"
    );
    // The fork's 200 re-sent: its ACK again, no second BYE.
    h.send(&fork);
    assert_eq!(h.sent(), vec![sent[0].clone()]);
    // Our own dialog still ends with the first fork's tag.
    h.ua.hangup(h.now, 1).unwrap();
    let bye = h.sent().pop().unwrap();
    assert_eq!(tag(hdr(&bye, "To")), "callee1");
}

#[test]
fn shutdown_cancels_calls_still_ringing() {
    let mut h = Harness::new();
    let invite = h.place(1);
    h.send(&response(&invite, "180 Ringing", Some("r1"), "", ""));
    h.events();
    h.ua.hangup_all(h.now);
    let sent = h.sent();
    assert!(
        sent.len() == 1 && sent[0].starts_with("CANCEL "),
        "{sent:?}"
    );
    assert_eq!(h.ua.active_calls(), 1, "until the INVITE's final arrives");
}

#[test]
fn a_lost_connection_before_the_answer_fails_the_call_with_503() {
    let mut h = Harness::with(Transport::Tcp, false);
    let invite = h.place(1);
    assert!(hdr(&invite, "Via").starts_with("SIP/2.0/TCP "), "{invite}");
    assert_eq!(
        hdr(&invite, "Contact"),
        "<sip:trunkgate@127.0.0.1:5060;transport=tcp>"
    );
    h.ua.flow_lost(h.now, h.callee());
    assert_eq!(
        h.events(),
        vec![CallEvent::Failed {
            call: 1,
            code: 503,
            reason: "connection to the carrier lost".into()
        }]
    );
    assert_eq!(h.ua.active_calls(), 0);
}

#[test]
fn incoming_and_outgoing_calls_share_one_number_space() {
    let mut h = Harness::new();
    let ids = CallIds::default();
    h.ua.set_call_ids(ids.clone());
    assert_eq!(h.ua.call_ids().next(), 1, "clones share the counter");
    let outgoing = ids.next();
    assert_eq!(outgoing, 2);
    h.place(outgoing);
    let invite = "INVITE sip:100@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKin1\r\n\
Max-Forwards: 70\r\nFrom: <sip:carrier@127.0.0.1>;tag=remote1\r\nTo: <sip:100@127.0.0.1>\r\n\
Call-ID: in1\r\nCSeq: 1 INVITE\r\nContact: <sip:carrier@127.0.0.1:5099>\r\nContent-Length: 0\r\n\r\n";
    let msg = codec::parse(invite.as_bytes()).unwrap();
    let carrier = Peer::new(Transport::Udp, "127.0.0.1:5099".parse().unwrap());
    h.ua.handle_message(h.now, carrier, LOCAL.parse().unwrap(), msg);
    match h.events().as_slice() {
        [CallEvent::Incoming(incoming)] => assert_eq!(incoming.call, 3),
        other => panic!("{other:?}"),
    }
    assert_eq!(ids.next(), 4);
}

#[test]
fn reason_phrases_are_spelled_out() {
    assert_eq!(reason_phrase(&rsip::StatusCode::BusyHere), "Busy Here");
    assert_eq!(reason_phrase(&rsip::StatusCode::OK), "OK");
    assert_eq!(
        reason_phrase(&rsip::StatusCode::Other(499, "Nope".into())),
        "Nope"
    );
}
