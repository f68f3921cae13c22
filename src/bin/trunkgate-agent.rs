//! `trunkgate-agent`: a remote agent for a trunkgate gateway. See `trunkgate-agent --help` and
//! `trunkgate::client` for what it does and what it prints.
use std::process::ExitCode;

use clap::Parser;
use tokio::sync::broadcast;

use trunkgate::client::{
    self, core::Command, events::quote_if_needed, sound, Args, AudioSource, EventSink, StopReason,
};

fn main() -> ExitCode {
    // `--list-devices` stands alone: clap would ask for the connection arguments first.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.len() == 2 && argv[1] == "--list-devices" {
        return list_devices();
    }
    let args = Args::parse_from(argv);
    let options = match args.resolve(|name| std::env::var(name).ok()) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("trunkgate-agent: {error}");
            return ExitCode::from(2);
        }
    };
    if let AudioSource::Sound(devices) = &options.audio {
        if let Err(error) = sound::check(devices) {
            eprintln!("trunkgate-agent: --sound: {error}");
            return ExitCode::from(2);
        }
    }
    // Events go to stdout; diagnostics (RUST_LOG) to stderr.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("trunkgate-agent: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let interactive = options.interactive();
    let sink = if options.behaviour.wallboard {
        EventSink::Wallboard
    } else {
        EventSink::Stdout
    };
    let code = runtime.block_on(async move {
        let (commands, _) = broadcast::channel(64);
        if interactive {
            let commands = commands.clone();
            std::thread::spawn(move || read_commands(commands));
        }
        client::run(options, sink, commands, stop_signal()).await
    });
    // Tasks still running (none should be) are not waited for: the exit code is known.
    runtime.shutdown_background();
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// `--list-devices`: one line per device, `id=… input=yes|no output=yes|no name=…`.
fn list_devices() -> ExitCode {
    match sound::list_devices() {
        Ok(devices) => {
            use std::io::Write;
            let yes_no = |b: bool| if b { "yes" } else { "no" };
            let mut stdout = std::io::stdout().lock();
            for device in devices {
                // A reader that went away (`| head`) is not an error worth a panic.
                let _ = writeln!(
                    stdout,
                    "id={} input={} output={} name={}",
                    quote_if_needed(&device.id),
                    yes_no(device.input),
                    yes_no(device.output),
                    quote_if_needed(&device.name)
                );
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("trunkgate-agent: --list-devices: {error}");
            ExitCode::from(2)
        }
    }
}

/// Commands from standard input, one per line, to every agent. A plain thread, because a
/// blocking read cannot be cancelled and must not hold up the runtime's exit. End of input is
/// not a quit: a harness that closes stdin still wants its agents to run.
fn read_commands(commands: broadcast::Sender<Command>) {
    use std::io::BufRead;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else {
            return;
        };
        match Command::parse(&line) {
            Ok(Some(command)) => {
                let _ = commands.send(command);
            }
            Ok(None) => {}
            Err(error) => eprintln!("trunkgate-agent: {error}"),
        }
    }
}

/// SIGINT (Ctrl-C) or SIGTERM. If the handlers cannot be installed the run is bounded by the
/// other exits only.
async fn stop_signal() -> StopReason {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                eprintln!("trunkgate-agent: cannot watch SIGTERM: {error}");
                let _ = tokio::signal::ctrl_c().await;
                return StopReason::Signal;
            }
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    StopReason::Signal
}
