//! The `[ivr]` section of the configuration file.
//!
//! The shape mirrors `config.example.toml` one to one so that an operator reading the file and a
//! developer reading these types see the same names. Every struct denies unknown fields: a typo
//! such as `timout_ms` must stop the daemon at load time instead of silently falling back to a
//! default. Checks that serde cannot express (menu references, prompt files, DTMF keys) live in
//! [`validate`](super::validate).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::route::Destination;

/// Menu engine settings shared by all calls.
///
/// The lead's top-level config holds this as its `ivr` field; with `#[serde(default)]` there a
/// configuration without `[ivr]` gets a valid, empty one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IvrConfig {
    /// Read-back plays `PREFIX0` … `PREFIX9`, `PREFIXstar`, `PREFIXpound`, so a deployment can
    /// swap the whole digit voice (another language, another speaker) by changing one string.
    #[serde(default = "default_digit_prompt_prefix")]
    pub digit_prompt_prefix: String,
    /// Menus by name; routes and `goto` actions refer to these names. A BTreeMap keeps
    /// validation output in a stable order.
    #[serde(default)]
    pub menus: BTreeMap<String, Menu>,
}

impl Default for IvrConfig {
    fn default() -> Self {
        IvrConfig {
            digit_prompt_prefix: default_digit_prompt_prefix(),
            menus: BTreeMap::new(),
        }
    }
}

impl IvrConfig {
    /// The prompt that speaks one DTMF key during read-back; `None` for anything that is not one
    /// of the twelve keys on a phone, because no prompt exists to say it.
    pub fn digit_prompt(&self, key: char) -> Option<String> {
        let word = match key {
            '0'..='9' => return Some(format!("{}{key}", self.digit_prompt_prefix)),
            '*' => "star",
            '#' => "pound",
            _ => return None,
        };
        Some(format!("{}{word}", self.digit_prompt_prefix))
    }
}

/// One menu: what the caller hears and what their keys do.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Menu {
    /// Played in order on entry and on every replay.
    pub prompts: Vec<String>,
    /// Choice menus: DTMF key string → action. Keys may be several keys long ("11"); the engine
    /// then waits the inter-digit timeout before settling for a shorter match. Exactly one of
    /// `options` and `collect` must be present.
    #[serde(default)]
    pub options: Option<BTreeMap<String, Action>>,
    /// Free-form entry (account numbers, extensions); `then` receives the digits.
    #[serde(default)]
    pub collect: Option<Collect>,
    /// Applied to the digits a `collect` menu gathered.
    #[serde(default)]
    pub then: Option<Action>,
    /// How long to wait for the first key once the prompts have finished.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// How long to wait for each further key before treating the entry as complete.
    #[serde(default = "default_inter_digit_timeout_ms")]
    pub inter_digit_timeout_ms: u64,
    /// Replays after an invalid choice or no input before `on_failure` applies.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Played before a replay (or before `on_failure`) when the caller pressed something unusable.
    pub invalid_prompt: String,
    /// Played instead of `invalid_prompt` when the caller pressed nothing; absent means
    /// `invalid_prompt`, since most deployments record a single "sorry" prompt.
    #[serde(default)]
    pub timeout_prompt: Option<String>,
    /// Applied once the retries are spent. Defaults to hanging up without a prompt: a caller who
    /// cannot or does not answer should not hold a trunk channel forever.
    #[serde(default = "default_on_failure")]
    pub on_failure: Action,
    /// Whether a key pressed during the prompts cuts them short and counts as input. On by
    /// default because regular callers know the menu and should not have to sit through it.
    #[serde(default = "default_barge_in")]
    pub barge_in: bool,
}

/// Timeouts are capped here so that an absurd value (no caller waits a day for a key) cannot
/// overflow `Instant` arithmetic in the engine.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

impl Menu {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms).min(MAX_TIMEOUT)
    }

    pub fn inter_digit_timeout(&self) -> Duration {
        Duration::from_millis(self.inter_digit_timeout_ms).min(MAX_TIMEOUT)
    }

    /// The prompt for a caller who pressed nothing.
    pub fn no_input_prompt(&self) -> &str {
        self.timeout_prompt
            .as_deref()
            .unwrap_or(&self.invalid_prompt)
    }
}

/// Settings for free-form digit entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Collect {
    /// Entry ends as soon as this many keys were pressed.
    pub max_digits: u32,
    /// The key that ends entry early (it is not part of the digits). Absent means entry ends only
    /// at `max_digits` or after the inter-digit timeout.
    #[serde(default)]
    pub terminator: Option<String>,
}

impl Collect {
    /// The terminator as a key, if it is one; validation reports any other value.
    pub fn terminator_key(&self) -> Option<char> {
        let mut keys = self.terminator.as_deref()?.chars();
        match (keys.next(), keys.next()) {
            (Some(key), None) if is_dtmf_key(key) => Some(key),
            _ => None,
        }
    }
}

/// What a choice, a completed entry or an exhausted retry budget does.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Enter another menu (or the same one, which restarts it with a fresh retry budget).
    Goto { menu: String },
    /// End the call, after `prompt` has been heard in full.
    Hangup {
        #[serde(default)]
        prompt: Option<String>,
    },
    /// Hand the call to something outside the IVR ("queue:support", "voicemail:100",
    /// "pstn:+15551234"), parsed at load; the call layer routes it.
    Destination { target: Destination },
    /// Play `prompt`, then the collected digits one by one, then enter `menu`.
    ReadBack {
        #[serde(default)]
        prompt: Option<String>,
        menu: String,
    },
}

/// The keys of a telephone keypad. A–D exist in RFC 4733 but on no phone a caller holds, and no
/// read-back prompt could say them, so they are not accepted anywhere.
pub fn is_dtmf_key(key: char) -> bool {
    key.is_ascii_digit() || key == '*' || key == '#'
}

fn default_digit_prompt_prefix() -> String {
    "digit-".to_owned()
}

fn default_timeout_ms() -> u64 {
    5000
}

fn default_inter_digit_timeout_ms() -> u64 {
    3000
}

fn default_retries() -> u32 {
    2
}

fn default_on_failure() -> Action {
    Action::Hangup { prompt: None }
}

fn default_barge_in() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ivr::example_ivr;

    fn parse(text: &str) -> Result<IvrConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn example_parses_with_its_menus() {
        let ivr = example_ivr();
        assert_eq!(ivr.digit_prompt_prefix, "digit-");
        let main = &ivr.menus["main"];
        assert_eq!(main.prompts, ["welcome", "main-menu", "agent-option"]);
        assert_eq!(main.timeout(), Duration::from_secs(5));
        assert_eq!(main.retries, 2);
        assert!(main.barge_in, "barge_in defaults to on");
        let options = main.options.as_ref().expect("main is a choice menu");
        assert_eq!(
            options["1"],
            Action::Goto {
                menu: "readback".into()
            }
        );
        assert_eq!(
            options["9"],
            Action::Hangup {
                prompt: Some("goodbye".into())
            }
        );
        let readback = &ivr.menus["readback"];
        let collect = readback.collect.as_ref().expect("readback collects digits");
        assert_eq!(collect.max_digits, 20);
        assert_eq!(collect.terminator_key(), Some('#'));
        assert_eq!(
            readback.then,
            Some(Action::ReadBack {
                prompt: Some("you-entered".into()),
                menu: "main".into()
            })
        );
        assert_eq!(readback.timeout(), Duration::from_secs(8));
        assert_eq!(readback.no_input_prompt(), "invalid");
    }

    #[test]
    fn omitted_settings_get_operator_defaults() {
        let ivr = parse(
            r##"
            [menus.m]
            prompts = ["p"]
            invalid_prompt = "invalid"
            options = { "1" = { action = "hangup" } }
            "##,
        )
        .unwrap();
        assert_eq!(ivr.digit_prompt_prefix, "digit-");
        let menu = &ivr.menus["m"];
        assert_eq!(menu.timeout_ms, 5000);
        assert_eq!(menu.inter_digit_timeout_ms, 3000);
        assert_eq!(menu.retries, 2);
        assert!(menu.barge_in);
        assert_eq!(menu.on_failure, Action::Hangup { prompt: None });
        assert_eq!(menu.timeout_prompt, None);
        assert_eq!(menu.no_input_prompt(), "invalid");
        assert_eq!(IvrConfig::default(), parse("").unwrap());
    }

    #[test]
    fn every_action_kind_parses() {
        let ivr = parse(
            r##"
            [menus.m]
            prompts = []
            invalid_prompt = "i"
            [menus.m.options]
            "1" = { action = "goto", menu = "m" }
            "2" = { action = "hangup", prompt = "bye" }
            "3" = { action = "destination", target = "queue:support" }
            "4" = { action = "read_back", menu = "m" }
            "##,
        )
        .unwrap();
        let options = ivr.menus["m"].options.clone().unwrap();
        assert_eq!(
            options["3"],
            Action::Destination {
                target: "queue:support".parse().unwrap()
            }
        );
        assert_eq!(
            options["4"],
            Action::ReadBack {
                prompt: None,
                menu: "m".into()
            }
        );
    }

    #[test]
    fn misspelt_keys_are_rejected_everywhere() {
        let menu = |extra: &str| {
            format!(
                "[menus.m]\nprompts = []\ninvalid_prompt = \"i\"\n{extra}\n\
                 options = {{ \"1\" = {{ action = \"hangup\" }} }}\n"
            )
        };
        for (typo, offending) in [
            ("timout_ms = 1", "timout_ms"),
            (
                "collect = { max_digits = 1, terminater = \"#\" }",
                "terminater",
            ),
            (
                "then = { action = \"goto\", menu = \"m\", prompt = \"x\" }",
                "prompt",
            ),
            ("on_failure = { action = \"hang_up\" }", "hang_up"),
        ] {
            let error = parse(&menu(typo)).expect_err(typo).to_string();
            assert!(error.contains(offending), "{typo}: {error}");
        }
        let error = parse("digit_prefix = \"d\"").unwrap_err().to_string();
        assert!(error.contains("digit_prefix"), "{error}");
    }

    #[test]
    fn digit_prompts_cover_the_keypad_only() {
        let ivr = IvrConfig {
            digit_prompt_prefix: "fr/chiffre-".into(),
            ..IvrConfig::default()
        };
        assert_eq!(ivr.digit_prompt('7').as_deref(), Some("fr/chiffre-7"));
        assert_eq!(ivr.digit_prompt('*').as_deref(), Some("fr/chiffre-star"));
        assert_eq!(ivr.digit_prompt('#').as_deref(), Some("fr/chiffre-pound"));
        assert_eq!(ivr.digit_prompt('A'), None);
    }

    #[test]
    fn terminator_must_be_one_keypad_key() {
        let collect = |terminator: Option<&str>| Collect {
            max_digits: 4,
            terminator: terminator.map(str::to_owned),
        };
        assert_eq!(collect(Some("*")).terminator_key(), Some('*'));
        assert_eq!(collect(None).terminator_key(), None);
        assert_eq!(collect(Some("##")).terminator_key(), None);
        assert_eq!(collect(Some("A")).terminator_key(), None);
        assert_eq!(collect(Some("")).terminator_key(), None);
    }
}
