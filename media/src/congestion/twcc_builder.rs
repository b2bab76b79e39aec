//! The receive side of transport-wide congestion control: record when each transport-wide
//! sequence number arrived and report it to the sender in TWCC feedback packets
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01), which the sender's
//! [`BitrateController`](super::BitrateController) reads through
//! [`feedback_from_twcc`](super::feedback_from_twcc).
//!
//! # Contract
//! Sans-IO: [`TransportFeedbackBuilder::on_packet_received`] takes each packet's sequence number
//! and arrival `now`; [`TransportFeedbackBuilder::poll_timeout`] says when a report is due (every
//! `interval`, 100 ms by default, once something arrived); [`TransportFeedbackBuilder::poll_feedback`]
//! returns the packet to send then. Each report covers every sequence number from the first not
//! yet reported to the highest received (missing ones as "not received"), at most
//! [`MAX_STATUSES`] of them; a packet that arrives after its number was reported is counted and
//! not reported again. Arrival times are kept on this builder's own clock (the first arrival is
//! its origin), in the 64 ms reference time and 250 µs deltas of the format; deltas that do not
//! fit 16 bits end a report early and the rest go in the next.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rtc_rtcp::transport_feedbacks::transport_layer_cc::{
    PacketStatusChunk, RecvDelta, RunLengthChunk, StatusChunkTypeTcc, StatusVectorChunk,
    SymbolSizeTypeTcc, SymbolTypeTcc, TransportLayerCc, TYPE_TCC_DELTA_SCALE_FACTOR,
};

/// Most packet statuses in one report.
pub const MAX_STATUSES: usize = 1_000;
/// Received sequence numbers further ahead of the reported range than this restart it.
const MAX_GAP: u64 = 10_000;

/// Counters of a [`TransportFeedbackBuilder`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedbackBuilderStats {
    /// Packets recorded.
    pub received: u64,
    /// Packets that arrived after their sequence number had been reported, or twice.
    pub late_or_duplicate: u64,
    /// Reports built.
    pub reports: u64,
}

/// Builds transport-wide congestion control feedback from arrival times.
#[derive(Debug)]
pub struct TransportFeedbackBuilder {
    sender_ssrc: u32,
    media_ssrc: u32,
    interval: Duration,
    origin: Option<Instant>,
    /// Arrivals not yet reported, by unwrapped sequence number.
    pending: BTreeMap<u64, Instant>,
    /// The first unwrapped sequence number not yet reported.
    next_unreported: Option<u64>,
    highest: Option<u64>,
    next_report: Option<Instant>,
    feedback_count: u8,
    stats: FeedbackBuilderStats,
}

impl TransportFeedbackBuilder {
    /// A builder whose reports carry our `sender_ssrc` and the `media_ssrc` we receive, sent
    /// every `interval`.
    pub fn new(sender_ssrc: u32, media_ssrc: u32, interval: Duration) -> Self {
        TransportFeedbackBuilder {
            sender_ssrc,
            media_ssrc,
            interval,
            origin: None,
            pending: BTreeMap::new(),
            next_unreported: None,
            highest: None,
            next_report: None,
            feedback_count: 0,
            stats: FeedbackBuilderStats::default(),
        }
    }

    /// Records that the packet with transport-wide `sequence` arrived at `now`.
    pub fn on_packet_received(&mut self, sequence: u16, now: Instant) {
        self.stats.received += 1;
        self.origin.get_or_insert(now);
        let unwrapped = match self.highest {
            None => (1 << 32) + u64::from(sequence),
            Some(h) => {
                let diff = i64::from(sequence.wrapping_sub(h as u16) as i16);
                h.saturating_add_signed(diff)
            }
        };
        let next = *self.next_unreported.get_or_insert(unwrapped);
        if unwrapped < next || self.pending.contains_key(&unwrapped) {
            self.stats.late_or_duplicate += 1;
            return;
        }
        if unwrapped - next > MAX_GAP {
            // The sender jumped (a restart): start over from this packet.
            self.pending.clear();
            self.next_unreported = Some(unwrapped);
        }
        self.pending.insert(unwrapped, now);
        self.highest = Some(self.highest.map_or(unwrapped, |h| h.max(unwrapped)));
        self.next_report.get_or_insert(now + self.interval);
    }

    /// When [`poll_feedback`](Self::poll_feedback) next has something to send.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_report.filter(|_| !self.pending.is_empty())
    }

    /// The next report, if one is due at `now`.
    pub fn poll_feedback(&mut self, now: Instant) -> Option<TransportLayerCc> {
        if self.poll_timeout().is_none_or(|due| due > now) {
            return None;
        }
        self.next_report = Some(now + self.interval);
        self.build()
    }

    /// What the builder did so far.
    pub fn stats(&self) -> FeedbackBuilderStats {
        self.stats
    }

    fn build(&mut self) -> Option<TransportLayerCc> {
        let origin = self.origin?;
        let base = self.next_unreported?;
        let (&first_received, &first_arrival) = self.pending.first_key_value()?;
        let highest = self.highest?;
        let last = highest.min(base + MAX_STATUSES as u64 - 1);
        let reference =
            (first_arrival.saturating_duration_since(origin).as_micros() as i64) / 64_000;
        let mut clock_us = reference * 64_000;
        let mut symbols = Vec::new();
        let mut deltas = Vec::new();
        let mut end = base;
        for sequence in base..=last {
            end = sequence;
            let Some(&arrival) = self.pending.get(&sequence) else {
                symbols.push(SymbolTypeTcc::PacketNotReceived);
                continue;
            };
            let at_us = arrival.saturating_duration_since(origin).as_micros() as i64;
            let ticks = (at_us - clock_us).div_euclid(TYPE_TCC_DELTA_SCALE_FACTOR);
            let symbol = match ticks {
                0..=255 => SymbolTypeTcc::PacketReceivedSmallDelta,
                t if i64::from(i16::MIN) <= t && t <= i64::from(i16::MAX) => {
                    SymbolTypeTcc::PacketReceivedLargeDelta
                }
                _ if sequence > first_received => {
                    // Does not fit: report up to here, the rest next time.
                    end = sequence - 1;
                    break;
                }
                _ => SymbolTypeTcc::PacketNotReceived,
            };
            if symbol == SymbolTypeTcc::PacketNotReceived {
                symbols.push(symbol);
                continue;
            }
            clock_us += ticks * TYPE_TCC_DELTA_SCALE_FACTOR;
            symbols.push(symbol);
            deltas.push(RecvDelta {
                type_tcc_packet: symbol,
                delta: ticks * TYPE_TCC_DELTA_SCALE_FACTOR,
            });
        }
        symbols.truncate(usize::try_from(end - base + 1).unwrap_or(usize::MAX));
        self.pending = self.pending.split_off(&(end + 1));
        self.next_unreported = Some(end + 1);
        self.stats.reports += 1;
        let count = self.feedback_count;
        self.feedback_count = self.feedback_count.wrapping_add(1);
        Some(TransportLayerCc {
            sender_ssrc: self.sender_ssrc,
            media_ssrc: self.media_ssrc,
            base_sequence_number: base as u16,
            packet_status_count: symbols.len() as u16,
            reference_time: (reference as u32) & 0x00ff_ffff,
            fb_pkt_count: count,
            packet_chunks: chunks(&symbols),
            recv_deltas: deltas,
        })
    }
}

/// Encodes statuses as run-length chunks for runs of seven or more, two-bit vectors otherwise.
fn chunks(symbols: &[SymbolTypeTcc]) -> Vec<PacketStatusChunk> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < symbols.len() {
        let run = symbols[i..]
            .iter()
            .take(8_191)
            .take_while(|&&s| s == symbols[i])
            .count();
        if run >= 7 {
            out.push(PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                packet_status_symbol: symbols[i],
                run_length: run as u16,
            }));
            i += run;
        } else {
            let mut list: Vec<SymbolTypeTcc> = symbols[i..].iter().take(7).copied().collect();
            i += list.len();
            list.resize(7, SymbolTypeTcc::PacketNotReceived);
            out.push(PacketStatusChunk::StatusVectorChunk(StatusVectorChunk {
                type_tcc: StatusChunkTypeTcc::StatusVectorChunk,
                symbol_size: SymbolSizeTypeTcc::TwoBit,
                symbol_list: list,
            }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::feedback::{feedback_from_twcc, PacketFeedback};
    use super::*;
    use rtc_shared::marshal::{Marshal, Unmarshal};

    fn round_trip(twcc: &TransportLayerCc) -> TransportLayerCc {
        let bytes = twcc.marshal().unwrap();
        TransportLayerCc::unmarshal(&mut &bytes[..]).unwrap()
    }

    #[test]
    fn reports_arrivals_and_gaps_across_the_wrap() {
        let start = Instant::now();
        let mut builder = TransportFeedbackBuilder::new(1, 2, Duration::from_millis(100));
        assert_eq!(builder.poll_timeout(), None);
        let mut expected = Vec::new();
        for i in 0..39u16 {
            let sequence = 65_520u16.wrapping_add(i);
            // Every fifth packet is lost; one arrives 70 ms late (a large delta).
            if i % 5 == 4 {
                expected.push((sequence, None));
                continue;
            }
            let extra = if i == 12 { 70_000 } else { 0 };
            let at = start + Duration::from_micros(u64::from(i) * 2_000 + extra);
            builder.on_packet_received(sequence, at);
            expected.push((sequence, Some(u64::from(i) * 2_000 + extra)));
        }
        // The last packet (i = 38) was received; the report covers all thirty-nine.
        let due = builder.poll_timeout().unwrap();
        assert_eq!(due, start + Duration::from_millis(100));
        assert!(builder
            .poll_feedback(due - Duration::from_millis(1))
            .is_none());
        let twcc = round_trip(&builder.poll_feedback(due).unwrap());
        let got: Vec<(u16, Option<u64>)> = feedback_from_twcc(&twcc)
            .into_iter()
            .map(|PacketFeedback { sequence, arrival }| {
                (sequence, arrival.map(|a| a.as_micros() as u64))
            })
            .collect();
        assert_eq!(got, expected);
        // Nothing new: nothing to send. A late packet is counted, not reported.
        assert!(builder
            .poll_feedback(due + Duration::from_millis(200))
            .is_none());
        builder.on_packet_received(65_524, due);
        assert_eq!(builder.stats().late_or_duplicate, 1);
        assert!(builder
            .poll_feedback(due + Duration::from_millis(300))
            .is_none());
    }

    #[test]
    fn long_runs_use_run_length_chunks_and_reports_are_bounded() {
        let start = Instant::now();
        let mut builder = TransportFeedbackBuilder::new(1, 2, Duration::from_millis(100));
        builder.on_packet_received(0, start);
        builder.on_packet_received(2_500, start + Duration::from_millis(10));
        let first = builder
            .poll_feedback(start + Duration::from_millis(100))
            .unwrap();
        assert_eq!(usize::from(first.packet_status_count), MAX_STATUSES);
        assert!(first.packet_chunks.len() <= 2);
        let parsed = feedback_from_twcc(&round_trip(&first));
        assert_eq!(parsed.iter().filter(|p| p.arrival.is_some()).count(), 1);
        let second = builder
            .poll_feedback(start + Duration::from_millis(200))
            .unwrap();
        assert_eq!(second.base_sequence_number, 1_000);
        let third = builder
            .poll_feedback(start + Duration::from_millis(300))
            .unwrap();
        let parsed = feedback_from_twcc(&round_trip(&third));
        assert_eq!(parsed.last().unwrap().sequence, 2_500);
        assert_eq!(
            parsed.last().unwrap().arrival,
            Some(Duration::from_millis(10))
        );
    }
}
