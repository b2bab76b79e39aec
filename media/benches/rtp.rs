//! RTP-path throughput: building and parsing a 160-byte-payload RTP packet, and SRTP protect +
//! unprotect of the same. Criterion reports packets per second (one element per packet).
//!
//! `cargo bench -p callisto-media --bench rtp`

use std::time::{Duration, Instant};

use callisto_media::rtp::packet::parse_rtp;
use callisto_media::rtp::sender::RtpSender;
use callisto_media::rtp::srtp::{SrtpKeyMaterial, SrtpProfile, SrtpSession};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::SeedableRng;

const PAYLOAD: [u8; 160] = [0xd5; 160];

fn rtp_build_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("rtp");
    group.throughput(Throughput::Elements(1));
    let now = Instant::now();
    let mut sender = RtpSender::with_start(0x1234_5678, 0, 0, 0, 8_000);
    group.bench_function("build+parse 160-byte payload", |b| {
        b.iter(|| {
            let packet = sender.audio_packet(now, black_box(&PAYLOAD), 160);
            black_box(parse_rtp(&packet).ok())
        })
    });
    group.finish();
}

fn srtp_round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("srtp");
    group.throughput(Throughput::Elements(1));
    let mut rng = StdRng::seed_from_u64(1);
    let ka = SrtpKeyMaterial::generate(&mut rng);
    let kb = SrtpKeyMaterial::generate(&mut rng);
    let now = Instant::now();
    for profile in [
        SrtpProfile::AesCm128HmacSha1_80,
        SrtpProfile::AesCm128HmacSha1_32,
    ] {
        let (Ok(mut alice), Ok(mut bob)) = (
            SrtpSession::new(profile, &ka, &kb),
            SrtpSession::new(profile, &kb, &ka),
        ) else {
            panic!("SRTP sessions for {profile:?}");
        };
        // Replay protection refuses a packet twice, so every iteration protects a new one; the
        // packet is built outside the measured protect+unprotect.
        let mut sender = RtpSender::with_start(0xabcd, 0, 0, 0, 8_000);
        group.bench_function(
            format!("protect+unprotect 160 B {}", profile.sdes_name()),
            |b| {
                b.iter_batched(
                    || sender.audio_packet(now, &PAYLOAD, 160),
                    |packet| {
                        let wire = alice.protect_rtp(&packet).ok()?;
                        bob.unprotect_rtp(&wire).ok()
                    },
                    criterion::BatchSize::SmallInput,
                )
            },
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = rtp_build_parse, srtp_round_trip
}
criterion_main!(benches);
