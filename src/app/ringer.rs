//! The ringtone: while an incoming call waits, [`Ringer`] plays [`Ringtone`] on a playback
//! device from a thread of its own, and stops within a frame once dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use callisto_media::audio::{AudioFormat, AudioSink, AudioSource, Ringtone};
use callisto_media::device::DevicePlayback;

/// The ring's level: clearly heard, well below a call's loudest speech.
const RING_DBFS: f64 = -12.0;

/// A ringtone playing until dropped.
#[derive(Debug)]
pub struct Ringer {
    stop: Arc<AtomicBool>,
}

impl Ringer {
    /// Starts the ring on the playback device `device` (its id or name; `None`: the default).
    /// Without a usable device nothing is heard; the reason is logged.
    pub fn start(device: Option<String>) -> Ringer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let spawned = std::thread::Builder::new()
            .name("ringer".into())
            .spawn(move || ring(device, &flag));
        if let Err(error) = spawned {
            tracing::warn!(%error, "the ringtone did not start");
        }
        Ringer { stop }
    }
}

impl Drop for Ringer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn ring(device: Option<String>, stop: &AtomicBool) {
    let format = AudioFormat::MONO_48K;
    let mut speaker = match DevicePlayback::open(device.as_deref(), format, Box::new(|_| {})) {
        Ok(speaker) => speaker,
        Err(error) => {
            tracing::warn!(%error, "no ringtone: the playback device cannot be opened");
            return;
        }
    };
    let mut tone = Ringtone::with_dbfs(format, RING_DBFS);
    let frame = Duration::from_millis(20);
    // Two frames ahead of the clock: a thread woken late on a busy machine does not leave
    // the device short.
    let mut next = Instant::now()
        .checked_sub(2 * frame)
        .unwrap_or_else(Instant::now);
    while !stop.load(Ordering::Relaxed) {
        let Ok(Some(samples)) = tone.read_frame() else {
            break;
        };
        if let Err(error) = speaker.write(&samples) {
            tracing::warn!(%error, "the ringtone stopped");
            break;
        }
        next += frame;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let _ = speaker.finish();
}
