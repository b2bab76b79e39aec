//! The echo test's video: what a call decodes is what it sends back, a fixed delay later.
//!
//! [`echo_video`] makes a connected pair: the [`EchoVideoSink`] takes the call's decoded
//! pictures, the [`EchoVideoSource`] sends them again `delay` later, scaled to its format.
//! Sources read no clock (see the module contract), so the delay is counted in the source's
//! own frames: each picture is tagged with how many frames the source had given when it
//! arrived, and comes out `delay × fps` frames later. The media thread paces the source, so
//! that is `delay` of real time. Until a picture is due the source sends black.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::{scale_i420, VideoError, VideoFormat, VideoFrame, VideoSink, VideoSource};

#[derive(Debug)]
struct Line {
    /// Received pictures, each with the source frame count at its arrival.
    waiting: VecDeque<(u64, VideoFrame)>,
    /// Frames the source has given.
    ticks: u64,
    delay_ticks: u64,
}

impl Line {
    /// The newest picture that is due at `tick`, the older due ones dropped.
    fn due(&mut self, tick: u64) -> Option<VideoFrame> {
        let mut latest = None;
        while let Some((arrived, _)) = self.waiting.front() {
            if arrived + self.delay_ticks > tick {
                break;
            }
            latest = self.waiting.pop_front().map(|(_, frame)| frame);
        }
        latest
    }
}

/// A connected pair: pictures consumed by the sink come out of the source `delay` later, as
/// frames of `format`.
pub fn echo_video(format: VideoFormat, delay: Duration) -> (EchoVideoSource, EchoVideoSink) {
    let delay_ticks = (delay.as_secs_f64() * f64::from(format.fps)).round() as u64;
    let line = Arc::new(Mutex::new(Line {
        waiting: VecDeque::new(),
        ticks: 0,
        delay_ticks,
    }));
    (
        EchoVideoSource {
            format,
            line: Arc::clone(&line),
            current: None,
        },
        EchoVideoSink {
            line,
            // Room for pictures arriving at up to three times the source's rate.
            capacity: 3 * (delay_ticks as usize + 1),
        },
    )
}

/// The line's output: the sink's pictures, `delay` later, in the source's size.
#[derive(Debug)]
pub struct EchoVideoSource {
    format: VideoFormat,
    line: Arc<Mutex<Line>>,
    /// The picture sent last, already scaled.
    current: Option<VideoFrame>,
}

impl VideoSource for EchoVideoSource {
    fn format(&self) -> VideoFormat {
        self.format
    }

    fn next_frame(&mut self) -> Result<Option<VideoFrame>, VideoError> {
        let (tick, due) = {
            let mut line = self.line.lock().unwrap_or_else(PoisonError::into_inner);
            let tick = line.ticks;
            line.ticks += 1;
            (tick, line.due(tick))
        };
        let (width, height) = (self.format.width, self.format.height);
        if let Some(picture) = due {
            self.current = Some(if (picture.width(), picture.height()) == (width, height) {
                picture
            } else {
                scale_i420(&picture, width, height)?
            });
        }
        let mut frame = match &self.current {
            Some(picture) => picture.clone(),
            None => VideoFrame::black(width, height)?,
        };
        frame.set_timestamp(self.format.timestamp_of(tick));
        Ok(Some(frame))
    }
}

/// The line's input: a call's decoded pictures.
#[derive(Debug)]
pub struct EchoVideoSink {
    line: Arc<Mutex<Line>>,
    capacity: usize,
}

impl VideoSink for EchoVideoSink {
    fn consume(&mut self, frame: &VideoFrame) -> Result<(), VideoError> {
        let mut line = self.line.lock().unwrap_or_else(PoisonError::into_inner);
        let tick = line.ticks;
        line.waiting.push_back((tick, frame.clone()));
        while line.waiting.len() > self.capacity {
            line.waiting.pop_front();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16x16 picture whose luma is `value`.
    fn picture(value: u8) -> VideoFrame {
        VideoFrame::filled(16, 16, value, 128, 128).unwrap()
    }

    fn luma(frame: &VideoFrame) -> u8 {
        frame.luma_at(0, 0).unwrap()
    }

    #[test]
    fn pictures_come_back_after_the_delay_in_source_frames() {
        let format = VideoFormat::new(16, 16, 10).unwrap();
        let (mut source, mut sink) = echo_video(format, Duration::from_millis(300));
        let mut sent = Vec::new();
        for n in 1..=8u8 {
            sink.consume(&picture(n * 10)).unwrap();
            let frame = source.next_frame().unwrap().unwrap();
            assert_eq!(
                frame.timestamp(),
                Duration::from_millis(100 * u64::from(n - 1))
            );
            sent.push(luma(&frame));
        }
        // Three frames (300 ms at 10 fps) of black, then each picture three frames late.
        assert_eq!(sent, [16, 16, 16, 10, 20, 30, 40, 50]);
    }

    #[test]
    fn gaps_repeat_the_last_picture_and_bursts_keep_the_newest_due() {
        let format = VideoFormat::new(16, 16, 10).unwrap();
        let (mut source, mut sink) = echo_video(format, Duration::from_millis(200));
        let mut sent = Vec::new();
        for n in 1..=8u8 {
            match n {
                // Two pictures in one period, then none in the next three.
                2 => {
                    sink.consume(&picture(20)).unwrap();
                    sink.consume(&picture(21)).unwrap();
                }
                3..=5 => {}
                _ => sink.consume(&picture(n * 10)).unwrap(),
            }
            sent.push(luma(&source.next_frame().unwrap().unwrap()));
        }
        assert_eq!(sent, [16, 16, 10, 21, 21, 21, 21, 60]);
    }

    #[test]
    fn other_sizes_are_scaled_to_the_source_format() {
        let format = VideoFormat::new(32, 24, 30).unwrap();
        let (mut source, mut sink) = echo_video(format, Duration::ZERO);
        sink.consume(&picture(90)).unwrap();
        let frame = source.next_frame().unwrap().unwrap();
        assert_eq!((frame.width(), frame.height()), (32, 24));
        assert_eq!(luma(&frame), 90);
    }

    #[test]
    fn a_flood_of_pictures_is_bounded() {
        let format = VideoFormat::new(16, 16, 10).unwrap();
        let (_source, mut sink) = echo_video(format, Duration::from_millis(100));
        for n in 0..100u8 {
            sink.consume(&picture(n)).unwrap();
        }
        assert_eq!(sink.line.lock().unwrap().waiting.len(), 6);
    }
}
