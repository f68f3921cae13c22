//! The relay on real loopback sockets, between test clients and an echo server.
//!
//! Every wait is bounded: tests pace themselves on the relay's counters (`wait_until`) or on
//! datagrams arriving, never on sleeps.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::link::Link;
use super::*;

/// Upper bound for anything the relay should do promptly; only reached when a test fails.
const PATIENCE: Duration = Duration::from_secs(10);
const MS: Duration = Duration::from_millis(1);

/// (source, sequence number) of every datagram the echo server received, and a signal for each.
type SeenLog = (Mutex<Vec<(SocketAddr, u32)>>, Condvar);

/// Echoes every datagram to its sender and records who sent which sequence number.
struct EchoServer {
    socket: Arc<UdpSocket>,
    addr: SocketAddr,
    seen: Arc<SeenLog>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EchoServer {
    fn start() -> Self {
        let socket = Arc::new(UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap());
        let addr = socket.local_addr().unwrap();
        let seen = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (socket, seen, stop) = (socket.clone(), seen.clone(), stop.clone());
            move || {
                let mut buffer = [0u8; 2048];
                while let Ok((len, from)) = socket.recv_from(&mut buffer) {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let (log, changed) = &*seen;
                    log.lock().unwrap().push((from, seq_of(&buffer[..len])));
                    changed.notify_all();
                    socket.send_to(&buffer[..len], from).unwrap();
                }
            }
        });
        Self {
            socket,
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// Waits until `count` datagrams have arrived; returns (source, sequence number) of each.
    fn wait_for(&self, count: usize) -> Vec<(SocketAddr, u32)> {
        let (log, changed) = &*self.seen;
        let (log, timeout) = changed
            .wait_timeout_while(log.lock().unwrap(), PATIENCE, |log| log.len() < count)
            .unwrap();
        assert!(
            !timeout.timed_out(),
            "echo server saw {} of {count}",
            log.len()
        );
        log.clone()
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.socket.send_to(&[0; 4], self.addr).unwrap();
        self.thread.take().unwrap().join().unwrap();
    }
}

fn seq_of(payload: &[u8]) -> u32 {
    u32::from_be_bytes(payload[..4].try_into().unwrap())
}

/// A client socket whose receiver thread stamps each echo with its arrival time, so that
/// arrival times are right even when the test reads them later. Its datagrams are a sequence
/// number and some padding, like a small RTP packet.
struct Client {
    socket: Arc<UdpSocket>,
    addr: SocketAddr,
    echoes: mpsc::Receiver<(u32, Instant)>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn client() -> Client {
    let socket = Arc::new(UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap());
    let addr = socket.local_addr().unwrap();
    let (sender, echoes) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let thread = std::thread::spawn({
        let (socket, stop) = (socket.clone(), stop.clone());
        move || {
            let mut buffer = [0u8; 2048];
            while let Ok(len) = socket.recv(&mut buffer) {
                let arrived = Instant::now();
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let _ = sender.send((seq_of(&buffer[..len]), arrived));
            }
        }
    });
    Client {
        socket,
        addr,
        echoes,
        stop,
        thread: Some(thread),
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.socket.send_to(&[0; 4], self.addr).unwrap();
        self.thread.take().unwrap().join().unwrap();
    }
}

fn send_seq(client: &Client, to: SocketAddr, seq: u32) {
    let mut payload = seq.to_be_bytes().to_vec();
    payload.resize(160, 0xd5);
    client.socket.send_to(&payload, to).unwrap();
}

fn recv_seq(client: &Client, timeout: Duration) -> Option<u32> {
    client.echoes.recv_timeout(timeout).ok().map(|(seq, _)| seq)
}

fn start(echo: &EchoServer, configure: impl FnOnce(&mut RelayConfig)) -> Relay {
    let mut config = RelayConfig::new(echo.addr);
    config.max_runtime = Duration::from_secs(60);
    configure(&mut config);
    Relay::start(config).unwrap()
}

/// Every datagram of the direction has had its fate decided and every copy has left.
fn settled(direction: &DirectionStats) -> bool {
    direction.forwarded + direction.dropped + direction.queue_overflow
        == direction.received + direction.duplicated
}

struct Exchange {
    sent_at: Vec<Instant>,
    /// Sequence numbers echoed back, in arrival order, with the time each arrived.
    echoes: Vec<(u32, Instant)>,
    stats: RelayStats,
}

impl Exchange {
    fn seqs(&self) -> Vec<u32> {
        self.echoes.iter().map(|(seq, _)| *seq).collect()
    }

    fn round_trips(&self) -> Vec<Duration> {
        let sent_at = &self.sent_at;
        self.echoes
            .iter()
            .map(|(seq, at)| *at - sent_at[*seq as usize])
            .collect()
    }
}

/// Sends datagrams 0..count through the relay to the echo server, `window` at a time, and
/// collects the echoes. The next window leaves only once the relay has settled both directions
/// of the previous one, so no socket buffer can overflow and every loss is the relay's.
fn exchange(relay: &Relay, client: &Client, count: u32, window: u32) -> Exchange {
    let mut sent_at = Vec::new();
    let mut echoes = Vec::new();
    let mut stats = relay.stats();
    while sent_at.len() < count as usize {
        let first = sent_at.len() as u32;
        for seq in first..(first + window).min(count) {
            sent_at.push(Instant::now());
            send_seq(client, relay.addr(), seq);
        }
        let sent = sent_at.len() as u64;
        stats = relay
            .wait_until(PATIENCE, |s| {
                s.up.received == sent
                    && settled(&s.up)
                    && s.down.received == s.up.forwarded
                    && settled(&s.down)
            })
            .unwrap_or_else(|| panic!("relay did not settle: {:?}", relay.stats()));
        while (echoes.len() as u64) < stats.down.forwarded {
            let echo = client.echoes.recv_timeout(PATIENCE);
            echoes.push(echo.expect("an echo the relay forwarded"));
        }
    }
    Exchange {
        sent_at,
        echoes,
        stats,
    }
}

fn mean(durations: &[Duration]) -> Duration {
    durations.iter().sum::<Duration>() / durations.len() as u32
}

#[test]
fn without_impairment_every_datagram_comes_back_in_order() {
    let echo = EchoServer::start();
    let relay = start(&echo, |_| {});
    let run = exchange(&relay, &client(), 1000, 100);
    assert_eq!(run.seqs(), (0..1000).collect::<Vec<_>>());
    let stats = run.stats;
    assert_eq!((stats.up.forwarded, stats.down.forwarded), (1000, 1000));
    assert_eq!(
        stats.up.dropped + stats.up.reordered + stats.down.dropped,
        0
    );
    assert_eq!(stats.flows, 1);
}

/// 2000 datagrams up through 30 % loss; returns the sequence numbers that came back.
fn lossy_run(seed: u64) -> Vec<u32> {
    let echo = EchoServer::start();
    let relay = start(&echo, |config| {
        config.seed = seed;
        config.impair_up.loss_pct = 30.0;
    });
    let run = exchange(&relay, &client(), 2000, 100);
    let seqs = run.seqs();
    assert_eq!(2000 - seqs.len() as u64, run.stats.up.dropped);
    assert!(
        seqs.windows(2).all(|pair| pair[0] < pair[1]),
        "loss reordered"
    );
    seqs
}

#[test]
fn loss_is_near_the_configured_rate_and_the_same_for_a_seed() {
    let first = lossy_run(42);
    let lost_share = 1.0 - first.len() as f64 / 2000.0;
    // ±4 points is about 4 standard deviations of a binomial over 2000.
    assert!((0.26..=0.34).contains(&lost_share), "lost {lost_share:.3}");
    assert_eq!(lossy_run(42), first, "same seed, different datagrams lost");
    assert_ne!(lossy_run(43), first, "different seeds, same datagrams lost");
}

fn jittery(keep_order: bool) -> Impairment {
    Impairment {
        delay: 40 * MS,
        jitter: 15 * MS,
        keep_order,
        ..Impairment::default()
    }
}

fn jittery_run(keep_order: bool) -> Exchange {
    let echo = EchoServer::start();
    let relay = start(&echo, |config| config.impair_up = jittery(keep_order));
    // One burst: 200 datagrams within a millisecond or so, far closer than the jitter.
    exchange(&relay, &client(), 200, 200)
}

/// The delay the relay draws for each datagram of a burst, from a twin of its up link in
/// virtual time: with the same seed and arrival order it makes the same draws.
fn drawn_delays(impairment: Impairment, seed: u64, count: u32) -> Vec<Duration> {
    let mut twin = Link::new(impairment, seed, 0);
    let base = Instant::now();
    for seq in 0..count {
        twin.handle_datagram(base, 0, seq.to_be_bytes().to_vec());
    }
    let mut delays = vec![Duration::ZERO; count as usize];
    while let Some(due) = twin.poll_timeout() {
        while let Some(transmit) = twin.poll_transmit(due) {
            delays[seq_of(&transmit.payload) as usize] = due - base;
        }
    }
    delays
}

#[test]
fn delay_and_jitter_show_in_arrival_times_and_reorder_a_burst() {
    let drawn = drawn_delays(jittery(false), 0, 200);
    let drawn_mean = mean(&drawn);
    assert!(
        (38 * MS..=42 * MS).contains(&drawn_mean),
        "mean drawn {drawn_mean:?}"
    );
    assert!(drawn
        .iter()
        .all(|delay| (25 * MS..=55 * MS).contains(delay)));

    // A busy machine can stall any of the threads involved for tens of milliseconds (with both
    // cores taken by other work the median lateness reached 50 ms once in 15 runs), so the
    // lateness bound gets three tries; a delay applied twice fails all three.
    let mut too_late = Vec::new();
    for _ in 0..3 {
        let run = jittery_run(false);
        // Jitter is drawn per datagram (netem's behaviour): the burst comes back shuffled.
        assert!(run.seqs().windows(2).any(|pair| pair[0] > pair[1]));
        assert!(run.stats.up.reordered > 0);

        // Never shorter than the drawn delay: the relay never sends early. Exact on any load.
        let mut lateness: Vec<Duration> = run
            .echoes
            .iter()
            .map(|&(seq, arrived)| {
                let round_trip = arrived - run.sent_at[seq as usize];
                let delay = drawn[seq as usize];
                assert!(
                    round_trip >= delay,
                    "{seq} back after {round_trip:?} < {delay:?}"
                );
                round_trip - delay
            })
            .collect();
        assert_eq!(lateness.len(), 200);
        lateness.sort_unstable();
        let (median, worst) = (lateness[100], lateness[199]);
        if median <= 10 * MS {
            return;
        }
        too_late.push(format!("median {median:?}, worst {worst:?}"));
    }
    panic!("echoes later than drawn in every run: {too_late:?}");
}

#[test]
fn keep_order_delays_with_jitter_but_keeps_the_order() {
    let run = jittery_run(true);
    assert_eq!(run.seqs(), (0..200).collect::<Vec<_>>());
    assert_eq!(run.stats.up.reordered, 0);
    let shortest = *run.round_trips().iter().min().unwrap();
    assert!(shortest >= 25 * MS, "an echo came back after {shortest:?}");
}

#[test]
fn a_reordered_datagram_arrives_one_place_late() {
    let echo = EchoServer::start();
    let relay = start(&echo, |config| config.impair_up.reorder_pct = 10.0);
    let run = exchange(&relay, &client(), 1000, 100);
    let seqs = run.seqs();
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..1000).collect::<Vec<_>>(), "lost or doubled");
    let swaps: Vec<&[u32]> = seqs.windows(2).filter(|pair| pair[0] > pair[1]).collect();
    for pair in &swaps {
        assert_eq!(pair[0], pair[1] + 1, "moved more than one place: {pair:?}");
    }
    assert_eq!(swaps.len() as u64, run.stats.up.reordered);
    // p / (1 + p) of the datagrams for p = 10 %: about 9 %.
    assert!(
        (55..=130).contains(&swaps.len()),
        "{} reordered",
        swaps.len()
    );
}

#[test]
fn duplicated_datagrams_arrive_twice() {
    let echo = EchoServer::start();
    let relay = start(&echo, |config| config.impair_up.duplicate_pct = 20.0);
    let run = exchange(&relay, &client(), 1000, 100);
    let mut copies = vec![0u32; 1000];
    for seq in run.seqs() {
        copies[seq as usize] += 1;
    }
    assert!(copies.iter().all(|n| (1..=2).contains(n)), "{copies:?}");
    let doubled = copies.iter().filter(|n| **n == 2).count() as u64;
    assert_eq!(doubled, run.stats.up.duplicated);
    assert!((150..=250).contains(&doubled), "{doubled} duplicated");
}

#[test]
fn a_client_on_a_new_port_gets_a_new_upstream_source_and_its_own_replies() {
    let echo = EchoServer::start();
    let relay = start(&echo, |_| {});
    let before = client();
    send_seq(&before, relay.addr(), 0);
    assert_eq!(recv_seq(&before, PATIENCE), Some(0));

    // The client migrates: same relay address, new source port.
    let after = client();
    send_seq(&after, relay.addr(), 1);
    assert_eq!(recv_seq(&after, PATIENCE), Some(1));
    let seen = echo.wait_for(2);
    assert_ne!(
        seen[0].0, seen[1].0,
        "server saw one source for both clients"
    );
    assert_eq!(relay.stats().flows, 2);

    // The old port keeps its own mapping, like a NAT's.
    send_seq(&before, relay.addr(), 2);
    assert_eq!(recv_seq(&before, PATIENCE), Some(2));
    assert_eq!(echo.wait_for(3)[2].0, seen[0].0);
    assert_eq!(
        recv_seq(&after, 100 * MS),
        None,
        "reply went to both clients"
    );
}

#[test]
fn rebinding_changes_the_source_port_the_server_sees() {
    let echo = EchoServer::start();
    let relay = start(&echo, |_| {});
    let client = client();
    send_seq(&client, relay.addr(), 0);
    assert_eq!(recv_seq(&client, PATIENCE), Some(0));

    assert_eq!(relay.rebind_upstream_socket().unwrap(), 1);
    send_seq(&client, relay.addr(), 1);
    assert_eq!(
        recv_seq(&client, PATIENCE),
        Some(1),
        "reply after rebinding"
    );
    let seen = echo.wait_for(2);
    let (old_source, new_source) = (seen[0].0, seen[1].0);
    assert_ne!(old_source, new_source);
    assert_eq!(old_source.ip(), new_source.ip());

    // The old mapping is gone: the server's datagram to the old port is not forwarded.
    echo.socket
        .send_to(&7u32.to_be_bytes(), old_source)
        .unwrap();
    echo.socket
        .send_to(&8u32.to_be_bytes(), new_source)
        .unwrap();
    assert_eq!(recv_seq(&client, PATIENCE), Some(8));
    assert_eq!(relay.stats().down.received, 3);
}

#[test]
fn impairment_can_change_while_running() {
    let echo = EchoServer::start();
    let relay = start(&echo, |_| {});
    let client = client();
    assert_eq!(exchange(&relay, &client, 10, 10).echoes.len(), 10);

    let black_hole = Impairment {
        loss_pct: 100.0,
        ..Impairment::default()
    };
    relay.set_impairment(Direction::Down, black_hole).unwrap();
    for seq in 10..30 {
        send_seq(&client, relay.addr(), seq);
    }
    let stats = relay
        .wait_until(PATIENCE, |s| s.down.dropped == 20)
        .expect("20 echoes dropped");
    assert_eq!(stats.up.forwarded, 30, "the up direction stayed clean");
    assert_eq!(recv_seq(&client, 100 * MS), None);

    let invalid = Impairment {
        loss_pct: 150.0,
        ..Impairment::default()
    };
    let error = relay.set_impairment(Direction::Down, invalid).unwrap_err();
    assert!(matches!(
        error,
        RelayError::Impairment {
            direction: Direction::Down,
            ..
        }
    ));
    relay
        .set_impairment(Direction::Down, Impairment::default())
        .unwrap();
    send_seq(&client, relay.addr(), 30);
    assert_eq!(recv_seq(&client, PATIENCE), Some(30));
}

#[test]
fn the_relay_stops_by_itself_after_max_runtime() {
    let echo = EchoServer::start();
    let max_runtime = 500 * MS;
    let relay = start(&echo, |config| config.max_runtime = max_runtime);
    let client = client();
    send_seq(&client, relay.addr(), 0);
    assert_eq!(recv_seq(&client, PATIENCE), Some(0));

    assert!(
        relay.wait_stopped(PATIENCE),
        "still running after {PATIENCE:?}"
    );
    assert!(relay.uptime() >= max_runtime);
    assert!(!relay.is_running());
    send_seq(&client, relay.addr(), 1);
    assert_eq!(
        recv_seq(&client, 200 * MS),
        None,
        "forwarded after stopping"
    );
    assert_eq!(relay.stats().up.received, 1);
}

#[test]
fn dropping_the_relay_ends_its_threads_and_frees_its_port() {
    let echo = EchoServer::start();
    let relay = start(&echo, |_| {});
    let client = client();
    send_seq(&client, relay.addr(), 0);
    assert_eq!(recv_seq(&client, PATIENCE), Some(0));
    relay.rebind_upstream_socket().unwrap();
    let addr = relay.addr();

    let dropping = Instant::now();
    drop(relay);
    let took = dropping.elapsed();
    // Threads are woken by datagrams, not by their 200 ms receive timeout.
    assert!(took < RECEIVE_TIMEOUT, "drop took {took:?}");
    // The sockets closed with the last thread that held them.
    UdpSocket::bind(addr).expect("relay port free after drop");
}

#[test]
fn only_loopback_addresses_are_accepted() {
    let loopback: SocketAddr = "127.0.0.1:4433".parse().unwrap();
    let elsewhere: SocketAddr = "192.0.2.1:4433".parse().unwrap();
    let error = Relay::start(RelayConfig::new(elsewhere)).err().unwrap();
    assert!(matches!(
        error,
        RelayError::NotLoopback {
            role: "upstream",
            ..
        }
    ));
    assert!(error.to_string().contains("192.0.2.1:4433"), "{error}");

    let mut everywhere = RelayConfig::new(loopback);
    everywhere.listen = "0.0.0.0:0".parse().unwrap();
    assert!(matches!(
        Relay::start(everywhere),
        Err(RelayError::NotLoopback { role: "listen", .. })
    ));

    let mut v6 = RelayConfig::new("[::1]:4433".parse().unwrap());
    v6.listen = "[::1]:0".parse().unwrap();
    if let Err(error) = Relay::start(v6) {
        // Only a machine without IPv6 loopback may refuse, and then not for the address.
        assert!(matches!(error, RelayError::Io { .. }), "{error}");
    }
}

#[test]
fn a_relay_without_runtime_bound_or_with_bad_impairment_is_refused() {
    let mut unbounded = RelayConfig::new("127.0.0.1:4433".parse().unwrap());
    unbounded.max_runtime = Duration::ZERO;
    assert!(matches!(
        Relay::start(unbounded),
        Err(RelayError::RuntimeBound(Duration::ZERO))
    ));
    let mut endless = RelayConfig::new("127.0.0.1:4433".parse().unwrap());
    endless.max_runtime = Duration::MAX;
    assert!(matches!(
        Relay::start(endless),
        Err(RelayError::RuntimeBound(Duration::MAX))
    ));
    let mut nonsense = RelayConfig::new("127.0.0.1:4433".parse().unwrap());
    nonsense.impair_down.duplicate_pct = -5.0;
    let error = Relay::start(nonsense).err().unwrap();
    assert_eq!(
        error.to_string(),
        "impairment of the Down direction: duplicate_pct is -5, expected a percentage from 0 to 100"
    );
}

#[test]
fn a_relay_can_be_shared_between_test_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Relay>();
}
