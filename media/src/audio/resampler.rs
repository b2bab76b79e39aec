//! Sample rate and channel conversion of 20 ms frames, between a device or file format and a
//! codec format.
//!
//! One 20 ms frame in gives one 20 ms frame out, always, so a media thread can convert frame by
//! frame with no queue in between. Rates are converted by `rubato`'s synchronous FFT resampler with
//! both chunk sizes fixed (the rates are locked, e.g. a 48 kHz device and an 8 kHz codec; clock
//! drift between devices is a separate concern). Each frame is processed in blocks as short as
//! both rates allow — 5 ms when their common divisor is a multiple of 200 Hz (8, 16 and 48 kHz
//! among themselves), 10 ms for one of 100 Hz (44.1 kHz with those), else 20 ms — since the
//! added delay is half a block:
//!
//! | conversion                 | block | delay (output samples) | delay   |
//! |----------------------------|-------|------------------------|---------|
//! | same rate (any channels)   | —     | 0                      | 0       |
//! | 48 kHz → 8 kHz             | 5 ms  | 20                     | 2.5 ms  |
//! | 8 kHz → 48 kHz             | 5 ms  | 120                    | 2.5 ms  |
//! | 44.1 kHz → 48 kHz          | 10 ms | 240                    | 5 ms    |
//! | 22.05 kHz → 16 kHz         | 20 ms | 160                    | 10 ms   |
//!
//! The block is also the anti-aliasing filter's length, so short blocks need a window with a
//! narrow main lobe to keep the passband: a Hann window passes 3.4 kHz (the top of the
//! telephone band) at 8 kHz within half a decibel with 5 ms blocks, where rubato's default
//! Blackman-Harris window cut it by 21 dB (and by 10 dB with 10 ms blocks). Aliasing stays far
//! below the 16-bit floor either way: the FFT resampler drops what lies above the lower
//! Nyquist frequency outright, and the window only shapes the transition below it.
//!
//! [`Resampler::delay_samples`] gives the exact figure for an instance. Channels are mixed before
//! the rate conversion when reducing the count and after it when increasing it, so the resampler
//! never works on more channels than it must.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler as _, WindowFunction};

use super::channel_mix::{can_mix, mix_channels};
use super::error::AudioError;
use super::frame::{AudioFormat, AudioFrame};

/// Converts 20 ms frames from one [`AudioFormat`] to another.
pub struct Resampler {
    input: AudioFormat,
    output: AudioFormat,
    /// The rate converter; `None` when the rates are equal.
    rate: Option<RateConverter>,
    /// Channel-mixed samples between the two stages.
    mixed: Vec<i16>,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("input", &self.input)
            .field("output", &self.output)
            .field("delay_samples", &self.delay_samples())
            .finish_non_exhaustive()
    }
}

/// The rate-converting stage: `rubato` on `channels` channels, in blocks.
struct RateConverter {
    fft: Fft<f32>,
    channels: usize,
    block_in: usize,
    block_out: usize,
    blocks_per_frame: usize,
    input: Vec<f32>,
    output: Vec<f32>,
}

impl RateConverter {
    fn new(from_rate: u32, to_rate: u32, channels: u16) -> Result<Self, AudioError> {
        let gcd = gcd(from_rate, to_rate);
        // A block of `block_ms` is a whole number of rubato's minimum blocks when the rates'
        // common divisor is a multiple of 1000 / `block_ms` Hz (both rates are multiples of 50).
        let block_ms = if gcd.is_multiple_of(200) {
            5
        } else if gcd.is_multiple_of(100) {
            10
        } else {
            20
        };
        let block_in = (from_rate * block_ms / 1000) as usize;
        let block_out = (to_rate * block_ms / 1000) as usize;
        let fft = Fft::<f32>::new_custom(
            from_rate as usize,
            to_rate as usize,
            block_in,
            1,
            channels as usize,
            WindowFunction::Hann,
            FixedSync::Both,
        )
        .map_err(|e| AudioError::Resampler(e.to_string()))?;
        if fft.input_frames_next() != block_in || fft.output_frames_next() != block_out {
            return Err(AudioError::Resampler(format!(
                "{from_rate} Hz to {to_rate} Hz: blocks of {} and {} samples, not {block_in} and {block_out}",
                fft.input_frames_next(),
                fft.output_frames_next()
            )));
        }
        let channels = channels as usize;
        let blocks_per_frame = (20 / block_ms) as usize;
        Ok(RateConverter {
            fft,
            channels,
            block_in,
            block_out,
            blocks_per_frame,
            input: vec![0.0; block_in * blocks_per_frame * channels],
            output: vec![0.0; block_out * blocks_per_frame * channels],
        })
    }

    /// Converts one 20 ms frame of interleaved samples (`channels` of them) and appends the result.
    fn process(&mut self, input: &[i16], out: &mut Vec<i16>) -> Result<(), AudioError> {
        for (f, &s) in self.input.iter_mut().zip(input) {
            *f = to_unit(s);
        }
        let frames_in = self.block_in * self.blocks_per_frame;
        let frames_out = self.block_out * self.blocks_per_frame;
        let adapter_in = InterleavedSlice::new(&self.input[..], self.channels, frames_in)
            .map_err(|e| AudioError::Resampler(e.to_string()))?;
        let mut adapter_out =
            InterleavedSlice::new_mut(&mut self.output[..], self.channels, frames_out)
                .map_err(|e| AudioError::Resampler(e.to_string()))?;
        for block in 0..self.blocks_per_frame {
            let indexing = Indexing::new()
                .input_offset(block * self.block_in)
                .output_offset(block * self.block_out);
            self.fft
                .process_into_buffer(&adapter_in, &mut adapter_out, Some(&indexing))
                .map_err(|e| AudioError::Resampler(e.to_string()))?;
        }
        out.extend(self.output.iter().map(|&f| from_unit(f)));
        Ok(())
    }
}

/// A sample as a fraction of full scale, for the converters.
pub(super) fn to_unit(sample: i16) -> f32 {
    f32::from(sample) / 32768.0
}

/// A fraction of full scale back as a sample, rounded and clipped.
pub(super) fn from_unit(value: f32) -> i16 {
    super::frame::round_to_sample(value * 32768.0)
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Resampler {
    /// A converter from `input` to `output`; fails for formats that are not valid (see
    /// [`AudioFormat::validate`]) or channel counts [`mix_channels`] cannot convert.
    pub fn new(input: AudioFormat, output: AudioFormat) -> Result<Self, AudioError> {
        input.validate()?;
        output.validate()?;
        if !can_mix(input.channels, output.channels) {
            return Err(AudioError::UnsupportedChannelMix {
                from: input.channels,
                to: output.channels,
            });
        }
        let rate = if input.sample_rate == output.sample_rate {
            None
        } else {
            let channels = input.channels.min(output.channels);
            Some(RateConverter::new(
                input.sample_rate,
                output.sample_rate,
                channels,
            )?)
        };
        Ok(Resampler {
            input,
            output,
            rate,
            mixed: Vec::with_capacity(input.frame_len().max(output.frame_len())),
        })
    }

    /// The format frames must come in.
    pub fn input_format(&self) -> AudioFormat {
        self.input
    }

    /// The format frames go out in.
    pub fn output_format(&self) -> AudioFormat {
        self.output
    }

    /// Whether input and output formats are equal: frames pass through unchanged.
    pub fn is_passthrough(&self) -> bool {
        self.input == self.output
    }

    /// The delay this conversion adds, in output sample frames: an event at input sample frame
    /// `n` appears at output sample frame `n * out_rate / in_rate + delay_samples()`.
    pub fn delay_samples(&self) -> usize {
        self.rate.as_ref().map_or(0, |r| r.fft.output_delay())
    }

    /// Converts one 20 ms frame in the input format into one 20 ms frame in the output format.
    pub fn process(&mut self, input: &AudioFrame) -> Result<AudioFrame, AudioError> {
        if input.format() != self.input {
            return Err(AudioError::FormatMismatch {
                expected: self.input,
                got: input.format(),
            });
        }
        let mut out = Vec::with_capacity(self.output.frame_len());
        self.process_into(input.samples(), &mut out)?;
        AudioFrame::new(self.output, out)
    }

    /// Converts one 20 ms frame of interleaved samples in the input format and appends the 20 ms
    /// result to `out`.
    pub fn process_into(&mut self, input: &[i16], out: &mut Vec<i16>) -> Result<(), AudioError> {
        if input.len() != self.input.frame_len() {
            return Err(AudioError::WrongFrameLength {
                expected: self.input.frame_samples_per_channel(),
                got: input.len() / self.input.channels as usize,
            });
        }
        let (from, to) = (self.input.channels, self.output.channels);
        match self.rate.as_mut() {
            None => mix_channels(input, from, to, out),
            Some(rate) if to < from => {
                self.mixed.clear();
                mix_channels(input, from, to, &mut self.mixed)?;
                rate.process(&self.mixed, out)
            }
            Some(rate) if to > from => {
                self.mixed.clear();
                rate.process(input, &mut self.mixed)?;
                mix_channels(&self.mixed, from, to, out)
            }
            Some(rate) => rate.process(input, out),
        }
    }

    /// Forgets the signal history (for a new stream); the next output starts from silence.
    pub fn reset(&mut self) {
        if let Some(rate) = self.rate.as_mut() {
            rate.fft.reset();
        }
    }
}

#[cfg(test)]
mod tests;
