//! [`CameraSource`]: a camera as a [`VideoSource`]. A capture thread of its own reads the
//! device, converts each frame to I420 and scales it to the call's size; the media thread
//! takes the latest one when it wants a frame.
//!
//! # Contract
//!
//! - Opening happens on the capture thread (some camera APIs tie a device to the thread that
//!   opened it); [`CameraSource::open`] waits for its outcome, at most [`OPEN_TIMEOUT`].
//! - A camera mode of another aspect ratio than the call's is cropped in the middle, then
//!   scaled (never squeezed).
//! - Hand-over is one slot holding the latest frame: a frame the media thread did not take
//!   in time is replaced, never queued. When no new frame arrived since the last pull, the
//!   previous one is sent again (a camera slower than the call); before the first, black.
//! - Timestamps are the pull count at the nominal rate, as for every pulled source: the media
//!   thread paces, and RTP timestamps follow its ticks.
//! - A frame that does not convert (a corrupt MJPEG frame) is skipped and counted. A camera
//!   that stops delivering (unplugged, driver failure, [`MAX_READ_FAILURES`] reads in a row
//!   failing) ends the capture thread and the source sends the placeholder picture from then
//!   on, so the call keeps its video stream; [`CameraSource::failure`] says why, and the
//!   handler given to [`CameraSource::on_failure`] is told once.
//! - Dropping the source tells the capture thread to stop; it releases the camera after the
//!   read it is in (the thread is not joined, so a hung driver cannot hang a call's end).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use tracing::{debug, warn};

use super::convert::to_i420;
use super::error::CameraError;
use super::mode_selection::CameraMode;
use super::pixel_format::RawFrame;
use super::placeholder::placeholder_frame;
use crate::video::{scale_i420, VideoError, VideoFormat, VideoFrame, VideoSource};

/// How long [`CameraSource::open`] waits for the device to open.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads failing in a row after which the camera counts as stopped.
pub const MAX_READ_FAILURES: u32 = 30;

/// Something the capture thread reads frames from: a camera device, or in tests a synthetic
/// one. Opened on the capture thread, and used only there.
pub(crate) trait FrameGrabber {
    /// The mode frames come in.
    fn mode(&self) -> CameraMode;
    /// A human name of the device.
    fn name(&self) -> String;
    /// Blocks until the next frame and lends it.
    fn grab(&mut self) -> Result<RawFrame<'_>, CameraError>;
}

/// Told once, from the capture thread, why the camera stopped.
type FailureHandler = Box<dyn FnOnce(&CameraError) + Send>;

/// What the capture thread and the source share.
#[derive(Default)]
struct Shared {
    /// Who to tell when the camera stops.
    on_failure: Option<FailureHandler>,
    /// The latest converted frame the media thread has not taken yet.
    latest: Option<VideoFrame>,
    /// Why capture ended, once it did.
    failure: Option<CameraError>,
    /// Frames captured and converted.
    captured: u64,
    /// Frames that did not convert.
    unreadable: u64,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A camera as a [`VideoSource`] of frames at the call's size and rate.
pub struct CameraSource {
    format: VideoFormat,
    mode: CameraMode,
    name: String,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    /// What was sent last (repeated when no new frame came).
    last: Option<VideoFrame>,
    /// The picture sent once the camera failed.
    placeholder: Option<VideoFrame>,
    pulled: u64,
}

impl std::fmt::Debug for CameraSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraSource")
            .field("format", &self.format)
            .field("mode", &self.mode)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl CameraSource {
    /// Opens camera number `index` (the first when `None`, see
    /// [`cameras`](super::cameras)) in the mode closest to `format` and starts capturing;
    /// frames come out at `format`'s size and rate.
    pub fn open(index: Option<u32>, format: VideoFormat) -> Result<CameraSource, CameraError> {
        Self::start(format, move || super::device::open_camera(index, format))
    }

    /// Starts the capture thread on what `open` opens there.
    pub(crate) fn start<G, F>(format: VideoFormat, open: F) -> Result<CameraSource, CameraError>
    where
        G: FrameGrabber,
        F: FnOnce() -> Result<G, CameraError> + Send + 'static,
    {
        let format = VideoFormat::new(format.width, format.height, format.fps).map_err(|e| {
            CameraError::Device {
                detail: e.to_string(),
            }
        })?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (opened_tx, opened_rx) = mpsc::sync_channel(1);
        let thread_shared = Arc::clone(&shared);
        let thread_stop = Arc::clone(&stop);
        thread::Builder::new()
            .name("callisto-camera".into())
            .spawn(move || {
                let grabber = match open() {
                    Ok(grabber) => grabber,
                    Err(e) => {
                        let _ = opened_tx.send(Err(e));
                        return;
                    }
                };
                if opened_tx
                    .send(Ok((grabber.mode(), grabber.name())))
                    .is_err()
                {
                    return;
                }
                capture(grabber, format, &thread_shared, &thread_stop);
            })
            .map_err(|e| CameraError::Device {
                detail: format!("cannot start the capture thread: {e}"),
            })?;
        let (mode, name) = match opened_rx.recv_timeout(OPEN_TIMEOUT) {
            Ok(opened) => opened?,
            Err(_) => {
                stop.store(true, Ordering::Release);
                return Err(CameraError::Device {
                    detail: format!("it did not open within {} s", OPEN_TIMEOUT.as_secs()),
                });
            }
        };
        debug!(%mode, %name, %format, "camera capturing");
        Ok(CameraSource {
            format,
            mode,
            name,
            shared,
            stop,
            last: None,
            placeholder: None,
            pulled: 0,
        })
    }

    /// The mode the camera delivers in (before conversion and scaling).
    pub fn mode(&self) -> CameraMode {
        self.mode
    }

    /// The camera's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Why the camera stopped, once it did (the source then sends the placeholder picture).
    pub fn failure(&self) -> Option<CameraError> {
        lock(&self.shared).failure.clone()
    }

    /// Calls `handler` once, from the capture thread, when the camera stops (at once, here,
    /// if it already has). A later handler replaces an earlier one that was not called yet.
    pub fn on_failure(&self, handler: impl FnOnce(&CameraError) + Send + 'static) {
        let mut shared = lock(&self.shared);
        match shared.failure.clone() {
            Some(failure) => {
                drop(shared);
                handler(&failure);
            }
            None => shared.on_failure = Some(Box::new(handler)),
        }
    }

    /// Frames captured and converted so far, and frames that did not convert.
    pub fn captured(&self) -> (u64, u64) {
        let shared = lock(&self.shared);
        (shared.captured, shared.unreadable)
    }
}

impl VideoSource for CameraSource {
    fn format(&self) -> VideoFormat {
        self.format
    }

    fn next_frame(&mut self) -> Result<Option<VideoFrame>, VideoError> {
        let (latest, failed) = {
            let mut shared = lock(&self.shared);
            (shared.latest.take(), shared.failure.is_some())
        };
        let frame = match (latest, failed) {
            (Some(frame), _) => {
                self.last = Some(frame.clone());
                frame
            }
            (None, false) => match &self.last {
                Some(last) => last.clone(),
                None => VideoFrame::black(self.format.width, self.format.height)?,
            },
            (None, true) => {
                self.last = None;
                match &self.placeholder {
                    Some(picture) => picture.clone(),
                    None => {
                        let picture = placeholder_frame(self.format.width, self.format.height)?;
                        self.placeholder = Some(picture.clone());
                        picture
                    }
                }
            }
        };
        let timestamp = self.format.timestamp_of(self.pulled);
        self.pulled += 1;
        Ok(Some(frame.with_timestamp(timestamp)))
    }
}

impl Drop for CameraSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// The capture loop: read, convert, scale, hand over, until told to stop or the camera fails.
fn capture<G: FrameGrabber>(
    mut grabber: G,
    format: VideoFormat,
    shared: &Mutex<Shared>,
    stop: &AtomicBool,
) {
    let mut failures = 0u32;
    while !stop.load(Ordering::Acquire) {
        let converted = match grabber.grab() {
            Ok(raw) => {
                failures = 0;
                to_i420(&raw, std::time::Duration::ZERO)
            }
            Err(_) if stop.load(Ordering::Acquire) => return,
            Err(e) => {
                failures += 1;
                if failures >= MAX_READ_FAILURES || !is_transient(&e) {
                    warn!(error = %e, "the camera stopped: sending the placeholder picture");
                    let failure = match e {
                        CameraError::Stopped { .. } => e,
                        other => CameraError::Stopped {
                            detail: other.to_string(),
                        },
                    };
                    let handler = {
                        let mut shared = lock(shared);
                        shared.failure = Some(failure.clone());
                        shared.on_failure.take()
                    };
                    if let Some(handler) = handler {
                        handler(&failure);
                    }
                    return;
                }
                continue;
            }
        };
        let frame = converted.map_err(|e| e.to_string()).and_then(|frame| {
            if (frame.width(), frame.height()) == (format.width, format.height) {
                return Ok(frame);
            }
            let frame = crop_to_aspect(frame, format.width, format.height);
            scale_i420(&frame, format.width, format.height).map_err(|e| e.to_string())
        });
        let mut shared = lock(shared);
        match frame {
            Ok(frame) => {
                shared.latest = Some(frame);
                shared.captured += 1;
            }
            Err(reason) => {
                if shared.unreadable == 0 {
                    warn!(%reason, "a camera frame did not convert; skipping such frames");
                }
                shared.unreadable += 1;
            }
        }
    }
}

/// The middle of `frame` with the aspect ratio of `width`x`height` (a 16:9 camera in a 4:3
/// call loses its sides rather than being squeezed); the frame itself when the ratios agree
/// within 1 %.
fn crop_to_aspect(frame: VideoFrame, width: u32, height: u32) -> VideoFrame {
    let (sw, sh) = (u64::from(frame.width()), u64::from(frame.height()));
    let (tw, th) = (u64::from(width), u64::from(height));
    // Compare sw/sh with tw/th without division.
    let (wide, tall) = (sw * th, tw * sh);
    if wide.abs_diff(tall) * 100 <= tall {
        return frame;
    }
    let (cw, ch) = if wide > tall {
        ((sh * tw / th) & !1, sh)
    } else {
        (sw, (sw * th / tw) & !1)
    };
    if cw == 0 || ch == 0 {
        return frame;
    }
    let (x0, y0) = (((sw - cw) / 2) & !1, ((sh - ch) / 2) & !1);
    let (sw, x0, y0) = (sw as usize, x0 as usize, y0 as usize);
    let cropped = VideoFrame::from_strided_planes(
        cw as u32,
        ch as u32,
        (&frame.y()[y0 * sw + x0..], sw),
        (&frame.u()[y0 / 2 * sw / 2 + x0 / 2..], sw / 2),
        (&frame.v()[y0 / 2 * sw / 2 + x0 / 2..], sw / 2),
        frame.timestamp(),
    );
    cropped.unwrap_or(frame)
}

/// Whether a read error may pass (a frame lost) rather than end capture (a device gone).
fn is_transient(error: &CameraError) -> bool {
    matches!(error, CameraError::Device { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::camera::PixelFormat;
    use std::time::Instant;

    /// A camera of YUYV frames whose luma is 100 + the frame count (black, 16, is not a count),
    /// failing after `fail_after` frames.
    struct Synthetic {
        mode: CameraMode,
        buffer: Vec<u8>,
        count: u8,
        fail_after: Option<u8>,
        interval: Duration,
    }

    impl FrameGrabber for Synthetic {
        fn mode(&self) -> CameraMode {
            self.mode
        }

        fn name(&self) -> String {
            "synthetic".into()
        }

        fn grab(&mut self) -> Result<RawFrame<'_>, CameraError> {
            thread::sleep(self.interval);
            if self.fail_after.is_some_and(|n| self.count >= n) {
                return Err(CameraError::Stopped {
                    detail: "unplugged".into(),
                });
            }
            self.count = self.count.wrapping_add(1);
            // Every luma byte carries the count; chroma neutral.
            let luma = self.count.wrapping_add(100);
            for pair in self.buffer.chunks_exact_mut(4) {
                pair.copy_from_slice(&[luma, 128, luma, 128]);
            }
            Ok(RawFrame {
                format: self.mode.pixel_format,
                width: self.mode.width,
                height: self.mode.height,
                stride: None,
                data: &self.buffer,
            })
        }
    }

    fn synthetic(fail_after: Option<u8>) -> Synthetic {
        let mode = CameraMode {
            pixel_format: PixelFormat::Yuyv,
            width: 64,
            height: 48,
            fps: 100,
        };
        Synthetic {
            mode,
            buffer: vec![0; 64 * 48 * 2],
            count: 0,
            fail_after,
            interval: Duration::from_millis(2),
        }
    }

    /// Pulls until `done` holds for a frame, or panics after a few seconds.
    fn pull_until(source: &mut CameraSource, done: impl Fn(&VideoFrame) -> bool) -> VideoFrame {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let frame = source.next_frame().unwrap().unwrap();
            if done(&frame) {
                return frame;
            }
            assert!(Instant::now() < deadline, "no such frame came");
            thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn frames_arrive_converted_scaled_and_nominally_timestamped() {
        let format = VideoFormat::new(32, 24, 25).unwrap();
        let mut source = CameraSource::start(format, || Ok(synthetic(None))).unwrap();
        assert_eq!(source.mode().pixel_format, PixelFormat::Yuyv);
        assert_eq!(source.name(), "synthetic");
        assert_eq!(source.format(), format);
        let first = source.next_frame().unwrap().unwrap();
        assert_eq!((first.width(), first.height()), (32, 24));
        assert_eq!(first.timestamp(), Duration::ZERO);
        let frame = pull_until(&mut source, |f| f.y()[0] >= 105);
        // Scaled from 64x48: still flat, the count survives.
        let count = frame.y()[0];
        assert!(frame.y().iter().all(|&p| p == count));
        assert!(frame.u().iter().all(|&p| p == 128));
        let next = source.next_frame().unwrap().unwrap();
        assert_eq!(
            next.timestamp() - frame.timestamp(),
            Duration::from_millis(40)
        );
        assert!(source.captured().0 >= 5);
        assert!(source.failure().is_none());
    }

    #[test]
    fn only_the_latest_frame_is_kept() {
        let format = VideoFormat::new(64, 48, 30).unwrap();
        let mut source = CameraSource::start(format, || Ok(synthetic(None))).unwrap();
        let seen = pull_until(&mut source, |f| f.y()[0] >= 101).y()[0];
        // The camera runs on while nobody pulls; one pull then skips to its latest frame.
        let before = source.captured().0;
        let deadline = Instant::now() + Duration::from_secs(5);
        while source.captured().0 < before + 10 {
            assert!(Instant::now() < deadline, "the camera stalled");
            thread::sleep(Duration::from_millis(1));
        }
        let frame = source.next_frame().unwrap().unwrap();
        assert!(u64::from(frame.y()[0]) >= before + 110, "{before}");
        assert!(frame.y()[0] > seen + 9);
        // Pulling faster than the camera repeats the latest frame rather than waiting.
        let again = source.next_frame().unwrap().unwrap();
        assert!(again.y()[0] >= frame.y()[0]);
    }

    #[test]
    fn a_camera_that_stops_gives_way_to_the_placeholder() {
        let format = VideoFormat::new(64, 48, 30).unwrap();
        let mut source = CameraSource::start(format, || Ok(synthetic(Some(3)))).unwrap();
        let (told_tx, told) = mpsc::channel();
        source.on_failure(move |e| {
            let _ = told_tx.send(e.clone());
        });
        let placeholder = placeholder_frame(64, 48).unwrap();
        let frame = pull_until(&mut source, |f| f.as_bytes() == placeholder.as_bytes());
        assert_eq!(frame.width(), 64);
        assert!(matches!(
            source.failure(),
            Some(CameraError::Stopped { .. })
        ));
        // And it stays.
        let next = source.next_frame().unwrap().unwrap();
        assert_eq!(next.as_bytes(), placeholder.as_bytes());
        // The handler was told once; one given afterwards is told at once.
        let reason = told.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(
            reason.to_string(),
            "the camera stopped delivering pictures (unplugged)"
        );
        assert!(told.try_recv().is_err());
        let (late_tx, late) = mpsc::channel();
        source.on_failure(move |e| {
            let _ = late_tx.send(e.clone());
        });
        assert_eq!(late.try_recv().ok(), Some(reason));
    }

    #[test]
    fn unconvertible_frames_are_skipped_and_counted() {
        struct Short(u32);
        impl FrameGrabber for Short {
            fn mode(&self) -> CameraMode {
                CameraMode {
                    pixel_format: PixelFormat::Mjpeg,
                    width: 64,
                    height: 48,
                    fps: 30,
                }
            }
            fn name(&self) -> String {
                "broken".into()
            }
            fn grab(&mut self) -> Result<RawFrame<'_>, CameraError> {
                thread::sleep(Duration::from_millis(1));
                self.0 += 1;
                Ok(RawFrame {
                    format: PixelFormat::Mjpeg,
                    width: 64,
                    height: 48,
                    stride: None,
                    data: &[0xFF, 0xD8, 0x00],
                })
            }
        }
        let format = VideoFormat::new(64, 48, 30).unwrap();
        let mut source = CameraSource::start(format, || Ok(Short(0))).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while source.captured().1 < 3 {
            assert!(Instant::now() < deadline);
            thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(source.captured().0, 0);
        // Nothing usable yet: black, not an error.
        let frame = source.next_frame().unwrap().unwrap();
        assert!(frame.y().iter().all(|&p| p == 16));
    }

    #[test]
    fn other_aspect_ratios_are_cropped_in_the_middle() {
        // 8x4, luma = column number: a square crop keeps columns 2..6.
        let y: Vec<u8> = (0..4).flat_map(|_| 0..8u8).collect();
        let u: Vec<u8> = (0..2).flat_map(|_| 10..14u8).collect();
        let frame = VideoFrame::from_planes(8, 4, &y, &u, &u, Duration::ZERO).unwrap();
        let square = crop_to_aspect(frame.clone(), 2, 2);
        assert_eq!((square.width(), square.height()), (4, 4));
        assert_eq!(&square.y()[..4], &[2, 3, 4, 5]);
        assert_eq!(square.u(), &[11, 12, 11, 12]);
        // Taller than wanted: rows are cut instead (8x8, luma = row number, to 4:1 keeps rows
        // 2 and 3: the middle, moved to an even row for the chroma).
        let rows: Vec<u8> = (0..8u8).flat_map(|r| [r; 8]).collect();
        let tall =
            VideoFrame::from_planes(8, 8, &rows, &[128; 16], &[128; 16], Duration::ZERO).unwrap();
        let wide = crop_to_aspect(tall, 4, 1);
        assert_eq!((wide.width(), wide.height()), (8, 2));
        assert_eq!(wide.y(), &[[2u8; 8], [3u8; 8]].concat()[..]);
        // The same ratio (within 1 %) is left alone.
        assert_eq!(crop_to_aspect(frame.clone(), 4, 2), frame);
    }

    #[test]
    fn open_failures_are_returned() {
        let format = VideoFormat::new(64, 48, 30).unwrap();
        let busy = CameraSource::start(format, || Err::<Synthetic, _>(CameraError::Busy));
        assert_eq!(busy.unwrap_err(), CameraError::Busy);
        assert_eq!(
            CameraError::Busy.to_string(),
            "the camera is in use by another program"
        );
    }
}
