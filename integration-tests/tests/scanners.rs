//! sipvicious, the toll fraudster's toolkit, against the gateway on loopback while a carrier
//! calls from its own address (127.0.0.2): the map finds a device that says 403, the password
//! cracker finds nothing and is banned within `ban_after` answers, the extension scan then gets
//! silence, no call goes out, and the carrier's call is unaffected.
use std::process::{Command, Stdio};
use std::time::Duration;

use trunkgate_integration::{ctl, output_within, Gateway, Sipp, TestConfig};

/// sipvicious stops by itself once nothing has answered for `--maximumtime` (3 s here).
const SCAN_LIMIT: Duration = Duration::from_secs(90);
const BAN_AFTER: u64 = 20;

fn scan(tool: &str, args: &[&str]) -> String {
    let mut command = Command::new(tool);
    // Never `-R` (report back to the author) nor `-A` (look up our address outside).
    command.args(args).stdin(Stdio::null());
    output_within(command, SCAN_LIMIT)
        .unwrap_or_else(|e| panic!("{tool} (install with scripts/setup-test-deps.sh): {e}"))
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[test]
fn sipvicious_finds_nothing_is_banned_and_the_carriers_calls_go_on() {
    let gw = Gateway::start(
        &TestConfig {
            allow: vec!["127.0.0.2/32".into()],
            sip_extra: format!("ban_after = {BAN_AFTER}\nban_window_s = 60\nban_s = 600"),
            // Agents may call out, international calls included: a way out exists to be found.
            trunk_extra: "[trunk.outbound]\nproxy = \"sip:127.0.0.2:5060\"\n\
                          caller_id = \"+4930555000\""
                .into(),
            extra: "[outbound]\ncountry_code = \"49\"\nnational_prefix = \"0\"\n\
                    allow = [\"+\"]\nblock = []"
                .into(),
            ..TestConfig::default()
        }
        .to_toml(),
    );
    let port = gw.sip_udp().port().to_string();
    // The carrier calls while the scans run.
    let carrier = {
        let target = gw.sip_udp();
        std::thread::spawn(move || {
            Sipp::scenario("uac_dtmf9.xml")
                .local_ip(std::net::Ipv4Addr::new(127, 0, 0, 2))
                .target(target)
                .timeout(Duration::from_secs(60))
                .run()
        })
    };
    // One after the other, all from 127.0.0.1: sipvicious 0.3.3 ignores its -b option.
    let map = scan("svmap", &["-p", &port, "127.0.0.1"]);
    let crack = scan(
        "svcrack",
        &[
            "--maximumtime=3",
            "-p",
            &port,
            "-u",
            "100",
            "-r",
            "1000-1099",
            "127.0.0.1",
        ],
    );
    let war = scan(
        "svwar",
        &[
            "--force",
            "--maximumtime=3",
            "-p",
            &port,
            "-m",
            "INVITE",
            "-e",
            "100-139",
            "127.0.0.1",
        ],
    );
    // The map sees a SIP device answering 403: the port is open, nothing more (not even which
    // product it is).
    assert!(map.contains(&format!("127.0.0.1:{port}")), "svmap:\n{map}");
    assert!(!map.contains("trunkgate"), "svmap:\n{map}");
    // No extension, no password.
    assert!(war.contains("found nothing"), "svwar:\n{war}");
    assert!(!war.contains("| Extension"), "svwar:\n{war}");
    assert!(crack.contains("found nothing"), "svcrack:\n{crack}");
    assert!(!crack.contains("| Password"), "svcrack:\n{crack}");
    // The scanning address is banned after at most BAN_AFTER answers, whatever it tried.
    let bans = ctl(gw.admin(), &["bans"]).stdout;
    assert!(
        bans.contains("127.0.0.1 "),
        "the scanner is banned:\n{bans}"
    );
    assert!(
        !bans.contains("127.0.0.2"),
        "the carrier is never banned:\n{bans}"
    );
    let metrics = gw.scrape();
    let answered = metric(&metrics, "trunkgate_sip_acl_rejected_total");
    assert!(
        answered <= BAN_AFTER,
        "{answered} requests answered 403: at most {BAN_AFTER} before the ban"
    );
    assert!(
        metric(&metrics, "trunkgate_sip_silenced_total") > 0,
        "{metrics}"
    );
    // Nothing went out: the gateway sent no INVITE anywhere.
    assert_eq!(
        metric(
            &metrics,
            "trunkgate_sip_requests_total{direction=\"out\",method=\"INVITE\"}"
        ),
        0,
        "{metrics}"
    );
    assert!(
        !metrics.contains("direction=\"outbound\",trunk=\"carrier\"} 1"),
        "no outbound call was started: {metrics}"
    );
    // The carrier's call went through the scans untouched.
    carrier.join().expect("sipp ran").assert_success();
}

/// Sends one OPTIONS from 127.0.0.1 and waits up to a second for an answer's status line.
fn options_from_a_stranger(gateway: std::net::SocketAddr, n: u32) -> Option<String> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("a udp socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("a read timeout");
    let me = socket.local_addr().expect("its address");
    let request = format!(
        "OPTIONS sip:{gateway} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-probe-{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@{me}>;tag=p{n}\r\nTo: <sip:{gateway}>\r\n\
         Call-ID: probe-{n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    socket.send_to(request.as_bytes(), gateway).expect("sent");
    let mut buf = [0u8; 2048];
    let (n, _) = socket.recv_from(&mut buf).ok()?;
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .map(str::to_owned)
}

#[test]
fn a_reload_changes_the_scanner_limits() {
    let config = |ban_after: u32| {
        TestConfig {
            allow: vec!["127.0.0.2/32".into()],
            sip_extra: format!("ban_after = {ban_after}\nban_window_s = 60\nban_s = 600"),
            ..TestConfig::default()
        }
        .to_toml()
    };
    let gw = Gateway::start(&config(1000));
    for n in 0..5 {
        assert_eq!(
            options_from_a_stranger(gw.sip_udp(), n).as_deref(),
            Some("SIP/2.0 403 Forbidden"),
            "request {n} under the first limits"
        );
    }
    std::fs::write(gw.config_path(), config(6)).expect("rewriting the config");
    let reload = ctl(gw.admin(), &["reload"]);
    assert!(reload.ok, "{reload:?}");
    assert!(
        !reload.stdout.contains("ban"),
        "applied, no restart needed: {reload:?}"
    );
    // Five answered so far in this window: one more is answered, the next is not.
    assert_eq!(
        options_from_a_stranger(gw.sip_udp(), 5).as_deref(),
        Some("SIP/2.0 403 Forbidden")
    );
    assert_eq!(options_from_a_stranger(gw.sip_udp(), 6), None, "banned now");
}
