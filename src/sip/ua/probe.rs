//! OPTIONS pings to a carrier's proxy that stopped answering (RFC 3263 failover): whoever
//! marked it down asks for a probe now and then, and learns whether it answers again. A probe
//! answered with anything but 503 means the proxy is back; no answer (Timer F) or 503 means it
//! is still down.
use std::net::SocketAddr;
use std::time::Instant;

use rsip::headers::UntypedHeader;
use rsip::Header;

use super::UserAgent;
use crate::sip::message;
use crate::sip::peer::Peer;
use crate::sip::transaction::TransactionKey;

impl UserAgent {
    /// Sends an OPTIONS to `peer` (whose host is `host`), from our `local` address; the answer
    /// or its absence comes out of [`UserAgent::poll_probe`].
    pub fn probe(&mut self, now: Instant, peer: Peer, local: SocketAddr, host: &str) {
        let branch = self.tx.new_branch();
        let tag = message::new_tag(&mut self.rng);
        let call_id = format!("{}@{}", message::new_tag(&mut self.rng), local.ip());
        let mut headers = rsip::Headers::default();
        headers.push(Header::Via(rsip::headers::Via::new(format!(
            "SIP/2.0/{} {local};branch={branch};rport",
            peer.transport.via_token()
        ))));
        headers.push(Header::MaxForwards(rsip::headers::MaxForwards::new("70")));
        headers.push(Header::From(rsip::headers::From::new(format!(
            "<sip:trunkgate@{local}>;tag={tag}"
        ))));
        headers.push(Header::To(rsip::headers::To::new(format!("<sip:{host}>"))));
        headers.push(Header::CallId(rsip::headers::CallId::new(call_id)));
        headers.push(Header::CSeq(rsip::headers::CSeq::new("1 OPTIONS")));
        headers.push(Header::UserAgent(rsip::headers::UserAgent::new(
            self.user_agent.clone(),
        )));
        let Ok(uri) = rsip::Uri::try_from(format!("sip:{host}").as_str()) else {
            // A host rsip cannot parse (an IPv6 literal): no probe, it stays down.
            self.probe_results.push_back((peer, false));
            return;
        };
        let mut request = rsip::Request {
            method: rsip::Method::Options,
            uri,
            version: rsip::Version::V2,
            headers,
            body: Vec::new(),
        };
        message::set_body(&mut request.headers, &mut request.body, None, Vec::new());
        let key = self.tx.send_request(now, peer, request);
        self.probes.insert(key, peer);
    }

    /// A probe's outcome: the peer, and whether it answered (with anything but 503).
    pub fn poll_probe(&mut self) -> Option<(Peer, bool)> {
        self.probe_results.pop_front()
    }

    /// The final answer to a probe, or `None` when it timed out. False if `key` is no probe.
    pub(super) fn on_probe_end(&mut self, key: &TransactionKey, status: Option<u16>) -> bool {
        let Some(peer) = self.probes.remove(key) else {
            return false;
        };
        let alive = status.is_some_and(|code| code != 503);
        self.probe_results.push_back((peer, alive));
        true
    }
}
