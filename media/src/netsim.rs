//! Test support: a seeded network and a drifting packet sender, in virtual time.
//!
//! Media tests (the jitter buffer, RTP sessions) need minutes of packets that arrive late,
//! out of order, twice or never — replayably, and faster than real time. [`SimNetwork`]
//! carries any `T` from a send time to an arrival time, deciding loss, delay, jitter,
//! duplication and reordering with a seeded `SmallRng`; [`SimAudioSender`] produces
//! [`BufferedPacket`]s at the times a sender whose clock runs fast or slow would send them,
//! with silences (DTX), timestamp jumps and restarts on demand. Nothing sleeps: the test
//! advances a virtual `Instant` from event to event. Production code does not use this module.
//!
//! The jitter model: each copy of a packet gets the fixed `latency` plus a queueing delay drawn
//! from an exponential distribution whose 95th percentile is `jitter` (mean `jitter / 3`, a
//! long tail: 1 % of packets see 1.5 × `jitter`, 0.1 % see 2.3 ×). Packets leave that queue
//! in order, as from one bottleneck link, so a delayed packet holds up those behind it and
//! they arrive in a bunch. Reordering is separate: a `reorder` fraction of packets take a
//! path `reorder_delay` longer and are overtaken.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use callisto_media::netsim::{NetworkConditions, SimAudioSender, SimNetwork};
//!
//! let start = Instant::now();
//! let mut sender = SimAudioSender::new(48_000, Duration::from_millis(20), start);
//! let mut network = SimNetwork::new(NetworkConditions::jittery(Duration::from_millis(40)), 7);
//! for _ in 0..50 {
//!     let sent = sender.next_packet();
//!     network.send(sent.at, sent.packet);
//! }
//! let mut arrived = 0;
//! while let Some(delivery) = network.poll_deliver(start + Duration::from_secs(5)) {
//!     assert!(delivery.arrival >= start);
//!     arrived += 1;
//! }
//! assert_eq!(arrived, 50);
//! ```

pub mod bottleneck;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::jitter_buffer::BufferedPacket;

/// How the simulated network treats packets. Probabilities are in `0.0..=1.0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetworkConditions {
    /// Fixed one-way delay.
    pub latency: Duration,
    /// 95th percentile of the extra queueing delay (exponentially distributed).
    pub jitter: Duration,
    /// Probability that a packet is lost when the one before it arrived.
    pub loss: f64,
    /// Probability that a packet is lost when the one before it was lost too, if higher than
    /// `loss`: losses then come in bursts (a two-state Gilbert model), and the overall loss
    /// rate is `loss / (1 − loss_burst + loss)`.
    pub loss_burst: f64,
    /// Probability that a packet takes a slower path and is overtaken.
    pub reorder: f64,
    /// How much slower that path is.
    pub reorder_delay: Duration,
    /// Probability that a packet arrives twice (the copy with its own delay).
    pub duplicate: f64,
}

impl NetworkConditions {
    /// A perfect network with a fixed one-way delay.
    pub fn clean(latency: Duration) -> Self {
        NetworkConditions {
            latency,
            jitter: Duration::ZERO,
            loss: 0.0,
            loss_burst: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            duplicate: 0.0,
        }
    }

    /// 30 ms latency and the given jitter, nothing lost.
    pub fn jittery(jitter: Duration) -> Self {
        NetworkConditions {
            jitter,
            ..NetworkConditions::clean(Duration::from_millis(30))
        }
    }
}

impl Default for NetworkConditions {
    fn default() -> Self {
        NetworkConditions::clean(Duration::ZERO)
    }
}

/// What the network did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Items handed to [`SimNetwork::send`].
    pub sent: u64,
    /// Items lost.
    pub lost: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Copies sent on the slower path.
    pub reordered: u64,
    /// Items handed out by [`SimNetwork::poll_deliver`].
    pub delivered: u64,
}

/// An item that arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery<T> {
    /// When it arrived.
    pub arrival: Instant,
    /// When it was sent.
    pub sent: Instant,
    /// The item.
    pub item: T,
}

/// A one-way network path, deterministic for a given seed.
#[derive(Debug, Clone)]
pub struct SimNetwork<T> {
    conditions: NetworkConditions,
    rng: SmallRng,
    /// In flight, by (arrival time, send order): equal arrival times keep send order.
    in_flight: BTreeMap<(Instant, u64), (Instant, T)>,
    order: u64,
    /// When the last packet through the in-order queue leaves it.
    queue_free: Option<Instant>,
    last_lost: bool,
    stats: NetworkStats,
}

impl<T: Clone> SimNetwork<T> {
    /// A path with the given conditions, seeded.
    pub fn new(conditions: NetworkConditions, seed: u64) -> Self {
        SimNetwork {
            conditions,
            rng: SmallRng::seed_from_u64(seed),
            in_flight: BTreeMap::new(),
            order: 0,
            queue_free: None,
            last_lost: false,
            stats: NetworkStats::default(),
        }
    }

    /// The current conditions.
    pub fn conditions(&self) -> NetworkConditions {
        self.conditions
    }

    /// Changes the conditions for items sent from now on.
    pub fn set_conditions(&mut self, conditions: NetworkConditions) {
        self.conditions = conditions;
    }

    /// Sends `item` at `now` (send times must not go backwards); it may be lost, delayed,
    /// duplicated or reordered.
    pub fn send(&mut self, now: Instant, item: T) {
        self.stats.sent += 1;
        let loss = if self.last_lost {
            self.conditions.loss.max(self.conditions.loss_burst)
        } else {
            self.conditions.loss
        };
        self.last_lost = self.chance(loss);
        if self.last_lost {
            self.stats.lost += 1;
            return;
        }
        let copies = if self.chance(self.conditions.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let queued = now + self.conditions.latency + self.queueing_delay();
            let mut arrival = match self.queue_free {
                Some(free) if free > queued => free,
                _ => queued,
            };
            self.queue_free = Some(arrival);
            if self.chance(self.conditions.reorder) {
                self.stats.reordered += 1;
                arrival += self.conditions.reorder_delay;
            }
            self.order += 1;
            self.in_flight
                .insert((arrival, self.order), (now, item.clone()));
        }
    }

    /// The next item that has arrived by `now`, earliest first.
    pub fn poll_deliver(&mut self, now: Instant) -> Option<Delivery<T>> {
        let (&(arrival, _), _) = self.in_flight.first_key_value()?;
        if arrival > now {
            return None;
        }
        let ((arrival, _), (sent, item)) = self.in_flight.pop_first()?;
        self.stats.delivered += 1;
        Some(Delivery {
            arrival,
            sent,
            item,
        })
    }

    /// When the next item arrives, if any is in flight.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.in_flight
            .first_key_value()
            .map(|(&(arrival, _), _)| arrival)
    }

    /// How many items are in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// What the network did so far.
    pub fn stats(&self) -> NetworkStats {
        self.stats
    }

    fn chance(&mut self, probability: f64) -> bool {
        probability > 0.0 && self.rng.gen_bool(probability.clamp(0.0, 1.0))
    }

    /// An exponential draw with 95th percentile `jitter`: `-ln(U) · jitter / ln 20`.
    fn queueing_delay(&mut self) -> Duration {
        let jitter = self.conditions.jitter.as_secs_f64();
        if jitter <= 0.0 {
            return Duration::ZERO;
        }
        let uniform: f64 = self.rng.gen_range(f64::MIN_POSITIVE..1.0);
        Duration::from_secs_f64(-uniform.ln() * jitter / 20f64.ln())
    }
}

/// A packet as the sender sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentPacket {
    /// When it was sent (by the receiver's clock).
    pub at: Instant,
    /// The sender's running frame number, unaffected by restarts; also the payload (8 bytes,
    /// big-endian), so a test can tell which frame a played packet carries.
    pub index: u64,
    /// Its duration in samples (the packet itself leaves [`BufferedPacket::samples`] unset,
    /// as a receiver that cannot parse the payload would).
    pub samples: u32,
    /// The packet.
    pub packet: BufferedPacket,
}

/// Reads the frame number [`SimAudioSender`] puts in each payload.
pub fn frame_index(packet: &BufferedPacket) -> Option<u64> {
    let bytes: [u8; 8] = packet.payload.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// An audio sender: one packet per frame, on a clock that may run fast or slow.
#[derive(Debug, Clone)]
pub struct SimAudioSender {
    clock_rate: u32,
    frame_samples: u32,
    start: Instant,
    /// Sender clock rate relative to the receiver's, minus one (0.005: 0.5 % fast).
    drift: f64,
    /// Media time sent so far, in samples of the sender's clock.
    media_samples: u64,
    sequence: u16,
    timestamp: u32,
    index: u64,
    marker: bool,
}

impl SimAudioSender {
    /// A sender at `clock_rate` Hz sending `frame`-long packets from `start`, sequence numbers
    /// from 1000 and timestamps from 160 000 (both wrap as they go).
    pub fn new(clock_rate: u32, frame: Duration, start: Instant) -> Self {
        SimAudioSender {
            clock_rate,
            frame_samples: Self::samples(clock_rate, frame),
            start,
            drift: 0.0,
            media_samples: 0,
            sequence: 1000,
            timestamp: 160_000,
            index: 0,
            marker: true,
        }
    }

    /// The same sender with its clock off by `drift` (0.005: 0.5 % fast; −0.005: slow).
    pub fn with_drift(mut self, drift: f64) -> Self {
        self.drift = drift;
        self
    }

    /// The same sender starting at `sequence` and `timestamp`.
    pub fn starting_at(mut self, sequence: u16, timestamp: u32) -> Self {
        self.sequence = sequence;
        self.timestamp = timestamp;
        self
    }

    /// When the next packet goes out, by the receiver's clock.
    pub fn next_send(&self) -> Instant {
        let media_seconds = self.media_samples as f64 / f64::from(self.clock_rate);
        self.start + Duration::from_secs_f64(media_seconds / (1.0 + self.drift))
    }

    /// The next packet, and when it goes out.
    pub fn next_packet(&mut self) -> SentPacket {
        let at = self.next_send();
        let packet = BufferedPacket::new(
            self.sequence,
            self.timestamp,
            self.marker,
            self.index.to_be_bytes().to_vec(),
        );
        let sent = SentPacket {
            at,
            index: self.index,
            samples: self.frame_samples,
            packet,
        };
        self.marker = false;
        self.index += 1;
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(self.frame_samples);
        self.media_samples += u64::from(self.frame_samples);
        sent
    }

    /// Stops sending for `duration` (rounded to whole frames): a DTX or VAD silence. Time
    /// and timestamps move on, sequence numbers do not; the next packet carries the marker.
    pub fn pause(&mut self, duration: Duration) {
        let frames = (Self::samples(self.clock_rate, duration) + self.frame_samples / 2)
            / self.frame_samples.max(1);
        let samples = frames * self.frame_samples;
        self.timestamp = self.timestamp.wrapping_add(samples);
        self.media_samples += u64::from(samples);
        self.marker = true;
    }

    /// Restarts the stream with new sequence numbers and timestamps, as a restarted sender
    /// or a new SSRC would; the next packet carries the marker.
    pub fn restart(&mut self, sequence: u16, timestamp: u32) {
        self.sequence = sequence;
        self.timestamp = timestamp;
        self.marker = true;
    }

    /// Moves the timestamps by `samples` without a pause (a sender re-timestamping).
    pub fn jump_timestamp(&mut self, samples: u32) {
        self.timestamp = self.timestamp.wrapping_add(samples);
    }

    /// Sends `frame`-long packets from now on.
    pub fn set_frame(&mut self, frame: Duration) {
        self.frame_samples = Self::samples(self.clock_rate, frame);
    }

    /// The RTP timestamp of the next packet.
    pub fn next_timestamp(&self) -> u32 {
        self.timestamp
    }

    /// The sender's frame number of the next packet.
    pub fn next_packet_index(&self) -> u64 {
        self.index
    }

    /// The current packet duration in samples.
    pub fn frame_samples(&self) -> u32 {
        self.frame_samples
    }

    fn samples(clock_rate: u32, duration: Duration) -> u32 {
        let samples = duration.as_micros() * u128::from(clock_rate) / 1_000_000;
        u32::try_from(samples).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deliver_all(
        conditions: NetworkConditions,
        seed: u64,
    ) -> (Vec<(u64, Duration)>, NetworkStats) {
        let start = Instant::now();
        let mut sender = SimAudioSender::new(8_000, Duration::from_millis(20), start);
        let mut network = SimNetwork::new(conditions, seed);
        for _ in 0..5_000 {
            let sent = sender.next_packet();
            network.send(sent.at, sent.index);
        }
        let mut arrived = Vec::new();
        while let Some(delivery) = network.poll_deliver(start + Duration::from_secs(1_000)) {
            arrived.push((delivery.item, delivery.arrival - delivery.sent));
        }
        (arrived, network.stats())
    }

    #[test]
    fn a_clean_network_delivers_in_order_after_the_latency() {
        let latency = Duration::from_millis(25);
        let (arrived, stats) = deliver_all(NetworkConditions::clean(latency), 1);
        assert_eq!(arrived.len(), 5_000);
        assert!(arrived
            .iter()
            .enumerate()
            .all(|(i, &(index, delay))| { index == i as u64 && delay == latency }));
        assert_eq!(stats.delivered, 5_000);
    }

    #[test]
    fn jitter_has_the_configured_95th_percentile_and_keeps_order() {
        let conditions = NetworkConditions::jittery(Duration::from_millis(40));
        let (arrived, _) = deliver_all(conditions, 2);
        assert!(arrived.windows(2).all(|w| w[0].0 < w[1].0));
        let mut extra: Vec<f64> = arrived
            .iter()
            .map(|&(_, delay)| (delay - conditions.latency).as_secs_f64() * 1000.0)
            .collect();
        extra.sort_by(f64::total_cmp);
        let p95 = extra[extra.len() * 95 / 100];
        // In-order release lengthens the tail a little beyond the drawn 40 ms.
        assert!((38.0..52.0).contains(&p95), "p95 {p95:.1} ms");
    }

    #[test]
    fn loss_reordering_and_duplicates_follow_the_seed() {
        let conditions = NetworkConditions {
            loss: 0.05,
            loss_burst: 0.3,
            reorder: 0.05,
            reorder_delay: Duration::from_millis(50),
            duplicate: 0.02,
            ..NetworkConditions::jittery(Duration::from_millis(20))
        };
        let (first, stats) = deliver_all(conditions, 3);
        let (second, _) = deliver_all(conditions, 3);
        let (other, _) = deliver_all(conditions, 4);
        assert_eq!(first, second);
        assert_ne!(first, other);
        assert!((200..400).contains(&stats.lost), "lost {}", stats.lost);
        assert!(stats.duplicated > 50 && stats.reordered > 150, "{stats:?}");
        assert!(
            first.windows(2).any(|w| w[0].0 > w[1].0),
            "nothing reordered"
        );
    }

    #[test]
    fn the_sender_clock_drifts_pauses_and_restarts() {
        let start = Instant::now();
        let frame = Duration::from_millis(20);
        let mut fast = SimAudioSender::new(48_000, frame, start).with_drift(0.005);
        let first = fast.next_packet();
        assert!(first.packet.marker);
        for _ in 0..999 {
            fast.next_packet();
        }
        // 1000 frames are 20 s of media, sent in 20 s / 1.005.
        let elapsed = fast.next_send() - start;
        assert!((elapsed.as_secs_f64() - 20.0 / 1.005).abs() < 1e-6);

        let mut sender =
            SimAudioSender::new(48_000, frame, start).starting_at(65_535, u32::MAX - 959);
        let a = sender.next_packet();
        let b = sender.next_packet();
        assert_eq!((b.packet.sequence, b.packet.timestamp), (0, 0));
        assert!(!b.packet.marker);
        sender.pause(Duration::from_millis(200));
        let c = sender.next_packet();
        assert_eq!(c.packet.sequence, 1);
        assert_eq!(c.packet.timestamp, 960 + 10 * 960);
        assert!(c.packet.marker);
        assert_eq!(c.at - a.at, Duration::from_millis(240));
        sender.restart(7, 42);
        let d = sender.next_packet();
        assert_eq!(
            (d.packet.sequence, d.packet.timestamp, d.packet.marker),
            (7, 42, true)
        );
        assert_eq!(frame_index(&d.packet), Some(3));
    }
}
