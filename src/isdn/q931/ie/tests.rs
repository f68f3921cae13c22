//! Messages and elements against octets written out from Q.931's figures, both ways, and
//! what a peer may get wrong.
use super::super::message::{CallRef, Message, MessageError, MessageType, RawIe};
use super::*;

/// A EuroISDN SETUP as a network sends it on a PRI: speech A-law, channel 1 exclusive,
/// calling 0201234567 (national, E.164, allowed, network provided), called 5551234.
const SETUP: &[u8] = &[
    0x08, 0x02, 0x00, 0x05, 0x05, // discriminator, call reference 5 from its owner, SETUP
    0x04, 0x03, 0x80, 0x90, 0xa3, // bearer capability
    0x18, 0x03, 0xa9, 0x83, 0x81, // channel identification
    0x28, 0x04, b'A', b'n', b'n', b'a', // display
    0x6c, 0x0c, 0x21, 0x83, b'0', b'2', b'0', b'1', b'2', b'3', b'4', b'5', b'6', b'7', 0x70, 0x08,
    0x81, b'5', b'5', b'5', b'1', b'2', b'3', b'4', // called party number
    0xa1, // sending complete
];

#[test]
fn a_setup_reads_element_by_element_and_writes_back_the_same_octets() {
    let message = Message::parse(SETUP).unwrap();
    assert_eq!(
        message.call_ref,
        CallRef {
            value: 5,
            ours: false
        }
    );
    assert_eq!(message.kind, MessageType::Setup);
    assert!(!message.truncated);
    let bearer = BearerCapability::read(&message.ie(id::BEARER_CAPABILITY).unwrap().body);
    assert_eq!(bearer, Ok(BearerCapability::speech(Law::ALaw)));
    let channel = ChannelId::read(&message.ie(id::CHANNEL_ID).unwrap().body);
    assert_eq!(channel, Ok(ChannelId::exclusive(1)));
    assert_eq!(
        read_display(&message.ie(id::DISPLAY).unwrap().body).as_deref(),
        Ok("Anna")
    );
    let calling = PartyNumber::read(
        id::CALLING_NUMBER,
        &message.ie(id::CALLING_NUMBER).unwrap().body,
    )
    .unwrap();
    assert_eq!(calling.number_type, NumberType::National);
    assert_eq!(calling.plan, NumberingPlan::Isdn);
    assert_eq!(calling.presentation, Some(Presentation::Allowed));
    assert_eq!(calling.screening, 3);
    assert_eq!(calling.digits, "0201234567");
    let called = PartyNumber::read(
        id::CALLED_NUMBER,
        &message.ie(id::CALLED_NUMBER).unwrap().body,
    )
    .unwrap();
    assert_eq!(called.number_type, NumberType::Unknown);
    assert_eq!(called.digits, "5551234");
    assert!(message.ie(id::SENDING_COMPLETE).is_some());

    // Written again from the typed elements by the call's owner: the same octets.
    let owner = CallRef {
        value: 5,
        ours: true,
    };
    let mut again = Message::new(owner, MessageType::Setup);
    again.ies.push(bearer.unwrap().write());
    again.ies.push(channel.unwrap().write());
    again.ies.push(write_display("Anna"));
    again.ies.push(calling.write(id::CALLING_NUMBER));
    again.ies.push(called.write(id::CALLED_NUMBER));
    again.push(id::SENDING_COMPLETE, Vec::new());
    assert_eq!(again.to_bytes(), SETUP);
}

#[test]
fn the_call_reference_flag_says_whose_call_it_is_from_our_side() {
    let ours = CallRef {
        value: 0x1234,
        ours: true,
    };
    let sent = Message::new(ours, MessageType::Connect).to_bytes();
    assert_eq!(
        sent,
        [0x08, 0x02, 0x12, 0x34, 0x07],
        "flag 0 from the owner"
    );
    // The far side reads the same octets as its peer's call; its answer comes back as ours.
    let at_far_side = Message::parse(&sent).unwrap().call_ref;
    assert!(!at_far_side.ours);
    let answer = Message::new(at_far_side, MessageType::ConnectAcknowledge).to_bytes();
    assert_eq!(answer[2], 0x92);
    assert_eq!(Message::parse(&answer).unwrap().call_ref, ours);
}

#[test]
fn causes_progress_restart_and_call_state_round_trip() {
    let mut cause = Cause::new(location::PUBLIC_REMOTE, 17);
    cause.diagnostic = vec![0x04];
    let raw = cause.write();
    assert_eq!(raw.body, [0x84, 0x91, 0x04]);
    assert_eq!(Cause::read(&raw.body), Ok(cause));
    // With the optional recommendation octet 3a.
    assert_eq!(Cause::read(&[0x02, 0x80, 0x90]).unwrap().value, 16);

    let progress = ProgressIndicator {
        location: location::PUBLIC_LOCAL,
        description: PROGRESS_INBAND,
    };
    assert_eq!(progress.write().body, [0x82, 0x88]);
    assert!(ProgressIndicator::read(&[0x82, 0x88]).unwrap().inband());
    assert!(!ProgressIndicator::read(&[0x82, 0x84]).unwrap().inband());

    for class in [RestartClass::Channels, RestartClass::Interface] {
        assert_eq!(
            read_restart_class(&write_restart_class(class).body),
            Ok(class)
        );
    }
    assert_eq!(read_call_state(&write_call_state(10).body), Ok(10));
    for selection in [Selection::None, Selection::Any, Selection::Channel(17)] {
        for exclusive in [false, true] {
            let id = ChannelId {
                exclusive,
                selection,
            };
            assert_eq!(ChannelId::read(&id.write().body), Ok(id));
        }
    }
    let mu = BearerCapability::speech(Law::MuLaw);
    assert_eq!(BearerCapability::read(&mu.write().body), Ok(mu));
}

#[test]
fn elements_a_peer_gets_wrong_are_errors_that_name_the_element() {
    let cases: [(u8, &[u8]); 9] = [
        (id::BEARER_CAPABILITY, &[0x80]),
        (id::BEARER_CAPABILITY, &[0xe0, 0x90]),
        (id::CHANNEL_ID, &[0x89, 0x83, 0x81]),
        (id::CHANNEL_ID, &[0xa9, 0x83]),
        (id::CHANNEL_ID, &[0xa9, 0x93, 0x81]),
        (id::CAUSE, &[0x82, 0x10]),
        (id::CALLED_NUMBER, &[0x81, b'1', b'x']),
        (id::CALLING_NUMBER, &[0x21, 0xe3, b'1']),
        (id::DISPLAY, &[b'h', 0x01]),
    ];
    for (id, body) in cases {
        let error = match id {
            id::BEARER_CAPABILITY => BearerCapability::read(body).err(),
            id::CHANNEL_ID => ChannelId::read(body).err(),
            id::CAUSE => Cause::read(body).err(),
            id::CALLED_NUMBER | id::CALLING_NUMBER => PartyNumber::read(id, body).err(),
            _ => read_display(body).err(),
        };
        let error = error.unwrap_or_else(|| panic!("{} {body:02x?} read", id::name(id)));
        assert_eq!(error.id, id);
        assert!(error.to_string().starts_with(id::name(id)), "{error}");
    }
}

#[test]
fn shifts_put_elements_in_their_codeset_and_a_truncated_tail_is_flagged() {
    // A locking shift to codeset 5, an element there, then (non-locking) one in codeset 6.
    let bytes = [
        0x08, 0x02, 0x00, 0x01, 0x01, 0x95, 0x01, 0x01, 0x41, 0x9e, 0x02, 0x01, 0x42,
    ];
    let message = Message::parse(&bytes).unwrap();
    assert_eq!(
        message.ies,
        [
            RawIe {
                codeset: 5,
                id: 0x01,
                body: vec![0x41]
            },
            RawIe {
                codeset: 6,
                id: 0x02,
                body: vec![0x42]
            }
        ]
    );
    assert!(message.ie(0x01).is_none(), "not codeset 0");
    let written = message.to_bytes();
    let again = Message::parse(&written).unwrap();
    assert_eq!(again.ies, message.ies);

    let truncated = [0x08, 0x02, 0x00, 0x01, 0x01, 0x08, 0x05, 0x80];
    let message = Message::parse(&truncated).unwrap();
    assert!(message.truncated);
    assert!(message.ies.is_empty());
}

#[test]
fn what_cannot_be_a_pri_message_is_an_error() {
    assert_eq!(Message::parse(&[]), Err(MessageError::TooShort(0)));
    assert_eq!(
        Message::parse(&[0x41, 0x02, 0, 1, 5]),
        Err(MessageError::Discriminator(0x41))
    );
    assert_eq!(
        Message::parse(&[0x08, 0x01, 0x01, 0x05]),
        Err(MessageError::CallRefLength(1))
    );
    assert_eq!(
        Message::parse(&[0x08, 0x02, 0x00, 0x01]),
        Err(MessageError::TooShort(4))
    );
    assert_eq!(
        Message::parse(&[0x08, 0x02, 0x00, 0x01, 0x85]),
        Err(MessageError::MessageType(0x85))
    );
    for kind in MessageType::KNOWN {
        assert_eq!(MessageType::from_code(kind.code()), kind);
    }
}
