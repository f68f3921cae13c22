//! How a call sounds, each direction scored on its own, with the agent on a home link that
//! loses and delays packets (`trunkgate_integration::quality`; `trunkgate-quality` prints the
//! whole table of conditions).
use trunkgate_integration::quality::{conditions, one_call, Scores};

#[test]
fn an_agent_on_a_home_link_with_3_percent_loss_and_30_ms_jitter_sounds_good_both_ways() {
    let condition = conditions()
        .into_iter()
        .find(|c| c.name.starts_with("3 % loss"))
        .expect("the home-link condition");
    let calls: Vec<_> = (1..=CALLS)
        .map(|seed| {
            let scores = one_call(&condition.impairment, seed).unwrap();
            println!("{} (seed {seed}): {scores:?}", condition.name);
            scores
        })
        .collect();
    for scores in &calls {
        // Redundancy rebuilds what such a link loses: nothing to warn the agent of.
        assert!(!scores.link_warned, "link warning on {}", condition.name);
        assert!(
            scores.caller_to_agent >= FLOOR,
            "caller → agent PESQ-NB {:.2} on {}",
            scores.caller_to_agent,
            condition.name
        );
        assert!(
            scores.agent_to_caller >= FLOOR,
            "agent → caller PESQ-NB {:.2} on {}",
            scores.agent_to_caller,
            condition.name
        );
        // Each receiver says how long its buffer held the call's frames: the mean, and the
        // 95th percentile the delay goal is about, which no mean exceeds.
        for (receiver, mean, p95) in [
            ("agent", scores.agent_buffer_ms, scores.agent_buffer_p95_ms),
            (
                "gateway",
                scores.gateway_buffer_ms,
                scores.gateway_buffer_p95_ms,
            ),
        ] {
            let (Some(mean), Some(p95)) = (mean, p95) else {
                panic!("{receiver}: no buffer delay reported: {scores:?}");
            };
            assert!(
                mean > 0.0 && p95 >= mean && p95 <= 200.0,
                "{receiver}: buffer mean {mean} ms, p95 {p95} ms"
            );
        }
    }
    // The receivers' own estimates (the agent client's for what it heard, the gateway's for
    // what it played to the caller) track what PESQ heard.
    let mean = |pick: fn(&Scores) -> f64| calls.iter().map(pick).sum::<f64>() / calls.len() as f64;
    let mean_estimate = |direction: &str, pick: fn(&Scores) -> Option<f64>| {
        calls
            .iter()
            .map(|s| pick(s).unwrap_or_else(|| panic!("{direction}: no E-model estimate")))
            .sum::<f64>()
            / calls.len() as f64
    };
    for (direction, pesq, estimate) in [
        (
            "caller → agent",
            mean(|s| s.caller_to_agent),
            mean_estimate("caller → agent", |s| s.caller_to_agent_mos),
        ),
        (
            "agent → caller",
            mean(|s| s.agent_to_caller),
            mean_estimate("agent → caller", |s| s.agent_to_caller_mos),
        ),
    ] {
        assert!(
            (estimate - pesq).abs() <= ESTIMATE_TOLERANCE,
            "{direction}: E-model {estimate:.2}, PESQ-NB {pesq:.2} (means of {CALLS} calls)"
        );
    }
}

/// Calls placed, with relay seeds 1 and 2. PESQ-NB of one call moves by up to 0.6 with where
/// the receiver's buffer grows while it learns the link's jitter in the first words (a change
/// of delay the E-model does not see); two calls' mean keeps the estimate's check meaningful.
const CALLS: u64 = 2;

/// How far the receivers' mean E-model estimate may be from the mean PESQ-NB on this row: the
/// calibration (docs/quality.md) holds each condition's mean within 0.3 over five calls.
const ESTIMATE_TOLERANCE: f64 = 0.5;

/// PESQ-NB each direction must reach on every call on the 3 % loss, 20 ms ± 30 ms link.
/// Measured with seeds 1–5 (docs/quality.md): caller → agent 3.82–3.90, agent → caller
/// 3.31–3.85, and down to 3.19 with another test running beside it. A direction that breaks (a
/// stalled link, a prompt cut short) scores under 2.5 and fails.
const FLOOR: f64 = 3.0;
