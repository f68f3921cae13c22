//! Recording policy, pause and resume in the call core: which calls start recording when an
//! agent answers, what a request is refused for, and what the CDR learns at the end. (The
//! audio itself is checked against real decoders in integration-tests/tests/recording.rs.)
use std::time::Duration;

use super::*;
use crate::call::core::{Output, RecordingAction, ToCenter};
use crate::events::{CallEvent, PausedSpan, RecordingState};
use crate::queue::center::CallCommand;
use crate::recording::config::{Policy, RecordingPolicy};

/// An X25519 recipient for the config; the core never encrypts, so any valid key does.
const KEY: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

fn with_policy(policy: Policy, percent: Option<u8>, prompt: Option<&str>) -> Harness {
    with_policy_seed(policy, percent, prompt, 1)
}

fn with_policy_seed(
    policy: Policy,
    percent: Option<u8>,
    prompt: Option<&str>,
    seed: u64,
) -> Harness {
    let config = config(|c| {
        c.recording.public_key = Some(KEY.into());
        let queue = c
            .queues
            .get_mut("support")
            .expect("the example has support");
        queue.recording = Some(RecordingPolicy {
            policy,
            percent,
            prompt: prompt.map(str::to_string),
        });
    });
    let mut h = Harness::with_config("queue:support", Duration::ZERO, seed, config);
    h.run(FRAME * 5);
    h
}

fn states(h: &Harness) -> Vec<(RecordingState, Option<String>)> {
    h.outputs
        .iter()
        .filter_map(|o| match o {
            Output::ToCenter(ToCenter::Recording { state, refused }) => {
                Some((*state, refused.clone()))
            }
            _ => None,
        })
        .collect()
}

fn recorded_bytes(h: &Harness) -> Vec<u8> {
    h.outputs
        .iter()
        .filter_map(|o| match o {
            Output::RecordingBytes(b) => Some(b.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn recorded(h: &Harness) -> Option<(Duration, Vec<PausedSpan>, String)> {
    h.events.iter().find_map(|e| match e {
        CallEvent::Recorded {
            duration,
            paused,
            started_by,
        } => Some((*duration, paused.clone(), started_by.clone())),
        _ => None,
    })
}

fn ask(h: &mut Harness, action: RecordingAction) {
    h.center(CallCommand::Recording {
        action,
        by: "alice".into(),
    });
}

#[test]
fn always_records_from_the_answer_to_the_end_and_the_cdr_learns_how_long() {
    let mut h = with_policy(Policy::Always, None, None);
    assert!(
        recorded_bytes(&h).is_empty(),
        "nothing before an agent answers"
    );
    h.connect("alice");
    assert_eq!(states(&h), vec![(RecordingState::Recording, None)]);
    h.run(Duration::from_secs(3));
    h.bye();
    let bytes = recorded_bytes(&h);
    assert!(bytes.starts_with(b"OggS"), "an Ogg stream");
    assert!(
        bytes.windows(8).any(|w| w == b"OpusHead"),
        "with its Opus header"
    );
    assert!(h.outputs.contains(&Output::RecordingDone));
    let (duration, paused, by) = recorded(&h).expect("the recording is reported");
    assert!(
        duration >= Duration::from_millis(2980) && duration <= Duration::from_millis(3040),
        "{duration:?}"
    );
    assert!(paused.is_empty());
    assert_eq!(by, "policy");
    let recorded_at = h
        .events
        .iter()
        .position(|e| matches!(e, CallEvent::Recorded { .. }));
    let ended_at = h
        .events
        .iter()
        .position(|e| matches!(e, CallEvent::Ended { .. }));
    assert!(
        recorded_at < ended_at,
        "the CDR has it before the call ends"
    );
}

#[test]
fn a_pause_records_silence_and_is_listed_where_it_was() {
    let mut h = with_policy(Policy::Always, None, None);
    h.connect("alice");
    h.run(Duration::from_secs(1));
    ask(&mut h, RecordingAction::Pause);
    h.run(Duration::from_secs(2));
    ask(&mut h, RecordingAction::Resume);
    h.run(Duration::from_secs(1));
    h.bye();
    let (duration, paused, _) = recorded(&h).unwrap();
    assert!(duration >= Duration::from_millis(3980), "{duration:?}");
    assert_eq!(paused.len(), 1);
    let span = paused[0];
    assert!(
        span.at.abs_diff(Duration::from_secs(1)) <= FRAME * 2,
        "{span:?}"
    );
    assert!(
        span.length.abs_diff(Duration::from_secs(2)) <= FRAME * 2,
        "{span:?}"
    );
    let changes: Vec<_> = h
        .events
        .iter()
        .filter_map(|e| match e {
            CallEvent::Recording { state, by } => Some((*state, by.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            (RecordingState::Recording, "policy"),
            (RecordingState::Paused, "alice"),
            (RecordingState::Recording, "alice"),
        ]
    );
}

#[test]
fn a_pause_still_open_at_the_end_runs_to_the_end() {
    let mut h = with_policy(Policy::Always, None, None);
    h.connect("alice");
    h.run(Duration::from_secs(1));
    ask(&mut h, RecordingAction::Pause);
    h.run(Duration::from_secs(1));
    h.bye();
    let (duration, paused, _) = recorded(&h).unwrap();
    assert_eq!(paused.len(), 1);
    assert_eq!(paused[0].at + paused[0].length, duration);
}

#[test]
fn on_demand_starts_only_when_asked_and_never_refuses_with_its_reason() {
    let mut h = with_policy(Policy::OnDemand, None, None);
    h.connect("alice");
    assert_eq!(states(&h), vec![(RecordingState::Off, None)]);
    h.run(Duration::from_secs(1));
    assert!(recorded_bytes(&h).is_empty());
    ask(&mut h, RecordingAction::Pause);
    ask(&mut h, RecordingAction::Start);
    ask(&mut h, RecordingAction::Start);
    h.run(Duration::from_secs(1));
    h.bye();
    let s = states(&h);
    assert_eq!(
        s[1],
        (
            RecordingState::Off,
            Some("the call is not being recorded".into())
        )
    );
    assert_eq!(s[2], (RecordingState::Recording, None));
    assert_eq!(
        s[3],
        (
            RecordingState::Recording,
            Some("the call is being recorded already".into())
        )
    );
    let (duration, _, by) = recorded(&h).unwrap();
    assert_eq!(by, "alice");
    assert!(duration >= Duration::from_millis(980), "{duration:?}");

    let mut h = with_policy(Policy::Never, None, None);
    h.connect("alice");
    ask(&mut h, RecordingAction::Start);
    h.bye();
    assert_eq!(
        states(&h).last().unwrap().1.as_deref(),
        Some("the call's recording policy is never")
    );
    assert!(recorded(&h).is_none() && recorded_bytes(&h).is_empty());
}

#[test]
fn nothing_can_be_asked_before_an_agent_answers() {
    let mut h = with_policy(Policy::OnDemand, None, None);
    ask(&mut h, RecordingAction::Start);
    assert_eq!(
        states(&h)[0].1.as_deref(),
        Some("no agent has answered the call yet")
    );
}

#[test]
fn a_sampled_policy_records_about_its_share_of_calls() {
    let calls = 400;
    let recorded = (0..calls)
        .filter(|seed| {
            let mut h = with_policy_seed(Policy::Sampled, Some(25), None, *seed);
            h.connect("alice");
            states(&h) == vec![(RecordingState::Recording, None)]
        })
        .count();
    // Binomial(400, 0.25): mean 100, standard deviation 8.7; ±30 is beyond 3.4 deviations.
    assert!((70..=130).contains(&recorded), "{recorded} of {calls}");
}

#[test]
fn the_policy_prompt_is_played_as_the_caller_enters_the_queue() {
    let prompt = "welcome";
    let mut h = with_policy(Policy::Always, None, Some(prompt));
    h.run(Duration::from_millis(200));
    let level = prompt_level(prompt);
    assert!(
        h.heard
            .iter()
            .any(|s| (i32::from(*s) - i32::from(level)).abs() < 100),
        "the caller hears the recording notice"
    );
    let mut quiet = with_policy(Policy::Never, None, Some(prompt));
    quiet.run(Duration::from_millis(200));
    assert!(
        !quiet
            .heard
            .iter()
            .any(|s| (i32::from(*s) - i32::from(level)).abs() < 100),
        "no notice when nothing is recorded"
    );
}
