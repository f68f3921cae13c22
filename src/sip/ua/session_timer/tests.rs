//! RFC 4028 session timers driven in virtual time with real SIP text: a carrier calling us (we
//! are UAS) at 127.0.0.1:5099, and a callee we call (we are UAC) at 192.0.2.10, an address no
//! trunk allows.
use std::time::{Duration, Instant};

use super::super::*;
use super::*;
use crate::sip::codec;
use crate::sip::peer::Transport;
use crate::sip::transaction::TimerConfig;
use crate::sip::ua::tests::{
    body, branch, carrier_request_with, hdr, hdrs, response, run_timers, tag, trunk_with as trunk,
    ANSWER, CALLEE, CARRIER, LOCAL, OFFER,
};

const OUR_ANSWER: &str = "v=0\r\no=tg 40 5 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 8000 RTP/AVP 0\r\n";

struct Harness {
    ua: UserAgent,
    now: Instant,
}

impl Harness {
    fn new() -> Self {
        Self::with(false)
    }

    fn with(credentials: bool) -> Self {
        Harness {
            ua: UserAgent::new(
                TimerConfig::default(),
                "tg-test".into(),
                vec![trunk(credentials)],
                rand::SeedableRng::seed_from_u64(3),
            ),
            now: Instant::now(),
        }
    }

    fn send_from(&mut self, from: &str, text: &str) {
        let msg = codec::parse(text.as_bytes()).expect("test message parses");
        let peer = Peer::new(Transport::Udp, from.parse().unwrap());
        self.ua
            .handle_message(self.now, peer, LOCAL.parse().unwrap(), msg);
    }

    /// From the carrier that calls us.
    fn send(&mut self, text: &str) {
        self.send_from(CARRIER, text);
    }

    /// From the callee we called.
    fn send_callee(&mut self, text: &str) {
        self.send_from(CALLEE, text);
    }

    /// Everything sent since the last call, as text; 100 Trying left out.
    fn sent(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.ua.poll_transmit())
            .map(|t| String::from_utf8(t.payload.to_vec()).unwrap())
            .filter(|m| !m.starts_with("SIP/2.0 100"))
            .collect()
    }

    fn one_sent(&mut self) -> String {
        let sent = self.sent();
        assert_eq!(sent.len(), 1, "{sent:?}");
        sent.into_iter().next().unwrap()
    }

    fn events(&mut self) -> Vec<CallEvent> {
        std::iter::from_fn(|| self.ua.poll_event()).collect()
    }

    fn advance(&mut self, d: Duration) {
        self.now = run_timers(&mut self.ua, self.now, d);
    }

    /// An incoming call with `extra` header lines in its INVITE, answered and ACKed; returns
    /// (call, our 200, our tag).
    fn incoming(&mut self, call_id: &str, extra: &str) -> (CallRef, String, String) {
        self.send(&carrier_request("INVITE", call_id, 1, None, extra, OFFER));
        let call = match self.events().as_slice() {
            [CallEvent::Incoming(i)] => i.call,
            other => panic!("expected one Incoming, got {other:?}"),
        };
        self.ua
            .answer(self.now, call, OUR_ANSWER.as_bytes().to_vec())
            .unwrap();
        let ok = self.one_sent();
        assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
        let tag = tag(hdr(&ok, "To")).to_string();
        self.send(&carrier_request("ACK", call_id, 1, Some(&tag), "", ""));
        assert_eq!(
            self.events(),
            vec![CallEvent::Confirmed { call, answer: None }]
        );
        (call, ok, tag)
    }

    /// A call we place, answered by the callee's 200 with `extra` header lines, and ACKed;
    /// returns (INVITE, 200).
    fn outgoing(&mut self, call: CallRef, extra: &str) -> (String, String) {
        let invite = self.place(call);
        let ok = response(
            &invite,
            "200 OK",
            Some("callee1"),
            &format!("Contact: <sip:callee@192.0.2.10:5070>\r\n{extra}"),
            ANSWER,
        );
        self.send_callee(&ok);
        let ack = self.one_sent();
        assert!(ack.starts_with("ACK "), "{ack}");
        assert!(matches!(
            self.events().as_slice(),
            [CallEvent::Answered { .. }]
        ));
        (invite, ok)
    }

    fn place(&mut self, call: CallRef) -> String {
        let outgoing = OutgoingCall {
            trunk: "carrier".into(),
            peer: Peer::new(Transport::Udp, CALLEE.parse().unwrap()),
            local: LOCAL.parse().unwrap(),
            request_uri: "sip:+4930123456@carrier.example".into(),
            from: "<sip:+15551230000@carrier.example>".into(),
            to: "<sip:+4930123456@carrier.example>".into(),
            headers: Vec::new(),
            sdp: OFFER.as_bytes().to_vec(),
            call_id: None,
        };
        self.ua.invite(self.now, call, outgoing).unwrap();
        let invite = self.one_sent();
        assert!(invite.starts_with("INVITE "), "{invite}");
        invite
    }
}

/// A request from the carrier that calls us; `extra` are whole header lines.
fn carrier_request(
    method: &str,
    call_id: &str,
    cseq: u32,
    to_tag: Option<&str>,
    extra: &str,
    body: &str,
) -> String {
    let branch = format!("{method}{call_id}{cseq}");
    carrier_request_with(method, call_id, cseq, to_tag, &branch, extra, body)
}

/// A request from the callee inside the dialog its 200 `ok` set up.
fn callee_request(ok: &str, method: &str, cseq: u32, extra: &str) -> String {
    format!(
        "{method} sip:trunkgate@{LOCAL} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLEE};branch=z9hG4bKc{cseq}\r\n\
Max-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n\
Contact: <sip:callee@192.0.2.10:5070>\r\n{extra}Content-Length: 0\r\n\r\n",
        hdr(ok, "To"),
        hdr(ok, "From"),
        hdr(ok, "Call-ID"),
    )
}

fn status(msg: &str) -> u16 {
    assert!(msg.starts_with("SIP/2.0 "), "not a response: {msg}");
    msg[8..11].parse().unwrap()
}

fn ended(call: CallRef) -> Vec<CallEvent> {
    vec![CallEvent::Ended {
        call,
        reason: EndReason::SessionExpired,
    }]
}

const TIMER_90: &str = "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n";

// ---- pieces ----

#[test]
fn session_expires_and_min_se_are_read_and_written() {
    let se = SessionExpires::parse("1800 ; Refresher=UAS;x=1").unwrap();
    assert_eq!(se.interval, Duration::from_secs(1800));
    assert_eq!(se.refresher, Some(Refresher::Uas));
    assert_eq!(se.value(), "1800;refresher=uas");
    assert_eq!(SessionExpires::parse("90").unwrap().refresher, None);
    assert_eq!(SessionExpires::parse("soon;refresher=uac"), None);
    // The compact form `x` is a Session-Expires too.
    let msg = codec::parse(
        carrier_request("INVITE", "p1", 1, None, "x: 300\r\nMin-SE: 120;a=b\r\n", "").as_bytes(),
    )
    .unwrap();
    let rsip::SipMessage::Request(req) = msg else {
        panic!()
    };
    assert_eq!(
        session_expires_of(&req.headers).map(|se| se.interval),
        Some(Duration::from_secs(300))
    );
    assert_eq!(min_se_of(&req.headers), Some(Duration::from_secs(120)));
}

#[test]
fn the_sdp_version_is_bumped_and_nothing_else_changes() {
    assert_eq!(sdp_version(OFFER.as_bytes()), Some(1));
    let bumped = with_sdp_version(OUR_ANSWER.as_bytes(), 6).unwrap();
    assert_eq!(
        String::from_utf8(bumped).unwrap(),
        OUR_ANSWER.replace("o=tg 40 5 ", "o=tg 40 6 ")
    );
    assert_eq!(with_sdp_version(b"v=0\r\ns=-\r\n", 2), None);
}

// ---- we are UAS ----

#[test]
fn an_invite_asking_for_less_than_our_min_se_gets_422_with_ours() {
    let mut h = Harness::new();
    h.send(&carrier_request(
        "INVITE",
        "u1",
        1,
        None,
        "Supported: timer\r\nSession-Expires: 60\r\n",
        OFFER,
    ));
    let resp = h.one_sent();
    assert_eq!(status(&resp), 422, "{resp}");
    assert_eq!(hdr(&resp, "Min-SE"), "90");
    assert!(h.events().is_empty(), "a rejection sets up no call");
    assert_eq!(h.ua.active_calls(), 0);

    // Our own Min-SE, when raised, is what the 422 names; the carrier's retry with it is taken.
    h.ua.set_session_timers(Some(Duration::from_secs(1800)), Duration::from_secs(120));
    h.send(&carrier_request(
        "INVITE",
        "u2",
        1,
        None,
        "Supported: timer\r\nSession-Expires: 100\r\n",
        OFFER,
    ));
    assert_eq!(hdr(&h.one_sent(), "Min-SE"), "120");
    let (_, ok, _) = h.incoming(
        "u3",
        "Supported: timer\r\nSession-Expires: 120\r\nMin-SE: 120\r\n",
    );
    assert_eq!(hdr(&ok, "Session-Expires"), "120;refresher=uac");
}

#[test]
fn a_uac_that_supports_timers_gets_session_expires_with_refresher_uac_and_require_timer() {
    let mut h = Harness::new();
    let (_, ok, _) = h.incoming("u4", "Supported: timer\r\nSession-Expires: 600\r\n");
    assert_eq!(hdr(&ok, "Session-Expires"), "600;refresher=uac");
    assert_eq!(hdr(&ok, "Require"), "timer");

    // Support without an interval: ours.
    let (_, ok, _) = h.incoming("u5", "Supported: 100rel, timer\r\n");
    assert_eq!(hdr(&ok, "Session-Expires"), "1800;refresher=uac");
    assert_eq!(hdr(&ok, "Require"), "timer");

    // Never below the UAC's own Min-SE.
    let (_, ok, _) = h.incoming("u6", "Supported: timer\r\nMin-SE: 2000\r\n");
    assert_eq!(hdr(&ok, "Session-Expires"), "2000;refresher=uac");
}

#[test]
fn without_the_uacs_support_the_2xx_claims_no_timer_and_the_call_never_expires() {
    let mut h = Harness::new();
    // A Session-Expires a proxy inserted: the UAC itself cannot refresh.
    let (_, ok, _) = h.incoming("u7", "Session-Expires: 600\r\n");
    assert!(hdrs(&ok, "Session-Expires").is_empty(), "{ok}");
    assert!(hdrs(&ok, "Require").is_empty(), "{ok}");
    // Neither header.
    let (_, ok, _) = h.incoming("u8", "");
    assert!(hdrs(&ok, "Session-Expires").is_empty(), "{ok}");
    h.advance(Duration::from_secs(4 * 3600));
    assert!(h.sent().is_empty());
    assert!(h.events().is_empty());
    assert_eq!(h.ua.active_calls(), 2);
}

#[test]
fn require_timer_is_accepted_but_other_extensions_get_420_naming_them() {
    let mut h = Harness::new();
    let (_, ok, _) = h.incoming(
        "u9",
        "Require: timer\r\nSession-Expires: 90;refresher=uac\r\n",
    );
    assert_eq!(hdr(&ok, "Session-Expires"), "90;refresher=uac");

    h.send(&carrier_request(
        "INVITE",
        "u10",
        1,
        None,
        "Require: 100rel\r\n",
        OFFER,
    ));
    let resp = h.one_sent();
    assert_eq!(status(&resp), 420, "{resp}");
    assert_eq!(hdr(&resp, "Unsupported"), "100rel");

    h.send(&carrier_request(
        "INVITE",
        "u11",
        1,
        None,
        "Require: timer, 100rel\r\nRequire: precondition\r\n",
        OFFER,
    ));
    let resp = h.one_sent();
    assert_eq!(status(&resp), 420, "{resp}");
    assert_eq!(hdr(&resp, "Unsupported"), "100rel, precondition");

    // Session timers off: `timer` is an extension we lack too.
    h.ua.set_session_timers(None, Duration::from_secs(90));
    h.send(&carrier_request(
        "INVITE",
        "u12",
        1,
        None,
        "Require: timer\r\n",
        OFFER,
    ));
    let resp = h.one_sent();
    assert_eq!(status(&resp), 420, "{resp}");
    assert_eq!(hdr(&resp, "Unsupported"), "timer");
    assert!(h.events().is_empty());
}

#[test]
fn the_carriers_refreshes_keep_the_call_up_and_without_one_we_send_bye() {
    let mut h = Harness::new();
    let (call, _, tag) = h.incoming("u13", TIMER_90);
    // S = 90: the carrier must refresh within 90 − 30 = 60 s.
    h.advance(Duration::from_secs(50));
    assert!(h.sent().is_empty());
    h.send(&carrier_request(
        "UPDATE",
        "u13",
        2,
        Some(&tag),
        TIMER_90,
        "",
    ));
    let ok = h.one_sent();
    assert_eq!(status(&ok), 200, "{ok}");
    assert_eq!(hdr(&ok, "Session-Expires"), "90;refresher=uac");
    assert_eq!(hdr(&ok, "Require"), "timer");
    assert_eq!(hdr(&ok, "CSeq"), "2 UPDATE");
    assert!(h.events().is_empty(), "a refresh is no news for the call");

    // 55 s later (past the first deadline): a re-INVITE refresh, answered by the call.
    h.advance(Duration::from_secs(55));
    assert!(h.sent().is_empty(), "the UPDATE restarted the timer");
    h.send(&carrier_request(
        "INVITE",
        "u13",
        3,
        Some(&tag),
        TIMER_90,
        OFFER,
    ));
    assert!(matches!(
        h.events().as_slice(),
        [CallEvent::ReInvite { .. }]
    ));
    h.ua.answer_reinvite(h.now, call, Ok(OUR_ANSWER.as_bytes().to_vec()))
        .unwrap();
    let ok = h.one_sent();
    assert_eq!(hdr(&ok, "CSeq"), "3 INVITE");
    assert_eq!(hdr(&ok, "Session-Expires"), "90;refresher=uac");
    assert_eq!(hdr(&ok, "Require"), "timer");
    h.send(&carrier_request("ACK", "u13", 3, Some(&tag), "", ""));
    h.events();

    // Then silence: BYE at 60 s after that refresh, not before.
    h.advance(Duration::from_millis(59_900));
    assert!(h.sent().is_empty());
    assert!(h.events().is_empty());
    h.advance(Duration::from_millis(100));
    let bye = h.one_sent();
    assert!(bye.starts_with("BYE sip:carrier@127.0.0.1:5099 "), "{bye}");
    assert_eq!(h.events(), ended(call));
    // The BYE's answer removes the dialog.
    h.send_from(CARRIER, &response(&bye, "200 OK", None, "", ""));
    assert_eq!(h.ua.active_calls(), 0);
}

#[test]
fn the_expiry_leaves_32_s_at_most_before_the_interval_ends() {
    let mut h = Harness::new();
    let (call, _, _) = h.incoming("u14", "Supported: timer\r\nSession-Expires: 1800\r\n");
    h.advance(Duration::from_millis(1_767_900));
    assert!(h.sent().is_empty());
    h.advance(Duration::from_millis(100));
    assert!(h.one_sent().starts_with("BYE "));
    assert_eq!(h.events(), ended(call));
}

#[test]
fn an_update_with_a_body_gets_488_and_a_refresh_below_min_se_gets_422() {
    let mut h = Harness::new();
    let (_, _, tag) = h.incoming("u15", TIMER_90);
    h.send(&carrier_request(
        "UPDATE",
        "u15",
        2,
        Some(&tag),
        TIMER_90,
        OFFER,
    ));
    assert_eq!(status(&h.one_sent()), 488);
    h.send(&carrier_request(
        "UPDATE",
        "u15",
        3,
        Some(&tag),
        "Supported: timer\r\nSession-Expires: 30;refresher=uac\r\n",
        "",
    ));
    let resp = h.one_sent();
    assert_eq!(status(&resp), 422);
    assert_eq!(hdr(&resp, "Min-SE"), "90");
    // Neither was a refresh: the timer runs from the 2xx.
    h.advance(Duration::from_secs(60));
    assert!(h.one_sent().starts_with("BYE "));
}

#[test]
fn a_bodiless_update_without_timers_gets_200() {
    let mut h = Harness::new();
    let (_, _, tag) = h.incoming("u16", "");
    h.send(&carrier_request("UPDATE", "u16", 2, Some(&tag), "", ""));
    let ok = h.one_sent();
    assert_eq!(status(&ok), 200, "{ok}");
    assert!(hdrs(&ok, "Session-Expires").is_empty(), "{ok}");
    assert!(!hdrs(&ok, "Contact").is_empty(), "{ok}");
}

#[test]
fn a_carrier_that_asks_us_to_refresh_gets_our_updates() {
    let mut h = Harness::new();
    let (_, ok, tag) = h.incoming(
        "u17",
        "Supported: timer\r\nSession-Expires: 120;refresher=uas\r\nAllow: INVITE, ACK, BYE, UPDATE\r\n",
    );
    assert_eq!(hdr(&ok, "Session-Expires"), "120;refresher=uas");
    h.advance(Duration::from_millis(59_900));
    assert!(h.sent().is_empty());
    h.advance(Duration::from_millis(100));
    let update = h.one_sent();
    assert!(
        update.starts_with("UPDATE sip:carrier@127.0.0.1:5099 SIP/2.0"),
        "{update}"
    );
    assert_eq!(hdr(&update, "CSeq"), "1 UPDATE");
    assert!(hdr(&update, "From").ends_with(&format!(";tag={tag}")));
    assert_eq!(hdr(&update, "Session-Expires"), "120;refresher=uac");
}

// ---- we are UAC ----

#[test]
fn our_invite_offers_a_session_timer_for_the_callee_to_refresh() {
    let mut h = Harness::new();
    let invite = h.place(1);
    assert_eq!(hdr(&invite, "Supported"), "timer");
    assert_eq!(hdr(&invite, "Session-Expires"), "1800;refresher=uas");
    assert_eq!(hdr(&invite, "Min-SE"), "90");

    h.ua.set_session_timers(Some(Duration::from_secs(600)), Duration::from_secs(300));
    let invite = h.place(2);
    assert_eq!(hdr(&invite, "Session-Expires"), "600;refresher=uas");
    assert_eq!(hdr(&invite, "Min-SE"), "300");

    h.ua.set_session_timers(None, Duration::from_secs(90));
    let invite = h.place(3);
    assert!(hdrs(&invite, "Session-Expires").is_empty(), "{invite}");
    assert!(hdrs(&invite, "Supported").is_empty(), "{invite}");
}

#[test]
fn a_422_sends_the_invite_again_once_with_its_min_se() {
    let mut h = Harness::new();
    let invite = h.place(1);
    h.send_callee(&response(
        &invite,
        "422 Session Interval Too Small",
        Some("x1"),
        "Min-SE: 3600\r\n",
        "",
    ));
    let sent = h.sent();
    // The transaction's ACK for the 422, and the INVITE again.
    assert!(sent.iter().any(|m| m.starts_with("ACK ")), "{sent:?}");
    let again = sent.iter().find(|m| m.starts_with("INVITE ")).unwrap();
    assert_eq!(hdr(again, "Call-ID"), hdr(&invite, "Call-ID"));
    assert_eq!(hdr(again, "From"), hdr(&invite, "From"));
    assert_eq!(hdr(again, "CSeq"), "2 INVITE");
    assert_ne!(branch(again), branch(&invite));
    assert_eq!(hdr(again, "Session-Expires"), "3600;refresher=uas");
    assert_eq!(hdrs(again, "Session-Expires").len(), 1);
    assert_eq!(hdr(again, "Min-SE"), "3600");
    assert_eq!(body(again), OFFER);
    assert!(h.events().is_empty(), "no news for the call yet");

    // A second 422: the call fails with it.
    h.send_callee(&response(
        again,
        "422 Session Interval Too Small",
        Some("x2"),
        "Min-SE: 7200\r\n",
        "",
    ));
    let sent = h.sent();
    assert!(!sent.iter().any(|m| m.starts_with("INVITE ")), "{sent:?}");
    assert!(matches!(
        h.events().as_slice(),
        [CallEvent::Failed {
            call: 1,
            code: 422,
            ..
        }]
    ));
    assert_eq!(h.ua.active_calls(), 0);
}

#[test]
fn when_the_callee_insists_on_refresher_uac_we_send_update_at_half_the_interval() {
    let mut h = Harness::new();
    let (_, ok) = h.outgoing(
        1,
        "Session-Expires: 90;refresher=uac\r\nRequire: timer\r\n\
Allow: INVITE, ACK, BYE, CANCEL, UPDATE\r\nRecord-Route: <sip:p1.carrier.example;lr>\r\n",
    );
    h.advance(Duration::from_millis(44_900));
    assert!(h.sent().is_empty());
    h.advance(Duration::from_millis(100));
    let update = h.one_sent();
    assert!(
        update.starts_with("UPDATE sip:callee@192.0.2.10:5070 SIP/2.0"),
        "to the remote target: {update}"
    );
    assert_eq!(hdr(&update, "Route"), "<sip:p1.carrier.example;lr>");
    assert_eq!(hdr(&update, "CSeq"), "2 UPDATE");
    assert_eq!(hdr(&update, "From"), hdr(&ok, "From"));
    assert_eq!(hdr(&update, "To"), hdr(&ok, "To"));
    assert_eq!(hdr(&update, "Session-Expires"), "90;refresher=uac");
    assert_eq!(hdr(&update, "Supported"), "timer");
    assert_eq!(hdr(&update, "Content-Length"), "0");
    assert!(body(&update).is_empty());
    h.send_callee(&response(
        &update,
        "200 OK",
        None,
        "Session-Expires: 90;refresher=uac\r\nRequire: timer\r\n",
        "",
    ));
    assert!(h.sent().is_empty(), "a 2xx to UPDATE is not ACKed");
    // The next one S/2 after the 200.
    h.advance(Duration::from_millis(44_900));
    assert!(h.sent().is_empty());
    h.advance(Duration::from_millis(100));
    let next = h.one_sent();
    assert_eq!(hdr(&next, "CSeq"), "3 UPDATE");
    assert!(h.events().is_empty(), "refreshes are no news for the call");
}

#[test]
fn without_update_in_allow_we_refresh_with_a_reinvite_of_our_sdp_and_ack_its_2xx() {
    let mut h = Harness::new();
    h.outgoing(
        1,
        "Session-Expires: 90;refresher=uac\r\nRequire: timer\r\nAllow: INVITE, ACK, BYE\r\n",
    );
    h.advance(Duration::from_secs(45));
    let reinvite = h.one_sent();
    assert!(
        reinvite.starts_with("INVITE sip:callee@192.0.2.10:5070 SIP/2.0"),
        "{reinvite}"
    );
    assert_eq!(hdr(&reinvite, "CSeq"), "2 INVITE");
    assert_eq!(hdr(&reinvite, "Session-Expires"), "90;refresher=uac");
    assert_eq!(hdr(&reinvite, "Supported"), "timer");
    assert_eq!(hdr(&reinvite, "Content-Type"), "application/sdp");
    assert_eq!(
        body(&reinvite),
        OFFER.replace("o=- 1 1 ", "o=- 1 2 "),
        "our offer again, its version bumped"
    );
    let ok = response(
        &reinvite,
        "200 OK",
        None,
        "Session-Expires: 90;refresher=uac\r\nRequire: timer\r\nContact: <sip:callee@192.0.2.10:5070>\r\n",
        ANSWER,
    );
    h.send_callee(&ok);
    let ack = h.one_sent();
    assert!(
        ack.starts_with("ACK sip:callee@192.0.2.10:5070 SIP/2.0"),
        "{ack}"
    );
    assert_eq!(hdr(&ack, "CSeq"), "2 ACK");
    assert_ne!(branch(&ack), branch(&reinvite));
    // The 200 again (our ACK was lost): the same ACK again.
    h.send_callee(&ok);
    assert_eq!(h.one_sent(), ack);
    assert!(h.events().is_empty());
    // The next refresh bumps the version once more.
    h.advance(Duration::from_secs(45));
    let next = h.sent();
    let next = next.iter().find(|m| m.starts_with("INVITE ")).unwrap();
    assert_eq!(hdr(next, "CSeq"), "3 INVITE");
    assert_eq!(body(next), OFFER.replace("o=- 1 1 ", "o=- 1 3 "));
}

#[test]
fn our_refresh_reinvite_is_acked_even_when_the_peer_dropped_the_timer_meanwhile() {
    let mut h = Harness::new();
    let (_, ok) = h.outgoing(1, "Session-Expires: 90;refresher=uac\r\n");
    h.advance(Duration::from_secs(45));
    let reinvite = h.one_sent();
    assert!(reinvite.starts_with("INVITE "), "{reinvite}");
    // While it is pending, the callee's UPDATE without timer headers turns the timer off …
    h.send_callee(&callee_request(&ok, "UPDATE", 1, ""));
    let resp = h.one_sent();
    assert_eq!(status(&resp), 200, "{resp}");
    assert!(hdrs(&resp, "Session-Expires").is_empty(), "{resp}");
    // … and its 2xx to our re-INVITE, without one either, is still ACKed.
    h.send_callee(&response(&reinvite, "200 OK", None, "", ANSWER));
    let ack = h.one_sent();
    assert!(ack.starts_with("ACK "), "{ack}");
    assert_eq!(hdr(&ack, "CSeq"), "2 ACK");
    h.advance(Duration::from_secs(4 * 3600));
    assert!(h.sent().is_empty(), "no session timer any more");
    assert!(h.events().is_empty());
}

#[test]
fn a_481_to_our_refresh_ends_the_call_with_bye() {
    let mut h = Harness::new();
    h.outgoing(1, "Session-Expires: 90;refresher=uac\r\nAllow: UPDATE\r\n");
    h.advance(Duration::from_secs(45));
    let update = h.one_sent();
    h.send_callee(&response(
        &update,
        "481 Call/Transaction Does Not Exist",
        None,
        "",
        "",
    ));
    let bye = h.one_sent();
    assert!(bye.starts_with("BYE "), "{bye}");
    assert_eq!(hdr(&bye, "CSeq"), "3 BYE");
    assert_eq!(h.events(), ended(1));
}

#[test]
fn a_refresh_that_is_never_answered_ends_the_call_with_bye() {
    let mut h = Harness::new();
    h.outgoing(
        1,
        "Session-Expires: 1800;refresher=uac\r\nAllow: UPDATE\r\n",
    );
    h.advance(Duration::from_secs(900));
    assert!(h.one_sent().starts_with("UPDATE "));
    // Timer F: 64·T1 of retransmissions, then the BYE.
    h.advance(Duration::from_secs(31));
    assert!(h.sent().iter().all(|m| m.starts_with("UPDATE ")));
    assert!(h.events().is_empty());
    h.advance(Duration::from_secs(2));
    assert!(h.sent().iter().any(|m| m.starts_with("BYE ")));
    assert_eq!(h.events(), ended(1));
}

#[test]
fn a_491_to_our_refresh_is_tried_again_and_a_405_to_update_falls_back_to_reinvite() {
    let mut h = Harness::new();
    h.outgoing(1, "Session-Expires: 90;refresher=uac\r\nAllow: UPDATE\r\n");
    h.advance(Duration::from_secs(45));
    let update = h.one_sent();
    h.send_callee(&response(&update, "491 Request Pending", None, "", ""));
    assert!(h.sent().is_empty());
    h.advance(REFRESH_RETRY);
    let again = h.one_sent();
    assert_eq!(hdr(&again, "CSeq"), "3 UPDATE");
    h.send_callee(&response(&again, "405 Method Not Allowed", None, "", ""));
    let reinvite = h.one_sent();
    assert!(reinvite.starts_with("INVITE "), "{reinvite}");
    assert_eq!(hdr(&reinvite, "CSeq"), "4 INVITE");
    assert!(h.events().is_empty());
}

#[test]
fn a_challenge_to_our_refresh_is_answered_with_the_trunks_credentials() {
    let mut h = Harness::with(true);
    h.outgoing(1, "Session-Expires: 90;refresher=uac\r\nAllow: UPDATE\r\n");
    h.advance(Duration::from_secs(45));
    let update = h.one_sent();
    h.send_callee(&response(
        &update,
        "401 Unauthorized",
        None,
        "WWW-Authenticate: Digest realm=\"carrier.example\", nonce=\"abc\", algorithm=MD5, qop=\"auth\"\r\n",
        "",
    ));
    let again = h.one_sent();
    assert!(again.starts_with("UPDATE "), "{again}");
    assert_eq!(hdr(&again, "CSeq"), "3 UPDATE");
    assert_ne!(branch(&again), branch(&update));
    let auth = hdr(&again, "Authorization");
    assert!(
        auth.starts_with("Digest ") && auth.contains("username=\"gw1\""),
        "{auth}"
    );
    h.send_callee(&response(
        &again,
        "200 OK",
        None,
        "Session-Expires: 90;refresher=uac\r\n",
        "",
    ));
    assert!(h.events().is_empty());
    h.advance(Duration::from_secs(44));
    assert!(h.sent().is_empty(), "refreshed: the next one is S/2 away");
}

#[test]
fn when_the_callee_refreshes_we_watch_and_end_a_silent_call() {
    let mut h = Harness::new();
    let watched = "Session-Expires: 90;refresher=uas\r\nRequire: timer\r\nAllow: UPDATE\r\n";
    let (_, ok) = h.outgoing(1, watched);
    // A second call, never refreshed: its 2xx alone set the timer.
    h.outgoing(2, watched);
    h.advance(Duration::from_secs(50));
    assert!(h.sent().is_empty(), "the callee refreshes, not us");
    h.send_callee(&callee_request(&ok, "UPDATE", 1, TIMER_90));
    let resp = h.one_sent();
    assert_eq!(status(&resp), 200, "{resp}");
    // Their request: `uac` is the callee, who goes on refreshing.
    assert_eq!(hdr(&resp, "Session-Expires"), "90;refresher=uac");
    assert_eq!(hdr(&resp, "Require"), "timer");
    h.advance(Duration::from_secs(10));
    let bye = h.one_sent();
    assert!(bye.starts_with("BYE "), "{bye}");
    assert_eq!(h.events(), ended(2));
    h.send_callee(&response(&bye, "200 OK", None, "", ""));
    assert_eq!(h.ua.active_calls(), 1);
    h.advance(Duration::from_millis(49_900));
    assert!(h.sent().is_empty());
    h.advance(Duration::from_millis(100));
    assert!(h.one_sent().starts_with("BYE "));
    assert_eq!(h.events(), ended(1));
}

#[test]
fn a_2xx_without_session_expires_means_no_session_timer() {
    let mut h = Harness::new();
    h.outgoing(1, "Allow: UPDATE\r\n");
    h.advance(Duration::from_secs(4 * 3600));
    assert!(h.sent().is_empty());
    assert!(h.events().is_empty());
    assert_eq!(h.ua.active_calls(), 1);
}
