//! Camera pixels to I420: YUYV, NV12, RGB, BGR and greyscale here, MJPEG in [`super::mjpeg`].
//!
//! # Contract
//!
//! - The output is a [`VideoFrame`] in video-range I420 (Y 16–235, U and V 16–240, BT.601),
//!   the range the H.264 encoder and the rest of Callisto work in. YUYV and NV12 are video range
//!   already and are only rearranged; RGB, BGR, greyscale and JPEG are full range and are mapped.
//! - Chroma is subsampled by averaging: YUYV's two rows of 4:2:2 chroma give one row of 4:2:0,
//!   RGB's 2x2 blocks give one U and one V.
//! - I420 needs even sizes: an odd width or height loses its last column or row. A picture with
//!   nothing left (1 pixel wide or high) or larger than [`MAX_DIMENSION`] is refused.
//! - A buffer shorter than its size and stride call for, or a stride shorter than a row, is a
//!   [`ConvertError`], never a panic; bytes beyond the last row are ignored.

use std::time::Duration;

use super::error::ConvertError;
use super::mjpeg::mjpeg_to_i420;
use super::pixel_format::{PixelFormat, RawFrame};
use crate::video::{i420_len, VideoFrame, MAX_DIMENSION};

/// Converts one captured picture to I420, stamped with `timestamp`.
pub fn to_i420(raw: &RawFrame<'_>, timestamp: Duration) -> Result<VideoFrame, ConvertError> {
    if raw.format == PixelFormat::Mjpeg {
        return mjpeg_to_i420(raw.data, timestamp);
    }
    let (width, height) = even_size(raw.width, raw.height)?;
    let stride = checked_stride(raw)?;
    let mut frame = VideoFrame::black(width, height).map_err(|_| ConvertError::Dimensions {
        width: raw.width,
        height: raw.height,
    })?;
    debug_assert_eq!(frame.as_bytes().len(), i420_len(width, height));
    let (w, h) = (width as usize, height as usize);
    {
        let (y, u, v) = frame.planes_mut();
        let planes = Planes { y, u, v, w, h };
        match raw.format {
            PixelFormat::Yuyv => yuyv(raw.data, stride, planes),
            PixelFormat::Nv12 => nv12(raw.data, stride, raw.height as usize, planes),
            PixelFormat::Rgb24 => rgb(raw.data, stride, [0, 1, 2], planes),
            PixelFormat::Bgr24 => rgb(raw.data, stride, [2, 1, 0], planes),
            PixelFormat::Gray => gray(raw.data, stride, planes),
            PixelFormat::Mjpeg => {}
        }
    }
    frame.set_timestamp(timestamp);
    Ok(frame)
}

/// The I420 size of a `width`x`height` picture: both cropped to even.
pub(super) fn even_size(width: u32, height: u32) -> Result<(u32, u32), ConvertError> {
    let (w, h) = (width & !1, height & !1);
    if w == 0 || h == 0 || w > MAX_DIMENSION || h > MAX_DIMENSION {
        return Err(ConvertError::Dimensions { width, height });
    }
    Ok((w, h))
}

/// The row stride of `raw`, checked against its buffer.
fn checked_stride(raw: &RawFrame<'_>) -> Result<usize, ConvertError> {
    let min = raw.format.min_stride(raw.width);
    let rows = raw.format.rows(raw.height);
    let len = raw.data.len();
    let stride = match raw.stride {
        Some(stride) => stride,
        None if len > min * rows && len.is_multiple_of(rows) => len / rows,
        None => min,
    };
    if stride < min {
        return Err(ConvertError::Stride {
            format: raw.format,
            stride,
            width: raw.width,
        });
    }
    let expected = stride.saturating_mul(rows - 1).saturating_add(min);
    if len < expected {
        return Err(ConvertError::BufferSize {
            format: raw.format,
            width: raw.width,
            height: raw.height,
            expected,
            got: len,
        });
    }
    Ok(stride)
}

/// The planes of the frame being written, `w`x`h` (even).
struct Planes<'a> {
    y: &'a mut [u8],
    u: &'a mut [u8],
    v: &'a mut [u8],
    w: usize,
    h: usize,
}

/// Full-range luma (0–255) to video range (16–235).
pub(super) const FULL_TO_VIDEO_LUMA: [u8; 256] = range_table(219, 16);
/// Full-range chroma (0–255 around 128) to video range (16–240 around 128).
pub(super) const FULL_TO_VIDEO_CHROMA: [u8; 256] = chroma_table();

const fn range_table(span: u32, offset: u32) -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = ((i as u32 * span + 127) / 255 + offset) as u8;
        i += 1;
    }
    table
}

const fn chroma_table() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let centred = i as i32 - 128;
        // Rounded half away from zero, so the table is symmetric around 128.
        let scaled = if centred >= 0 {
            (centred * 224 + 127) / 255
        } else {
            -((-centred * 224 + 127) / 255)
        };
        table[i] = (scaled + 128) as u8;
        i += 1;
    }
    table
}

fn yuyv(data: &[u8], stride: usize, p: Planes<'_>) {
    let cw = p.w / 2;
    for cy in 0..p.h / 2 {
        let top = &data[2 * cy * stride..][..p.w * 2];
        let bottom = &data[(2 * cy + 1) * stride..][..p.w * 2];
        let (y_top, y_bottom) = p.y[2 * cy * p.w..][..2 * p.w].split_at_mut(p.w);
        let u = &mut p.u[cy * cw..][..cw];
        let v = &mut p.v[cy * cw..][..cw];
        let pairs = top
            .chunks_exact(4)
            .zip(bottom.chunks_exact(4))
            .zip(y_top.chunks_exact_mut(2).zip(y_bottom.chunks_exact_mut(2)))
            .zip(u.iter_mut().zip(v.iter_mut()));
        for (((t, b), (yt, yb)), (u, v)) in pairs {
            yt[0] = t[0];
            yt[1] = t[2];
            yb[0] = b[0];
            yb[1] = b[2];
            *u = (u16::from(t[1]) + u16::from(b[1])).div_ceil(2) as u8;
            *v = (u16::from(t[3]) + u16::from(b[3])).div_ceil(2) as u8;
        }
    }
}

fn nv12(data: &[u8], stride: usize, source_height: usize, p: Planes<'_>) {
    for (row, out) in p.y.chunks_exact_mut(p.w).enumerate() {
        out.copy_from_slice(&data[row * stride..][..p.w]);
    }
    let chroma = &data[source_height * stride..];
    let cw = p.w / 2;
    for cy in 0..p.h / 2 {
        let line = &chroma[cy * stride..][..p.w];
        let u = &mut p.u[cy * cw..][..cw];
        let v = &mut p.v[cy * cw..][..cw];
        for ((pair, u), v) in line.chunks_exact(2).zip(u.iter_mut()).zip(v.iter_mut()) {
            *u = pair[0];
            *v = pair[1];
        }
    }
}

/// BT.601 video-range luma of a full-range RGB pixel.
fn luma(r: i32, g: i32, b: i32) -> u8 {
    (((66 * r + 129 * g + 25 * b + 128) >> 8) + 16) as u8
}

/// `order` gives the byte offsets of R, G and B within a pixel.
fn rgb(data: &[u8], stride: usize, order: [usize; 3], p: Planes<'_>) {
    let [ri, gi, bi] = order;
    let cw = p.w / 2;
    for cy in 0..p.h / 2 {
        let top = &data[2 * cy * stride..][..p.w * 3];
        let bottom = &data[(2 * cy + 1) * stride..][..p.w * 3];
        let (y_top, y_bottom) = p.y[2 * cy * p.w..][..2 * p.w].split_at_mut(p.w);
        for cx in 0..cw {
            let (mut rs, mut gs, mut bs) = (0i32, 0i32, 0i32);
            for (line, out) in [(top, &mut *y_top), (bottom, &mut *y_bottom)] {
                for x in [2 * cx, 2 * cx + 1] {
                    let px = &line[x * 3..x * 3 + 3];
                    let (r, g, b) = (i32::from(px[ri]), i32::from(px[gi]), i32::from(px[bi]));
                    out[x] = luma(r, g, b);
                    rs += r;
                    gs += g;
                    bs += b;
                }
            }
            // The sums are four pixels' worth: two more bits of shift.
            p.u[cy * cw + cx] = (((-38 * rs - 74 * gs + 112 * bs + 512) >> 10) + 128) as u8;
            p.v[cy * cw + cx] = (((112 * rs - 94 * gs - 18 * bs + 512) >> 10) + 128) as u8;
        }
    }
}

fn gray(data: &[u8], stride: usize, p: Planes<'_>) {
    for (row, out) in p.y.chunks_exact_mut(p.w).enumerate() {
        for (o, &g) in out.iter_mut().zip(&data[row * stride..][..p.w]) {
            *o = FULL_TO_VIDEO_LUMA[usize::from(g)];
        }
    }
    // U and V stay at 128, as `VideoFrame::black` left them.
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(format: PixelFormat, width: u32, height: u32, data: &[u8]) -> RawFrame<'_> {
        RawFrame {
            format,
            width,
            height,
            stride: None,
            data,
        }
    }

    #[test]
    fn yuyv_maps_to_exact_planes() {
        // 4x2: row 0 `Y0 U Y1 V Y2 U Y3 V`, row 1 the same with other values.
        let data = [
            10, 100, 11, 200, 12, 110, 13, 210, //
            20, 102, 21, 202, 22, 111, 23, 215,
        ];
        let frame = to_i420(
            &raw(PixelFormat::Yuyv, 4, 2, &data),
            Duration::from_millis(5),
        )
        .unwrap();
        assert_eq!((frame.width(), frame.height()), (4, 2));
        assert_eq!(frame.y(), &[10, 11, 12, 13, 20, 21, 22, 23]);
        // Two rows of 4:2:2 chroma averaged (rounded up at .5).
        assert_eq!(frame.u(), &[101, 111]);
        assert_eq!(frame.v(), &[201, 213]);
        assert_eq!(frame.timestamp(), Duration::from_millis(5));
    }

    #[test]
    fn yuyv_with_row_padding_and_an_odd_size_is_cropped() {
        // 5x3 pixels: three pairs per row (12 bytes), rows padded to 16 bytes.
        let mut data = Vec::new();
        for row in 0..3u8 {
            for pair in 0..3u8 {
                let y = 10 * row + 2 * pair;
                data.extend_from_slice(&[y, 50 + row, y + 1, 150 + row]);
            }
            data.extend_from_slice(&[0xEE; 4]);
        }
        let frame = to_i420(&raw(PixelFormat::Yuyv, 5, 3, &data), Duration::ZERO).unwrap();
        assert_eq!((frame.width(), frame.height()), (4, 2));
        assert_eq!(frame.y(), &[0, 1, 2, 3, 10, 11, 12, 13]);
        assert_eq!(frame.u(), &[51, 51]);
        assert_eq!(frame.v(), &[151, 151]);
    }

    #[test]
    fn nv12_deinterleaves_chroma() {
        // 4x2 Y plane, then one chroma row `U V U V`.
        let data = [1, 2, 3, 4, 5, 6, 7, 8, 100, 200, 101, 201];
        let frame = to_i420(&raw(PixelFormat::Nv12, 4, 2, &data), Duration::ZERO).unwrap();
        assert_eq!(frame.y(), &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(frame.u(), &[100, 101]);
        assert_eq!(frame.v(), &[200, 201]);
    }

    #[test]
    fn nv12_with_an_explicit_stride() {
        // 2x2 with rows of 4 bytes: Y rows `1 2 x x`, `3 4 x x`, chroma `9 8 x x`.
        let data = [1, 2, 0, 0, 3, 4, 0, 0, 9, 8];
        let frame = to_i420(
            &RawFrame {
                stride: Some(4),
                ..raw(PixelFormat::Nv12, 2, 2, &data)
            },
            Duration::ZERO,
        )
        .unwrap();
        assert_eq!(frame.y(), &[1, 2, 3, 4]);
        assert_eq!((frame.u(), frame.v()), (&[9][..], &[8][..]));
    }

    #[test]
    fn rgb_and_bgr_follow_bt601_video_range() {
        for (rgb, expected) in [
            ([255u8, 255, 255], (235u8, 128u8, 128u8)),
            ([0, 0, 0], (16, 128, 128)),
            ([255, 0, 0], (82, 90, 240)),
            ([0, 255, 0], (144, 54, 34)),
            ([0, 0, 255], (41, 240, 110)),
        ] {
            let data: Vec<u8> = rgb.iter().copied().cycle().take(2 * 2 * 3).collect();
            let frame = to_i420(&raw(PixelFormat::Rgb24, 2, 2, &data), Duration::ZERO).unwrap();
            assert!(frame.y().iter().all(|&y| y == expected.0), "{rgb:?}");
            assert_eq!(
                (frame.u()[0], frame.v()[0]),
                (expected.1, expected.2),
                "{rgb:?}"
            );
            let bgr: Vec<u8> = data
                .chunks_exact(3)
                .flat_map(|p| [p[2], p[1], p[0]])
                .collect();
            let same = to_i420(&raw(PixelFormat::Bgr24, 2, 2, &bgr), Duration::ZERO).unwrap();
            assert_eq!(same, frame, "{rgb:?}");
        }
    }

    #[test]
    fn rgb_chroma_is_the_mean_of_a_block() {
        // Two white and two black pixels: the block's chroma stays neutral, luma per pixel.
        let data = [255, 255, 255, 0, 0, 0, 0, 0, 0, 255, 255, 255];
        let frame = to_i420(&raw(PixelFormat::Rgb24, 2, 2, &data), Duration::ZERO).unwrap();
        assert_eq!(frame.y(), &[235, 16, 16, 235]);
        assert_eq!((frame.u()[0], frame.v()[0]), (128, 128));
    }

    #[test]
    fn gray_is_mapped_to_video_range() {
        let data = [0, 255, 128, 64];
        let frame = to_i420(&raw(PixelFormat::Gray, 2, 2, &data), Duration::ZERO).unwrap();
        assert_eq!(frame.y(), &[16, 235, 126, 71]);
        assert_eq!((frame.u()[0], frame.v()[0]), (128, 128));
    }

    #[test]
    fn range_tables_keep_the_ends_and_the_neutral_point() {
        assert_eq!((FULL_TO_VIDEO_LUMA[0], FULL_TO_VIDEO_LUMA[255]), (16, 235));
        assert_eq!(FULL_TO_VIDEO_CHROMA[128], 128);
        assert_eq!(
            (FULL_TO_VIDEO_CHROMA[0], FULL_TO_VIDEO_CHROMA[255]),
            (16, 240)
        );
        assert!(FULL_TO_VIDEO_LUMA.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn short_buffers_bad_strides_and_tiny_sizes_are_errors() {
        let data = [0u8; 15];
        assert!(matches!(
            to_i420(&raw(PixelFormat::Yuyv, 4, 2, &data), Duration::ZERO),
            Err(ConvertError::BufferSize {
                expected: 16,
                got: 15,
                ..
            })
        ));
        assert!(matches!(
            to_i420(&raw(PixelFormat::Nv12, 4, 4, &[0; 23]), Duration::ZERO),
            Err(ConvertError::BufferSize { .. })
        ));
        assert!(matches!(
            to_i420(
                &RawFrame {
                    stride: Some(5),
                    ..raw(PixelFormat::Rgb24, 2, 2, &[0; 64])
                },
                Duration::ZERO
            ),
            Err(ConvertError::Stride { stride: 5, .. })
        ));
        for (w, h) in [(1, 8), (8, 1), (0, 0), (MAX_DIMENSION + 2, 2)] {
            assert!(matches!(
                to_i420(&raw(PixelFormat::Gray, w, h, &[0; 64]), Duration::ZERO),
                Err(ConvertError::Dimensions { .. })
            ));
        }
        // Trailing bytes that are not a whole number of rows are ignored.
        let frame = to_i420(&raw(PixelFormat::Gray, 2, 2, &[0; 5]), Duration::ZERO).unwrap();
        assert_eq!(frame.y(), &[16; 4]);
    }

    #[test]
    fn every_small_size_and_stride_converts_or_errs_without_panicking() {
        let data: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
        for format in [
            PixelFormat::Yuyv,
            PixelFormat::Nv12,
            PixelFormat::Rgb24,
            PixelFormat::Bgr24,
            PixelFormat::Gray,
        ] {
            for width in 0..12 {
                for height in 0..12 {
                    for len in [0, 7, 64, 200, 4096] {
                        for stride in [None, Some(0), Some(3), Some(33)] {
                            let frame = RawFrame {
                                format,
                                width,
                                height,
                                stride,
                                data: &data[..len],
                            };
                            if let Ok(out) = to_i420(&frame, Duration::ZERO) {
                                assert_eq!(out.width(), width & !1);
                                assert_eq!(out.height(), height & !1);
                            }
                        }
                    }
                }
            }
        }
    }
}
