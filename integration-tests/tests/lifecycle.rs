//! Starting and stopping the daemon the way systemd does.
use std::time::Duration;

use trunkgate_integration::{config_for_tests, Gateway, Sipp};

#[test]
fn sigterm_hangs_up_calls_in_progress_and_exits_cleanly() {
    let gw = Gateway::start(&config_for_tests(""));
    let target = gw.sip_udp();
    // A carrier call that sends no media and waits up to 15 s for the gateway's BYE.
    let carrier = std::thread::spawn(move || {
        Sipp::scenario("uac_silent.xml")
            .target(target)
            .timeout(Duration::from_secs(20))
            .run()
    });
    gw.expect_line("answered", Duration::from_secs(10));
    let started = std::time::Instant::now();
    let status = gw.stop().expect("the daemon stops on SIGTERM, not SIGKILL");
    assert!(status.success(), "exit status {status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "shutdown took {:?}",
        started.elapsed()
    );
    let run = carrier.join().unwrap();
    // The call ended with our BYE (answered 200 by SIPp), not with the carrier timing out.
    run.assert_success();
}
