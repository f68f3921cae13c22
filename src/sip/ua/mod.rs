//! The carrier-facing user agent: a sans-IO core above the transaction layer.
//!
//! It answers everything that needs no call (OPTIONS, 403 for strangers, 405/481/483), keeps one
//! [`Dialog`] per call, re-sends our 2xx until the ACK comes, and turns the rest into
//! [`CallEvent`]s for the call actors. Call actors answer through [`UserAgent::answer`],
//! [`UserAgent::hangup`] and friends. It also places calls ([`UserAgent::invite`], the UAC side
//! in [`outgoing`]), and keeps RFC 4028 session timers on both kinds ([`session_timer`]), ending
//! a call whose far end stopped refreshing. Time is passed in; the tokio shell drives it.
mod dialog;
mod incoming;
pub mod outgoing;
mod probe;
mod refer;
pub mod register;
pub mod session_timer;
/// The first digest challenge of a 401 (`WWW-Authenticate`) or 407 (`Proxy-Authenticate`) we
/// can read, and the header its answer goes in (`Authorization`, `Proxy-Authorization`).
fn challenge_in(
    response: &rsip::Response,
) -> (Option<crate::sip::digest::Challenge>, &'static str) {
    let (challenge_header, answer_header) = if response.status_code.code() == 401 {
        ("WWW-Authenticate", "Authorization")
    } else {
        ("Proxy-Authenticate", "Proxy-Authorization")
    };
    let challenge = message::headers_named(&response.headers, challenge_header)
        .find_map(|value| crate::sip::digest::Challenge::parse(value).ok());
    (challenge, answer_header)
}

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rsip::headers::UntypedHeader;
use rsip::Header;

use dialog::Pending2xx;
pub use dialog::{contact_for, CallRef, Dialog, DialogState, Parties};
pub use outgoing::{OutgoingCall, NO_RESPONSE};
pub use session_timer::SessionTimerConfig;

use crate::sip::guard::{Guard, GuardConfig, Verdict};
use crate::sip::message::{self, cseq, response_to};
use crate::sip::peer::Peer;
use crate::sip::transaction::{
    TimerConfig, TransactionEvent, TransactionKey, TransactionLayer, Transmit,
};
use crate::sip::trunk::TrunkConfig;

/// What happened to a call, for the call actor that owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// A new call from a trunk. The actor rings, answers or rejects it. Boxed: it is several
    /// times the size of the dialog's later events, and every call's channel for those holds
    /// slots of the enum's size.
    Incoming(Box<IncomingCall>),
    /// The ACK for our 2xx arrived; it carries the answer when the INVITE had no offer.
    Confirmed {
        call: CallRef,
        answer: Option<Vec<u8>>,
    },
    /// A re-INVITE (hold, unhold, new media address); answer with [`UserAgent::answer_reinvite`].
    ReInvite {
        call: CallRef,
        offer: Option<Vec<u8>>,
    },
    /// An INFO inside the dialog (SIP INFO DTMF, later).
    Info {
        call: CallRef,
        content_type: String,
        body: Vec<u8>,
    },
    /// What came of our REFER ([`UserAgent::refer`]): the status of the carrier's new call
    /// (2xx: the caller is with the new party), or the REFER's own refusal.
    Referred { call: CallRef, status: u16 },
    /// The call is over; no more commands for it are accepted.
    Ended { call: CallRef, reason: EndReason },
    /// A provisional response (180, 183…) to our INVITE; `sdp` when it carries the answer
    /// (early media). One per distinct provisional; 100 Trying tells nothing.
    Progress {
        call: CallRef,
        code: u16,
        sdp: Option<Vec<u8>>,
    },
    /// A 2xx to our INVITE; the UA has already sent the ACK. `sdp` is the answer (None if the
    /// 2xx had no body).
    Answered { call: CallRef, sdp: Option<Vec<u8>> },
    /// Our INVITE failed: a final 3xx–6xx (code and reason phrase), 408 when Timer B expired,
    /// 503 when the stream connection to the carrier could not be opened or closed before the
    /// answer; after our own CANCEL, whatever final the INVITE got (487 as a rule), and
    /// `487 cancelled` when the callee answered anyway (the UA ACKed and sent BYE). No more
    /// events for this call follow.
    Failed {
        call: CallRef,
        code: u16,
        reason: String,
    },
}

/// Call references for both directions: incoming calls take theirs in the UA, outgoing ones
/// where they are placed. Clones share one counter.
#[derive(Debug, Clone, Default)]
pub struct CallIds(Arc<AtomicU64>);

impl CallIds {
    /// The next unused reference; the first is 1.
    pub fn next(&self) -> CallRef {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// A new call from a trunk, as its INVITE had it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingCall {
    pub call: CallRef,
    pub trunk: String,
    /// The carrier's Call-ID, for finding the call in the carrier's records.
    pub call_id: String,
    pub from: String,
    pub to: String,
    /// The SDP offer; `None` for a late-offer INVITE (we offer in the 200, the ACK answers).
    pub offer: Option<Vec<u8>>,
    pub local: SocketAddr,
    pub peer: Peer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    RemoteBye,
    Cancelled,
    /// Our 2xx was never acknowledged (64·T1): we sent BYE.
    NoAck,
    /// Our BYE or rejection.
    Local,
    /// The RFC 4028 session timer ran out: no refresh from the peer in time, or our own refresh
    /// met 408, 481 or silence. We sent BYE.
    SessionExpired,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UaError {
    #[error("no call {0}")]
    UnknownCall(CallRef),
    #[error("call {0} is in state {1:?}, cannot {2}")]
    WrongState(CallRef, DialogState, &'static str),
    #[error("call {0} is already in use")]
    CallInUse(CallRef),
    #[error("request uri {0:?} cannot be parsed")]
    InvalidUri(String),
}

/// Counters for ops: what the core refused or dropped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UaStats {
    pub forbidden: u64,
    /// New calls and OPTIONS refused with 503 while draining.
    pub refused_draining: u64,
    /// Our requests (BYE, mostly) that never got an answer.
    pub transaction_timeouts: u64,
    pub no_dialog: u64,
    pub calls_accepted: u64,
}

pub struct UserAgent {
    tx: TransactionLayer,
    timers: TimerConfig,
    user_agent: String,
    trunks: Vec<TrunkConfig>,
    dialogs: HashMap<CallRef, Dialog>,
    /// Dialogs whose 2xx awaits its ACK (a few at a time, against thousands of calls up): the
    /// timers look only at these. An entry may outlive its wait; it is dropped when next seen.
    awaiting_ack: BTreeSet<CallRef>,
    by_dialog_id: HashMap<(String, String), CallRef>,
    by_server_tx: HashMap<TransactionKey, CallRef>,
    by_client_tx: HashMap<TransactionKey, CallRef>,
    /// The carriers of the calls we placed, by address: trunk name → live dialogs. Their
    /// requests inside those calls are not a stranger's.
    outgoing_peers: HashMap<IpAddr, HashMap<String, usize>>,
    call_ids: CallIds,
    /// Our address for the message being handled, so events created from it can carry it.
    current_local: Option<SocketAddr>,
    events: VecDeque<CallEvent>,
    /// 2xx retransmissions, which belong to the UAS core rather than a transaction.
    own_transmits: VecDeque<Transmit>,
    stats: UaStats,
    /// Where our dialog tags come from: the core draws no entropy of its own.
    rng: StdRng,
    /// Draining: new calls and OPTIONS get 503 with this Retry-After (seconds).
    draining: Option<u64>,
    registrations: register::Registrations,
    guard: Guard,
    /// OPTIONS probes on their way, and the outcomes not yet taken ([`UserAgent::probe`]).
    probes: HashMap<TransactionKey, Peer>,
    /// Our REFERs on their way, by the call they transfer.
    refers: HashMap<TransactionKey, CallRef>,
    probe_results: VecDeque<(Peer, bool)>,
    /// RFC 4028 session timers: what we ask for and accept ([`UserAgent::set_session_timers`]).
    session_timers: SessionTimerConfig,
    /// The dialogs' running session timers by when they next fire (see [`session_timer`]).
    session_due: BTreeSet<(Instant, CallRef)>,
    /// Our session refreshes (UPDATE, re-INVITE) in flight.
    refresh_tx: HashMap<TransactionKey, CallRef>,
}

impl UserAgent {
    /// A UA with no calls. `rng` is its only source of randomness (To tags here, Via branches in
    /// the transaction layer, which gets a generator seeded from this one): production passes
    /// `StdRng::from_entropy()`, tests `StdRng::seed_from_u64(n)` so runs repeat.
    pub fn new(
        timers: TimerConfig,
        user_agent: String,
        trunks: Vec<TrunkConfig>,
        mut rng: StdRng,
    ) -> Self {
        let tx_rng = StdRng::from_seed(rng.gen());
        UserAgent {
            rng,
            tx: TransactionLayer::new(timers, tx_rng),
            timers,
            user_agent,
            trunks,
            dialogs: HashMap::new(),
            awaiting_ack: BTreeSet::new(),
            by_dialog_id: HashMap::new(),
            by_server_tx: HashMap::new(),
            by_client_tx: HashMap::new(),
            outgoing_peers: HashMap::new(),
            call_ids: CallIds::default(),
            current_local: None,
            events: VecDeque::new(),
            own_transmits: VecDeque::new(),
            stats: UaStats::default(),
            draining: None,
            registrations: register::Registrations::default(),
            guard: Guard::new(GuardConfig::default()),
            probes: HashMap::new(),
            refers: HashMap::new(),
            probe_results: VecDeque::new(),
            session_timers: SessionTimerConfig::default(),
            session_due: BTreeSet::new(),
            refresh_tx: HashMap::new(),
        }
    }

    /// Where call references come from: share one [`CallIds`] with whatever places calls
    /// ([`UserAgent::invite`]) so both directions draw from one number space. Set it before the
    /// first call.
    pub fn set_call_ids(&mut self, ids: CallIds) {
        self.call_ids = ids;
    }

    /// The allocator this UA takes incoming calls' references from (a clone sharing it).
    pub fn call_ids(&self) -> CallIds {
        self.call_ids.clone()
    }

    /// Stops taking new calls (a drain): a new INVITE, and an OPTIONS ping, get 503 with
    /// `Retry-After`, so carriers and SBCs send calls elsewhere; calls in progress go on.
    pub fn stop_accepting(&mut self, retry_after: std::time::Duration) {
        self.draining = Some(retry_after.as_secs().max(1));
    }

    pub fn is_draining(&self) -> bool {
        self.draining.is_some()
    }

    /// New trunk definitions (config reload); calls in progress keep going.
    pub fn set_trunks(&mut self, trunks: Vec<TrunkConfig>) {
        self.trunks = trunks;
    }

    /// Sends the registrations' due REGISTERs and keep-alives.
    fn drive_registrations(&mut self, now: Instant) {
        let crlf =
            self.registrations
                .handle_timeout(now, &mut self.tx, &self.user_agent, &mut self.rng);
        for peer in crlf {
            self.own_transmits.push_back(Transmit {
                peer,
                payload: Bytes::from_static(b"\r\n\r\n"),
            });
        }
    }

    /// The trunk a request from `ip` belongs to: the first whose `allow` holds it, else the one
    /// registered with a registrar at that address (whose calls come from there).
    fn trunk_of(&self, ip: std::net::IpAddr) -> Option<&TrunkConfig> {
        self.trunks.iter().find(|t| t.accepts(ip)).or_else(|| {
            let registered = self
                .registrations
                .iter()
                .find(|r| r.spec().target.ip() == ip)?;
            self.trunks
                .iter()
                .find(|t| t.name == registered.spec().trunk)
        })
    }

    /// The trunks that register now, resolved; see [`register::Registrations::set`].
    pub fn set_registrations(&mut self, now: Instant, specs: Vec<register::RegistrationSpec>) {
        self.registrations.set(now, specs, &mut self.rng);
        self.drive_registrations(now);
    }

    pub fn registrations(&self) -> impl Iterator<Item = &register::Registration> {
        self.registrations.iter()
    }

    /// A stream connection to `peer` closed or could not be opened: what registered through it
    /// registers again, and a call we placed through it that has no final answer yet fails (503).
    pub fn flow_lost(&mut self, now: Instant, peer: Peer) {
        self.registrations.flow_lost(now, peer);
        self.drive_registrations(now);
        self.outgoing_flow_lost(peer);
    }

    /// The scanner defence's limits ([`Guard`]).
    pub fn set_guard(&mut self, config: GuardConfig) {
        self.guard.set_config(config);
    }

    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    pub fn stats(&self) -> &UaStats {
        &self.stats
    }

    /// Calls in both directions, until their dialogs are gone.
    pub fn active_calls(&self) -> usize {
        self.dialogs.len()
    }

    /// Ends every call (BYE; 480 while an incoming one rings, CANCEL for one we placed that is
    /// not answered yet), for shutdown.
    pub fn hangup_all(&mut self, now: Instant) {
        let calls: Vec<CallRef> = self
            .dialogs
            .values()
            .filter(|d| d.state != DialogState::Terminating)
            .map(|d| d.call)
            .collect();
        for call in calls {
            let _ = self.hangup(now, call);
        }
    }

    /// A parsed message arrived from `peer` on our socket `local`.
    pub fn handle_message(
        &mut self,
        now: Instant,
        peer: Peer,
        local: SocketAddr,
        msg: rsip::SipMessage,
    ) {
        if matches!(msg, rsip::SipMessage::Request(_)) {
            let ip = peer.addr.ip();
            let trusted = self.trunk_of(ip).is_some() || self.outgoing_peers.contains_key(&ip);
            if self.guard.on_request(now, ip, trusted) == Verdict::Silence {
                return;
            }
        }
        self.current_local = Some(local);
        if let Err(e) = self.tx.handle_message(now, peer, msg) {
            tracing::debug!(%peer, error = %e, "message the transaction layer cannot place");
        }
        self.drain_tx_events(now);
        self.current_local = None;
        // A challenge answered goes out now, not at the next timer.
        self.drive_registrations(now);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let retransmit = self
            .awaiting_ack
            .iter()
            .filter_map(|call| self.dialogs.get(call)?.pending_2xx.as_ref())
            .map(|p| p.next.min(p.give_up))
            .min();
        [
            self.tx.poll_timeout(),
            retransmit,
            self.registrations.poll_timeout(),
            self.session_poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.tx.handle_timeout(now);
        self.drain_tx_events(now);
        self.drive_registrations(now);
        let mut no_ack = Vec::new();
        let dialogs = &mut self.dialogs;
        self.awaiting_ack
            .retain(|call| dialogs.get(call).is_some_and(|d| d.pending_2xx.is_some()));
        for call in &self.awaiting_ack {
            let Some(d) = self.dialogs.get_mut(call) else {
                continue;
            };
            let Some(p) = d.pending_2xx.as_mut() else {
                continue;
            };
            if now >= p.give_up {
                no_ack.push(d.call);
            } else if now >= p.next {
                self.own_transmits.push_back(Transmit {
                    peer: d.peer,
                    payload: p.payload.clone(),
                });
                p.interval = (p.interval * 2).min(self.timers.t2);
                p.next = now + p.interval;
            }
        }
        for call in no_ack {
            tracing::info!(
                call,
                "no ACK for our 2xx within 64*T1: ending the call with BYE"
            );
            self.send_bye(now, call);
            self.tell_end(
                call,
                CallEvent::Ended {
                    call,
                    reason: EndReason::NoAck,
                },
            );
        }
        self.session_handle_timeout(now);
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.own_transmits
            .pop_front()
            .or_else(|| self.tx.poll_transmit())
    }

    pub fn poll_event(&mut self) -> Option<CallEvent> {
        self.events.pop_front()
    }

    /// 180 Ringing.
    pub fn ring(&mut self, now: Instant, call: CallRef) -> Result<(), UaError> {
        self.provisional_or_final(now, call, 180, None, None)
    }

    /// 200 OK with our SDP (an answer, or an offer for a late-offer INVITE).
    pub fn answer(&mut self, now: Instant, call: CallRef, sdp: Vec<u8>) -> Result<(), UaError> {
        self.provisional_or_final(now, call, 200, None, Some(sdp))
    }

    /// A final error response to the INVITE (486, 488, 480…); the call ends.
    pub fn reject(
        &mut self,
        now: Instant,
        call: CallRef,
        code: u16,
        reason: Option<&str>,
    ) -> Result<(), UaError> {
        self.provisional_or_final(now, call, code, reason, None)
    }

    /// Answers a pending re-INVITE: `Ok(sdp)` → 200 with it, `Err(code)` → that error (488…).
    pub fn answer_reinvite(
        &mut self,
        now: Instant,
        call: CallRef,
        answer: Result<Vec<u8>, u16>,
    ) -> Result<(), UaError> {
        let d = self
            .dialogs
            .get_mut(&call)
            .ok_or(UaError::UnknownCall(call))?;
        let (key, req) =
            d.reinvite
                .take()
                .ok_or(UaError::WrongState(call, d.state, "answer a re-invite"))?;
        let code = answer.as_ref().err().copied().unwrap_or(200);
        let mut resp = response_to(&req, code, None, Some(&d.local_tag));
        if let Ok(sdp) = answer {
            let sdp = d.next_local_sdp(sdp);
            self.session_uas_2xx(now, call, &req, &mut resp);
            self.decorate_2xx(&mut resp, call, sdp);
        }
        self.respond(now, &key, resp.clone());
        if code == 200 {
            let cseq = cseq(&req.headers).map(|c| c.0).unwrap_or_default();
            self.start_2xx_retransmission(now, call, cseq, resp);
        }
        Ok(())
    }

    /// Ends a call from our side: BYE when answered, 480 while an incoming call still rings,
    /// CANCEL for a call we placed that has no final answer yet (see [`outgoing`]).
    pub fn hangup(&mut self, now: Instant, call: CallRef) -> Result<(), UaError> {
        let d = self.dialogs.get(&call).ok_or(UaError::UnknownCall(call))?;
        if d.outgoing.is_some() && d.state == DialogState::Early {
            self.cancel(now, call);
            return Ok(());
        }
        match d.state {
            DialogState::Early => {
                self.provisional_or_final(now, call, 480, None, None)?;
            }
            DialogState::Answered | DialogState::Confirmed => {
                self.send_bye(now, call);
                // The call is over for its actor now; the dialog lives on until the BYE is
                // answered, to absorb what the carrier still sends in it.
                self.tell_end(
                    call,
                    CallEvent::Ended {
                        call,
                        reason: EndReason::Local,
                    },
                );
            }
            DialogState::Terminating => {}
        }
        Ok(())
    }

    fn provisional_or_final(
        &mut self,
        now: Instant,
        call: CallRef,
        code: u16,
        reason: Option<&str>,
        sdp: Option<Vec<u8>>,
    ) -> Result<(), UaError> {
        let d = self
            .dialogs
            .get_mut(&call)
            .ok_or(UaError::UnknownCall(call))?;
        let (Some(key), DialogState::Early) = (d.invite_tx.clone(), d.state) else {
            return Err(UaError::WrongState(call, d.state, "answer the invite"));
        };
        let mut resp = response_to(&d.invite, code, reason, Some(&d.local_tag));
        if code >= 200 {
            d.invite_tx = None;
        }
        let invite_cseq = d.invite_cseq;
        if (200..300).contains(&code) {
            d.state = DialogState::Answered;
            let sdp = d.next_local_sdp(sdp.unwrap_or_default());
            let invite = d.invite.clone();
            self.session_uas_2xx(now, call, &invite, &mut resp);
            self.decorate_2xx(&mut resp, call, sdp);
            self.respond(now, &key, resp.clone());
            self.start_2xx_retransmission(now, call, invite_cseq, resp);
        } else if code >= 300 {
            self.respond(now, &key, resp);
            self.remove(call);
            self.events.push_back(CallEvent::Ended {
                call,
                reason: EndReason::Local,
            });
        } else {
            if code > 100 {
                let contact = d.contact();
                resp.headers
                    .push(Header::Contact(rsip::headers::Contact::new(contact)));
            }
            self.respond(now, &key, resp);
        }
        Ok(())
    }

    fn decorate_2xx(&self, resp: &mut rsip::Response, call: CallRef, sdp: Vec<u8>) {
        let Some(d) = self.dialogs.get(&call) else {
            return;
        };
        resp.headers
            .push(Header::Contact(rsip::headers::Contact::new(d.contact())));
        message::push(&mut resp.headers, "Allow", message::ALLOW);
        resp.headers.push(Header::Server(rsip::headers::Server::new(
            self.user_agent.clone(),
        )));
        let ct = (!sdp.is_empty()).then_some("application/sdp");
        message::set_body(&mut resp.headers, &mut resp.body, ct, sdp);
    }

    fn start_2xx_retransmission(
        &mut self,
        now: Instant,
        call: CallRef,
        cseq: u32,
        resp: rsip::Response,
    ) {
        if let Some(d) = self.dialogs.get_mut(&call) {
            // Over TCP the transport is reliable and the 2xx is not re-sent, but the ACK is still
            // awaited for 64·T1 before the call is given up.
            let first = if d.peer.transport.is_reliable() {
                now + self.timers.t1 * 64
            } else {
                now + self.timers.t1
            };
            d.pending_2xx = Some(Pending2xx {
                cseq,
                payload: Bytes::from(resp.to_string()),
                next: first,
                interval: self.timers.t1,
                give_up: now + self.timers.t1 * 64,
            });
            self.awaiting_ack.insert(call);
        }
    }

    fn respond(&mut self, now: Instant, key: &TransactionKey, resp: rsip::Response) {
        if let Err(e) = self.tx.respond(now, key, resp) {
            tracing::debug!(error = %e, "response for a finished transaction dropped");
        }
    }

    fn send_bye(&mut self, now: Instant, call: CallRef) {
        self.stop_session(call);
        let Some(d) = self.dialogs.get_mut(&call) else {
            return;
        };
        d.pending_2xx = None;
        d.state = DialogState::Terminating;
        let bye = d.bye(&self.user_agent, &self.tx.new_branch());
        let peer = d.peer;
        let key = self.tx.send_request(now, peer, bye);
        if let Some(d) = self.dialogs.get_mut(&call) {
            d.bye_tx = Some(key.clone());
        }
        self.by_client_tx.insert(key, call);
    }

    /// The call's last event for its actor; nothing more is told about it.
    fn tell_end(&mut self, call: CallRef, event: CallEvent) {
        if let Some(d) = self.dialogs.get_mut(&call) {
            d.told_end = true;
        }
        self.events.push_back(event);
    }

    fn remove(&mut self, call: CallRef) {
        self.stop_session(call);
        if let Some(d) = self.dialogs.remove(&call) {
            if d.outgoing.is_some() {
                self.forget_outgoing_peer(d.peer.addr.ip(), &d.trunk);
            }
            self.by_dialog_id.remove(&(d.call_id, d.local_tag));
            self.by_server_tx.retain(|_, c| *c != call);
            self.by_client_tx.retain(|_, c| *c != call);
            if let Some(r) = d.refresh {
                self.refresh_tx.remove(&r.key);
            }
        }
    }

    fn drain_tx_events(&mut self, now: Instant) {
        while let Some(ev) = self.tx.poll_event() {
            match ev {
                TransactionEvent::Request {
                    key,
                    peer,
                    request,
                    cancels,
                } => self.on_request(now, key, peer, request, cancels),
                TransactionEvent::Ack { request, .. } => self.on_ack(request),
                TransactionEvent::Response { key, response } if self.is_refresh(&key) => {
                    self.on_refresh_response(now, &key, response)
                }
                TransactionEvent::Timeout { key } if self.is_refresh(&key) => {
                    self.stats.transaction_timeouts += 1;
                    self.on_refresh_timeout(now, &key);
                }
                TransactionEvent::Response { key, response } if self.is_outgoing_invite(&key) => {
                    self.on_invite_response(now, &key, response)
                }
                TransactionEvent::Timeout { key } if self.is_outgoing_invite(&key) => {
                    self.stats.transaction_timeouts += 1;
                    self.on_invite_timeout(&key);
                }
                TransactionEvent::Response { key, response } => {
                    let code = response.status_code.code();
                    if code >= 200 && self.on_probe_end(&key, Some(code)) {
                        continue;
                    }
                    if code >= 200 && self.on_refer_end(&key, Some(code)) {
                        continue;
                    }
                    if response.status_code.code() >= 200
                        && !self
                            .registrations
                            .on_transaction_end(now, &key, Some(&response))
                        && !self.answer_bye_challenge(now, &key, &response)
                    {
                        self.on_client_final(&key);
                    }
                }
                TransactionEvent::Timeout { key } => {
                    self.stats.transaction_timeouts += 1;
                    if self.on_probe_end(&key, None) || self.on_refer_end(&key, None) {
                        continue;
                    }
                    if !self.registrations.on_transaction_end(now, &key, None) {
                        self.on_client_final(&key);
                    }
                }
                TransactionEvent::StrayResponse { response, .. } => {
                    self.on_stray_response(now, response)
                }
                TransactionEvent::Terminated { key } => {
                    self.by_server_tx.remove(&key);
                    self.refresh_tx.remove(&key);
                    // An INVITE of ours that has ended (Timer M after its 2xx): what it still
                    // receives is stray and found by its dialog instead.
                    if self.is_outgoing_invite(&key) {
                        self.by_client_tx.remove(&key);
                    }
                }
            }
        }
    }

    /// The credentials of `trunk`, if it has any.
    fn credentials_of(&self, trunk: &str) -> Option<crate::sip::trunk::Credentials> {
        self.trunks
            .iter()
            .find(|t| t.name == trunk)
            .and_then(|t| t.credentials.clone())
    }

    /// A 401/407 to our BYE from a trunk with credentials: the BYE again, answering it (once).
    /// True when it was sent, so the dialog waits for that one's answer.
    fn answer_bye_challenge(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        response: &rsip::Response,
    ) -> bool {
        let code = response.status_code.code();
        if code != 401 && code != 407 {
            return false;
        }
        let Some(&call) = self.by_client_tx.get(key) else {
            return false;
        };
        let Some(dialog) = self.dialogs.get(&call) else {
            return false;
        };
        if dialog.bye_challenged {
            tracing::warn!(call, "the carrier refused our credentials for the BYE");
            return false;
        }
        let Some(credentials) = self.credentials_of(&dialog.trunk) else {
            tracing::info!(
                call,
                "the carrier challenged our BYE and the trunk has no credentials"
            );
            return false;
        };
        let (challenge, answer_header) = challenge_in(response);
        let Some(challenge) = challenge else {
            return false;
        };
        let branch = self.tx.new_branch();
        let cnonce = message::new_tag(&mut self.rng);
        let Some(dialog) = self.dialogs.get_mut(&call) else {
            return false;
        };
        dialog.bye_challenged = true;
        let mut bye = dialog.bye(&self.user_agent, &branch);
        let value = challenge.answer(
            &credentials.username,
            credentials.secret(),
            "BYE",
            &bye.uri.to_string(),
            1,
            &cnonce,
        );
        message::push(&mut bye.headers, answer_header, value);
        let peer = dialog.peer;
        self.by_client_tx.remove(key);
        let key = self.tx.send_request(now, peer, bye);
        if let Some(dialog) = self.dialogs.get_mut(&call) {
            dialog.bye_tx = Some(key.clone());
        }
        self.by_client_tx.insert(key, call);
        true
    }

    /// Our BYE got its final answer or timed out: the dialog is gone either way.
    fn on_client_final(&mut self, key: &TransactionKey) {
        if let Some(call) = self.by_client_tx.remove(key) {
            self.remove(call);
        }
    }
}
