//! Key presses toward the carrier (an agent's DTMF), one frame at a time: as RFC 4733 events
//! when the carrier negotiated telephone-event, otherwise as tones in the audio.
//!
//! Presses go out one after another with a pause between them, so the far end's detector sees
//! each key as its own press: 100 ms on, 100 ms off, within what ITU-T Q.24 receivers accept
//! (≥ 40 ms on, ≥ 40 ms off) with margin for a lost packet. While a press is sounding it
//! replaces the agent's audio; a digit and speech at once would only confuse the detector.
use std::collections::VecDeque;
use std::time::Duration;

use super::rfc4733::{Rfc4733Packet, Rfc4733Sender, TelephoneEvent};
use super::{digit_to_event, DtmfError};
use crate::media::tone::{ToneGenerator, SAMPLE_RATE};

pub const PRESS: Duration = Duration::from_millis(100);
pub const PAUSE: Duration = Duration::from_millis(100);
/// Per tone, the level of a typical DTMF sender (ITU-T Q.23 allows −10 ± a few dB per tone).
pub const TONE_LEVEL_DBM0: f32 = -10.0;
/// An agent asks for at most 32 digits at a time; a few requests may queue behind one another.
pub const MAX_QUEUED: usize = 128;

/// What to send in the next frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigitFrame {
    /// No press is sounding: send the audio as usual.
    Audio,
    /// Send this telephone-event packet instead of audio; the media clock still moves on by one
    /// frame.
    Event {
        event: TelephoneEvent,
        timestamp: u32,
        marker: bool,
    },
    /// Send the frame the sender wrote into the caller's buffer instead of the audio.
    Tone,
}

#[derive(Debug, Clone)]
struct Press {
    sound: Sound,
    /// Frames until the press and its pause are over.
    frames_left: u32,
}

#[derive(Debug, Clone)]
enum Sound {
    Events(VecDeque<Rfc4733Packet>),
    Tone(ToneGenerator),
}

/// Queued key presses and the one being sent.
#[derive(Debug, Clone)]
pub struct DigitSender {
    frame: Duration,
    queue: VecDeque<char>,
    current: Option<Press>,
}

impl DigitSender {
    /// `frame` is the interval at which [`Self::next_frame`] is called (the packet time).
    pub fn new(frame: Duration) -> Self {
        DigitSender {
            frame,
            queue: VecDeque::new(),
            current: None,
        }
    }

    /// Queues `digits` to be sent in order. Nothing is queued if any of them is not a DTMF key
    /// or the queue would grow past [`MAX_QUEUED`].
    pub fn queue(&mut self, digits: &str) -> Result<(), DtmfError> {
        if let Some(digit) = digits.chars().find(|&d| digit_to_event(d).is_none()) {
            return Err(DtmfError::UnknownDigit { digit });
        }
        let count = digits.chars().count();
        if self.queue.len() + count > MAX_QUEUED {
            return Err(DtmfError::QueueFull {
                queued: self.queue.len(),
                limit: MAX_QUEUED,
            });
        }
        self.queue
            .extend(digits.chars().map(|d| d.to_ascii_uppercase()));
        Ok(())
    }

    /// Whether a press is sounding or waiting.
    pub fn is_busy(&self) -> bool {
        self.current.is_some() || !self.queue.is_empty()
    }

    /// The next frame of the key presses. `telephone_event` says whether the carrier takes RFC
    /// 4733 events; `next_timestamp` is the media clock of this frame (a press's events carry
    /// the timestamp of its first frame). For [`DigitFrame::Tone`] the frame is written into
    /// `tone`.
    pub fn next_frame(
        &mut self,
        telephone_event: bool,
        next_timestamp: u32,
        tone: &mut [i16],
    ) -> DigitFrame {
        if self.current.is_none() {
            self.current = self
                .queue
                .pop_front()
                .and_then(|digit| self.start(digit, telephone_event, next_timestamp));
        }
        let Some(press) = &mut self.current else {
            return DigitFrame::Audio;
        };
        press.frames_left = press.frames_left.saturating_sub(1);
        let frame = match &mut press.sound {
            Sound::Events(packets) => {
                packets
                    .pop_front()
                    .map_or(DigitFrame::Audio, |p| DigitFrame::Event {
                        event: p.event,
                        timestamp: p.rtp_timestamp,
                        marker: p.marker,
                    })
            }
            Sound::Tone(generator) => {
                generator.fill(tone);
                DigitFrame::Tone
            }
        };
        if press.frames_left == 0 {
            self.current = None;
        }
        frame
    }

    fn start(&self, digit: char, telephone_event: bool, timestamp: u32) -> Option<Press> {
        // Digits were checked when queued and the durations are constants within every limit,
        // so neither constructor fails; a failure would skip the digit rather than stall.
        let sound = if telephone_event {
            Sound::Events(
                Rfc4733Sender::new(SAMPLE_RATE)
                    .packets(digit, PRESS, timestamp, self.frame)
                    .ok()?
                    .into(),
            )
        } else {
            Sound::Tone(ToneGenerator::dtmf_burst(digit, TONE_LEVEL_DBM0, PRESS, PAUSE).ok()?)
        };
        let frames = (PRESS + PAUSE)
            .as_micros()
            .div_ceil(self.frame.as_micros().max(1));
        let mut frames_left = u32::try_from(frames).unwrap_or(u32::MAX);
        if let Sound::Events(packets) = &sound {
            // Every packet is sent even when the frames are long.
            frames_left = frames_left.max(packets.len() as u32);
        }
        Some(Press { sound, frames_left })
    }
}

#[cfg(test)]
mod tests;
