//! What an answered call is doing, and the moves between: the IVR, waiting in a queue, talking
//! to an agent, and back. The contact center's commands and the phases' own requests (hang up,
//! transfer) arrive here and return the call's next phase.
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::{CallContext, CallError, Sip};
use crate::agent::center::CallCommand;
use crate::agent::server::{CenterInput, CenterToCall, MEDIA_QUEUE};
use crate::call::agent_call::AgentCall;
use crate::call::ivr_call::{CallAction, IvrCall};
use crate::call::leg::CarrierLeg;
use crate::call::waiting::{MusicOnHold, WaitingCall};
use crate::sip::endpoint::SipCommand;
use crate::sip::ua::CallRef;

/// Where an answered call is: the IVR, waiting in a queue, or talking to an agent.
pub(super) enum Phase {
    Ivr(IvrCall),
    Waiting(WaitingCall),
    Agent {
        bridge: Box<AgentCall>,
        connection: quinn::Connection,
    },
    /// Between phases: the leg is being moved.
    Moving,
}

impl Phase {
    pub(super) fn leg(&mut self) -> Option<&mut CarrierLeg> {
        match self {
            Phase::Ivr(c) => Some(&mut c.leg),
            Phase::Waiting(c) => Some(&mut c.leg),
            Phase::Agent { bridge, .. } => Some(&mut bridge.leg),
            Phase::Moving => None,
        }
    }

    pub(super) fn into_leg(self) -> Option<CarrierLeg> {
        match self {
            Phase::Ivr(c) => Some(c.into_leg()),
            Phase::Waiting(c) => Some(c.into_leg()),
            Phase::Agent { bridge, .. } => Some(bridge.into_leg()),
            Phase::Moving => None,
        }
    }

    pub(super) fn poll_action(&mut self) -> Option<CallAction> {
        match self {
            Phase::Ivr(c) => c.poll_action(),
            Phase::Waiting(c) => c.poll_action(),
            Phase::Agent { bridge, .. } => bridge.poll_action(),
            Phase::Moving => None,
        }
    }
}

/// The queue side of a call: what the contact center tells it, and where agent media arrives.
/// Separate fields, so the two receivers can be awaited side by side.
#[derive(Default)]
pub(super) struct QueueLink {
    pub(super) queue: Option<String>,
    pub(super) commands: Option<mpsc::UnboundedReceiver<CenterToCall>>,
    pub(super) media: Option<mpsc::Receiver<Bytes>>,
}

impl QueueLink {
    pub(super) fn is_some(&self) -> bool {
        self.queue.is_some()
    }
}

pub(super) fn ivr_call(
    ctx: &CallContext,
    now: Instant,
    leg: CarrierLeg,
    menu: &str,
) -> Result<IvrCall, CallError> {
    Ok(IvrCall::new(
        now,
        leg,
        ctx.ivr.clone(),
        menu,
        ctx.prompts.clone(),
        ctx.config.media.rtp_timeout(),
    )?)
}

/// Puts the caller in `queue` (music on hold); if the queue will not take it, says goodbye.
pub(super) async fn enqueue(
    ctx: &CallContext,
    call: CallRef,
    leg: CarrierLeg,
    queue: &str,
    caller: &str,
) -> (Phase, QueueLink) {
    let moh = ctx
        .config
        .queues
        .get(queue)
        .map(|q| q.moh.clone())
        .unwrap_or_default();
    let mut waiting = WaitingCall::new(
        leg,
        &moh,
        ctx.prompts.clone(),
        ctx.config.media.rtp_timeout(),
    );
    let (to_call, commands) = mpsc::unbounded_channel();
    let (media_tx, media) = mpsc::channel(MEDIA_QUEUE);
    let (reply, answer) = oneshot::channel();
    let _ = ctx.center.send(CenterInput::Enqueue {
        call,
        queue: queue.to_string(),
        caller: caller.to_string(),
        to_call,
        media: media_tx,
        reply,
    });
    match answer.await {
        Ok(Ok(())) => {
            tracing::info!(%queue, "caller queued");
            let link = QueueLink {
                queue: Some(queue.to_string()),
                commands: Some(commands),
                media: Some(media),
            };
            (Phase::Waiting(waiting), link)
        }
        other => {
            tracing::warn!(%queue, result = ?other.ok(), "queue refused the caller: hanging up");
            waiting.goodbye(Some("queue-unavailable"));
            (Phase::Waiting(waiting), QueueLink::default())
        }
    }
}

pub(super) async fn next_command(
    commands: &mut Option<mpsc::UnboundedReceiver<CenterToCall>>,
) -> Option<CenterToCall> {
    match commands {
        Some(c) => c.recv().await,
        None => std::future::pending().await,
    }
}

pub(super) async fn next_media(media: &mut Option<mpsc::Receiver<Bytes>>) -> Bytes {
    match media {
        Some(m) => match m.recv().await {
            Some(b) => b,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// Carries out what the contact center says; returns the call's next phase.
pub(super) async fn on_center(
    ctx: &CallContext,
    phase: Phase,
    cmd: Option<CenterToCall>,
    sip: &Sip,
    queue: &mut QueueLink,
) -> Result<Phase, CallError> {
    let Some(cmd) = cmd else {
        // The contact center is gone (shutting down): nothing more will come from it.
        *queue = QueueLink::default();
        return Ok(phase);
    };
    let moh = |ctx: &CallContext, queue: &QueueLink| {
        queue
            .queue
            .as_ref()
            .and_then(|q| ctx.config.queues.get(q))
            .map(|q| q.moh.clone())
            .unwrap_or_default()
    };
    let to_waiting = |ctx: &CallContext, phase: Phase, queue: &QueueLink| match phase {
        Phase::Waiting(w) => Phase::Waiting(w),
        other => match other.into_leg() {
            Some(leg) => Phase::Waiting(WaitingCall::new(
                leg,
                &moh(ctx, queue),
                ctx.prompts.clone(),
                ctx.config.media.rtp_timeout(),
            )),
            None => Phase::Moving,
        },
    };
    Ok(match cmd {
        CenterToCall::Connected {
            connection,
            flow,
            agent,
        } => bridge(ctx, phase, connection, flow, &agent, moh(ctx, queue), sip),
        CenterToCall::Reconnected { connection, flow } => bridge(
            ctx,
            phase,
            connection,
            flow,
            "(resumed)",
            moh(ctx, queue),
            sip,
        ),
        CenterToCall::Command(CallCommand::AgentLost) => {
            tracing::info!("agent connection lost: music on hold while it may resume");
            to_waiting(ctx, phase, queue)
        }
        CenterToCall::Command(CallCommand::Requeued) => {
            tracing::info!("agent did not come back: caller back at the head of the queue");
            to_waiting(ctx, phase, queue)
        }
        CenterToCall::Command(CallCommand::Announce { prompts }) => {
            let mut phase = phase;
            if let Phase::Waiting(w) = &mut phase {
                tracing::info!(prompts = prompts.join(" "), "queue announcement");
                w.announce(&prompts);
            }
            phase
        }
        CenterToCall::Command(CallCommand::AgentHungUp) => {
            tracing::info!("agent hung up");
            *queue = QueueLink::default();
            sip.send(SipCommand::Hangup);
            phase
        }
        CenterToCall::Command(CallCommand::Dtmf { digits }) => {
            let mut phase = phase;
            if let Phase::Agent { bridge, .. } = &mut phase {
                match bridge.send_digits(&digits) {
                    Ok(()) => tracing::info!(%digits, "agent dtmf toward the carrier"),
                    Err(e) => tracing::info!(%digits, error = %e, "agent dtmf not sent"),
                }
            }
            phase
        }
        CenterToCall::Command(CallCommand::Hold { on }) => {
            let mut phase = phase;
            if let Phase::Agent { bridge, .. } = &mut phase {
                tracing::info!(on, "agent hold");
                bridge.set_hold(Instant::now(), on);
            }
            phase
        }
        CenterToCall::Command(CallCommand::Overflow { action }) => {
            tracing::info!(?action, "queue overflow");
            *queue = QueueLink::default();
            let phase = to_waiting(ctx, phase, &QueueLink::default());
            carry_out_ivr_action(ctx, phase, action, sip).await?
        }
        CenterToCall::Command(CallCommand::Connect { .. } | CallCommand::Reconnect { .. }) => phase,
    })
}

/// Bridges the caller to the agent on `connection`.
pub(super) fn bridge(
    ctx: &CallContext,
    phase: Phase,
    connection: quinn::Connection,
    flow: u64,
    agent: &str,
    music: String,
    sip: &Sip,
) -> Phase {
    let Some(leg) = phase.into_leg() else {
        return Phase::Moving;
    };
    tracing::info!(%agent, flow, remote = %connection.remote_address(), "bridged to agent");
    let m = &ctx.config.media;
    match AgentCall::new(
        Instant::now(),
        leg,
        flow,
        &ctx.config.agents.opus,
        (m.jitter_min(), m.jitter_max()),
        m.rtp_timeout(),
        MusicOnHold::new(&ctx.prompts, &music),
    ) {
        Ok(bridge) => Phase::Agent {
            bridge: Box::new(bridge),
            connection,
        },
        Err(e) => {
            // Only a config libopus refuses gets here; validation prevents it.
            tracing::error!(error = %e, "cannot bridge to the agent: hanging up");
            sip.send(SipCommand::Hangup);
            Phase::Moving
        }
    }
}

/// An IVR action outside the IVR (a queue's overflow): hang up with a prompt, go to a menu.
pub(super) async fn carry_out_ivr_action(
    ctx: &CallContext,
    phase: Phase,
    action: crate::ivr::Action,
    sip: &Sip,
) -> Result<Phase, CallError> {
    use crate::ivr::Action;
    Ok(match action {
        Action::Hangup { prompt } => {
            let mut phase = phase;
            if let Phase::Waiting(w) = &mut phase {
                w.goodbye(prompt.as_deref());
            } else {
                sip.send(SipCommand::Hangup);
            }
            phase
        }
        Action::Goto { menu } | Action::ReadBack { menu, .. } => match phase.into_leg() {
            Some(leg) => Phase::Ivr(ivr_call(ctx, Instant::now(), leg, &menu)?),
            None => Phase::Moving,
        },
        Action::Destination { target } => {
            tracing::warn!(%target, "overflow destination not routable: hanging up");
            sip.send(SipCommand::Hangup);
            phase
        }
    })
}

/// What the current phase asked for.
pub(super) async fn on_action(
    ctx: &CallContext,
    phase: Phase,
    action: CallAction,
    sip: &Sip,
    caller: &str,
    queue: &mut QueueLink,
) -> Result<Phase, CallError> {
    Ok(match action {
        CallAction::Hangup => {
            match &phase {
                Phase::Ivr(c) => tracing::info!(digits = c.digits_heard(), "ivr hangs up"),
                _ => tracing::info!("hanging up"),
            }
            sip.send(SipCommand::Hangup);
            phase
        }
        CallAction::RtpTimeout => {
            tracing::info!("no rtp from the carrier: hanging up");
            sip.send(SipCommand::Hangup);
            phase
        }
        CallAction::Transfer { target, digits } => match target.strip_prefix("queue:") {
            Some(name) if !queue.is_some() => {
                tracing::info!(queue = %name, %digits, "ivr sends the caller to a queue");
                let Some(leg) = phase.into_leg() else {
                    return Ok(Phase::Moving);
                };
                let (phase, link) = enqueue(ctx, sip.call, leg, name, caller).await;
                *queue = link;
                phase
            }
            _ => {
                tracing::warn!(%target, %digits, "ivr destination not routable: hanging up");
                sip.send(SipCommand::Hangup);
                phase
            }
        },
    })
}
