//! What the configuration file may say, with the defaults an operator would expect.
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::ivr::config::IvrConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub sip: SipConfig,
    #[serde(default)]
    pub media: MediaConfig,
    #[serde(default)]
    pub prompts: PromptsConfig,
    #[serde(default, rename = "trunk")]
    pub trunks: Vec<TrunkConfig>,
    #[serde(default)]
    pub ivr: IvrConfig,
    /// `[agents]`: the QUIC listener for remote agents.
    #[serde(default)]
    pub agents: crate::agent::config::AgentsConfig,
    /// `[[agent]]`: who may log in.
    #[serde(default)]
    pub agent: Vec<crate::agent::config::AgentConfig>,
    /// `[queues.NAME]`.
    #[serde(default)]
    pub queues: std::collections::BTreeMap<String, crate::queue::QueueConfig>,
    /// Directory that relative paths are resolved against (the config file's directory).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    #[serde(default = "default_listen")]
    pub udp: Vec<SocketAddr>,
    #[serde(default = "default_listen")]
    pub tcp: Vec<SocketAddr>,
    pub public_address: Option<IpAddr>,
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            udp: default_listen(),
            tcp: default_listen(),
            public_address: None,
            user_agent: default_user_agent(),
        }
    }
}

fn default_listen() -> Vec<SocketAddr> {
    vec![SocketAddr::from(([0, 0, 0, 0], 5060))]
}

fn default_user_agent() -> String {
    format!("trunkgate/{}", env!("CARGO_PKG_VERSION"))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    #[serde(default = "default_rtp_min")]
    pub rtp_port_min: u16,
    #[serde(default = "default_rtp_max")]
    pub rtp_port_max: u16,
    #[serde(default = "default_jitter_min")]
    pub jitter_min_ms: u32,
    #[serde(default = "default_jitter_max")]
    pub jitter_max_ms: u32,
    /// End a call whose carrier has sent no RTP for this long (0: never).
    #[serde(default = "default_rtp_timeout")]
    pub rtp_timeout_ms: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            rtp_port_min: default_rtp_min(),
            rtp_port_max: default_rtp_max(),
            jitter_min_ms: default_jitter_min(),
            jitter_max_ms: default_jitter_max(),
            rtp_timeout_ms: default_rtp_timeout(),
        }
    }
}

impl MediaConfig {
    pub fn jitter_min(&self) -> Duration {
        Duration::from_millis(self.jitter_min_ms.into())
    }
    pub fn jitter_max(&self) -> Duration {
        Duration::from_millis(self.jitter_max_ms.into())
    }
    pub fn rtp_timeout(&self) -> Option<Duration> {
        (self.rtp_timeout_ms > 0).then(|| Duration::from_millis(self.rtp_timeout_ms))
    }
}

fn default_rtp_min() -> u16 {
    20000
}
fn default_rtp_max() -> u16 {
    29999
}
fn default_jitter_min() -> u32 {
    20
}
fn default_jitter_max() -> u32 {
    200
}
fn default_rtp_timeout() -> u64 {
    60_000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptsConfig {
    #[serde(default = "default_prompt_dir")]
    pub dir: PathBuf,
}

impl Default for PromptsConfig {
    fn default() -> Self {
        PromptsConfig {
            dir: default_prompt_dir(),
        }
    }
}

fn default_prompt_dir() -> PathBuf {
    PathBuf::from("prompts")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    pub name: String,
    pub allow: Vec<Cidr>,
    #[serde(default = "default_codecs")]
    pub codecs: Vec<CodecName>,
    #[serde(default = "yes")]
    pub symmetric_rtp: bool,
    pub route: String,
    #[serde(default)]
    pub ring_ms: u64,
}

fn default_codecs() -> Vec<CodecName> {
    vec![CodecName::Pcmu, CodecName::Pcma]
}

fn yes() -> bool {
    true
}

impl TrunkConfig {
    pub fn accepts(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|c| c.contains(ip))
    }

    /// The IVR menu new calls start in, for `route = "ivr:MENU"`.
    pub fn ivr_menu(&self) -> Option<&str> {
        self.route.strip_prefix("ivr:")
    }

    /// The queue new calls go to, for `route = "queue:NAME"`.
    pub fn queue(&self) -> Option<&str> {
        self.route.strip_prefix("queue:")
    }
}

/// A codec by the name operators write; SDP negotiation maps it to payload types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum CodecName {
    #[serde(rename = "PCMU")]
    Pcmu,
    #[serde(rename = "PCMA")]
    Pcma,
}

/// An address block in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`); a bare address means /32
/// or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            _ => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => mask_eq(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => mask_eq(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

fn mask_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let mut bits = usize::from(prefix);
    for (x, y) in a.iter().zip(b) {
        if bits == 0 {
            return true;
        }
        let take = bits.min(8);
        let mask = (0xFFu16 << (8 - take)) as u8;
        if x & mask != y & mask {
            return false;
        }
        bits -= take;
    }
    true
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("invalid address {addr:?} in {s:?}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("invalid prefix length {p:?} in {s:?} (0..={max})"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A problem found after parsing: where (key path) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: Vec<String>,
    pub message: String,
}

fn problem(path: &[&str], message: String) -> Problem {
    Problem {
        path: path.iter().map(|s| s.to_string()).collect(),
        message,
    }
}

impl Config {
    pub fn prompt_dir(&self) -> PathBuf {
        self.base_dir.join(&self.prompts.dir)
    }

    pub fn prompt_path(&self, name: &str) -> PathBuf {
        prompt_file(&self.prompt_dir(), name)
    }

    pub fn trunk_for(&self, ip: IpAddr) -> Option<&TrunkConfig> {
        self.trunks.iter().find(|t| t.accepts(ip))
    }

    pub(super) fn validate(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.sip.udp.is_empty() && self.sip.tcp.is_empty() {
            out.push(problem(
                &["sip"],
                "no udp or tcp listener configured".into(),
            ));
        }
        let m = &self.media;
        if m.rtp_port_min >= m.rtp_port_max || m.rtp_port_min < 1024 {
            out.push(problem(
                &["media", "rtp_port_min"],
                format!(
                    "rtp port range {}-{} is empty or below 1024",
                    m.rtp_port_min, m.rtp_port_max
                ),
            ));
        }
        if m.jitter_min_ms == 0 || m.jitter_min_ms > m.jitter_max_ms || m.jitter_max_ms > 2000 {
            out.push(problem(
                &["media", "jitter_max_ms"],
                format!(
                    "jitter bounds {}..{} ms must satisfy 0 < min <= max <= 2000",
                    m.jitter_min_ms, m.jitter_max_ms
                ),
            ));
        }
        let dir = self.prompt_dir();
        if !dir.is_dir() {
            out.push(problem(
                &["prompts", "dir"],
                format!("prompt directory {} does not exist", dir.display()),
            ));
        }
        if self.trunks.is_empty() {
            out.push(problem(
                &["trunk"],
                "no [[trunk]] configured: every call would get 403".into(),
            ));
        }
        for (i, t) in self.trunks.iter().enumerate() {
            let idx = i.to_string();
            if self.trunks[..i].iter().any(|o| o.name == t.name) {
                out.push(problem(
                    &["trunk", &idx, "name"],
                    format!("duplicate trunk name {:?}", t.name),
                ));
            }
            if t.codecs.is_empty() {
                out.push(problem(
                    &["trunk", &idx, "codecs"],
                    "at least one codec is needed".into(),
                ));
            }
            let route_problem = match (t.ivr_menu(), t.queue()) {
                (Some(menu), _) if !self.ivr.menus.contains_key(menu) => Some(format!(
                    "route {:?} names an ivr menu that does not exist",
                    t.route
                )),
                (_, Some(queue)) if !self.queues.contains_key(queue) => Some(format!(
                    "route {:?} names a queue that does not exist",
                    t.route
                )),
                (Some(_), _) | (_, Some(_)) => None,
                (None, None) => Some(format!(
                    "unsupported route {:?}: expected \"ivr:MENU\" or \"queue:NAME\"",
                    t.route
                )),
            };
            if let Some(message) = route_problem {
                out.push(problem(&["trunk", &idx, "route"], message));
            }
        }
        let exists = |name: &str| prompt_file(&dir, name).is_file();
        out.extend(crate::agent::config::validate(&self.agents, &self.agent));
        out.extend(self.agents.opus.validate().into_iter().map(|p| Problem {
            path: vec!["agents".into(), "opus".into(), p.key.to_string()],
            message: p.message,
        }));
        let acd_agents: Vec<crate::queue::AcdAgent> = self
            .agent
            .iter()
            .map(|a| crate::queue::AcdAgent {
                id: a.id.clone(),
                skills: a.skills.clone(),
            })
            .collect();
        out.extend(crate::queue::validate(
            &self.queues,
            &acd_agents,
            &exists,
            &|menu| self.ivr.menus.contains_key(menu),
        ));
        out.extend(self.ivr_queue_targets());
        out.extend(self.ivr.validate(&exists).into_iter().map(|p| {
            let mut path = vec!["ivr".to_string()];
            path.extend(p.path.into_iter().skip_while(|s| s == "ivr"));
            Problem {
                path,
                message: p.message,
            }
        }));
        out
    }
}

impl Config {
    /// IVR destinations `queue:NAME` must name a queue.
    fn ivr_queue_targets(&self) -> Vec<Problem> {
        use crate::ivr::Action;
        let mut out = Vec::new();
        for (name, menu) in &self.ivr.menus {
            let mut actions: Vec<(Vec<String>, &Action)> = Vec::new();
            for (key, action) in menu.options.iter().flatten() {
                actions.push((vec!["options".into(), key.clone()], action));
            }
            if let Some(then) = &menu.then {
                actions.push((vec!["then".into()], then));
            }
            actions.push((vec!["on_failure".into()], &menu.on_failure));
            for (mut path, action) in actions {
                let Action::Destination { target } = action else {
                    continue;
                };
                if let Some(queue) = target.strip_prefix("queue:") {
                    if !self.queues.contains_key(queue) {
                        let mut full = vec!["ivr".into(), "menus".into(), name.clone()];
                        full.append(&mut path);
                        full.push("target".into());
                        out.push(Problem {
                            path: full,
                            message: format!(
                                "destination {target:?} names a queue that does not exist"
                            ),
                        });
                    }
                }
            }
        }
        out
    }
}

pub fn prompt_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.wav"))
}
