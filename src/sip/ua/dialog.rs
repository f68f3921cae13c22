//! One call's SIP dialog on the carrier side (we are the UAS): identity, CSeq bookkeeping and the
//! requests we build inside it (RFC 3261 §12).
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rsip::headers::UntypedHeader;
use rsip::Header;

use crate::sip::message::{self, header, list_values, uri_part};
use crate::sip::peer::{Peer, Transport};
use crate::sip::transaction::TransactionKey;

/// A call's handle between the SIP core and the call actor that owns its media.
pub type CallRef = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// INVITE received, no final response yet.
    Early,
    /// 2xx sent, waiting for the ACK.
    Answered,
    Confirmed,
    /// We sent BYE and wait for its answer.
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

#[derive(Debug)]
pub struct Dialog {
    pub call: CallRef,
    /// The trunk the call came from: its credentials answer a challenge to our BYE.
    pub trunk: String,
    /// Our BYE was challenged and answered once already: a second challenge is a refusal.
    pub bye_challenged: bool,
    pub call_id: String,
    pub local_tag: String,
    pub peer: Peer,
    /// Our address as the carrier reached it; goes into Via, Contact and SDP.
    pub local: SocketAddr,
    pub state: DialogState,
    /// The initial INVITE: From, To, Contact and Record-Route of the dialog come from it.
    pub invite: rsip::Request,
    pub invite_cseq: u32,
    pub invite_tx: Option<TransactionKey>,
    /// A re-INVITE waiting for the call actor's answer.
    pub reinvite: Option<(TransactionKey, rsip::Request)>,
    pub bye_tx: Option<TransactionKey>,
    pub remote_cseq: u32,
    pub local_cseq: u32,
    pub pending_2xx: Option<Pending2xx>,
}

impl Dialog {
    /// The Contact we put in dialog-creating responses and our own requests.
    pub fn contact(&self) -> String {
        contact_for(self.local, self.peer.transport)
    }

    /// A BYE inside the dialog (RFC 3261 §15.1.1), sent to the carrier's signalling address, with
    /// `branch` (fresh, from [`TransactionLayer::new_branch`]) in its Via.
    ///
    /// [`TransactionLayer::new_branch`]: crate::sip::transaction::TransactionLayer::new_branch
    pub fn bye(&mut self, user_agent: &str, branch: &str) -> rsip::Request {
        self.local_cseq += 1;
        let h = &self.invite.headers;
        // The remote target is the carrier's Contact; without one, its From URI.
        let target = header(h, "Contact")
            .or_else(|| header(h, "From"))
            .map(uri_part)
            .unwrap_or_default();
        let uri = rsip::Uri::try_from(target)
            .or_else(|_| rsip::Uri::try_from(format!("sip:{}", self.peer.addr).as_str()));
        let mut headers = rsip::Headers::default();
        headers.push(Header::Via(rsip::headers::Via::new(format!(
            "SIP/2.0/{} {};branch={};rport",
            self.peer.transport.via_token(),
            self.local,
            branch
        ))));
        // The UAS uses the Record-Route set in the order received (RFC 3261 §12.1.1).
        for route in list_values(h, "Record-Route") {
            headers.push(Header::Route(rsip::headers::Route::new(route)));
        }
        headers.push(Header::MaxForwards(rsip::headers::MaxForwards::new("70")));
        let to_value = header(h, "To").unwrap_or_default();
        headers.push(Header::From(rsip::headers::From::new(format!(
            "{to_value};tag={}",
            self.local_tag
        ))));
        headers.push(Header::To(rsip::headers::To::new(
            header(h, "From").unwrap_or_default(),
        )));
        headers.push(Header::CallId(rsip::headers::CallId::new(
            self.call_id.clone(),
        )));
        headers.push(Header::CSeq(rsip::headers::CSeq::new(format!(
            "{} BYE",
            self.local_cseq
        ))));
        headers.push(Header::UserAgent(rsip::headers::UserAgent::new(user_agent)));
        let mut req = rsip::Request {
            method: rsip::Method::Bye,
            // Only a Contact that rsip cannot parse lands here: the carrier's address will do.
            uri: uri.unwrap_or_default(),
            version: rsip::Version::V2,
            headers,
            body: Vec::new(),
        };
        message::set_body(&mut req.headers, &mut req.body, None, Vec::new());
        req
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
