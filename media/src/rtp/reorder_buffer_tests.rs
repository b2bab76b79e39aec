use super::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn drain(buffer: &mut ReorderBuffer<u16>, now: Instant) -> Vec<u16> {
    std::iter::from_fn(|| buffer.poll(now)).collect()
}

#[test]
fn in_order_packets_pass_straight_through() {
    let now = Instant::now();
    let mut buffer = ReorderBuffer::new(ReorderConfig::default());
    for seq in 65_534..=65_535u16 {
        assert_eq!(buffer.push(seq, seq, now), Arrival::InOrder);
    }
    assert_eq!(buffer.push(0, 0, now), Arrival::InOrder);
    assert_eq!(drain(&mut buffer, now), vec![65_534, 65_535, 0]);
    assert_eq!(buffer.poll_timeout(), None);
    assert_eq!(buffer.push(0, 0, now), Arrival::Duplicate);
}

#[test]
fn a_retransmission_within_the_hold_time_fills_the_hole() {
    let start = Instant::now();
    let mut buffer = ReorderBuffer::new(ReorderConfig::default());
    buffer.set_rtt(Duration::from_millis(40)); // hold 110 ms
    assert_eq!(buffer.hold_time(), Duration::from_millis(110));
    buffer.push(10, 10, start);
    buffer.push(12, 12, start);
    buffer.push(13, 13, start + Duration::from_millis(5));
    assert_eq!(
        drain(&mut buffer, start + Duration::from_millis(10)),
        vec![10]
    );
    assert_eq!(
        buffer.poll_timeout(),
        Some(start + Duration::from_millis(110))
    );
    let at = start + Duration::from_millis(60);
    assert_eq!(buffer.push(11, 11, at), Arrival::FilledHole);
    assert_eq!(drain(&mut buffer, at), vec![11, 12, 13]);
    assert_eq!(buffer.stats().filled_holes, 1);
    assert_eq!(buffer.stats().skipped, 0);
}

#[test]
fn a_hole_is_given_up_after_the_hold_time_and_its_packet_refused_later() {
    let start = Instant::now();
    let mut buffer = ReorderBuffer::new(ReorderConfig::default());
    buffer.set_rtt(Duration::from_secs(1)); // capped at 150 ms
    assert_eq!(buffer.hold_time(), Duration::from_millis(150));
    buffer.push(1, 1, start);
    buffer.push(4, 4, start);
    assert_eq!(
        drain(&mut buffer, start + Duration::from_millis(149)),
        vec![1]
    );
    assert_eq!(
        drain(&mut buffer, start + Duration::from_millis(150)),
        vec![4]
    );
    assert_eq!(buffer.stats().skipped, 2);
    assert_eq!(buffer.push(2, 2, start), Arrival::Late);
    assert_eq!(buffer.push(4, 4, start), Arrival::Duplicate);
    assert_eq!(buffer.push(5, 5, start), Arrival::InOrder);
    assert_eq!(drain(&mut buffer, start), vec![5]);
}

#[test]
fn too_much_ahead_skips_at_once_and_far_behind_restarts() {
    let now = Instant::now();
    let config = ReorderConfig {
        capacity: 8,
        ..ReorderConfig::default()
    };
    let mut buffer = ReorderBuffer::new(config);
    buffer.push(100, 100, now);
    buffer.push(120, 120, now);
    assert_eq!(drain(&mut buffer, now), vec![100, 120]);
    for seq in 122..131u16 {
        buffer.push(seq, seq, now);
    }
    // Nine held behind the hole at 121: over capacity, skipped without waiting.
    assert_eq!(drain(&mut buffer, now), (122..131).collect::<Vec<_>>());
    assert_eq!(buffer.push(60_000, 60_000, now), Arrival::InOrder);
    assert_eq!(buffer.stats().restarts, 1);
    assert_eq!(drain(&mut buffer, now), vec![60_000]);
}

/// A seeded lossy, reordering path with retransmissions: everything the sender resends in
/// time is delivered, in order, without duplicates.
#[test]
fn seeded_loss_reordering_and_retransmission_deliver_in_order() {
    for seed in 0..20u64 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let start = Instant::now();
        let mut buffer = ReorderBuffer::new(ReorderConfig::default());
        let rtt = Duration::from_millis(30);
        buffer.set_rtt(rtt); // hold 95 ms
                             // (arrival, sequence), sent every 2 ms from 40_000 on (crossing the wrap).
        let mut arrivals: Vec<(Duration, u16)> = Vec::new();
        let mut lost_for_good = 0;
        for i in 0..3_000u32 {
            let seq = 40_000u16.wrapping_add(i as u16);
            let sent = Duration::from_millis(2 * u64::from(i));
            // The first packet starts the sequence, so it comes first.
            let jitter = Duration::from_micros(rng.gen_range(0..6_000) * u64::from(i > 0));
            if (1..2_990).contains(&i) && rng.gen_bool(0.05) {
                // Lost; the retransmission comes 1.25 RTT + 10 ms later, itself lost at 5 %.
                if rng.gen_bool(0.95) {
                    arrivals.push((sent + rtt.mul_f64(1.25) + Duration::from_millis(10), seq));
                } else {
                    lost_for_good += 1;
                }
            } else {
                arrivals.push((sent + jitter, seq));
            }
        }
        arrivals.sort();
        let mut out = Vec::new();
        for &(at, seq) in &arrivals {
            let now = start + at;
            while let Some(deadline) = buffer.poll_timeout() {
                if deadline > now {
                    break;
                }
                out.extend(drain(&mut buffer, deadline));
            }
            buffer.push(seq, seq, now);
            out.extend(drain(&mut buffer, now));
        }
        out.extend(drain(&mut buffer, start + Duration::from_secs(60)));
        let unwrapped: Vec<u32> = out
            .iter()
            .map(|&s| u32::from(s.wrapping_sub(40_000)))
            .collect();
        assert!(
            unwrapped.windows(2).all(|w| w[0] < w[1]),
            "seed {seed}: out of order"
        );
        let stats = buffer.stats();
        assert_eq!(out.len(), arrivals.len(), "seed {seed}: {stats:?}");
        assert_eq!(stats.skipped, lost_for_good, "seed {seed}: {stats:?}");
        assert!(stats.filled_holes > 50, "seed {seed}: {stats:?}");
        assert_eq!(stats.late, 0, "seed {seed}: {stats:?}");
    }
}
