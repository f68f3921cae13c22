//! trunkgate's PRI stack (LAPD and Q.931 as sans-IO cores, the span's task, the software
//! span) against a real one: libpri, in `integration-tests/peers/pri_peer.c`, on the other end
//! of a software span. Both roles (trunkgate as CPE toward libpri as the network, and as the
//! network toward libpri as CPE), calls both ways, a busy callee, a RESTART of a busy channel,
//! the B-channel's audio carried bit for bit, and the D-channel pcap decoded by tshark without
//! a malformed packet.
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use trunkgate::isdn::line::Line;
use trunkgate::isdn::pcap::Pcap;
use trunkgate::isdn::q921::link::LinkConfig;
use trunkgate::isdn::q931::cause;
use trunkgate::isdn::q931::control::{ControlConfig, Event, Incoming, Setup, Side};
use trunkgate::isdn::q931::ie::PartyNumber;
use trunkgate::isdn::q931::message::CallRef;
use trunkgate::isdn::shell::{self, SpanCommand};
use trunkgate::isdn::software::{BChannels, SoftwareSpan};
use trunkgate::isdn::span::{Span, SpanConfig, SpanEvent};
use trunkgate_integration::pri::{tshark_decode, PriPeer};

const WAIT: Duration = Duration::from_secs(15);

/// Our span's task on a software span in a temp dir, and the handles a test drives it by.
struct Lab {
    rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    commands: mpsc::UnboundedSender<SpanCommand>,
    events: mpsc::UnboundedReceiver<SpanEvent>,
    seen: Vec<SpanEvent>,
    bchannels: BChannels,
    stop: CancellationToken,
}

impl Lab {
    fn new(side: Side) -> Lab {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let stop = CancellationToken::new();
        let control = ControlConfig::e1(side);
        let channels = control.channels.clone();
        let span = Span::new(SpanConfig {
            control,
            link: LinkConfig::default(),
        });
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let pcap = Pcap::create(&dir.path().join("d.pcap")).unwrap();
        let line = {
            let _guard = rt.enter();
            SoftwareSpan::bind(&dir.path().join("span"), &channels, stop.clone()).unwrap()
        };
        let bchannels = line.bchannels.clone();
        rt.spawn(shell::run(
            span,
            Line::software(line),
            Some(pcap),
            commands_rx,
            events_tx,
            None,
        ));
        Lab {
            rt,
            dir,
            commands,
            events,
            seen: Vec::new(),
            bchannels,
            stop,
        }
    }

    fn span_dir(&self) -> PathBuf {
        self.dir.path().join("span")
    }

    fn peer(&self, args: &[&str]) -> PriPeer {
        PriPeer::start(&self.span_dir(), args)
    }

    /// The first event (seen before or arriving within `WAIT`) that `pick` takes.
    fn expect<T>(&mut self, what: &str, mut pick: impl FnMut(&SpanEvent) -> Option<T>) -> T {
        if let Some(found) = self.seen.iter().find_map(&mut pick) {
            return found;
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let next = self
                .rt
                .block_on(async { tokio::time::timeout(left, self.events.recv()).await });
            match next {
                Ok(Some(event)) => {
                    let found = pick(&event);
                    self.seen.push(event);
                    if let Some(found) = found {
                        return found;
                    }
                }
                _ => panic!("no {what} within {WAIT:?}; the span said: {:#?}", self.seen),
            }
        }
    }

    fn incoming(&mut self) -> Incoming {
        self.expect("incoming call", |e| match e {
            SpanEvent::Call(Event::Incoming(i)) => Some(i.clone()),
            _ => None,
        })
    }

    fn cleared(&mut self, call: CallRef) -> u8 {
        self.expect("cleared call", |e| match e {
            SpanEvent::Call(Event::Cleared { call: c, cause }) if *c == call => Some(cause.value),
            _ => None,
        })
    }

    fn send(&self, command: SpanCommand) {
        self.commands.send(command).unwrap();
    }

    fn setup(&mut self, called: &str) -> (CallRef, u8) {
        let (reply, answer) = oneshot::channel();
        self.send(SpanCommand::Setup {
            setup: Setup {
                called: PartyNumber::new(called),
                calling: Some(PartyNumber::new("0301234567")),
                display: Some("trunkgate".into()),
            },
            reply,
        });
        self.rt
            .block_on(answer)
            .unwrap()
            .expect("the call is placed")
    }

    /// Exchanges audio on `channel` for a second: sends `ours` (160 bytes every 20 ms) and
    /// returns what came.
    fn talk(&self, channel: u8, ours: &[u8]) -> Vec<u8> {
        let deadline = Instant::now() + WAIT;
        let bchannel = loop {
            if let Some(b) = self.bchannels.get(channel) {
                break b;
            }
            assert!(
                Instant::now() < deadline,
                "the peer never connected b{channel}"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut heard = Vec::new();
        let mut buf = [0u8; 2048];
        let start = Instant::now();
        for (i, chunk) in ours.chunks(160).enumerate() {
            let due = start + Duration::from_millis(20 * i as u64);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            bchannel.write(chunk).unwrap();
            while let Ok(Some(n)) = bchannel.read(&mut buf) {
                if n == 0 {
                    break;
                }
                heard.extend_from_slice(&buf[..n]);
            }
        }
        heard
    }

    fn pcap(&self) -> PathBuf {
        self.dir.path().join("d.pcap")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A second of A-law no line would produce by itself: a slow ramp over every code but silence.
fn pattern(seed: u8) -> Vec<u8> {
    (0..8000u32)
        .map(|i| ((i / 3) as u8).wrapping_add(seed))
        .map(|b| if b == 0xd5 { 0xd4 } else { b })
        .collect()
}

/// `needle`'s first and last 400 bytes appear in `hay`, in order, unchanged.
fn carried(hay: &[u8], needle: &[u8]) -> bool {
    let find = |part: &[u8]| hay.windows(part.len()).position(|w| w == part);
    match (find(&needle[..400]), find(&needle[needle.len() - 400..])) {
        (Some(a), Some(b)) => a < b,
        _ => false,
    }
}

/// tshark reads the pcap: every frame decodes as LAPD, the I frames as Q.931, and nothing is
/// malformed. The Q.931 message types it found, in order.
fn tshark_messages(pcap: &std::path::Path) -> Vec<String> {
    tshark_decode(pcap)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Message type: "))
        .map(|t| t.split(" (").next().unwrap_or(t).to_string())
        .collect()
}

#[test]
fn libpri_as_the_network_calls_the_gateway_which_answers_talks_and_hears_the_hang_up() {
    let mut lab = Lab::new(Side::User);
    let mine = pattern(7);
    let play = lab.dir.path().join("play.alaw");
    let record = lab.dir.path().join("record.alaw");
    std::fs::write(&play, pattern(100)).unwrap();
    let mut peer = lab.peer(&[
        "--side",
        "nt",
        "--call",
        "5551234",
        "--channel",
        "3",
        "--play",
        play.to_str().unwrap(),
        "--record",
        record.to_str().unwrap(),
        "--talk-ms",
        "1500",
    ]);
    lab.expect("link up", |e| (*e == SpanEvent::LinkUp).then_some(()));
    peer.wait_for("up", WAIT);
    let offered = lab.incoming();
    assert_eq!(offered.called.digits, "5551234");
    assert_eq!(offered.calling.as_ref().unwrap().digits, "0201234567");
    assert_eq!(offered.channel, 3);
    lab.send(SpanCommand::Proceeding(offered.call));
    lab.send(SpanCommand::Alerting {
        call: offered.call,
        inband: true,
    });
    peer.wait_for("ringing", WAIT);
    lab.send(SpanCommand::Connect(offered.call));
    peer.wait_for("answer channel=3", WAIT);
    lab.expect("our answer confirmed", |e| {
        (*e == SpanEvent::Call(Event::Connected { call: offered.call })).then_some(())
    });
    let heard = lab.talk(3, &mine);
    assert_eq!(lab.cleared(offered.call), cause::NORMAL_CLEARING);
    peer.wait_for("done", WAIT);
    assert!(peer.wait_exit(WAIT).is_some_and(|s| s.success()));
    assert!(
        carried(&heard, &pattern(100)[..6000]),
        "libpri's audio reached us unchanged ({} bytes heard)",
        heard.len()
    );
    let recorded = std::fs::read(&record).unwrap();
    assert!(
        carried(&recorded, &mine[..6000]),
        "our audio reached libpri unchanged ({} bytes recorded)",
        recorded.len()
    );
    let messages = tshark_messages(&lab.pcap());
    for expected in [
        "SETUP",
        "CALL PROCEEDING",
        "ALERTING",
        "CONNECT",
        "DISCONNECT",
    ] {
        assert!(
            messages.iter().any(|m| m == expected),
            "tshark decoded no {expected}: {messages:?}"
        );
    }
}

fn call_out(ours: Side) {
    let mut lab = Lab::new(ours);
    let theirs = match ours {
        Side::User => "nt",
        Side::Network => "cpe",
    };
    let peer = lab.peer(&["--side", theirs, "--answer", "--ring-ms", "300"]);
    lab.expect("link up", |e| (*e == SpanEvent::LinkUp).then_some(()));
    peer.wait_for("up", WAIT);
    let (call, channel) = lab.setup("2000");
    let ring = peer.wait_for("ring", WAIT);
    assert!(ring.contains(&format!("channel={channel} ")), "{ring}");
    assert!(ring.contains("called=2000"), "{ring}");
    assert!(ring.contains("calling=0301234567"), "{ring}");
    lab.expect("alerting", |e| {
        matches!(e, SpanEvent::Call(Event::Alerting { call: c, .. }) if *c == call).then_some(())
    });
    lab.expect("answer", |e| {
        (*e == SpanEvent::Call(Event::Connected { call })).then_some(())
    });
    lab.talk(channel, &pattern(1)[..1600]);
    lab.send(SpanCommand::HangUp {
        call,
        cause: cause::NORMAL_CLEARING,
    });
    let hangup = peer.wait_for("hangup cause", WAIT);
    assert_eq!(hangup, "hangup cause=16");
    assert_eq!(lab.cleared(call), cause::NORMAL_CLEARING);
    tshark_messages(&lab.pcap());
}

#[test]
fn the_gateway_as_cpe_calls_out_through_libpri_as_the_network() {
    call_out(Side::User);
}

#[test]
fn the_gateway_as_the_network_calls_libpri_as_cpe() {
    call_out(Side::Network);
}

#[test]
fn libpri_as_cpe_calls_the_gateway_as_the_network() {
    let mut lab = Lab::new(Side::Network);
    let mut peer = lab.peer(&[
        "--side",
        "cpe",
        "--call",
        "100",
        "--channel",
        "17",
        "--talk-ms",
        "500",
    ]);
    let offered = lab.incoming();
    assert_eq!(offered.channel, 17);
    assert_eq!(offered.called.digits, "100");
    lab.send(SpanCommand::Alerting {
        call: offered.call,
        inband: false,
    });
    lab.send(SpanCommand::Connect(offered.call));
    peer.wait_for("answer channel=17", WAIT);
    assert_eq!(lab.cleared(offered.call), cause::NORMAL_CLEARING);
    peer.wait_for("done", WAIT);
    assert!(peer.wait_exit(WAIT).is_some_and(|s| s.success()));
    tshark_messages(&lab.pcap());
}

#[test]
fn a_busy_libpri_refuses_the_gateways_call_with_cause_17() {
    let mut lab = Lab::new(Side::User);
    let peer = lab.peer(&["--side", "nt", "--busy"]);
    lab.expect("link up", |e| (*e == SpanEvent::LinkUp).then_some(()));
    peer.wait_for("up", WAIT);
    let (call, _) = lab.setup("2000");
    assert_eq!(lab.cleared(call), cause::USER_BUSY);
}

#[test]
fn libpri_restarting_a_busy_channel_ends_the_call_on_it() {
    let mut lab = Lab::new(Side::User);
    let peer = lab.peer(&[
        "--side",
        "nt",
        "--call",
        "100",
        "--channel",
        "5",
        "--restart-after-ms",
        "300",
    ]);
    let offered = lab.incoming();
    lab.send(SpanCommand::Connect(offered.call));
    peer.wait_for("answer channel=5", WAIT);
    peer.wait_for("restart_ack channel=5", WAIT);
    assert_eq!(lab.cleared(offered.call), cause::TEMPORARY_FAILURE);
    lab.expect("restarted", |e| {
        (*e == SpanEvent::Call(Event::Restarted { channels: vec![5] })).then_some(())
    });
    let messages = tshark_messages(&lab.pcap());
    assert!(
        messages.iter().any(|m| m == "RESTART ACKNOWLEDGE"),
        "{messages:?}"
    );
}

/// A measurement, not a check (run with `--run-ignored only --no-capture`): libpri as the
/// network places 300 calls one after the other on the software span; the gateway's span
/// answers each at once and libpri hangs up 1 ms after the answer. Calls per second through
/// both D-channel stacks and the socket, one call at a time.
#[test]
#[ignore]
fn measure_sequential_calls_per_second_over_a_software_span() {
    let calls = 300;
    let mut lab = Lab::new(Side::User);
    let peer = lab.peer(&[
        "--side",
        "nt",
        "--call",
        "100",
        "--calls",
        &calls.to_string(),
        "--talk-ms",
        "1",
        "--timeout-ms",
        "120000",
    ]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = loop {
        assert!(Instant::now() < deadline, "{:?}", peer.lines().last());
        if let Some(done) = peer.lines().into_iter().find(|l| l.starts_with("done")) {
            break done;
        }
        let next = lab.rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(50), lab.events.recv()).await
        });
        if let Ok(Some(SpanEvent::Call(Event::Incoming(offered)))) = next {
            lab.send(SpanCommand::Connect(offered.call));
        }
    };
    let ms: f64 = done
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ms="))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(done.contains(&format!("calls={calls}")), "{done}");
    println!(
        "{calls} calls in {ms:.0} ms over the software span: {:.0} calls/s, one at a time",
        f64::from(calls) * 1000.0 / ms
    );
}
