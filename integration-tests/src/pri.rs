//! libpri as the far end of an E1: `integration-tests/peers/pri_peer.c`, built here with the
//! system C compiler against Debian's libpri (`libpri-dev`). libpri is GPL: it is a test peer
//! only and is never linked into trunkgate.
//!
//! [`PriPeer`] runs it on a software span's directory and waits on the lines it prints (one
//! per ISDN event: `up`, `ring channel=N called=X`, `answer`, `hangup cause=N`, `done`…).
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::process::{terminate, wait_timeout};

fn source() -> PathBuf {
    crate::repo_root().join("integration-tests/peers/pri_peer.c")
}

/// The peer's binary, built once per checkout (again when its source changes) next to the
/// daemon's.
pub fn pri_peer_bin() -> PathBuf {
    let bin = crate::trunkgate_bin().with_file_name("pri_peer");
    let stale = match (std::fs::metadata(&bin), std::fs::metadata(source())) {
        (Ok(b), Ok(s)) => b.modified().ok() < s.modified().ok(),
        _ => true,
    };
    if stale {
        // Tests build it concurrently: each into its own file, renamed into place at once.
        let tmp = bin.with_extension(format!("{}.tmp", std::process::id()));
        let out = Command::new("cc")
            .args(["-std=gnu99", "-Wall", "-O1", "-o"])
            .arg(&tmp)
            .arg(source())
            .arg("-lpri")
            .output()
            .expect("cc runs (build-essential; scripts/setup-test-deps.sh)");
        assert!(
            out.status.success(),
            "building the libpri peer failed (libpri-dev installed? scripts/setup-test-deps.sh):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&tmp, &bin).expect("the peer binary moves into place");
    }
    bin
}

/// A running libpri peer.
pub struct PriPeer {
    child: Child,
    lines: Arc<(Mutex<Vec<String>>, Condvar)>,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl PriPeer {
    /// Starts the peer on the software span in `span` with `args` (see the C file's usage).
    pub fn start(span: &Path, args: &[&str]) -> PriPeer {
        let dir = tempfile::tempdir().expect("a temp dir for the peer's log");
        let stderr = dir.path().join("stderr");
        let mut child = Command::new(pri_peer_bin())
            .arg("--span")
            .arg(span)
            .args(args)
            .arg("--debug")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("the peer's log file"))
            .spawn()
            .expect("the libpri peer starts");
        let lines = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let out = child.stdout.take().expect("piped");
        let shared = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let (lock, ready) = &*shared;
                lock.lock().unwrap().push(line);
                ready.notify_all();
            }
        });
        PriPeer {
            child,
            lines,
            stderr,
            _dir: dir,
        }
    }

    /// The first line starting with `prefix`, waiting up to `limit` for it.
    pub fn wait_for(&self, prefix: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        let (lock, ready) = &*self.lines;
        let mut lines = lock.lock().unwrap();
        loop {
            if let Some(line) = lines.iter().find(|l| l.starts_with(prefix)) {
                return line.clone();
            }
            let now = Instant::now();
            if now >= deadline {
                let seen = lines.join("\n");
                drop(lines);
                panic!(
                    "the libpri peer printed no `{prefix}` within {limit:?}; it printed:\n{seen}\n\
                     its log:\n{}",
                    self.log()
                );
            }
            lines = ready.wait_timeout(lines, deadline - now).unwrap().0;
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.0.lock().unwrap().clone()
    }

    /// libpri's own trace of the call (Q.921 states, Q.931 messages decoded).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        wait_timeout(&mut self.child, limit)
    }
}

impl Drop for PriPeer {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(1));
    }
}

/// tshark's full decoding (`-V`) of a D-channel pcap the gateway wrote. Panics if tshark fails
/// or calls any frame malformed.
pub fn tshark_decode(pcap: &Path) -> String {
    let out = Command::new("tshark")
        .args(["-n", "-V", "-r"])
        .arg(pcap)
        .output()
        .expect("tshark runs (scripts/setup-test-deps.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        !text.to_lowercase().contains("malformed"),
        "tshark found malformed frames:\n{text}"
    );
    text
}
