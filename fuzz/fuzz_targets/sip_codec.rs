//! Any bytes from the network: datagram parsing, stream framing and the 400/501 reply built for a
//! refused request must never panic, and whatever parses must feed the UA core without panicking.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use trunkgate::sip::codec;
use trunkgate::sip::peer::{Peer, Transport};
use trunkgate::sip::transaction::TimerConfig;
use trunkgate::sip::ua::UserAgent;

fuzz_target!(|data: &[u8]| {
    let _ = codec::frame_stream(data);
    match codec::parse(data) {
        Ok(msg) => {
            let trunk = trunkgate::config::embedded(std::path::Path::new("/nonexistent"))
                .ok()
                .map(|c| c.trunks)
                .unwrap_or_default();
            let mut ua = UserAgent::new(TimerConfig::default(), "fuzz".into(), trunk);
            let peer = Peer::new(Transport::Udp, "127.0.0.1:5099".parse().unwrap());
            ua.handle_message(Instant::now(), peer, "127.0.0.1:5060".parse().unwrap(), msg);
            while ua.poll_transmit().is_some() {}
            while ua.poll_event().is_some() {}
        }
        Err(m) => {
            if let Some(reply) = m.reply("fuzz") {
                // Our own 400 must itself be a message we can read.
                assert!(codec::parse(&reply).is_ok(), "unparsable reply to {:?}", m.error);
            }
        }
    }
});
