//! E1 calls through the whole gateway: libpri (the far end, `integration-tests/peers/pri_peer.c`)
//! on the software span of an `[[e1]]` in the daemon's config. A call from the network reaches
//! the IVR like a SIP call does: the caller hears the welcome prompt on the B-channel, presses
//! 9 in-band, hears goodbye and is hung up; the D-channel pcap the gateway wrote decodes in
//! tshark without a malformed packet.
use std::path::Path;
use std::time::Duration;

use trunkgate::media::g711::G711Law;
use trunkgate_integration::agent::{demo_args, AgentProcess};
use trunkgate_integration::audio::{self, best_match, sine, Audio};
use trunkgate_integration::outbound::DIAL_PLAN;
use trunkgate_integration::pri::{tshark_decode, PriPeer};
use trunkgate_integration::{config_for_tests, ctl, prompt_path, Gateway, DEMO_CREDENTIAL};

const WAIT: Duration = Duration::from_secs(20);

/// A gateway with one span, `signalling`, routing to the IVR, in `dir`.
fn gateway(dir: &Path, signalling: &str) -> Gateway {
    let extra = format!(
        "[[e1]]\nname = \"pri1\"\nsignalling = \"{signalling}\"\ndriver = \"socket\"\n\
         path = {}\nroute = \"ivr:main\"\npcap = {}\n",
        toml_path(&dir.join("span")),
        toml_path(&dir.join("d.pcap")),
    );
    Gateway::start(&config_for_tests(&extra))
}

fn toml_path(path: &Path) -> String {
    toml::Value::String(path.display().to_string()).to_string()
}

/// `silence_s` seconds of A-law silence, then the key `9` for 150 ms (852 Hz + 1477 Hz), then
/// silence: what the caller sends.
fn press_9_after(dir: &Path, silence_s: f64) -> std::path::PathBuf {
    let rate = 8000;
    let mut pcm = vec![0f32; (silence_s * f64::from(rate)) as usize];
    let low = sine(1200, rate, 852.0, 0.25);
    let high = sine(1200, rate, 1477.0, 0.25);
    pcm.extend(low.iter().zip(&high).map(|(a, b)| a + b));
    pcm.extend(vec![0f32; 4 * rate as usize]);
    let mut bytes = Vec::new();
    let samples: Vec<i16> = pcm.iter().map(|s| (s * 32767.0) as i16).collect();
    G711Law::Alaw.encode(&samples, &mut bytes);
    let path = dir.join("caller.alaw");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn read_alaw(path: &Path) -> Audio {
    let bytes = std::fs::read(path).unwrap();
    Audio {
        rate: 8000,
        samples: bytes
            .iter()
            .map(|&b| f32::from(G711Law::Alaw.decode_sample(b)) / 32768.0)
            .collect(),
    }
}

#[test]
fn a_call_from_the_e1_reaches_the_ivr_hears_it_presses_9_in_band_and_is_hung_up() {
    ivr_call("pri_cpe", "nt", 1);
}

#[test]
fn as_the_network_side_the_gateway_takes_a_pbxs_call_the_same_way() {
    ivr_call("pri_net", "cpe", 17);
}

/// libpri on `peer_side` calls the gateway (`signalling`) on `channel`; the IVR answers.
fn ivr_call(signalling: &str, peer_side: &str, channel: u8) {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path(), signalling);
    let channel_arg = channel.to_string();
    let play = press_9_after(dir.path(), 4.0);
    let record = dir.path().join("heard.alaw");
    let mut peer = PriPeer::start(
        &dir.path().join("span"),
        &[
            "--side",
            peer_side,
            "--call",
            "5551234",
            "--channel",
            &channel_arg,
            "--play",
            play.to_str().unwrap(),
            "--record",
            record.to_str().unwrap(),
            "--timeout-ms",
            "30000",
        ],
    );
    gw.expect_line("e1 d-channel up", WAIT);
    let offered = gw.expect_line("e1 call offered", WAIT);
    assert!(
        offered.contains(&format!("channel={channel} ")),
        "{offered}"
    );
    assert!(offered.contains("callee=5551234"), "{offered}");
    peer.wait_for("answer", WAIT);
    // Ops see the span up and the call on its channel.
    let spans = ctl(gw.admin(), &["spans"]);
    assert!(spans.ok, "{}", spans.stderr);
    let row = spans
        .stdout
        .lines()
        .find(|l| l.starts_with("pri1"))
        .unwrap_or_else(|| panic!("no span row:\n{}", spans.stdout));
    for word in [signalling, "up", &format!("b{channel}: ")] {
        assert!(row.contains(word), "{word} in {row}");
    }
    let metrics = gw.scrape();
    for sample in [
        r#"trunkgate_e1_dchannel_up{span="pri1"} 1"#,
        r#"trunkgate_e1_channels{span="pri1",state="busy"} 1"#,
        r#"trunkgate_e1_channels{span="pri1",state="idle"} 29"#,
    ] {
        assert!(metrics.contains(sample), "{sample}");
    }
    let hung_up = gw.expect_line("ivr hangs up", WAIT);
    assert!(
        hung_up.contains("digits=\"9\""),
        "one tone, one digit: {hung_up}"
    );
    // The gateway clears after goodbye: DISCONNECT with normal clearing.
    assert_eq!(peer.wait_for("hangup cause", WAIT), "hangup cause=16");
    peer.wait_for("done", WAIT);
    assert!(peer.wait_exit(WAIT).is_some_and(|s| s.success()));
    gw.expect_line("call ended", WAIT);
    let json = ctl(gw.admin(), &["spans", "--json"]).stdout;
    let spans: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(spans[0]["busy"], 0, "{json}");
    assert_eq!(
        spans[0]["calls"].as_array().map(Vec::len),
        Some(0),
        "{json}"
    );

    let heard = read_alaw(&record);
    let welcome = audio::prompt("welcome");
    let m = best_match(&heard.samples, &welcome.samples).expect("something was heard");
    assert!(
        m.score > 0.9,
        "welcome prompt correlation {:.3} (1.0 = identical)",
        m.score
    );
    let goodbye = audio::prompt("goodbye");
    let bye = best_match(&heard.samples, &goodbye.samples).expect("goodbye was heard");
    assert!(bye.score > 0.9, "goodbye correlation {:.3}", bye.score);
    assert!(bye.offset > m.offset, "goodbye after welcome");
    println!(
        "over the B-channel: welcome {:.3} at {:.2} s, goodbye {:.3} at {:.2} s",
        m.score,
        heard.time_at(m.offset),
        bye.score,
        heard.time_at(bye.offset)
    );

    let decoded = tshark_decode(&dir.path().join("d.pcap"));
    for message in ["SETUP", "CONNECT", "DISCONNECT", "RELEASE COMPLETE"] {
        assert!(
            decoded.contains(&format!("Message type: {message} ")),
            "tshark decoded no {message}"
        );
    }
}

#[test]
fn an_agent_calls_out_on_the_e1_by_the_dial_plan_and_both_sides_hear_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "{DIAL_PLAN}\n[[e1]]\nname = \"pri1\"\nsignalling = \"pri_cpe\"\ndriver = \"socket\"\n\
         path = {}\nroute = \"ivr:main\"\n[e1.outbound]\ncaller_id = \"+4930555000\"\n",
        toml_path(&dir.path().join("span")),
    );
    let gw = Gateway::start(&config_for_tests(&extra));
    // The callee: libpri as the network answers after 300 ms and says "enter digits".
    let callee_says = dir.path().join("callee.alaw");
    let prompt = audio::prompt("enter-digits");
    let mut bytes = Vec::new();
    let pcm: Vec<i16> = prompt
        .samples
        .iter()
        .map(|s| (s * 32767.0) as i16)
        .collect();
    G711Law::Alaw.encode(&pcm, &mut bytes);
    std::fs::write(&callee_says, bytes).unwrap();
    let callee_heard = dir.path().join("callee-heard.alaw");
    let mut peer = PriPeer::start(
        &dir.path().join("span"),
        &[
            "--side",
            "nt",
            "--answer",
            "--ring-ms",
            "300",
            "--play",
            callee_says.to_str().unwrap(),
            "--record",
            callee_heard.to_str().unwrap(),
        ],
    );
    gw.expect_line("e1 d-channel up", WAIT);
    let agent_heard = dir.path().join("agent-heard.wav");
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
                agent_heard.to_str().unwrap(),
                "--hangup-after-ms",
                "7000",
                "--calls",
                "1",
                "--duration-secs",
                "30",
            ],
        ),
        DEMO_CREDENTIAL,
    );
    // The dial plan's national format, type national; the branch's number, international.
    let ring = peer.wait_for("ring", WAIT);
    assert!(ring.contains("called=0301234567"), "{ring}");
    assert!(ring.contains("calling=4930555000"), "{ring}");
    agent.expect(&["event=answered"], WAIT);
    agent.expect(&["event=call_ended"], WAIT);
    assert_eq!(peer.wait_for("hangup cause", WAIT), "hangup cause=16");
    peer.wait_for("done", WAIT);
    agent.wait_exit(WAIT);
    assert!(peer.wait_exit(WAIT).is_some_and(|s| s.success()));

    let to_callee = audio::phrase_match(
        &read_alaw(&callee_heard).samples,
        &audio::prompt("main-menu"),
    );
    let to_agent = audio::phrase_match(
        &audio::read_wav(&agent_heard).unwrap().samples,
        &audio::prompt("enter-digits"),
    );
    println!("correlation agent → e1 callee {to_callee:.3}, e1 callee → agent {to_agent:.3}");
    assert!(to_callee > 0.8, "agent → callee correlation {to_callee:.3}");
    assert!(to_agent > 0.8, "callee → agent correlation {to_agent:.3}");
    let started = r#"trunkgate_calls_started_total{direction="outbound",trunk="pri1"}"#;
    assert_eq!(gw.wait_for_metric(started, WAIT, |v| v == 1.0), Some(1.0));
}

#[test]
fn a_dahdi_span_without_a_card_is_logged_and_left_out_while_the_rest_runs() {
    let extra =
        "[[e1]]\nname = \"card1\"\nsignalling = \"pri_cpe\"\ndriver = \"dahdi\"\nspan = 1\n\
                 route = \"ivr:main\"\n";
    let gw = Gateway::start(&config_for_tests(extra));
    let line = gw.expect_line("e1 span not started", WAIT);
    assert!(line.contains("card1"), "{line}");
    assert!(
        line.contains("/dev/dahdi/channel"),
        "the reason names the device: {line}"
    );
    let spans = ctl(gw.admin(), &["spans"]);
    assert!(spans.ok, "{}", spans.stderr);
    assert!(spans.stdout.contains("0 e1 spans"), "{}", spans.stdout);
    // SIP calls go on.
    assert!(gw.scrape().contains("trunkgate_calls"), "metrics served");
}
