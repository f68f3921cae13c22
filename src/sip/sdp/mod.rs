//! SDP (RFC 8866, formerly 4566) and the RFC 3264 offer/answer model for the audio of a call on a
//! carrier SIP trunk.
//!
//! Three layers:
//! - `model.rs`, with `codec.rs` and `direction.rs`: the session description as data. Lines we
//!   act on are typed (`c=`, `m=`, rtpmap, fmtp, ptime, direction, rtcp); every other line or
//!   attribute is kept verbatim so that what a carrier sends survives a parse/serialise round
//!   trip.
//! - `parse.rs` ([`parse()`]) and `write.rs` (`Display`, CRLF line ends): the parser is tolerant
//!   of LF or CRLF, blank lines, extra spaces and attribute-name case, strict on structure (a
//!   wrong line is reported with its number and text). Network input never panics; bodies above
//!   [`MAX_SDP_BYTES`] are refused before any work.
//! - `negotiate.rs` ([`answer`], [`offer`], [`accept_answer`]): only RTP/AVP audio, or RTP/SAVP
//!   with SDES keys (`crypto.rs`, RFC 4568) as the trunk's SRTP policy allows, with G.711 (PCMU,
//!   PCMA) plus RFC 4733 telephone-event is accepted; everything else is refused per stream with
//!   port 0, as RFC 3264 §6 requires, so the carrier's offer always gets an answer with the same
//!   number of m-lines. Directions follow RFC 3264 §6.1 (`direction.rs`).
//!
//! Time does not enter here, and neither do sockets: the call layer owns the RTP socket and feeds
//! the SDP bodies of INVITE / 200 OK / ACK through these functions.

mod codec;
mod crypto;
mod direction;
mod model;
mod negotiate;
mod parse;
mod write;

#[cfg(test)]
mod negotiate_tests;
#[cfg(test)]
mod parse_tests;

pub use codec::Codec;
pub use crypto::{Crypto, SrtpKey, SrtpPolicy, SrtpSuite};
pub use direction::Direction;
pub use model::{
    AddrType, Attribute, Bandwidth, Connection, Fmtp, MediaDescription, Origin, Rtcp, Rtpmap,
    SessionDescription, Timing,
};
pub use negotiate::{
    accept_answer, answer, offer, LocalMedia, Negotiated, NegotiationError, SrtpKeys,
};
pub use parse::{parse, SdpError, SdpLineError, MAX_SDP_BYTES};
