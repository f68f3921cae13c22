//! The certificate browsers see on the agent endpoint (WebTransport, ALPN `h3`) when no
//! certificate is configured.
//!
//! A browser accepts a self-signed certificate only through `serverCertificateHashes`, and only
//! an ECDSA P-256 one valid for 14 days at most. So the gateway keeps one in memory, replaces it
//! well before it expires (connections already up keep theirs), and tells pages its current
//! hash. CLI agents are not concerned: they pin the long-lived agent-link certificate.
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

use super::identity::Fingerprint;

/// What browsers allow for `serverCertificateHashes`, counted from `not_before`.
const MAX_VALIDITY: Duration = Duration::from_secs(14 * 24 * 3600);
/// `not_before` lies this far back, for clocks a little behind ours; it counts in the 14 days.
const BACKDATE: Duration = Duration::from_secs(3600);
/// A certificate this close to its end is replaced, leaving pages days to fetch the new hash.
pub const RENEW_BEFORE: Duration = Duration::from_secs(7 * 24 * 3600);

/// One certificate: its key for TLS, its hash for pages, when it ends.
#[derive(Clone)]
pub struct DeskCertificate {
    pub key: Arc<CertifiedKey>,
    pub hash: Fingerprint,
    pub not_after: SystemTime,
}

impl std::fmt::Debug for DeskCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeskCertificate")
            .field("hash", &self.hash.to_string())
            .field("not_after", &self.not_after)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeskCertificateError {
    #[error("cannot create the desk certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the desk certificate's key: {0}")]
    Key(#[from] rustls::Error),
}

impl DeskCertificate {
    /// A new ECDSA P-256 certificate for `127.0.0.1`, `localhost` and `names`, valid from an
    /// hour before `now` to 14 days after that.
    pub fn generate(now: SystemTime, names: &[String]) -> Result<Self, DeskCertificateError> {
        let mut sans = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        sans.extend(names.iter().cloned());
        let mut params = rcgen::CertificateParams::new(sans)?;
        let not_before = now - BACKDATE;
        let not_after = not_before + MAX_VALIDITY;
        params.not_before = time::OffsetDateTime::from(not_before);
        params.not_after = time::OffsetDateTime::from(not_after);
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = params.self_signed(&key_pair)?;
        let der: CertificateDer<'static> = cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
        let signing = any_supported_type(&key)?;
        Ok(Self {
            hash: Fingerprint::of(&der),
            key: Arc::new(CertifiedKey::new(vec![der], signing)),
            not_after,
        })
    }
}

/// The certificate in force, shared by the TLS configuration and whoever tells pages its hash.
#[derive(Debug)]
pub struct DeskCertificates {
    current: Mutex<DeskCertificate>,
    names: Vec<String>,
}

impl DeskCertificates {
    pub fn new(now: SystemTime, names: Vec<String>) -> Result<Self, DeskCertificateError> {
        Ok(Self {
            current: Mutex::new(DeskCertificate::generate(now, &names)?),
            names,
        })
    }

    pub fn current(&self) -> DeskCertificate {
        // A panicking holder left a whole certificate: still usable.
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the certificate if it ends within [`RENEW_BEFORE`] of `now`; the new one if so.
    pub fn renew_if_due(
        &self,
        now: SystemTime,
    ) -> Result<Option<DeskCertificate>, DeskCertificateError> {
        let due = self
            .current()
            .not_after
            .duration_since(now)
            .map_or(true, |left| left <= RENEW_BEFORE);
        if !due {
            return Ok(None);
        }
        self.renew_now(now).map(Some)
    }

    /// Replaces the certificate whatever its age.
    pub fn renew_now(&self, now: SystemTime) -> Result<DeskCertificate, DeskCertificateError> {
        let fresh = DeskCertificate::generate(now, &self.names)?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = fresh.clone();
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_desk_certificate_is_p256_and_valid_for_14_days_at_most() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_595_000);
        let cert = DeskCertificate::generate(now, &[]).unwrap();
        assert_eq!(cert.not_after, now - BACKDATE + MAX_VALIDITY);
        let der = &cert.key.cert[0];
        assert_eq!(Fingerprint::of(der), cert.hash);
        // The key's curve, P-256, is named by its OID 1.2.840.10045.3.1.7.
        const P256: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        assert!(der.as_ref().windows(P256.len()).any(|w| w == P256));
    }

    #[test]
    fn the_certificate_is_renewed_a_week_before_it_ends_and_not_before() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_595_000);
        let certs = DeskCertificates::new(start, vec!["desk.example".into()]).unwrap();
        let first = certs.current();
        let day = Duration::from_secs(24 * 3600);
        assert!(certs.renew_if_due(start + 5 * day).unwrap().is_none());
        assert_eq!(certs.current().hash, first.hash);
        let renewed = certs
            .renew_if_due(start + 7 * day)
            .unwrap()
            .expect("renewed");
        assert_ne!(renewed.hash, first.hash);
        assert_eq!(certs.current().hash, renewed.hash);
        assert!(certs.renew_if_due(start + 8 * day).unwrap().is_none());
    }
}
