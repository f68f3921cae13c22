//! Figures from what the generators saw: percentiles, process CPU and memory from /proc, the
//! gateway's own counters from its exposition, and the echo path's delay and PESQ from the
//! recorded calls.
use std::time::Duration;

use super::media::CallMedia;
use crate::audio::{best_match, pesq_nb, rms, Audio, TELEPHONY_RATE};

/// The `p`-th percentile (0..=100, nearest rank) of `values`; `None` when empty.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// CPU time (user + system) a process has used.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_secs_f64((utime + stime) as f64 / hz as f64))
}

/// UDP datagrams the kernel dropped for want of socket receive buffer, machine-wide (IPv4
/// and IPv6): on loopback every drop is a buffer too small somewhere, the gateway's or a
/// generator's.
pub fn udp_receive_buffer_drops() -> u64 {
    let v4 = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let v6 = std::fs::read_to_string("/proc/net/snmp6").unwrap_or_default();
    snmp_field(&v4, "Udp:", "RcvbufErrors") + snmp6_field(&v6, "Udp6RcvbufErrors")
}

/// `/proc/net/snmp` gives each protocol a header line of names and a line of values.
fn snmp_field(text: &str, protocol: &str, name: &str) -> u64 {
    let mut lines = text.lines().filter(|l| l.starts_with(protocol));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

fn snmp6_field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// A process's resident memory (KiB), and its thread count.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmRSS:")
}

pub fn threads(pid: u32) -> Option<u64> {
    status_field(pid, "Threads:")
}

fn status_field(pid: u32, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The sum of every sample of `name` whose labels include all of `labels`.
pub fn metric(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric_name, label_text) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric_name != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| label_text.split(',').any(|l| l == format!("{k}=\"{v}\"")));
            all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// What the recorded calls say about the echo path (caller → gateway → agent → gateway →
/// caller).
#[derive(Debug, Clone, Default)]
pub struct EchoFindings {
    /// Round trip of half-second pieces of speech: when each came back minus when it was sent.
    pub round_trip_ms: Vec<f64>,
    /// Pieces found in what came back, of those looked for.
    pub pieces_found: usize,
    pub pieces_sought: usize,
    pub pesq: Vec<f64>,
}

const PIECE: usize = 4000; // 0.5 s
/// How far after its sending a piece is looked for.
const SEARCH: usize = 8000;
/// A piece counts as found at this normalised correlation (a G.711 → Opus → G.711 round trip
/// of the same speech scores 0.8–0.99; unrelated audio near 0).
const FOUND: f64 = 0.5;

/// Finds the speech each recorded call sent in what came back. `speech` is the loop every
/// call streams (frame k of a call carries samples `160k mod len`).
pub fn echo_findings(calls: &[CallMedia], speech: &[i16], with_pesq: bool) -> EchoFindings {
    let speech: Vec<f32> = speech.iter().map(|&s| f32::from(s) / 32768.0).collect();
    let loop_len = speech.len() - speech.len() % 160;
    let mut findings = EchoFindings::default();
    for call in calls.iter().filter(|c| !c.recording.is_empty()) {
        let Some(timeline) = Timeline::build(call) else {
            continue;
        };
        let mut trips = Vec::new();
        let window_start = call.recording.first().map_or(0.0, |r| r.0);
        // Frames sent since the call's first, whose echo would land in the recording.
        let first_frame = ((window_start - 1.0 - call.first_frame_at) / 0.02).max(0.0) as u64;
        for frame in (first_frame..).step_by(PIECE / 160) {
            let sent_at = call.first_frame_at + frame as f64 * 0.02;
            let from = ((sent_at - timeline.anchor) * 8000.0).round();
            if from + (SEARCH + PIECE) as f64 >= timeline.samples.len() as f64 {
                break;
            }
            if from < 0.0 {
                continue;
            }
            let start = frame as usize * 160 % loop_len;
            let piece: Vec<f32> = (0..PIECE).map(|i| speech[(start + i) % loop_len]).collect();
            if rms(&piece) < 0.01 {
                continue;
            }
            findings.pieces_sought += 1;
            let from = from as usize;
            let slice = &timeline.samples[from..from + SEARCH + PIECE];
            let Some(found) = best_match(slice, &piece) else {
                continue;
            };
            if found.score < FOUND || found.offset < 0 {
                continue;
            }
            findings.pieces_found += 1;
            let back_at = timeline.anchor + (from as f64 + found.offset as f64) / 8000.0;
            trips.push((back_at - sent_at) * 1000.0);
        }
        if with_pesq {
            if let Some(score) = pesq_of_call(call, &timeline, &speech[..loop_len], &trips) {
                findings.pesq.push(score);
            }
        }
        findings.round_trip_ms.extend(trips);
    }
    findings
}

/// One loop of the speech as it came back, scored against what was sent.
fn pesq_of_call(
    call: &CallMedia,
    timeline: &Timeline,
    speech: &[f32],
    trips: &[f64],
) -> Option<f64> {
    let delay = percentile(trips, 50.0)? / 1000.0;
    let loop_frames = (speech.len() / 160) as u64;
    // The first loop start whose echo lies wholly inside the recording.
    let mut frame = 0u64;
    loop {
        let sent_at = call.first_frame_at + frame as f64 * 0.02;
        let back = ((sent_at + delay - timeline.anchor) * 8000.0).round() - 800.0;
        if back >= 0.0 {
            let back = back as usize;
            let end = back + speech.len() + 1600;
            if end > timeline.samples.len() {
                return None;
            }
            let received = &timeline.samples[back..end];
            let offset = best_match(received, speech)?.offset.max(0) as usize;
            let aligned = &received[offset..(offset + speech.len()).min(received.len())];
            let reference = Audio {
                rate: TELEPHONY_RATE,
                samples: speech.to_vec(),
            };
            let degraded = Audio {
                rate: TELEPHONY_RATE,
                samples: aligned.to_vec(),
            };
            return pesq_nb(&reference, &degraded).ok();
        }
        frame += loop_frames;
    }
}

/// A recorded call's received audio laid out by RTP timestamp, and when its first sample
/// would have arrived on the quickest path (s since the pool's epoch).
struct Timeline {
    samples: Vec<f32>,
    anchor: f64,
}

impl Timeline {
    fn build(call: &CallMedia) -> Option<Timeline> {
        let first_ts = call.recording.first()?.1;
        let offset = |ts: u32| ts.wrapping_sub(first_ts) as i32;
        let len = call
            .recording
            .iter()
            .map(|(_, ts, pcm)| offset(*ts) + pcm.len() as i32)
            .max()?
            .max(0) as usize;
        let mut samples = vec![0.0f32; len];
        let mut anchor = f64::INFINITY;
        for (at, ts, pcm) in &call.recording {
            let start = offset(*ts);
            if start < 0 {
                continue;
            }
            anchor = anchor.min(at - f64::from(start) / 8000.0);
            for (i, &s) in pcm.iter().enumerate() {
                samples[start as usize + i] = f32::from(s) / 32768.0;
            }
        }
        anchor.is_finite().then_some(Timeline { samples, anchor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), Some(50.0));
        assert_eq!(percentile(&values, 99.0), Some(99.0));
        assert_eq!(percentile(&values, 100.0), Some(100.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn metrics_are_summed_over_the_matching_series() {
        let text = "# HELP x\nx_total{leg=\"agent\",reason=\"a\"} 2\nx_total{leg=\"agent\",reason=\"b\"} 3\n\
                    x_total{leg=\"carrier\"} 7\nx_total_other 1\ny 4\n";
        assert_eq!(metric(text, "x_total", &[("leg", "agent")]), 5.0);
        assert_eq!(metric(text, "x_total", &[]), 12.0);
        assert_eq!(metric(text, "y", &[]), 4.0);
        assert_eq!(metric(text, "z", &[]), 0.0);
    }

    #[test]
    fn an_echo_is_found_with_its_delay() {
        // Speech-like noise bursts, sent from t = 1 s, coming back 130 ms later as RTP at 8 kHz.
        let speech: Vec<i16> = (0..16000)
            .map(|i| {
                let burst = (i / 2000) % 2 == 0;
                let x = ((i as u64 * 2654435761) % 65536) as f32 / 65536.0 - 0.5;
                if burst {
                    (x * 16000.0) as i16
                } else {
                    0
                }
            })
            .collect();
        let mut call = CallMedia {
            first_frame_at: 1.0,
            ..CallMedia::default()
        };
        for k in 0..400u32 {
            let at = 1.0 + 0.130 + f64::from(k) * 0.02;
            let start = (k as usize * 160) % speech.len();
            call.recording
                .push((at, 1000 + k * 160, speech[start..start + 160].to_vec()));
        }
        let findings = echo_findings(&[call], &speech, false);
        assert!(findings.pieces_found >= 10, "{findings:?}");
        assert_eq!(findings.pieces_found, findings.pieces_sought);
        for trip in &findings.round_trip_ms {
            assert!((trip - 130.0).abs() < 1.0, "{trip}");
        }
    }
}
