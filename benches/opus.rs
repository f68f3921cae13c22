//! Cost of the agent leg's Opus work per 20 ms frame: what one call adds to a core.
//!
//! `cargo bench --bench opus`. The input is synthetic speech-like audio at 8 kHz (a voice with
//! moving pitch and vowels), cycled so codec state evolves as in a call.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use trunkgate::media::opus::{OpusConfig, OpusDecoder, OpusEncoder, Protection, FRAME_SAMPLES};
use trunkgate::media::opus_rx::OpusReceiver;
use trunkgate::media::rtp::RtpSender;
use trunkgate::media::rtp_quic::{self, FlowId, OpusRtpSender, RTP_TICKS_PER_FRAME};

/// Ten seconds of 200 ms syllables over a gliding 100–140 Hz voice, with a little noise.
fn speech_like() -> Vec<i16> {
    use std::f64::consts::PI;
    const FORMANTS: [(f64, f64); 4] = [
        (700.0, 1200.0),
        (300.0, 2300.0),
        (500.0, 1500.0),
        (400.0, 800.0),
    ];
    let mut noise_state = 1u32;
    let mut phase = 0.0f64;
    (0..80_000)
        .map(|n| {
            let t = f64::from(n) / 8000.0;
            let (f1, f2) = FORMANTS[(n as usize / 1600) % FORMANTS.len()];
            let f0 = 120.0 + 20.0 * (2.0 * PI * 0.7 * t).sin();
            phase += 2.0 * PI * f0 / 8000.0;
            let voiced: f64 = (1..=(3400.0 / f0) as u32)
                .map(|k| {
                    let freq = f0 * f64::from(k);
                    let gain = 1.0 / (1.0 + ((freq - f1) / 150.0).powi(2))
                        + 0.6 / (1.0 + ((freq - f2) / 200.0).powi(2))
                        + 0.03;
                    gain * (phase * f64::from(k)).sin()
                })
                .sum();
            let envelope = 0.15 + 0.85 * (PI * f64::from(n % 1600) / 1600.0).sin().powi(2);
            noise_state = noise_state
                .wrapping_mul(1_664_525)
                .wrapping_add(1_013_904_223);
            let noise = f64::from(noise_state >> 16) / 32768.0 - 1.0;
            (2500.0 * envelope * voiced + 300.0 * noise) as i16
        })
        .collect()
}

fn encode_all(pcm: &[i16]) -> Vec<Vec<u8>> {
    let mut encoder = OpusEncoder::new(&OpusConfig::default()).expect("default config is valid");
    pcm.chunks_exact(FRAME_SAMPLES)
        .map(|frame| {
            let mut packet = Vec::new();
            encoder.encode(frame, &mut packet).expect("valid frame");
            packet
        })
        .collect()
}

fn codec(c: &mut Criterion) {
    let pcm = speech_like();
    let frames: Vec<&[i16]> = pcm.chunks_exact(FRAME_SAMPLES).collect();

    let mut group = c.benchmark_group("opus_encode_20ms");
    // FEC makes SILK encode every frame twice (the second time coarsely), so its cost shows too.
    // Complexities 0-3 with FEC give the CPU side of the complexity-vs-PESQ curve.
    let settings = [
        (0, true),
        (1, true),
        (2, true),
        (3, true),
        (5, true),
        (10, true),
        (0, false),
        (5, false),
    ];
    for (complexity, fec) in settings {
        let config = OpusConfig {
            complexity,
            fec,
            ..OpusConfig::default()
        };
        let mut encoder = OpusEncoder::new(&config).expect("valid config");
        let mut packet = Vec::with_capacity(4000);
        let mut n = 0;
        let name = format!(
            "complexity_{complexity}{}",
            if fec { "" } else { "_no_fec" }
        );
        group.bench_function(name, |b| {
            b.iter(|| {
                packet.clear();
                encoder
                    .encode(black_box(frames[n % frames.len()]), &mut packet)
                    .expect("valid frame");
                n += 1;
                black_box(packet.len())
            })
        });
    }
    group.finish();

    let packets = encode_all(&pcm);
    let mut decoder = OpusDecoder::new().expect("decoder");
    let mut out = Vec::with_capacity(960);
    let mut n = 0;
    c.bench_function("opus_decode_20ms", |b| {
        b.iter(|| {
            out.clear();
            decoder
                .decode(black_box(&packets[n % packets.len()]), &mut out)
                .expect("valid packet");
            n += 1;
            black_box(out.len())
        })
    });

    // Concealment right after real audio, as in a call with scattered loss (it gets cheaper once
    // it has faded to silence, which would flatter the number). Only the concealment is timed.
    let mut decoder = OpusDecoder::new().expect("decoder");
    let mut n = 0;
    c.bench_function("opus_plc_20ms", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                out.clear();
                decoder
                    .decode(&packets[n % packets.len()], &mut out)
                    .expect("valid packet");
                n += 1;
                out.clear();
                let started = Instant::now();
                decoder
                    .conceal(FRAME_SAMPLES, &mut out)
                    .expect("valid length");
                spent += started.elapsed();
                black_box(out.len());
            }
            spent
        })
    });
}

/// A sender as configured by default (in-band FEC at 40 kbit/s), or repeating the three frames
/// before each one (24 kbit/s, no FEC), as the receiver's feedback makes it.
fn sender(span: usize) -> (OpusEncoder, OpusRtpSender) {
    let mut encoder = OpusEncoder::new(&OpusConfig::default()).expect("default config is valid");
    let mut sender = OpusRtpSender::new(FlowId::new(1).expect("small"), RtpSender::new(9, 0, 0));
    if span > 0 {
        encoder
            .protect(Protection::Redundant, 0)
            .expect("valid settings");
        sender.set_redundancy(span);
    }
    (encoder, sender)
}

/// The whole send path per frame: encode, RTP, RoQ and, with copies, the RED blocks.
fn send_path(c: &mut Criterion) {
    let pcm = speech_like();
    let frames: Vec<&[i16]> = pcm.chunks_exact(FRAME_SAMPLES).collect();
    for (name, span) in [("opus_send_20ms", 0), ("opus_send_20ms_red3", 3)] {
        let (mut encoder, mut sender) = sender(span);
        let mut datagram = Vec::with_capacity(512);
        let mut n = 0;
        c.bench_function(name, |b| {
            b.iter(|| {
                datagram.clear();
                sender
                    .encode_datagram(
                        &mut encoder,
                        black_box(frames[n % frames.len()]),
                        &mut datagram,
                    )
                    .expect("valid frame");
                n += 1;
                black_box(datagram.len())
            })
        });
    }
}

/// One push and one pull of the receive path per frame, in virtual time, with and without loss
/// and copies.
fn receive_path(c: &mut Criterion) {
    let pcm = speech_like();
    let packets_with = |span: usize| -> Vec<Vec<u8>> {
        let (mut encoder, mut sender) = sender(span);
        pcm.chunks_exact(FRAME_SAMPLES)
            .map(|frame| {
                let mut datagram = Vec::new();
                sender
                    .encode_datagram(&mut encoder, frame, &mut datagram)
                    .expect("valid frame");
                rtp_quic::parse(&datagram).expect("just framed").1.to_vec()
            })
            .collect()
    };
    let plain = packets_with(0);
    let redundant = packets_with(3);

    for (name, lose_every, packets) in [
        ("opus_rx_push_pull_20ms", 0, &plain),
        ("opus_rx_push_pull_20ms_loss10", 10, &plain),
        ("opus_rx_push_pull_20ms_red3_loss10", 10, &redundant),
    ] {
        let mut receiver = OpusReceiver::new(Duration::from_millis(40), Duration::from_millis(200))
            .expect("valid bounds");
        let base = Instant::now();
        let mut n: u32 = 0;
        let mut packet = Vec::new();
        c.bench_function(name, |b| {
            b.iter(|| {
                // Renumber the cycled packets so the stream runs on without restarts.
                packet.clear();
                packet.extend_from_slice(&packets[n as usize % packets.len()]);
                packet[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                packet[4..8].copy_from_slice(&n.wrapping_mul(RTP_TICKS_PER_FRAME).to_be_bytes());
                let now = base + Duration::from_millis(20) * n;
                if lose_every == 0 || n % lose_every != 7 {
                    receiver.push(now, &packet).expect("valid packet");
                }
                n += 1;
                black_box(receiver.pull(now).len())
            })
        });
        let stats = receiver.stats();
        // Shows the lossy run really exercised FEC (skipped when a filter left this bench out).
        if stats.packets > 0 {
            eprintln!(
                "{name}: decoded {} concealed {} recovered_by_fec {} by copies {} lost {}",
                stats.decoded,
                stats.concealed,
                stats.recovered_by_fec,
                stats.recovered_by_redundancy,
                stats.lost
            );
        }
    }
}

criterion_group!(benches, codec, send_path, receive_path);
criterion_main!(benches);
