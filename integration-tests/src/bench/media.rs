//! The carrier side's media: G.711 µ-law speech streamed on many calls with real RTP timing,
//! and what comes back, timed on arrival.
//!
//! One thread per worker (one worker per core) owns a UDP socket that every call of the worker
//! shares: the SDP of each call names the worker's port, and a call's packets from the far end
//! are told apart by their source address (the gateway's, or rtpengine's, port for that call).
//! Calls are spread over the 20 ms frame period in 1 ms slots, as independent callers' are,
//! so the far end never gets every call's packet in one burst.
use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use trunkgate::call::rtp_socket::{Clock, RtpSocket};
use trunkgate::media::g711::G711Law;
use trunkgate::media::rtp::{self, RtpHeader};

const FRAME: usize = 160;
const FRAME_MS: u64 = 20;
/// The slots calls are spread over within a frame period.
const SLOTS: u64 = FRAME_MS;

/// What one call's stream saw, for the report.
#[derive(Debug, Clone, Default)]
pub struct CallMedia {
    pub label: usize,
    /// Packets sent inside the measurement window.
    pub sent: u64,
    /// Packets received inside the window, and the sequence numbers they span.
    pub received: u64,
    pub expected: u64,
    /// Per packet received in the window: arrival minus RTP time (ms), relative to the first.
    pub transit_ms: Vec<f32>,
    /// Received in the window (with recording on): (arrival s since the epoch, RTP timestamp,
    /// payload decoded).
    pub recording: Vec<(f64, u32, Vec<i16>)>,
    /// When this call sent its first frame (s since the pool's epoch): frame k of the speech
    /// loop went out at `first_frame_at + k × 20 ms`.
    pub first_frame_at: f64,
}

impl CallMedia {
    /// Received packets' arrival beyond the call's quickest one (ms).
    pub fn lateness_ms(&self) -> impl Iterator<Item = f32> + '_ {
        let best = self
            .transit_ms
            .iter()
            .copied()
            .fold(f32::INFINITY, f32::min);
        self.transit_ms.iter().map(move |t| t - best)
    }

    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.received)
    }
}

/// A call to add to the pool: where its far end receives.
#[derive(Debug, Clone, Copy)]
pub struct NewStream {
    pub label: usize,
    pub remote: SocketAddr,
    pub record: bool,
    /// Stop sending after this long (the setup-rate test's 2 s of media); `None`: until removed.
    pub send_for: Option<Duration>,
}

/// Handle of a stream in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamId {
    worker: usize,
    index: usize,
}

struct Stream {
    media: CallMedia,
    remote: SocketAddr,
    record: bool,
    active: bool,
    stop_at: Option<Instant>,
    slot: u64,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    frame: u64,
    /// Received sequence numbers, extended past wrap-around.
    highest_seq: Option<u64>,
    lowest_seq: Option<u64>,
    first_ts: Option<u32>,
    first_transit: Option<f64>,
}

#[derive(Default)]
struct Shared {
    streams: Vec<Stream>,
    by_remote: HashMap<SocketAddr, usize>,
}

struct Worker {
    port: u16,
    shared: Arc<Mutex<Shared>>,
    thread: Option<JoinHandle<WorkerStats>>,
}

/// The worker's own timing: how late it sent, so a report can show the generator kept up.
#[derive(Debug, Clone, Default)]
pub struct WorkerStats {
    pub send_late_ms: Vec<f32>,
}

/// The measurement window, shared with the workers: packets count only inside it.
#[derive(Default)]
struct Window {
    start: Option<Instant>,
    end: Option<Instant>,
}

pub struct MediaPool {
    workers: Vec<Worker>,
    epoch: Instant,
    window: Arc<Mutex<Window>>,
    stop: Arc<AtomicBool>,
    next_worker: usize,
    next_slot: u64,
}

impl MediaPool {
    /// `workers` threads streaming `speech` (8 kHz samples, looped) as PCMU.
    pub fn start(workers: usize, speech: Arc<[i16]>) -> std::io::Result<MediaPool> {
        let mut encoded = Vec::new();
        G711Law::Ulaw.encode(&speech, &mut encoded);
        let encoded: Arc<[u8]> = encoded.into();
        let epoch = Instant::now();
        let window = Arc::new(Mutex::new(Window::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut pool = Vec::new();
        for _ in 0..workers.max(1) {
            let (socket, rtcp) = bind_pair()?;
            let port = socket.local_addr()?.port();
            // A worker carries up to thousands of calls on one socket and may wait for a core:
            // the default buffer (≈ 270 packets) would drop the far end's audio here, and the
            // loss would be counted against the far end.
            trunkgate::socket_buffers::enlarge(&socket, RECEIVE_BUFFER);
            rtcp.set_nonblocking(true)?;
            // Arrival times from the kernel: a generator thread that waits for a core on a
            // busy machine must not count its own lateness against the far end.
            let socket = RtpSocket::new(socket)?;
            let shared = Arc::new(Mutex::new(Shared::default()));
            let context = WorkerContext {
                socket,
                rtcp,
                shared: shared.clone(),
                speech: encoded.clone(),
                epoch,
                window: window.clone(),
                stop: stop.clone(),
            };
            let thread = std::thread::Builder::new()
                .name("bench-media".into())
                .spawn(move || context.run())?;
            pool.push(Worker {
                port,
                shared,
                thread: Some(thread),
            });
        }
        Ok(MediaPool {
            workers: pool,
            epoch,
            window,
            stop,
            next_worker: 0,
            next_slot: 0,
        })
    }

    /// The local RTP port the next [`MediaPool::add`] will use (for the SDP offer).
    pub fn next_port(&self) -> u16 {
        self.workers[self.next_worker].port
    }

    /// The port of the `n`-th [`MediaPool::add`] from now, for offers made ahead of the adds.
    pub fn next_port_after(&self, n: usize) -> u16 {
        self.workers[(self.next_worker + n) % self.workers.len()].port
    }

    pub fn add(&mut self, new: NewStream) -> StreamId {
        let worker = self.next_worker;
        self.next_worker = (self.next_worker + 1) % self.workers.len();
        let slot = self.next_slot % SLOTS;
        self.next_slot += 7; // co-prime with SLOTS: neighbours land far apart
        let mut shared = lock(&self.workers[worker].shared);
        let index = shared.streams.len();
        shared.by_remote.insert(new.remote, index);
        shared.streams.push(Stream {
            media: CallMedia {
                label: new.label,
                ..CallMedia::default()
            },
            remote: new.remote,
            record: new.record,
            active: true,
            stop_at: new.send_for.map(|d| Instant::now() + d),
            slot,
            ssrc: 0x5eed_0000 ^ new.label as u32,
            sequence: (new.label as u16).wrapping_mul(977),
            timestamp: (new.label as u32).wrapping_mul(7919),
            frame: 0,
            highest_seq: None,
            lowest_seq: None,
            first_ts: None,
            first_transit: None,
        });
        StreamId { worker, index }
    }

    /// Stops sending on a stream (its call ended); what it saw stays for the report.
    pub fn remove(&self, id: StreamId) {
        let mut shared = lock(&self.workers[id.worker].shared);
        let remote = shared.streams[id.index].remote;
        shared.streams[id.index].active = false;
        shared.by_remote.remove(&remote);
    }

    pub fn start_window(&self) {
        let mut window = lock(&self.window);
        window.start = Some(Instant::now());
        window.end = None;
    }

    pub fn end_window(&self) {
        lock(&self.window).end = Some(Instant::now());
    }

    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// Stops the workers and returns every stream's figures, and the workers' timing.
    pub fn finish(mut self) -> (Vec<CallMedia>, WorkerStats) {
        self.stop.store(true, Ordering::Relaxed);
        let mut stats = WorkerStats::default();
        let mut calls = Vec::new();
        for worker in &mut self.workers {
            if let Some(thread) = worker.thread.take() {
                if let Ok(worker_stats) = thread.join() {
                    stats.send_late_ms.extend(worker_stats.send_late_ms);
                }
            }
            let mut shared = lock(&worker.shared);
            calls.extend(shared.streams.drain(..).map(|s| s.media));
        }
        calls.sort_by_key(|c| c.label);
        (calls, stats)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A worker that panicked has already failed the run; its data is still worth reporting.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// 16 MiB: about 20,000 packets, a fifth of a second at 2,000 calls on one worker.
const RECEIVE_BUFFER: usize = 16 * 1024 * 1024;

/// An even port for RTP and the odd one above it (where the far end sends RTCP), both bound so
/// no RTCP draws an ICMP error.
fn bind_pair() -> std::io::Result<(UdpSocket, UdpSocket)> {
    for _ in 0..200 {
        // A free port from the kernel, released again for the pair to take.
        let port = UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
        let even = if port % 2 == 0 { port } else { port - 1 };
        let (Ok(rtp), Ok(rtcp)) = (
            UdpSocket::bind(("127.0.0.1", even)),
            UdpSocket::bind(("127.0.0.1", even + 1)),
        ) else {
            continue;
        };
        return Ok((rtp, rtcp));
    }
    Err(std::io::Error::new(
        ErrorKind::AddrInUse,
        "no free even/odd UDP port pair on 127.0.0.1",
    ))
}

struct WorkerContext {
    socket: RtpSocket,
    /// Drained and dropped: its reports are not measured, but a full socket would count as the
    /// machine's UDP buffer drops.
    rtcp: UdpSocket,
    shared: Arc<Mutex<Shared>>,
    speech: Arc<[u8]>,
    epoch: Instant,
    window: Arc<Mutex<Window>>,
    stop: Arc<AtomicBool>,
}

impl WorkerContext {
    fn run(self) -> WorkerStats {
        let mut stats = WorkerStats::default();
        let mut packet = Vec::with_capacity(12 + FRAME);
        let mut buffer = [0u8; 2048];
        // The next 1 ms slot to send, counted from the epoch.
        let mut next_ms: u64 = self.epoch.elapsed().as_millis() as u64 + 1;
        while !self.stop.load(Ordering::Relaxed) {
            let due = self.epoch + Duration::from_millis(next_ms);
            let now = Instant::now();
            if now >= due {
                let in_window = self.in_window(now);
                if in_window {
                    stats.send_late_ms.push((now - due).as_secs_f32() * 1000.0);
                }
                self.send_slot(next_ms % SLOTS, now, in_window, &mut packet);
                next_ms += 1;
                continue;
            }
            // Wait for the far end's packets until the next slot is due, then take them all.
            let wait = due - now;
            let timeout = libc::timespec {
                tv_sec: 0,
                tv_nsec: wait.subsec_nanos().into(),
            };
            let mut poll = libc::pollfd {
                fd: self.socket.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd and timespec for the duration of the call; no sigmask.
            if unsafe { libc::ppoll(&mut poll, 1, &timeout, std::ptr::null()) } <= 0 {
                continue;
            }
            let clock = Clock::now();
            // Errors (ICMP from a far end that went away) end the batch like an empty socket.
            while let Ok(got) = self.socket.recv(&mut buffer, &clock) {
                self.received(&buffer[..got.len], got.from, got.arrived);
            }
            while self.rtcp.recv(&mut buffer).is_ok() {}
        }
        stats
    }

    fn in_window(&self, at: Instant) -> bool {
        let window = lock(&self.window);
        window.start.is_some_and(|s| at >= s) && window.end.is_none_or(|e| at < e)
    }

    fn send_slot(&self, slot: u64, now: Instant, in_window: bool, packet: &mut Vec<u8>) {
        let mut shared = lock(&self.shared);
        let speech = &self.speech;
        for stream in shared.streams.iter_mut() {
            if !stream.active || stream.slot != slot {
                continue;
            }
            if stream.stop_at.is_some_and(|stop| now >= stop) {
                continue;
            }
            if stream.frame == 0 {
                stream.media.first_frame_at = (now - self.epoch).as_secs_f64();
            }
            let start = (stream.frame as usize * FRAME) % (speech.len() - speech.len() % FRAME);
            let header = RtpHeader::new(0, stream.sequence, stream.timestamp, stream.ssrc, false);
            packet.clear();
            rtp::write(&header, &speech[start..start + FRAME], packet);
            // A full socket buffer on loopback would be the far end's loss to see, not ours.
            let _ = self.socket.send_to(packet, stream.remote);
            stream.sequence = stream.sequence.wrapping_add(1);
            stream.timestamp = stream.timestamp.wrapping_add(FRAME as u32);
            stream.frame += 1;
            if in_window {
                stream.media.sent += 1;
            }
        }
    }

    fn received(&self, datagram: &[u8], from: SocketAddr, arrival: Instant) {
        if !self.in_window(arrival) {
            return;
        }
        let Ok(packet) = rtp::parse(datagram) else {
            return; // RTCP or garbage: not audio
        };
        let mut shared = lock(&self.shared);
        let Some(&index) = shared.by_remote.get(&from) else {
            return;
        };
        let stream = &mut shared.streams[index];
        let seq = extend_sequence(stream.highest_seq, packet.header.sequence);
        stream.highest_seq = Some(stream.highest_seq.map_or(seq, |h| h.max(seq)));
        stream.lowest_seq = Some(stream.lowest_seq.map_or(seq, |l| l.min(seq)));
        stream.media.received += 1;
        stream.media.expected =
            stream.highest_seq.unwrap_or(seq) - stream.lowest_seq.unwrap_or(seq) + 1;
        let first_ts = *stream.first_ts.get_or_insert(packet.header.timestamp);
        let rtp_secs = f64::from(packet.header.timestamp.wrapping_sub(first_ts)) / 8000.0;
        let at = (arrival - self.epoch).as_secs_f64();
        let transit = at - rtp_secs;
        let first = *stream.first_transit.get_or_insert(transit);
        stream
            .media
            .transit_ms
            .push(((transit - first) * 1000.0) as f32);
        if stream.record {
            let law = G711Law::from_payload_type(packet.header.payload_type);
            let mut pcm = Vec::with_capacity(FRAME);
            if let Some(law) = law {
                law.decode(packet.payload, &mut pcm);
            }
            stream
                .media
                .recording
                .push((at, packet.header.timestamp, pcm));
        }
    }
}

/// A 16-bit sequence number extended with the wrap count nearest the highest seen so far.
fn extend_sequence(highest: Option<u64>, seq: u16) -> u64 {
    let Some(highest) = highest else {
        return u64::from(seq) + (1 << 16);
    };
    let cycle = highest & !0xffff;
    let candidates = [cycle.wrapping_sub(1 << 16), cycle, cycle + (1 << 16)];
    candidates
        .iter()
        .map(|c| c + u64::from(seq))
        .min_by_key(|v| v.abs_diff(highest))
        .unwrap_or(highest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_extend_across_the_wrap() {
        let first = extend_sequence(None, 65534);
        let next = extend_sequence(Some(first), 65535);
        let wrapped = extend_sequence(Some(next), 1);
        assert_eq!(next, first + 1);
        assert_eq!(wrapped, first + 3);
        // A late packet from before the wrap stays before it.
        assert_eq!(extend_sequence(Some(wrapped), 65535), next);
    }
}
