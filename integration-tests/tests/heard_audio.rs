//! What a caller hears: a real softphone (baresip) calls the gateway and records the audio; the
//! welcome prompt must be in it, recognisably (correlation with the prompt file), not just noise.
use std::time::Duration;

use trunkgate_integration::audio::{self, best_match};
use trunkgate_integration::{config_for_tests, Baresip, Gateway};

#[test]
fn baresip_caller_hears_the_welcome_prompt() {
    let gw = Gateway::start(&config_for_tests(""));
    let run = Baresip::new("caller")
        .dial(format!("sip:100@{}", gw.sip_udp()))
        .duration(Duration::from_secs(5))
        .run();
    assert!(run.call_established(), "baresip log:\n{}", run.log);
    let heard = run.received_audio();
    let welcome = audio::prompt("welcome");
    let m = best_match(&heard.samples, &welcome.samples).expect("something was heard");
    assert!(
        m.score > 0.9,
        "welcome prompt correlation {:.3} (1.0 = identical)",
        m.score
    );
    keep_for_scoring(&heard, &welcome, m.offset);
    // And it is the welcome, not another prompt that happens to be speech.
    let menu = audio::prompt("goodbye");
    let other = best_match(&heard.samples, &menu.samples).map_or(0.0, |m| m.score);
    assert!(
        other < m.score,
        "goodbye {other:.3} must not match better than welcome {:.3}",
        m.score
    );
}

/// With TRUNKGATE_KEEP_AUDIO=DIR, writes the reference and the aligned part of the recording as
/// `DIR/reference.wav` and `DIR/heard.wav`, for offline scoring (e.g. PESQ).
fn keep_for_scoring(heard: &audio::Audio, reference: &audio::Audio, offset: isize) {
    let Ok(dir) = std::env::var("TRUNKGATE_KEEP_AUDIO") else {
        return;
    };
    let dir = std::path::Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();
    let start = offset.max(0) as usize;
    let end = (start + reference.samples.len()).min(heard.samples.len());
    let aligned = audio::Audio {
        rate: heard.rate,
        samples: heard.samples[start..end].to_vec(),
    };
    audio::write_wav_i16(&dir.join("heard.wav"), &aligned).unwrap();
    audio::write_wav_i16(&dir.join("reference.wav"), reference).unwrap();
    eprintln!("kept {} and reference.wav", dir.join("heard.wav").display());
}
