//! An S3-compatible server for the journal's s3 sink, started by the test on loopback: npm
//! `s3rver`, which keeps objects on disk, so it can be killed and started again mid-run. It
//! checks the access key id but not the signature (moto, which can check signatures, reads only
//! the `Authorization` header and refuses presigned URLs). `scripts/setup-test-deps.sh`
//! installs it under `target/s3rver`.
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::paths::repo_root;
use crate::ports::free_sip_port;

/// s3rver's fixed credentials.
pub const S3RVER_KEY: &str = "S3RVER";
pub const S3RVER_SECRET: &str = "S3RVER";

/// An s3rver process serving `bucket` from a directory; killed when dropped.
pub struct S3rver {
    child: Option<Child>,
    data: PathBuf,
    bucket: String,
    pub port: u16,
}

fn s3rver_bin() -> PathBuf {
    std::env::var_os("TRUNKGATE_S3RVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/s3rver/node_modules/.bin/s3rver"))
}

impl S3rver {
    pub fn start(data: &Path, bucket: &str) -> S3rver {
        let mut server = S3rver {
            child: None,
            data: data.to_path_buf(),
            bucket: bucket.to_string(),
            port: free_sip_port(),
        };
        server.resume();
        server
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the server (as a crash would); its objects stay on disk.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "s3rver is already running");
        let bin = s3rver_bin();
        let child = Command::new(&bin)
            .args(["-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-d")
            .arg(&self.data)
            .args(["--configure-bucket", &self.bucket])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (install it with scripts/setup-test-deps.sh)",
                    bin.display()
                )
            });
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(20));
    }
}

impl Drop for S3rver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect_timeout(
        &(Ipv4Addr::LOCALHOST, port).into(),
        Duration::from_millis(200),
    )
    .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "nothing listens on 127.0.0.1:{port} after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every object under `dir` as s3rver stores it (`BUCKET/KEY._S3rver_object`), by key.
pub fn s3rver_objects(data: &Path, bucket: &str) -> Vec<(String, Vec<u8>)> {
    let root = data.join(bucket);
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if let Some(key) = path
                .strip_prefix(&root)
                .ok()
                .and_then(|p| p.to_str())
                .and_then(|p| p.strip_suffix("._S3rver_object"))
            {
                out.push((key.to_string(), std::fs::read(&path).expect("an object")));
            }
        }
    }
    out.sort();
    out
}
