//! Calls we place (we are the UAC): the INVITE and its challenge answer, provisional and final
//! responses, the ACK for a 2xx and its re-sending, CANCEL, and forks (RFC 3261 §13.2, §12.1.2,
//! §9.1, §22.2).
//!
//! The client INVITE transaction (see [`crate::sip::transaction`]) retransmits the INVITE,
//! de-duplicates provisionals and ACKs 3xx–6xx finals itself. What is left here is the TU's part:
//!
//! ```text
//!  invite() ──▶ Early ──1xx──▶ Progress (To tag remembered: an early dialog)
//!                 │  ──2xx──▶ ACK (kept, re-sent for every retransmitted 2xx) ──▶ Confirmed, Answered
//!                 │  ──401/407──▶ the INVITE again with credentials (once; again only if stale)
//!                 │  ──422──▶ the INVITE again asking for its Min-SE (once; RFC 4028 §7.4)
//!                 │  ──3xx–6xx, Timer B, lost connection──▶ Failed, dialog gone
//!  hangup() in Early ──▶ Terminating: CANCEL now if a provisional has arrived, else on the
//!                 first one (§9.1); the INVITE's final then ends the call (Failed); a 2xx
//!                 that wins the race is ACKed and BYEd, and told as Failed{487, "cancelled"}.
//! ```
//!
//! The INVITE offers a session timer and its 2xx decides who refreshes (see
//! [`super::session_timer`]). A 2xx from a second fork (another To tag) is ACKed and then ended
//! with a BYE of its own; the call goes on with the first. Once confirmed, an outgoing dialog is
//! like an incoming one: in-dialog requests from the callee reach it by (Call-ID, our From tag),
//! and `hangup` sends BYE.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::Bytes;
use rsip::headers::UntypedHeader;
use rsip::Header;

use super::session_timer::{min_se_of, session_expires_of, Refresher, SessionExpires};
use super::{contact_for, CallEvent, CallRef, Dialog, DialogState, Parties, UaError, UserAgent};
use crate::sip::message::{self, call_id, content_type, cseq, from_tag, header, to_tag};
use crate::sip::peer::Peer;
use crate::sip::transaction::{Role, TransactionKey, Transmit};

/// Forks whose 2xx we remember the ACK of; a real fork fan-out is a handful.
const REMEMBERED_FORKS: usize = 16;
/// Challenges answered for one INVITE: the first, and then only `stale=true` ones (the nonce
/// expired, the credentials were right), up to this many in all.
const MAX_CHALLENGES: u8 = 3;

/// The reason of a `Failed` our own Timer B gave (408): the carrier never answered at all.
pub const NO_RESPONSE: &str = "no response";

/// A call we place towards a carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingCall {
    /// The trunk it goes out on: its credentials answer challenges.
    pub trunk: String,
    /// Where the INVITE goes (already resolved).
    pub peer: Peer,
    /// Our address as that peer reaches us: goes into Via and Contact.
    pub local: SocketAddr,
    /// e.g. `sip:+4930123456@carrier.example`
    pub request_uri: String,
    /// The From header value WITHOUT tag, e.g. `<sip:+15551230000@carrier.example>`.
    pub from: String,
    /// The To header value, e.g. `<sip:+4930123456@carrier.example>`.
    pub to: String,
    /// Extra headers, e.g. `("P-Asserted-Identity", "<sip:+1555…@host>")`.
    pub headers: Vec<(String, String)>,
    /// Our offer (application/sdp). Empty sends an INVITE without a body, but a late-offer
    /// exchange is not supported: the ACK carries no answer.
    pub sdp: Vec<u8>,
    /// The Call-ID, when the caller wants to know it up front (for its records); `None`: the
    /// UA makes one.
    pub call_id: Option<String>,
}

/// Where our CANCEL stands (§9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    No,
    /// Asked for before any provisional response: sent on the first one.
    Wanted,
    Sent,
}

/// What only a call we placed keeps, beside its [`Dialog`].
#[derive(Debug)]
pub struct Outgoing {
    /// The INVITE client transaction in flight (the latest, after a challenge).
    pub invite_key: TransactionKey,
    /// A provisional response arrived for that transaction, so a CANCEL may be sent.
    pub provisional: bool,
    pub cancel: Cancel,
    /// Challenges answered so far for this call's INVITE.
    pub challenges: u8,
    /// The ACK sent for each 2xx, by the 2xx's To tag: re-sent when that 2xx is retransmitted.
    /// The first is the call's own; the others are forks we ended.
    pub acks: Vec<(String, Bytes)>,
    /// A 422 (RFC 4028 §7.4) has been answered with a larger Session-Expires: another ends the
    /// call.
    pub retried_422: bool,
}

impl UserAgent {
    /// Sends the INVITE for `outgoing` as call `call` (a reference the caller allocated from
    /// the shared [`super::CallIds`]). Its fate arrives as [`CallEvent::Progress`], then
    /// [`CallEvent::Answered`] or [`CallEvent::Failed`]. Errs if `call` is in use or the
    /// Request-URI cannot be parsed; nothing is sent then.
    pub fn invite(
        &mut self,
        now: Instant,
        call: CallRef,
        outgoing: OutgoingCall,
    ) -> Result<(), UaError> {
        if self.dialogs.contains_key(&call) {
            return Err(UaError::CallInUse(call));
        }
        let uri = parse_request_uri(&outgoing.request_uri)
            .ok_or_else(|| UaError::InvalidUri(outgoing.request_uri.clone()))?;
        let OutgoingCall {
            trunk,
            peer,
            local,
            request_uri,
            from,
            to,
            headers: extra,
            sdp,
            call_id,
        } = outgoing;
        let local_tag = message::new_tag(&mut self.rng);
        let cid = call_id
            .filter(|c| !c.is_empty() && !c.contains(char::is_whitespace))
            .unwrap_or_else(|| format!("{}@{}", message::new_tag(&mut self.rng), local.ip()));
        let local_uri = format!("{from};tag={local_tag}");
        let branch = self.tx.new_branch();
        let mut headers = rsip::Headers::default();
        headers.push(Header::Via(rsip::headers::Via::new(format!(
            "SIP/2.0/{} {local};branch={branch};rport",
            peer.transport.via_token()
        ))));
        headers.push(Header::MaxForwards(rsip::headers::MaxForwards::new("70")));
        headers.push(Header::From(rsip::headers::From::new(local_uri.clone())));
        headers.push(Header::To(rsip::headers::To::new(to.clone())));
        headers.push(Header::CallId(rsip::headers::CallId::new(cid.clone())));
        headers.push(Header::CSeq(rsip::headers::CSeq::new("1 INVITE")));
        headers.push(Header::Contact(rsip::headers::Contact::new(contact_for(
            local,
            peer.transport,
        ))));
        message::push(&mut headers, "Allow", message::ALLOW);
        self.push_invite_session_headers(&mut headers);
        headers.push(Header::UserAgent(rsip::headers::UserAgent::new(
            self.user_agent.clone(),
        )));
        for (name, value) in extra {
            // A line break in either would let a caller-supplied value (a number, a name)
            // write headers of its own.
            let breaks = |s: &str| s.chars().any(|c| c == '\r' || c == '\n');
            if name.is_empty() || breaks(&name) || breaks(&value) || name.contains(':') {
                tracing::warn!(call, header = %name.escape_debug(), "extra header dropped: not one header line");
                continue;
            }
            message::push(&mut headers, &name, value);
        }
        let mut invite = rsip::Request {
            method: rsip::Method::Invite,
            uri,
            version: rsip::Version::V2,
            headers,
            body: Vec::new(),
        };
        let ct = (!sdp.is_empty()).then_some("application/sdp");
        message::set_body(&mut invite.headers, &mut invite.body, ct, sdp);
        let key = self.tx.send_request(now, peer, invite.clone());
        let local_sdp = invite.body.clone();
        let dialog = Dialog {
            call,
            trunk: trunk.clone(),
            bye_challenged: false,
            call_id: cid.clone(),
            local_tag: local_tag.clone(),
            // Until a response says otherwise: the early dialog's To and target are the
            // INVITE's (§12.1.2 replaces them from the 2xx).
            parties: Parties {
                local_uri,
                remote_uri: to,
                remote_target: request_uri,
                route_set: Vec::new(),
            },
            peer,
            local,
            state: DialogState::Early,
            invite,
            invite_cseq: 1,
            invite_tx: None,
            reinvite: None,
            bye_tx: None,
            remote_cseq: None,
            local_cseq: 1,
            pending_2xx: None,
            told_end: false,
            session: None,
            refresh: None,
            local_sdp,
            refresh_ack: None,
            outgoing: Some(Box::new(Outgoing {
                invite_key: key.clone(),
                provisional: false,
                cancel: Cancel::No,
                challenges: 0,
                acks: Vec::new(),
                retried_422: false,
            })),
        };
        self.dialogs.insert(call, dialog);
        // The callee's requests inside the call carry our From tag as their To tag.
        self.by_dialog_id.insert((cid, local_tag), call);
        self.by_client_tx.insert(key, call);
        *self
            .outgoing_peers
            .entry(peer.addr.ip())
            .or_default()
            .entry(trunk)
            .or_default() += 1;
        Ok(())
    }

    /// The trunk of a call we placed to `ip`, if one lives.
    pub(super) fn outgoing_trunk(&self, ip: IpAddr) -> Option<String> {
        self.outgoing_peers.get(&ip)?.keys().next().cloned()
    }

    pub(super) fn forget_outgoing_peer(&mut self, ip: IpAddr, trunk: &str) {
        let Some(trunks) = self.outgoing_peers.get_mut(&ip) else {
            return;
        };
        if let Some(n) = trunks.get_mut(trunk) {
            *n -= 1;
            if *n == 0 {
                trunks.remove(trunk);
            }
        }
        if trunks.is_empty() {
            self.outgoing_peers.remove(&ip);
        }
    }

    /// A client INVITE transaction of ours (BYEs and REGISTERs are other methods).
    pub(super) fn is_outgoing_invite(&self, key: &TransactionKey) -> bool {
        key.role() == Role::Client
            && key.method() == rsip::Method::Invite
            && self.by_client_tx.contains_key(key)
    }

    /// The call actor hangs up a call we placed before its final answer: CANCEL it, now if a
    /// provisional response has arrived, else when the first one does (§9.1).
    pub(super) fn cancel(&mut self, now: Instant, call: CallRef) {
        let Some(d) = self.dialogs.get_mut(&call) else {
            return;
        };
        d.state = DialogState::Terminating;
        let Some(o) = d.outgoing.as_mut() else {
            return;
        };
        if o.cancel != Cancel::No {
            return;
        }
        if o.provisional {
            o.cancel = Cancel::Sent;
            self.send_cancel(now, call);
        } else {
            o.cancel = Cancel::Wanted;
        }
    }

    /// The CANCEL for our INVITE (§9.1): its Request-URI, top Via (so the same branch), Route,
    /// From, To (no tag), Call-ID and CSeq number, with method CANCEL. A transaction of its own;
    /// its answer needs nothing from us, the INVITE's final ends the call.
    fn send_cancel(&mut self, now: Instant, call: CallRef) {
        let Some(d) = self.dialogs.get(&call) else {
            return;
        };
        let invite = &d.invite;
        let mut headers = rsip::Headers::default();
        if let Some(via) = invite.headers.iter().find(|h| matches!(h, Header::Via(_))) {
            headers.push(via.clone());
        }
        for h in invite.headers.iter() {
            if matches!(h, Header::Route(_)) {
                headers.push(h.clone());
            }
        }
        headers.push(Header::MaxForwards(rsip::headers::MaxForwards::new("70")));
        for h in invite.headers.iter() {
            if matches!(h, Header::From(_) | Header::To(_) | Header::CallId(_)) {
                headers.push(h.clone());
            }
        }
        headers.push(Header::CSeq(rsip::headers::CSeq::new(format!(
            "{} CANCEL",
            d.invite_cseq
        ))));
        headers.push(Header::UserAgent(rsip::headers::UserAgent::new(
            self.user_agent.clone(),
        )));
        let mut cancel = rsip::Request {
            method: rsip::Method::Cancel,
            uri: invite.uri.clone(),
            version: rsip::Version::V2,
            headers,
            body: Vec::new(),
        };
        message::set_body(&mut cancel.headers, &mut cancel.body, None, Vec::new());
        let peer = d.peer;
        // The CANCEL's own transaction is not mapped: its 200 (or 481) changes nothing, and
        // if it goes unanswered the INVITE's Timer B ends the call.
        self.tx.send_request(now, peer, cancel);
    }

    /// A response for one of our INVITE transactions: each distinct provisional once, the
    /// final once, and 2xx from further forks.
    pub(super) fn on_invite_response(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        response: rsip::Response,
    ) {
        let Some(&call) = self.by_client_tx.get(key) else {
            return;
        };
        match response.status_code.code() {
            100..=199 => self.on_provisional(now, call, key, response),
            200..=299 => self.on_2xx(now, call, response),
            code @ (401 | 407) => {
                if !self.answer_invite_challenge(now, call, key, &response) {
                    self.fail(call, code, reason_phrase(&response.status_code));
                }
            }
            422 => {
                if !self.answer_422(now, call, key, &response) {
                    self.fail(call, 422, reason_phrase(&response.status_code));
                }
            }
            code => self.fail(call, code, reason_phrase(&response.status_code)),
        }
    }

    fn on_provisional(
        &mut self,
        now: Instant,
        call: CallRef,
        key: &TransactionKey,
        response: rsip::Response,
    ) {
        let Some(d) = self.dialogs.get_mut(&call) else {
            return;
        };
        let Some(o) = d.outgoing.as_mut() else {
            return;
        };
        if o.invite_key != *key {
            return;
        }
        o.provisional = true;
        let send_cancel = o.cancel == Cancel::Wanted;
        if send_cancel {
            o.cancel = Cancel::Sent;
        }
        let code = response.status_code.code();
        if d.state == DialogState::Early && code > 100 {
            // An early dialog: until the 2xx, its To (with the tag) is the latest provisional's.
            if to_tag(&response.headers).is_some() {
                if let Some(to) = header(&response.headers, "To") {
                    d.parties.remote_uri = to.to_string();
                }
            }
            let sdp = sdp_of(&response.headers, response.body);
            self.events
                .push_back(CallEvent::Progress { call, code, sdp });
        }
        if send_cancel {
            self.send_cancel(now, call);
        }
    }

    /// A 2xx to our INVITE (§13.2.2.4): the first confirms the dialog (its To tag, Contact and
    /// Record-Route) and is ACKed; a repeat is ACKed again with the same bytes; one from
    /// another fork is ACKed and ended with a BYE.
    fn on_2xx(&mut self, now: Instant, call: CallRef, response: rsip::Response) {
        let Some(d) = self.dialogs.get_mut(&call) else {
            return;
        };
        let Some(o) = d.outgoing.as_mut() else {
            return;
        };
        let tag = to_tag(&response.headers).unwrap_or_default().to_string();
        if let Some((_, ack)) = o.acks.iter().find(|(t, _)| *t == tag) {
            let payload = ack.clone();
            self.own_transmits.push_back(Transmit {
                peer: d.peer,
                payload,
            });
            return;
        }
        if o.acks.len() >= REMEMBERED_FORKS {
            return;
        }
        let first = o.acks.is_empty();
        let fallback = d.invite.uri.to_string();
        let parties = Parties::of_uac(&d.parties.local_uri, &response, &fallback);
        let seq = cseq(&response.headers)
            .map(|c| c.0)
            .unwrap_or(d.invite_cseq);
        let mut ack = parties.request(
            rsip::Method::Ack,
            seq,
            &d.call_id,
            d.local,
            d.peer,
            &self.user_agent,
            &self.tx.new_branch(),
        );
        // §13.2.2.4: the ACK carries the INVITE's credentials.
        for h in d.invite.headers.iter() {
            if let Some((name @ ("Authorization" | "Proxy-Authorization"), value)) =
                message::name_value(h)
            {
                message::push(&mut ack.headers, name, value);
            }
        }
        message::set_body(&mut ack.headers, &mut ack.body, None, Vec::new());
        let payload = Bytes::from(ack.to_string());
        o.acks.push((tag, payload.clone()));
        self.own_transmits.push_back(Transmit {
            peer: d.peer,
            payload,
        });
        if !first {
            tracing::info!(
                call,
                "a second fork answered our INVITE: acknowledging it and ending it"
            );
            let mut bye = parties.request(
                rsip::Method::Bye,
                seq + 1,
                &d.call_id,
                d.local,
                d.peer,
                &self.user_agent,
                &self.tx.new_branch(),
            );
            message::set_body(&mut bye.headers, &mut bye.body, None, Vec::new());
            // Not mapped: its answer changes nothing for the call.
            self.tx.send_request(now, d.peer, bye);
            return;
        }
        d.parties = parties;
        d.local_cseq = d.local_cseq.max(seq);
        if d.state == DialogState::Terminating {
            // We asked to hang up and the callee answered anyway: end the call it created.
            tracing::info!(call, "our INVITE was answered after we cancelled it: BYE");
            self.send_bye(now, call);
            self.tell_end(
                call,
                CallEvent::Failed {
                    call,
                    code: 487,
                    reason: "cancelled".into(),
                },
            );
            return;
        }
        d.state = DialogState::Confirmed;
        self.session_uac_2xx(now, call, &response);
        let sdp = sdp_of(&response.headers, response.body);
        self.events.push_back(CallEvent::Answered { call, sdp });
    }

    /// A 401/407 to our INVITE from a trunk with credentials: the INVITE again, answering it
    /// (§22.2): same Call-ID and From tag, CSeq + 1, a new branch. True when it was sent; false
    /// when the call fails with the challenge's code. A second challenge is a refusal unless it
    /// says the nonce was stale.
    fn answer_invite_challenge(
        &mut self,
        now: Instant,
        call: CallRef,
        key: &TransactionKey,
        response: &rsip::Response,
    ) -> bool {
        let code = response.status_code.code();
        let Some(d) = self.dialogs.get(&call) else {
            return true;
        };
        let Some(o) = d.outgoing.as_ref() else {
            return false;
        };
        if d.state != DialogState::Early {
            // Cancelled meanwhile: the challenge ends the call.
            return false;
        }
        let (challenge, answer_header) = super::challenge_in(response);
        if o.challenges > 0
            && (o.challenges >= MAX_CHALLENGES || !challenge.as_ref().is_some_and(|c| c.stale))
        {
            tracing::warn!(
                call,
                trunk = %d.trunk,
                code,
                "the carrier refused our credentials for the INVITE"
            );
            self.fail(call, code, "credentials refused".into());
            return true;
        }
        let Some(credentials) = self.credentials_of(&d.trunk) else {
            tracing::info!(
                call,
                trunk = %d.trunk,
                code,
                "the carrier challenged our INVITE and the trunk has no credentials"
            );
            return false;
        };
        let Some(challenge) = challenge else {
            tracing::info!(call, code, "a challenge to our INVITE we cannot answer");
            return false;
        };
        let cnonce = message::new_tag(&mut self.rng);
        let old = &d.invite;
        let value = challenge.answer(
            &credentials.username,
            credentials.secret(),
            "INVITE",
            &old.uri.to_string(),
            1,
            &cnonce,
        );
        self.resend_invite(
            now,
            call,
            key,
            &["Authorization", "Proxy-Authorization"],
            &[(answer_header, value)],
        );
        if let Some(o) = self
            .dialogs
            .get_mut(&call)
            .and_then(|d| d.outgoing.as_mut())
        {
            o.challenges += 1;
        }
        true
    }

    /// A 422 to our INVITE (RFC 4028 §7.4): the INVITE again, once, asking for the 422's Min-SE
    /// as Session-Expires and carrying it as our Min-SE. False when the call fails with the 422.
    fn answer_422(
        &mut self,
        now: Instant,
        call: CallRef,
        key: &TransactionKey,
        response: &rsip::Response,
    ) -> bool {
        let Some(d) = self.dialogs.get(&call) else {
            return true;
        };
        let Some(o) = d.outgoing.as_ref() else {
            return false;
        };
        let Some(min_se) = min_se_of(&response.headers) else {
            tracing::info!(call, "422 without Min-SE to our INVITE");
            return false;
        };
        if o.retried_422 || d.state != DialogState::Early || self.session_timers.expires.is_none() {
            return false;
        }
        let ours = session_expires_of(&d.invite.headers)
            .map(|se| se.interval)
            .unwrap_or_default();
        let se = SessionExpires {
            interval: min_se.max(ours),
            refresher: Some(Refresher::Uas),
        };
        tracing::info!(
            call,
            min_se_s = min_se.as_secs(),
            "422 to our INVITE: again with its Min-SE"
        );
        self.resend_invite(
            now,
            call,
            key,
            &["Session-Expires", "x", "Min-SE"],
            &[
                ("Session-Expires", se.value()),
                ("Min-SE", min_se.as_secs().to_string()),
            ],
        );
        if let Some(o) = self
            .dialogs
            .get_mut(&call)
            .and_then(|d| d.outgoing.as_mut())
        {
            o.retried_422 = true;
        }
        true
    }

    /// Our INVITE again after a 401/407 or 422 (§22.2, RFC 4028 §7.4): same Call-ID, From tag,
    /// headers and body, CSeq + 1, a new branch; the headers named in `drop` replaced by `add`.
    fn resend_invite(
        &mut self,
        now: Instant,
        call: CallRef,
        key: &TransactionKey,
        drop: &[&str],
        add: &[(&str, String)],
    ) {
        let branch = self.tx.new_branch();
        let Some(d) = self.dialogs.get_mut(&call) else {
            return;
        };
        let old = &d.invite;
        let seq = d.invite_cseq + 1;
        let mut headers = rsip::Headers::default();
        headers.push(Header::Via(rsip::headers::Via::new(format!(
            "SIP/2.0/{} {};branch={branch};rport",
            d.peer.transport.via_token(),
            d.local
        ))));
        for h in old.headers.iter() {
            let skip = match message::name_value(h) {
                Some((name, _)) => {
                    matches!(name, "Via" | "CSeq" | "Content-Type" | "Content-Length")
                        || drop.iter().any(|n| n.eq_ignore_ascii_case(name))
                }
                None => false,
            };
            if skip {
                continue;
            }
            headers.push(h.clone());
            if matches!(h, Header::CallId(_)) {
                headers.push(Header::CSeq(rsip::headers::CSeq::new(format!(
                    "{seq} INVITE"
                ))));
            }
        }
        for (name, value) in add {
            message::push(&mut headers, name, value.clone());
        }
        let mut invite = rsip::Request {
            method: rsip::Method::Invite,
            uri: old.uri.clone(),
            version: rsip::Version::V2,
            headers,
            body: Vec::new(),
        };
        let ct = (!old.body.is_empty()).then_some("application/sdp");
        message::set_body(&mut invite.headers, &mut invite.body, ct, old.body.clone());
        d.invite = invite.clone();
        d.invite_cseq = seq;
        d.local_cseq = d.local_cseq.max(seq);
        let peer = d.peer;
        let new_key = self.tx.send_request(now, peer, invite);
        if let Some(o) = self
            .dialogs
            .get_mut(&call)
            .and_then(|d| d.outgoing.as_mut())
        {
            o.provisional = false;
            o.invite_key = new_key.clone();
        }
        self.by_client_tx.remove(key);
        self.by_client_tx.insert(new_key, call);
    }

    /// Timer B: our INVITE got no final answer in 64·T1.
    pub(super) fn on_invite_timeout(&mut self, key: &TransactionKey) {
        let Some(&call) = self.by_client_tx.get(key) else {
            return;
        };
        let current = self
            .dialogs
            .get(&call)
            .and_then(|d| d.outgoing.as_ref())
            .is_some_and(|o| o.invite_key == *key && o.acks.is_empty());
        if current {
            tracing::info!(call, "no final answer to our INVITE (Timer B)");
            self.fail(call, 408, NO_RESPONSE.into());
        } else {
            self.by_client_tx.remove(key);
        }
    }

    /// A response no transaction took: a 2xx to one of our INVITEs re-sent after its
    /// transaction ended (our ACK was lost) gets the ACK again; a 2xx from a fork not seen yet is
    /// ACKed and ended.
    pub(super) fn on_stray_response(&mut self, now: Instant, response: rsip::Response) {
        let h = &response.headers;
        if !(200..300).contains(&response.status_code.code())
            || !cseq(h).is_some_and(|(_, m)| m.eq_ignore_ascii_case("INVITE"))
        {
            return;
        }
        let (Some(cid), Some(tag)) = (call_id(h), from_tag(h)) else {
            return;
        };
        let Some(&call) = self.by_dialog_id.get(&(cid.to_string(), tag.to_string())) else {
            return;
        };
        if let Some((seq, _)) = cseq(h) {
            if self.resend_refresh_ack(call, seq) {
                return;
            }
        }
        let ours = self
            .dialogs
            .get(&call)
            .is_some_and(|d| d.outgoing.is_some() && cseq(h).map(|c| c.0) == Some(d.invite_cseq));
        if ours {
            self.on_2xx(now, call, response);
        }
    }

    /// Streams to `peer` are gone: a call we placed through one that has no final answer yet
    /// fails, as its responses can no longer come back the way the INVITE went.
    pub(super) fn outgoing_flow_lost(&mut self, peer: Peer) {
        if !peer.transport.is_reliable() {
            return;
        }
        let lost: Vec<CallRef> = self
            .dialogs
            .values()
            .filter(|d| d.peer == peer)
            .filter(|d| d.outgoing.as_ref().is_some_and(|o| o.acks.is_empty()))
            .map(|d| d.call)
            .collect();
        for call in lost {
            tracing::info!(call, %peer, "connection to the carrier lost before our INVITE was answered");
            self.fail(call, 503, "connection to the carrier lost".into());
        }
    }

    /// Our INVITE failed: the call's last event, and the dialog is gone.
    fn fail(&mut self, call: CallRef, code: u16, reason: String) {
        let told = self.dialogs.get(&call).is_some_and(|d| d.told_end);
        self.remove(call);
        if !told {
            self.events
                .push_back(CallEvent::Failed { call, code, reason });
        }
    }
}

/// A `sip:` or `sips:` URI to put in a request line; rsip alone accepts almost any text.
fn parse_request_uri(text: &str) -> Option<rsip::Uri> {
    let scheme = text.split_once(':')?.0;
    let sip = scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips");
    let clean = !text.chars().any(|c| c.is_whitespace() || c.is_control());
    (sip && clean && text.len() > scheme.len() + 1)
        .then(|| rsip::Uri::try_from(text).ok())
        .flatten()
}

/// The body of a response when it is SDP (or has no Content-Type, as some gateways send it).
fn sdp_of(headers: &rsip::Headers, body: Vec<u8>) -> Option<Vec<u8>> {
    let is_sdp = content_type(headers)
        .is_none_or(|ct| ct.to_ascii_lowercase().starts_with("application/sdp"));
    (!body.is_empty() && is_sdp).then_some(body)
}

/// The reason phrase of a status. rsip keeps the carrier's own phrase only for codes it does not
/// know; for the others its variant name is spelled out (`BusyHere` → `Busy Here`).
pub fn reason_phrase(status: &rsip::StatusCode) -> String {
    if let rsip::StatusCode::Other(_, reason) = status {
        return reason.clone();
    }
    let name = format!("{status:?}");
    let mut out = String::with_capacity(name.len() + 4);
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() && prev_lower {
            out.push(' ');
        }
        prev_lower = c.is_ascii_lowercase();
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests;
