//! An E1/PRI span as the operator configures it (`[[e1]]`): the line (a DAHDI span, or a
//! software span's directory), which side of the PRI we are, its B-channels, where its calls go.
use std::path::PathBuf;

use serde::Deserialize;

use super::q921::link::LinkConfig;
use super::q931::control::{ControlConfig, Side, Timers};
use super::q931::ie::Law;
use super::span::SpanConfig;
use crate::config::problem::Problem;
use crate::route::Destination;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct E1Config {
    /// The span's name: its calls' trunk in logs, metrics and CDRs.
    pub name: String,
    /// `pri_cpe`: we are the user side, toward a carrier (the usual case); `pri_net`: we are
    /// the network side, toward a PBX.
    pub signalling: Signalling,
    /// The Q.931 variant: `euroisdn` (ETSI EN 300 403, E1) is the one spoken.
    #[serde(default)]
    pub switchtype: SwitchType,
    /// `socket` (a software span in `path`) or `dahdi` (span `span` of a DAHDI card).
    pub driver: Driver,
    /// The software span's directory (driver `socket`).
    pub path: Option<PathBuf>,
    /// The DAHDI span number (driver `dahdi`).
    pub span: Option<u32>,
    /// The B-channels in use, as timeslots: default all 30 of an E1 (`"1-15,17-31"`).
    #[serde(default = "all_channels")]
    pub channels: String,
    /// `alaw` (Europe, the default on E1) or `ulaw`.
    #[serde(default)]
    pub law: LawName,
    /// Where the span's calls go.
    pub route: Destination,
    #[serde(default)]
    pub ring_ms: u64,
    /// Write the D-channel to this pcap (LINKTYPE_LAPD: Wireshark and tshark decode it).
    pub pcap: Option<PathBuf>,
    /// The span carries agents' calls (`[e1.outbound]`).
    pub outbound: Option<crate::call::outbound::SpanOutbound>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signalling {
    PriCpe,
    PriNet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwitchType {
    #[default]
    Euroisdn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Driver {
    Socket,
    Dahdi,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LawName {
    #[default]
    Alaw,
    Ulaw,
}

fn all_channels() -> String {
    "1-15,17-31".into()
}

/// Timeslots as `"1-15,17-31"` or `"1,2,5"`: the B-channels of an E1 (1–31 but 16, which is
/// the D-channel), in order, each once.
pub fn parse_channels(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim) {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let number = |s: &str| {
            s.parse::<u8>()
                .map_err(|_| format!("{part:?} is not a timeslot or a range of them"))
        };
        let (first, last) = (number(first)?, number(last)?);
        if first > last {
            return Err(format!("{part:?}: the range runs backwards"));
        }
        for ts in first..=last {
            if ts == 0 || ts > 31 {
                return Err(format!("timeslot {ts}: an E1's B-channels are 1-31"));
            }
            if ts == 16 {
                return Err("timeslot 16 is the D-channel, not a B-channel".into());
            }
            if out.contains(&ts) {
                return Err(format!("timeslot {ts} is named twice"));
            }
            out.push(ts);
        }
    }
    Ok(out)
}

impl Signalling {
    /// As the config writes it.
    pub fn label(self) -> &'static str {
        match self {
            Signalling::PriCpe => "pri_cpe",
            Signalling::PriNet => "pri_net",
        }
    }
}

impl E1Config {
    pub fn side(&self) -> Side {
        match self.signalling {
            Signalling::PriCpe => Side::User,
            Signalling::PriNet => Side::Network,
        }
    }

    /// The span's cores, configured (channels as validated at load).
    pub fn span_config(&self) -> SpanConfig {
        SpanConfig {
            control: ControlConfig {
                side: self.side(),
                channels: parse_channels(&self.channels).unwrap_or_default(),
                law: match self.law {
                    LawName::Alaw => Law::ALaw,
                    LawName::Ulaw => Law::MuLaw,
                },
                exclusive: true,
                timers: Timers::default(),
            },
            link: LinkConfig::default(),
        }
    }

    /// What is wrong with the span's settings, at `[[e1]]` number `idx`.
    pub fn validate(&self, idx: &str) -> Vec<Problem> {
        let mut out = Vec::new();
        let at = |key: &str, message: String| Problem::at(&["e1", idx, key], message);
        if let Err(e) = parse_channels(&self.channels) {
            out.push(at("channels", e));
        }
        match self.driver {
            Driver::Socket if self.path.is_none() => out.push(at(
                "path",
                "driver \"socket\" needs path: the software span's directory".into(),
            )),
            Driver::Dahdi if self.span.is_none() => out.push(at(
                "span",
                "driver \"dahdi\" needs span: the DAHDI span number".into(),
            )),
            _ => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_needs_what_its_driver_needs() {
        let span = |extra: &str| -> E1Config {
            toml::from_str(&format!(
                "name = \"pri1\"\nsignalling = \"pri_cpe\"\nroute = \"ivr:main\"\n{extra}"
            ))
            .unwrap()
        };
        let keys = |c: E1Config| -> Vec<String> {
            c.validate("0")
                .into_iter()
                .map(|p| p.path.join("."))
                .collect()
        };
        assert_eq!(keys(span("driver = \"dahdi\"")), ["e1.0.span"]);
        assert!(keys(span("driver = \"dahdi\"\nspan = 1")).is_empty());
        assert_eq!(keys(span("driver = \"socket\"")), ["e1.0.path"]);
        assert_eq!(
            keys(span(
                "driver = \"socket\"\npath = \"/run/x\"\nchannels = \"16\""
            )),
            ["e1.0.channels"]
        );
    }

    #[test]
    fn channel_lists_take_ranges_and_refuse_timeslot_16_and_repeats() {
        let all = parse_channels("1-15,17-31").unwrap();
        assert_eq!(all.len(), 30);
        assert!(!all.contains(&16));
        assert_eq!(parse_channels(" 1, 3-4 ").unwrap(), [1, 3, 4]);
        for bad in ["16", "1-20", "0", "32", "5-3", "1,1", "x", "1-"] {
            assert!(parse_channels(bad).is_err(), "{bad}");
        }
    }
}
