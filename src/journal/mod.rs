//! The call journal: every call, agent session and queue outcome, kept durably in
//! `state_dir/journal/` and shipped to the cloud (docs/journal.md).
//!
//! - [`record`]: one record's envelope (sequence, idempotency key, hash chain) as a JSON line;
//! - [`frame`]: a record on disk, with its length and CRC-32C;
//! - [`segment`]: the files records live in;
//! - [`writer`]: appending, syncing, rotating, and recovering from a crash on opening;
//! - [`reader`]: reading records back from a sequence number on;
//! - [`recorder`]: which records the bus's events make (CDRs, events, queue outcomes);
//! - [`recovery`]: after a crash, ending what the journal shows still in progress;
//! - [`shell`]: the thread that writes them, with group commit, and removes what sinks have;
//! - [`upload`], [`ship`]: shipping synced records to sinks, each with its own cursor;
//! - [`http_sink`], [`s3_sink`] (over [`https`]): the sinks beyond a local directory;
//! - [`verify`], [`tools`]: checking what a journal or a sink holds, and tailing a journal.
pub mod config;
pub mod frame;
pub mod http_sink;
pub mod https;
pub mod reader;
pub mod record;
pub mod recorder;
pub mod recovery;
pub mod s3_sink;
pub mod segment;
pub mod shell;
pub mod ship;
pub mod tools;
pub mod upload;
pub mod verify;
pub mod writer;

pub use reader::JournalReader;
pub use record::{JournalId, RecordType};
pub use writer::{JournalWriter, Limits, Recovery};

#[cfg(test)]
mod tests;
