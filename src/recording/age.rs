//! Call recordings encrypted at rest in the age v1 file format (<https://age-encryption.org/v1>,
//! the C2SP age spec), for X25519 recipients only.
//!
//! Why age: a recording is sealed for a public key (`age1…`) and the gateway never holds the
//! private key, so a stolen disk or a compromised gateway gives no recording away. The format is
//! a published standard, so whoever holds the private key (`AGE-SECRET-KEY-1…`, as `age-keygen`
//! writes it) can open a recording with the standard `age` command (`age -d -i key.txt`) as well
//! as with [`decrypt`]; nothing of ours is needed to get the audio back.
//!
//! Why streaming: age's payload is a sequence of 64 KiB chunks, each sealed on its own with
//! ChaCha20-Poly1305 and a counter nonce (the STREAM construction). [`AgeWriter`] seals and
//! writes each chunk as soon as it knows the chunk is not the last one, that is when the first
//! byte after it arrives; only the last chunk waits for [`AgeWriter::finish`], which flags it as
//! last. A crash therefore loses at most the unsealed last chunk (up to 64 KiB of plaintext):
//! [`decrypt`] writes every chunk that authenticates and then reports
//! [`AgeError::Truncated`] with how much it restored, so the caller can keep the start of a
//! recording cut short.
//!
//! Written from the spec on RustCrypto primitives (x25519-dalek, chacha20poly1305, hkdf, hmac,
//! sha2) and the bech32 crate. The header is parsed strictly (canonical base64, the spec's line
//! rules, exactly one `v1` version line); stanzas of other types (scrypt, plugins, post-quantum)
//! are skipped, except that an scrypt stanza must be alone in a header. Key material (file key,
//! payload and wrap keys, the identity's secret) is wiped from memory when dropped.
//!
//! One thing the format cannot tell apart: a final chunk that was only partly written (a crash
//! mid-write) and a short final chunk that was damaged afterwards both end the file with bytes
//! that authenticate as no chunk. Both are reported as [`AgeError::Truncated`]: everything
//! before them authenticated, and nothing after them is released. A damaged chunk that is
//! followed by more data, or a damaged full-size chunk, is [`AgeError::ChunkAuth`].
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use bech32::primitives::decode::CheckedHrpstring;
use bech32::{Bech32, Hrp};
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::{CryptoRng, RngCore};
use sha2::Sha256;
use x25519_dalek::{EphemeralSecret, PublicKey, StaticSecret};
use zeroize::Zeroizing;

#[cfg(test)]
mod tests;

/// Plaintext bytes in every payload chunk but the last.
pub const CHUNK_SIZE: usize = 64 * 1024;
/// ChaCha20-Poly1305's tag, after each chunk's ciphertext.
const TAG_SIZE: usize = 16;
/// A sealed full chunk on disk.
const SEALED_CHUNK_SIZE: usize = CHUNK_SIZE + TAG_SIZE;
/// The payload's nonce, right after the header.
const PAYLOAD_NONCE_SIZE: usize = 16;
const FILE_KEY_SIZE: usize = 16;

const VERSION_LINE: &[u8] = b"age-encryption.org/v1";
const VERSION_PREFIX: &[u8] = b"age-encryption.org/";
const X25519_TAG: &str = "X25519";
const X25519_INFO: &[u8] = b"age-encryption.org/v1/X25519";
/// Base64 columns of a full stanza body line (48 bytes).
const BODY_COLUMNS: usize = 64;
/// A header larger than this is refused rather than read into memory.
const MAX_HEADER: u64 = 1 << 20;

const RECIPIENT_HRP: &str = "age";
const IDENTITY_HRP: &str = "age-secret-key-";
const RECIPIENT_HRP_B32: Hrp = Hrp::parse_unchecked(RECIPIENT_HRP);
const IDENTITY_HRP_B32: Hrp = Hrp::parse_unchecked(IDENTITY_HRP);

type FileKey = Zeroizing<[u8; FILE_KEY_SIZE]>;

/// An X25519 recipient: the public key a recording is encrypted to (`age1…`).
#[derive(Clone, PartialEq, Eq)]
pub struct Recipient(PublicKey);

/// An X25519 identity: the private key that opens recordings (`AGE-SECRET-KEY-1…`). The secret
/// is wiped from memory when the identity is dropped. `Debug` shows only its recipient.
#[derive(Clone)]
pub struct Identity(StaticSecret);

/// A key that does not parse. The messages never quote a private key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{value:?} is not an age X25519 recipient (age1…): {why}")]
    Recipient { value: String, why: String },
    #[error(
        "line {line} of the identity file is not an age X25519 identity (AGE-SECRET-KEY-1…): {why}"
    )]
    Identity { line: usize, why: String },
    #[error("the identity file holds no AGE-SECRET-KEY-1… line")]
    NoIdentity,
    #[error("the identity file holds {0} keys (lines {1:?}); one was expected")]
    SeveralIdentities(usize, Vec<usize>),
}

/// Why [`decrypt`] failed.
#[derive(Debug, thiserror::Error)]
pub enum AgeError {
    /// The input does not start with an age version line.
    #[error("not an age file: it begins {0:?}")]
    NotAge(String),
    #[error("unsupported age format version {0:?}: only v1 is known")]
    UnsupportedVersion(String),
    /// The header breaks the format's rules (line numbers count from 1).
    #[error("malformed age header, line {line}: {problem}")]
    MalformedHeader { line: usize, problem: String },
    /// No stanza opens with the identity: the file was encrypted to another key.
    #[error(
        "wrong key: no stanza of the header is for {recipient} ({x25519} X25519 stanzas, \
         {other} of other types)"
    )]
    NoMatchingIdentity {
        recipient: String,
        x25519: usize,
        other: usize,
    },
    /// The file key opened, but the header's MAC is not the header's: it was altered.
    #[error("header mac {found} does not match the header: the header was altered")]
    HeaderMac { found: String },
    /// A payload chunk does not authenticate; the chunks before it were written out.
    #[error("payload chunk {index} fails authentication: the file was altered or damaged")]
    ChunkAuth { index: u64 },
    /// The final chunk is empty though the payload is not: the spec forbids it.
    #[error("payload chunk {index} is an empty final chunk after a non-empty payload")]
    EmptyFinalChunk { index: u64 },
    /// Bytes follow the chunk flagged last (it was not written out).
    #[error("data follows payload chunk {index}, which is flagged as the final chunk")]
    TrailingData { index: u64 },
    /// The file ends without its final chunk: it was cut short (a crash while recording). The
    /// `restored` plaintext bytes before the cut authenticated and were written out.
    #[error(
        "the payload ends without its final chunk after {restored} bytes of plaintext: the file \
         was cut short"
    )]
    Truncated { restored: u64 },
    #[error("reading the age file: {0}")]
    Read(#[source] io::Error),
    #[error("writing the decrypted plaintext: {0}")]
    Write(#[source] io::Error),
}

// ---------------------------------------------------------------------------------------------
// Keys

/// `data` as Bech32 (BIP 173 checksum) with `hrp`, checked to be 32 bytes with zero padding.
fn bech32_key(s: &str, hrp: &str) -> Result<Zeroizing<[u8; 32]>, String> {
    let checked =
        CheckedHrpstring::new::<Bech32>(s).map_err(|e| format!("not valid Bech32 ({e})"))?;
    let found = checked.hrp().to_lowercase();
    if found != hrp {
        return Err(format!("its prefix is {found:?}, not {hrp:?}"));
    }
    checked
        .validate_segwit_padding()
        .map_err(|e| format!("bad Bech32 padding ({e})"))?;
    let mut key = Zeroizing::new([0u8; 32]);
    let mut len = 0;
    for byte in checked.byte_iter() {
        if len < 32 {
            key[len] = byte;
        }
        len += 1;
    }
    if len != 32 {
        return Err(format!("it holds {len} bytes, not 32"));
    }
    Ok(key)
}

impl Recipient {
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        let key = bech32_key(s, RECIPIENT_HRP).map_err(|why| {
            // A private key given where the public one belongs is not echoed into a log.
            let secret = s.trim().to_ascii_lowercase().starts_with(IDENTITY_HRP);
            KeyError::Recipient {
                value: if secret {
                    "AGE-SECRET-KEY-1… (a private key)".to_string()
                } else {
                    s.to_string()
                },
                why,
            }
        })?;
        Ok(Recipient(PublicKey::from(*key)))
    }

    fn bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }
}

impl FromStr for Recipient {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        Recipient::parse(s)
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        bech32::encode_lower_to_fmt::<Bech32, _>(f, RECIPIENT_HRP_B32, self.bytes())
            .map_err(|_| fmt::Error)
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipient({self})")
    }
}

impl Identity {
    /// A new random identity, as `age-keygen` makes one.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut bytes[..]);
        Identity(StaticSecret::from(*bytes))
    }

    /// The identity in an identity file's text, as `age-keygen` writes it: one
    /// `AGE-SECRET-KEY-1…` line; lines starting with `#` and blank lines are ignored. A bare key
    /// is a file of one line. A file with several keys is refused: which one is meant?
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let mut found = None;
        let mut lines = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = bech32_key(line, IDENTITY_HRP)
                .map_err(|why| KeyError::Identity { line: i + 1, why })?;
            lines.push(i + 1);
            found = Some(Identity(StaticSecret::from(*key)));
        }
        match (found, lines.len()) {
            (Some(identity), 1) => Ok(identity),
            (None, _) => Err(KeyError::NoIdentity),
            (Some(_), n) => Err(KeyError::SeveralIdentities(n, lines)),
        }
    }

    /// The public key recordings for this identity are encrypted to.
    pub fn recipient(&self) -> Recipient {
        Recipient(PublicKey::from(&self.0))
    }
}

impl FromStr for Identity {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        Identity::parse(s)
    }
}

/// The private key, `AGE-SECRET-KEY-1…` in upper case as age writes it. The string this makes
/// is not wiped: write it where it belongs and drop it.
impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        bech32::encode_upper_to_fmt::<Bech32, _>(f, IDENTITY_HRP_B32, self.0.as_bytes())
            .map_err(|_| fmt::Error)
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity(for {})", self.recipient())
    }
}

// ---------------------------------------------------------------------------------------------
// Primitives

/// HKDF-SHA-256 to 32 bytes.
fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut okm = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut okm[..])
        // 32 bytes is far below HKDF-SHA-256's limit of 255 * 32 bytes of output.
        .expect("32 bytes of HKDF-SHA-256 output");
    okm
}

fn aead(key: &[u8; 32]) -> ChaCha20Poly1305 {
    ChaCha20Poly1305::new(Key::from_slice(key))
}

/// HMAC-SHA-256 of `header` (through its `---`) under the file key's header key.
fn header_mac(file_key: &[u8; FILE_KEY_SIZE], header: &[u8]) -> Hmac<Sha256> {
    let key = hkdf(&[], file_key, b"header");
    // HMAC takes a key of any length.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(&key[..]).expect("HMAC accepts any key length");
    mac.update(header);
    mac
}

/// The X25519 stanza's wrap key.
fn wrap_key(shared: &[u8; 32], share: &[u8; 32], recipient: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(share);
    salt[32..].copy_from_slice(recipient);
    hkdf(&salt, shared, X25519_INFO)
}

/// Chunk `index`'s AEAD nonce: an 11-byte big-endian counter and the last-chunk flag.
fn chunk_nonce(index: u64, last: bool) -> Nonce {
    let mut nonce = [0u8; 12];
    nonce[3..11].copy_from_slice(&index.to_be_bytes());
    nonce[11] = u8::from(last);
    *Nonce::from_slice(&nonce)
}

/// A stanza body's base64 lines: wrapped at 64 columns, the last line always shorter than 64
/// (empty when the encoding fills its last line exactly), each ending in LF.
fn wrap_body(body: &[u8]) -> String {
    let encoded = STANDARD_NO_PAD.encode(body);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / BODY_COLUMNS + 2);
    let mut rest = encoded.as_str();
    loop {
        // Base64 is ASCII, so any byte index is a char boundary.
        let (line, tail) = rest.split_at(rest.len().min(BODY_COLUMNS));
        out.push_str(line);
        out.push('\n');
        if line.len() < BODY_COLUMNS {
            return out;
        }
        rest = tail;
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

/// Encrypts a recording to one recipient as an age file, streaming.
///
/// [`AgeWriter::new`] writes the header and the payload nonce at once. Each full 64 KiB chunk of
/// plaintext is sealed and written to the inner writer as soon as more plaintext follows it (only
/// then is it known not to be the last); [`AgeWriter::finish`] seals the last chunk. `flush`
/// flushes the inner writer but seals nothing. If writing to the inner writer fails, the file is
/// broken and every later call fails too.
pub struct AgeWriter<W: Write> {
    out: W,
    aead: ChaCha20Poly1305,
    /// Plaintext not yet sealed: at most one chunk. Wiped when dropped.
    pending: Zeroizing<Vec<u8>>,
    /// The index of the chunk `pending` will become.
    index: u64,
    plaintext_len: u64,
    broken: bool,
}

impl<W: Write> AgeWriter<W> {
    /// Writes the header for `recipient` and the payload nonce to `out`.
    pub fn new(
        mut out: W,
        recipient: &Recipient,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> io::Result<Self> {
        let mut file_key: FileKey = Zeroizing::new([0u8; FILE_KEY_SIZE]);
        rng.fill_bytes(&mut file_key[..]);

        let ephemeral = EphemeralSecret::random_from_rng(&mut *rng);
        let share = PublicKey::from(&ephemeral);
        let shared = ephemeral.diffie_hellman(&recipient.0);
        if !shared.was_contributory() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("age recipient {recipient} is a low-order point: it has no private key"),
            ));
        }
        let wrap = wrap_key(shared.as_bytes(), share.as_bytes(), recipient.bytes());
        let mut body = file_key.to_vec();
        let tag = aead(&wrap)
            .encrypt_in_place_detached(&Nonce::default(), &[], &mut body)
            // Fails only past ChaCha20's 256 GiB per nonce; this is 16 bytes.
            .expect("sealing the 16-byte file key");
        body.extend_from_slice(&tag);

        let mut header = Vec::with_capacity(200);
        header.extend_from_slice(VERSION_LINE);
        header.push(b'\n');
        header.extend_from_slice(b"-> ");
        header.extend_from_slice(X25519_TAG.as_bytes());
        header.push(b' ');
        header.extend_from_slice(STANDARD_NO_PAD.encode(share.as_bytes()).as_bytes());
        header.push(b'\n');
        header.extend_from_slice(wrap_body(&body).as_bytes());
        header.extend_from_slice(b"---");
        let mac = header_mac(&file_key, &header).finalize().into_bytes();
        header.push(b' ');
        header.extend_from_slice(STANDARD_NO_PAD.encode(mac).as_bytes());
        header.push(b'\n');

        let mut nonce = [0u8; PAYLOAD_NONCE_SIZE];
        rng.fill_bytes(&mut nonce);
        header.extend_from_slice(&nonce);
        out.write_all(&header)?;

        let payload_key = hkdf(&nonce, &file_key[..], b"payload");
        Ok(AgeWriter {
            out,
            aead: aead(&payload_key),
            pending: Zeroizing::new(Vec::with_capacity(SEALED_CHUNK_SIZE)),
            index: 0,
            plaintext_len: 0,
            broken: false,
        })
    }

    /// Plaintext bytes accepted so far.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    fn check(&self) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::other(
                "an earlier write of this age file failed; the file is incomplete",
            ));
        }
        Ok(())
    }

    /// Seals `pending` as chunk `index` and writes it out.
    fn seal_pending(&mut self, last: bool) -> io::Result<()> {
        // Whatever happens now, `pending` is consumed: a failure leaves the file unfinishable.
        self.broken = true;
        let nonce = chunk_nonce(self.index, last);
        let tag = self
            .aead
            .encrypt_in_place_detached(&nonce, &[], &mut self.pending[..])
            // Fails only past ChaCha20's 256 GiB per nonce; a chunk is 64 KiB at most.
            .expect("sealing a chunk of at most 64 KiB");
        self.pending.extend_from_slice(&tag);
        self.out.write_all(&self.pending)?;
        self.pending.clear();
        self.index = self
            .index
            .checked_add(1)
            .ok_or_else(|| io::Error::other("age payload chunk counter overflow (2^64 chunks)"))?;
        self.broken = false;
        Ok(())
    }

    /// Seals the last chunk, flushes, and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.check()?;
        // `pending` is empty only when no plaintext came at all (full chunks are held back until
        // more follows): the spec's one case of an empty final chunk.
        self.seal_pending(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for AgeWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.check()?;
        if data.is_empty() {
            return Ok(0);
        }
        if self.pending.len() == CHUNK_SIZE {
            // More plaintext follows this full chunk, so it is not the last: seal it now.
            self.seal_pending(false)?;
        }
        let n = data.len().min(CHUNK_SIZE - self.pending.len());
        self.pending.extend_from_slice(&data[..n]);
        self.plaintext_len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        self.out.flush()
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

/// One recipient stanza as parsed.
struct Stanza {
    /// The header line of its `->` line.
    line: usize,
    args: Vec<String>,
    body: Vec<u8>,
}

/// A parsed header: its stanzas, its MAC and the bytes the MAC covers.
struct Header {
    stanzas: Vec<Stanza>,
    mac: [u8; 32],
    /// The header from its first byte through the `---` of the MAC line.
    authenticated: Vec<u8>,
}

/// A printable prefix of `bytes` for an error message.
fn show(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(48)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if cut.len() < bytes.len() {
        s.push('…');
    }
    s
}

fn is_base64_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

/// Canonical unpadded base64 of exactly `N` bytes.
fn base64_exact<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    let decoded = STANDARD_NO_PAD.decode(s).ok()?;
    decoded.try_into().ok()
}

struct HeaderReader<'a, R> {
    input: &'a mut R,
    /// Every header byte read so far.
    raw: Vec<u8>,
    line: usize,
}

impl<R: BufRead> HeaderReader<'_, R> {
    /// The next line without its LF, or `None` at the end of the input.
    fn next_line(&mut self) -> Result<Option<Vec<u8>>, AgeError> {
        let start = self.raw.len();
        let budget = MAX_HEADER.saturating_sub(start as u64);
        if budget == 0 {
            return Err(self.malformed(format!("the header is longer than {MAX_HEADER} bytes")));
        }
        (&mut *self.input)
            .take(budget)
            .read_until(b'\n', &mut self.raw)
            .map_err(AgeError::Read)?;
        if self.raw.len() == start {
            return Ok(None);
        }
        self.line += 1;
        if self.raw.last() != Some(&b'\n') {
            let problem = if self.raw.len() as u64 >= MAX_HEADER {
                format!("the header is longer than {MAX_HEADER} bytes")
            } else {
                format!(
                    "the file ends inside the header, in {:?}",
                    show(&self.raw[start..])
                )
            };
            return Err(self.malformed(problem));
        }
        Ok(Some(self.raw[start..self.raw.len() - 1].to_vec()))
    }

    fn malformed(&self, problem: String) -> AgeError {
        AgeError::MalformedHeader {
            line: self.line,
            problem,
        }
    }

    fn read(mut self) -> Result<Header, AgeError> {
        let Some(version) = self.next_line().map_err(|e| match e {
            // A first line that never ends is no version line.
            AgeError::MalformedHeader { .. } => AgeError::NotAge(show(&self.raw)),
            e => e,
        })?
        else {
            return Err(AgeError::NotAge(String::new()));
        };
        if version != VERSION_LINE {
            if let Some(v) = version.strip_prefix(VERSION_PREFIX) {
                return Err(AgeError::UnsupportedVersion(show(v)));
            }
            return Err(AgeError::NotAge(show(&version)));
        }

        let mut stanzas = Vec::new();
        loop {
            let Some(line) = self.next_line()? else {
                return Err(self.malformed("the file ends before the header's mac line".into()));
            };
            if let Some(rest) = line.strip_prefix(b"---") {
                let mac_start = self.raw.len() - 1 - rest.len();
                let mac = match rest.strip_prefix(b" ") {
                    Some(encoded) => base64_exact::<32>(encoded),
                    None => None,
                };
                let Some(mac) = mac else {
                    return Err(self.malformed(format!(
                        "the mac line {:?} is not \"--- \" and the canonical base64 of 32 bytes",
                        show(&line)
                    )));
                };
                if stanzas.is_empty() {
                    return Err(self.malformed("the header has no recipient stanza".into()));
                }
                return Ok(Header {
                    stanzas,
                    mac,
                    authenticated: self.raw[..mac_start].to_vec(),
                });
            }
            let stanza = self.stanza(&line)?;
            stanzas.push(stanza);
        }
    }

    /// A stanza whose `->` line is `line`; reads its body.
    fn stanza(&mut self, line: &[u8]) -> Result<Stanza, AgeError> {
        let first = self.line;
        let Some(args) = line.strip_prefix(b"-> ") else {
            return Err(self.malformed(format!(
                "{:?} is neither a stanza (\"-> \") nor the mac line (\"--- \")",
                show(line)
            )));
        };
        let mut parsed = Vec::new();
        for arg in args.split(|&b| b == b' ') {
            if arg.is_empty() || !arg.iter().all(|b| b.is_ascii_graphic()) {
                return Err(self.malformed(format!(
                    "stanza line {:?} has an empty argument or one with a character other than \
                     visible ASCII",
                    show(line)
                )));
            }
            // Visible ASCII is UTF-8.
            parsed.push(String::from_utf8_lossy(arg).into_owned());
        }
        let mut encoded = Vec::new();
        loop {
            let Some(body_line) = self.next_line()? else {
                return Err(self.malformed("the file ends inside a stanza's body".into()));
            };
            if body_line.len() > BODY_COLUMNS || !body_line.iter().all(|&b| is_base64_char(b)) {
                return Err(self.malformed(format!(
                    "stanza body line {:?} is not at most 64 columns of base64 (a stanza ends \
                     with a line shorter than 64 columns)",
                    show(&body_line)
                )));
            }
            encoded.extend_from_slice(&body_line);
            if body_line.len() < BODY_COLUMNS {
                break;
            }
        }
        let Ok(body) = STANDARD_NO_PAD.decode(&encoded) else {
            return Err(self.malformed(format!(
                "the body of the stanza at line {first} is not canonical base64"
            )));
        };
        Ok(Stanza {
            line: first,
            args: parsed,
            body,
        })
    }
}

/// Reads and checks the header, opens the file key with `identity` and checks the header's
/// MAC with it.
fn open_header<R: BufRead>(input: &mut R, identity: &Identity) -> Result<FileKey, AgeError> {
    let header = HeaderReader {
        input,
        raw: Vec::new(),
        line: 0,
    }
    .read()?;
    let malformed = |line: usize, problem: String| AgeError::MalformedHeader { line, problem };

    let is_scrypt = |s: &Stanza| s.args.first().map(String::as_str) == Some("scrypt");
    if header.stanzas.len() > 1 {
        if let Some(s) = header.stanzas.iter().find(|s| is_scrypt(s)) {
            return Err(malformed(
                s.line,
                "an scrypt stanza must be the only stanza of a header".into(),
            ));
        }
    }

    // Every X25519 stanza is checked before any is tried.
    let mut x25519 = Vec::new();
    for s in &header.stanzas {
        if s.args.first().map(String::as_str) != Some(X25519_TAG) {
            continue;
        }
        if s.args.len() != 2 {
            return Err(malformed(
                s.line,
                format!(
                    "an X25519 stanza has 2 arguments, this one {}",
                    s.args.len()
                ),
            ));
        }
        let Some(share) = base64_exact::<32>(s.args[1].as_bytes()) else {
            return Err(malformed(
                s.line,
                format!(
                    "X25519 share {:?} is not the canonical base64 of 32 bytes",
                    s.args[1]
                ),
            ));
        };
        if s.body.len() != FILE_KEY_SIZE + TAG_SIZE {
            return Err(malformed(
                s.line,
                format!(
                    "an X25519 stanza's body is 32 bytes, this one {}",
                    s.body.len()
                ),
            ));
        }
        x25519.push((s, share));
    }

    let recipient = identity.recipient();
    let mut file_key = None;
    for (s, share) in &x25519 {
        let shared = identity.0.diffie_hellman(&PublicKey::from(*share));
        if !shared.was_contributory() {
            return Err(malformed(
                s.line,
                format!(
                    "X25519 share {:?} is a low-order point (the shared secret is all zeros)",
                    s.args[1]
                ),
            ));
        }
        let wrap = wrap_key(shared.as_bytes(), share, recipient.bytes());
        let mut key: FileKey = Zeroizing::new([0u8; FILE_KEY_SIZE]);
        key.copy_from_slice(&s.body[..FILE_KEY_SIZE]);
        let tag = Tag::from_slice(&s.body[FILE_KEY_SIZE..]);
        if aead(&wrap)
            .decrypt_in_place_detached(&Nonce::default(), &[], &mut key[..], tag)
            .is_ok()
        {
            file_key = Some(key);
            break;
        }
    }
    let Some(file_key) = file_key else {
        return Err(AgeError::NoMatchingIdentity {
            recipient: recipient.to_string(),
            x25519: x25519.len(),
            other: header.stanzas.len() - x25519.len(),
        });
    };

    if header_mac(&file_key, &header.authenticated)
        .verify_slice(&header.mac)
        .is_err()
    {
        return Err(AgeError::HeaderMac {
            found: STANDARD_NO_PAD.encode(header.mac),
        });
    }
    Ok(file_key)
}

/// Reads until `buf` is full or the input ends; the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> Result<usize, AgeError> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(AgeError::Read(e)),
        }
    }
    Ok(n)
}

/// Decrypts the age file `input` with `identity`, writing the plaintext to `out` chunk by chunk
/// as each one authenticates; returns the plaintext's length.
///
/// On [`AgeError::Truncated`] (a file cut short), [`AgeError::ChunkAuth`] and the other payload
/// errors, `out` holds every chunk that authenticated before the failure, and nothing else.
pub fn decrypt(
    input: impl Read,
    identity: &Identity,
    mut out: impl Write,
) -> Result<u64, AgeError> {
    let mut input = BufReader::with_capacity(SEALED_CHUNK_SIZE, input);
    let file_key = open_header(&mut input, identity)?;

    let mut nonce = [0u8; PAYLOAD_NONCE_SIZE];
    if read_full(&mut input, &mut nonce)? < PAYLOAD_NONCE_SIZE {
        return Err(AgeError::Truncated { restored: 0 });
    }
    let aead = aead(&hkdf(&nonce, &file_key[..], b"payload"));

    // Decrypted in place: the plaintext in it is wiped when done.
    let mut chunk = Zeroizing::new(vec![0u8; SEALED_CHUNK_SIZE]);
    let mut restored: u64 = 0;
    let mut index: u64 = 0;
    loop {
        let n = read_full(&mut input, &mut chunk[..])?;
        let full = n == SEALED_CHUNK_SIZE;
        let more = full && !input.fill_buf().map_err(AgeError::Read)?.is_empty();
        if n < TAG_SIZE {
            // Nothing, or less than a tag, after the last chunk that authenticated.
            return Err(AgeError::Truncated { restored });
        }
        let (sealed, tag) = chunk[..n].split_at_mut(n - TAG_SIZE);
        let tag = *Tag::from_slice(tag);
        let open = |last: bool, sealed: &mut [u8]| {
            aead.decrypt_in_place_detached(&chunk_nonce(index, last), &[], sealed, &tag)
                .is_ok()
        };
        if more {
            // A full chunk with more after it: it must not be the last.
            if open(false, sealed) {
                out.write_all(sealed).map_err(AgeError::Write)?;
                restored += sealed.len() as u64;
                index += 1;
                continue;
            }
            if open(true, sealed) {
                return Err(AgeError::TrailingData { index });
            }
            return Err(AgeError::ChunkAuth { index });
        }
        // The last bytes of the file.
        if open(true, sealed) {
            if sealed.is_empty() && index > 0 {
                return Err(AgeError::EmptyFinalChunk { index });
            }
            out.write_all(sealed).map_err(AgeError::Write)?;
            out.flush().map_err(AgeError::Write)?;
            return Ok(restored + sealed.len() as u64);
        }
        if full && open(false, sealed) {
            // A whole chunk that is not the last, and then the end: cut at a chunk boundary.
            out.write_all(sealed).map_err(AgeError::Write)?;
            out.flush().map_err(AgeError::Write)?;
            return Err(AgeError::Truncated {
                restored: restored + sealed.len() as u64,
            });
        }
        if full {
            return Err(AgeError::ChunkAuth { index });
        }
        // Shorter than a chunk and opening as none: a chunk only partly written.
        out.flush().map_err(AgeError::Write)?;
        return Err(AgeError::Truncated { restored });
    }
}
