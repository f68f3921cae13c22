//! The daemon's tasks wired together: SIP transports and signalling, a task per call, the
//! contact center, the agent link and the event bus with its log consumer. `trunkgate run`
//! starts one and stops it on a signal; tests start one in-process to watch its bus.
mod reload;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::agent::desk_certificate::{DeskCertificateError, DeskCertificates};
use crate::agent::identity::{Fingerprint, IdentityError};
use crate::agent::link::{self, LinkError};
use crate::agent::server;
use crate::call::shell::{CallContext, Spawner};
use crate::config::{Config, Loaded, SharedConfig};
use crate::desk::{self, Desk};
use crate::events::{self, Bus};
use crate::journal::shell::JournalThread;
use crate::journal::ship::{Shipper, Sink};
use crate::journal::upload::BatchLimits;
use crate::media::prompt::PromptError;
use crate::ops::admin::{self, AdminRequest, Ops};
use crate::ops::notify::{self, Heartbeat, Notifier};
use crate::ops::tally::Tally;
use crate::ops::{heap, LogSink, Logging};
use crate::queue::center::shell::{self as center_shell, CallInput, CenterChannels, Reconfigure};
use crate::queue::center::Center;
use crate::sip::endpoint::{self, Controls, Drain};
use crate::sip::peer::Transport;
use crate::sip::transaction::TimerConfig;
use crate::sip::transport::{TlsListen, Transports};
use crate::sip::ua::UserAgent;

/// How often systemd's `STATUS=` line is refreshed.
const STATUS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error("cannot listen for sip: {0}")]
    Sip(std::io::Error),
    #[error("sip tls: {0}")]
    SipTls(#[from] crate::sip::tls::TlsError),
    #[error("agent link identity: {0}")]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error(transparent)]
    DeskCertificate(#[from] DeskCertificateError),
    #[error("cannot serve the agent desk: {0}")]
    Desk(std::io::Error),
    #[error("cannot listen for the admin api: {0}")]
    Admin(std::io::Error),
    #[error("journal: {0}")]
    Journal(crate::journal::writer::OpenError),
    #[error("journal sink {0}: {1}")]
    Sink(String, String),
    #[error("recordings: {0}")]
    Recordings(String),
}

/// Where recordings go and the task that ships them, when `[recording] public_key` is set.
/// Recordings a stop left unfinished are kept first (what was sealed of them).
fn start_recordings(
    c: &crate::config::Config,
    run: &str,
    ops: &Ops,
    stop: &CancellationToken,
) -> Result<Option<Arc<crate::recording::store::RecordingStore>>, StartError> {
    use crate::recording::{store, upload};
    let Some(key) = &c.recording.public_key else {
        return Ok(None);
    };
    let fail = |what: String| {
        stop.cancel();
        StartError::Recordings(what)
    };
    // Validated with the config.
    let recipient = key.parse().map_err(|e| fail(format!("public_key: {e}")))?;
    let dir = c.recording_dir();
    match store::recover_unfinished(&dir) {
        Ok(names) => {
            for name in names {
                tracing::warn!(%name, "recording cut short by the gateway's stop: kept up to its last sealed part");
            }
        }
        Err(e) => return Err(fail(format!("{}: {e}", dir.display()))),
    }
    let store = Arc::new(store::RecordingStore::new(dir.clone(), recipient, run));
    let sinks = upload::ObjectSink::from_config(&c.journal.sinks, &c.base_dir).map_err(fail)?;
    let uploader = upload::Uploader {
        dir,
        sinks,
        retention: std::time::Duration::from_secs(c.recording.retention_hours * 3600),
        finished: store.finished.clone(),
        counters: ops.recording_upload_counters(),
    };
    tokio::spawn(uploader.run(stop.child_token()));
    Ok(Some(store))
}

/// A running gateway.
pub struct Daemon {
    /// Every call's and agent's events; subscribe before placing calls to see them all.
    pub bus: Bus,
    /// The SIP sockets as bound (port 0 in the config replaced by the real port).
    pub sip: Vec<(Transport, SocketAddr)>,
    /// The agent link's QUIC address.
    pub quic: SocketAddr,
    /// What agents pin to trust the agent link.
    pub fingerprint: Fingerprint,
    /// The admin API (`trunkgate ctl`) and the separate metrics listener, if any.
    pub admin: SocketAddr,
    pub metrics: Option<SocketAddr>,
    stop: CancellationToken,
    drain: CancellationToken,
    drain_timeout: std::time::Duration,
    ops: Arc<Ops>,
    admin_requests: mpsc::UnboundedReceiver<AdminRequest>,
    hearts: Vec<Heartbeat>,
    reloader: reload::Reloader,
    signalling: JoinHandle<()>,
    log: JoinHandle<()>,
    center: JoinHandle<()>,
    /// The contact center's input, for the admin API's requests about calls.
    center_input: mpsc::UnboundedSender<crate::queue::center::shell::CallInput>,
    journal: JournalThread,
}

impl Daemon {
    /// Binds every socket and starts every task; fails (nothing left running) if a socket,
    /// a prompt or the agent link's identity cannot be had.
    /// `logging`: where the event log goes (journald gets each call's fields) and the level a reload sets.
    pub async fn start(config: Config, logging: Logging) -> Result<Daemon, StartError> {
        let loaded = Loaded::new(config)?;
        tracing::info!(prompts = loaded.prompts.len(), "prompts loaded");
        let config = loaded.shared();
        let current = config.load_full();
        let c = &current.config;
        let stop = CancellationToken::new();
        let bus = Bus::new();
        let (ops, admin_requests) = Ops::new(
            Tally::new(c),
            crate::ops::wallboard::Wallboard::new(c),
            bus.clone(),
        );
        tokio::spawn(admin::follow(
            ops.clone(),
            bus.follow(admin::FEED),
            stop.child_token(),
        ));
        tokio::spawn(heap::give_back_free_space(stop.child_token()));
        // Before anything can publish: the journal must see every event.
        let run = format!("{:08x}", rand::random::<u32>());
        let (service_levels, levels) = watch::channel(c.service_levels());
        let journal = JournalThread::start(
            &c.journal_dir(),
            &c.journal,
            levels,
            &run,
            bus.follow("journal"),
            ops.journal_counters(),
        )
        .map_err(|e| {
            stop.cancel();
            StartError::Journal(e)
        })?;
        for (sink, (name, acked)) in c.journal.sinks.iter().zip(&journal.sink_acked) {
            let target = Sink::from_config(sink, &c.base_dir).map_err(|e| {
                stop.cancel();
                StartError::Sink(name.clone(), e)
            })?;
            let shipper = Shipper {
                name: name.clone(),
                journal_dir: journal.dir.clone(),
                journal: journal.journal,
                sink: target,
                limits: BatchLimits {
                    records: sink.batch_records,
                    age: sink.batch_age(),
                },
                batch_bytes: sink.batch_bytes,
                progress: journal.progress.clone(),
                acked: acked.clone(),
                counters: ops.sink_counters(),
            };
            tokio::spawn(shipper.run(stop.child_token()));
        }
        let listeners = admin::listen(ops.clone(), c.ops.admin, c.ops.metrics, &stop)
            .await
            .map_err(|e| {
                stop.cancel();
                StartError::Admin(e)
            })?;
        let hearts = vec![
            Heartbeat::new("sip"),
            Heartbeat::new("center"),
            Heartbeat::new("agent link"),
        ];
        let (reloads_tx, reloads) = mpsc::unbounded_channel();
        // Incoming and outgoing calls draw their references from one number space.
        let call_ids = crate::sip::ua::CallIds::default();
        let (places_tx, places) = mpsc::unbounded_channel();
        let outbound = Outbound {
            call_ids: call_ids.clone(),
            places: places_tx,
        };
        let agents = AgentLink::start(&config, reloads, outbound, &bus, &ops, &hearts[1..], &stop)
            .inspect_err(|_| stop.cancel())?;
        if let Some(addr) = c.agents.desk_listen {
            let desk = Arc::new(Desk {
                quic_port: c.agents.desk_public_port.unwrap_or(agents.quic.port()),
                certificates: agents.desk.clone(),
            });
            let scheme = if agents.page_tls.is_some() {
                "https"
            } else {
                "http"
            };
            let page = desk::listen(addr, desk, agents.page_tls.clone(), stop.child_token())
                .await
                .map_err(|e| {
                    stop.cancel();
                    StartError::Desk(e)
                })?;
            tracing::info!(url = %format!("{scheme}://{page}/"), "agent desk: page served");
        }
        let (inbound_tx, inbound_rx) = mpsc::channel(4096);
        let tls = match c.sip_tls() {
            Ok(tls) => tls.map(|server| TlsListen {
                addrs: c.sip.tls.clone(),
                server: Arc::new(ArcSwap::from_pointee(server)),
            }),
            Err(e) => {
                stop.cancel();
                return Err(e.into());
            }
        };
        let bound = Transports::bind(
            &c.sip.udp,
            &c.sip.tcp,
            tls,
            c.sip.public_address,
            c.sip.user_agent.clone(),
            inbound_tx,
        )
        .await;
        let (transports, sip) = match bound {
            Ok(b) => b,
            Err(e) => {
                // The agent link's tasks are running already.
                stop.cancel();
                return Err(StartError::Sip(e));
            }
        };
        let structured = logging.sink == LogSink::Journald;
        let log = tokio::spawn(events::log::run(
            bus.clone(),
            structured,
            stop.child_token(),
        ));
        let mut ua = UserAgent::new(
            TimerConfig::default(),
            c.sip.user_agent.clone(),
            c.trunks.clone(),
            // The SIP core draws no entropy itself: its tags and branches come from this.
            rand::SeedableRng::from_entropy(),
        );
        ua.set_guard(c.sip.guard());
        let (expires, min_se) = c.sip.session_timers();
        ua.set_session_timers(expires, min_se);
        ua.set_call_ids(call_ids.clone());
        let center_input = agents.calls.clone();
        let mut calls = CallContext::new(
            config.clone(),
            agents.calls,
            bus.clone(),
            ops.frame_work(),
            stop.child_token(),
        );
        calls.proxies_down = Some(ops.proxies_down());
        calls.recordings = start_recordings(c, &run, &ops, &stop)?;
        let calls = Arc::new(calls);
        let drain = CancellationToken::new();
        let spans =
            crate::isdn::calls::start(&c.e1, calls.clone(), call_ids, drain.clone(), &ops, &stop);
        // Set once, here, before any agent can dial.
        let _ = calls.spans.set(spans);
        let drain_timeout = c.ops.drain_timeout();
        let (trunks_tx, trunks) = watch::channel(c.trunks.clone());
        let reloader = reload::Reloader {
            config: config.clone(),
            trunks: trunks_tx,
            center: reloads_tx,
            service_levels,
            ops: ops.clone(),
            agent_link: reload::AgentLinkIdentity::new(
                agents.endpoint.clone(),
                agents.fingerprint,
                agents.desk.clone(),
            ),
            logging,
            sip: transports.clone(),
        };
        let transports_for_calls = transports.clone();
        let signalling = tokio::spawn(endpoint::run(
            ua,
            transports,
            inbound_rx,
            Spawner {
                ctx: calls,
                places: Some(places),
                transports: transports_for_calls,
            },
            Controls {
                trunks,
                drain: Drain {
                    started: drain.clone(),
                    retry_after: drain_timeout.max(std::time::Duration::from_secs(60)),
                },
                heart: hearts[0].clone(),
                counters: ops.sip_counters(),
                registrations: ops.registrations_feed(),
                bans: ops.bans_feed(),
                config: config.clone(),
                shutdown: stop.child_token(),
            },
        ));
        Ok(Daemon {
            bus,
            sip,
            quic: agents.quic,
            fingerprint: agents.fingerprint,
            admin: listeners.admin,
            metrics: listeners.metrics,
            stop,
            drain,
            drain_timeout,
            ops,
            admin_requests,
            hearts,
            reloader,
            signalling,
            log,
            center: agents.center,
            center_input,
            journal,
        })
    }

    /// What operators and test harnesses read the real ports from.
    pub fn listening(&self) -> String {
        let mut parts: Vec<String> = self
            .sip
            .iter()
            .map(|(t, a)| format!("{}={a}", t.via_token().to_lowercase()))
            .collect();
        parts.push(format!("quic={}", self.quic));
        parts.push(format!("admin={}", self.admin));
        if let Some(metrics) = self.metrics {
            parts.push(format!("metrics={metrics}"));
        }
        parts.push(format!("fingerprint={}", self.fingerprint));
        parts.join(" ")
    }

    /// Runs until told to stop. SIGTERM, SIGINT or `POST /v1/drain` start a drain: new calls
    /// get 503, calls in progress finish (waiting callers stay queued, agents keep answering)
    /// for up to `[ops] drain_timeout_ms`, then whatever is left is hung up. A second signal, or
    /// `POST /v1/drain?now`, hangs up at once.
    pub async fn run(mut self) -> std::io::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let notifier = Arc::new(Notifier::from_env());
        // Every listener is bound: systemd may consider the gateway started.
        notifier.send(&format!("READY=1\nSTATUS={}", self.ops.status()));
        if let Some(interval) = Notifier::watchdog_interval() {
            // Its own thread and runtime: a loop stuck on a worker thread must not be able to
            // hold up the task that notices it (a task woken by the stuck one can sit in that
            // worker's LIFO slot, where no other worker steals it).
            let watchdog = notify::watchdog(
                notifier.clone(),
                interval,
                self.hearts.clone(),
                self.stop.child_token(),
            );
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()?;
            std::thread::Builder::new()
                .name("watchdog".into())
                .spawn(move || runtime.block_on(watchdog))?;
        }
        let mut status = tokio::time::interval(STATUS_EVERY);
        let mut calls = self.ops.calls_active();
        // A second receiver to read from while `calls` is being waited on.
        let count = self.ops.calls_active();
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let asked = tokio::select! {
                _ = status.tick() => {
                    notifier.send(&format!("STATUS={}", self.ops.status()));
                    continue;
                }
                _ = term.recv() => AdminRequest::Graceful,
                _ = int.recv() => AdminRequest::Graceful,
                _ = hup.recv() => {
                    let _ = self.reload(&notifier);
                    continue;
                }
                Some(asked) = self.admin_requests.recv() => asked,
                _ = calls.wait_for(|n| *n == 0), if deadline.is_some() => {
                    tracing::info!("drained: no calls left");
                    break;
                }
                _ = sleep_until(deadline) => {
                    let left = *count.borrow();
                    tracing::info!(calls = left, "drain timeout: hanging up the calls left");
                    break;
                }
            };
            match (asked, deadline) {
                (AdminRequest::Reload(reply), _) => {
                    let _ = reply.send(self.reload(&notifier));
                }
                (AdminRequest::RenewDeskCertificate(reply), _) => {
                    let _ = reply.send(self.reloader.renew_desk_certificate());
                }
                (
                    AdminRequest::Recording {
                        call,
                        action,
                        reply,
                    },
                    _,
                ) => {
                    let _ = self.center_input.send(
                        crate::queue::center::shell::CallInput::AdminRecording {
                            call,
                            action,
                            reply,
                        },
                    );
                }
                (AdminRequest::Now, _) | (AdminRequest::Graceful, Some(_)) => {
                    notifier.send("STOPPING=1");
                    tracing::info!(
                        calls = *count.borrow(),
                        "stopping now: hanging up every call"
                    );
                    break;
                }
                (AdminRequest::Graceful, None) => {
                    self.ops.caught_up().await;
                    // Not ready before the line says so: whoever reads it may ask /readyz.
                    self.ops.set_draining();
                    tracing::info!(
                        calls = *count.borrow(),
                        timeout_s = self.drain_timeout.as_secs(),
                        "draining: calls in progress may finish"
                    );
                    self.drain.cancel();
                    notifier.send(&format!(
                        "STOPPING=1\nSTATUS=draining: {} calls in progress",
                        *count.borrow()
                    ));
                    deadline = Some(tokio::time::Instant::now() + self.drain_timeout);
                }
            }
        }
        self.stop().await;
        Ok(())
    }

    /// Reads the config file again (see [`reload`]), telling systemd while it does.
    fn reload(&self, notifier: &Notifier) -> Result<String, String> {
        notifier.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}",
            notify::monotonic_usec()
        ));
        let result = self.reloader.reload();
        match &result {
            Ok(summary) => tracing::info!("{}", summary.trim_end()),
            Err(problems) => tracing::error!(
                "config reload refused, the old config runs on:\n{}",
                problems.trim_end()
            ),
        }
        notifier.send(&format!("READY=1\nSTATUS={}", self.ops.status()));
        result
    }

    /// Hangs up every call, closes every agent connection and waits for signalling and the
    /// event log to finish.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.signalling.await;
        let _ = self.center.await;
        let _ = self.log.await;
        // Last: every call has ended and every agent session too, and published it.
        let journal = self.journal;
        let _ = tokio::task::spawn_blocking(move || journal.finish()).await;
    }
}

/// The QUIC listener for agents and the contact-center task behind it.
struct AgentLink {
    /// Where calls reach the center.
    calls: mpsc::UnboundedSender<CallInput>,
    quic: SocketAddr,
    fingerprint: Fingerprint,
    /// For a reload that brings a new certificate.
    endpoint: quinn::Endpoint,
    /// The certificate browsers accept by its hash (none when one is configured).
    desk: Option<Arc<DeskCertificates>>,
    /// The desk page's HTTPS, with the configured certificate (none without one).
    page_tls: Option<Arc<rustls::ServerConfig>>,
    /// The contact center's task: it ends every agent session when it stops.
    center: JoinHandle<()>,
}

/// What the center needs to let agents place calls.
struct Outbound {
    call_ids: crate::sip::ua::CallIds,
    places: mpsc::UnboundedSender<crate::queue::center::shell::PlaceRequest>,
}

impl AgentLink {
    /// `hearts`: the center's and the agent listener's.
    fn start(
        shared: &SharedConfig,
        reloads: mpsc::UnboundedReceiver<Reconfigure>,
        outbound: Outbound,
        bus: &Bus,
        ops: &Ops,
        hearts: &[Heartbeat],
        stop: &CancellationToken,
    ) -> Result<Self, StartError> {
        let current = shared.load_full();
        let config = &current.config;
        let a = &config.agents;
        let identity = a.identity(&config.base_dir)?;
        if identity.created {
            tracing::info!(fingerprint = %identity.fingerprint, "created a self-signed agent-link certificate: agents pin this fingerprint");
        }
        // Browsers reach the agent endpoint with a short-lived certificate they accept by its
        // hash, even when a certificate is configured: Chromium (156) refuses a chain to a
        // locally installed CA on QUIC although it accepts it for HTTPS, and an organisation's
        // own CA is the usual one. The configured certificate serves the page over HTTPS.
        let desk = Some(Arc::new(DeskCertificates::new(
            SystemTime::now(),
            Vec::new(),
        )?));
        let page_tls = match a.certificate {
            Some(_) => Some(desk::https_config(&identity).map_err(LinkError::from)?),
            None => None,
        };
        let endpoint = link::server_endpoint(&identity, desk.clone(), a.listen)?;
        let quic = endpoint.local_addr().map_err(|source| LinkError::Bind {
            addr: a.listen,
            source,
        })?;
        if let Some(desk) = &desk {
            let current = desk.current();
            tracing::info!(
                url = %format!("https://{quic}/agent"),
                sha256 = %current.hash,
                "agent desk: WebTransport with a certificate browsers accept by its hash"
            );
            tokio::spawn(renew_desk_certificate(desk.clone(), stop.child_token()));
        }
        let media = reload::media_params(config);
        let mut center = Center::new(
            Arc::new(config.queues.clone()),
            a.resume_grace(),
            media,
            rand::SeedableRng::from_entropy(),
        );
        center.set_outbound(
            outbound.call_ids,
            crate::queue::center::outbound::OutboundSettings::from_config(config),
        );
        let usage_file = config
            .base_dir
            .join(&a.state_dir)
            .join("outbound-usage.json");
        if let Some(kept) = center_shell::kept_usage(&usage_file) {
            center.restore_outbound_usage(center_shell::utc_day(), kept);
        }
        let (agents_tx, agents_rx) = mpsc::unbounded_channel();
        let (calls_tx, calls_rx) = mpsc::unbounded_channel();
        let channels = CenterChannels {
            agents: agents_rx,
            calls: calls_rx,
            reloads,
            places: outbound.places,
            usage_file: Some(usage_file),
            wallboard: ops.wallboard_feed(),
        };
        let center = tokio::spawn(center_shell::run(
            center,
            channels,
            bus.clone(),
            hearts[0].clone(),
            stop.child_token(),
        ));
        tokio::spawn(server::serve(
            endpoint.clone(),
            shared.clone(),
            agents_tx,
            ops.link_counters(),
            hearts[1].clone(),
            stop.child_token(),
        ));
        Ok(AgentLink {
            calls: calls_tx,
            quic,
            desk,
            page_tls,
            fingerprint: identity.fingerprint,
            endpoint,
            center,
        })
    }
}

/// Replaces the desk certificate a week before it ends (checked hourly): new browser
/// connections get the new one, connections already up keep theirs.
async fn renew_desk_certificate(desk: Arc<DeskCertificates>, stop: CancellationToken) {
    let mut hourly = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = hourly.tick() => {}
            _ = stop.cancelled() => return,
        }
        match desk.renew_if_due(SystemTime::now()) {
            Ok(Some(fresh)) => tracing::info!(
                sha256 = %fresh.hash,
                "agent desk: certificate renewed; pages fetch the new hash"
            ),
            Ok(None) => {}
            Err(e) => tracing::error!("agent desk: {e}; the current certificate stays"),
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
