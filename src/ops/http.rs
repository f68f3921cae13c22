//! Just enough HTTP/1.1 for the admin API and Prometheus: one request per connection, a request
//! head of at most 8 KiB, no request bodies, `Connection: close` on every answer. The parsing is
//! httparse's; this module bounds sizes and time so a stuck or hostile client costs nothing.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const MAX_HEAD: usize = 8 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }

    pub fn json(body: String) -> Response {
        Response {
            status: 200,
            content_type: "application/json",
            body,
        }
    }

    fn write_to(&self, out: &mut Vec<u8>) {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            422 => "Unprocessable Entity",
            405 => "Method Not Allowed",
            431 => "Request Header Fields Too Large",
            503 => "Service Unavailable",
            _ => "Error",
        };
        out.extend_from_slice(
            format!(
                "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                self.status,
                self.content_type,
                self.body.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(self.body.as_bytes());
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("request head over {MAX_HEAD} bytes")]
    TooLarge,
    #[error("malformed request: {0}")]
    Malformed(httparse::Error),
}

/// The request in `buf` once its head is complete (`Ok(None)`: read more).
pub fn parse_head(buf: &[u8]) -> Result<Option<Request>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {
            // A complete parse always has a method and a path.
            let target = req.path.unwrap_or("/");
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p.to_string(), Some(q.to_string())),
                None => (target.to_string(), None),
            };
            Ok(Some(Request {
                method: req.method.unwrap_or("GET").to_string(),
                path,
                query,
            }))
        }
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooLarge),
        Err(e) => Err(HeadError::Malformed(e)),
    }
}

pub type Handler = Arc<
    dyn Fn(Request) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>
        + Send
        + Sync,
>;

/// Answers connections on `listener` with `handler` until `stop`; over TLS with `tls`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    handler: Handler,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let handler = handler.clone();
                    match tls.clone() {
                        None => {
                            tokio::spawn(answer(stream, peer, handler));
                        }
                        Some(tls) => {
                            tokio::spawn(async move {
                                match tokio::time::timeout(READ_TIMEOUT, tls.accept(stream)).await {
                                    Ok(Ok(stream)) => answer(stream, peer, handler).await,
                                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "https: handshake failed"),
                                    Err(_) => tracing::debug!(%peer, "https: handshake timed out"),
                                }
                            });
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "admin listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = stop.cancelled() => return,
        }
    }
}

async fn answer<S>(mut stream: S, peer: SocketAddr, handler: Handler)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = Vec::with_capacity(1024);
    let request = tokio::time::timeout(READ_TIMEOUT, async {
        let mut chunk = [0u8; 1024];
        loop {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            match parse_head(&buf) {
                Ok(Some(r)) => return Some(Ok(r)),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    })
    .await;
    let response = match request {
        Ok(Some(Ok(request))) => handler(request).await,
        Ok(Some(Err(e @ HeadError::TooLarge))) => Response::text(431, format!("{e}\n")),
        Ok(Some(Err(e))) => Response::text(400, format!("{e}\n")),
        // The client went away or never finished its request.
        Ok(None) | Err(_) => {
            tracing::debug!(%peer, "admin request incomplete");
            return;
        }
    };
    let mut out = Vec::with_capacity(response.body.len() + 128);
    response.write_to(&mut out);
    let _ = stream.write_all(&out).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_head_parses_once_complete_with_its_query() {
        let head = b"GET /v1/calls?x=1 HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(parse_head(&head[..20]), Ok(None));
        assert_eq!(
            parse_head(head),
            Ok(Some(Request {
                method: "GET".into(),
                path: "/v1/calls".into(),
                query: Some("x=1".into()),
            }))
        );
    }

    #[test]
    fn garbage_and_endless_heads_are_refused() {
        assert!(matches!(
            parse_head(b"\x00\x01 nonsense\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
        let endless = [b'a'; MAX_HEAD];
        let mut head = b"GET /".to_vec();
        head.extend_from_slice(&endless);
        assert_eq!(parse_head(&head), Err(HeadError::TooLarge));
    }

    #[test]
    fn responses_carry_their_length_and_close() {
        let mut out = Vec::new();
        Response::text(503, "draining\n").write_to(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{text}"
        );
        assert!(text.contains("Content-Length: 9\r\n"), "{text}");
        assert!(
            text.ends_with("Connection: close\r\n\r\ndraining\n"),
            "{text}"
        );
    }
}
