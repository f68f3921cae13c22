//! A call answered by the local IVR, as a sans-IO core: the carrier leg's audio and digits go
//! into the menu engine, its prompts come back out as audio, frame by frame.
//!
//! The shell calls [`IvrCall::tick`] once per packetisation interval; everything else (IVR
//! timeouts, RTCP reports) is checked at those ticks, which keeps one timer per call.
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::call::leg::{CarrierLeg, MediaTransmit};
use crate::ivr::{IvrConfig, IvrOutput, IvrSession};
use crate::media::prompt::{Prompt, PromptPlayer};

/// Prompts by name, converted once at startup.
pub type PromptLibrary = HashMap<String, Prompt>;

/// What the call wants from the SIP side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallAction {
    Hangup,
    /// The carrier sent no RTP for the configured time: it is gone without a BYE.
    RtpTimeout,
    /// A named destination from the IVR; later issues route these (queue, voicemail, PSTN).
    Transfer {
        target: String,
        digits: String,
    },
}

pub struct IvrCall {
    pub leg: CarrierLeg,
    ivr: IvrSession,
    player: PromptPlayer,
    prompts: Arc<PromptLibrary>,
    frame: Vec<i16>,
    was_playing: bool,
    actions: VecDeque<CallAction>,
    digits_heard: String,
    rtp_timeout: Option<Duration>,
}

impl IvrCall {
    pub fn new(
        now: Instant,
        leg: CarrierLeg,
        ivr: Arc<IvrConfig>,
        start_menu: &str,
        prompts: Arc<PromptLibrary>,
        rtp_timeout: Option<Duration>,
    ) -> Result<Self, crate::ivr::IvrError> {
        let samples = leg.samples_per_frame();
        let mut call = IvrCall {
            ivr: IvrSession::new(ivr, start_menu, now)?,
            player: PromptPlayer::new(samples),
            frame: vec![0; samples],
            leg,
            prompts,
            was_playing: false,
            actions: VecDeque::new(),
            digits_heard: String::new(),
            rtp_timeout,
        };
        call.drive_ivr(now);
        Ok(call)
    }

    /// One packetisation interval: send the next prompt frame, play out what the carrier sent,
    /// feed detected digits and elapsed time to the menu engine.
    pub fn tick(&mut self, now: Instant) {
        let playing = self.player.next_frame(&mut self.frame);
        self.leg.tick(now, &self.frame);
        if self.was_playing && !playing {
            self.ivr.on_playback_finished(now);
        }
        self.was_playing = playing;
        while let Some(d) = self.leg.poll_digit() {
            tracing::debug!(digit = %d, "dtmf");
            self.digits_heard.push(d);
            self.ivr.on_digit(now, d);
        }
        if self.ivr.poll_timeout().is_some_and(|t| t <= now) {
            self.ivr.handle_timeout(now);
        }
        self.leg.handle_timeout(now);
        self.drive_ivr(now);
        if self.leg.rtp_timed_out(now, self.rtp_timeout) {
            self.actions.push_back(CallAction::RtpTimeout);
        }
    }

    fn drive_ivr(&mut self, now: Instant) {
        while let Some(out) = self.ivr.poll_output() {
            match out {
                IvrOutput::Play(names) => {
                    for name in &names {
                        match self.prompts.get(name) {
                            Some(p) => self.player.enqueue(p.clone()),
                            None => tracing::warn!(prompt = %name, "prompt not loaded: skipped"),
                        }
                    }
                    if !self.player.is_playing() && !self.was_playing {
                        // Nothing playable: the engine must still hear that playback ended.
                        self.ivr.on_playback_finished(now);
                    }
                }
                IvrOutput::StopPlayback => {
                    self.player.clear();
                    self.was_playing = false;
                }
                IvrOutput::Hangup => self.actions.push_back(CallAction::Hangup),
                IvrOutput::Transfer { target, digits } => self
                    .actions
                    .push_back(CallAction::Transfer { target, digits }),
            }
        }
    }

    pub fn poll_action(&mut self) -> Option<CallAction> {
        self.actions.pop_front()
    }

    /// The carrier leg, for the next phase of the call (a queue, an agent).
    pub fn into_leg(self) -> CarrierLeg {
        self.leg
    }

    pub fn poll_transmit(&mut self) -> Option<MediaTransmit> {
        self.leg.poll_transmit()
    }

    /// Every digit the caller pressed, in order (for the call record).
    pub fn digits_heard(&self) -> &str {
        &self.digits_heard
    }

    pub fn current_menu(&self) -> &str {
        self.ivr.current_menu()
    }
}

/// Loads every prompt the IVR can play. Errors name the prompt file.
pub fn load_prompts(
    config: &crate::config::Config,
) -> Result<PromptLibrary, crate::media::prompt::PromptError> {
    let mut names = config.ivr.prompt_names();
    for queue in config.queues.values() {
        names.insert(queue.moh.clone());
        names.extend(crate::queue::announcement_prompt_names(queue));
        if let crate::ivr::Action::Hangup {
            prompt: Some(prompt),
        } = &queue.overflow
        {
            names.insert(prompt.clone());
        }
    }
    if !config.queues.is_empty() {
        // Said when a caller cannot be queued at all.
        names.insert("queue-unavailable".to_string());
    }
    let mut lib = PromptLibrary::new();
    for name in names {
        lib.insert(name.clone(), Prompt::load(&config.prompt_path(&name))?);
    }
    Ok(lib)
}

#[cfg(test)]
mod tests;
