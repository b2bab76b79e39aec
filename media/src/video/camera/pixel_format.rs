//! The pixel formats cameras deliver and the raw frames they come in.

use std::fmt;

/// How a camera lays out the pixels of one frame. Callisto converts every one of these to I420.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// YUYV (YUY2): packed 4:2:2, `Y0 U Y1 V` for each pair of pixels, video range.
    Yuyv,
    /// NV12: a Y plane, then one plane of interleaved `U V` at half width and half height,
    /// video range.
    Nv12,
    /// Motion JPEG: every frame a JPEG picture (full-range YCbCr, JFIF).
    Mjpeg,
    /// 24-bit RGB, `R G B` for each pixel, full range.
    Rgb24,
    /// 24-bit BGR, `B G R` for each pixel, full range.
    Bgr24,
    /// 8-bit greyscale, full range.
    Gray,
}

impl PixelFormat {
    /// The fewest bytes one row of `width` pixels takes (JPEG rows have no fixed size: 0).
    pub fn min_stride(self, width: u32) -> usize {
        let width = width as usize;
        match self {
            // Whole pairs of pixels: an odd width still carries its last pair.
            PixelFormat::Yuyv => width.div_ceil(2) * 4,
            // The chroma rows hold whole U V pairs, and the Y plane uses the same stride.
            PixelFormat::Nv12 => width.div_ceil(2) * 2,
            PixelFormat::Rgb24 | PixelFormat::Bgr24 => width * 3,
            PixelFormat::Gray => width,
            PixelFormat::Mjpeg => 0,
        }
    }

    /// Rows of `min_stride` bytes a frame of `height` rows spans (NV12: the Y rows and the
    /// chroma rows after them).
    pub fn rows(self, height: u32) -> usize {
        let height = height as usize;
        match self {
            PixelFormat::Nv12 => height + height.div_ceil(2),
            PixelFormat::Mjpeg => 0,
            _ => height,
        }
    }

    /// The relative cost of turning one frame of this format into I420, cheapest first: NV12
    /// is a copy and a de-interleave, YUYV a reshuffle, RGB arithmetic, MJPEG a JPEG decode.
    /// Greyscale is cheap but colourless, so it is the last resort.
    pub fn conversion_cost(self) -> u8 {
        match self {
            PixelFormat::Nv12 => 0,
            PixelFormat::Yuyv => 1,
            PixelFormat::Rgb24 | PixelFormat::Bgr24 => 2,
            PixelFormat::Mjpeg => 3,
            PixelFormat::Gray => 4,
        }
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PixelFormat::Yuyv => "YUYV",
            PixelFormat::Nv12 => "NV12",
            PixelFormat::Mjpeg => "MJPEG",
            PixelFormat::Rgb24 => "RGB24",
            PixelFormat::Bgr24 => "BGR24",
            PixelFormat::Gray => "GRAY",
        })
    }
}

/// One captured picture as the camera delivered it, borrowed from the capture buffer.
#[derive(Debug, Clone, Copy)]
pub struct RawFrame<'a> {
    /// How the bytes are laid out.
    pub format: PixelFormat,
    /// Width in pixels, as the camera announced it (MJPEG: the JPEG's own size wins).
    pub width: u32,
    /// Height in pixels, as the camera announced it.
    pub height: u32,
    /// Bytes from the start of one row to the start of the next (NV12: of both planes, which
    /// V4L2 lays out with one stride). `None` infers it: the buffer's length divided by the
    /// rows when that divides evenly, else the tightest stride.
    pub stride: Option<usize>,
    /// The pixels.
    pub data: &'a [u8],
}
