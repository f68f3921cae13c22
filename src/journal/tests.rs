use std::path::Path;
use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use serde_json::json;

use super::reader::ReadError;
use super::record::{self, RecordType, GENESIS};
use super::segment::{self, Tail};
use super::writer::AppendError;
use super::{JournalReader, JournalWriter, Limits};

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_595_000 + secs)
}

fn small_segments() -> Limits {
    Limits {
        segment_bytes: 1024,
        max_bytes: 0,
    }
}

fn append_calls(writer: &mut JournalWriter, from: u64, count: u64) {
    for call in from..from + count {
        let data = json!({"call": format!("c{call}"), "caller": "+4930123456"});
        let seq = writer.append(at(call), RecordType::Cdr, &data).unwrap();
        assert_eq!(seq, call);
    }
}

/// Every record in the journal, read back from the first, with the chain checked.
fn read_all(dir: &Path) -> Vec<record::Envelope> {
    let mut reader = JournalReader::new(dir, 1);
    let mut prev = GENESIS;
    let mut out = Vec::new();
    while let Some(bytes) = reader.next(u64::MAX).unwrap() {
        segment::check_link(&bytes, out.len() as u64 + 1, &prev).unwrap();
        prev = record::hash(&bytes);
        out.push(record::parse(&bytes).unwrap());
    }
    out
}

#[test]
fn records_read_back_in_order_and_chained_across_segments_and_reopenings() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, recovery) = JournalWriter::open(dir.path(), small_segments()).unwrap();
    assert!(recovery.created);
    let journal = writer.journal();
    append_calls(&mut writer, 1, 30);
    writer.sync().unwrap();
    assert_eq!(writer.synced_seq(), 30);
    drop(writer);

    let (mut writer, recovery) = JournalWriter::open(dir.path(), small_segments()).unwrap();
    assert!(!recovery.created);
    assert_eq!((recovery.last_seq, recovery.cut), (30, None));
    assert_eq!(writer.journal(), journal, "the same journal goes on");
    append_calls(&mut writer, 31, 10);

    let segments = segment::list(dir.path()).unwrap();
    assert!(segments.len() > 5, "1 KiB segments: {segments:?}");
    let records = read_all(dir.path());
    assert_eq!(records.len(), 40);
    assert_eq!(records[39].key, format!("{journal}:40"));
    let on_disk: u64 = segments
        .iter()
        .map(|(_, p)| std::fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(writer.bytes_on_disk(), on_disk);
}

#[test]
fn a_reader_stops_at_what_it_is_allowed_and_at_a_record_still_being_written() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) = JournalWriter::open(dir.path(), Limits::default()).unwrap();
    append_calls(&mut writer, 1, 3);
    let mut reader = JournalReader::new(dir.path(), 2);
    assert!(
        reader.next(1).unwrap().is_none(),
        "only up to what was synced"
    );
    assert_eq!(
        record::parse(&reader.next(3).unwrap().unwrap())
            .unwrap()
            .seq,
        2
    );
    assert_eq!(
        record::parse(&reader.next(3).unwrap().unwrap())
            .unwrap()
            .seq,
        3
    );
    assert!(reader.next(u64::MAX).unwrap().is_none());

    // Half a frame at the end, as a reader may see while the writer's write is under way.
    let (_, path) = segment::list(dir.path()).unwrap().pop().unwrap();
    let whole = std::fs::read(&path).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut file, &[40, 0, 0, 0, 1, 2]).unwrap();
    assert!(reader.next(u64::MAX).unwrap().is_none());
    file.set_len(whole.len() as u64).unwrap();
    append_calls(&mut writer, 4, 1);
    assert_eq!(
        record::parse(&reader.next(u64::MAX).unwrap().unwrap())
            .unwrap()
            .seq,
        4
    );
}

#[test]
fn at_max_bytes_a_record_is_refused_whole_and_its_number_stays_free() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        segment_bytes: 1024,
        max_bytes: 2048,
    };
    let (mut writer, _) = JournalWriter::open(dir.path(), limits).unwrap();
    let data = json!({"call": "c1", "caller": "+4930123456"});
    let mut written = 0;
    let err = loop {
        match writer.append(at(written), RecordType::Cdr, &data) {
            Ok(_) => written += 1,
            Err(e) => break e,
        }
    };
    assert!(
        matches!(err, AppendError::Full { max_bytes: 2048 }),
        "{err}"
    );
    assert!(writer.bytes_on_disk() <= 2048);
    assert_eq!(writer.written_seq(), written);

    // Room made by removing what every sink acknowledged: the refused record goes in next.
    let freed = writer.remove_through(written).unwrap();
    assert!(freed > 0);
    assert_eq!(
        writer.append(at(99), RecordType::Cdr, &data).unwrap(),
        written + 1
    );
    match JournalReader::new(dir.path(), 1).next(u64::MAX) {
        Err(ReadError::Removed { wanted: 1, oldest }) => assert!(oldest > 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn removing_acknowledged_records_keeps_every_segment_holding_one_that_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) = JournalWriter::open(dir.path(), small_segments()).unwrap();
    append_calls(&mut writer, 1, 40);
    let before = segment::list(dir.path()).unwrap();
    writer.remove_through(20).unwrap();
    let after = segment::list(dir.path()).unwrap();
    assert!(after.len() < before.len());
    let oldest_kept = after[0].0;
    assert!(oldest_kept <= 21, "record 21 is kept: {after:?}");
    let mut reader = JournalReader::new(dir.path(), 21);
    assert_eq!(
        record::parse(&reader.next(40).unwrap().unwrap())
            .unwrap()
            .seq,
        21
    );
    writer.remove_through(u64::MAX).unwrap();
    assert_eq!(
        segment::list(dir.path()).unwrap().len(),
        1,
        "the open segment stays"
    );
    append_calls(&mut writer, 41, 1);
}

#[test]
fn zeros_after_the_last_record_are_cut_like_a_torn_write() {
    // What some filesystems leave after power loss: the file's length grew, its data did not.
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _) = JournalWriter::open(dir.path(), Limits::default()).unwrap();
    append_calls(&mut writer, 1, 3);
    drop(writer);
    let (_, path) = segment::list(dir.path()).unwrap().pop().unwrap();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut file, &[0; 4096]).unwrap();
    let (mut writer, recovery) = JournalWriter::open(dir.path(), Limits::default()).unwrap();
    assert_eq!(recovery.last_seq, 3);
    let (bytes, aside) = recovery.cut.unwrap();
    assert_eq!(bytes, 4096);
    assert_eq!(
        std::fs::read(aside).unwrap(),
        vec![0; 4096],
        "set aside, not thrown away"
    );
    append_calls(&mut writer, 4, 1);
    assert_eq!(read_all(dir.path()).len(), 4);
}

#[test]
fn a_journal_from_another_gateway_mixed_in_is_refused_by_name() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let (mut a, _) = JournalWriter::open(first.path(), small_segments()).unwrap();
    append_calls(&mut a, 1, 20);
    let (mut b, _) = JournalWriter::open(second.path(), small_segments()).unwrap();
    append_calls(&mut b, 1, 40);
    let (_, newest_b) = segment::list(second.path()).unwrap().pop().unwrap();
    let stray = first.path().join(newest_b.file_name().unwrap());
    std::fs::copy(&newest_b, &stray).unwrap();
    drop(a);
    let err = JournalWriter::open(first.path(), small_segments())
        .err()
        .unwrap();
    assert!(err.to_string().contains("belongs to journal"), "{err}");
}

/// Where the last frame of a segment's bytes begins.
fn last_frame_start(segment_bytes: &[u8]) -> usize {
    segment::frames(segment_bytes)
        .last()
        .map_or(segment::HEADER_LEN, |(at, _)| at)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    /// Power loss in the middle of the last write: wherever the cut falls inside the last
    /// record (every byte of it is tried), the journal opens with every record before it, sets
    /// the piece aside, and the next record follows the last whole one.
    #[test]
    fn a_tail_cut_at_any_byte_of_the_last_record_is_recovered(
        records in 1u64..12,
        note in "[a-z ]{0,80}",
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (mut writer, _) = JournalWriter::open(dir.path(), Limits::default()).unwrap();
        for seq in 1..=records {
            writer.append(at(seq), RecordType::CallEvent, &json!({"seq": seq, "note": note})).unwrap();
        }
        drop(writer);
        let (_, path) = segment::list(dir.path()).unwrap().pop().unwrap();
        let whole = std::fs::read(&path).unwrap();
        let scan = segment::scan(&whole).unwrap();
        prop_assert_eq!((scan.records, scan.valid_len), (records, whole.len()));
        let last_start = last_frame_start(&whole);

        for cut in last_start..whole.len() {
            std::fs::write(&path, &whole[..cut]).unwrap();
            let (mut writer, recovery) = JournalWriter::open(dir.path(), Limits::default()).unwrap();
            prop_assert_eq!(recovery.last_seq, records - 1);
            let cut_bytes = (cut - last_start) as u64;
            prop_assert_eq!(recovery.cut.as_ref().map(|(n, _)| *n), (cut_bytes > 0).then_some(cut_bytes));
            writer.append(at(99), RecordType::CallEvent, &json!({"after": "restart"})).unwrap();
            drop(writer);
            let all = read_all(dir.path());
            prop_assert_eq!(all.len() as u64, records);
            prop_assert_eq!(all.last().unwrap().seq, records);
        }
    }

    /// Whatever bytes a segment holds, reading it never panics, and what it accepts is whole.
    #[test]
    fn any_bytes_after_a_header_scan_without_panicking(tail in proptest::collection::vec(any::<u8>(), 0..600)) {
        let header = segment::Header { journal: record::JournalId([7; 16]), first_seq: 1, prev: GENESIS };
        let mut bytes = header.encode().to_vec();
        bytes.extend_from_slice(&tail);
        let scan = segment::scan(&bytes).unwrap();
        prop_assert!(scan.valid_len <= bytes.len());
        if scan.valid_len < bytes.len() {
            prop_assert_ne!(scan.tail, Tail::Clean);
        }
    }
}
