//! SIP over TLS, the server side: our certificate (`[sip] tls_certificate`), and for a trunk with
//! `tls_client_ca` a handshake that demands the carrier's certificate from that CA (mutual TLS).
//!
//! The TLS settings are picked per connection by the address it comes from, before the
//! handshake: a carrier's address names its trunk, as it does for INVITEs. A reload builds new
//! settings and swaps them in; connections up keep theirs.
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::ServerName;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::agent::identity::{crypto_provider, pinned_verifier, Fingerprint};
use crate::sip::trunk::{Cidr, TrunkConfig};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{path}: no certificate in pem file")]
    NoCertificate { path: PathBuf },
    #[error("trunk {trunk}: tls_client_ca {path}: {reason}")]
    ClientCa {
        trunk: String,
        path: PathBuf,
        reason: String,
    },
    #[error("tls settings: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The handshake settings for each carrier address.
pub struct TlsServer {
    /// For carriers whose trunk asks for no client certificate.
    open: Arc<ServerConfig>,
    /// Every trunk in config order: its addresses, and the settings that verify its carrier's
    /// certificate when it demands one.
    trunks: Vec<(Vec<Cidr>, Option<Arc<ServerConfig>>)>,
    pub fingerprint: Fingerprint,
}

impl TlsServer {
    /// Reads the certificate, key and every trunk's client CA; paths are relative to `base`.
    pub fn load(
        certificate: &Path,
        private_key: &Path,
        trunks: &[TrunkConfig],
        base: &Path,
    ) -> Result<TlsServer, TlsError> {
        let certificate = base.join(certificate);
        let private_key = base.join(private_key);
        let chain = read_certificates(&certificate)?;
        let first = chain.first().ok_or_else(|| TlsError::NoCertificate {
            path: certificate.clone(),
        })?;
        let fingerprint = Fingerprint::of(first);
        let key = PrivateKeyDer::from_pem_file(&private_key).map_err(|e| TlsError::File {
            path: private_key.clone(),
            reason: e.to_string(),
        })?;
        let open = ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain.clone(), key.clone_key())?;
        let mut by_trunk = Vec::new();
        for trunk in trunks {
            let Some(ca) = &trunk.tls_client_ca else {
                by_trunk.push((trunk.allow.clone(), None));
                continue;
            };
            let ca = base.join(ca);
            let problem = |reason: String| TlsError::ClientCa {
                trunk: trunk.name.clone(),
                path: ca.clone(),
                reason,
            };
            let mut roots = RootCertStore::empty();
            for cert in read_certificates(&ca).map_err(|e| problem(e.to_string()))? {
                roots.add(cert).map_err(|e| problem(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(problem("no certificate in pem file".into()));
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), crypto_provider())
                    .build()
                    .map_err(|e| problem(e.to_string()))?;
            let config = ServerConfig::builder_with_provider(crypto_provider())
                .with_safe_default_protocol_versions()?
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain.clone(), key.clone_key())?;
            by_trunk.push((trunk.allow.clone(), Some(Arc::new(config))));
        }
        Ok(TlsServer {
            open: Arc::new(open),
            trunks: by_trunk,
            fingerprint,
        })
    }

    /// The settings for a connection from `ip`: those of its trunk, the first that allows it
    /// (as for INVITEs).
    pub fn for_peer(&self, ip: IpAddr) -> Arc<ServerConfig> {
        self.trunks
            .iter()
            .find(|(allow, _)| allow.iter().any(|cidr| cidr.contains(ip)))
            .and_then(|(_, mutual)| mutual.clone())
            .unwrap_or_else(|| self.open.clone())
    }
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |e: rustls::pki_types::pem::Error| TlsError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    CertificateDer::pem_file_iter(path)
        .map_err(bad)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)
}

/// How we connect to one carrier over TLS: the name we expect and send as SNI, and the
/// settings that verify it (and present our certificate, for carriers that ask).
#[derive(Clone)]
pub struct TlsClient {
    pub server_name: ServerName<'static>,
    pub config: Arc<ClientConfig>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsClient({:?})", self.server_name)
    }
}

impl TlsClient {
    /// For `trunk`, whose host is `host` unless it names another in `tls_server_name`.
    /// `ours` is our certificate chain and key ([sip] tls_certificate), if any.
    pub fn for_trunk(
        trunk: &TrunkConfig,
        host: &str,
        base: &Path,
        ours: Option<(&Path, &Path)>,
    ) -> Result<TlsClient, TlsError> {
        let name = trunk.tls_server_name.as_deref().unwrap_or(host).to_owned();
        let server_name = ServerName::try_from(name.clone()).map_err(|e| TlsError::File {
            path: PathBuf::from(&name),
            reason: format!("not a server name: {e}"),
        })?;
        let builder = ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()?;
        let verified = match (&trunk.tls_fingerprint, &trunk.tls_ca) {
            (Some(fingerprint), _) => {
                let fingerprint: Fingerprint =
                    fingerprint.parse().map_err(|e: String| TlsError::File {
                        path: PathBuf::from("tls_fingerprint"),
                        reason: e,
                    })?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(pinned_verifier(fingerprint))
            }
            (None, Some(ca)) => {
                let ca = base.join(ca);
                let mut roots = RootCertStore::empty();
                for cert in read_certificates(&ca)? {
                    roots.add(cert).map_err(|e| TlsError::File {
                        path: ca.clone(),
                        reason: e.to_string(),
                    })?;
                }
                builder.with_root_certificates(roots)
            }
            (None, None) => {
                let mut roots = RootCertStore::empty();
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                builder.with_root_certificates(roots)
            }
        };
        let config = match ours {
            Some((certificate, key)) => {
                let certificate = base.join(certificate);
                let key_path = base.join(key);
                let chain = read_certificates(&certificate)?;
                let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| TlsError::File {
                    path: key_path.clone(),
                    reason: e.to_string(),
                })?;
                verified.with_client_auth_cert(chain, key)?
            }
            None => verified.with_no_client_auth(),
        };
        Ok(TlsClient {
            server_name,
            config: Arc::new(config),
        })
    }
}
