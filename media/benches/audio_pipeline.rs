//! Cost of one 20 ms audio frame through each stage of the send and receive paths: Opus encode +
//! decode (48 kHz mono; the default — wideband, complexity 1 — and, for comparison, fullband at
//! complexity 5 and complexities 2, 3 and 10 at wideband), G.711 µ-law encode + decode, and
//! resampling between a 48 kHz device and an 8 kHz codec. Throughput is in frames, so frames/s ÷
//! 50 is how many times faster than real time one core runs the stage.
//!
//! After criterion, what each Opus complexity costs in quality: a synthetic voice (glottal pulses
//! at a gliding pitch through three moving formants, with fricative noise bursts) coded at the
//! default 32 kb/s, wideband, FEC on, and its decoded segmental SNR and log-spectral distance
//! printed per complexity.

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

/// Four seconds of a synthetic voice at 48 kHz: glottal pulses at a pitch gliding between 80
/// and 160 Hz through three resonators whose formants move, a slowly changing loudness, and a
/// fricative noise burst in each half second's last fifth. Deterministic.
fn synthetic_voice() -> Vec<i16> {
    const RATE: f64 = 48_000.0;
    let formants = [(700.0, 80.0), (1_220.0, 90.0), (2_600.0, 120.0)];
    let mut resonators = [[0.0f64; 2]; 3];
    let (mut phase, mut seed) = (0.0f64, 12_345u32);
    (0..4 * 48_000)
        .map(|i| {
            let t = f64::from(i) / RATE;
            phase += (120.0 + 40.0 * (t * 1.3).sin()) / RATE;
            let pulse = if phase >= 1.0 {
                phase -= 1.0;
                1.0
            } else {
                0.0
            };
            let mut voiced = 0.0;
            for (k, ((hz, bandwidth), state)) in formants.iter().zip(&mut resonators).enumerate() {
                let hz = hz * (1.0 + 0.15 * (t * (0.7 + 0.4 * k as f64)).sin());
                let r = (-std::f64::consts::PI * bandwidth / RATE).exp();
                let a1 = 2.0 * r * (std::f64::consts::TAU * hz / RATE).cos();
                let out = pulse + a1 * state[0] - r * r * state[1];
                *state = [out, state[0]];
                voiced += out;
            }
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = f64::from(seed >> 8) / f64::from(1u32 << 24) - 0.5;
            let fricative = if (t * 2.0).fract() > 0.8 {
                noise * 0.18
            } else {
                0.0
            };
            let loudness = 0.5 + 0.5 * (t * 3.0).sin().abs();
            let sample = (voiced * 0.02 * loudness + fricative) * 12_000.0;
            sample.clamp(-32_000.0, 32_000.0) as i16
        })
        .collect()
}

/// `samples` at 48 kHz averaged by threes down to 16 kHz, from `offset` on: the wideband band the
/// codec keeps, where the comparison is made.
fn to_16k(samples: &[i16], offset: usize) -> Vec<f64> {
    samples[offset.min(samples.len())..]
        .chunks_exact(3)
        .map(|three| three.iter().map(|&s| f64::from(s)).sum::<f64>() / 3.0)
        .collect()
}

/// The log power spectrum (dB) of a Hann-windowed block, every other bin.
fn spectrum_db(block: &[f64]) -> Vec<f64> {
    let n = block.len() as f64;
    (1..block.len() / 2)
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
        .collect()
}

/// Codes the synthetic voice at each Opus complexity and prints the decoded result's segmental
/// SNR (20 ms segments that carry sound, after the first half second, each clamped to −10..35 dB)
/// and mean log-spectral distance against the original, after finding the codec's delay (up to
/// 10 ms).
fn voice_quality(complexities: &[u8]) {
    let voice = synthetic_voice();
    for &complexity in complexities {
        let config = EncoderConfig::mono().with_complexity(complexity);
        let (Ok(mut encoder), Ok(mut decoder)) = (
            AudioCodecKind::Opus.make_encoder(&config),
            AudioCodecKind::Opus.make_decoder(1),
        ) else {
            panic!("Opus is not available");
        };
        let (mut payload, mut decoded) = (Vec::new(), Vec::new());
        for frame in voice.chunks_exact(960) {
            payload.clear();
            let _ = encoder.encode(frame, &mut payload);
            let _ = decoder.decode(&payload, &mut decoded);
        }
        let correlation = |delay: usize| -> f64 {
            (48_000..72_000)
                .map(|i| f64::from(voice[i]) * f64::from(decoded[i + delay]))
                .sum()
        };
        let delay = (0..480)
            .max_by(|&a, &b| correlation(a).total_cmp(&correlation(b)))
            .unwrap_or(0);
        let (original, coded) = (to_16k(&voice, 0), to_16k(&decoded, delay));
        let (mut snrs, mut distances) = (Vec::new(), Vec::new());
        let end = original.len().min(coded.len()).saturating_sub(320);
        for start in (8_000..end).step_by(320) {
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
            "audio_codec: Opus complexity {complexity}{}: synthetic voice at 32 kb/s, segmental \
             SNR {:.2} dB, log-spectral distance {:.2} dB",
            if complexity == EncoderConfig::DEFAULT_COMPLEXITY {
                " (the default)"
            } else {
                ""
            },
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
