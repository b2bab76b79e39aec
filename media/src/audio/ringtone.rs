//! The sound of an incoming call: a double ring (two tones at 400 and 450 Hz, on for 0.4 s,
//! off for 0.2 s, on for 0.4 s, then two seconds of quiet), each burst faded in and out over
//! 10 ms so that it starts and stops without a click.

use std::f64::consts::TAU;

use super::error::AudioError;
use super::frame::AudioFormat;
use super::source::{whole_frames_len, AudioSource};

/// The two tones of the ring, in Hz.
pub const RING_TONES: [f64; 2] = [400.0, 450.0];
/// The bursts of one period as (start, end) in milliseconds, and the period.
pub const RING_BURSTS_MS: [(u32, u32); 2] = [(0, 400), (600, 1000)];
pub const RING_PERIOD_MS: u32 = 3000;
const FADE_MS: f64 = 10.0;

/// An endless ring in `format`, the same on every channel.
#[derive(Debug, Clone)]
pub struct Ringtone {
    format: AudioFormat,
    amplitude: f64,
    /// Sample frames produced so far.
    produced: u64,
}

impl Ringtone {
    /// A ring whose peak (both tones together) is `dbfs` decibels relative to full scale.
    pub fn with_dbfs(format: AudioFormat, dbfs: f64) -> Self {
        Ringtone {
            format,
            amplitude: 10f64.powf(dbfs / 20.0).clamp(0.0, 1.0),
            produced: 0,
        }
    }

    /// The envelope at `ms` into a period: 1 inside a burst, 0 between, faded at the edges.
    fn envelope(ms: f64) -> f64 {
        RING_BURSTS_MS
            .iter()
            .map(|&(start, end)| {
                let (start, end) = (f64::from(start), f64::from(end));
                if ms < start || ms >= end {
                    return 0.0;
                }
                let edge = (ms - start).min(end - ms) / FADE_MS;
                if edge >= 1.0 {
                    1.0
                } else {
                    0.5 - 0.5 * (std::f64::consts::PI * edge).cos()
                }
            })
            .fold(0.0, f64::max)
    }
}

impl AudioSource for Ringtone {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn read(&mut self, out: &mut [i16]) -> Result<usize, AudioError> {
        let channels = usize::from(self.format.channels);
        let n = whole_frames_len(out, self.format.channels);
        let rate = f64::from(self.format.sample_rate);
        let period = u64::from(self.format.sample_rate) * u64::from(RING_PERIOD_MS) / 1000;
        let scale = self.amplitude * f64::from(i16::MAX) / RING_TONES.len() as f64;
        for frame in out[..n].chunks_exact_mut(channels) {
            let index = self.produced % period;
            let ms = index as f64 * 1000.0 / rate;
            let envelope = Self::envelope(ms);
            let value = if envelope == 0.0 {
                0.0
            } else {
                // Whole periods hold whole cycles of both tones (3 s of 400 and 450 Hz), so
                // the phase restarts cleanly with the index.
                let t = index as f64 / rate;
                let tones: f64 = RING_TONES.iter().map(|hz| (TAU * hz * t).sin()).sum();
                tones * scale * envelope
            };
            frame.fill(value.round() as i16);
            self.produced += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rms(samples: &[i16]) -> f64 {
        let sum: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
        (sum / samples.len().max(1) as f64).sqrt()
    }

    #[test]
    fn the_ring_has_two_bursts_then_quiet_and_repeats() {
        let format = AudioFormat::MONO_48K;
        let mut ring = Ringtone::with_dbfs(format, -6.0);
        let mut samples = vec![0i16; 48_000 * 6];
        assert_eq!(ring.read(&mut samples).unwrap(), samples.len());
        let window = |from_ms: usize, to_ms: usize| &samples[from_ms * 48..to_ms * 48];
        for period in [0, 3000] {
            assert!(rms(window(period + 50, period + 350)) > 5000.0);
            assert_eq!(rms(window(period + 420, period + 580)), 0.0);
            assert!(rms(window(period + 650, period + 950)) > 5000.0);
            assert_eq!(rms(window(period + 1020, period + 2980)), 0.0);
        }
        // Both periods are the same sound.
        assert_eq!(window(0, 3000), window(3000, 6000));
        // The peak stays at the level asked for (-6 dBFS: half of full scale).
        let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!((15_500..=16_423).contains(&peak), "{peak}");
    }

    #[test]
    fn bursts_fade_in_and_out_without_a_click() {
        let format = AudioFormat::MONO_48K;
        let mut ring = Ringtone::with_dbfs(format, -6.0);
        let mut samples = vec![0i16; 48 * 1100];
        ring.read(&mut samples).unwrap();
        // No step between neighbouring samples bigger than the tones themselves make.
        let biggest_step = samples
            .windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max()
            .unwrap();
        // Two sines at 450 Hz, 48 kHz, half scale: at most about 2π·450/48000·16384 ≈ 965.
        assert!(biggest_step < 1000, "{biggest_step}");
        // The first millisecond is nearly silent: the fade has only begun.
        assert!(rms(&samples[..48]) < 200.0, "{}", rms(&samples[..48]));
    }

    #[test]
    fn every_channel_carries_the_ring() {
        let format = AudioFormat::new(48_000, 2);
        let mut ring = Ringtone::with_dbfs(format, -6.0);
        let mut samples = vec![0i16; 2 * 4800];
        ring.read(&mut samples).unwrap();
        assert!(samples.chunks_exact(2).all(|f| f[0] == f[1]));
        assert!(rms(&samples) > 1000.0);
    }
}
