//! The agent desk page in headless Chromium (loopback only, with the resolver guard): served by
//! the gateway, it reaches the agent endpoint over WebTransport with the short-lived
//! certificate's hash, shows a refused login's reason, logs in, goes available, is offered a
//! real caller's call, accepts it, sends keys from its keypad, holds and resumes the caller,
//! and hangs up. An offer it rejects or lets ring out goes to the next agent. A certificate
//! renewed mid-call keeps the call, and a page loaded after it connects.
use std::time::Duration;

use trunkgate_integration::agent::{agent_args, AgentProcess};
use trunkgate_integration::browser::Browser;
use trunkgate_integration::desk::{call_and_accept, click, desk_gateway, log_in, ready, WAIT};
use trunkgate_integration::gateway::extra_agent;
use trunkgate_integration::{Baresip, TestConfig, DEMO_CREDENTIAL};

#[test]
fn the_desk_page_logs_in_over_webtransport_and_takes_a_call() {
    let (gw, page) = desk_gateway(TestConfig::default());
    let browser = Browser::start(None);
    browser.open(&page);

    log_in(&browser, "demo", "not-the-credential");
    let refused = browser.wait_for("return window.desk.refused && window.desk.error;", WAIT);
    assert!(
        refused.as_str().unwrap().contains("bad_credential"),
        "{refused}"
    );
    let shown = browser.run("return document.getElementById('message').textContent;");
    assert_eq!(shown, refused, "the reason is on the page");

    ready(&browser, "demo");
    gw.expect_line("agent logged in", Duration::from_secs(5));

    // A caller who talks 6 s and hangs up: the agent sends keys from the keypad and holds.
    let caller = call_and_accept(
        &browser,
        &gw,
        Baresip::new("caller").duration(Duration::from_secs(6)),
    );
    for key in ["4", "2", "#"] {
        browser.run(&format!(
            "document.querySelector('#keypad [data-key=\"{key}\"]').click();"
        ));
    }
    // Hold, shown once the gateway confirms it; then off again.
    click(&browser, "hold");
    browser.wait_for("return window.desk.call && window.desk.call.held;", WAIT);
    let held = gw.expect_line("agent hold call=", Duration::from_secs(5));
    assert!(held.contains("on=true"), "{held}");
    click(&browser, "hold");
    browser.wait_for("return window.desk.call && !window.desk.call.held;", WAIT);
    browser.wait_for(
        "return window.desk.call === null && window.desk.state === 'wrap_up';",
        WAIT,
    );
    // The wrap-up counts down from the queue's 5 s.
    let left = browser.run(
        "return !document.getElementById('wrap-up').hidden \
         && document.getElementById('wrap-up-left').textContent;",
    );
    assert!(
        ["0:05", "0:04", "0:03"].contains(&left.as_str().unwrap_or_default()),
        "wrap-up countdown shown: {left}"
    );
    let caller = caller.join().unwrap();
    assert!(caller.call_established(), "{}", caller.log);
    assert_eq!(
        caller.received_digits(),
        "42#",
        "each key once, in order: {}",
        caller.log
    );

    // The queue's wrap-up (5 s) over, a second caller; this time the agent hangs up.
    browser.wait_for("return window.desk.state === 'available';", WAIT);
    let caller = call_and_accept(
        &browser,
        &gw,
        Baresip::new("caller").duration(Duration::from_secs(8)),
    );
    click(&browser, "hangup");
    browser.wait_for(
        "return window.desk.call === null && window.desk.state === 'wrap_up';",
        WAIT,
    );
    let caller = caller.join().unwrap();
    assert!(caller.call_established(), "{}", caller.log);

    // Logging out ends the session at once (no grace period) and gives the microphone back.
    click(&browser, "logout");
    let over = gw.expect_line("agent session over", WAIT);
    assert!(over.contains("reason=Logout"), "{over}");
    browser.wait_for(
        "return !document.getElementById('login-form').hidden && window.desk.media === null;",
        WAIT,
    );
}

/// The hash `desk/config` gives pages now.
fn served_hash(page: &str) -> String {
    let config: serde_json::Value = serde_json::from_str(
        &ureq::get(&format!("{page}desk/config"))
            .call()
            .expect("desk/config")
            .into_string()
            .unwrap(),
    )
    .unwrap();
    config["hashes"][0].as_str().expect("a hash").to_string()
}

#[test]
fn a_desk_certificate_renewed_during_a_call_keeps_the_call_and_new_pages_connect() {
    let (gw, page) = desk_gateway(TestConfig {
        extra: extra_agent("demo-2"),
        ..TestConfig::default()
    });
    let before = served_hash(&page);
    let first = Browser::start(None);
    first.open(&page);
    ready(&first, "demo");
    let caller = call_and_accept(
        &first,
        &gw,
        Baresip::new("caller").duration(Duration::from_secs(8)),
    );

    let renewed = trunkgate_integration::ctl(gw.admin(), &["renew-desk-certificate"]);
    assert!(renewed.ok, "{}", renewed.stderr);
    let after = served_hash(&page);
    assert_ne!(after, before);
    assert!(renewed.stdout.contains(&after), "{}", renewed.stdout);

    // A page loaded now connects with the new certificate…
    let second = Browser::start(None);
    second.open(&page);
    log_in(&second, "demo-2", DEMO_CREDENTIAL);
    second.wait_for("return window.desk.state === 'away';", WAIT);
    // …and the call on the first goes on until the caller hangs up.
    first.wait_for(
        "return window.desk.call === null && window.desk.state === 'wrap_up';",
        WAIT,
    );
    let caller = caller.join().unwrap();
    assert!(caller.call_established(), "{}", caller.log);
    assert!(
        !gw.log_lines()
            .iter()
            .any(|l| l.contains("agent connection lost")),
        "no agent lost its connection"
    );
    assert!(first.run("return window.desk.error;").is_null());
}

#[test]
fn an_offer_the_desk_rejects_or_lets_ring_out_goes_to_the_next_agent() {
    let (gw, page) = desk_gateway(TestConfig {
        queue_ring_timeout_ms: 3_000,
        extra: extra_agent("demo-2"),
        ..TestConfig::default()
    });
    let browser = Browser::start(None);
    browser.open(&page);
    ready(&browser, "demo");
    // A CLI agent that takes one call, talks a second and leaves.
    let other_agent = || {
        let args = agent_args(
            &gw,
            "demo-2",
            &["--hangup-after-ms", "1000", "--calls", "1"],
        );
        AgentProcess::start(&args, DEMO_CREDENTIAL)
    };
    let dial = || {
        let target = gw.sip_udp();
        std::thread::spawn(move || {
            Baresip::new("caller")
                .dial(format!("sip:100@{target}"))
                .duration(Duration::from_secs(8))
                .run()
        })
    };

    // Rejected: the call goes to the agent who logs in next, not back to the desk.
    let first = dial();
    browser.wait_for("return window.desk.offer;", WAIT);
    let mut other = other_agent();
    other.expect(&["event=welcome"], WAIT);
    click(&browser, "reject");
    other.expect(&["event=answered"], WAIT);
    assert_eq!(
        browser.run("return window.desk.offer;"),
        serde_json::Value::Null
    );
    assert_eq!(browser.run("return window.desk.state;"), "available");
    assert!(other.wait_exit(WAIT).is_some(), "it took its one call");

    // Unanswered for the queue's 3 s: the offer is withdrawn, the desk set away, and the
    // call goes to the next agent.
    let second = dial();
    browser.wait_for("return window.desk.offer;", WAIT);
    browser.wait_for(
        "return window.desk.offer === null && window.desk.state === 'away';",
        WAIT,
    );
    let other = other_agent();
    other.expect(&["event=answered"], WAIT);
    for caller in [first, second] {
        let caller = caller.join().unwrap();
        assert!(caller.call_established(), "{}", caller.log);
    }
}

#[test]
fn with_a_configured_certificate_the_desk_is_served_over_https_from_an_organisations_ca() {
    // An organisation's CA, and a certificate from it for the gateway's address.
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let chain = dir.path().join("gateway.pem");
    std::fs::write(&chain, cert.pem() + &ca.pem()).unwrap();
    let private_key = dir.path().join("gateway.key");
    std::fs::write(&private_key, key.serialize_pem()).unwrap();

    let (_gw, page) = desk_gateway(TestConfig {
        agents_extra: format!(
            "certificate = {:?}\nprivate_key = {:?}",
            chain.display().to_string(),
            private_key.display().to_string()
        ),
        ..TestConfig::default()
    });
    assert!(page.starts_with("https://"), "{page}");
    // A browser that trusts the CA loads the page over HTTPS: a secure context, so it may use
    // WebTransport (with the short-lived certificate's hash) and the microphone.
    let browser = Browser::start_trusting(None, Some(&ca_file));
    browser.open(&page);
    assert_eq!(browser.run("return window.isSecureContext;"), true);
    ready(&browser, "demo");
}

#[test]
fn the_desk_logs_in_and_takes_a_call_in_firefox_too() {
    let (gw, page) = desk_gateway(TestConfig::default());
    let browser = Browser::firefox();
    browser.open(&page);
    ready(&browser, "demo");
    let caller = call_and_accept(
        &browser,
        &gw,
        Baresip::new("caller").duration(Duration::from_secs(5)),
    );
    browser.click("#keypad [data-key='7']");
    // The caller hangs up (keys sent just before an agent's own hang-up die with the call).
    browser.wait_for(
        "return window.desk.call === null && window.desk.state === 'wrap_up';",
        WAIT,
    );
    let caller = caller.join().unwrap();
    assert!(caller.call_established(), "{}", caller.log);
    assert_eq!(caller.received_digits(), "7", "{}", caller.log);
}
