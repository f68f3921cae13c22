//! Call recording end to end, with real peers: a baresip caller and the agent client each say
//! a different prompt; the gateway records the call under its queue's `always` policy (the
//! caller hears the notice), the agent pauses and resumes it, and the sealed recording reaches
//! a real S3-compatible server (s3rver). `trunkgate recording decrypt` opens it; opusdec
//! decodes it; each channel holds its own side's speech and not the other's; the paused span
//! is silence and the CDR lists it. Then, with the store down, the gateway is killed (-9)
//! holding a recording it could not ship: started again, it ships it, once.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use trunkgate_integration::agent::AgentProcess;
use trunkgate_integration::audio::{self, best_match, opusdec_stereo, rms, Audio};
use trunkgate_integration::gateway::ctl;
use trunkgate_integration::journal::{journal_config, of_type, records};
use trunkgate_integration::s3::{s3rver_objects, S3rver, S3RVER_KEY, S3RVER_SECRET};
use trunkgate_integration::{line_word, trunkgate_bin, Baresip, Gateway, TestConfig};

const WAIT: Duration = Duration::from_secs(10);
const CALLER_SAYS: &str = "main-menu";
const AGENT_SAYS: &str = "enter-digits";
const PENDING: &str = "trunkgate_recordings_pending";
const ACKNOWLEDGED: &str =
    r#"trunkgate_recording_uploads_total{result="acknowledged",sink="cloud"}"#;

/// `trunkgate recording ARGS`, which must succeed.
fn recording_command(args: &[&std::ffi::OsStr]) -> std::process::Output {
    let out = Command::new(trunkgate_bin())
        .arg("recording")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `trunkgate recording keygen`: the private key's file and the public key.
fn keygen(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("recordings.key");
    let out = recording_command(&["keygen".as_ref(), "--out".as_ref(), key.as_os_str()]);
    let public = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(public.starts_with("age1"), "{public}");
    (key, public)
}

/// The agent waits for the caller's recording notice (it hears it too), then says its prompt.
fn agent_speech(dir: &Path) -> PathBuf {
    let said = audio::prompt(AGENT_SAYS);
    let mut speech = Audio::silence(said.rate, Duration::from_millis(3500));
    speech.extend(&said);
    let path = dir.join("agent.wav");
    audio::write_wav_i16(&path, &speech).unwrap();
    path
}

fn config(dir: &Path, public_key: &str, store: &S3rver) -> String {
    let secret_file = dir.join("s3-secret");
    std::fs::write(&secret_file, format!("{S3RVER_SECRET}\n")).unwrap();
    TestConfig {
        route: "queue:support".into(),
        queue_wrap_up_ms: 0,
        extra: format!(
            "{journal}\n[[journal.sink]]\nname = \"cloud\"\ntype = \"s3\"\nendpoint = {endpoint:?}\n\
             bucket = \"calls\"\nprefix = \"trunkgate\"\ngateway = \"branch-9\"\n\
             access_key_id = {S3RVER_KEY:?}\nsecret_access_key_file = {secret:?}\n\
             timeout_ms = 2000\nbatch_age_ms = 100\n\n\
             [recording]\npublic_key = {public_key:?}\ndir = {recordings:?}\nbitrate = 32000\n\n\
             [queues.support.recording]\npolicy = \"always\"\nprompt = \"call-recorded\"\n",
            journal = journal_config(&dir.join("journal")),
            endpoint = store.endpoint(),
            secret = secret_file.to_string_lossy(),
            recordings = dir.join("recordings").to_string_lossy(),
        ),
        ..TestConfig::default()
    }
    .to_toml()
}

/// Decrypts `sealed` with `key` into `dir/NAME.opus`; the exit code and the file.
fn decrypt(sealed: &[u8], key: &Path, dir: &Path, name: &str) -> (i32, PathBuf) {
    let file = dir.join(name);
    std::fs::write(&file, sealed).unwrap();
    let out = Command::new(trunkgate_bin())
        .args(["recording", "decrypt", "--key"])
        .arg(key)
        .arg(&file)
        .output()
        .unwrap();
    println!("decrypt {name}: {}", String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), file.with_extension(""))
}

/// The recordings in the bucket, by key.
fn recordings_in(store_data: &Path) -> Vec<(String, Vec<u8>)> {
    s3rver_objects(store_data, "calls")
        .into_iter()
        .filter(|(key, _)| key.contains("/recordings/"))
        .collect()
}

fn score(heard: &[f32], said: &str) -> f64 {
    best_match(heard, &audio::prompt(said).samples).map_or(0.0, |m| m.score)
}

#[test]
fn a_recorded_call_reaches_s3_sealed_with_each_side_on_its_channel_and_its_pause_silent() {
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut store = S3rver::start(data.path(), "calls");
    let (key, public) = keygen(dir.path());
    let config = config(dir.path(), &public, &store);
    let gw = Gateway::start(&config);

    let speech = audio::repeated_prompt(dir.path(), CALLER_SAYS, 4);
    let target = gw.sip_udp();
    let caller = std::thread::spawn(move || {
        Baresip::new("caller")
            .dial(format!("sip:100@{target}"))
            .source_wav(&speech)
            .duration(Duration::from_secs(16))
            .run()
    });
    let agent_speech = agent_speech(dir.path());
    let mut agent =
        AgentProcess::interactive_with(&gw, &["--play", agent_speech.to_str().unwrap()]);
    agent.expect(&["event=offer"], Duration::from_secs(20));
    agent.type_line("a");
    agent.expect(&["event=answered"], WAIT);
    agent.expect(&["event=recording", "state=recording"], WAIT);
    // The agent has spoken and the caller is mid-sentence: a card number is read.
    std::thread::sleep(Duration::from_secs(7));
    agent.type_line("record pause");
    agent.expect(&["event=recording", "state=paused"], WAIT);
    std::thread::sleep(Duration::from_secs(2));
    agent.type_line("record resume");
    agent.expect(&["event=recording", "state=recording"], WAIT);
    agent.type_line("record resume");
    agent.expect(&["event=error", "the recording is not paused"], WAIT);
    let caller = caller.join().unwrap();
    assert!(caller.call_established(), "{}", caller.log);
    agent.expect(&["event=call_ended"], WAIT);
    let notice = score(&caller.received_audio().samples, "call-recorded");
    println!("the caller heard the recording notice at {notice:.2}");
    assert!(notice > 0.8, "the caller is told: {notice:.2}");

    // Shipped, then removed here.
    let pending = gw.wait_for_metric(PENDING, Duration::from_secs(20), |v| v == 0.0);
    assert_eq!(pending, Some(0.0));
    let uploaded = gw.wait_for_metric(ACKNOWLEDGED, WAIT, |v| v >= 1.0);
    assert_eq!(uploaded, Some(1.0));
    let objects = recordings_in(data.path());
    assert_eq!(
        objects.len(),
        1,
        "{:?}",
        objects.iter().map(|o| &o.0).collect::<Vec<_>>()
    );
    let (object_key, sealed) = &objects[0];
    assert!(
        sealed.starts_with(b"age-encryption.org/v1\n"),
        "sealed with age"
    );
    assert!(
        !sealed.windows(4).any(|w| w == b"OggS"),
        "nothing of the audio is in the clear"
    );
    let local: Vec<_> = std::fs::read_dir(dir.path().join("recordings"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .collect();
    assert!(local.is_empty(), "removed once the sink has it: {local:?}");

    // The CDR names it, with its length and the pause.
    let journal = records(&dir.path().join("journal"));
    let cdrs = of_type(&journal, "cdr");
    assert_eq!(cdrs.len(), 1);
    let recording = &cdrs[0]["data"]["recording"];
    let name = recording["file"]
        .as_str()
        .expect("the CDR names the recording");
    assert_eq!(
        object_key,
        &format!("trunkgate/branch-9/recordings/{name}"),
        "{recording}"
    );
    assert_eq!(recording["started_by"], "policy");
    let paused = recording["paused"].as_array().unwrap();
    assert_eq!(paused.len(), 1, "{recording}");
    let (at_ms, ms) = (
        paused[0]["at_ms"].as_u64().unwrap(),
        paused[0]["ms"].as_u64().unwrap(),
    );
    assert!((6500..8500).contains(&at_ms), "{recording}");
    assert!((1500..3500).contains(&ms), "{recording}");
    let changes: Vec<&Value> = of_type(&journal, "call_event")
        .into_iter()
        .filter(|e| e["data"]["event"] == "recording")
        .collect();
    assert_eq!(changes.len(), 3, "started, paused, resumed: {changes:#?}");

    // Whoever holds the private key hears each side on its own channel.
    let (code, opus) = decrypt(sealed, &key, dir.path(), name);
    assert_eq!(code, 0);
    let (left, right) = opusdec_stereo(&opus);
    // Or as a WAV, for tools that play no Opus: the same audio as opus-tools decodes.
    let wav = dir.path().join("first.wav");
    let sealed_file = dir.path().join(name);
    recording_command(&[
        "decrypt".as_ref(),
        "--wav".as_ref(),
        "--key".as_ref(),
        key.as_os_str(),
        sealed_file.as_os_str(),
        "--out".as_ref(),
        wav.as_os_str(),
    ]);
    let mut reader = hound::WavReader::open(&wav).unwrap();
    assert_eq!(
        (reader.spec().channels, reader.spec().sample_rate),
        (2, 8000)
    );
    let ours: Vec<f32> = reader
        .samples::<i16>()
        .step_by(2)
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect();
    assert!(
        ours.len().abs_diff(left.len()) <= 160,
        "{} samples against opusdec's {}",
        ours.len(),
        left.len()
    );
    // opusdec decodes at 48 kHz and resamples (with dither); ours decodes at 8 kHz: close, not
    // bit-identical.
    let same = best_match(&ours, &left[8000..16000]).map_or(0.0, |m| m.score);
    println!("our WAV against opusdec's decoding: {same:.3}");
    assert!(same > 0.9, "the WAV is the recording: {same:.3}");
    let duration_ms = recording["duration_ms"].as_u64().unwrap();
    println!(
        "recording: {} bytes sealed for {duration_ms} ms: {} kB per minute",
        sealed.len(),
        sealed.len() as u64 * 60_000 / duration_ms / 1000
    );
    assert!(
        (left.len() as u64 * 1000 / 8000).abs_diff(duration_ms) < 100,
        "the file lasts what the CDR says: {} samples, {duration_ms} ms",
        left.len()
    );
    let scores = [
        score(&left, CALLER_SAYS),
        score(&left, AGENT_SAYS),
        score(&right, AGENT_SAYS),
        score(&right, CALLER_SAYS),
    ];
    println!(
        "left: caller {:.2}, agent {:.2}; right: agent {:.2}, caller {:.2}",
        scores[0], scores[1], scores[2], scores[3]
    );
    // The agent's side went through Opus twice (its link at complexity 1, then the
    // recording), hence the lower bar; the other side's speech scores near 0.1.
    assert!(scores[0] > 0.8, "the caller on the left: {scores:?}");
    assert!(scores[2] > 0.7, "the agent on the right: {scores:?}");
    assert!(
        scores[1] < 0.5 && scores[3] < 0.5,
        "each only on its own: {scores:?}"
    );
    // The pause is silence on both channels (a frame's margin at each end).
    let span = |s: &[f32]| {
        let from = ((at_ms + 40) * 8) as usize;
        let to = ((at_ms + ms - 40) * 8) as usize;
        rms(&s[from..to.min(s.len())])
    };
    let speech_level = rms(&left[..(at_ms * 8) as usize]);
    println!(
        "paused span: left {:.5}, right {:.5}; caller's speech before it {speech_level:.4}",
        span(&left),
        span(&right)
    );
    assert!(span(&left) < 0.001 && span(&right) < 0.001);
    assert!(speech_level > 0.01, "the caller spoke before the pause");

    // The store goes away; a recorded call ends; the gateway dies holding its recording.
    store.stop();
    let target = gw.sip_udp();
    let caller = std::thread::spawn(move || {
        Baresip::new("caller")
            .dial(format!("sip:100@{target}"))
            .duration(Duration::from_secs(6))
            .run()
    });
    let second = |agent: &AgentProcess, needle: &str, limit| {
        let line = agent.wait_for_nth(&[needle], 2, limit);
        assert!(line.is_some(), "no second {needle}");
    };
    second(&agent, "event=offer", Duration::from_secs(20));
    agent.type_line("a");
    second(&agent, "event=answered", WAIT);
    // An operator pauses it from the admin API; a second pause is refused with the reason.
    let answered = agent.wait_for_nth(&["event=answered"], 2, WAIT).unwrap();
    // The agent's `c2` is the gateway's call 2.
    let call = line_word(&answered, "call")
        .and_then(|c| c.strip_prefix('c'))
        .expect("the call's id")
        .to_string();
    let paused = ctl(gw.admin(), &["record", &call, "pause"]);
    assert!(paused.ok, "{paused:?}");
    second(&agent, "state=paused", WAIT);
    let again = ctl(gw.admin(), &["record", &call, "pause"]);
    assert!(
        !again.ok && again.stderr.contains("paused already"),
        "{again:?}"
    );
    gw.expect_line("by=admin", WAIT);
    assert!(caller.join().unwrap().call_established());
    second(&agent, "event=call_ended", WAIT);
    let retries = gw.wait_for_metric(
        r#"trunkgate_recording_uploads_total{result="retry",sink="cloud"}"#,
        Duration::from_secs(20),
        |v| v >= 1.0,
    );
    assert!(
        retries >= Some(1.0),
        "{retries:?}\n{}",
        gw.log_lines()
            .iter()
            .filter(|l| l.contains("record"))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    gw.expect_line("did not take a recording", WAIT);
    let mut gw = gw;
    gw.signal(libc::SIGKILL);
    gw.wait_exit(WAIT).expect("killed");
    drop(gw);
    agent.stop();
    let waiting: Vec<_> = std::fs::read_dir(dir.path().join("recordings"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        waiting.len(),
        1,
        "the second recording waits on disk: {waiting:?}"
    );

    // Back: the store first, then the gateway; the recording goes out once.
    store.resume();
    let gw = Gateway::start(&config);
    let uploaded = gw.wait_for_metric(ACKNOWLEDGED, Duration::from_secs(30), |v| v >= 1.0);
    assert_eq!(uploaded, Some(1.0));
    let pending = gw.wait_for_metric(PENDING, WAIT, |v| v == 0.0);
    assert_eq!(pending, Some(0.0));
    let objects = recordings_in(data.path());
    assert_eq!(
        objects.len(),
        2,
        "{:?}",
        objects.iter().map(|o| &o.0).collect::<Vec<_>>()
    );
    let second = objects.iter().find(|(k, _)| k != object_key).unwrap();
    assert!(second
        .0
        .ends_with(&waiting[0].to_string_lossy().to_string()));
    let (code, opus) = decrypt(&second.1, &key, dir.path(), "second.opus.age");
    assert_eq!(code, 0, "whole");
    let (left, _) = opusdec_stereo(&opus);
    assert!(left.len() > 8000, "{} samples", left.len());
    gw.stop().expect("a clean stop");
}
