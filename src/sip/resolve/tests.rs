use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;

fn target(host: &str, port: Option<u16>, transport: Option<Transport>, secure: bool) -> SipTarget {
    SipTarget {
        host: host.into(),
        port,
        transport,
        secure,
    }
}

#[test]
fn parses_hosts_ports_transports_and_sips() {
    let cases = [
        (
            "sip:carrier.example",
            target("carrier.example", None, None, false),
        ),
        (
            "SIP:Carrier.Example:5070;transport=TCP",
            target("carrier.example", Some(5070), Some(Transport::Tcp), false),
        ),
        (
            "sip:carrier.example;transport=udp",
            target("carrier.example", None, Some(Transport::Udp), false),
        ),
        (
            "sip:carrier.example;lr;transport=tls",
            target("carrier.example", None, Some(Transport::Tls), false),
        ),
        (
            "sips:carrier.example",
            target("carrier.example", None, None, true),
        ),
        (
            "sips:carrier.example:5081;transport=tcp",
            target("carrier.example", Some(5081), Some(Transport::Tls), true),
        ),
        ("sip:192.0.2.1", target("192.0.2.1", None, None, false)),
        (
            "sip:[2001:db8::1]:5070",
            target("2001:db8::1", Some(5070), None, false),
        ),
        (
            "sip:[2001:db8::1]",
            target("2001:db8::1", None, None, false),
        ),
        (
            "sip:carrier.example.",
            target("carrier.example.", None, None, false),
        ),
    ];
    for (text, want) in cases {
        assert_eq!(SipTarget::parse(text), Ok(want), "{text}");
    }
}

#[test]
fn rejects_bad_uris_saying_why() {
    let cases = [
        ("carrier.example", "is not a sip: or sips: uri"),
        ("tel:+15551234", "is not a sip: or sips: uri"),
        (
            "sip:alice@carrier.example",
            "a server is a host, not a user",
        ),
        (
            "sip:carrier.example;transport=sctp",
            "unknown transport \"sctp\"",
        ),
        ("sips:carrier.example;transport=udp", "sips: needs TLS"),
        ("sip:", "expected HOST"),
        ("sip:carrier.example:99999", "expected HOST"),
        ("sip:carrier.example:", "expected HOST"),
        ("sip:carrier.example:0", "port 0"),
        ("sip:2001:db8::1", "expected HOST"),
        ("sip:[2001:db8::1", "expected HOST"),
        ("sip:[carrier.example]", "expected HOST"),
        ("sip:[2001:db8::1]5060", "expected HOST"),
        ("sip:car_rier.example", "expected HOST"),
        ("sip:carrier..example", "expected HOST"),
        ("sip:.carrier.example", "expected HOST"),
    ];
    for (text, want) in cases {
        let err = SipTarget::parse(text).expect_err(text);
        assert!(err.contains(want), "{text}: {err:?} should say {want:?}");
        assert!(
            err.contains(&format!("{text:?}")),
            "{text}: {err:?} names the uri"
        );
    }
}

fn srv(priority: u16, weight: u16, target: &str) -> SrvRecord {
    SrvRecord {
        priority,
        weight,
        port: 5060,
        target: target.into(),
    }
}

fn targets(records: &[SrvRecord]) -> Vec<&str> {
    records.iter().map(|r| r.target.as_str()).collect()
}

#[test]
fn srv_lower_priority_always_first() {
    let records = vec![
        srv(20, 100, "c"),
        srv(10, 1, "a"),
        srv(30, 0, "d"),
        srv(10, 50, "b"),
    ];
    for seed in 0..200 {
        let ordered = order_srv(records.clone(), &mut StdRng::seed_from_u64(seed));
        let names = targets(&ordered);
        assert_eq!(ordered.len(), 4);
        let mut first_two = names[..2].to_vec();
        first_two.sort();
        assert_eq!(first_two, ["a", "b"], "seed {seed}: {names:?}");
        assert_eq!(names[2..], ["c", "d"], "seed {seed}");
    }
}

/// How often each of `records`' targets comes first over many seeded runs, as shares.
fn first_shares(records: &[SrvRecord], runs: u64) -> std::collections::HashMap<String, f64> {
    let mut counts = std::collections::HashMap::new();
    for seed in 0..runs {
        let ordered = order_srv(records.to_vec(), &mut StdRng::seed_from_u64(seed));
        *counts.entry(ordered[0].target.clone()).or_insert(0u64) += 1;
    }
    counts
        .into_iter()
        .map(|(name, n)| (name, n as f64 / runs as f64))
        .collect()
}

#[test]
fn srv_weights_share_the_first_place() {
    let shares = first_shares(&[srv(10, 20, "light"), srv(10, 80, "heavy")], 10_000);
    let heavy = shares["heavy"];
    let light = shares["light"];
    assert!((heavy - 0.80).abs() < 0.03, "heavy first {heavy}");
    assert!((light - 0.20).abs() < 0.03, "light first {light}");
    // Both always present, in either order.
    let ordered = order_srv(
        vec![srv(10, 20, "light"), srv(10, 80, "heavy")],
        &mut StdRng::seed_from_u64(1),
    );
    let mut names = targets(&ordered);
    names.sort();
    assert_eq!(names, ["heavy", "light"]);
}

#[test]
fn srv_weight_zero_comes_first_only_rarely() {
    // RFC 2782: a weight-0 record is chosen first only when the random number is 0, here 1 in
    // 101.
    let shares = first_shares(&[srv(10, 0, "zero"), srv(10, 100, "weighted")], 10_000);
    let zero = shares.get("zero").copied().unwrap_or(0.0);
    assert!(zero < 0.03, "zero-weight first {zero}");
    // All weights 0: every record is kept (the RFC's loop then keeps DNS's order).
    let ordered = order_srv(
        vec![srv(10, 0, "x"), srv(10, 0, "y"), srv(10, 0, "z")],
        &mut StdRng::seed_from_u64(7),
    );
    assert_eq!(targets(&ordered), ["x", "y", "z"]);
}

#[test]
fn srv_target_dot_means_no_service() {
    let ordered = order_srv(
        vec![srv(10, 10, "."), srv(20, 10, "b"), srv(5, 0, "")],
        &mut StdRng::seed_from_u64(3),
    );
    assert_eq!(targets(&ordered), ["b"]);
}

fn naptr(order: u16, preference: u16, flags: &str, service: &str, to: &str) -> NaptrRecord {
    NaptrRecord {
        order,
        preference,
        flags: flags.into(),
        service: service.into(),
        replacement: to.into(),
    }
}

#[test]
fn naptr_by_order_then_preference() {
    let records = vec![
        naptr(20, 10, "s", "SIP+D2U", "_sip._udp.c.test"),
        naptr(10, 50, "s", "SIP+D2T", "_sip._tcp.c.test"),
        naptr(10, 10, "s", "SIPS+D2T", "_sips._tcp.c.test"),
    ];
    assert_eq!(
        order_naptr(records, false),
        vec![
            (Transport::Tls, "_sips._tcp.c.test".to_owned()),
            (Transport::Tcp, "_sip._tcp.c.test".to_owned()),
            (Transport::Udp, "_sip._udp.c.test".to_owned()),
        ]
    );
}

#[test]
fn naptr_keeps_only_sip_services_with_flag_s() {
    let records = vec![
        naptr(10, 10, "u", "E2U+sip", "!^.*$!sip:info@c.test!"),
        naptr(10, 20, "s", "SIP+D2S", "_sip._sctp.c.test"),
        naptr(10, 30, "a", "SIP+D2U", "c.test"),
        naptr(10, 40, "S", "sip+d2u", "_sip._udp.c.test"),
        naptr(10, 50, "s", "SIPS+D2U", "_sips._udp.c.test"),
        naptr(10, 60, "s", "Sips+D2t", "_sips._tcp.c.test"),
        naptr(10, 70, "s", "SIP+D2T", "."),
        naptr(10, 80, "s", "SIP+D2W", "_sip._ws.c.test"),
    ];
    assert_eq!(
        order_naptr(records, false),
        vec![
            (Transport::Udp, "_sip._udp.c.test".to_owned()),
            (Transport::Tls, "_sips._tcp.c.test".to_owned()),
        ]
    );
}

#[test]
fn naptr_for_sips_keeps_only_tls() {
    let records = vec![
        naptr(10, 10, "s", "SIP+D2U", "_sip._udp.c.test"),
        naptr(20, 10, "s", "SIP+D2T", "_sip._tcp.c.test"),
        naptr(30, 10, "s", "SIPS+D2T", "_sips._tcp.c.test"),
    ];
    assert_eq!(
        order_naptr(records, true),
        vec![(Transport::Tls, "_sips._tcp.c.test".to_owned())]
    );
    let none = vec![naptr(10, 10, "s", "SIP+D2U", "_sip._udp.c.test")];
    assert_eq!(order_naptr(none, true), vec![]);
}

#[test]
fn srv_names_per_transport() {
    assert_eq!(srv_name(Transport::Udp, "c.test"), "_sip._udp.c.test");
    assert_eq!(srv_name(Transport::Tcp, "c.test"), "_sip._tcp.c.test");
    assert_eq!(srv_name(Transport::Tls, "c.test"), "_sips._tcp.c.test");
}

/// IP addresses need no DNS: the nameserver given (the discard port) is never asked.
#[tokio::test]
async fn ip_literals_resolve_without_dns() {
    let resolver = SipResolver::new(&["127.0.0.1:9".parse().unwrap()]).unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let cases = [
        ("sip:192.0.2.1", "192.0.2.1:5060", Transport::Udp),
        ("sips:192.0.2.1", "192.0.2.1:5061", Transport::Tls),
        (
            "sip:192.0.2.1;transport=tls",
            "192.0.2.1:5061",
            Transport::Tls,
        ),
        (
            "sip:192.0.2.1;transport=tcp",
            "192.0.2.1:5060",
            Transport::Tcp,
        ),
        (
            "sip:[2001:db8::1]:5070;transport=tcp",
            "[2001:db8::1]:5070",
            Transport::Tcp,
        ),
    ];
    for (text, addr, transport) in cases {
        let found = resolver
            .resolve(
                &SipTarget::parse(text).unwrap(),
                Duration::from_secs(1),
                &mut rng,
            )
            .await
            .unwrap();
        let tls_name = SipTarget::parse(text).unwrap().host;
        assert_eq!(
            found,
            vec![Resolved {
                addr: addr.parse().unwrap(),
                transport,
                tls_name,
            }],
            "{text}"
        );
    }
}

/// `[sip] dns_servers`: the nameservers this module is built with; an address without a port or
/// with 0.0.0.0 is refused at load.
#[test]
fn dns_servers_config_key() {
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let with = |servers: &str| {
        crate::config::EMBEDDED_DEFAULT.replace(
            "user_agent = \"trunkgate\"",
            &format!("user_agent = \"trunkgate\"\ndns_servers = {servers}"),
        )
    };
    let default =
        crate::config::parse(crate::config::EMBEDDED_DEFAULT, "t.toml".as_ref(), base).unwrap();
    assert!(default.sip.dns_servers.is_empty());
    let config = crate::config::parse(
        &with("[\"127.0.0.1:5353\", \"[::1]:53\"]"),
        "t.toml".as_ref(),
        base,
    )
    .unwrap();
    assert_eq!(
        config.sip.dns_servers,
        [
            "127.0.0.1:5353".parse::<SocketAddr>().unwrap(),
            "[::1]:53".parse().unwrap()
        ]
    );
    for bad in ["[\"0.0.0.0:53\"]", "[\"127.0.0.1:0\"]"] {
        let errors = crate::config::parse(&with(bad), "t.toml".as_ref(), base)
            .unwrap_err()
            .0;
        assert!(
            errors
                .iter()
                .any(|e| e.key == "sip.dns_servers" && e.message.contains("nameserver")),
            "{bad}: {errors:?}"
        );
    }
    let errors = crate::config::parse(&with("[\"127.0.0.1\"]"), "t.toml".as_ref(), base)
        .unwrap_err()
        .0;
    assert!(
        errors.iter().any(|e| e.key.starts_with("sip.dns_servers")),
        "{errors:?}"
    );
}
