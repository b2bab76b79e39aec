//! WebRTC call setup on loopback: from the offer to `Connected` (ICE + DTLS) and to the first
//! decoded audio frame on the answering side, with Callisto's ICE check interval (20 ms) and
//! with the `rtc` library's default (200 ms), which is what made two bare peers take ~200 ms.
//!
//! `cargo bench -p callisto-media --bench webrtc_setup` also prints the median of 10 runs of
//! each before criterion's own figures.

use std::time::{Duration, Instant};

use callisto_media::audio::{AudioFormat, NullSink, ToneSource};
use callisto_media::webrtc::{WebRtcConfig, WebRtcMedia, WebRtcSession};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use tokio::runtime::Runtime;

const FORMAT: AudioFormat = AudioFormat::MONO_48K;

/// One setup's milestones, from the moment the offer is asked for.
#[derive(Debug, Clone, Copy)]
struct Setup {
    connected: Duration,
    first_audio: Duration,
}

fn media() -> WebRtcMedia {
    WebRtcMedia {
        audio_source: Box::new(ToneSource::with_dbfs(FORMAT, 440.0, -12.0)),
        audio_sink: Box::new(NullSink::new(FORMAT)),
    }
}

async fn setup(check_interval: Duration) -> Setup {
    let config = WebRtcConfig {
        ice_check_interval: check_interval,
        ..WebRtcConfig::loopback()
    };
    let a = WebRtcSession::new(config.clone(), media()).await.unwrap();
    let b = WebRtcSession::new(config, media()).await.unwrap();
    let start = Instant::now();
    let offer = a.create_offer().await.unwrap();
    let answer = b.accept_offer(&offer).await.unwrap();
    a.apply_answer(&answer).await.unwrap();
    let (ra, rb) = tokio::join!(a.wait_connected(), b.wait_connected());
    ra.unwrap();
    rb.unwrap();
    let connected = start.elapsed();
    let first_audio = loop {
        let decoded = b.stats().audio.map_or(0, |audio| audio.decoded_frames);
        if decoded > 0 {
            break start.elapsed();
        }
        if start.elapsed() > Duration::from_secs(5) {
            panic!("no audio decoded within 5 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    a.close().await;
    b.close().await;
    Setup {
        connected,
        first_audio,
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn report(runtime: &Runtime, label: &str, interval: Duration) {
    let runs: Vec<Setup> = (0..10).map(|_| runtime.block_on(setup(interval))).collect();
    println!(
        "{label}: offer → Connected median {:?}, offer → first decoded audio median {:?} (10 runs)",
        median(runs.iter().map(|s| s.connected).collect()),
        median(runs.iter().map(|s| s.first_audio).collect()),
    );
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let callisto = callisto_media::webrtc::peer::ICE_CHECK_INTERVAL;
    let library = Duration::from_millis(200);
    report(&runtime, "check interval 20 ms", callisto);
    report(&runtime, "check interval 200 ms (rtc default)", library);

    let mut group = c.benchmark_group("webrtc_setup");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));
    for (name, interval) in [("connect_20ms", callisto), ("connect_200ms", library)] {
        group.bench_function(name, |bencher| {
            bencher.iter_custom(|iterations| {
                (0..iterations)
                    .map(|_| runtime.block_on(setup(interval)).connected)
                    .sum()
            });
        });
    }
    group.bench_function("first_audio_20ms", |bencher| {
        bencher.iter_custom(|iterations| {
            (0..iterations)
                .map(|_| runtime.block_on(setup(callisto)).first_audio)
                .sum()
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
