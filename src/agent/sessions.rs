//! Agent sessions as a sans-IO core: who is logged in on which connection, resume tokens, and
//! the grace period after a connection dies.
//!
//! A connection that dies does not end the agent's session at once: the agent may reconnect
//! (new network, new process) within the grace period and present its resume token to take the
//! session back, call included. Only when the grace period passes does the rest of the gateway
//! hear that the agent is gone (and its caller goes back to the head of the queue).
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::Rng;

/// A connection's handle, chosen by the shell.
pub type ConnId = u64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// A new session.
    Fresh { token: String },
    /// The session of a connection that died (or is dying) within the grace period, taken back
    /// with its resume token. `replaced` is the connection it was on, if that one still lingers.
    Resumed {
        token: String,
        replaced: Option<ConnId>,
    },
    /// The agent is logged in on another live connection and did not present its token.
    AlreadyLoggedIn,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// The grace period passed without a reconnect: the agent is gone.
    Gone { agent: String },
    /// A fresh login replaced a session that was waiting out its grace period.
    Replaced { agent: String },
    /// The agent may no longer log in.
    Revoked { agent: String },
    /// The agent logged out.
    LoggedOut { agent: String },
}

#[derive(Debug)]
struct Session {
    token: String,
    conn: Option<ConnId>,
    lost_at: Option<Instant>,
}

#[derive(Debug)]
pub struct Sessions {
    grace: Duration,
    by_agent: HashMap<String, Session>,
    events: VecDeque<SessionEvent>,
    /// Where resume tokens come from: the core draws no entropy of its own.
    rng: StdRng,
}

impl Sessions {
    /// No sessions yet. `rng` is the only source of resume tokens, so it must be a CSPRNG seeded
    /// from the OS in production (`StdRng::from_entropy()`); tests pass `StdRng::seed_from_u64(n)`
    /// so runs repeat.
    pub fn new(grace: Duration, rng: StdRng) -> Self {
        Sessions {
            rng,
            grace,
            by_agent: HashMap::new(),
            events: VecDeque::new(),
        }
    }

    /// An agent whose credential was verified logs in on `conn`.
    pub fn login(
        &mut self,
        _now: Instant,
        conn: ConnId,
        agent: &str,
        resume: Option<&str>,
    ) -> LoginOutcome {
        if let Some(s) = self.by_agent.get_mut(agent) {
            if resume.is_some_and(|t| constant_time_eq(t.as_bytes(), s.token.as_bytes())) {
                let replaced = s.conn.filter(|c| *c != conn);
                s.conn = Some(conn);
                s.lost_at = None;
                s.token = new_token(&mut self.rng);
                return LoginOutcome::Resumed {
                    token: s.token.clone(),
                    replaced,
                };
            }
            if s.lost_at.is_none() && s.conn.is_some() {
                return LoginOutcome::AlreadyLoggedIn;
            }
            // A fresh login (a restarted client has no token) ends the session in grace.
            self.by_agent.remove(agent);
            self.events.push_back(SessionEvent::Replaced {
                agent: agent.to_string(),
            });
        }
        let token = new_token(&mut self.rng);
        self.by_agent.insert(
            agent.to_string(),
            Session {
                token: token.clone(),
                conn: Some(conn),
                lost_at: None,
            },
        );
        LoginOutcome::Fresh { token }
    }

    /// The connection carrying `agent`'s session died: the grace period starts.
    pub fn connection_lost(&mut self, now: Instant, agent: &str, conn: ConnId) {
        if let Some(s) = self.by_agent.get_mut(agent) {
            if s.conn == Some(conn) {
                s.conn = None;
                s.lost_at = Some(now);
            }
        }
    }

    /// The agent logged out: its session ends at once, no grace.
    pub fn logout(&mut self, agent: &str) {
        if self.by_agent.remove(agent).is_some() {
            self.events.push_back(SessionEvent::LoggedOut {
                agent: agent.to_string(),
            });
        }
    }

    /// The agent may no longer log in (a reload revoked or removed it): gone at once, no grace.
    pub fn revoke(&mut self, agent: &str) {
        if self.by_agent.remove(agent).is_some() {
            self.events.push_back(SessionEvent::Revoked {
                agent: agent.to_string(),
            });
        }
    }

    pub fn is_connected(&self, agent: &str) -> bool {
        self.by_agent.get(agent).is_some_and(|s| s.conn.is_some())
    }

    pub fn connection_of(&self, agent: &str) -> Option<ConnId> {
        self.by_agent.get(agent).and_then(|s| s.conn)
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.by_agent
            .values()
            .filter_map(|s| s.lost_at.map(|t| t + self.grace))
            .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let grace = self.grace;
        let expired: Vec<String> = self
            .by_agent
            .iter()
            .filter(|(_, s)| s.lost_at.is_some_and(|t| now >= t + grace))
            .map(|(a, _)| a.clone())
            .collect();
        for agent in expired {
            self.by_agent.remove(&agent);
            self.events.push_back(SessionEvent::Gone { agent });
        }
    }

    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }
}

/// 128 random bits from `rng`, hex: unguessable (given a CSPRNG seeded from the OS), and
/// single-use (each resume issues a new one).
fn new_token(rng: &mut StdRng) -> String {
    format!("{:032x}", rng.gen::<u128>())
}

/// Compares tokens without an early exit, so timing tells an attacker nothing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    const GRACE: Duration = Duration::from_secs(15);

    fn sessions() -> Sessions {
        seeded(1)
    }

    fn seeded(seed: u64) -> Sessions {
        Sessions::new(GRACE, StdRng::seed_from_u64(seed))
    }

    fn token(o: &LoginOutcome) -> String {
        match o {
            LoginOutcome::Fresh { token } | LoginOutcome::Resumed { token, .. } => token.clone(),
            other => panic!("no token in {other:?}"),
        }
    }

    #[test]
    fn a_lost_connection_is_resumed_within_grace_with_its_token() {
        let t0 = Instant::now();
        let mut s = sessions();
        let first = token(&s.login(t0, 1, "alice", None));
        s.connection_lost(t0 + Duration::from_secs(1), "alice", 1);
        assert!(!s.is_connected("alice"));
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(16)));
        let resumed = s.login(t0 + Duration::from_secs(10), 2, "alice", Some(&first));
        let second = token(&resumed);
        assert!(matches!(
            resumed,
            LoginOutcome::Resumed { replaced: None, .. }
        ));
        assert_ne!(first, second, "tokens are single-use");
        assert_eq!(s.connection_of("alice"), Some(2));
        s.handle_timeout(t0 + Duration::from_secs(60));
        assert_eq!(s.poll_event(), None, "resumed: never gone");
        // The old token no longer works.
        s.connection_lost(t0 + Duration::from_secs(61), "alice", 2);
        assert!(matches!(
            s.login(t0 + Duration::from_secs(62), 3, "alice", Some(&first)),
            LoginOutcome::Fresh { .. }
        ));
    }

    #[test]
    fn grace_expiry_makes_the_agent_gone_exactly_then() {
        let t0 = Instant::now();
        let mut s = sessions();
        s.login(t0, 1, "bob", None);
        s.connection_lost(t0, "bob", 1);
        s.handle_timeout(t0 + GRACE - Duration::from_millis(1));
        assert_eq!(s.poll_event(), None);
        s.handle_timeout(t0 + GRACE);
        assert_eq!(
            s.poll_event(),
            Some(SessionEvent::Gone {
                agent: "bob".into()
            })
        );
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn a_second_live_login_without_token_is_refused_but_with_token_takes_over() {
        let t0 = Instant::now();
        let mut s = sessions();
        let tok = token(&s.login(t0, 1, "carol", None));
        assert_eq!(s.login(t0, 2, "carol", None), LoginOutcome::AlreadyLoggedIn);
        assert_eq!(
            s.login(t0, 2, "carol", Some("wrong")),
            LoginOutcome::AlreadyLoggedIn
        );
        // The agent moved networks before the old connection timed out: take over with the token.
        assert!(matches!(
            s.login(t0, 2, "carol", Some(&tok)),
            LoginOutcome::Resumed {
                replaced: Some(1),
                ..
            }
        ));
        // The old connection's late death does not touch the new one.
        s.connection_lost(t0, "carol", 1);
        assert!(s.is_connected("carol"));
    }

    #[test]
    fn a_restarted_client_replaces_a_session_in_grace() {
        let t0 = Instant::now();
        let mut s = sessions();
        s.login(t0, 1, "dave", None);
        s.connection_lost(t0, "dave", 1);
        assert!(matches!(
            s.login(t0, 2, "dave", None),
            LoginOutcome::Fresh { .. }
        ));
        assert_eq!(
            s.poll_event(),
            Some(SessionEvent::Replaced {
                agent: "dave".into()
            })
        );
        s.handle_timeout(t0 + GRACE * 2);
        assert_eq!(s.poll_event(), None);
    }

    #[test]
    fn revocation_is_immediate() {
        let mut s = sessions();
        s.login(Instant::now(), 1, "erin", None);
        s.revoke("erin");
        assert_eq!(
            s.poll_event(),
            Some(SessionEvent::Revoked {
                agent: "erin".into()
            })
        );
    }

    #[test]
    fn tokens_repeat_with_the_seed_and_differ_across_seeds() {
        // A fresh login's token, then the token a resume issues.
        let tokens = |seed| {
            let t0 = Instant::now();
            let mut s = seeded(seed);
            let fresh = token(&s.login(t0, 1, "frank", None));
            s.connection_lost(t0, "frank", 1);
            let resumed = token(&s.login(t0, 2, "frank", Some(&fresh)));
            (fresh, resumed)
        };
        let (a, b) = (tokens(1), tokens(1));
        assert_eq!(a, b);
        assert_ne!(a.0, a.1, "each token is drawn afresh");
        let c = tokens(2);
        assert!(a.0 != c.0 && a.1 != c.1, "{a:?} vs {c:?}");
        assert_eq!(a.0.len(), 32);
    }
}
