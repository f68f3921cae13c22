//! Calls: one actor per call owns its legs and their media; the IVR answers it locally.
//!
//! `leg` is the carrier's media leg and `ivr_call` joins it to the menu engine, both sans-IO;
//! `actor` is the tokio task around them, `ports` hands out RTP ports.
pub mod actor;
pub mod agent_call;
pub mod ivr_call;
pub mod leg;
pub mod ports;
pub mod waiting;
