//! The buffer as a stretching receiver drives it (decoded audio through a [`PcmQueue`], a frame
//! popped whenever the queue runs short), in virtual time over traces a real link produces:
//! clock drift over half an hour, Gilbert-Elliott loss with jitter, a jitter spike.

use super::tests::XorShift;
use super::*;
use crate::media::stretch::PcmQueue;

const FRAME: usize = 160;
const FRAME_MS: f64 = 20.0;

fn stretching_config() -> JitterConfig {
    JitterConfig {
        min_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(300),
        stretch: true,
        ..JitterConfig::new(8000, Duration::from_millis(20))
    }
}

/// Frames in one cycle of [`payload`]'s audio; the vowel's 64-sample period divides it.
const CYCLE: u64 = 90;

/// Speech-like audio: 1.2 s of a 125 Hz vowel, then 0.6 s of silence, over and over; frame `k`
/// of it as the payload (little-endian samples).
fn payload(k: u64) -> Vec<u8> {
    let spurt = (k % CYCLE) < 60;
    (0..FRAME as u64)
        .flat_map(|i| {
            let n = k * FRAME as u64 + i;
            let t = n as f64 / 8000.0;
            let v = if spurt {
                (1..=4)
                    .map(|h| {
                        let h = f64::from(h);
                        (2.0 * std::f64::consts::PI * 125.0 * h * t).sin() * 5000.0 / h
                    })
                    .sum::<f64>()
            } else {
                0.0
            };
            (v.round() as i16).to_le_bytes()
        })
        .collect()
}

/// What the receiver played, tick by tick.
#[derive(Default)]
struct Heard {
    /// The buffer's playout delay at every tick after the first second of playing.
    delays_ms: Vec<f64>,
    /// Longest run of consecutive concealed frames.
    longest_concealment: usize,
    /// Frames concealed while the stream was steady (not at its start or end).
    concealed_in_steady: Vec<usize>,
}

/// A receiver in virtual time: packets `(arrival_ms, seq)` in, a 20 ms tick out.
struct Receiver {
    jb: JitterBuffer,
    queue: PcmQueue,
    pcm: Vec<i16>,
    run: usize,
    heard: Heard,
}

impl Receiver {
    fn new() -> Self {
        Self {
            jb: JitterBuffer::new(stretching_config()),
            queue: PcmQueue::new(),
            pcm: Vec::new(),
            run: 0,
            heard: Heard::default(),
        }
    }

    fn tick(&mut self, now: Instant, record_delay: bool) {
        while self.queue.len() < FRAME {
            self.pcm.clear();
            match self.jb.pop_behind(now, self.queue.queued()) {
                Playout::Frame(bytes) => {
                    self.run = 0;
                    self.pcm.extend(
                        bytes
                            .chunks_exact(2)
                            .map(|b| i16::from_le_bytes([b[0], b[1]])),
                    );
                }
                Playout::Conceal => {
                    if record_delay {
                        self.heard
                            .concealed_in_steady
                            .push(self.heard.delays_ms.len());
                    }
                    self.run += 1;
                    self.heard.longest_concealment = self.heard.longest_concealment.max(self.run);
                    self.pcm.resize(FRAME, 0);
                }
                Playout::Idle => self.pcm.resize(FRAME, 0),
            }
            self.queue.push(&mut self.pcm, self.jb.stretch());
        }
        let mut out = Vec::with_capacity(FRAME);
        self.queue.take(FRAME, &mut out);
        if record_delay {
            let delay = self.jb.stats().playout_delay.as_secs_f64() * 1000.0;
            self.heard.delays_ms.push(delay);
        }
    }
}

/// Plays `frames` frames whose packets arrive at `arrival_ms(k)` (None: lost); ticks every 20 ms
/// of our clock until all have had time to play.
fn play(frames: u64, mut arrival_ms: impl FnMut(u64) -> Option<f64>) -> Receiver {
    let base = Instant::now();
    let at = |ms: f64| base + Duration::from_secs_f64(ms / 1000.0);
    let mut arrivals: Vec<(f64, u64)> = (0..frames)
        .filter_map(|k| arrival_ms(k).map(|ms| (ms, k)))
        .collect();
    arrivals.sort_by(|a, b| a.0.total_cmp(&b.0));
    let last = arrivals.last().map_or(0.0, |a| a.0);
    let payloads: Vec<Vec<u8>> = (0..CYCLE).map(payload).collect();
    let mut rx = Receiver::new();
    let mut next = 0;
    let mut tick = 0u64;
    loop {
        let now_ms = 3.0 + FRAME_MS * tick as f64;
        if now_ms > last + 500.0 {
            break;
        }
        while next < arrivals.len() && arrivals[next].0 <= now_ms {
            let (ms, k) = arrivals[next];
            // Sequence numbers and timestamps wrap as a real sender's do.
            rx.jb.push(
                at(ms),
                k as u16,
                (k * FRAME as u64) as u32,
                &payloads[(k % CYCLE) as usize],
            );
            next += 1;
        }
        // Past the first second, and before the stream's end drains the buffer.
        let steady = tick > 50 && now_ms < last - 200.0;
        rx.tick(at(now_ms), steady);
        tick += 1;
    }
    rx
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

#[test]
fn sender_clock_drift_of_200_ppm_for_30_minutes_is_stretched_away() {
    let frames = 30 * 60 * 50;
    for ppm in [200.0, -200.0] {
        let mut random = XorShift(0x5eed ^ ppm as i64 as u64);
        // A sender whose clock runs `ppm` fast sends its 20 ms frames in less of our time.
        let rx = play(frames, |k| {
            Some(k as f64 * FRAME_MS / (1.0 + ppm * 1e-6) + 30.0 + random.next() * 8.0)
        });
        let stats = rx.jb.stats();
        let stretched = rx.queue.stats();
        let delays = &rx.heard.delays_ms;
        let five_minutes = 5 * 60 * 50;
        let (first, last) = (
            mean(&delays[..five_minutes]),
            mean(&delays[delays.len() - five_minutes..]),
        );
        // 30 minutes at 200 ppm is 360 ms: absorbed, the delay at the end is the delay at the
        // start, and nothing was dropped or concealed for it.
        assert!(
            (last - first).abs() < 10.0,
            "{ppm} ppm: mean delay {first:.1} ms in the first 5 minutes, {last:.1} in the last"
        );
        let worst = delays.iter().copied().fold(0.0, f64::max);
        assert!(worst < 60.0, "{ppm} ppm: delay reached {worst:.1} ms");
        assert_eq!(stats.skipped + stats.inserted, 0, "{ppm} ppm: {stats:?}");
        assert_eq!(stats.lost + stats.late, 0, "{ppm} ppm: {stats:?}");
        assert_eq!(
            rx.heard.concealed_in_steady,
            Vec::<usize>::new(),
            "{ppm} ppm: frames concealed at these ticks"
        );
        let (moved, other) = if ppm > 0.0 {
            (stretched.accelerated(), stretched.expanded())
        } else {
            (stretched.expanded(), stretched.accelerated())
        };
        assert!(
            moved >= Duration::from_millis(340) && moved <= Duration::from_millis(600),
            "{ppm} ppm: stretched by {moved:?} one way, {other:?} the other: {stretched:?}"
        );
    }
}

#[test]
fn gilbert_elliott_loss_with_jitter_conceals_no_longer_than_it_loses() {
    // Bursts: 2 % of good packets start a burst, a burst ends with 40 % chance per packet (mean
    // 2.5 lost), about 5 % lost overall; ±15 ms of jitter on top.
    let frames = 5 * 60 * 50;
    let mut random = XorShift(0x6e11);
    let mut bad = false;
    let mut lost = vec![false; frames as usize];
    let mut longest_loss = 0;
    let mut run = 0;
    for slot in lost.iter_mut() {
        bad = if bad {
            random.next() >= 0.4
        } else {
            random.next() < 0.02
        };
        *slot = bad;
        run = if bad { run + 1 } else { 0 };
        longest_loss = longest_loss.max(run);
    }
    // A stream's first and last packets must come for its losses to be known as such.
    let len = lost.len();
    lost[..10].fill(false);
    lost[len - 10..].fill(false);
    let jitter: Vec<f64> = (0..frames).map(|_| random.next() * 30.0).collect();
    let rx = play(frames, |k| {
        (!lost[k as usize]).then(|| k as f64 * FRAME_MS + 20.0 + jitter[k as usize])
    });
    let stats = rx.jb.stats();
    let lost_count = lost.iter().filter(|l| **l).count() as u64;
    assert_eq!(stats.lost, lost_count, "{stats:?}");
    assert_eq!(stats.late + stats.inserted, 0, "{stats:?}");
    assert!(
        rx.heard.longest_concealment <= longest_loss,
        "concealed {} frames in a row; the longest burst lost {longest_loss}",
        rx.heard.longest_concealment
    );
    // The buffer holds the jitter and no more: one frame plus about the 95th percentile.
    let delay = mean(&rx.heard.delays_ms);
    assert!((30.0..=70.0).contains(&delay), "mean delay {delay:.1} ms");
}

#[test]
fn after_a_jitter_spike_the_delay_comes_back_down_by_stretching() {
    // 20 s steady, then for one second every packet 150 ms late, then steady again.
    let frames = 60 * 50;
    let rx = play(frames, |k| {
        let spike = (1000..1050).contains(&k);
        Some(k as f64 * FRAME_MS + 10.0 + if spike { 150.0 } else { 0.0 })
    });
    let stats = rx.jb.stats();
    let delays = &rx.heard.delays_ms;
    let target = stats.target_delay.as_secs_f64() * 1000.0;
    let worst = delays.iter().copied().fold(0.0, f64::max);
    assert!(
        worst > 150.0,
        "the spike raised the delay to {worst:.1} ms only"
    );
    // 35 s later the delay is back in the band the buffer keeps around its target (a frame
    // above it at most), the spike forgotten.
    let long_after = mean(&delays[delays.len() - 200..]);
    assert!(
        long_after <= target + 30.0 && target < 30.0,
        "{long_after:.1} ms 35 s after the spike; {stats:?}"
    );
    let stretched = rx.queue.stats();
    assert!(stretched.accelerations > 0, "{stretched:?}");
    assert_eq!(stats.lost, 0, "{stats:?}");
}
