//! The audio sink trait, a sink that discards, and a sink that keeps samples in memory.

use std::sync::{Arc, Mutex, MutexGuard};

use super::error::AudioError;
use super::frame::{AudioFormat, AudioFrame};

/// Something that consumes interleaved 16-bit audio in a fixed format: a device, a file, memory.
pub trait AudioSink: Send {
    /// The format every written frame must be in.
    fn format(&self) -> AudioFormat;

    /// Consumes one frame (of any length) in [`AudioSink::format`]; a frame in another format is
    /// refused with [`AudioError::FormatMismatch`], and any write after [`AudioSink::finish`] with
    /// [`AudioError::Finished`].
    fn write(&mut self, frame: &AudioFrame) -> Result<(), AudioError>;

    /// Ends the stream: flushes and closes what the sink writes to. Finishing twice is harmless.
    fn finish(&mut self) -> Result<(), AudioError>;
}

impl<S: AudioSink + ?Sized> AudioSink for Box<S> {
    fn format(&self) -> AudioFormat {
        (**self).format()
    }

    fn write(&mut self, frame: &AudioFrame) -> Result<(), AudioError> {
        (**self).write(frame)
    }

    fn finish(&mut self) -> Result<(), AudioError> {
        (**self).finish()
    }
}

/// Refuses a frame whose format is not `expected`.
pub(crate) fn check_format(expected: AudioFormat, frame: &AudioFrame) -> Result<(), AudioError> {
    if frame.format() == expected {
        Ok(())
    } else {
        Err(AudioError::FormatMismatch {
            expected,
            got: frame.format(),
        })
    }
}

/// Discards everything, counting what it was given.
#[derive(Debug, Clone)]
pub struct NullSink {
    format: AudioFormat,
    samples_per_channel: u64,
    finished: bool,
}

impl NullSink {
    /// A sink accepting `format`.
    pub fn new(format: AudioFormat) -> Self {
        NullSink {
            format,
            samples_per_channel: 0,
            finished: false,
        }
    }

    /// Sample frames written so far.
    pub fn samples_written(&self) -> u64 {
        self.samples_per_channel
    }
}

impl AudioSink for NullSink {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn write(&mut self, frame: &AudioFrame) -> Result<(), AudioError> {
        if self.finished {
            return Err(AudioError::Finished);
        }
        check_format(self.format, frame)?;
        self.samples_per_channel += frame.samples_per_channel() as u64;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), AudioError> {
        self.finished = true;
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Recorded {
    samples: Vec<i16>,
    finished: bool,
}

/// A handle on what a [`MemorySink`] recorded, readable while the sink is owned elsewhere (for
/// example by a media thread).
#[derive(Debug, Clone, Default)]
pub struct SharedSamples {
    inner: Arc<Mutex<Recorded>>,
}

impl SharedSamples {
    fn lock(&self) -> MutexGuard<'_, Recorded> {
        // A writer that panicked leaves complete frames behind; the data stays readable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A copy of all interleaved samples recorded so far.
    pub fn samples(&self) -> Vec<i16> {
        self.lock().samples.clone()
    }

    /// Interleaved samples recorded so far.
    pub fn len(&self) -> usize {
        self.lock().samples.len()
    }

    /// Whether nothing was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the sink was finished.
    pub fn is_finished(&self) -> bool {
        self.lock().finished
    }
}

/// Keeps every sample written, in memory: the sink of tests.
#[derive(Debug, Clone)]
pub struct MemorySink {
    format: AudioFormat,
    recorded: SharedSamples,
}

impl MemorySink {
    /// An empty sink accepting `format`.
    pub fn new(format: AudioFormat) -> Self {
        MemorySink {
            format,
            recorded: SharedSamples::default(),
        }
    }

    /// A handle to read the recording, also after the sink moved to another thread.
    pub fn shared(&self) -> SharedSamples {
        self.recorded.clone()
    }

    /// A copy of all interleaved samples recorded so far.
    pub fn samples(&self) -> Vec<i16> {
        self.recorded.samples()
    }
}

impl AudioSink for MemorySink {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn write(&mut self, frame: &AudioFrame) -> Result<(), AudioError> {
        check_format(self.format, frame)?;
        let mut recorded = self.recorded.lock();
        if recorded.finished {
            return Err(AudioError::Finished);
        }
        recorded.samples.extend_from_slice(frame.samples());
        Ok(())
    }

    fn finish(&mut self) -> Result<(), AudioError> {
        self.recorded.lock().finished = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sink_keeps_samples_and_refuses_other_formats() {
        let mut sink = MemorySink::new(AudioFormat::MONO_8K);
        let shared = sink.shared();
        let frame = AudioFrame::new(AudioFormat::MONO_8K, (0..160).collect()).unwrap();
        sink.write(&frame).unwrap();
        sink.write(&frame).unwrap();
        let err = sink
            .write(&AudioFrame::silent_frame(AudioFormat::MONO_16K))
            .unwrap_err();
        assert!(matches!(err, AudioError::FormatMismatch { .. }));
        let handle = std::thread::spawn(move || {
            sink.finish().unwrap();
            sink
        });
        let mut sink = handle.join().unwrap();
        assert!(shared.is_finished());
        assert_eq!(shared.len(), 320);
        let expected: Vec<i16> = (150..160).chain(0..10).collect();
        assert_eq!(&shared.samples()[150..170], &expected[..]);
        assert!(matches!(sink.write(&frame), Err(AudioError::Finished)));
        assert_eq!(sink.samples().len(), 320);
    }

    #[test]
    fn null_sink_counts() {
        let mut sink: Box<dyn AudioSink> = Box::new(NullSink::new(AudioFormat::STEREO_48K));
        for _ in 0..3 {
            sink.write(&AudioFrame::silent_frame(AudioFormat::STEREO_48K))
                .unwrap();
        }
        assert!(sink
            .write(&AudioFrame::silent_frame(AudioFormat::MONO_48K))
            .is_err());
        sink.finish().unwrap();
        sink.finish().unwrap();
        assert!(matches!(
            sink.write(&AudioFrame::silent_frame(AudioFormat::STEREO_48K)),
            Err(AudioError::Finished)
        ));
        let mut null = NullSink::new(AudioFormat::MONO_8K);
        null.write(&AudioFrame::silence(AudioFormat::MONO_8K, 80))
            .unwrap();
        assert_eq!(null.samples_written(), 80);
    }
}
