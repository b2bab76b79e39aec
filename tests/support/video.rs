//! Video checks by content: the stamps (frame counter and sender identity) of the test
//! pattern frames a Y4M recording holds.

use std::io;
use std::path::Path;

use callisto_media::conference::mosaic_stamps;
use callisto_media::video::{read_stamp, PatternStamp, VideoSource, Y4mEnd, Y4mSource};

/// The stamp of every frame of a Y4M recording, `None` for a frame whose stamp cannot be read.
pub fn stamps(path: &Path) -> io::Result<Vec<Option<PatternStamp>>> {
    let mut source = Y4mSource::open(path, Y4mEnd::Stop).map_err(io::Error::other)?;
    let mut stamps = Vec::new();
    while let Some(frame) = source.next_frame().map_err(io::Error::other)? {
        stamps.push(read_stamp(&frame));
    }
    Ok(stamps)
}

/// For every frame of a recording of a conference's mosaic of `count` 4:3 pictures, the
/// identities whose stamps read in the mosaic's cells, cell by cell (the speaker's first).
pub fn mosaic_identities(path: &Path, count: usize) -> io::Result<Vec<Vec<Option<u16>>>> {
    let mut source = Y4mSource::open(path, Y4mEnd::Stop).map_err(io::Error::other)?;
    let mut frames = Vec::new();
    while let Some(frame) = source.next_frame().map_err(io::Error::other)? {
        let stamps = mosaic_stamps(&frame, &vec![(4, 3); count]);
        frames.push(stamps.into_iter().map(|s| s.map(|s| s.identity)).collect());
    }
    Ok(frames)
}

/// What a recording of the test pattern shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StampRun {
    /// Frames in the recording.
    pub frames: usize,
    /// Frames whose stamp was read.
    pub stamped: usize,
    /// The identities seen.
    pub identities: Vec<u16>,
    /// Places where a frame counter did not follow its predecessor by one.
    pub gaps: usize,
}

/// Reads a recording of the test pattern.
pub fn stamp_run(path: &Path) -> io::Result<StampRun> {
    let stamps = stamps(path)?;
    let read: Vec<PatternStamp> = stamps.iter().flatten().copied().collect();
    let mut identities: Vec<u16> = read.iter().map(|s| s.identity).collect();
    identities.sort_unstable();
    identities.dedup();
    let gaps = read
        .windows(2)
        .filter(|pair| pair[1].frame != pair[0].frame.wrapping_add(1))
        .count();
    Ok(StampRun {
        frames: stamps.len(),
        stamped: read.len(),
        identities,
        gaps,
    })
}

/// What a recording of a picture without stamps (a peer's own test source) shows.
#[derive(Debug, Clone, PartialEq)]
pub struct PictureRun {
    /// Frames in the recording.
    pub frames: usize,
    /// Their size.
    pub size: Option<(u32, u32)>,
    /// Frames with a picture in them: luma not flat (standard deviation above 8 levels).
    pub textured: usize,
    /// Frames whose luma differs from their predecessor's (moving content).
    pub changing: usize,
    /// Frames of vertical stripes: every luma row within 4 levels (mean absolute difference)
    /// of the middle row, as baresip's `fakevideo` draws them.
    pub vertical_stripes: usize,
}

/// Reads a recording of any picture: how many frames, how many not blank, how many moving,
/// how many of vertical stripes.
pub fn picture_run(path: &Path) -> io::Result<PictureRun> {
    let mut source = Y4mSource::open(path, Y4mEnd::Stop).map_err(io::Error::other)?;
    let mut run = PictureRun {
        frames: 0,
        size: None,
        textured: 0,
        changing: 0,
        vertical_stripes: 0,
    };
    let mut previous: Option<Vec<u8>> = None;
    while let Some(frame) = source.next_frame().map_err(io::Error::other)? {
        run.frames += 1;
        run.size = Some((frame.width(), frame.height()));
        let y = frame.y();
        let n = y.len().max(1) as f64;
        let mean = y.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let variance = y
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        if variance.sqrt() > 8.0 {
            run.textured += 1;
        }
        let width = frame.width() as usize;
        let middle = &y[(frame.height() as usize / 2) * width..][..width];
        let striped = y.chunks_exact(width).all(|row| {
            let diff: u64 = row
                .iter()
                .zip(middle)
                .map(|(a, b)| u64::from(a.abs_diff(*b)))
                .sum();
            diff <= 4 * width as u64
        });
        if striped {
            run.vertical_stripes += 1;
        }
        if previous.as_deref().is_some_and(|p| p != y) {
            run.changing += 1;
        }
        previous = Some(y.to_vec());
    }
    Ok(run)
}

/// The stamp of the test pattern in a PNG picture (a peer's snapshot of what it decoded), read
/// from its luma (BT.601), and the picture's size.
pub fn png_stamp(path: &Path) -> io::Result<((u32, u32), Option<PatternStamp>)> {
    let decoder = png::Decoder::new(std::fs::File::open(path)?);
    let mut reader = decoder.read_info().map_err(io::Error::other)?;
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).map_err(io::Error::other)?;
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => return Err(io::Error::other(format!("PNG colour type {other:?}"))),
    };
    if info.bit_depth != png::BitDepth::Eight {
        return Err(io::Error::other(format!("PNG depth {:?}", info.bit_depth)));
    }
    let (width, height) = (info.width, info.height);
    let luma: Vec<u8> = pixels[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|p| {
            let (r, g, b) = (u32::from(p[0]), u32::from(p[1]), u32::from(p[2]));
            (((66 * r + 129 * g + 25 * b + 128) >> 8) + 16).min(255) as u8
        })
        .collect();
    let chroma = vec![128u8; (width as usize / 2) * (height as usize / 2)];
    let frame = callisto_media::video::VideoFrame::from_planes(
        width,
        height,
        &luma,
        &chroma,
        &chroma,
        std::time::Duration::ZERO,
    )
    .map_err(io::Error::other)?;
    Ok(((width, height), read_stamp(&frame)))
}
