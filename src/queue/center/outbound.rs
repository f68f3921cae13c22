//! Calls agents place, on the center's side: a `dial` is planned (dial plan, trunk, caller id),
//! checked against the fraud limits, and handed to the call side as [`Output::Place`]; the
//! call's progress and end come back here and go to the agent. Every refusal is an event
//! (journal, metrics) with its reason.
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{call_id, Call, CallEntry, Center, Output};
use crate::agent::protocol::{self as proto, DialFailure, FlowId, GatewayMessage};
use crate::agent::sessions::ConnId;
use crate::call::leg::Progress;
use crate::call::outbound::{self, DialError, Limits, OutboundConfig, Plan};
use crate::events::{AgentEvent, Unanswered};
use crate::queue::{AgentState, CallRef as AcdCall};
use crate::sip::trunk::TrunkConfig;
use crate::sip::ua::CallIds;

/// Callers of recent calls, so an agent can call one back by the call's id.
const RECENT_CALLERS: usize = 10_000;

/// What outbound calls need from the configuration; swapped whole on reload.
#[derive(Debug, Default, Clone)]
pub struct OutboundSettings {
    pub config: Option<OutboundConfig>,
    pub trunks: Vec<TrunkConfig>,
    pub spans: Vec<crate::isdn::config::E1Config>,
    /// Per agent: may it dial, and its caller id.
    pub agents: HashMap<String, (bool, Option<String>)>,
}

impl OutboundSettings {
    pub fn from_config(config: &crate::config::Config) -> Self {
        OutboundSettings {
            config: config.outbound.clone(),
            trunks: config.trunks.clone(),
            spans: config.e1.clone(),
            agents: config
                .agent
                .iter()
                .map(|a| (a.id.clone(), (a.outbound, a.caller_id.clone())))
                .collect(),
        }
    }
}

/// A call for the call side to place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceCall {
    pub call: Call,
    pub agent: String,
    pub plan: Plan,
    pub ring_timeout: Duration,
}

#[derive(Debug)]
struct Placed {
    agent: String,
    queue: Option<String>,
    answered: bool,
}

/// The center's outbound state.
#[derive(Debug, Default)]
pub struct Outbound {
    settings: Arc<OutboundSettings>,
    limits: Limits,
    call_ids: CallIds,
    /// The UTC day (days since the epoch), for the daily minutes.
    day: u64,
    placed: HashMap<Call, Placed>,
    recent: HashMap<Call, (String, String)>,
    recent_order: VecDeque<Call>,
}

impl Center {
    /// Where call references come from (shared with the SIP side), and the outbound settings.
    pub fn set_outbound(&mut self, call_ids: CallIds, settings: OutboundSettings) {
        self.outbound.call_ids = call_ids;
        self.outbound.settings = Arc::new(settings);
    }

    /// New outbound settings (a reload); calls up keep going.
    pub fn set_outbound_settings(&mut self, settings: OutboundSettings) {
        self.outbound.settings = Arc::new(settings);
    }

    /// Today's answered outbound seconds, for the shell to keep across restarts.
    pub fn outbound_usage(&self) -> crate::call::outbound::limits::DailyUsage {
        self.outbound.limits.daily()
    }

    /// What an earlier run kept of today's outbound minutes.
    pub fn restore_outbound_usage(
        &mut self,
        today: u64,
        usage: crate::call::outbound::limits::DailyUsage,
    ) {
        self.outbound.day = today;
        self.outbound.limits.restore(today, usage);
    }

    /// Today, as days since the Unix epoch (UTC): the shell passes the wall clock's.
    pub fn set_day(&mut self, day: u64) {
        self.outbound.day = day;
    }

    /// Remembers who called on `call` (in `queue`), for a callback.
    pub(super) fn remember_caller(&mut self, call: Call, caller: &str, queue: &str) {
        let o = &mut self.outbound;
        if caller.is_empty() || o.recent.contains_key(&call) {
            return;
        }
        if o.recent_order.len() == RECENT_CALLERS {
            if let Some(old) = o.recent_order.pop_front() {
                o.recent.remove(&old);
            }
        }
        o.recent.insert(call, (caller.to_owned(), queue.to_owned()));
        o.recent_order.push_back(call);
    }

    /// `dial` from `agent` on `conn`.
    pub(super) fn dial(
        &mut self,
        now: Instant,
        conn: ConnId,
        agent: &str,
        d: proto::from_agent::Dial,
    ) {
        let (typed, queue) = match (&d.number, &d.callback) {
            (Some(number), _) => (number.clone(), d.queue.clone()),
            (None, Some(id)) => {
                let original = super::agents::parse_call_id(id)
                    .and_then(|call| self.outbound.recent.get(&call).cloned());
                match original {
                    Some((caller, queue)) => (caller, d.queue.clone().or(Some(queue))),
                    None => {
                        let message = format!("no caller is known for call {}", id.as_str());
                        return self.refuse_dial(
                            conn,
                            agent,
                            id.as_str(),
                            DialFailure::InvalidNumber,
                            "invalid_number",
                            message,
                        );
                    }
                }
            }
            // `validate` refuses a dial with neither before it gets here.
            (None, None) => return,
        };
        let busy = !matches!(
            self.acd.agent_state(agent),
            Some(AgentState::Away | AgentState::Available | AgentState::WrapUp { .. })
        );
        if busy {
            return self.refuse_dial(
                conn,
                agent,
                &typed,
                DialFailure::NotPermitted,
                "agent_busy",
                format!("agent {agent} is ringing or on a call"),
            );
        }
        let admitted = self.admit_call_out(now, agent, &typed, queue.as_deref());
        let (call, plan, ring_timeout) = match admitted {
            Ok(admitted) => admitted,
            Err(e) => {
                let failure = match &e {
                    DialError::NotConfigured | DialError::NotPermitted(_) => {
                        DialFailure::NotPermitted
                    }
                    DialError::Number(_) => DialFailure::InvalidNumber,
                    DialError::NoRoute(_) => DialFailure::NoRoute,
                    DialError::Limit(_) => DialFailure::Limit,
                };
                return self.refuse_dial(conn, agent, &typed, failure, e.kind(), e.to_string());
            }
        };
        if let Err(e) = self.acd.agent_dialing(now, agent, AcdCall(call)) {
            self.outbound.limits.ended(now, self.outbound.day, call);
            return self.refuse_dial(
                conn,
                agent,
                &typed,
                DialFailure::NotPermitted,
                "agent_busy",
                e.to_string(),
            );
        }
        let flow = self.next_flow;
        self.next_flow += 1;
        self.calls.insert(
            call,
            CallEntry {
                queue: queue.clone().unwrap_or_else(|| "outbound".into()),
                caller: plan.number.to_string(),
                flow,
                agent: Some((agent.to_owned(), Some(conn))),
                held: false,
                agent_view: None,
                transfer: None,
                trunk: String::new(),
                recording: crate::events::RecordingState::Off,
            },
        );
        self.outbound.placed.insert(
            call,
            Placed {
                agent: agent.to_owned(),
                queue,
                answered: false,
            },
        );
        self.out.push_back(Output::Route { conn, flow, call });
        self.send_to_agent(
            conn,
            GatewayMessage::Dialing(proto::from_gateway::Dialing {
                call: call_id(call),
                number: plan.number.to_string(),
                flow: FlowId(flow),
            }),
        );
        self.out.push_back(Output::Place(Box::new(PlaceCall {
            call,
            agent: agent.to_owned(),
            plan,
            ring_timeout,
        })));
        self.drain_acd(now);
    }

    /// A call out by `agent` to `typed` (for `queue`, whose caller id it shows): the agent's
    /// permission, the dial plan, a trunk, and the fraud limits, which count it from now on
    /// under the reference returned.
    pub(super) fn admit_call_out(
        &mut self,
        now: Instant,
        agent: &str,
        typed: &str,
        queue: Option<&str>,
    ) -> Result<(Call, Plan, Duration), DialError> {
        let agent_caller_id = self.may_dial(agent)?;
        let settings = self.outbound.settings.clone();
        let queue_caller_id = queue
            .and_then(|q| self.acd.queue_config(q))
            .and_then(|q| q.caller_id.clone());
        let caller_id = queue_caller_id.or(agent_caller_id);
        let plan = outbound::plan(
            typed,
            settings.config.as_ref(),
            &settings.trunks,
            &settings.spans,
            caller_id.as_deref(),
        )?;
        let config = settings.config.as_ref().ok_or(DialError::NotConfigured)?;
        let trunk = settings
            .trunks
            .iter()
            .find(|t| t.name == plan.trunk)
            .and_then(|t| t.outbound.as_ref())
            .map(|o| o.limits())
            .or_else(|| {
                let span = settings.spans.iter().find(|s| s.name == plan.trunk)?;
                span.outbound.as_ref().map(|o| o.limits())
            })
            .ok_or_else(|| DialError::NoRoute(plan.number.to_string()))?;
        let call = self.outbound.call_ids.next();
        let day = self.outbound.day;
        self.outbound
            .limits
            .admit(now, day, call, agent, config, &plan.trunk, trunk)?;
        Ok((call, plan, config.ring_timeout()))
    }

    /// Whether `agent` may call out; its own caller id if it has one.
    pub(super) fn may_dial(&self, agent: &str) -> Result<Option<String>, DialError> {
        match self.outbound.settings.agents.get(agent) {
            Some((true, caller_id)) => Ok(caller_id.clone()),
            _ => Err(DialError::NotPermitted(agent.to_owned())),
        }
    }

    /// A call out counted by the limits was answered: its minutes run from now.
    pub(super) fn outbound_answered(&mut self, now: Instant, call: Call) {
        self.outbound.limits.answered(now, call);
    }

    /// A call out counted by the limits is over.
    pub(super) fn outbound_ended(&mut self, now: Instant, call: Call) {
        let day = self.outbound.day;
        self.outbound.limits.ended(now, day, call);
    }

    fn refuse_dial(
        &mut self,
        conn: ConnId,
        agent: &str,
        number: &str,
        reason: DialFailure,
        code: &str,
        message: String,
    ) {
        tracing::info!(%agent, %number, reason = code, %message, "dial refused");
        self.agent_event(
            agent,
            AgentEvent::DialRefused {
                number: number.to_owned(),
                reason: code.to_owned(),
                message: message.clone(),
            },
        );
        self.send_to_agent(
            conn,
            GatewayMessage::DialFailed(proto::from_gateway::DialFailed {
                call: None,
                reason,
                message,
            }),
        );
    }

    /// A placed call rings, plays early media, or is answered.
    pub fn placed_progress(&mut self, now: Instant, call: Call, progress: Progress) {
        let Some(placed) = self.outbound.placed.get_mut(&call) else {
            return;
        };
        let conn = self
            .calls
            .get(&call)
            .and_then(|c| c.agent.as_ref())
            .and_then(|(_, c)| *c);
        let msg = match progress {
            Progress::Ringing | Progress::EarlyMedia => {
                GatewayMessage::Progress(proto::from_gateway::Progress {
                    call: call_id(call),
                    early_media: progress == Progress::EarlyMedia,
                })
            }
            Progress::Answered => {
                placed.answered = true;
                self.outbound.limits.answered(now, call);
                let Some(entry) = self.calls.get(&call) else {
                    return;
                };
                GatewayMessage::Answered(proto::from_gateway::Answered {
                    call: call_id(call),
                    flow: FlowId(entry.flow),
                })
            }
        };
        if let Some(conn) = conn {
            self.send_to_agent(conn, msg);
        }
    }

    /// A placed call is over: unanswered (and why), or after a conversation the callee (or
    /// the agent) ended.
    pub fn placed_ended(&mut self, now: Instant, call: Call, unanswered: Option<Unanswered>) {
        let day = self.outbound.day;
        self.outbound.limits.ended(now, day, call);
        let Some(placed) = self.outbound.placed.get(&call) else {
            return;
        };
        let answered = placed.answered;
        let agent = placed.agent.clone();
        let Some(entry) = self.calls.get(&call) else {
            // The agent hung up first: the center let the call go then.
            self.outbound.placed.remove(&call);
            return;
        };
        match unanswered {
            Some(why) if !answered => {
                let conn = entry.agent.as_ref().and_then(|(_, c)| *c);
                let flow = entry.flow;
                self.calls.remove(&call);
                self.acd
                    .placed_call_ended(now, &agent, AcdCall(call), Duration::ZERO);
                if let Some(conn) = conn {
                    self.out.push_back(Output::Unroute { conn, flow });
                    self.send_to_agent(
                        conn,
                        GatewayMessage::DialFailed(proto::from_gateway::DialFailed {
                            call: Some(call_id(call)),
                            reason: failure_of(why),
                            message: why.to_string(),
                        }),
                    );
                }
                self.drain_acd(now);
            }
            _ => self.end_call(now, call, proto::EndReason::CallerHungUp),
        }
        self.outbound.placed.remove(&call);
    }

    /// Ends the placed call `call` for the ACD (the agent goes to wrap-up); true if it was one.
    pub(super) fn end_placed_for_acd(&mut self, now: Instant, call: Call) -> bool {
        let Some(placed) = self.outbound.placed.get(&call) else {
            return false;
        };
        let wrap_up = match (&placed.queue, placed.answered) {
            (Some(queue), true) => self
                .acd
                .queue_config(queue)
                .map(|q| Duration::from_millis(q.wrap_up_ms))
                .unwrap_or_default(),
            _ => Duration::ZERO,
        };
        let agent = placed.agent.clone();
        self.acd
            .placed_call_ended(now, &agent, AcdCall(call), wrap_up);
        true
    }

    pub(super) fn outbound_settings(&self) -> Arc<OutboundSettings> {
        self.outbound.settings.clone()
    }

    /// Whether `call` is one an agent placed.
    pub(super) fn is_placed(&self, call: Call) -> bool {
        self.outbound.placed.contains_key(&call)
    }

    /// The placed calls `agent` is on, for when its session ends.
    pub(super) fn placed_calls_of(&self, agent: &str) -> Vec<Call> {
        self.outbound
            .placed
            .iter()
            .filter(|(_, p)| p.agent == agent)
            .map(|(c, _)| *c)
            .collect()
    }
}

pub(super) fn failure_of(why: Unanswered) -> DialFailure {
    match why {
        Unanswered::Busy => DialFailure::Busy,
        Unanswered::NoAnswer => DialFailure::NoAnswer,
        Unanswered::Rejected => DialFailure::Rejected,
        Unanswered::NumberUnknown => DialFailure::NumberUnknown,
        Unanswered::Unreachable => DialFailure::Unreachable,
        Unanswered::Cancelled => DialFailure::Cancelled,
    }
}

#[cfg(test)]
mod tests;
