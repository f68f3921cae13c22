//! Two call controls, the user side and the network side of one PRI, wired together in memory
//! in virtual time. Every call flow both ways, glare, RESTART of a busy channel, the timers,
//! a lost link, and the answers to malformed messages.
use std::time::{Duration, Instant};

use super::*;

struct Pair {
    user: CallControl,
    network: CallControl,
    now: Instant,
    /// Messages that crossed, in order, with the side that sent them.
    wire: Vec<(Side, Message)>,
    /// Messages of this type from this side are lost (each entry once).
    lose: Vec<(Side, MessageType)>,
    user_events: Vec<Event>,
    network_events: Vec<Event>,
}

fn e1(side: Side) -> CallControl {
    let mut control = CallControl::new(ControlConfig::e1(side));
    control.link_up(Instant::now());
    control
}

fn number(digits: &str) -> Setup {
    Setup {
        called: PartyNumber::new(digits),
        calling: Some(PartyNumber {
            presentation: Some(ie::Presentation::Allowed),
            ..PartyNumber::new("0201234567")
        }),
        display: Some("Branch 7".into()),
    }
}

impl Pair {
    fn new() -> Self {
        Pair::with(e1(Side::User), e1(Side::Network))
    }

    fn with(user: CallControl, network: CallControl) -> Self {
        Pair {
            user,
            network,
            now: Instant::now(),
            wire: Vec::new(),
            lose: Vec::new(),
            user_events: Vec::new(),
            network_events: Vec::new(),
        }
    }

    fn side(&mut self, side: Side) -> &mut CallControl {
        match side {
            Side::User => &mut self.user,
            Side::Network => &mut self.network,
        }
    }

    fn events(&mut self, side: Side) -> &mut Vec<Event> {
        match side {
            Side::User => &mut self.user_events,
            Side::Network => &mut self.network_events,
        }
    }

    /// Moves messages both ways until neither side has any to send.
    fn exchange(&mut self) {
        loop {
            let mut moved = false;
            for from in [Side::User, Side::Network] {
                while let Some(bytes) = self.side(from).poll_transmit() {
                    moved = true;
                    let message = Message::parse(&bytes).expect("we send what we can read");
                    let lost = self
                        .lose
                        .iter()
                        .position(|&(s, k)| s == from && k == message.kind);
                    self.wire.push((from, message.clone()));
                    match lost {
                        Some(i) => {
                            self.lose.remove(i);
                        }
                        None => {
                            let now = self.now;
                            self.side(other(from)).handle_message(now, &bytes);
                        }
                    }
                }
            }
            if !moved {
                break;
            }
        }
        let user: Vec<Event> = std::iter::from_fn(|| self.user.poll_event()).collect();
        self.user_events.extend(user);
        let network: Vec<Event> = std::iter::from_fn(|| self.network.poll_event()).collect();
        self.network_events.extend(network);
    }

    /// Runs the clock for `d`, timeout to timeout, exchanging messages at each.
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        self.exchange();
        while let Some(next) = [self.user.poll_timeout(), self.network.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .filter(|&t| t <= end)
        {
            self.now = next;
            self.user.handle_timeout(next);
            self.network.handle_timeout(next);
            self.exchange();
        }
        self.now = end;
    }

    /// Injects raw bytes as if `from` had sent them.
    fn inject(&mut self, from: Side, bytes: &[u8]) {
        let now = self.now;
        self.side(other(from)).handle_message(now, bytes);
        self.exchange();
    }

    fn incoming(&mut self, side: Side) -> Incoming {
        self.events(side)
            .iter()
            .find_map(|e| match e {
                Event::Incoming(i) => Some(i.clone()),
                _ => None,
            })
            .expect("a call was offered")
    }

    fn cleared(&self, side: Side, call: CallRef) -> Option<u8> {
        let events = match side {
            Side::User => &self.user_events,
            Side::Network => &self.network_events,
        };
        events.iter().find_map(|e| match e {
            Event::Cleared { call: c, cause } if *c == call => Some(cause.value),
            _ => None,
        })
    }

    /// The messages `from` sent, by type, in order.
    fn sent(&self, from: Side) -> Vec<MessageType> {
        self.wire
            .iter()
            .filter(|(s, _)| *s == from)
            .map(|(_, m)| m.kind)
            .collect()
    }

    /// The last message of type `kind` that `from` sent.
    fn last(&self, from: Side, kind: MessageType) -> Message {
        self.wire
            .iter()
            .rev()
            .find(|(s, m)| *s == from && m.kind == kind)
            .map(|(_, m)| m.clone())
            .unwrap_or_else(|| panic!("{from:?} sent no {}", kind.name()))
    }

    /// Places a call from `caller` and has the other side answer it: the two calls.
    fn answered_call(&mut self, caller: Side) -> (CallRef, CallRef) {
        let now = self.now;
        let ours = self.side(caller).setup(now, number("5551234")).unwrap();
        self.exchange();
        let callee = other(caller);
        let theirs = self.incoming(callee).call;
        self.side(callee).proceeding(theirs).unwrap();
        self.side(callee).alerting(theirs, true).unwrap();
        self.exchange();
        let now = self.now;
        self.side(callee).connect(now, theirs).unwrap();
        self.exchange();
        (ours, theirs)
    }
}

fn other(side: Side) -> Side {
    match side {
        Side::User => Side::Network,
        Side::Network => Side::User,
    }
}

/// The header of a message the far side sends about our call `ours`: flag 1, toward us.
fn to_our_call(ours: CallRef, kind: u8) -> Vec<u8> {
    let [hi, lo] = ours.value.to_be_bytes();
    vec![0x08, 0x02, 0x80 | hi, lo, kind]
}

fn cause_of(message: &Message) -> u8 {
    let raw = message.ie(id::CAUSE).expect("a cause");
    Cause::read(&raw.body).unwrap().value
}

fn diagnostic_of(message: &Message) -> Vec<u8> {
    let raw = message.ie(id::CAUSE).expect("a cause");
    Cause::read(&raw.body).unwrap().diagnostic
}

#[test]
fn a_call_either_way_is_offered_alerted_answered_and_cleared() {
    for caller in [Side::User, Side::Network] {
        let callee = other(caller);
        let mut pair = Pair::new();
        let (ours, theirs) = pair.answered_call(caller);

        let offered = pair.incoming(callee);
        assert_eq!(offered.called.digits, "5551234");
        assert_eq!(offered.calling.as_ref().unwrap().digits, "0201234567");
        assert_eq!(offered.display.as_deref(), Some("Branch 7"));
        assert_eq!(offered.law, Law::ALaw);
        // Each side picks from its own end of the span.
        let expected_channel = match caller {
            Side::User => 31,
            Side::Network => 1,
        };
        assert_eq!(offered.channel, expected_channel, "{caller:?}");

        let caller_saw: Vec<&Event> = pair.events(caller).iter().collect();
        assert_eq!(
            caller_saw,
            [
                &Event::Proceeding {
                    call: ours,
                    channel: expected_channel
                },
                &Event::Alerting {
                    call: ours,
                    inband: true
                },
                &Event::Connected { call: ours },
            ],
            "{caller:?}"
        );
        assert!(pair
            .events(callee)
            .contains(&Event::Connected { call: theirs }));
        assert_eq!(pair.side(caller).state(ours), Some(State::Active));
        assert_eq!(pair.side(callee).state(theirs), Some(State::Active));
        assert_eq!(
            pair.sent(caller),
            [MessageType::Setup, MessageType::ConnectAcknowledge]
        );
        assert_eq!(
            pair.sent(callee),
            [
                MessageType::CallProceeding,
                MessageType::Alerting,
                MessageType::Connect
            ]
        );

        // The caller hangs up.
        let now = pair.now;
        pair.side(caller)
            .hang_up(now, ours, cause::NORMAL_CLEARING)
            .unwrap();
        pair.exchange();
        let location = pair.side(caller).our_location();
        assert!(pair.events(callee).contains(&Event::Disconnecting {
            call: theirs,
            cause: Cause::new(location, cause::NORMAL_CLEARING)
        }));
        assert_eq!(pair.cleared(callee, theirs), Some(cause::NORMAL_CLEARING));
        assert_eq!(pair.cleared(caller, ours), Some(cause::NORMAL_CLEARING));
        for side in [Side::User, Side::Network] {
            assert_eq!(pair.side(side).channels_in_use(), (0, 0), "{side:?}");
            assert_eq!(pair.side(side).calls().count(), 0);
            assert_eq!(
                pair.side(side).poll_timeout(),
                None,
                "no timer left running"
            );
        }
    }
}

#[test]
fn a_busy_callee_refuses_the_setup_with_its_cause() {
    for caller in [Side::User, Side::Network] {
        let callee = other(caller);
        let mut pair = Pair::new();
        let now = pair.now;
        let ours = pair.side(caller).setup(now, number("200")).unwrap();
        pair.exchange();
        let theirs = pair.incoming(callee).call;
        pair.side(callee)
            .hang_up(now, theirs, cause::USER_BUSY)
            .unwrap();
        pair.exchange();
        assert_eq!(pair.sent(callee), [MessageType::ReleaseComplete]);
        assert_eq!(pair.cleared(caller, ours), Some(cause::USER_BUSY));
        assert_eq!(pair.side(caller).channels_in_use(), (0, 0));
        assert_eq!(pair.side(callee).channels_in_use(), (0, 0));
    }
}

#[test]
fn an_alerted_call_nobody_answers_is_cleared_by_the_network_after_t301() {
    let mut pair = Pair::new();
    let now = pair.now;
    let ours = pair.network.setup(now, number("200")).unwrap();
    pair.exchange();
    let theirs = pair.incoming(Side::User).call;
    pair.user.alerting(theirs, false).unwrap();
    pair.run(Duration::from_secs(179));
    assert_eq!(pair.network.state(ours), Some(State::CallDelivered));
    pair.run(Duration::from_secs(2));
    assert_eq!(pair.cleared(Side::User, theirs), Some(cause::NO_ANSWER));
    assert_eq!(pair.cleared(Side::Network, ours), Some(cause::NO_ANSWER));
}

#[test]
fn a_caller_who_gives_up_while_it_rings_clears_the_call_either_way() {
    for caller in [Side::User, Side::Network] {
        let callee = other(caller);
        let mut pair = Pair::new();
        let now = pair.now;
        let ours = pair.side(caller).setup(now, number("200")).unwrap();
        pair.exchange();
        let theirs = pair.incoming(callee).call;
        pair.side(callee).alerting(theirs, false).unwrap();
        pair.run(Duration::from_secs(5));
        let now = pair.now;
        pair.side(caller)
            .hang_up(now, ours, cause::NORMAL_CLEARING)
            .unwrap();
        pair.exchange();
        assert_eq!(pair.cleared(callee, theirs), Some(cause::NORMAL_CLEARING));
        assert_eq!(pair.cleared(caller, ours), Some(cause::NORMAL_CLEARING));
        assert_eq!(
            pair.sent(caller),
            [
                MessageType::Setup,
                MessageType::Disconnect,
                MessageType::ReleaseComplete
            ]
        );
        assert_eq!(
            pair.sent(callee),
            [MessageType::Alerting, MessageType::Release]
        );
    }
}

#[test]
fn the_called_side_may_clear_an_answered_call_first() {
    for caller in [Side::User, Side::Network] {
        let callee = other(caller);
        let mut pair = Pair::new();
        let (ours, theirs) = pair.answered_call(caller);
        let now = pair.now;
        pair.side(callee)
            .hang_up(now, theirs, cause::NORMAL_CLEARING)
            .unwrap();
        pair.exchange();
        assert!(matches!(
            pair.events(caller).iter().find(|e| matches!(e, Event::Disconnecting { .. })),
            Some(Event::Disconnecting { call, .. }) if *call == ours
        ));
        assert_eq!(pair.cleared(caller, ours), Some(cause::NORMAL_CLEARING));
        assert_eq!(pair.cleared(callee, theirs), Some(cause::NORMAL_CLEARING));
    }
}

#[test]
fn both_sides_disconnecting_at_once_still_release_the_call() {
    let mut pair = Pair::new();
    let (ours, theirs) = pair.answered_call(Side::User);
    let now = pair.now;
    pair.user
        .hang_up(now, ours, cause::NORMAL_CLEARING)
        .unwrap();
    pair.network
        .hang_up(now, theirs, cause::NORMAL_CLEARING)
        .unwrap();
    pair.exchange();
    assert!(pair.cleared(Side::User, ours).is_some());
    assert!(pair.cleared(Side::Network, theirs).is_some());
    assert_eq!(pair.user.channels_in_use(), (0, 0));
    assert_eq!(pair.network.channels_in_use(), (0, 0));
    assert_eq!(pair.user.poll_timeout(), None);
    assert_eq!(pair.network.poll_timeout(), None);
}

#[test]
fn in_glare_on_one_channel_the_networks_call_wins_and_the_users_is_refused_with_44() {
    let one_channel = |side| {
        let mut control = CallControl::new(ControlConfig {
            channels: vec![5],
            ..ControlConfig::e1(side)
        });
        control.link_up(Instant::now());
        control
    };
    let mut pair = Pair::with(one_channel(Side::User), one_channel(Side::Network));
    let now = pair.now;
    // Both SETUPs are on the wire before either arrives.
    let users = pair.user.setup(now, number("300")).unwrap();
    let networks = pair.network.setup(now, number("400")).unwrap();
    pair.exchange();
    let offered = pair.incoming(Side::User);
    assert_eq!(offered.channel, 5);
    assert_eq!(offered.called.digits, "400");
    assert_eq!(
        pair.cleared(Side::User, users),
        Some(cause::REQUESTED_CHANNEL_NOT_AVAILABLE)
    );
    assert!(pair
        .network_events
        .iter()
        .all(|e| !matches!(e, Event::Incoming(_))));
    // The network's call goes on to an answer.
    let now = pair.now;
    pair.user.connect(now, offered.call).unwrap();
    pair.exchange();
    assert_eq!(pair.network.state(networks), Some(State::Active));
    assert_eq!(pair.user.state(offered.call), Some(State::Active));
    assert_eq!(pair.user.channel_of(offered.call), Some(5));
}

#[test]
fn a_preferred_channel_may_be_moved_by_the_side_that_takes_the_call() {
    let two_channels = |side, exclusive| {
        let mut control = CallControl::new(ControlConfig {
            channels: vec![5, 6],
            exclusive,
            ..ControlConfig::e1(side)
        });
        control.link_up(Instant::now());
        control
    };
    // The user's call prefers 6; the network answers with 5.
    let mut pair = Pair::with(
        two_channels(Side::User, false),
        two_channels(Side::Network, true),
    );
    pair.lose = vec![(Side::User, MessageType::Setup)];
    let now = pair.now;
    let ours = pair.user.setup(now, number("300")).unwrap();
    pair.exchange();
    assert_eq!(pair.user.channel_of(ours), Some(6));
    let header = to_our_call(ours, 0x02);
    pair.inject(
        Side::Network,
        &[&header[..], &[0x18, 0x03, 0xa9, 0x83, 0x85]].concat(),
    );
    assert_eq!(pair.user.channel_of(ours), Some(5));
    assert!(pair.user_events.contains(&Event::Proceeding {
        call: ours,
        channel: 5
    }));

    // The network's 5 is busy when a SETUP prefers it: the network gives 6.
    let mut pair = Pair::with(
        two_channels(Side::User, false),
        two_channels(Side::Network, true),
    );
    let now = pair.now;
    let networks = pair.network.setup(now, number("400")).unwrap();
    assert_eq!(pair.network.channel_of(networks), Some(5));
    pair.wire.clear();
    let preferring_5 = [0x18, 0x03, 0xa1, 0x83, 0x85];
    let setup = [
        &[0x08, 0x02, 0x00, 0x33, 0x05][..],
        &BEARER,
        &preferring_5,
        &CALLED_200,
    ]
    .concat();
    pair.inject(Side::User, &setup);
    assert_eq!(pair.incoming(Side::Network).channel, 6);
    let theirs = pair.incoming(Side::Network).call;
    pair.network.proceeding(theirs).unwrap();
    pair.exchange();
    let proceeding = pair.last(Side::Network, MessageType::CallProceeding);
    let named = ChannelId::read(&proceeding.ie(id::CHANNEL_ID).unwrap().body).unwrap();
    assert_eq!(named, ChannelId::exclusive(6));
    // Exclusively, the same SETUP would have been refused.
    let exclusive_5 = [0x18, 0x03, 0xa9, 0x83, 0x85];
    let setup = [
        &[0x08, 0x02, 0x00, 0x34, 0x05][..],
        &BEARER,
        &exclusive_5,
        &CALLED_200,
    ]
    .concat();
    pair.inject(Side::User, &setup);
    let refusal = pair.last(Side::Network, MessageType::ReleaseComplete);
    assert_eq!(cause_of(&refusal), cause::REQUESTED_CHANNEL_NOT_AVAILABLE);
}

#[test]
fn a_restart_of_a_busy_channel_ends_its_call_at_both_ends() {
    for restarter in [Side::User, Side::Network] {
        let mut pair = Pair::new();
        let (ours, theirs) = pair.answered_call(Side::User);
        let channel = pair.user.channel_of(ours).unwrap();
        let now = pair.now;
        pair.side(restarter).restart_channels(now, vec![channel]);
        pair.exchange();
        assert_eq!(
            pair.cleared(Side::User, ours),
            Some(cause::TEMPORARY_FAILURE)
        );
        assert_eq!(
            pair.cleared(Side::Network, theirs),
            Some(cause::TEMPORARY_FAILURE)
        );
        assert_eq!(pair.sent(restarter).last(), Some(&MessageType::Restart));
        assert_eq!(
            pair.sent(other(restarter)).last(),
            Some(&MessageType::RestartAcknowledge)
        );
        for side in [Side::User, Side::Network] {
            assert!(pair.events(side).contains(&Event::Restarted {
                channels: vec![channel]
            }));
            assert_eq!(pair.side(side).channels_in_use(), (0, 0), "{side:?}");
        }
        assert_eq!(pair.side(restarter).poll_timeout(), None);
    }
}

#[test]
fn an_unanswered_setup_is_sent_twice_then_given_up() {
    for caller in [Side::User, Side::Network] {
        let mut pair = Pair::new();
        pair.lose = vec![(caller, MessageType::Setup), (caller, MessageType::Setup)];
        let now = pair.now;
        let ours = pair.side(caller).setup(now, number("200")).unwrap();
        pair.run(Duration::from_millis(3_999));
        assert_eq!(pair.sent(caller), [MessageType::Setup]);
        pair.run(Duration::from_millis(2));
        assert_eq!(pair.sent(caller), [MessageType::Setup, MessageType::Setup]);
        pair.run(Duration::from_secs(4));
        let expected = match caller {
            Side::User => cause::RECOVERY_ON_TIMER_EXPIRY,
            Side::Network => cause::NO_USER_RESPONDING,
        };
        assert_eq!(pair.cleared(caller, ours), Some(expected));
        assert_eq!(pair.side(caller).channels_in_use(), (0, 0));
    }
}

#[test]
fn a_repeated_setup_reaches_the_callee_once() {
    let mut pair = Pair::new();
    // The SETUP got there; the CALL PROCEEDING did not come back.
    pair.lose = vec![(Side::Network, MessageType::CallProceeding)];
    let now = pair.now;
    let ours = pair.user.setup(now, number("200")).unwrap();
    pair.exchange();
    let theirs = pair.incoming(Side::Network).call;
    pair.network.proceeding(theirs).unwrap();
    pair.run(Duration::from_secs(5));
    let offers = pair
        .network_events
        .iter()
        .filter(|e| matches!(e, Event::Incoming(_)))
        .count();
    assert_eq!(offers, 1);
    pair.network.alerting(theirs, false).unwrap();
    pair.exchange();
    assert_eq!(pair.user.state(ours), Some(State::CallDelivered));
}

#[test]
fn a_disconnect_nobody_answers_becomes_release_then_a_restart_of_the_channel() {
    let mut pair = Pair::new();
    let (ours, _) = pair.answered_call(Side::User);
    let channel = pair.user.channel_of(ours).unwrap();
    pair.lose = vec![
        (Side::User, MessageType::Disconnect),
        (Side::User, MessageType::Release),
        (Side::User, MessageType::Release),
    ];
    let now = pair.now;
    pair.user
        .hang_up(now, ours, cause::NORMAL_CLEARING)
        .unwrap();
    pair.run(Duration::from_millis(29_999));
    assert_eq!(pair.user.state(ours), Some(State::DisconnectRequest));
    pair.run(Duration::from_millis(2));
    assert_eq!(pair.user.state(ours), Some(State::ReleaseRequest));
    pair.run(Duration::from_secs(4));
    assert_eq!(
        pair.user.state(ours),
        Some(State::ReleaseRequest),
        "RELEASE sent again"
    );
    pair.run(Duration::from_secs(4));
    assert_eq!(pair.cleared(Side::User, ours), Some(cause::NORMAL_CLEARING));
    let restart = pair.last(Side::User, MessageType::Restart);
    let named = ChannelId::read(&restart.ie(id::CHANNEL_ID).unwrap().body).unwrap();
    assert_eq!(named.selection, Selection::Channel(channel));
    // The network acknowledged it, ending its side of the call too.
    assert_eq!(pair.user.channels_in_use(), (0, 0));
    assert_eq!(pair.network.channels_in_use(), (0, 0));
    assert_eq!(
        pair.sent(Side::User),
        [
            MessageType::Setup,
            MessageType::ConnectAcknowledge,
            MessageType::Disconnect,
            MessageType::Release,
            MessageType::Release,
            MessageType::Restart,
        ]
    );
}

#[test]
fn a_restart_the_far_side_never_acknowledges_keeps_the_channel_out_of_service() {
    let mut pair = Pair::new();
    pair.lose = vec![(Side::Network, MessageType::Restart); 3];
    let now = pair.now;
    pair.network.restart_channels(now, vec![3]);
    pair.run(Duration::from_secs(120 * 3 - 1));
    assert_eq!(pair.network.channels_in_use(), (0, 1));
    assert_eq!(pair.sent(Side::Network).len(), 3, "sent every T316");
    assert!(pair
        .network_events
        .iter()
        .any(|e| matches!(e, Event::Problem(p) if p.contains("channel 3"))));
    // The fourth gets through.
    pair.run(Duration::from_secs(2));
    assert_eq!(pair.sent(Side::Network).len(), 4);
    assert_eq!(pair.network.channels_in_use(), (0, 0));
    assert_eq!(pair.network.poll_timeout(), None);
}

#[test]
fn a_call_that_proceeds_and_then_says_nothing_is_cleared_after_t310() {
    let mut pair = Pair::new();
    let now = pair.now;
    let ours = pair.user.setup(now, number("200")).unwrap();
    pair.exchange();
    let theirs = pair.incoming(Side::Network).call;
    pair.network.proceeding(theirs).unwrap();
    pair.run(Duration::from_secs(29));
    assert_eq!(pair.user.state(ours), Some(State::OutgoingProceeding));
    pair.run(Duration::from_secs(2));
    assert_eq!(
        pair.cleared(Side::User, ours),
        Some(cause::RECOVERY_ON_TIMER_EXPIRY)
    );
    assert_eq!(
        pair.cleared(Side::Network, theirs),
        Some(cause::RECOVERY_ON_TIMER_EXPIRY)
    );
}

#[test]
fn a_users_answer_the_network_never_acknowledges_is_cleared_after_t313() {
    let mut pair = Pair::new();
    let now = pair.now;
    pair.network.setup(now, number("200")).unwrap();
    pair.exchange();
    let theirs = pair.incoming(Side::User).call;
    pair.lose = vec![(Side::Network, MessageType::ConnectAcknowledge)];
    pair.user.connect(now, theirs).unwrap();
    pair.run(Duration::from_millis(3_999));
    assert_eq!(pair.user.state(theirs), Some(State::ConnectRequest));
    pair.run(Duration::from_millis(2));
    assert_eq!(
        pair.cleared(Side::User, theirs),
        Some(cause::RECOVERY_ON_TIMER_EXPIRY)
    );
}

#[test]
fn a_lost_link_clears_ringing_calls_and_keeps_answered_ones_for_t309() {
    let mut pair = Pair::new();
    let (active, _) = pair.answered_call(Side::User);
    let now = pair.now;
    let ringing = pair.user.setup(now, number("201")).unwrap();
    pair.exchange();
    pair.user.link_down(now);
    pair.exchange();
    assert_eq!(
        pair.cleared(Side::User, ringing),
        Some(cause::TEMPORARY_FAILURE)
    );
    assert_eq!(pair.user.state(active), Some(State::Active));
    assert_eq!(
        pair.user.setup(now, number("202")),
        Err(RequestError::LinkDown)
    );
    // Back within T309: the call goes on.
    pair.run(Duration::from_secs(60));
    pair.user.link_up(pair.now);
    pair.run(Duration::from_secs(60));
    assert_eq!(pair.user.state(active), Some(State::Active));
    // Down for good: after T309 the call is over.
    pair.user.link_down(pair.now);
    pair.run(Duration::from_secs(91));
    assert_eq!(
        pair.cleared(Side::User, active),
        Some(cause::DESTINATION_OUT_OF_ORDER)
    );
}

/// A SETUP from the network for call reference 0x0101, with these elements after the header.
fn setup_bytes(elements: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0x08, 0x02, 0x01, 0x01, 0x05];
    bytes.extend_from_slice(elements);
    bytes
}

const BEARER: [u8; 5] = [0x04, 0x03, 0x80, 0x90, 0xa3];
const CHANNEL_7: [u8; 5] = [0x18, 0x03, 0xa9, 0x83, 0x87];
const CALLED_200: [u8; 6] = [0x70, 0x04, 0x81, b'2', b'0', b'0'];

#[test]
fn a_setup_without_bearer_capability_is_refused_with_cause_96_naming_it() {
    let mut pair = Pair::new();
    pair.inject(
        Side::Network,
        &setup_bytes(&[&CHANNEL_7[..], &CALLED_200].concat()),
    );
    let refusal = pair.last(Side::User, MessageType::ReleaseComplete);
    assert_eq!(cause_of(&refusal), cause::MANDATORY_IE_MISSING);
    assert_eq!(diagnostic_of(&refusal), [id::BEARER_CAPABILITY]);
    assert!(pair
        .user_events
        .iter()
        .all(|e| !matches!(e, Event::Incoming(_))));
}

#[test]
fn a_setup_with_unreadable_bearer_capability_is_refused_with_cause_100() {
    let mut pair = Pair::new();
    let bad_bearer = [0x04, 0x01, 0xe0];
    pair.inject(
        Side::Network,
        &setup_bytes(&[&bad_bearer[..], &CHANNEL_7, &CALLED_200].concat()),
    );
    let refusal = pair.last(Side::User, MessageType::ReleaseComplete);
    assert_eq!(cause_of(&refusal), cause::INVALID_IE_CONTENTS);
}

#[test]
fn a_data_call_is_refused_with_cause_65() {
    let mut pair = Pair::new();
    let data = [0x04, 0x02, 0x88, 0x90];
    pair.inject(
        Side::Network,
        &setup_bytes(&[&data[..], &CHANNEL_7, &CALLED_200].concat()),
    );
    let refusal = pair.last(Side::User, MessageType::ReleaseComplete);
    assert_eq!(cause_of(&refusal), cause::BEARER_CAPABILITY_NOT_IMPLEMENTED);
}

#[test]
fn a_setup_for_a_channel_the_span_lacks_or_holds_is_refused() {
    let mut pair = Pair::new();
    let timeslot_16 = [0x18, 0x03, 0xa9, 0x83, 0x90];
    pair.inject(
        Side::Network,
        &setup_bytes(&[&BEARER[..], &timeslot_16, &CALLED_200].concat()),
    );
    let refusal = pair.last(Side::User, MessageType::ReleaseComplete);
    assert_eq!(cause_of(&refusal), cause::CHANNEL_DOES_NOT_EXIST);

    pair.inject(
        Side::Network,
        &setup_bytes(&[&BEARER[..], &CHANNEL_7, &CALLED_200].concat()),
    );
    assert_eq!(pair.incoming(Side::User).channel, 7);
    let mut again = setup_bytes(&[&BEARER[..], &CHANNEL_7, &CALLED_200].concat());
    again[3] = 0x02;
    pair.inject(Side::Network, &again);
    let refusal = pair.last(Side::User, MessageType::ReleaseComplete);
    assert_eq!(cause_of(&refusal), cause::REQUESTED_CHANNEL_NOT_AVAILABLE);
}

#[test]
fn an_unreadable_optional_element_is_left_out_and_reported_with_status_100() {
    let mut pair = Pair::new();
    let bad_display = [0x28, 0x02, b'A', 0x07];
    pair.inject(
        Side::Network,
        &setup_bytes(&[&BEARER[..], &CHANNEL_7, &bad_display, &CALLED_200].concat()),
    );
    let offered = pair.incoming(Side::User);
    assert_eq!(offered.display, None);
    assert_eq!(offered.called.digits, "200");
    let status = pair.last(Side::User, MessageType::Status);
    assert_eq!(cause_of(&status), cause::INVALID_IE_CONTENTS);
    assert_eq!(diagnostic_of(&status), [id::DISPLAY]);
    let state = ie::read_call_state(&status.ie(id::CALL_STATE).unwrap().body).unwrap();
    assert_eq!(state, State::CallPresent.code());
}

#[test]
fn an_unknown_element_is_reported_with_status_99_and_one_that_must_be_understood_stops_the_message()
{
    let mut pair = Pair::new();
    let now = pair.now;
    let ours = pair.user.setup(now, number("200")).unwrap();
    pair.exchange();
    let cref = |kind: u8| to_our_call(ours, kind);
    // ALERTING with user-user information (0x7e), which we do not read: acted on, then STATUS.
    let mut alerting = cref(0x01);
    alerting.extend_from_slice(&[0x7e, 0x02, 0x04, b'x']);
    pair.inject(Side::Network, &alerting);
    assert_eq!(pair.user.state(ours), Some(State::CallDelivered));
    let status = pair.last(Side::User, MessageType::Status);
    assert_eq!(cause_of(&status), cause::IE_NON_EXISTENT);
    assert_eq!(diagnostic_of(&status), [0x7e]);
    // CONNECT with an unknown element whose identifier says "comprehension required".
    let mut connect = cref(0x07);
    connect.extend_from_slice(&[0x0a, 0x01, 0x00]);
    pair.inject(Side::Network, &connect);
    assert_eq!(
        pair.user.state(ours),
        Some(State::CallDelivered),
        "not acted on"
    );
    let status = pair.last(Side::User, MessageType::Status);
    assert_eq!(cause_of(&status), cause::MANDATORY_IE_MISSING);
    assert_eq!(diagnostic_of(&status), [0x0a]);
}

#[test]
fn protocol_errors_get_the_status_or_release_complete_q931_asks_for() {
    let mut pair = Pair::new();
    let now = pair.now;
    let ours = pair.user.setup(now, number("200")).unwrap();
    pair.exchange();
    let header = |kind: u8| to_our_call(ours, kind);

    // PROGRESS without its progress indicator: nothing done, STATUS 96.
    pair.inject(Side::Network, &header(0x03));
    let status = pair.last(Side::User, MessageType::Status);
    assert_eq!(cause_of(&status), cause::MANDATORY_IE_MISSING);
    assert_eq!(diagnostic_of(&status), [id::PROGRESS_INDICATOR]);

    // A message type nobody knows: STATUS 97.
    pair.inject(Side::Network, &header(0x33));
    assert_eq!(
        cause_of(&pair.last(Side::User, MessageType::Status)),
        cause::MESSAGE_TYPE_NON_EXISTENT
    );

    // CONNECT ACKNOWLEDGE while our SETUP awaits an answer: STATUS 101.
    pair.inject(Side::Network, &header(0x0f));
    assert_eq!(
        cause_of(&pair.last(Side::User, MessageType::Status)),
        cause::MESSAGE_NOT_COMPATIBLE_WITH_STATE
    );

    // STATUS ENQUIRY: STATUS 30 with our state.
    pair.inject(Side::Network, &header(0x75));
    let status = pair.last(Side::User, MessageType::Status);
    assert_eq!(cause_of(&status), cause::RESPONSE_TO_STATUS_ENQUIRY);
    let state = ie::read_call_state(&status.ie(id::CALL_STATE).unwrap().body).unwrap();
    assert_eq!(state, State::CallInitiated.code());

    // A CONNECT for a call reference we never had: RELEASE COMPLETE 81.
    pair.inject(Side::Network, &[0x08, 0x02, 0x00, 0x42, 0x07]);
    assert_eq!(
        cause_of(&pair.last(Side::User, MessageType::ReleaseComplete)),
        cause::INVALID_CALL_REFERENCE
    );

    // Not Q.931, or a call reference a PRI cannot have: ignored, reported.
    let before = pair.wire.len();
    pair.inject(Side::Network, &[0x09, 0x02, 0x00, 0x01, 0x05]);
    pair.inject(Side::Network, &[0x08, 0x01, 0x01, 0x05]);
    pair.inject(Side::Network, &[0x08]);
    assert_eq!(pair.wire.len(), before, "nothing answered");
    let problems = pair
        .user_events
        .iter()
        .filter(|e| matches!(e, Event::Problem(p) if p.starts_with("message ignored")))
        .count();
    assert_eq!(problems, 3);
    assert_eq!(pair.user.state(ours), Some(State::CallInitiated));
}

#[test]
fn a_disconnect_without_cause_is_released_with_cause_96() {
    let mut pair = Pair::new();
    let (ours, _) = pair.answered_call(Side::User);
    let header = to_our_call(ours, 0x45);
    pair.inject(Side::Network, &header);
    let release = pair.last(Side::User, MessageType::Release);
    assert_eq!(cause_of(&release), cause::MANDATORY_IE_MISSING);
    assert!(pair.user_events.iter().any(|e| matches!(
        e,
        Event::Disconnecting { cause, .. } if cause.value == cause::NORMAL_UNSPECIFIED
    )));
}

#[test]
fn a_status_saying_the_far_side_has_no_call_ends_ours() {
    let mut pair = Pair::new();
    let (ours, _) = pair.answered_call(Side::User);
    let mut status = to_our_call(ours, 0x7d);
    status.extend_from_slice(&[0x08, 0x02, 0x82, 0xe5, 0x14, 0x01, 0x00]);
    pair.inject(Side::Network, &status);
    assert_eq!(
        pair.cleared(Side::User, ours),
        Some(cause::MESSAGE_NOT_COMPATIBLE_WITH_STATE)
    );
    assert_eq!(pair.user.channels_in_use(), (0, 0));
}

/// The fuzz target's seeds, and mutations of them: whatever a peer sends, in whatever state
/// our call is, call control answers or ignores it and never panics; what it sends parses.
mod any_bytes {
    use proptest::prelude::*;

    use super::*;

    fn seeds() -> Vec<Vec<u8>> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/q931_message");
        let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .expect("the seeds are committed")
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        seeds.sort();
        seeds
    }

    fn survive(side: Side, bytes: &[u8]) {
        let mut pair = Pair::new();
        let now = pair.now;
        let ours = pair.side(side).setup(now, number("1")).unwrap();
        // Our call reference in the header, so the bytes reach our call.
        let mut bytes = bytes.to_vec();
        if bytes.len() >= 4 && bytes[2] & 0x7f == 0 && bytes[3] == 1 {
            bytes[3] = ours.value as u8;
        }
        pair.side(side).handle_message(now, &bytes);
        pair.side(side)
            .handle_timeout(now + Duration::from_secs(400));
        while let Some(sent) = pair.side(side).poll_transmit() {
            Message::parse(&sent).expect("what we send parses");
        }
    }

    #[test]
    fn every_seed_is_taken_by_either_side() {
        let seeds = seeds();
        assert!(seeds.len() >= 7);
        for seed in &seeds {
            survive(Side::User, seed);
            survive(Side::Network, seed);
        }
    }

    proptest! {
        #[test]
        fn mutated_seeds_never_panic(
            pick in 0usize..7,
            flips in proptest::collection::vec((0usize..64, any::<u8>()), 0..6),
            cut in 0usize..64,
        ) {
            let seeds = seeds();
            let mut bytes = seeds[pick % seeds.len()].clone();
            for (at, value) in flips {
                let len = bytes.len().max(1);
                if let Some(b) = bytes.get_mut(at % len) {
                    *b = value;
                }
            }
            bytes.truncate(cut.max(2));
            survive(Side::User, &bytes);
            survive(Side::Network, &bytes);
        }

        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            survive(Side::User, &bytes);
            survive(Side::Network, &bytes);
        }
    }
}
