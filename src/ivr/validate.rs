//! Load-time checks of the `[ivr]` section that serde cannot express.
//!
//! Everything found here would otherwise surface mid-call as silence or a dropped caller, so the
//! daemon refuses to start instead. Problems carry the TOML key path of the offending value; the
//! config loader turns that into a line and column. Array elements appear as their index
//! (`["ivr","menus","main","prompts","1"]`).

use std::collections::BTreeSet;
use std::fmt;

use super::config::{is_dtmf_key, Action, IvrConfig, Menu};

/// One thing wrong with the configuration, located by key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Key path from the top of the file, e.g. `["ivr","menus","main","options","1","menu"]`.
    pub path: Vec<String>,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.join("."), self.message)
    }
}

/// The keys read-back needs, in the order their prompts are checked.
const DIGIT_KEYS: [char; 12] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#'];

impl IvrConfig {
    /// Every problem in the section, in file order where the file has one (menus alphabetically).
    ///
    /// `prompt_exists` answers whether a prompt name resolves to a playable file; it is a
    /// parameter so this module needs no file system and tests need no WAV files.
    pub fn validate(&self, prompt_exists: &dyn Fn(&str) -> bool) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        self.visit_prompts(&mut |path, name, is_digit| {
            if !prompt_exists(name) {
                let message = if is_digit {
                    format!("digit prompt \"{name}\" not found (read_back plays all twelve keys)")
                } else {
                    format!("prompt \"{name}\" not found")
                };
                problems.push(ConfigProblem { path, message });
            }
        });
        for (name, menu) in &self.menus {
            self.check_menu(&menu_path(name), name, menu, &mut problems);
        }
        problems
    }

    /// Every prompt a call through these menus may play, so the loader can convert them all once
    /// at startup rather than on a caller's time.
    pub fn prompt_names(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        self.visit_prompts(&mut |_, name, _| {
            names.insert(name.to_owned());
        });
        names
    }

    fn uses_read_back(&self) -> bool {
        self.menus.values().any(|menu| {
            let options = menu.options.iter().flat_map(|options| options.values());
            options
                .chain(&menu.then)
                .chain([&menu.on_failure])
                .any(|action| matches!(action, Action::ReadBack { .. }))
        })
    }

    /// Calls `visit(path, prompt, is_digit_prompt)` for every prompt reference, digit prompts
    /// first (they all point at `digit_prompt_prefix`), then each menu's in file order.
    fn visit_prompts(&self, visit: &mut dyn FnMut(Vec<String>, &str, bool)) {
        if self.uses_read_back() {
            for key in DIGIT_KEYS {
                if let Some(name) = self.digit_prompt(key) {
                    visit(path(&["ivr", "digit_prompt_prefix"]), &name, true);
                }
            }
        }
        for (menu_name, menu) in &self.menus {
            let base = menu_path(menu_name);
            for (index, prompt) in menu.prompts.iter().enumerate() {
                visit(
                    extend(&base, &["prompts", &index.to_string()]),
                    prompt,
                    false,
                );
            }
            for (action_path, action) in actions(&base, menu) {
                if let Action::Hangup {
                    prompt: Some(prompt),
                }
                | Action::ReadBack {
                    prompt: Some(prompt),
                    ..
                } = action
                {
                    visit(extend(&action_path, &["prompt"]), prompt, false);
                }
                if let Action::Destination { target } = action {
                    if let Some(prompt) = target.goodbye_prompt() {
                        visit(extend(&action_path, &["target"]), prompt, false);
                    }
                }
            }
            visit(
                extend(&base, &["invalid_prompt"]),
                &menu.invalid_prompt,
                false,
            );
            if let Some(prompt) = &menu.timeout_prompt {
                visit(extend(&base, &["timeout_prompt"]), prompt, false);
            }
        }
    }

    fn check_menu(&self, base: &[String], name: &str, menu: &Menu, out: &mut Vec<ConfigProblem>) {
        let mut problem = |keys: &[&str], message: String| {
            out.push(ConfigProblem {
                path: extend(base, keys),
                message,
            })
        };
        match (&menu.options, &menu.collect) {
            (Some(_), Some(_)) => problem(
                &[],
                format!("menu \"{name}\" has both options and collect; keep one"),
            ),
            (None, None) => problem(
                &[],
                format!("menu \"{name}\" has neither options nor collect"),
            ),
            _ => {}
        }
        if let Some(options) = &menu.options {
            if options.is_empty() {
                problem(&["options"], format!("menu \"{name}\" has no options"));
            }
            for key in options.keys() {
                if key.is_empty() || !key.chars().all(is_dtmf_key) {
                    problem(
                        &["options", key],
                        format!("option \"{key}\" is not a string of keypad keys (0-9, *, #)"),
                    );
                }
            }
        }
        if let Some(collect) = &menu.collect {
            if collect.max_digits == 0 {
                problem(
                    &["collect", "max_digits"],
                    "max_digits 0 ends entry before the first key; use at least 1".to_owned(),
                );
            }
            if let Some(terminator) = &collect.terminator {
                if collect.terminator_key().is_none() {
                    problem(
                        &["collect", "terminator"],
                        format!(
                            "terminator \"{terminator}\" is not a single keypad key (0-9, *, #)"
                        ),
                    );
                }
            }
            if menu.then.is_none() {
                problem(
                    &["collect"],
                    format!("menu \"{name}\" collects digits but has no `then` action"),
                );
            }
        } else if menu.then.is_some() {
            problem(
                &["then"],
                format!("`then` applies to collected digits, but menu \"{name}\" has no collect"),
            );
        }
        if menu.timeout_ms == 0 {
            problem(
                &["timeout_ms"],
                "timeout_ms 0 gives the caller no time to press a key".to_owned(),
            );
        }
        if menu.inter_digit_timeout_ms == 0 {
            problem(
                &["inter_digit_timeout_ms"],
                "inter_digit_timeout_ms 0 gives the caller no time to press a second key"
                    .to_owned(),
            );
        }
        for (action_path, action) in actions(base, menu) {
            self.check_action(action_path, action, out);
        }
    }

    fn check_action(&self, base: Vec<String>, action: &Action, out: &mut Vec<ConfigProblem>) {
        match action {
            Action::Goto { menu } | Action::ReadBack { menu, .. } => {
                if !self.menus.contains_key(menu) {
                    out.push(ConfigProblem {
                        path: extend(&base, &["menu"]),
                        message: format!("unknown menu \"{menu}\""),
                    });
                }
            }
            // A destination was parsed at load: an empty or unknown one never gets here.
            Action::Destination { .. } | Action::Hangup { .. } => {}
        }
    }
}

/// A menu's actions with their key paths, in file order of their keys.
fn actions<'a>(base: &[String], menu: &'a Menu) -> Vec<(Vec<String>, &'a Action)> {
    let mut found = Vec::new();
    for (key, action) in menu.options.iter().flatten() {
        found.push((extend(base, &["options", key]), action));
    }
    if let Some(then) = &menu.then {
        found.push((extend(base, &["then"]), then));
    }
    found.push((extend(base, &["on_failure"]), &menu.on_failure));
    found
}

fn path(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|key| (*key).to_owned()).collect()
}

fn menu_path(name: &str) -> Vec<String> {
    path(&["ivr", "menus", name])
}

fn extend(base: &[String], keys: &[&str]) -> Vec<String> {
    let mut path = base.to_vec();
    path.extend(keys.iter().map(|key| (*key).to_owned()));
    path
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::ivr::example_ivr;

    fn parse(text: &str) -> IvrConfig {
        toml::from_str(text).expect("test config parses")
    }

    fn paths(problems: &[ConfigProblem]) -> Vec<String> {
        problems.iter().map(|p| p.path.join(".")).collect()
    }

    /// Checks against the WAV files shipped in the repository's `prompts/`, the directory the
    /// example configuration names.
    fn shipped_prompt(name: &str) -> bool {
        let file = format!("{}/prompts/{name}.wav", env!("CARGO_MANIFEST_DIR"));
        std::path::Path::new(&file).is_file()
    }

    #[test]
    fn example_is_valid_with_the_shipped_prompts() {
        let problems = example_ivr().validate(&shipped_prompt);
        assert_eq!(problems, [], "{problems:?}");
    }

    #[test]
    fn missing_prompts_are_reported_where_they_are_named() {
        let problems = example_ivr().validate(&|name| name != "goodbye" && name != "main-menu");
        assert_eq!(
            paths(&problems),
            [
                "ivr.menus.main.prompts.1",
                "ivr.menus.main.options.9.prompt",
                "ivr.menus.main.on_failure.prompt",
            ]
        );
        assert_eq!(problems[0].message, "prompt \"main-menu\" not found");
        assert_eq!(
            problems[1].to_string(),
            "ivr.menus.main.options.9.prompt: prompt \"goodbye\" not found"
        );
    }

    #[test]
    fn digit_prompts_are_required_once_read_back_is_used() {
        let problems = example_ivr().validate(&|name| name != "digit-star" && name != "digit-4");
        assert_eq!(
            paths(&problems),
            ["ivr.digit_prompt_prefix", "ivr.digit_prompt_prefix"]
        );
        assert!(problems[0].message.contains("\"digit-4\""), "{problems:?}");
        assert!(
            problems[1].message.contains("\"digit-star\""),
            "{problems:?}"
        );

        let without_read_back = parse(
            r##"
            [menus.m]
            prompts = ["p"]
            invalid_prompt = "i"
            options = { "1" = { action = "goto", menu = "m" } }
            "##,
        );
        let problems = without_read_back.validate(&|name| !name.starts_with("digit-"));
        assert_eq!(problems, [], "no read_back, so no digit prompts needed");
    }

    #[test]
    fn a_hang_up_destination_needs_its_goodbye_prompt_and_loads_it() {
        let ivr = parse(
            r##"
            [menus.m]
            prompts = ["p"]
            invalid_prompt = "i"
            options = { "1" = { action = "destination", target = "hangup:closed" } }
            "##,
        );
        let problems = ivr.validate(&|name| name != "closed");
        assert_eq!(
            problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["ivr.menus.m.options.1.target: prompt \"closed\" not found"]
        );
        assert!(ivr.prompt_names().contains("closed"));
    }

    #[test]
    fn unknown_menus_are_reported_at_the_reference() {
        let ivr = parse(
            r##"
            [menus.main]
            prompts = []
            invalid_prompt = "i"
            on_failure = { action = "goto", menu = "mian" }
            [menus.main.options]
            "1" = { action = "goto", menu = "sales" }
            "2" = { action = "read_back", menu = "main" }
            [menus.entry]
            prompts = []
            invalid_prompt = "i"
            collect = { max_digits = 4 }
            then = { action = "read_back", menu = "nowhere" }
            "##,
        );
        let problems = ivr.validate(&|_| true);
        assert_eq!(
            paths(&problems),
            [
                "ivr.menus.entry.then.menu",
                "ivr.menus.main.options.1.menu",
                "ivr.menus.main.on_failure.menu",
            ]
        );
        assert_eq!(problems[0].message, "unknown menu \"nowhere\"");
        assert_eq!(problems[1].message, "unknown menu \"sales\"");
        assert_eq!(problems[2].message, "unknown menu \"mian\"");
    }

    #[test]
    fn option_keys_must_be_keypad_strings() {
        let ivr = parse(
            r##"
            [menus.m]
            prompts = []
            invalid_prompt = "i"
            [menus.m.options]
            "11" = { action = "hangup" }
            "*" = { action = "hangup" }
            "#9" = { action = "hangup" }
            "1a" = { action = "hangup" }
            "" = { action = "hangup" }
            " 2" = { action = "hangup" }
            "##,
        );
        let problems = ivr.validate(&|_| true);
        assert_eq!(
            paths(&problems),
            [
                "ivr.menus.m.options.",
                "ivr.menus.m.options. 2",
                "ivr.menus.m.options.1a"
            ]
        );
        assert_eq!(problems[0].path.last().map(String::as_str), Some(""));
        assert_eq!(
            problems[2].message,
            "option \"1a\" is not a string of keypad keys (0-9, *, #)"
        );
    }

    #[test]
    fn a_menu_has_exactly_one_of_options_and_collect() {
        let ivr = parse(
            r##"
            [menus.both]
            prompts = []
            invalid_prompt = "i"
            options = { "1" = { action = "hangup" } }
            collect = { max_digits = 4 }
            then = { action = "hangup" }
            [menus.neither]
            prompts = []
            invalid_prompt = "i"
            [menus.empty]
            prompts = []
            invalid_prompt = "i"
            options = {}
            "##,
        );
        let problems = ivr.validate(&|_| true);
        assert_eq!(
            paths(&problems),
            [
                "ivr.menus.both",
                "ivr.menus.empty.options",
                "ivr.menus.neither"
            ]
        );
        assert!(problems[0].message.contains("both options and collect"));
        assert!(problems[2].message.contains("neither options nor collect"));
    }

    #[test]
    fn collect_settings_are_checked() {
        let ivr = parse(
            r##"
            [menus.a]
            prompts = []
            invalid_prompt = "i"
            collect = { max_digits = 0, terminator = "*#" }
            then = { action = "destination", target = "pstn:" }
            [menus.b]
            prompts = []
            invalid_prompt = "i"
            collect = { max_digits = 3, terminator = "A" }
            [menus.c]
            prompts = []
            invalid_prompt = "i"
            options = { "1" = { action = "hangup" } }
            then = { action = "hangup" }
            [menus.d]
            prompts = []
            invalid_prompt = "i"
            collect = { max_digits = 3, terminator = "*" }
            then = { action = "destination", target = "queue:q" }
            timeout_ms = 0
            inter_digit_timeout_ms = 0
            "##,
        );
        let problems = ivr.validate(&|_| true);
        assert_eq!(
            paths(&problems),
            [
                "ivr.menus.a.collect.max_digits",
                "ivr.menus.a.collect.terminator",
                "ivr.menus.b.collect.terminator",
                "ivr.menus.b.collect",
                "ivr.menus.c.then",
                "ivr.menus.d.timeout_ms",
                "ivr.menus.d.inter_digit_timeout_ms",
            ]
        );
        assert_eq!(
            problems[1].message,
            "terminator \"*#\" is not a single keypad key (0-9, *, #)"
        );
        assert!(problems[3].message.contains("no `then`"), "{problems:?}");
    }

    #[test]
    fn an_empty_or_unknown_destination_is_refused_at_load() {
        for (target, expected) in [
            (" ", "destination target is empty"),
            ("quue:support", "unknown destination \"quue:support\""),
        ] {
            let text = format!(
                "[menus.d]\nprompts = []\ninvalid_prompt = \"i\"\n\
                 collect = {{ max_digits = 3 }}\n\
                 then = {{ action = \"destination\", target = \"{target}\" }}\n"
            );
            let error = toml::from_str::<IvrConfig>(&text).unwrap_err();
            assert!(error.to_string().contains(expected), "{error}");
            let at = error.span().map(|s| &text[s]).unwrap_or_default();
            assert!(at.contains(target), "the error points at the target: {at}");
        }
    }

    #[test]
    fn prompt_names_lists_everything_a_call_can_play() {
        let names = example_ivr().prompt_names();
        let mut expected: BTreeSet<String> = [
            "welcome",
            "main-menu",
            "agent-option",
            "invalid",
            "goodbye",
            "enter-digits",
            "you-entered",
            "digit-star",
            "digit-pound",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        expected.extend((0..10).map(|digit| format!("digit-{digit}")));
        assert_eq!(names, expected);
    }
}
