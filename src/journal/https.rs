//! The HTTPS client the http and s3 sinks share: rustls with the built-in public roots or an
//! organisation's CA, an optional client certificate, a timeout per request and no redirects
//! (a sink that redirects is misconfigured, and a redirect would carry the credentials on).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::config::SinkConfig;

/// Reads the roots and client certificate the sink's config names (relative to `base_dir`);
/// the error says which file and why.
pub fn agent(config: &SinkConfig, base_dir: &Path) -> Result<ureq::Agent, String> {
    let client = config
        .client_certificate
        .as_deref()
        .zip(config.client_key.as_deref());
    agent_with(
        config.ca_file.as_deref(),
        client,
        config.timeout(),
        base_dir,
    )
}

/// `ca_file`: PEM roots instead of the public ones; `client`: a certificate chain and its key.
pub fn agent_with(
    ca_file: Option<&Path>,
    client: Option<(&Path, &Path)>,
    timeout: Duration,
    base_dir: &Path,
) -> Result<ureq::Agent, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(file) => {
            let pem = read(base_dir, file)?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| format!("{}: {e}", file.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", file.display()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder =
        rustls::ClientConfig::builder_with_provider(crate::agent::identity::crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
    let tls = match client {
        Some((cert, key)) => {
            let chain: Result<Vec<_>, _> =
                CertificateDer::pem_slice_iter(&read(base_dir, cert)?).collect();
            let chain = chain.map_err(|e| format!("{}: {e}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_slice(&read(base_dir, key)?)
                .map_err(|e| format!("{}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(ureq::AgentBuilder::new()
        .timeout(timeout)
        .redirects(0)
        .tls_config(Arc::new(tls))
        .build())
}

/// A file the sink's config names, relative to the config file's directory.
pub fn read(base_dir: &Path, path: &Path) -> Result<Vec<u8>, String> {
    let path = base_dir.join(path);
    std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
}

/// A secret kept in a file of its own (a token, a key), trimmed; never logged.
pub fn read_secret(base_dir: &Path, path: &Path) -> Result<String, String> {
    let bytes = read(base_dir, path)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("{}: the secret is not text", path.display()))?;
    Ok(text.trim().to_string())
}
