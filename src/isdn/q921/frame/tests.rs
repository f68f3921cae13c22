//! LAPD frames against the octets Q.921 defines, both ways, and any bytes a peer may send.
use proptest::prelude::*;

use super::*;

fn frame(cr: bool, kind: Kind) -> Frame {
    Frame {
        sapi: SAPI_CALL_CONTROL,
        cr,
        tei: TEI_PRI,
        kind,
    }
}

#[test]
fn the_frames_of_a_link_setup_and_a_setup_message_are_the_octets_q921_gives() {
    // The user side (CPE) establishes the link: SABME, P=1, a command from the user: C/R 0.
    let sabme = frame(
        Frame::cr_bit(false, true),
        Kind::Unnumbered {
            kind: Unnumbered::Sabme,
            poll_final: true,
            info: Vec::new(),
        },
    );
    assert_eq!(sabme.to_bytes().unwrap(), [0x00, 0x01, 0x7f]);
    // The network answers UA, F=1: a response from the network: C/R 0 too.
    let ua = frame(
        Frame::cr_bit(true, false),
        Kind::Unnumbered {
            kind: Unnumbered::Ua,
            poll_final: true,
            info: Vec::new(),
        },
    );
    assert_eq!(ua.to_bytes().unwrap(), [0x00, 0x01, 0x73]);
    // The network's own SABME carries C/R 1.
    let from_network = Frame::parse(&[0x02, 0x01, 0x7f]).unwrap();
    assert!(from_network.cr && from_network.is_command(false));
    // An I frame with a Q.931 message, N(S)=5, N(R)=3, and the RR acknowledging it.
    let setup = [0x08, 0x02, 0x00, 0x01, 0x05];
    let i = frame(
        false,
        Kind::Info {
            ns: 5,
            nr: 3,
            poll: false,
            info: setup.to_vec(),
        },
    );
    let bytes = i.to_bytes().unwrap();
    assert_eq!(
        bytes,
        [0x00, 0x01, 0x0a, 0x06, 0x08, 0x02, 0x00, 0x01, 0x05]
    );
    assert_eq!(Frame::parse(&bytes).unwrap(), i);
    let rr = Frame::parse(&[0x00, 0x01, 0x01, 0x0d]).unwrap();
    assert_eq!(
        rr.kind,
        Kind::Supervisory {
            kind: Supervisory::Rr,
            nr: 6,
            poll_final: true
        }
    );
}

#[test]
fn command_and_response_are_read_from_either_side() {
    for network_sends in [false, true] {
        for command in [false, true] {
            let cr = Frame::cr_bit(network_sends, command);
            let f = frame(
                cr,
                Kind::Supervisory {
                    kind: Supervisory::Rr,
                    nr: 0,
                    poll_final: false,
                },
            );
            // Whoever receives it is the other side.
            assert_eq!(f.is_command(!network_sends), command);
        }
    }
}

#[test]
fn malformed_frames_are_errors_that_say_what_is_wrong() {
    assert_eq!(Frame::parse(&[0x00, 0x01]), Err(FrameError::TooShort(2)));
    assert_eq!(
        Frame::parse(&[0x01, 0x01, 0x7f]),
        Err(FrameError::Address(0x01, 0x01))
    );
    assert_eq!(
        Frame::parse(&[0x00, 0x01, 0x0d, 0x00]),
        Err(FrameError::UnknownControl(0x0d))
    );
    assert_eq!(
        Frame::parse(&[0x00, 0x01, 0x00]),
        Err(FrameError::TooShort(3)),
        "an I frame needs its second control octet"
    );
    assert!(matches!(
        Frame::parse(&[0x00, 0x01, 0x7f, 0x42]),
        Err(FrameError::UnexpectedInfo(..))
    ));
    let mut long = vec![0x00, 0x01, 0x00, 0x00];
    long.extend(std::iter::repeat_n(0u8, MAX_INFO + 1));
    assert_eq!(
        Frame::parse(&long),
        Err(FrameError::InfoTooLong(MAX_INFO + 1))
    );
    let bad = frame(
        false,
        Kind::Info {
            ns: 128,
            nr: 0,
            poll: false,
            info: Vec::new(),
        },
    );
    assert_eq!(bad.to_bytes(), Err(FrameError::Sequence(128)));
}

fn kinds() -> impl Strategy<Value = Kind> {
    let info = || proptest::collection::vec(any::<u8>(), 0..=MAX_INFO);
    prop_oneof![
        (0u8..128, 0u8..128, any::<bool>(), info()).prop_map(|(ns, nr, poll, info)| Kind::Info {
            ns,
            nr,
            poll,
            info
        }),
        (
            proptest::sample::select(vec![Supervisory::Rr, Supervisory::Rnr, Supervisory::Rej]),
            0u8..128,
            any::<bool>()
        )
            .prop_map(|(kind, nr, poll_final)| Kind::Supervisory {
                kind,
                nr,
                poll_final
            }),
        (
            proptest::sample::select(Unnumbered::ALL.to_vec()),
            any::<bool>(),
            info()
        )
            .prop_map(|(kind, poll_final, info)| Kind::Unnumbered {
                kind,
                poll_final,
                info: if kind.carries_info() {
                    info
                } else {
                    Vec::new()
                },
            }),
    ]
}

proptest! {
    #[test]
    fn every_frame_round_trips(sapi in 0u8..64, cr in any::<bool>(), tei in 0u8..128, kind in kinds()) {
        let f = Frame { sapi, cr, tei, kind };
        let bytes = f.to_bytes().unwrap();
        prop_assert_eq!(Frame::parse(&bytes).unwrap(), f);
    }

    #[test]
    fn any_bytes_parse_or_fail_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(f) = Frame::parse(&bytes) {
            // What parses encodes back to the same octets.
            prop_assert_eq!(f.to_bytes().unwrap(), bytes);
        }
    }
}

#[test]
fn the_fuzz_seeds_are_frames() {
    for seed in [
        &include_bytes!("../../../../fuzz/seeds/q921_frame/sabme")[..],
        &include_bytes!("../../../../fuzz/seeds/q921_frame/info-setup")[..],
        &include_bytes!("../../../../fuzz/seeds/q921_frame/rr")[..],
    ] {
        let frame = Frame::parse(seed).unwrap();
        assert_eq!(frame.to_bytes().unwrap(), seed);
    }
}
