//! `[ops]`: where the admin API and the Prometheus scrape listen, the drain timeout, the log
//! level.
use std::net::SocketAddr;

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsConfig {
    /// The admin API (`/healthz`, `/readyz`, `/metrics`, `/v1/…`) that `trunkgate ctl` talks to.
    /// Loopback unless the operator says otherwise: it shows callers' numbers and can drain.
    #[serde(default = "default_admin")]
    pub admin: SocketAddr,
    /// Where Prometheus scrapes `/metrics` (also served on `admin`); `None` (or the admin address)
    /// for the admin listener only.
    #[serde(default = "default_metrics")]
    pub metrics: Option<SocketAddr>,
    /// How long a drain (SIGTERM, `trunkgate ctl drain`) lets calls in progress finish before
    /// it hangs up what is left; 0 hangs up at once.
    #[serde(default = "default_drain_timeout_ms")]
    pub drain_timeout_ms: u64,
    /// `error`, `warn`, `info`, `debug` or `trace`, optionally with per-module levels after a
    /// comma (`info,trunkgate::sip=debug`), as `RUST_LOG` takes them; `RUST_LOG` wins if set.
    /// A reload changes it.
    #[serde(default = "default_log_level")]
    pub log_level: String,
}

impl Default for OpsConfig {
    fn default() -> Self {
        OpsConfig {
            admin: default_admin(),
            metrics: default_metrics(),
            drain_timeout_ms: default_drain_timeout_ms(),
            log_level: default_log_level(),
        }
    }
}

fn default_admin() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9470))
}

fn default_metrics() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 9464)))
}

fn default_drain_timeout_ms() -> u64 {
    300_000
}

fn default_log_level() -> String {
    "info".into()
}

impl OpsConfig {
    pub fn drain_timeout(&self) -> std::time::Duration {
        // A day is longer than any maintenance window; it keeps Instant arithmetic safe.
        std::time::Duration::from_millis(self.drain_timeout_ms.min(86_400_000))
    }
}

/// What is wrong with a `log_level`, if anything. Stricter than the filter's own parser, which
/// takes a misspelt level (`inof`) for a module name and so would log nothing of ours.
pub fn check_log_level(directives: &str) -> Result<(), String> {
    let level = |word: &str| {
        // The parser reads an empty word as `error`; here it is a slip.
        Some(word.trim())
            .filter(|w| !w.is_empty())
            .and_then(|w| w.parse::<tracing_subscriber::filter::LevelFilter>().ok())
            .map(|_| ())
            .ok_or_else(|| {
                format!(
                    "{:?} is not a level: use error, warn, info, debug, trace or off, \
                     optionally as module=level after a comma (info,trunkgate::sip=debug)",
                    word.trim()
                )
            })
    };
    for directive in directives.split(',') {
        match directive.split_once('=') {
            Some((module, lvl)) if !module.trim().is_empty() => level(lvl)?,
            _ => level(directive)?,
        }
    }
    tracing_subscriber::EnvFilter::try_new(directives)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::check_log_level;

    #[test]
    fn log_levels_are_levels_and_module_levels() {
        for good in ["info", "warn", "DEBUG", "info,trunkgate::sip=debug", "off"] {
            assert_eq!(check_log_level(good), Ok(()), "{good}");
        }
        for bad in [
            "inof",
            "",
            "info,trunkgate::sip=loud",
            "info,,warn",
            "=debug",
        ] {
            let e = check_log_level(bad).expect_err(bad);
            assert!(e.contains("not a level"), "{bad}: {e}");
        }
    }
}
