//! Callers in a queue with no agent logged in (the branch is cut off from the cloud): they wait,
//! hear music on hold and announcements, and the queue's overflow applies at its max wait.
use std::time::Duration;

use trunkgate_integration::audio::{self, best_match};
use trunkgate_integration::{Baresip, Gateway, Sipp, TestConfig};

fn offline_queue() -> Gateway {
    Gateway::start(
        &TestConfig {
            route: "queue:support".into(),
            queue_max_wait_ms: 8_000,
            ..TestConfig::default()
        }
        .to_toml(),
    )
}

#[test]
fn twenty_callers_with_no_agents_wait_hear_announcements_and_overflow_at_max_wait() {
    let gw = offline_queue();
    let run = Sipp::scenario("uac_queue0.xml")
        .target(gw.sip_udp())
        .calls(20)
        .rate(10)
        .without_message_trace()
        .timeout(Duration::from_secs(60))
        .run();
    // Each call ends with the gateway's BYE after the overflow prompt: a success for SIPp.
    run.assert_success();
    let count = |needle: &str| gw.count_lines(needle);
    assert_eq!(count("caller queued"), 20);
    assert_eq!(
        count("queue overflow"),
        20,
        "every caller overflows at max wait"
    );
    assert!(
        count("queue announcement") >= 20,
        "each heard the 5 s announcement"
    );
    assert!(
        gw.log_lines()
            .iter()
            .any(|l| l.contains("queue announcement") && l.contains("queue-position")),
        "announcements give the position"
    );
}

#[test]
fn a_waiting_caller_hears_the_music_on_hold() {
    let gw = offline_queue();
    let run = Baresip::new("caller")
        .dial(format!("sip:100@{}", gw.sip_udp()))
        .duration(Duration::from_secs(4))
        .run();
    assert!(run.call_established(), "{}", run.log);
    let heard = run.received_audio();
    let moh = audio::prompt("moh");
    // The first 3 s of the music, which is what plays from the start of the wait.
    let start = moh.between(Duration::ZERO, Duration::from_secs(3)).to_vec();
    let m = best_match(&heard.samples, &start).expect("music heard");
    assert!(m.score > 0.8, "music on hold correlation {:.3}", m.score);
}
