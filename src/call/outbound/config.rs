//! `[outbound]` (the branch's dial plan and the fraud limits every agent call meets) and
//! `[trunk.outbound]` (where a trunk sends the calls it carries, and how it writes them).
use serde::Deserialize;

/// `[outbound]`. Without it agents cannot place calls at all: toll fraud starts with a gateway
/// that dials anywhere because nobody said otherwise.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OutboundConfig {
    /// The branch's country calling code without `+` (`49`, `1`, `44`): numbers dialled
    /// nationally are in this country.
    pub country_code: String,
    /// What starts a national number with its area code (`0` in most of Europe, `1` in
    /// North America, empty where there is none).
    #[serde(default)]
    pub national_prefix: String,
    /// What starts an international number (`00`; `011` in North America). A leading `+`
    /// always works.
    #[serde(default = "default_international_prefix")]
    pub international_prefix: String,
    /// E.164 prefixes (`+49`, `+4930`) agents may dial. Default: the branch's own country
    /// only, so international calls need saying so.
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    /// E.164 prefixes never dialled, whatever `allow` says. Default: [`DEFAULT_BLOCKED`],
    /// premium-rate and fraud-prone ranges.
    #[serde(default)]
    pub block: Option<Vec<String>>,
    /// An unanswered call is given up after this long (reason `no_answer`).
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout_s: u64,
    /// Outbound calls one agent may have up at once (a call it transferred out still counts).
    #[serde(default = "default_agent_max_calls")]
    pub agent_max_calls: u32,
    /// Outbound calls one agent may start in any hour.
    #[serde(default = "default_agent_calls_per_hour")]
    pub agent_calls_per_hour: u32,
    /// Answered outbound minutes one agent may use per day (UTC).
    #[serde(default = "default_agent_minutes_per_day")]
    pub agent_minutes_per_day: u32,
    /// Answered outbound minutes the whole branch may use per day (UTC): the spend ceiling.
    #[serde(default = "default_minutes_per_day")]
    pub minutes_per_day: u32,
}

/// Premium-rate and fraud-prone E.164 ranges blocked unless `block` says otherwise: the
/// North American 900/976 services, the UK's 09 and 087/070 (premium and "personal" numbers
/// used in revenue-share fraud), Germany's 0900/0137/0118, France's 08 9x, Italy's 89x,
/// Spain's 80x/905, Austria's 09xx, Switzerland's 090x, and the international networks
/// (+881, +882, +883, satellite and shared-cost ranges hunted by fraudsters). A list, not a
/// guarantee: operators add their own country's ranges.
pub const DEFAULT_BLOCKED: &[&str] = &[
    "+1900", "+1976", "+449", "+4487", "+4470", "+49900", "+49137", "+49118", "+3389", "+33836",
    "+3989", "+34803", "+34806", "+34807", "+34905", "+43900", "+43930", "+41900", "+41906",
    "+881", "+882", "+883",
];

fn default_international_prefix() -> String {
    "00".into()
}

fn default_ring_timeout() -> u64 {
    60
}

fn default_agent_max_calls() -> u32 {
    2
}

fn default_agent_calls_per_hour() -> u32 {
    30
}

fn default_agent_minutes_per_day() -> u32 {
    480
}

fn default_minutes_per_day() -> u32 {
    3000
}

impl OutboundConfig {
    pub fn allowed(&self) -> Vec<String> {
        self.allow
            .clone()
            .unwrap_or_else(|| vec![format!("+{}", self.country_code)])
    }

    pub fn blocked(&self) -> Vec<String> {
        self.block
            .clone()
            .unwrap_or_else(|| DEFAULT_BLOCKED.iter().map(|s| s.to_string()).collect())
    }

    pub fn ring_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.ring_timeout_s)
    }
}

/// How a trunk wants the number in its Request-URI and To.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberFormat {
    /// `+4930123456`.
    #[default]
    E164,
    /// As dialled at the branch: `030123456` at home, `0033…` abroad.
    National,
    /// Country code and number, no `+`: `4930123456`.
    International,
}

/// How the trunk is told who is calling, beside From.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityHeader {
    #[default]
    None,
    /// `P-Asserted-Identity` (RFC 3325), what most trunks want.
    Pai,
    /// `Remote-Party-ID`, for older carriers and PBXs.
    Rpid,
}

/// `[trunk.outbound]`: the trunk carries agents' calls.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TrunkOutbound {
    /// Where INVITEs go: `sip:HOST[:PORT][;transport=udp|tcp|tls]` or `sips:`.
    pub proxy: String,
    /// The E.164 prefixes this trunk carries; the longest match picks the trunk. Default:
    /// every number.
    #[serde(default = "every_number")]
    pub prefixes: Vec<String>,
    #[serde(default)]
    pub number_format: NumberFormat,
    /// The number presented when neither the agent nor the queue has one.
    pub caller_id: String,
    #[serde(default)]
    pub identity: IdentityHeader,
    /// Outbound calls up at once on this trunk (its channels).
    #[serde(default = "default_trunk_max_calls")]
    pub max_calls: u32,
    /// Outbound calls started on this trunk in any hour.
    #[serde(default = "default_trunk_calls_per_hour")]
    pub calls_per_hour: u32,
    /// A proxy that failed a call is probed with OPTIONS this often until it answers.
    #[serde(default = "default_probe_interval")]
    pub probe_interval_s: u64,
}

fn default_probe_interval() -> u64 {
    10
}

impl TrunkOutbound {
    pub fn limits(&self) -> super::limits::RouteLimits {
        super::limits::RouteLimits {
            max_calls: self.max_calls,
            calls_per_hour: self.calls_per_hour,
        }
    }
}

/// `[e1.outbound]`: the E1 span carries agents' calls (its numbers as for a trunk, no proxy).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SpanOutbound {
    /// The E.164 prefixes this span carries; the longest match among trunks and spans wins.
    #[serde(default = "every_number")]
    pub prefixes: Vec<String>,
    /// How the called number goes in the SETUP: `national` (type national, as dialled at the
    /// branch) is what most carriers want; `international` (country code, no +); `e164` is sent
    /// as international too (Q.931 has no +).
    #[serde(default = "national")]
    pub number_format: NumberFormat,
    /// The number presented when neither the agent nor the queue has one.
    pub caller_id: String,
    /// Outbound calls up at once on this span (at most its B-channels).
    #[serde(default = "default_trunk_max_calls")]
    pub max_calls: u32,
    #[serde(default = "default_trunk_calls_per_hour")]
    pub calls_per_hour: u32,
}

fn national() -> NumberFormat {
    NumberFormat::National
}

impl SpanOutbound {
    pub fn limits(&self) -> super::limits::RouteLimits {
        super::limits::RouteLimits {
            max_calls: self.max_calls,
            calls_per_hour: self.calls_per_hour,
        }
    }
}

fn every_number() -> Vec<String> {
    vec!["+".into()]
}

fn default_trunk_max_calls() -> u32 {
    30
}

fn default_trunk_calls_per_hour() -> u32 {
    600
}

/// The load-time checks of `[outbound]`, `[trunk.outbound]` and the caller ids of agents and
/// queues, located by key path.
pub(crate) fn validate(config: &crate::config::Config) -> Vec<crate::config::problem::Problem> {
    use super::dialplan::parse_e164;
    let mut out = Vec::new();
    let mut at = |path: &[&str], message: String| {
        out.push(crate::config::problem::Problem {
            path: path.iter().map(|s| s.to_string()).collect(),
            message,
        })
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let prefix_ok = |p: &str| p.strip_prefix('+').is_some_and(digits) && p.len() <= 16;
    if let Some(o) = &config.outbound {
        if o.country_code.is_empty() || o.country_code.len() > 3 || !digits(&o.country_code) {
            at(
                &["outbound", "country_code"],
                format!("{:?}: 1 to 3 digits, without +", o.country_code),
            );
        }
        for (key, value) in [
            ("national_prefix", &o.national_prefix),
            ("international_prefix", &o.international_prefix),
        ] {
            if !digits(value) || value.len() > 4 {
                at(&["outbound", key], format!("{value:?}: up to 4 digits"));
            }
        }
        for (key, list) in [("allow", o.allow.as_ref()), ("block", o.block.as_ref())] {
            for (i, p) in list.into_iter().flatten().enumerate() {
                if !prefix_ok(p) {
                    at(
                        &["outbound", key, &i.to_string()],
                        format!("{p:?}: an E.164 prefix is + and digits (\"+49\", \"+4930\")"),
                    );
                }
            }
        }
        if o.ring_timeout_s == 0 || o.ring_timeout_s > 300 {
            at(
                &["outbound", "ring_timeout_s"],
                format!("{} s: between 1 and 300", o.ring_timeout_s),
            );
        }
    }
    for (i, t) in config.trunks.iter().enumerate() {
        let idx = i.to_string();
        let Some(ob) = &t.outbound else { continue };
        match crate::sip::resolve::SipTarget::parse(&ob.proxy) {
            Err(e) => at(&["trunk", &idx, "outbound", "proxy"], e),
            Ok(uri) => {
                let tls = uri.secure || uri.transport == Some(crate::sip::peer::Transport::Tls);
                if t.srtp == crate::sip::sdp::SrtpPolicy::Required && !tls {
                    at(
                        &["trunk", &idx, "outbound", "proxy"],
                        "srtp = \"required\" needs the proxy over tls (;transport=tls or \
                         sips:): keys never travel unencrypted"
                            .into(),
                    );
                }
            }
        }
        for (j, p) in ob.prefixes.iter().enumerate() {
            if p != "+" && !prefix_ok(p) {
                at(
                    &["trunk", &idx, "outbound", "prefixes", &j.to_string()],
                    format!("{p:?}: an E.164 prefix is + and digits (\"+49\"), or \"+\" for all"),
                );
            }
        }
        if let Err(e) = parse_e164(&ob.caller_id) {
            at(&["trunk", &idx, "outbound", "caller_id"], e.to_string());
        }
        if !(1..=3600).contains(&ob.probe_interval_s) {
            at(
                &["trunk", &idx, "outbound", "probe_interval_s"],
                format!("{} s: between 1 and 3600", ob.probe_interval_s),
            );
        }
        if ob.max_calls == 0 {
            at(
                &["trunk", &idx, "outbound", "max_calls"],
                "0 calls: remove [trunk.outbound] instead".into(),
            );
        }
    }
    for (i, span) in config.e1.iter().enumerate() {
        let idx = i.to_string();
        let Some(ob) = &span.outbound else { continue };
        for (j, p) in ob.prefixes.iter().enumerate() {
            if p != "+" && !prefix_ok(p) {
                at(
                    &["e1", &idx, "outbound", "prefixes", &j.to_string()],
                    format!("{p:?}: an E.164 prefix is + and digits (\"+49\"), or \"+\" for all"),
                );
            }
        }
        if let Err(e) = parse_e164(&ob.caller_id) {
            at(&["e1", &idx, "outbound", "caller_id"], e.to_string());
        }
        if ob.max_calls == 0 {
            at(
                &["e1", &idx, "outbound", "max_calls"],
                "0 calls: remove [e1.outbound] instead".into(),
            );
        }
    }
    for (i, a) in config.agent.iter().enumerate() {
        if let Some(id) = &a.caller_id {
            if let Err(e) = parse_e164(id) {
                at(&["agent", &i.to_string(), "caller_id"], e.to_string());
            }
        }
    }
    for (name, q) in &config.queues {
        if let Some(id) = &q.caller_id {
            if let Err(e) = parse_e164(id) {
                at(&["queues", name, "caller_id"], e.to_string());
            }
        }
    }
    out
}
