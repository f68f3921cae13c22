//! What an agent does to a call besides talking: key presses both ways, and hold, with the real
//! daemon, the real agent client, a real softphone and SIPp.
use std::time::Duration;

use trunkgate_integration::agent::{demo_args, AgentProcess};
use trunkgate_integration::audio::{self, best_match};
use trunkgate_integration::{prompt_path, Baresip, Gateway, Sipp, TestConfig, DEMO_CREDENTIAL};

fn gateway() -> Gateway {
    Gateway::start(
        &TestConfig {
            route: "queue:support".into(),
            ..TestConfig::default()
        }
        .to_toml(),
    )
}

fn agent(gw: &Gateway, extra: &[&str]) -> AgentProcess {
    let mut args = vec!["--calls", "1", "--duration-secs", "30"];
    args.extend_from_slice(extra);
    let agent = AgentProcess::start(&demo_args(gw, &args), DEMO_CREDENTIAL);
    agent.expect(&["event=welcome"], Duration::from_secs(10));
    agent
}

#[test]
fn the_agents_keys_reach_the_caller_once_each() {
    let gw = gateway();
    let agent = agent(
        &gw,
        &[
            "--send-dtmf",
            "42#",
            "--dtmf-after-ms",
            "1000",
            "--hangup-after-ms",
            "4000",
        ],
    );
    let caller = Baresip::new("caller")
        .dial(format!("sip:100@{}", gw.sip_udp()))
        .duration(Duration::from_secs(8))
        .run();
    assert!(caller.call_established(), "{}", caller.log);
    agent.expect(&["event=send_dtmf", "digits=42#"], Duration::from_secs(10));
    assert_eq!(caller.received_digits(), "42#", "{}", caller.log);
    gw.expect_line("agent dtmf toward the carrier", Duration::from_secs(1));
}

#[test]
fn the_callers_keys_reach_the_agent_once_each() {
    let gw = gateway();
    let agent = agent(&gw, &["--hangup-after-ms", "8000"]);
    let run = Sipp::scenario("uac_keys_to_agent.xml")
        .target(gw.sip_udp())
        .timeout(Duration::from_secs(40))
        .run();
    run.assert_success();
    agent.expect(&["event=call_ended"], Duration::from_secs(5));
    let digits: String = agent
        .lines()
        .iter()
        .filter(|l| l.contains("event=dtmf "))
        .filter_map(|l| l.split("digit=").nth(1))
        .filter_map(|rest| rest.chars().next())
        .collect();
    assert_eq!(digits, "57#", "{:#?}", agent.lines());
}

#[test]
fn a_held_caller_hears_music_on_hold_then_the_agent_again() {
    let gw = gateway();
    let play = prompt_path("main-menu");
    let agent = agent(
        &gw,
        &[
            "--play",
            play.to_str().unwrap(),
            "--hold-after-ms",
            "500",
            "--hold-for-ms",
            "2000",
            "--hangup-after-ms",
            "6000",
        ],
    );
    let caller = Baresip::new("caller")
        .dial(format!("sip:100@{}", gw.sip_udp()))
        .duration(Duration::from_secs(10))
        .run();
    assert!(caller.call_established(), "{}", caller.log);
    agent.expect(&["event=hold", "on=true"], Duration::from_secs(10));
    agent.expect(&["event=hold", "on=false"], Duration::from_secs(10));
    agent.expect(&["event=call_ended"], Duration::from_secs(10));

    let heard = caller.received_audio();
    let moh = audio::prompt("moh");
    let music = moh
        .between(Duration::ZERO, Duration::from_millis(1500))
        .to_vec();
    let music = best_match(&heard.samples, &music).expect("music heard");
    assert!(music.score > 0.8, "music on hold {:.3}", music.score);
    // The agent's prompt kept running while held; its last second plays after the hold.
    let menu = audio::prompt("main-menu");
    let after = menu
        .between(Duration::from_millis(3300), Duration::from_millis(4500))
        .to_vec();
    let after = best_match(&heard.samples, &after).expect("agent heard after the hold");
    assert!(after.score > 0.8, "agent after hold {:.3}", after.score);
    assert!(
        after.offset > music.offset,
        "the agent comes back after the music"
    );
    // Neither side sent audio during the hold, on purpose: no link warning either end.
    let warnings: Vec<String> = agent
        .lines()
        .into_iter()
        .filter(|l| l.contains("event=link_poor"))
        .collect();
    assert!(
        warnings.is_empty(),
        "a hold is no network loss: {warnings:?}"
    );
    assert_eq!(gw.count_lines("agent link poor"), 0, "{}", gw.dump_log());
}
