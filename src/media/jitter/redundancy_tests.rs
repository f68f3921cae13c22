//! Redundant copies (RFC 2198) in the jitter buffer: they fill lost frames' places, count as
//! recovered only when played, and hold the delay where the next burst's copies can play.
use std::time::{Duration, Instant};

use super::*;

const TS_PER_FRAME: u32 = 160;

fn buffer() -> JitterBuffer {
    JitterBuffer::new(JitterConfig {
        clock_rate: 8000,
        frame: Duration::from_millis(20),
        min_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_frames: 50,
        stretch: false,
        initial_delay: Duration::from_millis(20),
    })
}

/// A sender of 20 ms frames with a steady network: packet `seq` arrives at `seq × 20 ms`,
/// unless lost; each packet may carry copies of the frames `back` before it.
struct Link {
    base: Instant,
    lost: Vec<u16>,
    copies_back: Vec<u16>,
}

impl Link {
    fn at(&self, ms: u64) -> Instant {
        self.base + Duration::from_millis(ms)
    }

    /// Runs the frame periods of `frames`, popping each 20 ms after the packets of that instant,
    /// and returns the sequence numbers played (None for a concealment or idle).
    fn run(&self, jb: &mut JitterBuffer, frames: std::ops::Range<u16>) -> Vec<Option<u16>> {
        let mut played = Vec::new();
        for seq in frames {
            let now = self.at(u64::from(seq) * 20);
            if !self.lost.contains(&seq) {
                jb.push(now, seq, u32::from(seq) * TS_PER_FRAME, &seq.to_be_bytes());
                for &back in &self.copies_back {
                    if let Some(old) = seq.checked_sub(back) {
                        jb.push_redundant(old, u32::from(old) * TS_PER_FRAME, &old.to_be_bytes());
                    }
                }
            }
            played.push(match jb.pop(now) {
                Playout::Frame(payload) => Some(u16::from_be_bytes([payload[0], payload[1]])),
                _ => None,
            });
        }
        played
    }
}

#[test]
fn copies_rebuild_lost_frames_once_the_buffer_holds_the_span_asked_for() {
    let base = Instant::now();
    let mut jb = buffer();
    let burst = |lost: Vec<u16>| Link {
        base,
        lost,
        copies_back: vec![3, 2, 1],
    };
    // Copies three frames back, but a buffer that holds two: the first frame of a burst of
    // three has its copy come 60 ms late, after its turn, and is concealed for a while.
    burst(vec![]).run(&mut jb, 0..25);
    let settled = jb.stats();
    burst(vec![30, 31, 32]).run(&mut jb, 25..60);
    let stats = jb.stats();
    assert!(stats.concealed > settled.concealed, "{stats:?}");

    // The receiver asked for a span of three: the target holds three frames and a half.
    jb.expect_copies(3);
    assert!(jb.stats().target_delay >= Duration::from_millis(70));
    let before = jb.stats();
    let played = burst(vec![90, 91, 92]).run(&mut jb, 60..140);
    let stats = jb.stats();
    assert_eq!(stats.recovered - before.recovered, 3, "{stats:?}");
    // Concealments inserted to grow the delay to the new target are not losses.
    assert_eq!(
        stats.concealed - stats.inserted,
        before.concealed - before.inserted,
        "{stats:?}"
    );
    assert_eq!(stats.lost, before.lost, "{stats:?}");
    assert!(
        (90..93).all(|seq| played.contains(&Some(seq))),
        "{played:?}"
    );
    assert_eq!(stats.duplicates, 0);

    // No span asked for: the target falls back to what the jitter needs.
    jb.expect_copies(0);
    burst(vec![]).run(&mut jb, 140..400);
    assert!(
        jb.stats().target_delay <= Duration::from_millis(30),
        "{:?}",
        jb.stats()
    );
}

#[test]
fn a_packet_after_its_own_copy_is_neither_duplicate_nor_recovery() {
    let base = Instant::now();
    let mut jb = buffer();
    let at = |ms: u64| base + Duration::from_millis(ms);
    for seq in 0..5u16 {
        jb.push(
            at(u64::from(seq) * 20),
            seq,
            u32::from(seq) * TS_PER_FRAME,
            &[0, seq as u8],
        );
    }
    // Packet 6 (with a copy of 5) overtakes 5, which comes a moment later.
    jb.push(at(110), 6, 6 * TS_PER_FRAME, &[0, 6]);
    assert!(jb.push_redundant(5, 5 * TS_PER_FRAME, &[0, 5]));
    jb.push(at(112), 5, 5 * TS_PER_FRAME, &[0, 5]);
    let mut played = Vec::new();
    for k in 0..10u64 {
        if let Playout::Frame(p) = jb.pop(at(40 + 20 * k)) {
            played.push(p[1]);
        }
    }
    assert_eq!(played, [0, 1, 2, 3, 4, 5, 6]);
    let stats = jb.stats();
    assert_eq!((stats.recovered, stats.duplicates, stats.lost), (0, 0, 0));
}

#[test]
fn copies_of_unknown_or_newer_frames_are_refused() {
    let base = Instant::now();
    let mut jb = buffer();
    assert!(
        !jb.push_redundant(7, 7 * TS_PER_FRAME, &[7]),
        "no stream yet"
    );
    jb.push(base, 10, 10 * TS_PER_FRAME, &[10]);
    assert!(
        !jb.push_redundant(11, 11 * TS_PER_FRAME, &[11]),
        "ahead of the stream"
    );
    assert!(
        !jb.push_redundant(10, 10 * TS_PER_FRAME, &[10]),
        "already here"
    );
    assert!(jb.push_redundant(9, 9 * TS_PER_FRAME, &[9]));
    let stats = jb.stats();
    assert_eq!(
        (stats.received, stats.duplicates),
        (1, 0),
        "copies are not packets"
    );
}
