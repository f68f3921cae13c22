//! A shift start: many agents log in at once to an idle gateway, then log out. What the
//! gateway's memory does (each login verifies an Argon2id hash of 19 MiB; the gateway runs a
//! few at a time) and how long the storm takes.
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::analysis::{metric, rss_kib, threads};
use super::load::{gateway_config, swarm_troubles, wait_until};
use crate::agent::{demo_args_at, AgentProcess};
use crate::gateway::{Gateway, DEMO_CREDENTIAL};

pub fn login_storm(agents: usize) -> Result<Value, String> {
    let gateway = Gateway::builder(&gateway_config("queue:support", agents))
        .startup_timeout(Duration::from_secs(30))
        .start();
    let pid = gateway.pid();
    let idle_threads = threads(pid).unwrap_or(0);
    let idle = rss_kib(pid).unwrap_or(0);
    let count = agents.to_string();
    let args: Vec<String> = demo_args_at(
        gateway.quic(),
        &gateway.fingerprint(),
        &["--swarm", &count, "--duration-secs", "600"],
    )
    .into_iter()
    .map(|a| if a == "demo" { "bench".into() } else { a })
    .collect();
    let start = Instant::now();
    let mut swarm = AgentProcess::start(&args, DEMO_CREDENTIAL);
    let mut peak = idle;
    let all_in = wait_until(Duration::from_secs(120), || {
        peak = peak.max(rss_kib(pid).unwrap_or(0));
        metric(
            &gateway.scrape(),
            "trunkgate_agents",
            &[("state", "available")],
        ) as usize
            >= agents
    });
    let storm_secs = start.elapsed().as_secs_f64();
    let logged_in = metric(
        &gateway.scrape(),
        "trunkgate_agents",
        &[("state", "available")],
    ) as usize;
    // The verifications' blocking threads exit 10 s after their last job.
    wait_until(Duration::from_secs(15), || {
        threads(pid).unwrap_or(0) <= idle_threads
    });
    let settled = rss_kib(pid).unwrap_or(0);
    let troubles = (!all_in).then(|| swarm_troubles(&swarm));
    swarm.stop();
    wait_until(Duration::from_secs(20), || {
        metric(&gateway.scrape(), "trunkgate_agents_connected", &[]) < 0.5
    });
    // The agents' sessions are kept 15 s for a resume, and the gateway gives free heap space
    // back every 10 s: read it once both have had their turn, or once it is back within
    // 8 MiB of idle.
    let mut after = rss_kib(pid).unwrap_or(0);
    wait_until(Duration::from_secs(28), || {
        after = rss_kib(pid).unwrap_or(0);
        after <= idle + 8 * 1024
    });
    let mib = |kib: u64| (kib as f64 / 1024.0 * 10.0).round() / 10.0;
    let row = json!({
        "agents": agents,
        "logged_in": logged_in,
        "storm_s": storm_secs,
        "rss_mib": {
            "idle": mib(idle),
            "peak": mib(peak),
            "all_in": mib(settled),
            "after_logout": mib(after),
        },
    });
    if all_in {
        Ok(row)
    } else {
        Err(format!(
            "{logged_in} of {agents} agents logged in within 120 s: {row}; {}",
            troubles.unwrap_or_default()
        ))
    }
}
