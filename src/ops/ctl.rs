//! `trunkgate ctl`: the admin API from an operator's shell, as tables or as JSON.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::tally::{AgentView, CallView, QueueView};
use crate::isdn::view::SpanView;
use crate::sip::guard::BanView;
use crate::sip::ua::register::RegistrationView;

const TIMEOUT: Duration = Duration::from_secs(5);
/// Far more than any answer: a thousand calls are ~300 KiB of JSON.
const MAX_ANSWER: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Calls,
    Agents,
    Queues,
    Trunks,
    Spans,
    Bans,
    Wallboard,
}

impl Listing {
    fn path(self) -> &'static str {
        match self {
            Listing::Calls => "/v1/calls",
            Listing::Agents => "/v1/agents",
            Listing::Queues => "/v1/queues",
            Listing::Trunks => "/v1/trunks",
            Listing::Spans => "/v1/spans",
            Listing::Bans => "/v1/bans",
            Listing::Wallboard => "/v1/wallboard",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error(
        "cannot reach trunkgate's admin api at {addr}: {source} (is the gateway running, and is \
         [ops] admin this address? give another with --admin)"
    )]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("admin api at {addr}: {source}")]
    Io {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("admin api at {addr} is not trunkgate's: {detail}")]
    NotOurs { addr: SocketAddr, detail: String },
    #[error("admin api at {addr} answered {status}: {body}")]
    Status {
        addr: SocketAddr,
        status: u16,
        body: String,
    },
}

/// The listing, as the text `ctl` prints.
pub fn show(addr: SocketAddr, listing: Listing, json: bool) -> Result<String, CtlError> {
    let body = get(addr, listing.path())?;
    if json {
        return Ok(format!("{body}\n"));
    }
    let not_ours = |e: serde_json::Error| CtlError::NotOurs {
        addr,
        detail: e.to_string(),
    };
    Ok(match listing {
        Listing::Calls => calls_table(&serde_json::from_str::<Vec<_>>(&body).map_err(not_ours)?),
        Listing::Agents => agents_table(&serde_json::from_str::<Vec<_>>(&body).map_err(not_ours)?),
        Listing::Queues => queues_table(&serde_json::from_str::<Vec<_>>(&body).map_err(not_ours)?),
        Listing::Trunks => trunks_table(&serde_json::from_str::<Vec<_>>(&body).map_err(not_ours)?),
        Listing::Spans => spans_table(&serde_json::from_str::<Vec<_>>(&body).map_err(not_ours)?),
        Listing::Bans => bans_table(&serde_json::from_str::<Vec<_>>(&body).map_err(not_ours)?),
        Listing::Wallboard => crate::client::wallboard::table(
            &serde_json::from_str::<Vec<_>>(&body).map_err(not_ours)?,
        ),
    })
}

/// Starts a drain (`now`: ends every call at once); what the gateway answered.
pub fn drain(addr: SocketAddr, now: bool) -> Result<String, CtlError> {
    post(addr, if now { "/v1/drain?now" } else { "/v1/drain" })
}

/// Asks the gateway to read its config file again: what changed, or every problem found (the
/// old config then runs on).
pub fn reload(addr: SocketAddr) -> Result<String, CtlError> {
    post(addr, "/v1/reload")
}

/// Asks for `action` (`start`, `pause`, `resume`) on `call`'s recording.
pub fn record(addr: SocketAddr, call: u64, action: &str) -> Result<String, CtlError> {
    post(addr, &format!("/v1/calls/{call}/recording?action={action}"))
}

pub fn renew_desk_certificate(addr: SocketAddr) -> Result<String, CtlError> {
    post(addr, "/v1/desk/renew")
}

/// `GET path` on the admin API; the body of a 200.
pub fn get(addr: SocketAddr, path: &str) -> Result<String, CtlError> {
    request(addr, "GET", path)
}

/// `POST path` on the admin API; the body of a 200.
pub fn post(addr: SocketAddr, path: &str) -> Result<String, CtlError> {
    request(addr, "POST", path)
}

fn request(addr: SocketAddr, method: &str, path: &str) -> Result<String, CtlError> {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)
        .map_err(|source| CtlError::Connect { addr, source })?;
    let io = |source| CtlError::Io { addr, source };
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    )
    .map_err(io)?;
    let mut answer = Vec::new();
    stream
        .take(MAX_ANSWER)
        .read_to_end(&mut answer)
        .map_err(io)?;
    let text = String::from_utf8_lossy(&answer);
    let not_ours = |detail: &str| CtlError::NotOurs {
        addr,
        detail: detail.to_string(),
    };
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| not_ours("no http answer"))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| not_ours("no http status"))?;
    if status != 200 {
        return Err(CtlError::Status {
            addr,
            status,
            body: body.trim().to_string(),
        });
    }
    Ok(body.to_string())
}

fn calls_table(calls: &[CallView]) -> String {
    let rows = calls.iter().map(|c| {
        vec![
            c.call.to_string(),
            c.trunk.clone(),
            c.caller.clone(),
            c.callee.clone(),
            c.state.name().to_string(),
            c.menu
                .clone()
                .or_else(|| c.queue.clone())
                .unwrap_or_default(),
            c.agent.clone().unwrap_or_default(),
            seconds(c.duration_s),
            c.waiting_s.map(seconds).unwrap_or_default(),
        ]
    });
    let head = [
        "CALL",
        "TRUNK",
        "CALLER",
        "CALLEE",
        "STATE",
        "MENU/QUEUE",
        "AGENT",
        "FOR",
        "WAITING",
    ];
    table(&head, rows, &format!("{} calls", calls.len()))
}

fn agents_table(agents: &[AgentView]) -> String {
    let rows = agents.iter().map(|a| {
        vec![
            a.agent.clone(),
            a.state.clone(),
            seconds(a.state_for_s),
            if a.connected { "yes" } else { "resuming" }.to_string(),
            a.call.map(|c| c.to_string()).unwrap_or_default(),
        ]
    });
    let head = ["AGENT", "STATE", "FOR", "CONNECTED", "CALL"];
    table(&head, rows, &format!("{} agents", agents.len()))
}

fn queues_table(queues: &[QueueView]) -> String {
    let pct = |v: Option<f64>| v.map(|p| format!("{p:.1}%")).unwrap_or_else(|| "-".into());
    let rows = queues.iter().map(|q| {
        vec![
            q.queue.clone(),
            q.waiting.to_string(),
            seconds(q.longest_wait_s),
            format!(
                "{} in {}",
                pct(q.service_level_pct),
                seconds(q.service_level_s)
            ),
            q.asa_s.map(seconds).unwrap_or_else(|| "-".into()),
            q.answered.to_string(),
            q.abandoned.to_string(),
            pct(q.abandon_rate_pct),
            q.overflowed.to_string(),
            q.agents_available.to_string(),
            q.agents_busy.to_string(),
        ]
    });
    let head = [
        "QUEUE",
        "WAITING",
        "LONGEST",
        "SERVICE LEVEL",
        "ASA",
        "ANSWERED",
        "ABANDONED",
        "ABANDON%",
        "OVERFLOWED",
        "AVAILABLE",
        "BUSY",
    ];
    table(&head, rows, &format!("{} queues", queues.len()))
}

fn trunks_table(trunks: &[RegistrationView]) -> String {
    let rows = trunks.iter().map(|t| {
        let detail = match (&t.expires_in_s, &t.reason, &t.retry_in_s) {
            (Some(left), _, _) => format!("expires in {}", seconds(*left as f64)),
            (_, Some(reason), Some(retry)) => {
                format!("{reason}; retry in {}", seconds(*retry as f64))
            }
            _ => "-".into(),
        };
        vec![
            t.trunk.clone(),
            t.state.clone(),
            t.registrar.clone(),
            t.aor.clone(),
            detail,
        ]
    });
    let head = ["TRUNK", "REGISTRATION", "REGISTRAR", "AOR", "DETAIL"];
    table(&head, rows, &format!("{} registering trunks", trunks.len()))
}

fn spans_table(spans: &[SpanView]) -> String {
    let rows = spans.iter().map(|s| {
        let calls: Vec<String> = s
            .calls
            .iter()
            .map(|c| {
                let channel = c.channel.map_or("-".into(), |ch| ch.to_string());
                format!("b{channel}: {}", c.state)
            })
            .collect();
        vec![
            s.name.clone(),
            s.signalling.clone(),
            s.line.clone(),
            s.dchannel.clone(),
            s.busy.to_string(),
            s.maintenance.to_string(),
            (s.channels - s.busy - s.maintenance).to_string(),
            if calls.is_empty() {
                "-".into()
            } else {
                calls.join(", ")
            },
        ]
    });
    let head = [
        "SPAN",
        "SIGNALLING",
        "LINE",
        "D-CHANNEL",
        "BUSY",
        "MAINT",
        "IDLE",
        "CALLS",
    ];
    table(&head, rows, &format!("{} e1 spans", spans.len()))
}

fn bans_table(bans: &[BanView]) -> String {
    let rows = bans.iter().map(|b| {
        vec![
            b.address.to_string(),
            seconds(b.remaining_s as f64),
            b.dropped.to_string(),
        ]
    });
    table(
        &["ADDRESS", "BANNED FOR", "DROPPED"],
        rows,
        &format!("{} banned addresses", bans.len()),
    )
}

fn seconds(s: f64) -> String {
    let whole = s.round() as u64;
    if whole >= 60 {
        format!("{}m{:02}s", whole / 60, whole % 60)
    } else {
        format!("{whole}s")
    }
}

/// Left-aligned columns as wide as their widest cell, then a summary line.
fn table(head: &[&str], rows: impl Iterator<Item = Vec<String>>, summary: &str) -> String {
    let rows: Vec<Vec<String>> = rows.collect();
    let mut widths: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(head.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    out.push_str(summary);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tally::CallState;

    #[test]
    fn calls_print_as_aligned_columns_with_a_count() {
        let calls = [CallView {
            call: 12,
            trunk: "carrier".into(),
            caller: "+15551234".into(),
            callee: "100".into(),
            state: CallState::Waiting,
            menu: None,
            queue: Some("support".into()),
            agent: None,
            duration_s: 75.2,
            waiting_s: Some(61.0),
        }];
        let text = calls_table(&calls);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("CALL  TRUNK    CALLER"), "{text}");
        assert!(
            lines[1].starts_with("12    carrier  +15551234  100     waiting  support"),
            "{text}"
        );
        assert!(lines[1].ends_with("1m15s  1m01s"), "{text}");
        assert_eq!(lines[2], "1 calls");
    }

    #[test]
    fn nobody_listening_is_a_clear_error_naming_the_address() {
        // A port just freed: nothing listens there.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let e = show(addr, Listing::Calls, false).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, CtlError::Connect { .. }), "{text}");
        assert!(text.contains(&addr.to_string()), "{text}");
        assert!(text.contains("--admin"), "{text}");
    }
}
