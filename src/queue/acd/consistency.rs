//! A check of the ACD's internal agreements, for tests.

use super::{Acd, AgentState, Phase};

impl Acd {
    /// Panics unless agents and callers agree with each other and no caller waits while an
    /// agent who could take them is free. Property tests call this after every step.
    pub(crate) fn assert_consistent(&self) {
        for (id, agent) in self.agents.iter() {
            if let Some(call) = agent.call() {
                let caller = self.callers.get(&call).expect("an agent's call exists");
                let expected = match agent.state {
                    AgentState::Ringing { .. } => {
                        matches!(&caller.phase, Phase::Ringing { agent, .. } if agent == id)
                    }
                    _ => matches!(&caller.phase, Phase::Connected { agent, .. } if agent == id),
                };
                assert!(
                    expected,
                    "agent {id} is {:?} but call {call} is {:?}",
                    agent.state, caller.phase
                );
            }
        }
        for (call, caller) in &self.callers {
            match &caller.phase {
                Phase::Ringing { agent, .. } => assert_eq!(
                    self.agent_state(agent),
                    Some(AgentState::Ringing { call: *call })
                ),
                Phase::Connected { agent, .. } => assert_eq!(
                    self.agent_state(agent),
                    Some(AgentState::Talking { call: *call })
                ),
                Phase::Waiting => {
                    let skills = &self.config[&caller.queue].skills;
                    let free = self.agents.longest_idle(skills, &caller.declined_by);
                    assert_eq!(free, None, "call {call} waits while an agent is free");
                }
            }
        }
    }
}
