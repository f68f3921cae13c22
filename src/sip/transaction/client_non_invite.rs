//! Non-INVITE client transaction: RFC 3261 §17.1.2 (Figure 6). BYE, CANCEL, OPTIONS, REGISTER…
//!
//! ```text
//!          send request; arm E (UDP), F
//!   Trying ──1xx──▶ Proceeding ──200-699──▶ Completed ──K──▶ Terminated
//!     └──────────200-699───────────────────────▲
//!   Trying/Proceeding ──F: Timeout──▶ Terminated
//! ```
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::message::{self, DeliveredResponses, StatusClass};
use super::timer::{ArmedTimers, Timer, TimerConfig};
use super::{Outbox, TransactionEvent, TransactionKey, TransactionState};
use crate::sip::peer::Peer;

pub(super) struct ClientNonInvite {
    key: TransactionKey,
    peer: Peer,
    config: TimerConfig,
    state: TransactionState,
    timers: ArmedTimers,
    pub(super) out: Outbox,
    request_bytes: Bytes,
    /// Timer E's current interval: doubles up to T2 in Trying, T2 in Proceeding.
    retransmit_interval: Duration,
    provisionals: DeliveredResponses,
}

impl ClientNonInvite {
    pub(super) fn new(
        now: Instant,
        key: TransactionKey,
        peer: Peer,
        request: rsip::Request,
        config: TimerConfig,
    ) -> Self {
        let request_bytes = message::encode(request);
        let mut tx = ClientNonInvite {
            key,
            peer,
            config,
            state: TransactionState::Trying,
            timers: ArmedTimers::default(),
            out: Outbox::default(),
            request_bytes: request_bytes.clone(),
            retransmit_interval: config.t1,
            provisionals: DeliveredResponses::default(),
        };
        tx.out.transmit(peer, request_bytes);
        if let Some(interval) = config.duration(Timer::E, peer.transport) {
            tx.retransmit_interval = interval;
            tx.timers.arm(Timer::E, now + interval);
        }
        if let Some(timeout) = config.duration(Timer::F, peer.transport) {
            tx.timers.arm(Timer::F, now + timeout);
        }
        tx
    }

    pub(super) fn state(&self) -> TransactionState {
        self.state
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    pub(super) fn handle_response(&mut self, now: Instant, _from: Peer, response: rsip::Response) {
        let Some(class) = message::status_class(response.status_code.code()) else {
            tracing::debug!(key = %self.key, status = %response.status_code, "dropping response with an impossible status");
            return;
        };
        match (self.state, class) {
            (TransactionState::Trying | TransactionState::Proceeding, StatusClass::Provisional) => {
                // Timer E keeps its deadline; it re-arms at T2 when it next fires (§17.1.2.2).
                self.state = TransactionState::Proceeding;
                if self.provisionals.first_time(&response) {
                    self.deliver(response);
                }
            }
            (TransactionState::Trying | TransactionState::Proceeding, _) => {
                self.timers.disarm_all();
                self.state = TransactionState::Completed;
                self.deliver(response);
                match self.config.duration(Timer::K, self.peer.transport) {
                    Some(wait) if !wait.is_zero() => self.timers.arm(Timer::K, now + wait),
                    _ => self.terminate(),
                }
            }
            // Completed absorbs retransmitted finals until Timer K fires.
            _ => {}
        }
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            match (timer, self.state) {
                (Timer::E, TransactionState::Trying) => {
                    self.out.transmit(self.peer, self.request_bytes.clone());
                    self.retransmit_interval =
                        (self.retransmit_interval.saturating_mul(2)).min(self.config.t2);
                    self.timers.arm(Timer::E, now + self.retransmit_interval);
                }
                (Timer::E, TransactionState::Proceeding) => {
                    self.out.transmit(self.peer, self.request_bytes.clone());
                    self.retransmit_interval = self.config.t2;
                    self.timers.arm(Timer::E, now + self.retransmit_interval);
                }
                (Timer::F, TransactionState::Trying | TransactionState::Proceeding) => {
                    self.out.event(TransactionEvent::Timeout {
                        key: self.key.clone(),
                    });
                    self.terminate();
                }
                (Timer::K, TransactionState::Completed) => self.terminate(),
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

    fn terminate(&mut self) {
        self.timers.disarm_all();
        self.state = TransactionState::Terminated;
        self.out.event(TransactionEvent::Terminated {
            key: self.key.clone(),
        });
    }
}
