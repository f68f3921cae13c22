//! Call quality on the agent link, one direction at a time. A softphone caller says one prompt
//! and a headless agent another, each recording what it hears; the agent's QUIC link runs
//! through the impairment relay, the same impairment both ways. Each direction is scored with
//! PESQ-NB against what was said, so a weak direction cannot hide behind a strong one (the echo
//! tests in `tests/agents.rs` score both in tandem).
//!
//! `trunkgate-quality` runs [`conditions`] several times each and prints the table; the CI test
//! `quality.rs` runs one condition.
use std::path::Path;
use std::time::Duration;

use crate::agent::{demo_args, AgentProcess};
use crate::audio::{self, Audio};
use crate::relay::{BurstLoss, Direction, Impairment, Relay, RelayConfig};
use crate::{line_field, prompt_path, Baresip, Gateway, TestConfig, DEMO_CREDENTIAL};

/// What the caller says (the agent hears it) and what the agent says (the caller hears it).
pub const CALLER_SAYS: &str = "enter-digits";
pub const AGENT_SAYS: &str = "main-menu";
/// Silence before the caller speaks, in seconds: time for the agent to be offered the call.
const CALLER_WAITS_SECS: usize = 2;

/// A network the agent may be on.
#[derive(Debug, Clone)]
pub struct Condition {
    pub name: &'static str,
    pub impairment: Impairment,
}

/// The conditions call quality is judged on: a clean link, home broadband and Wi-Fi with some
/// loss and jitter, a bad link, bursty loss, and LTE or busy Wi-Fi.
pub fn conditions() -> Vec<Condition> {
    let ms = Duration::from_millis;
    vec![
        Condition {
            name: "clean",
            impairment: Impairment::default(),
        },
        Condition {
            name: "3 % loss, 20 ms ± 30 ms",
            impairment: Impairment {
                delay: ms(20),
                jitter: ms(30),
                loss_pct: 3.0,
                ..Impairment::default()
            },
        },
        Condition {
            name: "10 % loss, 20 ms ± 10 ms",
            impairment: Impairment {
                delay: ms(20),
                jitter: ms(10),
                loss_pct: 10.0,
                ..Impairment::default()
            },
        },
        Condition {
            // Gilbert-Elliott: bursts of 3 datagrams on average (exit 1/3), 5 % lost in them.
            name: "5 % loss in bursts of 3",
            impairment: Impairment {
                delay: ms(20),
                burst_loss: Some(BurstLoss {
                    enter_pct: 1.75,
                    exit_pct: 33.3,
                }),
                ..Impairment::default()
            },
        },
        Condition {
            name: "150 ms ± 50 ms, 1 % loss",
            impairment: Impairment {
                delay: ms(150),
                jitter: ms(50),
                loss_pct: 1.0,
                ..Impairment::default()
            },
        },
    ]
}

/// PESQ-NB of each direction of one call, and what the receivers made of it: the E-model
/// estimate each printed (the agent client for caller → agent, the gateway for agent → caller)
/// and each one's mean jitter-buffer delay.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    pub caller_to_agent: f64,
    pub agent_to_caller: f64,
    pub caller_to_agent_mos: Option<f64>,
    pub agent_to_caller_mos: Option<f64>,
    pub agent_buffer_ms: Option<f64>,
    /// The 95th percentile of the agent client's jitter-buffer delay over the call.
    pub agent_buffer_p95_ms: Option<f64>,
    /// The gateway's mean jitter-buffer delay for the agent's audio.
    pub gateway_buffer_ms: Option<f64>,
    pub gateway_buffer_p95_ms: Option<f64>,
    /// The agent client's `call_ended` line, with its receive path's counters.
    pub agent_report: String,
    /// The gateway's `call ended` line, with its agent leg's estimate and stretching.
    pub gateway_report: String,
    /// Whether the agent was told its link was poor during the call (`event=link_poor`).
    pub link_warned: bool,
}

/// One call through a fresh gateway with the agent's link impaired as `impairment` says;
/// `seed` picks which datagrams the relay loses and how it delays them.
pub fn one_call(impairment: &Impairment, seed: u64) -> Result<Scores, String> {
    one_call_keeping(impairment, seed, None)
}

/// [`one_call`], keeping what each side heard as `{prefix}agent-heard.wav` and
/// `{prefix}caller-heard.wav` when `keep` is a path prefix (for listening, or a closer look).
pub fn one_call_keeping(
    impairment: &Impairment,
    seed: u64,
    keep: Option<&str>,
) -> Result<Scores, String> {
    let gw = Gateway::start(
        &TestConfig {
            route: "queue:support".into(),
            ..TestConfig::default()
        }
        .to_toml(),
    );
    let relay = Relay::start(RelayConfig {
        seed,
        ..RelayConfig::new(gw.quic())
    })
    .map_err(|e| e.to_string())?;
    for direction in [Direction::Up, Direction::Down] {
        relay
            .set_impairment(direction, impairment.clone())
            .map_err(|e| e.to_string())?;
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let agent_heard = dir.path().join("agent-heard.wav");
    let play = prompt_path(AGENT_SAYS);
    let mut args = demo_args(
        &gw,
        &[
            "--play",
            &play.to_string_lossy(),
            "--record",
            &agent_heard.to_string_lossy(),
            "--calls",
            "1",
            "--duration-secs",
            "30",
        ],
    );
    args[1] = relay.addr().to_string();
    let mut agent = AgentProcess::start(&args, DEMO_CREDENTIAL);
    agent.expect(&["event=welcome"], Duration::from_secs(10));
    // The caller starts talking once the call is answered, which here is by the queue, before
    // an agent is offered it. On a long, lossy link the offer and the agent's answer take up
    // to a second or two; the silence in front keeps what is scored what the agent could hear,
    // not the start of a prompt said before anyone listened.
    let said = audio::prompt(CALLER_SAYS);
    let mut padded = vec![0.0f32; (said.rate as usize) * CALLER_WAITS_SECS];
    padded.extend_from_slice(&said.samples);
    let caller_says = dir.path().join("caller-says.wav");
    audio::write_wav_i16(
        &caller_says,
        &Audio {
            rate: said.rate,
            samples: padded,
        },
    )
    .map_err(|e| e.to_string())?;
    let caller = Baresip::new("caller")
        .dial(format!("sip:100@{}", gw.sip_udp()))
        .source_wav(&caller_says)
        .duration(Duration::from_secs(10))
        .run();
    if !caller.call_established() {
        return Err(format!("the call was not set up: {}", caller.log));
    }
    let ended = agent.expect(&["event=call_ended"], Duration::from_secs(15));
    agent.wait_exit(Duration::from_secs(10));
    let gateway_ended = gw.expect_line("call ended", Duration::from_secs(10));
    let caller_heard = caller
        .only_recording()
        .received
        .clone()
        .ok_or("the caller recorded nothing")?;
    if let Some(prefix) = keep {
        for (heard, name) in [
            (&agent_heard, "agent-heard"),
            (&caller_heard, "caller-heard"),
        ] {
            let kept = format!("{prefix}{name}.wav");
            std::fs::copy(heard, &kept).map_err(|e| format!("keeping {kept}: {e}"))?;
        }
    }
    Ok(Scores {
        caller_to_agent: score(&agent_heard, CALLER_SAYS)?,
        agent_to_caller: score(&caller_heard, AGENT_SAYS)?,
        caller_to_agent_mos: line_field(&ended, "mos"),
        agent_to_caller_mos: line_field(&gateway_ended, "agent_mos"),
        agent_buffer_ms: line_field(&ended, "buffer_ms"),
        agent_buffer_p95_ms: line_field(&ended, "buffer_p95_ms"),
        gateway_buffer_ms: line_field(&gateway_ended, "agent_buffer_ms"),
        gateway_buffer_p95_ms: line_field(&gateway_ended, "agent_buffer_p95_ms"),
        agent_report: ended,
        gateway_report: gateway_ended,
        link_warned: agent.lines().iter().any(|l| l.contains("event=link_poor")),
    })
}

/// How much of the recording after the prompt's aligned end is scored with it: a receiver whose
/// delay grew during the call (its buffer deepened in a pause) plays the prompt's end that much
/// later, and cutting it off would score the harness, not the call.
const SCORED_TAIL_SECS: f64 = 0.5;
/// PESQ-NB of the prompt `said` as found in `recording`. Each phrase is aligned on its own and
/// the recording reassembled phrase by phrase, cut in the middle of each pause: a receiver
/// moves its delay in the pauses between phrases, which no listener hears, but PESQ-NB does
/// (measured: 30 ms less delay in a 460 ms pause scored 3.56 instead of 3.84). A delay that
/// moves inside a phrase, a lost or stretched word, still costs what it costs. The window
/// scored runs [`SCORED_TAIL_SECS`] past the prompt, against the prompt followed by as much
/// silence.
pub fn score(recording: &Path, said: &str) -> Result<f64, String> {
    let heard = audio::read_wav(recording).map_err(|e| e.to_string())?;
    let said = audio::prompt(said);
    let found = audio::phrase_offsets(&heard.samples, &said).ok_or("the prompt was not heard")?;
    let tail = (SCORED_TAIL_SECS * f64::from(heard.rate)) as usize;
    let bounds = audio::phrases(&said);
    let mut aligned = Vec::with_capacity(said.samples.len() + tail);
    for (i, (&(at, _, _), &(start, end))) in found.iter().zip(&bounds).enumerate() {
        let len = end - start + if i + 1 == bounds.len() { tail } else { 0 };
        let end = (at + len).min(heard.samples.len());
        aligned.extend_from_slice(&heard.samples[at.min(end)..end]);
    }
    let aligned = Audio {
        rate: heard.rate,
        samples: aligned,
    };
    let mut reference = said.samples.clone();
    reference.resize(reference.len().max(aligned.samples.len()), 0.0);
    let reference = Audio {
        rate: said.rate,
        samples: reference,
    };
    audio::pesq_nb(&reference, &aligned)
}
