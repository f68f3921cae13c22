//! The carrier side of a call, behind the [`Leg`] trait: what the call core needs of it.
//!
//! A leg carries the caller's audio (frames of 8 kHz PCM in and out, one per frame period), the
//! caller's keys and ours, and the call's signalling as the core sees it (accept, ring, answer,
//! hang up, "the caller is gone"). How that travels is the leg's business: [`sip::SipLeg`] does
//! SIP (SDP offer/answer, re-INVITE, hold) over [`rtp::RtpMedia`]; an E1/PRI leg would do Q.931
//! over a B-channel's 64 kbit/s G.711 timeslot and implement the same trait, with no change to
//! the core. Leg-specific input (SIP events, RTP datagrams) goes to the leg through
//! [`crate::call::core::Call::handle_leg`], so the core sees what the leg made of it.
pub mod e1;
pub mod rtp;
pub mod sip;

use std::time::{Duration, Instant};

use crate::events::LegQuality;
use crate::media::dtmf::DtmfError;

pub use rtp::{MediaTransmit, RtpMedia};
pub use sip::{SipLeg, SipSignal};

/// How the carrier side ended, as the leg reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegEnd {
    /// The caller hung up (BYE; DISCONNECT).
    HungUp,
    /// The caller gave up before the answer (CANCEL).
    Cancelled,
    /// Our answer was never confirmed (no ACK).
    NoConfirmation,
    /// The signalling failed (an unusable SDP answer): the leg hung up.
    Failed,
    /// We ended it (our BYE or rejection, or shutdown) and the carrier side confirmed.
    Local,
    /// The session timer ran out (RFC 4028): the far end stopped refreshing the call, or did
    /// not answer our refresh; we sent BYE.
    SessionExpired,
    /// A call we placed was not answered: the carrier's final status (486, 404, 503…).
    Unanswered { status: u16 },
}

/// How a call we placed is getting on, before and at its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The callee's phone rings and the carrier plays nothing: ringback is ours to play.
    Ringing,
    /// The carrier's network plays its own audio (ringback, an announcement) before the answer.
    EarlyMedia,
    /// The callee answered.
    Answered,
}

/// Why a leg could not take a call it was offered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("refused with {status}: {reason}")]
pub struct LegRefusal {
    /// The status the carrier was given (SIP: 400 unreadable offer, 488 no common codec).
    pub status: u16,
    pub reason: RefusalReason,
}

/// What a leg found wrong with a call, in its protocol's terms: a new kind of leg adds its own.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RefusalReason {
    #[error(transparent)]
    SipOffer(#[from] sip::OfferError),
}

/// What the call core needs of the carrier side.
pub trait Leg {
    /// Checks what the carrier offered (media, codecs). `Err`: the leg refused the call and
    /// told the carrier so; the call is over.
    fn accept(&mut self, now: Instant) -> Result<(), LegRefusal>;
    /// Tells the carrier the call is ringing.
    fn ring(&mut self, now: Instant);
    /// Answers the call.
    fn answer(&mut self, now: Instant);
    /// Ends the call from our side.
    fn hang_up(&mut self, now: Instant);
    /// Set once the carrier side is over (the caller hung up, or our hang-up completed).
    fn poll_end(&mut self) -> Option<LegEnd>;

    /// The frame period: how often [`Leg::exchange`] must be called once answered.
    fn frame_period(&self) -> Duration;
    fn samples_per_frame(&self) -> usize;
    /// One frame period: sends `outgoing` to the caller and returns what the caller said.
    fn exchange(&mut self, now: Instant, outgoing: &[i16]) -> &[i16];
    /// Housekeeping between frames (RTCP reports).
    fn handle_timeout(&mut self, now: Instant);
    /// A key the caller pressed (each press once, whichever way it came).
    fn poll_digit(&mut self) -> Option<char>;
    /// Sends keys toward the carrier.
    fn send_digits(&mut self, digits: &str) -> Result<(), DtmfError>;
    /// How long the carrier has sent nothing while it should have (zero while it holds the
    /// call or is not expected to send).
    fn silent_for(&self, now: Instant) -> Duration;
    /// The carrier holds the call: it wants none of our audio for now (SIP: a re-INVITE with
    /// `sendonly` or `inactive`).
    fn held_by_carrier(&self) -> bool;
    fn quality(&self) -> LegQuality;
    /// On a call we placed: ringing, early media, the answer, each once, in order.
    fn poll_progress(&mut self) -> Option<Progress> {
        None
    }
    /// Asks the carrier to take the call to `number` itself (SIP REFER), on behalf of agent
    /// `by`; false if this leg cannot. The outcome comes from [`Leg::poll_handed_over`].
    fn hand_over(&mut self, now: Instant, number: &str, by: &str) -> bool {
        let _ = (now, number, by);
        false
    }
    /// What came of [`Leg::hand_over`]: done, or the carrier's refusal (its status).
    fn poll_handed_over(&mut self) -> Option<Result<(), u16>> {
        None
    }
}
