//! Property tests: whatever the network and the TU throw at the layer, it never panics, never
//! leaves a deadline stuck in the past, and empties itself once the TU has answered everything
//! and the timers have run.
use std::collections::HashSet;
use std::time::Duration;

use proptest::prelude::*;
use rsip::Method;

use super::super::{Role, TransactionEvent, TransactionKey, TransactionLayer, TransactionState};
use super::pair::{Answer, Loss, Pair};
use super::support::*;
use crate::sip::peer::Transport;

const METHODS: [Method; 5] = [
    Method::Invite,
    Method::Ack,
    Method::Bye,
    Method::Cancel,
    Method::Options,
];
const BRANCHES: [&str; 3] = ["z9hG4bKone", "z9hG4bKtwo", "z9hG4bKthree"];
const CODES: [u16; 9] = [100, 180, 183, 200, 202, 302, 486, 487, 603];
const TRANSPORTS: [Transport; 2] = [Transport::Udp, Transport::Tcp];

#[derive(Debug, Clone)]
enum Op {
    /// A request from alice or bob arrives.
    Receive {
        method: usize,
        branch: usize,
        from_bob: bool,
        transport: usize,
    },
    /// A response for one of our (possible) client transactions arrives.
    ReceiveResponse {
        method: usize,
        branch: usize,
        code: usize,
        tag: u8,
        transport: usize,
    },
    /// The TU answers one of the server transactions it heard of.
    Respond {
        pick: usize,
        code: usize,
    },
    /// The TU starts a client transaction (or sends an ACK).
    Send {
        method: usize,
        branch: usize,
        transport: usize,
    },
    /// A message the layer cannot key.
    Unkeyable,
    Advance {
        ms: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (
            0..METHODS.len(),
            0..BRANCHES.len(),
            any::<bool>(),
            0..TRANSPORTS.len()
        )
            .prop_map(|(method, branch, from_bob, transport)| Op::Receive {
                method,
                branch,
                from_bob,
                transport
            }),
        (
            0..METHODS.len(),
            0..BRANCHES.len(),
            0..CODES.len(),
            0u8..3,
            0..TRANSPORTS.len()
        )
            .prop_map(
                |(method, branch, code, tag, transport)| Op::ReceiveResponse {
                    method,
                    branch,
                    code,
                    tag,
                    transport
                }
            ),
        (any::<usize>(), 0..CODES.len()).prop_map(|(pick, code)| Op::Respond { pick, code }),
        (0..METHODS.len(), 0..BRANCHES.len(), 0..TRANSPORTS.len()).prop_map(
            |(method, branch, transport)| Op::Send {
                method,
                branch,
                transport
            }
        ),
        Just(Op::Unkeyable),
        (0u64..40_000).prop_map(|ms| Op::Advance { ms }),
    ]
}

/// Checks what one step produced: every transmit is parseable SIP, every key terminates at most
/// once, a timeout is followed by its termination, and no terminated key is still live.
#[derive(Default)]
struct Observer {
    server_keys: Vec<TransactionKey>,
    client_keys: Vec<TransactionKey>,
    /// Keys whose transaction has started and not yet terminated.
    live: HashSet<TransactionKey>,
}

impl Observer {
    fn drain(&mut self, layer: &mut TransactionLayer) {
        for transmit in transmits(layer) {
            parse_transmit(&transmit);
        }
        let seen = events(layer);
        for (index, event) in seen.iter().enumerate() {
            match event {
                TransactionEvent::Request { key, cancels, .. } => {
                    assert_eq!(key.role(), Role::Server);
                    if let Some(invite) = cancels {
                        assert_eq!(invite.method(), Method::Invite);
                    }
                    assert!(self.live.insert(key.clone()), "{key} reported new while live");
                    self.server_keys.push(key.clone());
                }
                TransactionEvent::Response { key, .. } => assert_eq!(key.role(), Role::Client),
                TransactionEvent::Timeout { key } => assert!(
                    seen[index + 1..]
                        .iter()
                        .any(|later| matches!(later, TransactionEvent::Terminated { key: ended } if ended == key)),
                    "timeout of {key} without termination"
                ),
                TransactionEvent::Terminated { key } => {
                    assert!(self.live.remove(key), "{key} terminated twice or never started");
                    assert_eq!(layer.state(key), None, "{key} terminated but still live");
                }
                TransactionEvent::Ack { .. } | TransactionEvent::StrayResponse { .. } => {}
            }
        }
    }
}

fn apply(
    layer: &mut TransactionLayer,
    clock: Clock,
    now_ms: &mut u64,
    observer: &mut Observer,
    op: Op,
) {
    let now = clock.at_ms(*now_ms);
    match op {
        Op::Receive {
            method,
            branch,
            from_bob,
            transport,
        } => {
            let transport = TRANSPORTS[transport];
            let from = if from_bob {
                bob(transport)
            } else {
                alice(transport)
            };
            let message = request(METHODS[method], BRANCHES[branch], 1, from, "call-p");
            layer
                .handle_message(now, from, message.into())
                .expect("well-formed requests key");
        }
        Op::ReceiveResponse {
            method,
            branch,
            code,
            tag,
            transport,
        } => {
            let transport = TRANSPORTS[transport];
            let sent = request(
                METHODS[method],
                BRANCHES[branch],
                1,
                alice(transport),
                "call-p",
            );
            let tag = format!("t{tag}");
            let response = response_to(&sent, CODES[code], Some(&tag));
            layer
                .handle_message(now, bob(transport), response.into())
                .expect("well-formed responses key");
        }
        Op::Respond { pick, code } => {
            if !observer.server_keys.is_empty() {
                let key = observer.server_keys[pick % observer.server_keys.len()].clone();
                let shape = request(
                    key.method(),
                    key.branch(),
                    1,
                    alice(Transport::Udp),
                    "call-p",
                );
                // Refusals (terminated key, wrong state) are part of the contract, not failures.
                let _ = layer.respond(now, &key, response_to(&shape, CODES[code], Some("me")));
            }
        }
        Op::Send {
            method,
            branch,
            transport,
        } => {
            let transport = TRANSPORTS[transport];
            let message = request(
                METHODS[method],
                BRANCHES[branch],
                1,
                alice(transport),
                "call-p",
            );
            let key = layer.send_request(now, bob(transport), message);
            if layer.state(&key).is_some() {
                observer.live.insert(key.clone());
            }
            observer.client_keys.push(key);
        }
        Op::Unkeyable => {
            let mut message = request(
                Method::Options,
                "z9hG4bKx",
                1,
                alice(Transport::Udp),
                "call-p",
            );
            message
                .headers
                .retain(|header| !matches!(header, rsip::Header::Via(_)));
            assert!(layer
                .handle_message(now, alice(Transport::Udp), message.into())
                .is_err());
        }
        Op::Advance { ms } => {
            *now_ms += ms;
            layer.handle_timeout(clock.at_ms(*now_ms));
        }
    }
    observer.drain(layer);
    if let Some(deadline) = layer.poll_timeout() {
        let now = clock.at_ms(*now_ms);
        // A deadline may be due right now only if no handle_timeout ran since it was set.
        if deadline < now {
            layer.handle_timeout(now);
            observer.drain(layer);
            assert!(
                layer.poll_timeout().is_none_or(|next| next > now),
                "deadline stuck in the past"
            );
        }
    }
}

/// What a well-behaved TU does at the end of the day: answer every request still waiting and
/// cancel every INVITE still ringing. After that only timers remain, and they must empty the layer.
fn wind_down(
    layer: &mut TransactionLayer,
    clock: Clock,
    now_ms: &mut u64,
    observer: &mut Observer,
) {
    let now = clock.at_ms(*now_ms);
    for key in observer.server_keys.clone() {
        if matches!(
            layer.state(&key),
            Some(TransactionState::Trying | TransactionState::Proceeding)
        ) {
            let shape = request(
                key.method(),
                key.branch(),
                1,
                alice(Transport::Udp),
                "call-p",
            );
            layer
                .respond(now, &key, response_to(&shape, 500, Some("me")))
                .expect("a waiting server transaction takes a final");
        }
    }
    for key in observer.client_keys.clone() {
        if key.method() == Method::Invite && layer.state(&key) == Some(TransactionState::Proceeding)
        {
            let invite = request(
                Method::Invite,
                key.branch(),
                1,
                alice(Transport::Udp),
                "call-p",
            );
            let cancel = layer.send_request(now, bob(Transport::Udp), cancel_for(&invite));
            observer.live.insert(cancel);
        }
    }
    observer.drain(layer);
    let mut steps = 0;
    while let Some(deadline) = layer.poll_timeout() {
        steps += 1;
        assert!(steps < 10_000, "timers never settle");
        *now_ms = clock.ms_since_origin(deadline).max(*now_ms);
        layer.handle_timeout(deadline);
        observer.drain(layer);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_sequence_of_messages_and_timeouts_leaves_an_empty_layer(ops in prop::collection::vec(op(), 0..60)) {
        let clock = Clock::new();
        let mut layer = layer();
        let mut now_ms = 0;
        let mut observer = Observer::default();
        for op in ops {
            apply(&mut layer, clock, &mut now_ms, &mut observer, op);
        }
        wind_down(&mut layer, clock, &mut now_ms, &mut observer);
        prop_assert_eq!(layer.len(), 0);
        prop_assert!(layer.is_empty());
        prop_assert_eq!(layer.poll_timeout(), None);
        prop_assert!(observer.live.is_empty(), "no Terminated for {:?}", observer.live);
    }

    #[test]
    fn a_call_under_random_udp_loss_ends_consistently_on_both_sides(
        caller_drops in prop::collection::vec(any::<bool>(), 0..24),
        callee_drops in prop::collection::vec(any::<bool>(), 0..24),
        answer in prop_oneof![Just(Answer::Accept), Just(Answer::Reject(486))],
    ) {
        let mut pair = Pair::new(
            Transport::Udp,
            answer,
            Loss { drop: caller_drops },
            Loss { drop: callee_drops },
        );
        pair.caller.ring_timeout = Some(Duration::from_secs(60));
        pair.call();
        pair.run(Duration::from_secs(1_000));
        prop_assert_eq!(pair.caller_end.layer.len(), 0);
        prop_assert_eq!(pair.callee_end.layer.len(), 0);
        let invites = pair.callee.requests.iter().filter(|method| **method == Method::Invite).count();
        prop_assert!(invites <= 1, "retransmissions became {} calls", invites);
        let expected = match answer {
            Answer::Accept => 200,
            Answer::Reject(code) => code,
            Answer::Never => unreachable!("not generated"),
        };
        if pair.caller.timeouts.is_empty() {
            prop_assert_eq!(&pair.caller.finals, &vec![expected]);
        } else {
            prop_assert!(pair.caller.finals.is_empty(), "timed out after a final: {:?}", pair.caller.finals);
        }
        if pair.callee.acks > 0 {
            prop_assert_eq!(expected, 200, "only the ACK for a 2xx reaches the TU");
        }
    }
}
