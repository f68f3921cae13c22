//! Operations: logging, the admin API and Prometheus metrics (kept from the event bus by the
//! [`tally::Tally`]), and `trunkgate ctl`. `init_logging` is the seam journald plugs into.
pub mod admin;
mod config;
pub mod ctl;
pub mod heap;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod tally;
pub mod wallboard;

pub use config::{check_log_level, OpsConfig};

use tracing_subscriber::{reload, EnvFilter, Registry};

/// Where the log goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogSink {
    /// Lines on stderr (a terminal, a container, a test harness).
    #[default]
    Stderr,
    /// Structured records straight to journald: each call's records carry `CALL_ID`,
    /// `SIP_CALL_ID`, `TRUNK` and, once known, `QUEUE` and `AGENT`, so `journalctl -u trunkgate
    /// CALL_ID=12` shows one call.
    Journald,
}

/// The log as the daemon set it up: where it goes, and the level a reload can change.
#[derive(Clone, Default)]
pub struct Logging {
    pub sink: LogSink,
    /// `None` when `RUST_LOG` decides (it wins over the config), or when someone else set up
    /// the log (an in-process test).
    level: Option<reload::Handle<EnvFilter, Registry>>,
}

impl Logging {
    /// Applies `[ops] log_level` (validated with the config); says what happened.
    pub fn set_level(&self, directives: &str) -> Result<(), String> {
        let Some(level) = &self.level else {
            return Err("RUST_LOG is set and stays in force".into());
        };
        let filter = EnvFilter::try_new(directives).map_err(|e| e.to_string())?;
        level.reload(filter).map_err(|e| e.to_string())
    }
}

/// Sets up logging at `level` (`[ops] log_level`), or as `RUST_LOG` says if it is set. Under
/// systemd (`$JOURNAL_STREAM` set: stderr goes to the journal anyway) records go to journald's
/// socket with their fields; journald not answering is normal outside systemd, and then stderr
/// it is.
pub fn init_logging(level: &str) -> Logging {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let from_env = EnvFilter::try_from_default_env().ok();
    let overridden = from_env.is_some();
    // The config was validated: its level parses. Should it not, info is the safe reading.
    let filter = from_env
        .or_else(|| EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
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
    let registry = tracing_subscriber::registry().with(filter);
    let sink = match journald {
        Some(Ok(layer)) => {
            registry.with(layer).init();
            LogSink::Journald
        }
        other => {
            registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_writer(std::io::stderr)
                        .with_target(false)
                        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
                )
                .init();
            if let Some(Err(e)) = other {
                tracing::info!(error = %e, "journald not reachable: logging to stderr");
            }
            LogSink::Stderr
        }
    };
    if overridden {
        tracing::info!("RUST_LOG is set: it decides the log level, not [ops] log_level");
    }
    Logging {
        sink,
        level: (!overridden).then_some(handle),
    }
}
