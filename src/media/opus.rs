//! Opus for the agent leg, wrapped so the rest of the gateway sees 20 ms frames of 8 kHz PCM.
//!
//! The carrier leg is G.711, so nothing above 4 kHz ever reaches us. Both ends therefore run
//! libopus at 8 kHz: no resampler in the call path, and the encoder is capped at narrowband so
//! it cannot spend bits on bands that hold only the G.711 quantisation noise (an encoder at
//! 48 kHz fed upsampled telephone audio measurably wastes its bitrate on them).
//!
//! Loss is the agent leg's normal weather (home Wi-Fi, mobile data), so in-band FEC is on by
//! default: every SILK packet carries a coarse copy of the previous frame, which the receiver
//! decodes in place of a lost packet when the next one is already buffered
//! ([`OpusDecoder::recover_from_fec`]). Without the next packet, libopus's own concealment
//! extrapolates ([`OpusDecoder::conceal`]).

use serde::Deserialize;
use thiserror::Error;

/// libopus runs at the G.711 rate, see the module docs.
pub const SAMPLE_RATE: u32 = 8000;
/// 20 ms at [`SAMPLE_RATE`]: the frame every agent-leg component exchanges.
pub const FRAME_SAMPLES: usize = 160;
/// Longest audio one Opus packet can hold (120 ms), at [`SAMPLE_RATE`].
pub const MAX_PACKET_SAMPLES: usize = 960;
/// Output room given to the encoder. libopus fits its packet into whatever room it is given
/// (lowering that packet's bitrate if it must), and a packet goes out in one QUIC datagram, so
/// room beyond an Ethernet MTU could never be used; libopus's own "always enough" of 4000
/// bytes cost every call 2.5 KiB more and a 4000-byte clear on every frame.
const MAX_ENCODED_BYTES: usize = 1500;
/// No QUIC datagram is longer, so a longer "packet" is garbage; refusing it early also keeps
/// lengths far away from the `i32` the C API takes.
pub const MAX_PACKET_BYTES: usize = 65_535;
/// Frame lengths libopus accepts at 8 kHz: 2.5, 5, 10, 20, 40 and 60 ms.
const ENCODABLE_FRAME_SAMPLES: [usize; 6] = [20, 40, 80, 160, 320, 480];
/// Concealment and FEC work in steps of 2.5 ms.
const CONCEAL_STEP_SAMPLES: usize = 20;

/// Encoder settings for the agent leg (`[agents.opus]` in the configuration file).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpusConfig {
    /// Bits per second. 24 kbit/s already exceeds what narrowband speech needs; more mostly
    /// buys room for the FEC copy.
    pub bitrate: u32,
    /// 0–10. Measured on G.711-sourced speech (the bench's Opus curve), quality barely moves
    /// with complexity while encoding time more than quadruples from 1 to 10; at 40 kbit/s
    /// complexity 1 stays within 0.1 PESQ of 5, with and without loss, at 45 % of its cost.
    pub complexity: u8,
    /// In-band FEC: each packet also carries the previous frame at lower quality.
    pub fec: bool,
    /// The loss the encoder plans for: more spends more bits on the FEC copy.
    pub expected_loss_pct: u8,
    /// Discontinuous transmission: silent frames are not sent; the receiver plays silence.
    pub dtx: bool,
}

impl Default for OpusConfig {
    fn default() -> Self {
        Self {
            bitrate: 40_000,
            complexity: 1,
            fec: true,
            expected_loss_pct: 5,
            dtx: false,
        }
    }
}

/// Range libopus honours for narrowband speech; below it SILK cannot keep up, above it the
/// bits are wasted on a 4 kHz signal.
pub const BITRATE_RANGE: std::ops::RangeInclusive<u32> = 6_000..=64_000;
pub const MAX_COMPLEXITY: u8 = 10;

/// A value in [`OpusConfig`] the encoder would reject or silently clamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusConfigProblem {
    /// Key inside the `[agents.opus]` table, e.g. `"bitrate"`; the embedding section prefixes
    /// its own path.
    pub key: &'static str,
    pub message: String,
}

impl OpusConfig {
    /// All problems at once, so an operator fixes the file in one go.
    pub fn validate(&self) -> Vec<OpusConfigProblem> {
        let mut problems = Vec::new();
        if !BITRATE_RANGE.contains(&self.bitrate) {
            problems.push(OpusConfigProblem {
                key: "bitrate",
                message: format!(
                    "opus bitrate {} is outside {}..={} bit/s",
                    self.bitrate,
                    BITRATE_RANGE.start(),
                    BITRATE_RANGE.end()
                ),
            });
        }
        if self.complexity > MAX_COMPLEXITY {
            problems.push(OpusConfigProblem {
                key: "complexity",
                message: format!(
                    "opus complexity {} is outside 0..={MAX_COMPLEXITY}",
                    self.complexity
                ),
            });
        }
        if self.expected_loss_pct > 100 {
            problems.push(OpusConfigProblem {
                key: "expected_loss_pct",
                message: format!(
                    "opus expected loss {} % is outside 0..=100",
                    self.expected_loss_pct
                ),
            });
        }
        problems
    }
}

/// A failure reported by libopus (its own text in `detail`) or a call it would reject.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OpusError {
    #[error("opus {what} could not be created at {SAMPLE_RATE} Hz: {detail}")]
    Create {
        what: &'static str,
        detail: &'static str,
    },
    #[error("opus encoder rejected {setting} = {value}: {detail}")]
    Setting {
        setting: &'static str,
        value: i64,
        detail: &'static str,
    },
    #[error("opus cannot encode a frame of {samples} samples: at {SAMPLE_RATE} Hz it takes 20, 40, 80, 160, 320 or 480")]
    FrameLength { samples: usize },
    #[error("opus encoding failed: {detail}")]
    Encode { detail: &'static str },
    #[error("opus packet is empty (a lost packet is concealed, not decoded)")]
    EmptyPacket,
    #[error("opus packet of {len} bytes is longer than any datagram ({MAX_PACKET_BYTES})")]
    PacketTooLong { len: usize },
    #[error("opus packet of {len} bytes could not be decoded: {detail}")]
    Decode { len: usize, detail: &'static str },
    #[error("opus cannot conceal {samples} samples: it takes multiples of {CONCEAL_STEP_SAMPLES} up to {MAX_PACKET_SAMPLES}")]
    ConcealLength { samples: usize },
}

/// Turns libopus's refusal of `setting` = `value` into our error.
fn setting(setting: &'static str, value: i64) -> impl Fn(opus::Error) -> OpusError {
    move |e: opus::Error| OpusError::Setting {
        setting,
        value,
        detail: detail(&e),
    }
}

/// libopus's own description of the error (from `opus_strerror`).
fn detail(error: &opus::Error) -> &'static str {
    error.description()
}

/// One direction's encoder: PCM from the carrier leg in, Opus packets for the agent out.
pub struct OpusEncoder {
    inner: opus::Encoder,
    dtx: bool,
    /// What the configuration asked for; [`OpusEncoder::protect`] departs from it and back.
    configured: OpusConfig,
    protection: Protection,
}

/// How the sender protects its frames, from the receiver's feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protection {
    /// As configured: in-band FEC at the configured bitrate and expected loss (at least).
    #[default]
    InBand,
    /// Whole earlier frames ride in each packet (RFC 2198): in-band FEC's weaker copy of the
    /// previous frame adds nothing, so it is off and the bitrate drops to
    /// [`REDUNDANT_BITRATE`], which narrowband speech needs without it.
    Redundant,
}

/// Bitrate while whole frames are repeated: 24 kbit/s scores as well as 40 without FEC
/// (docs/performance.md, the Opus curve), so each copy costs 60 bytes instead of 100.
pub const REDUNDANT_BITRATE: u32 = 24_000;

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder")
            .field("dtx", &self.dtx)
            .finish_non_exhaustive()
    }
}

impl OpusEncoder {
    /// Out-of-range settings (see [`OpusConfig::validate`]) come back as [`OpusError::Setting`].
    pub fn new(config: &OpusConfig) -> Result<Self, OpusError> {
        let mut inner =
            opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)
                .map_err(|e| OpusError::Create {
                    what: "encoder",
                    detail: detail(&e),
                })?;
        // Checked here because libopus clamps instead of refusing out-of-range bitrates.
        if !BITRATE_RANGE.contains(&config.bitrate) {
            return Err(OpusError::Setting {
                setting: "bitrate",
                value: config.bitrate.into(),
                detail: "outside the narrowband range",
            });
        }
        if config.expected_loss_pct > 100 {
            return Err(OpusError::Setting {
                setting: "expected_loss_pct",
                value: config.expected_loss_pct.into(),
                detail: "not a percentage",
            });
        }
        // In range after the check above, so the conversion is exact.
        let bitrate = config.bitrate as i32;
        inner
            .set_bitrate(opus::Bitrate::Bits(bitrate))
            .map_err(setting("bitrate", config.bitrate.into()))?;
        inner
            .set_complexity(config.complexity.into())
            .map_err(setting("complexity", config.complexity.into()))?;
        inner
            .set_max_bandwidth(opus::Bandwidth::Narrowband)
            .map_err(setting("max_bandwidth", 0))?;
        inner
            .set_signal(opus::Signal::Voice)
            .map_err(setting("signal", 0))?;
        inner
            .set_inband_fec(config.fec)
            .map_err(setting("fec", config.fec.into()))?;
        inner
            .set_packet_loss_perc(config.expected_loss_pct.into())
            .map_err(setting(
                "expected_loss_pct",
                config.expected_loss_pct.into(),
            ))?;
        inner
            .set_dtx(config.dtx)
            .map_err(setting("dtx", config.dtx.into()))?;
        Ok(Self {
            inner,
            dtx: config.dtx,
            configured: config.clone(),
            protection: Protection::InBand,
        })
    }

    /// Follows the receiver's feedback: `protection`, and the loss it reported (percent), which
    /// in-band FEC plans for when above the configured expectation. libopus is only told of
    /// changes.
    pub fn protect(
        &mut self,
        protection: Protection,
        reported_loss_pct: u8,
    ) -> Result<(), OpusError> {
        let (fec, bitrate, loss) = match protection {
            Protection::InBand => (
                self.configured.fec,
                self.configured.bitrate,
                self.configured
                    .expected_loss_pct
                    .max(reported_loss_pct.min(100)),
            ),
            Protection::Redundant => (false, self.configured.bitrate.min(REDUNDANT_BITRATE), 0),
        };
        if protection != self.protection {
            self.inner
                .set_inband_fec(fec)
                .map_err(setting("fec", fec.into()))?;
            // Within BITRATE_RANGE: the configured one was checked in `new`, and the other is
            // at most that.
            self.inner
                .set_bitrate(opus::Bitrate::Bits(bitrate as i32))
                .map_err(setting("bitrate", bitrate.into()))?;
            self.protection = protection;
        }
        let current = self.inner.get_packet_loss_perc().unwrap_or(-1);
        if current != i32::from(loss) {
            self.inner
                .set_packet_loss_perc(loss.into())
                .map_err(setting("expected_loss_pct", loss.into()))?;
        }
        Ok(())
    }

    pub fn protection(&self) -> Protection {
        self.protection
    }

    /// Appends one Opus packet for `pcm` (normally [`FRAME_SAMPLES`]) to `out`, so a caller can
    /// encode straight behind an RTP header it already wrote. On error `out` is unchanged.
    ///
    /// With DTX on, a silent frame comes back as a packet of at most 2 bytes
    /// ([`is_dtx_packet`]), which need not be sent.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), OpusError> {
        if !ENCODABLE_FRAME_SAMPLES.contains(&pcm.len()) {
            return Err(OpusError::FrameLength { samples: pcm.len() });
        }
        let start = out.len();
        out.resize(start + MAX_ENCODED_BYTES, 0);
        match self.inner.encode(pcm, &mut out[start..]) {
            Ok(written) => {
                out.truncate(start + written);
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(OpusError::Encode { detail: detail(&e) })
            }
        }
    }

    /// Samples of delay the encoder adds (its look-ahead), at [`SAMPLE_RATE`].
    pub fn lookahead(&mut self) -> Result<usize, OpusError> {
        let samples = self.inner.get_lookahead().map_err(|e| OpusError::Setting {
            setting: "lookahead",
            value: 0,
            detail: detail(&e),
        })?;
        Ok(usize::try_from(samples).unwrap_or(0))
    }

    pub fn dtx(&self) -> bool {
        self.dtx
    }
}

/// libopus marks a frame DTX left out by returning a packet of at most two bytes (the TOC alone).
pub fn is_dtx_packet(packet: &[u8]) -> bool {
    packet.len() <= 2
}

/// One direction's decoder: Opus packets from the agent in, 8 kHz PCM out.
pub struct OpusDecoder {
    inner: opus::Decoder,
    /// Scratch for libopus to write into before the samples are appended to the caller's Vec.
    scratch: Vec<i16>,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder").finish_non_exhaustive()
    }
}

impl OpusDecoder {
    pub fn new() -> Result<Self, OpusError> {
        let inner = opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono).map_err(|e| {
            OpusError::Create {
                what: "decoder",
                detail: detail(&e),
            }
        })?;
        Ok(Self {
            inner,
            scratch: vec![0; MAX_PACKET_SAMPLES],
        })
    }

    /// Appends the packet's audio to `out` and returns how many samples that was. Any byte
    /// string is accepted: garbage is an error, never a panic, and leaves `out` unchanged.
    pub fn decode(&mut self, packet: &[u8], out: &mut Vec<i16>) -> Result<usize, OpusError> {
        if packet.is_empty() {
            return Err(OpusError::EmptyPacket);
        }
        self.decode_into(packet, MAX_PACKET_SAMPLES, false, out)
    }

    /// Appends `samples` of libopus's concealment for a lost packet (it continues the last
    /// pitch and spectrum and fades out over long losses).
    pub fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<(), OpusError> {
        check_conceal_length(samples)?;
        self.decode_into(&[], samples, false, out).map(|_| ())
    }

    /// Appends `samples` of the frame *before* `next_packet`, rebuilt from the FEC copy that
    /// packet carries. Without one ([`packet_has_fec`] is false) libopus conceals instead, so the
    /// call is always safe. Decode `next_packet` normally afterwards, in its own turn.
    pub fn recover_from_fec(
        &mut self,
        next_packet: &[u8],
        samples: usize,
        out: &mut Vec<i16>,
    ) -> Result<(), OpusError> {
        check_conceal_length(samples)?;
        if next_packet.is_empty() {
            return Err(OpusError::EmptyPacket);
        }
        self.decode_into(next_packet, samples, true, out)
            .map(|_| ())
    }

    /// Forgets the stream, e.g. when the sender's SSRC changes.
    pub fn reset(&mut self) -> Result<(), OpusError> {
        self.inner.reset_state().map_err(|e| OpusError::Decode {
            len: 0,
            detail: detail(&e),
        })
    }

    fn decode_into(
        &mut self,
        packet: &[u8],
        max_samples: usize,
        fec: bool,
        out: &mut Vec<i16>,
    ) -> Result<usize, OpusError> {
        if packet.len() > MAX_PACKET_BYTES {
            return Err(OpusError::PacketTooLong { len: packet.len() });
        }
        // Both callers bound max_samples by MAX_PACKET_SAMPLES, the scratch length.
        let scratch = &mut self.scratch[..max_samples.min(MAX_PACKET_SAMPLES)];
        let decoded = self
            .inner
            .decode(packet, scratch, fec)
            .map_err(|e| OpusError::Decode {
                len: packet.len(),
                detail: detail(&e),
            })?;
        // libopus never reports more samples than the room it was given.
        let decoded = decoded.min(scratch.len());
        out.extend_from_slice(&scratch[..decoded]);
        Ok(decoded)
    }
}

fn check_conceal_length(samples: usize) -> Result<(), OpusError> {
    if samples == 0 || samples > MAX_PACKET_SAMPLES || !samples.is_multiple_of(CONCEAL_STEP_SAMPLES)
    {
        return Err(OpusError::ConcealLength { samples });
    }
    Ok(())
}

/// Audio in `packet` at [`SAMPLE_RATE`], read from its TOC without decoding; `None` for
/// anything that is not a well-formed Opus packet header.
pub fn packet_samples(packet: &[u8]) -> Option<usize> {
    if packet.is_empty() || packet.len() > MAX_PACKET_BYTES {
        return None;
    }
    opus::packet::get_nb_samples(packet, SAMPLE_RATE).ok()
}

/// Whether `packet` carries a FEC copy of the frame before it, so that
/// [`OpusDecoder::recover_from_fec`] rebuilds audio rather than concealing.
///
/// FEC (SILK's "LBRR" frames) exists only in SILK and hybrid packets (TOC config below 16,
/// RFC 6716 §3.1). Each SILK layer starts with one voice-activity flag per 20 ms SILK frame
/// followed by the LBRR flag, all coded with probability one half (RFC 6716 §4.2.3-§4.2.4); with
/// even odds the range coder's first decisions are exactly the leading bits of the frame, so
/// the flag is bit `frames` counted from the most significant bit of the first frame's first byte.
pub fn packet_has_fec(packet: &[u8]) -> bool {
    let Some(&toc) = packet.first() else {
        return false;
    };
    if packet.len() > MAX_PACKET_BYTES {
        return false;
    }
    let config = toc >> 3;
    if config >= 16 {
        return false;
    }
    // SILK-only configs cycle 10/20/40/60 ms; hybrid ones 10/20 ms.
    let frame_ms = if config < 12 {
        [10, 20, 40, 60][usize::from(config % 4)]
    } else {
        [10, 20][usize::from(config % 2)]
    };
    let silk_frames = if frame_ms <= 20 { 1 } else { frame_ms / 20 };
    let Ok(parsed) = opus::packet::parse(packet) else {
        return false;
    };
    let Some(&first_byte) = parsed.frames.first().and_then(|frame| frame.first()) else {
        return false;
    };
    (first_byte >> (7 - silk_frames)) & 1 == 1
}

#[cfg(test)]
pub(crate) mod tests;
