//! Call setups per second into the IVR: each call is answered, hears the menu prompt for 2 s
//! while it sends 2 s of speech, and hangs up.
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::analysis::{cpu_time, metric, percentile, udp_receive_buffer_drops};
use super::load::{gateway_config, wait_until};
use super::media::MediaPool;
use super::sip::{Caller, Drive, PlannedCall};
use super::Settings;
use crate::gateway::Gateway;

const TALK: Duration = Duration::from_secs(2);

/// One rate: `rate` calls a second for the settings' setup seconds.
pub fn setup_rate_step(
    settings: &Settings,
    rate: u32,
    speech: &Arc<[i16]>,
) -> Result<Value, String> {
    let gateway = Gateway::builder(&gateway_config("ivr:main", 0))
        .startup_timeout(Duration::from_secs(30))
        .start();
    let pid = gateway.pid();
    let total = (rate as u64 * settings.setup_secs) as usize;
    let mut pool = MediaPool::start(settings.workers, speech.clone()).map_err(|e| e.to_string())?;
    let mut caller =
        Caller::new(gateway.sip_udp(), &format!("r{rate}")).map_err(|e| e.to_string())?;
    for i in 0..total {
        caller.plan(PlannedCall {
            at: Duration::from_secs_f64(i as f64 / f64::from(rate)),
            talk: Some(TALK),
            record: false,
        });
    }
    let cpu_before = cpu_time(pid).unwrap_or_default();
    let drops_before = udp_receive_buffer_drops();
    let start = Instant::now();
    pool.start_window();
    let limit = Duration::from_secs(settings.setup_secs + 45);
    caller.drive(start, &mut pool, |progress| {
        if progress.done >= total || start.elapsed() > limit {
            Drive::Stop
        } else {
            Drive::Continue
        }
    });
    pool.end_window();
    let elapsed = start.elapsed().as_secs_f64();
    let udp_drops = udp_receive_buffer_drops().saturating_sub(drops_before);
    let cpu = (cpu_time(pid).unwrap_or_default().saturating_sub(cpu_before)).as_secs_f64();
    wait_until(Duration::from_secs(20), || {
        metric(&gateway.scrape(), "trunkgate_calls_active", &[]) < 0.5
    });
    let exposition = gateway.scrape();
    drop(gateway);
    let (media, _) = pool.finish();
    let outcomes = caller.outcomes();
    let mut failures: Vec<String> = Vec::new();
    let mut failed = 0usize;
    for outcome in &outcomes {
        let heard = outcome
            .stream
            .and_then(|_| media.iter().find(|m| m.label == outcome.label))
            .is_some_and(|m| m.received > 0);
        let problem = if let Some(failure) = &outcome.failure {
            Some(failure.clone())
        } else if outcome.answer_ms.is_none() {
            Some("never answered".into())
        } else if outcome.bye_ms.is_none() {
            Some(if outcome.gateway_hung_up {
                "the gateway hung up first".into()
            } else {
                "BYE never answered".into()
            })
        } else if !heard {
            Some("no prompt audio arrived".into())
        } else {
            None
        };
        if let Some(problem) = problem {
            failed += 1;
            if failures.len() < 5 {
                failures.push(format!("call {}: {problem}", outcome.label));
            }
        }
    }
    let answer: Vec<f64> = outcomes.iter().filter_map(|o| o.answer_ms).collect();
    let first: Vec<f64> = outcomes
        .iter()
        .filter_map(|o| o.first_response_ms)
        .collect();
    let bye: Vec<f64> = outcomes.iter().filter_map(|o| o.bye_ms).collect();
    Ok(json!({
        "rate_per_s": rate,
        "calls": total,
        "failed": failed,
        "failed_pct": 100.0 * failed as f64 / total.max(1) as f64,
        "failures": failures,
        "invite_to_first_response_ms_p50": percentile(&first, 50.0),
        "invite_to_first_response_ms_p99": percentile(&first, 99.0),
        "invite_to_200_ms_p50": percentile(&answer, 50.0),
        "invite_to_200_ms_p99": percentile(&answer, 99.0),
        "bye_to_200_ms_p99": percentile(&bye, 99.0),
        "gateway_cpu_pct_of_one_core": 100.0 * cpu / elapsed,
        "udp_receive_buffer_drops": udp_drops,
        "gateway_calls_started": metric(&exposition, "trunkgate_calls_started_total", &[]),
    }))
}
