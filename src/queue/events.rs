//! What the ACD and its shell say to each other: call and agent identities, agent states, the
//! events the shell carries out, errors, and snapshots for ops.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use crate::ivr::config::Action;

/// A call as the shell knows it; the ACD only compares and reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallRef(pub u64);

impl fmt::Display for CallRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What an agent is doing, as ops and the agent's own client see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentState {
    /// Logged in, not taking calls. Where every agent starts after login: logging in proves
    /// who someone is, being ready is a separate act.
    Away,
    Available,
    /// An offer of `call` is ringing at the agent.
    Ringing {
        call: CallRef,
    },
    Talking {
        call: CallRef,
    },
    /// After a call; becomes available at `until`.
    WrapUp {
        until: Instant,
    },
    /// Only ever reported in [`AcdEvent::AgentStateChanged`], as the agent's last state.
    LoggedOut,
}

impl AgentState {
    /// The state's name in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            AgentState::Away => "away",
            AgentState::Available => "available",
            AgentState::Ringing { .. } => "ringing",
            AgentState::Talking { .. } => "talking",
            AgentState::WrapUp { .. } => "wrap_up",
            AgentState::LoggedOut => "logged_out",
        }
    }
}

impl std::fmt::Display for AgentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an offer stopped ringing without being answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithdrawReason {
    RingTimeout,
    /// The agent declined through [`Acd::offer_rejected`](super::Acd::offer_rejected).
    Rejected,
    /// The caller hung up.
    CallerGone,
    /// The agent went away while it rang.
    AgentAway,
    AgentLoggedOut,
}

/// What the shell must carry out, in the order the ACD decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcdEvent {
    /// Ring `agent` with `call`; the ACD withdraws it after `ring_timeout`.
    Offer {
        call: CallRef,
        agent: String,
        queue: String,
        ring_timeout: Duration,
        /// How long the caller has waited in this queue (since it was last put back).
        waited: Duration,
    },
    /// Stop ringing `agent`. Not sent for an offer that was accepted.
    OfferWithdrawn {
        call: CallRef,
        agent: String,
        reason: WithdrawReason,
    },
    /// Play `prompts` to a waiting caller (over the music on hold, which resumes afterwards).
    Announce {
        call: CallRef,
        queue: String,
        position: usize,
        estimated_wait: Option<Duration>,
        prompts: Vec<String>,
    },
    /// The caller has left the queue; carry out `action` from the queue's `overflow`.
    Overflow {
        call: CallRef,
        queue: String,
        action: Action,
    },
    /// The caller lost `agent` mid-call and is back at the head of `queue`: play music on hold.
    CallerRequeued {
        call: CallRef,
        queue: String,
        agent: String,
    },
    AgentStateChanged {
        agent: String,
        state: AgentState,
    },
}

/// Where a caller is, for ops and for the call actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerState {
    Waiting {
        queue: String,
        position: usize,
    },
    /// Still waiting (and still counted in positions), while `agent` is being offered the call.
    Ringing {
        queue: String,
        position: usize,
        agent: String,
    },
    Connected {
        queue: String,
        agent: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcdError {
    #[error("unknown queue \"{0}\"")]
    UnknownQueue(String),
    #[error("unknown agent \"{0}\"")]
    UnknownAgent(String),
    #[error("unknown call {0}")]
    UnknownCall(CallRef),
    #[error("call {0} is already in a queue or connected")]
    CallAlreadyQueued(CallRef),
    /// An answer or refusal that arrived after the offer was withdrawn (it rang out, the caller
    /// hung up): the shell tells the agent the call is gone.
    #[error("call {call} is not being offered to agent \"{agent}\"")]
    NoSuchOffer { call: CallRef, agent: String },
    #[error("call {0} is not connected to an agent")]
    NotConnected(CallRef),
    #[error("agent \"{0}\" is ringing or on a call")]
    AgentBusy(String),
}

/// Counts per queue and every agent's state, for ops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcdSnapshot {
    pub queues: BTreeMap<String, QueueSnapshot>,
    pub agents: BTreeMap<String, AgentState>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSnapshot {
    /// Callers waiting, ringing ones included.
    pub waiting: usize,
    pub ringing: usize,
    pub connected: usize,
    pub longest_wait: Option<Duration>,
    /// Agents with the queue's skills who are not away.
    pub staffed_agents: usize,
    pub available_agents: usize,
    pub average_handle_time: Option<Duration>,
}
