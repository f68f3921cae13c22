//! Any bytes from the network: datagram parsing, stream framing and the 400/501 reply built for a
//! refused request must never panic, and whatever parses must feed the UA core without panicking.
#![no_main]

use std::sync::OnceLock;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use rand::rngs::StdRng;
use rand::SeedableRng;
use trunkgate::sip::codec;
use trunkgate::sip::peer::{Peer, Transport};
use trunkgate::sip::transaction::TimerConfig;
use trunkgate::sip::ua::UserAgent;

/// The example config's trunks (loopback allowed), parsed once: parsing TOML per input would
/// dominate the run.
fn trunks() -> &'static [trunkgate::config::TrunkConfig] {
    static TRUNKS: OnceLock<Vec<trunkgate::config::TrunkConfig>> = OnceLock::new();
    TRUNKS.get_or_init(|| {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        trunkgate::config::embedded(&repo)
            .map(|c| c.trunks)
            .expect("the example config is valid")
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = codec::frame_stream(data);
    match codec::parse(data) {
        Ok(msg) => {
            // Seeded: a crash found by the fuzzer must replay byte for byte.
            let mut ua = UserAgent::new(
                TimerConfig::default(),
                "fuzz".into(),
                trunks().to_vec(),
                StdRng::seed_from_u64(0),
            );
            let peer = Peer::new(Transport::Udp, "127.0.0.1:5099".parse().unwrap());
            ua.handle_message(Instant::now(), peer, "127.0.0.1:5060".parse().unwrap(), msg);
            while ua.poll_transmit().is_some() {}
            while ua.poll_event().is_some() {}
        }
        Err(m) => {
            if let Some(reply) = m.reply("fuzz", &mut StdRng::seed_from_u64(0)) {
                // Our own 400 must itself be a message we can read.
                assert!(codec::parse(&reply).is_ok(), "unparsable reply to {:?}", m.error);
            }
        }
    }
});
