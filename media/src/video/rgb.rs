//! Decoded frames as packed RGB, for a window to show.

use super::frame::VideoFrame;

/// Writes `frame` as packed RGB into `out` (`width * height * 3` bytes), converting BT.601
/// limited range (what H.264 decoders produce).
///
/// A window converts every picture it shows (three 640x480 streams at 30 fps is 28 million
/// pixels a second), so the loop works on pairs of pixels that share their chroma, in 8.8
/// fixed point, with no per-pixel indexing, and is compiled a second time for AVX2, which the
/// compiler then vectorises (eight times faster; `benches/camera_convert.rs`, `window_rgb`).
pub fn i420_to_rgb(frame: &VideoFrame, out: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor has AVX2, checked just above.
        return unsafe { i420_to_rgb_avx2(frame, out) };
    }
    convert(frame, out)
}

/// The same loop, compiled for AVX2 where the processor has it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn i420_to_rgb_avx2(frame: &VideoFrame, out: &mut [u8]) {
    convert(frame, out)
}

#[inline(always)]
fn convert(frame: &VideoFrame, out: &mut [u8]) {
    let width = frame.width() as usize;
    let chroma_width = width.div_ceil(2);
    let (y_plane, u_plane, v_plane) = (frame.y(), frame.u(), frame.v());
    for (row, pixels) in out.chunks_exact_mut(width * 3).enumerate() {
        let luma = &y_plane[row * width..(row + 1) * width];
        let chroma = (row / 2) * chroma_width;
        let us = &u_plane[chroma..chroma + chroma_width];
        let vs = &v_plane[chroma..chroma + chroma_width];
        // Frames have even sizes: every pixel has a partner.
        let pairs = pixels.chunks_exact_mut(6).zip(luma.chunks_exact(2));
        for ((pair, y), (&u, &v)) in pairs.zip(us.iter().zip(vs)) {
            let offsets = chroma_offsets(u, v);
            let (first, second) = pair.split_at_mut(3);
            put_pixel(first, y[0], offsets);
            put_pixel(second, y[1], offsets);
        }
    }
}

/// What a chroma sample adds to red, green and blue (8.8 fixed point, rounding included).
#[inline(always)]
fn chroma_offsets(u: u8, v: u8) -> [i32; 3] {
    let (u, v) = (i32::from(u) - 128, i32::from(v) - 128);
    [128 + 409 * v, 128 - 100 * u - 208 * v, 128 + 516 * u]
}

#[inline(always)]
fn put_pixel(pixel: &mut [u8], y: u8, [r, g, b]: [i32; 3]) {
    let y = (i32::from(y) - 16) * 298;
    let clamp = |x: i32| (x >> 8).clamp(0, 255) as u8;
    pixel[0] = clamp(y + r);
    pixel[1] = clamp(y + g);
    pixel[2] = clamp(y + b);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgb_of(y: u8, u: u8, v: u8) -> [u8; 3] {
        let frame = VideoFrame::filled(4, 2, y, u, v).unwrap();
        let mut out = vec![0; 4 * 2 * 3];
        i420_to_rgb(&frame, &mut out);
        assert!(
            out.chunks(3).all(|p| p == &out[..3]),
            "a flat frame stays flat"
        );
        [out[0], out[1], out[2]]
    }

    /// The formula pixel by pixel, as the reference for the paired loop.
    fn reference(frame: &VideoFrame) -> Vec<u8> {
        let (width, height) = (frame.width() as usize, frame.height() as usize);
        let chroma_width = width.div_ceil(2);
        let mut out = Vec::with_capacity(width * height * 3);
        for row in 0..height {
            for column in 0..width {
                let c = (row / 2) * chroma_width + column / 2;
                let y = (i32::from(frame.y()[row * width + column]) - 16) * 298;
                let u = i32::from(frame.u()[c]) - 128;
                let v = i32::from(frame.v()[c]) - 128;
                let clamp = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
                out.extend([
                    clamp(y + 409 * v),
                    clamp(y - 100 * u - 208 * v),
                    clamp(y + 516 * u),
                ]);
            }
        }
        out
    }

    #[test]
    fn every_pixel_matches_the_formula() {
        for (width, height) in [(8, 6), (2, 2), (6, 10), (34, 4)] {
            let mut frame = VideoFrame::filled(width, height, 0, 0, 0).unwrap();
            // Every plane a different ramp, extremes included.
            let (y, u, v) = frame.planes_mut();
            for (i, p) in y.iter_mut().enumerate() {
                *p = (i * 37 % 256) as u8;
            }
            for (i, p) in u.iter_mut().enumerate() {
                *p = (i * 91 % 256) as u8;
            }
            for (i, p) in v.iter_mut().enumerate() {
                *p = 255 - (i * 53 % 256) as u8;
            }
            let mut out = vec![0; (width * height * 3) as usize];
            i420_to_rgb(&frame, &mut out);
            assert_eq!(out, reference(&frame), "{width}x{height}");
            // The portable loop too, where the processor would take the AVX2 one.
            let mut portable = vec![0; out.len()];
            convert(&frame, &mut portable);
            assert_eq!(portable, out, "{width}x{height}");
        }
    }

    #[test]
    fn limited_range_bt601_maps_to_the_expected_colours() {
        assert_eq!(rgb_of(16, 128, 128), [0, 0, 0]);
        assert_eq!(rgb_of(235, 128, 128), [255, 255, 255]);
        // Pure red in BT.601 limited range is Y 81, U 90, V 240.
        let [r, g, b] = rgb_of(81, 90, 240);
        assert!(r > 250 && g < 5 && b < 5, "{r} {g} {b}");
    }
}
