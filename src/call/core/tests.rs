//! The call core in virtual time: a real SIP leg fed real SDP and RTP, the contact center's
//! commands as the center sends them, the clock jumped to each timeout.
mod harness;
mod ivr;
mod outbound;
mod queue;
mod recording;
mod supervision;
mod transfer;

pub(super) use harness::*;
