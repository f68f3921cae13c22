//! The agent desk page in headless Chromium (loopback only, with the resolver guard): served by
//! the gateway, it reaches the agent endpoint over WebTransport with the short-lived
//! certificate's hash, shows a refused login's reason, logs in, goes available, is offered a
//! real caller's call, accepts it, and hangs up.
use std::time::Duration;

use trunkgate_integration::browser::Browser;
use trunkgate_integration::{Baresip, Gateway, TestConfig, DEMO_CREDENTIAL};

const WAIT: Duration = Duration::from_secs(15);

fn log_in(browser: &Browser, agent: &str, credential: &str) {
    browser.run(&format!(
        "document.getElementById('agent').value = {agent:?};
         document.getElementById('credential').value = {credential:?};
         document.getElementById('login').click();"
    ));
}

fn click(browser: &Browser, id: &str) {
    browser.run(&format!("document.getElementById({id:?}).click();"));
}

#[test]
fn the_desk_page_logs_in_over_webtransport_and_takes_a_call() {
    let gw = Gateway::start(
        &TestConfig {
            route: "queue:support".into(),
            desk: true,
            ..TestConfig::default()
        }
        .to_toml(),
    );
    let served = gw.expect_line("agent desk: page served", Duration::from_secs(5));
    let url = served
        .split_whitespace()
        .find_map(|w| w.strip_prefix("url="))
        .expect("the page's address")
        .to_string();
    let browser = Browser::start(None);
    browser.open(&url);

    log_in(&browser, "demo", "not-the-credential");
    let refused = browser.wait_for("return window.desk.refused && window.desk.error;", WAIT);
    assert!(
        refused.as_str().unwrap().contains("bad_credential"),
        "{refused}"
    );
    let shown = browser.run("return document.getElementById('message').textContent;");
    assert_eq!(shown, refused, "the reason is on the page");

    log_in(&browser, "demo", DEMO_CREDENTIAL);
    browser.wait_for("return window.desk.state === 'away';", WAIT);
    gw.expect_line("agent logged in", Duration::from_secs(5));
    click(&browser, "available");
    browser.wait_for("return window.desk.state === 'available';", WAIT);

    let target = gw.sip_udp();
    let caller = std::thread::spawn(move || {
        Baresip::new("caller")
            .dial(format!("sip:100@{target}"))
            .duration(Duration::from_secs(6))
            .run()
    });
    let offer = browser.wait_for("return window.desk.offer;", WAIT);
    assert_eq!(offer["queue"], "support", "{offer}");
    assert!(browser
        .run("return !document.getElementById('offer').hidden;")
        .as_bool()
        .unwrap());
    click(&browser, "accept");
    browser.wait_for(
        "return window.desk.call !== null && window.desk.state === 'talking';",
        WAIT,
    );
    gw.expect_line("bridged to agent", Duration::from_secs(5));
    click(&browser, "hangup");
    browser.wait_for(
        "return window.desk.call === null && window.desk.state === 'wrap_up';",
        WAIT,
    );
    let caller = caller.join().unwrap();
    assert!(caller.call_established(), "{}", caller.log);
}
