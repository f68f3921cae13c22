//! The desk page's supervisor view in headless Chromium: a supervisor logs in on the page, the
//! wallboard shows the figures of a scripted branch (a caller who gives up, one answered), the
//! calls list offers each talking call, and monitoring from the page plays both the caller's
//! and the agent's speech on the page's speaker.
use std::time::Duration;

use trunkgate::media::resample::to_rate;
use trunkgate_integration::agent::AgentProcess;
use trunkgate_integration::audio::{self, best_match};
use trunkgate_integration::browser::Browser;
use trunkgate_integration::desk::{click, desk_gateway, heard, log_in, record_heard, WAIT};
use trunkgate_integration::gateway::DEMO_CREDENTIAL_HASH;
use trunkgate_integration::{Baresip, TestConfig, DEMO_CREDENTIAL};

const CALLER_SAYS: &str = "main-menu";
const AGENT_SAYS: &str = "enter-digits";

/// `name` at 48 kHz, the rate the page plays at.
fn at_48k(name: &str) -> Vec<f32> {
    let said = audio::prompt(name);
    to_rate(&said.samples, said.rate, 48_000)
}

fn cell(browser: &Browser, field: &str) -> String {
    browser
        .run(&format!(
            "const c = document.querySelector('#wallboard tr[data-queue=\"support\"] td[data-field=\"{field}\"]');
             return c ? c.textContent : null;"
        ))
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn the_supervisor_page_shows_the_wallboard_and_monitors_a_call() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, page) = desk_gateway(TestConfig {
        queue_wrap_up_ms: 0,
        extra: format!(
            "\n[[agent]]\nid = \"sam\"\ncredential_hash = {DEMO_CREDENTIAL_HASH:?}\nsupervises = [\"support\"]\n"
        ),
        ..TestConfig::default()
    });
    let browser = Browser::start(None);
    browser.open(&page);
    log_in(&browser, "sam", DEMO_CREDENTIAL);
    browser.wait_for("return window.desk.supervises.includes('support');", WAIT);
    assert!(browser
        .run("return !document.getElementById('supervisor').hidden;")
        .as_bool()
        .unwrap());
    browser.wait_for(
        "return document.querySelector('#wallboard tr[data-queue=\"support\"]') !== null;",
        WAIT,
    );

    // The script: a caller gives up after 3 s with nobody to answer…
    let target = gw.sip_udp();
    let early = Baresip::new("early")
        .dial(format!("sip:100@{target}"))
        .duration(Duration::from_secs(3))
        .run();
    assert!(early.call_established(), "{}", early.log);
    browser.wait_for(
        "return window.desk.wallboard.some((q) => q.queue === 'support' && q.abandoned === 1);",
        WAIT,
    );
    assert_eq!(cell(&browser, "abandon"), "100.0 %");
    assert_eq!(cell(&browser, "slday"), "0.0 %");
    assert_eq!(cell(&browser, "waiting"), "0");

    // …then one is answered by the agent client, each saying its prompt.
    let caller_speech = audio::repeated_prompt(dir.path(), CALLER_SAYS, 5);
    let caller = std::thread::spawn(move || {
        Baresip::new("caller")
            .dial(format!("sip:100@{target}"))
            .source_wav(&caller_speech)
            .duration(Duration::from_secs(20))
            .run()
    });
    let agent_speech = audio::repeated_prompt(dir.path(), AGENT_SAYS, 6);
    let mut agent =
        AgentProcess::interactive_with(&gw, &["--play", agent_speech.to_str().unwrap()]);
    agent.expect(&["event=offer"], Duration::from_secs(20));
    agent.type_line("a");
    agent.expect(&["event=answered"], WAIT);
    browser.wait_for(
        "return window.desk.wallboard.some((q) => q.queue === 'support' && q.answered === 1 && q.agents_in_call === 1);",
        WAIT,
    );
    assert_eq!(cell(&browser, "abandon"), "50.0 %");
    assert_eq!(cell(&browser, "slday"), "50.0 %");
    assert_eq!(cell(&browser, "incall"), "1");

    // Monitor from the page: its speaker plays both parties.
    browser.wait_for(
        "return document.getElementById('monitor-c2') !== null;",
        WAIT,
    );
    click(&browser, "monitor-c2");
    browser.wait_for("return window.desk.supervising?.mode === 'monitor';", WAIT);
    record_heard(&browser);
    // Long enough for both prompts to be said in full while the page listens, wherever in
    // their repetition it starts: the caller's comes every 5.5 s and lasts 4.5 s.
    std::thread::sleep(Duration::from_secs(11));
    let heard = heard(&browser);
    let score = |name: &str| best_match(&heard.samples, &at_48k(name)).map_or(0.0, |m| m.score);
    let (caller_score, agent_score) = (score(CALLER_SAYS), score(AGENT_SAYS));
    println!("the page heard the caller at {caller_score:.2}, the agent at {agent_score:.2}");
    assert!(
        caller_score > 0.5 && agent_score > 0.5,
        "both parties heard"
    );
    click(&browser, "leave");
    browser.wait_for("return window.desk.supervising === null;", WAIT);
    assert!(caller.join().unwrap().call_established());
    agent.stop();
}
