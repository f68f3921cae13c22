//! Shipping finished recordings to the journal's object sinks (`file`, `s3`; an `http` sink
//! takes records only) with the journal's guarantees: a recording leaves its directory only
//! once every object sink has it, and it is only ever written under one name per sink
//! (`recordings/NAME`), so a retry or a restart after kill -9 overwrites rather than
//! duplicates.
//!
//! What each sink has is kept as an empty marker file, `sent/SINK/NAME`, written durably after
//! the sink acknowledged; once every sink has one, the recording and its markers go. Without
//! an object sink, recordings stay `[recording] retention_hours`.
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use super::store::EXTENSION;
use crate::journal::config::{SinkConfig, SinkType};
use crate::journal::s3_sink::S3Sink;
use crate::journal::writer::write_durably;

/// Counters for ops (made and registered by `ops::metrics`).
#[derive(Clone)]
pub struct UploadCounters {
    /// By `sink` and `result` (`acknowledged`, `retry`).
    pub uploads: prometheus::IntCounterVec,
    /// Recordings on disk that some sink does not have yet.
    pub pending: prometheus::IntGauge,
}

/// Where one sink keeps recordings.
pub enum ObjectSink {
    /// `DIR/recordings/NAME`.
    File { dir: PathBuf },
    /// `PREFIX/GATEWAY/recordings/NAME`.
    S3(Arc<S3Sink>),
}

impl ObjectSink {
    /// The sinks of `[journal]` that take objects, by name; the error names the one that
    /// could not be set up.
    pub fn from_config(
        sinks: &[SinkConfig],
        base_dir: &Path,
    ) -> Result<Vec<(String, ObjectSink)>, String> {
        let mut out = Vec::new();
        for s in sinks {
            let sink = match s.kind {
                SinkType::File => ObjectSink::File {
                    dir: base_dir.join(s.dir.clone().unwrap_or_default()),
                },
                SinkType::S3 => ObjectSink::S3(Arc::new(
                    S3Sink::new(s, base_dir).map_err(|e| format!("sink {}: {e}", s.name))?,
                )),
                SinkType::Http => continue,
            };
            out.push((s.name.clone(), sink));
        }
        Ok(out)
    }

    /// Stores `path` as `name`. Blocking.
    fn put(&self, name: &str, path: &Path) -> Result<(), String> {
        let body = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        match self {
            ObjectSink::File { dir } => {
                write_durably(&dir.join("recordings").join(name), &body).map_err(|e| e.to_string())
            }
            ObjectSink::S3(s3) => s3.put_recording(name, &body),
        }
    }
}

/// The first retry after a failure; doubled each time up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How often the directory is looked at when nothing wakes the uploader.
const SCAN_EVERY: Duration = Duration::from_secs(5);

pub struct Uploader {
    pub dir: PathBuf,
    pub sinks: Vec<(String, ObjectSink)>,
    pub retention: Duration,
    pub finished: Arc<tokio::sync::Notify>,
    pub counters: UploadCounters,
}

/// A sink that failed: when to try it again, and how long the wait after that will be.
struct Backoff {
    retry_at: Instant,
    next: Duration,
}

impl Uploader {
    pub async fn run(self, stop: CancellationToken) {
        let this = Arc::new(self);
        let mut backoff: HashMap<String, Backoff> = HashMap::new();
        loop {
            let pass = this.clone();
            let now = Instant::now();
            let waiting: Vec<String> = backoff
                .iter()
                .filter(|(_, b)| b.retry_at > now)
                .map(|(name, _)| name.clone())
                .collect();
            let failed = tokio::select! {
                done = tokio::task::spawn_blocking(move || pass.pass(&waiting)) => done,
                _ = stop.cancelled() => return,
            };
            let failed = failed.unwrap_or_else(|e| {
                tracing::error!("recordings: the upload pass failed: {e}");
                Vec::new()
            });
            let now = Instant::now();
            for (sink, _) in &this.sinks {
                if failed.contains(sink) {
                    let b = backoff.entry(sink.clone()).or_insert(Backoff {
                        retry_at: now,
                        next: FIRST_BACKOFF,
                    });
                    if b.retry_at <= now {
                        b.retry_at = now + b.next;
                        b.next = (b.next * 2).min(MAX_BACKOFF);
                    }
                } else if backoff.get(sink).is_some_and(|b| b.retry_at <= now) {
                    backoff.remove(sink);
                    tracing::info!(%sink, "recordings: the sink takes recordings again");
                }
            }
            let wake = backoff
                .values()
                .map(|b| b.retry_at)
                .filter(|at| *at > now)
                .min()
                .map_or(SCAN_EVERY, |at| (at - now).min(SCAN_EVERY));
            tokio::select! {
                _ = tokio::time::sleep(wake) => {}
                _ = this.finished.notified() => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    /// One look at the directory: every finished recording to every sink (but those in
    /// `skip`, backing off) that lacks it; the ones every sink has removed. Returns the sinks
    /// that failed.
    fn pass(&self, skip: &[String]) -> Vec<String> {
        let mut failed: Vec<String> = Vec::new();
        let names = match finished_recordings(&self.dir) {
            Ok(names) => names,
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), "recordings: cannot list: {e}");
                return failed;
            }
        };
        let mut pending = 0;
        for name in names {
            let path = self.dir.join(&name);
            let mut complete = true;
            for (sink, object_sink) in &self.sinks {
                let marker = self.marker(sink, &name);
                if marker.exists() {
                    continue;
                }
                if skip.contains(sink) || failed.contains(sink) {
                    complete = false;
                    continue;
                }
                match object_sink.put(&name, &path) {
                    Ok(()) => {
                        self.count(sink, "acknowledged");
                        if let Err(e) = write_durably(&marker, b"") {
                            tracing::error!(%sink, %name, "recordings: cannot note the upload: {e}");
                            complete = false;
                        }
                    }
                    Err(why) => {
                        self.count(sink, "retry");
                        tracing::warn!(%sink, %name, "recordings: the sink did not take a recording ({why}); retrying with backoff");
                        failed.push(sink.clone());
                        complete = false;
                    }
                }
            }
            let expired = self.sinks.is_empty() && self.older_than_retention(&path);
            if (complete && !self.sinks.is_empty()) || expired {
                if let Err(e) = self.remove(&name) {
                    tracing::error!(%name, "recordings: cannot remove a shipped recording: {e}");
                }
            } else {
                pending += 1;
            }
        }
        self.counters.pending.set(pending);
        failed
    }

    fn marker(&self, sink: &str, name: &str) -> PathBuf {
        self.dir.join("sent").join(sink).join(name)
    }

    fn count(&self, sink: &str, result: &str) {
        self.counters
            .uploads
            .with_label_values(&[sink, result])
            .inc();
    }

    fn older_than_retention(&self, path: &Path) -> bool {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|at| SystemTime::now().duration_since(at).ok())
            .is_some_and(|age| age >= self.retention)
    }

    /// The recording first (a crash between leaves markers without it, harmless), then its
    /// markers.
    fn remove(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.dir.join(name))?;
        for (sink, _) in &self.sinks {
            match std::fs::remove_file(self.marker(sink, name)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        tracing::debug!(%name, "recordings: every sink has it; removed here");
        Ok(())
    }
}

/// The finished recordings in `dir`, oldest name first.
pub fn finished_recordings(dir: &Path) -> io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(EXTENSION) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}
