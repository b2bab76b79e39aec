//! Tone measurements for the session tests: a Hann-windowed Goertzel filter, a peak-frequency
//! search, and how many 20 ms frames of a recording carry a given tone.

#![allow(dead_code)]

use std::f64::consts::TAU;

/// Amplitude (fraction of full scale) of the component at `hz`, by a Hann-windowed Goertzel
/// filter.
pub fn tone_amplitude(samples: &[i16], rate: u32, hz: f64) -> f64 {
    let n = samples.len() as f64;
    if samples.is_empty() {
        return 0.0;
    }
    let coeff = 2.0 * (TAU * hz / f64::from(rate)).cos();
    let (mut s1, mut s2, mut window_sum) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &x) in samples.iter().enumerate() {
        let w = 0.5 - 0.5 * (TAU * i as f64 / n).cos();
        window_sum += w;
        let s0 = w * f64::from(x) / 32768.0 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    2.0 * (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0).sqrt() / window_sum
}

/// Share of the signal's power that is a sine at `hz` (near 1 for a pure tone at `hz`).
pub fn power_ratio(samples: &[i16], rate: u32, hz: f64) -> f64 {
    let mean_square = samples
        .iter()
        .map(|&x| (f64::from(x) / 32768.0).powi(2))
        .sum::<f64>()
        / samples.len().max(1) as f64;
    if mean_square < 1e-9 {
        return 0.0;
    }
    let a = tone_amplitude(samples, rate, hz);
    (a * a / 2.0) / mean_square
}

/// The frequency of the strongest component between `low` and `high` Hz: a 5 Hz scan refined
/// to 0.5 Hz around its best point.
pub fn peak_frequency(samples: &[i16], rate: u32, low: f64, high: f64) -> f64 {
    let best = |from: f64, to: f64, step: f64| {
        let mut f = from;
        let (mut best_f, mut best_a) = (from, -1.0);
        while f <= to {
            let a = tone_amplitude(samples, rate, f);
            if a > best_a {
                (best_f, best_a) = (f, a);
            }
            f += step;
        }
        best_f
    };
    let coarse = best(low, high, 5.0);
    best(coarse - 5.0, coarse + 5.0, 0.5)
}

/// Whether a frame carries `hz` as its dominant tone: at least half its power is at `hz`, and
/// the spectral peak near it lies within 2 %.
pub fn frame_has_tone(frame: &[i16], rate: u32, hz: f64) -> bool {
    power_ratio(frame, rate, hz) > 0.5
        && (peak_frequency(frame, rate, hz * 0.9, hz * 1.1) - hz).abs() <= hz * 0.02
}

/// How the 20 ms frames of a mono recording after `skip_frames` split between two tones.
#[derive(Debug, Clone, Copy)]
pub struct Coverage {
    /// Frames examined.
    pub frames: usize,
    /// Frames whose dominant tone is the expected one.
    pub expected: usize,
    /// Frames with a noticeable share (over 5 %) of the unexpected tone.
    pub unexpected: usize,
}

impl Coverage {
    /// Share of frames with the expected tone.
    pub fn ratio(&self) -> f64 {
        self.expected as f64 / self.frames.max(1) as f64
    }
}

/// Measures `samples` (mono at `rate`) frame by frame after the first `skip_frames`.
pub fn coverage(
    samples: &[i16],
    rate: u32,
    skip_frames: usize,
    expected_hz: f64,
    unexpected_hz: f64,
) -> Coverage {
    let frame_len = rate as usize / 50;
    let mut result = Coverage {
        frames: 0,
        expected: 0,
        unexpected: 0,
    };
    for frame in samples.chunks_exact(frame_len).skip(skip_frames) {
        result.frames += 1;
        if frame_has_tone(frame, rate, expected_hz) {
            result.expected += 1;
        }
        if power_ratio(frame, rate, unexpected_hz) > 0.05 {
            result.unexpected += 1;
        }
    }
    result
}

/// Index of the first sample whose magnitude exceeds `threshold` (a burst's onset).
pub fn onset(samples: &[i16], threshold: i16) -> Option<usize> {
    samples
        .iter()
        .position(|&x| x.unsigned_abs() > threshold.unsigned_abs())
}
