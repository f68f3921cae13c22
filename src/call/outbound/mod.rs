//! Calls agents place: the dial plan ([`dialplan`]), the trunk each number goes out on, the
//! caller id it shows, and the fraud limits every call meets before its INVITE exists
//! ([`limits`]), and which of a trunk's proxies answer ([`health`]). All of it is decided in the contact center's core, which knows the agents;
//! the call itself then runs as any other, with the callee on the carrier leg.
pub mod config;
pub mod dialplan;
pub mod health;
pub mod limits;

pub use config::{IdentityHeader, NumberFormat, OutboundConfig, SpanOutbound, TrunkOutbound};
pub use dialplan::E164;
pub use limits::{Limits, Refusal};

use crate::isdn::config::E1Config;
use crate::sip::trunk::TrunkConfig;

/// Why a dial was refused before anything was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    #[error("outbound calls are not configured on this gateway ([outbound])")]
    NotConfigured,
    #[error("{0}")]
    Number(#[from] dialplan::NumberError),
    #[error("no trunk carries {0}")]
    NoRoute(String),
    #[error("{0}")]
    Limit(#[from] Refusal),
    #[error("agent {0} may not place outbound calls")]
    NotPermitted(String),
}

impl DialError {
    /// The reason's name, for metrics labels, the journal and the agent protocol.
    pub fn kind(&self) -> &'static str {
        match self {
            DialError::NotConfigured => "not_configured",
            DialError::Number(_) => "invalid_number",
            DialError::NoRoute(_) => "no_route",
            DialError::Limit(r) => r.kind(),
            DialError::NotPermitted(_) => "not_permitted",
        }
    }
}

/// Where and how a call goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub number: E164,
    /// The trunk's or the E1 span's name.
    pub trunk: String,
    /// The number as the trunk wants it (Request-URI and To user part; the SETUP's called
    /// party number).
    pub dialled: String,
    pub caller_id: String,
    pub via: Via,
}

impl Plan {
    /// The SIP trunk's proxy (empty for an E1 span).
    pub fn proxy(&self) -> &str {
        match &self.via {
            Via::Sip { proxy, .. } => proxy,
            Via::E1 { .. } => "",
        }
    }

    /// How the SIP trunk is told who calls.
    pub fn identity(&self) -> IdentityHeader {
        match &self.via {
            Via::Sip { identity, .. } => *identity,
            Via::E1 { .. } => IdentityHeader::None,
        }
    }
}

/// What carries the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A SIP trunk: its `proxy`, and how it is told who calls.
    Sip {
        proxy: String,
        identity: IdentityHeader,
    },
    /// An E1 span; `format` says the called number's type of number.
    E1 { format: NumberFormat },
}

/// A trunk or span that carries agents' calls, as the dial plan chooses among them.
struct Route<'a> {
    name: &'a str,
    prefixes: &'a [String],
    number_format: NumberFormat,
    caller_id: &'a str,
    via: Via,
}

fn routes<'a>(trunks: &'a [TrunkConfig], spans: &'a [E1Config]) -> Vec<Route<'a>> {
    let sip = trunks.iter().filter_map(|t| {
        let out = t.outbound.as_ref()?;
        Some(Route {
            name: &t.name,
            prefixes: &out.prefixes,
            number_format: out.number_format,
            caller_id: &out.caller_id,
            via: Via::Sip {
                proxy: out.proxy.clone(),
                identity: out.identity,
            },
        })
    });
    let e1 = spans.iter().filter_map(|s| {
        let out = s.outbound.as_ref()?;
        Some(Route {
            name: &s.name,
            prefixes: &out.prefixes,
            number_format: out.number_format,
            caller_id: &out.caller_id,
            via: Via::E1 {
                format: out.number_format,
            },
        })
    });
    sip.chain(e1).collect()
}

/// The name of the trunk or span for `number`: of those that carry agents' calls, the one with
/// the longest prefix matching it (SIP trunks first, then spans, each in file order, on a tie).
pub fn choose_trunk<'a>(
    number: &E164,
    trunks: &'a [TrunkConfig],
    spans: &'a [E1Config],
) -> Option<&'a str> {
    choose(number, routes(trunks, spans)).map(|r| r.name)
}

fn choose<'a>(number: &E164, routes: Vec<Route<'a>>) -> Option<Route<'a>> {
    let mut best: Option<(Route<'a>, usize)> = None;
    for route in routes {
        let Some(len) = route
            .prefixes
            .iter()
            .filter(|p| number.starts_with(p))
            .map(|p| p.len())
            .max()
        else {
            continue;
        };
        if best.as_ref().is_none_or(|(_, l)| len > *l) {
            best = Some((route, len));
        }
    }
    best.map(|(r, _)| r)
}

/// What the agent typed, planned: its E.164 form, destination rules checked, a trunk or span
/// chosen, the caller id picked (`caller_id` given, from the queue or the agent, else the
/// route's).
pub fn plan(
    typed: &str,
    config: Option<&OutboundConfig>,
    trunks: &[TrunkConfig],
    spans: &[E1Config],
    caller_id: Option<&str>,
) -> Result<Plan, DialError> {
    let config = config.ok_or(DialError::NotConfigured)?;
    let number = dialplan::normalise(typed, config)?;
    limits::check_destination(&number, config)?;
    let route = choose(&number, routes(trunks, spans))
        .ok_or_else(|| DialError::NoRoute(number.to_string()))?;
    Ok(Plan {
        dialled: dialplan::format(&number, route.number_format, config),
        number,
        trunk: route.name.to_owned(),
        caller_id: caller_id.unwrap_or(route.caller_id).to_owned(),
        via: route.via,
    })
}
