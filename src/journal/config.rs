//! `[journal]`: where records are kept and how often they are made safe from power loss.
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::Problem;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    /// Where the segments live (relative to the config file); by default `journal` in
    /// `[agents] state_dir`.
    pub dir: Option<PathBuf>,
    /// Records are synced to disk (fdatasync) at most this long after they were written…
    #[serde(default = "default_sync_interval_ms")]
    pub sync_interval_ms: u64,
    /// …or as soon as this many wait to be synced (1: every record on its own).
    #[serde(default = "default_sync_records")]
    pub sync_records: u64,
    /// A segment file is closed and another begun past this size.
    #[serde(default = "default_segment_bytes")]
    pub segment_bytes: u64,
    /// The journal's files never grow past this; 0: only the disk bounds them. Segments every
    /// sink has acknowledged are removed to make room.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Records that cannot be written (a full disk, `max_bytes` reached) wait in memory, at
    /// most this many; beyond it the oldest are given up and a `lost` record says so.
    #[serde(default = "default_max_pending_records")]
    pub max_pending_records: usize,
}

impl Default for JournalConfig {
    fn default() -> Self {
        Self {
            dir: None,
            sync_interval_ms: default_sync_interval_ms(),
            sync_records: default_sync_records(),
            segment_bytes: default_segment_bytes(),
            max_bytes: default_max_bytes(),
            max_pending_records: default_max_pending_records(),
        }
    }
}

fn default_sync_interval_ms() -> u64 {
    200
}

fn default_sync_records() -> u64 {
    256
}

fn default_segment_bytes() -> u64 {
    8 << 20
}

fn default_max_bytes() -> u64 {
    1 << 30
}

fn default_max_pending_records() -> usize {
    100_000
}

/// A segment smaller than this would rotate every few records.
const MIN_SEGMENT_BYTES: u64 = 64 << 10;

impl JournalConfig {
    pub fn sync_interval(&self) -> Duration {
        Duration::from_millis(self.sync_interval_ms)
    }

    pub fn validate(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let at = |key: &str, message: String| Problem::at(&["journal", key], message);
        if !(1..=60_000).contains(&self.sync_interval_ms) {
            out.push(at(
                "sync_interval_ms",
                format!("{} is out of range: 1 to 60000", self.sync_interval_ms),
            ));
        }
        if self.sync_records == 0 {
            out.push(at("sync_records", "must be at least 1".into()));
        }
        if self.segment_bytes < MIN_SEGMENT_BYTES {
            out.push(at(
                "segment_bytes",
                format!(
                    "{} is too small: at least {MIN_SEGMENT_BYTES}",
                    self.segment_bytes
                ),
            ));
        }
        if self.max_bytes != 0 && self.max_bytes < 2 * self.segment_bytes {
            out.push(at(
                "max_bytes",
                format!(
                    "{} leaves no room to rotate: 0 (no bound) or at least twice segment_bytes ({})",
                    self.max_bytes,
                    2 * self.segment_bytes
                ),
            ));
        }
        out
    }
}
