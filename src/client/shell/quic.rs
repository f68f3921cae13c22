//! The QUIC side of an agent: opening a connection with its control stream, reading from it
//! as `select!` branches that may have nothing to read, and telling how a connection ended.
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use bytes::Bytes;

use super::super::core::Loss;
use super::ATTEMPT_TIMEOUT;

/// A connection with its control stream.
pub(super) struct Live {
    pub(super) connection: quinn::Connection,
    pub(super) send: quinn::SendStream,
    /// `None` once the gateway finished its side (it closes the connection next).
    pub(super) recv: Option<quinn::RecvStream>,
}

pub(super) type Attempt = Pin<Box<dyn Future<Output = Result<Live, String>> + Send>>;

/// Opens a connection and its control stream.
pub(super) async fn connect(
    endpoint: quinn::Endpoint,
    gateway: SocketAddr,
    server_name: String,
) -> Result<Live, String> {
    let attempt = async {
        let connecting = endpoint
            .connect(gateway, &server_name)
            .map_err(|e| format!("cannot connect to {gateway}: {e}"))?;
        let connection = connecting
            .await
            .map_err(|e| format!("handshake with {gateway}: {e}"))?;
        let (send, recv) = connection
            .open_bi()
            .await
            .map_err(|e| format!("control stream: {e}"))?;
        Ok(Live {
            connection,
            send,
            recv: Some(recv),
        })
    };
    tokio::time::timeout(ATTEMPT_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no connection to {gateway} within {} s",
                ATTEMPT_TIMEOUT.as_secs()
            ))
        })
}

pub(super) fn connection_loss(error: quinn::ConnectionError) -> Loss {
    match error {
        quinn::ConnectionError::ApplicationClosed(close) => Loss::Closed {
            code: close.error_code.into_inner(),
            reason: String::from_utf8_lossy(&close.reason).into_owned(),
        },
        other => Loss::Lost {
            error: other.to_string(),
        },
    }
}

pub(super) fn read_loss(error: quinn::ReadError) -> Loss {
    match error {
        quinn::ReadError::ConnectionLost(error) => connection_loss(error),
        other => Loss::Lost {
            error: format!("control stream: {other}"),
        },
    }
}

pub(super) fn write_loss(error: quinn::WriteError) -> Loss {
    match error {
        quinn::WriteError::ConnectionLost(error) => connection_loss(error),
        other => Loss::Lost {
            error: format!("control stream: {other}"),
        },
    }
}

pub(super) async fn attempt_done(attempt: Option<&mut Attempt>) -> Result<Live, String> {
    match attempt {
        Some(attempt) => attempt.await,
        None => std::future::pending().await,
    }
}

pub(super) async fn read_control(
    recv: Option<&mut quinn::RecvStream>,
    buffer: &mut [u8],
) -> Result<Option<usize>, quinn::ReadError> {
    match recv {
        Some(recv) => recv.read(buffer).await,
        None => std::future::pending().await,
    }
}

pub(super) async fn read_datagram(
    connection: Option<&quinn::Connection>,
) -> Result<Bytes, quinn::ConnectionError> {
    match connection {
        Some(connection) => connection.read_datagram().await,
        None => std::future::pending().await,
    }
}
