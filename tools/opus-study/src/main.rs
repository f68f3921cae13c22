//! opus-study: offline comparison of libopus 1.3.1 and 1.6.1 (deep PLC, DRED) for the agent
//! link, under packet loss, as the caller hears it (8 kHz after a µ-law round trip).
//!
//! One binary per backend (see ffi.rs). Subcommands:
//!   info                       library version and build features
//!   quality AUDIO_DIR OUT_DIR  encode, lose, receive, write µ-law'd 8 kHz WAVs + manifest.tsv
//!   bench AUDIO_DIR REPS       CPU per 20 ms frame (encode, decode, conceal, FEC, DRED)
//!   hashes AUDIO_DIR           digest of packets and clean decode per config (build checks)
//!   traces N                   loss statistics of the traces for N frames

mod audio;
mod codec;
mod ffi;
mod traces;

use codec::{Dec, Enc, EncSettings};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;
use traces::{Condition, CONDITIONS, SEEDS};

const OUT_FS: i32 = 8000;
const OUT_FRAME: usize = 160;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Lib {
    V13,
    /// libopus 1.6.1 as `opus` 0.4 / opusic-sys builds it by default (no DNN code).
    V16,
    /// libopus 1.6.1 with OPUS_DRED + OPUS_OSCE (deep PLC, DRED, LACE/NoLACE compiled in).
    V16Dnn,
}

#[cfg(feature = "dnn")]
const BUILD_LIB: Lib = Lib::V16Dnn;
#[cfg(all(feature = "lib16", not(feature = "dnn")))]
const BUILD_LIB: Lib = Lib::V16;
#[cfg(not(feature = "lib16"))]
const BUILD_LIB: Lib = Lib::V13;

fn build_tag() -> &'static str {
    match BUILD_LIB {
        Lib::V13 => "v13",
        Lib::V16 => "v16",
        Lib::V16Dnn => "v16dnn",
    }
}

#[derive(Clone, Debug)]
struct Config {
    id: String,
    lib: Lib,
    enc: EncSettings,
    dec_complexity: i32,
}

/// 1.6 configurations that need the DNN code (deep PLC, DRED, OSCE) run on the DNN build; the
/// rest on the default build, because compiling deep PLC in changes classic WB concealment too
/// (silk/PLC.c skips its fade-in glue for 16 kHz SILK), even at decoder complexity 0.
fn cfg(id: &str, lib: Lib, fs: i32, kbps: i32, fec: bool, dred_ms: i32, dec_cx: i32) -> Config {
    let lib = if lib == Lib::V16 && (dred_ms > 0 || dec_cx >= 5) { Lib::V16Dnn } else { lib };
    Config {
        id: id.to_string(),
        lib,
        enc: EncSettings {
            fs,
            bitrate: kbps * 1000,
            complexity: 0,
            fec,
            loss_perc: 10,
            dred_10ms: dred_ms / 10,
        },
        dec_complexity: dec_cx,
    }
}

fn with_cx(mut c: Config, cx: i32) -> Config {
    c.enc.complexity = cx;
    c
}

/// The study's configurations. VBR (libopus default, constrained), signal voice, max
/// bandwidth NB or WB, packet-loss-perc 10, 20 ms frames, decoded at 8 kHz. Names: input,
/// kbit/s, encoder complexity, protection, decoder (plc = classic, dplc = decoder complexity 5,
/// nolace = 7).
fn configs() -> Vec<Config> {
    use Lib::*;
    vec![
        // Today: libopus 1.3.1. At 24 kbit/s and complexity 0 libopus turns LBRR off (its FEC
        // rate threshold); the cx1 and 32 kbit/s rows are what FEC actually buys.
        cfg("nb24-cx0-fec-v13", V13, 8000, 24, true, 0, 0),
        with_cx(cfg("nb24-cx1-fec-v13", V13, 8000, 24, true, 0, 0), 1),
        cfg("nb32-cx0-fec-v13", V13, 8000, 32, true, 0, 0),
        // libopus 1.6.1, narrowband.
        cfg("nb24-cx0-fec-plc", V16, 8000, 24, true, 0, 0),
        cfg("nb24-cx0-fec-dplc", V16, 8000, 24, true, 0, 5),
        with_cx(cfg("nb24-cx1-fec-plc", V16, 8000, 24, true, 0, 0), 1),
        cfg("nb32-cx0-fec-plc", V16, 8000, 32, true, 0, 0),
        with_cx(cfg("nb24-cx1-fec-dplc", V16, 8000, 24, true, 0, 5), 1),
        cfg("nb24-cx0-dred100-dplc", V16, 8000, 24, false, 100, 5),
        // Wideband input, complexity 0 (as today's encoder).
        cfg("wb24-cx0-fec-plc", V16, 16000, 24, true, 0, 0),
        cfg("wb32-cx0-fec-plc", V16, 16000, 32, true, 0, 0),
        cfg("wb24-cx0-fec-dplc", V16, 16000, 24, true, 0, 5),
        cfg("wb32-cx0-fec-dplc", V16, 16000, 32, true, 0, 5),
        // Wideband input, complexity 5 (SILK WB needs it; see the clean grid).
        with_cx(cfg("wb24-cx5-fec-plc", V16, 16000, 24, true, 0, 0), 5),
        with_cx(cfg("wb32-cx5-fec-plc", V16, 16000, 32, true, 0, 0), 5),
        with_cx(cfg("wb24-cx5-fec-dplc", V16, 16000, 24, true, 0, 5), 5),
        with_cx(cfg("wb32-cx5-fec-dplc", V16, 16000, 32, true, 0, 5), 5),
        with_cx(cfg("wb24-cx5-nofec-dplc", V16, 16000, 24, false, 0, 5), 5),
        // DRED (FEC off: with FEC on libopus gives DRED almost no bits at these rates).
        cfg("wb32-cx0-dred200", V16, 16000, 32, false, 200, 5),
        with_cx(cfg("wb24-cx5-dred100", V16, 16000, 24, false, 100, 5), 5),
        with_cx(cfg("wb24-cx5-dred200", V16, 16000, 24, false, 200, 5), 5),
        with_cx(cfg("wb32-cx5-dred100", V16, 16000, 32, false, 100, 5), 5),
        with_cx(cfg("wb32-cx5-dred200", V16, 16000, 32, false, 200, 5), 5),
        with_cx(cfg("wb32-cx5-fec+dred200", V16, 16000, 32, true, 200, 5), 5),
        with_cx(cfg("wb32-cx5-dred200-nolace", V16, 16000, 32, false, 200, 7), 5),
    ]
}

/// Receiver models: how far ahead of playout packets are known. `None`: the brief's model
/// (the first packet after a gap is there in time for every frame of the gap); `Some(d)`: a
/// jitter buffer `d` frames deep, so only the last `d` frames of a gap can use it.
fn receivers(c: &Config) -> Vec<Option<usize>> {
    if c.enc.dred_10ms > 0 {
        vec![None, Some(2), Some(5)]
    } else {
        vec![None]
    }
}

fn rx_name(r: Option<usize>) -> String {
    match r {
        None => "oracle".into(),
        Some(d) => format!("jb{}ms", d * 20),
    }
}

struct Input {
    nb: Vec<i16>,
    wb: Vec<i16>,
}

fn load(dir: &Path) -> Input {
    let (r8, nb) = audio::read_wav(&dir.join("ref8k.wav"));
    let (r16, wb) = audio::read_wav(&dir.join("in16k.wav"));
    assert!(r8 == 8000 && r16 == 16000, "rates {r8} {r16}");
    Input { nb, wb }
}

struct Encoded {
    packets: Vec<Vec<u8>>,
    /// Decoder output lag at 8 kHz, from the encoder's lookahead.
    delay: usize,
    /// Samples of the 8 kHz reference.
    len: usize,
}

fn encode_all(c: &Config, input: &Input) -> Encoded {
    let mut enc = Enc::new(&c.enc);
    let pcm = if c.enc.fs == 8000 { &input.nb } else { &input.wb };
    let ratio = (c.enc.fs / OUT_FS) as usize;
    let delay = enc.lookahead() as usize / ratio;
    let frame = enc.frame;
    let needed = input.nb.len() + delay;
    let frames = needed.div_ceil(OUT_FRAME);
    let mut padded = pcm.clone();
    padded.resize(frames * frame, 0);
    let packets = padded.chunks_exact(frame).map(|f| enc.encode(f)).collect();
    Encoded { packets, delay, len: input.nb.len() }
}

#[derive(Default, Clone, Copy)]
struct Counts {
    normal: usize,
    fec: usize,
    dred: usize,
    plc: usize,
}

/// Nanoseconds per kind of work, and how often it happened.
#[derive(Default, Clone, Copy)]
struct Timing {
    normal: (u128, usize),
    fec: (u128, usize),
    plc: (u128, usize),
    dred_parse: (u128, usize),
    dred_process: (u128, usize),
    dred_decode: (u128, usize),
}

fn timed<R>(on: bool, slot: &mut (u128, usize), f: impl FnOnce() -> R) -> R {
    if on {
        let t = Instant::now();
        let r = f();
        slot.0 += t.elapsed().as_nanos();
        slot.1 += 1;
        r
    } else {
        f()
    }
}

/// The receiver: plays every 20 ms slot in order, sample-aligned. A lost frame is rebuilt from
/// the next packet's LBRR if that packet arrived (and is visible); from DRED only in the first
/// packet that arrives after the gap, as far back as it reaches; else concealed.
fn receive(
    c: &Config,
    e: &Encoded,
    lost: &[bool],
    lookahead: Option<usize>,
    timing: Option<&mut Timing>,
) -> (Vec<i16>, Counts) {
    let on = timing.is_some();
    let mut tm = Timing::default();
    let mut dec = Dec::new(OUT_FS, c.dec_complexity);
    let use_dred = c.enc.dred_10ms > 0;
    #[cfg(feature = "lib16")]
    let mut dred = if use_dred { Some(codec::Dred::new()) } else { None };
    #[cfg(not(feature = "lib16"))]
    assert!(!use_dred);
    #[allow(unused_mut)]
    let mut parsed_for: Option<usize> = None;
    #[allow(unused_mut)]
    let mut avail: i32 = 0;
    let n = e.packets.len();
    let mut out = Vec::with_capacity(n * OUT_FRAME);
    let mut frame = [0i16; OUT_FRAME];
    let mut k = Counts::default();
    for i in 0..n {
        if !lost[i] {
            timed(on, &mut tm.normal, || dec.decode(&e.packets[i], &mut frame));
            k.normal += 1;
            out.extend_from_slice(&frame);
            continue;
        }
        let mut done = false;
        if let Some(next) = (i + 1..n).find(|&j| !lost[j]) {
            let back = next - i; // frames between this slot and the packet that arrived
            let visible = lookahead.is_none_or(|d| back <= d);
            let pkt = &e.packets[next];
            if visible && back == 1 && c.enc.fec && codec::has_lbrr(pkt) {
                timed(on, &mut tm.fec, || dec.decode_fec(pkt, &mut frame));
                k.fec += 1;
                done = true;
            } else if visible && use_dred {
                #[cfg(feature = "lib16")]
                {
                    let d = dred.as_mut().unwrap();
                    if parsed_for != Some(next) {
                        // Parse once per gap, only as deep as this gap needs. The first DRED
                        // latent starts up to ~25 ms late (libopus's dred_offset), so asking for
                        // exactly the gap yields less than the gap: ask for 60 ms more.
                        let need = ((back + 3) * OUT_FRAME) as i32;
                        avail = timed(on, &mut tm.dred_parse, || d.parse(pkt, need, OUT_FS));
                        if std::env::var("OPUS_STUDY_DEBUG").is_ok() {
                            eprintln!("slot {i} next {next} back {back} need {need} avail {avail}");
                        }
                        if avail > 0 {
                            timed(on, &mut tm.dred_process, || d.process());
                        }
                        parsed_for = Some(next);
                    }
                    let offset = (back * OUT_FRAME) as i32;
                    if offset <= avail {
                        timed(on, &mut tm.dred_decode, || d.decode(&mut dec, offset, &mut frame));
                        k.dred += 1;
                        done = true;
                    }
                }
            }
        }
        let _ = (parsed_for, avail);
        if !done {
            timed(on, &mut tm.plc, || dec.conceal(&mut frame));
            k.plc += 1;
        }
        out.extend_from_slice(&frame);
    }
    if let Some(t) = timing {
        *t = add_timing(*t, tm);
    }
    let mut aligned: Vec<i16> = out.into_iter().skip(e.delay).take(e.len).collect();
    aligned.resize(e.len, 0);
    (aligned, k)
}

fn add_timing(a: Timing, b: Timing) -> Timing {
    let f = |x: (u128, usize), y: (u128, usize)| (x.0 + y.0, x.1 + y.1);
    Timing {
        normal: f(a.normal, b.normal),
        fec: f(a.fec, b.fec),
        plc: f(a.plc, b.plc),
        dred_parse: f(a.dred_parse, b.dred_parse),
        dred_process: f(a.dred_process, b.dred_process),
        dred_decode: f(a.dred_decode, b.dred_decode),
    }
}

/// Lag (samples) maximising the correlation of `y` against `x` within ±`max`.
fn best_lag(x: &[i16], y: &[i16], max: i64) -> (i64, f64) {
    let mut best = (0, f64::MIN);
    let ex: f64 = x.iter().map(|&v| (v as f64).powi(2)).sum();
    let ey: f64 = y.iter().map(|&v| (v as f64).powi(2)).sum();
    for lag in -max..=max {
        let mut s = 0f64;
        for (i, &a) in x.iter().enumerate() {
            let j = i as i64 + lag;
            if j >= 0 && (j as usize) < y.len() {
                s += a as f64 * y[j as usize] as f64;
            }
        }
        let r = s / (ex * ey).sqrt().max(1.0);
        if r > best.1 {
            best = (lag, r);
        }
    }
    best
}

struct PacketStats {
    mean_bytes: f64,
    mean_frame_bytes: f64,
    mean_extra_bytes: f64,
    lbrr_share: f64,
    dred_share: f64,
    dred_mean_ms: f64,
}

fn packet_stats(c: &Config, e: &Encoded) -> PacketStats {
    let n = e.packets.len() as f64;
    let mut bytes = 0usize;
    let mut frame_bytes = 0usize;
    let mut extra = 0usize;
    let mut lbrr = 0usize;
    #[allow(unused_mut)]
    let mut dred_n = 0usize;
    #[allow(unused_mut)]
    let mut dred_ms = 0f64;
    #[cfg(feature = "lib16")]
    let mut dred = if c.enc.dred_10ms > 0 { Some(codec::Dred::new()) } else { None };
    #[cfg(not(feature = "lib16"))]
    let _ = c;
    for p in &e.packets {
        let (_, sizes, x) = codec::parse(p);
        bytes += p.len();
        frame_bytes += sizes[0] as usize;
        extra += x;
        lbrr += codec::has_lbrr(p) as usize;
        #[cfg(feature = "lib16")]
        if let Some(d) = dred.as_mut() {
            let a = d.parse(p, OUT_FS, OUT_FS); // ask for up to 1 s
            if a > 0 {
                dred_n += 1;
                dred_ms += a as f64 / OUT_FS as f64 * 1000.0;
            }
        }
    }
    PacketStats {
        mean_bytes: bytes as f64 / n,
        mean_frame_bytes: frame_bytes as f64 / n,
        mean_extra_bytes: extra as f64 / n,
        lbrr_share: lbrr as f64 / n,
        dred_share: dred_n as f64 / n,
        dred_mean_ms: if dred_n > 0 { dred_ms / dred_n as f64 } else { 0.0 },
    }
}

fn selected(filter: &Option<String>) -> Vec<Config> {
    configs()
        .into_iter()
        .filter(|c| c.lib == BUILD_LIB)
        .filter(|c| filter.as_ref().is_none_or(|f| f.split(',').any(|x| x == c.id)))
        .collect()
}

fn lib_name() -> String {
    format!(
        "{} [{}]",
        ffi::backend_version(),
        if cfg!(feature = "dnn") { "DRED+deep PLC+OSCE compiled in" } else { "no DNN" }
    )
}

fn cmd_quality(audio_dir: &Path, out_dir: &Path, filter: Option<String>) {
    let input = load(audio_dir);
    std::fs::create_dir_all(out_dir).unwrap();
    let mut manifest = String::new();
    let mut summary = String::new();
    for c in selected(&filter) {
        let t0 = Instant::now();
        let e = encode_all(&c, &input);
        let ps = packet_stats(&c, &e);
        // Alignment check on the clean decode.
        let (clean, _) = receive(&c, &e, &vec![false; e.packets.len()], None, None);
        let mid = input.nb.len() / 3;
        let (lag, r) = best_lag(&input.nb[mid..mid + 16000], &clean[mid..mid + 16000], 40);
        writeln!(
            summary,
            "{}\t{}\t{}\t{}\t{}\t{}\t{:.2}\t{:.2}\t{:.2}\t{:.3}\t{:.3}\t{:.1}\t{}\t{:.3}",
            c.id,
            lib_name(),
            c.enc.fs,
            c.enc.bitrate,
            c.enc.complexity,
            c.dec_complexity,
            ps.mean_bytes,
            ps.mean_frame_bytes,
            ps.mean_extra_bytes,
            ps.lbrr_share,
            ps.dred_share,
            ps.dred_mean_ms,
            lag,
            r
        )
        .unwrap();
        for rx in receivers(&c) {
            let dir = out_dir.join(&c.id).join(rx_name(rx));
            std::fs::create_dir_all(&dir).unwrap();
            for cond in CONDITIONS {
                let seeds: &[u64] = if cond == Condition::None { &SEEDS[..1] } else { &SEEDS };
                if cond == Condition::None && rx.is_some() {
                    continue; // identical to the oracle receiver
                }
                for &seed in seeds {
                    let lost = traces::trace(cond, seed, e.packets.len());
                    let (mut pcm, k) = receive(&c, &e, &lost, rx, None);
                    audio::ulaw_round_trip(&mut pcm);
                    let path = dir.join(format!("{}-s{}.wav", cond.name(), seed));
                    audio::write_wav(&path, OUT_FS as u32, &pcm);
                    let (lf, _, _) = traces::describe(&lost);
                    writeln!(
                        manifest,
                        "{}\t{}\t{}\t{}\t{:.4}\t{}\t{}\t{}\t{}\t{}",
                        c.id,
                        rx_name(rx),
                        cond.name(),
                        seed,
                        lf,
                        k.normal,
                        k.fec,
                        k.dred,
                        k.plc,
                        path.display()
                    )
                    .unwrap();
                }
            }
        }
        eprintln!("  {}: {:.1} s", c.id, t0.elapsed().as_secs_f64());
    }
    let tag = build_tag();
    std::fs::write(out_dir.join(format!("manifest-{tag}.tsv")), manifest).unwrap();
    std::fs::write(out_dir.join(format!("configs-{tag}.tsv")), summary).unwrap();
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim().to_string()
}

/// Per-thread CPU time, to see whether the wall-clock numbers were disturbed.
fn thread_cpu_ns() -> u128 {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clk: i32, ts: *mut Timespec) -> i32;
    }
    let mut ts = Timespec { sec: 0, nsec: 0 };
    unsafe { clock_gettime(3, &mut ts) }; // CLOCK_THREAD_CPUTIME_ID
    ts.sec as u128 * 1_000_000_000 + ts.nsec as u128
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn us(slot: (u128, usize)) -> String {
    if slot.1 == 0 {
        "-".into()
    } else {
        format!("{:.1}", slot.0 as f64 / slot.1 as f64 / 1000.0)
    }
}

/// Encode time per frame: median over `reps` passes over the whole input; also CPU/wall.
fn bench_encode(c: &Config, input: &Input, reps: usize) -> (f64, f64) {
    let pcm = if c.enc.fs == 8000 { &input.nb } else { &input.wb };
    let mut per = Vec::new();
    let mut ratio = Vec::new();
    for _ in 0..reps {
        let mut enc = Enc::new(&c.enc);
        let frames: Vec<&[i16]> = pcm.chunks_exact(enc.frame).collect();
        let c0 = thread_cpu_ns();
        let t0 = Instant::now();
        let mut sink = 0usize;
        for f in &frames {
            sink += enc.encode_in_place(f);
        }
        let wall = t0.elapsed().as_nanos() as f64;
        let cpu = (thread_cpu_ns() - c0) as f64;
        std::hint::black_box(sink);
        per.push(wall / frames.len() as f64 / 1000.0);
        ratio.push(cpu / wall);
    }
    (median(per), median(ratio))
}

fn cmd_bench(audio_dir: &Path, reps: usize, filter: Option<String>) {
    let input = load(audio_dir);
    println!("# {} | loadavg at start: {}", lib_name(), loadavg());
    println!("config\tenc_cx\tdec_cx\tenc_us\tcpu/wall\tdec_us\tplc_us\tfec_us\tdred_parse_us\tdred_process_us\tdred_decode_us\tdred_parses\tdred_frames\tdred_us_per_recovered_frame");
    for c in selected(&filter) {
        let (enc_us, ratio) = bench_encode(&c, &input, reps);
        let e = encode_all(&c, &input);
        // Normal decode: no loss, `reps` passes.
        let mut clean = Timing::default();
        for _ in 0..reps {
            let mut t = Timing::default();
            receive(&c, &e, &vec![false; e.packets.len()], None, Some(&mut t));
            clean = add_timing(clean, t);
        }
        // Concealment, FEC and DRED: over the lossy traces, all seeds (brief's receiver).
        let mut lossy = Timing::default();
        for cond in CONDITIONS.iter().filter(|c| **c != Condition::None) {
            for &seed in &SEEDS {
                let lost = traces::trace(*cond, seed, e.packets.len());
                let mut t = Timing::default();
                receive(&c, &e, &lost, None, Some(&mut t));
                lossy = add_timing(lossy, t);
            }
        }
        let per_rec = if lossy.dred_decode.1 > 0 {
            format!(
                "{:.1}",
                (lossy.dred_parse.0 + lossy.dred_process.0 + lossy.dred_decode.0) as f64
                    / lossy.dred_decode.1 as f64
                    / 1000.0
            )
        } else {
            "-".into()
        };
        println!(
            "{}\t{}\t{}\t{:.1}\t{:.2}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            c.id,
            c.enc.complexity,
            c.dec_complexity,
            enc_us,
            ratio,
            us(clean.normal),
            us(lossy.plc),
            us(lossy.fec),
            us(lossy.dred_parse),
            us(lossy.dred_process),
            us(lossy.dred_decode),
            lossy.dred_parse.1,
            lossy.dred_decode.1,
            per_rec
        );
    }
    // Encoder complexity sweep (encode only): what DRED and the move to WB cost at each level.
    println!("# encoder complexity sweep (µs per 20 ms frame, median of {reps} passes)");
    println!("config\tcx0\tcx1\tcx5\tcx10");
    for c in selected(&filter) {
        if !["nb24-cx0-fec-v13", "nb24-cx0-fec-plc", "wb24-cx0-fec-plc", "wb32-cx5-dred200"]
            .contains(&c.id.as_str())
        {
            continue;
        }
        let mut line = c.id.clone();
        for cx in [0, 1, 5, 10] {
            let mut cc = c.clone();
            cc.enc.complexity = cx;
            let (t, _) = bench_encode(&cc, &input, reps);
            write!(line, "\t{t:.1}").unwrap();
        }
        println!("{line}");
    }
    println!("# loadavg at end: {}", loadavg());
}

/// DRED presence and bytes by encoder complexity (does DRED need a minimum complexity?).
fn cmd_dredcx(audio_dir: &Path) {
    let input = load(audio_dir);
    println!("config\tenc_cx\tmean_bytes\tdred_share\tdred_mean_ms");
    for c in selected(&Some("wb24-cx5-dred200,wb32-cx5-dred100,wb32-cx5-dred200".into())) {
        for cx in [0, 1, 2, 5, 10] {
            let mut cc = c.clone();
            cc.enc.complexity = cx;
            let e = encode_all(&cc, &input);
            let ps = packet_stats(&cc, &e);
            println!("{}\t{}\t{:.2}\t{:.3}\t{:.1}", c.id, cx, ps.mean_bytes, ps.dred_share, ps.dred_mean_ms);
        }
    }
}

/// Clean-channel grid: rate, bitrate, encoder complexity, FEC → LBRR share, bytes, and a
/// µ-law'd 8 kHz decode for PESQ (what each setting costs before any loss).
fn cmd_grid(audio_dir: &Path, out_dir: &Path) {
    let input = load(audio_dir);
    std::fs::create_dir_all(out_dir).unwrap();
    let mut manifest = String::new();
    for fs in [8000, 16000] {
        for kbps in [16, 24, 32, 40, 48] {
            for cx in [0, 1, 5, 10] {
                for fec in [true, false] {
                    let mut c = cfg("grid", BUILD_LIB, fs, kbps, fec, 0, 0);
                    c.lib = BUILD_LIB;
                    c.enc.complexity = cx;
                    let e = encode_all(&c, &input);
                    let ps = packet_stats(&c, &e);
                    let (mut pcm, _) = receive(&c, &e, &vec![false; e.packets.len()], None, None);
                    audio::ulaw_round_trip(&mut pcm);
                    let name = format!("{}-fs{}-{}k-cx{}-fec{}", build_tag(), fs, kbps, cx, fec as u8);
                    let path = out_dir.join(format!("{name}.wav"));
                    audio::write_wav(&path, OUT_FS as u32, &pcm);
                    writeln!(manifest, "{}\t{}\t{}\t{}\t{}\t{:.2}\t{:.3}\t{}", lib_name(), fs, kbps, cx, fec as u8, ps.mean_bytes, ps.lbrr_share, path.display()).unwrap();
                }
            }
        }
    }
    let tag = build_tag();
    std::fs::write(out_dir.join(format!("grid-{tag}.tsv")), manifest).unwrap();
}

fn fnv(h: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *h ^= b as u64;
        *h = h.wrapping_mul(0x100_0000_01B3);
    }
}

/// Packet and lossy-decode digests of the classic (no-DNN) 1.6 configurations, run on whichever
/// 1.6 build this is: shows what compiling the DNN code in changes.
fn cmd_hashes(audio_dir: &Path) {
    let input = load(audio_dir);
    println!("# {}", lib_name());
    let all = configs();
    let mine: Vec<Config> = if BUILD_LIB == Lib::V13 {
        all.into_iter().filter(|c| c.lib == Lib::V13).collect()
    } else {
        all.into_iter().filter(|c| c.lib == Lib::V16).map(|mut c| { c.lib = BUILD_LIB; c }).collect()
    };
    for c in mine {
        if c.enc.dred_10ms > 0 || c.dec_complexity >= 5 {
            continue;
        }
        let e = encode_all(&c, &input);
        let mut hp = 0xcbf2_9ce4_8422_2325u64;
        for p in &e.packets {
            fnv(&mut hp, p);
        }
        let lost = traces::trace(Condition::Random(0.10), 1, e.packets.len());
        let (pcm, _) = receive(&c, &e, &lost, None, None);
        let mut ho = 0xcbf2_9ce4_8422_2325u64;
        for s in &pcm {
            fnv(&mut ho, &s.to_le_bytes());
        }
        println!("{}\tpackets {:016x}\trand10-s1 output {:016x}", c.id, hp, ho);
    }
}

fn cmd_traces(n: usize) {
    println!("condition\tseed\tloss%\tmean_burst\tlongest");
    for cond in CONDITIONS {
        for seed in SEEDS {
            let (l, m, x) = traces::describe(&traces::trace(cond, seed, n));
            println!("{}\t{}\t{:.2}\t{:.2}\t{}", cond.name(), seed, l * 100.0, m, x);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let filter = std::env::var("OPUS_STUDY_CONFIGS").ok().filter(|s| !s.is_empty());
    match args.get(1).map(String::as_str) {
        Some("info") => println!("{}", lib_name()),
        Some("quality") => cmd_quality(&PathBuf::from(&args[2]), &PathBuf::from(&args[3]), filter),
        Some("bench") => cmd_bench(&PathBuf::from(&args[2]), args[3].parse().unwrap(), filter),
        Some("dredcx") => cmd_dredcx(&PathBuf::from(&args[2])),
        Some("grid") => cmd_grid(&PathBuf::from(&args[2]), &PathBuf::from(&args[3])),
        Some("hashes") => cmd_hashes(&PathBuf::from(&args[2])),
        Some("traces") => cmd_traces(args[2].parse().unwrap()),
        _ => {
            eprintln!("usage: opus-study info|quality AUDIO OUT|bench AUDIO REPS|dredcx AUDIO|hashes AUDIO|traces N");
            std::process::exit(2);
        }
    }
}
