//! A carrier trunk as the operator configures it (`[[trunk]]`): who may call in, which codecs
//! we answer with, where new calls go.
use std::net::IpAddr;

use serde::Deserialize;

use crate::route::Destination;
use crate::sip::sdp::SrtpPolicy;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    pub name: String,
    pub allow: Vec<Cidr>,
    #[serde(default = "default_codecs")]
    pub codecs: Vec<CodecName>,
    #[serde(default = "yes")]
    pub symmetric_rtp: bool,
    /// Where new calls go.
    pub route: Destination,
    #[serde(default)]
    pub ring_ms: u64,
    /// Which of this trunk's calls are recorded (a queue's own policy wins).
    pub recording: Option<crate::recording::config::RecordingPolicy>,
    /// SRTP with SDES keys: "off", "offered" or "required". Keys travel only in SIP over TLS,
    /// so over UDP or TCP "offered" means plain RTP and "required" refuses the call (488).
    #[serde(default)]
    pub srtp: SrtpPolicy,
    /// PEM CA certificate(s): the carrier must present a certificate from this CA to connect
    /// over TLS (mutual TLS). Relative to the config file.
    pub tls_client_ca: Option<std::path::PathBuf>,
    /// When we connect to the carrier over TLS (a registrar with `transport=tls`): trust
    /// certificates from this PEM CA file (default: the public web PKI's roots)…
    pub tls_ca: Option<std::path::PathBuf>,
    /// …or exactly the certificate with this SHA-256 fingerprint (`AB:CD:…`).
    pub tls_fingerprint: Option<String>,
    /// The name the carrier's certificate must carry, sent as SNI (default: the registrar's
    /// host).
    pub tls_server_name: Option<String>,
    /// Digest credentials the carrier's challenges are answered with.
    pub credentials: Option<Credentials>,
    /// Register with the carrier's registrar.
    pub register: Option<RegisterConfig>,
    /// The trunk carries agents' outbound calls.
    pub outbound: Option<crate::call::outbound::TrunkOutbound>,
    /// The carrier takes REFER: an agent's transfer of one of its callers to an external number
    /// is handed back to it (RFC 3515), freeing our channel.
    #[serde(default)]
    pub refer: bool,
}

/// A username and its password, given inline or (better) in a file only the service user can
/// read. `Debug` never shows the password.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub username: String,
    pub password: Option<String>,
    pub password_file: Option<std::path::PathBuf>,
    /// The password from `password_file`, read when the config is loaded.
    #[serde(skip)]
    pub secret_from_file: Option<String>,
}

impl Credentials {
    pub fn secret(&self) -> &str {
        self.password
            .as_deref()
            .or(self.secret_from_file.as_deref())
            .unwrap_or_default()
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("password_file", &self.password_file)
            .finish()
    }
}

/// `[trunk.register]`: where and how often the trunk registers.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RegisterConfig {
    /// `sip:HOST[:PORT][;transport=udp|tcp|tls]` (or `sips:`).
    pub registrar: String,
    /// Who we register as; default `sip:USERNAME@HOST` of the registrar.
    pub aor: Option<String>,
    /// The registration's life we ask for; the registrar's answer rules.
    #[serde(default = "default_expires")]
    pub expires_s: u32,
    /// While registered, a keep-alive this often: OPTIONS on UDP, a double CRLF on TCP; 0 for
    /// none.
    #[serde(default = "default_keepalive")]
    pub keepalive_s: u32,
}

fn default_keepalive() -> u32 {
    30
}

fn default_expires() -> u32 {
    600
}

fn default_codecs() -> Vec<CodecName> {
    vec![CodecName::Pcmu, CodecName::Pcma]
}

fn yes() -> bool {
    true
}

impl TrunkConfig {
    pub fn accepts(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|c| c.contains(ip))
    }
}

/// A codec by the name operators write; SDP negotiation maps it to payload types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum CodecName {
    #[serde(rename = "PCMU")]
    Pcmu,
    #[serde(rename = "PCMA")]
    Pcma,
}

/// An address block in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`); a bare address means /32
/// or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            _ => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => mask_eq(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => mask_eq(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

fn mask_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let mut bits = usize::from(prefix);
    for (x, y) in a.iter().zip(b) {
        if bits == 0 {
            return true;
        }
        let take = bits.min(8);
        let mask = (0xFFu16 << (8 - take)) as u8;
        if x & mask != y & mask {
            return false;
        }
        bits -= take;
    }
    true
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("invalid address {addr:?} in {s:?}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("invalid prefix length {p:?} in {s:?} (0..={max})"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
