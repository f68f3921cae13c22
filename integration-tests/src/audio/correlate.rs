//! Finding a known prompt inside a recording by normalised cross-correlation.
//!
//! For every lag the score is the cosine similarity between the reference and the part of
//! the recording under it, over the samples where both exist: 1.0 for an exact (scaled) copy,
//! around 0.99 after a G.711 round trip, near 0 for unrelated audio. Lags where the reference
//! hangs over either end of the recording are allowed as long as [`MIN_OVERLAP`] of it is
//! inside, so a prompt whose first syllable was lost while media started is still found.

use super::fft::fft;

/// The fraction of the reference that must lie inside the recording at a candidate lag.
pub const MIN_OVERLAP: f64 = 0.75;

/// Windows quieter than this (mean square, about -90 dBFS) score 0: their cosine similarity
/// would be dominated by rounding noise.
const SILENT_MEAN_SQUARE: f64 = 1e-9;

/// Where a reference best lines up with a recording.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Match {
    /// The recording sample where the reference's first sample falls (negative if the
    /// reference started before the recording did).
    pub offset: isize,
    /// Normalised cross-correlation at that lag, -1.0..=1.0.
    pub score: f64,
    /// How many reference samples overlap the recording there.
    pub overlap: usize,
}

/// The lag with the highest normalised correlation, or `None` if nothing can be compared
/// (empty or silent input, or a recording shorter than [`MIN_OVERLAP`] of the reference).
pub fn best_match(recording: &[f32], reference: &[f32]) -> Option<Match> {
    let (n, m) = (recording.len(), reference.len());
    if n == 0 || m == 0 {
        return None;
    }
    let min_overlap = ((m as f64 * MIN_OVERLAP).ceil() as usize).max(1);
    if n < min_overlap {
        return None;
    }
    let raw = cross_correlation(recording, reference);
    let rec_energy = prefix_energy(recording);
    let ref_energy = prefix_energy(reference);
    let size = raw.len();

    let mut best: Option<Match> = None;
    // Lag k: reference sample i meets recording sample i + k.
    let first_lag = -((m - min_overlap) as isize);
    let last_lag = (n - min_overlap) as isize;
    for lag in first_lag..=last_lag {
        let ref_start = (-lag).max(0) as usize;
        let ref_end = m.min((n as isize - lag) as usize);
        let overlap = ref_end - ref_start;
        let rec_start = (ref_start as isize + lag) as usize;
        let rec_e = rec_energy[rec_start + overlap] - rec_energy[rec_start];
        let ref_e = ref_energy[ref_end] - ref_energy[ref_start];
        let silent = |energy: f64| energy <= SILENT_MEAN_SQUARE * overlap as f64;
        if silent(rec_e) || silent(ref_e) {
            continue;
        }
        // Circular correlation stores negative lags at the end of the buffer.
        let index = if lag >= 0 {
            lag as usize
        } else {
            size - (-lag) as usize
        };
        let score = raw[index] / (rec_e * ref_e).sqrt();
        let better = match best {
            None => true,
            Some(current) => score > current.score,
        };
        if better {
            best = Some(Match {
                offset: lag,
                score,
                overlap,
            });
        }
    }
    best
}

/// A reference of [`find_in_order`] that was not found where expected.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error(
    "reference {index} not found at or after sample {searched_from}: best score {best:?} \
     below {min_score}"
)]
pub struct OrderError {
    pub index: usize,
    pub searched_from: usize,
    pub best: Option<Match>,
    pub min_score: f64,
}

/// Finds each reference in turn, each one after the previous match (allowing the two to
/// overlap by a quarter of the previous reference), all scoring at least `min_score`.
/// Offsets are in the whole recording's samples.
pub fn find_in_order(
    recording: &[f32],
    references: &[&[f32]],
    min_score: f64,
) -> Result<Vec<Match>, OrderError> {
    let mut found = Vec::with_capacity(references.len());
    let mut cursor = 0usize;
    for (index, reference) in references.iter().enumerate() {
        let start = cursor.min(recording.len());
        let best = best_match(&recording[start..], reference).map(|hit| Match {
            offset: hit.offset + start as isize,
            ..hit
        });
        match best {
            Some(hit) if hit.score >= min_score => {
                let end = hit.offset + reference.len() as isize - (reference.len() / 4) as isize;
                cursor = end.max(start as isize) as usize;
                found.push(hit);
            }
            best => {
                return Err(OrderError {
                    index,
                    searched_from: start,
                    best,
                    min_score,
                })
            }
        }
    }
    Ok(found)
}

/// `c[k] = Σ recording[i + k] · reference[i]` for every lag, via FFT; lag k ≥ 0 at index k,
/// lag -k at index len - k.
fn cross_correlation(recording: &[f32], reference: &[f32]) -> Vec<f64> {
    let size = (recording.len() + reference.len()).next_power_of_two();
    let mut a_re = vec![0.0; size];
    let mut a_im = vec![0.0; size];
    let mut b_re = vec![0.0; size];
    let mut b_im = vec![0.0; size];
    for (slot, &x) in a_re.iter_mut().zip(recording) {
        *slot = f64::from(x);
    }
    for (slot, &x) in b_re.iter_mut().zip(reference) {
        *slot = f64::from(x);
    }
    fft(&mut a_re, &mut a_im, false);
    fft(&mut b_re, &mut b_im, false);
    // A · conj(B)
    for k in 0..size {
        let re = a_re[k] * b_re[k] + a_im[k] * b_im[k];
        let im = a_im[k] * b_re[k] - a_re[k] * b_im[k];
        a_re[k] = re;
        a_im[k] = im;
    }
    fft(&mut a_re, &mut a_im, true);
    let scale = 1.0 / size as f64;
    a_re.iter().map(|value| value * scale).collect()
}

/// `out[i]` = energy of `samples[..i]`.
fn prefix_energy(samples: &[f32]) -> Vec<f64> {
    let mut out = Vec::with_capacity(samples.len() + 1);
    let mut total = 0.0;
    out.push(total);
    for &x in samples {
        total += f64::from(x) * f64::from(x);
        out.push(total);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::test_signals::{noise, sine};

    /// A recording of `len` samples of quiet noise with `reference` scaled by `gain` at
    /// `offset` (negative: the start is cut off).
    fn recording_with(reference: &[f32], len: usize, offset: isize, gain: f32) -> Vec<f32> {
        let mut recording = noise(len, 0.001, 99);
        for (i, &x) in reference.iter().enumerate() {
            let at = offset + i as isize;
            if (0..len as isize).contains(&at) {
                recording[at as usize] += x * gain;
            }
        }
        recording
    }

    #[test]
    fn finds_a_scaled_copy_at_its_offset() {
        let reference = noise(4000, 0.5, 1);
        let recording = recording_with(&reference, 20000, 7321, 0.3);
        let hit = best_match(&recording, &reference).unwrap();
        assert_eq!(hit.offset, 7321);
        assert!(hit.score > 0.99, "score {}", hit.score);
        assert_eq!(hit.overlap, 4000);
    }

    #[test]
    fn finds_a_reference_whose_start_was_cut_off() {
        let reference = noise(4000, 0.5, 2);
        let recording = recording_with(&reference, 10000, -600, 1.0);
        let hit = best_match(&recording, &reference).unwrap();
        assert_eq!(hit.offset, -600);
        assert_eq!(hit.overlap, 3400);
        assert!(hit.score > 0.99, "score {}", hit.score);
    }

    #[test]
    fn unrelated_audio_scores_low() {
        let reference = noise(4000, 0.5, 3);
        let recording = noise(20000, 0.5, 4);
        let hit = best_match(&recording, &reference).unwrap();
        assert!(hit.score < 0.1, "score {}", hit.score);
    }

    #[test]
    fn noisy_copy_still_scores_high() {
        let reference = noise(4000, 0.5, 5);
        let mut recording = recording_with(&reference, 12000, 3000, 1.0);
        for (sample, extra) in recording.iter_mut().zip(noise(12000, 0.05, 6)) {
            *sample += extra;
        }
        let hit = best_match(&recording, &reference).unwrap();
        assert_eq!(hit.offset, 3000);
        assert!(hit.score > 0.95, "score {}", hit.score);
    }

    #[test]
    fn nothing_to_compare_gives_none() {
        let reference = noise(4000, 0.5, 7);
        assert_eq!(best_match(&[], &reference), None);
        assert_eq!(best_match(&reference, &[]), None);
        assert_eq!(best_match(&vec![0.0; 8000], &reference), None);
        assert_eq!(best_match(&reference[..2000], &reference), None);
    }

    #[test]
    fn finds_references_in_order_or_says_which_is_missing() {
        let first = noise(2000, 0.5, 10);
        let second = sine(1500, 8000, 440.0, 0.5);
        let mut recording = recording_with(&first, 12000, 1000, 1.0);
        for (i, &x) in second.iter().enumerate() {
            recording[5000 + i] += x;
        }
        let hits = find_in_order(&recording, &[&first, &second], 0.9).unwrap();
        assert_eq!(hits[0].offset, 1000);
        assert!((hits[1].offset - 5000).abs() <= 1, "{:?}", hits[1]);

        let err = find_in_order(&recording, &[&second, &first], 0.9).unwrap_err();
        assert_eq!(err.index, 1, "{err}");
    }
}
