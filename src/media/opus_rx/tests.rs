use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use super::*;
use crate::media::opus::tests::{aligned_correlation, correlation, voice_like};
use crate::media::opus::{OpusConfig, OpusEncoder};
use crate::media::rtp::RtpSender;
use crate::media::rtp_quic::{self, FlowId, OpusRtpSender};

const TICK: Duration = FRAME_DURATION;

/// What the network does to each packet: its one-way delay, or `None` if it is lost.
struct Network {
    fate: Vec<Option<Duration>>,
}

impl Network {
    fn perfect(packets: usize, delay: Duration) -> Self {
        Self {
            fate: vec![Some(delay); packets],
        }
    }

    /// Uniform jitter in `[base, base + jitter]` and independent random loss, reproducible.
    fn random(packets: usize, base: Duration, jitter: Duration, loss: f64, seed: u64) -> Self {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let fate = (0..packets)
            .map(|_| {
                let delay = base + jitter.mul_f64(rng.gen_range(0.0..=1.0));
                (rng.gen_range(0.0..1.0) >= loss).then_some(delay)
            })
            .collect();
        Self { fate }
    }

    fn lose(mut self, index: usize) -> Self {
        self.fate[index] = None;
        self
    }

    fn lost(&self) -> impl Iterator<Item = usize> + '_ {
        self.fate
            .iter()
            .enumerate()
            .filter_map(|(i, fate)| fate.is_none().then_some(i))
    }
}

/// The agent side: RTP packets (flow id already stripped, as the shell does) with their send time.
fn agent_packets(config: &OpusConfig, pcm: &[i16]) -> Vec<Vec<u8>> {
    let mut encoder = OpusEncoder::new(config).unwrap();
    let mut sender = OpusRtpSender::new(FlowId::new(4).unwrap(), RtpSender::new(77, 65_500, 0));
    pcm.chunks_exact(FRAME_SAMPLES)
        .map(|frame| {
            let mut datagram = Vec::new();
            sender
                .encode_datagram(&mut encoder, frame, &mut datagram)
                .unwrap();
            rtp_quic::parse(&datagram).unwrap().1.to_vec()
        })
        .collect()
}

struct Run {
    output: Vec<i16>,
    /// Output blocks, one per tick, to look at 20 ms at a time.
    blocks: Vec<Vec<i16>>,
    /// Stats when the last packet's frame had played, before the stream ran dry (after which
    /// the buffer conceals ten more frames and goes idle, as it should).
    settled: OpusRxStats,
    stats: OpusRxStats,
    jitter: JitterStats,
}

/// Drives the receiver in virtual time: packet n leaves at n × 20 ms; the playout clock ticks
/// every 20 ms with an arbitrary phase, pushing whatever arrived before each tick.
fn run(packets: &[Vec<u8>], network: &Network, jitter_min_ms: u64) -> Run {
    let base = Instant::now();
    let mut arrivals: Vec<(Instant, &[u8])> = packets
        .iter()
        .zip(&network.fate)
        .enumerate()
        .filter_map(|(n, (packet, fate))| {
            fate.map(|delay| (base + TICK * n as u32 + delay, packet.as_slice()))
        })
        .collect();
    arrivals.sort_by_key(|(at, _)| *at);
    let mut receiver = OpusReceiver::new(
        Duration::from_millis(jitter_min_ms),
        Duration::from_millis(300),
    )
    .unwrap();
    let mut pending = arrivals.into_iter().peekable();
    let mut blocks = Vec::new();
    let mut settled = receiver.stats().clone();
    for tick in 0..packets.len() + 25 {
        let now = base + TICK * tick as u32 + Duration::from_millis(7);
        while let Some((_, packet)) = pending.next_if(|(at, _)| *at <= now) {
            receiver.push(now, packet).unwrap();
        }
        let live = receiver.jitter_stats().buffered_frames > 0 || pending.peek().is_some();
        let block = receiver.pull(now);
        assert_eq!(block.len(), FRAME_SAMPLES);
        blocks.push(block.to_vec());
        if live {
            settled = receiver.stats().clone();
        }
    }
    Run {
        output: blocks.concat(),
        blocks,
        settled,
        stats: receiver.stats().clone(),
        jitter: receiver.jitter_stats(),
    }
}

fn energy(samples: &[i16]) -> f64 {
    samples.iter().map(|&s| f64::from(s).powi(2)).sum()
}

/// Index of the first block that is not all zeros: where playout started.
fn first_sound(blocks: &[Vec<i16>]) -> usize {
    blocks
        .iter()
        .position(|b| b.iter().any(|&s| s != 0))
        .expect("no audio at all")
}

#[test]
fn a_clean_path_plays_every_frame_faithfully() {
    let pcm = voice_like(8000 * 3, 10);
    let packets = agent_packets(&OpusConfig::default(), &pcm);
    let clean = run(&packets, &Network::perfect(packets.len(), ms(30)), 20);
    assert_eq!(clean.stats.packets, packets.len() as u64);
    assert_eq!(clean.stats.decoded, packets.len() as u64);
    assert_eq!(clean.settled.concealed, 0);
    assert_eq!(clean.stats.lost, 0);
    let (corr, delay) = aligned_correlation(&pcm, &clean.output);
    assert!(corr > 0.9, "correlation {corr:.3} at delay {delay}");
}

#[test]
fn a_stream_that_stops_is_missed_unless_the_sender_is_on_hold() {
    let pcm = voice_like(8000, 12);
    let packets = agent_packets(&OpusConfig::default(), &pcm);
    let base = Instant::now();
    let run = |held: bool| {
        let mut receiver = OpusReceiver::new(ms(20), ms(200)).unwrap();
        for (n, packet) in packets.iter().enumerate() {
            let now = base + TICK * n as u32;
            receiver.push(now, packet).unwrap();
            receiver.pull(now);
        }
        receiver.set_held(held);
        // The sender goes quiet: the buffer drains, conceals and stops.
        for n in packets.len()..packets.len() + 30 {
            receiver.pull(base + TICK * n as u32);
        }
        let mut report = Vec::new();
        assert!(receiver.poll_feedback(base + ms(5_000), 1, &mut report));
        let reported = crate::media::feedback::Feedback::parse(&report)
            .unwrap()
            .unwrap()
            .concealed;
        (receiver.stats().clone(), reported)
    };
    let (dropped, reported) = run(false);
    assert_eq!(
        dropped.concealed,
        u64::from(crate::media::jitter::STOP_AFTER_UNDERRUNS)
    );
    assert_eq!(dropped.missed, dropped.concealed);
    assert_eq!(
        u64::from(reported),
        dropped.missed,
        "reported to the sender"
    );
    let (held, reported) = run(true);
    assert_eq!(held.concealed, dropped.concealed);
    assert_eq!(
        (held.missed, reported),
        (0, 0),
        "on hold nothing was missed"
    );
}

#[test]
fn nothing_received_plays_silence() {
    let mut receiver = OpusReceiver::new(ms(20), ms(200)).unwrap();
    let now = Instant::now();
    assert_eq!(receiver.pull(now), &[0; FRAME_SAMPLES][..]);
    assert_eq!(receiver.stats().idle, 1);
}

#[test]
fn a_lost_packet_is_rebuilt_from_the_next_ones_fec() {
    let pcm = voice_like(8000 * 2, 11);
    let packets = agent_packets(&OpusConfig::default(), &pcm);
    // A frame whose successor carries FEC (most do, see the opus tests).
    let payload = |n: usize| rtp::parse(&packets[n]).unwrap().payload;
    let lost = (40..).find(|&n| packet_has_fec(payload(n + 1))).unwrap();
    let network = Network::perfect(packets.len(), ms(30));
    let clean = run(&packets, &network, 40);
    let lossy = run(&packets, &network.lose(lost), 40);
    assert_eq!(lossy.stats.recovered_by_fec, 1);
    assert_eq!(lossy.settled.concealed, 0);
    assert_eq!(lossy.stats.lost, 1);
    // Same timing in both runs, so block k of one is block k of the other.
    let start = first_sound(&clean.blocks);
    assert_eq!(start, first_sound(&lossy.blocks));
    let k = start + lost;
    let rebuilt = correlation(&clean.blocks[k], &lossy.blocks[k]);
    assert!(rebuilt > 0.7, "rebuilt frame correlates {rebuilt:.3}");
}

#[test]
fn fec_repairs_random_loss_better_than_concealment_alone() {
    let pcm = voice_like(8000 * 10, 12);
    let frames = pcm.len() / FRAME_SAMPLES;
    let network = Network::random(frames, ms(30), ms(0), 0.10, 99);
    let lost: Vec<usize> = network.lost().collect();
    assert!(
        lost.len() > frames / 20,
        "the pattern should lose about 10 %"
    );

    // For each setting: how far the lossy output falls from that setting's own lossless
    // output, in the blocks that were lost. Both runs see the same losses at the same times.
    let gap = |fec: bool| {
        let config = OpusConfig {
            fec,
            expected_loss_pct: 10,
            ..OpusConfig::default()
        };
        let packets = agent_packets(&config, &pcm);
        // The floor at the starting delay: the buffer then never shortens, and both runs'
        // blocks stay aligned for the comparison.
        let floor = INITIAL_DELAY.as_millis() as u64;
        let clean = run(&packets, &Network::perfect(frames, ms(30)), floor);
        let lossy = run(&packets, &network, floor);
        let start = first_sound(&clean.blocks);
        let (mut error, mut reference, mut holes) = (0.0, 0.0, 0);
        for &n in &lost {
            let (want, got) = (&clean.blocks[start + n], &lossy.blocks[start + n]);
            let diff: Vec<i16> = want.iter().zip(got).map(|(a, b)| a - b).collect();
            error += energy(&diff);
            reference += energy(want);
            // A hole: the block lost more than half its energy.
            holes += usize::from(energy(got) < 0.5 * energy(want));
        }
        (lossy.stats, error / reference, holes)
    };
    let (with_fec, error_with, holes_with) = gap(true);
    let (without_fec, error_without, holes_without) = gap(false);
    assert_eq!(with_fec.lost, lost.len() as u64);
    assert_eq!(without_fec.recovered_by_fec, 0);
    // Not all: when two packets in a row are lost, or the next one carries no FEC copy
    // (SILK sends none after frames it judged inactive), only concealment is left.
    assert!(
        with_fec.recovered_by_fec > lost.len() as u64 / 2,
        "{} of {} lost frames recovered",
        with_fec.recovered_by_fec,
        lost.len()
    );
    assert!(
        error_with < error_without * 0.5,
        "relative error with fec {error_with:.3}, without {error_without:.3}"
    );
    assert!(
        holes_with * 2 < holes_without,
        "holes with fec {holes_with}, without {holes_without}"
    );
}

#[test]
fn reordered_packets_play_as_if_in_order() {
    let pcm = voice_like(8000 * 2, 13);
    let packets = agent_packets(&OpusConfig::default(), &pcm);
    let in_order = Network::perfect(packets.len(), ms(30));
    // Every tenth packet overtakes its predecessor by 10 ms.
    let mut swapped = Network::perfect(packets.len(), ms(30));
    for n in (10..packets.len()).step_by(10) {
        swapped.fate[n - 1] = Some(ms(60));
    }
    let straight = run(&packets, &in_order, 40);
    let shuffled = run(&packets, &swapped, 40);
    assert_eq!(shuffled.jitter.reordered, 9, "{:?}", shuffled.jitter);
    assert_eq!(shuffled.settled.concealed, 0);
    assert_eq!(shuffled.stats.decoded, packets.len() as u64);
    // The buffer may settle at a different delay, so compare the audio, not the block index.
    let (corr, _) = aligned_correlation(&straight.output, &shuffled.output);
    assert!(corr > 0.999, "{corr}");
}

#[test]
fn three_percent_loss_with_30_ms_jitter_leaves_no_silent_blocks() {
    let pcm = voice_like(8000 * 10, 14);
    let frames = pcm.len() / FRAME_SAMPLES;
    let packets = agent_packets(&OpusConfig::default(), &pcm);
    let network = Network::random(frames, ms(40), ms(30), 0.03, 7);
    let result = run(&packets, &network, 20);
    assert!(result.stats.lost + result.stats.late > 0);
    let first = first_sound(&result.blocks);
    assert!(first <= 10, "playout started only after {first} ticks");
    // Silence only before playout started, never during the stream.
    assert_eq!(result.settled.idle as usize, first);
    // The decoder fades in over its first frames, and so does the first syllable.
    let start = first + 5;
    let signal_energy = energy(&pcm) / frames as f64;
    // Until the last packet has been played; after that the stream really ends.
    let end = start + frames - 5;
    for (k, block) in result.blocks[start..end].iter().enumerate() {
        // The source's quietest blocks (between syllables) hold about 3 % of the average
        // energy; a zero-filled or faded-out block falls far below 1 %.
        assert!(
            energy(block) > 0.01 * signal_energy,
            "block {k} after the start is near silent: {:?} {:?}",
            result.stats,
            result.jitter
        );
    }
}

#[test]
fn garbage_and_foreign_payload_types_are_counted_not_played() {
    let mut receiver = OpusReceiver::new(ms(20), ms(200)).unwrap();
    let now = Instant::now();
    assert!(matches!(
        receiver.push(now, &[1, 2, 3]),
        Err(OpusRxError::Rtp(_))
    ));
    let mut pcmu = Vec::new();
    rtp::write(
        &rtp::RtpHeader::new(0, 1, 0, 5, false),
        &[0xff; 160],
        &mut pcmu,
    );
    assert_eq!(
        receiver.push(now, &pcmu),
        Err(OpusRxError::PayloadType { payload_type: 0 })
    );
    assert_eq!(receiver.stats().invalid, 2);
    assert_eq!(receiver.stats().packets, 0);
    // An Opus packet type with an undecodable payload is concealed, not played as noise.
    let mut bad = Vec::new();
    rtp::write(
        &rtp::RtpHeader::new(OPUS_PAYLOAD_TYPE, 1, 0, 5, false),
        &[0x03, 0x00],
        &mut bad,
    );
    receiver.push(now, &bad).unwrap();
    assert_eq!(receiver.pull(now + INITIAL_DELAY).len(), FRAME_SAMPLES);
    assert_eq!(receiver.stats().undecodable, 1);
}

#[test]
fn a_new_ssrc_starts_a_new_stream() {
    let pcm = voice_like(8000, 15);
    let packets = agent_packets(&OpusConfig::default(), &pcm);
    let mut receiver = OpusReceiver::new(ms(20), ms(200)).unwrap();
    let base = Instant::now();
    let mut now = base;
    for packet in &packets[..20] {
        receiver.push(now, packet).unwrap();
        receiver.pull(now);
        now += TICK;
    }
    // The agent restarts its stream: new SSRC, unrelated numbering.
    for (n, packet) in packets[20..].iter().enumerate() {
        let mut restarted = packet.clone();
        restarted[2..4].copy_from_slice(&(n as u16 + 3000).to_be_bytes());
        restarted[8..12].copy_from_slice(&0xdead_beef_u32.to_be_bytes());
        receiver.push(now, &restarted).unwrap();
        receiver.pull(now);
        now += TICK;
    }
    // The new stream starts at the initial delay: what it buffered plays out after that.
    for _ in 0..INITIAL_DELAY.as_millis() / TICK.as_millis() + 3 {
        receiver.pull(now);
        now += TICK;
    }
    let stats = receiver.stats();
    assert_eq!(stats.ssrc_changes, 1);
    // The old stream's frames still waiting at the switch (its starting delay's worth) go
    // with it; everything else plays.
    let waiting = (INITIAL_DELAY.as_millis() / TICK.as_millis()) as u64;
    assert!(
        stats.decoded >= packets.len() as u64 - waiting - 1,
        "{stats:?}"
    );
}

#[test]
fn packets_after_their_turn_are_counted_late() {
    let pcm = voice_like(8000, 16);
    let packets = agent_packets(&OpusConfig::default(), &pcm);
    let mut network = Network::perfect(packets.len(), ms(30));
    network.fate[25] = Some(ms(400));
    let result = run(&packets, &network, 20);
    assert_eq!(result.stats.late, 1);
    assert_eq!(result.stats.lost, 1);
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}
