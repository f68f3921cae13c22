//! A caller waiting in a queue, as a sans-IO stage of the call: music on hold looped, queue
//! announcements played over it (the music resumes where it was), and at the end possibly a
//! goodbye prompt before hanging up (a queue's overflow, a queue that would not take the call).
use std::sync::Arc;

use crate::media::prompt::{Prompt, PromptLibrary, PromptPlayer};

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

pub struct WaitingStage {
    moh: MusicOnHold,
    /// A notice the caller must hear whole (the call may be recorded): it goes on after an
    /// agent answers, see [`WaitingStage::take_notice`].
    notice: PromptPlayer,
    announcements: PromptPlayer,
    prompts: Arc<PromptLibrary>,
    frame: Vec<i16>,
    /// Set by [`WaitingStage::goodbye`]: hang up once the announcements have played.
    hang_up_after: bool,
    done: bool,
}

impl WaitingStage {
    pub fn new(samples_per_frame: usize, moh: MusicOnHold, prompts: Arc<PromptLibrary>) -> Self {
        WaitingStage {
            moh,
            notice: PromptPlayer::new(samples_per_frame),
            announcements: PromptPlayer::new(samples_per_frame),
            frame: vec![0; samples_per_frame],
            prompts,
            hang_up_after: false,
            done: false,
        }
    }

    /// The music, to go on where it stopped when an agent takes the caller.
    pub fn into_music(self) -> MusicOnHold {
        self.moh
    }

    /// Plays `name` before anything else, whole even if an agent answers meanwhile.
    pub fn notice(&mut self, name: &str) {
        match self.prompts.get(name) {
            Some(p) => self.notice.enqueue(p.clone()),
            None => tracing::warn!(prompt = %name, "notice prompt not loaded"),
        }
    }

    /// What is left of the notice, if it is still playing, for the agent's bridge to finish.
    pub fn take_notice(&mut self) -> Option<PromptPlayer> {
        let samples = self.notice.frame_samples();
        let notice = std::mem::replace(&mut self.notice, PromptPlayer::new(samples));
        notice.is_playing().then_some(notice)
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

    /// Stops the music, plays `prompt` (if any) and then is done (the call hangs up).
    pub fn goodbye(&mut self, prompt: Option<&str>) {
        self.announcements.clear();
        self.moh = MusicOnHold::default();
        if let Some(p) = prompt {
            self.announce(&[p.to_string()]);
        }
        self.hang_up_after = true;
    }

    /// The next frame for the caller.
    pub fn next_frame(&mut self) -> &[i16] {
        if self.notice.next_frame(&mut self.frame) {
            return &self.frame;
        }
        if !self.announcements.next_frame(&mut self.frame) {
            if self.hang_up_after {
                self.hang_up_after = false;
                self.done = true;
            }
            self.moh.fill(&mut self.frame);
        }
        &self.frame
    }

    /// True once a goodbye has been heard in full.
    pub fn said_goodbye(&self) -> bool {
        self.done
    }
}
