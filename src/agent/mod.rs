//! Remote agents: the QUIC link (`link`, `identity`), who may log in (`credential`), and the
//! control protocol.
pub mod credential;
pub mod identity;
pub mod link;
pub mod protocol;
pub mod sessions;
