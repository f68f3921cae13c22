//! Q.931 call control on one PRI (§5, ETSI EN 300 403), as a sans-IO core: the calls of a
//! D-channel with their states and timers, the B-channels they hold, RESTART, and the answers
//! §5.8 asks for when a message is wrong. The same core is the user side (CPE, toward a
//! carrier) or the network side (NT, toward a PBX); [`Side`] sets where they differ.
//!
//! The shell hands it the layer-3 messages the link delivers ([`CallControl::handle_message`]),
//! link state ([`CallControl::link_up`], [`CallControl::link_down`]) and time
//! ([`CallControl::handle_timeout`]), and the leg's requests (setup, alerting, connect, hang up);
//! it carries out [`CallControl::poll_transmit`] (messages for the link) and
//! [`CallControl::poll_event`] (for the legs).
mod checks;
mod clearing;
mod restart;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::cause;
use super::ie::{
    self, id, BearerCapability, Cause, ChannelId, Law, PartyNumber, ProgressIndicator, Selection,
    Transfer,
};
use super::message::{CallRef, Message, MessageType};
use checks::Reading;

/// Which end of the interface we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The user side (CPE, TE): toward a carrier.
    User,
    /// The network side (NT): toward a PBX, or a carrier's lab.
    Network,
}

/// The call control timers (§9; ETSI values by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    pub t301: Duration,
    pub t303: Duration,
    pub t305: Duration,
    pub t308: Duration,
    pub t309: Duration,
    pub t310: Duration,
    pub t313: Duration,
    pub t316: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t301: Duration::from_secs(180),
            t303: Duration::from_secs(4),
            t305: Duration::from_secs(30),
            t308: Duration::from_secs(4),
            t309: Duration::from_secs(90),
            t310: Duration::from_secs(30),
            t313: Duration::from_secs(4),
            t316: Duration::from_secs(120),
        }
    }
}

/// A call's running timer (one at a time, as in §9's tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// T301 (network side): the callee is alerted; it has this long to answer (cause 19).
    T301,
    /// T303: our SETUP has had no answer; sent once more, then the call is given up.
    T303,
    /// T305: our DISCONNECT has had no RELEASE; we send RELEASE.
    T305,
    /// T308: our RELEASE has had no RELEASE COMPLETE; sent once more, then the channel is
    /// restarted.
    T308,
    /// T309: the link is down under an active call; it is cleared if the link stays down.
    T309,
    /// T310: the far side proceeds but neither alerts nor answers; the call is cleared.
    T310,
    /// T313 (user side): our CONNECT has had no CONNECT ACKNOWLEDGE; the call is cleared.
    T313,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlConfig {
    pub side: Side,
    /// The span's B-channels (an E1's timeslots 1–15 and 17–31).
    pub channels: Vec<u8>,
    /// The law our SETUP offers.
    pub law: Law,
    /// Our SETUP asks for its channel exclusively (else as preferred).
    pub exclusive: bool,
    pub timers: Timers,
}

impl ControlConfig {
    /// An E1 PRI's 30 B-channels.
    pub fn e1(side: Side) -> Self {
        ControlConfig {
            side,
            channels: (1..=31).filter(|&ts| ts != 16).collect(),
            law: Law::ALaw,
            exclusive: true,
            timers: Timers::default(),
        }
    }
}

/// Call states (§2.1 and §2.2: U-states on the user side, N-states on the network side; the
/// numbers are the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Null,
    CallInitiated,
    OutgoingProceeding,
    CallDelivered,
    CallPresent,
    CallReceived,
    ConnectRequest,
    IncomingProceeding,
    Active,
    DisconnectRequest,
    DisconnectIndication,
    ReleaseRequest,
}

impl State {
    /// The value a STATUS message's call state carries.
    pub fn code(self) -> u8 {
        match self {
            State::Null => 0,
            State::CallInitiated => 1,
            State::OutgoingProceeding => 3,
            State::CallDelivered => 4,
            State::CallPresent => 6,
            State::CallReceived => 7,
            State::ConnectRequest => 8,
            State::IncomingProceeding => 9,
            State::Active => 10,
            State::DisconnectRequest => 11,
            State::DisconnectIndication => 12,
            State::ReleaseRequest => 19,
        }
    }
}

/// A call the far side offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub call: CallRef,
    pub channel: u8,
    /// The number called (empty if the SETUP had none).
    pub called: PartyNumber,
    pub calling: Option<PartyNumber>,
    pub display: Option<String>,
    /// The law of the B-channel (the SETUP's, else A-law).
    pub law: Law,
}

/// What a call placed with [`CallControl::setup`] asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    pub called: PartyNumber,
    pub calling: Option<PartyNumber>,
    pub display: Option<String>,
}

/// What call control tells the legs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A call is offered: answer it with proceeding, alerting and connect, or hang it up.
    Incoming(Incoming),
    /// Our call is taken on `channel` (it may differ from the one asked for, if preferred).
    Proceeding { call: CallRef, channel: u8 },
    /// The callee is alerted; `inband`: the network plays ringback on the channel.
    Alerting { call: CallRef, inband: bool },
    /// The network plays something on the channel before the answer.
    Progress { call: CallRef, inband: bool },
    /// The call is answered (ours), or our answer is confirmed (theirs).
    Connected { call: CallRef },
    /// The far side disconnects: the call is being released (its channel is not free yet).
    Disconnecting { call: CallRef, cause: Cause },
    /// The call is over and its channel free (or under restart). `cause`: the far side's, or
    /// ours when we cleared it.
    Cleared { call: CallRef, cause: Cause },
    /// These channels were restarted, by the far side's RESTART or ours: calls on them ended.
    Restarted { channels: Vec<u8> },
    /// Something for the log and the metrics: a message ignored or answered with STATUS.
    Problem(String),
}

/// Why a request cannot be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("no B-channel free")]
    NoChannel,
    #[error("the D-channel is down")]
    LinkDown,
    #[error("no such call")]
    NoSuchCall,
    #[error("not in a state that allows it")]
    WrongState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Idle,
    InUse(CallRef),
    /// Restarting after a failed release, or taken out of service by a RESTART we sent.
    Maintenance,
}

#[derive(Debug, Clone)]
struct Entry {
    state: State,
    channel: Option<u8>,
    /// The channel we asked for exclusively (our calls): a first response naming another is
    /// unacceptable.
    exclusive: bool,
    /// Our first response to the SETUP has gone (it carries the channel).
    responded: bool,
    timer: Option<(Timer, Instant)>,
    /// T303 or T308 has expired once already.
    retried: bool,
    /// Our SETUP (for T303) or the cause we clear with (for T305 and T308).
    setup: Option<Message>,
    cause: Option<Cause>,
    /// The far side's cause, when it cleared.
    their_cause: Option<Cause>,
}

impl Entry {
    fn new(state: State, channel: Option<u8>) -> Self {
        Entry {
            state,
            channel,
            exclusive: false,
            responded: false,
            timer: None,
            retried: false,
            setup: None,
            cause: None,
            their_cause: None,
        }
    }
}

pub struct CallControl {
    config: ControlConfig,
    calls: BTreeMap<CallRef, Entry>,
    channels: BTreeMap<u8, Channel>,
    next_value: u16,
    /// Our RESTARTs awaiting acknowledgement, by channel (`None`: the interface).
    restarts: BTreeMap<Option<u8>, restart::Pending>,
    link_up: bool,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
}

impl CallControl {
    pub fn new(config: ControlConfig) -> Self {
        let channels = config
            .channels
            .iter()
            .map(|&c| (c, Channel::Idle))
            .collect();
        CallControl {
            config,
            calls: BTreeMap::new(),
            channels,
            next_value: 1,
            restarts: BTreeMap::new(),
            link_up: false,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn side(&self) -> Side {
        self.config.side
    }

    pub fn state(&self, call: CallRef) -> Option<State> {
        self.calls.get(&call).map(|e| e.state)
    }

    pub fn channel_of(&self, call: CallRef) -> Option<u8> {
        self.calls.get(&call).and_then(|e| e.channel)
    }

    /// B-channels carrying a call, and those under restart.
    pub fn channels_in_use(&self) -> (usize, usize) {
        let busy = self
            .channels
            .values()
            .filter(|c| matches!(c, Channel::InUse(_)))
            .count();
        let maintenance = self
            .channels
            .values()
            .filter(|c| matches!(c, Channel::Maintenance))
            .count();
        (busy, maintenance)
    }

    /// The span's B-channels.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    pub fn calls(&self) -> impl Iterator<Item = (CallRef, State, Option<u8>)> + '_ {
        self.calls.iter().map(|(&c, e)| (c, e.state, e.channel))
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let calls = self
            .calls
            .values()
            .filter_map(|e| e.timer.map(|(_, at)| at));
        calls.chain(self.restarts.values().map(|r| r.due)).min()
    }

    /// The D-channel is up: calls may be placed; active calls that waited for it go on.
    pub fn link_up(&mut self, _now: Instant) {
        self.link_up = true;
        for entry in self.calls.values_mut() {
            if matches!(entry.timer, Some((Timer::T309, _))) {
                entry.timer = None;
            }
        }
    }

    /// The D-channel is down (§5.8.8): calls not yet answered are cleared at once; answered
    /// ones keep their channel for T309 in case the link comes back.
    pub fn link_down(&mut self, now: Instant) {
        self.link_up = false;
        let refs: Vec<CallRef> = self.calls.keys().copied().collect();
        for call in refs {
            let active = self.calls[&call].state == State::Active;
            if active {
                self.set_timer(call, Timer::T309, now);
            } else {
                self.end(
                    call,
                    Cause::new(self.our_location(), cause::TEMPORARY_FAILURE),
                );
            }
        }
    }

    /// Places a call: picks a channel and sends SETUP.
    pub fn setup(&mut self, now: Instant, request: Setup) -> Result<CallRef, RequestError> {
        if !self.link_up {
            return Err(RequestError::LinkDown);
        }
        let channel = self.pick_channel(None).ok_or(RequestError::NoChannel)?;
        let call = self.new_call_ref();
        let mut setup = Message::new(call, MessageType::Setup);
        setup
            .ies
            .push(BearerCapability::speech(self.config.law).write());
        setup.ies.push(
            ChannelId {
                exclusive: self.config.exclusive,
                selection: Selection::Channel(channel),
            }
            .write(),
        );
        if let Some(display) = &request.display {
            setup.ies.push(ie::write_display(display));
        }
        if let Some(calling) = &request.calling {
            setup.ies.push(calling.write(id::CALLING_NUMBER));
        }
        setup.ies.push(request.called.write(id::CALLED_NUMBER));
        setup.push(id::SENDING_COMPLETE, Vec::new());
        self.send(&setup);
        let mut entry = Entry::new(State::CallInitiated, Some(channel));
        entry.exclusive = self.config.exclusive;
        entry.setup = Some(setup);
        self.calls.insert(call, entry);
        self.channels.insert(channel, Channel::InUse(call));
        self.set_timer(call, Timer::T303, now);
        Ok(call)
    }

    /// Incoming call: we have what we need to route it (CALL PROCEEDING).
    pub fn proceeding(&mut self, call: CallRef) -> Result<(), RequestError> {
        self.respond(
            call,
            MessageType::CallProceeding,
            State::IncomingProceeding,
            None,
        )
    }

    /// Incoming call: the callee rings; `inband`: we play ringback on the channel ourselves.
    pub fn alerting(&mut self, call: CallRef, inband: bool) -> Result<(), RequestError> {
        let progress = inband.then(|| self.inband_progress());
        self.respond(call, MessageType::Alerting, State::CallReceived, progress)
    }

    /// Incoming call: we play an announcement before any answer (PROGRESS, in-band).
    pub fn progress(&mut self, call: CallRef) -> Result<(), RequestError> {
        let entry = self.calls.get(&call).ok_or(RequestError::NoSuchCall)?;
        if !matches!(
            entry.state,
            State::CallPresent | State::IncomingProceeding | State::CallReceived
        ) {
            return Err(RequestError::WrongState);
        }
        if entry.state == State::CallPresent {
            // PROGRESS cannot be the first response: proceed first.
            self.proceeding(call)?;
        }
        let message =
            Message::new(call, MessageType::Progress).with_ie(self.inband_progress().write());
        self.send(&message);
        Ok(())
    }

    /// Incoming call: answers it.
    pub fn connect(&mut self, now: Instant, call: CallRef) -> Result<(), RequestError> {
        let next = match self.config.side {
            // The user waits for the network's CONNECT ACKNOWLEDGE (T313).
            Side::User => State::ConnectRequest,
            // The network's CONNECT is the answer: the call is active.
            Side::Network => State::Active,
        };
        self.respond(call, MessageType::Connect, next, None)?;
        match self.config.side {
            Side::User => self.set_timer(call, Timer::T313, now),
            Side::Network => self.events.push_back(Event::Connected { call }),
        }
        Ok(())
    }

    /// Sends the first or a later response to an incoming SETUP.
    fn respond(
        &mut self,
        call: CallRef,
        kind: MessageType,
        next: State,
        progress: Option<ProgressIndicator>,
    ) -> Result<(), RequestError> {
        let entry = self.calls.get_mut(&call).ok_or(RequestError::NoSuchCall)?;
        let allowed = match kind {
            MessageType::CallProceeding => entry.state == State::CallPresent,
            MessageType::Alerting => {
                matches!(entry.state, State::CallPresent | State::IncomingProceeding)
            }
            _ => matches!(
                entry.state,
                State::CallPresent | State::IncomingProceeding | State::CallReceived
            ),
        };
        if !allowed {
            return Err(RequestError::WrongState);
        }
        let mut message = Message::new(call, kind);
        if !entry.responded {
            if let Some(channel) = entry.channel {
                message.ies.push(ChannelId::exclusive(channel).write());
            }
            entry.responded = true;
        }
        if let Some(progress) = progress {
            message.ies.push(progress.write());
        }
        entry.state = next;
        self.send(&message);
        Ok(())
    }

    fn inband_progress(&self) -> ProgressIndicator {
        ProgressIndicator {
            location: self.our_location(),
            description: ie::PROGRESS_INBAND,
        }
    }

    /// Where our causes come from: the user, or the public network serving the local user.
    fn our_location(&self) -> u8 {
        match self.config.side {
            Side::User => ie::location::USER,
            Side::Network => ie::location::PUBLIC_LOCAL,
        }
    }

    /// Advances time: the calls' timers, and the restart's.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<(CallRef, Timer)> = self
            .calls
            .iter()
            .filter_map(|(&c, e)| e.timer.filter(|&(_, at)| at <= now).map(|(t, _)| (c, t)))
            .collect();
        for (call, timer) in due {
            if let Some(entry) = self.calls.get_mut(&call) {
                entry.timer = None;
            }
            self.expired(now, call, timer);
        }
        if self.restarts.values().any(|r| r.due <= now) {
            self.restart_expired(now);
        }
    }

    fn expired(&mut self, now: Instant, call: CallRef, timer: Timer) {
        let location = self.our_location();
        let Some(entry) = self.calls.get_mut(&call) else {
            return;
        };
        match timer {
            Timer::T303 if !entry.retried => {
                entry.retried = true;
                if let Some(setup) = entry.setup.clone() {
                    self.send(&setup);
                }
                self.set_timer(call, Timer::T303, now);
            }
            Timer::T303 => {
                let value = match self.config.side {
                    Side::Network => cause::NO_USER_RESPONDING,
                    Side::User => cause::RECOVERY_ON_TIMER_EXPIRY,
                };
                let cause = Cause::new(location, value);
                let message =
                    Message::new(call, MessageType::ReleaseComplete).with_ie(cause.write());
                self.send(&message);
                self.end(call, cause);
            }
            Timer::T301 => {
                self.disconnect(now, call, Cause::new(location, cause::NO_ANSWER));
            }
            Timer::T310 | Timer::T313 => {
                self.disconnect(
                    now,
                    call,
                    Cause::new(location, cause::RECOVERY_ON_TIMER_EXPIRY),
                );
            }
            Timer::T309 => {
                self.end(call, Cause::new(location, cause::DESTINATION_OUT_OF_ORDER));
            }
            Timer::T305 => {
                let cause = entry
                    .cause
                    .clone()
                    .unwrap_or(Cause::new(location, cause::NORMAL_CLEARING));
                self.release(now, call, cause);
            }
            Timer::T308 if !entry.retried => {
                entry.retried = true;
                let cause = entry
                    .cause
                    .clone()
                    .unwrap_or(Cause::new(location, cause::NORMAL_CLEARING));
                let message = Message::new(call, MessageType::Release).with_ie(cause.write());
                self.send(&message);
                self.set_timer(call, Timer::T308, now);
            }
            Timer::T308 => {
                // §5.3.4.3: the channel's state is unknown; restart it before it is used again.
                let channel = entry.channel;
                let cause = entry
                    .cause
                    .clone()
                    .unwrap_or(Cause::new(location, cause::RECOVERY_ON_TIMER_EXPIRY));
                self.end(call, cause);
                if let Some(channel) = channel {
                    self.restart_channels(now, vec![channel]);
                }
            }
        }
    }

    fn set_timer(&mut self, call: CallRef, timer: Timer, now: Instant) {
        let t = &self.config.timers;
        let after = match timer {
            Timer::T301 => t.t301,
            Timer::T303 => t.t303,
            Timer::T305 => t.t305,
            Timer::T308 => t.t308,
            Timer::T309 => t.t309,
            Timer::T310 => t.t310,
            Timer::T313 => t.t313,
        };
        if let Some(entry) = self.calls.get_mut(&call) {
            entry.timer = Some((timer, now + after));
        }
    }

    fn send(&mut self, message: &Message) {
        self.transmit.push_back(message.to_bytes());
    }

    fn problem(&mut self, what: String) {
        self.events.push_back(Event::Problem(what));
    }

    fn new_call_ref(&mut self) -> CallRef {
        loop {
            let value = self.next_value;
            self.next_value = if value >= 0x7fff { 1 } else { value + 1 };
            let call = CallRef { value, ours: true };
            if !self.calls.contains_key(&call) {
                return call;
            }
        }
    }

    /// An idle channel: `wanted` if given and idle; else the user side takes the highest, the
    /// network side the lowest, so that both ends choosing at once rarely collide.
    fn pick_channel(&self, wanted: Option<u8>) -> Option<u8> {
        if let Some(c) = wanted.filter(|c| self.channels.get(c) == Some(&Channel::Idle)) {
            return Some(c);
        }
        let mut idle = self
            .channels
            .iter()
            .filter(|(_, s)| **s == Channel::Idle)
            .map(|(&c, _)| c);
        match self.config.side {
            Side::User => idle.next_back(),
            Side::Network => idle.next(),
        }
    }

    /// A message from the far side.
    pub fn handle_message(&mut self, now: Instant, bytes: &[u8]) {
        let message = match Message::parse(bytes) {
            Ok(message) => message,
            Err(e) => {
                self.problem(format!("message ignored: {e}"));
                return;
            }
        };
        if message.call_ref.is_global() {
            self.handle_global(&message);
            return;
        }
        let call = message.call_ref;
        if !self.calls.contains_key(&call) {
            self.handle_unknown_call(now, &message);
            return;
        }
        let mut reading = Reading::new(&message);
        if let Some(missing) = reading.comprehension_required() {
            self.answer_mandatory(call, &message, cause::MANDATORY_IE_MISSING, missing);
            return;
        }
        let state = self.calls[&call].state;
        match message.kind {
            MessageType::CallProceeding | MessageType::SetupAcknowledge => {
                self.on_proceeding(now, call, &mut reading)
            }
            MessageType::Alerting => self.on_alerting(now, call, &mut reading),
            MessageType::Progress => self.on_progress(call, &mut reading),
            MessageType::Connect => self.on_connect(now, call, &mut reading),
            MessageType::ConnectAcknowledge => match state {
                State::ConnectRequest => {
                    self.stop_timer(call);
                    self.set_state(call, State::Active);
                    self.events.push_back(Event::Connected { call });
                }
                // The network side is active already: the acknowledgement is optional.
                State::Active => {}
                _ => self.not_compatible(call, &message),
            },
            MessageType::Disconnect => self.on_disconnect(now, call, &mut reading),
            MessageType::Release => self.on_release(call, &mut reading),
            MessageType::ReleaseComplete => {
                let cause = reading.optional(id::CAUSE, Cause::read);
                self.end_by_peer(call, cause);
                return;
            }
            MessageType::Status => self.on_status(call, &mut reading),
            MessageType::StatusEnquiry => {
                self.send_status(call, cause::RESPONSE_TO_STATUS_ENQUIRY, Vec::new())
            }
            MessageType::Information | MessageType::Notify => {}
            MessageType::Setup => {
                // The far side reuses a call reference it still has: §5.8.3.2 d.
                self.problem(format!(
                    "SETUP for call reference {} already in use: ignored",
                    call.value
                ));
                return;
            }
            MessageType::Restart | MessageType::RestartAcknowledge => {
                self.not_compatible(call, &message);
                return;
            }
            MessageType::Other(code) => {
                self.problem(format!("unknown message type {code:#04x}: STATUS"));
                self.send_status(call, cause::MESSAGE_TYPE_NON_EXISTENT, vec![code]);
                return;
            }
        }
        if self.calls.contains_key(&call) {
            reading.report(self, call);
        }
    }

    /// A message for a call reference we do not have (§5.8.3.2).
    fn handle_unknown_call(&mut self, now: Instant, message: &Message) {
        let call = message.call_ref;
        match message.kind {
            MessageType::Setup if !call.ours => self.on_setup(now, message),
            // A SETUP with the flag of a reply: §5.8.3.2 e, ignored.
            MessageType::Setup => self.problem("SETUP with the reply flag: ignored".into()),
            MessageType::ReleaseComplete => {}
            MessageType::StatusEnquiry => self.send_status_in(
                call,
                State::Null,
                cause::RESPONSE_TO_STATUS_ENQUIRY,
                Vec::new(),
            ),
            MessageType::Status => {
                let state = message
                    .ie(id::CALL_STATE)
                    .and_then(|ie| ie::read_call_state(&ie.body).ok());
                if state.is_some_and(|s| s != 0) {
                    self.release_complete(call, cause::MESSAGE_NOT_COMPATIBLE_WITH_STATE);
                }
            }
            _ => {
                self.problem(format!(
                    "{} for unknown call reference {}: RELEASE COMPLETE",
                    message.kind.name(),
                    call.value
                ));
                self.release_complete(call, cause::INVALID_CALL_REFERENCE);
            }
        }
    }

    fn on_setup(&mut self, now: Instant, message: &Message) {
        let call = message.call_ref;
        let mut reading = Reading::new(message);
        if let Some(missing) = reading.comprehension_required() {
            self.refuse_setup(call, cause::MANDATORY_IE_MISSING, vec![missing]);
            return;
        }
        let bearer = match reading.mandatory(id::BEARER_CAPABILITY, BearerCapability::read) {
            Ok(bearer) => bearer,
            Err((value, ie)) => return self.refuse_setup(call, value, vec![ie]),
        };
        if !matches!(bearer.transfer, Transfer::Speech | Transfer::Audio3k1) || !bearer.circuit_64k
        {
            return self.refuse_setup(call, cause::BEARER_CAPABILITY_NOT_IMPLEMENTED, Vec::new());
        }
        // The network must name a channel; a user may leave the choice to the network.
        let channel_id = match self.config.side {
            Side::User => reading.mandatory(id::CHANNEL_ID, ChannelId::read).map(Some),
            Side::Network => reading.checked_optional(id::CHANNEL_ID, ChannelId::read),
        };
        let channel_id = match channel_id {
            Ok(c) => c,
            Err((value, ie)) => return self.refuse_setup(call, value, vec![ie]),
        };
        let channel = match self.channel_for_setup(channel_id) {
            Ok(channel) => channel,
            Err(value) => return self.refuse_setup(call, value, Vec::new()),
        };
        let called = reading
            .optional(id::CALLED_NUMBER, |b| {
                PartyNumber::read(id::CALLED_NUMBER, b)
            })
            .unwrap_or_else(|| PartyNumber::new(""));
        let calling = reading.optional(id::CALLING_NUMBER, |b| {
            PartyNumber::read(id::CALLING_NUMBER, b)
        });
        let display = reading.optional(id::DISPLAY, ie::read_display);
        let _ = now;
        self.take_channel(channel, call);
        self.calls
            .insert(call, Entry::new(State::CallPresent, Some(channel)));
        self.events.push_back(Event::Incoming(Incoming {
            call,
            channel,
            called,
            calling,
            display,
            law: bearer.law.unwrap_or(Law::ALaw),
        }));
        reading.report(self, call);
    }

    /// The channel an incoming SETUP gets (§5.1.2, §5.2.3), or the cause it is refused with.
    fn channel_for_setup(&mut self, asked: Option<ChannelId>) -> Result<u8, u8> {
        let asked = asked.unwrap_or(ChannelId {
            exclusive: false,
            selection: Selection::Any,
        });
        let wanted = match asked.selection {
            Selection::Channel(c) => {
                if !self.channels.contains_key(&c) {
                    return Err(cause::CHANNEL_DOES_NOT_EXIST);
                }
                Some(c)
            }
            Selection::Any => None,
            Selection::None => return Err(cause::CHANNEL_UNACCEPTABLE),
        };
        if let Some(c) = wanted {
            match self.channels[&c] {
                Channel::Idle => return Ok(c),
                // Glare (§5.7): the network's call has the channel. On the user side our own
                // unconfirmed SETUP gives it up; the network will move or refuse that call.
                Channel::InUse(ours)
                    if self.config.side == Side::User
                        && ours.ours
                        && self
                            .calls
                            .get(&ours)
                            .is_some_and(|e| e.state == State::CallInitiated) =>
                {
                    if let Some(entry) = self.calls.get_mut(&ours) {
                        entry.channel = None;
                    }
                    return Ok(c);
                }
                _ if asked.exclusive => return Err(cause::REQUESTED_CHANNEL_NOT_AVAILABLE),
                _ => {}
            }
        }
        self.pick_channel(None).ok_or(cause::NO_CIRCUIT_AVAILABLE)
    }

    fn take_channel(&mut self, channel: u8, call: CallRef) {
        self.channels.insert(channel, Channel::InUse(call));
    }

    fn refuse_setup(&mut self, call: CallRef, value: u8, diagnostic: Vec<u8>) {
        self.problem(format!(
            "SETUP refused: cause {value} ({})",
            cause::name(value)
        ));
        let mut cause = Cause::new(self.our_location(), value);
        cause.diagnostic = diagnostic;
        let message = Message::new(call, MessageType::ReleaseComplete).with_ie(cause.write());
        self.send(&message);
    }

    fn release_complete(&mut self, call: CallRef, value: u8) {
        let cause = Cause::new(self.our_location(), value);
        let message = Message::new(call, MessageType::ReleaseComplete).with_ie(cause.write());
        self.send(&message);
    }

    /// The far side's first response may name the channel (it must, if it differs).
    fn confirm_channel(&mut self, now: Instant, call: CallRef, reading: &mut Reading) -> bool {
        let Some(named) = reading.optional(id::CHANNEL_ID, ChannelId::read) else {
            return self.calls[&call].channel.is_some() || self.lost_channel(now, call);
        };
        let entry = &self.calls[&call];
        let Selection::Channel(channel) = named.selection else {
            return entry.channel.is_some() || self.lost_channel(now, call);
        };
        if entry.channel == Some(channel) {
            return true;
        }
        let free = self.channels.get(&channel) == Some(&Channel::Idle);
        if entry.exclusive && entry.channel.is_some() || !free {
            let cause = Cause::new(self.our_location(), cause::CHANNEL_UNACCEPTABLE);
            self.problem(format!(
                "channel {channel} given for call {} is unacceptable: clearing",
                call.value
            ));
            self.disconnect(now, call, cause);
            return false;
        }
        if let Some(old) = entry.channel {
            self.channels.insert(old, Channel::Idle);
        }
        self.take_channel(channel, call);
        if let Some(entry) = self.calls.get_mut(&call) {
            entry.channel = Some(channel);
        }
        true
    }

    /// Our call lost its channel to the network's in glare, and the network named none.
    fn lost_channel(&mut self, now: Instant, call: CallRef) -> bool {
        let cause = Cause::new(self.our_location(), cause::REQUESTED_CHANNEL_NOT_AVAILABLE);
        self.disconnect(now, call, cause);
        false
    }

    fn on_proceeding(&mut self, now: Instant, call: CallRef, reading: &mut Reading) {
        if self.calls[&call].state != State::CallInitiated {
            return self.not_compatible(call, reading.message());
        }
        if !self.confirm_channel(now, call, reading) {
            return;
        }
        self.set_state(call, State::OutgoingProceeding);
        self.set_timer(call, Timer::T310, now);
        let channel = self.calls[&call].channel.unwrap_or_default();
        self.events.push_back(Event::Proceeding { call, channel });
    }

    fn on_alerting(&mut self, now: Instant, call: CallRef, reading: &mut Reading) {
        let state = self.calls[&call].state;
        if !matches!(state, State::CallInitiated | State::OutgoingProceeding) {
            return self.not_compatible(call, reading.message());
        }
        if state == State::CallInitiated {
            if !self.confirm_channel(now, call, reading) {
                return;
            }
            let channel = self.calls[&call].channel.unwrap_or_default();
            self.events.push_back(Event::Proceeding { call, channel });
        }
        let inband = reading
            .optional(id::PROGRESS_INDICATOR, ProgressIndicator::read)
            .is_some_and(|p| p.inband());
        self.set_state(call, State::CallDelivered);
        match self.config.side {
            Side::Network => self.set_timer(call, Timer::T301, now),
            Side::User => self.stop_timer(call),
        }
        self.events.push_back(Event::Alerting { call, inband });
    }

    fn on_progress(&mut self, call: CallRef, reading: &mut Reading) {
        let state = self.calls[&call].state;
        if !matches!(
            state,
            State::CallInitiated | State::OutgoingProceeding | State::CallDelivered
        ) {
            return self.not_compatible(call, reading.message());
        }
        let progress = match reading.mandatory(id::PROGRESS_INDICATOR, ProgressIndicator::read) {
            Ok(p) => p,
            Err((value, ie)) => {
                return self.answer_mandatory(call, reading.message(), value, ie);
            }
        };
        if progress.inband() && state == State::OutgoingProceeding {
            // Something is heard: the far side is not silent, so T310 no longer applies.
            self.stop_timer(call);
        }
        self.events.push_back(Event::Progress {
            call,
            inband: progress.inband(),
        });
    }

    fn on_connect(&mut self, now: Instant, call: CallRef, reading: &mut Reading) {
        let state = self.calls[&call].state;
        if !matches!(
            state,
            State::CallInitiated | State::OutgoingProceeding | State::CallDelivered
        ) {
            return self.not_compatible(call, reading.message());
        }
        if state == State::CallInitiated && !self.confirm_channel(now, call, reading) {
            return;
        }
        if state == State::CallInitiated {
            let channel = self.calls[&call].channel.unwrap_or_default();
            self.events.push_back(Event::Proceeding { call, channel });
        }
        self.stop_timer(call);
        self.set_state(call, State::Active);
        self.send(&Message::new(call, MessageType::ConnectAcknowledge));
        self.events.push_back(Event::Connected { call });
    }

    fn on_status(&mut self, call: CallRef, reading: &mut Reading) {
        let Ok(their_state) = reading.mandatory(id::CALL_STATE, ie::read_call_state) else {
            return;
        };
        let cause = reading
            .optional(id::CAUSE, Cause::read)
            .unwrap_or(Cause::new(ie::location::USER, cause::NORMAL_UNSPECIFIED));
        if their_state == 0 {
            // §5.8.11: the far side has no such call: ours is over too.
            self.problem(format!(
                "STATUS says call {} is over at the far side (cause {}): released",
                call.value, cause.value
            ));
            self.end(call, cause);
        }
    }

    fn set_state(&mut self, call: CallRef, state: State) {
        if let Some(entry) = self.calls.get_mut(&call) {
            entry.state = state;
        }
    }

    fn stop_timer(&mut self, call: CallRef) {
        if let Some(entry) = self.calls.get_mut(&call) {
            entry.timer = None;
        }
    }

    /// A message that the call's state does not allow (§5.8.4): STATUS, cause 101.
    fn not_compatible(&mut self, call: CallRef, message: &Message) {
        self.problem(format!(
            "{} not expected in call state {}: STATUS",
            message.kind.name(),
            self.calls.get(&call).map_or(0, |e| e.state.code())
        ));
        self.send_status(
            call,
            cause::MESSAGE_NOT_COMPATIBLE_WITH_STATE,
            vec![message.kind.code()],
        );
    }

    /// A mandatory element missing or unreadable in a message other than SETUP (§5.8.6):
    /// nothing is done with the message, and STATUS says why.
    fn answer_mandatory(&mut self, call: CallRef, message: &Message, value: u8, ie: u8) {
        self.problem(format!(
            "{} with {} {}: STATUS cause {value}",
            message.kind.name(),
            if value == cause::MANDATORY_IE_MISSING {
                "no"
            } else {
                "an unreadable"
            },
            id::name(ie)
        ));
        self.send_status(call, value, vec![ie]);
    }

    fn send_status(&mut self, call: CallRef, value: u8, diagnostic: Vec<u8>) {
        let state = self.calls.get(&call).map_or(State::Null, |e| e.state);
        self.send_status_in(call, state, value, diagnostic);
    }

    fn send_status_in(&mut self, call: CallRef, state: State, value: u8, diagnostic: Vec<u8>) {
        let mut cause = Cause::new(self.our_location(), value);
        cause.diagnostic = diagnostic;
        let message = Message::new(call, MessageType::Status)
            .with_ie(cause.write())
            .with_ie(ie::write_call_state(state.code()));
        self.send(&message);
    }
}
