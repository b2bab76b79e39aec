//! Jitter buffer throughput: packets pushed and popped per second.
//!
//! Each group replays a prepared schedule of arrivals and playout pops (20 s of 20 ms Opus
//! packets, 160-byte payloads) into a fresh buffer: once over a clean network, once over a
//! network with 5 % loss, 2 % reordering and 40 ms jitter (the buffer then also conceals,
//! sorts and adapts). Throughput is in packets.

use std::time::{Duration, Instant};

use bytes::Bytes;
use callisto_media::jitter_buffer::{BufferedPacket, JitterBuffer, JitterBufferConfig, Playout};
use callisto_media::netsim::{NetworkConditions, SimAudioSender, SimNetwork};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

/// One step of a schedule.
enum Step {
    Push(BufferedPacket, Instant),
    Pop(Instant),
}

/// `seconds` of 20 ms packets over `conditions`, with a pop every 20 ms.
fn schedule(conditions: NetworkConditions, seconds: u64) -> (Vec<Step>, u64) {
    let start = Instant::now();
    let frame = Duration::from_millis(20);
    let mut sender = SimAudioSender::new(48_000, frame, start);
    let mut network = SimNetwork::new(conditions, 42);
    let payload = Bytes::from(vec![0x5a; 160]);
    let end = start + Duration::from_secs(seconds);
    let mut steps = Vec::new();
    let mut packets = 0;
    let mut pop = start + Duration::from_millis(10);
    while pop < end {
        while sender.next_send() <= pop {
            let mut sent = sender.next_packet();
            sent.packet.payload = payload.clone();
            network.send(sent.at, sent.packet);
        }
        while let Some(delivery) = network.poll_deliver(pop) {
            steps.push(Step::Push(delivery.item, delivery.arrival));
            packets += 1;
        }
        steps.push(Step::Pop(pop));
        pop += frame;
    }
    (steps, packets)
}

fn replay(steps: &[Step]) -> u64 {
    let mut buffer = JitterBuffer::new(JitterBufferConfig::new(48_000));
    let mut played = 0;
    for step in steps {
        match step {
            Step::Push(packet, at) => buffer.push(packet.clone(), *at),
            Step::Pop(at) => {
                if let Playout::Packet { packet, .. } = buffer.pop(*at) {
                    played += packet.payload.len() as u64;
                }
            }
        }
    }
    played
}

fn push_pop(c: &mut Criterion) {
    let mut group = c.benchmark_group("jitter_buffer");
    let lossy = NetworkConditions {
        loss: 0.05,
        reorder: 0.02,
        reorder_delay: Duration::from_millis(30),
        ..NetworkConditions::jittery(Duration::from_millis(40))
    };
    for (name, conditions) in [
        ("clean", NetworkConditions::clean(Duration::from_millis(30))),
        ("lossy_jittery", lossy),
    ] {
        let (steps, packets) = schedule(conditions, 20);
        group.throughput(Throughput::Elements(packets));
        group.bench_function(format!("push_pop_{name}"), |b| {
            b.iter(|| black_box(replay(black_box(&steps))))
        });
    }
    group.finish();
}

criterion_group!(benches, push_pop);
criterion_main!(benches);
