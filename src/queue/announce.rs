//! What a waiting caller hears at each announcement, as prompt names to play in order.
//!
//! "You are caller number | three. | Your estimated wait time is | two | minutes. | Thank you for
//! waiting. An agent will be with you shortly." Numbers are spoken from whole-word prompts
//! (`number-1` … `number-19`, `number-20`, `number-30` … `number-90`), so anything from 1 to 99
//! sounds natural. A position or a wait beyond 99 is left out rather than read digit by digit or
//! capped into a lie; a branch office with a hundred callers on hold has other problems.

use std::time::Duration;

use super::config::QueueConfig;

pub const POSITION_PROMPT: &str = "queue-position";
pub const WAIT_PROMPT: &str = "queue-wait";
pub const LESS_THAN_A_MINUTE_PROMPT: &str = "less-than-one-minute";
pub const MINUTE_PROMPT: &str = "minute";
pub const MINUTES_PROMPT: &str = "minutes";
pub const THANKS_PROMPT: &str = "queue-thanks";

/// The largest number the shipped number prompts can say.
pub const MAX_SPOKEN_NUMBER: u64 = 99;

/// The prompts of one announcement.
///
/// The wait is rounded up to whole minutes: a caller told "two minutes" who is answered after
/// one is pleased, the other way round they are not.
pub fn announcement_prompts(
    config: &QueueConfig,
    position: usize,
    estimated_wait: Option<Duration>,
) -> Vec<String> {
    let mut prompts = Vec::new();
    if config.announce_position {
        if let Some(number) = u64::try_from(position).ok().and_then(spoken_number) {
            prompts.push(POSITION_PROMPT.to_owned());
            prompts.extend(number);
        }
    }
    if config.announce_wait {
        if let Some(wait) = estimated_wait.and_then(spoken_wait) {
            prompts.push(WAIT_PROMPT.to_owned());
            prompts.extend(wait);
        }
    }
    prompts.push(THANKS_PROMPT.to_owned());
    prompts
}

fn spoken_wait(wait: Duration) -> Option<Vec<String>> {
    if wait < Duration::from_secs(60) {
        return Some(vec![LESS_THAN_A_MINUTE_PROMPT.to_owned()]);
    }
    let minutes = wait.as_secs().div_ceil(60);
    let mut prompts = spoken_number(minutes)?;
    prompts.push(
        if minutes == 1 {
            MINUTE_PROMPT
        } else {
            MINUTES_PROMPT
        }
        .to_owned(),
    );
    Some(prompts)
}

/// `n` as number prompts ("number-40", "number-2" for 42); `None` for 0 and above
/// [`MAX_SPOKEN_NUMBER`], which no announcement needs to say.
pub fn spoken_number(n: u64) -> Option<Vec<String>> {
    match n {
        1..=19 => Some(vec![number_prompt(n)]),
        20..=MAX_SPOKEN_NUMBER => {
            let units = n % 10;
            let mut prompts = vec![number_prompt(n - units)];
            if units > 0 {
                prompts.push(number_prompt(units));
            }
            Some(prompts)
        }
        _ => None,
    }
}

fn number_prompt(n: u64) -> String {
    format!("number-{n}")
}

/// Every prompt this queue's announcements may play, for load-time checks and for loading them
/// once at startup; empty when announcements are off.
pub fn announcement_prompt_names(config: &QueueConfig) -> Vec<String> {
    if config.announce_every().is_none() {
        return Vec::new();
    }
    let mut names = Vec::new();
    if config.announce_position {
        names.push(POSITION_PROMPT.to_owned());
    }
    if config.announce_wait {
        names.extend(
            [
                WAIT_PROMPT,
                LESS_THAN_A_MINUTE_PROMPT,
                MINUTE_PROMPT,
                MINUTES_PROMPT,
            ]
            .map(str::to_owned),
        );
    }
    if config.announce_position || config.announce_wait {
        names.extend((1..=19).chain((20..=90).step_by(10)).map(number_prompt));
    }
    names.push(THANKS_PROMPT.to_owned());
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(prompts: &[String]) -> String {
        prompts.join(" ")
    }

    #[test]
    fn numbers_are_spoken_as_words_up_to_99() {
        let say = |n| spoken_number(n).map(|p| words(&p));
        assert_eq!(say(1).as_deref(), Some("number-1"));
        assert_eq!(say(13).as_deref(), Some("number-13"));
        assert_eq!(say(20).as_deref(), Some("number-20"));
        assert_eq!(say(42).as_deref(), Some("number-40 number-2"));
        assert_eq!(say(99).as_deref(), Some("number-90 number-9"));
        assert_eq!(say(0), None);
        assert_eq!(say(100), None);
    }

    #[test]
    fn a_full_announcement_says_position_wait_and_thanks() {
        let config = QueueConfig::default();
        let prompts = announcement_prompts(&config, 3, Some(Duration::from_secs(90)));
        assert_eq!(
            words(&prompts),
            "queue-position number-3 queue-wait number-2 minutes queue-thanks"
        );
        let prompts = announcement_prompts(&config, 21, Some(Duration::from_secs(60)));
        assert_eq!(
            words(&prompts),
            "queue-position number-20 number-1 queue-wait number-1 minute queue-thanks"
        );
        let prompts = announcement_prompts(&config, 1, Some(Duration::from_secs(59)));
        assert_eq!(
            words(&prompts),
            "queue-position number-1 queue-wait less-than-one-minute queue-thanks"
        );
    }

    #[test]
    fn unknown_or_unsayable_parts_are_left_out() {
        let config = QueueConfig::default();
        assert_eq!(
            words(&announcement_prompts(&config, 2, None)),
            "queue-position number-2 queue-thanks"
        );
        assert_eq!(
            words(&announcement_prompts(
                &config,
                150,
                Some(Duration::from_secs(6001))
            )),
            "queue-thanks"
        );
    }

    #[test]
    fn switched_off_parts_are_not_announced() {
        let config = QueueConfig {
            announce_position: false,
            ..QueueConfig::default()
        };
        let prompts = announcement_prompts(&config, 2, Some(Duration::from_secs(200)));
        assert_eq!(words(&prompts), "queue-wait number-4 minutes queue-thanks");
        let config = QueueConfig {
            announce_wait: false,
            ..QueueConfig::default()
        };
        let prompts = announcement_prompts(&config, 2, Some(Duration::from_secs(200)));
        assert_eq!(words(&prompts), "queue-position number-2 queue-thanks");
    }

    #[test]
    fn every_prompt_an_announcement_plays_is_listed() {
        let config = QueueConfig::default();
        let names = announcement_prompt_names(&config);
        for position in 1..=120 {
            for seconds in [0, 59, 60, 61, 600, 5940, 5941] {
                let wait = Some(Duration::from_secs(seconds));
                for prompt in announcement_prompts(&config, position, wait) {
                    assert!(names.contains(&prompt), "{prompt} missing from the list");
                }
            }
        }
        let silent = QueueConfig {
            announce_every_ms: 0,
            ..QueueConfig::default()
        };
        assert!(announcement_prompt_names(&silent).is_empty());
    }
}
