//! The video source trait.
//!
//! A source is pulled: the caller asks for the next frame when it is time for one (every
//! `1 / fps` seconds for a live call) and paces itself. Sources never read a clock and never block
//! waiting for real time, so tests run as fast as their reader does.

use super::encoded_feed::EncodedFeed;
use super::error::VideoError;
use super::frame::{VideoFormat, VideoFrame};

/// Something that produces I420 frames: a camera, a file, a generator.
pub trait VideoSource: Send {
    /// The size and nominal rate of the frames this source produces.
    fn format(&self) -> VideoFormat;

    /// The next frame; `Ok(None)` once the stream has ended. Errors (a corrupt file) are values;
    /// after an error the source reports the end of the stream.
    fn next_frame(&mut self) -> Result<Option<VideoFrame>, VideoError>;

    /// The pictures already encoded elsewhere and shared, when this source is such a stream
    /// (a conference's mosaic): the sender then sends those access units instead of
    /// encoding [`VideoSource::next_frame`]'s pictures itself.
    fn encoded_feed(&self) -> Option<EncodedFeed> {
        None
    }

    /// Whether nothing should be sent for now (camera off, call held): what a sender of an
    /// [`VideoSource::encoded_feed`] asks, since it reads no pictures to black out.
    fn paused(&self) -> bool {
        false
    }

    /// Whether what this source reads was replaced since the last call (a call merged into a
    /// conference sends the conference's picture from then on): its sender then asks again
    /// for [`VideoSource::format`] and [`VideoSource::encoded_feed`].
    fn replaced(&mut self) -> bool {
        false
    }
}

impl<S: VideoSource + ?Sized> VideoSource for Box<S> {
    fn format(&self) -> VideoFormat {
        (**self).format()
    }

    fn next_frame(&mut self) -> Result<Option<VideoFrame>, VideoError> {
        (**self).next_frame()
    }

    fn encoded_feed(&self) -> Option<EncodedFeed> {
        (**self).encoded_feed()
    }

    fn paused(&self) -> bool {
        (**self).paused()
    }

    fn replaced(&mut self) -> bool {
        (**self).replaced()
    }
}
