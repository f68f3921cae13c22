//! A prompt as phrases: receivers move their delay in the pauses between phrases (a jitter
//! buffer draining or growing), which no listener hears, so what was heard is found phrase by
//! phrase. A delay that moves inside a phrase still shows.

use super::{best_match, Audio};

/// A pause in what was said at least this long separates two phrases.
const PHRASE_PAUSE_SECS: f64 = 0.3;
/// How far from where the whole prompt matched each phrase is looked for.
pub const PHRASE_SLACK_SECS: f64 = 0.2;
/// A 20 ms frame quieter than this (mean square, full scale 1) is part of a pause: −40 dBFS.
const PAUSE_MEAN_SQUARE: f32 = 1e-4;

/// Where `said` splits into phrases: the middle of each pause of [`PHRASE_PAUSE_SECS`] or more
/// between two words. The phrases cover the whole prompt, in order.
pub fn phrases(said: &Audio) -> Vec<(usize, usize)> {
    let frame = (said.rate / 50) as usize;
    let quiet: Vec<bool> = said
        .samples
        .chunks(frame)
        .map(|f| f.iter().map(|s| s * s).sum::<f32>() / f.len() as f32 <= PAUSE_MEAN_SQUARE)
        .collect();
    let min_pause = (PHRASE_PAUSE_SECS * 50.0).ceil() as usize;
    let mut cuts = Vec::new();
    let mut run_start = None;
    for (i, &q) in quiet.iter().enumerate() {
        match (q, run_start) {
            (true, None) => run_start = Some(i),
            (false, Some(begin)) => {
                // Only pauses between speech: not the silence before the first word.
                if i - begin >= min_pause && begin > 0 {
                    cuts.push((begin + i) / 2 * frame);
                }
                run_start = None;
            }
            _ => {}
        }
    }
    let mut bounds = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for cut in cuts {
        bounds.push((start, cut));
        start = cut;
    }
    bounds.push((start, said.samples.len()));
    bounds
}

/// Where each phrase of `said` lies in `recording` (the sample its first one falls on), looked
/// for within [`PHRASE_SLACK_SECS`] of where the whole prompt matched; `None` when the prompt
/// is not found at all. Both at the same rate.
pub fn phrase_offsets(recording: &[f32], said: &Audio) -> Option<Vec<(usize, usize, f64)>> {
    let whole = best_match(recording, &said.samples)?;
    let slack = (PHRASE_SLACK_SECS * f64::from(said.rate)) as isize;
    let len = recording.len() as isize;
    let found = phrases(said)
        .into_iter()
        .map(|(start, end)| {
            let phrase = &said.samples[start..end];
            let expected = whole.offset + start as isize;
            let from = (expected - slack).clamp(0, len) as usize;
            let to = (expected + phrase.len() as isize + slack).clamp(0, len) as usize;
            match best_match(&recording[from..to], phrase) {
                Some(m) => ((from as isize + m.offset).max(0) as usize, start, m.score),
                None => (expected.max(0) as usize, start, 0.0),
            }
        })
        .collect();
    Some(found)
}

/// How well `said` is found in `recording`, phrase by phrase: each phrase's normalised
/// correlation at its own best lag, weighted by its length (1.0 = identical, 0.0 = not heard).
pub fn phrase_match(recording: &[f32], said: &Audio) -> f64 {
    let Some(found) = phrase_offsets(recording, said) else {
        return 0.0;
    };
    let bounds = phrases(said);
    let total: f64 = bounds.iter().map(|(s, e)| (e - s) as f64).sum();
    found
        .iter()
        .zip(&bounds)
        .map(|(&(_, _, score), &(s, e))| score * (e - s) as f64)
        .sum::<f64>()
        / total.max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::prompt;

    #[test]
    fn the_prompts_split_at_their_long_pause_only() {
        for (said, cut_secs) in [("main-menu", 2.65), ("enter-digits", 1.33)] {
            let prompt = prompt(said);
            let bounds = phrases(&prompt);
            assert_eq!(bounds.len(), 2, "{said}: {bounds:?}");
            assert_eq!(bounds[0].0, 0);
            assert_eq!(bounds[0].1, bounds[1].0);
            assert_eq!(bounds[1].1, prompt.samples.len());
            let cut = bounds[0].1 as f64 / f64::from(prompt.rate);
            assert!((cut - cut_secs).abs() < 0.05, "{said} cut at {cut} s");
        }
    }

    #[test]
    fn a_delay_that_moves_in_the_pause_is_still_a_full_match() {
        let said = prompt("main-menu");
        let (_, cut) = phrases(&said)[0];
        // 30 ms of the pause gone, as a draining jitter buffer would cut it.
        let mut heard = vec![0.0; 800];
        heard.extend_from_slice(&said.samples[..cut]);
        heard.extend_from_slice(&said.samples[cut + 240..]);
        let whole = best_match(&heard, &said.samples).unwrap().score;
        let by_phrase = phrase_match(&heard, &said);
        assert!(by_phrase > 0.99, "{by_phrase}");
        assert!(whole < 0.9, "one lag for the whole prompt: {whole}");
    }
}
