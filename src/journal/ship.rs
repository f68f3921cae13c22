//! Shipping synced records to sinks: a task per sink around its [`SinkCore`], with its cursor
//! stored in the journal's directory (`cursors/NAME.json`) after every acknowledged batch, so
//! that a restart resumes where the sink left off and an outage of days only grows the
//! backlog.
//!
//! A batch is NDJSON: the records' own bytes, a line each, in order. Sinks deduplicate by the
//! records' keys; a batch sent twice (acknowledged but the cursor not yet stored when the
//! daemon died) is written again under the same name.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::config::{SinkConfig, SinkType};
use super::http_sink::HttpSink;
use super::reader::JournalReader;
use super::record::{self, JournalId};
use super::s3_sink::S3Sink;
use super::shell::JournalProgress;
use super::upload::{Backoff, BatchLimits, Outcome, SinkCore};
use super::writer::write_durably;

/// Per-sink counters for ops (Prometheus types; made and registered by `ops::metrics`).
#[derive(Clone)]
pub struct SinkCounters {
    /// By `sink`: records synced and not yet acknowledged.
    pub backlog: prometheus::IntGaugeVec,
    /// By `sink`: how old the oldest record not yet acknowledged is.
    pub oldest_unacked_seconds: prometheus::GaugeVec,
    /// By `sink` and `result` (`acknowledged`, `retry`, `dead_letter`).
    pub batches: prometheus::IntCounterVec,
    /// By `sink`: bytes of batches acknowledged.
    pub bytes: prometheus::IntCounterVec,
    /// By `sink`: records set aside because the sink refused them for good.
    pub dead_lettered: prometheus::IntCounterVec,
}

/// One batch on its way.
pub struct Batch {
    pub journal: JournalId,
    pub from: u64,
    pub to: u64,
    /// When the first record was written (its `at`, RFC 3339).
    pub first_at: String,
    /// NDJSON: each record's bytes and a newline.
    pub body: Vec<u8>,
}

impl Batch {
    /// `JOURNAL/FIRST-LAST.ndjson`: the same records always get the same name, so a retry
    /// overwrites instead of duplicating.
    pub fn name(&self) -> String {
        format!("{}/{:020}-{:020}.ndjson", self.journal, self.from, self.to)
    }
}

/// Where a sink's cursor lives, and what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    journal: String,
    acked: u64,
}

pub fn cursor_path(journal_dir: &Path, sink: &str) -> PathBuf {
    journal_dir.join("cursors").join(format!("{sink}.json"))
}

/// The last record `sink` acknowledged of `journal` (0: none, or a cursor of another journal).
pub fn load_cursor(journal_dir: &Path, sink: &str, journal: JournalId) -> u64 {
    std::fs::read(cursor_path(journal_dir, sink))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Cursor>(&bytes).ok())
        .filter(|c| c.journal == journal.to_string())
        .map_or(0, |c| c.acked)
}

fn store_cursor(journal_dir: &Path, sink: &str, journal: JournalId, acked: u64) -> io::Result<()> {
    let cursor = Cursor {
        journal: journal.to_string(),
        acked,
    };
    // Infallible: a string and a number.
    let bytes = serde_json::to_vec(&cursor).expect("a cursor serialises");
    write_durably(&cursor_path(journal_dir, sink), &bytes)
}

pub enum Sink {
    /// NDJSON files in a directory, a file per batch.
    File {
        dir: PathBuf,
    },
    Http(Arc<HttpSink>),
    S3(Arc<S3Sink>),
}

impl Sink {
    /// The sink a config entry describes; the error names the file it could not use.
    pub fn from_config(config: &SinkConfig, base_dir: &Path) -> Result<Self, String> {
        Ok(match config.kind {
            SinkType::File => Sink::File {
                dir: base_dir.join(config.dir.clone().unwrap_or_default()),
            },
            SinkType::Http => Sink::Http(Arc::new(HttpSink::new(config, base_dir)?)),
            SinkType::S3 => Sink::S3(Arc::new(S3Sink::new(config, base_dir)?)),
        })
    }

    async fn send(&self, batch: Arc<Batch>) -> Outcome {
        match self {
            Sink::File { dir } => {
                let path = dir.join(batch.name());
                let written =
                    tokio::task::spawn_blocking(move || write_durably(&path, &batch.body))
                        .await
                        .map_err(io::Error::other)
                        .and_then(|result| result);
                match written {
                    Ok(()) => Outcome::Acknowledged,
                    Err(e) => Outcome::Retry {
                        after: None,
                        why: e.to_string(),
                    },
                }
            }
            Sink::Http(http) => {
                let http = http.clone();
                blocking(move || http.send(&batch)).await
            }
            Sink::S3(s3) => {
                let s3 = s3.clone();
                blocking(move || s3.send(&batch)).await
            }
        }
    }
}

async fn blocking(send: impl FnOnce() -> Outcome + Send + 'static) -> Outcome {
    tokio::task::spawn_blocking(send)
        .await
        .unwrap_or_else(|e| Outcome::Retry {
            after: None,
            why: e.to_string(),
        })
}

/// One sink's task.
pub struct Shipper {
    pub name: String,
    pub journal_dir: PathBuf,
    pub journal: JournalId,
    pub sink: Sink,
    pub limits: BatchLimits,
    pub batch_bytes: u64,
    pub progress: Arc<JournalProgress>,
    /// What the sink has acknowledged, for the journal's retention.
    pub acked: Arc<AtomicU64>,
    pub counters: SinkCounters,
}

/// How often a shipper looks for newly synced records when it has nothing to wait for.
const POLL: Duration = Duration::from_millis(100);
/// A failing sink is logged at most this often.
const ERROR_LOG_EVERY: Duration = Duration::from_secs(60);

impl Shipper {
    pub async fn run(self, stop: CancellationToken) {
        let acked = self.acked.load(Ordering::Relaxed);
        let seed = rand::random();
        let mut core = SinkCore::new(acked, self.limits, Backoff::default(), seed);
        let mut last_error_log: Option<Instant> = None;
        loop {
            let now = Instant::now();
            core.set_available(now, self.progress.synced.load(Ordering::Relaxed));
            self.counters
                .backlog
                .with_label_values(&[&self.name])
                .set(core.backlog() as i64);
            if core.backlog() == 0 {
                self.counters
                    .oldest_unacked_seconds
                    .with_label_values(&[&self.name])
                    .set(0.0);
            }
            let Some(range) = core.poll(now) else {
                let wake = core
                    .next_wakeup()
                    .map_or(now + POLL, |at| at.min(now + POLL));
                tokio::select! {
                    _ = tokio::time::sleep_until(wake.into()) => continue,
                    _ = stop.cancelled() => return,
                }
            };
            let batch = match self.read(range).await {
                Ok(batch) => Arc::new(batch),
                Err(e) => {
                    tracing::error!(sink = %self.name, "journal: cannot read records to ship: {e}");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                        _ = stop.cancelled() => return,
                    }
                }
            };
            core.sending(batch.from..=batch.to);
            let outcome = tokio::select! {
                outcome = self.sink.send(batch.clone()) => outcome,
                _ = stop.cancelled() => return,
            };
            core.finished(Instant::now(), &outcome);
            let result = match &outcome {
                Outcome::Acknowledged => "acknowledged",
                Outcome::Retry { .. } => "retry",
                Outcome::Poisoned { .. } => "dead_letter",
            };
            self.counters
                .batches
                .with_label_values(&[&self.name, result])
                .inc();
            match &outcome {
                Outcome::Acknowledged => {
                    self.counters
                        .bytes
                        .with_label_values(&[&self.name])
                        .inc_by(batch.body.len() as u64);
                    if last_error_log.take().is_some() {
                        tracing::info!(sink = %self.name, "journal: the sink takes records again");
                    }
                }
                Outcome::Retry { why, .. } => {
                    let quiet =
                        matches!(last_error_log, Some(at) if at.elapsed() < ERROR_LOG_EVERY);
                    if !quiet {
                        last_error_log = Some(Instant::now());
                        tracing::warn!(
                            sink = %self.name,
                            backlog = core.backlog(),
                            failures = core.failures(),
                            "journal: the sink did not take a batch ({why}); retrying with backoff"
                        );
                    }
                }
                Outcome::Poisoned { why } => {
                    self.dead_letter(&batch, why);
                }
            }
            if core.acked() != self.acked.load(Ordering::Relaxed) {
                let stored =
                    store_cursor(&self.journal_dir, &self.name, self.journal, core.acked());
                if let Err(e) = stored {
                    tracing::error!(sink = %self.name, "journal: cannot store the sink's cursor: {e}");
                }
                self.acked.store(core.acked(), Ordering::Relaxed);
            }
        }
    }

    /// The records of `range` (fewer if `batch_bytes` is reached first), as a batch.
    async fn read(&self, range: std::ops::RangeInclusive<u64>) -> io::Result<Batch> {
        let dir = self.journal_dir.clone();
        let journal = self.journal;
        let limit = self.batch_bytes;
        let batch = tokio::task::spawn_blocking(move || {
            let mut reader = JournalReader::new(&dir, *range.start());
            let mut body = Vec::new();
            let mut to = *range.start() - 1;
            let mut oldest = None;
            while to < *range.end() && (body.len() as u64) < limit {
                let next = reader
                    .next(*range.end())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let Some(record) = next else { break };
                if oldest.is_none() {
                    oldest = Some(record::parse(&record).map(|e| e.at).unwrap_or_default());
                }
                body.extend_from_slice(&record);
                body.push(b'\n');
                to += 1;
            }
            if to < *range.start() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("record {} is not on disk", range.start()),
                ));
            }
            Ok(Batch {
                journal,
                from: *range.start(),
                to,
                first_at: oldest.unwrap_or_default(),
                body,
            })
        })
        .await
        .map_err(io::Error::other)??;
        if let Some(age) =
            record::parse_rfc3339_millis(&batch.first_at).and_then(|at| at.elapsed().ok())
        {
            self.counters
                .oldest_unacked_seconds
                .with_label_values(&[&self.name])
                .set(age.as_secs_f64());
        }
        Ok(batch)
    }

    /// Keeps a batch the sink refused for good in `dead-letter/SINK/`, for a person to look at.
    fn dead_letter(&self, batch: &Batch, why: &str) {
        let path = self
            .journal_dir
            .join("dead-letter")
            .join(&self.name)
            .join(batch.name());
        let kept = write_durably(&path, &batch.body);
        self.counters
            .dead_lettered
            .with_label_values(&[&self.name])
            .inc_by(batch.to - batch.from + 1);
        match kept {
            Ok(()) => tracing::error!(
                sink = %self.name,
                records = %format_args!("{}..{}", batch.from, batch.to),
                kept = %path.display(),
                "journal: the sink refused a batch for good ({why}); it is kept aside and the \
                 rest goes on"
            ),
            Err(e) => tracing::error!(
                sink = %self.name,
                "journal: the sink refused a batch for good ({why}) and it could not be kept \
                 aside ({e}); its records are still in the journal"
            ),
        }
    }
}
