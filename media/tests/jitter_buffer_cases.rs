//! The jitter buffer on hand-made packet sequences: one behaviour per test, in virtual time.

use std::time::{Duration, Instant};

use callisto_media::jitter_buffer::{
    BufferedPacket, JitterBuffer, JitterBufferConfig, JitterBufferStats, Playout,
};

const FRAME: u32 = 960; // 20 ms at 48 kHz

/// A packet of a 48 kHz, 20 ms stream: frame `n` has sequence `first + n`, timestamp
/// `first_ts + 960 n` and a payload naming `n`.
fn frame_at(first: u16, first_ts: u32, n: u16) -> BufferedPacket {
    BufferedPacket::new(
        first.wrapping_add(n),
        u32::from(n).wrapping_mul(FRAME).wrapping_add(first_ts),
        n == 0,
        vec![n as u8, (n >> 8) as u8],
    )
}

fn frame(first: u16, n: u16) -> BufferedPacket {
    frame_at(first, 7_000, n)
}

fn name(packet: &BufferedPacket) -> u16 {
    u16::from(packet.payload[0]) | (u16::from(packet.payload[1]) << 8)
}

/// What a pop returned, in short: `P(n)` for frame n, `C`/`F(n)` for concealment
/// without/with the next packet `n`, `S` silence, `W` wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    P(u16),
    C,
    F(u16),
    S,
    W,
}

fn short(playout: &Playout) -> Out {
    match playout {
        Playout::Packet { packet, .. } => Out::P(name(packet)),
        Playout::Conceal { next: None, .. } => Out::C,
        Playout::Conceal {
            next: Some(next), ..
        } => Out::F(name(next)),
        Playout::Silence { .. } => Out::S,
        Playout::Wait { .. } => Out::W,
    }
}

/// A buffer and a virtual clock; pops happen every 20 ms.
struct Leg {
    buffer: JitterBuffer,
    start: Instant,
    now: Instant,
}

impl Leg {
    fn new() -> Self {
        let start = Instant::now();
        Leg {
            buffer: JitterBuffer::new(JitterBufferConfig::new(48_000)),
            start,
            now: start,
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms)
    }

    fn push_at(&mut self, ms: u64, packet: BufferedPacket) {
        let at = self.at(ms);
        self.buffer.push(packet, at);
    }

    /// Pops once at `ms`.
    fn pop_at(&mut self, ms: u64) -> Out {
        self.now = self.at(ms);
        short(&self.buffer.pop(self.now))
    }

    fn stats(&self) -> JitterBufferStats {
        self.buffer.stats()
    }
}

/// Pushes `arrivals` (arrival time in ms, packet) and pops every 20 ms from 10 ms on until
/// `until_ms`; a packet arriving at a pop's time is pushed before it. Returns what the pops
/// returned.
fn drive(leg: &mut Leg, mut arrivals: Vec<(u64, BufferedPacket)>, until_ms: u64) -> Vec<Out> {
    arrivals.sort_by_key(|(at, _)| *at);
    let mut arrivals = arrivals.into_iter().peekable();
    let mut outs = Vec::new();
    let mut pop = 10;
    while pop < until_ms {
        while let Some((at, packet)) = arrivals.next_if(|(at, _)| *at <= pop) {
            leg.push_at(at, packet);
        }
        outs.push(leg.pop_at(pop));
        pop += 20;
    }
    outs
}

/// Frames `0..count` of a stream, sent every 20 ms, arriving when `arrival` says (never
/// when it says `None`).
fn frames(
    first: u16,
    first_ts: u32,
    count: u16,
    arrival: impl Fn(u16) -> Option<u64>,
) -> Vec<(u64, BufferedPacket)> {
    (0..count)
        .filter_map(|n| arrival(n).map(|at| (at, frame_at(first, first_ts, n))))
        .collect()
}

/// Drives `count` frames until the last one, on time, has played (the delay is 20 ms:
/// frame n arrives at 20 n + 30 ms and plays at 20 n + 50 ms).
fn stream(
    leg: &mut Leg,
    first: u16,
    first_ts: u32,
    count: u16,
    arrival: impl Fn(u16) -> Option<u64>,
) -> Vec<Out> {
    let until = 20 * u64::from(count) + 31;
    drive(leg, frames(first, first_ts, count, arrival), until)
}

fn on_time(n: u16) -> Option<u64> {
    Some(u64::from(n) * 20 + 30)
}

fn played(outs: &[Out]) -> Vec<u16> {
    outs.iter()
        .filter_map(|out| match out {
            Out::P(n) => Some(*n),
            _ => None,
        })
        .collect()
}

#[test]
fn nothing_pushed_means_wait() {
    let mut leg = Leg::new();
    assert_eq!(leg.pop_at(0), Out::W);
    assert_eq!(leg.buffer.next_pop(), Some(leg.at(20)));
    assert_eq!(
        leg.stats(),
        JitterBufferStats {
            target_delay: Duration::from_millis(20),
            ..JitterBufferStats::default()
        }
    );
}

#[test]
fn reordered_packets_play_in_order_and_duplicates_once() {
    let mut leg = Leg::new();
    // Frames arrive 2, 0, 1, 1, 3, 5, 4, 4 over the first 100 ms.
    let order = [2u16, 0, 1, 1, 3, 5, 4, 4];
    for (i, n) in order.into_iter().enumerate() {
        leg.push_at(10 * i as u64, frame(65_533, n));
    }
    let outs: Vec<Out> = (0..8).map(|i| leg.pop_at(80 + 20 * i)).collect();
    assert_eq!(played(&outs), vec![0, 1, 2, 3, 4, 5], "{outs:?}");
    let stats = leg.stats();
    assert_eq!((stats.duplicate, stats.late, stats.lost), (2, 0, 0));
}

#[test]
fn sequence_numbers_and_timestamps_wrap() {
    let mut leg = Leg::new();
    let outs = stream(&mut leg, 65_500, u32::MAX - 30 * FRAME, 100, on_time);
    assert_eq!(played(&outs), (0..100).collect::<Vec<_>>());
    assert_eq!(leg.stats().concealed, 0);
}

#[test]
fn a_lost_packet_is_concealed_with_the_next_one_for_fec() {
    let mut leg = Leg::new();
    let outs = stream(&mut leg, 100, 7_000, 10, |n| {
        (n != 4).then(|| on_time(n)).flatten()
    });
    let from = outs.iter().position(|out| *out == Out::P(3)).unwrap_or(0);
    assert_eq!(
        &outs[from..from + 4],
        &[Out::P(3), Out::F(5), Out::P(5), Out::P(6)]
    );
    let stats = leg.stats();
    assert_eq!((stats.lost, stats.concealed, stats.played), (1, 1, 9));
}

#[test]
fn a_packet_after_its_turn_is_late_and_never_played() {
    let mut leg = Leg::new();
    // Frame 4 comes 150 ms late, long after frame 5 took its place.
    let arrivals = frames(100, 7_000, 12, |n| {
        Some(u64::from(n) * 20 + if n == 4 { 180 } else { 30 })
    });
    let outs = drive(&mut leg, arrivals, 20 * 12 + 31);
    assert!(!played(&outs).contains(&4), "{outs:?}");
    assert_eq!(played(&outs).len(), 11);
    let stats = leg.stats();
    assert_eq!((stats.late, stats.lost, stats.concealed), (1, 1, 1));
}

#[test]
fn a_burst_of_losses_is_concealed_frame_by_frame_and_playback_resumes_on_time() {
    let mut leg = Leg::new();
    let outs = stream(&mut leg, 0, 7_000, 60, |n| {
        (!(10..30).contains(&n)).then(|| on_time(n)).flatten()
    });
    let concealed = outs
        .iter()
        .filter(|out| matches!(out, Out::C | Out::F(_)))
        .count();
    assert_eq!(concealed, 20, "{outs:?}");
    assert_eq!(played(&outs), (0..10).chain(30..60).collect::<Vec<_>>());
    assert_eq!(leg.stats().lost, 20);
    assert_eq!(leg.buffer.current_delay(), Duration::from_millis(20));
}

#[test]
fn a_sender_silence_plays_as_silence_and_the_talkspurt_resumes_on_target() {
    let mut leg = Leg::new();
    // Frames 0..10 at 20 ms, then a 400 ms silence: frame 10 (marker) carries media time
    // 600 ms and is sent then, sequence numbers unbroken.
    let mut outs = Vec::new();
    let mut pop = 10;
    for n in 0..20u16 {
        let media_ms = u64::from(n) * 20 + if n >= 10 { 400 } else { 0 };
        let mut packet = frame(500, n);
        packet.timestamp = 7_000 + (media_ms * 48) as u32;
        packet.marker = n == 0 || n == 10;
        while pop < media_ms + 30 {
            outs.push(leg.pop_at(pop));
            pop += 20;
        }
        leg.push_at(media_ms + 30, packet);
    }
    outs.push(leg.pop_at(pop));
    outs.push(leg.pop_at(pop + 20));
    assert_eq!(played(&outs), (0..20).collect::<Vec<_>>());
    // Until frame 10 arrives the buffer cannot tell the silence from a loss: it conceals
    // (the decoder fades out). Frame 10 arrives 20 ms before its turn, a frame of silence
    // ahead of it, and then plays on target.
    let resume = outs.iter().position(|out| *out == Out::P(10)).unwrap_or(0);
    assert_eq!(
        &outs[resume - 2..=resume],
        &[Out::C, Out::S, Out::P(10)],
        "{outs:?}"
    );
    assert!(outs[12..resume - 1].iter().all(|out| *out == Out::C));
    let stats = leg.stats();
    assert_eq!((stats.lost, stats.resyncs, stats.late), (0, 0, 0));
    assert_eq!(stats.underruns, (resume - 13) as u64);
    assert_eq!(leg.buffer.current_delay(), Duration::from_millis(20));
}

#[test]
fn a_late_talkspurt_start_plays_and_the_silence_absorbs_the_lateness() {
    let mut leg = Leg::new();
    let mut outs = Vec::new();
    let mut pop = 10;
    for n in 0..20u16 {
        let media_ms = u64::from(n) * 20 + if n >= 10 { 400 } else { 0 };
        // The talkspurt's first packets are held up 60 ms on the way.
        let arrival = media_ms + if (10..13).contains(&n) { 90 } else { 30 };
        let mut packet = frame(500, n);
        packet.timestamp = 7_000 + (media_ms * 48) as u32;
        packet.marker = n == 0 || n == 10;
        // A pop at the instant of an arrival comes after it. (Before it, playout would start
        // with packet 0 more than half a frame overdue and skip it: the start case of
        // `playout_starts_within_half_a_frame_of_the_target_whatever_the_phase`, not this one.)
        while pop < arrival {
            outs.push(leg.pop_at(pop));
            pop += 20;
        }
        leg.push_at(arrival, packet);
    }
    for _ in 0..5 {
        outs.push(leg.pop_at(pop));
        pop += 20;
    }
    assert_eq!(played(&outs), (0..20).collect::<Vec<_>>(), "{outs:?}");
    assert_eq!(leg.stats().late, 0);
}

#[test]
fn a_stray_packet_is_discarded_and_playback_goes_on() {
    let mut leg = Leg::new();
    let mut arrivals = frames(1_000, 7_000, 50, on_time);
    // One packet from nowhere: far-off sequence number and timestamp.
    arrivals.push((
        405,
        BufferedPacket::new(30_000, 123, true, vec![0xff, 0xff]),
    ));
    let outs = drive(&mut leg, arrivals, 20 * 50 + 31);
    assert_eq!(played(&outs), (0..50).collect::<Vec<_>>());
    let stats = leg.stats();
    assert_eq!((stats.discarded, stats.resyncs, stats.concealed), (1, 0, 0));
}

#[test]
fn quiet_packets_are_dropped_first() {
    // A delay far above target: a long preroll, then the network calms down.
    let mut leg = Leg::new();
    let mut outs = Vec::new();
    let mut pop = 10;
    for n in 0..400u16 {
        let sent = u64::from(n) * 20;
        // The first frame is 60 ms late, so the buffer starts 60 ms too deep; the rest
        // come on time.
        let arrival = sent + if n == 0 { 90 } else { 30 };
        let packet = frame(0, n).with_quiet(n % 7 == 3);
        while pop < arrival {
            outs.push(leg.pop_at(pop));
            pop += 20;
        }
        leg.push_at(arrival, packet);
    }
    let played = played(&outs);
    let skipped: Vec<u16> = (0..played.last().copied().unwrap_or(0))
        .filter(|n| !played.contains(n))
        .collect();
    let stats = leg.stats();
    assert!(stats.dropped >= 1, "{stats:?}");
    assert_eq!(skipped.len() as u64, stats.dropped);
    assert!(skipped.iter().all(|n| n % 7 == 3), "dropped {skipped:?}");
}

#[test]
fn a_stalled_playout_clock_catches_up_within_max_delay() {
    let mut leg = Leg::new();
    let mut outs = stream(&mut leg, 0, 7_000, 20, on_time);
    // No pop for a second while packets keep coming.
    for n in 20..70u16 {
        leg.push_at(u64::from(n) * 20 + 30, frame(0, n));
    }
    outs.push(leg.pop_at(1_410));
    let delay = leg.buffer.current_delay();
    let stats = leg.stats();
    assert!(delay <= Duration::from_millis(220), "delay {delay:?}");
    assert!(stats.dropped >= 40, "{stats:?}");
    assert!(
        matches!(outs.last(), Some(Out::P(n)) if *n >= 60),
        "{outs:?}"
    );
}

#[test]
fn reset_flushes_and_starts_a_new_stream() {
    let mut leg = Leg::new();
    // Reset at 150 ms, with frame 5 buffered and frames 6.. still on their way.
    let outs = drive(&mut leg, frames(0, 7_000, 10, on_time), 150);
    assert_eq!(played(&outs), vec![0, 1, 2, 3, 4]);
    assert_eq!(leg.buffer.len(), 1);
    leg.buffer.reset();
    let stats = leg.stats();
    assert_eq!(stats.resyncs, 1);
    assert!(stats.discarded >= 1);
    assert!(leg.buffer.is_empty());
    assert_eq!(leg.pop_at(170), Out::W);
    leg.push_at(175, frame(9_000, 0));
    leg.push_at(195, frame(9_000, 1));
    let next: Vec<Out> = (0..4).map(|i| leg.pop_at(190 + 20 * i)).collect();
    assert_eq!(played(&next), vec![0, 1], "{next:?}");
}

#[test]
fn nonsense_configuration_is_clamped() {
    let config = JitterBufferConfig {
        clock_rate: 0,
        frame: Duration::ZERO,
        min_delay: Duration::from_secs(60),
        max_delay: Duration::from_secs(60),
    };
    let buffer = JitterBuffer::new(config);
    let effective = buffer.config();
    assert_eq!(effective.clock_rate, 1000);
    assert_eq!(effective.frame, Duration::from_micros(2_500));
    assert_eq!(effective.max_delay, Duration::from_secs(10));
    assert_eq!(effective.min_delay, Duration::from_secs(10));
}

#[test]
fn garbage_between_real_packets_is_discarded_and_never_panics() {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    let mut rng = SmallRng::seed_from_u64(99);
    let mut leg = Leg::new();
    let mut outs = Vec::new();
    for n in 0..3_000u16 {
        let ms = u64::from(n) * 20;
        leg.push_at(ms + 30, frame(20_000, n));
        // One packet in five is noise: any sequence number, timestamp and marker.
        if rng.gen_bool(0.2) {
            let noise = BufferedPacket::new(rng.gen(), rng.gen(), rng.gen(), vec![0xff, 0xff]);
            leg.push_at(ms + 30 + rng.gen_range(0..20), noise);
        }
        outs.push(leg.pop_at(ms + 10));
    }
    let played = played(&outs);
    let stats = leg.stats();
    assert!(!played.contains(&0xffff));
    assert!(played.windows(2).all(|pair| pair[0] < pair[1]));
    assert!(played.len() >= 2_950, "played {} {stats:?}", played.len());
    assert!(stats.discarded >= 500, "{stats:?}");

    // Nothing but noise, with time jumping back and forth: no panic, bounded buffer.
    let mut buffer = JitterBuffer::new(JitterBufferConfig::new(8_000));
    let start = Instant::now() + Duration::from_secs(3_600);
    for _ in 0..20_000 {
        let at = start + Duration::from_millis(rng.gen_range(0..10_000)) - Duration::from_secs(1);
        if rng.gen_bool(0.5) {
            let packet = BufferedPacket::new(rng.gen(), rng.gen(), rng.gen(), Vec::new())
                .with_quiet(rng.gen());
            buffer.push(packet, at);
        } else {
            buffer.pop(at);
        }
        assert!(buffer.len() <= 1024);
    }
    let stats = buffer.stats();
    assert!(stats.target_delay <= Duration::from_millis(200));
}

#[test]
fn playout_starts_within_half_a_frame_of_the_target_whatever_the_phase() {
    // A clean stream whose packets arrive at every phase of the 20 ms pop cycle. Playout
    // waits for the second packet, which leaves the first up to a frame overdue; it starts
    // with whichever of the two is nearer its turn, and the delay it starts at stays.
    for phase in 0..20 {
        let mut leg = Leg::new();
        let outs = drive(
            &mut leg,
            frames(0, 7_000, 40, |n| on_time(n).map(|at| at + phase)),
            900,
        );
        let played = played(&outs);
        let first = played.first().copied().unwrap_or(u16::MAX);
        assert_eq!(
            played,
            (first..40).collect::<Vec<_>>(),
            "phase {phase}: {outs:?}"
        );
        let stats = leg.stats();
        assert_eq!(stats.dropped, u64::from(first), "phase {phase}");
        assert_eq!(
            (stats.lost, stats.late, stats.inserted),
            (0, 0, 0),
            "phase {phase}"
        );
        let delay = leg.buffer.current_delay().as_millis();
        assert!(
            (10..=30).contains(&delay),
            "phase {phase}: delay {delay} ms"
        );
    }
}

#[test]
fn a_first_packet_slower_than_the_second_still_plays() {
    // The first packet took 15 ms longer than the second: jitter, not the start-up wait.
    // At the pop at 70 ms it is 15 ms overdue, yet playout starts with it, at the deeper
    // delay that jitter calls for.
    let mut leg = Leg::new();
    let arrival = |n: u16| on_time(n).map(|at| at + 5 + if n == 0 { 15 } else { 0 });
    let outs = drive(&mut leg, frames(0, 7_000, 20, arrival), 20 * 20 + 51);
    assert_eq!(played(&outs), (0..20).collect::<Vec<_>>(), "{outs:?}");
    assert_eq!(leg.stats().dropped, 0);
    assert_eq!(leg.buffer.current_delay(), Duration::from_millis(35));
}

#[test]
fn a_stray_first_packet_never_plays() {
    let mut leg = Leg::new();
    let mut arrivals = frames(1_000, 7_000, 20, |n| on_time(n).map(|at| at + 5));
    arrivals.push((
        0,
        BufferedPacket::new(50_000, 4_000_000_000, false, vec![0xff, 0xff]),
    ));
    let outs = drive(&mut leg, arrivals, 20 * 20 + 31);
    let stats = leg.stats();
    assert_eq!((stats.resyncs, stats.discarded), (1, 1));
    // Playout waited for the second real packet to confirm the stream (at 55 ms). By the
    // pop at 70 ms the first real packet is 15 ms overdue, nearer the past than the second
    // (5 ms early): playout starts with the second, 5 ms under the target, instead of 15 ms
    // over it for the rest of the call.
    assert_eq!(played(&outs), (1..20).collect::<Vec<_>>(), "{outs:?}");
    assert_eq!((stats.dropped, stats.lost, stats.concealed), (1, 0, 0));
    assert_eq!(leg.buffer.current_delay(), Duration::from_millis(15));
}
