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

/// Where the log goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSink {
    /// Lines on stderr (a terminal, a container, a test harness).
    Stderr,
    /// Structured records straight to journald: each call's records carry `CALL_ID`,
    /// `SIP_CALL_ID`, `TRUNK` and, once known, `QUEUE` and `AGENT`, so `journalctl -u trunkgate
    /// CALL_ID=12` shows one call.
    Journald,
}

/// Sets up logging, filtered by `RUST_LOG` (default `info`). Under systemd (`$JOURNAL_STREAM`
/// set: stderr goes to the journal anyway) records go to journald's socket with their fields;
/// journald not answering is normal outside systemd, and then stderr it is.
pub fn init_logging() -> LogSink {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let journald = std::env::var_os("JOURNAL_STREAM").map(|_| {
        // syslog's meaning of the levels: info is 6 (the crate's default makes it notice).
        let priorities = tracing_journald::PriorityMappings {
            info: tracing_journald::Priority::Informational,
            debug: tracing_journald::Priority::Debug,
            ..tracing_journald::PriorityMappings::new()
        };
        tracing_journald::layer()
            .map(|l| l.with_field_prefix(None).with_priority_mappings(priorities))
    });
    match journald {
        Some(Ok(layer)) => {
            tracing_subscriber::registry()
                .with(filter())
                .with(layer)
                .init();
            LogSink::Journald
        }
        other => {
            tracing_subscriber::fmt()
                .with_env_filter(filter())
                .with_writer(std::io::stderr)
                .with_target(false)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .init();
            if let Some(Err(e)) = other {
                tracing::info!(error = %e, "journald not reachable: logging to stderr");
            }
            LogSink::Stderr
        }
    }
}
