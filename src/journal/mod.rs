//! The call journal: every call, agent session and queue outcome, kept durably in
//! `state_dir/journal/` and shipped to the cloud (docs/journal.md).
//!
//! - [`record`]: one record's envelope (sequence, idempotency key, hash chain) as a JSON line;
//! - [`frame`]: a record on disk, with its length and CRC-32C;
//! - [`segment`]: the files records live in;
//! - [`writer`]: appending, syncing, rotating, and recovering from a crash on opening;
//! - [`reader`]: reading records back from a sequence number on.
pub mod frame;
pub mod reader;
pub mod record;
pub mod recorder;
pub mod segment;
pub mod writer;

pub use reader::JournalReader;
pub use record::{JournalId, RecordType};
pub use writer::{JournalWriter, Limits, Recovery};

#[cfg(test)]
mod tests;
