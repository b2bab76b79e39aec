//! Tone analysis of audio samples: what interop tests use to decide whether a call carried the
//! right sound.
//!
//! Tests play a known tone into each side of a call and record what the other side hears; these
//! functions then answer "is the dominant frequency the expected one, and for how much of the
//! recording?", "is a given frequency present at all?" (a side must not hear its own tone) and
//! "when does a short burst begin?" (for mouth-to-ear delay).
//!
//! # Contract
//!
//! - Samples are mono `i16`; `sample_rate` is in Hz. Levels are amplitudes relative to full scale:
//!   a sine that swings over the whole `i16` range has level 1.0, one at −20 dBFS has level 0.1.
//! - Spectra use a Hann window over the analysed samples (their mean removed), zero-padded to at
//!   least four times their length, and a quadratic fit of the log magnitude around the peak bin.
//!   With 20–50 ms windows this places a tone within a fraction of a percent of its frequency at
//!   8, 16 and 48 kHz, and estimates its level within a few percent.
//! - Empty input, a zero sample rate and digital silence give `None`, a coverage of 0.0 and "not
//!   present": silence never matches anything.
//! - Windows of `window_ms` do not overlap; a trailing partial window is ignored.
//! - Nothing here panics on any input.

use std::sync::Arc;
use std::time::Duration;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

/// The level of a full-scale `i16` sample.
const FULL_SCALE: f32 = 32768.0;
/// Spectra are zero-padded to at least this many times the window length.
const ZERO_PADDING: usize = 4;
/// Fewer samples than this cannot be analysed meaningfully.
const MIN_WINDOW: usize = 8;
/// Magnitudes below this (relative to full scale) are treated as silence.
const SILENCE: f32 = 1e-6;
/// The frequency tolerance [`contains_frequency`] uses (2 %).
const PRESENCE_TOLERANCE: f32 = 0.02;
/// The window length [`contains_frequency`] uses.
const PRESENCE_WINDOW_MS: u32 = 50;
/// The window [`first_burst_onset`] slides over the samples.
const BURST_WINDOW: Duration = Duration::from_millis(10);
/// How far [`first_burst_onset`] moves its window each step.
const BURST_HOP: Duration = Duration::from_micros(500);
/// How long after its onset a burst must still be above the threshold to count.
const BURST_SUSTAIN: Duration = Duration::from_millis(5);

/// The dominant frequency of `samples` and its level: `Some((hz, level))`, or `None` for empty
/// input, a zero sample rate, fewer than 8 samples, or digital silence.
///
/// `level` is the amplitude of that component relative to full scale (see the module docs).
pub fn dominant_frequency(samples: &[i16], sample_rate: u32) -> Option<(f32, f32)> {
    if sample_rate == 0 || samples.len() < MIN_WINDOW {
        return None;
    }
    let mut spectrum = Spectrum::new(samples.len(), sample_rate);
    spectrum.analyse(samples);
    spectrum.peak()
}

/// The fraction (0.0–1.0) of `window_ms` windows of `samples` whose dominant frequency lies
/// within `tolerance` (relative, e.g. 0.02 for 2 %) of `expected_hz` and whose level is at least
/// `min_level`. Silent windows never match.
pub fn tone_coverage(
    samples: &[i16],
    sample_rate: u32,
    expected_hz: f32,
    tolerance: f32,
    window_ms: u32,
    min_level: f32,
) -> f32 {
    let Some(window) = window_len(sample_rate, window_ms) else {
        return 0.0;
    };
    let windows = samples.len() / window;
    if windows == 0 {
        return 0.0;
    }
    let mut spectrum = Spectrum::new(window, sample_rate);
    let matching = samples
        .chunks_exact(window)
        .filter(|chunk| {
            spectrum.analyse(chunk);
            spectrum.peak().is_some_and(|(hz, level)| {
                (hz - expected_hz).abs() <= tolerance * expected_hz && level >= min_level
            })
        })
        .count();
    matching as f32 / windows as f32
}

/// The mean level, over the `window_ms` windows of `samples`, of the strongest component within
/// `tolerance` (relative) of `hz`, whether or not it dominates its window. 0.0 when there are no
/// whole windows.
///
/// A tone of level `L` present in a fraction `f` of the signal gives about `f × L`.
pub fn frequency_level(
    samples: &[i16],
    sample_rate: u32,
    hz: f32,
    tolerance: f32,
    window_ms: u32,
) -> f32 {
    let Some(window) = window_len(sample_rate, window_ms) else {
        return 0.0;
    };
    let windows = samples.len() / window;
    if windows == 0 {
        return 0.0;
    }
    let mut spectrum = Spectrum::new(window, sample_rate);
    let total: f32 = samples
        .chunks_exact(window)
        .map(|chunk| {
            spectrum.analyse(chunk);
            spectrum.band_level(hz * (1.0 - tolerance), hz * (1.0 + tolerance))
        })
        .sum();
    total / windows as f32
}

/// Whether `hz` is present in `samples` at all: its [`frequency_level`] (2 % band, 50 ms
/// windows) is at least `min_level`, even if another frequency dominates.
///
/// Tests use it to check that a side does not hear its own tone; a `min_level` of 0.01
/// (−40 dBFS) separates a leak from codec noise.
pub fn contains_frequency(samples: &[i16], sample_rate: u32, hz: f32, min_level: f32) -> bool {
    frequency_level(
        samples,
        sample_rate,
        hz,
        PRESENCE_TOLERANCE,
        PRESENCE_WINDOW_MS,
    ) >= min_level
}

/// When the first burst of `hz` begins: the offset from the first sample at which the level of
/// `hz` (10 ms Hann window, moved in 0.5 ms steps) first reaches `threshold` and is still there
/// 5 ms later. `None` if it never does.
///
/// The offset is the centre of the first window that reaches the threshold; with `threshold` at
/// half the burst's level that centre sits on the burst's first sample to within a millisecond.
/// Other frequencies playing at the same time do not move it.
pub fn first_burst_onset(
    samples: &[i16],
    sample_rate: u32,
    hz: f32,
    threshold: f32,
) -> Option<Duration> {
    let window = samples_in(sample_rate, BURST_WINDOW).max(MIN_WINDOW);
    let hop = samples_in(sample_rate, BURST_HOP).max(1);
    let sustain = samples_in(sample_rate, BURST_SUSTAIN);
    if sample_rate == 0 || samples.len() < window {
        return None;
    }
    let probe = SingleFrequency::new(window, sample_rate, hz);
    let level_at = |start: usize| samples.get(start..start + window).map(|w| probe.level(w));
    let mut start = 0;
    while let Some(level) = level_at(start) {
        if level >= threshold && level_at(start + sustain).is_some_and(|l| l >= threshold) {
            let centre = start + window / 2;
            return Some(Duration::from_secs_f64(
                centre as f64 / f64::from(sample_rate),
            ));
        }
        start += hop;
    }
    None
}

/// Samples in `window_ms` at `sample_rate`, if that is enough to analyse.
fn window_len(sample_rate: u32, window_ms: u32) -> Option<usize> {
    let len = usize::try_from(u64::from(sample_rate) * u64::from(window_ms) / 1000).ok()?;
    (len >= MIN_WINDOW).then_some(len)
}

/// Samples in `duration` at `sample_rate` (rounded down).
fn samples_in(sample_rate: u32, duration: Duration) -> usize {
    let samples = duration.as_secs_f64() * f64::from(sample_rate);
    samples as usize
}

/// Hann window coefficients of length `len`.
fn hann(len: usize) -> Vec<f32> {
    let denominator = len as f32;
    (0..len)
        .map(|n| {
            let phase = 2.0 * std::f32::consts::PI * n as f32 / denominator;
            0.5 - 0.5 * phase.cos()
        })
        .collect()
}

/// A reusable amplitude spectrum for windows of one length.
struct Spectrum {
    sample_rate: u32,
    fft: Arc<dyn Fft<f32>>,
    window: Vec<f32>,
    /// Converts an FFT magnitude into a level relative to full scale.
    scale: f32,
    buffer: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    /// Levels of bins `0..=padded / 2`.
    levels: Vec<f32>,
}

impl Spectrum {
    fn new(len: usize, sample_rate: u32) -> Spectrum {
        let padded = (len * ZERO_PADDING).next_power_of_two();
        let fft = FftPlanner::new().plan_fft_forward(padded);
        let window = hann(len);
        let window_sum: f32 = window.iter().sum();
        let scratch = vec![Complex::default(); fft.get_inplace_scratch_len()];
        Spectrum {
            sample_rate,
            fft,
            scale: 2.0 / (window_sum.max(f32::MIN_POSITIVE) * FULL_SCALE),
            window,
            buffer: vec![Complex::default(); padded],
            scratch,
            levels: vec![0.0; padded / 2 + 1],
        }
    }

    /// Hz per bin.
    fn resolution(&self) -> f32 {
        self.sample_rate as f32 / self.buffer.len() as f32
    }

    /// Computes the levels of `samples`, which must have the window's length.
    fn analyse(&mut self, samples: &[i16]) {
        let mean = samples.iter().map(|&s| f32::from(s)).sum::<f32>() / samples.len() as f32;
        for (slot, (sample, weight)) in self.buffer.iter_mut().zip(samples.iter().zip(&self.window))
        {
            *slot = Complex::new((f32::from(*sample) - mean) * weight, 0.0);
        }
        for slot in self.buffer.iter_mut().skip(samples.len()) {
            *slot = Complex::default();
        }
        self.fft
            .process_with_scratch(&mut self.buffer, &mut self.scratch);
        for (level, bin) in self.levels.iter_mut().zip(&self.buffer) {
            *level = bin.norm() * self.scale;
        }
    }

    /// The interpolated frequency and level of the strongest bin (DC and Nyquist excluded).
    fn peak(&self) -> Option<(f32, f32)> {
        let last = self.levels.len().checked_sub(2)?;
        let (index, &level) = self
            .levels
            .iter()
            .enumerate()
            .take(last + 1)
            .skip(1)
            .max_by(|a, b| a.1.total_cmp(b.1))?;
        if level < SILENCE {
            return None;
        }
        let ln = |i: usize| self.levels[i].max(SILENCE * 1e-3).ln();
        let (left, centre, right) = (ln(index - 1), ln(index), ln(index + 1));
        let curvature = left - 2.0 * centre + right;
        let offset = if curvature < 0.0 {
            (0.5 * (left - right) / curvature).clamp(-0.5, 0.5)
        } else {
            0.0
        };
        let hz = (index as f32 + offset) * self.resolution();
        let peak_level = (centre - 0.25 * (left - right) * offset).exp();
        Some((hz, peak_level))
    }

    /// The strongest level between `low_hz` and `high_hz`, widened to at least the bins on
    /// either side of the band's centre.
    fn band_level(&self, low_hz: f32, high_hz: f32) -> f32 {
        let resolution = self.resolution();
        let centre = (low_hz + high_hz) / 2.0 / resolution;
        let low = (low_hz / resolution)
            .floor()
            .min(centre.floor() - 1.0)
            .max(0.0) as usize;
        let high = (high_hz / resolution)
            .ceil()
            .max(centre.ceil() + 1.0)
            .max(0.0) as usize;
        self.levels
            .get(low..=high.min(self.levels.len().saturating_sub(1)))
            .unwrap_or_default()
            .iter()
            .copied()
            .fold(0.0, f32::max)
    }
}

/// The level of one frequency in Hann-windowed blocks of a fixed length (a windowed DFT bin
/// at an arbitrary frequency).
struct SingleFrequency {
    /// `w[n]·cos(ωn)` and `w[n]·sin(ωn)`.
    cos: Vec<f32>,
    sin: Vec<f32>,
    scale: f32,
}

impl SingleFrequency {
    fn new(len: usize, sample_rate: u32, hz: f32) -> SingleFrequency {
        let window = hann(len);
        let omega = 2.0 * std::f64::consts::PI * f64::from(hz) / f64::from(sample_rate);
        let cos = window
            .iter()
            .enumerate()
            .map(|(n, w)| w * (omega * n as f64).cos() as f32)
            .collect();
        let sin = window
            .iter()
            .enumerate()
            .map(|(n, w)| w * (omega * n as f64).sin() as f32)
            .collect();
        let window_sum: f32 = window.iter().sum();
        SingleFrequency {
            cos,
            sin,
            scale: 2.0 / (window_sum.max(f32::MIN_POSITIVE) * FULL_SCALE),
        }
    }

    fn level(&self, samples: &[i16]) -> f32 {
        let (mut real, mut imaginary) = (0.0f32, 0.0f32);
        for ((sample, cos), sin) in samples.iter().zip(&self.cos).zip(&self.sin) {
            let sample = f32::from(*sample);
            real += sample * cos;
            imaginary += sample * sin;
        }
        real.hypot(imaginary) * self.scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATES: [u32; 3] = [8000, 16000, 48000];

    /// `seconds` of a sine at `hz` with `level` relative to full scale.
    fn tone(hz: f32, rate: u32, seconds: f32, level: f32) -> Vec<i16> {
        let count = (rate as f32 * seconds) as usize;
        (0..count)
            .map(|n| {
                let phase = 2.0 * std::f64::consts::PI * f64::from(hz) * n as f64 / f64::from(rate);
                (phase.sin() * f64::from(level) * f64::from(FULL_SCALE - 1.0)) as i16
            })
            .collect()
    }

    fn mix(a: &[i16], b: &[i16]) -> Vec<i16> {
        a.iter().zip(b).map(|(x, y)| x.saturating_add(*y)).collect()
    }

    /// Uniform white noise in ±`level` of full scale, from a fixed seed.
    fn noise(rate: u32, seconds: f32, level: f32, seed: u64) -> Vec<i16> {
        let mut state = seed;
        let count = (rate as f32 * seconds) as usize;
        (0..count)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let unit = (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
                (unit * level * FULL_SCALE) as i16
            })
            .collect()
    }

    fn window(samples: &[i16], rate: u32, ms: u32) -> &[i16] {
        &samples[..(rate * ms / 1000) as usize]
    }

    #[test]
    fn pure_tones_are_placed_within_half_a_percent_in_short_windows() {
        for rate in RATES {
            for hz in [300.0, 440.0, 1000.0, 1270.0, 3100.0] {
                let samples = tone(hz, rate, 0.1, 0.3);
                for ms in [20, 50] {
                    let (found, level) =
                        dominant_frequency(window(&samples, rate, ms), rate).expect("a tone");
                    assert!(
                        (found - hz).abs() <= 0.005 * hz,
                        "{hz} Hz at {rate} Hz in {ms} ms: found {found}"
                    );
                    assert!((level - 0.3).abs() < 0.015, "{hz} Hz level {level}");
                }
            }
        }
    }

    #[test]
    fn frequencies_between_bins_are_interpolated() {
        // 8 kHz, 20 ms: 50 Hz bins before padding; these sit at awkward offsets.
        for hz in [437.0, 462.5, 1013.0, 1287.3] {
            let samples = tone(hz, 8000, 0.02, 0.5);
            let (found, _) = dominant_frequency(&samples, 8000).expect("a tone");
            assert!((found - hz).abs() <= 0.005 * hz, "{hz}: {found}");
        }
    }

    #[test]
    fn the_louder_of_two_tones_dominates_and_both_are_present() {
        for rate in RATES {
            let samples = mix(&tone(440.0, rate, 0.5, 0.1), &tone(1270.0, rate, 0.5, 0.3));
            let (hz, _) = dominant_frequency(window(&samples, rate, 50), rate).expect("a tone");
            assert!((hz - 1270.0).abs() < 1270.0 * 0.02, "{hz}");
            assert!(tone_coverage(&samples, rate, 1270.0, 0.02, 50, 0.05) > 0.99);
            assert_eq!(tone_coverage(&samples, rate, 440.0, 0.02, 50, 0.05), 0.0);
            assert!(contains_frequency(&samples, rate, 440.0, 0.05));
            assert!(contains_frequency(&samples, rate, 1270.0, 0.2));
            assert!(!contains_frequency(&samples, rate, 700.0, 0.01));
            let level = frequency_level(&samples, rate, 440.0, 0.02, 50);
            assert!((level - 0.1).abs() < 0.01, "{level}");
        }
    }

    #[test]
    fn a_tone_in_noise_is_found_and_noise_alone_is_not_a_tone() {
        for rate in RATES {
            let hiss = noise(rate, 1.0, 0.05, u64::from(rate));
            let noisy = mix(&tone(440.0, rate, 1.0, 0.2), &hiss);
            assert!(tone_coverage(&noisy, rate, 440.0, 0.02, 20, 0.05) > 0.95);
            assert!(tone_coverage(&hiss, rate, 440.0, 0.02, 20, 0.005) < 0.1);
            assert!(!contains_frequency(&hiss, rate, 440.0, 0.01));
        }
    }

    #[test]
    fn silence_matches_nothing() {
        for rate in RATES {
            let silence = vec![0i16; rate as usize / 2];
            assert_eq!(dominant_frequency(&silence, rate), None);
            assert_eq!(tone_coverage(&silence, rate, 440.0, 0.02, 50, 0.0), 0.0);
            assert!(!contains_frequency(&silence, rate, 440.0, 0.0001));
            assert_eq!(first_burst_onset(&silence, rate, 1000.0, 0.0001), None);
            // A constant offset is silence too.
            assert_eq!(dominant_frequency(&vec![1200i16; 400], rate), None);
        }
    }

    #[test]
    fn coverage_counts_only_the_windows_with_the_tone() {
        let rate = 8000;
        let mut samples = tone(1000.0, rate, 1.0, 0.3);
        samples.extend(vec![0i16; rate as usize]);
        let coverage = tone_coverage(&samples, rate, 1000.0, 0.02, 50, 0.05);
        assert!((coverage - 0.5).abs() < 0.03, "{coverage}");
        // A quieter tone than asked for does not count.
        let quiet = tone(1000.0, rate, 1.0, 0.01);
        assert_eq!(tone_coverage(&quiet, rate, 1000.0, 0.02, 50, 0.05), 0.0);
        // A tone 3 % off does not count at 2 %.
        let off = tone(1030.0, rate, 1.0, 0.3);
        assert_eq!(tone_coverage(&off, rate, 1000.0, 0.02, 50, 0.05), 0.0);
        assert!(tone_coverage(&off, rate, 1000.0, 0.04, 50, 0.05) > 0.99);
        // Half the signal at level 0.3 reads as a mean level of about 0.15.
        let level = frequency_level(&samples, rate, 1000.0, 0.02, 50);
        assert!((level - 0.15).abs() < 0.01, "{level}");
    }

    #[test]
    fn degenerate_input_gives_no_answer() {
        assert_eq!(dominant_frequency(&[], 8000), None);
        assert_eq!(dominant_frequency(&[1, -1, 1], 8000), None);
        assert_eq!(dominant_frequency(&tone(440.0, 8000, 0.1, 0.3), 0), None);
        assert_eq!(
            tone_coverage(&tone(440.0, 8000, 0.1, 0.3), 0, 440.0, 0.02, 50, 0.0),
            0.0
        );
        assert_eq!(
            tone_coverage(&tone(440.0, 8000, 0.01, 0.3), 8000, 440.0, 0.02, 50, 0.0),
            0.0
        );
        assert_eq!(frequency_level(&[], 8000, 440.0, 0.02, 50), 0.0);
        assert_eq!(first_burst_onset(&[], 8000, 1000.0, 0.1), None);
        assert_eq!(
            first_burst_onset(&tone(1000.0, 8000, 0.1, 0.3), 0, 1000.0, 0.1),
            None
        );
        // Extreme samples do not overflow anything.
        let square: Vec<i16> = (0..800)
            .map(|n| if n % 8 < 4 { i16::MAX } else { i16::MIN })
            .collect();
        let (hz, _) = dominant_frequency(&square, 8000).expect("a square wave has a fundamental");
        assert!((hz - 1000.0).abs() < 10.0, "{hz}");
    }

    /// `lead` of `background` (or silence), then a burst of `hz` at `level` for `burst`, then
    /// more background.
    fn with_burst(
        rate: u32,
        lead: f32,
        burst: f32,
        hz: f32,
        level: f32,
        background: Option<f32>,
    ) -> Vec<i16> {
        let total = lead + burst + 0.3;
        let base = match background {
            Some(bg) => tone(bg, rate, total, 0.2),
            None => vec![0; (rate as f32 * total) as usize],
        };
        let start = (rate as f32 * lead) as usize;
        let burst = tone(hz, rate, burst, level);
        let mut samples = base;
        for (slot, sample) in samples[start..].iter_mut().zip(&burst) {
            *slot = slot.saturating_add(*sample);
        }
        samples
    }

    #[test]
    fn burst_onset_is_found_within_a_millisecond() {
        for rate in RATES {
            for background in [None, Some(440.0)] {
                let samples = with_burst(rate, 0.3137, 0.05, 1000.0, 0.4, background);
                let onset = first_burst_onset(&samples, rate, 1000.0, 0.2).expect("a burst");
                let error = (onset.as_secs_f64() - 0.3137).abs();
                assert!(error < 0.001, "{rate} Hz, {background:?}: onset {onset:?}");
            }
        }
    }

    #[test]
    fn other_bursts_and_clicks_are_not_onsets() {
        let rate = 16000;
        let other = with_burst(rate, 0.2, 0.05, 2000.0, 0.4, Some(440.0));
        assert_eq!(first_burst_onset(&other, rate, 1000.0, 0.1), None);
        // A 2 ms click of 1 kHz is shorter than a burst must last.
        let click = with_burst(rate, 0.2, 0.002, 1000.0, 0.9, None);
        assert_eq!(first_burst_onset(&click, rate, 1000.0, 0.2), None);
        // A quieter burst than the threshold is not found; a louder one later is.
        let mut two = with_burst(rate, 0.1, 0.05, 1000.0, 0.05, None);
        two.extend(with_burst(rate, 0.2, 0.05, 1000.0, 0.4, None));
        let onset = first_burst_onset(&two, rate, 1000.0, 0.2).expect("the loud burst");
        // The first part lasts 0.1 + 0.05 + 0.3 s; the loud burst starts 0.2 s into the second.
        let expected = 0.45 + 0.2;
        assert!(
            (onset.as_secs_f64() - expected).abs() < 0.001,
            "{onset:?} vs {expected}"
        );
    }
}
