//! The video source trait.
//!
//! A source is pulled: the caller asks for the next frame when it is time for one (every
//! `1 / fps` seconds for a live call) and paces itself. Sources never read a clock and never block
//! waiting for real time, so tests run as fast as their reader does.

use super::error::VideoError;
use super::frame::{VideoFormat, VideoFrame};

/// Something that produces I420 frames: a camera, a file, a generator.
pub trait VideoSource: Send {
    /// The size and nominal rate of the frames this source produces.
    fn format(&self) -> VideoFormat;

    /// The next frame; `Ok(None)` once the stream has ended. Errors (a corrupt file) are values;
    /// after an error the source reports the end of the stream.
    fn next_frame(&mut self) -> Result<Option<VideoFrame>, VideoError>;
}

impl<S: VideoSource + ?Sized> VideoSource for Box<S> {
    fn format(&self) -> VideoFormat {
        (**self).format()
    }

    fn next_frame(&mut self) -> Result<Option<VideoFrame>, VideoError> {
        (**self).next_frame()
    }
}
