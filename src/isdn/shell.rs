//! A span's task: it owns the span's [`Span`] core and its D-channel, and only moves things:
//! frames between the line and the core (and into the pcap, if one is kept), the legs'
//! requests into the core, time when the core's timer is due, and the core's events out.
use std::time::{Instant, SystemTime};

use tokio::sync::{mpsc, oneshot};

use super::line::{Line, LineEvent};
use super::pcap::Pcap;
use super::q931::control::{Event, RequestError, Setup};
use super::q931::message::CallRef;
use super::span::{Span, SpanEvent};
use super::view::{SpanCounters, SpanView};
use crate::call::task::sleep_until;
use tokio::sync::watch;

/// What a leg (or ops) asks of a span.
#[derive(Debug)]
pub enum SpanCommand {
    Setup {
        setup: Setup,
        reply: oneshot::Sender<Result<(CallRef, u8), RequestError>>,
    },
    Proceeding(CallRef),
    Alerting {
        call: CallRef,
        inband: bool,
    },
    Progress(CallRef),
    Connect(CallRef),
    HangUp {
        call: CallRef,
        cause: u8,
    },
    Restart(Vec<u8>),
}

/// Where a span shows itself to ops: its entry in the spans' view, and its metrics.
pub struct SpanOps {
    pub name: String,
    pub signalling: String,
    pub feed: watch::Sender<Vec<SpanView>>,
    pub counters: SpanCounters,
}

impl SpanOps {
    fn show(&self, span: &Span, last: &mut Option<SpanView>) {
        let view = span.view(&self.name, &self.signalling);
        if last.as_ref() == Some(&view) {
            return;
        }
        self.counters.show(&view);
        self.feed
            .send_modify(|all| match all.iter_mut().find(|v| v.name == view.name) {
                Some(entry) => *entry = view.clone(),
                None => all.push(view.clone()),
            });
        *last = Some(view);
    }

    fn problem(&self) {
        self.counters
            .problems
            .with_label_values(&[self.name.as_str()])
            .inc();
    }
}

/// The most a LAPD frame may be: N201 octets of information and its header.
const MAX_FRAME: usize = 300;

/// Runs `span` on its line until nobody can ask it anything (every sender of `commands` gone:
/// its calls have ended and the daemon is stopping): every event goes to `events`.
pub async fn run(
    mut span: Span,
    mut line: Line,
    mut pcap: Option<Pcap>,
    mut commands: mpsc::UnboundedReceiver<SpanCommand>,
    events: mpsc::UnboundedSender<SpanEvent>,
    ops: Option<SpanOps>,
) {
    let mut shown = None;
    if line.up_at_start() {
        span.physical_up(Instant::now());
    }
    if let Some(ops) = &ops {
        ops.show(&span, &mut shown);
    }
    let mut buf = vec![0u8; MAX_FRAME];
    loop {
        let deadline = span.poll_timeout();
        tokio::select! {
            got = line.next(&mut buf) => {
                let now = Instant::now();
                match got {
                    LineEvent::Up => span.physical_up(now),
                    LineEvent::Down => span.physical_down(now),
                    LineEvent::Frame(n) => {
                        let frame = &buf[..n];
                        if let Some(pcap) = &mut pcap {
                            write_pcap(pcap, frame);
                        }
                        span.handle_frame(now, frame);
                    }
                    LineEvent::Problem(what) => {
                        tracing::warn!("{what}");
                        if let Some(ops) = &ops {
                            ops.problem();
                        }
                    }
                }
            }
            command = commands.recv() => {
                let Some(command) = command else { break };
                act(&mut span, command);
            }
            _ = sleep_until(deadline) => span.handle_timeout(Instant::now()),
        }
        while let Some(frame) = span.poll_frame() {
            if let Some(pcap) = &mut pcap {
                write_pcap(pcap, &frame);
            }
            // A far end that stopped reading is noticed by its line failing.
            let _ = line.send(&frame).await;
        }
        // Ops see the span as it is before its calls hear of it: a call that has ended shows
        // as ended by the time its task says so.
        if let Some(ops) = &ops {
            ops.show(&span, &mut shown);
        }
        while let Some(event) = span.poll_event() {
            if let (Some(ops), SpanEvent::Problem(_) | SpanEvent::Call(Event::Problem(_))) =
                (&ops, &event)
            {
                ops.problem();
            }
            // Nobody listening any more: the daemon is stopping; the calls' hang-ups still go.
            let _ = events.send(event);
        }
    }
}

fn act(span: &mut Span, command: SpanCommand) {
    let now = Instant::now();
    // Requests about a call that has ended meanwhile are moot: their errors are dropped.
    match command {
        SpanCommand::Setup { setup, reply } => {
            let placed = span.act(now, |c, now| {
                let call = c.setup(now, setup)?;
                Ok((call, c.channel_of(call).unwrap_or_default()))
            });
            let _ = reply.send(placed);
        }
        SpanCommand::Proceeding(call) => {
            let _ = span.act(now, |c, _| c.proceeding(call));
        }
        SpanCommand::Alerting { call, inband } => {
            let _ = span.act(now, |c, _| c.alerting(call, inband));
        }
        SpanCommand::Progress(call) => {
            let _ = span.act(now, |c, _| c.progress(call));
        }
        SpanCommand::Connect(call) => {
            let _ = span.act(now, |c, now| c.connect(now, call));
        }
        SpanCommand::HangUp { call, cause } => {
            let _ = span.act(now, |c, now| c.hang_up(now, call, cause));
        }
        SpanCommand::Restart(channels) => span.act(now, |c, now| c.restart_channels(now, channels)),
    }
}

fn write_pcap(pcap: &mut Pcap, frame: &[u8]) {
    if let Err(e) = pcap.write(SystemTime::now(), frame) {
        tracing::warn!("d-channel pcap: {e}");
    }
}
