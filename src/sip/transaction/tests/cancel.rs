//! CANCEL matching (RFC 3261 §9) and the CANCEL/2xx race on both sides.
use rsip::Method;

use super::super::{TransactionEvent, TransactionKey, TransactionLayer, TransactionState};
use super::support::*;
use crate::sip::peer::{Peer, Transport};

/// Feeds `request` and returns the `(key, cancels)` of the Request event it produced.
fn receive(
    layer: &mut TransactionLayer,
    clock: Clock,
    at_ms: u64,
    from: Peer,
    request: &rsip::Request,
) -> (TransactionKey, Option<TransactionKey>) {
    layer
        .handle_message(clock.at_ms(at_ms), from, request.clone().into())
        .unwrap();
    match events(layer).as_slice() {
        [TransactionEvent::Request { key, cancels, .. }] => (key.clone(), cancels.clone()),
        other => panic!("expected one new request, got {other:?}"),
    }
}

#[test]
fn cancel_is_its_own_transaction_and_names_the_invite_it_cancels() {
    let clock = Clock::new();
    let mut layer = layer();
    let from = alice(Transport::Udp);
    let request = invite("z9hG4bKa", from);
    let (invite_key, none) = receive(&mut layer, clock, 0, from, &request);
    assert_eq!(none, None);
    let (cancel_key, cancels) = receive(&mut layer, clock, 3_000, from, &cancel_for(&request));
    assert_ne!(cancel_key, invite_key);
    assert_eq!(cancel_key.method(), Method::Cancel);
    assert_eq!(cancels, Some(invite_key.clone()));
    assert_eq!(layer.state(&invite_key), Some(TransactionState::Proceeding));

    // The TU's answer per §9.2: 200 to the CANCEL, 487 to the INVITE; the ACK is absorbed.
    transmits(&mut layer);
    layer
        .respond(
            clock.at_ms(3_000),
            &cancel_key,
            response_to(&cancel_for(&request), 200, Some("b1")),
        )
        .unwrap();
    layer
        .respond(
            clock.at_ms(3_000),
            &invite_key,
            response_to(&request, 487, Some("b1")),
        )
        .unwrap();
    let sent: Vec<u16> = transmits(&mut layer).iter().filter_map(status_of).collect();
    assert_eq!(sent, [200, 487]);
    let ack = request_with_method(&request, Method::Ack);
    layer
        .handle_message(clock.at_ms(3_100), from, ack.into())
        .unwrap();
    assert!(events(&mut layer).is_empty());
    assert_eq!(layer.state(&invite_key), Some(TransactionState::Confirmed));
}

#[test]
fn cancel_matching_no_invite_names_nothing_so_the_tu_answers_481() {
    let clock = Clock::new();
    let mut layer = layer();
    let from = alice(Transport::Udp);
    let request = invite("z9hG4bKa", from);
    let (_, cancels) = receive(&mut layer, clock, 0, from, &cancel_for(&request));
    assert_eq!(cancels, None);

    // Same branch but another sender: §17.2.3 keys on sent-by too, so still no match.
    let mut layer = super::support::layer();
    receive(&mut layer, clock, 0, from, &request);
    let spoofed = cancel_for(&invite("z9hG4bKa", bob(Transport::Udp)));
    let (_, cancels) = receive(&mut layer, clock, 10, bob(Transport::Udp), &spoofed);
    assert_eq!(cancels, None);
}

#[test]
fn cancel_racing_our_2xx_finds_an_accepted_invite_that_refuses_487() {
    let clock = Clock::new();
    let mut layer = layer();
    let from = alice(Transport::Udp);
    let request = invite("z9hG4bKa", from);
    let (invite_key, _) = receive(&mut layer, clock, 0, from, &request);
    layer
        .respond(
            clock.at_ms(5_000),
            &invite_key,
            response_to(&request, 200, Some("b1")),
        )
        .unwrap();
    // The caller hung up just as we answered: the CANCEL crosses our 200.
    let (cancel_key, cancels) = receive(&mut layer, clock, 5_010, from, &cancel_for(&request));
    assert_eq!(
        cancels,
        Some(invite_key.clone()),
        "documented: the key of the answered INVITE"
    );
    assert_eq!(layer.state(&invite_key), Some(TransactionState::Accepted));
    assert!(
        layer
            .respond(
                clock.at_ms(5_010),
                &invite_key,
                response_to(&request, 487, Some("b1"))
            )
            .is_err(),
        "an answered call cannot be un-answered"
    );
    transmits(&mut layer);
    layer
        .respond(
            clock.at_ms(5_010),
            &cancel_key,
            response_to(&cancel_for(&request), 200, Some("b1")),
        )
        .unwrap();
    let sent: Vec<u16> = transmits(&mut layer).iter().filter_map(status_of).collect();
    assert_eq!(sent, [200]);
    assert_eq!(
        layer.state(&invite_key),
        Some(TransactionState::Accepted),
        "the call stays up"
    );
}

#[test]
fn cancel_after_the_invite_transaction_ended_names_nothing() {
    let clock = Clock::new();
    let mut layer = layer();
    let from = alice(Transport::Udp);
    let request = invite("z9hG4bKa", from);
    let (invite_key, _) = receive(&mut layer, clock, 0, from, &request);
    layer
        .respond(
            clock.at_ms(0),
            &invite_key,
            response_to(&request, 200, Some("b1")),
        )
        .unwrap();
    layer.handle_timeout(clock.at_ms(32_000));
    assert_eq!(
        events(&mut layer),
        [TransactionEvent::Terminated {
            key: invite_key.clone()
        }]
    );
    assert_eq!(layer.state(&invite_key), None, "Timer L ended it");
    let (_, cancels) = receive(&mut layer, clock, 40_000, from, &cancel_for(&request));
    assert_eq!(cancels, None);
}

#[test]
fn a_2xx_racing_our_cancel_is_delivered_and_so_is_the_cancel_200() {
    let clock = Clock::new();
    let mut layer = layer();
    let to = bob(Transport::Udp);
    let request = invite("z9hG4bKa", alice(Transport::Udp));
    let invite_key = layer.send_request(clock.at_ms(0), to, request.clone());
    layer
        .handle_message(
            clock.at_ms(100),
            to,
            response_to(&request, 180, Some("b1")).into(),
        )
        .unwrap();
    let cancel = cancel_for(&request);
    let cancel_key = layer.send_request(clock.at_ms(4_000), to, cancel.clone());
    events(&mut layer);
    let ok = response_to(&request, 200, Some("b1"));
    layer
        .handle_message(clock.at_ms(4_010), to, ok.clone().into())
        .unwrap();
    let cancel_ok = response_to(&cancel, 200, Some("b1"));
    layer
        .handle_message(clock.at_ms(4_020), to, cancel_ok.clone().into())
        .unwrap();
    assert_eq!(
        events(&mut layer),
        [
            TransactionEvent::Response {
                key: invite_key.clone(),
                response: ok
            },
            TransactionEvent::Response {
                key: cancel_key,
                response: cancel_ok
            },
        ]
    );
    assert_eq!(layer.state(&invite_key), Some(TransactionState::Accepted));
    let timeline = run_timers(&mut layer, clock, 4_020, 100_000);
    assert!(
        timeline.timeouts().is_empty(),
        "the 2xx disarmed the CANCEL's Timer B"
    );
    assert_eq!(layer.len(), 0);
}
