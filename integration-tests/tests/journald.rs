//! Under systemd the daemon logs straight to journald with each call's fields. journald does not
//! run on test machines, so the test stands in for it: it binds a datagram socket in a directory
//! that a private mount namespace puts at `/run/systemd/journal` for the daemon alone (root
//! only; `unshare` from util-linux), and reads the native-protocol records the daemon sends.
use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use trunkgate_integration::agent::{demo_args_at, AgentProcess};
use trunkgate_integration::{trunkgate_bin, Baresip, TestConfig, DEMO_CREDENTIAL};

type Record = HashMap<String, String>;

/// One datagram of journald's native protocol: `KEY=value` lines, or `KEY`, a little-endian
/// 64-bit length and the value for values with newlines.
fn parse(mut bytes: &[u8]) -> Record {
    let mut record = Record::new();
    while !bytes.is_empty() {
        let line_end = bytes
            .iter()
            .position(|b| *b == b'\n')
            .unwrap_or(bytes.len());
        let line = &bytes[..line_end];
        if let Some(eq) = line.iter().position(|b| *b == b'=') {
            let key = String::from_utf8_lossy(&line[..eq]).into_owned();
            record.insert(key, String::from_utf8_lossy(&line[eq + 1..]).into_owned());
            bytes = &bytes[(line_end + 1).min(bytes.len())..];
        } else {
            let key = String::from_utf8_lossy(line).into_owned();
            let rest = &bytes[line_end + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            let value = String::from_utf8_lossy(&rest[8..8 + len]).into_owned();
            record.insert(key, value);
            bytes = &rest[(8 + len + 1).min(rest.len())..];
        }
    }
    record
}

struct Journal {
    records: Arc<Mutex<Vec<Record>>>,
}

impl Journal {
    fn listen(socket: UnixDatagram) -> Journal {
        let records: Arc<Mutex<Vec<Record>>> = Arc::default();
        let store = records.clone();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            while Arc::strong_count(&store) > 1 {
                if let Ok(n) = socket.recv(&mut buf) {
                    store.lock().unwrap().push(parse(&buf[..n]));
                }
            }
        });
        Journal { records }
    }

    fn wait_for(&self, message: &str, limit: Duration) -> Record {
        let deadline = Instant::now() + limit;
        loop {
            let found = self
                .records
                .lock()
                .unwrap()
                .iter()
                .find(|r| r.get("MESSAGE").is_some_and(|m| m.contains(message)))
                .cloned();
            if let Some(r) = found {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "no record {message:?} within {limit:?}; records: {:#?}",
                self.records.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: kill only sends a signal to our own child.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

#[test]
fn under_systemd_each_call_s_records_carry_its_fields_and_no_credential() {
    if unsafe { libc::geteuid() } != 0 {
        panic!("this test needs root: it mounts a private /run/systemd/journal");
    }
    std::fs::create_dir_all("/run/systemd/journal").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::listen(UnixDatagram::bind(dir.path().join("socket")).unwrap());
    let config = TestConfig {
        route: "queue:support".into(),
        ..TestConfig::default()
    };
    let config_path = dir.path().join("trunkgate.toml");
    std::fs::write(&config_path, config.to_toml()).unwrap();
    let child = Command::new("unshare")
        .args(["--mount", "sh", "-c"])
        .arg(r#"mount --bind "$1" /run/systemd/journal && exec "$2" run --config "$3""#)
        .arg("sh")
        .arg(dir.path())
        .arg(trunkgate_bin())
        .arg(&config_path)
        .env("JOURNAL_STREAM", "8:12345")
        .env("RUST_LOG", "info")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare runs (util-linux)");
    let _daemon = Daemon(child);

    let listening = journal.wait_for("listening", Duration::from_secs(15));
    let message = &listening["MESSAGE"];
    let value = |key: &str| {
        message
            .split_whitespace()
            .find_map(|t| t.strip_prefix(&format!("{key}=")))
            .unwrap()
            .to_string()
    };
    assert_eq!(listening["PRIORITY"], "6", "info is priority 6");
    let agent = AgentProcess::start(
        &demo_args_at(value("quic").parse().unwrap(), &value("fingerprint"), &[]),
        DEMO_CREDENTIAL,
    );
    agent.expect(&["event=state", "state=available"], Duration::from_secs(10));
    let caller = Baresip::new("caller")
        .dial(format!("sip:100@{}", value("udp")))
        .duration(Duration::from_secs(3))
        .run();
    assert!(caller.call_established());
    journal.wait_for("call ended", Duration::from_secs(10));

    let queued = journal.wait_for("caller queued", Duration::from_secs(1));
    assert_eq!(queued["CALL_ID"], "1", "{queued:?}");
    assert_eq!(queued["TRUNK"], "carrier", "{queued:?}");
    assert_eq!(queued["QUEUE"], "support", "{queued:?}");
    assert!(!queued["SIP_CALL_ID"].is_empty(), "{queued:?}");
    let bridged = journal.wait_for("bridged to agent", Duration::from_secs(1));
    assert_eq!(bridged["AGENT"], "demo", "{bridged:?}");
    assert_eq!(bridged["SIP_CALL_ID"], queued["SIP_CALL_ID"]);
    let state = journal.wait_for("agent state", Duration::from_secs(1));
    assert_eq!(state["AGENT"], "demo", "{state:?}");

    let everything = format!("{:?}", journal.records.lock().unwrap());
    assert!(
        !everything.contains(DEMO_CREDENTIAL),
        "a credential reached the journal"
    );
    assert!(
        !everything.contains("argon2"),
        "a credential hash reached the journal"
    );
}
