//! The UA core driven in virtual time with real SIP text, as a carrier would send it.
use std::net::SocketAddr;
use std::time::Duration;

use super::*;
use crate::sip::codec;
use crate::sip::peer::Transport;
use crate::sip::trunk::{Cidr, CodecName, Credentials, TrunkConfig};

/// The carrier calling us; a callee we call, at an address no trunk allows; us.
pub(super) const CARRIER: &str = "127.0.0.1:5099";
pub(super) const CALLEE: &str = "192.0.2.10:5060";
pub(super) const LOCAL: &str = "127.0.0.1:5060";
/// An SDP offer (the carrier's on calls to us, ours on calls we place), and a callee's answer.
pub(super) const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";
pub(super) const ANSWER: &str = "v=0\r\no=- 7 7 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n";

fn trunk() -> TrunkConfig {
    trunk_with(false)
}

/// The carrier's trunk (127.0.0.0/8), with digest credentials gw1 / s3cret if asked.
pub(super) fn trunk_with(credentials: bool) -> TrunkConfig {
    TrunkConfig {
        name: "carrier".into(),
        allow: vec!["127.0.0.0/8".parse::<Cidr>().unwrap()],
        codecs: vec![CodecName::Pcmu],
        symmetric_rtp: true,
        route: "ivr:main".parse().unwrap(),
        ring_ms: 0,
        recording: None,
        srtp: Default::default(),
        tls_client_ca: None,
        tls_ca: None,
        tls_fingerprint: None,
        tls_server_name: None,
        credentials: credentials.then(|| Credentials {
            username: "gw1".into(),
            password: Some("s3cret".into()),
            password_file: None,
            secret_from_file: None,
        }),
        register: None,
        outbound: None,
        refer: false,
    }
}

struct Harness {
    ua: UserAgent,
    now: Instant,
    peer: Peer,
}

impl Harness {
    fn new() -> Self {
        Self::with_transport(Transport::Udp)
    }

    fn with_transport(t: Transport) -> Self {
        Self::seeded(t, 1)
    }

    /// A harness whose UA draws tags and branches from `StdRng::seed_from_u64(seed)`.
    fn seeded(t: Transport, seed: u64) -> Self {
        Harness {
            ua: UserAgent::new(
                TimerConfig::default(),
                "tg-test".into(),
                vec![trunk()],
                rand::SeedableRng::seed_from_u64(seed),
            ),
            now: Instant::now(),
            peer: Peer::new(t, CARRIER.parse().unwrap()),
        }
    }

    fn send_from(&mut self, from: &str, text: &str) {
        let msg = codec::parse(text.as_bytes()).expect("test message parses");
        let peer = Peer::new(self.peer.transport, from.parse().unwrap());
        self.ua
            .handle_message(self.now, peer, LOCAL.parse().unwrap(), msg);
    }

    fn send(&mut self, text: &str) {
        self.send_from(CARRIER, text);
    }

    /// Everything the UA sent since the last call, as text.
    fn sent(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(t) = self.ua.poll_transmit() {
            assert_eq!(t.peer, self.peer_for(&t.peer.addr));
            out.push(String::from_utf8(t.payload.to_vec()).unwrap());
        }
        out
    }

    fn peer_for(&self, addr: &SocketAddr) -> Peer {
        Peer::new(self.peer.transport, *addr)
    }

    fn statuses(&mut self) -> Vec<u16> {
        self.sent()
            .iter()
            .filter(|m| m.starts_with("SIP/2.0 "))
            .map(|m| m[8..11].parse().unwrap())
            // The INVITE transaction's own 100 Trying is the transaction layer's business.
            .filter(|code| *code != 100)
            .collect()
    }

    fn events(&mut self) -> Vec<CallEvent> {
        std::iter::from_fn(|| self.ua.poll_event()).collect()
    }

    fn advance(&mut self, d: Duration) {
        self.now = run_timers(&mut self.ua, self.now, d);
    }

    fn incoming(&mut self) -> CallRef {
        match self.events().as_slice() {
            [CallEvent::Incoming(incoming)] => incoming.call,
            other => panic!("expected one Incoming, got {other:?}"),
        }
    }
}

fn request(
    method: &str,
    call_id: &str,
    cseq: u32,
    to_tag: Option<&str>,
    branch: &str,
    body: &str,
) -> String {
    carrier_request_with(method, call_id, cseq, to_tag, branch, "", body)
}

/// A request from the carrier at [`CARRIER`]; `extra` are whole header lines.
pub(super) fn carrier_request_with(
    method: &str,
    call_id: &str,
    cseq: u32,
    to_tag: Option<&str>,
    branch: &str,
    extra: &str,
    body: &str,
) -> String {
    let to = match to_tag {
        Some(t) => format!("<sip:100@127.0.0.1>;tag={t}"),
        None => "<sip:100@127.0.0.1>".into(),
    };
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "{method} sip:100@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP {CARRIER};branch=z9hG4bK{branch}\r\n\
Max-Forwards: 70\r\n\
From: <sip:carrier@127.0.0.1>;tag=remote1\r\n\
To: {to}\r\n\
Call-ID: {call_id}\r\n\
CSeq: {cseq} {method}\r\n\
Contact: <sip:carrier@{CARRIER}>\r\n\
{extra}{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Fires the UA's timers due within `d` of `now`, each at its time; the time after `d`.
pub(super) fn run_timers(ua: &mut UserAgent, now: Instant, d: Duration) -> Instant {
    let end = now + d;
    let mut now = now;
    while let Some(t) = ua.poll_timeout().filter(|t| *t <= end) {
        now = t.max(now);
        ua.handle_timeout(now);
    }
    end
}

/// SIP text as tests read and write it.
/// The value of the first header `name` in `msg`.
pub(super) fn hdr<'a>(msg: &'a str, name: &str) -> &'a str {
    hdrs(msg, name)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {name} in {msg}"))
}

pub(super) fn hdrs<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    let head = msg.split("\r\n\r\n").next().unwrap();
    // The start line is no header.
    head.lines()
        .skip(1)
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .collect()
}

pub(super) fn branch(msg: &str) -> &str {
    hdr(msg, "Via")
        .split("branch=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
}

pub(super) fn tag(value: &str) -> &str {
    value
        .split(";tag=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
}

pub(super) fn body(msg: &str) -> &str {
    msg.split_once("\r\n\r\n").unwrap().1
}

/// The answer to `req` (its Via, From, To, Call-ID and CSeq), with `to_tag` added
/// to To, `extra` header lines and `body` (as SDP).
pub(super) fn response(
    req: &str,
    status: &str,
    to_tag: Option<&str>,
    extra: &str,
    body: &str,
) -> String {
    let to = match to_tag {
        Some(t) => format!("{};tag={t}", hdr(req, "To")),
        None => hdr(req, "To").to_string(),
    };
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "SIP/2.0 {status}\r\nVia: {}\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n\
{extra}{ct}Content-Length: {}\r\n\r\n{body}",
        hdr(req, "Via"),
        hdr(req, "From"),
        hdr(req, "Call-ID"),
        hdr(req, "CSeq"),
        body.len()
    )
}

fn to_tag_of(resp: &str) -> String {
    let to = resp.lines().find(|l| l.starts_with("To:")).unwrap();
    to.split("tag=").nth(1).unwrap().trim().to_string()
}

/// A call answered with 200 and acknowledged; returns (call, our tag).
fn established(h: &mut Harness, call_id: &str) -> (CallRef, String) {
    h.send(&request("INVITE", call_id, 1, None, "inv1", OFFER));
    let call = h.incoming();
    assert_eq!(h.statuses(), Vec::<u16>::new());
    h.ua.answer(h.now, call, b"v=0\r\n".to_vec()).unwrap();
    let ok = h.sent().pop().unwrap();
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    let tag = to_tag_of(&ok);
    h.send(&request("ACK", call_id, 1, Some(&tag), "ack1", ""));
    assert_eq!(
        h.events(),
        vec![CallEvent::Confirmed { call, answer: None }]
    );
    (call, tag)
}

#[test]
fn invite_from_unknown_address_gets_403() {
    let mut h = Harness::new();
    h.send_from(
        "192.0.2.9:5060",
        &request("INVITE", "c1", 1, None, "a", OFFER),
    );
    let sent = h.sent();
    assert!(
        sent.last().is_some_and(|m| m.starts_with("SIP/2.0 403")),
        "{sent:?}"
    );
    assert!(
        !sent
            .iter()
            .any(|m| m.contains("Server:") || m.contains("trunkgate")),
        "a stranger learns nothing of the product: {sent:?}"
    );
    assert!(h.events().is_empty());
    assert_eq!(h.ua.stats().forbidden, 1);
}

#[test]
fn options_is_answered_with_allow() {
    let mut h = Harness::new();
    h.send(&request("OPTIONS", "o1", 1, None, "o", ""));
    let sent = h.sent();
    assert!(sent[0].starts_with("SIP/2.0 200"));
    assert!(
        sent[0].contains("Allow: INVITE, ACK, BYE, CANCEL, OPTIONS"),
        "{}",
        sent[0]
    );
}

#[test]
fn max_forwards_zero_gets_483() {
    let mut h = Harness::new();
    let inv =
        request("INVITE", "m1", 1, None, "m", OFFER).replace("Max-Forwards: 70", "Max-Forwards: 0");
    h.send(&inv);
    assert_eq!(h.statuses().last(), Some(&483));
}

#[test]
fn known_but_unsupported_method_gets_405_and_unknown_dialog_481() {
    let mut h = Harness::new();
    h.send(&request("SUBSCRIBE", "s1", 1, None, "s", ""));
    assert_eq!(h.statuses(), vec![405]);
    h.send(&request("BYE", "nope", 2, Some("xyz"), "b", ""));
    assert_eq!(h.statuses(), vec![481]);
    h.send(&request("BYE", "nope2", 2, None, "b2", ""));
    assert_eq!(h.statuses(), vec![481]);
}

#[test]
fn answered_call_is_ended_by_the_carriers_bye() {
    let mut h = Harness::new();
    let (call, tag) = established(&mut h, "c2");
    h.send(&request("BYE", "c2", 2, Some(&tag), "bye1", ""));
    assert_eq!(h.statuses(), vec![200]);
    assert_eq!(
        h.events(),
        vec![CallEvent::Ended {
            call,
            reason: EndReason::RemoteBye
        }]
    );
    assert_eq!(h.ua.active_calls(), 0);
}

#[test]
fn our_hangup_sends_a_bye_inside_the_dialog() {
    let mut h = Harness::new();
    let (call, tag) = established(&mut h, "c3");
    h.ua.hangup(h.now, call).unwrap();
    assert_eq!(
        h.events(),
        vec![CallEvent::Ended {
            call,
            reason: EndReason::Local
        }],
        "the call's actor must learn that the call is over"
    );
    let bye = h.sent().pop().unwrap();
    assert!(
        bye.starts_with("BYE sip:carrier@127.0.0.1:5099 SIP/2.0"),
        "{bye}"
    );
    assert!(
        bye.contains(&format!("tag={tag}")),
        "our tag is the From tag: {bye}"
    );
    assert!(
        bye.contains("To: <sip:carrier@127.0.0.1>;tag=remote1"),
        "{bye}"
    );
    assert!(bye.contains("CSeq: 1 BYE"), "{bye}");
    let branch = bye
        .split("branch=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .trim()
        .to_string();
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {LOCAL};branch={branch}\r\nFrom: <sip:100@127.0.0.1>;tag={tag}\r\n\
To: <sip:carrier@127.0.0.1>;tag=remote1\r\nCall-ID: c3\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    h.send(&ok);
    assert_eq!(h.ua.active_calls(), 0);
}

#[test]
fn our_2xx_is_retransmitted_until_ack_then_call_given_up_with_bye() {
    let mut h = Harness::new();
    h.send(&request("INVITE", "c4", 1, None, "inv4", OFFER));
    let call = h.incoming();
    h.sent();
    h.ua.answer(h.now, call, b"v=0\r\n".to_vec()).unwrap();
    assert_eq!(h.statuses(), vec![200]);
    // T1, 2T1, 4T1 then capped at T2 = 4 s: 0.5, 1.5, 3.5, 7.5, 11.5 … up to 32 s.
    let mut retransmits = 0;
    let start = h.now;
    while h.now < start + Duration::from_millis(31_900) {
        h.advance(Duration::from_millis(100));
        retransmits += h.statuses().iter().filter(|s| **s == 200).count();
    }
    assert_eq!(
        retransmits, 10,
        "0.5 1.5 3.5 7.5 11.5 15.5 19.5 23.5 27.5 31.5"
    );
    h.advance(Duration::from_millis(200));
    let sent = h.sent();
    assert!(sent.iter().any(|m| m.starts_with("BYE ")), "{sent:?}");
    assert_eq!(
        h.events(),
        vec![CallEvent::Ended {
            call,
            reason: EndReason::NoAck
        }]
    );
}

#[test]
fn over_tcp_the_2xx_is_not_retransmitted() {
    let mut h = Harness::with_transport(Transport::Tcp);
    let inv = request("INVITE", "c5", 1, None, "inv5", OFFER).replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    h.send(&inv);
    let call = h.incoming();
    h.sent();
    h.ua.answer(h.now, call, b"v=0\r\n".to_vec()).unwrap();
    assert_eq!(h.statuses(), vec![200]);
    h.advance(Duration::from_secs(20));
    assert!(h.statuses().is_empty());
}

#[test]
fn cancel_before_answer_gives_487_and_ends_the_call() {
    let mut h = Harness::new();
    h.send(&request("INVITE", "c6", 1, None, "inv6", OFFER));
    let call = h.incoming();
    h.ua.ring(h.now, call).unwrap();
    assert_eq!(h.statuses(), vec![180]);
    h.send(&request("CANCEL", "c6", 1, None, "inv6", ""));
    let mut st = h.statuses();
    st.sort();
    assert_eq!(st, vec![200, 487]);
    assert_eq!(
        h.events(),
        vec![CallEvent::Ended {
            call,
            reason: EndReason::Cancelled
        }]
    );
    assert!(
        h.ua.answer(h.now, call, Vec::new()).is_err(),
        "a cancelled call cannot be answered"
    );
}

#[test]
fn cancel_that_loses_the_race_against_our_200_leaves_the_call_up() {
    let mut h = Harness::new();
    h.send(&request("INVITE", "c7", 1, None, "inv7", OFFER));
    let call = h.incoming();
    h.ua.answer(h.now, call, b"v=0\r\n".to_vec()).unwrap();
    h.sent();
    h.send(&request("CANCEL", "c7", 1, None, "inv7", ""));
    let st = h.statuses();
    assert!(!st.contains(&487), "{st:?}");
    assert!(h.events().is_empty(), "the call goes on");
    assert_eq!(h.ua.active_calls(), 1);
}

#[test]
fn cancel_for_nothing_gets_481() {
    let mut h = Harness::new();
    h.send(&request("CANCEL", "c8", 1, None, "never", ""));
    assert_eq!(h.statuses(), vec![481]);
}

#[test]
fn late_offer_answer_arrives_in_the_ack() {
    let mut h = Harness::new();
    h.send(&request("INVITE", "c9", 1, None, "inv9", ""));
    let call = match h.events().as_slice() {
        [CallEvent::Incoming(incoming)] if incoming.offer.is_none() => incoming.call,
        other => panic!("{other:?}"),
    };
    h.ua.answer(h.now, call, b"v=0 our offer\r\n".to_vec())
        .unwrap();
    let ok = h.sent().pop().unwrap();
    assert!(ok.contains("Content-Type: application/sdp"));
    let tag = to_tag_of(&ok);
    h.send(&request("ACK", "c9", 1, Some(&tag), "ack9", OFFER));
    assert_eq!(
        h.events(),
        vec![CallEvent::Confirmed {
            call,
            answer: Some(OFFER.as_bytes().to_vec())
        }]
    );
}

#[test]
fn reinvite_is_passed_to_the_call_and_answered() {
    let mut h = Harness::new();
    let (call, tag) = established(&mut h, "c10");
    let hold = OFFER.replace("RTP/AVP 0\r\n", "RTP/AVP 0\r\na=sendonly\r\n");
    h.send(&request("INVITE", "c10", 2, Some(&tag), "re1", &hold));
    assert_eq!(
        h.events(),
        vec![CallEvent::ReInvite {
            call,
            offer: Some(hold.into_bytes())
        }]
    );
    // A second re-INVITE while the first is unanswered waits its turn.
    h.send(&request("INVITE", "c10", 3, Some(&tag), "re2", OFFER));
    assert_eq!(h.statuses(), vec![500]);
    h.ua.answer_reinvite(h.now, call, Ok(b"v=0 recvonly\r\n".to_vec()))
        .unwrap();
    let ok = h.sent().pop().unwrap();
    assert!(
        ok.starts_with("SIP/2.0 200") && ok.contains("CSeq: 2 INVITE"),
        "{ok}"
    );
    h.send(&request("ACK", "c10", 2, Some(&tag), "reack", ""));
    assert_eq!(
        h.events(),
        vec![CallEvent::Confirmed { call, answer: None }]
    );
}

#[test]
fn reinvite_with_old_cseq_is_refused() {
    let mut h = Harness::new();
    let (_call, tag) = established(&mut h, "c11");
    h.send(&request("INVITE", "c11", 1, Some(&tag), "old", OFFER));
    assert_eq!(h.statuses(), vec![500]);
}

#[test]
fn invite_with_non_sdp_body_gets_415() {
    let mut h = Harness::new();
    let inv =
        request("INVITE", "c12", 1, None, "x", OFFER).replace("application/sdp", "text/plain");
    h.send(&inv);
    assert_eq!(h.statuses().last(), Some(&415));
}

#[test]
fn retransmitted_invite_creates_no_second_call() {
    let mut h = Harness::new();
    let inv = request("INVITE", "c13", 1, None, "same", OFFER);
    h.send(&inv);
    h.incoming();
    h.send(&inv);
    assert!(h.events().is_empty());
    assert_eq!(h.ua.active_calls(), 1);
}

#[test]
fn tags_and_branches_repeat_with_the_seed_and_differ_across_seeds() {
    // Our To tag in an OPTIONS answer, our tag for a call, and the branch of our BYE.
    fn drawn(seed: u64) -> (String, String, String) {
        let mut h = Harness::seeded(Transport::Udp, seed);
        h.send(&request("OPTIONS", "o1", 1, None, "opt", ""));
        let options_tag = to_tag_of(&h.sent().pop().unwrap());
        let (call, call_tag) = established(&mut h, "c20");
        h.ua.hangup(h.now, call).unwrap();
        let bye = h.sent().pop().unwrap();
        let via = bye.lines().find(|l| l.starts_with("Via:")).unwrap();
        let branch = via.split("branch=").nth(1).unwrap().split(';').next();
        (options_tag, call_tag, branch.unwrap().to_string())
    }
    let (a, b) = (drawn(1), drawn(1));
    assert_eq!(a, b);
    let c = drawn(2);
    assert!(a.0 != c.0 && a.1 != c.1 && a.2 != c.2, "{a:?} vs {c:?}");
    assert_ne!(a.0, a.1, "each tag is drawn afresh");
}

#[test]
fn a_draining_gateway_refuses_new_calls_and_pings_with_503_but_serves_its_calls() {
    let mut h = Harness::new();
    let (call, tag) = established(&mut h, "c1");
    h.ua.stop_accepting(Duration::from_secs(120));
    h.send(&request("INVITE", "c2", 1, None, "inv2", OFFER));
    h.send(&request("OPTIONS", "o1", 1, None, "opt1", ""));
    let sent: Vec<String> = h
        .sent()
        .into_iter()
        .filter(|m| !m.starts_with("SIP/2.0 100"))
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    for resp in &sent {
        assert!(resp.starts_with("SIP/2.0 503 Draining\r\n"), "{resp}");
        assert!(resp.contains("\r\nRetry-After: 120\r\n"), "{resp}");
    }
    assert!(h.events().is_empty(), "no new call");
    assert_eq!(h.ua.stats().refused_draining, 2);
    // The call in progress ends normally.
    h.send(&request("BYE", "c1", 2, Some(&tag), "bye1", ""));
    assert_eq!(h.statuses(), vec![200]);
    assert_eq!(
        h.events(),
        vec![CallEvent::Ended {
            call,
            reason: EndReason::RemoteBye
        }]
    );
}
