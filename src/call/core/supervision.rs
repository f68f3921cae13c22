//! A supervisor in the call: the many-party bridge. The supervisor's audio comes and goes like
//! the agent's (Opus over its own flow, a jitter buffer, concealment), and a [`Mixer`] decides
//! each frame who hears whom:
//!
//! | mode | the supervisor hears | the agent hears | the caller hears |
//! |---|---|---|---|
//! | monitor | caller + agent | caller | agent |
//! | whisper | caller + agent | caller + supervisor | agent |
//! | barge | caller + agent | caller + supervisor | agent + supervisor |
//!
//! Changing the mode changes only the mixer; leaving drops the supervisor's party and the call
//! is two-party again, its media untouched. The recording's right channel is what the caller
//! heard, so a barging supervisor is in it and a whispering one is not.
use std::collections::VecDeque;
use std::time::Instant;

use super::recording::{exchange, Recording};
use super::{Call, Output};
use crate::agent::protocol::SuperviseMode;
use crate::call::bridge::Bridge;
use crate::call::leg::Leg;
use crate::media::mixer::{Mixer, PartyId};
use crate::queue::waiting::MusicOnHold;

pub(super) struct Conference {
    supervisor: String,
    mode: SuperviseMode,
    /// The supervisor's audio both ways. Its "music" is silence: a supervisor whose audio
    /// stops is simply not heard.
    bridge: Box<Bridge>,
    mixer: Mixer,
    caller: PartyId,
    agent: PartyId,
    party: PartyId,
}

impl Conference {
    fn set_mode(&mut self, mode: SuperviseMode) {
        self.mode = mode;
        let m = &mut self.mixer;
        m.set_hears(self.party, self.caller, true);
        m.set_hears(self.party, self.agent, true);
        m.set_hears(self.caller, self.agent, true);
        m.set_hears(self.agent, self.caller, true);
        m.set_hears(self.agent, self.party, mode != SuperviseMode::Monitor);
        m.set_hears(self.caller, self.party, mode == SuperviseMode::Barge);
    }

    pub(super) fn mode(&self) -> SuperviseMode {
        self.mode
    }
}

impl<L: Leg> Call<L> {
    /// `supervisor` joins (or, already in, changes its mode).
    pub(super) fn supervise(&mut self, now: Instant, supervisor: String, mode: SuperviseMode) {
        if let Some(c) = &mut self.conference {
            if c.supervisor == supervisor {
                c.set_mode(mode);
                return;
            }
        }
        let cfg = &self.config.config;
        let jitter = (cfg.media.jitter_min(), cfg.media.jitter_max());
        let bridge = match Bridge::new(
            now,
            &cfg.agents.opus,
            jitter,
            MusicOnHold::default(),
            &mut self.rng,
        ) {
            Ok(bridge) => bridge,
            // Only a config libopus refuses gets here; validation prevents it.
            Err(e) => return tracing::error!(error = %e, "cannot add the supervisor"),
        };
        let mut mixer = Mixer::new(self.leg.samples_per_frame());
        let (caller, agent, party) = (mixer.add(), mixer.add(), mixer.add());
        let mut conference = Conference {
            supervisor,
            mode,
            bridge: Box::new(bridge),
            mixer,
            caller,
            agent,
            party,
        };
        conference.set_mode(mode);
        self.conference = Some(conference);
    }

    /// The supervisor left: a two-party call again.
    pub(super) fn unsupervise(&mut self) {
        self.conference = None;
    }

    /// An RTP packet from the supervisor.
    pub fn handle_supervisor_media(&mut self, now: Instant, rtp: &[u8]) {
        if let Some(c) = &mut self.conference {
            c.bridge.handle_agent_media(now, rtp);
        }
    }

    /// How the supervisor takes part now, if one is in the call.
    pub fn supervision(&self) -> Option<SuperviseMode> {
        self.conference.as_ref().map(Conference::mode)
    }
}

/// One frame of a talking call with a supervisor in it: each party hears the mix the mode
/// gives it.
pub(super) fn frame<L: Leg>(
    c: &mut Conference,
    agent: &mut Bridge,
    leg: &mut L,
    recording: &mut Option<Recording>,
    outputs: &mut VecDeque<Output>,
    now: Instant,
    samples: usize,
) {
    c.mixer.put(c.agent, agent.to_caller(now, samples));
    c.mixer.put(c.party, c.bridge.to_caller(now, samples));
    let to_caller = c.mixer.mix_for(c.caller);
    let heard = exchange(leg, recording, now, to_caller);
    c.mixer.put(c.caller, heard);
    if let Some(packet) = agent.from_caller(c.mixer.mix_for(c.agent)) {
        outputs.push_back(Output::ToAgent(packet.to_vec()));
    }
    if let Some(packet) = c.bridge.from_caller(c.mixer.mix_for(c.party)) {
        outputs.push_back(Output::ToSupervisor(packet.to_vec()));
    }
    if let Some(packet) = c.bridge.feedback(now) {
        outputs.push_back(Output::ToSupervisor(packet.to_vec()));
    }
    // The supervisor's link is its own business: its stalls and quality are not the call's.
    while c.bridge.poll_stall_change().is_some() {}
    while c.bridge.poll_link(now).is_some() {}
    c.mixer.end_period();
}
