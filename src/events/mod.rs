//! Everything that happens to a call or an agent, as typed events on one bus.
//!
//! Cores (the call, the contact center) emit events without a clock; the shell that polls them
//! stamps the wall-clock time and publishes them on the daemon's [`Bus`]. Consumers subscribe
//! there: the log lines ([`log`]) today; metrics, the journal, the admin API and supervisors'
//! wallboards later. See [`bus`] for which feeds may drop and which may not.
pub mod bus;
pub mod log;

use std::fmt;
use std::time::{Duration, SystemTime};

pub use bus::{Bus, FeedStats, LosslessFeed, ObserverFeed};

use crate::call::bridge::BridgeError;
use crate::media::emodel::{self, CodecImpairment, LossPattern};
use crate::queue::{AcdError, AgentState, CallRef};
use crate::route::Destination;

/// A call's number, unique while the daemon runs (the SIP side's call reference).
pub type CallId = u64;

/// One thing that happened, stamped when it was published.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub at: SystemTime,
    pub what: EventKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    Call { call: CallId, event: CallEvent },
    Agent { agent: String, event: AgentEvent },
}

/// Who did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The carrier's side: the person who called.
    Caller,
    /// The remote agent.
    Agent,
    /// The gateway itself: the IVR, a queue, a timeout, shutdown.
    Gateway,
    /// The external number an agent transferred the caller to.
    Target,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Caller => "caller",
            Side::Agent => "agent",
            Side::Gateway => "gateway",
            Side::Target => "target",
        })
    }
}

/// What happened to one call, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEvent {
    /// A carrier offered the call.
    Arrived {
        trunk: String,
        /// The carrier's own identifier of the call (SIP Call-ID).
        sip_call_id: String,
        caller: String,
        callee: String,
    },
    /// An agent placed the call (outbound): its INVITE goes to `trunk` now.
    Dialled {
        trunk: String,
        sip_call_id: String,
        agent: String,
        /// The number shown to the callee.
        caller_id: String,
        /// The number called, E.164.
        callee: String,
    },
    /// The callee's phone rings (SIP 180), or its network plays early media (183 with SDP).
    Ringing { early_media: bool },
    /// The carrier side was told the call is answered; on an outbound call, the callee
    /// answered.
    Answered,
    /// The caller is in this IVR menu (first entry, or a goto).
    EnteredMenu { menu: String },
    /// The IVR is done with the caller: every key it heard, and where the call goes.
    LeftIvr { digits: String, to: Destination },
    /// Keys: the caller's (one per press, to whoever listens) or the agent's (toward the carrier).
    Digits { side: Side, digits: String },
    /// The caller waits in `queue`, `position` callers from its head (1 is next).
    Queued { queue: String, position: usize },
    /// The queue would not take the caller.
    QueueRefused { queue: String, reason: AcdError },
    /// The queue rings an agent for this caller.
    Offered { agent: String },
    /// An agent took the call: caller and agent hear each other.
    AgentAnswered { agent: String },
    /// A queue announcement plays over the music.
    Announced { prompts: Vec<String> },
    /// The agent `by` handed the call on to `to` (`queue:NAME`, `agent:ID`, an E.164 number):
    /// its part is over.
    Transferred { by: String, to: String },
    /// The agent `by` transfers the caller to the number `to` (E.164) through a leg of ours:
    /// its INVITE goes to `trunk` now. `attended`: the agent consults the target first.
    TransferDialled {
        by: String,
        to: String,
        trunk: String,
        sip_call_id: String,
        attended: bool,
    },
    /// The transfer target's leg ended before the caller was joined to it (`unanswered`: why it
    /// never answered), or, after the join, with the call.
    TransferLegEnded {
        to: String,
        unanswered: Option<Unanswered>,
    },
    /// The agent put the caller on hold (music) or took them off it.
    Held { on: bool },
    /// The carrier put the call on hold (it wants none of our audio) or took it off.
    CarrierHeld { on: bool },
    /// No audio from the agent for a second (`flowing: false`, the caller hears music) or back.
    AgentAudio { flowing: bool },
    /// The agent's link dropped audio either way (`poor`: 200 ms or more in the last 10 s), or
    /// got it through again ([`crate::media::link_health`]). `caller_missed` is the agent's
    /// audio the caller did not hear in that window, `agent_missed` the caller's the agent did
    /// not (as the agent's client reports it).
    AgentLink {
        poor: bool,
        caller_missed: Duration,
        agent_missed: Duration,
    },
    /// The agent's connection died; music while it may resume.
    AgentLost,
    /// The agent came back within its grace period: the call goes on.
    AgentResumed,
    /// The agent's connection moved to a new address (a network change, QUIC migration)
    /// without a break: the call went on.
    AgentMoved,
    /// The agent did not come back: the caller is at the head of the queue again.
    Requeued,
    /// The queue gave up waiting and sent the caller on.
    Overflowed { queue: String, to: Destination },
    /// A supervisor joined the call or changed how it takes part (`mode`: `monitor`,
    /// `whisper`, `barge`), or left it (`mode: None`).
    Supervised {
        supervisor: String,
        mode: Option<String>,
    },
    /// The agent asked its supervisors for help (`note`), and how many were told.
    HelpRequested {
        agent: String,
        note: Option<String>,
        supervisors: usize,
    },
    /// The call's recording started, was paused or resumed, `by` the policy (`policy`), an
    /// agent (its id) or the admin API (`admin`).
    Recording { state: RecordingState, by: String },
    /// The call's recording is complete (just before [`CallEvent::Ended`]): how long it is,
    /// where in it the pauses are (silence in the file), who started it.
    Recorded {
        duration: Duration,
        paused: Vec<PausedSpan>,
        started_by: String,
    },
    /// The call is over.
    Ended {
        side: Side,
        cause: EndCause,
        /// Whether it was ever answered.
        answered: bool,
        quality: Box<CallQuality>,
    },
}

/// Where a call's recording stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingState {
    /// Not recorded (yet).
    Off,
    Recording,
    /// Recording silence until resumed.
    Paused,
}

impl RecordingState {
    pub fn code(self) -> &'static str {
        match self {
            RecordingState::Off => "off",
            RecordingState::Recording => "recording",
            RecordingState::Paused => "paused",
        }
    }
}

/// A pause in a recording: `at` into the recording, for `length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PausedSpan {
    pub at: Duration,
    pub length: Duration,
}

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndCause {
    /// The caller hung up (SIP BYE; E1 DISCONNECT).
    CallerHungUp,
    /// The caller gave up before we answered (SIP CANCEL).
    CallerCancelled,
    /// The carrier never confirmed our answer (SIP: no ACK in 64·T1).
    NoConfirmation,
    /// The carrier sent no media for the configured time: gone without a hang-up.
    MediaTimeout,
    /// We refused the call with this status (unusable offer, no media port).
    Refused { status: u16 },
    /// The IVR ended the call (a hang-up option, retries spent).
    IvrHangup,
    /// A queue said goodbye (overflow into a hang-up, no queue would take the caller).
    QueueHangup,
    /// The agent hung up.
    AgentHungUp,
    /// The destination cannot be reached from here (voicemail, outbound numbers: not yet).
    Unroutable { to: Destination },
    /// The carrier's signalling failed mid-call (an unusable SDP answer).
    SignallingFailed,
    /// The daemon is stopping.
    Shutdown,
    /// The agent could not be bridged (a codec setting libopus refused; validation prevents it).
    Bridge(BridgeError),
    /// The carrier took the caller to an external number (SIP REFER) at the agent's transfer.
    HandedOver { to: String },
    /// The external number the agent transferred the caller to hung up after the join.
    TargetHungUp,
    /// The carrier side stopped refreshing the session (RFC 4028) or did not answer our
    /// refresh: gone without a BYE, so we sent one.
    SessionExpired,
    /// An outbound call was not answered: busy, no answer, rejected, unreachable… with the
    /// carrier's SIP status (0 when the gateway gave up by itself).
    Unanswered { why: Unanswered, status: u16 },
    /// The gateway stopped without ending the call (killed, a crash, power lost). Only the
    /// journal says this, for the calls it finds open when the gateway starts again.
    GatewayRestart,
}

impl EndCause {
    /// The cause as a label: metrics, the journal.
    pub fn code(&self) -> &'static str {
        match self {
            EndCause::CallerHungUp => "caller_hung_up",
            EndCause::CallerCancelled => "caller_cancelled",
            EndCause::NoConfirmation => "no_confirmation",
            EndCause::MediaTimeout => "media_timeout",
            EndCause::Refused { .. } => "refused",
            EndCause::IvrHangup => "ivr_hangup",
            EndCause::QueueHangup => "queue_hangup",
            EndCause::AgentHungUp => "agent_hung_up",
            EndCause::Unroutable { .. } => "unroutable",
            EndCause::SignallingFailed => "signalling_failed",
            EndCause::Shutdown => "shutdown",
            EndCause::Bridge(_) => "bridge_failed",
            EndCause::GatewayRestart => "gateway_restart",
            EndCause::Unanswered { why, .. } => why.code(),
            EndCause::SessionExpired => "session_expired",
            EndCause::HandedOver { .. } => "transferred_out",
            EndCause::TargetHungUp => "target_hung_up",
        }
    }
}

impl fmt::Display for EndCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndCause::CallerHungUp => f.write_str("caller hung up"),
            EndCause::CallerCancelled => f.write_str("caller cancelled"),
            EndCause::NoConfirmation => f.write_str("carrier never confirmed the answer"),
            EndCause::MediaTimeout => f.write_str("no rtp from the carrier"),
            EndCause::Refused { status } => write!(f, "refused with {status}"),
            EndCause::IvrHangup => f.write_str("ivr hung up"),
            EndCause::QueueHangup => f.write_str("queue said goodbye"),
            EndCause::AgentHungUp => f.write_str("agent hung up"),
            EndCause::Unroutable { to } => write!(f, "destination {to} not routable"),
            EndCause::SignallingFailed => f.write_str("carrier signalling failed"),
            EndCause::Shutdown => f.write_str("gateway shutting down"),
            EndCause::Bridge(e) => write!(f, "cannot bridge to the agent: {e}"),
            EndCause::GatewayRestart => {
                f.write_str("the gateway stopped during the call (closed when it restarted)")
            }
            EndCause::SessionExpired => f.write_str("the carrier stopped refreshing the session"),
            EndCause::HandedOver { to } => write!(f, "transferred by the carrier to {to}"),
            EndCause::TargetHungUp => f.write_str("the transfer target hung up"),
            EndCause::Unanswered { why, status: 0 } => write!(f, "{why}"),
            EndCause::Unanswered { why, status } => write!(f, "{why} ({status})"),
        }
    }
}

/// Why an outbound call was not answered, as an agent is told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswered {
    /// 486 Busy Here, 600 Busy Everywhere.
    Busy,
    /// 480, a carrier's 408, or nobody answered within `[outbound] ring_timeout_s`.
    NoAnswer,
    /// 403, 603 and the other refusals.
    Rejected,
    /// 404, 484, 604: no such number.
    NumberUnknown,
    /// No answer from the carrier at all, a transport error, or a 5xx.
    Unreachable,
    /// The agent hung up before the answer.
    Cancelled,
}

impl Unanswered {
    /// What a final SIP status to our INVITE means (0: none came).
    pub fn from_status(status: u16) -> Unanswered {
        match status {
            // Nothing came back at all.
            0 => Unanswered::Unreachable,
            486 | 600 => Unanswered::Busy,
            408 | 480 => Unanswered::NoAnswer,
            404 | 484 | 604 => Unanswered::NumberUnknown,
            487 => Unanswered::Cancelled,
            500..=599 => Unanswered::Unreachable,
            _ => Unanswered::Rejected,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Unanswered::Busy => "busy",
            Unanswered::NoAnswer => "no_answer",
            Unanswered::Rejected => "rejected",
            Unanswered::NumberUnknown => "number_unknown",
            Unanswered::Unreachable => "unreachable",
            Unanswered::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for Unanswered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unanswered::Busy => "the line is busy",
            Unanswered::NoAnswer => "nobody answered",
            Unanswered::Rejected => "the carrier or the callee rejected the call",
            Unanswered::NumberUnknown => "the number does not exist",
            Unanswered::Unreachable => "the carrier cannot be reached",
            Unanswered::Cancelled => "hung up before the answer",
        })
    }
}

/// How the call sounded, per leg, as the gateway measured it at the end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallQuality {
    pub carrier: LegQuality,
    /// The agent's audio as the gateway received it; `None` if no agent answered.
    pub agent: Option<AgentLegQuality>,
    /// The latest a frame was handled after it was due. A few milliseconds is scheduling; a
    /// frame period or more means the call's task was starved or blocked, and both sides heard
    /// a gap (the frames catch up in a burst).
    pub frame_delay_max: Duration,
}

/// The carrier leg: what its RTP (or B-channel) brought and took.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LegQuality {
    pub packets_received: u64,
    pub packets_sent: u64,
    /// Expected minus received, as RTCP counts it.
    pub packets_lost: i64,
    /// Packets of the wrong payload type or malformed.
    pub packets_rejected: u64,
    /// Interarrival jitter of the last source, in milliseconds.
    pub jitter_ms: f64,
    /// Frames the jitter buffer had to conceal.
    pub concealed_frames: u64,
    /// How long frames waited in the jitter buffer on average.
    pub jitter_buffer_delay: Option<Duration>,
    /// How long 95 % of the frames waited in the jitter buffer at most.
    pub jitter_buffer_delay_p95: Option<Duration>,
    /// Round trip from RTCP, when the carrier sends reports.
    pub round_trip_ms: Option<f64>,
    /// Which frames were played and which concealed, for the quality estimate.
    pub loss: LossPattern,
}

impl LegQuality {
    /// E-model MOS of the carrier's audio as the gateway played it (G.711 with concealment,
    /// delayed by the jitter buffer and half the RTCP round trip); `None` before any frame.
    pub fn estimated_mos(&self) -> Option<f64> {
        let one_way = self.jitter_buffer_delay.unwrap_or_default()
            + Duration::from_secs_f64(self.round_trip_ms.unwrap_or(0.0).max(0.0) / 2000.0);
        (self.loss.frames > 0)
            .then(|| emodel::estimate(CodecImpairment::G711_PLC, &self.loss, one_way))
    }
}

/// The agent's media as the gateway received it (summed over reconnects).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentLegQuality {
    /// Packets received from the agent.
    pub packets: u64,
    /// Packets sent to the agent (fewer than one per frame with DTX).
    pub packets_sent: u64,
    pub lost: u64,
    pub late: u64,
    pub concealed_frames: u64,
    pub recovered_by_fec: u64,
    /// Lost packets whose frame a later packet repeated in time (RFC 2198 redundancy).
    pub recovered_by_redundancy: u64,
    /// Redundant copies that came after their frame had been concealed.
    pub redundancy_too_late: u64,
    /// Interarrival jitter of the agent's packets at the end, in milliseconds.
    pub jitter_ms: f64,
    /// How long frames waited in the jitter buffer on average.
    pub jitter_buffer_delay: Option<Duration>,
    /// How long 95 % of the frames waited in the jitter buffer at most.
    pub jitter_buffer_delay_p95: Option<Duration>,
    /// Which frames were played (FEC's rebuilt ones among them) and which concealed.
    pub loss: LossPattern,
    /// Audio cut out and repeated to move the jitter buffer's delay.
    pub accelerated: Duration,
    pub expanded: Duration,
    /// The agent link's round trip as its transport last measured it, in milliseconds.
    pub round_trip_ms: Option<f64>,
}

impl AgentLegQuality {
    /// E-model MOS of the agent's audio as the gateway played it toward the caller (the agent
    /// link's calibrated Opus chain, delayed by the jitter buffer); `None` before any frame.
    pub fn estimated_mos(&self) -> Option<f64> {
        let one_way = self.jitter_buffer_delay.unwrap_or_default();
        (self.loss.frames > 0)
            .then(|| emodel::estimate(CodecImpairment::OPUS_AGENT_LINK, &self.loss, one_way))
    }
}

/// What happened to one agent's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentEvent {
    /// Logged in on a new session, or took its session back (`resumed`).
    LoggedIn { resumed: bool },
    /// Its state in the queues: away (with the agent's reason, if it gave one), available,
    /// ringing, talking, wrap_up.
    StateChanged {
        state: AgentState,
        reason: Option<String>,
    },
    /// The agent gave `call` an outcome (a wrap-up code).
    Disposition { call: CallRef, code: String },
    /// The agent's `dial` was refused before anything was sent: `reason` is the limit or rule
    /// (`blocked_destination`, `agent_calls_per_hour`, `invalid_number`…), `message` says it.
    DialRefused {
        number: String,
        reason: String,
        message: String,
    },
    /// It sent a chat message to `to` (agents or supervisors), about `call` if it named one.
    Chat {
        to: Vec<String>,
        call: Option<CallRef>,
        text: String,
    },
    /// A command of its was refused as not allowed: `what` it tried, and why.
    Refused { what: String, why: String },
    /// Its connection died; the session waits out its grace period.
    ConnectionLost,
    /// Its connection moved to a new address (a network change) and went on.
    ConnectionMoved,
    /// The session is over.
    LoggedOut { reason: LogoutReason },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutReason {
    /// The grace period after a lost or closed connection passed without a resume.
    Gone,
    /// A fresh login replaced the session while it waited out its grace period.
    Replaced,
    /// A reload revoked the agent or removed it from the configuration.
    Revoked,
    /// The agent logged out.
    Logout,
    /// The gateway stopped (a drain or a stop) while the agent was logged in.
    Shutdown,
}
