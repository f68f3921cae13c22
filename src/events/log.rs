//! The log lines: one consumer of the bus, an observer (it may drop lines under overload rather
//! than delay a call; drops are counted in the bus's stats and reported here).
use std::collections::HashMap;

use tokio_util::sync::CancellationToken;

use super::{AgentEvent, Bus, CallEvent, CallId, EventKind, Side};

/// Room for bursts (a hundred calls ending at once) before lines are dropped.
pub const LOG_FEED_CAPACITY: usize = 4096;

/// Writes every event as a log line until `stop` fires (then drains what is already there).
/// `structured` (journald): each call's lines carry its context as fields, see [`Context`].
pub async fn run(bus: Bus, structured: bool, stop: CancellationToken) {
    let mut feed = bus.observe("log", LOG_FEED_CAPACITY);
    let mut calls: HashMap<CallId, Context> = HashMap::new();
    let mut reported_drops = 0;
    loop {
        let event = tokio::select! {
            ev = feed.recv() => ev,
            _ = stop.cancelled() => feed.try_recv(),
        };
        let Some(event) = event else { return };
        let dropped = feed.dropped();
        if dropped > reported_drops {
            tracing::warn!(
                dropped = dropped - reported_drops,
                "event log fell behind: lines dropped"
            );
            reported_drops = dropped;
        }
        if structured {
            let span = context_span(&mut calls, &event.what);
            let _inside = span.enter();
            write(&event.what);
        } else {
            write(&event.what);
        }
    }
}

/// What journald records of a call on each of its lines, so `journalctl CALL_ID=12` (or
/// `SIP_CALL_ID=…`, `QUEUE=…`, `AGENT=…`) finds them.
#[derive(Default)]
struct Context {
    trunk: String,
    sip_call_id: String,
    queue: Option<String>,
    agent: Option<String>,
}

/// The span that gives an event's line its fields: the call's context (kept up to date from
/// its events and forgotten at its end), or the agent's name.
fn context_span(calls: &mut HashMap<CallId, Context>, what: &EventKind) -> tracing::Span {
    let (call, event) = match what {
        EventKind::Agent { agent, .. } => return tracing::info_span!("agent", agent = %agent),
        EventKind::Call { call, event } => (*call, event),
    };
    let context = calls.entry(call).or_default();
    match event {
        CallEvent::Arrived {
            trunk, sip_call_id, ..
        } => {
            context.trunk = trunk.clone();
            context.sip_call_id = sip_call_id.clone();
        }
        CallEvent::Dialled {
            trunk,
            sip_call_id,
            agent,
            ..
        } => {
            context.trunk = trunk.clone();
            context.sip_call_id = sip_call_id.clone();
            context.agent = Some(agent.clone());
        }
        CallEvent::Queued { queue, .. } => context.queue = Some(queue.clone()),
        CallEvent::Offered { agent } | CallEvent::AgentAnswered { agent } => {
            context.agent = Some(agent.clone())
        }
        _ => {}
    }
    let span = tracing::info_span!(
        "call",
        call_id = call,
        sip_call_id = %context.sip_call_id,
        trunk = %context.trunk,
        queue = tracing::field::Empty,
        agent = tracing::field::Empty,
    );
    if let Some(queue) = &context.queue {
        span.record("queue", queue.as_str());
    }
    if let Some(agent) = &context.agent {
        span.record("agent", agent.as_str());
    }
    if matches!(event, CallEvent::Ended { .. }) {
        calls.remove(&call);
    }
    span
}

/// One line for one event. The wording is what operators (and the integration tests) grep for.
pub fn write(what: &EventKind) {
    match what {
        EventKind::Call { call, event } => call_line(*call, event),
        EventKind::Agent { agent, event } => agent_line(agent, event),
    }
}

fn call_line(call: u64, event: &CallEvent) {
    use tracing::info;
    match event {
        CallEvent::Arrived {
            trunk,
            sip_call_id,
            caller,
            callee,
        } => info!(call, %trunk, %caller, %callee, %sip_call_id, "call arrived"),
        CallEvent::Dialled {
            trunk,
            sip_call_id,
            agent,
            caller_id,
            callee,
        } => info!(call, %trunk, %agent, %caller_id, %callee, %sip_call_id, "agent dials"),
        CallEvent::Ringing { early_media } => info!(call, early_media, "callee ringing"),
        CallEvent::Answered => info!(call, "answered"),
        CallEvent::Transferred { by, to } => info!(call, agent = %by, %to, "call transferred"),
        CallEvent::TransferDialled {
            by,
            to,
            trunk,
            sip_call_id,
            attended,
        } => {
            info!(call, agent = %by, %to, %trunk, %sip_call_id, attended, "transfer target dialled")
        }
        CallEvent::TransferLegEnded {
            to,
            unanswered: Some(why),
        } => info!(call, %to, %why, "transfer target did not answer"),
        CallEvent::TransferLegEnded {
            to,
            unanswered: None,
        } => info!(call, %to, "transfer target leg ended"),
        CallEvent::Supervised {
            supervisor,
            mode: Some(mode),
        } => info!(call, %supervisor, %mode, "supervisor in the call"),
        CallEvent::Supervised {
            supervisor,
            mode: None,
        } => info!(call, %supervisor, "supervisor left the call"),
        // Logged by the center, with the queue.
        CallEvent::HelpRequested { .. } => {}
        CallEvent::Recording { state, by } => {
            info!(call, state = state.code(), %by, "call recording")
        }
        CallEvent::Recorded {
            duration,
            paused,
            started_by,
        } => info!(
            call,
            seconds = duration.as_secs_f64(),
            pauses = paused.len(),
            %started_by,
            "call recording complete"
        ),
        CallEvent::EnteredMenu { menu } => info!(call, %menu, "ivr menu"),
        CallEvent::LeftIvr { digits, to } => match to {
            crate::route::Destination::Hangup { .. } => {
                info!(call, digits = digits.as_str(), "ivr hangs up")
            }
            _ => info!(call, %to, digits = digits.as_str(), "ivr sends the caller on"),
        },
        CallEvent::Digits {
            side: Side::Agent,
            digits,
        } => info!(call, %digits, "agent dtmf toward the carrier"),
        CallEvent::Digits { side, digits } => tracing::debug!(call, %side, %digits, "dtmf"),
        CallEvent::Queued { queue, position } => info!(call, %queue, position, "caller queued"),
        CallEvent::QueueRefused { queue, reason } => {
            tracing::warn!(call, %queue, %reason, "queue refused the caller: hanging up")
        }
        CallEvent::Offered { agent } => info!(call, %agent, "offered to agent"),
        CallEvent::AgentAnswered { agent } => info!(call, %agent, "bridged to agent"),
        CallEvent::Announced { prompts } => {
            info!(call, prompts = prompts.join(" "), "queue announcement")
        }
        CallEvent::Held { on } => info!(call, on, "agent hold"),
        CallEvent::CarrierHeld { on } => info!(call, on, "carrier hold"),
        CallEvent::AgentAudio { flowing: false } => {
            info!(call, "agent audio stopped: music on hold until it returns")
        }
        CallEvent::AgentAudio { flowing: true } => info!(call, "agent audio back"),
        CallEvent::AgentLink {
            poor,
            caller_missed,
            agent_missed,
        } => {
            let caller_missed_ms = caller_missed.as_millis() as u64;
            let agent_missed_ms = agent_missed.as_millis() as u64;
            if *poor {
                tracing::warn!(
                    call,
                    caller_missed_ms,
                    agent_missed_ms,
                    "agent link poor: audio lost in the last 10 s"
                )
            } else {
                info!(
                    call,
                    caller_missed_ms, agent_missed_ms, "agent link good again"
                )
            }
        }
        CallEvent::AgentLost => info!(
            call,
            "agent connection lost: music on hold while it may resume"
        ),
        CallEvent::AgentResumed => info!(call, "bridged to agent again: the agent resumed"),
        CallEvent::AgentMoved => info!(call, "the agent's connection moved; the call goes on"),
        CallEvent::Requeued => info!(
            call,
            "agent did not come back: caller back at the head of the queue"
        ),
        CallEvent::Overflowed { queue, to } => info!(call, %queue, %to, "queue overflow"),
        CallEvent::Ended {
            side,
            cause,
            answered,
            quality,
        } => {
            let c = &quality.carrier;
            let reason = match (side, answered) {
                (Side::Caller, true) => "RemoteBye",
                (Side::Caller, false) => "Cancelled",
                _ => "Local",
            };
            let agent = quality.agent.clone().unwrap_or_default();
            if !answered {
                info!(%reason, call, %cause, "call ended while ringing");
            } else {
                // `reason` first: "call ended reason=…" is what operators grep for.
                info!(
                    %reason,
                    call,
                    %side,
                    %cause,
                    rtp_received = c.packets_received,
                    rtp_sent = c.packets_sent,
                    rtp_lost = c.packets_lost,
                    jitter_ms = format_args!("{:.1}", c.jitter_ms),
                    agent_packets = agent.packets,
                    agent_lost = agent.lost,
                    agent_fec = agent.recovered_by_fec,
                    agent_red = agent.recovered_by_redundancy,
                    agent_red_late = agent.redundancy_too_late,
                    agent_late = agent.late,
                    agent_concealed = agent.concealed_frames,
                    agent_loss_runs = agent.loss.bursts,
                    agent_buffer_ms = agent
                        .jitter_buffer_delay
                        .map_or(0, |d| d.as_millis()),
                    agent_buffer_p95_ms = agent
                        .jitter_buffer_delay_p95
                        .map_or(0, |d| d.as_millis()),
                    carrier_mos = format_args!("{:.2}", c.estimated_mos().unwrap_or(0.0)),
                    agent_mos = format_args!("{:.2}", agent.estimated_mos().unwrap_or(0.0)),
                    agent_stretched_ms = format_args!(
                        "-{}+{}",
                        agent.accelerated.as_millis(),
                        agent.expanded.as_millis()
                    ),
                    frame_delay_ms = quality.frame_delay_max.as_millis(),
                    "call ended"
                );
            }
        }
    }
}

fn agent_line(agent: &str, event: &AgentEvent) {
    use tracing::info;
    match event {
        AgentEvent::LoggedIn { resumed } => info!(%agent, resumed, "agent session started"),
        AgentEvent::StateChanged {
            state,
            reason: Some(reason),
        } => info!(%agent, %state, %reason, "agent state"),
        AgentEvent::StateChanged {
            state,
            reason: None,
        } => info!(%agent, %state, "agent state"),
        AgentEvent::Disposition { call, code } => {
            info!(%agent, call = call.0, %code, "agent gave the call its disposition")
        }
        AgentEvent::DialRefused {
            number,
            reason,
            message,
        } => info!(%agent, %number, %reason, %message, "dial refused"),
        AgentEvent::Chat { to, call, text } => {
            let to = to.join(",");
            let call = call.map(|c| c.0);
            info!(%agent, %to, ?call, chars = text.chars().count(), "chat sent")
        }
        // Logged where it was refused, with the reason.
        AgentEvent::Refused { .. } => {}
        AgentEvent::ConnectionLost => info!(%agent, "agent session waits for a reconnect"),
        AgentEvent::ConnectionMoved => info!(%agent, "agent's connection moved"),
        AgentEvent::LoggedOut { reason } => info!(%agent, ?reason, "agent session over"),
    }
}
