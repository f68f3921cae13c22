//! SIPp as a scripted carrier: runs one scenario to completion and reports how many calls
//! succeeded, with SIPp's own logs attached for failing tests.
//!
//! SIPp runs in the foreground with stdin closed (`-nostdin`; `-bg` always exits 99) in the
//! scenarios directory, so `play_pcap_audio="pcap/…"` resolves. Its logs go to a temp dir:
//! statistics (`-trace_stat`, read for the call counts), unexpected messages (`-trace_err`) and
//! every SIP message (`-trace_msg`). `-timeout … -timeout_error` bound the run inside SIPp; the
//! harness kills it if it overruns that by 10 s.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::paths::scenarios_dir;
use crate::ports::{free_rtp_port, free_sip_port};
use crate::process::wait_timeout;

/// Extra time past SIPp's own `-timeout` before the harness kills it.
const KILL_MARGIN: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    /// One TCP connection for all calls (`-t t1`).
    Tcp,
}

#[derive(Clone, Debug)]
enum Scenario {
    /// An XML file; relative names are looked up in `integration-tests/scenarios/`.
    File(PathBuf),
    /// One of SIPp's built-in scenarios (`-sn uac`, `uas`, …).
    BuiltIn(String),
}

/// A SIPp run, configured builder-style and started with [`Sipp::run`].
#[derive(Clone, Debug)]
pub struct Sipp {
    scenario: Scenario,
    target: Option<SocketAddr>,
    transport: Transport,
    service: String,
    calls: u32,
    rate_per_second: Option<u32>,
    timeout: Duration,
    local_port: Option<u16>,
    local_ip: std::net::Ipv4Addr,
    media_port: Option<u16>,
    trace_messages: bool,
    args: Vec<OsString>,
}

impl Sipp {
    /// A scenario file, e.g. `Sipp::scenario("uac_dtmf9.xml")`.
    pub fn scenario(file: impl AsRef<Path>) -> Self {
        let file = file.as_ref();
        let path = if file.is_absolute() {
            file.to_path_buf()
        } else {
            scenarios_dir().join(file)
        };
        Self::with(Scenario::File(path))
    }

    /// A built-in scenario, e.g. `Sipp::builtin("uac")`.
    pub fn builtin(name: &str) -> Self {
        Self::with(Scenario::BuiltIn(name.to_owned()))
    }

    fn with(scenario: Scenario) -> Self {
        Self {
            scenario,
            target: None,
            transport: Transport::Udp,
            service: "ivr".into(),
            calls: 1,
            rate_per_second: None,
            timeout: Duration::from_secs(30),
            local_port: None,
            local_ip: std::net::Ipv4Addr::LOCALHOST,
            media_port: None,
            trace_messages: true,
            args: Vec::new(),
        }
    }

    /// Where to send calls (the gateway's SIP socket). Without a target SIPp acts as a server.
    pub fn target(mut self, addr: SocketAddr) -> Self {
        self.target = Some(addr);
        self
    }

    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// The user part of the Request-URI (`-s`, `[service]` in scenarios).
    pub fn service(mut self, service: &str) -> Self {
        self.service = service.to_owned();
        self
    }

    /// Number of calls to place before exiting (`-m`).
    pub fn calls(mut self, calls: u32) -> Self {
        self.calls = calls;
        self
    }

    /// New calls per second (`-r`); SIPp's default is 10.
    pub fn rate(mut self, calls_per_second: u32) -> Self {
        self.rate_per_second = Some(calls_per_second);
        self
    }

    /// Upper bound for the whole run (`-timeout`, whole seconds, rounded up). Reaching it is a
    /// failure (`-timeout_error`).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
        self
    }

    /// The local SIP port (`-p`); default: a free port.
    pub fn local_port(mut self, port: u16) -> Self {
        self.local_port = Some(port);
        self
    }

    /// The loopback address SIPp sends from (`-i`, `-mi`); default 127.0.0.1. Another
    /// 127.0.0.0/8 address is another host to the gateway's ACLs.
    pub fn local_ip(mut self, ip: std::net::Ipv4Addr) -> Self {
        self.local_ip = ip;
        self
    }

    /// The local media port (`-mp`, `[media_port]` in scenarios); default: a free even port.
    pub fn media_port(mut self, port: u16) -> Self {
        self.media_port = Some(port);
        self
    }

    /// Skip `-trace_msg` (for load runs where the message log would be large).
    pub fn without_message_trace(mut self) -> Self {
        self.trace_messages = false;
        self
    }

    /// Any further SIPp argument, e.g. `.arg("-key").arg("name").arg("value")`.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Runs SIPp to completion. Panics only if SIPp cannot be started at all.
    pub fn run(self) -> SippRun {
        let dir = tempfile::Builder::new()
            .prefix("trunkgate-sipp-")
            .tempdir()
            .expect("creating a temp dir for sipp logs");
        if let Scenario::File(path) = &self.scenario {
            check_scenario_media(path);
        }
        let files = SippFiles::in_dir(dir.path());
        let local_port = self.local_port.unwrap_or_else(free_sip_port);
        let media_port = self.media_port.unwrap_or_else(free_rtp_port);
        let timeout_secs = self.timeout.as_millis().div_ceil(1000).max(1);

        let mut command = Command::new("sipp");
        match &self.scenario {
            Scenario::File(path) => command.arg("-sf").arg(path),
            Scenario::BuiltIn(name) => command.arg("-sn").arg(name),
        };
        command
            .arg("-i")
            .arg(self.local_ip.to_string())
            .arg("-mi")
            .arg(self.local_ip.to_string())
            .arg("-p")
            .arg(local_port.to_string())
            .arg("-mp")
            .arg(media_port.to_string())
            .arg("-s")
            .arg(&self.service)
            .arg("-m")
            .arg(self.calls.to_string())
            .arg("-timeout")
            .arg(format!("{timeout_secs}s"))
            .arg("-timeout_error")
            .arg("-nostdin")
            .args(["-trace_stat", "-stf"])
            .arg(&files.stats)
            // Final statistics only: without -fd SIPp also dumps every 60 s.
            .args(["-fd", "3600"])
            .args(["-trace_err", "-error_file"])
            .arg(&files.errors)
            .args(["-trace_screen", "-screen_file"])
            .arg(&files.screen);
        if self.trace_messages {
            command
                .args(["-trace_msg", "-message_file"])
                .arg(&files.messages);
        }
        if self.transport == Transport::Tcp {
            command.args(["-t", "t1"]);
        }
        if let Some(rate) = self.rate_per_second {
            command.arg("-r").arg(rate.to_string());
        }
        command.args(&self.args);
        if let Some(target) = self.target {
            command.arg(target.to_string());
        }
        let stdout = File::create(&files.stdout).expect("creating sipp stdout file");
        let stderr = File::create(&files.stderr).expect("creating sipp stderr file");
        command
            .current_dir(scenarios_dir())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);

        let command_line = format!("{command:?}");
        let started = Instant::now();
        let mut child = command.spawn().unwrap_or_else(|err| {
            panic!("starting sipp (install it with scripts/setup-test-deps.sh): {err}")
        });
        let limit = Duration::from_secs(timeout_secs as u64) + KILL_MARGIN;
        let status = wait_timeout(&mut child, limit);
        let killed = status.is_none();
        if killed {
            let _ = child.kill();
            let _ = child.wait();
        }
        SippRun::collect(
            command_line,
            status,
            killed,
            started.elapsed(),
            local_port,
            media_port,
            self.calls,
            &files,
            dir,
        )
    }
}

/// Fails early, with the fix, when a scenario's `play_pcap_audio` file is missing: SIPp itself
/// only says so deep in its output. The pcaps in `scenarios/pcap/` are symlinks into
/// `/usr/share/sip-tester/` (Debian's `sip-tester` package), not copies.
fn check_scenario_media(scenario: &Path) {
    let Ok(text) = std::fs::read_to_string(scenario) else {
        panic!("sipp scenario {} not readable", scenario.display());
    };
    const ATTRIBUTE: &str = "play_pcap_audio=\"";
    for (position, _) in text.match_indices(ATTRIBUTE) {
        let value = &text[position + ATTRIBUTE.len()..];
        let file = &value[..value.find('"').unwrap_or(value.len())];
        let resolved = scenarios_dir().join(file);
        assert!(
            resolved.exists(),
            "{} plays {}, which does not exist (install sip-tester with \
             scripts/setup-test-deps.sh)",
            scenario.display(),
            resolved.display()
        );
    }
}

struct SippFiles {
    stats: PathBuf,
    errors: PathBuf,
    messages: PathBuf,
    screen: PathBuf,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl SippFiles {
    fn in_dir(dir: &Path) -> Self {
        Self {
            stats: dir.join("stats.csv"),
            errors: dir.join("errors.log"),
            messages: dir.join("messages.log"),
            screen: dir.join("screen.log"),
            stdout: dir.join("stdout.log"),
            stderr: dir.join("stderr.log"),
        }
    }
}

/// What a SIPp run did. SIPp's exit codes: 0 every call succeeded, 1 at least one failed,
/// 97 stopped by an internal command, 99 exited without placing calls, 255 (-1) fatal error,
/// 254 (-2) could not bind its socket.
#[derive(Debug)]
pub struct SippRun {
    pub command_line: String,
    /// `None` if the harness had to kill SIPp.
    pub exit_code: Option<i32>,
    pub killed: bool,
    pub elapsed: Duration,
    pub local_port: u16,
    pub media_port: u16,
    pub calls_requested: u32,
    /// Cumulative `SuccessfulCall(C)` from the statistics file (or, failing that, the final
    /// screen).
    pub successful: u64,
    /// Cumulative `FailedCall(C)`.
    pub failed: u64,
    /// The last statistics row, column name → value (empty if SIPp wrote none).
    pub stats: BTreeMap<String, String>,
    pub errors_log: String,
    pub messages_log: String,
    pub screen: String,
    pub stdout: String,
    pub stderr: String,
    /// Keeps the log directory alive as long as the result, for inspection.
    pub log_dir: TempDir,
}

impl SippRun {
    #[allow(clippy::too_many_arguments)]
    fn collect(
        command_line: String,
        status: Option<ExitStatus>,
        killed: bool,
        elapsed: Duration,
        local_port: u16,
        media_port: u16,
        calls_requested: u32,
        files: &SippFiles,
        log_dir: TempDir,
    ) -> Self {
        let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
        let stats = parse_stats(&read(&files.stats));
        let screen = read(&files.screen);
        let stdout = read(&files.stdout);
        let from_stats = |column: &str| stats.get(column).and_then(|value| value.parse().ok());
        let from_screen =
            |label: &str| screen_counter(&screen, label).or_else(|| screen_counter(&stdout, label));
        let successful = from_stats("SuccessfulCall(C)")
            .or_else(|| from_screen("Successful call"))
            .unwrap_or(0);
        let failed = from_stats("FailedCall(C)")
            .or_else(|| from_screen("Failed call"))
            .unwrap_or(0);
        Self {
            command_line,
            exit_code: status.and_then(|status| status.code()),
            killed,
            elapsed,
            local_port,
            media_port,
            calls_requested,
            successful,
            failed,
            stats,
            errors_log: read(&files.errors),
            messages_log: read(&files.messages),
            screen,
            stdout,
            stderr: read(&files.stderr),
            log_dir,
        }
    }

    /// Every requested call succeeded and SIPp said so with exit code 0.
    pub fn all_succeeded(&self) -> bool {
        self.exit_code == Some(0)
            && self.failed == 0
            && self.successful == u64::from(self.calls_requested)
    }

    /// A statistics counter by column name, e.g. `FailedRegexpDoesntMatch(C)`.
    pub fn stat(&self, column: &str) -> Option<u64> {
        self.stats.get(column).and_then(|value| value.parse().ok())
    }

    /// Panics with SIPp's logs unless every call succeeded.
    #[track_caller]
    pub fn assert_success(&self) {
        assert!(self.all_succeeded(), "sipp run failed\n{}", self.report());
    }

    /// Everything useful for a failing test: the command, the counts, the unexpected messages
    /// and the tail of the SIP message trace.
    pub fn report(&self) -> String {
        let failure_counters: Vec<String> = self
            .stats
            .iter()
            .filter(|(name, value)| {
                name.starts_with("Failed") && name.ends_with("(C)") && value.as_str() != "0"
            })
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        format!(
            "command: {}\nexit code: {:?}{}, elapsed {:?}\ncalls: {} requested, {} successful, \
             {} failed {:?}\n--- errors log ---\n{}\n--- stderr ---\n{}\n--- last SIP \
             messages ---\n{}",
            self.command_line,
            self.exit_code,
            if self.killed {
                " (killed by the harness)"
            } else {
                ""
            },
            self.elapsed,
            self.calls_requested,
            self.successful,
            self.failed,
            failure_counters,
            self.errors_log.trim_end(),
            self.stderr.trim_end(),
            tail(&self.messages_log, 120),
        )
    }
}

/// The last row of a `-trace_stat` CSV (`;`-separated, header first) keyed by column name.
fn parse_stats(csv: &str) -> BTreeMap<String, String> {
    let mut lines = csv.lines().filter(|line| !line.trim().is_empty());
    let Some(header) = lines.next() else {
        return BTreeMap::new();
    };
    let Some(last) = lines.next_back() else {
        return BTreeMap::new();
    };
    header
        .split(';')
        .zip(last.split(';'))
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// The cumulative (right-hand) value of a counter row on SIPp's statistics screen, from the
/// last screen printed: `  Successful call        |        0                  |        1`.
fn screen_counter(screen: &str, label: &str) -> Option<u64> {
    screen
        .lines()
        .rev()
        .find(|line| line.trim_start().starts_with(label))
        .and_then(|line| line.rsplit('|').next())
        .and_then(|cumulative| cumulative.trim().parse().ok())
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_use_the_last_row() {
        let csv = "StartTime;SuccessfulCall(C);FailedCall(C);\n\
                   t0;0;0;\n\
                   t1;3;1;\n";
        let stats = parse_stats(csv);
        assert_eq!(stats["SuccessfulCall(C)"], "3");
        assert_eq!(stats["FailedCall(C)"], "1");
        assert!(parse_stats("").is_empty());
        assert!(parse_stats("only;a;header\n").is_empty());
    }

    #[test]
    fn screen_counters_read_the_cumulative_column_of_the_last_screen() {
        let screen = "  Successful call        |        0                  |        0\n\
                      ---\n\
                        Successful call        |        1                  |        4\n\
                        Failed call            |        0                  |        2\n";
        assert_eq!(screen_counter(screen, "Successful call"), Some(4));
        assert_eq!(screen_counter(screen, "Failed call"), Some(2));
        assert_eq!(screen_counter(screen, "Retransmissions"), None);
    }
}
