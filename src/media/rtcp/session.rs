//! The RTCP side of one media leg, sans-IO: the call actor feeds it every RTP packet it sends and
//! receives and every RTCP datagram, and asks it when to wake and what to send.
//!
//! Wall-clock time enters once, at construction, as the NTP time matching a monotonic instant;
//! from then on NTP timestamps are derived from `now`. The peer's round-trip arithmetic only needs
//! our timestamps to be consistent with each other, and a wall clock stepped by NTP mid-call
//! would break exactly that.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

use rand::RngCore;

use super::ntp::to_short_units;
use super::{
    parse_compound, round_trip_time, write_compound, Goodbye, NtpTimestamp, ReceiverReport,
    ReceptionStats, ReportBlock, RtcpError, RtcpPacket, SdesChunk, SenderReport, SequenceVerdict,
    SourceDescription, MAX_COUNT,
};
use crate::media::rtp::RtpHeader;

/// One report block per source fits in a report; sources beyond that are retired oldest first.
const MAX_REMOTE_SOURCES: usize = MAX_COUNT;
/// Our recent SRs, so an LSR that is not one of ours (a confused peer) yields no round trip.
const REMEMBERED_SENDER_REPORTS: usize = 8;
/// DLSR is truncated to 1/65536 s on both sides; a round trip this far below zero (about 1 ms)
/// is rounding on a fast link and reads as zero rather than unknown.
const ROUND_TRIP_ROUNDING_UNITS: u32 = 66;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpConfig {
    pub local_ssrc: u32,
    /// Should be unique and stable per endpoint, e.g. `user@host` (RFC 7022 for the details).
    pub cname: String,
    /// Media clock rate, which turns jitter from timestamp units into milliseconds.
    pub clock_rate: u32,
    /// The deterministic interval; each actual interval is 0.5–1.5 times this (RFC 3550 §6.3.1).
    /// Bandwidth-based scaling is left out: for a two-party G.711 leg the 5 s minimum dominates.
    pub report_interval: Duration,
}

impl RtcpConfig {
    pub fn g711(local_ssrc: u32, cname: impl Into<String>) -> Self {
        Self {
            local_ssrc,
            cname: cname.into(),
            clock_rate: 8000,
            report_interval: Duration::from_secs(5),
        }
    }
}

/// Things the peer told us that the call might act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpEvent {
    /// The source left; its statistics are folded into the totals.
    Goodbye { ssrc: u32, reason: Option<String> },
}

/// The peer's most recent report block about our stream.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerReport {
    /// 0.0–1.0, over the peer's last report interval.
    pub fraction_lost: f64,
    pub cumulative_lost: i32,
    pub extended_highest_sequence: u32,
    pub jitter_ms: f64,
    pub received_at: Instant,
}

/// What a call-quality dashboard shows for one leg.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RtcpStats {
    pub packets_sent: u64,
    /// Payload octets, as RTCP counts them.
    pub octets_sent: u64,
    /// Every packet that arrived, duplicates included.
    pub packets_received: u64,
    pub octets_received: u64,
    /// Expected minus distinct packets received, over all sources the leg has had.
    pub packets_lost: i64,
    pub duplicates: u64,
    /// 0.0–1.0, over our last report interval, for the source heard most recently.
    pub fraction_lost: f64,
    /// Interarrival jitter of the source heard most recently.
    pub jitter_ms: f64,
    pub round_trip_ms: Option<f64>,
    /// How the peer hears us.
    pub peer: Option<PeerReport>,
    pub remote_cname: Option<String>,
}

struct RemoteSource {
    ssrc: u32,
    reception: ReceptionStats,
    packets: u64,
    octets: u64,
    heard_since_report: bool,
    /// None for a source only known from RTCP.
    last_heard: Option<Instant>,
    /// Middle 32 bits of its last SR and when that arrived, for LSR/DLSR.
    last_sender_report: Option<(u32, Instant)>,
    cname: Option<String>,
}

impl RemoteSource {
    fn new(ssrc: u32) -> Self {
        Self {
            ssrc,
            reception: ReceptionStats::new(),
            packets: 0,
            octets: 0,
            heard_since_report: false,
            last_heard: None,
            last_sender_report: None,
            cname: None,
        }
    }

    /// Starts a new loss interval, so call it only when the block is actually sent.
    fn take_report_block(&mut self, now: Instant) -> ReportBlock {
        let (lsr, dlsr) = self
            .last_sender_report
            .map_or((0, 0), |(lsr, received_at)| {
                (
                    lsr,
                    to_short_units(now.saturating_duration_since(received_at)),
                )
            });
        ReportBlock {
            ssrc: self.ssrc,
            fraction_lost: self.reception.take_interval_fraction_lost(),
            cumulative_lost: clamp_to_i32(self.reception.cumulative_lost()),
            extended_highest_sequence: self.reception.extended_highest_sequence(),
            // Jitter is non-negative and far below u32::MAX units; the cast truncates like A.8.
            jitter: self.reception.jitter() as u32,
            last_sender_report: lsr,
            delay_since_last_sender_report: dlsr,
        }
    }
}

/// Counts of sources that left or were pushed out, so totals never go backwards.
#[derive(Default)]
struct RetiredTotals {
    packets: u64,
    octets: u64,
    lost: i64,
    duplicates: u64,
}

#[derive(Default)]
struct SendingState {
    packets: u64,
    octets: u64,
    last_rtp_timestamp: u32,
    last_sent_at: Option<Instant>,
    sent_since_report: bool,
}

/// RTCP for one media leg. Drive it like every core: feed events with `on_*`, call
/// [`handle_timeout`](Self::handle_timeout) at [`poll_timeout`](Self::poll_timeout), then drain
/// [`poll_transmit`](Self::poll_transmit) and [`poll_event`](Self::poll_event).
pub struct RtcpSession {
    config: RtcpConfig,
    epoch: Instant,
    ntp_at_epoch: NtpTimestamp,
    rng: Box<dyn RngCore + Send>,
    /// The report timer: due at a randomised interval after the previous report (half of one
    /// for the first, RFC 3550 §6.2); None once we said BYE.
    next_report: Option<Instant>,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<RtcpEvent>,
    sending: SendingState,
    our_sender_reports: VecDeque<u32>,
    sources: Vec<RemoteSource>,
    retired: RetiredTotals,
    peer_report: Option<PeerReport>,
    round_trip: Option<Duration>,
}

impl RtcpSession {
    /// `wall_clock_at_now` is the wall-clock reading taken together with `now`; `rng` draws the
    /// interval randomisation, so tests can pin it.
    pub fn new(
        config: RtcpConfig,
        now: Instant,
        wall_clock_at_now: SystemTime,
        rng: impl RngCore + Send + 'static,
    ) -> Self {
        let mut session = Self {
            config,
            epoch: now,
            ntp_at_epoch: NtpTimestamp::from_system_time(wall_clock_at_now),
            rng: Box::new(rng),
            next_report: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            sending: SendingState::default(),
            our_sender_reports: VecDeque::new(),
            sources: Vec::new(),
            retired: RetiredTotals::default(),
            peer_report: None,
            round_trip: None,
        };
        session.next_report = Some(now + session.randomised_interval() / 2);
        session
    }

    pub fn config(&self) -> &RtcpConfig {
        &self.config
    }

    /// Records a received RTP packet; `payload_len` excludes header and padding. The verdict
    /// tells the caller whether the packet was a duplicate worth dropping before the jitter
    /// buffer.
    pub fn on_rtp_received(
        &mut self,
        now: Instant,
        header: &RtpHeader,
        payload_len: usize,
    ) -> SequenceVerdict {
        let arrival = self.media_clock_at(now);
        let source = self.source_mut(header.ssrc);
        let verdict = source
            .reception
            .record(header.sequence, header.timestamp, arrival);
        source.packets += 1;
        source.octets += payload_len as u64;
        source.heard_since_report = true;
        source.last_heard = Some(now);
        verdict
    }

    /// Records an RTP packet we sent; `payload_len` excludes header and padding.
    pub fn on_rtp_sent(&mut self, now: Instant, payload_len: usize, rtp_timestamp: u32) {
        self.sending.packets += 1;
        self.sending.octets += payload_len as u64;
        self.sending.last_rtp_timestamp = rtp_timestamp;
        self.sending.last_sent_at = Some(now);
        self.sending.sent_since_report = true;
    }

    /// Records an RTCP datagram from the peer. A malformed datagram is rejected whole and
    /// changes nothing.
    pub fn on_rtcp(&mut self, now: Instant, datagram: &[u8]) -> Result<(), RtcpError> {
        for packet in parse_compound(datagram)? {
            match packet {
                RtcpPacket::SenderReport(report) => {
                    self.source_mut(report.ssrc).last_sender_report =
                        Some((report.ntp_time.middle_32(), now));
                    self.record_blocks_about_us(now, &report.reports);
                }
                RtcpPacket::ReceiverReport(report) => {
                    self.record_blocks_about_us(now, &report.reports);
                }
                RtcpPacket::SourceDescription(description) => {
                    for chunk in &description.chunks {
                        if let Some(cname) = chunk.cname() {
                            self.source_mut(chunk.ssrc).cname = Some(cname.to_owned());
                        }
                    }
                }
                RtcpPacket::Goodbye(goodbye) => {
                    for &ssrc in &goodbye.sources {
                        if let Some(index) = self.sources.iter().position(|s| s.ssrc == ssrc) {
                            let source = self.sources.swap_remove(index);
                            self.retire(&source);
                        }
                        self.events.push_back(RtcpEvent::Goodbye {
                            ssrc,
                            reason: goodbye.reason.clone(),
                        });
                    }
                }
                RtcpPacket::Other { .. } => {}
            }
        }
        Ok(())
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to run next; None after BYE.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_report
    }

    /// Queues a report if one is due and schedules the next.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(due) = self.next_report else {
            return;
        };
        if now < due {
            return;
        }
        let report = write_compound(&self.report_packets(now));
        self.transmits.push_back(report);
        self.next_report = Some(now + self.randomised_interval());
    }

    /// The next datagram to send on the RTCP path.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<RtcpEvent> {
        self.events.pop_front()
    }

    /// Ends the session: returns a final report + SDES + BYE compound to send, drops any report
    /// still queued (this one supersedes it) and stops the timer.
    pub fn bye(&mut self, now: Instant, reason: Option<&str>) -> Vec<u8> {
        let mut packets = self.report_packets(now);
        packets.push(RtcpPacket::Goodbye(Goodbye {
            sources: vec![self.config.local_ssrc],
            reason: reason.map(str::to_owned),
        }));
        self.transmits.clear();
        self.next_report = None;
        write_compound(&packets)
    }

    pub fn stats(&self) -> RtcpStats {
        let current = self
            .sources
            .iter()
            .filter(|source| source.last_heard.is_some())
            .max_by_key(|source| source.last_heard);
        let clock_rate = f64::from(self.config.clock_rate.max(1));
        RtcpStats {
            packets_sent: self.sending.packets,
            octets_sent: self.sending.octets,
            packets_received: self.retired.packets
                + self.sources.iter().map(|s| s.packets).sum::<u64>(),
            octets_received: self.retired.octets
                + self.sources.iter().map(|s| s.octets).sum::<u64>(),
            packets_lost: self.retired.lost
                + self
                    .sources
                    .iter()
                    .map(|s| s.reception.cumulative_lost())
                    .sum::<i64>(),
            duplicates: self.retired.duplicates
                + self
                    .sources
                    .iter()
                    .map(|s| s.reception.duplicates())
                    .sum::<u64>(),
            fraction_lost: current
                .map_or(0.0, |s| f64::from(s.reception.last_fraction_lost()) / 256.0),
            jitter_ms: current.map_or(0.0, |s| s.reception.jitter() * 1000.0 / clock_rate),
            round_trip_ms: self.round_trip.map(|rtt| rtt.as_secs_f64() * 1000.0),
            peer: self.peer_report.clone(),
            remote_cname: current.and_then(|s| s.cname.clone()),
        }
    }

    /// SR if we sent media since the last report, else RR; then our CNAME, which RFC 3550 §6.1
    /// requires in every compound packet.
    fn report_packets(&mut self, now: Instant) -> Vec<RtcpPacket> {
        let reports: Vec<ReportBlock> = self
            .sources
            .iter_mut()
            .filter(|source| source.heard_since_report && source.reception.has_received())
            .map(|source| {
                source.heard_since_report = false;
                source.take_report_block(now)
            })
            .collect();
        let ssrc = self.config.local_ssrc;
        let report = if self.sending.sent_since_report {
            self.sending.sent_since_report = false;
            let ntp_time = self.ntp_at(now);
            if self.our_sender_reports.len() == REMEMBERED_SENDER_REPORTS {
                self.our_sender_reports.pop_front();
            }
            self.our_sender_reports.push_back(ntp_time.middle_32());
            RtcpPacket::SenderReport(SenderReport {
                ssrc,
                ntp_time,
                rtp_time: self.rtp_time_at(now),
                // The wire counters are 32 bits and wrap, as RFC 3550 §6.4.1 allows.
                packet_count: self.sending.packets as u32,
                octet_count: self.sending.octets as u32,
                reports,
            })
        } else {
            RtcpPacket::ReceiverReport(ReceiverReport { ssrc, reports })
        };
        let description = RtcpPacket::SourceDescription(SourceDescription {
            chunks: vec![SdesChunk::with_cname(ssrc, &self.config.cname)],
        });
        vec![report, description]
    }

    fn record_blocks_about_us(&mut self, now: Instant, blocks: &[ReportBlock]) {
        let clock_rate = f64::from(self.config.clock_rate.max(1));
        let local_ssrc = self.config.local_ssrc;
        for block in blocks.iter().filter(|b| b.ssrc == local_ssrc) {
            self.peer_report = Some(PeerReport {
                fraction_lost: f64::from(block.fraction_lost) / 256.0,
                cumulative_lost: block.cumulative_lost,
                extended_highest_sequence: block.extended_highest_sequence,
                jitter_ms: f64::from(block.jitter) * 1000.0 / clock_rate,
                received_at: now,
            });
            let lsr = block.last_sender_report;
            if lsr == 0 || !self.our_sender_reports.contains(&lsr) {
                continue;
            }
            let arrival = self.ntp_at(now).middle_32();
            let dlsr = block.delay_since_last_sender_report;
            let round_trip = round_trip_time(arrival, lsr, dlsr).or_else(|| {
                round_trip_time(arrival.wrapping_add(ROUND_TRIP_ROUNDING_UNITS), lsr, dlsr)
                    .map(|_| Duration::ZERO)
            });
            if round_trip.is_some() {
                self.round_trip = round_trip;
            }
        }
    }

    /// The entry for `ssrc`, created if new; a full table first retires the longest-silent.
    fn source_mut(&mut self, ssrc: u32) -> &mut RemoteSource {
        let index = match self.sources.iter().position(|s| s.ssrc == ssrc) {
            Some(index) => index,
            None => {
                if self.sources.len() >= MAX_REMOTE_SOURCES {
                    let oldest = (0..self.sources.len())
                        .min_by_key(|&i| self.sources[i].last_heard)
                        .unwrap_or(0);
                    let source = self.sources.swap_remove(oldest);
                    self.retire(&source);
                }
                self.sources.push(RemoteSource::new(ssrc));
                self.sources.len() - 1
            }
        };
        // Either found by position or just pushed, so the index is in bounds.
        &mut self.sources[index]
    }

    fn retire(&mut self, source: &RemoteSource) {
        self.retired.packets += source.packets;
        self.retired.octets += source.octets;
        self.retired.lost += source.reception.cumulative_lost();
        self.retired.duplicates += source.reception.duplicates();
    }

    fn randomised_interval(&mut self) -> Duration {
        // 53 random bits give a uniform float in [0, 1), the standard construction.
        let unit = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        self.config.report_interval.mul_f64(0.5 + unit)
    }

    fn ntp_at(&self, now: Instant) -> NtpTimestamp {
        self.ntp_at_epoch
            .wrapping_add(now.saturating_duration_since(self.epoch))
    }

    /// Media clock reading at `now`, with the session start as origin; wraps like RTP time.
    fn media_clock_at(&self, now: Instant) -> u32 {
        media_units(
            now.saturating_duration_since(self.epoch),
            self.config.clock_rate,
        )
    }

    /// The RTP timestamp matching `now` for the SR: the last one sent, moved on by the time since.
    fn rtp_time_at(&self, now: Instant) -> u32 {
        let since_last = self
            .sending
            .last_sent_at
            .map_or(Duration::ZERO, |sent| now.saturating_duration_since(sent));
        self.sending
            .last_rtp_timestamp
            .wrapping_add(media_units(since_last, self.config.clock_rate))
    }
}

fn media_units(elapsed: Duration, clock_rate: u32) -> u32 {
    // Truncation to 32 bits is the RTP clock's own wraparound.
    (elapsed.as_nanos() * u128::from(clock_rate) / 1_000_000_000) as u32
}

fn clamp_to_i32(value: i64) -> i32 {
    // Clamped first, so the conversion cannot fail.
    i32::try_from(value.clamp(i64::from(i32::MIN), i64::from(i32::MAX))).unwrap_or_default()
}
