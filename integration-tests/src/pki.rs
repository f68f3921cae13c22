//! Certificates for TLS tests: a carrier's CA, a gateway certificate for 127.0.0.1 from it, a
//! client certificate from it, and one from a CA nobody trusts. Written as PEM files in a
//! temporary directory that lives as long as the value.
use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedKey, ExtendedKeyUsagePurpose, IsCa, KeyPair,
};
use tempfile::TempDir;

/// A certificate and key on disk.
#[derive(Clone, Debug)]
pub struct PemPair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub struct TestPki {
    pub dir: TempDir,
    /// The CA the gateway's certificate and the good client's come from.
    pub ca: PathBuf,
    pub gateway: PemPair,
    pub client: PemPair,
    /// From another CA.
    pub stranger: PemPair,
    ca_cert: rcgen::Certificate,
    ca_key: KeyPair,
}

impl TestPki {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("trunkgate-pki-")
            .tempdir()
            .expect("a temp dir for certificates");
        let (ca_cert, ca_key) = ca_pair("trunkgate test carrier ca");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ca_cert.pem()).expect("writing the ca");
        let (other_ca, other_key) = ca_pair("somebody else's ca");
        let mut pki = TestPki {
            gateway: PemPair {
                cert: PathBuf::new(),
                key: PathBuf::new(),
            },
            client: PemPair {
                cert: PathBuf::new(),
                key: PathBuf::new(),
            },
            stranger: PemPair {
                cert: PathBuf::new(),
                key: PathBuf::new(),
            },
            ca,
            ca_cert,
            ca_key,
            dir,
        };
        pki.gateway = pki.issue("gateway", ExtendedKeyUsagePurpose::ServerAuth);
        pki.client = pki.issue("carrier", ExtendedKeyUsagePurpose::ClientAuth);
        let stranger = leaf(
            "carrier",
            ExtendedKeyUsagePurpose::ClientAuth,
            &other_ca,
            &other_key,
        );
        pki.stranger = pki.write("stranger", &stranger);
        pki
    }

    /// A new certificate from the CA for 127.0.0.1, written as `NAME.pem` and `NAME.key`.
    pub fn issue(&self, name: &str, usage: ExtendedKeyUsagePurpose) -> PemPair {
        let issued = leaf(name, usage, &self.ca_cert, &self.ca_key);
        self.write(name, &issued)
    }

    fn write(&self, name: &str, issued: &CertifiedKey) -> PemPair {
        let cert = self.dir.path().join(format!("{name}.pem"));
        let key = self.dir.path().join(format!("{name}.key"));
        std::fs::write(&cert, issued.cert.pem()).expect("writing a certificate");
        std::fs::write(&key, issued.key_pair.serialize_pem()).expect("writing a key");
        PemPair { cert, key }
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

fn ca_pair(name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().expect("a ca key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("a self-signed ca");
    (cert, key)
}

fn leaf(
    name: &str,
    usage: ExtendedKeyUsagePurpose,
    ca: &rcgen::Certificate,
    ca_key: &KeyPair,
) -> CertifiedKey {
    let key_pair = KeyPair::generate().expect("a key");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("leaf params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    let cert = params
        .signed_by(&key_pair, ca, ca_key)
        .expect("a certificate from the ca");
    CertifiedKey { cert, key_pair }
}
