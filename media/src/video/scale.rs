//! Resizing I420 frames: area averaging (a box filter) when shrinking, bilinear when growing.
//!
//! Each plane is resampled separably (columns, then rows) in fixed point. Shrinking averages
//! every source pixel an output pixel covers, weighted by how much of it is covered, so
//! downscaling by 2 is the mean of 2x2 blocks and fine detail does not alias; growing
//! interpolates between the two nearest pixel centres. Chroma planes are scaled like luma, at
//! half size.

use super::error::VideoError;
use super::frame::{check_dimensions, i420_len, VideoFrame};

/// Fixed-point weight scale of one axis (weights of an output pixel sum to this).
const ONE: u32 = 1 << 14;

/// Source taps of one output pixel along one axis: the first source index and the weights.
struct Taps {
    start: usize,
    weights: Vec<u32>,
}

fn axis_taps(src: usize, dst: usize) -> Vec<Taps> {
    let ratio = src as f64 / dst as f64;
    (0..dst)
        .map(|i| {
            let mut taps = if src > dst {
                // Area: output pixel i covers [i*ratio, (i+1)*ratio) of the source.
                let (lo, hi) = (i as f64 * ratio, (i + 1) as f64 * ratio);
                let start = lo.floor() as usize;
                let end = (hi.ceil() as usize).min(src);
                let weights = (start..end)
                    .map(|j| {
                        let covered = hi.min(j as f64 + 1.0) - lo.max(j as f64);
                        (covered / ratio * f64::from(ONE)).round().max(0.0) as u32
                    })
                    .collect();
                Taps { start, weights }
            } else {
                // Bilinear between the two nearest pixel centres.
                let x = ((i as f64 + 0.5) * ratio - 0.5).clamp(0.0, (src - 1) as f64);
                let start = (x.floor() as usize).min(src - 1);
                let frac = x - start as f64;
                let right = (frac * f64::from(ONE)).round() as u32;
                if start + 1 < src && right > 0 {
                    Taps {
                        start,
                        weights: vec![ONE - right, right],
                    }
                } else {
                    Taps {
                        start,
                        weights: vec![ONE],
                    }
                }
            };
            // Make the weights sum to exactly ONE so flat areas stay flat.
            let sum: u32 = taps.weights.iter().sum();
            if let Some(largest) = taps.weights.iter_mut().max() {
                *largest = (*largest + ONE).saturating_sub(sum);
            }
            taps
        })
        .collect()
}

/// The taps of every output pixel padded with zero weights to one count `n`, flat: (`n`,
/// first source index of each output pixel, `n` weights per output pixel).
fn flat_taps(taps: &[Taps], src: usize) -> (usize, Vec<usize>, Vec<u32>) {
    let n = taps
        .iter()
        .map(|t| t.weights.len())
        .max()
        .unwrap_or(1)
        .clamp(1, src.max(1));
    let mut starts = Vec::with_capacity(taps.len());
    let mut weights = Vec::with_capacity(taps.len() * n);
    for t in taps {
        // Every tap lies inside the source, so shifting the window left keeps it there.
        let start = t.start.min(src.saturating_sub(n));
        let lead = t.start - start;
        starts.push(start);
        weights.extend(std::iter::repeat_n(0, lead));
        weights.extend_from_slice(&t.weights);
        weights.extend(std::iter::repeat_n(0, n - lead - t.weights.len()));
    }
    (n, starts, weights)
}

/// Resamples one tightly packed plane of `sw`x`sh` into `out` (`dw`x`dh`).
fn scale_plane(src: &[u8], sw: usize, sh: usize, out: &mut [u8], dw: usize, dh: usize) {
    if sw == dw && sh == dh {
        out.copy_from_slice(src);
        return;
    }
    if sw == 2 * dw && sh == 2 * dh {
        // Halving, the common case (mosaics, lower sizes at low bitrates): the rounded mean of
        // each 2x2 block, exactly what the general path computes, several times faster.
        for (y, line) in out.chunks_exact_mut(dw).enumerate() {
            let (top, bottom) = (&src[2 * y * sw..][..sw], &src[(2 * y + 1) * sw..][..sw]);
            for (x, p) in line.iter_mut().enumerate() {
                let sum = u32::from(top[2 * x])
                    + u32::from(top[2 * x + 1])
                    + u32::from(bottom[2 * x])
                    + u32::from(bottom[2 * x + 1]);
                *p = ((sum + 2) / 4) as u8;
            }
        }
        return;
    }
    let ytaps = axis_taps(sh, dh);
    let (n, starts, weights) = flat_taps(&axis_taps(sw, dw), sw);
    // Columns first, a whole row at a time (sequential memory, vectorisable), so the row pass
    // after it only sees the `dh` output rows; 8 extra bits kept: values up to 255 << 8.
    let mut columns = vec![0u16; sw * dh];
    let mut acc = vec![0u32; sw];
    for (taps, column_row) in ytaps.iter().zip(columns.chunks_exact_mut(sw)) {
        acc.fill(1 << 5);
        for (k, &w) in taps.weights.iter().enumerate() {
            let line = &src[(taps.start + k) * sw..][..sw];
            for (a, &p) in acc.iter_mut().zip(line) {
                *a += w * u32::from(p);
            }
        }
        for (c, &a) in column_row.iter_mut().zip(&acc) {
            *c = (a >> 6) as u16;
        }
    }
    // Then rows.
    for (line, row) in columns.chunks_exact(sw).zip(out.chunks_exact_mut(dw)) {
        for ((o, &start), w) in row.iter_mut().zip(&starts).zip(weights.chunks_exact(n)) {
            let sum: u32 = w
                .iter()
                .zip(&line[start..start + n])
                .map(|(&w, &p)| w * u32::from(p))
                .sum();
            *o = ((sum + (1 << 21)) >> 22).min(255) as u8;
        }
    }
}

/// A copy of `frame` resized to `width`x`height` (even, non-zero, at most 8192), keeping its
/// timestamp. The same size gives an exact copy.
pub fn scale_i420(frame: &VideoFrame, width: u32, height: u32) -> Result<VideoFrame, VideoError> {
    check_dimensions(width, height)?;
    let (sw, sh) = (frame.width() as usize, frame.height() as usize);
    let (dw, dh) = (width as usize, height as usize);
    let mut data = vec![0u8; i420_len(width, height)];
    let (y, chroma) = data.split_at_mut(dw * dh);
    let (u, v) = chroma.split_at_mut(dw * dh / 4);
    scale_plane(frame.y(), sw, sh, y, dw, dh);
    scale_plane(frame.u(), sw / 2, sh / 2, u, dw / 2, dh / 2);
    scale_plane(frame.v(), sw / 2, sh / 2, v, dw / 2, dh / 2);
    Ok(VideoFrame::from_checked_parts(
        width,
        height,
        data,
        frame.timestamp(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::{read_stamp, TestPattern, VideoFormat};
    use std::time::Duration;

    #[test]
    fn halving_averages_two_by_two_blocks() {
        let y: Vec<u8> = vec![10, 20, 30, 50, 30, 40, 70, 90, 0, 0, 0, 0, 0, 0, 0, 0];
        let frame =
            VideoFrame::from_planes(4, 4, &y, &[100; 4], &[50; 4], Duration::from_millis(7))
                .unwrap();
        let half = scale_i420(&frame, 2, 2).unwrap();
        assert_eq!(half.y(), &[25, 60, 0, 0]);
        assert_eq!(half.u(), &[100]);
        assert_eq!(half.v(), &[50]);
        assert_eq!(half.timestamp(), Duration::from_millis(7));
    }

    #[test]
    fn flat_pictures_stay_flat_at_any_size() {
        let frame = VideoFrame::filled(640, 480, 77, 99, 111).unwrap();
        for (w, h) in [(320, 240), (426, 240), (1280, 720), (98, 62), (642, 482)] {
            let scaled = scale_i420(&frame, w, h).unwrap();
            assert!(scaled.y().iter().all(|&p| p == 77), "{w}x{h}");
            assert!(scaled.u().iter().all(|&p| p == 99), "{w}x{h}");
            assert!(scaled.v().iter().all(|&p| p == 111), "{w}x{h}");
        }
    }

    #[test]
    fn every_small_size_pair_keeps_flat_pictures_flat() {
        for (sw, sh) in [(2, 2), (6, 4), (10, 30), (34, 18)] {
            let frame = VideoFrame::filled(sw, sh, 90, 40, 210).unwrap();
            for dw in (2..=36).step_by(2) {
                for dh in (2..=20).step_by(6) {
                    let scaled = scale_i420(&frame, dw, dh).unwrap();
                    assert!(
                        scaled.y().iter().all(|&p| p == 90),
                        "{sw}x{sh} -> {dw}x{dh}"
                    );
                    assert!(
                        scaled.v().iter().all(|&p| p == 210),
                        "{sw}x{sh} -> {dw}x{dh}"
                    );
                }
            }
        }
    }

    #[test]
    fn same_size_is_a_copy_and_bad_sizes_are_refused() {
        let frame = TestPattern::new(VideoFormat::new(64, 48, 30).unwrap(), 1)
            .unwrap()
            .render(3);
        assert_eq!(scale_i420(&frame, 64, 48).unwrap(), frame);
        assert!(scale_i420(&frame, 63, 48).is_err());
        assert!(scale_i420(&frame, 0, 48).is_err());
    }

    #[test]
    fn halving_fast_path_matches_the_general_path() {
        let frame = TestPattern::new(VideoFormat::new(64, 48, 30).unwrap(), 1)
            .unwrap()
            .render(5);
        let (mut fast, mut general) = (vec![0u8; 32 * 24], vec![0u8; 32 * 24]);
        scale_plane(frame.y(), 64, 48, &mut fast, 32, 24);
        // The general path, forced by scaling rows and columns in two steps of the same factor.
        let (xtaps, ytaps) = (axis_taps(64, 32), axis_taps(48, 24));
        for (y, taps_y) in ytaps.iter().enumerate() {
            for (x, taps_x) in xtaps.iter().enumerate() {
                let mut sum = 0u64;
                for (j, wy) in taps_y.weights.iter().enumerate() {
                    for (i, wx) in taps_x.weights.iter().enumerate() {
                        let p = frame.y()[(taps_y.start + j) * 64 + taps_x.start + i];
                        sum += u64::from(*wy) * u64::from(*wx) * u64::from(p);
                    }
                }
                general[y * 32 + x] = ((sum + (1 << 27)) >> 28) as u8;
            }
        }
        assert_eq!(fast, general);
    }

    #[test]
    fn growing_interpolates_between_neighbours() {
        let y = [0, 200, 0, 200];
        let frame = VideoFrame::from_planes(2, 2, &y, &[128], &[128], Duration::ZERO).unwrap();
        let grown = scale_i420(&frame, 4, 2).unwrap();
        // Centres at -0.25, 0.25, 0.75, 1.25 of the source: clamp, 1/4, 3/4, clamp.
        assert_eq!(&grown.y()[..4], &[0, 50, 150, 200]);
    }

    #[test]
    fn stamps_survive_scaling() {
        let source = TestPattern::new(VideoFormat::new(1280, 720, 30).unwrap(), 42).unwrap();
        let frame = source.render(1234);
        for (w, h) in [(640, 360), (320, 180), (426, 240), (1920, 1080)] {
            let stamp = read_stamp(&scale_i420(&frame, w, h).unwrap()).unwrap();
            assert_eq!((stamp.frame, stamp.identity), (1234, 42), "{w}x{h}");
        }
    }
}
