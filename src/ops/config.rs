//! `[ops]`: where the admin API and the Prometheus scrape listen.
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
}

impl Default for OpsConfig {
    fn default() -> Self {
        OpsConfig {
            admin: default_admin(),
            metrics: default_metrics(),
            drain_timeout_ms: default_drain_timeout_ms(),
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

impl OpsConfig {
    pub fn drain_timeout(&self) -> std::time::Duration {
        // A day is longer than any maintenance window; it keeps Instant arithmetic safe.
        std::time::Duration::from_millis(self.drain_timeout_ms.min(86_400_000))
    }
}
