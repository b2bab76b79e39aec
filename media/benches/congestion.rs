//! Cost of the video feedback cores: one bitrate-controller feedback batch, and building and
//! reading one TWCC packet.
//!
//! A batch is what 100 ms of a 2 Mbps stream produces: 20 packets of 1200 bytes sent, then one
//! feedback report about them (one of them lost, the delay steady). Each iteration advances
//! the virtual clock by 100 ms, so the controller's windows and filters run as in a call.

use std::time::{Duration, Instant};

use callisto_media::congestion::{
    feedback_from_twcc, BitrateController, CongestionConfig, PacketFeedback,
    TransportFeedbackBuilder,
};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

const BATCH: u16 = 20;

fn controller_batch(c: &mut Criterion) {
    let mut group = c.benchmark_group("congestion");
    group.throughput(Throughput::Elements(u64::from(BATCH)));
    group.bench_function("feedback_batch_20_packets", |b| {
        let start = Instant::now();
        let mut controller = BitrateController::new(CongestionConfig::default());
        let mut sequence = 0u16;
        let mut batch = 0u64;
        let mut feedback = Vec::with_capacity(usize::from(BATCH));
        b.iter(|| {
            let base = start + Duration::from_millis(100 * batch);
            feedback.clear();
            for i in 0..BATCH {
                let sent = base + Duration::from_millis(5 * u64::from(i));
                controller.on_packet_sent(sequence, 1_200, sent);
                let arrival = (sent - start) + Duration::from_millis(30);
                feedback.push(PacketFeedback {
                    sequence,
                    arrival: (i != 7).then_some(arrival),
                });
                sequence = sequence.wrapping_add(1);
            }
            controller.on_transport_feedback(&feedback, base + Duration::from_millis(130));
            batch += 1;
            black_box(controller.target_bitrate())
        });
    });
    group.bench_function("twcc_build_and_read_20_packets", |b| {
        let start = Instant::now();
        let mut builder = TransportFeedbackBuilder::new(1, 2, Duration::from_millis(100));
        let mut sequence = 0u16;
        let mut batch = 0u64;
        b.iter(|| {
            let base = start + Duration::from_millis(100 * batch);
            for i in 0..BATCH {
                if i != 7 {
                    builder.on_packet_received(
                        sequence,
                        base + Duration::from_millis(5 * u64::from(i)),
                    );
                }
                sequence = sequence.wrapping_add(1);
            }
            let twcc = builder
                .poll_feedback(base + Duration::from_millis(100))
                .expect("a report is due");
            batch += 1;
            black_box(feedback_from_twcc(&twcc).len())
        });
    });
    group.finish();
}

criterion_group!(benches, controller_batch);
criterion_main!(benches);
