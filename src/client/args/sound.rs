//! The sound device's part of the command line. Its flags exist in every build, so `--help` is
//! the same everywhere and a build without the `sound` feature can say what is missing instead
//! of calling the flag unknown.
use crate::client::sound::{SoundDevices, SoundError, BUILT_WITH_SOUND};

use super::ArgsError;

/// The other audio sources, and `--swarm` (one headset cannot serve many agents).
const EXCLUDES: [&str; 3] = ["play", "echo", "swarm"];

#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Sound device (in builds with the `sound` feature)")]
pub struct SoundArgs {
    /// Talk through the system's sound device: the microphone is the call's audio and the
    /// caller plays on the speaker. The device is opened when a call is answered and closed
    /// when it ends.
    #[arg(long, conflicts_with_all = EXCLUDES)]
    pub sound: bool,
    /// The microphone, as --list-devices names it (implies --sound) [default: the system's
    /// default input].
    #[arg(long, value_name = "NAME", conflicts_with_all = EXCLUDES)]
    pub input_device: Option<String>,
    /// The speaker or headphones, as --list-devices names it (implies --sound) [default: the
    /// system's default output].
    #[arg(long, value_name = "NAME", conflicts_with_all = EXCLUDES)]
    pub output_device: Option<String>,
    /// Print the sound devices (one line each: id, name, whether it records and plays) and exit.
    /// Give it alone.
    #[arg(long, exclusive = true)]
    pub list_devices: bool,
}

impl SoundArgs {
    /// The devices when the call's audio is the sound device, `None` when it is not.
    pub fn devices(&self) -> Result<Option<SoundDevices>, ArgsError> {
        if !(self.sound || self.input_device.is_some() || self.output_device.is_some()) {
            return Ok(None);
        }
        if !BUILT_WITH_SOUND {
            return Err(ArgsError::Sound(SoundError::NotBuilt));
        }
        Ok(Some(SoundDevices {
            input: self.input_device.clone(),
            output: self.output_device.clone(),
        }))
    }
}

#[cfg(test)]
mod tests;
