//! The journal's thread: events from the bus's lossless feed become records ([`Recorder`]),
//! appended at once ([`JournalWriter`]) and synced by group commit.
//!
//! A thread of its own with a single-threaded runtime: appends and fsyncs block, and must
//! never hold up a call's task. What survives what:
//! - a record is written (`write(2)`) as soon as its event is read: from then on it survives
//!   the process being killed, since the kernel has it;
//! - it survives power loss once synced: at most `sync_interval_ms` later, or sooner when
//!   `sync_records` wait. Only synced records are shipped to sinks.
//!
//! When a record cannot be written (a full disk, `max_bytes` reached with nothing
//! acknowledged to remove), calls go on: the record waits in memory with the ones after it,
//! the error is logged once a minute, and every second the journal tries again. Past
//! `max_pending_records` the oldest waiting records are given up, and once writing works again
//! a `lost` record says how many and from when to when: a gap the cloud can see.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use tokio::sync::watch;

use super::config::JournalConfig;
use super::record::rfc3339_millis;
use super::record::JournalId;
use super::recorder::{Output, Recorder};
use super::recovery::{self, CHECKPOINT_EVERY};
use super::ship;
use super::writer::{AppendError, OpenError};
use super::{JournalWriter, Limits, RecordType};
use crate::events::{Event, LosslessFeed};

/// Journal counters for ops (Prometheus types; made and registered by `ops::metrics`).
#[derive(Clone)]
pub struct JournalCounters {
    /// By record `type`.
    pub records: prometheus::IntCounterVec,
    pub fsync_seconds: prometheus::Histogram,
    pub bytes: prometheus::IntGauge,
    pub pending: prometheus::IntGauge,
    pub write_errors: prometheus::IntCounter,
    pub lost: prometheus::IntCounter,
}

/// What the journal has done so far, for the uploader and ops.
#[derive(Debug, Default)]
pub struct JournalProgress {
    /// The last record synced (safe from power loss): what sinks may be sent.
    pub synced: AtomicU64,
}

pub struct JournalThread {
    pub dir: PathBuf,
    pub journal: JournalId,
    pub progress: Arc<JournalProgress>,
    /// Each configured sink's name and the last record it acknowledged (its stored cursor at
    /// start), which its shipper moves and the journal's retention reads.
    pub sink_acked: Vec<(String, Arc<AtomicU64>)>,
    stop: CancellationToken,
    thread: JoinHandle<()>,
}

/// Each queue's answer-time target, by queue: what `within_service_level` is judged against.
pub type ServiceLevels = std::collections::BTreeMap<String, Duration>;

/// How often waiting records are retried and a wrap-up's CDR is looked at.
const TICK: Duration = Duration::from_secs(1);
/// A failing write is logged at most this often.
const ERROR_LOG_EVERY: Duration = Duration::from_secs(60);

impl JournalThread {
    /// Opens (or creates) the journal in `dir`, recovering a torn tail, and starts its thread
    /// on `feed`. `run`: this daemon run's id, which prefixes its call ids in records.
    pub fn start(
        dir: &Path,
        config: &JournalConfig,
        service_levels: watch::Receiver<ServiceLevels>,
        run: &str,
        feed: LosslessFeed,
        counters: JournalCounters,
    ) -> Result<Self, OpenError> {
        let levels = service_levels.borrow().clone();
        let sinks: Vec<&str> = config.sinks.iter().map(|s| s.name.as_str()).collect();
        let limits = Limits {
            segment_bytes: config.segment_bytes,
            max_bytes: config.max_bytes,
        };
        let (writer, recovery) = JournalWriter::open(dir, limits)?;
        if let (Some((bytes, aside)), Some(why)) = (&recovery.cut, &recovery.cut_because) {
            tracing::warn!(
                bytes,
                aside = %aside.display(),
                "journal: cut an unreadable tail from the newest segment ({why}); the bytes are kept aside"
            );
        }
        tracing::info!(
            dir = %dir.display(),
            journal = %writer.journal(),
            last_seq = recovery.last_seq,
            run,
            "journal open"
        );
        let progress = Arc::new(JournalProgress::default());
        progress
            .synced
            .store(writer.synced_seq(), Ordering::Relaxed);
        counters.bytes.set(writer.bytes_on_disk() as i64);
        let journal_id = writer.journal();
        let sink_acked: Vec<(String, Arc<AtomicU64>)> = sinks
            .iter()
            .map(|name| {
                let acked = ship::load_cursor(dir, name, journal_id);
                (name.to_string(), Arc::new(AtomicU64::new(acked)))
            })
            .collect();
        let stop = CancellationToken::new();
        let recovered = recovery::recover(dir, levels.clone()).map_err(|source| OpenError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        if recovered.closed_calls > 0 || !recovered.outputs.is_empty() {
            tracing::warn!(
                calls = recovered.closed_calls,
                records = recovered.outputs.len(),
                replayed = recovered.replayed,
                "journal: the last run stopped with calls in progress; they are recorded as ended \
                 by the restart"
            );
        }
        let mut journal = Journal::new(
            writer,
            Recorder::new(run, levels),
            config.clone(),
            counters,
            progress.clone(),
            sink_acked.iter().map(|(_, a)| a.clone()).collect(),
        );
        for out in recovered.outputs {
            journal.push(out);
        }
        // The replay after the next crash starts here.
        journal.checkpoint();
        journal.sync();
        let thread = std::thread::Builder::new()
            .name("journal".into())
            .spawn({
                let stop = stop.clone();
                move || journal.run(feed, service_levels, stop)
            })
            .map_err(|source| OpenError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            journal: journal_id,
            sink_acked,
            progress,
            stop,
            thread,
        })
    }

    /// Writes what the feed still holds and the CDRs waiting for a wrap-up, syncs, and ends
    /// the thread. Call it once nothing publishes any more.
    pub fn finish(self) {
        self.stop.cancel();
        if self.thread.join().is_err() {
            tracing::error!("journal: its thread panicked");
        }
    }
}

struct Journal {
    writer: JournalWriter,
    recorder: Recorder,
    config: JournalConfig,
    counters: JournalCounters,
    progress: Arc<JournalProgress>,
    /// Records that could not be written yet, oldest first.
    pending: VecDeque<Output>,
    unsynced: u64,
    unsynced_since: Option<Instant>,
    /// Records given up since writing last worked: how many, the first's and last's time.
    given_up: Option<(u64, SystemTime, SystemTime)>,
    last_error_log: Option<Instant>,
    /// Records written since the last checkpoint.
    since_checkpoint: u64,
    /// What each sink has acknowledged.
    sink_acked: Vec<Arc<AtomicU64>>,
}

impl Journal {
    fn new(
        writer: JournalWriter,
        recorder: Recorder,
        config: JournalConfig,
        counters: JournalCounters,
        progress: Arc<JournalProgress>,
        sink_acked: Vec<Arc<AtomicU64>>,
    ) -> Self {
        Self {
            writer,
            recorder,
            config,
            counters,
            progress,
            pending: VecDeque::new(),
            unsynced: 0,
            unsynced_since: None,
            given_up: None,
            last_error_log: None,
            since_checkpoint: 0,
            sink_acked,
        }
    }

    fn run(
        mut self,
        mut feed: LosslessFeed,
        mut levels: watch::Receiver<ServiceLevels>,
        stop: CancellationToken,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build();
        let runtime = match runtime {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("journal: cannot start its runtime: {e}; nothing is journaled");
                return;
            }
        };
        runtime.block_on(async {
            let mut tick = tokio::time::interval(TICK);
            let mut reloads = true;
            loop {
                // With nothing to sync, a deadline that never comes first.
                let sync_at = self
                    .sync_due()
                    .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
                tokio::select! {
                    biased;
                    event = feed.recv() => match event {
                        Some(event) => self.on_event(&event),
                        None => break,
                    },
                    _ = tokio::time::sleep_until(sync_at.into()) => self.sync(),
                    _ = tick.tick() => self.tick(SystemTime::now()),
                    changed = levels.changed(), if reloads => match changed {
                        Ok(()) => {
                            let levels = levels.borrow_and_update().clone();
                            self.recorder.set_service_levels(levels);
                        }
                        // The daemon no longer reloads (it is stopping).
                        Err(_) => reloads = false,
                    },
                    _ = stop.cancelled() => break,
                }
            }
        });
        while let Some(event) = feed.try_recv() {
            self.on_event(&event);
        }
        let flushed = self.recorder.flush(SystemTime::now());
        for out in flushed {
            self.push(out);
        }
        self.sync();
        if !self.pending.is_empty() {
            tracing::error!(
                records = self.pending.len(),
                "journal: stopping with records that could not be written"
            );
        }
    }

    /// Records the recorder's state, where a replay after a crash starts.
    fn checkpoint(&mut self) {
        let out = Output {
            at: SystemTime::now(),
            kind: RecordType::Checkpoint,
            data: self.recorder.checkpoint(),
        };
        self.pending.push_back(out);
        self.write_pending();
        self.since_checkpoint = 0;
    }

    fn on_event(&mut self, event: &Event) {
        for out in self.recorder.record(event) {
            self.push(out);
        }
    }

    fn tick(&mut self, now: SystemTime) {
        for out in self.recorder.expire(now) {
            self.push(out);
        }
        if let Some(acked) = self.acked_by_every_sink() {
            let retention = Duration::from_secs(self.config.retention_hours.saturating_mul(3600));
            let before = now.checked_sub(retention);
            if let Err(e) = self.writer.remove_through_older_than(acked, before) {
                tracing::warn!("journal: cannot remove acknowledged segments: {e}");
            }
        }
        self.write_pending();
        self.counters.bytes.set(self.writer.bytes_on_disk() as i64);
    }

    /// Writes `out` after whatever is still waiting.
    fn push(&mut self, out: Output) {
        self.pending.push_back(out);
        self.write_pending();
        if self.since_checkpoint >= CHECKPOINT_EVERY {
            self.checkpoint();
        }
        while self.pending.len() > self.config.max_pending_records {
            if let Some(old) = self.pending.pop_front() {
                self.counters.lost.inc();
                let (n, first, _) = self.given_up.unwrap_or((0, old.at, old.at));
                self.given_up = Some((n + 1, first, old.at));
            }
        }
        self.counters.pending.set(self.pending.len() as i64);
    }

    fn write_pending(&mut self) {
        if let Some((records, first, last)) = self.given_up {
            let lost = Output {
                at: SystemTime::now(),
                kind: RecordType::Lost,
                data: json!({
                    "records": records,
                    "first_at": rfc3339_millis(first),
                    "last_at": rfc3339_millis(last),
                    "why": "they could not be written and too many waited in memory",
                }),
            };
            if !self.write(&lost) {
                return;
            }
            self.given_up = None;
        }
        while let Some(out) = self.pending.front() {
            let out = out.clone();
            if !self.write(&out) {
                break;
            }
            self.pending.pop_front();
        }
        self.counters.pending.set(self.pending.len() as i64);
    }

    /// The last record every sink has acknowledged; `None` without sinks.
    fn acked_by_every_sink(&self) -> Option<u64> {
        self.sink_acked
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .min()
    }

    /// Makes room when the journal is at `max_bytes`: segments every sink acknowledged go,
    /// whatever their age; without sinks, the oldest segment (the journal is then all there
    /// is, kept as a ring of `max_bytes`). `true` if anything was freed.
    fn make_room(&mut self) -> bool {
        let through = match self.acked_by_every_sink() {
            Some(acked) => Some(acked),
            None => self.writer.oldest_segment_end().ok().flatten(),
        };
        let freed = through.map(|seq| self.writer.remove_through(seq));
        matches!(freed, Some(Ok(n)) if n > 0)
    }

    /// Appends one record; `false` (logged, counted) if it could not be.
    fn write(&mut self, out: &Output) -> bool {
        let mut appended = self.writer.append(out.at, out.kind, &out.data);
        if matches!(appended, Err(AppendError::Full { .. })) && self.make_room() {
            appended = self.writer.append(out.at, out.kind, &out.data);
        }
        match appended {
            Ok(_) => {
                self.counters
                    .records
                    .with_label_values(&[out.kind.name()])
                    .inc();
                self.since_checkpoint += 1;
                self.unsynced += 1;
                self.unsynced_since.get_or_insert_with(Instant::now);
                if self.unsynced >= self.config.sync_records {
                    self.sync();
                }
                true
            }
            Err(e) => {
                self.counters.write_errors.inc();
                self.log_error(&e);
                false
            }
        }
    }

    fn log_error(&mut self, e: &AppendError) {
        let quiet = matches!(self.last_error_log, Some(at) if at.elapsed() < ERROR_LOG_EVERY);
        if !quiet {
            self.last_error_log = Some(Instant::now());
            tracing::error!(
                waiting = self.pending.len(),
                "journal: cannot write records: {e}; calls go on, records wait in memory and are \
                 retried every second"
            );
        }
    }

    fn sync_due(&self) -> Option<Instant> {
        self.unsynced_since
            .map(|since| since + self.config.sync_interval())
    }

    fn sync(&mut self) {
        if self.unsynced == 0 {
            return;
        }
        let started = Instant::now();
        match self.writer.sync() {
            Ok(()) => {
                self.counters
                    .fsync_seconds
                    .observe(started.elapsed().as_secs_f64());
                self.progress
                    .synced
                    .store(self.writer.synced_seq(), Ordering::Relaxed);
                self.unsynced = 0;
                self.unsynced_since = None;
            }
            Err(e) => {
                self.counters.write_errors.inc();
                // Retried at the next interval; the records are written, not yet synced.
                self.unsynced_since = Some(Instant::now());
                tracing::error!("journal: cannot sync to disk: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests;
