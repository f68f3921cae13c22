//! A sound card without hardware, for the agent client's `--sound`: what the agent plays goes
//! to a file, and what it records comes from a file, through the same ALSA library calls a real
//! headset gets.
//!
//! The pieces, all stock Debian:
//! - ALSA's `file` plugin writes every sample played through it to `file` and, on capture,
//!   replaces what its slave recorded with the samples of `infile` (`format "raw"`: bare samples
//!   in the stream's format).
//! - The slave must keep real time: ALSA's `null` plugin does not (2 s of audio "play" in
//!   10 ms), which would make the agent's callbacks spin. A JACK server with its `dummy` driver
//!   does, and the `jack` PCM of libasound2-plugins connects to it. Each card runs its own
//!   server (a unique name), so tests can run in parallel.
//! - The agent reads a config of ours: `ALSA_CONFIG_PATH` replaces alsa-lib's search for
//!   `alsa.conf`, so ours includes the system's first and then defines the card's devices.
//!
//! Two kinds of card: [`CardKind::Converting`] is ALSA's usual `default` device, which converts
//! to anything (so the agent gets 8 kHz mono 16-bit, its own format); [`CardKind::Float48k`]
//! offers only 32-bit float at 48 kHz, and only under its device names ([`SPEAKER_DEVICE`],
//! [`MICROPHONE_DEVICE`]), the way a bare `hw:` device offers only what the hardware does, so
//! the agent has to convert both ways.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::audio::Audio;
use crate::process::{terminate, POLL_INTERVAL};

/// Where Debian's alsa-lib keeps its top-level config, which ours includes.
pub const SYSTEM_ALSA_CONF: &str = "/usr/share/alsa/alsa.conf";
/// The card's devices by name (a [`CardKind::Converting`] card is also `default`).
pub const SPEAKER_DEVICE: &str = "trunkgate_speaker";
pub const MICROPHONE_DEVICE: &str = "trunkgate_microphone";
const SERVER_START: Duration = Duration::from_secs(10);
const STOP_GRACE: Duration = Duration::from_secs(3);
/// The JACK period: 20 ms, so the card's clock ticks like the call's.
const PERIOD_MS: u32 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardKind {
    /// `default`, converting to whatever is asked (8 kHz mono i16 for the agent), files in
    /// 8 kHz s16le.
    Converting,
    /// Only f32 mono at 48 kHz, and not `default`; files in 48 kHz f32le.
    Float48k,
}

impl CardKind {
    fn rate(self) -> u32 {
        match self {
            Self::Converting => 8000,
            Self::Float48k => 48000,
        }
    }
}

/// A running card: its JACK server, its ALSA config and its two files. The server is stopped
/// on drop.
pub struct SoundCard {
    kind: CardKind,
    server: String,
    jackd: Child,
    dir: TempDir,
}

impl SoundCard {
    /// Starts a card whose microphone will say `microphone` (any rate; converted to the card's)
    /// from the moment the agent opens it.
    pub fn start(kind: CardKind, microphone: &Audio) -> SoundCard {
        assert!(
            Path::new(SYSTEM_ALSA_CONF).is_file(),
            "{SYSTEM_ALSA_CONF} missing: install libasound2 (scripts/setup-test-deps.sh)"
        );
        let dir = tempfile::tempdir().expect("temp dir for the sound card");
        let server = format!(
            "trunkgate-{}-{}",
            std::process::id(),
            dir.path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        let rate = kind.rate();
        let period = rate * PERIOD_MS / 1000;
        // The dummy driver's wait (µs) sets its clock; it is not derived from the period.
        let log = std::fs::File::create(dir.path().join("jackd.log")).expect("jackd log file");
        let jackd = Command::new("jackd")
            .args(["--name", &server, "--no-realtime", "-d", "dummy"])
            .args(["-r", &rate.to_string(), "-p", &period.to_string()])
            .args(["-w", &(PERIOD_MS * 1000).to_string()])
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start jackd: {e} (install jackd2: scripts/setup-test-deps.sh)")
            });
        let mut card = SoundCard {
            kind,
            server,
            jackd,
            dir,
        };
        card.wait_for_server();
        std::fs::write(card.capture_path(), card.encode(microphone))
            .expect("write the microphone's input file");
        std::fs::write(card.config_path(), card.config()).expect("write the ALSA config");
        card
    }

    /// Polls `jack_wait --check` (it prints `running` once a client can connect) until the
    /// server answers, it exits, or [`SERVER_START`] passes. (`jack_wait --wait` is no shortcut:
    /// with two servers starting at once it sometimes gives up after a second.)
    fn wait_for_server(&mut self) {
        let deadline = Instant::now() + SERVER_START;
        loop {
            let check = Command::new("jack_wait")
                .args(["--server", &self.server, "--check"])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
                .expect("jack_wait (jackd2) runs");
            if String::from_utf8_lossy(&check.stdout).trim() == "running" {
                return;
            }
            let exited = self.jackd.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() >= deadline {
                panic!(
                    "JACK server {} did not start within {SERVER_START:?} (jackd {}); its log:\n{}",
                    self.server,
                    exited.map_or("still running".to_string(), |s| s.to_string()),
                    std::fs::read_to_string(self.dir.path().join("jackd.log")).unwrap_or_default()
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// The environment the agent needs to use this card.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "ALSA_CONFIG_PATH".into(),
                self.config_path().display().to_string(),
            ),
            ("JACK_DEFAULT_SERVER".into(), self.server.clone()),
            // A client of a server that died must fail, not start a server of its own.
            ("JACK_NO_START_SERVER".into(), "1".into()),
        ]
    }

    /// Everything played so far, as mono audio at the card's rate.
    pub fn played(&self) -> Audio {
        let bytes = std::fs::read(self.playback_path()).unwrap_or_default();
        let samples = match self.kind {
            CardKind::Converting => bytes
                .chunks_exact(2)
                .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
                .collect(),
            CardKind::Float48k => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        };
        Audio {
            rate: self.kind.rate(),
            samples,
        }
    }

    pub fn playback_path(&self) -> PathBuf {
        self.dir.path().join("played.raw")
    }

    pub fn capture_path(&self) -> PathBuf {
        self.dir.path().join("microphone.raw")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("asound.conf")
    }

    /// `audio` as the raw samples the card's microphone delivers.
    fn encode(&self, audio: &Audio) -> Vec<u8> {
        let rate = self.kind.rate();
        let samples = trunkgate::media::resample::to_rate(&audio.samples, audio.rate, rate);
        match self.kind {
            CardKind::Converting => samples
                .iter()
                .flat_map(|&s| {
                    ((s * 32768.0).round().clamp(-32768.0, 32767.0) as i16).to_le_bytes()
                })
                .collect(),
            CardKind::Float48k => samples.iter().flat_map(|s| s.to_le_bytes()).collect(),
        }
    }

    fn config(&self) -> String {
        let quote = |path: PathBuf| format!("{:?}", path.display().to_string());
        let (play, capture) = (quote(self.playback_path()), quote(self.capture_path()));
        // The JACK PCM is the clock; `plug` over it converts for the converting card.
        let clock = "{ type jack playback_ports { 0 system:playback_1 } \
                     capture_ports { 0 system:capture_1 } }";
        let slave = match self.kind {
            CardKind::Converting => format!("{{ type plug slave.pcm {clock} }}"),
            CardKind::Float48k => clock.to_string(),
        };
        let devices = format!(
            "pcm.{SPEAKER_DEVICE} {{ type file slave.pcm {slave} file {play} format \"raw\" }}\n\
             pcm.{MICROPHONE_DEVICE} {{ type file slave.pcm {slave} file \"/dev/null\" \
             infile {capture} format \"raw\" }}\n"
        );
        let default = match self.kind {
            CardKind::Converting => format!(
                "pcm.!default {{ type asym playback.pcm \"{SPEAKER_DEVICE}\" \
                 capture.pcm \"{MICROPHONE_DEVICE}\" }}\n"
            ),
            CardKind::Float48k => String::new(),
        };
        format!("<{SYSTEM_ALSA_CONF}>\n{devices}{default}")
    }
}

impl Drop for SoundCard {
    fn drop(&mut self) {
        terminate(&mut self.jackd, STOP_GRACE);
    }
}
