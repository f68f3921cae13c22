//! One journal record: the envelope every record shares, and the chain that links them.
//!
//! A record is one line of compact JSON, stored and shipped byte for byte as written:
//!
//! ```text
//! {"v":1,"seq":7,"key":"5f0c…e1:7","prev":"9b1d…04","at":"2026-12-06T22:15:32.123Z","type":"cdr","data":{…}}
//! ```
//!
//! - `seq` counts the journal's records from 1 with no gap;
//! - `key` (journal id and seq) is unique across every gateway and every journal a gateway
//!   ever had, so a sink can drop a record it already holds;
//! - `prev` is the SHA-256 of the previous record's bytes (all zeros for the first), so a
//!   reader that has a run of records can tell whether one is missing, moved or edited.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The envelope's version; a reader refuses what it does not know.
pub const VERSION: u32 = 1;

pub type Hash = [u8; 32];

/// The `prev` of a journal's first record.
pub const GENESIS: Hash = [0; 32];

/// What a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordType {
    /// One call, whole, once it ended.
    Cdr,
    /// A step in a call, as it happened.
    CallEvent,
    /// A step in an agent's session (login, state, logout).
    AgentEvent,
    /// A caller's wait in a queue and how it ended.
    QueueOutcome,
    /// Records that could not be kept, said where they would have been.
    Lost,
    /// The calls in progress at this point, for the replay after a crash.
    Checkpoint,
}

impl RecordType {
    /// As the envelope's `type` says it, and the records metric's label.
    pub fn name(self) -> &'static str {
        match self {
            RecordType::Cdr => "cdr",
            RecordType::CallEvent => "call_event",
            RecordType::AgentEvent => "agent_event",
            RecordType::QueueOutcome => "queue_outcome",
            RecordType::Lost => "lost",
            RecordType::Checkpoint => "checkpoint",
        }
    }
}

#[derive(Serialize)]
struct Outgoing<'a> {
    v: u32,
    seq: u64,
    key: String,
    prev: String,
    at: String,
    #[serde(rename = "type")]
    kind: RecordType,
    data: &'a serde_json::Value,
}

/// The envelope of a stored record, as a reader checks it (the data stays as it is).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Envelope {
    pub v: u32,
    pub seq: u64,
    pub key: String,
    pub prev: String,
    pub at: String,
    #[serde(rename = "type")]
    pub kind: RecordType,
}

/// A journal's identity: random, made when the journal is, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalId(pub [u8; 16]);

impl JournalId {
    pub fn random() -> Self {
        Self(rand::random())
    }
}

impl std::fmt::Display for JournalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

/// The bytes of record `seq`.
pub fn encode(
    journal: JournalId,
    seq: u64,
    prev: &Hash,
    at: SystemTime,
    kind: RecordType,
    data: &serde_json::Value,
) -> Vec<u8> {
    let record = Outgoing {
        v: VERSION,
        seq,
        key: format!("{journal}:{seq}"),
        prev: hex(prev),
        at: rfc3339_millis(at),
        kind,
        data,
    };
    // Infallible: the envelope is strings and numbers, the data an already-built JSON value.
    serde_json::to_vec(&record).expect("a JSON value serialises")
}

pub fn hash(record: &[u8]) -> Hash {
    Sha256::digest(record).into()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("not a journal record: {0}")]
    Json(String),
    #[error("record version {0} is newer than this program knows ({VERSION})")]
    Version(u32),
}

pub fn parse(record: &[u8]) -> Result<Envelope, EnvelopeError> {
    let envelope: Envelope =
        serde_json::from_slice(record).map_err(|e| EnvelopeError::Json(e.to_string()))?;
    if envelope.v != VERSION {
        return Err(EnvelopeError::Version(envelope.v));
    }
    Ok(envelope)
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            // Infallible: writing to a String.
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// `2026-12-06T22:15:32.123Z`: UTC, milliseconds, what every log and database reads.
pub fn rfc3339_millis(at: SystemTime) -> String {
    let t = time::OffsetDateTime::from(at);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Reads back what [`rfc3339_millis`] wrote.
pub fn parse_rfc3339_millis(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() != 24 || b[4] != b'-' || b[10] != b'T' || b[19] != b'.' || b[23] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<u32>().ok();
    let month = time::Month::try_from(u8::try_from(num(5..7)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(num(0..4)? as i32, month, num(8..10)? as u8).ok()?;
    let clock = time::Time::from_hms_milli(
        num(11..13)? as u8,
        num(14..16)? as u8,
        num(17..19)? as u8,
        num(20..23)? as u16,
    )
    .ok()?;
    Some(
        time::PrimitiveDateTime::new(date, clock)
            .assume_utc()
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_record_is_one_json_line_whose_envelope_reads_back() {
        let journal = JournalId([0xab; 16]);
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_595_332_123);
        let data = serde_json::json!({"call": "c1", "note": "line\nbreak"});
        let bytes = encode(journal, 7, &GENESIS, at, RecordType::Cdr, &data);
        assert!(
            !bytes.contains(&b'\n'),
            "one line even when the data has newlines"
        );
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with(
            r#"{"v":1,"seq":7,"key":"abababababababababababababababab:7","prev":"0000"#
        ));
        assert!(text.contains(r#""at":"2026-12-06T22:15:32.123Z","type":"cdr","data":{"#));
        assert_eq!(parse_rfc3339_millis("2026-12-06T22:15:32.123Z"), Some(at));
        assert_eq!(parse_rfc3339_millis("2026-12-06T22:15:32Z"), None);
        let envelope = parse(&bytes).unwrap();
        for kind in [
            RecordType::Cdr,
            RecordType::QueueOutcome,
            RecordType::Checkpoint,
        ] {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                kind.name(),
                "one name each"
            );
        }
        assert_eq!(envelope.seq, 7);
        assert_eq!(envelope.kind, RecordType::Cdr);
        assert_eq!(envelope.prev, hex(&GENESIS));
    }

    #[test]
    fn a_newer_version_is_refused_by_name() {
        let err = parse(br#"{"v":2,"seq":1,"key":"k","prev":"","at":"","type":"cdr"}"#);
        assert_eq!(err, Err(EnvelopeError::Version(2)));
    }
}
