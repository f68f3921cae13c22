//! A caller waiting in a queue, as a sans-IO core: music on hold looped, queue announcements
//! played over it (the music resumes where it was), and at the end possibly a goodbye prompt
//! before hanging up (a queue's overflow).
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::call::ivr_call::{CallAction, PromptLibrary};
use crate::call::leg::{CarrierLeg, MediaTransmit};
use crate::media::prompt::{Prompt, PromptPlayer};

/// A music-on-hold WAV played in a loop, resuming where it stopped.
#[derive(Debug, Clone, Default)]
pub struct MusicOnHold {
    music: Option<Prompt>,
    position: usize,
}

impl MusicOnHold {
    /// The prompt named `name`; silence if it is not loaded.
    pub fn new(prompts: &PromptLibrary, name: &str) -> Self {
        MusicOnHold {
            music: prompts.get(name).cloned(),
            position: 0,
        }
    }

    pub fn fill(&mut self, frame: &mut [i16]) {
        let samples = self.music.as_ref().map(|m| m.samples()).unwrap_or(&[]);
        if samples.is_empty() {
            frame.fill(0);
            return;
        }
        for s in frame.iter_mut() {
            *s = samples[self.position];
            self.position = (self.position + 1) % samples.len();
        }
    }
}

pub struct WaitingCall {
    pub leg: CarrierLeg,
    moh: MusicOnHold,
    announcements: PromptPlayer,
    prompts: Arc<PromptLibrary>,
    frame: Vec<i16>,
    /// Set by [`WaitingCall::goodbye`]: hang up once the announcements have played.
    hang_up_after: bool,
    actions: VecDeque<CallAction>,
    rtp_timeout: Option<Duration>,
}

impl WaitingCall {
    pub fn new(
        leg: CarrierLeg,
        moh: &str,
        prompts: Arc<PromptLibrary>,
        rtp_timeout: Option<Duration>,
    ) -> Self {
        let samples = leg.samples_per_frame();
        WaitingCall {
            moh: MusicOnHold::new(&prompts, moh),
            announcements: PromptPlayer::new(samples),
            frame: vec![0; samples],
            leg,
            prompts,
            hang_up_after: false,
            actions: VecDeque::new(),
            rtp_timeout,
        }
    }

    pub fn into_leg(self) -> CarrierLeg {
        self.leg
    }

    /// Plays `names` over the music; the music picks up where it stopped.
    pub fn announce(&mut self, names: &[String]) {
        for name in names {
            match self.prompts.get(name) {
                Some(p) => self.announcements.enqueue(p.clone()),
                None => tracing::warn!(prompt = %name, "announcement prompt not loaded"),
            }
        }
    }

    /// Stops the music, plays `prompt` (if any) and then asks to hang up.
    pub fn goodbye(&mut self, prompt: Option<&str>) {
        self.announcements.clear();
        self.moh = MusicOnHold::default();
        if let Some(p) = prompt {
            self.announce(&[p.to_string()]);
        }
        self.hang_up_after = true;
    }

    pub fn tick(&mut self, now: Instant) {
        if !self.announcements.next_frame(&mut self.frame) {
            if self.hang_up_after {
                self.hang_up_after = false;
                self.actions.push_back(CallAction::Hangup);
            }
            self.moh.fill(&mut self.frame);
        }
        self.leg.tick(now, &self.frame);
        while self.leg.poll_digit().is_some() {}
        self.leg.handle_timeout(now);
        if self.leg.rtp_timed_out(now, self.rtp_timeout) {
            self.actions.push_back(CallAction::RtpTimeout);
        }
    }

    pub fn poll_action(&mut self) -> Option<CallAction> {
        self.actions.pop_front()
    }

    pub fn poll_transmit(&mut self) -> Option<MediaTransmit> {
        self.leg.poll_transmit()
    }
}
