//! The system's sound device as a call's audio (`--sound`): the microphone is what the agent
//! says, the speaker plays what the caller says.
//!
//! The device side needs the `sound` cargo feature (cpal, and on Linux the system's libasound).
//! This module exists in every build with the same API, so the shell and the command line need
//! no feature switches: without the feature, [`SoundCall::open`], [`check`] and
//! [`list_devices`] return [`SoundError::NotBuilt`], which says how to get a build that has it.
//!
//! The device is opened when a call's media starts and closed when it ends, so the headset is
//! free between calls and every call starts with empty buffers. The pieces:
//! - `link` (with the feature): the wait-free rings between the sound card's threads and the
//!   agent's task, kept at a small fixed latency (see there);
//! - `device` (with the feature): cpal: finding devices, choosing formats, the callbacks.
use std::fmt;

#[cfg(feature = "sound")]
mod device;
#[cfg(feature = "sound")]
pub mod link;

/// Whether this build can use a sound device.
pub const BUILT_WITH_SOUND: bool = cfg!(feature = "sound");

/// Which devices `--sound` uses; `None` is the system's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SoundDevices {
    pub input: Option<String>,
    pub output: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Input,
    Output,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Input => "input",
            Self::Output => "output",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SoundError {
    #[error(
        "this trunkgate-agent was built without the `sound` feature, so it has no microphone \
         or speaker: rebuild it with `cargo build --features sound --bin trunkgate-agent` \
         (needs libasound2-dev)"
    )]
    NotBuilt,
    #[error("no {direction} device named {name:?} (`trunkgate-agent --list-devices` shows them)")]
    NotFound { direction: Direction, name: String },
    #[error("the system has no default {direction} device")]
    NoDefault { direction: Direction },
    #[error("cannot list the sound devices: {reason}")]
    List { reason: String },
    #[error("{direction} device {device:?} offers no format this client can use: {reason}")]
    NoFormat {
        direction: Direction,
        device: String,
        reason: String,
    },
    #[error("{direction} device {device:?} at {format}: {reason}")]
    Open {
        direction: Direction,
        device: String,
        format: String,
        reason: String,
    },
}

/// One device, as `--list-devices` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// What `--input-device`/`--output-device` take (for ALSA, the PCM name).
    pub id: String,
    pub name: String,
    pub input: bool,
    pub output: bool,
}

/// How one direction of the device runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    pub device: String,
    pub rate: u32,
    pub channels: u16,
    /// cpal's name for the sample type (`i16`, `f32`, …).
    pub format: String,
}

impl fmt::Display for StreamInfo {
    /// `8000Hz/1ch/i16`: the format alone (the device is printed as its own field).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}Hz/{}ch/{}", self.rate, self.channels, self.format)
    }
}

/// Over- and underruns of one call's sound, both directions, for the `sound_closed` event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SoundCounters {
    /// Times the agent found less microphone audio than a frame (it sent silence for the rest).
    pub microphone_underruns: u64,
    /// Microphone audio skipped to keep the delay bounded, in ms.
    pub microphone_dropped_ms: u64,
    /// Times the speaker ran out of received audio (it played silence until primed again).
    pub speaker_underruns: u64,
    /// Received audio not played to keep the delay bounded, in ms.
    pub speaker_dropped_ms: u64,
}

/// The sound device during one call. Dropping it closes the device.
pub struct SoundCall {
    /// Boxed: the streams and rings are a few hundred bytes, moved through the shell's wake-ups.
    #[cfg(feature = "sound")]
    opened: Box<device::Opened>,
    #[cfg(not(feature = "sound"))]
    never: std::convert::Infallible,
}

impl fmt::Debug for SoundCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoundCall")
            .field("input", &self.input())
            .field("output", &self.output())
            .finish()
    }
}

#[cfg(feature = "sound")]
impl SoundCall {
    /// Opens and starts both directions.
    pub fn open(devices: &SoundDevices) -> Result<Self, SoundError> {
        device::open(devices).map(|opened| Self {
            opened: Box::new(opened),
        })
    }

    pub fn input(&self) -> &StreamInfo {
        &self.opened.input
    }

    pub fn output(&self) -> &StreamInfo {
        &self.opened.output
    }

    /// The next 20 ms of microphone audio (at 8 kHz), into `frame`.
    pub fn read_microphone(&mut self, frame: &mut [i16]) {
        self.opened.microphone.read(frame);
    }

    /// 20 ms of received audio (at 8 kHz) for the speaker.
    pub fn play(&mut self, frame: &[i16]) {
        self.opened.speaker.play(frame);
    }

    /// An error the device reported since the last call (a lost device, an xrun).
    pub fn take_error(&mut self) -> Option<String> {
        self.opened.errors.try_recv().ok()
    }

    pub fn counters(&self) -> SoundCounters {
        let ms = |samples: u64| samples / 8;
        let microphone = self.opened.microphone.counters();
        let speaker = self.opened.speaker.counters();
        SoundCounters {
            microphone_underruns: microphone.underruns,
            microphone_dropped_ms: ms(microphone.dropped_samples),
            speaker_underruns: speaker.underruns,
            speaker_dropped_ms: ms(speaker.dropped_samples),
        }
    }
}

#[cfg(not(feature = "sound"))]
impl SoundCall {
    pub fn open(_devices: &SoundDevices) -> Result<Self, SoundError> {
        Err(SoundError::NotBuilt)
    }

    pub fn input(&self) -> &StreamInfo {
        match self.never {}
    }

    pub fn output(&self) -> &StreamInfo {
        match self.never {}
    }

    pub fn read_microphone(&mut self, _frame: &mut [i16]) {
        match self.never {}
    }

    pub fn play(&mut self, _frame: &[i16]) {
        match self.never {}
    }

    pub fn take_error(&mut self) -> Option<String> {
        match self.never {}
    }

    pub fn counters(&self) -> SoundCounters {
        match self.never {}
    }
}

/// Checks, before connecting, that the named devices exist (a typo fails at once, not at the
/// first call).
pub fn check(devices: &SoundDevices) -> Result<(), SoundError> {
    #[cfg(feature = "sound")]
    return device::check(devices);
    #[cfg(not(feature = "sound"))]
    {
        let _ = devices;
        Err(SoundError::NotBuilt)
    }
}

/// Every device the system lists.
pub fn list_devices() -> Result<Vec<DeviceInfo>, SoundError> {
    #[cfg(feature = "sound")]
    return device::list();
    #[cfg(not(feature = "sound"))]
    Err(SoundError::NotBuilt)
}

#[cfg(all(test, feature = "sound"))]
mod tests;
