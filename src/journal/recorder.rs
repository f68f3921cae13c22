//! From the event bus to journal records (sans-IO): every event as it happened, a CDR per
//! call, an outcome per wait in a queue. The schema is docs/journal.md's.
//!
//! A call's CDR is written when the call is done with: at its end, or, when an agent answered
//! it, once that agent's wrap-up after it is over (the wrap-up belongs to the call's handle
//! time). Call ids in records are `RUN-N`: `N` is the daemon's call number (as in its log
//! lines), `RUN` a random id of this daemon run, so ids never repeat across restarts.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::record::{rfc3339_millis, RecordType};
use crate::events::{
    AgentEvent, AgentLegQuality, CallEvent, CallId, CallQuality, EndCause, Event, EventKind,
    LegQuality, LogoutReason,
};
use crate::queue::AgentState;

/// A CDR waits this long at most for its agent's wrap-up to end.
pub const MAX_WRAP_UP: Duration = Duration::from_secs(3600);

/// One record to append.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub at: SystemTime,
    pub kind: RecordType,
    pub data: Value,
}

/// The call detail record (`type: cdr`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cdr {
    pub call: String,
    pub sip_call_id: String,
    pub trunk: String,
    pub direction: String,
    pub caller: String,
    pub callee: String,
    pub arrived_at: String,
    /// When the carrier was told the call is answered (by the IVR or a queue's greeting).
    pub answered_at: Option<String>,
    pub agent_answered_at: Option<String>,
    pub ended_at: String,
    /// From arrival to end.
    pub duration_ms: u64,
    pub ivr: Option<IvrPath>,
    /// Each wait in a queue, in order (an overflow or a requeue starts another).
    pub queues: Vec<QueueWait>,
    /// Each agent the call was offered to, in order.
    pub offers: Vec<Offer>,
    /// The agent who had the call last.
    pub agent: Option<String>,
    pub talk_ms: u64,
    pub hold_ms: u64,
    /// The agent's wrap-up after the call; `None` if no agent answered.
    pub wrap_up_ms: Option<u64>,
    /// Times the agent's connection died mid-call, came back in time, or did not (the
    /// caller waited in the queue again).
    pub agent_lost: u32,
    pub agent_resumed: u32,
    /// Times the agent's connection moved to a new address mid-call and went on (a network
    /// change the caller did not notice).
    pub agent_moved: u32,
    pub requeued: u32,
    /// Times the agent was told their link was dropping audio.
    pub agent_link_warnings: u32,
    /// Where the call's agents transferred it, in order (`queue:NAME`, `agent:ID`).
    pub transfers: Vec<String>,
    /// The agent's wrap-up code; `None` when the agent set none.
    pub disposition: Option<String>,
    /// Who ended the call: caller, agent or gateway.
    pub ended_by: String,
    /// Why, as a code (docs/journal.md).
    pub end_cause: String,
    pub quality: Option<Value>,
    /// Times the agent asked its supervisors for help on the call.
    #[serde(default)]
    pub help_requests: u32,
    /// The supervisors who joined the call (monitor, whisper or barge), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supervisors: Vec<String>,
    /// The call's recording, if it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<RecordingLink>,
}

/// Where a call's recording is and what it holds (docs/recording.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordingLink {
    /// Its file's name: `recordings/NAME` in every object sink.
    pub file: String,
    pub duration_ms: u64,
    /// Where the recording was paused (silence in the file), in order.
    pub paused: Vec<PausedData>,
    /// `policy`, the agent who started it, or `admin`.
    pub started_by: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PausedData {
    /// From the recording's start.
    pub at_ms: u64,
    pub ms: u64,
}

/// The file a call's recording is kept in, by the call's journal id (`RUN-N`).
pub fn recording_file(call: &str) -> String {
    format!("{call}.opus.age")
}

fn paused_data(paused: &[crate::events::PausedSpan]) -> Value {
    paused
        .iter()
        .map(|p| json!({"at_ms": millis(p.at), "ms": millis(p.length)}))
        .collect()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IvrPath {
    /// Menus in the order the caller went through them.
    pub menus: Vec<String>,
    /// Every key the IVR heard.
    pub digits: String,
    /// Where the IVR sent the call (`queue:support`, `hangup`…).
    pub to: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueWait {
    pub queue: String,
    /// Callers ahead at entry plus one (1: next).
    pub position: usize,
    pub entered_at: String,
    pub waited_ms: u64,
    /// `answered`, `abandoned`, `overflowed`, `drained` (the gateway stopped), `agent_lost`
    /// is not one: a requeue continues as a new wait.
    pub outcome: String,
    /// Answered within the queue's service level: for `answered` whether it was, `false` for
    /// `abandoned`, `None` for the rest (as ops' service level counts them).
    pub within_service_level: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    pub agent: String,
    pub offered_at: String,
    pub ring_ms: u64,
    pub answered: bool,
}

/// A call being recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OpenCall {
    cdr: Cdr,
    arrived: SystemTime,
    waiting_since: Option<SystemTime>,
    ringing_since: Option<SystemTime>,
    talk_since: Option<SystemTime>,
    hold_since: Option<SystemTime>,
}

/// An ended call whose agent is still wrapping up.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Wrapping {
    cdr: Cdr,
    ended: SystemTime,
}

pub struct Recorder {
    run: String,
    service_levels: BTreeMap<String, Duration>,
    /// By call id (`RUN-N`).
    calls: HashMap<String, OpenCall>,
    /// By agent.
    wrapping: HashMap<String, Wrapping>,
    /// Each agent's state (`available`, `talking`…) and since when it has been in wrap-up.
    agents: HashMap<String, (String, Option<SystemTime>)>,
}

impl Recorder {
    /// `run`: this daemon run's id; `service_levels`: each queue's answer-time target.
    pub fn new(run: &str, service_levels: BTreeMap<String, Duration>) -> Self {
        Self {
            run: run.to_string(),
            service_levels,
            calls: HashMap::new(),
            wrapping: HashMap::new(),
            agents: HashMap::new(),
        }
    }

    /// After a reload: waits that end from now on are judged against these targets.
    pub fn set_service_levels(&mut self, service_levels: BTreeMap<String, Duration>) {
        self.service_levels = service_levels;
    }

    pub fn call_id(&self, call: CallId) -> String {
        format!("{}-{call}", self.run)
    }

    pub fn open_calls(&self) -> usize {
        self.calls.len() + self.wrapping.len()
    }

    /// The records one event makes. The call or agent event's own record comes first; what
    /// follows from it (CDRs, queue outcomes) is worked out from that record alone, so that
    /// replaying the journal's records after a crash ([`Recorder::replay`]) rebuilds exactly
    /// what the live run had.
    pub fn record(&mut self, event: &Event) -> Vec<Output> {
        let (kind, data) = match &event.what {
            EventKind::Call { call, event: e } => {
                (RecordType::CallEvent, self.call_event_data(*call, e))
            }
            EventKind::Agent { agent, event: e } => {
                (RecordType::AgentEvent, self.agent_event_data(agent, e))
            }
        };
        let mut out = self.replay(event.at, kind, &data);
        out.insert(
            0,
            Output {
                at: event.at,
                kind,
                data,
            },
        );
        out
    }

    /// Follows one call or agent event record (live, or read back from the journal): the
    /// records it makes besides itself.
    pub fn replay(&mut self, at: SystemTime, kind: RecordType, data: &Value) -> Vec<Output> {
        let mut out = Vec::new();
        match kind {
            RecordType::CallEvent => self.follow_call(at, data, &mut out),
            RecordType::AgentEvent => self.follow_agent(at, data, &mut out),
            _ => {}
        }
        out
    }

    /// The calls in progress and the CDRs waiting for a wrap-up, as a `checkpoint` record's
    /// data: where a replay after a crash starts from.
    pub fn checkpoint(&self) -> Value {
        let mut calls: Vec<&OpenCall> = self.calls.values().collect();
        calls.sort_by(|a, b| a.cdr.call.cmp(&b.cdr.call));
        let wrapping: BTreeMap<&String, &Wrapping> = self.wrapping.iter().collect();
        let agents: BTreeMap<&String, &(String, Option<SystemTime>)> = self.agents.iter().collect();
        json!({"run": self.run, "calls": calls, "wrapping": wrapping, "agents": agents})
    }

    /// Takes the state a checkpoint record holds; `false` (nothing taken) if it is not one.
    pub fn restore(&mut self, checkpoint: &Value) -> bool {
        let calls = Vec::<OpenCall>::deserialize(&checkpoint["calls"]);
        let wrapping = HashMap::<String, Wrapping>::deserialize(&checkpoint["wrapping"]);
        let agents =
            HashMap::<String, (String, Option<SystemTime>)>::deserialize(&checkpoint["agents"]);
        let (Ok(calls), Ok(wrapping), Ok(agents)) = (calls, wrapping, agents) else {
            return false;
        };
        self.calls = calls.into_iter().map(|c| (c.cdr.call.clone(), c)).collect();
        self.wrapping = wrapping;
        self.agents = agents;
        true
    }

    /// After a crash: ends every call still open as ended by the gateway's restart at `at`
    /// (the last record before the crash), writes the CDRs still waiting for a wrap-up, and
    /// ends the sessions of the agents still logged in.
    pub fn close_all(&mut self, at: SystemTime) -> Vec<Output> {
        let mut ids: Vec<String> = self.calls.keys().cloned().collect();
        ids.sort();
        let mut out = Vec::new();
        for call in ids {
            let answered = self.calls[&call].cdr.answered_at.is_some();
            let data = json!({
                "call": call,
                "event": "ended",
                "side": "gateway",
                "cause": EndCause::GatewayRestart.code(),
                "detail": EndCause::GatewayRestart.to_string(),
                "answered": answered,
                "quality": null,
            });
            out.push(Output {
                at,
                kind: RecordType::CallEvent,
                data: data.clone(),
            });
            self.follow_call(at, &data, &mut out);
        }
        out.extend(self.flush(at));
        // The agents' sessions ended with the process.
        let mut agents: Vec<String> = self.agents.keys().cloned().collect();
        agents.sort();
        for agent in agents {
            let data = json!({"agent": agent, "event": "logged_out", "reason": "gateway_restart"});
            out.push(Output {
                at,
                kind: RecordType::AgentEvent,
                data: data.clone(),
            });
            self.follow_agent(at, &data, &mut out);
        }
        out
    }

    /// CDRs whose agent's wrap-up has gone on past [`MAX_WRAP_UP`] (a state change lost).
    pub fn expire(&mut self, now: SystemTime) -> Vec<Output> {
        let stale: Vec<String> = self
            .wrapping
            .iter()
            .filter(|(_, w)| elapsed(w.ended, now) >= MAX_WRAP_UP)
            .map(|(agent, _)| agent.clone())
            .collect();
        let mut out = Vec::new();
        for agent in stale {
            let since = self.wrapping_since(&agent);
            self.finish_wrap_up(now, &agent, since, &mut out);
        }
        out
    }

    /// At shutdown: the CDRs still waiting for a wrap-up, with the wrap-up so far.
    pub fn flush(&mut self, now: SystemTime) -> Vec<Output> {
        let mut agents: Vec<String> = self.wrapping.keys().cloned().collect();
        agents.sort();
        let mut out = Vec::new();
        for agent in agents {
            let since = self.wrapping_since(&agent);
            self.finish_wrap_up(now, &agent, since, &mut out);
        }
        out
    }

    fn follow_call(&mut self, at: SystemTime, data: &Value, out: &mut Vec<Output>) {
        let text = |key: &str| data[key].as_str().unwrap_or_default().to_string();
        let call = text("call");
        let event = text("event");
        if event == "arrived" || event == "dialled" {
            let outbound = event == "dialled";
            let cdr = Cdr {
                call: call.clone(),
                sip_call_id: text("sip_call_id"),
                trunk: text("trunk"),
                direction: if outbound { "outbound" } else { "inbound" }.into(),
                caller: text("caller"),
                callee: text("callee"),
                arrived_at: rfc3339_millis(at),
                agent: outbound.then(|| text("agent")),
                ..Cdr::default()
            };
            let open = OpenCall {
                cdr,
                arrived: at,
                waiting_since: None,
                ringing_since: None,
                talk_since: None,
                hold_since: None,
            };
            self.calls.insert(call, open);
            return;
        }
        let Some(open) = self.calls.get_mut(&call) else {
            return;
        };
        let cdr = &mut open.cdr;
        match event.as_str() {
            "answered" => cdr.answered_at = Some(rfc3339_millis(at)),
            "entered_menu" => {
                cdr.ivr
                    .get_or_insert_with(IvrPath::default)
                    .menus
                    .push(text("menu"));
            }
            "left_ivr" => {
                let ivr = cdr.ivr.get_or_insert_with(IvrPath::default);
                ivr.digits = text("digits");
                ivr.to = Some(text("to"));
            }
            "queued" => {
                cdr.queues.push(QueueWait {
                    queue: text("queue"),
                    position: data["position"].as_u64().unwrap_or_default() as usize,
                    entered_at: rfc3339_millis(at),
                    ..QueueWait::default()
                });
                open.waiting_since = Some(at);
            }
            "offered" => {
                cdr.offers.push(Offer {
                    agent: text("agent"),
                    offered_at: rfc3339_millis(at),
                    ..Offer::default()
                });
                open.ringing_since = Some(at);
            }
            "agent_answered" => {
                if let Some(since) = open.ringing_since.take() {
                    if let Some(offer) = cdr.offers.last_mut() {
                        offer.ring_ms = millis(elapsed(since, at));
                        offer.answered = true;
                    }
                }
                cdr.agent = Some(text("agent"));
                cdr.agent_answered_at
                    .get_or_insert_with(|| rfc3339_millis(at));
                open.talk_since = Some(at);
                self.end_wait(&call, at, "answered", out);
            }
            "held" => {
                if data["on"].as_bool().unwrap_or_default() {
                    open.hold_since.get_or_insert(at);
                } else if let Some(since) = open.hold_since.take() {
                    cdr.hold_ms += millis(elapsed(since, at));
                }
            }
            "agent_link" if data["poor"].as_bool() == Some(true) => cdr.agent_link_warnings += 1,
            "agent_lost" => cdr.agent_lost += 1,
            "transferred" => {
                cdr.transfers.push(text("to"));
                stop_talk(open, at);
            }
            "help_requested" => cdr.help_requests += 1,
            "supervised" if !data["mode"].is_null() => {
                let who = text("supervisor");
                if !cdr.supervisors.contains(&who) {
                    cdr.supervisors.push(who);
                }
            }
            "recorded" => {
                cdr.recording = Some(RecordingLink {
                    file: text("file"),
                    duration_ms: data["duration_ms"].as_u64().unwrap_or_default(),
                    paused: serde_json::from_value(data["paused"].clone()).unwrap_or_default(),
                    started_by: text("started_by"),
                })
            }
            "agent_resumed" => cdr.agent_resumed += 1,
            "agent_moved" => cdr.agent_moved += 1,
            "requeued" => {
                cdr.requeued += 1;
                stop_talk(open, at);
                // The caller waits again, first in the queue it last waited in.
                let again = open.cdr.queues.last().map(|w| QueueWait {
                    queue: w.queue.clone(),
                    position: 1,
                    entered_at: rfc3339_millis(at),
                    ..QueueWait::default()
                });
                open.cdr.queues.extend(again);
                open.waiting_since = Some(at);
            }
            "overflowed" => self.end_wait(&call, at, "overflowed", out),
            "ended" => self.end_call(at, &call, data, out),
            _ => {}
        }
    }

    fn end_call(&mut self, at: SystemTime, call: &str, data: &Value, out: &mut Vec<Output>) {
        let cause = data["cause"].as_str().unwrap_or_default();
        let outcome = match cause {
            "shutdown" => "drained",
            "gateway_restart" => "interrupted",
            _ => "abandoned",
        };
        self.end_wait(call, at, outcome, out);
        let Some(mut open) = self.calls.remove(call) else {
            return;
        };
        if let (Some(since), Some(offer)) = (open.ringing_since.take(), open.cdr.offers.last_mut())
        {
            offer.ring_ms = millis(elapsed(since, at));
        }
        stop_talk(&mut open, at);
        let cdr = &mut open.cdr;
        cdr.ended_at = rfc3339_millis(at);
        cdr.duration_ms = millis(elapsed(open.arrived, at));
        cdr.ended_by = data["side"].as_str().unwrap_or_default().to_string();
        cdr.end_cause = cause.to_string();
        cdr.quality = Some(data["quality"].clone()).filter(|q| !q.is_null());
        match cdr.agent.clone() {
            Some(agent) if cdr.agent_answered_at.is_some() => {
                self.wrapping.insert(
                    agent.clone(),
                    Wrapping {
                        cdr: open.cdr,
                        ended: at,
                    },
                );
                // The agent may have left the call behind already.
                let state = self.agents.get(&agent).map(|(state, _)| state.as_str());
                if !matches!(state, Some("talking" | "wrap_up") | None) {
                    self.finish_wrap_up(at, &agent, None, out);
                }
            }
            _ => out.push(cdr_output(at, &open.cdr)),
        }
    }

    /// Closes the call's current wait in a queue, if it has one, with its queue outcome record.
    fn end_wait(&mut self, call: &str, at: SystemTime, outcome: &str, out: &mut Vec<Output>) {
        let Some(open) = self.calls.get_mut(call) else {
            return;
        };
        let Some(since) = open.waiting_since.take() else {
            return;
        };
        let Some(wait) = open.cdr.queues.last_mut() else {
            return;
        };
        let waited = elapsed(since, at);
        wait.waited_ms = millis(waited);
        wait.outcome = outcome.to_string();
        let level = self.service_levels.get(&wait.queue).copied();
        // As ops' service level counts: answered in time, or not (an abandoned caller never
        // is); overflows, drains and interruptions are left out.
        wait.within_service_level = match outcome {
            "answered" => level.map(|level| waited <= level),
            "abandoned" => level.map(|_| false),
            _ => None,
        };
        out.push(Output {
            at,
            kind: RecordType::QueueOutcome,
            data: json!({
                "call": open.cdr.call,
                "queue": wait.queue,
                "position": wait.position,
                "entered_at": wait.entered_at,
                "waited_ms": wait.waited_ms,
                "outcome": wait.outcome,
                "agent": (outcome == "answered").then(|| open.cdr.agent.clone()).flatten(),
                "service_level_ms": level.map(millis),
                "within_service_level": wait.within_service_level,
            }),
        });
    }

    fn follow_agent(&mut self, at: SystemTime, data: &Value, out: &mut Vec<Output>) {
        let agent = data["agent"].as_str().unwrap_or_default().to_string();
        let state = match data["event"].as_str() {
            Some("state") => data["state"].as_str().unwrap_or_default().to_string(),
            Some("logged_out") => "logged_out".to_string(),
            Some("disposition") => return self.dispose(&agent, data),
            _ => return,
        };
        let wrap_since = (state == "wrap_up").then_some(at);
        let before = self
            .agents
            .insert(agent.clone(), (state.clone(), wrap_since));
        if state != "talking" && state != "wrap_up" {
            let wrapped_since = before.and_then(|(_, since)| since);
            self.finish_wrap_up(at, &agent, wrapped_since, out);
        }
        if state == "logged_out" {
            self.agents.remove(&agent);
        }
    }

    /// The agent's code for its call, into the CDR still open (the call, or its wrap-up).
    fn dispose(&mut self, agent: &str, data: &Value) {
        let call = data["call"].as_str().unwrap_or_default();
        let code = data["code"].as_str().map(str::to_string);
        if let Some(open) = self.calls.get_mut(call) {
            open.cdr.disposition = code;
        } else if let Some(wrapping) = self.wrapping.get_mut(agent).filter(|w| w.cdr.call == call) {
            wrapping.cdr.disposition = code;
        }
    }

    /// Writes the CDR waiting for `agent`'s wrap-up, if any. `wrapped_since`: when the
    /// agent's wrap-up began, if it was seen to begin; otherwise it counts from the call's end.
    fn finish_wrap_up(
        &mut self,
        at: SystemTime,
        agent: &str,
        wrapped_since: Option<SystemTime>,
        out: &mut Vec<Output>,
    ) {
        let Some(mut wrapping) = self.wrapping.remove(agent) else {
            return;
        };
        let since = wrapped_since.map_or(wrapping.ended, |s| s.max(wrapping.ended));
        wrapping.cdr.wrap_up_ms = Some(millis(elapsed(since, at)));
        out.push(cdr_output(at, &wrapping.cdr));
    }

    /// When `agent` went into wrap-up, if it is in it.
    fn wrapping_since(&self, agent: &str) -> Option<SystemTime> {
        self.agents.get(agent).and_then(|(_, since)| *since)
    }

    fn call_event_data(&self, id: CallId, event: &CallEvent) -> Value {
        let call = self.call_id(id);
        let (name, mut fields) = match event {
            CallEvent::Arrived {
                trunk,
                sip_call_id,
                caller,
                callee,
            } => (
                "arrived",
                json!({"trunk": trunk, "sip_call_id": sip_call_id, "caller": caller, "callee": callee}),
            ),
            CallEvent::Dialled {
                trunk,
                sip_call_id,
                agent,
                caller_id,
                callee,
            } => (
                "dialled",
                json!({"trunk": trunk, "sip_call_id": sip_call_id, "agent": agent, "caller": caller_id, "callee": callee}),
            ),
            CallEvent::Ringing { early_media } => {
                ("ringing", json!({ "early_media": early_media }))
            }
            CallEvent::Answered => ("answered", json!({})),
            CallEvent::Transferred { by, to } => ("transferred", json!({"by": by, "to": to})),
            CallEvent::TransferDialled {
                by,
                to,
                trunk,
                sip_call_id,
                attended,
            } => (
                "transfer_dialled",
                json!({"by": by, "to": to, "trunk": trunk, "sip_call_id": sip_call_id, "attended": attended}),
            ),
            CallEvent::TransferLegEnded { to, unanswered } => (
                "transfer_leg_ended",
                json!({"to": to, "unanswered": unanswered.map(|u| u.code())}),
            ),
            CallEvent::EnteredMenu { menu } => ("entered_menu", json!({ "menu": menu })),
            CallEvent::LeftIvr { digits, to } => {
                ("left_ivr", json!({"digits": digits, "to": to.to_string()}))
            }
            CallEvent::Digits { side, digits } => (
                "digits",
                json!({"side": side.to_string(), "digits": digits}),
            ),
            CallEvent::Queued { queue, position } => {
                ("queued", json!({"queue": queue, "position": position}))
            }
            CallEvent::QueueRefused { queue, reason } => (
                "queue_refused",
                json!({"queue": queue, "reason": reason.to_string()}),
            ),
            CallEvent::Offered { agent } => ("offered", json!({ "agent": agent })),
            CallEvent::AgentAnswered { agent } => ("agent_answered", json!({ "agent": agent })),
            CallEvent::Announced { prompts } => ("announced", json!({ "prompts": prompts })),
            CallEvent::Held { on } => ("held", json!({ "on": on })),
            CallEvent::CarrierHeld { on } => ("carrier_held", json!({ "on": on })),
            CallEvent::AgentAudio { flowing } => ("agent_audio", json!({ "flowing": flowing })),
            CallEvent::AgentLink {
                poor,
                caller_missed,
                agent_missed,
            } => (
                "agent_link",
                json!({
                    "poor": poor,
                    "caller_missed_ms": millis(*caller_missed),
                    "agent_missed_ms": millis(*agent_missed),
                }),
            ),
            CallEvent::Supervised { supervisor, mode } => (
                "supervised",
                json!({"supervisor": supervisor, "mode": mode}),
            ),
            CallEvent::HelpRequested {
                agent,
                note,
                supervisors,
            } => (
                "help_requested",
                json!({"agent": agent, "note": note, "supervisors": supervisors}),
            ),
            CallEvent::Recording { state, by } => {
                ("recording", json!({"state": state.code(), "by": by}))
            }
            CallEvent::Recorded {
                duration,
                paused,
                started_by,
            } => (
                "recorded",
                json!({
                    "file": recording_file(&call),
                    "duration_ms": millis(*duration),
                    "paused": paused_data(paused),
                    "started_by": started_by,
                }),
            ),
            CallEvent::AgentLost => ("agent_lost", json!({})),
            CallEvent::AgentResumed => ("agent_resumed", json!({})),
            CallEvent::AgentMoved => ("agent_moved", json!({})),
            CallEvent::Requeued => ("requeued", json!({})),
            CallEvent::Overflowed { queue, to } => {
                ("overflowed", json!({"queue": queue, "to": to.to_string()}))
            }
            CallEvent::Ended {
                side,
                cause,
                answered,
                quality,
            } => (
                "ended",
                json!({
                    "side": side.to_string(),
                    "cause": cause.code(),
                    "detail": cause.to_string(),
                    "answered": answered,
                    "quality": quality_data(quality),
                }),
            ),
        };
        let map = fields.as_object_mut().expect("built as an object above");
        map.insert("call".into(), Value::String(call));
        map.insert("event".into(), Value::String(name.into()));
        fields
    }

    fn agent_event_data(&self, agent: &str, event: &AgentEvent) -> Value {
        match event {
            AgentEvent::LoggedIn { resumed } => {
                json!({"agent": agent, "event": "logged_in", "resumed": resumed})
            }
            AgentEvent::StateChanged { state, reason } => {
                let call = match state {
                    AgentState::Ringing { call } | AgentState::Talking { call } => {
                        Some(self.call_id(call.0))
                    }
                    _ => None,
                };
                let mut data =
                    json!({"agent": agent, "event": "state", "state": state.name(), "call": call});
                if let Some(reason) = reason {
                    data["reason"] = json!(reason);
                }
                data
            }
            AgentEvent::Disposition { call, code } => json!({
                "agent": agent,
                "event": "disposition",
                "call": self.call_id(call.0),
                "code": code,
            }),
            AgentEvent::DialRefused {
                number,
                reason,
                message,
            } => json!({
                "agent": agent,
                "event": "dial_refused",
                "number": number,
                "reason": reason,
                "message": message,
            }),
            AgentEvent::Chat { to, call, text } => json!({
                "agent": agent,
                "event": "chat",
                "to": to,
                "call": call.map(|c| self.call_id(c.0)),
                "text": text,
            }),
            AgentEvent::Refused { what, why } => json!({
                "agent": agent,
                "event": "refused",
                "what": what,
                "why": why,
            }),
            AgentEvent::ConnectionLost => json!({"agent": agent, "event": "connection_lost"}),
            AgentEvent::ConnectionMoved => json!({"agent": agent, "event": "connection_moved"}),
            AgentEvent::LoggedOut { reason } => json!({
                "agent": agent,
                "event": "logged_out",
                "reason": match reason {
                    LogoutReason::Gone => "connection_lost",
                    LogoutReason::Replaced => "replaced",
                    LogoutReason::Revoked => "revoked",
                    LogoutReason::Logout => "logout",
                    LogoutReason::Shutdown => "shutdown",
                },
            }),
        }
    }
}

fn stop_talk(call: &mut OpenCall, at: SystemTime) {
    if let Some(since) = call.hold_since.take() {
        call.cdr.hold_ms += millis(elapsed(since, at));
    }
    if let Some(since) = call.talk_since.take() {
        call.cdr.talk_ms += millis(elapsed(since, at));
    }
}

fn cdr_output(at: SystemTime, cdr: &Cdr) -> Output {
    Output {
        at,
        kind: RecordType::Cdr,
        // Infallible: strings, numbers and JSON values.
        data: serde_json::to_value(cdr).expect("a CDR serialises"),
    }
}

fn quality_data(q: &CallQuality) -> Value {
    json!({
        "carrier": carrier_data(&q.carrier),
        "agent": q.agent.as_ref().map(agent_data),
        "frame_delay_max_ms": millis(q.frame_delay_max),
    })
}

fn carrier_data(c: &LegQuality) -> Value {
    json!({
        "packets_received": c.packets_received,
        "packets_sent": c.packets_sent,
        "packets_lost": c.packets_lost,
        "packets_rejected": c.packets_rejected,
        "concealed_frames": c.concealed_frames,
        "loss_runs": c.loss.bursts,
        "jitter_ms": round1(c.jitter_ms),
        "buffer_ms": c.jitter_buffer_delay.map(millis),
        "buffer_p95_ms": c.jitter_buffer_delay_p95.map(millis),
        "rtt_ms": c.round_trip_ms.map(round1),
        "mos": c.estimated_mos().map(round2),
    })
}

fn agent_data(a: &AgentLegQuality) -> Value {
    json!({
        "packets_received": a.packets,
        "packets_sent": a.packets_sent,
        "packets_lost": a.lost,
        "late": a.late,
        "concealed_frames": a.concealed_frames,
        "rebuilt_by_fec": a.recovered_by_fec,
        "rebuilt_by_copies": a.recovered_by_redundancy,
        "loss_runs": a.loss.bursts,
        "jitter_ms": round1(a.jitter_ms),
        "buffer_ms": a.jitter_buffer_delay.map(millis),
        "buffer_p95_ms": a.jitter_buffer_delay_p95.map(millis),
        "stretched_ms": millis(a.accelerated + a.expanded),
        "rtt_ms": a.round_trip_ms.map(round1),
        "mos": a.estimated_mos().map(round2),
    })
}

fn elapsed(since: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(since).unwrap_or_default()
}

fn millis(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests;
