//! The call journal with the real daemon: what a call, an agent and a queue leave in it, and
//! that it survives the daemon being killed (docs/journal.md).
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use trunkgate_integration::agent::{agent_args, demo_args, AgentProcess};
use trunkgate_integration::gateway::extra_agent;
use trunkgate_integration::journal::{ivr_calls, journal_config, of_type, records, verify};
use trunkgate_integration::{ctl, Baresip, CtlRun, Gateway, Sipp, TestConfig, DEMO_CREDENTIAL};

#[test]
fn a_call_answered_by_an_agent_leaves_its_cdr_its_shift_and_a_whole_journal() {
    let journal = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        &TestConfig {
            route: "queue:support".into(),
            queue_wrap_up_ms: 10_000,
            extra: journal_config(journal.path()),
            ..TestConfig::default()
        }
        .to_toml(),
    );
    // Stays logged in after its call (a second one never comes); codes the call and takes
    // 1.5 s of its 10 s wrap-up. A second into the call its network changes.
    let mut agent = AgentProcess::start(
        &demo_args(
            &gw,
            &[
                "--calls",
                "2",
                "--duration-secs",
                "30",
                "--disposition",
                "resolved",
                "--wrap-up-ms",
                "1500",
                "--rebind-after-ms",
                "1000",
            ],
        ),
        DEMO_CREDENTIAL,
    );
    agent.expect(&["event=welcome"], Duration::from_secs(10));
    let caller = Baresip::new("caller")
        .dial(format!("sip:100@{}", gw.sip_udp()))
        .duration(Duration::from_secs(6))
        .run();
    assert!(caller.call_established(), "{}", caller.log);
    agent.expect(&["event=call_ended"], Duration::from_secs(10));
    // The wrap-up ends with the agent available again; then the CDR is written.
    let cdrs = gw.wait_for_metric(
        r#"trunkgate_journal_records_total{type="cdr"}"#,
        Duration::from_secs(10),
        |v| v >= 1.0,
    );
    assert_eq!(cdrs, Some(1.0), "one CDR once the wrap-up is over");
    // SIGTERM: the client logs out as it exits, and the session ends at once, not after the
    // resume grace.
    agent.stop();
    gw.expect_line("agent session over", Duration::from_secs(5));
    gw.stop().expect("a clean stop");

    let (whole, report) = verify(journal.path());
    assert!(whole, "{report}");
    let records = records(journal.path());
    let cdrs = of_type(&records, "cdr");
    for r in &records {
        println!("{} {} {}", r["seq"], r["type"], r["data"]["event"]);
        if r["type"] == "agent_event" {
            println!("   {}", r["data"]);
        }
    }
    assert_eq!(cdrs.len(), 1, "{records:#?}");
    let cdr = &cdrs[0]["data"];
    println!("{:#}", cdrs[0]);
    let bytes = |r: &Value| serde_json::to_vec(r).unwrap().len() + 9;
    println!(
        "journal bytes (records framed): the CDR {}, the call's {} records {}, all {} records {}",
        bytes(cdrs[0]),
        records
            .iter()
            .filter(|r| r["data"]["call"] == cdr["call"])
            .count(),
        records
            .iter()
            .filter(|r| r["data"]["call"] == cdr["call"])
            .map(bytes)
            .sum::<usize>(),
        records.len(),
        records.iter().map(bytes).sum::<usize>()
    );
    assert_eq!(cdr["agent"], "demo");
    assert_eq!(cdr["trunk"], "carrier");
    assert_eq!(cdr["ended_by"], "caller");
    assert_eq!(cdr["queues"][0]["queue"], "support");
    assert_eq!(cdr["queues"][0]["outcome"], "answered");
    let talk = cdr["talk_ms"].as_u64().unwrap();
    assert!(
        (4_000..8_000).contains(&talk),
        "talk {talk} ms of a 6 s call"
    );
    assert_eq!(cdr["agent_moved"], 1, "the network change, counted");
    assert_eq!(cdr["agent_lost"], 0, "and not a loss");
    // The agent ends its wrap-up by going available after 1.5 s.
    let wrap_up = cdr["wrap_up_ms"].as_u64().unwrap();
    assert!(
        (1_400..3_000).contains(&wrap_up),
        "wrap-up {wrap_up} ms, ended by the agent after 1.5 s"
    );
    assert_eq!(cdr["disposition"], "resolved");
    let agent_leg = &cdr["quality"]["agent"];
    assert!(
        agent_leg["packets_received"].as_u64().unwrap() > 50,
        "{agent_leg}"
    );
    assert!(agent_leg["mos"].as_f64().unwrap() > 3.0, "{agent_leg}");
    let rtt = agent_leg["rtt_ms"]
        .as_f64()
        .expect("the agent link's round trip");
    assert!(rtt > 0.0 && rtt < 50.0, "loopback round trip {rtt} ms");
    assert!(!cdr["sip_call_id"].as_str().unwrap().is_empty());

    // The agent's shift: logged in, away then available by its own choice, offered,
    // talking, wrapping up, available again.
    let states: Vec<&str> = of_type(&records, "agent_event")
        .iter()
        .filter(|r| r["data"]["event"] == "state")
        .map(|r| r["data"]["state"].as_str().unwrap())
        .collect();
    let wanted = ["ringing", "talking", "wrap_up", "available"];
    assert!(
        states.windows(4).any(|w| w == wanted),
        "agent states {states:?}"
    );
    assert!(of_type(&records, "agent_event")
        .iter()
        .any(|r| r["data"]["event"] == "logged_in"));
    let logout = of_type(&records, "agent_event")
        .into_iter()
        .find(|r| r["data"]["event"] == "logged_out")
        .expect("the agent's logout is journaled");
    assert_eq!(logout["data"]["reason"], "logout");
    let outcome = of_type(&records, "queue_outcome");
    assert_eq!(outcome.len(), 1);
    assert_eq!(outcome[0]["data"]["agent"], "demo");
    assert_eq!(outcome[0]["data"]["within_service_level"], true);
}

#[test]
fn a_journal_killed_with_sigkill_opens_with_every_record_written_and_goes_on() {
    let journal = tempfile::tempdir().unwrap();
    let config = || {
        TestConfig {
            extra: journal_config(journal.path()),
            ..TestConfig::default()
        }
        .to_toml()
    };
    // Callers who press 9 in the IVR menu and are hung up on.
    let calls = |gw: &Gateway| {
        Sipp::scenario("uac_dtmf9.xml")
            .target(gw.sip_udp())
            .service("ivr")
            .calls(4)
            .rate(4)
            .timeout(Duration::from_secs(30))
            .run()
    };
    let gw = Gateway::start(&config());
    let run = calls(&gw);
    run.assert_success();
    assert_eq!(
        completed_call_ids(&run.messages_log).len(),
        4,
        "the trace reader finds them"
    );
    let cdrs = gw.wait_for_metric(
        r#"trunkgate_journal_records_total{type="cdr"}"#,
        Duration::from_secs(10),
        |v| v >= 4.0,
    );
    assert_eq!(cdrs, Some(4.0));
    let mut gw = gw;
    gw.signal(libc::SIGKILL);
    gw.wait_exit(Duration::from_secs(5)).expect("killed");
    drop(gw);
    let before = records(journal.path());

    let gw = Gateway::start(&config());
    calls(&gw).assert_success();
    gw.stop().expect("a clean stop");

    let (whole, report) = verify(journal.path());
    assert!(whole, "{report}");
    let after = records(journal.path());
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "what was written before the kill is still there, unchanged"
    );
    let cdrs = of_type(&after, "cdr");
    assert_eq!(cdrs.len(), 8, "one CDR per call");
    let distinct = |field: &str| {
        let values: std::collections::BTreeSet<&str> = cdrs
            .iter()
            .map(|c| c["data"][field].as_str().unwrap())
            .collect();
        values.len()
    };
    assert_eq!(distinct("sip_call_id"), 8, "each call once");
    // The two runs' call ids differ although each daemon counts its calls from 1.
    assert_eq!(distinct("call"), 8);
    for cdr in cdrs {
        assert_eq!(cdr["data"]["ivr"]["digits"], "9");
        assert_eq!(cdr["data"]["end_cause"], "ivr_hangup");
    }
    assert!(after.len() > before.len());
    for (i, record) in after.iter().enumerate() {
        assert_eq!(
            record["seq"].as_u64(),
            Some(i as u64 + 1),
            "the sequence goes on from the last record kept"
        );
    }
}

/// The Call-IDs of the calls SIPp saw through to the end: those whose BYE (the gateway's) it
/// answered 200, from its own message trace.
fn completed_call_ids(messages_log: &str) -> Vec<String> {
    messages_log
        .split("\n----")
        .filter(|block| block.contains("message sent"))
        .filter(|block| block.lines().any(|l| l.starts_with("SIP/2.0 200")))
        .filter(|block| {
            block
                .lines()
                .any(|l| l.starts_with("CSeq:") && l.trim_end().ends_with("BYE"))
        })
        .filter_map(|block| {
            block
                .lines()
                .find_map(|l| l.strip_prefix("Call-ID:"))
                .map(|id| id.trim().to_string())
        })
        .collect()
}

#[test]
fn killed_three_times_mid_call_the_sink_has_exactly_one_cdr_per_call() {
    let journal = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let sink_dir = out.path().join("sink");
    let config = TestConfig {
        extra: format!(
            "{}\n[[journal.sink]]\nname = \"local\"\ntype = \"file\"\ndir = {:?}\n\
             batch_records = 8\nbatch_age_ms = 100\n{}",
            journal_config(journal.path()),
            sink_dir.to_string_lossy(),
            extra_agent("demo-2"),
        ),
        // SIPp goes on sending its calls' RTP (DTMF 9 among it) to a killed gateway's ports:
        // ports no other test's gateway takes, or a call there would hear a 9 it never got.
        rtp_port_min: 64_000,
        rtp_port_max: 64_999,
        ..TestConfig::default()
    }
    .to_toml();
    let mut completed = Vec::new();
    let mut queue_calls_completed = 0;
    // Kills at different moments of the calls' lives (an IVR call lasts about 8 s, a queue
    // call about 3): as they arrive, while the first are hung up on, while the last are.
    for kill_after in [
        Duration::from_millis(1_500),
        Duration::from_millis(8_500),
        Duration::from_millis(10_500),
    ] {
        let gw = Gateway::start(&config);
        // Two agents log in: demo takes two calls and logs out, demo-2 stays until the kill.
        let agent = |id: &str, extra: &[&str]| {
            let mut args = agent_args(&gw, id, &["--hangup-after-ms", "1500"]);
            args.extend(extra.iter().map(|a| a.to_string()));
            AgentProcess::start(&args, DEMO_CREDENTIAL)
        };
        let agents = [agent("demo", &["--calls", "2"]), agent("demo-2", &[])];
        for a in &agents {
            a.expect(&["event=welcome"], Duration::from_secs(10));
        }
        let target = gw.sip_udp();
        // Callers who listen to the menu, press 9 and are hung up on, 3 a second…
        let ivr = std::thread::spawn(move || {
            Sipp::scenario("uac_dtmf9.xml")
                .target(target)
                .service("ivr")
                .calls(12)
                .rate(3)
                .timeout(Duration::from_secs(13))
                .run()
        });
        // …and callers who press 0 for an agent, who talks 1.5 s and hangs up.
        let queue = std::thread::spawn(move || {
            Sipp::scenario("uac_queue0.xml")
                .target(target)
                .service("ivr")
                .calls(4)
                .rate(1)
                .timeout(Duration::from_secs(13))
                .run()
        });
        std::thread::sleep(kill_after);
        let mut gw = gw;
        gw.signal(libc::SIGKILL);
        gw.wait_exit(Duration::from_secs(5)).expect("killed");
        drop(agents);
        // SIPp gives up at its timeout on the calls the kill cut (no statistics then): its
        // message trace says which it completed.
        completed.extend(completed_call_ids(&ivr.join().unwrap().messages_log));
        let queued = completed_call_ids(&queue.join().unwrap().messages_log);
        queue_calls_completed += queued.len();
        completed.extend(queued);
    }
    // A last run that stops cleanly: it ends what the third kill left open and ships it all.
    let gw = Gateway::start(&config);
    let backlog = gw.wait_for_metric(
        r#"trunkgate_journal_sink_backlog_records{sink="local"}"#,
        Duration::from_secs(20),
        |v| v == 0.0,
    );
    assert_eq!(backlog, Some(0.0));
    gw.stop().expect("a clean stop");

    let (whole, report) = verify(journal.path());
    assert!(whole, "the journal: {report}");
    let (whole, report) = verify(&sink_dir);
    assert!(whole, "the sink: {report}");
    // What the sink holds, after dedup by key, is the journal as written.
    let mut seen = std::collections::HashSet::new();
    let shipped: Vec<Value> = shipped(&sink_dir)
        .into_iter()
        .filter(|r| seen.insert(r["key"].as_str().unwrap().to_string()))
        .collect();
    let records = records(journal.path());
    assert_eq!(
        shipped[..],
        records[..shipped.len()],
        "in order, as written"
    );
    let arrived: Vec<&str> = of_type(&records, "call_event")
        .iter()
        .filter(|r| r["data"]["event"] == "arrived")
        .map(|r| r["data"]["sip_call_id"].as_str().unwrap())
        .collect();
    let cdrs = of_type(&shipped, "cdr");
    let mut cdr_calls: Vec<&str> = cdrs
        .iter()
        .map(|c| c["data"]["sip_call_id"].as_str().unwrap())
        .collect();
    cdr_calls.sort();
    let before = cdr_calls.len();
    cdr_calls.dedup();
    assert_eq!(cdr_calls.len(), before, "no call has two CDRs");
    let mut arrived_sorted = arrived.clone();
    arrived_sorted.sort();
    assert_eq!(
        cdr_calls, arrived_sorted,
        "every call that reached the journal has its CDR in the sink"
    );
    assert!(!completed.is_empty());
    for id in &completed {
        assert!(
            cdr_calls.contains(&id.as_str()),
            "SIPp completed {id}, which has no CDR"
        );
    }
    let by_agent = cdrs
        .iter()
        .filter(|c| c["data"]["agent"].is_string())
        .count();
    assert!(
        queue_calls_completed > 0 && by_agent >= queue_calls_completed,
        "queue calls answered by agents: {queue_calls_completed} completed, {by_agent} CDRs"
    );
    let shifts = of_type(&shipped, "agent_event");
    for event in ["logged_in", "logged_out"] {
        assert!(
            shifts.iter().any(|r| r["data"]["event"] == event),
            "agents' {event} records shipped"
        );
    }
    let restarted = cdrs
        .iter()
        .filter(|c| c["data"]["end_cause"] == "gateway_restart")
        .count();
    assert!(
        restarted > 0,
        "the calls cut by the kills are ended by the restart"
    );
    println!(
        "{} calls reached the journal, {} completed by SIPp ({queue_calls_completed} through an \
         agent), {restarted} ended by a restart",
        arrived.len(),
        completed.len()
    );
}

/// Every record of every `.ndjson` batch under `dir`, in the order of the batches' names.
fn shipped(dir: &Path) -> Vec<Value> {
    let mut files = Vec::new();
    for journal in std::fs::read_dir(dir).unwrap() {
        for batch in std::fs::read_dir(journal.unwrap().path()).unwrap() {
            files.push(batch.unwrap().path());
        }
    }
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn a_file_sink_down_for_the_whole_run_gets_every_record_in_order_once_it_comes_back() {
    let journal = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let sink_dir = out.path().join("sink");
    // The sink's directory cannot be made while a file stands in its way: every batch fails.
    std::fs::write(&sink_dir, b"in the way").unwrap();
    let config = TestConfig {
        extra: format!(
            "{}\n[[journal.sink]]\nname = \"local\"\ntype = \"file\"\ndir = {:?}\nbatch_records = 5\nbatch_age_ms = 100\n",
            journal_config(journal.path()),
            sink_dir.to_string_lossy()
        ),
        ..TestConfig::default()
    }
    .to_toml();
    let gw = Gateway::start(&config);
    ivr_calls(&gw, 3);
    let retries = gw.wait_for_metric(
        r#"trunkgate_journal_sink_batches_total{result="retry",sink="local"}"#,
        Duration::from_secs(10),
        |v| v >= 2.0,
    );
    assert!(
        retries >= Some(2.0),
        "the sink was tried and retried: {retries:?}"
    );
    let backlog = gw.wait_for_metric(
        r#"trunkgate_journal_sink_backlog_records{sink="local"}"#,
        Duration::from_secs(5),
        |v| v > 20.0,
    );
    assert!(backlog > Some(20.0), "{backlog:?}");
    gw.expect_line("did not take a batch", Duration::from_secs(1));

    // It comes back: the backlog drains (the backoff has grown to a few seconds by now).
    std::fs::remove_file(&sink_dir).unwrap();
    let backlog = gw.wait_for_metric(
        r#"trunkgate_journal_sink_backlog_records{sink="local"}"#,
        Duration::from_secs(30),
        |v| v == 0.0,
    );
    assert_eq!(backlog, Some(0.0));
    let got = shipped(&sink_dir);
    let kept = records(journal.path());
    assert_eq!(got.len(), kept.len(), "every record shipped");
    assert_eq!(got, kept, "in order, as written");
    assert_eq!(of_type(&got, "cdr").len(), 3);
    let (whole, report) = verify(&sink_dir);
    assert!(whole, "{report}");

    // A restart resumes from the stored cursor: nothing is shipped twice.
    drop(gw);
    let gw = Gateway::start(&config);
    let backlog = gw.wait_for_metric(
        r#"trunkgate_journal_sink_backlog_records{sink="local"}"#,
        Duration::from_secs(10),
        |v| v == 0.0,
    );
    assert_eq!(backlog, Some(0.0));
    gw.stop().expect("a clean stop");
    let got = shipped(&sink_dir);
    let (whole, report) = verify(&sink_dir);
    assert!(whole, "{report}");
    assert!(report.contains(" 0 duplicates"), "{report}");
    let kept = records(journal.path());
    assert!(got.len() <= kept.len() && got[..] == kept[..got.len()]);
}

#[test]
fn on_a_full_disk_calls_go_on_records_wait_in_memory_and_are_written_when_space_returns() {
    let journal = tempfile::tempdir().unwrap();
    let dir = journal.path().to_string_lossy().into_owned();
    // The daemon runs in a mount namespace of its own where the journal's directory is a
    // 512 KiB tmpfs, nearly filled: the test sees it through /proc/PID/root.
    let fill = "mount -t tmpfs -o size=512k tmpfs \"$0\" && \
                dd if=/dev/zero of=\"$0/filler\" bs=4k count=127 status=none && exec \"$@\"";
    let config = TestConfig {
        extra: journal_config(journal.path()),
        ..TestConfig::default()
    }
    .to_toml();
    let gw = Gateway::builder(&config)
        .wrapped(&[
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            fill,
            &dir,
        ])
        .start();
    let inside = std::path::PathBuf::from(format!("/proc/{}/root{dir}", gw.pid()));
    assert!(inside.join("filler").exists(), "the tmpfs is there");

    let calls = |gw: &Gateway| {
        Sipp::scenario("uac_dtmf9.xml")
            .target(gw.sip_udp())
            .service("ivr")
            .calls(4)
            .rate(4)
            .without_message_trace()
            .timeout(Duration::from_secs(30))
            .run()
    };
    calls(&gw).assert_success();
    let waiting = gw.wait_for_metric(
        "trunkgate_journal_pending_records",
        Duration::from_secs(5),
        |v| v > 0.0,
    );
    assert!(waiting > Some(0.0), "records wait: {waiting:?}");
    assert!(
        gw.wait_for_metric(
            "trunkgate_journal_write_errors_total",
            Duration::from_secs(1),
            |v| v > 0.0
        ) > Some(0.0)
    );
    let line = gw.expect_line("journal: cannot write records", Duration::from_secs(1));
    assert!(line.contains("No space left on device"), "{line}");
    // More calls while the disk is full: they are answered and hung up on as ever.
    calls(&gw).assert_success();
    assert_eq!(
        gw.count_lines("journal: cannot write records"),
        1,
        "logged once a minute"
    );

    // Space returns: every waiting record is written, in order, the chain unbroken.
    std::fs::remove_file(inside.join("filler")).unwrap();
    let waiting = gw.wait_for_metric(
        "trunkgate_journal_pending_records",
        Duration::from_secs(5),
        |v| v == 0.0,
    );
    assert_eq!(waiting, Some(0.0));
    let (whole, report) = verify(&inside);
    assert!(whole, "{report}");
    let records = records(&inside);
    assert_eq!(
        of_type(&records, "cdr").len(),
        8,
        "all eight calls are there"
    );
    assert!(of_type(&records, "lost").is_empty());
    gw.stop().expect("a clean stop");
}

#[test]
fn an_agents_shift_in_the_journal_is_what_the_agent_did() {
    let journal = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        &TestConfig {
            route: "queue:support".into(),
            resume_grace_ms: 1_000,
            extra: journal_config(journal.path()),
            ..TestConfig::default()
        }
        .to_toml(),
    );
    let state = |agent: &AgentProcess, state: &str, nth: usize| {
        let needles = ["event=state", &format!("state={state}")];
        assert!(
            agent
                .wait_for_nth(&needles, nth, Duration::from_secs(10))
                .is_some(),
            "the agent never heard it is {state} (#{nth}):\n{}",
            agent.lines().join("\n")
        );
    };
    // The gateway starts an agent away; the client says available once it is welcomed. (The
    // client prints a state line for the change and one for the answer to its request.)
    let mut agent = AgentProcess::interactive(&gw);
    state(&agent, "available", 2);
    agent.type_line("s away lunch");
    state(&agent, "away", 3);
    agent.type_line("s available");
    state(&agent, "available", 4);
    // The laptop's lid closes: no goodbye. The gateway notices (idle timeout, 10 s), waits
    // out the resume grace (1 s), and ends the session.
    agent.kill();
    gw.expect_line("agent session over", Duration::from_secs(20));
    // Back the next morning, a fresh session; logs out properly this time.
    let mut agent = AgentProcess::interactive(&gw);
    state(&agent, "available", 2);
    agent.type_line("s away training");
    state(&agent, "away", 3);
    agent.type_line("q");
    assert!(agent.wait_exit(Duration::from_secs(10)).is_some());
    let over = || {
        gw.log_lines()
            .iter()
            .filter(|l| l.contains("agent session over"))
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while over() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    gw.stop().expect("a clean stop");

    let records = records(journal.path());
    let shift: Vec<String> = of_type(&records, "agent_event")
        .iter()
        .filter(|r| r["data"]["agent"] == "demo")
        .map(|r| {
            let d = &r["data"];
            let detail = [&d["state"], &d["reason"], &d["resumed"]]
                .iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Bool(b) => Some(format!("resumed={b}")),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(" ");
            format!("{} {detail}", d["event"].as_str().unwrap())
                .trim()
                .to_string()
        })
        .collect();
    assert_eq!(
        shift,
        [
            "logged_in resumed=false",
            "state away",
            "state available",
            "state away lunch",
            "state available",
            "connection_lost",
            "logged_out connection_lost",
            "state logged_out",
            "logged_in resumed=false",
            "state away",
            "state available",
            "state away training",
            "logged_out logout",
            "state logged_out",
        ],
        "the shift as the journal has it"
    );
    // Each record is stamped when it happened: the login precedes the logout by the shift.
    let at = |event: &str| -> Vec<String> {
        of_type(&records, "agent_event")
            .iter()
            .filter(|r| r["data"]["event"] == event)
            .map(|r| r["at"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(at("logged_in")[0] < at("connection_lost")[0]);
    assert!(at("connection_lost")[0] < at("logged_out")[0]);
}

#[test]
fn a_reload_sets_the_service_level_queue_outcomes_are_judged_against() {
    let journal = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        &TestConfig {
            route: "queue:support".into(),
            extra: journal_config(journal.path()),
            ..TestConfig::default()
        }
        .to_toml(),
    );
    let original = std::fs::read_to_string(gw.config_path()).unwrap();
    let changed = original
        .replace(
            "[queues.support]\n",
            "[queues.support]\nservice_level_ms = 1234\n",
        )
        .replace("sync_interval_ms = 50", "sync_interval_ms = 60");
    assert_ne!(changed, original);
    std::fs::write(gw.config_path(), changed).unwrap();
    let CtlRun { ok, stdout, stderr } = ctl(gw.admin(), &["reload"]);
    assert!(ok, "reload failed: {stderr}");
    assert!(
        stdout.contains("journal changed: needs a restart"),
        "the journal's own settings are read at start: {stdout}"
    );
    let mut agent = AgentProcess::start(
        &demo_args(&gw, &["--hangup-after-ms", "500", "--calls", "1"]),
        DEMO_CREDENTIAL,
    );
    agent.expect(&["event=state", "state=available"], Duration::from_secs(10));
    let caller = Baresip::new("caller")
        .dial(format!("sip:100@{}", gw.sip_udp()))
        .duration(Duration::from_secs(3))
        .run();
    assert!(caller.call_established(), "{}", caller.log);
    assert!(agent.wait_exit(Duration::from_secs(10)).is_some());
    gw.stop().expect("a clean stop");
    let records = records(journal.path());
    let outcomes = of_type(&records, "queue_outcome");
    assert_eq!(outcomes.len(), 1, "{records:#?}");
    assert_eq!(outcomes[0]["data"]["service_level_ms"], 1234);
}
