//! Tests of the mosaic's thread: the pictures legs get, and the shared encodings per size and
//! rate.

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
fn legs_send_a_mosaic_of_everyone_else_with_the_speaker_first() {
    let speaker = Arc::new(AtomicU64::new(NO_SPEAKER));
    let bridge = MosaicBridge::start(format(640, 480), speaker.clone()).unwrap();
    let mut local = TestPattern::new(format(640, 480), 1).unwrap();
    let _ = local.next_frame();
    bridge.set_local(Box::new(local));
    let (mut a_source, mut a_tile) = bridge.join(7, format(640, 480));
    let (mut b_source, mut b_tile) = bridge.join(9, format(640, 480));
    let (_c_source, mut c_tile) = bridge.join(11, format(640, 480));
    // Before any picture arrives, only the host is drawn.
    wait_for(&mut a_source, 1, &[Some(1)]);
    a_tile.consume(&picture(2)).unwrap();
    b_tile.consume(&picture(3)).unwrap();
    c_tile.consume(&picture(4)).unwrap();
    // Each leg is sent the others, not itself.
    wait_for(&mut a_source, 3, &[Some(1), Some(3), Some(4)]);
    wait_for(&mut b_source, 3, &[Some(1), Some(2), Some(4)]);
    assert_eq!(bridge.pictures(), 4);
    speaker.store(9, Ordering::Relaxed);
    wait_for(&mut a_source, 3, &[Some(3), Some(1), Some(4)]);
    // The speaker's own mosaic keeps everyone else in their order.
    wait_for(&mut b_source, 3, &[Some(1), Some(2), Some(4)]);
    // A leg that leaves is gone from the next mosaic.
    drop(c_tile);
    wait_for(&mut a_source, 2, &[Some(3), Some(1)]);
    assert_eq!(bridge.pictures(), 3);
}

/// Decodes `feed`'s units until a picture whose mosaic of `count` reads `want` (in any
/// order), waiting for them; the units taken.
fn decode_until(
    feed: &EncodedFeed,
    count: usize,
    want: &[u16],
) -> Vec<Arc<crate::video::h264::EncodedAccessUnit>> {
    let mut decoder = crate::video::h264::H264Decoder::new().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut taken = Vec::new();
    loop {
        let unit = units(feed, 1).remove(0);
        let picture = decoder.decode_nalus(&unit.nalus, unit.timestamp).unwrap();
        taken.push(unit);
        if let Some(picture) = picture {
            let mut shown: Vec<u16> = identities(&picture, count).into_iter().flatten().collect();
            shown.sort_unstable();
            if shown == want {
                return taken;
            }
            assert!(Instant::now() < deadline, "the mosaic reads {shown:?}");
        }
    }
}

#[test]
fn each_leg_sent_the_mosaic_gets_an_encoding_without_its_own_picture() {
    let speaker = Arc::new(AtomicU64::new(NO_SPEAKER));
    let bridge = MosaicBridge::start(format(640, 480), speaker).unwrap();
    bridge.set_local(Box::new(TestPattern::new(format(640, 480), 1).unwrap()));
    let [(a, mut a_tile), (b, mut b_tile)] = [7, 9].map(|tag| bridge.join(tag, format(640, 480)));
    let feeds = [a, b].map(|source| {
        let feed = source
            .encoded(false, 1_000_000)
            .encoded_feed()
            .expect("a feed");
        feed.set_active(true);
        feed
    });
    a_tile.consume(&picture(2)).unwrap();
    b_tile.consume(&picture(3)).unwrap();
    let to_a = decode_until(&feeds[0], 2, &[1, 3]);
    let to_b = decode_until(&feeds[1], 2, &[1, 2]);
    let more_to_a = units(&feeds[0], 5);
    assert!(!to_b
        .iter()
        .any(|u| to_a.iter().chain(&more_to_a).any(|v| Arc::ptr_eq(u, v))));
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
/// encoding of the host's picture alone, both sending: the bridge, their feeds and their
/// tiles.
fn two_encoded_legs() -> (MosaicBridge, [EncodedFeed; 2], [TileSink; 2]) {
    let speaker = Arc::new(AtomicU64::new(NO_SPEAKER));
    let bridge = MosaicBridge::start(format(320, 240), speaker).unwrap();
    bridge.set_local(Box::new(TestPattern::new(format(320, 240), 1).unwrap()));
    let [(a, a_tile), (b, b_tile)] = [7, 9].map(|tag| bridge.join(tag, format(320, 240)));
    let feeds = [a, b].map(|source| {
        let feed = source
            .host_only(|| true)
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
fn legs_of_one_size_sent_the_host_alone_share_one_encoding() {
    use crate::video::h264::H264Decoder;
    let speaker = Arc::new(AtomicU64::new(NO_SPEAKER));
    let bridge = MosaicBridge::start(format(320, 240), speaker).unwrap();
    bridge.set_local(Box::new(TestPattern::new(format(320, 240), 1).unwrap()));
    let (a, _a_tile) = bridge.join(7, format(320, 240));
    let (b, _b_tile) = bridge.join(9, format(320, 240));
    let (c, _c_tile) = bridge.join(11, format(160, 120));
    let [a, b, c] = [a, b, c].map(|source| source.host_only(|| true).encoded(false, 300_000));
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
    // other tick's picture, none of them A's units. (What both have queued goes first: B's
    // with the keyframe it started at.)
    let drain = |feed: &EncodedFeed| std::iter::from_fn(|| feed.next_unit()).collect::<Vec<_>>();
    drain(&feeds[0]);
    drain(&feeds[1]);
    feeds[1].set_layer(320, 240, 15);
    assert_eq!(feeds[1].rate(), 15);
    keyframe_where(&feeds[1], |_| true);
    let halved = units(&feeds[1], 6);
    assert!(every(&halved, 2), "{:?}", steps(&halved));
    // A's units of the same time.
    let a_meanwhile = drain(&feeds[0]);
    assert!(
        a_meanwhile.len() >= halved.len(),
        "{} units for a",
        a_meanwhile.len()
    );
    assert!(!halved
        .iter()
        .any(|u| a_meanwhile.iter().any(|v| Arc::ptr_eq(u, v))));

    // Advised the full rate again, B shares A's encoding once more.
    feeds[1].set_layer(320, 240, 30);
    let rejoined = keyframe_where(&feeds[1], |_| true);
    comes_to(&feeds[0], &rejoined);

    // A rate between the mosaic's and its half is the mosaic's: B stays in A's group (no
    // new encoding, so B's later units are A's too).
    feeds[1].set_layer(320, 240, 25);
    let later = units(&feeds[1], 10).pop().expect("a unit");
    comes_to(&feeds[0], &later);
}

#[test]
fn a_leg_switched_to_the_host_alone_sends_the_hosts_picture() {
    let speaker = Arc::new(AtomicU64::new(NO_SPEAKER));
    let bridge = MosaicBridge::start(format(640, 480), speaker).unwrap();
    bridge.set_local(Box::new(TestPattern::new(format(640, 480), 1).unwrap()));
    let switch = Arc::new(AtomicBool::new(true));
    let (source, mut tile) = bridge.join(7, format(320, 240));
    let (_other, mut other_tile) = bridge.join(9, format(320, 240));
    let on = switch.clone();
    let mut source = source.host_only(move || on.load(Ordering::Relaxed));
    tile.consume(&picture(2)).unwrap();
    other_tile.consume(&picture(3)).unwrap();
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
    // Switched back, it sends the mosaic of the host and the other leg.
    switch.store(false, Ordering::Relaxed);
    wait_for(&mut source, 2, &[Some(1), Some(3)]);
}

#[test]
fn a_leg_of_another_size_gets_the_mosaic_scaled_with_its_own_timestamps() {
    let speaker = Arc::new(AtomicU64::new(NO_SPEAKER));
    let bridge = MosaicBridge::start(format(640, 480), speaker).unwrap();
    let (mut small, _tile) = bridge.join(3, format(320, 240));
    let (_other, mut other_tile) = bridge.join(4, format(640, 480));
    assert_eq!(small.format(), format(320, 240));
    let black = small.next_frame().unwrap().unwrap();
    assert_eq!((black.width(), black.height()), (320, 240));
    other_tile.consume(&picture(5)).unwrap();
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
