//! [`DevicePlayback`]: a speaker or headset (any playback device) as an [`AudioSink`].

use std::sync::mpsc::Receiver;

use super::error::{DeviceError, Direction};
use super::host::open_playback;
use super::ring::RingWriter;
use super::worker::{
    open_end, DeviceEventHandler, DeviceStatsHandle, DeviceWorker, OpenedEnd, Swap,
};
use crate::audio::{check_format, AudioError, AudioFormat, AudioFrame, AudioSink, Resampler};

/// Sound to a playback device, written in the caller's format.
///
/// [`AudioSink::write`], on the media thread, collects 20 ms, mixes channels and resamples to
/// the device's format and writes the result into a lock-free ring; the device callback only
/// reads the ring (silence while it is short, counted as underflow once it was primed) and
/// converts each sample to the device's sample type. A write never blocks. If the device goes
/// away mid-call, the default device takes over, or the sink discards while no device opens;
/// the changes go to the event handler given to [`DevicePlayback::open`].
pub struct DevicePlayback {
    format: AudioFormat,
    device: String,
    device_format: AudioFormat,
    writer: RingWriter,
    swaps: Receiver<Swap<RingWriter>>,
    resampler: Resampler,
    /// Written samples short of a whole 20 ms frame.
    staged: Vec<i16>,
    /// Samples in the device's format, ready for the ring.
    converted: Vec<i16>,
    stats: DeviceStatsHandle,
    worker: DeviceWorker,
    finished: bool,
}

impl std::fmt::Debug for DevicePlayback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevicePlayback")
            .field("device", &self.device)
            .field("device_format", &self.device_format)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl DevicePlayback {
    /// Opens the playback device `name` (its id or name, see [`super::audio_devices`];
    /// `None` for the default) and starts it, accepting frames in `format`. Blocks until the
    /// stream runs or could not be opened (a few seconds at most). Later device changes go to
    /// `on_event`, on the device's own thread.
    pub fn open(
        name: Option<&str>,
        format: AudioFormat,
        on_event: DeviceEventHandler,
    ) -> Result<DevicePlayback, DeviceError> {
        let OpenedEnd {
            worker,
            device,
            first,
            swaps,
            stats,
            resampler,
        } = open_end(Direction::Output, name, format, open_playback, on_event)?;
        Ok(DevicePlayback {
            format,
            device,
            device_format: first.format,
            writer: first.end,
            swaps,
            resampler,
            staged: Vec::with_capacity(2 * format.frame_len()),
            converted: Vec::with_capacity(first.format.frame_len()),
            stats,
            worker,
            finished: false,
        })
    }

    /// The name of the device opened first.
    pub fn device_name(&self) -> &str {
        &self.device
    }

    /// The format the device plays in.
    pub fn device_format(&self) -> AudioFormat {
        self.device_format
    }

    /// A handle on the counters (underflow, overflow, xruns, reopens).
    pub fn stats(&self) -> DeviceStatsHandle {
        self.stats.clone()
    }

    /// Takes the ring of a reopened device, if there is one.
    fn take_swaps(&mut self) -> Result<(), AudioError> {
        while let Ok(swap) = self.swaps.try_recv() {
            if swap.format != self.device_format {
                self.resampler = Resampler::new(self.format, swap.format)?;
                self.device_format = swap.format;
            }
            self.writer = swap.end;
        }
        Ok(())
    }
}

impl AudioSink for DevicePlayback {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn write(&mut self, frame: &AudioFrame) -> Result<(), AudioError> {
        if self.finished {
            return Err(AudioError::Finished);
        }
        check_format(self.format, frame)?;
        self.take_swaps()?;
        self.staged.extend_from_slice(frame.samples());
        let frame_len = self.format.frame_len();
        let mut start = 0;
        while self.staged.len() - start >= frame_len {
            self.converted.clear();
            self.resampler
                .process_into(&self.staged[start..start + frame_len], &mut self.converted)?;
            self.writer.write(&self.converted);
            start += frame_len;
        }
        self.staged.drain(..start);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), AudioError> {
        if !self.finished {
            self.finished = true;
            self.worker.stop();
        }
        Ok(())
    }
}

impl Drop for DevicePlayback {
    /// Logs what the playback counted, for diagnosis.
    fn drop(&mut self) {
        self.stats.log_closed(Direction::Output, &self.device);
    }
}
