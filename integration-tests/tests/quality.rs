//! How a call sounds, each direction scored on its own, with the agent on a home link that
//! loses and delays packets (`trunkgate_integration::quality`; `trunkgate-quality` prints the
//! whole table of conditions).
use trunkgate_integration::quality::{conditions, one_call};

#[test]
fn an_agent_on_a_home_link_with_3_percent_loss_and_30_ms_jitter_sounds_good_both_ways() {
    let condition = conditions()
        .into_iter()
        .find(|c| c.name.starts_with("3 % loss"))
        .expect("the home-link condition");
    let scores = one_call(&condition.impairment, 1).unwrap();
    println!("{}: {scores:?}", condition.name);
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
    // The receivers' own estimates (the agent client's for what it heard, the gateway's for
    // what it played to the caller) track what PESQ heard.
    for (direction, pesq, estimate) in [
        (
            "caller → agent",
            scores.caller_to_agent,
            scores.caller_to_agent_mos,
        ),
        (
            "agent → caller",
            scores.agent_to_caller,
            scores.agent_to_caller_mos,
        ),
    ] {
        let estimate = estimate.unwrap_or_else(|| panic!("{direction}: no E-model estimate"));
        assert!(
            (estimate - pesq).abs() <= ESTIMATE_TOLERANCE,
            "{direction}: E-model {estimate:.2}, PESQ-NB {pesq:.2}"
        );
    }
}

/// How far a receiver's E-model estimate may be from PESQ-NB on this row: the calibration
/// (docs/quality.md) holds each condition's mean within 0.3; one call spreads further.
const ESTIMATE_TOLERANCE: f64 = 0.5;

/// PESQ-NB each direction must reach on the 3 % loss, 20 ms ± 30 ms link. Measured with this
/// seed in 3 runs since the caller waits for the agent before speaking: caller → agent
/// 3.64–3.88, agent → caller 3.54–3.85 (the table's goal is 3.6). Half a point of headroom
/// for a loaded CI machine; a direction that breaks (a stalled link, a prompt cut short) scores
/// under 2.5 and fails.
const FLOOR: f64 = 3.0;
