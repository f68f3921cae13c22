//! The bench: the gateway under load on loopback beside rtpengine. `scripts/bench.sh` builds
//! release binaries and runs it; docs/performance.md explains the figures.
//!
//!   trunkgate-bench [--calls 50,100,200,400,600] [--window-secs 20] [--setup-rates …]
//!                   [--no-rtpengine] [--check]
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use trunkgate_integration::audio;
use trunkgate_integration::bench::{self, Settings};

#[derive(Parser, Debug)]
#[command(about = "Load bench: trunkgate under N bridged calls beside rtpengine, on loopback")]
struct Args {
    /// Concurrent bridged calls per step; stops at the first step that is not clean.
    #[arg(long, value_delimiter = ',', default_value = "1,50,100,200,400,600")]
    calls: Vec<usize>,
    /// The measurement window of each step.
    #[arg(long, default_value_t = 20)]
    window_secs: u64,
    /// Call setups per second into the IVR to try (2 s of media each).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "250,500,750,1000,1250,1500"
    )]
    setup_rates: Vec<u32>,
    /// How long each setup rate runs.
    #[arg(long, default_value_t = 5)]
    setup_secs: u64,
    /// Skip the load steps (and rtpengine).
    #[arg(long)]
    no_load: bool,
    /// Skip the setup-rate steps.
    #[arg(long)]
    no_setup_rate: bool,
    /// Agents that log in at once for the login storm (0: skip it) [default: 500, with
    /// --check 0].
    #[arg(long)]
    login_storm: Option<usize>,
    /// Skip the Opus cost and quality curve.
    #[arg(long)]
    no_codec_curve: bool,
    /// Leave rtpengine out (it must be installed otherwise: Debian rtpengine-daemon).
    #[arg(long)]
    no_rtpengine: bool,
    /// Calls per step whose returned audio is analysed (delay, PESQ).
    #[arg(long, default_value_t = 8)]
    recorded: usize,
    /// Generator threads (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Where report.json and report.md go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Correctness only (CI): record every call and fail unless every call was set up, carried
    /// its own audio both ways without loss, and was torn down. No timing thresholds.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("{}: {e}", args.out.display());
        return ExitCode::FAILURE;
    }
    let settings = Settings {
        recorded: if args.check {
            usize::MAX
        } else {
            args.recorded
        },
        calls: if args.no_load { Vec::new() } else { args.calls },
        window: Duration::from_secs(args.window_secs),
        setup_rates: if args.no_setup_rate {
            Vec::new()
        } else {
            args.setup_rates
        },
        setup_secs: args.setup_secs,
        rtpengine: !args.no_rtpengine,
        pesq: !args.check,
        workers: args
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        codec_curve: !args.no_codec_curve && !args.check,
        login_storm: args.login_storm.unwrap_or(if args.check { 0 } else { 500 }),
        out: args.out.clone(),
    };
    let speech: Arc<[i16]> = audio::prompt("main-menu")
        .samples
        .iter()
        .map(|&s| (s * 32767.0) as i16)
        .collect();
    let report = bench::run(&settings, speech);
    let json_path = args.out.join("report.json");
    let md_path = args.out.join("report.md");
    let text = serde_json::to_string_pretty(&report).unwrap_or_default();
    let table = bench::markdown(&report);
    if let Err(e) = std::fs::write(&json_path, text).and_then(|()| std::fs::write(&md_path, &table))
    {
        eprintln!("writing the report: {e}");
        return ExitCode::FAILURE;
    }
    println!("{table}");
    println!("report: {} and {}", json_path.display(), md_path.display());
    if args.check {
        let problems = bench::check(&report);
        if !problems.is_empty() {
            for problem in &problems {
                eprintln!("bench check: {problem}");
            }
            return ExitCode::FAILURE;
        }
        println!("bench check: every call set up, carried its audio both ways and was torn down");
    }
    ExitCode::SUCCESS
}
