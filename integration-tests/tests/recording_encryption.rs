//! Call recordings encrypted at rest, against the standard age tools (Debian's `age` package,
//! the reference Go implementation): `age -d` opens what our `AgeWriter` writes, our `decrypt`
//! opens what `age -r` writes, and our `Identity` reads the key file `age-keygen` writes. So
//! whoever holds a recording's private key needs nothing of ours to play it back.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use trunkgate::recording::age::{decrypt, AgeWriter, Identity, Recipient};

/// Sizes around the 64 KiB chunk: empty, exactly one full chunk (flagged last), and ~200 KB.
const SIZES: [usize; 3] = [0, 65_536, 200_000];

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 4099) as u8).collect()
}

/// Runs one of the age tools and returns its standard output; fails the test when it fails.
fn run(program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} (Debian package age; scripts/setup-test-deps.sh installs it): {e}")
        });
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn arg(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// A new key pair from `age-keygen -o`: the key file and its public key (`age-keygen -y`).
fn keygen(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("key.txt");
    run("age-keygen", &["-o", arg(&key)]);
    let public = String::from_utf8(run("age-keygen", &["-y", arg(&key)]))
        .unwrap()
        .trim()
        .to_string();
    (key, public)
}

#[test]
fn our_identity_reads_the_key_file_age_keygen_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path());
    let text = std::fs::read_to_string(&key).unwrap();
    println!("{}", text.lines().next().unwrap_or(""));
    assert!(text.contains(&format!("# public key: {public}")), "{text}");
    let identity = Identity::parse(&text).unwrap();
    assert_eq!(identity.recipient().to_string(), public);
    assert_eq!(
        Recipient::parse(&public).unwrap(),
        identity.recipient(),
        "the public key parses to the identity's recipient"
    );
    // Displayed back exactly as age-keygen wrote the secret line.
    let secret = text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .unwrap();
    assert_eq!(identity.to_string(), secret);
}

#[test]
fn age_decrypts_what_our_writer_encrypts() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path());
    let recipient = Recipient::parse(&public).unwrap();
    for len in SIZES {
        let plain = plaintext(len);
        let sealed = dir.path().join(format!("call-{len}.opus.age"));
        let file = std::fs::File::create(&sealed).unwrap();
        let mut writer = AgeWriter::new(file, &recipient, &mut rand::thread_rng()).unwrap();
        // In pieces of a 20 ms Opus page or so, as the recorder writes.
        for piece in plain.chunks(1_500) {
            writer.write_all(piece).unwrap();
        }
        assert_eq!(writer.plaintext_len(), len as u64);
        writer.finish().unwrap().sync_all().unwrap();

        // To standard output: with -o, age creates no file at all for an empty plaintext.
        let back = run("age", &["-d", "-i", arg(&key), arg(&sealed)]);
        assert_eq!(back.len(), len, "age -d: the whole recording");
        assert!(back == plain, "age -d: {len} bytes differ");
    }
}

#[test]
fn our_decrypt_opens_what_age_encrypts() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path());
    let identity = Identity::parse(&std::fs::read_to_string(&key).unwrap()).unwrap();
    for len in SIZES {
        let plain = plaintext(len);
        let input = dir.path().join(format!("in-{len}"));
        std::fs::write(&input, &plain).unwrap();
        let sealed = dir.path().join(format!("in-{len}.age"));
        run("age", &["-r", &public, "-o", arg(&sealed), arg(&input)]);

        let mut back = Vec::new();
        let n = decrypt(std::fs::File::open(&sealed).unwrap(), &identity, &mut back).unwrap();
        assert_eq!(n, len as u64);
        assert!(back == plain, "our decrypt: {len} bytes differ");
    }
}
