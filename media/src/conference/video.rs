//! The conference's video for peers that take one stream: every other participant's latest
//! picture, composed into a [`Mosaic`] on a thread of its own at the mosaic's rate, with the
//! active speaker largest. Nobody is sent their own picture (as nobody hears themselves), so
//! each leg's mosaic leaves out its own tile: one drawing per leg that is sent the mosaic, on
//! each tick, and none while every leg is sent the host's picture alone. A leg sends its
//! mosaic scaled to its own size when that differs. A leg whose source is
//! [`MosaicSource::encoded`] (what the engine gives every leg) does not encode it either: the
//! mosaic thread encodes each picture once per size, rate, packetization limit and drawing
//! (the host's picture alone is one drawing, shared by every leg switched to it) and hands the
//! access units to every such leg's [`EncodedFeed`]; the leg only packetizes them. Keyframe
//! requests of any leg of a group make the group's next picture an IDR; the group's bitrate is
//! the lowest its legs ask.
//!
//! A leg's session gets a [`MosaicSource`] (what it sends) and a [`TileSink`] (where its
//! decoded pictures go) from [`MosaicBridge::join`]; the tile leaves when the sink is dropped.
//! The host's own camera or pattern is the local picture, pulled by the mosaic thread.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::mosaic::{Mosaic, ScaledPictures};
use crate::video::encoded_feed::FeedShared;
use crate::video::h264::{H264Encoder, H264EncoderConfig};
use crate::video::{
    scale_i420, EncodedFeed, VideoError, VideoFormat, VideoFrame, VideoSink, VideoSource,
};

/// The largest NAL unit of a picture encoded for packetization mode 0 (what one RTP packet
/// carries, as a leg's own encoder would cut it).
const SINGLE_NAL_LIMIT: usize = crate::video::stream_thread::RTP_PAYLOAD_MTU;

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
    /// The legs' shares of the mosaic, one per [`MosaicSource`].
    views: Mutex<Vec<Weak<View>>>,
    /// The host's latest picture alone, for legs that are sent the others' pictures as
    /// streams of their own ([`MosaicSource::host_only`]).
    host: Mutex<Option<Arc<VideoFrame>>>,
    /// The active speaker's tag ([`NO_SPEAKER`] when none), written by the audio bridge.
    speaker: Arc<AtomicU64>,
    running: AtomicBool,
    /// The legs that send the pictures encoded here, once per group (see [`encode_feeds`]).
    feeds: Mutex<Vec<FeedEntry>>,
}

/// What a leg's sender picture switch says: the host's picture alone instead of the mosaic.
type HostOnly = Arc<dyn Fn() -> bool + Send + Sync>;

/// A leg's share of the mosaic: every picture but its own, or the host's alone.
struct View {
    /// The leg's tag: its picture is left out.
    tag: u64,
    host_only: HostOnly,
    /// Whether the mosaic's thread encodes the leg's pictures ([`MosaicSource::encoded`]);
    /// otherwise it leaves the latest drawing in `latest` for the leg to encode.
    encoded: AtomicBool,
    latest: Mutex<Option<Arc<VideoFrame>>>,
}

impl View {
    /// What the leg is sent now.
    fn drawing(&self) -> Drawing {
        if (self.host_only)() {
            Drawing::HostAlone
        } else {
            Drawing::Without(self.tag)
        }
    }
}

/// A picture the mosaic's thread draws for legs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Drawing {
    /// The host's own picture alone (not drawn: as the host's source gives it).
    HostAlone,
    /// Everyone's picture but that of the leg with this tag.
    Without(u64),
}

/// A leg that sends the shared encoded pictures.
struct FeedEntry {
    feed: Weak<FeedShared>,
    view: Arc<View>,
    /// The encoder it was last given units of.
    group: Option<GroupKey>,
}

/// One shared encoder: the size and rate, whether NAL units must fit a packet, and the
/// picture it encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct GroupKey {
    width: u32,
    height: u32,
    /// Encoded on every `n`th tick of the mosaic's: the nearest whole fraction of its rate
    /// that is at least the rate asked for (so legs at 25 and 30 of 30 share one).
    every: u32,
    single_nal: bool,
    drawing: Drawing,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new view of the mosaic for the leg tagged `tag`, drawn for it from the next tick on.
    fn add_view(&self, tag: u64, host_only: HostOnly) -> Arc<View> {
        let view = Arc::new(View {
            tag,
            host_only,
            encoded: AtomicBool::new(false),
            latest: Mutex::new(None),
        });
        let mut views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        views.retain(|view| view.strong_count() > 0);
        views.push(Arc::downgrade(&view));
        view
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
            views: Mutex::new(Vec::new()),
            host: Mutex::new(None),
            speaker,
            running: AtomicBool::new(true),
            feeds: Mutex::new(Vec::new()),
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
    /// mosaic's), and where its decoded pictures go. `tag` is the leg's tag in the audio bridge
    /// (not 0, the host's), so the active speaker's picture is drawn largest and the leg's own
    /// is left out of what it is sent. The tile leaves when the sink is dropped.
    pub fn join(&self, tag: u64, format: VideoFormat) -> (MosaicSource, TileSink) {
        debug_assert_ne!(tag, LOCAL_TAG, "tag 0 is the host's");
        let shared = &self.handle.shared;
        let mut state = shared.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.tiles.push(Tile {
            id,
            tag,
            picture: None,
        });
        drop(state);
        let source = MosaicSource {
            shared: shared.clone(),
            format,
            index: 0,
            scaled: None,
            view: shared.add_view(tag, Arc::new(|| false)),
            feed: None,
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

    /// Whether the local participant's picture is set.
    pub fn has_local(&self) -> bool {
        self.handle
            .shared
            .local
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
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
    let mut encoders: HashMap<GroupKey, SharedEncoder> = HashMap::new();
    let mut index: u64 = 0;
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
        // Each leg's mosaic is drawn when first needed on this tick, once; the drawings share
        // the pictures scaled for their cells.
        let mut drawn: HashMap<u64, Arc<VideoFrame>> = HashMap::new();
        let mut scaled = ScaledPictures::default();
        let mut draw_without = |tag: u64| -> Arc<VideoFrame> {
            let drawing = drawn.entry(tag).or_insert_with(|| {
                let frames: Vec<&VideoFrame> = pictures
                    .iter()
                    .filter(|(of, _)| *of != tag)
                    .map(|(_, p)| p.as_ref())
                    .collect();
                Arc::new(mosaic.compose_with(&frames, &mut scaled).clone())
            });
            Arc::clone(drawing)
        };
        let views: Vec<Arc<View>> = shared
            .views
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for view in views
            .iter()
            .filter(|view| !view.encoded.load(Ordering::Relaxed))
        {
            if let Drawing::Without(tag) = view.drawing() {
                let drawing = draw_without(tag);
                *view.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(drawing);
            }
        }
        encode_feeds(&shared, &mut encoders, &mut draw_without, index);
        index += 1;
    }
}

/// A shared encoder and the bitrate it was last given.
struct SharedEncoder {
    encoder: H264Encoder,
    bitrate: u32,
}

/// Encodes tick `index`'s picture once per [`GroupKey`] the legs with feeds need and hands
/// each unit to every feed of the group. A leg that moves to another group (its host-only
/// switch, its size or rate) starts there at a keyframe; the lowest bitrate a group's legs
/// ask for is used. A group at a fraction of the mosaic's rate is encoded on every `n`th
/// tick only (its pictures keep the ticks' timestamps).
fn encode_feeds(
    shared: &Shared,
    encoders: &mut HashMap<GroupKey, SharedEncoder>,
    draw_without: &mut dyn FnMut(u64) -> Arc<VideoFrame>,
    index: u64,
) {
    let timestamp = shared.format.timestamp_of(index);
    let mosaic_fps = shared.format.fps.max(1);
    let mut groups: HashMap<GroupKey, Vec<Arc<FeedShared>>> = HashMap::new();
    {
        let mut entries = shared.feeds.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|entry| entry.feed.strong_count() > 0);
        for entry in entries.iter_mut() {
            let Some(feed) = entry.feed.upgrade().filter(|feed| feed.is_active()) else {
                continue;
            };
            let (width, height, fps) = feed.layer();
            let key = GroupKey {
                width,
                height,
                every: mosaic_fps / fps.clamp(1, mosaic_fps),
                single_nal: feed.single_nal(),
                drawing: entry.view.drawing(),
            };
            if entry.group != Some(key) {
                entry.group = Some(key);
                EncodedFeed {
                    shared: Arc::clone(&feed),
                }
                .restart();
            }
            groups.entry(key).or_default().push(feed);
        }
    }
    encoders.retain(|key, _| groups.contains_key(key));
    let host = shared
        .host
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    for (key, feeds) in groups {
        if !index.is_multiple_of(u64::from(key.every)) {
            continue;
        }
        let picture = match key.drawing {
            Drawing::HostAlone => host.clone(),
            Drawing::Without(tag) => Some(draw_without(tag)),
        };
        let frame = match picture {
            Some(p) if (p.width(), p.height()) == (key.width, key.height) => Ok(p.as_ref().clone()),
            Some(p) => scale_i420(&p, key.width, key.height),
            None => VideoFrame::black(key.width, key.height),
        };
        let Ok(mut frame) = frame else {
            continue;
        };
        frame.set_timestamp(timestamp);
        // Every feed's wish is read (and forgotten), not only the first.
        let wishes: Vec<bool> = feeds.iter().map(|feed| feed.take_keyframe_wish()).collect();
        let keyframe = wishes.contains(&true);
        let bitrate = feeds.iter().map(|feed| feed.bitrate()).min().unwrap_or(0);
        let encoder = match encoders.entry(key) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let fps = (mosaic_fps + key.every / 2) / key.every;
                let mut config = H264EncoderConfig::new(key.width, key.height, fps, bitrate);
                config.keyframe_interval = Some(fps.saturating_mul(10));
                if key.single_nal {
                    config.max_nal_size = Some(SINGLE_NAL_LIMIT);
                }
                match H264Encoder::new(config) {
                    Ok(encoder) => entry.insert(SharedEncoder { encoder, bitrate }),
                    Err(error) => {
                        tracing::warn!(%error, "the conference's picture cannot be encoded");
                        continue;
                    }
                }
            }
        };
        if u64::from(bitrate.abs_diff(encoder.bitrate)) * 20 >= u64::from(encoder.bitrate.max(1))
            && encoder.encoder.set_bitrate(bitrate).is_ok()
        {
            encoder.bitrate = bitrate;
        }
        if keyframe {
            encoder.encoder.force_keyframe();
        }
        match encoder.encoder.encode(&frame) {
            Ok(Some(unit)) => {
                let unit = Arc::new(unit);
                for feed in &feeds {
                    feed.push(key.single_nal, &unit);
                }
            }
            Ok(None) => {}
            Err(error) => tracing::debug!(%error, "the encoder refused a picture"),
        }
    }
}

/// What a leg sends: the latest mosaic of everyone else at the leg's size, timestamped by the
/// leg's own frame count (black until the first mosaic is drawn) — or, while its `host_only`
/// switch is on, the host's own picture alone (a leg that is sent every other participant as a
/// stream of its own).
pub struct MosaicSource {
    shared: Arc<Shared>,
    format: VideoFormat,
    index: u64,
    /// The last picture scaled to this leg's size, and the picture it was scaled from.
    scaled: Option<(Arc<VideoFrame>, VideoFrame)>,
    view: Arc<View>,
    /// The pictures encoded on the mosaic's thread ([`MosaicSource::encoded`]).
    feed: Option<EncodedFeed>,
}

impl MosaicSource {
    /// Sends the host's picture alone instead of the mosaic while `switch` says so. Give it
    /// before [`MosaicSource::encoded`].
    #[must_use]
    pub fn host_only(mut self, switch: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        debug_assert!(self.feed.is_none(), "host_only is given before encoded");
        self.view = self.shared.add_view(self.view.tag, Arc::new(switch));
        self
    }

    /// Sends the pictures encoded on the mosaic's thread (once per size, rate, cut and drawing:
    /// this leg's mosaic is its own, the host's picture alone is shared) instead of frames to
    /// encode: the leg's sender takes them from [`VideoSource::encoded_feed`], asks for
    /// keyframes, for `bitrate` (at first) and for the cut its call negotiated through it
    /// (`single_nal`, NAL units no larger than a packet for packetization mode 0, is the cut
    /// until then). Give [`MosaicSource::host_only`] first.
    #[must_use]
    pub fn encoded(mut self, single_nal: bool, bitrate: u32) -> Self {
        let feed = EncodedFeed::new(self.format, single_nal, bitrate);
        self.view.encoded.store(true, Ordering::Relaxed);
        self.shared
            .feeds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(FeedEntry {
                feed: Arc::downgrade(&feed.shared),
                view: Arc::clone(&self.view),
                group: None,
            });
        self.feed = Some(feed);
        self
    }
}

impl VideoSource for MosaicSource {
    fn format(&self) -> VideoFormat {
        self.format
    }

    fn encoded_feed(&self) -> Option<EncodedFeed> {
        self.feed.clone()
    }

    fn next_frame(&mut self) -> Result<Option<VideoFrame>, VideoError> {
        let picture = match self.view.drawing() {
            Drawing::HostAlone => &self.shared.host,
            Drawing::Without(_) => &self.view.latest,
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
#[path = "video_tests.rs"]
mod tests;
