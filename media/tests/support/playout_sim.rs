//! A virtual-time call leg: a sender, a simulated network, a jitter buffer and a playout
//! clock that pops it every time the previous frame has played. Every pop is logged with the
//! buffer's delay figures so the tests can measure continuity and delay over time.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use callisto_media::jitter_buffer::{
    BufferedPacket, JitterBuffer, JitterBufferConfig, JitterBufferStats, Playout,
};
use callisto_media::netsim::{
    frame_index, NetworkConditions, NetworkStats, SimAudioSender, SimNetwork,
};

/// What one pop returned, reduced to what the tests check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A packet carrying the sender's frame number.
    Packet(u64),
    /// Concealment; `fec` when the next packet came along.
    Conceal {
        fec: bool,
    },
    Silence,
    Wait,
}

/// One pop.
#[derive(Debug, Clone, Copy)]
pub struct Pop {
    /// Time since the start of the run.
    pub at: Duration,
    pub kind: Kind,
    /// The buffer's current delay, measured at this pop.
    pub delay: Duration,
    pub target: Duration,
    /// Samples the pop stood for.
    pub samples: u32,
}

pub struct Simulation {
    pub buffer: JitterBuffer,
    pub sender: SimAudioSender,
    pub network: SimNetwork<BufferedPacket>,
    pub start: Instant,
    next_pop: Instant,
    clock_rate: u32,
    /// Packets the sender skips instead of handing them to the network.
    blackout: u64,
    /// Every this many frames one is marked quiet (0: none).
    pub quiet_every: u64,
    /// Whether packets carry their duration, as from a receiver that parses the payload.
    pub duration_hints: bool,
    /// Frame numbers sent, and those that reached the buffer at least once.
    pub sent: u64,
    pub arrived: HashSet<u64>,
    pub log: Vec<Pop>,
}

impl Simulation {
    /// A 48 kHz, 20 ms leg over `conditions`, seeded; the playout clock starts 10 ms after
    /// the sender so pops and arrivals interleave.
    pub fn new(conditions: NetworkConditions, seed: u64) -> Self {
        Self::with(
            JitterBufferConfig::new(48_000),
            Duration::from_millis(20),
            0.0,
            conditions,
            seed,
        )
    }

    pub fn with(
        config: JitterBufferConfig,
        frame: Duration,
        drift: f64,
        conditions: NetworkConditions,
        seed: u64,
    ) -> Self {
        let start = Instant::now();
        Simulation {
            buffer: JitterBuffer::new(config),
            sender: SimAudioSender::new(config.clock_rate, frame, start).with_drift(drift),
            network: SimNetwork::new(conditions, seed),
            start,
            next_pop: start + Duration::from_millis(10),
            clock_rate: config.clock_rate,
            blackout: 0,
            quiet_every: 0,
            duration_hints: false,
            sent: 0,
            arrived: HashSet::new(),
            log: Vec::new(),
        }
    }

    /// The sender's next `packets` packets never reach the network.
    pub fn black_out(&mut self, packets: u64) {
        self.blackout = packets;
    }

    /// Runs until `until` after the start.
    pub fn run_until(&mut self, until: Duration) {
        let end = self.start + until;
        while self.next_pop < end {
            let pop_at = self.next_pop;
            while self.sender.next_send() <= pop_at {
                let sent = self.sender.next_packet();
                self.sent += 1;
                if self.blackout > 0 {
                    self.blackout -= 1;
                    continue;
                }
                let quiet = self.quiet_every > 0 && sent.index.is_multiple_of(self.quiet_every);
                let mut packet = sent.packet.with_quiet(quiet);
                if self.duration_hints {
                    packet = packet.with_samples(sent.samples);
                }
                self.network.send(sent.at, packet);
            }
            while let Some(delivery) = self.network.poll_deliver(pop_at) {
                if let Some(index) = frame_index(&delivery.item) {
                    self.arrived.insert(index);
                }
                self.buffer.push(delivery.item, delivery.arrival);
            }
            let playout = self.buffer.pop(pop_at);
            let kind = match &playout {
                Playout::Packet { packet, .. } => {
                    Kind::Packet(frame_index(packet).unwrap_or(u64::MAX))
                }
                Playout::Conceal { next, .. } => Kind::Conceal {
                    fec: next.is_some(),
                },
                Playout::Silence { .. } => Kind::Silence,
                Playout::Wait { .. } => Kind::Wait,
            };
            self.log.push(Pop {
                at: pop_at - self.start,
                kind,
                delay: self.buffer.current_delay(),
                target: self.buffer.target_delay(),
                samples: playout.samples(),
            });
            let micros = u64::from(playout.samples()) * 1_000_000 / u64::from(self.clock_rate);
            self.next_pop = pop_at + Duration::from_micros(micros);
        }
    }

    /// Whether every pop from the second packet played on stood for `samples`.
    pub fn durations_from_second_packet(&self, samples: u32) -> bool {
        let mut packets = 0;
        self.log
            .iter()
            .skip_while(|pop| {
                if matches!(pop.kind, Kind::Packet(_)) {
                    packets += 1;
                }
                packets < 2
            })
            .all(|pop| pop.samples == samples)
    }

    pub fn stats(&self) -> JitterBufferStats {
        self.buffer.stats()
    }

    pub fn network_stats(&self) -> NetworkStats {
        self.network.stats()
    }

    /// Frame numbers played, in playout order.
    pub fn played(&self) -> Vec<u64> {
        self.log
            .iter()
            .filter_map(|pop| match pop.kind {
                Kind::Packet(index) => Some(index),
                _ => None,
            })
            .collect()
    }

    /// How many of the frame numbers below `settled` were played.
    pub fn played_below(&self, settled: u64) -> u64 {
        self.played()
            .iter()
            .filter(|&&index| index < settled)
            .count() as u64
    }

    /// Frame numbers sent early enough to have played by the end of the run (a second
    /// before it), and how many of them never arrived.
    pub fn settled(&self) -> (u64, u64) {
        let end = self.log.last().map_or(Duration::ZERO, |pop| pop.at);
        let frame = Duration::from_micros(
            u64::from(self.sender.frame_samples()) * 1_000_000 / u64::from(self.clock_rate),
        );
        let settled = (end.saturating_sub(Duration::from_secs(1)).as_micros()
            / frame.as_micros().max(1)) as u64;
        let settled = settled.min(self.sent);
        let missing = (0..settled).filter(|i| !self.arrived.contains(i)).count() as u64;
        (settled, missing)
    }

    /// Pops in `[from, to)` after the start.
    pub fn window(&self, from: Duration, to: Duration) -> impl Iterator<Item = &Pop> {
        self.log
            .iter()
            .filter(move |pop| pop.at >= from && pop.at < to)
    }

    /// Mean delay over `[from, to)`, in milliseconds.
    pub fn mean_delay_ms(&self, from: Duration, to: Duration) -> f64 {
        let (sum, count) = self
            .window(from, to)
            .fold((0.0, 0u32), |(sum, count), pop| {
                (sum + pop.delay.as_secs_f64() * 1000.0, count + 1)
            });
        if count == 0 {
            0.0
        } else {
            sum / f64::from(count)
        }
    }

    /// Largest delay over `[from, to)`, in milliseconds.
    pub fn max_delay_ms(&self, from: Duration, to: Duration) -> f64 {
        self.window(from, to)
            .map(|pop| pop.delay.as_secs_f64() * 1000.0)
            .fold(0.0, f64::max)
    }

    /// Longest run of consecutive concealment frames.
    pub fn longest_concealment(&self) -> usize {
        longest_run(
            self.log
                .iter()
                .map(|pop| matches!(pop.kind, Kind::Conceal { .. })),
        )
    }

    /// Longest run of consecutive frame numbers that never arrived.
    pub fn longest_loss(&self) -> usize {
        let mut longest = 0;
        let mut run = 0;
        let mut previous = None;
        for &index in &self.never_arrived_sorted() {
            run = if previous == Some(index.wrapping_sub(1)) {
                run + 1
            } else {
                1
            };
            longest = longest.max(run);
            previous = Some(index);
        }
        longest
    }

    fn never_arrived_sorted(&self) -> Vec<u64> {
        (0..self.sent)
            .filter(|i| !self.arrived.contains(i))
            .collect()
    }
}

/// Length of the longest run of `true`.
pub fn longest_run(flags: impl Iterator<Item = bool>) -> usize {
    let mut longest = 0;
    let mut run = 0;
    for flag in flags {
        run = if flag { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

/// Whether `indices` only ever increase.
pub fn strictly_increasing(indices: &[u64]) -> bool {
    indices.windows(2).all(|pair| pair[0] < pair[1])
}
