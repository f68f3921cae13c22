//! The best PESQ-NB each direction's codec chain can give, with no network in between: the
//! harness's two prompts through µ-law and Opus in the order a call takes them, encoded as
//! each end encodes (in-band FEC at the configured bitrate, and the redundant mode's 24 kbit/s). `cargo run -p trunkgate-integration --example codec_ceiling` (needs the PESQ
//! venv from scripts/setup-test-deps.sh). docs/quality.md compares the clean row with it.
use trunkgate::client::media::COMPLEXITY as AGENT_COMPLEXITY;
use trunkgate::media::g711::G711Law;
use trunkgate::media::opus::{OpusConfig, OpusDecoder, OpusEncoder, Protection, FRAME_SAMPLES};
use trunkgate_integration::audio::{pesq_nb, prompt, Audio, TELEPHONY_RATE};
use trunkgate_integration::quality::{AGENT_SAYS, CALLER_SAYS};

fn ulaw(pcm: &[i16]) -> Vec<i16> {
    let (mut bytes, mut out) = (Vec::new(), Vec::new());
    G711Law::Ulaw.encode(pcm, &mut bytes);
    G711Law::Ulaw.decode(&bytes, &mut out);
    out
}

fn opus(pcm: &[i16], protection: Protection, complexity: u8) -> Result<Vec<i16>, String> {
    let config = OpusConfig {
        complexity,
        ..OpusConfig::default()
    };
    let mut encoder = OpusEncoder::new(&config).map_err(|e| e.to_string())?;
    encoder.protect(protection, 0).map_err(|e| e.to_string())?;
    let mut decoder = OpusDecoder::new().map_err(|e| e.to_string())?;
    let (mut out, mut packet) = (Vec::new(), Vec::new());
    for chunk in pcm.chunks(FRAME_SAMPLES) {
        let mut frame = chunk.to_vec();
        frame.resize(FRAME_SAMPLES, 0);
        packet.clear();
        encoder
            .encode(&frame, &mut packet)
            .map_err(|e| e.to_string())?;
        decoder
            .decode(&packet, &mut out)
            .map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn main() -> Result<(), String> {
    // Who says which prompt in the harness, the chain their audio takes and who encodes it:
    // the agent client or the gateway (its default settings).
    for (direction, name, opus_first, complexity) in [
        ("agent → caller", AGENT_SAYS, true, AGENT_COMPLEXITY),
        (
            "caller → agent",
            CALLER_SAYS,
            false,
            OpusConfig::default().complexity,
        ),
    ] {
        let said = prompt(name);
        let pcm: Vec<i16> = said
            .samples
            .iter()
            .map(|s| (s * 32767.0).round() as i16)
            .collect();
        // Half a second of silence after it, as the harness scores.
        let mut reference = said.clone();
        reference.samples.resize(said.samples.len() + 4000, 0.0);
        for protection in [Protection::InBand, Protection::Redundant] {
            let chain = if opus_first {
                ulaw(&opus(&pcm, protection, complexity)?)
            } else {
                opus(&ulaw(&pcm), protection, complexity)?
            };
            let mut heard = Audio {
                rate: TELEPHONY_RATE,
                samples: chain.iter().map(|&s| f32::from(s) / 32768.0).collect(),
            };
            heard.samples.resize(reference.samples.len(), 0.0);
            println!(
                "{direction} ({name}), Opus {protection:?}, complexity {complexity}: {:.2}",
                pesq_nb(&reference, &heard)?
            );
        }
        let mut heard = reference.clone();
        heard.samples = ulaw(&pcm).iter().map(|&s| f32::from(s) / 32768.0).collect();
        heard.samples.resize(reference.samples.len(), 0.0);
        println!(
            "{direction} ({name}), µ-law alone: {:.2}",
            pesq_nb(&reference, &heard)?
        );
    }
    Ok(())
}
