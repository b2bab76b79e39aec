//! A call's video source, replaceable while the call runs, and a tap on what it decodes: the
//! video thread reads through a [`SwitchedVideoSource`] and writes through a
//! [`TappedVideoSink`], and whoever holds the [`VideoSwitch`] can put another source in place
//! (a call merged into a conference starts sending the conference's picture) and get the old
//! one back, and add where the decoded pictures also go (the call's tile in that picture).

use std::sync::{Arc, Mutex, MutexGuard};

use super::encoded_feed::EncodedFeed;
use super::error::VideoError;
use super::frame::{VideoFormat, VideoFrame};
use super::sink::VideoSink;
use super::source::VideoSource;

#[derive(Default)]
struct Slot {
    source: Option<Box<dyn VideoSource>>,
    /// Counts replacements, so a reader learns that its source changed.
    generation: u64,
    tap: Option<Box<dyn VideoSink>>,
}

/// The handle on a call's replaceable source and its tap. Clones share them.
#[derive(Clone, Default)]
pub struct VideoSwitch(Arc<Mutex<Slot>>);

impl std::fmt::Debug for VideoSwitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let slot = self.lock();
        f.debug_struct("VideoSwitch")
            .field("source", &slot.source.as_ref().map(|s| s.format()))
            .field("generation", &slot.generation)
            .field("tapped", &slot.tap.is_some())
            .finish()
    }
}

impl PartialEq for VideoSwitch {
    /// Two switches are equal when they are the same switch.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl VideoSwitch {
    pub fn new() -> Self {
        VideoSwitch::default()
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts `source` behind the switch and `sink` behind a tap, and returns the ends a video
    /// thread uses. A source installed before is dropped, a tap removed.
    pub fn install(
        &self,
        source: Box<dyn VideoSource>,
        sink: Box<dyn VideoSink>,
    ) -> (SwitchedVideoSource, TappedVideoSink) {
        let (old, generation) = {
            let mut slot = self.lock();
            slot.generation += 1;
            (
                (slot.source.replace(source), slot.tap.take()),
                slot.generation,
            )
        };
        drop(old);
        (
            SwitchedVideoSource {
                slot: self.clone(),
                generation,
            },
            TappedVideoSink {
                slot: self.clone(),
                next: sink,
            },
        )
    }

    /// The installed source's format, if one is installed.
    pub fn format(&self) -> Option<VideoFormat> {
        self.lock().source.as_ref().map(|s| s.format())
    }

    /// Puts `source` in place of the installed one and returns that; `tap` (when given)
    /// receives every decoded picture from now on, besides the sink installed. Without an
    /// installed source nothing changes and `source` is refused.
    pub fn replace(
        &self,
        source: Box<dyn VideoSource>,
        tap: Option<Box<dyn VideoSink>>,
    ) -> Result<Box<dyn VideoSource>, VideoError> {
        let (old, old_tap) = {
            let mut slot = self.lock();
            let Some(old) = slot.source.take() else {
                return Err(VideoError::Finished);
            };
            slot.source = Some(source);
            slot.generation += 1;
            let old_tap = match tap {
                Some(tap) => slot.tap.replace(tap),
                None => None,
            };
            (old, old_tap)
        };
        if let Some(mut old_tap) = old_tap {
            let _ = old_tap.finish();
        }
        Ok(old)
    }

    /// Removes the source and the tap (the call ended): the reader's stream ends, and what
    /// they hold (a conference leg's tile and feed) goes now rather than with the last clone
    /// of the switch.
    pub fn clear(&self) {
        let (source, tap) = {
            let mut slot = self.lock();
            slot.generation += 1;
            (slot.source.take(), slot.tap.take())
        };
        drop(source);
        if let Some(mut tap) = tap {
            let _ = tap.finish();
        }
    }
}

/// The source a video thread reads: whatever the switch holds now (the stream has ended when
/// it holds nothing).
pub struct SwitchedVideoSource {
    slot: VideoSwitch,
    /// The replacement this reader last saw.
    generation: u64,
}

impl VideoSource for SwitchedVideoSource {
    fn format(&self) -> VideoFormat {
        self.slot
            .format()
            .unwrap_or_else(|| VideoFormat::new(16, 16, 1).expect("a valid format"))
    }

    fn next_frame(&mut self) -> Result<Option<VideoFrame>, VideoError> {
        match self.slot.lock().source.as_mut() {
            Some(source) => source.next_frame(),
            None => Ok(None),
        }
    }

    fn encoded_feed(&self) -> Option<EncodedFeed> {
        self.slot.lock().source.as_ref()?.encoded_feed()
    }

    fn paused(&self) -> bool {
        self.slot.lock().source.as_ref().is_some_and(|s| s.paused())
    }

    fn replaced(&mut self) -> bool {
        let now = self.slot.lock().generation;
        std::mem::replace(&mut self.generation, now) != now
    }
}

/// The sink a video thread writes: the one installed, and the switch's tap when it has one.
pub struct TappedVideoSink {
    slot: VideoSwitch,
    next: Box<dyn VideoSink>,
}

impl VideoSink for TappedVideoSink {
    fn consume(&mut self, frame: &VideoFrame) -> Result<(), VideoError> {
        if let Some(tap) = self.slot.lock().tap.as_mut() {
            if let Err(error) = tap.consume(frame) {
                tracing::debug!(%error, "a video tap refused a picture");
            }
        }
        self.next.consume(frame)
    }

    fn finish(&mut self) -> Result<(), VideoError> {
        if let Some(tap) = self.slot.lock().tap.as_mut() {
            let _ = tap.finish();
        }
        self.next.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::{MemoryVideoSink, TestPattern};

    fn pattern(identity: u8) -> Box<dyn VideoSource> {
        let format = VideoFormat::new(64, 48, 30).unwrap();
        Box::new(TestPattern::new(format, u16::from(identity)).unwrap())
    }

    #[test]
    fn the_reader_follows_a_replacement_and_the_tap_sees_what_is_decoded() {
        let switch = VideoSwitch::new();
        let installed = MemoryVideoSink::new(0);
        let (mut source, mut sink) = switch.install(pattern(1), Box::new(installed.clone()));
        assert!(!source.replaced(), "nothing replaced yet");
        let first = source.next_frame().unwrap().unwrap();
        sink.consume(&first).unwrap();

        let tap = MemoryVideoSink::new(0);
        let mut old = switch
            .replace(pattern(2), Some(Box::new(tap.clone())))
            .unwrap();
        assert!(source.replaced(), "the reader learns of the replacement");
        assert!(!source.replaced(), "once");
        assert!(
            old.next_frame().unwrap().is_some(),
            "the old source is given back"
        );
        let second = source.next_frame().unwrap().unwrap();
        assert_ne!(first.as_bytes(), second.as_bytes(), "reads the new source");
        sink.consume(&second).unwrap();
        assert_eq!(installed.count(), 2, "the installed sink gets everything");
        assert_eq!(tap.count(), 1, "the tap what came after it");

        switch.clear();
        assert!(source.replaced());
        assert!(
            source.next_frame().unwrap().is_none(),
            "a cleared switch ends"
        );
        assert!(tap.shared().is_finished(), "its tap is finished");
        assert!(
            VideoSwitch::new().replace(pattern(3), None).is_err(),
            "nothing to replace"
        );
    }
}
