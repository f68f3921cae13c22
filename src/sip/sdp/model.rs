//! The session description as data.
//!
//! Field order follows the line order of RFC 8866 §5 so the serialiser can walk the struct.
//! Free text (session name, unknown attribute values, `u=`/`e=`/`p=` …) is kept byte for byte;
//! typed fields hold what parsing validated, so a parsed description re-serialises to an
//! equivalent one.

use std::net::IpAddr;

use super::codec::Codec;
use super::direction::Direction;

/// A whole SDP body (RFC 8866 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub origin: Origin,
    /// `s=`; `-` or a single space when there is nothing to say (RFC 8866 §5.3).
    pub session_name: String,
    /// `i=`
    pub information: Option<String>,
    /// `u=`
    pub uri: Option<String>,
    /// `e=` lines
    pub emails: Vec<String>,
    /// `p=` lines
    pub phones: Vec<String>,
    /// Session-level `c=`: applies to every media description without its own.
    pub connection: Option<Connection>,
    /// `b=` lines
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` lines with their `r=` lines. Never empty after parsing: a missing `t=` (seen from
    /// sloppy SBCs) reads as `t=0 0`, the only value telephony uses.
    pub timing: Vec<Timing>,
    /// `z=`, kept verbatim.
    pub time_zones: Option<String>,
    /// `k=` (obsolete), kept verbatim.
    pub encryption_key: Option<String>,
    /// Session-level `a=` lines: they apply to media descriptions without their own.
    pub attributes: Vec<Attribute>,
    pub media: Vec<MediaDescription>,
}

impl SessionDescription {
    /// A description with the mandatory lines only (`t=0 0`, no media).
    pub fn new(origin: Origin, session_name: impl Into<String>) -> Self {
        SessionDescription {
            origin,
            session_name: session_name.into(),
            information: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: None,
            bandwidths: Vec::new(),
            timing: vec![Timing::default()],
            time_zones: None,
            encryption_key: None,
            attributes: Vec::new(),
            media: Vec::new(),
        }
    }

    /// The `c=` that governs `media`: its own, else the session's (RFC 8866 §5.7).
    pub fn connection_for<'a>(&'a self, media: &'a MediaDescription) -> Option<&'a Connection> {
        media.connection.as_ref().or(self.connection.as_ref())
    }

    /// The direction attribute that governs `media`: its own, else the session's, else
    /// sendrecv (RFC 3264 §5.1).
    pub fn direction_for(&self, media: &MediaDescription) -> Direction {
        media
            .direction()
            .or_else(|| find_direction(&self.attributes))
            .unwrap_or(Direction::SendRecv)
    }

    /// `a=ptime` of `media`, else a session-level one (misplaced, but carriers send it).
    pub fn ptime_for(&self, media: &MediaDescription) -> Option<u32> {
        media.ptime().or_else(|| find_ptime(&self.attributes))
    }

    /// `a=maxptime` of `media`, else a session-level one.
    pub fn maxptime_for(&self, media: &MediaDescription) -> Option<u32> {
        media.maxptime().or_else(|| find_maxptime(&self.attributes))
    }
}

/// `o=<username> <sess-id> <sess-version> IN <addrtype> <unicast-address>` (RFC 8866 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `-` when the host has no notion of users.
    pub username: String,
    pub session_id: u64,
    /// Must grow whenever the owner changes its description within a dialog; an unchanged
    /// version tells the peer a re-offer carries no change (RFC 3264 §8).
    pub session_version: u64,
    pub addr_type: AddrType,
    /// Kept as written: an IP literal or a host name.
    pub address: String,
}

/// Address family of `c=`, `o=` and `a=rtcp` (the network type is always `IN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrType {
    Ip4,
    Ip6,
}

impl AddrType {
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => AddrType::Ip4,
            IpAddr::V6(_) => AddrType::Ip6,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AddrType::Ip4 => "IP4",
            AddrType::Ip6 => "IP6",
        }
    }
}

/// `c=IN <addrtype> <connection-address>` (RFC 8866 §5.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub addr_type: AddrType,
    /// As written: a unicast literal, a host name, or multicast with `/ttl[/count]`.
    pub address: String,
}

impl Connection {
    pub fn from_ip(addr: IpAddr) -> Self {
        Connection {
            addr_type: AddrType::of(addr),
            address: addr.to_string(),
        }
    }

    /// The address as an IP, ignoring a multicast `/ttl` suffix; `None` for a host name, which a
    /// sans-IO core cannot resolve.
    pub fn ip(&self) -> Option<IpAddr> {
        let literal = self.address.split('/').next().unwrap_or_default();
        literal.parse().ok()
    }

    /// RFC 2543 hold (`c=IN IP4 0.0.0.0`, and `::` by analogy): the peer wants no media.
    pub fn is_hold_address(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_unspecified())
    }
}

/// `b=<bwtype>:<bandwidth>` (RFC 8866 §5.8), bandwidth in kbit/s for `AS`/`CT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    pub kind: String,
    pub value: u64,
}

/// `t=<start> <stop>` plus its `r=` lines (RFC 8866 §5.9–5.10). Telephony always uses `0 0`
/// (unbounded), which is the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timing {
    pub start: u64,
    pub stop: u64,
    /// `r=` lines, verbatim.
    pub repeats: Vec<String>,
}

/// One `m=` section (RFC 8866 §5.14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, `image` (T.38), `application`, …
    pub media_type: String,
    /// 0 marks a rejected or disabled stream (RFC 3264 §6).
    pub port: u16,
    /// `<port>/<count>`; only meaningful for layered multicast.
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, `udptl`, …
    pub proto: String,
    /// Payload type numbers for RTP protocols (validated as 0–127), opaque tokens otherwise.
    pub formats: Vec<String>,
    /// `i=`
    pub information: Option<String>,
    /// `c=` for this stream; falls back to the session's.
    pub connection: Option<Connection>,
    /// `b=` lines
    pub bandwidths: Vec<Bandwidth>,
    /// `k=`, verbatim.
    pub encryption_key: Option<String>,
    pub attributes: Vec<Attribute>,
}

impl MediaDescription {
    /// An `m=` section with no lines beyond the `m=` itself.
    pub fn new(media_type: impl Into<String>, port: u16, proto: impl Into<String>) -> Self {
        MediaDescription {
            media_type: media_type.into(),
            port,
            port_count: None,
            proto: proto.into(),
            formats: Vec::new(),
            information: None,
            connection: None,
            bandwidths: Vec::new(),
            encryption_key: None,
            attributes: Vec::new(),
        }
    }

    pub fn is_audio(&self) -> bool {
        self.media_type.eq_ignore_ascii_case("audio")
    }

    /// Formats that are RTP payload type numbers, in the offerer's preference order.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats
            .iter()
            .filter_map(|format| format.parse::<u8>().ok())
            .filter(|pt| *pt <= 127)
    }

    pub fn rtpmap(&self, payload_type: u8) -> Option<&Rtpmap> {
        self.attributes
            .iter()
            .find_map(|attribute| match attribute {
                Attribute::Rtpmap(map) if map.payload_type == payload_type => Some(map),
                _ => None,
            })
    }

    pub fn fmtp(&self, payload_type: u8) -> Option<&Fmtp> {
        self.attributes
            .iter()
            .find_map(|attribute| match attribute {
                Attribute::Fmtp(fmtp) if fmtp.format.parse::<u8>().ok() == Some(payload_type) => {
                    Some(fmtp)
                }
                _ => None,
            })
    }

    /// The G.711 codec a payload type carries here: the rtpmap decides when present (a dynamic
    /// PT mapped to PCMA/8000 counts), else the static table of RFC 3551 (0 = PCMU, 8 = PCMA).
    pub fn codec_of(&self, payload_type: u8) -> Option<Codec> {
        match self.rtpmap(payload_type) {
            Some(map) => Codec::from_rtpmap(map),
            None => Codec::from_static_payload_type(payload_type),
        }
    }

    /// Whether the payload type is RFC 4733 telephone-event at 8 kHz, the rate of our audio.
    pub fn is_telephone_event(&self, payload_type: u8) -> bool {
        self.rtpmap(payload_type).is_some_and(|map| {
            map.encoding.eq_ignore_ascii_case("telephone-event") && map.clock_rate == 8000
        })
    }

    /// Own direction attribute only; see [`SessionDescription::direction_for`].
    pub fn direction(&self) -> Option<Direction> {
        find_direction(&self.attributes)
    }

    pub fn ptime(&self) -> Option<u32> {
        find_ptime(&self.attributes)
    }

    pub fn maxptime(&self) -> Option<u32> {
        find_maxptime(&self.attributes)
    }

    pub fn rtcp(&self) -> Option<&Rtcp> {
        self.attributes
            .iter()
            .find_map(|attribute| match attribute {
                Attribute::Rtcp(rtcp) => Some(rtcp),
                _ => None,
            })
    }
}

fn find_direction(attributes: &[Attribute]) -> Option<Direction> {
    attributes.iter().find_map(|attribute| match attribute {
        Attribute::Direction(direction) => Some(*direction),
        _ => None,
    })
}

fn find_ptime(attributes: &[Attribute]) -> Option<u32> {
    attributes.iter().find_map(|attribute| match attribute {
        Attribute::Ptime(ms) => Some(*ms),
        _ => None,
    })
}

fn find_maxptime(attributes: &[Attribute]) -> Option<u32> {
    attributes.iter().find_map(|attribute| match attribute {
        Attribute::MaxPtime(ms) => Some(*ms),
        _ => None,
    })
}

/// An `a=` line. The ones negotiation reads are typed; the rest keep name and value verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    Rtpmap(Rtpmap),
    Fmtp(Fmtp),
    /// `a=ptime:<ms>`; a fractional value is truncated to whole milliseconds.
    Ptime(u32),
    /// `a=maxptime:<ms>`
    MaxPtime(u32),
    /// `a=sendrecv` / `sendonly` / `recvonly` / `inactive`
    Direction(Direction),
    /// `a=rtcp:<port> [IN <addrtype> <address>]` (RFC 3605)
    Rtcp(Rtcp),
    /// Anything else: `a=<name>` (value `None`) or `a=<name>:<value>`.
    Other {
        name: String,
        value: Option<String>,
    },
}

/// `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtpmap {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
    /// For audio, the channel count.
    pub params: Option<String>,
}

/// `a=fmtp:<format> <format specific parameters>`, e.g. `a=fmtp:101 0-16`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmtp {
    pub format: String,
    pub params: String,
}

/// `a=rtcp:<port> [IN <addrtype> <address>]` (RFC 3605): where the peer wants RTCP when it is
/// not on the RTP port + 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtcp {
    pub port: u16,
    pub connection: Option<Connection>,
}
