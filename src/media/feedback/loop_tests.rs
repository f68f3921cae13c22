//! The protection loop end to end, in virtual time: an Opus sender and a receiver 20 ms apart,
//! bursts of lost packets, and the receiver's feedback steering the sender.
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::media::feedback;
use crate::media::opus::tests::voice_like;
use crate::media::opus::{OpusConfig, OpusEncoder, Protection, FRAME_SAMPLES};
use crate::media::opus_rx::{OpusReceiver, FRAME_DURATION};
use crate::media::red::RED_PAYLOAD_TYPE;
use crate::media::rtp::{self, RtpSender};
use crate::media::rtp_quic::{self, FlowId, OpusRtpSender};

const ONE_WAY: Duration = Duration::from_millis(20);

/// What the receiver saw and the sender did, per packet.
struct Trace {
    red: Vec<bool>,
    span: Vec<usize>,
    /// The Opus data of each packet (the primary block of a RED one).
    primary_len: Vec<usize>,
    protection: Vec<Protection>,
    /// The receiver's concealed frames after each tick.
    concealed: Vec<u64>,
    recovered: u64,
    /// Concealed frames the sender was told of, summed over the reports it applied.
    reported_concealed: u64,
}

fn run(frames: usize, lost: impl Fn(usize) -> bool) -> Trace {
    let base = Instant::now();
    // Speech in 800 ms stretches with 200 ms pauses, in which the receiver's buffer can grow.
    let mut pcm = voice_like(frames * FRAME_SAMPLES, 3);
    for (n, frame) in pcm.chunks_exact_mut(FRAME_SAMPLES).enumerate() {
        if n % 50 >= 40 {
            frame.fill(0);
        }
    }
    let mut encoder = OpusEncoder::new(&OpusConfig::default()).unwrap();
    let mut sender = OpusRtpSender::new(FlowId::new(1).unwrap(), RtpSender::new(5, 100, 0));
    let mut receiver =
        OpusReceiver::new(Duration::from_millis(20), Duration::from_millis(300)).unwrap();
    let mut to_receiver: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut to_sender: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut trace = Trace {
        red: Vec::new(),
        span: Vec::new(),
        primary_len: Vec::new(),
        protection: Vec::new(),
        concealed: Vec::new(),
        recovered: 0,
        reported_concealed: 0,
    };
    for (n, frame) in pcm.chunks_exact(FRAME_SAMPLES).enumerate() {
        let now = base + FRAME_DURATION * n as u32;
        while let Some((_, feedback)) = to_sender.pop_front_if(|(at, _)| *at <= now) {
            let applied = sender.apply_feedback(&mut encoder, &feedback).unwrap();
            trace.reported_concealed += applied.map_or(0, |f| u64::from(f.concealed));
        }
        let mut datagram = Vec::new();
        sender
            .encode_datagram(&mut encoder, frame, &mut datagram)
            .unwrap();
        let packet = rtp_quic::parse(&datagram).unwrap().1.to_vec();
        let parsed = rtp::parse(&packet).unwrap();
        let red = parsed.header.payload_type == RED_PAYLOAD_TYPE;
        trace.red.push(red);
        trace.span.push(sender.redundancy());
        trace.protection.push(encoder.protection());
        trace.primary_len.push(if red {
            crate::media::red::parse(parsed.payload)
                .unwrap()
                .primary
                .len()
        } else {
            parsed.payload.len()
        });
        if !lost(n) {
            to_receiver.push_back((now + ONE_WAY, packet));
        }

        let tick = now + Duration::from_millis(7);
        while let Some((_, packet)) = to_receiver.pop_front_if(|(at, _)| *at <= tick) {
            receiver.push(tick, &packet).unwrap();
        }
        receiver.pull(tick);
        let mut feedback = Vec::new();
        if receiver.poll_feedback(tick, 9, &mut feedback) {
            to_sender.push_back((tick + ONE_WAY, feedback));
        }
        trace.concealed.push(receiver.stats().concealed);
    }
    trace.recovered = receiver.stats().recovered_by_redundancy;
    trace
}

#[test]
fn bursts_bring_redundancy_which_rebuilds_the_next_ones_and_lapses_when_they_stop() {
    let bursts: [std::ops::Range<usize>; 5] = [100..102, 150..154, 250..255, 350..355, 450..451];
    let trace = run(1100, |n| bursts.iter().any(|b| b.contains(&n)));

    // A new stream asks for copies at once (its first report arrives 20 ms in), as far back as
    // the buffer's starting delay holds: the first burst of two is rebuilt whole.
    assert!(
        trace.red[5..100].iter().all(|&r| r),
        "a new stream carries copies of the frames before"
    );
    assert_eq!(trace.span[99], usize::from(feedback::NEW_STREAM_SPAN));
    assert_eq!(trace.protection[99], Protection::Redundant);
    assert_eq!(trace.concealed[140], 0, "{:?}", &trace.concealed[..140]);
    // The receiver asks for more as soon as a burst outgrows the span.
    assert_eq!(trace.span[200], 4, "as long as the longest burst");
    assert_eq!(trace.span[300], usize::from(feedback::MAX_REQUESTED_SPAN));
    assert_eq!(trace.protection[300], Protection::Redundant);
    assert!(
        trace.primary_len[300] * 10 < trace.primary_len[1050] * 8,
        "while whole frames are repeated, Opus drops its own FEC and bitrate: {} bytes against {}",
        trace.primary_len[300],
        trace.primary_len[1050]
    );

    // Each burst longer than the span loses only what lies beyond it, and once the span covers
    // the bursts they are rebuilt whole: nothing more is concealed.
    assert_eq!(trace.concealed[200], 1, "{:?}", &trace.concealed[140..200]);
    assert_eq!(trace.concealed[300], 2, "{:?}", &trace.concealed[200..300]);
    assert_eq!(
        trace.concealed[300],
        trace.concealed[500],
        "{:?}",
        &trace.concealed[300..500]
    );
    assert!(trace.recovered >= 15, "recovered {}", trace.recovered);
    assert_eq!(
        trace.reported_concealed, trace.concealed[1050],
        "the sender hears of every frame its receiver concealed"
    );

    // Ten seconds after the last loss the receiver asks for nothing, and gets it.
    assert_eq!(trace.span[1000], 0);
    assert!(!trace.red[1000]);
    assert_eq!(trace.protection[1000], Protection::InBand);
}

#[test]
fn a_clean_new_stream_drops_its_copies_after_ten_seconds() {
    // Ten seconds of frames received: the pauses (a fifth of the time here) do not count.
    let trace = run(800, |_| false);
    assert!(trace.red[105] && trace.red[455], "copies in speech");
    assert_eq!(trace.span[700], 0);
    assert!(!trace.red[700..].iter().any(|&r| r), "no copies once clean");
    assert_eq!(trace.protection[799], Protection::InBand);
    assert_eq!(trace.concealed[799], 0);
}
