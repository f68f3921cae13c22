//! Transfers with the real agent client. Blind: an agent answering a caller hands the call to
//! another queue or to a named agent; the caller waits with music, the next agent answers and
//! hears the caller; the first agent's part ends as `transferred`. To a number (baresip
//! answering), through a leg of the gateway's own: blind, and attended (consult, return,
//! consult again, complete); caller and target hear each other once joined.
use std::time::Duration;

use trunkgate_integration::agent::{agent_args, AgentProcess};
use trunkgate_integration::audio::{self, tone_energy_ratio};
use trunkgate_integration::gateway::DEMO_CREDENTIAL_HASH;
use trunkgate_integration::outbound::{carrier_to, DIAL_PLAN};
use trunkgate_integration::{
    prompt_path, Baresip, BaresipRun, Gateway, TestConfig, DEMO_CREDENTIAL,
};

const WAIT: Duration = Duration::from_secs(10);
const CALLER_HZ: f64 = 600.0;

/// Queue `sales` (skill `sales`, no wrap-up) with agent `bob` in it, and agent `carol` in
/// queue `support` with the demo agent.
fn gateway() -> Gateway {
    let extra = format!(
        "[queues.sales]\nskills = [\"sales\"]\nmoh = \"moh\"\nwrap_up_ms = 0\n\
         first_announce_ms = 60000\n\n\
         [[agent]]\nid = \"bob\"\ncredential_hash = {DEMO_CREDENTIAL_HASH:?}\nskills = [\"sales\"]\n\n\
         [[agent]]\nid = \"carol\"\ncredential_hash = {DEMO_CREDENTIAL_HASH:?}\nskills = [\"support\"]\n"
    );
    Gateway::start(
        &TestConfig {
            route: "queue:support".into(),
            extra,
            ..TestConfig::default()
        }
        .to_toml(),
    )
}

/// The caller's tone in what `agent` recorded: most of its energy at the caller's frequency.
fn hears_the_caller(recording: &std::path::Path) -> f64 {
    let rec = audio::read_wav(recording).unwrap();
    tone_energy_ratio(&rec.samples, rec.rate, CALLER_HZ)
}

fn transfer_to(target: &str, answering: &str) {
    let gw = gateway();
    let dir = tempfile::tempdir().unwrap();
    let tone = audio::tone_file(dir.path(), "caller.wav", CALLER_HZ);
    let recording = dir.path().join("next-agent.wav");
    // The next agent answers whatever it is offered and records it; it logs in only once the
    // first one has the call, so it cannot be offered the caller before the transfer.
    let mut first = AgentProcess::interactive(&gw);
    first.expect(&["event=welcome"], WAIT);
    first.expect(&["event=state", "state=available"], WAIT);
    let target_gw = gw.sip_udp();
    let caller = std::thread::spawn(move || {
        Baresip::new("caller")
            .dial(format!("sip:100@{target_gw}"))
            .source_wav(&tone)
            .duration(Duration::from_secs(14))
            .run()
    });
    first.expect(&["event=offer"], WAIT);
    first.type_line("a");
    first.expect(&["event=answered"], WAIT);
    let mut next = AgentProcess::start(
        &agent_args(
            &gw,
            answering,
            &[
                "--record",
                recording.to_str().unwrap(),
                "--calls",
                "1",
                "--duration-secs",
                "30",
            ],
        ),
        DEMO_CREDENTIAL,
    );
    next.expect(&["event=welcome"], WAIT);
    first.type_line(&format!("transfer {target}"));
    first.expect(&["event=call_ended", "reason=transferred"], WAIT);
    next.expect(&["event=offer"], WAIT);
    next.expect(&["event=answered"], WAIT);
    next.expect(&["event=call_ended"], Duration::from_secs(20));
    next.wait_exit(WAIT);
    let caller = caller.join().unwrap();
    assert!(caller.call_established(), "{}", caller.log);
    let ratio = hears_the_caller(&recording);
    println!("{answering} heard the caller's tone at {ratio:.2} of its energy");
    assert!(
        ratio > 0.5,
        "{answering} did not hear the caller: {ratio:.2}"
    );
    gw.expect_line("call transferred", WAIT);
}

#[test]
fn an_agent_transfers_its_caller_to_another_queue_where_the_next_agent_answers() {
    transfer_to("queue:sales", "bob");
}

#[test]
fn an_agent_transfers_its_caller_to_a_named_agent() {
    transfer_to("agent:carol", "carol");
}

/// A gateway (journal in `dir/journal`, no wrap-up) whose caller waits in `support` for the
/// demo agent and whose trunk carries every number to `target`; the caller (playing its tone for `talk`, on a thread) and the demo
/// agent (interactive, recording what it hears into `recording`) with the call answered.
fn answered_caller(
    target: std::net::SocketAddr,
    dir: &std::path::Path,
    talk: Duration,
) -> (Gateway, AgentProcess, std::thread::JoinHandle<BaresipRun>) {
    let gw = Gateway::start(
        &TestConfig {
            route: "queue:support".into(),
            trunk_extra: carrier_to(target),
            extra: format!(
                "{}\n{}",
                DIAL_PLAN.replace("ring_timeout_s = 3", "ring_timeout_s = 10"),
                trunkgate_integration::journal::journal_config(&dir.join("journal"))
            ),
            queue_wrap_up_ms: 0,
            ..TestConfig::default()
        }
        .to_toml(),
    );
    let tone = audio::tone_file(dir, "caller.wav", CALLER_HZ);
    let recording = dir.join("agent-heard.wav");
    let mut agent = AgentProcess::interactive_with(&gw, &["--record", recording.to_str().unwrap()]);
    agent.expect(&["event=welcome"], WAIT);
    agent.expect(&["event=state", "state=available"], WAIT);
    let to = gw.sip_udp();
    let caller = std::thread::spawn(move || {
        Baresip::new("caller")
            .dial(format!("sip:100@{to}"))
            .source_wav(&tone)
            .duration(talk)
            .run()
    });
    agent.expect(&["event=offer"], WAIT);
    agent.type_line("a");
    agent.expect(&["event=answered"], WAIT);
    (gw, agent, caller)
}

/// A target that answers at once and says `enter-digits` over and over.
fn target() -> trunkgate_integration::baresip::BaresipCall {
    Baresip::new("49301234567")
        .auto_answer()
        .source_wav(prompt_path("enter-digits"))
        .duration(Duration::from_secs(40))
        .start()
}

fn says_enter_digits(path: &std::path::Path) -> f64 {
    let rec = audio::read_wav(path).unwrap();
    audio::phrase_match(&rec.samples, &audio::prompt("enter-digits"))
}

#[test]
fn a_blind_transfer_to_a_number_joins_the_caller_to_it_through_the_gateway() {
    let target = target();
    let dir = tempfile::tempdir().unwrap();
    let (gw, mut agent, caller) =
        answered_caller(target.sip_addr(), dir.path(), Duration::from_secs(16));
    agent.type_line("transfer 0301234567");
    agent.expect(
        &[
            "event=transfer_state",
            "state=dialing",
            "number=+49301234567",
        ],
        WAIT,
    );
    agent.expect(&["event=call_ended", "reason=transferred"], WAIT);
    gw.expect_line("call transferred", WAIT);
    // The caller talks to the target until it hangs up; the target's leg goes with it.
    let caller = caller.join().unwrap();
    assert!(caller.call_established(), "{}", caller.log);
    let ended = gw.expect_line("call ended", Duration::from_secs(20));
    assert!(ended.contains("cause=caller hung up"), "{ended}");
    let target = target.stop();
    let to_target = hears_the_caller(target.only_recording().received.as_ref().unwrap());
    let to_caller = says_enter_digits(caller.only_recording().received.as_ref().unwrap());
    println!("the target heard the caller's tone at {to_target:.2}; the caller heard the target at {to_caller:.3}");
    assert!(
        to_target > 0.5,
        "the target did not hear the caller: {to_target:.2}"
    );
    assert!(
        to_caller > 0.8,
        "the caller did not hear the target: {to_caller:.3}"
    );
    // The CDR has the transfer, the journal the call to the number.
    agent.type_line("q");
    agent.wait_exit(WAIT);
    gw.stop().expect("a clean stop");
    let records = trunkgate_integration::journal::records(&dir.path().join("journal"));
    let cdrs = trunkgate_integration::journal::of_type(&records, "cdr");
    assert_eq!(cdrs.len(), 1, "{cdrs:#?}");
    let cdr = &cdrs[0]["data"];
    assert_eq!(
        cdr["transfers"],
        serde_json::json!(["+49301234567"]),
        "{cdr}"
    );
    assert_eq!(cdr["end_cause"], "caller_hung_up", "{cdr}");
    let events = trunkgate_integration::journal::of_type(&records, "call_event");
    assert!(
        events
            .iter()
            .any(|e| e["data"]["event"] == "transfer_dialled"
                && e["data"]["to"] == "+49301234567"
                && e["data"]["attended"] == false),
        "{events:#?}"
    );
}

#[test]
fn an_attended_transfer_consults_returns_then_completes() {
    let target = target();
    let dir = tempfile::tempdir().unwrap();
    let (gw, mut agent, caller) =
        answered_caller(target.sip_addr(), dir.path(), Duration::from_secs(24));
    agent.type_line("consult 0301234567");
    agent.expect(&["event=transfer_state", "state=answered"], WAIT);
    // The agent talks to the target for a while, then takes the caller back.
    std::thread::sleep(Duration::from_secs(3));
    agent.type_line("return");
    agent.expect(&["event=transfer_state", "state=ended"], WAIT);
    gw.expect_line("transfer target leg ended", WAIT);
    // Again, and this time the caller goes to the target.
    agent.type_line("consult 0301234567");
    agent
        .wait_for_nth(&["event=transfer_state", "state=answered"], 2, WAIT)
        .expect("the second consultation answered");
    agent.type_line("complete");
    agent.expect(&["event=call_ended", "reason=transferred"], WAIT);
    let caller = caller.join().unwrap();
    assert!(caller.call_established(), "{}", caller.log);
    let ended = gw.expect_line("call ended", Duration::from_secs(20));
    assert!(ended.contains("cause=caller hung up"), "{ended}");
    let target = target.stop();
    assert_eq!(
        target.recordings.len(),
        2,
        "two calls to the target: {}",
        target.log
    );
    let agent_heard = says_enter_digits(&dir.path().join("agent-heard.wav"));
    let first = target.recordings[0].received.as_ref().unwrap();
    let second = target.recordings[1].received.as_ref().unwrap();

    let (consulted, joined) = (hears_the_caller(first), hears_the_caller(second));
    let to_caller = says_enter_digits(caller.only_recording().received.as_ref().unwrap());
    println!(
        "agent heard the target at {agent_heard:.3}; caller's tone to the target: consulted {consulted:.2}, joined {joined:.2}; caller heard the target at {to_caller:.3}"
    );
    assert!(
        agent_heard > 0.8,
        "the agent did not hear the target: {agent_heard:.3}"
    );
    assert!(
        consulted < 0.2,
        "the target heard the caller while consulted: {consulted:.2}"
    );
    assert!(
        joined > 0.5,
        "the target did not hear the caller once joined: {joined:.2}"
    );
    assert!(
        to_caller > 0.8,
        "the caller did not hear the target: {to_caller:.3}"
    );
}
