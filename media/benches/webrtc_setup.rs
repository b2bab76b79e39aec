//! WebRTC call setup on loopback: from the offer to `Connected` (ICE + DTLS), to the first
//! decoded audio frame and (with video) to the first decoded H.264 picture on the answering
//! side, with Callisto's ICE check interval (20 ms) and with the `rtc` library's default
//! (200 ms), which is what made two bare peers take ~200 ms.
//!
//! `cargo bench -p callisto-media --bench webrtc_setup` also prints the median of 10 runs of
//! each before criterion's own figures.

use std::time::{Duration, Instant};

use callisto_media::audio::{AudioFormat, NullSink, ToneSource};
use callisto_media::video::{NullVideoSink, TestPattern, VideoFormat};
use callisto_media::webrtc::{
    VideoConfig, WebRtcConfig, WebRtcMedia, WebRtcSession, WebRtcVideoMedia,
};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use tokio::runtime::Runtime;

const FORMAT: AudioFormat = AudioFormat::MONO_48K;

/// One setup's milestones, from the moment the offer is asked for.
#[derive(Debug, Clone, Copy)]
struct Setup {
    connected: Duration,
    first_audio: Duration,
    first_video: Option<Duration>,
}

fn media(video: bool) -> WebRtcMedia {
    let format = VideoFormat::new(640, 480, 30).unwrap();
    WebRtcMedia {
        audio_source: Box::new(ToneSource::with_dbfs(FORMAT, 440.0, -12.0)),
        audio_sink: Box::new(NullSink::new(FORMAT)),
        video: video.then(|| WebRtcVideoMedia {
            source: Box::new(TestPattern::new(format, 1).unwrap()),
            sink: Box::new(NullVideoSink::new()),
            more_streams: None,
        }),
    }
}

async fn setup(check_interval: Duration, video: bool) -> Setup {
    let config = WebRtcConfig {
        ice_check_interval: check_interval,
        video: video.then(VideoConfig::default),
        ..WebRtcConfig::loopback()
    };
    let a = WebRtcSession::new(config.clone(), media(video))
        .await
        .unwrap();
    let b = WebRtcSession::new(config, media(video)).await.unwrap();
    let start = Instant::now();
    let offer = a.create_offer().await.unwrap();
    let answer = b.accept_offer(&offer).await.unwrap();
    a.apply_answer(&answer).await.unwrap();
    let (ra, rb) = tokio::join!(a.wait_connected(), b.wait_connected());
    ra.unwrap();
    rb.unwrap();
    let connected = start.elapsed();
    let (mut first_audio, mut first_video) = (None, None);
    while first_audio.is_none() || (video && first_video.is_none()) {
        let stats = b.stats();
        if stats.audio.is_some_and(|audio| audio.decoded_frames > 0) {
            first_audio.get_or_insert(start.elapsed());
        }
        if stats.video.is_some_and(|video| video.frames_decoded > 0) {
            first_video.get_or_insert(start.elapsed());
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no media within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    a.close().await;
    b.close().await;
    Setup {
        connected,
        first_audio: first_audio.unwrap_or_default(),
        first_video,
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn report(runtime: &Runtime, label: &str, interval: Duration, video: bool) {
    let runs: Vec<Setup> = (0..10)
        .map(|_| runtime.block_on(setup(interval, video)))
        .collect();
    let first_video: Vec<Duration> = runs.iter().filter_map(|s| s.first_video).collect();
    println!(
        "{label}: offer → Connected median {:?}, → first decoded audio median {:?}{} (10 runs)",
        median(runs.iter().map(|s| s.connected).collect()),
        median(runs.iter().map(|s| s.first_audio).collect()),
        if first_video.is_empty() {
            String::new()
        } else {
            format!(", → first decoded video median {:?}", median(first_video))
        },
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
    report(&runtime, "check interval 20 ms", callisto, false);
    report(
        &runtime,
        "check interval 200 ms (rtc default)",
        library,
        false,
    );
    report(
        &runtime,
        "check interval 20 ms, 640x480 video",
        callisto,
        true,
    );

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
                    .map(|_| runtime.block_on(setup(interval, false)).connected)
                    .sum()
            });
        });
    }
    group.bench_function("first_audio_20ms", |bencher| {
        bencher.iter_custom(|iterations| {
            (0..iterations)
                .map(|_| runtime.block_on(setup(callisto, false)).first_audio)
                .sum()
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
