//! A call's carrier side on an E1/PRI B-channel: Q.931 signalling through the span's call
//! control, and the channel's 64 kbit/s G.711 as the call's audio. Sans-IO like the SIP leg: the
//! shell hands it the span's events for this call ([`E1Leg::handle_span`]) and the B-channel's
//! bytes ([`E1Leg::handle_audio`]), and carries out [`E1Leg::poll_signal`] (requests for the
//! span) and [`E1Leg::take_audio`] (bytes for the B-channel).
//!
//! A TDM channel has no packets to lose or reorder: the bytes that arrive wait in a short FIFO
//! for the call's frame clock, which is bounded so that a far end running slightly fast cannot
//! build up delay. Keys are heard in-band (ISDN carries no telephone-events) and sent in-band.
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Leg, LegEnd, LegRefusal, Progress};
use crate::events::LegQuality;
use crate::isdn::q931::cause;
use crate::isdn::q931::control::Event;
use crate::isdn::q931::ie::Law;
use crate::media::dtmf::inband::InbandDetector;
use crate::media::dtmf::send::{DigitFrame, DigitSender};
use crate::media::dtmf::DtmfError;
use crate::media::emodel::LossPattern;
use crate::media::g711::G711Law;

const FRAME: Duration = Duration::from_millis(20);
const SAMPLES: usize = 160;
/// The most audio the FIFO holds (60 ms): beyond it the oldest is dropped.
const MAX_BUFFERED: usize = 3 * SAMPLES;

/// What the leg asks of the span for its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum E1Signal {
    Proceeding,
    Alerting,
    Connect,
    HangUp { cause: u8 },
}

pub struct E1Leg {
    channel: u8,
    law: G711Law,
    /// We placed the call (an agent's outbound call).
    outgoing: bool,
    answered: bool,
    hung_up: bool,
    end: Option<LegEnd>,
    /// The cause the far side cleared with, for the log and the CDR.
    their_cause: Option<u8>,
    signals: VecDeque<E1Signal>,
    progress: VecDeque<Progress>,
    heard: VecDeque<i16>,
    frame: Vec<i16>,
    tone: Vec<i16>,
    out: Vec<u8>,
    detector: InbandDetector,
    digits: VecDeque<char>,
    sender: DigitSender,
    frames_in: u64,
    frames_out: u64,
    /// Frames the far end's audio did not fill (it came late or not at all).
    starved: u64,
    dropped: u64,
    loss: LossPattern,
}

impl E1Leg {
    /// A call the span offered on `channel`.
    pub fn incoming(channel: u8, law: Law) -> Self {
        E1Leg::new(channel, law, false)
    }

    /// A call we placed on `channel`.
    pub fn outgoing(channel: u8, law: Law) -> Self {
        E1Leg::new(channel, law, true)
    }

    fn new(channel: u8, law: Law, outgoing: bool) -> Self {
        let law = match law {
            Law::ALaw => G711Law::Alaw,
            Law::MuLaw => G711Law::Ulaw,
        };
        E1Leg {
            channel,
            law,
            outgoing,
            answered: false,
            hung_up: false,
            end: None,
            their_cause: None,
            signals: VecDeque::new(),
            progress: VecDeque::new(),
            heard: VecDeque::with_capacity(MAX_BUFFERED + SAMPLES),
            frame: vec![0; SAMPLES],
            tone: vec![0; SAMPLES],
            out: Vec::with_capacity(SAMPLES),
            detector: InbandDetector::new(8000),
            digits: VecDeque::new(),
            sender: DigitSender::new(FRAME),
            frames_in: 0,
            frames_out: 0,
            starved: 0,
            dropped: 0,
            loss: LossPattern::default(),
        }
    }

    pub fn channel(&self) -> u8 {
        self.channel
    }

    /// The Q.850 cause the far side cleared with.
    pub fn their_cause(&self) -> Option<u8> {
        self.their_cause
    }

    /// What call control says about this call.
    pub fn handle_span(&mut self, event: &Event) {
        match event {
            Event::Alerting { inband, .. } if self.outgoing => {
                self.progress.push_back(if *inband {
                    Progress::EarlyMedia
                } else {
                    Progress::Ringing
                })
            }
            Event::Progress { inband: true, .. } if self.outgoing => {
                self.progress.push_back(Progress::EarlyMedia)
            }
            Event::Connected { .. } => {
                if self.outgoing && !self.answered {
                    self.progress.push_back(Progress::Answered);
                }
                self.answered = true;
            }
            Event::Disconnecting { cause, .. } => self.their_cause = Some(cause.value),
            Event::Cleared { cause, .. } => {
                // The cause the far side gave when it began clearing says why.
                let value = *self.their_cause.get_or_insert(cause.value);
                let end = self.ended_by(value);
                self.end.get_or_insert(end);
            }
            _ => {}
        }
    }

    fn ended_by(&self, value: u8) -> LegEnd {
        if self.hung_up {
            LegEnd::Local
        } else if self.outgoing && !self.answered {
            LegEnd::Unanswered {
                status: cause::to_sip_status(value),
            }
        } else if !self.answered {
            LegEnd::Cancelled
        } else {
            LegEnd::HungUp
        }
    }

    /// Our hang-up was never confirmed (the span is gone: the daemon is stopping): the call is
    /// over for us.
    pub fn abandon(&mut self) {
        self.end.get_or_insert(LegEnd::Local);
    }

    /// Bytes from the B-channel.
    pub fn handle_audio(&mut self, bytes: &[u8]) {
        self.heard
            .extend(bytes.iter().map(|&b| self.law.decode_sample(b)));
        let over = self.heard.len().saturating_sub(MAX_BUFFERED);
        if over > 0 {
            self.heard.drain(..over);
            self.dropped += over as u64;
        }
    }

    pub fn poll_signal(&mut self) -> Option<E1Signal> {
        self.signals.pop_front()
    }

    /// The bytes to write to the B-channel since the last call.
    pub fn take_audio(&mut self) -> Option<Vec<u8>> {
        (!self.out.is_empty()).then(|| std::mem::take(&mut self.out))
    }
}

impl Leg for E1Leg {
    fn accept(&mut self, _now: Instant) -> Result<(), LegRefusal> {
        // Call control has checked the bearer and the channel already.
        self.signals.push_back(E1Signal::Proceeding);
        Ok(())
    }

    fn ring(&mut self, _now: Instant) {
        self.signals.push_back(E1Signal::Alerting);
    }

    fn answer(&mut self, _now: Instant) {
        if self.end.is_none() && !self.answered {
            self.answered = true;
            self.signals.push_back(E1Signal::Connect);
        }
    }

    fn hang_up(&mut self, _now: Instant) {
        if self.hung_up || self.end.is_some() {
            return;
        }
        self.hung_up = true;
        self.signals.push_back(E1Signal::HangUp {
            cause: cause::NORMAL_CLEARING,
        });
    }

    fn poll_end(&mut self) -> Option<LegEnd> {
        self.end
    }

    fn frame_period(&self) -> Duration {
        FRAME
    }

    fn samples_per_frame(&self) -> usize {
        SAMPLES
    }

    fn exchange(&mut self, _now: Instant, outgoing: &[i16]) -> &[i16] {
        let sent = match self.sender.next_frame(false, 0, &mut self.tone) {
            DigitFrame::Tone => &self.tone[..],
            _ => outgoing,
        };
        self.law.encode(sent, &mut self.out);
        self.frames_out += 1;
        let have = self.heard.len().min(SAMPLES);
        for (slot, sample) in self.frame.iter_mut().zip(self.heard.drain(..have)) {
            *slot = sample;
        }
        self.frame[have..].fill(0);
        let starved = have < SAMPLES;
        if starved {
            self.starved += 1;
        } else {
            self.frames_in += 1;
        }
        self.loss.frame(starved);
        if let Some(digit) = self.detector.process(&self.frame) {
            self.digits.push_back(digit);
        }
        &self.frame
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn poll_digit(&mut self) -> Option<char> {
        self.digits
            .pop_front()
            .or_else(|| self.detector.next_digit())
    }

    fn send_digits(&mut self, digits: &str) -> Result<(), DtmfError> {
        self.sender.queue(digits)
    }

    fn silent_for(&self, _now: Instant) -> Duration {
        // A B-channel always carries bits; a far end that is gone shows on the D-channel.
        Duration::ZERO
    }

    fn held_by_carrier(&self) -> bool {
        false
    }

    fn quality(&self) -> LegQuality {
        LegQuality {
            packets_received: self.frames_in,
            packets_sent: self.frames_out,
            concealed_frames: self.starved,
            loss: self.loss,
            ..LegQuality::default()
        }
    }

    fn poll_progress(&mut self) -> Option<Progress> {
        self.progress.pop_front()
    }
}

#[cfg(test)]
mod tests;
