//! The conference mosaic's cost: drawing one 640x480 mosaic from 3 and 6 participants' 640x480
//! pictures (each scaled into its cell), one 1280x720 mosaic from 6, and a leg of another
//! size taking the mosaic (one scaling per new mosaic). At 30 mosaics a second a draw must
//! take far less than 33 ms; the figure per draw is the host's video cost beyond its encoders
//! and decoders.

use callisto_media::conference::Mosaic;
use callisto_media::video::{scale_i420, TestPattern, VideoFormat, VideoFrame, VideoSource};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

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

criterion_group!(benches, bench);
criterion_main!(benches);
