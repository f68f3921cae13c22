//! Bytes ⇄ SIP messages, in front of rsip.
//!
//! rsip parses the start line and splits headers, but it reads everything after the blank line as
//! the body, does not know compact header names or line folding, and fails outright on methods it
//! does not know. This module puts those right before rsip sees a message, frames messages on
//! stream transports by Content-Length, checks the headers every layer above relies on, and keeps
//! enough of a message it cannot accept to answer it with 400 or 501.
use std::fmt::Write as _;

use bytes::Bytes;
use rand::Rng;
use thiserror::Error;

/// Messages larger than this are refused; 64 KiB is the largest UDP datagram and no honest
/// carrier message comes near it.
pub const MAX_MESSAGE: usize = 64 * 1024;
const MAX_HEADER_LINES: usize = 256;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CodecError {
    #[error("empty message")]
    Empty,
    #[error("no blank line after the headers")]
    Unterminated,
    #[error("message of {0} bytes is larger than {MAX_MESSAGE}")]
    TooLarge(usize),
    #[error("more than {MAX_HEADER_LINES} header lines")]
    TooManyHeaders,
    #[error("headers are not utf-8")]
    NotUtf8,
    #[error("invalid content-length {0:?}")]
    BadContentLength(String),
    #[error("content-length {declared} but only {available} body bytes")]
    ShortBody { declared: usize, available: usize },
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("invalid {0} header {1:?}")]
    BadHeader(&'static str, String),
    #[error("cseq method {cseq} does not match request method {method}")]
    CSeqMismatch { cseq: String, method: String },
    #[error("method {0} not implemented")]
    UnknownMethod(String),
    #[error("invalid start line {0:?}")]
    BadStartLine(String),
    #[error("unparsable message: {0}")]
    Syntax(String),
}

/// A message we could not accept, with what is needed to answer it if it was a request.
#[derive(Debug, Clone)]
pub struct Malformed {
    pub error: CodecError,
    salvage: Option<Box<Salvage>>,
}

/// The parts of a refused request that a response must echo (RFC 3261 §8.2.6.2).
#[derive(Debug, Clone)]
struct Salvage {
    method: String,
    vias: Vec<String>,
    from: String,
    to: String,
    call_id: String,
    cseq: String,
}

impl Malformed {
    fn new(error: CodecError, head: Option<&str>) -> Self {
        Malformed {
            salvage: head.and_then(salvage).map(Box::new),
            error,
        }
    }

    /// A stateless 400 (or 501 for an unknown method) for a refused request; `None` for responses,
    /// ACKs and requests too broken to answer. The reason phrase says what was wrong. A To without
    /// a tag gets one drawn from `rng`.
    pub fn reply<R: Rng + ?Sized>(&self, server: &str, rng: &mut R) -> Option<Bytes> {
        let s = self.salvage.as_ref()?;
        if s.method == "ACK" {
            return None;
        }
        let (code, reason) = match &self.error {
            CodecError::UnknownMethod(_) => (501, "Not Implemented".to_string()),
            other => (400, capitalise(&other.to_string())),
        };
        let mut out = String::with_capacity(512);
        let _ = write!(out, "SIP/2.0 {code} {}\r\n", sanitize_reason(&reason));
        for via in &s.vias {
            let _ = write!(out, "Via: {via}\r\n");
        }
        let to = if has_tag(&s.to) {
            s.to.clone()
        } else {
            format!("{};tag={}", s.to, crate::sip::message::new_tag(rng))
        };
        let _ = write!(
            out,
            "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\nServer: {server}\r\n",
            s.from, s.call_id, s.cseq
        );
        if code == 501 {
            out.push_str(crate::sip::message::ALLOW_HEADER);
            out.push_str("\r\n");
        }
        out.push_str("Content-Length: 0\r\n\r\n");
        Some(Bytes::from(out))
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A reason phrase is one line of text; offending values quoted in it must not break the line.
fn sanitize_reason(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(120)
        .collect()
}

fn has_tag(header_value: &str) -> bool {
    crate::sip::message::header_param(header_value, "tag").is_some()
}

/// What the start of a stream transport's receive buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// Not enough bytes yet.
    Incomplete,
    /// `n` bytes of CRLF keep-alive to discard; `ping` when it was a double-CRLF ping that wants
    /// a single CRLF pong (RFC 5626 §3.5.1).
    KeepAlive { n: usize, ping: bool },
    /// A whole message of `n` bytes.
    Message(usize),
}

/// Frames the next message on a stream transport (TCP, TLS) by its Content-Length, which RFC 3261
/// §18.3 makes mandatory there. An error means the stream cannot be framed any more and the
/// connection should be closed.
pub fn frame_stream(buf: &[u8]) -> Result<Frame, CodecError> {
    let crlf = buf
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    if buf.starts_with(b"\r\n\r\n") {
        return Ok(Frame::KeepAlive { n: 4, ping: true });
    }
    if crlf == buf.len() && crlf < 4 {
        // Possibly the first half of a ping: wait for the rest.
        return Ok(Frame::Incomplete);
    }
    if crlf > 0 {
        return Ok(Frame::KeepAlive {
            n: crlf,
            ping: false,
        });
    }
    let Some((head_len, body_start)) = find_head_end(buf) else {
        if buf.len() > MAX_MESSAGE {
            return Err(CodecError::TooLarge(buf.len()));
        }
        return Ok(Frame::Incomplete);
    };
    let head = std::str::from_utf8(&buf[..head_len]).map_err(|_| CodecError::NotUtf8)?;
    let body_len = content_length(head)?.unwrap_or(0);
    // A declared length near usize::MAX must not wrap: saturate, and the size check refuses it.
    let total = body_start.saturating_add(body_len);
    if total > MAX_MESSAGE {
        return Err(CodecError::TooLarge(total));
    }
    if buf.len() < total {
        return Ok(Frame::Incomplete);
    }
    Ok(Frame::Message(total))
}

/// Parses one datagram or one framed stream message.
pub fn parse(bytes: &[u8]) -> Result<rsip::SipMessage, Malformed> {
    if bytes.len() > MAX_MESSAGE {
        return Err(Malformed::new(CodecError::TooLarge(bytes.len()), None));
    }
    let start = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    let bytes = &bytes[start..];
    if bytes.is_empty() {
        return Err(Malformed::new(CodecError::Empty, None));
    }
    let (head_len, body_start) = match find_head_end(bytes) {
        Some(found) => found,
        // A datagram whose headers end without the blank line: accept it as bodyless, the way
        // most stacks do, rather than refusing a message that is otherwise fine.
        None => (bytes.len(), bytes.len()),
    };
    let head = match std::str::from_utf8(&bytes[..head_len]) {
        Ok(h) => h,
        Err(_) => {
            let lossy = String::from_utf8_lossy(&bytes[..head_len]).into_owned();
            return Err(Malformed::new(CodecError::NotUtf8, Some(&lossy)));
        }
    };
    let normal = match normalise_head(head) {
        Ok(n) => n,
        Err(e) => return Err(Malformed::new(e, Some(head))),
    };
    let fail = |e: CodecError| Malformed::new(e, Some(&normal));
    let available = bytes.len() - body_start;
    let body_len = match content_length(&normal) {
        Ok(Some(n)) if n > available => {
            return Err(fail(CodecError::ShortBody {
                declared: n,
                available,
            }))
        }
        Ok(Some(n)) => n,
        Ok(None) => available,
        Err(e) => return Err(fail(e)),
    };
    // body_len <= available == bytes.len() - body_start (checked above): in bounds, no overflow.
    let body = &bytes[body_start..body_start + body_len];
    check_start_line(&normal).map_err(fail)?;
    let mut text = Vec::with_capacity(normal.len() + 4 + body.len());
    text.extend_from_slice(normal.as_bytes());
    text.extend_from_slice(b"\r\n\r\n");
    text.extend_from_slice(body);
    let msg = rsip::SipMessage::try_from(text.as_slice())
        .map_err(|e| fail(CodecError::Syntax(short(&e.to_string()))))?;
    check_mandatory(&msg).map_err(fail)?;
    Ok(msg)
}

fn short(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Returns (length of the header section, offset of the body).
fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = buf.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(c), Some(l)) if l < c => Some((l, l + 2)),
        (Some(c), _) => Some((c, c + 4)),
        (None, Some(l)) => Some((l, l + 2)),
        (None, None) => None,
    }
}

/// Expands compact header names, unfolds continuation lines and settles on CRLF, so that rsip
/// (and our own header lookups) see one canonical form. The result has no trailing CRLF.
fn normalise_head(head: &str) -> Result<String, CodecError> {
    let mut lines: Vec<String> = Vec::new();
    for raw in head.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.starts_with([' ', '\t']) {
            // RFC 3261 §7.3.1: a line starting with white space continues the previous one.
            if lines.len() < 2 {
                return Err(CodecError::BadStartLine(short(line)));
            }
            if let Some(prev) = lines.last_mut() {
                prev.push(' ');
                prev.push_str(line.trim());
            }
            continue;
        }
        if lines.len() >= MAX_HEADER_LINES {
            return Err(CodecError::TooManyHeaders);
        }
        if lines.is_empty() {
            lines.push(line.to_string());
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(CodecError::Syntax(format!(
                "header line without colon {:?}",
                short(line)
            )));
        };
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(CodecError::Syntax(format!(
                "invalid header name {:?}",
                short(name)
            )));
        }
        lines.push(format!("{}: {}", expand_compact(name), value.trim()));
    }
    Ok(lines.join("\r\n"))
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// RFC 3261 §7.3.3 compact forms, plus the common extensions carriers send.
fn expand_compact(name: &str) -> &str {
    if name.len() != 1 {
        return name;
    }
    match name.as_bytes()[0].to_ascii_lowercase() {
        b'i' => "Call-ID",
        b'm' => "Contact",
        b'e' => "Content-Encoding",
        b'l' => "Content-Length",
        b'c' => "Content-Type",
        b'f' => "From",
        b's' => "Subject",
        b'k' => "Supported",
        b't' => "To",
        b'v' => "Via",
        b'o' => "Event",
        b'r' => "Refer-To",
        b'u' => "Allow-Events",
        _ => name,
    }
}

/// Content-Length from a header section (compact or long form); `None` when absent.
fn content_length(head: &str) -> Result<Option<usize>, CodecError> {
    let mut found = None;
    for line in head.split('\n').skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
            let value = value.trim();
            let n: usize = value
                .parse()
                .map_err(|_| CodecError::BadContentLength(short(value)))?;
            if found.is_some_and(|f| f != n) {
                return Err(CodecError::BadContentLength(short(value)));
            }
            found = Some(n);
        }
    }
    Ok(found)
}

fn check_start_line(head: &str) -> Result<(), CodecError> {
    let line = head.split("\r\n").next().unwrap_or_default();
    let parts: Vec<&str> = line.split(' ').collect();
    if line.starts_with("SIP/") {
        let code_ok = parts.get(1).is_some_and(|c| {
            c.len() == 3 && c.parse::<u16>().is_ok_and(|n| (100..700).contains(&n))
        });
        if parts[0] != "SIP/2.0" || !code_ok {
            return Err(CodecError::BadStartLine(short(line)));
        }
        return Ok(());
    }
    if parts.len() != 3 || parts[2] != "SIP/2.0" || !parts[0].bytes().all(is_token_byte) {
        return Err(CodecError::BadStartLine(short(line)));
    }
    // RFC 3261 §25.1: the Request-URI is a bare absolute URI, never a name-addr.
    let uri = parts[1];
    let has_scheme = uri.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    });
    if !has_scheme || uri.contains(['<', '>', '"']) {
        return Err(CodecError::BadStartLine(short(line)));
    }
    if parts[0].parse::<rsip::Method>().is_err() {
        return Err(CodecError::UnknownMethod(short(parts[0])));
    }
    Ok(())
}

/// The headers without which no layer above can place a message (RFC 3261 §8.1.1).
fn check_mandatory(msg: &rsip::SipMessage) -> Result<(), CodecError> {
    use crate::sip::message::{cseq, header};
    let headers = match msg {
        rsip::SipMessage::Request(r) => &r.headers,
        rsip::SipMessage::Response(r) => &r.headers,
    };
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        if header(headers, name).is_none() {
            return Err(CodecError::Missing(name));
        }
    }
    let (_, cseq_method) = cseq(headers).ok_or_else(|| {
        CodecError::BadHeader("CSeq", short(header(headers, "CSeq").unwrap_or_default()))
    })?;
    if let rsip::SipMessage::Request(r) = msg {
        let method = r.method.to_string();
        if !cseq_method.eq_ignore_ascii_case(&method) {
            return Err(CodecError::CSeqMismatch {
                cseq: cseq_method.to_string(),
                method,
            });
        }
        if let Some(mf) = header(headers, "Max-Forwards") {
            if mf.trim().parse::<u32>().is_err() {
                return Err(CodecError::BadHeader("Max-Forwards", short(mf)));
            }
        }
    }
    Ok(())
}

/// Pulls the echo headers out of a request head by plain text search, for messages rsip refused.
fn salvage(head: &str) -> Option<Salvage> {
    let mut lines: Vec<String> = Vec::new();
    for raw in head.lines() {
        match lines.last_mut() {
            // Folded continuation lines belong to the header above (RFC 3261 §7.3.1).
            Some(prev) if raw.starts_with([' ', '\t']) => {
                prev.push(' ');
                prev.push_str(raw.trim());
            }
            _ => lines.push(raw.to_string()),
        }
    }
    let mut lines = lines.into_iter();
    let start = lines.next()?;
    if start.starts_with("SIP/") {
        return None;
    }
    let method = start.split(' ').next()?.to_string();
    let (mut vias, mut from, mut to, mut call_id, mut cseq) = (Vec::new(), None, None, None, None);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_string();
        if value.is_empty() || value.len() > 1024 || value.chars().any(|c| c.is_control()) {
            continue;
        }
        match expand_compact(name.trim()).to_ascii_lowercase().as_str() {
            "via" => vias.push(value),
            "from" => from = Some(value),
            "to" => to = Some(value),
            "call-id" => call_id = Some(value),
            "cseq" => cseq = Some(value),
            _ => {}
        }
    }
    // Echoing a CSeq the peer cannot match would make our answer garbage too.
    let cseq = cseq.filter(|c| {
        let mut parts = c.split_whitespace();
        parts.next().is_some_and(|n| n.parse::<u32>().is_ok())
            && parts.next().is_some()
            && parts.next().is_none()
    })?;
    if vias.is_empty() {
        return None;
    }
    Some(Salvage {
        method,
        vias,
        from: from?,
        to: to?,
        call_id: call_id?,
        cseq,
    })
}

#[cfg(test)]
mod tests;
