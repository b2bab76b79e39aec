//! Test support: a bottleneck link with a drop-tail queue, in virtual time.
//!
//! Rate-control tests need what [`SimNetwork`](super::SimNetwork) does not model: a link of
//! limited capacity whose queue grows when the sender sends faster than the link drains it.
//! [`BottleneckLink`] serialises each packet at `capacity_bps` after those queued before it,
//! drops it when the queue (bytes waiting, including the one being sent) would exceed
//! `queue_bytes` (drop-tail), drops a seeded random fraction `loss` before the queue, and adds a
//! fixed `propagation` delay after it. Capacity can change mid-run; the queue already waiting
//! drains at the new rate from then on. Production code does not use this module.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use callisto_media::netsim::bottleneck::{BottleneckLink, LinkConditions};
//!
//! let start = Instant::now();
//! let conditions = LinkConditions::new(1_000_000, Duration::from_millis(20));
//! let mut link = BottleneckLink::new(conditions, 1);
//! // Two 1250-byte packets at once: 10 ms of serialisation each.
//! link.send(start, 1250, 'a');
//! link.send(start, 1250, 'b');
//! let a = link.poll_deliver(start + Duration::from_secs(1)).unwrap();
//! let b = link.poll_deliver(start + Duration::from_secs(1)).unwrap();
//! assert_eq!(a.arrival - start, Duration::from_millis(30));
//! assert_eq!(b.arrival - start, Duration::from_millis(40));
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::Delivery;

/// How a [`BottleneckLink`] treats packets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConditions {
    /// Link capacity in bits per second (at least 1).
    pub capacity_bps: u64,
    /// Bytes the queue holds, the packet being serialised included; more are dropped.
    pub queue_bytes: usize,
    /// Fixed one-way delay after the queue.
    pub propagation: Duration,
    /// Probability in `0.0..=1.0` that a packet is lost at random before the queue.
    pub loss: f64,
}

impl LinkConditions {
    /// A loss-free link of `capacity_bps` with `propagation` delay and a queue of 300 ms at that
    /// capacity (at least 15 000 bytes).
    pub fn new(capacity_bps: u64, propagation: Duration) -> Self {
        let queue_bytes = (capacity_bps.saturating_mul(3) / 80).max(15_000);
        LinkConditions {
            capacity_bps: capacity_bps.max(1),
            queue_bytes: usize::try_from(queue_bytes).unwrap_or(usize::MAX),
            propagation,
            loss: 0.0,
        }
    }
}

/// What a [`BottleneckLink`] did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets handed to [`BottleneckLink::send`].
    pub sent: u64,
    /// Packets lost at random.
    pub lost: u64,
    /// Packets dropped because the queue was full.
    pub dropped: u64,
    /// Packets handed out by [`BottleneckLink::poll_deliver`].
    pub delivered: u64,
}

/// A one-way path through one bottleneck, deterministic for a given seed.
#[derive(Debug, Clone)]
pub struct BottleneckLink<T> {
    conditions: LinkConditions,
    rng: SmallRng,
    /// Packets in the queue: when each finishes serialisation, and its size.
    queue: VecDeque<(Instant, usize)>,
    /// Serialised packets on their way, by (arrival time, send order).
    in_flight: BTreeMap<(Instant, u64), (Instant, T)>,
    order: u64,
    stats: LinkStats,
}

impl<T> BottleneckLink<T> {
    /// A link with the given conditions, seeded.
    pub fn new(conditions: LinkConditions, seed: u64) -> Self {
        BottleneckLink {
            conditions,
            rng: SmallRng::seed_from_u64(seed),
            queue: VecDeque::new(),
            in_flight: BTreeMap::new(),
            order: 0,
            stats: LinkStats::default(),
        }
    }

    /// The current conditions.
    pub fn conditions(&self) -> LinkConditions {
        self.conditions
    }

    /// Changes the conditions at `now`: the packet being serialised finishes as planned, those
    /// waiting behind it drain at the new capacity.
    pub fn set_conditions(&mut self, now: Instant, conditions: LinkConditions) {
        self.drain(now);
        let capacity = conditions.capacity_bps.max(1);
        // The packet in service finishes as planned; those behind it drain at the new rate.
        let mut free = self.queue.front().map_or(now, |&(done, _)| done);
        for (done, size) in self.queue.iter_mut().skip(1) {
            free += serialisation(*size, capacity);
            *done = free;
        }
        self.conditions = LinkConditions {
            capacity_bps: capacity,
            ..conditions
        };
        // Packets already queued keep their place; their arrival moves with the new timing.
        let mut retimed = BTreeMap::new();
        let queued: Vec<Instant> = self.queue.iter().map(|&(done, _)| done).collect();
        let first_queued = self.in_flight.len().saturating_sub(queued.len());
        for (index, ((arrival, order), value)) in
            std::mem::take(&mut self.in_flight).into_iter().enumerate()
        {
            let arrival = match index.checked_sub(first_queued) {
                Some(q) => queued[q] + self.conditions.propagation,
                None => arrival,
            };
            retimed.insert((arrival, order), value);
        }
        self.in_flight = retimed;
    }

    /// Sends a packet of `size` bytes at `now` (send times must not go backwards). Returns
    /// whether the link accepted it (not lost at random, not dropped by a full queue).
    pub fn send(&mut self, now: Instant, size: usize, item: T) -> bool {
        self.stats.sent += 1;
        if self.conditions.loss > 0.0 && self.rng.gen_bool(self.conditions.loss.clamp(0.0, 1.0)) {
            self.stats.lost += 1;
            return false;
        }
        self.drain(now);
        let queued: usize = self.queue.iter().map(|&(_, s)| s).sum();
        if queued + size > self.conditions.queue_bytes {
            self.stats.dropped += 1;
            return false;
        }
        let start = self.queue.back().map_or(now, |&(done, _)| done.max(now));
        let done = start + serialisation(size, self.conditions.capacity_bps);
        self.queue.push_back((done, size));
        self.order += 1;
        self.in_flight.insert(
            (done + self.conditions.propagation, self.order),
            (now, item),
        );
        true
    }

    /// How long a packet sent at `now` would wait before its own serialisation starts.
    pub fn queue_delay(&self, now: Instant) -> Duration {
        self.queue.back().map_or(Duration::ZERO, |&(done, _)| {
            done.saturating_duration_since(now)
        })
    }

    /// The next packet that has arrived by `now`, earliest first.
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

    /// When the next packet arrives, if any is on its way.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.in_flight
            .first_key_value()
            .map(|(&(arrival, _), _)| arrival)
    }

    /// What the link did so far.
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// Forgets queued packets whose serialisation ended by `now`.
    fn drain(&mut self, now: Instant) {
        while self.queue.front().is_some_and(|&(done, _)| done <= now) {
            self.queue.pop_front();
        }
    }
}

fn serialisation(size: usize, capacity_bps: u64) -> Duration {
    let bits = u128::try_from(size).unwrap_or(u128::MAX).saturating_mul(8);
    let nanos = bits.saturating_mul(1_000_000_000) / u128::from(capacity_bps.max(1));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_at_capacity_and_drops_when_the_queue_is_full() {
        let start = Instant::now();
        let conditions = LinkConditions {
            queue_bytes: 5_000,
            ..LinkConditions::new(1_000_000, Duration::from_millis(10))
        };
        let mut link = BottleneckLink::new(conditions, 1);
        // Ten 1000-byte packets at once: four fit behind the first (5000 bytes), the rest drop.
        let accepted = (0..10).filter(|&i| link.send(start, 1000, i)).count();
        assert_eq!(accepted, 5);
        assert_eq!(link.stats().dropped, 5);
        assert_eq!(link.queue_delay(start), Duration::from_millis(40));
        let mut arrivals = Vec::new();
        while let Some(d) = link.poll_deliver(start + Duration::from_secs(1)) {
            arrivals.push((d.item, (d.arrival - start).as_millis()));
        }
        assert_eq!(arrivals, vec![(0, 18), (1, 26), (2, 34), (3, 42), (4, 50)]);
    }

    #[test]
    fn a_capacity_change_retimes_the_waiting_queue() {
        let start = Instant::now();
        let mut link = BottleneckLink::new(LinkConditions::new(1_000_000, Duration::ZERO), 1);
        for i in 0..3 {
            link.send(start, 1250, i);
        }
        // At 5 ms, the first packet is half sent; halve the capacity.
        let now = start + Duration::from_millis(5);
        link.set_conditions(now, LinkConditions::new(500_000, Duration::ZERO));
        let mut arrivals = Vec::new();
        while let Some(d) = link.poll_deliver(start + Duration::from_secs(1)) {
            arrivals.push((d.item, (d.arrival - start).as_millis()));
        }
        // The packet in service keeps its time; the two behind it take 20 ms each.
        assert_eq!(arrivals, vec![(0, 10), (1, 30), (2, 50)]);
    }

    #[test]
    fn random_loss_follows_the_seed() {
        let start = Instant::now();
        let conditions = LinkConditions {
            loss: 0.05,
            ..LinkConditions::new(100_000_000, Duration::ZERO)
        };
        let run = |seed| {
            let mut link = BottleneckLink::new(conditions, seed);
            let lost: Vec<bool> = (0..2_000)
                .map(|i| !link.send(start + Duration::from_millis(i), 100, i))
                .collect();
            (lost, link.stats().lost)
        };
        let (a, lost) = run(9);
        assert_eq!(a, run(9).0);
        assert_ne!(a, run(10).0);
        assert!((70..130).contains(&lost), "lost {lost}");
    }
}
