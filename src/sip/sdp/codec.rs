//! The G.711 codecs and how SDP names them: RFC 3551 static payload types or an rtpmap.

use std::fmt;

use super::model::Rtpmap;

/// The audio codecs the trunk side speaks: G.711 only, which every carrier supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law
    Pcmu,
    /// G.711 A-law
    Pcma,
}

impl Codec {
    /// RFC 3551 static payload type.
    pub fn static_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// Encoding name as written in rtpmap.
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    pub fn clock_rate(self) -> u32 {
        8000
    }

    pub fn from_static_payload_type(payload_type: u8) -> Option<Codec> {
        match payload_type {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// Recognises `PCMU/8000` and `PCMA/8000` (any case, mono or unspecified channels).
    pub fn from_rtpmap(map: &Rtpmap) -> Option<Codec> {
        let mono = matches!(map.params.as_deref(), None | Some("1"));
        if map.clock_rate != 8000 || !mono {
            return None;
        }
        [Codec::Pcmu, Codec::Pcma]
            .into_iter()
            .find(|codec| map.encoding.eq_ignore_ascii_case(codec.encoding_name()))
    }

    pub(crate) fn rtpmap(self, payload_type: u8) -> Rtpmap {
        Rtpmap {
            payload_type,
            encoding: self.encoding_name().to_owned(),
            clock_rate: self.clock_rate(),
            params: None,
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.encoding_name(), self.clock_rate())
    }
}
