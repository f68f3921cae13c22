//! Free loopback ports for peers that cannot pick their own (SIPp needs `-p` and `-mp` up
//! front; baresip needs `sip_listen`).
//!
//! The kernel hands out an ephemeral port, the probe socket closes, and the peer binds it a
//! moment later. Another process can take the port in between; that race is rare on loopback
//! and shows up as a peer failing to bind, which its runner reports. The daemon itself never
//! needs this: it is configured with port 0 and reports the ports it bound.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};

/// A UDP port free on 127.0.0.1 now (for a peer that must be named before it starts).
pub fn free_udp_port() -> u16 {
    local_port(UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|s| s.local_addr()))
}

/// A TCP port free on 127.0.0.1 now (a WebDriver server's, say).
pub fn free_tcp_port() -> u16 {
    local_port(TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()))
}

/// A port free for both UDP and TCP on 127.0.0.1 (SIP peers listen on both), with TCP on the
/// port above free too: baresip listens for SIP over TLS there (seen taken by a browser's
/// outgoing connection, which failed a test).
pub fn free_sip_port() -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding 127.0.0.1:0 (udp)");
        let port = local_port(udp.local_addr());
        if port == u16::MAX {
            continue;
        }
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, port));
        let tls = TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1));
        if tcp.is_ok() && tls.is_ok() {
            return port;
        }
    }
    panic!("no port free for both udp and tcp on 127.0.0.1 after 100 tries");
}

/// An even UDP port `p` with `p`, `p+1`, `p+2` and `p+3` free on 127.0.0.1: SIPp's media port
/// (`-mp`) uses `p` for audio and `p+2` for video, each with RTCP on the next odd port.
pub fn free_rtp_port() -> u16 {
    for _ in 0..200 {
        let probe = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding 127.0.0.1:0 (udp)");
        let base = local_port(probe.local_addr()) & !1;
        drop(probe);
        if base > u16::MAX - 3 {
            continue;
        }
        let all_free = (base..=base + 3)
            .map(|port| UdpSocket::bind((Ipv4Addr::LOCALHOST, port)))
            .collect::<Result<Vec<_>, _>>()
            .is_ok();
        if all_free {
            return base;
        }
    }
    panic!("no 4 consecutive free udp ports on 127.0.0.1 after 200 tries");
}

fn local_port(addr: std::io::Result<SocketAddr>) -> u16 {
    addr.expect("a bound socket has a local address").port()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_port_is_bindable_for_udp_and_tcp() {
        let port = free_sip_port();
        assert_ne!(port, 0);
        UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).expect("udp port reported free");
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("tcp port reported free");
    }

    #[test]
    fn rtp_port_is_even_with_three_free_neighbours() {
        let base = free_rtp_port();
        assert_eq!(base % 2, 0, "rtp port {base} is odd");
        for port in base..=base + 3 {
            UdpSocket::bind((Ipv4Addr::LOCALHOST, port))
                .unwrap_or_else(|err| panic!("port {port} reported free: {err}"));
        }
    }
}
