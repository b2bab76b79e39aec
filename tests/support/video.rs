//! Video checks by content: the stamps (frame counter and sender identity) of the test
//! pattern frames a Y4M recording holds.

use std::io;
use std::path::Path;

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
