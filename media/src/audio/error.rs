//! The error type of the audio module.

use super::frame::AudioFormat;

/// What went wrong reading, writing or converting audio.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// The sample rate is zero or has no whole number of samples in a 20 ms frame (it must be a
    /// multiple of 50 Hz).
    #[error("unsupported sample rate {0} Hz: it must be a non-zero multiple of 50 Hz")]
    UnsupportedSampleRate(u32),
    /// The channel count is zero or larger than Callisto handles (8).
    #[error("unsupported channel count {0}: it must be between 1 and 8")]
    UnsupportedChannels(u16),
    /// A buffer's length is not a whole number of sample frames for its channel count.
    #[error("{samples} samples are not a whole number of frames of {channels} channels")]
    PartialSampleFrame {
        /// Number of interleaved samples given.
        samples: usize,
        /// Channel count of the format.
        channels: u16,
    },
    /// A frame's format differs from the one the receiver was set up for.
    #[error("frame format {got} does not match the expected {expected}")]
    FormatMismatch {
        /// The format the receiver works in.
        expected: AudioFormat,
        /// The format of the frame it was given.
        got: AudioFormat,
    },
    /// A frame has the wrong duration for a receiver that works in 20 ms frames.
    #[error("expected {expected} samples per channel (20 ms), got {got}")]
    WrongFrameLength {
        /// Samples per channel in a 20 ms frame of the receiver's format.
        expected: usize,
        /// Samples per channel in the frame it was given.
        got: usize,
    },
    /// A channel conversion other than equal counts, mono to many or many to mono.
    #[error("cannot convert {from} channels to {to}")]
    UnsupportedChannelMix {
        /// Channels of the input.
        from: u16,
        /// Channels wanted.
        to: u16,
    },
    /// A WAV file whose sample encoding Callisto does not read (only 16-bit integer PCM).
    #[error("unsupported WAV encoding: {bits_per_sample}-bit {sample_format}; only 16-bit integer PCM is read")]
    UnsupportedWav {
        /// Bits per sample in the file's header.
        bits_per_sample: u16,
        /// "integer" or "float".
        sample_format: &'static str,
    },
    /// The WAV file is malformed, truncated or could not be read or written.
    #[error("WAV file: {0}")]
    Wav(#[from] hound::Error),
    /// A WAV recording reached the format's 4 GiB limit (about 6 hours of 48 kHz stereo); the
    /// file holds everything written before.
    #[error("the WAV file reached its 4 GiB size limit")]
    WavFull,
    /// The sink was already finished.
    #[error("the sink is finished")]
    Finished,
    /// The resampler could not be built or could not process a frame.
    #[error("resampler: {0}")]
    Resampler(String),
}
