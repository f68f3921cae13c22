//! RFC 3263 §4 server location against a real DNS server: dnsmasq on a loopback port with the
//! NAPTR, SRV and A records a carrier would publish. The resolver asks only that server, and
//! that server answers only from its records (it forwards nothing).
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use trunkgate::sip::peer::Transport;
use trunkgate::sip::resolve::{ResolveError, Resolved, SipResolver, SipTarget};
use trunkgate_integration::dns::{DnsRecord, Dnsmasq};

const LIMIT: Duration = Duration::from_secs(5);

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

fn to(last: u8, port: u16, transport: Transport) -> Resolved {
    Resolved {
        addr: SocketAddr::from((ip(last), port)),
        transport,
        tls_name: "carrier.test".into(),
    }
}

async fn resolve(dns: &Dnsmasq, uri: &str, seed: u64) -> Result<Vec<Resolved>, ResolveError> {
    // A new resolver each time: nothing comes from an earlier lookup's cache.
    let resolver = SipResolver::new(&[dns.addr()]).expect("a resolver");
    let target = SipTarget::parse(uri).expect("a good uri");
    resolver
        .resolve(&target, LIMIT, &mut StdRng::seed_from_u64(seed))
        .await
}

/// The queries dnsmasq got, as `TYPE NAME`.
fn queries(dns: &Dnsmasq) -> Vec<String> {
    dns.queries()
        .into_iter()
        .map(|(kind, name)| format!("{kind} {name}"))
        .collect()
}

fn assert_forwarded_nothing(dns: &Dnsmasq) {
    let log = dns.log();
    assert!(
        !log.contains("forwarded"),
        "dnsmasq forwarded a query:\n{log}"
    );
}

/// `sip:carrier.test;transport=udp`: the `_sip._udp` SRV records, priority 10 before 20 whatever
/// the random draw, each target's address with the SRV record's port.
#[tokio::test]
async fn srv_priority_orders_the_targets_with_their_ports() {
    let dns = Dnsmasq::start(&[
        DnsRecord::srv(
            "_sip._udp.carrier.test",
            20,
            10,
            5064,
            "backup.carrier.test",
        ),
        DnsRecord::srv("_sip._udp.carrier.test", 10, 10, 5062, "main.carrier.test"),
        DnsRecord::a("main.carrier.test", ip(10)),
        DnsRecord::a("backup.carrier.test", ip(20)),
    ]);
    for seed in 0..5 {
        let found = resolve(&dns, "sip:carrier.test;transport=udp", seed)
            .await
            .unwrap();
        assert_eq!(
            found,
            [to(10, 5062, Transport::Udp), to(20, 5064, Transport::Udp)],
            "seed {seed}"
        );
    }
    let asked = queries(&dns);
    assert!(
        asked.contains(&"SRV _sip._udp.carrier.test".to_owned()),
        "{asked:?}"
    );
    assert!(
        !asked.iter().any(|q| q.starts_with("NAPTR")),
        "a transport in the uri skips NAPTR: {asked:?}"
    );
    assert_forwarded_nothing(&dns);
}

/// `sip:carrier.test`: its NAPTR records say TLS (order 10) before UDP (order 20); each leads to
/// its SRV records. `sips:carrier.test` takes only the TLS ones.
#[tokio::test]
async fn naptr_order_puts_tls_before_udp() {
    let dns = Dnsmasq::start(&[
        DnsRecord::naptr("carrier.test", 20, 10, "SIP+D2U", "_sip._udp.carrier.test"),
        DnsRecord::naptr(
            "carrier.test",
            10,
            10,
            "SIPS+D2T",
            "_sips._tcp.carrier.test",
        ),
        // Not SIP: ignored.
        DnsRecord::naptr(
            "carrier.test",
            5,
            10,
            "E2U+email",
            "_mail._tcp.carrier.test",
        ),
        DnsRecord::srv(
            "_sips._tcp.carrier.test",
            10,
            10,
            5061,
            "tls-a.carrier.test",
        ),
        DnsRecord::srv(
            "_sips._tcp.carrier.test",
            20,
            10,
            5081,
            "tls-b.carrier.test",
        ),
        DnsRecord::srv("_sip._udp.carrier.test", 10, 10, 5060, "udp.carrier.test"),
        DnsRecord::a("tls-a.carrier.test", ip(11)),
        DnsRecord::a("tls-b.carrier.test", ip(12)),
        DnsRecord::a("udp.carrier.test", ip(13)),
    ]);
    let found = resolve(&dns, "sip:carrier.test", 1).await.unwrap();
    assert_eq!(
        found,
        [
            to(11, 5061, Transport::Tls),
            to(12, 5081, Transport::Tls),
            to(13, 5060, Transport::Udp),
        ]
    );
    let found = resolve(&dns, "sips:carrier.test", 1).await.unwrap();
    assert_eq!(
        found,
        [to(11, 5061, Transport::Tls), to(12, 5081, Transport::Tls)]
    );
    let asked = queries(&dns);
    assert_eq!(asked[0], "NAPTR carrier.test", "{asked:?}");
    assert!(
        !asked
            .iter()
            .any(|q| q.contains("_mail") || q.contains("_sip._tcp")),
        "only the SIP NAPTR records' SRV names are asked: {asked:?}"
    );
    assert_forwarded_nothing(&dns);
}

/// `sip:only-a.test`: no NAPTR, no SRV for any transport, so its A record with 5060 over UDP;
/// `sips:` gives 5061 over TLS, a transport without SRV records that transport's default port.
#[tokio::test]
async fn a_record_alone_gives_the_default_port() {
    let dns = Dnsmasq::start(&[DnsRecord::a("only-a.test", ip(30))]);
    let at = |port, transport| Resolved {
        addr: SocketAddr::from((ip(30), port)),
        transport,
        tls_name: "only-a.test".into(),
    };
    let found = resolve(&dns, "sip:only-a.test", 1).await.unwrap();
    assert_eq!(found, [at(5060, Transport::Udp)]);
    let asked = queries(&dns);
    assert_eq!(
        asked[..5],
        [
            "NAPTR only-a.test",
            "SRV _sips._tcp.only-a.test",
            "SRV _sip._tcp.only-a.test",
            "SRV _sip._udp.only-a.test",
            "A only-a.test",
        ],
        "RFC 3263's fallbacks in order: {asked:?}"
    );
    let found = resolve(&dns, "sips:only-a.test", 1).await.unwrap();
    assert_eq!(found, [at(5061, Transport::Tls)]);
    let found = resolve(&dns, "sip:only-a.test;transport=tcp", 1)
        .await
        .unwrap();
    assert_eq!(found, [at(5060, Transport::Tcp)]);
    assert_forwarded_nothing(&dns);
}

/// `sip:carrier.test:5070`: a port in the uri means the host's address, whatever NAPTR and SRV
/// records it has.
#[tokio::test]
async fn port_in_the_uri_skips_naptr_and_srv() {
    let dns = Dnsmasq::start(&[
        DnsRecord::naptr("carrier.test", 10, 10, "SIP+D2U", "_sip._udp.carrier.test"),
        DnsRecord::srv("_sip._udp.carrier.test", 10, 10, 5062, "main.carrier.test"),
        DnsRecord::a("main.carrier.test", ip(10)),
        DnsRecord::a("carrier.test", ip(40)),
    ]);
    let found = resolve(&dns, "sip:carrier.test:5070", 1).await.unwrap();
    assert_eq!(found, [to(40, 5070, Transport::Udp)]);
    let found = resolve(&dns, "sip:carrier.test:5071;transport=tls", 1)
        .await
        .unwrap();
    assert_eq!(found, [to(40, 5071, Transport::Tls)]);
    let asked = queries(&dns);
    assert!(
        asked
            .iter()
            .all(|q| q.starts_with("A ") || q.starts_with("AAAA ")),
        "only address lookups: {asked:?}"
    );
    assert_forwarded_nothing(&dns);
}

/// A name nobody has: NotFound as soon as the server says NXDOMAIN, not after the limit.
#[tokio::test]
async fn unknown_name_is_not_found_at_once() {
    let dns = Dnsmasq::start(&[DnsRecord::a("only-a.test", ip(30))]);
    for uri in [
        "sip:nowhere.test",
        "sips:nowhere.test",
        "sip:nowhere.test;transport=tcp",
        "sip:nowhere.test:5060",
    ] {
        let started = Instant::now();
        let result = resolve(&dns, uri, 1).await;
        assert_eq!(
            result,
            Err(ResolveError::NotFound("nowhere.test".into())),
            "{uri}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{uri} took {:?}",
            started.elapsed()
        );
    }
    assert!(
        dns.log().contains("nowhere.test is NXDOMAIN"),
        "{}",
        dns.log()
    );
    assert_forwarded_nothing(&dns);
}

/// A nameserver that never answers (its UDP socket is never read; its TCP connections are
/// never accepted): Timeout after the limit, not hickory's own retries.
#[tokio::test]
async fn silent_nameserver_times_out_at_the_limit() {
    let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = udp.local_addr().unwrap().port();
    let _tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).ok();
    let resolver = SipResolver::new(&[SocketAddr::from((Ipv4Addr::LOCALHOST, port))]).unwrap();
    let target = SipTarget::parse("sip:carrier.test").unwrap();
    let limit = Duration::from_millis(500);
    let started = Instant::now();
    let result = resolver
        .resolve(&target, limit, &mut StdRng::seed_from_u64(1))
        .await;
    let took = started.elapsed();
    assert_eq!(result, Err(ResolveError::Timeout));
    assert!(
        took >= limit && took < Duration::from_secs(2),
        "took {took:?}"
    );
}
