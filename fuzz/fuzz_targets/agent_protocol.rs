//! Any bytes on an agent's control stream, in any chunking: the frame decoder must never panic,
//! and whatever it accepts must encode again (both directions, since both ends run it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use trunkgate::agent::protocol::{encode, AgentMessage, FrameDecoder, GatewayMessage, WireMessage};

fn run<M: WireMessage>(data: &[u8]) {
    let mut decoder = FrameDecoder::<M>::new();
    // The first byte picks a chunk size, so short reads are explored too.
    let chunk = usize::from(data.first().copied().unwrap_or(1)).max(1);
    for piece in data.chunks(chunk) {
        decoder.push(piece);
        while let Some(item) = decoder.pop() {
            if let Ok(msg) = item {
                let mut out = Vec::new();
                assert!(encode(&msg, &mut out).is_ok(), "a decoded message must encode");
            }
        }
    }
    let _ = decoder.finish();
}

fuzz_target!(|data: &[u8]| {
    run::<AgentMessage>(data);
    run::<GatewayMessage>(data);
});
