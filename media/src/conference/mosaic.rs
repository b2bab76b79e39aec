//! The conference's composed picture (sans-IO): where each participant's picture goes, and the
//! mosaic drawn from them.
//!
//! One picture fills the frame; two sit side by side; from three on the frame is an n×n grid
//! whose top-left (n−1)×(n−1) cells hold the first picture (the active speaker) and the others
//! fill the right column downwards, then the bottom row leftwards — "1 + 5" on 3×3, "1 + 7" on
//! 4×4. Every picture keeps its aspect ratio inside its cell (black bars), and every edge is
//! even so that chroma planes line up.

use std::collections::HashMap;
use std::marker::PhantomData;

use crate::video::{read_stamp_in, scale_i420, PatternStamp, StampRegion, VideoError, VideoFrame};

/// A rectangle of the mosaic, in pixels; every field is even.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// The cells of `count` pictures in a `width`×`height` mosaic, the first (the active speaker's)
/// the largest. Pictures beyond what the grid holds at 8×8 get no cell.
pub fn layout(count: usize, width: u32, height: u32) -> Vec<Cell> {
    let even = |v: u64| (v as u32) & !1;
    let edge = |total: u32, i: u32, n: u32| even(u64::from(total) * u64::from(i) / u64::from(n));
    let cell = |col: u32, row: u32, cols: u32, rows: u32, n: u32| {
        let (x, y) = (edge(width, col, n), edge(height, row, n));
        Cell {
            x,
            y,
            width: edge(width, col + cols, n) - x,
            height: edge(height, row + rows, n) - y,
        }
    };
    match count {
        0 => Vec::new(),
        1 => vec![cell(0, 0, 1, 1, 1)],
        2 => vec![cell(0, 0, 1, 2, 2), cell(1, 0, 1, 2, 2)],
        _ => {
            // The smallest grid whose border (2n − 1 cells) holds everyone but the speaker.
            let n = (3..=8u32).find(|&n| 2 * n as usize >= count).unwrap_or(8);
            let mut cells = vec![cell(0, 0, n - 1, n - 1, n)];
            cells.extend((0..n).map(|row| cell(n - 1, row, 1, 1, n)));
            cells.extend((0..n - 1).rev().map(|col| cell(col, n - 1, 1, 1, n)));
            cells.truncate(count);
            cells
        }
    }
}

impl Cell {
    /// Where a `width`×`height` picture goes in this cell: the largest size with its aspect
    /// ratio (even, at least 2×2), centred.
    pub fn fit(&self, width: u32, height: u32) -> Cell {
        let (pw, ph) = (u64::from(width.max(1)), u64::from(height.max(1)));
        let (cw, ch) = (u64::from(self.width), u64::from(self.height));
        let (w, h) = if cw * ph <= ch * pw {
            (cw, cw * ph / pw)
        } else {
            (ch * pw / ph, ch)
        };
        let (w, h) = ((w as u32 & !1).max(2), (h as u32 & !1).max(2));
        let (w, h) = (w.min(self.width), h.min(self.height));
        Cell {
            x: self.x + (((self.width - w) / 2) & !1),
            y: self.y + (((self.height - h) / 2) & !1),
            width: w,
            height: h,
        }
    }
}

/// The test-pattern stamps a mosaic of pictures of `sizes` (in drawing order, the speaker's
/// first) shows, cell by cell; `None` where a cell's stamp does not read.
pub fn mosaic_stamps(frame: &VideoFrame, sizes: &[(u32, u32)]) -> Vec<Option<PatternStamp>> {
    layout(sizes.len(), frame.width(), frame.height())
        .into_iter()
        .zip(sizes)
        .map(|(cell, &(width, height))| {
            let place = cell.fit(width, height);
            let region = StampRegion {
                x: place.x,
                y: place.y,
                width: place.width,
            };
            read_stamp_in(frame, region)
        })
        .collect()
}

/// Pictures already scaled for a mosaic's cells, shared by the drawings of one set of pictures
/// (a conference draws one per leg, each leaving out its own picture, mostly into cells of the
/// same sizes): each picture is scaled to a size once. The pictures must outlive it (`'a`): it
/// knows them by their address.
#[derive(Default)]
pub struct ScaledPictures<'a> {
    scaled: HashMap<(usize, u32, u32), VideoFrame>,
    pictures: PhantomData<&'a VideoFrame>,
}

impl ScaledPictures<'_> {
    /// Pictures scaled so far.
    pub fn len(&self) -> usize {
        self.scaled.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scaled.is_empty()
    }
}

/// Draws mosaics of one size; the frame is reused from one to the next.
pub struct Mosaic {
    canvas: VideoFrame,
}

impl Mosaic {
    /// A mosaic of `width`×`height` (even, non-zero, at most 8192).
    pub fn new(width: u32, height: u32) -> Result<Self, VideoError> {
        Ok(Mosaic {
            canvas: VideoFrame::black(width, height)?,
        })
    }

    pub fn width(&self) -> u32 {
        self.canvas.width()
    }

    pub fn height(&self) -> u32 {
        self.canvas.height()
    }

    /// Draws `pictures` (the active speaker's first) into their [`layout`] cells on black and
    /// returns the mosaic.
    pub fn compose(&mut self, pictures: &[&VideoFrame]) -> &VideoFrame {
        self.compose_with(pictures, &mut ScaledPictures::default())
    }

    /// [`Mosaic::compose`], taking the pictures `scaled` already has at the sizes wanted and
    /// leaving there those it scales.
    pub fn compose_with<'a>(
        &mut self,
        pictures: &[&'a VideoFrame],
        scaled: &mut ScaledPictures<'a>,
    ) -> &VideoFrame {
        let (width, height) = (self.width(), self.height());
        {
            let (y, u, v) = self.canvas.planes_mut();
            y.fill(16);
            u.fill(128);
            v.fill(128);
        }
        for (picture, cell) in pictures.iter().zip(layout(pictures.len(), width, height)) {
            let place = cell.fit(picture.width(), picture.height());
            let (w, h) = (place.width, place.height);
            let picture: &VideoFrame = if (picture.width(), picture.height()) == (w, h) {
                picture
            } else {
                let key = (std::ptr::from_ref::<VideoFrame>(picture) as usize, w, h);
                match scaled.scaled.entry(key) {
                    std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                    std::collections::hash_map::Entry::Vacant(entry) => {
                        match scale_i420(picture, w, h) {
                            Ok(frame) => entry.insert(frame),
                            Err(_) => continue,
                        }
                    }
                }
            };
            blit(&mut self.canvas, picture, place.x, place.y);
        }
        &self.canvas
    }
}

/// Copies `picture` into `canvas` with its top-left corner at (`x`, `y`) (even), clipped to the
/// canvas.
fn blit(canvas: &mut VideoFrame, picture: &VideoFrame, x: u32, y: u32) {
    let (cw, ch) = (canvas.width() as usize, canvas.height() as usize);
    let (pw, ph) = (picture.width() as usize, picture.height() as usize);
    let (x, y) = (x as usize, y as usize);
    if x >= cw || y >= ch {
        return;
    }
    let (w, h) = (pw.min(cw - x), ph.min(ch - y));
    let (dy_plane, du_plane, dv_plane) = canvas.planes_mut();
    let copy = |dst: &mut [u8], dst_stride: usize, src: &[u8], src_stride: usize, scale: usize| {
        let (x, y, w, h) = (x / scale, y / scale, w / scale, h / scale);
        for row in 0..h {
            let d = (y + row) * dst_stride + x;
            let s = row * src_stride;
            dst[d..d + w].copy_from_slice(&src[s..s + w]);
        }
    };
    copy(dy_plane, cw, picture.y(), pw, 1);
    copy(du_plane, cw / 2, picture.u(), pw / 2, 2);
    copy(dv_plane, cw / 2, picture.v(), pw / 2, 2);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::{TestPattern, VideoFormat, VideoSource};

    fn pattern(width: u32, height: u32, identity: u16) -> VideoFrame {
        TestPattern::new(VideoFormat::new(width, height, 30).unwrap(), identity)
            .unwrap()
            .next_frame()
            .unwrap()
            .unwrap()
    }

    fn overlaps(a: Cell, b: Cell) -> bool {
        a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height
    }

    #[test]
    fn cells_are_even_inside_the_frame_and_apart() {
        for count in 0..=20 {
            let cells = layout(count, 640, 480);
            assert_eq!(cells.len(), count.min(16), "{count} pictures");
            for (i, a) in cells.iter().enumerate() {
                for v in [a.x, a.y, a.width, a.height] {
                    assert_eq!(v % 2, 0, "{count}: {a:?}");
                }
                assert!(a.width > 0 && a.height > 0);
                assert!(
                    a.x + a.width <= 640 && a.y + a.height <= 480,
                    "{count}: {a:?}"
                );
                for b in &cells[i + 1..] {
                    assert!(!overlaps(*a, *b), "{count}: {a:?} and {b:?}");
                }
            }
        }
    }

    #[test]
    fn the_speaker_is_largest_from_three_pictures_on() {
        for count in 3..=15 {
            let cells = layout(count, 1280, 720);
            let area = |c: &Cell| c.width * c.height;
            // Four cells' worth, less what even edges take.
            for other in &cells[1..] {
                assert!(2 * area(&cells[0]) >= 7 * area(other), "{count}: {cells:?}");
            }
        }
        assert_eq!(
            layout(1, 640, 480),
            vec![Cell {
                x: 0,
                y: 0,
                width: 640,
                height: 480
            }]
        );
        let two = layout(2, 640, 480);
        assert_eq!(
            two[0],
            Cell {
                x: 0,
                y: 0,
                width: 320,
                height: 480
            }
        );
        assert_eq!(
            two[1],
            Cell {
                x: 320,
                y: 0,
                width: 320,
                height: 480
            }
        );
    }

    #[test]
    fn a_picture_keeps_its_aspect_ratio_centred_in_its_cell() {
        let cell = Cell {
            x: 320,
            y: 0,
            width: 320,
            height: 480,
        };
        let at = |x, y, width, height| Cell {
            x,
            y,
            width,
            height,
        };
        assert_eq!(cell.fit(640, 480), at(320, 120, 320, 240));
        let wide = Cell {
            width: 640,
            height: 480,
            ..cell
        };
        assert_eq!(wide.fit(480, 640), at(460, 0, 360, 480));
        let small = Cell {
            width: 212,
            height: 160,
            ..cell
        };
        assert_eq!(small.fit(640, 480), at(320, 0, 212, 158));
    }

    #[test]
    fn every_participant_is_readable_in_the_mosaic_with_the_speaker_largest() {
        let pictures: Vec<VideoFrame> = (1..=6)
            .map(|id| {
                // Mixed sizes and aspect ratios, as peers send them.
                let (w, h) = [
                    (640, 480),
                    (320, 240),
                    (1280, 720),
                    (352, 288),
                    (640, 360),
                    (480, 640),
                ][id as usize - 1];
                pattern(w, h, id)
            })
            .collect();
        for count in 1..=pictures.len() {
            let mut mosaic = Mosaic::new(1280, 720).unwrap();
            let refs: Vec<&VideoFrame> = pictures[..count].iter().collect();
            let frame = mosaic.compose(&refs);
            let sizes: Vec<(u32, u32)> = refs.iter().map(|p| (p.width(), p.height())).collect();
            let stamps = mosaic_stamps(frame, &sizes);
            for (i, stamp) in stamps.iter().enumerate() {
                assert_eq!(
                    stamp.map(|s| s.identity),
                    Some(i as u16 + 1),
                    "{count} pictures, cell {i}"
                );
            }
            assert_eq!(stamps.len(), count);
        }
    }

    /// Four drawings of five pictures, each leaving one out (as the conference draws one per
    /// leg), sharing what was scaled: each is the very picture a drawing of its own gives, and
    /// each picture was scaled once per cell size it took.
    #[test]
    fn drawings_that_share_scaled_pictures_are_the_same_pictures() {
        let pictures: Vec<VideoFrame> = (1..=5).map(|id| pattern(640, 480, id)).collect();
        let mut shared = Mosaic::new(640, 480).unwrap();
        let mut own = Mosaic::new(640, 480).unwrap();
        let mut scaled = ScaledPictures::default();
        for left_out in 1..=4 {
            let refs: Vec<&VideoFrame> = pictures
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != left_out)
                .map(|(_, p)| p)
                .collect();
            let with = shared.compose_with(&refs, &mut scaled).clone();
            let alone = own.compose(&refs).clone();
            assert!(
                with.y() == alone.y() && with.u() == alone.u() && with.v() == alone.v(),
                "drawing without picture {left_out}"
            );
        }
        // Picture 1 is first (the speaker's cell) in every drawing and pictures 2 to 5 take the
        // small cells: five scalings for the sixteen pictures drawn.
        assert_eq!(scaled.len(), 5);
    }

    #[test]
    fn the_mosaic_is_black_where_no_picture_is() {
        let mut mosaic = Mosaic::new(640, 480).unwrap();
        let one = pattern(640, 480, 1);
        mosaic.compose(&[&one, &one, &one]);
        // The second round has one picture in a 1 + 5 grid's place: the rest is cleared.
        let frame = mosaic.compose(&[&one]).clone();
        assert_eq!(
            read_stamp_in(&frame, StampRegion::whole(&frame)).map(|s| s.identity),
            Some(1)
        );
        let frame = mosaic.compose(&[]);
        assert!(frame.y().iter().all(|&y| y == 16));
        assert!(frame.u().iter().chain(frame.v()).all(|&c| c == 128));
    }
}
