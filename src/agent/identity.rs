//! Who the gateway is to its agents, and how an agent makes sure.
//!
//! With no certificate configured the gateway creates a self-signed one on first start, keeps
//! it in its state directory (so the fingerprint agents pinned stays valid across restarts) and
//! logs its SHA-256 fingerprint. An agent trusts the gateway either through a CA or through that
//! pinned fingerprint — never by accepting whatever answers. Pinning still verifies the TLS 1.3
//! handshake signature, so only the holder of the private key passes.
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::desk_certificate::DeskCertificates;
use sha2::{Digest, Sha256};

pub const CERT_FILE: &str = "agent-link-cert.der";
pub const KEY_FILE: &str = "agent-link-key.der";

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: no certificate in pem file")]
    NoCertificate { path: PathBuf },
    #[error("{path}: {source}")]
    BadPem {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path}: {reason}")]
    BadKey { path: PathBuf, reason: &'static str },
    #[error("cannot create a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// SHA-256 of a certificate's DER encoding, shown as `AB:CD:…` (what browsers and openssl
/// print, so an operator can compare it by eye).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(cert: &CertificateDer<'_>) -> Self {
        Fingerprint(Sha256::digest(cert.as_ref()).into())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = String;

    /// Accepts `AB:CD:…`, plain hex, any case, with an optional `sha256:` prefix.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex: String = s
            .trim()
            .trim_start_matches("sha256:")
            .trim_start_matches("SHA256:")
            .chars()
            .filter(|c| *c != ':')
            .collect();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "invalid sha-256 fingerprint {s:?}: expected 32 hex bytes"
            ));
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            // Two ASCII hex digits, checked above.
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                .map_err(|e| format!("invalid fingerprint {s:?}: {e}"))?;
        }
        Ok(Fingerprint(out))
    }
}

/// The gateway's certificate chain and key for the agent link.
#[derive(Debug)]
pub struct ServerIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub fingerprint: Fingerprint,
    /// True when this start created the self-signed certificate.
    pub created: bool,
}

/// The configured PEM certificate chain and key, or the self-signed pair kept in `state_dir`
/// (created there on first use).
pub fn load_or_create(
    configured: Option<(&Path, &Path)>,
    state_dir: &Path,
) -> Result<ServerIdentity, IdentityError> {
    match configured {
        Some((cert, key)) => load_pem(cert, key),
        None => load_or_create_self_signed(state_dir),
    }
}

fn load_pem(cert: &Path, key: &Path) -> Result<ServerIdentity, IdentityError> {
    let bad = |path: &Path, source| IdentityError::BadPem {
        path: path.to_path_buf(),
        source,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(cert, e))?;
    let first = chain.first().ok_or_else(|| IdentityError::NoCertificate {
        path: cert.to_path_buf(),
    })?;
    let fingerprint = Fingerprint::of(first);
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, e))?;
    Ok(ServerIdentity {
        chain,
        key,
        fingerprint,
        created: false,
    })
}

fn load_or_create_self_signed(dir: &Path) -> Result<ServerIdentity, IdentityError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| IdentityError::Io { path, source }
    };
    let (cert_path, key_path) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
    if cert_path.exists() && key_path.exists() {
        let cert = CertificateDer::from(std::fs::read(&cert_path).map_err(io(&cert_path))?);
        let key = PrivateKeyDer::try_from(std::fs::read(&key_path).map_err(io(&key_path))?)
            .map_err(|reason| IdentityError::BadKey {
                path: key_path.clone(),
                reason,
            })?;
        return Ok(ServerIdentity {
            fingerprint: Fingerprint::of(&cert),
            chain: vec![cert],
            key,
            created: false,
        });
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let generated = rcgen::generate_simple_self_signed(vec!["trunkgate".to_string()])?;
    let cert = generated.cert.der().clone();
    let key_der = generated.key_pair.serialize_der();
    write_private(&key_path, &key_der).map_err(io(&key_path))?;
    std::fs::write(&cert_path, cert.as_ref()).map_err(io(&cert_path))?;
    let key = PrivateKeyDer::try_from(key_der).map_err(|reason| IdentityError::BadKey {
        path: key_path,
        reason,
    })?;
    Ok(ServerIdentity {
        fingerprint: Fingerprint::of(&cert),
        chain: vec![cert],
        key,
        created: true,
    })
}

/// Writes a key readable by its owner only, via a temporary file so a crash leaves no half key.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// How an agent decides it is talking to its gateway.
#[derive(Debug, Clone)]
pub enum ServerTrust {
    /// The SHA-256 fingerprint of the gateway's certificate, as the gateway logged it.
    Pinned(Fingerprint),
    /// Roots of a CA that signed the gateway's certificate; the name is checked too.
    Ca(Vec<CertificateDer<'static>>),
}

pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// rustls client configuration for `trust`, with `alpn`.
pub fn client_tls(trust: &ServerTrust, alpn: &[u8]) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = crypto_provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let mut config = match trust {
        ServerTrust::Pinned(fp) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedVerifier {
                fingerprint: *fp,
                provider,
            }))
            .with_no_client_auth(),
        ServerTrust::Ca(roots) => {
            let mut store = rustls::RootCertStore::empty();
            for root in roots {
                store.add(root.clone())?;
            }
            builder.with_root_certificates(store).with_no_client_auth()
        }
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}

/// rustls server configuration for the agent endpoint: a CLI agent (`agent_alpn`) gets the
/// agent-link certificate; a browser (`browser_alpn`, WebTransport) gets the desk certificate
/// in force, or the agent-link one when `desk` is `None` (a configured certificate, which
/// browsers check against their roots themselves).
pub fn server_tls(
    identity: &ServerIdentity,
    desk: Option<Arc<DeskCertificates>>,
    agent_alpn: &[u8],
    browser_alpn: &[u8],
) -> Result<rustls::ServerConfig, rustls::Error> {
    let signing = crypto_provider()
        .key_provider
        .load_private_key(identity.key.clone_key())?;
    let agent = Arc::new(CertifiedKey::new(identity.chain.clone(), signing));
    let mut config = rustls::ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(ByAlpn {
            agent,
            desk,
            agent_alpn: agent_alpn.to_vec(),
        }));
    // The agent's first: a client offering both is a CLI agent.
    config.alpn_protocols = vec![agent_alpn.to_vec(), browser_alpn.to_vec()];
    Ok(config)
}

/// The certificate for a client, by the protocol it offers (the one rustls will choose).
#[derive(Debug)]
struct ByAlpn {
    agent: Arc<CertifiedKey>,
    desk: Option<Arc<DeskCertificates>>,
    agent_alpn: Vec<u8>,
}

impl ResolvesServerCert for ByAlpn {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let cli_agent = hello
            .alpn()
            .is_some_and(|mut offered| offered.any(|p| p == self.agent_alpn.as_slice()));
        match &self.desk {
            Some(desk) if !cli_agent => Some(desk.current().key),
            _ => Some(self.agent.clone()),
        }
    }
}

/// A verifier that accepts exactly the certificate with this fingerprint (a carrier's, pinned
/// in its trunk), whatever its name or issuer.
pub fn pinned_verifier(fingerprint: Fingerprint) -> Arc<dyn ServerCertVerifier> {
    Arc::new(PinnedVerifier {
        fingerprint,
        provider: crypto_provider(),
    })
}

/// Accepts exactly the pinned certificate; the handshake signature is verified as usual.
#[derive(Debug)]
struct PinnedVerifier {
    fingerprint: Fingerprint,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = Fingerprint::of(end_entity);
        if seen == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "certificate fingerprint {seen} is not the pinned {}",
                self.fingerprint
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests;
