//! A config reload under load, as an operator does it: IVR calls and an agent-bridged call in
//! progress while `trunkgate ctl reload` brings a new IVR prompt, a new queue and a revoked
//! agent, then a broken file. No call fails; new calls get the new config; the broken file is
//! refused with its line and key, and the config before it runs on. And a renewed agent-link
//! certificate: new connections get it, a call on a connection made before goes on.
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use trunkgate::agent::identity::{Fingerprint, ServerTrust};
use trunkgate::agent::link;
use trunkgate_integration::agent::{agent_args, demo_args, AgentProcess};
use trunkgate_integration::audio::{self, best_match};
use trunkgate_integration::gateway::extra_agent;
use trunkgate_integration::{ctl, Baresip, CtlRun, Gateway, Sipp, TestConfig, DEMO_CREDENTIAL};

/// How well a new caller's first seconds match `prompt`.
fn first_heard(gw: &Gateway, prompt: &str) -> f64 {
    let run = Baresip::new("probe")
        .dial(format!("sip:100@{}", gw.sip_udp()))
        .duration(Duration::from_secs(4))
        .run();
    assert!(run.call_established(), "{}", run.log);
    let reference = audio::prompt(prompt);
    let head = reference
        .between(Duration::ZERO, Duration::from_secs(1))
        .to_vec();
    best_match(&run.received_audio().samples, &head).map_or(0.0, |m| m.score)
}

#[test]
fn a_reload_under_load_changes_new_calls_only_and_a_broken_file_changes_nothing() {
    let gw = Gateway::start(
        &TestConfig {
            extra: extra_agent("bob"),
            ..TestConfig::default()
        }
        .to_toml(),
    );
    let original = std::fs::read_to_string(gw.config_path()).unwrap();
    let demo = AgentProcess::start(
        &demo_args(&gw, &["--hangup-after-ms", "8000", "--duration-secs", "60"]),
        DEMO_CREDENTIAL,
    );
    let bob = AgentProcess::start(
        &agent_args(&gw, "bob", &["--duration-secs", "60"]),
        DEMO_CREDENTIAL,
    );
    for agent in [&demo, &bob] {
        agent.expect(&["event=state", "state=available"], Duration::from_secs(10));
    }
    assert!(
        first_heard(&gw, "enter-digits") < 0.5,
        "not in the menu yet"
    );

    // Load: IVR calls (menu, 9, goodbye) and a caller who presses 0 and talks with an agent.
    let target = gw.sip_udp();
    let ivr_calls = std::thread::spawn(move || {
        Sipp::scenario("uac_dtmf9.xml")
            .target(target)
            .calls(16)
            .rate(2)
            .without_message_trace()
            .timeout(Duration::from_secs(60))
            .run()
    });
    let with_agent = std::thread::spawn(move || {
        Sipp::scenario("uac_queue0.xml")
            .target(target)
            .timeout(Duration::from_secs(60))
            .run()
    });
    gw.expect_line("bridged to agent", Duration::from_secs(10));

    // A new first prompt, a new queue, bob revoked.
    let changed = original
        .replace(
            r#"prompts = ["welcome", "main-menu", "agent-option"]"#,
            r#"prompts = ["enter-digits", "welcome", "main-menu", "agent-option"]"#,
        )
        .replace(
            "skills = [\"support\"]\n\n[queues.support]",
            "skills = [\"support\"]\n\n[queues.sales]\nskills = [\"support\"]\n\n[queues.support]",
        )
        + "revoked = true\n";
    assert_ne!(changed, original);
    std::fs::write(gw.config_path(), &changed).unwrap();
    let CtlRun {
        ok,
        stdout: out,
        stderr: err,
    } = ctl(gw.admin(), &["reload"]);
    assert!(ok, "reload failed: {err}");
    assert!(out.starts_with("reloaded "), "{out}");
    assert!(out.contains("2 queues"), "{out}");
    bob.expect(&["event=exit", "reason=revoked"], Duration::from_secs(10));
    let CtlRun { stdout: queues, .. } = ctl(gw.admin(), &["queues"]);
    assert!(queues.lines().any(|l| l.starts_with("sales ")), "{queues}");
    let heard = first_heard(&gw, "enter-digits");
    assert!(
        heard > 0.8,
        "a new call hears the new prompt first ({heard:.3})"
    );

    // A broken file: refused with file, line and key; the reloaded config runs on.
    let broken = changed.replace("[ivr.menus.main]\n", "[ivr.menus.main]\nbogus_key = 1\n");
    std::fs::write(gw.config_path(), &broken).unwrap();
    let CtlRun {
        ok, stderr: err, ..
    } = ctl(gw.admin(), &["reload"]);
    assert!(!ok, "a broken file is refused");
    let line = broken
        .lines()
        .position(|l| l.starts_with("bogus_key"))
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!("trunkgate.toml:{line}:")) && err.contains("bogus_key"),
        "{err}"
    );
    gw.expect_line("config reload refused", Duration::from_secs(5));
    assert!(
        first_heard(&gw, "enter-digits") > 0.8,
        "the good config runs on"
    );

    // No call failed.
    ivr_calls.join().unwrap().assert_success();
    with_agent.join().unwrap().assert_success();
    assert_eq!(gw.count_lines("gateway shutting down"), 0);
}

/// A new certificate and key at `dir`/link.pem and link.key, as a renewal leaves them; returns
/// the fingerprint agents pin.
fn renew_certificate(dir: &Path) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["trunkgate".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.join("link.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("link.key"), key.serialize_pem()).unwrap();
    Fingerprint::of(cert.der()).to_string()
}

/// Whether a QUIC handshake with the agent link succeeds for an agent pinning `pin`.
fn handshake(quic: SocketAddr, pin: &str) -> Result<(), String> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let trust = ServerTrust::Pinned(pin.parse().unwrap());
        let endpoint = link::client_endpoint(&trust, "127.0.0.1:0".parse().unwrap()).unwrap();
        let connecting = endpoint.connect(quic, "trunkgate").unwrap();
        let connection = tokio::time::timeout(Duration::from_secs(5), connecting)
            .await
            .map_err(|_| "no handshake within 5 s".to_string())?
            .map_err(|e| e.to_string())?;
        connection.close(0u32.into(), b"");
        Ok(())
    })
}

#[test]
fn a_renewed_agent_link_certificate_reaches_new_connections_and_calls_in_progress_go_on() {
    let certs = tempfile::tempdir().unwrap();
    let first = renew_certificate(certs.path());
    let files = format!(
        "state_dir = \"state\"\ncertificate = \"{0}/link.pem\"\nprivate_key = \"{0}/link.key\"\n",
        certs.path().display()
    );
    let config = TestConfig::default()
        .to_toml()
        .replacen("state_dir = \"state\"\n", &files, 1);
    let gw = Gateway::start(&config);
    assert_eq!(
        gw.fingerprint(),
        first,
        "the configured certificate is served"
    );
    // An agent on the first certificate takes a call that lasts across the renewal.
    let agent = AgentProcess::start(
        &demo_args(&gw, &["--hangup-after-ms", "6000", "--calls", "1"]),
        DEMO_CREDENTIAL,
    );
    agent.expect(&["event=state", "state=available"], Duration::from_secs(10));
    let target = gw.sip_udp();
    let call = std::thread::spawn(move || {
        Sipp::scenario("uac_queue0.xml")
            .target(target)
            .timeout(Duration::from_secs(60))
            .run()
    });
    agent.expect(&["event=answered"], Duration::from_secs(15));

    let second = renew_certificate(certs.path());
    let CtlRun { ok, stdout, stderr } = ctl(gw.admin(), &["reload"]);
    assert!(ok, "reload failed: {stderr}");
    assert!(
        stdout.contains(&format!(
            "agent-link certificate replaced: fingerprint={second}"
        )),
        "{stdout}"
    );
    handshake(gw.quic(), &second).expect("a new connection gets the renewed certificate");
    let refused = handshake(gw.quic(), &first).expect_err("the old certificate is gone");
    assert!(refused.contains("certificate"), "{refused}");

    // The call on the connection made before the renewal ends as its agent ends it.
    agent.expect(
        &["event=call_ended", "reason=agent_hung_up"],
        Duration::from_secs(15),
    );
    call.join().unwrap().assert_success();
    assert_eq!(gw.count_lines("agent connection lost"), 0);

    // Unchanged files change nothing; a broken one is refused and the renewed one stays.
    let CtlRun { ok, stdout, .. } = ctl(gw.admin(), &["reload"]);
    assert!(ok && !stdout.contains("certificate replaced"), "{stdout}");
    std::fs::write(certs.path().join("link.pem"), "not a certificate\n").unwrap();
    let CtlRun { ok, stderr, .. } = ctl(gw.admin(), &["reload"]);
    assert!(!ok, "a broken certificate is refused");
    assert!(
        stderr.contains("agent-link certificate") && stderr.contains("link.pem"),
        "{stderr}"
    );
    handshake(gw.quic(), &second).expect("the renewed certificate is still served");
}

#[test]
fn the_log_level_comes_from_the_config_and_a_reload_turns_it_down_and_up() {
    let gw = Gateway::start(
        &TestConfig {
            ring_ms: 5000,
            ..TestConfig::default()
        }
        .to_toml(),
    );
    let original = std::fs::read_to_string(gw.config_path()).unwrap();
    let with_level = |level: &str| {
        let text = original.replacen(
            "drain_timeout_ms = 0\n",
            &format!("drain_timeout_ms = 0\nlog_level = \"{level}\"\n"),
            1,
        );
        assert_ne!(text, original);
        std::fs::write(gw.config_path(), text).unwrap();
        ctl(gw.admin(), &["reload"])
    };
    let call = || {
        Sipp::scenario("uac_cancel.xml")
            .target(gw.sip_udp())
            .timeout(Duration::from_secs(20))
            .run()
            .assert_success();
    };
    let arrived = |id: u32| {
        let needle = format!("call arrived call={id} ");
        move |l: &str| l.contains(&needle)
    };
    call();
    gw.wait_for_line(Duration::from_secs(5), arrived(1))
        .expect("info is the default level");

    let run = with_level("warn");
    assert!(
        run.ok && run.stdout.contains("log level now warn"),
        "{run:?}"
    );
    call();
    let run = with_level("info,trunkgate::sip=debug");
    assert!(run.ok, "{run:?}");
    call();
    // Call 3's arrival is logged; call 2's, which the log would have shown first, is not.
    gw.wait_for_line(Duration::from_secs(5), arrived(3))
        .expect("info again after the second reload");
    assert!(gw.wait_for_line(Duration::ZERO, arrived(2)).is_none());

    // A misspelt level is refused with its line and key, and info stays.
    let run = with_level("inof");
    assert!(!run.ok, "{run:?}");
    assert!(
        run.stderr.contains("log_level") && run.stderr.contains("\"inof\" is not a level"),
        "{}",
        run.stderr
    );
}
