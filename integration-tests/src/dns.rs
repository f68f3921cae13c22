//! dnsmasq as a carrier's DNS: the NAPTR, SRV and A records a test gives, served on a free
//! UDP and TCP port of 127.0.0.1 and nowhere else.
//!
//! It never forwards a query: `--no-resolv` and no `--server` leave it without upstream servers,
//! and `--local=/#/` makes every name it has no record for its own, answered NXDOMAIN from its
//! configuration (without it such names get REFUSED). `--conf-file=/dev/null` keeps a system
//! /etc/dnsmasq.conf out; `--user=root` keeps it from switching to its `dnsmasq` user (it runs
//! as whoever starts it, root or not); an empty `--pid-file` writes no pid file.
//!
//! Facts this relies on (dnsmasq 2.90 from Debian's `dnsmasq-base`, /usr/sbin/dnsmasq, no
//! service): `--no-daemon` stays in the foreground, `--log-facility=-` logs to stderr and
//! `--log-queries` logs each query as `query[TYPE] NAME from ADDR` and its answer as
//! `config NAME is ...`. An SRV answer carries its targets' A records in the additional section.
use std::fs::File;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::ports::free_sip_port;
use crate::process::{terminate, POLL_INTERVAL};

const READY_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Debian puts it in /usr/sbin, which a user's PATH may lack.
const SBIN_DNSMASQ: &str = "/usr/sbin/dnsmasq";

/// One record dnsmasq serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsRecord {
    /// An A (or AAAA) record: `--host-record=NAME,IP` (several for one name add up).
    Address { name: String, ip: IpAddr },
    /// An SRV record (RFC 2782): `--srv-host=NAME,TARGET,PORT,PRIORITY,WEIGHT`, NAME being
    /// `_service._proto.domain`.
    Srv {
        name: String,
        target: String,
        port: u16,
        priority: u16,
        weight: u16,
    },
    /// A NAPTR record (RFC 3403) with an empty regexp:
    /// `--naptr-record=NAME,ORDER,PREFERENCE,FLAGS,SERVICE,,REPLACEMENT`.
    Naptr {
        name: String,
        order: u16,
        preference: u16,
        flags: String,
        service: String,
        replacement: String,
    },
}

impl DnsRecord {
    pub fn a(name: &str, ip: impl Into<IpAddr>) -> DnsRecord {
        DnsRecord::Address {
            name: name.into(),
            ip: ip.into(),
        }
    }

    pub fn srv(name: &str, priority: u16, weight: u16, port: u16, target: &str) -> DnsRecord {
        DnsRecord::Srv {
            name: name.into(),
            target: target.into(),
            port,
            priority,
            weight,
        }
    }

    /// With flag `S` (the replacement is an SRV name), as RFC 3263 wants.
    pub fn naptr(
        name: &str,
        order: u16,
        preference: u16,
        service: &str,
        replacement: &str,
    ) -> DnsRecord {
        DnsRecord::Naptr {
            name: name.into(),
            order,
            preference,
            flags: "S".into(),
            service: service.into(),
            replacement: replacement.into(),
        }
    }

    fn arg(&self) -> String {
        let arg = match self {
            DnsRecord::Address { name, ip } => format!("--host-record={name},{ip}"),
            DnsRecord::Srv {
                name,
                target,
                port,
                priority,
                weight,
            } => format!("--srv-host={name},{target},{port},{priority},{weight}"),
            DnsRecord::Naptr {
                name,
                order,
                preference,
                flags,
                service,
                replacement,
            } => format!(
                "--naptr-record={name},{order},{preference},{flags},{service},,{replacement}"
            ),
        };
        assert_eq!(
            arg.matches(',').count(),
            match self {
                DnsRecord::Address { .. } => 1,
                DnsRecord::Srv { .. } => 4,
                DnsRecord::Naptr { .. } => 6,
            },
            "a comma inside a field of {self:?}"
        );
        arg
    }
}

pub struct Dnsmasq {
    child: Option<Child>,
    port: u16,
    log_path: PathBuf,
    _dir: TempDir,
}

impl Dnsmasq {
    /// Starts it with `records` on a free port of 127.0.0.1 and waits until it answers over
    /// UDP and accepts TCP.
    pub fn start(records: &[DnsRecord]) -> Dnsmasq {
        let dir = tempfile::Builder::new()
            .prefix("trunkgate-dnsmasq-")
            .tempdir()
            .expect("a temp dir for dnsmasq");
        let probe = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding a udp probe");
        probe
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("setting the probe's timeout");
        let mut failures = Vec::new();
        // The port is free when probed; another process may take it before dnsmasq binds it:
        // then another port.
        for attempt in 0..3 {
            let port = free_sip_port();
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let log_path = dir.path().join(format!("dnsmasq-{attempt}.log"));
            let mut child = spawn(port, records, &log_path);
            match wait_ready(&mut child, &probe, addr) {
                Ok(()) => {
                    return Dnsmasq {
                        child: Some(child),
                        port,
                        log_path,
                        _dir: dir,
                    }
                }
                Err(why) => {
                    terminate(&mut child, STOP_GRACE);
                    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
                    let lost_race = output.contains("Address already in use");
                    failures.push(format!("on port {port}: {why}; its output:\n{output}"));
                    if !lost_race {
                        break;
                    }
                }
            }
        }
        panic!("dnsmasq did not start\n{}", failures.join("\n"));
    }

    /// Where it answers, over UDP and TCP.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Its output so far: a line per query and per answer.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The queries it got, in order, as (type, name): `("SRV", "_sip._udp.carrier.test")`;
    /// without the harness's own readiness probes.
    pub fn queries(&self) -> Vec<(String, String)> {
        self.log()
            .lines()
            .filter_map(|line| {
                let rest = &line[line.find("query[")? + "query[".len()..];
                let (kind, rest) = rest.split_once(']')?;
                let name = rest.split_whitespace().next()?;
                (name != PROBE_NAME).then(|| (kind.to_owned(), name.to_owned()))
            })
            .collect()
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, STOP_GRACE);
        }
    }
}

/// Waits until `child` answers `probe`'s query at `addr` over UDP and accepts a TCP connection there.
fn wait_ready(child: &mut Child, probe: &UdpSocket, addr: SocketAddr) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut id: u16 = 0x5100;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("it exited: {status}"));
        }
        if Instant::now() >= deadline {
            return Err(format!("it did not answer within {READY_TIMEOUT:?}"));
        }
        id = id.wrapping_add(1);
        if answered(probe, addr, id)
            && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        {
            return Ok(());
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

fn spawn(port: u16, records: &[DnsRecord], log_path: &std::path::Path) -> Child {
    let log = File::create(log_path).expect("creating the dnsmasq log");
    let program = if std::path::Path::new(SBIN_DNSMASQ).exists() {
        SBIN_DNSMASQ
    } else {
        "dnsmasq"
    };
    Command::new(program)
        .args([
            "--no-daemon",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--local=/#/",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--user=root",
            "--pid-file",
            "--log-queries",
            "--log-facility=-",
        ])
        .arg(format!("--port={port}"))
        .args(records.iter().map(DnsRecord::arg))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("duplicating the log handle"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("starting dnsmasq (install it with scripts/setup-test-deps.sh): {e}")
        })
}

/// The name the readiness probe asks for.
const PROBE_NAME: &str = "ready.invalid";

/// Asks `server` for the A record of [`PROBE_NAME`] (NXDOMAIN) and says whether an answer with
/// the same id came back.
fn answered(probe: &UdpSocket, server: SocketAddr, id: u16) -> bool {
    let mut query = Vec::with_capacity(32);
    query.extend_from_slice(&id.to_be_bytes());
    // Flags: a standard query, recursion desired; one question.
    query.extend_from_slice(&[0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
    for label in PROBE_NAME.split('.') {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    // The root, type A, class IN.
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    if probe.send_to(&query, server).is_err() {
        return false;
    }
    let mut buf = [0u8; 512];
    loop {
        match probe.recv_from(&mut buf) {
            Ok((n, from)) if from == server && n >= 2 && buf[..2] == id.to_be_bytes() => {
                return true
            }
            // An answer to an earlier probe: read on.
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            // ICMP port unreachable (not listening yet) shows up as ConnectionRefused.
            Err(_) => return false,
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("---- dnsmasq output ----\n{}", self.log());
        }
    }
}
