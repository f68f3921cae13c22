//! Runs the real `trunkgate-agent` client (headless) and follows its event lines.
use std::io::Write;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::gateway::{Gateway, DEMO_CREDENTIAL};
use crate::paths::trunkgate_bin;

/// A running agent client; killed (SIGTERM, then SIGKILL) on drop.
pub struct AgentProcess {
    child: Child,
    /// An interactive client's commands go here.
    stdin: Option<ChildStdin>,
    lines: Arc<(Mutex<Vec<String>>, Condvar)>,
}

/// The client binary, built next to the daemon.
pub fn agent_bin() -> PathBuf {
    trunkgate_bin().with_file_name("trunkgate-agent")
}

/// Arguments for the demo agent of the test config, pinned to `gw`'s certificate and answering
/// every call, followed by `extra`.
pub fn demo_args(gw: &Gateway, extra: &[&str]) -> Vec<String> {
    demo_args_at(gw.quic(), &gw.fingerprint(), extra)
}

/// [`demo_args`] for agent `id` (configured with the demo credential, as
/// [`extra_agent`](crate::gateway::extra_agent) makes one).
pub fn agent_args(gw: &Gateway, id: &str, extra: &[&str]) -> Vec<String> {
    let mut args = demo_args(gw, extra);
    if let Some(at) = args.iter().position(|a| a == "demo") {
        args[at] = id.to_string();
    }
    args
}

/// [`demo_args`] for a gateway at `quic` whose certificate has `fingerprint`.
pub fn demo_args_at(quic: SocketAddr, fingerprint: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "--gateway".to_string(),
        quic.to_string(),
        "--agent".into(),
        "demo".into(),
        "--pin".into(),
        fingerprint.to_string(),
        "--auto-answer".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

impl AgentProcess {
    /// Starts `trunkgate-agent ARGS` with the credential in its environment.
    pub fn start(args: &[String], credential: &str) -> AgentProcess {
        Self::start_with_env(args, credential, &[])
    }

    /// The demo agent of `gw`, interactive: it reads commands from [`AgentProcess::type_line`].
    pub fn interactive(gw: &Gateway) -> AgentProcess {
        Self::interactive_with(gw, &[])
    }

    /// [`AgentProcess::interactive`] with more arguments (`--record FILE`, say).
    pub fn interactive_with(gw: &Gateway, extra: &[&str]) -> AgentProcess {
        let args: Vec<String> = demo_args(gw, extra)
            .into_iter()
            .filter(|a| a != "--auto-answer")
            .collect();
        Self::spawn(&args, DEMO_CREDENTIAL, &[], true)
    }

    /// Agent `id` (configured with the demo credential), interactive, with more arguments.
    pub fn interactive_as(gw: &Gateway, id: &str, extra: &[&str]) -> AgentProcess {
        let args: Vec<String> = agent_args(gw, id, extra)
            .into_iter()
            .filter(|a| a != "--auto-answer")
            .collect();
        Self::spawn(&args, DEMO_CREDENTIAL, &[], true)
    }

    /// Types one command line at an interactive agent.
    pub fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("an interactive agent");
        writeln!(stdin, "{line}").expect("the agent reads its commands");
        stdin.flush().expect("the agent reads its commands");
    }

    /// SIGKILL: the client vanishes without a word, as a laptop whose lid closed.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// [`AgentProcess::start`] with more environment variables (a sound card's, say).
    pub fn start_with_env(
        args: &[String],
        credential: &str,
        env: &[(String, String)],
    ) -> AgentProcess {
        Self::spawn(args, credential, env, false)
    }

    fn spawn(
        args: &[String],
        credential: &str,
        env: &[(String, String)],
        interactive: bool,
    ) -> AgentProcess {
        let mut child = Command::new(agent_bin())
            .args(args)
            .env("TRUNKGATE_AGENT_CREDENTIAL", credential)
            .envs(env.iter().map(|(key, value)| (key, value)))
            .stdin(if interactive {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", agent_bin().display()));
        let lines = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        for (name, stream) in [
            (
                "out",
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            ),
            (
                "err",
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            ),
        ] {
            let Some(stream) = stream else { continue };
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let (store, cv) = &*lines;
                    store.lock().unwrap().push(format!("[agent {name}] {line}"));
                    cv.notify_all();
                }
            });
        }
        AgentProcess {
            stdin: child.stdin.take(),
            child,
            lines,
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.0.lock().unwrap().clone()
    }

    /// Waits (bounded) for an output line containing all of `needles`.
    pub fn wait_for(&self, needles: &[&str], limit: Duration) -> Option<String> {
        self.wait_for_nth(needles, 1, limit)
    }

    /// Waits (bounded) for the `nth` (from 1) output line containing all of `needles`.
    pub fn wait_for_nth(&self, needles: &[&str], nth: usize, limit: Duration) -> Option<String> {
        self.wait_for_nth_line(nth, limit, |l| needles.iter().all(|n| l.contains(n)))
    }

    /// Waits (bounded) for the `nth` (from 1) output line containing any one of `needles`.
    pub fn wait_for_nth_of_any(
        &self,
        needles: &[&str],
        nth: usize,
        limit: Duration,
    ) -> Option<String> {
        self.wait_for_nth_line(nth, limit, |l| needles.iter().any(|n| l.contains(n)))
    }

    /// Waits (bounded) for the `nth` (from 1) output line that `matches`.
    fn wait_for_nth_line(
        &self,
        nth: usize,
        limit: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + limit;
        let (store, cv) = &*self.lines;
        let mut guard = store.lock().unwrap();
        loop {
            let mut matching = guard.iter().filter(|l| matches(l));
            if let Some(l) = matching.nth(nth.saturating_sub(1)) {
                return Some(l.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            guard = cv.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }

    #[track_caller]
    pub fn expect(&self, needles: &[&str], limit: Duration) -> String {
        self.wait_for(needles, limit).unwrap_or_else(|| {
            panic!(
                "agent never printed {needles:?}; output:\n{}",
                self.lines().join("\n")
            )
        })
    }

    /// Waits for the client to exit by itself (bounded); its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGTERM (the client finishes its recording), then SIGKILL after 5 s.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stop(&mut self) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on our own child, which is not yet reaped.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        if self.wait_exit(Duration::from_secs(5)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
        if std::thread::panicking() {
            eprintln!("--- agent output ---\n{}", self.lines().join("\n"));
        }
    }
}
