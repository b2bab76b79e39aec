//! Cost of one 20 ms audio frame through each stage of the send and receive paths: Opus encode +
//! decode (48 kHz mono; the default — wideband, complexity 1 — and, for comparison, fullband at
//! complexity 5 and complexities 2, 3 and 10 at wideband), G.711 µ-law encode + decode, and
//! resampling between a 48 kHz device and an 8 kHz codec. Throughput is in frames, so frames/s ÷
//! 50 is how many times faster than real time one core runs the stage.
//!
//! After criterion, what each Opus complexity costs and gives on a voice: a synthetic voice
//! (glottal pulses at a gliding pitch through three moving formants, with fricative noise
//! bursts) coded at the default 32 kb/s, wideband, FEC on, with its encode + decode time and its
//! decoded segmental SNR and log-spectral distance printed per complexity.

#[path = "support/voice.rs"]
mod voice;

use std::hint::black_box;

use criterion::{criterion_group, Criterion, Throughput};

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
            opus.with_complexity(2),
            "opus_wideband_complexity_2_encode_decode_20ms",
        ),
        (
            opus.with_complexity(3),
            "opus_wideband_complexity_3_encode_decode_20ms",
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

/// `samples` at 48 kHz from `offset` on, resampled to 16 kHz (the wideband band the codec keeps)
/// by the crate's resampler, in 20 ms frames; a trailing partial frame is dropped.
fn to_16k(samples: &[i16], offset: usize) -> Vec<f64> {
    let Ok(mut resampler) = Resampler::new(AudioFormat::MONO_48K, AudioFormat::MONO_16K) else {
        panic!("no resampler from 48 to 16 kHz");
    };
    let mut out = Vec::new();
    for frame in samples[offset.min(samples.len())..].chunks_exact(960) {
        resampler
            .process_into(frame, &mut out)
            .expect("a 20 ms frame resamples");
    }
    out.into_iter().map(f64::from).collect()
}

/// The log power spectrum (dB) of a Hann-windowed block, every other bin, each bin held to at
/// most 50 dB below the block's loudest: the gaps between harmonics and the band's edge, which
/// no listener hears, do not swamp the distance.
fn spectrum_db(block: &[f64]) -> Vec<f64> {
    let n = block.len() as f64;
    let bins: Vec<f64> = (1..block.len() / 2)
        .step_by(2)
        .map(|bin| {
            let (mut re, mut im) = (0.0, 0.0);
            for (i, sample) in block.iter().enumerate() {
                let window = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n).cos();
                let angle = std::f64::consts::TAU * (bin * i) as f64 / n;
                re += sample * window * angle.cos();
                im -= sample * window * angle.sin();
            }
            10.0 * (re * re + im * im + 1e-3).log10()
        })
        .collect();
    let floor = bins.iter().copied().fold(f64::MIN, f64::max) - 50.0;
    bins.into_iter().map(|db| db.max(floor)).collect()
}

/// Codes the synthetic voice at each Opus complexity and prints the decoded result's segmental
/// SNR (20 ms segments that carry sound, after the first half second, each clamped to −10..35 dB)
/// and mean log-spectral distance against the original, both at 16 kHz, after finding the
/// codec's delay. Both compare waveforms and spectra, not what a listener hears: SILK shapes its
/// noise to hide it under the voice, which neither figure rewards.
fn voice_quality(complexities: &[u8]) {
    let voice = voice::synthetic_voice();
    for &complexity in complexities {
        let config = EncoderConfig::mono().with_complexity(complexity);
        let (Ok(mut encoder), Ok(mut decoder)) = (
            AudioCodecKind::Opus.make_encoder(&config),
            AudioCodecKind::Opus.make_decoder(1),
        ) else {
            panic!("Opus is not available");
        };
        let (mut payload, mut decoded) = (Vec::new(), Vec::new());
        let started = std::time::Instant::now();
        for frame in voice.chunks_exact(960) {
            payload.clear();
            encoder.encode(frame, &mut payload).expect("Opus encodes");
            decoder
                .decode(&payload, &mut decoded)
                .expect("Opus decodes");
        }
        let per_frame = started.elapsed() / (voice.len() / 960) as u32;
        let correlation = |delay: usize| -> f64 {
            (48_000..72_000)
                .map(|i| f64::from(voice[i]) * f64::from(decoded[i + delay]))
                .sum()
        };
        // Opus delays the signal by its 6.5 ms look-ahead (312 samples at 48 kHz); the search
        // stays near it, away from the voice's pitch period (about 300 samples), whose peak at
        // a lag of a few samples would otherwise compete.
        let delay = (200..420)
            .max_by(|&a, &b| correlation(a).total_cmp(&correlation(b)))
            .unwrap_or(0);
        assert!(
            (290..=330).contains(&delay),
            "complexity {complexity}: codec delay found at {delay} samples"
        );
        let (original, coded) = (to_16k(&voice, 0), to_16k(&decoded, delay));
        let (mut snrs, mut distances) = (Vec::new(), Vec::new());
        let end = original.len().min(coded.len()).saturating_sub(320);
        for start in (8_000..=end).step_by(320) {
            let (a, b) = (&original[start..start + 320], &coded[start..start + 320]);
            let signal: f64 = a.iter().map(|x| x * x).sum();
            let error: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
            if signal > 1e3 * 320.0 {
                snrs.push((10.0 * (signal / error.max(1e-9)).log10()).clamp(-10.0, 35.0));
            }
            if start % 1_280 == 0 {
                let (sa, sb) = (spectrum_db(a), spectrum_db(b));
                let square: f64 = sa.iter().zip(&sb).map(|(x, y)| (x - y).powi(2)).sum();
                distances.push((square / sa.len() as f64).sqrt());
            }
        }
        let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len().max(1) as f64;
        println!(
            "audio_codec: Opus complexity {complexity}{}: synthetic voice at 32 kb/s, encode + \
             decode {:.1} µs per 20 ms, segmental SNR {:.2} dB, log-spectral distance {:.2} dB \
             (delay {delay} samples)",
            if complexity == EncoderConfig::DEFAULT_COMPLEXITY {
                " (the default)"
            } else {
                ""
            },
            per_frame.as_secs_f64() * 1e6,
            mean(&snrs),
            mean(&distances)
        );
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    if std::env::args().any(|arg| arg == "--bench") {
        voice_quality(&[0, 1, 2, 3, 5, 10]);
    } else {
        voice_quality(&[EncoderConfig::DEFAULT_COMPLEXITY]);
    }
}
