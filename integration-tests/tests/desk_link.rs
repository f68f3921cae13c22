//! The browser desk's connection, before any browser: a WebTransport session (HTTP/3, ALPN
//! `h3`) on the agent endpoint's own UDP port, trusted by the hash of the short-lived
//! certificate the gateway logs, speaks the agent protocol unchanged: login, state, an offered
//! call accepted, the caller's audio in datagrams (RoQ-framed RTP), audio back, hang-up.
use std::time::{Duration, Instant};

use trunkgate::agent::protocol::from_agent::{Accept, Hangup, Login, SetState};
use trunkgate::agent::protocol::{
    encode, AgentId, AgentMessage, Credential, FrameDecoder, GatewayMessage, RequestedState,
};
use trunkgate::media::rtp_quic;
use trunkgate_integration::{line_field, line_word, Baresip, Gateway, TestConfig, DEMO_CREDENTIAL};
use web_transport_quinn::{ClientBuilder, RecvStream, SendStream, Session};

/// The hash the gateway logged for its desk certificate (`AB:CD:…`), as bytes.
fn desk_hash(gw: &Gateway) -> Vec<u8> {
    let line = gw.expect_line("agent desk: WebTransport", Duration::from_secs(5));
    let hex = line_word(&line, "sha256").expect("the line gives the certificate's sha256");
    hex.split(':')
        .map(|b| u8::from_str_radix(b, 16).expect("hex"))
        .collect()
}

async fn connect(gw: &Gateway, path: &str) -> Result<Session, String> {
    let client = ClientBuilder::new()
        .with_server_certificate_hashes(vec![desk_hash(gw)])
        .map_err(|e| e.to_string())?;
    let url = url::Url::parse(&format!("https://{}{path}", gw.quic())).unwrap();
    client.connect(url).await.map_err(|e| e.to_string())
}

struct Control {
    send: SendStream,
    recv: RecvStream,
    decoder: FrameDecoder<GatewayMessage>,
}

impl Control {
    async fn say(&mut self, msg: AgentMessage) {
        let mut out = Vec::new();
        encode(&msg, &mut out).unwrap();
        self.send.write_all(&out).await.unwrap();
    }

    /// The next message the gateway sends for which `want` gives something (bounded).
    async fn until<T>(&mut self, mut want: impl FnMut(&GatewayMessage) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut buf = vec![0u8; 8192];
        loop {
            while let Some(msg) = self.decoder.pop() {
                if let Some(found) = want(&msg.unwrap()) {
                    return found;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let n = tokio::time::timeout(left, self.recv.read(&mut buf))
                .await
                .expect("the gateway said what was expected in time")
                .unwrap()
                .expect("the control stream stays open");
            self.decoder.push(&buf[..n]);
        }
    }
}

#[test]
fn a_webtransport_agent_on_the_agent_port_logs_in_and_takes_a_call_with_its_audio() {
    let gw = Gateway::start(
        &TestConfig {
            route: "queue:support".into(),
            ..TestConfig::default()
        }
        .to_toml(),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // Another path on the same endpoint is refused.
        assert!(connect(&gw, "/elsewhere").await.is_err());

        let session = connect(&gw, "/agent")
            .await
            .expect("a WebTransport session");
        let (send, recv) = session.open_bi().await.unwrap();
        let mut control = Control {
            send,
            recv,
            decoder: FrameDecoder::new(),
        };
        control
            .say(AgentMessage::Login(Login {
                agent: AgentId::new("demo"),
                credential: Credential::new(DEMO_CREDENTIAL),
                skills: Vec::new(),
                client: "desk-test".into(),
                resume: None,
            }))
            .await;
        control
            .until(|m| matches!(m, GatewayMessage::Welcome(_)).then_some(()))
            .await;
        control
            .say(AgentMessage::SetState(SetState {
                state: RequestedState::Available,
                reason: None,
            }))
            .await;

        let target = gw.sip_udp();
        let caller = std::thread::spawn(move || {
            Baresip::new("caller")
                .dial(format!("sip:100@{target}"))
                .duration(Duration::from_secs(5))
                .run()
        });
        let call = control
            .until(|m| match m {
                GatewayMessage::Offer(offer) => Some(offer.call.clone()),
                _ => None,
            })
            .await;
        control
            .say(AgentMessage::Accept(Accept { call: call.clone() }))
            .await;
        let flow = control
            .until(|m| match m {
                GatewayMessage::Answered(a) => rtp_quic::FlowId::new(a.flow.0),
                _ => None,
            })
            .await;

        // The caller's audio arrives in datagrams on the call's flow; each goes back as the
        // agent's audio.
        let mut received = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        while received < 100 && Instant::now() < deadline {
            let datagram = tokio::time::timeout(Duration::from_secs(5), session.read_datagram())
                .await
                .expect("audio keeps coming")
                .unwrap();
            let (got, rtp) = rtp_quic::parse(&datagram).expect("RoQ-framed RTP");
            if got != flow {
                continue;
            }
            received += 1;
            let mut back = Vec::new();
            rtp_quic::frame(flow, rtp, &mut back);
            session.send_datagram(back.into()).unwrap();
        }
        assert_eq!(received, 100, "two seconds of the caller's audio");
        control.say(AgentMessage::Hangup(Hangup { call })).await;
        control
            .until(|m| matches!(m, GatewayMessage::CallEnded(_)).then_some(()))
            .await;
        let caller = caller.join().unwrap();
        assert!(caller.call_established(), "{}", caller.log);
        session.close(0, b"logged out");
    });
    gw.expect_line("agent logged out", Duration::from_secs(5));
    // The agent's audio reached the call.
    let ended = gw.expect_line("call ended reason=", Duration::from_secs(5));
    let packets = line_field(&ended, "agent_packets").unwrap_or(0.0);
    assert!(packets >= 50.0, "{ended}");
}
