//! The LAPD data link on a PRI's D-channel (Q.921 §5), as a sans-IO core: point-to-point on
//! TEI 0, SAPI 0, multiple-frame operation with modulo-128 sequence numbers. It establishes the
//! link (SABME/UA), carries layer-3 messages in I frames with acknowledgement, retransmission
//! (REJ, and T200 with enquiry) and a window of k outstanding frames, checks an idle link with
//! T203, and re-establishes the link when the peer stops answering (N200 tries).
//!
//! The shell feeds it the frames that arrive ([`Link::handle_frame`]) and time
//! ([`Link::handle_timeout`] when [`Link::poll_timeout`] is due), and carries out
//! [`Link::poll_transmit`] (frames for the D-channel) and [`Link::poll_event`] (for Q.931).
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::frame::{Frame, Kind, Supervisory, Unnumbered, SAPI_CALL_CONTROL, TEI_PRI};

/// The link's timers (Q.921 §5.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// T200: an acknowledgement (UA, or of an I frame) is due; on expiry the frame is sent
    /// again, or the peer is asked (RR with P=1), up to N200 times.
    T200,
    /// T203: the link has been idle this long; the peer is asked whether it is still there.
    T203,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkConfig {
    pub t200: Duration,
    pub t203: Duration,
    pub n200: u32,
    /// k: I frames outstanding at most (7 on a PRI's SAPI 0).
    pub window: u8,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            t200: Duration::from_secs(1),
            t203: Duration::from_secs(10),
            n200: 3,
            window: 7,
        }
    }
}

/// What the link tells layer 3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The link is up (we established it, or the peer did, or it was re-established).
    Established,
    /// The link is down: released by either side, or lost after N200 tries.
    Released,
    /// A layer-3 message from the peer, in order, once.
    Data(Vec<u8>),
    /// Something Q.921 §5.8.5 says to report (a malformed frame, N200 reached), for the log
    /// and the metrics.
    Error(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Released,
    AwaitingEstablishment,
    Established,
    /// T200 expired with frames unacknowledged (or T203 with the link idle): the peer has been
    /// asked (RR, P=1) and its answer is awaited.
    TimerRecovery,
    AwaitingRelease,
}

fn mod128(n: u8) -> u8 {
    n & 0x7f
}

pub struct Link {
    network: bool,
    config: LinkConfig,
    state: State,
    /// V(S), V(A), V(R): the next N(S) to send, the oldest unacknowledged, the next expected.
    vs: u8,
    va: u8,
    vr: u8,
    /// I frames sent and not acknowledged, from V(A) on.
    unacked: VecDeque<Vec<u8>>,
    /// Layer-3 messages waiting for the window (or the link).
    queued: VecDeque<Vec<u8>>,
    /// A REJ was sent and no in-sequence frame came since: do not send another.
    rejected: bool,
    retries: u32,
    t200: Option<Instant>,
    t203: Option<Instant>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
}

impl Link {
    /// The link of the `network` side (NT) or the user side (CPE/TE), released.
    pub fn new(network: bool, config: LinkConfig) -> Self {
        Link {
            network,
            config,
            state: State::Released,
            vs: 0,
            va: 0,
            vr: 0,
            unacked: VecDeque::new(),
            queued: VecDeque::new(),
            rejected: false,
            retries: 0,
            t200: None,
            t203: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Establishes the link (SABME), as layer 3 asks at start.
    pub fn establish(&mut self, now: Instant) {
        self.retries = 0;
        self.send_u(Unnumbered::Sabme, true, true);
        self.state = State::AwaitingEstablishment;
        self.t200 = Some(now + self.config.t200);
        self.t203 = None;
    }

    /// Releases the link (DISC).
    pub fn release(&mut self, now: Instant) {
        if matches!(self.state, State::Released) {
            return;
        }
        self.retries = 0;
        self.send_u(Unnumbered::Disc, true, true);
        self.state = State::AwaitingRelease;
        self.t200 = Some(now + self.config.t200);
        self.t203 = None;
    }

    /// A layer-3 message for the peer: sent in order once the link is up and the window allows.
    pub fn send(&mut self, now: Instant, message: Vec<u8>) {
        self.queued.push_back(message);
        self.push_out(now);
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.t200, self.t203].into_iter().flatten().min()
    }

    /// Which timer is due next.
    pub fn next_timer(&self) -> Option<(Timer, Instant)> {
        match (self.t200, self.t203) {
            (Some(a), Some(b)) if b < a => Some((Timer::T203, b)),
            (Some(a), _) => Some((Timer::T200, a)),
            (None, Some(b)) => Some((Timer::T203, b)),
            (None, None) => None,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.t200.is_some_and(|t| t <= now) {
            self.t200 = None;
            self.t200_expired(now);
        }
        if self.t203.is_some_and(|t| t <= now) {
            self.t203 = None;
            if self.state == State::Established {
                // Idle too long: ask the peer (Q.921 §5.6.7).
                self.enquire(now);
                self.retries = 0;
            }
        }
    }

    fn t200_expired(&mut self, now: Instant) {
        match self.state {
            State::AwaitingEstablishment | State::AwaitingRelease => {
                if self.retries + 1 >= self.config.n200 {
                    let what = if self.state == State::AwaitingRelease {
                        "release"
                    } else {
                        "establishment"
                    };
                    self.events.push_back(Event::Error(format!(
                        "no answer to the link's {what} after {} tries (N200)",
                        self.config.n200
                    )));
                    self.become_released();
                    return;
                }
                self.retries += 1;
                let kind = if self.state == State::AwaitingRelease {
                    Unnumbered::Disc
                } else {
                    Unnumbered::Sabme
                };
                self.send_u(kind, true, true);
                self.t200 = Some(now + self.config.t200);
            }
            State::Established => {
                self.retries = 0;
                self.enquire(now);
            }
            State::TimerRecovery => {
                if self.retries + 1 >= self.config.n200 {
                    self.events.push_back(Event::Error(format!(
                        "the peer did not answer {} enquiries (N200): re-establishing the link",
                        self.config.n200
                    )));
                    self.establish(now);
                    return;
                }
                self.retries += 1;
                self.send_s(Supervisory::Rr, true, true);
                self.t200 = Some(now + self.config.t200);
            }
            State::Released => {}
        }
    }

    /// Asks the peer where it stands (RR command, P=1) and waits for its F=1 answer.
    fn enquire(&mut self, now: Instant) {
        self.send_s(Supervisory::Rr, true, true);
        self.state = State::TimerRecovery;
        self.t200 = Some(now + self.config.t200);
        self.t203 = None;
    }

    /// A frame from the D-channel (without its FCS).
    pub fn handle_frame(&mut self, now: Instant, bytes: &[u8]) {
        let frame = match Frame::parse(bytes) {
            Ok(frame) => frame,
            Err(e) => {
                self.events
                    .push_back(Event::Error(format!("frame dropped: {e}")));
                return;
            }
        };
        if frame.sapi != SAPI_CALL_CONTROL || frame.tei != TEI_PRI {
            return;
        }
        let command = frame.is_command(self.network);
        match frame.kind {
            Kind::Unnumbered {
                kind, poll_final, ..
            } => self.unnumbered(now, kind, command, poll_final),
            Kind::Supervisory {
                kind,
                nr,
                poll_final,
            } => self.supervisory(now, kind, command, nr, poll_final),
            Kind::Info { ns, nr, poll, info } => self.information(now, command, ns, nr, poll, info),
        }
    }

    fn unnumbered(&mut self, now: Instant, kind: Unnumbered, command: bool, pf: bool) {
        match (kind, command) {
            (Unnumbered::Sabme, true) => {
                // Establishment or re-establishment by the peer: UA, counters reset.
                self.send_u(Unnumbered::Ua, false, pf);
                let fresh = self.state != State::Established;
                self.reset_counters();
                self.state = State::Established;
                self.t200 = None;
                self.t203 = Some(now + self.config.t203);
                if fresh {
                    self.events.push_back(Event::Established);
                }
                self.push_out(now);
            }
            (Unnumbered::Disc, true) => {
                if self.state == State::Released {
                    self.send_u(Unnumbered::Dm, false, pf);
                } else {
                    self.send_u(Unnumbered::Ua, false, pf);
                    self.become_released();
                }
            }
            (Unnumbered::Ua, false) => match self.state {
                State::AwaitingEstablishment => {
                    self.reset_counters();
                    self.state = State::Established;
                    self.t200 = None;
                    self.t203 = Some(now + self.config.t203);
                    self.events.push_back(Event::Established);
                    self.push_out(now);
                }
                State::AwaitingRelease => self.become_released(),
                _ => self.events.push_back(Event::Error("unsolicited UA".into())),
            },
            (Unnumbered::Dm, false) => match self.state {
                State::AwaitingRelease => self.become_released(),
                State::AwaitingEstablishment if pf => {
                    self.events
                        .push_back(Event::Error("the peer refused the link (DM)".into()));
                    self.become_released();
                }
                _ => {}
            },
            (Unnumbered::Frmr, _) => {
                self.events
                    .push_back(Event::Error("the peer rejected a frame (FRMR)".into()));
                self.establish(now);
            }
            // UI and XID carry nothing a PRI's call control needs.
            _ => {}
        }
    }

    fn supervisory(&mut self, now: Instant, kind: Supervisory, command: bool, nr: u8, pf: bool) {
        if !matches!(self.state, State::Established | State::TimerRecovery) {
            if command && pf {
                self.send_u(Unnumbered::Dm, false, true);
            }
            return;
        }
        if command && pf {
            self.send_s(Supervisory::Rr, false, true);
        }
        if !self.acknowledge(now, nr) {
            return;
        }
        if self.state == State::TimerRecovery && !command && pf {
            // The answer to our enquiry: back to normal, resending what it has not got.
            self.state = State::Established;
            self.t200 = None;
            self.retransmit_from(nr);
            self.arm_timers(now);
        } else if kind == Supervisory::Rej {
            self.retransmit_from(nr);
            self.arm_timers(now);
        }
        self.push_out(now);
    }

    fn information(
        &mut self,
        now: Instant,
        command: bool,
        ns: u8,
        nr: u8,
        poll: bool,
        info: Vec<u8>,
    ) {
        if !matches!(self.state, State::Established | State::TimerRecovery) {
            if poll {
                self.send_u(Unnumbered::Dm, false, true);
            }
            return;
        }
        if !command {
            self.events
                .push_back(Event::Error("an I frame as a response".into()));
            return;
        }
        if ns == self.vr {
            self.vr = mod128(self.vr + 1);
            self.rejected = false;
            self.events.push_back(Event::Data(info));
            self.send_s(Supervisory::Rr, false, poll);
        } else if !self.rejected {
            // Out of sequence (one was lost): ask for it again, once.
            self.rejected = true;
            self.send_s(Supervisory::Rej, false, poll);
        } else if poll {
            self.send_s(Supervisory::Rr, false, true);
        }
        if self.acknowledge(now, nr) {
            self.push_out(now);
        }
    }

    /// The peer has everything before `nr`: drop those from the retransmission buffer. False
    /// (and a re-establishment) if `nr` acknowledges frames never sent.
    fn acknowledge(&mut self, now: Instant, nr: u8) -> bool {
        let outstanding = mod128(self.vs.wrapping_sub(self.va));
        let acked = mod128(nr.wrapping_sub(self.va));
        if acked > outstanding {
            self.events.push_back(Event::Error(format!(
                "N(R) {nr} outside V(A) {}..V(S) {}: re-establishing the link",
                self.va, self.vs
            )));
            self.establish(now);
            return false;
        }
        for _ in 0..acked {
            self.unacked.pop_front();
        }
        self.va = nr;
        if acked > 0 && self.state == State::Established {
            self.arm_timers(now);
        }
        true
    }

    /// T200 runs while frames are unacknowledged, T203 while none are.
    fn arm_timers(&mut self, now: Instant) {
        if self.unacked.is_empty() {
            self.t200 = None;
            self.t203 = Some(now + self.config.t203);
        } else {
            self.t200 = Some(now + self.config.t200);
            self.t203 = None;
        }
    }

    /// Sends again every unacknowledged I frame from N(R) `nr` on.
    fn retransmit_from(&mut self, nr: u8) {
        self.vs = nr;
        let frames: Vec<Vec<u8>> = self.unacked.iter().cloned().collect();
        for info in frames {
            self.send_i(info);
        }
    }

    /// Sends queued messages while the link is up and the window allows.
    fn push_out(&mut self, now: Instant) {
        if self.state != State::Established {
            return;
        }
        while (self.unacked.len() as u8) < self.config.window {
            let Some(info) = self.queued.pop_front() else {
                break;
            };
            self.unacked.push_back(info.clone());
            self.send_i(info);
            self.t200 = Some(self.t200.unwrap_or(now + self.config.t200));
            self.t203 = None;
        }
    }

    fn send_i(&mut self, info: Vec<u8>) {
        let frame = self.frame(
            true,
            Kind::Info {
                ns: self.vs,
                nr: self.vr,
                poll: false,
                info,
            },
        );
        self.vs = mod128(self.vs + 1);
        self.push_frame(frame);
    }

    fn send_s(&mut self, kind: Supervisory, command: bool, poll_final: bool) {
        let frame = self.frame(
            command,
            Kind::Supervisory {
                kind,
                nr: self.vr,
                poll_final,
            },
        );
        self.push_frame(frame);
    }

    fn send_u(&mut self, kind: Unnumbered, command: bool, poll_final: bool) {
        let frame = self.frame(
            command,
            Kind::Unnumbered {
                kind,
                poll_final,
                info: Vec::new(),
            },
        );
        self.push_frame(frame);
    }

    fn frame(&self, command: bool, kind: Kind) -> Frame {
        Frame {
            sapi: SAPI_CALL_CONTROL,
            cr: Frame::cr_bit(self.network, command),
            tei: TEI_PRI,
            kind,
        }
    }

    fn push_frame(&mut self, frame: Frame) {
        match frame.to_bytes() {
            Ok(bytes) => self.transmit.push_back(bytes),
            // Sequence numbers are kept mod 128 and messages bounded by their sender.
            Err(e) => self
                .events
                .push_back(Event::Error(format!("frame not sent: {e}"))),
        }
    }

    fn reset_counters(&mut self) {
        self.vs = 0;
        self.va = 0;
        self.vr = 0;
        self.rejected = false;
        self.retries = 0;
        // Unacknowledged frames go again after a re-establishment (Q.921 §5.7.2 leaves it to
        // layer 3; Q.931 messages are worth more than their duplicates).
        let again: Vec<Vec<u8>> = self.unacked.drain(..).collect();
        for info in again.into_iter().rev() {
            self.queued.push_front(info);
        }
    }

    fn become_released(&mut self) {
        let was_up = self.state != State::Released;
        self.state = State::Released;
        self.t200 = None;
        self.t203 = None;
        self.unacked.clear();
        if was_up {
            self.events.push_back(Event::Released);
        }
    }
}

#[cfg(test)]
mod tests;
