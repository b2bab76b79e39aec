//! A sink that hands every frame to two sinks: record a call and play it at once.

use super::error::AudioError;
use super::frame::{AudioFormat, AudioFrame};
use super::sink::AudioSink;

/// Writes each frame to `first`, then to `second`; both must accept the same format.
///
/// An error of either is returned after both were given the frame, so a failing recorder does
/// not silence the speaker nor the other way round.
pub struct TeeSink<A, B> {
    first: A,
    second: B,
}

impl<A: AudioSink, B: AudioSink> TeeSink<A, B> {
    /// Both sinks; fails with [`AudioError::FormatMismatch`] when their formats differ.
    pub fn new(first: A, second: B) -> Result<Self, AudioError> {
        if first.format() != second.format() {
            return Err(AudioError::FormatMismatch {
                expected: first.format(),
                got: second.format(),
            });
        }
        Ok(TeeSink { first, second })
    }

    /// Gives the two sinks back.
    pub fn into_inner(self) -> (A, B) {
        (self.first, self.second)
    }
}

impl<A: AudioSink, B: AudioSink> AudioSink for TeeSink<A, B> {
    fn format(&self) -> AudioFormat {
        self.first.format()
    }

    fn write(&mut self, frame: &AudioFrame) -> Result<(), AudioError> {
        let first = self.first.write(frame);
        let second = self.second.write(frame);
        first.and(second)
    }

    fn finish(&mut self) -> Result<(), AudioError> {
        let first = self.first.finish();
        let second = self.second.finish();
        first.and(second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{MemorySink, NullSink};

    #[test]
    fn both_sinks_get_every_frame_and_the_finish() {
        let a = MemorySink::new(AudioFormat::MONO_8K);
        let b = MemorySink::new(AudioFormat::MONO_8K);
        let (ra, rb) = (a.shared(), b.shared());
        let mut tee = TeeSink::new(a, b).unwrap();
        let frame = AudioFrame::new(AudioFormat::MONO_8K, (0..160).collect()).unwrap();
        tee.write(&frame).unwrap();
        tee.finish().unwrap();
        assert_eq!(ra.samples(), frame.samples());
        assert_eq!(rb.samples(), frame.samples());
        assert!(ra.is_finished() && rb.is_finished());
        assert!(tee.write(&frame).is_err());
    }

    #[test]
    fn formats_must_agree() {
        let tee = TeeSink::new(
            NullSink::new(AudioFormat::MONO_8K),
            NullSink::new(AudioFormat::MONO_16K),
        );
        assert!(tee.is_err());
    }
}
