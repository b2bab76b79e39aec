//! The audio source trait, silence, and a length limit for any source.
//!
//! A source is pulled: the caller asks for samples when it needs them. Sources never read a clock
//! and never block waiting for real time, so their reader sets the pace.

use super::error::AudioError;
use super::frame::{AudioFormat, AudioFrame};

/// Something that produces interleaved 16-bit audio in a fixed format: a device, a file, a
/// generator.
pub trait AudioSource: Send {
    /// The format of every sample this source produces; it never changes.
    fn format(&self) -> AudioFormat;

    /// Fills `out` with the next interleaved samples and returns how many were written.
    ///
    /// Only whole sample frames are written (if `out.len()` is not a multiple of the channel count,
    /// the tail is left untouched). A count smaller than the whole sample frames `out` can hold
    /// means the stream has ended; `Ok(0)` means it had already ended. Errors (a corrupt file) are
    /// returned as values; after an error the source reports the end of the stream.
    fn read(&mut self, out: &mut [i16]) -> Result<usize, AudioError>;

    /// Reads the next 20 ms frame; `Ok(None)` once the stream has ended.
    ///
    /// The last frame of a finite stream is completed with silence to a full 20 ms.
    fn read_frame(&mut self) -> Result<Option<AudioFrame>, AudioError> {
        let format = self.format();
        let mut samples = vec![0; format.frame_len()];
        let n = self.read(&mut samples)?;
        if n == 0 {
            return Ok(None);
        }
        // The tail of `samples` is already silence when the read was short.
        AudioFrame::new(format, samples).map(Some)
    }
}

impl<S: AudioSource + ?Sized> AudioSource for Box<S> {
    fn format(&self) -> AudioFormat {
        (**self).format()
    }

    fn read(&mut self, out: &mut [i16]) -> Result<usize, AudioError> {
        (**self).read(out)
    }

    fn read_frame(&mut self) -> Result<Option<AudioFrame>, AudioError> {
        (**self).read_frame()
    }
}

/// Whole sample frames `out` can hold, as a sample count.
pub(crate) fn whole_frames_len(out: &[i16], channels: u16) -> usize {
    out.len() - out.len() % channels as usize
}

/// Endless digital silence.
#[derive(Debug, Clone)]
pub struct SilenceSource {
    format: AudioFormat,
}

impl SilenceSource {
    /// Silence in `format`.
    pub fn new(format: AudioFormat) -> Self {
        SilenceSource { format }
    }
}

impl AudioSource for SilenceSource {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn read(&mut self, out: &mut [i16]) -> Result<usize, AudioError> {
        let n = whole_frames_len(out, self.format.channels);
        out[..n].fill(0);
        Ok(n)
    }
}

/// Ends another source after a given number of samples per channel.
#[derive(Debug, Clone)]
pub struct Take<S> {
    inner: S,
    remaining: usize,
}

impl<S: AudioSource> Take<S> {
    /// `inner`, cut off after `samples_per_channel` sample frames.
    pub fn new(inner: S, samples_per_channel: usize) -> Self {
        Take {
            inner,
            remaining: samples_per_channel,
        }
    }

    /// `inner`, cut off after `ms` milliseconds.
    pub fn millis(inner: S, ms: u32) -> Self {
        let n = inner.format().samples_per_channel_in_ms(ms);
        Self::new(inner, n)
    }

    /// Sample frames still to come (fewer if the inner source ends first).
    pub fn remaining(&self) -> usize {
        self.remaining
    }

    /// Gives back the inner source.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AudioSource> AudioSource for Take<S> {
    fn format(&self) -> AudioFormat {
        self.inner.format()
    }

    fn read(&mut self, out: &mut [i16]) -> Result<usize, AudioError> {
        let channels = self.inner.format().channels as usize;
        let wanted = (out.len() / channels).min(self.remaining) * channels;
        if wanted == 0 {
            return Ok(0);
        }
        let n = self.inner.read(&mut out[..wanted])?;
        self.remaining -= n / channels;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::ToneSource;

    #[test]
    fn silence_is_endless_and_whole_frames() {
        let mut s = SilenceSource::new(AudioFormat::STEREO_48K);
        let mut buf = [7i16; 5];
        assert_eq!(s.read(&mut buf).unwrap(), 4);
        assert_eq!(buf, [0, 0, 0, 0, 7]);
        for _ in 0..100 {
            let f = s.read_frame().unwrap().unwrap();
            assert!(f.is_20ms());
            assert!(f.samples().iter().all(|&x| x == 0));
        }
    }

    #[test]
    fn take_ends_and_pads_last_frame() {
        let tone = ToneSource::new(AudioFormat::MONO_8K, 1000.0, 0.5);
        // 30 ms: one full frame, then a half frame completed with silence, then the end.
        let mut s = Take::millis(tone, 30);
        let first = s.read_frame().unwrap().unwrap();
        assert!(first.samples().iter().any(|&x| x != 0));
        let second = s.read_frame().unwrap().unwrap();
        assert!(second.is_20ms());
        assert!(second.samples()[..80].iter().any(|&x| x != 0));
        assert!(second.samples()[80..].iter().all(|&x| x == 0));
        assert!(s.read_frame().unwrap().is_none());
        assert_eq!(s.remaining(), 0);
    }

    #[test]
    fn boxed_sources_are_sources() {
        let mut s: Box<dyn AudioSource> = Box::new(SilenceSource::new(AudioFormat::MONO_16K));
        assert_eq!(s.format(), AudioFormat::MONO_16K);
        assert_eq!(s.read_frame().unwrap().unwrap().samples().len(), 320);
    }
}
