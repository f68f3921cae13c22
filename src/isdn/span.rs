//! A PRI span's D-channel as one sans-IO core: the LAPD link ([`Link`]) with Q.931 call control
//! ([`CallControl`]) above it. The driver (DAHDI, or the software span) feeds it the layer-1
//! state, the frames that arrive and time, and sends the frames it gives; the E1 legs act on
//! calls through [`Span::act`].
//!
//! While the line is up the link is kept established: when it is released or cannot be
//! established, it is tried again every [`RETRY`].
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::q921::link::{self, Link, LinkConfig};
use super::q931::control::{self, CallControl, ControlConfig, Side};

/// How long a span waits before trying a failed link again.
pub const RETRY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanConfig {
    pub control: ControlConfig,
    pub link: LinkConfig,
}

/// What the span tells its driver and the legs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanEvent {
    /// The D-channel's link is established: calls can be made.
    LinkUp,
    /// The link is down (calls not yet answered were cleared; see [`CallControl::link_down`]).
    LinkDown,
    Call(control::Event),
    /// For the log and the metrics: a link error, a malformed frame.
    Problem(String),
}

pub struct Span {
    network: bool,
    link_config: LinkConfig,
    link: Link,
    control: CallControl,
    /// Layer 1 is up (the span is in sync, or the software span's peer is connected).
    physical: bool,
    link_up: bool,
    retry_at: Option<Instant>,
    events: VecDeque<SpanEvent>,
}

impl Span {
    pub fn new(config: SpanConfig) -> Self {
        let network = config.control.side == Side::Network;
        Span {
            network,
            link_config: config.link,
            link: Link::new(network, config.link),
            control: CallControl::new(config.control),
            physical: false,
            link_up: false,
            retry_at: None,
            events: VecDeque::new(),
        }
    }

    pub fn control(&self) -> &CallControl {
        &self.control
    }

    pub fn link_state(&self) -> link::State {
        self.link.state()
    }

    pub fn is_up(&self) -> bool {
        self.link_up
    }

    /// Layer 1 is up.
    pub fn line_up(&self) -> bool {
        self.physical
    }

    /// Layer 1 came up: the link is established.
    pub fn physical_up(&mut self, now: Instant) {
        self.physical = true;
        self.link.establish(now);
        self.pump(now);
    }

    /// Layer 1 went down: the link is gone with it.
    pub fn physical_down(&mut self, now: Instant) {
        self.physical = false;
        self.retry_at = None;
        self.link = Link::new(self.network, self.link_config);
        if self.link_up {
            self.link_up = false;
            self.control.link_down(now);
            self.events.push_back(SpanEvent::LinkDown);
        }
        self.pump(now);
    }

    /// A frame from the D-channel (without its FCS).
    pub fn handle_frame(&mut self, now: Instant, bytes: &[u8]) {
        self.link.handle_frame(now, bytes);
        self.pump(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.link.handle_timeout(now);
        self.control.handle_timeout(now);
        if self.retry_at.is_some_and(|t| t <= now) {
            self.retry_at = None;
            if self.physical && self.link.state() == link::State::Released {
                self.link.establish(now);
            }
        }
        self.pump(now);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.link.poll_timeout(),
            self.control.poll_timeout(),
            self.retry_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// A frame for the D-channel.
    pub fn poll_frame(&mut self) -> Option<Vec<u8>> {
        self.link.poll_transmit()
    }

    pub fn poll_event(&mut self) -> Option<SpanEvent> {
        self.events.pop_front()
    }

    /// Acts on call control (set up, answer, hang up…) and sends what that says.
    pub fn act<T>(&mut self, now: Instant, f: impl FnOnce(&mut CallControl, Instant) -> T) -> T {
        let result = f(&mut self.control, now);
        self.pump(now);
        result
    }

    /// Moves messages and events between the link and call control until neither has more.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut moved = false;
            while let Some(event) = self.link.poll_event() {
                moved = true;
                match event {
                    link::Event::Established => {
                        self.retry_at = None;
                        if !self.link_up {
                            self.link_up = true;
                            self.control.link_up(now);
                            self.events.push_back(SpanEvent::LinkUp);
                        }
                    }
                    link::Event::Released => {
                        if self.link_up {
                            self.link_up = false;
                            self.control.link_down(now);
                            self.events.push_back(SpanEvent::LinkDown);
                        }
                        if self.physical {
                            self.retry_at = Some(now + RETRY);
                        }
                    }
                    link::Event::Data(message) => self.control.handle_message(now, &message),
                    link::Event::Error(what) => self.events.push_back(SpanEvent::Problem(what)),
                }
            }
            while let Some(message) = self.control.poll_transmit() {
                moved = true;
                self.link.send(now, message);
            }
            while let Some(event) = self.control.poll_event() {
                moved = true;
                self.events.push_back(SpanEvent::Call(event));
            }
            if !moved {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isdn::q931::cause;
    use crate::isdn::q931::control::{Event, Setup, State};
    use crate::isdn::q931::ie::PartyNumber;

    fn span(side: Side) -> Span {
        Span::new(SpanConfig {
            control: ControlConfig::e1(side),
            link: LinkConfig::default(),
        })
    }

    /// Frames both ways until both are quiet; the events each side saw.
    fn exchange(now: Instant, a: &mut Span, b: &mut Span) -> (Vec<SpanEvent>, Vec<SpanEvent>) {
        loop {
            let mut moved = false;
            while let Some(f) = a.poll_frame() {
                moved = true;
                b.handle_frame(now, &f);
            }
            while let Some(f) = b.poll_frame() {
                moved = true;
                a.handle_frame(now, &f);
            }
            if !moved {
                break;
            }
        }
        (
            std::iter::from_fn(|| a.poll_event()).collect(),
            std::iter::from_fn(|| b.poll_event()).collect(),
        )
    }

    #[test]
    fn a_call_crosses_the_link_once_layer_1_is_up_and_a_lost_line_ends_it() {
        let now = Instant::now();
        let mut user = span(Side::User);
        let mut network = span(Side::Network);
        assert_eq!(
            user.act(now, |c, now| c.setup(
                now,
                Setup {
                    called: PartyNumber::new("100"),
                    calling: None,
                    display: None
                }
            )),
            Err(control::RequestError::LinkDown)
        );
        user.physical_up(now);
        network.physical_up(now);
        let (u, n) = exchange(now, &mut user, &mut network);
        assert!(u.contains(&SpanEvent::LinkUp) && n.contains(&SpanEvent::LinkUp));

        let call = user
            .act(now, |c, now| {
                c.setup(
                    now,
                    Setup {
                        called: PartyNumber::new("100"),
                        calling: None,
                        display: None,
                    },
                )
            })
            .unwrap();
        let (_, n) = exchange(now, &mut user, &mut network);
        let Some(SpanEvent::Call(Event::Incoming(offered))) = n.first().cloned() else {
            panic!("{n:?}")
        };
        assert_eq!(offered.called.digits, "100");
        network
            .act(now, |c, now| c.connect(now, offered.call))
            .unwrap();
        let (u, _) = exchange(now, &mut user, &mut network);
        assert!(u.contains(&SpanEvent::Call(Event::Connected { call })));
        assert_eq!(user.control().state(call), Some(State::Active));

        // The line goes: the link is down at once; the answered call waits for T309.
        user.physical_down(now);
        let (u, _) = exchange(now, &mut user, &mut network);
        assert_eq!(u, [SpanEvent::LinkDown]);
        let later = now + Duration::from_secs(91);
        user.handle_timeout(later);
        let cleared: Vec<SpanEvent> = std::iter::from_fn(|| user.poll_event()).collect();
        assert!(cleared.iter().any(|e| matches!(
            e,
            SpanEvent::Call(Event::Cleared { cause, .. }) if cause.value == cause::DESTINATION_OUT_OF_ORDER
        )));
    }

    #[test]
    fn a_link_that_cannot_be_established_is_tried_again_while_the_line_is_up() {
        let mut now = Instant::now();
        let end = now + Duration::from_secs(20);
        let mut user = span(Side::User);
        user.physical_up(now);
        let mut sabmes = 0;
        // Nobody answers for a while.
        while now < end {
            sabmes += std::iter::from_fn(|| user.poll_frame()).count();
            let Some(next) = user.poll_timeout() else {
                break;
            };
            now = next;
            user.handle_timeout(now);
        }
        assert!(
            sabmes > 3,
            "SABME sent again after N200 and a pause: {sabmes}"
        );
        let mut network = span(Side::Network);
        network.physical_up(now);
        let (u, _) = exchange(now, &mut user, &mut network);
        assert!(u.contains(&SpanEvent::LinkUp), "{u:?}");
    }
}
