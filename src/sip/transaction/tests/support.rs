//! Message builders and clock helpers shared by the layer tests. Messages are written as text and
//! parsed, so every test also exercises the bytes a real peer would send.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use rsip::prelude::*;

use super::super::{TimerConfig, TransactionEvent, TransactionKey, TransactionLayer, Transmit};
use crate::sip::peer::{Peer, Transport};

pub(crate) fn alice(transport: Transport) -> Peer {
    Peer::new(transport, SocketAddr::from(([10, 0, 0, 1], 5060)))
}

pub(crate) fn bob(transport: Transport) -> Peer {
    Peer::new(transport, SocketAddr::from(([10, 0, 0, 2], 5060)))
}

/// Virtual time: every test fixes its origin once and names instants as offsets from it.
#[derive(Clone, Copy)]
pub(crate) struct Clock {
    pub origin: Instant,
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            origin: Instant::now(),
        }
    }

    pub fn at_ms(&self, ms: u64) -> Instant {
        self.origin + Duration::from_millis(ms)
    }

    pub fn ms_since_origin(&self, at: Instant) -> u64 {
        // Tests only ever move forward from the origin.
        at.duration_since(self.origin).as_millis() as u64
    }
}

pub(crate) fn layer() -> TransactionLayer {
    seeded_layer(1)
}

/// A layer whose branches come from `StdRng::seed_from_u64(seed)`: the same seed, the same
/// branches, run after run.
pub(crate) fn seeded_layer(seed: u64) -> TransactionLayer {
    TransactionLayer::new(TimerConfig::default(), StdRng::seed_from_u64(seed))
}

fn parse(text: String) -> rsip::SipMessage {
    rsip::SipMessage::try_from(text).expect("test messages are well-formed")
}

pub(crate) fn parse_transmit(transmit: &Transmit) -> rsip::SipMessage {
    rsip::SipMessage::try_from(transmit.payload.clone()).expect("the layer writes parseable SIP")
}

/// A request from `from` as its top Via sent-by, in a dialog-less call `call`.
pub(crate) fn request(
    method: rsip::Method,
    branch: &str,
    cseq: u32,
    from: Peer,
    call: &str,
) -> rsip::Request {
    let text = format!(
        "{method} sip:bob@10.0.0.2 SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {addr};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@10.0.0.1>;tag=alice-{call}\r\n\
         To: <sip:bob@10.0.0.2>\r\n\
         Call-ID: {call}\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:alice@{addr}>\r\n\
         Content-Length: 0\r\n\r\n",
        transport = from.transport.via_token(),
        addr = from.addr,
    );
    match parse(text) {
        rsip::SipMessage::Request(request) => request,
        rsip::SipMessage::Response(_) => unreachable!("a request line was written"),
    }
}

pub(crate) fn invite(branch: &str, from: Peer) -> rsip::Request {
    request(rsip::Method::Invite, branch, 1, from, "call-1")
}

/// The response a UAS core would build for `request`: its Via, From, Call-ID and CSeq, its To
/// with `to_tag` added.
pub(crate) fn response_to(
    request: &rsip::Request,
    code: u16,
    to_tag: Option<&str>,
) -> rsip::Response {
    let mut headers = rsip::Headers::default();
    for header in request.headers.iter() {
        match header {
            rsip::Header::Via(_)
            | rsip::Header::From(_)
            | rsip::Header::CallId(_)
            | rsip::Header::CSeq(_) => headers.push(header.clone()),
            rsip::Header::To(to) => {
                let value = match to_tag {
                    Some(tag) => format!("{};tag={tag}", to.value()),
                    None => to.value().to_string(),
                };
                headers.push(rsip::headers::To::new(value).into());
            }
            _ => {}
        }
    }
    headers.push(rsip::headers::ContentLength::new("0").into());
    rsip::Response {
        status_code: code.into(),
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    }
}

/// The ACK a UAC core sends for a 2xx (§13.2.2.4): a new `branch`, so it matches no transaction.
pub(crate) fn ack_for_2xx(
    invite: &rsip::Request,
    ok: &rsip::Response,
    from: Peer,
    branch: &str,
) -> rsip::Request {
    let mut ack = request(rsip::Method::Ack, branch, 1, from, "call-1");
    ack.headers
        .retain(|header| !matches!(header, rsip::Header::To(_)));
    ack.headers
        .push(ok.to_header().expect("2xx carries To").clone().into());
    ack.uri = invite.uri.clone();
    ack
}

/// The CANCEL for `invite` (§9.1): same top Via, Call-ID, From, To, CSeq number.
pub(crate) fn cancel_for(invite: &rsip::Request) -> rsip::Request {
    let mut cancel = invite.clone();
    cancel.method = rsip::Method::Cancel;
    let seq = invite
        .cseq_header()
        .expect("test INVITEs carry CSeq")
        .seq()
        .expect("test CSeqs parse");
    cancel
        .headers
        .retain(|header| !matches!(header, rsip::Header::CSeq(_)));
    cancel
        .headers
        .push(rsip::headers::CSeq::new(format!("{seq} CANCEL")).into());
    cancel
}

pub(crate) fn transmits(layer: &mut TransactionLayer) -> Vec<Transmit> {
    std::iter::from_fn(|| layer.poll_transmit()).collect()
}

pub(crate) fn events(layer: &mut TransactionLayer) -> Vec<TransactionEvent> {
    std::iter::from_fn(|| layer.poll_event()).collect()
}

pub(crate) fn status_of(transmit: &Transmit) -> Option<u16> {
    match parse_transmit(transmit) {
        rsip::SipMessage::Response(response) => Some(response.status_code.code()),
        rsip::SipMessage::Request(_) => None,
    }
}

pub(crate) fn method_of(transmit: &Transmit) -> Option<rsip::Method> {
    match parse_transmit(transmit) {
        rsip::SipMessage::Request(request) => Some(request.method),
        rsip::SipMessage::Response(_) => None,
    }
}

/// What happened while the clock ran: each transmit and event with the millisecond it happened at.
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    pub transmits: Vec<(u64, Transmit)>,
    pub events: Vec<(u64, TransactionEvent)>,
}

impl Timeline {
    pub fn transmit_times(&self) -> Vec<u64> {
        self.transmits.iter().map(|(at, _)| *at).collect()
    }

    pub fn timeouts(&self) -> Vec<(u64, TransactionKey)> {
        self.events
            .iter()
            .filter_map(|(at, event)| match event {
                TransactionEvent::Timeout { key } => Some((*at, key.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn terminations(&self) -> Vec<(u64, TransactionKey)> {
        self.events
            .iter()
            .filter_map(|(at, event)| match event {
                TransactionEvent::Terminated { key } => Some((*at, key.clone())),
                _ => None,
            })
            .collect()
    }
}

/// Jumps the clock from deadline to deadline until nothing is pending or `until_ms` is reached,
/// recording what the layer does; outputs already queued are recorded at `from_ms`.
pub(crate) fn run_timers(
    layer: &mut TransactionLayer,
    clock: Clock,
    from_ms: u64,
    until_ms: u64,
) -> Timeline {
    let mut timeline = Timeline::default();
    let record = |layer: &mut TransactionLayer, at: u64, timeline: &mut Timeline| {
        for transmit in transmits(layer) {
            timeline.transmits.push((at, transmit));
        }
        for event in events(layer) {
            timeline.events.push((at, event));
        }
    };
    record(layer, from_ms, &mut timeline);
    while let Some(deadline) = layer.poll_timeout() {
        let at = clock.ms_since_origin(deadline);
        if at > until_ms {
            break;
        }
        layer.handle_timeout(deadline);
        assert!(
            layer.poll_timeout().is_none_or(|next| next > deadline),
            "a handled deadline must not stay due"
        );
        record(layer, at, &mut timeline);
    }
    timeline
}

/// `request` with another method, written in both the request line and the CSeq.
pub(crate) fn request_with_method(request: &rsip::Request, method: rsip::Method) -> rsip::Request {
    let mut copy = request.clone();
    copy.method = method;
    copy.headers
        .retain(|header| !matches!(header, rsip::Header::CSeq(_)));
    copy.headers
        .push(rsip::headers::CSeq::new(format!("1 {method}")).into());
    copy
}
