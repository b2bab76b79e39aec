//! The conference's video for peers that take one stream: every participant's latest picture,
//! composed into one [`Mosaic`] on a thread of its own at the mosaic's rate, with the active
//! speaker largest. Every leg sends that mosaic (scaled to its own size when it differs), so
//! it is drawn once per frame however many legs there are. A leg whose source is
//! [`MosaicSource::encoded`] (what the engine gives every leg) does not encode it either: the
//! mosaic thread encodes each picture once per size and packetization limit (and the host's
//! picture alone once, for legs switched to it) and hands the access units to every such
//! leg's [`EncodedFeed`]; the leg only packetizes them. Keyframe requests of any leg of a
//! group make the group's next picture an IDR; the group's bitrate is the lowest its legs ask.
//!
//! A leg's session gets a [`MosaicSource`] (what it sends) and a [`TileSink`] (where its
//! decoded pictures go) from [`MosaicBridge::join`]; the tile leaves when the sink is dropped.
//! The host's own camera or pattern is the local picture, pulled by the mosaic thread.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::mosaic::Mosaic;
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
    /// The latest mosaic.
    output: Mutex<Option<Arc<VideoFrame>>>,
    /// The host's latest picture alone, for legs that are sent the others' pictures as
    /// streams of their own ([`MosaicSource::host_only`]).
    host: Mutex<Option<Arc<VideoFrame>>>,
    /// The active speaker's tag ([`NO_SPEAKER`] when none), written by the audio bridge.
    speaker: Arc<AtomicU64>,
    running: AtomicBool,
    /// The legs that send the pictures encoded here, once per size (see [`encode_feeds`]).
    feeds: Mutex<Vec<FeedEntry>>,
}

/// What a leg's sender picture switch says: the host's picture alone instead of the mosaic.
type HostOnly = Arc<dyn Fn() -> bool + Send + Sync>;

/// A leg that sends the shared encoded pictures.
struct FeedEntry {
    feed: Weak<FeedShared>,
    host_only: HostOnly,
    /// The encoder it was last given units of.
    group: Option<GroupKey>,
}

/// One shared encoder: the size and rate, whether NAL units must fit a packet, and whether
/// it encodes the host's picture alone or the mosaic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct GroupKey {
    width: u32,
    height: u32,
    /// Pictures per second: the mosaic's, or a fraction of it (every `n`th tick).
    fps: u32,
    single_nal: bool,
    host_only: bool,
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
            host_only: Arc::new(|| false),
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
        let frames: Vec<&VideoFrame> = pictures.iter().map(|(_, p)| p.as_ref()).collect();
        let composed = Arc::new(mosaic.compose(&frames).clone());
        *shared.output.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&composed));
        encode_feeds(&shared, &mut encoders, &composed, index);
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
    mosaic: &Arc<VideoFrame>,
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
                fps: fps.clamp(1, mosaic_fps),
                single_nal: feed.single_nal,
                host_only: (entry.host_only)(),
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
        // The nearest whole fraction of the mosaic's rate, at least the rate asked for.
        let every = u64::from((mosaic_fps / key.fps).max(1));
        if !index.is_multiple_of(every) {
            continue;
        }
        let picture = if key.host_only {
            host.clone()
        } else {
            Some(Arc::clone(mosaic))
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
                let fps = (mosaic_fps / every as u32).max(1);
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
                    feed.push(&unit);
                }
            }
            Ok(None) => {}
            Err(error) => tracing::debug!(%error, "the encoder refused a picture"),
        }
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
    host_only: HostOnly,
    /// The pictures encoded once for every leg of this size ([`MosaicSource::encoded`]).
    feed: Option<EncodedFeed>,
}

impl MosaicSource {
    /// Sends the host's picture alone instead of the mosaic while `switch` says so.
    #[must_use]
    pub fn host_only(mut self, switch: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        self.host_only = Arc::new(switch);
        self
    }

    /// Sends the pictures encoded once on the mosaic's thread for every leg of this size
    /// (NAL units no larger than a packet when `single_nal`, packetization mode 0) instead
    /// of frames to encode: the leg's sender takes them from [`VideoSource::encoded_feed`],
    /// asks for keyframes and for `bitrate` (at first) through it. Give
    /// [`MosaicSource::host_only`] first.
    #[must_use]
    pub fn encoded(mut self, single_nal: bool, bitrate: u32) -> Self {
        let feed = EncodedFeed::new(self.format, single_nal, bitrate);
        self.shared
            .feeds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(FeedEntry {
                feed: Arc::downgrade(&feed.shared),
                host_only: Arc::clone(&self.host_only),
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

    /// Takes `count` units from `feed`, waiting for them.
    fn units(feed: &EncodedFeed, count: usize) -> Vec<Arc<crate::video::h264::EncodedAccessUnit>> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut taken = Vec::new();
        while taken.len() < count {
            match feed.next_unit() {
                Some(unit) => taken.push(unit),
                None => {
                    assert!(Instant::now() < deadline, "{} units in 5 s", taken.len());
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        taken
    }

    /// A 320x240 mosaic of the host's test pattern and two legs of its size sent its shared
    /// encoding, both sending: the bridge, their feeds and their tiles.
    fn two_encoded_legs() -> (MosaicBridge, [EncodedFeed; 2], [TileSink; 2]) {
        let speaker = Arc::new(AtomicU64::new(NO_SPEAKER));
        let bridge = MosaicBridge::start(format(320, 240), speaker).unwrap();
        bridge.set_local(Box::new(TestPattern::new(format(320, 240), 1).unwrap()));
        let [(a, a_tile), (b, b_tile)] = [7, 9].map(|tag| bridge.join(tag, format(320, 240)));
        let feeds = [a, b].map(|source| {
            let feed = source
                .encoded(false, 300_000)
                .encoded_feed()
                .expect("a feed");
            feed.set_active(true);
            feed
        });
        (bridge, feeds, [a_tile, b_tile])
    }

    /// The first keyframe `feed` takes that `wanted` accepts, waiting for it.
    fn keyframe_where(
        feed: &EncodedFeed,
        mut wanted: impl FnMut(&crate::video::h264::EncodedAccessUnit) -> bool,
    ) -> Arc<crate::video::h264::EncodedAccessUnit> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let unit = units(feed, 1).remove(0);
            if unit.is_keyframe && wanted(&unit) {
                return unit;
            }
            assert!(Instant::now() < deadline, "no such keyframe in 5 s");
        }
    }

    /// Takes `feed`'s units until `unit` comes: `feed` shares the encoding `unit` is of.
    fn comes_to(feed: &EncodedFeed, unit: &Arc<crate::video::h264::EncodedAccessUnit>) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !Arc::ptr_eq(&units(feed, 1).remove(0), unit) {
            assert!(
                Instant::now() < deadline,
                "not one encoding: the unit never came"
            );
        }
    }

    #[test]
    fn legs_of_one_size_share_one_encoding_of_the_mosaic() {
        use crate::video::h264::H264Decoder;
        let speaker = Arc::new(AtomicU64::new(NO_SPEAKER));
        let bridge = MosaicBridge::start(format(320, 240), speaker).unwrap();
        bridge.set_local(Box::new(TestPattern::new(format(320, 240), 1).unwrap()));
        let (a, _a_tile) = bridge.join(7, format(320, 240));
        let (b, _b_tile) = bridge.join(9, format(320, 240));
        let (c, _c_tile) = bridge.join(11, format(160, 120));
        let (a, b, c) = (
            a.encoded(false, 300_000),
            b.encoded(false, 300_000),
            c.encoded(false, 300_000),
        );
        let feeds = [a, b, c].map(|source| source.encoded_feed().expect("a feed"));
        // Their senders are connected and send.
        for feed in &feeds {
            feed.set_active(true);
        }
        let taken: Vec<_> = feeds.iter().map(|feed| units(feed, 5)).collect();
        // Each leg starts at a keyframe; the two of one size get the very same units (the
        // mosaic was encoded once for both, from the first unit they share on).
        assert!(taken.iter().all(|units| units[0].is_keyframe));
        let shared = taken[0]
            .iter()
            .filter(|u| taken[1].iter().any(|v| Arc::ptr_eq(u, v)))
            .count();
        assert!(shared >= 4, "{shared} of 5 units shared");
        assert!(!taken[2]
            .iter()
            .any(|u| taken[0].iter().any(|v| Arc::ptr_eq(u, v))));
        // The smaller leg's units are pictures of its size.
        let mut decoder = H264Decoder::new().unwrap();
        let picture = decoder
            .decode_nalus(&taken[2][0].nalus, taken[2][0].timestamp)
            .unwrap()
            .expect("a picture");
        assert_eq!((picture.width(), picture.height()), (160, 120));
        // A keyframe asked for by one leg of a size comes to both.
        feeds[1].request_keyframe();
        let deadline = Instant::now() + Duration::from_secs(5);
        let keyframes = |feed: &EncodedFeed| loop {
            let unit = units(feed, 1).remove(0);
            if unit.is_keyframe || Instant::now() > deadline {
                return unit;
            }
        };
        let (from_a, from_b) = (keyframes(&feeds[0]), keyframes(&feeds[1]));
        assert!(from_a.is_keyframe && Arc::ptr_eq(&from_a, &from_b));
    }

    #[test]
    fn a_leg_advised_a_smaller_picture_gets_one_of_its_own_and_comes_back() {
        use crate::video::h264::{EncodedAccessUnit, H264Decoder};
        let (_bridge, feeds, _tiles) = two_encoded_legs();
        let mut decoder = H264Decoder::new().unwrap();
        let mut size_of = |unit: &EncodedAccessUnit| {
            let picture = decoder.decode_nalus(&unit.nalus, unit.timestamp).unwrap();
            picture.map(|p| (p.width(), p.height()))
        };
        let shared = |a: &[Arc<EncodedAccessUnit>], b: &[Arc<EncodedAccessUnit>]| {
            a.iter()
                .filter(|u| b.iter().any(|v| Arc::ptr_eq(u, v)))
                .count()
        };
        let (first_a, first_b) = (units(&feeds[0], 5), units(&feeds[1], 5));
        assert!(shared(&first_a, &first_b) >= 4, "one encoding for both");

        // B's controller advises half the size: B moves to pictures of its own, from a
        // keyframe; A keeps the full size.
        feeds[1].set_layer(160, 120, 30);
        assert_eq!(feeds[1].size(), (160, 120));
        let deadline = Instant::now() + Duration::from_secs(5);
        let small = loop {
            let unit = units(&feeds[1], 1).remove(0);
            if unit.is_keyframe && size_of(&unit) == Some((160, 120)) {
                break unit;
            }
            assert!(Instant::now() < deadline, "no smaller picture for b");
        };
        // A keeps the full size: its next keyframe is a full picture.
        feeds[0].request_keyframe();
        let deadline = Instant::now() + Duration::from_secs(5);
        let full = loop {
            let unit = units(&feeds[0], 1).remove(0);
            if unit.is_keyframe {
                break unit;
            }
            assert!(Instant::now() < deadline, "no keyframe for a");
        };
        assert!(!Arc::ptr_eq(&full, &small), "two encodings now");
        let mut full_decoder = H264Decoder::new().unwrap();
        let picture = full_decoder
            .decode_nalus(&full.nalus, full.timestamp)
            .unwrap();
        assert_eq!(picture.map(|p| (p.width(), p.height())), Some((320, 240)));

        // Advised the full size again, B shares A's encoding once more: B's first full
        // keyframe is among A's units.
        feeds[1].set_layer(320, 240, 30);
        let rejoined = keyframe_where(&feeds[1], |unit| size_of(unit) == Some((320, 240)));
        comes_to(&feeds[0], &rejoined);
        // A size beyond the feed's is held to it.
        feeds[1].set_layer(1280, 721, 60);
        assert_eq!((feeds[1].size(), feeds[1].rate()), ((320, 240), 30));
    }

    #[test]
    fn a_leg_advised_half_the_rate_gets_every_other_picture_from_an_encoding_of_its_own() {
        use crate::video::h264::EncodedAccessUnit;
        let (_bridge, feeds, _tiles) = two_encoded_legs();
        let steps = |units: &[Arc<EncodedAccessUnit>]| -> Vec<Duration> {
            units
                .windows(2)
                .map(|pair| pair[1].timestamp - pair[0].timestamp)
                .collect()
        };
        let tick = format(320, 240).frame_interval();
        // Timestamps are whole nanoseconds of the tick's time.
        let every = |units: &[Arc<EncodedAccessUnit>], ticks: u32| {
            steps(units)
                .iter()
                .all(|&step| step.abs_diff(tick * ticks) < Duration::from_micros(1))
        };
        let full = units(&feeds[0], 6);
        assert!(every(&full, 1), "{:?}", steps(&full));

        // B's controller advises half the rate: from a keyframe of its own on, B gets every
        // other tick's picture, none of them A's units. (What B has queued goes first, with
        // the keyframe it started at.)
        while feeds[1].next_unit().is_some() {}
        feeds[1].set_layer(320, 240, 15);
        assert_eq!(feeds[1].rate(), 15);
        keyframe_where(&feeds[1], |_| true);
        let halved = units(&feeds[1], 6);
        assert!(every(&halved, 2), "{:?}", steps(&halved));
        let a_now = units(&feeds[0], 6);
        assert!(!halved
            .iter()
            .any(|u| a_now.iter().any(|v| Arc::ptr_eq(u, v))));

        // Advised the full rate again, B shares A's encoding once more.
        feeds[1].set_layer(320, 240, 30);
        let rejoined = keyframe_where(&feeds[1], |_| true);
        comes_to(&feeds[0], &rejoined);
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
