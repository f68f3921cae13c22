//! The signalling task: a thin tokio shell around [`UserAgent`].
//!
//! It owns the user agent, feeds it messages from the transports, commands from call actors and
//! the clock, and carries its transmits out and its events to the call that owns them.
use std::collections::HashMap;
use std::time::Instant;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::ops::notify::{Heartbeat, HEARTBEAT};
use crate::sip::guard::BanView;
use crate::sip::tls::TlsClient;
use crate::sip::transport::{Inbound, Transports};
use crate::sip::trunk::TrunkConfig;
use crate::sip::ua::register::{RegistrarUri, RegistrationSpec, RegistrationView};
use crate::sip::ua::{CallEvent, CallRef, IncomingCall, OutgoingCall, UaError, UserAgent};

/// What a call actor asks of the signalling side.
#[derive(Debug)]
pub enum SipCommand {
    Ring(CallRef),
    Answer(CallRef, Vec<u8>),
    Reject(CallRef, u16),
    AnswerReInvite(CallRef, Result<Vec<u8>, u16>),
    /// Asks the carrier to transfer the call to a number (REFER), on behalf of the agent named
    /// second; the outcome comes as [`CallEvent::Referred`].
    Refer(CallRef, String, String),
    /// Ends the call: BYE once answered; for a call we placed and not yet answered, CANCEL.
    Hangup(CallRef),
    /// Places a call: `call` comes from the [`crate::sip::ua::CallIds`] shared with the UA, and
    /// the call's events (Progress, Answered or Failed, then as for incoming calls) go to
    /// `events`. Refused at once (a bad Request-URI, `call` in use) → `Failed { code: 500 }`.
    Invite {
        call: CallRef,
        outgoing: Box<OutgoingCall>,
        events: mpsc::UnboundedSender<CallEvent>,
    },
    /// An OPTIONS to a carrier's proxy marked down; the outcome goes to
    /// [`CallSpawner::probed`].
    Probe {
        peer: crate::sip::peer::Peer,
        local: std::net::SocketAddr,
        host: String,
    },
}

/// Starts the actor for a new call and returns where its later events go.
pub trait CallSpawner: Send + 'static {
    fn spawn(
        &mut self,
        incoming: Box<IncomingCall>,
        commands: mpsc::UnboundedSender<SipCommand>,
    ) -> mpsc::UnboundedSender<CallEvent>;

    /// Called once as the signalling loop starts, with the sender its commands go to: whoever
    /// places calls ([`SipCommand::Invite`]) needs it. The default drops it.
    fn signalling_started(&mut self, commands: mpsc::UnboundedSender<SipCommand>) {
        let _ = commands;
    }

    /// A probe ([`SipCommand::Probe`]) was answered (`alive`) or not.
    fn probed(&mut self, peer: crate::sip::peer::Peer, alive: bool) {
        let _ = (peer, alive);
    }
}

/// When the signalling stops taking new calls, and what it tells carriers.
pub struct Drain {
    pub started: CancellationToken,
    /// `Retry-After` on the 503s.
    pub retry_after: std::time::Duration,
}

/// Signalling counters for ops (Prometheus types; made and registered by `ops::metrics`).
/// Messages are counted as they cross the wire, retransmissions included.
#[derive(Clone)]
pub struct SipCounters {
    /// By `direction` (in, out) and `method` (INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, other).
    pub requests: prometheus::IntCounterVec,
    /// By `direction` and `class` (1xx … 6xx).
    pub responses: prometheus::IntCounterVec,
    /// Requests from addresses no trunk allows (403).
    pub acl_rejected: prometheus::IntCounter,
    /// New calls refused with 503 while draining.
    pub refused_draining: prometheus::IntCounter,
    pub transaction_timeouts: prometheus::IntCounter,
    /// Messages that could not be parsed, by `outcome` (answered with 400, dropped).
    pub malformed: prometheus::IntCounterVec,
    /// TLS connections whose handshake failed (a bad client certificate, a scanner).
    pub tls_handshake_failures: prometheus::IntCounter,
    /// 1 for each trunk registered with its registrar now, 0 for one that is not.
    pub registered: prometheus::IntGaugeVec,
    /// Addresses banned by the scanner defence, and requests dropped from them.
    pub bans_imposed: prometheus::IntCounter,
    pub banned_now: prometheus::IntGauge,
    pub silenced: prometheus::IntCounter,
}

impl SipCounters {
    fn request(&self, direction: &str, method: &str) {
        let method = match method {
            "INVITE" | "ACK" | "BYE" | "CANCEL" | "OPTIONS" | "INFO" => method,
            _ => "other",
        };
        self.requests.with_label_values(&[direction, method]).inc();
    }

    fn response(&self, direction: &str, code: u16) {
        const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"];
        let class = CLASSES[usize::from(code / 100).clamp(1, 6) - 1];
        self.responses.with_label_values(&[direction, class]).inc();
    }

    fn inbound(&self, msg: &rsip::SipMessage) {
        match msg {
            rsip::SipMessage::Request(r) => self.request("in", &r.method.to_string()),
            rsip::SipMessage::Response(r) => self.response("in", r.status_code.code()),
        }
    }

    /// From the first line of what we send: `SIP/2.0 200 OK` or `BYE sip:… SIP/2.0`.
    fn outbound(&self, payload: &[u8]) {
        // We wrote the message: `SIP/2.0 NNN …` or `METHOD uri SIP/2.0`.
        if let Some(code) = payload.strip_prefix(b"SIP/2.0 ") {
            let code = std::str::from_utf8(&code[..code.len().min(3)]).unwrap_or("");
            self.response("out", code.parse().unwrap_or(0));
        } else if let Some(end) = payload.iter().take(16).position(|b| *b == b' ') {
            self.request(
                "out",
                std::str::from_utf8(&payload[..end]).unwrap_or("other"),
            );
        }
    }

    /// Brings the core's and the transports' own counts over (they keep plain numbers).
    fn sync(&self, ua: &UserAgent, transports: &Transports, last: &mut [u64; 8]) {
        use std::sync::atomic::Ordering::Relaxed;
        let t = transports.stats();
        let now = [
            ua.stats().forbidden,
            ua.stats().refused_draining,
            ua.stats().transaction_timeouts,
            t.malformed_answered.load(Relaxed),
            t.malformed_dropped.load(Relaxed),
            t.tls_handshake_failures.load(Relaxed),
            ua.guard().banned,
            ua.guard().silenced,
        ];
        let delta = |i: usize| now[i].saturating_sub(last[i]);
        self.acl_rejected.inc_by(delta(0));
        self.refused_draining.inc_by(delta(1));
        self.transaction_timeouts.inc_by(delta(2));
        self.malformed
            .with_label_values(&["answered"])
            .inc_by(delta(3));
        self.malformed
            .with_label_values(&["dropped"])
            .inc_by(delta(4));
        self.tls_handshake_failures.inc_by(delta(5));
        self.bans_imposed.inc_by(delta(6));
        self.silenced.inc_by(delta(7));
        self.registered.reset();
        for registration in ua.registrations() {
            self.registered
                .with_label_values(&[registration.spec().trunk.as_str()])
                .set(registration.state().is_registered().into());
        }
        *last = now;
    }
}

/// What steers the signalling loop from outside: reloads, drain, the watchdog and shutdown.
pub struct Controls {
    /// New trunk definitions (a config reload).
    pub trunks: watch::Receiver<Vec<TrunkConfig>>,
    pub drain: Drain,
    /// Beaten while the loop turns (the systemd watchdog).
    pub heart: Heartbeat,
    pub counters: SipCounters,
    /// Where the trunks' registrations are shown (the admin API), refreshed every second.
    pub registrations: watch::Sender<Vec<RegistrationView>>,
    /// Where the scanner defence's bans are shown, refreshed every second.
    pub bans: watch::Sender<Vec<BanView>>,
    /// The configuration in force: where relative paths start, and our TLS certificate.
    pub config: crate::config::SharedConfig,
    pub shutdown: CancellationToken,
}

pub async fn run(
    mut ua: UserAgent,
    transports: Transports,
    mut inbound: mpsc::Receiver<Inbound>,
    mut spawner: impl CallSpawner,
    controls: Controls,
) {
    let Controls {
        mut trunks,
        drain,
        heart,
        counters,
        registrations,
        bans,
        config,
        shutdown,
    } = controls;
    let mut synced = [0u64; 8];
    let mut beat = tokio::time::interval(HEARTBEAT);
    let (resolved_tx, mut resolved) = mpsc::unbounded_channel();
    // Taken once here; `None` only if something else took it, and then no flow is watched.
    let mut closed_flows = transports.closed_flows();
    resolve_registrations(
        trunks.borrow().clone(),
        TlsFiles::of(&config),
        transports.clone(),
        resolved_tx.clone(),
    );
    let (cmd_tx, mut commands) = mpsc::unbounded_channel::<SipCommand>();
    spawner.signalling_started(cmd_tx.clone());
    let mut calls: HashMap<CallRef, mpsc::UnboundedSender<CallEvent>> = HashMap::new();
    loop {
        let deadline = ua.poll_timeout();
        tokio::select! {
            Some(msg) = inbound.recv() => {
                counters.inbound(&msg.msg);
                ua.handle_message(Instant::now(), msg.peer, msg.local, msg.msg);
            }
            Some(cmd) = commands.recv() => {
                let now = Instant::now();
                let result = match cmd {
                    SipCommand::Ring(c) => ua.ring(now, c),
                    SipCommand::Answer(c, sdp) => ua.answer(now, c, sdp),
                    SipCommand::Reject(c, code) => ua.reject(now, c, code, None),
                    SipCommand::AnswerReInvite(c, a) => ua.answer_reinvite(now, c, a),
                    SipCommand::Hangup(c) => ua.hangup(now, c),
                    SipCommand::Invite { call, outgoing, events } => {
                        // Another call's events must never be redirected: a reference in use
                        // is refused before anything is replaced.
                        let placed = if calls.contains_key(&call) {
                            Err(UaError::CallInUse(call))
                        } else {
                            ua.invite(now, call, *outgoing)
                        };
                        match placed {
                            Ok(()) => {
                                calls.insert(call, events);
                            }
                            Err(e) => {
                                tracing::info!(call, error = %e, "call not placed");
                                let _ = events.send(CallEvent::Failed {
                                    call,
                                    code: 500,
                                    reason: e.to_string(),
                                });
                            }
                        }
                        // Told to the call already.
                        Ok(())
                    }
                    SipCommand::Refer(c, target, by) => ua.refer(now, c, &target, &by),
                    SipCommand::Probe { peer, local, host } => {
                        ua.probe(now, peer, local, &host);
                        Ok(())
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(error = %e, "call command ignored");
                }
            }
            _ = sleep_until(deadline) => ua.handle_timeout(Instant::now()),
            _ = beat.tick() => {
                heart.beat();
                counters.sync(&ua, &transports, &mut synced);
                let now = Instant::now();
                registrations.send_replace(ua.registrations().map(|r| r.view(now)).collect());
                let banned = ua.guard().bans(now);
                counters.banned_now.set(banned.len() as i64);
                bans.send_replace(banned);
            }
            Ok(()) = trunks.changed() => {
                // A reload: new trunks and ACLs for new requests; calls in progress go on.
                let now_configured = trunks.borrow_and_update().clone();
                resolve_registrations(
                    now_configured.clone(),
                    TlsFiles::of(&config),
                    transports.clone(),
                    resolved_tx.clone(),
                );
                ua.set_trunks(now_configured);
                let loaded = config.load();
                ua.set_guard(loaded.config.sip.guard());
                let (expires, min_se) = loaded.config.sip.session_timers();
                ua.set_session_timers(expires, min_se);
            }
            Some(specs) = resolved.recv() => ua.set_registrations(Instant::now(), specs),
            Some(peer) = next_closed(&mut closed_flows) => ua.flow_lost(Instant::now(), peer),
            _ = drain.started.cancelled(), if !ua.is_draining() => {
                tracing::info!(calls = ua.active_calls(), "draining: new calls get 503");
                ua.stop_accepting(drain.retry_after);
            }
            _ = shutdown.cancelled() => {
                ua.hangup_all(Instant::now());
                break;
            }
        }
        while let Some(t) = ua.poll_transmit() {
            counters.outbound(&t.payload);
            transports.send(t);
        }
        while let Some((peer, alive)) = ua.poll_probe() {
            spawner.probed(peer, alive);
        }
        while let Some(ev) = ua.poll_event() {
            match ev {
                CallEvent::Incoming(incoming) => {
                    let call = incoming.call;
                    let tx = spawner.spawn(incoming, cmd_tx.clone());
                    calls.insert(call, tx);
                }
                ev @ (CallEvent::Ended { call, .. } | CallEvent::Failed { call, .. }) => {
                    if let Some(tx) = calls.remove(&call) {
                        let _ = tx.send(ev);
                    }
                }
                ev @ (CallEvent::Confirmed { call, .. }
                | CallEvent::Progress { call, .. }
                | CallEvent::Answered { call, .. }
                | CallEvent::ReInvite { call, .. }
                | CallEvent::Info { call, .. }
                | CallEvent::Referred { call, .. }) => {
                    if let Some(tx) = calls.get(&call) {
                        let _ = tx.send(ev);
                    }
                }
            }
        }
    }
    // Stopping: every call got its BYE above. Keep the signalling going a little so BYEs are
    // retransmitted and answered, then stop even if a carrier never answers.
    let give_up = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while ua.active_calls() > 0 {
        while let Some(t) = ua.poll_transmit() {
            counters.outbound(&t.payload);
            transports.send(t);
        }
        while let Some(ev) = ua.poll_event() {
            if let CallEvent::Ended { call, .. } | CallEvent::Failed { call, .. } = &ev {
                if let Some(tx) = calls.remove(call) {
                    let _ = tx.send(ev);
                }
            }
        }
        let deadline = ua.poll_timeout();
        tokio::select! {
            Some(msg) = inbound.recv() => {
                ua.handle_message(Instant::now(), msg.peer, msg.local, msg.msg);
            }
            _ = sleep_until(deadline) => ua.handle_timeout(Instant::now()),
            _ = tokio::time::sleep_until(give_up) => break,
        }
    }
    while let Some(t) = ua.poll_transmit() {
        counters.outbound(&t.payload);
        transports.send(t);
    }
    counters.sync(&ua, &transports, &mut synced);
    transports.close();
    tracing::info!(unanswered = ua.active_calls(), "signalling stopped");
}

/// Where a trunk's TLS files are found, and our own certificate to present.
struct TlsFiles {
    base: std::path::PathBuf,
    ours: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl TlsFiles {
    fn of(config: &crate::config::SharedConfig) -> Self {
        let loaded = config.load();
        let sip = &loaded.config.sip;
        TlsFiles {
            base: loaded.config.base_dir.clone(),
            ours: sip.tls_certificate.clone().zip(sip.tls_private_key.clone()),
        }
    }

    fn ours(&self) -> Option<(&std::path::Path, &std::path::Path)> {
        self.ours.as_ref().map(|(c, k)| (c.as_path(), k.as_path()))
    }
}

async fn next_closed(
    flows: &mut Option<mpsc::UnboundedReceiver<crate::sip::peer::Peer>>,
) -> Option<crate::sip::peer::Peer> {
    match flows {
        Some(flows) => flows.recv().await,
        None => std::future::pending().await,
    }
}

/// How long a registrar's name may take to resolve.
const RESOLVE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Resolves the registrars of `trunks` off the signalling task and hands the registrations
/// to it. A registrar that cannot be resolved or reached by any of our sockets is logged and
/// left out.
fn resolve_registrations(
    trunks: Vec<TrunkConfig>,
    files: TlsFiles,
    transports: Transports,
    resolved: mpsc::UnboundedSender<Vec<RegistrationSpec>>,
) {
    tokio::spawn(async move {
        let mut specs = Vec::new();
        for trunk in trunks {
            let (Some(register), Some(credentials)) = (&trunk.register, &trunk.credentials) else {
                continue;
            };
            let Ok(registrar) = RegistrarUri::parse(&register.registrar) else {
                continue;
            };
            let lookup = tokio::net::lookup_host((registrar.host.as_str(), registrar.port));
            let target = match tokio::time::timeout(RESOLVE_LIMIT, lookup).await {
                Ok(Ok(mut addrs)) => addrs.next(),
                _ => None,
            };
            let Some(target) = target else {
                tracing::warn!(trunk = %trunk.name, registrar = %register.registrar, "registrar cannot be resolved: not registering");
                continue;
            };
            if registrar.transport == crate::sip::peer::Transport::Tls {
                match TlsClient::for_trunk(&trunk, &registrar.host, &files.base, files.ours()) {
                    Ok(client) => transports.set_tls_client(target, client),
                    Err(e) => {
                        tracing::warn!(trunk = %trunk.name, error = %e, "cannot connect to the registrar over tls: not registering");
                        continue;
                    }
                }
            }
            let Some(local) = transports.local_address(registrar.transport, target) else {
                tracing::warn!(trunk = %trunk.name, transport = registrar.transport.via_token(), "no listener of the registrar's transport to be reached on: not registering");
                continue;
            };
            specs.push(RegistrationSpec {
                trunk: trunk.name.clone(),
                aor: register
                    .aor
                    .clone()
                    .unwrap_or_else(|| format!("sip:{}@{}", credentials.username, registrar.host)),
                registrar,
                target,
                username: credentials.username.clone(),
                password: credentials.secret().to_owned(),
                local,
                expires: std::time::Duration::from_secs(register.expires_s.into()),
                keepalive: std::time::Duration::from_secs(register.keepalive_s.into()),
            });
        }
        let _ = resolved.send(specs);
    });
}

/// How long shutdown waits for carriers to answer our BYEs.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
