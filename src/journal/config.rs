//! `[journal]`: where records are kept and how often they are made safe from power loss.
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::Problem;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    /// Where the segments live (relative to the config file); by default `journal` in
    /// `[agents] state_dir`.
    pub dir: Option<PathBuf>,
    /// Records are synced to disk (fdatasync) at most this long after they were written…
    #[serde(default = "default_sync_interval_ms")]
    pub sync_interval_ms: u64,
    /// …or as soon as this many wait to be synced (1: every record on its own).
    #[serde(default = "default_sync_records")]
    pub sync_records: u64,
    /// A segment file is closed and another begun past this size.
    #[serde(default = "default_segment_bytes")]
    pub segment_bytes: u64,
    /// The journal's files never grow past this; 0: only the disk bounds them. Segments every
    /// sink has acknowledged are removed to make room.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Records that cannot be written (a full disk, `max_bytes` reached) wait in memory, at
    /// most this many; beyond it the oldest are given up and a `lost` record says so.
    #[serde(default = "default_max_pending_records")]
    pub max_pending_records: usize,
    /// Segments every sink has acknowledged are kept this long (for `journal tail` and a
    /// second look), then removed; sooner when `max_bytes` needs the room.
    #[serde(default = "default_retention_hours")]
    pub retention_hours: u64,
    /// `[[journal.sink]]`: where records are shipped, each with its own cursor.
    #[serde(default, rename = "sink")]
    pub sinks: Vec<SinkConfig>,
}

/// One place records are shipped to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Names its cursor (`cursors/NAME.json` in the journal's directory) and its metrics.
    pub name: String,
    #[serde(rename = "type")]
    pub kind: SinkType,
    /// `file`: the directory batches are written to (relative to the config file).
    pub dir: Option<PathBuf>,
    /// `http`: where batches are POSTed (`https://…`; `http://` only for loopback tests).
    pub url: Option<String>,
    /// `http`: a file holding the bearer token (readable by the service user only); the token
    /// is never logged.
    pub bearer_token_file: Option<PathBuf>,
    /// `http`, `s3`: PEM roots to trust instead of the built-in public ones (an organisation's CA).
    pub ca_file: Option<PathBuf>,
    /// `http`: PEM certificate chain and key to present (mutual TLS).
    pub client_certificate: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// `s3`: the bucket every batch is written to, an object each.
    pub bucket: Option<String>,
    /// `s3`: the service's URL (MinIO, Ceph RGW, another region's endpoint); by default
    /// `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` if set, else AWS's endpoint for the region.
    pub endpoint: Option<String>,
    /// `s3`: the bucket's region; by default `AWS_REGION`, `AWS_DEFAULT_REGION`, else
    /// `us-east-1`.
    pub region: Option<String>,
    /// `s3`: `path` (`ENDPOINT/BUCKET/KEY`) or `virtual_host` (`BUCKET.ENDPOINT/KEY`); by
    /// default `virtual_host` on AWS and `path` on an endpoint of your own.
    pub addressing: Option<Addressing>,
    /// `s3`: objects are named `PREFIX/GATEWAY/YYYY/MM/DD/FIRST-LAST-JOURNAL.ndjson.zst`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// `s3`: this gateway's name in the keys, so that every branch can write to one bucket;
    /// by default the machine's host name.
    pub gateway: Option<String>,
    /// `s3`: static credentials: the access key id, with its secret in a file of its own
    /// (readable by the service user only). Without them `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` are read.
    pub access_key_id: Option<String>,
    pub secret_access_key_file: Option<PathBuf>,
    /// `http`, `s3`: a request that takes longer than this counts as failed (and is retried).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// `http`: gzip the body (`Content-Encoding: gzip`).
    #[serde(default = "default_gzip")]
    pub gzip: bool,
    /// A batch holds at most this many records…
    #[serde(default = "default_batch_records")]
    pub batch_records: u64,
    /// …and this many bytes of them (one record more if a single one is larger)…
    #[serde(default = "default_batch_bytes")]
    pub batch_bytes: u64,
    /// …and leaves once its oldest record has waited this long.
    #[serde(default = "default_batch_age_ms")]
    pub batch_age_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkType {
    /// NDJSON files in a local directory.
    File,
    /// NDJSON batches POSTed to an HTTPS endpoint.
    Http,
    /// zstd-compressed NDJSON objects in S3-compatible storage.
    S3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Addressing {
    Path,
    VirtualHost,
}

fn default_prefix() -> String {
    "trunkgate".into()
}

fn default_timeout_ms() -> u64 {
    10_000
}

fn default_gzip() -> bool {
    true
}

fn default_batch_records() -> u64 {
    500
}

fn default_batch_bytes() -> u64 {
    1 << 20
}

fn default_batch_age_ms() -> u64 {
    1_000
}

fn default_retention_hours() -> u64 {
    168
}

impl Default for JournalConfig {
    fn default() -> Self {
        Self {
            dir: None,
            sync_interval_ms: default_sync_interval_ms(),
            sync_records: default_sync_records(),
            segment_bytes: default_segment_bytes(),
            max_bytes: default_max_bytes(),
            max_pending_records: default_max_pending_records(),
            retention_hours: default_retention_hours(),
            sinks: Vec::new(),
        }
    }
}

fn default_sync_interval_ms() -> u64 {
    200
}

fn default_sync_records() -> u64 {
    256
}

fn default_segment_bytes() -> u64 {
    8 << 20
}

fn default_max_bytes() -> u64 {
    1 << 30
}

fn default_max_pending_records() -> usize {
    100_000
}

/// A segment smaller than this would rotate every few records.
const MIN_SEGMENT_BYTES: u64 = 64 << 10;

impl JournalConfig {
    pub fn sync_interval(&self) -> Duration {
        Duration::from_millis(self.sync_interval_ms)
    }

    pub fn validate(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let at = |key: &str, message: String| Problem::at(&["journal", key], message);
        if !(1..=60_000).contains(&self.sync_interval_ms) {
            out.push(at(
                "sync_interval_ms",
                format!("{} is out of range: 1 to 60000", self.sync_interval_ms),
            ));
        }
        if self.sync_records == 0 {
            out.push(at("sync_records", "must be at least 1".into()));
        }
        if self.segment_bytes < MIN_SEGMENT_BYTES {
            out.push(at(
                "segment_bytes",
                format!(
                    "{} is too small: at least {MIN_SEGMENT_BYTES}",
                    self.segment_bytes
                ),
            ));
        }
        if self.max_bytes != 0 && self.max_bytes < 2 * self.segment_bytes {
            out.push(at(
                "max_bytes",
                format!(
                    "{} leaves no room to rotate: 0 (no bound) or at least twice segment_bytes ({})",
                    self.max_bytes,
                    2 * self.segment_bytes
                ),
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, sink) in self.sinks.iter().enumerate() {
            let index = i.to_string();
            let at = |key: &str, message: String| {
                Problem::at(&["journal", "sink", &index, key], message)
            };
            let valid_name = !sink.name.is_empty()
                && sink
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid_name {
                out.push(at(
                    "name",
                    format!("{:?}: use letters, digits, - and _", sink.name),
                ));
            } else if !names.insert(sink.name.as_str()) {
                out.push(at("name", format!("{:?} names two sinks", sink.name)));
            }
            if sink.kind == SinkType::File && sink.dir.is_none() {
                out.push(at("dir", "a file sink needs its directory".into()));
            }
            if sink.kind == SinkType::Http {
                match &sink.url {
                    None => out.push(at("url", "an http sink needs its url".into())),
                    Some(url) if !url.starts_with("https://") && !url.starts_with("http://") => {
                        out.push(at("url", format!("{url:?}: use https://HOST/PATH")))
                    }
                    Some(_) => {}
                }
                if sink.client_certificate.is_some() != sink.client_key.is_some() {
                    out.push(at(
                        "client_certificate",
                        "give both client_certificate and client_key, or neither".into(),
                    ));
                }
            }
            if sink.kind == SinkType::S3 {
                if sink.bucket.as_deref().is_none_or(str::is_empty) {
                    out.push(at("bucket", "an s3 sink needs its bucket".into()));
                }
                if let Some(endpoint) = &sink.endpoint {
                    if !endpoint.starts_with("https://") && !endpoint.starts_with("http://") {
                        out.push(at(
                            "endpoint",
                            format!("{endpoint:?}: use https://HOST[:PORT]"),
                        ));
                    }
                }
                for (key, part) in [
                    ("prefix", Some(&sink.prefix)),
                    ("gateway", sink.gateway.as_ref()),
                ] {
                    if let Some(problem) = part.and_then(|p| key_part_problem(p)) {
                        out.push(at(key, problem));
                    }
                }
                if sink.access_key_id.is_some() != sink.secret_access_key_file.is_some() {
                    out.push(at(
                        "access_key_id",
                        "give both access_key_id and secret_access_key_file, or neither (and \
                         set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
                            .into(),
                    ));
                }
            }
            if matches!(sink.kind, SinkType::Http | SinkType::S3) && sink.timeout_ms == 0 {
                out.push(at("timeout_ms", "must be at least 1".into()));
            }
            if sink.batch_records == 0 || sink.batch_bytes == 0 {
                out.push(at(
                    "batch_records",
                    "batches need at least one record and byte".into(),
                ));
            }
        }
        out
    }
}

/// Why `part` cannot be a piece of an object key (`None`: it can).
fn key_part_problem(part: &str) -> Option<String> {
    let fine = part
        .split('/')
        .all(|piece| !piece.is_empty() && piece != "." && piece != "..")
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    (!fine).then(|| {
        format!("{part:?}: use letters, digits, -, _ and ., with / between non-empty parts")
    })
}

impl SinkConfig {
    pub fn batch_age(&self) -> Duration {
        Duration::from_millis(self.batch_age_ms)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}
