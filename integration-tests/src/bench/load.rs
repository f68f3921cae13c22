//! One load step: N carrier calls with speech, each bridged to an agent that reflects its
//! audio, measured over a window; then the same N through rtpengine.
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::analysis::{
    cpu_time, echo_findings, metric, percentile, rss_kib, threads, udp_receive_buffer_drops,
};
use super::media::{CallMedia, MediaPool, NewStream};
use super::rtpengine::{Reflector, Rtpengine};
use super::sip::{Caller, Drive, PlannedCall};
use super::Settings;
use crate::agent::{demo_args_at, AgentProcess};
use crate::gateway::{Gateway, TestConfig, DEMO_CREDENTIAL, DEMO_CREDENTIAL_HASH};

/// How fast the calls of a step are placed.
const DIAL_RATE: f64 = 100.0;
/// Jitter buffers settle and the queue's greeting is over before the window opens.
const SETTLE: Duration = Duration::from_secs(3);

/// The gateway config of the bench: the test config's media and Opus settings (those of
/// config.example.toml), the trunk routed straight to the queue, `agents` agents.
pub fn gateway_config(route: &str, agents: usize) -> String {
    let mut extra = String::new();
    for i in 1..=agents {
        extra.push_str(&format!(
            "[[agent]]\nid = \"bench-{i}\"\ncredential_hash = \"{DEMO_CREDENTIAL_HASH}\"\nskills = [\"support\"]\n\n"
        ));
    }
    TestConfig {
        tcp: false,
        route: route.into(),
        rtp_port_min: 20000,
        rtp_port_max: 59999,
        queue_wrap_up_ms: 0,
        queue_max_wait_ms: 600_000,
        extra,
        ..TestConfig::default()
    }
    .to_toml()
}

/// Everything one step measured on the gateway, as a report row.
pub fn gateway_step(
    settings: &Settings,
    calls: usize,
    speech: &Arc<[i16]>,
) -> Result<Value, String> {
    let gateway = Gateway::builder(&gateway_config("queue:support", calls))
        .startup_timeout(Duration::from_secs(30))
        .start();
    let pid = gateway.pid();
    let idle_threads = threads(pid).unwrap_or(0);
    let rss_idle = rss_kib(pid).unwrap_or(0);

    // The shift starts: every agent logs in at once.
    let count = calls.to_string();
    let args = demo_args_at(
        gateway.quic(),
        &gateway.fingerprint(),
        &["--swarm", &count, "--reflect", "--duration-secs", "900"],
    );
    let args: Vec<String> = args
        .into_iter()
        .map(|a| if a == "demo" { "bench".into() } else { a })
        .collect();
    let login_start = Instant::now();
    let mut swarm = AgentProcess::start(&args, DEMO_CREDENTIAL);
    let mut login_peak = rss_idle;
    let logged_in = wait_until(Duration::from_secs(60 + calls as u64 / 5), || {
        login_peak = login_peak.max(rss_kib(pid).unwrap_or(0));
        metric(
            &gateway.scrape(),
            "trunkgate_agents",
            &[("state", "available")],
        ) as usize
            >= calls
    });
    if !logged_in {
        let available = metric(
            &gateway.scrape(),
            "trunkgate_agents",
            &[("state", "available")],
        ) as usize;
        return Err(format!(
            "{available} of {calls} agents logged in; {}",
            swarm_troubles(&swarm)
        ));
    }
    eprintln!(
        "bench: {calls} agents logged in; gateway pid {pid}, metrics on {}",
        gateway.metrics()
    );
    let login_secs = login_start.elapsed().as_secs_f64();
    // Argon2 runs on tokio's blocking threads, which exit 10 s after their last job: their
    // stacks are not the calls' memory.
    wait_until(Duration::from_secs(15), || {
        threads(pid).unwrap_or(0) <= idle_threads
    });
    let rss_agents = rss_kib(pid).unwrap_or(0);

    let mut pool = MediaPool::start(settings.workers, speech.clone()).map_err(|e| e.to_string())?;
    let mut caller =
        Caller::new(gateway.sip_udp(), &format!("n{calls}")).map_err(|e| e.to_string())?;
    for i in 0..calls {
        caller.plan(PlannedCall {
            at: Duration::from_secs_f64(i as f64 / DIAL_RATE),
            talk: None,
            record: i < settings.recorded,
        });
    }
    let start = Instant::now();
    let limit = Duration::from_secs_f64(30.0 + calls as f64 / DIAL_RATE);
    let mut next_scrape = start;
    let mut bridged = 0usize;
    caller.drive(start, &mut pool, |progress| {
        if progress.failed > 0 || start.elapsed() > limit {
            return Drive::Stop;
        }
        if Instant::now() >= next_scrape {
            next_scrape = Instant::now() + Duration::from_millis(250);
            bridged = metric(
                &gateway.scrape(),
                "trunkgate_agents",
                &[("state", "talking")],
            ) as usize;
        }
        if bridged >= calls {
            Drive::Stop
        } else {
            Drive::Continue
        }
    });
    if bridged < calls {
        let failures: Vec<String> = caller
            .outcomes()
            .into_iter()
            .filter_map(|o| o.failure)
            .take(5)
            .collect();
        return Err(format!(
            "{bridged} of {calls} calls bridged within {limit:?}; failures: {failures:?}"
        ));
    }
    let settle = Instant::now();
    caller.drive(start, &mut pool, |_| stop_after(settle, SETTLE));

    // The window.
    let cpu = Cpu::start(&[pid, swarm.pid(), std::process::id()]);
    pool.start_window();
    eprintln!(
        "bench: window open for {:?} (gateway pid {pid})",
        settings.window
    );
    let window_start = Instant::now();
    let drops_before = udp_receive_buffer_drops();
    caller.drive(start, &mut pool, |_| {
        stop_after(window_start, settings.window)
    });
    pool.end_window();
    let cpu = cpu.finish();
    let udp_drops = udp_receive_buffer_drops().saturating_sub(drops_before);
    let rss_calls = rss_kib(pid).unwrap_or(0);

    // Everyone hangs up.
    let hangup = Instant::now();
    caller.drive(start, &mut pool, |progress| {
        if progress.done >= calls || hangup.elapsed() > Duration::from_secs(40) {
            Drive::Stop
        } else {
            Drive::HangUp
        }
    });
    let outcomes = caller.outcomes();
    let torn_down = outcomes.iter().filter(|o| o.ok()).count();
    wait_until(Duration::from_secs(20), || {
        metric(&gateway.scrape(), "trunkgate_calls_active", &[]) < 0.5
    });
    let rss_after = rss_kib(pid).unwrap_or(0);
    swarm.stop();
    let final_metrics = gateway.scrape();
    drop(gateway);

    let (media, worker) = pool.finish();
    let window_secs = cpu.window.as_secs_f64();
    let call_seconds = calls as f64 * window_secs;
    // Calls hand their media counters over when they end: these cover the whole of every call
    // (queue and bridge), the gateway having started fresh for this step.
    let delta = |name: &str, labels: &[(&str, &str)]| metric(&final_metrics, name, labels);
    let jb_mean_ms = |leg: &str| {
        let sum = delta("trunkgate_jitter_buffer_delay_seconds_sum", &[("leg", leg)]);
        let count = delta(
            "trunkgate_jitter_buffer_delay_seconds_count",
            &[("leg", leg)],
        );
        (count > 0.0).then(|| 1000.0 * sum / count)
    };
    let dropped_by_reason: std::collections::BTreeMap<&str, f64> = [
        "send_buffer_full",
        "unsendable",
        "malformed",
        "no_call",
        "call_behind",
    ]
    .into_iter()
    .map(|reason| {
        let dropped = delta(
            "trunkgate_agent_datagrams_dropped_total",
            &[("reason", reason)],
        );
        (reason, dropped)
    })
    .filter(|(_, dropped)| *dropped > 0.0)
    .collect();
    let echo = echo_findings(&media, speech, settings.pesq);
    let carrier = stream_figures(&media);
    let jb_carrier = jb_mean_ms("carrier");
    let jb_agent = jb_mean_ms("agent");
    let beyond = |trip: Option<f64>| Some(trip? - jb_carrier? - jb_agent?);
    let rtt_p50 = percentile(&echo.round_trip_ms, 50.0);
    let rtt_p99 = percentile(&echo.round_trip_ms, 99.0);
    let carried = carried_call_seconds(&media);
    let late_send: Vec<f64> = worker.send_late_ms.iter().map(|&v| f64::from(v)).collect();
    Ok(json!({
        "calls": calls,
        "bridged": bridged,
        "torn_down": torn_down,
        "window_s": window_secs,
        "gateway_cpu_ms_per_call_s": 1000.0 * cpu.used[0] / call_seconds,
        "gateway_cpu_ms_per_carried_call_s": 1000.0 * cpu.used[0] / carried,
        "saturated": saturated(&media),
        "gateway_cpu_pct_of_one_core": 100.0 * cpu.used[0] / window_secs,
        "agent_swarm_cpu_pct_of_one_core": 100.0 * cpu.used[1] / window_secs,
        "carrier_generator_cpu_pct_of_one_core": 100.0 * cpu.used[2] / window_secs,
        "generator_send_late_ms_p99": percentile(&late_send, 99.0),
        "udp_receive_buffer_drops_in_window": udp_drops,
        "rss_mib": {
            "idle": mib(rss_idle),
            "login_storm_peak": mib(login_peak),
            "agents_logged_in": mib(rss_agents),
            "calls_up": mib(rss_calls),
            "after_calls": mib(rss_after),
        },
        "rss_per_call_kib": (rss_calls as f64 - rss_agents as f64) / calls as f64,
        "login_storm_s": login_secs,
        "to_carrier": carrier,
        "gateway_counters": {
            "carrier_received": delta("trunkgate_rtp_packets_received_total", &[("leg", "carrier")]),
            "carrier_lost": delta("trunkgate_rtp_packets_lost_total", &[("leg", "carrier")]),
            "carrier_concealed": delta("trunkgate_concealed_frames_total", &[("leg", "carrier")]),
            "agent_received": delta("trunkgate_rtp_packets_received_total", &[("leg", "agent")]),
            "agent_lost": delta("trunkgate_rtp_packets_lost_total", &[("leg", "agent")]),
            "agent_late": delta("trunkgate_rtp_packets_late_total", &[("leg", "agent")]),
            "agent_concealed": delta("trunkgate_concealed_frames_total", &[("leg", "agent")]),
            "agent_datagrams_dropped": delta("trunkgate_agent_datagrams_dropped_total", &[]),
            "agent_datagrams_dropped_by_reason": dropped_by_reason,
            "calls_with_a_frame_over_20ms_late": frame_delay_over("", &final_metrics),
        },
        "latency_ms": {
            "round_trip_p50": rtt_p50,
            "round_trip_p99": rtt_p99,
            "jitter_buffer_carrier_mean": jb_carrier,
            "jitter_buffer_agent_mean": jb_agent,
            "beyond_jitter_buffers_p50": beyond(rtt_p50),
            "beyond_jitter_buffers_p99": beyond(rtt_p99),
            "pieces_found": echo.pieces_found,
            "pieces_sought": echo.pieces_sought,
        },
        "pesq_nb": {
            "mean": mean(&echo.pesq),
            "min": echo.pesq.iter().copied().reduce(f64::min),
            "calls": echo.pesq.len(),
            "per_call": echo.pesq,
        },
        "echo_per_call": echo_per_call(&media, speech),
        "calls_ended_total": metric(&final_metrics, "trunkgate_calls_ended_total", &[]),
    }))
}

/// rtpengine transcoding the same N calls PCMU ↔ Opus, with the same speech.
pub fn rtpengine_step(
    settings: &Settings,
    calls: usize,
    speech: &Arc<[i16]>,
) -> Result<Value, String> {
    let log = settings.out.join(format!("rtpengine-{calls}.log"));
    let ng_port = crate::ports::free_sip_port();
    let mut engine =
        Rtpengine::start(ng_port, (20000, 59999), &log, 2).map_err(|e| e.to_string())?;
    let reflector = Reflector::start().map_err(|e| e.to_string())?;
    let mut pool = MediaPool::start(settings.workers, speech.clone()).map_err(|e| e.to_string())?;
    // Every call is set up before any audio flows: a loaded rtpengine answers its control
    // protocol late.
    let mut remotes = Vec::new();
    for label in 0..calls {
        let caller = std::net::SocketAddr::from(([127, 0, 0, 1], pool.next_port_after(label)));
        remotes.push(engine.transcoded_call(label, caller, reflector.addr(), 40_000)?);
    }
    for (label, remote) in remotes.into_iter().enumerate() {
        pool.add(NewStream {
            label,
            remote,
            record: label < settings.recorded,
            send_for: None,
        });
    }
    std::thread::sleep(SETTLE);
    let cpu = Cpu::start(&[engine.pid(), std::process::id()]);
    pool.start_window();
    std::thread::sleep(settings.window);
    pool.end_window();
    let cpu = cpu.finish();
    let rss = rss_kib(engine.pid()).unwrap_or(0);
    for label in 0..calls {
        engine.delete(label);
    }
    engine.stop();
    let reflected = reflector.finish();
    let (media, _) = pool.finish();
    let window_secs = cpu.window.as_secs_f64();
    let echo = echo_findings(&media, speech, settings.pesq);
    let carried = carried_call_seconds(&media);
    Ok(json!({
        "calls": calls,
        "cpu_ms_per_call_s": 1000.0 * cpu.used[0] / (calls as f64 * window_secs),
        "cpu_ms_per_carried_call_s": 1000.0 * cpu.used[0] / carried,
        "saturated": saturated(&media),
        "cpu_pct_of_one_core": 100.0 * cpu.used[0] / window_secs,
        "generator_cpu_pct_of_one_core": 100.0 * cpu.used[1] / window_secs,
        "rss_mib": mib(rss),
        "reflected": reflected,
        "to_caller": stream_figures(&media),
        "round_trip_ms_p50": percentile(&echo.round_trip_ms, 50.0),
        "pesq_nb_mean": mean(&echo.pesq),
    }))
}

/// Call-seconds of audio that made the whole echo path back to the callers in the window:
/// the fair denominator for a process that could not keep up and dropped some.
fn carried_call_seconds(media: &[CallMedia]) -> f64 {
    let received: u64 = media.iter().map(|m| m.received).sum();
    (received as f64 * 0.02).max(f64::MIN_POSITIVE)
}

/// More than 0.1 % of what the callers sent did not come back: the process under test (or the
/// machine) could not keep up, and its CPU per nominal call-second understates its cost.
fn saturated(media: &[CallMedia]) -> bool {
    let sent: u64 = media.iter().map(|m| m.sent).sum();
    let received: u64 = media.iter().map(|m| m.received).sum();
    (received as f64) < 0.999 * sent as f64
}

/// The carrier side's view of the audio that came back: loss and arrival spread.
fn stream_figures(media: &[CallMedia]) -> Value {
    let sent: u64 = media.iter().map(|m| m.sent).sum();
    let received: u64 = media.iter().map(|m| m.received).sum();
    let lost: u64 = media.iter().map(|m| m.lost()).sum();
    let expected: u64 = media.iter().map(|m| m.expected).sum();
    let lateness: Vec<f64> = media
        .iter()
        .flat_map(|m| m.lateness_ms().map(f64::from))
        .collect();
    let silent_calls = media.iter().filter(|m| m.received == 0).count();
    json!({
        "sent": sent,
        "received": received,
        "lost": lost,
        "loss_pct": if expected > 0 { 100.0 * lost as f64 / expected as f64 } else { 0.0 },
        "calls_receiving_nothing": silent_calls,
        "arrival_beyond_quickest_ms_p50": percentile(&lateness, 50.0),
        "arrival_beyond_quickest_ms_p99": percentile(&lateness, 99.0),
    })
}

/// For each recorded call: how many pieces of its speech came back (a check that every call
/// carried its own audio both ways).
fn echo_per_call(media: &[CallMedia], speech: &[i16]) -> Vec<Value> {
    media
        .iter()
        .filter(|m| !m.recording.is_empty())
        .map(|m| {
            let found = echo_findings(std::slice::from_ref(m), speech, false);
            json!({ "call": m.label, "found": found.pieces_found, "sought": found.pieces_sought })
        })
        .collect()
}

fn frame_delay_over(before: &str, after: &str) -> f64 {
    let over = |text: &str| {
        metric(text, "trunkgate_call_frame_delay_seconds_count", &[])
            - metric(
                text,
                "trunkgate_call_frame_delay_seconds_bucket",
                &[("le", "0.02")],
            )
    };
    over(after) - over(before)
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn mib(kib: u64) -> f64 {
    (kib as f64 / 1024.0 * 10.0).round() / 10.0
}

fn stop_after(since: Instant, length: Duration) -> Drive {
    if since.elapsed() >= length {
        Drive::Stop
    } else {
        Drive::Continue
    }
}

/// Polls `done` every 50 ms until it holds or `limit` passes; whether it held.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What went wrong in a swarm that did not all log in: its events by kind, and its first
/// connection losses and refusals.
pub fn swarm_troubles(swarm: &AgentProcess) -> String {
    let lines = swarm.lines();
    let mut events = std::collections::BTreeMap::new();
    for line in &lines {
        if let Some(event) = line.split_whitespace().find(|w| w.starts_with("event=")) {
            *events.entry(event.to_owned()).or_insert(0usize) += 1;
        }
    }
    let losses: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("connection_lost") || l.contains("refused"))
        .take(3)
        .collect();
    format!("the swarm's events: {events:?}; its losses: {losses:?}")
}

/// CPU used by some processes over a window.
struct Cpu {
    pids: Vec<u32>,
    start: Instant,
    before: Vec<Duration>,
}

struct CpuUsed {
    window: Duration,
    /// Seconds of CPU per process, in the order given.
    used: Vec<f64>,
}

impl Cpu {
    fn start(pids: &[u32]) -> Cpu {
        Cpu {
            pids: pids.to_vec(),
            start: Instant::now(),
            before: pids
                .iter()
                .map(|&p| cpu_time(p).unwrap_or_default())
                .collect(),
        }
    }

    fn finish(self) -> CpuUsed {
        let used = self
            .pids
            .iter()
            .zip(&self.before)
            .map(|(&p, before)| {
                (cpu_time(p).unwrap_or_default().saturating_sub(*before)).as_secs_f64()
            })
            .collect();
        CpuUsed {
            window: self.start.elapsed(),
            used,
        }
    }
}
