//! What every call's task does whatever its carrier leg (SIP with RTP, or an E1 B-channel):
//! publish the core's events, carry its outputs to the contact center, the agent, a supervisor
//! and the recording, take the center's commands and the agent's media in, and run the frame
//! clock. The SIP shell ([`super::shell`]) and the E1 shell ([`crate::isdn::calls`]) add their
//! leg's signalling and media around these.
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::core::{Call, Output, ToCenter};
use super::leg::Leg;
use super::shell::{CallContext, FLUSH_FRAMES};
use crate::agent::media::AgentMedia;
use crate::queue::center::outbound::PlaceCall;
use crate::queue::center::shell::{CallInput, CenterToCall};
use crate::queue::center::CallCommand;
use crate::recording::store::RecordingFile;
use crate::sip::ua::CallRef;

/// The handles a call's core's outputs go to, whatever its leg.
pub(crate) struct CallIo {
    /// Where the center's commands for this call are sent (with an enqueue).
    pub(crate) to_center: mpsc::UnboundedSender<CenterToCall>,
    pub(crate) agent: Option<AgentMedia>,
    pub(crate) recording: RecordingIo,
    /// A supervisor's media, while one is in the call.
    pub(crate) supervisor: Option<AgentMedia>,
}

impl CallIo {
    pub(crate) fn new(
        to_center: mpsc::UnboundedSender<CenterToCall>,
        agent: Option<AgentMedia>,
    ) -> Self {
        CallIo {
            to_center,
            agent,
            recording: RecordingIo::default(),
            supervisor: None,
        }
    }
}

/// The call's recording file, as the shell writes it.
#[derive(Default)]
pub(crate) struct RecordingIo {
    file: Option<RecordingFile>,
    /// The file could not be made or written: the rest of the recording is dropped (logged
    /// once).
    failed: bool,
}

impl RecordingIo {
    pub(crate) fn write(&mut self, ctx: &CallContext, call: CallRef, bytes: &[u8]) {
        if self.failed {
            return;
        }
        let Some(store) = &ctx.recordings else {
            self.failed = true;
            tracing::error!("recording: no recordings directory is set up; not recorded");
            return;
        };
        let written = match &mut self.file {
            Some(file) => file.write(bytes),
            None => store.create(call).and_then(|mut file| {
                file.write(bytes)?;
                self.file = Some(file);
                Ok(())
            }),
        };
        if let Err(e) = written {
            self.failed = true;
            tracing::error!(dir = %store.dir().display(), "recording: cannot write: {e}");
        }
    }

    /// Seals and stores the file, off the async threads (it syncs), and wakes the uploader.
    pub(crate) async fn finish(&mut self, ctx: &CallContext) {
        let Some(file) = self.file.take() else {
            return;
        };
        match tokio::task::spawn_blocking(move || file.finish()).await {
            Ok(Ok(path)) => {
                tracing::debug!(file = %path.display(), "recording stored");
                if let Some(store) = &ctx.recordings {
                    store.finished.notify_one();
                }
            }
            Ok(Err(e)) => tracing::error!("recording: cannot store: {e}"),
            Err(e) => tracing::error!("recording: cannot store: {e}"),
        }
    }
}

/// Carries out the core's events and outputs (its legs' are the shell's). Events go on the bus
/// first: the center publishes events of its own about this call (queued, offered) once our
/// requests reach it, and a subscriber must see cause before effect. Returns the transfer
/// target's leg the core asked for, if it did.
pub(crate) fn carry_out_core<L: Leg>(
    core: &mut Call<L>,
    ctx: &CallContext,
    io: &mut CallIo,
) -> Option<(Box<PlaceCall>, String)> {
    let call = core.id();
    while let Some(event) = core.poll_event() {
        ctx.bus.call(call, event);
    }
    let mut to_place = None;
    while let Some(out) = core.poll_output() {
        match out {
            Output::ToAgent(packet) => {
                if let Some(agent) = &io.agent {
                    agent.sink.send(&packet);
                }
            }
            Output::ToSupervisor(packet) => {
                if let Some(supervisor) = &io.supervisor {
                    supervisor.sink.send(&packet);
                }
            }
            Output::RecordingBytes(bytes) => io.recording.write(ctx, call, &bytes),
            // The file is sealed once the call's task is done with it (see `drive`).
            Output::RecordingDone => {}
            Output::PlaceOnward { place, sip_call_id } => {
                to_place = Some((place, sip_call_id));
            }
            Output::ToCenter(ToCenter::Enqueue {
                queue,
                caller,
                trunk,
            }) => {
                let _ = ctx.center.send(CallInput::Enqueue {
                    call,
                    queue,
                    caller,
                    trunk,
                    to_call: io.to_center.clone(),
                });
            }
            Output::ToCenter(ToCenter::CallerDigit(digit)) => {
                let _ = ctx.center.send(CallInput::CallerDtmf { call, digit });
            }
            Output::ToCenter(ToCenter::Leave) => {
                let _ = ctx.center.send(CallInput::CallerGone { call });
            }
            Output::ToCenter(ToCenter::HandedOver) => {
                let _ = ctx.center.send(CallInput::HandedOver { call });
            }
            Output::ToCenter(ToCenter::TransferFailed { reason }) => {
                let _ = ctx.center.send(CallInput::TransferFailed { call, reason });
            }
            Output::ToCenter(ToCenter::TransferProgress(progress)) => {
                let _ = ctx
                    .center
                    .send(CallInput::TransferProgress { call, progress });
            }
            Output::ToCenter(ToCenter::Joined) => {
                let _ = ctx.center.send(CallInput::Joined { call });
            }
            Output::ToCenter(ToCenter::OnwardEnded { onward, unanswered }) => {
                let _ = ctx.center.send(CallInput::OnwardEnded {
                    call,
                    onward,
                    unanswered,
                });
            }
            Output::ToCenter(ToCenter::Progress(progress)) => {
                let _ = ctx.center.send(CallInput::Progress { call, progress });
            }
            Output::ToCenter(ToCenter::PlacedEnded { unanswered }) => {
                let _ = ctx.center.send(CallInput::PlacedEnded { call, unanswered });
            }
            Output::ToCenter(ToCenter::Recording { state, refused }) => {
                let _ = ctx.center.send(CallInput::Recording {
                    call,
                    state,
                    refused,
                });
            }
        }
    }
    to_place
}

/// A command from the contact center, with the agent's or supervisor's media it brings.
pub(crate) fn on_center<L: Leg>(core: &mut Call<L>, io: &mut CallIo, msg: CenterToCall) {
    let CenterToCall { cmd, media } = msg;
    match &cmd {
        CallCommand::Connect { .. } | CallCommand::Reconnect { .. } => {
            // The handshake has measured a round trip already; a short call may end before
            // the periodic reading in [`Frames::tick`].
            if let Some(rtt) = media.as_ref().and_then(|m| m.sink.round_trip()) {
                core.set_agent_round_trip(rtt);
            }
            io.agent = media;
        }
        CallCommand::AgentLost
        | CallCommand::Requeued
        | CallCommand::AgentHungUp
        | CallCommand::Overflow { .. }
        | CallCommand::Transferred { .. } => io.agent = None,
        // A mode change comes without media: the flow stays.
        CallCommand::Supervise { .. } if media.is_some() => io.supervisor = media,
        CallCommand::Unsupervise => io.supervisor = None,
        _ => {}
    }
    core.handle_center(Instant::now(), cmd);
}

/// The agent's and the supervisor's packets since the last frame, each at its arrival time.
pub(crate) fn take_agent_media<L: Leg>(core: &mut Call<L>, io: &mut CallIo) {
    if let Some(agent) = &mut io.agent {
        while let Ok(packet) = agent.source.try_recv() {
            core.handle_agent_media(packet.arrived, &packet.rtp);
        }
    }
    if let Some(supervisor) = &mut io.supervisor {
        while let Ok(packet) = supervisor.source.try_recv() {
            core.handle_supervisor_media(packet.arrived, &packet.rtp);
        }
    }
}

/// The frame clock's bookkeeping: each frame's work timed into the shared histogram (flushed
/// every [`FLUSH_FRAMES`]), and the agent link's round trip read as often.
pub(crate) struct Frames {
    work: prometheus::local::LocalHistogram,
    unflushed: u32,
}

impl Frames {
    pub(crate) fn new(ctx: &Arc<CallContext>) -> Self {
        Frames {
            work: ctx.frame_work.local(),
            unflushed: 0,
        }
    }

    /// The core's timer is due (its frame clock, a ring or answer timer now and then):
    /// `take_media` hands it what arrived, then time moves on.
    pub(crate) fn tick<L: Leg>(
        &mut self,
        core: &mut Call<L>,
        io: &mut CallIo,
        take_media: impl FnOnce(&mut Call<L>),
    ) {
        let started = Instant::now();
        take_media(core);
        take_agent_media(core, io);
        core.handle_timeout(started);
        self.work.observe(started.elapsed().as_secs_f64());
        self.unflushed += 1;
        if self.unflushed == FLUSH_FRAMES {
            self.work.flush();
            self.unflushed = 0;
            if let Some(rtt) = io.agent.as_ref().and_then(|a| a.sink.round_trip()) {
                core.set_agent_round_trip(rtt);
            }
        }
    }
}

pub(crate) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
