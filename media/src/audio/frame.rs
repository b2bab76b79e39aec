//! Audio formats and frames: interleaved signed 16-bit samples with their format.
//!
//! Vocabulary used across the audio and codec modules: a *sample* is one `i16` value of one
//! channel; a *sample frame* is one sample for every channel (what a rate counts per second); a
//! [`AudioFrame`] is a block of sample frames, normally [`FRAME_MS`] = 20 ms long.

use std::fmt;

use super::error::AudioError;

/// Duration of the audio frames Callisto moves between sources, codecs and sinks, in milliseconds.
pub const FRAME_MS: u32 = 20;

/// Largest channel count Callisto handles.
const MAX_CHANNELS: u16 = 8;

/// Sample rate and channel count of interleaved 16-bit PCM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AudioFormat {
    /// Sample frames per second (Hz).
    pub sample_rate: u32,
    /// Interleaved channels (1 = mono, 2 = stereo: left, right).
    pub channels: u16,
}

impl AudioFormat {
    /// Narrowband mono, the format of G.711.
    pub const MONO_8K: AudioFormat = AudioFormat::new(8_000, 1);
    /// Wideband mono.
    pub const MONO_16K: AudioFormat = AudioFormat::new(16_000, 1);
    /// Fullband mono, Opus's mono format.
    pub const MONO_48K: AudioFormat = AudioFormat::new(48_000, 1);
    /// Fullband stereo, Opus's stereo format and a common device format.
    pub const STEREO_48K: AudioFormat = AudioFormat::new(48_000, 2);

    /// A format with the given rate and channel count (not validated; see [`AudioFormat::validate`]).
    pub const fn new(sample_rate: u32, channels: u16) -> Self {
        AudioFormat {
            sample_rate,
            channels,
        }
    }

    /// Checks that the rate is a non-zero multiple of 50 Hz (so a 20 ms frame holds whole samples)
    /// and that the channel count is between 1 and 8.
    pub fn validate(&self) -> Result<(), AudioError> {
        if self.sample_rate == 0 || !self.sample_rate.is_multiple_of(1000 / FRAME_MS) {
            return Err(AudioError::UnsupportedSampleRate(self.sample_rate));
        }
        if self.channels == 0 || self.channels > MAX_CHANNELS {
            return Err(AudioError::UnsupportedChannels(self.channels));
        }
        Ok(())
    }

    /// Samples per channel in `ms` milliseconds (rounded down).
    pub const fn samples_per_channel_in_ms(&self, ms: u32) -> usize {
        (self.sample_rate as u64 * ms as u64 / 1000) as usize
    }

    /// Samples per channel in a 20 ms frame (e.g. 960 at 48 kHz, 160 at 8 kHz).
    pub const fn frame_samples_per_channel(&self) -> usize {
        self.samples_per_channel_in_ms(FRAME_MS)
    }

    /// Interleaved samples in a 20 ms frame, all channels together (e.g. 1920 for 48 kHz stereo).
    pub const fn frame_len(&self) -> usize {
        self.frame_samples_per_channel() * self.channels as usize
    }

    /// The same rate with another channel count.
    pub const fn with_channels(&self, channels: u16) -> AudioFormat {
        AudioFormat::new(self.sample_rate, channels)
    }
}

impl fmt::Display for AudioFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let layout = match self.channels {
            1 => "mono".to_owned(),
            2 => "stereo".to_owned(),
            n => format!("{n} channels"),
        };
        write!(f, "{} Hz {layout}", self.sample_rate)
    }
}

/// A block of interleaved signed 16-bit samples in a known format.
///
/// The sample count is always a whole number of sample frames (a multiple of the channel count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame {
    format: AudioFormat,
    samples: Vec<i16>,
}

impl AudioFrame {
    /// A frame of `samples` (interleaved) in `format`; fails if the count is not a multiple of
    /// the channel count or the format is not valid.
    pub fn new(format: AudioFormat, samples: Vec<i16>) -> Result<Self, AudioError> {
        format.validate()?;
        if !samples.len().is_multiple_of(format.channels as usize) {
            return Err(AudioError::PartialSampleFrame {
                samples: samples.len(),
                channels: format.channels,
            });
        }
        Ok(AudioFrame { format, samples })
    }

    /// `samples_per_channel` sample frames of silence.
    pub fn silence(format: AudioFormat, samples_per_channel: usize) -> Self {
        AudioFrame {
            format,
            samples: vec![0; samples_per_channel * format.channels as usize],
        }
    }

    /// A 20 ms frame of silence.
    pub fn silent_frame(format: AudioFormat) -> Self {
        Self::silence(format, format.frame_samples_per_channel())
    }

    /// The frame's format.
    pub fn format(&self) -> AudioFormat {
        self.format
    }

    /// The interleaved samples.
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// The interleaved samples, writable in place (the length cannot change).
    pub fn samples_mut(&mut self) -> &mut [i16] {
        &mut self.samples
    }

    /// Gives up the frame, keeping its samples.
    pub fn into_samples(self) -> Vec<i16> {
        self.samples
    }

    /// Sample frames in this frame (samples per channel).
    pub fn samples_per_channel(&self) -> usize {
        self.samples.len() / self.format.channels as usize
    }

    /// Duration in microseconds.
    pub fn duration_us(&self) -> u64 {
        self.samples_per_channel() as u64 * 1_000_000 / u64::from(self.format.sample_rate)
    }

    /// Whether this frame lasts exactly [`FRAME_MS`].
    pub fn is_20ms(&self) -> bool {
        self.samples_per_channel() == self.format.frame_samples_per_channel()
    }
}

/// `value` rounded to the nearest integer, ties to even. Adding and taking away 1.5 x 2^23
/// rounds in the FPU's own mode, without the call to `roundf` that `f32::round` is on
/// x86-64's baseline; exact for |value| < 2^22, far beyond what mixes and converters produce.
#[inline]
pub(crate) fn round_fast(value: f32) -> f32 {
    const ROUNDER: f32 = 12_582_912.0;
    (value + ROUNDER) - ROUNDER
}

/// `value` (in sample units) rounded ([`round_fast`]) and saturated to 16 bits.
#[inline]
pub(crate) fn round_to_sample(value: f32) -> i16 {
    round_fast(value).clamp(-32_768.0, 32_767.0) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_round_to_nearest_and_saturate() {
        let cases = [
            (0.4, 0),
            (0.6, 1),
            (-0.6, -1),
            (2.5, 2),
            (3.5, 4),
            (-1234.49, -1234),
            (32_766.6, 32_767),
            (40_000.0, 32_767),
            (-32_768.4, -32_768),
            (-196_608.0, -32_768),
        ];
        for (value, sample) in cases {
            assert_eq!(round_to_sample(value), sample, "{value}");
        }
        // Everything a 16-bit sample can be comes back as itself.
        for sample in i16::MIN..=i16::MAX {
            assert_eq!(round_to_sample(f32::from(sample)), sample);
        }
    }

    #[test]
    fn twenty_ms_sizes() {
        assert_eq!(AudioFormat::MONO_8K.frame_samples_per_channel(), 160);
        assert_eq!(AudioFormat::MONO_16K.frame_samples_per_channel(), 320);
        assert_eq!(AudioFormat::new(44_100, 2).frame_samples_per_channel(), 882);
        assert_eq!(AudioFormat::new(44_100, 2).frame_len(), 1764);
        assert_eq!(AudioFormat::STEREO_48K.frame_len(), 1920);
        assert_eq!(AudioFormat::MONO_48K.samples_per_channel_in_ms(10), 480);
    }

    #[test]
    fn validation() {
        assert!(AudioFormat::new(22_050, 1).validate().is_ok());
        assert!(matches!(
            AudioFormat::new(11_025, 1).validate(),
            Err(AudioError::UnsupportedSampleRate(11_025))
        ));
        assert!(matches!(
            AudioFormat::new(0, 1).validate(),
            Err(AudioError::UnsupportedSampleRate(0))
        ));
        assert!(matches!(
            AudioFormat::new(8_000, 0).validate(),
            Err(AudioError::UnsupportedChannels(0))
        ));
        assert!(matches!(
            AudioFormat::new(8_000, 9).validate(),
            Err(AudioError::UnsupportedChannels(9))
        ));
    }

    #[test]
    fn frame_rejects_partial_sample_frames() {
        let err = AudioFrame::new(AudioFormat::STEREO_48K, vec![0; 3]).unwrap_err();
        assert!(matches!(
            err,
            AudioError::PartialSampleFrame {
                samples: 3,
                channels: 2
            }
        ));
        let frame = AudioFrame::new(AudioFormat::STEREO_48K, vec![0; 1920]).unwrap();
        assert_eq!(frame.samples_per_channel(), 960);
        assert_eq!(frame.duration_us(), 20_000);
        assert!(frame.is_20ms());
        assert!(!AudioFrame::silence(AudioFormat::MONO_8K, 80).is_20ms());
    }

    #[test]
    fn display() {
        assert_eq!(AudioFormat::MONO_8K.to_string(), "8000 Hz mono");
        assert_eq!(AudioFormat::STEREO_48K.to_string(), "48000 Hz stereo");
        assert_eq!(
            AudioFormat::new(48_000, 6).to_string(),
            "48000 Hz 6 channels"
        );
    }
}
