//! `impair`: the harness's UDP impairment relay for manual use, e.g. to try the agent against
//! the gateway over a bad link:
//!
//! ```text
//! impair --listen 127.0.0.1:5000 --upstream 127.0.0.1:4433 --delay 20ms --jitter 30ms \
//!        --loss 3 --reorder 1 --seconds 60
//! ```
//!
//! Runs until `--seconds` have passed (the relay's own bound; there is no way to run it
//! unbounded), printing counters every `--report` seconds. Loopback addresses only.

use std::process::ExitCode;
use std::time::Duration;

use thiserror::Error;
use trunkgate_integration::relay::{
    BurstLoss, DirectionStats, Impairment, Relay, RelayConfig, RelayStats,
};

const USAGE: &str = "\
usage: impair --upstream ADDR [options]

  --upstream ADDR      where to forward (loopback only), e.g. 127.0.0.1:4433
  --listen ADDR        where clients send (default 127.0.0.1:0: a free port, printed)
  --delay DUR          one-way delay, e.g. 20ms, 1.5s, 500us (default 0)
  --jitter DUR         delay varies uniformly within +-DUR (default 0)
  --keep-order         jitter never reorders (a FIFO queue) instead of netem-like reordering
  --loss PCT           random loss, percent
  --burst ENTER,EXIT   Gilbert-Elliott burst loss: percent chance to enter / leave a burst
  --reorder PCT        percent of datagrams sent after the next one
  --duplicate PCT      percent of datagrams sent twice
  --rate BPS           bottleneck in bit/s; suffixes k and M (e.g. 64k)
  --direction DIR      up (client to upstream), down, or both (default both)
  --seconds N          stop after N seconds (default 120)
  --seed N             random seed; same seed, same decisions (default 0)
  --report N           print counters every N seconds, 0 for only at the end (default 5)
";

#[derive(Debug, Error, PartialEq)]
enum UsageError {
    #[error("{flag} needs a value")]
    MissingValue { flag: String },
    #[error("unknown option {0}")]
    UnknownOption(String),
    #[error("--upstream is required")]
    NoUpstream,
    #[error("{flag} {value}: {problem}")]
    BadValue {
        flag: String,
        value: String,
        problem: &'static str,
    },
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Directions {
    Up,
    Down,
    Both,
}

#[derive(Debug)]
struct Options {
    config: RelayConfig,
    report_every: Duration,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--help" || arg == "-h") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let options = match parse(&args) {
        Ok(options) => options,
        Err(error) => {
            eprint!("impair: {error}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let upstream = options.config.upstream;
    let max_runtime = options.config.max_runtime;
    let relay = match Relay::start(options.config) {
        Ok(relay) => relay,
        Err(error) => {
            eprintln!("impair: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "impair: relaying {} -> {upstream} for {max_runtime:?}",
        relay.addr()
    );
    let report_every = if options.report_every.is_zero() {
        max_runtime
    } else {
        options.report_every
    };
    while !relay.wait_stopped(report_every) {
        println!("{}", describe(&relay.stats()));
    }
    println!(
        "impair: stopped after {max_runtime:?}\n{}",
        describe(&relay.stats())
    );
    ExitCode::SUCCESS
}

fn parse(args: &[String]) -> Result<Options, UsageError> {
    let mut listen = None;
    let mut upstream = None;
    let mut impairment = Impairment::default();
    let mut directions = Directions::Both;
    let mut seconds = 120;
    let mut seed = 0;
    let mut report_seconds = 5;

    let mut args = args.iter();
    while let Some(flag) = args.next() {
        if flag == "--keep-order" {
            impairment.keep_order = true;
            continue;
        }
        let value = args
            .next()
            .ok_or_else(|| UsageError::MissingValue { flag: flag.clone() })?;
        let bad = |problem| UsageError::BadValue {
            flag: flag.clone(),
            value: value.clone(),
            problem,
        };
        match flag.as_str() {
            "--listen" => listen = Some(value.parse().map_err(|_| bad("not an address"))?),
            "--upstream" => upstream = Some(value.parse().map_err(|_| bad("not an address"))?),
            "--delay" => impairment.delay = parse_duration(value).map_err(bad)?,
            "--jitter" => impairment.jitter = parse_duration(value).map_err(bad)?,
            "--loss" => impairment.loss_pct = parse_percentage(value).map_err(bad)?,
            "--reorder" => impairment.reorder_pct = parse_percentage(value).map_err(bad)?,
            "--duplicate" => impairment.duplicate_pct = parse_percentage(value).map_err(bad)?,
            "--burst" => impairment.burst_loss = Some(parse_burst(value).map_err(bad)?),
            "--rate" => impairment.rate_limit_bps = Some(parse_rate(value).map_err(bad)?),
            "--direction" => {
                directions = match value.as_str() {
                    "up" => Directions::Up,
                    "down" => Directions::Down,
                    "both" => Directions::Both,
                    _ => return Err(bad("expected up, down or both")),
                }
            }
            "--seconds" => seconds = parse_whole(value).map_err(bad)?,
            "--seed" => seed = parse_whole(value).map_err(bad)?,
            "--report" => report_seconds = parse_whole(value).map_err(bad)?,
            _ => return Err(UsageError::UnknownOption(flag.clone())),
        }
    }

    let mut config = RelayConfig::new(upstream.ok_or(UsageError::NoUpstream)?);
    if let Some(listen) = listen {
        config.listen = listen;
    }
    if matches!(directions, Directions::Up | Directions::Both) {
        config.impair_up = impairment.clone();
    }
    if matches!(directions, Directions::Down | Directions::Both) {
        config.impair_down = impairment;
    }
    config.max_runtime = Duration::from_secs(seconds);
    config.seed = seed;
    Ok(Options {
        config,
        report_every: Duration::from_secs(report_seconds),
    })
}

/// `20ms`, `1.5s`, `500us`. A unit is required: a bare number is too easy to misread.
fn parse_duration(text: &str) -> Result<Duration, &'static str> {
    let (number, seconds_per_unit) = if let Some(number) = text.strip_suffix("us") {
        (number, 1e-6)
    } else if let Some(number) = text.strip_suffix("ms") {
        (number, 1e-3)
    } else if let Some(number) = text.strip_suffix('s') {
        (number, 1.0)
    } else {
        return Err("needs a unit: us, ms or s");
    };
    let value: f64 = number.parse().map_err(|_| "not a number")?;
    Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|_| "not a duration")
}

fn parse_percentage(text: &str) -> Result<f64, &'static str> {
    let value: f64 = text.parse().map_err(|_| "not a number")?;
    if (0.0..=100.0).contains(&value) {
        Ok(value)
    } else {
        Err("expected a percentage from 0 to 100")
    }
}

fn parse_burst(text: &str) -> Result<BurstLoss, &'static str> {
    let (enter, exit) = text.split_once(',').ok_or("expected ENTER,EXIT")?;
    Ok(BurstLoss {
        enter_pct: parse_percentage(enter)?,
        exit_pct: parse_percentage(exit)?,
    })
}

fn parse_rate(text: &str) -> Result<u64, &'static str> {
    let (number, multiplier) = if let Some(number) = text.strip_suffix('k') {
        (number, 1_000)
    } else if let Some(number) = text.strip_suffix('M') {
        (number, 1_000_000)
    } else {
        (text, 1)
    };
    let value: u64 = number.parse().map_err(|_| "not a whole number of bit/s")?;
    match value.checked_mul(multiplier) {
        Some(0) => Err("must be more than 0"),
        Some(rate) => Ok(rate),
        None => Err("too large"),
    }
}

fn parse_whole(text: &str) -> Result<u64, &'static str> {
    text.parse().map_err(|_| "not a whole number")
}

fn describe(stats: &RelayStats) -> String {
    fn line(name: &str, direction: &DirectionStats) -> String {
        format!(
            "{name}: received {} forwarded {} dropped {} overflowed {} reordered {} duplicated {} send errors {}",
            direction.received,
            direction.forwarded,
            direction.dropped,
            direction.queue_overflow,
            direction.reordered,
            direction.duplicated,
            direction.send_errors,
        )
    }
    format!(
        "{}\n{}\nclients: {} (refused {})",
        line("up  ", &stats.up),
        line("down", &stats.down),
        stats.flows,
        stats.flows_refused
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn the_documented_example_parses() {
        let options = parse(&args(
            "--listen 127.0.0.1:5000 --upstream 127.0.0.1:4433 --delay 20ms --jitter 30ms \
             --loss 3 --reorder 1 --seconds 60",
        ))
        .unwrap();
        let config = options.config;
        assert_eq!(config.listen, "127.0.0.1:5000".parse().unwrap());
        assert_eq!(config.upstream, "127.0.0.1:4433".parse().unwrap());
        assert_eq!(config.max_runtime, Duration::from_secs(60));
        let expected = Impairment {
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(30),
            loss_pct: 3.0,
            reorder_pct: 1.0,
            ..Impairment::default()
        };
        assert_eq!(config.impair_up, expected);
        assert_eq!(config.impair_down, expected, "both directions by default");
    }

    #[test]
    fn direction_burst_rate_and_keep_order_reach_the_config() {
        let options = parse(&args(
            "--upstream 127.0.0.1:4433 --direction down --burst 2,25 --rate 64k --keep-order \
             --seed 9 --report 0",
        ))
        .unwrap();
        let config = options.config;
        assert_eq!(config.impair_up, Impairment::default());
        assert_eq!(
            config.impair_down.burst_loss,
            Some(BurstLoss {
                enter_pct: 2.0,
                exit_pct: 25.0
            })
        );
        assert_eq!(config.impair_down.rate_limit_bps, Some(64_000));
        assert!(config.impair_down.keep_order);
        assert_eq!(config.seed, 9);
        assert_eq!(options.report_every, Duration::ZERO);
    }

    #[test]
    fn mistakes_are_reported_with_the_offending_value() {
        let error = |line: &str| parse(&args(line)).unwrap_err().to_string();
        assert_eq!(error("--delay 20ms"), "--upstream is required");
        assert_eq!(
            error("--upstream 127.0.0.1:1 --delay 20"),
            "--delay 20: needs a unit: us, ms or s"
        );
        assert_eq!(
            error("--upstream 127.0.0.1:1 --loss 120"),
            "--loss 120: expected a percentage from 0 to 100"
        );
        assert_eq!(
            error("--upstream 127.0.0.1:1 --jitter"),
            "--jitter needs a value"
        );
        assert_eq!(
            error("--upstream 127.0.0.1:1 --nat x"),
            "unknown option --nat"
        );
        assert_eq!(
            error("--upstream 127.0.0.1:1 --rate 0k"),
            "--rate 0k: must be more than 0"
        );
    }

    #[test]
    fn durations_take_fractions_and_three_units() {
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
        assert!(parse_duration("-3ms").is_err());
        assert!(parse_duration("fast").is_err());
    }
}
