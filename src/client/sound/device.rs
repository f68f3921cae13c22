//! The sound card through cpal: finding the devices, choosing a format, and the two callbacks
//! that move samples between the card and the rings of [`super::link`].
//!
//! The format asked for first is the call's own, 8 kHz mono 16-bit with 20 ms periods, which
//! ALSA's `default` and `plug` devices convert to whatever the hardware does, so on most systems
//! the callbacks only copy. A device that offers only other rates, channel counts or sample
//! types gets them converted in the callback: channels averaged (microphone) or duplicated
//! (speaker), the rate through [`StreamResampler`], samples through cpal's conversions.
//!
//! The callbacks run on cpal's threads. They allocate nothing and take no locks: the rings are
//! wait-free, the resamplers' buffers exist before the stream starts, and errors are passed on
//! through a bounded channel whose `try_send` never blocks.
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{
    BufferSize, Device, FromSample, Sample, SampleFormat, SizedSample, StreamConfig,
    SupportedBufferSize, SupportedStreamConfigRange,
};

use super::link::{
    microphone_link, speaker_link, MicrophoneFeed, MicrophoneTap, SpeakerDrain, SpeakerFeed,
};
use super::{DeviceInfo, Direction, SoundDevices, SoundError, StreamInfo};
use crate::media::opus::SAMPLE_RATE;
use crate::media::resample::StreamResampler;

/// Rates to try, in order, when a device cannot do 8 kHz: common ones, low first (less work).
const FALLBACK_RATES: [u32; 6] = [16000, 48000, 44100, 32000, 24000, 22050];
/// Stream errors waiting for the agent's task; more are dropped (they repeat).
const ERROR_BACKLOG: usize = 8;
/// A 20 ms period.
const PERIODS_PER_SECOND: u32 = 50;

/// Both directions of the sound device, running, with the agent's ends of their rings.
pub struct Opened {
    pub input: StreamInfo,
    pub output: StreamInfo,
    pub microphone: MicrophoneTap,
    pub speaker: SpeakerFeed,
    pub errors: Receiver<String>,
    /// Dropping a stream stops it and closes the device.
    _streams: [cpal::Stream; 2],
}

pub fn open(devices: &SoundDevices) -> Result<Opened, SoundError> {
    let host = cpal::default_host();
    let output_device = find(&host, devices.output.as_deref(), Direction::Output)?;
    let input_device = find(&host, devices.input.as_deref(), Direction::Input)?;
    let (error_tx, errors) = sync_channel(ERROR_BACKLOG);
    let (output_stream, speaker, output) = open_output(&output_device, error_tx.clone())?;
    let (input_stream, microphone, input) = open_input(&input_device, error_tx)?;
    Ok(Opened {
        input,
        output,
        microphone,
        speaker,
        errors,
        _streams: [input_stream, output_stream],
    })
}

/// Checks that the named devices exist, without opening them.
pub fn check(devices: &SoundDevices) -> Result<(), SoundError> {
    let host = cpal::default_host();
    find(&host, devices.output.as_deref(), Direction::Output)?;
    find(&host, devices.input.as_deref(), Direction::Input)?;
    Ok(())
}

pub fn list() -> Result<Vec<DeviceInfo>, SoundError> {
    let host = cpal::default_host();
    let devices = host.devices().map_err(|e| SoundError::List {
        reason: e.to_string(),
    })?;
    Ok(devices
        .map(|device| DeviceInfo {
            id: device_id(&device),
            name: device
                .description()
                .map(|d| d.name().to_string())
                .unwrap_or_default(),
            input: device.supports_input(),
            output: device.supports_output(),
        })
        .collect())
}

/// The device's own name for itself: for ALSA the PCM name (`default`, `plughw:CARD=…`).
fn device_id(device: &Device) -> String {
    device
        .id()
        .map(|id| id.id().to_string())
        .unwrap_or_else(|_| device.to_string())
}

/// The named device (by id or by description), or the system's default. `default` always means
/// the default device, whether or not the system lists it.
fn find(host: &cpal::Host, name: Option<&str>, direction: Direction) -> Result<Device, SoundError> {
    let default = || {
        match direction {
            Direction::Input => host.default_input_device(),
            Direction::Output => host.default_output_device(),
        }
        .ok_or(SoundError::NoDefault { direction })
    };
    let Some(name) = name else {
        return default();
    };
    let listed = host
        .devices()
        .map_err(|e| SoundError::List {
            reason: e.to_string(),
        })?
        .find(|device| {
            device_id(device) == name || device.description().is_ok_and(|d| d.name() == name)
        });
    match listed {
        Some(device) => Ok(device),
        None if name == "default" => default(),
        None => Err(SoundError::NotFound {
            direction,
            name: name.to_string(),
        }),
    }
}

/// A format the device offers and the callbacks can convert.
#[derive(Debug, Clone, Copy)]
pub(super) struct Choice {
    pub(super) config: StreamConfig,
    pub(super) format: SampleFormat,
}

/// Sample types the callbacks convert, best first: the call's own, then what cards commonly use.
const FORMATS: [SampleFormat; 7] = [
    SampleFormat::I16,
    SampleFormat::F32,
    SampleFormat::I32,
    SampleFormat::U16,
    SampleFormat::U8,
    SampleFormat::I8,
    SampleFormat::F64,
];

/// The device's best format for a call: 8 kHz if offered, then a usable sample type, then the
/// fewest channels. The period is 20 ms when the device allows it.
pub(super) fn choose(ranges: &[SupportedStreamConfigRange]) -> Option<Choice> {
    let rank = |range: &SupportedStreamConfigRange| {
        let format = FORMATS.iter().position(|f| *f == range.sample_format())?;
        let rate = std::iter::once(SAMPLE_RATE)
            .chain(FALLBACK_RATES)
            .position(|rate| range.try_with_sample_rate(rate).is_some())
            .unwrap_or(FALLBACK_RATES.len() + 1);
        Some((rate, format, range.channels()))
    };
    let best = ranges
        .iter()
        .filter(|range| range.channels() > 0)
        .filter_map(|range| Some((rank(range)?, range)))
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, range)| range)?;
    let rate = std::iter::once(SAMPLE_RATE)
        .chain(FALLBACK_RATES)
        .find(|&rate| best.try_with_sample_rate(rate).is_some())
        .unwrap_or(best.max_sample_rate());
    let period = rate / PERIODS_PER_SECOND;
    let buffer_size = match best.buffer_size() {
        SupportedBufferSize::Range { min, max } if (*min..=*max).contains(&period) => {
            BufferSize::Fixed(period)
        }
        _ => BufferSize::Default,
    };
    Some(Choice {
        config: StreamConfig {
            channels: best.channels(),
            sample_rate: rate,
            buffer_size,
        },
        format: best.sample_format(),
    })
}

fn choose_for(device: &Device, direction: Direction) -> Result<Choice, SoundError> {
    let ranges: Result<Vec<_>, _> = match direction {
        Direction::Input => device.supported_input_configs().map(Iterator::collect),
        Direction::Output => device.supported_output_configs().map(Iterator::collect),
    };
    let no_format = |reason: String| SoundError::NoFormat {
        direction,
        device: device_id(device),
        reason,
    };
    let ranges = ranges.map_err(|e| no_format(e.to_string()))?;
    choose(&ranges).ok_or_else(|| {
        let offered: Vec<String> = ranges
            .iter()
            .map(|r| {
                format!(
                    "{} {}-{} Hz x{}",
                    r.sample_format(),
                    r.min_sample_rate(),
                    r.max_sample_rate(),
                    r.channels()
                )
            })
            .collect();
        no_format(format!("it offers {}", offered.join(", ")))
    })
}

fn info(device: &Device, choice: &Choice) -> StreamInfo {
    StreamInfo {
        device: device_id(device),
        rate: choice.config.sample_rate,
        channels: choice.config.channels,
        format: choice.format.to_string(),
    }
}

/// Builds a stream with the chosen period, and with the device's own if that is refused (some
/// devices list period sizes they then do not accept). `build` makes a fresh ring for each
/// attempt, because a stream that fails to build takes its callback (and the ring's end in it)
/// down with it; it returns the stream and the agent's end of that ring.
fn build_with_fallback<End>(
    device: &Device,
    direction: Direction,
    choice: Choice,
    mut build: impl FnMut(StreamConfig) -> Result<(cpal::Stream, End), cpal::Error>,
) -> Result<(cpal::Stream, End), SoundError> {
    let first = build(choice.config);
    let built = match first {
        Err(_) if choice.config.buffer_size != BufferSize::Default => build(StreamConfig {
            buffer_size: BufferSize::Default,
            ..choice.config
        }),
        other => other,
    };
    let open_error = |reason: String| SoundError::Open {
        direction,
        device: device_id(device),
        format: info(device, &choice).to_string(),
        reason,
    };
    let (stream, end) = built.map_err(|e| open_error(e.to_string()))?;
    stream.play().map_err(|e| open_error(e.to_string()))?;
    Ok((stream, end))
}

fn open_output(
    device: &Device,
    errors: SyncSender<String>,
) -> Result<(cpal::Stream, SpeakerFeed, StreamInfo), SoundError> {
    let choice = choose_for(device, Direction::Output)?;
    let (stream, speaker) = build_with_fallback(device, Direction::Output, choice, |config| {
        let (speaker, drain) = speaker_link();
        let playback = Playback::new(drain, config);
        let errors = errors.clone();
        let stream = match choice.format {
            SampleFormat::I16 => output_stream::<i16>(device, config, playback, errors),
            SampleFormat::F32 => output_stream::<f32>(device, config, playback, errors),
            SampleFormat::I32 => output_stream::<i32>(device, config, playback, errors),
            SampleFormat::U16 => output_stream::<u16>(device, config, playback, errors),
            SampleFormat::U8 => output_stream::<u8>(device, config, playback, errors),
            SampleFormat::I8 => output_stream::<i8>(device, config, playback, errors),
            _ => output_stream::<f64>(device, config, playback, errors),
        }?;
        Ok((stream, speaker))
    })?;
    Ok((stream, speaker, info(device, &choice)))
}

fn open_input(
    device: &Device,
    errors: SyncSender<String>,
) -> Result<(cpal::Stream, MicrophoneTap, StreamInfo), SoundError> {
    let choice = choose_for(device, Direction::Input)?;
    let (stream, microphone) = build_with_fallback(device, Direction::Input, choice, |config| {
        let (feed, microphone) = microphone_link();
        let capture = Capture::new(feed, config);
        let errors = errors.clone();
        let stream = match choice.format {
            SampleFormat::I16 => input_stream::<i16>(device, config, capture, errors),
            SampleFormat::F32 => input_stream::<f32>(device, config, capture, errors),
            SampleFormat::I32 => input_stream::<i32>(device, config, capture, errors),
            SampleFormat::U16 => input_stream::<u16>(device, config, capture, errors),
            SampleFormat::U8 => input_stream::<u8>(device, config, capture, errors),
            SampleFormat::I8 => input_stream::<i8>(device, config, capture, errors),
            _ => input_stream::<f64>(device, config, capture, errors),
        }?;
        Ok((stream, microphone))
    })?;
    Ok((stream, microphone, info(device, &choice)))
}

fn report(errors: SyncSender<String>) -> impl FnMut(cpal::Error) + Send + 'static {
    move |error| {
        let _ = errors.try_send(error.to_string());
    }
}

fn output_stream<T>(
    device: &Device,
    config: StreamConfig,
    mut playback: Playback,
    errors: SyncSender<String>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + FromSample<f32>,
{
    device.build_output_stream(
        config,
        move |data: &mut [T], _| playback.fill(data),
        report(errors),
        None,
    )
}

fn input_stream<T>(
    device: &Device,
    config: StreamConfig,
    mut capture: Capture,
    errors: SyncSender<String>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    device.build_input_stream(
        config,
        move |data: &[T], _| capture.take(data),
        report(errors),
        None,
    )
}

/// The output callback's state: the speaker ring, and the conversion to the device's format.
pub(super) struct Playback {
    drain: SpeakerDrain,
    channels: usize,
    rate: u32,
    /// `None` when the device runs at 8 kHz.
    resampler: Option<StreamResampler>,
}

impl Playback {
    pub(super) fn new(drain: SpeakerDrain, config: StreamConfig) -> Self {
        Self {
            drain,
            channels: usize::from(config.channels.max(1)),
            rate: config.sample_rate.max(1),
            resampler: (config.sample_rate != SAMPLE_RATE)
                .then(|| StreamResampler::new(SAMPLE_RATE, config.sample_rate)),
        }
    }

    /// Fills one device buffer (interleaved frames) from the ring, the same sample on every
    /// channel.
    pub(super) fn fill<T: Sample + FromSample<f32>>(&mut self, data: &mut [T]) {
        let frames = data.len() / self.channels;
        let step = (frames as u64 * u64::from(SAMPLE_RATE)).div_ceil(u64::from(self.rate));
        self.drain.begin(step as usize);
        for frame in data.chunks_exact_mut(self.channels) {
            let drain = &mut self.drain;
            let value = match &mut self.resampler {
                None => to_f32(drain.next_sample()),
                Some(resampler) => resampler.pull(|| to_f32(drain.next_sample())),
            };
            frame.fill(T::from_sample(value));
        }
    }
}

/// The input callback's state: the conversion from the device's format, and the microphone
/// ring.
pub(super) struct Capture {
    feed: MicrophoneFeed,
    channels: usize,
    rate: u32,
    resampler: Option<StreamResampler>,
}

impl Capture {
    pub(super) fn new(feed: MicrophoneFeed, config: StreamConfig) -> Self {
        Self {
            feed,
            channels: usize::from(config.channels.max(1)),
            rate: config.sample_rate.max(1),
            resampler: (config.sample_rate != SAMPLE_RATE)
                .then(|| StreamResampler::new(config.sample_rate, SAMPLE_RATE)),
        }
    }

    /// Takes one device buffer (interleaved frames), averaging the channels.
    pub(super) fn take<T: Sample>(&mut self, data: &[T])
    where
        f32: FromSample<T>,
    {
        let frames = data.len() / self.channels;
        let step = (frames as u64 * u64::from(SAMPLE_RATE)).div_ceil(u64::from(self.rate));
        self.feed.begin(step as usize);
        let scale = 1.0 / self.channels as f32;
        for frame in data.chunks_exact(self.channels) {
            let mono = frame.iter().map(|s| s.to_sample::<f32>()).sum::<f32>() * scale;
            let feed = &mut self.feed;
            match &mut self.resampler {
                None => feed.push(to_i16(mono)),
                Some(resampler) => resampler.push(mono, |y| feed.push(to_i16(y))),
            }
        }
    }
}

fn to_f32(sample: i16) -> f32 {
    f32::from(sample) / 32768.0
}

fn to_i16(sample: f32) -> i16 {
    // The clamp keeps the cast in range (a NaN becomes 0).
    (sample * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}
