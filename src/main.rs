//! The `trunkgate` daemon and its command line.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use trunkgate::config::{self, Config};
use trunkgate::daemon::Daemon;
use trunkgate::ops::Logging;

#[derive(Parser)]
#[command(
    version,
    about = "Branch-office voice edge: carrier SIP trunks, local IVR, remote agents",
    after_long_help = OPERATION
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
    /// Read the call journal: check what a journal or a sink holds, or print records as they
    /// are written.
    Journal {
        #[command(subcommand)]
        what: JournalCommand,
    },
    /// Call recordings: make the key pair they are sealed with, open one for listening.
    Recording {
        #[command(subcommand)]
        what: RecordingCommand,
    },
}

#[derive(Subcommand)]
enum RecordingCommand {
    /// Decrypt a recording (NAME.opus.age, from a sink or the gateway's recordings directory)
    /// into Ogg Opus. Exit 0 when whole; 2 when the file was cut short (the gateway stopped
    /// mid-call): what could be restored is written and stderr says how much; 1 on any other
    /// problem (the wrong key, a damaged file), with nothing kept.
    Decrypt {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The private key: an age identity file (`AGE-SECRET-KEY-1…`, as `age-keygen` or
        /// `trunkgate recording keygen` writes it).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Where to write the audio (default: FILE without `.age`, or with `.wav` for --wav;
        /// `-`: standard output).
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Write a WAV file (16-bit, 8 kHz, the caller left and our side right) instead of the
        /// Ogg Opus recording, for tools that play no Opus.
        #[arg(long)]
        wav: bool,
    },
    /// Make a key pair: write the private key to FILE (mode 0600, never to be put on the
    /// gateway) and print the public key for `[recording] public_key`.
    Keygen {
        #[arg(long, short, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum JournalCommand {
    /// Check every record under WHERE (a journal's directory, a directory of a sink's NDJSON
    /// batches, or s3://BUCKET/PREFIX): the sequence has no gap, the hash chain holds, a record
    /// seen twice is the same. Exit 0 when whole, 1 on any gap or problem.
    ///
    /// For s3:// the credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
    /// AWS_SESSION_TOKEN; the endpoint and region from the options below, else
    /// AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, and AWS_REGION or AWS_DEFAULT_REGION.
    Verify {
        #[arg(value_name = "WHERE")]
        target: String,
        /// s3://: the service's URL (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS
        /// for the region).
        #[arg(long)]
        endpoint: Option<String>,
        /// s3://: the bucket's region (default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1).
        #[arg(long)]
        region: Option<String>,
        /// s3://: path or virtual_host (default: path with --endpoint, else virtual_host).
        #[arg(long, value_parser = ["path", "virtual_host"])]
        addressing: Option<String>,
        /// s3://: PEM roots to trust instead of the public ones (a store with a private CA).
        #[arg(long)]
        ca_file: Option<PathBuf>,
    },
    /// Print the journal's records as JSON lines: the last few, then each new one as it is
    /// written (like tail -f).
    Tail {
        /// The journal's directory (default: the one the configuration names).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The configuration whose journal to read (default: /etc/trunkgate/trunkgate.toml if
        /// it exists, else the built-in example's, relative to the current directory).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Start at this sequence number instead of the last records.
        #[arg(long)]
        from: Option<u64>,
        /// How many of the last records to print first.
        #[arg(long, short = 'n', default_value_t = 10)]
        lines: u64,
        /// Print what is there and exit instead of waiting for more.
        #[arg(long)]
        no_follow: bool,
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
    /// Trunks that register with their carrier: registered, registering or failed (with the
    /// reason and the next try).
    Trunks {
        #[arg(long)]
        json: bool,
    },
    /// E1 spans: the line, the D-channel, B-channels busy, in maintenance and idle, and the
    /// calls on them with their Q.931 states.
    Spans {
        #[arg(long)]
        json: bool,
    },
    /// Every queue's wallboard: waiting, longest wait, service level over 15 minutes and the
    /// day, ASA, AHT, abandon rate, agents by state (what supervisors see).
    Wallboard {
        #[arg(long)]
        json: bool,
    },
    /// Addresses the scanner defence banned: how much longer, and how many requests were
    /// dropped since.
    Bans {
        #[arg(long)]
        json: bool,
    },
    /// Read the config file again: new calls get the new config, calls in progress keep theirs.
    /// A file with problems is refused (every problem printed, exit 1) and the old config runs on.
    Reload,
    /// Start (on demand), pause or resume a call's recording (CALL as `ctl calls` shows it).
    /// A request the call cannot carry out is refused with the reason (exit 1).
    Record {
        call: u64,
        #[arg(value_parser = ["start", "pause", "resume"])]
        action: String,
    },
    /// Replace the agent desk's short-lived certificate now (it is renewed a week before it ends
    /// anyway): browsers connected keep their calls, pages fetch the new hash.
    RenewDeskCertificate,
    /// Stop taking calls (503 to carriers) and exit once calls in progress finish, or the
    /// drain timeout passes.
    Drain {
        /// End every call now instead.
        #[arg(long)]
        now: bool,
    },
}

/// What `trunkgate --help` and the man page tell an operator beyond the commands.
const OPERATION: &str = "\
Files:
  /etc/trunkgate/trunkgate.toml   the configuration (trunkgate check-config FILE validates it)
  /var/lib/trunkgate              state: the agent link's self-signed certificate, and the
                                  call journal in journal/ (trunkgate journal tail, verify)
  /usr/share/trunkgate/prompts    the IVR prompts
  /usr/share/trunkgate/grafana, /usr/share/trunkgate/prometheus
                                  a Grafana dashboard and Prometheus alert rules

Signals (to `trunkgate run`):
  SIGHUP            reload the configuration, as `trunkgate ctl reload` does
  SIGTERM, SIGINT   drain: new calls get 503, calls in progress may finish for
                    [ops] drain_timeout_ms, then the rest are hung up; a second one
                    hangs up at once

Environment:
  RUST_LOG          log level, over [ops] log_level (e.g. info,trunkgate::sip=debug)
  JOURNAL_STREAM    set by systemd: records go to journald with CALL_ID, TRUNK, QUEUE,
                    AGENT fields
  NOTIFY_SOCKET, WATCHDOG_USEC
                    set by systemd (Type=notify): readiness, status and watchdog pings

Exit status: 0 after a drain or a clean stop; 1 on a configuration, socket or
runtime error.

More: /usr/share/doc/trunkgate (operations.md, configuration.md, metrics.md) and
trunkgate-agent(1).";

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
                CtlCommand::Trunks { json } => ctl::show(admin, Listing::Trunks, json),
                CtlCommand::Spans { json } => ctl::show(admin, Listing::Spans, json),
                CtlCommand::Bans { json } => ctl::show(admin, Listing::Bans, json),
                CtlCommand::Wallboard { json } => ctl::show(admin, Listing::Wallboard, json),
                CtlCommand::Drain { now } => ctl::drain(admin, now),
                CtlCommand::Reload => ctl::reload(admin),
                CtlCommand::Record { call, action } => ctl::record(admin, call, &action),
                CtlCommand::RenewDeskCertificate => ctl::renew_desk_certificate(admin),
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
        Command::Journal { what } => journal(what),
        Command::Recording { what } => recording(what),
        Command::Run { config } => {
            trunkgate::ops::heap::keep_big_blocks_mapped();
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

fn recording(what: RecordingCommand) -> ExitCode {
    use std::io::Write;
    use trunkgate::recording::age::{self, AgeError, Identity};
    match what {
        RecordingCommand::Keygen { out } => {
            use std::os::unix::fs::OpenOptionsExt;
            let identity = Identity::generate(&mut rand::rngs::OsRng);
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&out)
                .and_then(|mut f| {
                    writeln!(f, "# public key: {}", identity.recipient())?;
                    writeln!(f, "{identity}")?;
                    f.sync_all()
                });
            match written {
                Ok(()) => {
                    println!("{}", identity.recipient());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{}: {e}", out.display());
                    ExitCode::FAILURE
                }
            }
        }
        RecordingCommand::Decrypt {
            file,
            key,
            out,
            wav,
        } => {
            let identity = match std::fs::read_to_string(&key)
                .map_err(|e| e.to_string())
                .and_then(|text| Identity::parse(&text).map_err(|e| e.to_string()))
            {
                Ok(identity) => identity,
                Err(e) => {
                    eprintln!("{}: {e}", key.display());
                    return ExitCode::FAILURE;
                }
            };
            let input = match std::fs::File::open(&file) {
                Ok(f) => std::io::BufReader::new(f),
                Err(e) => {
                    eprintln!("{}: {e}", file.display());
                    return ExitCode::FAILURE;
                }
            };
            let out = out.unwrap_or_else(|| match wav {
                true => file.with_extension("").with_extension("wav"),
                false => file.with_extension(""),
            });
            let to_stdout = out == Path::new("-");
            let sink: Box<dyn Write> = if to_stdout {
                Box::new(std::io::stdout().lock())
            } else {
                match std::fs::File::create(&out) {
                    Ok(f) => Box::new(std::io::BufWriter::new(f)),
                    Err(e) => {
                        eprintln!("{}: {e}", out.display());
                        return ExitCode::FAILURE;
                    }
                }
            };
            let mut sink = sink;
            let result = if wav {
                let mut opus = Vec::new();
                let result = age::decrypt(input, &identity, &mut opus);
                match result {
                    Ok(_) | Err(AgeError::Truncated { .. }) => match to_wav(&opus, &mut sink) {
                        Ok(()) => result,
                        Err(e) => {
                            eprintln!("{}: {e}", file.display());
                            drop(sink);
                            if !to_stdout {
                                let _ = std::fs::remove_file(&out);
                            }
                            return ExitCode::FAILURE;
                        }
                    },
                    Err(e) => Err(e),
                }
            } else {
                age::decrypt(input, &identity, &mut sink)
            };
            let flushed = sink.flush();
            drop(sink);
            match (result, flushed) {
                (Ok(_), Ok(())) => ExitCode::SUCCESS,
                (Err(AgeError::Truncated { restored }), Ok(())) => {
                    eprintln!(
                        "{}: cut short (the gateway stopped during the call): the first {restored} bytes restored",
                        file.display()
                    );
                    ExitCode::from(2)
                }
                (Err(e), _) => {
                    eprintln!("{}: {e}", file.display());
                    if !to_stdout {
                        let _ = std::fs::remove_file(&out);
                    }
                    ExitCode::FAILURE
                }
                (_, Err(e)) => {
                    eprintln!("{}: {e}", out.display());
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// A decrypted recording (Ogg Opus) as a 16-bit 8 kHz WAV.
fn to_wav(opus: &[u8], out: &mut dyn std::io::Write) -> Result<(), String> {
    let decoded =
        trunkgate::media::ogg_opus::reader::decode(opus, 8000).map_err(|e| e.to_string())?;
    let spec = hound::WavSpec {
        channels: decoded.channels,
        sample_rate: decoded.rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    // hound seeks back to write the lengths: build the file in memory, then write it out.
    let mut file = std::io::Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut file, spec).map_err(|e| e.to_string())?;
    for s in &decoded.samples {
        writer.write_sample(*s).map_err(|e| e.to_string())?;
    }
    writer.finalize().map_err(|e| e.to_string())?;
    out.write_all(file.get_ref()).map_err(|e| e.to_string())
}

fn journal(what: JournalCommand) -> ExitCode {
    use trunkgate::journal::config::Addressing;
    use trunkgate::journal::{https, s3_sink, tools};
    match what {
        JournalCommand::Verify {
            target,
            endpoint,
            region,
            addressing,
            ca_file,
        } => {
            let report = match s3_sink::parse_url(&target) {
                Some((bucket, prefix)) => {
                    let location = s3_sink::Location {
                        bucket,
                        endpoint,
                        region,
                        addressing: addressing.map(|a| match a.as_str() {
                            "path" => Addressing::Path,
                            _ => Addressing::VirtualHost,
                        }),
                    };
                    let env = |name: &str| std::env::var(name).ok();
                    let timeout = std::time::Duration::from_secs(60);
                    https::agent_with(ca_file.as_deref(), None, timeout, Path::new("."))
                        .and_then(|agent| s3_sink::S3Store::new(agent, &location, None, &env))
                        .and_then(|store| {
                            tools::verify_s3(&store, &prefix).map_err(|e| e.to_string())
                        })
                }
                None => tools::verify_path(Path::new(&target)).map_err(|e| e.to_string()),
            };
            match report {
                Ok(report) if report.records == 0 => {
                    // A mistyped prefix or an empty directory proves nothing.
                    eprintln!("{target}: no records found");
                    ExitCode::FAILURE
                }
                Ok(report) => {
                    println!("{report}");
                    if report.is_whole() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("{target}: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        JournalCommand::Tail {
            dir,
            config,
            from,
            lines,
            no_follow,
        } => {
            let dir = match dir {
                Some(dir) => dir,
                None => {
                    let system = PathBuf::from("/etc/trunkgate/trunkgate.toml");
                    let loaded = match config {
                        Some(path) => config::load(&path),
                        None if system.exists() => config::load(&system),
                        None => config::embedded(&std::env::current_dir().unwrap_or_default()),
                    };
                    match loaded {
                        Ok(c) => c.journal_dir(),
                        Err(e) => {
                            eprintln!("{e}");
                            return ExitCode::FAILURE;
                        }
                    }
                }
            };
            match tools::tail(&dir, from, lines, !no_follow) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{}: {e}", dir.display());
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

#[cfg(test)]
mod man_pages {
    use std::collections::BTreeMap;
    use std::path::Path;

    use clap::CommandFactory;

    /// Every page, by file name: one per command of the gateway (as git has them) and the
    /// agent client's.
    fn render() -> BTreeMap<String, String> {
        let dir = tempfile::tempdir().unwrap();
        clap_mangen::generate_to(super::Cli::command(), dir.path()).unwrap();
        clap_mangen::generate_to(trunkgate::client::args::Args::command(), dir.path()).unwrap();
        read(dir.path())
            .into_iter()
            .map(|(name, page)| {
                let page = if name == "trunkgate.1" {
                    operation_section(&page)
                } else {
                    page.replace(".SH EXTRA\n", ".SH NOTES\n")
                };
                (name, page)
            })
            .collect()
    }

    /// clap_mangen puts the long help's text in a section titled EXTRA, filled like prose; the
    /// gateway's is about running it, laid out in columns ([`super::OPERATION`]).
    fn operation_section(page: &str) -> String {
        let Some((head, rest)) = page.split_once(".SH EXTRA\n") else {
            return page.to_string();
        };
        let (body, tail) = match rest.find("\n.SH ") {
            Some(end) => rest.split_at(end + 1),
            None => (rest, ""),
        };
        format!("{head}.SH OPERATION\n.nf\n{body}.fi\n{tail}")
    }

    fn read(dir: &Path) -> BTreeMap<String, String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "1"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&p).unwrap())
            })
            .collect()
    }

    /// The packages ship packaging/man; it must say what the binaries do.
    /// `TRUNKGATE_BLESS=1 cargo test --bin trunkgate man_pages` writes it anew.
    #[test]
    fn the_packaged_man_pages_are_those_of_this_command_line() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/man");
        let fresh = render();
        if std::env::var_os("TRUNKGATE_BLESS").is_some() {
            let _ = std::fs::remove_dir_all(&shipped);
            std::fs::create_dir_all(&shipped).unwrap();
            for (name, page) in &fresh {
                std::fs::write(shipped.join(name), page).unwrap();
            }
        }
        let on_disk = read(&shipped);
        assert_eq!(
            on_disk.keys().collect::<Vec<_>>(),
            fresh.keys().collect::<Vec<_>>(),
            "packaging/man has other pages than the commands: \
             TRUNKGATE_BLESS=1 cargo test --bin trunkgate man_pages"
        );
        for (name, page) in &fresh {
            assert!(
                on_disk[name] == *page,
                "packaging/man/{name} is out of date: \
                 TRUNKGATE_BLESS=1 cargo test --bin trunkgate man_pages"
            );
        }
        assert!(fresh["trunkgate.1"].contains("SIGHUP"));
        assert!(fresh.contains_key("trunkgate-ctl-reload.1"));
        assert!(fresh.contains_key("trunkgate-agent.1"));
    }
}
