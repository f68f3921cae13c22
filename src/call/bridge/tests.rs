//! The bridge in virtual time, with real RTP from a carrier: hold and the caller's keys.
use std::net::SocketAddr;
use std::time::SystemTime;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;
use crate::call::leg::{MediaTransmit, RtpMedia};
use crate::media::dtmf::TelephoneEvent;
use crate::media::g711::G711Law;
use crate::media::prompt::{Prompt, PromptLibrary};
use crate::media::rtp::{self, RtpHeader, RtpSender};
use crate::media::rtp_quic::{self as roq, FlowId, OpusRtpSender};
use crate::sip::sdp::{Codec, Direction, Negotiated};

const FRAME: Duration = Duration::from_millis(20);
const MUSIC_LEVEL: i16 = 4000;

/// The bridge with a carrier's media leg, stepped frame by frame the way the call core does.
struct AgentCall {
    leg: RtpMedia,
    bridge: Bridge,
    caller_digits: std::collections::VecDeque<char>,
}

impl AgentCall {
    fn tick(&mut self, now: Instant) -> Option<Vec<u8>> {
        let samples = self.leg.samples_per_frame();
        let heard = self.leg.tick(now, self.bridge.to_caller(now, samples));
        let packet = self.bridge.from_caller(heard).map(<[u8]>::to_vec);
        while let Some(d) = self.leg.poll_digit() {
            self.caller_digits.push_back(d);
        }
        self.leg.handle_timeout(now);
        packet
    }

    fn handle_agent_media(&mut self, now: Instant, rtp: &[u8]) {
        self.bridge.handle_agent_media(now, rtp);
    }

    fn set_hold(&mut self, now: Instant, on: bool) {
        self.bridge.set_hold(now, on);
    }

    fn poll_caller_digit(&mut self) -> Option<char> {
        self.caller_digits.pop_front()
    }

    fn poll_transmit(&mut self) -> Option<MediaTransmit> {
        self.leg.poll_transmit()
    }
}

fn bridge(now: Instant) -> AgentCall {
    let neg = Negotiated {
        remote_rtp: Some("127.0.0.1:6000".parse().unwrap()),
        remote_rtcp: None,
        codec: Codec::Pcmu,
        payload_type: 0,
        telephone_event_pt: Some(101),
        ptime_ms: 20,
        local_direction: Direction::SendRecv,
        srtp: None,
    };
    let mut rng = StdRng::seed_from_u64(5);
    let leg = RtpMedia::new(
        now,
        SystemTime::now(),
        neg,
        true,
        FRAME,
        FRAME * 10,
        &mut rng,
    );
    let bridge = Bridge::new(
        now,
        &OpusConfig::default(),
        (FRAME, FRAME * 10),
        music(),
        &mut rng,
    )
    .unwrap();
    AgentCall {
        leg,
        bridge,
        caller_digits: Default::default(),
    }
}

fn music() -> MusicOnHold {
    let mut lib = PromptLibrary::new();
    lib.insert("moh".into(), Prompt::from_samples(vec![MUSIC_LEVEL; 800]));
    MusicOnHold::new(&lib, "moh")
}

/// One frame of audio from the carrier.
fn carrier_packet(seq: u16, payload: &[u8]) -> Vec<u8> {
    let header = RtpHeader::new(0, seq, 8000 + u32::from(seq) * 160, 0x1234, false);
    let mut out = Vec::new();
    rtp::write(&header, payload, &mut out);
    out
}

struct Run {
    datagrams: usize,
    /// Decoded audio the carrier was sent.
    to_carrier: Vec<i16>,
}

/// `frames` frames of carrier speech; the agent answers each with a frame of its own if
/// `agent` is given (its encoder and RTP numbering).
fn run(call: &mut AgentCall, start: Instant, frames: u16, first_seq: u16) -> Run {
    run_with_agent(call, start, frames, first_seq, None)
}

fn run_with_agent(
    call: &mut AgentCall,
    start: Instant,
    frames: u16,
    first_seq: u16,
    mut agent: Option<&mut Agent>,
) -> Run {
    let from: SocketAddr = "127.0.0.1:6000".parse().unwrap();
    let speech: Vec<i16> = (0..160).map(|i| ((i % 16) as i16 - 8) * 900).collect();
    let mut encoded = Vec::new();
    G711Law::Ulaw.encode(&speech, &mut encoded);
    let mut result = Run {
        datagrams: 0,
        to_carrier: Vec::new(),
    };
    for i in 0..frames {
        let now = start + FRAME * u32::from(i);
        call.leg
            .handle_rtp(now, from, &carrier_packet(first_seq + i, &encoded));
        if let Some(agent) = agent.as_deref_mut() {
            call.handle_agent_media(now, &agent.packet());
        }
        if call.tick(now).is_some() {
            result.datagrams += 1;
        }
        while let Some(t) = call.poll_transmit() {
            if t.rtcp {
                continue;
            }
            let packet = rtp::parse(&t.payload).unwrap();
            G711Law::Ulaw.decode(packet.payload, &mut result.to_carrier);
        }
    }
    result
}

#[test]
fn a_held_caller_hears_music_and_the_agent_gets_nothing_until_unhold() {
    let start = Instant::now();
    let mut call = bridge(start);
    let talking = run(&mut call, start, 20, 1);
    assert!(talking.datagrams >= 18, "the agent hears the caller");

    call.set_hold(start + FRAME * 20, true);
    let held = run(&mut call, start + FRAME * 20, 50, 21);
    assert_eq!(held.datagrams, 0, "nothing goes to the agent while held");
    let music_samples = held
        .to_carrier
        .iter()
        .filter(|s| (i32::from(**s) - i32::from(MUSIC_LEVEL)).abs() < 200)
        .count();
    assert!(
        music_samples > held.to_carrier.len() * 9 / 10,
        "the caller hears the music: {music_samples} of {}",
        held.to_carrier.len()
    );

    call.set_hold(start + FRAME * 70, false);
    let back = run(&mut call, start + FRAME * 70, 20, 71);
    assert!(back.datagrams >= 18, "the agent hears the caller again");
}

#[test]
fn the_callers_keys_are_reported_once_each_for_the_agent() {
    let start = Instant::now();
    let mut call = bridge(start);
    let from: SocketAddr = "127.0.0.1:6000".parse().unwrap();
    for (i, end) in [false, false, true, true, true].into_iter().enumerate() {
        let seq = i as u16 + 1;
        let event = TelephoneEvent {
            event: 4,
            end,
            volume: 10,
            duration: 160 * (i as u16 + 1),
        };
        let mut payload = Vec::new();
        event.write(&mut payload);
        let header = RtpHeader::new(101, seq, 8000, 0x1234, i == 0);
        let mut packet = Vec::new();
        rtp::write(&header, &payload, &mut packet);
        let now = start + FRAME * u32::from(seq);
        call.leg.handle_rtp(now, from, &packet);
        call.tick(now);
    }
    assert_eq!(call.poll_caller_digit(), Some('4'));
    assert_eq!(call.poll_caller_digit(), None);
}

/// The agent's side of the flow: a steady 440 Hz tone, Opus-encoded, one packet per call.
struct Agent {
    encoder: OpusEncoder,
    sender: OpusRtpSender,
    phase: f32,
}

impl Agent {
    fn new() -> Self {
        Agent {
            encoder: OpusEncoder::new(&OpusConfig::default()).unwrap(),
            sender: OpusRtpSender::new(FlowId::new(3).unwrap(), RtpSender::new(9, 1, 0)),
            phase: 0.0,
        }
    }

    fn packet(&mut self) -> Vec<u8> {
        let pcm: Vec<i16> = (0..160)
            .map(|_| {
                self.phase += std::f32::consts::TAU * 440.0 / 8000.0;
                (self.phase.sin() * 6000.0) as i16
            })
            .collect();
        let mut datagram = Vec::new();
        self.sender
            .encode_datagram(&mut self.encoder, &pcm, &mut datagram)
            .unwrap();
        roq::parse(&datagram).unwrap().1.to_vec()
    }
}

fn music_share(pcm: &[i16]) -> f64 {
    let music = pcm
        .iter()
        .filter(|s| (i32::from(**s) - i32::from(MUSIC_LEVEL)).abs() < 200)
        .count();
    music as f64 / pcm.len().max(1) as f64
}

#[test]
fn when_the_agents_audio_stops_the_caller_hears_music_until_it_returns() {
    let start = Instant::now();
    let mut call = bridge(start);
    let mut agent = Agent::new();
    let talking = run_with_agent(&mut call, start, 50, 1, Some(&mut agent));
    assert!(
        music_share(&talking.to_carrier) < 0.05,
        "the agent is heard"
    );
    // The agent's network dies: a second of whatever is left, then music.
    let silent = run(&mut call, start + FRAME * 50, 100, 51);
    let (first_second, after) = silent.to_carrier.split_at(8000);
    assert!(music_share(first_second) < 0.1, "no music before the stall");
    assert!(music_share(after) > 0.9, "music after a second of nothing");
    // Its audio comes back: the caller hears the agent again at once.
    let back = run_with_agent(&mut call, start + FRAME * 150, 50, 151, Some(&mut agent));
    assert!(
        music_share(&back.to_carrier[1600..]) < 0.05,
        "the agent again"
    );
}
