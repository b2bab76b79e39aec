//! A synthetic voice for benchmarks that want speech-like content rather than a steady tone:
//! what a codec spends and keeps depends on the signal, and a voice's pitch, formants and noise
//! cost an Opus encoder more than a sine does.

// Each bench uses part of it.
#![allow(dead_code)]

use callisto_media::audio::{AudioError, AudioFormat, AudioSource};

/// Four seconds of a synthetic voice at 48 kHz: glottal pulses at a pitch gliding between 80
/// and 160 Hz through three resonators whose formants move, a slowly changing loudness, and a
/// fricative noise burst in each half second's last fifth. Deterministic.
pub fn synthetic_voice() -> Vec<i16> {
    const RATE: f64 = 48_000.0;
    let formants = [(700.0, 80.0), (1_220.0, 90.0), (2_600.0, 120.0)];
    let mut resonators = [[0.0f64; 2]; 3];
    let (mut phase, mut seed) = (0.0f64, 12_345u32);
    (0..4 * 48_000)
        .map(|i| {
            let t = f64::from(i) / RATE;
            phase += (120.0 + 40.0 * (t * 1.3).sin()) / RATE;
            let pulse = if phase >= 1.0 {
                phase -= 1.0;
                1.0
            } else {
                0.0
            };
            let mut voiced = 0.0;
            for (k, ((hz, bandwidth), state)) in formants.iter().zip(&mut resonators).enumerate() {
                let hz = hz * (1.0 + 0.15 * (t * (0.7 + 0.4 * k as f64)).sin());
                let r = (-std::f64::consts::PI * bandwidth / RATE).exp();
                let a1 = 2.0 * r * (std::f64::consts::TAU * hz / RATE).cos();
                let out = pulse + a1 * state[0] - r * r * state[1];
                *state = [out, state[0]];
                voiced += out;
            }
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = f64::from(seed >> 8) / f64::from(1u32 << 24) - 0.5;
            let fricative = if (t * 2.0).fract() > 0.8 {
                noise * 0.18
            } else {
                0.0
            };
            let loudness = 0.5 + 0.5 * (t * 3.0).sin().abs();
            let sample = (voiced * 0.02 * loudness + fricative) * 12_000.0;
            sample.clamp(-32_000.0, 32_000.0) as i16
        })
        .collect()
}

/// The synthetic voice as a 48 kHz mono source, looping.
pub struct VoiceSource {
    samples: Vec<i16>,
    position: usize,
}

impl VoiceSource {
    pub fn new() -> Self {
        VoiceSource {
            samples: synthetic_voice(),
            position: 0,
        }
    }
}

impl AudioSource for VoiceSource {
    fn format(&self) -> AudioFormat {
        AudioFormat::MONO_48K
    }

    fn read(&mut self, out: &mut [i16]) -> Result<usize, AudioError> {
        let mut filled = 0;
        while filled < out.len() {
            let run = (out.len() - filled).min(self.samples.len() - self.position);
            out[filled..filled + run]
                .copy_from_slice(&self.samples[self.position..self.position + run]);
            filled += run;
            self.position = (self.position + run) % self.samples.len();
        }
        Ok(filled)
    }
}
