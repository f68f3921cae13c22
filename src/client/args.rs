//! The `trunkgate-agent` command line, and the checked settings it resolves to.
//!
//! The credential never comes from argv: every user on the machine can read a process's
//! arguments (`ps`), so it is taken from an environment variable or a file. Everything that can
//! be wrong with the settings is found here, before any connection is made, so a typo fails in
//! milliseconds with a message naming the value instead of as a refused login.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::agent::identity::{Fingerprint, ServerTrust};
use crate::agent::protocol::{
    from_agent::{Disposition, Dtmf, Login},
    limits::MAX_CREDENTIAL_BYTES,
    AgentId, AgentMessage, CallId, Credential, WireMessage,
};
use crate::media::prompt::{Prompt, PromptError};

mod sound;
pub use sound::SoundArgs;

use super::sound::{SoundDevices, SoundError};

/// Where the credential is read from when `--credential-file` is not given.
pub const DEFAULT_CREDENTIAL_ENV: &str = "TRUNKGATE_AGENT_CREDENTIAL";

/// More agents than this in one process would only measure the process, not the gateway.
pub const MAX_SWARM: u32 = 10_000;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "trunkgate-agent",
    version,
    about = "Remote agent for a trunkgate gateway: logs in over QUIC, takes calls, plays, echoes \
             and records their audio, and prints one line per event",
    after_help = "Without --auto-answer the agent is interactive: it prints events and reads \
                  commands from standard input, one per line: a (accept), r (reject), \
                  h (hang up), d DIGITS (send DTMF), hold on|off, s available|away [REASON], \
                  code CODE (the call's outcome, during it or its wrap-up), dial NUMBER, \
                  callback CALL (call back an earlier call's caller), transfer queue:NAME | \
                  agent:ID | NUMBER (blind), consult NUMBER (attended: then complete, or \
                  return to take the caller back), record start|pause|resume (the call's \
                  recording), help [NOTE] (ask the supervisors), chat [@AGENT] TEXT, q (quit). \
                  Logged in as a supervisor (an id with `supervises`): monitor|whisper|barge \
                  [CALL] (join a call, or change how), leave, calls (its queues' calls and \
                  agents, a line each). After a \
                  call the interactive agent stays in wrap-up until `s available` (or the \
                  queue's wrap-up time ends).\n\n\
                  The credential is read from the environment variable named by \
                  --credential-env (default TRUNKGATE_AGENT_CREDENTIAL) or from the first line \
                  of --credential-file, never from the command line."
)]
pub struct Args {
    /// The gateway's agent listener.
    #[arg(long, value_name = "HOST:PORT")]
    pub gateway: String,
    /// The agent id as configured on the gateway (with --swarm, the prefix of each id).
    #[arg(long, value_name = "ID")]
    pub agent: String,
    /// Trust the gateway whose certificate has this SHA-256 fingerprint (as the gateway logs it).
    #[arg(
        long,
        value_name = "FINGERPRINT",
        required_unless_present = "ca",
        conflicts_with = "ca"
    )]
    pub pin: Option<Fingerprint>,
    /// Trust a gateway whose certificate chains to a CA certificate in this PEM file and names
    /// --server-name.
    #[arg(long, value_name = "PEMFILE")]
    pub ca: Option<PathBuf>,
    /// The environment variable holding the credential.
    #[arg(long, value_name = "VAR", default_value = DEFAULT_CREDENTIAL_ENV)]
    pub credential_env: String,
    /// A file whose first line is the credential (instead of the environment).
    #[arg(long, value_name = "FILE")]
    pub credential_file: Option<PathBuf>,
    /// Only take calls for these skills in this session (default: all configured ones).
    #[arg(long, value_name = "SKILL,...", value_delimiter = ',')]
    pub skills: Vec<String>,
    /// Accept every offered call (after --answer-after-ms).
    #[arg(long)]
    pub auto_answer: bool,
    /// How long an offered call rings before --auto-answer accepts it.
    #[arg(long, value_name = "MS", requires = "auto_answer")]
    pub answer_after_ms: Option<u64>,
    /// Send this WAV file's audio (any rate and channel count) once per call, then silence.
    #[arg(long, value_name = "FILE.wav", conflicts_with_all = ["echo", "reflect"])]
    pub play: Option<PathBuf>,
    /// Write the received audio to this WAV file (8 kHz mono 16-bit); with --swarm, FILE-i.wav.
    #[arg(long, value_name = "FILE.wav")]
    pub record: Option<PathBuf>,
    /// Send back the audio received, as it came out of the jitter buffer.
    #[arg(long, conflicts_with = "reflect")]
    pub echo: bool,
    /// Send every media datagram straight back as it arrived, without decoding it: a load
    /// generator's agent, whose cost is the QUIC link alone (the bench's agent swarm).
    #[arg(long)]
    pub reflect: bool,
    /// Hang up this long after a call is answered.
    #[arg(long, value_name = "MS")]
    pub hangup_after_ms: Option<u64>,
    /// Send these DTMF digits toward the caller's side on every answered call (after
    /// --dtmf-after-ms).
    #[arg(long, value_name = "DIGITS")]
    pub send_dtmf: Option<String>,
    /// How long after a call is answered --send-dtmf sends its digits [default: 1000].
    #[arg(long, value_name = "MS", requires = "send_dtmf")]
    pub dtmf_after_ms: Option<u64>,
    /// Put the caller on hold this long after a call is answered.
    #[arg(long, value_name = "MS")]
    pub hold_after_ms: Option<u64>,
    /// Take the caller off hold after this long on hold (default: held until the call ends).
    #[arg(long, value_name = "MS", requires = "hold_after_ms")]
    pub hold_for_ms: Option<u64>,
    /// Give every call this outcome code (its disposition) when it ends.
    #[arg(long, value_name = "CODE")]
    pub disposition: Option<String>,
    /// Once logged in, place a call to this number (as typed: the gateway's dial plan makes it
    /// E.164) instead of going available; with --calls 1 the run ends with that call.
    #[arg(long, value_name = "NUMBER")]
    pub dial: Option<String>,
    /// Stay in wrap-up this long after each call, then go available [default: 0 with
    /// --auto-answer; interactive: until `s available`].
    #[arg(long, value_name = "MS")]
    pub wrap_up_ms: Option<u64>,
    /// Exit (0) after this many calls have ended.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub calls: Option<u32>,
    /// Exit (0) after this long, whatever is going on; a summary is printed first.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub duration_secs: Option<u64>,
    /// Run this many agents in one process, with ids ID-1 … ID-N.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=MAX_SWARM as i64))]
    pub swarm: Option<u32>,
    /// This long after a call is answered, move to a new UDP socket (a network change: QUIC
    /// migrates the connection and the call carries on).
    #[arg(long, value_name = "MS")]
    pub rebind_after_ms: Option<u64>,
    /// Log in as a supervisor (an id with `supervises` on the gateway): the run stops if the
    /// gateway does not say so; no state is set, no call is taken.
    #[arg(long)]
    pub supervisor: bool,
    /// With --supervisor: show the supervised queues' wallboard as a table, redrawn on every
    /// change.
    #[arg(long, requires = "supervisor")]
    pub wallboard: bool,
    /// The name the gateway's certificate must carry (checked with --ca; sent as SNI).
    #[arg(long, value_name = "NAME", default_value = "trunkgate")]
    pub server_name: String,
    #[command(flatten)]
    pub sound: SoundArgs,
}

/// What is wrong with the settings, naming the value.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    #[error("--gateway {value:?}: expected HOST:PORT with a port number")]
    Gateway { value: String },
    #[error("credential: environment variable {var} is not set (or use --credential-file)")]
    CredentialEnvMissing { var: String },
    #[error("credential: {}: {source}", .path.display())]
    CredentialFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("credential from {origin} is empty")]
    CredentialEmpty { origin: String },
    #[error("credential from {origin} is {bytes} bytes, at most {MAX_CREDENTIAL_BYTES} allowed")]
    CredentialTooLong { origin: String, bytes: usize },
    #[error("--ca {}: {message}", .path.display())]
    Ca { path: PathBuf, message: String },
    #[error("--play: {0}")]
    Play(#[from] PromptError),
    /// The agent id or a skill breaks a protocol limit (the gateway would refuse the login).
    #[error("--agent/--skills: {0}")]
    Login(String),
    #[error("--send-dtmf: {0}")]
    SendDtmf(String),
    #[error("--disposition: {0}")]
    Disposition(String),
    #[error("--record {}: the path has no file name", .path.display())]
    RecordPath { path: PathBuf },
    #[error("--sound: {0}")]
    Sound(#[from] SoundError),
}

/// Where a call's outgoing audio comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioSource {
    Silence,
    /// 8 kHz mono samples, played once from the start of each call.
    Play(Arc<[i16]>),
    /// The received audio, sent back.
    Echo,
    /// Each received datagram sent back unchanged, nothing decoded or encoded.
    Reflect,
    /// The microphone, read by the shell from the sound device and handed to the call's media
    /// frame by frame (the received audio goes to the speaker).
    Sound(SoundDevices),
}

/// One agent of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    pub id: AgentId,
    pub record: Option<PathBuf>,
}

/// How each agent behaves, the same for every agent of a swarm.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Behaviour {
    /// `Some(delay)`: accept every offer after `delay`. `None`: interactive.
    pub auto_answer: Option<Duration>,
    pub hangup_after: Option<Duration>,
    pub rebind_after: Option<Duration>,
    /// Send these digits this long after answering.
    pub send_dtmf: Option<(Duration, String)>,
    /// Hold the caller this long after answering, and for how long (`None`: to the end).
    pub hold: Option<(Duration, Option<Duration>)>,
    /// After each call: stay in wrap-up this long, then go available (`None`: until told).
    pub wrap_up: Option<Duration>,
    /// The login must be a supervisor's.
    pub supervisor: bool,
    /// Draw the wallboard as a table.
    pub wallboard: bool,
    /// The outcome code given to every call when it ends.
    pub disposition: Option<String>,
    /// Exit after this many calls have ended.
    pub calls: Option<u32>,
    /// Place a call to this number once logged in.
    pub dial: Option<String>,
}

/// The checked settings of a run.
#[derive(Debug, Clone)]
pub struct Options {
    /// As given (`HOST:PORT`); resolved when the agents start.
    pub gateway: String,
    pub server_name: String,
    pub trust: ServerTrust,
    pub credential: Credential,
    pub skills: Vec<String>,
    pub agents: Vec<AgentSpec>,
    pub behaviour: Behaviour,
    pub audio: AudioSource,
    pub duration: Option<Duration>,
}

impl Options {
    /// Whether commands are read from standard input.
    pub fn interactive(&self) -> bool {
        self.behaviour.auto_answer.is_none() && self.behaviour.dial.is_none()
    }
}

impl Args {
    /// Checks and loads everything the run needs. `env` reads an environment variable (a
    /// parameter so tests need not touch the process environment).
    pub fn resolve(self, env: impl Fn(&str) -> Option<String>) -> Result<Options, ArgsError> {
        check_gateway(&self.gateway)?;
        let credential = match &self.credential_file {
            Some(path) => read_credential_file(path)?,
            None => {
                let value =
                    env(&self.credential_env).ok_or_else(|| ArgsError::CredentialEnvMissing {
                        var: self.credential_env.clone(),
                    })?;
                check_credential(value, &format!("${}", self.credential_env))?
            }
        };
        let trust = match (&self.pin, &self.ca) {
            (Some(pin), _) => ServerTrust::Pinned(*pin),
            (None, Some(ca)) => ServerTrust::Ca(read_ca(ca)?),
            // clap requires one of them; kept total for callers that build Args by hand.
            (None, None) => {
                return Err(ArgsError::Ca {
                    path: PathBuf::new(),
                    message: "give --pin FINGERPRINT or --ca PEMFILE".into(),
                })
            }
        };
        let agents = agent_specs(&self.agent, self.swarm, self.record.as_deref())?;
        for agent in &agents {
            check_login(&agent.id, &credential, &self.skills)?;
        }
        let audio = match (self.sound.devices()?, &self.play, self.echo, self.reflect) {
            (Some(devices), _, _, _) => AudioSource::Sound(devices),
            (None, Some(path), _, _) => AudioSource::Play(Prompt::load(path)?.samples().into()),
            (None, None, true, _) => AudioSource::Echo,
            (None, None, false, true) => AudioSource::Reflect,
            (None, None, false, false) => AudioSource::Silence,
        };
        let millis = |ms: Option<u64>| ms.map(Duration::from_millis);
        let behaviour = Behaviour {
            auto_answer: self
                .auto_answer
                .then(|| Duration::from_millis(self.answer_after_ms.unwrap_or(0))),
            hangup_after: millis(self.hangup_after_ms),
            rebind_after: millis(self.rebind_after_ms),
            send_dtmf: self.send_dtmf.map(|digits| {
                let after = Duration::from_millis(self.dtmf_after_ms.unwrap_or(1000));
                // Keys A-D may be typed in lower case; anything else is left for the check to name.
                let keys = digits
                    .chars()
                    .map(|c| {
                        if ('a'..='d').contains(&c) {
                            c.to_ascii_uppercase()
                        } else {
                            c
                        }
                    })
                    .collect();
                (after, keys)
            }),
            hold: millis(self.hold_after_ms).map(|after| (after, millis(self.hold_for_ms))),
            wrap_up: millis(self.wrap_up_ms).or(self.auto_answer.then_some(Duration::ZERO)),
            disposition: self.disposition,
            calls: self.calls,
            dial: self.dial,
            supervisor: self.supervisor,
            wallboard: self.wallboard,
        };
        if let Some((_, digits)) = &behaviour.send_dtmf {
            check_digits(digits)?;
        }
        if let Some(code) = &behaviour.disposition {
            let message = AgentMessage::Disposition(Disposition {
                call: CallId::new("c1"),
                code: code.clone(),
            });
            message
                .validate()
                .map_err(|e| ArgsError::Disposition(e.to_string()))?;
        }
        Ok(Options {
            gateway: self.gateway,
            server_name: self.server_name,
            trust,
            credential,
            skills: self.skills,
            agents,
            behaviour,
            audio,
            duration: self.duration_secs.map(Duration::from_secs),
        })
    }
}

/// Only the form is checked here; the name is resolved when the agents start.
fn check_gateway(gateway: &str) -> Result<(), ArgsError> {
    if gateway.parse::<SocketAddr>().is_ok() {
        return Ok(());
    }
    let bad = || ArgsError::Gateway {
        value: gateway.to_string(),
    };
    let (host, port) = gateway.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || host.contains(':') || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok(())
}

fn read_credential_file(path: &Path) -> Result<Credential, ArgsError> {
    let text = std::fs::read_to_string(path).map_err(|source| ArgsError::CredentialFile {
        path: path.to_path_buf(),
        source,
    })?;
    let first_line = text.lines().next().unwrap_or("").to_string();
    check_credential(first_line, &path.display().to_string())
}

/// A trailing newline is how `echo` and editors end a value, never part of a password.
fn check_credential(value: String, origin: &str) -> Result<Credential, ArgsError> {
    let value = value.trim_end_matches(['\r', '\n']).to_string();
    if value.is_empty() {
        return Err(ArgsError::CredentialEmpty {
            origin: origin.to_string(),
        });
    }
    if value.len() > MAX_CREDENTIAL_BYTES {
        return Err(ArgsError::CredentialTooLong {
            origin: origin.to_string(),
            bytes: value.len(),
        });
    }
    Ok(Credential::new(value))
}

fn read_ca(path: &Path) -> Result<Vec<CertificateDer<'static>>, ArgsError> {
    let bad = |message: String| ArgsError::Ca {
        path: path.to_path_buf(),
        message,
    };
    let roots = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if roots.is_empty() {
        return Err(bad("no certificate in the file".into()));
    }
    Ok(roots)
}

/// The agents of the run: `ID` alone, or `ID-1` … `ID-N` with `--swarm N`, each recording to
/// its own file.
pub fn agent_specs(
    id: &str,
    swarm: Option<u32>,
    record: Option<&Path>,
) -> Result<Vec<AgentSpec>, ArgsError> {
    let Some(count) = swarm else {
        return Ok(vec![AgentSpec {
            id: AgentId::new(id),
            record: record.map(Path::to_path_buf),
        }]);
    };
    (1..=count)
        .map(|i| {
            Ok(AgentSpec {
                id: AgentId::new(format!("{id}-{i}")),
                record: record.map(|path| numbered_path(path, i)).transpose()?,
            })
        })
        .collect()
}

/// `calls.wav` → `calls-3.wav`; `calls` → `calls-3`.
pub fn numbered_path(path: &Path, index: u32) -> Result<PathBuf, ArgsError> {
    let stem = path
        .file_stem()
        .ok_or_else(|| ArgsError::RecordPath {
            path: path.to_path_buf(),
        })?
        .to_string_lossy();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{index}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{index}"),
    };
    Ok(path.with_file_name(name))
}

/// `--send-dtmf` is checked by the protocol's own rules, as the gateway would check it.
fn check_digits(digits: &str) -> Result<(), ArgsError> {
    let message = AgentMessage::Dtmf(Dtmf {
        call: CallId::new("c1"),
        digits: digits.to_string(),
    });
    message
        .validate()
        .map_err(|e| ArgsError::SendDtmf(e.to_string()))
}

/// The gateway would refuse what breaks a protocol limit; the protocol's own checks say so now.
fn check_login(
    agent: &AgentId,
    credential: &Credential,
    skills: &[String],
) -> Result<(), ArgsError> {
    let login = AgentMessage::Login(Login {
        agent: agent.clone(),
        credential: credential.clone(),
        skills: skills.to_vec(),
        client: super::CLIENT_NAME.to_string(),
        resume: None,
    });
    login
        .validate()
        .map_err(|e| ArgsError::Login(e.to_string()))
}
