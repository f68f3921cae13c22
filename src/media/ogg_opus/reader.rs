//! Reading a recording back: the Opus packets of an Ogg stream (RFC 3533 pages, RFC 7845
//! headers), decoded to PCM with the pre-skip dropped and the end trimmed to the last page's
//! granule position, as a player does. `trunkgate recording decrypt --wav` writes the result as
//! a WAV file for tools that take no Opus.
//!
//! A file cut short (a crash mid-call) gives what its whole pages hold; a damaged page (its
//! checksum wrong) ends the reading there, with what came before.
use super::crc32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OggError {
    #[error("not an Ogg Opus stream: {0}")]
    NotOpus(&'static str),
    #[error("opus: {0}")]
    Decode(String),
}

/// A recording decoded: interleaved PCM at `rate`, `channels` per frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub channels: u16,
    pub rate: u32,
    pub samples: Vec<i16>,
    /// The stream ended without its end-of-stream page (a file cut short).
    pub cut_short: bool,
}

/// A packet, with the granule position of its page when it is the last packet completed there.
type Packet = (Vec<u8>, Option<u64>);

/// The packets of the first logical stream in `bytes`, and whether the end-of-stream page was
/// seen.
fn packets(bytes: &[u8]) -> (Vec<Packet>, bool) {
    let mut out = Vec::new();
    let mut partial: Vec<u8> = Vec::new();
    let mut at = 0;
    let mut serial = None;
    let mut ended = false;
    while at + 27 <= bytes.len() && &bytes[at..at + 4] == b"OggS" {
        let header_type = bytes[at + 5];
        let granule = u64::from_le_bytes(bytes[at + 6..at + 14].try_into().unwrap_or([0; 8]));
        let page_serial = u32::from_le_bytes(bytes[at + 14..at + 18].try_into().unwrap_or([0; 4]));
        let crc = u32::from_le_bytes(bytes[at + 22..at + 26].try_into().unwrap_or([0; 4]));
        let segments = usize::from(bytes[at + 26]);
        let table_end = at + 27 + segments;
        if table_end > bytes.len() {
            break;
        }
        let lacing = &bytes[at + 27..table_end];
        let body: usize = lacing.iter().map(|l| usize::from(*l)).sum();
        let end = table_end + body;
        if end > bytes.len() {
            break;
        }
        let mut page = bytes[at..end].to_vec();
        page[22..26].fill(0);
        if crc32(&page) != crc {
            break;
        }
        if *serial.get_or_insert(page_serial) == page_serial {
            let mut offset = table_end;
            let last_complete = lacing.iter().rposition(|l| *l < 255);
            for (i, l) in lacing.iter().enumerate() {
                partial.extend_from_slice(&bytes[offset..offset + usize::from(*l)]);
                offset += usize::from(*l);
                if *l < 255 {
                    let granule = (Some(i) == last_complete).then_some(granule);
                    out.push((std::mem::take(&mut partial), granule));
                }
            }
            if header_type & 0x04 != 0 {
                ended = true;
                break;
            }
        }
        at = end;
    }
    (out, ended)
}

/// Decodes an Ogg Opus recording (one or two channels) to PCM at `rate` (8000, 12000, 16000,
/// 24000 or 48000).
pub fn decode(bytes: &[u8], rate: u32) -> Result<Decoded, OggError> {
    let (packets, ended) = packets(bytes);
    let mut packets = packets.into_iter();
    let (head, _) = packets.next().ok_or(OggError::NotOpus("no pages"))?;
    if head.len() < 19 || &head[..8] != b"OpusHead" {
        return Err(OggError::NotOpus("no OpusHead"));
    }
    let channels = head[9];
    let pre_skip_48k = u64::from(u16::from_le_bytes([head[10], head[11]]));
    let layout = match channels {
        1 => opus::Channels::Mono,
        2 => opus::Channels::Stereo,
        _ => return Err(OggError::NotOpus("more than two channels")),
    };
    match packets.next() {
        Some((tags, _)) if tags.starts_with(b"OpusTags") => {}
        _ => return Err(OggError::NotOpus("no OpusTags")),
    }
    let mut decoder =
        opus::Decoder::new(rate, layout).map_err(|e| OggError::Decode(e.to_string()))?;
    let per_48k = 48_000 / u64::from(rate);
    let channels = usize::from(channels);
    let mut samples = Vec::new();
    // 120 ms, the longest Opus packet, at 48 kHz.
    let mut frame = vec![0i16; 5760 * channels];
    let mut last_granule = None;
    for (packet, granule) in packets {
        let n = decoder
            .decode(&packet, &mut frame, false)
            .map_err(|e| OggError::Decode(e.to_string()))?;
        samples.extend_from_slice(&frame[..n * channels]);
        last_granule = granule.or(last_granule);
    }
    let skip = (pre_skip_48k / per_48k) as usize * channels;
    // The end-of-stream page's granule position says where playback stops (RFC 7845 §4).
    let end = match (ended, last_granule) {
        (true, Some(g)) => ((g / per_48k) as usize * channels).min(samples.len()),
        _ => samples.len(),
    };
    let samples = samples
        .get(skip..end.max(skip))
        .unwrap_or_default()
        .to_vec();
    Ok(Decoded {
        channels: channels as u16,
        rate,
        samples,
        cut_short: !ended,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::stereo_recorder::StereoRecorder;

    fn tone(hz: f64, frame: usize, level: f64) -> Vec<i16> {
        (0..160)
            .map(|i| {
                let t = (frame * 160 + i) as f64 / 8000.0;
                (level * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16
            })
            .collect()
    }

    fn recording(frames: usize) -> Vec<u8> {
        let (mut r, mut bytes) = StereoRecorder::start(3, 32_000, 160, &[]).unwrap();
        for f in 0..frames {
            bytes.extend(
                r.frame(&tone(600.0, f, 8000.0), &tone(1000.0, f, 8000.0))
                    .unwrap()
                    .unwrap_or_default(),
            );
        }
        bytes.extend(r.finish().unwrap());
        bytes
    }

    /// The strength of `hz` in one channel of interleaved stereo.
    fn level(pcm: &[i16], channel: usize, hz: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * hz / 8000.0;
        let (mut re, mut im, mut n) = (0.0, 0.0, 0.0);
        for (i, s) in pcm.iter().skip(channel).step_by(2).enumerate() {
            re += f64::from(*s) * (w * i as f64).cos();
            im += f64::from(*s) * (w * i as f64).sin();
            n += 1.0;
        }
        (re * re + im * im).sqrt() * 2.0 / n / 8000.0
    }

    #[test]
    fn a_recording_decodes_to_exactly_its_length_each_voice_on_its_channel() {
        let decoded = decode(&recording(150), 8000).unwrap();
        assert_eq!((decoded.channels, decoded.rate), (2, 8000));
        assert!(!decoded.cut_short);
        assert_eq!(
            decoded.samples.len(),
            150 * 160 * 2,
            "3 s, trimmed to what was recorded"
        );
        let pcm = &decoded.samples[8000..];
        let levels = [
            level(pcm, 0, 600.0),
            level(pcm, 0, 1000.0),
            level(pcm, 1, 1000.0),
            level(pcm, 1, 600.0),
        ];
        // Stereo Opus at 32 kbit/s codes the channels jointly: a trace of the other side.
        assert!(levels[0] > 0.8 && levels[1] < 0.1, "{levels:?}");
        assert!(levels[2] > 0.8 && levels[3] < 0.1, "{levels:?}");
    }

    #[test]
    fn a_file_cut_short_gives_its_whole_pages_and_says_so() {
        let bytes = recording(150);
        let decoded = decode(&bytes[..bytes.len() * 2 / 3], 8000).unwrap();
        assert!(decoded.cut_short);
        // The whole first page of audio (a second) less the pre-skip.
        assert!(
            decoded.samples.len() > 2 * 7900,
            "{}",
            decoded.samples.len()
        );
        assert!(decoded.samples.len() < 150 * 160 * 2);
    }

    #[test]
    fn what_is_not_ogg_opus_is_refused() {
        assert!(decode(b"RIFF....WAVE", 8000).is_err());
        let mut bytes = recording(5);
        bytes[40] ^= 0xff;
        assert!(
            decode(&bytes, 8000).is_err(),
            "a damaged first page leaves no header"
        );
    }
}
