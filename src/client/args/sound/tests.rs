//! The sound flags: what they resolve to, what they cannot be combined with, and what a build
//! without the `sound` feature says.
use clap::Parser;

use crate::client::args::{Args, ArgsError, AudioSource};
use crate::client::sound;

const PIN: &str = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";

fn parse(extra: &[&str]) -> Result<Args, clap::Error> {
    let mut argv = vec![
        "trunkgate-agent",
        "--gateway",
        "127.0.0.1:4433",
        "--agent",
        "alice",
        "--pin",
        PIN,
    ];
    argv.extend_from_slice(extra);
    Args::try_parse_from(argv)
}

fn resolve(extra: &[&str]) -> Result<AudioSource, ArgsError> {
    parse(extra)
        .unwrap()
        .resolve(|_| Some("s3cret".to_string()))
        .map(|options| options.audio)
}

#[cfg(feature = "sound")]
#[test]
fn sound_uses_the_default_devices_unless_told_otherwise() {
    assert_eq!(
        resolve(&["--sound"]).unwrap(),
        AudioSource::Sound(sound::SoundDevices::default())
    );
    assert_eq!(
        resolve(&["--sound", "--input-device", "hw:1"]).unwrap(),
        AudioSource::Sound(sound::SoundDevices {
            input: Some("hw:1".into()),
            output: None,
        })
    );
}

#[cfg(feature = "sound")]
#[test]
fn naming_a_device_implies_sound() {
    assert_eq!(
        resolve(&["--output-device", "headset"]).unwrap(),
        AudioSource::Sound(sound::SoundDevices {
            input: None,
            output: Some("headset".into()),
        })
    );
}

#[cfg(feature = "sound")]
#[test]
fn sound_can_be_recorded_and_answered_automatically() {
    let options = parse(&["--sound", "--record", "call.wav", "--auto-answer"])
        .unwrap()
        .resolve(|_| Some("s3cret".to_string()))
        .unwrap();
    assert!(matches!(options.audio, AudioSource::Sound(_)));
    assert!(options.agents[0].record.is_some());
}

#[cfg(not(feature = "sound"))]
#[test]
fn without_the_feature_sound_says_how_to_get_it() {
    for flags in [&["--sound"][..], &["--input-device", "hw:1"]] {
        let error = resolve(flags).unwrap_err();
        assert!(
            matches!(error, ArgsError::Sound(sound::SoundError::NotBuilt)),
            "{error}"
        );
        let message = error.to_string();
        assert!(
            message.contains("without the `sound` feature") && message.contains("--features sound"),
            "{message}"
        );
    }
}

#[test]
fn sound_is_one_audio_source_among_others() {
    for other in [&["--echo"][..], &["--play", "x.wav"], &["--swarm", "2"]] {
        let mut flags = vec!["--sound"];
        flags.extend_from_slice(other);
        let error = parse(&flags).unwrap_err();
        assert_eq!(
            error.kind(),
            clap::error::ErrorKind::ArgumentConflict,
            "--sound with {other:?}"
        );
    }
    let error = parse(&["--input-device", "hw:1", "--echo"]).unwrap_err();
    assert_eq!(error.kind(), clap::error::ErrorKind::ArgumentConflict);
}

#[test]
fn listing_devices_stands_alone() {
    let error = parse(&["--list-devices"]).unwrap_err();
    assert_eq!(error.kind(), clap::error::ErrorKind::ArgumentConflict);
}

#[test]
fn no_sound_flag_keeps_the_old_sources() {
    assert_eq!(resolve(&[]).unwrap(), AudioSource::Silence);
    assert_eq!(resolve(&["--echo"]).unwrap(), AudioSource::Echo);
}
