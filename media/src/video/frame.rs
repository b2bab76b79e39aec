//! I420 video frames and their format.

use std::fmt;
use std::time::Duration;

use super::error::VideoError;

/// The largest width or height Callisto handles, in pixels.
pub const MAX_DIMENSION: u32 = 8192;

/// Frame size and rate of a video stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VideoFormat {
    /// Width in pixels (even).
    pub width: u32,
    /// Height in pixels (even).
    pub height: u32,
    /// Nominal frames per second.
    pub fps: u32,
}

impl VideoFormat {
    /// A format, checked: even non-zero sizes up to [`MAX_DIMENSION`], at least 1 fps.
    pub fn new(width: u32, height: u32, fps: u32) -> Result<Self, VideoError> {
        check_dimensions(width, height)?;
        if fps == 0 {
            return Err(VideoError::InvalidFrameRate(fps));
        }
        Ok(VideoFormat { width, height, fps })
    }

    /// The nominal time between two frames.
    pub fn frame_interval(&self) -> Duration {
        Duration::from_nanos(1_000_000_000 / u64::from(self.fps.max(1)))
    }

    /// The capture time of frame number `index` (counted from 0) at the nominal rate.
    pub fn timestamp_of(&self, index: u64) -> Duration {
        let nanos = u128::from(index) * 1_000_000_000 / u128::from(self.fps.max(1));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

impl fmt::Display for VideoFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}@{}", self.width, self.height, self.fps)
    }
}

/// Checks that a frame size is even, non-zero and at most [`MAX_DIMENSION`].
pub fn check_dimensions(width: u32, height: u32) -> Result<(), VideoError> {
    let valid = |d: u32| d > 0 && d.is_multiple_of(2) && d <= MAX_DIMENSION;
    if valid(width) && valid(height) {
        Ok(())
    } else {
        Err(VideoError::InvalidDimensions { width, height })
    }
}

/// Bytes of an I420 frame of the given (valid) size: a full-size Y plane and quarter-size U and V.
pub fn i420_len(width: u32, height: u32) -> usize {
    let luma = width as usize * height as usize;
    luma + luma / 2
}

/// One picture in I420: tightly packed Y, then U, then V planes (U and V at half width and half
/// height), with the capture time relative to the start of its source.
///
/// Sizes are always even, non-zero and at most [`MAX_DIMENSION`]; the constructors check it.
#[derive(Clone, PartialEq, Eq)]
pub struct VideoFrame {
    width: u32,
    height: u32,
    timestamp: Duration,
    data: Vec<u8>,
}

impl fmt::Debug for VideoFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VideoFrame")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("timestamp", &self.timestamp)
            .finish_non_exhaustive()
    }
}

impl VideoFrame {
    /// A frame from a packed I420 buffer (Y, U, V one after the other).
    pub fn new(
        width: u32,
        height: u32,
        data: Vec<u8>,
        timestamp: Duration,
    ) -> Result<Self, VideoError> {
        check_dimensions(width, height)?;
        let expected = i420_len(width, height);
        if data.len() != expected {
            return Err(VideoError::PlaneSize {
                plane: "I420",
                expected,
                got: data.len(),
            });
        }
        Ok(VideoFrame {
            width,
            height,
            timestamp,
            data,
        })
    }

    /// A frame from parts the caller has already checked (valid size, buffer of
    /// [`i420_len`] bytes), for generators inside the module.
    pub(super) fn from_checked_parts(
        width: u32,
        height: u32,
        data: Vec<u8>,
        timestamp: Duration,
    ) -> Self {
        debug_assert!(check_dimensions(width, height).is_ok());
        debug_assert_eq!(data.len(), i420_len(width, height));
        VideoFrame {
            width,
            height,
            timestamp,
            data,
        }
    }

    /// A frame from three separate planes, each tightly packed (no row padding).
    pub fn from_planes(
        width: u32,
        height: u32,
        y: &[u8],
        u: &[u8],
        v: &[u8],
        timestamp: Duration,
    ) -> Result<Self, VideoError> {
        check_dimensions(width, height)?;
        let luma = width as usize * height as usize;
        for (plane, bytes, expected) in [("Y", y, luma), ("U", u, luma / 4), ("V", v, luma / 4)] {
            if bytes.len() != expected {
                return Err(VideoError::PlaneSize {
                    plane,
                    expected,
                    got: bytes.len(),
                });
            }
        }
        let mut data = Vec::with_capacity(luma + luma / 2);
        data.extend_from_slice(y);
        data.extend_from_slice(u);
        data.extend_from_slice(v);
        Ok(VideoFrame {
            width,
            height,
            timestamp,
            data,
        })
    }

    /// A frame from planes with row strides (as decoders and cameras deliver them): copies
    /// `width` bytes of each row of Y and `width / 2` of each row of U and V.
    #[allow(clippy::too_many_arguments)]
    pub fn from_strided_planes(
        width: u32,
        height: u32,
        (y, y_stride): (&[u8], usize),
        (u, u_stride): (&[u8], usize),
        (v, v_stride): (&[u8], usize),
        timestamp: Duration,
    ) -> Result<Self, VideoError> {
        check_dimensions(width, height)?;
        let (w, h) = (width as usize, height as usize);
        let mut data = Vec::with_capacity(i420_len(width, height));
        for (plane, bytes, stride, pw, ph) in [
            ("Y", y, y_stride, w, h),
            ("U", u, u_stride, w / 2, h / 2),
            ("V", v, v_stride, w / 2, h / 2),
        ] {
            let needed = stride.saturating_mul(ph - 1).saturating_add(pw);
            if stride < pw || bytes.len() < needed {
                return Err(VideoError::PlaneSize {
                    plane,
                    expected: needed.max(pw * ph),
                    got: bytes.len(),
                });
            }
            for row in 0..ph {
                data.extend_from_slice(&bytes[row * stride..row * stride + pw]);
            }
        }
        Ok(VideoFrame {
            width,
            height,
            timestamp,
            data,
        })
    }

    /// A black frame (Y 16, U and V 128: video-range black) at timestamp zero.
    pub fn black(width: u32, height: u32) -> Result<Self, VideoError> {
        Self::filled(width, height, 16, 128, 128)
    }

    /// A frame of one colour at timestamp zero.
    pub fn filled(width: u32, height: u32, y: u8, u: u8, v: u8) -> Result<Self, VideoError> {
        check_dimensions(width, height)?;
        let luma = width as usize * height as usize;
        let mut data = vec![y; luma + luma / 2];
        data[luma..luma + luma / 4].fill(u);
        data[luma + luma / 4..].fill(v);
        Ok(VideoFrame {
            width,
            height,
            timestamp: Duration::ZERO,
            data,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Capture time relative to the start of the source.
    pub fn timestamp(&self) -> Duration {
        self.timestamp
    }

    /// Sets the capture time.
    pub fn set_timestamp(&mut self, timestamp: Duration) {
        self.timestamp = timestamp;
    }

    /// The same frame with another capture time.
    pub fn with_timestamp(mut self, timestamp: Duration) -> Self {
        self.timestamp = timestamp;
        self
    }

    fn luma_len(&self) -> usize {
        self.width as usize * self.height as usize
    }

    /// The Y plane: `height` rows of `width` bytes.
    pub fn y(&self) -> &[u8] {
        &self.data[..self.luma_len()]
    }

    /// The U (Cb) plane: `height / 2` rows of `width / 2` bytes.
    pub fn u(&self) -> &[u8] {
        let luma = self.luma_len();
        &self.data[luma..luma + luma / 4]
    }

    /// The V (Cr) plane: `height / 2` rows of `width / 2` bytes.
    pub fn v(&self) -> &[u8] {
        let luma = self.luma_len();
        &self.data[luma + luma / 4..]
    }

    /// The three planes, writable.
    pub fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        let luma = self.luma_len();
        let (y, chroma) = self.data.split_at_mut(luma);
        let (u, v) = chroma.split_at_mut(luma / 4);
        (y, u, v)
    }

    /// The packed I420 bytes (Y, U, V).
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// The packed I420 bytes, taking the frame apart.
    pub fn into_bytes(self) -> Vec<u8> {
        self.data
    }

    /// Frame size and the given rate as a [`VideoFormat`].
    pub fn format(&self, fps: u32) -> VideoFormat {
        VideoFormat {
            width: self.width,
            height: self.height,
            fps,
        }
    }

    /// The luma value at (`x`, `y`); `None` outside the frame.
    pub fn luma_at(&self, x: u32, y: u32) -> Option<u8> {
        if x >= self.width || y >= self.height {
            return None;
        }
        self.y()
            .get(y as usize * self.width as usize + x as usize)
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_check_sizes() {
        assert!(VideoFrame::black(640, 480).is_ok());
        for (w, h) in [(0, 480), (641, 480), (640, 0), (640, 481), (8194, 2)] {
            assert!(matches!(
                VideoFrame::black(w, h),
                Err(VideoError::InvalidDimensions { .. })
            ));
        }
        let err = VideoFrame::new(4, 4, vec![0; 23], Duration::ZERO).unwrap_err();
        assert!(matches!(
            err,
            VideoError::PlaneSize {
                expected: 24,
                got: 23,
                ..
            }
        ));
        assert!(VideoFormat::new(640, 480, 0).is_err());
    }

    #[test]
    fn planes_are_packed_in_order() {
        let y: Vec<u8> = (0..16).collect();
        let frame =
            VideoFrame::from_planes(4, 4, &y, &[100; 4], &[200; 4], Duration::from_millis(40))
                .unwrap();
        assert_eq!(frame.y(), &y[..]);
        assert_eq!(frame.u(), &[100; 4]);
        assert_eq!(frame.v(), &[200; 4]);
        assert_eq!(frame.as_bytes().len(), 24);
        assert_eq!(frame.luma_at(3, 1), Some(7));
        assert_eq!(frame.luma_at(4, 0), None);
        assert_eq!(frame.timestamp(), Duration::from_millis(40));
    }

    #[test]
    fn strided_planes_drop_row_padding() {
        // 4x2 frame, Y stride 6, chroma stride 3.
        let y = [1, 2, 3, 4, 0, 0, 5, 6, 7, 8];
        let frame = VideoFrame::from_strided_planes(
            4,
            2,
            (&y, 6),
            (&[9, 9], 3),
            (&[7, 7], 3),
            Duration::ZERO,
        )
        .unwrap();
        assert_eq!(frame.y(), &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(frame.u(), &[9, 9]);
        assert!(VideoFrame::from_strided_planes(
            4,
            2,
            (&y[..9], 6),
            (&[9, 9], 3),
            (&[7, 7], 3),
            Duration::ZERO
        )
        .is_err());
    }

    #[test]
    fn black_is_video_range_black() {
        let frame = VideoFrame::black(8, 8).unwrap();
        assert!(frame.y().iter().all(|&p| p == 16));
        assert!(frame.u().iter().chain(frame.v()).all(|&p| p == 128));
    }

    #[test]
    fn timestamps_follow_the_nominal_rate() {
        let format = VideoFormat::new(640, 480, 30).unwrap();
        assert_eq!(format.timestamp_of(30), Duration::from_secs(1));
        assert_eq!(format.timestamp_of(1), Duration::from_nanos(33_333_333));
        assert_eq!(format.to_string(), "640x480@30");
    }
}
