//! The `s3` sink: each batch one zstd-compressed NDJSON object in S3-compatible storage, under
//! a key that depends only on the records it holds
//! (`PREFIX/GATEWAY/YYYY/MM/DD/FIRST-LAST-JOURNAL.ndjson.zst`, the date of its first record), so
//! a retry overwrites the same object instead of adding one.
//!
//! Requests are signed by rusty-s3 (SigV4, as presigned URLs) and sent with the same HTTPS
//! client as the http sink. An object store does not judge what it stores: every failure
//! (wrong credentials, a missing bucket, a skewed clock, 5xx, a timeout) is "not now", retried
//! with backoff and logged with the store's own error code, and nothing is dead-lettered.

use std::borrow::Cow;
use std::path::Path;
use std::time::Duration;

use rusty_s3::actions::{GetObject, ListObjectsV2, PutObject, S3Action};
use rusty_s3::{Bucket, Credentials, UrlStyle};

use super::config::{Addressing, SinkConfig};
use super::https;
use super::ship::Batch;
use super::upload::Outcome;

/// How long a signed request stays valid: long enough for a slow upload, short enough that a
/// URL in a log is of no use to anyone later.
const SIGNATURE_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// Where a bucket is and how to address it, before the environment fills in what is not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    pub bucket: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub addressing: Option<Addressing>,
}

/// A bucket and the credentials to use it: put, list and get.
pub struct S3Store {
    agent: ureq::Agent,
    bucket: Bucket,
    credentials: Credentials,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("S3Store")
            .field("bucket", &self.bucket.base_url().as_str())
            .field("access_key_id", &self.credentials.key())
            .finish()
    }
}

/// Why a request failed: S3's error code and message when it sent them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Error(pub String);

impl std::fmt::Display for S3Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl S3Store {
    /// `env` reads the usual AWS variables (`std::env::var` in the daemon; a map in tests).
    pub fn new(
        agent: ureq::Agent,
        location: &Location,
        credentials: Option<Credentials>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let region = location
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        let endpoint = location
            .endpoint
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env("AWS_ENDPOINT_URL"));
        // A store of one's own (MinIO, Ceph, a test server) is usually addressed by path;
        // AWS prefers the bucket in the host name.
        let addressing = location.addressing.unwrap_or(if endpoint.is_some() {
            Addressing::Path
        } else {
            Addressing::VirtualHost
        });
        let endpoint = endpoint.unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let url = endpoint
            .parse()
            .map_err(|e| format!("endpoint {endpoint:?}: {e}"))?;
        let style = match addressing {
            Addressing::Path => UrlStyle::Path,
            Addressing::VirtualHost => UrlStyle::VirtualHost,
        };
        let bucket = Bucket::new(url, style, location.bucket.clone(), region)
            .map_err(|e| format!("bucket {:?} at {endpoint}: {e}", location.bucket))?;
        let credentials = match credentials {
            Some(c) => c,
            None => match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
                (Some(key), Some(secret)) => match env("AWS_SESSION_TOKEN") {
                    Some(token) => Credentials::new_with_token(key, secret, token),
                    None => Credentials::new(key, secret),
                },
                _ => {
                    return Err(
                        "no credentials: set access_key_id and secret_access_key_file, \
                                or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                            .into(),
                    )
                }
            },
        };
        Ok(Self {
            agent,
            bucket,
            credentials,
        })
    }

    /// Writes (or overwrites) one object. Blocking.
    pub fn put(&self, key: &str, body: &[u8], content_type: &str) -> Result<(), S3Error> {
        let url =
            PutObject::new(&self.bucket, Some(&self.credentials), key).sign(SIGNATURE_LIFETIME);
        let response = self
            .agent
            .put(url.as_str())
            .set("Content-Type", content_type)
            .send_bytes(body)
            .map_err(failure)?;
        success(response).map(drop)
    }

    /// The keys under `prefix`, in the store's (lexical) order. Blocking.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, S3Error> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = ListObjectsV2::new(&self.bucket, Some(&self.credentials));
            if !prefix.is_empty() {
                action.with_prefix(prefix);
            }
            if let Some(token) = &token {
                action.with_continuation_token(Cow::Owned(token.clone()));
            }
            let url = action.sign(SIGNATURE_LIFETIME);
            let response = self.agent.get(url.as_str()).call().map_err(failure)?;
            let text = success(response)?
                .into_string()
                .map_err(|e| S3Error(e.to_string()))?;
            let page = Listing::parse(&text);
            keys.extend(page.keys);
            match page.next {
                Some(next) if page.truncated => token = Some(next),
                _ => return Ok(keys),
            }
        }
    }

    /// One object's bytes. Blocking.
    pub fn get(&self, key: &str) -> Result<Vec<u8>, S3Error> {
        let url =
            GetObject::new(&self.bucket, Some(&self.credentials), key).sign(SIGNATURE_LIFETIME);
        let response = self.agent.get(url.as_str()).call().map_err(failure)?;
        let response = success(response)?;
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut response.into_reader(), &mut body)
            .map_err(|e| S3Error(format!("{key}: {e}")))?;
        Ok(body)
    }
}

/// The parts of a `ListObjectsV2` answer the verifier needs. Read by hand rather than with a
/// strict XML schema: S3-compatible stores differ in details such as the namespace (s3rver's
/// is not AWS's), and the few fields needed are plain text.
struct Listing {
    keys: Vec<String>,
    truncated: bool,
    next: Option<String>,
}

impl Listing {
    fn parse(text: &str) -> Self {
        let keys = elements(text, "Key")
            .map(|key| {
                // `encoding-type=url` was asked for: keys arrive percent-encoded.
                percent_encoding::percent_decode_str(&unescape(key))
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        Self {
            keys,
            truncated: elements(text, "IsTruncated").next() == Some("true"),
            next: elements(text, "NextContinuationToken").next().map(unescape),
        }
    }
}

/// The text of every `<name>…</name>` in `xml`, in order.
fn elements<'a>(xml: &'a str, name: &str) -> impl Iterator<Item = &'a str> + 'a {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut rest = xml;
    std::iter::from_fn(move || {
        let start = rest.find(&open)? + open.len();
        let end = start + rest[start..].find(&close)?;
        let text = &rest[start..end];
        rest = &rest[end + close.len()..];
        Some(text)
    })
}

/// XML's five entities back to characters.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Only a 2xx did it: redirects are not followed (they would carry the signature elsewhere),
/// and a 301 from a bucket in another region stored nothing.
fn success(response: ureq::Response) -> Result<ureq::Response, S3Error> {
    match response.status() {
        200..=299 => Ok(response),
        status => Err(failure(ureq::Error::Status(status, response))),
    }
}

/// What went wrong, in S3's words when it answered (`<Code>` and `<Message>` of its error
/// document), else the transport's.
fn failure(error: ureq::Error) -> S3Error {
    match error {
        ureq::Error::Status(status, response) => {
            let text = response.into_string().unwrap_or_default();
            let field = |name: &str| elements(&text, name).next().map(unescape);
            match (field("Code"), field("Message")) {
                (Some(code), Some(message)) => S3Error(format!("{status} {code}: {message}")),
                (Some(code), None) => S3Error(format!("{status} {code}")),
                _ => S3Error(format!("HTTP {status}")),
            }
        }
        ureq::Error::Transport(e) => S3Error(e.to_string()),
    }
}

#[derive(Debug)]
pub struct S3Sink {
    store: S3Store,
    prefix: String,
    gateway: String,
}

impl S3Sink {
    /// Reads the secret and roots the config names (relative to `base_dir`) and the AWS
    /// variables of the environment; the error says what is missing.
    pub fn new(config: &SinkConfig, base_dir: &Path) -> Result<Self, String> {
        let credentials = match (&config.access_key_id, &config.secret_access_key_file) {
            (Some(key), Some(file)) => Some(Credentials::new(
                key.clone(),
                https::read_secret(base_dir, file)?,
            )),
            _ => None,
        };
        let location = Location {
            bucket: config.bucket.clone().unwrap_or_default(),
            endpoint: config.endpoint.clone(),
            region: config.region.clone(),
            addressing: config.addressing,
        };
        let env = |name: &str| std::env::var(name).ok();
        let store = S3Store::new(
            https::agent(config, base_dir)?,
            &location,
            credentials,
            &env,
        )?;
        let gateway = match &config.gateway {
            Some(name) => name.clone(),
            None => host_name()?,
        };
        Ok(Self {
            store,
            prefix: config.prefix.trim_matches('/').to_string(),
            gateway,
        })
    }

    /// Sends one batch and says how it went. Blocking: run it off the async threads.
    pub fn send(&self, batch: &Batch) -> Outcome {
        let key = object_key(&self.prefix, &self.gateway, batch);
        // Level 3: zstd's default, ~4x on NDJSON records at a few hundred MB/s.
        let body = match zstd::bulk::compress(&batch.body, 3) {
            Ok(body) => body,
            Err(e) => {
                return Outcome::Retry {
                    after: None,
                    why: format!("compressing: {e}"),
                }
            }
        };
        match self.store.put(&key, &body, "application/zstd") {
            Ok(()) => Outcome::Acknowledged,
            Err(e) => Outcome::Retry {
                after: None,
                why: format!("{key}: {e}"),
            },
        }
    }

    /// Stores a call recording (sealed already, so stored as it is) as
    /// `PREFIX/GATEWAY/recordings/NAME`. Blocking.
    pub fn put_recording(&self, name: &str, body: &[u8]) -> Result<(), String> {
        let key = recording_key(&self.prefix, &self.gateway, name);
        self.store
            .put(&key, body, "application/octet-stream")
            .map_err(|e| format!("{key}: {e}"))
    }
}

/// `PREFIX/GATEWAY/recordings/NAME`: a recording's name is its call's journal id, unique
/// across restarts, so it needs no date to stay apart.
pub fn recording_key(prefix: &str, gateway: &str, name: &str) -> String {
    [prefix, gateway, "recordings", name]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

/// `PREFIX/GATEWAY/YYYY/MM/DD/FIRST-LAST-JOURNAL.ndjson.zst`, dated by the batch's first
/// record (UTC): the same records always get the same key.
pub fn object_key(prefix: &str, gateway: &str, batch: &Batch) -> String {
    // `at` is RFC 3339 (`2026-12-07T00:39:06.123Z`); the journal writes no other form.
    let day = batch
        .first_at
        .get(..10)
        .filter(|d| {
            d.as_bytes().iter().enumerate().all(|(i, b)| match i {
                4 | 7 => *b == b'-',
                _ => b.is_ascii_digit(),
            })
        })
        .map_or_else(|| "0000/00/00".to_string(), |d| d.replace('-', "/"));
    let name = format!(
        "{day}/{:020}-{:020}-{}.ndjson.zst",
        batch.from, batch.to, batch.journal
    );
    [prefix, gateway, &name]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

/// The kernel's host name, as `hostname` prints it. (Not from /proc/sys: the packaged unit's
/// `ProcSubset=pid` hides it.)
fn host_name() -> Result<String, String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname(2) writes at most `buf.len()` bytes into `buf`, which we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!(
            "the host name (for the gateway's name in keys): {e}"
        ));
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_string();
    if name.is_empty() {
        return Err("the host name is empty: set gateway for the s3 sink".into());
    }
    Ok(name)
}

/// `s3://BUCKET/PREFIX` → the bucket and the prefix (without a leading or trailing `/`).
pub fn parse_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_string(), prefix.trim_matches('/').to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::JournalId;

    fn batch(first_at: &str) -> Batch {
        Batch {
            journal: JournalId([0xab; 16]),
            from: 501,
            to: 1000,
            first_at: first_at.into(),
            body: Vec::new(),
        }
    }

    #[test]
    fn keys_are_dated_by_the_first_record_and_name_the_records() {
        assert_eq!(
            object_key("trunkgate", "branch-17", &batch("2026-12-07T23:59:59.999Z")),
            "trunkgate/branch-17/2026/12/07/00000000000000000501-00000000000000001000-\
             abababababababababababababababab.ndjson.zst"
        );
        assert_eq!(
            object_key("", "b", &batch("garbage")),
            "b/0000/00/00/00000000000000000501-00000000000000001000-\
             abababababababababababababababab.ndjson.zst"
        );
    }

    #[test]
    fn a_listing_gives_its_keys_decoded_and_where_to_go_on() {
        let page = Listing::parse(
            "<?xml version=\"1.0\"?><ListBucketResult xmlns=\"x\"><Name>j</Name>\
             <IsTruncated>true</IsTruncated><NextContinuationToken>a&amp;b</NextContinuationToken>\
             <Contents><Key>t/b%2017/1-2.ndjson.zst</Key><Size>9</Size></Contents>\
             <Contents><Key>t/c.ndjson</Key></Contents></ListBucketResult>",
        );
        assert_eq!(page.keys, ["t/b 17/1-2.ndjson.zst", "t/c.ndjson"]);
        assert!(page.truncated);
        assert_eq!(page.next.as_deref(), Some("a&b"));
        let last =
            Listing::parse("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>");
        assert!(last.keys.is_empty() && !last.truncated && last.next.is_none());
    }

    #[test]
    fn s3_urls_name_a_bucket_and_a_prefix() {
        assert_eq!(
            parse_url("s3://journal/trunkgate/branch-17/"),
            Some(("journal".into(), "trunkgate/branch-17".into()))
        );
        assert_eq!(
            parse_url("s3://journal"),
            Some(("journal".into(), "".into()))
        );
        assert_eq!(parse_url("s3:///x"), None);
        assert_eq!(parse_url("/var/lib/x"), None);
    }

    #[test]
    fn the_environment_fills_in_region_endpoint_and_credentials() {
        let env = |name: &str| match name {
            "AWS_REGION" => Some("eu-west-3".to_string()),
            "AWS_ACCESS_KEY_ID" => Some("AKID".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("secret".to_string()),
            _ => None,
        };
        let location = Location {
            bucket: "journal".into(),
            ..Location::default()
        };
        let store = S3Store::new(ureq::agent(), &location, None, &env).unwrap();
        assert_eq!(
            store.bucket.base_url().as_str(),
            "https://journal.s3.eu-west-3.amazonaws.com/"
        );
        assert_eq!(store.bucket.region(), "eu-west-3");
        assert_eq!(store.credentials.key(), "AKID");

        let own = Location {
            bucket: "journal".into(),
            endpoint: Some("http://127.0.0.1:9000".into()),
            ..Location::default()
        };
        let store = S3Store::new(ureq::agent(), &own, None, &env).unwrap();
        assert_eq!(
            store.bucket.base_url().as_str(),
            "http://127.0.0.1:9000/journal/"
        );

        let none = |_: &str| None;
        let refused = S3Store::new(ureq::agent(), &location, None, &none).unwrap_err();
        assert!(refused.contains("no credentials"), "{refused}");
    }
}
