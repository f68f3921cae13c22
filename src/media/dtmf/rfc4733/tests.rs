use super::*;

fn event(event: u8, end: bool, duration: u16) -> TelephoneEvent {
    TelephoneEvent {
        event,
        end,
        volume: 10,
        duration,
    }
}

#[test]
fn parses_and_writes_the_wire_format() {
    // Digit 5, E bit, R bit set by a sloppy sender, volume 10, duration 800.
    let wire = [0x05, 0x80 | 0x40 | 0x0a, 0x03, 0x20];
    let parsed = TelephoneEvent::parse(&wire).unwrap();
    assert_eq!(parsed, event(5, true, 800));
    assert_eq!(parsed.digit(), Some('5'));

    let mut written = Vec::new();
    parsed.write(&mut written);
    assert_eq!(
        written,
        [0x05, 0x8a, 0x03, 0x20],
        "R bit must be sent as zero"
    );

    let start = TelephoneEvent::parse(&[11, 0x3f, 0, 0]).unwrap();
    assert_eq!(
        start,
        TelephoneEvent {
            event: 11,
            end: false,
            volume: 63,
            duration: 0
        }
    );
    assert_eq!(start.digit(), Some('#'));
}

#[test]
fn refuses_payloads_that_are_not_four_bytes() {
    for len in [0usize, 1, 3, 5, 8] {
        let payload = vec![1u8; len];
        let error = TelephoneEvent::parse(&payload).unwrap_err();
        assert_eq!(error, DtmfError::PayloadLength { len });
        assert!(
            error.to_string().contains(&format!("{len} bytes")),
            "{error}"
        );
    }
}

#[test]
fn maps_events_and_digits_both_ways() {
    let digits = "0123456789*#ABCD";
    for (code, digit) in digits.chars().enumerate() {
        assert_eq!(event_to_digit(code as u8), Some(digit));
        assert_eq!(digit_to_event(digit), Some(code as u8));
    }
    assert_eq!(digit_to_event('b'), Some(13));
    assert_eq!(event_to_digit(16), None, "flash is not a digit");
    assert_eq!(digit_to_event('E'), None);
}

/// The packets of one 100 ms press as a carrier sends them: start, updates, three ends.
fn press(code: u8) -> Vec<(bool, TelephoneEvent)> {
    let mut packets = vec![(true, event(code, false, 160))];
    packets.extend([320, 480, 640].map(|d| (false, event(code, false, d))));
    packets.extend([800; 3].map(|d| (false, event(code, true, d))));
    packets
}

fn feed(
    receiver: &mut Rfc4733Receiver,
    timestamp: u32,
    packets: &[(bool, TelephoneEvent)],
) -> Vec<char> {
    packets
        .iter()
        .filter_map(|(marker, event)| receiver.on_packet(timestamp, *marker, event))
        .collect()
}

#[test]
fn reports_a_press_once_at_its_first_packet() {
    let mut receiver = Rfc4733Receiver::new();
    let packets = press(7);
    assert_eq!(receiver.on_packet(1000, true, &packets[0].1), Some('7'));
    assert_eq!(feed(&mut receiver, 1000, &packets[1..]), Vec::<char>::new());
}

#[test]
fn reports_at_the_first_end_packet_when_the_rest_was_lost() {
    let mut receiver = Rfc4733Receiver::new();
    let ends: Vec<_> = press(3).into_iter().filter(|(_, e)| e.end).collect();
    assert_eq!(feed(&mut receiver, 5000, &ends), vec!['3']);
}

#[test]
fn same_key_pressed_twice_is_two_digits() {
    let mut receiver = Rfc4733Receiver::new();
    let mut digits = feed(&mut receiver, 1000, &press(1));
    digits.extend(feed(&mut receiver, 2600, &press(1)));
    assert_eq!(digits, vec!['1', '1']);
}

#[test]
fn second_press_is_reported_even_if_its_start_packets_were_lost() {
    let mut receiver = Rfc4733Receiver::new();
    let mut digits = feed(&mut receiver, 1000, &press(1));
    digits.extend(feed(&mut receiver, 2600, &press(1)[2..]));
    assert_eq!(digits, vec!['1', '1']);
}

#[test]
fn late_packets_of_an_earlier_press_are_ignored() {
    let mut receiver = Rfc4733Receiver::new();
    let first = press(4);
    let second = press(6);
    let mut digits = feed(&mut receiver, 1000, &first[..4]);
    digits.extend(feed(&mut receiver, 2000, &second[..2]));
    // The first press's end packets, reordered behind the second press's start.
    digits.extend(feed(&mut receiver, 1000, &first[4..]));
    digits.extend(feed(&mut receiver, 2000, &second[2..]));
    assert_eq!(digits, vec!['4', '6']);
}

#[test]
fn timestamps_wrapping_through_zero() {
    let mut receiver = Rfc4733Receiver::new();
    let mut digits = feed(&mut receiver, u32::MAX - 100, &press(9));
    digits.extend(feed(&mut receiver, 700, &press(9)));
    // A straggler from before the wrap is still recognised as late.
    digits.extend(feed(&mut receiver, u32::MAX - 100, &press(9)[6..]));
    digits.extend(feed(&mut receiver, 2400, &press(0)));
    assert_eq!(digits, vec!['9', '9', '0']);
}

#[test]
fn a_new_press_with_an_older_timestamp_is_still_a_new_press() {
    // SIPp replays captured presses verbatim: '#' then '9' whose timestamp is lower.
    let mut receiver = Rfc4733Receiver::new();
    let mut digits = feed(&mut receiver, 50_000, &press(11));
    digits.extend(feed(&mut receiver, 40_000, &press(9)));
    digits.extend(feed(&mut receiver, 50_000, &press(11)[7..]));
    assert_eq!(
        digits,
        vec!['#', '9'],
        "the late end packets of '#' add nothing"
    );
}

#[test]
fn a_press_longer_than_the_duration_field_stays_one_press() {
    let mut receiver = Rfc4733Receiver::new();
    let mut digits = Vec::new();
    digits.extend(receiver.on_packet(100, true, &event(2, false, 160)));
    digits.extend(receiver.on_packet(100, false, &event(2, false, u16::MAX)));
    // Next segment: timestamp advanced by the full segment, no marker, not ended before.
    let next = 100 + u32::from(u16::MAX);
    digits.extend(receiver.on_packet(next, false, &event(2, false, 160)));
    digits.extend(receiver.on_packet(next, false, &event(2, true, 4000)));
    assert_eq!(digits, vec!['2']);
}

#[test]
fn non_digit_events_are_not_reported() {
    let mut receiver = Rfc4733Receiver::new();
    assert_eq!(receiver.on_packet(10, true, &event(16, false, 160)), None);
    assert_eq!(
        receiver.on_packet(900, true, &event(8, false, 160)),
        Some('8')
    );
}

#[test]
fn a_new_ssrc_after_reset_starts_fresh() {
    let mut receiver = Rfc4733Receiver::new();
    assert_eq!(feed(&mut receiver, 50_000, &press(5)), vec!['5']);
    receiver.reset();
    // The new stream happens to start just behind the old one.
    assert_eq!(feed(&mut receiver, 49_000, &press(5)), vec!['5']);
}

#[test]
fn sender_produces_start_updates_and_three_ends() {
    let sender = Rfc4733Sender::new(8000);
    let packets = sender
        .packets(
            '5',
            Duration::from_millis(100),
            1234,
            Duration::from_millis(20),
        )
        .unwrap();
    let summary: Vec<(bool, bool, u16, u32)> = packets
        .iter()
        .map(|p| (p.marker, p.event.end, p.event.duration, p.send_index))
        .collect();
    assert_eq!(
        summary,
        vec![
            (true, false, 160, 0),
            (false, false, 320, 1),
            (false, false, 480, 2),
            (false, false, 640, 3),
            (false, true, 800, 4),
            (false, true, 800, 5),
            (false, true, 800, 6),
        ]
    );
    assert!(packets
        .iter()
        .all(|p| p.rtp_timestamp == 1234 && p.event.event == 5));
    assert!(packets.iter().all(|p| p.event.volume == 10));
}

#[test]
fn sender_rounds_a_duration_that_is_not_a_multiple_of_ptime() {
    let sender = Rfc4733Sender::new(8000).with_volume(6).unwrap();
    let packets = sender
        .packets('#', Duration::from_millis(50), 0, Duration::from_millis(20))
        .unwrap();
    let durations: Vec<u16> = packets.iter().map(|p| p.event.duration).collect();
    assert_eq!(durations, vec![160, 320, 400, 400, 400]);
    assert_eq!(packets.iter().filter(|p| p.event.end).count(), 3);
    assert_eq!(packets[0].event.volume, 6);
}

#[test]
fn what_the_sender_sends_the_receiver_reports_once() {
    let sender = Rfc4733Sender::new(8000);
    let mut receiver = Rfc4733Receiver::new();
    let mut digits = Vec::new();
    let mut timestamp = u32::MAX - 500;
    for digit in "1123#".chars() {
        for packet in sender
            .packets(
                digit,
                Duration::from_millis(80),
                timestamp,
                Duration::from_millis(20),
            )
            .unwrap()
        {
            let mut wire = Vec::new();
            packet.event.write(&mut wire);
            let parsed = TelephoneEvent::parse(&wire).unwrap();
            digits.extend(receiver.on_packet(packet.rtp_timestamp, packet.marker, &parsed));
        }
        // 80 ms press plus a 60 ms gap of audio.
        timestamp = timestamp.wrapping_add(640 + 480);
    }
    assert_eq!(digits.into_iter().collect::<String>(), "1123#");
}

#[test]
fn sender_refuses_what_it_cannot_encode() {
    let sender = Rfc4733Sender::new(8000);
    let ptime = Duration::from_millis(20);
    assert_eq!(
        sender.packets('x', Duration::from_millis(100), 0, ptime),
        Err(DtmfError::UnknownDigit { digit: 'x' })
    );
    assert_eq!(
        sender.packets('1', Duration::from_secs(9), 0, ptime),
        Err(DtmfError::DurationTooLong {
            duration_units: 72_000
        })
    );
    assert!(sender.packets('1', Duration::ZERO, 0, ptime).is_err());
    assert!(sender
        .packets('1', Duration::from_millis(100), 0, Duration::ZERO)
        .is_err());
    assert_eq!(
        Rfc4733Sender::new(8000).with_volume(64).unwrap_err(),
        DtmfError::VolumeOutOfRange { volume: 64 }
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parsing_arbitrary_bytes_never_panics(payload in proptest::collection::vec(any::<u8>(), 0..16)) {
            let parsed = TelephoneEvent::parse(&payload);
            prop_assert_eq!(parsed.is_ok(), payload.len() == 4);
        }

        #[test]
        fn write_then_parse_is_identity(event in any::<u8>(), end in any::<bool>(), volume in 0u8..64, duration in any::<u16>()) {
            let original = TelephoneEvent { event, end, volume, duration };
            let mut wire = Vec::new();
            original.write(&mut wire);
            prop_assert_eq!(TelephoneEvent::parse(&wire), Ok(original));
        }

        /// Whatever packets of a press are lost or duplicated, each press is reported exactly
        /// once and in order, as long as the last copy of each end packet arrives (with it lost
        /// too, the next press of the same key could look like the same press continuing).
        #[test]
        fn every_press_is_reported_once_despite_loss_and_duplicates(
            presses in proptest::collection::vec((0u8..16, 1u32..8, 1u32..2000), 1..12),
            losses in proptest::collection::vec(any::<bool>(), 200),
            duplicates in proptest::collection::vec(any::<bool>(), 200),
            first_timestamp in any::<u32>(),
        ) {
            let sender = Rfc4733Sender::new(8000);
            let mut receiver = Rfc4733Receiver::new();
            let mut timestamp = first_timestamp;
            let mut coin = 0usize;
            let mut reported = Vec::new();
            for &(code, intervals, gap_units) in &presses {
                let digit = event_to_digit(code).unwrap();
                let duration = Duration::from_millis(20 * u64::from(intervals));
                let packets = sender
                    .packets(digit, duration, timestamp, Duration::from_millis(20))
                    .unwrap();
                let last = packets.len() - 1;
                for (index, packet) in packets.iter().enumerate() {
                    coin = (coin + 1) % losses.len();
                    if index != last && losses[coin] {
                        continue;
                    }
                    let copies = if duplicates[coin] { 2 } else { 1 };
                    for _ in 0..copies {
                        reported.extend(receiver.on_packet(packet.rtp_timestamp, packet.marker, &packet.event));
                    }
                }
                timestamp = timestamp.wrapping_add(160 * intervals + gap_units);
            }
            let expected: Vec<char> = presses.iter().map(|&(code, _, _)| event_to_digit(code).unwrap()).collect();
            prop_assert_eq!(reported, expected);
        }
    }
}
