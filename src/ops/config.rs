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
}

impl Default for OpsConfig {
    fn default() -> Self {
        OpsConfig {
            admin: default_admin(),
            metrics: default_metrics(),
        }
    }
}

fn default_admin() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9470))
}

fn default_metrics() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 9464)))
}
