//! Carrier calls against the real daemon, placed by SIPp: the IVR answers, DTMF steers it, and
//! the SIP edges (CANCEL, hold, late offer, OPTIONS, strangers) get the answers RFC 3261 wants.
use std::time::Duration;

use trunkgate_integration::{Gateway, Sipp, TestConfig, Transport};

fn gateway(config: TestConfig) -> Gateway {
    Gateway::start(&config.to_toml())
}

fn demo() -> Gateway {
    gateway(TestConfig::default())
}

#[test]
fn pressing_9_gets_the_gateways_bye_after_goodbye() {
    let gw = demo();
    let run = Sipp::scenario("uac_dtmf9.xml")
        .target(gw.sip_udp())
        .timeout(Duration::from_secs(40))
        .run();
    run.assert_success();
    let line = gw.expect_line("ivr hangs up", Duration::from_secs(5));
    assert!(line.contains("digits=\"9\""), "exactly one digit 9: {line}");
    // The call's media stops with the BYE: its actor ends rather than streaming on.
    gw.expect_line("call ended reason=Local", Duration::from_secs(5));
}

#[test]
fn readback_menu_collects_digits_then_9_ends_the_call() {
    let gw = demo();
    let run = Sipp::scenario("uac_readback.xml")
        .target(gw.sip_udp())
        .timeout(Duration::from_secs(60))
        .run();
    run.assert_success();
    let line = gw.expect_line("ivr hangs up", Duration::from_secs(5));
    assert!(
        line.contains("digits=\"124#9\""),
        "no digit lost or repeated: {line}"
    );
}

#[test]
fn caller_bye_ends_the_call() {
    let gw = demo();
    Sipp::scenario("uac_bye.xml")
        .target(gw.sip_udp())
        .timeout(Duration::from_secs(30))
        .run()
        .assert_success();
    gw.expect_line("reason=RemoteBye", Duration::from_secs(5));
}

#[test]
fn hold_and_resume_get_the_right_directions() {
    let gw = demo();
    Sipp::scenario("uac_hold.xml")
        .target(gw.sip_udp())
        .timeout(Duration::from_secs(30))
        .run()
        .assert_success();
}

#[test]
fn late_offer_call_is_answered_with_an_offer_and_completes() {
    let gw = demo();
    Sipp::scenario("uac_late_offer.xml")
        .target(gw.sip_udp())
        .timeout(Duration::from_secs(30))
        .run()
        .assert_success();
}

#[test]
fn options_is_answered_with_allow() {
    let gw = demo();
    Sipp::scenario("uac_options.xml")
        .target(gw.sip_udp())
        .timeout(Duration::from_secs(15))
        .run()
        .assert_success();
}

#[test]
fn cancel_while_ringing_gets_487() {
    let gw = gateway(TestConfig {
        ring_ms: 5000,
        ..TestConfig::default()
    });
    Sipp::scenario("uac_cancel.xml")
        .target(gw.sip_udp())
        .timeout(Duration::from_secs(20))
        .run()
        .assert_success();
    gw.expect_line("call ended while ringing", Duration::from_secs(5));
}

#[test]
fn caller_from_an_address_no_trunk_allows_gets_403() {
    let gw = gateway(TestConfig {
        allow: vec!["192.0.2.0/24".into()],
        ..TestConfig::default()
    });
    Sipp::scenario("uac_403.xml")
        .target(gw.sip_udp())
        .timeout(Duration::from_secs(15))
        .run()
        .assert_success();
    assert!(
        gw.log_lines().iter().all(|l| !l.contains("answered")),
        "no call may be set up for a stranger"
    );
}

#[test]
fn calls_over_tcp_work_end_to_end() {
    let gw = demo();
    Sipp::scenario("uac_dtmf9.xml")
        .target(gw.sip_tcp())
        .transport(Transport::Tcp)
        .timeout(Duration::from_secs(40))
        .run()
        .assert_success();
    gw.expect_line("ivr hangs up", Duration::from_secs(5));
}

#[test]
fn two_hundred_calls_at_20_per_second_all_succeed() {
    let gw = demo();
    let run = Sipp::builtin("uac")
        .target(gw.sip_udp())
        .calls(200)
        .rate(20)
        .without_message_trace()
        .timeout(Duration::from_secs(60))
        .run();
    run.assert_success();
    assert_eq!(run.successful, 200);
}

#[test]
fn two_hundred_calls_with_speech_and_dtmf_at_20_per_second_all_get_the_bye() {
    // About 160 calls at once, each with 7 s of RTP from the carrier, the IVR's prompts going
    // back, and DTMF 9 ending it.
    let gw = demo();
    let run = Sipp::scenario("uac_dtmf9.xml")
        .target(gw.sip_udp())
        .calls(200)
        .rate(20)
        .without_message_trace()
        .timeout(Duration::from_secs(90))
        .run();
    run.assert_success();
    let hangups = gw
        .log_lines()
        .iter()
        .filter(|l| l.contains("ivr hangs up") && l.contains("digits=\"9\""))
        .count();
    assert_eq!(
        hangups, 200,
        "every call heard exactly one 9 and was ended by the gateway"
    );
    let ended = gw
        .log_lines()
        .iter()
        .filter(|l| l.contains("call ended reason=Local"))
        .count();
    assert_eq!(ended, 200, "every call's media stopped with its BYE");
}

#[test]
fn in_band_dtmf_9_from_a_carrier_without_telephone_event_ends_the_call() {
    let gw = demo();
    Sipp::scenario("uac_inband9.xml")
        .target(gw.sip_udp())
        .timeout(Duration::from_secs(30))
        .run()
        .assert_success();
    let line = gw.expect_line("ivr hangs up", Duration::from_secs(5));
    assert!(line.contains("digits=\"9\""), "one tone, one digit: {line}");
}

#[test]
fn a_carrier_that_sends_no_rtp_is_hung_up_after_the_rtp_timeout() {
    let config = TestConfig::default()
        .to_toml()
        .replace("rtp_timeout_ms = 60000", "rtp_timeout_ms = 2000");
    let gw = Gateway::start(&config);
    let run = Sipp::scenario("uac_silent.xml")
        .target(gw.sip_udp())
        .timeout(Duration::from_secs(20))
        .run();
    run.assert_success();
    gw.expect_line("no rtp from the carrier", Duration::from_secs(5));
}
