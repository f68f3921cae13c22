//! The event bus seen from outside, during real calls: its log consumer writes one line per
//! event, and a call's lines must tell its story in order, ending with its quality figures.
use std::time::Duration;

use trunkgate_integration::agent::{demo_args, AgentProcess};
use trunkgate_integration::{Baresip, Gateway, TestConfig, DEMO_CREDENTIAL};

/// The lines of `call`, in the order they were logged.
fn lines_of(gw: &Gateway, call: &str) -> Vec<String> {
    gw.log_lines()
        .into_iter()
        .filter(|l| {
            let tag = format!("call={call}");
            l.match_indices(&tag)
                .any(|(i, _)| !l[i + tag.len()..].starts_with(|c: char| c.is_ascii_digit()))
        })
        .collect()
}

/// Each of `story` is found in `lines`, each after the one before.
fn in_order(lines: &[String], story: &[&str]) {
    let mut at = 0;
    for step in story {
        match lines[at..].iter().position(|l| l.contains(step)) {
            Some(i) => at += i + 1,
            None => panic!(
                "{step:?} not found after line {at} in:\n{}",
                lines.join("\n")
            ),
        }
    }
}

fn field(line: &str, key: &str) -> Option<u64> {
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    line[start..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[test]
fn a_queued_call_answered_by_an_agent_tells_its_story_on_the_bus() {
    let gw = Gateway::start(
        &TestConfig {
            route: "queue:support".into(),
            ..TestConfig::default()
        }
        .to_toml(),
    );
    let agent = AgentProcess::start(&demo_args(&gw, &["--duration-secs", "20"]), DEMO_CREDENTIAL);
    agent.expect(&["event=welcome"], Duration::from_secs(10));
    let target = gw.sip_udp();
    let caller = Baresip::new("caller")
        .dial(format!("sip:100@{target}"))
        .duration(Duration::from_secs(5))
        .run();
    assert!(caller.call_established());
    let ended = gw.expect_line("call ended", Duration::from_secs(10));
    let call = ended
        .split("call=")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .expect("the call's number")
        .to_string();
    let lines = lines_of(&gw, &call);
    in_order(
        &lines,
        &[
            "call arrived",
            "answered",
            "caller queued",
            "offered to agent",
            "bridged to agent",
            "call ended",
        ],
    );
    // The agent's own quality report may be logged after the end; the end line is the bus's.
    let end = &ended;
    assert!(end.contains("side=caller"), "the caller hung up: {end}");
    assert!(field(end, "rtp_received").unwrap_or(0) > 100, "{end}");
    assert!(field(end, "rtp_sent").unwrap_or(0) > 100, "{end}");
    assert!(field(end, "agent_packets").unwrap_or(0) > 100, "{end}");
    let log = gw.log_lines().join("\n");
    assert!(log.contains("agent session started"), "agent events too");
    assert!(log.contains("state=talking"), "agent state changes too");
}
