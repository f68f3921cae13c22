//! The journal's http sink against a real HTTP server process that misbehaves the way
//! collectors do (integration-tests/servers/http_collector.py): a 500, a 429 with Retry-After,
//! an answer slower than the sink's timeout, a connection reset mid-body, a 401 (retried: the
//! token is at fault, not the batch), a redirect (not followed, retried: nothing was stored),
//! and a 400 for one batch.
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;
use trunkgate_integration::journal::{ivr_calls, journal_config, records};
use trunkgate_integration::{repo_root, Gateway, TestConfig};

/// The collector process, stopped when dropped.
struct Collector {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Collector {
    fn start(dir: &Path, token: &str, plan: &str, reject_seq: u64) -> Collector {
        let script = repo_root().join("integration-tests/servers/http_collector.py");
        let child = Command::new("python3")
            .arg(script)
            .arg(dir)
            .arg(token)
            .arg(plan)
            .arg(reject_seq.to_string())
            .spawn()
            .expect("python3 runs the collector");
        let deadline = Instant::now() + Duration::from_secs(10);
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(dir.join("port")) {
                break text.trim().parse().expect("a port");
            }
            assert!(Instant::now() < deadline, "the collector did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        Collector {
            child,
            dir: dir.to_path_buf(),
            port,
        }
    }

    /// `ACTION KEY` per request, in order.
    fn requests(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(self.dir.join("requests.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let (action, key) = l.split_once(' ').unwrap();
                (action.to_string(), key.to_string())
            })
            .collect()
    }

    /// Every record it took, in the order it took them (a retried batch's twice).
    fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("records.ndjson"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_http_sink_retries_what_is_due_dead_letters_the_refused_batch_and_loses_nothing_else() {
    let collector_dir = tempfile::tempdir().unwrap();
    let journal = tempfile::tempdir().unwrap();
    let token = "s3cret-token";
    let token_file = journal.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let reject_seq = 12;
    let collector = Collector::start(
        collector_dir.path(),
        token,
        "500,429:1,slow:3,200,reset,401,301",
        reject_seq,
    );
    let config = TestConfig {
        extra: format!(
            "{}\n[[journal.sink]]\nname = \"cloud\"\ntype = \"http\"\n\
             url = \"http://127.0.0.1:{}/ingest\"\nbearer_token_file = {:?}\n\
             timeout_ms = 1000\nbatch_records = 4\nbatch_age_ms = 100\n",
            journal_config(journal.path()),
            collector.port,
            token_file.to_string_lossy(),
        ),
        ..TestConfig::default()
    }
    .to_toml();
    let gw = Gateway::start(&config);
    ivr_calls(&gw, 3);
    // Backoff after three failures, a success, then three more: at most 1 + 2 + 4 s twice, plus
    // the timeout.
    let backlog = gw.wait_for_metric(
        r#"trunkgate_journal_sink_backlog_records{sink="cloud"}"#,
        Duration::from_secs(60),
        |v| v == 0.0,
    );
    assert_eq!(backlog, Some(0.0), "requests: {:?}", collector.requests());
    let dead = gw.wait_for_metric(
        r#"trunkgate_journal_sink_dead_lettered_records_total{sink="cloud"}"#,
        Duration::from_secs(1),
        |v| v >= 1.0,
    );
    assert!(dead >= Some(1.0), "{dead:?}");
    gw.expect_line("refused a batch for good", Duration::from_secs(1));
    assert!(
        !gw.log_lines().iter().any(|l| l.contains(token)),
        "the token is never logged"
    );
    gw.stop().expect("a clean stop");
    assert!(
        !journal_dir_mentions(journal.path(), token),
        "the token is written nowhere but its file"
    );

    let requests = collector.requests();
    println!("requests: {requests:?}");
    let actions: Vec<&str> = requests.iter().map(|(a, _)| a.as_str()).collect();
    for wanted in ["500", "429", "slow", "reset", "401", "301", "400", "200"] {
        assert!(
            actions.contains(&wanted),
            "{wanted} missing from {actions:?}"
        );
    }
    assert!(
        requests
            .iter()
            .all(|(_, key)| key.contains(':') && key.contains('-')),
        "every request names its records: {requests:?}"
    );
    // The batch refused with 400 is kept aside whole.
    let dead_letter: Vec<Value> = std::fs::read_dir(journal.path().join("dead-letter/cloud"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .flat_map(|f| {
            std::fs::read_to_string(f.unwrap().path())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(dead_letter.iter().any(|r| r["seq"] == reject_seq));
    // Everything else arrived, in order, once each after dedup by key.
    let mut seen = HashSet::new();
    let arrived: Vec<u64> = collector
        .records()
        .iter()
        .filter(|r| seen.insert(r["key"].as_str().unwrap().to_string()))
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    let refused: HashSet<u64> = dead_letter
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    let shipped_before_stop = arrived.iter().max().copied().unwrap();
    let expected: Vec<u64> = records(journal.path())
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .filter(|seq| !refused.contains(seq) && *seq <= shipped_before_stop)
        .collect();
    assert_eq!(
        arrived, expected,
        "in order, nothing lost but the refused batch"
    );
    assert!(shipped_before_stop > 20, "the calls' records went out");
}

/// Whether any file in `dir` but the token's holds `needle`.
fn journal_dir_mentions(dir: &Path, needle: &str) -> bool {
    walk(dir)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "token"))
        .any(|p| {
            std::fs::read(&p)
                .map(|b| String::from_utf8_lossy(&b).contains(needle))
                .unwrap_or(false)
        })
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
