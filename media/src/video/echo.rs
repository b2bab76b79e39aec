//! A video echo line: the pictures a call receives are sent back to it about a second later
//! (the echo test: a new user sees their own camera come back).
//!
//! The sink end keeps what arrives (at most twice the delay); the source end runs at its own
//! format's rate and sends black until the line holds `delay` of frames, then the received
//! frames in order, scaled to its size. Neither end blocks or reads a clock.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::error::VideoError;
use super::frame::{VideoFormat, VideoFrame};
use super::scale::scale_i420;
use super::sink::VideoSink;
use super::source::VideoSource;

#[derive(Debug, Default)]
struct Line {
    frames: VecDeque<VideoFrame>,
    playing: bool,
}

/// Makes the two ends of a video echo line sending in `format`, about `delay` apart.
pub fn video_echo_line(format: VideoFormat, delay: Duration) -> (VideoEchoSink, VideoEchoSource) {
    let line = Arc::new(Mutex::new(Line::default()));
    let delay_frames = (f64::from(format.fps) * delay.as_secs_f64()).ceil() as usize;
    (
        VideoEchoSink {
            line: Arc::clone(&line),
            limit: delay_frames.max(1) * 2,
        },
        VideoEchoSource {
            line,
            format,
            delay_frames,
            next: 0,
        },
    )
}

/// The end of a video echo line that takes what the call receives.
pub struct VideoEchoSink {
    line: Arc<Mutex<Line>>,
    limit: usize,
}

impl VideoSink for VideoEchoSink {
    fn consume(&mut self, frame: &VideoFrame) -> Result<(), VideoError> {
        let mut line = self.line.lock().unwrap_or_else(|p| p.into_inner());
        line.frames.push_back(frame.clone());
        while line.frames.len() > self.limit {
            line.frames.pop_front();
        }
        Ok(())
    }
}

/// The end of a video echo line that sends it back; endless.
pub struct VideoEchoSource {
    line: Arc<Mutex<Line>>,
    format: VideoFormat,
    delay_frames: usize,
    next: u64,
}

impl VideoSource for VideoEchoSource {
    fn format(&self) -> VideoFormat {
        self.format
    }

    fn next_frame(&mut self) -> Result<Option<VideoFrame>, VideoError> {
        let timestamp = self.format.timestamp_of(self.next);
        self.next += 1;
        let received = {
            let mut line = self.line.lock().unwrap_or_else(|p| p.into_inner());
            if !line.playing && line.frames.len() >= self.delay_frames {
                line.playing = true;
            }
            let frame = if line.playing {
                line.frames.pop_front()
            } else {
                None
            };
            if line.frames.is_empty() {
                line.playing = false;
            }
            frame
        };
        let (width, height) = (self.format.width, self.format.height);
        let frame = match received {
            Some(frame) if (frame.width(), frame.height()) == (width, height) => frame,
            Some(frame) => scale_i420(&frame, width, height)?,
            None => VideoFrame::black(width, height)?,
        };
        Ok(Some(frame.with_timestamp(timestamp)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::{read_stamp, TestPattern};

    #[test]
    fn received_pictures_come_back_after_the_delay_at_the_sources_size() {
        let sent = VideoFormat::new(320, 240, 10).unwrap();
        let (mut sink, mut source) = video_echo_line(
            VideoFormat::new(640, 480, 10).unwrap(),
            Duration::from_millis(300),
        );
        let mut pattern = TestPattern::new(sent, 9).unwrap();
        let mut stamps = Vec::new();
        for _ in 0..8 {
            let frame = pattern.next_frame().unwrap().unwrap();
            sink.consume(&frame).unwrap();
            let back = source.next_frame().unwrap().unwrap();
            assert_eq!((back.width(), back.height()), (640, 480));
            stamps.push(read_stamp(&back).map(|s| (s.identity, s.frame)));
        }
        // Three frames (300 ms at 10 fps) go in before the first comes back.
        assert_eq!(&stamps[..2], &[None, None]);
        assert_eq!(stamps[2], Some((9, 0)));
        assert_eq!(stamps[7], Some((9, 5)));
    }
}
