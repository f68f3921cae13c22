//! Transfers to an external number through the gateway, for trunks that take no REFER and for
//! every attended transfer: a second carrier leg (the target), placed like an agent's call.
//! While it rings and while the agent consults, the agent's media goes to the target and the
//! caller hears music. Then the caller is joined to the target — at the target's answer
//! (blind) or when the agent completes the transfer (attended) — and the agent's part is over.
//! Until then the agent can take the caller back, and a target that fails or hangs up gives
//! the caller back to the agent by itself.
use std::time::Instant;

use super::{Call, Output, Phase, ToCenter};
use crate::call::leg::{Leg, LegEnd, Progress};
use crate::events::{CallEvent, CallId, EndCause, Side, Unanswered};
use crate::media::tone::ToneGenerator;
use crate::queue::center::outbound::PlaceCall;

/// The target's leg and how far it got.
pub(super) struct Onward<L> {
    id: CallId,
    /// `None` until the shell has made it (resolved the proxy, bound RTP).
    leg: Option<L>,
    number: String,
    attended: bool,
    give_up_at: Instant,
    answered: bool,
    early_media: bool,
    ringback: Option<ToneGenerator>,
    tone: Vec<i16>,
    /// Joined: what each side said in the last frame, for the other.
    from_caller: Vec<i16>,
    from_target: Vec<i16>,
    /// The center has been told it is over; the leg stays only to finish hanging up.
    over: bool,
    /// The leg reported its end.
    leg_ended: bool,
}

impl<L: Leg> Call<L> {
    /// The agent transfers its caller to `number` by the carrier (REFER).
    pub(super) fn hand_over(&mut self, now: Instant, number: &str, agent: &str) {
        let asked = matches!(self.phase, Phase::Agent(_))
            && self.onward.as_ref().is_none_or(|o| o.over)
            && self.leg.hand_over(now, number, agent);
        if asked {
            self.handing_over = Some(number.to_owned());
        } else {
            self.transfer_failed("the call is not in a state to transfer".into());
        }
    }

    /// The agent transfers its caller to an external number through a leg of our own.
    pub(super) fn transfer_out(&mut self, now: Instant, place: Box<PlaceCall>, attended: bool) {
        let number = place.plan.number.to_string();
        let talking = matches!(self.phase, Phase::Agent(_));
        if !talking || self.onward.as_ref().is_some_and(|o| !o.over) {
            return self.transfer_failed("the call is not in a state to transfer".into());
        }
        let Phase::Agent(mut bridge) = std::mem::replace(&mut self.phase, Phase::Ringing) else {
            return;
        };
        // The target hears the agent, never the hold music.
        bridge.set_hold(now, false);
        let queue = self.in_queue.clone().unwrap_or_default();
        let caller = self.waiting(self.music_of(&queue));
        self.phase = Phase::Consulting { bridge, caller };
        let sip_call_id = format!(
            "{}@trunkgate",
            rand::distributions::DistString::sample_string(
                &rand::distributions::Alphanumeric,
                &mut self.rng,
                24
            )
        );
        self.events.push_back(CallEvent::TransferDialled {
            by: place.agent.clone(),
            to: number.clone(),
            trunk: place.plan.trunk.clone(),
            sip_call_id: sip_call_id.clone(),
            attended,
        });
        self.onward = Some(Onward {
            id: place.call,
            leg: None,
            number,
            attended,
            give_up_at: now + place.ring_timeout,
            answered: false,
            early_media: false,
            ringback: None,
            tone: Vec::new(),
            from_caller: Vec::new(),
            from_target: Vec::new(),
            over: false,
            leg_ended: false,
        });
        self.outputs
            .push_back(Output::PlaceOnward { place, sip_call_id });
    }

    /// The shell made the target's leg; `Err` gives it back if the transfer is no longer
    /// wanted (nothing has been sent on it yet).
    pub fn onward_ready(&mut self, leg: L) -> Result<(), L> {
        match &mut self.onward {
            Some(o) if !o.over && o.leg.is_none() => {
                o.leg = Some(leg);
                Ok(())
            }
            _ => Err(leg),
        }
    }

    /// The shell could not make the target's leg (the proxy does not resolve, no RTP port).
    pub fn onward_unreachable(&mut self, now: Instant) {
        self.onward_over(now, Some(Unanswered::Unreachable));
    }

    /// The target's leg, for the shell to carry out its signals and packets.
    pub fn onward_mut(&mut self) -> Option<&mut L> {
        self.onward.as_mut().and_then(|o| o.leg.as_mut())
    }

    /// Input for the target's leg (SIP events, RTP), then what follows from it.
    pub fn handle_onward(&mut self, now: Instant, f: impl FnOnce(&mut L, Instant)) {
        let Some(leg) = self.onward_mut() else {
            return;
        };
        f(leg, now);
        self.check_onward(now);
    }

    /// The agent completes an attended transfer: the caller and the target talk.
    pub(super) fn complete_transfer(&mut self) {
        match &self.onward {
            Some(o) if o.answered && !o.over => self.join(),
            _ => self.transfer_failed("the target has not answered".into()),
        }
    }

    /// The agent takes the caller back: the target's leg is hung up.
    pub(super) fn return_to_caller(&mut self, now: Instant) {
        let unanswered = match &self.onward {
            Some(o) if !o.over => (!o.answered).then_some(Unanswered::Cancelled),
            _ => return,
        };
        self.onward_over(now, unanswered);
    }

    /// One frame while the agent consults (or waits on) the target: music to the caller, the
    /// agent to the target once it answered, the target's audio (or our ringback) to the agent.
    pub(super) fn consult_frame(&mut self, now: Instant, samples: usize) {
        let (Phase::Consulting { bridge, caller }, Some(o)) = (&mut self.phase, &mut self.onward)
        else {
            return;
        };
        super::exchange(&mut self.leg, &mut self.recording, now, caller.next_frame());
        let agent = bridge.to_caller(now, samples);
        let heard = match &mut o.leg {
            Some(leg) if o.answered => leg.exchange(now, agent),
            Some(leg) => leg.exchange(now, &self.silence),
            None => &self.silence[..],
        };
        let heard = if o.answered || o.early_media {
            heard
        } else {
            o.tone.resize(samples, 0);
            match &mut o.ringback {
                Some(tone) => tone.fill(&mut o.tone),
                None => o.tone.fill(0),
            }
            &o.tone[..]
        };
        if let Some(packet) = bridge.from_caller(heard) {
            self.outputs.push_back(Output::ToAgent(packet.to_vec()));
        }
        if let Some(leg) = &mut o.leg {
            leg.handle_timeout(now);
            // The target's keys reach the agent in its audio; nobody else needs them.
            while leg.poll_digit().is_some() {}
        }
    }

    /// One frame with the caller joined to the target: each hears what the other said in the
    /// frame before.
    pub(super) fn joined_frame(&mut self, now: Instant, samples: usize) {
        let Some(o) = &mut self.onward else {
            super::exchange(&mut self.leg, &mut self.recording, now, &self.silence);
            return;
        };
        o.from_target.resize(samples, 0);
        let heard = super::exchange(&mut self.leg, &mut self.recording, now, &o.from_target);
        o.from_caller.clear();
        o.from_caller.extend_from_slice(heard);
        o.from_caller.resize(samples, 0);
        if let Some(leg) = &mut o.leg {
            let heard = leg.exchange(now, &o.from_caller);
            o.from_target.clear();
            o.from_target.extend_from_slice(heard);
            leg.handle_timeout(now);
            let mut keys = String::new();
            while let Some(digit) = leg.poll_digit() {
                keys.push(digit);
            }
            if !keys.is_empty() {
                if let Err(e) = self.leg.send_digits(&keys) {
                    tracing::info!(digits = %keys, error = %e, "target's keys not passed on");
                }
            }
        }
    }

    /// A key the caller pressed while joined: the target hears it as a key.
    pub(super) fn caller_key_to_target(&mut self, digit: char) {
        let Some(leg) = self.onward_mut() else {
            return;
        };
        if let Err(e) = leg.send_digits(&digit.to_string()) {
            tracing::info!(%digit, error = %e, "caller's key not passed on");
        }
    }

    /// Keys the agent pressed while consulting: for the target (its IVR, say).
    pub(super) fn agent_keys_to_target(&mut self, digits: &str) -> bool {
        match self.onward_mut() {
            Some(leg) => leg.send_digits(digits).is_ok(),
            None => false,
        }
    }

    /// After every frame and every input of the target's: its progress, its end, its timers.
    pub(super) fn check_onward(&mut self, now: Instant) {
        let Some(o) = &mut self.onward else {
            return;
        };
        let Some(leg) = &mut o.leg else {
            return;
        };
        let mut progress = Vec::new();
        while let Some(p) = leg.poll_progress() {
            progress.push(p);
        }
        let end = leg.poll_end();
        let silent_for = leg.silent_for(now);
        for p in progress {
            self.onward_progress(p);
        }
        let Some(o) = &mut self.onward else {
            return;
        };
        if o.over {
            o.leg_ended |= end.is_some();
            return;
        }
        if let Some(end) = end {
            o.leg_ended = true;
            let unanswered = match end {
                LegEnd::Unanswered { status } if !o.answered => {
                    Some(Unanswered::from_status(status))
                }
                _ if !o.answered => Some(Unanswered::Unreachable),
                _ => None,
            };
            return self.onward_over(now, unanswered);
        }
        if !o.answered && now >= o.give_up_at {
            return self.onward_over(now, Some(Unanswered::NoAnswer));
        }
        let timeout = self.config.config.media.rtp_timeout();
        let expect_media = o.answered || o.early_media;
        if expect_media && timeout.is_some_and(|t| silent_for >= t) {
            tracing::info!("no rtp from the transfer target: hanging it up");
            self.onward_over(now, None);
        }
    }

    fn onward_progress(&mut self, progress: Progress) {
        let Some(o) = &mut self.onward else {
            return;
        };
        if o.over {
            return;
        }
        match progress {
            Progress::Ringing => {
                if o.ringback.is_none() && !o.early_media {
                    o.ringback = Some(ToneGenerator::ringback());
                }
            }
            Progress::EarlyMedia => {
                o.early_media = true;
                o.ringback = None;
            }
            Progress::Answered => o.answered = true,
        }
        let join = progress == Progress::Answered && !o.attended;
        self.outputs
            .push_back(Output::ToCenter(ToCenter::TransferProgress(progress)));
        if join {
            self.join();
        }
    }

    /// The caller and the target talk; the agent's part is over.
    fn join(&mut self) {
        let Phase::Consulting { bridge, .. } = std::mem::replace(&mut self.phase, Phase::Joined)
        else {
            return;
        };
        self.add_agent_quality(bridge.quality());
        // The center lets the call go now: the call is no longer in any queue.
        self.in_queue = None;
        self.goodbye_cause = EndCause::TargetHungUp;
        self.outputs.push_back(Output::ToCenter(ToCenter::Joined));
    }

    /// The target's leg is over (or given up): the center hears it once. Before the join the
    /// caller goes back to the agent; after it, the call ends.
    fn onward_over(&mut self, now: Instant, unanswered: Option<Unanswered>) {
        self.onward_done(now, unanswered, false);
    }

    fn onward_done(&mut self, now: Instant, unanswered: Option<Unanswered>, call_ending: bool) {
        let Some(o) = &mut self.onward else {
            return;
        };
        if o.over {
            return;
        }
        o.over = true;
        if !o.leg_ended {
            if let Some(leg) = &mut o.leg {
                leg.hang_up(now);
            }
        }
        self.outputs
            .push_back(Output::ToCenter(ToCenter::OnwardEnded {
                onward: o.id,
                unanswered,
            }));
        self.events.push_back(CallEvent::TransferLegEnded {
            to: o.number.clone(),
            unanswered,
        });
        match std::mem::replace(&mut self.phase, Phase::Ringing) {
            Phase::Consulting { bridge, .. } => self.phase = Phase::Agent(bridge),
            Phase::Joined => {
                self.phase = Phase::Joined;
                if !call_ending {
                    self.end(now, Side::Target, EndCause::TargetHungUp);
                }
            }
            other => self.phase = other,
        }
    }

    /// The call ends: the target's leg with it.
    pub(super) fn end_onward(&mut self, now: Instant) {
        let unanswered = match &self.onward {
            Some(o) if !o.over => (!o.answered).then_some(Unanswered::Cancelled),
            _ => return,
        };
        self.onward_done(now, unanswered, true);
    }

    /// Leaves consulting for plain waiting (the agent's link is gone): the target is hung up.
    pub(super) fn consult_to_waiting(&mut self, now: Instant) {
        if let Phase::Consulting { .. } = self.phase {
            self.end_onward(now);
        }
    }

    fn transfer_failed(&mut self, reason: String) {
        self.outputs
            .push_back(Output::ToCenter(ToCenter::TransferFailed { reason }));
    }
}
