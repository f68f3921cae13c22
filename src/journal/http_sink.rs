//! The `http` sink: each batch POSTed as NDJSON (gzipped unless told not to) with a bearer
//! token and an `Idempotency-Key` naming its records, over rustls.
//!
//! What the answer means: any 2xx is an acknowledgement; 3xx (not followed), 408, 429 and 5xx,
//! a timeout or a
//! broken connection are "not now" (retried with backoff, after `Retry-After` if given), and so
//! are 401 and 403 (the token is wrong, not the batch); any other 4xx refuses the batch for
//! good (it is dead-lettered, the rest goes on).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use super::config::SinkConfig;
use super::https;
use super::ship::Batch;
use super::upload::Outcome;

pub struct HttpSink {
    agent: ureq::Agent,
    url: String,
    token: Option<String>,
    gzip: bool,
}

impl std::fmt::Debug for HttpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("HttpSink").field("url", &self.url).finish()
    }
}

impl HttpSink {
    /// Reads the token, roots and client certificate the sink's config names (relative to
    /// `base_dir`); the error says which file and why.
    pub fn new(config: &SinkConfig, base_dir: &Path) -> Result<Self, String> {
        let token = match &config.bearer_token_file {
            Some(file) => Some(https::read_secret(base_dir, file)?),
            None => None,
        };
        let agent = https::agent(config, base_dir)?;
        Ok(Self {
            agent,
            url: config.url.clone().unwrap_or_default(),
            token,
            gzip: config.gzip,
        })
    }

    /// Sends one batch and says how it went. Blocking: run it off the async threads.
    pub fn send(&self, batch: &Batch) -> Outcome {
        let mut request = self
            .agent
            .post(&self.url)
            .set("Content-Type", "application/x-ndjson")
            .set(
                "Idempotency-Key",
                &format!("{}:{}-{}", batch.journal, batch.from, batch.to),
            );
        if let Some(token) = &self.token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        let body = if self.gzip {
            request = request.set("Content-Encoding", "gzip");
            gzip(&batch.body)
        } else {
            batch.body.clone()
        };
        match request.send_bytes(&body) {
            Ok(response) if (200..300).contains(&response.status()) => Outcome::Acknowledged,
            // Redirects are not followed (the token would go along): the collector's URL is
            // wrong, not the batch.
            Ok(response) => Outcome::Retry {
                after: None,
                why: format!(
                    "{} {} (redirects are not followed: fix the url)",
                    response.status(),
                    response.status_text()
                ),
            },
            Err(ureq::Error::Status(status, response)) => judge(status, &response),
            Err(ureq::Error::Transport(e)) => Outcome::Retry {
                after: None,
                why: e.to_string(),
            },
        }
    }
}

/// What a non-2xx answer means for the batch.
fn judge(status: u16, response: &ureq::Response) -> Outcome {
    let why = format!("{status} {}", response.status_text());
    match status {
        // 401 and 403 say the gateway's credentials are wrong, not the batch: dead-lettering
        // would set every record aside until someone fixes the token.
        401 | 403 | 408 | 429 | 500..=599 => Outcome::Retry {
            after: response
                .header("Retry-After")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs),
            why,
        },
        _ => Outcome::Poisoned { why },
    }
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Infallible: writing to a Vec.
    encoder.write_all(body).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}
