//! `[recording]`, and the `recording` policy a queue or a trunk carries.
use std::path::PathBuf;

use serde::Deserialize;

use crate::config::Problem;
use crate::media::stereo_recorder::BITRATES;

/// `[recording]`: where recordings are kept and whom they are sealed for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingConfig {
    /// The age public key (`age1…`) every recording is encrypted to. The gateway never holds
    /// the private key, so it cannot play its own recordings back. Needed by any policy but
    /// `never`.
    pub public_key: Option<String>,
    /// Where recordings are written (relative to the config file); by default `recordings` in
    /// `[agents] state_dir`.
    pub dir: Option<PathBuf>,
    /// Opus bitrate of the two-channel recording, in bit/s (8000-64000).
    #[serde(default = "default_bitrate")]
    pub bitrate: u32,
    /// A recording no object sink takes (none is configured, or one refuses it for good) is
    /// removed this long after it was written. One every sink has is removed at once.
    #[serde(default = "default_retention_hours")]
    pub retention_hours: u64,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        Self {
            public_key: None,
            dir: None,
            bitrate: default_bitrate(),
            retention_hours: default_retention_hours(),
        }
    }
}

fn default_bitrate() -> u32 {
    32_000
}

fn default_retention_hours() -> u64 {
    24 * 30
}

/// Which calls are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Every call, from the moment an agent answers.
    Always,
    /// None; nobody can start one.
    #[default]
    Never,
    /// `percent` of the calls, chosen at random when an agent answers.
    Sampled,
    /// Only when the agent or a supervisor starts it.
    OnDemand,
}

impl Policy {
    pub fn code(self) -> &'static str {
        match self {
            Policy::Always => "always",
            Policy::Never => "never",
            Policy::Sampled => "sampled",
            Policy::OnDemand => "on_demand",
        }
    }
}

/// `recording = { policy = "sampled", percent = 20, prompt = "recorded" }` on a queue or a
/// trunk. A queue's policy wins over the trunk's the call came in on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RecordingPolicy {
    pub policy: Policy,
    /// `sampled`: the share of calls recorded, 0-100.
    pub percent: Option<u8>,
    /// Played to the caller as it enters the queue ("this call may be recorded"), under any
    /// policy but `never`.
    pub prompt: Option<String>,
}

impl RecordingPolicy {
    /// Problems of this policy, at `at` (`queues.NAME.recording`), for a gateway with
    /// `recording` set up as it is.
    pub fn validate(&self, at: &[&str], recording: &RecordingConfig) -> Vec<Problem> {
        let mut out = Vec::new();
        let key = |k: &'static str| [at, &[k]].concat();
        match (self.policy, self.percent) {
            (Policy::Sampled, None) => out.push(Problem::at(
                &key("percent"),
                "a sampled policy needs percent (0-100)".into(),
            )),
            (Policy::Sampled, Some(p)) if p > 100 => out.push(Problem::at(
                &key("percent"),
                format!("{p} is out of range: 0 to 100"),
            )),
            (Policy::Sampled, Some(_)) => {}
            (other, Some(_)) => out.push(Problem::at(
                &key("percent"),
                format!("only a sampled policy takes percent, not {}", other.code()),
            )),
            _ => {}
        }
        if self.policy != Policy::Never && recording.public_key.is_none() {
            out.push(Problem::at(
                &key("policy"),
                format!(
                    "{} needs [recording] public_key: recordings are only ever written encrypted",
                    self.policy.code()
                ),
            ));
        }
        out
    }
}

impl RecordingConfig {
    pub fn validate(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if !BITRATES.contains(&self.bitrate) {
            out.push(Problem::at(
                &["recording", "bitrate"],
                format!(
                    "{} is out of range: {} to {}",
                    self.bitrate,
                    BITRATES.start(),
                    BITRATES.end()
                ),
            ));
        }
        if let Some(key) = &self.public_key {
            if let Err(e) = key.parse::<super::age::Recipient>() {
                out.push(Problem::at(&["recording", "public_key"], e.to_string()));
            }
        }
        if self.retention_hours == 0 {
            out.push(Problem::at(
                &["recording", "retention_hours"],
                "must be at least 1".into(),
            ));
        }
        out
    }
}
