use super::*;

const TAU: f64 = std::f64::consts::TAU;

/// Writes `seconds` of a sine at `frequency_hz` (amplitude 0.5 of full scale) to a WAV.
fn write_sine(path: &Path, spec: hound::WavSpec, frequency_hz: f64, seconds: f64) {
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    let frames = (seconds * f64::from(spec.sample_rate)) as usize;
    for n in 0..frames {
        let value = 0.5 * (TAU * frequency_hz * n as f64 / f64::from(spec.sample_rate)).sin();
        for _ in 0..spec.channels {
            match (spec.sample_format, spec.bits_per_sample) {
                (hound::SampleFormat::Float, _) => writer.write_sample(value as f32).unwrap(),
                (_, 8) => writer.write_sample((value * 127.0) as i8).unwrap(),
                (_, 16) => writer.write_sample((value * 32767.0) as i16).unwrap(),
                (_, bits) => {
                    let full_scale = 2f64.powi(i32::from(bits) - 1) - 1.0;
                    writer.write_sample((value * full_scale) as i32).unwrap()
                }
            }
        }
    }
    writer.finalize().unwrap();
}

fn spec(sample_rate: u32, channels: u16, bits: u16, format: hound::SampleFormat) -> hound::WavSpec {
    hound::WavSpec {
        channels,
        sample_rate,
        bits_per_sample: bits,
        sample_format: format,
    }
}

fn mean_square(samples: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, count) = samples
        .into_iter()
        .fold((0.0, 0usize), |(sum, count), s| (sum + s * s, count + 1));
    sum / count as f64
}

/// Share of the signal's power at `frequency_hz` (1.0 for a pure sine there).
fn share_at(samples: &[i16], frequency_hz: f64) -> f64 {
    let omega = TAU * frequency_hz / f64::from(PROMPT_SAMPLE_RATE);
    let (mut re, mut im) = (0.0, 0.0);
    for (n, &s) in samples.iter().enumerate() {
        re += f64::from(s) * (omega * n as f64).cos();
        im -= f64::from(s) * (omega * n as f64).sin();
    }
    let power = (re * re + im * im) * 2.0 / samples.len() as f64;
    power / (mean_square(samples.iter().map(|&s| f64::from(s))) * samples.len() as f64)
}

/// Signal-to-error ratio against the ideal 8 kHz rendering of the sine, edges excluded.
fn snr_against_ideal(prompt: &Prompt, frequency_hz: f64) -> f64 {
    let samples = prompt.samples();
    let edge = 400;
    let body = &samples[edge..samples.len() - edge];
    let ideal: Vec<f64> = (edge..samples.len() - edge)
        .map(|n| 0.5 * 32768.0 * (TAU * frequency_hz * n as f64 / 8000.0).sin())
        .collect();
    let error = mean_square(body.iter().zip(&ideal).map(|(&s, &i)| f64::from(s) - i));
    10.0 * (mean_square(ideal.iter().copied()) / error).log10()
}

fn assert_one_second_of_1khz(prompt: &Prompt, what: &str) {
    assert!(
        prompt.len().abs_diff(8000) <= 160,
        "{what}: {} samples for 1 s",
        prompt.len()
    );
    assert!(prompt.duration().as_secs_f64() > 0.98);
    let share = share_at(prompt.samples(), 1000.0);
    assert!(share > 0.95, "{what}: only {share} of the power at 1 kHz");
    let rms = mean_square(prompt.samples().iter().map(|&s| f64::from(s))).sqrt();
    let expected = 0.5 * 32768.0 / 2f64.sqrt();
    assert!(
        (rms / expected - 1.0).abs() < 0.05,
        "{what}: rms {rms}, expected {expected}"
    );
}

#[test]
fn loads_16khz_stereo_as_8khz_mono() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sine16k.wav");
    write_sine(
        &path,
        spec(16000, 2, 16, hound::SampleFormat::Int),
        1000.0,
        1.0,
    );
    let prompt = Prompt::load(&path).unwrap();
    assert_one_second_of_1khz(&prompt, "16 kHz stereo");
}

#[test]
fn loads_48khz_stereo_float_as_8khz_mono() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sine48k.wav");
    write_sine(
        &path,
        spec(48000, 2, 32, hound::SampleFormat::Float),
        1000.0,
        1.0,
    );
    let prompt = Prompt::load(&path).unwrap();
    assert_one_second_of_1khz(&prompt, "48 kHz stereo float");
}

#[test]
fn fractional_ratios_resample_cleanly() {
    // 44.1 kHz and 11.025 kHz are the rates where an interpolator with misplaced taps
    // (dasp 0.11.0's) falls apart: ~21 dB and ~9 dB.
    let dir = tempfile::tempdir().unwrap();
    // 44 099 Hz has no common divisor with 8000: positions are rounded to the table.
    for (rate, bits) in [
        (44100u32, 24u16),
        (11025, 16),
        (22050, 32),
        (6000, 16),
        (44099, 16),
    ] {
        let path = dir.path().join(format!("sine{rate}.wav"));
        write_sine(
            &path,
            spec(rate, 1, bits, hound::SampleFormat::Int),
            1000.0,
            1.0,
        );
        let prompt = Prompt::load(&path).unwrap();
        assert_one_second_of_1khz(&prompt, &format!("{rate} Hz"));
        let snr = snr_against_ideal(&prompt, 1000.0);
        assert!(snr > 45.0, "{rate} Hz: SNR {snr:.1} dB");
    }
}

#[test]
fn eight_bit_and_eight_khz_files_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sine8k8bit.wav");
    write_sine(
        &path,
        spec(8000, 1, 8, hound::SampleFormat::Int),
        1000.0,
        1.0,
    );
    let prompt = Prompt::load(&path).unwrap();
    assert_eq!(prompt.len(), 8000, "no resampling at 8 kHz");
    assert_one_second_of_1khz(&prompt, "8 kHz 8-bit");
}

#[test]
fn sixteen_bit_8khz_mono_is_loaded_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exact.wav");
    let samples: Vec<i16> = (0..800)
        .map(|n| ((n * 97) % 65536 - 32768) as i16)
        .collect();
    let mut writer =
        hound::WavWriter::create(&path, spec(8000, 1, 16, hound::SampleFormat::Int)).unwrap();
    for &sample in &samples {
        writer.write_sample(sample).unwrap();
    }
    writer.finalize().unwrap();
    assert_eq!(Prompt::load(&path).unwrap().samples(), &samples[..]);
}

#[test]
fn content_above_4khz_does_not_alias_into_the_telephone_band() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sine6k.wav");
    write_sine(
        &path,
        spec(48000, 1, 16, hound::SampleFormat::Int),
        6000.0,
        1.0,
    );
    let prompt = Prompt::load(&path).unwrap();
    let input_power = 0.5f64.powi(2) / 2.0;
    let output_power = mean_square(prompt.samples().iter().map(|&s| f64::from(s) / 32768.0));
    let attenuation_db = 10.0 * (output_power / input_power).log10();
    // A 6 kHz tone would fold to 2 kHz: it must be gone, not moved.
    assert!(
        attenuation_db < -30.0,
        "6 kHz only {attenuation_db:.1} dB down"
    );
}

#[test]
fn the_telephone_band_passes_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sine3300.wav");
    write_sine(
        &path,
        spec(48000, 1, 16, hound::SampleFormat::Int),
        3300.0,
        1.0,
    );
    let prompt = Prompt::load(&path).unwrap();
    let output_power = mean_square(
        prompt.samples()[400..7600]
            .iter()
            .map(|&s| f64::from(s) / 32768.0),
    );
    let gain_db = 10.0 * (output_power / (0.5f64.powi(2) / 2.0)).log10();
    assert!(gain_db.abs() < 1.0, "3.3 kHz changed by {gain_db:.2} dB");
}

#[test]
fn a_missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("welcome.wav");
    let error = Prompt::load(&path).unwrap_err();
    assert!(matches!(error, PromptError::Missing { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("not found"), "{message}");
}

#[test]
fn a_file_that_is_not_wav_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.wav");
    std::fs::write(&path, "these are not samples, just some text in a file").unwrap();
    let error = Prompt::load(&path).unwrap_err();
    assert!(matches!(error, PromptError::NotWav { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("not a wav file"), "{message}");

    let tiny = dir.path().join("tiny.wav");
    std::fs::write(&tiny, "RIFF").unwrap();
    assert!(matches!(
        Prompt::load(&tiny),
        Err(PromptError::NotWav { .. })
    ));
}

#[test]
fn a_wav_without_samples_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silence.wav");
    hound::WavWriter::create(&path, spec(8000, 1, 16, hound::SampleFormat::Int))
        .unwrap()
        .finalize()
        .unwrap();
    let error = Prompt::load(&path).unwrap_err();
    assert!(matches!(error, PromptError::Empty { .. }), "{error:?}");
    assert!(error.to_string().contains("silence.wav"));
}

/// A µ-law WAV as `sox -e u-law` writes it: format tag 7, 8 bits.
fn mulaw_wav() -> Vec<u8> {
    let data = [0xffu8; 80];
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(4 + 8 + 18 + 8 + data.len() as u32).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&18u32.to_le_bytes());
    bytes.extend_from_slice(&7u16.to_le_bytes()); // WAVE_FORMAT_MULAW
    bytes.extend_from_slice(&1u16.to_le_bytes()); // channels
    bytes.extend_from_slice(&8000u32.to_le_bytes());
    bytes.extend_from_slice(&8000u32.to_le_bytes()); // bytes per second
    bytes.extend_from_slice(&1u16.to_le_bytes()); // block align
    bytes.extend_from_slice(&8u16.to_le_bytes()); // bits per sample
    bytes.extend_from_slice(&0u16.to_le_bytes()); // extension size
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&(data.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&data);
    bytes
}

#[test]
fn a_compressed_wav_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ulaw.wav");
    std::fs::write(&path, mulaw_wav()).unwrap();
    let error = Prompt::load(&path).unwrap_err();
    assert!(
        matches!(error, PromptError::Unsupported { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("ulaw.wav") && message.contains("sox"),
        "{message}"
    );
}

#[test]
fn a_truncated_wav_is_reported_as_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.wav");
    write_sine(
        &path,
        spec(8000, 1, 16, hound::SampleFormat::Int),
        1000.0,
        0.5,
    );
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() - 1001);
    std::fs::write(&path, bytes).unwrap();
    let error = Prompt::load(&path).unwrap_err();
    assert!(matches!(error, PromptError::Corrupt { .. }), "{error:?}");
    assert!(error.to_string().contains("cut.wav"));
}

fn numbered(start: i16, len: usize) -> Prompt {
    Prompt::from_samples((0..len).map(|n| start + n as i16).collect())
}

#[test]
fn player_plays_the_queue_gaplessly_then_silence() {
    let mut player = PromptPlayer::new(160);
    assert!(!player.is_playing());
    player.enqueue(numbered(1, 250));
    player.enqueue(Prompt::from_samples(Vec::new()));
    player.enqueue(numbered(1001, 100));
    assert!(player.is_playing());
    assert_eq!(player.remaining_frames(), 3);
    assert_eq!(player.remaining(), Duration::from_micros(43_750));

    let mut frame = [0i16; 160];
    assert!(player.next_frame(&mut frame));
    assert_eq!(frame[0], 1);
    assert_eq!(frame[159], 160);

    assert!(player.next_frame(&mut frame));
    assert_eq!(frame[89], 250, "end of the first prompt");
    assert_eq!(frame[90], 1001, "second prompt follows without a gap");
    assert_eq!(frame[159], 1070);

    assert!(player.next_frame(&mut frame));
    assert_eq!(frame[29], 1100);
    assert!(frame[30..].iter().all(|&s| s == 0), "padded with silence");
    assert!(!player.is_playing());

    frame.fill(7);
    assert!(!player.next_frame(&mut frame));
    assert!(frame.iter().all(|&s| s == 0));
}

#[test]
fn clearing_stops_playback_immediately() {
    let mut player = PromptPlayer::new(160);
    player.enqueue(numbered(1, 1000));
    player.enqueue(numbered(1, 1000));
    let mut frame = [0i16; 160];
    assert!(player.next_frame(&mut frame));
    player.clear();
    assert!(!player.is_playing());
    assert!(!player.next_frame(&mut frame));
    assert!(frame.iter().all(|&s| s == 0));

    player.enqueue(numbered(500, 10));
    assert!(player.next_frame(&mut frame));
    assert_eq!(
        frame[0], 500,
        "a new prompt after clear starts at its beginning"
    );
}

#[test]
fn prompts_share_their_samples() {
    let prompt = numbered(0, 8000);
    let copy = prompt.clone();
    assert_eq!(prompt.samples().as_ptr(), copy.samples().as_ptr());
    assert_eq!(prompt.duration(), Duration::from_secs(1));
}
