//! Two transaction layers wired back to back in memory, each with a minimal scripted TU, the clock
//! jumping to the earliest deadline on either side (quinn-proto's `Pair`). Loss is injected by
//! dropping chosen transmits, so every recovery path the RFC relies on is exercised end to end.
use std::time::{Duration, Instant};

use rsip::Method;

use super::super::{
    TimerConfig, TransactionEvent, TransactionKey, TransactionLayer, TransactionState, Transmit,
};
use super::support::{
    ack_for_2xx, alice, bob, cancel_for, invite, parse_transmit, response_to, seeded_layer, Clock,
};
use crate::sip::peer::{Peer, Transport};

/// Which transmits of one endpoint the network loses, by the order they were sent.
#[derive(Debug, Clone, Default)]
pub(crate) struct Loss {
    pub drop: Vec<bool>,
}

impl Loss {
    pub fn first(count: usize) -> Self {
        Loss {
            drop: vec![true; count],
        }
    }

    pub fn nth(index: usize) -> Self {
        let mut drop = vec![false; index + 1];
        drop[index] = true;
        Loss { drop }
    }

    fn drops(&self, index: usize) -> bool {
        self.drop.get(index).copied().unwrap_or(false)
    }
}

pub(crate) struct Endpoint {
    pub layer: TransactionLayer,
    /// The address the other side sees this endpoint at.
    pub address: Peer,
    pub loss: Loss,
    pub sent: usize,
    pub delivered: usize,
}

impl Endpoint {
    /// An endpoint whose layer draws its branches from `seed`.
    fn new(address: Peer, loss: Loss, seed: u64) -> Self {
        Endpoint {
            layer: seeded_layer(seed),
            address,
            loss,
            sent: 0,
            delivered: 0,
        }
    }
}

/// The calling side's TU: sends the INVITE, ACKs every 2xx (again for each retransmission, which
/// comes back as `StrayResponse`), optionally CANCELs once it hears ringing.
#[derive(Default)]
pub(crate) struct Caller {
    pub invite: Option<rsip::Request>,
    pub invite_key: Option<TransactionKey>,
    pub cancel_on_ringing: bool,
    pub cancel_key: Option<TransactionKey>,
    pub provisionals: Vec<u16>,
    pub finals: Vec<u16>,
    pub cancel_finals: Vec<u16>,
    pub acks_sent: usize,
    pub timeouts: Vec<TransactionKey>,
    /// How long the caller lets it ring before sending CANCEL, as a real UAC core would; without
    /// it an INVITE whose final is lost for good stays in Proceeding forever, as RFC 3261 says.
    pub ring_timeout: Option<Duration>,
    ack: Option<rsip::Request>,
    give_up_ringing_at: Option<Instant>,
}

impl Caller {
    fn on_event(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer,
        to: Peer,
        event: TransactionEvent,
    ) {
        match event {
            TransactionEvent::Response { key, response }
                if Some(&key) == self.invite_key.as_ref() =>
            {
                let code = response.status_code.code();
                match code {
                    100..=199 => {
                        self.provisionals.push(code);
                        if code == 180 && self.cancel_on_ringing && self.cancel_key.is_none() {
                            let invite = self.invite.as_ref().expect("the INVITE was sent first");
                            self.cancel_key = Some(layer.send_request(now, to, cancel_for(invite)));
                        }
                    }
                    200..=299 => {
                        self.give_up_ringing_at = None;
                        self.finals.push(code);
                        let invite = self.invite.as_ref().expect("the INVITE was sent first");
                        let branch = layer.new_branch();
                        let ack = ack_for_2xx(invite, &response, alice(to.transport), &branch);
                        self.send_ack(layer, to, ack);
                    }
                    _ => {
                        self.give_up_ringing_at = None;
                        self.finals.push(code);
                    }
                }
            }
            TransactionEvent::Response { key, response }
                if Some(&key) == self.cancel_key.as_ref() =>
            {
                self.cancel_finals.push(response.status_code.code());
            }
            TransactionEvent::StrayResponse { response, .. }
                if response.status_code.code() / 100 == 2 =>
            {
                if let Some(ack) = self.ack.clone() {
                    self.send_ack(layer, to, ack);
                }
            }
            TransactionEvent::Timeout { key } => self.timeouts.push(key),
            _ => {}
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.give_up_ringing_at
    }

    fn handle_timeout(&mut self, now: Instant, layer: &mut TransactionLayer, to: Peer) {
        if self.give_up_ringing_at.is_some_and(|at| at <= now) {
            self.give_up_ringing_at = None;
            let invite = self.invite.as_ref().expect("the INVITE was sent first");
            if self.finals.is_empty() && self.cancel_key.is_none() {
                self.cancel_key = Some(layer.send_request(now, to, cancel_for(invite)));
            }
        }
    }

    fn send_ack(&mut self, layer: &mut TransactionLayer, to: Peer, ack: rsip::Request) {
        self.acks_sent += 1;
        layer.send_stateless(to, ack.clone().into());
        self.ack = Some(ack);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    Accept,
    Reject(u16),
    /// Ring until cancelled.
    Never,
}

/// The called side's TU: rings, then answers as scripted. After a 2xx it retransmits the 2xx on
/// its own T1-doubling-to-T2 schedule until the ACK arrives or 64·T1 pass (§13.3.1.4).
pub(crate) struct Callee {
    pub answer: Answer,
    pub requests: Vec<Method>,
    pub acks: usize,
    pub timeouts: Vec<TransactionKey>,
    pub gave_up_waiting_for_ack: bool,
    invite: Option<rsip::Request>,
    ok: Option<(Peer, rsip::Response)>,
    retransmit_at: Option<Instant>,
    retransmit_interval: Duration,
    give_up_at: Option<Instant>,
}

impl Callee {
    pub fn new(answer: Answer) -> Self {
        Callee {
            answer,
            requests: Vec::new(),
            acks: 0,
            timeouts: Vec::new(),
            gave_up_waiting_for_ack: false,
            invite: None,
            ok: None,
            retransmit_at: None,
            retransmit_interval: Duration::ZERO,
            give_up_at: None,
        }
    }

    fn on_event(&mut self, now: Instant, layer: &mut TransactionLayer, event: TransactionEvent) {
        let timers = TimerConfig::default();
        match event {
            TransactionEvent::Request {
                key,
                peer,
                request,
                cancels,
            } => {
                self.requests.push(request.method);
                match request.method {
                    Method::Invite => {
                        self.invite = Some(request.clone());
                        layer
                            .respond(now, &key, response_to(&request, 180, Some("callee")))
                            .expect("a fresh INVITE takes a provisional");
                        match self.answer {
                            Answer::Accept => {
                                let ok = response_to(&request, 200, Some("callee"));
                                layer
                                    .respond(now, &key, ok.clone())
                                    .expect("Proceeding takes a 2xx");
                                self.ok = Some((peer, ok));
                                self.retransmit_interval = timers.t1;
                                self.retransmit_at = Some(now + timers.t1);
                                self.give_up_at = Some(now + timers.transaction_timeout());
                            }
                            Answer::Reject(code) => {
                                layer
                                    .respond(now, &key, response_to(&request, code, Some("callee")))
                                    .expect("Proceeding takes a failure");
                            }
                            Answer::Never => {}
                        }
                    }
                    Method::Cancel => {
                        // §9.2: 481 when there is nothing to cancel, 200 otherwise.
                        let code = if cancels.is_some() { 200 } else { 481 };
                        layer
                            .respond(now, &key, response_to(&request, code, Some("callee")))
                            .expect("a fresh CANCEL takes its final");
                        let ringing = cancels.zip(self.invite.as_ref()).filter(|(key, _)| {
                            layer.state(key) == Some(TransactionState::Proceeding)
                        });
                        if let Some((invite_key, invite)) = ringing {
                            let terminated = response_to(invite, 487, Some("callee"));
                            layer
                                .respond(now, &invite_key, terminated)
                                .expect("Proceeding takes 487");
                        }
                    }
                    _ => {}
                }
            }
            TransactionEvent::Ack { .. } => {
                self.acks += 1;
                self.retransmit_at = None;
            }
            TransactionEvent::Timeout { key } => self.timeouts.push(key),
            _ => {}
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.retransmit_at
    }

    fn handle_timeout(&mut self, now: Instant, layer: &mut TransactionLayer) {
        let Some(at) = self.retransmit_at.filter(|at| *at <= now) else {
            return;
        };
        if self.give_up_at.is_some_and(|give_up| at >= give_up) {
            self.gave_up_waiting_for_ack = true;
            self.retransmit_at = None;
            return;
        }
        if let Some((peer, ok)) = &self.ok {
            layer.send_stateless(*peer, ok.clone().into());
        }
        self.retransmit_interval = (self.retransmit_interval * 2).min(TimerConfig::default().t2);
        self.retransmit_at = Some(now + self.retransmit_interval);
    }
}

pub(crate) struct Pair {
    pub clock: Clock,
    pub now: Instant,
    pub caller_end: Endpoint,
    pub callee_end: Endpoint,
    pub caller: Caller,
    pub callee: Callee,
}

impl Pair {
    pub fn new(transport: Transport, answer: Answer, caller_loss: Loss, callee_loss: Loss) -> Self {
        let clock = Clock::new();
        Pair {
            clock,
            now: clock.origin,
            caller_end: Endpoint::new(alice(transport), caller_loss, 1),
            callee_end: Endpoint::new(bob(transport), callee_loss, 2),
            caller: Caller::default(),
            callee: Callee::new(answer),
        }
    }

    pub fn call(&mut self) {
        let to = self.callee_end.address;
        let request = invite(&self.caller_end.layer.new_branch(), self.caller_end.address);
        self.caller.invite_key = Some(self.caller_end.layer.send_request(
            self.now,
            to,
            request.clone(),
        ));
        self.caller.invite = Some(request);
        self.caller.give_up_ringing_at = self.caller.ring_timeout.map(|ring| self.now + ring);
    }

    /// Delivers everything in flight and lets the TUs react, until both sides fall quiet.
    fn shuttle(&mut self) {
        loop {
            let mut busy = false;
            while let Some(transmit) = self.caller_end.layer.poll_transmit() {
                busy = true;
                deliver(
                    self.now,
                    &mut self.caller_end,
                    &mut self.callee_end,
                    transmit,
                );
            }
            while let Some(transmit) = self.callee_end.layer.poll_transmit() {
                busy = true;
                deliver(
                    self.now,
                    &mut self.callee_end,
                    &mut self.caller_end,
                    transmit,
                );
            }
            while let Some(event) = self.caller_end.layer.poll_event() {
                busy = true;
                let to = self.callee_end.address;
                self.caller
                    .on_event(self.now, &mut self.caller_end.layer, to, event);
            }
            while let Some(event) = self.callee_end.layer.poll_event() {
                busy = true;
                self.callee
                    .on_event(self.now, &mut self.callee_end.layer, event);
            }
            if !busy {
                return;
            }
        }
    }

    /// Runs until nothing is pending on either side (then both layers must be empty) or the clock
    /// passes `limit`.
    pub fn run(&mut self, limit: Duration) {
        loop {
            self.shuttle();
            let next = [
                self.caller_end.layer.poll_timeout(),
                self.callee_end.layer.poll_timeout(),
                self.callee.poll_timeout(),
                self.caller.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next else { return };
            if next > self.clock.origin + limit {
                return;
            }
            assert!(next >= self.now, "time never runs backwards");
            self.now = next;
            self.caller_end.layer.handle_timeout(next);
            self.callee_end.layer.handle_timeout(next);
            self.callee.handle_timeout(next, &mut self.callee_end.layer);
            let to = self.callee_end.address;
            self.caller
                .handle_timeout(next, &mut self.caller_end.layer, to);
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.clock.origin
    }
}

fn deliver(now: Instant, from: &mut Endpoint, to: &mut Endpoint, transmit: Transmit) {
    assert_eq!(
        transmit.peer, to.address,
        "every transmit is addressed to the other side"
    );
    let index = from.sent;
    from.sent += 1;
    if from.loss.drops(index) {
        return;
    }
    from.delivered += 1;
    let message = parse_transmit(&transmit);
    to.layer
        .handle_message(now, from.address, message)
        .expect("everything the layers send can be keyed");
}
