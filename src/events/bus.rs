//! The event bus: every call and agent event, fanned out to whoever subscribed.
//!
//! Publishing never waits, so a slow consumer cannot stall a call. There are two kinds of feed:
//! - an **observer** feed ([`Bus::observe`]) is bounded: when its consumer falls behind, new
//!   events for it are dropped and counted ([`FeedStats::dropped`]). Log lines, metrics, the
//!   admin API and wallboards use these: losing a line under overload beats delaying audio.
//! - a **lossless** feed ([`Bus::follow`]) is unbounded: nothing is ever dropped, and the
//!   events it holds are counted while they wait ([`FeedStats::pending`]), so a stuck
//!   consumer shows up in its stats long before memory does. The journal uses this one; it
//!   only appends to a file, so it keeps up.
//!
//! A feed whose receiver is dropped is forgotten at the next publish.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::mpsc;

use super::{AgentEvent, CallEvent, CallId, Event, EventKind};

#[derive(Clone, Default)]
pub struct Bus {
    inner: Arc<Mutex<Vec<Feed>>>,
}

struct Feed {
    name: String,
    counters: Arc<Counters>,
    tx: FeedTx,
}

enum FeedTx {
    Observer(mpsc::Sender<Arc<Event>>),
    Lossless(mpsc::UnboundedSender<Arc<Event>>),
}

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    dropped: AtomicU64,
    received: AtomicU64,
}

/// One feed's counts, for ops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedStats {
    pub name: String,
    pub lossless: bool,
    /// Events handed to the feed.
    pub delivered: u64,
    /// Events an observer's full feed could not take (always 0 for a lossless feed).
    pub dropped: u64,
    /// Events delivered but not yet read by the consumer.
    pub pending: u64,
}

/// A bounded feed: read it with [`ObserverFeed::recv`]; if it falls behind, events are dropped.
pub struct ObserverFeed {
    rx: mpsc::Receiver<Arc<Event>>,
    counters: Arc<Counters>,
}

impl ObserverFeed {
    pub async fn recv(&mut self) -> Option<Arc<Event>> {
        let ev = self.rx.recv().await?;
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        Some(ev)
    }

    pub fn try_recv(&mut self) -> Option<Arc<Event>> {
        let ev = self.rx.try_recv().ok()?;
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        Some(ev)
    }

    /// Events this feed could not take because its consumer was behind.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }
}

/// An unbounded feed that never drops: every event published after it was made arrives.
pub struct LosslessFeed {
    rx: mpsc::UnboundedReceiver<Arc<Event>>,
    counters: Arc<Counters>,
}

impl LosslessFeed {
    pub async fn recv(&mut self) -> Option<Arc<Event>> {
        let ev = self.rx.recv().await?;
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        Some(ev)
    }

    pub fn try_recv(&mut self) -> Option<Arc<Event>> {
        let ev = self.rx.try_recv().ok()?;
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        Some(ev)
    }
}

impl Bus {
    pub fn new() -> Self {
        Bus::default()
    }

    /// A bounded feed holding at most `capacity` unread events.
    pub fn observe(&self, name: &str, capacity: usize) -> ObserverFeed {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let counters = Arc::new(Counters::default());
        self.add(name, counters.clone(), FeedTx::Observer(tx));
        ObserverFeed { rx, counters }
    }

    /// A lossless feed (see the module docs).
    pub fn follow(&self, name: &str) -> LosslessFeed {
        let (tx, rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        self.add(name, counters.clone(), FeedTx::Lossless(tx));
        LosslessFeed { rx, counters }
    }

    fn add(&self, name: &str, counters: Arc<Counters>, tx: FeedTx) {
        self.feeds().push(Feed {
            name: name.to_string(),
            counters,
            tx,
        });
    }

    fn feeds(&self) -> std::sync::MutexGuard<'_, Vec<Feed>> {
        // A panic while holding this lock leaves the list itself intact: keep using it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn call(&self, call: CallId, event: CallEvent) {
        self.publish(EventKind::Call { call, event });
    }

    pub fn agent(&self, agent: &str, event: AgentEvent) {
        self.publish(EventKind::Agent {
            agent: agent.to_string(),
            event,
        });
    }

    /// Stamps `what` with the time and hands it to every feed, without waiting for any.
    pub fn publish(&self, what: EventKind) {
        let event = Arc::new(Event {
            at: SystemTime::now(),
            what,
        });
        self.feeds().retain(|feed| {
            let sent = match &feed.tx {
                FeedTx::Observer(tx) => match tx.try_send(event.clone()) {
                    Ok(()) => Ok(true),
                    Err(mpsc::error::TrySendError::Full(_)) => Ok(false),
                    Err(mpsc::error::TrySendError::Closed(_)) => Err(()),
                },
                FeedTx::Lossless(tx) => tx.send(event.clone()).map(|_| true).map_err(|_| ()),
            };
            match sent {
                Ok(true) => {
                    feed.counters.delivered.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Ok(false) => {
                    feed.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Err(()) => false,
            }
        });
    }

    /// Every live feed's counts.
    pub fn stats(&self) -> Vec<FeedStats> {
        self.feeds()
            .iter()
            .map(|f| {
                let delivered = f.counters.delivered.load(Ordering::Relaxed);
                FeedStats {
                    name: f.name.clone(),
                    lossless: matches!(f.tx, FeedTx::Lossless(_)),
                    delivered,
                    dropped: f.counters.dropped.load(Ordering::Relaxed),
                    pending: delivered.saturating_sub(f.counters.received.load(Ordering::Relaxed)),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{AgentEvent, CallEvent};

    fn answered(bus: &Bus, n: u64) {
        for call in 0..n {
            bus.call(call, CallEvent::Answered);
        }
    }

    #[test]
    fn a_full_observer_drops_and_counts_while_others_get_everything() {
        let bus = Bus::new();
        let mut stalled = bus.observe("stalled", 4);
        let mut reader = bus.observe("reader", 1000);
        let mut journal = bus.follow("journal");
        answered(&bus, 100);
        assert_eq!(stalled.dropped(), 96);
        let mut got = 0;
        while reader.try_recv().is_some() {
            got += 1;
        }
        assert_eq!(got, 100);
        let mut calls = Vec::new();
        while let Some(ev) = journal.try_recv() {
            let EventKind::Call { call, .. } = ev.what else {
                panic!("{ev:?}")
            };
            calls.push(call);
        }
        assert_eq!(calls, (0..100).collect::<Vec<_>>(), "lossless and in order");
        let stats = bus.stats();
        let stalled_stats = stats.iter().find(|s| s.name == "stalled").unwrap();
        assert_eq!((stalled_stats.delivered, stalled_stats.dropped), (4, 96));
        assert_eq!(stalled_stats.pending, 4);
        // The stalled observer reads again: it gets what it held, then new events.
        let mut held = 0;
        while stalled.try_recv().is_some() {
            held += 1;
        }
        assert_eq!(held, 4);
        bus.agent("alice", AgentEvent::ConnectionLost);
        assert!(stalled.try_recv().is_some());
    }

    #[test]
    fn a_lossless_feed_never_drops_and_shows_its_backlog() {
        let bus = Bus::new();
        let _journal = bus.follow("journal");
        answered(&bus, 10_000);
        let s = &bus.stats()[0];
        assert!(s.lossless);
        assert_eq!((s.delivered, s.dropped, s.pending), (10_000, 0, 10_000));
    }

    #[test]
    fn a_dropped_feed_is_forgotten() {
        let bus = Bus::new();
        let feed = bus.observe("gone", 4);
        drop(feed);
        answered(&bus, 1);
        assert!(bus.stats().is_empty());
    }
}
