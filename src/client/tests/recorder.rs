//! The WAV recorder: a file a person can open at any moment, exact once finished.
use crate::client::recorder::WavRecorder;

fn read(path: &std::path::Path) -> (hound::WavSpec, Vec<i16>) {
    let mut reader = hound::WavReader::open(path).expect("a valid wav file");
    let spec = reader.spec();
    let samples = reader
        .samples::<i16>()
        .collect::<Result<Vec<_>, _>>()
        .expect("readable samples");
    (spec, samples)
}

#[test]
fn a_finished_recording_is_8_khz_mono_16_bit_with_every_sample() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("call.wav");
    let mut recorder = WavRecorder::create(&path).unwrap();
    let frame: Vec<i16> = (0..160).map(|i| (i * 100) as i16).collect();
    for _ in 0..75 {
        recorder.write(&frame).unwrap();
    }
    assert_eq!(recorder.finish().unwrap(), 75 * 160);
    let (spec, samples) = read(&path);
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (8000, 1, 16)
    );
    assert_eq!(samples.len(), 75 * 160);
    assert_eq!(&samples[160..320], &frame[..]);
}

#[test]
fn a_recording_with_no_call_is_an_empty_valid_wav() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.wav");
    WavRecorder::create(&path).unwrap().finish().unwrap();
    let (_, samples) = read(&path);
    assert!(samples.is_empty());
}

#[test]
fn a_recording_left_unfinished_is_valid_up_to_the_last_second() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.wav");
    let mut recorder = WavRecorder::create(&path).unwrap();
    // 1.5 s: the header was rewritten after the first second.
    for _ in 0..75 {
        recorder.write(&[1000; 160]).unwrap();
    }
    // Read while the writer is still open, as after a SIGKILL.
    let (spec, samples) = read(&path);
    assert_eq!(spec.sample_rate, 8000);
    assert!(
        (8000..=12000).contains(&samples.len()),
        "{} samples readable",
        samples.len()
    );
    assert!(samples.iter().all(|&s| s == 1000));
    drop(recorder);
}

#[test]
fn an_unwritable_path_is_an_error_naming_it() {
    let error = WavRecorder::create(std::path::Path::new("/nonexistent-dir/x.wav"))
        .expect_err("cannot create");
    assert!(
        error.to_string().contains("/nonexistent-dir/x.wav"),
        "{error}"
    );
}
