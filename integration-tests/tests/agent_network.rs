//! An agent's network misbehaving mid-call: it changes (QUIC migration), dies and comes back
//! within the grace period (resume), dies for good (the caller goes to the next agent), or
//! drops audio in long bursts (the agent is told, each way, and told when it is over).
//!
//! Both sides send a steady tone, so every missing 10 ms shows in the other side's recording;
//! the gaps are printed for the closing notes, and the assertions hold what an agent would call
//! "the call carried on".
use std::path::Path;
use std::time::{Duration, Instant};

use trunkgate_integration::agent::{demo_args, AgentProcess};
use trunkgate_integration::audio::{self, best_match, longest_tone_gap, Audio};
use trunkgate_integration::relay::{BurstLoss, Direction, Impairment, Relay, RelayConfig};
use trunkgate_integration::{
    line_field, Baresip, BaresipRun, Gateway, TestConfig, DEMO_CREDENTIAL,
};

/// The agent's tone and the caller's differ, so one side's audio cannot pass for the other's.
const AGENT_HZ: f64 = 1000.0;
const CALLER_HZ: f64 = 600.0;

fn gateway(config: TestConfig) -> Gateway {
    Gateway::start(
        &TestConfig {
            route: "queue:support".into(),
            ..config
        }
        .to_toml(),
    )
}

fn gap(recording: &Audio, freq: f64) -> Duration {
    longest_tone_gap(&recording.samples, recording.rate, freq).expect("the tone was never heard")
}

#[test]
fn a_network_change_mid_call_is_not_heard() {
    let gw = gateway(TestConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let agent_tone = audio::tone_file(dir.path(), "agent.wav", AGENT_HZ);
    let caller_tone = audio::tone_file(dir.path(), "caller.wav", CALLER_HZ);
    let agent_rec = dir.path().join("agent-heard.wav");
    let agent = AgentProcess::start(
        &demo_args(
            &gw,
            &[
                "--play",
                agent_tone.to_str().unwrap(),
                "--record",
                agent_rec.to_str().unwrap(),
                "--rebind-after-ms",
                "3000",
                "--hangup-after-ms",
                "6000",
                "--calls",
                "1",
                "--duration-secs",
                "30",
            ],
        ),
        DEMO_CREDENTIAL,
    );
    agent.expect(&["event=welcome"], Duration::from_secs(10));
    let caller = Baresip::new("caller")
        .dial(format!("sip:100@{}", gw.sip_udp()))
        .source_wav(&caller_tone)
        .duration(Duration::from_secs(10))
        .run();
    assert!(caller.call_established(), "{}", caller.log);
    agent.expect(&["event=rebound"], Duration::from_secs(10));
    agent.expect(&["event=call_ended"], Duration::from_secs(10));
    let to_caller = gap(&caller.received_audio(), AGENT_HZ);
    let to_agent = gap(&audio::read_wav(&agent_rec).unwrap(), CALLER_HZ);
    println!(
        "migration: longest gap agent→caller {} ms, caller→agent {} ms",
        to_caller.as_millis(),
        to_agent.as_millis()
    );
    // A lost packet or two is concealed; a dropout a listener would notice is not allowed.
    assert!(
        to_caller <= Duration::from_millis(60),
        "agent→caller {to_caller:?}"
    );
    assert!(
        to_agent <= Duration::from_millis(60),
        "caller→agent {to_agent:?}"
    );
    assert_eq!(
        gw.count_lines("agent connection lost"),
        0,
        "migration is not a reconnect"
    );
    // Ops see the move, the link's round trips and how both legs' jitter buffers fared.
    gw.expect_line(
        "agent's connection moved to a new address",
        Duration::from_secs(5),
    );
    let limit = Duration::from_secs(10);
    let metric = |sample: &str, accept: &dyn Fn(f64) -> bool| {
        let value = gw.wait_for_metric(sample, limit, accept);
        assert!(value.is_some_and(accept), "{sample} = {value:?}");
    };
    metric("trunkgate_agent_migrations_total", &|v| v == 1.0);
    metric("trunkgate_agent_rtt_seconds_count", &|v| v >= 2.0);
    // Loopback: every round trip is well under 5 ms.
    metric(r#"trunkgate_agent_rtt_seconds_bucket{le="0.005"}"#, &|v| {
        v >= 2.0
    });
    for leg in ["carrier", "agent"] {
        metric(
            &format!(r#"trunkgate_jitter_buffer_delay_seconds_count{{leg="{leg}"}}"#),
            &|v| v == 1.0,
        );
    }
    metric(r#"trunkgate_rtp_jitter_seconds_count{leg="agent"}"#, &|v| {
        v == 1.0
    });
    // The caller's tone goes to the agent in a packet every 20 ms (no silence for DTX).
    metric(r#"trunkgate_rtp_packets_sent_total{leg="agent"}"#, &|v| {
        v >= 250.0
    });
    // The agent hangs up after six seconds of talk: a frame every 20 ms.
    metric("trunkgate_media_frame_work_seconds_count", &|v| v >= 290.0);
}

/// Agent `id` connected through `relay` and playing its tone, answering a 28 s softphone call
/// that sends the caller's tone (run on a thread).
fn call_through(
    relay: &Relay,
    gw: &Gateway,
    dir: &Path,
) -> (AgentProcess, std::thread::JoinHandle<BaresipRun>) {
    let agent_tone = audio::tone_file(dir, "agent.wav", AGENT_HZ);
    let caller_tone = audio::tone_file(dir, "caller.wav", CALLER_HZ);
    let mut args = demo_args(
        gw,
        &[
            "--play",
            agent_tone.to_str().unwrap(),
            "--duration-secs",
            "60",
        ],
    );
    args[1] = relay.addr().to_string();
    let agent = AgentProcess::start(&args, DEMO_CREDENTIAL);
    agent.expect(&["event=welcome"], Duration::from_secs(10));
    let target = gw.sip_udp();
    let caller = std::thread::spawn(move || {
        Baresip::new("caller")
            .dial(format!("sip:100@{target}"))
            .source_wav(&caller_tone)
            .duration(Duration::from_secs(28))
            .run()
    });
    agent.expect(&["event=answered"], Duration::from_secs(10));
    gw.expect_line("bridged to agent", Duration::from_secs(5));
    (agent, caller)
}

#[test]
fn an_agent_whose_connection_dies_resumes_its_call_within_the_grace_period() {
    let gw = gateway(TestConfig::default());
    let relay = Relay::start(RelayConfig::new(gw.quic())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (agent, caller) = call_through(&relay, &gw, dir.path());
    // Two seconds of talk, then the agent's network goes dark until the gateway gives up on
    // the connection (its idle timeout) and plays the caller music on hold; then it comes back.
    let _ = agent.wait_for(&["never printed"], Duration::from_secs(2));
    let dark = Instant::now();
    relay.blackhole(true);
    gw.expect_line("agent connection lost", Duration::from_secs(15));
    relay.blackhole(false);
    let outage = dark.elapsed();
    // The agent reconnects with its resume token and gets its call back.
    agent.expect(&["event=resumed", "call=c"], Duration::from_secs(15));
    let resumed_after = dark.elapsed() - outage;
    // The gateway logs the bridge once the call has taken the agent back, which may be a moment
    // after it told the agent so.
    let mut bridged = 0;
    assert!(
        gw.wait_for_line(Duration::from_secs(5), |l| {
            bridged += usize::from(l.contains("bridged to agent"));
            bridged == 2
        })
        .is_some(),
        "bridged again:\n{}",
        gw.dump_log()
    );
    let caller = caller.join().unwrap();
    assert!(caller.call_established());
    assert_eq!(
        gw.count_lines("did not come back"),
        0,
        "a resumed call is never requeued"
    );
    let heard = caller.received_audio();
    let unheard = gap(&heard, AGENT_HZ);
    // No dead air: a second after the agent's audio stopped, the caller hears music on hold
    // (long before the connection's idle timeout declares the agent lost).
    let moh = audio::prompt("moh");
    let music = moh.between(Duration::ZERO, Duration::from_secs(3)).to_vec();
    let music = best_match(&heard.samples, &music).map_or(0.0, |m| m.score);
    assert!(music > 0.8, "music on hold during the outage {music:.3}");
    gw.expect_line("agent audio stopped", Duration::from_secs(1));
    println!(
        "resume: network dark {} ms; agent not heard for {} ms; session resumed {} ms and audio \
         back ≤ {} ms after the network came back",
        outage.as_millis(),
        unheard.as_millis(),
        resumed_after.as_millis(),
        unheard.saturating_sub(outage).as_millis()
    );
    assert!(
        unheard < outage + Duration::from_secs(2),
        "the agent was heard again only {:?} after the network came back",
        unheard.saturating_sub(outage)
    );
}

#[test]
fn an_agent_gone_past_the_grace_period_loses_the_caller_to_the_next_agent() {
    let hash = trunkgate_integration::gateway::DEMO_CREDENTIAL_HASH;
    let gw = gateway(TestConfig {
        resume_grace_ms: 2_000,
        extra: format!(
            "[[agent]]\nid = \"backup\"\ncredential_hash = {hash:?}\nskills = [\"support\"]\n"
        ),
        ..TestConfig::default()
    });
    let relay = Relay::start(RelayConfig::new(gw.quic())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_first, caller) = call_through(&relay, &gw, dir.path());
    // The backup logs in while the first agent talks.
    let mut backup_args = demo_args(&gw, &["--duration-secs", "60"]);
    backup_args[3] = "backup".into();
    let backup = AgentProcess::start(&backup_args, DEMO_CREDENTIAL);
    backup.expect(&["event=state", "state=available"], Duration::from_secs(10));
    relay.blackhole(true);
    gw.expect_line("agent connection lost", Duration::from_secs(15));
    gw.expect_line("did not come back", Duration::from_secs(5));
    // Back at the head of the queue, the caller is offered to the backup within 2 s.
    backup.expect(&["event=answered"], Duration::from_secs(2));
    let caller = caller.join().unwrap();
    assert!(caller.call_established());
}

/// The number after `key=` in an agent's event line.
fn field(line: &str, key: &str) -> f64 {
    line_field(line, key).unwrap_or_else(|| panic!("no numeric {key} in {line}"))
}

#[test]
fn an_agent_is_told_when_its_network_drops_audio_either_way_and_when_it_recovers() {
    let gw = gateway(TestConfig::default());
    let relay = Relay::start(RelayConfig::new(gw.quic())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (agent, caller) = call_through(&relay, &gw, dir.path());
    // Bursts of ten datagrams on average, a third of them lost: longer than any redundancy
    // reaches, as on a Wi-Fi link that keeps dropping out.
    let dropouts = Impairment {
        burst_loss: Some(BurstLoss {
            enter_pct: 5.0,
            exit_pct: 10.0,
        }),
        ..Impairment::default()
    };
    let limit = Duration::from_secs(8);
    let started = Instant::now();

    // The agent's audio is lost on its way: only the gateway's reports can say so.
    relay
        .set_impairment(Direction::Up, dropouts.clone())
        .unwrap();
    let poor = agent.expect(&["event=link_poor"], limit);
    let told_after = started.elapsed();
    assert!(field(&poor, "sent_lost_ms") >= 200.0, "{poor}");
    assert!(field(&poor, "heard_lost_ms") < 200.0, "{poor}");
    // The gateway, which heard the agent's audio go missing itself, says so to ops.
    gw.expect_line("agent link poor", limit);
    let metric = gw.wait_for_metric("trunkgate_agent_link_poor_total", limit, |v| v >= 1.0);
    assert!(metric.is_some_and(|v| v >= 1.0), "{metric:?}");

    // Ten seconds after the network is clean again the window holds no loss.
    relay
        .set_impairment(Direction::Up, Impairment::default())
        .unwrap();
    let recovered = Instant::now();
    let good = agent.expect(&["event=link_good"], Duration::from_secs(15));
    let good_after = recovered.elapsed();
    assert!(field(&good, "sent_lost_ms") <= 40.0, "{good}");

    // Now the caller's audio is lost on its way to the agent.
    relay.set_impairment(Direction::Down, dropouts).unwrap();
    let poor = agent
        .wait_for_nth(&["event=link_poor"], 2, limit)
        .unwrap_or_else(|| panic!("not told the second time:\n{}", agent.lines().join("\n")));
    assert!(field(&poor, "heard_lost_ms") >= 200.0, "{poor}");
    relay
        .set_impairment(Direction::Down, Impairment::default())
        .unwrap();
    println!(
        "link warnings: poor {} ms after the uplink began to drop bursts, good {} ms after it \
         was clean",
        told_after.as_millis(),
        good_after.as_millis()
    );
    drop(agent);
    let caller = caller.join().unwrap();
    assert!(caller.call_established());
}
