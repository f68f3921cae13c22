//! The real binary under a notify socket the test owns, as systemd runs it with `Type=notify`
//! and `WatchdogSec=`: READY once the listeners answer, STATUS, WATCHDOG pings only while the
//! loops turn, RELOADING then READY around a reload, STOPPING when a drain starts.
use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use trunkgate_integration::{config_for_tests, GatewayBuilder, Sipp};

/// Every notification received, with when.
type Heard = Arc<Mutex<Vec<(Instant, String)>>>;

fn listen(socket: UnixDatagram) -> Heard {
    let heard: Heard = Arc::default();
    let store = heard.clone();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // Ends once the test drops its handle on what was heard.
        loop {
            if let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                store.lock().unwrap().push((Instant::now(), text));
            }
            if Arc::strong_count(&store) == 1 {
                return;
            }
        }
    });
    heard
}

fn wait_until(heard: &Heard, limit: Duration, done: impl Fn(&[(Instant, String)]) -> bool) {
    let deadline = Instant::now() + limit;
    while !done(&heard.lock().unwrap()) {
        assert!(
            Instant::now() < deadline,
            "not within {limit:?}: {:?}",
            heard
                .lock()
                .unwrap()
                .iter()
                .map(|(_, m)| m)
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn pings(heard: &[(Instant, String)]) -> Vec<Instant> {
    heard
        .iter()
        .filter(|(_, m)| m == "WATCHDOG=1")
        .map(|(t, _)| *t)
        .collect()
}

#[test]
fn systemd_hears_ready_status_watchdog_pings_that_stop_with_a_stuck_loop_reloading_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let heard = listen(UnixDatagram::bind(&path).unwrap());
    let gw = GatewayBuilder::new(&config_for_tests(""))
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "1000000")
        .start();
    wait_until(&heard, Duration::from_secs(10), |h| {
        h.iter().any(|(_, m)| m.starts_with("READY=1"))
    });
    let first = heard.lock().unwrap()[0].1.clone();
    assert!(
        first.starts_with("READY=1\nSTATUS=0 calls, 0 callers waiting, 0 agents logged in"),
        "{first:?}"
    );
    // Ready means every listener answers.
    Sipp::scenario("uac_options.xml")
        .target(gw.sip_udp())
        .timeout(Duration::from_secs(10))
        .run()
        .assert_success();
    trunkgate::ops::ctl::get(gw.admin(), "/healthz").expect("the admin api answers");
    trunkgate::ops::ctl::get(gw.metrics(), "/metrics").expect("the metrics listener answers");
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .connect(gw.quic())
        .expect("the agent link is bound");

    // Half of WATCHDOG_USEC apart, while every loop turns.
    wait_until(&heard, Duration::from_secs(5), |h| pings(h).len() >= 3);
    // The SIP loop stuck for 3 s: no ping meanwhile, then they resume.
    let stalled = Instant::now();
    trunkgate::ops::ctl::post(gw.admin(), "/debug/stall?loop=sip&ms=3000")
        .expect("debug builds stall on request");
    gw.expect_line("loop stopped turning", Duration::from_secs(5));
    wait_until(&heard, Duration::from_secs(10), |h| {
        pings(h)
            .iter()
            .filter(|t| **t > stalled + Duration::from_secs(3))
            .count()
            >= 2
    });
    let after: Vec<Instant> = pings(&heard.lock().unwrap())
        .into_iter()
        .filter(|t| *t > stalled)
        .collect();
    let gap = after
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    let first_after = after[0] - stalled;
    let longest = gap.max(first_after);
    assert!(
        longest >= Duration::from_millis(2500),
        "the pings went on while the sip loop was stuck (longest gap {longest:?})"
    );
    gw.expect_line("loop turns again", Duration::from_secs(5));

    // SIGHUP reloads: RELOADING=1 with the monotonic clock, then READY=1 again.
    gw.signal(libc::SIGHUP);
    wait_until(&heard, Duration::from_secs(5), |h| {
        let reloading = h
            .iter()
            .position(|(_, m)| m.starts_with("RELOADING=1\nMONOTONIC_USEC="));
        reloading.is_some_and(|r| h[r..].iter().any(|(_, m)| m.starts_with("READY=1")))
    });
    gw.expect_line("reloaded ", Duration::from_secs(5));

    gw.signal(libc::SIGTERM);
    wait_until(&heard, Duration::from_secs(5), |h| {
        h.iter().any(|(_, m)| m.starts_with("STOPPING=1"))
    });
    let messages: Vec<String> = heard
        .lock()
        .unwrap()
        .iter()
        .map(|(_, m)| m.clone())
        .collect();
    let at = |prefix: &str| messages.iter().position(|m| m.starts_with(prefix)).unwrap();
    assert!(at("READY=1") < at("WATCHDOG=1") && at("WATCHDOG=1") < at("RELOADING=1"));
    assert!(at("RELOADING=1") < at("STOPPING=1"));
    println!(
        "systemd: watchdog pings every 500 ms; with the sip loop stuck 3 s the longest gap was {} ms",
        longest.as_millis()
    );
}
