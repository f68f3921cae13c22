//! What the call journal costs: appending a record, a group commit's fsync, and opening a
//! journal of a gigabyte after a crash (its newest segment scanned, the replay since the last
//! checkpoint). The journal lives in a temporary directory on the machine's own disk
//! (`TMPDIR`; point it at the disk the gateway's state_dir is on to measure that disk).
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use trunkgate::journal::recovery::{self, CHECKPOINT_EVERY};
use trunkgate::journal::{JournalWriter, Limits, RecordType};

/// A call event as the recorder makes one (`queued`), the commonest kind of record.
fn event(n: u64) -> Value {
    json!({"call": format!("5f0c1a2b-{n}"), "event": "queued", "queue": "support", "position": 3})
}

fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) = JournalWriter::open(dir.path(), Limits::default()).unwrap();
    let mut n = 0;
    c.bench_function("journal_append", |b| {
        b.iter(|| {
            n += 1;
            black_box(writer.append(SystemTime::now(), RecordType::CallEvent, &event(n)))
        })
    });
    // The default group commit: 256 records, then fdatasync. Per record.
    c.bench_function("journal_append_group_commit_256", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for i in 0..iters {
                n += 1;
                let _ = writer.append(SystemTime::now(), RecordType::CallEvent, &event(n));
                if i % 256 == 255 {
                    writer.sync().unwrap();
                }
            }
            writer.sync().unwrap();
            started.elapsed()
        })
    });
    c.bench_function("journal_fsync_one_record", |b| {
        b.iter(|| {
            n += 1;
            let _ = writer.append(SystemTime::now(), RecordType::CallEvent, &event(n));
            writer.sync().unwrap();
        })
    });
}

/// Opening a journal of about 1 GB (128 segments of 8 MiB), as after a kill -9, with a
/// checkpoint every 10,000 records like the daemon writes.
fn open_a_gigabyte(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut writer, _) = JournalWriter::open(dir.path(), Limits::default()).unwrap();
        let mut n = 0u64;
        while writer.bytes_on_disk() < 1 << 30 {
            n += 1;
            let kind = if n.is_multiple_of(CHECKPOINT_EVERY) {
                RecordType::Checkpoint
            } else {
                RecordType::CallEvent
            };
            let data = if kind == RecordType::Checkpoint {
                json!({"run": "5f0c1a2b", "calls": [], "wrapping": {}, "agents": {}})
            } else {
                event(n)
            };
            writer.append(SystemTime::now(), kind, &data).unwrap();
        }
        writer.sync().unwrap();
    }
    let mut group = c.benchmark_group("journal_open_1gb");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("open_and_recover", |b| {
        b.iter(|| {
            let opened = JournalWriter::open(dir.path(), Limits::default()).unwrap();
            let recovered = recovery::recover(dir.path(), Default::default()).unwrap();
            black_box((opened, recovered))
        })
    });
    group.finish();
}

criterion_group!(benches, append, open_a_gigabyte);
criterion_main!(benches);
