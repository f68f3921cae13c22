//! Blind transfers with the real agent client: an agent answering a caller hands the call to
//! another queue or to a named agent; the caller waits with music, the next agent answers and
//! hears the caller; the first agent's part ends as `transferred`.
use std::time::Duration;

use trunkgate_integration::agent::{agent_args, AgentProcess};
use trunkgate_integration::audio::{self, tone_energy_ratio};
use trunkgate_integration::gateway::DEMO_CREDENTIAL_HASH;
use trunkgate_integration::{Baresip, Gateway, TestConfig, DEMO_CREDENTIAL};

const WAIT: Duration = Duration::from_secs(10);
const CALLER_HZ: f64 = 600.0;

/// Queue `sales` (skill `sales`, no wrap-up) with agent `bob` in it, and agent `carol` in
/// queue `support` with the demo agent.
fn gateway() -> Gateway {
    let extra = format!(
        "[queues.sales]\nskills = [\"sales\"]\nmoh = \"moh\"\nwrap_up_ms = 0\n\
         first_announce_ms = 60000\n\n\
         [[agent]]\nid = \"bob\"\ncredential_hash = {DEMO_CREDENTIAL_HASH:?}\nskills = [\"sales\"]\n\n\
         [[agent]]\nid = \"carol\"\ncredential_hash = {DEMO_CREDENTIAL_HASH:?}\nskills = [\"support\"]\n"
    );
    Gateway::start(
        &TestConfig {
            route: "queue:support".into(),
            extra,
            ..TestConfig::default()
        }
        .to_toml(),
    )
}

/// The caller's tone in what `agent` recorded: most of its energy at the caller's frequency.
fn hears_the_caller(recording: &std::path::Path) -> f64 {
    let rec = audio::read_wav(recording).unwrap();
    tone_energy_ratio(&rec.samples, rec.rate, CALLER_HZ)
}

fn transfer_to(target: &str, answering: &str) {
    let gw = gateway();
    let dir = tempfile::tempdir().unwrap();
    let tone = audio::tone_file(dir.path(), "caller.wav", CALLER_HZ);
    let recording = dir.path().join("next-agent.wav");
    // The next agent answers whatever it is offered and records it; it logs in only once the
    // first one has the call, so it cannot be offered the caller before the transfer.
    let mut first = AgentProcess::interactive(&gw);
    first.expect(&["event=welcome"], WAIT);
    first.expect(&["event=state", "state=available"], WAIT);
    let target_gw = gw.sip_udp();
    let caller = std::thread::spawn(move || {
        Baresip::new("caller")
            .dial(format!("sip:100@{target_gw}"))
            .source_wav(&tone)
            .duration(Duration::from_secs(14))
            .run()
    });
    first.expect(&["event=offer"], WAIT);
    first.type_line("a");
    first.expect(&["event=answered"], WAIT);
    let mut next = AgentProcess::start(
        &agent_args(
            &gw,
            answering,
            &[
                "--record",
                recording.to_str().unwrap(),
                "--calls",
                "1",
                "--duration-secs",
                "30",
            ],
        ),
        DEMO_CREDENTIAL,
    );
    next.expect(&["event=welcome"], WAIT);
    first.type_line(&format!("transfer {target}"));
    first.expect(&["event=call_ended", "reason=transferred"], WAIT);
    next.expect(&["event=offer"], WAIT);
    next.expect(&["event=answered"], WAIT);
    next.expect(&["event=call_ended"], Duration::from_secs(20));
    next.wait_exit(WAIT);
    let caller = caller.join().unwrap();
    assert!(caller.call_established(), "{}", caller.log);
    let ratio = hears_the_caller(&recording);
    println!("{answering} heard the caller's tone at {ratio:.2} of its energy");
    assert!(
        ratio > 0.5,
        "{answering} did not hear the caller: {ratio:.2}"
    );
    gw.expect_line("call transferred", WAIT);
}

#[test]
fn an_agent_transfers_its_caller_to_another_queue_where_the_next_agent_answers() {
    transfer_to("queue:sales", "bob");
}

#[test]
fn an_agent_transfers_its_caller_to_a_named_agent() {
    transfer_to("agent:carol", "carol");
}
