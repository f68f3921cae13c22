//! Agent → gateway audio: Opus RTP packets in, one 20 ms frame of 8 kHz PCM out per tick
//! (sans-IO; the call's playout clock calls [`OpusReceiver::pull`]).
//!
//! Packets go through the shared [`JitterBuffer`] at Opus's 48 kHz RTP clock. What it says to
//! play becomes audio here:
//! - **Frame**: decode it.
//! - **Conceal** for a lost packet: if the packet after it has already arrived and carries a FEC
//!   copy, rebuild the lost frame from that copy; otherwise run Opus's concealment.
//! - **Conceal** to grow the delay, or with nothing buffered: Opus's concealment.
//! - **Idle**: silence.
//!
//! Packets of payload type RED (RFC 2198, [`crate::media::red`]) carry copies of earlier frames
//! besides their own: each copy goes into the buffer at its frame's place, where it plays only
//! if the frame's own packet never comes. Which packets never came, copy or not, is what the
//! receiver reports to the sender ([`OpusReceiver::poll_feedback`], [`crate::media::feedback`]),
//! which sends copies only while this receiver asks for them.
//!
//! # Finding the next packet
//!
//! FEC needs packet N+1 while N is being concealed, but the jitter buffer hands out payloads only
//! in playout order and has no way to peek. So the receiver keeps its own small ring of recently
//! pushed payloads, indexed by extended sequence number, and mirrors the buffer's playout
//! position: a played frame is identified by its payload, and each concealment's cause (lost
//! frame, delay growth, underrun) is read from the buffer's counters, which move exactly once per
//! decision. The ring holds as many packets as the buffer can, so N+1 is in it whenever the
//! buffer has it. If the mirror ever loses track (a stream restart, a frame it cannot identify),
//! FEC pauses until the next identified frame; audio never depends on it.
//!
//! FEC can only help when packet N+1 is already buffered as N falls due, i.e. the buffer runs at
//! least about one frame deep. The buffer's target delay is one frame plus the measured jitter,
//! so on a steady network this holds only with luck of phase; a `jitter_min` of 40 ms makes it
//! hold always, at the price of 20 ms more mouth-to-ear delay.
//!
//! Decoded frames wait in a [`PcmQueue`], which time-stretches them when the buffer asks (see
//! [`crate::media::stretch`]), so the delay follows the network without whole frames dropped or
//! concealed for it. Every frame played or concealed is noted in a [`LossPattern`] for the
//! E-model estimate.

use std::time::{Duration, Instant};

use thiserror::Error;

use crate::media::emodel::LossPattern;
use crate::media::feedback::{Feedback, LossMonitor};
use crate::media::jitter::{JitterBuffer, JitterConfig, JitterConfigError, JitterStats, Playout};
use crate::media::opus::{packet_has_fec, packet_samples, OpusDecoder, OpusError, FRAME_SAMPLES};
use crate::media::red::{self, RedError, RED_PAYLOAD_TYPE};
use crate::media::rtcp::ReportBlock;
use crate::media::rtp::{self, RtpError};
use crate::media::rtp_quic::{OPUS_PAYLOAD_TYPE, OPUS_RTP_CLOCK_RATE, RTP_TICKS_PER_FRAME};
use crate::media::stretch::{PcmQueue, StretchStats, MAX_PERIOD};

/// The agent sends 20 ms frames; the jitter buffer and the playout tick share this period.
pub const FRAME_DURATION: Duration = Duration::from_millis(20);
/// Where a new stream's target delay starts (NetEQ starts at 80 ms too): agents' links jitter
/// by tens of milliseconds, and a buffer that starts lower grows in the first words, which is
/// heard (measured on ±30 ms jitter: agent → caller PESQ 3.58–3.86 from 40 ms, 3.82–3.87 from
/// 80). On a clean link the delay falls to `jitter_min` in the first pauses between phrases
/// (clean calls score 3.83 against 3.84 from 40 ms; docs/quality.md).
pub const INITIAL_DELAY: Duration = Duration::from_millis(80);
/// How often the receiver reports to the sender ([`crate::media::feedback`]); sooner when it
/// wants more protection than it last asked for.
pub const FEEDBACK_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OpusRxError {
    #[error(transparent)]
    Jitter(#[from] JitterConfigError),
    #[error(transparent)]
    Opus(#[from] OpusError),
    #[error(transparent)]
    Rtp(#[from] RtpError),
    #[error("rtp payload type {payload_type} is neither opus ({OPUS_PAYLOAD_TYPE}) nor red ({RED_PAYLOAD_TYPE})")]
    PayloadType { payload_type: u8 },
    #[error(transparent)]
    Red(#[from] RedError),
}

/// Counters since the receiver was created; they survive SSRC changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpusRxStats {
    /// Opus RTP packets accepted.
    pub packets: u64,
    /// Datagrams that were not RTP or not Opus.
    pub invalid: u64,
    /// Frames played from their own packet.
    pub decoded: u64,
    /// Frames filled by Opus's concealment.
    pub concealed: u64,
    /// Of `concealed`, those while audio was expected (not on hold, [`OpusReceiver::set_held`]):
    /// what the listener missed.
    pub missed: u64,
    /// Lost frames rebuilt from the FEC copy in the packet after them.
    pub recovered_by_fec: u64,
    /// Lost packets whose frame a later packet repeated in time (RFC 2198 redundancy).
    pub recovered_by_redundancy: u64,
    /// Redundant copies that came after their frame had been concealed.
    pub redundancy_too_late: u64,
    /// Packets that arrived after their turn to play.
    pub late: u64,
    /// Sequence numbers that never arrived in time, whether or not FEC or a redundant copy
    /// rebuilt their frame.
    pub lost: u64,
    /// Packets libopus could not decode or that did not hold exactly 20 ms; concealed instead.
    pub undecodable: u64,
    /// Frames played as silence: before the first packet, pauses in sending, stopped stream.
    pub idle: u64,
    /// Times the sender's SSRC changed and the stream started over.
    pub ssrc_changes: u64,
}

pub struct OpusReceiver {
    jitter: JitterBuffer,
    decoder: OpusDecoder,
    recent: RecentPackets,
    /// Extended sequence number the jitter buffer will play next, as far as we can tell.
    next_seq: Option<i64>,
    ssrc: Option<u32>,
    /// The buffer's counters at the last look, to see what its latest decision was.
    seen: JitterStats,
    /// Decoded audio waiting to play; stretched here.
    queue: PcmQueue,
    /// Frames played and concealed, for the quality estimate.
    loss: LossPattern,
    /// Frames whose own packet was lost (rebuilt or not), for the sender's protection.
    network_loss: LossMonitor,
    /// When feedback was last sent, and the span it asked for.
    last_feedback: Option<(Instant, u8)>,
    /// `stats.missed` when feedback was last sent.
    missed_reported: u64,
    /// The sender is silent on purpose (hold): a buffer running dry is no loss.
    held: bool,
    output: Vec<i16>,
    stats: OpusRxStats,
}

impl std::fmt::Debug for OpusReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusReceiver")
            .field("next_seq", &self.next_seq)
            .field("ssrc", &self.ssrc)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl OpusReceiver {
    /// `jitter_min`/`jitter_max` bound the buffer's delay (config `media.jitter_*_ms`).
    pub fn new(jitter_min: Duration, jitter_max: Duration) -> Result<Self, OpusRxError> {
        let mut config = JitterConfig::new(OPUS_RTP_CLOCK_RATE, FRAME_DURATION);
        config.min_delay = jitter_min;
        config.max_delay = jitter_max;
        let frames_in_max = jitter_max.as_nanos() / FRAME_DURATION.as_nanos();
        config.max_frames = usize::try_from(2 * frames_in_max + 2).unwrap_or(usize::MAX);
        config.stretch = true;
        config.initial_delay = INITIAL_DELAY;
        config.validate()?;
        let capacity = config.max_frames;
        Ok(Self {
            jitter: JitterBuffer::new(config),
            decoder: OpusDecoder::new()?,
            recent: RecentPackets::new(capacity),
            next_seq: None,
            ssrc: None,
            seen: JitterStats::default(),
            queue: PcmQueue::new(),
            loss: LossPattern::default(),
            network_loss: LossMonitor::for_new_stream(),
            last_feedback: None,
            missed_reported: 0,
            held: false,
            output: Vec::with_capacity(FRAME_SAMPLES + MAX_PERIOD),
            stats: OpusRxStats::default(),
        })
    }

    /// One RTP packet (the datagram after its flow id) arrived at `now`. Errors say why it was
    /// dropped; they are counted in `invalid` and never disturb playout.
    pub fn push(&mut self, now: Instant, rtp_packet: &[u8]) -> Result<(), OpusRxError> {
        let packet = match rtp::parse(rtp_packet) {
            Ok(packet) => packet,
            Err(e) => {
                self.stats.invalid += 1;
                return Err(e.into());
            }
        };
        let header = packet.header;
        let (primary, redundant) = match header.payload_type {
            OPUS_PAYLOAD_TYPE => (packet.payload, None),
            RED_PAYLOAD_TYPE => match red::parse(packet.payload) {
                Ok(parsed) => (parsed.primary, Some(parsed.redundant)),
                Err(e) => {
                    self.stats.invalid += 1;
                    return Err(e.into());
                }
            },
            payload_type => {
                self.stats.invalid += 1;
                return Err(OpusRxError::PayloadType { payload_type });
            }
        };
        if self.ssrc.is_some_and(|ssrc| ssrc != header.ssrc) {
            self.start_over()?;
            self.stats.ssrc_changes += 1;
        }
        self.ssrc = Some(header.ssrc);
        self.stats.packets += 1;

        self.jitter
            .push(now, header.sequence, header.timestamp, primary);
        let stats = self.jitter.stats();
        if stats.restarts > self.seen.restarts {
            // The buffer dropped everything and renumbers from this packet; so do we.
            self.recent.clear();
        }
        if self.playout_moved_unseen(&stats) {
            self.next_seq = None;
        }
        self.recent.insert(header.sequence, primary);
        self.take_counters(stats);
        for copy in redundant.iter().flatten().flatten() {
            // red::parse keeps only copies at most MAX_SPAN frames back.
            let seq = header.sequence.wrapping_sub(copy.frames_back);
            let ts = header
                .timestamp
                .wrapping_sub(u32::from(copy.frames_back) * RTP_TICKS_PER_FRAME);
            if self.jitter.push_redundant(seq, ts, copy.payload) {
                self.recent.insert(seq, copy.payload);
            }
        }
        if redundant.is_some() {
            self.take_counters(self.jitter.stats());
        }
        Ok(())
    }

    /// Called once per 20 ms tick: the next 160 samples at 8 kHz to play.
    pub fn pull(&mut self, now: Instant) -> &[i16] {
        while self.queue.len() < FRAME_SAMPLES {
            let before = (self.stats.concealed, self.stats.idle);
            self.next_frame(now, self.queue.queued());
            if self.stats.idle == before.1 {
                self.loss.frame(self.stats.concealed > before.0);
            }
            self.queue.push(&mut self.output, self.jitter.stretch());
        }
        self.output.clear();
        self.queue.take(FRAME_SAMPLES, &mut self.output);
        &self.output
    }

    /// Decodes, recovers or conceals the next frame into `output`, as the buffer says.
    fn next_frame(&mut self, now: Instant, queued: Duration) {
        self.output.clear();
        let playout = self.jitter.pop_behind(now, queued);
        let stats = self.jitter.stats();
        let lost_now = stats.lost.saturating_sub(self.seen.lost);
        let recovered_now = stats.recovered > self.seen.recovered;
        let inserted_now = stats.inserted > self.seen.inserted;
        if self.playout_moved_unseen(&stats) {
            self.next_seq = None;
        }
        self.take_counters(stats);

        for _ in 0..lost_now {
            self.network_loss.frame(true);
        }
        match playout {
            Playout::Frame(payload) => {
                self.network_loss.frame(recovered_now);
                self.next_seq = self
                    .recent
                    .find_from(self.next_seq, &payload)
                    .map(|seq| seq + 1);
                self.play_packet(&payload);
            }
            Playout::Conceal if !inserted_now && lost_now > 0 => {
                // Earlier underrun concealments stood in for the first lost frames; this one
                // stands in for the last.
                // The buffer counts at most a few thousand losses per tick, so the cast is exact.
                let lost_seq = self.next_seq.map(|next| next + lost_now as i64 - 1);
                self.next_seq = lost_seq.map(|seq| seq + 1);
                let next_payload = lost_seq.and_then(|seq| self.recent.get(seq + 1));
                match next_payload {
                    Some(next) if packet_has_fec(next) => {
                        let recovered =
                            self.decoder
                                .recover_from_fec(next, FRAME_SAMPLES, &mut self.output);
                        if recovered.is_ok() && self.output.len() == FRAME_SAMPLES {
                            self.stats.recovered_by_fec += 1;
                        } else {
                            self.output.clear();
                            self.conceal();
                        }
                    }
                    _ => self.conceal(),
                }
            }
            Playout::Conceal => self.conceal(),
            Playout::Idle => {
                self.stats.idle += 1;
                self.output.resize(FRAME_SAMPLES, 0);
            }
        }
    }

    /// The sender stops on purpose (hold) or resumes: frames concealed while held are not
    /// counted as missed, nor reported as such.
    pub fn set_held(&mut self, held: bool) {
        self.held = held;
    }

    /// Feedback for the sender, when due: appended to `out` as one RTCP compound packet.
    /// `reporter_ssrc` is the SSRC this end sends with.
    pub fn poll_feedback(&mut self, now: Instant, reporter_ssrc: u32, out: &mut Vec<u8>) -> bool {
        let (Some(ssrc), Some(highest)) = (self.ssrc, self.recent.highest) else {
            return false;
        };
        let span = self.network_loss.wanted_span();
        let due = match self.last_feedback {
            None => true,
            Some((sent, asked)) => {
                span > asked || now.saturating_duration_since(sent) >= FEEDBACK_INTERVAL
            }
        };
        if !due {
            return false;
        }
        self.last_feedback = Some((now, span));
        self.jitter.expect_copies(usize::from(span));
        let concealed = self.stats.missed.saturating_sub(self.missed_reported);
        self.missed_reported = self.stats.missed;
        Feedback {
            reporter_ssrc,
            report: ReportBlock {
                ssrc,
                fraction_lost: self.network_loss.take_fraction_lost(),
                cumulative_lost: i32::try_from(self.network_loss.total_lost()).unwrap_or(i32::MAX),
                // RFC 3550 wants the cycle count in the top half: the low 32 bits of the
                // extended number are exactly that.
                extended_highest_sequence: highest as u32,
                jitter: self.jitter.stats().jitter_clock_units,
                ..ReportBlock::default()
            },
            span,
            concealed: u8::try_from(concealed).unwrap_or(u8::MAX),
        }
        .write_to(out);
        true
    }

    /// How much audio was played faster or slower to move the buffer's delay.
    pub fn stretch_stats(&self) -> StretchStats {
        self.queue.stats()
    }

    /// Which frames had to be concealed (FEC's rebuilt ones are not), for the E-model.
    pub fn loss_pattern(&self) -> LossPattern {
        self.loss
    }

    pub fn stats(&self) -> &OpusRxStats {
        &self.stats
    }

    /// The jitter buffer's view of the current stream (delay, jitter, counters since the last
    /// SSRC change).
    pub fn jitter_stats(&self) -> JitterStats {
        self.jitter.stats()
    }

    /// The 95th percentile of how long this call's frames waited in the jitter buffer.
    pub fn playout_delay_p95(&self) -> Option<Duration> {
        self.jitter.playout_delay_quantile(0.95)
    }

    fn play_packet(&mut self, payload: &[u8]) {
        if packet_samples(payload) == Some(FRAME_SAMPLES)
            && self.decoder.decode(payload, &mut self.output).is_ok()
            && self.output.len() == FRAME_SAMPLES
        {
            self.stats.decoded += 1;
            return;
        }
        self.stats.undecodable += 1;
        self.output.clear();
        self.conceal();
    }

    /// Fills the output with Opus concealment, or silence if even that fails.
    fn conceal(&mut self) {
        self.stats.concealed += 1;
        if !self.held {
            self.stats.missed += 1;
        }
        if self
            .decoder
            .conceal(FRAME_SAMPLES, &mut self.output)
            .is_err()
        {
            self.output.clear();
        }
        self.output.resize(FRAME_SAMPLES, 0);
    }

    /// A restart or an overflow moves the buffer's playout position by an amount its counters do
    /// not tell; the mirror then waits for the next identified frame.
    fn playout_moved_unseen(&self, stats: &JitterStats) -> bool {
        stats.restarts > self.seen.restarts || stats.overflow > self.seen.overflow
    }

    /// Adds what the buffer counted since the last look to our cumulative stats.
    fn take_counters(&mut self, stats: JitterStats) {
        self.stats.late += stats.late.saturating_sub(self.seen.late);
        let recovered = stats.recovered.saturating_sub(self.seen.recovered);
        // A frame played from a copy still lost its own packet.
        self.stats.lost += stats.lost.saturating_sub(self.seen.lost) + recovered;
        self.stats.recovered_by_redundancy += recovered;
        self.stats.redundancy_too_late += stats
            .recovered_late
            .saturating_sub(self.seen.recovered_late);
        self.seen = stats;
    }

    /// A new SSRC is a new stream: nothing of the old one may leak into it.
    fn start_over(&mut self) -> Result<(), OpusRxError> {
        self.jitter.reset();
        self.decoder.reset()?;
        self.recent.clear();
        self.next_seq = None;
        self.seen = JitterStats::default();
        Ok(())
    }
}

/// Payloads of the most recent packets by extended sequence number, in a ring whose slots keep
/// their allocations, so steady-state pushes do not allocate.
struct RecentPackets {
    slots: Vec<Slot>,
    /// Highest extended sequence number seen: the reference for extending the next one.
    highest: Option<i64>,
}

#[derive(Default)]
struct Slot {
    seq: Option<i64>,
    payload: Vec<u8>,
}

impl RecentPackets {
    fn new(capacity: usize) -> Self {
        // A power of two lets the slot be the sequence number's low bits.
        let len = capacity
            .saturating_add(2)
            .clamp(4, 4096)
            .next_power_of_two();
        Self {
            slots: (0..len).map(|_| Slot::default()).collect(),
            highest: None,
        }
    }

    fn clear(&mut self) {
        for slot in &mut self.slots {
            slot.seq = None;
        }
        self.highest = None;
    }

    fn slot_index(&self, seq: i64) -> usize {
        // The length is a power of two, so masking yields an index inside the ring.
        (seq as usize) & (self.slots.len() - 1)
    }

    fn insert(&mut self, seq: u16, payload: &[u8]) {
        let ext = match self.highest {
            // The nearest extension, as RFC 3550 A.1 and the jitter buffer do it.
            Some(highest) => highest + i64::from(seq.wrapping_sub(highest as u16) as i16),
            None => i64::from(seq),
        };
        if self.highest.is_none_or(|highest| ext > highest) {
            self.highest = Some(ext);
        }
        let index = self.slot_index(ext);
        let slot = &mut self.slots[index];
        // A ring slot may only hold something newer; an old straggler must not evict it.
        if slot.seq.is_some_and(|held| held > ext) {
            return;
        }
        slot.seq = Some(ext);
        slot.payload.clear();
        slot.payload.extend_from_slice(payload);
    }

    fn get(&self, seq: i64) -> Option<&[u8]> {
        let slot = &self.slots[self.slot_index(seq)];
        (slot.seq == Some(seq)).then_some(slot.payload.as_slice())
    }

    /// The first sequence number at or after `from` holding `payload`: the buffer plays in order,
    /// so that is the frame it just played. With no position known, the oldest match in the ring.
    fn find_from(&self, from: Option<i64>, payload: &[u8]) -> Option<i64> {
        let highest = self.highest?;
        let oldest = highest - self.slots.len() as i64 + 1;
        let start = from.map_or(oldest, |from| from.max(oldest));
        (start..=highest).find(|&seq| self.get(seq) == Some(payload))
    }
}

#[cfg(test)]
mod tests;
