//! A short reordering buffer for one video RTP stream, in front of the depacketizer (sans-IO).
//!
//! Video packets must reach the H.264 depacketizer in sequence order: a gap there drops the
//! access unit and asks for a keyframe. On a lossy path the sender retransmits what the
//! receiver NACKs, but the retransmission arrives about one round trip after the packets that
//! overtook it. [`ReorderBuffer`] holds the packets behind a hole for a short while so that a
//! late retransmission (or a merely reordered packet) can fill it, and delivers everything in
//! sequence order.
//!
//! # Contract
//!
//! - [`push`](ReorderBuffer::push) every received packet with its sequence number and `now`;
//!   then drain [`poll`](ReorderBuffer::poll) until it returns `None`, and call `poll` again at
//!   [`poll_timeout`](ReorderBuffer::poll_timeout) (the instant the hole at the head gives up).
//! - In-order packets pass straight through: with no hole, nothing is held.
//! - A hole is waited for at most the *hold time*, counted from the arrival of the first
//!   packet behind it: `min(1.5 × RTT + margin, max_hold)` (default margin 50 ms: the NACK
//!   generator's 10 ms reorder window, and the NACK and its answer crossing two peer
//!   connections' tasks and threads, which on a busy machine takes longer than the path's
//!   RTT; cap 150 ms; [`set_rtt`](ReorderBuffer::set_rtt) keeps it current). Then the hole is
//!   skipped (its packets are counted lost) and delivery goes on; the depacketizer sees the
//!   gap and deals with it (drop, keyframe request).
//! - A packet for a hole already skipped, or one already delivered, is refused
//!   ([`Arrival::Late`], [`Arrival::Duplicate`]). A packet further ahead than `capacity`, or
//!   more than `capacity` packets held, skips the holes at once (no unbounded memory).
//! - A packet far behind (more than `restart_window` before the next expected) is taken as a
//!   restart of the sender's sequence: the buffer delivers what it holds and starts over there.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Skipped ranges remembered to classify late packets.
const SKIPPED_RANGES: usize = 64;

/// Settings of a [`ReorderBuffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReorderConfig {
    /// The hold time never exceeds this.
    pub max_hold: Duration,
    /// Added to 1.5 × RTT: the time for the receiver to notice the hole and ask, and jitter.
    pub margin: Duration,
    /// Most packets held at once.
    pub capacity: usize,
    /// A packet this far behind the next expected one is a sequence restart.
    pub restart_window: u16,
}

impl Default for ReorderConfig {
    /// 150 ms at most, 50 ms margin, 512 packets, restart 3000 behind.
    fn default() -> Self {
        ReorderConfig {
            max_hold: Duration::from_millis(150),
            margin: Duration::from_millis(50),
            capacity: 512,
            restart_window: 3_000,
        }
    }
}

/// What a pushed packet was to the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The next expected packet or one ahead of it: taken.
    InOrder,
    /// A packet that fills a hole being waited for: taken.
    FilledHole,
    /// A packet for a hole already given up on: refused.
    Late,
    /// A packet already delivered or held: refused.
    Duplicate,
}

/// Counters of a [`ReorderBuffer`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReorderStats {
    /// Packets delivered.
    pub delivered: u64,
    /// Packets that arrived into a hole in time (retransmissions and reordered packets).
    pub filled_holes: u64,
    /// Sequence numbers given up on.
    pub skipped: u64,
    /// Packets refused because their hole had already been given up on.
    pub late: u64,
    /// Packets refused as already delivered or held.
    pub duplicates: u64,
    /// Sequence restarts.
    pub restarts: u64,
}

/// Holds packets behind a hole for a short while, delivers in order. See the
/// [module documentation](self).
#[derive(Debug)]
pub struct ReorderBuffer<T> {
    config: ReorderConfig,
    hold: Duration,
    /// Unwrapped sequence number of the next packet to deliver.
    next: Option<u64>,
    /// Held packets by unwrapped sequence number, with their arrival time.
    held: BTreeMap<u64, (T, Instant)>,
    /// Deliverable packets, in order.
    ready: VecDeque<T>,
    /// Recently skipped ranges `[from, to)`, to tell late packets from duplicates.
    skipped_ranges: VecDeque<(u64, u64)>,
    stats: ReorderStats,
}

impl<T> ReorderBuffer<T> {
    /// An empty buffer, assuming a 100 ms RTT until told otherwise.
    pub fn new(config: ReorderConfig) -> Self {
        let mut buffer = ReorderBuffer {
            config,
            hold: Duration::ZERO,
            next: None,
            held: BTreeMap::new(),
            ready: VecDeque::new(),
            skipped_ranges: VecDeque::new(),
            stats: ReorderStats::default(),
        };
        buffer.set_rtt(Duration::from_millis(100));
        buffer
    }

    /// Sets the round-trip time the hold time follows.
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.hold = (rtt.mul_f64(1.5) + self.config.margin).min(self.config.max_hold);
    }

    /// The current hold time.
    pub fn hold_time(&self) -> Duration {
        self.hold
    }

    /// The counters so far.
    pub fn stats(&self) -> ReorderStats {
        self.stats
    }

    /// Packets held behind a hole.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Takes a packet with RTP sequence number `sequence` that arrived at `now`.
    pub fn push(&mut self, sequence: u16, packet: T, now: Instant) -> Arrival {
        let Some(next) = self.next else {
            self.next = Some((1 << 32) + u64::from(sequence) + 1);
            self.deliver(packet);
            return Arrival::InOrder;
        };
        let diff = i64::from(sequence.wrapping_sub(next as u16) as i16);
        let unwrapped = next.saturating_add_signed(diff);
        if unwrapped < next {
            if next - unwrapped > u64::from(self.config.restart_window) {
                self.restart(sequence, packet);
                return Arrival::InOrder;
            }
            // Delivered, or given up on.
            return if self.was_skipped(unwrapped) {
                self.stats.late += 1;
                Arrival::Late
            } else {
                self.stats.duplicates += 1;
                Arrival::Duplicate
            };
        }
        if self.held.contains_key(&unwrapped) {
            self.stats.duplicates += 1;
            return Arrival::Duplicate;
        }
        let fills_hole = self
            .held
            .keys()
            .next()
            .is_some_and(|&first| unwrapped < first);
        if unwrapped == next {
            self.deliver(packet);
            self.next = Some(next + 1);
            self.release_in_order();
        } else {
            self.held.insert(unwrapped, (packet, now));
            if unwrapped - next > self.config.capacity as u64
                || self.held.len() > self.config.capacity
            {
                self.skip_hole();
            }
        }
        if fills_hole {
            self.stats.filled_holes += 1;
            Arrival::FilledHole
        } else {
            Arrival::InOrder
        }
    }

    /// The next packet in order, giving up on the hole at the head once it waited the hold
    /// time.
    pub fn poll(&mut self, now: Instant) -> Option<T> {
        if self.ready.is_empty() {
            if let Some(deadline) = self.poll_timeout() {
                if now >= deadline {
                    self.skip_hole();
                }
            }
        }
        self.ready.pop_front()
    }

    /// When the hole at the head will be given up on, if packets wait behind one.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.held
            .values()
            .map(|&(_, arrived)| arrived)
            .min()
            .map(|arrived| arrived + self.hold)
    }

    fn deliver(&mut self, packet: T) {
        self.stats.delivered += 1;
        self.ready.push_back(packet);
    }

    /// Delivers the held packets that follow `next` without a hole.
    fn release_in_order(&mut self) {
        while let Some(next) = self.next {
            let Some((packet, _)) = self.held.remove(&next) else {
                break;
            };
            self.deliver(packet);
            self.next = Some(next + 1);
        }
    }

    /// Gives up on the hole at the head: delivery resumes at the first held packet.
    fn skip_hole(&mut self) {
        let (Some(next), Some(&first)) = (self.next, self.held.keys().next()) else {
            return;
        };
        self.stats.skipped += first - next;
        if self.skipped_ranges.len() == SKIPPED_RANGES {
            self.skipped_ranges.pop_front();
        }
        self.skipped_ranges.push_back((next, first));
        self.next = Some(first);
        self.release_in_order();
    }

    fn was_skipped(&self, unwrapped: u64) -> bool {
        self.skipped_ranges
            .iter()
            .any(|&(from, to)| (from..to).contains(&unwrapped))
    }

    fn restart(&mut self, sequence: u16, packet: T) {
        self.stats.restarts += 1;
        let held = std::mem::take(&mut self.held);
        for (packet, _) in held.into_values() {
            self.deliver(packet);
        }
        self.skipped_ranges.clear();
        self.next = Some((1 << 32) + u64::from(sequence) + 1);
        self.deliver(packet);
    }
}

#[cfg(test)]
#[path = "reorder_buffer_tests.rs"]
mod tests;
