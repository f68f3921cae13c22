//! A caller bridged to a remote agent, as a sans-IO core: G.711 from the carrier leg is encoded
//! to Opus for the agent (8 kHz straight into libopus, no resampling), and the agent's Opus
//! comes back through a jitter buffer with FEC and concealment, decoded to 8 kHz for the leg.
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::call::ivr_call::CallAction;
use crate::call::leg::{CarrierLeg, MediaTransmit};
use crate::call::waiting::MusicOnHold;
use crate::media::dtmf::DtmfError;
use crate::media::opus::{OpusConfig, OpusEncoder, OpusError};
use crate::media::opus_rx::{OpusReceiver, OpusRxStats};
use crate::media::rtp::RtpSender;
use crate::media::rtp_quic::{FlowId, OpusRtpSender, Sent};

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("opus: {0}")]
    Opus(#[from] OpusError),
    #[error("flow id {0} out of range")]
    Flow(u64),
    #[error("agent receive path: {0}")]
    Receiver(String),
}

pub struct AgentCall {
    pub leg: CarrierLeg,
    encoder: OpusEncoder,
    sender: OpusRtpSender,
    receiver: OpusReceiver,
    to_agent: Vec<i16>,
    datagram: Vec<u8>,
    actions: VecDeque<CallAction>,
    rtp_timeout: Option<Duration>,
    caller_digits: VecDeque<char>,
    /// What the caller hears while held, or while the agent's audio has stopped.
    music: MusicOnHold,
    /// The agent holds the caller: the caller hears music, the agent nothing.
    held: bool,
    last_agent_media: Instant,
    /// No audio from the agent for [`AGENT_STALL`] (its network died, and the connection's idle
    /// timeout has not yet said so): the caller hears music rather than dead air.
    stalled: bool,
}

/// An agent sends a packet every 20 ms, and at least every 400 ms with Opus DTX; a second
/// without one means its audio is not getting through.
pub const AGENT_STALL: Duration = Duration::from_secs(1);

impl AgentCall {
    pub fn new(
        now: Instant,
        leg: CarrierLeg,
        flow: u64,
        opus: &OpusConfig,
        jitter: (Duration, Duration),
        rtp_timeout: Option<Duration>,
        music: MusicOnHold,
    ) -> Result<Self, BridgeError> {
        let flow_id = FlowId::new(flow).ok_or(BridgeError::Flow(flow))?;
        let rtp = RtpSender::with_random_start(rand::random(), &mut rand::thread_rng());
        Ok(AgentCall {
            to_agent: Vec::with_capacity(leg.samples_per_frame()),
            leg,
            encoder: OpusEncoder::new(opus)?,
            sender: OpusRtpSender::new(flow_id, rtp),
            receiver: OpusReceiver::new(jitter.0, jitter.1)
                .map_err(|e| BridgeError::Receiver(e.to_string()))?,
            datagram: Vec::with_capacity(256),
            actions: VecDeque::new(),
            rtp_timeout,
            caller_digits: VecDeque::new(),
            music,
            held: false,
            last_agent_media: now,
            stalled: false,
        })
    }

    pub fn into_leg(self) -> CarrierLeg {
        self.leg
    }

    /// An RTP packet from the agent (the datagram's flow id already stripped).
    pub fn handle_agent_media(&mut self, now: Instant, rtp: &[u8]) {
        match self.receiver.push(now, rtp) {
            Ok(_) => self.last_agent_media = now,
            Err(e) => tracing::debug!(error = %e, "agent media packet dropped"),
        }
    }

    /// One 20 ms period: the agent's audio to the caller, the caller's audio to the agent.
    /// Returns the datagram to send to the agent, if any.
    pub fn tick(&mut self, now: Instant) -> Option<&[u8]> {
        let stalled =
            !self.held && now.saturating_duration_since(self.last_agent_media) >= AGENT_STALL;
        if stalled != self.stalled {
            self.stalled = stalled;
            match stalled {
                true => tracing::info!("agent audio stopped: music on hold until it returns"),
                false => tracing::info!("agent audio back"),
            }
        }
        let heard = if self.held || stalled {
            // What the agent still sends while held is dropped.
            let _ = self.receiver.pull(now);
            self.to_agent.resize(self.leg.samples_per_frame(), 0);
            self.music.fill(&mut self.to_agent);
            self.leg.tick(now, &self.to_agent)
        } else {
            let from_agent = self.receiver.pull(now);
            self.leg.tick(now, from_agent)
        };
        self.to_agent.clear();
        self.to_agent.extend_from_slice(heard);
        while let Some(d) = self.leg.poll_digit() {
            self.caller_digits.push_back(d);
        }
        self.leg.handle_timeout(now);
        if self.leg.rtp_timed_out(now, self.rtp_timeout) {
            self.actions.push_back(CallAction::RtpTimeout);
        }
        self.datagram.clear();
        if self.held {
            self.sender.skip(self.to_agent.len());
            return None;
        }
        match self
            .sender
            .encode_datagram(&mut self.encoder, &self.to_agent, &mut self.datagram)
        {
            Ok(Sent::Datagram) => Some(&self.datagram),
            Ok(Sent::Silence) => None,
            Err(e) => {
                tracing::warn!(error = %e, "opus encode failed: frame skipped");
                None
            }
        }
    }

    /// Puts the caller on hold (music, nothing to the agent) or takes them off it.
    pub fn set_hold(&mut self, now: Instant, on: bool) {
        self.held = on;
        // The agent starts sending again now; until its first packet that is no stall.
        self.last_agent_media = now;
    }

    /// The agent's key presses, toward the carrier.
    pub fn send_digits(&mut self, digits: &str) -> Result<(), DtmfError> {
        self.leg.send_digits(digits)
    }

    /// A key the caller pressed, for the agent.
    pub fn poll_caller_digit(&mut self) -> Option<char> {
        self.caller_digits.pop_front()
    }

    pub fn poll_action(&mut self) -> Option<CallAction> {
        self.actions.pop_front()
    }

    pub fn poll_transmit(&mut self) -> Option<MediaTransmit> {
        self.leg.poll_transmit()
    }

    pub fn receive_stats(&self) -> &OpusRxStats {
        self.receiver.stats()
    }
}

#[cfg(test)]
mod tests;
