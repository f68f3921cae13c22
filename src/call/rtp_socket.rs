//! A call's RTP (and RTCP) socket, read once per frame instead of on every packet.
//!
//! A task woken per packet costs more than the packet's audio work on these machines
//! (docs/performance.md), and the call only uses the audio at its next frame anyway. So the
//! socket stays out of tokio's reactor (no wake-up of any thread when a packet arrives) and the
//! call drains it at each frame tick. Each packet still carries the time it really arrived:
//! the kernel stamps it (`SO_TIMESTAMPNS`), since the jitter buffers and RTCP's jitter need
//! arrival times, not the time of the tick that read them.
use std::io;
use std::mem::{size_of, zeroed, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant, SystemTime};

/// One datagram read by [`RtpSocket::recv`].
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub len: usize,
    pub from: SocketAddr,
    pub arrived: Instant,
}

#[derive(Debug)]
pub struct RtpSocket {
    socket: UdpSocket,
}

impl RtpSocket {
    /// Takes a bound socket; it is made non-blocking and asked for arrival stamps.
    pub fn new(socket: UdpSocket) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        let on: libc::c_int = 1;
        // SAFETY: a valid socket descriptor, and a c_int option value of the stated size.
        let result = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if result != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { socket })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends without waiting: a full socket buffer is an error (the caller drops the packet).
    pub fn send_to(&self, packet: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.socket.send_to(packet, to)
    }

    /// The next waiting datagram, or `WouldBlock` when there is none. `clock` is a pair of
    /// readings of the two clocks taken together (see [`Clock::now`]), to turn the kernel's
    /// wall-clock stamp into an `Instant`.
    pub fn recv(&self, buf: &mut [u8], clock: &Clock) -> io::Result<Received> {
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut address: libc::sockaddr_storage = unsafe { zeroed() };
        let mut control = [MaybeUninit::<u64>::uninit(); 8]; // 64 bytes, aligned for cmsghdr
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: all-zero is a valid msghdr; the pointers set below outlive the call.
        let mut message: libc::msghdr = unsafe { zeroed() };
        message.msg_name = (&mut address as *mut libc::sockaddr_storage).cast();
        message.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        message.msg_iov = &mut iov;
        message.msg_iovlen = 1;
        message.msg_control = control.as_mut_ptr().cast();
        message.msg_controllen = size_of::<[u64; 8]>() as _;
        // SAFETY: a valid descriptor and a msghdr whose buffers are live and correctly sized.
        let len = unsafe { libc::recvmsg(self.socket.as_raw_fd(), &mut message, 0) };
        if len < 0 {
            return Err(io::Error::last_os_error());
        }
        let from = socket_addr(&address).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "datagram from an unknown family",
            )
        })?;
        // SAFETY: the kernel filled msg_control with msg_controllen bytes of cmsgs; the CMSG
        // macros walk exactly those.
        let stamp = unsafe { kernel_stamp(&message) };
        Ok(Received {
            // Non-negative after the check above.
            len: len as usize,
            from,
            arrived: stamp.map_or(clock.instant, |at| clock.instant_of(at)),
        })
    }
}

impl AsRawFd for RtpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

/// A monotonic and a wall-clock reading taken together.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub instant: Instant,
    pub system: SystemTime,
}

impl Clock {
    pub fn now() -> Self {
        Self {
            instant: Instant::now(),
            system: SystemTime::now(),
        }
    }

    /// The `Instant` of a wall-clock time shortly before this reading; never later than it
    /// (a wall clock stepped meanwhile would otherwise put packets in the future).
    pub fn instant_of(&self, at: SystemTime) -> Instant {
        let ago = self.system.duration_since(at).unwrap_or(Duration::ZERO);
        self.instant.checked_sub(ago).unwrap_or(self.instant)
    }
}

/// The SCM_TIMESTAMPNS stamp among a received message's control messages.
///
/// # Safety
/// `message` must be a msghdr just filled by `recvmsg`.
unsafe fn kernel_stamp(message: &libc::msghdr) -> Option<SystemTime> {
    let mut cmsg = libc::CMSG_FIRSTHDR(message);
    while !cmsg.is_null() {
        let header = &*cmsg;
        if header.cmsg_level == libc::SOL_SOCKET && header.cmsg_type == libc::SCM_TIMESTAMPNS {
            let spec: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
            let since_epoch = Duration::new(
                u64::try_from(spec.tv_sec).ok()?,
                u32::try_from(spec.tv_nsec).ok()?,
            );
            return SystemTime::UNIX_EPOCH.checked_add(since_epoch);
        }
        cmsg = libc::CMSG_NXTHDR(message, cmsg);
    }
    None
}

fn socket_addr(address: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(address.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let v4: &libc::sockaddr_in =
                unsafe { &*(address as *const libc::sockaddr_storage).cast() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)),
                u16::from_be(v4.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let v6: &libc::sockaddr_in6 =
                unsafe { &*(address as *const libc::sockaddr_storage).cast() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(v6.sin6_addr.s6_addr),
                u16::from_be(v6.sin6_port),
                v6.sin6_flowinfo,
                v6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_come_with_their_sender_and_kernel_arrival_time() {
        let socket = RtpSocket::new(UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
        let mut buf = [0u8; 64];
        let nothing = socket.recv(&mut buf, &Clock::now()).unwrap_err();
        assert_eq!(nothing.kind(), io::ErrorKind::WouldBlock);

        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Linux switches receive stamping on for the whole stack in a deferred work item the
        // first time a socket asks; until it has run, a packet is stamped when it is read.
        // Wait (bounded) until a probe shows stamps taken on arrival.
        let stamping = (0..50).any(|_| {
            peer.send_to(b"probe", socket.local_addr().unwrap())
                .unwrap();
            std::thread::sleep(Duration::from_millis(10));
            let clock = Clock::now();
            let probe = socket.recv(&mut buf, &clock).unwrap();
            clock.instant - probe.arrived >= Duration::from_millis(5)
        });
        assert!(stamping, "the kernel never stamped a packet on arrival");
        let sent_at = Instant::now();
        peer.send_to(b"first", socket.local_addr().unwrap())
            .unwrap();
        peer.send_to(b"second!", socket.local_addr().unwrap())
            .unwrap();
        // The stamp is the kernel's, not the read's: read well after the packets arrived.
        std::thread::sleep(Duration::from_millis(30));
        let clock = Clock::now();
        let first = socket.recv(&mut buf, &clock).unwrap();
        assert_eq!(&buf[..first.len], b"first");
        assert_eq!(first.from, peer.local_addr().unwrap());
        assert!(first.arrived >= sent_at - Duration::from_millis(1));
        assert!(
            clock.instant - first.arrived >= Duration::from_millis(25),
            "stamped {:?} before the read",
            clock.instant - first.arrived
        );
        let second = socket.recv(&mut buf, &clock).unwrap();
        assert_eq!(&buf[..second.len], b"second!");
        assert!(second.arrived >= first.arrived);
    }

    #[test]
    fn ipv6_senders_are_named_too() {
        let Ok(bound) = UdpSocket::bind("[::1]:0") else {
            return; // no IPv6 loopback on this machine
        };
        let socket = RtpSocket::new(bound).unwrap();
        let peer = UdpSocket::bind("[::1]:0").unwrap();
        peer.send_to(b"x", socket.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 8];
        let deadline = Instant::now() + Duration::from_secs(2);
        let got = loop {
            match socket.recv(&mut buf, &Clock::now()) {
                Ok(got) => break got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {}
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(got.from, peer.local_addr().unwrap());
    }

    #[test]
    fn a_stamp_after_the_reading_is_taken_as_the_reading() {
        let clock = Clock::now();
        let later = clock.system + Duration::from_secs(3);
        assert_eq!(clock.instant_of(later), clock.instant);
        let earlier = clock.system - Duration::from_millis(7);
        assert_eq!(
            clock.instant - clock.instant_of(earlier),
            Duration::from_millis(7)
        );
    }
}
