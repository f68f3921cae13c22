//! INVITE client transaction: RFC 3261 §17.1.1 (Figure 5) as amended by RFC 6026 §7.2 (Figure 3),
//! which adds the Accepted state so 2xx retransmissions and forked 2xx still reach the TU.
//!
//! ```text
//!            send INVITE; arm A (UDP), B
//!   Calling ──1xx──▶ Proceeding ──2xx──▶ Accepted ──M──▶ Terminated
//!      │  └───────────2xx───────────────────▲
//!      ├──3xx-6xx: send ACK, arm D ──▶ Completed ──D──▶ Terminated
//!      └──B: Timeout ──▶ Terminated   (also from Proceeding, 64·T1 after the TU's CANCEL)
//! ```
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::message::{self, DeliveredResponses, StatusClass};
use super::timer::{ArmedTimers, Timer, TimerConfig};
use super::{Outbox, TransactionEvent, TransactionKey, TransactionState};
use crate::sip::peer::Peer;

/// Forks a 2xx can come from before we stop telling them apart; a real fork fan-out is a handful.
const REMEMBERED_FORKS: usize = 16;

pub(super) struct ClientInvite {
    key: TransactionKey,
    peer: Peer,
    config: TimerConfig,
    state: TransactionState,
    timers: ArmedTimers,
    pub(super) out: Outbox,
    /// Kept to build the ACK for a 3xx–6xx final.
    invite: rsip::Request,
    invite_bytes: Bytes,
    /// Timer A's current interval; doubles on every firing.
    retransmit_interval: Duration,
    /// Serialised once, re-sent for every retransmission of the final.
    ack: Option<Bytes>,
    provisionals: DeliveredResponses,
    /// To tags of the 2xx finals already delivered: a repeat is a retransmission, a new tag is a
    /// new fork.
    accepted_tags: Vec<Option<String>>,
    /// When the TU sent a CANCEL for this INVITE, if it did: §9.1's 64·T1 runs from there.
    cancelled_at: Option<Instant>,
}

impl ClientInvite {
    pub(super) fn new(
        now: Instant,
        key: TransactionKey,
        peer: Peer,
        invite: rsip::Request,
        config: TimerConfig,
    ) -> Self {
        let invite_bytes = message::encode(invite.clone());
        let mut tx = ClientInvite {
            key,
            peer,
            config,
            state: TransactionState::Calling,
            timers: ArmedTimers::default(),
            out: Outbox::default(),
            invite,
            invite_bytes: invite_bytes.clone(),
            retransmit_interval: config.t1,
            ack: None,
            provisionals: DeliveredResponses::default(),
            accepted_tags: Vec::new(),
            cancelled_at: None,
        };
        tx.out.transmit(peer, invite_bytes);
        if let Some(interval) = config.duration(Timer::A, peer.transport) {
            tx.retransmit_interval = interval;
            tx.timers.arm(Timer::A, now + interval);
        }
        tx.arm(Timer::B, now);
        tx
    }

    pub(super) fn state(&self) -> TransactionState {
        self.state
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    pub(super) fn handle_response(&mut self, now: Instant, from: Peer, response: rsip::Response) {
        let Some(class) = message::status_class(response.status_code.code()) else {
            tracing::debug!(key = %self.key, status = %response.status_code, "dropping response with an impossible status");
            return;
        };
        use StatusClass::*;
        use TransactionState::*;
        match (self.state, class) {
            (Calling | Proceeding, Provisional) => {
                if self.state == Calling {
                    self.timers.disarm(Timer::A);
                    self.timers.disarm(Timer::B);
                    self.state = Proceeding;
                    if let Some(cancelled_at) = self.cancelled_at {
                        self.arm(Timer::B, cancelled_at);
                    }
                }
                if self.provisionals.first_time(&response) {
                    self.deliver(response);
                }
            }
            (Calling | Proceeding, Success) => {
                self.timers.disarm_all();
                self.state = Accepted;
                self.accepted_tags.push(message::to_tag(&response.headers));
                self.deliver(response);
                self.arm(Timer::M, now);
            }
            (Calling | Proceeding, Failure) => {
                self.timers.disarm_all();
                self.state = Completed;
                let ack = message::encode(message::ack_for(&self.invite, &response));
                self.out.transmit(self.peer, ack.clone());
                self.ack = Some(ack);
                self.deliver(response);
                self.arm(Timer::D, now);
            }
            (Completed, Failure) => {
                if let Some(ack) = &self.ack {
                    self.out.transmit(self.peer, ack.clone());
                }
            }
            (Accepted, Success) => {
                let tag = message::to_tag(&response.headers);
                if self.accepted_tags.contains(&tag) || self.accepted_tags.len() >= REMEMBERED_FORKS
                {
                    self.stray(from, response);
                } else {
                    self.accepted_tags.push(tag);
                    self.deliver(response);
                }
            }
            // A 2xx after we already gave up on a non-2xx final: RFC 3261 has no place for it, but
            // the TU may still want to ACK and BYE the dialog it would create.
            (Completed, Success) => self.stray(from, response),
            // Provisionals after a final, non-2xx finals after a 2xx: nothing the TU can use.
            _ => {}
        }
    }

    /// The TU sent a CANCEL for this INVITE. §9.1: if no final response arrives within 64·T1 the
    /// INVITE is given up; Timer B carries that deadline. In Calling, Timer B is running already
    /// and is re-armed from the CANCEL if a provisional moves us on to Proceeding.
    pub(super) fn cancel_sent(&mut self, now: Instant) {
        if self.cancelled_at.is_some() {
            return;
        }
        self.cancelled_at = Some(now);
        if self.state == TransactionState::Proceeding {
            self.arm(Timer::B, now);
        }
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            match (timer, self.state) {
                (Timer::A, TransactionState::Calling) => {
                    self.out.transmit(self.peer, self.invite_bytes.clone());
                    self.retransmit_interval = self.retransmit_interval.saturating_mul(2);
                    self.timers.arm(Timer::A, now + self.retransmit_interval);
                }
                (Timer::B, TransactionState::Calling | TransactionState::Proceeding) => {
                    self.out.event(TransactionEvent::Timeout {
                        key: self.key.clone(),
                    });
                    self.terminate();
                }
                (Timer::D, TransactionState::Completed)
                | (Timer::M, TransactionState::Accepted) => self.terminate(),
                _ => {}
            }
        }
    }

    fn deliver(&mut self, response: rsip::Response) {
        self.out.event(TransactionEvent::Response {
            key: self.key.clone(),
            response,
        });
    }

    fn stray(&mut self, peer: Peer, response: rsip::Response) {
        self.out
            .event(TransactionEvent::StrayResponse { peer, response });
    }

    /// Arms `timer` for its configured duration, or leaves the state at once when that duration is
    /// zero (Timer D over reliable transports).
    fn arm(&mut self, timer: Timer, now: Instant) {
        match self.config.duration(timer, self.peer.transport) {
            Some(Duration::ZERO) => self.terminate(),
            Some(duration) => self.timers.arm(timer, now + duration),
            None => {}
        }
    }

    fn terminate(&mut self) {
        self.timers.disarm_all();
        self.state = TransactionState::Terminated;
        self.out.event(TransactionEvent::Terminated {
            key: self.key.clone(),
        });
    }
}
