use std::cell::RefCell;
use std::rc::Rc;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// `plain` encrypted to `recipient`, written in pieces of `piece` bytes.
fn seal(plain: &[u8], recipient: &Recipient, piece: usize, seed: u64) -> Vec<u8> {
    let mut writer = AgeWriter::new(Vec::new(), recipient, &mut rng(seed)).unwrap();
    for part in plain.chunks(piece.max(1)) {
        writer.write_all(part).unwrap();
    }
    assert_eq!(writer.plaintext_len(), plain.len() as u64);
    writer.finish().unwrap()
}

fn open(file: &[u8], identity: &Identity) -> (Result<u64, AgeError>, Vec<u8>) {
    let mut out = Vec::new();
    let result = decrypt(file, identity, &mut out);
    (result, out)
}

/// The header's length: through the MAC line's LF.
fn header_len(file: &[u8]) -> usize {
    let mac = file.windows(4).position(|w| w == b"\n---").unwrap() + 1;
    mac + file[mac..].iter().position(|&b| b == b'\n').unwrap() + 1
}

/// A writer whose bytes the test can look at while an `AgeWriter` owns it.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn round_trips_at_chunk_boundaries() {
    let identity = Identity::generate(&mut rng(1));
    let recipient = identity.recipient();
    for len in [0, 1, 65_535, 65_536, 65_537, 3 * 65_536, 200_000] {
        let plain = plaintext(len);
        for piece in [len.max(1), 1000, 65_536] {
            let file = seal(&plain, &recipient, piece, len as u64);
            // The last chunk is the only short one, and empty only for an empty plaintext: an
            // exact multiple of 64 KiB ends with a full chunk flagged last.
            let chunks = len.div_ceil(CHUNK_SIZE).max(1);
            assert_eq!(
                file.len(),
                header_len(&file) + PAYLOAD_NONCE_SIZE + len + chunks * TAG_SIZE,
                "{len} bytes written {piece} at a time"
            );
            let (result, out) = open(&file, &identity);
            assert_eq!(result.unwrap(), len as u64, "{len} bytes");
            assert!(out == plain, "{len} bytes: plaintext differs");
        }
    }
}

#[test]
fn the_header_has_one_x25519_stanza_and_a_mac() {
    let identity = Identity::generate(&mut rng(2));
    let file = seal(b"hello", &identity.recipient(), 5, 2);
    let header = std::str::from_utf8(&file[..header_len(&file)]).unwrap();
    let lines: Vec<&str> = header.lines().collect();
    assert_eq!(lines.len(), 4, "{header}");
    assert_eq!(lines[0], "age-encryption.org/v1");
    let args: Vec<&str> = lines[1].split(' ').collect();
    assert_eq!(args[..2], ["->", "X25519"]);
    assert_eq!(args[2].len(), 43, "a 32-byte share");
    assert_eq!(lines[2].len(), 43, "a 32-byte body on one short line");
    assert!(lines[3].starts_with("--- ") && lines[3].len() == 47);
    // Two files never share a file key's wrapping, nor a payload nonce.
    let again = seal(b"hello", &identity.recipient(), 5, 3);
    assert_ne!(file[..header_len(&file)], again[..header_len(&again)]);
}

#[test]
fn full_chunks_are_written_as_soon_as_more_data_follows() {
    let identity = Identity::generate(&mut rng(4));
    let sink = Shared::default();
    let mut writer = AgeWriter::new(sink.clone(), &identity.recipient(), &mut rng(5)).unwrap();
    let start = sink.0.borrow().len();
    let plain = plaintext(2 * CHUNK_SIZE + 10);
    writer.write_all(&plain[..CHUNK_SIZE]).unwrap();
    assert_eq!(
        sink.0.borrow().len(),
        start,
        "a full chunk waits: it may be the last"
    );
    writer
        .write_all(&plain[CHUNK_SIZE..CHUNK_SIZE + 1])
        .unwrap();
    assert_eq!(sink.0.borrow().len(), start + SEALED_CHUNK_SIZE);
    writer.write_all(&plain[CHUNK_SIZE + 1..]).unwrap();
    assert_eq!(sink.0.borrow().len(), start + 2 * SEALED_CHUNK_SIZE);

    // A crash now (the writer dropped, never finished) leaves two whole chunks.
    drop(writer);
    let file = sink.0.borrow().clone();
    let (result, out) = open(&file, &identity);
    match result {
        Err(AgeError::Truncated { restored }) => assert_eq!(restored, 2 * CHUNK_SIZE as u64),
        other => panic!("expected Truncated, got {other:?}"),
    }
    assert!(out == plain[..2 * CHUNK_SIZE]);
}

#[test]
fn a_truncated_file_restores_its_whole_chunks() {
    let identity = Identity::generate(&mut rng(6));
    let plain = plaintext(200_000);
    let file = seal(&plain, &identity.recipient(), 4096, 6);
    let payload = header_len(&file) + PAYLOAD_NONCE_SIZE;
    for (cut, restored) in [
        (payload, 0),
        (payload + 1, 0),
        (payload + SEALED_CHUNK_SIZE - 1, 0),
        (payload + SEALED_CHUNK_SIZE, CHUNK_SIZE),
        (payload + SEALED_CHUNK_SIZE + 17, CHUNK_SIZE),
        (payload + 3 * SEALED_CHUNK_SIZE, 3 * CHUNK_SIZE),
        (payload + 3 * SEALED_CHUNK_SIZE + 100, 3 * CHUNK_SIZE),
        (file.len() - 1, 3 * CHUNK_SIZE),
    ] {
        let (result, out) = open(&file[..cut], &identity);
        match result {
            Err(AgeError::Truncated { restored: r }) => {
                assert_eq!(r, restored as u64, "cut at {cut}")
            }
            other => panic!("cut at {cut}: expected Truncated, got {other:?}"),
        }
        assert!(out == plain[..restored], "cut at {cut}: what was restored");
    }
    // Cut in the payload nonce, or in the header.
    let (result, _) = open(&file[..payload - 3], &identity);
    assert!(
        matches!(result, Err(AgeError::Truncated { restored: 0 })),
        "{result:?}"
    );
    let (result, _) = open(&file[..40], &identity);
    assert!(
        matches!(result, Err(AgeError::MalformedHeader { .. })),
        "{result:?}"
    );
    let message = result.unwrap_err().to_string();
    assert!(message.contains("ends inside the header"), "{message}");
}

#[test]
fn the_wrong_identity_is_refused() {
    let identity = Identity::generate(&mut rng(7));
    let other = Identity::generate(&mut rng(8));
    let file = seal(b"a call", &identity.recipient(), 100, 7);
    let (result, out) = open(&file, &other);
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            AgeError::NoMatchingIdentity {
                x25519: 1,
                other: 0,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&other.recipient().to_string()),
        "{err}"
    );
    assert!(out.is_empty());
}

#[test]
fn an_altered_header_fails_its_mac() {
    let identity = Identity::generate(&mut rng(9));
    let file = seal(b"a call", &identity.recipient(), 100, 9);
    let mac = file.windows(4).position(|w| w == b"--- ").unwrap() + 4;

    // One character of the MAC, still canonical base64 (not the last, whose low bits are
    // padding).
    let mut flipped = file.clone();
    flipped[mac] = if flipped[mac] == b'A' { b'B' } else { b'A' };
    let (result, out) = open(&flipped, &identity);
    assert!(
        matches!(result, Err(AgeError::HeaderMac { .. })),
        "{result:?}"
    );
    assert!(out.is_empty());

    // A stanza slipped into the header: the key still opens, the MAC no longer matches.
    let mut extended = file[..mac - 4].to_vec();
    extended.extend_from_slice(b"-> example.com/other x\nAAAA\n");
    extended.extend_from_slice(&file[mac - 4..]);
    let (result, _) = open(&extended, &identity);
    assert!(
        matches!(result, Err(AgeError::HeaderMac { .. })),
        "{result:?}"
    );

    // One bit of the header's ephemeral share: the stanza no longer opens at all.
    let mut share = file.clone();
    share[b"age-encryption.org/v1\n-> X25519 ".len()] ^= 0x01;
    let (result, _) = open(&share, &identity);
    assert!(result.is_err());
}

#[test]
fn an_altered_chunk_fails_with_its_index() {
    let identity = Identity::generate(&mut rng(10));
    let plain = plaintext(200_000);
    let file = seal(&plain, &identity.recipient(), 65_536, 10);
    let payload = header_len(&file) + PAYLOAD_NONCE_SIZE;

    let mut flipped = file.clone();
    flipped[payload + SEALED_CHUNK_SIZE + 500] ^= 0x80;
    let (result, out) = open(&flipped, &identity);
    assert!(
        matches!(result, Err(AgeError::ChunkAuth { index: 1 })),
        "{result:?}"
    );
    assert!(
        out == plain[..CHUNK_SIZE],
        "chunk 0 was released, nothing after it"
    );

    // The tag of the first chunk.
    let mut tag = file.clone();
    tag[payload + SEALED_CHUNK_SIZE - 1] ^= 0x01;
    let (result, out) = open(&tag, &identity);
    assert!(
        matches!(result, Err(AgeError::ChunkAuth { index: 0 })),
        "{result:?}"
    );
    assert!(out.is_empty());

    // A full final chunk (an exact multiple of 64 KiB).
    let exact = seal(&plain[..CHUNK_SIZE], &identity.recipient(), 999, 11);
    let mut flipped = exact.clone();
    let at = header_len(&exact) + PAYLOAD_NONCE_SIZE + 10;
    flipped[at] ^= 0x01;
    let (result, _) = open(&flipped, &identity);
    assert!(
        matches!(result, Err(AgeError::ChunkAuth { index: 0 })),
        "{result:?}"
    );

    // A short final chunk that fails cannot be told from one only partly written: the file is
    // reported cut short after the chunks that authenticated.
    let mut last = file.clone();
    let end = last.len() - 20;
    last[end] ^= 0x01;
    let (result, out) = open(&last, &identity);
    assert!(
        matches!(result, Err(AgeError::Truncated { restored }) if restored == 3 * CHUNK_SIZE as u64),
        "{result:?}"
    );
    assert!(out == plain[..3 * CHUNK_SIZE]);
}

#[test]
fn data_after_a_full_final_chunk_is_refused() {
    let identity = Identity::generate(&mut rng(12));
    let plain = plaintext(CHUNK_SIZE);
    let mut file = seal(&plain, &identity.recipient(), 4096, 12);
    file.extend_from_slice(b"more");
    let (result, out) = open(&file, &identity);
    assert!(
        matches!(result, Err(AgeError::TrailingData { index: 0 })),
        "{result:?}"
    );
    assert!(out.is_empty());
}

/// An age file for `identity` with `file_key`, its payload nonce and the given sealed chunks
/// (plaintext, last flag), built from the spec's primitives directly.
fn build(identity: &Identity, file_key: [u8; 16], chunks: &[(&[u8], bool)]) -> Vec<u8> {
    let recipient = identity.recipient();
    let ephemeral = StaticSecret::from([7u8; 32]);
    let share = PublicKey::from(&ephemeral);
    let shared = ephemeral.diffie_hellman(&recipient.0);
    let wrap = wrap_key(shared.as_bytes(), share.as_bytes(), recipient.bytes());
    let mut body = file_key.to_vec();
    let tag = aead(&wrap)
        .encrypt_in_place_detached(&Nonce::default(), &[], &mut body)
        .unwrap();
    body.extend_from_slice(&tag);
    let mut file = format!(
        "age-encryption.org/v1\n-> X25519 {}\n{}---",
        STANDARD_NO_PAD.encode(share.as_bytes()),
        wrap_body(&body)
    )
    .into_bytes();
    let mac = header_mac(&file_key, &file).finalize().into_bytes();
    file.extend_from_slice(format!(" {}\n", STANDARD_NO_PAD.encode(mac)).as_bytes());
    let nonce = [9u8; 16];
    file.extend_from_slice(&nonce);
    let payload = aead(&hkdf(&nonce, &file_key, b"payload"));
    for (index, (plain, last)) in chunks.iter().enumerate() {
        let mut sealed = plain.to_vec();
        let tag = payload
            .encrypt_in_place_detached(&chunk_nonce(index as u64, *last), &[], &mut sealed)
            .unwrap();
        file.extend_from_slice(&sealed);
        file.extend_from_slice(&tag);
    }
    file
}

#[test]
fn the_stream_rules_of_the_spec_hold() {
    let identity = Identity::generate(&mut rng(13));
    let key = *b"YELLOW SUBMARINE";
    let full = plaintext(CHUNK_SIZE);

    let file = build(&identity, key, &[(&full, false), (b"end", true)]);
    let (result, out) = open(&file, &identity);
    assert_eq!(result.unwrap(), CHUNK_SIZE as u64 + 3);
    assert_eq!(&out[CHUNK_SIZE..], b"end");

    // The final chunk may be empty only when the whole payload is.
    let file = build(&identity, key, &[(b"", true)]);
    assert_eq!(open(&file, &identity).0.unwrap(), 0);
    let file = build(&identity, key, &[(&full, false), (b"", true)]);
    let (result, _) = open(&file, &identity);
    assert!(
        matches!(result, Err(AgeError::EmptyFinalChunk { index: 1 })),
        "{result:?}"
    );

    // No chunk at all, or none flagged last.
    let file = build(&identity, key, &[]);
    let (result, _) = open(&file, &identity);
    assert!(
        matches!(result, Err(AgeError::Truncated { restored: 0 })),
        "{result:?}"
    );
    let file = build(&identity, key, &[(&full, false), (&full, false)]);
    let (result, out) = open(&file, &identity);
    assert!(
        matches!(result, Err(AgeError::Truncated { restored }) if restored == 2 * CHUNK_SIZE as u64),
        "{result:?}"
    );
    assert_eq!(out.len(), 2 * CHUNK_SIZE);

    // Two chunks flagged last.
    let file = build(&identity, key, &[(&full, true), (b"x", true)]);
    let (result, _) = open(&file, &identity);
    assert!(
        matches!(result, Err(AgeError::TrailingData { index: 0 })),
        "{result:?}"
    );

    // A short chunk that is not flagged last.
    let file = build(&identity, key, &[(b"short", false)]);
    let (result, _) = open(&file, &identity);
    assert!(
        matches!(result, Err(AgeError::Truncated { restored: 0 })),
        "{result:?}"
    );
}

#[test]
fn stanza_bodies_wrap_at_64_columns_and_end_with_a_short_line() {
    // 32 bytes encode to 43 characters: one short line.
    assert_eq!(wrap_body(&[0u8; 32]), format!("{}\n", "A".repeat(43)));
    // 48 bytes fill a line exactly: an empty line must end the body.
    assert_eq!(wrap_body(&[0u8; 48]), format!("{}\n\n", "A".repeat(64)));
    assert_eq!(wrap_body(&[0u8; 49]), format!("{}\nAA\n", "A".repeat(64)));
    assert_eq!(wrap_body(&[]), "\n");
}

#[test]
fn keys_parse_and_display_back() {
    // The spec's example: the identity of 32 bytes of 0x42 and its recipient.
    let spec_identity =
        "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
    let spec_recipient = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";
    let identity: Identity = spec_identity.parse().unwrap();
    assert_eq!(identity.0.as_bytes(), &[0x42; 32]);
    assert_eq!(identity.to_string(), spec_identity);
    assert_eq!(identity.recipient().to_string(), spec_recipient);
    let recipient: Recipient = spec_recipient.parse().unwrap();
    assert_eq!(recipient, identity.recipient());
    assert_eq!(recipient.to_string(), spec_recipient);
    assert!(format!("{identity:?}").contains(spec_recipient));
    assert!(!format!("{identity:?}").contains("SECRET"));

    // As age-keygen writes a key file.
    let file = format!(
        "# created: 2026-01-01T00:00:00Z\n# public key: {spec_recipient}\n\n{spec_identity}\n"
    );
    assert_eq!(Identity::parse(&file).unwrap().to_string(), spec_identity);

    let generated = Identity::generate(&mut rng(14));
    let text = generated.to_string();
    assert!(text.starts_with("AGE-SECRET-KEY-1") && text == text.to_uppercase());
    assert_eq!(Identity::parse(&text).unwrap().to_string(), text);
    let r = generated.recipient().to_string();
    assert!(r.starts_with("age1") && r.len() == 62);
    assert_eq!(Recipient::parse(&r).unwrap(), generated.recipient());
}

#[test]
fn bad_keys_are_refused_without_echoing_secrets() {
    let spec_identity =
        "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
    assert!(matches!(
        Identity::parse("# only a comment\n\n"),
        Err(KeyError::NoIdentity)
    ));
    let two = format!("{spec_identity}\n{}\n", Identity::generate(&mut rng(15)));
    assert!(matches!(
        Identity::parse(&two),
        Err(KeyError::SeveralIdentities(2, _))
    ));
    // One character changed: the checksum fails.
    let typo = spec_identity.replace("GFPQ4", "GFPQ5");
    let err = Identity::parse(&format!("# key\n{typo}\n")).unwrap_err();
    assert!(matches!(err, KeyError::Identity { line: 2, .. }), "{err:?}");
    assert!(!err.to_string().contains("GFPYYSJZ"), "{err}");
    // A recipient is no identity, and the other way round (the secret is not echoed).
    let recipient = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";
    assert!(Identity::parse(recipient).is_err());
    let err = Recipient::parse(spec_identity).unwrap_err();
    assert!(!err.to_string().contains("GFPYYSJZ"), "{err}");
    // Mixed case, the Bech32m checksum, another length.
    assert!(
        Recipient::parse("age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwJ").is_err()
    );
    let bech32m = bech32::encode::<bech32::Bech32m>(RECIPIENT_HRP_B32, &[0x42; 32]).unwrap();
    assert!(Recipient::parse(&bech32m).is_err(), "{bech32m}");
    let short = bech32::encode::<Bech32>(RECIPIENT_HRP_B32, &[0x42; 31]).unwrap();
    let err = Recipient::parse(&short).unwrap_err();
    assert!(err.to_string().contains("31 bytes"), "{err}");
    // A post-quantum recipient is not an X25519 one.
    let pq = bech32::encode::<Bech32>(Hrp::parse("age1pq").unwrap(), &[0x42; 32]).unwrap();
    assert!(Recipient::parse(&pq).is_err());
}

/// Headers of the age project's test vectors (c2sp.org/CCTV/age, `testdata`): their identity,
/// their header, and what opening it must give. Only the headers are used (their payloads are
/// binary); the file key the vectors record is "YELLOW SUBMARINE".
#[test]
fn the_age_test_vectors_headers() {
    const ID: &str = "AGE-SECRET-KEY-1XMWWC06LY3EE5RYTXM9MFLAZ2U56JJJ36S0MYPDRWSVLUL66MV4QX3S7F6";
    const TESTKIT_ID: &str =
        "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0";
    enum Expect {
        Key,
        Malformed,
        Version,
        NoMatch,
        Mac,
    }
    let vectors: &[(&str, &str, &str, Expect)] = &[
        (
            "x25519",
            ID,
            "age-encryption.org/v1\n\
             -> X25519 TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCc\n\
             EmECAEcKN+n/Vs9SbWiV+Hu0r+E8R77DdWYyd83nw7U\n\
             --- Vn+54jqiiUCE+WZcEVY3f1sqHjlu/z1LCQ/T7Xm7qI0\n",
            Expect::Key,
        ),
        (
            "stanza_empty_last_line",
            ID,
            "age-encryption.org/v1\n\
             -> X25519 TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCc\n\
             EmECAEcKN+n/Vs9SbWiV+Hu0r+E8R77DdWYyd83nw7U\n\
             -> stanza\n\
             QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\n\
             \n\
             --- +3PC416gxa7Mk7WxpX0kb6DVfSuCun0niGre+G4bZhE\n",
            Expect::Key,
        ),
        (
            "stanza_valid_characters",
            ID,
            r##"age-encryption.org/v1
-> !"#$%&' ()*+,-./ 01234567 89:;<=>? @ABCDEFG HIJKLMNO

-> PQRSTUVW XYZ[\]^_ `abcdefg hijklmno pqrstuvw xyz{|}~

-> X25519 TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCc
EmECAEcKN+n/Vs9SbWiV+Hu0r+E8R77DdWYyd83nw7U
--- x538z9xJq9XEK1aTTTv80aWDVvVdROvaXn2tpqXPC8g
"##,
            Expect::Key,
        ),
        (
            "x25519_bad_tag",
            ID,
            "age-encryption.org/v1\n\
             -> X25519 TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCc\n\
             EmECAEcKN+n/Vs9SbWiV+Hu0r+E8R77DdWYyd83nw0o\n\
             --- tG0k9bg4iIuBdMWb13n7FFYDzoBbtsLppNLhbh22aKg\n",
            Expect::NoMatch,
        ),
        (
            "hmac_bad",
            TESTKIT_ID,
            "age-encryption.org/v1\n\
             -> X25519 TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCc\n\
             hjabGXwSLQ9c3S6Lw2i+S2Tu2fiwQHHslbBN6B41FLE\n\
             --- 8McE3ix9R34E/vLrQv3yepsHjo/LXhfs22Ab3UyInmg\n",
            Expect::Mac,
        ),
        (
            "hmac_not_canonical",
            TESTKIT_ID,
            "age-encryption.org/v1\n\
             -> X25519 TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCc\n\
             hjabGXwSLQ9c3S6Lw2i+S2Tu2fiwQHHslbBN6B41FLE\n\
             --- WyJp9F/9FOZh7gJdheq2WIJcwHgYc8NIVh3ddwhrcNh\n",
            Expect::Malformed,
        ),
        (
            "x25519_low_order",
            TESTKIT_ID,
            "age-encryption.org/v1\n\
             -> X25519 X5yVvKNQjCSx0LFVnIPvWwREXMRYHI6G2CJO3dCfEdc\n\
             3E0NpFans/m0WLWF7+54ZBdNj3iqQqpraGDFiaRkvBA\n\
             --- sXw327YMT1/ULXe+ZyRMbMY0Z2jnWHGgI9j1we6yQ8A\n",
            Expect::Malformed,
        ),
        (
            "x25519_not_canonical_share",
            ID,
            "age-encryption.org/v1\n\
             -> X25519 TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCd\n\
             EmECAEcKN+n/Vs9SbWiV+Hu0r+E8R77DdWYyd83nw7U\n\
             --- AO6haEGU6BGJ8Tzeqnr2fSLEo31JrWodGtZuCZmijI8\n",
            Expect::Malformed,
        ),
        (
            "x25519_extra_argument",
            ID,
            "age-encryption.org/v1\n\
             -> X25519 TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCc 1234\n\
             EmECAEcKN+n/Vs9SbWiV+Hu0r+E8R77DdWYyd83nw7U\n\
             --- hQQySEUXL8pOuIOuw0qXzi66RphDJP9IKMNEChNJIPk\n",
            Expect::Malformed,
        ),
        (
            "stanza_multiple_short_lines",
            ID,
            "age-encryption.org/v1\n\
             -> X25519 TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCc\n\
             EmECAEcKN+n/Vs9SbWiV+Hu0r+E8R77DdWYyd83nw7U\n\
             -> stanza\n\
             AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n\
             AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n\
             --- ct87HSIMoTC4nUsQva+8AeKc2bK2q8b9sPjRhjuf1us\n",
            Expect::Malformed,
        ),
        (
            "scrypt_and_x25519",
            "AGE-SECRET-KEY-143WN7DCXU4G8R5AXQSSYD9AEPYDNT3HXSLWSPK36CDU6E8M59SSSAGZ3KG",
            "age-encryption.org/v1\n\
             -> X25519 ajtqAvDEkVNr2B7zUOtq2mAQXDSBlNrVAuM/dKb5sT4\n\
             U+hKlJ4isweJ9PKG7pgscmG3cPASLgTw7SOBpbZ8x2U\n\
             -> scrypt 3d9y0G+8q1ffPQ0xJJatIQ 10\n\
             foZolxuhRSL7IG7oaR+456IzkHtvue7j4mUjh3DB6EI\n\
             --- yp4Z0lV1LEdkm1+uDCuPUV+9hIXbPKrBXKQ/f5Y03As\n",
            Expect::Malformed,
        ),
        (
            "version_unsupported",
            ID,
            "age-encryption.org/v1234\n\
             -> X25519 TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCc\n\
             EmECAEcKN+n/Vs9SbWiV+Hu0r+E8R77DdWYyd83nw7U\n\
             --- 38AL8Mr4VwmS6CNbM4bc7u3WwGBDqsMTRHOuYJ9ckqs\n",
            Expect::Version,
        ),
    ];
    for (name, identity, header, expect) in vectors {
        let identity: Identity = identity.parse().unwrap();
        let result = open_header(&mut header.as_bytes(), &identity);
        match (expect, &result) {
            (Expect::Key, Ok(key)) => assert_eq!(&key[..], b"YELLOW SUBMARINE", "{name}"),
            (Expect::Malformed, Err(AgeError::MalformedHeader { .. }))
            | (Expect::Version, Err(AgeError::UnsupportedVersion(_)))
            | (Expect::NoMatch, Err(AgeError::NoMatchingIdentity { .. }))
            | (Expect::Mac, Err(AgeError::HeaderMac { .. })) => {}
            (_, Err(e)) => panic!("{name}: unexpected {e:?}"),
            (_, Ok(_)) => panic!("{name}: opened, but must not"),
        }
    }
}

#[test]
fn malformed_headers_are_refused_by_their_line() {
    let identity = Identity::generate(&mut rng(16));
    let file = seal(b"x", &identity.recipient(), 1, 16);
    let text = String::from_utf8_lossy(&file[..header_len(&file)]).into_owned();
    let cases = [
        // Not age at all, and a version line ending in CR.
        ("RIFF....WAVEfmt ".to_string(), "not an age file"),
        (
            text.replacen("v1\n", "v1\r\n", 1),
            "unsupported age format version",
        ),
        // Padding in the body, a space doubled in the arguments, no stanza.
        (text.replacen("\n---", "=\n---", 1), "line 3"),
        (text.replacen("-> X25519 ", "-> X25519  ", 1), "line 2"),
        (
            format!(
                "age-encryption.org/v1\n{}",
                &text[text.find("---").unwrap()..]
            ),
            "no recipient stanza",
        ),
        // A header that never ends is not read into memory whole.
        (
            format!("age-encryption.org/v1\n-> {}\n", "a".repeat(1 << 20)),
            "longer than 1048576 bytes",
        ),
    ];
    for (header, expect) in cases {
        let err = decrypt(header.as_bytes(), &identity, io::sink()).unwrap_err();
        assert!(err.to_string().contains(expect), "{header:?}: {err}");
    }
    let err = decrypt(&b""[..], &identity, io::sink()).unwrap_err();
    assert!(matches!(err, AgeError::NotAge(_)), "{err:?}");
}

#[test]
fn a_failing_output_breaks_the_writer_for_good() {
    struct Full(usize);
    impl Write for Full {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            if self.0 < data.len() {
                return Err(io::Error::other("disk full"));
            }
            self.0 -= data.len();
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let identity = Identity::generate(&mut rng(17));
    let mut writer = AgeWriter::new(Full(1000), &identity.recipient(), &mut rng(18)).unwrap();
    let plain = plaintext(CHUNK_SIZE + 1);
    assert!(writer.write_all(&plain).is_err());
    assert!(writer.write_all(b"more").is_err());
    assert!(writer.finish().is_err());
}
