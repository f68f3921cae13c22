//! The SIP transports: a tokio shell that moves bytes between sockets and the SIP core.
//!
//! Datagrams and stream frames are parsed here, on the receiving task, so a flood of garbage
//! costs the signalling task nothing; what cannot be parsed is answered with 400/501 when it can
//! be and counted either way. Stream connections are generic over `AsyncRead + AsyncWrite`, so
//! TLS is a different acceptor, not a different layer.
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::sip::codec::{self, CodecError, Frame};
use crate::sip::peer::{Peer, Transport};
use crate::sip::tls::{TlsClient, TlsServer};
use crate::sip::transaction::Transmit;
use crate::socket_buffers;

/// A message for the SIP core, with where it came from and which of our addresses it reached.
#[derive(Debug)]
pub struct Inbound {
    pub peer: Peer,
    pub local: SocketAddr,
    pub msg: rsip::SipMessage,
}

/// What the transports saw that never reached the SIP core.
#[derive(Debug, Default)]
pub struct TransportStats {
    pub malformed_answered: AtomicU64,
    pub malformed_dropped: AtomicU64,
    pub stream_framing_errors: AtomicU64,
    /// TLS connections whose handshake failed or timed out (a bad or missing client
    /// certificate, a scanner, plain SIP on the TLS port).
    pub tls_handshake_failures: AtomicU64,
}

/// TLS listeners and the settings their handshakes use (swapped by a reload).
pub struct TlsListen {
    pub addrs: Vec<SocketAddr>,
    pub server: Arc<ArcSwap<TlsServer>>,
}

/// Most simultaneous TCP connections; beyond this new ones are refused so a connection flood
/// cannot exhaust file descriptors the RTP ports need.
const MAX_STREAMS: usize = 4096;

/// 4 MiB holds about 1,800 INVITEs: a second of setups at a busy branch's peak, or the
/// signalling task held up by a few hundred milliseconds, without a drop. The default 208 KiB
/// held under a hundred and dropped INVITEs at 750 setups a second in the bench.
const UDP_SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// A TLS client that has not finished its handshake by then is dropped: a connection a scanner
/// opens and leaves idle must not hold one of the [`MAX_STREAMS`] slots.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Clone)]
pub struct Transports {
    inner: Arc<Inner>,
}

struct Inner {
    udp: Vec<Arc<UdpSocket>>,
    streams: Mutex<HashMap<SocketAddr, mpsc::UnboundedSender<Bytes>>>,
    /// Connections accepted and still in their TLS handshake: counted against [`MAX_STREAMS`].
    handshaking: std::sync::atomic::AtomicUsize,
    tls: Option<Arc<ArcSwap<TlsServer>>>,
    /// How to reach carriers we connect to over TLS, by address.
    tls_clients: Mutex<HashMap<SocketAddr, TlsClient>>,
    /// Every socket and listener, as bound.
    bound: Vec<(Transport, SocketAddr)>,
    /// Stream connections that closed or could not be opened, for the SIP core: what was
    /// registered through one registers again.
    flows_closed: mpsc::UnboundedSender<Peer>,
    flows_closed_rx: Mutex<Option<mpsc::UnboundedReceiver<Peer>>>,
    inbound: mpsc::Sender<Inbound>,
    public_address: Option<IpAddr>,
    local_ips: Mutex<HashMap<IpAddr, IpAddr>>,
    user_agent: String,
    pub stats: TransportStats,
    /// Ends every receive task, listener and stream: [`Transports::close`].
    closed: CancellationToken,
}

impl Transports {
    /// Binds every configured socket and starts their receive tasks. Returns the bound addresses
    /// (port 0 replaced by the real port).
    pub async fn bind(
        udp: &[SocketAddr],
        tcp: &[SocketAddr],
        tls: Option<TlsListen>,
        public_address: Option<IpAddr>,
        user_agent: String,
        inbound: mpsc::Sender<Inbound>,
    ) -> io::Result<(Transports, Vec<(Transport, SocketAddr)>)> {
        let mut bound = Vec::new();
        let mut udp_sockets = Vec::new();
        for addr in udp {
            let sock = UdpSocket::bind(addr)
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("udp {addr}: {e}")))?;
            socket_buffers::enlarge_or_warn(
                &sock,
                UDP_SOCKET_BUFFER,
                &format!("sip udp {addr}"),
                "a burst of call setups may drop INVITEs, which carriers resend only after 500 ms",
            );
            bound.push((Transport::Udp, sock.local_addr()?));
            udp_sockets.push(Arc::new(sock));
        }
        let mut listeners = Vec::new();
        for addr in tcp {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("tcp {addr}: {e}")))?;
            bound.push((Transport::Tcp, l.local_addr()?));
            listeners.push((l, Transport::Tcp));
        }
        for addr in tls.iter().flat_map(|t| &t.addrs) {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("tls {addr}: {e}")))?;
            bound.push((Transport::Tls, l.local_addr()?));
            listeners.push((l, Transport::Tls));
        }
        let (flows_closed, flows_closed_rx) = mpsc::unbounded_channel();
        let t = Transports {
            inner: Arc::new(Inner {
                udp: udp_sockets.clone(),
                streams: Mutex::new(HashMap::new()),
                handshaking: Default::default(),
                tls: tls.map(|t| t.server),
                tls_clients: Mutex::new(HashMap::new()),
                bound: bound.clone(),
                flows_closed,
                flows_closed_rx: Mutex::new(Some(flows_closed_rx)),
                inbound,
                public_address,
                local_ips: Mutex::new(HashMap::new()),
                user_agent,
                stats: TransportStats::default(),
                closed: CancellationToken::new(),
            }),
        };
        for sock in udp_sockets {
            tokio::spawn(t.clone().udp_loop(sock));
        }
        for (l, transport) in listeners {
            tokio::spawn(t.clone().accept_loop(l, transport));
        }
        Ok((t, bound))
    }

    /// Stops receiving, closes the listeners and every stream. The signalling task calls it
    /// last, once its final BYEs have had their answers.
    pub fn close(&self) {
        self.inner.closed.cancel();
    }

    pub fn stats(&self) -> &TransportStats {
        &self.inner.stats
    }

    /// The stream connections that close or fail to open, from now on: taken once, by the
    /// signalling task.
    pub fn closed_flows(&self) -> Option<mpsc::UnboundedReceiver<Peer>> {
        self.inner
            .flows_closed_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// How to connect to `peer` over TLS when there is something to send and no connection.
    pub fn set_tls_client(&self, peer: SocketAddr, client: TlsClient) {
        self.inner
            .tls_clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer, client);
    }

    /// New TLS settings for connections from now on (a reload); those up keep theirs.
    pub fn set_tls(&self, server: TlsServer) {
        if let Some(tls) = &self.inner.tls {
            tls.store(Arc::new(server));
        }
    }

    /// Sends without waiting: UDP goes straight out, stream data is queued on its connection
    /// (opening one if the carrier's has closed).
    pub fn send(&self, t: Transmit) {
        match t.peer.transport {
            Transport::Udp => {
                let Some(sock) = self.udp_for(t.peer.addr) else {
                    tracing::warn!(peer = %t.peer, "no udp socket of this address family");
                    return;
                };
                if let Err(e) = sock.try_send_to(&t.payload, t.peer.addr) {
                    tracing::debug!(peer = %t.peer, error = %e, "udp send failed");
                }
            }
            Transport::Tcp | Transport::Tls => {
                let sender = self.lock_streams().get(&t.peer.addr).cloned();
                let can_connect = t.peer.transport == Transport::Tcp
                    || self
                        .inner
                        .tls_clients
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .contains_key(&t.peer.addr);
                match sender {
                    Some(tx) if tx.send(t.payload.clone()).is_ok() => {}
                    _ if can_connect => {
                        tokio::spawn(self.clone().connect_and_send(t));
                    }
                    _ => tracing::warn!(peer = %t.peer, "no tls connection to send on"),
                }
            }
        }
    }

    /// Our address for `transport` as `peer` reaches it (Via and Contact of what we send it):
    /// the socket or listener of that transport and `peer`'s family. `None` without one.
    pub fn local_address(&self, transport: Transport, peer: SocketAddr) -> Option<SocketAddr> {
        let socket = self
            .inner
            .bound
            .iter()
            .find(|(t, a)| *t == transport && a.is_ipv4() == peer.is_ipv4())
            .map(|(_, a)| *a)?;
        Some(self.local_for(socket, peer.ip()))
    }

    /// The address of ours that `peer` reaches: the configured public address, the socket's
    /// own address when it is bound to one, or the source address the kernel would pick.
    pub fn local_for(&self, socket: SocketAddr, peer: IpAddr) -> SocketAddr {
        if let Some(public) = self.inner.public_address {
            return SocketAddr::new(public, socket.port());
        }
        if !socket.ip().is_unspecified() {
            return socket;
        }
        let mut cache = self
            .inner
            .local_ips
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let ip = *cache
            .entry(peer)
            .or_insert_with(|| route_source(peer).unwrap_or(peer));
        SocketAddr::new(ip, socket.port())
    }

    fn udp_for(&self, to: SocketAddr) -> Option<&Arc<UdpSocket>> {
        let same_family =
            |s: &&Arc<UdpSocket>| s.local_addr().is_ok_and(|a| a.is_ipv4() == to.is_ipv4());
        self.inner
            .udp
            .iter()
            .find(same_family)
            .or(self.inner.udp.first())
    }

    fn lock_streams(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, mpsc::UnboundedSender<Bytes>>> {
        // A poisoned map is still a valid map: a panicking connection task left it consistent.
        self.inner.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn udp_loop(self, sock: Arc<UdpSocket>) {
        let bound = match sock.local_addr() {
            Ok(a) => a,
            Err(_) => return,
        };
        let mut buf = vec![0u8; 65536];
        loop {
            let received = tokio::select! {
                r = sock.recv_from(&mut buf) => r,
                _ = self.inner.closed.cancelled() => return,
            };
            let (n, from) = match received {
                Ok(r) => r,
                Err(e) => {
                    // ICMP port-unreachable from an earlier send surfaces here on Linux: not fatal.
                    tracing::debug!(error = %e, "udp receive error");
                    continue;
                }
            };
            let peer = Peer::new(Transport::Udp, from);
            if let Some(reply) = self.deliver(peer, bound, &buf[..n]).await {
                let _ = sock.try_send_to(&reply, from);
            }
        }
    }

    /// Parses one message and hands it to the SIP core; returns a reply for what was refused.
    async fn deliver(&self, peer: Peer, bound: SocketAddr, bytes: &[u8]) -> Option<Bytes> {
        match codec::parse(bytes) {
            Ok(msg) => {
                let local = self.local_for(bound, peer.addr.ip());
                let _ = self.inner.inbound.send(Inbound { peer, local, msg }).await;
                None
            }
            Err(m) if m.error == CodecError::Empty => None,
            Err(m) => {
                // The shell, not the codec, draws the entropy for the reply's To tag.
                let reply = m.reply(&self.inner.user_agent, &mut rand::thread_rng());
                let counter = if reply.is_some() {
                    &self.inner.stats.malformed_answered
                } else {
                    &self.inner.stats.malformed_dropped
                };
                counter.fetch_add(1, Ordering::Relaxed);
                tracing::info!(%peer, error = %m.error, answered = reply.is_some(), "malformed sip message");
                reply
            }
        }
    }

    async fn accept_loop(self, listener: TcpListener, transport: Transport) {
        loop {
            let accepted = tokio::select! {
                r = listener.accept() => r,
                _ = self.inner.closed.cancelled() => return,
            };
            let (stream, from) = match accepted {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "tcp accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let open = self.lock_streams().len() + self.inner.handshaking.load(Ordering::Relaxed);
            if open >= MAX_STREAMS {
                tracing::warn!(%from, "too many sip connections: refusing");
                continue;
            }
            let _ = stream.set_nodelay(true);
            let Ok(bound) = stream.local_addr() else {
                continue;
            };
            match (transport, &self.inner.tls) {
                (Transport::Tls, Some(tls)) => {
                    let config = tls.load().for_peer(from.ip());
                    tokio::spawn(self.clone().handshake(stream, config, from, bound));
                }
                _ => {
                    tokio::spawn(self.clone().run_stream(stream, Transport::Tcp, from, bound));
                }
            }
        }
    }

    /// Counts a TLS handshake that failed (`None`: it timed out); why, for the log.
    fn handshake_failed(&self, error: Option<io::Error>) -> String {
        self.inner
            .stats
            .tls_handshake_failures
            .fetch_add(1, Ordering::Relaxed);
        match error {
            Some(e) => e.to_string(),
            None => format!("no handshake within {} s", TLS_HANDSHAKE_TIMEOUT.as_secs()),
        }
    }

    /// The server side of a TLS handshake, then the connection as any stream.
    async fn handshake(
        self,
        stream: TcpStream,
        config: Arc<rustls::ServerConfig>,
        from: SocketAddr,
        bound: SocketAddr,
    ) {
        self.inner.handshaking.fetch_add(1, Ordering::Relaxed);
        let accepted = tokio::time::timeout(
            TLS_HANDSHAKE_TIMEOUT,
            tokio_rustls::TlsAcceptor::from(config).accept(stream),
        )
        .await;
        self.inner.handshaking.fetch_sub(1, Ordering::Relaxed);
        match accepted {
            Ok(Ok(tls)) => self.run_stream(tls, Transport::Tls, from, bound).await,
            failed => {
                let error = self.handshake_failed(failed.ok().and_then(Result::err));
                tracing::info!(%from, %error, "sip tls handshake failed");
            }
        }
    }

    async fn connect_and_send(self, t: Transmit) {
        let stream = match TcpStream::connect(t.peer.addr).await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::info!(peer = %t.peer, error = %e, "sip connect failed");
                let _ = self.inner.flows_closed.send(t.peer);
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok(bound) = stream.local_addr() else {
            return;
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(t.payload.clone());
        if t.peer.transport != Transport::Tls {
            self.lock_streams().insert(t.peer.addr, tx);
            return self
                .run_stream_with(stream, Transport::Tcp, t.peer.addr, bound, rx)
                .await;
        }
        let client = self
            .inner
            .tls_clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&t.peer.addr)
            .cloned();
        let Some(client) = client else {
            return;
        };
        let connector = tokio_rustls::TlsConnector::from(client.config);
        let handshake = connector.connect(client.server_name, stream);
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await {
            Ok(Ok(tls)) => {
                self.lock_streams().insert(t.peer.addr, tx);
                self.run_stream_with(tls, Transport::Tls, t.peer.addr, bound, rx)
                    .await;
            }
            failed => {
                let error = self.handshake_failed(failed.ok().and_then(Result::err));
                tracing::warn!(peer = %t.peer, %error, "sip tls connection to the carrier failed");
                let _ = self.inner.flows_closed.send(t.peer);
            }
        }
    }

    async fn run_stream<S>(
        self,
        stream: S,
        transport: Transport,
        from: SocketAddr,
        bound: SocketAddr,
    ) where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock_streams().insert(from, tx);
        self.run_stream_with(stream, transport, from, bound, rx)
            .await;
    }

    /// One stream connection: a writer draining its queue and a reader framing by
    /// Content-Length. The connection is dropped from the registry when either side ends.
    async fn run_stream_with<S>(
        self,
        stream: S,
        transport: Transport,
        from: SocketAddr,
        bound: SocketAddr,
        mut outgoing: mpsc::UnboundedReceiver<Bytes>,
    ) where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let peer = Peer::new(transport, from);
        let (pong_tx, mut pong_rx) = mpsc::unbounded_channel::<Bytes>();
        let write_task = tokio::spawn(async move {
            loop {
                let chunk = tokio::select! {
                    Some(c) = outgoing.recv() => c,
                    Some(c) = pong_rx.recv() => c,
                    else => break,
                };
                if writer.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        });
        let mut buf = BytesMut::with_capacity(8192);
        'read: loop {
            let read = tokio::select! {
                r = reader.read_buf(&mut buf) => r,
                _ = self.inner.closed.cancelled() => break,
            };
            match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            loop {
                match codec::frame_stream(&buf) {
                    Ok(Frame::Incomplete) => break,
                    Ok(Frame::KeepAlive { n, ping }) => {
                        buf.advance(n);
                        if ping {
                            let _ = pong_tx.send(Bytes::from_static(b"\r\n"));
                        }
                    }
                    Ok(Frame::Message(n)) => {
                        let msg = buf.split_to(n).freeze();
                        if let Some(reply) = self.deliver(peer, bound, &msg).await {
                            let _ = pong_tx.send(reply);
                        }
                    }
                    Err(e) => {
                        // Without a trustworthy Content-Length the stream has lost its framing:
                        // answer what we can and close, as RFC 3261 §18.3 allows.
                        self.inner
                            .stats
                            .stream_framing_errors
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::info!(%peer, error = %e, "closing sip stream that cannot be framed");
                        if let Err(m) = codec::parse(&buf) {
                            if let Some(reply) =
                                m.reply(&self.inner.user_agent, &mut rand::thread_rng())
                            {
                                let _ = pong_tx.send(reply);
                            }
                        }
                        break 'read;
                    }
                }
            }
        }
        self.lock_streams().remove(&from);
        let _ = self.inner.flows_closed.send(peer);
        drop(pong_tx);
        let _ = write_task.await;
    }
}

/// The source address the kernel routes from toward `peer`, found by connecting a UDP socket
/// (no packet is sent).
fn route_source(peer: IpAddr) -> Option<IpAddr> {
    let any: SocketAddr = if peer.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = std::net::UdpSocket::bind(any).ok()?;
    s.connect(SocketAddr::new(peer, 9)).ok()?;
    s.local_addr().ok().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::socket_buffers::{receive_buffer, rmem_max};

    #[tokio::test]
    async fn the_sip_udp_socket_gets_a_buffer_for_bursts_of_setups() {
        let (inbound, _rx) = mpsc::channel(1);
        let (transports, _) = Transports::bind(
            &["127.0.0.1:0".parse().unwrap()],
            &[],
            None,
            None,
            "test".into(),
            inbound,
        )
        .await
        .unwrap();
        let got = receive_buffer(transports.inner.udp[0].as_ref());
        // Root (the tests' user here) has CAP_NET_ADMIN and gets the whole ask; others get up
        // to net.core.rmem_max.
        // SAFETY: geteuid has no preconditions.
        let expected = if unsafe { libc::geteuid() } == 0 {
            UDP_SOCKET_BUFFER
        } else {
            rmem_max().min(UDP_SOCKET_BUFFER)
        };
        assert!(
            got >= expected,
            "the SIP socket got {got} bytes of receive buffer, {expected} expected"
        );
    }

    #[tokio::test]
    async fn closed_transports_hang_up_their_streams_and_stop_listening() {
        let (inbound, _rx) = mpsc::channel(1);
        let (transports, bound) = Transports::bind(
            &[],
            &["127.0.0.1:0".parse().unwrap()],
            None,
            None,
            "test".into(),
            inbound,
        )
        .await
        .unwrap();
        let listening = bound[0].1;
        let mut carrier = TcpStream::connect(listening).await.unwrap();
        transports.close();
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), carrier.read(&mut byte)).await;
        assert!(
            matches!(read, Ok(Ok(0) | Err(_))),
            "the open stream is closed: {read:?}"
        );
        let refused = tokio::time::timeout(Duration::from_secs(5), async {
            while TcpStream::connect(listening).await.is_ok() {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(refused.is_ok(), "the listener is closed");
    }
}
