//! Whole calls between two layers through the lossy in-memory network of [`super::pair`]:
//! INVITE → 180 → 200 → ACK and INVITE → 486 → ACK, CANCEL while ringing, with chosen transmits
//! lost, over UDP and TCP.
use std::time::Duration;

use rsip::Method;

use super::pair::{Answer, Loss, Pair};
use crate::sip::peer::Transport;

const LIMIT: Duration = Duration::from_secs(300);

fn assert_all_done(pair: &Pair) {
    assert_eq!(
        pair.caller_end.layer.len(),
        0,
        "caller transactions left over"
    );
    assert_eq!(
        pair.callee_end.layer.len(),
        0,
        "callee transactions left over"
    );
    assert!(
        pair.elapsed() < Duration::from_secs(100),
        "took {:?}",
        pair.elapsed()
    );
}

#[test]
fn invite_ringing_ok_ack_over_udp_completes_without_loss() {
    let mut pair = Pair::new(
        Transport::Udp,
        Answer::Accept,
        Loss::default(),
        Loss::default(),
    );
    pair.call();
    pair.run(LIMIT);
    assert_eq!(pair.caller.provisionals, [100, 180]);
    assert_eq!(pair.caller.finals, [200]);
    assert_eq!(pair.caller.acks_sent, 1);
    assert_eq!(pair.callee.requests, [Method::Invite]);
    assert_eq!(pair.callee.acks, 1);
    assert!(!pair.callee.gave_up_waiting_for_ack);
    assert_eq!(
        pair.caller_end.sent, 2,
        "INVITE and ACK, nothing retransmitted"
    );
    assert_eq!(pair.callee_end.sent, 3, "100, 180, 200");
    assert_all_done(&pair);
}

#[test]
fn invite_ringing_ok_ack_survives_losing_the_first_transmits_of_either_side() {
    for lost in 0..=5 {
        for (caller_loss, callee_loss) in [
            (Loss::first(lost), Loss::default()),
            (Loss::default(), Loss::first(lost)),
            (Loss::first(lost), Loss::first(lost)),
        ] {
            let label = format!("caller {caller_loss:?}, callee {callee_loss:?}");
            let mut pair = Pair::new(Transport::Udp, Answer::Accept, caller_loss, callee_loss);
            pair.call();
            pair.run(LIMIT);
            assert_eq!(
                pair.caller.finals,
                [200],
                "{label}: the 2xx is delivered exactly once"
            );
            assert_eq!(
                pair.callee.requests,
                [Method::Invite],
                "{label}: one call, not several"
            );
            assert!(pair.callee.acks >= 1, "{label}: the ACK got through");
            assert!(!pair.callee.gave_up_waiting_for_ack, "{label}");
            assert!(
                pair.caller.timeouts.is_empty() && pair.callee.timeouts.is_empty(),
                "{label}"
            );
            assert_all_done(&pair);
        }
    }
}

#[test]
fn a_lost_ack_for_the_2xx_is_re_sent_when_the_2xx_is_retransmitted() {
    // Caller transmits: 0 INVITE, 1 ACK. Losing the ACK makes the callee's TU retransmit the 200,
    // which reaches the caller's INVITE transaction in Accepted and comes up as a stray.
    let mut pair = Pair::new(
        Transport::Udp,
        Answer::Accept,
        Loss::nth(1),
        Loss::default(),
    );
    pair.call();
    pair.run(LIMIT);
    assert_eq!(pair.caller.finals, [200]);
    assert_eq!(pair.caller.acks_sent, 2);
    assert_eq!(pair.callee.acks, 1);
    assert_all_done(&pair);
}

#[test]
fn invite_busy_ack_over_udp_survives_loss_and_the_ack_never_reaches_the_callee_tu() {
    for lost in 0..=5 {
        for (caller_loss, callee_loss) in [
            (Loss::first(lost), Loss::default()),
            (Loss::default(), Loss::first(lost)),
            (Loss::nth(1), Loss::first(lost)),
        ] {
            let label = format!("caller {caller_loss:?}, callee {callee_loss:?}");
            let mut pair = Pair::new(
                Transport::Udp,
                Answer::Reject(486),
                caller_loss,
                callee_loss,
            );
            pair.call();
            pair.run(LIMIT);
            assert_eq!(pair.caller.finals, [486], "{label}");
            assert_eq!(
                pair.caller.acks_sent, 0,
                "{label}: the transaction ACKs a 486, not the TU"
            );
            assert_eq!(pair.callee.acks, 0, "{label}: the ACK is absorbed");
            assert!(
                pair.callee.timeouts.is_empty(),
                "{label}: Timer H never fired"
            );
            assert_all_done(&pair);
        }
    }
}

#[test]
fn over_tcp_nothing_is_ever_retransmitted() {
    for answer in [Answer::Accept, Answer::Reject(486)] {
        let mut pair = Pair::new(Transport::Tcp, answer, Loss::default(), Loss::default());
        pair.call();
        pair.run(LIMIT);
        assert_eq!(pair.caller_end.sent, 2, "{answer:?}: INVITE and ACK");
        assert_eq!(pair.callee_end.sent, 3, "{answer:?}: 100, 180, final");
        assert_all_done(&pair);
    }
}

#[test]
fn caller_cancels_while_ringing_and_both_sides_wind_down() {
    for (transport, callee_loss) in [
        (Transport::Udp, Loss::default()),
        (Transport::Udp, Loss::nth(2)),
        (Transport::Tcp, Loss::default()),
    ] {
        let mut pair = Pair::new(
            transport,
            Answer::Never,
            Loss::default(),
            callee_loss.clone(),
        );
        pair.caller.cancel_on_ringing = true;
        pair.call();
        pair.run(LIMIT);
        let label = format!("{transport:?} {callee_loss:?}");
        assert_eq!(
            pair.callee.requests,
            [Method::Invite, Method::Cancel],
            "{label}"
        );
        assert_eq!(pair.caller.cancel_finals, [200], "{label}");
        assert_eq!(pair.caller.finals, [487], "{label}");
        assert!(pair.caller.timeouts.is_empty(), "{label}");
        assert!(
            pair.callee.timeouts.is_empty(),
            "{label}: the 487 was ACKed"
        );
        assert_all_done(&pair);
    }
}

#[test]
fn a_final_lost_for_good_is_ended_by_the_caller_ring_timeout_and_timer_b_after_cancel() {
    // The caller hears 100 and 180, then nothing the callee sends ever arrives again.
    let mut drop = vec![false, false];
    drop.extend([true; 100]);
    let mut pair = Pair::new(
        Transport::Udp,
        Answer::Reject(486),
        Loss::default(),
        Loss { drop },
    );
    pair.caller.ring_timeout = Some(Duration::from_secs(60));
    pair.call();
    pair.run(LIMIT);
    let invite_key = pair.caller.invite_key.clone().expect("the call was placed");
    let cancel_key = pair
        .caller
        .cancel_key
        .clone()
        .expect("the ring timeout sent a CANCEL");
    assert!(pair.caller.finals.is_empty());
    assert_eq!(
        pair.callee.timeouts.len(),
        1,
        "Timer H: the 486 was never acknowledged"
    );
    assert!(
        pair.caller.timeouts.contains(&invite_key),
        "Timer B, re-armed by the CANCEL"
    );
    assert!(
        pair.caller.timeouts.contains(&cancel_key),
        "Timer F: the CANCEL's answers were lost too"
    );
    assert_eq!(
        pair.elapsed(),
        Duration::from_secs(92),
        "64·T1 after the CANCEL at 60 s"
    );
    assert_eq!(pair.caller_end.layer.len(), 0);
    assert_eq!(pair.callee_end.layer.len(), 0);
}
