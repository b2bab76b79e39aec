//! Records audio to a 16-bit integer PCM WAV file whose header stays valid while it grows.
//!
//! # What a crash leaves behind
//!
//! The recorder writes through `hound` into a buffered file. Every flush interval (100 ms of
//! audio by default, [`WavRecorder::with_flush_interval_ms`]) it writes the buffered samples to the
//! file and then rewrites the header's two length fields to cover them. Samples always reach the
//! file before a header that counts them, so at every moment the file on disk is a valid WAV file:
//!
//! - If the process dies (killed, panics with `panic = "abort"`, crashes), the file holds a valid
//!   WAV with every sample up to the last flush — at most one flush interval is missing. Samples
//!   written after that flush may sit past the end of the data chunk, where readers ignore them.
//! - If the recorder is dropped without [`AudioSink::finish`], `hound` completes the header in its
//!   destructor; nothing is lost, but write errors at that point go unreported.
//! - The recorder does not `fsync`: after a power loss, what survives is what the operating system
//!   had written to the disk.

use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::Path;

use hound::{SampleFormat, WavSpec, WavWriter};

use super::error::AudioError;
use super::frame::{AudioFormat, AudioFrame};
use super::sink::{check_format, AudioSink};

/// Largest data chunk a WAV file can describe, minus room for the header.
const MAX_DATA_BYTES: u64 = u32::MAX as u64 - 1024;

/// Writes frames to a WAV file (16-bit integer PCM, the frames' rate and channel count).
pub struct WavRecorder<W: Write + Seek = BufWriter<File>> {
    writer: Option<WavWriter<W>>,
    format: AudioFormat,
    /// Sample frames between header updates; 0 updates after every write.
    flush_interval: u64,
    /// Sample frames written since the last header update.
    since_flush: u64,
    /// Sample frames written in all.
    written: u64,
}

impl<W: Write + Seek> std::fmt::Debug for WavRecorder<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavRecorder")
            .field("format", &self.format)
            .field("flush_interval", &self.flush_interval)
            .field("written", &self.written)
            .field("finished", &self.writer.is_none())
            .finish_non_exhaustive()
    }
}

impl WavRecorder<BufWriter<File>> {
    /// Creates (or truncates) the file at `path` and writes a header for an empty recording.
    pub fn create(path: impl AsRef<Path>, format: AudioFormat) -> Result<Self, AudioError> {
        let file = File::create(path).map_err(hound::Error::IoError)?;
        Self::from_writer(BufWriter::new(file), format)
    }
}

impl<W: Write + Seek + Send> WavRecorder<W> {
    /// Header updates every 100 ms of audio by default.
    pub const DEFAULT_FLUSH_INTERVAL_MS: u32 = 100;

    /// Records into `writer` (a file, or a `Cursor` in memory).
    pub fn from_writer(writer: W, format: AudioFormat) -> Result<Self, AudioError> {
        format.validate()?;
        let spec = WavSpec {
            channels: format.channels,
            sample_rate: format.sample_rate,
            bits_per_sample: 16,
            sample_format: SampleFormat::Int,
        };
        let mut writer = WavWriter::new(writer, spec)?;
        // The header of an empty recording is on disk before the first frame.
        writer.flush()?;
        Ok(WavRecorder {
            writer: Some(writer),
            format,
            flush_interval: format.samples_per_channel_in_ms(Self::DEFAULT_FLUSH_INTERVAL_MS)
                as u64,
            since_flush: 0,
            written: 0,
        })
    }

    /// Updates the header every `ms` milliseconds of recorded audio (0: after every write).
    #[must_use]
    pub fn with_flush_interval_ms(mut self, ms: u32) -> Self {
        self.flush_interval = self.format.samples_per_channel_in_ms(ms) as u64;
        self
    }

    /// Sample frames written so far.
    pub fn samples_written(&self) -> u64 {
        self.written
    }
}

impl<W: Write + Seek + Send> AudioSink for WavRecorder<W> {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn write(&mut self, frame: &AudioFrame) -> Result<(), AudioError> {
        check_format(self.format, frame)?;
        let writer = self.writer.as_mut().ok_or(AudioError::Finished)?;
        let samples = frame.samples();
        let bytes_after = (self.written + frame.samples_per_channel() as u64)
            * u64::from(self.format.channels)
            * 2;
        if bytes_after > MAX_DATA_BYTES {
            return Err(AudioError::WavFull);
        }
        // The frame is far below 2^31 samples: its byte count fitted under MAX_DATA_BYTES.
        let mut sample_writer = writer.get_i16_writer(samples.len() as u32);
        for &s in samples {
            sample_writer.write_sample(s);
        }
        sample_writer.flush()?;
        self.written += frame.samples_per_channel() as u64;
        self.since_flush += frame.samples_per_channel() as u64;
        if self.since_flush >= self.flush_interval {
            writer.flush()?;
            self.since_flush = 0;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), AudioError> {
        match self.writer.take() {
            Some(writer) => Ok(writer.finalize()?),
            None => Ok(()),
        }
    }
}
