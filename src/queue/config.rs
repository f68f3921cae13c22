//! The `[queues.NAME]` tables and `[[agent]]` entries of the configuration file.
//!
//! Every struct denies unknown fields, like the rest of the file: a misspelt `max_wiat_ms` must
//! stop the daemon at load time instead of leaving callers on hold with a default nobody chose.
//! Checks serde cannot express (prompt files, menu names, zero timeouts) live in
//! [`validate`](mod@super::validate).

use std::time::Duration;

use serde::Deserialize;

use crate::ivr::config::Action;

/// One queue: who may answer its callers, what those callers hear while they wait, and when
/// waiting stops.
///
/// The lead's top-level config holds these as `#[serde(default)] queues: BTreeMap<String,
/// QueueConfig>`, so `[queues.support]` with no keys at all is a working queue that any agent
/// may answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// An agent is offered this queue's callers only when they have every one of these skills;
    /// empty means any logged-in agent.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Prompt looped while the caller waits; announcements interrupt it, then it resumes.
    #[serde(default = "default_moh")]
    pub moh: String,
    /// Period of the position / estimated-wait announcement; 0 turns announcements off
    /// entirely (the first one included), for queues that only play music.
    #[serde(default = "default_announce_every_ms")]
    pub announce_every_ms: u64,
    /// Delay from entering the queue to the first announcement: long enough that a caller who
    /// is answered at once never hears "you are caller number one".
    #[serde(default = "default_first_announce_ms")]
    pub first_announce_ms: u64,
    /// Whether announcements say the caller's position.
    #[serde(default = "yes")]
    pub announce_position: bool,
    /// Whether announcements say the estimated wait (when one is known). Operators whose
    /// handle times vary wildly often turn this off rather than promise a wrong number.
    #[serde(default = "yes")]
    pub announce_wait: bool,
    /// How long a caller waits for an agent to become free before `overflow` applies.
    #[serde(default = "default_max_wait_ms")]
    pub max_wait_ms: u64,
    /// Where a caller goes after `max_wait_ms`: an IVR menu, a hang-up with a prompt, or a
    /// destination such as `queue:OTHER` (later `voicemail:BOX`).
    #[serde(default = "default_overflow")]
    pub overflow: Action,
    /// How long one agent's phone rings before the offer moves on to the next agent.
    #[serde(default = "default_ring_timeout_ms")]
    pub ring_timeout_ms: u64,
    /// After a call, the agent is offered nothing for this long (notes, a breath).
    #[serde(default = "default_wrap_up_ms")]
    pub wrap_up_ms: u64,
    /// The service-level target: a caller answered within this long counts as "in service
    /// level" (the contact center's headline figure, e.g. 80 % within 20 s).
    #[serde(default = "default_service_level_ms")]
    pub service_level_ms: u64,
    /// The number agents' outbound calls for this queue show (E.164, `+4930…`).
    pub caller_id: Option<String>,
    /// Which of this queue's calls are recorded (over the trunk's policy).
    pub recording: Option<crate::recording::config::RecordingPolicy>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            skills: Vec::new(),
            moh: default_moh(),
            announce_every_ms: default_announce_every_ms(),
            first_announce_ms: default_first_announce_ms(),
            announce_position: true,
            announce_wait: true,
            max_wait_ms: default_max_wait_ms(),
            overflow: default_overflow(),
            ring_timeout_ms: default_ring_timeout_ms(),
            caller_id: None,
            wrap_up_ms: default_wrap_up_ms(),
            service_level_ms: default_service_level_ms(),
            recording: None,
        }
    }
}

/// Durations are capped here so that an absurd value cannot overflow `Instant` arithmetic in
/// the ACD; no caller waits a day on hold.
const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms).min(MAX_DURATION)
}

fn default_service_level_ms() -> u64 {
    20_000
}

impl QueueConfig {
    pub fn service_level(&self) -> Duration {
        millis(self.service_level_ms)
    }

    /// The announcement period, `None` when announcements are off.
    pub fn announce_every(&self) -> Option<Duration> {
        (self.announce_every_ms > 0).then(|| millis(self.announce_every_ms))
    }

    pub fn first_announce(&self) -> Duration {
        millis(self.first_announce_ms)
    }

    pub fn max_wait(&self) -> Duration {
        millis(self.max_wait_ms)
    }

    pub fn ring_timeout(&self) -> Duration {
        millis(self.ring_timeout_ms)
    }

    pub fn wrap_up(&self) -> Duration {
        millis(self.wrap_up_ms)
    }
}

/// One agent who may log in, from `[[agent]]` (the lead's config: `#[serde(default, rename =
/// "agent")] agents: Vec<AcdAgent>`). Credentials belong to the agent link and are added
/// there.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcdAgent {
    /// What the agent logs in as and what events and logs call them.
    pub id: String,
    /// Matched against each queue's `skills`.
    #[serde(default)]
    pub skills: Vec<String>,
}

fn default_moh() -> String {
    "moh".to_owned()
}

fn default_announce_every_ms() -> u64 {
    30_000
}

fn default_first_announce_ms() -> u64 {
    5_000
}

fn default_max_wait_ms() -> u64 {
    300_000
}

/// A caller nobody could answer is told so before the line drops, rather than hearing silence.
fn default_overflow() -> Action {
    Action::Hangup {
        prompt: Some("queue-unavailable".to_owned()),
    }
}

fn default_ring_timeout_ms() -> u64 {
    15_000
}

fn default_wrap_up_ms() -> u64 {
    5_000
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default)]
        queues: BTreeMap<String, QueueConfig>,
        #[serde(default, rename = "agent")]
        agents: Vec<AcdAgent>,
    }

    fn parse(text: &str) -> Result<File, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn the_documented_example_parses() {
        let file = parse(
            r#"
            [queues.support]
            skills = ["support"]
            moh = "moh"
            announce_every_ms = 30000
            first_announce_ms = 5000
            max_wait_ms = 300000
            overflow = { action = "hangup", prompt = "goodbye" }
            ring_timeout_ms = 15000
            wrap_up_ms = 5000

            [queues.sales]
            overflow = { action = "goto", menu = "main" }

            [[agent]]
            id = "alice"
            skills = ["support", "sales"]

            [[agent]]
            id = "bob"
            "#,
        )
        .unwrap();
        let support = &file.queues["support"];
        assert_eq!(support.skills, ["support"]);
        assert_eq!(support.announce_every(), Some(Duration::from_secs(30)));
        assert_eq!(support.first_announce(), Duration::from_secs(5));
        assert_eq!(support.max_wait(), Duration::from_secs(300));
        assert_eq!(support.ring_timeout(), Duration::from_secs(15));
        assert_eq!(support.wrap_up(), Duration::from_secs(5));
        assert_eq!(
            support.overflow,
            Action::Hangup {
                prompt: Some("goodbye".into())
            }
        );
        assert_eq!(
            file.queues["sales"].overflow,
            Action::Goto {
                menu: "main".into()
            }
        );
        assert_eq!(file.agents[0].skills, ["support", "sales"]);
        assert!(file.agents[1].skills.is_empty());
    }

    #[test]
    fn an_empty_queue_table_gets_operator_defaults() {
        let file = parse("[queues.q]").unwrap();
        let queue = &file.queues["q"];
        assert_eq!(queue, &QueueConfig::default());
        assert!(queue.skills.is_empty(), "any agent may answer");
        assert_eq!(queue.moh, "moh");
        assert_eq!(queue.announce_every_ms, 30_000);
        assert_eq!(queue.first_announce_ms, 5_000);
        assert!(queue.announce_position && queue.announce_wait);
        assert_eq!(queue.max_wait_ms, 300_000);
        assert_eq!(queue.ring_timeout_ms, 15_000);
        assert_eq!(queue.wrap_up_ms, 5_000);
        assert_eq!(
            queue.overflow,
            Action::Hangup {
                prompt: Some("queue-unavailable".into())
            }
        );
        assert!(parse("").unwrap().queues.is_empty());
    }

    #[test]
    fn zero_period_turns_announcements_off() {
        let queue: QueueConfig = toml::from_str("announce_every_ms = 0").unwrap();
        assert_eq!(queue.announce_every(), None);
    }

    #[test]
    fn absurd_durations_are_capped_at_a_day() {
        let queue: QueueConfig = toml::from_str("max_wait_ms = 9223372036854775807").unwrap();
        assert_eq!(queue.max_wait(), Duration::from_secs(86_400));
    }

    #[test]
    fn misspelt_keys_are_rejected() {
        for (text, offending) in [
            ("[queues.q]\nmax_wiat_ms = 1", "max_wiat_ms"),
            (
                "[queues.q]\noverflow = { action = \"hangup\", promt = \"x\" }",
                "promt",
            ),
            ("[[agent]]\nid = \"a\"\nskill = [\"x\"]", "skill"),
        ] {
            let error = parse(text).expect_err(text).to_string();
            assert!(error.contains(offending), "{text}: {error}");
        }
        let error = parse("[[agent]]\nskills = []").unwrap_err().to_string();
        assert!(error.contains("id"), "{error}");
    }
}
