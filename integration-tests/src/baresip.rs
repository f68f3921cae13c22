//! baresip as a real softphone: places or answers one call, plays a WAV file into it and records
//! both directions, headless and on loopback only.
//!
//! Facts about baresip-core 1.0.0 this relies on (checked on Debian 12):
//! - `net_interface 127.0.0.1` (an address, not `lo`) keeps it on loopback.
//! - `audio_source aufile,FILE` reads an 8 kHz mono 16-bit WAV. When the file ends, the menu
//!   module hangs the call up ("menu: audio error (0,end of file)"), so the harness pads the
//!   source with silence to the run's duration unless told to hang up at its end.
//! - There is no file player; `audio_player aubridge,sink` is a null sink that costs nothing.
//!   (`alsa,null` burns a core; no player at all makes a callee answer 486.)
//! - `module sndfile.so` with `snd_path DIR` records every call as two WAV files (8 kHz mono
//!   s16): `dump-YYYY-MM-DD-HH-MM-SS-enc.wav` (what baresip sent, after the source) and
//!   `…-dec.wav` (what it received, after decoding). The name has one-second resolution, so each
//!   instance records into its own directory and places one call.
//! - `;answermode=auto` on the account answers at once; without it a call rings (180) until
//!   cancelled.
//! - `-t SECS` quits after SECS; SIGTERM also exits cleanly and finishes the WAV headers.

use std::ffi::OsString;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::audio::{read_wav, write_wav_i16, Audio, TELEPHONY_RATE};
use crate::ports::free_sip_port;
use crate::process::{terminate, wait_timeout, POLL_INTERVAL};

const READY_LINE: &str = "baresip is ready.";
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Extra time past `-t` before the harness kills baresip.
const KILL_MARGIN: Duration = Duration::from_secs(5);
const MODULE_PATH: &str = "/usr/lib/baresip/modules";
/// baresip's RTP ports: above Linux's ephemeral range and apart from the gateway's test range
/// (61000–63999), so neither collides with ports the kernel hands out.
const RTP_PORTS: &str = "64000-64999";

/// What a baresip instance does with incoming calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Answer at once (`answermode=auto`).
    Auto,
    /// Ring (180) until the caller gives up.
    Manual,
}

/// A baresip instance, configured builder-style, started with [`Baresip::start`] (in the
/// background) or [`Baresip::run`] (to completion).
#[derive(Clone, Debug)]
pub struct Baresip {
    user: String,
    answer: Answer,
    dial: Option<String>,
    duration: Duration,
    source: Option<PathBuf>,
    hang_up_when_source_ends: bool,
    codecs: Vec<String>,
    sip_trace: bool,
    extra_config: Vec<String>,
    account_params: String,
    args: Vec<OsString>,
    /// Its SIP port; `None`: a free one.
    port: Option<u16>,
}

impl Baresip {
    /// An instance whose account is `sip:USER@127.0.0.1:PORT`.
    pub fn new(user: &str) -> Self {
        Self {
            user: user.to_owned(),
            answer: Answer::Manual,
            dial: None,
            duration: Duration::from_secs(10),
            source: None,
            hang_up_when_source_ends: false,
            codecs: Vec::new(),
            sip_trace: true,
            extra_config: Vec::new(),
            account_params: String::new(),
            args: Vec::new(),
            port: None,
        }
    }

    /// Listen for SIP (UDP and TCP) on this port of 127.0.0.1 rather than a free one: a
    /// server that comes back where it was.
    pub fn sip_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    pub fn answer(mut self, answer: Answer) -> Self {
        self.answer = answer;
        self
    }

    pub fn auto_answer(self) -> Self {
        self.answer(Answer::Auto)
    }

    /// Call `uri` (e.g. `sip:ivr@127.0.0.1:5060`) right after start.
    pub fn dial(mut self, uri: impl Into<String>) -> Self {
        self.dial = Some(uri.into());
        self
    }

    /// How long baresip runs before quitting by itself (`-t`, whole seconds, rounded up). A
    /// call still up then ends with baresip.
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = duration;
        self
    }

    /// What baresip sends: a mono 8 kHz WAV (16-bit PCM or float). Default: silence.
    pub fn source_wav(mut self, path: impl Into<PathBuf>) -> Self {
        self.source = Some(path.into());
        self
    }

    /// Hang up when the source WAV ends instead of padding it with silence until the end of
    /// the run.
    pub fn hang_up_when_source_ends(mut self) -> Self {
        self.hang_up_when_source_ends = true;
        self
    }

    /// Restrict the audio codecs offered/accepted, by baresip name (`PCMU`, `PCMA`).
    pub fn codecs(mut self, codecs: &[&str]) -> Self {
        self.codecs = codecs.iter().map(|codec| (*codec).to_owned()).collect();
        self
    }

    /// Turn off SIP message tracing in the log (`-s`, on by default).
    pub fn without_sip_trace(mut self) -> Self {
        self.sip_trace = false;
        self
    }

    /// An extra line for baresip's `config` file.
    pub fn config_line(mut self, line: &str) -> Self {
        self.extra_config.push(line.to_owned());
        self
    }

    /// SDES SRTP only (`mediaenc=srtp-mand`). The keys travel in SDP, so dial a
    /// `;transport=tls` URI (baresip 1.0 does not verify the gateway's certificate).
    pub fn srtp(mut self) -> Self {
        self.extra_config.push("module\tsrtp.so".to_owned());
        self.account_params.push_str(";mediaenc=srtp-mand");
        self
    }

    /// Take calls over TLS too, on [`BaresipCall::sip_tls_addr`], presenting this certificate
    /// and key (`cert` and `key` PEM files, joined into the one file baresip reads).
    pub fn tls_certificate(mut self, cert: &Path, key: &Path) -> Self {
        let read = |p: &Path| {
            std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        };
        let combined = format!("{}{}", read(cert), read(key));
        let path = cert.with_extension("baresip.pem");
        std::fs::write(&path, combined).expect("writing baresip's certificate file");
        self.extra_config
            .push(format!("sip_certificate	{}", path.display()));
        self
    }

    /// An extra command-line argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Starts baresip and waits until it is ready to take calls. Panics if it cannot start.
    pub fn start(self) -> BaresipCall {
        let dir = tempfile::Builder::new()
            .prefix("trunkgate-baresip-")
            .tempdir()
            .expect("creating a temp dir for baresip");
        let config_dir = dir.path().join("config");
        let recordings_dir = dir.path().join("recordings");
        std::fs::create_dir_all(&config_dir).expect("creating baresip config dir");
        std::fs::create_dir_all(&recordings_dir).expect("creating baresip recordings dir");

        let run_secs = self.duration.as_millis().div_ceil(1000).max(1) as u64;
        let source = dir.path().join("source.wav");
        self.write_source(&source, Duration::from_secs(run_secs + 1));
        let port = self.port.unwrap_or_else(free_sip_port);
        self.write_config(&config_dir, port, &source, &recordings_dir);

        let log_path = dir.path().join("baresip.log");
        let log = File::create(&log_path).expect("creating baresip log");
        let mut command = Command::new("baresip");
        command
            .arg("-4")
            .arg("-f")
            .arg(&config_dir)
            .arg("-t")
            .arg(run_secs.to_string());
        if self.sip_trace {
            command.arg("-s");
        }
        if let Some(uri) = &self.dial {
            command.arg("-e").arg(format!("/dial {uri}"));
        }
        command
            .args(&self.args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("duplicating the log file handle"))
            .stderr(log);
        let child = command.spawn().unwrap_or_else(|err| {
            panic!("starting baresip (install it with scripts/setup-test-deps.sh): {err}")
        });

        let mut call = BaresipCall {
            child,
            sip_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            user: self.user.clone(),
            run_for: Duration::from_secs(run_secs),
            log_path,
            recordings_dir,
            dir: Some(dir),
        };
        call.wait_until_ready();
        call
    }

    /// Starts baresip and waits for it to quit by itself (after [`Baresip::duration`]).
    pub fn run(self) -> BaresipRun {
        self.start().wait()
    }

    fn write_source(&self, path: &Path, run_for: Duration) {
        let mut audio = match &self.source {
            Some(source) => {
                let audio = read_wav(source)
                    .unwrap_or_else(|err| panic!("baresip source {}: {err}", source.display()));
                assert_eq!(
                    audio.rate,
                    TELEPHONY_RATE,
                    "baresip source {} must be 8 kHz (convert with `sox -R IN -r 8000 -c 1 \
                     -b 16 OUT`)",
                    source.display()
                );
                audio
            }
            None => Audio::silence(TELEPHONY_RATE, Duration::ZERO),
        };
        if !self.hang_up_when_source_ends {
            let wanted = (run_for.as_secs_f64() * f64::from(audio.rate)) as usize;
            if audio.samples.len() < wanted {
                audio.samples.resize(wanted, 0.0);
            }
        }
        write_wav_i16(path, &audio).expect("writing baresip source wav");
    }

    fn write_config(&self, config_dir: &Path, port: u16, source: &Path, recordings: &Path) {
        let mut config = format!(
            "poll_method\tepoll\n\
             sip_listen\t127.0.0.1:{port}\n\
             net_interface\t127.0.0.1\n\
             rtp_ports\t{RTP_PORTS}\n\
             audio_player\taubridge,sink\n\
             audio_alert\taubridge,sink\n\
             audio_source\taufile,{source}\n\
             module_path\t{MODULE_PATH}\n\
             module\tg711.so\n\
             module\taufile.so\n\
             module\taubridge.so\n\
             module\tsndfile.so\n\
             snd_path\t{recordings}\n\
             module_app\taccount.so\n\
             module_app\tmenu.so\n",
            source = source.display(),
            recordings = recordings.display(),
        );
        for line in &self.extra_config {
            config.push_str(line);
            config.push('\n');
        }
        std::fs::write(config_dir.join("config"), config).expect("writing baresip config");

        let mut account = format!("<sip:{}@127.0.0.1:{port}>;regint=0", self.user);
        account.push_str(match self.answer {
            Answer::Auto => ";answermode=auto",
            Answer::Manual => ";answermode=manual",
        });
        if !self.codecs.is_empty() {
            account.push_str(&format!(";audio_codecs={}", self.codecs.join(",")));
        }
        account.push_str(&self.account_params);
        account.push('\n');
        std::fs::write(config_dir.join("accounts"), account).expect("writing baresip accounts");
        // Empty contacts file: otherwise baresip writes a template with example entries.
        std::fs::write(config_dir.join("contacts"), "").expect("writing baresip contacts");
    }
}

/// A running baresip. Dropping it stops baresip (SIGTERM, then SIGKILL).
pub struct BaresipCall {
    child: Child,
    sip_addr: SocketAddr,
    user: String,
    run_for: Duration,
    log_path: PathBuf,
    recordings_dir: PathBuf,
    // Some until handed to the BaresipRun.
    dir: Option<TempDir>,
}

impl BaresipCall {
    /// Where baresip listens for SIP (UDP and TCP).
    pub fn sip_addr(&self) -> SocketAddr {
        self.sip_addr
    }

    /// Where baresip takes SIP over TLS (with [`Baresip::tls_certificate`]): the port after
    /// its UDP/TCP one.
    pub fn sip_tls_addr(&self) -> SocketAddr {
        SocketAddr::new(self.sip_addr.ip(), self.sip_addr.port() + 1)
    }

    /// A URI that reaches this instance's account.
    pub fn uri(&self) -> String {
        format!("sip:{}@{}", self.user, self.sip_addr)
    }

    /// baresip's output so far (status lines removed).
    pub fn log(&self) -> String {
        clean_log(&std::fs::read_to_string(&self.log_path).unwrap_or_default())
    }

    /// Waits up to `limit` for a log line containing `needle`.
    pub fn wait_for_log(&self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Waits for baresip to quit by itself (its `-t` duration, plus a margin before it is
    /// killed).
    pub fn wait(mut self) -> BaresipRun {
        let status = wait_timeout(&mut self.child, self.run_for + KILL_MARGIN);
        let killed = status.is_none();
        if killed {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.finish(status, killed)
    }

    /// Stops baresip now (SIGTERM, which ends calls and finishes the recordings).
    pub fn stop(mut self) -> BaresipRun {
        let status = terminate(&mut self.child, STOP_GRACE);
        self.finish(status, status.is_none())
    }

    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.log().contains(READY_LINE) {
                return;
            }
            let exited = self.child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() >= deadline {
                let _ = terminate(&mut self.child, STOP_GRACE);
                panic!(
                    "baresip did not become ready (exit status {exited:?}); its output:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    fn finish(&mut self, status: Option<ExitStatus>, killed: bool) -> BaresipRun {
        let dir = self.dir.take().expect("a baresip run finishes once");
        BaresipRun {
            exit_status: status,
            killed,
            log: self.log(),
            recordings: find_recordings(&self.recordings_dir),
            dir,
        }
    }
}

impl Drop for BaresipCall {
    fn drop(&mut self) {
        let _ = terminate(&mut self.child, STOP_GRACE);
        if std::thread::panicking() && self.dir.is_some() {
            eprintln!("---- baresip {} output ----\n{}", self.uri(), self.log());
        }
    }
}

/// One call's recordings. Either file can be missing if the call never got media.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recording {
    /// `dump-…-enc.wav`: the audio baresip sent.
    pub sent: Option<PathBuf>,
    /// `dump-…-dec.wav`: the audio baresip received and decoded.
    pub received: Option<PathBuf>,
}

/// A finished baresip run.
#[derive(Debug)]
pub struct BaresipRun {
    pub exit_status: Option<ExitStatus>,
    /// The harness had to SIGKILL baresip.
    pub killed: bool,
    pub log: String,
    /// One entry per call, oldest first.
    pub recordings: Vec<Recording>,
    /// Keeps the config, log and recordings alive as long as the result.
    pub dir: TempDir,
}

impl BaresipRun {
    /// The recordings of the only call; panics (with the log) if there was not exactly one.
    #[track_caller]
    pub fn only_recording(&self) -> &Recording {
        assert_eq!(
            self.recordings.len(),
            1,
            "expected recordings of exactly one call; baresip output:\n{}",
            self.log
        );
        &self.recordings[0]
    }

    /// The audio received during the only call; panics with the log if there is none.
    #[track_caller]
    pub fn received_audio(&self) -> Audio {
        let path = self.only_recording().received.clone().unwrap_or_else(|| {
            panic!(
                "baresip recorded nothing received; its output:\n{}",
                self.log
            )
        });
        read_wav(&path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()))
    }

    /// "Call established" appears in the log.
    pub fn call_established(&self) -> bool {
        self.log.contains("Call established")
    }

    /// The RFC 4733 keys it received, in order, once each (baresip logs each event as it
    /// starts and as it ends; the starts are counted).
    pub fn received_digits(&self) -> String {
        self.log
            .lines()
            .filter(|l| l.contains("received event:") && l.contains("(end=0)"))
            .filter_map(|l| l.split('\'').nth(1))
            .collect()
    }
}

/// Pairs `dump-STAMP-enc.wav` with `dump-STAMP-dec.wav`, ordered by STAMP.
fn find_recordings(dir: &Path) -> Vec<Recording> {
    let mut by_stamp: std::collections::BTreeMap<String, Recording> = Default::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".wav") else {
            continue;
        };
        let (stamp, sent) = if let Some(stamp) = stem.strip_suffix("-enc") {
            (stamp, true)
        } else if let Some(stamp) = stem.strip_suffix("-dec") {
            (stamp, false)
        } else {
            continue;
        };
        let recording = by_stamp.entry(stamp.to_owned()).or_insert(Recording {
            sent: None,
            received: None,
        });
        if sent {
            recording.sent = Some(entry.path());
        } else {
            recording.received = Some(entry.path());
        }
    }
    by_stamp.into_values().collect()
}

/// The log without the once-per-100-ms `[0:00:01] audio=…` status updates, which baresip
/// separates with carriage returns.
fn clean_log(raw: &str) -> String {
    let is_status_update = |line: &str| line.starts_with('[') && line.contains("] audio=");
    raw.split(['\n', '\r'])
        .map(str::trim_end)
        .filter(|line| !line.is_empty() && !is_status_update(line))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recordings_pair_by_timestamp_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "dump-2024-01-01-10-00-05-dec.wav",
            "dump-2024-01-01-10-00-01-enc.wav",
            "dump-2024-01-01-10-00-01-dec.wav",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let recordings = find_recordings(dir.path());
        assert_eq!(recordings.len(), 2);
        assert!(recordings[0]
            .sent
            .as_ref()
            .unwrap()
            .ends_with("dump-2024-01-01-10-00-01-enc.wav"));
        assert!(recordings[0].received.is_some());
        assert_eq!(recordings[1].sent, None);
        assert!(recordings[1].received.is_some());
    }

    #[test]
    fn status_updates_are_dropped_from_the_log() {
        let raw = "baresip is ready.\n\r[0:00:00] audio=0/0 (bit/s)    \r\r[0:00:01] audio=64000/64000 (bit/s)    \raufile: end of file\nmenu: audio error\n";
        assert_eq!(
            clean_log(raw),
            "baresip is ready.\naufile: end of file\nmenu: audio error"
        );
    }
}
