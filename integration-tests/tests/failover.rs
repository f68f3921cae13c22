//! RFC 3263 failover toward a carrier with two proxies, found through SRV records served by a
//! real DNS server (dnsmasq on loopback): the first down → calls go to the second; the first
//! probed with OPTIONS until it answers, then used again; a 486 is the callee's answer and is
//! not retried at the next proxy.
use std::time::Duration;

use trunkgate_integration::agent::AgentProcess;
use trunkgate_integration::bench::load::wait_until;
use trunkgate_integration::dns::{DnsRecord, Dnsmasq};
use trunkgate_integration::ports::free_sip_port;
use trunkgate_integration::{scenarios_dir, Baresip, Gateway, Sipp, TestConfig, Transport};

const WAIT: Duration = Duration::from_secs(10);

/// A trunk whose proxy is `domain` over TCP, found by its SRV records.
fn trunk(name: &str, domain: &str, prefix: &str) -> String {
    format!(
        "\n[[trunk]]\nname = \"{name}\"\nallow = [\"192.0.2.1\"]\nroute = \"ivr:main\"\n\
         [trunk.outbound]\nproxy = \"sip:{domain};transport=tcp\"\nprefixes = [\"{prefix}\"]\n\
         caller_id = \"+4930555000\"\nnumber_format = \"international\"\nprobe_interval_s = 1\n"
    )
}

#[test]
fn calls_fail_over_to_the_second_proxy_and_come_back_to_the_first_once_it_answers() {
    // Proxy A: nothing listens yet (its connections are refused). Proxy B: a softphone. Proxy
    // S: a callee that is busy.
    let port_a = free_sip_port();
    let callee_b = Baresip::new("49301234567")
        .auto_answer()
        .duration(Duration::from_secs(60))
        .start();
    let port_b = callee_b.sip_addr().port();
    let port_s = free_sip_port();
    let scenario = std::fs::read_to_string(scenarios_dir().join("uas_refuse.xml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let busy = dir.path().join("uas_busy.xml");
    std::fs::write(&busy, scenario.replace("[code]", "486")).unwrap();
    let callee_s = std::thread::spawn(move || {
        Sipp::scenario(busy)
            .transport(Transport::Tcp)
            .local_port(port_s)
            .calls(1)
            .timeout(Duration::from_secs(30))
            .run()
    });
    let dns = Dnsmasq::start(&[
        DnsRecord::srv("_sip._tcp.carrier.test", 10, 0, port_a, "a.carrier.test"),
        DnsRecord::srv("_sip._tcp.carrier.test", 20, 0, port_b, "b.carrier.test"),
        DnsRecord::srv("_sip._tcp.busy.test", 10, 0, port_s, "s.busy.test"),
        DnsRecord::srv("_sip._tcp.busy.test", 20, 0, port_b, "b.carrier.test"),
        DnsRecord::a("a.carrier.test", [127, 0, 0, 1]),
        DnsRecord::a("b.carrier.test", [127, 0, 0, 1]),
        DnsRecord::a("s.busy.test", [127, 0, 0, 1]),
    ]);
    let mut extra = "[outbound]\ncountry_code = \"49\"\nnational_prefix = \"0\"\n".to_string();
    extra.push_str(&trunk("main", "carrier.test", "+49"));
    extra.push_str(&trunk("busy", "busy.test", "+49302"));
    let gw = Gateway::start(
        &TestConfig {
            sip_extra: format!("dns_servers = [\"{}\"]", dns.addr()),
            extra,
            ..TestConfig::default()
        }
        .to_toml(),
    );
    let mut agent = AgentProcess::interactive(&gw);
    agent.expect(&["event=welcome"], WAIT);
    let mut calls = 0;
    let mut call = |agent: &mut AgentProcess, number: &str, expect: &str| {
        calls += 1;
        agent.type_line(&format!("dial {number}"));
        let line = agent
            .wait_for_nth_of_any(&["event=answered", "event=dial_failed"], calls, WAIT)
            .unwrap_or_else(|| panic!("call {calls}: no outcome\n{}", agent.lines().join("\n")));
        assert!(line.contains(expect), "call {calls}: {line}");
        if expect == "event=answered" {
            agent.type_line("h");
            agent
                .wait_for_nth(&["event=call_ended"], calls, WAIT)
                .expect("hung up");
        }
        agent.type_line("s available");
    };
    // A refuses the connection: the call goes on to B, and A is marked down.
    call(&mut agent, "030 1234567", "event=answered");
    gw.expect_line("carrier proxy down", WAIT);
    assert_eq!(gw.count_lines("trying the next proxy"), 1);
    let down = "trunkgate_trunk_proxies_down{trunk=\"main\"} 1";
    assert!(
        wait_until(WAIT, || gw.scrape().contains(down)),
        "{}",
        gw.scrape()
    );
    // While A is down, calls go to B first: no second failover.
    call(&mut agent, "030 1234567", "event=answered");
    assert_eq!(gw.count_lines("trying the next proxy"), 1);
    // S answers 486: the callee is busy, and B is not asked instead.
    call(&mut agent, "0302 123456", "reason=busy");
    let run_s = callee_s.join().unwrap();
    assert!(run_s.all_succeeded(), "{}", run_s.report());
    assert_eq!(gw.count_lines("trying the next proxy"), 1);
    // A comes back: the next probe finds it answering, and it takes calls again.
    let callee_a = Baresip::new("49301234567")
        .auto_answer()
        .sip_port(port_a)
        .duration(Duration::from_secs(30))
        .start();
    gw.expect_line("carrier proxy answers again", Duration::from_secs(15));
    let up = "trunkgate_trunk_proxies_down{trunk=\"main\"} 0";
    assert!(
        wait_until(WAIT, || gw.scrape().contains(up)),
        "{}",
        gw.scrape()
    );
    call(&mut agent, "030 1234567", "event=answered");
    let run_a = callee_a.stop();
    assert!(run_a.call_established(), "A took the call: {}", run_a.log);
    let run_b = callee_b.stop();
    let invites_b = run_b.log.matches("INVITE sip:").count();
    assert_eq!(
        invites_b, 2,
        "B had the two calls while A was down, no more"
    );
    // The SRV records were asked of the DNS server the config names.
    assert!(dns
        .queries()
        .iter()
        .any(|(kind, name)| kind == "SRV" && name == "_sip._tcp.carrier.test"));
}
