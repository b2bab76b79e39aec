use super::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const SSRC: u32 = 0xabcd_0001;

fn stats() -> ReceiverStats {
    ReceiverStats::new(ReceiverStatsConfig::new(8_000))
}

/// Feeds packets `seqs` 20 ms apart with timestamps 160 apart, from `SSRC`.
fn feed(
    s: &mut ReceiverStats,
    t0: Instant,
    seqs: impl IntoIterator<Item = u16>,
) -> Vec<RtpVerdict> {
    seqs.into_iter()
        .enumerate()
        .map(|(i, seq)| {
            let now = t0 + Duration::from_millis(20 * i as u64);
            s.on_header(now, SSRC, seq, 160 * u32::from(seq), 160)
        })
        .collect()
}

#[test]
fn probation_then_in_order() {
    let mut s = stats();
    let v = feed(&mut s, Instant::now(), 1000..1010);
    assert_eq!(v[0], RtpVerdict::NewSource { previous: None });
    assert_eq!(
        v[1],
        RtpVerdict::Accepted {
            extended_sequence: 1001
        }
    );
    assert!(s.is_valid());
    // A.1 counts from the packet that ends probation.
    assert_eq!((s.expected(), s.received(), s.lost()), (9, 9, 0));
    assert_eq!(s.extended_highest_sequence(), Some(1009));
}

#[test]
fn probation_restarts_on_a_gap() {
    let mut s = ReceiverStats::new(ReceiverStatsConfig {
        min_sequential: 3,
        ..ReceiverStatsConfig::new(8_000)
    });
    let v = feed(&mut s, Instant::now(), [10, 11, 20, 21, 22]);
    assert_eq!(v[1], RtpVerdict::Probation);
    assert_eq!(v[2], RtpVerdict::Probation, "a gap restarts probation");
    assert_eq!(v[3], RtpVerdict::Probation);
    assert!(matches!(v[4], RtpVerdict::Accepted { .. }));
    assert_eq!(s.counters().probation, 3);
}

#[test]
fn sequence_wraps_at_65535() {
    let mut s = stats();
    let seqs: Vec<u16> = (65_530..=65_535).chain(0..5).collect();
    let v = feed(&mut s, Instant::now(), seqs);
    assert_eq!(
        v.last(),
        Some(&RtpVerdict::Accepted {
            extended_sequence: 65_536 + 4
        })
    );
    assert_eq!(s.extended_highest_sequence(), Some(65_540));
    assert_eq!((s.expected(), s.received()), (10, 10));
    // A packet from before the wrap, arriving late, keeps the old cycle.
    let late = s.on_header(Instant::now(), SSRC, 65_534, 0, 10);
    assert_eq!(
        late,
        RtpVerdict::Accepted {
            extended_sequence: 65_534
        }
    );
}

#[test]
fn large_jump_needs_confirmation_then_restarts() {
    let mut s = stats();
    let t0 = Instant::now();
    feed(&mut s, t0, 100..110);
    assert_eq!(
        s.on_header(t0, SSRC, 20_000, 0, 10),
        RtpVerdict::BadSequence
    );
    assert_eq!(
        s.on_header(t0, SSRC, 109 + 1, 0, 10),
        RtpVerdict::Accepted {
            extended_sequence: 110
        }
    );
    assert_eq!(
        s.on_header(t0, SSRC, 30_000, 0, 10),
        RtpVerdict::BadSequence
    );
    // The packet after the jump confirms it: the sender restarted.
    assert!(matches!(
        s.on_header(t0, SSRC, 30_001, 0, 10),
        RtpVerdict::Accepted { .. }
    ));
    assert_eq!(s.expected(), 1);
    assert_eq!(s.extended_highest_sequence(), Some(30_001));
    assert_eq!(s.counters().bad_sequence, 2);
}

#[test]
fn duplicates_count_and_loss_can_go_negative() {
    let mut s = stats();
    feed(&mut s, Instant::now(), [1, 2, 3, 3, 4, 4, 5]);
    assert_eq!(s.expected(), 4);
    assert_eq!(s.received(), 6);
    assert_eq!(s.lost(), -2);
    let r = s.report().unwrap();
    assert_eq!((r.fraction_lost, r.cumulative_lost), (0, -2));
}

#[test]
fn loss_fraction_under_seeded_loss() {
    let mut rng = SmallRng::seed_from_u64(7);
    let mut s = stats();
    let t0 = Instant::now();
    let mut dropped = 0u64;
    let mut delivered = Vec::new();
    for seq in 0u16..2000 {
        // The first two always arrive so the source validates at seq 1.
        if seq > 1 && seq < 1999 && rng.gen_bool(0.1) {
            dropped += 1;
        } else {
            delivered.push(seq);
        }
    }
    feed(&mut s, t0, delivered);
    assert_eq!(s.expected(), 1999);
    assert_eq!(s.lost(), dropped as i64);
    let r = s.report().unwrap();
    assert_eq!(r.cumulative_lost, dropped as i32);
    assert_eq!(u64::from(r.fraction_lost), dropped * 256 / 1999);
    assert!(
        (20..=31).contains(&r.fraction_lost),
        "about 10 %: {}",
        r.fraction_lost
    );

    // The next interval: 100 more packets, every fourth lost.
    let more: Vec<u16> = (2000u16..2100).filter(|q| q % 4 != 0).collect();
    feed(&mut s, t0 + Duration::from_secs(60), more);
    let r = s.report().unwrap();
    assert_eq!(r.fraction_lost, 64, "25 % of the interval");
    assert_eq!(r.cumulative_lost, dropped as i32 + 25);
    assert_eq!(r.extended_highest_sequence, 2099);
    assert_eq!(s.report(), None, "nothing new since the last report");
}

#[test]
fn jitter_is_zero_for_perfect_spacing() {
    let mut s = stats();
    feed(&mut s, Instant::now(), 0..100);
    assert_eq!(s.jitter(), 0.0);
}

#[test]
fn jitter_follows_a8_on_alternating_delay() {
    // 8 kHz, 20 ms packets; every other packet arrives 10 ms late, so |D| = 80 ticks each time.
    let mut s = stats();
    let t0 = Instant::now();
    let n = 200u32;
    for i in 0..n {
        let late = if i % 2 == 1 { 10 } else { 0 };
        let now = t0 + Duration::from_millis(u64::from(20 * i + late));
        s.on_header(now, SSRC, i as u16, 160 * i, 160);
    }
    let mut expected = 0.0f64;
    for _ in 1..n {
        expected += (80.0 - expected) / 16.0;
    }
    assert!(
        (s.jitter() - expected).abs() < 1e-9,
        "{} vs {expected}",
        s.jitter()
    );
    assert!((s.jitter_ms() - expected / 8.0).abs() < 1e-9);
    assert!((79.0..80.0).contains(&s.jitter()));
    assert_eq!(s.report().unwrap().jitter, expected as u32);
}

#[test]
fn packets_sharing_a_timestamp_do_not_feed_jitter() {
    let mut s = stats();
    let t0 = Instant::now();
    for i in 0..50u32 {
        // Three packets per 20 ms "frame", spread over the frame, same timestamp.
        for k in 0..3u64 {
            let now = t0 + Duration::from_millis(u64::from(20 * i) + 5 * k);
            s.on_header(now, SSRC, (3 * i + k as u32) as u16, 160 * i, 100);
        }
    }
    assert_eq!(s.jitter(), 0.0);
}

#[test]
fn foreign_ssrc_is_dropped_and_counted() {
    let mut s = stats();
    let t0 = Instant::now();
    feed(&mut s, t0, 0..3);
    let v = s.on_header(t0, 0x999, 7, 0, 10);
    assert_eq!(v, RtpVerdict::ForeignSsrc { ssrc: 0x999 });
    assert!(!v.is_playable());
    assert_eq!(s.ssrc(), Some(SSRC));
    assert_eq!(s.counters().foreign_ssrc, 1);
}

#[test]
fn interleaved_streams_never_take_turns() {
    let mut s = stats();
    let t0 = Instant::now();
    for i in 0..100u16 {
        let now = t0 + Duration::from_millis(20 * u64::from(i));
        s.on_header(now, SSRC, i, 160 * u32::from(i), 10);
        s.on_header(now, 0x777, 5000 + i, 0, 10);
    }
    assert_eq!(s.ssrc(), Some(SSRC));
    assert_eq!(s.counters().foreign_ssrc, 100);
    assert_eq!(s.counters().ssrc_changes, 0);
}

#[test]
fn consecutive_packets_of_a_new_ssrc_take_over() {
    let mut s = stats();
    let t0 = Instant::now();
    feed(&mut s, t0, 0..10);
    let mut verdicts = Vec::new();
    for i in 0..6u16 {
        let now = t0 + Duration::from_millis(200 + 20 * u64::from(i));
        verdicts.push(s.on_header(now, 0x777, 40_000 + i, 0, 10));
    }
    assert!(verdicts[..4]
        .iter()
        .all(|v| matches!(v, RtpVerdict::ForeignSsrc { .. })));
    assert_eq!(
        verdicts[4],
        RtpVerdict::NewSource {
            previous: Some(SSRC)
        }
    );
    assert!(matches!(verdicts[5], RtpVerdict::Accepted { .. }));
    assert_eq!(s.ssrc(), Some(0x777));
    assert_eq!(s.counters().ssrc_changes, 1);
}

#[test]
fn a_new_ssrc_after_silence_takes_over_at_once() {
    let mut s = stats();
    let t0 = Instant::now();
    feed(&mut s, t0, 0..10);
    let soon = t0 + Duration::from_millis(180 + 1000);
    assert!(matches!(
        s.on_header(soon, 0x555, 9, 0, 10),
        RtpVerdict::ForeignSsrc { .. }
    ));
    let later = t0 + Duration::from_millis(180 + 2000);
    assert_eq!(
        s.on_header(later, 0x555, 10, 0, 10),
        RtpVerdict::NewSource {
            previous: Some(SSRC)
        }
    );
    assert_eq!(s.ssrc(), Some(0x555));
}
