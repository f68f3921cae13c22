//! Load-time checks of `[queues.*]` and `[[agent]]` that serde cannot express.
//!
//! Each would otherwise surface on a caller's time: silence instead of music, a ring that never
//! times out, an overflow into a menu that does not exist. Problems carry the TOML key path of
//! the offending value (array elements as their index), which the config loader turns into a
//! line and column.

use std::collections::{BTreeMap, BTreeSet};

use super::announce::announcement_prompt_names;
use super::config::{AcdAgent, QueueConfig};
use crate::config::problem::Problem;
use crate::ivr::config::Action;
use crate::route::Destination;

/// Below this, announcements would follow each other with hardly any music in between (one
/// takes about six seconds to say).
const MIN_ANNOUNCE_EVERY_MS: u64 = 10_000;

/// Every problem in the queues and agents, queues alphabetically, then agents in file order.
///
/// `prompt_exists` and `menu_exists` answer whether a prompt name resolves to a file and whether
/// an IVR menu of that name is configured; parameters, so this module needs neither the file
/// system nor the IVR section.
pub fn validate(
    queues: &BTreeMap<String, QueueConfig>,
    agents: &[AcdAgent],
    prompt_exists: &dyn Fn(&str) -> bool,
    menu_exists: &dyn Fn(&str) -> bool,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (name, queue) in queues {
        let mut check = QueueCheck {
            name,
            queue,
            queues,
            out: &mut problems,
        };
        check.prompts(prompt_exists);
        check.timing();
        check.overflow(prompt_exists, menu_exists);
        check.skills(agents);
    }
    check_agents(agents, &mut problems);
    problems
}

struct QueueCheck<'a> {
    name: &'a str,
    queue: &'a QueueConfig,
    queues: &'a BTreeMap<String, QueueConfig>,
    out: &'a mut Vec<Problem>,
}

impl QueueCheck<'_> {
    fn problem(&mut self, keys: &[&str], message: String) {
        let mut path = vec!["queues".to_owned(), self.name.to_owned()];
        path.extend(keys.iter().map(|key| (*key).to_owned()));
        self.out.push(Problem { path, message });
    }

    fn prompts(&mut self, prompt_exists: &dyn Fn(&str) -> bool) {
        if !prompt_exists(&self.queue.moh) {
            let message = format!("music-on-hold prompt \"{}\" not found", self.queue.moh);
            self.problem(&["moh"], message);
        }
        // One problem for the lot: a prompt directory without the announcement set would
        // otherwise bury everything else under thirty-odd lines.
        let missing: Vec<String> = announcement_prompt_names(self.queue)
            .into_iter()
            .filter(|name| !prompt_exists(name))
            .map(|name| format!("\"{name}\""))
            .collect();
        if !missing.is_empty() {
            let message = format!(
                "announcement prompts not found: {} (set announce_every_ms = 0 to turn \
                 announcements off)",
                missing.join(", ")
            );
            self.problem(&["announce_every_ms"], message);
        }
    }

    fn timing(&mut self) {
        let queue = self.queue;
        if queue.announce_every_ms > 0 && queue.announce_every_ms < MIN_ANNOUNCE_EVERY_MS {
            let message = format!(
                "announce_every_ms {} leaves almost no music between announcements; use at \
                 least {MIN_ANNOUNCE_EVERY_MS}, or 0 to turn them off",
                queue.announce_every_ms
            );
            self.problem(&["announce_every_ms"], message);
        }
        if queue.max_wait_ms == 0 {
            let message = "max_wait_ms 0 sends every caller to overflow before an agent could \
                           become free"
                .to_owned();
            self.problem(&["max_wait_ms"], message);
        }
        if queue.ring_timeout_ms == 0 {
            let message =
                "ring_timeout_ms 0 withdraws every offer before an agent could answer".to_owned();
            self.problem(&["ring_timeout_ms"], message);
        }
    }

    fn overflow(
        &mut self,
        prompt_exists: &dyn Fn(&str) -> bool,
        menu_exists: &dyn Fn(&str) -> bool,
    ) {
        match &self.queue.overflow {
            Action::Goto { menu } => {
                if !menu_exists(menu) {
                    self.problem(
                        &["overflow", "menu"],
                        format!("unknown ivr menu \"{menu}\""),
                    );
                }
            }
            Action::Hangup {
                prompt: Some(prompt),
            } => {
                if !prompt_exists(prompt) {
                    self.problem(
                        &["overflow", "prompt"],
                        format!("prompt \"{prompt}\" not found"),
                    );
                }
            }
            Action::Hangup { prompt: None } => {}
            Action::Destination { target } => self.overflow_target(target, prompt_exists),
            Action::ReadBack { .. } => self.problem(
                &["overflow", "action"],
                "read_back reads collected digits, and a queue collects none; use goto, hangup \
                 or destination"
                    .to_owned(),
            ),
        }
    }

    fn overflow_target(&mut self, target: &Destination, prompt_exists: &dyn Fn(&str) -> bool) {
        if let Some(prompt) = target.goodbye_prompt().filter(|p| !prompt_exists(p)) {
            let message = format!("prompt \"{prompt}\" not found");
            self.problem(&["overflow", "target"], message);
        }
        let Destination::Queue { name: queue } = target else {
            return;
        };
        if queue == self.name {
            let message = format!(
                "overflow into its own queue \"{queue}\" would keep callers on hold forever"
            );
            self.problem(&["overflow", "target"], message);
        } else if !self.queues.contains_key(queue) {
            self.problem(
                &["overflow", "target"],
                format!("unknown queue \"{queue}\""),
            );
        }
    }

    /// Agents may also come from elsewhere (the cloud), so a queue no configured agent could
    /// answer is only a problem when agents are configured here at all.
    fn skills(&mut self, agents: &[AcdAgent]) {
        for (index, skill) in self.queue.skills.iter().enumerate() {
            if skill.trim().is_empty() {
                self.problem(
                    &["skills", &index.to_string()],
                    "skill name is empty".to_owned(),
                );
            }
        }
        let answerable = agents.iter().any(|agent| {
            let skills: BTreeSet<&String> = agent.skills.iter().collect();
            self.queue.skills.iter().all(|skill| skills.contains(skill))
        });
        if !agents.is_empty() && !answerable {
            let message = format!(
                "no [[agent]] has all of the skills {:?}: every caller would overflow",
                self.queue.skills
            );
            self.problem(&["skills"], message);
        }
    }
}

fn check_agents(agents: &[AcdAgent], out: &mut Vec<Problem>) {
    for (index, agent) in agents.iter().enumerate() {
        let path = |key: String| vec!["agent".to_owned(), index.to_string(), key];
        if agent.id.trim().is_empty() {
            out.push(Problem {
                path: path("id".into()),
                message: "agent id is empty".to_owned(),
            });
        } else if agents[..index].iter().any(|other| other.id == agent.id) {
            out.push(Problem {
                path: path("id".into()),
                message: format!("duplicate agent id \"{}\"", agent.id),
            });
        }
        for (skill_index, skill) in agent.skills.iter().enumerate() {
            if skill.trim().is_empty() {
                let mut path = path("skills".into());
                path.push(skill_index.to_string());
                out.push(Problem {
                    path,
                    message: "skill name is empty".to_owned(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct File {
        #[serde(default)]
        queues: BTreeMap<String, QueueConfig>,
        #[serde(default, rename = "agent")]
        agents: Vec<AcdAgent>,
    }

    fn problems(text: &str) -> Vec<Problem> {
        let file: File = toml::from_str(text).expect("test config parses");
        validate(&file.queues, &file.agents, &shipped_prompt, &|menu| {
            menu == "main"
        })
    }

    /// The WAV files shipped in the repository's `prompts/`.
    fn shipped_prompt(name: &str) -> bool {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("prompts")
            .join(format!("{name}.wav"))
            .is_file()
    }

    fn found(problems: &[Problem]) -> Vec<String> {
        problems
            .iter()
            .map(|p| format!("{}: {}", p.path.join("."), p.message))
            .collect()
    }

    #[test]
    fn defaults_and_the_documented_example_are_clean_with_the_shipped_prompts() {
        let found = found(&problems(
            r#"
            [queues.default]
            [queues.support]
            skills = ["support"]
            overflow = { action = "hangup", prompt = "goodbye" }
            [queues.sales]
            overflow = { action = "destination", target = "queue:support" }
            [queues.menu]
            overflow = { action = "goto", menu = "main" }
            [[agent]]
            id = "alice"
            skills = ["support"]
            "#,
        ));
        assert!(found.is_empty(), "{found:#?}");
    }

    #[test]
    fn missing_prompts_are_located() {
        let found = found(&problems(
            r#"
            [queues.q]
            moh = "elevator"
            overflow = { action = "hangup", prompt = "closed" }
            "#,
        ));
        assert_eq!(
            found,
            [
                "queues.q.moh: music-on-hold prompt \"elevator\" not found",
                "queues.q.overflow.prompt: prompt \"closed\" not found",
            ]
        );
    }

    #[test]
    fn announcement_prompts_are_required_only_when_announcing() {
        let file: File =
            toml::from_str("[queues.q]\n[queues.quiet]\nannounce_every_ms = 0").expect("parses");
        let only_moh = |name: &str| name == "moh" || name == "queue-unavailable";
        let found = found(&validate(&file.queues, &[], &only_moh, &|_| true));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].starts_with(
            "queues.q.announce_every_ms: announcement prompts not found: \"queue-position\", \
             \"queue-wait\""
        ));
        assert!(found[0].contains("\"number-90\", \"queue-thanks\" (set announce_every_ms = 0"));
    }

    #[test]
    fn zero_timeouts_that_make_no_sense_are_refused() {
        let found = found(&problems(
            "[queues.q]\nmax_wait_ms = 0\nring_timeout_ms = 0\nannounce_every_ms = 2000\n\
             wrap_up_ms = 0\nfirst_announce_ms = 0",
        ));
        let paths: Vec<&str> = found.iter().map(|p| p.split(':').next().unwrap()).collect();
        assert_eq!(
            paths,
            [
                "queues.q.announce_every_ms",
                "queues.q.max_wait_ms",
                "queues.q.ring_timeout_ms"
            ],
            "{found:#?}"
        );
    }

    #[test]
    fn an_empty_overflow_target_is_refused_at_load() {
        let text = "[queues.e]\noverflow = { action = \"destination\", target = \" \" }\n";
        let error = toml::from_str::<File>(text).unwrap_err();
        assert!(
            error.to_string().contains("destination target is empty"),
            "{error}"
        );
    }

    #[test]
    fn overflow_targets_must_exist() {
        let found = found(&problems(
            r#"
            [queues.a]
            overflow = { action = "goto", menu = "mian" }
            [queues.b]
            overflow = { action = "destination", target = "queue:b" }
            [queues.c]
            overflow = { action = "destination", target = "queue:nope" }
            [queues.d]
            overflow = { action = "read_back", menu = "main" }
            [queues.f]
            overflow = { action = "destination", target = "voicemail:100" }
            [queues.g]
            overflow = { action = "destination", target = "hangup:closed" }
            [queues.h]
            overflow = { action = "destination", target = "hangup:goodbye" }
            "#,
        ));
        assert_eq!(
            found,
            [
                "queues.a.overflow.menu: unknown ivr menu \"mian\"",
                "queues.b.overflow.target: overflow into its own queue \"b\" would keep callers \
                 on hold forever",
                "queues.c.overflow.target: unknown queue \"nope\"",
                "queues.d.overflow.action: read_back reads collected digits, and a queue \
                 collects none; use goto, hangup or destination",
                "queues.g.overflow.target: prompt \"closed\" not found",
            ]
        );
    }

    #[test]
    fn agents_and_skills_are_checked() {
        let found = found(&problems(
            r#"
            [queues.q]
            skills = ["billing", ""]
            [[agent]]
            id = "alice"
            skills = ["support"]
            [[agent]]
            id = "alice"
            [[agent]]
            id = ""
            skills = [" "]
            "#,
        ));
        assert_eq!(
            found,
            [
                "queues.q.skills.1: skill name is empty",
                "queues.q.skills: no [[agent]] has all of the skills [\"billing\", \"\"]: every \
                 caller would overflow",
                "agent.1.id: duplicate agent id \"alice\"",
                "agent.2.id: agent id is empty",
                "agent.2.skills.0: skill name is empty",
            ]
        );
    }

    #[test]
    fn a_skilled_queue_without_configured_agents_is_fine() {
        assert!(problems("[queues.q]\nskills = [\"support\"]").is_empty());
    }
}
