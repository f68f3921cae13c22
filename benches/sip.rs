//! What one SIP message costs the signalling path: parsing (our codec in front of rsip) and a
//! whole INVITE → 200 → ACK → BYE call through the transaction layer and UA core.
use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use trunkgate::sip::codec;
use trunkgate::sip::peer::{Peer, Transport};
use trunkgate::sip::transaction::TimerConfig;
use trunkgate::sip::ua::{CallEvent, UserAgent};

const INVITE: &str = "INVITE sip:100@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK{N}\r\n\
Max-Forwards: 70\r\n\
From: \"Carrier\" <sip:carrier@127.0.0.1>;tag=r{N}\r\n\
To: <sip:100@127.0.0.1>\r\n\
Call-ID: bench-{N}@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:carrier@127.0.0.1:5099>\r\n\
User-Agent: bench\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {LEN}\r\n\r\n\
v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";

/// The INVITE for call `n`, with a Content-Length that matches its body.
fn invite(n: u64) -> String {
    let body_len = INVITE.split("\r\n\r\n").nth(1).unwrap().len();
    INVITE
        .replace("{N}", &n.to_string())
        .replace("{LEN}", &body_len.to_string())
}

fn in_dialog(method: &str, n: u64, tag: &str, cseq: u32) -> String {
    format!(
        "{method} sip:100@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK{method}{n}\r\n\
Max-Forwards: 70\r\nFrom: \"Carrier\" <sip:carrier@127.0.0.1>;tag=r{n}\r\nTo: <sip:100@127.0.0.1>;tag={tag}\r\n\
Call-ID: bench-{n}@127.0.0.1\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
    )
}

fn bench(c: &mut Criterion) {
    let first = invite(1);
    c.bench_function("sip parse INVITE with SDP", |b| {
        b.iter(|| codec::parse(black_box(first.as_bytes())).unwrap())
    });

    let config = trunkgate::config::embedded(std::path::Path::new(env!("CARGO_MANIFEST_DIR")))
        .expect("example config");
    let peer = Peer::new(Transport::Udp, "127.0.0.1:5099".parse().unwrap());
    let local = "127.0.0.1:5060".parse().unwrap();
    let mut ua = UserAgent::new(
        TimerConfig::default(),
        "bench".into(),
        config.trunks,
        rand::SeedableRng::seed_from_u64(1),
    );
    let mut n = 0u64;
    // Four messages in (INVITE, ACK, BYE + the parse of each), three out (100, 200, 200).
    c.bench_function(
        "sip call: INVITE/200/ACK/BYE through codec, transactions and UA",
        |b| {
            b.iter(|| {
                n += 1;
                let now = Instant::now();
                let inv = invite(n);
                ua.handle_message(now, peer, local, codec::parse(inv.as_bytes()).unwrap());
                let call = match ua.poll_event() {
                    Some(CallEvent::Incoming(incoming)) => incoming.call,
                    other => panic!("call {n}: no call but {other:?}"),
                };
                ua.answer(now, call, b"v=0\r\n".to_vec()).unwrap();
                let mut tag = String::new();
                while let Some(t) = ua.poll_transmit() {
                    let text = std::str::from_utf8(&t.payload).unwrap();
                    if text.starts_with("SIP/2.0 200") {
                        let to = text.lines().find(|l| l.starts_with("To:")).unwrap();
                        tag = to.split("tag=").nth(1).unwrap().trim().to_string();
                    }
                }
                let ack = in_dialog("ACK", n, &tag, 1);
                ua.handle_message(now, peer, local, codec::parse(ack.as_bytes()).unwrap());
                let bye = in_dialog("BYE", n, &tag, 2);
                ua.handle_message(now, peer, local, codec::parse(bye.as_bytes()).unwrap());
                while ua.poll_transmit().is_some() {}
                while ua.poll_event().is_some() {}
                // Let finished transactions' timers run out so the layer does not grow.
                ua.handle_timeout(now + std::time::Duration::from_secs(64));
            })
        },
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
