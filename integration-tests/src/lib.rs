//! Test harness: starts the real `trunkgate` binary and real SIP peers.
//!
//! Integration tests exercise the daemon the way a carrier and an agent would: a [`Gateway`]
//! runs the compiled binary with a temporary config on free loopback ports, [`Sipp`] plays
//! scripted carrier calls (the XML scenarios in `integration-tests/scenarios/`), [`Baresip`] is a
//! real softphone whose recordings [`audio`] compares with the prompts the gateway should play.
//!
//! Everything is bounded in time: every wait has a timeout and every child process is killed
//! when its handle drops, so a hung peer fails one test instead of hanging the suite.
//!
//! External tools: `sipp` (Debian `sip-tester`), `baresip` (`baresip-core`), and for the agent's
//! sound device `jackd` (`jackd2`) with ALSA's JACK plugin (`libasound2-plugins`); install them
//! with `scripts/setup-test-deps.sh`. The daemon binary must be built before the tests run
//! (`cargo build --bin trunkgate`), because cargo only builds a package's binaries for that
//! package's own tests.

pub mod agent;
pub mod audio;
pub mod baresip;
pub mod bench;
pub mod browser;
pub mod desk;
pub mod dns;
pub mod gateway;
pub mod in_process;
pub mod journal;
pub mod kamailio;
pub mod outbound;
pub mod paths;
pub mod pki;
pub mod ports;
pub mod pri;
mod process;
pub mod prometheus;
pub mod quality;
pub mod relay;
pub mod s3;
pub mod sip_tls;
pub mod sipp;
pub mod sound;

pub use baresip::{Answer, Baresip, BaresipCall, BaresipRun, Recording};
pub use gateway::{
    config_for_tests, ctl, CtlRun, Gateway, GatewayBuilder, TestConfig, DEMO_CREDENTIAL,
};
pub use paths::{prompt_path, prompts_dir, repo_root, scenarios_dir, trunkgate_bin};
pub use process::output_within;
pub use sipp::{Sipp, SippRun, Transport};

/// The word after `key=` in a log or event line (up to the next space).
pub fn line_word<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let prefix = format!("{key}=");
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(prefix.as_str()))
}

/// The number after `key=` in a log or event line (the gateway's or the agent client's).
pub fn line_field(line: &str, key: &str) -> Option<f64> {
    let start = line.find(&format!("{key}="))? + key.len() + 1;
    let value: String = line[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    value.parse().ok()
}
