//! Retransmission on request (RFC 4585 generic NACK): the receiver's [`NackGenerator`] decides
//! which missing packets to ask for and when, the sender's [`RetransmissionBuffer`] keeps what
//! it sent and answers.
//!
//! # Contract
//! Both are sans-IO and take `now`.
//!
//! Receiver: feed every RTP sequence number of the stream to [`NackGenerator::on_packet`]
//! (duplicates and retransmissions included); call [`NackGenerator::poll_nack`] at
//! [`NackGenerator::poll_timeout`] (or whenever convenient) and send what it returns with
//! [`build_nack`]; when [`NackGenerator::take_keyframe_request`] says so, ask for a key frame
//! (see [`keyframe`](super::keyframe)) — the generator gave up on a packet or the gap was too
//! large to repair. A gap is reported only after a reorder window (10 ms by default), then
//! again every 1.25 RTT + reorder window (the retransmission needs an RTT to come back, and
//! some jitter) up to `max_retries` times, and forgotten after `max_age`.
//!
//! Sender: hand every RTP packet sent to [`RetransmissionBuffer::on_packet_sent`]; feed each
//! received NACK's sequence numbers ([`nacked_sequences`], or
//! [`RtcpEvent::Nack`](super::RtcpEvent::Nack)) to [`RetransmissionBuffer::on_nack`], which
//! returns the packets to send again. A packet is resent at most once per RTT, never once it is
//! older than `max_age` or evicted, and the bytes resent are capped by a token bucket of
//! `max_resend_bps` (one second of burst). The buffer stores the plain RTP packet; the session
//! protects (SRTP) or wraps (RFC 4588 RTX) what it resends.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc_rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};

/// Most sequence numbers read out of one NACK packet; the rest of a longer list is ignored.
pub const MAX_NACKED_PER_PACKET: usize = 1_024;
/// Most sequence numbers one [`NackGenerator::poll_nack`] returns.
const MAX_NACK_BATCH: usize = 256;

/// Reads the sequence numbers a NACK asks for, in order, without duplicates, at most
/// [`MAX_NACKED_PER_PACKET`] of them.
pub fn nacked_sequences(nack: &TransportLayerNack) -> Vec<u16> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for pair in &nack.nacks {
        for sequence in *pair {
            if out.len() == MAX_NACKED_PER_PACKET {
                return out;
            }
            if seen.insert(sequence) {
                out.push(sequence);
            }
        }
    }
    out
}

/// Packs sequence numbers (in the order the generator returns them) into a generic NACK from
/// `sender_ssrc` about `media_ssrc`: each pair names one number and the 16 after it.
pub fn build_nack(sender_ssrc: u32, media_ssrc: u32, sequences: &[u16]) -> TransportLayerNack {
    let mut nacks: Vec<NackPair> = Vec::new();
    for &sequence in sequences {
        if let Some(last) = nacks.last_mut() {
            let offset = sequence.wrapping_sub(last.packet_id);
            if (1..=16).contains(&offset) {
                last.lost_packets |= 1 << (offset - 1);
                continue;
            }
        }
        nacks.push(NackPair::new(sequence));
    }
    TransportLayerNack {
        sender_ssrc,
        media_ssrc,
        nacks,
    }
}

/// Settings of a [`NackGenerator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NackConfig {
    /// How long a gap may be reordering before it is reported.
    pub reorder_window: Duration,
    /// How many times a missing packet is asked for.
    pub max_retries: u32,
    /// How long after it went missing a packet is still worth asking for.
    pub max_age: Duration,
    /// More missing packets than this at once: give up on all and ask for a key frame.
    pub max_missing: usize,
}

impl Default for NackConfig {
    /// 10 ms reorder window, 10 tries, 1 s, 500 packets.
    fn default() -> Self {
        NackConfig {
            reorder_window: Duration::from_millis(10),
            max_retries: 10,
            max_age: Duration::from_secs(1),
            max_missing: 500,
        }
    }
}

/// What an arriving packet was to the [`NackGenerator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NackArrival {
    /// The next packet or one further ahead.
    New,
    /// A packet that was missing and had been asked for.
    Recovered,
    /// A packet that was missing, arriving late before it was asked for.
    Reordered,
    /// A packet already received, or one too old to be tracked.
    Duplicate,
}

/// Counters of a [`NackGenerator`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NackStats {
    /// Sequence numbers that went missing.
    pub missing: u64,
    /// Sequence numbers put in NACKs (retries counted each time).
    pub requested: u64,
    /// Missing packets that arrived after being asked for.
    pub recovered: u64,
    /// Missing packets that arrived before being asked for.
    pub reordered: u64,
    /// Missing packets given up on (too old, too many tries, or too many missing at once).
    pub given_up: u64,
}

#[derive(Debug, Clone, Copy)]
struct Missing {
    since: Instant,
    retries: u32,
    next_request: Instant,
}

/// Decides which missing packets to ask for. See the [module documentation](self).
#[derive(Debug)]
pub struct NackGenerator {
    config: NackConfig,
    rtt: Duration,
    highest: Option<u64>,
    missing: BTreeMap<u64, Missing>,
    keyframe_needed: bool,
    stats: NackStats,
}

impl NackGenerator {
    /// A generator with `config`, assuming a 100 ms RTT until told otherwise.
    pub fn new(config: NackConfig) -> Self {
        NackGenerator {
            config,
            rtt: Duration::from_millis(100),
            highest: None,
            missing: BTreeMap::new(),
            keyframe_needed: false,
            stats: NackStats::default(),
        }
    }

    /// Sets the round-trip time that spaces the retries.
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt;
    }

    /// Takes the sequence number of a packet that arrived at `now`.
    pub fn on_packet(&mut self, sequence: u16, now: Instant) -> NackArrival {
        let Some(highest) = self.highest else {
            self.highest = Some((1 << 32) + u64::from(sequence));
            return NackArrival::New;
        };
        let diff = i64::from(sequence.wrapping_sub(highest as u16) as i16);
        let unwrapped = highest.saturating_add_signed(diff);
        if unwrapped <= highest {
            return match self.missing.remove(&unwrapped) {
                Some(m) if m.retries > 0 => {
                    self.stats.recovered += 1;
                    NackArrival::Recovered
                }
                Some(_) => {
                    self.stats.reordered += 1;
                    NackArrival::Reordered
                }
                None => NackArrival::Duplicate,
            };
        }
        let gap = unwrapped - highest - 1;
        self.highest = Some(unwrapped);
        if gap as usize + self.missing.len() > self.config.max_missing {
            self.give_up_all(gap);
            return NackArrival::New;
        }
        let next_request = now + self.config.reorder_window;
        for lost in highest + 1..unwrapped {
            self.missing.insert(
                lost,
                Missing {
                    since: now,
                    retries: 0,
                    next_request,
                },
            );
        }
        self.stats.missing += gap;
        NackArrival::New
    }

    /// The sequence numbers to NACK at `now`, oldest first (at most 256), if any are due.
    pub fn poll_nack(&mut self, now: Instant) -> Option<Vec<u16>> {
        let mut out = Vec::new();
        let mut expired = Vec::new();
        // A retransmission arrives about one RTT after the request, later with jitter: wait a
        // quarter more and a reorder window before asking again.
        let spacing = self.rtt + self.rtt / 4 + self.config.reorder_window;
        for (&sequence, entry) in self.missing.iter_mut() {
            if entry.next_request > now {
                continue;
            }
            if entry.retries >= self.config.max_retries
                || now.saturating_duration_since(entry.since) > self.config.max_age
            {
                expired.push(sequence);
                continue;
            }
            if out.len() == MAX_NACK_BATCH {
                continue;
            }
            entry.retries += 1;
            entry.next_request = now + spacing;
            out.push(sequence as u16);
        }
        for sequence in &expired {
            self.missing.remove(sequence);
        }
        if !expired.is_empty() {
            self.stats.given_up += expired.len() as u64;
            self.keyframe_needed = true;
        }
        self.stats.requested += out.len() as u64;
        (!out.is_empty()).then_some(out)
    }

    /// When [`poll_nack`](Self::poll_nack) next has work (a request or a give-up).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.missing.values().map(|m| m.next_request).min()
    }

    /// Whether a key frame should be asked for, because a packet was given up on since the
    /// last call. Clears the flag.
    pub fn take_keyframe_request(&mut self) -> bool {
        std::mem::take(&mut self.keyframe_needed)
    }

    /// How many packets are missing now.
    pub fn missing(&self) -> usize {
        self.missing.len()
    }

    /// What the generator did so far.
    pub fn stats(&self) -> NackStats {
        self.stats
    }

    fn give_up_all(&mut self, gap: u64) {
        self.stats.missing += gap;
        self.stats.given_up += gap + self.missing.len() as u64;
        self.missing.clear();
        self.keyframe_needed = true;
    }
}

/// Settings of a [`RetransmissionBuffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetransmissionConfig {
    /// Packets older than this are neither kept nor resent.
    pub max_age: Duration,
    /// Most packets kept.
    pub max_packets: usize,
    /// Most bits per second spent on resending (with one second of burst).
    pub max_resend_bps: u64,
}

impl Default for RetransmissionConfig {
    /// 1.5 s, 2048 packets, 1 Mbps.
    fn default() -> Self {
        RetransmissionConfig {
            max_age: Duration::from_millis(1_500),
            max_packets: 2_048,
            max_resend_bps: 1_000_000,
        }
    }
}

/// Counters of a [`RetransmissionBuffer`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetransmissionStats {
    /// Sequence numbers asked for.
    pub requested: u64,
    /// Packets resent.
    pub resent: u64,
    /// Bytes resent.
    pub resent_bytes: u64,
    /// Asked for but not kept (never sent, evicted, too old).
    pub unknown: u64,
    /// Asked for again within an RTT of the last resend.
    pub too_soon: u64,
    /// Refused because the resend budget was spent.
    pub over_budget: u64,
}

#[derive(Debug, Clone)]
struct Stored {
    sent: Instant,
    last_resent: Option<Instant>,
    packet: Bytes,
}

/// What the sender keeps for retransmission. See the [module documentation](self).
#[derive(Debug)]
pub struct RetransmissionBuffer {
    config: RetransmissionConfig,
    rtt: Duration,
    /// Unwrapped sequence number of `packets[0]`.
    first: u64,
    packets: VecDeque<Option<Stored>>,
    tokens: f64,
    last_refill: Option<Instant>,
    stats: RetransmissionStats,
}

impl RetransmissionBuffer {
    /// A buffer with `config`, assuming a 100 ms RTT until told otherwise.
    pub fn new(config: RetransmissionConfig) -> Self {
        RetransmissionBuffer {
            config,
            rtt: Duration::from_millis(100),
            first: 0,
            packets: VecDeque::new(),
            tokens: config.max_resend_bps as f64 / 8.0,
            last_refill: None,
            stats: RetransmissionStats::default(),
        }
    }

    /// Sets the round-trip time that limits how often one packet is resent.
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt;
    }

    /// Keeps `packet`, the RTP packet with `sequence`, sent at `now`. Sequence numbers that go
    /// backwards are not kept; a jump of more than `max_packets` starts the buffer afresh.
    pub fn on_packet_sent(&mut self, sequence: u16, packet: Bytes, now: Instant) {
        let stored = Some(Stored {
            sent: now,
            last_resent: None,
            packet,
        });
        let Some(unwrapped) = self.unwrap(sequence) else {
            self.first = (1 << 32) + u64::from(sequence);
            self.packets.push_back(stored);
            return;
        };
        let next = self.first + self.packets.len() as u64;
        if unwrapped < next {
            return;
        }
        if unwrapped - next >= self.config.max_packets as u64 {
            self.packets.clear();
            self.first = unwrapped;
        } else {
            for _ in next..unwrapped {
                self.packets.push_back(None);
            }
        }
        self.packets.push_back(stored);
        while self.packets.len() > self.config.max_packets.max(1)
            || self.packets.front().is_some_and(|p| {
                p.as_ref()
                    .is_none_or(|p| now.saturating_duration_since(p.sent) > self.config.max_age)
            })
        {
            self.packets.pop_front();
            self.first += 1;
        }
    }

    /// The packets to resend for a NACK's sequence numbers received at `now` (at most
    /// [`MAX_NACKED_PER_PACKET`] numbers are looked at), in the order asked.
    pub fn on_nack(&mut self, sequences: &[u16], now: Instant) -> Vec<Bytes> {
        self.refill(now);
        let mut out = Vec::new();
        for &sequence in sequences.iter().take(MAX_NACKED_PER_PACKET) {
            self.stats.requested += 1;
            let rtt = self.rtt;
            let max_age = self.config.max_age;
            let stored = self
                .index_of(sequence)
                .and_then(|i| self.packets.get_mut(i))
                .and_then(Option::as_mut);
            let Some(stored) = stored else {
                self.stats.unknown += 1;
                continue;
            };
            if now.saturating_duration_since(stored.sent) > max_age {
                self.stats.unknown += 1;
                continue;
            }
            if stored
                .last_resent
                .is_some_and(|l| now.saturating_duration_since(l) < rtt)
            {
                self.stats.too_soon += 1;
                continue;
            }
            let size = stored.packet.len() as f64;
            if size > self.tokens {
                self.stats.over_budget += 1;
                continue;
            }
            self.tokens -= size;
            stored.last_resent = Some(now);
            let packet = stored.packet.clone();
            self.stats.resent += 1;
            self.stats.resent_bytes += packet.len() as u64;
            out.push(packet);
        }
        out
    }

    /// How many packets are kept.
    pub fn len(&self) -> usize {
        self.packets.iter().filter(|p| p.is_some()).count()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.packets.iter().all(Option::is_none)
    }

    /// What the buffer did so far.
    pub fn stats(&self) -> RetransmissionStats {
        self.stats
    }

    fn unwrap(&self, sequence: u16) -> Option<u64> {
        let last = (self.first + self.packets.len() as u64).checked_sub(1)?;
        if self.packets.is_empty() {
            return None;
        }
        let diff = i64::from(sequence.wrapping_sub(last as u16) as i16);
        last.checked_add_signed(diff)
    }

    fn index_of(&self, sequence: u16) -> Option<usize> {
        let unwrapped = self.unwrap(sequence)?;
        usize::try_from(unwrapped.checked_sub(self.first)?).ok()
    }

    fn refill(&mut self, now: Instant) {
        let rate = self.config.max_resend_bps as f64 / 8.0;
        if let Some(last) = self.last_refill {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + rate * elapsed).min(rate);
        }
        self.last_refill = Some(now);
    }
}

#[cfg(test)]
#[path = "nack_tests.rs"]
mod tests;
