//! The carrier's media leg as a sans-IO core: RTP and RTCP in and out, the jitter buffer, G.711
//! with concealment, and DTMF from both RFC 4733 events and in-band tones, merged.
//!
//! Symmetric RTP: we send to where the carrier's RTP really comes from, not where its SDP says,
//! so a carrier (or its SBC) behind NAT still hears us. The first source latches; another source
//! takes over only after the latched one has been silent for [`RELATCH_AFTER`], so a stray or
//! spoofed packet cannot steal the stream mid-call.
//!
//! SRTP, when the SDP negotiated it, wraps all of this at the edge: what arrives is decrypted
//! and authenticated before anything else looks at it (so a forged packet cannot latch), what
//! leaves is encrypted last, in [`RtpMedia::poll_transmit`].
use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use crate::media::dtmf::{
    DigitFrame, DigitSender, DtmfError, DtmfMerger, InbandDetector, Rfc4733Receiver, TelephoneEvent,
};
use crate::media::emodel::LossPattern;
use crate::media::g711::G711Law;
use crate::media::jitter::{JitterBuffer, JitterConfig, Playout};
use crate::media::plc::G711Concealer;
use crate::media::rtcp::{RtcpConfig, RtcpSession, RtcpStats};
use crate::media::rtp::{self, RtpSender};
use crate::media::srtp::SrtpSession;
use crate::media::stretch::{PcmQueue, StretchStats, MAX_PERIOD};
use crate::sip::sdp::{Codec, Negotiated};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const SAMPLE_RATE: u32 = 8000;
pub const RELATCH_AFTER: Duration = Duration::from_millis(500);

/// A datagram for the shell to send from the leg's RTP or RTCP socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaTransmit {
    pub to: SocketAddr,
    pub rtcp: bool,
    pub payload: Vec<u8>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LegStats {
    pub rtp_received: u64,
    pub rtp_sent: u64,
    pub rtp_rejected: u64,
    /// SRTP or SRTCP packets that failed authentication or replayed an earlier one.
    pub srtp_rejected: u64,
    pub digits: u64,
}

/// The leg's media protection, as the SDP decided it.
enum Security {
    Plain,
    Srtp(Box<SrtpSession>),
    /// Keys were negotiated but no context could be made from them: nothing is sent or played
    /// rather than sending the audio in the clear.
    Broken,
}

impl Security {
    fn for_negotiation(neg: &Negotiated) -> Security {
        match &neg.srtp {
            None => Security::Plain,
            Some(keys) => match SrtpSession::new(keys) {
                Ok(session) => Security::Srtp(Box::new(session)),
                Err(e) => {
                    tracing::error!(error = %e, "srtp keys unusable: the call's media is stopped");
                    Security::Broken
                }
            },
        }
    }

    /// What arrived, decrypted and authenticated when the leg is SRTP; `None` when it must be
    /// dropped (forged, replayed, or no keys to open it with).
    fn open<'a>(&mut self, datagram: &'a [u8], rtcp: bool) -> Option<Cow<'a, [u8]>> {
        match self {
            Security::Plain => Some(Cow::Borrowed(datagram)),
            Security::Srtp(session) => {
                let opened = if rtcp {
                    session.unprotect_rtcp(datagram)
                } else {
                    session.unprotect_rtp(datagram)
                };
                opened.ok().map(Cow::Owned)
            }
            Security::Broken => None,
        }
    }

    fn unchanged_for(&self, neg: &Negotiated) -> bool {
        match (self, &neg.srtp) {
            (Security::Plain, None) => true,
            (Security::Srtp(session), Some(keys)) => session.keys() == keys,
            _ => false,
        }
    }
}

pub struct RtpMedia {
    neg: Negotiated,
    security: Security,
    law: G711Law,
    samples_per_frame: usize,
    symmetric: bool,
    latched: Option<(SocketAddr, Instant)>,
    latched_rtcp: Option<SocketAddr>,
    jitter: JitterBuffer,
    jitter_bounds: (Duration, Duration),
    /// Samples per packet the carrier actually sends. Carriers do not always send what the SDP's
    /// ptime says (30 ms packets on a 20 ms call are common), so the jitter buffer and the
    /// concealer work in the carrier's packets and `playout` re-cuts them into our frames,
    /// stretching them as the jitter buffer asks.
    rx_packet_samples: usize,
    playout: PcmQueue,
    /// One carrier packet, decoded.
    packet_pcm: Vec<i16>,
    /// Packets played and concealed, for the quality estimate.
    loss: LossPattern,
    ptime: Duration,
    concealer: G711Concealer,
    sender: RtpSender,
    talk_spurt_start: bool,
    rtcp: RtcpSession,
    dtmf_events: Rfc4733Receiver,
    inband: InbandDetector,
    merger: DtmfMerger,
    /// The carrier's audio and telephone-event streams, each by its SSRC. Many carriers send
    /// events on the audio's SSRC, some on one of their own, interleaved with the audio: each
    /// stream starts over only when its own SSRC changes.
    audio_ssrc: Option<u32>,
    event_ssrc: Option<u32>,
    /// When RTP last arrived, or when the carrier was last not expected to send (start, hold).
    last_heard: Instant,
    /// The RTP timeout fires once per call, whichever phase the leg is in.
    rtp_timed_out: bool,
    received: Vec<i16>,
    encoded: Vec<u8>,
    transmits: VecDeque<MediaTransmit>,
    digits: VecDeque<char>,
    /// Key presses toward the carrier, and the frame a tone press writes.
    digits_out: DigitSender,
    tone: Vec<i16>,
    stats: LegStats,
}

impl RtpMedia {
    pub fn new(
        now: Instant,
        wall_clock: SystemTime,
        neg: Negotiated,
        symmetric: bool,
        jitter_min: Duration,
        jitter_max: Duration,
        rng: &mut impl Rng,
    ) -> Self {
        let ssrc = rng.gen();
        let ptime = Duration::from_millis(neg.ptime_ms.clamp(10, 60).into());
        let samples_per_frame = (SAMPLE_RATE as usize * ptime.as_millis() as usize) / 1000;
        RtpMedia {
            security: Security::for_negotiation(&neg),
            law: law_of(neg.codec),
            samples_per_frame,
            symmetric,
            latched: None,
            latched_rtcp: None,
            jitter: JitterBuffer::new(jitter_config(samples_per_frame, jitter_min, jitter_max)),
            jitter_bounds: (jitter_min, jitter_max),
            rx_packet_samples: samples_per_frame,
            playout: PcmQueue::new(),
            packet_pcm: Vec::with_capacity(480 + MAX_PERIOD),
            loss: LossPattern::default(),
            ptime,
            concealer: G711Concealer::new(samples_per_frame),
            sender: RtpSender::with_random_start(ssrc, rng),
            talk_spurt_start: true,
            rtcp: RtcpSession::new(
                RtcpConfig::g711(ssrc, format!("trunkgate-{ssrc:08x}")),
                now,
                wall_clock,
                StdRng::seed_from_u64(rng.gen()),
            ),
            dtmf_events: Rfc4733Receiver::new(),
            inband: InbandDetector::new(SAMPLE_RATE),
            merger: DtmfMerger::new(),
            audio_ssrc: None,
            event_ssrc: None,
            last_heard: now,
            rtp_timed_out: false,
            received: vec![0; samples_per_frame],
            encoded: Vec::with_capacity(samples_per_frame),
            transmits: VecDeque::new(),
            digits: VecDeque::new(),
            digits_out: DigitSender::new(ptime),
            tone: vec![0; samples_per_frame],
            stats: LegStats::default(),
            neg,
        }
    }

    pub fn samples_per_frame(&self) -> usize {
        self.samples_per_frame
    }

    pub fn ptime(&self) -> Duration {
        self.ptime
    }

    pub fn negotiated(&self) -> &Negotiated {
        &self.neg
    }

    /// How long the carrier has sent no RTP while it should have; zero while it is not
    /// expected to send (an inactive or held stream).
    pub fn silent_for(&self, now: Instant) -> Duration {
        if self.neg.we_receive() {
            now.saturating_duration_since(self.last_heard)
        } else {
            Duration::ZERO
        }
    }

    /// True once, when the carrier has been silent for `limit` (while it should send).
    pub fn rtp_timed_out(&mut self, now: Instant, limit: Option<Duration>) -> bool {
        let due = limit.is_some_and(|l| self.silent_for(now) >= l);
        if due && !self.rtp_timed_out {
            self.rtp_timed_out = true;
            return true;
        }
        false
    }

    /// A re-INVITE changed the media: direction (hold), address or codec.
    pub fn renegotiate(&mut self, now: Instant, neg: Negotiated) {
        // Silence is counted afresh from a change of media: a resumed stream gets its full time.
        self.last_heard = now;
        if neg.remote_rtp != self.neg.remote_rtp || neg.codec != self.neg.codec {
            self.latched = None;
            self.latched_rtcp = None;
            self.jitter.reset();
        }
        self.law = law_of(neg.codec);
        if !self.neg.we_send() && neg.we_send() {
            self.talk_spurt_start = true;
        }
        if !self.security.unchanged_for(&neg) {
            self.security = Security::for_negotiation(&neg);
        }
        self.neg = neg;
    }

    pub fn handle_rtp(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        if rtp::looks_like_rtcp(datagram) {
            return self.handle_rtcp(now, from, datagram);
        }
        let Some(datagram) = self.security.open(datagram, false) else {
            self.stats.srtp_rejected += 1;
            return;
        };
        let Ok(pkt) = rtp::parse(&datagram) else {
            self.stats.rtp_rejected += 1;
            return;
        };
        let pt = pkt.header.payload_type;
        let is_event = Some(pt) == self.neg.telephone_event_pt;
        if pt != self.neg.payload_type && !is_event {
            self.stats.rtp_rejected += 1;
            return;
        }
        self.latch(now, from);
        self.last_heard = now;
        let ssrc = Some(pkt.header.ssrc);
        if is_event && self.event_ssrc != ssrc {
            if self.event_ssrc.is_some() {
                self.dtmf_events.reset();
            }
            self.event_ssrc = ssrc;
        }
        if !is_event && self.audio_ssrc != ssrc {
            if self.audio_ssrc.is_some() {
                self.jitter.reset();
            }
            self.audio_ssrc = ssrc;
        }
        self.stats.rtp_received += 1;
        self.rtcp
            .on_rtp_received(now, &pkt.header, pkt.payload.len());
        if is_event {
            if let Ok(ev) = TelephoneEvent::parse(pkt.payload) {
                if let Some(d) =
                    self.dtmf_events
                        .on_packet(pkt.header.timestamp, pkt.header.marker, &ev)
                {
                    if let Some(d) = self.merger.on_rfc4733(now, d) {
                        self.push_digit(d);
                    }
                }
            }
            return;
        }
        if self.neg.we_receive() {
            self.follow_packet_size(pkt.payload.len());
            self.jitter
                .push(now, pkt.header.sequence, pkt.header.timestamp, pkt.payload);
        }
    }

    pub fn handle_rtcp(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let Some(datagram) = self.security.open(datagram, true) else {
            self.stats.srtp_rejected += 1;
            return;
        };
        if self.symmetric {
            self.latched_rtcp = Some(from);
        }
        if let Err(e) = self.rtcp.on_rtcp(now, &datagram) {
            tracing::debug!(%from, error = %e, "rtcp packet dropped");
        }
    }

    fn latch(&mut self, now: Instant, from: SocketAddr) {
        if !self.symmetric {
            return;
        }
        match self.latched {
            Some((addr, _)) if addr == from => self.latched = Some((from, now)),
            Some((_, last)) if now.duration_since(last) < RELATCH_AFTER => {}
            _ => {
                tracing::debug!(%from, "rtp latched");
                self.latched = Some((from, now));
            }
        }
    }

    /// Where our RTP goes: the latched source, else the SDP address.
    pub fn rtp_destination(&self) -> Option<SocketAddr> {
        self.latched.map(|(a, _)| a).or(self.neg.remote_rtp)
    }

    fn rtcp_destination(&self) -> Option<SocketAddr> {
        self.latched_rtcp
            .or_else(|| {
                // RTP latched on the top port has no port above it for RTCP (RFC 3550 §11):
                // fall back to what the SDP said.
                let (rtp, _) = self.latched?;
                Some(SocketAddr::new(rtp.ip(), rtp.port().checked_add(1)?))
            })
            .or(self.neg.remote_rtcp)
    }

    fn push_digit(&mut self, d: char) {
        self.stats.digits += 1;
        self.digits.push_back(d);
    }

    /// One frame period: plays out one received frame (returned, decoded) and sends `outgoing`.
    pub fn tick(&mut self, now: Instant, outgoing: &[i16]) -> &[i16] {
        self.play_out(now);
        self.send(now, outgoing);
        &self.received
    }

    /// Re-sizes the jitter buffer when the carrier's packets are not the size it was built for.
    /// G.711 carries one sample per byte; sizes outside 10–60 ms in whole milliseconds are
    /// taken for damage and left alone.
    fn follow_packet_size(&mut self, samples: usize) {
        let whole_ms = samples.is_multiple_of(SAMPLE_RATE as usize / 1000);
        if samples == self.rx_packet_samples || !whole_ms || !(80..=480).contains(&samples) {
            return;
        }
        tracing::debug!(
            from = self.rx_packet_samples,
            to = samples,
            "carrier packet size changed"
        );
        self.rx_packet_samples = samples;
        let (min, max) = self.jitter_bounds;
        self.jitter.reconfigure(jitter_config(samples, min, max));
        self.concealer = G711Concealer::new(samples);
    }

    /// Fills `received` with one of our frames, taking as many of the carrier's packets from
    /// the jitter buffer as that needs.
    fn play_out(&mut self, now: Instant) {
        let packet = self.rx_packet_samples;
        while self.playout.len() < self.samples_per_frame {
            let pcm = &mut self.packet_pcm;
            pcm.clear();
            match self.jitter.pop_behind(now, self.playout.queued()) {
                Playout::Frame(payload) => {
                    self.law.decode(&payload, pcm);
                    pcm.resize(packet, 0);
                    self.concealer.good_frame(pcm);
                    self.loss.frame(false);
                }
                Playout::Conceal => {
                    pcm.resize(packet, 0);
                    self.concealer.conceal(pcm);
                    self.loss.frame(true);
                }
                Playout::Idle => pcm.resize(packet, 0),
            }
            self.playout.push(pcm, self.jitter.stretch());
        }
        self.received.clear();
        self.playout
            .take(self.samples_per_frame, &mut self.received);
        // In-band detection runs on what the caller really sent; concealed audio is a guess.
        if let Some(d) = self.inband.process(&self.received) {
            if let Some(d) = self.merger.on_inband(now, d) {
                self.push_digit(d);
            }
        }
    }

    fn send(&mut self, now: Instant, pcm: &[i16]) {
        let samples = self.samples_per_frame as u32;
        let Some(to) = self.rtp_destination().filter(|_| self.neg.we_send()) else {
            // Keep the timestamp running while on hold so the stream resumes in step.
            self.sender.skip_silence(samples);
            self.talk_spurt_start = true;
            return;
        };
        self.encoded.clear();
        let telephone_event = self.neg.telephone_event_pt;
        let frame = self.digits_out.next_frame(
            telephone_event.is_some(),
            self.sender.next_timestamp(),
            &mut self.tone,
        );
        let header = match (frame, telephone_event) {
            (
                DigitFrame::Event {
                    event,
                    timestamp,
                    marker,
                },
                Some(pt),
            ) => {
                event.write(&mut self.encoded);
                let header = self
                    .sender
                    .next_header_with_timestamp(pt, timestamp, marker);
                self.sender.advance_timestamp(samples);
                header
            }
            (frame, _) => {
                let pcm = if frame == DigitFrame::Tone {
                    &self.tone[..]
                } else {
                    pcm
                };
                self.law.encode(
                    &pcm[..pcm.len().min(self.samples_per_frame)],
                    &mut self.encoded,
                );
                self.encoded
                    .resize(self.samples_per_frame, self.law.silence_byte());
                self.sender
                    .next_header(self.neg.payload_type, samples, self.talk_spurt_start)
            }
        };
        self.talk_spurt_start = false;
        let mut payload = Vec::with_capacity(rtp::FIXED_HEADER_LEN + self.encoded.len());
        rtp::write(&header, &self.encoded, &mut payload);
        self.rtcp
            .on_rtp_sent(now, self.encoded.len(), header.timestamp);
        self.stats.rtp_sent += 1;
        self.transmits.push_back(MediaTransmit {
            to,
            rtcp: false,
            payload,
        });
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.rtcp.poll_timeout().is_some_and(|t| t <= now) {
            self.rtcp.handle_timeout(now);
        }
        while let Some(report) = self.rtcp.poll_transmit() {
            if let Some(to) = self.rtcp_destination() {
                self.transmits.push_back(MediaTransmit {
                    to,
                    rtcp: true,
                    payload: report,
                });
            }
        }
        while self.rtcp.poll_event().is_some() {}
    }

    /// An RTCP BYE for the end of the call.
    pub fn bye(&mut self, now: Instant) {
        let bye = self.rtcp.bye(now, Some("call ended"));
        if let Some(to) = self.rtcp_destination() {
            self.transmits.push_back(MediaTransmit {
                to,
                rtcp: true,
                payload: bye,
            });
        }
    }

    /// The next datagram to send, encrypted when the leg is SRTP.
    pub fn poll_transmit(&mut self) -> Option<MediaTransmit> {
        loop {
            let mut transmit = self.transmits.pop_front()?;
            let session = match &mut self.security {
                Security::Plain => return Some(transmit),
                Security::Srtp(session) => session,
                Security::Broken => continue,
            };
            let protected = if transmit.rtcp {
                session.protect_rtcp(&transmit.payload)
            } else {
                session.protect_rtp(&transmit.payload)
            };
            match protected {
                Ok(payload) => {
                    transmit.payload = payload;
                    return Some(transmit);
                }
                Err(e) => tracing::debug!(error = %e, "srtp: packet not sent"),
            }
        }
    }

    /// Queues key presses toward the carrier: RFC 4733 events if it negotiated telephone-event,
    /// tones in the audio otherwise.
    pub fn send_digits(&mut self, digits: &str) -> Result<(), DtmfError> {
        self.digits_out.queue(digits)
    }

    pub fn poll_digit(&mut self) -> Option<char> {
        self.digits.pop_front()
    }

    pub fn stats(&self) -> &LegStats {
        &self.stats
    }

    pub fn jitter_stats(&self) -> crate::media::jitter::JitterStats {
        self.jitter.stats()
    }

    /// The 95th percentile of how long this call's frames waited in the jitter buffer.
    pub fn playout_delay_p95(&self) -> Option<std::time::Duration> {
        self.jitter.playout_delay_quantile(0.95)
    }

    /// How much of the carrier's audio was played faster or slower to move the buffer's delay.
    pub fn stretch_stats(&self) -> StretchStats {
        self.playout.stats()
    }

    /// Which of the carrier's packets had to be concealed, for the E-model.
    pub fn loss_pattern(&self) -> LossPattern {
        self.loss
    }

    pub fn rtcp_stats(&self) -> RtcpStats {
        self.rtcp.stats()
    }
}

fn jitter_config(packet_samples: usize, min: Duration, max: Duration) -> JitterConfig {
    let frame = Duration::from_millis((packet_samples / (SAMPLE_RATE as usize / 1000)) as u64);
    let max = max.max(min).max(frame);
    let frames_in_max = (max.as_millis() / frame.as_millis().max(1)) as usize;
    JitterConfig {
        clock_rate: SAMPLE_RATE,
        frame,
        min_delay: min.max(frame),
        max_delay: max,
        max_frames: 2 * frames_in_max + 2,
        stretch: true,
        // Carrier media comes over managed links: the first frame's worth is enough to start.
        initial_delay: frame,
    }
}

fn law_of(codec: Codec) -> G711Law {
    match codec {
        Codec::Pcmu => G711Law::Ulaw,
        Codec::Pcma => G711Law::Alaw,
    }
}

#[cfg(test)]
mod tests;
