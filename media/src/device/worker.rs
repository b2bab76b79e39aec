//! The thread that owns a device stream: it opens it, listens to its error callback, and
//! replaces it after a loss as [`DeviceRecovery`] decides. The media thread never waits for it:
//! new ring ends reach the media thread through a channel it polls without blocking.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use cpal::traits::StreamTrait;

use super::error::{DeviceError, Direction};
use super::host::{OpenRequest, Opened};
use super::recovery::{DeviceEvent, DeviceRecovery, RecoveryStep, StreamTrouble};
use super::ring::RingCounters;
use crate::audio::{AudioFormat, Resampler};

/// Where a device reports its [`DeviceEvent`]s (from its worker thread).
pub type DeviceEventHandler = Box<dyn Fn(DeviceEvent) + Send + 'static>;

/// Counters of one device capture or playback, across reopened streams.
#[derive(Debug, Default)]
pub(crate) struct DeviceCounters {
    pub ring: Arc<RingCounters>,
    pub xruns: AtomicU64,
    pub reopens: AtomicU64,
}

/// What a device capture or playback counted so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceStats {
    /// Samples per channel made up with silence because the other side of the ring was late
    /// (capture: the device; playback: the media thread).
    pub underflow: u64,
    /// Samples per channel dropped because the ring ran over its latency bound or was full.
    pub overflow: u64,
    /// Buffer underruns and overruns the audio system reported.
    pub xruns: u64,
    /// Times the default device replaced a lost one.
    pub reopens: u64,
}

/// A handle to read a device's [`DeviceStats`], also after the capture or playback moved to a
/// media thread.
#[derive(Debug, Clone)]
pub struct DeviceStatsHandle(pub(crate) Arc<DeviceCounters>);

impl DeviceStatsHandle {
    /// The counts so far.
    pub fn get(&self) -> DeviceStats {
        DeviceStats {
            underflow: self.0.ring.underflow(),
            overflow: self.0.ring.overflow(),
            xruns: self.0.xruns.load(Ordering::Relaxed),
            reopens: self.0.reopens.load(Ordering::Relaxed),
        }
    }

    /// Logs what a closing capture or playback of `device` counted, for diagnosis.
    pub(crate) fn log_closed(&self, direction: Direction, device: &str) {
        let stats = self.get();
        tracing::info!(
            %device,
            underflow = stats.underflow,
            overflow = stats.overflow,
            xruns = stats.xruns,
            reopens = stats.reopens,
            "audio {direction} closed"
        );
    }
}

/// A device end opened for the media thread: the running worker, the counters, and the
/// converter between the caller's format and the device's (device to caller for a capture,
/// caller to device for a playback).
pub(crate) struct OpenedEnd<End> {
    pub worker: DeviceWorker,
    /// The name of the device opened first.
    pub device: String,
    /// Its ring end, in its format.
    pub first: Swap<End>,
    /// The ends of devices opened later.
    pub swaps: Receiver<Swap<End>>,
    pub stats: DeviceStatsHandle,
    pub resampler: Resampler,
}

/// Opens device `name` (or the default) in `direction` for a caller working in `format`: what
/// [`super::DeviceCapture::open`] and [`super::DevicePlayback::open`] share.
pub(crate) fn open_end<End: Send + 'static>(
    direction: Direction,
    name: Option<&str>,
    format: AudioFormat,
    open: Opener<End>,
    on_event: DeviceEventHandler,
) -> Result<OpenedEnd<End>, DeviceError> {
    format
        .validate()
        .map_err(|e| DeviceError::UnsupportedFormat {
            direction,
            name: name.unwrap_or("default").to_owned(),
            reason: e.to_string(),
        })?;
    let counters = Arc::new(DeviceCounters::default());
    let started = DeviceWorker::start(
        direction,
        name.map(str::to_owned),
        open,
        Arc::clone(&counters),
        on_event,
    )?;
    let device_format = started.first.format;
    let (from, to) = match direction {
        Direction::Input => (device_format, format),
        Direction::Output => (format, device_format),
    };
    let resampler = Resampler::new(from, to).map_err(|e| DeviceError::UnsupportedFormat {
        direction,
        name: started.device.clone(),
        reason: format!("{from} cannot be converted to {to}: {e}"),
    })?;
    let Started {
        worker,
        device,
        first,
        swaps,
    } = started;
    Ok(OpenedEnd {
        worker,
        device,
        first,
        swaps,
        stats: DeviceStatsHandle(counters),
        resampler,
    })
}

/// A new ring end for the media thread, in the format of the device that feeds it.
pub(crate) struct Swap<End> {
    pub format: AudioFormat,
    pub end: End,
}

/// What the worker listens to.
enum WorkerMessage {
    Trouble(StreamTrouble),
    Stop,
}

/// Where a stream's error callback reports: the worker's inbox.
#[derive(Clone)]
pub(crate) struct TroubleSender(Sender<WorkerMessage>);

impl TroubleSender {
    /// Hands `trouble` to the worker (dropped if the worker has ended).
    pub(crate) fn report(&self, trouble: StreamTrouble) {
        let _ = self.0.send(WorkerMessage::Trouble(trouble));
    }
}

/// Opens a stream: the capture or the playback opener of `host.rs`.
pub(crate) type Opener<End> = fn(OpenRequest<'_>) -> Result<Opened<End>, DeviceError>;

/// The worker thread of one device capture or playback; stopping it (or dropping it) closes
/// the stream.
pub(crate) struct DeviceWorker {
    messages: Sender<WorkerMessage>,
    thread: Option<JoinHandle<()>>,
}

/// What a started worker gives the media side.
pub(crate) struct Started<End> {
    pub worker: DeviceWorker,
    pub device: String,
    pub first: Swap<End>,
    pub swaps: Receiver<Swap<End>>,
}

impl DeviceWorker {
    /// Starts the worker, which opens device `name` (or the default); returns once the stream
    /// is built (the device exists and its format is known) or could not be. The worker then
    /// starts the stream; a stream that does not start counts as lost (the default device is
    /// tried next). Starting can take a while (a PulseAudio record stream waits for its first
    /// data), which is why it does not hold up the caller.
    pub(crate) fn start<End: Send + 'static>(
        direction: Direction,
        name: Option<String>,
        open: Opener<End>,
        counters: Arc<DeviceCounters>,
        on_event: DeviceEventHandler,
    ) -> Result<Started<End>, DeviceError> {
        let (messages, inbox) = mpsc::channel::<WorkerMessage>();
        let troubles = TroubleSender(messages.clone());
        let (swaps_tx, swaps) = mpsc::channel::<Swap<End>>();
        let (first_tx, first_rx) = mpsc::channel::<Result<(String, Swap<End>), DeviceError>>();
        let thread = std::thread::Builder::new()
            .name(format!("audio-{direction}"))
            .spawn(move || {
                let opened = open(OpenRequest {
                    name: name.as_deref(),
                    troubles: troubles.clone(),
                    counters: Arc::clone(&counters.ring),
                });
                let opened = match opened {
                    Ok(o) => o,
                    Err(e) => {
                        let _ = first_tx.send(Err(e));
                        return;
                    }
                };
                let recovery = DeviceRecovery::new(direction, opened.device.clone());
                let first = Swap {
                    format: opened.format,
                    end: opened.end,
                };
                if first_tx.send(Ok((opened.device, first))).is_err() {
                    return;
                }
                let mut run = Run {
                    open,
                    stream: None,
                    recovery,
                    troubles,
                    swaps: swaps_tx,
                    counters,
                    on_event,
                };
                run.start(opened.stream);
                run.serve(inbox);
            })
            .map_err(|e| DeviceError::NoAudioSystem(format!("no thread for the device: {e}")))?;
        let worker = DeviceWorker {
            messages,
            thread: Some(thread),
        };
        match first_rx.recv() {
            Ok(Ok((device, first))) => Ok(Started {
                worker,
                device,
                first,
                swaps,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(DeviceError::NoAudioSystem(
                "the device thread ended before the stream opened".into(),
            )),
        }
    }

    /// Closes the stream and waits for the worker to end.
    pub(crate) fn stop(&mut self) {
        let _ = self.messages.send(WorkerMessage::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for DeviceWorker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The worker's state once the first stream runs.
struct Run<End> {
    open: Opener<End>,
    stream: Option<cpal::Stream>,
    recovery: DeviceRecovery,
    troubles: TroubleSender,
    swaps: Sender<Swap<End>>,
    counters: Arc<DeviceCounters>,
    on_event: DeviceEventHandler,
}

impl<End> Run<End> {
    /// Plays `stream` and keeps it; one that does not start is reported as lost.
    fn start(&mut self, stream: cpal::Stream) {
        match stream.play() {
            Ok(()) => self.stream = Some(stream),
            Err(e) => self.troubles.report(StreamTrouble::Lost(e.to_string())),
        }
    }

    fn serve(mut self, inbox: Receiver<WorkerMessage>) {
        loop {
            let message = match self.recovery.poll_timeout() {
                Some(at) => inbox.recv_timeout(at.saturating_duration_since(Instant::now())),
                None => inbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            let now = Instant::now();
            let step = match message {
                Ok(WorkerMessage::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(WorkerMessage::Trouble(trouble)) => {
                    if trouble == StreamTrouble::Glitch {
                        self.counters.xruns.fetch_add(1, Ordering::Relaxed);
                    }
                    self.recovery.handle_trouble(trouble, now)
                }
                Err(RecvTimeoutError::Timeout) => self.recovery.handle_timeout(now),
            };
            if step == RecoveryStep::ReopenDefault {
                self.reopen_default();
            }
            while let Some(event) = self.recovery.poll_event() {
                tracing::warn!(%event, "audio device");
                (self.on_event)(event);
            }
        }
        // Closing the stream stops its callbacks before the worker ends.
        self.stream = None;
    }

    fn reopen_default(&mut self) {
        self.stream = None;
        let opened = (self.open)(OpenRequest {
            name: None,
            troubles: self.troubles.clone(),
            counters: Arc::clone(&self.counters.ring),
        });
        let now = Instant::now();
        match opened.and_then(|o| match o.stream.play() {
            Ok(()) => Ok(o),
            Err(e) => Err(DeviceError::Open {
                direction: self.recovery.direction(),
                name: o.device,
                reason: e.to_string(),
            }),
        }) {
            Ok(o) => {
                self.stream = Some(o.stream);
                self.counters.reopens.fetch_add(1, Ordering::Relaxed);
                let _ = self.swaps.send(Swap {
                    format: o.format,
                    end: o.end,
                });
                self.recovery.handle_reopen(Ok(o.device), now);
            }
            Err(e) => self.recovery.handle_reopen(Err(e.to_string()), now),
        }
    }
}
