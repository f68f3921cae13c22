//! The command line: what a user types, what the run gets, and the errors for typos.
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;

use crate::agent::identity::ServerTrust;
use crate::client::args::{numbered_path, Args, ArgsError, AudioSource};

const PIN: &str = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";

fn parse(extra: &[&str]) -> Result<Args, clap::Error> {
    let mut argv = vec![
        "trunkgate-agent",
        "--gateway",
        "127.0.0.1:4433",
        "--agent",
        "alice",
    ];
    argv.extend_from_slice(extra);
    Args::try_parse_from(argv)
}

fn env_with_credential(name: &str) -> Option<String> {
    (name == "TRUNKGATE_AGENT_CREDENTIAL").then(|| "s3cret\n".to_string())
}

#[test]
fn a_minimal_command_line_gives_one_interactive_agent() {
    let options = parse(&["--pin", PIN])
        .unwrap()
        .resolve(env_with_credential)
        .unwrap();
    assert_eq!(options.agents.len(), 1);
    assert_eq!(options.agents[0].id.as_str(), "alice");
    assert_eq!(
        options.credential.expose(),
        "s3cret",
        "the trailing newline is not part of it"
    );
    assert!(options.interactive());
    assert!(matches!(options.trust, ServerTrust::Pinned(fp) if fp.to_string() == PIN));
    assert_eq!(options.server_name, "trunkgate");
    assert_eq!(options.audio, AudioSource::Silence);
    assert_eq!(options.duration, None);
}

#[test]
fn behaviour_flags_become_durations() {
    let options = parse(&[
        "--pin",
        PIN,
        "--auto-answer",
        "--answer-after-ms",
        "250",
        "--hangup-after-ms",
        "3000",
        "--rebind-after-ms",
        "1000",
        "--calls",
        "5",
        "--duration-secs",
        "60",
        "--skills",
        "sales,de",
        "--echo",
    ])
    .unwrap()
    .resolve(env_with_credential)
    .unwrap();
    let b = &options.behaviour;
    assert_eq!(b.auto_answer, Some(Duration::from_millis(250)));
    assert_eq!(b.hangup_after, Some(Duration::from_millis(3000)));
    assert_eq!(b.rebind_after, Some(Duration::from_secs(1)));
    assert_eq!(b.calls, Some(5));
    assert_eq!(options.duration, Some(Duration::from_secs(60)));
    assert_eq!(options.skills, vec!["sales", "de"]);
    assert_eq!(options.audio, AudioSource::Echo);
    assert!(!options.interactive());
}

#[test]
fn a_swarm_numbers_its_agents_and_their_recordings() {
    let options = parse(&[
        "--pin",
        PIN,
        "--swarm",
        "3",
        "--record",
        "/tmp/calls.wav",
        "--auto-answer",
    ])
    .unwrap()
    .resolve(env_with_credential)
    .unwrap();
    let ids: Vec<&str> = options.agents.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["alice-1", "alice-2", "alice-3"]);
    assert_eq!(
        options.agents[2].record.as_deref(),
        Some(Path::new("/tmp/calls-3.wav"))
    );
    assert_eq!(
        numbered_path(Path::new("out/rec"), 12).unwrap(),
        PathBuf::from("out/rec-12")
    );
}

#[test]
fn the_credential_can_come_from_a_file_or_a_named_variable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credential");
    std::fs::write(&file, "from-file\r\nsecond line ignored\n").unwrap();
    let options = parse(&["--pin", PIN, "--credential-file", file.to_str().unwrap()])
        .unwrap()
        .resolve(|_| None)
        .unwrap();
    assert_eq!(options.credential.expose(), "from-file");

    let options = parse(&["--pin", PIN, "--credential-env", "MY_SECRET"])
        .unwrap()
        .resolve(|name| (name == "MY_SECRET").then(|| "mine".to_string()))
        .unwrap();
    assert_eq!(options.credential.expose(), "mine");
}

#[test]
fn a_missing_or_empty_credential_is_reported_by_its_source() {
    let error = parse(&["--pin", PIN])
        .unwrap()
        .resolve(|_| None)
        .unwrap_err();
    assert!(matches!(error, ArgsError::CredentialEnvMissing { .. }));
    assert!(
        error.to_string().contains("TRUNKGATE_AGENT_CREDENTIAL"),
        "{error}"
    );

    let error = parse(&["--pin", PIN])
        .unwrap()
        .resolve(|_| Some("\n".into()))
        .unwrap_err();
    assert!(
        matches!(error, ArgsError::CredentialEmpty { .. }),
        "{error}"
    );

    let error = parse(&["--pin", PIN, "--credential-file", "/nonexistent/cred"])
        .unwrap()
        .resolve(|_| None)
        .unwrap_err();
    assert!(error.to_string().contains("/nonexistent/cred"), "{error}");
}

#[test]
fn there_is_no_credential_flag() {
    let error = parse(&["--pin", PIN, "--credential", "s3cret"]).unwrap_err();
    assert_eq!(error.kind(), clap::error::ErrorKind::UnknownArgument);
}

#[test]
fn trust_is_required_and_exclusive() {
    let error = parse(&[]).unwrap_err();
    assert_eq!(
        error.kind(),
        clap::error::ErrorKind::MissingRequiredArgument
    );
    let error = parse(&["--pin", PIN, "--ca", "/x.pem"]).unwrap_err();
    assert_eq!(error.kind(), clap::error::ErrorKind::ArgumentConflict);
    let error = parse(&["--pin", "AB:CD"]).unwrap_err();
    assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
    assert!(error.to_string().contains("32 hex bytes"), "{error}");
}

#[test]
fn a_ca_file_is_loaded_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let generated = rcgen::generate_simple_self_signed(vec!["trunkgate".to_string()]).unwrap();
    let pem = dir.path().join("ca.pem");
    std::fs::write(&pem, generated.cert.pem()).unwrap();
    let options = parse(&["--ca", pem.to_str().unwrap()])
        .unwrap()
        .resolve(env_with_credential)
        .unwrap();
    assert!(matches!(&options.trust, ServerTrust::Ca(roots) if roots.len() == 1));

    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let error = parse(&["--ca", empty.to_str().unwrap()])
        .unwrap()
        .resolve(env_with_credential)
        .unwrap_err();
    assert!(error.to_string().contains("empty.pem"), "{error}");
}

#[test]
fn conflicting_and_dependent_flags_are_refused() {
    let error = parse(&["--pin", PIN, "--play", "x.wav", "--echo"]).unwrap_err();
    assert_eq!(error.kind(), clap::error::ErrorKind::ArgumentConflict);
    let error = parse(&["--pin", PIN, "--answer-after-ms", "100"]).unwrap_err();
    assert_eq!(
        error.kind(),
        clap::error::ErrorKind::MissingRequiredArgument
    );
    let error = parse(&["--pin", PIN, "--calls", "0"]).unwrap_err();
    assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
    let error = parse(&["--pin", PIN, "--swarm", "0"]).unwrap_err();
    assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
}

#[test]
fn a_gateway_without_a_port_is_refused_before_connecting() {
    let args = Args::try_parse_from([
        "trunkgate-agent",
        "--gateway",
        "gateway.example",
        "--agent",
        "alice",
        "--pin",
        PIN,
    ])
    .unwrap();
    let error = args.resolve(env_with_credential).unwrap_err();
    assert!(matches!(error, ArgsError::Gateway { .. }), "{error}");
    for good in ["localhost:4433", "[::1]:4433", "10.0.0.1:1"] {
        let args = Args::try_parse_from([
            "trunkgate-agent",
            "--gateway",
            good,
            "--agent",
            "a",
            "--pin",
            PIN,
        ])
        .unwrap();
        assert!(args.resolve(env_with_credential).is_ok(), "{good}");
    }
}

#[test]
fn ids_and_skills_the_gateway_would_refuse_are_named() {
    let long = "x".repeat(65);
    let error = parse(&["--pin", PIN, "--skills", &format!("sales,{long}")])
        .unwrap()
        .resolve(env_with_credential)
        .unwrap_err();
    assert!(error.to_string().contains("skills[1]"), "{error}");
    // The swarm suffix counts: 62 bytes + "-10" is too long.
    let id = "y".repeat(62);
    let args = Args::try_parse_from([
        "trunkgate-agent",
        "--gateway",
        "127.0.0.1:1",
        "--agent",
        &id,
        "--pin",
        PIN,
        "--swarm",
        "10",
    ])
    .unwrap();
    let error = args.resolve(env_with_credential).unwrap_err();
    assert!(error.to_string().contains("agent"), "{error}");
}

#[test]
fn a_played_file_is_converted_to_8_khz_mono() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("stereo16k.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&wav, spec).unwrap();
    for i in 0..16_000 {
        let sample = ((i as f32 * 0.05).sin() * 8000.0) as i16;
        writer.write_sample(sample).unwrap();
        writer.write_sample(sample).unwrap();
    }
    writer.finalize().unwrap();
    let options = parse(&["--pin", PIN, "--play", wav.to_str().unwrap()])
        .unwrap()
        .resolve(env_with_credential)
        .unwrap();
    let AudioSource::Play(samples) = options.audio else {
        panic!("not playing");
    };
    assert!(
        (7_900..=8_100).contains(&samples.len()),
        "{}",
        samples.len()
    );

    let error = parse(&["--pin", PIN, "--play", "/nonexistent.wav"])
        .unwrap()
        .resolve(env_with_credential)
        .unwrap_err();
    assert!(error.to_string().contains("/nonexistent.wav"), "{error}");
}

#[test]
fn dtmf_and_hold_flags_become_timers_and_bad_digits_are_refused() {
    let options = parse(&[
        "--pin",
        PIN,
        "--send-dtmf",
        "12#a",
        "--hold-after-ms",
        "2000",
        "--hold-for-ms",
        "1500",
    ])
    .unwrap()
    .resolve(env_with_credential)
    .unwrap();
    assert_eq!(
        options.behaviour.send_dtmf,
        Some((Duration::from_millis(1000), "12#A".into()))
    );
    assert_eq!(
        options.behaviour.hold,
        Some((
            Duration::from_millis(2000),
            Some(Duration::from_millis(1500))
        ))
    );
    let err = parse(&["--pin", PIN, "--send-dtmf", "12x"])
        .unwrap()
        .resolve(env_with_credential)
        .unwrap_err();
    assert!(matches!(err, ArgsError::SendDtmf(_)), "{err}");
    assert!(err.to_string().contains("'x'"), "{err}");
    assert!(parse(&["--pin", PIN, "--hold-for-ms", "100"]).is_err());
}
