//! The Prometheus metrics, named after Prometheus conventions (`_total`, `_seconds`). Every
//! label value is a config name (trunk, queue) or one of a fixed set (side, cause, leg, state,
//! outcome): never a number, a call id or an address, so the series stay bounded. Why each one
//! exists and what alert it feeds: `docs/metrics.md`.
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Waits, talk and hold times: a few seconds to an hour.
const CONTACT_BUCKETS: &[f64] = &[
    1.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];
/// Jitter and frame delays: a millisecond to half a second.
/// MOS from poor to the E-model's best, finer where calls are usually judged (3–4.4).
const MOS_BUCKETS: [f64; 10] = [1.5, 2.0, 2.5, 3.0, 3.3, 3.6, 3.8, 4.0, 4.2, 4.4];
const MEDIA_BUCKETS: &[f64] = &[
    0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64,
];
/// The work of one frame: tens of microseconds when all is well, a frame period (20 ms) when
/// the call falls behind.
const FRAME_WORK_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.02,
];
/// An fdatasync: tens of microseconds on a cache-backed disk to a second on a dying one.
const FSYNC_BUCKETS: &[f64] = &[
    0.000_1, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
/// Round trips to agents: a LAN to a satellite link.
const RTT_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0];

pub struct Metrics {
    registry: Registry,
    /// Every metric name registered, samples or not (for the dashboard and alert checks).
    names: Vec<String>,
    pub calls_active: IntGaugeVec,
    pub calls_started: IntCounterVec,
    pub calls_ended: IntCounterVec,
    pub call_answered_seconds: HistogramVec,
    pub rtp_packets_received: IntCounterVec,
    pub rtp_packets_sent: IntCounterVec,
    pub rtp_packets_lost: IntCounterVec,
    pub rtp_packets_late: IntCounterVec,
    pub concealed_frames: IntCounterVec,
    pub rebuilt_frames: IntCounterVec,
    pub jitter_seconds: HistogramVec,
    pub jitter_buffer_delay_seconds: HistogramVec,
    pub call_mos: HistogramVec,
    pub frame_delay_seconds: Histogram,
    /// Handed to each call's task, which observes into a local copy and flushes now and then.
    pub frame_work_seconds: Histogram,
    pub agent_audio_stalls: IntCounter,
    pub agent_link_poor: IntCounter,
    pub outbound_refused: IntCounterVec,
    pub recordings: IntCounterVec,
    pub help_requests: IntCounterVec,
    pub supervisor_refusals: IntCounterVec,
    pub recorded_seconds: prometheus::Counter,
    pub proxies_down: IntGaugeVec,
    pub agents: IntGaugeVec,
    pub agents_connected: IntGaugeVec,
    pub agent_connections_lost: IntCounter,
    pub agent_resumes: IntCounter,
    pub agent_logouts: IntCounterVec,
    pub agent_talk_seconds: HistogramVec,
    pub agent_hold_seconds: HistogramVec,
    pub agent_wrap_up_seconds: Histogram,
    pub queue_waiting: IntGaugeVec,
    pub queue_longest_wait_seconds: prometheus::GaugeVec,
    pub queue_calls: IntCounterVec,
    pub queue_wait_seconds: HistogramVec,
    pub queue_answered_in_service_level: IntCounterVec,
    pub event_feed_dropped: IntGaugeVec,
    pub sip: crate::sip::endpoint::SipCounters,
    pub agent_link: crate::agent::link::LinkCounters,
    pub journal: crate::journal::shell::JournalCounters,
    pub sinks: crate::journal::ship::SinkCounters,
    pub recording_uploads: crate::recording::upload::UploadCounters,
    pub spans: crate::isdn::view::SpanCounters,
}

impl Metrics {
    pub fn new() -> Metrics {
        // Our metrics carry the `trunkgate_` prefix; the process collector's keep the standard
        // `process_` names dashboards expect.
        let registry = Registry::new();
        let mut m = Metrics {
            names: Vec::new(),
            calls_active: gauge(
                "calls_active",
                "Calls in progress, by trunk and direction.",
                &["trunk", "direction"],
            ),
            calls_started: counter(
                "calls_started_total",
                "Calls started, by trunk and direction (inbound: a carrier offered it).",
                &["trunk", "direction"],
            ),
            calls_ended: counter(
                "calls_ended_total",
                "Calls ended, by trunk, direction, who ended them and why.",
                &["trunk", "direction", "side", "cause"],
            ),
            call_answered_seconds: histogram(
                "call_answered_seconds",
                "How long answered calls lasted, from answer to end, by trunk.",
                &["trunk"],
                CONTACT_BUCKETS,
            ),
            rtp_packets_received: counter(
                "rtp_packets_received_total",
                "Media packets the gateway received, by leg (carrier, agent).",
                &["leg"],
            ),
            rtp_packets_sent: counter(
                "rtp_packets_sent_total",
                "Media packets the gateway sent, by leg (carrier, agent).",
                &["leg"],
            ),
            rtp_packets_lost: counter(
                "rtp_packets_lost_total",
                "Media packets that never arrived, by leg.",
                &["leg"],
            ),
            rtp_packets_late: counter(
                "rtp_packets_late_total",
                "Agent media packets that arrived too late to play.",
                &["leg"],
            ),
            concealed_frames: counter(
                "concealed_frames_total",
                "20 ms frames the jitter buffers had to conceal, by leg.",
                &["leg"],
            ),
            rebuilt_frames: counter(
                "rebuilt_frames_total",
                "Frames of lost agent packets rebuilt, by how (fec, redundancy).",
                &["leg", "by"],
            ),
            jitter_seconds: histogram(
                "rtp_jitter_seconds",
                "Interarrival jitter of each call's media at its end, by leg.",
                &["leg"],
                MEDIA_BUCKETS,
            ),
            jitter_buffer_delay_seconds: histogram(
                "jitter_buffer_delay_seconds",
                "How long each call's frames waited in its jitter buffer on average, by leg.",
                &["leg"],
                MEDIA_BUCKETS,
            ),
            call_mos: histogram(
                "call_mos",
                "Each call's estimated listening quality (ITU-T G.107 E-model MOS, 1-4.5) of the \
                 audio the gateway received and played, by leg.",
                &["leg"],
                &MOS_BUCKETS,
            ),
            frame_delay_seconds: single_histogram(
                "call_frame_delay_seconds",
                "The latest each call handled a frame after it was due: a starved gateway.",
                MEDIA_BUCKETS,
            ),
            frame_work_seconds: single_histogram(
                "media_frame_work_seconds",
                "Time a call spent on one 20 ms frame: jitter buffers, G.711 and Opus \
                 transcoding both ways, prompts and mixing.",
                FRAME_WORK_BUCKETS,
            ),
            agent_audio_stalls: IntCounter::new(
                "trunkgate_agent_audio_stalls_total",
                "Times an agent's audio stopped mid-call for a second or more.",
            )
            .expect("valid metric"),
            agent_link_poor: IntCounter::new(
                "trunkgate_agent_link_poor_total",
                "Times an agent's link lost 200 ms or more of audio either way within 10 s.",
            )
            .expect("valid metric"),
            help_requests: counter(
                "help_requests_total",
                "Agents' requests for help on a call, by the call's queue.",
                &["queue"],
            ),
            supervisor_refusals: counter(
                "supervisor_commands_refused_total",
                "Supervisors' commands refused as not allowed (a queue not theirs; an agent \
                 using a supervisor's command), by command.",
                &["command"],
            ),
            recordings: counter(
                "recordings_total",
                "Call recordings completed, by who started them: policy, agent or admin.",
                &["started_by"],
            ),
            recorded_seconds: prometheus::Counter::new(
                "trunkgate_recorded_seconds_total",
                "Seconds of call recordings completed (paused spans included).",
            )
            .expect("valid metric"),
            outbound_refused: counter(
                "outbound_refused_total",
                "Agents' dials refused before anything was sent, by reason (a fraud limit, \
                 an invalid number, no route…).",
                &["reason"],
            ),
            proxies_down: gauge(
                "trunk_proxies_down",
                "A trunk's proxies marked down after failing a call, probed until they answer.",
                &["trunk"],
            ),
            spans: crate::isdn::view::SpanCounters {
                dchannel_up: gauge(
                    "e1_dchannel_up",
                    "1 while an E1 span's D-channel (its LAPD link) is up, 0 while it is down.",
                    &["span"],
                ),
                channels: gauge(
                    "e1_channels",
                    "An E1 span's B-channels by state: busy (a call on it), maintenance \
                     (restarting, out of service) and idle.",
                    &["span", "state"],
                ),
                problems: counter(
                    "e1_problems_total",
                    "D-channel problems on an E1 span: link errors, malformed frames and \
                     Q.931 messages ignored or answered with STATUS.",
                    &["span"],
                ),
            },
            agents: gauge("agents", "Logged-in agents, by state.", &["state"]),
            agents_connected: gauge(
                "agents_connected",
                "Logged-in agents whose connection is up (1) or waiting to resume (0).",
                &["connected"],
            ),
            agent_connections_lost: IntCounter::new(
                "trunkgate_agent_connections_lost_total",
                "Agent connections that died (the session then waits for a resume).",
            )
            .expect("valid metric"),
            agent_resumes: IntCounter::new(
                "trunkgate_agent_resumes_total",
                "Agent sessions taken back on a new connection within the grace period.",
            )
            .expect("valid metric"),
            agent_logouts: counter(
                "agent_logouts_total",
                "Agent sessions that ended, by reason.",
                &["reason"],
            ),
            agent_talk_seconds: histogram(
                "agent_talk_seconds",
                "Talk time of calls agents answered, by queue (for average handle time).",
                &["queue"],
                CONTACT_BUCKETS,
            ),
            agent_hold_seconds: histogram(
                "agent_hold_seconds",
                "How long agents held callers, by queue.",
                &["queue"],
                CONTACT_BUCKETS,
            ),
            agent_wrap_up_seconds: single_histogram(
                "agent_wrap_up_seconds",
                "Wrap-up time after calls.",
                CONTACT_BUCKETS,
            ),
            queue_waiting: gauge(
                "queue_callers_waiting",
                "Callers waiting in each queue now.",
                &["queue"],
            ),
            queue_longest_wait_seconds: prometheus::GaugeVec::new(
                Opts::new(
                    "trunkgate_queue_longest_wait_seconds",
                    "How long the longest-waiting caller in each queue has waited.",
                ),
                &["queue"],
            )
            .expect("valid metric"),
            queue_calls: counter(
                "queue_calls_total",
                "Callers who left each queue, by outcome (answered, abandoned, overflowed, \
                 refused).",
                &["queue", "outcome"],
            ),
            queue_wait_seconds: histogram(
                "queue_wait_seconds",
                "How long callers waited, by queue and outcome.",
                &["queue", "outcome"],
                CONTACT_BUCKETS,
            ),
            queue_answered_in_service_level: counter(
                "queue_answered_within_service_level_total",
                "Callers answered within their queue's service_level_ms.",
                &["queue"],
            ),
            event_feed_dropped: gauge(
                "event_feed_dropped",
                "Events an event-bus observer dropped because it fell behind, by feed.",
                &["feed"],
            ),
            sip: crate::sip::endpoint::SipCounters {
                requests: counter(
                    "sip_requests_total",
                    "SIP requests received and sent, by direction and method.",
                    &["direction", "method"],
                ),
                responses: counter(
                    "sip_responses_total",
                    "SIP responses received and sent, by direction and status class.",
                    &["direction", "class"],
                ),
                acl_rejected: IntCounter::new(
                    "trunkgate_sip_acl_rejected_total",
                    "Requests from addresses no trunk allows, answered 403 (scanners show here).",
                )
                .expect("valid metric"),
                refused_draining: IntCounter::new(
                    "trunkgate_sip_refused_draining_total",
                    "New calls and OPTIONS answered 503 while the gateway drained.",
                )
                .expect("valid metric"),
                transaction_timeouts: IntCounter::new(
                    "trunkgate_sip_transaction_timeouts_total",
                    "Our requests that never got an answer.",
                )
                .expect("valid metric"),
                malformed: counter(
                    "sip_malformed_total",
                    "SIP messages that could not be parsed, answered 400 or dropped.",
                    &["outcome"],
                ),
                bans_imposed: IntCounter::new(
                    "trunkgate_sip_bans_total",
                    "Addresses banned by the scanner defence: too many requests from an address \
                     no trunk allows.",
                )
                .expect("valid metric"),
                banned_now: prometheus::IntGauge::new(
                    "trunkgate_sip_banned_addresses",
                    "Addresses banned now: their requests get no answer.",
                )
                .expect("valid metric"),
                silenced: IntCounter::new(
                    "trunkgate_sip_silenced_total",
                    "Requests from banned addresses, dropped without an answer.",
                )
                .expect("valid metric"),
                registered: gauge(
                    "trunk_registered",
                    "1 for each trunk registered with its carrier's registrar now, 0 for one that \
                     is not (registering, or failed and waiting to retry).",
                    &["trunk"],
                ),
                tls_handshake_failures: IntCounter::new(
                    "trunkgate_sip_tls_handshake_failures_total",
                    "SIP over TLS connections whose handshake failed or timed out (a missing or \
                     untrusted client certificate, a scanner, plain SIP on the TLS port).",
                )
                .expect("valid metric"),
            },
            agent_link: crate::agent::link::LinkCounters {
                migrations: IntCounter::new(
                    "trunkgate_agent_migrations_total",
                    "Times an agent's connection moved to a new address (a network change) and \
                     went on.",
                )
                .expect("valid metric"),
                rtt_seconds: single_histogram(
                    "agent_rtt_seconds",
                    "Round trip to each connected agent, sampled every 2 s.",
                    RTT_BUCKETS,
                ),
                datagrams_dropped: counter(
                    "agent_datagrams_dropped_total",
                    "Agent media datagrams dropped, by reason (send_buffer_full, unsendable, \
                     malformed, no_call, call_behind).",
                    &["reason"],
                ),
            },
            journal: crate::journal::shell::JournalCounters {
                records: counter(
                    "journal_records_total",
                    "Records appended to the journal, by type (cdr, call_event, agent_event, \
                     queue_outcome, lost).",
                    &["type"],
                ),
                fsync_seconds: single_histogram(
                    "journal_fsync_seconds",
                    "How long each group commit's fdatasync took (its count is the fsyncs).",
                    FSYNC_BUCKETS,
                ),
                bytes: IntGauge::new(
                    "trunkgate_journal_bytes",
                    "Bytes of journal segments on disk.",
                )
                .expect("valid metric"),
                pending: IntGauge::new(
                    "trunkgate_journal_pending_records",
                    "Records waiting in memory because they could not be written (full disk, \
                     max_bytes).",
                )
                .expect("valid metric"),
                write_errors: IntCounter::new(
                    "trunkgate_journal_write_errors_total",
                    "Failed journal writes and syncs.",
                )
                .expect("valid metric"),
                lost: IntCounter::new(
                    "trunkgate_journal_lost_records_total",
                    "Records given up after waiting in memory past max_pending_records.",
                )
                .expect("valid metric"),
            },
            sinks: crate::journal::ship::SinkCounters {
                backlog: gauge(
                    "journal_sink_backlog_records",
                    "Journal records synced and not yet acknowledged, by sink.",
                    &["sink"],
                ),
                oldest_unacked_seconds: prometheus::GaugeVec::new(
                    Opts::new(
                        "trunkgate_journal_sink_oldest_unacked_seconds",
                        "Age of the oldest journal record a sink has not acknowledged (0 when \
                         none waits), by sink.",
                    ),
                    &["sink"],
                )
                .expect("valid metric"),
                batches: counter(
                    "journal_sink_batches_total",
                    "Batches sent to a sink, by sink and result (acknowledged, retry, \
                     dead_letter).",
                    &["sink", "result"],
                ),
                bytes: counter(
                    "journal_sink_bytes_total",
                    "Bytes of batches a sink acknowledged, by sink.",
                    &["sink"],
                ),
                dead_lettered: counter(
                    "journal_sink_dead_lettered_records_total",
                    "Records a sink refused for good, set aside in dead-letter/, by sink.",
                    &["sink"],
                ),
            },
            recording_uploads: crate::recording::upload::UploadCounters {
                uploads: counter(
                    "recording_uploads_total",
                    "Recordings sent to an object sink, by sink and result (acknowledged, retry).",
                    &["sink", "result"],
                ),
                pending: IntGauge::new(
                    "trunkgate_recordings_pending",
                    "Finished recordings on disk that some object sink does not have yet.",
                )
                .expect("valid metric"),
            },
            registry,
        };
        m.register();
        m
    }

    fn register(&mut self) {
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(self.calls_active.clone()),
            Box::new(self.calls_started.clone()),
            Box::new(self.calls_ended.clone()),
            Box::new(self.call_answered_seconds.clone()),
            Box::new(self.rtp_packets_received.clone()),
            Box::new(self.rtp_packets_sent.clone()),
            Box::new(self.rtp_packets_lost.clone()),
            Box::new(self.rtp_packets_late.clone()),
            Box::new(self.concealed_frames.clone()),
            Box::new(self.rebuilt_frames.clone()),
            Box::new(self.jitter_seconds.clone()),
            Box::new(self.jitter_buffer_delay_seconds.clone()),
            Box::new(self.call_mos.clone()),
            Box::new(self.frame_delay_seconds.clone()),
            Box::new(self.frame_work_seconds.clone()),
            Box::new(self.agent_audio_stalls.clone()),
            Box::new(self.agent_link_poor.clone()),
            Box::new(self.outbound_refused.clone()),
            Box::new(self.recordings.clone()),
            Box::new(self.help_requests.clone()),
            Box::new(self.supervisor_refusals.clone()),
            Box::new(self.recorded_seconds.clone()),
            Box::new(self.recording_uploads.uploads.clone()),
            Box::new(self.recording_uploads.pending.clone()),
            Box::new(self.proxies_down.clone()),
            Box::new(self.spans.dchannel_up.clone()),
            Box::new(self.spans.channels.clone()),
            Box::new(self.spans.problems.clone()),
            Box::new(self.agents.clone()),
            Box::new(self.agents_connected.clone()),
            Box::new(self.agent_connections_lost.clone()),
            Box::new(self.agent_resumes.clone()),
            Box::new(self.agent_logouts.clone()),
            Box::new(self.agent_talk_seconds.clone()),
            Box::new(self.agent_hold_seconds.clone()),
            Box::new(self.agent_wrap_up_seconds.clone()),
            Box::new(self.queue_waiting.clone()),
            Box::new(self.queue_longest_wait_seconds.clone()),
            Box::new(self.queue_calls.clone()),
            Box::new(self.queue_wait_seconds.clone()),
            Box::new(self.queue_answered_in_service_level.clone()),
            Box::new(self.event_feed_dropped.clone()),
            Box::new(self.sip.requests.clone()),
            Box::new(self.sip.responses.clone()),
            Box::new(self.sip.acl_rejected.clone()),
            Box::new(self.sip.refused_draining.clone()),
            Box::new(self.sip.transaction_timeouts.clone()),
            Box::new(self.sip.malformed.clone()),
            Box::new(self.sip.tls_handshake_failures.clone()),
            Box::new(self.sip.registered.clone()),
            Box::new(self.sip.bans_imposed.clone()),
            Box::new(self.sip.banned_now.clone()),
            Box::new(self.sip.silenced.clone()),
            Box::new(self.agent_link.migrations.clone()),
            Box::new(self.agent_link.rtt_seconds.clone()),
            Box::new(self.agent_link.datagrams_dropped.clone()),
            Box::new(self.journal.records.clone()),
            Box::new(self.journal.fsync_seconds.clone()),
            Box::new(self.journal.bytes.clone()),
            Box::new(self.journal.pending.clone()),
            Box::new(self.journal.write_errors.clone()),
            Box::new(self.journal.lost.clone()),
            Box::new(self.sinks.backlog.clone()),
            Box::new(self.sinks.oldest_unacked_seconds.clone()),
            Box::new(self.sinks.batches.clone()),
            Box::new(self.sinks.bytes.clone()),
            Box::new(self.sinks.dead_lettered.clone()),
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        ];
        for c in collectors {
            self.names
                .extend(c.desc().iter().map(|d| d.fq_name.clone()));
            // Names are constants and unique: registering cannot fail.
            self.registry.register(c).expect("metric names are unique");
        }
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = Vec::new();
        // Encoding text into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(format!("trunkgate_{name}"), help), labels).expect("valid metric")
}

fn gauge(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(format!("trunkgate_{name}"), help), labels).expect("valid metric")
}

fn histogram(name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
    let opts = HistogramOpts::new(format!("trunkgate_{name}"), help).buckets(buckets.to_vec());
    HistogramVec::new(opts, labels).expect("valid metric")
}

fn single_histogram(name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let opts = HistogramOpts::new(format!("trunkgate_{name}"), help).buckets(buckets.to_vec());
    Histogram::with_opts(opts).expect("valid metric")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The metric names a file's PromQL uses (`trunkgate_…` and `process_…`), without the
    /// histogram suffixes.
    fn used_in(path: &str) -> Vec<String> {
        let file = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&file).expect("the file ships with the repository");
        let mut names = Vec::new();
        for (start, _) in text
            .match_indices("trunkgate_")
            .chain(text.match_indices("process_"))
        {
            if start > 0 && text.as_bytes()[start - 1].is_ascii_alphanumeric() {
                continue;
            }
            let name: String = text[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name);
            names.push(base.to_string());
        }
        names
    }

    #[test]
    fn the_dashboard_and_the_alerts_use_only_metrics_that_exist() {
        let metrics = Metrics::new();
        for file in [
            "packaging/grafana/trunkgate.json",
            "packaging/prometheus/alerts.yml",
        ] {
            let used = used_in(file);
            assert!(used.len() > 10, "{file} uses {used:?}");
            for name in used {
                assert!(
                    metrics.names().contains(&name),
                    "{file} uses {name}, which the gateway does not export"
                );
            }
        }
    }

    #[test]
    fn every_metric_is_documented_and_the_docs_name_no_other() {
        let metrics = Metrics::new();
        // "the `trunkgate_` prefix" names no metric.
        let documented: Vec<String> = used_in("docs/metrics.md")
            .into_iter()
            .filter(|n| !n.ends_with('_'))
            .collect();
        for name in metrics.names() {
            assert!(
                documented.contains(name),
                "{name} is exported but docs/metrics.md does not say why"
            );
        }
        for name in documented {
            assert!(
                metrics.names().contains(&name),
                "docs/metrics.md documents {name}, which the gateway does not export"
            );
        }
    }

    #[test]
    fn names_follow_prometheus_conventions() {
        let metrics = Metrics::new();
        for name in metrics.names() {
            assert!(
                name.starts_with("trunkgate_") || name.starts_with("process_"),
                "{name}"
            );
            assert!(
                !name.contains("__") && name == &name.to_lowercase(),
                "{name}"
            );
        }
    }
}
