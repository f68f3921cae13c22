//! The agents the ACD knows: their skills, their state, and who is next in line for a call.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use super::events::AgentState;

#[derive(Debug, Clone)]
pub(super) struct Agent {
    pub skills: BTreeSet<String>,
    /// Breaks ties between agents idle since the same instant, so selection is deterministic.
    pub login_order: u64,
    pub state: AgentState,
    /// When the agent last became free: available after being away, or the end of wrap-up.
    /// A declined or unanswered offer does not move it: ringing is not work.
    pub idle_since: Instant,
    /// Asked to go away while talking: wrap-up then ends in `Away` instead of `Available`.
    pub away_after_call: bool,
}

impl Agent {
    pub fn has_skills(&self, required: &[String]) -> bool {
        required.iter().all(|skill| self.skills.contains(skill))
    }

    /// Logged in and not away: counted as capacity for estimated waits.
    pub fn is_staffed(&self) -> bool {
        !matches!(self.state, AgentState::Away | AgentState::LoggedOut)
    }

    #[cfg(test)]
    pub fn call(&self) -> Option<super::events::CallRef> {
        match self.state {
            AgentState::Ringing { call } | AgentState::Talking { call } => Some(call),
            _ => None,
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Agents {
    by_id: BTreeMap<String, Agent>,
    next_login_order: u64,
}

impl Agents {
    /// Adds a new agent, away; an agent already logged in only gets the new skills (a client
    /// that reconnects logs in again and must not lose its call or its place in line).
    pub fn login(&mut self, now: Instant, id: &str, skills: &[String]) -> bool {
        if let Some(agent) = self.by_id.get_mut(id) {
            agent.skills = skills.iter().cloned().collect();
            return false;
        }
        let login_order = self.next_login_order;
        self.next_login_order += 1;
        self.by_id.insert(
            id.to_owned(),
            Agent {
                skills: skills.iter().cloned().collect(),
                login_order,
                state: AgentState::Away,
                idle_since: now,
                away_after_call: false,
            },
        );
        true
    }

    pub fn remove(&mut self, id: &str) -> Option<Agent> {
        self.by_id.remove(id)
    }

    pub fn get(&self, id: &str) -> Option<&Agent> {
        self.by_id.get(id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Agent> {
        self.by_id.get_mut(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Agent)> {
        self.by_id.iter()
    }

    /// The available agent with all `skills` who has been idle longest, skipping `excluded`
    /// (agents who already declined this caller). Ties go to the earlier login.
    pub fn longest_idle(&self, skills: &[String], excluded: &BTreeSet<String>) -> Option<String> {
        self.by_id
            .iter()
            .filter(|(id, agent)| {
                agent.state == AgentState::Available
                    && agent.has_skills(skills)
                    && !excluded.contains(*id)
            })
            .min_by_key(|(_, agent)| (agent.idle_since, agent.login_order))
            .map(|(id, _)| id.clone())
    }

    /// Agents who could serve a queue with these skills now or once their current call ends.
    pub fn staffed_for(&self, skills: &[String]) -> usize {
        self.by_id
            .values()
            .filter(|agent| agent.is_staffed() && agent.has_skills(skills))
            .count()
    }

    /// Whether `agent` is logged in with all of `skills`.
    pub fn serves(&self, agent: &str, skills: &[String]) -> bool {
        self.by_id.get(agent).is_some_and(|a| a.has_skills(skills))
    }

    pub fn available_for(&self, skills: &[String]) -> usize {
        self.by_id
            .values()
            .filter(|agent| agent.state == AgentState::Available && agent.has_skills(skills))
            .count()
    }
}
