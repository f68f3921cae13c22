//! A carrier's TLS connection to the gateway, as a probe: the handshake (with or without a
//! client certificate), one OPTIONS, and its answer. For what baresip cannot show: baresip 1.0
//! neither verifies the gateway's certificate nor presents one of its own.
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::pki::PemPair;

const LIMIT: Duration = Duration::from_secs(5);

/// What a probe saw.
#[derive(Debug)]
pub struct Probe {
    /// The first line of the gateway's answer to OPTIONS (`SIP/2.0 200 OK`), if one came.
    pub answer: Option<String>,
    /// The certificate the gateway presented (DER), if the handshake got that far.
    pub server_certificate: Option<Vec<u8>>,
    /// Why there was no answer.
    pub error: Option<String>,
}

/// Connects to `addr` trusting `ca`, presenting `client` if given, and sends one OPTIONS.
pub fn options(addr: SocketAddr, ca: &Path, client: Option<&PemPair>) -> Probe {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the probe");
    runtime.block_on(probe(addr, ca, client))
}

async fn probe(addr: SocketAddr, ca: &Path, client: Option<&PemPair>) -> Probe {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("the ca file") {
        roots
            .add(cert.expect("a ca certificate"))
            .expect("a usable ca");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("tls versions")
        .with_root_certificates(roots);
    let config = match client {
        Some(pair) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&pair.cert)
                .expect("the client certificate")
                .map(|c| c.expect("a certificate"))
                .collect();
            let key = PrivateKeyDer::from_pem_file(&pair.key).expect("the client key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("a client certificate")
        }
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let failed = |error: String, server_certificate| Probe {
        answer: None,
        server_certificate,
        error: Some(error),
    };
    let tcp = match tokio::time::timeout(LIMIT, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(tcp)) => tcp,
        other => return failed(format!("connect: {other:?}"), None),
    };
    let name = ServerName::IpAddress(addr.ip().into());
    let mut tls = match tokio::time::timeout(LIMIT, connector.connect(name, tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => return failed(format!("handshake: {e}"), None),
        Err(_) => return failed("handshake timed out".into(), None),
    };
    let server_certificate = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|cert| cert.as_ref().to_vec());
    let request = format!(
        "OPTIONS sip:{addr};transport=tls SIP/2.0\r\n\
         Via: SIP/2.0/TLS 127.0.0.1:5099;branch=z9hG4bK-probe-{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@127.0.0.1>;tag=probe{n}\r\n\
         To: <sip:{addr}>\r\n\
         Call-ID: probe-{n}@127.0.0.1\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n",
        n = rand::random::<u32>()
    );
    if let Err(e) = tls.write_all(request.as_bytes()).await {
        return failed(format!("write: {e}"), server_certificate);
    }
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(LIMIT, tls.read(&mut buf)).await {
            Ok(Ok(0)) => return failed("closed without an answer".into(), server_certificate),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => return failed(format!("read: {e}"), server_certificate),
            Err(_) => return failed("no answer in time".into(), server_certificate),
        }
        let text = String::from_utf8_lossy(&received);
        if text.contains("\r\n\r\n") {
            return Probe {
                answer: text.lines().next().map(str::to_owned),
                server_certificate,
                error: None,
            };
        }
    }
}

/// The DER of the first certificate in a PEM file.
pub fn certificate_der(pem: &Path) -> Vec<u8> {
    CertificateDer::pem_file_iter(pem)
        .expect("a pem file")
        .next()
        .expect("a certificate in it")
        .expect("a readable certificate")
        .as_ref()
        .to_vec()
}
