//! QUIC endpoints for the agent link: the same transport settings on both ends.
//!
//! quinn defaults to no keep-alive and a 30 s idle timeout; an agent behind NAT would lose its
//! mapping and a dead agent would be noticed late. Keep-alives every 2 s hold NAT bindings open
//! and a 10 s idle timeout declares a silent peer gone (resume then has its own grace period).
//! The datagram send buffer is small because late audio is worthless: when it is full, quinn
//! drops the oldest datagram. Migration stays on so an agent keeps its call across networks.
//! Congestion control never holds live audio back on long, jittery paths ([`congestion`]).
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};

use crate::agent::desk_certificate::DeskCertificates;
use crate::agent::identity::{self, ServerIdentity, ServerTrust};
use crate::socket_buffers;

pub mod congestion;

pub use crate::agent::protocol::ALPN;
pub const KEEP_ALIVE: Duration = Duration::from_secs(2);
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// 8 KiB holds about 1.4 s of audio at the default 40 kbit/s (a 20 ms datagram is ≈ 113 bytes:
/// flow id, RTP header, ≈ 100 bytes of Opus), more than late audio is worth once the congestion
/// window holds datagrams back. A smaller buffer trades that latency for drops; on a machine
/// merely out of CPU (the bench at 200 calls on 2 cores) 1 KiB changed nothing, so the choice
/// belongs with the link's congestion settings on impaired networks.
const DATAGRAM_SEND_BUFFER: usize = 8 * 1024;
const DATAGRAM_RECEIVE_BUFFER: usize = 64 * 1024;

pub fn transport_config() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(KEEP_ALIVE));
    // 10 s fits the VarInt idle timeout: the conversion cannot fail.
    t.max_idle_timeout(Some(
        quinn::IdleTimeout::try_from(IDLE_TIMEOUT).expect("10 s is a valid idle timeout"),
    ));
    t.congestion_controller_factory(Arc::new(congestion::AudioFloorConfig::default()));
    t.datagram_send_buffer_size(DATAGRAM_SEND_BUFFER);
    t.datagram_receive_buffer_size(Some(DATAGRAM_RECEIVE_BUFFER));
    // Agents open one control stream; a few more are allowed for future use, no more. A
    // browser's HTTP/3 needs three unidirectional streams of its own (control, QPACK encoder
    // and decoder); a CLI agent's would sit unread within their flow-control window.
    t.max_concurrent_bidi_streams(4u8.into());
    t.max_concurrent_uni_streams(3u8.into());
    t
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    #[error("tls: {0}")]
    Quic(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
    #[error("quic endpoint on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What the agent endpoint asks of its UDP socket's buffers. At a shift start every agent's
/// first flight (1,200 bytes or more each, about 2.3 KiB of kernel memory) lands at once: the
/// Linux default of 208 KiB holds under a hundred, and a dropped handshake costs an agent a
/// second or more. 4 MiB holds well over a thousand.
pub const SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// The gateway's QUIC endpoint for agents.
pub fn server_endpoint(
    identity: &ServerIdentity,
    desk: Option<Arc<DeskCertificates>>,
    listen: SocketAddr,
) -> Result<quinn::Endpoint, LinkError> {
    let bind = |source| LinkError::Bind {
        addr: listen,
        source,
    };
    let socket = std::net::UdpSocket::bind(listen).map_err(bind)?;
    socket_buffers::enlarge_or_warn(
        &socket,
        SOCKET_BUFFER,
        "agent link",
        "when many agents log in at once some handshakes will be dropped and retried",
    );
    let runtime = quinn::default_runtime().ok_or_else(|| {
        bind(std::io::Error::other(
            "no async runtime for the QUIC endpoint",
        ))
    })?;
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(server_config(identity, desk)?),
        socket,
        runtime,
    )
    .map_err(bind)
}

/// The settings new agent connections get; a reload hands a new certificate to the endpoint
/// this way, and connections already up keep theirs.
pub fn server_config(
    identity: &ServerIdentity,
    desk: Option<Arc<DeskCertificates>>,
) -> Result<quinn::ServerConfig, LinkError> {
    let tls = identity::server_tls(identity, desk, ALPN, web_transport_quinn::ALPN.as_bytes())?;
    let quic = QuicServerConfig::try_from(tls)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    config.transport_config(Arc::new(transport_config()));
    config.migration(true);
    Ok(config)
}

/// Agent-link counters for ops (Prometheus types; made and registered by `ops::metrics`).
#[derive(Clone)]
pub struct LinkCounters {
    /// Connections that moved to a new address and went on.
    pub migrations: prometheus::IntCounter,
    /// Each connected agent's round trip, sampled every [`SAMPLE_EVERY`].
    pub rtt_seconds: prometheus::Histogram,
    /// By `reason`: a [`Dropped`].
    pub datagrams_dropped: prometheus::IntCounterVec,
}

/// How often each agent connection's round trip and address are looked at.
pub const SAMPLE_EVERY: Duration = KEEP_ALIVE;

/// Why a media datagram went nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// The connection's send buffer was full: quinn dropped the oldest datagram.
    SendBufferFull,
    /// The connection could not carry it (lost, too large, datagrams refused).
    Unsendable,
    /// From the agent, and not a RoQ-framed RTP packet.
    Malformed,
    /// From the agent, for a flow no call has (a call that just ended).
    NoCall,
    /// From the agent, for a call whose queue was full: the call's task is behind.
    CallBehind,
}

impl Dropped {
    pub fn label(self) -> &'static str {
        match self {
            Dropped::SendBufferFull => "send_buffer_full",
            Dropped::Unsendable => "unsendable",
            Dropped::Malformed => "malformed",
            Dropped::NoCall => "no_call",
            Dropped::CallBehind => "call_behind",
        }
    }
}

impl LinkCounters {
    pub fn dropped(&self, why: Dropped) -> prometheus::IntCounter {
        self.datagrams_dropped.with_label_values(&[why.label()])
    }
}

/// An agent's QUIC endpoint, trusting the gateway as `trust` says.
pub fn client_endpoint(
    trust: &ServerTrust,
    bind: SocketAddr,
) -> Result<quinn::Endpoint, LinkError> {
    let tls = identity::client_tls(trust, ALPN)?;
    let quic = QuicClientConfig::try_from(tls)?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    config.transport_config(Arc::new(transport_config()));
    let mut endpoint =
        quinn::Endpoint::client(bind).map_err(|source| LinkError::Bind { addr: bind, source })?;
    endpoint.set_default_client_config(config);
    Ok(endpoint)
}
