//! The jitter buffer over the simulated network, in virtual time: clean, lossy and jittery,
//! drifting clocks, discontinuities. Each test prints its measured figures
//! (`cargo test -p callisto-media --test jitter_buffer_network -- --nocapture`).

#[path = "support/playout_sim.rs"]
mod playout_sim;

use std::time::Duration;

use callisto_media::netsim::NetworkConditions;
use playout_sim::{strictly_increasing, Kind, Simulation};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn a_clean_network_settles_at_the_minimum_and_plays_everything() {
    let mut sim = Simulation::new(NetworkConditions::clean(Duration::from_millis(30)), 1);
    sim.run_until(secs(60));
    let stats = sim.stats();
    let played = sim.played();
    let (settled, _) = sim.settled();
    let max_after_start = sim.max_delay_ms(secs(1), secs(60));
    println!(
        "clean 60 s: played {} of {} sent, in order {}, delay max {:.1} ms (after 1 s), \
         mean {:.1} ms, target {:?}, concealed {}, dropped {}, inserted {}",
        played.len(),
        sim.sent,
        strictly_increasing(&played),
        max_after_start,
        sim.mean_delay_ms(secs(1), secs(60)),
        stats.target_delay,
        stats.concealed,
        stats.dropped,
        stats.inserted,
    );
    assert!(strictly_increasing(&played));
    assert!(
        played.iter().copied().eq(0..played.len() as u64),
        "a frame is missing"
    );
    assert!(played.len() as u64 >= settled);
    assert!(max_after_start <= 40.0);
    assert_eq!(stats.target_delay, Duration::from_millis(20));
    assert_eq!(
        (stats.concealed, stats.dropped, stats.late, stats.lost),
        (0, 0, 0, 0)
    );
}

#[test]
fn loss_reordering_and_jitter_keep_continuity_and_a_bounded_delay() {
    let conditions = NetworkConditions {
        loss: 0.05,
        reorder: 0.02,
        reorder_delay: Duration::from_millis(30),
        duplicate: 0.01,
        ..NetworkConditions::jittery(Duration::from_millis(40))
    };
    let mut sim = Simulation::new(conditions, 2);
    sim.run_until(secs(60));
    let stats = sim.stats();
    let played = sim.played();
    let (settled, missing) = sim.settled();
    let loss = missing as f64 / settled as f64;
    let continuity = sim.played_below(settled) as f64 / settled as f64;
    let late = stats.late as f64 / settled as f64;
    let first = sim.mean_delay_ms(secs(0), secs(10));
    let last = sim.mean_delay_ms(secs(50), secs(60));
    let max = sim.max_delay_ms(secs(0), secs(60));
    println!(
        "5 % loss + 2 % reordered + 40 ms jitter, 60 s: network lost {:.2} %, played {:.2} % \
         of {settled} frames, late {:.2} %, concealed {}, longest concealment {} frames vs \
         longest loss {}, delay mean first 10 s {first:.1} ms, last 10 s {last:.1} ms, \
         max {max:.1} ms, target {:?}, jitter (RFC 3550) {:?}, dropped {}, inserted {}, \
         duplicates {} (network made {})",
        loss * 100.0,
        continuity * 100.0,
        late * 100.0,
        stats.concealed,
        sim.longest_concealment(),
        sim.longest_loss(),
        stats.target_delay,
        stats.jitter,
        stats.dropped,
        stats.inserted,
        stats.duplicate,
        sim.network_stats().duplicated,
    );
    assert!(strictly_increasing(&played));
    assert!(
        continuity >= 1.0 - loss - 0.03,
        "continuity {continuity:.4}"
    );
    assert!(late < 0.03);
    assert!(sim.longest_concealment() <= sim.longest_loss() + 3);
    assert!(max <= 200.0);
    assert!(
        last <= first + 10.0,
        "delay grew from {first:.1} to {last:.1} ms"
    );
    assert_eq!(stats.duplicate, sim.network_stats().duplicated);
}

/// Runs ten minutes with the sender's clock off by `drift` over a mildly jittery network.
fn drifting(drift: f64, seed: u64) -> Simulation {
    let mut sim = Simulation::with(
        callisto_media::jitter_buffer::JitterBufferConfig::new(48_000),
        Duration::from_millis(20),
        drift,
        NetworkConditions::jittery(Duration::from_millis(10)),
        seed,
    );
    sim.run_until(secs(600));
    let stats = sim.stats();
    let (settled, _) = sim.settled();
    println!(
        "drift {:+.1} %, 10 min: needed {:.0} frame adjustments, dropped {}, inserted {}, \
         concealed {} (underruns {}), late {}, played {:.2} % of {settled}, delay mean first \
         minute {:.1} ms, last minute {:.1} ms, max after 10 s {:.1} ms, target {:?}",
        drift * 100.0,
        drift.abs() * 600.0 / 0.020,
        stats.dropped,
        stats.inserted,
        stats.concealed,
        stats.underruns,
        stats.late,
        sim.played_below(settled) as f64 * 100.0 / settled as f64,
        sim.mean_delay_ms(secs(0), secs(60)),
        sim.mean_delay_ms(secs(540), secs(600)),
        sim.max_delay_ms(secs(10), secs(600)),
        stats.target_delay,
    );
    assert!(strictly_increasing(&sim.played()));
    assert!(sim.max_delay_ms(secs(10), secs(600)) <= 80.0);
    assert!(sim.mean_delay_ms(secs(540), secs(600)) <= sim.mean_delay_ms(secs(0), secs(60)) + 10.0);
    assert!(stats.late * 100 <= settled, "late {}", stats.late);
    sim
}

#[test]
fn a_fast_sender_clock_is_absorbed_by_few_drops() {
    let sim = drifting(0.005, 3);
    let stats = sim.stats();
    // 0.5 % of 10 minutes is 3 s of surplus audio: 150 frames must go, and no more.
    assert!(
        (140..=170).contains(&stats.dropped),
        "dropped {}",
        stats.dropped
    );
    assert!(stats.inserted <= 15, "inserted {}", stats.inserted);
}

#[test]
fn a_slow_sender_clock_is_absorbed_by_few_inserts() {
    let sim = drifting(-0.005, 4);
    let stats = sim.stats();
    assert!(
        (140..=170).contains(&stats.inserted),
        "inserted {}",
        stats.inserted
    );
    assert!(stats.dropped <= 15, "dropped {}", stats.dropped);
}

#[test]
fn drift_drops_fall_on_quiet_frames_when_there_are_some() {
    let mut sim = Simulation::with(
        callisto_media::jitter_buffer::JitterBufferConfig::new(48_000),
        Duration::from_millis(20),
        0.005,
        NetworkConditions::clean(Duration::from_millis(30)),
        12,
    );
    sim.quiet_every = 10;
    sim.run_until(secs(120));
    let played = sim.played();
    let last = played.last().copied().unwrap_or(0);
    let unplayed: Vec<u64> = (0..last)
        .filter(|index| played.binary_search(index).is_err())
        .collect();
    println!(
        "drift +0.5 %, every 10th frame quiet, 2 min: dropped {}, all quiet: {}",
        sim.stats().dropped,
        unplayed.iter().all(|index| index % 10 == 0),
    );
    assert_eq!(unplayed.len() as u64, sim.stats().dropped);
    assert!(
        (25..=35).contains(&unplayed.len()),
        "dropped {}",
        unplayed.len()
    );
    assert!(unplayed.iter().all(|index| index % 10 == 0), "{unplayed:?}");
}

/// Checks a run with one discontinuity at 10 s: the stream goes on with no waiting, no
/// lost audio and a sane delay.
fn assert_clean_resync(sim: &Simulation, what: &str) {
    let stats = sim.stats();
    let played = sim.played();
    let (settled, _) = sim.settled();
    let waits = sim
        .window(secs(1), secs(20))
        .filter(|pop| pop.kind == Kind::Wait)
        .count();
    let around: String = sim
        .window(Duration::from_millis(9_900), Duration::from_millis(10_300))
        .map(|pop| match pop.kind {
            Kind::Packet(_) => 'P',
            Kind::Conceal { .. } => 'C',
            Kind::Silence => 'S',
            Kind::Wait => 'W',
        })
        .collect();
    println!(
        "{what}: resyncs {}, played {} of {settled}, waits after start {waits}, longest \
         concealment {}, silence frames {}, delay before {:.1} ms, after {:.1} ms, around the \
         jump {}",
        stats.resyncs,
        sim.played_below(settled),
        sim.longest_concealment(),
        sim.log
            .iter()
            .filter(|pop| pop.kind == Kind::Silence)
            .count(),
        sim.mean_delay_ms(secs(5), secs(10)),
        sim.mean_delay_ms(secs(11), secs(20)),
        around,
    );
    assert!(strictly_increasing(&played), "{what}: out of order");
    assert_eq!(stats.resyncs, 1, "{what}");
    assert_eq!(waits, 0, "{what}");
    assert!(
        sim.played_below(settled) + 1 >= settled,
        "{what}: audio lost"
    );
    assert!(sim.longest_concealment() <= 1, "{what}");
    assert!(sim.max_delay_ms(secs(11), secs(20)) <= 45.0, "{what}");
}

#[test]
fn a_timestamp_jump_resyncs_without_a_gap() {
    for (what, jump) in [
        ("timestamp +6 h", 0x4000_0000u32),
        ("timestamp -1 h", 0u32.wrapping_sub(48_000 * 3600)),
    ] {
        let mut sim = Simulation::new(NetworkConditions::clean(Duration::from_millis(30)), 5);
        sim.run_until(secs(10));
        sim.sender.jump_timestamp(jump);
        sim.run_until(secs(20));
        assert_clean_resync(&sim, what);
    }
}

#[test]
fn a_sender_restart_resyncs_without_a_gap() {
    let cases: [(&str, u16, Option<u32>); 3] = [
        ("restart ahead", 40_000, Some(7)),
        ("restart behind", 3, Some(3_000_000_000)),
        ("sequence restart, timestamps go on", 5, None),
    ];
    for (what, sequence, timestamp) in cases {
        let mut sim = Simulation::new(NetworkConditions::clean(Duration::from_millis(30)), 6);
        sim.run_until(secs(10));
        let timestamp = timestamp.unwrap_or_else(|| sim.sender.next_timestamp());
        sim.sender.restart(sequence, timestamp);
        sim.run_until(secs(20));
        assert_clean_resync(&sim, what);
    }
}

#[test]
fn a_restart_over_a_jittery_reordering_network_keeps_order() {
    let conditions = NetworkConditions {
        reorder: 0.05,
        reorder_delay: Duration::from_millis(40),
        ..NetworkConditions::jittery(Duration::from_millis(20))
    };
    let mut sim = Simulation::new(conditions, 7);
    sim.run_until(secs(10));
    sim.sender.restart(9, 9);
    sim.run_until(secs(30));
    let stats = sim.stats();
    let (settled, missing) = sim.settled();
    println!(
        "restart over 20 ms jitter + 5 % reordering: resyncs {}, discarded {}, played {} of \
         {settled} ({missing} never arrived), late {}, longest concealment {}",
        stats.resyncs,
        stats.discarded,
        sim.played_below(settled),
        stats.late,
        sim.longest_concealment(),
    );
    assert!(strictly_increasing(&sim.played()));
    assert!((1..=2).contains(&stats.resyncs));
    assert!(sim.played_below(settled) as f64 >= 0.95 * settled as f64);
    assert!(sim.longest_concealment() <= 3);
}

#[test]
fn dtx_silences_play_as_silence_and_talkspurts_start_on_target() {
    let conditions = NetworkConditions::jittery(Duration::from_millis(20));
    let mut sim = Simulation::new(conditions, 8);
    let mut talkspurt_starts = Vec::new();
    for spurt in 0..10u64 {
        sim.run_until(secs(3 * spurt + 2));
        talkspurt_starts.push(sim.sender.next_packet_index());
        sim.sender.pause(Duration::from_millis(1000));
        sim.run_until(secs(3 * spurt + 3));
    }
    sim.run_until(secs(32));
    let stats = sim.stats();
    let silences = sim
        .log
        .iter()
        .filter(|pop| pop.kind == Kind::Silence)
        .count();
    // The delay each talkspurt's first packet plays at, against the target then.
    let starts: Vec<(f64, f64)> = sim
        .log
        .iter()
        .filter(|pop| matches!(pop.kind, Kind::Packet(index) if talkspurt_starts.contains(&index)))
        .map(|pop| {
            (
                pop.delay.as_secs_f64() * 1000.0,
                pop.target.as_secs_f64() * 1000.0,
            )
        })
        .collect();
    let (settled, missing) = sim.settled();
    println!(
        "10 talkspurts with 1 s DTX silences over 20 ms jitter: silence frames {silences}, \
         underruns {}, silence skipped {}, inserted {}, late {}, played {} of {} arrived, \
         talkspurt starts (delay, target) ms {:?}",
        stats.underruns,
        stats.silence_skipped,
        stats.inserted,
        stats.late,
        sim.played_below(settled),
        settled - missing,
        starts
            .iter()
            .map(|(d, t)| format!("({d:.0}, {t:.0})"))
            .collect::<Vec<_>>()
            .join(" "),
    );
    assert_eq!(
        starts.len(),
        talkspurt_starts.len(),
        "a talkspurt start was lost"
    );
    assert!(silences > 0);
    assert_eq!(stats.resyncs, 0);
    for (delay, target) in starts {
        assert!(
            (delay - target).abs() <= 12.0,
            "talkspurt at {delay:.1} ms, target {target:.1} ms"
        );
    }
    assert!(strictly_increasing(&sim.played()));
}

#[test]
fn duplicates_very_late_packets_and_a_burst_of_twenty_losses() {
    let conditions = NetworkConditions {
        duplicate: 0.10,
        reorder: 0.03,
        reorder_delay: Duration::from_millis(400),
        ..NetworkConditions::jittery(Duration::from_millis(10))
    };
    let mut sim = Simulation::new(conditions, 9);
    sim.run_until(secs(10));
    let burst_start = sim.sender.next_packet_index();
    sim.black_out(20);
    sim.run_until(secs(30));
    let stats = sim.stats();
    let network = sim.network_stats();
    let (settled, missing) = sim.settled();
    let burst_run = playout_sim::longest_run(
        sim.window(secs(9), secs(12))
            .map(|pop| matches!(pop.kind, Kind::Conceal { .. })),
    );
    let resumed = sim
        .log
        .iter()
        .find(|pop| matches!(pop.kind, Kind::Packet(index) if index >= burst_start + 20));
    println!(
        "10 % duplicates, 3 % 400 ms late, 20 lost in a row: duplicates {} (network {}), late \
         {} (network delayed {}), concealment over the burst {burst_run} frames, resumed at \
         delay {:?}, played {} of {} arrived, delay before {:.1} ms, after {:.1} ms",
        stats.duplicate,
        network.duplicated,
        stats.late,
        network.reordered,
        resumed.map(|pop| pop.delay),
        sim.played_below(settled),
        settled - missing,
        sim.mean_delay_ms(secs(5), secs(10)),
        sim.mean_delay_ms(secs(12), secs(30)),
    );
    assert!(strictly_increasing(&sim.played()));
    assert_eq!(stats.duplicate, network.duplicated);
    // Every copy that arrived is accounted for exactly once.
    assert_eq!(
        stats.received,
        stats.played
            + stats.late
            + stats.duplicate
            + stats.dropped
            + stats.discarded
            + sim.buffer.len() as u64
    );
    // Copies held back 400 ms are late unless a first copy made it in time.
    assert!(
        stats.late * 4 >= network.reordered * 3,
        "late {}",
        stats.late
    );
    assert!(
        (20..=21).contains(&burst_run),
        "burst concealed in {burst_run} frames"
    );
    assert!(sim.played_below(settled) + stats.late >= settled - missing);
    assert!(sim.mean_delay_ms(secs(12), secs(30)) <= sim.mean_delay_ms(secs(5), secs(10)) + 10.0);
}

#[test]
fn the_delay_comes_back_down_after_a_jitter_episode() {
    let mut sim = Simulation::new(NetworkConditions::clean(Duration::from_millis(30)), 10);
    sim.run_until(secs(10));
    sim.network
        .set_conditions(NetworkConditions::jittery(Duration::from_millis(40)));
    sim.run_until(secs(40));
    let dropped_before = sim.stats().dropped;
    sim.network
        .set_conditions(NetworkConditions::clean(Duration::from_millis(30)));
    sim.run_until(secs(100));
    let stats = sim.stats();
    let per_ten: Vec<String> = (0..10)
        .map(|i| format!("{:.0}", sim.mean_delay_ms(secs(10 * i), secs(10 * i + 10))))
        .collect();
    let calm = sim.mean_delay_ms(secs(5), secs(10));
    let jittery = sim.mean_delay_ms(secs(30), secs(40));
    let after = sim.mean_delay_ms(secs(70), secs(100));
    println!(
        "clean 10 s, 40 ms jitter 30 s, clean 60 s: delay per 10 s {} ms, final target {:?}, \
         dropped while coming down {}, concealed {}",
        per_ten.join(" / "),
        stats.target_delay,
        stats.dropped - dropped_before,
        stats.concealed,
    );
    assert!(
        jittery >= calm + 30.0,
        "did not adapt up: {calm:.1} → {jittery:.1} ms"
    );
    assert!(after <= calm + 10.0, "did not come down: {after:.1} ms");
    assert_eq!(stats.target_delay, Duration::from_millis(20));
    assert!(stats.dropped - dropped_before <= 6);
}

#[test]
fn every_packet_duration_plays_with_its_own_length() {
    let conditions = NetworkConditions {
        loss: 0.03,
        ..NetworkConditions::jittery(Duration::from_millis(30))
    };
    for ms in [10u64, 20, 30, 40, 60] {
        let frame = Duration::from_millis(ms);
        let mut sim = Simulation::with(
            callisto_media::jitter_buffer::JitterBufferConfig::new(48_000),
            frame,
            0.0,
            conditions,
            11 + ms,
        );
        sim.run_until(secs(30));
        let stats = sim.stats();
        let (settled, missing) = sim.settled();
        let continuity = sim.played_below(settled) as f64 / (settled - missing) as f64;
        // The buffer assumes 20 ms until the second packet shows the real length.
        let lengths_ok = sim.durations_from_second_packet(48 * ms as u32);
        println!(
            "{ms} ms packets, 3 % loss + 30 ms jitter, 30 s: played {:.2} % of arrived, late {}, \
             delay mean {:.1} ms, max {:.1} ms, target {:?}, every output from the second packet on {ms} ms long: {lengths_ok}",
            continuity * 100.0,
            stats.late,
            sim.mean_delay_ms(secs(5), secs(30)),
            sim.max_delay_ms(secs(5), secs(30)),
            stats.target_delay,
        );
        assert!(strictly_increasing(&sim.played()));
        assert!(lengths_ok);
        assert!(continuity >= 0.96, "{ms} ms: continuity {continuity:.3}");
        assert!(sim.max_delay_ms(secs(5), secs(30)) <= 200.0);
    }
}

#[test]
fn a_packet_size_change_mid_call_is_followed() {
    for hints in [false, true] {
        let mut sim = Simulation::new(NetworkConditions::jittery(Duration::from_millis(10)), 13);
        sim.duration_hints = hints;
        sim.run_until(secs(10));
        let before = sim.stats();
        sim.sender.set_frame(Duration::from_millis(60));
        sim.run_until(secs(20));
        let after: Vec<u32> = sim
            .window(Duration::from_millis(10_300), secs(20))
            .map(|pop| pop.samples)
            .collect();
        let stats = sim.stats();
        let around: Vec<Kind> = sim
            .window(Duration::from_millis(9_950), Duration::from_millis(10_400))
            .map(|pop| pop.kind)
            .filter(|kind| !matches!(kind, Kind::Packet(_)))
            .collect();
        println!(
            "20 → 60 ms packets at 10 s, durations {}: played {} of {} sent, lost {}, \
             dropped {}, inserted {}, outputs other than packets around the change {:?}, all \
             outputs 60 ms from 10.3 s: {}",
            if hints { "given" } else { "from timestamps" },
            stats.played,
            sim.sent,
            stats.lost,
            stats.dropped,
            stats.inserted,
            around,
            after.iter().all(|&samples| samples == 2_880),
        );
        assert!(strictly_increasing(&sim.played()));
        assert!(after.iter().all(|&samples| samples == 2_880));
        // Before the change, the jitter may make a packet or two late while the delay sits
        // less than half a frame under a rising target (missing at their turn, they count as
        // lost too: the network loses nothing), and at most the start drops its first packet.
        assert!(
            before.late <= 2 && before.lost <= before.late && before.dropped <= 1,
            "{before:?}"
        );
        // The change costs nothing: no packet lost, dropped or late after it.
        assert_eq!(
            (
                stats.lost - before.lost,
                stats.dropped - before.dropped,
                stats.late - before.late
            ),
            (0, 0, 0)
        );
        // Without the durations the first 60 ms packet plays as 20 ms (the timestamps show
        // the new size only when the next packet arrives), so a frame is concealed before
        // it, and another is inserted to deepen the buffer for the bigger packets.
        assert_eq!(
            stats.concealed - before.concealed,
            if hints { 0 } else { 2 }
        );
    }
}
