//! YUV4MPEG2 (`.y4m`) files: a source that plays one and a sink that records one.
//!
//! # What is read
//!
//! A stream header `YUV4MPEG2` with `W` and `H` (required, even) and `F` (frame rate as
//! `num:den`; 30:1 when absent), then frames, each a `FRAME` line followed by the three planes.
//! The 4:2:0 colour spaces `C420jpeg`, `C420paeth`, `C420mpeg2` and `C420`, and a header without
//! `C` (which means 420jpeg), are read; their different chroma siting is ignored (Callisto's I420
//! has no siting). Other colour spaces (4:2:2, 4:4:4, mono, high bit depth) are refused with
//! [`VideoError::Y4m`]; interlacing, aspect and comment parameters are ignored. Header lines are
//! limited to 1 KiB.
//!
//! # At the end of the file
//!
//! [`Y4mEnd::Stop`] ends the stream; [`Y4mEnd::Loop`] starts again from the first frame with
//! timestamps that keep growing. A frame cut short by the end of the file is reported once as
//! [`VideoError::Y4m`] and ends the stream.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use super::error::VideoError;
use super::frame::{check_dimensions, i420_len, VideoFormat, VideoFrame};
use super::sink::VideoSink;
use super::source::VideoSource;

const MAX_LINE: usize = 1024;
const MAGIC: &str = "YUV4MPEG2";

/// What a [`Y4mSource`] does at the end of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Y4mEnd {
    /// End the stream.
    Stop,
    /// Start again from the first frame (a file without frames ends instead).
    Loop,
}

/// Plays a YUV4MPEG2 4:2:0 file (see the module docs for what is accepted).
pub struct Y4mSource<R = BufReader<File>> {
    reader: R,
    format: VideoFormat,
    /// Exact frame rate from the header.
    rate: (u32, u32),
    end: Y4mEnd,
    /// Byte offset of the first `FRAME` line.
    data_start: u64,
    next_index: u64,
    /// Frames read since the last restart; a loop over zero frames stops.
    frames_this_pass: u64,
    ended: bool,
}

impl<R> std::fmt::Debug for Y4mSource<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Y4mSource")
            .field("format", &self.format)
            .field("rate", &self.rate)
            .field("end", &self.end)
            .field("next_index", &self.next_index)
            .finish_non_exhaustive()
    }
}

fn y4m_error(what: impl Into<String>) -> VideoError {
    VideoError::Y4m(what.into())
}

/// Reads one line (without the `\n`); `Ok(None)` at a clean end of the stream.
fn read_line(reader: &mut impl Read) -> Result<Option<String>, VideoError> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match reader.read(&mut byte) {
            Ok(0) if line.is_empty() => return Ok(None),
            Ok(0) => return Err(y4m_error("truncated header line")),
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => {
                if line.len() == MAX_LINE {
                    return Err(y4m_error("header line longer than 1 KiB"));
                }
                line.push(byte[0]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| y4m_error("header line is not ASCII"))
}

/// The stream header's size and exact rate.
fn parse_header(line: &str) -> Result<(u32, u32, (u32, u32)), VideoError> {
    let mut tokens = line.split(' ').filter(|t| !t.is_empty());
    if tokens.next() != Some(MAGIC) {
        return Err(y4m_error("not a YUV4MPEG2 stream"));
    }
    let (mut width, mut height, mut rate) = (None, None, (30, 1));
    for token in tokens {
        let (tag, value) = token.split_at(1);
        let number = |v: &str| {
            v.parse::<u32>()
                .map_err(|_| y4m_error(format!("bad header parameter {token}")))
        };
        match tag {
            "W" => width = Some(number(value)?),
            "H" => height = Some(number(value)?),
            "F" => {
                let (num, den) = value
                    .split_once(':')
                    .ok_or_else(|| y4m_error(format!("bad frame rate {token}")))?;
                let (num, den) = (number(num)?, number(den)?);
                if num == 0 || den == 0 {
                    return Err(y4m_error(format!("bad frame rate {token}")));
                }
                rate = (num, den);
            }
            "C" if !matches!(value, "420" | "420jpeg" | "420paeth" | "420mpeg2") => {
                return Err(y4m_error(format!(
                    "colour space C{value} is not read; only 4:2:0 8-bit is"
                )));
            }
            _ => {}
        }
    }
    let width = width.ok_or_else(|| y4m_error("no W in the header"))?;
    let height = height.ok_or_else(|| y4m_error("no H in the header"))?;
    check_dimensions(width, height)?;
    Ok((width, height, rate))
}

impl Y4mSource<BufReader<File>> {
    /// Opens the Y4M file at `path`.
    pub fn open(path: impl AsRef<Path>, end: Y4mEnd) -> Result<Self, VideoError> {
        Self::from_reader(BufReader::new(File::open(path)?), end)
    }
}

impl<R: Read + Seek + Send> Y4mSource<R> {
    /// Reads a Y4M stream from `reader` (a file, or a `Cursor` over bytes in memory), starting
    /// at its current position.
    pub fn from_reader(mut reader: R, end: Y4mEnd) -> Result<Self, VideoError> {
        let line = read_line(&mut reader)?.ok_or_else(|| y4m_error("empty stream"))?;
        let (width, height, rate) = parse_header(&line)?;
        let data_start = reader.stream_position()?;
        let fps = ((rate.0 + rate.1 / 2) / rate.1).max(1);
        Ok(Y4mSource {
            reader,
            format: VideoFormat { width, height, fps },
            rate,
            end,
            data_start,
            next_index: 0,
            frames_this_pass: 0,
            ended: false,
        })
    }

    /// The exact frame rate from the header as (numerator, denominator).
    pub fn frame_rate(&self) -> (u32, u32) {
        self.rate
    }

    fn timestamp_of(&self, index: u64) -> Duration {
        let (num, den) = (u128::from(self.rate.0), u128::from(self.rate.1));
        let nanos = u128::from(index) * den * 1_000_000_000 / num;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    fn read_frame(&mut self) -> Result<Option<VideoFrame>, VideoError> {
        let line = match read_line(&mut self.reader)? {
            Some(line) => line,
            None if self.end == Y4mEnd::Loop && self.frames_this_pass > 0 => {
                self.reader.seek(SeekFrom::Start(self.data_start))?;
                self.frames_this_pass = 0;
                match read_line(&mut self.reader)? {
                    Some(line) => line,
                    None => return Ok(None),
                }
            }
            None => return Ok(None),
        };
        if line.split(' ').next() != Some("FRAME") {
            return Err(y4m_error("expected a FRAME line"));
        }
        let mut data = vec![0u8; i420_len(self.format.width, self.format.height)];
        self.reader.read_exact(&mut data).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                y4m_error("truncated frame")
            } else {
                e.into()
            }
        })?;
        let frame = VideoFrame::from_checked_parts(
            self.format.width,
            self.format.height,
            data,
            self.timestamp_of(self.next_index),
        );
        self.next_index += 1;
        self.frames_this_pass += 1;
        Ok(Some(frame))
    }
}

impl<R: Read + Seek + Send> VideoSource for Y4mSource<R> {
    fn format(&self) -> VideoFormat {
        self.format
    }

    fn next_frame(&mut self) -> Result<Option<VideoFrame>, VideoError> {
        if self.ended {
            return Ok(None);
        }
        let result = self.read_frame();
        if !matches!(result, Ok(Some(_))) {
            self.ended = true;
        }
        result
    }
}

/// Records frames into a YUV4MPEG2 file (`C420jpeg`, progressive, square pixels).
///
/// The header is written with the first frame, whose size every later frame must have
/// (another size is refused with [`VideoError::SizeMismatch`]). [`VideoSink::finish`] flushes;
/// a recorder dropped without finishing flushes what it can.
pub struct Y4mRecorder<W: Write + Send = BufWriter<File>> {
    writer: W,
    fps: u32,
    size: Option<(u32, u32)>,
    frames: u64,
    finished: bool,
}

impl<W: Write + Send> std::fmt::Debug for Y4mRecorder<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Y4mRecorder")
            .field("fps", &self.fps)
            .field("size", &self.size)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl Y4mRecorder<BufWriter<File>> {
    /// Creates (or truncates) the file at `path`, declaring `fps` frames per second.
    pub fn create(path: impl AsRef<Path>, fps: u32) -> Result<Self, VideoError> {
        Self::new(BufWriter::new(File::create(path)?), fps)
    }
}

impl<W: Write + Send> Y4mRecorder<W> {
    /// A recorder writing to `writer`, declaring `fps` frames per second (at least 1).
    pub fn new(writer: W, fps: u32) -> Result<Self, VideoError> {
        if fps == 0 {
            return Err(VideoError::InvalidFrameRate(fps));
        }
        Ok(Y4mRecorder {
            writer,
            fps,
            size: None,
            frames: 0,
            finished: false,
        })
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Finishes and returns the writer (for recordings in memory).
    pub fn into_inner(mut self) -> Result<W, VideoError> {
        self.finish()?;
        // `Y4mRecorder` has no Drop impl, so the writer can be moved out.
        Ok(self.writer)
    }
}

impl<W: Write + Send> VideoSink for Y4mRecorder<W> {
    fn consume(&mut self, frame: &VideoFrame) -> Result<(), VideoError> {
        if self.finished {
            return Err(VideoError::Finished);
        }
        let size = (frame.width(), frame.height());
        match self.size {
            None => {
                writeln!(
                    self.writer,
                    "{MAGIC} W{} H{} F{}:1 Ip A1:1 C420jpeg",
                    size.0, size.1, self.fps
                )?;
                self.size = Some(size);
            }
            Some((width, height)) if (width, height) != size => {
                return Err(VideoError::SizeMismatch {
                    width,
                    height,
                    got_width: size.0,
                    got_height: size.1,
                });
            }
            Some(_) => {}
        }
        self.writer.write_all(b"FRAME\n")?;
        self.writer.write_all(frame.as_bytes())?;
        self.frames += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), VideoError> {
        self.finished = true;
        self.writer.flush()?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "y4m_tests.rs"]
mod tests;
