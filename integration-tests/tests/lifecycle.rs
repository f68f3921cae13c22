//! Starting and stopping the daemon the way systemd does.
use std::time::{Duration, Instant};

use trunkgate_integration::agent::{demo_args, AgentProcess};
use trunkgate_integration::{
    config_for_tests, Baresip, Gateway, Sipp, TestConfig, DEMO_CREDENTIAL,
};

#[test]
fn sigterm_hangs_up_calls_in_progress_and_exits_cleanly() {
    let gw = Gateway::start(&config_for_tests(""));
    let target = gw.sip_udp();
    // A carrier call that sends no media and waits up to 15 s for the gateway's BYE.
    let carrier = std::thread::spawn(move || {
        Sipp::scenario("uac_silent.xml")
            .target(target)
            .timeout(Duration::from_secs(20))
            .run()
    });
    gw.expect_line("answered", Duration::from_secs(10));
    let started = std::time::Instant::now();
    let status = gw.stop().expect("the daemon stops on SIGTERM, not SIGKILL");
    assert!(status.success(), "exit status {status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "shutdown took {:?}",
        started.elapsed()
    );
    let run = carrier.join().unwrap();
    // The call ended with our BYE (answered 200 by SIPp), not with the carrier timing out.
    run.assert_success();
}

fn draining(route: &str, drain_timeout_ms: u64) -> Gateway {
    Gateway::start(
        &TestConfig {
            route: route.into(),
            drain_timeout_ms,
            ..TestConfig::default()
        }
        .to_toml(),
    )
}

#[test]
fn a_drain_refuses_new_calls_with_503_lets_calls_finish_and_exits() {
    let mut gw = draining("ivr:main", 20_000);
    let agent = AgentProcess::start(
        &demo_args(&gw, &["--hangup-after-ms", "4000", "--duration-secs", "30"]),
        DEMO_CREDENTIAL,
    );
    agent.expect(&["event=state", "state=available"], Duration::from_secs(10));
    let target = gw.sip_udp();
    // In the IVR for 6 s, then the caller hangs up.
    let in_ivr = std::thread::spawn(move || {
        Baresip::new("caller")
            .dial(format!("sip:100@{target}"))
            .duration(Duration::from_secs(6))
            .run()
    });
    // Presses 0, talks with the agent, who hangs up after 4 s.
    let with_agent = std::thread::spawn(move || {
        Sipp::scenario("uac_queue0.xml")
            .target(target)
            .timeout(Duration::from_secs(30))
            .run()
    });
    gw.expect_line("bridged to agent", Duration::from_secs(10));
    let started = Instant::now();
    gw.signal(libc::SIGTERM);
    gw.expect_line(
        "draining: calls in progress may finish",
        Duration::from_secs(5),
    );
    let ready = trunkgate::ops::ctl::get(gw.admin(), "/readyz");
    assert!(
        matches!(
            ready,
            Err(trunkgate::ops::ctl::CtlError::Status { status: 503, .. })
        ),
        "/readyz while draining: {ready:?}"
    );
    Sipp::scenario("uac_draining.xml")
        .target(target)
        .timeout(Duration::from_secs(10))
        .run()
        .assert_success();
    with_agent.join().unwrap().assert_success();
    assert!(in_ivr.join().unwrap().call_established());
    let status = gw
        .wait_exit(Duration::from_secs(15))
        .expect("the daemon exits once its calls are done");
    assert!(status.success(), "exit status {status:?}");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(20), "the drain took {took:?}");
    assert_eq!(gw.count_lines("drained: no calls left"), 1);
    assert_eq!(
        gw.count_lines("side=agent cause=agent hung up"),
        1,
        "the agent's call ran its course"
    );
    assert_eq!(
        gw.count_lines("reason=RemoteBye"),
        1,
        "the IVR caller hung up himself"
    );
    assert_eq!(
        gw.count_lines("gateway shutting down"),
        0,
        "no call was cut off"
    );
    println!(
        "drain: both calls finished and the daemon exited {} ms after SIGTERM",
        took.as_millis()
    );
}

#[test]
fn a_drain_past_its_timeout_hangs_up_what_is_left() {
    let mut gw = draining("ivr:main", 2_000);
    let target = gw.sip_udp();
    let carrier = std::thread::spawn(move || {
        Sipp::scenario("uac_silent.xml")
            .target(target)
            .timeout(Duration::from_secs(20))
            .run()
    });
    gw.expect_line("answered", Duration::from_secs(10));
    let started = Instant::now();
    let answer = trunkgate::ops::ctl::drain(gw.admin(), false).expect("ctl drain");
    assert_eq!(answer, "draining: 1 calls in progress\n");
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .expect("the daemon exits");
    assert!(status.success(), "exit status {status:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "{took:?}"
    );
    gw.expect_line(
        "drain timeout: hanging up the calls left",
        Duration::from_secs(1),
    );
    // The carrier got our BYE.
    carrier.join().unwrap().assert_success();
}

#[test]
fn a_second_stop_during_a_drain_hangs_up_at_once() {
    let mut gw = draining("ivr:main", 60_000);
    let target = gw.sip_udp();
    let carrier = std::thread::spawn(move || {
        Sipp::scenario("uac_silent.xml")
            .target(target)
            .timeout(Duration::from_secs(20))
            .run()
    });
    gw.expect_line("answered", Duration::from_secs(10));
    gw.signal(libc::SIGTERM);
    gw.expect_line("draining", Duration::from_secs(5));
    let started = Instant::now();
    let run = trunkgate_integration::ctl(gw.admin(), &["drain", "--now"]);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.stdout, "ending 1 calls now\n");
    let status = gw
        .wait_exit(Duration::from_secs(5))
        .expect("the daemon exits");
    assert!(status.success(), "exit status {status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    carrier.join().unwrap().assert_success();
}
