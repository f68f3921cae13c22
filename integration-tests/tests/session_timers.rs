//! RFC 4028 session timers against the real daemon, with SIPp as a carrier that uses them: the
//! carrier refreshes, the gateway grants and echoes the timer, and an interval below the
//! gateway's Min-SE is refused with 422.
use std::time::Duration;

use trunkgate_integration::{Gateway, Sipp, TestConfig};

/// The example gateway with the session timer settings spelled out (they are the defaults).
fn gateway() -> Gateway {
    Gateway::start(
        &TestConfig {
            sip_extra: "session_expires_s = 1800\nmin_se_s = 90".into(),
            ..TestConfig::default()
        }
        .to_toml(),
    )
}

#[test]
fn a_carrier_refreshing_with_update_gets_the_session_timer_it_asked_for() {
    let gw = gateway();
    Sipp::scenario("uac_session_timer.xml")
        .target(gw.sip_udp())
        .timeout(Duration::from_secs(15))
        .run()
        .assert_success();
    // The call went on through the refresh until the caller's BYE.
    gw.expect_line("reason=RemoteBye", Duration::from_secs(5));
}

#[test]
fn a_session_interval_below_min_se_gets_422_with_ours() {
    let gw = gateway();
    Sipp::scenario("uac_session_422.xml")
        .target(gw.sip_udp())
        .timeout(Duration::from_secs(10))
        .run()
        .assert_success();
    gw.expect_line("below our Min-SE: 422", Duration::from_secs(5));
    assert!(
        gw.log_lines().iter().all(|l| !l.contains("call ended")),
        "a refused INVITE sets up no call"
    );
}
