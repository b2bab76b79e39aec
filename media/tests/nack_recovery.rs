//! NACK round trips over a seeded lossy network in virtual time: a receiver's `NackGenerator`
//! asks, NACK packets travel back (and are lost too), the sender's `RetransmissionBuffer`
//! answers, and the retransmissions cross the same lossy path.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use callisto_media::netsim::{NetworkConditions, SimNetwork};
use callisto_media::rtp::nack::{
    build_nack, nacked_sequences, NackConfig, NackGenerator, RetransmissionBuffer,
    RetransmissionConfig,
};
use callisto_media::rtp::rtcp_packet::{build_compound, parse_compound, RtcpPacket};

struct Outcome {
    lost_originals: usize,
    recovered: usize,
    resent: u64,
    nack_packets: u64,
    gave_up: u64,
}

/// Sends `count` packets every 5 ms from `first_sequence` over a path with `loss` each way and
/// a 20 ms one-way delay (40 ms RTT).
fn run(seed: u64, loss: f64, count: u16, first_sequence: u16) -> Outcome {
    let t0 = Instant::now();
    let path = NetworkConditions {
        loss,
        jitter: Duration::from_millis(3),
        ..NetworkConditions::clean(Duration::from_millis(20))
    };
    let mut forward: SimNetwork<(Bytes, bool)> = SimNetwork::new(path, seed);
    let mut backward: SimNetwork<Bytes> = SimNetwork::new(path, seed + 1_000);
    let mut buffer = RetransmissionBuffer::new(RetransmissionConfig::default());
    let mut generator = NackGenerator::new(NackConfig::default());
    buffer.set_rtt(Duration::from_millis(40));
    generator.set_rtt(Duration::from_millis(40));

    let mut originals = HashSet::new();
    let mut received = HashSet::new();
    let mut nack_packets = 0;
    let mut sent = 0u16;
    let end = t0 + Duration::from_millis(5 * u64::from(count) + 2_000);
    let mut now = t0;
    while now <= end {
        if sent < count && now >= t0 + Duration::from_millis(5 * u64::from(sent)) {
            let sequence = first_sequence.wrapping_add(sent);
            let mut packet = sequence.to_be_bytes().to_vec();
            packet.resize(1_000, 0xab);
            let packet = Bytes::from(packet);
            buffer.on_packet_sent(sequence, packet.clone(), now);
            forward.send(now, (packet, false));
            sent += 1;
        }
        while let Some(delivery) = forward.poll_deliver(now) {
            let (packet, resent) = delivery.item;
            let sequence = u16::from_be_bytes([packet[0], packet[1]]);
            generator.on_packet(sequence, now);
            received.insert(sequence);
            if !resent {
                originals.insert(sequence);
            }
        }
        if let Some(sequences) = generator.poll_nack(now) {
            let nack = build_nack(0x2222, 0x1111, &sequences);
            let bytes = build_compound(&[&nack]).expect("NACK marshals");
            backward.send(now, bytes);
            nack_packets += 1;
        }
        while let Some(delivery) = backward.poll_deliver(now) {
            for packet in parse_compound(&delivery.item).expect("NACK parses") {
                if let RtcpPacket::Nack(nack) = packet {
                    for resend in buffer.on_nack(&nacked_sequences(&nack), now) {
                        forward.send(now, (resend, true));
                    }
                }
            }
        }
        now += Duration::from_millis(1);
    }
    let lost: Vec<u16> = (0..count)
        .map(|i| first_sequence.wrapping_add(i))
        .filter(|s| !originals.contains(s))
        .collect();
    let lost_originals = lost.len();
    let recovered = lost.iter().filter(|s| received.contains(s)).count();
    let resent = buffer.stats().resent;
    Outcome {
        lost_originals,
        recovered,
        resent,
        nack_packets,
        gave_up: generator.stats().given_up,
    }
}

#[test]
fn five_percent_loss_at_40_ms_rtt_recovers_almost_everything() {
    let mut total_lost = 0;
    let mut total_recovered = 0;
    for seed in 1..=5 {
        let outcome = run(seed, 0.05, 4_000, 64_000);
        println!(
            "seed {seed}: {} originals lost, {} recovered, {} resent, {} NACK packets, {} given up",
            outcome.lost_originals,
            outcome.recovered,
            outcome.resent,
            outcome.nack_packets,
            outcome.gave_up
        );
        assert!(outcome.lost_originals > 100, "the path lost too little");
        // Each loss needs about 1.1 resends (resends and NACKs are lost too); many more
        // would mean the generator asks again before the first answer could arrive.
        assert!(
            outcome.resent as f64 <= 1.3 * outcome.lost_originals as f64,
            "{} resends for {} losses",
            outcome.resent,
            outcome.lost_originals
        );
        total_lost += outcome.lost_originals;
        total_recovered += outcome.recovered;
    }
    let ratio = total_recovered as f64 / total_lost as f64;
    println!(
        "recovered {total_recovered} of {total_lost}: {:.2} %",
        ratio * 100.0
    );
    assert!(ratio >= 0.95, "recovered only {:.1} %", ratio * 100.0);
}

#[test]
fn without_loss_nothing_is_asked_for() {
    let outcome = run(9, 0.0, 2_000, 65_000);
    assert_eq!(
        (outcome.lost_originals, outcome.resent, outcome.nack_packets),
        (0, 0, 0)
    );
}
