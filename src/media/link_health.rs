//! Whether a call's audio gets through, each way, judged by what each end's listener did not
//! hear: the frames its receiver concealed over the last [`WINDOW`]. An agent told that their
//! network is dropping the caller's audio (or theirs, as the gateway's reports say) can move off
//! a failing Wi-Fi; one told nothing blames the product. Sans-IO: time is passed in.
//!
//! A direction turns poor at [`POOR_FRAMES`] concealed in the window, 200 ms in 10 s. In the
//! quality harness's calls (docs/quality.md), those that scored PESQ-NB 3.6 or more concealed
//! 0–5 frames in about 10 s of speech, those under 3.0 concealed 10–26. The link is good again
//! once both directions are down to [`GOOD_FRAMES`], so a link on the edge does not flap.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How far back the verdict looks.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Concealed frames in [`WINDOW`], either way, that make the link poor.
pub const POOR_FRAMES: u32 = 10;
/// Concealed frames in [`WINDOW`], each way, at or under which a poor link is good again.
pub const GOOD_FRAMES: u32 = 2;
const FRAME: Duration = Duration::from_millis(20);
/// Counts closer together than this share an entry, so a flood of reports cannot grow the
/// window's memory past `WINDOW / MERGE` entries.
const MERGE: Duration = Duration::from_millis(100);

/// The verdict and what it rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkReport {
    pub poor: bool,
    /// Audio this end's listener did not hear in the last [`WINDOW`].
    pub heard_lost: Duration,
    /// Audio the other end's listener did not hear in it, as its reports say.
    pub sent_lost: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct LinkHealth {
    heard: Window,
    sent: Window,
    poor: bool,
    /// The receiver's running count at the last [`LinkHealth::heard_so_far`].
    missed_seen: u64,
}

impl LinkHealth {
    /// Frames this end's receiver concealed (normally 0 or 1 per 20 ms tick).
    pub fn heard(&mut self, now: Instant, concealed_frames: u32) {
        self.heard.add(now, concealed_frames);
    }

    /// The receiver's running count of frames its listener missed
    /// ([`crate::media::opus_rx::OpusRxStats::missed`]), once per tick.
    pub fn heard_so_far(&mut self, now: Instant, missed: u64) {
        let newly = missed.saturating_sub(self.missed_seen);
        self.missed_seen = missed;
        self.heard(now, u32::try_from(newly).unwrap_or(u32::MAX));
    }

    /// The other end reported concealing this many frames since its previous report.
    pub fn peer_reported(&mut self, now: Instant, concealed_frames: u32) {
        self.sent.add(now, concealed_frames);
    }

    /// The report when the verdict changes: poor, or good again.
    pub fn poll(&mut self, now: Instant) -> Option<LinkReport> {
        let report = self.report(now);
        let (heard, sent) = (self.heard.frames, self.sent.frames);
        let poor = if self.poor {
            heard > GOOD_FRAMES || sent > GOOD_FRAMES
        } else {
            heard >= POOR_FRAMES || sent >= POOR_FRAMES
        };
        if poor == self.poor {
            return None;
        }
        self.poor = poor;
        Some(LinkReport { poor, ..report })
    }

    /// The standing verdict, over the window up to `now`.
    pub fn report(&mut self, now: Instant) -> LinkReport {
        self.heard.expire(now);
        self.sent.expire(now);
        LinkReport {
            poor: self.poor,
            heard_lost: FRAME * self.heard.frames,
            sent_lost: FRAME * self.sent.frames,
        }
    }
}

/// Concealed frames counted over the last [`WINDOW`].
#[derive(Debug, Clone, Default)]
struct Window {
    counts: VecDeque<(Instant, u32)>,
    frames: u32,
}

impl Window {
    fn add(&mut self, now: Instant, frames: u32) {
        if frames == 0 {
            return;
        }
        self.frames = self.frames.saturating_add(frames);
        match self.counts.back_mut() {
            Some((at, count)) if now.saturating_duration_since(*at) < MERGE => {
                *count = count.saturating_add(frames);
            }
            _ => self.counts.push_back((now, frames)),
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(at, count)) = self.counts.front() {
            if now.saturating_duration_since(at) < WINDOW {
                break;
            }
            self.counts.pop_front();
            self.frames = self.frames.saturating_sub(count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// `frames` concealed in a row at this end from `start`, one per 20 ms tick.
    fn burst(health: &mut LinkHealth, start: Instant, frames: u32) -> Instant {
        let mut now = start;
        for _ in 0..frames {
            health.heard(now, 1);
            now += FRAME;
        }
        now
    }

    #[test]
    fn a_few_concealed_frames_are_not_a_poor_link() {
        let start = Instant::now();
        let mut health = LinkHealth::default();
        // Five single losses in ten seconds, as a 3 % link leaves after redundancy.
        for second in 0..5 {
            health.heard(start + Duration::from_secs(2 * second), 1);
        }
        health.peer_reported(start + ms(9_000), 5);
        assert_eq!(health.poll(start + ms(9_500)), None);
        assert_eq!(health.report(start + ms(9_500)).heard_lost, ms(100));
    }

    #[test]
    fn a_long_burst_either_way_turns_the_link_poor_at_once() {
        let start = Instant::now();
        let mut health = LinkHealth::default();
        let end = burst(&mut health, start, 10);
        assert_eq!(
            health.poll(end),
            Some(LinkReport {
                poor: true,
                heard_lost: ms(200),
                sent_lost: ms(0),
            })
        );
        assert_eq!(health.poll(end + ms(20)), None, "said once");

        let mut health = LinkHealth::default();
        health.peer_reported(start, 4);
        health.peer_reported(start + ms(1_000), 6);
        let report = health
            .poll(start + ms(1_000))
            .expect("the caller lost 200 ms");
        assert!(report.poor);
        assert_eq!(report.sent_lost, ms(200));
    }

    #[test]
    fn the_link_is_good_again_once_the_window_holds_little_loss() {
        let start = Instant::now();
        let mut health = LinkHealth::default();
        let end = burst(&mut health, start, 12);
        assert!(health.poll(end).is_some_and(|r| r.poor));
        // Two more frames a few seconds later: still within the good threshold once the burst
        // has left the window, but not before.
        let later = end + ms(5_000);
        burst(&mut health, later, 2);
        assert_eq!(
            health.poll(start + ms(9_990)),
            None,
            "the burst is still in the window"
        );
        let report = health.poll(start + WINDOW + ms(240)).expect("recovered");
        assert!(!report.poor);
        assert_eq!(report.heard_lost, ms(40));
    }

    #[test]
    fn a_link_on_the_edge_does_not_flap() {
        let start = Instant::now();
        let mut health = LinkHealth::default();
        let mut changes = 0;
        // Six frames concealed every two seconds: 30 per window, then a calmer stretch with
        // one every two seconds (5 per window: neither poor nor good).
        let mut now = start;
        for step in 0..60 {
            health.heard(now, if step < 10 { 6 } else { 1 });
            if health.poll(now).is_some() {
                changes += 1;
            }
            now += Duration::from_secs(2);
        }
        assert_eq!(changes, 1, "poor once, never back and forth");
    }

    #[test]
    fn a_flood_of_reports_keeps_the_window_small() {
        let start = Instant::now();
        let mut health = LinkHealth::default();
        for i in 0..100_000u64 {
            health.peer_reported(start + Duration::from_micros(i * 100), 255);
        }
        assert!(health.sent.counts.len() <= (WINDOW.as_millis() / MERGE.as_millis()) as usize + 1);
        assert!(health.poll(start + ms(10)).is_some_and(|r| r.poor));
    }
}
