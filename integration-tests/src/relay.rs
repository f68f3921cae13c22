//! A userspace UDP impairment relay: the harness's stand-in for netem, which this kernel lacks.
//!
//! Put it between a remote agent and the gateway: the agent sends to [`Relay::addr`], the relay
//! forwards to the upstream address and carries the replies back, impairing each direction with
//! its own [`Impairment`] (delay, jitter, loss, bursts, reordering, duplicates, a rate limit).
//!
//! It behaves like a NAT in front of the client: each client source address gets a socket of
//! its own towards upstream, so the server sees one peer per client, and a client that moves
//! to a new port (QUIC migration) appears upstream from a new port too.
//! [`Relay::rebind_upstream_socket`] moves every client to a new upstream port, as a NAT that
//! lost its mappings would, without the client doing anything.
//!
//! Decisions (which datagram is lost, reordered, duplicated, and by how much it is delayed) are
//! drawn from a ChaCha8 generator seeded by [`RelayConfig::seed`], one stream per direction:
//! the same seed and the same sequence of datagrams give the same decisions. They are made by a
//! sans-IO core (`link.rs`), tested in virtual time; threads here only move bytes and time:
//! one receives from clients, one per client socket receives from upstream, and one sends what
//! is due, waiting on a condition variable until the next datagram's time.
//!
//! Bounded like the rest of the harness: the relay refuses anything but loopback addresses,
//! stops by itself after [`RelayConfig::max_runtime`], and stops and joins its threads on drop.

mod impairment;
mod link;
mod threads;

pub use impairment::{BurstLoss, Impairment, InvalidImpairment, MAX_DELAY};
pub use link::{RATE_LIMIT_QUEUE, REORDER_HOLD_LIMIT};

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use thiserror::Error;

use link::{FlowId, Link};

/// Client addresses the relay keeps a mapping for. Each costs a socket and a thread; a test
/// that needs more than this is more likely a client changing ports in a loop.
pub const MAX_FLOWS: usize = 64;

/// The longest [`RelayConfig::max_runtime`] accepted: a day is longer than any test.
pub const MAX_RUNTIME: Duration = Duration::from_secs(24 * 60 * 60);

/// Backstop for a blocked receive to notice that the relay is stopping, should the wake-up
/// datagram it is normally sent get lost. Bounds how long dropping a [`Relay`] can take.
const RECEIVE_TIMEOUT: Duration = Duration::from_millis(200);

/// The two directions of the relay, named from the client's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client → upstream (e.g. agent → gateway).
    Up,
    /// Upstream → client.
    Down,
}

#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Where clients send; `127.0.0.1:0` picks a free port (read it from [`Relay::addr`]).
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
    pub impair_up: Impairment,
    pub impair_down: Impairment,
    /// The relay stops by itself after this long, so a test that forgets it cannot leave it
    /// running. More than zero, at most [`MAX_RUNTIME`].
    pub max_runtime: Duration,
    pub seed: u64,
}

impl RelayConfig {
    /// Unimpaired relay to `upstream` on a free loopback port, stopping after 120 s.
    pub fn new(upstream: SocketAddr) -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            upstream,
            impair_up: Impairment::default(),
            impair_down: Impairment::default(),
            max_runtime: Duration::from_secs(120),
            seed: 0,
        }
    }
}

#[derive(Debug, Error)]
pub enum RelayError {
    #[error("{role} address {addr} is not loopback: the relay only talks to this machine")]
    NotLoopback {
        role: &'static str,
        addr: SocketAddr,
    },
    #[error("max_runtime is {0:?}, expected more than zero and at most {MAX_RUNTIME:?}")]
    RuntimeBound(Duration),
    #[error("impairment of the {direction:?} direction: {source}")]
    Impairment {
        direction: Direction,
        source: InvalidImpairment,
    },
    #[error("{action} {addr}: {source}")]
    Io {
        action: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Counters for one direction since the relay started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Datagrams that entered this direction.
    pub received: u64,
    /// Datagrams sent on, duplicates included.
    pub forwarded: u64,
    /// Lost to `loss_pct` or a burst.
    pub dropped: u64,
    /// Dropped because the rate-limited queue was full.
    pub queue_overflow: u64,
    /// Datagrams (duplicates not counted) sent after a datagram of the same client that arrived
    /// after them, whether `reorder_pct` or jitter put them there.
    pub reordered: u64,
    /// Extra copies scheduled by `duplicate_pct`.
    pub duplicated: u64,
    /// Sends the operating system refused.
    pub send_errors: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    pub up: DirectionStats,
    pub down: DirectionStats,
    /// Client addresses seen so far (each has its own upstream socket).
    pub flows: usize,
    /// Datagrams from a new client address dropped because [`MAX_FLOWS`] was reached or no
    /// upstream socket could be bound for it.
    pub flows_refused: u64,
}

/// A running relay; dropping it stops it.
pub struct Relay {
    shared: Arc<Shared>,
    addr: SocketAddr,
    started: Instant,
    sender: Option<JoinHandle<()>>,
    client_receiver: Option<JoinHandle<()>>,
}

/// What the relay's threads share.
struct Shared {
    state: Mutex<State>,
    /// The sender waits on this for new datagrams (or the stop).
    work: Condvar,
    /// Callers of [`Relay::wait_until`] and [`Relay::wait_stopped`] wait on this.
    progress: Condvar,
    /// Read by receivers without the lock after every wake-up.
    stopping: AtomicBool,
    listen: UdpSocket,
    listen_addr: SocketAddr,
    upstream: SocketAddr,
    /// Receivers of client sockets, joined on drop.
    upstream_receivers: Mutex<Vec<JoinHandle<()>>>,
}

struct State {
    up: Link,
    down: Link,
    /// Indexed by [`FlowId`].
    flows: Vec<Flow>,
    flow_by_client: HashMap<SocketAddr, FlowId>,
    flows_refused: u64,
    stopped: bool,
}

/// One client address and the socket that stands for it upstream.
struct Flow {
    client: SocketAddr,
    upstream_socket: Arc<UpstreamSocket>,
}

struct UpstreamSocket {
    socket: UdpSocket,
    local_addr: SocketAddr,
    /// Set when a rebinding replaced this socket: what still arrives on it is not forwarded.
    retired: AtomicBool,
}

impl Relay {
    pub fn start(config: RelayConfig) -> Result<Relay, RelayError> {
        for (role, addr) in [("listen", config.listen), ("upstream", config.upstream)] {
            if !addr.ip().is_loopback() {
                return Err(RelayError::NotLoopback { role, addr });
            }
        }
        if config.max_runtime.is_zero() || config.max_runtime > MAX_RUNTIME {
            return Err(RelayError::RuntimeBound(config.max_runtime));
        }
        for (direction, impairment) in [
            (Direction::Up, &config.impair_up),
            (Direction::Down, &config.impair_down),
        ] {
            impairment
                .validate()
                .map_err(|source| RelayError::Impairment { direction, source })?;
        }

        let listen = bind_with_timeout(config.listen)?;
        let listen_addr = local_addr(&listen, config.listen)?;
        let started = Instant::now();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                up: Link::new(config.impair_up, config.seed, 0),
                down: Link::new(config.impair_down, config.seed, 1),
                flows: Vec::new(),
                flow_by_client: HashMap::new(),
                flows_refused: 0,
                stopped: false,
            }),
            work: Condvar::new(),
            progress: Condvar::new(),
            stopping: AtomicBool::new(false),
            listen,
            listen_addr,
            upstream: config.upstream,
            upstream_receivers: Mutex::new(Vec::new()),
        });
        let mut relay = Relay {
            shared: Arc::clone(&shared),
            addr: listen_addr,
            started,
            sender: None,
            client_receiver: None,
        };
        let thread_error = |source| RelayError::Io {
            action: "starting a thread for the relay on",
            addr: listen_addr,
            source,
        };
        // On an early return below, dropping `relay` stops the threads already started.
        let stop_at = started + config.max_runtime;
        let sender_shared = Arc::clone(&shared);
        relay.sender = Some(
            threads::spawn("relay-send".into(), move || {
                threads::send_when_due(&sender_shared, stop_at)
            })
            .map_err(thread_error)?,
        );
        relay.client_receiver = Some(
            threads::spawn("relay-clients".into(), move || {
                threads::receive_from_clients(&shared)
            })
            .map_err(thread_error)?,
        );
        Ok(relay)
    }

    /// Where clients send.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stats(&self) -> RelayStats {
        self.shared.lock().stats()
    }

    /// Drops everything both ways (`on`) or nothing: a network gone dark, then back.
    pub fn blackhole(&self, on: bool) {
        let impairment = Impairment {
            loss_pct: if on { 100.0 } else { 0.0 },
            ..Impairment::default()
        };
        for direction in [Direction::Up, Direction::Down] {
            // Both values are valid impairments: setting them cannot fail.
            self.set_impairment(direction, impairment.clone())
                .expect("0 % and 100 % loss are valid");
        }
    }

    /// Applies to datagrams that arrive from now on; those already scheduled keep their times.
    pub fn set_impairment(
        &self,
        direction: Direction,
        impairment: Impairment,
    ) -> Result<(), RelayError> {
        impairment
            .validate()
            .map_err(|source| RelayError::Impairment { direction, source })?;
        let mut state = self.shared.lock();
        match direction {
            Direction::Up => state.up.set_impairment(impairment),
            Direction::Down => state.down.set_impairment(impairment),
        }
        Ok(())
    }

    /// Gives every client a new upstream socket, so the server sees each one arrive from a new
    /// port, as after a NAT rebinding. Replies to the old ports are no longer forwarded.
    /// Returns how many clients moved (none before the first datagram, or once stopped).
    pub fn rebind_upstream_socket(&self) -> Result<usize, RelayError> {
        let mut state = self.shared.lock();
        if state.stopped {
            return Ok(0);
        }
        for flow_id in 0..state.flows.len() {
            let replacement = threads::open_upstream_socket(&self.shared, flow_id)?;
            let old = std::mem::replace(&mut state.flows[flow_id].upstream_socket, replacement);
            old.retired.store(true, Ordering::SeqCst);
            old.wake();
        }
        Ok(state.flows.len())
    }

    /// Waits until `condition` holds for the statistics, at most `timeout`. Returns the
    /// statistics that satisfied it, or `None` on timeout. Lets a test pace itself on what the
    /// relay has processed instead of sleeping. `condition` runs with the relay's lock held,
    /// after every datagram the relay receives or sends: keep it quick.
    pub fn wait_until(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&RelayStats) -> bool,
    ) -> Option<RelayStats> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            let stats = state.stats();
            if condition(&stats) {
                return Some(stats);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return None;
            }
            state = self.shared.wait_for_progress(state, remaining);
        }
    }

    /// Waits up to `timeout` for the relay to stop (it does after `max_runtime`); true if it has.
    pub fn wait_stopped(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        while !state.stopped {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return false;
            }
            state = self.shared.wait_for_progress(state, remaining);
        }
        true
    }

    pub fn is_running(&self) -> bool {
        !self.shared.lock().stopped
    }

    /// How long ago the relay started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop();
        // Each thread leaves within RECEIVE_TIMEOUT even if its wake-up datagram got lost, and
        // no thread panics on network input, so these joins are bounded.
        for handle in [self.sender.take(), self.client_receiver.take()]
            .into_iter()
            .flatten()
        {
            let _ = handle.join();
        }
        // The client receiver, which spawns upstream receivers, has ended: the list is final.
        let receivers = std::mem::take(&mut *lock_ignoring_poison(&self.shared.upstream_receivers));
        for handle in receivers {
            let _ = handle.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        lock_ignoring_poison(&self.state)
    }

    fn wait_for_progress<'a>(
        &self,
        state: MutexGuard<'a, State>,
        timeout: Duration,
    ) -> MutexGuard<'a, State> {
        match self.progress.wait_timeout(state, timeout) {
            Ok((state, _)) => state,
            Err(poisoned) => poisoned.into_inner().0,
        }
    }

    /// Marks the relay stopped and wakes every thread so that it notices.
    fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let mut state = self.lock();
        state.stopped = true;
        for flow in &state.flows {
            flow.upstream_socket.wake();
        }
        drop(state);
        // An empty datagram to itself unblocks the client receiver's recv_from.
        let _ = self.listen.send_to(&[], self.listen_addr);
        self.work.notify_all();
        self.progress.notify_all();
    }
}

impl State {
    fn stats(&self) -> RelayStats {
        RelayStats {
            up: self.up.stats(),
            down: self.down.stats(),
            flows: self.flows.len(),
            flows_refused: self.flows_refused,
        }
    }
}

impl UpstreamSocket {
    /// Unblocks this socket's receiver, which then checks whether it should stop.
    fn wake(&self) {
        let _ = self.socket.send_to(&[], self.local_addr);
    }
}

/// State stays consistent at every unlock (no update spans a panic point), so a poisoned lock
/// is still safe to use; the panic itself is reported by the thread that had it.
fn lock_ignoring_poison<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn bind_with_timeout(addr: SocketAddr) -> Result<UdpSocket, RelayError> {
    let io_error = |source| RelayError::Io {
        action: "binding",
        addr,
        source,
    };
    let socket = UdpSocket::bind(addr).map_err(io_error)?;
    socket
        .set_read_timeout(Some(RECEIVE_TIMEOUT))
        .map_err(io_error)?;
    Ok(socket)
}

fn local_addr(socket: &UdpSocket, requested: SocketAddr) -> Result<SocketAddr, RelayError> {
    socket.local_addr().map_err(|source| RelayError::Io {
        action: "reading the local address of the socket bound to",
        addr: requested,
        source,
    })
}

#[cfg(test)]
mod tests;
