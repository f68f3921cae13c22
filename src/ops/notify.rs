//! systemd's notify protocol (sd_notify(3)) and the watchdog: `READY=1` once every listener is
//! bound, `STATUS=` with what the gateway carries, `STOPPING=1` when a drain starts, and
//! `WATCHDOG=1` only while the loops that matter keep turning.
//!
//! A loop proves it turns by bumping its [`Heartbeat`] from a periodic tick inside its own
//! `select!`: a loop stuck in a handler stops bumping, the watchdog stops pinging, and systemd
//! restarts the service after `WatchdogSec`.
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often a loop proves it turns; well under any sensible `WatchdogSec`.
pub const HEARTBEAT: Duration = Duration::from_millis(500);

/// Where notifications go: `$NOTIFY_SOCKET`, or nowhere when not run by systemd.
pub struct Notifier {
    socket: Option<(UnixDatagram, Target)>,
}

enum Target {
    Path(PathBuf),
    Abstract(Vec<u8>),
}

impl Notifier {
    pub fn from_env() -> Notifier {
        let target = std::env::var_os("NOTIFY_SOCKET").map(|s| {
            let bytes = std::os::unix::ffi::OsStrExt::as_bytes(s.as_os_str()).to_vec();
            match bytes.strip_prefix(b"@") {
                Some(name) => Target::Abstract(name.to_vec()),
                None => Target::Path(PathBuf::from(s)),
            }
        });
        let socket = target.and_then(|t| UnixDatagram::unbound().ok().map(|s| (s, t)));
        Notifier { socket }
    }

    /// Sends `state` (e.g. `READY=1`); a notification that cannot be sent is logged and dropped:
    /// systemd's absence must not stop the gateway.
    pub fn send(&self, state: &str) {
        let Some((socket, target)) = &self.socket else {
            return;
        };
        let sent = match target {
            Target::Path(path) => socket.send_to(state.as_bytes(), path),
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name)
                    .and_then(|addr| socket.send_to_addr(state.as_bytes(), &addr))
            }
        };
        if let Err(e) = sent {
            tracing::debug!(error = %e, state, "sd_notify failed");
        }
    }

    /// Half of `$WATCHDOG_USEC` (systemd's advice) when the watchdog is on for this process.
    pub fn watchdog_interval() -> Option<Duration> {
        let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
        if let Ok(pid) = std::env::var("WATCHDOG_PID") {
            if pid.parse::<u32>().ok()? != std::process::id() {
                return None;
            }
        }
        (usec > 0).then(|| Duration::from_micros(usec / 2))
    }
}

/// `CLOCK_MONOTONIC` in microseconds, for `RELOADING=1`'s `MONOTONIC_USEC=`.
pub fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we own; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// A loop's proof of life: a counter it bumps every [`HEARTBEAT`].
#[derive(Clone)]
pub struct Heartbeat {
    name: &'static str,
    beats: Arc<AtomicU64>,
}

impl Heartbeat {
    pub fn new(name: &'static str) -> Heartbeat {
        Heartbeat {
            name,
            beats: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Called from the loop's own periodic tick.
    pub fn beat(&self) {
        self.beats.fetch_add(1, Ordering::Relaxed);
        #[cfg(debug_assertions)]
        stall::take(self.name);
    }

    fn count(&self) -> u64 {
        self.beats.load(Ordering::Relaxed)
    }
}

/// Debug builds only: `POST /debug/stall?loop=NAME&ms=N` on the admin API blocks that loop for
/// `N` ms at its next heartbeat, so tests can see the watchdog stop pinging for a stuck loop.
#[cfg(debug_assertions)]
pub mod stall {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Duration;

    static PENDING: Mutex<Option<HashMap<String, Duration>>> = Mutex::new(None);

    pub fn request(name: &str, how_long: Duration) {
        let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        pending
            .get_or_insert_with(HashMap::new)
            .insert(name.to_string(), how_long);
    }

    pub(super) fn take(name: &str) {
        let stall = {
            let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
            pending.as_mut().and_then(|p| p.remove(name))
        };
        if let Some(how_long) = stall {
            tracing::warn!(
                loop_name = name,
                ms = how_long.as_millis() as u64,
                "debug: stalling"
            );
            // Blocking the loop's own thread is the point: a loop stuck in a handler.
            std::thread::sleep(how_long);
        }
    }
}

/// Pings `WATCHDOG=1` every `interval` while every heartbeat moved since the last look; a loop
/// that stopped is named in the log once, and the pings resume when it moves again.
pub async fn watchdog(
    notifier: Arc<Notifier>,
    interval: Duration,
    hearts: Vec<Heartbeat>,
    stop: CancellationToken,
) {
    let mut last: Vec<u64> = hearts.iter().map(Heartbeat::count).collect();
    let mut stuck: Option<&'static str> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.cancelled() => return,
        }
        let now: Vec<u64> = hearts.iter().map(Heartbeat::count).collect();
        let still = hearts
            .iter()
            .zip(last.iter().zip(&now))
            .find(|(_, (before, after))| before == after)
            .map(|(h, _)| h.name);
        last = now;
        match still {
            None => {
                if let Some(name) = stuck.take() {
                    tracing::warn!(loop_name = name, "loop turns again: watchdog pings resume");
                }
                notifier.send("WATCHDOG=1");
            }
            Some(name) => {
                if stuck.is_none() {
                    tracing::error!(
                        loop_name = name,
                        "loop stopped turning: no watchdog ping (systemd restarts the gateway \
                         after WatchdogSec)"
                    );
                }
                stuck = Some(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pings_stop_while_a_heart_stands_still_and_resume_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path).unwrap();
        receiver.set_nonblocking(true).unwrap();
        let notifier = Arc::new(Notifier {
            socket: Some((UnixDatagram::unbound().unwrap(), Target::Path(path))),
        });
        let (sip, center) = (Heartbeat::new("sip"), Heartbeat::new("center"));
        let stop = CancellationToken::new();
        let interval = Duration::from_secs(1);
        let task = tokio::spawn(watchdog(
            notifier,
            interval,
            vec![sip.clone(), center.clone()],
            stop.clone(),
        ));
        // Beat half-way between the watchdog's looks, and read its ping half-way after.
        tokio::time::sleep(interval / 2).await;
        let mut pings = Vec::new();
        for second in 0..6 {
            sip.beat();
            // The center is stuck during seconds 2 and 3.
            if !(2..4).contains(&second) {
                center.beat();
            }
            tokio::time::sleep(interval).await;
            let mut buf = [0u8; 64];
            let got = receiver.recv(&mut buf).map(|n| buf[..n].to_vec()).ok();
            pings.push(got.as_deref() == Some(b"WATCHDOG=1".as_slice()));
        }
        stop.cancel();
        task.await.unwrap();
        assert_eq!(pings, [true, true, false, false, true, true]);
    }
}
