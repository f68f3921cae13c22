//! The local IVR: menus that answer a call while the branch office has no agent (or no uplink).
//!
//! - [`config`]: the `[ivr]` section as the operator writes it.
//! - [`validate`]: load-time checks, located by key path.
//! - [`engine`]: one [`IvrSession`] per call, a sans-IO state machine fed with keys, playback
//!   completions and time, emitting [`IvrOutput`]s for the call actor to carry out.

pub mod config;
pub mod engine;
pub mod stage;
pub mod validate;

pub use config::{Action, Collect, IvrConfig, Menu};
pub use engine::{IvrError, IvrOutput, IvrSession, MAX_MENU_ENTRIES_PER_CALL};
pub use stage::{IvrDone, IvrStage};
pub use validate::ConfigProblem;

/// The `[ivr]` table of the shipped `config.example.toml`, so tests break when the example and
/// the types or the engine drift apart.
#[cfg(test)]
pub(crate) fn example_ivr() -> IvrConfig {
    let file: toml::Table = toml::from_str(include_str!("../../config.example.toml"))
        .expect("config.example.toml is valid TOML");
    file.get("ivr")
        .expect("config.example.toml has an [ivr] table")
        .clone()
        .try_into()
        .expect("the [ivr] table matches IvrConfig")
}
