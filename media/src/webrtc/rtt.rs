//! Round-trip time from RTCP (RFC 3550 §6.4.1), measured inside the interceptor chain.
//!
//! `rtc` 0.21 generates and parses sender and receiver reports but never computes the RTT
//! (its remote-inbound statistics carry `round_trip_time: 0`). [`RttMeter`] sits on the wire
//! side of the report interceptors: on the way out it notes when each of our Sender Reports
//! left, keyed by the middle 32 bits of its NTP timestamp (what the peer echoes as LSR); on the
//! way in, a report block about one of our SSRCs gives RTT = arrival − departure − DLSR. Both
//! instants are the chain's own (`TransportMessage::now`), so no wallclock is involved.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// Where it sits: below the report interceptors (so it sees the Sender Reports they make) and
/// above the wire-most stages.
pub(crate) const SLOT: usize = 3_500;

/// Sender Reports remembered per SSRC (one a second: the last 16 s).
const REMEMBERED: usize = 16;

/// The latest RTT per local SSRC, shared with the session.
#[derive(Debug, Clone, Default)]
pub(crate) struct RttTable(Arc<Mutex<HashMap<u32, Duration>>>);

impl RttTable {
    /// The latest RTT measured for our stream `ssrc`.
    pub(crate) fn get(&self, ssrc: u32) -> Option<Duration> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&ssrc)
            .copied()
    }

    fn set(&self, ssrc: u32, rtt: Duration) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(ssrc, rtt);
    }
}

/// The interceptor: see the module docs.
pub(crate) struct RttMeter {
    table: RttTable,
    /// Per local SSRC: (NTP middle 32 bits, departure) of recent Sender Reports.
    sent: HashMap<u32, VecDeque<(u32, Instant)>>,
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl RttMeter {
    pub(crate) fn new(table: RttTable) -> Self {
        RttMeter {
            table,
            sent: HashMap::new(),
            reads: VecDeque::new(),
            writes: VecDeque::new(),
        }
    }

    fn note_sent(&mut self, sr: &SenderReport, now: Instant) {
        let middle = (sr.ntp_time >> 16) as u32;
        let history = self.sent.entry(sr.ssrc).or_default();
        if history.len() == REMEMBERED {
            history.pop_front();
        }
        history.push_back((middle, now));
    }

    fn note_report(&self, report: &ReceptionReport, now: Instant) {
        if report.last_sender_report == 0 {
            return;
        }
        let Some(history) = self.sent.get(&report.ssrc) else {
            return;
        };
        let Some(&(_, departed)) = history
            .iter()
            .find(|(middle, _)| *middle == report.last_sender_report)
        else {
            return;
        };
        // DLSR is in units of 1/65536 s.
        let delay = Duration::from_secs_f64(f64::from(report.delay) / 65_536.0);
        if let Some(rtt) = now
            .checked_duration_since(departed)
            .and_then(|elapsed| elapsed.checked_sub(delay))
        {
            self.table.set(report.ssrc, rtt);
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for RttMeter {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            for packet in packets {
                let any = packet.as_any();
                let reports = if let Some(sr) = any.downcast_ref::<SenderReport>() {
                    &sr.reports
                } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                    &rr.reports
                } else {
                    continue;
                };
                for report in reports {
                    self.note_report(report, msg.now);
                }
            }
        }
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            for packet in packets {
                if let Some(sr) = packet.as_any().downcast_ref::<SenderReport>() {
                    self.note_sent(sr, msg.now);
                }
            }
        }
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.writes.pop_front()
    }
}

impl Interceptor for RttMeter {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_is_arrival_minus_departure_minus_dlsr() {
        let table = RttTable::default();
        let mut meter = RttMeter::new(table.clone());
        let t0 = Instant::now();
        let sr = SenderReport {
            ssrc: 7,
            ntp_time: 0x0001_2345_6789_0000,
            ..Default::default()
        };
        meter.note_sent(&sr, t0);
        let report = ReceptionReport {
            ssrc: 7,
            last_sender_report: 0x2345_6789,
            delay: 65_536 / 10, // 100 ms held by the peer
            ..Default::default()
        };
        meter.note_report(&report, t0 + Duration::from_millis(130));
        let rtt = table.get(7).unwrap();
        assert!((rtt.as_secs_f64() - 0.030).abs() < 0.001, "{rtt:?}");
    }

    #[test]
    fn reports_without_lsr_or_about_unknown_streams_are_ignored() {
        let table = RttTable::default();
        let meter = RttMeter::new(table.clone());
        let now = Instant::now();
        meter.note_report(&ReceptionReport::default(), now);
        meter.note_report(
            &ReceptionReport {
                ssrc: 9,
                last_sender_report: 1,
                ..Default::default()
            },
            now,
        );
        assert_eq!(table.get(0), None);
        assert_eq!(table.get(9), None);
    }
}
