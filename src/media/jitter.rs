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
//!   When it falls more than half a frame short of the target the buffer inserts a concealment
//!   (grow); when it exceeds the target by more than a whole frame it drops a frame (shrink); one
//!   frame at a time and with a pause between adjustments. The band is wider than the frame a
//!   correction moves by, so a little jitter never has one correction undo the other. During a
//!   pause in sending it re-aligns for free by stretching or cutting the silence.
//! - **Stretching receivers** (every call leg and the agent client: [`JitterConfig::stretch`])
//!   get no whole-frame corrections. After each frame the buffer says whether the receiver
//!   should play it a pitch period shorter or longer ([`JitterBuffer::stretch`],
//!   [`crate::media::stretch`]): longer while the next packet's slack (the delay less the audio
//!   the receiver has queued) is under the target less half a frame, shorter while the delay is
//!   more than a frame and a half above the target and the next frame is already here. Only a
//!   delay four frames too high (after a spike) still drops whole frames. Clock drift and
//!   target changes thus move the delay a few milliseconds at a time, inside speech.
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

use crate::media::stretch::Stretch;

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
/// How far outside `max_delay` a packet's timing may be before it counts as a jump.
const TIMING_JUMP_MARGIN_SECS: f64 = 1.0;
/// With stretching, how many frames above its target the delay must be before a whole frame is
/// dropped: a few milliseconds of stretch per frame cannot catch up with that soon enough.
const STRETCH_SKIP_FRAMES: f64 = 4.0;

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
    /// The receiver time-stretches decoded audio ([`crate::media::stretch`]): the buffer then
    /// moves its delay by asking for [`JitterBuffer::stretch`] instead of dropping and
    /// concealing whole frames, and drops a frame only when far above its target.
    pub stretch: bool,
    /// The target delay a new stream starts with, before its packets have shown how they
    /// jitter (clamped to `min_delay..=max_delay`). Starting low means underruns in the first
    /// words on a jittery link; starting higher costs delay that the first pauses give back.
    pub initial_delay: Duration,
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
            stretch: false,
            initial_delay: frame,
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
/// after a jump, at most one packet) — except that a frame played from a redundant copy counts
/// in `played` (and `recovered`) and its own packet, should it come later, in `duplicates`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JitterStats {
    /// Every packet pushed.
    pub received: u64,
    pub duplicates: u64,
    /// Arrived after its frame period had passed; not played.
    pub late: u64,
    /// Sequence numbers never received by the time their frame was due.
    pub lost: u64,
    /// Frames played from a redundant copy in a later packet
    /// ([`JitterBuffer::push_redundant`]) because their own packet had not come; counted in
    /// `played`, not in `lost`.
    pub recovered: u64,
    /// Redundant copies that came after their frame was concealed.
    pub recovered_late: u64,
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
    /// Sum and count of the playout delays measured, for [`JitterStats::mean_playout_delay`].
    /// Unlike the rest, they survive [`JitterBuffer::reset`]: they tell the delay the buffer
    /// added over a whole call, whatever streams it carried.
    pub playout_delay_total: Duration,
    pub playout_delay_samples: u64,
    pub buffered_frames: usize,
    pub buffered: Duration,
    /// RFC 3550 6.4.1 interarrival jitter, in RTP clock units as RTCP reports it.
    pub jitter_clock_units: u32,
    pub jitter: Duration,
}

impl JitterStats {
    /// How long frames waited in the buffer on average: the delay the buffer added to the call.
    pub fn mean_playout_delay(&self) -> Option<Duration> {
        let samples = u32::try_from(self.playout_delay_samples)
            .ok()
            .filter(|n| *n > 0)?;
        Some(self.playout_delay_total / samples)
    }
}

#[derive(Debug, Clone)]
struct BufferedFrame {
    seq: i64,
    ts: i64,
    payload: Vec<u8>,
    /// A redundant copy, standing in until (unless) the frame's own packet comes.
    copy: bool,
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

impl StreamReference {
    /// A packet's sequence step from the highest so far, and its extended sequence number and
    /// timestamp: reinterpreting the wrapped differences as signed gives the nearest extension.
    fn extend(&self, seq: u16, timestamp: u32) -> (i64, i64, i64) {
        let seq_step = i64::from(seq.wrapping_sub(self.highest_seq as u16) as i16);
        let ts_step = i64::from(timestamp.wrapping_sub(self.highest_ts as u32) as i32);
        (
            seq_step,
            self.highest_seq + seq_step,
            self.highest_ts.saturating_add(ts_step),
        )
    }
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
    /// For a sequence number already behind playout: whether it was played (or concealed);
    /// `None` when it lies further back than the mask remembers.
    fn was_played(&self, seq: i64) -> Option<bool> {
        let back = self.next_seq.saturating_sub(seq) - 1;
        u32::try_from(back)
            .ok()
            .and_then(|b| self.played_mask.checked_shr(b))
            .map(|bits| bits & 1 == 1)
    }

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
    /// What the frame last handed out should get from a stretching receiver.
    stretch: Stretch,
    /// Seconds of audio the receiver had queued ahead of that frame.
    queued: f64,
    delay: DelayEstimator,
    jitter: InterarrivalJitter,
    stats: JitterStats,
    /// Like the stats' delay total, it survives [`JitterBuffer::reset`].
    playout_delays: DelayHistogram,
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
            stretch: Stretch::Keep,
            queued: 0.0,
            delay: DelayEstimator::new(
                frame_secs,
                config.initial_delay.as_secs_f64(),
                min_delay,
                max_delay,
            ),
            jitter: InterarrivalJitter::default(),
            stats: JitterStats::default(),
            playout_delays: DelayHistogram::default(),
            config,
        }
    }

    pub fn config(&self) -> &JitterConfig {
        &self.config
    }

    /// For a buffer configured to stretch: how the frame the last [`JitterBuffer::pop`] returned
    /// should be played to move the delay toward the target.
    pub fn stretch(&self) -> Stretch {
        self.stretch
    }

    /// A packet arrived at `now`. Any input is accepted; nonsense is counted, never a panic.
    pub fn push(&mut self, now: Instant, seq: u16, timestamp: u32, payload: &[u8]) {
        self.stats.received += 1;
        let arrival = self.seconds(now);
        self.delay.expire(arrival);
        self.admit(arrival, seq, timestamp, payload);
    }

    /// A copy of an earlier frame, carried in the packet just pushed (RFC 2198 redundancy,
    /// [`crate::media::red`]): it fills the frame's place if that is empty and not yet due.
    /// It is not a packet of its own, so it counts as neither received nor duplicate, and its
    /// timing says nothing new about the network's jitter: the delay copies need is set by
    /// [`JitterBuffer::expect_copies`]. Returns whether the copy was taken.
    pub fn push_redundant(&mut self, seq: u16, timestamp: u32, payload: &[u8]) -> bool {
        let Some(reference) = self.reference else {
            return false;
        };
        let (seq_step, ext_seq, ext_ts) = reference.extend(seq, timestamp);
        if !(-MAX_MISORDER..0).contains(&seq_step) {
            // Copies are of frames before the newest one; anything else is not a copy we sent.
            return false;
        }
        if let Some(playhead) = self.playhead {
            if ext_seq < playhead.next_seq {
                // Too far back to tell counts as played: only a known concealment is late.
                if playhead.was_played(ext_seq) == Some(false) {
                    self.stats.recovered_late += 1;
                }
                return false;
            }
        }
        let position = self.buffer.partition_point(|frame| frame.seq < ext_seq);
        if self
            .buffer
            .get(position)
            .is_some_and(|frame| frame.seq == ext_seq)
        {
            return false;
        }
        self.insert_frame(position, ext_seq, ext_ts, payload, true);
        true
    }

    /// The receiver asked its sender to repeat frames up to `frames_back` back (0: none): the
    /// target delay holds what those copies need on a steady link from now on (the span of
    /// frames and half a frame), so a burst as long as the span is rebuilt whole. Copies that
    /// jitter beyond that are not waited for: learning their lateness kept raising the delay
    /// through a call, each time stretching speech (docs/quality.md).
    pub fn expect_copies(&mut self, frames_back: usize) {
        self.delay.expect_copies(frames_back);
    }

    /// Called once per frame period by the playout clock; returns what to play now.
    pub fn pop(&mut self, now: Instant) -> Playout {
        self.pop_behind(now, Duration::ZERO)
    }

    /// [`JitterBuffer::pop`] for a stretching receiver, which asks whenever its queue runs short:
    /// the frame starts to play once the `queued` audio ahead of it has.
    pub fn pop_behind(&mut self, now: Instant, queued: Duration) -> Playout {
        self.stretch = Stretch::Keep;
        self.queued = queued.as_secs_f64();
        let now = self.seconds(now + queued);
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

    /// The delay `q` (0–1) of the frames played so far in the call waited at most in the
    /// buffer, e.g. 0.95 for the 95th percentile; `None` before any frame played.
    pub fn playout_delay_quantile(&self, q: f64) -> Option<Duration> {
        self.playout_delays.quantile(q)
    }

    /// Forgets the stream and the statistics, e.g. after hold or an SSRC change.
    pub fn reset(&mut self) {
        self.reconfigure(self.config.clone());
    }

    /// Starts over with new settings, e.g. when the sender's packets are not the size agreed.
    pub fn reconfigure(&mut self, config: JitterConfig) {
        let delays = (
            self.stats.playout_delay_total,
            self.stats.playout_delay_samples,
        );
        let histogram = std::mem::take(&mut self.playout_delays);
        *self = Self::new(config);
        self.playout_delays = histogram;
        (
            self.stats.playout_delay_total,
            self.stats.playout_delay_samples,
        ) = delays;
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
        let (seq_step, ext_seq, ext_ts) = reference.extend(seq, timestamp);

        let seq_plausible = (-MAX_MISORDER..=MAX_DROPOUT).contains(&seq_step);
        // Old packets may be arbitrarily late; only new ones can move the stream's timing.
        let timing_plausible = seq_step <= 0
            || self
                .delay
                .lateness(arrival, self.ts_seconds(ext_ts))
                .is_none_or(|lateness| lateness.abs() <= self.timing_jump_limit);
        if !(seq_plausible && timing_plausible) {
            self.on_jump(arrival, seq, timestamp, payload);
            return;
        }

        if let Some(playhead) = self.playhead {
            if ext_seq < playhead.next_seq {
                if playhead.was_played(ext_seq) == Some(true) {
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
        if let Some(frame) = self
            .buffer
            .get_mut(position)
            .filter(|frame| frame.seq == ext_seq)
        {
            if frame.copy {
                // The packet itself, after a copy of it: it plays as received after all.
                frame.copy = false;
                self.consecutive_late = 0;
                self.note_arrival(arrival, ext_ts);
            } else {
                self.stats.duplicates += 1;
            }
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
        self.insert_frame(position, ext_seq, ext_ts, payload, false);
    }

    /// Buffers a frame at `position` (found by sequence number), within `max_frames`.
    fn insert_frame(&mut self, position: usize, seq: i64, ts: i64, payload: &[u8], copy: bool) {
        self.buffer.insert(
            position,
            BufferedFrame {
                seq,
                ts,
                payload: payload.to_vec(),
                copy,
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
            copy: false,
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
        self.playout_delay(ts, now)
            .is_none_or(|delay| delay >= self.delay.target - self.frame_secs / 2.0)
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

        if let Some(delay) = self.playout_delay(head_ts, now) {
            let target = self.delay.target;
            let half_frame = self.frame_secs / 2.0;
            // Without stretching the band is a frame and a half wide, wider than the frame a
            // correction moves the delay by: a skip leaves the delay at or above the target and
            // an insert leaves it half a frame short of a skip, so jitter of less than half a
            // frame cannot make one correction undo the other.
            let skip_above = if self.config.stretch {
                STRETCH_SKIP_FRAMES
            } else {
                1.0
            } * self.frame_secs;
            if delay > target + skip_above
                && self.frames_since_adjust > MIN_FRAMES_BETWEEN_SKIPS
                && self.next_frame_follows()
            {
                self.buffer.pop_front();
                playhead.advance(self.frame_ts, false);
                self.stats.skipped += 1;
                self.frames_since_adjust = 0;
            } else if self.config.stretch {
                if delay - self.queued < target - half_frame {
                    // The next frame is asked for `queued` before it plays: the slack its
                    // packet has is the delay less that. Kept as the whole-frame buffer keeps
                    // it, at least the target less half a frame.
                    self.stretch = Stretch::Lengthen;
                } else if delay > target + half_frame + self.frame_secs && self.next_frame_follows()
                {
                    // A frame higher than the slack's floor, since what is queued varies by up
                    // to a frame: a cut of at most a frame then never lands below the floor,
                    // nor a repeat above this. Shortening brings the next frame's turn closer:
                    // only with it already here.
                    self.stretch = Stretch::Shorten;
                }
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
            self.stats.playout_delay_total = self
                .stats
                .playout_delay_total
                .saturating_add(self.stats.playout_delay);
            self.stats.playout_delay_samples += 1;
            self.playout_delays.record(self.stats.playout_delay);
        }
        playhead.jump_to(frame.seq, frame.ts);
        playhead.advance(self.frame_ts, true);
        self.playhead = Some(playhead);
        self.stats.played += 1;
        if frame.copy {
            self.stats.recovered += 1;
        }
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

mod delay_histogram;
mod estimator;

use delay_histogram::DelayHistogram;
use estimator::{DelayEstimator, InterarrivalJitter};

#[cfg(test)]
mod redundancy_tests;
#[cfg(test)]
mod stretch_tests;
#[cfg(test)]
mod tests;
