//! Time-stretching of decoded 8 kHz speech, so a jitter buffer can grow and shrink its delay
//! without dropping or repeating whole frames (sans-IO).
//!
//! A receiver decodes each frame the buffer hands it into a [`PcmQueue`] and plays a fixed 20 ms
//! from the queue's head every tick. When the buffer wants less delay, the newly decoded audio
//! loses one pitch period ([`accelerate`]); when it wants more, one period is repeated
//! ([`expand`]). Either only where the audio allows it unheard: near-silence, where any length
//! will do, or — once a request has waited long enough for a pause — voiced speech whose
//! consecutive periods match (normalised correlation at least [`MATCH`]). Each cut or repeat is cross-faded over the matching stretch, so the waveform has no
//! step. This is WSOLA with one segment per frame, the idea behind WebRTC NetEQ's accelerate
//! and preemptive expand; the decision of when lives in the jitter buffer.
//!
//! The queue changes the instants at which the buffer is asked for a frame (after an
//! accelerate, sooner; after an expand, later), so the buffer sees the delay really played and a
//! sender whose clock drifts from ours is absorbed a few milliseconds at a time.

use std::collections::VecDeque;
use std::time::Duration;

/// The sample rate everything here runs at: the call's audio inside the gateway and client.
pub const RATE: u32 = 8000;
/// Shortest pitch period looked for: 400 Hz.
pub const MIN_PERIOD: usize = 20;
/// Longest: 15 ms, about 67 Hz, below any speaking voice.
pub const MAX_PERIOD: usize = 120;
/// The shortest stretch two periods are compared over; below 5 ms a match means little.
const MIN_WINDOW: usize = 40;
/// How alike two consecutive periods must be for one to go (or be repeated) unheard. NetEQ uses
/// the same 0.9.
pub const MATCH: f64 = 0.9;
/// Mean square below which the audio counts as quiet (about −40 dBov): pauses, breaths, the
/// line's noise floor, where a cut or a repeat of any length is inaudible.
const QUIET_MEAN_SQUARE: f64 = 328.0 * 328.0;

/// What the jitter buffer wants of the audio it just handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stretch {
    #[default]
    Keep,
    /// Delay is above target: play this audio a little faster.
    Shorten,
    /// Delay is below target: play it a little slower.
    Lengthen,
}

/// Shortens `pcm` by one pitch period if its audio allows it; returns the samples removed.
pub fn accelerate(pcm: &mut Vec<i16>) -> usize {
    accelerate_if(pcm, true)
}

fn accelerate_if(pcm: &mut Vec<i16>, voiced_too: bool) -> usize {
    let Some(Segment { period, window }) = find_segment(pcm, voiced_too) else {
        return 0;
    };
    // The first `window` samples fade from the audio at 0 into the audio one period later, so
    // playback leaves the window exactly where it would have been a period further on.
    for i in 0..window {
        let fade_in = (i + 1) as f64 / (window + 1) as f64;
        pcm[i] = mix(pcm[i], pcm[i + period], fade_in);
    }
    pcm.drain(window..window + period);
    period
}

/// Lengthens `pcm` by one pitch period if its audio allows it; returns the samples added.
pub fn expand(pcm: &mut Vec<i16>) -> usize {
    expand_if(pcm, true)
}

fn expand_if(pcm: &mut Vec<i16>, voiced_too: bool) -> usize {
    let Some(Segment { period, window }) = find_segment(pcm, voiced_too) else {
        return 0;
    };
    // After the first period, playback fades from where it is back to the period's start and
    // then plays the rest again from there: period + window + (len − window) samples.
    let mut inserted = [0i16; 2 * MAX_PERIOD];
    for i in 0..window {
        let fade_in = (i + 1) as f64 / (window + 1) as f64;
        inserted[i] = mix(pcm[period + i], pcm[i], fade_in);
    }
    inserted[window..period].copy_from_slice(&pcm[window..period]);
    pcm.splice(period..period, inserted[..period].iter().copied());
    period
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    period: usize,
    window: usize,
}

/// The period to cut or repeat at the start of `pcm`, with the stretch compared over, or none
/// when the audio is neither quiet nor (with `voiced_too`) periodic enough.
fn find_segment(pcm: &[i16], voiced_too: bool) -> Option<Segment> {
    let longest = MAX_PERIOD.min(pcm.len().saturating_sub(MIN_WINDOW));
    if longest < MIN_PERIOD {
        return None;
    }
    let window_for = |period: usize| period.min(pcm.len() - period);
    if mean_square(pcm) <= QUIET_MEAN_SQUARE {
        return Some(Segment {
            period: longest,
            window: window_for(longest),
        });
    }
    if !voiced_too {
        return None;
    }
    let mut best: Option<(f64, usize)> = None;
    for period in MIN_PERIOD..=longest {
        let window = window_for(period);
        let score = correlation(&pcm[..window], &pcm[period..period + window]);
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, period));
        }
    }
    let (score, period) = best?;
    (score >= MATCH).then(|| Segment {
        period,
        window: window_for(period),
    })
}

fn mean_square(pcm: &[i16]) -> f64 {
    if pcm.is_empty() {
        return 0.0;
    }
    let energy: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    energy / pcm.len() as f64
}

/// Normalised cross-correlation of two equally long stretches; 0 when either is silent.
pub(crate) fn correlation(a: &[i16], b: &[i16]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return 0.0;
    }
    ab / (aa * bb).sqrt()
}

fn mix(from: i16, to: i16, weight_to: f64) -> i16 {
    let v = f64::from(from) * (1.0 - weight_to) + f64::from(to) * weight_to;
    // A weighted mean of two i16 stays within i16.
    v.round() as i16
}

/// Decoded audio waiting to play: the receiver appends whole frames, the playout clock takes a
/// fixed amount each tick. Appending is where stretching happens.
#[derive(Debug, Clone)]
pub struct PcmQueue {
    samples: VecDeque<i16>,
    /// Frames the buffer has been asking for the same stretch without getting it.
    asked_for: u32,
    /// Frames of a pause ([`PAUSE_MEAN_SQUARE`]) pushed in a row, up to this one.
    quiet_run: u32,
    stats: StretchStats,
}

/// How long a lengthening waits for quiet audio before it may repeat a period of speech. A
/// stretch inside a word is what listeners (and PESQ) notice; pauses come every second or two
/// in conversation, and the buffer's band leaves that much room before it runs dry.
const QUIET_WAIT_FRAMES: u32 = 50;
/// How long a shortening waits for quiet audio before it may cut a period of speech. Too much
/// delay costs no audio, only a little conversational latency, so it waits for a pause five
/// times as long: a buffer that started deep on a clean link drains in the pauses.
const QUIET_WAIT_SHORTEN_FRAMES: u32 = 5 * QUIET_WAIT_FRAMES;
/// Silent frames in a row before a stretch may cut into them or repeat them: a pause between
/// phrases, not the 20–60 ms gap between two words. PESQ (and a listener) hears a word gap cut
/// short or drawn out inside a phrase, where a phrase pause of any length passes unnoticed
/// (measured: cuts in word gaps took a clean call's agent → caller PESQ from 3.84 to 3.65;
/// repeats there, on the 150 ms ± 50 ms link, gave 3.23–3.85 against 3.57–3.86 over 10 calls).
const PAUSE_FRAMES: u32 = 6;
/// Mean square below which a frame counts as part of a pause (about −50 dBov): stricter than
/// [`QUIET_MEAN_SQUARE`], because a soft consonant after Opus and G.711 measured −44 dBov and
/// a run of them passed for a pause.
const PAUSE_MEAN_SQUARE: f64 = 104.0 * 104.0;

/// What stretching did over a receiver's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StretchStats {
    /// Audio cut out (one pitch period at a time) to shorten the delay.
    pub accelerated_samples: u64,
    pub accelerations: u64,
    /// Audio repeated to lengthen it.
    pub expanded_samples: u64,
    pub expansions: u64,
    /// Times the buffer asked and the audio was neither quiet nor periodic enough.
    pub declined: u64,
}

impl StretchStats {
    pub fn accelerated(&self) -> Duration {
        samples_to_duration(self.accelerated_samples)
    }

    pub fn expanded(&self) -> Duration {
        samples_to_duration(self.expanded_samples)
    }
}

fn samples_to_duration(samples: u64) -> Duration {
    Duration::from_micros(samples.saturating_mul(1_000_000) / u64::from(RATE))
}

impl Default for PcmQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl PcmQueue {
    pub fn new() -> Self {
        Self {
            // Room for a frame and a half of a 60 ms packet, so steady playing never allocates.
            samples: VecDeque::with_capacity(1024),
            asked_for: 0,
            quiet_run: 0,
            stats: StretchStats::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// How long the queued audio plays: what the next frame waits behind.
    pub fn queued(&self) -> Duration {
        samples_to_duration(self.samples.len() as u64)
    }

    /// Appends a decoded frame, stretched as asked where its audio allows: at once in a pause
    /// that has lasted [`PAUSE_FRAMES`]; in word gaps and voiced speech only once the request
    /// has waited for a pause ([`QUIET_WAIT_FRAMES`] to lengthen, [`QUIET_WAIT_SHORTEN_FRAMES`]
    /// to shorten).
    pub fn push(&mut self, pcm: &mut Vec<i16>, stretch: Stretch) {
        if stretch == Stretch::Keep {
            self.asked_for = 0;
        } else {
            self.asked_for = self.asked_for.saturating_add(1);
        }
        let wait = match stretch {
            Stretch::Shorten => QUIET_WAIT_SHORTEN_FRAMES,
            Stretch::Keep | Stretch::Lengthen => QUIET_WAIT_FRAMES,
        };
        let voiced_too = self.asked_for > wait;
        self.quiet_run = if mean_square(pcm) <= PAUSE_MEAN_SQUARE {
            self.quiet_run.saturating_add(1)
        } else {
            0
        };
        let changed = match stretch {
            Stretch::Keep => 0,
            _ if !voiced_too && self.quiet_run <= PAUSE_FRAMES => 0,
            Stretch::Shorten => accelerate_if(pcm, voiced_too),
            Stretch::Lengthen => expand_if(pcm, voiced_too),
        } as u64;
        match (stretch, changed) {
            (Stretch::Keep, _) => {}
            (_, 0) => self.stats.declined += 1,
            (Stretch::Shorten, n) => {
                self.stats.accelerations += 1;
                self.stats.accelerated_samples += n;
            }
            (Stretch::Lengthen, n) => {
                self.stats.expansions += 1;
                self.stats.expanded_samples += n;
            }
        }
        if changed > 0 {
            self.asked_for = 0;
        }
        self.samples.extend(pcm.iter().copied());
    }

    /// Moves `count` samples from the head into `out` (silence for any the queue lacks).
    pub fn take(&mut self, count: usize, out: &mut Vec<i16>) {
        let available = count.min(self.samples.len());
        out.extend(self.samples.drain(..available));
        out.resize(out.len() + count - available, 0);
    }

    pub fn clear(&mut self) {
        self.samples.clear();
    }

    pub fn stats(&self) -> StretchStats {
        self.stats
    }
}

#[cfg(test)]
mod tests;
