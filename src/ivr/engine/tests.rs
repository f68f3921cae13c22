//! Engine tests in virtual time: `base` is taken once, everything else is `base + ms`.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::ivr::example_ivr;

/// A call driven through one session, with a clock the test moves by hand.
struct Call {
    ivr: IvrSession,
    base: Instant,
    now: Instant,
}

impl Call {
    fn start(config: IvrConfig, menu: &str) -> Call {
        let base = Instant::now();
        let ivr = IvrSession::new(Arc::new(config), menu, base).expect("start menu exists");
        Call {
            ivr,
            base,
            now: base,
        }
    }

    fn demo() -> Call {
        Call::start(example_ivr(), "main")
    }

    fn at(&mut self, ms: u64) -> &mut Self {
        self.now = self.base + Duration::from_millis(ms);
        self
    }

    fn ms(&self) -> u64 {
        (self.now - self.base).as_millis() as u64
    }

    fn outputs(&mut self) -> Vec<IvrOutput> {
        std::iter::from_fn(|| self.ivr.poll_output()).collect()
    }

    fn press(&mut self, keys: &str) -> Vec<IvrOutput> {
        for key in keys.chars() {
            self.ivr.on_digit(self.now, key);
        }
        self.outputs()
    }

    fn played(&mut self) -> Vec<IvrOutput> {
        self.ivr.on_playback_finished(self.now);
        self.outputs()
    }

    /// Fires the timer if it is due at the current time.
    fn tick(&mut self) -> Vec<IvrOutput> {
        self.ivr.handle_timeout(self.now);
        self.outputs()
    }

    /// Jumps to the pending deadline and fires it.
    fn expire(&mut self) -> Vec<IvrOutput> {
        self.now = self.ivr.poll_timeout().expect("a timer is running");
        self.tick()
    }

    fn deadline_ms(&self) -> Option<u64> {
        self.ivr
            .poll_timeout()
            .map(|deadline| (deadline - self.base).as_millis() as u64)
    }
}

fn play(prompts: &[&str]) -> IvrOutput {
    IvrOutput::Play(prompts.iter().map(|p| (*p).to_owned()).collect())
}

fn transfer(target: &str, digits: &str) -> IvrOutput {
    let target = target.parse().expect("a valid destination");
    IvrOutput::Transfer {
        target,
        digits: digits.to_owned(),
    }
}

const MAIN: &[&str] = &["welcome", "main-menu", "agent-option"];

fn main_with(lead_in: &str) -> IvrOutput {
    play(&[lead_in, "welcome", "main-menu", "agent-option"])
}

fn config(text: &str) -> IvrConfig {
    let config: IvrConfig = toml::from_str(text).expect("test config parses");
    let problems = config.validate(&|_| true);
    assert_eq!(problems, [], "test config is valid");
    config
}

#[test]
fn demo_call_starts_with_the_main_prompts() {
    let mut call = Call::demo();
    assert_eq!(call.outputs(), [play(MAIN)]);
    assert_eq!(call.ivr.current_menu(), "main");
    assert_eq!(call.ivr.poll_timeout(), None, "no timer while prompts play");
}

#[test]
fn nine_says_goodbye_and_hangs_up_only_after_it_played() {
    let mut call = Call::demo();
    call.outputs();
    call.at(6000).played();
    assert_eq!(call.at(7000).press("9"), [play(&["goodbye"])]);
    assert_eq!(call.ivr.poll_timeout(), None);
    assert_eq!(
        call.at(7500).press("1"),
        [],
        "keys during goodbye are ignored"
    );
    assert_eq!(
        call.at(60_000).tick(),
        [],
        "nothing but the goodbye's end hangs up"
    );
    assert_eq!(call.at(61_000).played(), [IvrOutput::Hangup]);
    assert_eq!(call.ivr.current_menu(), "main");
}

#[test]
fn read_back_plays_the_entry_then_returns_to_main() {
    let mut call = Call::demo();
    call.outputs();
    call.at(6000).played();
    assert_eq!(call.press("1"), [play(&["enter-digits"])]);
    assert_eq!(call.ivr.current_menu(), "readback");
    call.at(9000).played();
    assert_eq!(call.press("123"), []);
    assert_eq!(call.ivr.collected(), "123");
    assert_eq!(
        call.press("#"),
        [play(&["you-entered", "digit-1", "digit-2", "digit-3"])]
    );
    assert_eq!(call.press("4"), [], "keys during the read-back are ignored");
    assert_eq!(call.ivr.poll_timeout(), None);
    assert_eq!(call.at(12_000).played(), [play(MAIN)]);
    assert_eq!(call.ivr.current_menu(), "main");
    assert_eq!(call.ivr.collected(), "");
}

#[test]
fn first_key_timer_runs_from_the_end_of_the_prompts() {
    let mut call = Call::demo();
    call.outputs();
    assert_eq!(
        call.at(6000).tick(),
        [],
        "a menu longer than timeout_ms does not time out while playing"
    );
    call.at(7000).played();
    assert_eq!(call.deadline_ms(), Some(7000 + 5000));
    assert_eq!(call.at(11_999).tick(), [], "not a millisecond early");
    assert_eq!(call.at(12_000).tick(), [main_with("invalid")]);
    assert_eq!(call.ivr.poll_timeout(), None, "replay is playing");
}

#[test]
fn a_late_playback_notice_does_not_restart_the_timer() {
    let mut call = Call::demo();
    call.outputs();
    call.at(1000).played();
    call.at(3000).played();
    assert_eq!(call.deadline_ms(), Some(6000));
}

#[test]
fn inter_digit_timeout_completes_an_entry() {
    let mut call = Call::demo();
    call.outputs();
    call.played();
    call.press("1");
    call.at(4000).played();
    assert_eq!(call.deadline_ms(), Some(4000 + 8000), "readback waits 8 s");
    call.at(5000).press("1");
    call.at(6000).press("2");
    assert_eq!(call.deadline_ms(), Some(6000 + 3000));
    assert_eq!(call.at(8999).tick(), []);
    assert_eq!(
        call.at(9000).tick(),
        [play(&["you-entered", "digit-1", "digit-2"])]
    );
}

const ENTRY: &str = r##"
    [menus.entry]
    prompts = ["enter"]
    collect = { max_digits = 3 }
    then = { action = "read_back", menu = "entry" }
    invalid_prompt = "invalid"
"##;

#[test]
fn entry_ends_at_max_digits_and_may_contain_star_and_pound() {
    let mut call = Call::start(config(ENTRY), "entry");
    assert_eq!(call.outputs(), [play(&["enter"])]);
    call.played();
    assert_eq!(call.press("*#"), []);
    assert_eq!(
        call.press("0"),
        [play(&["digit-star", "digit-pound", "digit-0"])]
    );
}

#[test]
fn terminator_without_digits_is_an_invalid_entry() {
    let mut call = Call::demo();
    call.outputs();
    call.played();
    call.press("1");
    call.played();
    assert_eq!(call.press("#"), [play(&["invalid", "enter-digits"])]);
    assert_eq!(call.ivr.current_menu(), "readback");
}

#[test]
fn retries_are_shared_by_invalid_keys_and_silence_then_on_failure_applies() {
    let mut call = Call::demo();
    call.outputs();
    call.played();
    assert_eq!(call.press("5"), [main_with("invalid")], "replay 1 of 2");
    call.at(10_000).played();
    assert_eq!(call.expire(), [main_with("invalid")], "replay 2 of 2");
    assert_eq!(call.ms(), 15_000);
    call.at(20_000).played();
    assert_eq!(
        call.press("7"),
        [play(&["invalid", "goodbye"])],
        "the reason, then on_failure's goodbye"
    );
    assert_eq!(call.press("9"), [], "goodbye is not interrupted");
    assert_eq!(call.at(22_000).played(), [IvrOutput::Hangup]);
}

#[test]
fn silence_plays_the_timeout_prompt_when_one_is_set() {
    let mut call = Call::start(
        config(
            r##"
            [menus.m]
            prompts = ["menu"]
            invalid_prompt = "invalid"
            timeout_prompt = "no-input"
            retries = 1
            options = { "1" = { action = "hangup" } }
            "##,
        ),
        "m",
    );
    call.outputs();
    call.played();
    assert_eq!(call.expire(), [play(&["no-input", "menu"])]);
    call.played();
    assert_eq!(
        call.expire(),
        [play(&["no-input"])],
        "default on_failure: silent hangup, after the reason"
    );
    assert_eq!(call.played(), [IvrOutput::Hangup]);
}

#[test]
fn goto_gives_the_next_menu_a_fresh_retry_budget() {
    let mut call = Call::demo();
    call.outputs();
    call.played();
    call.press("5");
    call.played();
    call.press("5");
    call.played();
    // Both replays of main are spent; a trip through readback restores them.
    assert_eq!(call.press("1"), [play(&["enter-digits"])]);
    call.played();
    call.press("42#");
    assert_eq!(call.played(), [play(MAIN)]);
    call.played();
    assert_eq!(call.press("5"), [main_with("invalid")]);
}

#[test]
fn on_failure_goto_plays_the_reason_then_the_other_menu() {
    let mut call = Call::demo();
    call.outputs();
    call.played();
    call.press("1");
    call.played();
    assert_eq!(call.expire(), [play(&["invalid", "enter-digits"])]);
    call.played();
    assert_eq!(
        call.expire(),
        [main_with("invalid")],
        "readback retries = 1"
    );
    assert_eq!(call.ivr.current_menu(), "main");
}

#[test]
fn a_key_during_prompts_barges_in_and_counts() {
    let mut call = Call::demo();
    call.outputs();
    assert_eq!(
        call.at(500).press("1"),
        [IvrOutput::StopPlayback, play(&["enter-digits"])]
    );
    assert_eq!(call.at(800).press("4"), [IvrOutput::StopPlayback]);
    assert_eq!(call.ivr.collected(), "4");
    assert_eq!(
        call.deadline_ms(),
        Some(800 + 3000),
        "the barge-in key starts the inter-digit timer"
    );
    assert_eq!(call.press("#"), [play(&["you-entered", "digit-4"])]);
}

#[test]
fn an_invalid_barge_in_replays_the_menu() {
    let mut call = Call::demo();
    call.outputs();
    assert_eq!(
        call.press("3"),
        [IvrOutput::StopPlayback, main_with("invalid")]
    );
    assert_eq!(
        call.press("9"),
        [IvrOutput::StopPlayback, play(&["goodbye"])],
        "the replay, invalid prompt included, can be barged into too"
    );
}

#[test]
fn without_barge_in_keys_during_prompts_are_dropped() {
    let mut call = Call::start(
        config(
            r##"
            [menus.notice]
            prompts = ["legal-notice"]
            invalid_prompt = "invalid"
            barge_in = false
            options = { "1" = { action = "destination", target = "queue:support" } }
            "##,
        ),
        "notice",
    );
    call.outputs();
    assert_eq!(call.press("1"), []);
    assert_eq!(call.ivr.collected(), "");
    call.at(4000).played();
    assert_eq!(call.deadline_ms(), Some(9000));
    assert_eq!(call.press("1"), [transfer("queue:support", "1")]);
}

const LONGEST_MATCH: &str = r##"
    [menus.m]
    prompts = ["menu"]
    invalid_prompt = "invalid"
    [menus.m.options]
    "1" = { action = "destination", target = "queue:sales" }
    "11" = { action = "destination", target = "queue:support" }
    "2" = { action = "destination", target = "voicemail:100" }
    "*9" = { action = "destination", target = "pstn:+15551234" }
"##;

#[test]
fn multi_key_options_wait_for_the_longest_match() {
    let mut call = Call::start(config(LONGEST_MATCH), "m");
    call.outputs();
    call.played();
    assert_eq!(call.at(1000).press("1"), [], "could still become 11");
    assert_eq!(call.deadline_ms(), Some(1000 + 3000));
    assert_eq!(call.at(3999).tick(), []);
    assert_eq!(call.at(4000).tick(), [transfer("queue:sales", "1")]);

    let mut call = Call::start(config(LONGEST_MATCH), "m");
    call.outputs();
    call.played();
    call.at(1000).press("1");
    assert_eq!(call.at(3500).press("1"), [transfer("queue:support", "11")]);

    let mut call = Call::start(config(LONGEST_MATCH), "m");
    call.outputs();
    call.played();
    assert_eq!(
        call.press("2"),
        [transfer("voicemail:100", "2")],
        "unambiguous"
    );
}

#[test]
fn multi_key_options_reject_what_matches_nothing() {
    let mut call = Call::start(config(LONGEST_MATCH), "m");
    call.outputs();
    call.played();
    assert_eq!(
        call.press("13"),
        [play(&["invalid", "menu"])],
        "13 is not 1"
    );
    call.played();
    call.press("*");
    assert_eq!(
        call.expire(),
        [play(&["invalid", "menu"])],
        "a bare prefix is not an option"
    );
    call.played();
    assert_eq!(call.press("*9"), [transfer("pstn:+15551234", "*9")]);
}

#[test]
fn collected_digits_travel_with_a_transfer() {
    let mut call = Call::start(
        config(
            r##"
            [menus.extension]
            prompts = ["dial-extension"]
            collect = { max_digits = 4, terminator = "#" }
            then = { action = "destination", target = "pstn:" }
            invalid_prompt = "invalid"
            "##,
        ),
        "extension",
    );
    call.outputs();
    call.played();
    assert_eq!(call.press("201#"), [transfer("pstn:", "201")]);
    assert_eq!(call.press("1"), [], "the IVR is done with this call");
}

#[test]
fn a_transfer_on_failure_waits_for_its_explanation() {
    let mut call = Call::start(
        config(
            r##"
            [menus.m]
            prompts = ["menu"]
            invalid_prompt = "transferring-you"
            retries = 0
            on_failure = { action = "destination", target = "queue:operator" }
            options = { "1" = { action = "hangup" } }
            "##,
        ),
        "m",
    );
    call.outputs();
    call.played();
    assert_eq!(call.press("8"), [play(&["transferring-you"])]);
    assert_eq!(
        call.played(),
        [transfer("queue:operator", "")],
        "the rejected key is not passed on"
    );
}

#[test]
fn a_menu_without_prompts_listens_at_once() {
    let mut call = Call::start(
        config(
            r##"
            [menus.silent]
            prompts = []
            invalid_prompt = "invalid"
            options = { "1" = { action = "hangup" } }
            "##,
        ),
        "silent",
    );
    assert_eq!(call.outputs(), []);
    assert_eq!(call.deadline_ms(), Some(5000));
    assert_eq!(call.press("1"), [IvrOutput::Hangup]);
}

#[test]
fn a_config_loop_is_cut_off_after_the_entry_cap() {
    let mut call = Call::start(
        config(
            r##"
            [menus.a]
            prompts = ["a"]
            invalid_prompt = "invalid"
            retries = 0
            on_failure = { action = "goto", menu = "b" }
            options = { "1" = { action = "hangup" } }
            [menus.b]
            prompts = ["b"]
            invalid_prompt = "invalid"
            retries = 1000000
            on_failure = { action = "goto", menu = "a" }
            options = { "1" = { action = "hangup" } }
            "##,
        ),
        "a",
    );
    let mut entries = call.outputs().len();
    // A silent caller: every menu times out, for ever if nothing stopped it.
    loop {
        call.played();
        let outputs = call.expire();
        if outputs == [IvrOutput::Hangup] {
            break;
        }
        assert!(matches!(outputs[..], [IvrOutput::Play(_)]), "{outputs:?}");
        entries += 1;
        assert!(entries <= 50, "still looping after 50 entries");
    }
    assert_eq!(entries as u32, MAX_MENU_ENTRIES_PER_CALL);
    assert_eq!(call.ivr.poll_timeout(), None);
    assert_eq!(call.press("1"), []);
}

#[test]
fn a_caller_can_move_around_well_within_the_cap() {
    let mut call = Call::demo();
    call.outputs();
    for round in 0..20 {
        call.played();
        assert_eq!(call.press("1"), [play(&["enter-digits"])], "round {round}");
        call.played();
        call.press("7#");
        assert_eq!(call.played(), [play(MAIN)], "round {round}");
    }
}

#[test]
fn an_ended_session_ignores_everything() {
    let mut call = Call::demo();
    call.outputs();
    call.played();
    call.press("9");
    call.played();
    assert_eq!(call.press("19#"), []);
    assert_eq!(call.played(), []);
    assert_eq!(call.at(1_000_000).tick(), []);
    assert_eq!(call.ivr.poll_timeout(), None);
}

#[test]
fn keys_that_are_not_on_a_keypad_are_ignored() {
    let mut call = Call::demo();
    call.outputs();
    assert_eq!(call.press("A\u{0}x"), [], "no barge-in either");
    call.played();
    assert_eq!(call.press("D"), []);
    assert_eq!(call.press("9"), [play(&["goodbye"])]);
}

#[test]
fn an_unknown_start_menu_is_an_error() {
    let error = IvrSession::new(Arc::new(example_ivr()), "sales", Instant::now()).unwrap_err();
    assert_eq!(error, IvrError::UnknownMenu("sales".into()));
    assert_eq!(error.to_string(), "unknown ivr menu \"sales\"");
}

#[test]
fn an_unvalidated_config_degrades_without_panicking() {
    let broken: IvrConfig = toml::from_str(
        r##"
        [menus.m]
        prompts = ["menu"]
        invalid_prompt = "invalid"
        options = { "1" = { action = "goto", menu = "nowhere" } }
        [menus.c]
        prompts = []
        invalid_prompt = "invalid"
        collect = { max_digits = 1 }
        "##,
    )
    .unwrap();
    let mut call = Call::start(broken.clone(), "m");
    call.outputs();
    call.played();
    assert_eq!(call.press("1"), [IvrOutput::Hangup]);
    let mut call = Call::start(broken, "c");
    assert_eq!(call.press("1"), [IvrOutput::Hangup], "collect without then");
}

/// What the media side and the caller can do, in any order.
#[derive(Debug, Clone)]
enum Event {
    Key(char),
    PlaybackFinished,
    Wait(u64),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => prop::sample::select("0123456789*#AZ".chars().collect::<Vec<_>>()).prop_map(Event::Key),
        3 => Just(Event::PlaybackFinished),
        2 => (0u64..10_000).prop_map(Event::Wait),
    ]
}

const PROPERTY_MENUS: &str = r##"
    [menus.main]
    prompts = ["welcome", "main-menu"]
    invalid_prompt = "invalid"
    on_failure = { action = "goto", menu = "entry" }
    [menus.main.options]
    "1" = { action = "goto", menu = "entry" }
    "11" = { action = "read_back", menu = "main" }
    "*0" = { action = "destination", target = "queue:operator" }
    "9" = { action = "hangup", prompt = "goodbye" }
    [menus.entry]
    prompts = ["enter"]
    invalid_prompt = "invalid"
    timeout_prompt = "still-there"
    barge_in = false
    retries = 5
    collect = { max_digits = 6, terminator = "#" }
    then = { action = "read_back", prompt = "you-entered", menu = "main" }
    on_failure = { action = "goto", menu = "main" }
"##;

proptest! {
    /// Whatever the caller presses and however the media side is timed: no panic, no timer
    /// while something plays, no hangup or transfer cutting a prompt, nothing after the end.
    #[test]
    fn sessions_keep_their_promises(events in prop::collection::vec(event(), 0..300)) {
        let mut call = Call::start(config(PROPERTY_MENUS), "main");
        let mut playing = false;
        let mut ended = false;
        let mut plays = 0u32;
        let mut check = |outputs: Vec<IvrOutput>, playing: &mut bool| -> Result<(), TestCaseError> {
            for output in outputs {
                prop_assert!(!ended, "output {output:?} after the end");
                match output {
                    IvrOutput::Play(prompts) => {
                        prop_assert!(!prompts.is_empty());
                        *playing = true;
                        plays += 1;
                    }
                    IvrOutput::StopPlayback => *playing = false,
                    IvrOutput::Hangup | IvrOutput::Transfer { .. } => {
                        prop_assert!(!*playing, "{output:?} while a prompt plays");
                        ended = true;
                    }
                }
            }
            Ok(())
        };
        let outputs = call.outputs();
        check(outputs, &mut playing)?;
        for event in events {
            let outputs = match event {
                Event::Key(key) => call.press(&key.to_string()),
                Event::PlaybackFinished if playing => {
                    playing = false;
                    call.played()
                }
                Event::PlaybackFinished => Vec::new(),
                Event::Wait(ms) => {
                    let before = call.ivr.poll_timeout();
                    let now = call.now + Duration::from_millis(ms);
                    call.now = now;
                    let outputs = call.tick();
                    if before.is_some_and(|deadline| now < deadline) {
                        prop_assert!(outputs.is_empty(), "timer fired early: {outputs:?}");
                    }
                    outputs
                }
            };
            check(outputs, &mut playing)?;
            if playing {
                prop_assert_eq!(call.ivr.poll_timeout(), None, "timer runs during a prompt");
            }
            prop_assert!(call.ivr.collected().len() <= 6);
        }
        // Each entry plays once, plus at most one announcement (read-back, goodbye) leading to it.
        prop_assert!(plays <= 2 * MAX_MENU_ENTRIES_PER_CALL + 1);
    }
}
