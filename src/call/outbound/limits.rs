//! Fraud limits on agents' outbound calls, as a sans-IO core (time and the UTC day passed in):
//! where a call may go, how many calls an agent and a trunk may have up and start per hour,
//! and how many answered minutes an agent and the branch may use per day. Every call is
//! admitted here before its INVITE exists, and reported back when answered and when over.
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::config::OutboundConfig;
use super::dialplan::E164;

/// A call's handle (the same numbers as every other call's).
pub type CallRef = u64;

const HOUR: Duration = Duration::from_secs(3600);

/// Why a call was not placed. Each says which limit, and its value, so an agent (and the
/// journal) can tell a blocked destination from a busy trunk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{number} is in the blocked range {prefix}")]
    Blocked { number: String, prefix: String },
    #[error("{number} is outside the destinations agents may call")]
    NotAllowed { number: String },
    #[error("agent {agent} already has {limit} outbound calls up")]
    AgentCalls { agent: String, limit: u32 },
    #[error("agent {agent} has started {limit} outbound calls in the last hour")]
    AgentRate { agent: String, limit: u32 },
    #[error("agent {agent} has used its {limit} outbound minutes today")]
    AgentMinutes { agent: String, limit: u32 },
    #[error("trunk {trunk} already has {limit} outbound calls up")]
    TrunkCalls { trunk: String, limit: u32 },
    #[error("trunk {trunk} has started {limit} outbound calls in the last hour")]
    TrunkRate { trunk: String, limit: u32 },
    #[error("the branch has used its {limit} outbound minutes today")]
    BranchMinutes { limit: u32 },
}

impl Refusal {
    /// The limit's name, for metrics labels and the agent protocol.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::Blocked { .. } => "blocked_destination",
            Refusal::NotAllowed { .. } => "destination_not_allowed",
            Refusal::AgentCalls { .. } => "agent_calls",
            Refusal::AgentRate { .. } => "agent_calls_per_hour",
            Refusal::AgentMinutes { .. } => "agent_minutes_per_day",
            Refusal::TrunkCalls { .. } => "trunk_calls",
            Refusal::TrunkRate { .. } => "trunk_calls_per_hour",
            Refusal::BranchMinutes { .. } => "minutes_per_day",
        }
    }
}

/// Whether `number` may be dialled at all: never in a blocked range, only in an allowed one.
pub fn check_destination(number: &E164, config: &OutboundConfig) -> Result<(), Refusal> {
    if let Some(prefix) = config.blocked().into_iter().find(|p| number.starts_with(p)) {
        return Err(Refusal::Blocked {
            number: number.to_string(),
            prefix,
        });
    }
    if !config.allowed().iter().any(|p| number.starts_with(p)) {
        return Err(Refusal::NotAllowed {
            number: number.to_string(),
        });
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Usage {
    up: u32,
    /// When the calls of the last hour started, oldest first.
    started: VecDeque<Instant>,
    /// Answered seconds of calls that ended today.
    seconds_today: u64,
}

impl Usage {
    fn started_within_hour(&mut self, now: Instant) -> u32 {
        while self
            .started
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= HOUR)
        {
            self.started.pop_front();
        }
        self.started.len() as u32
    }
}

#[derive(Debug)]
struct Active {
    agent: String,
    trunk: String,
    answered: Option<Instant>,
}

/// The day's answered outbound seconds, as kept across restarts (`state_dir`): the daily
/// minute limits must hold through a restart. Hourly counts and calls up are not kept: a
/// restart ends every call, and an hour passes quickly.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DailyUsage {
    /// Days since the Unix epoch (UTC).
    pub day: u64,
    pub branch_seconds: u64,
    pub agents: std::collections::BTreeMap<String, u64>,
    pub trunks: std::collections::BTreeMap<String, u64>,
}

/// The limits of the trunk or span a call goes out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteLimits {
    pub max_calls: u32,
    pub calls_per_hour: u32,
}

/// What the branch has used; one for the whole gateway, owned by the contact center.
#[derive(Debug, Default)]
pub struct Limits {
    agents: HashMap<String, Usage>,
    trunks: HashMap<String, Usage>,
    branch_seconds_today: u64,
    /// Days since the Unix epoch (UTC) the daily counts belong to.
    day: u64,
    calls: HashMap<CallRef, Active>,
}

impl Limits {
    /// Admits `call` from `agent` on `trunk` now, or says which limit stops it. `day` is the
    /// UTC day (days since the epoch): daily minutes start again when it changes.
    #[allow(clippy::too_many_arguments)]
    pub fn admit(
        &mut self,
        now: Instant,
        day: u64,
        call: CallRef,
        agent: &str,
        config: &OutboundConfig,
        trunk: &str,
        trunk_limits: RouteLimits,
    ) -> Result<(), Refusal> {
        self.roll_day(day);
        let ongoing_agent = self.ongoing_seconds(now, |a| a.agent == agent);
        let ongoing_all = self.ongoing_seconds(now, |_| true);
        let a = self.agents.entry(agent.to_owned()).or_default();
        if a.up >= config.agent_max_calls {
            return Err(Refusal::AgentCalls {
                agent: agent.to_owned(),
                limit: config.agent_max_calls,
            });
        }
        if a.started_within_hour(now) >= config.agent_calls_per_hour {
            return Err(Refusal::AgentRate {
                agent: agent.to_owned(),
                limit: config.agent_calls_per_hour,
            });
        }
        if a.seconds_today + ongoing_agent >= u64::from(config.agent_minutes_per_day) * 60 {
            return Err(Refusal::AgentMinutes {
                agent: agent.to_owned(),
                limit: config.agent_minutes_per_day,
            });
        }
        let t = self.trunks.entry(trunk.to_owned()).or_default();
        if t.up >= trunk_limits.max_calls {
            return Err(Refusal::TrunkCalls {
                trunk: trunk.to_owned(),
                limit: trunk_limits.max_calls,
            });
        }
        if t.started_within_hour(now) >= trunk_limits.calls_per_hour {
            return Err(Refusal::TrunkRate {
                trunk: trunk.to_owned(),
                limit: trunk_limits.calls_per_hour,
            });
        }
        if self.branch_seconds_today + ongoing_all >= u64::from(config.minutes_per_day) * 60 {
            return Err(Refusal::BranchMinutes {
                limit: config.minutes_per_day,
            });
        }
        for usage in [self.agents.get_mut(agent), self.trunks.get_mut(trunk)]
            .into_iter()
            .flatten()
        {
            usage.up += 1;
            usage.started.push_back(now);
        }
        self.calls.insert(
            call,
            Active {
                agent: agent.to_owned(),
                trunk: trunk.to_owned(),
                answered: None,
            },
        );
        Ok(())
    }

    /// The callee answered: its minutes count from now.
    pub fn answered(&mut self, now: Instant, call: CallRef) {
        if let Some(active) = self.calls.get_mut(&call) {
            active.answered.get_or_insert(now);
        }
    }

    /// The call is over (failed, or hung up): it is no longer up, and its minutes are used.
    pub fn ended(&mut self, now: Instant, day: u64, call: CallRef) {
        self.roll_day(day);
        let Some(active) = self.calls.remove(&call) else {
            return;
        };
        // Started minutes count in full, as carriers bill them.
        let seconds = active
            .answered
            .map(|t| now.saturating_duration_since(t).as_secs().div_ceil(60) * 60)
            .unwrap_or(0);
        self.branch_seconds_today += seconds;
        for usage in [
            self.agents.get_mut(&active.agent),
            self.trunks.get_mut(&active.trunk),
        ]
        .into_iter()
        .flatten()
        {
            usage.up = usage.up.saturating_sub(1);
            usage.seconds_today += seconds;
        }
    }

    /// Today's answered seconds of calls that ended, to keep across a restart.
    pub fn daily(&self) -> DailyUsage {
        let seconds = |map: &HashMap<String, Usage>| {
            map.iter()
                .filter(|(_, u)| u.seconds_today > 0)
                .map(|(k, u)| (k.clone(), u.seconds_today))
                .collect()
        };
        DailyUsage {
            day: self.day,
            branch_seconds: self.branch_seconds_today,
            agents: seconds(&self.agents),
            trunks: seconds(&self.trunks),
        }
    }

    /// Takes back what [`Limits::daily`] kept, if it is of `today`.
    pub fn restore(&mut self, today: u64, usage: DailyUsage) {
        if usage.day != today {
            return;
        }
        self.day = today;
        self.branch_seconds_today = usage.branch_seconds;
        for (agent, seconds) in usage.agents {
            self.agents.entry(agent).or_default().seconds_today = seconds;
        }
        for (trunk, seconds) in usage.trunks {
            self.trunks.entry(trunk).or_default().seconds_today = seconds;
        }
    }

    /// Outbound calls up now on `trunk`.
    pub fn trunk_calls(&self, trunk: &str) -> u32 {
        self.trunks.get(trunk).map(|u| u.up).unwrap_or(0)
    }

    /// Answered outbound minutes the branch has used today, ongoing calls included.
    pub fn minutes_today(&self, now: Instant) -> u64 {
        (self.branch_seconds_today + self.ongoing_seconds(now, |_| true)) / 60
    }

    fn ongoing_seconds(&self, now: Instant, which: impl Fn(&Active) -> bool) -> u64 {
        self.calls
            .values()
            .filter(|a| which(a))
            .filter_map(|a| a.answered)
            .map(|t| now.saturating_duration_since(t).as_secs())
            .sum()
    }

    fn roll_day(&mut self, day: u64) {
        if day != self.day {
            self.day = day;
            self.branch_seconds_today = 0;
            for usage in self.agents.values_mut().chain(self.trunks.values_mut()) {
                usage.seconds_today = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests;
