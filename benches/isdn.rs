//! What an E1 span costs: the D-channel's signalling per call (LAPD and Q.931 at both ends of a
//! PRI, in memory: a call set up, answered and cleared), reading a SETUP, and a B-channel call's
//! media per 20 ms frame (G.711 both ways through the E1 leg, with in-band key detection).
//! Multiply the frame by 50 per second per call for a span's load.

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use trunkgate::call::leg::e1::E1Leg;
use trunkgate::call::leg::Leg;
use trunkgate::isdn::q921::link::LinkConfig;
use trunkgate::isdn::q931::control::{ControlConfig, Event, Setup, Side};
use trunkgate::isdn::q931::ie::{Law, PartyNumber};
use trunkgate::isdn::q931::message::Message;
use trunkgate::isdn::span::{Span, SpanConfig, SpanEvent};
use trunkgate::media::g711::G711Law;

fn span(side: Side) -> Span {
    Span::new(SpanConfig {
        control: ControlConfig::e1(side),
        link: LinkConfig::default(),
    })
}

/// Frames both ways until both are quiet; the network side's offered call, if one came.
fn exchange(now: Instant, user: &mut Span, network: &mut Span) -> Option<Event> {
    let mut offered = None;
    loop {
        let mut moved = false;
        while let Some(f) = user.poll_frame() {
            moved = true;
            network.handle_frame(now, &f);
        }
        while let Some(f) = network.poll_frame() {
            moved = true;
            user.handle_frame(now, &f);
        }
        while user.poll_event().is_some() {}
        while let Some(e) = network.poll_event() {
            if let SpanEvent::Call(e @ Event::Incoming(_)) = e {
                offered = Some(e);
            }
        }
        if !moved {
            return offered;
        }
    }
}

fn signalling(c: &mut Criterion) {
    let now = Instant::now();
    let mut user = span(Side::User);
    let mut network = span(Side::Network);
    user.physical_up(now);
    network.physical_up(now);
    exchange(now, &mut user, &mut network);
    let setup = Setup {
        called: PartyNumber::new("0301234567"),
        calling: Some(PartyNumber::new("4930555000")),
        display: None,
    };
    c.bench_function(
        "pri call: setup, answer, clear (lapd + q.931, both ends)",
        |b| {
            b.iter(|| {
                let call = user
                    .act(now, |c, now| c.setup(now, setup.clone()))
                    .expect("a channel is free");
                let Some(Event::Incoming(offered)) = exchange(now, &mut user, &mut network) else {
                    panic!("the call was offered")
                };
                network
                    .act(now, |c, _| c.alerting(offered.call, false))
                    .unwrap();
                network
                    .act(now, |c, now| c.connect(now, offered.call))
                    .unwrap();
                exchange(now, &mut user, &mut network);
                user.act(now, |c, now| c.hang_up(now, call, 16)).unwrap();
                exchange(now, &mut user, &mut network);
                black_box(call);
            })
        },
    );
}

fn parse(c: &mut Criterion) {
    let setup: &[u8] = &[
        0x08, 0x02, 0x00, 0x05, 0x05, 0x04, 0x03, 0x80, 0x90, 0xa3, 0x18, 0x03, 0xa9, 0x83, 0x81,
        0x6c, 0x0c, 0x21, 0x83, b'0', b'2', b'0', b'1', b'2', b'3', b'4', b'5', b'6', b'7', 0x70,
        0x08, 0x81, b'5', b'5', b'5', b'1', b'2', b'3', b'4', 0xa1,
    ];
    c.bench_function("q.931 SETUP parse", |b| {
        b.iter(|| black_box(Message::parse(black_box(setup)).unwrap()))
    });
}

fn bchannel(c: &mut Criterion) {
    let now = Instant::now();
    let mut leg = E1Leg::incoming(1, Law::ALaw);
    let pcm: Vec<i16> = (0..160)
        .map(|n| ((n as f64 * 0.3).sin() * 6000.0) as i16)
        .collect();
    let mut bytes = Vec::new();
    G711Law::Alaw.encode(&pcm, &mut bytes);
    c.bench_function(
        "e1 leg per 20 ms frame (a-law both ways, in-band dtmf detection)",
        |b| {
            b.iter(|| {
                leg.handle_audio(black_box(&bytes));
                black_box(leg.exchange(now, black_box(&pcm)));
                black_box(leg.take_audio());
            })
        },
    );
}

criterion_group!(benches, signalling, parse, bchannel);
criterion_main!(benches);
