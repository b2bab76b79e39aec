//! Test support: a virtual clock, a seeded, lossy in-memory network, and seeded mutation of
//! messages ([`mutate`]).
//!
//! Nothing in Callisto's protocol cores reads the clock or opens a socket, so tests drive them
//! with [`SimClock`] and carry their datagrams over [`SimNetwork`], which drops, delays,
//! duplicates and reorders them — all decided by a seeded `SmallRng`, so a failing run replays
//! exactly. This module is public so integration tests (transactions, registration, dialogs)
//! share it; production code does not use it.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use callisto_signaling::sim::{NetworkConfig, SimClock, SimNetwork};
//! use callisto_signaling::transport::{Target, TransportKind};
//!
//! let mut clock = SimClock::new(Instant::now());
//! let mut net = SimNetwork::new(NetworkConfig::lossy(0.3), 42);
//! let a = Target::new(TransportKind::Udp, "127.0.0.1:5060".parse().unwrap());
//! let b = Target::new(TransportKind::Udp, "127.0.0.1:5070".parse().unwrap());
//! net.send(clock.now(), a, b, bytes::Bytes::from_static(b"hello"));
//! clock.advance(Duration::from_secs(1));
//! while let Some(datagram) = net.poll_deliver(clock.now()) {
//!     assert_eq!(datagram.to, b);
//! }
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::transport::Target;

/// A clock that moves only when told to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimClock {
    now: Instant,
}

impl SimClock {
    /// A clock that reads `start`.
    pub fn new(start: Instant) -> Self {
        SimClock { now: start }
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Moves the clock forward by `step`.
    pub fn advance(&mut self, step: Duration) {
        self.now += step;
    }

    /// Moves the clock to `when`, if that is in the future; never moves it back.
    pub fn advance_to(&mut self, when: Instant) {
        if when > self.now {
            self.now = when;
        }
    }
}

/// How the simulated network mistreats datagrams. Probabilities are in `0.0..=1.0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetworkConfig {
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Base one-way delay.
    pub delay: Duration,
    /// Extra delay, uniform in `0..=jitter`, per datagram.
    pub jitter: Duration,
    /// Probability that a datagram arrives twice (each copy with its own delay).
    pub duplicate: f64,
    /// Probability that a datagram is held back by `reorder_delay`, letting later ones overtake.
    pub reorder: f64,
    /// The hold-back for reordered datagrams.
    pub reorder_delay: Duration,
}

impl NetworkConfig {
    /// A perfect network: no loss, no delay.
    pub fn perfect() -> Self {
        NetworkConfig {
            loss: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
        }
    }

    /// A hostile network with the given loss, 20–70 ms delay, 5 % duplicates and 10 % of
    /// datagrams reordered by 150 ms.
    pub fn lossy(loss: f64) -> Self {
        NetworkConfig {
            loss,
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(50),
            duplicate: 0.05,
            reorder: 0.1,
            reorder_delay: Duration::from_millis(150),
        }
    }
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig::perfect()
    }
}

/// A datagram on its way, or delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// The sender.
    pub from: Target,
    /// The receiver.
    pub to: Target,
    /// The payload.
    pub bytes: Bytes,
}

/// What the network did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Datagrams handed to [`SimNetwork::send`].
    pub sent: u64,
    /// Datagrams lost.
    pub dropped: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Datagrams held back to be reordered.
    pub reordered: u64,
    /// Datagrams handed out by [`SimNetwork::poll_deliver`].
    pub delivered: u64,
}

/// An in-memory network between [`Target`]s, deterministic for a given seed.
#[derive(Debug)]
pub struct SimNetwork {
    config: NetworkConfig,
    rng: SmallRng,
    /// In flight, by (arrival time, sequence number): equal arrival times keep send order.
    in_flight: BTreeMap<(Instant, u64), Datagram>,
    sequence: u64,
    stats: NetworkStats,
}

impl SimNetwork {
    /// A network with the given behaviour, seeded.
    pub fn new(config: NetworkConfig, seed: u64) -> Self {
        SimNetwork {
            config,
            rng: SmallRng::seed_from_u64(seed),
            in_flight: BTreeMap::new(),
            sequence: 0,
            stats: NetworkStats::default(),
        }
    }

    /// The current behaviour.
    pub fn config(&self) -> NetworkConfig {
        self.config
    }

    /// Changes the behaviour for datagrams sent from now on.
    pub fn set_config(&mut self, config: NetworkConfig) {
        self.config = config;
    }

    /// Sends a datagram at `now`; it may be lost, delayed, duplicated or reordered.
    pub fn send(&mut self, now: Instant, from: Target, to: Target, bytes: Bytes) {
        self.stats.sent += 1;
        if self.chance(self.config.loss) {
            self.stats.dropped += 1;
            return;
        }
        let copies = if self.chance(self.config.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut delay = self.config.delay + self.jitter();
            if self.chance(self.config.reorder) {
                self.stats.reordered += 1;
                delay += self.config.reorder_delay;
            }
            self.sequence += 1;
            self.in_flight.insert(
                (now + delay, self.sequence),
                Datagram {
                    from,
                    to,
                    bytes: bytes.clone(),
                },
            );
        }
    }

    /// The next datagram that has arrived by `now`, earliest first.
    pub fn poll_deliver(&mut self, now: Instant) -> Option<Datagram> {
        let (&(arrival, _), _) = self.in_flight.first_key_value()?;
        if arrival > now {
            return None;
        }
        let (_, datagram) = self.in_flight.pop_first()?;
        self.stats.delivered += 1;
        Some(datagram)
    }

    /// When the next datagram arrives, if any is in flight.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.in_flight
            .first_key_value()
            .map(|(&(arrival, _), _)| arrival)
    }

    /// How many datagrams are in flight.
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

    fn jitter(&mut self) -> Duration {
        let max = u64::try_from(self.config.jitter.as_micros()).unwrap_or(u64::MAX);
        if max == 0 {
            Duration::ZERO
        } else {
            Duration::from_micros(self.rng.gen_range(0..=max))
        }
    }
}

/// The alphabet [`mutate`] is given for SIP messages: SIP's separators and a few of its
/// letters, a NUL and a 0xff.
pub const SIP_ALPHABET: &[u8] = b"\r\n \t:;,<>\"\\=@/0123456789abcdefvmlitSIP\xff\x00";

/// Edits `bytes` one to six times as a fuzzer would, each edit chosen by `rng`: a byte
/// replaced or inserted (from `alphabet`: a format's separators and a few of its letters),
/// the end cut off, a run removed, a run copied elsewhere, or two lines swapped (order
/// mutations reach the rules about where a line may come and how often).
pub fn mutate(rng: &mut impl Rng, bytes: &mut Vec<u8>, alphabet: &[u8]) {
    for _ in 0..rng.gen_range(1..7) {
        let len = bytes.len();
        match rng.gen_range(0..6) {
            0 if len > 0 => {
                let at = rng.gen_range(0..len);
                bytes[at] = alphabet[rng.gen_range(0..alphabet.len())];
            }
            1 if len > 0 => {
                let at = rng.gen_range(0..len);
                bytes.truncate(at);
            }
            2 => {
                let at = rng.gen_range(0..=len);
                bytes.insert(at, alphabet[rng.gen_range(0..alphabet.len())]);
            }
            3 if len > 1 => {
                let at = rng.gen_range(0..len);
                let end = (at + rng.gen_range(1..48)).min(len);
                bytes.drain(at..end);
            }
            4 if len > 1 => {
                let at = rng.gen_range(0..len);
                let end = (at + rng.gen_range(1..48)).min(len);
                let chunk = bytes[at..end].to_vec();
                let to = rng.gen_range(0..=bytes.len());
                bytes.splice(to..to, chunk);
            }
            _ if len > 1 => {
                // On the bytes, so invalid UTF-8 inserted before stays invalid.
                let mut lines: Vec<Vec<u8>> =
                    bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
                let (a, b) = (rng.gen_range(0..lines.len()), rng.gen_range(0..lines.len()));
                lines.swap(a, b);
                *bytes = lines.join(&b'\n');
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::TransportKind;

    fn target(port: u16) -> Target {
        Target::new(
            TransportKind::Udp,
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        )
    }

    fn run(seed: u64, config: NetworkConfig) -> (Vec<Bytes>, NetworkStats) {
        let start = Instant::now();
        let mut net = SimNetwork::new(config, seed);
        for i in 0..1000u32 {
            let at = start + Duration::from_millis(u64::from(i));
            net.send(
                at,
                target(1),
                target(2),
                Bytes::from(i.to_be_bytes().to_vec()),
            );
        }
        let mut delivered = Vec::new();
        let end = start + Duration::from_secs(10);
        while let Some(datagram) = net.poll_deliver(end) {
            delivered.push(datagram.bytes);
        }
        (delivered, net.stats())
    }

    #[test]
    fn a_perfect_network_delivers_everything_in_order() {
        let (delivered, stats) = run(1, NetworkConfig::perfect());
        assert_eq!(delivered.len(), 1000);
        assert!(delivered.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(stats.delivered, 1000);
    }

    #[test]
    fn a_lossy_network_drops_duplicates_and_reorders_deterministically() {
        let (first, stats) = run(9, NetworkConfig::lossy(0.3));
        let (second, _) = run(9, NetworkConfig::lossy(0.3));
        assert_eq!(first, second);
        assert!(
            (200..400).contains(&stats.dropped),
            "dropped {}",
            stats.dropped
        );
        assert!(stats.duplicated > 0);
        assert!(
            first.windows(2).any(|w| w[0] > w[1]),
            "nothing was reordered"
        );
        let (other, _) = run(10, NetworkConfig::lossy(0.3));
        assert_ne!(first, other);
    }

    #[test]
    fn nothing_arrives_before_its_time() {
        let start = Instant::now();
        let mut net = SimNetwork::new(
            NetworkConfig {
                delay: Duration::from_millis(30),
                ..NetworkConfig::perfect()
            },
            3,
        );
        net.send(start, target(1), target(2), Bytes::from_static(b"x"));
        assert_eq!(net.next_delivery(), Some(start + Duration::from_millis(30)));
        assert_eq!(net.poll_deliver(start + Duration::from_millis(29)), None);
        let mut clock = SimClock::new(start);
        clock.advance_to(start + Duration::from_millis(30));
        clock.advance_to(start);
        assert_eq!(clock.now(), start + Duration::from_millis(30));
        let datagram = net.poll_deliver(clock.now());
        assert_eq!(datagram.map(|d| d.to), Some(target(2)));
        assert_eq!(net.in_flight(), 0);
    }
}
