//! Adaptive jitter buffer for RTP audio with a fixed frame duration (sans-IO).
//!
//! The shell calls [`JitterBuffer::push`] for every RTP packet of one source and
//! [`JitterBuffer::pop`] once per frame period from the playout clock; `pop` says what to play:
//! a frame, a concealment (the caller runs PLC), or idle silence. Payloads are opaque.
//!
//! # How it decides
//!
//! - **Order and loss** come from sequence numbers, extended past 16 bits; gaps between sequence
//!   numbers are lost frames. **Timing** comes from RTP timestamps: a timestamp jump with no
//!   sequence gap is a pause in sending (a new talk spurt), played as idle, not as loss.
//! - **Target delay.** Each packet's transit (arrival minus its timestamp in seconds) is compared
//!   with the fastest transit of the last two seconds; the difference is how late that packet
//!   was. The target is one frame plus the 95th percentile of recent lateness (a histogram that
//!   forgets old packets), clamped to `[min_delay, max_delay]`. It rises as soon as the
//!   percentile does and falls by at most one frame per 50 packets.
//! - **Actual delay** is how long after the fastest possible arrival the current frame plays.
//!   When it drifts more than half a frame from the target the buffer inserts a concealment
//!   (grow) or drops a frame (shrink), one frame at a time and with a pause between adjustments;
//!   during a pause in sending it re-aligns for free by stretching or cutting the silence.
//! - **Underrun.** With nothing buffered, the buffer conceals but keeps its place, so a packet
//!   that was only delayed still plays (the delay has grown by a frame); if later packets show
//!   the frame was really lost, the concealment already played stands in for it. After
//!   [`STOP_AFTER_UNDERRUNS`] empty periods the stream counts as stopped and `pop` returns
//!   [`Playout::Idle`] until packets are buffered again.
//! - **Jumps.** A packet far outside the current sequence or timing (RTP's `MAX_DROPOUT` /
//!   `MAX_MISORDER` from RFC 3550 A.1, or more than a second beyond `max_delay`) is held on
//!   probation; if the next packet follows it, the stream restarts from those two. A run of late
//!   packets restarts the stream as well, so a sender that stepped its sequence back cannot wedge
//!   the buffer. An SSRC change is the caller's to detect: call [`JitterBuffer::reset`].
//! - **Memory** is bounded by `max_frames`; overflow drops the oldest frame and moves the playout
//!   position past it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// RFC 3550 A.1: a forward sequence jump larger than this is a restart, not loss.
const MAX_DROPOUT: i64 = 3000;
/// RFC 3550 A.1: a backward sequence step larger than this is a restart, not reordering.
const MAX_MISORDER: i64 = 100;
/// Consecutive empty playout periods before the stream counts as stopped (e.g. on hold).
pub const STOP_AFTER_UNDERRUNS: u32 = 10;
/// Consecutive late packets after which the sender is assumed to have stepped back in sequence.
const LATE_RUN_RESTART: u32 = 8;
/// Shrinking drops audio, so it waits longer between steps than growing does.
const MIN_FRAMES_BETWEEN_SKIPS: u32 = 25;
const MIN_FRAMES_BETWEEN_INSERTS: u32 = 5;
/// Window over which the fastest transit is the reference for lateness.
const BASELINE_WINDOW_SECS: f64 = 2.0;
/// Bounds the baseline window's memory when packets come very fast.
const BASELINE_MAX_ENTRIES: usize = 512;
/// Per-packet forgetting factor of the lateness histogram: about 100 packets of memory.
const LATENESS_FORGETTING: f64 = 0.99;
const LATENESS_QUANTILE: f64 = 0.95;
/// The target falls by at most one frame per this many packets.
const SHRINK_PACKETS_PER_FRAME: f64 = 50.0;
/// How far outside `max_delay` a packet's timing may be before it counts as a jump.
const TIMING_JUMP_MARGIN_SECS: f64 = 1.0;
/// RFC 3550 6.4.1: the interarrival jitter estimate moves 1/16 of the way per packet.
const JITTER_GAIN: f64 = 1.0 / 16.0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitterConfig {
    /// RTP clock rate of the payload format (8000 for G.711).
    pub clock_rate: u32,
    /// Audio per packet, from the negotiated ptime.
    pub frame: Duration,
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Hard cap on buffered frames; more is dropped oldest first.
    pub max_frames: usize,
}

impl JitterConfig {
    /// Delays suited to a call leg: from one frame up to 300 ms, room for twice that.
    pub fn new(clock_rate: u32, frame: Duration) -> Self {
        let max_delay = Duration::from_millis(300).max(frame);
        // A zero frame is invalid anyway; counting it as 1 ms keeps the cap finite.
        let frames_in_max = max_delay.as_nanos() / frame.as_nanos().max(1_000_000);
        Self {
            clock_rate,
            frame,
            min_delay: frame,
            max_delay,
            max_frames: usize::try_from(2 * frames_in_max + 2).unwrap_or(usize::MAX),
        }
    }

    /// Rejects settings the buffer would otherwise have to bend (see [`JitterBuffer::new`]).
    pub fn validate(&self) -> Result<(), JitterConfigError> {
        if self.clock_rate == 0 {
            return Err(JitterConfigError::ZeroClockRate);
        }
        if self.frame.as_secs_f64() * f64::from(self.clock_rate) < 1.0 {
            return Err(JitterConfigError::FrameTooShort {
                frame: self.frame,
                clock_rate: self.clock_rate,
            });
        }
        if self.min_delay > self.max_delay {
            return Err(JitterConfigError::MinAboveMax {
                min: self.min_delay,
                max: self.max_delay,
            });
        }
        let capacity = self
            .frame
            .saturating_mul(u32::try_from(self.max_frames).unwrap_or(u32::MAX));
        if capacity < self.max_delay {
            return Err(JitterConfigError::TooFewFrames {
                max_frames: self.max_frames,
                max_delay: self.max_delay,
            });
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JitterConfigError {
    #[error("jitter buffer clock rate 0 is not usable")]
    ZeroClockRate,
    #[error("jitter buffer frame {frame:?} is shorter than one tick of the {clock_rate} Hz clock")]
    FrameTooShort { frame: Duration, clock_rate: u32 },
    #[error("jitter buffer min delay {min:?} exceeds max delay {max:?}")]
    MinAboveMax { min: Duration, max: Duration },
    #[error("jitter buffer max_frames {max_frames} cannot hold max delay {max_delay:?}")]
    TooFewFrames {
        max_frames: usize,
        max_delay: Duration,
    },
}

/// What the playout clock should play for the current frame period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// The payload of the next frame, in order.
    Frame(Vec<u8>),
    /// A frame is missing or delay is being added: the caller runs PLC for one frame.
    Conceal,
    /// Nothing to play yet, a pause in sending, or the stream stopped: play silence, no PLC.
    Idle,
}

/// Counters since creation or the last [`JitterBuffer::reset`], and the current estimates.
///
/// Every pushed packet ends up in exactly one of `played`, `duplicates`, `late`, `skipped`,
/// `overflow`, `discarded`, or is still counted in `buffered_frames` (or held on probation
/// after a jump, at most one packet).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JitterStats {
    /// Every packet pushed.
    pub received: u64,
    pub duplicates: u64,
    /// Arrived after its frame period had passed; not played.
    pub late: u64,
    /// Sequence numbers never received by the time their frame was due.
    pub lost: u64,
    /// Arrived after a higher sequence number but in time to play.
    pub reordered: u64,
    pub played: u64,
    /// `Conceal` results: lost frames, empty buffer and delay growth.
    pub concealed: u64,
    /// Concealments inserted only to grow the delay.
    pub inserted: u64,
    /// Frames dropped to shrink the delay.
    pub skipped: u64,
    /// Frames dropped because `max_frames` were buffered.
    pub overflow: u64,
    /// Packets dropped as implausible jumps or flushed when the stream restarted.
    pub discarded: u64,
    /// Times the stream restarted after a sequence/timing jump or a run of late packets.
    pub restarts: u64,
    pub target_delay: Duration,
    /// Delay of the last frame played behind the fastest arrival seen.
    pub playout_delay: Duration,
    pub buffered_frames: usize,
    pub buffered: Duration,
    /// RFC 3550 6.4.1 interarrival jitter, in RTP clock units as RTCP reports it.
    pub jitter_clock_units: u32,
    pub jitter: Duration,
}

#[derive(Debug, Clone)]
struct BufferedFrame {
    seq: i64,
    ts: i64,
    payload: Vec<u8>,
}

/// A packet that jumped away from the stream, kept in case the stream really moved there.
#[derive(Debug, Clone)]
struct Candidate {
    arrival: f64,
    seq: u16,
    ts: u32,
    payload: Vec<u8>,
}

/// Highest sequence number seen and its timestamp: the reference for extending 16/32-bit values.
#[derive(Debug, Clone, Copy)]
struct StreamReference {
    highest_seq: i64,
    highest_ts: i64,
}

/// Where playout stands in the sender's numbering.
#[derive(Debug, Clone, Copy)]
struct Playhead {
    next_seq: i64,
    /// Timestamp the frame `next_seq` is expected to carry.
    play_ts: i64,
    /// Bit i set: sequence `next_seq - 1 - i` was played, so a copy of it is a duplicate.
    played_mask: u64,
}

impl Playhead {
    fn advance(&mut self, frame_ts: i64, played: bool) {
        self.next_seq += 1;
        self.play_ts = self.play_ts.saturating_add(frame_ts);
        self.played_mask = (self.played_mask << 1) | u64::from(played);
    }

    fn jump_to(&mut self, seq: i64, ts: i64) {
        let skipped = seq.saturating_sub(self.next_seq);
        self.played_mask = u32::try_from(skipped)
            .ok()
            .and_then(|s| self.played_mask.checked_shl(s))
            .unwrap_or(0);
        self.next_seq = seq;
        self.play_ts = ts;
    }
}

pub struct JitterBuffer {
    config: JitterConfig,
    clock_rate: f64,
    /// Timestamp units per frame.
    frame_ts: i64,
    frame_secs: f64,
    max_frames: usize,
    timing_jump_limit: f64,
    /// Instants are turned into seconds since this one, fixed by the first call.
    epoch: Option<Instant>,
    buffer: VecDeque<BufferedFrame>,
    reference: Option<StreamReference>,
    candidate: Option<Candidate>,
    playhead: Option<Playhead>,
    playing: bool,
    /// Concealments played with an empty buffer and no advance; each may stand in for a lost one.
    underrun_credit: u32,
    consecutive_underruns: u32,
    frames_since_adjust: u32,
    consecutive_late: u32,
    delay: DelayEstimator,
    jitter: InterarrivalJitter,
    stats: JitterStats,
}

impl JitterBuffer {
    /// Never fails: a config that [`JitterConfig::validate`] rejects is bent into shape (clock
    /// rate and frame at least one tick, `max_delay` at least `min_delay`, at least one frame).
    pub fn new(config: JitterConfig) -> Self {
        let clock_rate = f64::from(config.clock_rate.max(1));
        let frame_ts = (config.frame.as_secs_f64() * clock_rate).round().max(1.0);
        // Saturating float-to-int conversion; any real frame is far below i64::MAX ticks.
        let frame_ts = frame_ts as i64;
        let frame_secs = frame_ts as f64 / clock_rate;
        let min_delay = config.min_delay.as_secs_f64();
        let max_delay = config.max_delay.as_secs_f64().max(min_delay);
        Self {
            clock_rate,
            frame_ts,
            frame_secs,
            max_frames: config.max_frames.max(1),
            timing_jump_limit: max_delay + TIMING_JUMP_MARGIN_SECS,
            epoch: None,
            buffer: VecDeque::new(),
            reference: None,
            candidate: None,
            playhead: None,
            playing: false,
            underrun_credit: 0,
            consecutive_underruns: 0,
            frames_since_adjust: 0,
            consecutive_late: 0,
            delay: DelayEstimator::new(frame_secs, min_delay, max_delay),
            jitter: InterarrivalJitter::default(),
            stats: JitterStats::default(),
            config,
        }
    }

    pub fn config(&self) -> &JitterConfig {
        &self.config
    }

    /// A packet arrived at `now`. Any input is accepted; nonsense is counted, never a panic.
    pub fn push(&mut self, now: Instant, seq: u16, timestamp: u32, payload: &[u8]) {
        self.stats.received += 1;
        let arrival = self.seconds(now);
        self.delay.expire(arrival);
        self.admit(arrival, seq, timestamp, payload);
    }

    /// Called once per frame period by the playout clock; returns what to play now.
    pub fn pop(&mut self, now: Instant) -> Playout {
        let now = self.seconds(now);
        if !self.playing {
            if !self.ready_to_start(now) {
                return Playout::Idle;
            }
            self.start_playing();
        }
        self.pop_playing(now)
    }

    pub fn stats(&self) -> JitterStats {
        let mut stats = self.stats.clone();
        stats.target_delay = secs_to_duration(self.delay.target);
        stats.buffered_frames = self.buffer.len();
        stats.buffered = secs_to_duration(self.buffer.len() as f64 * self.frame_secs);
        // RTCP carries the jitter as a 32-bit integer; `as` saturates.
        stats.jitter_clock_units = self.jitter.estimate as u32;
        stats.jitter = secs_to_duration(self.jitter.estimate / self.clock_rate);
        stats
    }

    /// Forgets the stream and the statistics, e.g. after hold or an SSRC change.
    pub fn reset(&mut self) {
        *self = Self::new(self.config.clone());
    }

    fn seconds(&mut self, now: Instant) -> f64 {
        let epoch = *self.epoch.get_or_insert(now);
        now.saturating_duration_since(epoch).as_secs_f64()
    }

    fn ts_seconds(&self, ts: i64) -> f64 {
        ts as f64 / self.clock_rate
    }

    // ----- arrivals ---------------------------------------------------------------------------

    fn admit(&mut self, arrival: f64, seq: u16, timestamp: u32, payload: &[u8]) {
        let Some(reference) = self.reference else {
            self.admit_first(arrival, seq, timestamp, payload);
            return;
        };
        // Reinterpreting the wrapped differences as signed gives the nearest extension.
        let seq_step = i64::from(seq.wrapping_sub(reference.highest_seq as u16) as i16);
        let ts_step = i64::from(timestamp.wrapping_sub(reference.highest_ts as u32) as i32);
        let ext_seq = reference.highest_seq + seq_step;
        let ext_ts = reference.highest_ts.saturating_add(ts_step);

        let seq_plausible = (-MAX_MISORDER..=MAX_DROPOUT).contains(&seq_step);
        // Old packets may be arbitrarily late; only new ones can move the stream's timing.
        let timing_plausible = seq_step <= 0
            || self
                .delay
                .lateness(arrival, self.ts_seconds(ext_ts))
                .map_or(true, |lateness| lateness.abs() <= self.timing_jump_limit);
        if !(seq_plausible && timing_plausible) {
            self.on_jump(arrival, seq, timestamp, payload);
            return;
        }

        if let Some(playhead) = self.playhead {
            if ext_seq < playhead.next_seq {
                let back = playhead.next_seq.saturating_sub(ext_seq) - 1;
                let was_played = u32::try_from(back)
                    .ok()
                    .and_then(|b| playhead.played_mask.checked_shr(b))
                    .is_some_and(|bits| bits & 1 == 1);
                if was_played {
                    self.stats.duplicates += 1;
                } else if self.consecutive_late + 1 >= LATE_RUN_RESTART {
                    self.restart();
                    self.admit_first(arrival, seq, timestamp, payload);
                } else {
                    self.consecutive_late += 1;
                    self.stats.late += 1;
                    self.note_arrival(arrival, ext_ts);
                }
                return;
            }
        }
        let position = self.buffer.partition_point(|frame| frame.seq < ext_seq);
        if self
            .buffer
            .get(position)
            .is_some_and(|frame| frame.seq == ext_seq)
        {
            self.stats.duplicates += 1;
            return;
        }

        self.consecutive_late = 0;
        if seq_step < 0 {
            self.stats.reordered += 1;
        } else {
            self.reference = Some(StreamReference {
                highest_seq: ext_seq,
                highest_ts: ext_ts,
            });
        }
        self.note_arrival(arrival, ext_ts);
        self.buffer.insert(
            position,
            BufferedFrame {
                seq: ext_seq,
                ts: ext_ts,
                payload: payload.to_vec(),
            },
        );
        self.enforce_capacity();
    }

    /// First packet of a stream: it defines the numbering everything else is extended against.
    fn admit_first(&mut self, arrival: f64, seq: u16, timestamp: u32, payload: &[u8]) {
        let ext_seq = i64::from(seq);
        let ext_ts = i64::from(timestamp);
        self.reference = Some(StreamReference {
            highest_seq: ext_seq,
            highest_ts: ext_ts,
        });
        self.consecutive_late = 0;
        self.note_arrival(arrival, ext_ts);
        self.buffer.push_back(BufferedFrame {
            seq: ext_seq,
            ts: ext_ts,
            payload: payload.to_vec(),
        });
        self.enforce_capacity();
    }

    fn on_jump(&mut self, arrival: f64, seq: u16, timestamp: u32, payload: &[u8]) {
        if let Some(candidate) = self.candidate.take() {
            let ts_step = timestamp.wrapping_sub(candidate.ts) as i32;
            let follows = seq == candidate.seq.wrapping_add(1)
                && ts_step >= 0
                && f64::from(ts_step) / self.clock_rate <= self.timing_jump_limit;
            if follows {
                self.restart();
                self.admit_first(
                    candidate.arrival,
                    candidate.seq,
                    candidate.ts,
                    &candidate.payload,
                );
                // Normally a plausible successor now; if its timing still fails it only becomes
                // the new candidate (the slot is empty), so this recursion is one level deep.
                self.admit(arrival, seq, timestamp, payload);
                return;
            }
            self.stats.discarded += 1;
        }
        self.candidate = Some(Candidate {
            arrival,
            seq,
            ts: timestamp,
            payload: payload.to_vec(),
        });
    }

    fn note_arrival(&mut self, arrival: f64, ext_ts: i64) {
        let ts_secs = self.ts_seconds(ext_ts);
        self.delay.observe(arrival, ts_secs);
        self.jitter.observe(arrival * self.clock_rate, ext_ts);
    }

    /// Drops the oldest frames beyond `max_frames` and moves playout past them.
    fn enforce_capacity(&mut self) {
        while self.buffer.len() > self.max_frames {
            let Some(dropped) = self.buffer.pop_front() else {
                break;
            };
            self.stats.overflow += 1;
            let (next_seq, next_ts) = (dropped.seq + 1, dropped.ts.saturating_add(self.frame_ts));
            match &mut self.playhead {
                Some(playhead) if playhead.next_seq < next_seq => {
                    playhead.jump_to(next_seq, next_ts);
                }
                Some(_) => {}
                None => {
                    self.playhead = Some(Playhead {
                        next_seq,
                        play_ts: next_ts,
                        played_mask: 0,
                    });
                }
            }
            self.underrun_credit = 0;
        }
    }

    /// Starts the stream over from the next packet, keeping what was learnt about the network.
    fn restart(&mut self) {
        self.stats.discarded += self.buffer.len() as u64;
        self.stats.restarts += 1;
        self.buffer.clear();
        self.reference = None;
        self.playhead = None;
        self.playing = false;
        self.underrun_credit = 0;
        self.consecutive_underruns = 0;
        self.consecutive_late = 0;
        self.delay.forget_baseline();
        self.jitter.forget_last();
    }

    // ----- playout ----------------------------------------------------------------------------

    /// Playout delay the frame with timestamp `ts` gets if played at `now`, behind the fastest
    /// arrival in the baseline window.
    fn playout_delay(&self, ts: i64, now: f64) -> Option<f64> {
        let fastest = self.delay.fastest_transit()?;
        Some(now - (self.ts_seconds(ts) + fastest))
    }

    fn is_due(&self, ts: i64, now: f64) -> bool {
        self.playout_delay(ts, now).map_or(true, |delay| {
            delay >= self.delay.target - self.frame_secs / 2.0
        })
    }

    fn ready_to_start(&self, now: f64) -> bool {
        match self.buffer.front() {
            None => false,
            Some(head) => self.buffer.len() >= self.max_frames || self.is_due(head.ts, now),
        }
    }

    fn start_playing(&mut self) {
        let Some(head) = self.buffer.front() else {
            return;
        };
        let (seq, ts) = (head.seq, head.ts);
        match &mut self.playhead {
            Some(playhead) => {
                // Frames skipped over while stopped were never received: lost, not concealed.
                let missing = seq.saturating_sub(playhead.next_seq).clamp(0, MAX_DROPOUT);
                self.stats.lost += missing as u64;
                playhead.jump_to(seq, ts);
            }
            None => {
                self.playhead = Some(Playhead {
                    next_seq: seq,
                    play_ts: ts,
                    played_mask: 0,
                });
            }
        }
        self.playing = true;
        self.underrun_credit = 0;
        self.consecutive_underruns = 0;
        self.frames_since_adjust = 0;
    }

    fn pop_playing(&mut self, now: f64) -> Playout {
        let (Some(head), Some(mut playhead)) = (self.buffer.front(), self.playhead) else {
            return self.underrun();
        };
        let (head_seq, head_ts) = (head.seq, head.ts);
        self.consecutive_underruns = 0;
        self.frames_since_adjust = self.frames_since_adjust.saturating_add(1);

        // Concealments played into an empty buffer stand in for frames now known to be lost.
        while self.underrun_credit > 0 && head_seq > playhead.next_seq {
            playhead.advance(self.frame_ts, false);
            self.stats.lost += 1;
            self.underrun_credit -= 1;
        }
        self.underrun_credit = 0;

        if head_seq > playhead.next_seq {
            playhead.advance(self.frame_ts, false);
            self.playhead = Some(playhead);
            self.stats.lost += 1;
            self.stats.concealed += 1;
            return Playout::Conceal;
        }
        // The buffer only holds sequence numbers at or after `next_seq`, so head is the next one.

        if head_ts > playhead.play_ts.saturating_add(self.frame_ts / 2)
            && !self.is_due(head_ts, now)
        {
            // A pause in sending: keep silence until the talk spurt is due at the target delay.
            self.playhead = Some(playhead);
            return Playout::Idle;
        }

        let delay = self.playout_delay(head_ts, now);
        if let Some(delay) = delay {
            let target = self.delay.target;
            let half_frame = self.frame_secs / 2.0;
            if delay > target + half_frame
                && self.frames_since_adjust > MIN_FRAMES_BETWEEN_SKIPS
                && self.next_frame_follows()
            {
                self.buffer.pop_front();
                playhead.advance(self.frame_ts, false);
                self.stats.skipped += 1;
                self.frames_since_adjust = 0;
            } else if delay < target - half_frame
                && self.frames_since_adjust > MIN_FRAMES_BETWEEN_INSERTS
            {
                self.playhead = Some(playhead);
                self.stats.inserted += 1;
                self.stats.concealed += 1;
                self.frames_since_adjust = 0;
                return Playout::Conceal;
            }
        }

        let Some(frame) = self.buffer.pop_front() else {
            // Unreachable: the head was present above and a skip requires a second frame.
            self.playhead = Some(playhead);
            return self.underrun();
        };
        if let Some(delay) = self.playout_delay(frame.ts, now) {
            self.stats.playout_delay = secs_to_duration(delay);
        }
        playhead.jump_to(frame.seq, frame.ts);
        playhead.advance(self.frame_ts, true);
        self.playhead = Some(playhead);
        self.stats.played += 1;
        Playout::Frame(frame.payload)
    }

    /// Whether dropping the head leaves the next frame of the same talk spurt to play instead.
    fn next_frame_follows(&self) -> bool {
        match (self.buffer.front(), self.buffer.get(1)) {
            (Some(head), Some(next)) => {
                next.seq == head.seq + 1
                    && next.ts.saturating_sub(head.ts) <= self.frame_ts + self.frame_ts / 2
            }
            _ => false,
        }
    }

    fn underrun(&mut self) -> Playout {
        self.consecutive_underruns = self.consecutive_underruns.saturating_add(1);
        if self.consecutive_underruns > STOP_AFTER_UNDERRUNS {
            self.playing = false;
            self.underrun_credit = 0;
            return Playout::Idle;
        }
        self.underrun_credit += 1;
        self.stats.concealed += 1;
        Playout::Conceal
    }
}

fn secs_to_duration(secs: f64) -> Duration {
    // NaN and negatives become zero (`max` returns the non-NaN operand); huge values saturate.
    Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::MAX)
}

/// Learns how late packets arrive and turns it into the target delay.
#[derive(Debug, Clone)]
struct DelayEstimator {
    frame_secs: f64,
    min_delay: f64,
    max_delay: f64,
    /// Arrival and transit of recent packets with increasing transit, so the front is the
    /// fastest packet of the window (a monotonic queue).
    baseline: VecDeque<(f64, f64)>,
    lateness: LatenessHistogram,
    target: f64,
}

impl DelayEstimator {
    fn new(frame_secs: f64, min_delay: f64, max_delay: f64) -> Self {
        // Until there is data, the frame itself is the only delay we know we need.
        let target = frame_secs.clamp(min_delay, max_delay);
        let bin_width = (frame_secs / 8.0).max(0.000_5);
        Self {
            frame_secs,
            min_delay,
            max_delay,
            baseline: VecDeque::new(),
            lateness: LatenessHistogram::new(bin_width, max_delay),
            target,
        }
    }

    fn expire(&mut self, now: f64) {
        while self
            .baseline
            .front()
            .is_some_and(|&(arrival, _)| arrival < now - BASELINE_WINDOW_SECS)
        {
            self.baseline.pop_front();
        }
    }

    fn fastest_transit(&self) -> Option<f64> {
        self.baseline.front().map(|&(_, transit)| transit)
    }

    fn lateness(&self, arrival: f64, ts_secs: f64) -> Option<f64> {
        self.fastest_transit()
            .map(|fastest| arrival - ts_secs - fastest)
    }

    fn observe(&mut self, arrival: f64, ts_secs: f64) {
        let transit = arrival - ts_secs;
        while self
            .baseline
            .back()
            .is_some_and(|&(_, queued)| queued >= transit)
        {
            self.baseline.pop_back();
        }
        self.baseline.push_back((arrival, transit));
        if self.baseline.len() > BASELINE_MAX_ENTRIES {
            self.baseline.pop_front();
        }
        let lateness = self.lateness(arrival, ts_secs).unwrap_or(0.0);
        self.lateness.add(lateness);

        let wanted = (self.frame_secs + self.lateness.quantile(LATENESS_QUANTILE))
            .clamp(self.min_delay, self.max_delay);
        let slowest_shrink = self.target - self.frame_secs / SHRINK_PACKETS_PER_FRAME;
        self.target = if wanted >= self.target {
            wanted
        } else {
            wanted.max(slowest_shrink)
        };
    }

    /// After a restart the timestamps mean something else; the network's jitter has not changed.
    fn forget_baseline(&mut self) {
        self.baseline.clear();
    }
}

/// Histogram of lateness whose old entries fade geometrically, for a cheap running percentile.
#[derive(Debug, Clone)]
struct LatenessHistogram {
    bin_width: f64,
    bins: Vec<f64>,
    total: f64,
    /// Weight of the next entry; growing it is the same as shrinking all earlier ones.
    increment: f64,
}

impl LatenessHistogram {
    /// Bins cover `0..=max_delay`; anything later shares the last bin.
    fn new(bin_width: f64, max_delay: f64) -> Self {
        const MAX_BINS: usize = 2048;
        // Saturating float-to-int conversion, then capped.
        let wanted = ((max_delay / bin_width).ceil() as usize).saturating_add(2);
        let count = wanted.clamp(2, MAX_BINS);
        let bin_width = if wanted > MAX_BINS {
            max_delay / (MAX_BINS - 2) as f64
        } else {
            bin_width
        };
        Self {
            bin_width,
            bins: vec![0.0; count],
            total: 0.0,
            increment: 1.0,
        }
    }

    fn add(&mut self, lateness: f64) {
        let last = self.bins.len() - 1;
        // Saturating conversion: negatives and NaN land in bin 0, huge values in the last bin.
        let index = ((lateness / self.bin_width) as usize).min(last);
        self.bins[index] += self.increment;
        self.total += self.increment;
        self.increment /= LATENESS_FORGETTING;
        if self.increment > 1e12 {
            for bin in &mut self.bins {
                *bin /= self.increment;
            }
            self.total /= self.increment;
            self.increment = 1.0;
        }
    }

    /// Upper edge of the bin holding the `quantile`; 0 before any data.
    fn quantile(&self, quantile: f64) -> f64 {
        let allowed_above = (1.0 - quantile) * self.total;
        let mut above = 0.0;
        for (index, weight) in self.bins.iter().enumerate().rev() {
            above += weight;
            if above > allowed_above {
                return (index + 1) as f64 * self.bin_width;
            }
        }
        0.0
    }
}

/// RFC 3550 6.4.1 interarrival jitter, in timestamp units.
#[derive(Debug, Clone, Default)]
struct InterarrivalJitter {
    /// Arrival (in timestamp units) and timestamp of the previous packet.
    last: Option<(f64, i64)>,
    estimate: f64,
}

impl InterarrivalJitter {
    fn observe(&mut self, arrival_units: f64, ts: i64) {
        if let Some((last_arrival, last_ts)) = self.last {
            let difference = (arrival_units - last_arrival) - ts.wrapping_sub(last_ts) as f64;
            self.estimate += (difference.abs() - self.estimate) * JITTER_GAIN;
        }
        self.last = Some((arrival_units, ts));
    }

    fn forget_last(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TS_PER_FRAME: u32 = 160;

    fn config(min_ms: u64, max_ms: u64) -> JitterConfig {
        JitterConfig {
            clock_rate: 8000,
            frame: Duration::from_millis(20),
            min_delay: Duration::from_millis(min_ms),
            max_delay: Duration::from_millis(max_ms),
            max_frames: 50,
        }
    }

    /// What a pop produced, with frames named by the sequence number the test put in them.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Out {
        F(u16),
        C,
        I,
    }

    fn out_of(playout: Playout) -> Out {
        match playout {
            Playout::Frame(payload) => Out::F(u16::from_be_bytes([payload[0], payload[1]])),
            Playout::Conceal => Out::C,
            Playout::Idle => Out::I,
        }
    }

    /// A packet arriving at `at_ms` (virtual time) with the test's payload convention.
    #[derive(Debug, Clone, Copy)]
    struct Arrival {
        at_ms: f64,
        seq: u16,
        ts: u32,
    }

    fn stream(
        first_seq: u16,
        first_ts: u32,
        count: usize,
        arrival: impl Fn(usize) -> f64,
    ) -> Vec<Arrival> {
        (0..count)
            .map(|k| Arrival {
                at_ms: arrival(k),
                seq: first_seq.wrapping_add(k as u16),
                ts: first_ts.wrapping_add(TS_PER_FRAME.wrapping_mul(k as u32)),
            })
            .collect()
    }

    /// Pushes `arrivals` and pops every 20 ms from `first_pop_ms`, in time order (a push at the
    /// same instant as a pop goes first), returning one output per pop.
    fn run(
        jb: &mut JitterBuffer,
        base: Instant,
        arrivals: &[Arrival],
        first_pop_ms: f64,
        pops: usize,
    ) -> Vec<Out> {
        run_observed(jb, base, arrivals, first_pop_ms, pops, |_, _| {})
    }

    /// `run`, calling `observe(pop_index, jb)` after every pop.
    fn run_observed(
        jb: &mut JitterBuffer,
        base: Instant,
        arrivals: &[Arrival],
        first_pop_ms: f64,
        pops: usize,
        mut observe: impl FnMut(usize, &JitterBuffer),
    ) -> Vec<Out> {
        let mut arrivals = arrivals.to_vec();
        arrivals.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
        let at = |ms: f64| base + Duration::from_secs_f64(ms / 1000.0);
        let mut next = 0;
        let mut outputs = Vec::with_capacity(pops);
        for k in 0..pops {
            let pop_ms = first_pop_ms + 20.0 * k as f64;
            while next < arrivals.len() && arrivals[next].at_ms <= pop_ms {
                let a = arrivals[next];
                jb.push(at(a.at_ms), a.seq, a.ts, &a.seq.to_be_bytes());
                next += 1;
            }
            outputs.push(out_of(jb.pop(at(pop_ms))));
            observe(k, jb);
        }
        outputs
    }

    fn played(outputs: &[Out]) -> Vec<u16> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Out::F(seq) => Some(*seq),
                _ => None,
            })
            .collect()
    }

    /// Outputs from the first frame to the last frame, inclusive.
    fn during_stream(outputs: &[Out]) -> &[Out] {
        let first = outputs
            .iter()
            .position(|o| matches!(o, Out::F(_)))
            .unwrap_or(0);
        let last = outputs
            .iter()
            .rposition(|o| matches!(o, Out::F(_)))
            .unwrap_or(0);
        &outputs[first..=last]
    }

    /// Deterministic pseudo-random numbers in [0, 1) for jitter patterns.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn nothing_buffered_is_idle() {
        let mut jb = JitterBuffer::new(config(20, 200));
        let base = Instant::now();
        assert_eq!(run(&mut jb, base, &[], 0.0, 5), vec![Out::I; 5]);
    }

    #[test]
    fn in_order_stream_plays_every_frame_once_in_order() {
        let mut jb = JitterBuffer::new(config(20, 200));
        let base = Instant::now();
        let arrivals = stream(100, 1000, 200, |k| 20.0 * k as f64);
        let outputs = run(&mut jb, base, &arrivals, 5.0, 230);
        assert_eq!(played(&outputs), (100..300).collect::<Vec<u16>>());
        assert!(during_stream(&outputs)
            .iter()
            .all(|o| matches!(o, Out::F(_))));
        // Playout starts within the target delay, not later.
        assert_eq!(outputs[1], Out::F(100), "{:?}", &outputs[..4]);
        let stats = jb.stats();
        assert_eq!(
            (stats.lost, stats.late, stats.skipped, stats.inserted),
            (0, 0, 0, 0)
        );
        assert_eq!(stats.played, 200);
        assert_eq!(stats.jitter_clock_units, 0);
    }

    #[test]
    fn reordering_within_the_target_delay_is_repaired() {
        let mut jb = JitterBuffer::new(config(60, 200));
        let base = Instant::now();
        // Every pair arrives swapped: the even packet 25 ms late, after its odd successor.
        let arrivals = stream(0, 0, 200, |k| {
            20.0 * k as f64 + if k % 2 == 0 { 25.0 } else { 0.0 }
        });
        let outputs = run(&mut jb, base, &arrivals, 5.0, 220);
        assert_eq!(played(&outputs), (0..200).collect::<Vec<u16>>());
        assert!(during_stream(&outputs)
            .iter()
            .all(|o| matches!(o, Out::F(_))));
        let stats = jb.stats();
        assert_eq!(
            stats.reordered, 100,
            "every even packet came after its successor"
        );
        assert_eq!((stats.late, stats.lost), (0, 0));
    }

    #[test]
    fn duplicates_are_dropped() {
        let mut jb = JitterBuffer::new(config(40, 200));
        let base = Instant::now();
        let mut arrivals = stream(0, 0, 100, |k| 20.0 * k as f64);
        // Each packet once more 5 ms later (still buffered) and once 300 ms later (played).
        let again: Vec<Arrival> = arrivals
            .iter()
            .flat_map(|a| {
                [
                    Arrival {
                        at_ms: a.at_ms + 5.0,
                        ..*a
                    },
                    Arrival {
                        at_ms: a.at_ms + 300.0,
                        ..*a
                    },
                ]
            })
            .collect();
        arrivals.extend(again);
        let outputs = run(&mut jb, base, &arrivals, 5.0, 130);
        assert_eq!(played(&outputs), (0..100).collect::<Vec<u16>>());
        let stats = jb.stats();
        assert_eq!(stats.duplicates, 200);
        assert_eq!(
            stats.late, 0,
            "a copy of a played frame is a duplicate, not late"
        );
    }

    #[test]
    fn each_missing_frame_yields_exactly_one_conceal() {
        let mut jb = JitterBuffer::new(config(80, 200));
        let base = Instant::now();
        let dropped = [10u16, 30, 31, 50, 51, 52];
        let arrivals: Vec<Arrival> = stream(0, 0, 100, |k| 20.0 * k as f64)
            .into_iter()
            .filter(|a| !dropped.contains(&a.seq))
            .collect();
        let outputs = run(&mut jb, base, &arrivals, 5.0, 120);
        let expected: Vec<Out> = (0..100u16)
            .map(|seq| {
                if dropped.contains(&seq) {
                    Out::C
                } else {
                    Out::F(seq)
                }
            })
            .collect();
        assert_eq!(during_stream(&outputs), &expected[..]);
        let stats = jb.stats();
        assert_eq!(stats.lost, 6);
    }

    #[test]
    fn late_packet_is_counted_and_not_played() {
        // A fixed 40 ms delay cannot absorb a packet 200 ms late.
        let mut jb = JitterBuffer::new(config(40, 40));
        let base = Instant::now();
        let arrivals = stream(0, 0, 60, |k| {
            20.0 * k as f64 + if k == 20 { 200.0 } else { 0.0 }
        });
        let outputs = run(&mut jb, base, &arrivals, 5.0, 70);
        assert!(!played(&outputs).contains(&20));
        let stats = jb.stats();
        assert_eq!(stats.late, 1);
        assert_eq!(stats.lost, 1);
        assert_eq!(played(&outputs).len(), 59);
        let position = during_stream(&outputs).iter().position(|o| *o == Out::C);
        assert_eq!(
            position,
            Some(20),
            "the gap is concealed where frame 20 belonged"
        );
    }

    #[test]
    fn sequence_and_timestamp_wrap_around() {
        let mut jb = JitterBuffer::new(config(40, 200));
        let base = Instant::now();
        let arrivals = stream(65500, u32::MAX - 3000, 100, |k| 20.0 * k as f64);
        let outputs = run(&mut jb, base, &arrivals, 5.0, 110);
        let expected: Vec<u16> = (0..100u16).map(|k| 65500u16.wrapping_add(k)).collect();
        assert_eq!(played(&outputs), expected);
        assert!(during_stream(&outputs)
            .iter()
            .all(|o| matches!(o, Out::F(_))));
        assert_eq!(jb.stats().restarts, 0);
    }

    #[test]
    fn jitter_raises_the_target_and_a_calm_period_lowers_it() {
        let mut jb = JitterBuffer::new(config(20, 300));
        assert_eq!(jb.stats().target_delay, Duration::from_millis(20));
        let base = Instant::now();
        let mut random = XorShift(0x2545_f491_4f6c_dd1d);
        let jittery_frames = 500; // 10 s of ±30 ms around a 30 ms path
        let calm_frames = 2000; // then 40 s of a steady 30 ms path
        let offsets: Vec<f64> = (0..jittery_frames)
            .map(|_| 30.0 + (random.next() - 0.5) * 60.0)
            .chain(std::iter::repeat(30.0).take(calm_frames))
            .collect();
        let total = jittery_frames + calm_frames;
        let arrivals = stream(0, 0, total, |k| 20.0 * k as f64 + offsets[k]);
        let mut snapshots = Vec::new();
        let outputs = run_observed(&mut jb, base, &arrivals, 7.0, total + 10, |pop, jb| {
            if pop == jittery_frames / 2 || pop == jittery_frames || pop == total + 5 {
                snapshots.push(jb.stats());
            }
        });
        let [adapting, noisy, settled] = &snapshots[..] else {
            panic!("three snapshots expected, got {}", snapshots.len());
        };

        assert!(
            noisy.target_delay >= Duration::from_millis(60),
            "target {:?}",
            noisy.target_delay
        );
        assert!(
            noisy.jitter >= Duration::from_millis(10),
            "jitter {:?}",
            noisy.jitter
        );
        // Once adapted, nothing arrives too late and nothing is lost.
        assert_eq!(noisy.late, adapting.late, "late packets after adapting");
        assert_eq!(noisy.lost, adapting.lost, "lost frames after adapting");
        assert!(adapting.late + adapting.lost <= 10, "{adapting:?}");

        assert!(
            settled.target_delay <= Duration::from_millis(35),
            "target {:?}",
            settled.target_delay
        );
        assert!(
            settled.playout_delay <= Duration::from_millis(40)
                && settled.playout_delay + Duration::from_millis(40) < noisy.playout_delay,
            "delay {:?} then {:?}",
            noisy.playout_delay,
            settled.playout_delay
        );
        assert_eq!(
            settled.played + settled.skipped + settled.late,
            total as u64,
            "{settled:?}"
        );
        assert_eq!(played(&outputs).len() as u64, settled.played);
    }

    #[test]
    fn sender_clock_drift_is_absorbed_one_frame_at_a_time() {
        for drift in [1.01, 0.99] {
            let mut jb = JitterBuffer::new(config(40, 200));
            let base = Instant::now();
            // The sender's 20 ms frames take 19.8 or 20.2 ms of our time: 1 % drift for 60 s.
            let arrivals = stream(0, 0, 3000, |k| 20.0 * k as f64 / drift);
            let mut worst = Duration::ZERO;
            let outputs = run_observed(&mut jb, base, &arrivals, 5.0, 3000, |pop, jb| {
                let delay = jb.stats().playout_delay;
                if pop > 100 {
                    worst = worst.max(delay);
                }
            });
            let stats = jb.stats();
            assert!(
                worst <= Duration::from_millis(80),
                "drift {drift}: delay reached {worst:?}"
            );
            assert_eq!(
                stats.lost + stats.late + stats.overflow,
                0,
                "drift {drift}: {stats:?}"
            );
            // 60 s at 1 % is 30 frames to drop or add.
            let adjustments = stats.skipped + stats.inserted;
            assert!((25..=40).contains(&adjustments), "drift {drift}: {stats:?}");
            let seqs = played(&outputs);
            assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn a_stopped_stream_goes_idle_and_resumes() {
        let mut jb = JitterBuffer::new(config(40, 200));
        let base = Instant::now();
        // 1 s of audio, 2 s on hold (no packets), then the same stream continues: sequence
        // numbers carry on and timestamps have advanced with the wall clock.
        let mut arrivals = stream(0, 0, 50, |k| 20.0 * k as f64);
        arrivals.extend(stream(50, 150 * TS_PER_FRAME, 50, |k| {
            3000.0 + 20.0 * k as f64
        }));
        let outputs = run(&mut jb, base, &arrivals, 5.0, 210);
        let hold = &outputs[52..150];
        let conceals = hold.iter().filter(|o| **o == Out::C).count();
        assert!(
            conceals <= STOP_AFTER_UNDERRUNS as usize,
            "{conceals} conceals on hold"
        );
        assert!(hold[hold.len() - 50..].iter().all(|o| *o == Out::I));
        assert_eq!(played(&outputs), (0..100).collect::<Vec<u16>>());
        let stats = jb.stats();
        assert_eq!((stats.lost, stats.restarts), (0, 0));
    }

    #[test]
    fn a_short_pause_in_sending_is_silence_not_loss() {
        let mut jb = JitterBuffer::new(config(40, 200));
        let base = Instant::now();
        // Talk spurt, 100 ms without packets (DTX), next spurt: timestamps jump, sequence doesn't.
        let mut arrivals = stream(0, 0, 30, |k| 20.0 * k as f64);
        arrivals.extend(stream(30, 35 * TS_PER_FRAME, 30, |k| {
            700.0 + 20.0 * k as f64
        }));
        let outputs = run(&mut jb, base, &arrivals, 5.0, 80);
        assert_eq!(played(&outputs), (0..60).collect::<Vec<u16>>());
        let stats = jb.stats();
        assert_eq!(stats.lost, 0);
        // The second spurt plays with the same delay as the first: 35 periods after frame 0.
        let first = outputs.iter().position(|o| *o == Out::F(0)).unwrap_or(0);
        let resumed = outputs.iter().position(|o| *o == Out::F(30)).unwrap_or(0);
        assert_eq!(resumed - first, 35, "{outputs:?}");
    }

    #[test]
    fn timestamp_jump_restarts_the_stream_after_probation() {
        let mut jb = JitterBuffer::new(config(40, 200));
        let base = Instant::now();
        let mut arrivals = stream(0, 0, 50, |k| 20.0 * k as f64);
        // Same sequence numbering, timestamps suddenly a day ahead (a relay switched sources).
        arrivals.extend(stream(50, 8000 * 86_400, 50, |k| 1000.0 + 20.0 * k as f64));
        let outputs = run(&mut jb, base, &arrivals, 5.0, 110);
        let seqs = played(&outputs);
        assert!(seqs.contains(&50), "the probation packet is kept: {seqs:?}");
        assert_eq!(seqs.last(), Some(&99));
        let stats = jb.stats();
        assert_eq!(stats.restarts, 1);
        assert!(
            stats.discarded <= 5,
            "only the frames queued at the jump: {}",
            stats.discarded
        );
        // Playback resumed promptly rather than idling.
        let tail = &outputs[60..];
        assert!(
            tail.iter().filter(|o| **o == Out::I).count() <= 3,
            "{tail:?}"
        );
    }

    #[test]
    fn sequence_jump_restarts_and_a_stray_packet_does_not() {
        let mut jb = JitterBuffer::new(config(40, 200));
        let base = Instant::now();
        let mut arrivals = stream(0, 0, 50, |k| 20.0 * k as f64);
        // One stray packet far away in sequence space, then the stream as before...
        arrivals.push(Arrival {
            at_ms: 401.0,
            seq: 30_000,
            ts: 64 * TS_PER_FRAME,
        });
        // ...then, once the old frames have played, a real jump of the sequence numbers.
        arrivals.extend(stream(40_000, 55 * TS_PER_FRAME, 50, |k| {
            1100.0 + 20.0 * k as f64
        }));
        let outputs = run(&mut jb, base, &arrivals, 5.0, 110);
        let seqs = played(&outputs);
        assert!(!seqs.contains(&30_000));
        assert_eq!(&seqs[..50], &(0..50).collect::<Vec<u16>>()[..]);
        assert_eq!(seqs[50..], (40_000..40_050).collect::<Vec<u16>>()[..]);
        let stats = jb.stats();
        assert_eq!(stats.restarts, 1);
        assert_eq!(stats.discarded, 1, "the stray packet");
    }

    #[test]
    fn a_sender_stepping_back_in_sequence_does_not_wedge_the_buffer() {
        let mut jb = JitterBuffer::new(config(40, 200));
        let base = Instant::now();
        let mut arrivals = stream(1000, 0, 50, |k| 20.0 * k as f64);
        // Restarted sender: numbering 60 back, timing continuous.
        arrivals.extend(stream(990, 50 * TS_PER_FRAME, 50, |k| {
            1000.0 + 20.0 * k as f64
        }));
        let outputs = run(&mut jb, base, &arrivals, 5.0, 110);
        let seqs = played(&outputs);
        assert!(seqs.len() >= 90, "only {} played", seqs.len());
        assert_eq!(seqs.last(), Some(&1039));
        assert_eq!(jb.stats().restarts, 1);
    }

    #[test]
    fn reset_starts_a_new_stream() {
        let mut jb = JitterBuffer::new(config(40, 200));
        let base = Instant::now();
        run(
            &mut jb,
            base,
            &stream(0, 0, 30, |k| 20.0 * k as f64),
            5.0,
            20,
        );
        jb.reset();
        assert_eq!(jb.stats(), JitterBuffer::new(config(40, 200)).stats());
        // A new SSRC with unrelated numbering plays from its first packet.
        let arrivals = stream(7, 123_456, 30, |k| 1000.0 + 20.0 * k as f64);
        let outputs = run(&mut jb, base, &arrivals, 1005.0, 40);
        assert_eq!(played(&outputs), (7..37).collect::<Vec<u16>>());
    }

    #[test]
    fn overflow_drops_the_oldest_and_plays_on_from_there() {
        let mut jb = JitterBuffer::new(config(40, 200));
        let base = Instant::now();
        for k in 0..60u16 {
            jb.push(base, k, u32::from(k) * TS_PER_FRAME, &k.to_be_bytes());
            assert!(jb.stats().buffered_frames <= 50);
        }
        let stats = jb.stats();
        assert_eq!((stats.overflow, stats.buffered_frames), (10, 50));
        let outputs: Vec<Out> = (0..50u32)
            .map(|k| out_of(jb.pop(base + Duration::from_millis(20) * k)))
            .collect();
        let seqs = played(&outputs);
        assert_eq!(seqs.first(), Some(&10));
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        // The burst sits a second behind the target, so playout also skips to catch up.
        let stats = jb.stats();
        assert_eq!(seqs.len() as u64 + stats.skipped, 50);
        assert_eq!(stats.lost, 0);
        assert!(!during_stream(&outputs).contains(&Out::C), "{outputs:?}");
    }

    #[test]
    fn interarrival_jitter_follows_rfc_3550() {
        let mut jb = JitterBuffer::new(config(40, 200));
        let base = Instant::now();
        // Every other packet 10 ms late: |D| is 10 ms for every pair, so J converges to 10 ms.
        let arrivals = stream(0, 0, 300, |k| {
            20.0 * k as f64 + if k % 2 == 1 { 10.0 } else { 0.0 }
        });
        run(&mut jb, base, &arrivals, 5.0, 300);
        let stats = jb.stats();
        assert!(
            (79..=80).contains(&stats.jitter_clock_units),
            "{}",
            stats.jitter_clock_units
        );
        let error = stats.jitter.abs_diff(Duration::from_millis(10));
        assert!(error < Duration::from_micros(200), "{:?}", stats.jitter);
    }

    #[test]
    fn config_validation_names_the_problem() {
        let good = JitterConfig::new(8000, Duration::from_millis(20));
        assert_eq!(good.validate(), Ok(()));
        let zero_clock = JitterConfig {
            clock_rate: 0,
            ..good.clone()
        };
        assert_eq!(zero_clock.validate(), Err(JitterConfigError::ZeroClockRate));
        let inverted = JitterConfig {
            min_delay: Duration::from_millis(500),
            ..good.clone()
        };
        assert!(inverted
            .validate()
            .unwrap_err()
            .to_string()
            .contains("500ms"));
        let tiny = JitterConfig {
            max_frames: 2,
            ..good.clone()
        };
        assert!(matches!(
            tiny.validate(),
            Err(JitterConfigError::TooFewFrames { max_frames: 2, .. })
        ));
        let no_frame = JitterConfig {
            frame: Duration::ZERO,
            ..good
        };
        assert!(matches!(
            no_frame.validate(),
            Err(JitterConfigError::FrameTooShort { .. })
        ));
        // Whatever the config, the buffer works.
        for config in [zero_clock, inverted, tiny, no_frame] {
            let mut jb = JitterBuffer::new(config);
            let now = Instant::now();
            jb.push(now, 1, 1, &[1]);
            let _ = jb.pop(now);
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push {
            advance_ms: u16,
            seq: u16,
            ts: u32,
            len: u8,
        },
        Pop {
            advance_ms: u16,
        },
        /// The clock going backwards must not hurt either.
        Rewind {
            ms: u16,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u16..100, any::<u16>(), any::<u32>(), 0u8..8)
                .prop_map(|(advance_ms, seq, ts, len)| Op::Push { advance_ms, seq, ts, len }),
            4 => (0u16..100).prop_map(|advance_ms| Op::Pop { advance_ms }),
            1 => (0u16..5000).prop_map(|ms| Op::Rewind { ms }),
        ]
    }

    /// Checks the invariants after every step: bounded depth and every packet accounted for.
    fn check_accounting(jb: &JitterBuffer) -> Result<(), TestCaseError> {
        let s = jb.stats();
        prop_assert!(s.buffered_frames <= jb.max_frames);
        let settled = s.played
            + s.duplicates
            + s.late
            + s.skipped
            + s.overflow
            + s.discarded
            + s.buffered_frames as u64;
        let on_probation = u64::from(jb.candidate.is_some());
        prop_assert_eq!(s.received, settled + on_probation, "{:?}", s);
        Ok(())
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics_and_accounts_for_every_packet(
            ops in proptest::collection::vec(op(), 1..400),
            max_frames in 1usize..20,
        ) {
            let mut jb = JitterBuffer::new(JitterConfig { max_frames, ..config(20, 200) });
            let base = Instant::now() + Duration::from_secs(3600);
            let mut now = base;
            let mut pushes = 0u32;
            let mut pops = 0usize;
            let mut outputs = 0usize;
            let mut seen = std::collections::HashSet::new();
            for op in ops {
                match op {
                    Op::Push { advance_ms, seq, ts, len } => {
                        now += Duration::from_millis(u64::from(advance_ms));
                        // Each payload is unique, so a repeat in the output is a bug.
                        let mut payload = pushes.to_be_bytes().to_vec();
                        payload.resize(4 + usize::from(len), 0);
                        jb.push(now, seq, ts, &payload);
                        pushes += 1;
                    }
                    Op::Pop { advance_ms } => {
                        now += Duration::from_millis(u64::from(advance_ms));
                        pops += 1;
                        let playout = jb.pop(now);
                        outputs += 1;
                        if let Playout::Frame(payload) = playout {
                            prop_assert!(payload.len() >= 4);
                            let id = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
                            prop_assert!(seen.insert(id), "payload {} played twice", id);
                        }
                    }
                    Op::Rewind { ms } => {
                        now = now.checked_sub(Duration::from_millis(u64::from(ms))).unwrap_or(now);
                    }
                }
                check_accounting(&jb)?;
            }
            prop_assert_eq!(outputs, pops);
        }

        #[test]
        fn jumps_between_talk_spurts_never_wedge_playout(
            jumps in proptest::collection::vec((any::<u16>(), any::<u32>(), any::<bool>()), 1..6),
        ) {
            // Segments of 40 frames; each starts at a random or a continuing position in
            // sequence and timestamp space, 100 ms after the previous one ends.
            let mut arrivals = Vec::new();
            let (mut seq, mut at_ms) = (0u16, 0.0);
            for (jump_seq, ts, keep_seq) in jumps {
                seq = if keep_seq { seq } else { jump_seq };
                let start_ms = at_ms;
                arrivals.extend(stream(seq, ts, 40, |k| start_ms + 20.0 * k as f64));
                seq = seq.wrapping_add(40);
                at_ms += 900.0;
            }
            let last_segment: Vec<u16> = arrivals[arrivals.len() - 40..].iter().map(|a| a.seq).collect();
            let mut jb = JitterBuffer::new(config(20, 300));
            let pops = (at_ms / 20.0) as usize + 20;
            let outputs = run(&mut jb, Instant::now(), &arrivals, 3.0, pops);
            let seqs = played(&outputs);
            let tail_played = last_segment.iter().filter(|s| seqs.contains(s)).count();
            prop_assert!(tail_played >= 20, "only {} of the last segment played: {:?}", tail_played, jb.stats());
            prop_assert!(seqs.contains(&last_segment[39]), "last frame not played: {:?}", jb.stats());
            check_accounting(&jb)?;
        }

        #[test]
        fn impaired_streams_play_in_order(
            seed in any::<u64>(),
            first_seq in any::<u16>(),
            first_ts in any::<u32>(),
            loss_percent in 0u32..30,
            jitter_ms in 0u32..80,
            duplicate_percent in 0u32..20,
        ) {
            let mut random = XorShift(seed | 1);
            let mut arrivals = Vec::new();
            for arrival in stream(first_seq, first_ts, 300, |k| 20.0 * k as f64) {
                if random.next() * 100.0 < f64::from(loss_percent) {
                    continue;
                }
                let at_ms = arrival.at_ms + random.next() * f64::from(jitter_ms);
                arrivals.push(Arrival { at_ms, ..arrival });
                if random.next() * 100.0 < f64::from(duplicate_percent) {
                    arrivals.push(Arrival { at_ms: at_ms + random.next() * 100.0, ..arrival });
                }
            }
            let mut jb = JitterBuffer::new(config(20, 300));
            let base = Instant::now();
            let outputs = run(&mut jb, base, &arrivals, 3.0, 340);
            prop_assert_eq!(outputs.len(), 340);
            // Played frames are in strictly increasing (unwrapped) sequence order.
            let offsets: Vec<u16> = played(&outputs).iter().map(|s| s.wrapping_sub(first_seq)).collect();
            prop_assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{:?}", offsets);
            let s = jb.stats();
            prop_assert_eq!(s.restarts, 0);
            prop_assert_eq!(s.received, arrivals.len() as u64);
            check_accounting(&jb)?;
        }
    }
}
