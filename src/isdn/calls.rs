//! The E1 spans of the daemon and their calls: for each `[[e1]]`, the span's task on its line,
//! a dispatcher that starts a task per call the span offers and hands each call's events to
//! it, and that call task: a [`Call`] core with an [`E1Leg`], taking the B-channel's audio once
//! per frame like the SIP shell takes RTP.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::bchannel::BChannel;
use super::config::E1Config;
use super::line::Line;
use super::pcap::Pcap;
use super::q931::cause;
use super::q931::control::{Event, Incoming, RequestError, Setup};
use super::q931::ie::{NumberType, NumberingPlan, PartyNumber, Presentation};
use super::q931::message::CallRef;
use super::shell::{self, SpanCommand, SpanOps};
use super::software::{BChannels, SoftwareSpan};
use super::span::{Span, SpanEvent};
use crate::call::core::{Arrival, Call, PlacedCall};
use crate::call::leg::e1::{E1Leg, E1Signal};
use crate::call::outbound::{NumberFormat, Via};
use crate::call::shell::CallContext;
use crate::call::task::{carry_out_core, on_center, sleep_until, CallIo, Frames};
use crate::queue::center::shell::PlaceRequest;
use crate::sip::ua::CallIds;

/// How long a call being hung up at shutdown waits for the span to confirm.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// A span's handles, as its calls use them.
#[derive(Clone)]
pub struct SpanLink {
    pub name: Arc<str>,
    pub commands: mpsc::UnboundedSender<SpanCommand>,
    /// Calls to place: the dispatcher sets them up and hands their events to the caller.
    places: mpsc::UnboundedSender<Placing>,
    pub bchannels: BChannels,
}

/// A call to place on the span, and where its events go once it has a call reference.
struct Placing {
    setup: Setup,
    events: mpsc::UnboundedSender<Event>,
    reply: oneshot::Sender<Result<(CallRef, u8), RequestError>>,
}

/// Starts every configured span: its line, its task and its dispatcher. A span whose line
/// cannot be opened is logged and left out; the others and the SIP trunks run.
pub fn start(
    spans: &[E1Config],
    ctx: Arc<CallContext>,
    call_ids: CallIds,
    drain: CancellationToken,
    ops: &crate::ops::admin::Ops,
    stop: &CancellationToken,
) -> Vec<SpanLink> {
    let mut links = Vec::new();
    for config in spans {
        let span_ops = SpanOps {
            name: config.name.clone(),
            signalling: config.signalling.label().into(),
            feed: ops.spans_feed(),
            counters: ops.span_counters(),
        };
        match start_span(
            config,
            ctx.clone(),
            call_ids.clone(),
            drain.clone(),
            span_ops,
            stop,
        ) {
            Ok(link) => links.push(link),
            Err(e) => tracing::error!(span = %config.name, "e1 span not started: {e}"),
        }
    }
    links
}

fn start_span(
    config: &E1Config,
    ctx: Arc<CallContext>,
    call_ids: CallIds,
    drain: CancellationToken,
    ops: SpanOps,
    stop: &CancellationToken,
) -> std::io::Result<SpanLink> {
    let span_config = config.span_config();
    let (line, bchannels) = match config.driver {
        super::config::Driver::Socket => {
            // Validated at load: a socket span has a path.
            let dir = config.path.clone().unwrap_or_default();
            let span = SoftwareSpan::bind(&dir, &span_config.control.channels, stop.child_token())?;
            let bchannels = span.bchannels.clone();
            (Line::software(span), bchannels)
        }
        super::config::Driver::Dahdi => {
            // Validated at load: a dahdi span has a span number.
            let number = config.span.unwrap_or(1);
            let bchannels = super::dahdi::open_bchannels(
                number,
                &span_config.control.channels,
                span_config.control.law,
            )?;
            (
                Line::Dahdi(super::dahdi::Dchannel::open(number)?),
                bchannels,
            )
        }
    };
    let pcap = config.pcap.as_deref().map(Pcap::create).transpose()?;
    let (commands, commands_rx) = mpsc::unbounded_channel();
    let (events_tx, events) = mpsc::unbounded_channel();
    let (places, places_rx) = mpsc::unbounded_channel();
    let link = SpanLink {
        name: config.name.as_str().into(),
        commands,
        places,
        bchannels,
    };
    tracing::info!(
        span = %config.name,
        signalling = ?config.signalling,
        channels = span_config.control.channels.len(),
        "e1 span started"
    );
    let span = Span::new(span_config);
    tokio::spawn(shell::run(
        span,
        line,
        pcap,
        commands_rx,
        events_tx,
        Some(ops),
    ));
    tokio::spawn(dispatch(
        link.clone(),
        events,
        places_rx,
        ctx,
        call_ids,
        drain,
        stop.child_token(),
    ));
    Ok(link)
}

/// Hands each call's events to its task, starting a task for each call offered.
async fn dispatch(
    link: SpanLink,
    mut events: mpsc::UnboundedReceiver<SpanEvent>,
    mut places: mpsc::UnboundedReceiver<Placing>,
    ctx: Arc<CallContext>,
    call_ids: CallIds,
    drain: CancellationToken,
    stop: CancellationToken,
) {
    let mut calls: HashMap<CallRef, mpsc::UnboundedSender<Event>> = HashMap::new();
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            Some(placing) = places.recv() => {
                // The span answers at once; its events for the call wait in `events` until
                // the call is registered here, so none is missed.
                let (reply, placed) = oneshot::channel();
                let _ = link.commands.send(SpanCommand::Setup { setup: placing.setup, reply });
                let placed = placed.await.unwrap_or(Err(RequestError::LinkDown));
                if let Ok((call, _)) = placed {
                    calls.insert(call, placing.events);
                }
                let _ = placing.reply.send(placed);
                continue;
            }
            _ = stop.cancelled() => None,
        };
        let Some(event) = event else { break };
        match event {
            SpanEvent::LinkUp => tracing::info!(span = %link.name, "e1 d-channel up"),
            SpanEvent::LinkDown => tracing::warn!(span = %link.name, "e1 d-channel down"),
            SpanEvent::Problem(what) => tracing::warn!(span = %link.name, "e1: {what}"),
            SpanEvent::Call(Event::Incoming(incoming)) if drain.is_cancelled() => {
                tracing::info!(span = %link.name, "draining: e1 call refused");
                let _ = link.commands.send(SpanCommand::HangUp {
                    call: incoming.call,
                    cause: cause::NO_CIRCUIT_AVAILABLE,
                });
            }
            SpanEvent::Call(Event::Incoming(incoming)) => {
                let (tx, rx) = mpsc::unbounded_channel();
                calls.insert(incoming.call, tx);
                let id = call_ids.next();
                let span = tracing::info_span!("call", call_id = id, trunk = %link.name);
                tokio::spawn(
                    run_call(ctx.clone(), link.clone(), id, incoming, rx).instrument(span),
                );
            }
            SpanEvent::Call(Event::Problem(what)) => {
                tracing::info!(span = %link.name, "q.931: {what}")
            }
            SpanEvent::Call(Event::Restarted { channels }) => {
                tracing::info!(span = %link.name, ?channels, "e1 channels restarted")
            }
            SpanEvent::Call(event) => {
                let Some(call) = call_of(&event) else {
                    continue;
                };
                if let Some(task) = calls.get(&call) {
                    let _ = task.send(event.clone());
                }
                if matches!(event, Event::Cleared { .. }) {
                    calls.remove(&call);
                }
            }
        }
    }
}

fn call_of(event: &Event) -> Option<CallRef> {
    match event {
        Event::Proceeding { call, .. }
        | Event::Alerting { call, .. }
        | Event::Progress { call, .. }
        | Event::Connected { call }
        | Event::Disconnecting { call, .. }
        | Event::Cleared { call, .. } => Some(*call),
        Event::Incoming(i) => Some(i.call),
        Event::Restarted { .. } | Event::Problem(_) => None,
    }
}

/// One call the span offered, to its end.
async fn run_call(
    ctx: Arc<CallContext>,
    link: SpanLink,
    id: u64,
    incoming: Incoming,
    events: mpsc::UnboundedReceiver<Event>,
) {
    let call = incoming.call;
    let config = ctx.config.load_full();
    let Some(span) = config.config.e1.iter().find(|s| *s.name == *link.name) else {
        // A reload removed the span between the SETUP and now.
        let _ = link.commands.send(SpanCommand::HangUp {
            call,
            cause: cause::TEMPORARY_FAILURE,
        });
        return;
    };
    let channel = incoming.channel;
    tracing::info!(
        channel,
        caller = %incoming.calling.as_ref().map_or("", |n| n.digits.as_str()),
        callee = %incoming.called.digits,
        "e1 call offered"
    );
    let arrival = Arrival {
        id,
        trunk: link.name.to_string(),
        // The carrier's reference for the call: span, channel and call reference.
        sip_call_id: format!("{}/{channel}/{}", link.name, call.value),
        caller: incoming
            .calling
            .as_ref()
            .map(|n| n.digits.clone())
            .unwrap_or_default(),
        callee: incoming.called.digits.clone(),
        route: span.route.clone(),
        ring: Duration::from_millis(span.ring_ms),
    };
    let leg = E1Leg::incoming(channel, incoming.law);
    let core = Call::new(
        Instant::now(),
        leg,
        config.clone(),
        arrival,
        StdRng::from_entropy(),
    );
    let (to_center, from_center) = mpsc::unbounded_channel();
    let io = CallIo::new(to_center, None);
    drive(&ctx, link, call, channel, core, io, events, from_center).await;
}

/// An agent's call out on an E1 span: set up through the span's dispatcher, then run like
/// any other call (the agent hears ringback or the network's in-band progress).
pub async fn place(ctx: Arc<CallContext>, request: PlaceRequest) {
    let PlaceRequest {
        place,
        from_center,
        media,
    } = request;
    let plan = &place.plan;
    let placed = PlacedCall {
        id: place.call,
        trunk: plan.trunk.clone(),
        sip_call_id: format!("{}/out/{}", plan.trunk, place.call),
        agent: place.agent.clone(),
        caller_id: plan.caller_id.clone(),
        callee: plan.number.to_string(),
        ring_timeout: place.ring_timeout,
    };
    let config = ctx.config.load_full();
    let span = config.config.e1.iter().find(|s| s.name == plan.trunk);
    let link = ctx
        .spans
        .get()
        .and_then(|links| links.iter().find(|l| *l.name == *plan.trunk));
    let (Some(span), Some(link)) = (span, link) else {
        tracing::warn!("e1 span not running: call not placed");
        return crate::call::placing::unreachable(&ctx, placed);
    };
    let national = matches!(
        plan.via,
        Via::E1 {
            format: NumberFormat::National
        }
    );
    let setup = Setup {
        called: e1_number(&plan.dialled, national),
        calling: Some(PartyNumber {
            presentation: Some(Presentation::Allowed),
            ..e1_number(&plan.caller_id, false)
        }),
        display: None,
    };
    let (events, events_rx) = mpsc::unbounded_channel();
    let (reply, placed_on) = oneshot::channel();
    let _ = link.places.send(Placing {
        setup,
        events,
        reply,
    });
    let (call, channel) = match placed_on.await {
        Ok(Ok(placed_on)) => placed_on,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "e1 call not placed");
            return crate::call::placing::unreachable(&ctx, placed);
        }
        Err(_) => return crate::call::placing::unreachable(&ctx, placed),
    };
    tracing::info!(channel, number = %plan.dialled, "e1 call placed");
    let leg = E1Leg::outgoing(channel, span.span_config().control.law);
    let core = Call::new_outgoing(
        Instant::now(),
        leg,
        config.clone(),
        placed,
        StdRng::from_entropy(),
    );
    // Nothing here enqueues; the center's commands come on `from_center`.
    let (to_center, _) = mpsc::unbounded_channel();
    let io = CallIo::new(to_center, media);
    let link = link.clone();
    drive(&ctx, link, call, channel, core, io, events_rx, from_center).await;
}

/// A number as a SETUP carries it: Q.931 writes no `+`, so an E.164 number goes as type
/// international without it; a number as dialled at the branch goes as type national.
fn e1_number(number: &str, national: bool) -> PartyNumber {
    let number_type = if number.starts_with('+') || !national {
        NumberType::International
    } else {
        NumberType::National
    };
    PartyNumber {
        number_type,
        plan: NumberingPlan::Isdn,
        presentation: None,
        screening: 0,
        digits: number.trim_start_matches('+').to_string(),
    }
}

/// A call on the span, to its end: the leg's signalling and audio around the core.
#[allow(clippy::too_many_arguments)]
async fn drive(
    ctx: &Arc<CallContext>,
    link: SpanLink,
    call: CallRef,
    channel: u8,
    mut core: Call<E1Leg>,
    mut io: CallIo,
    mut events: mpsc::UnboundedReceiver<Event>,
    mut from_center: mpsc::UnboundedReceiver<crate::queue::center::shell::CenterToCall>,
) {
    let mut frames = Frames::new(ctx);
    let mut line = CallLine {
        link: link.clone(),
        call,
        channel,
        bchannel: None,
        buf: vec![0; 1024],
    };
    let mut grace: Option<Instant> = None;
    loop {
        line.carry_out(&mut core);
        if carry_out_core(&mut core, ctx, &mut io).is_some() {
            // A transfer to an outside number needs a leg of the same kind: not on E1 yet.
            tracing::warn!("transfer to a number: not available on e1 calls");
            core.onward_unreachable(Instant::now());
            continue;
        }
        if core.is_over() {
            break;
        }
        let deadline = core.poll_timeout();
        tokio::select! {
            event = events.recv() => {
                let now = Instant::now();
                match event {
                    Some(event) => core.handle_leg(now, |leg, _| leg.handle_span(&event)),
                    // The dispatcher is gone: the daemon is stopping.
                    None if grace.is_none() => {
                        core.shutdown(now);
                        grace = Some(now + STOP_GRACE);
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            msg = from_center.recv() => {
                if let Some(msg) = msg {
                    on_center(&mut core, &mut io, msg);
                }
            }
            _ = sleep_until(deadline) => {
                frames.tick(&mut core, &mut io, |core| line.take_audio(core));
            }
            _ = ctx.stop.cancelled(), if grace.is_none() => {
                let now = Instant::now();
                core.shutdown(now);
                grace = Some(now + STOP_GRACE);
            }
            _ = sleep_until(grace) => {
                tracing::warn!("e1 hang-up unconfirmed at shutdown");
                core.handle_leg(Instant::now(), |leg, _| leg.abandon());
            }
        }
    }
    line.carry_out(&mut core);
    carry_out_core(&mut core, ctx, &mut io);
    if let Some(cause) = core.leg_mut().their_cause() {
        tracing::info!(cause, reason = cause::name(cause), "e1 call cleared");
    }
    io.recording.finish(ctx).await;
}

/// The call's side of its span: signalling requests, and the B-channel's audio.
struct CallLine {
    link: SpanLink,
    call: CallRef,
    channel: u8,
    bchannel: Option<Arc<BChannel>>,
    buf: Vec<u8>,
}

impl CallLine {
    fn carry_out(&mut self, core: &mut Call<E1Leg>) {
        let call = self.call;
        while let Some(signal) = core.leg_mut().poll_signal() {
            let command = match signal {
                E1Signal::Proceeding => SpanCommand::Proceeding(call),
                E1Signal::Alerting => SpanCommand::Alerting {
                    call,
                    inband: false,
                },
                E1Signal::Connect => SpanCommand::Connect(call),
                E1Signal::HangUp { cause } => SpanCommand::HangUp { call, cause },
            };
            // The span's task outlives its calls.
            let _ = self.link.commands.send(command);
        }
        if let Some(bytes) = core.leg_mut().take_audio() {
            if let Some(bchannel) = self.bchannel() {
                if let Err(e) = bchannel.write(&bytes) {
                    tracing::debug!(channel = self.channel, "b-channel write: {e}");
                    self.bchannel = None;
                }
            }
        }
    }

    /// The B-channel, found again when the line replaced it (a software span's far end
    /// connects when its call is answered).
    fn bchannel(&mut self) -> Option<Arc<BChannel>> {
        if self.bchannel.is_none() {
            self.bchannel = self.link.bchannels.get(self.channel);
        }
        self.bchannel.clone()
    }

    fn take_audio(&mut self, core: &mut Call<E1Leg>) {
        let Some(bchannel) = self.bchannel() else {
            return;
        };
        loop {
            match bchannel.read(&mut self.buf) {
                Ok(Some(n)) if n > 0 => {
                    let bytes = &self.buf[..n];
                    core.handle_leg(Instant::now(), |leg, _| leg.handle_audio(bytes));
                }
                Ok(Some(_)) | Err(_) => {
                    // The far end closed it: look for its next connection.
                    self.bchannel = None;
                    self.link.bchannels.forget(self.channel, &bchannel);
                    return;
                }
                Ok(None) => return,
            }
        }
    }
}
