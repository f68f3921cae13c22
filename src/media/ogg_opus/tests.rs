//! The pages read back as a demuxer reads them: checksums, flags, sequence numbers, lacing,
//! headers and granule positions (the real decoders' view is in the recording integration
//! tests, with opus-tools).
use super::*;

/// One page as read back: flags, granule, sequence, packets (whole ones only: the writer never
/// splits a packet across pages).
#[derive(Debug)]
struct Page {
    flags: u8,
    granule: u64,
    serial: u32,
    sequence: u32,
    packets: Vec<Vec<u8>>,
}

fn read_pages(mut bytes: &[u8]) -> Vec<Page> {
    let mut pages = Vec::new();
    while !bytes.is_empty() {
        assert_eq!(&bytes[..4], b"OggS");
        assert_eq!(bytes[4], 0, "version");
        let segments = bytes[26] as usize;
        let lacing = &bytes[27..27 + segments];
        let body_len: usize = lacing.iter().map(|l| *l as usize).sum();
        let len = 27 + segments + body_len;
        let mut page = bytes[..len].to_vec();
        let stored = u32::from_le_bytes(page[22..26].try_into().unwrap());
        page[22..26].fill(0);
        assert_eq!(crc32(&page), stored, "checksum of page {}", pages.len());
        let mut packets = Vec::new();
        let mut body = &bytes[27 + segments..len];
        let mut current = Vec::new();
        for l in lacing {
            current.extend_from_slice(&body[..*l as usize]);
            body = &body[*l as usize..];
            if *l < 255 {
                packets.push(std::mem::take(&mut current));
            }
        }
        assert!(current.is_empty(), "a packet continued on the next page");
        pages.push(Page {
            flags: bytes[5],
            granule: u64::from_le_bytes(bytes[6..14].try_into().unwrap()),
            serial: u32::from_le_bytes(bytes[14..18].try_into().unwrap()),
            sequence: u32::from_le_bytes(bytes[18..22].try_into().unwrap()),
            packets,
        });
        bytes = &bytes[len..];
    }
    pages
}

const HEAD: OpusHead = OpusHead {
    channels: 2,
    pre_skip: 312,
    input_rate: 8000,
};

#[test]
fn the_checksum_is_oggs_crc32() {
    // CRC-32 with polynomial 0x04C11DB7, unreflected, init 0, no final XOR: the POSIX cksum
    // CRC before its final inversion (check value 0x765E7680).
    assert_eq!(crc32(b"123456789"), !0x765E_7680);
    assert_eq!(crc32(b""), 0);
}

#[test]
fn the_headers_come_first_each_on_its_own_page() {
    let tags = vec!["TRUNKGATE_CALL=c-7".to_string()];
    let (_, bytes) = OggOpusWriter::start(0xfeed, &HEAD, "trunkgate", &tags);
    let pages = read_pages(&bytes);
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[0].flags, BEGINNING);
    assert_eq!((pages[0].granule, pages[1].granule), (0, 0));
    assert_eq!((pages[0].sequence, pages[1].sequence), (0, 1));
    assert!(pages.iter().all(|p| p.serial == 0xfeed));
    let head = &pages[0].packets[0];
    assert_eq!(head.len(), 19);
    assert_eq!(&head[..8], b"OpusHead");
    assert_eq!(head[8], 1, "version");
    assert_eq!(head[9], 2, "channels");
    assert_eq!(u16::from_le_bytes([head[10], head[11]]), 312);
    assert_eq!(u32::from_le_bytes(head[12..16].try_into().unwrap()), 8000);
    assert_eq!(&head[16..], &[0, 0, 0], "no gain, mapping family 0");
    let tags = &pages[1].packets[0];
    assert_eq!(&tags[..8], b"OpusTags");
    assert_eq!(u32::from_le_bytes(tags[8..12].try_into().unwrap()), 9);
    assert_eq!(&tags[12..21], b"trunkgate");
    assert_eq!(u32::from_le_bytes(tags[21..25].try_into().unwrap()), 1);
    assert_eq!(u32::from_le_bytes(tags[25..29].try_into().unwrap()), 18);
    assert_eq!(&tags[29..], b"TRUNKGATE_CALL=c-7");
}

#[test]
fn audio_pages_hold_a_second_each_and_count_granules_at_48_khz() {
    let (mut writer, mut bytes) = OggOpusWriter::start(1, &HEAD, "trunkgate", &[]);
    let mut pages_returned = 0;
    for i in 0..120u32 {
        let packet = vec![i as u8; 40 + (i as usize % 7)];
        if let Some(page) = writer.push(&packet, 960) {
            pages_returned += 1;
            bytes.extend(page);
        }
    }
    assert_eq!(pages_returned, 2, "one page per 50 packets");
    // Exactly 100 packets: the end-of-stream page still completes one.
    let (mut exact, mut exact_bytes) = OggOpusWriter::start(2, &HEAD, "trunkgate", &[]);
    for _ in 0..100 {
        exact_bytes.extend(exact.push(&[5; 40], 960).unwrap_or_default());
    }
    exact_bytes.extend(exact.finish(100 * 960));
    let exact_pages = read_pages(&exact_bytes);
    assert!(exact_pages.iter().all(|p| !p.packets.is_empty()));
    assert_eq!(exact_pages.last().unwrap().flags, END);
    // 119 frames were really recorded, the 120th is the encoder's lookahead flushed out:
    // playback ends with the recorded audio, the pre-skip after the first sample.
    bytes.extend(writer.finish(119 * 960));
    let pages = read_pages(&bytes);
    assert_eq!(pages.len(), 5);
    assert_eq!(
        pages.iter().map(|p| p.sequence).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    assert_eq!(pages[2].packets.len(), 50);
    assert_eq!(pages[2].granule, 50 * 960);
    assert_eq!(pages[3].granule, 100 * 960);
    assert_eq!(pages[4].packets.len(), 20);
    assert_eq!(pages[4].flags, END);
    assert_eq!(pages[4].granule, 312 + 119 * 960);
    let all: Vec<&Vec<u8>> = pages[2..].iter().flat_map(|p| &p.packets).collect();
    assert_eq!(all.len(), 120);
    assert!(all
        .iter()
        .enumerate()
        .all(|(i, p)| p.len() == 40 + i % 7 && p.iter().all(|b| *b == i as u8)));
    // Finished: nothing more.
    assert!(writer.push(&[1, 2, 3], 960).is_none());
    assert!(writer.finish(0).is_empty());
}

#[test]
fn packets_of_255_bytes_and_their_multiples_end_with_a_zero_segment() {
    let (mut writer, mut bytes) = OggOpusWriter::start(1, &HEAD, "trunkgate", &[]);
    for len in [255, 510, 254, 256, 0, 1275] {
        assert!(writer.push(&vec![7; len], 960).is_none());
    }
    bytes.extend(writer.finish(6 * 960));
    let pages = read_pages(&bytes);
    let lens: Vec<usize> = pages[2].packets.iter().map(Vec::len).collect();
    assert_eq!(lens, [255, 510, 254, 256, 0, 1275]);
}

#[test]
fn big_packets_close_a_page_before_its_lacing_table_overflows() {
    let (mut writer, mut bytes) = OggOpusWriter::start(1, &HEAD, "trunkgate", &[]);
    for _ in 0..45 {
        if let Some(page) = writer.push(&[9; 1275], 960) {
            bytes.extend(page);
        }
    }
    bytes.extend(writer.finish(45 * 960));
    let pages = read_pages(&bytes);
    assert!(pages.len() > 3, "more than one audio page");
    assert_eq!(
        pages[2..].iter().map(|p| p.packets.len()).sum::<usize>(),
        45
    );
}

#[test]
fn a_flush_closes_the_page_now_and_the_stream_goes_on() {
    let (mut writer, mut bytes) = OggOpusWriter::start(1, &HEAD, "trunkgate", &[]);
    assert!(writer.flush().is_none(), "nothing pending");
    writer.push(&[1; 30], 960);
    assert!(
        writer.flush().is_none(),
        "the newest packet waits for the end-of-stream page"
    );
    writer.push(&[2; 30], 960);
    bytes.extend(writer.flush().unwrap());
    writer.push(&[3; 30], 960);
    bytes.extend(writer.finish(3 * 960));
    let pages = read_pages(&bytes);
    assert_eq!(pages[2].packets, [vec![1; 30]]);
    assert_eq!(pages[2].granule, 960);
    assert_eq!(pages[3].packets, [vec![2; 30], vec![3; 30]]);
    assert_eq!(pages[3].granule, 3 * 960, "never past the packets pushed");
    assert_eq!(pages[3].flags, END);
}
