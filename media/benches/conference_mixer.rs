//! The conference mixer's cost: one 20 ms mix (every leg's queue, the sum, an N−1 mix and a
//! limiter per leg, levels and the active speaker) for 3, 6 and 12 legs of 48 kHz speech-level
//! tones, and the same with the limiter working (every leg near full scale). Throughput is in
//! mixes; a mix must take far less than its 20 ms.

use std::time::{Duration, Instant};

use callisto_media::conference::{LegId, Mixer, MixerConfig, MIX_FRAME};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

fn tones(legs: usize, amplitude: f64) -> Vec<Vec<i16>> {
    (0..legs)
        .map(|l| {
            let hz = 300.0 + 97.0 * l as f64;
            (0..MIX_FRAME)
                .map(|n| {
                    let t = n as f64 / 48_000.0;
                    (amplitude * 32_767.0 * (std::f64::consts::TAU * hz * t).sin()) as i16
                })
                .collect()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("conference_mixer");
    group.throughput(Throughput::Elements(1));
    for (legs, amplitude, name) in [
        (3, 0.25, "3 legs"),
        (6, 0.25, "6 legs"),
        (12, 0.25, "12 legs"),
        (6, 0.9, "6 loud legs (limiting)"),
    ] {
        let frames = tones(legs, amplitude);
        let start = Instant::now();
        let mut mixer = Mixer::new(MixerConfig::default());
        let ids: Vec<LegId> = (0..legs).map(|_| mixer.add_leg(start)).collect();
        let mut tick = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                let now = start + Duration::from_millis(20 * tick);
                tick += 1;
                for (id, frame) in ids.iter().zip(&frames) {
                    mixer.push(*id, frame, now);
                }
                let report = mixer.mix(now);
                black_box((report, mixer.output(ids[0])));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
