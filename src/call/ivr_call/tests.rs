//! An IVR call driven in virtual time with real RTP packets, as a carrier would send them.
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::media::dtmf::TelephoneEvent;
use crate::media::g711::G711Law;
use crate::media::rtp::{self, RtpHeader};
use crate::sip::sdp::{Codec, Direction, Negotiated};

const CARRIER: &str = "127.0.0.1:6000";

fn negotiated() -> Negotiated {
    Negotiated {
        remote_rtp: Some(CARRIER.parse().unwrap()),
        remote_rtcp: Some("127.0.0.1:6001".parse().unwrap()),
        codec: Codec::Pcmu,
        payload_type: 0,
        telephone_event_pt: Some(101),
        ptime_ms: 20,
        local_direction: Direction::SendRecv,
    }
}

/// The demo IVR from config.example.toml with short synthetic prompts (40 ms each), so tests
/// hear exactly which prompt plays.
fn demo_call(now: Instant) -> IvrCall {
    let config = crate::config::embedded(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut lib = PromptLibrary::new();
    for (i, name) in config.ivr.prompt_names().into_iter().enumerate() {
        lib.insert(name, Prompt::from_samples(vec![1000 + 300 * i as i16; 320]));
    }
    let leg = CarrierLeg::new(
        now,
        SystemTime::now(),
        negotiated(),
        true,
        Duration::from_millis(20),
        Duration::from_millis(200),
    );
    IvrCall::new(
        now,
        leg,
        std::sync::Arc::new(config.ivr),
        "main",
        std::sync::Arc::new(lib),
        Some(Duration::from_secs(60)),
    )
    .unwrap()
}

struct Carrier {
    seq: u16,
    ts: u32,
    from: SocketAddr,
}

impl Carrier {
    fn new() -> Self {
        Carrier {
            seq: 100,
            ts: 8000,
            from: CARRIER.parse().unwrap(),
        }
    }

    fn audio(&mut self, call: &mut IvrCall, now: Instant, pcm: &[i16]) {
        let mut payload = Vec::new();
        G711Law::Ulaw.encode(pcm, &mut payload);
        self.packet(call, now, 0, false, &payload, self.ts);
        self.ts = self.ts.wrapping_add(160);
    }

    /// One RFC 4733 key press: start, updates and three end packets, all with one timestamp.
    fn key(&mut self, call: &mut IvrCall, now: Instant, digit: char) {
        let event = crate::media::dtmf::digit_to_event(digit).unwrap();
        let ts = self.ts;
        for (i, end) in [false, false, true, true, true].into_iter().enumerate() {
            let ev = TelephoneEvent {
                event,
                end,
                volume: 10,
                duration: 160 * (i as u16 + 1),
            };
            let mut payload = Vec::new();
            ev.write(&mut payload);
            self.packet(call, now, 101, i == 0, &payload, ts);
        }
        self.ts = self.ts.wrapping_add(800);
    }

    fn packet(
        &mut self,
        call: &mut IvrCall,
        now: Instant,
        pt: u8,
        marker: bool,
        payload: &[u8],
        ts: u32,
    ) {
        let mut buf = Vec::new();
        rtp::write(
            &RtpHeader::new(pt, self.seq, ts, 0x1234, marker),
            payload,
            &mut buf,
        );
        self.seq = self.seq.wrapping_add(1);
        call.leg.handle_rtp(now, self.from, &buf);
    }
}

/// Runs the call for `d`, ticking every 20 ms; returns the actions and the RTP payload bytes sent.
fn run(call: &mut IvrCall, now: &mut Instant, d: Duration) -> (Vec<CallAction>, Vec<Vec<u8>>) {
    let (mut actions, mut sent) = (Vec::new(), Vec::new());
    let end = *now + d;
    while *now < end {
        *now += Duration::from_millis(20);
        call.tick(*now);
        while let Some(a) = call.poll_action() {
            actions.push(a);
        }
        while let Some(t) = call.poll_transmit() {
            if !t.rtcp {
                assert_eq!(t.to, CARRIER.parse::<SocketAddr>().unwrap());
                sent.push(rtp::parse(&t.payload).unwrap().payload.to_vec());
            }
        }
    }
    (actions, sent)
}

#[test]
fn prompts_play_as_rtp_and_nine_hangs_up_after_goodbye() {
    let mut now = Instant::now();
    let mut call = demo_call(now);
    let (actions, sent) = run(&mut call, &mut now, Duration::from_millis(200));
    assert!(actions.is_empty());
    assert_eq!(sent.len(), 10, "one packet per 20 ms");
    let expected = G711Law::Ulaw.encode_sample(call_prompt_level("welcome"));
    assert!(
        sent[0].iter().all(|b| *b == expected),
        "the welcome prompt is what goes out first"
    );
    let mut carrier = Carrier::new();
    carrier.key(&mut call, now, '9');
    let (actions, _) = run(&mut call, &mut now, Duration::from_millis(100));
    assert_eq!(
        actions,
        vec![CallAction::Hangup],
        "goodbye is 40 ms, then hang up"
    );
    assert_eq!(
        call.digits_heard(),
        "9",
        "end-of-event retransmissions add no digit"
    );
}

/// The synthetic level the demo library gives a prompt (see `demo_call`).
fn call_prompt_level(name: &str) -> i16 {
    let config = crate::config::embedded(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    let idx = config
        .ivr
        .prompt_names()
        .into_iter()
        .position(|n| n == name)
        .unwrap();
    1000 + 300 * idx as i16
}

#[test]
fn same_key_as_rfc4733_and_inband_tone_is_one_digit() {
    let mut now = Instant::now();
    let mut call = demo_call(now);
    run(&mut call, &mut now, Duration::from_millis(100));
    let mut carrier = Carrier::new();
    carrier.key(&mut call, now, '1');
    // The same press as an in-band tone, 100 ms of it, arriving with the events.
    let mut tone = crate::media::tone::ToneGenerator::dtmf('1', -10.0).unwrap();
    for _ in 0..5 {
        let mut pcm = vec![0i16; 160];
        tone.fill(&mut pcm);
        carrier.audio(&mut call, now, &pcm);
        now += Duration::from_millis(20);
        call.tick(now);
    }
    run(&mut call, &mut now, Duration::from_millis(300));
    assert_eq!(call.digits_heard(), "1");
    assert_eq!(call.current_menu(), "readback");
}

#[test]
fn readback_menu_collects_and_reads_digits_back() {
    let mut now = Instant::now();
    let mut call = demo_call(now);
    let mut carrier = Carrier::new();
    carrier.key(&mut call, now, '1');
    run(&mut call, &mut now, Duration::from_millis(200));
    assert_eq!(call.current_menu(), "readback");
    for d in ['4', '2'] {
        carrier.key(&mut call, now, d);
        run(&mut call, &mut now, Duration::from_millis(100));
    }
    carrier.key(&mut call, now, '#');
    let (_, sent) = run(&mut call, &mut now, Duration::from_millis(2000));
    assert_eq!(call.digits_heard(), "142#");
    let level = |n: &str| G711Law::Ulaw.encode_sample(call_prompt_level(n));
    let order: Vec<u8> = sent.iter().map(|p| p[0]).fold(Vec::new(), |mut v, b| {
        if v.last() != Some(&b) {
            v.push(b);
        }
        v
    });
    let want = [
        level("you-entered"),
        level("digit-4"),
        level("digit-2"),
        level("welcome"),
    ];
    let pos: Vec<Option<usize>> = want
        .iter()
        .map(|w| order.iter().position(|b| b == w))
        .collect();
    assert!(
        pos.iter().all(Option::is_some),
        "all of {want:?} heard in {order:?}"
    );
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "in order: {pos:?}");
}

#[test]
fn symmetric_rtp_sends_to_where_the_carrier_really_is() {
    let mut now = Instant::now();
    let mut call = demo_call(now);
    let mut carrier = Carrier::new();
    carrier.from = "127.0.0.1:7777".parse().unwrap();
    carrier.audio(&mut call, now, &[0; 160]);
    now += Duration::from_millis(20);
    call.tick(now);
    let t = std::iter::from_fn(|| call.poll_transmit())
        .find(|t| !t.rtcp)
        .unwrap();
    assert_eq!(
        t.to,
        "127.0.0.1:7777".parse().unwrap(),
        "latched to the real source, not the SDP"
    );
    // A stray packet from elsewhere does not steal the stream while the carrier keeps talking.
    let mut stray = Carrier::new();
    stray.from = "127.0.0.1:9999".parse().unwrap();
    stray.audio(&mut call, now, &[0; 160]);
    now += Duration::from_millis(20);
    call.tick(now);
    let t = std::iter::from_fn(|| call.poll_transmit())
        .find(|t| !t.rtcp)
        .unwrap();
    assert_eq!(t.to, "127.0.0.1:7777".parse().unwrap());
}

#[test]
fn on_hold_nothing_is_sent_and_unhold_resumes() {
    let mut now = Instant::now();
    let mut call = demo_call(now);
    let mut held = negotiated();
    held.local_direction = Direction::RecvOnly;
    call.leg.renegotiate(now, held);
    let (_, sent) = run(&mut call, &mut now, Duration::from_millis(200));
    assert!(sent.is_empty(), "recvonly: we must not send");
    call.leg.renegotiate(now, negotiated());
    let (_, sent) = run(&mut call, &mut now, Duration::from_millis(200));
    assert_eq!(sent.len(), 10);
}

#[test]
fn a_carrier_that_stops_sending_rtp_is_hung_up_after_the_timeout() {
    let mut now = Instant::now();
    let mut call = demo_call(now);
    let mut carrier = Carrier::new();
    // Audio for 30 s, then nothing (the carrier's network died, no BYE).
    for _ in 0..1500 {
        carrier.audio(&mut call, now, &[0; 160]);
        now += Duration::from_millis(20);
        call.tick(now);
        assert!(!matches!(call.poll_action(), Some(CallAction::RtpTimeout)));
    }
    let (actions, _) = run(&mut call, &mut now, Duration::from_millis(59_900));
    assert!(
        !actions.contains(&CallAction::RtpTimeout),
        "not before 60 s of silence"
    );
    let (actions, _) = run(&mut call, &mut now, Duration::from_millis(200));
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == CallAction::RtpTimeout)
            .count(),
        1
    );
}

#[test]
fn a_held_stream_never_times_out() {
    let mut now = Instant::now();
    let mut call = demo_call(now);
    let mut inactive = negotiated();
    inactive.local_direction = Direction::Inactive;
    call.leg.renegotiate(now, inactive);
    let (actions, _) = run(&mut call, &mut now, Duration::from_secs(120));
    assert!(!actions.contains(&CallAction::RtpTimeout));
    // Resumed: the full timeout counts from the resume, not from the last packet before hold.
    call.leg.renegotiate(now, negotiated());
    let (actions, _) = run(&mut call, &mut now, Duration::from_secs(59));
    assert!(!actions.contains(&CallAction::RtpTimeout));
}

/// A sine sent by the carrier in `packet_ms` packets; returns what the leg plays out.
fn receive_sine(packet_ms: u32) -> (Vec<i16>, crate::media::jitter::JitterStats) {
    let mut now = Instant::now();
    let mut call = demo_call(now);
    let from: SocketAddr = CARRIER.parse().unwrap();
    let samples = (8 * packet_ms) as usize;
    let sine =
        |n: usize| (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * n as f64 / 8000.0).sin()) as i16;
    let (mut seq, mut ts, mut n) = (1u16, 0u32, 0usize);
    let mut heard = Vec::new();
    let mut next_packet = now;
    for _ in 0..150 {
        // 3 s of 20 ms ticks; packets go out on their own clock.
        while next_packet <= now {
            let pcm: Vec<i16> = (n..n + samples).map(sine).collect();
            n += samples;
            let mut payload = Vec::new();
            G711Law::Ulaw.encode(&pcm, &mut payload);
            let mut buf = Vec::new();
            rtp::write(&RtpHeader::new(0, seq, ts, 7, false), &payload, &mut buf);
            call.leg.handle_rtp(now, from, &buf);
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(samples as u32);
            next_packet += Duration::from_millis(packet_ms.into());
        }
        now += Duration::from_millis(20);
        heard.extend_from_slice(call.leg.tick(now, &[0; 160]));
    }
    (heard, call.leg.jitter_stats())
}

/// Largest sample-to-sample jump in the steady part: a clean 440 Hz sine at 8000 peak moves
/// at most ~2800 per sample; a splice or a gap jumps far more.
fn worst_step(pcm: &[i16]) -> i32 {
    pcm[1000..]
        .windows(2)
        .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
        .max()
        .unwrap()
}

#[test]
fn carrier_packets_of_20ms_play_out_clean() {
    let (heard, stats) = receive_sine(20);
    assert!(worst_step(&heard) < 3500, "step {}", worst_step(&heard));
    assert_eq!(stats.concealed, 0);
}

#[test]
fn carrier_packets_of_30ms_on_a_20ms_call_play_out_clean() {
    // SDP said ptime 20, the carrier sends 30 ms: every sample must still be played, in order.
    let (heard, stats) = receive_sine(30);
    assert!(worst_step(&heard) < 3500, "step {}", worst_step(&heard));
    // 30 ms packets pulled by a 20 ms clock arrive at uneven intervals from the buffer's point
    // of view; it may conceal once while it learns that, never lose a packet.
    assert_eq!(stats.lost, 0, "{stats:?}");
    assert!(stats.concealed <= 1, "{stats:?}");
}
