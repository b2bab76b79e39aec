//! Choosing among the modes a camera offers the one that serves a call best.
//!
//! # Contract
//!
//! [`choose_mode`] is a pure function of the offered modes and the wanted size and rate, in
//! this order of preference:
//!
//! 1. **Size**: the wanted size exactly; else the nearest larger one (both sides at least the
//!    wanted ones, the smallest area of those: scaling down keeps detail); else the largest
//!    smaller one.
//! 2. **Rate**: at least the wanted rate, the nearest such; else the highest below it.
//! 3. **Format**: the cheapest to convert ([`PixelFormat::conversion_cost`]: NV12, YUYV, RGB,
//!    then MJPEG, greyscale last), so a camera offering the same size and rate uncompressed and
//!    as MJPEG is read uncompressed. A camera whose uncompressed modes are slower (USB
//!    bandwidth) is read as MJPEG, because rate comes before format.
//!
//! Modes with a size below 2x2 or a rate of 0 are never chosen. Ties keep the camera's order.

use std::cmp::Reverse;

use super::pixel_format::PixelFormat;
use crate::video::VideoFormat;

/// One way a camera can deliver frames: pixel format, size and rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CameraMode {
    /// The pixel layout.
    pub pixel_format: PixelFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
}

impl std::fmt::Display for CameraMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}x{}@{}",
            self.pixel_format, self.width, self.height, self.fps
        )
    }
}

/// The offered mode closest to `wanted` (see the module's order of preference); `None` when
/// no mode is usable.
pub fn choose_mode(offered: &[CameraMode], wanted: VideoFormat) -> Option<CameraMode> {
    offered
        .iter()
        .filter(|m| m.width >= 2 && m.height >= 2 && m.fps > 0)
        .min_by_key(|m| preference(m, wanted))
        .copied()
}

/// A sort key: smaller is better.
fn preference(
    mode: &CameraMode,
    wanted: VideoFormat,
) -> (u8, u64, Reverse<u64>, bool, u32, Reverse<u32>, u8) {
    let area = u64::from(mode.width) * u64::from(mode.height);
    let (size_class, above, below) = if (mode.width, mode.height) == (wanted.width, wanted.height) {
        (0, 0, 0)
    } else if mode.width >= wanted.width && mode.height >= wanted.height {
        (1, area, 0)
    } else {
        (2, 0, area)
    };
    let slower = mode.fps < wanted.fps;
    let faster_by = mode.fps.saturating_sub(wanted.fps);
    (
        size_class,
        above,
        Reverse(below),
        slower,
        faster_by,
        Reverse(mode.fps),
        mode.pixel_format.conversion_cost(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use PixelFormat::*;

    fn mode(pixel_format: PixelFormat, width: u32, height: u32, fps: u32) -> CameraMode {
        CameraMode {
            pixel_format,
            width,
            height,
            fps,
        }
    }

    fn wanted(width: u32, height: u32, fps: u32) -> VideoFormat {
        VideoFormat::new(width, height, fps).unwrap()
    }

    /// What a typical USB webcam offers: YUYV up to 720p but slowly at large sizes, MJPEG at
    /// 30 fps everywhere.
    fn webcam() -> Vec<CameraMode> {
        vec![
            mode(Mjpeg, 1920, 1080, 30),
            mode(Mjpeg, 1280, 720, 30),
            mode(Mjpeg, 640, 480, 30),
            mode(Mjpeg, 320, 240, 30),
            mode(Yuyv, 1280, 720, 10),
            mode(Yuyv, 640, 480, 30),
            mode(Yuyv, 640, 480, 15),
            mode(Yuyv, 320, 240, 30),
        ]
    }

    #[test]
    fn the_exact_size_at_the_wanted_rate_in_the_cheap_format_wins() {
        assert_eq!(
            choose_mode(&webcam(), wanted(640, 480, 30)),
            Some(mode(Yuyv, 640, 480, 30))
        );
        assert_eq!(
            choose_mode(&webcam(), wanted(320, 240, 15)),
            Some(mode(Yuyv, 320, 240, 30))
        );
    }

    #[test]
    fn rate_comes_before_format() {
        // YUYV 720p only does 10 fps: MJPEG at 30 is chosen.
        assert_eq!(
            choose_mode(&webcam(), wanted(1280, 720, 30)),
            Some(mode(Mjpeg, 1280, 720, 30))
        );
        // Asking for 10 fps or less, the uncompressed mode serves.
        assert_eq!(
            choose_mode(&webcam(), wanted(1280, 720, 10)),
            Some(mode(Yuyv, 1280, 720, 10))
        );
    }

    #[test]
    fn the_nearest_larger_size_beats_smaller_ones() {
        // 800x600 is not offered: 1280x720 is the smallest that covers it.
        assert_eq!(
            choose_mode(&webcam(), wanted(800, 600, 30)),
            Some(mode(Mjpeg, 1280, 720, 30))
        );
        // 1280x1024 is covered by 1920x1080 only.
        assert_eq!(
            choose_mode(&webcam(), wanted(1280, 1024, 30)),
            Some(mode(Mjpeg, 1920, 1080, 30))
        );
    }

    #[test]
    fn without_a_larger_size_the_largest_smaller_one_serves() {
        let small = [
            mode(Yuyv, 160, 120, 30),
            mode(Yuyv, 640, 360, 30),
            mode(Yuyv, 320, 240, 30),
        ];
        assert_eq!(
            choose_mode(&small, wanted(1280, 720, 30)),
            Some(mode(Yuyv, 640, 360, 30))
        );
    }

    #[test]
    fn the_nearest_rate_at_or_above_the_wanted_one_then_the_highest_below() {
        let rates = [
            mode(Nv12, 640, 480, 60),
            mode(Nv12, 640, 480, 15),
            mode(Nv12, 640, 480, 24),
            mode(Nv12, 640, 480, 5),
        ];
        assert_eq!(
            choose_mode(&rates, wanted(640, 480, 20)).map(|m| m.fps),
            Some(24)
        );
        assert_eq!(
            choose_mode(&rates, wanted(640, 480, 30)).map(|m| m.fps),
            Some(60)
        );
        assert_eq!(
            choose_mode(&rates[1..], wanted(640, 480, 30)).map(|m| m.fps),
            Some(24)
        );
    }

    #[test]
    fn at_equal_size_and_rate_the_cheapest_format_wins() {
        let all = [
            mode(Gray, 640, 480, 30),
            mode(Mjpeg, 640, 480, 30),
            mode(Rgb24, 640, 480, 30),
            mode(Yuyv, 640, 480, 30),
            mode(Nv12, 640, 480, 30),
        ];
        let mut offered = all.to_vec();
        let mut order = Vec::new();
        while let Some(best) = choose_mode(&offered, wanted(640, 480, 30)) {
            order.push(best.pixel_format);
            offered.retain(|m| *m != best);
        }
        assert_eq!(order, vec![Nv12, Yuyv, Rgb24, Mjpeg, Gray]);
    }

    #[test]
    fn nothing_usable_is_none() {
        assert_eq!(choose_mode(&[], wanted(640, 480, 30)), None);
        let broken = [mode(Yuyv, 640, 480, 0), mode(Yuyv, 1, 480, 30)];
        assert_eq!(choose_mode(&broken, wanted(640, 480, 30)), None);
    }
}
