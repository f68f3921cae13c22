//! The carrier side's signalling: a plain SIP UAC over UDP that places many calls to the
//! gateway (INVITE with a PCMU offer, ACK, BYE), retransmits as RFC 3261 says, answers the
//! gateway's BYE, and times every transaction.
//!
//! One thread drives every call from one socket: at a thousand call setups a second that is
//! a few thousand small messages, far below what a thread handles.
use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::media::{MediaPool, NewStream, StreamId};

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
/// Timer B / F: a transaction with no final response by then has failed.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(32);

/// One call to place.
#[derive(Debug, Clone, Copy)]
pub struct PlannedCall {
    /// When to send the INVITE, from the start of [`Caller::run`].
    pub at: Duration,
    /// Hang up this long after the answer; `None`: when [`Caller::hang_up_all`] is called.
    pub talk: Option<Duration>,
    /// Keep what comes back for audio analysis.
    pub record: bool,
}

/// How one call went.
#[derive(Debug, Clone, Default)]
pub struct CallOutcome {
    pub label: usize,
    /// INVITE to the first response (ms), and to the 200 OK.
    pub first_response_ms: Option<f64>,
    pub answer_ms: Option<f64>,
    /// BYE to its 200 OK (ms).
    pub bye_ms: Option<f64>,
    /// The gateway hung up (sent BYE) before we did.
    pub gateway_hung_up: bool,
    /// Why the call failed, if it did.
    pub failure: Option<String>,
    pub stream: Option<StreamId>,
}

impl CallOutcome {
    /// Answered and hung up cleanly, by either side.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
            && self.answer_ms.is_some()
            && (self.bye_ms.is_some() || self.gateway_hung_up)
    }
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum State {
    Planned,
    Inviting,
    Answered,
    Hanging,
    Done,
}

struct Call {
    plan: PlannedCall,
    state: State,
    call_id: String,
    local_tag: String,
    remote_tag: Option<String>,
    remote_target: Option<String>,
    invite: String,
    bye: Option<String>,
    ack: Option<String>,
    sent_at: Instant,
    retransmit_at: Instant,
    interval: Duration,
    answered_at: Option<Instant>,
    outcome: CallOutcome,
    rtp_port: u16,
}

pub struct Caller {
    socket: UdpSocket,
    local: SocketAddr,
    gateway: SocketAddr,
    calls: Vec<Call>,
    by_call_id: HashMap<String, usize>,
    run_tag: String,
    hang_up_all: bool,
}

impl Caller {
    pub fn new(gateway: SocketAddr, run_tag: &str) -> std::io::Result<Caller> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        let local = socket.local_addr()?;
        Ok(Caller {
            socket,
            local,
            gateway,
            calls: Vec::new(),
            by_call_id: HashMap::new(),
            run_tag: run_tag.to_owned(),
            hang_up_all: false,
        })
    }

    pub fn plan(&mut self, plan: PlannedCall) {
        let label = self.calls.len();
        let call_id = format!("bench-{}-{label}@127.0.0.1", self.run_tag);
        self.by_call_id.insert(call_id.clone(), label);
        let now = Instant::now();
        self.calls.push(Call {
            plan,
            state: State::Planned,
            call_id,
            local_tag: format!("b{label}"),
            remote_tag: None,
            remote_target: None,
            invite: String::new(),
            bye: None,
            ack: None,
            sent_at: now,
            retransmit_at: now,
            interval: T1,
            answered_at: None,
            outcome: CallOutcome {
                label,
                ..CallOutcome::default()
            },
            rtp_port: 0,
        });
    }

    /// Drives the planned calls from `start` until `until` returns true (checked every few ms
    /// with the counts of answered and finished calls) or every call is done. `until` may ask
    /// for the open calls to be hung up by returning [`Drive::HangUp`].
    pub fn drive(
        &mut self,
        start: Instant,
        media: &mut MediaPool,
        mut until: impl FnMut(&Progress) -> Drive,
    ) {
        let mut buffer = vec![0u8; 65536];
        loop {
            let now = Instant::now();
            self.start_due(start, now, media);
            self.timers(now, media);
            let progress = self.progress();
            match until(&progress) {
                Drive::Stop => return,
                Drive::HangUp if !self.hang_up_all => {
                    self.hang_up_all = true;
                    self.hang_up_open(now, media);
                }
                _ => {}
            }
            if progress.done == self.calls.len() {
                return;
            }
            let _ = self.socket.set_read_timeout(Some(Duration::from_millis(2)));
            // Everything waiting, then back to the timers.
            loop {
                match self.socket.recv_from(&mut buffer) {
                    Ok((len, _)) => {
                        let text = String::from_utf8_lossy(&buffer[..len]).into_owned();
                        self.handle(&text, Instant::now(), media);
                        let _ = self.socket.set_nonblocking(true);
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        break
                    }
                    Err(_) => break,
                }
            }
            let _ = self.socket.set_nonblocking(false);
        }
    }

    pub fn outcomes(&self) -> Vec<CallOutcome> {
        self.calls.iter().map(|c| c.outcome.clone()).collect()
    }

    fn progress(&self) -> Progress {
        let mut p = Progress::default();
        for call in &self.calls {
            match call.state {
                State::Planned => {}
                State::Inviting => p.started += 1,
                State::Answered | State::Hanging => {
                    p.started += 1;
                    p.answered += 1;
                }
                State::Done => {
                    p.started += 1;
                    p.done += 1;
                    if call.outcome.answer_ms.is_some() {
                        p.answered += 1;
                    }
                    if call.outcome.failure.is_some() {
                        p.failed += 1;
                    }
                }
            }
        }
        p
    }

    fn start_due(&mut self, start: Instant, now: Instant, media: &mut MediaPool) {
        for index in 0..self.calls.len() {
            let call = &self.calls[index];
            if call.state != State::Planned || start + call.plan.at > now {
                continue;
            }
            let rtp_port = media.next_port();
            let invite = self.invite(index, rtp_port);
            let call = &mut self.calls[index];
            call.rtp_port = rtp_port;
            call.invite = invite;
            call.state = State::Inviting;
            call.sent_at = now;
            call.interval = T1;
            call.retransmit_at = now + T1;
            let _ = self.socket.send_to(call.invite.as_bytes(), self.gateway);
        }
    }

    fn timers(&mut self, now: Instant, media: &mut MediaPool) {
        for index in 0..self.calls.len() {
            let call = &mut self.calls[index];
            match call.state {
                State::Inviting | State::Hanging => {
                    if now - call.sent_at >= TRANSACTION_TIMEOUT {
                        let what = if call.state == State::Inviting {
                            "INVITE"
                        } else {
                            "BYE"
                        };
                        call.outcome.failure = Some(format!("{what}: no final response in 32 s"));
                        call.state = State::Done;
                        if let Some(stream) = call.outcome.stream {
                            media.remove(stream);
                        }
                        continue;
                    }
                    // INVITE retransmissions stop at the first provisional response.
                    let retransmit =
                        call.state == State::Hanging || call.outcome.first_response_ms.is_none();
                    if retransmit && now >= call.retransmit_at {
                        let message = if call.state == State::Inviting {
                            &call.invite
                        } else {
                            call.bye.as_ref().unwrap_or(&call.invite)
                        };
                        let _ = self.socket.send_to(message.as_bytes(), self.gateway);
                        call.interval = if call.state == State::Inviting {
                            call.interval * 2
                        } else {
                            (call.interval * 2).min(T2)
                        };
                        call.retransmit_at = now + call.interval;
                    }
                }
                State::Answered => {
                    let talk_over = call
                        .plan
                        .talk
                        .zip(call.answered_at)
                        .is_some_and(|(talk, at)| now >= at + talk);
                    if talk_over {
                        self.send_bye(index, now, media);
                    }
                }
                State::Planned | State::Done => {}
            }
        }
    }

    fn hang_up_open(&mut self, now: Instant, media: &mut MediaPool) {
        for index in 0..self.calls.len() {
            if self.calls[index].state == State::Answered {
                self.send_bye(index, now, media);
            }
        }
    }

    fn send_bye(&mut self, index: usize, now: Instant, media: &mut MediaPool) {
        let bye = self.in_dialog(index, "BYE", 2);
        let call = &mut self.calls[index];
        if let Some(stream) = call.outcome.stream {
            media.remove(stream);
        }
        let _ = self.socket.send_to(bye.as_bytes(), self.gateway);
        call.bye = Some(bye);
        call.state = State::Hanging;
        call.sent_at = now;
        call.interval = T1;
        call.retransmit_at = now + T1;
    }

    fn handle(&mut self, text: &str, now: Instant, media: &mut MediaPool) {
        let Some(message) = Message::parse(text) else {
            return;
        };
        let Some(&index) = message
            .header("call-id")
            .and_then(|id| self.by_call_id.get(id))
        else {
            return;
        };
        if let Some(method) = message.request_method() {
            if method == "BYE" || method == "CANCEL" {
                let _ = self
                    .socket
                    .send_to(message.response(200, "OK").as_bytes(), self.gateway);
                let call = &mut self.calls[index];
                if matches!(call.state, State::Answered | State::Inviting) {
                    call.outcome.gateway_hung_up = true;
                    call.state = State::Done;
                    if let Some(stream) = call.outcome.stream {
                        media.remove(stream);
                    }
                }
            } else if method != "ACK" {
                let _ = self.socket.send_to(
                    message.response(501, "Not Implemented").as_bytes(),
                    self.gateway,
                );
            }
            return;
        }
        let (Some(code), Some(cseq)) = (message.status(), message.header("cseq")) else {
            return;
        };
        let elapsed_ms = |call: &Call| (now - call.sent_at).as_secs_f64() * 1000.0;
        let call = &mut self.calls[index];
        if cseq.ends_with("INVITE") {
            if call.outcome.first_response_ms.is_none() {
                call.outcome.first_response_ms = Some(elapsed_ms(call));
            }
            if code < 200 {
                return;
            }
            if code >= 300 {
                if call.state == State::Inviting {
                    call.outcome.failure = Some(format!("INVITE answered {code}"));
                    call.state = State::Done;
                }
                // Non-2xx final responses are ACKed in the same transaction.
                let ack = message.ack_for_failure(&call.invite);
                let _ = self.socket.send_to(ack.as_bytes(), self.gateway);
                return;
            }
            if call.state != State::Inviting {
                // A retransmitted 200 OK: our ACK was lost (or is in flight).
                if let Some(ack) = &call.ack {
                    let _ = self.socket.send_to(ack.as_bytes(), self.gateway);
                }
                return;
            }
            call.outcome.answer_ms = Some(elapsed_ms(call));
            call.remote_tag = message.to_tag();
            call.remote_target = message.contact_uri();
            let Some(remote) = message.sdp_media_address() else {
                call.outcome.failure = Some("200 OK without a usable SDP answer".into());
                call.state = State::Done;
                return;
            };
            let stream = media.add(NewStream {
                label: index,
                remote,
                record: call.plan.record,
                send_for: None,
            });
            call.outcome.stream = Some(stream);
            call.answered_at = Some(now);
            call.state = State::Answered;
            let ack = self.in_dialog(index, "ACK", 1);
            let _ = self.socket.send_to(ack.as_bytes(), self.gateway);
            let call = &mut self.calls[index];
            call.ack = Some(ack);
            if self.hang_up_all {
                self.send_bye(index, now, media);
            }
        } else if cseq.ends_with("BYE") && code >= 200 && call.state == State::Hanging {
            call.outcome.bye_ms = Some(elapsed_ms(call));
            if code >= 300 {
                call.outcome.failure = Some(format!("BYE answered {code}"));
            }
            call.state = State::Done;
        }
    }

    fn invite(&self, index: usize, rtp_port: u16) -> String {
        let call = &self.calls[index];
        let sdp = format!(
            "v=0\r\no=- {index} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {rtp_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n"
        );
        format!(
            "INVITE sip:100@{gw} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK-{tag}-{index}-i;rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:bench@127.0.0.1>;tag={from_tag}\r\n\
             To: <sip:100@{gw}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:bench@{local}>\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {len}\r\n\r\n{sdp}",
            gw = self.gateway,
            local = self.local,
            tag = self.run_tag,
            from_tag = call.local_tag,
            call_id = call.call_id,
            len = sdp.len(),
        )
    }

    fn in_dialog(&self, index: usize, method: &str, cseq: u32) -> String {
        let call = &self.calls[index];
        let target = call
            .remote_target
            .clone()
            .unwrap_or_else(|| format!("sip:100@{}", self.gateway));
        let to_tag = call
            .remote_tag
            .as_deref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        format!(
            "{method} {target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK-{tag}-{index}-{m};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:bench@127.0.0.1>;tag={from_tag}\r\n\
             To: <sip:100@{gw}>{to_tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\n\
             Content-Length: 0\r\n\r\n",
            gw = self.gateway,
            local = self.local,
            tag = self.run_tag,
            m = method.to_ascii_lowercase(),
            from_tag = call.local_tag,
            call_id = call.call_id,
        )
    }
}

/// Counts of the calls so far, for the `until` of [`Caller::drive`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Progress {
    pub started: usize,
    pub answered: usize,
    pub done: usize,
    pub failed: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Drive {
    Continue,
    HangUp,
    Stop,
}

/// Just enough of a SIP message for a UAC.
struct Message<'a> {
    start: &'a str,
    headers: Vec<(String, &'a str)>,
    body: &'a str,
}

impl<'a> Message<'a> {
    fn parse(text: &'a str) -> Option<Message<'a>> {
        let (head, body) = text.split_once("\r\n\r\n")?;
        let mut lines = head.split("\r\n");
        let start = lines.next()?;
        let headers = lines
            .filter_map(|line| {
                let (name, value) = line.split_once(':')?;
                let name = match name.trim().to_ascii_lowercase().as_str() {
                    "i" => "call-id".to_owned(),
                    "t" => "to".to_owned(),
                    "f" => "from".to_owned(),
                    "v" => "via".to_owned(),
                    "m" => "contact".to_owned(),
                    other => other.to_owned(),
                };
                Some((name, value.trim()))
            })
            .collect();
        Some(Message {
            start,
            headers,
            body,
        })
    }

    fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }

    fn status(&self) -> Option<u16> {
        let rest = self.start.strip_prefix("SIP/2.0 ")?;
        rest.get(..3)?.parse().ok()
    }

    fn request_method(&self) -> Option<&'a str> {
        if self.start.starts_with("SIP/2.0") {
            return None;
        }
        self.start.split(' ').next()
    }

    fn to_tag(&self) -> Option<String> {
        let to = self.header("to")?;
        let (_, tag) = to.split_once(";tag=")?;
        Some(tag.split(';').next().unwrap_or(tag).to_owned())
    }

    fn contact_uri(&self) -> Option<String> {
        let contact = self.header("contact")?;
        let start = contact.find('<')? + 1;
        let end = contact[start..].find('>')? + start;
        Some(contact[start..end].to_owned())
    }

    /// Where the answer's audio goes: `c=` (session or media level) and the audio `m=` port.
    fn sdp_media_address(&self) -> Option<SocketAddr> {
        sdp_audio_address(self.body)
    }

    fn response(&self, code: u16, reason: &str) -> String {
        let mut out = format!("SIP/2.0 {code} {reason}\r\n");
        for (name, value) in &self.headers {
            if matches!(name.as_str(), "via" | "from" | "to" | "call-id" | "cseq") {
                out.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        out.push_str("Content-Length: 0\r\n\r\n");
        out
    }

    /// The ACK of a non-2xx final response: the INVITE's branch and request line, the
    /// response's To.
    fn ack_for_failure(&self, invite: &str) -> String {
        let request_uri = invite
            .lines()
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("sip:100@127.0.0.1");
        let mut out = format!("ACK {request_uri} SIP/2.0\r\n");
        for (name, value) in &self.headers {
            if matches!(name.as_str(), "via" | "from" | "to" | "call-id") {
                out.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        let number = self
            .header("cseq")
            .and_then(|c| c.split(' ').next())
            .unwrap_or("1");
        out.push_str(&format!(
            "CSeq: {number} ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        ));
        out
    }
}

/// The audio address of an SDP body: `c=IN IP4 ADDR` and `m=audio PORT …`.
pub fn sdp_audio_address(sdp: &str) -> Option<SocketAddr> {
    let mut address = None;
    let mut port = None;
    for line in sdp.lines() {
        let line = line.trim();
        if let Some(c) = line.strip_prefix("c=IN IP4 ") {
            address = Some(c.split('/').next()?.trim().to_owned());
        } else if let Some(m) = line.strip_prefix("m=audio ") {
            port = m.split(' ').next()?.parse::<u16>().ok();
        }
    }
    format!("{}:{}", address?, port?).parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_yields_its_tag_contact_and_media_address() {
        let text = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5000;branch=z9hG4bK-x\r\n\
                    From: <sip:bench@127.0.0.1>;tag=b1\r\nTo: <sip:100@127.0.0.1>;tag=gw7;x=1\r\n\
                    i: bench-r-1@127.0.0.1\r\nCSeq: 1 INVITE\r\nm: <sip:gw@127.0.0.1:5060>\r\n\
                    Content-Length: 60\r\n\r\nv=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 40002 RTP/AVP 0\r\n";
        let message = Message::parse(text).unwrap();
        assert_eq!(message.status(), Some(200));
        assert_eq!(message.header("call-id"), Some("bench-r-1@127.0.0.1"));
        assert_eq!(message.to_tag().as_deref(), Some("gw7"));
        assert_eq!(
            message.contact_uri().as_deref(),
            Some("sip:gw@127.0.0.1:5060")
        );
        assert_eq!(
            message.sdp_media_address(),
            Some("127.0.0.1:40002".parse().unwrap())
        );
        let ok = message.response(200, "OK");
        assert!(ok.contains("call-id: bench-r-1@127.0.0.1\r\n"), "{ok}");
    }
}
