//! The few messages a transaction writes itself (100 Trying, the ACK for a non-2xx final) and the
//! small facts machines read off responses.
use std::collections::hash_map::DefaultHasher;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

use bytes::Bytes;
use rsip::headers::UntypedHeader;
use rsip::{Header, Headers, Method};

/// Serialises once; retransmissions clone the `Bytes`, not the message.
pub(super) fn encode(message: impl Into<rsip::SipMessage>) -> Bytes {
    Bytes::from(message.into().to_string())
}

/// What a status code means to a transaction state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StatusClass {
    /// 1xx
    Provisional,
    /// 2xx
    Success,
    /// 3xx–6xx: the finals an INVITE transaction acknowledges itself.
    Failure,
}

pub(super) fn status_class(code: u16) -> Option<StatusClass> {
    match code {
        100..=199 => Some(StatusClass::Provisional),
        200..=299 => Some(StatusClass::Success),
        300..=699 => Some(StatusClass::Failure),
        _ => None,
    }
}

/// Compact header names rsip leaves in `Header::Other` (RFC 3261 §7.3.3).
fn is_compact(header: &Header, compact: &str) -> bool {
    matches!(header, Header::Other(name, _) if name.trim().eq_ignore_ascii_case(compact))
}

fn is_to(header: &Header) -> bool {
    matches!(header, Header::To(_)) || is_compact(header, "t")
}

fn header_value(header: &Header) -> Option<&str> {
    match header {
        Header::To(to) => Some(to.value()),
        Header::Other(_, value) => Some(value),
        _ => None,
    }
}

/// The To tag, read without rsip's typed To (whose URI parser truncates some parameter values).
/// In name-addr form the header parameters follow the `>`; in addr-spec form every `;` parameter
/// belongs to the header (RFC 3261 §20.39).
pub(super) fn to_tag(headers: &Headers) -> Option<String> {
    let value = headers
        .iter()
        .find(|header| is_to(header))
        .and_then(header_value)?;
    let params = match value.rfind('>') {
        Some(close) if value.contains('<') => &value[close + 1..],
        _ => value,
    };
    params.split(';').skip(1).find_map(|param| {
        let (name, tag) = param.split_once('=')?;
        let tag = tag.trim();
        (name.trim().eq_ignore_ascii_case("tag") && !tag.is_empty()).then(|| tag.to_string())
    })
}

/// The 100 Trying an INVITE server transaction sends at once (§17.2.1), built as §8.2.6 asks: the
/// request's Via, From, To, Call-ID, CSeq and Timestamp, no body.
pub(super) fn trying_for(request: &rsip::Request) -> rsip::Response {
    let mut headers = Headers::default();
    for header in request.headers.iter() {
        let copied = matches!(
            header,
            Header::Via(_)
                | Header::From(_)
                | Header::To(_)
                | Header::CallId(_)
                | Header::CSeq(_)
                | Header::Timestamp(_)
        ) || ["v", "f", "t", "i"]
            .iter()
            .any(|compact| is_compact(header, compact));
        if copied {
            headers.push(header.clone());
        }
    }
    headers.push(rsip::headers::ContentLength::new("0").into());
    rsip::Response {
        status_code: rsip::StatusCode::Trying,
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    }
}

/// The ACK an INVITE client transaction sends for a 3xx–6xx final (§17.1.1.3): the INVITE's
/// Request-URI, top Via, Route set, Call-ID, From and CSeq number, the response's To (it carries
/// the tag the UAS chose), no body.
pub(super) fn ack_for(invite: &rsip::Request, response: &rsip::Response) -> rsip::Request {
    let mut headers = Headers::default();
    if let Some(top_via) = invite
        .headers
        .iter()
        .find(|header| matches!(header, Header::Via(_)) || is_compact(header, "v"))
    {
        headers.push(top_via.clone());
    }
    for route in invite
        .headers
        .iter()
        .filter(|header| matches!(header, Header::Route(_)))
    {
        headers.push(route.clone());
    }
    headers.push(rsip::headers::MaxForwards::new("70").into());
    for header in invite.headers.iter() {
        let copied = matches!(header, Header::From(_) | Header::CallId(_))
            || is_compact(header, "f")
            || is_compact(header, "i");
        if copied {
            headers.push(header.clone());
        }
    }
    let to = response
        .headers
        .iter()
        .find(|header| is_to(header))
        .or_else(|| invite.headers.iter().find(|header| is_to(header)));
    if let Some(to) = to {
        headers.push(to.clone());
    }
    headers.push(rsip::headers::CSeq::new(format!("{} ACK", cseq_number(invite))).into());
    headers.push(rsip::headers::ContentLength::new("0").into());
    rsip::Request {
        method: Method::Ack,
        uri: invite.uri.clone(),
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    }
}

/// The INVITE's CSeq number as written. The TU always sets a CSeq; if it did not, "1" keeps the
/// ACK well-formed rather than refusing to acknowledge.
fn cseq_number(request: &rsip::Request) -> String {
    request
        .headers
        .iter()
        .find_map(|header| match header {
            Header::CSeq(cseq) => cseq.value().split_whitespace().next().map(str::to_string),
            _ => None,
        })
        .unwrap_or_else(|| "1".to_string())
}

/// Remembers which responses were already passed to the TU, so a retransmitted provisional
/// (re-sent by the far server transaction whenever our request was retransmitted) is absorbed
/// while a new one (183 after 180, or the same code with a new body) still goes up.
#[derive(Debug, Default)]
pub(super) struct DeliveredResponses {
    fingerprints: VecDeque<u64>,
}

/// A peer can send any number of distinct provisionals; remembering the last few is enough to
/// catch retransmissions, which repeat the most recent one.
const REMEMBERED_RESPONSES: usize = 16;

impl DeliveredResponses {
    /// True the first time this exact response is seen.
    pub(super) fn first_time(&mut self, response: &rsip::Response) -> bool {
        let mut hasher = DefaultHasher::new();
        response.to_string().hash(&mut hasher);
        let fingerprint = hasher.finish();
        if self.fingerprints.contains(&fingerprint) {
            return false;
        }
        if self.fingerprints.len() == REMEMBERED_RESPONSES {
            self.fingerprints.pop_front();
        }
        self.fingerprints.push_back(fingerprint);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsip::prelude::*;

    fn parse_request(raw: &str) -> rsip::Request {
        rsip::Request::try_from(rsip::SipMessage::try_from(raw).unwrap()).unwrap()
    }

    fn parse_response(raw: &str) -> rsip::Response {
        rsip::Response::try_from(rsip::SipMessage::try_from(raw).unwrap()).unwrap()
    }

    const INVITE: &str = "INVITE sip:bob@biloxi.example SIP/2.0\r\n\
        Via: SIP/2.0/UDP pc33.atlanta.example;branch=z9hG4bKnashds8\r\n\
        Via: SIP/2.0/UDP relay.example;branch=z9hG4bKrelay\r\n\
        Route: <sip:edge.example;lr>\r\n\
        Max-Forwards: 69\r\n\
        From: Alice <sip:alice@atlanta.example>;tag=1928301774\r\n\
        To: Bob <sip:bob@biloxi.example>\r\n\
        Call-ID: a84b4c76e66710\r\n\
        CSeq: 314159 INVITE\r\n\
        Timestamp: 54\r\n\
        Contact: <sip:alice@pc33.atlanta.example>\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn trying_copies_the_headers_section_8_2_6_names_and_nothing_else() {
        let trying = trying_for(&parse_request(INVITE));
        let text = trying.to_string();
        assert!(text.starts_with("SIP/2.0 100 Trying\r\n"), "{text}");
        assert_eq!(text.matches("Via:").count(), 2, "{text}");
        assert!(text.contains("Timestamp: 54"));
        assert!(text.contains("CSeq: 314159 INVITE"));
        assert!(!text.contains("Contact"), "{text}");
        assert!(!text.contains("Route"), "{text}");
        assert!(text.contains("Content-Length: 0"));
    }

    #[test]
    fn ack_for_a_failure_carries_the_response_to_tag_and_the_invite_top_via_only() {
        let invite = parse_request(INVITE);
        let busy = parse_response(
            "SIP/2.0 486 Busy Here\r\n\
             Via: SIP/2.0/UDP pc33.atlanta.example;branch=z9hG4bKnashds8\r\n\
             From: Alice <sip:alice@atlanta.example>;tag=1928301774\r\n\
             To: Bob <sip:bob@biloxi.example>;tag=a6c85cf\r\n\
             Call-ID: a84b4c76e66710\r\n\
             CSeq: 314159 INVITE\r\n\
             Content-Length: 0\r\n\r\n",
        );
        let ack = ack_for(&invite, &busy);
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.uri, invite.uri);
        let text = ack.to_string();
        assert_eq!(text.matches("Via:").count(), 1, "{text}");
        assert!(text.contains("branch=z9hG4bKnashds8"));
        assert!(text.contains("Route: <sip:edge.example;lr>"));
        assert_eq!(
            ack.to_header().unwrap().tag().unwrap().unwrap().value(),
            "a6c85cf"
        );
        assert_eq!(ack.cseq_header().unwrap().typed().unwrap().seq, 314159);
        assert_eq!(ack.cseq_header().unwrap().method().unwrap(), Method::Ack);
        assert_eq!(ack.call_id_header().unwrap().value(), "a84b4c76e66710");
    }

    #[test]
    fn to_tag_reads_name_addr_and_addr_spec_forms() {
        let headers = |to: &str| -> Headers {
            let mut headers = Headers::default();
            headers.push(rsip::headers::To::new(to).into());
            headers
        };
        assert_eq!(
            to_tag(&headers("<sip:b@x;tag=not-this>;tag=abc")).as_deref(),
            Some("abc")
        );
        assert_eq!(
            to_tag(&headers("sip:b@x;tag=plain")).as_deref(),
            Some("plain")
        );
        assert_eq!(to_tag(&headers("Bob <sip:b@x>")), None);
        let mut compact = Headers::default();
        compact.push(Header::Other("t".into(), "<sip:b@x>;TAG=c1".into()));
        assert_eq!(to_tag(&compact).as_deref(), Some("c1"));
    }

    #[test]
    fn delivered_responses_absorb_exact_repeats_only() {
        let ringing = parse_response(
            "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nCSeq: 1 INVITE\r\n\r\n",
        );
        let mut progress = ringing.clone();
        progress.status_code = rsip::StatusCode::SessionProgress;
        let mut delivered = DeliveredResponses::default();
        assert!(delivered.first_time(&ringing));
        assert!(!delivered.first_time(&ringing));
        assert!(delivered.first_time(&progress));
    }
}
