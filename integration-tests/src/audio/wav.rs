//! WAV in and out, through hound.

use std::path::Path;

use super::Audio;

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("wav {path}: {source}")]
    Wav {
        path: String,
        #[source]
        source: hound::Error,
    },
    #[error("wav {path}: unsupported format {bits}-bit {format:?}")]
    Unsupported {
        path: String,
        bits: u16,
        format: hound::SampleFormat,
    },
}

/// Reads any PCM (8–32 bit) or 32-bit float WAV and mixes it down to mono.
pub fn read_wav(path: &Path) -> Result<Audio, AudioError> {
    let wav_error = |source| AudioError::Wav {
        path: path.display().to_string(),
        source,
    };
    let reader = hound::WavReader::open(path).map_err(wav_error)?;
    let spec = reader.spec();
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => reader
            .into_samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(wav_error)?,
        (hound::SampleFormat::Int, bits @ 8..=32) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f64;
            reader
                .into_samples::<i32>()
                .map(|sample| sample.map(|value| (f64::from(value) * scale) as f32))
                .collect::<Result<_, _>>()
                .map_err(wav_error)?
        }
        (format, bits) => {
            return Err(AudioError::Unsupported {
                path: path.display().to_string(),
                bits,
                format,
            })
        }
    };
    let channels = usize::from(spec.channels.max(1));
    let samples = interleaved
        .chunks(channels)
        .map(|frame| frame.iter().sum::<f32>() / frame.len() as f32)
        .collect();
    Ok(Audio {
        rate: spec.sample_rate,
        samples,
    })
}

/// Writes mono 16-bit PCM, clipping at full scale.
pub fn write_wav_i16(path: &Path, audio: &Audio) -> Result<(), AudioError> {
    let wav_error = |source| AudioError::Wav {
        path: path.display().to_string(),
        source,
    };
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: audio.rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).map_err(wav_error)?;
    for &sample in &audio.samples {
        // The same scale as reading (1.0 = 32768), so a read-write round trip is lossless.
        let value = (f64::from(sample) * 32768.0)
            .round()
            .clamp(-32768.0, 32767.0) as i16;
        writer.write_sample(value).map_err(wav_error)?;
    }
    writer.finalize().map_err(wav_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::test_signals::sine;

    #[test]
    fn sixteen_bit_round_trip_is_within_one_step() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tone.wav");
        let audio = Audio {
            rate: 8000,
            samples: sine(800, 8000, 1000.0, 0.9),
        };
        write_wav_i16(&path, &audio).unwrap();
        let back = read_wav(&path).unwrap();
        assert_eq!(back.rate, 8000);
        assert_eq!(back.samples.len(), 800);
        let worst = audio
            .samples
            .iter()
            .zip(&back.samples)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= 0.5 / 32768.0 + 1e-7, "worst error {worst}");
    }

    #[test]
    fn stereo_is_mixed_to_mono() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stereo.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 16000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(&path, spec).unwrap();
        for _ in 0..10 {
            writer.write_sample(16384i16).unwrap();
            writer.write_sample(0i16).unwrap();
        }
        writer.finalize().unwrap();
        let audio = read_wav(&path).unwrap();
        assert_eq!(audio.rate, 16000);
        assert_eq!(audio.samples, vec![0.25; 10]);
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = read_wav(Path::new("/nonexistent/x.wav")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x.wav"), "{err}");
    }
}
