//! The error type of the video module.

/// What went wrong building, reading, writing or converting video frames.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VideoError {
    /// A frame size that is zero, odd (I420 needs even sizes) or larger than
    /// [`MAX_DIMENSION`](super::MAX_DIMENSION).
    #[error("invalid frame size {width}x{height}: both must be even, non-zero and at most 8192")]
    InvalidDimensions {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// A pixel buffer whose length does not match the frame size.
    #[error("{plane} plane holds {got} bytes, {expected} expected")]
    PlaneSize {
        /// Which plane: "Y", "U", "V" or "I420" for a packed buffer.
        plane: &'static str,
        /// Bytes the frame size calls for.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// A frame rate of zero.
    #[error("invalid frame rate {0}: it must be at least 1 frame per second")]
    InvalidFrameRate(u32),
    /// A frame whose size differs from the one the receiver was set up for.
    #[error("frame size {got_width}x{got_height} does not match the expected {width}x{height}")]
    SizeMismatch {
        /// Width the receiver works in.
        width: u32,
        /// Height the receiver works in.
        height: u32,
        /// Width of the frame it was given.
        got_width: u32,
        /// Height of the frame it was given.
        got_height: u32,
    },
    /// A YUV4MPEG2 stream that is malformed, truncated or in a format Callisto does not read.
    #[error("Y4M: {0}")]
    Y4m(String),
    /// Reading or writing a file failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The sink was already finished.
    #[error("the sink is finished")]
    Finished,
}
