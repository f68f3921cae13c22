//! A call recording's audio: the caller on the left channel, the agent's side on the right,
//! encoded as stereo Opus (narrowband, 8 kHz in) and written as Ogg Opus (RFC 7845) page by
//! page, so whatever the recording's file holds after a crash plays up to its last page.
use std::time::Duration;

use super::ogg_opus::{OggOpusWriter, OpusHead};
use super::opus::OpusError;
use super::tone::SAMPLE_RATE;

/// The bitrates a two-channel narrowband recording may use, in bit/s.
pub const BITRATES: std::ops::RangeInclusive<u32> = 8_000..=64_000;

/// libopus's encoder complexity for recordings (0–10).
const RECORDING_COMPLEXITY: i32 = 5;

/// 48 kHz samples per 8 kHz sample: Ogg Opus counts time at 48 kHz whatever the input rate.
const TO_48K: u64 = 48_000 / SAMPLE_RATE as u64;

pub struct StereoRecorder {
    encoder: opus::Encoder,
    writer: OggOpusWriter,
    samples_per_frame: usize,
    interleaved: Vec<i16>,
    packet: Vec<u8>,
    /// Frames recorded (each `samples_per_frame` per channel).
    frames: u64,
    /// 48 kHz samples of the encoder's lookahead.
    pre_skip: u16,
}

impl std::fmt::Debug for StereoRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StereoRecorder")
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl StereoRecorder {
    /// A recording of frames of `samples_per_frame` samples per channel (160: 20 ms) at
    /// `bitrate`, with its stream's `serial` and `tags` (`KEY=value`); and the bytes that
    /// start its file (the Ogg Opus headers).
    pub fn start(
        serial: u32,
        bitrate: u32,
        samples_per_frame: usize,
        tags: &[String],
    ) -> Result<(Self, Vec<u8>), OpusError> {
        if !BITRATES.contains(&bitrate) {
            return Err(OpusError::Setting {
                setting: "bitrate",
                value: bitrate.into(),
                detail: "outside 8000-64000 for a two-channel recording",
            });
        }
        let mut encoder =
            opus::Encoder::new(SAMPLE_RATE, opus::Channels::Stereo, opus::Application::Voip)
                .map_err(|e| OpusError::Create {
                    what: "stereo encoder",
                    detail: e.description(),
                })?;
        let setting = |setting: &'static str, value: i64| {
            move |e: opus::Error| OpusError::Setting {
                setting,
                value,
                detail: e.description(),
            }
        };
        // In range after the check above, so the conversion is exact.
        encoder
            .set_bitrate(opus::Bitrate::Bits(bitrate as i32))
            .map_err(setting("bitrate", bitrate.into()))?;
        encoder
            .set_signal(opus::Signal::Voice)
            .map_err(setting("signal", 0))?;
        // Half of libopus's default effort: a recording is for listening back, not for a
        // lossy link, and every recorded call pays it 50 times a second
        // (`cargo bench --bench media -- recording`).
        encoder
            .set_complexity(RECORDING_COMPLEXITY)
            .map_err(setting("complexity", RECORDING_COMPLEXITY.into()))?;
        let lookahead = encoder.get_lookahead().map_err(setting("lookahead", 0))?;
        let pre_skip = u16::try_from(i64::from(lookahead) * TO_48K as i64).map_err(|_| {
            OpusError::Setting {
                setting: "lookahead",
                value: lookahead.into(),
                detail: "longer than a pre-skip can say",
            }
        })?;
        let head = OpusHead {
            channels: 2,
            pre_skip,
            input_rate: SAMPLE_RATE,
        };
        let vendor = concat!("trunkgate ", env!("CARGO_PKG_VERSION"));
        let (writer, header) = OggOpusWriter::start(serial, &head, vendor, tags);
        let recorder = StereoRecorder {
            encoder,
            writer,
            samples_per_frame,
            interleaved: vec![0; samples_per_frame * 2],
            packet: vec![0; 1275],
            frames: 0,
            pre_skip,
        };
        Ok((recorder, header))
    }

    /// One frame period: what the caller said (left) and what the caller heard from the
    /// agent's side (right); a short frame is padded with silence. Returns the bytes to append
    /// when a page is complete.
    pub fn frame(&mut self, caller: &[i16], agent: &[i16]) -> Result<Option<Vec<u8>>, OpusError> {
        for (i, pair) in self.interleaved.chunks_exact_mut(2).enumerate() {
            pair[0] = caller.get(i).copied().unwrap_or(0);
            pair[1] = agent.get(i).copied().unwrap_or(0);
        }
        self.frames += 1;
        self.encode_interleaved()
    }

    /// Encodes the interleaved frame and hands its packet to the Ogg writer.
    fn encode_interleaved(&mut self) -> Result<Option<Vec<u8>>, OpusError> {
        let len = self
            .encoder
            .encode(&self.interleaved, &mut self.packet)
            .map_err(|e| OpusError::Encode {
                detail: e.description(),
            })?;
        Ok(self.writer.push(&self.packet[..len], self.frame_48k()))
    }

    /// A frame's length in 48 kHz samples.
    fn frame_48k(&self) -> u32 {
        (self.samples_per_frame as u64 * TO_48K) as u32
    }

    /// The pending audio as a page now (before a pause, say), if any.
    pub fn flush(&mut self) -> Option<Vec<u8>> {
        self.writer.flush()
    }

    /// The last bytes of the file: silence is encoded until the encoder has given out all the
    /// audio its lookahead held back, and playback is trimmed to the audio recorded.
    pub fn finish(&mut self) -> Result<Vec<u8>, OpusError> {
        let recorded = self.frames * u64::from(self.frame_48k());
        let needed = recorded + u64::from(self.pre_skip);
        let mut out = Vec::new();
        let mut encoded = recorded;
        self.interleaved.fill(0);
        while encoded < needed {
            out.extend(self.encode_interleaved()?.unwrap_or_default());
            encoded += u64::from(self.frame_48k());
        }
        out.extend(self.writer.finish(recorded));
        Ok(out)
    }

    /// How much audio is recorded.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(
            self.frames * self.samples_per_frame as u64 * 1_000_000 / u64::from(SAMPLE_RATE),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bitrate_outside_the_range_is_refused_by_name() {
        let err = StereoRecorder::start(1, 4_000, 160, &[]).unwrap_err();
        assert!(err.to_string().contains("bitrate"), "{err}");
    }

    #[test]
    fn the_duration_counts_frames_and_the_end_covers_the_lookahead() {
        let (mut recorder, header) = StereoRecorder::start(1, 24_000, 160, &[]).unwrap();
        assert!(header.starts_with(b"OggS"));
        for _ in 0..10 {
            recorder.frame(&[100; 160], &[-100; 80]).unwrap();
        }
        assert_eq!(recorder.duration(), Duration::from_millis(200));
        let end = recorder.finish().unwrap();
        // The last page says where playback ends: pre-skip plus the 200 ms recorded.
        let page = end.windows(4).rposition(|w| w == b"OggS").unwrap();
        assert_eq!(end[page + 5], 0x04, "end of stream");
        let granule = u64::from_le_bytes(end[page + 6..page + 14].try_into().unwrap());
        assert_eq!(granule, u64::from(recorder.pre_skip) + 10 * 960);
    }
}
