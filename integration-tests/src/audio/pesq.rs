//! ITU-T P.862 narrowband PESQ, scored by the `pesq` package from PyPI (the reference C code
//! wrapped for Python). `scripts/setup-test-deps.sh` installs it into a venv under `target/`;
//! [`PESQ_PYTHON_ENV`] points at another interpreter that has it.
use std::path::PathBuf;
use std::process::Command;

use super::{write_wav_i16, Audio, TELEPHONY_RATE};
use crate::paths::repo_root;

/// An interpreter with `numpy` and `pesq` importable, instead of the setup script's venv.
pub const PESQ_PYTHON_ENV: &str = "TRUNKGATE_PESQ_PYTHON";

const SCORE_SCRIPT: &str = r#"
import sys, wave
import numpy as np
from pesq import pesq

def read(path):
    with wave.open(path) as w:
        assert w.getframerate() == 8000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16) / 32768.0

reference, degraded = read(sys.argv[1]), read(sys.argv[2])
n = min(len(reference), len(degraded))
print(pesq(8000, reference[:n], degraded[:n], "nb"))
"#;

pub fn pesq_python() -> PathBuf {
    std::env::var_os(PESQ_PYTHON_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/pesq-venv/bin/python"))
}

/// The PESQ-NB (MOS-LQO) of `degraded` against `reference`, both 8 kHz and already aligned
/// (PESQ finds small delays itself; a recording that starts seconds early confuses it).
pub fn pesq_nb(reference: &Audio, degraded: &Audio) -> Result<f64, String> {
    if reference.rate != TELEPHONY_RATE || degraded.rate != TELEPHONY_RATE {
        return Err("PESQ-NB needs 8 kHz audio".into());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (ref_path, deg_path) = (dir.path().join("ref.wav"), dir.path().join("deg.wav"));
    write_wav_i16(&ref_path, reference).map_err(|e| e.to_string())?;
    write_wav_i16(&deg_path, degraded).map_err(|e| e.to_string())?;
    let python = pesq_python();
    let output = Command::new(&python)
        .arg("-c")
        .arg(SCORE_SCRIPT)
        .arg(&ref_path)
        .arg(&deg_path)
        .output()
        .map_err(|e| {
            format!(
                "{}: {e} (scripts/setup-test-deps.sh installs it)",
                python.display()
            )
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "pesq failed: {}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    stdout
        .trim()
        .parse()
        .map_err(|_| format!("pesq printed {stdout:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{prompt, test_signals::noise};

    #[test]
    fn a_clean_copy_scores_high_and_a_noisy_one_low() {
        let speech = prompt("main-menu");
        let same = pesq_nb(&speech, &speech).unwrap();
        assert!(same > 4.4, "identical audio {same}");
        let mut noisy = speech.clone();
        for (s, n) in noisy
            .samples
            .iter_mut()
            .zip(noise(speech.samples.len(), 0.2, 7))
        {
            *s += n;
        }
        let degraded = pesq_nb(&speech, &noisy).unwrap();
        assert!(degraded < 2.5, "speech under loud noise {degraded}");
    }
}
