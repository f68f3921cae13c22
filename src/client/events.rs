//! The agent's standard output: one line per event, `key=value` pairs (logfmt), always starting
//! `agent=ID event=NAME`, so test harnesses and people can both wait for and grep them:
//!
//! ```text
//! agent=alice event=welcome session=s1 state=away resumed=false grace_ms=15000 gateway=trunkgate/0.1.0
//! agent=alice event=offer call=c7 caller="Bob <+4930123456>" queue=sales flow=1 ring_timeout_ms=20000
//! agent=alice event=answered call=c7 flow=1
//! agent=alice event=link_poor call=c7 heard_lost_ms=240 sent_lost_ms=0 window_s=10
//! agent=alice event=link_good call=c7 heard_lost_ms=20 sent_lost_ms=0 window_s=10
//! agent=alice event=call_ended call=c7 reason=caller_hung_up sent=150 received=148 concealed=2 fec=1 lost=2 late=0 loss_runs=1 mos=4.02 buffer_ms=41 buffer_p95_ms=60 stretched_ms=-35+20
//! agent=alice event=summary calls=1 sent=150 received=148 concealed=2 fec=1 lost=2 late=0
//! ```
//!
//! Values that are empty or hold a space, a quote, `=`, a backslash or a control character are
//! quoted, with `"` and `\` escaped and control characters written as `\u{…}`. Text from the
//! gateway (caller ids, error messages) therefore can never forge a second line or a field.
use std::fmt::{self, Write as _};
use std::net::SocketAddr;

use serde::Serialize;
use tokio::sync::mpsc;

use super::sound::{SoundCounters, StreamInfo};
use crate::media::emodel::{self, CodecImpairment, LossPattern};
use crate::media::link_health::{self, LinkReport};

/// Media counters of one call or of a whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaCounters {
    /// Datagrams handed to QUIC.
    pub sent: u64,
    /// RTP packets received on the call's flow and accepted by the receive path.
    pub received: u64,
    /// Frames played from Opus concealment (losses, underruns, delay growth).
    pub concealed: u64,
    /// Lost frames rebuilt from the FEC copy in the next packet.
    pub fec: u64,
    /// Lost packets whose frame a later packet repeated in time (RFC 2198 redundancy).
    pub redundant: u64,
    /// Redundant copies that came after their frame had been concealed: the buffer was too
    /// shallow for them.
    pub redundant_late: u64,
    /// Sequence numbers that never arrived in time.
    pub lost: u64,
    /// Packets that arrived after their turn to play.
    pub late: u64,
    /// Frames played and concealed, for the quality estimate.
    pub loss: LossPattern,
    /// Mean delay the receive jitter buffer added, in milliseconds (over calls: the largest).
    pub buffer_delay_ms: u64,
    /// The 95th percentile of that delay, in milliseconds (over calls: the largest).
    pub buffer_delay_p95_ms: u64,
    /// Audio played faster (cut) and slower (repeated) to move the buffer's delay, in ms.
    pub accelerated_ms: u64,
    pub expanded_ms: u64,
}

impl MediaCounters {
    /// E-model MOS of what was heard (the agent link's calibrated Opus chain), once anything
    /// was played.
    pub fn estimated_mos(&self) -> Option<f64> {
        (self.loss.frames > 0).then(|| {
            emodel::estimate(
                CodecImpairment::OPUS_AGENT_LINK,
                &self.loss,
                std::time::Duration::from_millis(self.buffer_delay_ms),
            )
        })
    }
}

impl std::ops::AddAssign for MediaCounters {
    fn add_assign(&mut self, other: Self) {
        self.sent += other.sent;
        self.received += other.received;
        self.concealed += other.concealed;
        self.fec += other.fec;
        self.redundant += other.redundant;
        self.redundant_late += other.redundant_late;
        self.lost += other.lost;
        self.late += other.late;
        self.loss.merge(&other.loss);
        self.buffer_delay_ms = self.buffer_delay_ms.max(other.buffer_delay_ms);
        self.buffer_delay_p95_ms = self.buffer_delay_p95_ms.max(other.buffer_delay_p95_ms);
        self.accelerated_ms += other.accelerated_ms;
        self.expanded_ms += other.expanded_ms;
    }
}

/// Something the agent saw or did.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Connecting {
        gateway: SocketAddr,
        resume: bool,
    },
    Connected {
        local: SocketAddr,
        remote: SocketAddr,
    },
    Welcome {
        session: String,
        state: String,
        resumed: bool,
        grace_ms: u64,
        gateway: String,
        /// A supervisor's session: the queues it supervises.
        supervises: Vec<String>,
    },
    LoginRefused {
        reason: String,
        message: String,
    },
    State {
        state: String,
    },
    Offer {
        call: String,
        caller: String,
        queue: String,
        flow: u64,
        ring_timeout_ms: u64,
    },
    OfferCancelled {
        call: String,
        reason: String,
    },
    /// The gateway took a `dial`: the call is on its way to `number` (E.164).
    Dialing {
        call: String,
        number: String,
        flow: u64,
    },
    /// The callee's phone rings (`early_media`: the carrier plays its own audio).
    Progress {
        call: String,
        early_media: bool,
    },
    /// How a transfer to a number is getting on (`dialing`, `ringing`, `answered`, `ended`).
    TransferState {
        call: String,
        number: String,
        state: String,
        reason: Option<String>,
        message: Option<String>,
    },
    /// The supervisor takes part in `call` as `mode` (`monitor`, `whisper`, `barge`).
    Supervising {
        call: String,
        mode: String,
        flow: u64,
    },
    /// The supervisor is out of `call` (`left`, `call_ended`, `agent_left`).
    SupervisionEnded {
        call: String,
        reason: String,
    },
    /// An agent of a supervised queue asks for help.
    HelpRequested {
        call: String,
        agent: String,
        queue: String,
        note: Option<String>,
    },
    Chat {
        from: String,
        call: Option<String>,
        text: String,
    },
    /// One call of the supervised queues (the `calls` command).
    LiveCall(crate::agent::protocol::from_gateway::LiveCall),
    /// One agent of the supervised queues (the `calls` command).
    LiveAgent(crate::agent::protocol::from_gateway::LiveAgent),
    /// The supervised queues' statistics changed.
    Wallboard {
        queues: Vec<crate::agent::protocol::from_gateway::QueueBoard>,
    },
    /// The supervised queues' calls and agents changed (`calls` prints them).
    Live {
        calls: Vec<crate::agent::protocol::from_gateway::LiveCall>,
        agents: Vec<crate::agent::protocol::from_gateway::LiveAgent>,
    },
    /// The call's recording is `off`, `recording` or `paused` now.
    Recording {
        call: String,
        state: String,
    },
    /// A `dial` did not become a conversation.
    DialFailed {
        call: Option<String>,
        reason: String,
        message: String,
    },
    /// The agent sent `accept`.
    Accept {
        call: String,
    },
    /// The agent sent `reject`.
    Reject {
        call: String,
    },
    /// The agent sent `hangup`.
    Hangup {
        call: String,
    },
    Answered {
        call: String,
        flow: u64,
    },
    CallEnded {
        call: String,
        reason: String,
        media: MediaCounters,
    },
    /// `call` is `None` when no call survived the reconnect.
    Resumed {
        call: Option<(String, u64)>,
    },
    /// The caller pressed a key.
    Dtmf {
        call: String,
        digit: char,
    },
    /// The agent sent keys toward the caller's side.
    SendDtmf {
        call: String,
        digits: String,
    },
    Hold {
        call: String,
        on: bool,
    },
    /// The agent's network stopped getting the audio through well enough either way, or got
    /// it through again ([`crate::media::link_health`]): `link_poor` / `link_good`.
    Link {
        call: String,
        report: LinkReport,
    },
    Pong {
        nonce: u64,
    },
    /// An `error` message from the gateway.
    GatewayError {
        code: String,
        message: String,
        call: Option<String>,
    },
    /// A message from the gateway that could not be decoded but leaves the stream usable.
    BadMessage {
        error: String,
    },
    /// A message from the gateway the protocol does not allow here, which cannot be answered.
    Unexpected {
        message: String,
    },
    /// The gateway broke the protocol beyond repair; the agent closes the connection.
    ProtocolError {
        error: String,
    },
    ConnectionLost {
        error: String,
    },
    Closed {
        code: u64,
        reason: String,
    },
    Rebound {
        local: SocketAddr,
    },
    RebindFailed {
        error: String,
    },
    /// A problem with the media path of a call (not fatal to the call).
    MediaError {
        error: String,
    },
    CommandError {
        error: String,
    },
    /// The sound device opened for a call (`--sound`): which devices, in which formats.
    SoundOpened {
        input: StreamInfo,
        output: StreamInfo,
    },
    /// The sound device closed at the end of a call.
    SoundClosed {
        counters: SoundCounters,
    },
    Summary {
        calls: u32,
        media: MediaCounters,
    },
    /// With `--swarm`: every agent's calls and media together.
    SwarmSummary {
        agents: usize,
        calls: u32,
        media: MediaCounters,
    },
    Exit {
        code: i32,
        reason: String,
    },
}

impl Event {
    /// The `event=` value.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Connecting { .. } => "connecting",
            Self::Connected { .. } => "connected",
            Self::Welcome { .. } => "welcome",
            Self::LoginRefused { .. } => "login_refused",
            Self::State { .. } => "state",
            Self::Offer { .. } => "offer",
            Self::OfferCancelled { .. } => "offer_cancelled",
            Self::Dialing { .. } => "dialing",
            Self::Progress { .. } => "progress",
            Self::DialFailed { .. } => "dial_failed",
            Self::TransferState { .. } => "transfer_state",
            Self::Recording { .. } => "recording",
            Self::Supervising { .. } => "supervising",
            Self::SupervisionEnded { .. } => "supervision_ended",
            Self::HelpRequested { .. } => "help_requested",
            Self::Chat { .. } => "chat",
            Self::Live { .. } => "live",
            Self::Wallboard { .. } => "wallboard",
            Self::LiveCall(_) => "live_call",
            Self::LiveAgent(_) => "live_agent",
            Self::Accept { .. } => "accept",
            Self::Reject { .. } => "reject",
            Self::Hangup { .. } => "hangup",
            Self::Answered { .. } => "answered",
            Self::CallEnded { .. } => "call_ended",
            Self::Resumed { .. } => "resumed",
            Self::Dtmf { .. } => "dtmf",
            Self::SendDtmf { .. } => "send_dtmf",
            Self::Hold { .. } => "hold",
            Self::Link { report, .. } if report.poor => "link_poor",
            Self::Link { .. } => "link_good",
            Self::Pong { .. } => "pong",
            Self::GatewayError { .. } => "error",
            Self::BadMessage { .. } => "bad_message",
            Self::Unexpected { .. } => "unexpected",
            Self::ProtocolError { .. } => "protocol_error",
            Self::ConnectionLost { .. } => "connection_lost",
            Self::Closed { .. } => "closed",
            Self::Rebound { .. } => "rebound",
            Self::RebindFailed { .. } => "rebind_failed",
            Self::MediaError { .. } => "media_error",
            Self::CommandError { .. } => "command_error",
            Self::SoundOpened { .. } => "sound_opened",
            Self::SoundClosed { .. } => "sound_closed",
            Self::Summary { .. } => "summary",
            Self::SwarmSummary { .. } => "swarm_summary",
            Self::Exit { .. } => "exit",
        }
    }

    /// The fields after `event=`, in print order.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        fn media_fields(fields: &mut Vec<(&'static str, String)>, media: &MediaCounters) {
            fields.extend([
                ("sent", media.sent.to_string()),
                ("received", media.received.to_string()),
                ("concealed", media.concealed.to_string()),
                ("fec", media.fec.to_string()),
                ("red", media.redundant.to_string()),
                ("red_late", media.redundant_late.to_string()),
                ("lost", media.lost.to_string()),
                ("late", media.late.to_string()),
            ]);
            if let Some(mos) = media.estimated_mos() {
                fields.push(("loss_runs", media.loss.bursts.to_string()));
                fields.push(("mos", format!("{mos:.2}")));
                fields.push(("buffer_ms", media.buffer_delay_ms.to_string()));
                fields.push(("buffer_p95_ms", media.buffer_delay_p95_ms.to_string()));
                fields.push((
                    "stretched_ms",
                    format!("-{}+{}", media.accelerated_ms, media.expanded_ms),
                ));
            }
        }
        let s = |value: &str| value.to_string();
        match self {
            Self::Connecting { gateway, resume } => vec![
                ("gateway", gateway.to_string()),
                ("resume", resume.to_string()),
            ],
            Self::Connected { local, remote } => {
                vec![("local", local.to_string()), ("remote", remote.to_string())]
            }
            Self::Welcome {
                session,
                state,
                resumed,
                grace_ms,
                gateway,
                supervises,
            } => {
                let mut fields = vec![
                    ("session", s(session)),
                    ("state", s(state)),
                    ("resumed", resumed.to_string()),
                    ("grace_ms", grace_ms.to_string()),
                    ("gateway", s(gateway)),
                ];
                if !supervises.is_empty() {
                    fields.push(("supervises", supervises.join(",")));
                }
                fields
            }
            Self::Supervising { call, mode, flow } => vec![
                ("call", s(call)),
                ("mode", s(mode)),
                ("flow", flow.to_string()),
            ],
            Self::SupervisionEnded { call, reason } => {
                vec![("call", s(call)), ("reason", s(reason))]
            }
            Self::HelpRequested {
                call,
                agent,
                queue,
                note,
            } => {
                let mut fields = vec![("call", s(call)), ("agent", s(agent)), ("queue", s(queue))];
                if let Some(note) = note {
                    fields.push(("note", s(note)));
                }
                fields
            }
            Self::Chat { from, call, text } => {
                let mut fields = vec![("from", s(from))];
                if let Some(call) = call {
                    fields.push(("call", s(call)));
                }
                fields.push(("text", s(text)));
                fields
            }
            Self::LiveCall(c) => {
                let mut fields = vec![
                    ("call", s(c.call.as_str())),
                    ("queue", s(&c.queue)),
                    ("caller", s(&c.caller)),
                    ("state", s(&c.state)),
                ];
                if let Some(agent) = &c.agent {
                    fields.push(("agent", s(agent.as_str())));
                }
                fields
            }
            Self::LiveAgent(a) => {
                let mut fields = vec![("agent", s(a.agent.as_str())), ("state", wire_name(&a.state))];
                if let Some(call) = &a.call {
                    fields.push(("call", s(call.as_str())));
                }
                fields
            }
            Self::Wallboard { queues } => queues
                .iter()
                .map(|q| {
                    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| v.to_string());
                    (
                        "queue",
                        format!(
                            "{}:waiting={},longest_s={},sl15={},sl_day={},asa_s={},aht_s={},abandon={},available={},in_call={},wrap_up={},away={}",
                            q.queue,
                            q.waiting,
                            q.longest_wait_s,
                            opt(q.service_level_15m_pct),
                            opt(q.service_level_day_pct),
                            opt(q.asa_s),
                            opt(q.aht_s),
                            opt(q.abandon_rate_pct),
                            q.agents_available,
                            q.agents_in_call,
                            q.agents_wrap_up,
                            q.agents_away
                        ),
                    )
                })
                .collect(),
            Self::Live { calls, agents } => vec![
                ("calls", calls.len().to_string()),
                (
                    "talking",
                    calls
                        .iter()
                        .filter(|c| c.state == "talking")
                        .count()
                        .to_string(),
                ),
                ("agents", agents.len().to_string()),
            ],
            Self::LoginRefused { reason, message } => {
                vec![("reason", s(reason)), ("message", s(message))]
            }
            Self::State { state } => vec![("state", s(state))],
            Self::Offer {
                call,
                caller,
                queue,
                flow,
                ring_timeout_ms,
            } => vec![
                ("call", s(call)),
                ("caller", s(caller)),
                ("queue", s(queue)),
                ("flow", flow.to_string()),
                ("ring_timeout_ms", ring_timeout_ms.to_string()),
            ],
            Self::OfferCancelled { call, reason } => {
                vec![("call", s(call)), ("reason", s(reason))]
            }
            Self::Dialing { call, number, flow } => vec![
                ("call", s(call)),
                ("number", s(number)),
                ("flow", flow.to_string()),
            ],
            Self::Progress { call, early_media } => {
                vec![("call", s(call)), ("early_media", early_media.to_string())]
            }
            Self::Recording { call, state } => vec![("call", s(call)), ("state", s(state))],
            Self::TransferState {
                call,
                number,
                state,
                reason,
                message,
            } => {
                let mut fields = vec![
                    ("call", s(call)),
                    ("number", s(number)),
                    ("state", s(state)),
                ];
                if let Some(reason) = reason {
                    fields.push(("reason", s(reason)));
                }
                if let Some(message) = message {
                    fields.push(("message", s(message)));
                }
                fields
            }
            Self::DialFailed {
                call,
                reason,
                message,
            } => {
                let mut fields = vec![("reason", s(reason)), ("message", s(message))];
                if let Some(call) = call {
                    fields.insert(0, ("call", s(call)));
                }
                fields
            }
            Self::Accept { call } | Self::Reject { call } | Self::Hangup { call } => {
                vec![("call", s(call))]
            }
            Self::Answered { call, flow } => vec![("call", s(call)), ("flow", flow.to_string())],
            Self::CallEnded {
                call,
                reason,
                media,
            } => {
                let mut fields = vec![("call", s(call)), ("reason", s(reason))];
                media_fields(&mut fields, media);
                fields
            }
            Self::Resumed {
                call: Some((call, flow)),
            } => {
                vec![("call", s(call)), ("flow", flow.to_string())]
            }
            Self::Resumed { call: None } => vec![("call", s("none"))],
            Self::Dtmf { call, digit } => vec![("call", s(call)), ("digit", digit.to_string())],
            Self::SendDtmf { call, digits } => vec![("call", s(call)), ("digits", s(digits))],
            Self::Hold { call, on } => vec![("call", s(call)), ("on", on.to_string())],
            Self::Link { call, report } => vec![
                ("call", s(call)),
                ("heard_lost_ms", report.heard_lost.as_millis().to_string()),
                ("sent_lost_ms", report.sent_lost.as_millis().to_string()),
                ("window_s", link_health::WINDOW.as_secs().to_string()),
            ],
            Self::Pong { nonce } => vec![("nonce", nonce.to_string())],
            Self::GatewayError {
                code,
                message,
                call,
            } => {
                let mut fields = vec![("code", s(code)), ("message", s(message))];
                if let Some(call) = call {
                    fields.push(("call", s(call)));
                }
                fields
            }
            Self::BadMessage { error }
            | Self::ProtocolError { error }
            | Self::ConnectionLost { error }
            | Self::RebindFailed { error }
            | Self::MediaError { error }
            | Self::CommandError { error } => vec![("error", s(error))],
            Self::Unexpected { message } => vec![("message", s(message))],
            Self::Closed { code, reason } => {
                vec![("code", code.to_string()), ("reason", s(reason))]
            }
            Self::Rebound { local } => vec![("local", local.to_string())],
            Self::SoundOpened { input, output } => vec![
                ("input", s(&input.device)),
                ("input_format", input.to_string()),
                ("output", s(&output.device)),
                ("output_format", output.to_string()),
            ],
            Self::SoundClosed { counters } => vec![
                ("mic_underruns", counters.microphone_underruns.to_string()),
                ("mic_dropped_ms", counters.microphone_dropped_ms.to_string()),
                ("speaker_underruns", counters.speaker_underruns.to_string()),
                (
                    "speaker_dropped_ms",
                    counters.speaker_dropped_ms.to_string(),
                ),
            ],
            Self::Summary { calls, media } => {
                let mut fields = vec![("calls", calls.to_string())];
                media_fields(&mut fields, media);
                fields
            }
            Self::SwarmSummary {
                agents,
                calls,
                media,
            } => {
                let mut fields = vec![("agents", agents.to_string()), ("calls", calls.to_string())];
                media_fields(&mut fields, media);
                fields
            }
            Self::Exit { code, reason } => {
                vec![("code", code.to_string()), ("reason", s(reason))]
            }
        }
    }

    /// The whole line, without the newline.
    pub fn line(&self, agent: &str) -> String {
        let mut line = String::with_capacity(96);
        push_field(&mut line, "agent", agent);
        line.push(' ');
        push_field(&mut line, "event", self.name());
        for (key, value) in self.fields() {
            line.push(' ');
            push_field(&mut line, key, &value);
        }
        line
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        for (key, value) in self.fields() {
            f.write_str(" ")?;
            f.write_str(key)?;
            f.write_str("=")?;
            f.write_str(&quote_if_needed(&value))?;
        }
        Ok(())
    }
}

fn push_field(line: &mut String, key: &str, value: &str) {
    line.push_str(key);
    line.push('=');
    line.push_str(&quote_if_needed(value));
}

/// A logfmt value: bare when that is unambiguous, else quoted and escaped.
pub fn quote_if_needed(value: &str) -> std::borrow::Cow<'_, str> {
    let needs_quotes = value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '=' | '\\'));
    if !needs_quotes {
        return value.into();
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            // Writing to a String cannot fail.
            c if c.is_control() => {
                let _ = write!(quoted, "\\u{{{:x}}}", u32::from(c));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted.into()
}

/// The protocol's name for an enum value (`wrap_up`, `caller_hung_up`, …).
pub fn wire_name(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => "other".to_string(),
    }
}

/// Where event lines go.
#[derive(Debug, Clone)]
pub enum EventSink {
    /// Standard output, one line per event, written under the stdout lock so the lines of a
    /// swarm's agents never interleave mid-line. A closed stdout (the reader went away) loses
    /// the line rather than stopping the agent, unlike `println!`, which would panic.
    Stdout,
    /// Each line to a channel (tests).
    Channel(mpsc::UnboundedSender<String>),
    /// Like `Stdout`, but the wallboard is a table redrawn in place (`--wallboard`).
    Wallboard,
}

impl EventSink {
    pub fn emit(&self, agent: &str, event: &Event) {
        let line = event.line(agent);
        match self {
            Self::Stdout => {
                use std::io::Write;
                let mut stdout = std::io::stdout().lock();
                let _ = writeln!(stdout, "{line}");
                let _ = stdout.flush();
            }
            Self::Channel(lines) => {
                let _ = lines.send(line);
            }
            Self::Wallboard => {
                use std::io::Write;
                let mut stdout = std::io::stdout().lock();
                match event {
                    // Home, clear, the table: a terminal shows the latest figures in place.
                    Event::Wallboard { queues } => {
                        let _ = write!(stdout, "\x1b[H\x1b[2J{}", super::wallboard::table(queues));
                    }
                    _ => {
                        let _ = writeln!(stdout, "{line}");
                    }
                }
                let _ = stdout.flush();
            }
        }
    }
}
