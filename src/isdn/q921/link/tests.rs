//! Two LAPD links, the user side and the network side, wired together in memory in virtual
//! time: establishment, messages both ways in order and once, a window, frames lost and
//! recovered (REJ, and T200 with enquiry), T203 on an idle link, a peer that goes silent
//! (N200), release, and a malformed frame.
use std::time::{Duration, Instant};

use super::*;

struct Pair {
    user: Link,
    network: Link,
    now: Instant,
    /// Frames each way not delivered: the n-th frame the user (or network) sends is lost.
    drop_from_user: Vec<usize>,
    drop_from_network: Vec<usize>,
    sent_by_user: usize,
    sent_by_network: usize,
    /// The network side is unplugged: it hears nothing and says nothing.
    network_gone: bool,
    user_events: Vec<Event>,
    network_events: Vec<Event>,
}

impl Pair {
    fn new() -> Self {
        Pair {
            user: Link::new(false, LinkConfig::default()),
            network: Link::new(true, LinkConfig::default()),
            now: Instant::now(),
            drop_from_user: Vec::new(),
            drop_from_network: Vec::new(),
            sent_by_user: 0,
            sent_by_network: 0,
            network_gone: false,
            user_events: Vec::new(),
            network_events: Vec::new(),
        }
    }

    /// Moves frames both ways until neither side has any to send.
    fn exchange(&mut self) {
        loop {
            let mut moved = false;
            while let Some(f) = self.user.poll_transmit() {
                moved = true;
                self.sent_by_user += 1;
                if !self.network_gone && !self.drop_from_user.contains(&self.sent_by_user) {
                    self.network.handle_frame(self.now, &f);
                }
            }
            while let Some(f) = self.network.poll_transmit() {
                moved = true;
                self.sent_by_network += 1;
                if !self.network_gone && !self.drop_from_network.contains(&self.sent_by_network) {
                    self.user.handle_frame(self.now, &f);
                }
            }
            if !moved {
                break;
            }
        }
        self.user_events
            .extend(std::iter::from_fn(|| self.user.poll_event()));
        self.network_events
            .extend(std::iter::from_fn(|| self.network.poll_event()));
    }

    /// Runs the clock for `d`, timeout to timeout, exchanging frames at each.
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        self.exchange();
        loop {
            let network = (!self.network_gone)
                .then(|| self.network.poll_timeout())
                .flatten();
            let next = [self.user.poll_timeout(), network]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = t.max(self.now);
                    self.user.handle_timeout(self.now);
                    if !self.network_gone {
                        self.network.handle_timeout(self.now);
                    }
                    self.exchange();
                }
                _ => break,
            }
        }
        self.now = end;
    }

    fn established() -> Self {
        let mut p = Pair::new();
        p.user.establish(p.now);
        p.exchange();
        assert_eq!(p.user.state(), State::Established);
        assert_eq!(p.network.state(), State::Established);
        p.user_events.clear();
        p.network_events.clear();
        p
    }

    fn data(events: &[Event]) -> Vec<Vec<u8>> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Data(d) => Some(d.clone()),
                _ => None,
            })
            .collect()
    }
}

fn messages(n: u8) -> Vec<Vec<u8>> {
    (0..n).map(|i| vec![0x08, 0x02, 0x00, i, 0x05]).collect()
}

#[test]
fn the_user_side_establishes_the_link_and_both_say_so() {
    let mut p = Pair::new();
    p.user.establish(p.now);
    p.exchange();
    assert_eq!(p.user_events, vec![Event::Established]);
    assert_eq!(p.network_events, vec![Event::Established]);
}

#[test]
fn messages_cross_both_ways_in_order_once_and_wait_for_the_window() {
    let mut p = Pair::established();
    let before = p.sent_by_user;
    for m in messages(20) {
        p.user.send(p.now, m);
    }
    for m in messages(3) {
        p.network.send(p.now, m);
    }
    p.exchange();
    assert_eq!(Pair::data(&p.network_events), messages(20));
    assert_eq!(Pair::data(&p.user_events), messages(3));
    // Twenty messages with a window of 7 need the peer's acknowledgements to get through; the
    // user side sent each once.
    assert_eq!(
        p.sent_by_user - before,
        20 + 3,
        "20 I frames and an RR for each of the 3 received"
    );
}

#[test]
fn a_lost_frame_followed_by_another_is_asked_for_again_with_rej() {
    let mut p = Pair::established();
    // The first of the three I frames.
    p.drop_from_user = vec![p.sent_by_user + 1];
    for m in messages(3) {
        p.user.send(p.now, m);
    }
    p.exchange();
    assert_eq!(
        Pair::data(&p.network_events),
        messages(3),
        "in order, once, without waiting for T200"
    );
}

#[test]
fn a_lost_last_frame_is_recovered_by_t200_and_an_enquiry() {
    let mut p = Pair::established();
    p.drop_from_user = vec![p.sent_by_user + 1];
    p.user.send(p.now, messages(1)[0].clone());
    p.exchange();
    assert!(Pair::data(&p.network_events).is_empty());
    p.run(Duration::from_millis(1500));
    assert_eq!(Pair::data(&p.network_events), messages(1));
    assert_eq!(p.user.state(), State::Established);
}

#[test]
fn an_idle_link_is_checked_every_t203_and_stays_up() {
    let mut p = Pair::established();
    let before = p.sent_by_user;
    p.run(Duration::from_secs(35));
    assert_eq!(p.user.state(), State::Established);
    assert_eq!(p.network.state(), State::Established);
    assert!(p.sent_by_user > before, "enquiries while idle");
    assert!(p.user_events.is_empty() && p.network_events.is_empty());
}

#[test]
fn a_silent_peer_is_given_up_after_n200_and_the_link_re_established() {
    let mut p = Pair::established();
    p.network_gone = true;
    p.user.send(p.now, messages(1)[0].clone());
    // T200 runs out, N200 enquiries go unanswered, then N200 SABMEs.
    p.run(Duration::from_secs(10));
    assert_eq!(p.user.state(), State::Released);
    let errors: Vec<&Event> = p
        .user_events
        .iter()
        .filter(|e| matches!(e, Event::Error(_)))
        .collect();
    assert_eq!(errors.len(), 2, "{:?}", p.user_events);
    assert_eq!(p.user_events.last(), Some(&Event::Released));

    // The peer comes back; layer 3 establishes again and the message goes out.
    p.network_gone = false;
    p.network = Link::new(true, LinkConfig::default());
    p.user.establish(p.now);
    p.user.send(p.now, messages(2)[1].clone());
    p.exchange();
    assert_eq!(p.user.state(), State::Established);
    assert_eq!(Pair::data(&p.network_events), vec![messages(2)[1].clone()]);
}

#[test]
fn either_side_releases_the_link() {
    let mut p = Pair::established();
    p.network.release(p.now);
    p.exchange();
    assert_eq!(p.user.state(), State::Released);
    assert_eq!(p.network.state(), State::Released);
    assert_eq!(p.user_events, vec![Event::Released]);
    assert_eq!(p.network_events, vec![Event::Released]);
}

#[test]
fn a_malformed_frame_is_reported_and_changes_nothing() {
    let mut p = Pair::established();
    p.user.handle_frame(p.now, &[0xff, 0xff, 0xff]);
    p.user.handle_frame(p.now, &[]);
    let errors = std::iter::from_fn(|| p.user.poll_event())
        .filter(|e| matches!(e, Event::Error(_)))
        .count();
    assert_eq!(errors, 2);
    assert_eq!(p.user.state(), State::Established);
    assert!(p.user.poll_transmit().is_none(), "nothing answered");
}

#[test]
fn sequence_numbers_wrap_past_127_with_a_frame_lost_on_the_way() {
    let mut p = Pair::established();
    // Lost: one I frame near the wrap.
    p.drop_from_user = vec![p.sent_by_user + 126];
    let many: Vec<Vec<u8>> = (0..300u16).map(|i| i.to_be_bytes().to_vec()).collect();
    for m in &many {
        p.user.send(p.now, m.clone());
    }
    p.run(Duration::from_secs(5));
    assert_eq!(Pair::data(&p.network_events), many);
    assert_eq!(p.user.state(), State::Established);
}
