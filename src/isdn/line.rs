//! A span's D-channel as its task sees it, whatever carries it: a software span's socket, or a
//! DAHDI card's HDLC channel. It gives frames and layer-1 changes, and takes frames.
use std::io;

use tokio_seqpacket::UnixSeqpacket;

use super::dahdi::{Dchannel, Got};
use super::software::SoftwareSpan;

/// What came from the line.
pub enum LineEvent {
    /// Layer 1 came up.
    Up,
    /// Layer 1 went down.
    Down,
    /// A frame of this many octets is in the buffer.
    Frame(usize),
    /// Something for the log and the metrics.
    Problem(String),
}

pub enum Line {
    Software {
        span: SoftwareSpan,
        /// The far end on the D-channel socket, while one is connected.
        peer: Option<UnixSeqpacket>,
    },
    Dahdi(Dchannel),
}

impl Line {
    pub fn software(span: SoftwareSpan) -> Line {
        Line::Software { span, peer: None }
    }

    /// Layer 1 is up from the start (a card's span is taken as in sync until it says not).
    pub fn up_at_start(&self) -> bool {
        matches!(self, Line::Dahdi(_))
    }

    /// The next frame or layer-1 change. Cancel-safe: nothing is lost if another branch of a
    /// `select!` wins.
    pub async fn next(&mut self, buf: &mut [u8]) -> LineEvent {
        match self {
            Line::Software { span, peer } => match peer {
                None => match span.accept().await {
                    Ok(connected) => {
                        tracing::info!(dir = %span.dir().display(), "software span: far end connected");
                        *peer = Some(connected);
                        LineEvent::Up
                    }
                    Err(e) => LineEvent::Problem(format!("software span: accept: {e}")),
                },
                Some(connected) => match connected.recv(buf).await {
                    Ok(info) if info.bytes_read() > 0 => LineEvent::Frame(info.bytes_read()),
                    Ok(_) | Err(_) => {
                        tracing::warn!(dir = %span.dir().display(), "software span: far end gone");
                        *peer = None;
                        LineEvent::Down
                    }
                },
            },
            Line::Dahdi(d) => match d.recv(buf).await {
                Ok(Got::Frame(n)) => LineEvent::Frame(n),
                Ok(Got::Alarm(true)) => LineEvent::Down,
                Ok(Got::Alarm(false)) => LineEvent::Up,
                Ok(Got::Problem(what)) => LineEvent::Problem(format!("d-channel: {what}")),
                Err(e) => LineEvent::Problem(format!("d-channel read: {e}")),
            },
        }
    }

    /// Sends a frame; with no far end connected it goes nowhere.
    pub async fn send(&self, frame: &[u8]) -> io::Result<()> {
        match self {
            Line::Software {
                peer: Some(peer), ..
            } => peer.send(frame).await.map(|_| ()),
            Line::Software { peer: None, .. } => Ok(()),
            Line::Dahdi(d) => d.send(frame),
        }
    }
}
