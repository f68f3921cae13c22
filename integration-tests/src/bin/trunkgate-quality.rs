//! `trunkgate-quality`: how calls sound on the networks agents work from, one direction at a
//! time. For each condition (`trunkgate_integration::quality::conditions`) it places `--runs`
//! calls through a fresh gateway, the agent's link impaired by the harness's relay, and prints
//! PESQ-NB per direction (min, mean, max) as a markdown table, beside the receivers' own E-model
//! estimates (mean) and each receiver's jitter-buffer delay: the mean of its calls' means, the
//! mean of its calls' 95th percentiles and the largest of those.
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
use trunkgate_integration::quality::{conditions, one_call_keeping, Scores};

#[derive(Parser)]
#[command(about = "PESQ-NB of each direction of a call on impaired agent links")]
struct Args {
    /// Calls per condition.
    #[arg(long, default_value_t = 5)]
    runs: u64,
    /// Only conditions whose name contains this.
    #[arg(long)]
    only: Option<String>,
    /// Keep what each side heard: DIR/<condition>-<seed>-agent-heard.wav and -caller-heard.wav.
    #[arg(long, value_name = "DIR")]
    keep: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(dir) = &args.keep {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("--keep {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    }
    let mut failed = false;
    println!("| condition on the agent link (each way) | caller → agent min / mean / max | agent → caller min / mean / max | E-model c → a / a → c | agent buffer ms mean / p95 / worst p95 | gateway buffer ms mean / p95 / worst p95 | calls with a link warning |");
    println!("|---|---|---|---|---|---|---|");
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
            let keep = args.keep.as_ref().map(|dir| {
                let slug: String = condition
                    .name
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                    .collect();
                format!("{}/{slug}-{seed}-", dir.display())
            });
            match one_call_keeping(&condition.impairment, seed, keep.as_deref()) {
                Ok(s) => {
                    eprintln!(
                        "{} (seed {seed}): caller → agent {:.2} (E-model {:?}), agent → caller \
                         {:.2} (E-model {:?}); link warned: {}; agent: {}; gateway: {}",
                        condition.name,
                        s.caller_to_agent,
                        s.caller_to_agent_mos,
                        s.agent_to_caller,
                        s.agent_to_caller_mos,
                        s.link_warned,
                        s.agent_report,
                        s.gateway_report
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
        let mean_of = |pick: fn(&Scores) -> Option<f64>| {
            let values: Vec<f64> = scores.iter().filter_map(pick).collect();
            (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
        };
        let show = |v: Option<f64>, digits: usize| {
            v.map_or("–".to_string(), |v| format!("{v:.digits$}"))
        };
        let max_of = |pick: fn(&Scores) -> Option<f64>| {
            scores
                .iter()
                .filter_map(pick)
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
        };
        println!(
            "| {} | {} | {} | {} / {} | {} / {} / {} | {} / {} / {} | {} / {} |",
            condition.name,
            summary(|s| s.caller_to_agent),
            summary(|s| s.agent_to_caller),
            show(mean_of(|s| s.caller_to_agent_mos), 2),
            show(mean_of(|s| s.agent_to_caller_mos), 2),
            show(mean_of(|s| s.agent_buffer_ms), 0),
            show(mean_of(|s| s.agent_buffer_p95_ms), 0),
            show(max_of(|s| s.agent_buffer_p95_ms), 0),
            show(mean_of(|s| s.gateway_buffer_ms), 0),
            show(mean_of(|s| s.gateway_buffer_p95_ms), 0),
            show(max_of(|s| s.gateway_buffer_p95_ms), 0),
            scores.iter().filter(|s| s.link_warned).count(),
            scores.len(),
        );
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
