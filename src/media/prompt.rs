//! Voice prompts: WAV files loaded once into 8 kHz mono PCM, and a player that plays a queue of
//! them frame by frame.
//!
//! Loading accepts what recording tools produce (any sample rate; mono or more channels, mixed
//! down; 8/16/24/32-bit integer or 32-bit float) and does all conversion at load time, so playing
//! is a copy. Compressed WAVs (µ-law, A-law, ADPCM…) are refused with a hint to convert them.
//!
//! Resampling is the windowed-sinc filter of [`crate::media::resample`], not dasp's `Sinc`
//! interpolator (see there why).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::resample;

/// The rate of every prompt after loading.
pub const PROMPT_SAMPLE_RATE: u32 = 8000;

/// Why a prompt could not be loaded; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("prompt {}: file not found", .path.display())]
    Missing { path: PathBuf },
    #[error("prompt {}: cannot read: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("prompt {}: not a wav file ({reason})", .path.display())]
    NotWav { path: PathBuf, reason: String },
    #[error(
        "prompt {}: unsupported wav format: {detail} (convert to 16-bit pcm, \
         e.g. `sox in.wav -e signed-integer -b 16 out.wav`)",
        .path.display()
    )]
    Unsupported { path: PathBuf, detail: String },
    #[error("prompt {}: audio data is damaged: {reason}", .path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("prompt {}: contains no audio", .path.display())]
    Empty { path: PathBuf },
}

/// Prompts by name, converted once at startup.
pub type PromptLibrary = std::collections::HashMap<String, Prompt>;

/// A prompt ready to play: 8 kHz mono PCM, shared between calls without copying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    samples: Arc<[i16]>,
}

impl Prompt {
    /// Reads a WAV file and converts it to 8 kHz mono.
    pub fn load(path: &Path) -> Result<Prompt, PromptError> {
        let file = File::open(path).map_err(|source| match source.kind() {
            ErrorKind::NotFound => PromptError::Missing {
                path: path.to_path_buf(),
            },
            _ => PromptError::Io {
                path: path.to_path_buf(),
                source,
            },
        })?;
        let mut reader = hound::WavReader::new(BufReader::new(file))
            .map_err(|error| header_error(path, error))?;
        let spec = reader.spec();
        // Above 384 kHz no recording tool writes; a header claiming more is damage, and would
        // size the resampling filter accordingly.
        if spec.channels == 0 || spec.sample_rate == 0 || spec.sample_rate > 384_000 {
            return Err(PromptError::Unsupported {
                path: path.to_path_buf(),
                detail: format!("{} channels at {} hz", spec.channels, spec.sample_rate),
            });
        }
        let interleaved = read_normalised(&mut reader, spec)
            .map_err(|error| data_error(path, error))?
            .ok_or_else(|| PromptError::Unsupported {
                path: path.to_path_buf(),
                detail: format!(
                    "{}-bit {:?} samples",
                    spec.bits_per_sample, spec.sample_format
                ),
            })?;
        let mono = mix_down(&interleaved, usize::from(spec.channels));
        if mono.is_empty() {
            return Err(PromptError::Empty {
                path: path.to_path_buf(),
            });
        }
        let resampled = resample::to_rate(&mono, spec.sample_rate, PROMPT_SAMPLE_RATE);
        Ok(Prompt::from_samples(
            resampled
                .iter()
                .map(|&sample| (sample * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
                .collect(),
        ))
    }

    /// A prompt from PCM that is already 8 kHz mono (synthesised speech, tests).
    pub fn from_samples(samples: Vec<i16>) -> Prompt {
        Prompt {
            samples: samples.into(),
        }
    }

    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn duration(&self) -> Duration {
        samples_to_duration(self.samples.len())
    }
}

fn samples_to_duration(samples: usize) -> Duration {
    Duration::from_secs_f64(samples as f64 / f64::from(PROMPT_SAMPLE_RATE))
}

fn header_error(path: &Path, error: hound::Error) -> PromptError {
    let path = path.to_path_buf();
    match error {
        hound::Error::FormatError(reason) => PromptError::NotWav {
            path,
            reason: reason.to_string(),
        },
        hound::Error::IoError(source) if is_short_read(&source) => PromptError::NotWav {
            path,
            reason: "file ends inside the wav header".to_string(),
        },
        hound::Error::IoError(source) => PromptError::Io { path, source },
        hound::Error::Unsupported => PromptError::Unsupported {
            path,
            detail: "compressed or unknown encoding (µ-law, a-law, adpcm…)".to_string(),
        },
        other => PromptError::Unsupported {
            path,
            detail: other.to_string(),
        },
    }
}

fn data_error(path: &Path, error: hound::Error) -> PromptError {
    let path = path.to_path_buf();
    match error {
        hound::Error::IoError(source) if is_short_read(&source) => PromptError::Corrupt {
            path,
            reason: "file is shorter than its header says".to_string(),
        },
        hound::Error::IoError(source) => PromptError::Io { path, source },
        other => PromptError::Corrupt {
            path,
            reason: other.to_string(),
        },
    }
}

/// hound reports running out of bytes as `ErrorKind::Other` ("Failed to read enough bytes."), the
/// standard library as `UnexpectedEof`; on a file that opened fine, both mean "too short".
fn is_short_read(error: &std::io::Error) -> bool {
    matches!(error.kind(), ErrorKind::UnexpectedEof | ErrorKind::Other)
}

use dasp::sample::I24;
use dasp::Sample as _;

/// All samples as floats in [-1, 1), interleaved; `None` for a sample format we do not read.
fn read_normalised<R: std::io::Read>(
    reader: &mut hound::WavReader<R>,
    spec: hound::WavSpec,
) -> Result<Option<Vec<f32>>, hound::Error> {
    // hound hands every integer width over as i32; dasp's sample conversions put each width on
    // the same [-1, 1) scale, exactly.
    fn int_samples<R: std::io::Read>(
        reader: &mut hound::WavReader<R>,
        to_float: impl Fn(i32) -> f32,
    ) -> Result<Option<Vec<f32>>, hound::Error> {
        reader
            .samples::<i32>()
            .map(|sample| sample.map(&to_float))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
    match (spec.sample_format, spec.bits_per_sample) {
        // The casts keep the value: hound yields each width's own range.
        (hound::SampleFormat::Int, 8) => int_samples(reader, |v| (v as i8).to_sample::<f32>()),
        (hound::SampleFormat::Int, 16) => int_samples(reader, |v| (v as i16).to_sample::<f32>()),
        (hound::SampleFormat::Int, 24) => {
            int_samples(reader, |v| I24::new_unchecked(v).to_sample::<f32>())
        }
        (hound::SampleFormat::Int, 32) => int_samples(reader, |v| v.to_sample::<f32>()),
        (hound::SampleFormat::Float, 32) => reader
            .samples::<f32>()
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        _ => Ok(None),
    }
}

/// Averages the channels of each frame: keeps the level of a mono recording saved as stereo,
/// the common case for prompts.
fn mix_down(interleaved: &[f32], channels: usize) -> Vec<f32> {
    if channels == 1 {
        return interleaved.to_vec();
    }
    interleaved
        .chunks_exact(channels)
        .map(|frame| frame.iter().sum::<f32>() / channels as f32)
        .collect()
}

/// Plays queued prompts back to back, one frame at a time.
#[derive(Debug, Clone)]
pub struct PromptPlayer {
    frame_samples: usize,
    queue: VecDeque<Prompt>,
    /// Samples of the queue's front prompt already played.
    position: usize,
}

impl PromptPlayer {
    /// `frame_samples` is the media path's frame size (160 for 20 ms at 8 kHz); it is the unit
    /// of [`remaining_frames`](Self::remaining_frames).
    pub fn new(frame_samples: usize) -> Self {
        PromptPlayer {
            frame_samples,
            queue: VecDeque::new(),
            position: 0,
        }
    }

    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    /// Plays `prompt` after everything already queued. Prompts join without a gap, so a
    /// sentence assembled from pieces ("you are caller" "three") sounds like one.
    pub fn enqueue(&mut self, prompt: Prompt) {
        if !prompt.is_empty() {
            self.queue.push_back(prompt);
        }
    }

    /// Stops at once and forgets the queue (a caller pressed a key during a prompt).
    pub fn clear(&mut self) {
        self.queue.clear();
        self.position = 0;
    }

    /// Fills `out` with the next samples; silence after the queue runs out. Returns false (and
    /// pure silence) when nothing was left to play.
    pub fn next_frame(&mut self, out: &mut [i16]) -> bool {
        let mut written = 0;
        while written < out.len() {
            let Some(prompt) = self.queue.front() else {
                break;
            };
            let available = &prompt.samples()[self.position..];
            let count = available.len().min(out.len() - written);
            out[written..written + count].copy_from_slice(&available[..count]);
            written += count;
            self.position += count;
            if self.position == prompt.len() {
                self.queue.pop_front();
                self.position = 0;
            }
        }
        out[written..].fill(0);
        written > 0
    }

    pub fn is_playing(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Playing time left in the queue.
    pub fn remaining(&self) -> Duration {
        samples_to_duration(self.remaining_samples())
    }

    /// Frames left, counting a final partial frame as one.
    pub fn remaining_frames(&self) -> usize {
        self.remaining_samples().div_ceil(self.frame_samples.max(1))
    }

    fn remaining_samples(&self) -> usize {
        self.queue.iter().map(Prompt::len).sum::<usize>() - self.position
    }
}

#[cfg(test)]
mod tests;
