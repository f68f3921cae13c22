//! A trunk that registers with its carrier's registrar: a real Kamailio requiring digest
//! authentication. The gateway registers, answers the challenge, takes the calls the registrar
//! routes to it (from an address the trunk's `allow` does not list: the registration vouches
//! for it), refreshes, and is registered again soon after the registrar restarts and forgets
//! it; an agent's call through the registrar is challenged (407) and answered with the
//! trunk's credentials.
use std::time::{Duration, Instant};

use trunkgate_integration::agent::{demo_args, AgentProcess};
use trunkgate_integration::bench::load::wait_until;
use trunkgate_integration::kamailio::{Kamailio, KamailioConfig};
use trunkgate_integration::pki::TestPki;
use trunkgate_integration::{
    audio, ctl, prompt_path, Baresip, Gateway, Sipp, TestConfig, DEMO_CREDENTIAL,
};

const WAIT: Duration = Duration::from_secs(10);

/// A caller dialling the branch's number at the registrar, for `secs` seconds.
fn call_through(kamailio: &Kamailio, secs: u64) -> trunkgate_integration::BaresipRun {
    Baresip::new("caller")
        .dial(format!("sip:branch1@{}", kamailio.sip_addr()))
        .duration(Duration::from_secs(secs))
        .run()
}

/// `trunkgate ctl trunks` once it shows `needle` (the admin API is refreshed every second).
fn trunks_showing(gw: &Gateway, needle: &str) -> String {
    let mut shown = String::new();
    let found = wait_until(WAIT, || {
        shown = ctl(gw.admin(), &["trunks"]).stdout;
        shown.contains(needle)
    });
    assert!(found, "ctl trunks never showed {needle:?}:\n{shown}");
    shown
}

fn registering_gateway(kamailio: &Kamailio, password: &str) -> Gateway {
    registering_gateway_over(kamailio, password, "udp")
}

fn registering_gateway_over(kamailio: &Kamailio, password: &str, transport: &str) -> Gateway {
    registering(
        &format!("sip:{};transport={transport}", kamailio.sip_addr()),
        password,
        "",
        String::new(),
    )
}

/// A gateway whose trunk registers with `registrar` as branch1 with `password`, keep-alives
/// every second; `trunk_extra` and `sip_extra` add lines to the trunk and to `[sip]`.
fn registering(registrar: &str, password: &str, trunk_extra: &str, sip_extra: String) -> Gateway {
    Gateway::start(
        &TestConfig {
            sip_extra,
            trunk_extra: format!(
                "{trunk_extra}\n[trunk.credentials]\nusername = \"branch1\"\n\
                 password = \"{password}\"\n[trunk.register]\nregistrar = \"{registrar}\"\n\
                 aor = \"sip:branch1@carrier.test\"\nexpires_s = 600\nkeepalive_s = 1"
            ),
            // Not the registrar's address: calls it relays are the trunk's for its registration.
            allow: vec!["192.0.2.0/24".into()],
            ..TestConfig::default()
        }
        .to_toml(),
    )
}

#[test]
fn a_trunk_registers_with_digest_and_takes_the_calls_its_registrar_routes_to_it() {
    let kamailio = Kamailio::start(KamailioConfig::default());
    let gw = registering_gateway(&kamailio, "secret");
    let registered = gw.expect_line("registered", WAIT);
    assert!(registered.contains("trunk=carrier"), "{registered}");
    assert!(
        kamailio.log().contains("challenge: REGISTER"),
        "the first REGISTER was challenged:\n{}",
        kamailio.log()
    );
    assert!(
        kamailio.wait_for_log("registered: branch1", WAIT),
        "{}",
        kamailio.log()
    );
    // Keep-alives (every second here) reach the registrar while registered.
    assert!(
        kamailio.wait_for_log("options from 127.0.0.1", WAIT),
        "{}",
        kamailio.log()
    );
    let shown = trunks_showing(&gw, "registered");
    assert!(
        shown.contains("carrier") && shown.contains("sip:branch1@carrier.test"),
        "{shown}"
    );
    assert!(
        wait_until(WAIT, || gw
            .scrape()
            .contains("trunkgate_trunk_registered{trunk=\"carrier\"} 1")),
        "{}",
        gw.scrape()
    );
    // A caller dials the branch's number at the carrier; the registrar finds the gateway.
    let run = call_through(&kamailio, 4);
    assert!(run.call_established(), "baresip log:\n{}", run.log);
    let heard = run.received_audio();
    let m = audio::best_match(&heard.samples, &audio::prompt("welcome").samples)
        .expect("something was heard");
    assert!(m.score > 0.9, "welcome prompt correlation {:.3}", m.score);
}

#[test]
fn wrong_credentials_are_reported_and_retried_with_back_off() {
    let kamailio = Kamailio::start(KamailioConfig::default());
    let gw = registering_gateway(&kamailio, "not-the-secret");
    let failed = gw.expect_line("registration failed", WAIT);
    assert!(failed.contains("credentials refused"), "{failed}");
    assert!(failed.contains("retry_in_s=5"), "{failed}");
    let shown = trunks_showing(&gw, "failed");
    assert!(shown.contains("credentials refused; retry in"), "{shown}");
    assert!(
        gw.scrape()
            .contains("trunkgate_trunk_registered{trunk=\"carrier\"} 0"),
        "{}",
        gw.scrape()
    );
    // The password is nowhere in what the gateway says.
    assert!(!gw.log_lines().iter().any(|l| l.contains("not-the-secret")));
    assert!(!ctl(gw.admin(), &["trunks", "--json"])
        .stdout
        .contains("not-the-secret"));
}

#[test]
fn after_the_registrar_restarts_and_forgets_it_the_trunk_is_registered_again_and_reachable() {
    // The registrar grants 10 s, so the gateway refreshes every 5 s.
    let mut kamailio = Kamailio::start(KamailioConfig {
        max_expires: 10,
        ..KamailioConfig::default()
    });
    let gw = registering_gateway(&kamailio, "secret");
    gw.expect_line("registered", WAIT);
    kamailio.restart();
    let restarted = Instant::now();
    assert!(
        kamailio.wait_for_log("registered: branch1", Duration::from_secs(15)),
        "the gateway registered again with the fresh registrar:\n{}",
        kamailio.log()
    );
    let recovered = restarted.elapsed();
    eprintln!(
        "registered again {:.1} s after the registrar restarted",
        recovered.as_secs_f64()
    );
    let run = call_through(&kamailio, 3);
    assert!(run.call_established(), "baresip log:\n{}", run.log);
}

#[test]
fn over_tcp_the_trunk_registers_again_as_soon_as_the_restarted_registrar_is_back() {
    // A grant of an hour: recovery cannot come from the refresh, only from the lost connection.
    let mut kamailio = Kamailio::start(KamailioConfig::default());
    let gw = registering_gateway_over(&kamailio, "secret", "tcp");
    gw.expect_line("registered", WAIT);
    assert!(
        kamailio.wait_for_log("registered: branch1", WAIT),
        "{}",
        kamailio.log()
    );
    let cursor = gw.log_cursor();
    kamailio.restart();
    let restarted = Instant::now();
    let again = gw.wait_for_line_after(cursor, Duration::from_secs(20), |l| {
        l.contains("registered") && !l.contains("failed")
    });
    assert!(
        again.is_some(),
        "registered again; kamailio:\n{}",
        kamailio.log()
    );
    let recovered = restarted.elapsed();
    eprintln!(
        "over tcp, registered again {:.1} s after the registrar restarted",
        recovered.as_secs_f64()
    );
    assert!(recovered < Duration::from_secs(4), "{recovered:?}");
    let run = call_through(&kamailio, 3);
    assert!(run.call_established(), "baresip log:\n{}", run.log);
}

/// A gateway registering over TLS with `trust` (`tls_ca = …` or `tls_fingerprint = …`) and a
/// TLS listener of its own, where the registrar delivers calls.
fn registering_over_tls(kamailio: &Kamailio, pki: &TestPki, trust: &str) -> Gateway {
    registering(
        &format!("sip:{};transport=tls", kamailio.sip_tls_addr()),
        "secret",
        &format!("{trust}\ntls_server_name = \"localhost\""),
        format!(
            "tls = [\"127.0.0.1:0\"]\ntls_certificate = {:?}\ntls_private_key = {:?}",
            pki.gateway.cert.display().to_string(),
            pki.gateway.key.display().to_string()
        ),
    )
}

#[test]
fn over_tls_the_trunk_registers_with_a_registrar_it_trusts_and_takes_its_calls() {
    let pki = TestPki::new();
    let carrier = pki.issue("registrar", rcgen::ExtendedKeyUsagePurpose::ServerAuth);
    let kamailio = Kamailio::start(KamailioConfig {
        tls: Some(carrier),
        ..KamailioConfig::default()
    });
    let gw = registering_over_tls(
        &kamailio,
        &pki,
        &format!("tls_ca = {:?}", pki.ca.display().to_string()),
    );
    let registered = gw.expect_line("registered", WAIT);
    assert!(registered.contains("trunk=carrier"), "{registered}");
    assert!(
        kamailio.wait_for_log("registered: branch1 contact <sip:branch1@127.0.0.1", WAIT),
        "{}",
        kamailio.log()
    );
    assert!(
        kamailio.log().contains("transport=tls"),
        "{}",
        kamailio.log()
    );
    // The registrar delivers the call over TLS to the gateway's listener.
    let run = call_through(&kamailio, 3);
    assert!(run.call_established(), "baresip log:\n{}", run.log);
}

#[test]
fn over_tls_a_registrar_whose_certificate_is_not_trusted_gets_nothing() {
    let pki = TestPki::new();
    // Kamailio presents a certificate from a CA the trunk does not trust.
    let kamailio = Kamailio::start(KamailioConfig {
        tls: Some(pki.stranger.clone()),
        ..KamailioConfig::default()
    });
    let gw = registering_over_tls(
        &kamailio,
        &pki,
        &format!("tls_ca = {:?}", pki.ca.display().to_string()),
    );
    let refused = gw.expect_line("sip tls connection to the carrier failed", WAIT);
    assert!(refused.to_lowercase().contains("certificate"), "{refused}");
    gw.expect_line("registration failed", WAIT);
    assert!(
        !kamailio.log().contains("challenge: REGISTER"),
        "no REGISTER reached it"
    );
    // Pinning that very certificate's fingerprint is another way to trust it.
    let pinned = registering_over_tls(
        &kamailio,
        &pki,
        &format!("tls_fingerprint = {:?}", fingerprint(&pki.stranger.cert)),
    );
    pinned.expect_line("registered", WAIT);
}

fn fingerprint(pem: &std::path::Path) -> String {
    use sha2::Digest;
    let der = trunkgate_integration::sip_tls::certificate_der(pem);
    let hash = sha2::Sha256::digest(&der);
    hash.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[test]
fn a_carrier_that_challenges_our_bye_gets_it_again_with_the_trunks_credentials() {
    let gw = Gateway::start(
        &TestConfig {
            trunk_extra: "[trunk.credentials]\nusername = \"branch1\"\npassword = \"secret\""
                .into(),
            ..TestConfig::default()
        }
        .to_toml(),
    );
    Sipp::scenario("uac_challenged_bye.xml")
        .target(gw.sip_udp())
        .timeout(Duration::from_secs(30))
        .run()
        .assert_success();
}

#[test]
fn an_agents_call_through_the_registrar_is_challenged_answered_and_connected() {
    let callee = Baresip::new("49301234567")
        .auto_answer()
        .source_wav(prompt_path("enter-digits"))
        .duration(Duration::from_secs(20))
        .start();
    let kamailio = Kamailio::start(KamailioConfig {
        pstn: Some(callee.sip_addr()),
        ..KamailioConfig::default()
    });
    let registrar = format!("sip:{};transport=udp", kamailio.sip_addr());
    let outbound = format!(
        "[trunk.outbound]\nproxy = \"{registrar}\"\ncaller_id = \"+4930555000\"\n\
         number_format = \"international\"\nidentity = \"pai\"",
    );
    let gw = Gateway::start(
        &TestConfig {
            trunk_extra: format!(
                "[trunk.credentials]\nusername = \"branch1\"\npassword = \"secret\"\n\
                 [trunk.register]\nregistrar = \"{registrar}\"\n{outbound}"
            ),
            allow: vec!["192.0.2.0/24".into()],
            extra: "[outbound]\ncountry_code = \"49\"\nnational_prefix = \"0\"\n".into(),
            ..TestConfig::default()
        }
        .to_toml(),
    );
    gw.expect_line("registered", WAIT);
    let dir = tempfile::tempdir().unwrap();
    let agent_rec = dir.path().join("agent-heard.wav");
    let mut agent = AgentProcess::start(
        &demo_args(
            &gw,
            &[
                "--dial",
                "030 1234567",
                "--record",
                agent_rec.to_str().unwrap(),
                "--hangup-after-ms",
                "7000",
                "--calls",
                "1",
                "--duration-secs",
                "30",
            ],
        ),
        DEMO_CREDENTIAL,
    );
    agent.expect(&["event=answered"], WAIT);
    agent.expect(&["event=call_ended"], Duration::from_secs(15));
    agent.wait_exit(WAIT);
    let log = kamailio.log();
    assert!(log.contains("challenge: INVITE"), "{log}");
    assert!(
        log.contains("to the pstn: 49301234567 from branch1"),
        "the second INVITE carried the trunk's credentials:\n{log}"
    );
    let run = callee.stop();
    assert!(run.call_established(), "{}", run.log);
    let to_agent = audio::phrase_match(
        &audio::read_wav(&agent_rec).unwrap().samples,
        &audio::prompt("enter-digits"),
    );
    assert!(to_agent > 0.8, "callee → agent correlation {to_agent:.3}");
}
