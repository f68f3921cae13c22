//! The IVR as a stage of a call, sans-IO: the caller's keys go into the menu engine, its prompts
//! come back out as audio, frame by frame. The call core owns the carrier leg and calls
//! [`IvrStage::next_frame`] once per frame period, then hands over the keys the leg heard.
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crate::ivr::{IvrConfig, IvrError, IvrOutput, IvrSession};
use crate::media::prompt::{PromptLibrary, PromptPlayer};
use crate::route::Destination;

/// What the IVR decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IvrDone {
    /// Hang up (the goodbye prompt has been heard).
    Hangup,
    /// Send the caller on; `digits` are the keys that led there.
    Transfer { target: Destination, digits: String },
}

pub struct IvrStage {
    ivr: IvrSession,
    player: PromptPlayer,
    prompts: Arc<PromptLibrary>,
    frame: Vec<i16>,
    was_playing: bool,
    done: VecDeque<IvrDone>,
    digits_heard: String,
    menus_entered: VecDeque<String>,
    menu: String,
}

impl IvrStage {
    pub fn new(
        now: Instant,
        ivr: Arc<IvrConfig>,
        start_menu: &str,
        prompts: Arc<PromptLibrary>,
        samples_per_frame: usize,
    ) -> Result<Self, IvrError> {
        let mut stage = IvrStage {
            ivr: IvrSession::new(ivr, start_menu, now)?,
            player: PromptPlayer::new(samples_per_frame),
            frame: vec![0; samples_per_frame],
            prompts,
            was_playing: false,
            done: VecDeque::new(),
            digits_heard: String::new(),
            menus_entered: VecDeque::from([start_menu.to_string()]),
            menu: start_menu.to_string(),
        };
        stage.drive(now);
        Ok(stage)
    }

    /// The next prompt frame for the caller (silence between prompts).
    pub fn next_frame(&mut self, now: Instant) -> &[i16] {
        let playing = self.player.next_frame(&mut self.frame);
        if self.was_playing && !playing {
            self.ivr.on_playback_finished(now);
        }
        self.was_playing = playing;
        &self.frame
    }

    /// A key the caller pressed.
    pub fn on_digit(&mut self, now: Instant, digit: char) {
        self.digits_heard.push(digit);
        self.ivr.on_digit(now, digit);
    }

    /// After each frame: the menu's timers, and what the engine asked for.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.ivr.poll_timeout().is_some_and(|t| t <= now) {
            self.ivr.handle_timeout(now);
        }
        self.drive(now);
    }

    fn drive(&mut self, now: Instant) {
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
                IvrOutput::Hangup => self.done.push_back(IvrDone::Hangup),
                IvrOutput::Transfer { target, digits } => {
                    self.done.push_back(IvrDone::Transfer { target, digits })
                }
            }
        }
        let menu = self.ivr.current_menu();
        if menu != self.menu {
            self.menu = menu.to_string();
            self.menus_entered.push_back(self.menu.clone());
        }
    }

    /// What the IVR decided, once.
    pub fn poll_done(&mut self) -> Option<IvrDone> {
        self.done.pop_front()
    }

    /// A menu the caller entered (the first one, then each change).
    pub fn poll_menu_entered(&mut self) -> Option<String> {
        self.menus_entered.pop_front()
    }

    /// Every key the caller pressed, in order.
    pub fn digits_heard(&self) -> &str {
        &self.digits_heard
    }

    pub fn current_menu(&self) -> &str {
        self.ivr.current_menu()
    }
}
