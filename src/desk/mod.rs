//! The agent desk: a web page the gateway serves (its files are embedded in the binary) whose
//! script speaks the agent protocol over WebTransport to the agent endpoint — the same
//! protocol, queues and sessions as the CLI agent, in a browser.
//!
//! The page is plain HTML and an ES module, no build step. It asks `desk/config` where the
//! agent endpoint is (its port; the host is the one the browser used for the page) and, with
//! no configured certificate, the hash of the short-lived one browsers accept
//! (`serverCertificateHashes`).
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::agent::desk_certificate::DeskCertificates;
use crate::agent::identity::{crypto_provider, ServerIdentity};
use crate::agent::server::DESK_PATH;
use crate::ops::http::{self, Request, Response};

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// The page's files: path, content type, content.
const FILES: &[(&str, &str, &str)] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("page/index.html"),
    ),
    ("/desk.js", JAVASCRIPT, include_str!("page/desk.js")),
    ("/media.js", JAVASCRIPT, include_str!("page/media.js")),
    ("/jitter.js", JAVASCRIPT, include_str!("page/jitter.js")),
    (
        "/protection.js",
        JAVASCRIPT,
        include_str!("page/protection.js"),
    ),
    ("/reorder.js", JAVASCRIPT, include_str!("page/reorder.js")),
    ("/worklet.js", JAVASCRIPT, include_str!("page/worklet.js")),
];

/// What the page needs to know of the agent endpoint.
pub struct Desk {
    /// The agent endpoint's UDP port.
    pub quic_port: u16,
    /// `None` with a configured certificate: browsers check it against their roots.
    pub certificates: Option<Arc<DeskCertificates>>,
}

impl Desk {
    fn route(&self, request: &Request) -> Response {
        if request.method != "GET" {
            return Response::text(405, "GET only\n");
        }
        let path = match request.path.as_str() {
            "/index.html" => "/",
            path => path,
        };
        if let Some((_, content_type, body)) = FILES.iter().find(|(p, ..)| *p == path) {
            return Response {
                status: 200,
                content_type,
                body: body.to_string(),
            };
        }
        match path {
            "/desk/config" => {
                let hashes: Vec<String> = self
                    .certificates
                    .iter()
                    .map(|c| c.current().hash.to_string())
                    .collect();
                let config = serde_json::json!({
                    "port": self.quic_port,
                    "path": DESK_PATH,
                    "hashes": hashes,
                });
                Response::json(config.to_string())
            }
            _ => Response::text(404, "not found\n"),
        }
    }
}

/// The page's HTTPS with the agent link's configured certificate: a browser that trusts it for
/// WebTransport trusts it for the page, and only a page from a secure context may use
/// WebTransport and the microphone anywhere but on localhost.
pub fn https_config(identity: &ServerIdentity) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves the desk on `addr` until `stop`, over HTTPS with `tls`; the address bound.
pub async fn listen(
    addr: SocketAddr,
    desk: Arc<Desk>,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("{addr}: {e}")))?;
    let bound = listener.local_addr()?;
    let handler: http::Handler = Arc::new(move |request: Request| {
        let response = desk.route(&request);
        Box::pin(async move { response })
    });
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::spawn(http::serve(listener, tls, handler, stop));
    Ok(bound)
}
