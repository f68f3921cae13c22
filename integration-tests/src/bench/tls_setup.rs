//! Call setups per second over SIP on TLS, each call on a connection of its own: TCP connect,
//! a full TLS handshake, INVITE into the IVR, its 200, ACK, BYE and its 200, close. The worst
//! case for the gateway (a carrier keeping one connection pays the handshake once), so the
//! rate it sustains bounds what TLS costs a call setup.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::analysis::{cpu_time, percentile};
use crate::gateway::{Gateway, TestConfig};
use crate::pki::TestPki;

/// How long one call may take from connect to the BYE's answer.
const CALL_LIMIT: Duration = Duration::from_secs(10);

/// `rate` calls a second for `secs` seconds against a gateway with a TLS listener; the report
/// row: calls completed, failures, setup times (connect to the 200) and the gateway's CPU.
pub fn tls_setup_step(rate: u32, secs: u64) -> Result<Value, String> {
    let pki = TestPki::new();
    let gateway = Gateway::builder(
        &TestConfig {
            tcp: false,
            route: "ivr:main".into(),
            rtp_port_min: 20000,
            rtp_port_max: 59999,
            sip_extra: format!(
                "tls = [\"127.0.0.1:0\"]\ntls_certificate = {:?}\ntls_private_key = {:?}",
                pki.gateway.cert.display().to_string(),
                pki.gateway.key.display().to_string()
            ),
            ..TestConfig::default()
        }
        .to_toml(),
    )
    .startup_timeout(Duration::from_secs(30))
    .start();
    let addr = gateway.sip_tls();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&pki.ca).map_err(|e| e.to_string())? {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let total = (u64::from(rate) * secs) as usize;
    let pid = gateway.pid();
    let cpu_before = cpu_time(pid).unwrap_or_default();
    let start = Instant::now();
    let results: Vec<Result<Duration, String>> = runtime.block_on(async {
        let mut tasks = Vec::with_capacity(total);
        for i in 0..total {
            let at = start + Duration::from_secs_f64(i as f64 / f64::from(rate));
            let connector = connector.clone();
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                tokio::time::timeout(CALL_LIMIT, one_call(addr, connector, i))
                    .await
                    .unwrap_or_else(|_| Err("no end within 10 s".into()))
            }));
        }
        let mut results = Vec::with_capacity(total);
        for task in tasks {
            results.push(task.await.unwrap_or_else(|e| Err(e.to_string())));
        }
        results
    });
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_time(pid)
        .unwrap_or_default()
        .saturating_sub(cpu_before)
        .as_secs_f64();
    drop(gateway);
    let setups: Vec<f64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    Ok(json!({
        "rate": rate,
        "secs": secs,
        "calls": total,
        "completed": setups.len(),
        "failed": failures.len(),
        "first_failures": failures.iter().take(5).collect::<Vec<_>>(),
        "setup_ms_p50": percentile(&setups, 50.0),
        "setup_ms_p95": percentile(&setups, 95.0),
        "setup_ms_max": setups.iter().copied().fold(0.0, f64::max),
        "wall_s": wall,
        "gateway_cpu_s": cpu,
        "gateway_cpu_ms_per_call": if setups.is_empty() { 0.0 } else { cpu * 1000.0 / setups.len() as f64 },
    }))
}

/// One call on a connection of its own; how long from connect to the INVITE's 200.
async fn one_call(
    addr: SocketAddr,
    connector: tokio_rustls::TlsConnector,
    n: usize,
) -> Result<Duration, String> {
    let started = Instant::now();
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let local = tcp.local_addr().map_err(|e| e.to_string())?;
    let name = ServerName::IpAddress(addr.ip().into());
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let call_id = format!("tls-setup-{n}@127.0.0.1");
    let sdp = "v=0\r\no=bench 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n";
    let head = |method: &str, cseq: u32, branch: &str, to_tag: Option<&str>| {
        let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        format!(
            "{method} sip:ivr@{addr};transport=tls SIP/2.0\r\n\
             Via: SIP/2.0/TLS {local};branch=z9hG4bK-{branch}-{n}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:bench@127.0.0.1>;tag=b{n}\r\n\
             To: <sip:ivr@{addr}>{to_tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:bench@{local};transport=tls>\r\n"
        )
    };
    let invite = format!(
        "{}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        head("INVITE", 1, "i", None),
        sdp.len()
    );
    tls.write_all(invite.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut reader = Messages::default();
    let ok = loop {
        let message = reader.next(&mut tls).await?;
        if message.starts_with("SIP/2.0 200") && message.contains("INVITE") {
            break message;
        }
        if message.starts_with("SIP/2.0 ") && !message.starts_with("SIP/2.0 1") {
            return Err(message.lines().next().unwrap_or_default().to_owned());
        }
    };
    let setup = started.elapsed();
    let to_tag = ok
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("to:"))
        .and_then(|l| l.split(";tag=").nth(1))
        .map(|t| t.trim().to_owned())
        .ok_or("200 without a To tag")?;
    let ack = format!(
        "{}Content-Length: 0\r\n\r\n",
        head("ACK", 1, "a", Some(&to_tag))
    );
    let bye = format!(
        "{}Content-Length: 0\r\n\r\n",
        head("BYE", 2, "b", Some(&to_tag))
    );
    tls.write_all(format!("{ack}{bye}").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    loop {
        let message = reader.next(&mut tls).await?;
        if message.starts_with("SIP/2.0 200") && message.contains("BYE") {
            break;
        }
    }
    let _ = tls.shutdown().await;
    Ok(setup)
}

/// SIP messages out of a stream, framed by Content-Length.
#[derive(Default)]
struct Messages {
    buffer: Vec<u8>,
}

impl Messages {
    async fn next(&mut self, stream: &mut (impl AsyncReadExt + Unpin)) -> Result<String, String> {
        loop {
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buffer[..end]).into_owned();
                let body = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.trim()
                            .eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                let total = end + 4 + body;
                if self.buffer.len() >= total {
                    let message = String::from_utf8_lossy(&self.buffer[..total]).into_owned();
                    self.buffer.drain(..total);
                    return Ok(message);
                }
            }
            let mut chunk = [0u8; 4096];
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("closed".into());
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }
}
