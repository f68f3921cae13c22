//! Headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`), for the
//! agent desk. The browser starts with the resolver guard from ../shared/FACTS.md, so it looks
//! nothing up beyond loopback; its profile lives in a temporary directory; chromedriver and
//! the browser are stopped when the [`Browser`] drops.
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::ports::free_tcp_port;

pub struct Browser {
    driver: Child,
    /// Firefox's private sound server.
    sound_server: Option<Child>,
    base: String,
    session: String,
    profile: tempfile::TempDir,
}

fn chromium() -> PathBuf {
    // The launcher script /usr/bin/chromium adds nothing headless needs.
    let direct = PathBuf::from("/usr/lib/chromium/chromium");
    if direct.exists() {
        direct
    } else {
        PathBuf::from("chromium")
    }
}

/// geckodriver as the setup script installs it (`cargo install` into target/geckodriver), or
/// from PATH.
fn geckodriver() -> PathBuf {
    let installed = crate::repo_root().join("target/geckodriver/bin/geckodriver");
    if installed.exists() {
        installed
    } else {
        PathBuf::from("geckodriver")
    }
}

impl Browser {
    /// Starts chromedriver and a headless browser whose fake microphone plays `audio` (a WAV).
    pub fn start(audio: Option<&std::path::Path>) -> Browser {
        Browser::start_trusting(audio, None)
    }

    /// [`Browser::start`] for a browser that trusts the CA certificate `ca` (PEM), installed in
    /// its user's certificate store as an organisation installs its CA on its agents' machines.
    pub fn start_trusting(
        audio: Option<&std::path::Path>,
        ca: Option<&std::path::Path>,
    ) -> Browser {
        let port = free_tcp_port();
        let profile = tempfile::tempdir().expect("a profile directory");
        // The browser's user, whose NSS store (~/.pki/nssdb) holds the CAs it trusts.
        let home = profile.path().join("home");
        if let Some(ca) = ca {
            let store = home.join(".pki/nssdb");
            std::fs::create_dir_all(&store).unwrap();
            let store = format!("sql:{}", store.display());
            for args in [
                vec!["-N", "-d", &store, "--empty-password"],
                vec!["-A", "-d", &store, "-t", "C,,", "-n", "test CA"],
            ] {
                let mut certutil = Command::new("certutil");
                certutil.args(&args);
                if args[0] == "-A" {
                    certutil.arg("-i").arg(ca);
                }
                let out = certutil
                    .output()
                    .expect("certutil runs (scripts/setup-test-deps.sh installs libnss3-tools)");
                assert!(
                    out.status.success(),
                    "certutil {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        let mut driver = Command::new("chromedriver");
        driver
            .env("HOME", &home)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1");
        let mut args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--window-size=820,1000".into(),
            "--disable-dev-shm-usage".into(),
            format!("--user-data-dir={}", profile.path().join("data").display()),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1".into(),
            "--use-fake-ui-for-media-stream".into(),
            "--use-fake-device-for-media-stream".into(),
        ];
        if let Some(audio) = audio {
            args.push(format!(
                "--use-file-for-fake-audio-capture={}",
                audio.display()
            ));
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium(), "args": args},
        }}});
        Browser::launch(driver, port, capabilities, profile)
    }

    /// Starts geckodriver and a headless Firefox (Debian's `firefox-esr`) with a sound server
    /// of its own. Its fake microphone plays a 1 kHz tone (Firefox takes no file). The resolver guard for Firefox: every name
    /// resolves to 127.0.0.1 without a lookup (`network.dns.forceResolve`), DNS over HTTPS is
    /// off, and the background services that would reach out are disabled.
    pub fn firefox() -> Browser {
        let port = free_tcp_port();
        let profile = tempfile::tempdir().expect("a profile directory");
        // No sound card here, and Firefox runs no AudioContext without a sound server: a private
        // PulseAudio with a null sink, which plays into nothing at the real pace.
        let pulse = profile.path().join("pulse");
        std::fs::create_dir_all(&pulse).unwrap();
        let socket = pulse.join("native");
        let sound_server = Command::new("pulseaudio")
            .env("HOME", &pulse)
            .env("XDG_RUNTIME_DIR", &pulse)
            .args([
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--use-pid-file=false",
            ])
            .args(["-L", "module-null-sink sink_name=desk"])
            .arg("-L")
            .arg(format!(
                "module-native-protocol-unix socket={} auth-anonymous=1",
                socket.display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pulseaudio runs (scripts/setup-test-deps.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "pulseaudio did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut driver = Command::new(geckodriver());
        driver
            .env("HOME", profile.path())
            .env("TMPDIR", profile.path())
            .env("PULSE_SERVER", format!("unix:{}", socket.display()))
            .arg(format!("--port={port}"))
            .arg("--host=127.0.0.1")
            .arg("--allow-hosts=127.0.0.1");
        let prefs = json!({
            "network.dns.forceResolve": "127.0.0.1",
            "network.trr.mode": 5,
            "network.dns.disablePrefetch": true,
            "network.prefetch-next": false,
            "network.captive-portal-service.enabled": false,
            "network.connectivity-service.enabled": false,
            "app.update.enabled": false,
            "app.update.auto": false,
            "browser.safebrowsing.malware.enabled": false,
            "browser.safebrowsing.phishing.enabled": false,
            "browser.safebrowsing.downloads.enabled": false,
            "extensions.update.enabled": false,
            "extensions.getAddons.cache.enabled": false,
            "datareporting.policy.dataSubmissionEnabled": false,
            "datareporting.healthreport.uploadEnabled": false,
            "toolkit.telemetry.enabled": false,
            "browser.newtabpage.enabled": false,
            "browser.startup.homepage_override.mstone": "ignore",
            "media.navigator.streams.fake": true,
            "media.navigator.permission.disabled": true,
            "media.autoplay.default": 0,
            "media.cubeb.backend": "pulse",
        });
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "firefox",
            "moz:firefoxOptions": {
                "binary": "/usr/bin/firefox-esr",
                "args": ["-headless", "--width=820", "--height=1000"],
                "prefs": prefs,
            },
        }}});
        let mut browser = Browser::launch(driver, port, capabilities, profile);
        browser.sound_server = Some(sound_server);
        browser
    }

    fn launch(
        mut driver: Command,
        port: u16,
        capabilities: Value,
        profile: tempfile::TempDir,
    ) -> Browser {
        let name = driver.get_program().to_string_lossy().into_owned();
        let driver = driver
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{name} runs (scripts/setup-test-deps.sh installs it): {e}")
            });
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while ureq::get(&format!("{base}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "{name} did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut browser = Browser {
            driver,
            sound_server: None,
            base,
            session: String::new(),
            profile,
        };
        let created = browser.call("POST", "/session", Some(capabilities));
        browser.session = created["sessionId"]
            .as_str()
            .expect("a WebDriver session")
            .to_string();
        browser
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let request = ureq::request(method, &url).timeout(Duration::from_secs(60));
        let response = match body {
            Some(body) => request
                .set("Content-Type", "application/json")
                .send_string(&body.to_string()),
            None => request.call(),
        };
        let text = match response {
            Ok(r) => r.into_string().unwrap_or_default(),
            Err(ureq::Error::Status(code, r)) => {
                panic!(
                    "{method} {path}: {code} {}",
                    r.into_string().unwrap_or_default()
                )
            }
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let value: Value = serde_json::from_str(&text).expect("WebDriver answers JSON");
        value["value"].clone()
    }

    pub fn open(&self, url: &str) {
        self.call(
            "POST",
            &format!("/session/{}/url", self.session),
            Some(json!({ "url": url })),
        );
    }

    /// Runs `script` (a function body; `return` gives its value) in the page.
    pub fn run(&self, script: &str) -> Value {
        self.call(
            "POST",
            &format!("/session/{}/execute/sync", self.session),
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// Clicks the element `css` selects as a person would (WebDriver's element click: real
    /// input events, so the page gets a user gesture, which a script's `click()` is not).
    pub fn click(&self, css: &str) {
        let found = self.call(
            "POST",
            &format!("/session/{}/element", self.session),
            Some(json!({"using": "css selector", "value": css})),
        );
        let id = found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_string();
        self.call(
            "POST",
            &format!("/session/{}/element/{id}/click", self.session),
            Some(json!({})),
        );
    }

    /// Polls `script` until it returns something other than null or false (bounded).
    pub fn wait_for(&self, script: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.run(script);
            if !value.is_null() && value != Value::Bool(false) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "the page never gave `{script}` within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// CPU time the browser's processes (every one started with this browser's profile) have
    /// used so far, from the kernel's counters in /proc.
    pub fn cpu_time(&self) -> Duration {
        let profile = self.profile.path().to_string_lossy().into_owned();
        // SAFETY: sysconf has no preconditions; it reads a constant of the system.
        let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        let mut ticks = 0u64;
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let path = entry.path();
            let Ok(cmdline) = std::fs::read(path.join("cmdline")) else {
                continue;
            };
            if !String::from_utf8_lossy(&cmdline).contains(&profile) {
                continue;
            }
            let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
                continue;
            };
            // Fields after the command name (which may hold spaces, in parentheses):
            // utime and stime are the 14th and 15th of the line.
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            let fields: Vec<&str> = after.split_whitespace().collect();
            for i in [11, 12] {
                ticks += fields
                    .get(i)
                    .and_then(|f| f.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
        Duration::from_millis(ticks * 1000 / ticks_per_second)
    }

    /// A PNG of the page as it looks now.
    pub fn screenshot(&self) -> Vec<u8> {
        let value = self.call(
            "GET",
            &format!("/session/{}/screenshot", self.session),
            None,
        );
        decode_base64(value.as_str().expect("a screenshot"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = ureq::delete(&format!("{}/session/{}", self.base, self.session))
                .timeout(Duration::from_secs(10))
                .call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        if let Some(server) = &mut self.sound_server {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn encode_base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let word = chunk
            .iter()
            .enumerate()
            .fold(0u32, |w, (i, b)| w | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                char::from(ALPHABET[(word >> (18 - 6 * i) & 0x3f) as usize])
            } else {
                '='
            });
        }
    }
    out
}

pub fn decode_base64(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|c| *c != b'=') {
        let Some(v) = ALPHABET.iter().position(|a| *a == c) else {
            continue;
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        assert_eq!(encode_base64(b"hello!?"), "aGVsbG8hPw==");
        assert_eq!(encode_base64(b"hi"), "aGk=");
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(decode_base64(&encode_base64(&bytes)), bytes);
    }
}
