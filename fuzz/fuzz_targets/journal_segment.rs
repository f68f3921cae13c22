//! A journal segment is read back after crashes, power loss and disk damage: whatever bytes
//! follow a segment's header, scanning them must not panic and must accept only whole,
//! chained records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trunkgate::journal::record::{JournalId, GENESIS};
use trunkgate::journal::segment::{self, Header, Tail};

fuzz_target!(|data: &[u8]| {
    // As found on disk, header and all (mostly refused: a header has a checksum).
    if let Ok(scan) = segment::scan(data) {
        assert!(scan.valid_len <= data.len());
    }
    // After a good header, so the frames themselves are exercised.
    let header = Header {
        journal: JournalId([1; 16]),
        first_seq: 1,
        prev: GENESIS,
    };
    let mut bytes = header.encode().to_vec();
    bytes.extend_from_slice(data);
    // Infallible: the header was just encoded.
    let scan = segment::scan(&bytes).expect("a good header");
    assert!(scan.valid_len <= bytes.len());
    assert!(scan.valid_len == bytes.len() || scan.tail != Tail::Clean);
    assert_eq!(scan.last_seq, scan.records);
});
