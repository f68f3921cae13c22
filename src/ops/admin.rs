//! The admin API and the metrics endpoint, answered from the [`Tally`] the event bus keeps.
//!
//! | route | answer |
//! |---|---|
//! | `GET /healthz` | 200 while the process serves |
//! | `GET /readyz` | 200 when it takes calls |
//! | `GET /metrics` | Prometheus text exposition |
//! | `GET /v1/calls`, `/v1/agents`, `/v1/queues` | JSON arrays (admin listener only) |
//! | `GET /v1/wallboard` | every queue's wallboard figures, as supervisors get them (admin listener only) |
//! | `POST /v1/drain` (`?now` to end calls at once) | starts a drain (admin listener only) |
//! | `POST /v1/calls/N/recording?action=start\|pause\|resume` | the call's recording (admin listener only; 409 with the reason when refused) |
use crate::sip::guard::BanView;
use crate::sip::ua::register::RegistrationView;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::http::{self, Request, Response};
use super::tally::Tally;
use super::wallboard::Wallboard;
use crate::agent::protocol::from_gateway::QueueBoard;
use crate::call::core::RecordingAction;
use crate::events::{Bus, LosslessFeed};

/// What the admin API (and the signals) ask of the daemon.
#[derive(Debug)]
pub enum AdminRequest {
    /// Drain: stop taking calls; let the ones in progress finish (up to the drain timeout).
    Graceful,
    /// End every call now and stop.
    Now,
    /// Read the config file again; the answer says what changed or why nothing did.
    Reload(tokio::sync::oneshot::Sender<Result<String, String>>),
    /// Replace the agent desk's certificate now (a key thought exposed, or a test).
    RenewDeskCertificate(tokio::sync::oneshot::Sender<Result<String, String>>),
    /// Start, pause or resume a call's recording.
    Recording {
        call: crate::events::CallId,
        action: crate::call::core::RecordingAction,
        reply: tokio::sync::oneshot::Sender<Result<String, String>>,
    },
}

/// What the admin handlers read and ask.
pub struct Ops {
    tally: Mutex<Tally>,
    wallboard: Mutex<Wallboard>,
    /// The wallboard as last published, for the center to push to supervisors.
    boards: watch::Sender<Vec<QueueBoard>>,
    bus: Bus,
    draining: AtomicBool,
    requests: mpsc::UnboundedSender<AdminRequest>,
    calls: watch::Sender<usize>,
    /// Events the tally has handled, to wait on in [`Ops::caught_up`].
    handled: watch::Sender<u64>,
    registrations: watch::Sender<Vec<RegistrationView>>,
    bans: watch::Sender<Vec<BanView>>,
    spans: watch::Sender<Vec<crate::isdn::view::SpanView>>,
}

impl Ops {
    /// The ops state, and where its drain requests arrive.
    pub fn new(
        tally: Tally,
        wallboard: Wallboard,
        bus: Bus,
    ) -> (Arc<Ops>, mpsc::UnboundedReceiver<AdminRequest>) {
        let (requests, received) = mpsc::unbounded_channel();
        let ops = Arc::new(Ops {
            tally: Mutex::new(tally),
            wallboard: Mutex::new(wallboard),
            boards: watch::Sender::new(Vec::new()),
            bus,
            draining: AtomicBool::new(false),
            requests,
            calls: watch::Sender::new(0),
            handled: watch::Sender::new(0),
            registrations: watch::Sender::new(Vec::new()),
            bans: watch::Sender::new(Vec::new()),
            spans: watch::Sender::new(Vec::new()),
        });
        (ops, received)
    }

    /// Waits (a second at most) until the tally has handled every event published so far, so
    /// that a count read next includes the call that began a moment ago: a drain that read 0
    /// there would stop at once and cut that call off.
    pub async fn caught_up(&self) {
        let Some(published) = self
            .bus
            .stats()
            .into_iter()
            .find(|feed| feed.name == FEED)
            .map(|feed| feed.delivered)
        else {
            return;
        };
        let mut handled = self.handled.subscribe();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            handled.wait_for(|n| *n >= published),
        )
        .await;
    }

    /// From now on `/readyz` says no.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// One line for systemd's `STATUS=`: what the gateway carries now.
    pub fn status(&self) -> String {
        let now = SystemTime::now();
        let tally = self.tally();
        let waiting: usize = tally.queues(now).iter().map(|q| q.waiting).sum();
        let agents = tally.agents(now).len();
        format!(
            "{} calls, {waiting} callers waiting, {agents} agents logged in",
            tally.active_calls()
        )
    }

    /// The signalling loop's counters (they live in the same registry).
    pub fn sip_counters(&self) -> crate::sip::endpoint::SipCounters {
        self.tally().metrics().sip.clone()
    }

    /// The agent link's counters.
    pub fn link_counters(&self) -> crate::agent::link::LinkCounters {
        self.tally().metrics().agent_link.clone()
    }

    /// The journal's counters.
    pub fn journal_counters(&self) -> crate::journal::shell::JournalCounters {
        self.tally().metrics().journal.clone()
    }

    /// The recordings uploader's counters.
    pub fn recording_upload_counters(&self) -> crate::recording::upload::UploadCounters {
        self.tally().metrics().recording_uploads.clone()
    }

    /// The journal sinks' counters.
    pub fn sink_counters(&self) -> crate::journal::ship::SinkCounters {
        self.tally().metrics().sinks.clone()
    }

    /// The histogram each call's task times its frames into.
    pub fn frame_work(&self) -> prometheus::Histogram {
        self.tally().metrics().frame_work_seconds.clone()
    }

    /// A trunk's proxies down, set by the task that probes them.
    pub fn proxies_down(&self) -> prometheus::IntGaugeVec {
        self.tally().metrics().proxies_down.clone()
    }

    /// Calls in progress, as the bus tells them.
    pub fn calls_active(&self) -> watch::Receiver<usize> {
        self.calls.subscribe()
    }

    /// Where the signalling task shows the trunks' registrations.
    pub fn registrations_feed(&self) -> watch::Sender<Vec<RegistrationView>> {
        self.registrations.clone()
    }

    /// Where the E1 spans' tasks show their D-channels, B-channels and calls.
    pub fn spans_feed(&self) -> watch::Sender<Vec<crate::isdn::view::SpanView>> {
        self.spans.clone()
    }

    /// The E1 spans' metrics.
    pub fn span_counters(&self) -> crate::isdn::view::SpanCounters {
        self.tally().metrics().spans.clone()
    }

    /// Where the signalling task shows the scanner defence's bans.
    pub fn bans_feed(&self) -> watch::Sender<Vec<BanView>> {
        self.bans.clone()
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        // A panic in a handler leaves counts that are still counts: keep serving them.
        self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn metrics_text(&self) -> String {
        let dropped: Vec<(String, u64)> = self
            .bus
            .stats()
            .into_iter()
            .filter(|s| !s.lossless)
            .map(|s| (s.name, s.dropped))
            .collect();
        let tally = self.tally();
        tally.refresh(SystemTime::now(), &dropped);
        tally.metrics().encode()
    }

    /// Every queue's wallboard now.
    pub fn wallboard(&self, now: SystemTime) -> Vec<QueueBoard> {
        self.wallboard
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .view(now)
    }

    /// The wallboard whenever a figure changes.
    pub fn wallboard_feed(&self) -> watch::Receiver<Vec<QueueBoard>> {
        self.boards.subscribe()
    }

    fn publish_wallboard(&self) {
        let view = self.wallboard(SystemTime::now());
        self.boards.send_if_modified(|old| {
            let changed = *old != view;
            if changed {
                *old = view;
            }
            changed
        });
    }

    /// A config reload: the tally's queues and agents.
    pub fn reconfigure(&self, config: &crate::config::Config) {
        self.tally().reconfigure(config);
        self.wallboard
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reconfigure(config);
    }

    /// Asks the daemon (`make` wraps the reply channel) and answers with what it says; what it
    /// refuses gets `refused` (422 for a config with problems, 409 for a request about a call
    /// that cannot be carried out), with the reason.
    async fn ask(
        &self,
        refused: u16,
        make: impl FnOnce(tokio::sync::oneshot::Sender<Result<String, String>>) -> AdminRequest,
    ) -> Response {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.requests.send(make(tx)).is_err() {
            return Response::text(503, "the gateway is stopping\n");
        }
        match rx.await {
            Ok(Ok(summary)) => Response::text(200, summary),
            Ok(Err(why)) => {
                tracing::info!(reason = %why.trim_end(), "admin request refused");
                let why = if why.ends_with('\n') {
                    why
                } else {
                    format!("{why}\n")
                };
                Response::text(refused, why)
            }
            Err(_) => Response::text(503, "the gateway is stopping\n"),
        }
    }

    async fn route(&self, request: Request, admin: bool) -> Response {
        if admin && request.path == "/v1/reload" {
            return match request.method.as_str() {
                "POST" => self.ask(422, AdminRequest::Reload).await,
                _ => Response::text(405, "use POST\n"),
            };
        }
        if let Some(call) = admin.then(|| recording_call(&request.path)).flatten() {
            if request.method != "POST" {
                return Response::text(405, "use POST\n");
            }
            let action = match request.query.as_deref() {
                Some("action=start") => RecordingAction::Start,
                Some("action=pause") => RecordingAction::Pause,
                Some("action=resume") => RecordingAction::Resume,
                _ => return Response::text(400, "?action=start|pause|resume\n"),
            };
            return self
                .ask(409, |reply| AdminRequest::Recording {
                    call,
                    action,
                    reply,
                })
                .await;
        }
        if admin && request.path == "/v1/drain" && request.method == "POST" {
            self.caught_up().await;
        }
        if admin && request.path == "/v1/desk/renew" {
            return match request.method.as_str() {
                "POST" => self.ask(422, AdminRequest::RenewDeskCertificate).await,
                _ => Response::text(405, "use POST\n"),
            };
        }
        self.answer(&request, admin)
    }

    fn answer(&self, request: &Request, admin: bool) -> Response {
        let get = request.method == "GET";
        let now = SystemTime::now();
        let json = |value: serde_json::Result<String>| match value {
            Ok(body) => Response::json(body),
            Err(e) => Response::text(500, format!("{e}\n")),
        };
        match request.path.as_str() {
            "/healthz" | "/readyz" | "/metrics" | "/v1/calls" | "/v1/agents" | "/v1/queues"
            | "/v1/trunks" | "/v1/bans" | "/v1/wallboard" | "/v1/spans"
                if !get =>
            {
                Response::text(405, "use GET\n")
            }
            "/v1/drain" if admin && get => Response::text(405, "use POST\n"),
            "/v1/drain" if admin => {
                let now = request
                    .query
                    .as_deref()
                    .is_some_and(|q| q.split('&').any(|p| p == "now"));
                let ask = if now {
                    AdminRequest::Now
                } else {
                    AdminRequest::Graceful
                };
                let calls = *self.calls.borrow();
                match self.requests.send(ask) {
                    Ok(()) if now => Response::text(200, format!("ending {calls} calls now\n")),
                    Ok(()) => Response::text(200, format!("draining: {calls} calls in progress\n")),
                    Err(_) => Response::text(503, "the gateway is stopping\n"),
                }
            }
            #[cfg(debug_assertions)]
            "/debug/stall" if admin && !get => debug_stall(request),
            "/healthz" => Response::text(200, "ok\n"),
            "/readyz" if self.draining.load(Ordering::Relaxed) => Response::text(503, "draining\n"),
            "/readyz" => Response::text(200, "ready\n"),
            "/metrics" => Response {
                status: 200,
                content_type: "text/plain; version=0.0.4",
                body: self.metrics_text(),
            },
            "/v1/calls" if admin => json(serde_json::to_string(&self.tally().calls(now))),
            "/v1/wallboard" if admin => json(serde_json::to_string(&self.wallboard(now))),
            "/v1/agents" if admin => json(serde_json::to_string(&self.tally().agents(now))),
            "/v1/queues" if admin => json(serde_json::to_string(&self.tally().queues(now))),
            "/v1/trunks" if admin => json(serde_json::to_string(&*self.registrations.borrow())),
            "/v1/bans" if admin => json(serde_json::to_string(&*self.bans.borrow())),
            "/v1/spans" if admin => json(serde_json::to_string(&*self.spans.borrow())),
            _ => Response::text(404, "not found\n"),
        }
    }
}

/// `/v1/calls/N/recording` → N.
fn recording_call(path: &str) -> Option<crate::events::CallId> {
    path.strip_prefix("/v1/calls/")?
        .strip_suffix("/recording")?
        .parse()
        .ok()
}

/// Debug builds: `POST /debug/stall?loop=sip&ms=3000` (see [`super::notify::stall`]).
#[cfg(debug_assertions)]
fn debug_stall(request: &Request) -> Response {
    let query = request.query.as_deref().unwrap_or("");
    let value = |key: &str| {
        query
            .split('&')
            .find_map(|p| p.strip_prefix(key)?.strip_prefix('='))
    };
    let (Some(name), Some(Ok(ms))) = (value("loop"), value("ms").map(str::parse::<u64>)) else {
        return Response::text(400, "need loop=NAME&ms=N\n");
    };
    let name = name.replace("%20", " ");
    super::notify::stall::request(&name, std::time::Duration::from_millis(ms));
    Response::text(
        200,
        format!("{name} stalls for {ms} ms at its next heartbeat\n"),
    )
}

/// The name of the bus feed [`follow`] reads.
pub const FEED: &str = "ops";

/// Follows the bus into the tally until `stop`. Lossless: the tally is cheap to update, and a
/// dropped `Ended` would leave a call "active" forever.
pub async fn follow(ops: Arc<Ops>, mut feed: LosslessFeed, stop: CancellationToken) {
    // Waits grow by the second with nothing happening: the wallboard is looked at as often.
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            event = feed.recv() => match event {
                Some(event) => {
                    let active = {
                        let mut tally = ops.tally();
                        tally.handle(&event);
                        tally.active_calls()
                    };
                    ops.wallboard
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .handle(&event);
                    ops.calls.send_if_modified(|n| std::mem::replace(n, active) != active);
                    ops.handled.send_modify(|n| *n += 1);
                    ops.publish_wallboard();
                }
                None => return,
            },
            _ = tick.tick() => ops.publish_wallboard(),
            _ = stop.cancelled() => return,
        }
    }
}

/// The admin listener and, if separate, the metrics listener: bound now, served until `stop`.
pub struct Listeners {
    pub admin: SocketAddr,
    pub metrics: Option<SocketAddr>,
}

pub async fn listen(
    ops: Arc<Ops>,
    admin: SocketAddr,
    metrics: Option<SocketAddr>,
    stop: &CancellationToken,
) -> std::io::Result<Listeners> {
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("{addr}: {e}")))
    };
    let admin_listener = bind(admin).await?;
    let admin = admin_listener.local_addr()?;
    let metrics_listener = match metrics.filter(|m| *m != admin) {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let metrics = match &metrics_listener {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    let serve = |listener, admin: bool| {
        let ops = ops.clone();
        let handler: http::Handler = Arc::new(move |r: Request| {
            let ops = ops.clone();
            Box::pin(async move { ops.route(r, admin).await })
        });
        tokio::spawn(http::serve(listener, None, handler, stop.child_token()));
    };
    serve(admin_listener, true);
    if let Some(l) = metrics_listener {
        serve(l, false);
    }
    Ok(Listeners { admin, metrics })
}
