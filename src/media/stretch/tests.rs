use super::*;

/// A voiced vowel: a 125 Hz fundamental (a 64-sample period at 8 kHz) with falling harmonics.
fn vowel(len: usize, phase: usize) -> Vec<i16> {
    (phase..phase + len)
        .map(|n| {
            let t = n as f64 / f64::from(RATE);
            let v: f64 = (1..=6)
                .map(|h| {
                    let h = f64::from(h);
                    (2.0 * std::f64::consts::PI * 125.0 * h * t).sin() * 6000.0 / h
                })
                .sum();
            v.round() as i16
        })
        .collect()
}

/// Loud white noise from a fixed LCG: unvoiced, no period to cut.
fn noise(len: usize) -> Vec<i16> {
    let mut state: u32 = 12345;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((state >> 16) as i16) / 4
        })
        .collect()
}

/// The largest step between neighbouring samples: a splice without a cross-fade shows as one.
fn largest_step(pcm: &[i16]) -> i32 {
    pcm.windows(2)
        .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
        .max()
        .unwrap_or(0)
}

#[test]
fn accelerate_cuts_whole_periods_of_a_vowel_without_a_step() {
    let original = vowel(160, 0);
    let mut pcm = original.clone();
    let removed = accelerate(&mut pcm);
    assert!(removed > 0, "a steady vowel is periodic enough to cut");
    assert_eq!(
        removed % 64,
        0,
        "a whole number of pitch periods: {removed}"
    );
    assert_eq!(pcm.len(), 160 - removed);
    // Beyond the cross-fade, the audio is the original one period further on.
    let window = removed.min(160 - removed);
    assert_eq!(pcm[window..], original[window + removed..]);
    assert!(largest_step(&pcm) <= largest_step(&vowel(400, 0)) + 2);
}

#[test]
fn expand_repeats_a_period_of_a_vowel_without_a_step() {
    let original = vowel(160, 0);
    let mut pcm = original.clone();
    let added = expand(&mut pcm);
    assert!(added > 0 && added.is_multiple_of(64), "{added}");
    assert_eq!(pcm.len(), 160 + added);
    // It starts and ends as the original did: the repeat sits in the middle.
    assert_eq!(pcm[..added], original[..added]);
    assert_eq!(pcm[pcm.len() - 40..], original[120..]);
    assert!(largest_step(&pcm) <= largest_step(&vowel(400, 0)) + 2);
    // A perfectly periodic vowel lengthened by whole periods is the same vowel, longer.
    let longer = vowel(160 + added, 0);
    let worst = pcm
        .iter()
        .zip(&longer)
        .map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs())
        .max()
        .unwrap();
    assert!(worst <= 2, "differs from the longer vowel by {worst}");
}

#[test]
fn noise_is_left_alone_and_silence_gives_the_most() {
    let mut loud = noise(160);
    let before = loud.clone();
    assert_eq!(accelerate(&mut loud), 0);
    assert_eq!(expand(&mut loud), 0);
    assert_eq!(loud, before, "declined audio is untouched");

    let mut quiet = vec![3i16; 160];
    assert_eq!(accelerate(&mut quiet), MAX_PERIOD);
    assert_eq!(quiet.len(), 160 - MAX_PERIOD);
    let mut quiet = vec![0i16; 160];
    assert_eq!(expand(&mut quiet), MAX_PERIOD);
    assert_eq!(quiet.len(), 160 + MAX_PERIOD);
}

#[test]
fn frames_too_short_to_hold_two_periods_are_left_alone() {
    let mut short = vowel(MIN_PERIOD + MIN_WINDOW - 1, 0);
    assert_eq!(accelerate(&mut short), 0);
    assert_eq!(expand(&mut short), 0);
    let mut empty = Vec::new();
    assert_eq!(accelerate(&mut empty), 0);
}

#[test]
fn the_queue_plays_what_was_pushed_stretched_and_counts_it() {
    let mut queue = PcmQueue::new();
    let mut out = Vec::new();
    queue.take(160, &mut out);
    assert_eq!(out, vec![0; 160], "an empty queue plays silence");

    queue.push(&mut vowel(160, 0), Stretch::Keep);
    assert_eq!(queue.queued(), Duration::from_millis(20));
    for _ in 0..PAUSE_FRAMES {
        queue.push(&mut vec![0; 160], Stretch::Keep);
    }
    // A pause is lengthened at once.
    queue.push(&mut vec![0; 160], Stretch::Lengthen);
    let stats = queue.stats();
    assert_eq!(stats.expansions, 1);
    assert_eq!(stats.expanded(), Duration::from_millis(15));
    assert_eq!(queue.len(), (PAUSE_FRAMES as usize + 2) * 160 + MAX_PERIOD);

    out.clear();
    queue.take(160, &mut out);
    assert_eq!(out, vowel(160, 0), "the head plays first, unchanged");
}

#[test]
fn speech_is_stretched_only_when_no_pause_came_in_time() {
    let mut queue = PcmQueue::new();
    // The buffer asks on every frame of a long vowel: it waits a second for a pause...
    for k in 0..QUIET_WAIT_FRAMES as usize {
        queue.push(&mut vowel(160, 160 * k), Stretch::Lengthen);
    }
    assert_eq!(queue.stats().expansions, 0);
    assert_eq!(queue.stats().declined, u64::from(QUIET_WAIT_FRAMES));
    // ...then repeats a period of the vowel itself, and waits again after that.
    queue.push(&mut vowel(160, 0), Stretch::Lengthen);
    queue.push(&mut vowel(160, 0), Stretch::Lengthen);
    let stats = queue.stats();
    assert_eq!(stats.expansions, 1);
    assert_eq!(stats.expanded_samples % 64, 0);
    // Noise is never stretched, however long the buffer asks.
    let mut noisy = PcmQueue::new();
    for _ in 0..3 * QUIET_WAIT_FRAMES {
        noisy.push(&mut noise(160), Stretch::Shorten);
    }
    assert_eq!(noisy.stats().accelerations, 0);
    // A request that stops resets the wait.
    let mut calm = PcmQueue::new();
    for _ in 0..QUIET_WAIT_FRAMES {
        calm.push(&mut vowel(160, 0), Stretch::Lengthen);
    }
    calm.push(&mut vowel(160, 0), Stretch::Keep);
    calm.push(&mut vowel(160, 0), Stretch::Lengthen);
    assert_eq!(calm.stats().expansions, 0);
}

#[test]
fn shortening_waits_longer_for_a_pause_than_lengthening() {
    // Too much delay only costs latency, so speech is cut into only after five seconds of
    // asking, where a buffer running dry gets its repeat after one.
    let mut queue = PcmQueue::new();
    for k in 0..QUIET_WAIT_SHORTEN_FRAMES as usize {
        queue.push(&mut vowel(160, 160 * k), Stretch::Shorten);
    }
    assert_eq!(queue.stats().accelerations, 0);
    queue.push(&mut vowel(160, 0), Stretch::Shorten);
    assert_eq!(queue.stats().accelerations, 1);
}

#[test]
fn quiet_is_stretched_in_pauses_between_phrases_not_in_word_gaps() {
    for stretch in [Stretch::Shorten, Stretch::Lengthen] {
        let mut paused = PcmQueue::new();
        paused.push(&mut vowel(160, 0), stretch);
        for _ in 0..PAUSE_FRAMES {
            paused.push(&mut vec![0; 160], stretch);
        }
        paused.push(&mut vowel(160, 0), stretch);
        let changes = |queue: &PcmQueue| {
            let stats = queue.stats();
            stats.accelerations + stats.expansions
        };
        assert_eq!(changes(&paused), 0, "{stretch:?}: a word gap is left alone");
        for _ in 0..=PAUSE_FRAMES {
            paused.push(&mut vec![0; 160], stretch);
        }
        assert_eq!(changes(&paused), 1, "{stretch:?}");
    }
}

#[test]
fn any_input_keeps_lengths_consistent() {
    // Odd lengths, extremes and mixtures: the result is always as long as reported.
    let inputs: Vec<Vec<i16>> = vec![
        vec![i16::MAX; 160],
        vec![i16::MIN; 160],
        (0..160)
            .map(|n| if n % 2 == 0 { i16::MAX } else { i16::MIN })
            .collect(),
        vowel(61, 3),
        vowel(479, 5),
        [vowel(80, 0), noise(80)].concat(),
    ];
    for input in inputs {
        let mut shorter = input.clone();
        let removed = accelerate(&mut shorter);
        assert_eq!(shorter.len() + removed, input.len());
        let mut longer = input.clone();
        let added = expand(&mut longer);
        assert_eq!(longer.len(), input.len() + added);
        assert!(removed <= MAX_PERIOD && added <= MAX_PERIOD);
    }
}
