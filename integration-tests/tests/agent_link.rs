//! The agent link against the real daemon, with raw QUIC clients built from the library: what a
//! misbehaving or unauthorised agent gets, and that nobody else notices.
use std::time::Duration;

use trunkgate::agent::identity::ServerTrust;
use trunkgate::agent::link;
use trunkgate::agent::protocol::{
    self, from_agent::Login, AgentId, AgentMessage, Credential, FrameDecoder, GatewayMessage,
    RefusalReason,
};
use trunkgate_integration::{config_for_tests, Gateway, Sipp, DEMO_CREDENTIAL};

async fn connect(gw: &Gateway) -> quinn::Connection {
    let pin = gw.fingerprint().parse().unwrap();
    let ep =
        link::client_endpoint(&ServerTrust::Pinned(pin), "127.0.0.1:0".parse().unwrap()).unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        ep.connect(gw.quic(), "trunkgate").unwrap(),
    )
    .await
    .expect("handshake in time")
    .expect("handshake")
}

/// Sends a login and returns the gateway's first answer.
async fn login(gw: &Gateway, agent: &str, credential: &str) -> GatewayMessage {
    let conn = connect(gw).await;
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let msg = AgentMessage::Login(Login {
        agent: AgentId::new(agent),
        credential: Credential::new(credential),
        skills: vec![],
        client: "test/1".into(),
        resume: None,
    });
    let mut out = Vec::new();
    protocol::encode(&msg, &mut out).unwrap();
    send.write_all(&out).await.unwrap();
    let mut decoder = FrameDecoder::<GatewayMessage>::new();
    let mut buf = vec![0u8; 4096];
    loop {
        if let Some(m) = decoder.pop() {
            return m.expect("a valid gateway message");
        }
        let n = tokio::time::timeout(Duration::from_secs(5), recv.read(&mut buf))
            .await
            .expect("an answer in time")
            .unwrap()
            .expect("an answer before the stream ends");
        decoder.push(&buf[..n]);
    }
}

fn refusal(msg: GatewayMessage) -> RefusalReason {
    match msg {
        GatewayMessage::LoginRefused(r) => r.reason,
        other => panic!("expected login_refused, got {other:?}"),
    }
}

fn still_serves_sip(gw: &Gateway) {
    Sipp::builtin("uac")
        .target(gw.sip_udp())
        .calls(3)
        .rate(3)
        .timeout(Duration::from_secs(20))
        .run()
        .assert_success();
}

#[tokio::test(flavor = "current_thread")]
async fn the_right_credential_logs_in_and_wrong_ones_are_refused_with_a_reason() {
    let gw = Gateway::start(&config_for_tests(""));
    match login(&gw, "demo", DEMO_CREDENTIAL).await {
        GatewayMessage::Welcome(w) => assert_eq!(w.resume_grace_ms, 15_000),
        other => panic!("expected welcome, got {other:?}"),
    }
    assert_eq!(
        refusal(login(&gw, "demo", "guess").await),
        RefusalReason::BadCredential
    );
    assert_eq!(
        refusal(login(&gw, "mallory", DEMO_CREDENTIAL).await),
        RefusalReason::UnknownAgent
    );
    gw.expect_line("agent login refused", Duration::from_secs(2));
    tokio::task::spawn_blocking(move || still_serves_sip(&gw))
        .await
        .unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn an_agent_guessed_at_from_one_address_is_refused_unchecked_for_a_while() {
    let gw = Gateway::start(&config_for_tests(""));
    for _ in 0..trunkgate::agent::login::MAX_FAILURES_PER_AGENT {
        assert_eq!(
            refusal(login(&gw, "demo", "guess").await),
            RefusalReason::BadCredential
        );
    }
    // Even the right credential is not checked now: that is what makes guessing slow.
    assert_eq!(
        refusal(login(&gw, "demo", DEMO_CREDENTIAL).await),
        RefusalReason::TooManyAttempts
    );
    // Other agents behind the same address are not held up.
    assert_eq!(
        refusal(login(&gw, "mallory", DEMO_CREDENTIAL).await),
        RefusalReason::UnknownAgent
    );
    gw.expect_line("reason=TooManyAttempts", Duration::from_secs(2));
}

#[tokio::test(flavor = "current_thread")]
async fn a_revoked_agent_is_refused() {
    let config = config_for_tests("").replace(
        "skills = [\"support\"]\n\n[queues",
        "skills = [\"support\"]\nrevoked = true\n\n[queues",
    );
    let gw = Gateway::start(&config);
    assert_eq!(
        refusal(login(&gw, "demo", DEMO_CREDENTIAL).await),
        RefusalReason::Revoked
    );
}

#[tokio::test(flavor = "current_thread")]
async fn garbage_on_the_control_stream_closes_only_that_connection() {
    let gw = Gateway::start(&config_for_tests(""));
    let conn = connect(&gw).await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    // A length prefix far beyond the 64 KiB limit, then junk.
    send.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3])
        .await
        .unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(5), conn.closed())
        .await
        .expect("the gateway closes a connection that breaks framing");
    assert!(
        matches!(reason, quinn::ConnectionError::ApplicationClosed(ref c) if c.error_code == protocol::close_code::PROTOCOL_ERROR.into()),
        "{reason:?}"
    );
    // Datagrams for flows nobody owns, of every size the link allows, are ignored.
    let other = connect(&gw).await;
    let max = other.max_datagram_size().expect("datagrams enabled");
    for size in [1, 2, 50, max] {
        let _ = other.send_datagram(vec![0x3f; size].into());
    }
    assert!(
        other.send_datagram(vec![0; max + 1].into()).is_err(),
        "oversized datagrams never leave"
    );
    // And a proper agent still logs in.
    assert!(matches!(
        login(&gw, "demo", DEMO_CREDENTIAL).await,
        GatewayMessage::Welcome(_)
    ));
    tokio::task::spawn_blocking(move || still_serves_sip(&gw))
        .await
        .unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn a_connection_that_never_logs_in_is_closed() {
    let gw = Gateway::start(&config_for_tests(""));
    let conn = connect(&gw).await;
    let _stream = conn.open_bi().await.unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(15), conn.closed()).await;
    assert!(reason.is_ok(), "closed after the 10 s login timeout");
}
