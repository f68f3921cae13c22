//! SDES: SRTP keys in SDP (RFC 4568), `a=crypto:<tag> <suite> inline:<key||salt>[|lifetime][|MKI:len]`.
//!
//! Only what carriers use is understood: one inline key per line, no MKI, the lifetime ignored
//! (we never send enough packets to reach 2^31). A line we cannot use is skipped, not an error:
//! the offer usually has another.
use std::fmt;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;

/// A trunk's SRTP setting (`srtp = "off" | "offered" | "required"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SrtpPolicy {
    /// Plain RTP only: an SRTP offer is refused with 488.
    #[default]
    Off,
    /// Our offers are SRTP; the carrier's offers are taken either way.
    Offered,
    /// SRTP only: a plain offer is refused with 488.
    Required,
}

/// The SRTP crypto suites we key (RFC 4568 §6.2, RFC 7714 §14.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpSuite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
    AeadAes128Gcm,
}

impl SrtpSuite {
    /// Our preference when we offer: the suite every SRTP carrier has first.
    pub const ALL: [SrtpSuite; 3] = [
        SrtpSuite::AesCm128HmacSha1_80,
        SrtpSuite::AeadAes128Gcm,
        SrtpSuite::AesCm128HmacSha1_32,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            SrtpSuite::AeadAes128Gcm => "AEAD_AES_128_GCM",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        SrtpSuite::ALL
            .into_iter()
            .find(|suite| suite.name().eq_ignore_ascii_case(name))
    }

    pub fn key_len(self) -> usize {
        16
    }

    /// 112-bit salts for counter mode (RFC 3711), 96-bit for GCM (RFC 7714 §12).
    pub fn salt_len(self) -> usize {
        match self {
            SrtpSuite::AeadAes128Gcm => 12,
            _ => 14,
        }
    }

    pub fn material_len(self) -> usize {
        self.key_len() + self.salt_len()
    }
}

impl fmt::Display for SrtpSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A master key and salt. Its `Debug` never shows them: keys do not go to logs.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKey {
    pub suite: SrtpSuite,
    material: Vec<u8>,
}

impl SrtpKey {
    /// `material` is key || salt and must be [`SrtpSuite::material_len`] long.
    pub fn new(suite: SrtpSuite, material: Vec<u8>) -> Option<Self> {
        (material.len() == suite.material_len()).then_some(SrtpKey { suite, material })
    }

    /// A key for `suite` cut from `random`, which must hold at least 30 bytes.
    pub fn from_random(suite: SrtpSuite, random: &[u8; 30]) -> Self {
        SrtpKey {
            suite,
            material: random[..suite.material_len()].to_vec(),
        }
    }

    pub fn master_key(&self) -> &[u8] {
        &self.material[..self.suite.key_len()]
    }

    pub fn master_salt(&self) -> &[u8] {
        &self.material[self.suite.key_len()..]
    }
}

impl fmt::Debug for SrtpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SrtpKey({}, <redacted>)", self.suite)
    }
}

/// One `a=crypto` line we can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    /// The offerer's tag; the answer repeats it (RFC 4568 §5.1.2).
    pub tag: u32,
    pub key: SrtpKey,
}

impl Crypto {
    /// The value after `a=crypto:`; `None` for a line we cannot use (unknown suite, MKI,
    /// several keys, session parameters, a key of the wrong length, bad base64).
    pub fn parse(value: &str) -> Option<Crypto> {
        let mut fields = value.split_ascii_whitespace();
        let tag = fields.next()?.parse::<u32>().ok()?;
        if tag > 999_999_999 {
            return None;
        }
        let suite = SrtpSuite::from_name(fields.next()?)?;
        let key_params = fields.next()?;
        // Session parameters (UNENCRYPTED_SRTP, KDR=…, FEC_ORDER…) change what the keys mean.
        if fields.next().is_some() || key_params.contains(';') {
            return None;
        }
        let inline = key_params
            .get(..7)
            .filter(|method| method.eq_ignore_ascii_case("inline:"))
            .map(|_| &key_params[7..])?;
        let mut parts = inline.split('|');
        let encoded = parts.next()?;
        for part in parts {
            // The lifetime (`2^31` or a number) is fine; an MKI (`1:4`) is not supported.
            if part.contains(':') {
                return None;
            }
        }
        let material = STANDARD
            .decode(encoded)
            .or_else(|_| STANDARD_NO_PAD.decode(encoded))
            .ok()?;
        Some(Crypto {
            tag,
            key: SrtpKey::new(suite, material)?,
        })
    }

    /// The value after `a=crypto:`.
    pub fn value(&self) -> String {
        format!(
            "{} {} inline:{}",
            self.tag,
            self.key.suite,
            STANDARD.encode(&self.key.material)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_rfc_4568_example_line_parses_and_writes_back() {
        // RFC 4568 §4's example key, with a lifetime.
        let line = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20";
        let crypto = Crypto::parse(line).expect("usable");
        assert_eq!(crypto.tag, 1);
        assert_eq!(crypto.key.suite, SrtpSuite::AesCm128HmacSha1_80);
        assert_eq!(crypto.key.master_key().len(), 16);
        assert_eq!(crypto.key.master_salt().len(), 14);
        assert_eq!(
            crypto.value(),
            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
        );
    }

    #[test]
    fn gcm_keys_have_a_twelve_byte_salt() {
        let key = SrtpKey::from_random(SrtpSuite::AeadAes128Gcm, &[7; 30]);
        let crypto = Crypto { tag: 2, key };
        let back = Crypto::parse(&crypto.value()).expect("usable");
        assert_eq!(back, crypto);
        assert_eq!(back.key.master_salt().len(), 12);
    }

    #[test]
    fn lines_we_cannot_honour_are_skipped() {
        let key = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
        for line in [
            format!("1 AES_256_CM_HMAC_SHA1_80 inline:{key}"),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^20|1:4"),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key} UNENCRYPTED_SRTP"),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key};inline:{key}"),
            "1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=".to_string(),
            "1 AES_CM_128_HMAC_SHA1_80 inline:***".to_string(),
            "x AES_CM_128_HMAC_SHA1_80".to_string(),
            String::new(),
        ] {
            assert_eq!(Crypto::parse(&line), None, "{line}");
        }
    }

    #[test]
    fn keys_never_show_in_debug_output() {
        let crypto = Crypto::parse(
            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
        )
        .expect("usable");
        let shown = format!("{crypto:?}");
        assert!(!shown.contains("PS1u"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
}
