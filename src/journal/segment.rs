//! Segment files: where records live on disk.
//!
//! `state_dir/journal/` holds segments named by their first record's sequence number
//! (`00000000000000000001.tgj`). Each starts with a header that makes it readable alone, even
//! before its first record: the journal's id, the first sequence number and the hash of the
//! record before it. Then frames ([`super::frame`]), one record each.
//!
//! ```text
//! "TGJ1" | journal id (16) | first seq (u64 LE) | prev hash (32) | CRC-32C of the 60 bytes before (u32 LE)
//! ```

use std::path::{Path, PathBuf};

use super::frame::{self, Decoded};
use super::record::{self, Hash, JournalId};

pub const MAGIC: &[u8; 4] = b"TGJ1";
pub const HEADER_LEN: usize = 64;
pub const EXTENSION: &str = "tgj";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub journal: JournalId,
    pub first_seq: u64,
    pub prev: Hash,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..4].copy_from_slice(MAGIC);
        out[4..20].copy_from_slice(&self.journal.0);
        out[20..28].copy_from_slice(&self.first_seq.to_le_bytes());
        out[28..60].copy_from_slice(&self.prev);
        let crc = crc32c::crc32c(&out[..60]);
        out[60..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; HEADER_LEN] = bytes.get(..HEADER_LEN)?.try_into().ok()?;
        let crc = u32::from_le_bytes(bytes[60..].try_into().ok()?);
        if &bytes[..4] != MAGIC || crc32c::crc32c(&bytes[..60]) != crc {
            return None;
        }
        Some(Self {
            journal: JournalId(bytes[4..20].try_into().ok()?),
            first_seq: u64::from_le_bytes(bytes[20..28].try_into().ok()?),
            prev: bytes[28..60].try_into().ok()?,
        })
    }
}

pub fn file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.{EXTENSION}")
}

/// The segments in `dir`, oldest first, by the first sequence number in their names.
pub fn list(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
            continue;
        }
        let first = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u64>().ok());
        if let Some(first) = first {
            segments.push((first, path));
        }
    }
    segments.sort();
    Ok(segments)
}

/// What a segment's bytes hold, read from the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub header: Header,
    /// Whole, chained records.
    pub records: u64,
    /// The sequence number and hash of the last of them (the header's if none).
    pub last_seq: u64,
    pub last_hash: Hash,
    /// Where the whole records end.
    pub valid_len: usize,
    /// What follows them, if anything.
    pub tail: Tail,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// The records end where the bytes do.
    Clean,
    /// The last frame was cut short (a write that never finished).
    Torn,
    /// A frame whose checksum, length, envelope, sequence or chain is wrong.
    Damaged(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a journal segment (bad or missing header)")]
pub struct BadHeader;

/// The whole frames of a segment's bytes after its header, each with the offset it starts at;
/// the iteration stops at the first that is not whole, and [`Frames::tail`] then says why.
pub struct Frames<'a> {
    bytes: &'a [u8],
    offset: usize,
    tail: Tail,
}

/// The frames of `segment_bytes` (header included, not checked here).
pub fn frames(segment_bytes: &[u8]) -> Frames<'_> {
    Frames {
        bytes: segment_bytes,
        offset: HEADER_LEN,
        tail: Tail::Clean,
    }
}

impl Frames<'_> {
    /// Where the whole frames end (so far).
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// What follows the last whole frame, once the iteration has ended.
    pub fn tail(&self) -> &Tail {
        &self.tail
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = (usize, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.bytes.get(self.offset..).unwrap_or_default();
        match frame::decode(rest) {
            Decoded::Frame { payload, len } => {
                let at = self.offset;
                self.offset += len;
                Some((at, payload))
            }
            Decoded::End => None,
            Decoded::Truncated => {
                self.tail = Tail::Torn;
                None
            }
            Decoded::Damaged => {
                self.tail = Tail::Damaged("frame length or checksum".into());
                None
            }
        }
    }
}

/// Reads a segment's bytes, checking every record's frame, envelope, sequence and chain link.
pub fn scan(bytes: &[u8]) -> Result<Scan, BadHeader> {
    let header = Header::decode(bytes).ok_or(BadHeader)?;
    let mut scan = Scan {
        header,
        records: 0,
        last_seq: header.first_seq.saturating_sub(1),
        last_hash: header.prev,
        valid_len: HEADER_LEN,
        tail: Tail::Clean,
    };
    let mut frames = frames(bytes);
    for (at, payload) in frames.by_ref() {
        if let Err(why) = check_link(payload, scan.last_seq + 1, &scan.last_hash) {
            scan.tail = Tail::Damaged(why);
            return Ok(scan);
        }
        scan.records += 1;
        scan.last_seq += 1;
        scan.last_hash = record::hash(payload);
        scan.valid_len = at + frame::HEADER_LEN + payload.len();
    }
    scan.tail = frames.tail().clone();
    Ok(scan)
}

/// Whether `payload` is record `seq` and follows the record hashed `prev`.
pub fn check_link(payload: &[u8], seq: u64, prev: &Hash) -> Result<(), String> {
    let envelope = record::parse(payload).map_err(|e| e.to_string())?;
    if envelope.seq != seq {
        return Err(format!("record {} where {seq} was due", envelope.seq));
    }
    if envelope.prev != record::hex(prev) {
        return Err(format!("record {seq} does not follow the record before it"));
    }
    Ok(())
}
