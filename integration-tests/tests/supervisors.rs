//! Supervisors with real clients: a baresip caller, the agent client and a supervisor's agent
//! client each say a different prompt over and over. For each mode the supervisor joins a call
//! and the three recordings are searched for each voice by correlation: in monitor the
//! supervisor hears both and neither hears it; in whisper the agent hears it and the caller
//! does not; in barge all three hear the others. Leaving puts the call back to two parties.
//! Then help requests, chat and the refusals of what a supervisor (or an agent) may not do,
//! as the gateway logs and journals them.
use std::path::Path;
use std::time::Duration;

use trunkgate_integration::agent::AgentProcess;
use trunkgate_integration::audio::{self, best_match};
use trunkgate_integration::gateway::DEMO_CREDENTIAL_HASH;
use trunkgate_integration::journal::{journal_config, of_type, records};
use trunkgate_integration::{line_word, Baresip, BaresipRun, Gateway, TestConfig};

const WAIT: Duration = Duration::from_secs(10);
const CALLER_SAYS: &str = "main-menu";
const AGENT_SAYS: &str = "enter-digits";
const SUPERVISOR_SAYS: &str = "invalid";

/// sam supervises support, sue supervises sales; the demo agent serves support, bob sales.
fn gateway(journal: &Path) -> Gateway {
    let extra = format!(
        "{}\n[queues.sales]\nskills = [\"sales\"]\nmoh = \"moh\"\n\n\
         [[agent]]\nid = \"sam\"\ncredential_hash = {DEMO_CREDENTIAL_HASH:?}\nsupervises = [\"support\"]\n\n\
         [[agent]]\nid = \"sue\"\ncredential_hash = {DEMO_CREDENTIAL_HASH:?}\nsupervises = [\"sales\"]\n\n\
         [[agent]]\nid = \"bob\"\ncredential_hash = {DEMO_CREDENTIAL_HASH:?}\nskills = [\"sales\"]\n",
        journal_config(journal)
    );
    Gateway::start(
        &TestConfig {
            route: "queue:support".into(),
            queue_wrap_up_ms: 0,
            extra,
            ..TestConfig::default()
        }
        .to_toml(),
    )
}

fn score(heard: &[f32], said: &str) -> f64 {
    best_match(heard, &audio::prompt(said).samples).map_or(0.0, |m| m.score)
}

/// A caller saying its prompt for `talk`, answered by the demo agent (saying its own and
/// recording what it hears); returns both once the agent has the call, and the call's id.
fn answered_call(
    gw: &Gateway,
    dir: &Path,
    talk: Duration,
) -> (AgentProcess, std::thread::JoinHandle<BaresipRun>, String) {
    let caller_speech = audio::repeated_prompt(dir, CALLER_SAYS, 5);
    let target = gw.sip_udp();
    let caller = std::thread::spawn(move || {
        Baresip::new("caller")
            .dial(format!("sip:100@{target}"))
            .source_wav(&caller_speech)
            .duration(talk)
            .run()
    });
    let agent_speech = audio::repeated_prompt(dir, AGENT_SAYS, 8);
    let agent_heard = dir.join("agent.wav");
    let mut agent = AgentProcess::interactive_with(
        gw,
        &[
            "--play",
            agent_speech.to_str().unwrap(),
            "--record",
            agent_heard.to_str().unwrap(),
        ],
    );
    agent.expect(&["event=offer"], Duration::from_secs(20));
    agent.type_line("a");
    let answered = agent.expect(&["event=answered"], WAIT);
    let call = line_word(&answered, "call")
        .expect("the call's id")
        .to_string();
    (agent, caller, call)
}

/// What each party heard while the supervisor took part as `mode`.
struct Heard {
    caller: Vec<f32>,
    agent: Vec<f32>,
    supervisor: Vec<f32>,
}

fn with_supervisor(mode: &str) -> Heard {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&dir.path().join("journal"));
    let (mut agent, caller, call) = answered_call(&gw, dir.path(), Duration::from_secs(20));
    let supervisor_speech = audio::repeated_prompt(dir.path(), SUPERVISOR_SAYS, 6);
    let supervisor_heard = dir.path().join("sam.wav");
    let mut sam = AgentProcess::interactive_as(
        &gw,
        "sam",
        &[
            "--play",
            supervisor_speech.to_str().unwrap(),
            "--record",
            supervisor_heard.to_str().unwrap(),
        ],
    );
    sam.expect(&["event=welcome", "supervises=support"], WAIT);
    sam.expect(&["event=live", "talking=1"], WAIT);
    sam.type_line(&format!("{mode} {call}"));
    sam.expect(&["event=supervising", &format!("mode={mode}")], WAIT);
    // Long enough for every voice to say its prompt in full while all three are in the call,
    // wherever in their repetition it starts: the caller's comes every 5.5 s, lasts 4.5 s.
    std::thread::sleep(Duration::from_secs(11));
    sam.type_line("leave");
    sam.expect(&["event=supervision_ended", "reason=left"], WAIT);
    sam.expect(&["event=call_ended"], WAIT);
    let caller = caller.join().unwrap();
    assert!(caller.call_established(), "{}", caller.log);
    agent.expect(&["event=call_ended"], WAIT);
    agent.wait_exit(Duration::from_secs(2));
    sam.stop();
    agent.stop();
    gw.expect_line("supervisor in the call", WAIT);
    gw.expect_line("supervisor left the call", WAIT);
    let read = |p: &Path| audio::read_wav(p).unwrap().samples;
    Heard {
        caller: caller.received_audio().samples,
        agent: read(&dir.path().join("agent.wav")),
        supervisor: read(&supervisor_heard),
    }
}

/// Whether each of caller, agent, supervisor is heard by each listener in `mode`, as the
/// protocol's table says.
fn check(mode: &str, heard: &Heard) {
    let (agent_hears_supervisor, caller_hears_supervisor) = match mode {
        "monitor" => (false, false),
        "whisper" => (true, false),
        _ => (true, true),
    };
    let expect = [
        ("supervisor", [true, true, false]),
        ("agent", [true, false, agent_hears_supervisor]),
        ("caller", [false, true, caller_hears_supervisor]),
    ];
    for (listener, voices) in expect {
        let pcm = match listener {
            "caller" => &heard.caller,
            "agent" => &heard.agent,
            _ => &heard.supervisor,
        };
        let scores = [
            score(pcm, CALLER_SAYS),
            score(pcm, AGENT_SAYS),
            score(pcm, SUPERVISOR_SAYS),
        ];
        println!(
            "{mode}: the {listener} hears caller {:.2}, agent {:.2}, supervisor {:.2}",
            scores[0], scores[1], scores[2]
        );
        for ((voice, present), got) in ["caller", "agent", "supervisor"]
            .iter()
            .zip(voices)
            .zip(scores)
        {
            if present {
                assert!(
                    got > 0.5,
                    "{mode}: the {listener} should hear the {voice}: {scores:?}"
                );
            } else {
                assert!(
                    got < 0.35,
                    "{mode}: the {listener} must not hear the {voice}: {scores:?}"
                );
            }
        }
    }
}

#[test]
fn in_monitor_the_supervisor_hears_both_and_neither_hears_it() {
    let mode = "monitor";
    check(mode, &with_supervisor(mode));
}

#[test]
fn in_whisper_the_agent_hears_the_supervisor_and_the_caller_does_not() {
    let mode = "whisper";
    check(mode, &with_supervisor(mode));
}

#[test]
fn in_barge_all_three_hear_the_others() {
    let mode = "barge";
    check(mode, &with_supervisor(mode));
}

#[test]
fn help_and_chat_reach_the_supervisor_and_what_is_not_allowed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let gw = gateway(&journal);
    let mut sam = AgentProcess::interactive_as(&gw, "sam", &[]);
    sam.expect(&["event=welcome", "supervises=support"], WAIT);
    let mut sue = AgentProcess::interactive_as(&gw, "sue", &[]);
    sue.expect(&["event=welcome", "supervises=sales"], WAIT);
    let (mut agent, caller, call) = answered_call(&gw, dir.path(), Duration::from_secs(14));

    // The agent asks for help: sam (support) is told, sue (sales) is not; sam joins with one
    // command, the call of the request.
    agent.type_line("help the caller wants a refund");
    sam.expect(
        &[
            "event=help_requested",
            &format!("call={call}"),
            "agent=demo",
            "note=\"the caller wants a refund\"",
        ],
        WAIT,
    );
    sam.type_line("calls");
    sam.expect(
        &[
            "event=live_call",
            &format!("call={call}"),
            "state=talking",
            "agent=demo",
        ],
        WAIT,
    );
    sam.expect(&["event=live_agent", "agent=demo", "state=talking"], WAIT);
    sam.type_line("whisper");
    sam.expect(&["event=supervising", "mode=whisper"], WAIT);

    // Chat both ways.
    agent.type_line("chat is the refund policy 30 days?");
    sam.expect(
        &[
            "event=chat",
            "from=demo",
            "text=\"is the refund policy 30 days?\"",
        ],
        WAIT,
    );
    sam.type_line("chat @demo yes, 30 days");
    agent.expect(&["event=chat", "from=sam", "text=\"yes, 30 days\""], WAIT);

    // Refused: sue reaching into support, the agent using a supervisor's command.
    sue.type_line(&format!("monitor {call}"));
    sue.expect(
        &["event=error", "not_permitted", "does not supervise"],
        WAIT,
    );
    agent.type_line(&format!("barge {call}"));
    agent.expect(&["event=error", "not_permitted", "not a supervisor"], WAIT);
    gw.expect_line("supervisor command refused", WAIT);
    assert!(
        !sue.lines()
            .iter()
            .any(|l| l.contains("event=help_requested")),
        "sue supervises sales only"
    );

    assert!(caller.join().unwrap().call_established());
    agent.expect(&["event=call_ended"], WAIT);
    sam.expect(&["event=supervision_ended", "reason=call_ended"], WAIT);
    for p in [&mut sam, &mut sue, &mut agent] {
        p.stop();
    }
    gw.wait_for_metric(
        r#"trunkgate_journal_records_total{type="cdr"}"#,
        WAIT,
        |v| v >= 1.0,
    );
    gw.stop().expect("a clean stop");

    // The journal keeps the help request with the call, the chat with each shift, and the
    // refusals.
    let journal = records(&journal);
    let cdr = &of_type(&journal, "cdr")[0]["data"];
    assert_eq!(cdr["help_requests"], 1, "{cdr}");
    assert_eq!(cdr["supervisors"], serde_json::json!(["sam"]), "{cdr}");
    let agent_events = of_type(&journal, "agent_event");
    let chats: Vec<_> = agent_events
        .iter()
        .filter(|r| r["data"]["event"] == "chat")
        .map(|r| (r["data"]["agent"].clone(), r["data"]["text"].clone()))
        .collect();
    assert_eq!(chats.len(), 2, "{chats:?}");
    let refused: Vec<_> = agent_events
        .iter()
        .filter(|r| r["data"]["event"] == "refused")
        .map(|r| r["data"]["agent"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(refused, vec!["sue", "demo"]);
    let help = of_type(&journal, "call_event")
        .into_iter()
        .find(|r| r["data"]["event"] == "help_requested")
        .expect("the help request is journaled with the call");
    assert_eq!(help["data"]["note"], "the caller wants a refund");
    assert_eq!(help["data"]["supervisors"], 1);
}

/// A scripted branch: one caller hangs up unanswered after waiting, one is answered by the
/// demo agent after a known wait. The supervisor's client and the admin API show the same
/// wallboard, and its figures are the script's.
#[test]
fn the_wallboard_shows_the_scripted_waits_answers_and_abandons() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(&dir.path().join("journal"));
    let mut sam = AgentProcess::interactive_as(&gw, "sam", &["--supervisor"]);
    sam.expect(&["event=welcome", "supervises=support"], WAIT);
    sam.expect(&["event=wallboard", "support:waiting=0"], WAIT);

    // Nobody to answer: the first caller gives up after its 3 s.
    let target = gw.sip_udp();
    let gave_up = Baresip::new("early")
        .dial(format!("sip:100@{target}"))
        .duration(Duration::from_secs(3))
        .run();
    assert!(gave_up.call_established(), "{}", gave_up.log);
    sam.expect(&["event=wallboard", "abandon=100", "sl_day=0"], WAIT);

    // The second is answered once the agent has logged in and accepts.
    let (mut agent, caller, _) = answered_call(&gw, dir.path(), Duration::from_secs(4));
    assert!(caller.join().unwrap().call_established());
    agent.expect(&["event=call_ended"], WAIT);
    let line = sam.expect(&["event=wallboard", "abandon=50", "available=1"], WAIT);
    println!("{line}");

    // The admin API says the same.
    let run = trunkgate_integration::ctl(gw.admin(), &["wallboard", "--json"]);
    assert!(run.ok, "{run:?}");
    let boards: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let support = boards
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == "support")
        .unwrap()
        .clone();
    println!("{support}");
    assert_eq!(support["answered"], 1);
    assert_eq!(support["abandoned"], 1);
    assert_eq!(support["abandon_rate_pct"], 50.0);
    assert_eq!(support["waiting"], 0);
    // Answered within the 20 s target (the agent accepted at once): 1 of the 2 judged.
    assert_eq!(support["service_level_day_pct"], 50.0);
    assert_eq!(support["service_level_15m_pct"], 50.0);
    let asa = support["asa_s"].as_f64().unwrap();
    assert!(asa < 20.0, "{support}");
    // The 4 s call, no wrap-up.
    let aht = support["aht_s"].as_f64().unwrap();
    assert!((2.0..=5.0).contains(&aht), "{support}");
    let table = trunkgate_integration::ctl(gw.admin(), &["wallboard"]);
    assert!(table.stdout.contains("50.0 %"), "{}", table.stdout);
    agent.stop();
    sam.stop();
}
