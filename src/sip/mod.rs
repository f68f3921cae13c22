//! The carrier side: SIP over UDP, TCP and TLS, from bytes to calls.
//!
//! `codec` turns bytes into messages, `transaction` runs RFC 3261 §17, `ua` holds dialogs and
//! answers what no call needs to see, `sdp` negotiates media. `transport` and `endpoint` are the
//! tokio shell around them.
pub mod codec;
pub mod digest;
pub mod endpoint;
pub mod guard;
pub mod message;
pub mod peer;
pub mod resolve;
pub mod sdp;
pub mod tls;
pub mod transaction;
pub mod transport;
pub mod trunk;
pub mod ua;
