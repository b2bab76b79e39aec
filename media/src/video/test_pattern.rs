//! A synthetic moving picture that carries a machine-readable stamp: the frame counter and an
//! identity, drawn as big black and white luma blocks.
//!
//! # The stamp
//!
//! The stamp occupies the top of the picture it is drawn in: a grid of [`STAMP_COLUMNS`] ×
//! [`STAMP_ROWS`] square cells, each `width / 24` pixels wide (26 px at 640x480, 53 px at 720p),
//! one bit per cell, white (Y 235) for 1 and black (Y 16) for 0, with neutral chroma. Cells hold,
//! in reading order (left to right, top to bottom):
//!
//! | cells  | content                                                        |
//! |--------|----------------------------------------------------------------|
//! | 0–7    | sync pattern `10110010`                                        |
//! | 8–23   | identity (16 bits, most significant first)                     |
//! | 24–55  | frame counter (32 bits, most significant first)                |
//! | 56–71  | CRC-16/CCITT-FALSE of identity and counter (big-endian bytes)  |
//!
//! Because the geometry is a fraction of the picture's width, the stamp reads the same after
//! scaling: [`read_stamp`] reads a whole frame, [`read_stamp_in`] a [`StampRegion`] (the origin
//! and width of a picture placed inside a larger one, such as a mosaic tile). A bit is read as
//! the mean luma of the inner half of its cell against the mid level, so block edges blurred by
//! compression or scaling do not matter; the sync pattern and the CRC reject frames without a
//! stamp.
//!
//! # The picture
//!
//! Below the stamp: eight colour bars scrolling left by 4 pixels per frame, shaded by a vertical
//! ramp that moves down by 2 pixels per frame, and a textured square bouncing across the picture
//! — motion that encoders have to search for, not a still image.

use super::error::VideoError;
use super::frame::{VideoFormat, VideoFrame};
use super::source::VideoSource;

/// Cells per stamp row.
pub const STAMP_COLUMNS: u32 = 24;
/// Rows of cells in a stamp.
pub const STAMP_ROWS: u32 = 3;
const SYNC: [bool; 8] = [true, false, true, true, false, false, true, false];
const WHITE: u8 = 235;
const BLACK: u8 = 16;
const THRESHOLD: u32 = (WHITE as u32 + BLACK as u32) / 2;

/// What a stamp carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PatternStamp {
    /// The frame counter of the source that drew it.
    pub frame: u32,
    /// Who drew it (for example the participant number in a conference).
    pub identity: u16,
}

/// Where a stamp sits in a frame: the top-left corner and the width of the picture it was drawn
/// in. For a whole frame that is `(0, 0, frame width)`; for a mosaic tile, the tile's origin and
/// width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StampRegion {
    /// Left edge in pixels.
    pub x: u32,
    /// Top edge in pixels.
    pub y: u32,
    /// Width of the picture the stamp spans, in pixels.
    pub width: u32,
}

impl StampRegion {
    /// The region of a whole frame.
    pub fn whole(frame: &VideoFrame) -> Self {
        StampRegion {
            x: 0,
            y: 0,
            width: frame.width(),
        }
    }

    /// Height of the stamp in pixels (rounded up).
    pub fn stamp_height(&self) -> u32 {
        let height =
            (u64::from(self.width) * u64::from(STAMP_ROWS)).div_ceil(u64::from(STAMP_COLUMNS));
        u32::try_from(height).unwrap_or(u32::MAX)
    }

    /// The pixel span `[start, end)` of cell `index` along one axis starting at `origin`.
    fn span(&self, origin: u32, index: u32) -> (u32, u32) {
        let edge = |i: u32| {
            let offset = u64::from(i) * u64::from(self.width) / u64::from(STAMP_COLUMNS);
            origin.saturating_add(u32::try_from(offset).unwrap_or(u32::MAX))
        };
        (edge(index), edge(index + 1))
    }

    fn cell(&self, i: u32) -> ((u32, u32), (u32, u32)) {
        let (row, col) = (i / STAMP_COLUMNS, i % STAMP_COLUMNS);
        (self.span(self.x, col), self.span(self.y, row))
    }
}

/// CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF).
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

fn crc16_of(stamp: PatternStamp) -> u16 {
    let mut payload = [0u8; 6];
    payload[..2].copy_from_slice(&stamp.identity.to_be_bytes());
    payload[2..].copy_from_slice(&stamp.frame.to_be_bytes());
    crc16(&payload)
}

fn stamp_bits(stamp: PatternStamp) -> Vec<bool> {
    let crc = crc16_of(stamp);
    let mut bits = SYNC.to_vec();
    let mut push = |value: u32, n: u32| bits.extend((0..n).rev().map(|b| value >> b & 1 == 1));
    push(u32::from(stamp.identity), 16);
    push(stamp.frame, 32);
    push(u32::from(crc), 16);
    bits
}

/// Draws `stamp` into `frame` at `region`; the parts of cells outside the frame are clipped.
pub fn draw_stamp(frame: &mut VideoFrame, region: StampRegion, stamp: PatternStamp) {
    let (width, height) = (frame.width(), frame.height());
    let (y_plane, u_plane, v_plane) = frame.planes_mut();
    for (i, bit) in stamp_bits(stamp).into_iter().enumerate() {
        let ((x0, x1), (y0, y1)) = region.cell(i as u32);
        let (x1, y1) = (x1.min(width), y1.min(height));
        let value = if bit { WHITE } else { BLACK };
        for y in y0..y1 {
            let row = y as usize * width as usize;
            if x0 < x1 {
                y_plane[row + x0 as usize..row + x1 as usize].fill(value);
            }
        }
        let cw = width as usize / 2;
        for y in (y0 / 2)..y1.div_ceil(2).min(height / 2) {
            let (a, b) = ((x0 / 2) as usize, (x1.div_ceil(2).min(width / 2)) as usize);
            if a < b {
                u_plane[y as usize * cw + a..y as usize * cw + b].fill(128);
                v_plane[y as usize * cw + a..y as usize * cw + b].fill(128);
            }
        }
    }
}

/// Reads the stamp of a whole frame; `None` when there is none or it is damaged beyond reading.
pub fn read_stamp(frame: &VideoFrame) -> Option<PatternStamp> {
    read_stamp_in(frame, StampRegion::whole(frame))
}

/// Reads the stamp of a picture placed at `region` inside `frame` (a mosaic tile, a scaled
/// copy); `None` when there is none, it is damaged, or the region leaves the frame.
pub fn read_stamp_in(frame: &VideoFrame, region: StampRegion) -> Option<PatternStamp> {
    if region.width < STAMP_COLUMNS
        || region.x.checked_add(region.width)? > frame.width()
        || region.y.checked_add(region.stamp_height())? > frame.height()
    {
        return None;
    }
    let y_plane = frame.y();
    let stride = frame.width() as usize;
    let mut bits = Vec::with_capacity((STAMP_COLUMNS * STAMP_ROWS) as usize);
    for i in 0..STAMP_COLUMNS * STAMP_ROWS {
        let ((x0, x1), (y0, y1)) = region.cell(i);
        // The inner half of the cell, at least its centre pixel.
        let inner = |a: u32, b: u32| {
            let quarter = (b - a) / 4;
            let (lo, hi) = (a + quarter, b - quarter);
            if hi > lo {
                (lo, hi)
            } else {
                ((a + b) / 2, (a + b) / 2 + 1)
            }
        };
        let ((ix0, ix1), (iy0, iy1)) = (inner(x0, x1), inner(y0, y1));
        let (mut sum, mut n) = (0u32, 0u32);
        for y in iy0..iy1.min(frame.height()) {
            let row = &y_plane[y as usize * stride..(y as usize + 1) * stride];
            for &p in row.get(ix0 as usize..(ix1 as usize).min(stride))? {
                sum += u32::from(p);
                n += 1;
            }
        }
        if n == 0 {
            return None;
        }
        bits.push(sum / n >= THRESHOLD);
    }
    if bits[..8] != SYNC {
        return None;
    }
    let value = |range: std::ops::Range<usize>| {
        bits[range]
            .iter()
            .fold(0u32, |acc, &bit| acc << 1 | u32::from(bit))
    };
    let stamp = PatternStamp {
        identity: value(8..24) as u16,
        frame: value(24..56),
    };
    (value(56..72) as u16 == crc16_of(stamp)).then_some(stamp)
}

/// Colour bars in BT.601 video range: white, yellow, cyan, green, magenta, red, blue, black.
const BARS: [(u8, u8, u8); 8] = [
    (235, 128, 128),
    (210, 16, 146),
    (170, 166, 16),
    (145, 54, 34),
    (106, 202, 222),
    (81, 90, 240),
    (41, 240, 110),
    (16, 128, 128),
];

/// A video source drawing the moving test picture with a [`PatternStamp`] in every frame: the
/// stamp's `frame` is the frame's index (from 0, wrapping at 2³²), its `identity` the source's.
///
/// Endless unless [`TestPattern::with_frame_limit`] is set. Timestamps are `index / fps`.
#[derive(Debug, Clone)]
pub struct TestPattern {
    format: VideoFormat,
    identity: u16,
    next: u64,
    limit: Option<u64>,
}

impl TestPattern {
    /// A pattern of the given size and rate carrying `identity`; sizes must be even, non-zero and
    /// at most 8192, fps at least 1.
    pub fn new(format: VideoFormat, identity: u16) -> Result<Self, VideoError> {
        let format = VideoFormat::new(format.width, format.height, format.fps)?;
        Ok(TestPattern {
            format,
            identity,
            next: 0,
            limit: None,
        })
    }

    /// Ends the stream after `frames` frames.
    pub fn with_frame_limit(mut self, frames: u64) -> Self {
        self.limit = Some(frames);
        self
    }

    /// The identity drawn into every frame.
    pub fn identity(&self) -> u16 {
        self.identity
    }

    /// Index of the frame [`VideoSource::next_frame`] returns next.
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// Draws frame number `index` (independent of the source's position).
    pub fn render(&self, index: u64) -> VideoFrame {
        let VideoFormat { width, height, .. } = self.format;
        let (w, h) = (width as usize, height as usize);
        let mut data = vec![0u8; w * h * 3 / 2];
        let (y_plane, chroma) = data.split_at_mut(w * h);
        let (u_plane, v_plane) = chroma.split_at_mut(w * h / 4);
        let offset = (index % (w as u64)) as usize * 4;
        let bars: Vec<(u8, u8, u8)> = (0..w).map(|x| BARS[((x + offset) % w) * 8 / w]).collect();
        // The bouncing square: side a quarter of the height, moving 3 px/frame each way.
        let side = (h / 4).max(2);
        let bounce = |range: usize, speed: u64| {
            let span = range.saturating_sub(side).max(1) as u64;
            let p = (index * speed) % (2 * span);
            (if p < span { p } else { 2 * span - p }) as usize
        };
        let (sx, sy) = (bounce(w, 3), bounce(h, 2));
        for y in 0..h {
            let shade = 160 + ((y as u64 + 2 * index) % h as u64 * 96 / h as u64) as u32;
            let row = &mut y_plane[y * w..(y + 1) * w];
            for (x, p) in row.iter_mut().enumerate() {
                let base = u32::from(bars[x].0) - 16;
                *p = (16 + base * shade / 256) as u8;
            }
            if (sy..sy + side).contains(&y) {
                for (x, p) in row.iter_mut().enumerate().skip(sx).take(side) {
                    *p = if ((x - sx) / 4 + (y - sy) / 4) % 2 == 0 {
                        200
                    } else {
                        60
                    };
                }
            }
        }
        let cw = w / 2;
        for cy in 0..h / 2 {
            for cx in 0..cw {
                let (_, u, v) = bars[cx * 2];
                u_plane[cy * cw + cx] = u;
                v_plane[cy * cw + cx] = v;
            }
        }
        let mut frame =
            VideoFrame::from_checked_parts(width, height, data, self.format.timestamp_of(index));
        draw_stamp(
            &mut frame,
            StampRegion { x: 0, y: 0, width },
            PatternStamp {
                frame: index as u32,
                identity: self.identity,
            },
        );
        frame
    }
}

impl VideoSource for TestPattern {
    fn format(&self) -> VideoFormat {
        self.format
    }

    fn next_frame(&mut self) -> Result<Option<VideoFrame>, VideoError> {
        if self.limit.is_some_and(|limit| self.next >= limit) {
            return Ok(None);
        }
        let frame = self.render(self.next);
        self.next += 1;
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(width: u32, height: u32, identity: u16) -> TestPattern {
        TestPattern::new(VideoFormat::new(width, height, 30).unwrap(), identity).unwrap()
    }

    #[test]
    fn every_frame_reads_back_its_counter_and_identity() {
        for (w, h) in [(640, 480), (1280, 720), (176, 144), (96, 64)] {
            let mut source = pattern(w, h, 0xBEEF).with_frame_limit(40);
            let mut n = 0;
            while let Some(frame) = source.next_frame().unwrap() {
                assert_eq!(
                    read_stamp(&frame),
                    Some(PatternStamp {
                        frame: n,
                        identity: 0xBEEF
                    }),
                    "{w}x{h} frame {n}"
                );
                n += 1;
            }
            assert_eq!(n, 40);
        }
    }

    #[test]
    fn large_counters_and_identities_round_trip() {
        let source = pattern(320, 240, 0xFFFF);
        for index in [0xFFFF_FFFF_u64, 0x8000_0001, 0x1_0000_0005] {
            let stamp = read_stamp(&source.render(index)).unwrap();
            assert_eq!(stamp.frame, index as u32);
            assert_eq!(stamp.identity, 0xFFFF);
        }
    }

    #[test]
    fn frames_without_a_stamp_read_as_none() {
        assert_eq!(read_stamp(&VideoFrame::black(640, 480).unwrap()), None);
        assert_eq!(
            read_stamp(&VideoFrame::filled(640, 480, 235, 128, 128).unwrap()),
            None
        );
        // One flipped data bit breaks the CRC.
        let mut frame = pattern(640, 480, 7).render(12);
        let region = StampRegion::whole(&frame);
        let ((x0, x1), (y0, y1)) = region.cell(30);
        let (y_plane, _, _) = frame.planes_mut();
        for y in y0..y1 {
            for x in x0..x1 {
                let p = &mut y_plane[(y * 640 + x) as usize];
                *p = if *p > 128 { BLACK } else { WHITE };
            }
        }
        assert_eq!(read_stamp(&frame), None);
        // A region that leaves the frame reads nothing.
        let frame = pattern(64, 64, 1).render(0);
        let outside = StampRegion {
            x: 10,
            y: 0,
            width: 64,
        };
        assert_eq!(read_stamp_in(&frame, outside), None);
    }

    #[test]
    fn stamps_read_inside_a_larger_frame() {
        let mut canvas = VideoFrame::black(1280, 720).unwrap();
        let regions = [
            (
                StampRegion {
                    x: 0,
                    y: 0,
                    width: 640,
                },
                1,
            ),
            (
                StampRegion {
                    x: 640,
                    y: 360,
                    width: 640,
                },
                2,
            ),
            (
                StampRegion {
                    x: 700,
                    y: 10,
                    width: 200,
                },
                3,
            ),
        ];
        for (region, identity) in regions {
            draw_stamp(
                &mut canvas,
                region,
                PatternStamp {
                    frame: 99,
                    identity,
                },
            );
        }
        for (region, identity) in regions {
            assert_eq!(
                read_stamp_in(&canvas, region),
                Some(PatternStamp {
                    frame: 99,
                    identity
                })
            );
        }
    }

    #[test]
    fn the_picture_moves() {
        let source = pattern(320, 240, 0);
        let (a, b) = (source.render(10), source.render(11));
        let below = 320 * 60;
        let differing = a.y()[below..]
            .iter()
            .zip(&b.y()[below..])
            .filter(|(p, q)| p != q)
            .count();
        assert!(
            differing > a.y().len() / 10,
            "only {differing} pixels moved"
        );
        assert_eq!(b.timestamp(), std::time::Duration::from_nanos(366_666_666));
    }
}
