//! RTP port pairs from the configured range.
//!
//! Allocation is by trying to bind: a port that another process (or another gateway on the
//! same machine) holds is simply skipped, and a port is free again as soon as its call's sockets
//! are dropped, with no bookkeeping to leak.
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};

use tokio::net::UdpSocket;

pub struct RtpPorts {
    min: u16,
    max: u16,
    next: AtomicU16,
}

impl RtpPorts {
    /// `min`..=`max`, rounded so RTP gets even ports and RTCP the odd one above.
    pub fn new(min: u16, max: u16) -> Self {
        let min = min + (min % 2);
        RtpPorts {
            min,
            max,
            next: AtomicU16::new(min),
        }
    }

    fn pairs(&self) -> u16 {
        self.max.saturating_sub(self.min).div_ceil(2)
    }

    /// Binds an RTP socket and its RTCP neighbour on `ip`.
    pub async fn allocate(&self, ip: IpAddr) -> io::Result<(UdpSocket, UdpSocket)> {
        let pairs = self.pairs().max(1);
        for _ in 0..pairs {
            let idx = self.next.fetch_add(1, Ordering::Relaxed) % pairs;
            let port = self.min + idx * 2;
            let Ok(rtp) = UdpSocket::bind(SocketAddr::new(ip, port)).await else {
                continue;
            };
            let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(ip, port + 1)).await else {
                continue;
            };
            return Ok((rtp, rtcp));
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("no free rtp port pair in {}-{} on {ip}", self.min, self.max),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pairs_are_even_odd_and_skip_ports_in_use() {
        let ports = RtpPorts::new(41001, 41009);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let (a, a_rtcp) = ports.allocate(ip).await.unwrap();
        let pa = a.local_addr().unwrap().port();
        assert_eq!(pa % 2, 0);
        assert_eq!(a_rtcp.local_addr().unwrap().port(), pa + 1);
        let mut held = vec![(a, a_rtcp)];
        for _ in 0..3 {
            held.push(ports.allocate(ip).await.unwrap());
        }
        let mut used: Vec<u16> = held
            .iter()
            .map(|(s, _)| s.local_addr().unwrap().port())
            .collect();
        used.sort();
        used.dedup();
        assert_eq!(used.len(), 4, "every call gets its own pair");
        assert!(
            ports.allocate(ip).await.is_err(),
            "range of 4 pairs is exhausted"
        );
        held.pop();
        assert!(
            ports.allocate(ip).await.is_ok(),
            "a dropped pair is free again"
        );
    }
}
