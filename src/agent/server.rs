//! The agent link's tokio shell: one task per QUIC connection.
//!
//! A connection task reads the control stream, checks the login (Argon2 on the blocking pool, a
//! few at a time, and not at all for an address that keeps failing: `agent::login`), and then
//! only moves bytes: messages to and from the contact center ([`AgentInput`],
//! [`ToConnection`]), media datagrams to the call their flow belongs to. All decisions are the
//! contact center's (`queue::center`).
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use web_transport_quinn::{RecvStream, SendStream, Session, SessionError, WebTransportError};

use crate::agent::config::AgentConfig;
use crate::agent::link::{Dropped, LinkCounters, SAMPLE_EVERY};
use crate::agent::login::{FailedLogins, Verifier};
use crate::agent::media::{quic_flow, AgentMedia, AgentPacket};
use crate::agent::protocol::{
    self as proto, close_code, from_gateway::LoginRefused, AgentMessage, DecodeError, FrameDecoder,
    GatewayMessage, RefusalReason,
};
use crate::agent::sessions::ConnId;
use crate::media::rtp_quic::{self, FlowId};
use crate::ops::notify::{Heartbeat, HEARTBEAT};

/// How long a new connection has to log in.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What the agent link tells the contact center.
pub enum AgentInput {
    Login {
        conn: ConnId,
        agent: String,
        skills: Vec<String>,
        /// A supervisor's login: the queues it supervises (it takes no calls).
        supervises: Vec<String>,
        resume: Option<String>,
        /// Boxed: a session is large, and logins are rare beside messages.
        link: Box<LinkHandle>,
        reply: oneshot::Sender<Result<(), RefusalReason>>,
    },
    Message {
        conn: ConnId,
        msg: AgentMessage,
    },
    Lost {
        conn: ConnId,
    },
    /// The connection goes on from a new address (the agent's network changed).
    Moved {
        conn: ConnId,
    },
    /// The agent logged out (finished its control stream, or closed with code 0): its session
    /// ends at once, no grace period.
    LoggedOut {
        conn: ConnId,
    },
}

/// How the center reaches one agent's connection: control messages, closing it, and a media
/// handle per call. Nothing of QUIC shows through, so a WebTransport session can give the center
/// the same handle over its own task.
#[derive(Clone)]
pub struct LinkHandle {
    connection: Session,
    control: mpsc::UnboundedSender<ToConnection>,
    /// For the calls' media handles on this connection.
    counters: LinkCounters,
}

impl LinkHandle {
    /// Sending never waits; a connection already gone takes nothing.
    pub fn send(&self, msg: GatewayMessage) {
        let _ = self.control.send(ToConnection::Send(msg));
    }

    pub fn close(&self, code: u32, reason: &'static str) {
        let _ = self.control.send(ToConnection::Close { code, reason });
    }

    /// A call's media handle on `flow`: the call sends through it, and from now on the
    /// agent's packets of that flow go to it.
    pub fn open_media(&self, flow: FlowId) -> AgentMedia {
        let (media, route) = quic_flow(self.connection.clone(), flow, &self.counters);
        let _ = self.control.send(ToConnection::Route {
            flow: flow.get(),
            media: route,
        });
        media
    }

    /// The agent's packets of `flow` are dropped from now on.
    pub fn close_media(&self, flow: u64) {
        let _ = self.control.send(ToConnection::Unroute { flow });
    }
}

enum ToConnection {
    Send(GatewayMessage),
    Close {
        code: u32,
        reason: &'static str,
    },
    /// The agent's datagrams of `flow` go to `media` (a call's agent media handle).
    Route {
        flow: u64,
        media: mpsc::Sender<AgentPacket>,
    },
    Unroute {
        flow: u64,
    },
}

/// What every connection's login goes through: the bounded verifier and the failures so far.
#[derive(Clone)]
struct Logins {
    verifier: Verifier,
    failures: Arc<Mutex<FailedLogins>>,
}

impl Logins {
    fn failures(&self) -> std::sync::MutexGuard<'_, FailedLogins> {
        // Counts left by a panicking holder are still counts.
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where logins look their agent up: the configuration in force at each login, so a reload that
/// revokes an agent refuses it from the next one. The daemon's shared configuration is the
/// directory; the trait keeps the agent link from importing the configuration hub.
pub trait AgentDirectory: Clone + Send + Sync + 'static {
    fn agent(&self, id: &str) -> Option<AgentConfig>;
}

/// Accepts agent connections until `stop` fires (then closes every one) or the endpoint closes.
pub async fn serve(
    endpoint: quinn::Endpoint,
    agents: impl AgentDirectory,
    center: mpsc::UnboundedSender<AgentInput>,
    counters: LinkCounters,
    heart: Heartbeat,
    stop: CancellationToken,
) {
    static NEXT_CONN: AtomicU64 = AtomicU64::new(1);
    let logins = Logins {
        verifier: Verifier::per_core(),
        failures: Arc::new(Mutex::new(FailedLogins::new())),
    };
    let mut beat = tokio::time::interval(HEARTBEAT);
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => incoming,
            _ = beat.tick() => {
                heart.beat();
                continue;
            }
            _ = stop.cancelled() => {
                endpoint.close(close_code::DONE.into(), b"gateway shutting down");
                return;
            }
        };
        let Some(incoming) = incoming else { return };
        let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
        let (agents, center, counters) = (agents.clone(), center.clone(), counters.clone());
        let logins = logins.clone();
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            match incoming.await {
                Ok(connection) => {
                    let session =
                        if negotiated(&connection).as_deref() == Some(DESK_ALPN.as_bytes()) {
                            match accept_desk(connection).await {
                                Some(session) => session,
                                None => return,
                            }
                        } else {
                            Session::raw(connection)
                        };
                    connection_task(conn, session, agents, logins, center, counters).await;
                }
                Err(e) => tracing::info!(%remote, error = %e, "agent connection failed"),
            }
        });
    }
}

/// A browser's ALPN: HTTP/3, which carries WebTransport.
const DESK_ALPN: &str = web_transport_quinn::ALPN;
/// Where a browser's WebTransport session asks for the agent protocol.
pub const DESK_PATH: &str = "/agent";

/// The protocol the handshake settled on.
fn negotiated(connection: &quinn::Connection) -> Option<Vec<u8>> {
    connection
        .handshake_data()?
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .ok()?
        .protocol
}

/// A browser's WebTransport session on [`DESK_PATH`]; any other path is refused (404), and a
/// peer that does not finish the HTTP/3 exchange in time is dropped.
async fn accept_desk(connection: quinn::Connection) -> Option<Session> {
    let remote = connection.remote_address();
    let request = tokio::time::timeout(
        LOGIN_TIMEOUT,
        web_transport_quinn::Request::accept(connection),
    )
    .await;
    let request = match request {
        Ok(Ok(request)) => request,
        Ok(Err(e)) => {
            tracing::info!(%remote, error = %e, "agent desk: no WebTransport session");
            return None;
        }
        Err(_) => {
            tracing::info!(%remote, "agent desk: no WebTransport request in time");
            return None;
        }
    };
    if request.url.path() != DESK_PATH {
        tracing::info!(%remote, path = request.url.path(), "agent desk: refused a session for another path");
        let _ = request
            .reject(web_transport_quinn::http::StatusCode::NOT_FOUND)
            .await;
        return None;
    }
    match request.ok().await {
        Ok(session) => Some(session),
        Err(e) => {
            tracing::info!(%remote, error = %e, "agent desk: WebTransport session failed");
            None
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("no login within {0:?}")]
    LoginTimeout(Duration),
    #[error("connection: {0}")]
    Connection(#[from] SessionError),
    #[error("stream: {0}")]
    Read(#[from] web_transport_quinn::ReadError),
    #[error("stream: {0}")]
    Write(#[from] web_transport_quinn::WriteError),
    #[error("protocol: {0}")]
    Protocol(DecodeError),
    #[error("first message was {0}, not login")]
    NotLogin(&'static str),
    #[error("stream closed")]
    Closed,
}

async fn connection_task(
    conn: ConnId,
    connection: Session,
    agents: impl AgentDirectory,
    logins: Logins,
    center: mpsc::UnboundedSender<AgentInput>,
    counters: LinkCounters,
) {
    let remote = connection.remote_address();
    match serve_connection(conn, &connection, agents, &logins, &center, counters).await {
        Ok(Ended::LoggedOut(agent)) => {
            tracing::info!(%remote, %agent, "agent logged out");
            connection.close(close_code::DONE, b"logged out");
            let _ = center.send(AgentInput::LoggedOut { conn });
        }
        Ok(Ended::Closed(agent)) => {
            tracing::info!(%remote, %agent, "agent connection ended");
            let _ = center.send(AgentInput::Lost { conn });
        }
        Err(e) if e.closed_by_agent() == Some(close_code::DONE) => {
            tracing::info!(%remote, "agent logged out (closed its connection)");
            let _ = center.send(AgentInput::LoggedOut { conn });
        }
        Err(e) => {
            tracing::info!(%remote, error = %e, "agent connection closed");
            connection.close(close_code::PROTOCOL_ERROR, e.to_string().as_bytes());
            let _ = center.send(AgentInput::Lost { conn });
        }
    }
}

impl ConnError {
    /// The code the agent closed its connection (or its WebTransport session) with, if that
    /// is how it ended.
    fn closed_by_agent(&self) -> Option<u32> {
        let session = match self {
            ConnError::Connection(e) => e,
            ConnError::Read(web_transport_quinn::ReadError::SessionError(e)) => e,
            ConnError::Write(web_transport_quinn::WriteError::SessionError(e)) => e,
            _ => return None,
        };
        match session {
            SessionError::ConnectionError(quinn::ConnectionError::ApplicationClosed(close)) => {
                u32::try_from(close.error_code.into_inner()).ok()
            }
            SessionError::WebTransportError(WebTransportError::Closed(code, _)) => Some(*code),
            _ => None,
        }
    }
}

/// How a connection that did not fail ended.
enum Ended {
    /// The agent finished its control stream: a logout.
    LoggedOut(String),
    /// Refused, or closed by the gateway.
    Closed(String),
}

async fn serve_connection(
    conn: ConnId,
    connection: &Session,
    agents: impl AgentDirectory,
    logins: &Logins,
    center: &mpsc::UnboundedSender<AgentInput>,
    counters: LinkCounters,
) -> Result<Ended, ConnError> {
    let (mut send, mut recv) = tokio::time::timeout(LOGIN_TIMEOUT, connection.accept_bi())
        .await
        .map_err(|_| ConnError::LoginTimeout(LOGIN_TIMEOUT))??;
    let mut decoder = FrameDecoder::<AgentMessage>::new();
    let mut buf = vec![0u8; 16 * 1024];
    let first = tokio::time::timeout(
        LOGIN_TIMEOUT,
        next_message(&mut recv, &mut decoder, &mut buf),
    )
    .await
    .map_err(|_| ConnError::LoginTimeout(LOGIN_TIMEOUT))??;
    let AgentMessage::Login(login) = first else {
        return Err(ConnError::NotLogin(message_name(&first)));
    };
    let agent = login.agent.as_str().to_string();
    let refuse = |reason: RefusalReason, message: &str| {
        GatewayMessage::LoginRefused(LoginRefused {
            reason,
            message: message.to_string(),
        })
    };
    let from = connection.remote_address().ip();
    let checked = if logins.failures().allowed(Instant::now(), from, &agent) {
        let checked = check_login(agents.agent(&agent), &login, &logins.verifier).await;
        let refused = checked.as_ref().err().map(|(reason, _)| *reason);
        logins
            .failures()
            .record(Instant::now(), from, &agent, refused);
        checked
    } else {
        Err((
            RefusalReason::TooManyAttempts,
            "too many failed logins from this address: try again in a minute".into(),
        ))
    };
    let skills = match checked {
        Ok(skills) => skills,
        Err((reason, message)) => {
            tracing::info!(remote = %connection.remote_address(), %agent, ?reason, "agent login refused");
            write(&mut send, &refuse(reason, &message)).await?;
            close_after_delivery(connection, &mut send, &message).await;
            return Ok(Ended::Closed(agent));
        }
    };
    let supervises = agents
        .agent(&agent)
        .map(|a| a.supervises)
        .unwrap_or_default();
    let (control_tx, mut control_rx) = mpsc::unbounded_channel();
    let (reply_tx, reply_rx) = oneshot::channel();
    let _ = center.send(AgentInput::Login {
        conn,
        agent: agent.clone(),
        skills,
        supervises,
        resume: login.resume.as_ref().map(|t| t.expose().to_string()),
        link: Box::new(LinkHandle {
            connection: connection.clone(),
            control: control_tx,
            counters: counters.clone(),
        }),
        reply: reply_tx,
    });
    if let Ok(Err(reason)) = reply_rx.await {
        write(
            &mut send,
            &refuse(reason, "agent already logged in elsewhere"),
        )
        .await?;
        close_after_delivery(connection, &mut send, "already logged in").await;
        return Ok(Ended::Closed(agent));
    }
    let mut remote = connection.remote_address();
    tracing::info!(%remote, %agent, "agent logged in");
    let mut routes: HashMap<u64, mpsc::Sender<AgentPacket>> = HashMap::new();
    let [malformed, no_call, call_behind] =
        [Dropped::Malformed, Dropped::NoCall, Dropped::CallBehind].map(|d| counters.dropped(d));
    let mut sample = tokio::time::interval(SAMPLE_EVERY);
    loop {
        tokio::select! {
            _ = sample.tick() => {
                counters.rtt_seconds.observe(connection.rtt().as_secs_f64());
                // quinn follows a peer that migrates by itself; we only notice and count.
                let now = connection.remote_address();
                if now != remote {
                    counters.migrations.inc();
                    let _ = center.send(AgentInput::Moved { conn });
                    tracing::info!(from = %remote, to = %now, %agent, "agent's connection moved to a new address");
                    remote = now;
                }
            }
            read = recv.read(&mut buf) => {
                let Some(n) = read? else {
                    return Ok(Ended::LoggedOut(agent));
                };
                decoder.push(&buf[..n]);
                while let Some(item) = decoder.pop() {
                    match item {
                        Ok(msg) => {
                            let _ = center.send(AgentInput::Message { conn, msg });
                        }
                        Err(e) if e.is_fatal() => return Err(ConnError::Protocol(e)),
                        Err(e) => {
                            if !e.is_about_an_error() {
                                write(&mut send, &GatewayMessage::Error(e.report())).await?;
                            }
                        }
                    }
                }
            }
            cmd = control_rx.recv() => match cmd {
                Some(ToConnection::Send(msg)) => write(&mut send, &msg).await?,
                Some(ToConnection::Close { code, reason }) => {
                    connection.close(code, reason.as_bytes());
                    return Ok(Ended::Closed(agent));
                }
                Some(ToConnection::Route { flow, media }) => { routes.insert(flow, media); }
                Some(ToConnection::Unroute { flow }) => { routes.remove(&flow); }
                None => return Ok(Ended::Closed(agent)),
            },
            datagram = connection.read_datagram() => {
                let datagram = datagram?;
                match rtp_quic::parse(&datagram) {
                    Ok((flow, rtp)) => match routes.get(&flow.get()) {
                        Some(media) => {
                            let offset = datagram.len() - rtp.len();
                            let packet = AgentPacket {
                                arrived: Instant::now(),
                                rtp: datagram.slice(offset..),
                            };
                            // A full queue means the call is behind: drop, do not wait.
                            match media.try_send(packet) {
                                Err(TrySendError::Full(_)) => call_behind.inc(),
                                Err(TrySendError::Closed(_)) => no_call.inc(),
                                Ok(()) => {}
                            }
                        }
                        None => no_call.inc(),
                    },
                    Err(e) => {
                        malformed.inc();
                        tracing::debug!(error = %e, "bad media datagram dropped");
                    }
                }
            }
        }
    }
}

/// The agent's configured skills, narrowed by the login's (empty means all), if its credential
/// is right. Argon2 takes tens of milliseconds and 19 MiB: the verifier runs a few at a time.
async fn check_login(
    config: Option<AgentConfig>,
    login: &proto::from_agent::Login,
    verifier: &Verifier,
) -> Result<Vec<String>, (RefusalReason, String)> {
    let id = login.agent.as_str();
    let Some(config) = config else {
        return Err((RefusalReason::UnknownAgent, format!("no agent {id:?}")));
    };
    if config.revoked {
        return Err((RefusalReason::Revoked, format!("agent {id:?} is revoked")));
    }
    let credential = login.credential.expose().to_string();
    let hash = config.credential_hash.clone();
    if !verifier.verify(credential, hash).await {
        return Err((RefusalReason::BadCredential, "wrong credential".into()));
    }
    let skills = if login.skills.is_empty() {
        config.skills.clone()
    } else {
        login
            .skills
            .iter()
            .filter(|s| config.skills.contains(s))
            .cloned()
            .collect()
    };
    Ok(skills)
}

/// Closing at once would throw away the refusal still in flight: finish the stream, give the
/// agent a moment to read it (bounded), then close.
async fn close_after_delivery(connection: &Session, send: &mut SendStream, reason: &str) {
    let _ = send.finish();
    let _ = tokio::time::timeout(Duration::from_secs(2), send.stopped()).await;
    // Delivered is not read: a browser errors a session's streams, unread data included, once
    // the session closes, and its page would say "connection lost" instead of why. The peer
    // reads the refusal and closes first; one that does not is closed a second later.
    let _ = tokio::time::timeout(Duration::from_secs(1), connection.closed()).await;
    connection.close(close_code::LOGIN_REFUSED, reason.as_bytes());
}

async fn next_message(
    recv: &mut RecvStream,
    decoder: &mut FrameDecoder<AgentMessage>,
    buf: &mut [u8],
) -> Result<AgentMessage, ConnError> {
    loop {
        if let Some(item) = decoder.pop() {
            // Before the welcome every error is fatal (docs/agent-protocol.md).
            return item.map_err(ConnError::Protocol);
        }
        let Some(n) = recv.read(buf).await? else {
            return Err(ConnError::Closed);
        };
        decoder.push(&buf[..n]);
    }
}

async fn write(send: &mut SendStream, msg: &GatewayMessage) -> Result<(), ConnError> {
    let mut out = Vec::with_capacity(256);
    if let Err(e) = proto::encode(msg, &mut out) {
        tracing::warn!(error = %e, "gateway message not encodable: dropped");
        return Ok(());
    }
    send.write_all(&out).await?;
    Ok(())
}

fn message_name(msg: &AgentMessage) -> &'static str {
    use proto::WireMessage;
    msg.type_name()
}
