//! Queues (ACD): callers wait for an agent with the right skills, hearing music on hold and
//! announcements, until one answers or the queue's overflow applies.
//!
//! - [`config`]: `[queues.NAME]` and `[[agent]]` as the operator writes them.
//! - [`validate`](mod@validate): load-time checks, located by key path.
//! - [`acd`]: the sans-IO core, one [`Acd`] for all queues and agents; its module docs state the
//!   rules (selection, ring timeout, wrap-up, announcements, overflow, estimated wait).
//! - [`events`]: what the core and its shell say to each other (events, states, errors).
//! - [`announce`]: the prompts an announcement plays.
//!
//! No agent logged in at all is a normal state (the branch is cut off from the cloud): callers
//! wait, hear music and announcements, and overflow at max wait.

pub mod acd;
mod agents;
pub mod announce;
pub mod center;
pub mod config;
pub mod events;
pub mod validate;
pub mod waiting;

pub use acd::{Acd, HANDLE_TIME_SAMPLES};
pub use announce::{announcement_prompt_names, announcement_prompts};
pub use config::{AcdAgent, QueueConfig};
pub use events::{
    AcdError, AcdEvent, AcdSnapshot, AgentState, CallRef, CallerState, QueueSnapshot,
    WithdrawReason,
};
pub use validate::validate;

#[cfg(test)]
mod tests;
