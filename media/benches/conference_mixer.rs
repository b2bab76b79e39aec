//! The conference mixer's cost: one 20 ms mix (every leg's queue, the sum, an N−1 mix and a
//! limiter per leg, levels and the active speaker) for 3, 6 and 12 legs of 48 kHz speech-level
//! tones, and the same with the limiter working (every leg near full scale). Throughput is in
//! mixes; a mix must take far less than its 20 ms.
//!
//! Then the whole audio work of a bridge with 6 legs in mixed codecs (3 Opus at 48 kHz, 2 PCMU
//! and 1 PCMA at 8 kHz): per 20 ms, each leg's packet decoded (and resampled to 48 kHz), the
//! mix, and each leg's N−1 mix resampled to its codec's rate and encoded. Criterion times one
//! such round; a plain timing after it prints how many times faster than real time one core
//! does it (the target is at least 100x).

use std::time::{Duration, Instant};

use callisto_media::audio::{AudioFormat, Resampler};
use callisto_media::codec::{AudioCodecKind, AudioDecoder, AudioEncoder, EncoderConfig};
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

/// One leg of a bridge as the bridge's codecs see it: its packet in, its mix out.
struct CodecLeg {
    id: LegId,
    /// The packet the leg's peer sends every 20 ms (its tone, encoded once).
    packet: Vec<u8>,
    decoder: Box<dyn AudioDecoder>,
    encoder: Box<dyn AudioEncoder>,
    to_mix: Resampler,
    from_mix: Resampler,
    pcm: Vec<i16>,
    at_48k: Vec<i16>,
    at_codec_rate: Vec<i16>,
    out: Vec<u8>,
}

const MIX_FORMAT: AudioFormat = AudioFormat::MONO_48K;

/// Six legs: Opus, PCMU, Opus, PCMA, Opus, PCMU, each with a tone of its own.
fn codec_legs(mixer: &mut Mixer, start: Instant) -> Vec<CodecLeg> {
    use AudioCodecKind::{Opus, Pcma, Pcmu};
    [Opus, Pcmu, Opus, Pcma, Opus, Pcmu]
        .into_iter()
        .zip(tones(6, 0.25))
        .map(|(kind, tone)| {
            let format = kind.pcm_format(1);
            let mut encoder = kind.make_encoder(&EncoderConfig::mono()).expect("encoder");
            let mut from_mix = Resampler::new(MIX_FORMAT, format).expect("resampler");
            let mut pcm = Vec::new();
            from_mix.process_into(&tone, &mut pcm).expect("resampled");
            pcm.resize(encoder.frame_samples(), 0);
            let mut packet = Vec::new();
            encoder.encode(&pcm, &mut packet).expect("encoded");
            CodecLeg {
                id: mixer.add_leg(start),
                packet,
                decoder: kind.make_decoder(1).expect("decoder"),
                encoder,
                to_mix: Resampler::new(format, MIX_FORMAT).expect("resampler"),
                from_mix,
                pcm: Vec::new(),
                at_48k: Vec::new(),
                at_codec_rate: Vec::new(),
                out: Vec::new(),
            }
        })
        .collect()
}

/// One 20 ms round of the bridge's audio: decode, mix, encode, for every leg.
fn codec_round(mixer: &mut Mixer, legs: &mut [CodecLeg], now: Instant) {
    for leg in legs.iter_mut() {
        leg.pcm.clear();
        leg.decoder
            .decode(&leg.packet, &mut leg.pcm)
            .expect("decoded");
        leg.at_48k.clear();
        leg.to_mix
            .process_into(&leg.pcm, &mut leg.at_48k)
            .expect("resampled");
        mixer.push(leg.id, &leg.at_48k, now);
    }
    black_box(mixer.mix(now));
    for leg in legs.iter_mut() {
        let mix = mixer.output(leg.id).unwrap_or(&[]);
        leg.at_codec_rate.clear();
        leg.from_mix
            .process_into(mix, &mut leg.at_codec_rate)
            .expect("resampled");
        leg.at_codec_rate.resize(leg.encoder.frame_samples(), 0);
        leg.out.clear();
        leg.encoder
            .encode(&leg.at_codec_rate, &mut leg.out)
            .expect("encoded");
        black_box(&leg.out);
    }
}

fn bench_codecs(c: &mut Criterion) {
    let start = Instant::now();
    let mut mixer = Mixer::new(MixerConfig::default());
    let mut legs = codec_legs(&mut mixer, start);
    let mut tick = 0u64;
    let mut group = c.benchmark_group("conference_mixer");
    group.throughput(Throughput::Elements(1));
    group.bench_function("6 legs in mixed codecs, decode + mix + encode", |b| {
        b.iter(|| {
            tick += 1;
            codec_round(
                &mut mixer,
                &mut legs,
                start + Duration::from_millis(20 * tick),
            );
        })
    });
    group.finish();
    // The real-time factor: 20 ms of conference over the time one round takes.
    let rounds: u32 = if std::env::args().any(|a| a == "--bench") {
        2_000
    } else {
        20
    };
    let began = Instant::now();
    for _ in 0..rounds {
        tick += 1;
        codec_round(
            &mut mixer,
            &mut legs,
            start + Duration::from_millis(20 * tick),
        );
    }
    let per_round = began.elapsed() / rounds;
    println!(
        "conference_mixer: 6 legs in mixed codecs (3 Opus, 2 PCMU, 1 PCMA), decode + mix + \
         encode: {:.1} us per 20 ms, {:.0}x real time on one core (target: at least 100x)",
        per_round.as_secs_f64() * 1e6,
        0.020 / per_round.as_secs_f64()
    );
}

criterion_group!(benches, bench, bench_codecs);
criterion_main!(benches);
