//! Clearing a call (§5.3): DISCONNECT, RELEASE, RELEASE COMPLETE from either side, their
//! collisions, and the end of a call's record and channel.
use std::time::Instant;

use super::super::cause;
use super::super::ie::{id, Cause};
use super::super::message::{CallRef, Message, MessageType};
use super::checks::Reading;
use super::{CallControl, Channel, Event, RequestError, State, Timer};

impl CallControl {
    /// Ends a call from our side with cause `value`: a SETUP not yet answered is refused with
    /// RELEASE COMPLETE, anything else is disconnected.
    pub fn hang_up(&mut self, now: Instant, call: CallRef, value: u8) -> Result<(), RequestError> {
        let state = self.state(call).ok_or(RequestError::NoSuchCall)?;
        let cause = Cause::new(self.our_location(), value);
        match state {
            State::CallPresent => {
                let message =
                    Message::new(call, MessageType::ReleaseComplete).with_ie(cause.write());
                self.send(&message);
                self.end(call, cause);
            }
            State::DisconnectRequest | State::ReleaseRequest => {}
            State::DisconnectIndication => self.release(now, call, cause),
            _ => self.disconnect(now, call, cause),
        }
        Ok(())
    }

    pub(super) fn disconnect(&mut self, now: Instant, call: CallRef, cause: Cause) {
        let message = Message::new(call, MessageType::Disconnect).with_ie(cause.write());
        self.send(&message);
        if let Some(entry) = self.calls.get_mut(&call) {
            entry.cause = Some(cause);
            entry.state = State::DisconnectRequest;
        }
        self.set_timer(call, Timer::T305, now);
    }

    pub(super) fn release(&mut self, now: Instant, call: CallRef, cause: Cause) {
        let message = Message::new(call, MessageType::Release).with_ie(cause.write());
        self.send(&message);
        if let Some(entry) = self.calls.get_mut(&call) {
            entry.cause.get_or_insert(cause);
            entry.state = State::ReleaseRequest;
            entry.retried = false;
        }
        self.set_timer(call, Timer::T308, now);
    }

    pub(super) fn on_disconnect(&mut self, now: Instant, call: CallRef, reading: &mut Reading) {
        let state = self.calls[&call].state;
        if state == State::ReleaseRequest {
            return;
        }
        // §5.8.6.1: a DISCONNECT without a (readable) cause is taken as cause 31, and our
        // RELEASE says what was wrong with it.
        let (theirs, ours) = match reading.mandatory(id::CAUSE, Cause::read) {
            Ok(cause) => (cause, cause::NORMAL_CLEARING),
            Err((value, _)) => (
                Cause::new(super::super::ie::location::USER, cause::NORMAL_UNSPECIFIED),
                value,
            ),
        };
        if state != State::DisconnectRequest {
            // Not a collision with our own DISCONNECT: the far side is hanging up.
            if let Some(entry) = self.calls.get_mut(&call) {
                entry.their_cause = Some(theirs.clone());
                entry.state = State::DisconnectIndication;
            }
            self.events.push_back(Event::Disconnecting {
                call,
                cause: theirs,
            });
        }
        let cause = Cause::new(self.our_location(), ours);
        self.release(now, call, cause);
    }

    pub(super) fn on_release(&mut self, call: CallRef, reading: &mut Reading) {
        let state = self.calls[&call].state;
        let cause = reading.mandatory(id::CAUSE, Cause::read);
        if state == State::ReleaseRequest {
            // Both sent RELEASE (§5.3.5 b): the call is over, with no RELEASE COMPLETE.
            return self.end_by_peer(call, cause.ok());
        }
        // A RELEASE that is the first clearing message must carry a cause (§5.8.6.1).
        let first = !matches!(
            state,
            State::DisconnectRequest | State::DisconnectIndication
        );
        let answer = match &cause {
            Err((value, _)) if first => *value,
            _ => cause::NORMAL_CLEARING,
        };
        let mut message = Message::new(call, MessageType::ReleaseComplete);
        if first {
            message = message.with_ie(Cause::new(self.our_location(), answer).write());
        }
        self.send(&message);
        self.end_by_peer(call, cause.ok());
    }

    /// The far side ended the call: the cause it gave when it began clearing, else ours if we
    /// began, else the one in this message.
    pub(super) fn end_by_peer(&mut self, call: CallRef, cause: Option<Cause>) {
        let Some(entry) = self.calls.get(&call) else {
            return;
        };
        let cause = entry
            .their_cause
            .clone()
            .or_else(|| entry.cause.clone())
            .or(cause)
            .unwrap_or(Cause::new(
                super::super::ie::location::USER,
                cause::NORMAL_UNSPECIFIED,
            ));
        self.end(call, cause);
    }

    /// The call's record is gone and its channel free.
    pub(super) fn end(&mut self, call: CallRef, cause: Cause) {
        let Some(entry) = self.calls.remove(&call) else {
            return;
        };
        if let Some(channel) = entry.channel {
            if self.channels.get(&channel) == Some(&Channel::InUse(call)) {
                self.channels.insert(channel, Channel::Idle);
            }
        }
        self.events.push_back(Event::Cleared { call, cause });
    }
}
