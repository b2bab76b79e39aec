//! Decoded frames as packed RGB, for a window to show.

use super::frame::VideoFrame;

/// Writes `frame` as packed RGB into `out` (`width * height * 3` bytes), converting BT.601
/// limited range (what H.264 decoders produce).
pub fn i420_to_rgb(frame: &VideoFrame, out: &mut [u8]) {
    let width = frame.width() as usize;
    let chroma_width = width.div_ceil(2);
    let (y_plane, u_plane, v_plane) = (frame.y(), frame.u(), frame.v());
    for (row, pixels) in out.chunks_exact_mut(width * 3).enumerate() {
        let luma = &y_plane[row * width..(row + 1) * width];
        let chroma = (row / 2) * chroma_width;
        for (column, pixel) in pixels.chunks_exact_mut(3).enumerate() {
            let c = chroma + column / 2;
            let y = (i32::from(luma[column]) - 16) * 298;
            let u = i32::from(u_plane[c]) - 128;
            let v = i32::from(v_plane[c]) - 128;
            let clamp = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
            pixel[0] = clamp(y + 409 * v);
            pixel[1] = clamp(y - 100 * u - 208 * v);
            pixel[2] = clamp(y + 516 * u);
        }
    }
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

    #[test]
    fn limited_range_bt601_maps_to_the_expected_colours() {
        assert_eq!(rgb_of(16, 128, 128), [0, 0, 0]);
        assert_eq!(rgb_of(235, 128, 128), [255, 255, 255]);
        // Pure red in BT.601 limited range is Y 81, U 90, V 240.
        let [r, g, b] = rgb_of(81, 90, 240);
        assert!(r > 250 && g < 5 && b < 5, "{r} {g} {b}");
    }
}
