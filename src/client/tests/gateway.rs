//! The whole client against a stand-in gateway on loopback: a real QUIC endpoint with the
//! gateway's transport settings and a self-signed identity, scripted message by message, with
//! real Opus media both ways. What is checked is what a person running `trunkgate-agent` would
//! see: the lines it prints, the exit code, the WAV it records, and the audio that reaches the
//! gateway.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};

use super::media::{tone, tone_share};
use crate::agent::identity::{self, Fingerprint, ServerTrust};
use crate::agent::link;
use crate::agent::protocol::{
    self, close_code,
    from_agent::Login,
    from_gateway::{Answered, CallEnded, LoginRefused, Offer, Resumed, ResumedCall, Welcome},
    AgentId, AgentMessage, AgentState, CallId, Credential, EndReason, ErrorCode, FlowId,
    FrameDecoder, GatewayMessage, MediaParams, RefusalReason, ResumeToken, SessionId,
};
use crate::client::args::{AgentSpec, AudioSource, Behaviour, Options};
use crate::client::core::{Command, StopReason};
use crate::client::events::MediaCounters;
use crate::client::media::CallMedia;
use crate::client::{run, EventSink};
use crate::media::rtp_quic;

const STEP: Duration = Duration::from_secs(5);

struct StandIn {
    endpoint: quinn::Endpoint,
    address: SocketAddr,
    fingerprint: Fingerprint,
    _dir: tempfile::TempDir,
}

impl StandIn {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let identity = identity::load_or_create(None, dir.path()).unwrap();
        let endpoint =
            link::server_endpoint(&identity, None, "127.0.0.1:0".parse().unwrap()).unwrap();
        Self {
            address: endpoint.local_addr().unwrap(),
            fingerprint: identity.fingerprint,
            endpoint,
            _dir: dir,
        }
    }

    async fn accept(&self) -> Peer {
        let incoming = timeout(STEP, self.endpoint.accept())
            .await
            .expect("no connection from the agent")
            .expect("endpoint closed");
        let connection = incoming.await.expect("handshake failed");
        let (send, recv) = timeout(STEP, connection.accept_bi())
            .await
            .expect("no control stream")
            .expect("control stream failed");
        Peer {
            connection,
            send,
            recv,
            decoder: FrameDecoder::new(),
        }
    }
}

struct Peer {
    connection: quinn::Connection,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    decoder: FrameDecoder<AgentMessage>,
}

impl Peer {
    /// The agent's next message; `None` when it finished the stream (logged out).
    async fn next(&mut self) -> Option<AgentMessage> {
        let mut buffer = [0u8; 4096];
        loop {
            if let Some(decoded) = self.decoder.pop() {
                return Some(decoded.expect("the agent sent an undecodable message"));
            }
            let read = timeout(STEP, self.recv.read(&mut buffer))
                .await
                .expect("the agent sent nothing")
                .expect("control stream broke")?;
            self.decoder.push(&buffer[..read]);
        }
    }

    async fn expect(&mut self) -> AgentMessage {
        self.next().await.expect("the agent logged out")
    }

    async fn send(&mut self, message: GatewayMessage) {
        let mut frame = Vec::new();
        protocol::encode(&message, &mut frame).unwrap();
        self.send.write_all(&frame).await.unwrap();
    }

    async fn login(&mut self) -> Login {
        match self.expect().await {
            AgentMessage::Login(login) => login,
            other => panic!("expected login, got {other:?}"),
        }
    }

    /// Login, welcome, and the agent's `set_state available`.
    async fn welcome(&mut self, session: &str, token: &str) -> Login {
        let login = self.login().await;
        self.send(welcome(session, token)).await;
        assert!(
            matches!(self.expect().await, AgentMessage::SetState(_)),
            "a welcomed agent makes itself available"
        );
        login
    }

    /// Offers a call and answers it once the agent accepts.
    async fn call(&mut self, call: &str, flow: u64) {
        self.send(GatewayMessage::Offer(Offer {
            call: CallId::new(call),
            caller: "Bob <+4930123456>".into(),
            queue: "sales".into(),
            ring_timeout_ms: 20_000,
            flow: FlowId(flow),
            waited_ms: None,
        }))
        .await;
        match self.expect().await {
            AgentMessage::Accept(accept) => assert_eq!(accept.call.as_str(), call),
            other => panic!("expected accept, got {other:?}"),
        }
        self.send(GatewayMessage::Answered(Answered {
            call: CallId::new(call),
            flow: FlowId(flow),
        }))
        .await;
    }

    async fn end_call(&mut self, call: &str, reason: EndReason) {
        self.send(GatewayMessage::CallEnded(CallEnded {
            call: CallId::new(call),
            reason,
        }))
        .await;
    }

    /// The agent finishes its stream; the gateway closes with `done` as docs/agent-protocol.md
    /// says.
    async fn expect_logout(&mut self) {
        loop {
            match self.next().await {
                None => break,
                Some(AgentMessage::SetState(_) | AgentMessage::Stats(_)) => {}
                Some(other) => panic!("expected a logout, got {other:?}"),
            }
        }
        self.connection
            .close(close_code::DONE.into(), b"logged out");
    }
}

fn welcome(session: &str, token: &str) -> GatewayMessage {
    GatewayMessage::Welcome(Welcome {
        session: SessionId::new(session),
        resume_token: ResumeToken::new(token),
        resume_grace_ms: 5_000,
        state: AgentState::Away,
        media: MediaParams::default(),
        gateway: "stand-in/1".into(),
        supervises: Vec::new(),
    })
}

/// The gateway's side of a call's media: plays `source`, keeps what it hears.
struct GatewayMedia {
    stop: oneshot::Sender<()>,
    done: JoinHandle<Heard>,
    /// Datagrams received so far, so tests wait for media instead of sleeping.
    received: watch::Receiver<u64>,
}

struct Heard {
    audio: Vec<i16>,
    counters: MediaCounters,
    /// The flow of every datagram that arrived, with when.
    flows: Vec<(Instant, u64)>,
}

impl GatewayMedia {
    fn start(connection: quinn::Connection, flow: u64, source: AudioSource) -> Self {
        let (stop, mut stopped) = oneshot::channel();
        let (count, received) = watch::channel(0u64);
        let done = tokio::spawn(async move {
            let mut media = CallMedia::new(
                CallId::new("gw"),
                FlowId(flow),
                &MediaParams::default(),
                source,
                &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(flow),
            )
            .unwrap();
            let mut ticker = tokio::time::interval(Duration::from_millis(20));
            let mut heard = Heard {
                audio: Vec::new(),
                counters: MediaCounters::default(),
                flows: Vec::new(),
            };
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = ticker.tick() => {
                        let tick = media.tick(Instant::now().into_std()).unwrap();
                        heard.audio.extend_from_slice(tick.played);
                        if let Some(datagram) = tick.datagram {
                            if connection.send_datagram(Bytes::copy_from_slice(datagram)).is_ok() {
                                media.count_sent();
                            }
                        }
                    }
                    datagram = connection.read_datagram() => {
                        let Ok(datagram) = datagram else { break };
                        if let Ok((flow, _)) = rtp_quic::parse(&datagram) {
                            heard.flows.push((Instant::now(), flow.get()));
                        }
                        media.receive(Instant::now().into_std(), &datagram);
                        count.send_modify(|c| *c += 1);
                    }
                }
            }
            heard.counters = media.counters();
            heard
        });
        Self {
            stop,
            done,
            received,
        }
    }

    /// Waits (bounded) until `n` media datagrams have arrived from the agent.
    async fn wait_received(&self, n: u64) {
        let mut received = self.received.clone();
        timeout(Duration::from_secs(20), received.wait_for(|c| *c >= n))
            .await
            .expect("the agent's media arrives")
            .expect("the media task is running");
    }

    async fn stop(self) -> Heard {
        let _ = self.stop.send(());
        self.done.await.unwrap()
    }
}

/// The agent's output lines, as a harness reads them.
struct Lines {
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Lines {
    /// The next line containing every one of `parts`.
    async fn wait_for(&mut self, parts: &[&str]) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let line = match timeout(deadline - Instant::now(), self.lines.recv()).await {
                Ok(Some(line)) => line,
                _ => panic!("no line with {parts:?}; seen:\n{}", self.seen.join("\n")),
            };
            self.seen.push(line.clone());
            if parts.iter().all(|part| line.contains(part)) {
                return line;
            }
        }
    }

    /// Every line until the channel closes (the run ended).
    async fn rest(&mut self) -> Vec<String> {
        while let Ok(Some(line)) = timeout(STEP, self.lines.recv()).await {
            self.seen.push(line);
        }
        self.seen.clone()
    }
}

fn options(
    stand_in: &StandIn,
    agents: Vec<AgentSpec>,
    behaviour: Behaviour,
    audio: AudioSource,
) -> Options {
    Options {
        gateway: stand_in.address.to_string(),
        server_name: "trunkgate".into(),
        trust: ServerTrust::Pinned(stand_in.fingerprint),
        credential: Credential::new("s3cret"),
        skills: vec![],
        agents,
        behaviour,
        audio,
        duration: None,
    }
}

fn alice(record: Option<&Path>) -> Vec<AgentSpec> {
    vec![AgentSpec {
        id: AgentId::new("alice"),
        record: record.map(Path::to_path_buf),
    }]
}

fn auto_answer(calls: u32) -> Behaviour {
    Behaviour {
        auto_answer: Some(Duration::ZERO),
        calls: Some(calls),
        ..Behaviour::default()
    }
}

/// Starts the client; the returned sender stops it as a signal would.
fn start_agent(
    options: Options,
) -> (
    JoinHandle<i32>,
    Lines,
    broadcast::Sender<Command>,
    oneshot::Sender<()>,
) {
    let (line_tx, line_rx) = mpsc::unbounded_channel();
    let (commands, _) = broadcast::channel(16);
    let (signal_tx, signal_rx) = oneshot::channel::<()>();
    let stop = async move {
        // A dropped sender is not a signal.
        if signal_rx.await.is_err() {
            std::future::pending::<()>().await;
        }
        StopReason::Signal
    };
    let handle = tokio::spawn(run(
        options,
        EventSink::Channel(line_tx),
        commands.clone(),
        stop,
    ));
    (
        handle,
        Lines {
            lines: line_rx,
            seen: Vec::new(),
        },
        commands,
        signal_tx,
    )
}

fn read_wav(path: &Path) -> Vec<i16> {
    let mut reader = hound::WavReader::open(path).expect("a valid wav file");
    assert_eq!(reader.spec().sample_rate, 8000);
    reader.samples::<i16>().map(Result::unwrap).collect()
}

fn field(line: &str, key: &str) -> u64 {
    line.split(' ')
        .find_map(|pair| pair.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_in_takes_a_call_and_carries_audio_both_ways() {
    let stand_in = StandIn::start();
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("alice.wav");
    let behaviour = Behaviour {
        auto_answer: Some(Duration::from_millis(150)),
        calls: Some(1),
        ..Behaviour::default()
    };
    let (agent, mut lines, _commands, _signal) = start_agent(options(
        &stand_in,
        alice(Some(&recording)),
        behaviour,
        AudioSource::Echo,
    ));

    let mut peer = stand_in.accept().await;
    let login = peer.welcome("s1", "t1").await;
    assert_eq!(login.agent.as_str(), "alice");
    assert_eq!(login.credential.expose(), "s3cret");
    assert!(
        login.client.starts_with("trunkgate-agent/"),
        "{}",
        login.client
    );
    assert_eq!(login.resume, None);
    lines
        .wait_for(&["agent=alice event=welcome session=s1 state=away resumed=false"])
        .await;

    let offered = Instant::now();
    peer.call("c7", 1).await;
    assert!(
        offered.elapsed() >= Duration::from_millis(150),
        "accepted after {:?}, before --answer-after-ms",
        offered.elapsed()
    );
    lines
        .wait_for(&["event=offer call=c7", "caller=\"Bob <+4930123456>\""])
        .await;
    lines.wait_for(&["event=answered call=c7 flow=1"]).await;

    let media = GatewayMedia::start(
        peer.connection.clone(),
        1,
        AudioSource::Play(tone(440.0, 3.0)),
    );
    media.wait_received(100).await;
    let heard = media.stop().await;
    peer.end_call("c7", EndReason::CallerHungUp).await;
    let ended = lines
        .wait_for(&["event=call_ended call=c7 reason=caller_hung_up"])
        .await;
    peer.expect_logout().await;
    assert_eq!(timeout(STEP, agent).await.unwrap().unwrap(), 0);
    let rest = lines.rest().await;

    // The agent heard the gateway's tone, and sent it back.
    assert!(field(&ended, "received") >= 80, "{ended}");
    assert!(field(&ended, "sent") >= 80, "{ended}");
    assert!(heard.counters.received >= 80, "{:?}", heard.counters);
    let echoed = tone_share(&heard.audio[heard.audio.len() - 50 * 160..], 440.0);
    assert!(
        echoed > 0.6,
        "440 Hz share of the echo at the gateway: {echoed}"
    );
    // And recorded it.
    let recorded = read_wav(&recording);
    assert!(
        recorded.len() >= 90 * 160,
        "{} samples recorded",
        recorded.len()
    );
    let share = tone_share(&recorded[recorded.len() / 3..], 440.0);
    assert!(share > 0.6, "440 Hz share of the recording: {share}");

    let summary = rest
        .iter()
        .find(|l| l.contains("event=summary"))
        .expect("a summary");
    assert!(
        summary.starts_with("agent=alice event=summary calls=1 sent="),
        "{summary}"
    );
    assert_eq!(
        rest.last().map(String::as_str),
        Some("agent=alice event=exit code=0 reason=calls_done")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_is_resumed_and_the_call_continues_on_the_new_flow() {
    let stand_in = StandIn::start();
    let (agent, mut lines, _commands, _signal) = start_agent(options(
        &stand_in,
        alice(None),
        auto_answer(1),
        AudioSource::Play(tone(300.0, 10.0)),
    ));
    let mut peer = stand_in.accept().await;
    peer.welcome("s1", "t1").await;
    peer.call("c7", 1).await;
    let media = GatewayMedia::start(peer.connection.clone(), 1, AudioSource::Silence);
    media.wait_received(25).await;
    media.stop().await;
    // Not a close code of the protocol: to the agent, the connection is simply gone.
    peer.connection
        .close(7u32.into(), b"simulated path failure");
    lines.wait_for(&["event=connection_lost"]).await;
    lines.wait_for(&["event=connecting", "resume=true"]).await;

    let mut peer = stand_in.accept().await;
    let login = peer.login().await;
    assert_eq!(
        login.resume.map(|t| t.expose().to_string()),
        Some("t1".into())
    );
    peer.send(welcome("s1", "t2")).await;
    peer.send(GatewayMessage::Resumed(Resumed {
        call: Some(ResumedCall {
            id: CallId::new("c7"),
            flow: FlowId(2),
            caller: "Bob".into(),
            queue: "sales".into(),
            held: false,
        }),
    }))
    .await;
    lines
        .wait_for(&["event=welcome session=s1", "resumed=true"])
        .await;
    lines.wait_for(&["event=resumed call=c7 flow=2"]).await;
    let media = GatewayMedia::start(
        peer.connection.clone(),
        2,
        AudioSource::Play(tone(440.0, 2.0)),
    );
    media.wait_received(50).await;
    let heard = media.stop().await;
    peer.end_call("c7", EndReason::CallerHungUp).await;
    peer.expect_logout().await;
    assert_eq!(timeout(STEP, agent).await.unwrap().unwrap(), 0);

    assert!(
        heard.flows.len() >= 30,
        "{} datagrams after the resume",
        heard.flows.len()
    );
    assert!(
        heard.flows.iter().all(|&(_, flow)| flow == 2),
        "the agent must send on the new flow only"
    );
    assert!(heard.counters.received >= 30, "{:?}", heard.counters);
    let share = tone_share(&heard.audio[heard.audio.len() / 2..], 300.0);
    assert!(
        share > 0.6,
        "the played file continued after the resume: {share}"
    );
    let rest = lines.rest().await;
    assert!(rest.iter().any(|l| l.contains("event=call_ended call=c7")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebinding_mid_call_migrates_the_connection_and_media_keeps_flowing() {
    let stand_in = StandIn::start();
    let behaviour = Behaviour {
        rebind_after: Some(Duration::from_millis(400)),
        hangup_after: Some(Duration::from_millis(1_400)),
        ..auto_answer(1)
    };
    let (agent, mut lines, _commands, _signal) = start_agent(options(
        &stand_in,
        alice(None),
        behaviour,
        AudioSource::Play(tone(440.0, 5.0)),
    ));
    let mut peer = stand_in.accept().await;
    peer.welcome("s1", "t1").await;
    let before = peer.connection.remote_address();
    peer.call("c7", 1).await;
    let media = GatewayMedia::start(peer.connection.clone(), 1, AudioSource::Silence);
    let rebound = lines.wait_for(&["event=rebound"]).await;
    let rebound_at = Instant::now();
    // The agent hangs up 1.4 s after the answer.
    loop {
        match peer.expect().await {
            AgentMessage::Hangup(hangup) => {
                assert_eq!(hangup.call.as_str(), "c7");
                break;
            }
            AgentMessage::Stats(_) => {}
            other => panic!("expected hangup, got {other:?}"),
        }
    }
    let heard = media.stop().await;
    let after = peer.connection.remote_address();
    peer.end_call("c7", EndReason::AgentHungUp).await;
    peer.expect_logout().await;
    assert_eq!(timeout(STEP, agent).await.unwrap().unwrap(), 0);

    assert_ne!(
        before.port(),
        after.port(),
        "the gateway saw no new address"
    );
    assert!(
        rebound.ends_with(&format!("local={after}")),
        "{rebound} vs the gateway's view {after}"
    );
    let after_rebind = heard
        .flows
        .iter()
        .filter(|(at, _)| *at > rebound_at)
        .count();
    assert!(
        after_rebind >= 30,
        "only {after_rebind} datagrams arrived after the rebind"
    );
    let rest = lines.rest().await;
    assert!(rest.iter().any(|l| l.contains("event=hangup call=c7")));
    assert!(
        !rest.iter().any(|l| l.contains("event=connection_lost")),
        "{rest:#?}"
    );
}

/// Refuses the agent's login; `flush` waits until the refusal is acknowledged before closing.
async fn refuse(stand_in: &StandIn, flush: bool) -> (i32, Vec<String>) {
    let (agent, mut lines, _commands, _signal) = start_agent(options(
        stand_in,
        alice(None),
        auto_answer(1),
        AudioSource::Silence,
    ));
    let mut peer = stand_in.accept().await;
    peer.login().await;
    peer.send(GatewayMessage::LoginRefused(LoginRefused {
        reason: RefusalReason::BadCredential,
        message: "wrong credential".into(),
    }))
    .await;
    let _ = peer.send.finish();
    if flush {
        let _ = timeout(STEP, peer.send.stopped()).await;
    }
    peer.connection
        .close(close_code::LOGIN_REFUSED.into(), b"wrong credential");
    let code = timeout(STEP, agent).await.unwrap().unwrap();
    (code, lines.rest().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_prints_the_reason_and_exits_2() {
    let stand_in = StandIn::start();
    let (code, lines) = refuse(&stand_in, true).await;
    assert_eq!(code, 2);
    assert!(
        lines.iter().any(|l| {
            l
            == "agent=alice event=login_refused reason=bad_credential message=\"wrong credential\""
        }),
        "{lines:#?}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("agent=alice event=exit code=2 reason=login_refused")
    );
}

/// A gateway that closes right after `login_refused` may discard it unsent (a QUIC close
/// drops pending stream data); the close code alone still tells the agent it was refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_lost_to_an_immediate_close_still_exits_2() {
    let stand_in = StandIn::start();
    let (code, lines) = refuse(&stand_in, false).await;
    assert_eq!(code, 2);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("agent=alice event=login_refused reason=")),
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_frame_from_the_gateway_is_answered_and_ends_the_run_with_1() {
    let stand_in = StandIn::start();
    let (agent, mut lines, _commands, _signal) = start_agent(options(
        &stand_in,
        alice(None),
        auto_answer(1),
        AudioSource::Silence,
    ));
    let mut peer = stand_in.accept().await;
    peer.welcome("s1", "t1").await;
    peer.send.write_all(&[0, 0, 0, 0]).await.unwrap();
    match peer.expect().await {
        AgentMessage::Error(report) => assert_eq!(report.code, ErrorCode::BadFrame),
        other => panic!("expected error bad_frame, got {other:?}"),
    }
    lines.wait_for(&["event=protocol_error"]).await;
    assert_eq!(timeout(STEP, agent).await.unwrap().unwrap(), 1);
    let closed = timeout(STEP, peer.connection.closed()).await.unwrap();
    assert!(
        matches!(&closed, quinn::ConnectionError::ApplicationClosed(c)
            if c.error_code == close_code::PROTOCOL_ERROR.into()),
        "{closed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_mid_call_hangs_up_logs_out_and_leaves_a_valid_recording() {
    let stand_in = StandIn::start();
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("cut.wav");
    let (agent, mut lines, _commands, signal) = start_agent(options(
        &stand_in,
        alice(Some(&recording)),
        auto_answer(5),
        AudioSource::Silence,
    ));
    let mut peer = stand_in.accept().await;
    peer.welcome("s1", "t1").await;
    peer.call("c7", 1).await;
    let media = GatewayMedia::start(
        peer.connection.clone(),
        1,
        AudioSource::Play(tone(440.0, 3.0)),
    );
    media.wait_received(35).await;
    signal.send(()).unwrap();
    assert!(matches!(peer.expect().await, AgentMessage::Hangup(_)));
    peer.expect_logout().await;
    media.stop().await;
    assert_eq!(timeout(STEP, agent).await.unwrap().unwrap(), 0);
    let rest = lines.rest().await;
    assert_eq!(
        rest.last().map(String::as_str),
        Some("agent=alice event=exit code=0 reason=signal")
    );
    let recorded = read_wav(&recording);
    // About 0.7 s of call, every sample of it in the finished file.
    assert!(
        (25 * 160..=60 * 160).contains(&recorded.len()),
        "{} samples",
        recorded.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_ends_after_its_duration_with_a_summary() {
    let stand_in = StandIn::start();
    let mut options = options(&stand_in, alice(None), auto_answer(1), AudioSource::Silence);
    options.duration = Some(Duration::from_millis(800));
    let started = Instant::now();
    let (agent, mut lines, _commands, _signal) = start_agent(options);
    let mut peer = stand_in.accept().await;
    peer.welcome("s1", "t1").await;
    peer.expect_logout().await;
    assert_eq!(timeout(STEP, agent).await.unwrap().unwrap(), 0);
    assert!(started.elapsed() >= Duration::from_millis(800));
    let rest = lines.rest().await;
    let n = rest.len();
    assert!(n >= 2, "{rest:#?}");
    assert!(
        rest[n - 2].starts_with("agent=alice event=summary calls=0"),
        "{rest:#?}"
    );
    assert_eq!(rest[n - 1], "agent=alice event=exit code=0 reason=duration");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interactive_agent_accepts_on_command() {
    let stand_in = StandIn::start();
    let (agent, mut lines, commands, _signal) = start_agent(options(
        &stand_in,
        alice(None),
        Behaviour::default(),
        AudioSource::Silence,
    ));
    let mut peer = stand_in.accept().await;
    peer.welcome("s1", "t1").await;
    peer.send(GatewayMessage::Offer(Offer {
        call: CallId::new("c9"),
        caller: String::new(),
        queue: "sales".into(),
        ring_timeout_ms: 20_000,
        flow: FlowId(3),
        waited_ms: None,
    }))
    .await;
    lines.wait_for(&["event=offer call=c9 caller=\"\""]).await;
    commands.send(Command::Accept).unwrap();
    match peer.expect().await {
        AgentMessage::Accept(accept) => assert_eq!(accept.call.as_str(), "c9"),
        other => panic!("expected accept, got {other:?}"),
    }
    commands.send(Command::Quit).unwrap();
    peer.expect_logout().await;
    assert_eq!(timeout(STEP, agent).await.unwrap().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swarm_logs_in_every_agent_and_records_each_to_its_own_file() {
    let stand_in = StandIn::start();
    let dir = tempfile::tempdir().unwrap();
    let agents =
        crate::client::args::agent_specs("bot", Some(2), Some(&dir.path().join("swarm.wav")))
            .unwrap();
    let (agent, mut lines, _commands, _signal) = start_agent(options(
        &stand_in,
        agents,
        auto_answer(1),
        AudioSource::Silence,
    ));
    let mut ids = Vec::new();
    let mut peers = Vec::new();
    for _ in 0..2 {
        let mut peer = stand_in.accept().await;
        let login = peer.welcome("s", "t").await;
        ids.push(login.agent.as_str().to_string());
        peers.push(peer);
    }
    ids.sort();
    assert_eq!(ids, ["bot-1", "bot-2"]);
    for peer in &mut peers {
        peer.call("c1", 1).await;
    }
    let mut media: Vec<GatewayMedia> = peers
        .iter()
        .map(|p| GatewayMedia::start(p.connection.clone(), 1, AudioSource::Play(tone(440.0, 1.0))))
        .collect();
    for m in &media {
        m.wait_received(30).await;
    }
    for m in media.drain(..) {
        m.stop().await;
    }
    for peer in &mut peers {
        peer.end_call("c1", EndReason::CallerHungUp).await;
        peer.expect_logout().await;
    }
    assert_eq!(timeout(STEP, agent).await.unwrap().unwrap(), 0);
    let rest = lines.rest().await;
    let swarm = rest
        .iter()
        .find(|l| l.starts_with("agent=bot event=swarm_summary agents=2 calls=2"))
        .unwrap_or_else(|| panic!("no swarm summary in {rest:#?}"));
    assert!(field(swarm, "received") >= 40, "{swarm}");
    for i in 1..=2 {
        let path: PathBuf = dir.path().join(format!("swarm-{i}.wav"));
        assert!(read_wav(&path).len() >= 20 * 160, "{}", path.display());
    }
}

/// The real binary against the stand-in, stopped by SIGTERM mid-call. Needs the built binary:
/// `TRUNKGATE_AGENT_BIN=target/debug/trunkgate-agent cargo test binary -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs TRUNKGATE_AGENT_BIN, the path of a built trunkgate-agent"]
async fn the_binary_takes_a_call_and_finishes_its_recording_on_sigterm() {
    use std::io::BufRead;
    let binary = std::env::var("TRUNKGATE_AGENT_BIN").expect("TRUNKGATE_AGENT_BIN");
    let stand_in = StandIn::start();
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("binary.wav");
    let mut child = std::process::Command::new(binary)
        .args(["--gateway", &stand_in.address.to_string()])
        .args(["--agent", "alice", "--auto-answer", "--echo"])
        .args(["--pin", &stand_in.fingerprint.to_string()])
        .args(["--record", recording.to_str().unwrap()])
        .env("TRUNKGATE_AGENT_CREDENTIAL", "s3cret")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (line_tx, line_rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = line_tx.send(line);
        }
    });
    let mut lines = Lines {
        lines: line_rx,
        seen: Vec::new(),
    };
    let mut peer = stand_in.accept().await;
    assert_eq!(peer.welcome("s1", "t1").await.credential.expose(), "s3cret");
    peer.call("c7", 1).await;
    lines
        .wait_for(&["agent=alice event=answered call=c7 flow=1"])
        .await;
    let media = GatewayMedia::start(
        peer.connection.clone(),
        1,
        AudioSource::Play(tone(440.0, 3.0)),
    );
    media.wait_received(50).await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(matches!(peer.expect().await, AgentMessage::Hangup(_)));
    peer.expect_logout().await;
    let heard = media.stop().await;
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let rest = lines.rest().await;
    for line in &rest {
        eprintln!("{line}");
    }
    assert_eq!(exit.code(), Some(0));
    assert_eq!(
        rest.last().map(String::as_str),
        Some("agent=alice event=exit code=0 reason=signal")
    );
    let recorded = read_wav(&recording);
    assert!(recorded.len() >= 40 * 160, "{} samples", recorded.len());
    assert!(tone_share(&recorded[recorded.len() / 2..], 440.0) > 0.6);
    assert!(tone_share(&heard.audio[heard.audio.len() - 20 * 160..], 440.0) > 0.6);
}
