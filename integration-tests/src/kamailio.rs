//! Kamailio as a carrier's registrar: digest authentication against a fixed user list, then
//! calls for a registered user relayed to its Contact. Started on loopback with a config the
//! harness writes, no database (usrloc in memory: a restart forgets every registration, as a
//! carrier's registrar losing its state would).
//!
//! Facts this relies on (Kamailio 5.6 from Debian): `-DD -E` stays in the foreground and logs
//! to stderr; `-Y DIR` puts its runtime files in DIR; `-m`/`-M` size its shared and private
//! memory in MB (the defaults want hundreds).
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::ports::free_sip_port;
use crate::process::{terminate, POLL_INTERVAL};

const MODULES: &str = "/usr/lib/x86_64-linux-gnu/kamailio/modules";
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How the registrar is set up.
#[derive(Clone, Debug)]
pub struct KamailioConfig {
    /// (username, password) pairs it accepts.
    pub users: Vec<(String, String)>,
    /// The longest registration it grants (`max_expires`), seconds.
    pub max_expires: u32,
    /// Its certificate and key for SIP over TLS on the port above its UDP/TCP one (the tls
    /// module, Debian's `kamailio-tls-modules`); `None`: no TLS.
    pub tls: Option<crate::pki::PemPair>,
    /// Where INVITEs for users not registered here go (the carrier's "PSTN"), once the
    /// sender answered a proxy digest challenge (407) with one of `users`; `None`: 404.
    pub pstn: Option<SocketAddr>,
}

impl Default for KamailioConfig {
    fn default() -> Self {
        Self {
            users: vec![("branch1".into(), "secret".into())],
            max_expires: 3600,
            tls: None,
            pstn: None,
        }
    }
}

pub struct Kamailio {
    child: Option<Child>,
    dir: TempDir,
    port: u16,
    config: KamailioConfig,
    /// Each run's log, one file per start.
    logs: Vec<PathBuf>,
}

impl Kamailio {
    /// Starts it on a free UDP and TCP port of 127.0.0.1 and waits until it listens.
    pub fn start(config: KamailioConfig) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("trunkgate-kamailio-")
            .tempdir()
            .expect("a temp dir for kamailio");
        let mut kamailio = Kamailio {
            child: None,
            port: free_sip_port(),
            dir,
            config,
            logs: Vec::new(),
        };
        kamailio.write_config();
        kamailio.run();
        kamailio
    }

    pub fn sip_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Where it takes SIP over TLS (with [`KamailioConfig::tls`]).
    pub fn sip_tls_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port + 1))
    }

    /// Stops it and starts a fresh one on the same port: every registration is forgotten.
    /// Returns when the new one listens.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, STOP_GRACE);
        }
    }

    /// The current run's output.
    pub fn log(&self) -> String {
        self.logs
            .last()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default()
    }

    /// Waits up to `limit` for a line of the current run containing `needle`.
    pub fn wait_for_log(&self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while !self.log().contains(needle) {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        true
    }

    fn run(&mut self) {
        let log_path = self
            .dir
            .path()
            .join(format!("kamailio-{}.log", self.logs.len()));
        let log = File::create(&log_path).expect("creating the kamailio log");
        self.logs.push(log_path);
        let child = Command::new("kamailio")
            .args(["-DD", "-E", "-m", "32", "-M", "4", "-f"])
            .arg(self.config_path())
            .arg("-Y")
            .arg(self.dir.path())
            .arg("-P")
            .arg(self.dir.path().join("kamailio.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("duplicating the log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting kamailio (install it with scripts/setup-test-deps.sh): {e}")
            });
        self.child = Some(child);
        if !self.wait_for_log("kamailio is ready", READY_TIMEOUT) {
            let output = self.log();
            self.stop();
            panic!("kamailio did not start; its output:\n{output}");
        }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("kamailio.cfg")
    }

    fn write_config(&self) {
        let users: String = self
            .config
            .users
            .iter()
            .map(|(user, password)| format!("    $sht(creds=>{user}) = \"{password}\";\n"))
            .collect();
        let (tls_module, tls_listen) = match &self.config.tls {
            Some(pair) => {
                let tls_cfg = self.dir.path().join("tls.cfg");
                std::fs::write(
                    &tls_cfg,
                    format!(
                        "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\n\
                         require_certificate = no\nprivate_key = {}\ncertificate = {}\n\n\
                         [client:default]\nmethod = TLSv1.2+\nverify_certificate = no\n\
                         require_certificate = no\n",
                        pair.key.display(),
                        pair.cert.display()
                    ),
                )
                .expect("writing kamailio's tls.cfg");
                (
                    format!(
                        "loadmodule \"tls.so\"\nmodparam(\"tls\", \"config\", \"{}\")\n",
                        tls_cfg.display()
                    ),
                    format!("enable_tls=yes\nlisten=tls:127.0.0.1:{}\n", self.port + 1),
                )
            }
            None => (String::new(), String::new()),
        };
        let text = format!(
            r#"#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
auto_aliases=no
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
{tls_listen}mpath="{MODULES}/"
{tls_module}loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "htable.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
modparam("usrloc", "db_mode", 0)
modparam("registrar", "max_expires", {max_expires})
modparam("registrar", "min_expires", 1)
modparam("htable", "htable", "creds=>size=4;")

event_route[htable:mod-init] {{
{users}}}

request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (is_method("REGISTER")) {{
        if (!pv_www_authenticate("$td", "$sht(creds=>$au)", "0")) {{
            xlog("L_INFO", "challenge: REGISTER from $si:$sp user $au\n");
            www_challenge("$td", "1");
            exit;
        }}
        if (!save("location")) {{
            sl_reply_error();
            exit;
        }}
        xlog("L_INFO", "registered: $au contact $ct expires $hdr(Expires)\n");
        exit;
    }}
    if (has_totag()) {{
        t_relay();
        exit;
    }}
    if (is_method("INVITE")) {{
        if (!lookup("location")) {{
{pstn}            xlog("L_INFO", "not registered: $rU\n");
            sl_send_reply("404", "Not Registered");
            exit;
        }}
        xlog("L_INFO", "relaying INVITE for $rU to $ru\n");
        t_relay();
        exit;
    }}
    if (is_method("OPTIONS")) {{
        xlog("L_INFO", "options from $si:$sp\n");
        sl_send_reply("200", "OK");
        exit;
    }}
    t_relay();
}}

event_route[core:worker-one-init] {{
    xlog("L_NOTICE", "kamailio is ready\n");
}}
"#,
            port = self.port,
            max_expires = self.config.max_expires,
            pstn = match self.config.pstn {
                Some(pstn) => format!(
                    "            if (!pv_proxy_authenticate(\"$fd\", \"$sht(creds=>$au)\", \"0\")) {{\n\
                     \x20               xlog(\"L_INFO\", \"challenge: INVITE from $si:$sp user $au\\n\");\n\
                     \x20               proxy_challenge(\"$fd\", \"1\");\n\
                     \x20               exit;\n\
                     \x20           }}\n\
                     \x20           consume_credentials();\n\
                     \x20           xlog(\"L_INFO\", \"to the pstn: $rU from $au\\n\");\n\
                     \x20           $du = \"sip:{pstn}\";\n\
                     \x20           t_relay();\n\
                     \x20           exit;\n"
                ),
                None => String::new(),
            },
        );
        std::fs::write(self.config_path(), text).expect("writing kamailio.cfg");
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("---- kamailio output ----\n{}", self.log());
        }
    }
}
