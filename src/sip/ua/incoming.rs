//! Requests from the carrier: what is answered here (OPTIONS, 403, 405, 481, 483, CANCEL) and
//! what becomes a call event (a new INVITE, a re-INVITE, BYE, INFO, the ACK for our 2xx).
use std::time::Instant;

use rsip::headers::UntypedHeader;
use rsip::Header;

use super::session_timer::UasAnswer;
use super::{CallEvent, Dialog, DialogState, EndReason, IncomingCall, Parties, UserAgent};
use crate::sip::message::{self, call_id, content_type, cseq, max_forwards, response_to, to_tag};
use crate::sip::peer::Peer;
use crate::sip::transaction::TransactionKey;

impl UserAgent {
    pub(super) fn on_ack(&mut self, ack: rsip::Request) {
        let h = &ack.headers;
        let (Some(cid), Some(tag)) = (call_id(h), to_tag(h)) else {
            return;
        };
        let Some(&call) = self.by_dialog_id.get(&(cid.to_string(), tag.to_string())) else {
            return;
        };
        let Some(d) = self.dialogs.get_mut(&call) else {
            return;
        };
        let ack_cseq = cseq(h).map(|c| c.0);
        if d.pending_2xx.as_ref().map(|p| p.cseq) != ack_cseq {
            return; // a retransmitted ACK, or one for another INVITE
        }
        d.pending_2xx = None;
        self.awaiting_ack.remove(&call);
        if d.state == DialogState::Answered {
            d.state = DialogState::Confirmed;
        }
        let answer = (!ack.body.is_empty()).then_some(ack.body);
        self.events.push_back(CallEvent::Confirmed { call, answer });
    }

    pub(super) fn on_request(
        &mut self,
        now: Instant,
        key: TransactionKey,
        peer: Peer,
        req: rsip::Request,
        cancels: Option<TransactionKey>,
    ) {
        let ip = peer.addr.ip();
        let trunk = match self.trunk_of(ip) {
            Some(trunk) => Some(trunk.name.clone()),
            // The carrier of a call we placed: its requests inside the call (BYE, re-INVITE,
            // INFO) and its pings are served, but a new call from an address no trunk allows
            // is still refused.
            None if req.method != rsip::Method::Invite || to_tag(&req.headers).is_some() => {
                self.outgoing_trunk(ip)
            }
            None => None,
        };
        let Some(trunk) = trunk else {
            self.stats.forbidden += 1;
            tracing::info!(%peer, method = %req.method, "request from an address no trunk allows");
            // No Server header: a scanner learns that something answers, not what or which
            // version.
            let tag = message::new_tag(&mut self.rng);
            let resp = response_to(&req, 403, None, Some(&tag));
            return self.respond(now, &key, resp);
        };
        if req.method != rsip::Method::Options && max_forwards(&req.headers) == Some(0) {
            return self.reply(now, &key, &req, 483, None);
        }
        if to_tag(&req.headers).is_some() {
            return self.on_in_dialog(now, key, req);
        }
        if let (Some(retry_after), rsip::Method::Invite | rsip::Method::Options) =
            (self.draining, &req.method)
        {
            // A retransmitted INVITE of a call already taken is the transaction layer's to
            // absorb; anything reaching here is new.
            self.stats.refused_draining += 1;
            let tag = message::new_tag(&mut self.rng);
            let mut resp = response_to(&req, 503, Some("Draining"), Some(&tag));
            message::push(&mut resp.headers, "Retry-After", retry_after.to_string());
            resp.headers.push(Header::Server(rsip::headers::Server::new(
                self.user_agent.clone(),
            )));
            return self.respond(now, &key, resp);
        }
        match req.method {
            rsip::Method::Invite => self.on_invite(now, key, peer, trunk, req),
            rsip::Method::Options => self.reply(now, &key, &req, 200, None),
            rsip::Method::Cancel => self.on_cancel(now, &key, &req, cancels),
            rsip::Method::Bye | rsip::Method::Info | rsip::Method::Update | rsip::Method::PRack => {
                self.stats.no_dialog += 1;
                self.reply(now, &key, &req, 481, None)
            }
            _ => self.reply(now, &key, &req, 405, None),
        }
    }

    pub(super) fn on_invite(
        &mut self,
        now: Instant,
        key: TransactionKey,
        peer: Peer,
        trunk: String,
        req: rsip::Request,
    ) {
        if !req.body.is_empty()
            && !content_type(&req.headers)
                .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/sdp"))
        {
            return self.reply(now, &key, &req, 415, None);
        }
        // RFC 3261 §8.2.2.3: what we do not support is named in Unsupported. `timer` (RFC 4028)
        // is ours while session timers are on.
        let timers = self.session_timers.expires.is_some();
        let unsupported: Vec<&str> = message::list_values(&req.headers, "Require")
            .into_iter()
            .filter(|tag| !(timers && tag.eq_ignore_ascii_case("timer")))
            .collect();
        if !unsupported.is_empty() {
            let tags = unsupported.join(", ");
            tracing::info!(%peer, require = tags, "INVITE requires an extension we lack");
            return self.reply_with_headers(now, &key, &req, 420, None, &[("Unsupported", tags)]);
        }
        if let UasAnswer::TooSmall(min_se) = self.session_timers.negotiate_uas(&req.headers) {
            tracing::info!(%peer, "INVITE's Session-Expires is below our Min-SE: 422");
            return self.reply_too_brief(now, &key, &req, None, min_se);
        }
        let (Some(cid), Some((seq, _))) = (
            call_id(&req.headers).map(str::to_string),
            cseq(&req.headers),
        ) else {
            return self.reply(now, &key, &req, 400, Some("Missing Call-ID or CSeq"));
        };
        let call = self.call_ids.next();
        let local_tag = message::new_tag(&mut self.rng);
        let local = self.current_local.unwrap_or(peer.addr);
        let h = &req.headers;
        let from = message::header(h, "From").unwrap_or_default().to_string();
        let to = message::header(h, "To").unwrap_or_default().to_string();
        let offer = (!req.body.is_empty()).then(|| req.body.clone());
        let dialog = Dialog {
            call,
            trunk: trunk.clone(),
            bye_challenged: false,
            call_id: cid.clone(),
            parties: Parties::of_uas(&req, &local_tag),
            local_tag: local_tag.clone(),
            peer,
            local,
            state: DialogState::Early,
            invite_cseq: seq,
            invite_tx: Some(key.clone()),
            reinvite: None,
            bye_tx: None,
            remote_cseq: Some(seq),
            local_cseq: 0,
            pending_2xx: None,
            told_end: false,
            outgoing: None,
            session: None,
            refresh: None,
            local_sdp: Vec::new(),
            refresh_ack: None,
            invite: req,
        };
        self.by_dialog_id.insert((cid.clone(), local_tag), call);
        self.by_server_tx.insert(key.clone(), call);
        // The INVITE server transaction has already sent 100 Trying.
        self.dialogs.insert(call, dialog);
        self.stats.calls_accepted += 1;
        self.events
            .push_back(CallEvent::Incoming(Box::new(IncomingCall {
                call,
                trunk,
                call_id: cid,
                from,
                to,
                offer,
                local,
                peer,
            })));
    }

    pub(super) fn on_cancel(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        req: &rsip::Request,
        cancels: Option<TransactionKey>,
    ) {
        let call = cancels
            .as_ref()
            .and_then(|k| self.by_server_tx.get(k).copied());
        let Some(call) = call else {
            return self.reply(now, key, req, 481, None);
        };
        self.reply(now, key, req, 200, None);
        let still_ringing = self
            .dialogs
            .get(&call)
            .is_some_and(|d| d.state == DialogState::Early);
        if still_ringing {
            // RFC 3261 §9.2: the INVITE gets 487 and the call ends. A CANCEL that lost the race
            // against our 200 only gets its own 200 and the call stays up.
            let _ = self.provisional_or_final(now, call, 487, None, None);
            if let Some(ev) = self.events.back_mut() {
                *ev = CallEvent::Ended {
                    call,
                    reason: EndReason::Cancelled,
                };
            }
        }
    }

    pub(super) fn on_in_dialog(&mut self, now: Instant, key: TransactionKey, req: rsip::Request) {
        let h = &req.headers;
        let id = (
            call_id(h).unwrap_or_default().to_string(),
            to_tag(h).unwrap_or_default().to_string(),
        );
        let Some(&call) = self.by_dialog_id.get(&id) else {
            self.stats.no_dialog += 1;
            return self.reply(now, &key, &req, 481, None);
        };
        let seq = cseq(h).map(|c| c.0).unwrap_or_default();
        let Some(d) = self.dialogs.get_mut(&call) else {
            return self.reply(now, &key, &req, 481, None);
        };
        if req.method != rsip::Method::Cancel {
            // RFC 3261 §12.2.2: a lower CSeq than one already seen is out of order.
            // A UAC dialog knows no remote CSeq until the callee's first request (§12.1.2).
            if let Some(last) = d.remote_cseq {
                if seq < last || (seq == last && req.method == rsip::Method::Invite) {
                    return self.reply(now, &key, &req, 500, Some("CSeq Out Of Order"));
                }
            }
            d.remote_cseq = Some(seq);
        }
        let tag = d.local_tag.clone();
        match req.method {
            rsip::Method::Bye => {
                let told = d.told_end;
                self.reply_in_dialog(now, &key, &req, 200, &tag);
                self.remove(call);
                // A BYE crossing ours: the call's actor already had its last event.
                if !told {
                    self.events.push_back(CallEvent::Ended {
                        call,
                        reason: EndReason::RemoteBye,
                    });
                }
            }
            rsip::Method::Invite => {
                if d.reinvite.is_some() || d.pending_2xx.is_some() {
                    // RFC 3261 §14.2: one INVITE transaction at a time in each direction.
                    let mut resp = response_to(&req, 500, None, Some(&tag));
                    message::push(&mut resp.headers, "Retry-After", "1");
                    return self.respond(now, &key, resp);
                }
                let our_reinvite = d
                    .refresh
                    .as_ref()
                    .is_some_and(|r| r.request.method == rsip::Method::Invite);
                if our_reinvite {
                    // §14.2: our refresh re-INVITE is pending; the glare answer.
                    return self.reply_in_dialog(now, &key, &req, 491, &tag);
                }
                if let UasAnswer::TooSmall(min_se) = self.session_timers.negotiate_uas(&req.headers)
                {
                    return self.reply_too_brief(now, &key, &req, Some(&tag), min_se);
                }
                let Some(d) = self.dialogs.get_mut(&call) else {
                    return;
                };
                let offer = (!req.body.is_empty()).then(|| req.body.clone());
                d.reinvite = Some((key.clone(), req));
                self.events.push_back(CallEvent::ReInvite { call, offer });
            }
            rsip::Method::Info => {
                self.reply_in_dialog(now, &key, &req, 200, &tag);
                self.events.push_back(CallEvent::Info {
                    call,
                    content_type: content_type(h).unwrap_or_default().to_string(),
                    body: req.body.clone(),
                });
            }
            rsip::Method::Options => self.reply_in_dialog(now, &key, &req, 200, &tag),
            rsip::Method::Update => self.on_update(now, call, key, req, &tag),
            rsip::Method::Notify => self.on_notify(now, call, key, req, &tag),
            rsip::Method::Ack => {}
            _ => self.reply_in_dialog(now, &key, &req, 405, &tag),
        }
    }

    /// An UPDATE inside the dialog (RFC 3311): without a body it is a session refresh (RFC 4028)
    /// or a plain target refresh, answered 200; with one (an SDP offer) it gets 488, as offers
    /// are taken only in INVITEs.
    fn on_update(
        &mut self,
        now: Instant,
        call: super::CallRef,
        key: TransactionKey,
        req: rsip::Request,
        tag: &str,
    ) {
        if !req.body.is_empty() {
            return self.reply_in_dialog(now, &key, &req, 488, tag);
        }
        let Some(d) = self.dialogs.get(&call) else {
            return;
        };
        let up = matches!(d.state, DialogState::Answered | DialogState::Confirmed);
        let contact = d.contact();
        let mut resp = response_to(&req, 200, None, Some(tag));
        match self.session_timers.negotiate_uas(&req.headers) {
            UasAnswer::TooSmall(min_se) => {
                return self.reply_too_brief(now, &key, &req, Some(tag), min_se);
            }
            // Early (before our 2xx) the timer is not running yet: the 2xx to the INVITE sets it.
            _ if up => self.session_uas_2xx(now, call, &req, &mut resp),
            _ => {}
        }
        resp.headers
            .push(Header::Contact(rsip::headers::Contact::new(contact)));
        message::push(&mut resp.headers, "Allow", message::ALLOW);
        resp.headers.push(Header::Server(rsip::headers::Server::new(
            self.user_agent.clone(),
        )));
        message::set_body(&mut resp.headers, &mut resp.body, None, Vec::new());
        self.respond(now, &key, resp);
    }

    /// Answers a request outside any dialog (a fresh To tag on each answer).
    pub(super) fn reply(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        req: &rsip::Request,
        code: u16,
        reason: Option<&str>,
    ) {
        let tag = message::new_tag(&mut self.rng);
        self.reply_with_tag(now, key, req, code, reason, &tag);
    }

    pub(super) fn reply_in_dialog(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        req: &rsip::Request,
        code: u16,
        tag: &str,
    ) {
        self.reply_with_tag(now, key, req, code, None, tag);
    }

    pub(super) fn reply_with_tag(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        req: &rsip::Request,
        code: u16,
        reason: Option<&str>,
        tag: &str,
    ) {
        let mut resp = response_to(req, code, reason, Some(tag));
        if matches!(code, 200 | 405) {
            message::push(&mut resp.headers, "Allow", message::ALLOW);
        }
        if code == 200 && req.method == rsip::Method::Options {
            message::push(&mut resp.headers, "Accept", "application/sdp");
        }
        resp.headers.push(Header::Server(rsip::headers::Server::new(
            self.user_agent.clone(),
        )));
        self.respond(now, key, resp);
    }
}
