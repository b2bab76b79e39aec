//! The video sink trait and sinks that discard, call back, or keep frames in memory.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use super::error::VideoError;
use super::frame::VideoFrame;

/// Something that consumes frames: a window, a file, a test.
pub trait VideoSink: Send {
    /// Consumes one frame. Sinks accept any frame size unless documented otherwise (a file
    /// recorder refuses a change of size with [`VideoError::SizeMismatch`]).
    fn consume(&mut self, frame: &VideoFrame) -> Result<(), VideoError>;

    /// Ends the stream: flushes and closes what the sink writes to. Finishing twice is harmless.
    fn finish(&mut self) -> Result<(), VideoError> {
        Ok(())
    }
}

impl<S: VideoSink + ?Sized> VideoSink for Box<S> {
    fn consume(&mut self, frame: &VideoFrame) -> Result<(), VideoError> {
        (**self).consume(frame)
    }

    fn finish(&mut self) -> Result<(), VideoError> {
        (**self).finish()
    }
}

/// Discards every frame, counting them.
#[derive(Debug, Clone, Default)]
pub struct NullVideoSink {
    frames: u64,
}

impl NullVideoSink {
    /// A sink that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Frames consumed so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }
}

impl VideoSink for NullVideoSink {
    fn consume(&mut self, _frame: &VideoFrame) -> Result<(), VideoError> {
        self.frames += 1;
        Ok(())
    }
}

/// Gives every frame to two sinks (a conference tile and a recording); an error of either is
/// returned after both have had the frame.
#[derive(Debug)]
pub struct TeeVideoSink<A, B> {
    first: A,
    second: B,
}

impl<A: VideoSink, B: VideoSink> TeeVideoSink<A, B> {
    pub fn new(first: A, second: B) -> Self {
        TeeVideoSink { first, second }
    }
}

impl<A: VideoSink, B: VideoSink> VideoSink for TeeVideoSink<A, B> {
    fn consume(&mut self, frame: &VideoFrame) -> Result<(), VideoError> {
        let first = self.first.consume(frame);
        let second = self.second.consume(frame);
        first.and(second)
    }

    fn finish(&mut self) -> Result<(), VideoError> {
        let first = self.first.finish();
        let second = self.second.finish();
        first.and(second)
    }
}

/// Hands every frame to a closure (for example one that stores it in the UI's latest-frame slot).
pub struct CallbackSink<F: FnMut(&VideoFrame) + Send> {
    callback: F,
}

impl<F: FnMut(&VideoFrame) + Send> CallbackSink<F> {
    /// A sink calling `callback` once per frame.
    pub fn new(callback: F) -> Self {
        CallbackSink { callback }
    }
}

impl<F: FnMut(&VideoFrame) + Send> fmt::Debug for CallbackSink<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackSink").finish_non_exhaustive()
    }
}

impl<F: FnMut(&VideoFrame) + Send> VideoSink for CallbackSink<F> {
    fn consume(&mut self, frame: &VideoFrame) -> Result<(), VideoError> {
        (self.callback)(frame);
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Kept {
    count: u64,
    frames: VecDeque<VideoFrame>,
    finished: bool,
}

/// A handle on what a [`MemoryVideoSink`] kept, readable while the sink is owned elsewhere (for
/// example by a media thread).
#[derive(Debug, Clone, Default)]
pub struct SharedFrames {
    inner: Arc<Mutex<Kept>>,
}

impl SharedFrames {
    fn lock(&self) -> MutexGuard<'_, Kept> {
        // A writer that panicked leaves whole frames behind; the data stays readable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Frames consumed so far (kept or not).
    pub fn count(&self) -> u64 {
        self.lock().count
    }

    /// Copies of the frames kept, oldest first.
    pub fn frames(&self) -> Vec<VideoFrame> {
        self.lock().frames.iter().cloned().collect()
    }

    /// A copy of the most recent frame, if one was kept.
    pub fn last(&self) -> Option<VideoFrame> {
        self.lock().frames.back().cloned()
    }

    /// Whether the sink was finished.
    pub fn is_finished(&self) -> bool {
        self.lock().finished
    }
}

/// Counts every frame and keeps the most recent ones in memory: the sink of tests.
///
/// It keeps at most `keep` frames (the newest), so a long 720p run does not fill memory; with
/// `keep` 0 it is a frame counter.
#[derive(Debug, Clone)]
pub struct MemoryVideoSink {
    keep: usize,
    kept: SharedFrames,
}

impl MemoryVideoSink {
    /// A sink keeping the newest `keep` frames.
    pub fn new(keep: usize) -> Self {
        MemoryVideoSink {
            keep,
            kept: SharedFrames::default(),
        }
    }

    /// A handle to read what was kept, also after the sink moved to another thread.
    pub fn shared(&self) -> SharedFrames {
        self.kept.clone()
    }

    /// Frames consumed so far.
    pub fn count(&self) -> u64 {
        self.kept.count()
    }

    /// Copies of the frames kept, oldest first.
    pub fn frames(&self) -> Vec<VideoFrame> {
        self.kept.frames()
    }
}

impl VideoSink for MemoryVideoSink {
    fn consume(&mut self, frame: &VideoFrame) -> Result<(), VideoError> {
        let mut kept = self.kept.lock();
        if kept.finished {
            return Err(VideoError::Finished);
        }
        kept.count += 1;
        if self.keep > 0 {
            if kept.frames.len() == self.keep {
                kept.frames.pop_front();
            }
            kept.frames.push_back(frame.clone());
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), VideoError> {
        self.kept.lock().finished = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn frame(ms: u64) -> VideoFrame {
        VideoFrame::black(4, 4)
            .unwrap()
            .with_timestamp(Duration::from_millis(ms))
    }

    #[test]
    fn memory_sink_keeps_the_newest_frames_and_counts_all() {
        let mut sink = MemoryVideoSink::new(2);
        let shared = sink.shared();
        for ms in [0, 33, 66] {
            sink.consume(&frame(ms)).unwrap();
        }
        let handle = std::thread::spawn(move || {
            sink.finish().unwrap();
            sink
        });
        let mut sink = handle.join().unwrap();
        assert_eq!(shared.count(), 3);
        let kept: Vec<_> = shared.frames().iter().map(|f| f.timestamp()).collect();
        assert_eq!(kept, [Duration::from_millis(33), Duration::from_millis(66)]);
        assert_eq!(
            shared.last().map(|f| f.timestamp()),
            Some(Duration::from_millis(66))
        );
        assert!(shared.is_finished());
        assert!(matches!(
            sink.consume(&frame(99)),
            Err(VideoError::Finished)
        ));
    }

    #[test]
    fn counter_and_callback_sinks_see_every_frame() {
        let mut null = NullVideoSink::new();
        let mut seen = Vec::new();
        {
            let mut sink = CallbackSink::new(|f: &VideoFrame| seen.push(f.timestamp()));
            for ms in [0, 33] {
                sink.consume(&frame(ms)).unwrap();
                null.consume(&frame(ms)).unwrap();
            }
        }
        assert_eq!(seen.len(), 2);
        assert_eq!(null.frames(), 2);
        let mut counter = MemoryVideoSink::new(0);
        counter.consume(&frame(0)).unwrap();
        assert_eq!(counter.count(), 1);
        assert!(counter.frames().is_empty());
    }
}
