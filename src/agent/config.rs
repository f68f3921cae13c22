//! `[agents]` (the QUIC listener and its identity) and `[[agent]]` (who may log in).
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::agent::identity::{self, IdentityError, ServerIdentity};
use crate::config::problem::Problem;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentsConfig {
    /// UDP address of the QUIC listener; port 0 picks a free port (logged at startup).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// PEM certificate chain and key; without them a self-signed certificate is created in
    /// `state_dir` on first start and its fingerprint logged for agents to pin.
    pub certificate: Option<PathBuf>,
    pub private_key: Option<PathBuf>,
    /// Where the gateway keeps what must survive restarts (the self-signed identity).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// How long an agent whose connection died may reconnect and get its call back.
    #[serde(default = "default_resume_grace")]
    pub resume_grace_ms: u64,
    #[serde(default)]
    pub opus: crate::media::opus::OpusConfig,
    /// TCP address the agent desk (a web page: `/`) is served on; none: no desk. A browser
    /// treats only a page from localhost as secure over plain HTTP.
    pub desk_listen: Option<SocketAddr>,
    /// The UDP port the desk page tells browsers to reach the agent endpoint on, when a port
    /// forward or a load balancer puts it on another port than `listen`'s.
    pub desk_public_port: Option<u16>,
}

impl Default for AgentsConfig {
    fn default() -> Self {
        AgentsConfig {
            listen: default_listen(),
            certificate: None,
            private_key: None,
            state_dir: default_state_dir(),
            resume_grace_ms: default_resume_grace(),
            opus: Default::default(),
            desk_listen: None,
            desk_public_port: None,
        }
    }
}

impl AgentsConfig {
    pub fn resume_grace(&self) -> Duration {
        Duration::from_millis(self.resume_grace_ms)
    }

    /// The agent link's certificate: the configured files (relative to `base_dir`), or the
    /// self-signed one in `state_dir`, created on first use.
    pub fn identity(&self, base_dir: &Path) -> Result<ServerIdentity, IdentityError> {
        let configured = match (&self.certificate, &self.private_key) {
            (Some(c), Some(k)) => Some((base_dir.join(c), base_dir.join(k))),
            _ => None,
        };
        identity::load_or_create(
            configured.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
            &base_dir.join(&self.state_dir),
        )
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 4433))
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("state")
}

fn default_resume_grace() -> u64 {
    15_000
}

/// One agent who may log in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub id: String,
    /// Argon2id PHC string from `trunkgate hash-credential`; the credential itself is never
    /// stored.
    pub credential_hash: String,
    /// Skills the agent has; a queue offers calls only to agents with all of its skills.
    #[serde(default)]
    pub skills: Vec<String>,
    /// A revoked agent is refused at login with reason `revoked`.
    #[serde(default)]
    pub revoked: bool,
    /// Whether the agent may place outbound calls (within `[outbound]`'s limits).
    #[serde(default = "yes")]
    pub outbound: bool,
    /// The number the agent's outbound calls show (E.164), unless they are for a queue that
    /// has one.
    pub caller_id: Option<String>,
    /// Makes this login a supervisor's: the queues it supervises (it is offered no calls).
    #[serde(default)]
    pub supervises: Vec<String>,
}

fn yes() -> bool {
    true
}

pub(crate) fn validate(agents: &AgentsConfig, list: &[AgentConfig]) -> Vec<Problem> {
    let mut out = Vec::new();
    let at = |path: &[&str], message: String| Problem {
        path: path.iter().map(|s| s.to_string()).collect(),
        message,
    };
    if agents.certificate.is_some() != agents.private_key.is_some() {
        out.push(at(
            &["agents", "certificate"],
            "certificate and private_key go together: give both or neither".into(),
        ));
    }
    if agents.resume_grace_ms > 600_000 {
        out.push(at(
            &["agents", "resume_grace_ms"],
            format!("{} ms is more than 10 minutes", agents.resume_grace_ms),
        ));
    }
    for (i, a) in list.iter().enumerate() {
        let idx = i.to_string();
        if a.id.is_empty() || a.id.len() > 64 {
            out.push(at(
                &["agent", &idx, "id"],
                format!("agent id {:?} must be 1 to 64 characters", a.id),
            ));
        }
        if list[..i].iter().any(|o| o.id == a.id) {
            out.push(at(
                &["agent", &idx, "id"],
                format!("duplicate agent id {:?}", a.id),
            ));
        }
        if let Err(e) = crate::agent::credential::check_hash(&a.credential_hash) {
            out.push(at(&["agent", &idx, "credential_hash"], e));
        }
    }
    out
}
