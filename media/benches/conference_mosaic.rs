//! The conference mosaic's cost: drawing one 640x480 mosaic from 3 and 6 participants' 640x480
//! pictures (each scaled into its cell), one 1280x720 mosaic from 6, and a leg of another
//! size taking the mosaic (one scaling per new mosaic). At 30 mosaics a second a draw must
//! take far less than 33 ms; the figure per draw is the host's video cost beyond its encoders
//! and decoders.
//!
//! After criterion, a running mosaic (640x480 at 30 fps, the host's moving test pattern)
//! encodes for one leg sent the mosaic, then also for a leg sent the host's picture alone (as
//! a leg that takes everyone's streams is: a second group), then for three legs sent the
//! mosaic (each its own drawing without its own picture, and its own encoding), each for 5 s
//! (1 s without `--bench`), and prints the pictures each leg got per second and the CPU of the
//! mosaic's thread meanwhile (drawing and encoding): the cost of the mosaic with one encoding,
//! of a second encoding on the mosaic's thread, which encodes its groups one after the other on
//! each tick (each leg should still get its 30), and of three mosaic legs.

use std::time::{Duration, Instant};

use callisto_media::conference::{ConferenceBridge, MixerConfig, Mosaic};
use callisto_media::video::{
    scale_i420, TestPattern, VideoFormat, VideoFrame, VideoSink, VideoSource,
};
use criterion::{black_box, Criterion, Throughput};

fn pictures(count: u16, width: u32, height: u32) -> Vec<VideoFrame> {
    (1..=count)
        .map(|id| {
            let format = VideoFormat::new(width, height, 30).expect("a valid format");
            let mut pattern = TestPattern::new(format, id).expect("a valid pattern");
            pattern.next_frame().expect("a frame").expect("a frame")
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("conference_mosaic");
    group.throughput(Throughput::Elements(1));
    for (count, size, name) in [
        (3, (640, 480), "3 pictures into 640x480"),
        (6, (640, 480), "6 pictures into 640x480"),
        (6, (1280, 720), "6 pictures into 1280x720"),
    ] {
        let frames = pictures(count, 640, 480);
        let refs: Vec<&VideoFrame> = frames.iter().collect();
        let mut mosaic = Mosaic::new(size.0, size.1).expect("a valid size");
        group.bench_function(name, |b| {
            b.iter(|| black_box(mosaic.compose(&refs).y()[0]));
        });
    }
    let mosaic = pictures(1, 640, 480).remove(0);
    group.bench_function("640x480 mosaic scaled for a 320x240 leg", |b| {
        b.iter(|| black_box(scale_i420(&mosaic, 320, 240).expect("scaled").y()[0]));
    });
    group.finish();
}

/// CPU time the mosaic's thread has run so far, from `/proc/self/task/*/schedstat` (Linux,
/// nanosecond precision).
fn mosaic_thread_cpu() -> Option<Duration> {
    let mut total = None;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path();
        if std::fs::read_to_string(path.join("comm")).ok()?.trim() != "mosaic" {
            continue;
        }
        let schedstat = std::fs::read_to_string(path.join("schedstat")).ok()?;
        let ns: u64 = schedstat.split_whitespace().next()?.parse().ok()?;
        *total.get_or_insert(Duration::ZERO) += Duration::from_nanos(ns);
    }
    total
}

/// `mosaic_legs` legs sent the mosaic (the first without a picture of its own, the others
/// with one), and with `host_only_leg` one more sent the host's picture alone, on a running
/// mosaic, as the module docs say.
fn encodings(mosaic_legs: u16, host_only_leg: bool, length: Duration) {
    let bridge = ConferenceBridge::start(MixerConfig::default(), |_| {}).expect("a bridge");
    let format = VideoFormat::new(640, 480, 30).expect("a format");
    let mosaic = bridge.mosaic(format).expect("the mosaic");
    mosaic.set_local(Box::new(TestPattern::new(format, 1).expect("a pattern")));
    // Two participants' pictures in the mosaic beside the host's.
    let others = pictures(3, 640, 480);
    let mut tiles = Vec::new();
    for (tag, picture) in [(2, &others[1]), (3, &others[2])] {
        let (_, mut tile) = mosaic.join(tag, format);
        tile.consume(picture).expect("a tile takes a picture");
        tiles.push(tile);
    }
    let mut legs = Vec::new();
    let theirs = pictures(3 + mosaic_legs, 640, 480);
    for n in 0..mosaic_legs {
        let (leg, mut tile) = mosaic.join(u64::from(4 + n), format);
        if n > 0 {
            tile.consume(&theirs[usize::from(2 + n)])
                .expect("a tile takes a picture");
        }
        legs.push(leg.encoded(false, 1_000_000));
        tiles.push(tile);
    }
    if host_only_leg {
        let (leg, tile) = mosaic.join(99, format);
        legs.push(leg.host_only(|| true).encoded(false, 1_000_000));
        tiles.push(tile);
    }
    let feeds: Vec<_> = legs
        .iter()
        .map(|source| source.encoded_feed().expect("a feed"))
        .collect();
    for feed in &feeds {
        feed.set_active(true);
    }
    std::thread::sleep(Duration::from_millis(500));
    for feed in &feeds {
        while feed.next_unit().is_some() {}
    }
    let (before, started) = (mosaic_thread_cpu(), Instant::now());
    let mut units = vec![0u32; feeds.len()];
    while started.elapsed() < length {
        std::thread::sleep(Duration::from_millis(10));
        for (count, feed) in units.iter_mut().zip(&feeds) {
            while feed.next_unit().is_some() {
                *count += 1;
            }
        }
    }
    let (after, wall) = (mosaic_thread_cpu(), started.elapsed());
    let rates: Vec<String> = units
        .iter()
        .map(|&count| format!("{:.1}", f64::from(count) / wall.as_secs_f64()))
        .collect();
    let cpu = match (before, after) {
        (Some(before), Some(after)) => format!(
            "the mosaic's thread {:.0} % of one core",
            (after - before).as_secs_f64() / wall.as_secs_f64() * 100.0
        ),
        _ => "CPU not read".to_owned(),
    };
    println!(
        "conference_mosaic: {} of 640x480@30 for {:.1} s: {} pictures per second, {cpu}",
        match (mosaic_legs, host_only_leg) {
            (1, false) => "one encoding (the mosaic)".to_owned(),
            (1, true) => "two encodings (the mosaic, the host alone)".to_owned(),
            (n, _) => format!("{n} legs sent the mosaic, {n} drawings and encodings"),
        },
        wall.as_secs_f64(),
        rates.join(" and "),
    );
    assert!(
        units.iter().all(|&n| n > 0),
        "a leg got no pictures: {units:?}"
    );
    mosaic.stop();
    bridge.stop();
}

fn main() {
    let benching = std::env::args().any(|argument| argument == "--bench");
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
    let length = Duration::from_secs(if benching { 5 } else { 1 });
    encodings(1, false, length);
    encodings(1, true, length);
    encodings(3, false, length);
}
