//! The error types of the camera module: why a camera cannot be used, and why one captured
//! frame cannot be converted.

use super::pixel_format::PixelFormat;

/// Why a camera cannot be listed, opened or read. The messages are written for the person in
/// front of the screen; the device's own words, when it gave any, follow in `detail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CameraError {
    /// The system lists no camera at all.
    #[error("no camera found")]
    NotFound,
    /// A camera number beyond the ones the system lists.
    #[error("there is no camera number {index} (found {found})")]
    NoSuchCamera {
        /// The number asked for.
        index: u32,
        /// How many cameras the system lists.
        found: usize,
    },
    /// The device refused because another program holds it.
    #[error("the camera is in use by another program")]
    Busy,
    /// The system does not let Callisto open the device.
    #[error("Callisto is not allowed to use the camera ({detail})")]
    PermissionDenied {
        /// What the system said.
        detail: String,
    },
    /// None of the formats the camera offers is one Callisto converts.
    #[error("the camera offers no format Callisto can read")]
    NoUsableFormat,
    /// The camera opened but delivers no frames (unplugged, or its driver stopped).
    #[error("the camera stopped delivering pictures ({detail})")]
    Stopped {
        /// What the device said.
        detail: String,
    },
    /// Any other failure of the camera or its driver.
    #[error("the camera cannot be used: {detail}")]
    Device {
        /// What the device said.
        detail: String,
    },
}

/// Why one captured frame cannot be turned into an I420 [`VideoFrame`](crate::video::VideoFrame).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// A frame size with nothing left once cropped to even sizes (a width or height below 2), or
    /// beyond [`MAX_DIMENSION`](crate::video::MAX_DIMENSION).
    #[error("a {width}x{height} camera picture cannot be converted")]
    Dimensions {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// A row stride shorter than one row of pixels.
    #[error("{format} rows of {stride} bytes are too short for {width} pixels")]
    Stride {
        /// The frame's pixel format.
        format: PixelFormat,
        /// The stride given, in bytes.
        stride: usize,
        /// Width in pixels.
        width: u32,
    },
    /// A buffer shorter than the frame size and stride call for.
    #[error("{format} frame of {width}x{height} holds {got} bytes, at least {expected} expected")]
    BufferSize {
        /// The frame's pixel format.
        format: PixelFormat,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Bytes the size calls for.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// An MJPEG frame the decoder refused (truncated, corrupt, or an unsupported JPEG kind).
    #[error("MJPEG frame: {0}")]
    Jpeg(String),
}
