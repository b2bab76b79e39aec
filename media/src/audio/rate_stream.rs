//! Streaming conversion of a rate that 20 ms frames cannot divide (11 025 Hz, 7 350 Hz, …) to
//! 48 kHz, for files recorded at such rates.
//!
//! [`Resampler`](super::Resampler) works frame by frame and needs whole samples in 20 ms, so
//! both its rates must be multiples of 50 Hz. A file at another rate is converted here first,
//! as a stream: `rubato`'s asynchronous sinc resampler with a fixed output chunk of 20 ms at
//! 48 kHz pulls as many input samples as each chunk needs (a varying count). The filter is
//! 128 taps long (a Blackman-Harris window, the cutoff rubato computes for it). Its delay is
//! taken out: the first output samples the filter's delay holds are dropped, and at the end of
//! the input the filter is flushed with silence, so the converted stream lines up with the
//! file sample for sample and is exactly as long (rounded up to a whole output sample).

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, FixedAsync, Resampler as _, SincInterpolationParameters, SincInterpolationType,
    WindowFunction,
};

use super::error::AudioError;
use super::frame::AudioFormat;
use super::resampler::{from_unit, to_unit};
use super::source::whole_frames_len;

/// The rate a [`RateStream`] produces.
pub(crate) const STREAM_RATE: u32 = 48_000;
/// Output sample frames per conversion step: 20 ms at [`STREAM_RATE`].
const CHUNK: usize = (STREAM_RATE / 50) as usize;
/// The input rates converted: a file claiming more is refused rather than given buffers
/// sized by its header.
const RATES: std::ops::RangeInclusive<u32> = 1_000..=384_000;

/// Converts interleaved 16-bit samples at any rate to [`STREAM_RATE`], pulling its input
/// through a callback.
pub(crate) struct RateStream {
    resampler: Async<f32>,
    channels: usize,
    /// The input's rate, for the length of the output.
    from_rate: u32,
    /// Output sample frames still to drop: the filter's delay.
    skip: usize,
    /// Input sample frames pulled, and output sample frames kept, so far.
    frames_in: u64,
    frames_out: u64,
    /// The input has ended; the filter is being flushed with silence.
    input_done: bool,
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
    /// Whether the input was asked, after its end, for an error it kept for its next read.
    polled_after_end: bool,
}

impl RateStream {
    /// A converter from `from` (any non-zero rate, 1 to 8 channels) to [`STREAM_RATE`] with
    /// the same channels.
    pub(crate) fn new(from: AudioFormat) -> Result<Self, AudioError> {
        AudioFormat::new(STREAM_RATE, from.channels).validate()?;
        if !RATES.contains(&from.sample_rate) {
            return Err(AudioError::UnsupportedSampleRate(from.sample_rate));
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
            skip: resampler.output_delay(),
            resampler,
            channels,
            from_rate: from.sample_rate,
            frames_in: 0,
            frames_out: 0,
            input_done: false,
            raw: Vec::new(),
            input: Vec::new(),
            output: vec![0.0; CHUNK * channels],
            ready: Vec::with_capacity(CHUNK * channels),
            taken: 0,
            ended: false,
            error: None,
            polled_after_end: false,
        })
    }

    /// Fills `out` with converted samples, calling `pull` for input as it needs it, and returns
    /// how many it wrote, by [`AudioSource::read`](super::AudioSource::read)'s rules: fewer
    /// than `out` holds once the input has ended (`pull` wrote less than asked) and everything
    /// converted from it was read. An error from `pull` ends the input; it is returned at once
    /// when nothing was written yet, else by the next read. Once the input has ended and its
    /// samples are out, `pull` is called once more with an empty buffer, for an error the
    /// input keeps for the read after a short one (a truncated file).
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
                    if !self.polled_after_end {
                        self.polled_after_end = true;
                        if let Err(e) = pull(&mut []) {
                            if written == 0 {
                                return Err(e);
                            }
                            self.error = Some(e);
                        }
                    }
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
    fn drained(&self) -> bool {
        self.taken == self.ready.len()
    }

    /// Converts the next chunk into `ready`. Any error ends the stream.
    fn convert(
        &mut self,
        pull: &mut impl FnMut(&mut [i16]) -> Result<usize, AudioError>,
    ) -> Result<(), AudioError> {
        let result = self.convert_chunk(pull);
        if result.is_err() {
            // The input has said what went wrong: it is not asked again.
            self.ended = true;
            self.polled_after_end = true;
        }
        result
    }

    fn convert_chunk(
        &mut self,
        pull: &mut impl FnMut(&mut [i16]) -> Result<usize, AudioError>,
    ) -> Result<(), AudioError> {
        self.ready.clear();
        self.taken = 0;
        let frames_in = self.resampler.input_frames_next();
        self.raw.clear();
        self.raw.resize(frames_in * self.channels, 0);
        if !self.input_done {
            // A short pull ends the input; the rest of `raw` is silence already, as is every
            // chunk after it, which flushes the filter.
            let got = pull(&mut self.raw)?;
            self.frames_in += (got / self.channels) as u64;
            self.input_done = got < self.raw.len();
        }
        self.input.clear();
        self.input.extend(self.raw.iter().map(|&s| to_unit(s)));
        let adapter_in = InterleavedSlice::new(&self.input[..], self.channels, frames_in)
            .map_err(|e| AudioError::Resampler(e.to_string()))?;
        let mut adapter_out = InterleavedSlice::new_mut(&mut self.output[..], self.channels, CHUNK)
            .map_err(|e| AudioError::Resampler(e.to_string()))?;
        let (_, frames_out) = self
            .resampler
            .process_into_buffer(&adapter_in, &mut adapter_out, None)
            .map_err(|e| AudioError::Resampler(e.to_string()))?;
        let first = self.skip.min(frames_out);
        self.skip -= first;
        let mut last = frames_out;
        if self.input_done {
            // Everything the input became, and no more.
            let total =
                (self.frames_in * u64::from(STREAM_RATE)).div_ceil(u64::from(self.from_rate));
            let wanted = total.saturating_sub(self.frames_out) as usize;
            last = last.min(first + wanted);
            self.ended = self.frames_out + (last - first) as u64 >= total;
        }
        self.frames_out += (last - first) as u64;
        self.ready.extend(
            self.output[first * self.channels..last * self.channels]
                .iter()
                .map(|&f| from_unit(f)),
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
        // Two seconds in, two seconds out.
        assert_eq!(out.len(), 96_000);
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
        assert_eq!(out.len(), 96_000);
        assert!(out.iter().skip(1).step_by(2).all(|&s| s == 0));
        let left: Vec<i16> = out.iter().step_by(2).copied().collect();
        let purity = tone_power_ratio(&left[12_000..36_000], STREAM_RATE, 440.0);
        assert!(purity > 0.999, "purity {purity}");
    }

    #[test]
    fn the_filter_delay_is_taken_out_at_both_ends() {
        // Clicks at the first and the last input samples come out at the same instants.
        let from = AudioFormat::new(11_025, 1);
        let mut input = vec![0i16; 11_025];
        input[0] = 30_000;
        input[11_024] = 30_000;
        let out = convert_all(from, &input, 960);
        assert_eq!(out.len(), 48_000);
        let peak =
            |range: std::ops::Range<usize>| range.max_by_key(|&i| out[i].unsigned_abs()).unwrap();
        assert_eq!(peak(0..100), 0);
        // Sample 11 024 of 11 025 Hz is at 47 995.6 samples of 48 kHz.
        assert!((47_994..=47_997).contains(&peak(47_900..48_000)));
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

        // Input, then an error: the converted samples, then the error, then the end.
        let mut stream = RateStream::new(from).unwrap();
        let mut pulls = 0;
        let mut pull = |raw: &mut [i16]| {
            pulls += 1;
            if pulls > 3 {
                return Err(AudioError::Resampler("broken".into()));
            }
            raw.fill(1_000);
            Ok(raw.len())
        };
        let mut long = vec![0; 48_000];
        let n = stream.read(&mut long, &mut pull).unwrap();
        assert!(n > 0 && n < long.len(), "{n} samples");
        assert!(stream.read(&mut long, &mut pull).is_err());
        assert_eq!(stream.read(&mut long, &mut pull).unwrap(), 0);
    }

    #[test]
    fn absurd_rates_are_refused() {
        for rate in [0, 999, 384_001, u32::MAX] {
            assert!(
                RateStream::new(AudioFormat::new(rate, 1)).is_err(),
                "{rate} Hz"
            );
        }
    }
}
