//! The carrier side: SIP over UDP and TCP, from bytes to calls.
//!
//! `codec` turns bytes into messages, `transaction` runs RFC 3261 §17, `ua` holds dialogs and
//! answers what no call needs to see, `sdp` negotiates media. `transport` is the tokio shell.
pub mod codec;
pub mod message;
pub mod peer;
pub mod transaction;
pub mod transport;
pub mod ua;
