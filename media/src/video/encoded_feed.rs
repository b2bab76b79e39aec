//! A stream of pictures encoded elsewhere, shared by several senders: a conference's pictures
//! for its legs are encoded on the mosaic's thread once per size, rate, packetization limit and
//! drawing, and every leg sent one takes its access units ([`EncodedFeed`]) instead of encoding
//! the picture itself. The sender says which cut its call takes
//! ([`EncodedFeed::set_single_nal`]).
//!
//! The producer (the mosaic's thread) pushes each unit to every feed; the leg's video thread
//! takes them in order, packetizes them with its own SSRC, numbering and payload type, and
//! sends them. A feed asks the producer for a keyframe (a receiver's PLI, a new or resumed
//! leg) and for a bitrate (the leg's congestion controller; the producer encodes at the
//! lowest any leg asks). A feed that falls behind is emptied and waits for a keyframe.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::Thread;

use super::frame::VideoFormat;
use super::h264::EncodedAccessUnit;

/// Units a feed holds before it is considered stuck (emptied; the next unit is a keyframe).
const MAX_QUEUED: usize = 30;

/// One sender's end of a shared encoded stream. Cloning shares it.
#[derive(Clone)]
pub struct EncodedFeed {
    pub(crate) shared: Arc<FeedShared>,
}

impl std::fmt::Debug for EncodedFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedFeed")
            .field("format", &self.shared.format)
            .field("single_nal", &self.shared.single_nal())
            .finish_non_exhaustive()
    }
}

pub(crate) struct FeedShared {
    /// The size and rate the sender sends.
    pub(crate) format: VideoFormat,
    /// NAL units must fit one packet (packetization mode 0).
    single_nal: AtomicBool,
    queue: Mutex<Queue>,
    /// The sender sends (connected, not paused): only then is it given units, and only its
    /// bitrate and keyframe wishes count.
    active: AtomicBool,
    keyframe_wanted: AtomicBool,
    bitrate: AtomicU32,
    /// The pictures the sender can carry (within `format`): width, height and rate in one
    /// word, so they change together ([`pack`]).
    layer: AtomicU64,
    /// The sender's thread, woken when a unit arrives.
    waiter: Mutex<Option<Thread>>,
}

/// The units waiting for the sender.
#[derive(Default)]
struct Queue {
    units: VecDeque<Arc<EncodedAccessUnit>>,
    /// Drop units until a keyframe (a new feed, a restart, or one that fell behind).
    waiting_for_keyframe: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl EncodedFeed {
    /// A feed of `format` (NAL units no larger than a packet when `single_nal`), asking for
    /// `bitrate` bit/s at first; it starts with a keyframe.
    pub fn new(format: VideoFormat, single_nal: bool, bitrate: u32) -> Self {
        EncodedFeed {
            shared: Arc::new(FeedShared {
                format,
                single_nal: AtomicBool::new(single_nal),
                queue: Mutex::new(Queue {
                    units: VecDeque::new(),
                    waiting_for_keyframe: true,
                }),
                active: AtomicBool::new(false),
                keyframe_wanted: AtomicBool::new(true),
                bitrate: AtomicU32::new(bitrate),
                layer: AtomicU64::new(pack(format.width, format.height, format.fps)),
                waiter: Mutex::new(None),
            }),
        }
    }

    /// The largest pictures the sender sends, and their rate.
    pub fn format(&self) -> VideoFormat {
        self.shared.format
    }

    /// The size of the pictures the sender takes now (see [`EncodedFeed::set_layer`]).
    pub fn size(&self) -> (u32, u32) {
        let (width, height, _) = self.shared.layer();
        (width, height)
    }

    /// The rate of the pictures the sender takes now, per second (see
    /// [`EncodedFeed::set_layer`]).
    pub fn rate(&self) -> u32 {
        self.shared.layer().2
    }

    /// The pictures the sender can carry now (its congestion controller's advice: a smaller
    /// picture, then fewer of them, at a low bitrate), within the feed's format; the producer
    /// moves it to pictures of that size and rate, from a keyframe.
    pub fn set_layer(&self, width: u32, height: u32, fps: u32) {
        let format = self.shared.format;
        let (width, height) = (width.clamp(2, format.width), height.clamp(2, format.height));
        // I420 pictures have even sides.
        let layer = pack(width & !1, height & !1, fps.clamp(1, format.fps.max(1)));
        self.shared.layer.store(layer, Ordering::Relaxed);
    }

    /// Whether the units are cut for packetization mode 0 (no NAL unit larger than a packet).
    pub fn single_nal(&self) -> bool {
        self.shared.single_nal()
    }

    /// Asks for units cut for packetization mode 0 (`true`) or mode 1, as the sender's call
    /// negotiated: a change drops what is queued, and the feed takes nothing until the
    /// producer's first keyframe cut the new way.
    pub fn set_single_nal(&self, single_nal: bool) {
        if self.shared.single_nal.swap(single_nal, Ordering::AcqRel) != single_nal {
            self.restart();
        }
    }

    /// The next unit, oldest first.
    pub fn next_unit(&self) -> Option<Arc<EncodedAccessUnit>> {
        lock(&self.shared.queue).units.pop_front()
    }

    /// Drops what is queued and takes nothing until a keyframe (which it asks for): what a
    /// sender does when it resumes after sending nothing for a while.
    pub fn restart(&self) {
        let mut queue = lock(&self.shared.queue);
        queue.units.clear();
        queue.waiting_for_keyframe = true;
        self.request_keyframe();
    }

    /// Whether the sender sends now. An inactive feed is given nothing and asks for nothing;
    /// becoming active restarts it (from the next keyframe, asked for).
    pub fn set_active(&self, active: bool) {
        let was = self.shared.active.swap(active, Ordering::AcqRel);
        if active && !was {
            self.restart();
        } else if !active {
            lock(&self.shared.queue).units.clear();
        }
    }

    /// See [`EncodedFeed::set_active`].
    pub fn is_active(&self) -> bool {
        self.shared.active.load(Ordering::Acquire)
    }

    /// Asks the producer for a keyframe.
    pub fn request_keyframe(&self) {
        self.shared.keyframe_wanted.store(true, Ordering::Release);
    }

    /// The bitrate this sender can carry.
    pub fn set_bitrate(&self, bps: u32) {
        self.shared.bitrate.store(bps, Ordering::Relaxed);
    }

    /// Wakes `thread` whenever a unit arrives.
    pub fn wake(&self, thread: Thread) {
        *lock(&self.shared.waiter) = Some(thread);
    }
}

/// A width and a height (24 bits each: far beyond any picture) and a rate (16 bits) in one
/// word.
fn pack(width: u32, height: u32, fps: u32) -> u64 {
    const SIDE: u64 = (1 << 24) - 1;
    (u64::from(width) & SIDE) << 40 | (u64::from(height) & SIDE) << 16 | u64::from(fps) & 0xffff
}

impl FeedShared {
    /// Whether NAL units must fit one packet (packetization mode 0).
    pub(crate) fn single_nal(&self) -> bool {
        self.single_nal.load(Ordering::Acquire)
    }

    /// The sender's picture width, height and rate (see [`EncodedFeed::set_layer`]).
    pub(crate) fn layer(&self) -> (u32, u32, u32) {
        let layer = self.layer.load(Ordering::Relaxed);
        let side = |shift: u32| ((layer >> shift) & ((1 << 24) - 1)) as u32;
        (side(40), side(16), (layer & 0xffff) as u32)
    }

    /// See [`EncodedFeed::set_active`].
    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Whether the sender asked for a keyframe since the last call (and forgets it).
    pub(crate) fn take_keyframe_wish(&self) -> bool {
        self.keyframe_wanted.swap(false, Ordering::AcqRel)
    }

    pub(crate) fn bitrate(&self) -> u32 {
        self.bitrate.load(Ordering::Relaxed)
    }

    /// Hands `unit`, cut for mode 0 when `single_nal`, to the sender (unless it waits for a
    /// keyframe and this is none, or the sender wants units cut the other way); a sender that
    /// has not taken the last [`MAX_QUEUED`] units is emptied and waits for a keyframe.
    pub(crate) fn push(&self, single_nal: bool, unit: &Arc<EncodedAccessUnit>) {
        {
            // Decided and queued under one lock, so a restart cannot let a delta in, nor a
            // change of cut (`set_single_nal` restarts under it) a unit cut the old way.
            let mut queue = lock(&self.queue);
            if single_nal != self.single_nal() {
                return;
            }
            if unit.is_keyframe {
                queue.waiting_for_keyframe = false;
            } else if queue.waiting_for_keyframe {
                self.keyframe_wanted.store(true, Ordering::Release);
                return;
            }
            if queue.units.len() >= MAX_QUEUED {
                queue.units.clear();
                queue.waiting_for_keyframe = true;
                self.keyframe_wanted.store(true, Ordering::Release);
                return;
            }
            queue.units.push_back(Arc::clone(unit));
        }
        if let Some(thread) = lock(&self.waiter).as_ref() {
            thread.unpark();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn unit(keyframe: bool, at_ms: u64) -> Arc<EncodedAccessUnit> {
        Arc::new(EncodedAccessUnit {
            nalus: vec![vec![if keyframe { 0x65 } else { 0x41 }, 1, 2]],
            is_keyframe: keyframe,
            timestamp: Duration::from_millis(at_ms),
        })
    }

    #[test]
    fn a_feed_starts_at_a_keyframe_and_starts_again_when_it_falls_behind() {
        let feed = EncodedFeed::new(VideoFormat::new(64, 48, 30).unwrap(), false, 500_000);
        assert!(
            feed.shared.take_keyframe_wish(),
            "a new feed wants a keyframe"
        );
        feed.shared.push(false, &unit(false, 0));
        assert!(
            feed.next_unit().is_none(),
            "no delta before the first keyframe"
        );
        assert!(feed.shared.take_keyframe_wish());
        feed.shared.push(false, &unit(true, 33));
        feed.shared.push(false, &unit(false, 66));
        let taken: Vec<u64> = std::iter::from_fn(|| feed.next_unit())
            .map(|u| u.timestamp.as_millis() as u64)
            .collect();
        assert_eq!(taken, [33, 66]);
        // A sender that takes nothing for too long is emptied and waits for a keyframe.
        for i in 0..=MAX_QUEUED as u64 {
            feed.shared.push(false, &unit(false, 100 + i));
        }
        assert!(feed.next_unit().is_none());
        assert!(feed.shared.take_keyframe_wish());
        feed.shared.push(false, &unit(false, 500));
        assert!(feed.next_unit().is_none());
        feed.shared.push(false, &unit(true, 533));
        assert_eq!(feed.next_unit().unwrap().timestamp.as_millis(), 533);
        // A restart drops what is queued and asks for a keyframe.
        feed.shared.push(false, &unit(false, 566));
        feed.restart();
        assert!(feed.next_unit().is_none());
        assert!(feed.shared.take_keyframe_wish());
        feed.set_bitrate(300_000);
        assert_eq!(feed.shared.bitrate(), 300_000);
        // A feed becoming active starts again at a keyframe; an inactive one holds nothing.
        assert!(!feed.is_active());
        feed.shared.take_keyframe_wish();
        feed.shared.push(false, &unit(true, 600));
        feed.set_active(true);
        assert!(feed.is_active() && feed.next_unit().is_none());
        assert!(feed.shared.take_keyframe_wish());
        feed.shared.push(false, &unit(true, 633));
        feed.set_active(false);
        assert!(feed.next_unit().is_none());
    }

    #[test]
    fn a_feed_asked_for_another_cut_takes_only_units_cut_that_way_from_a_keyframe() {
        let feed = EncodedFeed::new(VideoFormat::new(64, 48, 30).unwrap(), false, 500_000);
        feed.shared.push(false, &unit(true, 0));
        feed.set_single_nal(true);
        assert!(feed.single_nal());
        assert!(feed.next_unit().is_none(), "what was queued goes");
        assert!(feed.shared.take_keyframe_wish());
        // A keyframe still cut for mode 1 (encoded before the producer saw the change) is
        // refused; the first one cut for mode 0 is taken.
        feed.shared.push(false, &unit(true, 33));
        assert!(feed.next_unit().is_none());
        feed.shared.push(true, &unit(false, 66));
        assert!(feed.next_unit().is_none(), "no delta before a keyframe");
        feed.shared.push(true, &unit(true, 100));
        assert_eq!(feed.next_unit().unwrap().timestamp.as_millis(), 100);
        // Asking for the cut it has changes nothing.
        feed.shared.push(true, &unit(false, 133));
        feed.set_single_nal(true);
        assert_eq!(feed.next_unit().unwrap().timestamp.as_millis(), 133);
    }
}
