//! Calls agents place: the dial plan ([`dialplan`]), the trunk each number goes out on, the
//! caller id it shows, and the fraud limits every call meets before its INVITE exists
//! ([`limits`]), and which of a trunk's proxies answer ([`health`]). All of it is decided in the contact center's core, which knows the agents;
//! the call itself then runs as any other, with the callee on the carrier leg.
pub mod config;
pub mod dialplan;
pub mod health;
pub mod limits;

pub use config::{IdentityHeader, NumberFormat, OutboundConfig, TrunkOutbound};
pub use dialplan::E164;
pub use limits::{Limits, Refusal};

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
    pub trunk: String,
    /// The number as the trunk wants it (Request-URI and To user part).
    pub dialled: String,
    pub caller_id: String,
    pub identity: IdentityHeader,
    /// The trunk's `proxy`.
    pub proxy: String,
}

/// The trunk for `number`: of those with `[trunk.outbound]`, the one with the longest prefix
/// matching it (the first in the file on a tie).
pub fn choose_trunk<'a>(number: &E164, trunks: &'a [TrunkConfig]) -> Option<&'a TrunkConfig> {
    let mut best: Option<(&TrunkConfig, usize)> = None;
    for trunk in trunks {
        let Some(out) = &trunk.outbound else { continue };
        let Some(len) = out
            .prefixes
            .iter()
            .filter(|p| number.starts_with(p))
            .map(|p| p.len())
            .max()
        else {
            continue;
        };
        if best.is_none_or(|(_, l)| len > l) {
            best = Some((trunk, len));
        }
    }
    best.map(|(t, _)| t)
}

/// What the agent typed, planned: its E.164 form, destination rules checked, a trunk chosen,
/// the caller id picked (`caller_id` given, from the queue or the agent, else the trunk's).
pub fn plan(
    typed: &str,
    config: Option<&OutboundConfig>,
    trunks: &[TrunkConfig],
    caller_id: Option<&str>,
) -> Result<Plan, DialError> {
    let config = config.ok_or(DialError::NotConfigured)?;
    let number = dialplan::normalise(typed, config)?;
    limits::check_destination(&number, config)?;
    let trunk =
        choose_trunk(&number, trunks).ok_or_else(|| DialError::NoRoute(number.to_string()))?;
    // Only trunks with `outbound` are chosen.
    let out = trunk
        .outbound
        .as_ref()
        .ok_or_else(|| DialError::NoRoute(number.to_string()))?;
    Ok(Plan {
        dialled: dialplan::format(&number, out.number_format, config),
        number,
        trunk: trunk.name.clone(),
        caller_id: caller_id.unwrap_or(&out.caller_id).to_owned(),
        identity: out.identity,
        proxy: out.proxy.clone(),
    })
}
