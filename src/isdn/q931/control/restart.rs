//! RESTART (§5.5): returning B-channels to idle when their state is in doubt, on the global
//! call reference. We restart a channel whose release failed (T308 twice); the far side may
//! restart any channel or the whole interface, ending the calls on them.
use std::time::Instant;

use super::super::cause;
use super::super::ie::{self, id, Cause, ChannelId, RestartClass, Selection};
use super::super::message::{CallRef, Message, MessageType};
use super::checks::Reading;
use super::{CallControl, Channel, Event};

/// RESTARTs we sent whose acknowledgement is due.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    pub due: Instant,
    pub tries: u32,
}

/// How many RESTARTs go unanswered before it is reported; it is still tried every T316.
const TRIES_BEFORE_REPORT: u32 = 2;

const OUR_GLOBAL: CallRef = CallRef {
    value: 0,
    ours: true,
};

impl CallControl {
    /// Restarts `channels` (B-channel maintenance): their calls end, and they stay out of
    /// service until the far side acknowledges.
    pub fn restart_channels(&mut self, now: Instant, channels: Vec<u8>) {
        for channel in channels {
            if !self.channels.contains_key(&channel) {
                continue;
            }
            self.clear_channel(channel, cause::TEMPORARY_FAILURE);
            self.channels.insert(channel, Channel::Maintenance);
            self.send_restart(Some(channel));
            self.restarts.insert(
                Some(channel),
                Pending {
                    due: now + self.config.timers.t316,
                    tries: 1,
                },
            );
        }
    }

    /// Restarts every channel of the interface (at start, when their state is unknown).
    pub fn restart_interface(&mut self, now: Instant) {
        let all: Vec<u8> = self.channels.keys().copied().collect();
        for &channel in &all {
            self.clear_channel(channel, cause::TEMPORARY_FAILURE);
            self.channels.insert(channel, Channel::Maintenance);
        }
        self.send_restart(None);
        self.restarts.insert(
            None,
            Pending {
                due: now + self.config.timers.t316,
                tries: 1,
            },
        );
    }

    fn send_restart(&mut self, channel: Option<u8>) {
        let message = restart_message(OUR_GLOBAL, MessageType::Restart, channel);
        self.send(&message);
    }

    /// Ends the call on `channel`, if any, without a message: the channel is being restarted.
    fn clear_channel(&mut self, channel: u8, value: u8) {
        if let Some(Channel::InUse(call)) = self.channels.get(&channel).copied() {
            let location = self.our_location();
            self.end(call, Cause::new(location, value));
        }
    }

    pub(super) fn restart_expired(&mut self, now: Instant) {
        let due: Vec<Option<u8>> = self
            .restarts
            .iter()
            .filter(|(_, p)| p.due <= now)
            .map(|(&c, _)| c)
            .collect();
        for channel in due {
            let tries = self.restarts.get(&channel).map_or(0, |p| p.tries);
            if tries >= TRIES_BEFORE_REPORT {
                self.problem(format!(
                    "RESTART of {} unanswered {tries} times: the channels stay out of service",
                    match channel {
                        Some(c) => format!("channel {c}"),
                        None => "the interface".into(),
                    }
                ));
            }
            self.send_restart(channel);
            self.restarts.insert(
                channel,
                Pending {
                    due: now + self.config.timers.t316,
                    tries: tries + 1,
                },
            );
        }
    }

    /// A message on the global call reference: RESTART, its acknowledgement, or STATUS.
    pub(super) fn handle_global(&mut self, message: &Message) {
        let mut reading = Reading::new(message);
        match message.kind {
            MessageType::Restart => self.on_restart(&mut reading),
            MessageType::RestartAcknowledge => self.on_restart_acknowledge(&mut reading),
            MessageType::StatusEnquiry => {
                self.send_status_in(
                    message.call_ref,
                    super::State::Null,
                    cause::RESPONSE_TO_STATUS_ENQUIRY,
                    Vec::new(),
                );
            }
            MessageType::Status => {}
            other => {
                self.problem(format!(
                    "{} on the global call reference: STATUS",
                    other.name()
                ));
                self.send_status_in(
                    message.call_ref,
                    super::State::Null,
                    cause::INVALID_CALL_REFERENCE,
                    Vec::new(),
                );
            }
        }
    }

    /// The channels a RESTART or its acknowledgement names (`None`: the interface), or the
    /// cause and element to answer STATUS with.
    fn restarted(&self, reading: &mut Reading) -> Result<Option<u8>, (u8, u8)> {
        match reading.mandatory(id::RESTART_INDICATOR, ie::read_restart_class)? {
            RestartClass::Interface => Ok(None),
            RestartClass::Channels => {
                let named = reading.mandatory(id::CHANNEL_ID, ChannelId::read)?;
                match named.selection {
                    Selection::Channel(c) if self.channels.contains_key(&c) => Ok(Some(c)),
                    Selection::Channel(_) => Err((cause::CHANNEL_DOES_NOT_EXIST, id::CHANNEL_ID)),
                    _ => Err((cause::INVALID_IE_CONTENTS, id::CHANNEL_ID)),
                }
            }
        }
    }

    fn on_restart(&mut self, reading: &mut Reading) {
        let message = reading.message();
        let channel = match self.restarted(reading) {
            Ok(channel) => channel,
            Err((value, ie)) => {
                self.problem(format!(
                    "RESTART refused: cause {value} ({})",
                    cause::name(value)
                ));
                self.send_status_in(message.call_ref, super::State::Null, value, vec![ie]);
                return;
            }
        };
        let channels: Vec<u8> = match channel {
            Some(c) => vec![c],
            None => self.channels.keys().copied().collect(),
        };
        for &c in &channels {
            self.clear_channel(c, cause::TEMPORARY_FAILURE);
            self.channels.insert(c, Channel::Idle);
        }
        // Our own RESTART of the same channels is answered by theirs.
        self.restarts.remove(&channel);
        let ack = restart_message(
            CallRef {
                value: 0,
                ours: false,
            },
            MessageType::RestartAcknowledge,
            channel,
        );
        self.send(&ack);
        self.events.push_back(Event::Restarted { channels });
    }

    fn on_restart_acknowledge(&mut self, reading: &mut Reading) {
        let Ok(channel) = self.restarted(reading) else {
            self.problem("RESTART ACKNOWLEDGE we cannot read: ignored".into());
            return;
        };
        if self.restarts.remove(&channel).is_none() {
            return;
        }
        let channels: Vec<u8> = match channel {
            Some(c) => vec![c],
            None => self.channels.keys().copied().collect(),
        };
        for &c in &channels {
            if self.channels.get(&c) == Some(&Channel::Maintenance) {
                self.channels.insert(c, Channel::Idle);
            }
        }
        self.events.push_back(Event::Restarted { channels });
    }
}

fn restart_message(call_ref: CallRef, kind: MessageType, channel: Option<u8>) -> Message {
    let mut message = Message::new(call_ref, kind);
    let class = match channel {
        Some(c) => {
            message.ies.push(ChannelId::exclusive(c).write());
            RestartClass::Channels
        }
        None => RestartClass::Interface,
    };
    message.ies.push(ie::write_restart_class(class));
    message
}
