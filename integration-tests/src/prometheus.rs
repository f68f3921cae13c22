//! A real Prometheus server (Debian's `prometheus`) on loopback, scraping the targets a test
//! gives it every second, with its storage in a temporary directory; stopped when dropped.
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::ports::free_sip_port;
use crate::process::{terminate, POLL_INTERVAL};

pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (job `trunkgate`) and waits until it answers.
    pub fn start(targets: &[SocketAddr]) -> Prometheus {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = dir.path().join("prometheus.yml");
        let targets: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: trunkgate\n    static_configs:\n      \
                 - targets: [{}]\n",
                targets.join(", ")
            ),
        )
        .expect("the prometheus config is written");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_sip_port()));
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus runs (scripts/setup-test-deps.sh installs it)");
        let prometheus = Prometheus {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while trunkgate::ops::ctl::get(addr, "/-/ready").is_err() {
            assert!(
                Instant::now() < deadline,
                "prometheus not ready within 20 s"
            );
            std::thread::sleep(POLL_INTERVAL * 5);
        }
        prometheus
    }

    /// The value of a PromQL expression that yields one sample, now (`None`: no sample).
    pub fn query(&self, expr: &str) -> Option<f64> {
        let path = format!("/api/v1/query?query={}", percent_encode(expr));
        let body = trunkgate::ops::ctl::get(self.addr, &path).ok()?;
        let answer: serde_json::Value = serde_json::from_str(&body).ok()?;
        let value = answer["data"]["result"].get(0)?["value"][1].as_str()?;
        value.parse().ok()
    }

    /// Waits (bounded) until `expr` has a value `accept` takes; the last value seen either way.
    pub fn wait_for(
        &self,
        expr: &str,
        limit: Duration,
        accept: impl Fn(f64) -> bool,
    ) -> Option<f64> {
        let query = || self.query(expr);
        crate::process::poll_value(limit, Duration::from_millis(250), query, accept)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(5));
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
