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
}

/// PESQ-NB each direction must reach on the 3 % loss, 20 ms ± 30 ms link. Measured with this
/// seed over 4 runs: caller → agent 2.92-3.73 (the agent client's receive path spreads: which
/// packets miss its buffer moves with timing), agent → caller 3.77-3.86; clean, both 3.86-3.87.
/// A direction that breaks (a stalled link scores under 2.3) fails; a slow CI machine does not.
/// Raising it to the 3.6 call quality aims at is that work (#10).
const FLOOR: f64 = 2.5;
