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
//! - [`Y4mSource`] plays and [`Y4mRecorder`] records YUV4MPEG2 files; [`scale_i420`] resizes
//!   frames (area averaging down, bilinear up) for lower sizes at low bitrates and for mosaics.
//! - [`h264`]: the H.264 encoder and decoder (OpenH264) and the RFC 6184 payload format.
//! - [`camera`]: cameras through `nokhwa` ([`camera::CameraSource`]), their pixel formats
//!   converted to I420, their mode chosen for the call, and the placeholder picture sent when
//!   there is no camera or it is busy.
//! - `stream_thread`: the video media thread both media paths run (scale → encode → packetize
//!   → RTP, RTP → NACK generator → reorder buffer → depacketize → decode, keyframe requests;
//!   bitrate and frame size from the WebRTC session's bitrate controller), with [`VideoStats`].
//! - Bad input is an error value ([`VideoError`]), never a panic.

pub mod camera;
mod echo;
pub(crate) mod encoded_feed;
mod error;
mod frame;
mod frame_slot;
pub mod h264;
mod rgb;
mod scale;
mod sink;
mod source;
pub(crate) mod stream_thread;
mod switch;
mod test_pattern;
mod y4m;

pub use echo::{echo_video, EchoVideoSink, EchoVideoSource};
pub use encoded_feed::EncodedFeed;
pub use error::VideoError;
pub use frame::{check_dimensions, i420_len, VideoFormat, VideoFrame, MAX_DIMENSION};
pub use frame_slot::{CameraSwitch, FrameSlot, PreviewSource, SlotSink, StreamSink, StreamSlots};
pub use rgb::i420_to_rgb;
pub use scale::scale_i420;
pub use sink::{
    CallbackSink, MemoryVideoSink, NullVideoSink, SharedFrames, TeeVideoSink, VideoSink,
};
pub use source::VideoSource;
pub use stream_thread::VideoStats;
pub use switch::{SwitchedVideoSource, TappedVideoSink, VideoSwitch};
pub use test_pattern::{
    draw_stamp, read_stamp, read_stamp_in, PatternStamp, StampRegion, TestPattern, STAMP_COLUMNS,
    STAMP_ROWS,
};
pub use y4m::{Y4mEnd, Y4mRecorder, Y4mSource};
