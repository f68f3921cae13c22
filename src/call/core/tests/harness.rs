//! A call driven from both ends in memory: the carrier's RTP and SIP events in, the leg's
//! signals and packets out, the center's commands in, the core's outputs and events out.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::call::core::{Arrival, Call, Output, ToCenter};
use crate::call::leg::sip::MediaSettings;
use crate::call::leg::{SipLeg, SipSignal};
use crate::config::Loaded;
use crate::events::{CallEvent, EndCause, Side};
use crate::media::dtmf::TelephoneEvent;
use crate::media::g711::G711Law;
use crate::media::prompt::{Prompt, PromptLibrary};
use crate::media::rtp::{self, RtpHeader};
use crate::queue::center::CallCommand;
use crate::sip::ua::{CallEvent as SipEvent, EndReason};

pub const FRAME: Duration = Duration::from_millis(20);
pub const CARRIER: &str = "127.0.0.1:6000";
pub const MUSIC_LEVEL: i16 = 4000;

pub fn offer() -> Vec<u8> {
    "v=0\r\no=carrier 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
     m=audio 6000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
     a=sendrecv\r\n"
        .as_bytes()
        .to_vec()
}

/// The offer again, with another direction (hold: `sendonly` from the carrier).
pub fn offer_with(direction: &str) -> Vec<u8> {
    String::from_utf8(offer())
        .unwrap()
        .replace("a=sendrecv", &format!("a={direction}"))
        .into_bytes()
}

/// The example configuration with short synthetic prompts (40 ms each, each its own level) and
/// a music-on-hold of a steady level, so tests hear exactly what plays.
pub fn config(edit: impl FnOnce(&mut crate::config::Config)) -> Arc<Loaded> {
    let mut config =
        crate::config::embedded(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    edit(&mut config);
    let mut lib = PromptLibrary::new();
    for (i, name) in config.ivr.prompt_names().into_iter().enumerate() {
        lib.insert(name, Prompt::from_samples(vec![1000 + 300 * i as i16; 320]));
    }
    lib.insert("moh".into(), Prompt::from_samples(vec![MUSIC_LEVEL; 800]));
    lib.insert(
        "queue-unavailable".into(),
        Prompt::from_samples(vec![-3000; 320]),
    );
    Arc::new(Loaded::with_prompts(config, lib))
}

/// A leg for a call we place on `trunk`, its RTP on `local`, not sent yet.
pub fn outgoing_leg(
    now: Instant,
    trunk: &crate::sip::trunk::TrunkConfig,
    local: &str,
    rng: &mut StdRng,
) -> SipLeg {
    let (leg, _offer) = SipLeg::new_outgoing(
        now,
        SystemTime::UNIX_EPOCH,
        trunk,
        local.parse().unwrap(),
        MediaSettings {
            jitter_min: FRAME,
            jitter_max: FRAME * 10,
            secure_signalling: false,
        },
        rng,
    )
    .unwrap();
    leg
}

/// The synthetic level the test library gives an IVR prompt.
pub fn prompt_level(name: &str) -> i16 {
    let config = crate::config::embedded(std::path::Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    let idx = config
        .ivr
        .prompt_names()
        .into_iter()
        .position(|n| n == name)
        .unwrap();
    1000 + 300 * idx as i16
}

pub struct Harness {
    pub call: Call<SipLeg>,
    pub now: Instant,
    pub signals: Vec<SipSignal>,
    pub outputs: Vec<Output>,
    pub events: Vec<CallEvent>,
    /// Decoded audio the carrier was sent.
    pub heard: Vec<i16>,
    /// RTP payloads the carrier was sent.
    pub packets: Vec<Vec<u8>>,
    pub to: Vec<SocketAddr>,
    carrier_seq: u16,
    carrier_ts: u32,
    pub from: SocketAddr,
}

impl Harness {
    /// A call from the example trunk, routed to `route`, ringing `ring` first.
    pub fn new(route: &str, ring: Duration, seed: u64) -> Self {
        Self::with_config(route, ring, seed, config(|_| {}))
    }

    pub fn with_config(route: &str, ring: Duration, seed: u64, config: Arc<Loaded>) -> Self {
        let now = Instant::now();
        let mut rng = StdRng::seed_from_u64(seed);
        let trunk = config.config.trunks[0].clone();
        let leg = SipLeg::new(
            now,
            SystemTime::UNIX_EPOCH,
            &trunk,
            Some(offer()),
            "127.0.0.1:20000".parse().unwrap(),
            MediaSettings {
                jitter_min: FRAME,
                jitter_max: FRAME * 10,
                secure_signalling: false,
            },
            &mut rng,
        );
        let arrival = Arrival {
            id: 7,
            trunk: trunk.name.clone(),
            sip_call_id: "c1@carrier".into(),
            caller: "+15551234".into(),
            callee: "100".into(),
            route: route.parse().unwrap(),
            ring,
        };
        let call = Call::new(now, leg, config, arrival, rng);
        Self::around(call, now)
    }

    /// A call the agent `alice` places on the example trunk, not answered yet.
    pub fn outgoing(ring_timeout: Duration, seed: u64) -> Self {
        let now = Instant::now();
        let mut rng = StdRng::seed_from_u64(seed);
        let config = config(|_| {});
        let trunk = config.config.trunks[0].clone();
        let leg = outgoing_leg(now, &trunk, "127.0.0.1:20000", &mut rng);
        let placed = crate::call::core::PlacedCall {
            id: 7,
            trunk: trunk.name.clone(),
            sip_call_id: "c1@trunkgate".into(),
            agent: "alice".into(),
            caller_id: "+4930555000".into(),
            callee: "+49301234567".into(),
            ring_timeout,
        };
        let call = Call::new_outgoing(now, leg, config, placed, rng);
        Self::around(call, now)
    }

    fn around(call: Call<SipLeg>, now: Instant) -> Self {
        let mut h = Harness {
            call,
            now,
            signals: Vec::new(),
            outputs: Vec::new(),
            events: Vec::new(),
            heard: Vec::new(),
            packets: Vec::new(),
            to: Vec::new(),
            carrier_seq: 100,
            carrier_ts: 8000,
            from: CARRIER.parse().unwrap(),
        };
        h.collect();
        h
    }

    /// Takes everything the call and its leg queued.
    pub fn collect(&mut self) {
        while let Some(s) = self.call.leg_mut().poll_signal() {
            self.signals.push(s);
        }
        while let Some(t) = self.call.leg_mut().poll_transmit() {
            if t.rtcp {
                continue;
            }
            let packet = rtp::parse(&t.payload).unwrap();
            if packet.header.payload_type == 0 {
                G711Law::Ulaw.decode(packet.payload, &mut self.heard);
                self.packets.push(packet.payload.to_vec());
            }
            self.to.push(t.to);
        }
        while let Some(o) = self.call.poll_output() {
            self.outputs.push(o);
        }
        while let Some(e) = self.call.poll_event() {
            self.events.push(e);
        }
    }

    /// Runs the clock for `d`, from timeout to timeout, the carrier sending silence each frame
    /// if `talking`.
    pub fn run(&mut self, d: Duration) {
        self.run_with(d, true)
    }

    pub fn run_with(&mut self, d: Duration, talking: bool) {
        let end = self.now + d;
        loop {
            let Some(next) = self.call.poll_timeout() else {
                self.now = end;
                break;
            };
            if next > end {
                self.now = end;
                break;
            }
            self.now = next;
            if talking && self.call.poll_timeout().is_some() {
                self.audio(&[0; 160]);
            }
            self.call.handle_timeout(self.now);
            self.collect();
        }
        self.collect();
    }

    pub fn audio(&mut self, pcm: &[i16]) {
        let mut payload = Vec::new();
        G711Law::Ulaw.encode(pcm, &mut payload);
        let ts = self.carrier_ts;
        self.packet(0, false, &payload, ts);
        self.carrier_ts = self.carrier_ts.wrapping_add(160);
    }

    /// One RFC 4733 key press: start, updates and three end packets, all with one timestamp.
    pub fn key(&mut self, digit: char) {
        let event = crate::media::dtmf::digit_to_event(digit).unwrap();
        let ts = self.carrier_ts;
        for (i, end) in [false, false, true, true, true].into_iter().enumerate() {
            let ev = TelephoneEvent {
                event,
                end,
                volume: 10,
                duration: 160 * (i as u16 + 1),
            };
            let mut payload = Vec::new();
            ev.write(&mut payload);
            self.packet(101, i == 0, &payload, ts);
        }
        self.carrier_ts = self.carrier_ts.wrapping_add(800);
    }

    fn packet(&mut self, pt: u8, marker: bool, payload: &[u8], ts: u32) {
        let mut buf = Vec::new();
        let header = RtpHeader::new(pt, self.carrier_seq, ts, 0x1234, marker);
        rtp::write(&header, payload, &mut buf);
        self.carrier_seq = self.carrier_seq.wrapping_add(1);
        let from = self.from;
        self.call
            .handle_leg(self.now, |leg, now| leg.handle_rtp(now, from, &buf));
        self.collect();
    }

    pub fn sip(&mut self, event: SipEvent) {
        self.call
            .handle_leg(self.now, |leg, now| leg.handle_sip(now, event));
        self.collect();
    }

    /// The carrier hangs up.
    pub fn bye(&mut self) {
        self.sip(SipEvent::Ended {
            call: 7,
            reason: EndReason::RemoteBye,
        });
    }

    pub fn center(&mut self, cmd: CallCommand) {
        self.call.handle_center(self.now, cmd);
        self.collect();
    }

    pub fn connect(&mut self, agent: &str) {
        self.center(CallCommand::Connect {
            conn: 1,
            flow: 1,
            agent: agent.into(),
        });
    }

    /// The events so far, and forget them.
    pub fn take_events(&mut self) -> Vec<CallEvent> {
        std::mem::take(&mut self.events)
    }

    pub fn ended(&self) -> Option<(Side, EndCause)> {
        self.events.iter().find_map(|e| match e {
            CallEvent::Ended { side, cause, .. } => Some((*side, cause.clone())),
            _ => None,
        })
    }

    pub fn ends(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, CallEvent::Ended { .. }))
            .count()
    }

    pub fn enqueued(&self) -> Vec<String> {
        self.outputs
            .iter()
            .filter_map(|o| match o {
                Output::ToCenter(ToCenter::Enqueue { queue, .. }) => Some(queue.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn left_center(&self) -> usize {
        self.outputs
            .iter()
            .filter(|o| matches!(o, Output::ToCenter(ToCenter::Leave)))
            .count()
    }

    pub fn to_agent(&self) -> usize {
        self.outputs
            .iter()
            .filter(|o| matches!(o, Output::ToAgent(_)))
            .count()
    }

    /// Share of the audio the carrier heard (from `from` on) that is the music's level.
    pub fn music_share(&self, from: usize) -> f64 {
        let tail = &self.heard[from.min(self.heard.len())..];
        if tail.is_empty() {
            return 0.0;
        }
        let music = tail
            .iter()
            .filter(|s| (i32::from(**s) - i32::from(MUSIC_LEVEL)).abs() < 200)
            .count();
        music as f64 / tail.len() as f64
    }
}
