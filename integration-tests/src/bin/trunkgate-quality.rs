//! `trunkgate-quality`: how calls sound on the networks agents work from, one direction at a
//! time. For each condition (`trunkgate_integration::quality::conditions`) it places `--runs`
//! calls through a fresh gateway, the agent's link impaired by the harness's relay, and prints
//! PESQ-NB per direction (min, mean, max) as a markdown table.
//!
//! ```text
//! cargo build --workspace --bins && target/debug/trunkgate-quality --runs 5
//! ```
//!
//! Each call takes about 15 s; the whole table at 5 runs about 7 minutes. Needs the test
//! dependencies (`scripts/setup-test-deps.sh`: baresip, the PESQ venv) and the `trunkgate` and
//! `trunkgate-agent` binaries built beside this one.
use std::process::ExitCode;

use clap::Parser;
use trunkgate_integration::quality::{conditions, one_call, Scores};

#[derive(Parser)]
#[command(about = "PESQ-NB of each direction of a call on impaired agent links")]
struct Args {
    /// Calls per condition.
    #[arg(long, default_value_t = 5)]
    runs: u64,
    /// Only conditions whose name contains this.
    #[arg(long)]
    only: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut failed = false;
    println!("| condition on the agent link (each way) | caller → agent min / mean / max | agent → caller min / mean / max |");
    println!("|---|---|---|");
    for condition in conditions() {
        if args
            .only
            .as_ref()
            .is_some_and(|o| !condition.name.contains(o.as_str()))
        {
            continue;
        }
        let mut scores: Vec<Scores> = Vec::new();
        for seed in 1..=args.runs {
            match one_call(&condition.impairment, seed) {
                Ok(s) => {
                    eprintln!(
                        "{} (seed {seed}): caller → agent {:.2}, agent → caller {:.2}",
                        condition.name, s.caller_to_agent, s.agent_to_caller
                    );
                    scores.push(s);
                }
                Err(e) => {
                    eprintln!("{} (seed {seed}): {e}", condition.name);
                    failed = true;
                }
            }
        }
        let summary = |pick: fn(&Scores) -> f64| {
            let values: Vec<f64> = scores.iter().map(pick).collect();
            if values.is_empty() {
                return "–".to_string();
            }
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            format!("{min:.2} / {mean:.2} / {max:.2}")
        };
        println!(
            "| {} | {} | {} |",
            condition.name,
            summary(|s| s.caller_to_agent),
            summary(|s| s.agent_to_caller)
        );
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
