//! How a message finds its transaction: RFC 3261 §17.1.3 for responses reaching a client
//! transaction, §17.2.3 for requests reaching a server transaction.
//!
//! The top Via is read with a small parser of our own rather than rsip's typed Via: rsip 0.4
//! rejects IPv6 sent-by values (`[::1]:5060`), and a message we cannot key is a message we have to
//! refuse. Only the three fields matching needs are extracted: transport, sent-by and branch.
use std::fmt;
use std::hash::{Hash, Hasher};

use rsip::headers::UntypedHeader;
use rsip::prelude::ToTypedHeader;
use rsip::{Header, Headers, Method};

use super::TransactionError;

/// Which side of the exchange a transaction is. Part of the key so that a request we sent to
/// ourselves (or a peer reusing our branch) can never be mistaken for one we received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Client,
    Server,
}

/// Identifies one transaction inside a [`super::TransactionLayer`].
///
/// Client keys are the top Via branch plus the CSeq method (§17.1.3). Server keys add the top
/// Via sent-by (§17.2.3) because branches are only unique per sender. An ACK is keyed as INVITE,
/// so it finds the INVITE transaction it acknowledges; a CANCEL keeps its own method, so it is a
/// transaction of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionKey {
    role: Role,
    branch: String,
    method: Method,
    /// Server keys only: the top Via sent-by with the host lowercased and the default port filled
    /// in, so `Host:5060` and `host` key alike.
    sent_by: Option<String>,
}

// rsip's Method derives no Hash; its discriminant is enough, as every method is a unit variant.
impl Hash for TransactionKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.role.hash(state);
        self.branch.hash(state);
        std::mem::discriminant(&self.method).hash(state);
        self.sent_by.hash(state);
    }
}

impl fmt::Display for TransactionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = match self.role {
            Role::Client => "client",
            Role::Server => "server",
        };
        write!(f, "{role} {} {}", self.method, self.branch)?;
        if let Some(sent_by) = &self.sent_by {
            write!(f, " from {sent_by}")?;
        }
        Ok(())
    }
}

impl TransactionKey {
    pub fn role(&self) -> Role {
        self.role
    }

    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The method of the transaction (INVITE for the ACK of a non-2xx final).
    pub fn method(&self) -> Method {
        self.method
    }

    /// The server transaction a received request belongs to (§17.2.3).
    pub(super) fn for_received_request(request: &rsip::Request) -> Result<Self, TransactionError> {
        let via = TopVia::of(&request.headers)?;
        let cseq_method = cseq_method(&request.headers)?;
        if cseq_method != request.method {
            return Err(TransactionError::MethodMismatch {
                request: request.method,
                cseq: cseq_method,
            });
        }
        let method = match request.method {
            Method::Ack => Method::Invite,
            other => other,
        };
        Ok(TransactionKey {
            role: Role::Server,
            branch: via.branch,
            method,
            sent_by: Some(via.sent_by),
        })
    }

    /// The client transaction a request we are about to send creates (§17.1.3, seen from our side).
    pub(super) fn for_sent_request(request: &rsip::Request) -> Result<Self, TransactionError> {
        let via = TopVia::of(&request.headers)?;
        Ok(Self::client(via.branch, request.method))
    }

    /// The client transaction a received response belongs to (§17.1.3).
    pub(super) fn for_response(response: &rsip::Response) -> Result<Self, TransactionError> {
        let via = TopVia::of(&response.headers)?;
        let method = cseq_method(&response.headers)?;
        Ok(Self::client(via.branch, method))
    }

    pub(super) fn client(branch: String, method: Method) -> Self {
        TransactionKey {
            role: Role::Client,
            branch,
            method,
            sent_by: None,
        }
    }

    /// The same branch and sender with another method: how a CANCEL finds the INVITE it cancels
    /// (§9.2 matches a CANCEL to its INVITE with the §17.2.3 rules, method aside).
    pub(super) fn with_method(&self, method: Method) -> Self {
        TransactionKey {
            method,
            ..self.clone()
        }
    }
}

fn cseq_method(headers: &Headers) -> Result<Method, TransactionError> {
    let cseq = headers
        .iter()
        .find_map(|header| match header {
            Header::CSeq(cseq) => Some(cseq),
            _ => None,
        })
        .ok_or(TransactionError::MissingCSeq)?;
    cseq.typed()
        .map(|typed| typed.method)
        .map_err(|_| TransactionError::MalformedCSeq(cseq.value().to_string()))
}

/// The parts of the top Via that transaction matching uses.
#[derive(Debug, PartialEq, Eq)]
struct TopVia {
    sent_by: String,
    branch: String,
}

impl TopVia {
    fn of(headers: &Headers) -> Result<Self, TransactionError> {
        let value = top_via_value(headers).ok_or(TransactionError::MissingVia)?;
        let parsed = parse_via_parm(first_via_parm(value))
            .ok_or_else(|| TransactionError::MalformedVia(value.to_string()))?;
        let branch = parsed
            .branch
            .ok_or_else(|| TransactionError::MissingBranch(value.to_string()))?;
        Ok(TopVia {
            sent_by: parsed.sent_by,
            branch,
        })
    }
}

/// The first Via header, also under its compact name `v` (rsip leaves compact names in
/// `Header::Other`).
fn top_via_value(headers: &Headers) -> Option<&str> {
    headers.iter().find_map(|header| match header {
        Header::Via(via) => Some(via.value()),
        Header::Other(name, value) if name.trim().eq_ignore_ascii_case("v") => Some(value.as_str()),
        _ => None,
    })
}

/// One Via header line may carry several via-parms separated by commas; the first is the top one.
/// Commas inside quoted parameter values or IPv6 references do not separate.
fn first_via_parm(value: &str) -> &str {
    let mut quoted = false;
    let mut bracketed = false;
    for (index, character) in value.char_indices() {
        match character {
            '"' => quoted = !quoted,
            '[' if !quoted => bracketed = true,
            ']' if !quoted => bracketed = false,
            ',' if !quoted && !bracketed => return &value[..index],
            _ => {}
        }
    }
    value
}

#[derive(Debug, PartialEq, Eq)]
struct ParsedVia {
    sent_by: String,
    branch: Option<String>,
}

/// `SIP / 2.0 / UDP host:port ;param=value ;...` with the linear whitespace RFC 3261 allows around
/// the slashes and the colon.
fn parse_via_parm(via_parm: &str) -> Option<ParsedVia> {
    let mut parts = via_parm.split(';');
    // split always yields at least one item, even for an empty string.
    let head = parts.next()?;
    let mut protocol = head.splitn(3, '/');
    let name = protocol.next()?.trim();
    let version = protocol.next()?.trim();
    let transport_and_sent_by = protocol.next()?.trim_start();
    if !name.eq_ignore_ascii_case("SIP") || version.is_empty() {
        return None;
    }
    let transport_end = transport_and_sent_by
        .find(char::is_whitespace)
        .unwrap_or(transport_and_sent_by.len());
    let (transport, sent_by) = transport_and_sent_by.split_at(transport_end);
    let sent_by = normalise_sent_by(sent_by, transport)?;
    let branch = parts.find_map(|param| {
        let (name, value) = param.split_once('=')?;
        let value = value.trim();
        (name.trim().eq_ignore_ascii_case("branch") && !value.is_empty()).then(|| value.to_string())
    });
    Some(ParsedVia { sent_by, branch })
}

fn normalise_sent_by(sent_by: &str, transport: &str) -> Option<String> {
    let compact: String = sent_by.chars().filter(|c| !c.is_whitespace()).collect();
    let (host, port) = if let Some(after_bracket) = compact.strip_prefix('[') {
        let (address, rest) = after_bracket.split_once(']')?;
        let port = match rest {
            "" => None,
            rest => Some(rest.strip_prefix(':')?),
        };
        (format!("[{address}]"), port)
    } else {
        match compact.split_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (compact.clone(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return None;
    }
    let port: u16 = match port {
        Some(port) => port.parse().ok()?,
        None if transport.eq_ignore_ascii_case("TLS") => 5061,
        None => 5060,
    };
    Some(format!("{}:{port}", host.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(via: &str) -> Option<ParsedVia> {
        parse_via_parm(first_via_parm(via))
    }

    #[test]
    fn reads_sent_by_and_branch_and_fills_in_the_default_port() {
        let via = parse("SIP/2.0/UDP PC33.Atlanta.com;branch=z9hG4bK776asdhds;rport").unwrap();
        assert_eq!(via.sent_by, "pc33.atlanta.com:5060");
        assert_eq!(via.branch.as_deref(), Some("z9hG4bK776asdhds"));
        let tls = parse("SIP/2.0/TLS proxy.example;branch=z9hG4bKx").unwrap();
        assert_eq!(tls.sent_by, "proxy.example:5061");
    }

    #[test]
    fn accepts_ipv6_that_rsip_rejects_and_whitespace_the_rfc_allows() {
        let via = parse("SIP / 2.0 / UDP [2001:DB8::9]:5070 ; branch = z9hG4bKv6").unwrap();
        assert_eq!(via.sent_by, "[2001:db8::9]:5070");
        assert_eq!(via.branch.as_deref(), Some("z9hG4bKv6"));
        let no_port = parse("SIP/2.0/TCP [::1];branch=z9hG4bKq").unwrap();
        assert_eq!(no_port.sent_by, "[::1]:5060");
    }

    #[test]
    fn takes_only_the_first_via_parm_of_a_combined_line() {
        let via =
            parse("SIP/2.0/UDP a.example:5062;branch=z9hG4bKtop, SIP/2.0/UDP b;branch=z9hG4bKlow")
                .unwrap();
        assert_eq!(via.sent_by, "a.example:5062");
        assert_eq!(via.branch.as_deref(), Some("z9hG4bKtop"));
    }

    #[test]
    fn rejects_garbage_and_reports_a_missing_branch() {
        assert_eq!(parse("HTTP/1.1/TCP a"), None);
        assert_eq!(parse("SIP/2.0/UDP a:notaport;branch=x"), None);
        assert_eq!(parse("SIP/2.0/UDP"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("SIP/2.0/UDP a;branch=").unwrap().branch, None);
        assert_eq!(
            parse("SIP/2.0/UDP a;received=1.2.3.4").unwrap().branch,
            None
        );
    }

    #[test]
    fn ack_keys_as_invite_and_cancel_keeps_its_own_method() {
        let raw = |method: &str| {
            format!(
                "{method} sip:bob@b.example SIP/2.0\r\nv: SIP/2.0/UDP a.example;branch=z9hG4bK1\r\n\
                 CSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
            )
        };
        let key_of = |method: &str| match rsip::SipMessage::try_from(raw(method)).unwrap() {
            rsip::SipMessage::Request(request) => {
                TransactionKey::for_received_request(&request).unwrap()
            }
            rsip::SipMessage::Response(_) => unreachable!("a request was parsed"),
        };
        let invite = key_of("INVITE");
        assert_eq!(key_of("ACK"), invite);
        assert_ne!(key_of("CANCEL"), invite);
        assert_eq!(key_of("CANCEL").with_method(Method::Invite), invite);
        assert_eq!(
            invite.to_string(),
            "server INVITE z9hG4bK1 from a.example:5060"
        );
    }
}
