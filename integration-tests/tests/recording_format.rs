//! Call recordings as players see them: a two-channel Ogg Opus file the gateway's recorder
//! writes (the caller left, the agent right) is accepted by opus-tools' `opusinfo`, decodes with
//! `opusdec` to exactly the audio recorded, each voice on its own channel, and a file cut short
//! (a crash mid-page) still plays up to its last whole page.
use std::process::Command;

use trunkgate::media::stereo_recorder::StereoRecorder;
use trunkgate_integration::audio::{opusdec_stereo, tone_energy_ratio};

const FRAME: usize = 160;
const CALLER_HZ: f64 = 600.0;
const AGENT_HZ: f64 = 1000.0;

fn tone(hz: f64, frame: usize) -> Vec<i16> {
    (0..FRAME)
        .map(|i| {
            let t = (frame * FRAME + i) as f64 / 8000.0;
            (8000.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16
        })
        .collect()
}

/// Three seconds of the caller's tone on the left and the agent's on the right.
fn recording() -> Vec<u8> {
    let tags = vec!["TRUNKGATE_CALL=c-7".to_string()];
    let (mut recorder, mut bytes) = StereoRecorder::start(7, 32_000, FRAME, &tags).unwrap();
    for frame in 0..150 {
        if let Some(page) = recorder
            .frame(&tone(CALLER_HZ, frame), &tone(AGENT_HZ, frame))
            .unwrap()
        {
            bytes.extend(page);
        }
    }
    bytes.extend(recorder.finish().unwrap());
    assert_eq!(recorder.duration(), std::time::Duration::from_secs(3));
    bytes
}

#[test]
fn opus_tools_read_the_recording_with_each_voice_on_its_channel() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("call.opus");
    std::fs::write(&file, recording()).unwrap();
    let info = Command::new("opusinfo")
        .arg(&file)
        .output()
        .expect("opusinfo (opus-tools) runs");
    let report =
        String::from_utf8_lossy(&info.stdout).to_string() + &String::from_utf8_lossy(&info.stderr);
    println!("{report}");
    assert!(info.status.success(), "{report}");
    assert!(!report.contains("WARNING"), "{report}");
    assert!(report.contains("Channels: 2"), "{report}");
    assert!(report.contains("TRUNKGATE_CALL=c-7"), "{report}");
    let (left, right) = opusdec_stereo(&file);
    assert_eq!(left.len(), 24_000, "exactly the three seconds recorded");
    let (caller, agent) = (
        tone_energy_ratio(&left, 8000, CALLER_HZ),
        tone_energy_ratio(&right, 8000, AGENT_HZ),
    );
    let (caller_right, agent_left) = (
        tone_energy_ratio(&right, 8000, CALLER_HZ),
        tone_energy_ratio(&left, 8000, AGENT_HZ),
    );
    println!("left: caller {caller:.2} agent {agent_left:.2}; right: agent {agent:.2} caller {caller_right:.2}");
    assert!(caller > 0.8 && agent > 0.8, "each voice on its channel");
    assert!(
        caller_right < 0.1 && agent_left < 0.1,
        "and not on the other"
    );
}

#[test]
fn a_recording_cut_short_plays_up_to_its_last_whole_page() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cut.opus");
    let bytes = recording();
    // Cut in the middle of the last full second's page, as a crash while writing it would.
    let pages: Vec<usize> = (0..bytes.len() - 4)
        .filter(|i| &bytes[*i..i + 4] == b"OggS")
        .collect();
    assert_eq!(pages.len(), 6, "two headers, three seconds, the end");
    std::fs::write(&file, &bytes[..pages[4] + 40]).unwrap();
    let (left, _) = opusdec_stereo(&file);
    println!("{} samples of 24000 decoded", left.len());
    // The first two seconds, less the pre-skip the decoder drops.
    assert!(
        (15_900..16_000).contains(&left.len()),
        "two whole seconds: {}",
        left.len()
    );
    assert!(tone_energy_ratio(&left, 8000, CALLER_HZ) > 0.8);
}
