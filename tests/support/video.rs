//! Video checks by content: the stamps (frame counter and sender identity) of the test
//! pattern frames a Y4M recording holds.

use std::io;
use std::path::Path;

use callisto_media::conference::mosaic_stamps;
use callisto_media::video::{
    read_stamp, PatternStamp, TestPattern, VideoFormat, VideoFrame, VideoSink, VideoSource, Y4mEnd,
    Y4mRecorder, Y4mSource,
};

/// Pictures in a cycle of [`write_pattern`]'s file: its frame counter starts again after
/// these.
pub const PATTERN_CYCLE: usize = 60;

/// Writes `seconds` of the test pattern stamped `identity`, 640x480 at 30 fps, to a Y4M file:
/// the video a peer plays from a file (baresip's `avformat` source, which plays it to its end
/// and not again) so
/// that what it sends can be told by content. The file repeats a cycle of
/// [`PATTERN_CYCLE`] pictures, so the frame counter starts again every 2 s.
pub fn write_pattern(path: &Path, identity: u16, seconds: usize) -> io::Result<()> {
    let format = VideoFormat::new(640, 480, 30).map_err(io::Error::other)?;
    let mut pattern = TestPattern::new(format, identity).map_err(io::Error::other)?;
    let mut cycle = Vec::with_capacity(PATTERN_CYCLE);
    for _ in 0..PATTERN_CYCLE {
        let frame = pattern
            .next_frame()
            .map_err(io::Error::other)?
            .ok_or_else(|| io::Error::other("the test pattern ended"))?;
        cycle.push(frame);
    }
    let mut recorder = Y4mRecorder::create(path, 30).map_err(io::Error::other)?;
    for frame in cycle.iter().cycle().take(seconds * 30) {
        recorder.consume(frame).map_err(io::Error::other)?;
    }
    recorder.finish().map_err(io::Error::other)
}

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

/// A PNG picture (a peer's snapshot of what it decoded) as a frame: its luma (BT.601), grey
/// chroma.
fn png_frame(path: &Path) -> io::Result<VideoFrame> {
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
    VideoFrame::from_planes(
        width,
        height,
        &luma,
        &chroma,
        &chroma,
        std::time::Duration::ZERO,
    )
    .map_err(io::Error::other)
}

/// The stamp of the test pattern in a PNG picture, and the picture's size.
pub fn png_stamp(path: &Path) -> io::Result<((u32, u32), Option<PatternStamp>)> {
    let frame = png_frame(path)?;
    Ok(((frame.width(), frame.height()), read_stamp(&frame)))
}

/// The identities whose stamps read in the cells of a PNG picture of a conference's mosaic of
/// `count` 4:3 pictures, cell by cell.
pub fn png_mosaic_identities(path: &Path, count: usize) -> io::Result<Vec<Option<u16>>> {
    let frame = png_frame(path)?;
    let stamps = mosaic_stamps(&frame, &vec![(4, 3); count]);
    Ok(stamps.into_iter().map(|s| s.map(|s| s.identity)).collect())
}
