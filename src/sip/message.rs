//! Reading and building SIP messages on top of rsip's untyped headers.
//!
//! rsip keeps header values as the text that arrived; these helpers read the few fields the
//! stack needs (tags, CSeq, the top Via) straight from that text, so a header rsip's typed
//! parsers would reject (see its URI-parameter bug) never takes a call down with it.
use rand::Rng;
use rsip::headers::UntypedHeader;
use rsip::Header;

/// Methods this gateway handles; sent in Allow on OPTIONS, 405 and 501 answers.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE";
pub const ALLOW_HEADER: &str = "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE";

/// Name and raw value of a header, for every header kind the stack reads.
pub fn name_value(h: &Header) -> Option<(&str, &str)> {
    Some(match h {
        Header::Via(v) => ("Via", v.value()),
        Header::From(v) => ("From", v.value()),
        Header::To(v) => ("To", v.value()),
        Header::CallId(v) => ("Call-ID", v.value()),
        Header::CSeq(v) => ("CSeq", v.value()),
        Header::MaxForwards(v) => ("Max-Forwards", v.value()),
        Header::Contact(v) => ("Contact", v.value()),
        Header::ContentType(v) => ("Content-Type", v.value()),
        Header::ContentLength(v) => ("Content-Length", v.value()),
        Header::RecordRoute(v) => ("Record-Route", v.value()),
        Header::Route(v) => ("Route", v.value()),
        Header::Require(v) => ("Require", v.value()),
        Header::Supported(v) => ("Supported", v.value()),
        Header::Allow(v) => ("Allow", v.value()),
        Header::UserAgent(v) => ("User-Agent", v.value()),
        Header::Server(v) => ("Server", v.value()),
        Header::WwwAuthenticate(v) => ("WWW-Authenticate", v.value()),
        Header::ProxyAuthenticate(v) => ("Proxy-Authenticate", v.value()),
        Header::Authorization(v) => ("Authorization", v.value()),
        Header::ProxyAuthorization(v) => ("Proxy-Authorization", v.value()),
        Header::Expires(v) => ("Expires", v.value()),
        Header::MinExpires(v) => ("Min-Expires", v.value()),
        Header::Event(v) => ("Event", v.value()),
        Header::SubscriptionState(v) => ("Subscription-State", v.value()),
        Header::Other(k, v) => (k.as_str(), v.as_str()),
        _ => return None,
    })
}

/// The first header called `name` (case-insensitive).
pub fn header<'a>(headers: &'a rsip::Headers, name: &str) -> Option<&'a str> {
    headers.iter().find_map(|h| match name_value(h) {
        Some((n, v)) if n.eq_ignore_ascii_case(name) => Some(v),
        _ => None,
    })
}

/// Every header called `name`, in message order.
pub fn headers_named<'a>(
    headers: &'a rsip::Headers,
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers.iter().filter_map(move |h| match name_value(h) {
        Some((n, v)) if n.eq_ignore_ascii_case(name) => Some(v),
        _ => None,
    })
}

/// Every value of a header that may be comma-separated (Via, Record-Route, Require), in order.
pub fn list_values<'a>(headers: &'a rsip::Headers, name: &'a str) -> Vec<&'a str> {
    headers_named(headers, name)
        .flat_map(split_commas)
        .collect()
}

/// Splits a header value on commas that are outside quotes and angle brackets.
pub fn split_commas(value: &str) -> Vec<&str> {
    let (mut out, mut start, mut quoted, mut angle) = (Vec::new(), 0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out.retain(|v| !v.is_empty());
    out
}

/// A header parameter (`;tag=…`, `;branch=…`) of a name-addr or Via value: parameters after the
/// closing `>` when there is one, else after the first `;`.
pub fn header_param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let params = match value.rfind('>') {
        Some(end) => &value[end + 1..],
        None => value.split_once(';').map(|(_, p)| p).unwrap_or(""),
    };
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The URI of a name-addr (`"Bob" <sip:bob@x>;tag=1` → `sip:bob@x`) or addr-spec.
pub fn uri_part(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(s), Some(e)) if s < e => &value[s + 1..e],
        _ => value.split(';').next().unwrap_or(value).trim(),
    }
}

pub fn call_id(headers: &rsip::Headers) -> Option<&str> {
    header(headers, "Call-ID").map(str::trim)
}

/// CSeq number and method.
pub fn cseq(headers: &rsip::Headers) -> Option<(u32, &str)> {
    let mut parts = header(headers, "CSeq")?.split_whitespace();
    let num = parts.next()?.parse().ok()?;
    let method = parts.next()?;
    parts.next().is_none().then_some((num, method))
}

pub fn from_tag(headers: &rsip::Headers) -> Option<&str> {
    header(headers, "From").and_then(|v| header_param(v, "tag"))
}

pub fn to_tag(headers: &rsip::Headers) -> Option<&str> {
    header(headers, "To")
        .and_then(|v| header_param(v, "tag"))
        .filter(|t| !t.is_empty())
}

pub fn max_forwards(headers: &rsip::Headers) -> Option<u32> {
    header(headers, "Max-Forwards").and_then(|v| v.trim().parse().ok())
}

pub fn content_type(headers: &rsip::Headers) -> Option<&str> {
    header(headers, "Content-Type").map(str::trim)
}

/// A fresh dialog tag: 64 random bits from `rng` (the caller's seeded RNG; the cores draw no
/// entropy of their own).
pub fn new_tag<R: Rng + ?Sized>(rng: &mut R) -> String {
    format!("{:016x}", rng.gen::<u64>())
}

/// Builds the response to `req` with the echo headers of RFC 3261 §8.2.6.2. `to_tag` is added to
/// To when it has none (every response but 100 establishes or belongs to our side of a dialog).
pub fn response_to(
    req: &rsip::Request,
    code: u16,
    reason: Option<&str>,
    to_tag: Option<&str>,
) -> rsip::Response {
    let mut headers = rsip::Headers::default();
    for h in req.headers.iter() {
        match name_value(h) {
            Some(("Via" | "From" | "Call-ID" | "CSeq", _)) => headers.push(h.clone()),
            Some(("To", v)) => match to_tag {
                Some(tag) if code > 100 && header_param(v, "tag").is_none() => {
                    headers.push(Header::To(rsip::headers::To::new(format!("{v};tag={tag}"))))
                }
                _ => headers.push(h.clone()),
            },
            // Record-Route is echoed in responses that create a dialog (RFC 3261 §12.1.1).
            Some(("Record-Route", _)) if (101..300).contains(&code) => headers.push(h.clone()),
            _ => {}
        }
    }
    let status_code = match reason {
        Some(r) => rsip::StatusCode::Other(code, r.to_string()),
        None => rsip::StatusCode::from(code),
    };
    let mut resp = rsip::Response {
        status_code,
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    };
    set_body(&mut resp.headers, &mut resp.body, None, Vec::new());
    resp
}

/// Replaces the body and keeps Content-Type and Content-Length in step with it.
pub fn set_body(
    headers: &mut rsip::Headers,
    body_slot: &mut Vec<u8>,
    content_type: Option<&str>,
    body: Vec<u8>,
) {
    headers.retain(|h| !matches!(name_value(h), Some(("Content-Type" | "Content-Length", _))));
    if let Some(ct) = content_type {
        headers.push(Header::ContentType(rsip::headers::ContentType::new(ct)));
    }
    headers.push(Header::ContentLength(rsip::headers::ContentLength::new(
        body.len().to_string(),
    )));
    *body_slot = body;
}

/// Adds a header given by name, for headers rsip has no variant for or we do not parse.
pub fn push(headers: &mut rsip::Headers, name: &str, value: impl Into<String>) {
    headers.push(Header::Other(name.to_string(), value.into()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_read_after_the_angle_bracket() {
        let v = "\"Bob\" <sip:bob@x;tag=uri>;tag=abc ; foo";
        assert_eq!(header_param(v, "tag"), Some("abc"));
        assert_eq!(header_param("sip:bob@x;tag=9", "tag"), Some("9"));
        assert_eq!(header_param("<sip:bob@x>", "tag"), None);
        assert_eq!(uri_part(v), "sip:bob@x;tag=uri");
        assert_eq!(uri_part("sip:a@b;tag=1"), "sip:a@b");
    }

    #[test]
    fn commas_inside_quotes_and_brackets_do_not_split() {
        assert_eq!(
            split_commas("SIP/2.0/UDP a;branch=1, SIP/2.0/UDP b"),
            vec!["SIP/2.0/UDP a;branch=1", "SIP/2.0/UDP b"]
        );
        assert_eq!(
            split_commas("\"a, b\" <sip:x@y>, <sip:z,w@q>"),
            vec!["\"a, b\" <sip:x@y>", "<sip:z,w@q>"]
        );
    }
}
