//! The Opus settings' price and worth: for each complexity and bitrate, what one 20 ms frame
//! costs the gateway's encoder and what the caller's speech scores after G.711 → Opus → G.711,
//! on a clean path and with 5 % of packets lost (recovered with FEC where the next packet
//! came, concealed otherwise, as the gateway's receiver does).
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use trunkgate::media::g711::G711Law;
use trunkgate::media::opus::{packet_has_fec, OpusConfig, OpusDecoder, OpusEncoder, FRAME_SAMPLES};

use crate::audio::{pesq_nb, Audio, TELEPHONY_RATE};

pub const COMPLEXITIES: [u8; 7] = [0, 1, 2, 3, 5, 7, 10];
pub const BITRATES: [u32; 3] = [24_000, 32_000, 40_000];
const LOSS_PCT: f64 = 5.0;
const LOSS_SEEDS: [u64; 3] = [1, 2, 3];
/// Encodes of the speech per setting for the timing (the first pass warms the caches).
const TIMING_PASSES: usize = 5;

/// One row per complexity and bitrate.
pub fn curve(speech: &[i16]) -> Result<Vec<Value>, String> {
    // The carrier leg first: what reaches the encoder is G.711-decoded audio.
    let mut law = Vec::new();
    G711Law::Ulaw.encode(speech, &mut law);
    let mut carrier = Vec::new();
    G711Law::Ulaw.decode(&law, &mut carrier);
    let frames: Vec<&[i16]> = carrier.chunks_exact(FRAME_SAMPLES).collect();
    let reference = to_audio(&carrier[..frames.len() * FRAME_SAMPLES]);
    let mut rows = Vec::new();
    for &bitrate in &BITRATES {
        for &complexity in &COMPLEXITIES {
            let config = OpusConfig {
                bitrate,
                complexity,
                ..OpusConfig::default()
            };
            let (packets, encode_us) = encode_all(&config, &frames)?;
            let clean = pesq_nb(&reference, &to_audio(&decode(&packets, |_| false)?))?;
            let mut lossy = Vec::new();
            for seed in LOSS_SEEDS {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let lost: Vec<bool> = (0..packets.len())
                    .map(|_| rng.gen_bool(LOSS_PCT / 100.0))
                    .collect();
                let heard = decode(&packets, |i| lost[i])?;
                lossy.push(pesq_nb(&reference, &to_audio(&heard))?);
            }
            let with_fec = packets.iter().filter(|p| packet_has_fec(p)).count();
            rows.push(json!({
                "bitrate": bitrate,
                "complexity": complexity,
                "packets_with_fec_pct": 100.0 * with_fec as f64 / packets.len() as f64,
                "encode_us_per_frame": encode_us,
                "encode_ms_per_call_s": encode_us * 50.0 / 1000.0,
                "pesq_clean": clean,
                "pesq_5pct_loss": lossy.iter().sum::<f64>() / lossy.len() as f64,
            }));
        }
    }
    Ok(rows)
}

fn encode_all(config: &OpusConfig, frames: &[&[i16]]) -> Result<(Vec<Vec<u8>>, f64), String> {
    let mut packets = Vec::new();
    let mut best = f64::INFINITY;
    for _ in 0..TIMING_PASSES {
        let mut encoder = OpusEncoder::new(config).map_err(|e| e.to_string())?;
        packets.clear();
        let start = Instant::now();
        for frame in frames {
            let mut packet = Vec::with_capacity(256);
            encoder
                .encode(frame, &mut packet)
                .map_err(|e| e.to_string())?;
            packets.push(packet);
        }
        // The quickest pass: the machine's noise only ever adds time.
        best = best.min(start.elapsed().as_secs_f64() * 1e6 / frames.len() as f64);
    }
    Ok((packets, best))
}

/// What the far end plays, as G.711 heard by the caller: each lost packet rebuilt from the
/// next one's FEC copy when that one came, concealed when it did not.
fn decode(packets: &[Vec<u8>], lost: impl Fn(usize) -> bool) -> Result<Vec<i16>, String> {
    let mut decoder = OpusDecoder::new().map_err(|e| e.to_string())?;
    let mut pcm = Vec::new();
    for (i, packet) in packets.iter().enumerate() {
        let result = if !lost(i) {
            decoder.decode(packet, &mut pcm).map(|_| ())
        } else if let Some(next) = packets.get(i + 1).filter(|_| !lost(i + 1)) {
            decoder.recover_from_fec(next, FRAME_SAMPLES, &mut pcm)
        } else {
            decoder.conceal(FRAME_SAMPLES, &mut pcm)
        };
        result.map_err(|e| e.to_string())?;
    }
    let mut law = Vec::new();
    G711Law::Ulaw.encode(&pcm, &mut law);
    let mut heard = Vec::new();
    G711Law::Ulaw.decode(&law, &mut heard);
    Ok(heard)
}

fn to_audio(samples: &[i16]) -> Audio {
    Audio {
        rate: TELEPHONY_RATE,
        samples: samples.iter().map(|&s| f32::from(s) / 32768.0).collect(),
    }
}
