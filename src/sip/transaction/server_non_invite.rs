//! Non-INVITE server transaction: RFC 3261 §17.2.2 (Figure 8).
//!
//! ```text
//!   Trying ──TU 1xx──▶ Proceeding ──TU 200-699; arm J──▶ Completed ──J──▶ Terminated
//!     └──────────TU 200-699; arm J─────────────────────────▲
//! ```
//!
//! There is no timer in Trying or Proceeding: the TU must answer every request it is given.
use std::time::Instant;

use bytes::Bytes;

use super::message::{self, StatusClass};
use super::timer::{ArmedTimers, Timer, TimerConfig};
use super::{Outbox, TransactionEvent, TransactionKey, TransactionState};
use crate::sip::peer::Peer;

pub(super) struct ServerNonInvite {
    key: TransactionKey,
    peer: Peer,
    config: TimerConfig,
    state: TransactionState,
    timers: ArmedTimers,
    pub(super) out: Outbox,
    /// What a retransmitted request gets back; None until the TU has answered.
    last_response: Option<Bytes>,
}

impl ServerNonInvite {
    pub(super) fn new(key: TransactionKey, peer: Peer, config: TimerConfig) -> Self {
        ServerNonInvite {
            key,
            peer,
            config,
            state: TransactionState::Trying,
            timers: ArmedTimers::default(),
            out: Outbox::default(),
            last_response: None,
        }
    }

    pub(super) fn state(&self) -> TransactionState {
        self.state
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// Trying absorbs the retransmission (nothing to say yet); Proceeding and Completed repeat the
    /// last response.
    pub(super) fn handle_retransmission(&mut self) {
        if let Some(last) = &self.last_response {
            self.out.transmit(self.peer, last.clone());
        }
    }

    /// Sends the TU's response if the state allows it; otherwise returns the state that refused.
    pub(super) fn respond(
        &mut self,
        now: Instant,
        class: StatusClass,
        response: rsip::Response,
    ) -> Result<(), TransactionState> {
        if !matches!(
            self.state,
            TransactionState::Trying | TransactionState::Proceeding
        ) {
            return Err(self.state);
        }
        let bytes = message::encode(response);
        self.last_response = Some(bytes.clone());
        self.out.transmit(self.peer, bytes);
        if class == StatusClass::Provisional {
            self.state = TransactionState::Proceeding;
            return Ok(());
        }
        self.state = TransactionState::Completed;
        match self.config.duration(Timer::J, self.peer.transport) {
            Some(wait) if !wait.is_zero() => self.timers.arm(Timer::J, now + wait),
            _ => self.terminate(),
        }
        Ok(())
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            if (timer, self.state) == (Timer::J, TransactionState::Completed) {
                self.terminate();
            }
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
