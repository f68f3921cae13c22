//! The `trunkgate` daemon and its command line.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use trunkgate::config::{self, Config};
use trunkgate::daemon::Daemon;
use trunkgate::ops::Logging;

#[derive(Parser)]
#[command(
    version,
    about = "Branch-office voice edge: carrier SIP trunks, local IVR, remote agents"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway. Without --config, the built-in example configuration is used (SIP on
    /// port 5060, calls accepted from loopback, prompts from ./prompts).
    Run {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Validate a configuration file: exit 0 when it is valid, else print every problem as
    /// FILE:LINE:COLUMN: KEY: message and exit 1.
    CheckConfig { file: PathBuf },
    /// Read an agent credential from standard input (first line) and print the Argon2id hash to
    /// put in the agent's `credential_hash`. The credential itself is never stored.
    HashCredential,
    /// Ask the running gateway (its admin API) what is going on, or drain it.
    Ctl {
        /// The admin API's address ([ops] admin).
        #[arg(long, default_value = "127.0.0.1:9470")]
        admin: std::net::SocketAddr,
        #[command(subcommand)]
        what: CtlCommand,
    },
}

#[derive(Subcommand)]
enum CtlCommand {
    /// Calls in progress: trunk, caller, state, queue, agent, how long.
    Calls {
        #[arg(long)]
        json: bool,
    },
    /// Logged-in agents: state, for how long, connected or resuming, their call.
    Agents {
        #[arg(long)]
        json: bool,
    },
    /// Queues: waiting, longest wait, service level, ASA, abandon rate, agents free and busy.
    Queues {
        #[arg(long)]
        json: bool,
    },
    /// Read the config file again: new calls get the new config, calls in progress keep theirs.
    /// A file with problems is refused (every problem printed, exit 1) and the old config runs on.
    Reload,
    /// Stop taking calls (503 to carriers) and exit once calls in progress finish, or the
    /// drain timeout passes.
    Drain {
        /// End every call now instead.
        #[arg(long)]
        now: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => match config::load(&file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::HashCredential => {
            let mut line = String::new();
            if std::io::stdin().read_line(&mut line).is_err() || line.trim().is_empty() {
                eprintln!("give the credential on standard input, e.g.: echo -n SECRET | trunkgate hash-credential");
                return ExitCode::FAILURE;
            }
            println!(
                "{}",
                trunkgate::agent::credential::hash(line.trim_end_matches(['\r', '\n']))
            );
            ExitCode::SUCCESS
        }
        Command::Ctl { admin, what } => {
            use trunkgate::ops::ctl::{self, Listing};
            let shown = match what {
                CtlCommand::Calls { json } => ctl::show(admin, Listing::Calls, json),
                CtlCommand::Agents { json } => ctl::show(admin, Listing::Agents, json),
                CtlCommand::Queues { json } => ctl::show(admin, Listing::Queues, json),
                CtlCommand::Drain { now } => ctl::drain(admin, now),
                CtlCommand::Reload => ctl::reload(admin),
            };
            match shown {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run { config } => {
            let loaded = match &config {
                Some(path) => config::load(path),
                None => config::embedded(&std::env::current_dir().unwrap_or_default()),
            };
            let config = match loaded {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            let logging = trunkgate::ops::init_logging(&config.ops.log_level);
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(run(config, logging)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn run(config: Config, logging: Logging) -> Result<(), Box<dyn std::error::Error>> {
    let daemon = Daemon::start(config, logging).await?;
    // Test harnesses and operators read the real ports (port 0 = any) from this line.
    tracing::info!("listening {}", daemon.listening());
    daemon.run().await?;
    Ok(())
}
