//! [`DeviceCapture`]: a microphone (or any capture device) as an [`AudioSource`].

use std::sync::mpsc::Receiver;

use super::error::{DeviceError, Direction};
use super::host::open_capture;
use super::ring::RingReader;
use super::worker::{
    open_end, DeviceEventHandler, DeviceStatsHandle, DeviceWorker, OpenedEnd, Swap,
};
use crate::audio::{AudioError, AudioFormat, AudioSource, Resampler};

/// Sound from a capture device, in the format the caller asks for.
///
/// The device callback only writes the device's samples (converted to `i16`) into a lock-free
/// ring. [`AudioSource::read`], on the media thread, takes one 20 ms device frame at a time from
/// the ring (silence while the ring is short, counted as underflow once it was primed), mixes
/// channels and resamples to [`AudioSource::format`]. A read never blocks and always fills its
/// buffer: the stream of a device never ends. If the device goes away mid-call, the default
/// device takes over, or the source gives silence while no device opens (see
/// [`super::DeviceRecovery`]); the changes go to the event handler given to
/// [`DeviceCapture::open`].
pub struct DeviceCapture {
    format: AudioFormat,
    device: String,
    device_format: AudioFormat,
    reader: RingReader,
    swaps: Receiver<Swap<RingReader>>,
    resampler: Resampler,
    /// One 20 ms frame in the device's format.
    device_frame: Vec<i16>,
    /// Converted samples not yet read.
    pending: Vec<i16>,
    stats: DeviceStatsHandle,
    /// Owns the stream; dropping the capture stops it.
    _worker: DeviceWorker,
}

impl std::fmt::Debug for DeviceCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCapture")
            .field("device", &self.device)
            .field("device_format", &self.device_format)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl DeviceCapture {
    /// Opens the capture device `name` (its id or name, see [`super::audio_devices`]; `None`
    /// for the default) and starts it, delivering `format`. Blocks until the stream runs or
    /// could not be opened (a few seconds at most). Later device changes go to `on_event`, on
    /// the device's own thread.
    pub fn open(
        name: Option<&str>,
        format: AudioFormat,
        on_event: DeviceEventHandler,
    ) -> Result<DeviceCapture, DeviceError> {
        let OpenedEnd {
            worker,
            device,
            first,
            swaps,
            stats,
            resampler,
        } = open_end(Direction::Input, name, format, open_capture, on_event)?;
        Ok(DeviceCapture {
            format,
            device,
            device_format: first.format,
            reader: first.end,
            swaps,
            resampler,
            device_frame: vec![0; first.format.frame_len()],
            pending: Vec::with_capacity(2 * format.frame_len()),
            stats,
            _worker: worker,
        })
    }

    /// The name of the device opened first.
    pub fn device_name(&self) -> &str {
        &self.device
    }

    /// The format the device delivers in.
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
                self.resampler = Resampler::new(swap.format, self.format)?;
                self.device_format = swap.format;
                self.device_frame = vec![0; swap.format.frame_len()];
            }
            self.reader = swap.end;
        }
        Ok(())
    }
}

impl AudioSource for DeviceCapture {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn read(&mut self, out: &mut [i16]) -> Result<usize, AudioError> {
        self.take_swaps()?;
        let wanted = out.len() - out.len() % usize::from(self.format.channels);
        while self.pending.len() < wanted {
            self.reader.read(&mut self.device_frame);
            self.resampler
                .process_into(&self.device_frame, &mut self.pending)?;
        }
        out[..wanted].copy_from_slice(&self.pending[..wanted]);
        self.pending.drain(..wanted);
        Ok(wanted)
    }
}

impl Drop for DeviceCapture {
    /// Logs what the capture counted, for diagnosis.
    fn drop(&mut self) {
        self.stats.log_closed(Direction::Input, &self.device);
    }
}
