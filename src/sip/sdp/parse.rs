//! Text → [`SessionDescription`].
//!
//! Tolerant where carriers differ harmlessly: LF or CRLF, blank lines, trailing blanks and runs of
//! spaces between fields, attribute names in any case, session-level lines in any order, a
//! missing `t=`. Strict where a mistake would change the call: every line must be `<letter>=`,
//! line types must be known and in the right section, numbers must be plain decimal and in range,
//! RTP formats must be payload types. Every refusal names the line number and shows the line.

use std::net::IpAddr;

use super::direction::Direction;
use super::model::{
    AddrType, Attribute, Bandwidth, Connection, Fmtp, MediaDescription, Origin, Rtcp, Rtpmap,
    SessionDescription, Timing,
};

/// Larger than any SDP a SIP message over UDP can carry, small enough that a hostile body cannot
/// make us allocate much per call.
pub const MAX_SDP_BYTES: usize = 65_536;

/// How much of an offending line an error quotes: enough to recognise it in a log.
const EXCERPT_CHARS: usize = 120;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("sdp body of {len} bytes exceeds the limit of {MAX_SDP_BYTES} bytes")]
    TooLarge { len: usize },
    #[error("sdp body is empty")]
    Empty,
    #[error("sdp line {line} {text:?}: {reason}")]
    Line {
        /// 1-based, counting every line including blank ones.
        line: usize,
        /// The line as received, cut to a readable length.
        text: String,
        reason: SdpLineError,
    },
    #[error("sdp has no {0} line")]
    Missing(&'static str),
}

/// Why one line was refused. `field` names the part of the line at fault in the words of RFC 8866
/// (`port`, `session id`, `attribute name`), so the message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpLineError {
    #[error("not a <type>=<value> line")]
    NotTypeValue,
    #[error("line type {0:?} is not a lowercase letter")]
    LineTypeNotLowercase(char),
    #[error("line contains a carriage return or NUL")]
    CarriageReturnOrNul,
    #[error("expected v=0 as the first line")]
    VersionNotFirst,
    #[error("unsupported sdp version {0:?}")]
    UnsupportedVersion(String),
    #[error("unknown line type {0:?}")]
    UnknownLineType(char),
    #[error("duplicate {0}= line")]
    DuplicateLine(char),
    #[error("{0}= line belongs before the first m= line, not inside a media description")]
    SessionLineInMedia(char),
    #[error("r= line without a preceding t= line")]
    RepeatWithoutTiming,

    #[error("{field} {text:?} is not a decimal number")]
    NotDecimal { field: &'static str, text: String },
    #[error("{field} {text} is out of range")]
    OutOfRange { field: &'static str, text: String },
    #[error("{field} {text:?} is not a token")]
    NotToken { field: &'static str, text: String },

    #[error("o= needs <username> <sess-id> <sess-version> IN <addrtype> <address>")]
    MalformedOrigin,
    #[error("c= needs IN <addrtype> <address>")]
    MalformedConnection,
    #[error("b= needs <bwtype>:<bandwidth>")]
    MalformedBandwidth,
    #[error("t= needs <start-time> <stop-time>")]
    MalformedTiming,
    #[error("m= needs <media> <port> <proto> <fmt> ...")]
    MalformedMedia,
    #[error("rtpmap needs <payload type> <encoding name>/<clock rate>")]
    MalformedRtpmap,
    #[error("rtcp needs <port> [IN <addrtype> <address>]")]
    MalformedRtcp,

    #[error("network type {0:?} is not IN")]
    NetworkTypeNotIn(String),
    #[error("address type {0:?} is neither IP4 nor IP6")]
    UnknownAddressType(String),
    #[error("address suffix in {0:?} is not /<ttl>[/<count>]")]
    BadAddressSuffix(String),
    #[error("address {address} is not an {} address", expected.as_str())]
    WrongAddressFamily { address: String, expected: AddrType },
    #[error("address {address:?} is neither an {} address nor a host name", expected.as_str())]
    NotAnAddress { address: String, expected: AddrType },

    #[error("payload type {0} is above 127")]
    PayloadTypeAbove127(u8),
    #[error("encoding {0:?} lacks /<clock rate>")]
    NoClockRate(String),
    #[error("clock rate 0")]
    ZeroClockRate,
    #[error("a={0} needs a value")]
    AttributeNeedsValue(String),
    #[error("a={0} takes no value")]
    AttributeTakesNoValue(String),
}

/// Parses an SDP body. Never panics, whatever the input.
pub fn parse(input: &str) -> Result<SessionDescription, SdpError> {
    if input.len() > MAX_SDP_BYTES {
        return Err(SdpError::TooLarge { len: input.len() });
    }
    let mut parser = Parser::default();
    for (index, raw_line) in input.split('\n').enumerate() {
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        if line.trim().is_empty() {
            continue;
        }
        parser.line(line).map_err(|reason| SdpError::Line {
            line: index + 1,
            text: excerpt(line),
            reason,
        })?;
    }
    parser.finish()
}

fn excerpt(line: &str) -> String {
    match line.char_indices().nth(EXCERPT_CHARS) {
        // `cut` comes from char_indices, so it is a char boundary.
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

/// Collects lines; `media` non-empty means we are inside the last `m=` section.
#[derive(Default)]
struct Parser {
    seen_version: bool,
    origin: Option<Origin>,
    session_name: Option<String>,
    information: Option<String>,
    uri: Option<String>,
    emails: Vec<String>,
    phones: Vec<String>,
    connection: Option<Connection>,
    bandwidths: Vec<Bandwidth>,
    timing: Vec<Timing>,
    time_zones: Option<String>,
    encryption_key: Option<String>,
    attributes: Vec<Attribute>,
    media: Vec<MediaDescription>,
}

type LineResult = Result<(), SdpLineError>;

impl Parser {
    fn line(&mut self, line: &str) -> LineResult {
        let (kind, value) = split_line(line)?;
        if !self.seen_version {
            if kind != 'v' {
                return Err(SdpLineError::VersionNotFirst);
            }
            if value.trim() != "0" {
                return Err(SdpLineError::UnsupportedVersion(value.trim().to_owned()));
            }
            self.seen_version = true;
            return Ok(());
        }
        if kind == 'm' {
            self.media.push(parse_media(value)?);
            return Ok(());
        }
        match self.media.last_mut() {
            Some(media) => media_line(media, kind, value),
            None => self.session_line(kind, value),
        }
    }

    fn session_line(&mut self, kind: char, value: &str) -> LineResult {
        match kind {
            'v' => Err(SdpLineError::DuplicateLine('v')),
            'o' => set_once(&mut self.origin, parse_origin(value)?, kind),
            's' => set_once(&mut self.session_name, value.to_owned(), kind),
            'i' => set_once(&mut self.information, value.to_owned(), kind),
            'u' => set_once(&mut self.uri, value.to_owned(), kind),
            'e' => {
                self.emails.push(value.to_owned());
                Ok(())
            }
            'p' => {
                self.phones.push(value.to_owned());
                Ok(())
            }
            'c' => set_once(&mut self.connection, parse_connection(value)?, kind),
            'b' => {
                self.bandwidths.push(parse_bandwidth(value)?);
                Ok(())
            }
            't' => {
                self.timing.push(parse_timing(value)?);
                Ok(())
            }
            'r' => match self.timing.last_mut() {
                Some(timing) => {
                    timing.repeats.push(value.to_owned());
                    Ok(())
                }
                None => Err(SdpLineError::RepeatWithoutTiming),
            },
            'z' => set_once(&mut self.time_zones, value.to_owned(), kind),
            'k' => set_once(&mut self.encryption_key, value.to_owned(), kind),
            'a' => {
                self.attributes.push(parse_attribute(value)?);
                Ok(())
            }
            other => Err(SdpLineError::UnknownLineType(other)),
        }
    }

    fn finish(self) -> Result<SessionDescription, SdpError> {
        if !self.seen_version {
            return Err(SdpError::Empty);
        }
        let mut timing = self.timing;
        if timing.is_empty() {
            timing.push(Timing::default());
        }
        Ok(SessionDescription {
            origin: self.origin.ok_or(SdpError::Missing("o="))?,
            session_name: self.session_name.ok_or(SdpError::Missing("s="))?,
            information: self.information,
            uri: self.uri,
            emails: self.emails,
            phones: self.phones,
            connection: self.connection,
            bandwidths: self.bandwidths,
            timing,
            time_zones: self.time_zones,
            encryption_key: self.encryption_key,
            attributes: self.attributes,
            media: self.media,
        })
    }
}

fn media_line(media: &mut MediaDescription, kind: char, value: &str) -> LineResult {
    match kind {
        'i' => set_once(&mut media.information, value.to_owned(), kind),
        'c' => set_once(&mut media.connection, parse_connection(value)?, kind),
        'b' => {
            media.bandwidths.push(parse_bandwidth(value)?);
            Ok(())
        }
        'k' => set_once(&mut media.encryption_key, value.to_owned(), kind),
        'a' => {
            media.attributes.push(parse_attribute(value)?);
            Ok(())
        }
        'v' | 'o' | 's' | 'u' | 'e' | 'p' | 't' | 'r' | 'z' => {
            Err(SdpLineError::SessionLineInMedia(kind))
        }
        other => Err(SdpLineError::UnknownLineType(other)),
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T, kind: char) -> LineResult {
    if slot.is_some() {
        return Err(SdpLineError::DuplicateLine(kind));
    }
    *slot = Some(value);
    Ok(())
}

/// `<letter>=<value>`; the value may hold any text except NUL and stray CR (RFC 8866 §9).
fn split_line(line: &str) -> Result<(char, &str), SdpLineError> {
    let mut chars = line.chars();
    let (Some(kind), Some('=')) = (chars.next(), chars.next()) else {
        return Err(SdpLineError::NotTypeValue);
    };
    if !kind.is_ascii_lowercase() {
        return Err(SdpLineError::LineTypeNotLowercase(kind));
    }
    // The first two characters are ASCII ('=' and a lowercase letter), so byte 2 is a boundary.
    let value = &line[2..];
    if value.contains(['\r', '\0']) {
        return Err(SdpLineError::CarriageReturnOrNul);
    }
    Ok((kind, value))
}

/// RFC 8866 token characters: visible ASCII except separators.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|byte| {
            matches!(byte,
                b'!' | b'#'..=b'\'' | b'*' | b'+' | b'-' | b'.' | b'0'..=b'9' | b'A'..=b'Z'
                | b'^'..=b'~')
        })
}

/// Plain decimal only: `str::parse` would also take a leading `+`.
fn decimal<T: std::str::FromStr>(text: &str, field: &'static str) -> Result<T, SdpLineError> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(SdpLineError::NotDecimal {
            field,
            text: text.to_owned(),
        });
    }
    text.parse().map_err(|_| SdpLineError::OutOfRange {
        field,
        text: text.to_owned(),
    })
}

fn check_token(text: &str, field: &'static str) -> Result<(), SdpLineError> {
    if is_token(text) {
        Ok(())
    } else {
        Err(SdpLineError::NotToken {
            field,
            text: text.to_owned(),
        })
    }
}

fn fields(value: &str) -> Vec<&str> {
    value.split_ascii_whitespace().collect()
}

fn parse_origin(value: &str) -> Result<Origin, SdpLineError> {
    let [username, session_id, session_version, net_type, addr_type, address] = fields(value)[..]
    else {
        return Err(SdpLineError::MalformedOrigin);
    };
    let addr_type = parse_net_and_addr_type(net_type, addr_type)?;
    check_address(addr_type, address)?;
    Ok(Origin {
        username: username.to_owned(),
        session_id: decimal(session_id, "session id")?,
        session_version: decimal(session_version, "session version")?,
        addr_type,
        address: address.to_owned(),
    })
}

fn parse_connection(value: &str) -> Result<Connection, SdpLineError> {
    let [net_type, addr_type, address] = fields(value)[..] else {
        return Err(SdpLineError::MalformedConnection);
    };
    connection_from(net_type, addr_type, address)
}

fn connection_from(
    net_type: &str,
    addr_type: &str,
    address: &str,
) -> Result<Connection, SdpLineError> {
    let addr_type = parse_net_and_addr_type(net_type, addr_type)?;
    check_address(addr_type, address)?;
    Ok(Connection {
        addr_type,
        address: address.to_owned(),
    })
}

fn parse_net_and_addr_type(net_type: &str, addr_type: &str) -> Result<AddrType, SdpLineError> {
    if !net_type.eq_ignore_ascii_case("IN") {
        return Err(SdpLineError::NetworkTypeNotIn(net_type.to_owned()));
    }
    if addr_type.eq_ignore_ascii_case("IP4") {
        Ok(AddrType::Ip4)
    } else if addr_type.eq_ignore_ascii_case("IP6") {
        Ok(AddrType::Ip6)
    } else {
        Err(SdpLineError::UnknownAddressType(addr_type.to_owned()))
    }
}

/// An IP literal must match its family; host names pass (resolving is not a parser's job), but
/// something that only looks like an IP literal (`999.1.1.1`, `fe80::zz`) is refused, as is a
/// multicast suffix that is not `/<ttl>[/<count>]`.
fn check_address(addr_type: AddrType, address: &str) -> Result<(), SdpLineError> {
    let mut parts = address.split('/');
    let literal = parts.next().unwrap_or_default();
    if parts.any(|part| part.is_empty() || !part.bytes().all(|byte| byte.is_ascii_digit())) {
        return Err(SdpLineError::BadAddressSuffix(address.to_owned()));
    }
    if let Ok(ip) = literal.parse::<IpAddr>() {
        if AddrType::of(ip) != addr_type {
            return Err(SdpLineError::WrongAddressFamily {
                address: literal.to_owned(),
                expected: addr_type,
            });
        }
        return Ok(());
    }
    let looks_numeric = literal
        .bytes()
        .all(|byte| byte.is_ascii_digit() || byte == b'.');
    let is_host_name = !literal.is_empty()
        && literal
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.');
    if literal.contains(':') || looks_numeric || !is_host_name {
        return Err(SdpLineError::NotAnAddress {
            address: literal.to_owned(),
            expected: addr_type,
        });
    }
    Ok(())
}

fn parse_bandwidth(value: &str) -> Result<Bandwidth, SdpLineError> {
    let Some((kind, amount)) = value.trim().split_once(':') else {
        return Err(SdpLineError::MalformedBandwidth);
    };
    check_token(kind, "bandwidth type")?;
    Ok(Bandwidth {
        kind: kind.to_owned(),
        value: decimal(amount, "bandwidth")?,
    })
}

fn parse_timing(value: &str) -> Result<Timing, SdpLineError> {
    let [start, stop] = fields(value)[..] else {
        return Err(SdpLineError::MalformedTiming);
    };
    Ok(Timing {
        start: decimal(start, "start time")?,
        stop: decimal(stop, "stop time")?,
        repeats: Vec::new(),
    })
}

fn parse_media(value: &str) -> Result<MediaDescription, SdpLineError> {
    let fields = fields(value);
    let [media_type, port_field, proto, ref formats @ ..] = fields[..] else {
        return Err(SdpLineError::MalformedMedia);
    };
    check_token(media_type, "media type")?;
    if !proto.split('/').all(is_token) {
        return Err(SdpLineError::NotToken {
            field: "transport protocol",
            text: proto.to_owned(),
        });
    }
    let (port, port_count) = match port_field.split_once('/') {
        Some((port, count)) => (port, Some(decimal(count, "port count")?)),
        None => (port_field, None),
    };
    let port = decimal(port, "port")?;
    let rtp = proto.to_ascii_uppercase().contains("RTP/");
    for format in formats {
        if rtp {
            let payload_type: u8 = decimal(format, "payload type")?;
            if payload_type > 127 {
                return Err(SdpLineError::PayloadTypeAbove127(payload_type));
            }
        } else {
            check_token(format, "format")?;
        }
    }
    let mut media = MediaDescription::new(media_type, port, proto);
    media.port_count = port_count;
    media.formats = formats.iter().map(|format| (*format).to_owned()).collect();
    Ok(media)
}

fn parse_attribute(value: &str) -> Result<Attribute, SdpLineError> {
    let (name, attribute_value) = match value.split_once(':') {
        Some((name, rest)) => (name.trim(), Some(rest)),
        None => (value.trim(), None),
    };
    check_token(name, "attribute name")?;
    let lower = name.to_ascii_lowercase();
    let require_value = || {
        attribute_value
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .ok_or_else(|| SdpLineError::AttributeNeedsValue(lower.clone()))
    };
    if let Some(direction) = Direction::from_attribute_name(name) {
        if attribute_value.is_some() {
            return Err(SdpLineError::AttributeTakesNoValue(lower));
        }
        return Ok(Attribute::Direction(direction));
    }
    match lower.as_str() {
        "rtpmap" => parse_rtpmap(require_value()?).map(Attribute::Rtpmap),
        "fmtp" => parse_fmtp(require_value()?).map(Attribute::Fmtp),
        "ptime" => parse_milliseconds(require_value()?, "ptime").map(Attribute::Ptime),
        "maxptime" => parse_milliseconds(require_value()?, "maxptime").map(Attribute::MaxPtime),
        "rtcp" => parse_rtcp(require_value()?).map(Attribute::Rtcp),
        _ => Ok(Attribute::Other {
            name: name.to_owned(),
            value: attribute_value.map(str::to_owned),
        }),
    }
}

fn parse_rtpmap(value: &str) -> Result<Rtpmap, SdpLineError> {
    let [payload_type, encoding] = fields(value)[..] else {
        return Err(SdpLineError::MalformedRtpmap);
    };
    let payload_type: u8 = decimal(payload_type, "payload type")?;
    if payload_type > 127 {
        return Err(SdpLineError::PayloadTypeAbove127(payload_type));
    }
    let mut parts = encoding.splitn(3, '/');
    let (Some(name), Some(clock_rate)) = (parts.next(), parts.next()) else {
        return Err(SdpLineError::NoClockRate(encoding.to_owned()));
    };
    check_token(name, "encoding name")?;
    let clock_rate: u32 = decimal(clock_rate, "clock rate")?;
    if clock_rate == 0 {
        return Err(SdpLineError::ZeroClockRate);
    }
    let params = match parts.next() {
        Some(params) if !is_token(params) => {
            return Err(SdpLineError::NotToken {
                field: "encoding parameter",
                text: params.to_owned(),
            })
        }
        other => other.map(str::to_owned),
    };
    Ok(Rtpmap {
        payload_type,
        encoding: name.to_owned(),
        clock_rate,
        params,
    })
}

fn parse_fmtp(value: &str) -> Result<Fmtp, SdpLineError> {
    let (format, params) = match value.split_once(|c: char| c.is_ascii_whitespace()) {
        Some((format, params)) => (format, params.trim()),
        None => (value, ""),
    };
    check_token(format, "fmtp format")?;
    Ok(Fmtp {
        format: format.to_owned(),
        params: params.to_owned(),
    })
}

/// Decimal milliseconds; some stacks write `20.0`, the fraction is dropped.
fn parse_milliseconds(value: &str, field: &'static str) -> Result<u32, SdpLineError> {
    let whole = match value.split_once('.') {
        Some((whole, fraction)) => {
            if !fraction.bytes().all(|byte| byte.is_ascii_digit()) {
                return Err(SdpLineError::NotDecimal {
                    field,
                    text: value.to_owned(),
                });
            }
            whole
        }
        None => value,
    };
    decimal(whole, field)
}

fn parse_rtcp(value: &str) -> Result<Rtcp, SdpLineError> {
    match fields(value)[..] {
        [port] => Ok(Rtcp {
            port: decimal(port, "rtcp port")?,
            connection: None,
        }),
        [port, net_type, addr_type, address] => Ok(Rtcp {
            port: decimal(port, "rtcp port")?,
            connection: Some(connection_from(net_type, addr_type, address)?),
        }),
        _ => Err(SdpLineError::MalformedRtcp),
    }
}
