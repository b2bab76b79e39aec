//! Simulated acoustics for tests and benchmarks of voice processing: an artificial voice and
//! a room that turns what the speakers play into what the microphone hears.

use std::f32::consts::PI;

/// A small seeded generator (xorshift), so every run hears the same signals.
#[derive(Debug, Clone)]
pub struct Hiss(u64);

impl Hiss {
    /// A generator seeded with `seed` (0 is replaced, xorshift needs a non-zero state).
    pub fn new(seed: u64) -> Self {
        Hiss(seed.max(1))
    }

    /// The next value in −1..1.
    pub fn next_sample(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// `seconds` of an artificial voice at `rate`: a pitch of `pitch` Hz gliding ±15 %, its
/// harmonics up to 4 kHz shaped by formants at 700 and 1800 Hz, spoken in 4 Hz syllables of
/// which about one in five is a pause; peaks near `level` (full scale is 1.0).
pub fn artificial_voice(pitch: f32, seed: u64, level: f32, seconds: f32, rate: u32) -> Vec<f32> {
    let mut hiss = Hiss::new(seed);
    let (f1, f2) = (700.0f32, 1800.0f32);
    let rate_f = rate as f32;
    let syllable_len = (rate / 4).max(1) as usize;
    let mut phase = 0.0f32;
    let mut syllable = 0.0f32;
    (0..(seconds * rate_f) as usize)
        .map(|i| {
            let t = i as f32 / rate_f;
            let f0 = pitch * (1.0 + 0.15 * (2.0 * PI * 0.7 * t).sin());
            phase = (phase + f0 / rate_f).fract();
            let mut sample = 0.0;
            let mut k = 1.0f32;
            while k * f0 < 4000.0_f32.min(rate_f / 2.0) {
                let h = k * f0;
                let formant = (-((h - f1) / 300.0).powi(2)).exp()
                    + 0.6 * (-((h - f2) / 400.0).powi(2)).exp()
                    + 0.05;
                sample += formant * (2.0 * PI * k * phase).sin() / k;
                k += 1.0;
            }
            if i % syllable_len == 0 {
                syllable = if hiss.next_sample() > -0.6 { 1.0 } else { 0.0 };
            }
            let envelope = (2.0 * PI * 4.0 * t).sin().max(0.0);
            level * sample * envelope * syllable + 0.002 * hiss.next_sample()
        })
        .collect()
}

/// A room between speakers and microphone, as an impulse response of taps (delay in samples,
/// gain): the direct path after the audio stack's delay, then 120 reflections decaying with a
/// 60 ms time constant over 200 ms.
#[derive(Debug, Clone)]
pub struct Room {
    taps: Vec<(usize, f32)>,
}

impl Room {
    /// A room at `rate` whose direct path arrives `delay_ms` after the sound was played, with
    /// `gain` (0.5 is an echo at −6 dB).
    pub fn new(delay_ms: u32, gain: f32, seed: u64, rate: u32) -> Room {
        let mut hiss = Hiss::new(seed);
        let rate = rate as usize;
        let direct = delay_ms as usize * rate / 1000;
        let mut taps = vec![(direct, gain)];
        for _ in 0..120 {
            let offset = ((hiss.next_sample() + 1.0) * 0.5 * 0.2 * rate as f32) as usize;
            let decay = (-(offset as f32) / (0.06 * rate as f32)).exp();
            taps.push((
                direct + rate / 2000 + offset,
                gain * 0.5 * decay * hiss.next_sample(),
            ));
        }
        Room { taps }
    }

    /// What the microphone hears of `played`.
    pub fn echo_of(&self, played: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; played.len()];
        for &(delay, gain) in &self.taps {
            for i in delay..played.len() {
                out[i] += gain * played[i - delay];
            }
        }
        out
    }
}

/// `samples` (full scale 1.0) as 16-bit PCM.
pub fn to_i16(samples: &[f32]) -> Vec<i16> {
    samples
        .iter()
        .map(|&s| (s * 32_767.0).round().clamp(-32_768.0, 32_767.0) as i16)
        .collect()
}

/// The energy of 16-bit samples.
pub fn energy_i16(samples: &[i16]) -> f64 {
    samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum()
}
