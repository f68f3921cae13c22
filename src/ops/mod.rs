//! Operations: logging, the admin API and Prometheus metrics (kept from the event bus by the
//! [`tally::Tally`]), and `trunkgate ctl`. `init_logging` is the seam journald plugs into.
pub mod admin;
mod config;
pub mod ctl;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod tally;

pub use config::OpsConfig;

use tracing_subscriber::EnvFilter;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
