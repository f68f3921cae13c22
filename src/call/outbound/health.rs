//! Which carrier proxies answer, for RFC 3263 failover, as a sans-IO table (time passed in).
//! A proxy that let an INVITE time out, refused it with 503 or lost its connection is marked
//! down: calls try the others first, and it is probed with OPTIONS every `probe_every` until
//! it answers; then it is up again and takes calls in its turn. A proxy that answered anything
//! else (a 486, a 404) is up: the answer was the callee's, not the proxy's failure.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::sip::peer::Peer;

/// Whether a failed INVITE is the proxy's failure (RFC 3263 §4.3: no answer at all, 503, or
/// its connection lost, which the UA reports as 503), to try the next proxy; anything else is
/// the callee's side answering, final wherever it came from.
pub fn proxy_failed(status: u16, reason: &str) -> bool {
    reason == crate::sip::ua::NO_RESPONSE || status == 503
}

#[derive(Debug, Clone)]
struct Down {
    trunk: String,
    /// The proxy's host, for the probe's Request-URI.
    host: String,
    /// Our address as the proxy reaches us.
    local: SocketAddr,
    probe_every: Duration,
    next_probe: Instant,
    /// A probe is on its way: no second one until it is answered or times out.
    probing: bool,
}

/// A probe to send now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub peer: Peer,
    pub local: SocketAddr,
    pub host: String,
}

#[derive(Debug, Default)]
pub struct Health {
    down: HashMap<Peer, Down>,
}

impl Health {
    pub fn is_up(&self, peer: &Peer) -> bool {
        !self.down.contains_key(peer)
    }

    /// `candidates` in the order to try: those up as given, then those down (a last resort:
    /// better a proxy that may have recovered than no call).
    pub fn order<T>(&self, candidates: Vec<T>, peer_of: impl Fn(&T) -> Peer) -> Vec<T> {
        let (up, down): (Vec<T>, Vec<T>) = candidates
            .into_iter()
            .partition(|c| self.is_up(&peer_of(c)));
        up.into_iter().chain(down).collect()
    }

    /// `peer` failed a call: down, probed from `probe_every` on. True if it was up until now.
    pub fn failed(
        &mut self,
        now: Instant,
        peer: Peer,
        trunk: &str,
        host: &str,
        local: SocketAddr,
        probe_every: Duration,
    ) -> bool {
        let was_up = !self.down.contains_key(&peer);
        self.down.entry(peer).or_insert_with(|| Down {
            trunk: trunk.to_owned(),
            host: host.to_owned(),
            local,
            probe_every,
            next_probe: now + probe_every,
            probing: false,
        });
        was_up
    }

    /// `peer` answered (a call's response, or a probe): up. True if it was down until now.
    pub fn answered(&mut self, peer: &Peer) -> bool {
        self.down.remove(peer).is_some()
    }

    /// A probe of `peer` went unanswered (or got 503): the next one after `probe_every`.
    pub fn probe_failed(&mut self, now: Instant, peer: &Peer) {
        if let Some(down) = self.down.get_mut(peer) {
            down.probing = false;
            down.next_probe = now + down.probe_every;
        }
    }

    /// The probes due now; each is on its way until [`Health::answered`] or
    /// [`Health::probe_failed`].
    pub fn due_probes(&mut self, now: Instant) -> Vec<Probe> {
        self.down
            .iter_mut()
            .filter(|(_, d)| !d.probing && d.next_probe <= now)
            .map(|(peer, d)| {
                d.probing = true;
                Probe {
                    peer: *peer,
                    local: d.local,
                    host: d.host.clone(),
                }
            })
            .collect()
    }

    /// Proxies down now, per trunk, for the gauge.
    pub fn down_per_trunk(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for d in self.down.values() {
            *counts.entry(d.trunk.clone()).or_default() += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::peer::Transport;

    fn peer(port: u16) -> Peer {
        Peer::new(Transport::Udp, SocketAddr::from(([127, 0, 0, 1], port)))
    }

    const LOCAL: &str = "127.0.0.1:5060";

    #[test]
    fn timeouts_and_503_are_the_proxys_failures_other_answers_the_callees() {
        assert!(proxy_failed(408, crate::sip::ua::NO_RESPONSE));
        assert!(proxy_failed(503, "Service Unavailable"));
        for status in [408, 480, 486, 600, 603, 404, 500] {
            assert!(!proxy_failed(status, "from the far end"), "{status}");
        }
    }

    #[test]
    fn a_failed_proxy_goes_last_until_a_probe_finds_it_answering() {
        let mut h = Health::default();
        let now = Instant::now();
        let every = Duration::from_secs(5);
        assert_eq!(h.order(vec![1, 2, 3], |p| peer(*p)), [1, 2, 3]);
        assert!(h.failed(
            now,
            peer(1),
            "carrier",
            "sip1.test",
            LOCAL.parse().unwrap(),
            every
        ));
        assert!(!h.failed(
            now,
            peer(1),
            "carrier",
            "sip1.test",
            LOCAL.parse().unwrap(),
            every
        ));
        assert_eq!(h.order(vec![1, 2, 3], |p| peer(*p)), [2, 3, 1]);
        assert!(h.due_probes(now + Duration::from_secs(4)).is_empty());
        let due = h.due_probes(now + every);
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].peer, due[0].host.as_str()), (peer(1), "sip1.test"));
        // One probe at a time.
        assert!(h.due_probes(now + every * 2).is_empty());
        h.probe_failed(now + every * 2, &peer(1));
        assert!(h.due_probes(now + every * 2).is_empty());
        assert_eq!(h.due_probes(now + every * 3).len(), 1);
        assert_eq!(h.down_per_trunk().get("carrier"), Some(&1));
        assert!(h.answered(&peer(1)));
        assert!(!h.answered(&peer(1)));
        assert_eq!(h.order(vec![1, 2, 3], |p| peer(*p)), [1, 2, 3]);
        assert!(h.down_per_trunk().is_empty());
    }
}
