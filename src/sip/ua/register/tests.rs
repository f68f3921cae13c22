use std::time::{Duration, Instant};

use super::*;

fn spec() -> RegistrationSpec {
    RegistrationSpec {
        trunk: "carrier".into(),
        registrar: RegistrarUri::parse("sip:carrier.example").unwrap(),
        target: "192.0.2.1:5060".parse().unwrap(),
        aor: "sip:branch1@carrier.example".into(),
        username: "branch1".into(),
        password: "secret".into(),
        local: "198.51.100.7:5060".parse().unwrap(),
        expires: Duration::from_secs(600),
        keepalive: Duration::from_secs(30),
    }
}

fn response(code: u16, headers: &[(&str, &str)]) -> rsip::Response {
    let mut text = format!(
        "SIP/2.0 {code} Whatever\r\nVia: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKx\r\n\
         From: <sip:branch1@carrier.example>;tag=a\r\nTo: <sip:branch1@carrier.example>;tag=b\r\n\
         Call-ID: c\r\nCSeq: 1 REGISTER\r\n"
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    rsip::Response::try_from(text.as_str()).unwrap()
}

fn text(request: &rsip::Request) -> String {
    request.to_string()
}

const CHALLENGE: &str = "Digest realm=\"carrier.example\", nonce=\"n1\", qop=\"auth\"";

#[test]
fn registrar_uris_name_host_port_and_transport() {
    let uri = RegistrarUri::parse("sip:carrier.example").unwrap();
    assert_eq!((uri.port, uri.transport), (5060, Transport::Udp));
    let uri = RegistrarUri::parse("sip:10.0.0.1:5080;transport=tcp").unwrap();
    assert_eq!(
        (uri.host.as_str(), uri.port, uri.transport),
        ("10.0.0.1", 5080, Transport::Tcp)
    );
    let uri = RegistrarUri::parse("sips:carrier.example").unwrap();
    assert_eq!((uri.port, uri.transport), (5061, Transport::Tls));
    assert_eq!(uri.request_uri(), "sip:carrier.example:5061;transport=tls");
    let uri = RegistrarUri::parse("sip:[2001:db8::1]:5070").unwrap();
    assert_eq!((uri.host.as_str(), uri.port), ("2001:db8::1", 5070));
    for bad in [
        "carrier.example",
        "sip:user@carrier.example",
        "sip:host:port",
        "sip:a;transport=sctp",
        "sip:",
    ] {
        assert!(RegistrarUri::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_challenge_is_answered_and_the_grant_refreshed_halfway() {
    let start = Instant::now();
    let mut r = Registration::new(start, spec(), "call@trunkgate".into(), "tag".into());
    assert_eq!(r.due(), Some(start));
    let first = r.build("trunkgate-test", "z9hG4bK1", "cn");
    let shown = text(&first);
    assert!(
        shown.starts_with("REGISTER sip:carrier.example:5060 SIP/2.0\r\n"),
        "{shown}"
    );
    assert!(
        shown.contains("Contact: <sip:branch1@198.51.100.7:5060>;expires=600"),
        "{shown}"
    );
    assert!(!shown.contains("Authorization"), "{shown}");
    assert_eq!(r.due(), None, "in flight");
    let next = r.on_response(start, &response(401, &[("WWW-Authenticate", CHALLENGE)]));
    assert_eq!(next, Next::SendNow);
    let second = text(&r.build("trunkgate-test", "z9hG4bK2", "cn"));
    assert!(second.contains("CSeq: 2 REGISTER"), "{second}");
    assert!(second.contains("Call-ID: call@trunkgate"), "{second}");
    let expected = Challenge::parse(CHALLENGE).unwrap().answer(
        "branch1",
        "secret",
        "REGISTER",
        "sip:carrier.example:5060",
        1,
        "cn",
    );
    assert!(
        second.contains(&format!("Authorization: {expected}")),
        "{second}"
    );
    let ok = response(
        200,
        &[("Contact", "<sip:branch1@198.51.100.7:5060>;expires=120")],
    );
    assert_eq!(r.on_response(start, &ok), Next::Wait);
    assert!(r.state().is_registered());
    assert_eq!(r.due(), Some(start + Duration::from_secs(60)));
    // The refresh answers the same nonce with the next count.
    let refresh = text(&r.build("trunkgate-test", "z9hG4bK3", "cn2"));
    assert!(refresh.contains("nc=00000002"), "{refresh}");
}

#[test]
fn refused_credentials_fail_and_back_off_doubling() {
    let start = Instant::now();
    let mut r = Registration::new(start, spec(), "c".into(), "t".into());
    let challenge = response(401, &[("WWW-Authenticate", CHALLENGE)]);
    r.build("ua", "b1", "x");
    assert_eq!(r.on_response(start, &challenge), Next::SendNow);
    r.build("ua", "b2", "x");
    assert_eq!(
        r.on_response(start, &challenge),
        Next::SendNow,
        "one more nonce may be fair"
    );
    r.build("ua", "b3", "x");
    assert_eq!(r.on_response(start, &challenge), Next::Wait);
    match r.state() {
        RegistrationState::Failed { reason, retry_at } => {
            assert!(reason.contains("credentials refused"), "{reason}");
            assert_eq!(*retry_at, start + Duration::from_secs(5));
        }
        other => panic!("{other:?}"),
    }
    let later = start + Duration::from_secs(5);
    r.build("ua", "b4", "x");
    r.on_no_answer(later);
    assert_eq!(r.due(), Some(later + Duration::from_secs(10)));
    let much_later = later + Duration::from_secs(3600);
    for _ in 0..10 {
        r.build("ua", "b", "x");
        r.on_response(much_later, &response(503, &[]));
    }
    assert_eq!(
        r.due(),
        Some(much_later + Duration::from_secs(300)),
        "capped"
    );
}

#[test]
fn interval_too_brief_asks_again_with_the_registrars_minimum() {
    let start = Instant::now();
    let mut r = Registration::new(start, spec(), "c".into(), "t".into());
    r.build("ua", "b1", "x");
    let next = r.on_response(start, &response(423, &[("Min-Expires", "3600")]));
    assert_eq!(next, Next::SendNow);
    let again = text(&r.build("ua", "b2", "x"));
    assert!(again.contains("Expires: 3600"), "{again}");
}

#[test]
fn the_password_never_shows() {
    let shown = format!("{:?}", spec());
    assert!(!shown.contains("secret"), "{shown}");
}

#[test]
fn a_lost_connection_fails_the_register_on_it_or_registers_again_a_second_later() {
    use rand::SeedableRng;
    let start = Instant::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut tx = TransactionLayer::new(
        crate::sip::transaction::TimerConfig::default(),
        rand::rngs::StdRng::seed_from_u64(8),
    );
    let spec = RegistrationSpec {
        registrar: RegistrarUri::parse("sip:carrier.example;transport=tcp").unwrap(),
        ..spec()
    };
    let peer = Peer::new(Transport::Tcp, spec.target);
    let mut all = Registrations::default();
    all.set(start, vec![spec], &mut rng);
    all.handle_timeout(start, &mut tx, "ua", &mut rng);
    assert!(tx.poll_transmit().is_some(), "the REGISTER went out");
    all.flow_lost(start, peer);
    let r = all.iter().next().unwrap();
    assert!(
        matches!(r.state(), RegistrationState::Failed { reason, .. } if reason.contains("connection")),
        "{:?}",
        r.state()
    );
    assert_eq!(r.due(), Some(start + Duration::from_secs(5)));
    // Registered later; then the connection drops while idle: register again in a second.
    let later = start + Duration::from_secs(5);
    all.handle_timeout(later, &mut tx, "ua", &mut rng);
    let key = all.in_flight.keys().next().cloned().expect("in flight");
    let ok = response(200, &[("Expires", "3600")]);
    assert!(all.on_transaction_end(later, &key, Some(&ok)));
    assert!(all.iter().next().unwrap().state().is_registered());
    let dropped = later + Duration::from_secs(60);
    all.flow_lost(dropped, peer);
    assert_eq!(
        all.iter().next().unwrap().due(),
        Some(dropped + Duration::from_secs(1))
    );
    // Another connection (the registrar's own, to our listener) is not ours to mind.
    all.flow_lost(
        dropped,
        Peer::new(Transport::Tcp, "192.0.2.1:40000".parse().unwrap()),
    );
}

#[test]
fn keepalives_go_while_registered_and_an_answer_after_silence_registers_anew() {
    use rand::SeedableRng;
    let start = Instant::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut tx = TransactionLayer::new(
        crate::sip::transaction::TimerConfig::default(),
        rand::rngs::StdRng::seed_from_u64(8),
    );
    let mut all = Registrations::default();
    all.set(start, vec![spec()], &mut rng);
    all.handle_timeout(start, &mut tx, "ua", &mut rng);
    let register = all.in_flight.keys().next().cloned().expect("in flight");
    let ok = response(200, &[("Expires", "600")]);
    all.on_transaction_end(start, &register, Some(&ok));
    let first_ping = start + Duration::from_secs(30);
    assert_eq!(
        all.poll_timeout(),
        Some(first_ping),
        "a keep-alive before the refresh"
    );
    while tx.poll_transmit().is_some() {}
    assert!(all
        .handle_timeout(first_ping, &mut tx, "ua", &mut rng)
        .is_empty());
    let options = tx.poll_transmit().expect("an OPTIONS went out");
    let text = String::from_utf8_lossy(&options.payload).into_owned();
    assert!(
        text.starts_with("OPTIONS sip:carrier.example:5060 SIP/2.0"),
        "{text}"
    );
    // No answer, then an answer: the registrar may have restarted, so register again.
    let ping = all.pings.keys().next().cloned().expect("a ping in flight");
    assert!(all.on_transaction_end(first_ping, &ping, None));
    let second_ping = first_ping + Duration::from_secs(30);
    all.handle_timeout(second_ping, &mut tx, "ua", &mut rng);
    let ping = all.pings.keys().next().cloned().expect("a ping in flight");
    assert!(all.on_transaction_end(second_ping, &ping, Some(&response(200, &[]))));
    assert_eq!(
        all.iter().next().unwrap().due(),
        Some(second_ping + Duration::from_secs(1))
    );

    // Over TCP the keep-alive is a double CRLF on the connection.
    let mut tcp = Registrations::default();
    let spec = RegistrationSpec {
        registrar: RegistrarUri::parse("sip:carrier.example;transport=tcp").unwrap(),
        ..spec()
    };
    tcp.set(start, vec![spec.clone()], &mut rng);
    tcp.handle_timeout(start, &mut tx, "ua", &mut rng);
    let register = tcp.in_flight.keys().next().cloned().expect("in flight");
    tcp.on_transaction_end(start, &register, Some(&ok));
    let pinged = tcp.handle_timeout(first_ping, &mut tx, "ua", &mut rng);
    assert_eq!(pinged, vec![Peer::new(Transport::Tcp, spec.target)]);
}
