//! The real daemon, started with a test config and stopped when the test ends.

mod config;
mod log;

pub use config::{
    config_for_tests, extra_agent, TestConfig, DEMO_CREDENTIAL, DEMO_CREDENTIAL_HASH,
};

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::paths::{prompts_dir, trunkgate_bin};
use crate::process::{terminate, wait_timeout};
use log::{listening_addrs, LogBuffer};

/// Environment variable: when set (to anything), a [`Gateway`] prints its whole log when it
/// drops even if the test passed.
pub const SHOW_LOGS_ENV: &str = "TRUNKGATE_SHOW_LOGS";

const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How to start a [`Gateway`]; [`Gateway::start`] covers the common case.
#[derive(Clone, Debug)]
pub struct GatewayBuilder {
    config: String,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    startup_timeout: Duration,
    /// A program (and its arguments) that runs the daemon's command line, e.g. to start it in
    /// a mount namespace; it must exec the daemon so that signals reach it.
    wrapper: Vec<OsString>,
}

impl GatewayBuilder {
    pub fn new(config_toml_body: &str) -> Self {
        Self {
            config: config_toml_body.to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
            wrapper: Vec::new(),
        }
    }

    /// Runs the daemon's command line through `wrapper` (see [`GatewayBuilder`]'s field).
    pub fn wrapped(mut self, wrapper: &[&str]) -> Self {
        self.wrapper = wrapper.iter().map(OsString::from).collect();
        self
    }

    /// An extra argument after `run --config FILE`.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// An environment variable for the daemon (e.g. `RUST_LOG`).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// How long to wait for every configured SIP socket to be announced.
    pub fn startup_timeout(mut self, limit: Duration) -> Self {
        self.startup_timeout = limit;
        self
    }

    /// Starts the daemon and waits until it has announced every SIP socket of the config.
    /// Panics (printing the daemon's output) if it exits or stays silent too long.
    pub fn start(self) -> Gateway {
        let (expected_udp, expected_tcp) = expected_socket_counts(&self.config);
        let mut gateway = self.spawn();
        let deadline = Instant::now() + self.startup_timeout;
        let mut next_line = 0;
        while gateway.udp.len() < expected_udp || gateway.tcp.len() < expected_tcp {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let found = gateway
                .log
                .wait_for(next_line, remaining, |line| line.contains("listening"));
            let Some((index, line)) = found else {
                let status = gateway.child.try_wait().ok().flatten();
                panic!(
                    "trunkgate announced {} of {expected_udp} udp and {} of {expected_tcp} tcp \
                     sockets within {:?} (exit status: {status:?}); its output:\n{}",
                    gateway.udp.len(),
                    gateway.tcp.len(),
                    self.startup_timeout,
                    gateway.log.dump()
                );
            };
            next_line = index + 1;
            let (udp, tcp) = listening_addrs(&line);
            push_new(&mut gateway.udp, udp);
            push_new(&mut gateway.tcp, tcp);
        }
        gateway
    }

    /// Runs the daemon until it exits by itself (e.g. on a config it must reject) and returns
    /// its status and output. Panics if it is still running after `limit`.
    pub fn run_to_exit(self, limit: Duration) -> (ExitStatus, Vec<String>) {
        let mut gateway = self.spawn();
        let Some(status) = wait_timeout(&mut gateway.child, limit) else {
            panic!(
                "trunkgate still running after {limit:?}; its output:\n{}",
                gateway.log.dump()
            );
        };
        gateway.join_readers();
        (status, gateway.log.lines())
    }

    fn spawn(&self) -> Gateway {
        let dir = tempfile::Builder::new()
            .prefix("trunkgate-test-")
            .tempdir()
            .expect("creating a temp dir for the gateway");
        link_prompts(dir.path());
        let config_path = dir.path().join("trunkgate.toml");
        std::fs::write(&config_path, with_prompts_dir(&self.config))
            .expect("writing the test config");

        let bin = trunkgate_bin();
        let mut command = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        command
            .arg("run")
            .arg("--config")
            .arg(&config_path)
            .args(&self.args)
            .current_dir(dir.path())
            // Keys and values must arrive uncoloured to be parsed (colours are stripped too,
            // in case the logger ignores NO_COLOR).
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("starting {}: {err}", bin.display()));

        let log = Arc::new(LogBuffer::default());
        let readers = vec![
            log.follow("stderr", child.stderr.take().expect("stderr is piped")),
            log.follow("stdout", child.stdout.take().expect("stdout is piped")),
        ];
        Gateway {
            child,
            log,
            readers,
            udp: Vec::new(),
            tcp: Vec::new(),
            config_path,
            dir,
        }
    }
}

/// A running trunkgate daemon. Dropping it stops the daemon (SIGTERM, then SIGKILL after 5 s)
/// and, if the test is failing, prints everything the daemon wrote.
pub struct Gateway {
    child: Child,
    log: Arc<LogBuffer>,
    readers: Vec<std::thread::JoinHandle<()>>,
    udp: Vec<SocketAddr>,
    tcp: Vec<SocketAddr>,
    config_path: PathBuf,
    // Dropped last: the daemon may write into it until it stops.
    dir: TempDir,
}

impl Gateway {
    /// Starts the daemon with `config_toml_body` (see [`GatewayBuilder::start`]).
    pub fn start(config_toml_body: &str) -> Gateway {
        GatewayBuilder::new(config_toml_body).start()
    }

    pub fn builder(config_toml_body: &str) -> GatewayBuilder {
        GatewayBuilder::new(config_toml_body)
    }

    /// The first UDP SIP socket. Panics if the config has none.
    /// The agent link's QUIC address, from the `listening` line (`quic=ADDR`).
    pub fn quic(&self) -> SocketAddr {
        self.listening_value("quic")
            .and_then(|v| v.parse().ok())
            .expect("the listening line names the quic address")
    }

    /// The admin API (`trunkgate ctl`), from the `listening` line.
    pub fn admin(&self) -> SocketAddr {
        self.listening_value("admin")
            .and_then(|v| v.parse().ok())
            .expect("the listening line names the admin address")
    }

    /// Where Prometheus scrapes, from the `listening` line.
    pub fn metrics(&self) -> SocketAddr {
        self.listening_value("metrics")
            .and_then(|v| v.parse().ok())
            .expect("the listening line names the metrics address")
    }

    /// One sample of the daemon's exposition (`name` or `name{label="value",…}` as the
    /// exposition writes it), polled until `accept` takes it or `limit` passes; the last value
    /// read, or `None` if the sample never appeared.
    pub fn wait_for_metric(
        &self,
        sample: &str,
        limit: Duration,
        accept: impl Fn(f64) -> bool,
    ) -> Option<f64> {
        // Metrics follow the event bus: poll, a scrape at a time.
        let scrape = || {
            trunkgate::ops::ctl::get(self.metrics(), "/metrics")
                .ok()
                .and_then(|text| sample_value(&text, sample))
        };
        crate::process::poll_value(limit, Duration::from_millis(100), scrape, accept)
    }

    /// The daemon's whole exposition, as Prometheus would scrape it.
    pub fn scrape(&self) -> String {
        trunkgate::ops::ctl::get(self.metrics(), "/metrics").unwrap_or_default()
    }

    /// The SHA-256 fingerprint agents pin, from the `listening` line.
    pub fn fingerprint(&self) -> String {
        self.listening_value("fingerprint")
            .expect("the listening line names the agent-link fingerprint")
    }

    fn listening_value(&self, key: &str) -> Option<String> {
        let prefix = format!("{key}=");
        self.log_lines()
            .iter()
            .filter(|l| l.contains("listening"))
            .flat_map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .find_map(|token| token.strip_prefix(&prefix).map(str::to_string))
    }

    pub fn sip_udp(&self) -> SocketAddr {
        *self.udp.first().expect("the gateway has no udp sip socket")
    }

    /// The SIP over TLS socket, from the `listening` line. Panics if the config has none.
    pub fn sip_tls(&self) -> SocketAddr {
        self.listening_value("tls")
            .and_then(|v| v.parse().ok())
            .expect("the listening line names a tls sip socket")
    }

    /// The first TCP SIP socket. Panics if the config has none.
    pub fn sip_tcp(&self) -> SocketAddr {
        *self.tcp.first().expect("the gateway has no tcp sip socket")
    }

    pub fn sip_udp_all(&self) -> &[SocketAddr] {
        &self.udp
    }

    pub fn sip_tcp_all(&self) -> &[SocketAddr] {
        &self.tcp
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The temp dir holding the config (the daemon's working directory).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the daemon wrote so far, one entry per line, prefixed `[stderr]`/`[stdout]`.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lines()
    }

    /// How many lines of the log so far contain `needle`.
    pub fn count_lines(&self, needle: &str) -> usize {
        self.log_lines()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// A position in the log: pass it to [`Gateway::wait_for_line_after`] to wait only for
    /// lines written after now.
    pub fn log_cursor(&self) -> usize {
        self.log.len()
    }

    /// The first line (from the start of the log) that satisfies `matches`, waiting up to
    /// `limit`; `None` on timeout or once the daemon closed its output.
    pub fn wait_for_line(
        &self,
        limit: Duration,
        matches: impl FnMut(&str) -> bool,
    ) -> Option<String> {
        self.log.wait_for(0, limit, matches).map(|(_, line)| line)
    }

    /// Like [`Gateway::wait_for_line`] but only lines at `cursor` or later; returns the cursor
    /// after the matching line with it.
    pub fn wait_for_line_after(
        &self,
        cursor: usize,
        limit: Duration,
        matches: impl FnMut(&str) -> bool,
    ) -> Option<(usize, String)> {
        self.log
            .wait_for(cursor, limit, matches)
            .map(|(index, line)| (index + 1, line))
    }

    /// Waits for a line containing `needle`; panics with the whole log if none appears.
    pub fn expect_line(&self, needle: &str, limit: Duration) -> String {
        self.wait_for_line(limit, |line| line.contains(needle))
            .unwrap_or_else(|| {
                panic!(
                    "trunkgate wrote no line containing {needle:?} within {limit:?}; \
                     its output:\n{}",
                    self.log.dump()
                )
            })
    }

    /// Waits (bounded) for the daemon to exit by itself; `None` if it is still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        wait_timeout(&mut self.child, limit)
    }

    /// The exit status if the daemon has exited (it should not while a test uses it).
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Stops the daemon with SIGTERM and returns its exit status (`None` if it ignored SIGTERM
    /// for 5 s and had to be killed).
    pub fn stop(mut self) -> Option<ExitStatus> {
        let status = terminate(&mut self.child, STOP_GRACE);
        self.join_readers();
        status
    }

    /// Sends a signal (e.g. `libc::SIGHUP` for a reload) without waiting for anything.
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pids fit in pid_t");
        // SAFETY: kill(2) has no memory-safety preconditions; the child is not reaped while
        // `self` exists, so the pid still names our daemon.
        unsafe {
            libc::kill(pid, signal);
        }
    }

    /// The whole output, numbered, as printed on failure.
    pub fn dump_log(&self) -> String {
        self.log.dump()
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            // Reader threads only end with an error if they panicked, which they do not.
            let _ = reader.join();
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let status = terminate(&mut self.child, STOP_GRACE);
        self.join_readers();
        if std::thread::panicking() || std::env::var_os(SHOW_LOGS_ENV).is_some() {
            eprintln!(
                "---- trunkgate output (pid {}, exit status {status:?}, config {}) ----\n{}",
                self.child.id(),
                self.config_path.display(),
                self.log.dump()
            );
        }
    }
}

/// What `trunkgate ctl` did: whether it succeeded, and its standard output and error.
#[derive(Debug)]
pub struct CtlRun {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `trunkgate ctl --admin ADMIN ARGS` (the real command line an operator types).
pub fn ctl(admin: SocketAddr, args: &[&str]) -> CtlRun {
    let out = Command::new(trunkgate_bin())
        .args(["ctl", "--admin", &admin.to_string()])
        .args(args)
        .output()
        .expect("trunkgate ctl runs");
    CtlRun {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// How many `udp=`/`tcp=` announcements to wait for: one per entry of `[sip] udp` / `tcp`.
fn expected_socket_counts(config: &str) -> (usize, usize) {
    let table: toml::Table = config
        .parse()
        .unwrap_or_else(|err| panic!("the test config is not valid TOML: {err}\n{config}"));
    let count = |key: &str| {
        table
            .get("sip")
            .and_then(|sip| sip.get(key))
            .and_then(|list| list.as_array())
            .map_or(0, |list| list.len())
    };
    (count("udp"), count("tcp"))
}

/// Adds `[prompts] dir = <repo>/prompts` when the config has no `[prompts]` table, so prompt
/// names resolve without every test spelling out the path.
fn with_prompts_dir(config: &str) -> String {
    let has_prompts_table = config
        .lines()
        .any(|line| line.trim_start().starts_with("[prompts]"));
    if has_prompts_table {
        return config.to_owned();
    }
    format!(
        "{config}\n\n[prompts]\ndir = {}\n",
        config::toml_string(&prompts_dir().to_string_lossy())
    )
}

/// `prompts` in the temp dir points at the repository's prompts, so a config copied from
/// `config.example.toml` (`dir = "prompts"`, relative to the config file) works unchanged.
fn link_prompts(dir: &Path) {
    #[cfg(unix)]
    {
        // Failure only matters to configs that use the relative path; they will report it.
        let _ = std::os::unix::fs::symlink(prompts_dir(), dir.join("prompts"));
    }
}

fn push_new(known: &mut Vec<SocketAddr>, found: Vec<SocketAddr>) {
    for addr in found {
        if !known.contains(&addr) {
            known.push(addr);
        }
    }
}

/// The value of `sample` in a Prometheus text exposition.
fn sample_value(exposition: &str, sample: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_counts_follow_the_sip_table() {
        assert_eq!(expected_socket_counts(&config_for_tests("")), (1, 1));
        let udp_only = TestConfig {
            tcp: false,
            ..TestConfig::default()
        };
        assert_eq!(expected_socket_counts(&udp_only.to_toml()), (1, 0));
    }

    #[test]
    fn prompts_table_is_added_only_when_missing() {
        let added = with_prompts_dir("[sip]\nudp = []\n");
        let table: toml::Table = added.parse().unwrap();
        let dir = table["prompts"]["dir"].as_str().unwrap();
        assert_eq!(Path::new(dir), prompts_dir());

        let own = "[prompts]\ndir = \"/elsewhere\"\n";
        assert_eq!(with_prompts_dir(own), own);
    }
}
