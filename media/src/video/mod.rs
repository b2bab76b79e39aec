//! Video frames, sources and sinks.
//!
//! # Contract
//!
//! - Video moves through Callisto as [`VideoFrame`]s: I420 (a full-size Y plane, then U and V at
//!   half width and half height, tightly packed), even sizes up to [`MAX_DIMENSION`], and the
//!   capture time relative to the start of the source.
//! - A [`VideoSource`] is pulled: the media thread asks for the next frame every `1 / fps`
//!   seconds and paces itself; sources never read a clock. A [`VideoSink`] is pushed frames.
//! - Everything a camera does, a file or a generator can do (DESIGN.md rule 5): [`TestPattern`]
//!   draws a moving picture stamped with a frame counter and an identity that [`read_stamp`]
//!   reads back after compression and scaling, so tests verify video by content.
//! - Bad input is an error value ([`VideoError`]), never a panic.

mod error;
mod frame;
mod sink;
mod source;
mod test_pattern;

pub use error::VideoError;
pub use frame::{check_dimensions, i420_len, VideoFormat, VideoFrame, MAX_DIMENSION};
pub use sink::{CallbackSink, MemoryVideoSink, NullVideoSink, SharedFrames, VideoSink};
pub use source::VideoSource;
pub use test_pattern::{
    draw_stamp, read_stamp, read_stamp_in, PatternStamp, StampRegion, TestPattern, STAMP_COLUMNS,
    STAMP_ROWS,
};
