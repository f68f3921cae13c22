//! One call's audio at the agent, sans-IO: datagrams in through [`CallMedia::receive`], and every
//! 20 ms a [`CallMedia::tick`] that plays out one received frame and produces the datagram to
//! send.
//!
//! The send side follows docs/agent-protocol.md §7: Opus at the `welcome`'s bitrate with its
//! FEC and DTX settings, RTP with a random SSRC and start, the RoQ flow id in front. The receive
//! side is the gateway's own [`OpusReceiver`] (jitter buffer, FEC recovery, concealment), so
//! what the agent records is what a real softphone would play.
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::agent::protocol::{CallId, Codec, FlowId, MediaParams};
use crate::media::link_health::{LinkHealth, LinkReport};
use crate::media::opus::{OpusConfig, OpusEncoder, OpusError, BITRATE_RANGE, FRAME_SAMPLES};
use crate::media::opus_rx::{OpusReceiver, OpusRxError};
use crate::media::rtp::{self, RtpSender};
use crate::media::rtp_quic::{self, OpusRtpSender, Sent, OPUS_PAYLOAD_TYPE};

use super::args::AudioSource;
use super::events::MediaCounters;

/// The receive jitter buffer's delay bounds. 40 ms at least so the packet after a lost one is
/// usually buffered in time for FEC (see `media::opus_rx`); 200 ms as the gateway's default.
pub const JITTER_MIN: Duration = Duration::from_millis(40);
pub const JITTER_MAX: Duration = Duration::from_millis(200);

/// An agent encodes one call, so it can afford the encoder's effort the gateway saves: below
/// 32 kbit/s libopus at complexity 0–1 sends no FEC at all (the bench's Opus curve).
pub const COMPLEXITY: u8 = 5;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The media stack here speaks one format: what the protocol's defaults describe.
    #[error("gateway media {what} is not supported by this client (it supports {supported})")]
    Unsupported {
        what: String,
        supported: &'static str,
    },
    #[error(transparent)]
    Opus(#[from] OpusError),
    #[error(transparent)]
    Receiver(#[from] OpusRxError),
}

/// Whether this client can carry the gateway's media as announced in `welcome`. Only the
/// bitrate may differ from what the media stack is built for (it is clamped into the
/// narrowband encoder's range).
pub fn check_params(params: &MediaParams) -> Result<(), MediaError> {
    let unsupported = |what: String, supported| Err(MediaError::Unsupported { what, supported });
    let Codec::Opus = params.codec;
    if params.payload_type != OPUS_PAYLOAD_TYPE {
        return unsupported(
            format!("payload type {}", params.payload_type),
            "payload type 111",
        );
    }
    if params.sample_rate != crate::media::opus::SAMPLE_RATE || params.channels != 1 {
        return unsupported(
            format!("{} Hz x {} channels", params.sample_rate, params.channels),
            "8000 Hz mono",
        );
    }
    if params.frame_ms != 20 {
        return unsupported(format!("{} ms frames", params.frame_ms), "20 ms frames");
    }
    Ok(())
}

/// What a [`CallMedia::receive`] did with a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    Accepted,
    /// With [`AudioSource::Reflect`]: the shell sends the datagram back as it came.
    Reflect,
    /// For a flow that is not this call's (a stale flow after a resume, or garbage).
    OtherFlow {
        flow: u64,
    },
    /// Not RoQ, not RTP, or not Opus: counted and dropped.
    Invalid {
        reason: String,
    },
}

/// The output of one 20 ms tick.
#[derive(Debug)]
pub struct Tick<'a> {
    /// 20 ms of received audio, as played out (to record).
    pub played: &'a [i16],
    /// The datagram to send, if any (none while held or in a DTX pause).
    pub datagram: Option<&'a [u8]>,
    /// Feedback on the received audio for the gateway's sender, about once a second: a second
    /// datagram to send.
    pub feedback: Option<&'a [u8]>,
}

pub struct CallMedia {
    call: CallId,
    flow: rtp_quic::FlowId,
    encoder: OpusEncoder,
    sender: OpusRtpSender,
    receiver: OpusReceiver,
    source: AudioSource,
    /// Next sample of a played file.
    play_position: usize,
    played: Vec<i16>,
    outgoing: Vec<i16>,
    datagram: Vec<u8>,
    feedback: Vec<u8>,
    held: bool,
    sent: u64,
    /// Datagrams of this call's flow received with [`AudioSource::Reflect`] (never decoded).
    reflected: u64,
    other_flow: u64,
    /// Received/lost at the last [`CallMedia::stats_window`], for the loss rate since then.
    stats_mark: (u64, u64),
    /// Whether the agent's network gets the audio through, each way.
    health: LinkHealth,
}

impl std::fmt::Debug for CallMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallMedia")
            .field("call", &self.call)
            .field("flow", &self.flow)
            .field("held", &self.held)
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

impl CallMedia {
    /// `rng` picks the stream's SSRC and first sequence number (RFC 3550 wants them random);
    /// the shell passes the thread's, tests a seeded one.
    pub fn new(
        call: CallId,
        flow: FlowId,
        params: &MediaParams,
        source: AudioSource,
        rng: &mut impl rand::Rng,
    ) -> Result<Self, MediaError> {
        check_params(params)?;
        let flow = roq_flow(flow)?;
        let config = OpusConfig {
            bitrate: params
                .bitrate
                .clamp(*BITRATE_RANGE.start(), *BITRATE_RANGE.end()),
            fec: params.fec,
            dtx: params.dtx,
            complexity: COMPLEXITY,
            ..OpusConfig::default()
        };
        let encoder = OpusEncoder::new(&config)?;
        let rtp = RtpSender::with_random_start(rng.gen(), rng);
        Ok(Self {
            call,
            flow,
            encoder,
            sender: OpusRtpSender::new(flow, rtp),
            receiver: OpusReceiver::new(JITTER_MIN, JITTER_MAX)?,
            source,
            play_position: 0,
            played: vec![0; FRAME_SAMPLES],
            outgoing: vec![0; FRAME_SAMPLES],
            datagram: Vec::with_capacity(256),
            feedback: Vec::with_capacity(64),
            held: false,
            sent: 0,
            reflected: 0,
            other_flow: 0,
            stats_mark: (0, 0),
            health: LinkHealth::default(),
        })
    }

    pub fn call(&self) -> &CallId {
        &self.call
    }

    pub fn flow(&self) -> u64 {
        self.flow.get()
    }

    /// The call continues on another flow (after a resume, on the new connection). The RTP
    /// stream carries on unchanged: same SSRC, next sequence number.
    pub fn move_to_flow(&mut self, flow: FlowId) -> Result<(), MediaError> {
        self.flow = roq_flow(flow)?;
        self.sender.move_to_flow(self.flow);
        Ok(())
    }

    /// While held neither side sends audio (docs/agent-protocol.md §5.7).
    pub fn set_held(&mut self, held: bool) {
        self.held = held;
        // The gateway sends the agent nothing while the caller is held.
        self.receiver.set_held(held);
    }

    /// A datagram arrived at `now`.
    pub fn receive(&mut self, now: Instant, datagram: &[u8]) -> Received {
        let (flow, rtp_packet) = match rtp_quic::parse(datagram) {
            Ok(parsed) => parsed,
            Err(e) => {
                return Received::Invalid {
                    reason: e.to_string(),
                }
            }
        };
        if flow != self.flow {
            self.other_flow += 1;
            return Received::OtherFlow { flow: flow.get() };
        }
        if self.source == AudioSource::Reflect {
            self.reflected += 1;
            return if self.held {
                Received::Accepted
            } else {
                Received::Reflect
            };
        }
        if rtp::looks_like_rtcp(rtp_packet) {
            return match self.sender.apply_feedback(&mut self.encoder, rtp_packet) {
                Ok(feedback) => {
                    if let Some(feedback) = feedback {
                        self.health
                            .peer_reported(now, u32::from(feedback.concealed));
                    }
                    Received::Accepted
                }
                Err(e) => Received::Invalid {
                    reason: e.to_string(),
                },
            };
        }
        match self.receiver.push(now, rtp_packet) {
            Ok(()) => Received::Accepted,
            Err(e) => Received::Invalid {
                reason: e.to_string(),
            },
        }
    }

    /// One 20 ms period at `now`: the received frame to play, and the frame to send (from the
    /// played file, the echo, or silence).
    pub fn tick(&mut self, now: Instant) -> Result<Tick<'_>, MediaError> {
        self.played.clear();
        if self.source == AudioSource::Reflect {
            // The audio went back as it came (see `receive`): nothing to play or send.
            self.played.resize(FRAME_SAMPLES, 0);
            return Ok(self.output(false));
        }
        self.played.extend_from_slice(self.receiver.pull(now));
        self.played.resize(FRAME_SAMPLES, 0);
        self.health.heard_so_far(now, self.receiver.stats().missed);
        self.next_outgoing_frame();
        self.datagram.clear();
        self.feedback.clear();
        if self.held {
            // Media time passes unsent, so the gateway's jitter buffer sees the gap for what it
            // is when audio resumes rather than late packets.
            self.sender.skip(FRAME_SAMPLES);
            return Ok(self.output(false));
        }
        let sent =
            self.sender
                .encode_datagram(&mut self.encoder, &self.outgoing, &mut self.datagram)?;
        rtp_quic::write_varint(self.flow, &mut self.feedback);
        let ssrc = self.sender.rtp().ssrc();
        if !self.receiver.poll_feedback(now, ssrc, &mut self.feedback) {
            self.feedback.clear();
        }
        Ok(self.output(sent == Sent::Datagram))
    }

    /// Whether the link turned poor, or good again, by `now` ([`crate::media::link_health`]).
    pub fn poll_link(&mut self, now: Instant) -> Option<LinkReport> {
        self.health.poll(now)
    }

    /// With [`AudioSource::Sound`]: the frame the next [`CallMedia::tick`] sends, for the shell
    /// to fill from the microphone.
    pub fn microphone_frame(&mut self) -> &mut [i16] {
        &mut self.outgoing
    }

    /// To call when the datagram of the last tick was handed to QUIC.
    pub fn count_sent(&mut self) {
        self.sent += 1;
    }

    pub fn counters(&self) -> MediaCounters {
        let rx = self.receiver.stats();
        MediaCounters {
            sent: self.sent,
            received: rx.packets + self.reflected,
            concealed: rx.concealed,
            fec: rx.recovered_by_fec,
            redundant: rx.recovered_by_redundancy,
            redundant_late: rx.redundancy_too_late,
            lost: rx.lost,
            late: rx.late,
            loss: self.receiver.loss_pattern(),
            buffer_delay_ms: self
                .receiver
                .jitter_stats()
                .mean_playout_delay()
                .map_or(0, |d| d.as_millis() as u64),
            buffer_delay_p95_ms: self
                .receiver
                .playout_delay_p95()
                .map_or(0, |d| d.as_millis() as u64),
            accelerated_ms: self.receiver.stretch_stats().accelerated().as_millis() as u64,
            expanded_ms: self.receiver.stretch_stats().expanded().as_millis() as u64,
        }
    }

    /// For a `stats` message: (loss % since the last call, jitter in ms, received, lost).
    pub fn stats_window(&mut self) -> (f32, f32, u64, u64) {
        let counters = self.counters();
        let (received_before, lost_before) = self.stats_mark;
        let received = counters.received.saturating_sub(received_before);
        let lost = counters.lost.saturating_sub(lost_before);
        self.stats_mark = (counters.received, counters.lost);
        let expected = received + lost;
        let loss_pct = if expected == 0 {
            0.0
        } else {
            (lost as f64 * 100.0 / expected as f64).clamp(0.0, 100.0) as f32
        };
        let jitter_ms = (self.receiver.jitter_stats().jitter.as_secs_f64() * 1000.0).clamp(
            0.0,
            f64::from(crate::agent::protocol::limits::MAX_JITTER_MS),
        ) as f32;
        (loss_pct, jitter_ms, counters.received, counters.lost)
    }

    fn next_outgoing_frame(&mut self) {
        match &self.source {
            AudioSource::Silence | AudioSource::Reflect => self.outgoing.fill(0),
            AudioSource::Echo => self.outgoing.copy_from_slice(&self.played),
            // The shell filled the frame from the microphone before the tick (or it stays
            // silent when the sound device could not be opened).
            AudioSource::Sound(_) => {}
            AudioSource::Play(samples) => {
                let samples: &Arc<[i16]> = samples;
                let start = self.play_position.min(samples.len());
                let end = (start + FRAME_SAMPLES).min(samples.len());
                let chunk = &samples[start..end];
                self.outgoing[..chunk.len()].copy_from_slice(chunk);
                self.outgoing[chunk.len()..].fill(0);
                self.play_position = end;
            }
        }
    }

    fn output(&self, with_datagram: bool) -> Tick<'_> {
        Tick {
            played: &self.played,
            datagram: with_datagram.then_some(self.datagram.as_slice()),
            feedback: (!self.feedback.is_empty()).then_some(self.feedback.as_slice()),
        }
    }
}

fn roq_flow(flow: FlowId) -> Result<rtp_quic::FlowId, MediaError> {
    rtp_quic::FlowId::new(flow.0).ok_or_else(|| MediaError::Unsupported {
        what: format!("flow id {}", flow.0),
        supported: "flow ids up to 2^62-1",
    })
}
