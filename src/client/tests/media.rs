//! One call's media between two in-memory ends in virtual time: what one plays, the other
//! hears; FEC covers a loss; the flow and hold rules hold.
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::agent::protocol::{CallId, FlowId, MediaParams};
use crate::client::args::AudioSource;
use crate::client::media::{CallMedia, Received};
use crate::media::rtp;
use crate::media::rtp_quic;

const FRAME: Duration = Duration::from_millis(20);

/// `seconds` of a sine at `hz`, 8 kHz.
pub fn tone(hz: f32, seconds: f32) -> Arc<[i16]> {
    let samples = (seconds * 8000.0) as usize;
    (0..samples)
        .map(|i| ((i as f32 * hz * std::f32::consts::TAU / 8000.0).sin() * 10_000.0) as i16)
        .collect()
}

/// Share of the signal's energy at `hz` (Goertzel), 0..=1; a clean tone scores near 1.
pub fn tone_share(samples: &[i16], hz: f32) -> f64 {
    let n = samples.len() as f64;
    let omega = std::f64::consts::TAU * f64::from(hz) / 8000.0;
    let coefficient = 2.0 * omega.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coefficient * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
    let energy: f64 = samples.iter().map(|&x| f64::from(x).powi(2)).sum();
    if energy == 0.0 {
        return 0.0;
    }
    (2.0 * power / (n * energy)).min(1.0)
}

fn media(flow: u64, source: AudioSource) -> CallMedia {
    CallMedia::new(
        CallId::new("c7"),
        FlowId(flow),
        &MediaParams::default(),
        source,
        &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(flow),
    )
    .expect("media for the protocol's default parameters")
}

/// Runs `ticks` periods: a's datagrams go to b (unless `drop` says so) and b's to a. Returns
/// what a and b played.
fn exchange(
    a: &mut CallMedia,
    b: &mut CallMedia,
    ticks: usize,
    drop: impl Fn(usize) -> bool,
) -> (Vec<i16>, Vec<i16>) {
    let base = Instant::now();
    let (mut heard_by_a, mut heard_by_b) = (Vec::new(), Vec::new());
    for i in 0..ticks {
        let now = base + FRAME * i as u32;
        let tick = a.tick(now).unwrap();
        heard_by_a.extend_from_slice(tick.played);
        let from_a = tick.datagram.map(<[u8]>::to_vec);
        let tick = b.tick(now).unwrap();
        heard_by_b.extend_from_slice(tick.played);
        let from_b = tick.datagram.map(<[u8]>::to_vec);
        // Delivered 5 ms later, before the next tick.
        let arrival = now + Duration::from_millis(5);
        if let Some(datagram) = from_a {
            a.count_sent();
            if !drop(i) {
                assert_eq!(b.receive(arrival, &datagram), Received::Accepted);
            }
        }
        if let Some(datagram) = from_b {
            b.count_sent();
            assert_eq!(a.receive(arrival, &datagram), Received::Accepted);
        }
    }
    (heard_by_a, heard_by_b)
}

#[test]
fn what_one_end_plays_the_other_hears() {
    let mut gateway = media(4, AudioSource::Play(tone(440.0, 2.0)));
    let mut agent = media(4, AudioSource::Silence);
    let (_, heard) = exchange(&mut gateway, &mut agent, 100, |_| false);
    // Skip the jitter buffer's start.
    let share = tone_share(&heard[8 * 160..90 * 160], 440.0);
    assert!(share > 0.8, "440 Hz share of what the agent heard: {share}");
    let counters = agent.counters();
    assert_eq!(counters.received, 100);
    assert_eq!(counters.sent, 100);
    assert_eq!(counters.lost, 0);
}

#[test]
fn a_played_file_plays_once_then_silence() {
    let mut gateway = media(4, AudioSource::Play(tone(440.0, 0.5)));
    let mut agent = media(4, AudioSource::Silence);
    let (_, heard) = exchange(&mut gateway, &mut agent, 75, |_| false);
    let early = tone_share(&heard[5 * 160..25 * 160], 440.0);
    let late_energy: f64 = heard[55 * 160..]
        .iter()
        .map(|&x| f64::from(x).abs())
        .sum::<f64>()
        / (20.0 * 160.0);
    assert!(early > 0.8, "{early}");
    assert!(
        late_energy < 50.0,
        "mean level after the file ended: {late_energy}"
    );
}

#[test]
fn echo_sends_back_what_was_received() {
    let mut gateway = media(4, AudioSource::Play(tone(700.0, 3.0)));
    let mut agent = media(4, AudioSource::Echo);
    let (heard_by_gateway, _) = exchange(&mut gateway, &mut agent, 120, |_| false);
    let share = tone_share(&heard_by_gateway[30 * 160..110 * 160], 700.0);
    assert!(share > 0.7, "700 Hz share of the echo: {share}");
}

#[test]
fn reflect_hands_each_datagram_back_undecoded_and_sends_nothing_itself() {
    let mut gateway = media(4, AudioSource::Play(tone(700.0, 1.0)));
    let mut agent = media(4, AudioSource::Reflect);
    let base = Instant::now();
    for i in 0..10u32 {
        let now = base + FRAME * i;
        let datagram = gateway.tick(now).unwrap().datagram.unwrap().to_vec();
        assert_eq!(agent.receive(now, &datagram), Received::Reflect);
        let tick = agent.tick(now).unwrap();
        assert!(
            tick.datagram.is_none(),
            "the reflecting agent encoded a frame"
        );
        assert!(tick.played.iter().all(|&s| s == 0));
        agent.count_sent();
    }
    let other_flow = media(5, AudioSource::Play(tone(700.0, 1.0)))
        .tick(base)
        .unwrap()
        .datagram
        .unwrap()
        .to_vec();
    assert_eq!(
        agent.receive(base, &other_flow),
        Received::OtherFlow { flow: 5 }
    );
    // Held: neither side sends audio, reflected or not.
    agent.set_held(true);
    let datagram = gateway.tick(base).unwrap().datagram.unwrap().to_vec();
    assert_eq!(agent.receive(base, &datagram), Received::Accepted);
    let counters = agent.counters();
    assert_eq!((counters.received, counters.sent), (11, 10));
}

#[test]
fn fec_rebuilds_isolated_losses() {
    // Speech-like sound: SILK sends no FEC copy of frames it judges inactive, which a steady
    // tone can be.
    let voice: Arc<[i16]> = crate::media::opus::tests::voice_like(8000 * 5, 7).into();
    let mut gateway = media(4, AudioSource::Play(voice));
    let mut agent = media(4, AudioSource::Silence);
    // Every 13th packet: not in step with the test signal's syllables, whose first frames
    // carry no FEC copy.
    exchange(&mut gateway, &mut agent, 200, |i| i > 10 && i % 13 == 5);
    let counters = agent.counters();
    assert_eq!(counters.lost, 14, "{counters:?}");
    assert!(
        counters.fec * 2 > counters.lost,
        "FEC recovered too little: {counters:?}"
    );
}

#[test]
fn datagrams_for_another_flow_are_not_played() {
    let mut gateway = media(5, AudioSource::Play(tone(440.0, 1.0)));
    let mut agent = media(4, AudioSource::Silence);
    let now = Instant::now();
    let datagram = gateway.tick(now).unwrap().datagram.unwrap().to_vec();
    assert_eq!(
        agent.receive(now, &datagram),
        Received::OtherFlow { flow: 5 }
    );
    assert!(matches!(agent.receive(now, &[]), Received::Invalid { .. }));
    assert!(matches!(
        agent.receive(now, &[4, 1, 2]),
        Received::Invalid { .. }
    ));
    assert_eq!(agent.counters().received, 0);
}

#[test]
fn moving_to_a_new_flow_keeps_the_rtp_stream() {
    let mut agent = media(4, AudioSource::Silence);
    let now = Instant::now();
    let first = agent.tick(now).unwrap().datagram.unwrap().to_vec();
    agent.move_to_flow(FlowId(300)).unwrap();
    let second = agent.tick(now + FRAME).unwrap().datagram.unwrap().to_vec();
    let (flow1, rtp1) = rtp_quic::parse(&first).unwrap();
    let (flow2, rtp2) = rtp_quic::parse(&second).unwrap();
    assert_eq!((flow1.get(), flow2.get()), (4, 300));
    let (h1, h2) = (
        rtp::parse(rtp1).unwrap().header,
        rtp::parse(rtp2).unwrap().header,
    );
    assert_eq!(h1.ssrc, h2.ssrc);
    assert_eq!(h2.sequence, h1.sequence.wrapping_add(1));
    assert_eq!(h2.timestamp, h1.timestamp.wrapping_add(960));
    assert_eq!(h1.payload_type, 111);
}

#[test]
fn a_held_call_sends_nothing() {
    let mut agent = media(4, AudioSource::Silence);
    agent.set_held(true);
    let tick = agent.tick(Instant::now()).unwrap();
    assert!(tick.datagram.is_none());
    assert_eq!(tick.played.len(), 160);
}
