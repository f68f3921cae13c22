//! The journal's s3 sink against a real S3-compatible server the test starts (npm `s3rver`,
//! objects on disk): batches arrive as zstd NDJSON objects under deterministic keys, the
//! server is killed mid-run and started again, and `trunkgate journal verify s3://…` reads the
//! bucket back whole.
use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;
use trunkgate_integration::journal::{ivr_calls, journal_config, records, verify_s3};
use trunkgate_integration::s3::{s3rver_objects, S3rver, S3RVER_KEY, S3RVER_SECRET};
use trunkgate_integration::{Gateway, TestConfig};

const BACKLOG: &str = r#"trunkgate_journal_sink_backlog_records{sink="cloud"}"#;

#[test]
fn an_s3_sink_gets_every_record_once_through_a_restart_of_the_store() {
    let data = tempfile::tempdir().unwrap();
    let journal = tempfile::tempdir().unwrap();
    let mut store = S3rver::start(data.path(), "journal");
    let secret_file = journal.path().join("s3-secret");
    std::fs::write(&secret_file, format!("{S3RVER_SECRET}\n")).unwrap();
    let config = TestConfig {
        extra: format!(
            "{}\n[[journal.sink]]\nname = \"cloud\"\ntype = \"s3\"\nendpoint = {:?}\n\
             bucket = \"journal\"\nprefix = \"trunkgate\"\ngateway = \"branch-17\"\n\
             access_key_id = {S3RVER_KEY:?}\nsecret_access_key_file = {:?}\n\
             timeout_ms = 2000\nbatch_records = 4\nbatch_age_ms = 100\n",
            journal_config(journal.path()),
            store.endpoint(),
            secret_file.to_string_lossy(),
        ),
        ..TestConfig::default()
    }
    .to_toml();
    let gw = Gateway::start(&config);
    ivr_calls(&gw, 3);
    let backlog = gw.wait_for_metric(BACKLOG, Duration::from_secs(20), |v| v == 0.0);
    assert_eq!(backlog, Some(0.0), "the first calls' records are stored");
    let before_outage = s3rver_objects(data.path(), "journal").len();
    assert!(before_outage > 0);

    // The store goes away while calls go on: the records wait in the journal.
    store.stop();
    ivr_calls(&gw, 3);
    let retries = gw.wait_for_metric(
        r#"trunkgate_journal_sink_batches_total{result="retry",sink="cloud"}"#,
        Duration::from_secs(10),
        |v| v >= 2.0,
    );
    assert!(retries >= Some(2.0), "{retries:?}");
    let backlog = gw.wait_for_metric(BACKLOG, Duration::from_secs(1), |v| v > 10.0);
    assert!(backlog > Some(10.0), "{backlog:?}");
    gw.expect_line("did not take a batch", Duration::from_secs(1));

    // It comes back with what it had: the backlog drains (after a backoff of some seconds).
    store.resume();
    let backlog = gw.wait_for_metric(BACKLOG, Duration::from_secs(60), |v| v == 0.0);
    assert_eq!(
        backlog,
        Some(0.0),
        "the backlog drains once the store is back"
    );
    gw.expect_line("takes records again", Duration::from_secs(1));
    assert!(
        !gw.log_lines()
            .iter()
            .any(|l| l.contains(S3RVER_SECRET) && !l.contains(S3RVER_KEY)),
        "the secret is never logged"
    );
    gw.stop().expect("a clean stop");

    // Every object is named by its records and dated by the first; each decompresses to
    // NDJSON records.
    let objects = s3rver_objects(data.path(), "journal");
    assert!(objects.len() > before_outage);
    let mut shipped = Vec::new();
    for (key, bytes) in &objects {
        let parts: Vec<&str> = key.split('/').collect();
        assert_eq!(parts.len(), 6, "{key}");
        assert_eq!(&parts[..2], ["trunkgate", "branch-17"], "{key}");
        assert!(
            parts[2].len() == 4 && parts[3].len() == 2 && parts[4].len() == 2,
            "{key}"
        );
        let name = parts[5].strip_suffix(".ndjson.zst").expect(key);
        let fields: Vec<&str> = name.split('-').collect();
        assert_eq!(fields.len(), 3, "{key}");
        let (from, to): (u64, u64) = (fields[0].parse().unwrap(), fields[1].parse().unwrap());
        let body = zstd::stream::decode_all(&bytes[..]).expect("a zstd object");
        let batch: Vec<Value> = String::from_utf8(body)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(batch.first().unwrap()["seq"], from, "{key}");
        assert_eq!(batch.last().unwrap()["seq"], to, "{key}");
        assert!(
            batch[0]["at"].as_str().unwrap()[..10] == parts[2..5].join("-"),
            "{key}"
        );
        shipped.push((from, batch));
    }
    // In the order of their records, once each after dedup by key, nothing missing.
    shipped.sort_by_key(|(from, _)| *from);
    let mut seen = HashSet::new();
    let arrived: Vec<Value> = shipped
        .into_iter()
        .flat_map(|(_, batch)| batch)
        .filter(|r| seen.insert(r["key"].as_str().unwrap().to_string()))
        .collect();
    let last = arrived.last().unwrap()["seq"].as_u64().unwrap();
    let kept: Vec<Value> = records(journal.path())
        .into_iter()
        .filter(|r| r["seq"].as_u64().unwrap() <= last)
        .collect();
    assert_eq!(arrived, kept, "every record, in order, as written");
    assert_eq!(
        arrived.iter().filter(|r| r["type"] == "cdr").count(),
        6,
        "a CDR for each call"
    );

    // The operator's check reads the bucket itself.
    let url = "s3://journal/trunkgate/branch-17";
    let (whole, report) = verify_s3(url, &store.endpoint(), S3RVER_KEY, S3RVER_SECRET);
    assert!(whole, "{report}");
    assert!(
        report.contains(&format!("{} records read", objects_records(&objects))),
        "{report}"
    );
    let (whole, report) = verify_s3(url, &store.endpoint(), "WRONG", S3RVER_SECRET);
    assert!(!whole);
    assert!(report.contains("InvalidAccessKeyId"), "{report}");
    let (whole, report) = verify_s3(
        "s3://journal/nobody",
        &store.endpoint(),
        S3RVER_KEY,
        S3RVER_SECRET,
    );
    assert!(!whole, "nothing to verify is not a whole journal: {report}");
}

/// Records in all objects, retried copies included (what verify reads).
fn objects_records(objects: &[(String, Vec<u8>)]) -> usize {
    objects
        .iter()
        .map(|(_, bytes)| {
            let body = zstd::stream::decode_all(&bytes[..]).unwrap();
            body.split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count()
        })
        .sum()
}
