//! The configuration in force: the file as validated plus what was loaded from it (prompts),
//! owned in one place and shared. A reload builds a new [`Loaded`] and swaps it in whole; each
//! call takes the snapshot in force when it arrives and keeps it to its end.
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::Config;
use crate::agent::config::AgentConfig;
use crate::agent::server::AgentDirectory;
use crate::ivr::{Action, IvrConfig};
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

/// Each login reads the agents in force at that moment.
impl AgentDirectory for SharedConfig {
    fn agent(&self, id: &str) -> Option<AgentConfig> {
        self.load()
            .config
            .agent
            .iter()
            .find(|a| a.id == id)
            .cloned()
    }
}

/// Loads every prompt the IVR and the queues can play. Errors name the prompt file.
pub fn load_prompts(config: &Config) -> Result<PromptLibrary, PromptError> {
    let mut names = config.ivr.prompt_names();
    for queue in config.queues.values() {
        names.insert(queue.moh.clone());
        names.extend(crate::queue::announcement_prompt_names(queue));
        let goodbye = match &queue.overflow {
            Action::Hangup { prompt } => prompt.as_deref(),
            Action::Destination { target } => target.goodbye_prompt(),
            Action::Goto { .. } | Action::ReadBack { .. } => None,
        };
        names.extend(goodbye.map(str::to_string));
    }
    let policies = config.queues.values().filter_map(|q| q.recording.as_ref());
    let policies = policies.chain(config.trunks.iter().filter_map(|t| t.recording.as_ref()));
    names.extend(policies.filter_map(|p| p.prompt.clone()));
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
mod tests {
    use super::*;
    use crate::route::Destination;

    #[test]
    fn every_prompt_a_call_can_reach_is_loaded_including_goodbyes_of_hang_up_destinations() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut config = crate::config::embedded(root).expect("the example config is valid");
        let queue = config
            .queues
            .values_mut()
            .next()
            .expect("the example has a queue");
        queue.overflow = Action::Destination {
            target: Destination::Hangup {
                prompt: Some("goodbye".into()),
            },
        };
        config.ivr.menus.clear();
        let prompts = load_prompts(&config).expect("the shipped prompts load");
        assert!(prompts.contains_key("goodbye"), "the overflow's goodbye");
        assert!(prompts.contains_key("queue-unavailable"));
    }
}
