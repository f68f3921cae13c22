//! The agent desk page in a [`Browser`]: a gateway that serves it, logging in, clicking, taking
//! a call from a real softphone, and what the page's speaker played.
use std::time::Duration;

use crate::audio::Audio;
use trunkgate::media::resample::to_rate;

use crate::browser::{decode_base64, encode_base64, Browser};
use crate::{line_word, Baresip, BaresipRun, Gateway, TestConfig, DEMO_CREDENTIAL};

pub const WAIT: Duration = Duration::from_secs(15);

/// A gateway routing its trunk to queue `support` and serving the desk, with `config`'s other
/// settings; and the desk page's address.
pub fn desk_gateway(config: TestConfig) -> (Gateway, String) {
    let gw = Gateway::start(
        &TestConfig {
            route: "queue:support".into(),
            desk: true,
            ..config
        }
        .to_toml(),
    );
    let served = gw.expect_line("agent desk: page served", Duration::from_secs(5));
    let page = line_word(&served, "url")
        .map(str::to_string)
        .expect("the page's address");
    (gw, page)
}

/// Fills the login form and clicks "Log in" as a person would: the click is the user gesture
/// that lets the page start its audio.
pub fn log_in(browser: &Browser, agent: &str, credential: &str) {
    browser.run(&format!(
        "document.getElementById('agent').value = {agent:?};
         document.getElementById('credential').value = {credential:?};"
    ));
    browser.click("#login");
}

pub fn click(browser: &Browser, id: &str) {
    browser.run(&format!("document.getElementById({id:?}).click();"));
}

/// Logs `agent` in on the page and makes it available.
pub fn ready(browser: &Browser, agent: &str) {
    log_in(browser, agent, DEMO_CREDENTIAL);
    browser.wait_for("return window.desk.state === 'away';", WAIT);
    click(browser, "available");
    browser.wait_for("return window.desk.state === 'available';", WAIT);
}

/// Starts `caller` dialling the queue and waits until the desk shows the offer.
pub fn dial(
    browser: &Browser,
    gw: &Gateway,
    caller: Baresip,
) -> std::thread::JoinHandle<BaresipRun> {
    let target = gw.sip_udp();
    let caller = std::thread::spawn(move || caller.dial(format!("sip:100@{target}")).run());
    let offer = browser.wait_for("return window.desk.offer;", WAIT);
    assert_eq!(offer["queue"], "support", "{offer}");
    assert!(offer["waited_ms"].is_u64(), "the caller's wait: {offer}");
    assert!(browser
        .run("return !document.getElementById('offer').hidden;")
        .as_bool()
        .unwrap());
    caller
}

/// Accepts the offer on the page and waits until the call is up.
pub fn accept(browser: &Browser) {
    click(browser, "accept");
    browser.wait_for(
        "return window.desk.call !== null && window.desk.state === 'talking';",
        WAIT,
    );
}

/// [`dial`], then [`accept`].
pub fn call_and_accept(
    browser: &Browser,
    gw: &Gateway,
    caller: Baresip,
) -> std::thread::JoinHandle<BaresipRun> {
    let caller = dial(browser, gw, caller);
    accept(browser);
    caller
}

/// Turns the browser's echo cancellation, noise suppression and gain control off (before
/// logging in): they reshape a voice, which a test comparing it with its source would count
/// against the call.
pub fn without_voice_processing(browser: &Browser) {
    browser.run("document.getElementById('voice-processing').checked = false;");
}

/// Writes a PNG of the page as `NAME.png` under `target/desk-screenshots/`, and under
/// `docs/desk/` too with `TRUNKGATE_UPDATE_SCREENSHOTS=1` (how the README's pictures are made).
pub fn screenshot(browser: &Browser, name: &str) {
    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let mut dirs = vec![crate::repo_root().join("target/desk-screenshots")];
    if std::env::var_os("TRUNKGATE_UPDATE_SCREENSHOTS").is_some() {
        dirs.push(crate::repo_root().join("docs/desk"));
    }
    for dir in dirs {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
    }
}

/// The page sends `said` (any rate) instead of its microphone from now on, once; then the
/// microphone again. The fake microphone loops its file from whenever the browser started, so
/// a test that scores what the caller heard against what was said has the page say it once,
/// at a moment it knows.
pub fn say(browser: &Browser, said: &Audio) {
    let pcm: Vec<u8> = to_rate(&said.samples, said.rate, 48_000)
        .iter()
        .flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes())
        .collect();
    browser.run(&format!(
        "window.desk.media.say('{}');",
        encode_base64(&pcm)
    ));
}

/// From now on the page keeps what its speaker plays (after the jitter buffer).
pub fn record_heard(browser: &Browser) {
    browser.run("window.desk.media.recordHeard();");
}

/// What the page's speaker played since [`record_heard`] (or the last call of this), at 48 kHz.
pub fn heard(browser: &Browser) -> Audio {
    let encoded = browser.run("return window.desk.media.takeHeard();");
    let bytes = decode_base64(encoded.as_str().expect("base64 PCM"));
    Audio {
        rate: 48_000,
        samples: bytes
            .chunks_exact(2)
            .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
            .collect(),
    }
}
