//! The relay's threads. They hold no impairment logic: receivers hand each datagram with the
//! time it arrived to the direction's `Link`, and the sender sends what the links say is due.
//!
//! Blocking std sockets and a thread each keep this free of an async runtime, like the rest of
//! the harness. A receiver wakes on every datagram and on an empty datagram the relay sends to
//! the socket itself when it stops or retires it, and checks a flag before anything else.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use super::link::{FlowId, Transmit};
use super::{
    bind_with_timeout, local_addr, lock_ignoring_poison, Flow, RelayError, Shared, State,
    UpstreamSocket, MAX_FLOWS,
};

/// Larger than any UDP payload, so no datagram is ever truncated.
const MAX_DATAGRAM: usize = 65_536;

pub(super) fn spawn(
    name: String,
    body: impl FnOnce() + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name).spawn(body)
}

/// Client → relay: finds (or creates) the client's flow and feeds the up link.
pub(super) fn receive_from_clients(shared: &Arc<Shared>) {
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = shared.listen.recv_from(&mut buffer);
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        // Errors are read timeouts (the stop backstop) or ICMP reports: nothing to forward.
        let Ok((len, client)) = received else {
            continue;
        };
        if client == shared.listen_addr {
            continue; // our own wake-up
        }
        let mut state = shared.lock();
        match flow_for(shared, &mut state, client) {
            Some(flow) => {
                let now = Instant::now();
                state.up.handle_datagram(now, flow, buffer[..len].to_vec());
                drop(state);
                shared.work.notify_one();
            }
            None => {
                state.flows_refused += 1;
                drop(state);
            }
        }
        shared.progress.notify_all();
    }
}

/// Upstream → relay, for one flow's socket: feeds the down link until the relay stops or a
/// rebinding retires the socket.
fn receive_from_upstream(shared: &Shared, socket: &UpstreamSocket, flow: FlowId) {
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = socket.socket.recv_from(&mut buffer);
        if shared.stopping.load(Ordering::SeqCst) || socket.retired.load(Ordering::SeqCst) {
            return;
        }
        let Ok((len, from)) = received else { continue };
        // Like a NAT that filters by address: only the server's replies get through (which
        // also skips our own wake-ups).
        if from != shared.upstream {
            continue;
        }
        let mut state = shared.lock();
        // Checked again under the lock: a rebinding retires sockets while holding it.
        if socket.retired.load(Ordering::SeqCst) {
            return;
        }
        let now = Instant::now();
        state
            .down
            .handle_datagram(now, flow, buffer[..len].to_vec());
        drop(state);
        shared.work.notify_one();
        shared.progress.notify_all();
    }
}

/// Sends what is due, then waits until the next datagram is due, a new one arrives, or the
/// relay must stop. Stopping at `stop_at` is this thread's job.
pub(super) fn send_when_due(shared: &Shared, stop_at: Instant) {
    let mut state = shared.lock();
    loop {
        if state.stopped {
            return;
        }
        let now = Instant::now();
        if now >= stop_at {
            drop(state);
            shared.stop();
            return;
        }
        let due = take_due(&mut state, now);
        if !due.is_empty() {
            drop(state);
            let errors = send(shared, due);
            state = shared.lock();
            for direction in errors {
                match direction {
                    Outgoing::Up { .. } => state.up.record_send_error(),
                    Outgoing::Down { .. } => state.down.record_send_error(),
                }
            }
            shared.progress.notify_all();
            continue;
        }
        let next = [state.up.poll_timeout(), state.down.poll_timeout()]
            .into_iter()
            .flatten()
            .fold(stop_at, Instant::min);
        let wait = next.saturating_duration_since(now);
        state = match shared.work.wait_timeout(state, wait) {
            Ok((state, _)) => state,
            Err(poisoned) => poisoned.into_inner().0,
        };
    }
}

enum Outgoing {
    Up {
        socket: Arc<UpstreamSocket>,
        payload: Vec<u8>,
    },
    Down {
        client: SocketAddr,
        payload: Vec<u8>,
    },
}

fn take_due(state: &mut MutexGuard<'_, State>, now: Instant) -> Vec<Outgoing> {
    state.up.handle_timeout(now);
    state.down.handle_timeout(now);
    let mut due = Vec::new();
    while let Some(Transmit { flow, payload }) = state.up.poll_transmit(now) {
        // Flow ids index `flows`, which only grows, and every datagram carries the id of the
        // flow that received it: the lookup cannot fail, but a miss only loses this datagram.
        if let Some(flow) = state.flows.get(flow) {
            let socket = Arc::clone(&flow.upstream_socket);
            due.push(Outgoing::Up { socket, payload });
        }
    }
    while let Some(Transmit { flow, payload }) = state.down.poll_transmit(now) {
        if let Some(flow) = state.flows.get(flow) {
            let client = flow.client;
            due.push(Outgoing::Down { client, payload });
        }
    }
    due
}

/// Sends outside the lock; returns the datagrams the system refused.
fn send(shared: &Shared, due: Vec<Outgoing>) -> Vec<Outgoing> {
    due.into_iter()
        .filter(|outgoing| {
            let sent = match outgoing {
                Outgoing::Up { socket, payload } => socket.socket.send_to(payload, shared.upstream),
                Outgoing::Down { client, payload } => shared.listen.send_to(payload, *client),
            };
            sent.is_err()
        })
        .collect()
}

fn flow_for(shared: &Arc<Shared>, state: &mut State, client: SocketAddr) -> Option<FlowId> {
    if let Some(flow) = state.flow_by_client.get(&client) {
        return Some(*flow);
    }
    if state.flows.len() >= MAX_FLOWS {
        return None;
    }
    let flow = state.flows.len();
    let upstream_socket = open_upstream_socket(shared, flow).ok()?;
    state.flows.push(Flow {
        client,
        upstream_socket,
    });
    state.flow_by_client.insert(client, flow);
    Some(flow)
}

/// A new socket towards upstream for `flow`, with its receiver running.
pub(super) fn open_upstream_socket(
    shared: &Arc<Shared>,
    flow: FlowId,
) -> Result<Arc<UpstreamSocket>, RelayError> {
    let loopback = match shared.upstream {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::LOCALHOST, 0)),
    };
    let socket = bind_with_timeout(loopback)?;
    let local_addr = local_addr(&socket, loopback)?;
    let upstream_socket = Arc::new(UpstreamSocket {
        socket,
        local_addr,
        retired: AtomicBool::new(false),
    });
    let receiver = spawn(format!("relay-flow-{flow}"), {
        let shared = Arc::clone(shared);
        let socket = Arc::clone(&upstream_socket);
        move || receive_from_upstream(&shared, &socket, flow)
    })
    .map_err(|source| RelayError::Io {
        action: "starting the receiver thread for",
        addr: local_addr,
        source,
    })?;
    let mut receivers = lock_ignoring_poison(&shared.upstream_receivers);
    // Receivers of retired sockets have ended; their handles need no join.
    receivers.retain(|handle| !handle.is_finished());
    receivers.push(receiver);
    Ok(upstream_socket)
}
