//! The RTCP side of one RTP session (RFC 3550 §6): when to report, what to report, and what the
//! peer reported back.
//!
//! # Contract
//! An [`RtcpSession`] is sans-IO. The caller drives it with three kinds of input and one output:
//! 1. [`RtcpSession::poll_timeout`] says when it next wants [`RtcpSession::poll_transmit`] called.
//! 2. [`RtcpSession::poll_transmit`] returns a compound packet once that time has come. It takes
//!    the stream's [`RtpSender`] and [`ReceiverStats`] by reference: an SR (sender info from the
//!    sender) when RTP was sent since the previous report, else an RR; a reception report block
//!    when the receiver heard its source since the previous report; always an SDES CNAME.
//! 3. [`RtcpSession::handle_rtcp`] takes a received (plain or decrypted) compound packet; what it
//!    learns is queued for [`RtcpSession::poll_event`] and kept for the getters
//!    ([`RtcpSession::remote_reception`], [`RtcpSession::rtt`], [`RtcpSession::remote_cname`]).
//! 4. [`RtcpSession::close`] returns the final compound packet with a BYE; afterwards the session
//!    neither sends nor wants to be woken.
//!
//! Wallclock time for NTP timestamps is an argument ([`NtpTime`]), taken by the caller from the
//! same clock for every call; the session never reads a clock.
//!
//! # Timing
//! Reports go out every `interval` (5 s, RFC 3550's minimum) multiplied by a random factor in
//! [0.5, 1.5) (§6.3.1), the first after half an interval (§6.2, "initial" halving). A two-party
//! unicast session has no membership to reconsider, so the e − 3/2 compensation that §6.3.1 pairs
//! with timer reconsideration is not applied: the mean interval is the nominal one.
//!
//! # Round-trip time
//! A report block about our SSRC carries LSR (the middle 32 bits of the NTP time of our last SR)
//! and DLSR (how long the peer held it, in 1/65536 s). With A the middle 32 bits of our wallclock
//! at arrival, RTT = A − LSR − DLSR (§6.4.1). Blocks with LSR = 0 (no SR seen yet) give no RTT.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rtc_rtcp::goodbye::Goodbye;
use rtc_rtcp::receiver_report::ReceiverReport;
use rtc_rtcp::reception_report::ReceptionReport;
use rtc_rtcp::sender_report::SenderReport;
use rtc_rtcp::source_description::{
    SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem,
};
use rtc_shared::marshal::Marshal;

use super::ntp::{duration_to_ntp_short, ntp_short_to_duration, NtpTime};
use super::receiver_stats::ReceiverStats;
use super::rtcp_packet::{build_compound, parse_compound, RtcpError, RtcpPacket};
use super::sender::RtpSender;

/// Events kept for [`RtcpSession::poll_event`] before the oldest are dropped.
const MAX_QUEUED_EVENTS: usize = 256;
/// Remote SRs remembered (by SSRC) for the LSR/DLSR of our reports.
const MAX_REMEMBERED_SRS: usize = 4;

/// Settings of an [`RtcpSession`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpConfig {
    /// Our canonical name (SDES CNAME), at most 255 bytes (longer names are cut at a character
    /// boundary).
    pub cname: String,
    /// The nominal report interval.
    pub interval: Duration,
}

impl RtcpConfig {
    /// The RFC 3550 5-second interval with `cname`.
    pub fn new(cname: impl Into<String>) -> Self {
        RtcpConfig {
            cname: cname.into(),
            interval: Duration::from_secs(5),
        }
    }
}

/// What the peer reported about the stream we send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RemoteReception {
    /// The SSRC of the reporter.
    pub reporter_ssrc: u32,
    /// Fraction lost in the reporter's last interval, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed on the wire).
    pub cumulative_lost: i32,
    /// Extended highest sequence number the reporter received.
    pub extended_highest_sequence: u32,
    /// Interarrival jitter in our stream's timestamp units.
    pub jitter: u32,
    /// The round-trip time this block yields, when it carried an LSR.
    pub rtt: Option<Duration>,
    /// When the block arrived.
    pub received_at: Instant,
}

impl RemoteReception {
    /// The fraction lost as a ratio in [0, 1).
    pub fn loss_ratio(&self) -> f64 {
        f64::from(self.fraction_lost) / 256.0
    }

    /// The jitter in milliseconds, given our stream's RTP clock rate.
    pub fn jitter_ms(&self, clock_rate: u32) -> f64 {
        if clock_rate == 0 {
            return 0.0;
        }
        f64::from(self.jitter) * 1000.0 / f64::from(clock_rate)
    }
}

/// Something learnt from received RTCP.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RtcpEvent {
    /// A sender report: the peer's sender info (lip-sync and sent counts).
    SenderReport {
        /// The sender.
        ssrc: u32,
        /// Its wallclock when sending.
        ntp_time: NtpTime,
        /// The RTP timestamp of the same instant.
        rtp_time: u32,
        /// Packets it has sent.
        packet_count: u32,
        /// Payload octets it has sent.
        octet_count: u32,
    },
    /// A reception report block about our SSRC.
    ReceptionReport(RemoteReception),
    /// A CNAME, first seen or changed for its SSRC.
    Cname {
        /// The source described.
        ssrc: u32,
        /// Its canonical name (lossily decoded as UTF-8).
        cname: String,
    },
    /// A BYE for a source.
    Bye {
        /// The source leaving.
        ssrc: u32,
        /// The reason given, if any.
        reason: Option<String>,
    },
    /// A picture loss indication or full intra request for `media_ssrc`: send a key frame.
    KeyFrameRequest {
        /// The stream that needs a key frame.
        media_ssrc: u32,
    },
    /// A generic NACK: the peer asks for these packets of `media_ssrc` again (at most
    /// [`MAX_NACKED_PER_PACKET`](super::nack::MAX_NACKED_PER_PACKET) per NACK packet).
    Nack {
        /// The stream the packets belong to.
        media_ssrc: u32,
        /// The sequence numbers asked for, in the order listed.
        sequences: Vec<u16>,
    },
    /// A receiver estimated maximum bitrate for the listed streams.
    Remb {
        /// The estimate in bits per second.
        bitrate_bps: u64,
        /// The streams it applies to.
        ssrcs: Vec<u32>,
    },
    /// Transport-wide congestion control feedback, for
    /// [`BitrateController::on_transport_feedback`](crate::congestion::BitrateController::on_transport_feedback).
    TransportFeedback(Vec<crate::congestion::PacketFeedback>),
}

/// Counters of an [`RtcpSession`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtcpCounters {
    /// Compound packets sent (the final BYE included).
    pub sent: u64,
    /// Of which began with an SR.
    pub sent_sr: u64,
    /// Compound packets received and parsed.
    pub received: u64,
    /// Compound packets refused as malformed.
    pub malformed: u64,
    /// Packets inside received compounds that were skipped (APP, XR, other feedback).
    pub ignored: u64,
    /// Events dropped because the queue was full.
    pub events_dropped: u64,
}

/// A remembered remote SR: its sender, LSR and arrival.
#[derive(Debug, Clone, Copy)]
struct RemoteSr {
    ssrc: u32,
    lsr: u32,
    at: Instant,
}

/// RTCP scheduling, reporting and report intake for one RTP session.
#[derive(Debug)]
pub struct RtcpSession {
    config: RtcpConfig,
    local_ssrc: u32,
    rng: SmallRng,
    next_report: Option<Instant>,
    /// The sender's packet count at the previous report.
    packets_at_last_report: u64,
    remote_srs: VecDeque<RemoteSr>,
    remote_reception: Option<RemoteReception>,
    rtt: Option<Duration>,
    remote_cname: Option<(u32, String)>,
    events: VecDeque<RtcpEvent>,
    counters: RtcpCounters,
}

impl RtcpSession {
    /// A session reporting as `local_ssrc` (the SSRC of our RTP sender), created at `now`.
    pub fn new<R: Rng + ?Sized>(
        mut config: RtcpConfig,
        local_ssrc: u32,
        now: Instant,
        rng: &mut R,
    ) -> Self {
        truncate_at_char(&mut config.cname, 255);
        let mut rng = SmallRng::seed_from_u64(rng.gen());
        let first = now + randomized(config.interval / 2, &mut rng);
        RtcpSession {
            config,
            local_ssrc,
            rng,
            next_report: Some(first),
            packets_at_last_report: 0,
            remote_srs: VecDeque::new(),
            remote_reception: None,
            rtt: None,
            remote_cname: None,
            events: VecDeque::new(),
            counters: RtcpCounters::default(),
        }
    }

    /// Our SSRC.
    pub fn local_ssrc(&self) -> u32 {
        self.local_ssrc
    }

    /// When [`RtcpSession::poll_transmit`] should next be called; `None` once closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_report
    }

    /// The report due at `now`, if one is: a compound SR/RR + SDES packet. `ntp` is the wallclock
    /// at `now`.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        ntp: NtpTime,
        sender: Option<&RtpSender>,
        receiver: Option<&mut ReceiverStats>,
    ) -> Option<Bytes> {
        if now < self.next_report? {
            return None;
        }
        let packet = self.report(now, ntp, sender, receiver, None);
        self.next_report = Some(now + randomized(self.config.interval, &mut self.rng));
        Some(packet)
    }

    /// Ends the session: the final compound packet, with a BYE (and `reason`, if given) after the
    /// report. The session then stops scheduling reports.
    pub fn close(
        &mut self,
        now: Instant,
        ntp: NtpTime,
        sender: Option<&RtpSender>,
        receiver: Option<&mut ReceiverStats>,
        reason: Option<&str>,
    ) -> Bytes {
        self.next_report = None;
        let mut reason = reason.unwrap_or_default().to_owned();
        truncate_at_char(&mut reason, 255);
        self.report(now, ntp, sender, receiver, Some(reason))
    }

    /// A feedback message (RFC 4585: a PLI, a generic NACK) as a compound packet of its own: an
    /// empty receiver report and our CNAME first, as RFC 3550 §6.1 wants of every compound
    /// packet (without `a=rtcp-rsize` a peer may refuse a lone feedback packet). It does not
    /// move the report schedule.
    pub fn feedback(&mut self, feedback: &dyn Marshal) -> Result<Bytes, RtcpError> {
        let receiver_report = ReceiverReport {
            ssrc: self.local_ssrc,
            reports: Vec::new(),
            profile_extensions: Bytes::new(),
        };
        let sdes = self.cname_chunk();
        let packet = build_compound(&[&receiver_report, &sdes, feedback])?;
        self.counters.sent += 1;
        Ok(packet)
    }

    fn cname_chunk(&self) -> SourceDescription {
        SourceDescription {
            chunks: vec![SourceDescriptionChunk {
                source: self.local_ssrc,
                items: vec![SourceDescriptionItem {
                    sdes_type: SdesType::SdesCname,
                    text: Bytes::copy_from_slice(self.config.cname.as_bytes()),
                }],
            }],
        }
    }

    /// Whether [`RtcpSession::close`] has been called.
    pub fn is_closed(&self) -> bool {
        self.next_report.is_none()
    }

    fn report(
        &mut self,
        now: Instant,
        ntp: NtpTime,
        sender: Option<&RtpSender>,
        receiver: Option<&mut ReceiverStats>,
        bye: Option<String>,
    ) -> Bytes {
        let blocks: Vec<ReceptionReport> = receiver
            .and_then(ReceiverStats::report)
            .map(|stats| {
                let (lsr, delay) = self
                    .remote_srs
                    .iter()
                    .find(|sr| sr.ssrc == stats.ssrc)
                    .map_or((0, 0), |sr| {
                        (
                            sr.lsr,
                            duration_to_ntp_short(now.saturating_duration_since(sr.at)),
                        )
                    });
                ReceptionReport {
                    ssrc: stats.ssrc,
                    fraction_lost: stats.fraction_lost,
                    total_lost: (stats.cumulative_lost as u32) & 0x00ff_ffff,
                    last_sequence_number: stats.extended_highest_sequence,
                    jitter: stats.jitter,
                    last_sender_report: lsr,
                    delay,
                }
            })
            .into_iter()
            .collect();

        let sent = sender.filter(|s| s.counters().packets > self.packets_at_last_report);
        let sender_report = sent.and_then(|s| {
            self.packets_at_last_report = s.counters().packets;
            let info = s.sender_info(now)?;
            Some(SenderReport {
                ssrc: self.local_ssrc,
                ntp_time: ntp.0,
                rtp_time: info.rtp_time,
                packet_count: info.packet_count,
                octet_count: info.octet_count,
                reports: blocks.clone(),
                profile_extensions: Bytes::new(),
            })
        });
        let receiver_report = ReceiverReport {
            ssrc: self.local_ssrc,
            reports: blocks,
            profile_extensions: Bytes::new(),
        };
        let sdes = self.cname_chunk();
        let goodbye = bye.map(|reason| Goodbye {
            sources: vec![self.local_ssrc],
            reason: Bytes::from(reason),
        });

        let mut parts: Vec<&dyn Marshal> = Vec::with_capacity(3);
        match &sender_report {
            Some(sr) => parts.push(sr),
            None => parts.push(&receiver_report),
        }
        parts.push(&sdes);
        if let Some(bye) = &goodbye {
            parts.push(bye);
        }
        self.counters.sent += 1;
        if sender_report.is_some() {
            self.counters.sent_sr += 1;
        }
        build_compound(&parts)
            .expect("one report block, a CNAME and a reason of at most 255 bytes always encode")
    }

    /// Takes in a received compound RTCP packet (plain, or decrypted by SRTCP) that arrived at
    /// `now`, when the wallclock read `ntp`. Malformed packets are counted and refused whole.
    pub fn handle_rtcp(
        &mut self,
        now: Instant,
        ntp: NtpTime,
        packet: &[u8],
    ) -> Result<(), RtcpError> {
        let packets = match parse_compound(packet) {
            Ok(packets) => packets,
            Err(e) => {
                self.counters.malformed += 1;
                return Err(e);
            }
        };
        self.counters.received += 1;
        for p in packets {
            match p {
                RtcpPacket::SenderReport(sr) => {
                    self.remember_sr(sr.ssrc, NtpTime(sr.ntp_time), now);
                    self.push(RtcpEvent::SenderReport {
                        ssrc: sr.ssrc,
                        ntp_time: NtpTime(sr.ntp_time),
                        rtp_time: sr.rtp_time,
                        packet_count: sr.packet_count,
                        octet_count: sr.octet_count,
                    });
                    self.take_blocks(now, ntp, sr.ssrc, &sr.reports);
                }
                RtcpPacket::ReceiverReport(rr) => self.take_blocks(now, ntp, rr.ssrc, &rr.reports),
                RtcpPacket::SourceDescription(sdes) => {
                    for chunk in sdes.chunks {
                        for item in chunk.items {
                            if item.sdes_type == SdesType::SdesCname {
                                self.take_cname(chunk.source, &item.text);
                            }
                        }
                    }
                }
                RtcpPacket::Goodbye(bye) => {
                    let reason = (!bye.reason.is_empty())
                        .then(|| String::from_utf8_lossy(&bye.reason).into_owned());
                    for ssrc in bye.sources {
                        self.push(RtcpEvent::Bye {
                            ssrc,
                            reason: reason.clone(),
                        });
                    }
                }
                RtcpPacket::PictureLossIndication(pli) => self.push(RtcpEvent::KeyFrameRequest {
                    media_ssrc: pli.media_ssrc,
                }),
                RtcpPacket::FullIntraRequest(fir) => {
                    for entry in fir.fir {
                        self.push(RtcpEvent::KeyFrameRequest {
                            media_ssrc: entry.ssrc,
                        });
                    }
                }
                RtcpPacket::Nack(nack) => self.push(RtcpEvent::Nack {
                    media_ssrc: nack.media_ssrc,
                    sequences: super::nack::nacked_sequences(&nack),
                }),
                RtcpPacket::Remb(remb) => self.push(RtcpEvent::Remb {
                    bitrate_bps: remb.bitrate as u64,
                    ssrcs: remb.ssrcs,
                }),
                RtcpPacket::TransportFeedback(twcc) => self.push(RtcpEvent::TransportFeedback(
                    crate::congestion::feedback_from_twcc(&twcc),
                )),
                _ => self.counters.ignored += 1,
            }
        }
        Ok(())
    }

    fn remember_sr(&mut self, ssrc: u32, ntp_time: NtpTime, now: Instant) {
        self.remote_srs.retain(|sr| sr.ssrc != ssrc);
        if self.remote_srs.len() == MAX_REMEMBERED_SRS {
            self.remote_srs.pop_front();
        }
        self.remote_srs.push_back(RemoteSr {
            ssrc,
            lsr: ntp_time.middle_32(),
            at: now,
        });
    }

    fn take_blocks(
        &mut self,
        now: Instant,
        ntp: NtpTime,
        reporter: u32,
        blocks: &[ReceptionReport],
    ) {
        let local = self.local_ssrc;
        for block in blocks.iter().filter(|b| b.ssrc == local) {
            let rtt = round_trip(ntp, block.last_sender_report, block.delay);
            if rtt.is_some() {
                self.rtt = rtt;
            }
            let reception = RemoteReception {
                reporter_ssrc: reporter,
                fraction_lost: block.fraction_lost,
                cumulative_lost: sign_extend_24(block.total_lost),
                extended_highest_sequence: block.last_sequence_number,
                jitter: block.jitter,
                rtt,
                received_at: now,
            };
            self.remote_reception = Some(reception);
            self.push(RtcpEvent::ReceptionReport(reception));
        }
    }

    fn take_cname(&mut self, ssrc: u32, text: &[u8]) {
        let cname = String::from_utf8_lossy(text).into_owned();
        let known = self
            .remote_cname
            .as_ref()
            .is_some_and(|(s, c)| *s == ssrc && *c == cname);
        if !known {
            self.remote_cname = Some((ssrc, cname.clone()));
            self.push(RtcpEvent::Cname { ssrc, cname });
        }
    }

    fn push(&mut self, event: RtcpEvent) {
        if self.events.len() == MAX_QUEUED_EVENTS {
            self.events.pop_front();
            self.counters.events_dropped += 1;
        }
        self.events.push_back(event);
    }

    /// The next thing learnt from received RTCP.
    pub fn poll_event(&mut self) -> Option<RtcpEvent> {
        self.events.pop_front()
    }

    /// The latest report block about our stream.
    pub fn remote_reception(&self) -> Option<RemoteReception> {
        self.remote_reception
    }

    /// The latest round-trip time measured.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// The latest CNAME the peer sent, with its SSRC.
    pub fn remote_cname(&self) -> Option<(u32, &str)> {
        self.remote_cname.as_ref().map(|(s, c)| (*s, c.as_str()))
    }

    /// Counters.
    pub fn counters(&self) -> RtcpCounters {
        self.counters
    }
}

/// How far below zero A − LSR − DLSR may come out and still mean a round trip too short to
/// measure: peers count DLSR with millisecond (some with 10 ms) timers, so on a short path the
/// difference is often a little negative.
pub const RTT_ROUNDING: Duration = Duration::from_millis(20);

/// RTT from a report block that arrived at wallclock `arrival` (RFC 3550 §6.4.1): A − LSR − DLSR
/// in 1/65536 s. `None` without an LSR; zero when the result is negative by no more than
/// [`RTT_ROUNDING`]; `None` when it is more negative (clocks disagree).
pub fn round_trip(arrival: NtpTime, lsr: u32, dlsr: u32) -> Option<Duration> {
    if lsr == 0 {
        return None;
    }
    let units = arrival.middle_32().wrapping_sub(lsr).wrapping_sub(dlsr);
    // A negative difference wraps to a huge value: more than half the 16-bit-second range is
    // taken as negative.
    if units < 0x8000_0000 {
        return Some(ntp_short_to_duration(units));
    }
    let below_zero = ntp_short_to_duration(units.wrapping_neg());
    (below_zero <= RTT_ROUNDING).then_some(Duration::ZERO)
}

fn sign_extend_24(value: u32) -> i32 {
    ((value << 8) as i32) >> 8
}

fn randomized(interval: Duration, rng: &mut SmallRng) -> Duration {
    interval.mul_f64(rng.gen_range(0.5..1.5))
}

fn truncate_at_char(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

#[cfg(test)]
#[path = "rtcp_session_tests.rs"]
mod tests;
