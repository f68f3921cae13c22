//! Remote agents: the QUIC link (`link`, `identity`), who may log in (`credential`), and the
//! control protocol.
pub mod config;
pub mod credential;
pub mod desk_certificate;
pub mod identity;
pub mod link;
pub mod login;
pub mod media;
pub mod protocol;
pub mod server;
pub mod sessions;
