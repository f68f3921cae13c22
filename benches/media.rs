//! What each call leg costs per 20 ms frame on the media path: G.711 both ways, the jitter
//! buffer, concealment when a frame is missing, and in-band DTMF detection on what the carrier
//! sent, time-stretching a frame when the jitter buffer moves its delay, SRTP on a carrier
//! leg that negotiated it, recording both sides of a call (encoding, then sealing with age), and
//! mixing a supervisor into a call. Multiply by legs × 50 frames/s for load (stretching happens
//! on a few frames a second at most).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use trunkgate::media::dtmf::InbandDetector;
use trunkgate::media::g711::G711Law;
use trunkgate::media::jitter::{JitterBuffer, JitterConfig, Playout};
use trunkgate::media::plc::G711Concealer;
use trunkgate::media::rtp::{self, RtpHeader};
use trunkgate::media::srtp::SrtpSession;
use trunkgate::media::stereo_recorder::StereoRecorder;
use trunkgate::media::stretch::{accelerate, expand};
use trunkgate::sip::sdp::{SrtpKey, SrtpKeys, SrtpSuite};

const SAMPLES_PER_FRAME: usize = 160;
const FRAME: Duration = Duration::from_millis(20);

/// A vowel-like signal (120 Hz with harmonics) so the codec sees all segments and PLC finds a
/// pitch, as with speech.
fn voice(start: usize, len: usize) -> Vec<i16> {
    (start..start + len)
        .map(|n| {
            let t = n as f64 / 8000.0;
            let value: f64 = (1..=6)
                .map(|h| {
                    let phase = 2.0 * std::f64::consts::PI * 120.0 * f64::from(h) * t;
                    4000.0 / f64::from(h) * (phase + f64::from(h)).sin()
                })
                .sum();
            value.round() as i16
        })
        .collect()
}

fn g711(c: &mut Criterion) {
    let pcm = voice(0, SAMPLES_PER_FRAME);
    for law in [G711Law::Ulaw, G711Law::Alaw] {
        let mut bytes = Vec::with_capacity(SAMPLES_PER_FRAME);
        c.bench_function(&format!("g711 {law:?} encode 20 ms frame"), |b| {
            b.iter(|| {
                bytes.clear();
                law.encode(black_box(&pcm), &mut bytes);
                black_box(&bytes);
            })
        });
        let mut decoded = Vec::with_capacity(SAMPLES_PER_FRAME);
        c.bench_function(&format!("g711 {law:?} decode 20 ms frame"), |b| {
            b.iter(|| {
                decoded.clear();
                law.decode(black_box(&bytes), &mut decoded);
                black_box(&decoded);
            })
        });
    }
}

fn jitter_path(c: &mut Criterion) {
    let law = G711Law::Ulaw;
    let mut payload = Vec::with_capacity(SAMPLES_PER_FRAME);
    law.encode(&voice(0, SAMPLES_PER_FRAME), &mut payload);
    let mut jb = JitterBuffer::new(JitterConfig::new(8000, FRAME));
    let mut plc = G711Concealer::new(SAMPLES_PER_FRAME);
    let mut pcm = Vec::with_capacity(SAMPLES_PER_FRAME);
    let base = Instant::now();
    let mut frame_index: u32 = 0;
    c.bench_function("jitter push+pop + g711 decode per 20 ms frame", |b| {
        b.iter(|| {
            let arrival = base + FRAME * frame_index;
            let seq = frame_index as u16;
            let timestamp = frame_index.wrapping_mul(SAMPLES_PER_FRAME as u32);
            jb.push(arrival, seq, timestamp, black_box(&payload));
            pcm.clear();
            match jb.pop(arrival + Duration::from_millis(5)) {
                Playout::Frame(bytes) => {
                    law.decode(&bytes, &mut pcm);
                    plc.good_frame(&mut pcm);
                }
                Playout::Conceal => {
                    pcm.resize(SAMPLES_PER_FRAME, 0);
                    plc.conceal(&mut pcm);
                }
                Playout::Idle => pcm.resize(SAMPLES_PER_FRAME, 0),
            }
            black_box(&pcm);
            frame_index = frame_index.wrapping_add(1);
        })
    });
}

fn concealment(c: &mut Criterion) {
    let mut primed = G711Concealer::new(SAMPLES_PER_FRAME);
    for k in 0..5 {
        let mut frame = voice(k * SAMPLES_PER_FRAME, SAMPLES_PER_FRAME);
        primed.good_frame(&mut frame);
    }
    let mut out = vec![0i16; SAMPLES_PER_FRAME];
    // The first lost frame pays for the pitch search; later ones only replay.
    c.bench_function("plc conceal first lost 20 ms frame", |b| {
        b.iter_batched(
            || primed.clone(),
            |mut plc| {
                plc.conceal(&mut out);
                black_box(&out);
                plc
            },
            BatchSize::SmallInput,
        )
    });
    let mut in_loss = primed.clone();
    in_loss.conceal(&mut out);
    c.bench_function("plc conceal second lost 20 ms frame", |b| {
        b.iter_batched(
            || in_loss.clone(),
            |mut plc| {
                plc.conceal(&mut out);
                black_box(&out);
                plc
            },
            BatchSize::SmallInput,
        )
    });
    let next = voice(6 * SAMPLES_PER_FRAME, SAMPLES_PER_FRAME);
    c.bench_function("plc good 20 ms frame after a loss (cross-fade)", |b| {
        b.iter_batched(
            || (in_loss.clone(), next.clone()),
            |(mut plc, mut frame)| {
                plc.good_frame(&mut frame);
                black_box(&frame);
                (plc, frame)
            },
            BatchSize::SmallInput,
        )
    });
}

/// Every carrier frame goes through the in-band detector (a carrier may send tones instead of
/// RFC 4733 events): speech, and the silence between words (half of a conversation).
fn inband_dtmf(c: &mut Criterion) {
    let speech = voice(0, SAMPLES_PER_FRAME * 50);
    let quiet: Vec<i16> = (0..SAMPLES_PER_FRAME * 50)
        .map(|n| ((n * 7919) % 61) as i16 - 30)
        .collect();
    for (name, signal) in [("speech", speech), ("line noise", quiet)] {
        let mut detector = InbandDetector::new(8000);
        let mut frames = signal.chunks(SAMPLES_PER_FRAME).cycle();
        c.bench_function(
            &format!("inband dtmf detection per 20 ms frame ({name})"),
            |b| b.iter(|| black_box(detector.process(frames.next().expect("cycles")))),
        );
    }
}

fn stretching(c: &mut Criterion) {
    let frame = voice(0, SAMPLES_PER_FRAME);
    let noise: Vec<i16> = (0..SAMPLES_PER_FRAME as u32)
        .map(|n| (n.wrapping_mul(2_654_435_761) >> 20) as i16)
        .collect();
    for (name, input) in [("voiced", &frame), ("noise, declined", &noise)] {
        c.bench_function(&format!("accelerate a 20 ms frame ({name})"), |b| {
            b.iter_batched(
                || input.clone(),
                |mut pcm| black_box(accelerate(&mut pcm)),
                BatchSize::SmallInput,
            )
        });
        c.bench_function(&format!("expand a 20 ms frame ({name})"), |b| {
            b.iter_batched(
                || {
                    let mut pcm = Vec::with_capacity(2 * SAMPLES_PER_FRAME);
                    pcm.extend_from_slice(input);
                    pcm
                },
                |mut pcm| black_box(expand(&mut pcm)),
                BatchSize::SmallInput,
            )
        });
    }
}

/// One 20 ms G.711 packet (172 bytes) protected on send and checked and decrypted on receive,
/// per suite: what SRTP adds to each packet of a carrier leg.
fn srtp(c: &mut Criterion) {
    for suite in SrtpSuite::ALL {
        let ours = SrtpKey::from_random(suite, &[3; 30]);
        let theirs = SrtpKey::from_random(suite, &[4; 30]);
        let mut sender = SrtpSession::new(&SrtpKeys {
            send: ours.clone(),
            receive: theirs.clone(),
        })
        .expect("valid keys");
        let mut receiver = SrtpSession::new(&SrtpKeys {
            send: theirs,
            receive: ours,
        })
        .expect("valid keys");
        let payload = [0x55u8; SAMPLES_PER_FRAME];
        let mut sequence = 0u16;
        let mut packet = Vec::with_capacity(200);
        c.bench_function(
            &format!("srtp {suite} protect + unprotect a 20 ms packet"),
            |b| {
                b.iter(|| {
                    sequence = sequence.wrapping_add(1);
                    let header = RtpHeader::new(0, sequence, u32::from(sequence) * 160, 7, false);
                    packet.clear();
                    rtp::write(&header, &payload, &mut packet);
                    let protected = sender.protect_rtp(black_box(&packet)).expect("protects");
                    black_box(receiver.unprotect_rtp(&protected).expect("authentic"))
                })
            },
        );
    }
}

/// A recorded call: both sides' 20 ms frames into stereo Opus at 32 kbit/s and Ogg pages.
fn recording(c: &mut Criterion) {
    let (mut recorder, _) =
        StereoRecorder::start(1, 32_000, SAMPLES_PER_FRAME, &[]).expect("a valid bitrate");
    let caller = voice(0, SAMPLES_PER_FRAME);
    let agent = voice(4000, SAMPLES_PER_FRAME);
    c.bench_function("recording: encode a 20 ms stereo frame to ogg opus", |b| {
        b.iter(|| black_box(recorder.frame(black_box(&caller), black_box(&agent))))
    });
}

/// Sealing a recording as it is written: a 20 ms frame's worth of Ogg Opus at 32 kbit/s
/// (80 bytes) through the age stream, which seals each 64 KiB as it fills.
fn recording_sealed(c: &mut Criterion) {
    let identity = trunkgate::recording::age::Identity::generate(&mut rand::rngs::OsRng);
    let mut writer = trunkgate::recording::age::AgeWriter::new(
        std::io::sink(),
        &identity.recipient(),
        &mut rand::rngs::OsRng,
    )
    .expect("a header to nowhere");
    let frame = [0x5au8; 80];
    c.bench_function("recording: seal a 20 ms frame's ogg opus with age", |b| {
        b.iter(|| std::io::Write::write_all(&mut writer, black_box(&frame)))
    });
}

/// A supervisor in a call: three parties' 20 ms frames in, each party's mix out.
fn mixer(c: &mut Criterion) {
    use trunkgate::media::mixer::Mixer;
    let mut mixer = Mixer::new(SAMPLES_PER_FRAME);
    let (caller, agent, supervisor) = (mixer.add(), mixer.add(), mixer.add());
    for (listener, speakers) in [
        (caller, [agent, supervisor]),
        (agent, [caller, supervisor]),
        (supervisor, [caller, agent]),
    ] {
        for speaker in speakers {
            mixer.set_hears(listener, speaker, true);
        }
    }
    let voices = [voice(0, 160), voice(3000, 160), voice(6000, 160)];
    c.bench_function("mixer: a 20 ms frame of a three-party call (barge)", |b| {
        b.iter(|| {
            for (party, frame) in [caller, agent, supervisor].into_iter().zip(&voices) {
                mixer.put(party, frame);
            }
            for party in [caller, agent, supervisor] {
                black_box(mixer.mix_for(party));
            }
            mixer.end_period();
        })
    });
}

criterion_group!(
    benches,
    g711,
    jitter_path,
    concealment,
    inband_dtmf,
    stretching,
    srtp,
    recording,
    recording_sealed,
    mixer
);
criterion_main!(benches);
