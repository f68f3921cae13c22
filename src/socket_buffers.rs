//! Socket buffers bigger than Linux's default (208 KiB, a few hundred small datagrams): a
//! socket that many peers send to at once — the SIP port at a burst of call setups, the agent
//! endpoint at a shift start — drops what does not fit, and each drop costs a retransmission
//! timer (500 ms for an INVITE, a second or more for a QUIC handshake).
use std::os::fd::{AsRawFd, RawFd};

/// What a socket got, in bytes of payload (the kernel reports twice what it counts).
pub struct Granted {
    pub receive: usize,
}

/// Asks for `bytes` both ways: forced past `net.core.{r,w}mem_max` where the process may
/// (CAP_NET_ADMIN), else up to them.
pub fn enlarge(socket: &impl AsRawFd, bytes: usize) -> Granted {
    let fd = socket.as_raw_fd();
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    for (force, plain) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ] {
        if set(fd, force, value).is_err() {
            // Without the capability: as much as net.core.*mem_max allows.
            let _ = set(fd, plain, value);
        }
    }
    Granted {
        receive: receive_buffer(socket),
    }
}

/// A socket's receive buffer in bytes of payload (0 if it cannot be read).
pub fn receive_buffer(socket: &impl AsRawFd) -> usize {
    get(socket.as_raw_fd(), libc::SO_RCVBUF).map_or(0, |v| v / 2)
}

/// `net.core.rmem_max`, the most a socket gets without CAP_NET_ADMIN.
#[cfg(test)]
pub(crate) fn rmem_max() -> usize {
    std::fs::read_to_string("/proc/sys/net/core/rmem_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// [`enlarge`], with a warning naming `port` and what it risks (`at_risk`) when the system
/// ceiling held the receive buffer below `bytes`.
pub fn enlarge_or_warn(socket: &impl AsRawFd, bytes: usize, port: &str, at_risk: &str) {
    let granted = enlarge(socket, bytes);
    if granted.receive < bytes {
        tracing::warn!(
            asked_kib = bytes / 1024,
            granted_kib = granted.receive / 1024,
            "{port}: the UDP receive buffer is smaller than asked; {at_risk}. Raise \
             net.core.rmem_max (the packages install /usr/lib/sysctl.d/60-trunkgate.conf)"
        );
    }
}

fn set(fd: RawFd, option: libc::c_int, value: libc::c_int) -> Result<(), ()> {
    // SAFETY: a valid descriptor and a c_int option value of the stated size.
    let result = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(())
    }
}

fn get(fd: RawFd, option: libc::c_int) -> Option<usize> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid descriptor; value and len are live and sized for a c_int.
    let result = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (result == 0).then(|| usize::try_from(value).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::{enlarge, get, rmem_max};

    const ASK: usize = 4 * 1024 * 1024;

    #[test]
    fn a_socket_gets_the_buffer_it_asks_for_or_the_system_ceiling() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let default = get(socket.as_raw_fd(), libc::SO_RCVBUF).unwrap() / 2;
        let granted = enlarge(&socket, ASK);
        let ceiling = rmem_max();
        // With CAP_NET_ADMIN (root) the whole ask; without, up to net.core.rmem_max.
        assert!(
            granted.receive >= ASK || granted.receive >= ceiling.min(ASK),
            "granted {} bytes (default {default}, rmem_max {ceiling})",
            granted.receive
        );
        assert!(granted.receive >= default);
    }
}
