use super::*;

const LAWS: [G711Law; 2] = [G711Law::Ulaw, G711Law::Alaw];

fn all_samples() -> impl Iterator<Item = i16> {
    i16::MIN..=i16::MAX
}

#[test]
fn tables_agree_with_the_arithmetic_definition_for_every_sample() {
    for law in LAWS {
        for sample in all_samples() {
            assert_eq!(
                law.encode_sample(sample),
                encode_arith(law, sample),
                "{law:?} sample {sample}"
            );
        }
    }
}

#[test]
fn silence_encodes_to_the_well_known_idle_codes() {
    assert_eq!(G711Law::Ulaw.encode_sample(0), 0xFF);
    assert_eq!(G711Law::Alaw.encode_sample(0), 0xD5);
    for law in LAWS {
        assert_eq!(law.encode_sample(0), law.silence_byte());
    }
    assert_eq!(G711Law::Ulaw.decode_sample(0xFF), 0);
    assert_eq!(G711Law::Ulaw.decode_sample(0x7F), 0);
    assert_eq!(G711Law::Alaw.decode_sample(0xD5), 8);
    assert_eq!(G711Law::Alaw.decode_sample(0x55), -8);
}

#[test]
fn reference_values_match_published_tables() {
    // Extremes of each law (G.711 tables 1a/2a, scaled to 16 bits).
    assert_eq!(G711Law::Ulaw.decode_sample(0x80), 32124);
    assert_eq!(G711Law::Ulaw.decode_sample(0x00), -32124);
    assert_eq!(G711Law::Alaw.decode_sample(0xAA), 32256);
    assert_eq!(G711Law::Alaw.decode_sample(0x2A), -32256);
    assert_eq!(G711Law::Ulaw.encode_sample(i16::MAX), 0x80);
    assert_eq!(G711Law::Ulaw.encode_sample(i16::MIN), 0x00);
    assert_eq!(G711Law::Alaw.encode_sample(i16::MAX), 0xAA);
    assert_eq!(G711Law::Alaw.encode_sample(i16::MIN), 0x2A);
    // Spot values cross-checked against Python's audioop.lin2ulaw / lin2alaw.
    let cases: [(i16, u8, u8); 8] = [
        (1000, 0xCE, 0xFA),
        (-1000, 0x4E, 0x7A),
        (100, 0xF2, 0xD3),
        (-102, 0x72, 0x53),
        (8000, 0xA0, 0x8A),
        (-8000, 0x20, 0x0A),
        (20000, 0x8C, 0xA6),
        (-20000, 0x0C, 0x26),
    ];
    for (sample, ulaw, alaw) in cases {
        assert_eq!(G711Law::Ulaw.encode_sample(sample), ulaw, "ulaw {sample}");
        assert_eq!(G711Law::Alaw.encode_sample(sample), alaw, "alaw {sample}");
    }
}

#[test]
fn ulaw_round_trip_error_stays_within_half_a_quantisation_step() {
    for sample in all_samples() {
        let decoded = G711Law::Ulaw.decode_sample(G711Law::Ulaw.encode_sample(sample));
        let error = (i32::from(sample) - i32::from(decoded)).abs();
        let magnitude = i32::from(sample).abs();
        // Step in segment s is 8 << s and the segment starts at (128 << s) - 132, so half a
        // step is at most (|x| + 132) / 32; the clipped top end stays inside it too.
        assert!(
            error * 32 <= magnitude + 132,
            "sample {sample} decoded {decoded} error {error}"
        );
    }
}

#[test]
fn alaw_round_trip_error_stays_within_half_a_quantisation_step() {
    for sample in all_samples() {
        let decoded = G711Law::Alaw.decode_sample(G711Law::Alaw.encode_sample(sample));
        let error = (i32::from(sample) - i32::from(decoded)).abs();
        let magnitude = i32::from(sample).abs();
        // Half a step is 8 in the two linear segments and |x| / 32 at most above them.
        assert!(
            error <= 8 || error * 32 <= magnitude,
            "sample {sample} decoded {decoded} error {error}"
        );
    }
}

#[test]
fn round_trip_is_monotonic_over_the_whole_range() {
    for law in LAWS {
        let mut previous = i16::MIN;
        for sample in all_samples() {
            let decoded = law.decode_sample(law.encode_sample(sample));
            assert!(
                decoded >= previous,
                "{law:?}: {sample} decodes to {decoded} below {previous}"
            );
            previous = decoded;
        }
    }
}

#[test]
fn every_code_survives_decode_then_encode() {
    for law in LAWS {
        for code in 0..=255u8 {
            let sample = law.decode_sample(code);
            let again = law.encode_sample(sample);
            // µ-law has two zeros (0x7F and 0xFF); both decode to 0, which encodes to 0xFF.
            if law == G711Law::Ulaw && code == 0x7F {
                assert_eq!(again, 0xFF);
            } else {
                assert_eq!(again, code, "{law:?} code {code:#04x}");
            }
        }
    }
}

#[test]
fn slice_apis_append_and_match_per_sample_calls() {
    let pcm: Vec<i16> = (0..160)
        .map(|i| ((i * 409) % 65536 - 32768) as i16)
        .collect();
    for law in LAWS {
        let mut bytes = vec![0xAB];
        law.encode(&pcm, &mut bytes);
        assert_eq!(bytes.len(), 161);
        assert_eq!(bytes[0], 0xAB, "encode must append, not overwrite");
        for (sample, code) in pcm.iter().zip(&bytes[1..]) {
            assert_eq!(*code, law.encode_sample(*sample));
        }
        let mut decoded = vec![7];
        law.decode(&bytes[1..], &mut decoded);
        assert_eq!(decoded.len(), 161);
        assert_eq!(decoded[0], 7, "decode must append, not overwrite");
        for (code, sample) in bytes[1..].iter().zip(&decoded[1..]) {
            assert_eq!(*sample, law.decode_sample(*code));
        }
    }
}

#[test]
fn payload_types_follow_rfc_3551() {
    assert_eq!(G711Law::Ulaw.payload_type(), 0);
    assert_eq!(G711Law::Alaw.payload_type(), 8);
    for law in LAWS {
        assert_eq!(G711Law::from_payload_type(law.payload_type()), Some(law));
    }
    assert_eq!(G711Law::from_payload_type(9), None);
}
