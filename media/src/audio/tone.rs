//! Generated test signals: a continuous sine tone and sine bursts at known sample positions.

use std::f64::consts::TAU;

use super::error::AudioError;
use super::frame::AudioFormat;
use super::source::{whole_frames_len, AudioSource};

/// Converts a linear amplitude (fraction of full scale) and a phase in cycles to a sample.
fn sine_sample(amplitude: f64, phase_cycles: f64) -> i16 {
    let v = (TAU * phase_cycles).sin() * amplitude * f64::from(i16::MAX);
    // The amplitude is clamped to [0, 1], so the value is within i16's range.
    v.round() as i16
}

/// Linear amplitude of a level in dBFS (0 dBFS = full-scale sine peak).
fn amplitude_of_dbfs(dbfs: f64) -> f64 {
    10f64.powf(dbfs / 20.0)
}

/// Sample frames between two exact evaluations of a [`ToneSource`]'s sine.
const TONE_ANCHOR: u64 = 64;

/// An endless sine tone, the same on every channel, phase-continuous across reads.
#[derive(Debug, Clone)]
pub struct ToneSource {
    format: AudioFormat,
    hz: f64,
    amplitude: f64,
    /// Sample frames produced so far.
    produced: u64,
}

impl ToneSource {
    /// A sine at `hz` with peak `amplitude` as a fraction of full scale (clamped to 0..=1).
    ///
    /// Frequencies at or above half the sample rate alias, as they would from any converter.
    pub fn new(format: AudioFormat, hz: f64, amplitude: f64) -> Self {
        ToneSource {
            format,
            hz,
            amplitude: amplitude.clamp(0.0, 1.0),
            produced: 0,
        }
    }

    /// A sine at `hz` whose peak is `dbfs` decibels relative to full scale (e.g. -20.0).
    pub fn with_dbfs(format: AudioFormat, hz: f64, dbfs: f64) -> Self {
        Self::new(format, hz, amplitude_of_dbfs(dbfs))
    }

    /// The tone's frequency in Hz.
    pub fn hz(&self) -> f64 {
        self.hz
    }

    /// The peak amplitude as a fraction of full scale.
    pub fn amplitude(&self) -> f64 {
        self.amplitude
    }

    /// Sample frames produced so far.
    pub fn samples_produced(&self) -> u64 {
        self.produced
    }
}

impl AudioSource for ToneSource {
    fn format(&self) -> AudioFormat {
        self.format
    }

    /// The sine is computed exactly at every 64th sample frame (counted from the
    /// start of the stream) and advanced between anchors by a rotation, one complex
    /// multiplication per sample: no transcendental call per sample, a rounding error many
    /// orders of magnitude below one LSB, and the same samples whatever the read sizes.
    fn read(&mut self, out: &mut [i16]) -> Result<usize, AudioError> {
        let channels = self.format.channels as usize;
        let n = whole_frames_len(out, self.format.channels);
        let step = self.hz / f64::from(self.format.sample_rate);
        let scale = self.amplitude * f64::from(i16::MAX);
        let (step_sin, step_cos) = (TAU * step).sin_cos();
        let anchor = |index: u64| (TAU * (index as f64 * step).rem_euclid(1.0)).sin_cos();
        let mut index = self.produced;
        let (mut sin, mut cos) = anchor(index - index % TONE_ANCHOR);
        for _ in 0..index % TONE_ANCHOR {
            (sin, cos) = (
                sin * step_cos + cos * step_sin,
                cos * step_cos - sin * step_sin,
            );
        }
        for frame in out[..n].chunks_exact_mut(channels) {
            if index.is_multiple_of(TONE_ANCHOR) {
                (sin, cos) = anchor(index);
            }
            let v = sin * scale;
            // Rounds half away from zero without a libm call; |v| <= i16::MAX.
            frame.fill((v + 0.5f64.copysign(v)) as i16);
            (sin, cos) = (
                sin * step_cos + cos * step_sin,
                cos * step_cos - sin * step_sin,
            );
            index += 1;
        }
        self.produced += (n / channels) as u64;
        Ok(n)
    }
}

/// A sine burst at a known position: the marker of a mouth-to-ear delay measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burst {
    /// Sample frame index of the burst's first sample.
    pub start: u64,
    /// Length of the burst in sample frames.
    pub length: u64,
    /// Frequency in Hz.
    pub hz: f64,
    /// Peak amplitude as a fraction of full scale (clamped to 0..=1).
    pub amplitude: f64,
    /// If set, the burst repeats every `period` sample frames after `start`.
    pub period: Option<u64>,
}

impl Burst {
    /// A single burst starting `start_ms` into the stream and lasting `length_ms`, in `format`'s
    /// sample rate.
    pub fn millis(
        format: AudioFormat,
        start_ms: u32,
        length_ms: u32,
        hz: f64,
        amplitude: f64,
    ) -> Self {
        Burst {
            start: format.samples_per_channel_in_ms(start_ms) as u64,
            length: format.samples_per_channel_in_ms(length_ms) as u64,
            hz,
            amplitude,
            period: None,
        }
    }

    /// The same burst, repeated every `period_ms`.
    pub fn every_ms(self, format: AudioFormat, period_ms: u32) -> Self {
        Burst {
            period: Some(format.samples_per_channel_in_ms(period_ms) as u64),
            ..self
        }
    }

    /// Offset of sample frame `index` into its burst, if it falls inside one.
    fn offset_in_burst(&self, index: u64) -> Option<u64> {
        let since_start = index.checked_sub(self.start)?;
        let offset = match self.period {
            Some(period) if period > 0 => since_start % period,
            _ => since_start,
        };
        (offset < self.length).then_some(offset)
    }
}

/// Silence with sine bursts ([`Burst`]), endless.
///
/// Each burst starts at phase zero exactly at its start index, with no fade, so the onset is
/// sample-exact for delay measurements.
#[derive(Debug, Clone)]
pub struct BurstSource {
    format: AudioFormat,
    burst: Burst,
    /// Index of the next sample frame.
    position: u64,
}

impl BurstSource {
    /// Silence in `format` with `burst` in it.
    pub fn new(format: AudioFormat, burst: Burst) -> Self {
        BurstSource {
            format,
            burst: Burst {
                amplitude: burst.amplitude.clamp(0.0, 1.0),
                ..burst
            },
            position: 0,
        }
    }

    /// The burst this source produces.
    pub fn burst(&self) -> Burst {
        self.burst
    }

    /// Index of the next sample frame to be produced.
    pub fn position(&self) -> u64 {
        self.position
    }
}

impl AudioSource for BurstSource {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn read(&mut self, out: &mut [i16]) -> Result<usize, AudioError> {
        let channels = self.format.channels as usize;
        let n = whole_frames_len(out, self.format.channels);
        let rate = f64::from(self.format.sample_rate);
        for frame in out[..n].chunks_exact_mut(channels) {
            let value = match self.burst.offset_in_burst(self.position) {
                Some(offset) => {
                    let phase = (offset as f64 * self.burst.hz / rate).fract();
                    sine_sample(self.burst.amplitude, phase)
                }
                None => 0,
            };
            frame.fill(value);
            self.position += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::tone_measure::{level_dbfs, tone_power_ratio};

    fn read_all(source: &mut dyn AudioSource, samples: usize) -> Vec<i16> {
        let mut out = vec![0; samples];
        let n = source.read(&mut out).unwrap();
        assert_eq!(n, samples);
        out
    }

    #[test]
    fn tone_has_its_frequency_and_level() {
        for (rate, hz) in [
            (8_000, 1_000.0),
            (16_000, 440.0),
            (44_100, 3_000.0),
            (48_000, 440.0),
        ] {
            let format = AudioFormat::new(rate, 1);
            let mut tone = ToneSource::with_dbfs(format, hz, -6.0);
            let samples = read_all(&mut tone, rate as usize / 2);
            assert!(
                tone_power_ratio(&samples, rate, hz) > 0.99,
                "{hz} Hz at {rate} Hz is not a pure tone"
            );
            assert!(
                tone_power_ratio(&samples, rate, hz * 1.25) < 0.01,
                "{hz} Hz at {rate} Hz has energy at the wrong frequency"
            );
            // A sine's RMS is 3 dB below its peak.
            let level = level_dbfs(&samples);
            assert!((level - (-9.01)).abs() < 0.1, "level {level} dBFS");
        }
    }

    #[test]
    fn tone_is_phase_continuous_across_reads_and_channels() {
        let format = AudioFormat::STEREO_48K;
        let mut whole = ToneSource::new(format, 997.0, 0.8);
        let expected = read_all(&mut whole, 48_000);
        let mut pieces = ToneSource::new(format, 997.0, 0.8);
        let mut got = Vec::new();
        // Odd-sized reads, including one that is not a whole sample frame.
        let mut buf = vec![0; 333];
        while got.len() < expected.len() {
            let n = pieces.read(&mut buf).unwrap();
            assert_eq!(n, 332);
            got.extend_from_slice(&buf[..n]);
        }
        got.truncate(expected.len());
        assert_eq!(got, expected);
        assert!(got.chunks_exact(2).all(|lr| lr[0] == lr[1]));
        assert_eq!(
            pieces.samples_produced(),
            332 / 2 * (48_000usize.div_ceil(332) as u64)
        );
    }

    #[test]
    fn amplitude_is_clamped() {
        let mut tone = ToneSource::new(AudioFormat::MONO_8K, 1000.0, 4.0);
        assert_eq!(tone.amplitude(), 1.0);
        let samples = read_all(&mut tone, 800);
        assert_eq!(*samples.iter().max().unwrap(), i16::MAX);
    }

    #[test]
    fn burst_starts_at_its_index() {
        let format = AudioFormat::MONO_48K;
        let burst = Burst::millis(format, 100, 50, 1000.0, 0.5);
        assert_eq!((burst.start, burst.length), (4_800, 2_400));
        let mut source = BurstSource::new(format, burst);
        let samples = read_all(&mut source, 48_000);
        let first_nonzero = samples.iter().position(|&x| x != 0).unwrap();
        // Phase zero is a zero sample; the next one is the first non-zero.
        assert_eq!(first_nonzero, 4_801);
        let last_nonzero = samples.iter().rposition(|&x| x != 0).unwrap();
        assert!(last_nonzero < 4_800 + 2_400 && last_nonzero > 4_800 + 2_390);
        assert!(tone_power_ratio(&samples[4_800..7_200], 48_000, 1000.0) > 0.99);
        assert_eq!(source.position(), 48_000);
    }

    #[test]
    fn burst_repeats_with_its_period() {
        let format = AudioFormat::new(16_000, 2);
        let burst = Burst::millis(format, 20, 10, 1000.0, 0.5).every_ms(format, 200);
        let mut source = BurstSource::new(format, burst);
        let samples = read_all(&mut source, 16_000 * 2);
        let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
        for k in 0..4 {
            let start = 320 + k * 3_200;
            assert!(
                left[start..start + 160].iter().any(|&x| x != 0),
                "burst {k}"
            );
            assert!(
                left[start + 160..start + 3_200].iter().all(|&x| x == 0),
                "gap {k}"
            );
            // Each repetition restarts at phase zero.
            assert_eq!(left[start..start + 160], left[320..480]);
        }
        assert!(left[..320].iter().all(|&x| x == 0));
    }
}
