//! Handing video to a window: the latest frame only, never a queue (DESIGN.md rule 4).
//!
//! A [`FrameSlot`] is written by a media thread (each decoded or captured frame replaces the
//! previous one) and read by the UI at its own pace: [`FrameSlot::take_newer`] returns a frame
//! only when one arrived since the last look, so a window polling at 30 Hz converts each frame
//! at most once and skips the ones it had no time for. Until someone looks for the first time,
//! writing costs nothing: a call without a window (the headless commands) copies no frames.
//!
//! [`SlotSink`] writes a slot as a [`VideoSink`] (the remote picture, besides a recorder);
//! [`PreviewSource`] copies what a [`VideoSource`] produces into a slot (the self-view) and,
//! with its [`CameraSwitch`] off, sends black frames instead of the picture. [`StreamSlots`]
//! are the slots of a call's further streams (a conference server sending each participant
//! as a stream of its own), named and added as the streams arrive, taken away as they end.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::encoded_feed::EncodedFeed;
use super::error::VideoError;
use super::frame::{VideoFormat, VideoFrame};
use super::sink::VideoSink;
use super::source::VideoSource;
use crate::audio::MuteSwitch;

#[derive(Debug, Default)]
struct Slot {
    frame: Mutex<Option<VideoFrame>>,
    generation: AtomicU64,
    /// Frames handed to the reader so far.
    taken: AtomicU64,
    /// Someone reads the slot: frames are kept from then on.
    watched: AtomicBool,
    /// Cleared: frames are refused (see [`FrameSlot::clear`]), and counted.
    closed: AtomicBool,
    refused: AtomicU64,
}

/// Frames a cleared slot refuses before it takes its sender's frames again: 2 s of video at
/// 30 fps (longer at lower rates). The frames still on their way when the sender stopped are
/// far fewer.
const STILL_SENDING: u64 = 60;

/// The latest frame of a stream, shared between its writer and a reader.
#[derive(Debug, Clone, Default)]
pub struct FrameSlot(Arc<Slot>);

impl FrameSlot {
    pub fn new() -> Self {
        FrameSlot::default()
    }

    /// Replaces the frame (only once the slot is watched; before, the frame is not copied).
    pub fn put(&self, frame: &VideoFrame) {
        if !self.0.watched.load(Ordering::Relaxed) {
            return;
        }
        let mut slot = self.0.frame.lock().unwrap_or_else(|p| p.into_inner());
        if self.0.closed.load(Ordering::Relaxed) {
            if self.0.refused.fetch_add(1, Ordering::Relaxed) + 1 < STILL_SENDING {
                return;
            }
            self.0.closed.store(false, Ordering::Relaxed);
        }
        *slot = Some(frame.clone());
        self.0.generation.fetch_add(1, Ordering::Release);
    }

    /// How many frames were kept so far.
    pub fn generation(&self) -> u64 {
        self.0.generation.load(Ordering::Acquire)
    }

    /// Takes the frame away: the stream has no picture to show now (its sender stopped).
    /// A reader of [`FrameSlot::take_change`] sees the change as no frame. The frames put
    /// next are refused — those still on their way when the sender stopped — until
    /// [`FrameSlot::open`], or until so many came (2 s of video at 30 fps) that the sender
    /// clearly goes on sending.
    pub fn clear(&self) {
        let mut slot = self.0.frame.lock().unwrap_or_else(|p| p.into_inner());
        self.0.refused.store(0, Ordering::Relaxed);
        self.0.closed.store(true, Ordering::Relaxed);
        if slot.take().is_some() {
            self.0.generation.fetch_add(1, Ordering::Release);
        }
    }

    /// Takes frames again after a [`FrameSlot::clear`]: the sender sends again.
    pub fn open(&self) {
        let _slot = self.0.frame.lock().unwrap_or_else(|p| p.into_inner());
        self.0.closed.store(false, Ordering::Relaxed);
    }

    /// The latest frame if it is newer than `seen` (a generation returned earlier, 0 at first),
    /// with its generation. The first call starts the watching: frames put from then on are
    /// kept.
    pub fn take_newer(&self, seen: u64) -> Option<(u64, VideoFrame)> {
        self.take_change(seen)
            .and_then(|(generation, frame)| Some((generation, frame?)))
    }

    /// [`FrameSlot::take_newer`] that also tells of a [`FrameSlot::clear`]: the generation
    /// and the frame, none when the slot was cleared since `seen`.
    pub fn take_change(&self, seen: u64) -> Option<(u64, Option<VideoFrame>)> {
        self.0.watched.store(true, Ordering::Relaxed);
        if self.generation() == seen {
            return None;
        }
        let slot = self.0.frame.lock().unwrap_or_else(|p| p.into_inner());
        // Read again under the lock: `put` and `clear` count while holding it, so the number
        // belongs to the frame taken (one put in between would otherwise come back as new
        // next time).
        let generation = self.generation();
        let frame = slot.clone();
        if frame.is_some() {
            self.0.taken.fetch_add(1, Ordering::Relaxed);
        }
        Some((generation, frame))
    }

    /// How many frames [`FrameSlot::take_newer`] and [`FrameSlot::take_change`] have handed
    /// out: the pictures a window showed.
    pub fn taken(&self) -> u64 {
        self.0.taken.load(Ordering::Relaxed)
    }
}

impl PartialEq for FrameSlot {
    /// Two slots are equal when they are the same slot.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

#[derive(Debug, Default)]
struct Streams {
    /// What the call's own stream is called, once a further one made names needed.
    first_name: Option<String>,
    /// The peer stopped sending the call's own stream.
    first_ended: bool,
    slots: Vec<(String, FrameSlot)>,
    /// What to show instead of a stream's name (a conference roster's name for the
    /// participant a stream is labelled after).
    titles: Vec<(String, String)>,
    /// Rises with every change.
    generation: u64,
}

impl Streams {
    /// What a stream named `name` is shown as.
    fn title(&self, name: &str) -> String {
        self.titles
            .iter()
            .find(|(label, _)| label == name)
            .map_or_else(|| name.to_owned(), |(_, title)| title.clone())
    }
}

/// The pictures of a call's further video streams: a named [`FrameSlot`] each, added by the
/// media side as the streams arrive, read by the window. Cloning shares them; two are equal
/// when they are the same.
#[derive(Debug, Clone, Default)]
pub struct StreamSlots(Arc<Mutex<Streams>>);

impl StreamSlots {
    fn lock(&self) -> std::sync::MutexGuard<'_, Streams> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A further stream called `name`: the sink its pictures go to, which takes the stream
    /// away again when it is finished (the stream ended).
    pub fn add(&self, name: &str) -> StreamSink {
        let slot = FrameSlot::new();
        let mut streams = self.lock();
        streams.slots.push((name.to_owned(), slot.clone()));
        streams.generation += 1;
        StreamSink {
            streams: self.clone(),
            slot,
        }
    }

    /// Takes a stream away.
    fn remove(&self, slot: &FrameSlot) {
        let mut streams = self.lock();
        let before = streams.slots.len();
        streams.slots.retain(|(_, s)| s != slot);
        if streams.slots.len() != before {
            streams.generation += 1;
        }
    }

    /// Names the call's own stream (a multistream call's first).
    pub fn name_first(&self, name: &str) {
        let mut streams = self.lock();
        if streams.first_name.as_deref() != Some(name) {
            streams.first_name = Some(name.to_owned());
            streams.generation += 1;
        }
    }

    /// The peer stopped sending the call's own stream.
    pub fn end_first(&self) {
        let mut streams = self.lock();
        if !streams.first_ended {
            streams.first_ended = true;
            streams.generation += 1;
        }
    }

    /// The peer sends the call's own stream again, labelled `name` (renamed to it when a
    /// further stream had named it: a conference server may send someone else on it).
    pub fn first_back(&self, name: &str) {
        let mut streams = self.lock();
        let renamed = streams.first_name.is_some() && streams.first_name.as_deref() != Some(name);
        if renamed {
            streams.first_name = Some(name.to_owned());
        }
        if streams.first_ended || renamed {
            streams.first_ended = false;
            streams.generation += 1;
        }
    }

    /// Whether the call's own stream has a tile: unless the peer stopped sending it in a call
    /// where further streams named it (a participant who left a conference server's call;
    /// the call may then have no tile at all). A one-to-one call keeps its tile, with no
    /// picture while the peer sends none.
    pub fn first_shown(&self) -> bool {
        let streams = self.lock();
        !streams.first_ended || streams.first_name.is_none()
    }

    /// What the call's own stream is called, when a further stream named it.
    pub fn first_name(&self) -> Option<String> {
        let streams = self.lock();
        streams
            .first_name
            .as_deref()
            .map(|name| streams.title(name))
    }

    /// The further streams, oldest first, with their names (or the titles given for them).
    pub fn slots(&self) -> Vec<(String, FrameSlot)> {
        let streams = self.lock();
        streams
            .slots
            .iter()
            .map(|(name, slot)| (streams.title(name), slot.clone()))
            .collect()
    }

    /// Shows each stream named by the first of a pair as the second (a conference roster
    /// names the participant behind each stream label), replacing the titles given before.
    pub fn set_titles(&self, titles: Vec<(String, String)>) {
        let mut streams = self.lock();
        if streams.titles != titles {
            streams.titles = titles;
            streams.generation += 1;
        }
    }

    /// A number that changes whenever a stream is added, named, ended or back: what a reader
    /// compares to know that [`StreamSlots::slots`] needs reading again.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }
}

/// The sink of one of a call's further streams (see [`StreamSlots::add`]): each picture goes
/// to the stream's slot; finishing it takes the stream away.
#[derive(Debug)]
pub struct StreamSink {
    streams: StreamSlots,
    slot: FrameSlot,
}

impl StreamSink {
    /// The slot the pictures go to.
    pub fn slot(&self) -> &FrameSlot {
        &self.slot
    }
}

impl VideoSink for StreamSink {
    fn consume(&mut self, frame: &VideoFrame) -> Result<(), VideoError> {
        self.slot.put(frame);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), VideoError> {
        self.streams.remove(&self.slot);
        Ok(())
    }
}

impl PartialEq for StreamSlots {
    /// Equal when they are the same.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// A video sink that keeps the latest frame in a slot, and passes every frame on to `next`.
pub struct SlotSink<S> {
    slot: FrameSlot,
    next: S,
}

impl<S: VideoSink> SlotSink<S> {
    pub fn new(slot: FrameSlot, next: S) -> Self {
        SlotSink { slot, next }
    }
}

impl<S: VideoSink> VideoSink for SlotSink<S> {
    fn consume(&mut self, frame: &VideoFrame) -> Result<(), VideoError> {
        self.slot.put(frame);
        self.next.consume(frame)
    }

    fn finish(&mut self) -> Result<(), VideoError> {
        self.next.finish()
    }
}

/// Whether a call shows our picture; off sends black frames (the stream stays up, so the
/// other side needs no renegotiation and turning it on again is immediate).
#[derive(Debug, Clone)]
pub struct CameraSwitch(Arc<AtomicBool>);

impl Default for CameraSwitch {
    /// On.
    fn default() -> Self {
        CameraSwitch(Arc::new(AtomicBool::new(true)))
    }
}

impl CameraSwitch {
    pub fn new() -> Self {
        CameraSwitch::default()
    }

    pub fn set(&self, on: bool) {
        self.0.store(on, Ordering::Relaxed);
    }

    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl PartialEq for CameraSwitch {
    /// Two switches are equal when they are the same switch.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// A source whose frames are also left in a slot (the self-view), or replaced by black while
/// its switch is off (or while the call is held, [`PreviewSource::with_hold`]). The inner
/// source is still read meanwhile, so a camera keeps running and a file keeps its place.
pub struct PreviewSource<S> {
    inner: S,
    slot: FrameSlot,
    switch: CameraSwitch,
    held: Option<MuteSwitch>,
    black: Option<VideoFrame>,
}

impl<S: VideoSource> PreviewSource<S> {
    pub fn new(inner: S, slot: FrameSlot, switch: CameraSwitch) -> Self {
        PreviewSource {
            inner,
            slot,
            switch,
            held: None,
            black: None,
        }
    }
}

impl<S> PreviewSource<S> {
    /// Sends black as well while `held` is on (the call is held: the held side sees
    /// nothing of us).
    pub fn with_hold(mut self, held: MuteSwitch) -> Self {
        self.held = Some(held);
        self
    }
}

impl<S: VideoSource> VideoSource for PreviewSource<S> {
    fn format(&self) -> VideoFormat {
        self.inner.format()
    }

    fn encoded_feed(&self) -> Option<EncodedFeed> {
        self.inner.encoded_feed()
    }

    fn paused(&self) -> bool {
        let held = self.held.as_ref().is_some_and(MuteSwitch::is_muted);
        !self.switch.is_on() || held || self.inner.paused()
    }

    fn replaced(&mut self) -> bool {
        self.inner.replaced()
    }

    fn next_frame(&mut self) -> Result<Option<VideoFrame>, VideoError> {
        let Some(frame) = self.inner.next_frame()? else {
            return Ok(None);
        };
        let held = self.held.as_ref().is_some_and(MuteSwitch::is_muted);
        if self.switch.is_on() && !held {
            self.slot.put(&frame);
            return Ok(Some(frame));
        }
        let fits = self
            .black
            .as_ref()
            .is_some_and(|b| (b.width(), b.height()) == (frame.width(), frame.height()));
        if !fits {
            self.black = Some(VideoFrame::black(frame.width(), frame.height())?);
        }
        let black = self
            .black
            .clone()
            .map(|b| b.with_timestamp(frame.timestamp()));
        if let Some(black) = &black {
            self.slot.put(black);
        }
        Ok(black)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::TestPattern;

    #[test]
    fn a_reader_sees_each_newer_frame_once_and_only_the_latest() {
        let slot = FrameSlot::new();
        let unwatched = VideoFrame::filled(4, 4, 1, 128, 128).unwrap();
        slot.put(&unwatched);
        assert_eq!(slot.generation(), 0, "nobody looks yet: nothing is copied");
        assert!(slot.take_newer(0).is_none(), "nothing yet");
        let first = VideoFrame::filled(4, 4, 10, 128, 128).unwrap();
        let second = VideoFrame::filled(4, 4, 20, 128, 128).unwrap();
        slot.put(&first);
        slot.put(&second);
        let (seen, frame) = slot.take_newer(0).expect("a frame");
        assert_eq!(frame.y()[0], 20, "only the latest is kept");
        assert!(slot.take_newer(seen).is_none(), "nothing newer since");
        slot.put(&first);
        assert_eq!(slot.take_newer(seen).unwrap().1.y()[0], 10);
        // Cleared: a reader of changes sees no frame, once; a reader of frames sees nothing.
        let (seen, _) = slot.take_change(seen).expect("the frame put");
        slot.clear();
        assert!(slot.take_newer(seen).is_none(), "no frame to take");
        let (cleared, frame) = slot.take_change(seen).expect("the clearing");
        assert!(frame.is_none(), "no picture now");
        assert!(slot.take_change(cleared).is_none(), "told once");
        slot.clear();
        assert!(slot.take_change(cleared).is_none(), "nothing more to clear");
        // The frames still on their way are refused; opened, the slot takes them again.
        slot.put(&second);
        assert!(
            slot.take_change(cleared).is_none(),
            "a late frame is refused"
        );
        slot.open();
        slot.put(&second);
        let (opened, frame) = slot.take_change(cleared).unwrap();
        assert_eq!(frame.unwrap().y()[0], 20);
        // A sender that goes on sending after a clear is shown again after about 2 s.
        slot.clear();
        let (cleared, _) = slot.take_change(opened).unwrap();
        for _ in 1..STILL_SENDING {
            slot.put(&first);
        }
        assert!(
            slot.take_change(cleared).is_none(),
            "{} refused",
            STILL_SENDING - 1
        );
        slot.put(&first);
        assert_eq!(slot.take_change(cleared).unwrap().1.unwrap().y()[0], 10);
    }

    #[test]
    fn the_preview_shows_the_picture_and_black_while_the_camera_is_off() {
        let format = VideoFormat::new(64, 48, 30).unwrap();
        let slot = FrameSlot::new();
        assert!(slot.take_newer(0).is_none());
        let switch = CameraSwitch::new();
        let mut source = PreviewSource::new(
            TestPattern::new(format, 7).unwrap(),
            slot.clone(),
            switch.clone(),
        );
        let sent = source.next_frame().unwrap().unwrap();
        assert_eq!(
            slot.take_newer(0).unwrap().1,
            sent,
            "the self-view shows what is sent"
        );
        switch.set(false);
        let dark = source.next_frame().unwrap().unwrap();
        assert!(dark.y().iter().all(|&y| y == dark.y()[0]), "a flat frame");
        assert!(
            crate::video::read_stamp(&dark).is_none(),
            "no picture while off"
        );
        assert_eq!(
            dark.timestamp(),
            format.timestamp_of(1),
            "the stream's clock goes on"
        );
        switch.set(true);
        let back = source.next_frame().unwrap().unwrap();
        assert_eq!(crate::video::read_stamp(&back).map(|s| s.frame), Some(2));
        // Held: black too, whatever the camera switch says; the picture comes back after.
        let held = MuteSwitch::new();
        let mut source = source.with_hold(held.clone());
        held.set(true);
        let dark = source.next_frame().unwrap().unwrap();
        assert!(
            crate::video::read_stamp(&dark).is_none(),
            "no picture while held"
        );
        held.set(false);
        let back = source.next_frame().unwrap().unwrap();
        assert_eq!(crate::video::read_stamp(&back).map(|s| s.frame), Some(4));
    }

    #[test]
    fn a_slot_sink_passes_frames_on() {
        let slot = FrameSlot::new();
        assert!(slot.take_newer(0).is_none());
        let mut count = 0;
        let mut sink = SlotSink::new(
            slot.clone(),
            crate::video::CallbackSink::new(|_: &VideoFrame| count += 1),
        );
        let frame = VideoFrame::black(8, 8).unwrap();
        sink.consume(&frame).unwrap();
        sink.consume(&frame).unwrap();
        drop(sink);
        assert_eq!(count, 2);
        assert_eq!(slot.generation(), 2);
    }

    #[test]
    fn stream_slots_are_named_and_added_as_streams_arrive() {
        let streams = StreamSlots::default();
        let reader = streams.clone();
        assert_eq!(reader, streams);
        assert_ne!(reader, StreamSlots::default());
        let start = reader.generation();
        assert!(reader.slots().is_empty() && reader.first_name().is_none());
        streams.name_first("bob");
        let mut carol = streams.add("carol");
        let after = reader.generation();
        assert!(after > start);
        streams.name_first("bob");
        assert_eq!(
            reader.generation(),
            after,
            "naming again the same changes nothing"
        );
        assert_eq!(reader.first_name().as_deref(), Some("bob"));
        let slots = reader.slots();
        assert_eq!(slots.len(), 1);
        assert_eq!(slots[0].0, "carol");
        assert_eq!(
            slots[0].1,
            *carol.slot(),
            "the reader gets the writer's slot"
        );
        // The stream ends: it goes away.
        carol.finish().unwrap();
        assert!(reader.generation() > after);
        assert!(reader.slots().is_empty());
    }

    #[test]
    fn the_calls_own_stream_loses_its_tile_when_it_ends_beside_further_streams() {
        // A one-to-one call: the tile stays while the peer sends no picture.
        let single = StreamSlots::default();
        single.end_first();
        assert!(single.first_shown(), "a one-to-one call keeps its tile");
        single.first_back("4f1c-stream");
        assert_eq!(single.first_name(), None, "it keeps the call's name");
        // A conference server's call: bob (the call's own stream) leaves, dave comes on it.
        let streams = StreamSlots::default();
        streams.name_first("bob");
        let _carol = streams.add("carol");
        let before = streams.generation();
        streams.end_first();
        assert!(!streams.first_shown(), "bob left: his tile goes");
        let ended = streams.generation();
        assert!(ended > before);
        streams.end_first();
        assert_eq!(streams.generation(), ended, "ending again changes nothing");
        streams.first_back("dave");
        assert!(streams.first_shown());
        assert_eq!(streams.first_name().as_deref(), Some("dave"));
        assert!(streams.generation() > ended);
        // Renamed while sent (no gap between the two participants).
        let back = streams.generation();
        streams.first_back("dave");
        assert_eq!(streams.generation(), back, "the same name changes nothing");
        streams.first_back("erin");
        assert_eq!(streams.first_name().as_deref(), Some("erin"));
        assert!(streams.generation() > back);
    }

    #[test]
    fn streams_are_shown_by_the_titles_given_for_their_names() {
        let streams = StreamSlots::default();
        let _carol = streams.add("carol_example.org");
        let _dave = streams.add("dave");
        streams.name_first("host");
        let before = streams.generation();
        streams.set_titles(vec![
            ("carol_example.org".into(), "Carol".into()),
            ("host".into(), "The host".into()),
        ]);
        assert!(streams.generation() > before);
        let names: Vec<String> = streams.slots().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["Carol", "dave"]);
        assert_eq!(streams.first_name().as_deref(), Some("The host"));
        // The same titles again change nothing.
        let same = streams.generation();
        streams.set_titles(vec![
            ("carol_example.org".into(), "Carol".into()),
            ("host".into(), "The host".into()),
        ]);
        assert_eq!(streams.generation(), same);
    }
}
