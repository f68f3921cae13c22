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
    /// Set while the agent holds the caller: the caller hears this, the agent nothing.
    hold: Option<MusicOnHold>,
}

impl AgentCall {
    pub fn new(
        leg: CarrierLeg,
        flow: u64,
        opus: &OpusConfig,
        jitter: (Duration, Duration),
        rtp_timeout: Option<Duration>,
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
            hold: None,
        })
    }

    pub fn into_leg(self) -> CarrierLeg {
        self.leg
    }

    /// An RTP packet from the agent (the datagram's flow id already stripped).
    pub fn handle_agent_media(&mut self, now: Instant, rtp: &[u8]) {
        if let Err(e) = self.receiver.push(now, rtp) {
            tracing::debug!(error = %e, "agent media packet dropped");
        }
    }

    /// One 20 ms period: the agent's audio to the caller, the caller's audio to the agent.
    /// Returns the datagram to send to the agent, if any.
    pub fn tick(&mut self, now: Instant) -> Option<&[u8]> {
        let heard = match &mut self.hold {
            Some(music) => {
                // The agent sends nothing while the call is held; what does arrive is dropped.
                let _ = self.receiver.pull(now);
                self.to_agent.resize(self.leg.samples_per_frame(), 0);
                music.fill(&mut self.to_agent);
                self.leg.tick(now, &self.to_agent)
            }
            None => {
                let from_agent = self.receiver.pull(now);
                self.leg.tick(now, from_agent)
            }
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
        if self.hold.is_some() {
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

    /// Holds the caller with `music` (`Some`), or takes them off hold (`None`).
    pub fn set_hold(&mut self, music: Option<MusicOnHold>) {
        self.hold = music;
    }

    pub fn is_held(&self) -> bool {
        self.hold.is_some()
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
