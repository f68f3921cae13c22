//! Random sequences of everything the shell can do, checked against the promises the ACD makes:
//! no panic, one offer per agent and per caller, every offer ends exactly once, and every caller
//! who entered a queue leaves it (connected, overflowed or gone) once agents stop answering.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

const AGENTS: [&str; 4] = ["ann", "ben", "cai", "dee"];
const SKILLS: [&str; 2] = ["a", "b"];
const QUEUES: [&str; 3] = ["open", "a", "ab"];

#[derive(Debug, Clone)]
enum Op {
    Login {
        agent: usize,
        skills: u8,
    },
    Available(usize),
    Away(usize),
    Logout(usize),
    Enqueue {
        call: u64,
        queue: usize,
    },
    /// The agent the call is ringing at answers (if it is ringing at all).
    AnswerRinging(u64),
    DeclineRinging(u64),
    /// Any agent answers any call: mostly stale or bogus answers that must be refused.
    AnswerAny {
        call: u64,
        agent: usize,
    },
    End(u64),
    Requeue(u64),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let agent = 0..AGENTS.len();
    let call = 0..10u64;
    prop_oneof![
        (agent.clone(), 0..4u8).prop_map(|(agent, skills)| Op::Login { agent, skills }),
        agent.clone().prop_map(Op::Available),
        agent.clone().prop_map(Op::Away),
        agent.clone().prop_map(Op::Logout),
        (call.clone(), 0..QUEUES.len() + 1).prop_map(|(call, queue)| Op::Enqueue { call, queue }),
        call.clone().prop_map(Op::AnswerRinging),
        call.clone().prop_map(Op::DeclineRinging),
        (call.clone(), agent).prop_map(|(call, agent)| Op::AnswerAny { call, agent }),
        call.clone().prop_map(Op::End),
        call.prop_map(Op::Requeue),
        prop_oneof![0..2_000u64, 0..40_000u64].prop_map(Op::Advance),
    ]
}

fn queues() -> Vec<(&'static str, QueueConfig)> {
    vec![
        ("open", queue(&[])),
        (
            "a",
            QueueConfig {
                ring_timeout_ms: 4_000,
                wrap_up_ms: 0,
                max_wait_ms: 30_000,
                first_announce_ms: 0,
                announce_every_ms: 10_000,
                ..queue(&["a"])
            },
        ),
        (
            "ab",
            // Zeros that validation refuses must still not hang or panic the core.
            QueueConfig {
                ring_timeout_ms: 0,
                max_wait_ms: 0,
                announce_every_ms: 0,
                ..queue(&["a", "b"])
            },
        ),
    ]
}

/// What the event stream and the call results say, checked as they arrive.
#[derive(Default)]
struct Model {
    ringing_by_agent: BTreeMap<String, CallRef>,
    ringing_by_call: BTreeMap<CallRef, String>,
    queued: BTreeSet<CallRef>,
    connected: BTreeSet<CallRef>,
    seen: usize,
}

impl Model {
    fn absorb(&mut self, h: &Harness) {
        for (_, event) in &h.log[self.seen..] {
            match event {
                AcdEvent::Offer { call, agent, .. } => {
                    assert!(self.queued.contains(call), "offer of unqueued {call}");
                    let again = self.ringing_by_agent.insert(agent.clone(), *call);
                    assert_eq!(again, None, "{agent} got a second offer");
                    let again = self.ringing_by_call.insert(*call, agent.clone());
                    assert_eq!(again, None, "call {call} got a second offer");
                }
                AcdEvent::OfferWithdrawn { call, agent, .. } => self.offer_ended(*call, agent),
                AcdEvent::Announce { call, .. } => {
                    assert!(
                        self.queued.contains(call),
                        "announcement to unqueued {call}"
                    );
                    assert!(
                        !self.ringing_by_call.contains_key(call),
                        "announcement over a ringing offer"
                    );
                }
                AcdEvent::Overflow { call, .. } => {
                    assert!(self.queued.remove(call), "overflow of unqueued {call}");
                    assert!(
                        !self.ringing_by_call.contains_key(call),
                        "overflow while ringing"
                    );
                }
                AcdEvent::CallerRequeued { call, .. } => {
                    assert!(self.connected.remove(call), "requeue of unconnected {call}");
                    self.queued.insert(*call);
                }
                AcdEvent::AgentStateChanged { .. } => {}
            }
        }
        self.seen = h.log.len();
    }

    fn offer_ended(&mut self, call: CallRef, agent: &str) {
        assert_eq!(self.ringing_by_call.remove(&call).as_deref(), Some(agent));
        assert_eq!(self.ringing_by_agent.remove(agent), Some(call));
    }

    fn check_against(&self, h: &Harness) {
        h.acd.assert_consistent();
        for call in (0..10).map(CallRef) {
            let state = h.acd.caller_state(call);
            if self.connected.contains(&call) {
                assert!(
                    matches!(state, Some(CallerState::Connected { .. })),
                    "{call}"
                );
            } else if let Some(agent) = self.ringing_by_call.get(&call) {
                assert!(
                    matches!(state, Some(CallerState::Ringing { agent: a, .. }) if &a == agent)
                );
            } else if self.queued.contains(&call) {
                assert!(matches!(state, Some(CallerState::Waiting { .. })), "{call}");
            } else {
                assert_eq!(state, None, "{call} should be gone");
            }
        }
        if let Some(next) = h.acd.poll_timeout() {
            assert!(next > h.now, "a due timer was left unfired");
        }
    }
}

fn apply(h: &mut Harness, model: &mut Model, op: &Op) {
    let now = h.now;
    match *op {
        Op::Login { agent, skills } => {
            let skills: Vec<String> = SKILLS
                .iter()
                .enumerate()
                .filter(|(bit, _)| skills & (1 << bit) != 0)
                .map(|(_, skill)| skill.to_string())
                .collect();
            h.acd.agent_login(now, AGENTS[agent], &skills);
        }
        Op::Available(agent) => _ = h.acd.agent_available(now, AGENTS[agent]),
        Op::Away(agent) => _ = h.acd.agent_away(now, AGENTS[agent]),
        Op::Logout(agent) => _ = h.acd.agent_logout(now, AGENTS[agent]),
        Op::Enqueue { call, queue } => {
            let queue = QUEUES.get(queue).copied().unwrap_or("no-such-queue");
            let known =
                model.queued.contains(&CallRef(call)) || model.connected.contains(&CallRef(call));
            match h.acd.enqueue(now, CallRef(call), queue) {
                Ok(()) => {
                    assert!(!known);
                    model.queued.insert(CallRef(call));
                }
                Err(AcdError::CallAlreadyQueued(_)) => assert!(known),
                Err(AcdError::UnknownQueue(_)) => assert_eq!(queue, "no-such-queue"),
                Err(error) => panic!("enqueue: {error}"),
            }
        }
        Op::AnswerRinging(call) | Op::DeclineRinging(call) | Op::AnswerAny { call, .. } => {
            let agent = match *op {
                Op::AnswerAny { agent, .. } => AGENTS[agent].to_string(),
                _ => match model.ringing_by_call.get(&CallRef(call)) {
                    Some(agent) => agent.clone(),
                    None => return,
                },
            };
            let was_offered = model.ringing_by_call.get(&CallRef(call)) == Some(&agent);
            let result = if matches!(op, Op::DeclineRinging(_)) {
                h.acd.offer_rejected(now, CallRef(call), &agent)
            } else {
                h.acd.offer_accepted(now, CallRef(call), &agent)
            };
            assert_eq!(result.is_ok(), was_offered, "{op:?}: {result:?}");
            if result.is_ok() && !matches!(op, Op::DeclineRinging(_)) {
                model.offer_ended(CallRef(call), &agent);
                model.queued.remove(&CallRef(call));
                model.connected.insert(CallRef(call));
            }
        }
        Op::End(call) => {
            let known =
                model.queued.contains(&CallRef(call)) || model.connected.contains(&CallRef(call));
            assert_eq!(h.acd.call_ended(now, CallRef(call)).is_ok(), known);
            h.collect();
            model.absorb(h);
            model.queued.remove(&CallRef(call));
            model.connected.remove(&CallRef(call));
        }
        Op::Requeue(call) => {
            let connected = model.connected.contains(&CallRef(call));
            assert_eq!(h.acd.requeue_at_head(now, CallRef(call)).is_ok(), connected);
        }
        Op::Advance(ms) => h.advance(Duration::from_millis(ms)),
    }
    h.collect();
    model.absorb(h);
    // As a shell does after every input: fire whatever became due at once (an announcement
    // with first_announce_ms = 0, an offer with a 1 ms ring timeout).
    h.advance(Duration::ZERO);
    model.absorb(h);
    model.check_against(h);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_operations_keep_every_promise(ops in proptest::collection::vec(op(), 1..80)) {
        let mut h = Harness::new(&queues());
        let mut model = Model::default();
        for op in &ops {
            apply(&mut h, &mut model, op);
        }
        // Connected callers hang up, every agent leaves: whoever still waits must overflow.
        for call in model.connected.clone() {
            apply(&mut h, &mut model, &Op::End(call.0));
        }
        for agent in 0..AGENTS.len() {
            apply(&mut h, &mut model, &Op::Logout(agent));
        }
        h.advance(Duration::from_secs(2 * 24 * 60 * 60));
        model.absorb(&h);
        model.check_against(&h);
        prop_assert!(model.queued.is_empty(), "still queued: {:?}", model.queued);
        prop_assert!(model.ringing_by_agent.is_empty());
        prop_assert_eq!(h.acd.poll_timeout(), None);
        let snapshot = h.acd.snapshot(h.now);
        prop_assert!(snapshot.agents.is_empty());
        prop_assert!(snapshot.queues.values().all(|q| q.waiting == 0 && q.connected == 0));
    }
}
