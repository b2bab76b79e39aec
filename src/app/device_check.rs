//! The Settings page's look at the machine's devices: the lists to choose from, and, while the
//! page is open, the chosen microphone's level and the chosen camera's picture.
//!
//! Listing and opening devices block (PulseAudio answers in milliseconds, a camera can take a
//! second), so [`list_devices`] runs on a blocking thread and [`DeviceCheck`] owns a thread of
//! its own. The window reads the level and the picture from a [`DevicePreview`] on its own
//! timer (DESIGN.md rule 4): nothing here calls into the UI.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use callisto_media::audio::{AudioFormat, AudioSource};
use callisto_media::device::{audio_devices, AudioDeviceInfo, DeviceCapture, Direction};
use callisto_media::video::camera::{cameras, CameraInfo, CameraSource};
use callisto_media::video::{FrameSlot, VideoFormat, VideoSource};
use tokio::sync::mpsc;

/// The devices found, and what went wrong finding them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceLists {
    pub inputs: Vec<AudioDeviceInfo>,
    pub outputs: Vec<AudioDeviceInfo>,
    pub cameras: Vec<CameraInfo>,
    /// Problems in words ("No sound system: …"); empty when all was found.
    pub problems: Vec<String>,
}

/// Asks the sound system and the cameras what there is. Blocks.
pub fn list_devices() -> DeviceLists {
    let mut lists = DeviceLists::default();
    match audio_devices() {
        Ok(devices) => {
            for device in devices {
                match device.direction {
                    Direction::Input => lists.inputs.push(device),
                    Direction::Output => lists.outputs.push(device),
                }
            }
        }
        Err(error) => lists.problems.push(format!("No sound devices: {error}.")),
    }
    match cameras() {
        Ok(found) => lists.cameras = found,
        Err(error) => lists.problems.push(format!("No cameras: {error}.")),
    }
    lists
}

/// How often the lists are asked for again while the Settings page is open.
pub const RELIST_EVERY: Duration = Duration::from_secs(2);

/// The device lists kept current while the Settings page is open: `list` runs now and again
/// `every` after each run ends (on a blocking thread), and each result that differs from the last one sent
/// goes to `lists` — a headset plugged in or a camera connected shows up, and one pulled out
/// goes away, without reopening the page. Dropping the watch stops it.
pub struct DeviceWatch {
    task: tokio::task::JoinHandle<()>,
}

impl DeviceWatch {
    /// Starts watching; needs a tokio runtime.
    pub fn start(
        list: impl Fn() -> DeviceLists + Send + Sync + 'static,
        every: Duration,
        lists: mpsc::UnboundedSender<DeviceLists>,
    ) -> DeviceWatch {
        let list = Arc::new(list);
        let task = tokio::spawn(async move {
            let mut sent: Option<DeviceLists> = None;
            loop {
                let list = list.clone();
                let Ok(found) = tokio::task::spawn_blocking(move || list()).await else {
                    return;
                };
                if sent.as_ref() != Some(&found) {
                    if lists.send(found.clone()).is_err() {
                        return;
                    }
                    sent = Some(found);
                }
                tokio::time::sleep(every).await;
            }
        });
        DeviceWatch { task }
    }
}

impl Drop for DeviceWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the window shows while the Settings page is open; cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct DevicePreview {
    /// The microphone's level from 0 to 1 (an `f32`'s bits).
    level: Arc<AtomicU32>,
    /// The camera's latest picture.
    pub camera: FrameSlot,
}

impl DevicePreview {
    /// The microphone's level now, from 0 (silence, or below -60 dBFS) to 1 (full scale).
    pub fn level(&self) -> f32 {
        f32::from_bits(self.level.load(Ordering::Relaxed))
    }

    fn set_level(&self, level: f32) {
        self.level.store(level.to_bits(), Ordering::Relaxed);
    }
}

impl PartialEq for DevicePreview {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.level, &other.level) && self.camera == other.camera
    }
}

/// The microphone's level meter and the camera's preview, running until dropped.
#[derive(Debug)]
pub struct DeviceCheck {
    preview: DevicePreview,
    stop: Arc<AtomicBool>,
}

/// How the meter falls back after a peak, per 20 ms frame (about 20 dB a second).
const FALL_PER_FRAME: f32 = (20.0 / 60.0) / 50.0;
/// The preview's picture: small, and enough frames to see movement.
const PREVIEW: (u32, u32, u32) = (320, 240, 15);

impl DeviceCheck {
    /// Opens the microphone `input` and the camera `camera` (`None`: the defaults) on a thread
    /// of its own. What cannot be opened is said on `problems`, once.
    pub fn start(
        input: Option<String>,
        camera: Option<u32>,
        problems: mpsc::UnboundedSender<String>,
    ) -> DeviceCheck {
        Self::start_with(
            move |format| open_microphone(input.as_deref(), format),
            move |format| open_camera(camera, format),
            problems,
        )
    }

    /// [`DeviceCheck::start`] with the sound from `open_microphone` (given the meter's format)
    /// and the picture from `open_camera` (given the preview's size and rate) instead of the
    /// devices.
    fn start_with(
        open_microphone: impl FnOnce(AudioFormat) -> Result<Box<dyn AudioSource>, String>
            + Send
            + 'static,
        open_camera: impl FnOnce(VideoFormat) -> Result<Box<dyn VideoSource>, String> + Send + 'static,
        problems: mpsc::UnboundedSender<String>,
    ) -> DeviceCheck {
        let preview = DevicePreview::default();
        let stop = Arc::new(AtomicBool::new(false));
        let check = DeviceCheck {
            preview: preview.clone(),
            stop: Arc::clone(&stop),
        };
        let spawned = std::thread::Builder::new()
            .name("device-check".into())
            .spawn(move || run(open_microphone, open_camera, preview, stop, problems));
        if let Err(error) = spawned {
            tracing::warn!(%error, "the settings' device check did not start");
        }
        check
    }

    pub fn preview(&self) -> &DevicePreview {
        &self.preview
    }
}

impl Drop for DeviceCheck {
    /// Stops the thread; it closes the devices within a frame.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Microphone `input` (`None`: the default) in `format`, its events ignored.
fn open_microphone(
    input: Option<&str>,
    format: AudioFormat,
) -> Result<Box<dyn AudioSource>, String> {
    let capture =
        DeviceCapture::open(input, format, Box::new(|_| {})).map_err(|e| e.to_string())?;
    Ok(Box::new(capture))
}

/// Camera `index` (`None`: the default) at `format`.
fn open_camera(index: Option<u32>, format: VideoFormat) -> Result<Box<dyn VideoSource>, String> {
    let source = CameraSource::open(index, format).map_err(|e| e.to_string())?;
    Ok(Box::new(source))
}

fn run(
    open_microphone: impl FnOnce(AudioFormat) -> Result<Box<dyn AudioSource>, String>,
    open_camera: impl FnOnce(VideoFormat) -> Result<Box<dyn VideoSource>, String>,
    preview: DevicePreview,
    stop: Arc<AtomicBool>,
    problems: mpsc::UnboundedSender<String>,
) {
    let mut microphone = match open_microphone(AudioFormat::MONO_48K) {
        Ok(capture) => Some(capture),
        Err(error) => {
            let _ = problems.send(format!("The microphone cannot be opened: {error}."));
            None
        }
    };
    let (width, height, fps) = PREVIEW;
    let mut picture = match VideoFormat::new(width, height, fps)
        .map_err(|e| e.to_string())
        .and_then(open_camera)
    {
        Ok(source) => Some(source),
        Err(error) => {
            let _ = problems.send(format!("No camera preview: {error}."));
            None
        }
    };
    if microphone.is_none() && picture.is_none() {
        return;
    }
    let frame = Duration::from_millis(20);
    let picture_every = 1000 / fps / 20;
    let mut next = Instant::now();
    let mut level = 0.0f32;
    let mut samples = vec![0i16; AudioFormat::MONO_48K.frame_len()];
    for count in 0u32.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if let Some(mic) = microphone.as_mut() {
            if mic.read(&mut samples).is_ok() {
                level = meter_level(level, &samples);
                preview.set_level(level);
            }
        }
        if count % picture_every.max(1) == 0 {
            if let Some(Ok(Some(frame))) = picture.as_mut().map(VideoSource::next_frame) {
                preview.camera.put(&frame);
            }
        }
        next += frame;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

/// The meter after one more frame: up at once to the frame's peak, down slowly from the last
/// value. The scale is the peak in dBFS from -60 (0) to 0 (1).
pub fn meter_level(previous: f32, samples: &[i16]) -> f32 {
    let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
    let now = if peak == 0 {
        0.0
    } else {
        let dbfs = 20.0 * (f32::from(peak) / 32768.0).log10();
        ((dbfs + 60.0) / 60.0).clamp(0.0, 1.0)
    };
    now.max(previous - FALL_PER_FRAME).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Lists with `outputs` speakers named `out0`, `out1`…
    fn lists_with(outputs: usize) -> DeviceLists {
        DeviceLists {
            outputs: (0..outputs)
                .map(|n| AudioDeviceInfo {
                    name: format!("out{n}"),
                    id: format!("out{n}"),
                    direction: Direction::Output,
                    is_default: n == 0,
                    host: "PulseAudio".into(),
                })
                .collect(),
            ..DeviceLists::default()
        }
    }

    #[tokio::test]
    async fn a_device_plugged_in_while_the_page_is_open_shows_up_and_unchanged_lists_are_not_sent()
    {
        let asked = Arc::new(AtomicUsize::new(0));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let counter = asked.clone();
        // One speaker for the first three looks, then a second one is plugged in.
        let watch = DeviceWatch::start(
            move || {
                lists_with(if counter.fetch_add(1, Ordering::SeqCst) < 3 {
                    1
                } else {
                    2
                })
            },
            Duration::from_millis(5),
            tx,
        );
        let wait = Duration::from_secs(5);
        let first = tokio::time::timeout(wait, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first, lists_with(1));
        // The same list looked at twice more is not sent again: the next one is the new list.
        let next = tokio::time::timeout(wait, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(next, lists_with(2));
        assert!(asked.load(Ordering::SeqCst) >= 4);
        // Closing the page stops the watch (its sender goes with it).
        drop(watch);
        let after = tokio::time::timeout(wait, rx.recv()).await.unwrap();
        assert_eq!(after, None);
    }

    /// The preview shows the camera's pictures as they come (here the test pattern in its
    /// place), at the preview's size, while the check runs, and none once it is dropped.
    #[test]
    fn the_preview_shows_the_cameras_pictures_while_the_check_runs() {
        use callisto_media::video::{read_stamp, TestPattern};
        let (problems_tx, _problems) = mpsc::unbounded_channel();
        let check = DeviceCheck::start_with(
            |_| Err("none in this test".into()),
            |format| {
                Ok(Box::new(
                    TestPattern::new(format, 7).map_err(|e| e.to_string())?,
                ))
            },
            problems_tx,
        );
        let slot = check.preview().camera.clone();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut frames = Vec::new();
        let mut seen = slot.generation();
        while frames.len() < 3 && Instant::now() < deadline {
            if let Some((generation, frame)) = slot.take_newer(seen) {
                seen = generation;
                frames.push(frame);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(frames.len(), 3, "pictures in the preview");
        let stamps: Vec<_> = frames
            .iter()
            .map(|f| read_stamp(f).expect("a stamp"))
            .collect();
        assert!(stamps.iter().all(|s| s.identity == 7), "{stamps:?}");
        assert!(
            stamps.windows(2).all(|p| p[1].frame > p[0].frame),
            "{stamps:?}"
        );
        assert_eq!(
            (frames[0].width(), frames[0].height()),
            (PREVIEW.0, PREVIEW.1)
        );
        // Closed with the page: no more pictures.
        drop(check);
        std::thread::sleep(Duration::from_millis(300));
        let last = slot.generation();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(slot.generation(), last);
    }

    /// The meter shows the level of what the microphone hears (here a tone in its place, at
    /// -10 dBFS: 5/6 of the scale); a camera that cannot be opened is said once, and the meter
    /// runs alone.
    #[test]
    fn the_meter_shows_the_microphones_level_without_a_camera() {
        use callisto_media::audio::ToneSource;
        let (problems_tx, mut problems) = mpsc::unbounded_channel();
        let check = DeviceCheck::start_with(
            |format| Ok(Box::new(ToneSource::with_dbfs(format, 440.0, -10.0))),
            |_| Err("no camera found".into()),
            problems_tx,
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while check.preview().level() < 0.8 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let level = check.preview().level();
        assert!((level - 5.0 / 6.0).abs() < 0.01, "{level}");
        assert_eq!(
            problems.try_recv().ok().as_deref(),
            Some("No camera preview: no camera found.")
        );
        assert!(problems.try_recv().is_err(), "the microphone opened");
    }

    #[test]
    fn the_meter_rises_at_once_and_falls_slowly() {
        let silence = vec![0i16; 960];
        let full = vec![i16::MAX; 960];
        // -20 dBFS: a third of the way down the scale.
        let quiet = vec![3277i16; 960];
        assert_eq!(meter_level(0.0, &silence), 0.0);
        assert!((meter_level(0.0, &full) - 1.0).abs() < 1e-3);
        let level = meter_level(0.0, &quiet);
        assert!((level - 2.0 / 3.0).abs() < 0.01, "{level}");
        // After the peak, silence lowers it a step a frame, not at once.
        let after = meter_level(1.0, &silence);
        assert!(after < 1.0 && after > 0.9, "{after}");
        // About 20 dB a second: a second of silence takes a third of the scale.
        let mut falling = 1.0;
        for _ in 0..50 {
            falling = meter_level(falling, &silence);
        }
        assert!((falling - 2.0 / 3.0).abs() < 0.01, "{falling}");
        // Never below zero.
        assert_eq!(meter_level(0.001, &silence), 0.0);
    }
}
