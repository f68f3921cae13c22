//! A span as operators see it: in the admin API (`GET /v1/spans`), `trunkgate ctl spans` and
//! the metrics. The span's task publishes it whenever it changes.
use serde::{Deserialize, Serialize};

use super::q931::control::State;
use super::span::Span;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanView {
    pub name: String,
    /// `pri_cpe` or `pri_net`.
    pub signalling: String,
    /// Layer 1: `up` (in sync; the software span's far end connected) or `down`.
    pub line: String,
    /// The D-channel's LAPD link: `up`, `establishing` or `down`.
    pub dchannel: String,
    pub channels: usize,
    pub busy: usize,
    /// B-channels out of service until the far end acknowledges their RESTART.
    pub maintenance: usize,
    pub calls: Vec<SpanCallView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanCallView {
    pub channel: Option<u8>,
    /// The Q.931 call reference, and whether we chose it (our outgoing call).
    pub call_ref: u16,
    pub outgoing: bool,
    /// The Q.931 call state's name (`active`, `call received`…).
    pub state: String,
}

/// Counters and gauges of every span, registered with the others.
#[derive(Clone)]
pub struct SpanCounters {
    /// By `span`: 1 while the D-channel's link is up.
    pub dchannel_up: prometheus::IntGaugeVec,
    /// By `span` and `state` (busy, maintenance, idle).
    pub channels: prometheus::IntGaugeVec,
    /// By `span`: link errors, malformed messages and the STATUS answers they got.
    pub problems: prometheus::IntCounterVec,
}

impl SpanCounters {
    pub fn show(&self, view: &SpanView) {
        let span = view.name.as_str();
        self.dchannel_up
            .with_label_values(&[span])
            .set(i64::from(view.dchannel == "up"));
        let idle = view.channels - view.busy - view.maintenance;
        for (state, n) in [
            ("busy", view.busy),
            ("maintenance", view.maintenance),
            ("idle", idle),
        ] {
            self.channels
                .with_label_values(&[span, state])
                .set(n as i64);
        }
    }
}

pub fn state_name(state: State) -> &'static str {
    match state {
        State::Null => "null",
        State::CallInitiated => "call initiated",
        State::OutgoingProceeding => "outgoing call proceeding",
        State::CallDelivered => "call delivered",
        State::CallPresent => "call present",
        State::CallReceived => "call received",
        State::ConnectRequest => "connect request",
        State::IncomingProceeding => "incoming call proceeding",
        State::Active => "active",
        State::DisconnectRequest => "disconnect request",
        State::DisconnectIndication => "disconnect indication",
        State::ReleaseRequest => "release request",
    }
}

impl Span {
    /// The span now, for ops.
    pub fn view(&self, name: &str, signalling: &str) -> SpanView {
        use super::q921::link::State as Link;
        let control = self.control();
        let (busy, maintenance) = control.channels_in_use();
        SpanView {
            name: name.to_string(),
            signalling: signalling.to_string(),
            line: if self.line_up() { "up" } else { "down" }.into(),
            dchannel: match (self.is_up(), self.link_state()) {
                (true, _) => "up",
                (false, Link::AwaitingEstablishment) => "establishing",
                (false, _) => "down",
            }
            .into(),
            channels: control.channel_count(),
            busy,
            maintenance,
            calls: control
                .calls()
                .map(|(call, state, channel)| SpanCallView {
                    channel,
                    call_ref: call.value,
                    outgoing: call.ours,
                    state: state_name(state).into(),
                })
                .collect(),
        }
    }
}
