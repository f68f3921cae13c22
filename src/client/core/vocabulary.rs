//! The words the core and the shell exchange: what comes in (commands typed at the agent,
//! how a connection ended, why the run stops) and what goes out (actions, and the exit).
use std::time::Instant;

use crate::agent::protocol::{
    close_code, AgentId, AgentMessage, CallId, Credential, FlowId, RecordAction, RequestedState,
    SuperviseMode,
};

use super::super::args::Behaviour;
use super::super::events::Event;

/// Why the whole run is being stopped from outside the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `--duration-secs` has passed.
    Duration,
    /// SIGINT or SIGTERM.
    Signal,
}

/// Why an agent stopped; decides the exit code and how the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// `--calls` calls have ended.
    CallsDone,
    /// The `q` command.
    Quit,
    Stopped(StopReason),
    Refused {
        reason: String,
    },
    /// The gateway closed the connection with code `revoked`.
    Revoked,
    /// The gateway broke the protocol (or closed with `protocol_error`).
    ProtocolError,
    /// The gateway's media settings are not ones this client can encode.
    UnsupportedMedia,
    /// The gateway closed the connection on purpose (`done`, `shutting_down`).
    Closed {
        code: u64,
    },
    /// The connection was lost and could not be resumed within the grace period.
    ResumeFailed,
    /// No session could be established at all.
    ConnectFailed,
    /// `--supervisor`, and the gateway does not know this id as a supervisor.
    NotSupervisor,
}

impl Exit {
    /// 0: the run ended as asked; 2: the gateway refused the agent (a person must fix
    /// something); 1: anything else.
    pub fn code(&self) -> i32 {
        match self {
            Self::CallsDone | Self::Quit | Self::Stopped(_) => 0,
            Self::Refused { .. } | Self::Revoked | Self::NotSupervisor => 2,
            _ => 1,
        }
    }

    /// The `reason=` of the `exit` event.
    pub fn name(&self) -> &'static str {
        match self {
            Self::CallsDone => "calls_done",
            Self::Quit => "quit",
            Self::Stopped(StopReason::Duration) => "duration",
            Self::Stopped(StopReason::Signal) => "signal",
            Self::Refused { .. } => "login_refused",
            Self::Revoked => "revoked",
            Self::ProtocolError => "protocol_error",
            Self::UnsupportedMedia => "unsupported_media",
            Self::Closed { .. } => "closed",
            Self::ResumeFailed => "resume_failed",
            Self::ConnectFailed => "connect_failed",
            Self::NotSupervisor => "not_supervisor",
        }
    }

    /// Whether the agent logs out (finishes the control stream) rather than just closing.
    pub fn logs_out(&self) -> bool {
        matches!(
            self,
            Self::CallsDone
                | Self::Quit
                | Self::Stopped(_)
                | Self::UnsupportedMedia
                | Self::NotSupervisor
        )
    }

    /// The QUIC application close code the agent closes its connection with.
    pub fn close_code(&self) -> u32 {
        match self {
            Self::ProtocolError => close_code::PROTOCOL_ERROR,
            _ => close_code::DONE,
        }
    }
}

/// How a connection (or an attempt at one) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loss {
    /// The gateway closed it with an application error code.
    Closed { code: u64, reason: String },
    /// Anything else: an idle timeout, a reset, an unreachable gateway, a failed handshake.
    Lost { error: String },
}

/// A command typed at an interactive agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Accept,
    Reject,
    Hangup,
    Dtmf(String),
    Hold(bool),
    /// The state, and with `away` the reason (`s away lunch`).
    SetState(RequestedState, Option<String>),
    /// The outcome code of the call, or of the last one during its wrap-up.
    Disposition(String),
    /// Place a call to a number (`dial 030 123456`).
    Dial(String),
    /// Call back the caller of an earlier call (`callback c7`).
    Callback(String),
    /// Hand the call on (`transfer queue:sales`, `transfer agent:bob`, `transfer 0301234567`).
    Transfer(String),
    /// Call a number to consult it before transferring the caller there (`consult 0301234567`).
    Consult(String),
    /// Join the caller to the number consulted.
    CompleteTransfer,
    /// Hang up the number consulted (or ringing) and talk to the caller again.
    ReturnToCaller,
    /// Start (on demand), pause or resume the call's recording (`record pause`).
    Record(RecordAction),
    /// A supervisor joins a call, or changes how it takes part (`monitor c3`, `whisper`,
    /// `barge`): without a call, the one it is in, else the latest help request's.
    Supervise(SuperviseMode, Option<String>),
    /// A supervisor leaves its call.
    Leave,
    /// A supervisor lists its queues' calls and agents, a line each.
    Calls,
    /// An agent asks its supervisors for help on its call (`help the caller is angry`).
    Help(Option<String>),
    /// A text message: an agent's to its supervisors (`chat TEXT`), a supervisor's to an agent
    /// (`chat @AGENT TEXT`).
    Chat(Option<String>, String),
    Quit,
}

impl Command {
    /// One line of input; `Ok(None)` for a blank line.
    pub fn parse(line: &str) -> Result<Option<Command>, String> {
        let mut words = line.split_whitespace();
        let Some(verb) = words.next() else {
            return Ok(None);
        };
        let rest = || {
            let rest = line.trim_start()[verb.len()..].trim();
            (!rest.is_empty()).then(|| rest.to_string())
        };
        if verb == "help" {
            return Ok(Some(Command::Help(rest())));
        }
        if verb == "chat" {
            let Some(text) = rest() else {
                return Err(format!("{line:?}: chat [@AGENT] TEXT"));
            };
            let (to, text) = match text.strip_prefix('@') {
                Some(addressed) => match addressed.split_once(char::is_whitespace) {
                    Some((to, text)) => (Some(to.to_string()), text.trim().to_string()),
                    None => return Err(format!("{line:?}: chat @AGENT TEXT")),
                },
                None => (None, text),
            };
            return Ok(Some(Command::Chat(to, text)));
        }
        if verb == "dial" {
            // A number as people write it, spaces included.
            let number = words.collect::<Vec<_>>().join(" ");
            if number.is_empty() {
                return Err(format!("{line:?}: dial NUMBER"));
            }
            return Ok(Some(Command::Dial(number)));
        }
        let argument = words.next();
        let reason = match (verb, argument) {
            ("s", Some("away")) => words.next().map(str::to_string),
            _ => None,
        };
        if words.next().is_some() {
            return Err(format!("{line:?}: too many words"));
        }
        let command = match (verb, argument) {
            ("a", None) => Command::Accept,
            ("r", None) => Command::Reject,
            ("h", None) => Command::Hangup,
            ("q", None) => Command::Quit,
            ("d", Some(digits)) => Command::Dtmf(digits.to_ascii_uppercase()),
            ("hold", Some("on")) => Command::Hold(true),
            ("hold", Some("off")) => Command::Hold(false),
            ("s", Some("available")) => Command::SetState(RequestedState::Available, None),
            ("s", Some("away")) => Command::SetState(RequestedState::Away, reason),
            ("code", Some(code)) => Command::Disposition(code.to_string()),
            ("callback", Some(call)) => Command::Callback(call.to_string()),
            ("transfer", Some(to)) => Command::Transfer(to.to_string()),
            ("consult", Some(to)) => Command::Consult(to.to_string()),
            ("complete", None) => Command::CompleteTransfer,
            ("return", None) => Command::ReturnToCaller,
            ("monitor", call) => {
                Command::Supervise(SuperviseMode::Monitor, call.map(str::to_string))
            }
            ("whisper", call) => {
                Command::Supervise(SuperviseMode::Whisper, call.map(str::to_string))
            }
            ("barge", call) => Command::Supervise(SuperviseMode::Barge, call.map(str::to_string)),
            ("leave", None) => Command::Leave,
            ("calls", None) => Command::Calls,
            ("record", Some("start")) => Command::Record(RecordAction::Start),
            ("record", Some("pause")) => Command::Record(RecordAction::Pause),
            ("record", Some("resume")) => Command::Record(RecordAction::Resume),
            _ => {
                return Err(format!(
                    "{line:?}: commands are a, r, h, d DIGITS, hold on|off, \
                     s available|away [REASON], code CODE, dial NUMBER, callback CALL, \
                     transfer queue:NAME|agent:ID|NUMBER, consult NUMBER, complete, return, \
                     record start|pause|resume, help [NOTE], chat [@AGENT] TEXT, \
                     monitor|whisper|barge [CALL], leave, calls, q"
                ))
            }
        };
        Ok(Some(command))
    }
}

/// What the shell must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Send(AgentMessage),
    Emit(Event),
    /// The call is answered: start its 20 ms media clock on `flow`.
    StartMedia {
        call: CallId,
        flow: FlowId,
    },
    /// The call continues on `flow` of the new connection.
    MoveMedia {
        flow: FlowId,
    },
    HoldMedia {
        on: bool,
    },
    /// The call is over: stop its media and emit `call_ended` with its counters.
    EndMedia {
        call: CallId,
        reason: String,
    },
    /// Send a `stats` message for the call from the media's counters.
    SendStats {
        call: CallId,
    },
    /// Move the endpoint to a new UDP socket.
    Rebind,
    /// Drop the current connection, if any, and open a new one at `at` (logging in again).
    Connect {
        at: Instant,
    },
    Exit(Exit),
}

/// What the core needs to know about the agent.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub agent: AgentId,
    pub credential: Credential,
    pub skills: Vec<String>,
    pub behaviour: Behaviour,
}

/// Close codes after which coming back is pointless; others count as a lost connection.
pub(super) fn exit_for_close_code(code: u64) -> Option<Exit> {
    let code32 = u32::try_from(code).ok()?;
    match code32 {
        close_code::DONE | close_code::SHUTTING_DOWN => Some(Exit::Closed { code }),
        close_code::PROTOCOL_ERROR => Some(Exit::ProtocolError),
        close_code::LOGIN_REFUSED => Some(Exit::Refused {
            reason: "unknown".into(),
        }),
        close_code::REVOKED => Some(Exit::Revoked),
        _ => None,
    }
}
