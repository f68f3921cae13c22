//! The caller bridged to a remote agent, as a sans-IO core: G.711 audio from the carrier leg is
//! encoded to Opus for the agent (8 kHz straight into libopus, no resampling), and the agent's
//! Opus comes back through a jitter buffer with FEC and concealment, decoded to 8 kHz for the
//! leg. It deals in bare RTP packets both ways; the agent media handle frames them for its
//! transport (QUIC datagrams with a flow id, WebTransport, a supervisor's mixer).
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::events::AgentLegQuality;
use crate::media::link_health::{LinkHealth, LinkReport};
use crate::media::opus::{OpusConfig, OpusEncoder, OpusError};
use crate::media::opus_rx::{OpusReceiver, OpusRxError};
use crate::media::prompt::PromptPlayer;
use crate::media::rtp::{self, RtpSender};
use crate::media::rtp_quic::{OpusRtpSender, Sent};
use crate::queue::waiting::MusicOnHold;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BridgeError {
    #[error("opus: {0}")]
    Opus(#[from] OpusError),
    #[error("agent receive path: {0}")]
    Receiver(#[from] OpusRxError),
}

pub struct Bridge {
    encoder: OpusEncoder,
    sender: OpusRtpSender,
    receiver: OpusReceiver,
    to_caller: Vec<i16>,
    packet: Vec<u8>,
    /// The receiver's feedback for the agent's sender.
    feedback: Vec<u8>,
    /// What the caller hears while held, or while the agent's audio has stopped.
    music: MusicOnHold,
    /// The agent holds the caller: the caller hears music, the agent nothing.
    held: bool,
    last_agent_media: Instant,
    /// No audio from the agent for [`AGENT_STALL`] (its network died, and the connection's idle
    /// timeout has not yet said so): the caller hears music rather than dead air.
    stalled: bool,
    stall_changes: VecDeque<bool>,
    /// Packets handed over for the agent.
    sent: u64,
    /// Whether the agent's link gets the audio through, each way.
    health: LinkHealth,
    /// The rest of a notice the caller must hear whole (the call may be recorded): played
    /// instead of the agent until it ends.
    notice: Option<PromptPlayer>,
    /// The agent hears the notice too (mixed with the caller), so it knows to wait: this
    /// frame's mix.
    with_notice: Vec<i16>,
    notice_this_frame: bool,
}

/// An agent sends a packet every 20 ms, and at least every 400 ms with Opus DTX; a second
/// without one means its audio is not getting through.
pub const AGENT_STALL: Duration = Duration::from_secs(1);

impl Bridge {
    pub fn new(
        now: Instant,
        opus: &OpusConfig,
        jitter: (Duration, Duration),
        music: MusicOnHold,
        rng: &mut impl Rng,
    ) -> Result<Self, BridgeError> {
        let rtp = RtpSender::with_random_start(rng.gen(), rng);
        Ok(Bridge {
            encoder: OpusEncoder::new(opus)?,
            sender: OpusRtpSender::rtp_only(rtp),
            receiver: OpusReceiver::new(jitter.0, jitter.1)?,
            to_caller: Vec::with_capacity(480),
            packet: Vec::with_capacity(256),
            feedback: Vec::with_capacity(64),
            music,
            held: false,
            last_agent_media: now,
            stalled: false,
            stall_changes: VecDeque::new(),
            sent: 0,
            health: LinkHealth::default(),
            notice: None,
            with_notice: Vec::new(),
            notice_this_frame: false,
        })
    }

    /// Plays the rest of `notice` to the caller before the agent is heard.
    pub fn finish_notice(&mut self, notice: PromptPlayer) {
        self.notice = Some(notice);
    }

    /// The music, to go on where it stopped when the caller goes back to waiting.
    pub fn into_music(self) -> MusicOnHold {
        self.music
    }

    /// An RTP packet from the agent, or its receiver's RTCP feedback.
    pub fn handle_agent_media(&mut self, now: Instant, rtp: &[u8]) {
        if rtp::looks_like_rtcp(rtp) {
            match self.sender.apply_feedback(&mut self.encoder, rtp) {
                Ok(Some(feedback)) => self
                    .health
                    .peer_reported(now, u32::from(feedback.concealed)),
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "agent feedback ignored"),
            }
            return;
        }
        match self.receiver.push(now, rtp) {
            Ok(_) => self.last_agent_media = now,
            Err(e) => tracing::debug!(error = %e, "agent media packet dropped"),
        }
    }

    /// What the caller hears this frame period: the agent, or music while held or stalled.
    pub fn to_caller(&mut self, now: Instant, samples: usize) -> &[i16] {
        let stalled =
            !self.held && now.saturating_duration_since(self.last_agent_media) >= AGENT_STALL;
        if stalled != self.stalled {
            self.stalled = stalled;
            self.stall_changes.push_back(!stalled);
        }
        let from_agent = self.receiver.pull(now);
        self.to_caller.clear();
        self.notice_this_frame = false;
        if let Some(notice) = &mut self.notice {
            self.to_caller.resize(samples, 0);
            if notice.next_frame(&mut self.to_caller) {
                self.notice_this_frame = true;
                return &self.to_caller;
            }
            self.notice = None;
            self.to_caller.clear();
        }
        if self.held || stalled {
            // What the agent still sends while held is dropped.
            self.to_caller.resize(samples, 0);
            self.music.fill(&mut self.to_caller);
        } else {
            self.to_caller.extend_from_slice(from_agent);
        }
        self.health.heard_so_far(now, self.receiver.stats().missed);
        &self.to_caller
    }

    /// What the caller said this frame period; returns the RTP packet for the agent, if any.
    pub fn from_caller(&mut self, heard: &[i16]) -> Option<&[u8]> {
        self.packet.clear();
        if self.held {
            self.sender.skip(heard.len());
            return None;
        }
        let heard = if self.notice_this_frame {
            self.with_notice.clear();
            let notice = self.to_caller.iter().chain(std::iter::repeat(&0));
            self.with_notice
                .extend(heard.iter().zip(notice).map(|(c, n)| c.saturating_add(*n)));
            &self.with_notice[..]
        } else {
            heard
        };
        match self
            .sender
            .encode_datagram(&mut self.encoder, heard, &mut self.packet)
        {
            Ok(Sent::Datagram) => {
                self.sent += 1;
                Some(&self.packet)
            }
            Ok(Sent::Silence) => None,
            Err(e) => {
                tracing::warn!(error = %e, "opus encode failed: frame skipped");
                None
            }
        }
    }

    /// Feedback on the agent's audio for the agent's sender, when due (about once a second).
    pub fn feedback(&mut self, now: Instant) -> Option<&[u8]> {
        self.feedback.clear();
        self.receiver
            .poll_feedback(now, self.sender.rtp().ssrc(), &mut self.feedback)
            .then_some(self.feedback.as_slice())
    }

    /// Puts the caller on hold (music, nothing to the agent) or takes them off it.
    pub fn set_hold(&mut self, now: Instant, on: bool) {
        self.held = on;
        // The agent sends nothing while it holds the caller.
        self.receiver.set_held(on);
        // The agent starts sending again now; until its first packet that is no stall.
        self.last_agent_media = now;
    }

    /// Whether the agent's link turned poor, or good again, by `now`: `heard_lost` is the
    /// agent's audio the caller missed, `sent_lost` the caller's the agent missed.
    pub fn poll_link(&mut self, now: Instant) -> Option<LinkReport> {
        self.health.poll(now)
    }

    /// `false` when the agent's audio stopped, `true` when it came back.
    pub fn poll_stall_change(&mut self) -> Option<bool> {
        self.stall_changes.pop_front()
    }

    pub fn quality(&self) -> AgentLegQuality {
        let s = self.receiver.stats();
        let jitter = self.receiver.jitter_stats();
        AgentLegQuality {
            packets: s.packets,
            packets_sent: self.sent,
            lost: s.lost,
            late: s.late,
            concealed_frames: s.concealed,
            recovered_by_fec: s.recovered_by_fec,
            recovered_by_redundancy: s.recovered_by_redundancy,
            redundancy_too_late: s.redundancy_too_late,
            jitter_ms: jitter.jitter.as_secs_f64() * 1000.0,
            jitter_buffer_delay: jitter.mean_playout_delay(),
            jitter_buffer_delay_p95: self.receiver.playout_delay_p95(),
            loss: self.receiver.loss_pattern(),
            accelerated: self.receiver.stretch_stats().accelerated(),
            expanded: self.receiver.stretch_stats().expanded(),
            // The transport's, which the bridge does not see: the call core adds it.
            round_trip_ms: None,
        }
    }
}

#[cfg(test)]
mod tests;
