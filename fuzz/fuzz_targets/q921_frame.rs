//! Any bytes on the D-channel as a LAPD frame: the decoder must never panic, and a frame it
//! accepts must encode back to the same octets. (Q.931 messages join this target with their
//! decoder.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use trunkgate::isdn::q921::frame::Frame;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = Frame::parse(data) {
        assert_eq!(frame.to_bytes().as_deref(), Ok(data), "a decoded frame encodes back");
    }
});
