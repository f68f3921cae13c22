//! The daemon started inside the test process (the same `Daemon` `trunkgate run` starts), so a
//! test can subscribe to its event bus and read every call's and agent's typed events.
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use trunkgate::daemon::Daemon;
use trunkgate::events::{CallEvent, CallId, Event, EventKind};
use trunkgate::sip::peer::Transport;

/// A daemon on its own tokio runtime; stopped (calls hung up) when dropped.
pub struct InProcess {
    daemon: Option<Daemon>,
    runtime: tokio::runtime::Runtime,
    _dir: TempDir,
}

impl InProcess {
    /// Writes `config_toml_body` to a temporary directory (its base for relative paths) and
    /// starts the daemon on it; panics with the reason if it cannot start.
    pub fn start(config_toml_body: &str) -> InProcess {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("trunkgate.toml");
        std::fs::write(&path, config_toml_body).expect("the config file is written");
        let config = trunkgate::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let daemon = runtime
            .block_on(Daemon::start(config, trunkgate::ops::Logging::default()))
            .unwrap_or_else(|e| panic!("the daemon did not start: {e}"));
        InProcess {
            daemon: Some(daemon),
            runtime,
            _dir: dir,
        }
    }

    pub fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().expect("running until dropped")
    }

    pub fn sip_udp(&self) -> SocketAddr {
        let found = self.daemon().sip.iter().find(|(t, _)| *t == Transport::Udp);
        found.expect("the config listens on udp").1
    }

    /// Every event published from now on, read as it comes (a lossless feed).
    pub fn record(&self) -> Recorder {
        let recorder = Recorder::default();
        let mut feed = self.daemon().bus.follow("test recorder");
        let store = recorder.0.clone();
        self.runtime.spawn(async move {
            while let Some(event) = feed.recv().await {
                let (events, changed) = &*store;
                events.lock().unwrap().push(event);
                changed.notify_all();
            }
        });
        recorder
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(daemon) = self.daemon.take() {
            let stopped = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), daemon.stop()).await
            });
            if stopped.is_err() && !std::thread::panicking() {
                panic!("the daemon did not stop within 10 s");
            }
        }
    }
}

/// The events a lossless feed brought, in order.
#[derive(Clone, Default)]
pub struct Recorder(Arc<(Mutex<Vec<Arc<Event>>>, Condvar)>);

impl Recorder {
    pub fn events(&self) -> Vec<Arc<Event>> {
        self.0 .0.lock().unwrap().clone()
    }

    /// The first event (from the start) that satisfies `matches`, waiting up to `limit`.
    pub fn wait_for(
        &self,
        limit: Duration,
        mut matches: impl FnMut(&EventKind) -> bool,
    ) -> Option<Arc<Event>> {
        let deadline = Instant::now() + limit;
        let (events, changed) = &*self.0;
        let mut guard = events.lock().unwrap();
        loop {
            if let Some(e) = guard.iter().find(|e| matches(&e.what)) {
                return Some(e.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            guard = changed.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }

    /// Like [`Recorder::wait_for`], but panics with every event recorded if none matches.
    pub fn expect(
        &self,
        what: &str,
        limit: Duration,
        matches: impl FnMut(&EventKind) -> bool,
    ) -> Arc<Event> {
        self.wait_for(limit, matches)
            .unwrap_or_else(|| panic!("no event {what} within {limit:?}:\n{}", self.dump()))
    }

    /// The events of one call, in order.
    pub fn of_call(&self, id: CallId) -> Vec<CallEvent> {
        self.events()
            .iter()
            .filter_map(|e| match &e.what {
                EventKind::Call { call, event } if *call == id => Some(event.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn dump(&self) -> String {
        self.events()
            .iter()
            .map(|e| format!("{:?}", e.what))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
