//! Tone generation: DTMF digits, call-progress tones (ringback, busy) and any other sum of sines
//! gated by a cadence.
//!
//! Levels are given in dBm0, the unit telephony specifications use, so a tone plan can be copied
//! from a carrier's or a standard's table without converting. The reference is G.711's: a 0 dBm0
//! sine peaks 3.17 dB below the µ-law clip level, i.e. at about 22 657 in 16-bit linear PCM.
//!
//! Oscillator phases run continuously across `fill` calls and across cadence off-periods, so
//! frames of any size concatenate into one clean signal.

use std::str::FromStr;
use std::time::Duration;

/// Sample rate of every media path in trunkgate.
pub const SAMPLE_RATE: u32 = 8000;

/// Peak of a 0 dBm0 sine in 16-bit linear PCM: the µ-law clip level (8159 in 14-bit, i.e.
/// 32636 in 16-bit) lowered by 3.17 dB (ITU-T G.711's digital milliwatt).
pub const DBM0_REFERENCE_PEAK: f32 = 22_657.0;

/// Row (low-group) DTMF frequencies in Hz, ITU-T Q.23.
pub const DTMF_LOW_HZ: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// Column (high-group) DTMF frequencies in Hz, ITU-T Q.23.
pub const DTMF_HIGH_HZ: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// The keypad: row index picks the low tone, column index the high tone.
pub const DTMF_KEYPAD: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Errors building a tone; each names the offending value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToneError {
    #[error("{digit:?} is not a dtmf digit (expected 0-9, *, #, A-D)")]
    UnknownDigit { digit: char },
    #[error(
        "tone frequency {frequency_hz} hz is not between 0 and the nyquist limit {nyquist_hz} hz"
    )]
    FrequencyOutOfRange { frequency_hz: f32, nyquist_hz: f32 },
    #[error("tone level {level_dbm0} dbm0 is not a finite number")]
    InvalidLevel { level_dbm0: f32 },
    #[error("cadence {cadence:?} is invalid: {reason}")]
    InvalidCadence {
        cadence: String,
        reason: &'static str,
    },
}

/// The low and high frequencies of a DTMF digit, `None` for anything that is not a digit.
pub fn dtmf_frequencies(digit: char) -> Option<(f32, f32)> {
    let digit = digit.to_ascii_uppercase();
    DTMF_KEYPAD.iter().enumerate().find_map(|(row, keys)| {
        keys.iter()
            .position(|&key| key == digit)
            .map(|column| (DTMF_LOW_HZ[row], DTMF_HIGH_HZ[column]))
    })
}

/// Peak amplitude in 16-bit PCM of a sine at `level_dbm0`.
pub fn dbm0_to_peak(level_dbm0: f32) -> f32 {
    DBM0_REFERENCE_PEAK * 10f32.powf(level_dbm0 / 20.0)
}

/// Level in dBm0 of a sine whose peak amplitude in 16-bit PCM is `peak`.
pub fn peak_to_dbm0(peak: f32) -> f32 {
    20.0 * (peak / DBM0_REFERENCE_PEAK).log10()
}

/// One sine of a tone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToneComponent {
    pub frequency_hz: f32,
    pub level_dbm0: f32,
}

/// When a tone sounds: alternating on/off periods, starting with "on".
///
/// Kept as a list rather than one on/off pair because real tone plans need it (the UK ringback
/// is 0.4 s on, 0.2 s off, 0.4 s on, 2 s off).
#[derive(Debug, Clone, PartialEq)]
pub struct Cadence {
    /// Alternating on, off, on, off… durations. Empty means "always on".
    periods: Vec<Duration>,
    /// After the last period: start again (call progress) or stay silent (a DTMF burst).
    repeat: bool,
}

impl Cadence {
    /// Always on.
    pub fn continuous() -> Self {
        Cadence {
            periods: Vec::new(),
            repeat: true,
        }
    }

    /// `on, off, on, off…` repeated forever. An even count keeps on and off alternating across
    /// repetitions, so an odd count is refused.
    pub fn repeating(on_off: &[Duration]) -> Result<Self, ToneError> {
        let invalid = |reason| ToneError::InvalidCadence {
            cadence: format!("{on_off:?}"),
            reason,
        };
        if on_off.is_empty() || !on_off.len().is_multiple_of(2) {
            return Err(invalid("needs on/off pairs"));
        }
        if on_off.iter().all(Duration::is_zero) {
            return Err(invalid("all periods are zero"));
        }
        Ok(Cadence {
            periods: on_off.to_vec(),
            repeat: true,
        })
    }

    /// `on, off, on…` played once; silence afterwards.
    pub fn once(on_off: &[Duration]) -> Result<Self, ToneError> {
        if on_off.is_empty() {
            return Err(ToneError::InvalidCadence {
                cadence: format!("{on_off:?}"),
                reason: "needs at least one period",
            });
        }
        Ok(Cadence {
            periods: on_off.to_vec(),
            repeat: false,
        })
    }
}

/// Parses the form a tone plan in a config file uses: `continuous`, or milliseconds of
/// alternating on/off periods, `2000,4000` (repeating) or `once:100,100` (played once).
impl FromStr for Cadence {
    type Err = ToneError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text == "continuous" {
            return Ok(Cadence::continuous());
        }
        let (repeat, list) = match text.strip_prefix("once:") {
            Some(rest) => (false, rest),
            None => (true, text),
        };
        let periods = list
            .split(',')
            .map(|part| part.trim().parse::<u64>().map(Duration::from_millis))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ToneError::InvalidCadence {
                cadence: text.to_string(),
                reason: "expected comma-separated milliseconds",
            })?;
        let parsed = if repeat {
            Cadence::repeating(&periods)
        } else {
            Cadence::once(&periods)
        };
        parsed.map_err(|error| match error {
            ToneError::InvalidCadence { reason, .. } => ToneError::InvalidCadence {
                cadence: text.to_string(),
                reason,
            },
            other => other,
        })
    }
}

/// Produces a tone frame by frame.
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    oscillators: Vec<Oscillator>,
    /// Cadence periods converted to sample counts; empty for a continuous tone.
    period_samples: Vec<u64>,
    repeat: bool,
    period_index: usize,
    samples_into_period: u64,
    finished: bool,
}

#[derive(Debug, Clone)]
struct Oscillator {
    /// Phase in cycles, kept in [0, 1) so precision does not decay over a long call.
    phase: f64,
    cycles_per_sample: f64,
    peak: f64,
}

impl ToneGenerator {
    /// A tone at trunkgate's 8 kHz.
    pub fn new(components: &[ToneComponent], cadence: Cadence) -> Result<Self, ToneError> {
        Self::with_sample_rate(SAMPLE_RATE, components, cadence)
    }

    pub fn with_sample_rate(
        sample_rate: u32,
        components: &[ToneComponent],
        cadence: Cadence,
    ) -> Result<Self, ToneError> {
        let nyquist_hz = sample_rate as f32 / 2.0;
        let oscillators = components
            .iter()
            .map(|component| {
                if !(component.frequency_hz >= 0.0 && component.frequency_hz < nyquist_hz) {
                    return Err(ToneError::FrequencyOutOfRange {
                        frequency_hz: component.frequency_hz,
                        nyquist_hz,
                    });
                }
                if !component.level_dbm0.is_finite() {
                    return Err(ToneError::InvalidLevel {
                        level_dbm0: component.level_dbm0,
                    });
                }
                Ok(Oscillator {
                    phase: 0.0,
                    cycles_per_sample: f64::from(component.frequency_hz) / f64::from(sample_rate),
                    peak: f64::from(dbm0_to_peak(component.level_dbm0)),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let period_samples = cadence
            .periods
            .iter()
            .map(|period| (period.as_secs_f64() * f64::from(sample_rate)).round() as u64)
            .collect();
        Ok(ToneGenerator {
            oscillators,
            period_samples,
            repeat: cadence.repeat,
            period_index: 0,
            samples_into_period: 0,
            finished: false,
        })
    }

    /// A DTMF digit sounding continuously, both tones at `level_dbm0`.
    pub fn dtmf(digit: char, level_dbm0: f32) -> Result<Self, ToneError> {
        Self::new(&dtmf_components(digit, level_dbm0)?, Cadence::continuous())
    }

    /// One key press as a DTMF sender puts it on the line: `tone`, then `pause` of silence, then
    /// [`is_finished`](Self::is_finished).
    pub fn dtmf_burst(
        digit: char,
        level_dbm0: f32,
        tone: Duration,
        pause: Duration,
    ) -> Result<Self, ToneError> {
        Self::new(
            &dtmf_components(digit, level_dbm0)?,
            Cadence::once(&[tone, pause])?,
        )
    }

    /// North American ringback (ANSI T1.401 precise tone plan): 440 + 480 Hz at −19 dBm0,
    /// 2 s on, 4 s off.
    pub fn ringback() -> Self {
        Self::preset(440.0, 480.0, -19.0, 2000, 4000)
    }

    /// North American busy: 480 + 620 Hz at −24 dBm0, 0.5 s on, 0.5 s off.
    pub fn busy() -> Self {
        Self::preset(480.0, 620.0, -24.0, 500, 500)
    }

    fn preset(low_hz: f32, high_hz: f32, level_dbm0: f32, on_ms: u64, off_ms: u64) -> Self {
        let components = [
            ToneComponent {
                frequency_hz: low_hz,
                level_dbm0,
            },
            ToneComponent {
                frequency_hz: high_hz,
                level_dbm0,
            },
        ];
        let cadence = Cadence {
            periods: vec![Duration::from_millis(on_ms), Duration::from_millis(off_ms)],
            repeat: true,
        };
        // Fixed frequencies below 4 kHz and finite levels: construction cannot fail.
        Self::new(&components, cadence).expect("preset tone plans are valid at 8 kHz")
    }

    /// Writes the next `out.len()` samples.
    pub fn fill(&mut self, out: &mut [i16]) {
        for sample in out.iter_mut() {
            let sounding = self.advance_cadence();
            let mut value = 0.0f64;
            for oscillator in &mut self.oscillators {
                if sounding {
                    value += oscillator.peak * (std::f64::consts::TAU * oscillator.phase).sin();
                }
                oscillator.phase = (oscillator.phase + oscillator.cycles_per_sample).fract();
            }
            *sample = value
                .round()
                .clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16;
        }
    }

    /// True once a play-once cadence has run out; only silence follows.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether the current sample is in an "on" period; moves the cadence one sample on.
    fn advance_cadence(&mut self) -> bool {
        if self.period_samples.is_empty() {
            return true;
        }
        // Skip zero-length periods (and run out if a play-once cadence is over).
        while !self.finished && self.samples_into_period >= self.period_samples[self.period_index] {
            self.samples_into_period = 0;
            self.period_index += 1;
            if self.period_index == self.period_samples.len() {
                if self.repeat {
                    self.period_index = 0;
                } else {
                    self.finished = true;
                }
            }
        }
        if self.finished {
            return false;
        }
        self.samples_into_period += 1;
        self.period_index.is_multiple_of(2)
    }
}

fn dtmf_components(digit: char, level_dbm0: f32) -> Result<[ToneComponent; 2], ToneError> {
    let (low_hz, high_hz) = dtmf_frequencies(digit).ok_or(ToneError::UnknownDigit { digit })?;
    Ok([
        ToneComponent {
            frequency_hz: low_hz,
            level_dbm0,
        },
        ToneComponent {
            frequency_hz: high_hz,
            level_dbm0,
        },
    ])
}

#[cfg(test)]
mod tests;
