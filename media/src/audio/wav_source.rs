//! A WAV file as an audio source: 16-bit integer PCM of any rate and 1 to 8 channels.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use hound::{SampleFormat, WavReader};

use super::error::AudioError;
use super::frame::AudioFormat;
use super::rate_stream::{RateStream, STREAM_RATE};
use super::source::{whole_frames_len, AudioSource};

/// What a [`WavSource`] does when it reaches the end of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndOfFile {
    /// End the stream.
    Stop,
    /// Start again from the first sample, seamlessly (an empty file ends instead).
    Loop,
    /// Continue with endless silence.
    Silence,
}

/// Plays a 16-bit integer PCM WAV file, read through `hound`.
///
/// A file whose rate 20 ms frames can divide (a multiple of 50 Hz: 8, 16, 22.05, 44.1, 48 kHz…)
/// is delivered as it is. Any other rate (11 025 Hz, 7 350 Hz…) is converted to 48 kHz as it is
/// read (`rate_stream.rs`), and [`format`](AudioSource::format) says 48 kHz.
///
/// Other encodings (8/24/32-bit, float) are refused when the file is opened with
/// [`AudioError::UnsupportedWav`]; a malformed header gives [`AudioError::Wav`]. A file whose data
/// stops before its header says it should (truncated) delivers every whole sample frame it has,
/// then one [`AudioError::Wav`], then the end of the stream.
pub struct WavSource<R = BufReader<File>> {
    reader: WavReader<R>,
    /// The format delivered: the file's, or 48 kHz when `convert` is set.
    format: AudioFormat,
    /// The conversion of a rate 20 ms frames cannot divide.
    convert: Option<RateStream>,
    end: EndOfFile,
    /// Sample frames in the file according to its header.
    duration: u32,
    /// Times the file was restarted from the beginning.
    loops: u64,
    /// Whether the file's samples are exhausted (or unreadable).
    exhausted: bool,
    /// An error met during a read that had already produced samples, reported by the next read.
    pending_error: Option<AudioError>,
}

impl<R> std::fmt::Debug for WavSource<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavSource")
            .field("format", &self.format)
            .field("end", &self.end)
            .field("duration", &self.duration)
            .field("loops", &self.loops)
            .finish_non_exhaustive()
    }
}

impl WavSource<BufReader<File>> {
    /// Opens the WAV file at `path`.
    pub fn open(path: impl AsRef<Path>, end: EndOfFile) -> Result<Self, AudioError> {
        let file = File::open(path).map_err(hound::Error::IoError)?;
        Self::from_reader(BufReader::new(file), end)
    }
}

impl<R: Read + Seek + Send> WavSource<R> {
    /// Reads a WAV stream from `reader` (a file, or a `Cursor` over bytes in memory).
    pub fn from_reader(reader: R, end: EndOfFile) -> Result<Self, AudioError> {
        let reader = WavReader::new(reader)?;
        let spec = reader.spec();
        if spec.bits_per_sample != 16 || spec.sample_format != SampleFormat::Int {
            return Err(AudioError::UnsupportedWav {
                bits_per_sample: spec.bits_per_sample,
                sample_format: match spec.sample_format {
                    SampleFormat::Int => "integer",
                    SampleFormat::Float => "float",
                },
            });
        }
        let file_format = AudioFormat::new(spec.sample_rate, spec.channels);
        let (format, convert) = match file_format.validate() {
            Ok(()) => (file_format, None),
            Err(AudioError::UnsupportedSampleRate(_)) => (
                AudioFormat::new(STREAM_RATE, spec.channels),
                Some(RateStream::new(file_format)?),
            ),
            Err(e) => return Err(e),
        };
        let duration = reader.duration();
        Ok(WavSource {
            reader,
            format,
            convert,
            end,
            duration,
            loops: 0,
            exhausted: false,
            pending_error: None,
        })
    }

    /// Sample frames in the file, according to its header (at the file's rate).
    pub fn duration_samples(&self) -> u32 {
        self.duration
    }

    /// How many times the file was restarted ([`EndOfFile::Loop`]).
    pub fn loops(&self) -> u64 {
        self.loops
    }

    /// Reads one sample frame into `frame`; `Ok(false)` at the end of the data.
    ///
    /// A sample frame cut short by the end of the data is dropped.
    fn read_sample_frame(&mut self, frame: &mut [i16]) -> Result<bool, AudioError> {
        let mut samples = self.reader.samples::<i16>();
        for slot in frame.iter_mut() {
            match samples.next() {
                Some(Ok(s)) => *slot = s,
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Rewinds for [`EndOfFile::Loop`]; an error ends the stream like a read error does.
    fn rewind_or_fail(&mut self, written: usize) -> Result<bool, AudioError> {
        match self.rewind() {
            Ok(restarted) => Ok(restarted),
            Err(e) => {
                self.end = EndOfFile::Stop;
                self.exhausted = true;
                if written == 0 {
                    Err(e)
                } else {
                    self.pending_error = Some(e);
                    Ok(false)
                }
            }
        }
    }

    /// Restarts at the first sample; false if there is nothing to loop over.
    fn rewind(&mut self) -> Result<bool, AudioError> {
        if self.duration == 0 {
            return Ok(false);
        }
        self.reader.seek(0).map_err(hound::Error::IoError)?;
        self.loops += 1;
        Ok(true)
    }
}

impl<R: Read + Seek + Send> AudioSource for WavSource<R> {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn read(&mut self, out: &mut [i16]) -> Result<usize, AudioError> {
        let Some(mut convert) = self.convert.take() else {
            return self.read_file(out);
        };
        let result = convert.read(out, |raw| self.read_file(raw));
        self.convert = Some(convert);
        result
    }
}

impl<R: Read + Seek + Send> WavSource<R> {
    /// Reads samples of the file as they are, by [`AudioSource::read`]'s rules.
    fn read_file(&mut self, out: &mut [i16]) -> Result<usize, AudioError> {
        if let Some(e) = self.pending_error.take() {
            return Err(e);
        }
        let channels = self.format.channels as usize;
        let len = whole_frames_len(out, self.format.channels);
        let mut written = 0;
        while written < len {
            if self.exhausted {
                if self.end == EndOfFile::Silence {
                    out[written..len].fill(0);
                    written = len;
                }
                break;
            }
            let result = self.read_sample_frame(&mut out[written..written + channels]);
            match result {
                Ok(true) => written += channels,
                Ok(false) => {
                    let restarted = self.end == EndOfFile::Loop && self.rewind_or_fail(written)?;
                    if !restarted {
                        self.exhausted = true;
                    }
                }
                Err(e) => {
                    self.exhausted = true;
                    self.end = EndOfFile::Stop;
                    if written == 0 {
                        return Err(e);
                    }
                    self.pending_error = Some(e);
                    break;
                }
            }
        }
        Ok(written)
    }
}
