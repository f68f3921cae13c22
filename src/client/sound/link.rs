//! The two rings between the sound card's threads and the agent's task, and the rules that keep
//! their latency small and fixed.
//!
//! The sound card and the agent's 20 ms media clock tick on different clocks, in different
//! sized steps (a card asks for whatever its period is), and either can stall for a moment. So
//! each ring is kept at a small target level, not just "whatever is there":
//! - it is *primed* before samples flow out of it: output starts only once it holds one
//!   consumer step plus one 20 ms frame (at least 40 ms), so ordinary jitter on either side does
//!   not run it dry;
//! - when it does run dry (an *underrun*), the consumer gets silence for the missing samples
//!   and the ring primes again;
//! - when it fills past the target by more than two frames (the producer's clock is faster, or
//!   the consumer stalled), the excess is dropped instead of becoming permanent delay.
//!
//! Everything the sound card's side does is wait-free and allocation-free: an [`rtrb`] ring,
//! atomics for the counters and the step size. The sample rate on both rings is 8 kHz mono, the
//! call's own format; conversion to the card's format happens in the callback (see `device`).
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use rtrb::{Consumer, Producer, RingBuffer};

use crate::media::opus::FRAME_SAMPLES;

/// The rings' hard bound: one second at 8 kHz. The level rules keep them far below it; this only
/// bounds what a stalled consumer can cost in memory.
pub const RING_SAMPLES: usize = 8000;
/// The least a ring is primed to: two frames (40 ms).
pub const MIN_PRIME_SAMPLES: usize = 2 * FRAME_SAMPLES;
/// How far above its prime level a ring may fill before the excess is dropped (40 ms).
pub const HEADROOM_SAMPLES: usize = 2 * FRAME_SAMPLES;

/// What one direction's ring did, as counted on either side.
#[derive(Debug, Default)]
struct Shared {
    /// Samples the sound card's side moves per callback (at 8 kHz), to size the prime level.
    step: AtomicUsize,
    underruns: AtomicU64,
    /// Samples thrown away to keep the latency bounded.
    dropped: AtomicU64,
}

impl Shared {
    fn prime_level(&self) -> usize {
        prime_level(self.step.load(Ordering::Relaxed))
    }

    fn counters(&self) -> LinkCounters {
        LinkCounters {
            underruns: self.underruns.load(Ordering::Relaxed),
            dropped_samples: self.dropped.load(Ordering::Relaxed),
        }
    }
}

/// The level a ring must reach before samples flow out: one consumer step of `step` samples
/// plus a frame, at least [`MIN_PRIME_SAMPLES`].
pub fn prime_level(step: usize) -> usize {
    (step + FRAME_SAMPLES).clamp(MIN_PRIME_SAMPLES, RING_SAMPLES - HEADROOM_SAMPLES)
}

/// One direction's counters, read at any time from the agent's side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCounters {
    /// Times the ring ran dry while playing (it then primes again).
    pub underruns: u64,
    /// Samples thrown away to keep the latency bounded.
    pub dropped_samples: u64,
}

/// The speaker's ring: the agent's task writes frames, the output callback reads samples.
pub fn speaker_link() -> (SpeakerFeed, SpeakerDrain) {
    let (producer, consumer) = RingBuffer::new(RING_SAMPLES);
    let shared = Arc::new(Shared::default());
    (
        SpeakerFeed {
            producer,
            shared: shared.clone(),
        },
        SpeakerDrain {
            consumer,
            shared,
            primed: false,
        },
    )
}

/// The microphone's ring: the input callback writes samples, the agent's task reads frames.
pub fn microphone_link() -> (MicrophoneFeed, MicrophoneTap) {
    let (producer, consumer) = RingBuffer::new(RING_SAMPLES);
    let shared = Arc::new(Shared::default());
    (
        MicrophoneFeed {
            producer,
            shared: shared.clone(),
        },
        MicrophoneTap {
            consumer,
            shared,
            primed: false,
        },
    )
}

/// The agent's end of the speaker ring.
pub struct SpeakerFeed {
    producer: Producer<i16>,
    shared: Arc<Shared>,
}

impl SpeakerFeed {
    /// Queues one received frame for the speaker, or drops it when the ring is already a full
    /// headroom above its prime level (the card plays slower than the call's clock, or stalls).
    pub fn play(&mut self, frame: &[i16]) {
        let level = RING_SAMPLES - self.producer.slots();
        let ceiling = self.shared.prime_level() + HEADROOM_SAMPLES;
        if level + frame.len() > ceiling || self.producer.push_entire_slice(frame).is_err() {
            self.shared
                .dropped
                .fetch_add(frame.len() as u64, Ordering::Relaxed);
        }
    }

    pub fn counters(&self) -> LinkCounters {
        self.shared.counters()
    }
}

/// The output callback's end of the speaker ring.
pub struct SpeakerDrain {
    consumer: Consumer<i16>,
    shared: Arc<Shared>,
    primed: bool,
}

impl SpeakerDrain {
    /// Starts a callback that will take about `step` samples: publishes the step (for the prime
    /// level) and decides whether the ring is ready to play.
    pub fn begin(&mut self, step: usize) {
        self.shared.step.store(step, Ordering::Relaxed);
        if !self.primed && self.consumer.slots() >= prime_level(step) {
            self.primed = true;
        }
    }

    /// The next sample for the speaker; silence while priming or when the ring ran dry.
    pub fn next_sample(&mut self) -> i16 {
        if self.primed {
            if let Ok(sample) = self.consumer.pop() {
                return sample;
            }
            self.primed = false;
            self.shared.underruns.fetch_add(1, Ordering::Relaxed);
        }
        0
    }
}

/// The input callback's end of the microphone ring.
pub struct MicrophoneFeed {
    producer: Producer<i16>,
    shared: Arc<Shared>,
}

impl MicrophoneFeed {
    /// Starts a callback that will deliver about `step` samples (for the prime level).
    pub fn begin(&mut self, step: usize) {
        self.shared.step.store(step, Ordering::Relaxed);
    }

    /// One captured sample; dropped if the agent has not read for a whole ring's worth.
    pub fn push(&mut self, sample: i16) {
        if self.producer.push(sample).is_err() {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The agent's end of the microphone ring.
pub struct MicrophoneTap {
    consumer: Consumer<i16>,
    shared: Arc<Shared>,
    primed: bool,
}

impl MicrophoneTap {
    /// Fills `frame` with the next captured samples: silence while priming, the rest silence
    /// after an underrun. Audio older than the prime level plus the headroom is skipped first,
    /// so a card that runs fast (or audio captured while nobody read) never becomes delay.
    pub fn read(&mut self, frame: &mut [i16]) {
        let prime = self.shared.prime_level();
        let level = self.consumer.slots();
        if level > prime + HEADROOM_SAMPLES {
            let excess = level - prime;
            if let Ok(chunk) = self.consumer.read_chunk(excess) {
                chunk.commit_all();
                self.shared
                    .dropped
                    .fetch_add(excess as u64, Ordering::Relaxed);
            }
        }
        if !self.primed {
            if self.consumer.slots() < prime {
                frame.fill(0);
                return;
            }
            self.primed = true;
        }
        let (_, missing) = self.consumer.pop_partial_slice(frame);
        if !missing.is_empty() {
            missing.fill(0);
            self.primed = false;
            self.shared.underruns.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn counters(&self) -> LinkCounters {
        self.shared.counters()
    }
}
