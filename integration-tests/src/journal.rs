//! Reading a gateway's call journal the way an operator does: `trunkgate journal tail` and
//! `trunkgate journal verify`.
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::{trunkgate_bin, Gateway, Sipp};

/// `calls` IVR callers, 3 a second, who listen to the menu, press 9 and are hung up on: about
/// ten records each. Every call must succeed.
pub fn ivr_calls(gw: &Gateway, calls: u32) {
    Sipp::scenario("uac_dtmf9.xml")
        .target(gw.sip_udp())
        .service("ivr")
        .calls(calls)
        .rate(3)
        .without_message_trace()
        .timeout(Duration::from_secs(30))
        .run()
        .assert_success();
}

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

/// `trunkgate journal verify s3://…` against `endpoint` with the given credentials: whether it
/// found the records whole, and what it printed (report or error).
pub fn verify_s3(url: &str, endpoint: &str, key: &str, secret: &str) -> (bool, String) {
    let out = Command::new(trunkgate_bin())
        .args(["journal", "verify", url, "--endpoint", endpoint])
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("running trunkgate journal verify");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
