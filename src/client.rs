//! The agent client behind `trunkgate-agent`: logs in to a gateway over QUIC, takes calls, and
//! carries their audio as Opus in QUIC datagrams (docs/agent-protocol.md).
//!
//! It is a test and load tool as much as a softphone, so everything it does is reported as one
//! machine-readable line per event on standard output (`agent=alice event=answered call=c7
//! flow=1`, see [`events`]), and it can play a WAV file, echo what it hears, record it, hang up,
//! move to a new UDP socket mid-call, and run many agents in one process; or, built with the
//! `sound` feature, carry a person's voice through the system's microphone and speaker.
//!
//! The pieces, along the seams a reader looks for:
//! - [`args`]: the command line and what it resolves to (credential, trust, audio source).
//! - [`core`]: the protocol decisions, sans-IO: what to send when a message, a timer or a
//!   command arrives, when to reconnect, when to stop. Tested in virtual time.
//! - [`media`]: one call's audio: a send path (Opus encoder, RTP numbering, RoQ framing) and a
//!   receive path (jitter buffer, FEC, concealment), driven by a 20 ms tick.
//! - [`recorder`]: the WAV file the received audio goes to, kept valid while it grows.
//! - [`shell`]: the tokio task per agent that moves bytes and time between QUIC and the core.
//! - [`sound`]: the microphone and speaker (`--sound`, with the `sound` cargo feature).
//! - [`events`]: the stdout lines.

pub mod args;
pub mod core;
pub mod events;
pub mod media;
pub mod recorder;
pub mod shell;
pub mod sound;
pub mod wallboard;

pub use args::{Args, ArgsError, AudioSource, Options};
pub use events::{Event, EventSink, MediaCounters};
pub use shell::{run, StopReason};

/// What the agent tells the gateway it is, in `login.client`.
pub const CLIENT_NAME: &str = concat!("trunkgate-agent/", env!("CARGO_PKG_VERSION"));

#[cfg(test)]
mod tests;
