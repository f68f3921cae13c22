//! What the configuration file may say, with the defaults an operator would expect.
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::problem::Problem;
use crate::ivr::config::IvrConfig;
use crate::route::Destination;
pub use crate::sip::trunk::{Cidr, CodecName, TrunkConfig};

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
    /// `[[e1]]`: E1/PRI spans.
    #[serde(default)]
    pub e1: Vec<crate::isdn::config::E1Config>,
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
    /// `[ops]`: the admin API and metrics listeners.
    #[serde(default)]
    pub ops: crate::ops::OpsConfig,
    /// `[journal]`: the call journal on disk.
    #[serde(default)]
    pub journal: crate::journal::config::JournalConfig,
    /// `[outbound]`: the dial plan and fraud limits of agents' calls; none: agents cannot dial.
    pub outbound: Option<crate::call::outbound::OutboundConfig>,
    /// `[recording]`: where call recordings go and the key they are sealed with.
    #[serde(default)]
    pub recording: crate::recording::config::RecordingConfig,
    /// Directory that relative paths are resolved against (the config file's directory).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The file this came from (`None`: the embedded example); a reload reads it again.
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    #[serde(default = "default_listen")]
    pub udp: Vec<SocketAddr>,
    #[serde(default = "default_listen")]
    pub tcp: Vec<SocketAddr>,
    /// SIP over TLS listeners (usually port 5061); none by default.
    #[serde(default)]
    pub tls: Vec<SocketAddr>,
    /// PEM certificate chain and key the TLS listeners present, relative to this file; read
    /// again on reload (a renewal keeps the paths).
    pub tls_certificate: Option<PathBuf>,
    pub tls_private_key: Option<PathBuf>,
    /// Scanner defence: an address no trunk allows that sends more than `ban_after` requests
    /// within `ban_window_s` gets no answer at all for `ban_s`.
    #[serde(default = "default_ban_after")]
    pub ban_after: u32,
    #[serde(default = "default_ban_window")]
    pub ban_window_s: u64,
    #[serde(default = "default_ban")]
    pub ban_s: u64,
    pub public_address: Option<IpAddr>,
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// The nameservers SIP lookups (NAPTR/SRV/A for trunks' proxies, RFC 3263) use, each asked
    /// over UDP and TCP; empty: the system's (/etc/resolv.conf).
    #[serde(default)]
    pub dns_servers: Vec<SocketAddr>,
    /// RFC 4028 session timers: the session interval we ask for and grant, in seconds; 0 turns
    /// session timers off (`Require: timer` then gets 420). At least 90 otherwise.
    #[serde(default = "default_session_expires")]
    pub session_expires_s: u64,
    /// The smallest session interval we accept (a request for less gets 422): at least 90, at
    /// most `session_expires_s`.
    #[serde(default = "default_min_se")]
    pub min_se_s: u64,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            udp: default_listen(),
            tcp: default_listen(),
            tls: Vec::new(),
            tls_certificate: None,
            tls_private_key: None,
            ban_after: default_ban_after(),
            ban_window_s: default_ban_window(),
            ban_s: default_ban(),
            public_address: None,
            user_agent: default_user_agent(),
            dns_servers: Vec::new(),
            session_expires_s: default_session_expires(),
            min_se_s: default_min_se(),
        }
    }
}

fn default_session_expires() -> u64 {
    1800
}

fn default_min_se() -> u64 {
    90
}

fn default_ban_after() -> u32 {
    20
}

fn default_ban_window() -> u64 {
    60
}

fn default_ban() -> u64 {
    3600
}

impl SipConfig {
    pub fn guard(&self) -> crate::sip::guard::GuardConfig {
        crate::sip::guard::GuardConfig {
            ban_after: self.ban_after,
            window: Duration::from_secs(self.ban_window_s),
            ban_for: Duration::from_secs(self.ban_s),
        }
    }

    /// The arguments of `UserAgent::set_session_timers`: the interval (`None`: off) and Min-SE.
    pub fn session_timers(&self) -> (Option<Duration>, Duration) {
        let expires =
            (self.session_expires_s != 0).then(|| Duration::from_secs(self.session_expires_s));
        (expires, Duration::from_secs(self.min_se_s))
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

fn problem(path: &[&str], message: String) -> Problem {
    Problem::at(path, message)
}

impl Config {
    /// The TLS listeners' settings, read from their files; `None` with no TLS listener.
    pub fn sip_tls(&self) -> Result<Option<crate::sip::tls::TlsServer>, crate::sip::tls::TlsError> {
        let (Some(certificate), Some(key)) = (&self.sip.tls_certificate, &self.sip.tls_private_key)
        else {
            return Ok(None);
        };
        if self.sip.tls.is_empty() {
            return Ok(None);
        }
        crate::sip::tls::TlsServer::load(certificate, key, &self.trunks, &self.base_dir).map(Some)
    }

    /// Where recordings are written: `[recording] dir`, or `recordings` in the agents'
    /// `state_dir`, relative to the config file.
    pub fn recording_dir(&self) -> PathBuf {
        match &self.recording.dir {
            Some(dir) => self.base_dir.join(dir),
            None => self
                .base_dir
                .join(&self.agents.state_dir)
                .join("recordings"),
        }
    }

    fn missing_prompt(
        &self,
        at: &[&str],
        policy: &crate::recording::config::RecordingPolicy,
    ) -> Option<Problem> {
        let prompt = policy.prompt.as_deref()?;
        (!self.prompt_path(prompt).is_file()).then(|| {
            Problem::at(
                &[at, &["prompt"]].concat(),
                format!(
                    "prompt {prompt:?} not found in {}",
                    self.prompt_dir().display()
                ),
            )
        })
    }

    /// Where the journal's segments live: `[journal] dir`, or `journal` in the agents'
    /// `state_dir`, relative to the config file.
    pub fn journal_dir(&self) -> PathBuf {
        match &self.journal.dir {
            Some(dir) => self.base_dir.join(dir),
            None => self.base_dir.join(&self.agents.state_dir).join("journal"),
        }
    }

    /// Each queue's answer-time target, for the journal's queue outcomes.
    pub fn service_levels(&self) -> std::collections::BTreeMap<String, std::time::Duration> {
        self.queues
            .iter()
            .map(|(name, q)| (name.clone(), q.service_level()))
            .collect()
    }

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
        if self.sip.udp.is_empty() && self.sip.tcp.is_empty() && self.sip.tls.is_empty() {
            out.push(problem(
                &["sip"],
                "no udp, tcp or tls listener configured".into(),
            ));
        }
        if self.sip.ban_after == 0 || self.sip.ban_window_s == 0 {
            out.push(problem(
                &["sip", "ban_after"],
                "ban_after and ban_window_s must be at least 1".into(),
            ));
        }
        for server in &self.sip.dns_servers {
            if server.port() == 0 || server.ip().is_unspecified() {
                out.push(problem(
                    &["sip", "dns_servers"],
                    format!("{server}: a nameserver needs its address and port (usually 53)"),
                ));
            }
        }
        let (expires, min_se) = (self.sip.session_expires_s, self.sip.min_se_s);
        if expires != 0 && expires < 90 {
            out.push(problem(
                &["sip", "session_expires_s"],
                format!("{expires} s: 0 (no session timers) or at least 90 (RFC 4028)"),
            ));
        }
        if min_se < 90 {
            out.push(problem(
                &["sip", "min_se_s"],
                format!("{min_se} s: at least 90 (RFC 4028)"),
            ));
        } else if expires >= 90 && min_se > expires {
            out.push(problem(
                &["sip", "min_se_s"],
                format!("{min_se} s is above session_expires_s ({expires} s)"),
            ));
        }
        let tls_files = self.sip.tls_certificate.is_some() && self.sip.tls_private_key.is_some();
        if !self.sip.tls.is_empty() && !tls_files {
            out.push(problem(
                &["sip", "tls"],
                "a tls listener needs tls_certificate and tls_private_key (PEM files)".into(),
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
        if let Err(message) = crate::ops::check_log_level(&self.ops.log_level) {
            out.push(problem(&["ops", "log_level"], message));
        }
        out.extend(self.journal.validate());
        out.extend(self.recording.validate());
        for (i, agent) in self.agent.iter().enumerate() {
            for queue in agent
                .supervises
                .iter()
                .filter(|q| !self.queues.contains_key(*q))
            {
                let i = i.to_string();
                out.push(problem(
                    &["agent", i.as_str(), "supervises"],
                    format!("queue {queue:?} does not exist"),
                ));
            }
        }
        for (name, queue) in &self.queues {
            if let Some(policy) = &queue.recording {
                let at = ["queues", name.as_str(), "recording"];
                out.extend(policy.validate(&at, &self.recording));
                out.extend(self.missing_prompt(&at, policy));
            }
        }
        for (i, trunk) in self.trunks.iter().enumerate() {
            if let Some(policy) = &trunk.recording {
                let i = i.to_string();
                let at = ["trunk", i.as_str(), "recording"];
                out.extend(policy.validate(&at, &self.recording));
                out.extend(self.missing_prompt(&at, policy));
            }
        }
        let dir = self.prompt_dir();
        if !dir.is_dir() {
            out.push(problem(
                &["prompts", "dir"],
                format!("prompt directory {} does not exist", dir.display()),
            ));
        }
        if self.trunks.is_empty() && self.e1.is_empty() {
            out.push(problem(
                &["trunk"],
                "no [[trunk]] configured: every call would get 403".into(),
            ));
        }
        for (i, span) in self.e1.iter().enumerate() {
            let idx = i.to_string();
            let taken = self.e1[..i].iter().any(|o| o.name == span.name)
                || self.trunks.iter().any(|t| t.name == span.name);
            if taken {
                out.push(problem(
                    &["e1", &idx, "name"],
                    format!(
                        "{:?} names another span or trunk: a call's trunk must say where it came from",
                        span.name
                    ),
                ));
            }
            out.extend(span.validate(&idx));
            if let Some(message) = self.route_problem(&span.route) {
                out.push(problem(&["e1", &idx, "route"], message));
            }
        }
        for (i, t) in self.trunks.iter().enumerate() {
            let idx = i.to_string();
            if self.trunks[..i].iter().any(|o| o.name == t.name) {
                out.push(problem(
                    &["trunk", &idx, "name"],
                    format!("duplicate trunk name {:?}", t.name),
                ));
            }
            if t.srtp == crate::sip::sdp::SrtpPolicy::Required && self.sip.tls.is_empty() {
                out.push(problem(
                    &["trunk", &idx, "srtp"],
                    "srtp = \"required\" needs a [sip] tls listener: SDES keys never travel \
                     unencrypted, so every call would be refused"
                        .into(),
                ));
            }
            out.extend(self.registration_problems(t, &idx));
            if t.tls_client_ca.is_some() && self.sip.tls.is_empty() {
                out.push(problem(
                    &["trunk", &idx, "tls_client_ca"],
                    "tls_client_ca needs a [sip] tls listener".into(),
                ));
            }
            if t.codecs.is_empty() {
                out.push(problem(
                    &["trunk", &idx, "codecs"],
                    "at least one codec is needed".into(),
                ));
            }
            if let Some(message) = self.route_problem(&t.route) {
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
        out.extend(crate::call::outbound::config::validate(self));
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
    /// What is wrong with where a trunk's or a span's calls go.
    fn route_problem(&self, route: &Destination) -> Option<String> {
        let text = route.to_string();
        match route {
            Destination::Ivr { menu } if !self.ivr.menus.contains_key(menu) => Some(format!(
                "route {text:?} names an ivr menu that does not exist"
            )),
            Destination::Queue { name } if !self.queues.contains_key(name) => {
                Some(format!("route {text:?} names a queue that does not exist"))
            }
            Destination::Ivr { .. } | Destination::Queue { .. } => None,
            _ => Some(format!(
                "unsupported route {text:?}: expected \"ivr:MENU\" or \"queue:NAME\""
            )),
        }
    }

    fn registration_problems(&self, t: &TrunkConfig, idx: &str) -> Vec<Problem> {
        let mut out = Vec::new();
        if let Some(register) = &t.register {
            if let Err(e) = crate::sip::ua::register::RegistrarUri::parse(&register.registrar) {
                out.push(problem(&["trunk", idx, "register", "registrar"], e));
            }
            if t.credentials.is_none() {
                out.push(problem(
                    &["trunk", idx, "register"],
                    "registering needs [trunk.credentials]: username, and password or \
                     password_file"
                        .into(),
                ));
            }
            if !(60..=86_400).contains(&register.expires_s) {
                out.push(problem(
                    &["trunk", idx, "register", "expires_s"],
                    format!("{} s: between 60 and 86400", register.expires_s),
                ));
            }
        }
        if t.tls_ca.is_some() && t.tls_fingerprint.is_some() {
            out.push(problem(
                &["trunk", idx, "tls_fingerprint"],
                "give tls_ca or tls_fingerprint, not both".into(),
            ));
        }
        if let Some(fingerprint) = &t.tls_fingerprint {
            if let Err(e) = fingerprint.parse::<crate::agent::identity::Fingerprint>() {
                out.push(problem(&["trunk", idx, "tls_fingerprint"], e));
            }
        }
        if let Some(c) = &t.credentials {
            match (&c.password, &c.password_file) {
                (Some(_), Some(_)) | (None, None) => out.push(problem(
                    &["trunk", idx, "credentials"],
                    "give password or password_file (one of them)".into(),
                )),
                (None, Some(file)) => {
                    if let Err(message) = check_secret_file(&self.base_dir.join(file)) {
                        out.push(problem(
                            &["trunk", idx, "credentials", "password_file"],
                            message,
                        ));
                    }
                }
                (Some(_), None) => {}
            }
        }
        out
    }

    /// Reads every trunk's `password_file` (checked by `validate`).
    pub(super) fn read_secrets(&mut self) -> Vec<Problem> {
        let mut out = Vec::new();
        for (i, trunk) in self.trunks.iter_mut().enumerate() {
            let Some(c) = &mut trunk.credentials else {
                continue;
            };
            let Some(file) = &c.password_file else {
                continue;
            };
            match std::fs::read_to_string(self.base_dir.join(file)) {
                Ok(text) => {
                    c.secret_from_file = Some(text.trim_end_matches(['\r', '\n']).to_owned())
                }
                Err(e) => out.push(problem(
                    &["trunk", &i.to_string(), "credentials", "password_file"],
                    format!("{}: {e}", file.display()),
                )),
            }
        }
        out
    }

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
                let Action::Destination {
                    target: target @ Destination::Queue { name: queue },
                } = action
                else {
                    continue;
                };
                if !self.queues.contains_key(queue) {
                    let mut full = vec!["ivr".into(), "menus".into(), name.clone()];
                    full.append(&mut path);
                    full.push("target".into());
                    out.push(Problem {
                        path: full,
                        message: format!(
                            "destination {:?} names a queue that does not exist",
                            target.to_string()
                        ),
                    });
                }
            }
        }
        out
    }
}

/// A password file must exist and be readable by its owner only (the service user).
fn check_secret_file(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} is readable by others (mode {:o}): chmod 600 it, owned by the service user",
            path.display(),
            mode & 0o777
        ));
    }
    Ok(())
}

pub fn prompt_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.wav"))
}

#[cfg(test)]
mod session_timer_tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::{parse, EMBEDDED_DEFAULT};

    fn with_sip(lines: &str) -> String {
        EMBEDDED_DEFAULT.replacen("[sip]\n", &format!("[sip]\n{lines}\n"), 1)
    }

    fn error_keys(lines: &str) -> Vec<String> {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        match parse(&with_sip(lines), Path::new("t.toml"), repo) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.into_iter().map(|e| e.key).collect(),
        }
    }

    #[test]
    fn session_timer_settings_default_to_1800_and_90_and_are_bounded() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let c = parse(EMBEDDED_DEFAULT, Path::new("t.toml"), repo).unwrap();
        assert_eq!(
            c.sip.session_timers(),
            (Some(Duration::from_secs(1800)), Duration::from_secs(90))
        );
        let off = parse(
            &with_sip("session_expires_s = 0"),
            Path::new("t.toml"),
            repo,
        )
        .unwrap();
        assert_eq!(off.sip.session_timers().0, None);
        assert!(error_keys("session_expires_s = 600\nmin_se_s = 600").is_empty());
        assert_eq!(
            error_keys("session_expires_s = 60"),
            ["sip.session_expires_s"]
        );
        assert_eq!(error_keys("min_se_s = 30"), ["sip.min_se_s"]);
        assert_eq!(
            error_keys("session_expires_s = 300\nmin_se_s = 600"),
            ["sip.min_se_s"]
        );
    }
}
