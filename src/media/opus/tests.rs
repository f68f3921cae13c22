use proptest::prelude::*;
use rand::{Rng, SeedableRng};

use super::*;

/// Speech-like test audio at 8 kHz: 200 ms syllables, each a different vowel (two formants over
/// the harmonics of a gliding 95–155 Hz voice, up to 3.4 kHz) under a rise-and-fall envelope
/// that never quite closes, plus breath noise. Stationary tones would not do: SILK's voice
/// activity detector learns them as background noise and stops sending FEC for them.
pub(crate) fn voice_like(samples: usize, seed: u64) -> Vec<i16> {
    use std::f64::consts::PI;
    const VOWELS: [(f64, f64); 5] = [
        (700.0, 1200.0),
        (300.0, 2300.0),
        (500.0, 1500.0),
        (400.0, 800.0),
        (600.0, 1800.0),
    ];
    const SYLLABLE: usize = 1600;
    const FLOOR: f64 = 0.15;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let rate = f64::from(SAMPLE_RATE);
    let mut phase = 0.0f64;
    (0..samples)
        .map(|n| {
            let t = n as f64 / rate;
            let syllable = n / SYLLABLE;
            let position = (n % SYLLABLE) as f64 / SYLLABLE as f64;
            let (f1, f2) = VOWELS[(syllable * 3 + seed as usize) % VOWELS.len()];
            let f0 = 120.0 + 25.0 * (2.0 * PI * 0.7 * t).sin() + 10.0 * (position - 0.5);
            phase += 2.0 * PI * f0 / rate;
            let voiced: f64 = (1..)
                .map(|k| (k, f0 * f64::from(k)))
                .take_while(|&(_, freq)| freq <= 3400.0)
                .map(|(k, freq)| {
                    let gain = 1.0 / (1.0 + ((freq - f1) / 150.0).powi(2))
                        + 0.6 / (1.0 + ((freq - f2) / 200.0).powi(2))
                        + 0.03;
                    gain * (phase * f64::from(k)).sin()
                })
                .sum();
            let envelope = FLOOR + (1.0 - FLOOR) * (PI * position).sin().powi(2);
            let noise: f64 = rng.gen_range(-1.0..1.0);
            (2500.0 * envelope * voiced + 300.0 * noise).clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

/// Best normalised correlation of `decoded` against `original` over delays up to 250 ms (codec
/// plus network plus jitter buffer), skipping the first 100 ms in which the codec settles.
/// Returns (correlation, delay in samples).
pub(crate) fn aligned_correlation(original: &[i16], decoded: &[i16]) -> (f64, usize) {
    let skip = 800;
    (0..=2000)
        .map(|lag| {
            let n = original.len().min(decoded.len().saturating_sub(lag));
            let a = &original[skip.min(n)..n];
            let b = &decoded[(skip + lag).min(n + lag)..n + lag];
            (correlation(a, b), lag)
        })
        .fold((f64::MIN, 0), |best, c| if c.0 > best.0 { c } else { best })
}

pub(crate) use crate::media::stretch::correlation;

fn encode_all(config: &OpusConfig, pcm: &[i16]) -> Vec<Vec<u8>> {
    let mut encoder = OpusEncoder::new(config).unwrap();
    pcm.chunks_exact(FRAME_SAMPLES)
        .map(|frame| {
            let mut packet = Vec::new();
            encoder.encode(frame, &mut packet).unwrap();
            packet
        })
        .collect()
}

#[test]
fn defaults_match_the_documented_agent_settings() {
    let config: OpusConfig = toml::from_str("").unwrap();
    assert_eq!(config, OpusConfig::default());
    assert_eq!(config.bitrate, 40_000);
    assert_eq!(config.complexity, 1);
    assert!(config.fec);
    assert_eq!(config.expected_loss_pct, 5);
    assert!(!config.dtx);
    assert!(config.validate().is_empty());
}

#[test]
fn config_reads_partial_tables_and_rejects_unknown_keys() {
    let config: OpusConfig = toml::from_str("bitrate = 32000\nfec = false").unwrap();
    assert_eq!(config.bitrate, 32_000);
    assert!(!config.fec);
    assert_eq!(config.complexity, 1);
    let err = toml::from_str::<OpusConfig>("bitrat = 32000").unwrap_err();
    assert!(err.to_string().contains("bitrat"), "{err}");
}

#[test]
fn validate_names_every_bad_key_with_its_value() {
    let config = OpusConfig {
        bitrate: 5_999,
        complexity: 11,
        expected_loss_pct: 101,
        ..OpusConfig::default()
    };
    let problems = config.validate();
    let keys: Vec<_> = problems.iter().map(|p| p.key).collect();
    assert_eq!(keys, ["bitrate", "complexity", "expected_loss_pct"]);
    assert!(problems[0].message.contains("5999"));
    assert!(problems[1].message.contains("11"));
    assert!(problems[2].message.contains("101"));
    for edge in [6_000, 64_000] {
        let config = OpusConfig {
            bitrate: edge,
            complexity: 10,
            expected_loss_pct: 100,
            ..OpusConfig::default()
        };
        assert!(config.validate().is_empty(), "{edge}");
        OpusEncoder::new(&config).unwrap();
    }
}

#[test]
fn encoder_refuses_settings_validate_rejects() {
    for config in [
        OpusConfig {
            bitrate: 100_000,
            ..OpusConfig::default()
        },
        OpusConfig {
            complexity: 11,
            ..OpusConfig::default()
        },
        OpusConfig {
            expected_loss_pct: 101,
            ..OpusConfig::default()
        },
    ] {
        let err = OpusEncoder::new(&config).unwrap_err();
        assert!(matches!(err, OpusError::Setting { .. }), "{err}");
    }
    let err = OpusEncoder::new(&OpusConfig {
        complexity: 11,
        ..OpusConfig::default()
    })
    .unwrap_err();
    // The libopus text travels with the error.
    assert_eq!(
        err.to_string(),
        "opus encoder rejected complexity = 11: invalid argument"
    );
}

#[test]
fn encoded_speech_decodes_to_a_close_copy() {
    let pcm = voice_like(8000 * 3, 1);
    let packets = encode_all(&OpusConfig::default(), &pcm);
    let mut decoder = OpusDecoder::new().unwrap();
    let mut decoded = Vec::new();
    for packet in &packets {
        assert_eq!(decoder.decode(packet, &mut decoded).unwrap(), FRAME_SAMPLES);
    }
    let (corr, delay) = aligned_correlation(&pcm, &decoded);
    assert!(corr > 0.9, "correlation {corr:.3} at delay {delay}");
    // The configured bitrate in 20 ms frames, give or take what the encoder saves on easy audio.
    let bytes: usize = packets.iter().map(Vec::len).sum();
    let average = bytes / packets.len();
    let nominal = OpusConfig::default().bitrate as usize / 400;
    assert!(
        (nominal * 2 / 3..=nominal * 6 / 5).contains(&average),
        "average packet {average} bytes, nominal {nominal}"
    );
}

#[test]
fn the_encoder_stays_narrowband() {
    let pcm = voice_like(1600, 2);
    for packet in encode_all(&OpusConfig::default(), &pcm) {
        assert_eq!(
            opus::packet::get_bandwidth(&packet).unwrap(),
            opus::Bandwidth::Narrowband
        );
    }
}

#[test]
fn encode_appends_and_rejects_lengths_libopus_cannot_take() {
    let mut encoder = OpusEncoder::new(&OpusConfig::default()).unwrap();
    let mut out = vec![0xAA, 0xBB];
    encoder.encode(&[0; FRAME_SAMPLES], &mut out).unwrap();
    assert_eq!(&out[..2], &[0xAA, 0xBB]);
    assert!(out.len() > 2);
    let before = out.clone();
    for samples in [0, 1, 159, 161, 960] {
        let err = encoder.encode(&vec![0; samples], &mut out).unwrap_err();
        assert_eq!(err, OpusError::FrameLength { samples });
    }
    assert_eq!(out, before);
    let mut longer = Vec::new();
    encoder.encode(&[0; 320], &mut longer).unwrap();
    assert_eq!(packet_samples(&longer), Some(320));
}

#[test]
fn concealment_continues_the_voice_then_fades() {
    let pcm = voice_like(1600, 3);
    let packets = encode_all(&OpusConfig::default(), &pcm);
    let mut decoder = OpusDecoder::new().unwrap();
    let mut out = Vec::new();
    for packet in &packets {
        decoder.decode(packet, &mut out).unwrap();
    }
    let rms =
        |s: &[i16]| (s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len() as f64).sqrt();
    let voice = rms(&out[out.len() - FRAME_SAMPLES..]);
    let mut first = Vec::new();
    decoder.conceal(FRAME_SAMPLES, &mut first).unwrap();
    assert_eq!(first.len(), FRAME_SAMPLES);
    assert!(rms(&first) > voice * 0.3, "{} vs {voice}", rms(&first));
    let mut later = Vec::new();
    for _ in 0..20 {
        later.clear();
        decoder.conceal(FRAME_SAMPLES, &mut later).unwrap();
    }
    assert!(rms(&later) < rms(&first) * 0.5, "no fade after 400 ms");
    for samples in [0, 10, 161, 980] {
        assert_eq!(
            decoder.conceal(samples, &mut later).unwrap_err(),
            OpusError::ConcealLength { samples }
        );
    }
}

#[test]
fn fec_flag_follows_the_encoder_setting() {
    let pcm = voice_like(8000 * 2, 4);
    let with = encode_all(&OpusConfig::default(), &pcm);
    let flagged = with.iter().filter(|p| packet_has_fec(p)).count();
    assert!(flagged > with.len() * 7 / 10, "{flagged}/{}", with.len());
    let without = encode_all(
        &OpusConfig {
            fec: false,
            ..OpusConfig::default()
        },
        &pcm,
    );
    assert_eq!(without.iter().filter(|p| packet_has_fec(p)).count(), 0);
    assert!(!packet_has_fec(&[]));
    // A CELT-only TOC (config 16+) never carries FEC, whatever its first byte says.
    assert!(!packet_has_fec(&[16 << 3, 0xff, 0xff]));
}

#[test]
fn fec_rebuilds_a_lost_frame_better_than_concealment() {
    let pcm = voice_like(8000 * 2, 5);
    let packets = encode_all(&OpusConfig::default(), &pcm);
    let mut reference_decoder = OpusDecoder::new().unwrap();
    let mut reference = Vec::new();
    for packet in &packets {
        reference_decoder.decode(packet, &mut reference).unwrap();
    }
    let (mut fec_better, mut trials) = (0, 0);
    // Only packets that carry FEC can rebuild their predecessor; the others are tested by
    // fec_flag_follows_the_encoder_setting.
    for lost in (10..packets.len() - 1)
        .step_by(7)
        .filter(|&n| packet_has_fec(&packets[n + 1]))
    {
        let mut via_fec = OpusDecoder::new().unwrap();
        let mut via_plc = OpusDecoder::new().unwrap();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for packet in &packets[..lost] {
            via_fec.decode(packet, &mut a).unwrap();
            via_plc.decode(packet, &mut b).unwrap();
        }
        let (mut fec_frame, mut plc_frame) = (Vec::new(), Vec::new());
        via_fec
            .recover_from_fec(&packets[lost + 1], FRAME_SAMPLES, &mut fec_frame)
            .unwrap();
        via_plc.conceal(FRAME_SAMPLES, &mut plc_frame).unwrap();
        let truth = &reference[lost * FRAME_SAMPLES..(lost + 1) * FRAME_SAMPLES];
        trials += 1;
        if correlation(truth, &fec_frame) > correlation(truth, &plc_frame) {
            fec_better += 1;
        }
        assert!(
            correlation(truth, &fec_frame) > 0.7,
            "fec copy of frame {lost} does not resemble it"
        );
    }
    assert!(trials >= 10, "only {trials} trials");
    assert!(fec_better * 10 >= trials * 8, "{fec_better}/{trials}");
}

#[test]
fn dtx_turns_silence_into_tiny_packets() {
    let mut encoder = OpusEncoder::new(&OpusConfig {
        dtx: true,
        ..OpusConfig::default()
    })
    .unwrap();
    let mut tiny = 0;
    for _ in 0..50 {
        let mut packet = Vec::new();
        encoder.encode(&[0; FRAME_SAMPLES], &mut packet).unwrap();
        tiny += usize::from(is_dtx_packet(&packet));
    }
    assert!(tiny > 30, "{tiny} of 50 silent frames were DTX");
}

#[test]
fn decode_rejects_empty_and_oversized_packets() {
    let mut decoder = OpusDecoder::new().unwrap();
    let mut out = vec![7];
    assert_eq!(decoder.decode(&[], &mut out), Err(OpusError::EmptyPacket));
    let huge = vec![0u8; MAX_PACKET_BYTES + 1];
    assert_eq!(
        decoder.decode(&huge, &mut out),
        Err(OpusError::PacketTooLong {
            len: MAX_PACKET_BYTES + 1
        })
    );
    // A code-3 packet announcing 0 frames is invalid; the libopus text is in the error.
    let err = decoder.decode(&[0x03, 0x00], &mut out).unwrap_err();
    assert!(err.to_string().contains("corrupted"), "{err}");
    assert_eq!(out, [7]);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
        let mut decoder = OpusDecoder::new().unwrap();
        let mut out = Vec::new();
        if let Ok(samples) = decoder.decode(&bytes, &mut out) {
            prop_assert_eq!(samples, out.len());
            prop_assert!(samples <= MAX_PACKET_SAMPLES);
        }
        let _ = packet_has_fec(&bytes);
        let _ = packet_samples(&bytes);
        let mut fec = Vec::new();
        if decoder.recover_from_fec(&bytes, FRAME_SAMPLES, &mut fec).is_ok() {
            prop_assert_eq!(fec.len(), FRAME_SAMPLES);
        }
    }
}
