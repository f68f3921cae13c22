//! Client transactions against a scripted far end: Timers A, B, D, E, F, K, M.
use rsip::Method;

use super::super::{TransactionEvent, TransactionState};
use super::support::*;
use crate::sip::peer::Transport;

fn responses(timeline: &Timeline) -> Vec<u16> {
    timeline
        .events
        .iter()
        .filter_map(|(_, event)| match event {
            TransactionEvent::Response { response, .. } => Some(response.status_code.code()),
            _ => None,
        })
        .collect()
}

fn stray_statuses(events: &[TransactionEvent]) -> Vec<u16> {
    events
        .iter()
        .filter_map(|event| match event {
            TransactionEvent::StrayResponse { response, .. } => Some(response.status_code.code()),
            _ => None,
        })
        .collect()
}

#[test]
fn unanswered_invite_over_udp_retransmits_on_timer_a_until_timer_b_times_out_at_32_s() {
    let clock = Clock::new();
    let mut layer = layer();
    let key = layer.send_request(
        clock.at_ms(0),
        bob(Transport::Udp),
        invite("z9hG4bKa", alice(Transport::Udp)),
    );
    let timeline = run_timers(&mut layer, clock, 0, 100_000);
    assert_eq!(
        timeline.transmit_times(),
        [0, 500, 1_500, 3_500, 7_500, 15_500, 31_500]
    );
    let first = &timeline.transmits[0].1;
    assert!(
        timeline.transmits.iter().all(|(_, t)| t == first),
        "retransmissions reuse the bytes"
    );
    assert_eq!(first.peer, bob(Transport::Udp));
    assert_eq!(timeline.timeouts(), [(32_000, key.clone())]);
    assert_eq!(timeline.terminations(), [(32_000, key)]);
    assert_eq!(layer.len(), 0);
    assert_eq!(layer.poll_timeout(), None);
}

#[test]
fn unanswered_invite_over_tcp_is_sent_once_and_times_out_on_timer_b() {
    let clock = Clock::new();
    let mut layer = layer();
    let key = layer.send_request(
        clock.at_ms(0),
        bob(Transport::Tcp),
        invite("z9hG4bKa", alice(Transport::Tcp)),
    );
    let timeline = run_timers(&mut layer, clock, 0, 100_000);
    assert_eq!(timeline.transmit_times(), [0]);
    assert_eq!(timeline.timeouts(), [(32_000, key)]);
    assert_eq!(layer.len(), 0);
}

#[test]
fn provisional_stops_retransmission_and_each_distinct_provisional_is_delivered_once() {
    let clock = Clock::new();
    let mut layer = layer();
    let request = invite("z9hG4bKa", alice(Transport::Udp));
    let key = layer.send_request(clock.at_ms(0), bob(Transport::Udp), request.clone());
    transmits(&mut layer);
    let ringing = response_to(&request, 180, Some("b1"));
    for (at, response) in [
        (200, response_to(&request, 100, None)),
        (300, ringing.clone()),
        (900, ringing.clone()),
        (950, response_to(&request, 183, Some("b1"))),
    ] {
        layer
            .handle_message(clock.at_ms(at), bob(Transport::Udp), response.into())
            .unwrap();
    }
    assert_eq!(layer.state(&key), Some(TransactionState::Proceeding));
    assert_eq!(
        layer.poll_timeout(),
        None,
        "no Timer A or B once Proceeding"
    );
    let timeline = run_timers(&mut layer, clock, 1_000, 100_000);
    assert_eq!(responses(&timeline), [100, 180, 183]);
    assert!(timeline.transmits.is_empty());
    assert_eq!(
        layer.len(),
        1,
        "an INVITE may ring for as long as the far end likes"
    );
}

#[test]
fn failure_final_is_acked_by_the_transaction_and_timer_d_re_acks_retransmissions_for_32_s() {
    let clock = Clock::new();
    let mut layer = layer();
    let request = invite("z9hG4bKa", alice(Transport::Udp));
    let key = layer.send_request(clock.at_ms(0), bob(Transport::Udp), request.clone());
    transmits(&mut layer);
    let busy = response_to(&request, 486, Some("b1"));
    layer
        .handle_message(clock.at_ms(1_000), bob(Transport::Udp), busy.clone().into())
        .unwrap();
    let sent = transmits(&mut layer);
    assert_eq!(sent.len(), 1);
    let ack = match parse_transmit(&sent[0]) {
        rsip::SipMessage::Request(ack) => ack,
        other => panic!("expected the ACK, got {other}"),
    };
    assert_eq!(ack.method, Method::Ack);
    assert!(
        ack.to_string().contains("branch=z9hG4bKa"),
        "ACK reuses the INVITE branch"
    );
    assert!(
        ack.to_string().contains("tag=b1"),
        "ACK carries the response To tag"
    );
    assert_eq!(
        events(&mut layer),
        [TransactionEvent::Response {
            key: key.clone(),
            response: busy.clone()
        }]
    );
    assert_eq!(layer.state(&key), Some(TransactionState::Completed));

    layer
        .handle_message(clock.at_ms(2_000), bob(Transport::Udp), busy.into())
        .unwrap();
    assert_eq!(
        transmits(&mut layer),
        sent,
        "the same ACK bytes answer the retransmission"
    );
    assert!(
        events(&mut layer).is_empty(),
        "the retransmitted final is absorbed"
    );

    let timeline = run_timers(&mut layer, clock, 2_000, 100_000);
    assert_eq!(timeline.terminations(), [(33_000, key)]);
    assert!(timeline.timeouts().is_empty());
}

#[test]
fn failure_final_over_tcp_terminates_at_once_because_timer_d_is_zero() {
    let clock = Clock::new();
    let mut layer = layer();
    let request = invite("z9hG4bKa", alice(Transport::Tcp));
    let key = layer.send_request(clock.at_ms(0), bob(Transport::Tcp), request.clone());
    transmits(&mut layer);
    layer
        .handle_message(
            clock.at_ms(1_000),
            bob(Transport::Tcp),
            response_to(&request, 603, Some("b1")).into(),
        )
        .unwrap();
    assert_eq!(method_of(&transmits(&mut layer)[0]), Some(Method::Ack));
    let seen = events(&mut layer);
    assert!(
        matches!(&seen[..], [TransactionEvent::Response { .. }, TransactionEvent::Terminated { key: ended }] if *ended == key)
    );
    assert_eq!(layer.len(), 0);
}

#[test]
fn timer_m_keeps_an_accepted_invite_for_2xx_retransmissions_and_forks() {
    for transport in [Transport::Udp, Transport::Tcp] {
        let clock = Clock::new();
        let mut layer = layer();
        let request = invite("z9hG4bKa", alice(transport));
        let key = layer.send_request(clock.at_ms(0), bob(transport), request.clone());
        transmits(&mut layer);
        let ok = response_to(&request, 200, Some("b1"));
        layer
            .handle_message(clock.at_ms(1_000), bob(transport), ok.clone().into())
            .unwrap();
        assert_eq!(layer.state(&key), Some(TransactionState::Accepted));
        assert!(
            transmits(&mut layer).is_empty(),
            "the ACK for a 2xx is the TU's"
        );
        assert_eq!(
            events(&mut layer),
            [TransactionEvent::Response {
                key: key.clone(),
                response: ok.clone()
            }]
        );

        layer
            .handle_message(clock.at_ms(1_500), bob(transport), ok.clone().into())
            .unwrap();
        assert_eq!(
            stray_statuses(&events(&mut layer)),
            [200],
            "a repeat asks the TU to re-ACK"
        );

        let fork = response_to(&request, 200, Some("b2"));
        layer
            .handle_message(clock.at_ms(2_000), bob(transport), fork.clone().into())
            .unwrap();
        assert_eq!(
            events(&mut layer),
            [TransactionEvent::Response {
                key: key.clone(),
                response: fork
            }],
            "a 2xx from another fork is a new final"
        );

        let timeline = run_timers(&mut layer, clock, 2_000, 100_000);
        assert_eq!(timeline.terminations(), [(33_000, key)], "{transport:?}");
        assert!(timeline.transmits.is_empty());
    }
}

#[test]
fn cancel_rearms_timer_b_so_an_invite_never_answered_is_abandoned_64_t1_later() {
    let clock = Clock::new();
    let mut layer = layer();
    let request = invite("z9hG4bKa", alice(Transport::Udp));
    let key = layer.send_request(clock.at_ms(0), bob(Transport::Udp), request.clone());
    layer
        .handle_message(
            clock.at_ms(100),
            bob(Transport::Udp),
            response_to(&request, 180, Some("b1")).into(),
        )
        .unwrap();
    let cancel_key = layer.send_request(
        clock.at_ms(10_000),
        bob(Transport::Udp),
        cancel_for(&request),
    );
    assert_ne!(cancel_key, key);
    layer
        .handle_message(
            clock.at_ms(10_100),
            bob(Transport::Udp),
            response_to(&cancel_for(&request), 200, Some("b1")).into(),
        )
        .unwrap();
    let timeline = run_timers(&mut layer, clock, 10_100, 100_000);
    assert_eq!(timeline.timeouts(), [(42_000, key)]);
    assert_eq!(layer.len(), 0);
}

#[test]
fn unanswered_bye_over_udp_retransmits_on_timer_e_capped_at_t2_until_timer_f() {
    let clock = Clock::new();
    let mut layer = layer();
    let key = layer.send_request(
        clock.at_ms(0),
        bob(Transport::Udp),
        request(
            Method::Bye,
            "z9hG4bKbye",
            2,
            alice(Transport::Udp),
            "call-1",
        ),
    );
    let timeline = run_timers(&mut layer, clock, 0, 100_000);
    assert_eq!(
        timeline.transmit_times(),
        [0, 500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500]
    );
    assert_eq!(timeline.timeouts(), [(32_000, key.clone())]);
    assert_eq!(timeline.terminations(), [(32_000, key)]);
}

#[test]
fn timer_e_runs_at_t2_once_a_provisional_arrived() {
    let clock = Clock::new();
    let mut layer = layer();
    let bye = request(
        Method::Bye,
        "z9hG4bKbye",
        2,
        alice(Transport::Udp),
        "call-1",
    );
    let key = layer.send_request(clock.at_ms(0), bob(Transport::Udp), bye.clone());
    transmits(&mut layer);
    layer
        .handle_message(
            clock.at_ms(200),
            bob(Transport::Udp),
            response_to(&bye, 100, None).into(),
        )
        .unwrap();
    assert_eq!(layer.state(&key), Some(TransactionState::Proceeding));
    let timeline = run_timers(&mut layer, clock, 200, 100_000);
    assert_eq!(
        timeline.transmit_times(),
        [500, 4_500, 8_500, 12_500, 16_500, 20_500, 24_500, 28_500]
    );
    assert_eq!(timeline.timeouts(), [(32_000, key)]);
}

#[test]
fn non_invite_final_over_udp_absorbs_retransmissions_until_timer_k() {
    let clock = Clock::new();
    let mut layer = layer();
    let bye = request(
        Method::Bye,
        "z9hG4bKbye",
        2,
        alice(Transport::Udp),
        "call-1",
    );
    let key = layer.send_request(clock.at_ms(0), bob(Transport::Udp), bye.clone());
    transmits(&mut layer);
    let ok = response_to(&bye, 200, Some("b1"));
    layer
        .handle_message(clock.at_ms(700), bob(Transport::Udp), ok.clone().into())
        .unwrap();
    layer
        .handle_message(clock.at_ms(900), bob(Transport::Udp), ok.clone().into())
        .unwrap();
    assert_eq!(
        events(&mut layer),
        [TransactionEvent::Response {
            key: key.clone(),
            response: ok
        }]
    );
    assert_eq!(layer.state(&key), Some(TransactionState::Completed));
    let timeline = run_timers(&mut layer, clock, 900, 100_000);
    assert!(
        timeline.transmits.is_empty(),
        "Timer E stopped with the final"
    );
    assert_eq!(timeline.terminations(), [(5_700, key)]);
}

#[test]
fn non_invite_over_tcp_never_retransmits_and_ends_with_its_final() {
    let clock = Clock::new();
    let mut layer = layer();
    let options = request(
        Method::Options,
        "z9hG4bKopt",
        1,
        alice(Transport::Tcp),
        "call-2",
    );
    let key = layer.send_request(clock.at_ms(0), bob(Transport::Tcp), options.clone());
    assert_eq!(transmits(&mut layer).len(), 1);
    assert_eq!(
        layer.poll_timeout(),
        Some(clock.at_ms(32_000)),
        "only Timer F runs"
    );
    layer
        .handle_message(
            clock.at_ms(50),
            bob(Transport::Tcp),
            response_to(&options, 200, Some("b1")).into(),
        )
        .unwrap();
    let seen = events(&mut layer);
    assert!(
        matches!(&seen[..], [TransactionEvent::Response { .. }, TransactionEvent::Terminated { key: ended }] if *ended == key)
    );
    assert_eq!(layer.len(), 0);
    assert_eq!(layer.poll_timeout(), None);
}

#[test]
fn a_response_matching_no_transaction_is_stray() {
    let clock = Clock::new();
    let mut layer = layer();
    let request = invite("z9hG4bKgone", alice(Transport::Udp));
    layer
        .handle_message(
            clock.at_ms(0),
            bob(Transport::Udp),
            response_to(&request, 200, Some("b1")).into(),
        )
        .unwrap();
    assert_eq!(stray_statuses(&events(&mut layer)), [200]);
    assert_eq!(layer.len(), 0);
}

#[test]
fn a_response_to_the_right_branch_but_another_method_is_not_matched() {
    let clock = Clock::new();
    let mut layer = layer();
    let request = invite("z9hG4bKa", alice(Transport::Udp));
    let key = layer.send_request(clock.at_ms(0), bob(Transport::Udp), request.clone());
    // Same branch, CSeq method CANCEL: §17.1.3 says it belongs to a CANCEL transaction.
    layer
        .handle_message(
            clock.at_ms(100),
            bob(Transport::Udp),
            response_to(&cancel_for(&request), 200, Some("b1")).into(),
        )
        .unwrap();
    assert_eq!(stray_statuses(&events(&mut layer)), [200]);
    assert_eq!(layer.state(&key), Some(TransactionState::Calling));
}

#[test]
fn cancel_sent_before_any_provisional_still_bounds_the_invite_once_ringing_starts() {
    let clock = Clock::new();
    let mut layer = layer();
    let request = invite("z9hG4bKa", alice(Transport::Udp));
    let key = layer.send_request(clock.at_ms(0), bob(Transport::Udp), request.clone());
    layer.send_request(clock.at_ms(200), bob(Transport::Udp), cancel_for(&request));
    layer
        .handle_message(
            clock.at_ms(300),
            bob(Transport::Udp),
            response_to(&request, 180, Some("b1")).into(),
        )
        .unwrap();
    assert_eq!(layer.state(&key), Some(TransactionState::Proceeding));
    let timeline = run_timers(&mut layer, clock, 300, 100_000);
    let invite_timeouts: Vec<u64> = timeline
        .timeouts()
        .into_iter()
        .filter(|(_, timed_out)| *timed_out == key)
        .map(|(at, _)| at)
        .collect();
    assert_eq!(
        invite_timeouts,
        [32_200],
        "64·T1 after the CANCEL, not never"
    );
}
