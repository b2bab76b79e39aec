//! Transport-wide feedback as the controller sees it: per-packet arrival reports, the record of
//! what was sent that they are matched against, and the acknowledged bitrate they yield.
//!
//! [`PacketFeedback`] is neutral: one report per transport-wide sequence number, with the
//! arrival time on the receiver's clock or `None` for "not received". [`feedback_from_twcc`]
//! reads it out of a transport-wide congestion control packet
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01); RFC 8888 reports map onto the same
//! struct. Send times and sizes are not in the feedback: the controller remembers them from
//! [`BitrateController::on_packet_sent`](super::BitrateController::on_packet_sent).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rtc_rtcp::transport_feedbacks::transport_layer_cc::{
    PacketStatusChunk, SymbolTypeTcc, TransportLayerCc,
};

/// TWCC reference time unit.
const REFERENCE_TIME_UNIT_US: i64 = 64_000;
/// Sent packets remembered for matching feedback.
const MAX_HISTORY: usize = 16_384;
/// Sent packets older than this are forgotten.
const MAX_HISTORY_AGE: Duration = Duration::from_secs(5);
/// A jump in transport-wide sequence numbers larger than this restarts the history.
const MAX_SEQUENCE_JUMP: u64 = 1_000;
/// The acknowledged bitrate is measured over this much arrival time.
const ACKED_WINDOW: Duration = Duration::from_millis(500);
/// Shortest arrival span that yields an acknowledged bitrate.
const ACKED_MIN_SPAN: Duration = Duration::from_millis(150);

/// The receiver's report about one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketFeedback {
    /// The transport-wide sequence number the packet carried.
    pub sequence: u16,
    /// When it arrived, on the receiver's clock from any fixed origin; `None` if the receiver
    /// reports it not received.
    pub arrival: Option<Duration>,
}

/// Reads the per-packet reports out of a transport-wide congestion control feedback packet.
///
/// Statuses past the packet status count are ignored; a status that should carry a receive
/// delta but finds none ends the list (a truncated packet yields what it holds). Arrival times
/// are the reference time (64 ms units) plus the running sum of the deltas, clamped at zero.
pub fn feedback_from_twcc(twcc: &TransportLayerCc) -> Vec<PacketFeedback> {
    let count = usize::from(twcc.packet_status_count);
    let mut out = Vec::with_capacity(count.min(4_096));
    let mut deltas = twcc.recv_deltas.iter();
    let mut time_us = i64::from(twcc.reference_time) * REFERENCE_TIME_UNIT_US;
    let mut sequence = twcc.base_sequence_number;
    for chunk in &twcc.packet_chunks {
        let (symbol, repeat, list): (SymbolTypeTcc, usize, &[SymbolTypeTcc]) = match chunk {
            PacketStatusChunk::RunLengthChunk(run) => {
                (run.packet_status_symbol, usize::from(run.run_length), &[])
            }
            PacketStatusChunk::StatusVectorChunk(vector) => {
                (SymbolTypeTcc::PacketNotReceived, 0, &vector.symbol_list)
            }
        };
        let symbols = std::iter::repeat_n(symbol, repeat).chain(list.iter().copied());
        for symbol in symbols {
            if out.len() == count {
                return out;
            }
            let arrival = match symbol {
                SymbolTypeTcc::PacketNotReceived => None,
                SymbolTypeTcc::PacketReceivedSmallDelta
                | SymbolTypeTcc::PacketReceivedLargeDelta => {
                    let Some(delta) = deltas.next() else {
                        return out;
                    };
                    time_us = time_us.saturating_add(delta.delta);
                    Some(Duration::from_micros(u64::try_from(time_us).unwrap_or(0)))
                }
                // The reserved symbol carries no delta: no arrival time to report.
                SymbolTypeTcc::PacketReceivedWithoutDelta => {
                    sequence = sequence.wrapping_add(1);
                    continue;
                }
            };
            out.push(PacketFeedback { sequence, arrival });
            sequence = sequence.wrapping_add(1);
        }
    }
    out
}

/// One packet we sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SentPacket {
    pub(crate) sent: Instant,
    pub(crate) size: usize,
    /// Feedback about it was already taken.
    pub(crate) reported: bool,
}

/// What was sent, by unwrapped transport-wide sequence number.
#[derive(Debug, Default)]
pub(crate) struct SentHistory {
    /// Unwrapped sequence number of `packets[0]`.
    first: u64,
    packets: VecDeque<Option<SentPacket>>,
}

impl SentHistory {
    /// Records a sent packet; returns false when the sequence number went backwards.
    pub(crate) fn on_sent(&mut self, sequence: u16, size: usize, now: Instant) -> bool {
        let next = self.first + self.packets.len() as u64;
        let unwrapped = if self.packets.is_empty() {
            // Start high so that wrap-around never reaches zero.
            (1 << 32) + u64::from(sequence)
        } else {
            match self.unwrap(sequence) {
                Some(u) => u,
                None => return false,
            }
        };
        if self.packets.is_empty() || unwrapped.saturating_sub(next) > MAX_SEQUENCE_JUMP {
            self.packets.clear();
            self.first = unwrapped;
        } else if unwrapped < next {
            return false;
        } else {
            for _ in next..unwrapped {
                self.packets.push_back(None);
            }
        }
        self.packets.push_back(Some(SentPacket {
            sent: now,
            size,
            reported: false,
        }));
        while self.packets.len() > MAX_HISTORY
            || self.packets.front().is_some_and(|p| {
                p.is_none_or(|p| now.saturating_duration_since(p.sent) > MAX_HISTORY_AGE)
            })
        {
            self.packets.pop_front();
            self.first += 1;
        }
        true
    }

    /// The unwrapped sequence number nearest to the newest one sent.
    fn unwrap(&self, sequence: u16) -> Option<u64> {
        let last = (self.first + self.packets.len() as u64).checked_sub(1)?;
        let diff = i64::from(sequence.wrapping_sub(last as u16) as i16);
        last.checked_add_signed(diff)
    }

    /// The packet with this sequence number, if it is remembered.
    pub(crate) fn get_mut(&mut self, sequence: u16) -> Option<(u64, &mut SentPacket)> {
        let unwrapped = self.unwrap(sequence)?;
        let index = usize::try_from(unwrapped.checked_sub(self.first)?).ok()?;
        let packet = self.packets.get_mut(index)?.as_mut()?;
        Some((unwrapped, packet))
    }
}

/// The rate at which the receiver received our packets, from their arrival times.
#[derive(Debug, Default)]
pub(crate) struct AckedBitrate {
    /// (arrival, bytes), in the order reported.
    window: VecDeque<(Duration, usize)>,
    bytes: usize,
    latest: Option<Duration>,
}

impl AckedBitrate {
    pub(crate) fn on_acked(&mut self, arrival: Duration, size: usize) {
        self.latest = Some(self.latest.map_or(arrival, |l| l.max(arrival)));
        self.window.push_back((arrival, size));
        self.bytes += size;
        let Some(latest) = self.latest else { return };
        while let Some(&(a, s)) = self.window.front() {
            if a + ACKED_WINDOW > latest {
                break;
            }
            self.window.pop_front();
            self.bytes -= s;
        }
    }

    /// Bits per second over the last half second of arrivals, once there is enough of it.
    pub(crate) fn bitrate(&self) -> Option<f64> {
        let latest = self.latest?;
        let &(oldest, first_size) = self.window.front()?;
        let span = latest.saturating_sub(oldest);
        if span < ACKED_MIN_SPAN {
            return None;
        }
        // The first packet's bytes arrived before the span began.
        let bytes = self.bytes - first_size;
        Some(bytes as f64 * 8.0 / span.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc_rtcp::transport_feedbacks::transport_layer_cc::{
        RecvDelta, RunLengthChunk, StatusChunkTypeTcc, StatusVectorChunk, SymbolSizeTypeTcc,
    };

    #[test]
    fn twcc_statuses_and_deltas_become_arrivals() {
        let twcc = TransportLayerCc {
            base_sequence_number: 65_534,
            packet_status_count: 5,
            reference_time: 2,
            packet_chunks: vec![
                PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                    type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                    packet_status_symbol: SymbolTypeTcc::PacketReceivedSmallDelta,
                    run_length: 2,
                }),
                PacketStatusChunk::StatusVectorChunk(StatusVectorChunk {
                    type_tcc: StatusChunkTypeTcc::StatusVectorChunk,
                    symbol_size: SymbolSizeTypeTcc::TwoBit,
                    symbol_list: vec![
                        SymbolTypeTcc::PacketNotReceived,
                        SymbolTypeTcc::PacketReceivedLargeDelta,
                        SymbolTypeTcc::PacketReceivedSmallDelta,
                        SymbolTypeTcc::PacketReceivedSmallDelta,
                        SymbolTypeTcc::PacketNotReceived,
                        SymbolTypeTcc::PacketNotReceived,
                        SymbolTypeTcc::PacketNotReceived,
                    ],
                }),
            ],
            recv_deltas: [1_000, 250, -500, 750, 0]
                .map(|delta| RecvDelta {
                    type_tcc_packet: SymbolTypeTcc::PacketReceivedSmallDelta,
                    delta,
                })
                .to_vec(),
            ..Default::default()
        };
        let got = feedback_from_twcc(&twcc);
        let us = |us: u64| Some(Duration::from_micros(us));
        let expected = vec![
            PacketFeedback {
                sequence: 65_534,
                arrival: us(129_000),
            },
            PacketFeedback {
                sequence: 65_535,
                arrival: us(129_250),
            },
            PacketFeedback {
                sequence: 0,
                arrival: None,
            },
            PacketFeedback {
                sequence: 1,
                arrival: us(128_750),
            },
            PacketFeedback {
                sequence: 2,
                arrival: us(129_500),
            },
        ];
        assert_eq!(got, expected);
        // A packet claiming more statuses than it has deltas yields what it holds.
        let mut short = twcc.clone();
        short.recv_deltas.truncate(1);
        assert_eq!(feedback_from_twcc(&short), expected[..1]);
    }

    #[test]
    fn history_matches_across_wrap_and_forgets_old_packets() {
        let start = Instant::now();
        let mut history = SentHistory::default();
        for i in 0..10u16 {
            assert!(history.on_sent(65_530u16.wrapping_add(i), 1_000, start));
        }
        let (unwrapped, packet) = history.get_mut(3).unwrap();
        assert_eq!(unwrapped, (1 << 32) + 65_539);
        assert_eq!(packet.size, 1_000);
        assert!(history.get_mut(65_529).is_none());
        assert!(!history.on_sent(2, 1_000, start));
        // Six seconds later, the old packets are gone.
        assert!(history.on_sent(4, 500, start + Duration::from_secs(6)));
        assert!(history.get_mut(3).is_none());
        assert_eq!(history.get_mut(4).unwrap().1.size, 500);
    }

    #[test]
    fn acked_bitrate_counts_bytes_over_arrival_time() {
        let mut acked = AckedBitrate::default();
        assert_eq!(acked.bitrate(), None);
        // 1250 bytes every 10 ms: 1 Mbps.
        for i in 0..200u64 {
            acked.on_acked(Duration::from_millis(10 * i), 1_250);
        }
        let rate = acked.bitrate().unwrap();
        assert!((rate - 1_000_000.0).abs() < 1.0, "{rate}");
    }
}
