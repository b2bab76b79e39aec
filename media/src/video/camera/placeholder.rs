//! The picture a call sends when there is no camera to show: a calm dark grey frame with a
//! "camera off" sign (a camera crossed out, drawn in blocks), at a low frame rate.
//!
//! It keeps a call's video flowing when the camera is missing, busy or stops, so the other
//! side shows a tile that says so instead of a frozen or missing picture, and the stream needs
//! no renegotiation when a camera comes back.

use crate::video::{VideoError, VideoFormat, VideoFrame, VideoSource};

/// The frame rate placeholders are sent at: the picture never changes.
pub const PLACEHOLDER_FPS: u32 = 5;

/// Luma of the background (video range: a dark grey).
pub const PLACEHOLDER_BACKGROUND: u8 = 48;
/// Luma of the sign.
pub const PLACEHOLDER_SIGN: u8 = 150;

/// The sign on a grid of blocks: `#` the sign's colour, `.` the background.
const SIGN: [&str; 12] = [
    "##..............",
    ".##.............",
    "...##...........",
    ".#..#######..##.",
    ".###.######.###.",
    ".####..########.",
    ".#####..#######.",
    ".#######.##.###.",
    ".########..####.",
    ".#########..##..",
    ".............##.",
    "...............#",
];

/// The placeholder picture at `width`x`height` (even, non-zero, at most 8192), timestamp zero.
pub fn placeholder_frame(width: u32, height: u32) -> Result<VideoFrame, VideoError> {
    let mut frame = VideoFrame::filled(width, height, PLACEHOLDER_BACKGROUND, 128, 128)?;
    let (w, h) = (width as usize, height as usize);
    let (cols, rows) = (SIGN[0].len(), SIGN.len());
    // Blocks sized so the sign spans half the width or half the height, at least one pixel.
    let block = (w / (cols * 2)).min(h / (rows * 2)).max(1);
    let (sign_w, sign_h) = (cols * block, rows * block);
    let (left, top) = (w.saturating_sub(sign_w) / 2, h.saturating_sub(sign_h) / 2);
    let (y_plane, _, _) = frame.planes_mut();
    for (r, line) in SIGN.iter().enumerate() {
        for (c, cell) in line.bytes().enumerate() {
            if cell != b'#' {
                continue;
            }
            for y in (top + r * block..top + (r + 1) * block).take_while(|&y| y < h) {
                let row = &mut y_plane[y * w..(y + 1) * w];
                for p in row
                    .iter_mut()
                    .take((left + (c + 1) * block).min(w))
                    .skip(left + c * block)
                {
                    *p = PLACEHOLDER_SIGN;
                }
            }
        }
    }
    Ok(frame)
}

/// An endless source of the placeholder picture. Timestamps are `index / fps`.
#[derive(Debug, Clone)]
pub struct PlaceholderSource {
    format: VideoFormat,
    frame: VideoFrame,
    next: u64,
}

impl PlaceholderSource {
    /// The placeholder at the given size and rate (sizes even, non-zero, at most 8192; fps at
    /// least 1; [`PLACEHOLDER_FPS`] is the usual rate).
    pub fn new(format: VideoFormat) -> Result<Self, VideoError> {
        let format = VideoFormat::new(format.width, format.height, format.fps)?;
        Ok(PlaceholderSource {
            frame: placeholder_frame(format.width, format.height)?,
            format,
            next: 0,
        })
    }
}

impl VideoSource for PlaceholderSource {
    fn format(&self) -> VideoFormat {
        self.format
    }

    fn next_frame(&mut self) -> Result<Option<VideoFrame>, VideoError> {
        let frame = self
            .frame
            .clone()
            .with_timestamp(self.format.timestamp_of(self.next));
        self.next += 1;
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_picture_is_dark_grey_with_a_centred_sign() {
        let frame = placeholder_frame(640, 480).unwrap();
        let sign = frame.y().iter().filter(|&&p| p == PLACEHOLDER_SIGN).count();
        let background = frame
            .y()
            .iter()
            .filter(|&&p| p == PLACEHOLDER_BACKGROUND)
            .count();
        assert_eq!(sign + background, 640 * 480);
        // The sign covers a visible but modest part of the picture.
        assert!(sign > 640 * 480 / 30 && sign < 640 * 480 / 4, "{sign}");
        assert!(frame.u().iter().chain(frame.v()).all(|&c| c == 128));
        // Corners are background, the middle of the camera body is sign.
        assert_eq!(frame.luma_at(0, 0), Some(PLACEHOLDER_BACKGROUND));
        assert_eq!(frame.luma_at(639, 479), Some(PLACEHOLDER_BACKGROUND));
        assert_eq!(frame.luma_at(230, 230), Some(PLACEHOLDER_SIGN));
        // Centred: as much sign left of the middle column as right of it, within a block.
        let (mut left, mut right) = (0i64, 0i64);
        for y in 0..480 {
            for x in 0..640 {
                if frame.luma_at(x, y) == Some(PLACEHOLDER_SIGN) {
                    if x < 320 {
                        left += 1;
                    } else {
                        right += 1;
                    }
                }
            }
        }
        assert!((left - right).abs() < sign as i64 / 4, "{left} {right}");
    }

    #[test]
    fn tiny_and_odd_aspect_sizes_draw_without_panicking() {
        for (w, h) in [(2, 2), (16, 12), (30, 2), (2, 30), (1920, 1080), (176, 144)] {
            let frame = placeholder_frame(w, h).unwrap();
            assert_eq!((frame.width(), frame.height()), (w, h));
        }
        assert!(placeholder_frame(3, 2).is_err());
    }

    #[test]
    fn the_source_repeats_the_picture_at_its_rate() {
        let format = VideoFormat::new(320, 240, PLACEHOLDER_FPS).unwrap();
        let mut source = PlaceholderSource::new(format).unwrap();
        assert_eq!(source.format(), format);
        let first = source.next_frame().unwrap().unwrap();
        let second = source.next_frame().unwrap().unwrap();
        assert_eq!(first.as_bytes(), second.as_bytes());
        assert_eq!(
            first.as_bytes(),
            placeholder_frame(320, 240).unwrap().as_bytes()
        );
        assert_eq!(second.timestamp(), Duration::from_millis(200));
    }
}
