use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::journal::JournalReader;
use crate::ops::metrics::Metrics;

fn record(n: u64) -> Output {
    Output {
        at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_595_000 + n),
        kind: RecordType::CallEvent,
        data: json!({"call": format!("r1-{n}"), "event": "answered", "pad": "x".repeat(200)}),
    }
}

/// A journal that fills up at once (4 KiB) and keeps 5 records waiting at most, shipping to one
/// sink that has acknowledged nothing: nothing can be removed to make room.
fn full_journal(dir: &Path) -> (Journal, Arc<AtomicU64>, JournalCounters) {
    let limits = Limits {
        segment_bytes: 1024,
        max_bytes: 4096,
    };
    let (writer, _) = JournalWriter::open(dir, limits).unwrap();
    let config = JournalConfig {
        max_pending_records: 5,
        ..JournalConfig::default()
    };
    let counters = Metrics::new().journal.clone();
    let acked = Arc::new(AtomicU64::new(0));
    let journal = Journal::new(
        writer,
        Recorder::new("r1", BTreeMap::new()),
        config,
        counters.clone(),
        Arc::default(),
        vec![acked.clone()],
    );
    (journal, acked, counters)
}

#[test]
fn records_past_max_pending_are_given_up_and_a_lost_record_says_so_once_writing_works() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, acked, counters) = full_journal(dir.path());
    for n in 1..=20 {
        journal.push(record(n));
    }
    let written = journal.writer.written_seq();
    assert!(
        written < 20,
        "the journal filled up after {written} records"
    );
    assert_eq!(
        journal.pending.len(),
        5,
        "no more than max_pending_records wait"
    );
    assert_eq!(counters.pending.get(), 5);
    let given_up = 20 - written - 5;
    assert_eq!(counters.lost.get(), given_up);
    assert!(counters.write_errors.get() > 0);

    // The sink acknowledges what was written: room is made, the gap is said first, then the
    // rest.
    acked.store(written, Ordering::Relaxed);
    journal.tick(SystemTime::now());
    assert!(journal.pending.is_empty());
    assert_eq!(counters.pending.get(), 0);
    let mut reader = JournalReader::new(dir.path(), written + 1);
    let next = |reader: &mut JournalReader| {
        let bytes = reader.next(u64::MAX).unwrap().expect("a record");
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
    };
    let lost = next(&mut reader);
    assert_eq!(lost["type"], "lost");
    assert_eq!(lost["data"]["records"], given_up);
    assert_eq!(
        lost["data"]["first_at"],
        crate::journal::record::rfc3339_millis(record(written + 1).at)
    );
    let calls: Vec<String> = (0..5)
        .map(|_| {
            next(&mut reader)["data"]["call"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let kept: Vec<String> = (16..=20).map(|n| format!("r1-{n}")).collect();
    assert_eq!(calls, kept, "the newest five, in order");
}
