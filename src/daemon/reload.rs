//! A config reload (SIGHUP, `POST /v1/reload`, `trunkgate ctl reload`): the file is read and
//! validated first, and a file with problems changes nothing. A good one is swapped in whole:
//! new calls get it, calls in progress keep the config they started with.
//!
//! What changes: trunks and their ACLs, routes, IVR menus and prompts, queues (a queue removed
//! keeps serving the callers already in it until they are done), agents and credentials (an
//! agent revoked or removed is logged out at once; a call it was on goes back to the head of
//! its queue), Opus settings for calls bridged from now on, the agent-link certificate (read
//! again even if its paths did not change, as a renewal leaves them: new connections get it,
//! connected agents keep theirs), the SIP TLS certificate and trunks' client CAs (the same way:
//! new TLS connections get them), the scanner defence's limits (bans in force stay), and
//! trunks' registrations (a new or changed one registers at once). What needs a restart
//! (listen addresses, the RTP port range, the drain timeout) is named in the answer and the
//! log, and keeps its old value.
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};

use crate::agent::desk_certificate::DeskCertificates;
use crate::agent::identity::Fingerprint;
use crate::agent::link;
use crate::agent::protocol::MediaParams;
use crate::config::{self, Config, Loaded, SharedConfig};
use crate::ops::admin::Ops;
use crate::ops::Logging;
use crate::queue::center::shell::Reconfigure;
use crate::sip::trunk::TrunkConfig;

/// Where a new config goes besides the shared snapshot.
pub(super) struct Reloader {
    pub config: SharedConfig,
    pub trunks: watch::Sender<Vec<TrunkConfig>>,
    pub center: mpsc::UnboundedSender<Reconfigure>,
    /// Queues' service levels, for the journal's queue outcomes.
    pub service_levels: watch::Sender<crate::journal::shell::ServiceLevels>,
    pub ops: Arc<Ops>,
    pub agent_link: AgentLinkIdentity,
    pub logging: Logging,
    /// The SIP transports, for their TLS settings.
    pub sip: crate::sip::transport::Transports,
}

/// The agent link's endpoint and the fingerprint of the certificate it now presents.
pub(super) struct AgentLinkIdentity {
    endpoint: quinn::Endpoint,
    fingerprint: Mutex<Fingerprint>,
    /// Browsers' certificate, kept across reloads.
    desk: Option<Arc<DeskCertificates>>,
}

impl AgentLinkIdentity {
    pub fn new(
        endpoint: quinn::Endpoint,
        fingerprint: Fingerprint,
        desk: Option<Arc<DeskCertificates>>,
    ) -> Self {
        AgentLinkIdentity {
            endpoint,
            fingerprint: Mutex::new(fingerprint),
            desk,
        }
    }
}

impl Reloader {
    /// What changed, or every problem found (then nothing changed).
    pub fn reload(&self) -> Result<String, String> {
        let old = self.config.load_full();
        let Some(file) = old.config.file.clone() else {
            return Err(
                "running on the embedded example config (no --config): nothing to reload\n".into(),
            );
        };
        let new = config::load(&file).map_err(|e| format!("{e}\n"))?;
        let restart = needs_restart(&old.config, &new);
        let loaded = Loaded::new(new).map_err(|e| format!("{}: {e}\n", file.display()))?;
        let c = &loaded.config;
        let certificate_problem = |e: &dyn std::fmt::Display| {
            format!("{}: agent-link certificate: {e}\n", file.display())
        };
        let identity = c
            .agents
            .identity(&c.base_dir)
            .map_err(|e| certificate_problem(&e))?;
        let server = link::server_config(&identity, self.agent_link.desk.clone())
            .map_err(|e| certificate_problem(&e))?;
        let sip_tls = c
            .sip_tls()
            .map_err(|e| format!("{}: sip tls: {e}\n", file.display()))?;
        let trunks = c.trunks.clone();
        // The center is gone only when the daemon stops.
        let _ = self.center.send(Reconfigure {
            queues: Arc::new(c.queues.clone()),
            media: media_params(c),
            agents: c.agent.clone(),
            outbound: crate::queue::center::outbound::OutboundSettings::from_config(c),
        });
        self.service_levels.send_replace(c.service_levels());
        self.ops.reconfigure(c);
        let mut summary = format!(
            "reloaded {}: {} trunks, {} ivr menus, {} queues, {} agents, {} prompts\n",
            file.display(),
            c.trunks.len(),
            c.ivr.menus.len(),
            c.queues.len(),
            c.agent.len(),
            loaded.prompts.len()
        );
        let mut presented = self
            .agent_link
            .fingerprint
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if *presented != identity.fingerprint {
            self.agent_link.endpoint.set_server_config(Some(server));
            *presented = identity.fingerprint;
            tracing::warn!(fingerprint = %identity.fingerprint, "agent-link certificate replaced: agents that pin the old fingerprint must be given this one");
            summary.push_str(&format!(
                "agent-link certificate replaced: fingerprint={}\n",
                identity.fingerprint
            ));
        }
        drop(presented);
        if let Some(tls) = sip_tls {
            summary.push_str(&format!(
                "sip tls certificate: fingerprint={}\n",
                tls.fingerprint
            ));
            self.sip.set_tls(tls);
        }
        if old.config.ops.log_level != c.ops.log_level {
            match self.logging.set_level(&c.ops.log_level) {
                Ok(()) => summary.push_str(&format!("log level now {}\n", c.ops.log_level)),
                Err(e) => summary.push_str(&format!("ops.log_level not applied: {e}\n")),
            }
        }
        for key in &restart {
            tracing::warn!(
                key,
                "changed in the file: needs a restart, the old value stays"
            );
            summary.push_str(&format!("{key} changed: needs a restart\n"));
        }
        self.config.store(Arc::new(loaded));
        // After the store: the signalling task reads the rest of the new config (the scanner
        // defence's limits, TLS files) when its trunks change.
        self.trunks.send_replace(trunks);
        Ok(summary)
    }
}

impl Reloader {
    /// Replaces the desk certificate now: new browser connections get the new one, those up
    /// keep theirs, pages fetch the new hash.
    pub fn renew_desk_certificate(&self) -> Result<String, String> {
        let Some(desk) = &self.agent_link.desk else {
            return Err("browsers get the configured certificate: nothing to renew\n".into());
        };
        let fresh = desk
            .renew_now(std::time::SystemTime::now())
            .map_err(|e| format!("{e}\n"))?;
        tracing::info!(sha256 = %fresh.hash, "agent desk: certificate renewed on request");
        Ok(format!("desk certificate renewed: sha256={}\n", fresh.hash))
    }
}

/// The Opus settings agents are told in their offers.
pub(super) fn media_params(config: &Config) -> MediaParams {
    let opus = &config.agents.opus;
    MediaParams {
        bitrate: opus.bitrate,
        fec: opus.fec,
        dtx: opus.dtx,
        ..MediaParams::default()
    }
}

/// The keys whose change a running gateway cannot take.
fn needs_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    let same =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") == format!("{b:?}");
    let checks: [(&'static str, bool); 10] = [
        // Its directory, sync policy and sinks belong to the journal's thread and shippers,
        // started once.
        ("journal", same(&old.journal, &new.journal)),
        ("sip.udp", same(&old.sip.udp, &new.sip.udp)),
        ("sip.tcp", same(&old.sip.tcp, &new.sip.tcp)),
        ("sip.tls", same(&old.sip.tls, &new.sip.tls)),
        (
            "sip.public_address",
            same(&old.sip.public_address, &new.sip.public_address),
        ),
        (
            "media.rtp_port_min / rtp_port_max",
            same(
                &(old.media.rtp_port_min, old.media.rtp_port_max),
                &(new.media.rtp_port_min, new.media.rtp_port_max),
            ),
        ),
        (
            "agents.listen",
            same(&old.agents.listen, &new.agents.listen),
        ),
        ("ops.admin", same(&old.ops.admin, &new.ops.admin)),
        ("ops.metrics", same(&old.ops.metrics, &new.ops.metrics)),
        (
            "ops.drain_timeout_ms",
            same(&old.ops.drain_timeout_ms, &new.ops.drain_timeout_ms),
        ),
    ];
    checks
        .into_iter()
        .filter(|(_, unchanged)| !unchanged)
        .map(|(key, _)| key)
        .collect()
}
