//! The `trunkgate` daemon and its command line.
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use trunkgate::agent::protocol::MediaParams;
use trunkgate::agent::server;
use trunkgate::agent::{identity, link};
use trunkgate::call::shell::{CallContext, Spawner};
use trunkgate::config::{self, Config, Loaded};
use trunkgate::events::{self, Bus};
use trunkgate::queue::center::shell::{self as center_shell, CallInput, CenterChannels};
use trunkgate::queue::center::Center;
use trunkgate::sip::endpoint;
use trunkgate::sip::transaction::TimerConfig;
use trunkgate::sip::transport::Transports;
use trunkgate::sip::ua::UserAgent;

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
            trunkgate::ops::init_logging();
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
            match runtime.block_on(run(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn run(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let loaded = Loaded::new(config)?;
    tracing::info!(prompts = loaded.prompts.len(), "prompts loaded");
    let config = loaded.shared();
    let stop = CancellationToken::new();
    let bus = Bus::new();
    let log = tokio::spawn(events::log::run(bus.clone(), stop.child_token()));
    let current = config.load_full();
    let c = &current.config;
    let (inbound_tx, inbound_rx) = mpsc::channel(4096);
    let (transports, bound) = Transports::bind(
        &c.sip.udp,
        &c.sip.tcp,
        c.sip.public_address,
        c.sip.user_agent.clone(),
        inbound_tx,
    )
    .await?;
    let (calls_tx, quic, fingerprint) = start_agent_link(c, &bus, &stop)?;
    let mut listening: Vec<String> = bound
        .iter()
        .map(|(t, a)| format!("{}={a}", t.via_token().to_lowercase()))
        .collect();
    listening.push(format!("quic={quic}"));
    listening.push(format!("fingerprint={fingerprint}"));
    // Test harnesses and operators read the real ports (port 0 = any) from this line.
    tracing::info!("listening {}", listening.join(" "));
    let ua = UserAgent::new(
        TimerConfig::default(),
        c.sip.user_agent.clone(),
        c.trunks.clone(),
        // The SIP core draws no entropy itself: its tags and branches come from this generator.
        rand::SeedableRng::from_entropy(),
    );
    let ctx = Arc::new(CallContext::new(
        config.clone(),
        calls_tx,
        bus.clone(),
        stop.child_token(),
    ));
    let sip = tokio::spawn(endpoint::run(
        ua,
        transports,
        inbound_rx,
        Spawner(ctx),
        stop.child_token(),
    ));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    stop.cancel();
    let _ = sip.await;
    let _ = log.await;
    Ok(())
}

/// The QUIC listener for agents and the contact-center task behind it; returns where calls
/// reach the center.
fn start_agent_link(
    config: &Config,
    bus: &Bus,
    stop: &CancellationToken,
) -> Result<
    (
        mpsc::UnboundedSender<CallInput>,
        std::net::SocketAddr,
        trunkgate::agent::identity::Fingerprint,
    ),
    Box<dyn std::error::Error>,
> {
    let a = &config.agents;
    let configured = match (&a.certificate, &a.private_key) {
        (Some(c), Some(k)) => Some((config.base_dir.join(c), config.base_dir.join(k))),
        _ => None,
    };
    let identity = identity::load_or_create(
        configured.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
        &config.base_dir.join(&a.state_dir),
    )?;
    if identity.created {
        tracing::info!(fingerprint = %identity.fingerprint, "created a self-signed agent-link certificate: agents pin this fingerprint");
    }
    let endpoint = link::server_endpoint(&identity, a.listen)?;
    let quic = endpoint.local_addr()?;
    let media = MediaParams {
        bitrate: a.opus.bitrate,
        fec: a.opus.fec,
        dtx: a.opus.dtx,
        ..MediaParams::default()
    };
    let center = Center::new(Arc::new(config.queues.clone()), a.resume_grace(), media);
    let (agents_tx, agents_rx) = mpsc::unbounded_channel();
    let (calls_tx, calls_rx) = mpsc::unbounded_channel();
    let channels = CenterChannels {
        agents: agents_rx,
        calls: calls_rx,
    };
    tokio::spawn(center_shell::run(
        center,
        channels,
        bus.clone(),
        stop.child_token(),
    ));
    tokio::spawn(server::serve(
        endpoint,
        Arc::new(config.agent.clone()),
        agents_tx,
        stop.child_token(),
    ));
    Ok((calls_tx, quic, identity.fingerprint))
}
