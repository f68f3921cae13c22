//! An agent transfers its caller to an external number on a trunk whose carrier takes REFER:
//! the gateway hands the call back to the carrier (RFC 3515) and frees its channel once the
//! carrier reports the new call answered. The carrier is SIPp, checking the REFER's headers.
use std::time::Duration;

use trunkgate_integration::agent::AgentProcess;
use trunkgate_integration::{Gateway, Sipp, TestConfig};

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn a_transfer_to_a_number_is_handed_back_to_a_carrier_that_takes_refer() {
    let gw = Gateway::start(
        &TestConfig {
            route: "queue:support".into(),
            trunk_extra: "refer = true".into(),
            extra: "[outbound]\ncountry_code = \"49\"\nnational_prefix = \"0\"\n".into(),
            ..TestConfig::default()
        }
        .to_toml(),
    );
    let mut agent = AgentProcess::interactive(&gw);
    agent.expect(&["event=welcome"], WAIT);
    agent.expect(&["event=state", "state=available"], WAIT);
    let target = gw.sip_udp();
    let carrier = std::thread::spawn(move || {
        Sipp::scenario("uac_refer.xml")
            .target(target)
            .timeout(Duration::from_secs(40))
            .run()
    });
    agent.expect(&["event=offer"], WAIT);
    agent.type_line("a");
    agent.expect(&["event=answered"], WAIT);
    // A premium number is refused before anything reaches the carrier.
    agent.type_line("transfer 09001234567");
    agent.expect(&["event=error", "+49900"], WAIT);
    agent.type_line("transfer 0301234567");
    // The carrier's side first: its report says what went wrong, if anything did.
    carrier.join().unwrap().assert_success();
    agent.expect(&["event=call_ended", "reason=transferred"], WAIT);
    gw.expect_line("call transferred", WAIT);
    let ended = gw.expect_line("call ended", WAIT);
    assert!(
        ended.contains("transferred by the carrier to +49301234567"),
        "{ended}"
    );
}
