//! The conference's video for peers that take one stream: every participant's latest picture,
//! composed into one [`Mosaic`] on a thread of its own at the mosaic's rate, with the active
//! speaker largest. Every leg sends that mosaic (scaled to its own size when it differs), so
//! it is drawn once per frame however many legs there are; each leg's session encodes it.
//!
//! A leg's session gets a [`MosaicSource`] (what it sends) and a [`TileSink`] (where its
//! decoded pictures go) from [`MosaicBridge::join`]; the tile leaves when the sink is dropped.
//! The host's own camera or pattern is the local picture, pulled by the mosaic thread.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::mosaic::Mosaic;
use crate::video::{scale_i420, VideoError, VideoFormat, VideoFrame, VideoSink, VideoSource};

/// No active speaker (the audio bridge has not chosen one yet).
pub(super) const NO_SPEAKER: u64 = u64::MAX;

/// The tag of the local participant's picture, as in the audio bridge.
const LOCAL_TAG: u64 = 0;

/// A running mosaic. Clones share it; the thread stops when the last clone is dropped or on
/// [`MosaicBridge::stop`].
#[derive(Clone)]
pub struct MosaicBridge {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for MosaicBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MosaicBridge")
            .field("format", &self.handle.shared.format)
            .field("tiles", &self.handle.shared.lock().tiles.len())
            .finish()
    }
}

struct Handle {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Handle {
    fn stop(&self) {
        self.shared.running.store(false, Ordering::Release);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Shared {
    format: VideoFormat,
    state: Mutex<State>,
    /// The host's own picture, read by the mosaic thread only.
    local: Mutex<Option<Box<dyn VideoSource>>>,
    /// The latest mosaic.
    output: Mutex<Option<Arc<VideoFrame>>>,
    /// The host's latest picture alone, for legs that are sent the others' pictures as
    /// streams of their own ([`MosaicSource::host_only`]).
    host: Mutex<Option<Arc<VideoFrame>>>,
    /// The active speaker's tag ([`NO_SPEAKER`] when none), written by the audio bridge.
    speaker: Arc<AtomicU64>,
    running: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Default)]
struct State {
    tiles: Vec<Tile>,
    next_id: u64,
}

/// One leg's picture in the mosaic.
struct Tile {
    id: u64,
    tag: u64,
    picture: Option<Arc<VideoFrame>>,
}

impl MosaicBridge {
    /// Starts an empty mosaic of `format`'s size, drawn `format.fps` times a second; the
    /// active speaker is whichever tag `speaker` holds.
    pub(super) fn start(format: VideoFormat, speaker: Arc<AtomicU64>) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            format,
            state: Mutex::new(State::default()),
            local: Mutex::new(None),
            output: Mutex::new(None),
            host: Mutex::new(None),
            speaker,
            running: AtomicBool::new(true),
        });
        let mosaic = Mosaic::new(format.width, format.height)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("mosaic".into())
                .spawn(move || run(shared, mosaic))?
        };
        Ok(MosaicBridge {
            handle: Arc::new(Handle {
                shared,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// The mosaic's size and rate.
    pub fn format(&self) -> VideoFormat {
        self.handle.shared.format
    }

    /// A leg's video: the mosaic it sends, in `format` (scaled when the size differs from the
    /// mosaic's), and where its decoded pictures go. `tag` is the leg's tag in the audio bridge,
    /// so the active speaker's picture is drawn largest. The tile leaves when the sink is
    /// dropped.
    pub fn join(&self, tag: u64, format: VideoFormat) -> (MosaicSource, TileSink) {
        let shared = &self.handle.shared;
        let mut state = shared.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.tiles.push(Tile {
            id,
            tag,
            picture: None,
        });
        let source = MosaicSource {
            shared: shared.clone(),
            format,
            index: 0,
            scaled: None,
            host_only: Box::new(|| false),
        };
        (
            source,
            TileSink {
                shared: shared.clone(),
                id,
            },
        )
    }

    /// Makes `source` (the host's camera, pattern or file) the local participant's picture,
    /// replacing any before.
    pub fn set_local(&self, source: Box<dyn VideoSource>) {
        *self
            .handle
            .shared
            .local
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(source);
    }

    /// Pictures the next mosaic draws (the local one included).
    pub fn pictures(&self) -> usize {
        let shared = &self.handle.shared;
        let local = usize::from(shared.local.lock().is_ok_and(|l| l.is_some()));
        local
            + shared
                .lock()
                .tiles
                .iter()
                .filter(|t| t.picture.is_some())
                .count()
    }

    /// Stops the mosaic thread; sources go on sending the last mosaic.
    pub fn stop(&self) {
        self.handle.stop();
    }
}

fn run(shared: Arc<Shared>, mut mosaic: Mosaic) {
    let interval = shared.format.frame_interval();
    let mut next = Instant::now();
    while shared.running.load(Ordering::Acquire) {
        let now = Instant::now();
        if next > now {
            std::thread::sleep((next - now).min(Duration::from_millis(100)));
            continue;
        }
        next = if now - next > 4 * interval {
            now + interval
        } else {
            next + interval
        };
        let local = shared
            .local
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .and_then(|source| source.next_frame().ok().flatten());
        let local = local.map(Arc::new);
        if let Some(picture) = &local {
            *shared.host.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(picture));
        }
        let mut pictures: Vec<(u64, Arc<VideoFrame>)> =
            local.map(|frame| (LOCAL_TAG, frame)).into_iter().collect();
        pictures.extend(
            shared
                .lock()
                .tiles
                .iter()
                .filter_map(|t| t.picture.clone().map(|p| (t.tag, p))),
        );
        let speaker = shared.speaker.load(Ordering::Relaxed);
        // The speaker first; everyone else keeps their order.
        pictures.sort_by_key(|(tag, _)| *tag != speaker);
        let frames: Vec<&VideoFrame> = pictures.iter().map(|(_, p)| p.as_ref()).collect();
        let composed = Arc::new(mosaic.compose(&frames).clone());
        *shared.output.lock().unwrap_or_else(|e| e.into_inner()) = Some(composed);
    }
}

/// What a leg sends: the latest mosaic at the leg's size, timestamped by the leg's own frame
/// count (black until the first mosaic is drawn) — or, while its `host_only` switch is on,
/// the host's own picture alone (a leg that is sent every other participant as a stream of
/// its own).
pub struct MosaicSource {
    shared: Arc<Shared>,
    format: VideoFormat,
    index: u64,
    /// The last picture scaled to this leg's size, and the picture it was scaled from.
    scaled: Option<(Arc<VideoFrame>, VideoFrame)>,
    host_only: Box<dyn Fn() -> bool + Send>,
}

impl MosaicSource {
    /// Sends the host's picture alone instead of the mosaic while `switch` says so.
    #[must_use]
    pub fn host_only(mut self, switch: impl Fn() -> bool + Send + 'static) -> Self {
        self.host_only = Box::new(switch);
        self
    }
}

impl VideoSource for MosaicSource {
    fn format(&self) -> VideoFormat {
        self.format
    }

    fn next_frame(&mut self) -> Result<Option<VideoFrame>, VideoError> {
        let picture = if (self.host_only)() {
            &self.shared.host
        } else {
            &self.shared.output
        };
        let latest = picture.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let (width, height) = (self.format.width, self.format.height);
        let mut frame = match latest {
            None => VideoFrame::black(width, height)?,
            Some(mosaic) if (mosaic.width(), mosaic.height()) == (width, height) => {
                mosaic.as_ref().clone()
            }
            Some(mosaic) => match &self.scaled {
                Some((from, scaled)) if Arc::ptr_eq(from, &mosaic) => scaled.clone(),
                _ => {
                    let scaled = scale_i420(&mosaic, width, height)?;
                    self.scaled = Some((mosaic, scaled.clone()));
                    scaled
                }
            },
        };
        frame.set_timestamp(self.format.timestamp_of(self.index));
        self.index += 1;
        Ok(Some(frame))
    }
}

/// Where a leg's decoded pictures go: its tile in the mosaic. Dropping it removes the tile.
pub struct TileSink {
    shared: Arc<Shared>,
    id: u64,
}

impl VideoSink for TileSink {
    fn consume(&mut self, frame: &VideoFrame) -> Result<(), VideoError> {
        let picture = Arc::new(frame.clone());
        let mut state = self.shared.lock();
        if let Some(tile) = state.tiles.iter_mut().find(|t| t.id == self.id) {
            tile.picture = Some(picture);
        }
        Ok(())
    }
}

impl Drop for TileSink {
    fn drop(&mut self) {
        self.shared.lock().tiles.retain(|t| t.id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conference::mosaic::mosaic_stamps;
    use crate::video::TestPattern;

    fn format(width: u32, height: u32) -> VideoFormat {
        VideoFormat::new(width, height, 30).unwrap()
    }

    fn picture(identity: u16) -> VideoFrame {
        TestPattern::new(format(640, 480), identity)
            .unwrap()
            .next_frame()
            .unwrap()
            .unwrap()
    }

    /// The identities readable in a mosaic's cells for `count` pictures, cell by cell.
    fn identities(frame: &VideoFrame, count: usize) -> Vec<Option<u16>> {
        mosaic_stamps(frame, &vec![(640, 480); count])
            .into_iter()
            .map(|s| s.map(|s| s.identity))
            .collect()
    }

    /// Waits until `source` sends a mosaic of `count` pictures whose cells read `want`.
    fn wait_for(source: &mut MosaicSource, count: usize, want: &[Option<u16>]) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let frame = source.next_frame().unwrap().unwrap();
            let got = identities(&frame, count);
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the mosaic reads {got:?}, not {want:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn legs_send_a_mosaic_of_everyone_with_the_speaker_first() {
        let speaker = Arc::new(AtomicU64::new(NO_SPEAKER));
        let bridge = MosaicBridge::start(format(640, 480), speaker.clone()).unwrap();
        let mut local = TestPattern::new(format(640, 480), 1).unwrap();
        let _ = local.next_frame();
        bridge.set_local(Box::new(local));
        let (mut a_source, mut a_tile) = bridge.join(7, format(640, 480));
        let (_b_source, mut b_tile) = bridge.join(9, format(640, 480));
        // Before any picture arrives, only the host is drawn.
        wait_for(&mut a_source, 1, &[Some(1)]);
        a_tile.consume(&picture(2)).unwrap();
        b_tile.consume(&picture(3)).unwrap();
        wait_for(&mut a_source, 3, &[Some(1), Some(2), Some(3)]);
        speaker.store(9, Ordering::Relaxed);
        wait_for(&mut a_source, 3, &[Some(3), Some(1), Some(2)]);
        // A leg that leaves is gone from the next mosaic.
        drop(b_tile);
        wait_for(&mut a_source, 2, &[Some(1), Some(2)]);
        assert_eq!(bridge.pictures(), 2);
    }

    #[test]
    fn a_leg_switched_to_the_host_alone_sends_the_hosts_picture() {
        let speaker = Arc::new(AtomicU64::new(NO_SPEAKER));
        let bridge = MosaicBridge::start(format(640, 480), speaker).unwrap();
        bridge.set_local(Box::new(TestPattern::new(format(640, 480), 1).unwrap()));
        let switch = Arc::new(AtomicBool::new(true));
        let (source, mut tile) = bridge.join(7, format(320, 240));
        let on = switch.clone();
        let mut source = source.host_only(move || on.load(Ordering::Relaxed));
        tile.consume(&picture(2)).unwrap();
        // The host's picture whole, scaled to the leg's size: its stamp reads in full.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let frame = source.next_frame().unwrap().unwrap();
            assert_eq!((frame.width(), frame.height()), (320, 240));
            if identities(&frame, 1) == [Some(1)] {
                break;
            }
            assert!(Instant::now() < deadline, "no host picture");
            std::thread::sleep(Duration::from_millis(10));
        }
        // Switched back, it sends the mosaic of both.
        switch.store(false, Ordering::Relaxed);
        wait_for(&mut source, 2, &[Some(1), Some(2)]);
    }

    #[test]
    fn a_leg_of_another_size_gets_the_mosaic_scaled_with_its_own_timestamps() {
        let speaker = Arc::new(AtomicU64::new(NO_SPEAKER));
        let bridge = MosaicBridge::start(format(640, 480), speaker).unwrap();
        let (mut small, mut tile) = bridge.join(3, format(320, 240));
        assert_eq!(small.format(), format(320, 240));
        let black = small.next_frame().unwrap().unwrap();
        assert_eq!((black.width(), black.height()), (320, 240));
        tile.consume(&picture(5)).unwrap();
        wait_for(&mut small, 1, &[Some(5)]);
        let (a, b) = (
            small.next_frame().unwrap().unwrap(),
            small.next_frame().unwrap().unwrap(),
        );
        let index = (b.timestamp().as_secs_f64() * 30.0).round() as u64;
        assert_eq!(b.timestamp(), format(320, 240).timestamp_of(index));
        assert_eq!(a.timestamp(), format(320, 240).timestamp_of(index - 1));
        bridge.stop();
        // A stopped mosaic still gives its last picture.
        wait_for(&mut small, 1, &[Some(5)]);
    }
}
