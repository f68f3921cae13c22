//! INVITE server transaction: RFC 3261 §17.2.1 (Figure 7) as amended by RFC 6026 §7.1 (Figure 5):
//! after a 2xx the transaction stays in Accepted to absorb INVITE retransmissions instead of
//! vanishing and letting them through as new calls.
//!
//! ```text
//!   INVITE: send 100 Trying
//!   Proceeding ──TU 2xx──▶ Accepted ──L──▶ Terminated
//!       └──TU 3xx-6xx; arm G (UDP), H──▶ Completed ──ACK; arm I──▶ Confirmed ──I──▶ Terminated
//!                                           └──H: Timeout──▶ Terminated
//! ```
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::message::{self, StatusClass};
use super::timer::{ArmedTimers, Timer, TimerConfig};
use super::{Outbox, TransactionEvent, TransactionKey, TransactionState};
use crate::sip::peer::Peer;

pub(super) struct ServerInvite {
    key: TransactionKey,
    peer: Peer,
    config: TimerConfig,
    state: TransactionState,
    timers: ArmedTimers,
    pub(super) out: Outbox,
    /// What a retransmitted INVITE gets back: the latest provisional in Proceeding, the final in
    /// Completed.
    last_response: Bytes,
    /// Timer G's current interval: doubles up to T2.
    retransmit_interval: Duration,
}

impl ServerInvite {
    /// Sends 100 Trying straight away. §17.2.1 allows waiting 200 ms for the TU to answer first,
    /// but our TU sits behind a channel hop, and an early 100 both stops the client's Timer A and
    /// moves it out of Calling, where Timer B would give up on a slow-ringing call.
    pub(super) fn new(
        key: TransactionKey,
        peer: Peer,
        invite: &rsip::Request,
        config: TimerConfig,
    ) -> Self {
        let trying = message::encode(message::trying_for(invite));
        let mut tx = ServerInvite {
            key,
            peer,
            config,
            state: TransactionState::Proceeding,
            timers: ArmedTimers::default(),
            out: Outbox::default(),
            last_response: trying.clone(),
            retransmit_interval: config.t1,
        };
        tx.out.transmit(peer, trying);
        tx
    }

    pub(super) fn state(&self) -> TransactionState {
        self.state
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// The client retransmitted its INVITE because our last response was lost or slow.
    pub(super) fn handle_retransmission(&mut self) {
        match self.state {
            TransactionState::Proceeding | TransactionState::Completed => {
                self.out.transmit(self.peer, self.last_response.clone())
            }
            // Accepted: RFC 6026 §8.5 absorbs it; re-sending the 2xx is the TU's job.
            // Confirmed: the client has our final already, as its ACK showed.
            _ => {}
        }
    }

    pub(super) fn handle_ack(&mut self, now: Instant, from: Peer, ack: rsip::Request) {
        match self.state {
            TransactionState::Completed => {
                self.timers.disarm_all();
                self.state = TransactionState::Confirmed;
                match self.config.duration(Timer::I, self.peer.transport) {
                    Some(wait) if !wait.is_zero() => self.timers.arm(Timer::I, now + wait),
                    _ => self.terminate(),
                }
            }
            // RFC 6026 §8.7: an ACK matching an accepted INVITE goes to the TU, which owns the 2xx.
            TransactionState::Accepted => self.out.event(TransactionEvent::Ack {
                peer: from,
                request: ack,
            }),
            // Confirmed: ACK retransmissions are absorbed. Proceeding: an ACK before any final
            // acknowledges nothing.
            _ => {}
        }
    }

    /// Sends the TU's response if the state allows it; otherwise returns the state that refused.
    pub(super) fn respond(
        &mut self,
        now: Instant,
        class: StatusClass,
        response: rsip::Response,
    ) -> Result<(), TransactionState> {
        let bytes = message::encode(response);
        match (self.state, class) {
            (TransactionState::Proceeding, StatusClass::Provisional) => {
                self.send(bytes);
            }
            (TransactionState::Proceeding, StatusClass::Success) => {
                self.send(bytes);
                self.state = TransactionState::Accepted;
                if let Some(wait) = self.config.duration(Timer::L, self.peer.transport) {
                    self.timers.arm(Timer::L, now + wait);
                }
            }
            // RFC 6026 §8.5: 2xx retransmissions from the TU pass through while Accepted.
            (TransactionState::Accepted, StatusClass::Success) => {
                self.out.transmit(self.peer, bytes);
            }
            (TransactionState::Proceeding, StatusClass::Failure) => {
                self.send(bytes);
                self.state = TransactionState::Completed;
                if let Some(interval) = self.config.duration(Timer::G, self.peer.transport) {
                    self.retransmit_interval = interval;
                    self.timers.arm(Timer::G, now + interval);
                }
                if let Some(wait) = self.config.duration(Timer::H, self.peer.transport) {
                    self.timers.arm(Timer::H, now + wait);
                }
            }
            (state, _) => return Err(state),
        }
        Ok(())
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            match (timer, self.state) {
                (Timer::G, TransactionState::Completed) => {
                    self.out.transmit(self.peer, self.last_response.clone());
                    self.retransmit_interval =
                        (self.retransmit_interval.saturating_mul(2)).min(self.config.t2);
                    self.timers.arm(Timer::G, now + self.retransmit_interval);
                }
                (Timer::H, TransactionState::Completed) => {
                    self.out.event(TransactionEvent::Timeout {
                        key: self.key.clone(),
                    });
                    self.terminate();
                }
                (Timer::I, TransactionState::Confirmed)
                | (Timer::L, TransactionState::Accepted) => self.terminate(),
                _ => {}
            }
        }
    }

    fn send(&mut self, bytes: Bytes) {
        self.last_response = bytes.clone();
        self.out.transmit(self.peer, bytes);
    }

    fn terminate(&mut self) {
        self.timers.disarm_all();
        self.state = TransactionState::Terminated;
        self.out.event(TransactionEvent::Terminated {
            key: self.key.clone(),
        });
    }
}
