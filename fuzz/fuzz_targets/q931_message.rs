//! Any bytes a LAPD I frame may carry, as a Q.931 message: decoding never panics, every
//! element read as the type its identifier names never panics, and call control on either side
//! takes the message (in the middle of a call of ours, so that state handling is reached too)
//! without panicking.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use trunkgate::isdn::q931::control::{CallControl, ControlConfig, Setup, Side};
use trunkgate::isdn::q931::ie::{self, id, PartyNumber};
use trunkgate::isdn::q931::message::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::parse(data) {
        for raw in &message.ies {
            let body = &raw.body[..];
            let _ = match raw.id {
                id::BEARER_CAPABILITY => ie::BearerCapability::read(body).map(|_| ()),
                id::CHANNEL_ID => ie::ChannelId::read(body).map(|_| ()),
                id::CAUSE => ie::Cause::read(body).map(|_| ()),
                id::PROGRESS_INDICATOR => ie::ProgressIndicator::read(body).map(|_| ()),
                id::DISPLAY => ie::read_display(body).map(|_| ()),
                id::CALL_STATE => ie::read_call_state(body).map(|_| ()),
                id::RESTART_INDICATOR => ie::read_restart_class(body).map(|_| ()),
                id::CALLING_NUMBER | id::CALLED_NUMBER => {
                    PartyNumber::read(raw.id, body).map(|_| ())
                }
                _ => Ok(()),
            };
        }
        let again = Message::parse(&message.to_bytes()).expect("what we write we read");
        assert_eq!(again.call_ref, message.call_ref);
        assert_eq!(again.kind, message.kind);
    }
    let now = Instant::now();
    for side in [Side::User, Side::Network] {
        let mut control = CallControl::new(ControlConfig::e1(side));
        control.link_up(now);
        let _ = control.setup(
            now,
            Setup {
                called: PartyNumber::new("1"),
                calling: None,
                display: None,
            },
        );
        control.handle_message(now, data);
        control.handle_timeout(now + Duration::from_secs(300));
        while control.poll_transmit().is_some() {}
        while control.poll_event().is_some() {}
    }
});
