//! A supervisor in a talking call, in virtual time: the caller (G.711 from the carrier), the
//! agent and the supervisor (Opus, as their clients send it) each play a tone of their own, and
//! what each party is sent is decoded and measured tone by tone. Monitor, whisper and barge
//! give each party exactly the mix the table in `supervision.rs` says; leaving restores the
//! two-party call.
use std::f32::consts::TAU;
use std::time::Duration;

use super::*;
use crate::agent::protocol::SuperviseMode;
use crate::call::core::Output;
use crate::media::opus::{OpusConfig, OpusDecoder, OpusEncoder};
use crate::media::rtp::{self, RtpSender};
use crate::media::rtp_quic::OpusRtpSender;
use crate::queue::center::CallCommand;

const CALLER_HZ: f32 = 500.0;
const AGENT_HZ: f32 = 1000.0;
const SUPERVISOR_HZ: f32 = 1600.0;

/// A client sending one tone as Opus RTP.
struct Talker {
    encoder: OpusEncoder,
    sender: OpusRtpSender,
    hz: f32,
    phase: f32,
}

impl Talker {
    fn new(hz: f32, ssrc: u32) -> Self {
        Talker {
            encoder: OpusEncoder::new(&OpusConfig::default()).unwrap(),
            sender: OpusRtpSender::rtp_only(RtpSender::new(ssrc, 1, 0)),
            hz,
            phase: 0.0,
        }
    }

    fn packet(&mut self) -> Vec<u8> {
        let pcm = tone(self.hz, &mut self.phase);
        let mut packet = Vec::new();
        self.sender
            .encode_datagram(&mut self.encoder, &pcm, &mut packet)
            .unwrap();
        packet
    }
}

fn tone(hz: f32, phase: &mut f32) -> Vec<i16> {
    (0..160)
        .map(|_| {
            *phase = (*phase + TAU * hz / 8000.0) % TAU;
            (phase.sin() * 5000.0) as i16
        })
        .collect()
}

/// The strength of `hz` in `pcm` (Goertzel), relative to a full-scale 5000 tone: about 1.0
/// when the tone is there at the level it was sent, near 0 when it is not.
fn level(pcm: &[i16], hz: f32) -> f32 {
    if pcm.is_empty() {
        return 0.0;
    }
    let w = TAU * hz / 8000.0;
    let (mut re, mut im) = (0.0f32, 0.0f32);
    for (n, s) in pcm.iter().enumerate() {
        re += f32::from(*s) * (w * n as f32).cos();
        im += f32::from(*s) * (w * n as f32).sin();
    }
    (re * re + im * im).sqrt() * 2.0 / pcm.len() as f32 / 5000.0
}

/// What each party was sent over one stretch of the call.
#[derive(Default)]
struct Heard {
    caller: Vec<i16>,
    agent: Vec<i16>,
    supervisor: Vec<i16>,
}

struct Conference {
    h: Harness,
    agent: Talker,
    supervisor: Talker,
    caller_phase: f32,
    agent_decoder: OpusDecoder,
    supervisor_decoder: OpusDecoder,
}

impl Conference {
    fn start() -> Self {
        let mut h = Harness::new("queue:support", Duration::ZERO, 3);
        h.run(FRAME * 5);
        h.connect("alice");
        Conference {
            h,
            agent: Talker::new(AGENT_HZ, 11),
            supervisor: Talker::new(SUPERVISOR_HZ, 22),
            caller_phase: 0.0,
            agent_decoder: OpusDecoder::new().unwrap(),
            supervisor_decoder: OpusDecoder::new().unwrap(),
        }
    }

    fn supervise(&mut self, mode: SuperviseMode) {
        self.h.center(CallCommand::Supervise {
            supervisor: "sam".into(),
            mode,
        });
        assert_eq!(self.h.call.supervision(), Some(mode));
    }

    /// Two seconds of everybody talking; what each party was sent in the second one (the
    /// jitter buffers and codecs settled).
    fn talk(&mut self) -> Heard {
        let mut heard = Heard::default();
        for frame in 0..100 {
            let now = self.h.call.poll_timeout().expect("a frame is due");
            self.h.now = now;
            let pcm = tone(CALLER_HZ, &mut self.caller_phase);
            self.h.audio(&pcm);
            let (agent, supervisor) = (self.agent.packet(), self.supervisor.packet());
            self.h.call.handle_agent_media(now, &agent);
            self.h.call.handle_supervisor_media(now, &supervisor);
            let from_caller = self.h.heard.len();
            let outputs = self.h.outputs.len();
            self.h.call.handle_timeout(now);
            self.h.collect();
            if frame < 50 {
                continue;
            }
            heard.caller.extend_from_slice(&self.h.heard[from_caller..]);
            for o in &self.h.outputs[outputs..] {
                let (decoder, into) = match o {
                    Output::ToAgent(p) if !rtp::looks_like_rtcp(p) => {
                        (&mut self.agent_decoder, &mut heard.agent)
                    }
                    Output::ToSupervisor(p) if !rtp::looks_like_rtcp(p) => {
                        (&mut self.supervisor_decoder, &mut heard.supervisor)
                    }
                    _ => continue,
                };
                let (Output::ToAgent(p) | Output::ToSupervisor(p)) = o else {
                    continue;
                };
                let packet = rtp::parse(p).unwrap();
                decoder.decode(packet.payload, into).unwrap();
            }
        }
        heard
    }
}

/// Asserts who hears which tone: `(party, heard, [caller, agent, supervisor] expected)`.
fn check(heard: &Heard, expect: [(&str, [bool; 3]); 3]) {
    for (party, tones) in expect {
        let pcm = match party {
            "caller" => &heard.caller,
            "agent" => &heard.agent,
            _ => &heard.supervisor,
        };
        let levels = [
            level(pcm, CALLER_HZ),
            level(pcm, AGENT_HZ),
            level(pcm, SUPERVISOR_HZ),
        ];
        println!(
            "{party} hears caller {:.2}, agent {:.2}, supervisor {:.2}",
            levels[0], levels[1], levels[2]
        );
        for ((who, present), got) in ["caller", "agent", "supervisor"]
            .iter()
            .zip(tones)
            .zip(levels)
        {
            if present {
                assert!(got > 0.5, "{party} should hear the {who}: {levels:?}");
            } else {
                assert!(got < 0.05, "{party} must not hear the {who}: {levels:?}");
            }
        }
    }
}

/// Who each listener hears in each mode (docs/supervisors.md's table), written out again here:
/// `[caller, agent, supervisor]`.
fn expected(mode: SuperviseMode) -> [(&'static str, [bool; 3]); 3] {
    let (agent_hears_supervisor, caller_hears_supervisor) = match mode {
        SuperviseMode::Monitor => (false, false),
        SuperviseMode::Whisper => (true, false),
        _ => (true, true),
    };
    [
        ("supervisor", [true, true, false]),
        ("agent", [true, false, agent_hears_supervisor]),
        ("caller", [false, true, caller_hears_supervisor]),
    ]
}

#[test]
fn in_monitor_the_supervisor_hears_both_and_nobody_hears_it() {
    let mut c = Conference::start();
    c.supervise(SuperviseMode::Monitor);
    let heard = c.talk();
    check(&heard, expected(SuperviseMode::Monitor));
}

#[test]
fn in_whisper_the_agent_hears_the_supervisor_and_the_caller_does_not() {
    let mut c = Conference::start();
    c.supervise(SuperviseMode::Whisper);
    let heard = c.talk();
    check(&heard, expected(SuperviseMode::Whisper));
}

#[test]
fn in_barge_all_three_hear_the_others_and_switching_modes_keeps_the_call() {
    let mut c = Conference::start();
    c.supervise(SuperviseMode::Monitor);
    c.talk();
    c.supervise(SuperviseMode::Barge);
    let heard = c.talk();
    check(&heard, expected(SuperviseMode::Barge));
    c.supervise(SuperviseMode::Whisper);
    let heard = c.talk();
    check(&heard, expected(SuperviseMode::Whisper));
}

#[test]
fn leaving_restores_the_two_party_call() {
    let mut c = Conference::start();
    c.supervise(SuperviseMode::Barge);
    c.talk();
    c.h.center(CallCommand::Unsupervise);
    assert_eq!(c.h.call.supervision(), None);
    let heard = c.talk();
    assert!(
        heard.supervisor.is_empty(),
        "nothing more for the supervisor"
    );
    check(
        &heard,
        [
            ("supervisor", [false, false, false]),
            ("agent", [true, false, false]),
            ("caller", [false, true, false]),
        ],
    );
    assert!(c.h.ended().is_none(), "the call goes on");
}
