//! A call's audio ends, replaceable while the call runs: the media session reads and writes
//! through a [`SwitchedSource`] and a [`SwitchedSink`], and whoever holds the [`AudioSwitch`]
//! can put other ends in their place (a call merged into a conference starts speaking to the
//! bridge instead of the devices) and gets the old ones back.

use std::sync::{Arc, Mutex, MutexGuard};

use super::error::AudioError;
use super::frame::{AudioFormat, AudioFrame};
use super::sink::AudioSink;
use super::source::AudioSource;

/// What a call sends and where what it hears goes.
pub type AudioEnds = (Box<dyn AudioSource>, Box<dyn AudioSink>);

#[derive(Default)]
struct Slot {
    source: Option<Box<dyn AudioSource>>,
    sink: Option<Box<dyn AudioSink>>,
}

/// The handle on a call's replaceable ends. Clones share them.
#[derive(Clone, Default)]
pub struct AudioSwitch(Arc<Mutex<Slot>>);

impl std::fmt::Debug for AudioSwitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let slot = self.lock();
        f.debug_struct("AudioSwitch")
            .field("source", &slot.source.as_ref().map(|s| s.format()))
            .field("sink", &slot.sink.as_ref().map(|s| s.format()))
            .finish()
    }
}

impl PartialEq for AudioSwitch {
    /// Two switches are equal when they are the same switch.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl AudioSwitch {
    pub fn new() -> Self {
        AudioSwitch::default()
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts `source` and `sink` behind the switch and returns the ends a session uses (in
    /// their formats). Ends installed before are dropped.
    pub fn install(
        &self,
        source: Box<dyn AudioSource>,
        sink: Box<dyn AudioSink>,
    ) -> (SwitchedSource, SwitchedSink) {
        let (source_format, sink_format) = (source.format(), sink.format());
        let old = {
            let mut slot = self.lock();
            (slot.source.replace(source), slot.sink.replace(sink))
        };
        drop(old);
        (
            SwitchedSource {
                slot: self.clone(),
                format: source_format,
            },
            SwitchedSink {
                slot: self.clone(),
                format: sink_format,
            },
        )
    }

    /// The formats of the installed ends (source, sink), if any are installed.
    pub fn formats(&self) -> Option<(AudioFormat, AudioFormat)> {
        let slot = self.lock();
        Some((slot.source.as_ref()?.format(), slot.sink.as_ref()?.format()))
    }

    /// Puts `source` and `sink` in place of the installed ends and returns those. They must
    /// have the installed ends' formats (the session's); nothing changes otherwise.
    pub fn replace(
        &self,
        source: Box<dyn AudioSource>,
        sink: Box<dyn AudioSink>,
    ) -> Result<AudioEnds, AudioError> {
        let mut slot = self.lock();
        let (Some(old_source), Some(old_sink)) = (slot.source.take(), slot.sink.take()) else {
            return Err(AudioError::Finished);
        };
        let mismatch = if source.format() != old_source.format() {
            Some((old_source.format(), source.format()))
        } else if sink.format() != old_sink.format() {
            Some((old_sink.format(), sink.format()))
        } else {
            None
        };
        if let Some((expected, got)) = mismatch {
            slot.source = Some(old_source);
            slot.sink = Some(old_sink);
            return Err(AudioError::FormatMismatch { expected, got });
        }
        slot.source = Some(source);
        slot.sink = Some(sink);
        Ok((old_source, old_sink))
    }
}

/// The source a session reads: whatever the switch holds now (silence when nothing).
pub struct SwitchedSource {
    slot: AudioSwitch,
    format: AudioFormat,
}

impl AudioSource for SwitchedSource {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn read(&mut self, out: &mut [i16]) -> Result<usize, AudioError> {
        let mut slot = self.slot.lock();
        match slot.source.as_mut() {
            Some(source) => source.read(out),
            None => {
                out.fill(0);
                Ok(out.len())
            }
        }
    }
}

/// The sink a session writes: whatever the switch holds now (nowhere when nothing).
pub struct SwitchedSink {
    slot: AudioSwitch,
    format: AudioFormat,
}

impl AudioSink for SwitchedSink {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn write(&mut self, frame: &AudioFrame) -> Result<(), AudioError> {
        super::check_format(self.format, frame)?;
        match self.slot.lock().sink.as_mut() {
            Some(sink) => sink.write(frame),
            None => Ok(()),
        }
    }

    fn finish(&mut self) -> Result<(), AudioError> {
        match self.slot.lock().sink.as_mut() {
            Some(sink) => sink.finish(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{MemorySink, SilenceSource, ToneSource};

    #[test]
    fn ends_are_replaced_while_the_session_keeps_its_own() {
        let format = AudioFormat::new(8_000, 1);
        let switch = AudioSwitch::new();
        let first = MemorySink::new(format);
        let first_heard = first.shared();
        let (mut source, mut sink) = switch.install(
            Box::new(ToneSource::new(format, 440.0, 0.5)),
            Box::new(first),
        );
        let frame = source.read_frame().unwrap().unwrap();
        assert!(frame.samples().iter().any(|&s| s != 0));
        sink.write(&frame).unwrap();

        let second = MemorySink::new(format);
        let second_heard = second.shared();
        let (old_source, _old_sink) = switch
            .replace(Box::new(SilenceSource::new(format)), Box::new(second))
            .unwrap();
        assert_eq!(old_source.format(), format);
        let frame = source.read_frame().unwrap().unwrap();
        assert!(
            frame.samples().iter().all(|&s| s == 0),
            "reads the new source"
        );
        sink.write(&frame).unwrap();
        assert_eq!(first_heard.len(), 160);
        assert_eq!(second_heard.len(), 160, "writes to the new sink");

        let wrong = AudioFormat::new(48_000, 1);
        let refused = switch.replace(
            Box::new(SilenceSource::new(wrong)),
            Box::new(MemorySink::new(wrong)),
        );
        assert!(matches!(refused, Err(AudioError::FormatMismatch { .. })));
        assert_eq!(switch.formats(), Some((format, format)), "nothing changed");
    }
}
