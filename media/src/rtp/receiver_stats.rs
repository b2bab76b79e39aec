//! Reception statistics for one incoming RTP stream (RFC 3550 §6.4.1, Appendix A.1, A.3, A.8),
//! and the choice of which SSRC that stream is.
//!
//! # Sequence validation (A.1)
//! A new source is on probation until `min_sequential` packets arrive in sequence (2, the RFC's
//! value, by default). Afterwards a packet within `max_dropout` (3000) ahead of the highest
//! sequence number advances it, counting a cycle when the 16-bit number wraps; one more than
//! `max_misorder` (100) behind is a jump: it is dropped ([`RtpVerdict::BadSequence`]) unless the
//! next packet follows it, in which case the sender is taken to have restarted and the statistics
//! start again from there. Anything else (duplicates, late packets) counts as received, as A.1
//! does, so the cumulative loss can go negative when duplicates arrive.
//!
//! # Loss (A.3) and jitter (A.8)
//! Expected packets are the extended highest sequence number minus the first plus one; lost is
//! expected minus received. The fraction lost covers the interval since the previous
//! [`ReceiverStats::report`]. The interarrival jitter is the RFC's running estimate
//! `J += (|D| - J) / 16` in timestamp units, with arrival times measured from `now` at the stream's
//! clock rate. It is updated only by packets whose RTP timestamp differs from the previous
//! sample's: packets that share a timestamp (the packets of one video frame, the updates of one
//! RFC 4733 event) were not spaced by the sender, and their arrival spread is not network jitter.
//!
//! # Which SSRC (latching)
//! The first SSRC heard is latched. Packets from any other SSRC are dropped and counted
//! ([`RtpVerdict::ForeignSsrc`]), except that another SSRC takes over when either
//! - the latched source has been silent for `ssrc_silence` (2 s by default) — a peer that restarted
//!   its stream after hold or a transfer — and the packet from the new SSRC arrives; or
//! - the new SSRC delivers `ssrc_takeover_packets` (5 by default) packets with consecutive
//!   sequence numbers and not one packet of the latched source arrives among them — a PBX that
//!   switched the stream it relays without a pause. Two streams sending at once never take turns.
//!
//! A takeover starts fresh statistics for the new source (reported as [`RtpVerdict::NewSource`])
//! and counts in [`ReceiverCounters::ssrc_changes`].

use std::time::{Duration, Instant};

use super::packet::RtpPacket;
use super::sender::ticks;

const RTP_SEQ_MOD: u32 = 1 << 16;

/// Tuning of [`ReceiverStats`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReceiverStatsConfig {
    /// The RTP clock rate of the stream's payload (48 000 for Opus, 8 000 for G.711).
    pub clock_rate: u32,
    /// Packets in sequence before a new source counts (A.1 `MIN_SEQUENTIAL`); at least 1.
    pub min_sequential: u16,
    /// The largest forward jump still taken as loss (A.1 `MAX_DROPOUT`).
    pub max_dropout: u16,
    /// The furthest a packet may arrive behind and still count as late (A.1 `MAX_MISORDER`).
    pub max_misorder: u16,
    /// Silence of the latched SSRC after which another SSRC takes over at its first packet.
    pub ssrc_silence: Duration,
    /// Consecutive packets after which another SSRC takes over while the latched one is quiet.
    pub ssrc_takeover_packets: u32,
}

impl ReceiverStatsConfig {
    /// The RFC 3550 defaults and Callisto's latching rule for a stream at `clock_rate`.
    pub fn new(clock_rate: u32) -> Self {
        ReceiverStatsConfig {
            clock_rate,
            min_sequential: 2,
            max_dropout: 3000,
            max_misorder: 100,
            ssrc_silence: Duration::from_secs(2),
            ssrc_takeover_packets: 5,
        }
    }
}

/// What became of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtpVerdict {
    /// The first packet of a newly latched source (the very first, or one that took over from
    /// `previous`). Receivers reset their jitter buffer and decoder; the packet is playable.
    NewSource {
        /// The SSRC that was latched before, if any.
        previous: Option<u32>,
    },
    /// From the latched source, still on probation (A.1); playable, not yet in the statistics.
    Probation,
    /// Counted in the statistics (in order, late or duplicate); playable.
    Accepted {
        /// The packet's sequence number extended with the cycle count.
        extended_sequence: u32,
    },
    /// A jump beyond `max_dropout` awaiting confirmation by the next packet; dropped.
    BadSequence,
    /// From an SSRC other than the latched one; dropped.
    ForeignSsrc {
        /// The packet's SSRC.
        ssrc: u32,
    },
}

impl RtpVerdict {
    /// Whether the packet should go on to the jitter buffer.
    pub fn is_playable(&self) -> bool {
        matches!(
            self,
            RtpVerdict::NewSource { .. } | RtpVerdict::Probation | RtpVerdict::Accepted { .. }
        )
    }
}

/// Cumulative counters of a [`ReceiverStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiverCounters {
    /// Packets handed in.
    pub packets: u64,
    /// Payload octets of the playable ones.
    pub octets: u64,
    /// Packets dropped because they came from a foreign SSRC.
    pub foreign_ssrc: u64,
    /// Packets dropped as unconfirmed sequence jumps.
    pub bad_sequence: u64,
    /// Packets that arrived during probation.
    pub probation: u64,
    /// Times another SSRC took over.
    pub ssrc_changes: u64,
}

/// One reception report block's worth of statistics (RFC 3550 §6.4.1), without LSR/DLSR, which
/// belong to the RTCP session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceptionStats {
    /// The source reported on.
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost, clamped to the 24-bit signed field.
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub extended_highest_sequence: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
}

/// Sequence state of one source (A.1 `source`).
#[derive(Debug, Clone)]
struct Source {
    ssrc: u32,
    max_seq: u16,
    cycles: u64,
    base_seq: u32,
    bad_seq: u32,
    probation: u16,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Relative transit time of the latest jitter sample, and that packet's RTP timestamp.
    transit: Option<(u32, u32)>,
    jitter: f64,
    epoch: Instant,
    last_heard: Instant,
}

/// A foreign SSRC building up its claim to take over.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    ssrc: u32,
    last_seq: u16,
    run: u32,
}

/// Reception statistics and SSRC latching for one incoming RTP stream. Sans-IO: feed each packet
/// with its arrival time.
#[derive(Debug, Clone)]
pub struct ReceiverStats {
    config: ReceiverStatsConfig,
    source: Option<Source>,
    candidate: Option<Candidate>,
    counters: ReceiverCounters,
}

impl ReceiverStats {
    /// Statistics for a stream with `config`.
    pub fn new(config: ReceiverStatsConfig) -> Self {
        ReceiverStats {
            config: ReceiverStatsConfig {
                min_sequential: config.min_sequential.max(1),
                ssrc_takeover_packets: config.ssrc_takeover_packets.max(1),
                ..config
            },
            source: None,
            candidate: None,
            counters: ReceiverCounters::default(),
        }
    }

    /// Records a parsed packet that arrived at `now` and says what to do with it.
    pub fn on_packet(&mut self, now: Instant, packet: &RtpPacket) -> RtpVerdict {
        let h = &packet.header;
        self.on_header(
            now,
            h.ssrc,
            h.sequence_number,
            h.timestamp,
            packet.payload.len(),
        )
    }

    /// As [`ReceiverStats::on_packet`], from the header fields.
    pub fn on_header(
        &mut self,
        now: Instant,
        ssrc: u32,
        sequence: u16,
        timestamp: u32,
        payload_len: usize,
    ) -> RtpVerdict {
        self.counters.packets += 1;
        let latched = self.source.as_ref().map(|s| (s.ssrc, s.last_heard));
        let previous = match latched {
            None => None,
            Some((current, _)) if current == ssrc => {
                self.candidate = None;
                let verdict = self.update_current(now, sequence, timestamp);
                self.count(verdict, payload_len);
                return verdict;
            }
            Some((current, last_heard)) => {
                if !self.takes_over(now, last_heard, ssrc, sequence) {
                    self.counters.foreign_ssrc += 1;
                    return RtpVerdict::ForeignSsrc { ssrc };
                }
                self.counters.ssrc_changes += 1;
                Some(current)
            }
        };
        self.candidate = None;
        self.source = Some(Source::new(ssrc, sequence, now, self.config.min_sequential));
        self.update_current(now, sequence, timestamp);
        let verdict = RtpVerdict::NewSource { previous };
        self.count(verdict, payload_len);
        verdict
    }

    fn takes_over(&mut self, now: Instant, last_heard: Instant, ssrc: u32, seq: u16) -> bool {
        if now.saturating_duration_since(last_heard) >= self.config.ssrc_silence {
            return true;
        }
        let run = match self.candidate {
            Some(c) if c.ssrc == ssrc && seq == c.last_seq.wrapping_add(1) => c.run + 1,
            _ => 1,
        };
        self.candidate = Some(Candidate {
            ssrc,
            last_seq: seq,
            run,
        });
        run >= self.config.ssrc_takeover_packets
    }

    fn count(&mut self, verdict: RtpVerdict, payload_len: usize) {
        match verdict {
            RtpVerdict::Probation => self.counters.probation += 1,
            RtpVerdict::BadSequence => self.counters.bad_sequence += 1,
            _ => {}
        }
        if verdict.is_playable() {
            self.counters.octets += payload_len as u64;
        }
    }

    fn update_current(&mut self, now: Instant, seq: u16, timestamp: u32) -> RtpVerdict {
        let config = self.config;
        let Some(source) = self.source.as_mut() else {
            return RtpVerdict::BadSequence;
        };
        source.last_heard = now;
        let verdict = source.update_seq(seq, &config);
        if verdict != RtpVerdict::BadSequence {
            source.update_jitter(now, timestamp, config.clock_rate);
        }
        verdict
    }

    /// The latched SSRC.
    pub fn ssrc(&self) -> Option<u32> {
        self.source.as_ref().map(|s| s.ssrc)
    }

    /// Cumulative counters.
    pub fn counters(&self) -> ReceiverCounters {
        self.counters
    }

    /// Whether the latched source has passed probation.
    pub fn is_valid(&self) -> bool {
        self.source.as_ref().is_some_and(|s| s.probation == 0)
    }

    /// The extended highest sequence number received (A.3 `extended_max`).
    pub fn extended_highest_sequence(&self) -> Option<u32> {
        self.valid_source().map(|s| s.extended_max() as u32)
    }

    /// Packets expected since the source became valid.
    pub fn expected(&self) -> u64 {
        self.valid_source().map_or(0, Source::expected)
    }

    /// Packets counted as received since the source became valid (duplicates included, as A.1).
    pub fn received(&self) -> u64 {
        self.valid_source().map_or(0, |s| s.received)
    }

    /// Cumulative packets lost (expected − received); negative when duplicates outnumber losses.
    pub fn lost(&self) -> i64 {
        self.valid_source()
            .map_or(0, |s| s.expected() as i64 - s.received as i64)
    }

    /// Interarrival jitter in timestamp units.
    pub fn jitter(&self) -> f64 {
        self.source.as_ref().map_or(0.0, |s| s.jitter)
    }

    /// Interarrival jitter in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        if self.config.clock_rate == 0 {
            return 0.0;
        }
        self.jitter() * 1000.0 / f64::from(self.config.clock_rate)
    }

    /// The statistics for a reception report block, or `None` when the source is not valid or
    /// nothing arrived since the previous report (RFC 3550 §6.4: report on sources heard since the
    /// last report). Starts a new interval for the fraction lost (A.3).
    pub fn report(&mut self) -> Option<ReceptionStats> {
        let source = self.source.as_mut().filter(|s| s.probation == 0)?;
        let expected = source.expected();
        let expected_interval = expected.saturating_sub(source.expected_prior);
        let received_interval = source.received.saturating_sub(source.received_prior);
        if expected_interval == 0 && received_interval == 0 {
            return None;
        }
        source.expected_prior = expected;
        source.received_prior = source.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval as u64) * 256 / expected_interval).min(255) as u8
        };
        let lost = expected as i64 - source.received as i64;
        Some(ReceptionStats {
            ssrc: source.ssrc,
            fraction_lost,
            cumulative_lost: lost.clamp(-0x80_0000, 0x7f_ffff) as i32,
            extended_highest_sequence: source.extended_max() as u32,
            jitter: source.jitter as u32,
        })
    }

    fn valid_source(&self) -> Option<&Source> {
        self.source.as_ref().filter(|s| s.probation == 0)
    }
}

impl Source {
    /// A.1: `init_seq(s, seq); s->max_seq = seq - 1; s->probation = MIN_SEQUENTIAL;`
    fn new(ssrc: u32, seq: u16, now: Instant, min_sequential: u16) -> Self {
        let mut s = Source {
            ssrc,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: 0,
            probation: min_sequential,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter: 0.0,
            epoch: now,
            last_heard: now,
        };
        s.init_seq(seq);
        s.max_seq = seq.wrapping_sub(1);
        s
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// A.1 `update_seq`.
    fn update_seq(&mut self, seq: u16, config: &ReceiverStatsConfig) -> RtpVerdict {
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return self.accepted(seq);
                }
            } else {
                // `min_sequential` is at least 2 here: with 1 the first packet validates.
                self.probation = config.min_sequential - 1;
                self.max_seq = seq;
            }
            return RtpVerdict::Probation;
        } else if udelta < config.max_dropout {
            if seq < self.max_seq {
                self.cycles += u64::from(RTP_SEQ_MOD);
            }
            self.max_seq = seq;
        } else if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(config.max_misorder) {
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets after a jump: the sender restarted.
                self.init_seq(seq);
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return RtpVerdict::BadSequence;
            }
        }
        self.received += 1;
        self.accepted(seq)
    }

    fn accepted(&self, seq: u16) -> RtpVerdict {
        // A late packet from before the latest wrap belongs to the previous cycle.
        let cycles = if seq > self.max_seq && self.cycles > 0 {
            self.cycles - u64::from(RTP_SEQ_MOD)
        } else {
            self.cycles
        };
        RtpVerdict::Accepted {
            extended_sequence: (cycles + u64::from(seq)) as u32,
        }
    }

    fn extended_max(&self) -> u64 {
        self.cycles + u64::from(self.max_seq)
    }

    fn expected(&self) -> u64 {
        (self.extended_max() + 1).saturating_sub(u64::from(self.base_seq))
    }

    /// A.8: `D = transit - previous transit; J += (|D| - J) / 16`.
    fn update_jitter(&mut self, now: Instant, timestamp: u32, clock_rate: u32) {
        let arrival = ticks(now.saturating_duration_since(self.epoch), clock_rate);
        let transit = arrival.wrapping_sub(timestamp);
        match self.transit {
            Some((_, previous_ts)) if previous_ts == timestamp => {}
            Some((previous, _)) => {
                let d = f64::from((transit.wrapping_sub(previous) as i32).unsigned_abs());
                self.jitter += (d - self.jitter) / 16.0;
                self.transit = Some((transit, timestamp));
            }
            None => self.transit = Some((transit, timestamp)),
        }
    }
}

#[cfg(test)]
#[path = "receiver_stats_tests.rs"]
mod tests;
