//! trunkgate: a branch-office voice edge.
//!
//! The call's path reads top to bottom: `sip` terminates the carrier trunk, `call` owns each call
//! and its media, `ivr` answers it locally. `media` holds the cores every leg uses; `config` and
//! `ops` surround them.
pub mod agent;
pub mod call;
pub mod client;
pub mod config;
pub mod daemon;
pub mod desk;
pub mod events;
pub mod isdn;
pub mod ivr;
pub mod journal;
pub mod media;
pub mod ops;
pub mod queue;
pub mod recording;
pub mod route;
pub mod sip;
pub mod socket_buffers;
