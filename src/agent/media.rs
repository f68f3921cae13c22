//! The agent media handle: what a call needs of the agent side's audio, whatever carries it.
//!
//! Both directions have the same shape: bare RTP packets (Opus). The call hands its packets to
//! the handle's [`MediaSink`] and takes the agent's from the handle's `source`; framing for the
//! transport is the handle's business. A QUIC agent's handle ([`quic_flow`]) puts a RoQ flow id
//! in front and sends a datagram; the connection task strips the flow id from the agent's
//! datagrams and routes them to `source`. A WebTransport agent would implement the same sink
//! over its session's datagrams, and a supervisor listening in would get a sink fed by a mixer.
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc;

use web_transport_quinn::Session;

use crate::agent::link::{Dropped, LinkCounters};
use crate::media::rtp_quic::{self, FlowId};

/// Packets waiting for the call's task; beyond this they are dropped (late audio is worthless).
pub const MEDIA_QUEUE: usize = 32;

/// Where a call's RTP packets for the agent go. Sending never waits: a full path drops.
pub trait MediaSink: Send + Sync + 'static {
    fn send(&self, rtp: &[u8]);

    /// The transport's round trip to the agent, if it knows one.
    fn round_trip(&self) -> Option<std::time::Duration> {
        None
    }
}

/// One agent's media for one call.
pub struct AgentMedia {
    pub sink: Arc<dyn MediaSink>,
    /// The agent's RTP packets for this call. The call takes them at its next frame, so each
    /// says when it arrived.
    pub source: mpsc::Receiver<AgentPacket>,
}

/// An RTP packet from the agent and when the transport handed it over.
#[derive(Debug, Clone)]
pub struct AgentPacket {
    pub arrived: Instant,
    pub rtp: Bytes,
}

impl std::fmt::Debug for AgentMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AgentMedia")
    }
}

/// A call's flow on an agent's QUIC connection.
pub struct QuicFlow {
    connection: Session,
    flow: FlowId,
    buffer_full: prometheus::IntCounter,
    unsendable: prometheus::IntCounter,
}

impl MediaSink for QuicFlow {
    fn send(&self, rtp: &[u8]) {
        let mut datagram = Vec::with_capacity(rtp.len() + 8);
        rtp_quic::frame(self.flow, rtp, &mut datagram);
        // A full datagram buffer drops the oldest: late audio is worthless.
        if self.connection.datagram_send_buffer_space() < datagram.len() {
            self.buffer_full.inc();
        }
        if self.connection.send_datagram(datagram.into()).is_err() {
            self.unsendable.inc();
        }
    }

    fn round_trip(&self) -> Option<std::time::Duration> {
        Some(self.connection.rtt())
    }
}

/// The handle for `flow` on `connection`, and the sender the connection task routes the
/// flow's incoming packets to.
pub fn quic_flow(
    connection: Session,
    flow: FlowId,
    counters: &LinkCounters,
) -> (AgentMedia, mpsc::Sender<AgentPacket>) {
    let (tx, source) = mpsc::channel(MEDIA_QUEUE);
    let sink = Arc::new(QuicFlow {
        connection,
        flow,
        buffer_full: counters.dropped(Dropped::SendBufferFull),
        unsendable: counters.dropped(Dropped::Unsendable),
    });
    (AgentMedia { sink, source }, tx)
}
