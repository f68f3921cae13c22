//! One call as a sans-IO state machine: its phase (ringing, IVR, waiting in a queue, talking
//! to an agent, ended) and every move between them, its timers, and what it tells the carrier
//! leg, the contact center and the agent's media. No sockets, no clock, no entropy: time comes
//! in with every input, randomness from the seeded RNG it is given.
//!
//! The shell feeds it:
//! - carrier input through [`Call::handle_leg`] (SIP events, RTP: whatever the leg takes),
//! - the contact center's commands through [`Call::handle_center`],
//! - the agent's RTP packets through [`Call::handle_agent_media`],
//! - time through [`Call::handle_timeout`] when [`Call::poll_timeout`] is due,
//!
//! and carries out [`Call::poll_output`] (to the center, to the agent), the leg's own outputs
//! (SIP signals, RTP) and [`Call::poll_event`] (to the event bus), until [`Call::is_over`].
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;

use crate::call::bridge::Bridge;
use crate::call::leg::{Leg, LegEnd, Progress};
use crate::config::Loaded;
use crate::events::{
    AgentLegQuality, CallEvent, CallId, CallQuality, EndCause, RecordingState, Side, Unanswered,
};
use crate::ivr::{Action, IvrDone, IvrStage};
use crate::media::tone::ToneGenerator;
use crate::queue::center::outbound::PlaceCall;
use crate::queue::center::CallCommand;
use crate::queue::waiting::{MusicOnHold, WaitingStage};
use crate::route::Destination;

/// The call's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Fires the trunk's `ring_ms` after the call arrived: answer it.
    Answer,
    /// Fires every frame period once answered: one frame of audio each way. The IVR's menu
    /// timers, queue goodbyes, the agent-audio stall and the RTP timeout are checked on it.
    Frame,
}

/// What the call asks of the rest of the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// For the contact center.
    ToCenter(ToCenter),
    /// An RTP packet (Opus) for the agent's media handle.
    ToAgent(Vec<u8>),
    /// An RTP packet (Opus) for the supervisor's media handle.
    ToSupervisor(Vec<u8>),
    /// Bytes of the call's recording (Ogg Opus) to append to its file; the first open it.
    RecordingBytes(Vec<u8>),
    /// The recording is complete: seal its file and hand it on for upload.
    RecordingDone,
    /// Place the transfer target's leg and give it to [`Call::onward_ready`] (or report
    /// [`Call::onward_unreachable`]); the INVITE goes out once the call took it.
    PlaceOnward {
        place: Box<PlaceCall>,
        sip_call_id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToCenter {
    /// Put the caller in this queue; it came in on `trunk`.
    Enqueue {
        queue: String,
        caller: String,
        trunk: String,
    },
    /// The caller pressed a key while talking to an agent.
    CallerDigit(char),
    /// The call is over (it was in a queue or with an agent).
    Leave,
    /// How a call an agent placed is getting on.
    Progress(Progress),
    /// The carrier took the caller to the external number: the call is over for us.
    HandedOver,
    /// A transfer to an external number did not start, or the carrier refused it: why. The
    /// call goes on with the agent.
    TransferFailed { reason: String },
    /// The transfer target's leg rings, plays early media, or answered.
    TransferProgress(Progress),
    /// The caller is joined to the transfer target: the agent's part is over.
    Joined,
    /// The transfer target's leg `onward` is over (once for each): unanswered, and why, or
    /// after its answer. Before a join the caller is the agent's again.
    OnwardEnded {
        onward: CallId,
        unanswered: Option<Unanswered>,
    },
    /// A call an agent placed is over: unanswered (and why), or after its answer.
    PlacedEnded { unanswered: Option<Unanswered> },
    /// The call's recording is in `state` now, or stays in it: `refused` says why a request
    /// was not carried out.
    Recording {
        state: RecordingState,
        refused: Option<String>,
    },
}

/// A call an agent places, as the contact center planned it.
#[derive(Debug, Clone)]
pub struct PlacedCall {
    pub id: CallId,
    pub trunk: String,
    pub sip_call_id: String,
    pub agent: String,
    pub caller_id: String,
    /// E.164.
    pub callee: String,
    /// Given up (`no_answer`) if not answered within this.
    pub ring_timeout: Duration,
}

/// What a placed call keeps until it is answered.
struct Dialling {
    agent: String,
    give_up_at: Instant,
    /// The carrier plays its own audio: the agent hears that instead of our ringback.
    early_media: bool,
    ringback: Option<ToneGenerator>,
    tone: Vec<i16>,
}

/// Who the call is, for its events.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub id: CallId,
    pub trunk: String,
    /// The carrier's Call-ID (SIP; an E1 leg would give its call reference).
    pub sip_call_id: String,
    pub caller: String,
    pub callee: String,
    pub route: Destination,
    pub ring: Duration,
}

enum Phase {
    /// Not answered yet.
    Ringing,
    Ivr(Box<IvrStage>),
    /// Music on hold and announcements: in a queue, while a lost agent may resume, or saying
    /// goodbye.
    Waiting(WaitingStage),
    Agent(Box<Bridge>),
    /// A call an agent placed, not answered yet: the agent hears ringback or early media.
    Dialling(Box<Bridge>),
    /// The agent talks to a transfer target (or hears it ring); the caller hears music.
    Consulting {
        bridge: Box<Bridge>,
        caller: WaitingStage,
    },
    /// The caller talks to the transfer target, without the agent.
    Joined,
    Ended,
}

pub struct Call<L: Leg> {
    id: CallId,
    leg: L,
    config: Arc<Loaded>,
    arrival: Arrival,
    rng: StdRng,
    phase: Phase,
    answered: bool,
    /// The carrier's hold, as last reported on the bus.
    carrier_held: bool,
    /// The queue the contact center holds this call in, from the enqueue until it lets go
    /// (agent hung up, overflow, refusal).
    in_queue: Option<String>,
    /// Why the call ends once a goodbye prompt has been heard.
    goodbye_cause: EndCause,
    answer_at: Option<Instant>,
    next_frame: Option<Instant>,
    /// How late the latest frame was handled: a starved or blocked task shows here.
    frame_delay_max: Duration,
    silence: Vec<i16>,
    agent_quality: Option<AgentLegQuality>,
    /// The agent link's round trip as the shell last read it from the transport.
    agent_round_trip: Option<f64>,
    outputs: VecDeque<Output>,
    events: VecDeque<CallEvent>,
    /// A call an agent placed: who, and until the answer, how it is getting on.
    placed: Option<String>,
    dialling: Option<Dialling>,
    /// The carrier was asked to take the caller to this number (REFER).
    handing_over: Option<String>,
    /// The leg to an external number the agent transfers the caller to.
    onward: Option<transfer::Onward<L>>,
    recording: Option<recording::Recording>,
    /// The recording policy has been applied (at the first agent's answer).
    recording_decided: bool,
    /// The policy lets the agent or the admin API start a recording.
    may_record: bool,
    /// A supervisor in the call, and who hears whom.
    conference: Option<supervision::Conference>,
}

impl<L: Leg> Call<L> {
    /// A call the carrier offered: it is accepted (or refused) now, then rung or answered.
    pub fn new(now: Instant, leg: L, config: Arc<Loaded>, arrival: Arrival, rng: StdRng) -> Self {
        let mut call = Call {
            id: arrival.id,
            silence: vec![0; leg.samples_per_frame()],
            leg,
            config,
            rng,
            phase: Phase::Ringing,
            answered: false,
            carrier_held: false,
            in_queue: None,
            goodbye_cause: EndCause::QueueHangup,
            answer_at: None,
            next_frame: None,
            frame_delay_max: Duration::ZERO,
            agent_quality: None,
            agent_round_trip: None,
            outputs: VecDeque::new(),
            events: VecDeque::from([CallEvent::Arrived {
                trunk: arrival.trunk.clone(),
                sip_call_id: arrival.sip_call_id.clone(),
                caller: arrival.caller.clone(),
                callee: arrival.callee.clone(),
            }]),
            arrival,
            placed: None,
            dialling: None,
            handing_over: None,
            onward: None,
            recording: None,
            recording_decided: false,
            may_record: false,
            conference: None,
        };
        match call.leg.accept(now) {
            Err(refusal) => {
                tracing::info!(error = %refusal, "call refused");
                call.end(
                    now,
                    Side::Gateway,
                    EndCause::Refused {
                        status: refusal.status,
                    },
                );
            }
            Ok(()) if call.arrival.ring > Duration::ZERO => {
                call.leg.ring(now);
                call.answer_at = Some(now + call.arrival.ring);
            }
            Ok(()) => call.answer(now),
        }
        call
    }

    /// A call an agent places: its leg has sent (or is sending) the INVITE. The agent's media
    /// is bridged from the start, so it hears ringback or early media.
    pub fn new_outgoing(
        now: Instant,
        leg: L,
        config: Arc<Loaded>,
        placed: PlacedCall,
        rng: StdRng,
    ) -> Self {
        let arrival = Arrival {
            id: placed.id,
            trunk: placed.trunk.clone(),
            sip_call_id: placed.sip_call_id.clone(),
            caller: placed.caller_id.clone(),
            callee: placed.callee.clone(),
            route: Destination::Hangup { prompt: None },
            ring: Duration::ZERO,
        };
        let mut call = Call {
            id: placed.id,
            silence: vec![0; leg.samples_per_frame()],
            leg,
            config,
            rng,
            phase: Phase::Ringing,
            answered: false,
            carrier_held: false,
            in_queue: None,
            goodbye_cause: EndCause::AgentHungUp,
            answer_at: None,
            next_frame: Some(now),
            frame_delay_max: Duration::ZERO,
            agent_quality: None,
            agent_round_trip: None,
            outputs: VecDeque::new(),
            events: VecDeque::from([CallEvent::Dialled {
                trunk: placed.trunk,
                sip_call_id: placed.sip_call_id,
                agent: placed.agent.clone(),
                caller_id: placed.caller_id,
                callee: placed.callee,
            }]),
            arrival,
            placed: Some(placed.agent.clone()),
            dialling: Some(Dialling {
                agent: placed.agent,
                give_up_at: now + placed.ring_timeout,
                early_media: false,
                ringback: None,
                tone: Vec::new(),
            }),
            handing_over: None,
            onward: None,
            recording: None,
            recording_decided: false,
            may_record: false,
            conference: None,
        };
        // Bridged from the start: the agent hears ringback or early media. The music is what
        // the callee hears should the agent's link drop: the queues' default.
        let music = MusicOnHold::new(&call.config.prompts, "moh");
        call.phase = Phase::Waiting(call.waiting(music));
        if call.bridge(now) {
            if let Phase::Agent(bridge) = std::mem::replace(&mut call.phase, Phase::Ringing) {
                call.phase = Phase::Dialling(bridge);
            }
        }
        call
    }

    pub fn id(&self) -> CallId {
        self.id
    }

    /// The leg, for the shell to take its outputs (signals, packets).
    pub fn leg_mut(&mut self) -> &mut L {
        &mut self.leg
    }

    /// Carrier input: `f` hands it to the leg, then the call sees what the leg made of it.
    pub fn handle_leg(&mut self, now: Instant, f: impl FnOnce(&mut L, Instant)) {
        f(&mut self.leg, now);
        while let Some(progress) = self.leg.poll_progress() {
            self.on_progress(progress);
        }
        while let Some(outcome) = self.leg.poll_handed_over() {
            let Some(number) = self.handing_over.take() else {
                continue;
            };
            match outcome {
                Ok(()) => {
                    self.outputs
                        .push_back(Output::ToCenter(ToCenter::HandedOver));
                    self.end(now, Side::Agent, EndCause::HandedOver { to: number });
                }
                Err(status) => self
                    .outputs
                    .push_back(Output::ToCenter(ToCenter::TransferFailed {
                        reason: format!(
                            "the carrier did not transfer the call to {number} ({status})"
                        ),
                    })),
            }
        }
        let held = self.leg.held_by_carrier();
        if held != self.carrier_held {
            self.carrier_held = held;
            self.events.push_back(CallEvent::CarrierHeld { on: held });
        }
        self.check_leg_end(now);
    }

    /// An RTP packet from the agent.
    pub fn handle_agent_media(&mut self, now: Instant, rtp: &[u8]) {
        if let Phase::Agent(bridge) | Phase::Dialling(bridge) | Phase::Consulting { bridge, .. } =
            &mut self.phase
        {
            bridge.handle_agent_media(now, rtp);
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_timer().map(|(_, at)| at)
    }

    /// Which timer is due next. Frames start only once answered, so the two never overlap.
    pub fn next_timer(&self) -> Option<(Timer, Instant)> {
        if self.is_over() {
            return None;
        }
        match (self.answer_at, self.next_frame) {
            (Some(a), _) => Some((Timer::Answer, a)),
            (None, Some(f)) => Some((Timer::Frame, f)),
            _ => None,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.answer_at.is_some_and(|t| t <= now) {
            self.answer_at = None;
            self.answer(now);
        }
        // Frames keep their schedule (a late wake-up catches up in a burst), but each is handled
        // at the time it really is: the jitter buffers compare it with packet arrival times.
        while let Some(due) = self.next_frame.filter(|t| *t <= now) {
            self.frame_delay_max = self.frame_delay_max.max(now - due);
            self.next_frame = Some(due + self.leg.frame_period());
            self.frame(now);
            if self.is_over() {
                break;
            }
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<CallEvent> {
        self.events.pop_front()
    }

    /// True once the call has ended; the shell then flushes the leg's last outputs and stops.
    pub fn is_over(&self) -> bool {
        matches!(self.phase, Phase::Ended)
    }

    /// The daemon is stopping: hang up.
    pub fn shutdown(&mut self, now: Instant) {
        self.end(now, Side::Gateway, EndCause::Shutdown);
    }

    /// What the contact center says about this call.
    pub fn handle_center(&mut self, now: Instant, cmd: CallCommand) {
        if self.is_over() {
            return;
        }
        match cmd {
            CallCommand::Refused { reason } => {
                let queue = self.in_queue.take().unwrap_or_default();
                self.events
                    .push_back(CallEvent::QueueRefused { queue, reason });
                self.goodbye(now, Some("queue-unavailable"), EndCause::QueueHangup);
            }
            CallCommand::Connect { agent, .. } => {
                if self.bridge(now) {
                    self.events.push_back(CallEvent::AgentAnswered { agent });
                    self.recording_policy_applies();
                }
            }
            CallCommand::Reconnect { .. } => {
                if matches!(self.phase, Phase::Waiting(_)) && self.bridge(now) {
                    self.events.push_back(CallEvent::AgentResumed);
                    // Still dialling: back to ringback or early media, not yet a conversation.
                    if self.dialling.is_some() {
                        if let Phase::Agent(bridge) =
                            std::mem::replace(&mut self.phase, Phase::Ringing)
                        {
                            self.phase = Phase::Dialling(bridge);
                        }
                    }
                }
            }
            CallCommand::AgentLost => {
                if matches!(
                    self.phase,
                    Phase::Agent(_) | Phase::Dialling(_) | Phase::Consulting { .. }
                ) {
                    self.back_to_waiting(now);
                    self.events.push_back(CallEvent::AgentLost);
                }
            }
            CallCommand::Requeued => {
                self.back_to_waiting(now);
                self.events.push_back(CallEvent::Requeued);
            }
            CallCommand::HandOver { number, agent } => self.hand_over(now, &number, &agent),
            CallCommand::TransferOut { onward, attended } => {
                self.transfer_out(now, onward, attended)
            }
            CallCommand::CompleteTransfer => self.complete_transfer(),
            CallCommand::Recording { action, by } => self.recording_action(action, &by),
            CallCommand::Supervise { supervisor, mode } => self.supervise(now, supervisor, mode),
            CallCommand::Unsupervise => self.unsupervise(),
            CallCommand::ReturnToCaller => self.return_to_caller(now),
            CallCommand::Transferred { queue } => {
                if matches!(self.phase, Phase::Agent(_)) {
                    if let Phase::Agent(bridge) = std::mem::replace(&mut self.phase, Phase::Ringing)
                    {
                        self.add_agent_quality(bridge.quality());
                    }
                    let music = self.music_of(&queue);
                    self.phase = Phase::Waiting(self.waiting(music));
                    self.in_queue = Some(queue);
                }
            }
            CallCommand::Announce { prompts } => {
                if let Phase::Waiting(w) = &mut self.phase {
                    w.announce(&prompts);
                    self.events.push_back(CallEvent::Announced { prompts });
                }
            }
            CallCommand::AgentHungUp => {
                self.in_queue = None;
                self.end(now, Side::Agent, EndCause::AgentHungUp);
            }
            CallCommand::Dtmf { digits } => {
                if matches!(self.phase, Phase::Consulting { .. }) {
                    if self.agent_keys_to_target(&digits) {
                        self.events.push_back(CallEvent::Digits {
                            side: Side::Agent,
                            digits,
                        });
                    }
                } else if matches!(self.phase, Phase::Agent(_)) {
                    match self.leg.send_digits(&digits) {
                        Ok(()) => self.events.push_back(CallEvent::Digits {
                            side: Side::Agent,
                            digits,
                        }),
                        Err(e) => tracing::info!(%digits, error = %e, "agent dtmf not sent"),
                    }
                }
            }
            CallCommand::Hold { on } => {
                if let Phase::Agent(bridge) = &mut self.phase {
                    bridge.set_hold(now, on);
                    self.events.push_back(CallEvent::Held { on });
                }
            }
            CallCommand::Overflow { action } => {
                let queue = self.in_queue.take().unwrap_or_default();
                let to = destination_of(&action);
                self.events.push_back(CallEvent::Overflowed {
                    queue,
                    to: to.clone(),
                });
                self.goodbye_cause = EndCause::QueueHangup;
                self.route(now, to);
            }
        }
    }

    /// The callee of a placed call rings, plays early media, or answers.
    fn on_progress(&mut self, progress: Progress) {
        let Some(dialling) = &mut self.dialling else {
            return;
        };
        match progress {
            Progress::Ringing => {
                if dialling.ringback.is_none() && !dialling.early_media {
                    dialling.ringback = Some(ToneGenerator::ringback());
                    self.events
                        .push_back(CallEvent::Ringing { early_media: false });
                }
            }
            Progress::EarlyMedia => {
                dialling.early_media = true;
                dialling.ringback = None;
                self.events
                    .push_back(CallEvent::Ringing { early_media: true });
            }
            Progress::Answered => {
                let agent = dialling.agent.clone();
                self.dialling = None;
                self.answered = true;
                // Bridged already unless the agent's link is down (music until it resumes).
                if matches!(self.phase, Phase::Dialling(_)) {
                    if let Phase::Dialling(bridge) =
                        std::mem::replace(&mut self.phase, Phase::Ringing)
                    {
                        self.phase = Phase::Agent(bridge);
                    }
                }
                self.events.push_back(CallEvent::Answered);
                self.events.push_back(CallEvent::AgentAnswered { agent });
                self.recording_policy_applies();
            }
        }
        self.outputs
            .push_back(Output::ToCenter(ToCenter::Progress(progress)));
    }

    fn answer(&mut self, now: Instant) {
        if self.is_over() {
            return;
        }
        self.leg.answer(now);
        self.answered = true;
        self.events.push_back(CallEvent::Answered);
        self.next_frame = Some(now);
        let route = self.arrival.route.clone();
        self.goodbye_cause = EndCause::QueueHangup;
        self.route(now, route);
    }

    /// Sends the answered call on to `to`.
    fn route(&mut self, now: Instant, to: Destination) {
        match to {
            Destination::Ivr { menu } => {
                let samples = self.leg.samples_per_frame();
                let c = &self.config;
                match IvrStage::new(now, c.ivr.clone(), &menu, c.prompts.clone(), samples) {
                    Ok(stage) => {
                        self.phase = Phase::Ivr(Box::new(stage));
                        self.drain_ivr(now);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "ivr menu not available: hanging up");
                        let to = Destination::Ivr { menu };
                        self.end(now, Side::Gateway, EndCause::Unroutable { to });
                    }
                }
            }
            Destination::Queue { name } if self.in_queue.is_none() => {
                let moh = self.music_of(&name);
                let mut waiting = self.waiting(moh);
                self.in_queue = Some(name.clone());
                if let Some(prompt) = self.recording_prompt() {
                    waiting.notice(&prompt);
                }
                self.phase = Phase::Waiting(waiting);
                self.outputs.push_back(Output::ToCenter(ToCenter::Enqueue {
                    queue: name,
                    caller: self.arrival.caller.clone(),
                    trunk: self.arrival.trunk.clone(),
                }));
            }
            Destination::Hangup { prompt } => {
                let cause = self.goodbye_cause.clone();
                self.goodbye(now, prompt.as_deref(), cause);
            }
            other => {
                tracing::warn!(target = %other, "destination not routable: hanging up");
                self.end(now, Side::Gateway, EndCause::Unroutable { to: other });
            }
        }
    }

    fn music_of(&self, queue: &str) -> MusicOnHold {
        let name = self
            .config
            .config
            .queues
            .get(queue)
            .map(|q| q.moh.as_str())
            .unwrap_or_default();
        MusicOnHold::new(&self.config.prompts, name)
    }

    fn waiting(&self, music: MusicOnHold) -> WaitingStage {
        WaitingStage::new(
            self.leg.samples_per_frame(),
            music,
            self.config.prompts.clone(),
        )
    }

    /// Plays `prompt` (if any), then hangs up with `cause`.
    fn goodbye(&mut self, now: Instant, prompt: Option<&str>, cause: EndCause) {
        self.back_to_waiting(now);
        self.goodbye_cause = cause;
        if let Phase::Waiting(w) = &mut self.phase {
            w.goodbye(prompt);
        }
    }

    /// Back to music on hold, going on where the music stopped.
    fn back_to_waiting(&mut self, now: Instant) {
        self.consult_to_waiting(now);
        let music = match std::mem::replace(&mut self.phase, Phase::Ringing) {
            Phase::Waiting(w) => {
                self.phase = Phase::Waiting(w);
                return;
            }
            Phase::Agent(bridge) | Phase::Dialling(bridge) => {
                self.add_agent_quality(bridge.quality());
                bridge.into_music()
            }
            Phase::Ended => {
                self.phase = Phase::Ended;
                return;
            }
            Phase::Ivr(_) | Phase::Ringing | Phase::Consulting { .. } | Phase::Joined => {
                let queue = self.in_queue.clone().unwrap_or_default();
                self.music_of(&queue)
            }
        };
        self.phase = Phase::Waiting(self.waiting(music));
    }

    /// Bridges the caller to the agent; false if the call cannot be bridged.
    fn bridge(&mut self, now: Instant) -> bool {
        let mut notice = None;
        let music = match std::mem::replace(&mut self.phase, Phase::Ringing) {
            Phase::Waiting(mut w) => {
                notice = w.take_notice();
                w.into_music()
            }
            Phase::Agent(bridge) => {
                self.add_agent_quality(bridge.quality());
                bridge.into_music()
            }
            other => {
                self.phase = other;
                return false;
            }
        };
        let c = &self.config.config;
        let jitter = (c.media.jitter_min(), c.media.jitter_max());
        match Bridge::new(now, &c.agents.opus, jitter, music, &mut self.rng) {
            Ok(mut bridge) => {
                if let Some(notice) = notice {
                    bridge.finish_notice(notice);
                }
                self.phase = Phase::Agent(Box::new(bridge));
                true
            }
            Err(e) => {
                // Only a config libopus refuses gets here; validation prevents it.
                tracing::error!(error = %e, "cannot bridge to the agent: hanging up");
                self.phase = Phase::Waiting(self.waiting(MusicOnHold::default()));
                self.end(now, Side::Gateway, EndCause::Bridge(e));
                false
            }
        }
    }

    /// The shell's reading of the agent link's round trip, kept for the call's quality.
    pub fn set_agent_round_trip(&mut self, rtt: std::time::Duration) {
        self.agent_round_trip = Some(rtt.as_secs_f64() * 1000.0);
    }

    fn add_agent_quality(&mut self, q: AgentLegQuality) {
        // Taken apart whole so that a field added to the quality cannot be left out here.
        let AgentLegQuality {
            packets,
            packets_sent,
            lost,
            late,
            concealed_frames,
            recovered_by_fec,
            recovered_by_redundancy,
            redundancy_too_late,
            jitter_ms,
            jitter_buffer_delay,
            jitter_buffer_delay_p95,
            loss,
            accelerated,
            expanded,
            round_trip_ms,
        } = q;
        let total = self.agent_quality.get_or_insert_with(Default::default);
        total.packets += packets;
        total.packets_sent += packets_sent;
        total.lost += lost;
        total.late += late;
        total.concealed_frames += concealed_frames;
        total.recovered_by_fec += recovered_by_fec;
        total.recovered_by_redundancy += recovered_by_redundancy;
        total.redundancy_too_late += redundancy_too_late;
        total.loss.merge(&loss);
        total.accelerated += accelerated;
        total.expanded += expanded;
        // Jitter and delay are states, not counts: the latest bridge's stand.
        total.jitter_ms = jitter_ms;
        total.jitter_buffer_delay = jitter_buffer_delay.or(total.jitter_buffer_delay);
        total.jitter_buffer_delay_p95 = jitter_buffer_delay_p95.or(total.jitter_buffer_delay_p95);
        total.round_trip_ms = round_trip_ms
            .or(self.agent_round_trip)
            .or(total.round_trip_ms);
    }

    /// One frame period: a frame each way, then what follows from it.
    fn frame(&mut self, now: Instant) {
        let samples = self.leg.samples_per_frame();
        match &mut self.phase {
            Phase::Ivr(stage) => {
                exchange(
                    &mut self.leg,
                    &mut self.recording,
                    now,
                    stage.next_frame(now),
                );
            }
            Phase::Waiting(stage) => {
                exchange(&mut self.leg, &mut self.recording, now, stage.next_frame());
            }
            Phase::Agent(bridge) => {
                match &mut self.conference {
                    Some(c) => supervision::frame(
                        c,
                        bridge,
                        &mut self.leg,
                        &mut self.recording,
                        &mut self.outputs,
                        now,
                        samples,
                    ),
                    None => {
                        let to_caller = bridge.to_caller(now, samples);
                        let heard = exchange(&mut self.leg, &mut self.recording, now, to_caller);
                        if let Some(packet) = bridge.from_caller(heard) {
                            self.outputs.push_back(Output::ToAgent(packet.to_vec()));
                        }
                    }
                }
                if let Some(packet) = bridge.feedback(now) {
                    self.outputs.push_back(Output::ToAgent(packet.to_vec()));
                }
                while let Some(flowing) = bridge.poll_stall_change() {
                    self.events.push_back(CallEvent::AgentAudio { flowing });
                }
                if let Some(link) = bridge.poll_link(now) {
                    self.events.push_back(CallEvent::AgentLink {
                        poor: link.poor,
                        caller_missed: link.heard_lost,
                        agent_missed: link.sent_lost,
                    });
                }
            }
            Phase::Dialling(bridge) => {
                // The agent's voice reaches nobody before the answer.
                bridge.to_caller(now, samples);
                let heard = exchange(&mut self.leg, &mut self.recording, now, &self.silence);
                let heard = match &mut self.dialling {
                    Some(d) if !d.early_media => {
                        d.tone.resize(samples, 0);
                        match &mut d.ringback {
                            Some(tone) => tone.fill(&mut d.tone),
                            None => d.tone.fill(0),
                        }
                        &d.tone[..]
                    }
                    _ => heard,
                };
                if let Some(packet) = bridge.from_caller(heard) {
                    self.outputs.push_back(Output::ToAgent(packet.to_vec()));
                }
            }
            Phase::Consulting { .. } => self.consult_frame(now, samples),
            Phase::Joined => self.joined_frame(now, samples),
            Phase::Ringing | Phase::Ended => {
                exchange(&mut self.leg, &mut self.recording, now, &self.silence);
            }
        }
        self.drain_recording();
        while let Some(digit) = self.leg.poll_digit() {
            self.events.push_back(CallEvent::Digits {
                side: Side::Caller,
                digits: digit.to_string(),
            });
            match &mut self.phase {
                Phase::Ivr(stage) => stage.on_digit(now, digit),
                Phase::Agent(_) => self
                    .outputs
                    .push_back(Output::ToCenter(ToCenter::CallerDigit(digit))),
                Phase::Joined => self.caller_key_to_target(digit),
                _ => {}
            }
        }
        self.leg.handle_timeout(now);
        self.check_onward(now);
        match &mut self.phase {
            Phase::Ivr(stage) => {
                stage.handle_timeout(now);
                self.drain_ivr(now);
            }
            Phase::Waiting(stage) if stage.said_goodbye() => {
                let cause = self.goodbye_cause.clone();
                self.end(now, Side::Gateway, cause);
            }
            _ => {}
        }
        if self.dialling.as_ref().is_some_and(|d| now >= d.give_up_at) {
            self.end(
                now,
                Side::Gateway,
                EndCause::Unanswered {
                    why: Unanswered::NoAnswer,
                    status: 0,
                },
            );
        }
        let timeout = self.config.config.media.rtp_timeout();
        let expect_media = self.dialling.as_ref().is_none_or(|d| d.early_media);
        if !self.is_over() && expect_media && timeout.is_some_and(|t| self.leg.silent_for(now) >= t)
        {
            self.end(now, Side::Gateway, EndCause::MediaTimeout);
        }
        self.check_leg_end(now);
    }

    fn drain_ivr(&mut self, now: Instant) {
        let Phase::Ivr(stage) = &mut self.phase else {
            return;
        };
        while let Some(menu) = stage.poll_menu_entered() {
            self.events.push_back(CallEvent::EnteredMenu { menu });
        }
        let digits = stage.digits_heard().to_string();
        match stage.poll_done() {
            None => {}
            Some(IvrDone::Hangup) => {
                let to = Destination::Hangup { prompt: None };
                self.events.push_back(CallEvent::LeftIvr { digits, to });
                self.end(now, Side::Gateway, EndCause::IvrHangup);
            }
            Some(IvrDone::Transfer { target, .. }) => {
                self.events.push_back(CallEvent::LeftIvr {
                    digits,
                    to: target.clone(),
                });
                self.goodbye_cause = EndCause::IvrHangup;
                self.route(now, target);
            }
        }
    }

    fn check_leg_end(&mut self, now: Instant) {
        if self.is_over() {
            return;
        }
        let Some(end) = self.leg.poll_end() else {
            return;
        };
        let (side, cause) = match end {
            LegEnd::HungUp => (Side::Caller, EndCause::CallerHungUp),
            LegEnd::Cancelled => (Side::Caller, EndCause::CallerCancelled),
            LegEnd::NoConfirmation => (Side::Gateway, EndCause::NoConfirmation),
            LegEnd::Failed => (Side::Gateway, EndCause::SignallingFailed),
            LegEnd::Local => (Side::Gateway, EndCause::Shutdown),
            LegEnd::SessionExpired => (Side::Gateway, EndCause::SessionExpired),
            LegEnd::Unanswered { status } => (
                Side::Caller,
                EndCause::Unanswered {
                    why: Unanswered::from_status(status),
                    status,
                },
            ),
        };
        self.end(now, side, cause);
    }

    fn end(&mut self, now: Instant, side: Side, cause: EndCause) {
        if self.is_over() {
            return;
        }
        if side != Side::Caller {
            self.leg.hang_up(now);
        }
        self.end_onward(now);
        if self.in_queue.take().is_some() {
            self.outputs.push_back(Output::ToCenter(ToCenter::Leave));
        }
        // An agent hanging up before the answer cancelled the call.
        let cause = match (&self.dialling, cause) {
            (Some(_), EndCause::AgentHungUp) => EndCause::Unanswered {
                why: Unanswered::Cancelled,
                status: 0,
            },
            (_, cause) => cause,
        };
        if self.placed.is_some() {
            let unanswered = match &cause {
                EndCause::Unanswered { why, .. } => Some(*why),
                _ if !self.answered => Some(Unanswered::Unreachable),
                _ => None,
            };
            self.outputs
                .push_back(Output::ToCenter(ToCenter::PlacedEnded { unanswered }));
        }
        self.dialling = None;
        if let Phase::Agent(bridge) | Phase::Dialling(bridge) | Phase::Consulting { bridge, .. } =
            &self.phase
        {
            let q = bridge.quality();
            self.add_agent_quality(q);
        }
        self.phase = Phase::Ended;
        self.answer_at = None;
        self.next_frame = None;
        self.finish_recording();
        self.events.push_back(CallEvent::Ended {
            side,
            cause,
            answered: self.answered,
            quality: Box::new(CallQuality {
                carrier: self.leg.quality(),
                agent: self.agent_quality.clone(),
                frame_delay_max: self.frame_delay_max,
            }),
        });
    }
}

/// Where a queue's overflow action sends the caller.
fn destination_of(action: &Action) -> Destination {
    match action {
        Action::Goto { menu } | Action::ReadBack { menu, .. } => {
            Destination::Ivr { menu: menu.clone() }
        }
        Action::Hangup { prompt } => Destination::Hangup {
            prompt: prompt.clone(),
        },
        Action::Destination { target } => target.clone(),
    }
}

mod recording;
mod supervision;
mod transfer;

use recording::exchange;
pub use recording::RecordingAction;

#[cfg(test)]
mod tests;
