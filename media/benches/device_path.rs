//! Cost of 20 ms of audio through the device paths, without a device: what a capture callback
//! does (convert the device's `f32` samples to `i16` and write them into the ring) plus what the
//! media thread does in `DeviceCapture::read` (take a 20 ms device frame from the ring, mix
//! 44.1 kHz stereo down to mono and resample to 48 kHz), and the reverse for playback
//! (`DevicePlayback::write`'s conversion and ring write, then the playback callback's read into
//! `f32`). Throughput is in frames, so frames/s ÷ 50 is how many times faster than real time one
//! core runs the path; the ring alone (the callback's conversion and write, then the media
//! thread's read, without resampling) is measured too.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use callisto_media::audio::{AudioFormat, AudioFrame, AudioSource, Resampler, ToneSource};
use callisto_media::device::ring::{sample_ring, RingLimits};

const DEVICE: AudioFormat = AudioFormat::new(44_100, 2);
const CALL: AudioFormat = AudioFormat::MONO_48K;

fn device_samples() -> Vec<f32> {
    let mut tone = ToneSource::with_dbfs(DEVICE, 440.0, -12.0);
    let frame = tone
        .read_frame()
        .ok()
        .flatten()
        .unwrap_or_else(|| AudioFrame::silent_frame(DEVICE));
    frame
        .samples()
        .iter()
        .map(|&s| f32::from(s) / 32768.0)
        .collect()
}

fn to_i16(s: f32) -> i16 {
    (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

fn capture(c: &mut Criterion) {
    let input = device_samples();
    let limits = RingLimits::millis(DEVICE.sample_rate, 0, 200);
    let (mut writer, mut reader) = sample_ring(DEVICE.channels, limits);
    let Ok(mut resampler) = Resampler::new(DEVICE, CALL) else {
        panic!("no resampler from {DEVICE} to {CALL}");
    };
    let mut device_frame = vec![0i16; DEVICE.frame_len()];
    let mut out = Vec::with_capacity(CALL.frame_len());
    let mut group = c.benchmark_group("device_path");
    group.throughput(Throughput::Elements(1));
    group.bench_function("capture_20ms_44k1_stereo_f32_to_48k_mono", |b| {
        b.iter(|| {
            writer.write_from(black_box(&input), to_i16);
            reader.read(&mut device_frame);
            out.clear();
            let _ = resampler.process_into(&device_frame, &mut out);
            black_box(out.len())
        })
    });
    group.bench_function("capture_ring_only_20ms", |b| {
        b.iter(|| {
            writer.write_from(black_box(&input), to_i16);
            reader.read(&mut device_frame)
        })
    });
    group.finish();
}

fn playback(c: &mut Criterion) {
    let Ok(frame) = ToneSource::with_dbfs(CALL, 440.0, -12.0).read_frame() else {
        panic!("no tone");
    };
    let frame = frame.unwrap_or_else(|| AudioFrame::silent_frame(CALL));
    let limits = RingLimits::millis(DEVICE.sample_rate, 0, 200);
    let (mut writer, mut reader) = sample_ring(DEVICE.channels, limits);
    let Ok(mut resampler) = Resampler::new(CALL, DEVICE) else {
        panic!("no resampler from {CALL} to {DEVICE}");
    };
    let mut converted = Vec::with_capacity(DEVICE.frame_len());
    let mut device_out = vec![0f32; DEVICE.frame_len()];
    let mut group = c.benchmark_group("device_path");
    group.throughput(Throughput::Elements(1));
    group.bench_function("playback_20ms_48k_mono_to_44k1_stereo_f32", |b| {
        b.iter(|| {
            converted.clear();
            let _ = resampler.process_into(black_box(frame.samples()), &mut converted);
            writer.write(&converted);
            reader.read_into(&mut device_out, 0.0, |s| f32::from(s) / 32768.0)
        })
    });
    group.finish();
}

criterion_group!(benches, capture, playback);
criterion_main!(benches);
