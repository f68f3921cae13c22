//! Calls: each one a sans-IO [`core::Call`] that owns its phase and timers, with the carrier
//! side behind the [`leg::Leg`] trait and a tokio task around it ([`shell`]).
//!
//! - [`core`]: the state machine: ringing, IVR, queue, agent, ended, and the moves between.
//! - [`leg`]: the carrier side: the trait, SIP with its SDP decisions, RTP media.
//! - [`outbound`]: calls agents place: dial plan, trunk choice, fraud limits.
//! - [`bridge`]: Opus transcoding between the carrier's G.711 and the agent.
//! - [`placing`]: the task that places an agent's call, then runs it as [`shell`] does.
//! - [`shell`]: the task per SIP call; [`task`] what every call's task does whatever its leg;
//!   [`ports`] hands out RTP ports; [`rtp_socket`] is the RTP socket the task reads once per
//!   frame.
pub mod bridge;
pub mod core;
pub mod leg;
pub mod outbound;
pub mod placing;
pub mod ports;
pub mod rtp_socket;
pub mod shell;
pub mod task;
