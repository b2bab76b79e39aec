//! Streaming conversion of a rate that 20 ms frames cannot divide (11 025 Hz, 7 350 Hz, …) to
//! 48 kHz, for files recorded at such rates.
//!
//! [`Resampler`](super::Resampler) works frame by frame and needs whole samples in 20 ms, so
//! both its rates must be multiples of 50 Hz. A file at another rate is converted here first,
//! as a stream: `rubato`'s asynchronous sinc resampler with a fixed output chunk of 20 ms at
//! 48 kHz pulls as many input samples as each chunk needs (a varying count). The filter is
//! 128 taps long (a Blackman-Harris window, the cutoff rubato computes for it), so the
//! converted stream lags the file by 64 input samples — 5.8 ms at 11 025 Hz.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, FixedAsync, Resampler as _, SincInterpolationParameters, SincInterpolationType,
    WindowFunction,
};

use super::error::AudioError;
use super::frame::AudioFormat;
use super::source::whole_frames_len;

/// The rate a [`RateStream`] produces.
pub(crate) const STREAM_RATE: u32 = 48_000;
/// Output sample frames per conversion step: 20 ms at [`STREAM_RATE`].
const CHUNK: usize = (STREAM_RATE / 50) as usize;

/// Converts interleaved 16-bit samples at any rate to [`STREAM_RATE`], pulling its input
/// through a callback.
pub(crate) struct RateStream {
    resampler: Async<f32>,
    channels: usize,
    /// The input's rate, for the length of a last, partial chunk.
    from_rate: u32,
    raw: Vec<i16>,
    input: Vec<f32>,
    output: Vec<f32>,
    /// Converted samples not read yet: `ready[taken..]`.
    ready: Vec<i16>,
    taken: usize,
    /// The input has ended: what is in `ready` is the last of the stream.
    ended: bool,
    /// An input error met after some samples were written, reported by the next read.
    error: Option<AudioError>,
}

impl RateStream {
    /// A converter from `from` (any non-zero rate, 1 to 8 channels) to [`STREAM_RATE`] with
    /// the same channels.
    pub(crate) fn new(from: AudioFormat) -> Result<Self, AudioError> {
        AudioFormat::new(STREAM_RATE, from.channels).validate()?;
        if from.sample_rate == 0 {
            return Err(AudioError::UnsupportedSampleRate(0));
        }
        let channels = from.channels as usize;
        let parameters = SincInterpolationParameters::new(128, WindowFunction::BlackmanHarris2)
            .oversampling_factor(256)
            .interpolation(SincInterpolationType::Quadratic);
        let ratio = f64::from(STREAM_RATE) / f64::from(from.sample_rate);
        let resampler =
            Async::<f32>::new_sinc(ratio, 1.0, &parameters, CHUNK, channels, FixedAsync::Output)
                .map_err(|e| AudioError::Resampler(e.to_string()))?;
        Ok(RateStream {
            resampler,
            channels,
            from_rate: from.sample_rate,
            raw: Vec::new(),
            input: Vec::new(),
            output: vec![0.0; CHUNK * channels],
            ready: Vec::with_capacity(CHUNK * channels),
            taken: 0,
            ended: false,
            error: None,
        })
    }

    /// Fills `out` with converted samples, calling `pull` for input as it needs it, and returns
    /// how many it wrote, by [`AudioSource::read`](super::AudioSource::read)'s rules: fewer
    /// than `out` holds once the input has ended (`pull` wrote less than asked) and everything
    /// converted from it was read. An error from `pull` ends the input; it is returned at once
    /// when nothing was written yet, else by the next read.
    pub(crate) fn read(
        &mut self,
        out: &mut [i16],
        mut pull: impl FnMut(&mut [i16]) -> Result<usize, AudioError>,
    ) -> Result<usize, AudioError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let len = whole_frames_len(out, self.channels as u16);
        let mut written = 0;
        while written < len {
            if self.drained() {
                if self.ended {
                    break;
                }
                match self.convert(&mut pull) {
                    Ok(()) => {}
                    Err(e) if written == 0 => return Err(e),
                    Err(e) => {
                        self.error = Some(e);
                        break;
                    }
                }
                continue;
            }
            let n = (len - written).min(self.ready.len() - self.taken);
            out[written..written + n].copy_from_slice(&self.ready[self.taken..self.taken + n]);
            written += n;
            self.taken += n;
        }
        Ok(written)
    }

    /// Whether every converted sample was read.
    pub(crate) fn drained(&self) -> bool {
        self.taken == self.ready.len()
    }

    /// Converts the next chunk into `ready`.
    fn convert(
        &mut self,
        pull: &mut impl FnMut(&mut [i16]) -> Result<usize, AudioError>,
    ) -> Result<(), AudioError> {
        let frames_in = self.resampler.input_frames_next();
        self.raw.clear();
        self.raw.resize(frames_in * self.channels, 0);
        let got = match pull(&mut self.raw) {
            Ok(got) => got,
            Err(e) => {
                self.ended = true;
                return Err(e);
            }
        };
        self.ready.clear();
        self.taken = 0;
        if got == 0 {
            self.ended = true;
            return Ok(());
        }
        // A short pull ends the input; the rest of `raw` is silence already.
        self.ended = got < self.raw.len();
        self.input.clear();
        self.input
            .extend(self.raw.iter().map(|&s| f32::from(s) / 32768.0));
        let adapter_in = InterleavedSlice::new(&self.input[..], self.channels, frames_in)
            .map_err(|e| AudioError::Resampler(e.to_string()))?;
        let mut adapter_out = InterleavedSlice::new_mut(&mut self.output[..], self.channels, CHUNK)
            .map_err(|e| AudioError::Resampler(e.to_string()))?;
        let (_, frames_out) = self
            .resampler
            .process_into_buffer(&adapter_in, &mut adapter_out, None)
            .map_err(|e| AudioError::Resampler(e.to_string()))?;
        // The last chunk keeps only what its real input became.
        let keep = if self.ended {
            let got_frames = (got / self.channels) as u64;
            let frames = (got_frames * u64::from(STREAM_RATE)).div_ceil(u64::from(self.from_rate));
            frames_out.min(frames as usize)
        } else {
            frames_out
        };
        self.ready.extend(
            self.output[..keep * self.channels]
                .iter()
                .map(|&f| (f * 32768.0).round().clamp(-32768.0, 32767.0) as i16),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::tone_measure::{tone_amplitude, tone_power_ratio};

    /// `seconds` of a sine at `hz` sampled at `rate` on `channels` channels, peak half scale.
    fn sine(rate: u32, channels: u16, hz: f64, seconds: f64) -> Vec<i16> {
        let n = (f64::from(rate) * seconds) as usize;
        (0..n)
            .flat_map(|i| {
                let v = (std::f64::consts::TAU * hz * i as f64 / f64::from(rate)).sin();
                std::iter::repeat_n((v * 16_384.0) as i16, channels as usize)
            })
            .collect()
    }

    /// Reads the whole conversion of `input` in reads of `step` samples.
    fn convert_all(from: AudioFormat, input: &[i16], step: usize) -> Vec<i16> {
        let mut stream = RateStream::new(from).unwrap();
        let mut at = 0;
        let mut out = Vec::new();
        let mut buffer = vec![0; step];
        loop {
            let n = stream
                .read(&mut buffer, |raw| {
                    let n = raw.len().min(input.len() - at);
                    raw[..n].copy_from_slice(&input[at..at + n]);
                    at += n;
                    Ok(n)
                })
                .unwrap();
            out.extend_from_slice(&buffer[..n]);
            if n < buffer.len() {
                return out;
            }
        }
    }

    #[test]
    fn a_tone_at_11025_hz_keeps_its_pitch_length_and_level_at_48_khz() {
        let from = AudioFormat::new(11_025, 1);
        let input = sine(11_025, 1, 1_000.0, 2.0);
        let out = convert_all(from, &input, 960);
        // Two seconds in, two seconds out, to a millisecond.
        assert!(out.len().abs_diff(96_000) <= 48, "{} samples", out.len());
        // A second from the middle is the 1 kHz sine at half scale and nothing else (the
        // filter's 1 Hz bins would miss a pitch off by a tenth of a percent).
        let middle = &out[24_000..72_000];
        let purity = tone_power_ratio(middle, STREAM_RATE, 1_000.0);
        assert!(purity > 0.999, "purity {purity}");
        let amplitude = tone_amplitude(middle, STREAM_RATE, 1_000.0);
        assert!((amplitude - 0.5).abs() < 0.01, "amplitude {amplitude}");
    }

    #[test]
    fn stereo_stays_interleaved_whatever_the_read_sizes() {
        let from = AudioFormat::new(7_350, 2);
        let mut input = sine(7_350, 2, 440.0, 1.0);
        // Silence the right channel: it must stay silent.
        input.iter_mut().skip(1).step_by(2).for_each(|s| *s = 0);
        let out = convert_all(from, &input, 734);
        assert!(out.len().abs_diff(96_000) <= 96, "{} samples", out.len());
        assert!(out.iter().skip(1).step_by(2).all(|&s| s == 0));
        let left: Vec<i16> = out.iter().step_by(2).copied().collect();
        let purity = tone_power_ratio(&left[12_000..36_000], STREAM_RATE, 440.0);
        assert!(purity > 0.999, "purity {purity}");
    }

    #[test]
    fn an_input_error_comes_first_or_after_what_was_converted() {
        let from = AudioFormat::new(11_025, 1);
        let mut stream = RateStream::new(from).unwrap();
        let mut out = [0; 960];
        let failing = |_: &mut [i16]| Err(AudioError::Resampler("broken".into()));
        assert!(stream.read(&mut out, failing).is_err());
        // Ended: nothing more, no more pulls.
        assert_eq!(stream.read(&mut out, |_| panic!("pulled")).unwrap(), 0);
    }
}
