//! One call's SIP dialog on the carrier side, whichever side started it: identity, CSeq
//! bookkeeping and the requests we build inside it (RFC 3261 §12).
//!
//! The dialog's identity (our URI and tag, theirs, the remote target and the route set) is kept
//! as it was established, so in-dialog requests are built alike for both roles: for a call we
//! took (UAS) from the INVITE at creation (§12.1.1), for a call we placed (UAC) from the 2xx
//! (§12.1.2, see [`super::outgoing`]).
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rsip::headers::UntypedHeader;
use rsip::Header;

use super::outgoing::Outgoing;
use super::session_timer::{sdp_version, with_sdp_version, Refresh, SessionTimer};
use crate::sip::message::{self, header, list_values, uri_part};
use crate::sip::peer::{Peer, Transport};
use crate::sip::transaction::TransactionKey;

/// A call's handle between the SIP core and the call actor that owns its media.
pub type CallRef = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// INVITE received (UAS) or sent (UAC), no final response yet.
    Early,
    /// 2xx sent, waiting for the ACK (UAS only: a UAC goes from Early to Confirmed as it ACKs).
    Answered,
    Confirmed,
    /// We sent BYE and wait for its answer; for a call we placed and are cancelling, we wait
    /// for the INVITE's final response.
    Terminating,
}

/// A 2xx to an INVITE that the UAS core re-sends until the ACK arrives (RFC 3261 §13.3.1.4):
/// the transaction layer stops caring once it has passed the 2xx on.
#[derive(Debug)]
pub struct Pending2xx {
    pub cseq: u32,
    pub payload: Bytes,
    pub next: Instant,
    pub interval: Duration,
    pub give_up: Instant,
}

/// Who a dialog is between and how our requests inside it reach the far side (RFC 3261 §12.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parties {
    /// Our side as in our requests' From: the URI with our tag.
    pub local_uri: String,
    /// Their side as in our requests' To: the URI with their tag once known (a UAC learns it
    /// from the responses).
    pub remote_uri: String,
    /// Where our in-dialog requests go: their Contact.
    pub remote_target: String,
    /// Route headers for our in-dialog requests, in the order they are sent.
    pub route_set: Vec<String>,
}

impl Parties {
    /// What a UAS dialog takes from the INVITE that created it (§12.1.1): our URI is its To with
    /// our tag, theirs its From, the remote target its Contact (its From URI when it has none),
    /// and the route set its Record-Route in the order received.
    pub fn of_uas(invite: &rsip::Request, local_tag: &str) -> Parties {
        let h = &invite.headers;
        let to = header(h, "To").unwrap_or_default();
        Parties {
            local_uri: format!("{to};tag={local_tag}"),
            remote_uri: header(h, "From").unwrap_or_default().to_string(),
            remote_target: header(h, "Contact")
                .or_else(|| header(h, "From"))
                .map(uri_part)
                .unwrap_or_default()
                .to_string(),
            route_set: list_values(h, "Record-Route")
                .into_iter()
                .map(str::to_string)
                .collect(),
        }
    }

    /// What a UAC dialog takes from the 2xx (or early 1xx) that establishes it (§12.1.2): our
    /// URI is our From as sent, theirs the response's To (with their tag), the remote target its
    /// Contact (`fallback_target`, the Request-URI, when it has none), and the route set its
    /// Record-Route in reverse order.
    pub fn of_uac(local_uri: &str, response: &rsip::Response, fallback_target: &str) -> Parties {
        let h = &response.headers;
        Parties {
            local_uri: local_uri.to_string(),
            remote_uri: header(h, "To").unwrap_or_default().to_string(),
            remote_target: header(h, "Contact")
                .map(uri_part)
                .unwrap_or(fallback_target)
                .to_string(),
            route_set: list_values(h, "Record-Route")
                .into_iter()
                .rev()
                .map(str::to_string)
                .collect(),
        }
    }

    /// A request inside the dialog (§12.2.1.1): Request-URI the remote target, our Via (`local`
    /// over `peer`'s transport, with `branch`), the route set, From and To, `call_id`, and CSeq
    /// `cseq` with the method. No body and no Content-Length: the caller sets those.
    ///
    /// Loose routing only: with a route set the request still goes to `peer`, the next hop we
    /// already know, and a strict-routing first hop (no `lr`) is not rewritten into the
    /// Request-URI; carriers' SBCs route loosely.
    #[allow(clippy::too_many_arguments)]
    pub fn request(
        &self,
        method: rsip::Method,
        cseq: u32,
        call_id: &str,
        local: SocketAddr,
        peer: Peer,
        user_agent: &str,
        branch: &str,
    ) -> rsip::Request {
        let uri = rsip::Uri::try_from(self.remote_target.as_str())
            .or_else(|_| rsip::Uri::try_from(format!("sip:{}", peer.addr).as_str()));
        let mut headers = rsip::Headers::default();
        headers.push(Header::Via(rsip::headers::Via::new(format!(
            "SIP/2.0/{} {local};branch={branch};rport",
            peer.transport.via_token(),
        ))));
        for route in &self.route_set {
            headers.push(Header::Route(rsip::headers::Route::new(route.clone())));
        }
        headers.push(Header::MaxForwards(rsip::headers::MaxForwards::new("70")));
        headers.push(Header::From(rsip::headers::From::new(
            self.local_uri.clone(),
        )));
        headers.push(Header::To(rsip::headers::To::new(self.remote_uri.clone())));
        headers.push(Header::CallId(rsip::headers::CallId::new(call_id)));
        headers.push(Header::CSeq(rsip::headers::CSeq::new(format!(
            "{cseq} {method}"
        ))));
        headers.push(Header::UserAgent(rsip::headers::UserAgent::new(user_agent)));
        rsip::Request {
            method,
            // Only a remote target that rsip cannot parse lands here: the peer's address will do.
            uri: uri.unwrap_or_default(),
            version: rsip::Version::V2,
            headers,
            body: Vec::new(),
        }
    }
}

#[derive(Debug)]
pub struct Dialog {
    pub call: CallRef,
    /// The trunk the call came from or was placed through: its credentials answer challenges.
    pub trunk: String,
    /// Our BYE was challenged and answered once already: a second challenge is a refusal.
    pub bye_challenged: bool,
    pub call_id: String,
    pub local_tag: String,
    /// From, To, remote target and route set of our requests inside the dialog.
    pub parties: Parties,
    pub peer: Peer,
    /// Our address as the carrier reached it; goes into Via, Contact and SDP.
    pub local: SocketAddr,
    pub state: DialogState,
    /// The initial INVITE: for a UAS the one received (our responses are built from it), for a
    /// UAC the one we sent last (a CANCEL copies it, a challenge answer re-sends it).
    pub invite: rsip::Request,
    pub invite_cseq: u32,
    /// The server INVITE transaction still to be answered (UAS only).
    pub invite_tx: Option<TransactionKey>,
    /// A re-INVITE waiting for the call actor's answer.
    pub reinvite: Option<(TransactionKey, rsip::Request)>,
    pub bye_tx: Option<TransactionKey>,
    /// The highest CSeq seen in the remote side's requests; unknown for a UAC until the callee
    /// sends its first request (§12.1.2).
    pub remote_cseq: Option<u32>,
    pub local_cseq: u32,
    pub pending_2xx: Option<Pending2xx>,
    /// The call's actor has had its last event (Ended or Failed): nothing more is told, say
    /// when the carrier's BYE crosses ours.
    pub told_end: bool,
    /// What only a call we placed has: its INVITE transaction, CANCEL and ACK state.
    pub outgoing: Option<Box<Outgoing>>,
    /// The RFC 4028 session timer, while one runs (see [`super::session_timer`]).
    pub session: Option<SessionTimer>,
    /// Our session refresh (UPDATE or re-INVITE) awaiting its final answer.
    pub refresh: Option<Refresh>,
    /// The SDP we sent last (our offer or answer): a refresh re-INVITE offers it again.
    pub local_sdp: Vec<u8>,
    /// The ACK for the 2xx to our last refresh re-INVITE (its CSeq and bytes), re-sent when that
    /// 2xx is.
    pub refresh_ack: Option<(u32, Bytes)>,
}

impl Dialog {
    /// `sdp` from the call, about to be sent as our answer or offer: remembered as the SDP we sent
    /// last. After a refresh re-INVITE of ours bumped the `o=` version, the call's own counter may
    /// lag behind it; a changed SDP then gets the next version after ours (RFC 3264 §8).
    pub fn next_local_sdp(&mut self, sdp: Vec<u8>) -> Vec<u8> {
        let sdp = match (sdp_version(&self.local_sdp), sdp_version(&sdp)) {
            (Some(last), Some(v)) if v <= last && sdp != self.local_sdp => {
                with_sdp_version(&sdp, last.wrapping_add(1)).unwrap_or(sdp)
            }
            _ => sdp,
        };
        self.local_sdp = sdp.clone();
        sdp
    }

    /// The Contact we put in dialog-creating responses and our own requests.
    pub fn contact(&self) -> String {
        contact_for(self.local, self.peer.transport)
    }

    /// A BYE inside the dialog (RFC 3261 §15.1.1), sent to the carrier's signalling address, with
    /// `branch` (fresh, from [`TransactionLayer::new_branch`]) in its Via. The same for both
    /// roles: From, To, Request-URI and Route come from [`Dialog::parties`].
    ///
    /// [`TransactionLayer::new_branch`]: crate::sip::transaction::TransactionLayer::new_branch
    pub fn bye(&mut self, user_agent: &str, branch: &str) -> rsip::Request {
        self.local_cseq += 1;
        let mut req = self.request(rsip::Method::Bye, self.local_cseq, user_agent, branch);
        message::set_body(&mut req.headers, &mut req.body, None, Vec::new());
        req
    }

    /// A request inside the dialog; see [`Parties::request`].
    pub fn request(
        &self,
        method: rsip::Method,
        cseq: u32,
        user_agent: &str,
        branch: &str,
    ) -> rsip::Request {
        self.parties.request(
            method,
            cseq,
            &self.call_id,
            self.local,
            self.peer,
            user_agent,
            branch,
        )
    }
}

pub fn contact_for(local: SocketAddr, transport: Transport) -> String {
    let host = match local {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    };
    match transport {
        Transport::Udp => format!("<sip:trunkgate@{host}>"),
        Transport::Tcp => format!("<sip:trunkgate@{host};transport=tcp>"),
        // Not `sips:`: that scheme promises TLS on every hop to the end (RFC 5630 §3.1.3),
        // which we cannot know, and UAs that do not implement it (baresip 1.0) cannot even
        // send their ACK to it.
        Transport::Tls => format!("<sip:trunkgate@{host};transport=tls>"),
    }
}
