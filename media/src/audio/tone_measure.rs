//! Tone measurements for the unit tests: a Hann-windowed Goertzel filter and RMS level.

use std::f64::consts::TAU;

/// Amplitude (fraction of full scale) of the component at `hz`, by a Hann-windowed Goertzel filter.
pub(crate) fn tone_amplitude(samples: &[i16], rate: u32, hz: f64) -> f64 {
    let n = samples.len();
    if n == 0 {
        return 0.0;
    }
    let omega = TAU * hz / f64::from(rate);
    let coeff = 2.0 * omega.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut window_sum = 0.0;
    for (i, &x) in samples.iter().enumerate() {
        let w = 0.5 - 0.5 * (TAU * i as f64 / n as f64).cos();
        window_sum += w;
        let s0 = w * f64::from(x) / 32768.0 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power.max(0.0).sqrt() / window_sum
}

/// Share of the signal's power that is a sine at `hz`: near 1 for a pure tone at `hz`, near 0
/// when `hz` is absent.
pub(crate) fn tone_power_ratio(samples: &[i16], rate: u32, hz: f64) -> f64 {
    let mean_square = samples
        .iter()
        .map(|&x| (f64::from(x) / 32768.0).powi(2))
        .sum::<f64>()
        / samples.len().max(1) as f64;
    if mean_square == 0.0 {
        return 0.0;
    }
    let a = tone_amplitude(samples, rate, hz);
    (a * a / 2.0) / mean_square
}

/// RMS level in dB relative to a full-scale constant (a full-scale sine reads -3.01).
pub(crate) fn level_dbfs(samples: &[i16]) -> f64 {
    let mean_square = samples
        .iter()
        .map(|&x| (f64::from(x) / 32767.0).powi(2))
        .sum::<f64>()
        / samples.len().max(1) as f64;
    10.0 * mean_square.max(1e-20).log10()
}
/// Signal-to-noise ratio in dB of `actual` against `reference` (same length).
pub(crate) fn snr_db(reference: &[i16], actual: &[i16]) -> f64 {
    let signal: f64 = reference.iter().map(|&x| f64::from(x).powi(2)).sum();
    let noise: f64 = reference
        .iter()
        .zip(actual)
        .map(|(&r, &a)| (f64::from(r) - f64::from(a)).powi(2))
        .sum();
    10.0 * (signal / noise.max(1e-9)).log10()
}
