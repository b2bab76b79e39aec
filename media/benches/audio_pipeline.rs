//! Cost of one 20 ms audio frame through each stage of the send and receive paths: Opus encode +
//! decode (48 kHz mono; the default — wideband, complexity 3 — and, for comparison, the former
//! default of fullband at complexity 5, and complexities 1 and 10 at wideband), G.711 µ-law
//! encode + decode, and resampling between a 48 kHz device and an 8 kHz codec. Throughput is in frames, so frames/s ÷ 50 is how many times faster than real
//! time one core runs the stage.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use callisto_media::audio::{AudioFormat, AudioFrame, AudioSource, Resampler, ToneSource};
use callisto_media::codec::{AudioBandwidth, AudioCodecKind, EncoderConfig};

/// One second of a -12 dBFS 440 Hz tone in `format`, as 20 ms frames.
fn tone_frames(format: AudioFormat) -> Vec<AudioFrame> {
    let mut tone = ToneSource::with_dbfs(format, 440.0, -12.0);
    (0..50)
        .filter_map(|_| tone.read_frame().ok().flatten())
        .collect()
}

fn codec_round_trip(c: &mut Criterion, kind: AudioCodecKind, config: EncoderConfig, name: &str) {
    let (Ok(mut encoder), Ok(mut decoder)) = (kind.make_encoder(&config), kind.make_decoder(1))
    else {
        panic!("{kind} is not available");
    };
    let frames = tone_frames(encoder.pcm_format());
    let mut payload = Vec::with_capacity(1_500);
    let mut pcm = Vec::with_capacity(encoder.pcm_format().frame_len());
    let mut next = frames.iter().cycle();
    let mut group = c.benchmark_group("audio_codec");
    group.throughput(Throughput::Elements(1));
    group.bench_function(name, |b| {
        b.iter(|| {
            let frame = next.next().map_or(&[][..], AudioFrame::samples);
            payload.clear();
            pcm.clear();
            let bytes = encoder.encode(black_box(frame), &mut payload).unwrap_or(0);
            let samples = decoder.decode(black_box(&payload), &mut pcm).unwrap_or(0);
            bytes + samples
        })
    });
    group.finish();
}

fn resample(c: &mut Criterion, from: AudioFormat, to: AudioFormat, name: &str) {
    let Ok(mut resampler) = Resampler::new(from, to) else {
        panic!("no resampler from {from} to {to}");
    };
    let frames = tone_frames(from);
    let mut out = Vec::with_capacity(to.frame_len());
    let mut next = frames.iter().cycle();
    let mut group = c.benchmark_group("audio_resample");
    group.throughput(Throughput::Elements(1));
    group.bench_function(name, |b| {
        b.iter(|| {
            let frame = next.next().map_or(&[][..], AudioFrame::samples);
            out.clear();
            // The frames are 20 ms in the input format, which the resampler accepts.
            let _ = resampler.process_into(black_box(frame), &mut out);
            out.len()
        })
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    let opus = EncoderConfig::mono();
    codec_round_trip(
        c,
        AudioCodecKind::Opus,
        opus,
        "opus_mono_48k_encode_decode_20ms",
    );
    for (config, name) in [
        (
            opus.with_max_bandwidth(AudioBandwidth::Fullband)
                .with_complexity(5),
            "opus_fullband_complexity_5_encode_decode_20ms",
        ),
        (
            opus.with_complexity(1),
            "opus_wideband_complexity_1_encode_decode_20ms",
        ),
        (
            opus.with_complexity(10),
            "opus_wideband_complexity_10_encode_decode_20ms",
        ),
    ] {
        codec_round_trip(c, AudioCodecKind::Opus, config, name);
    }
    codec_round_trip(
        c,
        AudioCodecKind::Pcmu,
        EncoderConfig::mono(),
        "pcmu_encode_decode_20ms",
    );
    resample(
        c,
        AudioFormat::MONO_48K,
        AudioFormat::MONO_8K,
        "mono_48k_to_8k_20ms",
    );
    resample(
        c,
        AudioFormat::MONO_8K,
        AudioFormat::MONO_48K,
        "mono_8k_to_48k_20ms",
    );
    resample(
        c,
        AudioFormat::STEREO_48K,
        AudioFormat::MONO_16K,
        "stereo_48k_to_mono_16k_20ms",
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
