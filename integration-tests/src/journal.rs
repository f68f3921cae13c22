//! Reading a gateway's call journal the way an operator does: `trunkgate journal tail` and
//! `trunkgate journal verify`.
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::trunkgate_bin;

/// `[journal]` for a test: the journal in `dir`, synced every 50 ms.
pub fn journal_config(dir: &Path) -> String {
    format!(
        "[journal]\ndir = {:?}\nsync_interval_ms = 50\n",
        dir.to_string_lossy()
    )
}

/// Every record in the journal at `dir`, read back with `trunkgate journal tail`.
pub fn records(dir: &Path) -> Vec<Value> {
    let out = Command::new(trunkgate_bin())
        .args(["journal", "tail", "--no-follow", "--from", "1", "--dir"])
        .arg(dir)
        .output()
        .expect("running trunkgate journal tail");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON record per line"))
        .collect()
}

/// `trunkgate journal verify PATH`: whether it found the records whole, and its report.
pub fn verify(path: &Path) -> (bool, String) {
    let out = Command::new(trunkgate_bin())
        .args(["journal", "verify"])
        .arg(path)
        .output()
        .expect("running trunkgate journal verify");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The records of one `type`.
pub fn of_type<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["type"] == kind).collect()
}
