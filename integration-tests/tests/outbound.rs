//! Calls agents place: the real agent client dials, the gateway plans the number (dial plan,
//! trunk by prefix, caller id), checks its fraud limits and calls a real callee (baresip, or
//! SIPp scripted to refuse); the agent hears why a call failed, and every refusal is counted.
use std::net::SocketAddr;
use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

use trunkgate_integration::agent::{demo_args, AgentProcess};
use trunkgate_integration::audio;
use trunkgate_integration::outbound::{carrier_to, DIAL_PLAN};
use trunkgate_integration::ports::free_sip_port;
use trunkgate_integration::{
    prompt_path, scenarios_dir, Baresip, Gateway, Sipp, SippRun, TestConfig, DEMO_CREDENTIAL,
};

/// A trunk named `name` carrying the numbers under `prefix` to `proxy`.
fn trunk(name: &str, prefix: &str, proxy: SocketAddr) -> String {
    format!(
        "\n[[trunk]]\nname = \"{name}\"\nallow = [\"127.0.0.1\"]\nroute = \"ivr:main\"\n\
         [trunk.outbound]\nproxy = \"sip:{proxy}\"\nprefixes = [\"{prefix}\"]\n\
         caller_id = \"+4930555000\"\nnumber_format = \"international\"\n"
    )
}

fn heard(recording: &std::path::Path, reference: &str) -> f64 {
    let rec = audio::read_wav(recording).unwrap();
    audio::phrase_match(&rec.samples, &audio::prompt(reference))
}

#[test]
fn an_agent_calls_a_number_and_both_sides_hear_each_other() {
    let callee = Baresip::new("49301234567")
        .auto_answer()
        .source_wav(prompt_path("enter-digits"))
        .duration(Duration::from_secs(25))
        .start();
    let gw = Gateway::start(
        &TestConfig {
            trunk_extra: carrier_to(callee.sip_addr()),
            extra: DIAL_PLAN.into(),
            ..TestConfig::default()
        }
        .to_toml(),
    );
    let dir = tempfile::tempdir().unwrap();
    let agent_rec = dir.path().join("agent-heard.wav");
    let play = prompt_path("main-menu");
    let mut agent = AgentProcess::start(
        &demo_args(
            &gw,
            &[
                "--dial",
                "030 123-4567",
                "--play",
                play.to_str().unwrap(),
                "--record",
                agent_rec.to_str().unwrap(),
                "--hangup-after-ms",
                "8000",
                "--calls",
                "1",
                "--duration-secs",
                "30",
            ],
        ),
        DEMO_CREDENTIAL,
    );
    agent.expect(
        &["event=dialing", "number=+49301234567"],
        Duration::from_secs(10),
    );
    agent.expect(&["event=answered"], Duration::from_secs(10));
    agent.expect(&["event=call_ended"], Duration::from_secs(15));
    agent.wait_exit(Duration::from_secs(10));
    let run = callee.stop();
    assert!(run.call_established(), "{}", run.log);
    // The callee saw the branch's caller id, asserted for the carrier.
    assert!(run.log.contains("+4930555000"), "{}", run.log);
    let callee_heard = run
        .only_recording()
        .received
        .clone()
        .expect("callee recording");
    let to_callee = heard(&callee_heard, "main-menu");
    let to_agent = heard(&agent_rec, "enter-digits");
    println!("correlation agent → callee {to_callee:.3}, callee → agent {to_agent:.3}");
    assert!(to_callee > 0.8, "agent → callee correlation {to_callee:.3}");
    assert!(to_agent > 0.8, "callee → agent correlation {to_agent:.3}");
    let limit = Duration::from_secs(10);
    let started = r#"trunkgate_calls_started_total{direction="outbound",trunk="carrier"}"#;
    assert_eq!(gw.wait_for_metric(started, limit, |v| v == 1.0), Some(1.0));
    gw.expect_line("agent dials", limit);
}

/// A SIPp callee on its own port, once (on a thread: it blocks): refusing with `code`, or
/// ringing until cancelled. SIPp checks status codes as it loads a scenario, so the refusal's
/// code is written into a copy of `uas_refuse.xml`.
fn sipp_callee(dir: &Path, code: Option<&str>) -> (SocketAddr, JoinHandle<SippRun>) {
    let scenario = match code {
        Some(code) => {
            let template = std::fs::read_to_string(scenarios_dir().join("uas_refuse.xml")).unwrap();
            let path = dir.join(format!("uas_refuse_{code}.xml"));
            std::fs::write(&path, template.replace("[code]", code)).unwrap();
            path
        }
        None => scenarios_dir().join("uas_ring_until_cancel.xml"),
    };
    let port = free_sip_port();
    let sipp = Sipp::scenario(scenario)
        .local_port(port)
        .calls(1)
        .timeout(Duration::from_secs(30));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    (addr, std::thread::spawn(move || sipp.run()))
}

#[test]
fn busy_rejected_unknown_and_unanswered_numbers_come_back_as_clear_reasons() {
    let cases = [
        ("busy", "+49301", Some("486"), "busy"),
        ("declined", "+49302", Some("603"), "rejected"),
        ("unknown", "+49303", Some("404"), "number_unknown"),
        ("ringing", "+49304", None, "no_answer"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut extra = DIAL_PLAN.to_string();
    let mut callees = Vec::new();
    for (name, prefix, code, _) in cases {
        let (addr, run) = sipp_callee(dir.path(), code);
        extra.push_str(&trunk(name, prefix, addr));
        callees.push(run);
    }
    let gw = Gateway::start(
        &TestConfig {
            extra,
            ..TestConfig::default()
        }
        .to_toml(),
    );
    let mut agent = AgentProcess::interactive(&gw);
    agent.expect(&["event=welcome"], Duration::from_secs(10));
    for (i, (name, prefix, _, reason)) in cases.iter().enumerate() {
        let number = format!("0{}{}", &prefix[3..], "2345678");
        agent.type_line(&format!("dial {number}"));
        let line = agent
            .wait_for_nth(&["event=dial_failed"], i + 1, Duration::from_secs(15))
            .unwrap_or_else(|| panic!("{name}: no dial_failed\n{}", agent.lines().join("\n")));
        assert!(line.contains(&format!("reason={reason}")), "{name}: {line}");
    }
    for (run, (name, ..)) in callees.into_iter().zip(cases) {
        let run = run.join().unwrap();
        assert!(run.all_succeeded(), "{name}: {}", run.report());
    }
    let limit = Duration::from_secs(10);
    // The callee's refusals end on its side; an unanswered call is given up by the gateway.
    for (trunk, cause, side) in [
        ("busy", "busy", "caller"),
        ("declined", "rejected", "caller"),
        ("unknown", "number_unknown", "caller"),
        ("ringing", "no_answer", "gateway"),
    ] {
        let sample = format!(
            r#"trunkgate_calls_ended_total{{cause="{cause}",direction="outbound",side="{side}",trunk="{trunk}"}}"#
        );
        let value = gw.wait_for_metric(&sample, limit, |v| v == 1.0);
        assert_eq!(value, Some(1.0), "{sample}");
    }
}

/// Types `dial NUMBER` and returns the agent's answer line: `dial_failed` or `dialing`.
fn dial(agent: &mut AgentProcess, number: &str, answers_so_far: &mut usize) -> String {
    agent.type_line(&format!("dial {number}"));
    *answers_so_far += 1;
    agent
        .wait_for_nth(&["event=dial"], *answers_so_far, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no answer to dial {number}\n{}", agent.lines().join("\n")))
}

#[test]
fn fraud_limits_refuse_what_they_must_before_any_invite_and_nothing_else() {
    let callee = Baresip::new("49301234567")
        .auto_answer()
        .duration(Duration::from_secs(40))
        .start();
    let journal = tempfile::tempdir().unwrap();
    let mut extra = format!("{DIAL_PLAN}agent_calls_per_hour = 2\n");
    extra.push_str(&trunkgate_integration::journal::journal_config(
        journal.path(),
    ));
    let gw = Gateway::start(
        &TestConfig {
            trunk_extra: carrier_to(callee.sip_addr()),
            extra,
            ..TestConfig::default()
        }
        .to_toml(),
    );
    let mut agent = AgentProcess::interactive(&gw);
    agent.expect(&["event=welcome"], Duration::from_secs(10));
    let mut answers = 0;
    // Premium rate and abroad are off limits by default; a short code is no number at all.
    let premium = dial(&mut agent, "0900 1234567", &mut answers);
    assert!(
        premium.contains("event=dial_failed")
            && premium.contains("reason=limit")
            && premium.contains("+49900"),
        "{premium}"
    );
    let abroad = dial(&mut agent, "0044 20 7946 0958", &mut answers);
    assert!(
        abroad.contains("reason=limit") && abroad.contains("outside the destinations"),
        "{abroad}"
    );
    let short = dial(&mut agent, "112", &mut answers);
    assert!(short.contains("reason=invalid_number"), "{short}");
    // Two calls an hour are allowed, and they go through.
    for call in 1..=2 {
        let line = dial(&mut agent, "030 1234567", &mut answers);
        assert!(line.contains("event=dialing"), "call {call}: {line}");
        agent
            .wait_for_nth(&["event=answered"], call, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("call {call} not answered\n{}", agent.lines().join("\n")));
        agent.type_line("h");
        agent
            .wait_for_nth(&["event=call_ended"], call, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("call {call} not ended"));
        agent.type_line("s available");
    }
    let third = dial(&mut agent, "030 1234567", &mut answers);
    assert!(
        third.contains("reason=limit") && third.contains("2 outbound calls in the last hour"),
        "{third}"
    );
    // Only the two allowed calls reached the callee.
    let run = callee.stop();
    let invites = run.log.matches("INVITE sip:").count();
    assert_eq!(invites, 2, "{}", run.log);
    let limit = Duration::from_secs(10);
    for (reason, count) in [
        ("blocked_destination", 1.0),
        ("destination_not_allowed", 1.0),
        ("invalid_number", 1.0),
        ("agent_calls_per_hour", 1.0),
    ] {
        let sample = format!(r#"trunkgate_outbound_refused_total{{reason="{reason}"}}"#);
        assert_eq!(
            gw.wait_for_metric(&sample, limit, |v| v == count),
            Some(count),
            "{reason}"
        );
    }
    agent.type_line("q");
    agent.wait_exit(limit);
    gw.stop().expect("a clean stop");
    // Every refusal is in the journal with its reason; each call has an outbound CDR.
    let records = trunkgate_integration::journal::records(journal.path());
    let refusals: Vec<&str> = trunkgate_integration::journal::of_type(&records, "agent_event")
        .iter()
        .filter(|r| r["data"]["event"] == "dial_refused")
        .map(|r| r["data"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        refusals,
        [
            "blocked_destination",
            "destination_not_allowed",
            "invalid_number",
            "agent_calls_per_hour"
        ]
    );
    let cdrs = trunkgate_integration::journal::of_type(&records, "cdr");
    assert_eq!(cdrs.len(), 2, "{cdrs:#?}");
    for cdr in cdrs {
        let cdr = &cdr["data"];
        assert_eq!(cdr["direction"], "outbound", "{cdr}");
        assert_eq!(cdr["agent"], "demo", "{cdr}");
        assert_eq!(cdr["callee"], "+49301234567", "{cdr}");
        assert_eq!(cdr["caller"], "+4930555000", "{cdr}");
        assert!(
            cdr["sip_call_id"].as_str().is_some_and(|c| !c.is_empty()),
            "{cdr}"
        );
        assert!(cdr["answered_at"].is_string(), "{cdr}");
    }
}

#[test]
fn the_days_outbound_minutes_hold_across_a_restart() {
    let callee = Baresip::new("49301234567")
        .auto_answer()
        .duration(Duration::from_secs(30))
        .start();
    let state = tempfile::tempdir().unwrap();
    let config = TestConfig {
        trunk_extra: carrier_to(callee.sip_addr()),
        extra: format!("{DIAL_PLAN}minutes_per_day = 1\n"),
        ..TestConfig::default()
    }
    .to_toml()
    .replace(
        "state_dir = \"state\"",
        &format!("state_dir = {:?}", state.path().display().to_string()),
    );
    assert!(config.contains(&state.path().display().to_string()));
    let dial = |gw: &Gateway| {
        AgentProcess::start(
            &demo_args(
                gw,
                &[
                    "--dial",
                    "030 1234567",
                    "--hangup-after-ms",
                    "1000",
                    "--calls",
                    "1",
                    "--duration-secs",
                    "20",
                ],
            ),
            DEMO_CREDENTIAL,
        )
    };
    let gw = Gateway::start(&config);
    let mut agent = dial(&gw);
    agent.expect(&["event=answered"], Duration::from_secs(10));
    agent.expect(&["event=call_ended"], Duration::from_secs(10));
    agent.wait_exit(Duration::from_secs(10));
    // One started minute is the day's whole allowance; it is kept in the state directory.
    let kept = state.path().join("outbound-usage.json");
    let used = trunkgate_integration::bench::load::wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&kept).is_ok_and(|t| t.contains("\"branch_seconds\":60"))
    });
    assert!(used, "{:?}", std::fs::read_to_string(&kept));
    gw.stop().expect("a clean stop");
    // A restarted gateway still knows the minute is used.
    let gw = Gateway::start(&config);
    let mut agent = dial(&gw);
    let refused = agent.expect(&["event=dial_failed"], Duration::from_secs(10));
    assert!(
        refused.contains("reason=limit") && refused.contains("1 outbound minutes today"),
        "{refused}"
    );
    agent.wait_exit(Duration::from_secs(10));
    let run = callee.stop();
    assert_eq!(run.log.matches("INVITE sip:").count(), 1, "{}", run.log);
}
