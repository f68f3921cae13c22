//! Where a SIP request goes: RFC 3263 §4 server location for a configured proxy URI.
//!
//! A URI with an IP address or a port needs at most an A/AAAA lookup; one with a transport and
//! no port needs the transport's SRV records (RFC 2782); one with neither starts from the
//! domain's NAPTR records (RFC 3403), which name the transports the domain offers and their SRV
//! records. The ordering rules (NAPTR order and preference, SRV priority and weighted choice) are
//! pure functions, [`order_naptr`] and [`order_srv`], tested without DNS; [`SipResolver`] is the
//! thin tokio shell that asks hickory's resolver and feeds them.
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, Protocol, ResolverConfig, ResolverOpts};
use hickory_resolver::error::{ResolveError as DnsError, ResolveErrorKind};
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioAsyncResolver;
use rand::Rng;

use crate::sip::peer::Transport;

/// The port of SIP over UDP and TCP when neither the URI nor DNS gives one (RFC 3261 §19.1.2).
pub const SIP_PORT: u16 = 5060;
/// The port of SIP over TLS.
pub const SIPS_PORT: u16 = 5061;

/// A SIP URI naming where requests go, as configured: `sip:HOST[:PORT][;transport=udp|tcp|tls]`
/// or `sips:HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipTarget {
    /// A domain name (lower case) or an IP address (an IPv6 one without its brackets).
    pub host: String,
    pub port: Option<u16>,
    /// The `transport` parameter; `sips:` with `transport=tcp` or `tls` is TLS.
    pub transport: Option<Transport>,
    /// `sips:`: only TLS will do.
    pub secure: bool,
}

impl SipTarget {
    pub fn parse(text: &str) -> Result<SipTarget, String> {
        let (secure, rest) = if let Some(rest) = strip_prefix_ci(text, "sips:") {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ci(text, "sip:") {
            (false, rest)
        } else {
            return Err(format!("{text:?} is not a sip: or sips: uri"));
        };
        let (hostport, params) = rest.split_once(';').unwrap_or((rest, ""));
        if hostport.contains('@') {
            return Err(format!(
                "{text:?}: a server is a host, not a user (no `user@`)"
            ));
        }
        let mut transport = None;
        for param in params.split(';').filter(|p| !p.is_empty()) {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            if name.eq_ignore_ascii_case("transport") {
                transport = Some(match value.to_ascii_lowercase().as_str() {
                    "udp" if !secure => Transport::Udp,
                    "tcp" if !secure => Transport::Tcp,
                    "tls" | "tcp" => Transport::Tls,
                    "udp" => {
                        return Err(format!(
                            "{text:?}: sips: needs TLS, not transport {value:?}"
                        ))
                    }
                    _ => return Err(format!("{text:?}: unknown transport {value:?}")),
                });
            }
        }
        let (host, port) = split_host_port(hostport)
            .ok_or_else(|| format!("{text:?}: expected HOST, HOST:PORT or [IPv6]:PORT"))?;
        if port == Some(0) {
            return Err(format!("{text:?}: port 0"));
        }
        Ok(SipTarget {
            host: host.to_ascii_lowercase(),
            port,
            transport,
            secure,
        })
    }

    /// The transport when the URI alone decides: its parameter, else TLS for `sips:`, else UDP.
    pub fn default_transport(&self) -> Transport {
        match (self.transport, self.secure) {
            (Some(transport), _) => transport,
            (None, true) => Transport::Tls,
            (None, false) => Transport::Udp,
        }
    }
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT`; a host is an IPv4 address or a name of letters,
/// digits, dots and hyphens.
fn split_host_port(text: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        host.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host, port));
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host, Some(port.parse().ok()?)),
        None => (text, None),
    };
    let valid = !host.is_empty()
        && !host.starts_with('.')
        && !host.contains("..")
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    valid.then_some((host, port))
}

/// The default port of a transport.
pub fn default_port(transport: Transport) -> u16 {
    match transport {
        Transport::Tls => SIPS_PORT,
        Transport::Udp | Transport::Tcp => SIP_PORT,
    }
}

/// The SRV name of a transport at `host` (RFC 3263 §4.2).
fn srv_name(transport: Transport, host: &str) -> String {
    let prefix = match transport {
        Transport::Udp => "_sip._udp",
        Transport::Tcp => "_sip._tcp",
        Transport::Tls => "_sips._tcp",
    };
    format!("{prefix}.{host}")
}

/// One place to send to, in the order to try.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Resolved {
    pub addr: SocketAddr,
    pub transport: Transport,
    /// The name a TLS certificate must carry: the URI's host (RFC 5922 §4: the domain, not the
    /// SRV target), or its IP address as text.
    pub tls_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// No NAPTR, SRV or A/AAAA record led to an address.
    #[error("no SIP server found for {0}")]
    NotFound(String),
    /// The lookups did not finish within their limit.
    #[error("DNS lookups timed out")]
    Timeout,
    /// Nothing was found and a DNS server failed (refused, unreachable, a malformed answer),
    /// so the name may well exist.
    #[error("DNS lookup of {name} failed: {message}")]
    Lookup { name: String, message: String },
    /// The system's resolver configuration could not be read.
    #[error("resolver configuration: {0}")]
    Config(String),
}

/// An SRV record (RFC 2782), as the ordering needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// The host to look up (no trailing dot); `.` (empty here) means "not offered here".
    pub target: String,
}

/// A NAPTR record (RFC 3403), as the ordering needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NaptrRecord {
    pub order: u16,
    pub preference: u16,
    pub flags: String,
    pub service: String,
    /// The SRV name it points to (no trailing dot).
    pub replacement: String,
}

/// RFC 2782's order for SRV records: lowest priority first; within a priority a weighted random
/// order, by the RFC's selection loop (weight 0 records first in the running sum, so they are
/// chosen only when the random number is 0: rarely while others carry weight). Records whose
/// target is `.` (the service is not offered) are dropped.
pub fn order_srv(records: Vec<SrvRecord>, rng: &mut impl Rng) -> Vec<SrvRecord> {
    let mut records: Vec<SrvRecord> = records
        .into_iter()
        .filter(|r| !r.target.is_empty() && r.target != ".")
        .collect();
    // A stable sort: within a priority, weight 0 first, otherwise as DNS gave them.
    records.sort_by_key(|r| (r.priority, r.weight != 0));
    let mut out = Vec::with_capacity(records.len());
    let mut rest = records.as_slice();
    while let Some(first) = rest.first() {
        let same = rest
            .iter()
            .take_while(|r| r.priority == first.priority)
            .count();
        let mut group: Vec<SrvRecord> = rest[..same].to_vec();
        rest = &rest[same..];
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| u32::from(r.weight)).sum();
            let pick = rng.gen_range(0..=total);
            let mut running = 0u32;
            let index = group
                .iter()
                .position(|r| {
                    running += u32::from(r.weight);
                    running >= pick
                })
                .unwrap_or(0);
            out.push(group.remove(index));
        }
    }
    out
}

/// RFC 3263 §4.1: the NAPTR records a SIP client can use, in the order to use them, each as the
/// transport it offers and the SRV name to look up. Kept: flag `s` and service `SIP+D2U`,
/// `SIP+D2T` or `SIPS+D2T` (only `SIPS+D2T` when `secure`), case-insensitive; sorted by order,
/// then preference. A name that comes twice is kept once, at its first place.
pub fn order_naptr(records: Vec<NaptrRecord>, secure: bool) -> Vec<(Transport, String)> {
    let mut usable: Vec<(u16, u16, Transport, String)> = records
        .into_iter()
        .filter(|r| r.flags.eq_ignore_ascii_case("s"))
        .filter(|r| !r.replacement.is_empty() && r.replacement != ".")
        .filter_map(|r| {
            let transport = match r.service.to_ascii_uppercase().as_str() {
                "SIPS+D2T" => Transport::Tls,
                "SIP+D2T" if !secure => Transport::Tcp,
                "SIP+D2U" if !secure => Transport::Udp,
                _ => return None,
            };
            Some((r.order, r.preference, transport, r.replacement))
        })
        .collect();
    usable.sort_by_key(|(order, preference, _, _)| (*order, *preference));
    let mut seen = HashSet::new();
    usable
        .into_iter()
        .filter(|(_, _, transport, name)| seen.insert((*transport, name.to_ascii_lowercase())))
        .map(|(_, _, transport, name)| (transport, name))
        .collect()
}

/// Finds a URI's servers through DNS: the shell around [`order_naptr`] and [`order_srv`]. Cheap
/// to clone (the clones share one cache and one set of connections).
#[derive(Clone)]
pub struct SipResolver {
    resolver: TokioAsyncResolver,
}

impl SipResolver {
    /// `servers` empty: the system's resolver config (/etc/resolv.conf, and /etc/hosts); else
    /// exactly these nameservers, each over UDP and TCP (127.0.0.1:5353 in tests), and no hosts
    /// file. Lookups need a tokio runtime; building does not.
    pub fn new(servers: &[SocketAddr]) -> Result<SipResolver, ResolveError> {
        let resolver = if servers.is_empty() {
            TokioAsyncResolver::tokio_from_system_conf()
                .map_err(|e| ResolveError::Config(e.to_string()))?
        } else {
            let mut config = ResolverConfig::new();
            for &addr in servers {
                config.add_name_server(NameServerConfig::new(addr, Protocol::Udp));
                config.add_name_server(NameServerConfig::new(addr, Protocol::Tcp));
            }
            let mut options = ResolverOpts::default();
            options.use_hosts_file = false;
            TokioAsyncResolver::tokio(config, options)
        };
        Ok(SipResolver { resolver })
    }

    /// RFC 3263 §4: every target for `target`, most preferred first, without duplicates. All
    /// the lookups together take at most `limit` ([`ResolveError::Timeout`] after it).
    ///
    /// - An IP address: itself, with the URI's port or the transport's default (5060, 5061 for
    ///   TLS); the URI's transport, else TLS for `sips:`, else UDP. No lookup.
    /// - A port: the host's A records (AAAA if it has none) with that port, transport as above.
    /// - A transport and no port: its SRV records (`_sip._udp`, `_sip._tcp`, `_sips._tcp`),
    ///   else the host's addresses with the default port.
    /// - Neither: the host's NAPTR records ([`order_naptr`]) and the SRV records they name;
    ///   if they lead to none, SRV `_sips._tcp`, `_sip._tcp`, `_sip._udp` (only `_sips._tcp`
    ///   for `sips:`), every one found in that order; else the host's addresses with 5060 over
    ///   UDP (5061 over TLS for `sips:`).
    ///
    /// SRV records go in [`order_srv`]'s order, each target's addresses taken from the answer's
    /// additional section when there, else looked up. `tls_name` is always the URI's host.
    /// The future holds `rng` across lookups: it is `Send` when the rng is (`StdRng`, not
    /// `ThreadRng`).
    pub async fn resolve(
        &self,
        target: &SipTarget,
        limit: Duration,
        rng: &mut impl Rng,
    ) -> Result<Vec<Resolved>, ResolveError> {
        let found = tokio::time::timeout(limit, self.locate(target, rng))
            .await
            .map_err(|_| ResolveError::Timeout)??;
        let mut seen = HashSet::new();
        let found: Vec<Resolved> = found
            .into_iter()
            .filter(|r| seen.insert(r.clone()))
            .collect();
        if found.is_empty() {
            return Err(ResolveError::NotFound(target.host.clone()));
        }
        Ok(found)
    }

    async fn locate(
        &self,
        target: &SipTarget,
        rng: &mut impl Rng,
    ) -> Result<Vec<Resolved>, ResolveError> {
        // RFC 5922 §4: the certificate names the domain of the URI (a name, without the
        // trailing dot of a fully qualified one).
        let tls_name = target.host.trim_end_matches('.').to_owned();
        let mut failures = Failures::default();
        // §4.1/4.2: an IP address, or a port, leaves only the address lookup.
        if let Ok(ip) = target.host.parse::<IpAddr>() {
            let transport = target.default_transport();
            let port = target.port.unwrap_or(default_port(transport));
            return Ok(vec![Resolved {
                addr: SocketAddr::new(ip, port),
                transport,
                tls_name,
            }]);
        }
        if let Some(port) = target.port {
            let transport = target.default_transport();
            let found = self
                .addresses(&target.host, port, transport, &tls_name, &mut failures)
                .await?;
            return failures.unless_found(found, &target.host);
        }
        // §4.2: a transport and no port: its SRV records, else the host with the default port.
        if let Some(transport) = target.transport {
            let name = srv_name(transport, &target.host);
            let mut found = self
                .srv_targets(&name, transport, &tls_name, rng, &mut failures)
                .await?;
            if found.is_none() {
                found = Some(
                    self.addresses(
                        &target.host,
                        default_port(transport),
                        transport,
                        &tls_name,
                        &mut failures,
                    )
                    .await?,
                );
            }
            return failures.unless_found(found.unwrap_or_default(), &target.host);
        }
        // §4.1: neither: NAPTR, else SRV for each transport, else the host itself. NAPTR records
        // whose SRV names have no records count as none.
        let naptr = self.naptr(&target.host, &mut failures).await?;
        let via_naptr = order_naptr(naptr, target.secure);
        let mut found = self
            .srv_all(via_naptr, &tls_name, rng, &mut failures)
            .await?;
        if found.is_none() {
            let transports: &[Transport] = if target.secure {
                &[Transport::Tls]
            } else {
                &[Transport::Tls, Transport::Tcp, Transport::Udp]
            };
            let names = transports
                .iter()
                .map(|&t| (t, srv_name(t, &target.host)))
                .collect();
            found = self.srv_all(names, &tls_name, rng, &mut failures).await?;
        }
        let found = match found {
            Some(found) => found,
            None => {
                let transport = target.default_transport();
                self.addresses(
                    &target.host,
                    default_port(transport),
                    transport,
                    &tls_name,
                    &mut failures,
                )
                .await?
            }
        };
        failures.unless_found(found, &target.host)
    }

    /// The targets of the SRV names in order; `None` when none of them has records.
    async fn srv_all(
        &self,
        names: Vec<(Transport, String)>,
        tls_name: &str,
        rng: &mut impl Rng,
        failures: &mut Failures,
    ) -> Result<Option<Vec<Resolved>>, ResolveError> {
        let mut found: Option<Vec<Resolved>> = None;
        for (transport, name) in names {
            if let Some(targets) = self
                .srv_targets(&name, transport, tls_name, rng, failures)
                .await?
            {
                found.get_or_insert_with(Vec::new).extend(targets);
            }
        }
        Ok(found)
    }

    /// The NAPTR records of `host`; none when there are none or the lookup failed.
    async fn naptr(
        &self,
        host: &str,
        failures: &mut Failures,
    ) -> Result<Vec<NaptrRecord>, ResolveError> {
        let lookup = match self.resolver.lookup(host, RecordType::NAPTR).await {
            Ok(lookup) => lookup,
            Err(e) => {
                failures.note(host, "NAPTR", e)?;
                return Ok(Vec::new());
            }
        };
        Ok(lookup
            .iter()
            .filter_map(|rdata| match rdata {
                RData::NAPTR(naptr) => Some(NaptrRecord {
                    order: naptr.order(),
                    preference: naptr.preference(),
                    flags: String::from_utf8_lossy(naptr.flags()).into_owned(),
                    service: String::from_utf8_lossy(naptr.services()).into_owned(),
                    replacement: name_text(naptr.replacement()),
                }),
                _ => None,
            })
            .collect())
    }

    /// The addresses behind the SRV records of `name`, in RFC 2782's order; `None` when it has
    /// no SRV records (or the lookup failed), so the caller falls back.
    async fn srv_targets(
        &self,
        name: &str,
        transport: Transport,
        tls_name: &str,
        rng: &mut impl Rng,
        failures: &mut Failures,
    ) -> Result<Option<Vec<Resolved>>, ResolveError> {
        let lookup = match self.resolver.srv_lookup(name).await {
            Ok(lookup) => lookup,
            Err(e) => {
                failures.note(name, "SRV", e)?;
                return Ok(None);
            }
        };
        let records: Vec<SrvRecord> = lookup
            .iter()
            .map(|srv| SrvRecord {
                priority: srv.priority(),
                weight: srv.weight(),
                port: srv.port(),
                target: name_text(srv.target()),
            })
            .collect();
        if records.is_empty() {
            return Ok(None);
        }
        // Addresses from the answer's additional section, by owner name (hickory keeps only
        // those of one target; the others are looked up).
        let additional: Vec<(String, IpAddr)> = lookup
            .as_lookup()
            .record_iter()
            .filter_map(|record| {
                let ip = match record.data()? {
                    RData::A(a) => IpAddr::V4(a.0),
                    RData::AAAA(aaaa) => IpAddr::V6(aaaa.0),
                    _ => return None,
                };
                Some((name_text(record.name()), ip))
            })
            .collect();
        let mut found = Vec::new();
        for record in order_srv(records, rng) {
            let known: Vec<IpAddr> = additional
                .iter()
                .filter(|(owner, _)| owner.eq_ignore_ascii_case(&record.target))
                .map(|(_, ip)| *ip)
                .collect();
            if known.is_empty() {
                found.extend(
                    self.addresses(&record.target, record.port, transport, tls_name, failures)
                        .await?,
                );
            } else {
                found.extend(known.into_iter().map(|ip| Resolved {
                    addr: SocketAddr::new(ip, record.port),
                    transport,
                    tls_name: tls_name.to_owned(),
                }));
            }
        }
        Ok(Some(found))
    }

    /// A/AAAA of `host` (hickory's default: IPv4 if it has any, else IPv6), each with `port`.
    async fn addresses(
        &self,
        host: &str,
        port: u16,
        transport: Transport,
        tls_name: &str,
        failures: &mut Failures,
    ) -> Result<Vec<Resolved>, ResolveError> {
        match self.resolver.lookup_ip(host).await {
            Ok(lookup) => Ok(lookup
                .iter()
                .map(|ip| Resolved {
                    addr: SocketAddr::new(ip, port),
                    transport,
                    tls_name: tls_name.to_owned(),
                })
                .collect()),
            Err(e) => {
                failures.note(host, "A/AAAA", e)?;
                Ok(Vec::new())
            }
        }
    }
}

/// A DNS name as text, without the root's trailing dot (`.` itself becomes empty).
fn name_text(name: &hickory_resolver::Name) -> String {
    let text = name.to_ascii();
    text.strip_suffix('.').unwrap_or(&text).to_ascii_lowercase()
}

/// Lookups that failed other than by "no such record": when nothing is found in the end, the
/// first says why.
#[derive(Default)]
struct Failures {
    first: Option<(String, String)>,
}

impl Failures {
    /// A failed lookup: no records is normal (the next step of §4 follows), a timeout ends the
    /// resolution, anything else is remembered and the next step follows too.
    fn note(&mut self, name: &str, kind: &str, error: DnsError) -> Result<(), ResolveError> {
        match error.kind() {
            ResolveErrorKind::NoRecordsFound { .. } => {
                tracing::debug!(name, kind, "no records");
                Ok(())
            }
            ResolveErrorKind::Timeout => Err(ResolveError::Timeout),
            ResolveErrorKind::Proto(proto)
                if matches!(
                    proto.kind(),
                    hickory_resolver::proto::error::ProtoErrorKind::Timeout
                ) =>
            {
                Err(ResolveError::Timeout)
            }
            _ => {
                tracing::debug!(name, kind, error = %error, "lookup failed");
                self.first
                    .get_or_insert_with(|| (name.to_owned(), format!("{kind}: {error}")));
                Ok(())
            }
        }
    }

    fn unless_found(self, found: Vec<Resolved>, host: &str) -> Result<Vec<Resolved>, ResolveError> {
        match (found.is_empty(), self.first) {
            (true, Some((name, message))) => Err(ResolveError::Lookup { name, message }),
            (true, None) => Err(ResolveError::NotFound(host.to_owned())),
            (false, _) => Ok(found),
        }
    }
}

#[cfg(test)]
mod tests;
