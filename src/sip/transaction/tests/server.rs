//! Server transactions against a scripted client: Timers G, H, I, J, L, retransmission absorption,
//! and the errors the TU and the network can provoke.
use rand::rngs::StdRng;
use rand::SeedableRng;
use rsip::prelude::*;
use rsip::Method;

use super::super::{
    new_branch, TransactionError, TransactionEvent, TransactionKey, TransactionLayer,
    TransactionState, MAGIC_COOKIE,
};
use super::support::*;
use crate::sip::peer::{Peer, Transport};

/// Feeds `request` from alice and returns the key of the transaction it started.
fn receive_new(
    layer: &mut TransactionLayer,
    clock: Clock,
    at_ms: u64,
    request: &rsip::Request,
) -> TransactionKey {
    let from = alice(Transport::Udp);
    layer
        .handle_message(clock.at_ms(at_ms), from, request.clone().into())
        .unwrap();
    match events(layer).as_slice() {
        [TransactionEvent::Request { key, peer, .. }] if *peer == from => key.clone(),
        other => panic!("expected one new request, got {other:?}"),
    }
}

fn receive(
    layer: &mut TransactionLayer,
    clock: Clock,
    at_ms: u64,
    peer: Peer,
    request: &rsip::Request,
) {
    layer
        .handle_message(clock.at_ms(at_ms), peer, request.clone().into())
        .unwrap();
}

fn statuses(sent: &[crate::sip::transaction::Transmit]) -> Vec<u16> {
    sent.iter().filter_map(status_of).collect()
}

#[test]
fn invite_gets_100_at_once_and_a_retransmission_gets_the_latest_provisional() {
    let clock = Clock::new();
    let mut layer = layer();
    let request = invite("z9hG4bKa", alice(Transport::Udp));
    let key = receive_new(&mut layer, clock, 0, &request);
    let trying = transmits(&mut layer);
    assert_eq!(statuses(&trying), [100]);
    assert_eq!(
        trying[0].peer,
        alice(Transport::Udp),
        "responses go back where the request came from"
    );

    receive(&mut layer, clock, 500, alice(Transport::Udp), &request);
    assert_eq!(transmits(&mut layer), trying, "the same 100 bytes again");
    assert!(
        events(&mut layer).is_empty(),
        "the retransmission is absorbed"
    );

    layer
        .respond(
            clock.at_ms(600),
            &key,
            response_to(&request, 180, Some("b1")),
        )
        .unwrap();
    let ringing = transmits(&mut layer);
    assert_eq!(statuses(&ringing), [180]);
    receive(&mut layer, clock, 1_500, alice(Transport::Udp), &request);
    assert_eq!(transmits(&mut layer), ringing);
    assert!(events(&mut layer).is_empty());
    assert_eq!(layer.state(&key), Some(TransactionState::Proceeding));
    assert_eq!(
        layer.poll_timeout(),
        None,
        "Proceeding waits for the TU without a timer"
    );
}

#[test]
fn unacknowledged_failure_over_udp_is_retransmitted_on_timer_g_until_timer_h() {
    let clock = Clock::new();
    let mut layer = layer();
    let request = invite("z9hG4bKa", alice(Transport::Udp));
    let key = receive_new(&mut layer, clock, 0, &request);
    transmits(&mut layer);
    layer
        .respond(clock.at_ms(0), &key, response_to(&request, 486, Some("b1")))
        .unwrap();
    let timeline = run_timers(&mut layer, clock, 0, 100_000);
    assert_eq!(
        timeline.transmit_times(),
        [0, 500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500]
    );
    assert!(timeline
        .transmits
        .iter()
        .all(|(_, t)| status_of(t) == Some(486)));
    assert_eq!(timeline.timeouts(), [(32_000, key.clone())]);
    assert_eq!(timeline.terminations(), [(32_000, key)]);
    assert_eq!(layer.len(), 0);
}

#[test]
fn unacknowledged_failure_over_tcp_is_sent_once_and_times_out_on_timer_h() {
    let clock = Clock::new();
    let mut layer = layer();
    let request = invite("z9hG4bKa", alice(Transport::Tcp));
    let from = alice(Transport::Tcp);
    layer
        .handle_message(clock.at_ms(0), from, request.clone().into())
        .unwrap();
    let key = match events(&mut layer).as_slice() {
        [TransactionEvent::Request { key, .. }] => key.clone(),
        other => panic!("expected the INVITE, got {other:?}"),
    };
    layer
        .respond(clock.at_ms(0), &key, response_to(&request, 486, Some("b1")))
        .unwrap();
    let timeline = run_timers(&mut layer, clock, 0, 100_000);
    assert_eq!(
        statuses(
            &timeline
                .transmits
                .iter()
                .map(|(_, t)| t.clone())
                .collect::<Vec<_>>()
        ),
        [100, 486]
    );
    assert_eq!(timeline.timeouts(), [(32_000, key)]);
}

#[test]
fn ack_for_a_failure_is_absorbed_and_timer_i_ends_the_confirmed_state() {
    let clock = Clock::new();
    let mut layer = layer();
    let request = invite("z9hG4bKa", alice(Transport::Udp));
    let key = receive_new(&mut layer, clock, 0, &request);
    layer
        .respond(clock.at_ms(0), &key, response_to(&request, 486, Some("b1")))
        .unwrap();
    transmits(&mut layer);
    // A retransmitted INVITE in Completed gets the final again.
    receive(&mut layer, clock, 300, alice(Transport::Udp), &request);
    assert_eq!(statuses(&transmits(&mut layer)), [486]);

    let ack = request_with_method(&request, Method::Ack);
    receive(&mut layer, clock, 2_000, alice(Transport::Udp), &ack);
    assert!(
        events(&mut layer).is_empty(),
        "the ACK for a non-2xx final never reaches the TU"
    );
    assert_eq!(layer.state(&key), Some(TransactionState::Confirmed));
    receive(&mut layer, clock, 2_100, alice(Transport::Udp), &ack);
    receive(&mut layer, clock, 2_200, alice(Transport::Udp), &request);
    assert!(events(&mut layer).is_empty());
    assert!(
        transmits(&mut layer).is_empty(),
        "Confirmed stops Timer G and absorbs everything"
    );

    let timeline = run_timers(&mut layer, clock, 2_200, 100_000);
    assert!(timeline.transmits.is_empty());
    assert!(
        timeline.timeouts().is_empty(),
        "Timer H was stopped by the ACK"
    );
    assert_eq!(timeline.terminations(), [(7_000, key)]);
}

#[test]
fn ack_for_a_failure_over_tcp_terminates_at_once_because_timer_i_is_zero() {
    let clock = Clock::new();
    let mut layer = layer();
    let from = alice(Transport::Tcp);
    let request = invite("z9hG4bKa", from);
    receive(&mut layer, clock, 0, from, &request);
    let key = match events(&mut layer).as_slice() {
        [TransactionEvent::Request { key, .. }] => key.clone(),
        other => panic!("expected the INVITE, got {other:?}"),
    };
    layer
        .respond(clock.at_ms(0), &key, response_to(&request, 404, Some("b1")))
        .unwrap();
    receive(
        &mut layer,
        clock,
        40,
        from,
        &request_with_method(&request, Method::Ack),
    );
    assert_eq!(events(&mut layer), [TransactionEvent::Terminated { key }]);
    assert_eq!(layer.len(), 0);
}

#[test]
fn accepted_invite_absorbs_retransmissions_passes_acks_up_and_ends_on_timer_l() {
    let clock = Clock::new();
    let mut layer = layer();
    let request = invite("z9hG4bKa", alice(Transport::Udp));
    let key = receive_new(&mut layer, clock, 0, &request);
    transmits(&mut layer);
    let ok = response_to(&request, 200, Some("b1"));
    layer.respond(clock.at_ms(1_000), &key, ok.clone()).unwrap();
    assert_eq!(statuses(&transmits(&mut layer)), [200]);
    assert_eq!(layer.state(&key), Some(TransactionState::Accepted));

    receive(&mut layer, clock, 1_500, alice(Transport::Udp), &request);
    assert!(
        transmits(&mut layer).is_empty(),
        "2xx retransmission is the TU's job"
    );
    assert!(
        events(&mut layer).is_empty(),
        "the INVITE retransmission is absorbed, not a new call"
    );

    // The TU's own 2xx retransmission passes through the transaction (RFC 6026 §8.5).
    layer.respond(clock.at_ms(1_500), &key, ok.clone()).unwrap();
    assert_eq!(statuses(&transmits(&mut layer)), [200]);
    let refused = layer.respond(
        clock.at_ms(1_600),
        &key,
        response_to(&request, 487, Some("b1")),
    );
    assert!(matches!(
        refused,
        Err(TransactionError::ResponseNotAllowed {
            status: 487,
            state: TransactionState::Accepted,
            ..
        })
    ));

    // The ACK for a 2xx has its own branch and matches nothing: it surfaces for the dialog.
    let branch = layer.new_branch();
    let ack = ack_for_2xx(&request, &ok, alice(Transport::Udp), &branch);
    receive(&mut layer, clock, 2_000, alice(Transport::Udp), &ack);
    assert_eq!(
        events(&mut layer),
        [TransactionEvent::Ack {
            peer: alice(Transport::Udp),
            request: ack
        }]
    );
    // An ACK that reuses the INVITE branch reaches the Accepted transaction and goes up as well.
    let same_branch_ack = request_with_method(&request, Method::Ack);
    receive(
        &mut layer,
        clock,
        2_100,
        alice(Transport::Udp),
        &same_branch_ack,
    );
    assert!(matches!(
        events(&mut layer).as_slice(),
        [TransactionEvent::Ack { .. }]
    ));

    let timeline = run_timers(&mut layer, clock, 2_100, 100_000);
    assert_eq!(timeline.terminations(), [(33_000, key)]);
    assert!(timeline.transmits.is_empty());
}

#[test]
fn non_invite_retransmission_is_absorbed_until_answered_then_gets_the_last_response() {
    let clock = Clock::new();
    let mut layer = layer();
    let options = request(
        Method::Options,
        "z9hG4bKo",
        7,
        alice(Transport::Udp),
        "call-2",
    );
    let key = receive_new(&mut layer, clock, 0, &options);
    assert!(
        transmits(&mut layer).is_empty(),
        "no automatic 100 for non-INVITE"
    );
    receive(&mut layer, clock, 500, alice(Transport::Udp), &options);
    assert!(transmits(&mut layer).is_empty() && events(&mut layer).is_empty());

    layer
        .respond(clock.at_ms(600), &key, response_to(&options, 100, None))
        .unwrap();
    transmits(&mut layer);
    receive(&mut layer, clock, 1_500, alice(Transport::Udp), &options);
    assert_eq!(
        statuses(&transmits(&mut layer)),
        [100],
        "Proceeding repeats the provisional"
    );

    layer
        .respond(
            clock.at_ms(2_000),
            &key,
            response_to(&options, 200, Some("b1")),
        )
        .unwrap();
    let ok = transmits(&mut layer);
    receive(&mut layer, clock, 3_500, alice(Transport::Udp), &options);
    assert_eq!(
        transmits(&mut layer),
        ok,
        "Completed repeats the final, byte for byte"
    );
    assert!(events(&mut layer).is_empty());
    assert!(layer
        .respond(clock.at_ms(3_600), &key, response_to(&options, 500, None))
        .is_err());

    let timeline = run_timers(&mut layer, clock, 3_600, 100_000);
    assert_eq!(
        timeline.terminations(),
        [(34_000, key)],
        "Timer J is 64·T1 after the final"
    );
}

#[test]
fn non_invite_over_tcp_terminates_with_its_final_because_timer_j_is_zero() {
    let clock = Clock::new();
    let mut layer = layer();
    let from = alice(Transport::Tcp);
    let bye = request(Method::Bye, "z9hG4bKbye", 2, from, "call-1");
    receive(&mut layer, clock, 0, from, &bye);
    let key = match events(&mut layer).as_slice() {
        [TransactionEvent::Request { key, .. }] => key.clone(),
        other => panic!("expected the BYE, got {other:?}"),
    };
    layer
        .respond(clock.at_ms(10), &key, response_to(&bye, 200, Some("b1")))
        .unwrap();
    assert_eq!(events(&mut layer), [TransactionEvent::Terminated { key }]);
    assert_eq!(layer.len(), 0);
}

#[test]
fn same_branch_from_another_sender_is_another_transaction() {
    let clock = Clock::new();
    let mut layer = layer();
    let first = invite("z9hG4bKsame", alice(Transport::Udp));
    let second = invite("z9hG4bKsame", bob(Transport::Udp));
    let first_key = receive_new(&mut layer, clock, 0, &first);
    layer
        .handle_message(clock.at_ms(1), bob(Transport::Udp), second.into())
        .unwrap();
    assert!(matches!(
        events(&mut layer).as_slice(),
        [TransactionEvent::Request { key, .. }] if *key != first_key
    ));
    assert_eq!(layer.len(), 2);
}

#[test]
fn unkeyable_messages_are_refused_with_the_reason() {
    let clock = Clock::new();
    let mut layer = layer();
    let from = alice(Transport::Udp);
    let good = invite("z9hG4bKa", from);

    let mut no_via = good.clone();
    no_via
        .headers
        .retain(|header| !matches!(header, rsip::Header::Via(_)));
    assert_eq!(
        layer.handle_message(clock.at_ms(0), from, no_via.into()),
        Err(TransactionError::MissingVia)
    );

    let mut no_branch = good.clone();
    no_branch
        .headers
        .retain(|header| !matches!(header, rsip::Header::Via(_)));
    no_branch
        .headers
        .push(rsip::headers::Via::new("SIP/2.0/UDP 10.0.0.1:5060;rport").into());
    assert!(matches!(
        layer.handle_message(clock.at_ms(0), from, no_branch.into()),
        Err(TransactionError::MissingBranch(via)) if via.contains("rport")
    ));

    let mut no_cseq = good.clone();
    no_cseq
        .headers
        .retain(|header| !matches!(header, rsip::Header::CSeq(_)));
    assert_eq!(
        layer.handle_message(clock.at_ms(0), from, no_cseq.into()),
        Err(TransactionError::MissingCSeq)
    );

    let mut mismatched = good.clone();
    mismatched.method = Method::Bye;
    assert_eq!(
        layer.handle_message(clock.at_ms(0), from, mismatched.into()),
        Err(TransactionError::MethodMismatch {
            request: Method::Bye,
            cseq: Method::Invite
        })
    );
    assert_eq!(layer.len(), 0);
    assert!(events(&mut layer).is_empty() && transmits(&mut layer).is_empty());
}

#[test]
fn respond_refuses_unknown_keys_client_keys_and_impossible_statuses() {
    let clock = Clock::new();
    let mut layer = layer();
    let request = invite("z9hG4bKa", alice(Transport::Udp));
    let key = receive_new(&mut layer, clock, 0, &request);

    let mut impossible = response_to(&request, 200, None);
    impossible.status_code = 700.into();
    assert_eq!(
        layer.respond(clock.at_ms(1), &key, impossible),
        Err(TransactionError::InvalidStatus(700))
    );

    let branch = layer.new_branch();
    let client_key = layer.send_request(
        clock.at_ms(1),
        bob(Transport::Udp),
        invite(&branch, bob(Transport::Udp)),
    );
    assert_eq!(
        layer.respond(
            clock.at_ms(2),
            &client_key,
            response_to(&request, 200, None)
        ),
        Err(TransactionError::NotAServerTransaction(client_key.clone()))
    );

    layer
        .respond(clock.at_ms(3), &key, response_to(&request, 486, Some("b1")))
        .unwrap();
    layer.handle_timeout(clock.at_ms(60_000));
    let error = layer
        .respond(clock.at_ms(60_000), &key, response_to(&request, 200, None))
        .unwrap_err();
    assert_eq!(error, TransactionError::UnknownTransaction(key.clone()));
    assert!(error.to_string().contains("z9hG4bKa"), "{error}");
}

#[test]
fn new_branches_carry_the_magic_cookie_and_differ() {
    let mut rng = StdRng::seed_from_u64(7);
    let (a, b) = (new_branch(&mut rng), new_branch(&mut rng));
    assert!(a.starts_with(MAGIC_COOKIE) && b.starts_with(MAGIC_COOKIE));
    assert_eq!(a.len(), MAGIC_COOKIE.len() + 16);
    assert_ne!(a, b);
}

#[test]
fn branches_repeat_with_the_seed_and_differ_across_seeds() {
    let branches = |seed| {
        let mut layer = seeded_layer(seed);
        [layer.new_branch(), layer.new_branch(), layer.new_branch()]
    };
    assert_eq!(branches(1), branches(1));
    assert_ne!(branches(1), branches(2));
    let [a, b, c] = branches(1);
    assert!(a != b && b != c && a != c);
    // The layer's branches are the free function's over the same seed.
    let mut rng = StdRng::seed_from_u64(1);
    assert_eq!(branches(1)[0], new_branch(&mut rng));
}
