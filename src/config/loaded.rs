//! The configuration in force: the file as validated plus what was loaded from it (prompts),
//! owned in one place and shared. A reload builds a new [`Loaded`] and swaps it in whole; each
//! call takes the snapshot in force when it arrives and keeps it to its end.
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::Config;
use crate::ivr::IvrConfig;
use crate::media::prompt::{Prompt, PromptError, PromptLibrary};

pub struct Loaded {
    pub config: Config,
    pub ivr: Arc<IvrConfig>,
    pub prompts: Arc<PromptLibrary>,
}

/// The configuration in force, swapped whole on reload.
pub type SharedConfig = Arc<ArcSwap<Loaded>>;

impl Loaded {
    /// Loads every prompt the configuration can play. Errors name the prompt file.
    pub fn new(config: Config) -> Result<Self, PromptError> {
        let prompts = load_prompts(&config)?;
        Ok(Self::with_prompts(config, prompts))
    }

    /// With prompts from elsewhere (tests make them up).
    pub fn with_prompts(config: Config, prompts: PromptLibrary) -> Self {
        Loaded {
            ivr: Arc::new(config.ivr.clone()),
            prompts: Arc::new(prompts),
            config,
        }
    }

    pub fn shared(self) -> SharedConfig {
        Arc::new(ArcSwap::from_pointee(self))
    }
}

/// Loads every prompt the IVR and the queues can play. Errors name the prompt file.
pub fn load_prompts(config: &Config) -> Result<PromptLibrary, PromptError> {
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
