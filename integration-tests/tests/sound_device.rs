//! An agent that talks through a sound card (`trunkgate-agent --sound`) to a real softphone
//! caller, through the real daemon. The card is ALSA's file plugin on a JACK clock (see
//! `trunkgate_integration::sound`): what the agent's speaker plays lands in a file, and the
//! agent's microphone says what a file holds.
use std::time::Duration;

use trunkgate_integration::agent::AgentProcess;
use trunkgate_integration::audio::{self, best_match, Audio};
use trunkgate_integration::sound::{CardKind, SoundCard, MICROPHONE_DEVICE, SPEAKER_DEVICE};
use trunkgate_integration::{prompt_path, Baresip, Gateway, TestConfig, DEMO_CREDENTIAL};

/// How well `reference` is found in `heard`, phrase by phrase (normalised correlation, 1.0 =
/// identical), at 8 kHz: receivers move their delay in the pauses between phrases.
fn heard(heard: &Audio, reference: &str) -> f64 {
    let heard = trunkgate::media::resample::to_rate(&heard.samples, heard.rate, 8000);
    audio::phrase_match(&heard, &audio::prompt(reference))
}

/// How well the speaker reproduced what the agent received: 3 s of the agent's recording,
/// starting 0.5 s in (the device opens a moment after the call's media starts, so the first
/// received frames are recorded but not played), found in what was played, at 8 kHz.
fn played_as_received(call: &Call) -> f64 {
    let played = trunkgate::media::resample::to_rate(&call.played.samples, call.played.rate, 8000);
    let received = &call.received;
    assert_eq!(received.rate, 8000);
    let end = (7 * 4000).min(received.samples.len());
    best_match(&played, &received.samples[4000..end]).map_or(0.0, |m| m.score)
}

/// What one call through the sound card left behind.
struct Call {
    /// What the agent's speaker played.
    played: Audio,
    /// What the agent received and decoded (its `--record` file).
    received: Audio,
    /// What the caller heard.
    caller_heard: Audio,
    /// The agent's `sound_opened` line.
    opened: String,
    /// The agent's `sound_closed` line (under- and overruns).
    closed: String,
}

/// One call: the agent's microphone says "press 1…" (main-menu), the caller says "enter
/// digits…".
fn talk_through(kind: CardKind, device_args: &[&str]) -> Call {
    let gw = Gateway::start(
        &TestConfig {
            route: "queue:support".into(),
            ..TestConfig::default()
        }
        .to_toml(),
    );
    let card = SoundCard::start(kind, &audio::prompt("main-menu"));
    let mut args: Vec<String> = [
        "--gateway",
        &gw.quic().to_string(),
        "--agent",
        "demo",
        "--pin",
        &gw.fingerprint(),
        "--auto-answer",
        "--calls",
        "1",
        "--duration-secs",
        "30",
        "--sound",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(device_args.iter().map(|s| s.to_string()));
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("agent-heard.wav");
    args.extend(["--record".to_string(), recording.display().to_string()]);
    let mut agent = AgentProcess::start_with_env(&args, DEMO_CREDENTIAL, &card.env());
    agent.expect(&["event=welcome"], Duration::from_secs(10));
    let caller = Baresip::new("caller")
        .dial(format!("sip:100@{}", gw.sip_udp()))
        .source_wav(prompt_path("enter-digits"))
        .duration(Duration::from_secs(9))
        .run();
    assert!(caller.call_established(), "{}", caller.log);
    let opened = agent.expect(&["event=sound_opened"], Duration::from_secs(1));
    // The call's end closes the device, which flushes the playback file.
    let closed = agent.expect(&["event=sound_closed"], Duration::from_secs(10));
    agent.expect(&["event=call_ended"], Duration::from_secs(1));
    assert_eq!(agent.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(
        !agent
            .lines()
            .iter()
            .any(|l| l.contains("event=media_error")),
        "no media errors: {:#?}",
        agent.lines()
    );
    Call {
        played: card.played(),
        received: audio::read_wav(&recording).unwrap(),
        caller_heard: caller.received_audio(),
        opened,
        closed,
    }
}

#[test]
fn an_agent_on_the_default_sound_device_talks_with_a_caller() {
    let call = talk_through(CardKind::Converting, &[]);
    assert!(
        call.opened
            .contains("input=default input_format=8000Hz/1ch/i16")
            && call
                .opened
                .contains("output=default output_format=8000Hz/1ch/i16"),
        "a converting device is asked for the call's own format: {}",
        call.opened
    );
    // In the call's own format the speaker gets exactly the decoded samples.
    let speaker = played_as_received(&call);
    assert!(
        speaker > 0.99,
        "speaker vs received audio: correlation {speaker:.3}; {}",
        call.closed
    );
    assert_both_ways_heard(&call, speaker);
}

#[test]
fn an_agent_on_a_48khz_float_only_device_converts_both_ways() {
    let call = talk_through(
        CardKind::Float48k,
        &[
            "--input-device",
            MICROPHONE_DEVICE,
            "--output-device",
            SPEAKER_DEVICE,
        ],
    );
    assert!(
        call.opened.contains("input_format=48000Hz/1ch/f32")
            && call.opened.contains("output_format=48000Hz/1ch/f32"),
        "the device's own format: {}",
        call.opened
    );
    assert_eq!(call.played.rate, 48000);
    // Up to 48 kHz and back down loses nothing in the telephone band.
    let speaker = played_as_received(&call);
    assert!(
        speaker > 0.98,
        "speaker vs received audio: correlation {speaker:.3}; {}",
        call.closed
    );
    assert_both_ways_heard(&call, speaker);
}

/// The caller's speech came out of the agent's speaker and the agent's microphone reached the
/// caller.
fn assert_both_ways_heard(call: &Call, speaker: f64) {
    let to_agent = heard(&call.played, "enter-digits");
    let to_caller = heard(&call.caller_heard, "main-menu");
    eprintln!(
        "correlations: speaker {speaker:.3}, to agent {to_agent:.3}, to caller {to_caller:.3}"
    );
    assert!(
        to_agent > 0.8,
        "caller → agent's speaker: correlation {to_agent:.3}"
    );
    assert!(
        to_caller > 0.8,
        "agent's microphone → caller: correlation {to_caller:.3}"
    );
}

/// The agent binary with a sound card's environment.
fn agent_command(card: &SoundCard) -> std::process::Command {
    let mut command = std::process::Command::new(trunkgate_integration::agent::agent_bin());
    command
        .envs(card.env())
        .env("TRUNKGATE_AGENT_CREDENTIAL", DEMO_CREDENTIAL);
    command
}

#[test]
fn the_card_s_devices_are_listed_by_the_names_the_flags_take() {
    let card = SoundCard::start(CardKind::Float48k, &audio::prompt("digit-1"));
    let output = agent_command(&card).arg("--list-devices").output().unwrap();
    let listed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&format!("id={SPEAKER_DEVICE} ")) && l.contains("output=yes")),
        "{listed}"
    );
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&format!("id={MICROPHONE_DEVICE} ")) && l.contains("input=yes")),
        "{listed}"
    );
}

#[test]
fn a_misspelt_device_fails_before_connecting() {
    let card = SoundCard::start(CardKind::Float48k, &audio::prompt("digit-1"));
    // Nothing listens on the gateway address: the check must come first.
    let output = agent_command(&card)
        .args(["--gateway", "127.0.0.1:9", "--agent", "demo", "--pin"])
        .arg(["AB"; 32].join(":"))
        .args(["--output-device", "trunkgate_speakr"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no output device named \"trunkgate_speakr\"")
            && stderr.contains("--list-devices"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "no events: it never connected");
}
