//! Operating the real daemon: a real Prometheus server scrapes it, and `trunkgate ctl` shows what
//! is going on, as an ops team would use them.
use std::process::Command;
use std::time::Duration;

use trunkgate_integration::agent::{demo_args, AgentProcess};
use trunkgate_integration::prometheus::Prometheus;
use trunkgate_integration::{ctl, Baresip, CtlRun, Gateway, Sipp, TestConfig, DEMO_CREDENTIAL};

#[test]
fn prometheus_scrapes_the_calls_a_carrier_made_and_promtool_accepts_the_exposition() {
    let gw = Gateway::start(&TestConfig::default().to_toml());
    let prometheus = Prometheus::start(&[gw.metrics()]);
    Sipp::scenario("uac_dtmf9.xml")
        .target(gw.sip_udp())
        .calls(5)
        .rate(5)
        .timeout(Duration::from_secs(60))
        .run()
        .assert_success();
    let limit = Duration::from_secs(20);
    let query = |expr: &str, want: f64| {
        let got = prometheus.wait_for(expr, limit, |v| v == want);
        assert_eq!(got, Some(want), "{expr}");
    };
    query(r#"up{job="trunkgate"}"#, 1.0);
    query(
        r#"trunkgate_calls_started_total{trunk="carrier",direction="inbound"}"#,
        5.0,
    );
    query(
        r#"trunkgate_calls_ended_total{trunk="carrier",side="gateway",cause="ivr_hangup"}"#,
        5.0,
    );
    query(r#"trunkgate_calls_active{trunk="carrier"}"#, 0.0);
    // The signalling as it crossed the wire: five INVITEs in, five BYEs out (after goodbye).
    query(
        r#"trunkgate_sip_requests_total{direction="in",method="INVITE"}"#,
        5.0,
    );
    query(
        r#"trunkgate_sip_requests_total{direction="out",method="BYE"}"#,
        5.0,
    );
    let ok = prometheus.wait_for(
        r#"trunkgate_sip_responses_total{direction="out",class="2xx"}"#,
        limit,
        |v| v >= 5.0,
    );
    assert!(ok >= Some(5.0), "2xx sent {ok:?}");
    let received = prometheus.wait_for(
        r#"trunkgate_rtp_packets_received_total{leg="carrier"}"#,
        limit,
        |v| v > 500.0,
    );
    assert!(received > Some(500.0), "carrier packets {received:?}");
    query(
        r#"trunkgate_jitter_buffer_delay_seconds_count{leg="carrier"}"#,
        5.0,
    );
    let frames = prometheus.wait_for("trunkgate_media_frame_work_seconds_count", limit, |v| {
        v > 500.0
    });
    assert!(frames > Some(500.0), "frames timed {frames:?}");

    let exposition = trunkgate::ops::ctl::get(gw.metrics(), "/metrics").unwrap();
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs (scripts/setup-test-deps.sh installs it)");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The admin listener serves the same exposition.
    let admin = trunkgate::ops::ctl::get(gw.admin(), "/metrics").unwrap();
    assert!(admin.contains("trunkgate_calls_started_total"));
}

fn line_with<'a>(text: &'a str, words: &[&str]) -> &'a str {
    text.lines()
        .find(|l| words.iter().all(|w| l.split_whitespace().any(|c| c == *w)))
        .unwrap_or_else(|| panic!("no line with {words:?} in:\n{text}"))
}

#[test]
fn ctl_shows_the_calls_agents_and_queues_of_the_moment() {
    let config = TestConfig {
        route: "queue:support".into(),
        ..TestConfig::default()
    };
    let gw = Gateway::start(&config.to_toml());
    let agent = AgentProcess::start(&demo_args(&gw, &["--duration-secs", "60"]), DEMO_CREDENTIAL);
    agent.expect(&["event=state", "state=available"], Duration::from_secs(10));
    // The first caller talks with the only agent; the second waits for it. Both hang up after
    // their time is up.
    let target = gw.sip_udp();
    let caller = move |name: &'static str, secs: u64| {
        std::thread::spawn(move || {
            Baresip::new(name)
                .dial(format!("sip:100@{target}"))
                .duration(Duration::from_secs(secs))
                .run()
        })
    };
    let talking = caller("talking", 12);
    agent.expect(&["event=answered"], Duration::from_secs(10));
    let waiting = caller("waiting", 8);
    let mut queued = 0;
    gw.wait_for_line(Duration::from_secs(10), |l| {
        queued += usize::from(l.contains("caller queued"));
        queued == 2
    })
    .expect("the second caller queued");

    let CtlRun {
        ok,
        stdout: calls,
        stderr: err,
    } = ctl(gw.admin(), &["calls"]);
    assert!(ok, "{err}");
    println!("$ trunkgate ctl calls\n{calls}");
    line_with(&calls, &["talking", "support", "demo"]);
    line_with(&calls, &["waiting", "support", "waiting"]);
    assert!(calls.ends_with("2 calls\n"), "{calls}");
    let CtlRun { stdout: agents, .. } = ctl(gw.admin(), &["agents"]);
    line_with(&agents, &["demo", "talking", "yes"]);
    let CtlRun { stdout: queues, .. } = ctl(gw.admin(), &["queues"]);
    println!("$ trunkgate ctl agents\n{agents}\n$ trunkgate ctl queues\n{queues}");
    let support = line_with(&queues, &["support"]);
    let columns: Vec<&str> = support.split_whitespace().collect();
    assert_eq!(columns[1], "1", "one caller waiting: {queues}");
    assert_eq!(columns.last(), Some(&"1"), "one agent busy: {queues}");

    let CtlRun {
        ok, stdout: json, ..
    } = ctl(gw.admin(), &["calls", "--json"]);
    assert!(ok);
    let calls: Vec<serde_json::Value> = serde_json::from_str(&json).expect("json");
    let states: Vec<&str> = calls.iter().map(|c| c["state"].as_str().unwrap()).collect();
    assert_eq!(states.len(), 2, "{json}");
    assert!(
        states.contains(&"talking") && states.contains(&"waiting"),
        "{json}"
    );

    // Nothing listens on the port of a listener just closed.
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let CtlRun {
        ok, stderr: err, ..
    } = ctl(nowhere, &["queues"]);
    assert!(!ok, "a wrong address fails");
    assert!(
        err.contains("cannot reach trunkgate's admin api at"),
        "{err}"
    );

    assert!(talking.join().unwrap().call_established());
    assert!(waiting.join().unwrap().call_established());
    let mut ended = 0;
    gw.wait_for_line(Duration::from_secs(5), |l| {
        ended += usize::from(l.contains("call ended"));
        ended == 2
    })
    .expect("both calls ended");
    let CtlRun { stdout: calls, .. } = ctl(gw.admin(), &["calls"]);
    assert!(calls.ends_with("0 calls\n"), "{calls}");
}

#[test]
fn the_shipped_alert_rules_load_and_pass_their_tests() {
    let dir = trunkgate_integration::repo_root().join("packaging/prometheus");
    for args in [
        &["check", "rules", "alerts.yml"][..],
        &["test", "rules", "alerts_test.yml"][..],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("promtool runs (scripts/setup-test-deps.sh installs it)");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
