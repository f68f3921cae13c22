//! The wallboard against scripted scenarios: calls with known waits, answers, abandons, talks
//! and wrap-ups go through as bus events; the figures are computed again here, by hand from the
//! script, and must match.
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::*;
use crate::events::{CallQuality, EndCause, Side};
use crate::queue::{AgentState, CallRef};

/// 10:00 UTC on a day well inside the epoch.
fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(20_000 * 86_400 + 10 * 3600)
}

fn at(s: i64) -> SystemTime {
    if s >= 0 {
        t0() + Duration::from_secs(s as u64)
    } else {
        t0() - Duration::from_secs((-s) as u64)
    }
}

/// One caller of the script: when it queued, and how it left.
#[derive(Clone, Copy)]
enum Fate {
    /// Answered by agent `agent` at `answer`, talked until `end`, the agent wrapped up `wrap`
    /// seconds after.
    Answered {
        agent: &'static str,
        answer: i64,
        end: i64,
        wrap: i64,
    },
    Abandoned {
        at: i64,
    },
    Waiting,
}

struct Script {
    board: Wallboard,
    events: Vec<Event>,
}

impl Script {
    fn new() -> Self {
        let mut config = crate::config::embedded(std::path::Path::new(env!("CARGO_MANIFEST_DIR")))
            .expect("the example config");
        let queue = config.queues.get_mut("support").expect("support");
        queue.service_level_ms = 20_000;
        let template = config.agent[0].clone();
        config.agent = ["a1", "a2", "a3", "sam"]
            .into_iter()
            .map(|id| {
                let mut a = template.clone();
                a.id = id.into();
                a.skills = vec!["support".into()];
                a
            })
            .collect();
        config.agent[3].supervises = vec!["support".into()];
        Script {
            board: Wallboard::new(&config),
            events: Vec::new(),
        }
    }

    fn call(&mut self, at: SystemTime, call: CallId, event: CallEvent) {
        self.events.push(Event {
            at,
            what: EventKind::Call { call, event },
        });
    }

    fn agent(&mut self, at: SystemTime, agent: &str, event: AgentEvent) {
        self.events.push(Event {
            at,
            what: EventKind::Agent {
                agent: agent.into(),
                event,
            },
        });
    }

    fn state(&mut self, t: i64, agent: &str, state: AgentState) {
        self.agent(
            at(t),
            agent,
            AgentEvent::StateChanged {
                state,
                reason: None,
            },
        );
    }

    fn caller(&mut self, id: CallId, queued: i64, fate: Fate) {
        self.call(
            at(queued),
            id,
            CallEvent::Queued {
                queue: "support".into(),
                position: 1,
            },
        );
        let ended = |side| CallEvent::Ended {
            side,
            cause: EndCause::CallerHungUp,
            answered: true,
            quality: Box::new(CallQuality::default()),
        };
        match fate {
            Fate::Answered {
                agent,
                answer,
                end,
                wrap,
            } => {
                self.state(answer, agent, AgentState::Talking { call: CallRef(id) });
                self.call(
                    at(answer),
                    id,
                    CallEvent::AgentAnswered {
                        agent: agent.into(),
                    },
                );
                self.call(at(end), id, ended(Side::Caller));
                let until = Instant::now();
                self.state(end, agent, AgentState::WrapUp { until });
                self.state(end + wrap, agent, AgentState::Available);
            }
            Fate::Abandoned { at: t } => self.call(at(t), id, ended(Side::Caller)),
            Fate::Waiting => {}
        }
    }

    fn run(&mut self) {
        self.events.sort_by_key(|e| e.at);
        for e in &self.events {
            self.board.handle(e);
        }
    }
}

#[test]
fn the_figures_match_the_script_computed_by_hand() {
    let mut s = Script::new();
    for agent in ["a1", "a2", "a3"] {
        s.agent(at(-3600), agent, AgentEvent::LoggedIn { resumed: false });
        s.state(-3599, agent, AgentState::Available);
    }
    s.agent(at(-3600), "sam", AgentEvent::LoggedIn { resumed: false });
    // (queued at, fate): waits 10 s, 30 s, abandoned after 20 s, one answered 20 minutes
    // before (in the day, not in the last 15 minutes), one still waiting.
    let script = [
        (
            0,
            Fate::Answered {
                agent: "a1",
                answer: 10,
                end: 70,
                wrap: 10,
            },
        ),
        (
            5,
            Fate::Answered {
                agent: "a2",
                answer: 35,
                end: 95,
                wrap: 5,
            },
        ),
        (20, Fate::Abandoned { at: 40 }),
        (
            -1300,
            Fate::Answered {
                agent: "a3",
                answer: -1295,
                end: -1195,
                wrap: 15,
            },
        ),
        (100, Fate::Waiting),
    ];
    for (i, (queued, fate)) in script.iter().enumerate() {
        s.caller(i as CallId + 1, *queued, *fate);
    }
    s.state(105, "a3", AgentState::Away);
    s.run();
    let now = at(130);
    let board = &s.board.view(now)[..];
    let q = board.iter().find(|q| q.queue == "support").unwrap();

    // By hand, from the script above.
    let level = 20;
    let answered: Vec<(i64, i64, i64, i64)> = script
        .iter()
        .filter_map(|(queued, f)| match f {
            Fate::Answered {
                answer, end, wrap, ..
            } => Some((*queued, *answer, *end, *wrap)),
            _ => None,
        })
        .collect();
    let abandoned = script
        .iter()
        .filter(|(_, f)| matches!(f, Fate::Abandoned { .. }))
        .count() as f64;
    let within = |list: &[(i64, i64, i64, i64)]| {
        list.iter().filter(|(q, a, _, _)| a - q <= level).count() as f64
    };
    let day_sl = within(&answered) * 100.0 / (answered.len() as f64 + abandoned);
    let recent: Vec<_> = answered
        .iter()
        .copied()
        .filter(|(_, a, _, _)| 130 - a <= 15 * 60)
        .collect();
    let recent_sl = within(&recent) * 100.0 / (recent.len() as f64 + abandoned);
    let asa = answered.iter().map(|(q, a, _, _)| a - q).sum::<i64>() as f64 / answered.len() as f64;
    let aht =
        answered.iter().map(|(_, a, e, w)| (e - a) + w).sum::<i64>() as f64 / answered.len() as f64;
    let abandon = abandoned * 100.0 / (answered.len() as f64 + abandoned);
    let r1 = |x: f64| (x * 10.0).round() / 10.0;

    assert_eq!(q.waiting, 1);
    assert_eq!(q.longest_wait_s, 30.0);
    assert_eq!(q.service_level_s, 20.0);
    assert_eq!(q.service_level_15m_pct, Some(r1(recent_sl)), "{q:?}");
    assert_eq!(q.service_level_day_pct, Some(r1(day_sl)), "{q:?}");
    assert_eq!(q.asa_s, Some(r1(asa)), "{q:?}");
    assert_eq!(q.aht_s, Some(r1(aht)), "{q:?}");
    assert_eq!(q.abandon_rate_pct, Some(r1(abandon)), "{q:?}");
    assert_eq!((q.answered, q.abandoned), (3, 1));
    // a1 and a2 wrapped up and are available again; a3 went away; sam supervises (no agent).
    assert_eq!(
        (
            q.agents_available,
            q.agents_in_call,
            q.agents_wrap_up,
            q.agents_away
        ),
        (2, 0, 0, 1)
    );
    println!("{q:#?}");
}

#[test]
fn the_recent_window_forgets_and_a_new_day_starts_from_nothing() {
    let mut s = Script::new();
    s.agent(at(-10), "a1", AgentEvent::LoggedIn { resumed: false });
    s.caller(
        1,
        0,
        Fate::Answered {
            agent: "a1",
            answer: 5,
            end: 65,
            wrap: 0,
        },
    );
    s.caller(2, 10, Fate::Abandoned { at: 50 });
    s.run();
    let q = |b: &Wallboard, t: i64| {
        b.view(at(t))
            .into_iter()
            .find(|q| q.queue == "support")
            .unwrap()
    };
    assert_eq!(q(&s.board, 100).service_level_15m_pct, Some(50.0));
    let later = q(&s.board, 100 + 15 * 60 + 10);
    assert_eq!(
        later.service_level_15m_pct, None,
        "nobody in the last 15 minutes"
    );
    assert_eq!(later.service_level_day_pct, Some(50.0), "the day remembers");
    let tomorrow = q(&s.board, 86_400);
    assert_eq!(tomorrow.answered, 0);
    assert_eq!(tomorrow.service_level_day_pct, None);
    assert_eq!(tomorrow.aht_s, None);
}

#[test]
fn agents_in_a_call_and_wrapping_up_are_counted_as_such() {
    let mut s = Script::new();
    for agent in ["a1", "a2", "a3"] {
        s.agent(at(-10), agent, AgentEvent::LoggedIn { resumed: false });
    }
    s.state(-5, "a1", AgentState::Available);
    s.state(1, "a2", AgentState::Talking { call: CallRef(1) });
    s.state(
        2,
        "a3",
        AgentState::WrapUp {
            until: Instant::now(),
        },
    );
    s.run();
    let q = s
        .board
        .view(at(3))
        .into_iter()
        .find(|q| q.queue == "support")
        .unwrap();
    assert_eq!(
        (
            q.agents_available,
            q.agents_in_call,
            q.agents_wrap_up,
            q.agents_away
        ),
        (1, 1, 1, 0)
    );
}
