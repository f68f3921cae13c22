//! The received audio as a WAV file (8 kHz, mono, 16-bit), written while the calls run.
//!
//! A WAV header holds the data length, which is only known at the end. The header is rewritten
//! every second, so a file read mid-run, or left behind by a process killed with SIGKILL, is a
//! valid WAV of everything up to the last second; [`WavRecorder::finish`] (on every orderly
//! exit, Ctrl-C and SIGTERM included) makes it exact.
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use crate::media::opus::SAMPLE_RATE;

/// Samples between header rewrites: one second.
const SAMPLES_PER_HEADER_UPDATE: usize = SAMPLE_RATE as usize;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("recording {}: {message}", .path.display())]
    Wav { path: PathBuf, message: String },
}

pub struct WavRecorder {
    path: PathBuf,
    writer: hound::WavWriter<BufWriter<File>>,
    since_header_update: usize,
}

impl std::fmt::Debug for WavRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavRecorder")
            .field("path", &self.path)
            .field("samples", &self.writer.len())
            .finish_non_exhaustive()
    }
}

impl WavRecorder {
    /// Creates (or truncates) `path` and writes a header for an empty recording, so the file is
    /// a valid WAV even if no call ever comes.
    pub fn create(path: &Path) -> Result<Self, RecordError> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(path, spec).map_err(|e| wav_error(path, e))?;
        writer.flush().map_err(|e| wav_error(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            writer,
            since_header_update: 0,
        })
    }

    pub fn write(&mut self, samples: &[i16]) -> Result<(), RecordError> {
        for &sample in samples {
            self.writer
                .write_sample(sample)
                .map_err(|e| wav_error(&self.path, e))?;
        }
        self.since_header_update += samples.len();
        if self.since_header_update >= SAMPLES_PER_HEADER_UPDATE {
            self.since_header_update = 0;
            self.writer.flush().map_err(|e| wav_error(&self.path, e))?;
        }
        Ok(())
    }

    /// Samples written so far.
    pub fn samples(&self) -> u32 {
        self.writer.len()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the final header; returns the number of samples recorded.
    pub fn finish(self) -> Result<u32, RecordError> {
        let samples = self.writer.len();
        let path = self.path;
        self.writer.finalize().map_err(|e| wav_error(&path, e))?;
        Ok(samples)
    }
}

fn wav_error(path: &Path, error: hound::Error) -> RecordError {
    RecordError::Wav {
        path: path.to_path_buf(),
        message: error.to_string(),
    }
}
