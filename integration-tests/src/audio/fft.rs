//! A radix-2 FFT, just enough to cross-correlate a recording with a prompt in O(n log n):
//! a direct search over every lag of a minute-long recording would take seconds in a debug
//! build.

use std::f64::consts::PI;

/// In-place FFT of the complex signal (`re`, `im`); `inverse` computes the unscaled inverse
/// (divide by the length afterwards). The length must be a power of two.
pub(crate) fn fft(re: &mut [f64], im: &mut [f64], inverse: bool) {
    let n = re.len();
    assert_eq!(n, im.len(), "real and imaginary parts differ in length");
    assert!(n.is_power_of_two(), "fft length {n} is not a power of two");
    if n < 2 {
        return;
    }
    // Bit-reversal permutation.
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    // Butterflies, doubling the transform length each pass.
    let sign = if inverse { 1.0 } else { -1.0 };
    let mut len = 2;
    while len <= n {
        let angle = sign * 2.0 * PI / len as f64;
        let (step_re, step_im) = (angle.cos(), angle.sin());
        for start in (0..n).step_by(len) {
            let (mut w_re, mut w_im) = (1.0, 0.0);
            for k in 0..len / 2 {
                let (a, b) = (start + k, start + k + len / 2);
                let t_re = re[b] * w_re - im[b] * w_im;
                let t_im = re[b] * w_im + im[b] * w_re;
                re[b] = re[a] - t_re;
                im[b] = im[a] - t_im;
                re[a] += t_re;
                im[a] += t_im;
                let next_re = w_re * step_re - w_im * step_im;
                w_im = w_re * step_im + w_im * step_re;
                w_re = next_re;
            }
        }
        len <<= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::test_signals::noise;

    fn naive_dft(re: &[f64], im: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let n = re.len();
        let mut out = (vec![0.0; n], vec![0.0; n]);
        for k in 0..n {
            for t in 0..n {
                let angle = -2.0 * PI * (k * t) as f64 / n as f64;
                out.0[k] += re[t] * angle.cos() - im[t] * angle.sin();
                out.1[k] += re[t] * angle.sin() + im[t] * angle.cos();
            }
        }
        out
    }

    #[test]
    fn matches_a_direct_dft() {
        let re: Vec<f64> = noise(64, 1.0, 7).into_iter().map(f64::from).collect();
        let im: Vec<f64> = noise(64, 1.0, 8).into_iter().map(f64::from).collect();
        let (want_re, want_im) = naive_dft(&re, &im);
        let (mut got_re, mut got_im) = (re.clone(), im.clone());
        fft(&mut got_re, &mut got_im, false);
        for k in 0..64 {
            assert!((got_re[k] - want_re[k]).abs() < 1e-9, "re[{k}]");
            assert!((got_im[k] - want_im[k]).abs() < 1e-9, "im[{k}]");
        }
    }

    #[test]
    fn inverse_restores_the_signal() {
        let original: Vec<f64> = noise(1024, 1.0, 3).into_iter().map(f64::from).collect();
        let (mut re, mut im) = (original.clone(), vec![0.0; 1024]);
        fft(&mut re, &mut im, false);
        fft(&mut re, &mut im, true);
        for (k, value) in original.iter().enumerate() {
            assert!((re[k] / 1024.0 - value).abs() < 1e-12);
            assert!(im[k].abs() < 1e-9);
        }
    }
}
