//! Cameras: listing and opening them, converting what they deliver to I420, choosing their
//! mode, and the placeholder picture sent when there is none.
//!
//! # Contract
//!
//! - [`cameras`] lists the machine's cameras through `nokhwa` (V4L2 on Linux); no camera is
//!   an empty list. [`CameraSource::open`] opens one in the mode [`choose_mode`] picks for the
//!   call's size and rate and is a [`VideoSource`](crate::video::VideoSource): a capture
//!   thread converts and scales every frame, the media thread takes the latest one.
//! - Failures are [`CameraError`]s worded for a person ("no camera found", "the camera is in
//!   use by another program", "the camera offers no format Callisto can read"); the caller
//!   then sends [`PlaceholderSource`] so the call keeps a video stream.
//! - The conversions ([`to_i420`]: YUYV, NV12, MJPEG, RGB, BGR, greyscale) and the mode
//!   choice ([`choose_mode`]) are pure functions of their input, tested on synthetic frames
//!   and mode lists; bad buffers are [`ConvertError`]s, never panics.

mod camera_source;
mod convert;
mod device;
mod error;
mod mjpeg;
mod mode_selection;
mod pixel_format;
mod placeholder;

pub use camera_source::{CameraSource, MAX_READ_FAILURES, OPEN_TIMEOUT};
pub use convert::to_i420;
pub use device::{cameras, CameraInfo};
pub use error::{CameraError, ConvertError};
pub use mode_selection::{choose_mode, CameraMode};
pub use pixel_format::{PixelFormat, RawFrame};
pub use placeholder::{
    placeholder_frame, PlaceholderSource, PLACEHOLDER_BACKGROUND, PLACEHOLDER_FPS, PLACEHOLDER_SIGN,
};
