//! The desk page's audio in headless Chromium, its fake microphone playing a WAV: a real caller
//! hears what the browser says and the page's speaker plays what the caller says, through
//! WebCodecs Opus, RTP in WebTransport datagrams and the page's jitter buffer; a held caller
//! hears music; the same works in Firefox. A page whose network goes dark (the impairment
//! relay) reconnects by itself and gets its call back, the caller hearing music meanwhile. On a
//! lossy, jittery link both directions still sound good (PESQ-NB), each side rebuilding lost
//! frames from the copies the other sends. The test also takes the screenshots of the page's
//! main states for docs/.
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use trunkgate::media::resample::to_rate;
use trunkgate_integration::audio::{
    self, best_match, longest_tone_gap, tone_energy_ratio, Audio, TELEPHONY_RATE,
};
use trunkgate_integration::browser::Browser;
use trunkgate_integration::desk::{
    accept, call_and_accept, click, desk_gateway, dial, heard, ready, record_heard, say,
    screenshot, without_voice_processing, WAIT,
};
use trunkgate_integration::ports::free_udp_port;
use trunkgate_integration::quality::{self, conditions, Condition, AGENT_SAYS, CALLER_SAYS};
use trunkgate_integration::relay::{
    BurstLoss, Direction, Impairment, Relay, RelayConfig, RelayStats,
};
use trunkgate_integration::{line_field, prompt_path, Baresip, TestConfig};

/// Waits until the page has received `packets` of the call's audio (50 a second).
fn talk_until(browser: &Browser, packets: u64) {
    browser.wait_for(
        &format!("const q = window.desk.quality; return q !== null && q.received >= {packets};"),
        WAIT,
    );
}

/// `prompt` at 48 kHz, the rate the page plays at. Comparing there rather than at 8 kHz keeps
/// the resamplers' fractional-sample delays from counting as distortion.
fn prompt_at_48k(name: &str) -> Audio {
    let said = audio::prompt(name);
    Audio {
        rate: 48_000,
        samples: to_rate(&said.samples, said.rate, 48_000),
    }
}

/// How well each phrase of `said` is found anywhere in `recording` (its best match, weighted
/// by length; 1.0 = identical). The fake microphone loops its file from whenever the browser
/// started, so a call holds the prompt's phrases in any order.
fn phrases_heard(recording: &Audio, said: &Audio) -> f64 {
    let phrases = audio::phrases(said);
    let total: usize = phrases.iter().map(|(s, e)| e - s).sum();
    phrases
        .iter()
        .map(|&(s, e)| {
            let score =
                best_match(&recording.samples, &said.samples[s..e]).map_or(0.0, |m| m.score);
            score * (e - s) as f64
        })
        .sum::<f64>()
        / total.max(1) as f64
}

/// The caller speaks from the moment the gateway answers (into the queue), so its prompt
/// ("enter-digits") starts after a pause long enough for the desk to accept the call.
fn speech_after_a_pause(dir: &Path) -> PathBuf {
    let said = audio::prompt("enter-digits");
    let mut speech = Audio::silence(said.rate, Duration::from_secs(2));
    speech.extend(&said);
    let path = dir.join("caller.wav");
    audio::write_wav_i16(&path, &speech).unwrap();
    path
}

fn music_heard(heard: &Audio) -> f64 {
    let moh = audio::prompt("moh");
    let music = moh.between(Duration::ZERO, Duration::from_millis(1500));
    best_match(&heard.samples, music).map_or(0.0, |m| m.score)
}

#[test]
fn a_caller_and_a_desk_agent_hear_each_other_and_hold_plays_music() {
    let (gw, page) = desk_gateway(TestConfig::default());
    let browser = Browser::start(Some(&prompt_path("main-menu")));
    browser.open(&page);
    screenshot(&browser, "logged-out");
    without_voice_processing(&browser);
    ready(&browser, "demo");
    screenshot(&browser, "available");
    record_heard(&browser);

    let dir = tempfile::tempdir().unwrap();
    let caller = Baresip::new("caller")
        .source_wav(speech_after_a_pause(dir.path()))
        .duration(Duration::from_secs(14));
    let caller = dial(&browser, &gw, caller);
    screenshot(&browser, "offered");
    accept(&browser);
    talk_until(&browser, 350);
    // The page shows the call's quality: its round trip too (the gateway answers its pings).
    browser.wait_for(
        "return window.desk.quality && window.desk.quality.rttMs !== null;",
        WAIT,
    );
    // The caller's prompt is over by now; held until the caller hangs up (the page's test
    // takes a call off hold).
    let at_hold = heard(&browser);
    println!(
        "stats at hold {}",
        browser.run("return JSON.stringify(window.desk.media.lastStats);")
    );
    click(&browser, "hold");
    browser.wait_for("return window.desk.call && window.desk.call.held;", WAIT);
    browser.wait_for("return window.desk.call === null;", WAIT);
    let caller = caller.join().unwrap();
    assert!(caller.call_established(), "{}", caller.log);

    let to_desk = phrases_heard(&at_hold, &prompt_at_48k("enter-digits"));
    // At 48 kHz too: the browser's microphone path (the WAV at 8 kHz played at 44.1 kHz, taken
    // at 48 kHz) shifts the voice by a fraction of an 8 kHz sample, a different one each run.
    let at_caller = caller.received_audio();
    let at_caller = Audio {
        rate: 48_000,
        samples: to_rate(&at_caller.samples, at_caller.rate, 48_000),
    };
    let to_caller = phrases_heard(&at_caller, &prompt_at_48k("main-menu"));
    let music = music_heard(&caller.received_audio());
    println!(
        "correlation desk → caller {to_caller:.3}, caller → desk {to_desk:.3}, music on hold {music:.3}"
    );
    // Runs score either about 0.99 or 0.82–0.86, all phrases alike, with nothing lost or
    // concealed anywhere: the browser's own rate conversion between its fake 44.1 kHz
    // microphone and the 48 kHz AudioContext, we think (seen: 0.818 caller → desk with no
    // packet lost, running alone). 0.8 is what the CLI agent must pass, both ways.
    assert!(to_caller > 0.8, "desk → caller correlation {to_caller:.3}");
    assert!(to_desk > 0.8, "caller → desk correlation {to_desk:.3}");
    assert!(music > 0.8, "the held caller heard music: {music:.3}");
    let quality = gw.expect_line("call quality as the agent heard it", WAIT);
    assert!(quality.contains("packets_received="), "{quality}");
}

#[test]
fn the_desk_takes_a_call_with_its_audio_in_firefox_too() {
    // Firefox's fake microphone plays a 1 kHz tone.
    const FIREFOX_FAKE_HZ: f64 = 1_000.0;
    let (gw, page) = desk_gateway(TestConfig::default());
    let browser = Browser::firefox();
    browser.open(&page);
    without_voice_processing(&browser);
    ready(&browser, "demo");
    record_heard(&browser);
    let dir = tempfile::tempdir().unwrap();
    let caller = Baresip::new("caller")
        .source_wav(speech_after_a_pause(dir.path()))
        .duration(Duration::from_secs(9));
    let caller = call_and_accept(&browser, &gw, caller);
    talk_until(&browser, 100);
    browser.wait_for("return window.desk.call === null;", WAIT);
    let caller = caller.join().unwrap();
    assert!(caller.call_established(), "{}", caller.log);
    let to_desk = phrases_heard(&heard(&browser), &prompt_at_48k("enter-digits"));
    let at_caller = caller.received_audio();
    let middle = &at_caller.samples[at_caller.samples.len() / 3..at_caller.samples.len() * 2 / 3];
    // In 100 ms windows: the fake tone is a hertz or two off 1 kHz, which a longer window
    // would resolve past.
    let windows: Vec<f64> = middle
        .chunks_exact(at_caller.rate as usize / 10)
        .map(|w| tone_energy_ratio(w, at_caller.rate, FIREFOX_FAKE_HZ))
        .collect();
    let tone = windows.iter().sum::<f64>() / windows.len().max(1) as f64;
    println!(
        "firefox: caller → desk correlation {to_desk:.3}, desk's tone at the caller {tone:.2}"
    );
    assert!(to_desk > 0.8, "caller → desk correlation {to_desk:.3}");
    assert!(
        tone > 0.5,
        "the caller hears Firefox's microphone: {tone:.2}"
    );
}

#[test]
fn a_desk_whose_network_drops_reconnects_and_gets_its_call_back() {
    // Not a note the music on hold plays much of.
    const DESK_HZ: f64 = 1_900.0;
    let dir = tempfile::tempdir().unwrap();
    let relay_port = free_udp_port();
    let (gw, page) = desk_gateway(TestConfig {
        desk_public_port: Some(relay_port),
        ..TestConfig::default()
    });
    let relay = Relay::start(RelayConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, relay_port)),
        ..RelayConfig::new(gw.quic())
    })
    .unwrap();
    let browser = Browser::start(Some(&audio::tone_file(dir.path(), "desk.wav", DESK_HZ)));
    browser.open(&page);
    ready(&browser, "demo");
    let caller = call_and_accept(
        &browser,
        &gw,
        Baresip::new("caller").duration(Duration::from_secs(30)),
    );
    talk_until(&browser, 100);
    // A screenshot holds up the page for a moment (its main thread also moves the audio): here
    // that is harmless, the test measures a far longer gap.
    screenshot(&browser, "in-call");

    // Dark until the gateway gives up on the connection (its idle timeout), then back.
    let dark = Instant::now();
    relay.blackhole(true);
    gw.expect_line("agent connection lost", WAIT);
    browser.wait_for("return window.desk.reconnecting;", WAIT);
    let shown = browser.run("return document.getElementById('notice').textContent;");
    assert!(
        shown.as_str().unwrap().contains("reconnect"),
        "the page says what is happening: {shown}"
    );
    relay.blackhole(false);
    let outage = dark.elapsed();
    browser.wait_for(
        "return !window.desk.reconnecting && window.desk.call !== null \
         && window.desk.messages.includes('resumed');",
        WAIT,
    );
    let resumed_after = dark.elapsed() - outage;
    let shown = browser.run("return document.getElementById('notice').textContent;");
    assert!(shown.as_str().unwrap().contains("call is back"), "{shown}");
    // Talk on for a while on the new connection, then the caller hangs up.
    browser.wait_for("return window.desk.call === null;", Duration::from_secs(30));
    let caller = caller.join().unwrap();
    assert!(caller.call_established(), "{}", caller.log);
    assert_eq!(gw.count_lines("did not come back"), 0, "never requeued");

    let heard = caller.received_audio();
    let music = music_heard(&heard);
    assert!(music > 0.8, "music on hold during the outage {music:.3}");
    let unheard = longest_tone_gap(&heard.samples, heard.rate, DESK_HZ).expect("the desk heard");
    println!(
        "desk resume: network dark {} ms; desk not heard for {} ms; call back {} ms and audio \
         back ≤ {} ms after the network came back",
        outage.as_millis(),
        unheard.as_millis(),
        resumed_after.as_millis(),
        unheard.saturating_sub(outage).as_millis()
    );
    assert!(
        unheard < outage + Duration::from_secs(3),
        "the desk was heard again only {:?} after the network came back",
        unheard.saturating_sub(outage)
    );
    // The gap is measured up to the last tone heard: the tone must be there at the end.
    let last_seconds = &heard.samples[heard.samples.len() - 2 * heard.rate as usize..];
    let tone = tone_energy_ratio(last_seconds, heard.rate, DESK_HZ);
    assert!(
        tone > 0.5,
        "the desk is heard at the end of the call: {tone:.2}"
    );
}

/// One call between a softphone caller and a desk whose link the relay impairs both ways as
/// `condition` says, and what each side heard and counted.
struct DeskCall {
    /// PESQ-NB of what the page played against what the caller said, and the other way.
    to_desk: f64,
    to_caller: f64,
    /// The page's playout counters at the call's end.
    page: serde_json::Value,
    /// The gateway's `call ended` line, with its receiver's counters for the desk's audio.
    gateway: String,
    relayed: RelayStats,
}

fn desk_call_on(condition: &Condition, seed: u64) -> DeskCall {
    let dir = tempfile::tempdir().unwrap();
    let relay_port = free_udp_port();
    let (gw, page) = desk_gateway(TestConfig {
        desk_public_port: Some(relay_port),
        ..TestConfig::default()
    });
    let relay = Relay::start(RelayConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, relay_port)),
        seed,
        ..RelayConfig::new(gw.quic())
    })
    .unwrap();
    for direction in [Direction::Up, Direction::Down] {
        relay
            .set_impairment(direction, condition.impairment.clone())
            .unwrap();
    }
    // A silent microphone: the page says its prompt once, when the call is up.
    let microphone = dir.path().join("microphone.wav");
    audio::write_wav_i16(&microphone, &Audio::silence(8_000, Duration::from_secs(1))).unwrap();
    let browser = Browser::start(Some(&microphone));
    browser.open(&page);
    without_voice_processing(&browser);
    ready(&browser, "demo");
    record_heard(&browser);
    let caller = Baresip::new("caller")
        .source_wav(speech_after_a_pause(dir.path()))
        .duration(Duration::from_secs(14));
    let caller = call_and_accept(&browser, &gw, caller);
    say(&browser, &audio::prompt(AGENT_SAYS));
    browser.wait_for("return window.desk.call === null;", Duration::from_secs(30));
    let caller = caller.join().unwrap();
    assert!(caller.call_established(), "{}", caller.log);
    // The page's counts for the call's stream, kept as its buffer starts afresh.
    browser.wait_for("return window.desk.media.endedStats !== null;", WAIT);
    let page_stats = browser.run("return JSON.stringify(window.desk.media.endedStats);");
    let page_stats = serde_json::from_str(page_stats.as_str().unwrap()).unwrap();

    let caller_heard = dir.path().join("caller-heard.wav");
    audio::write_wav_i16(&caller_heard, &caller.received_audio()).unwrap();
    let desk_heard = dir.path().join("desk-heard.wav");
    let at_desk = heard(&browser);
    audio::write_wav_i16(
        &desk_heard,
        &Audio {
            rate: TELEPHONY_RATE,
            samples: to_rate(&at_desk.samples, at_desk.rate, TELEPHONY_RATE),
        },
    )
    .unwrap();
    // TRUNKGATE_KEEP_AUDIO=/tmp/x keeps what each side heard as /tmp/x-{seed}-caller.wav and …-desk.wav.
    if let Ok(keep) = std::env::var("TRUNKGATE_KEEP_AUDIO") {
        std::fs::copy(&caller_heard, format!("{keep}-{seed}-caller.wav")).unwrap();
        std::fs::copy(&desk_heard, format!("{keep}-{seed}-desk.wav")).unwrap();
    }
    let call = DeskCall {
        to_desk: quality::score(&desk_heard, CALLER_SAYS).unwrap(),
        to_caller: quality::score(&caller_heard, AGENT_SAYS).unwrap(),
        page: page_stats,
        gateway: gw.expect_line("call ended", WAIT),
        relayed: relay.stats(),
    };
    println!(
        "{} (seed {seed}): PESQ-NB caller → desk {:.2}, desk → caller {:.2}\n  page {}\n  \
         gateway {}\n  relay {:?}",
        condition.name, call.to_desk, call.to_caller, call.page, call.gateway, call.relayed
    );
    call
}

/// The desk on a home link that loses 3 % of its packets and jitters by ±30 ms, both ways (the
/// condition `quality.rs` holds the CLI agent to). The page and the gateway each report how
/// their audio arrives and ask for copies; each rebuilds lost frames from the copies the other
/// sends, and the page decodes in sequence order what the link reorders. Both listeners hear
/// the speech whole, scored with PESQ-NB.
#[test]
fn a_desk_on_a_lossy_jittery_home_link_rebuilds_what_is_lost_and_sounds_good_both_ways() {
    let condition = conditions()
        .into_iter()
        .find(|c| c.name.starts_with("3 % loss"))
        .expect("the home-link condition");
    let call = desk_call_on(&condition, 1);
    let relayed = &call.relayed;
    assert!(
        relayed.up.dropped > 5 && relayed.down.dropped > 5 && relayed.down.reordered > 50,
        "the link lost and reordered packets: {relayed:?}"
    );
    // Each receiver played frames rebuilt from copies.
    let recovered = call.page["recovered"].as_u64().expect("recovered");
    assert!(recovered > 0, "the page played copies");
    let gateway_red = line_field(&call.gateway, "agent_red").unwrap_or(0.0);
    assert!(gateway_red > 0.0, "the gateway played copies");
    assert!(
        call.to_desk >= PESQ_FLOOR,
        "caller → desk PESQ-NB {:.2}",
        call.to_desk
    );
    assert!(
        call.to_caller >= PESQ_FLOOR,
        "desk → caller PESQ-NB {:.2}",
        call.to_caller
    );
}

/// What the CLI agent must reach on this link (`quality.rs`). Measured on the desk with seeds
/// 1 and 2: caller → desk 3.88–3.90, desk → caller 3.64–3.68. A direction decoded out of order
/// or without its copies scored 1.4–2.8.
const PESQ_FLOOR: f64 = 3.0;

/// The page tells its agent when the network loses audio either way, beyond what copies can
/// rebuild, and when it is clean again (as the CLI agent is told: `agent_network.rs`).
#[test]
fn a_desk_agent_is_told_when_the_network_drops_audio_either_way_and_when_it_recovers() {
    let relay_port = free_udp_port();
    let (gw, page) = desk_gateway(TestConfig {
        desk_public_port: Some(relay_port),
        ..TestConfig::default()
    });
    let relay = Relay::start(RelayConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, relay_port)),
        ..RelayConfig::new(gw.quic())
    })
    .unwrap();
    let browser = Browser::start(None);
    browser.open(&page);
    ready(&browser, "demo");
    let caller = call_and_accept(
        &browser,
        &gw,
        // Long enough for the worst case of the waits below; the desk hangs up first.
        Baresip::new("caller").duration(Duration::from_secs(40)),
    );
    talk_until(&browser, 50);
    // Bursts of ten datagrams on average, a third of them lost: longer than any copy reaches.
    let dropouts = Impairment {
        burst_loss: Some(BurstLoss {
            enter_pct: 5.0,
            exit_pct: 10.0,
        }),
        ..Impairment::default()
    };
    let warning = |says: &str| {
        format!(
            "const w = document.getElementById('link-warning'); \
             return !w.hidden && w.textContent.includes('{says}');"
        )
    };
    let limit = Duration::from_secs(8);
    assert!(
        browser
            .run("return document.getElementById('link-warning').hidden;")
            .as_bool()
            .unwrap(),
        "no warning on a clean link"
    );

    // The desk's audio is lost on its way: only the gateway's reports can say so.
    let started = Instant::now();
    relay
        .set_impairment(Direction::Up, dropouts.clone())
        .unwrap();
    browser.wait_for(&warning("the caller missed"), limit);
    let told_after = started.elapsed();
    relay
        .set_impairment(Direction::Up, Impairment::default())
        .unwrap();
    // Ten seconds after the network is clean again the window holds no loss.
    let recovered = Instant::now();
    browser.wait_for(
        "return document.getElementById('link-warning').hidden;",
        Duration::from_secs(15),
    );
    let good_after = recovered.elapsed();
    // Now the caller's audio is lost on its way to the desk.
    relay.set_impairment(Direction::Down, dropouts).unwrap();
    browser.wait_for(&warning("you missed"), limit);
    relay
        .set_impairment(Direction::Down, Impairment::default())
        .unwrap();
    println!(
        "desk link warnings: poor {} ms after the uplink began to drop bursts, good {} ms \
         after it was clean",
        told_after.as_millis(),
        good_after.as_millis()
    );
    click(&browser, "hangup");
    let caller = caller.join().unwrap();
    assert!(caller.call_established(), "{}", caller.log);
}

/// Call quality on each of the quality harness's conditions, for the notes:
/// `cargo nextest run -p trunkgate-integration --test desk_audio --run-ignored only --no-capture
/// -E 'test(every_condition)'`.
#[test]
#[ignore = "a measurement, not a check"]
fn measure_the_desks_call_quality_on_every_condition() {
    // TRUNKGATE_CONDITION=bursts, say, runs the conditions whose name holds it.
    let only = std::env::var("TRUNKGATE_CONDITION").unwrap_or_default();
    for condition in conditions().into_iter().filter(|c| c.name.contains(&only)) {
        for seed in 1..=2 {
            desk_call_on(&condition, seed);
        }
    }
}

/// The closing note's numbers, run on demand:
/// `cargo nextest run -p trunkgate-integration --test desk_audio --run-ignored only --no-capture`.
/// The page runs its echo test (what it plays goes back out), so a caller's speech comes back
/// through the gateway, the browser's decoder, jitter buffer, encoder and the gateway again:
/// the round trip is twice the mouth-to-ear delay through the gateway to a desk, near enough.
/// The browser's CPU is its processes' own counters over the call, less the same time idle.
#[test]
#[ignore = "a measurement, not a check"]
fn measure_the_desks_cpu_and_round_trip() {
    const LEAD: Duration = Duration::from_secs(4);
    let dir = tempfile::tempdir().unwrap();
    let (gw, page) = desk_gateway(TestConfig::default());
    let browser = Browser::start(None);
    browser.open(&page);
    without_voice_processing(&browser);
    ready(&browser, "demo");
    browser.run("window.desk.media.echo(true);");

    let idle_from = (Instant::now(), browser.cpu_time());
    std::thread::sleep(Duration::from_secs(10)); // a measurement window, not a wait
    let idle =
        (browser.cpu_time() - idle_from.1).as_secs_f64() / idle_from.0.elapsed().as_secs_f64();

    // After LEAD of silence (time for the desk to answer), the caller plays BURSTS tone bursts
    // of 200 ms at 1 kHz, one every EVERY.
    const BURSTS: usize = 8;
    const EVERY: Duration = Duration::from_millis(1200);
    const TONE_HZ: f64 = 1_000.0;
    let rate = TELEPHONY_RATE;
    let mut source = Audio::silence(rate, LEAD);
    for _ in 0..BURSTS {
        source.extend(&Audio {
            rate,
            samples: audio::sine(rate as usize / 5, rate, TONE_HZ, 0.3),
        });
        source.extend(&Audio::silence(rate, EVERY - Duration::from_millis(200)));
    }
    source.extend(&Audio::silence(rate, Duration::from_secs(6)));
    let source_path = dir.path().join("said.wav");
    audio::write_wav_i16(&source_path, &source).unwrap();
    let caller = Baresip::new("caller")
        .source_wav(&source_path)
        .duration(Duration::from_secs(24));
    let caller = call_and_accept(&browser, &gw, caller);
    let call_from = (Instant::now(), browser.cpu_time());
    browser.wait_for("return window.desk.call === null;", Duration::from_secs(40));
    let in_call =
        (browser.cpu_time() - call_from.1).as_secs_f64() / call_from.0.elapsed().as_secs_f64();
    let caller = caller.join().unwrap();
    let heard = caller.received_audio();
    // Each burst's onset back at the caller: the first 5 ms with the tone clearly in it.
    let window = heard.rate as usize / 200;
    let mut trips: Vec<f64> = (0..BURSTS)
        .filter_map(|i| {
            let sent = LEAD + EVERY * i as u32;
            let from = (sent.as_secs_f64() * f64::from(heard.rate)) as usize;
            let to = (from + heard.rate as usize).min(heard.samples.len());
            (from..to).step_by(window).find_map(|at| {
                let chunk = &heard.samples[at..(at + window).min(heard.samples.len())];
                let loud = audio::rms(chunk) > 0.03;
                (loud && tone_energy_ratio(chunk, heard.rate, TONE_HZ) > 0.5)
                    .then(|| (at - from) as f64 / f64::from(heard.rate))
            })
        })
        .collect();
    assert!(trips.len() >= BURSTS / 2, "bursts heard back: {trips:?}");
    trips.sort_by(f64::total_cmp);
    let round_trip = trips[trips.len() / 2];
    println!(
        "desk measurement: browser CPU {:.1} ms per call-second ({:.1} in the call, {:.1} idle, \
         of one core); round trip caller → desk → caller {:.0} ms (median of {} tone bursts), mouth-to-ear \
         ≈ {:.0} ms",
        (in_call - idle) * 1000.0,
        in_call * 1000.0,
        idle * 1000.0,
        round_trip * 1000.0,
        trips.len(),
        round_trip * 500.0
    );
}
