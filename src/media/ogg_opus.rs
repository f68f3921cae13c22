//! Opus in Ogg (RFC 7845 over RFC 3533), written as bytes for the caller to append to a file:
//! the identification header (`OpusHead`) alone on the first page, the comment header
//! (`OpusTags`) on the next, then audio pages of about a second each, the last one marked end
//! of stream with its granule position trimmed to the audio really recorded. Every page is
//! complete and checksummed as it is returned, so a file cut short by a crash still plays up
//! to its last whole page.
//!
//! Granule positions count 48 kHz samples whatever the input rate (RFC 7845 §4), from the
//! stream's first decoded sample: the pre-skip the decoder drops is part of them, so a
//! stream's playback length is its last granule position less the pre-skip.

/// Audio pages are closed after this many packets: a second of 20 ms frames, the seek
/// granularity RFC 7845 §7 suggests and all a crash can lose.
pub const PACKETS_PER_PAGE: usize = 50;

/// The most segments an Ogg page's lacing table holds.
const MAX_SEGMENTS: usize = 255;

/// The segments of the longest Opus packet (1275 bytes, RFC 6716 §3.4).
const MAX_PACKET_SEGMENTS: usize = 1275 / 255 + 1;

const BEGINNING: u8 = 0x02;
const END: u8 = 0x04;

/// Writes one logical Opus stream.
#[derive(Debug)]
pub struct OggOpusWriter {
    serial: u32,
    sequence: u32,
    pre_skip: u16,
    /// 48 kHz samples through the last packet pushed, counted from the stream's first sample
    /// (the pre-skip is part of them).
    granule: u64,
    /// Packets waiting for the current audio page, each with the granule position at its end.
    /// The newest is always held back, so the end-of-stream page is never empty (a page with a
    /// granule position must complete a packet).
    pending: Vec<(Vec<u8>, u64)>,
    finished: bool,
}

/// What the identification header says about the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusHead {
    /// 1 or 2 (channel mapping family 0).
    pub channels: u8,
    /// 48 kHz samples the decoder drops at the start: the encoder's lookahead.
    pub pre_skip: u16,
    /// The rate the audio was recorded at, for players that want it back.
    pub input_rate: u32,
}

impl OggOpusWriter {
    /// The stream's first two pages (identification and comment headers), and the writer for
    /// its audio. `tags` are `KEY=value` comments (RFC 7845 §5.2).
    pub fn start(serial: u32, head: &OpusHead, vendor: &str, tags: &[String]) -> (Self, Vec<u8>) {
        let mut writer = OggOpusWriter {
            serial,
            sequence: 0,
            pre_skip: head.pre_skip,
            granule: 0,
            pending: Vec::new(),
            finished: false,
        };
        let mut out = Vec::new();
        writer.page(&mut out, BEGINNING, 0, &[&opus_head(head)]);
        writer.page(&mut out, 0, 0, &[&opus_tags(vendor, tags)]);
        (writer, out)
    }

    /// One Opus packet of `samples_48k` samples (per channel, at 48 kHz: 960 for 20 ms).
    /// Returns a page when one is complete.
    pub fn push(&mut self, packet: &[u8], samples_48k: u32) -> Option<Vec<u8>> {
        if self.finished {
            return None;
        }
        self.granule += u64::from(samples_48k);
        // A page holds up to 255 segments: close it before this packet could overflow it.
        let segments: usize = self.pending.iter().map(|(p, _)| p.len() / 255 + 1).sum();
        let page = if self.pending.len() >= PACKETS_PER_PAGE
            || segments + MAX_PACKET_SEGMENTS > MAX_SEGMENTS
        {
            let granule = self.pending.last().map_or(0, |(_, g)| *g);
            let mut out = Vec::new();
            self.write_pending(&mut out, 0, granule);
            Some(out)
        } else {
            None
        };
        self.pending.push((packet.to_vec(), self.granule));
        page
    }

    /// The pending packets as a page now (a pause, say), all but the newest, if any.
    pub fn flush(&mut self) -> Option<Vec<u8>> {
        if self.pending.len() < 2 || self.finished {
            return None;
        }
        let newest = self.pending.pop();
        let mut out = Vec::new();
        let granule = self.pending.last().map_or(0, |(_, g)| *g);
        self.write_pending(&mut out, 0, granule);
        self.pending.extend(newest);
        Some(out)
    }

    /// The last page, marked end of stream. `recorded_48k` is the audio really recorded (per
    /// channel, 48 kHz samples): the final granule position (pre-skip plus that) says where
    /// playback stops, so the padding after it is not played (RFC 7845 §4.5). The packets
    /// pushed must cover it: the encoder's last frames, pushed after the audio, carry the end
    /// of the audio its lookahead held back.
    pub fn finish(&mut self, recorded_48k: u64) -> Vec<u8> {
        if self.finished {
            return Vec::new();
        }
        let end = (u64::from(self.pre_skip) + recorded_48k).min(self.granule);
        let mut out = Vec::new();
        self.write_pending(&mut out, END, end);
        self.finished = true;
        out
    }

    fn write_pending(&mut self, out: &mut Vec<u8>, flags: u8, granule: u64) {
        let packets = std::mem::take(&mut self.pending);
        let refs: Vec<&[u8]> = packets.iter().map(|(p, _)| p.as_slice()).collect();
        self.page(out, flags, granule, &refs);
    }

    /// One page of whole packets (a packet longer than a page's lacing table allows is not
    /// something an Opus encoder makes: 1275 bytes at most).
    fn page(&mut self, out: &mut Vec<u8>, flags: u8, granule: u64, packets: &[&[u8]]) {
        let start = out.len();
        let mut lacing = Vec::new();
        for packet in packets {
            lacing.extend(std::iter::repeat_n(255u8, packet.len() / 255));
            // The remainder ends the packet: 0 when its length is a multiple of 255.
            lacing.push((packet.len() % 255) as u8);
        }
        out.extend_from_slice(b"OggS");
        out.push(0);
        out.push(flags);
        out.extend_from_slice(&granule.to_le_bytes());
        out.extend_from_slice(&self.serial.to_le_bytes());
        out.extend_from_slice(&self.sequence.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.push(lacing.len() as u8);
        out.extend_from_slice(&lacing);
        for packet in packets {
            out.extend_from_slice(packet);
        }
        let crc = crc32(&out[start..]);
        out[start + 22..start + 26].copy_from_slice(&crc.to_le_bytes());
        self.sequence += 1;
    }
}

/// The identification header, channel mapping family 0.
fn opus_head(head: &OpusHead) -> Vec<u8> {
    let mut p = Vec::with_capacity(19);
    p.extend_from_slice(b"OpusHead");
    p.push(1);
    p.push(head.channels);
    p.extend_from_slice(&head.pre_skip.to_le_bytes());
    p.extend_from_slice(&head.input_rate.to_le_bytes());
    p.extend_from_slice(&0i16.to_le_bytes());
    p.push(0);
    p
}

fn opus_tags(vendor: &str, tags: &[String]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(b"OpusTags");
    p.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    p.extend_from_slice(vendor.as_bytes());
    p.extend_from_slice(&(tags.len() as u32).to_le_bytes());
    for tag in tags {
        p.extend_from_slice(&(tag.len() as u32).to_le_bytes());
        p.extend_from_slice(tag.as_bytes());
    }
    p
}

/// Ogg's CRC-32: polynomial 0x04C11DB7, not reflected, initial value and final XOR 0.
pub fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut table = [0u32; 256];
        for (i, entry) in table.iter_mut().enumerate() {
            let mut r = (i as u32) << 24;
            for _ in 0..8 {
                r = if r & 0x8000_0000 != 0 {
                    (r << 1) ^ 0x04C1_1DB7
                } else {
                    r << 1
                };
            }
            *entry = r;
        }
        table
    });
    data.iter().fold(0u32, |crc, b| {
        (crc << 8) ^ table[((crc >> 24) as u8 ^ b) as usize]
    })
}

#[cfg(test)]
mod tests;

pub mod reader;
