//! The impairment core in virtual time: arrivals are placed on a clock that only moves when the
//! driver jumps it to the next arrival or to the link's next timeout.

use super::*;
use crate::relay::impairment::BurstLoss;

const MS: Duration = Duration::from_millis(1);

/// A datagram as it left the link: when (from the start of the run) and its sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Delivered {
    after: Duration,
    flow: FlowId,
    seq: u32,
}

/// Feeds `count` datagrams of flow 0, `spacing` apart (sequence number as payload), and runs
/// the link until it is empty.
fn run_evenly(link: &mut Link, count: u32, spacing: Duration) -> Vec<Delivered> {
    let arrivals: Vec<(Duration, FlowId, u32)> =
        (0..count).map(|seq| (spacing * seq, 0, seq)).collect();
    run(link, &arrivals)
}

fn run(link: &mut Link, arrivals: &[(Duration, FlowId, u32)]) -> Vec<Delivered> {
    let base = Instant::now();
    let mut delivered = Vec::new();
    let mut advance_to = |link: &mut Link, until: Option<Instant>| {
        while let Some(due) = link.poll_timeout() {
            if until.is_some_and(|until| due > until) {
                break;
            }
            link.handle_timeout(due);
            while let Some(transmit) = link.poll_transmit(due) {
                let seq = u32::from_be_bytes(transmit.payload[..4].try_into().unwrap());
                delivered.push(Delivered {
                    after: due - base,
                    flow: transmit.flow,
                    seq,
                });
            }
        }
    };
    for &(offset, flow, seq) in arrivals {
        let now = base + offset;
        advance_to(link, Some(now));
        link.handle_datagram(now, flow, seq.to_be_bytes().to_vec());
    }
    advance_to(link, None);
    delivered
}

fn seqs(delivered: &[Delivered]) -> Vec<u32> {
    delivered.iter().map(|d| d.seq).collect()
}

fn link(impairment: Impairment, seed: u64) -> Link {
    impairment.validate().expect("test impairment is valid");
    Link::new(impairment, seed, 0)
}

#[test]
fn perfect_link_delivers_everything_at_arrival_in_order() {
    let mut perfect = link(Impairment::default(), 1);
    let delivered = run_evenly(&mut perfect, 100, 20 * MS);
    assert_eq!(seqs(&delivered), (0..100).collect::<Vec<_>>());
    for d in &delivered {
        assert_eq!(d.after, 20 * MS * d.seq, "datagram {} was delayed", d.seq);
    }
    let stats = perfect.stats();
    assert_eq!((stats.received, stats.forwarded), (100, 100));
    assert_eq!(stats.dropped + stats.reordered + stats.duplicated, 0);
}

#[test]
fn loss_is_near_the_configured_rate_and_repeats_for_a_seed() {
    let lossy = Impairment {
        loss_pct: 30.0,
        ..Impairment::default()
    };
    let first = seqs(&run_evenly(&mut link(lossy.clone(), 7), 10_000, MS));
    let again = seqs(&run_evenly(&mut link(lossy.clone(), 7), 10_000, MS));
    let other_seed = seqs(&run_evenly(&mut link(lossy, 8), 10_000, MS));
    let lost_share = 1.0 - first.len() as f64 / 10_000.0;
    // 30 % ± 2 points is more than 4 standard deviations of a binomial over 10 000.
    assert!((0.28..=0.32).contains(&lost_share), "lost {lost_share:.3}");
    assert_eq!(first, again, "same seed, different drops");
    assert_ne!(first, other_seed, "different seeds, same drops");
}

#[test]
fn directions_draw_from_separate_streams() {
    let lossy = Impairment {
        loss_pct: 50.0,
        ..Impairment::default()
    };
    let up = seqs(&run_evenly(&mut Link::new(lossy.clone(), 3, 0), 200, MS));
    let down = seqs(&run_evenly(&mut Link::new(lossy, 3, 1), 200, MS));
    assert_ne!(up, down);
}

#[test]
fn loss_decisions_do_not_move_when_only_delays_change() {
    let lossy = Impairment {
        loss_pct: 30.0,
        ..Impairment::default()
    };
    let lossy_and_late = Impairment {
        delay: 50 * MS,
        jitter: 40 * MS,
        ..lossy.clone()
    };
    let mut plain = seqs(&run_evenly(&mut link(lossy, 11), 2000, 20 * MS));
    let mut jittered = seqs(&run_evenly(&mut link(lossy_and_late, 11), 2000, 20 * MS));
    plain.sort_unstable();
    jittered.sort_unstable();
    assert_eq!(plain, jittered);
}

#[test]
fn burst_loss_comes_in_runs_of_the_configured_mean_length() {
    let bursty = Impairment {
        burst_loss: Some(BurstLoss {
            enter_pct: 2.0,
            exit_pct: 25.0,
        }),
        ..Impairment::default()
    };
    let count = 50_000;
    let delivered = seqs(&run_evenly(&mut link(bursty, 5), count, MS));
    let mut received = vec![false; count as usize];
    for seq in &delivered {
        received[*seq as usize] = true;
    }
    let bursts: Vec<usize> = received
        .split(|got| *got)
        .map(<[bool]>::len)
        .filter(|len| *len > 0)
        .collect();
    let lost = count as usize - delivered.len();
    let mean_burst = lost as f64 / bursts.len() as f64;
    let lost_share = lost as f64 / count as f64;
    // Mean burst 100 / 25 = 4 datagrams; share in bursts 2 / (2 + 25) = 7.4 %.
    assert!(
        (3.5..=4.5).contains(&mean_burst),
        "mean burst {mean_burst:.2}"
    );
    assert!((0.06..=0.09).contains(&lost_share), "lost {lost_share:.3}");
}

#[test]
fn delay_and_jitter_stay_within_bounds_with_the_configured_mean() {
    let jittery = Impairment {
        delay: 40 * MS,
        jitter: 10 * MS,
        ..Impairment::default()
    };
    let spacing = 5 * MS;
    let mut jittery_link = link(jittery, 2);
    let delivered = run_evenly(&mut jittery_link, 5000, spacing);
    assert_eq!(delivered.len(), 5000);
    let delays: Vec<Duration> = delivered
        .iter()
        .map(|d| d.after - spacing * d.seq)
        .collect();
    for delay in &delays {
        assert!((30 * MS..=50 * MS).contains(delay), "delay {delay:?}");
    }
    let mean = delays.iter().sum::<Duration>() / delays.len() as u32;
    assert!(
        (39_500..=40_500).contains(&mean.as_micros()),
        "mean {mean:?}"
    );
    // ±10 ms around 5 ms spacing: neighbours overtake each other, and the statistic counts each
    // datagram that arrives after a later one.
    let overtaken = delivered
        .iter()
        .scan(0, |highest, d| {
            let late = d.seq < *highest;
            *highest = (*highest).max(d.seq);
            Some(late)
        })
        .filter(|late| *late)
        .count() as u64;
    assert!(overtaken > 0);
    assert_eq!(jittery_link.stats().reordered, overtaken);
}

#[test]
fn jitter_larger_than_delay_is_clamped_at_zero_never_earlier() {
    let wide = Impairment {
        delay: 5 * MS,
        jitter: 20 * MS,
        ..Impairment::default()
    };
    let spacing = 50 * MS;
    let delivered = run_evenly(&mut link(wide, 4), 1000, spacing);
    let delays: Vec<Duration> = delivered
        .iter()
        .map(|d| d.after - spacing * d.seq)
        .collect();
    assert!(delays.iter().all(|delay| *delay <= 25 * MS));
    // Draws below -5 ms, 15 of the 40 ms range, are clamped to no delay at all.
    let undelayed = delays.iter().filter(|delay| delay.is_zero()).count();
    assert!((320..=430).contains(&undelayed), "{undelayed} undelayed");
}

#[test]
fn keep_order_delivers_in_arrival_order_despite_jitter() {
    let fifo = Impairment {
        delay: 40 * MS,
        jitter: 30 * MS,
        keep_order: true,
        ..Impairment::default()
    };
    let mut fifo_link = link(fifo, 9);
    let delivered = run_evenly(&mut fifo_link, 2000, MS);
    assert_eq!(seqs(&delivered), (0..2000).collect::<Vec<_>>());
    assert_eq!(fifo_link.stats().reordered, 0);
    for d in &delivered {
        assert!(d.after >= MS * d.seq + 10 * MS, "datagram {} early", d.seq);
    }
}

#[test]
fn a_reordered_datagram_leaves_right_after_the_next_one() {
    let always = Impairment {
        reorder_pct: 100.0,
        ..Impairment::default()
    };
    let mut swapping = link(always, 1);
    let delivered = run_evenly(&mut swapping, 6, 20 * MS);
    // 0 is held and follows 1, which cannot be held itself; then 2 is held, and so on.
    assert_eq!(seqs(&delivered), [1, 0, 3, 2, 5, 4]);
    assert_eq!(delivered[1].after, 20 * MS, "0 waits only for 1");
    assert_eq!(swapping.stats().reordered, 3);
}

#[test]
fn reordering_is_per_flow() {
    let always = Impairment {
        reorder_pct: 100.0,
        ..Impairment::default()
    };
    // Flow 0's datagram is held; flow 1's arrival does not release it, flow 0's next does.
    let arrivals = [(Duration::ZERO, 0, 0), (10 * MS, 1, 100), (20 * MS, 0, 1)];
    let delivered = run(&mut link(always, 1), &arrivals);
    let flow0: Vec<u32> = delivered
        .iter()
        .filter(|d| d.flow == 0)
        .map(|d| d.seq)
        .collect();
    assert_eq!(flow0, [1, 0]);
    let flow1_release = delivered.iter().find(|d| d.flow == 1).unwrap();
    // Flow 1's first datagram is held too, and nothing of flow 1 follows.
    assert_eq!(flow1_release.after, 10 * MS + REORDER_HOLD_LIMIT);
}

#[test]
fn a_held_datagram_without_successor_leaves_at_the_hold_limit() {
    let always = Impairment {
        reorder_pct: 100.0,
        delay: 10 * MS,
        ..Impairment::default()
    };
    let delivered = run_evenly(&mut link(always, 1), 1, MS);
    assert_eq!(
        delivered,
        [Delivered {
            after: REORDER_HOLD_LIMIT,
            flow: 0,
            seq: 0
        }]
    );
}

#[test]
fn reorder_share_follows_the_documented_formula() {
    let some = Impairment {
        reorder_pct: 20.0,
        ..Impairment::default()
    };
    let mut reordering = link(some, 13);
    run_evenly(&mut reordering, 20_000, MS);
    // A datagram that releases a held one is never held itself: share = p / (1 + p) = 1/6.
    let share = reordering.stats().reordered as f64 / 20_000.0;
    assert!((0.155..=0.178).contains(&share), "reordered {share:.3}");
}

#[test]
fn duplicates_arrive_twice_and_are_counted() {
    let doubled = Impairment {
        duplicate_pct: 100.0,
        ..Impairment::default()
    };
    let mut doubling = link(doubled, 1);
    let delivered = run_evenly(&mut doubling, 50, 20 * MS);
    let expected: Vec<u32> = (0..50).flat_map(|seq| [seq, seq]).collect();
    assert_eq!(seqs(&delivered), expected);
    let stats = doubling.stats();
    assert_eq!((stats.duplicated, stats.forwarded), (50, 100));
    assert_eq!(stats.reordered, 0, "a duplicate is not a reordering");
}

#[test]
fn duplicate_share_is_near_the_configured_rate() {
    let some = Impairment {
        duplicate_pct: 10.0,
        ..Impairment::default()
    };
    let mut doubling = link(some, 21);
    let delivered = run_evenly(&mut doubling, 10_000, MS);
    let extra = delivered.len() - 10_000;
    assert_eq!(extra as u64, doubling.stats().duplicated);
    assert!((800..=1200).contains(&extra), "{extra} duplicates");
}

#[test]
fn rate_limit_spaces_datagrams_and_drops_beyond_the_queue() {
    // 972 + 28 header bytes = 8000 bits: 100 ms each at 80 kbit/s.
    let narrow = Impairment {
        rate_limit_bps: Some(80_000),
        ..Impairment::default()
    };
    let mut bottleneck = link(narrow, 1);
    let base = Instant::now();
    let payload = |seq: u32| {
        let mut bytes = seq.to_be_bytes().to_vec();
        bytes.resize(972, 0);
        bytes
    };
    for seq in 0..5 {
        bottleneck.handle_datagram(base, 0, payload(seq));
    }
    bottleneck.handle_datagram(base + Duration::from_secs(1), 0, payload(5));
    let mut departures = Vec::new();
    while let Some(due) = bottleneck.poll_timeout() {
        while let Some(transmit) = bottleneck.poll_transmit(due) {
            departures.push((due - base, transmit.payload[3]));
        }
    }
    // 0, 1, 2 queue for up to 200 ms; 3 would wait 300 ms > 250 ms and is dropped, as is 4.
    assert_eq!(
        departures,
        [(100 * MS, 0), (200 * MS, 1), (300 * MS, 2), (1100 * MS, 5)]
    );
    assert_eq!(bottleneck.stats().queue_overflow, 2);
}

#[test]
fn new_settings_apply_to_the_next_arrival() {
    let mut switchable = link(
        Impairment {
            loss_pct: 100.0,
            ..Impairment::default()
        },
        1,
    );
    let base = Instant::now();
    switchable.handle_datagram(base, 0, vec![0; 4]);
    switchable.set_impairment(Impairment::default());
    switchable.handle_datagram(base, 0, vec![1; 4]);
    assert_eq!(
        switchable.poll_transmit(base),
        Some(Transmit {
            flow: 0,
            payload: vec![1; 4]
        })
    );
    assert_eq!(switchable.stats().dropped, 1);
}
