//! The sending half of one RTP stream (RFC 3550 §5.1): SSRC, sequence numbers, timestamps, marker.
//!
//! An [`RtpSender`] owns the numbering of one outgoing stream. The SSRC, the first sequence number
//! and the first timestamp are random (RFC 3550 §5.1, §8) and drawn from the generator the caller
//! passes, so tests are reproducible. Audio advances the timestamp by the samples each packet
//! carries at the codec's RTP clock rate — 48 000 for Opus whatever the channel count or
//! bandwidth (RFC 7587), so a 20 ms Opus frame is 960 ticks; 8 000 for G.711.
//!
//! A talkspurt starts with the marker bit (RFC 3551 §4.1): the first packet ever, and the first
//! packet after [`RtpSender::skip`] (silence suppression, DTX, a DTMF event, hold) carry it. Packets
//! of other kinds (RFC 4733 events, video) go through [`RtpSender::packet`], which shares the
//! sequence space but leaves the audio clock alone. The sender also keeps what a Sender Report
//! needs (RFC 3550 §6.4.1): packet and payload-octet counts and the RTP time of "now".
//!
//! Sans-IO: `now` is only recorded (to extrapolate the RTP timestamp of a Sender Report); building
//! a packet returns its bytes and sends nothing.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rand::Rng;
use rtc_shared::marshal::Marshal;

use super::packet::{RtpHeader, RTP_FIXED_HEADER_LEN, RTP_VERSION};

/// The counters and clock a Sender Report carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    /// The RTP timestamp that corresponds to the instant asked about.
    pub rtp_time: u32,
    /// Packets sent since the stream began, wrapping at 2^32 as on the wire.
    pub packet_count: u32,
    /// Payload octets sent (headers and padding excluded), wrapping at 2^32.
    pub octet_count: u32,
}

/// Cumulative send counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderCounters {
    /// Packets built.
    pub packets: u64,
    /// Payload octets in them.
    pub octets: u64,
}

/// The numbering state of one outgoing RTP stream.
#[derive(Debug, Clone)]
pub struct RtpSender {
    ssrc: u32,
    payload_type: u8,
    clock_rate: u32,
    next_sequence: u16,
    /// The RTP timestamp of the next audio packet.
    next_timestamp: u32,
    /// The next audio packet begins a talkspurt.
    talkspurt_start: bool,
    counters: SenderCounters,
    /// The RTP timestamp and send instant of the latest packet of the stream's own payload type,
    /// the reference from which Sender Reports extrapolate.
    last_sent: Option<(u32, Instant)>,
}

impl RtpSender {
    /// A sender with a random SSRC, first sequence number and first timestamp.
    ///
    /// `payload_type` is the negotiated audio payload type; `clock_rate` its RTP clock rate
    /// (48 000 for Opus, 8 000 for G.711).
    pub fn new<R: Rng + ?Sized>(payload_type: u8, clock_rate: u32, rng: &mut R) -> Self {
        Self::with_start(rng.gen(), rng.gen(), rng.gen(), payload_type, clock_rate)
    }

    /// A sender with a chosen SSRC and starting numbers (an SSRC announced in SDP, or tests).
    pub fn with_start(
        ssrc: u32,
        first_sequence: u16,
        first_timestamp: u32,
        payload_type: u8,
        clock_rate: u32,
    ) -> Self {
        RtpSender {
            ssrc,
            payload_type: payload_type & 0x7f,
            clock_rate,
            next_sequence: first_sequence,
            next_timestamp: first_timestamp,
            talkspurt_start: true,
            counters: SenderCounters::default(),
            last_sent: None,
        }
    }

    /// Sends another payload type at `clock_rate` from now on (a renegotiated codec). The
    /// stream stays the same — SSRC, sequence numbers, timestamps and the packet and octet
    /// counts, which RFC 3550 §6.4.1 resets only with a new SSRC — and the next packet starts
    /// a talkspurt; Sender Reports extrapolate from the first packet of the new format.
    pub fn change_format(&mut self, payload_type: u8, clock_rate: u32) {
        self.payload_type = payload_type & 0x7f;
        self.clock_rate = clock_rate;
        self.talkspurt_start = true;
        self.last_sent = None;
    }

    /// The stream's SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The audio payload type.
    pub fn payload_type(&self) -> u8 {
        self.payload_type
    }

    /// The RTP clock rate of the audio payload type.
    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    /// The sequence number the next packet will carry.
    pub fn next_sequence(&self) -> u16 {
        self.next_sequence
    }

    /// The RTP timestamp the next audio packet will carry (the current media time).
    pub fn next_timestamp(&self) -> u32 {
        self.next_timestamp
    }

    /// Cumulative counters.
    pub fn counters(&self) -> SenderCounters {
        self.counters
    }

    /// Builds the next audio packet carrying `samples` samples (per channel) of `payload`.
    ///
    /// The packet gets the current media time as its timestamp and the marker bit if it starts a
    /// talkspurt; the media time then advances by `samples`.
    pub fn audio_packet(&mut self, now: Instant, payload: &[u8], samples: u32) -> Bytes {
        let marker = std::mem::take(&mut self.talkspurt_start);
        let timestamp = self.next_timestamp;
        self.next_timestamp = self.next_timestamp.wrapping_add(samples);
        self.build(now, self.payload_type, timestamp, marker, payload)
    }

    /// Lets `samples` of media time pass without sending audio (silence suppression, DTX, a DTMF
    /// event in progress, hold). The next audio packet starts a new talkspurt.
    pub fn skip(&mut self, samples: u32) {
        self.next_timestamp = self.next_timestamp.wrapping_add(samples);
        self.talkspurt_start = true;
    }

    /// Marks the next audio packet as the start of a talkspurt.
    pub fn start_talkspurt(&mut self) {
        self.talkspurt_start = true;
    }

    /// Builds a packet with an explicit payload type, timestamp and marker, in this stream's
    /// sequence space (RFC 4733 events, video). The audio media time is not changed.
    pub fn packet(
        &mut self,
        now: Instant,
        payload_type: u8,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Bytes {
        self.build(now, payload_type & 0x7f, timestamp, marker, payload)
    }

    /// Builds a packet like [`packet`](Self::packet) numbered `sequence`, which the following
    /// packets continue: a stream forwarded from elsewhere keeps its source's numbering (a
    /// gap there stays a gap, so the receiver sees the loss).
    pub fn packet_numbered(
        &mut self,
        now: Instant,
        sequence: u16,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Bytes {
        self.next_sequence = sequence;
        self.build(now, self.payload_type, timestamp, marker, payload)
    }

    /// What a Sender Report sent at `now` carries, or `None` before the first packet of the
    /// stream's payload type.
    ///
    /// The RTP time is extrapolated at the clock rate from the latest packet of the stream's own
    /// payload type, so the SR's NTP and RTP timestamps describe the same instant (RFC 3550
    /// §6.4.1). Packets of other payload types do not serve as the reference: an RFC 4733 event
    /// keeps its start timestamp for as long as it lasts.
    pub fn sender_info(&self, now: Instant) -> Option<SenderInfo> {
        let (timestamp, sent_at) = self.last_sent?;
        let elapsed = now.saturating_duration_since(sent_at);
        Some(SenderInfo {
            rtp_time: timestamp.wrapping_add(ticks(elapsed, self.clock_rate)),
            packet_count: self.counters.packets as u32,
            octet_count: self.counters.octets as u32,
        })
    }

    fn build(
        &mut self,
        now: Instant,
        payload_type: u8,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Bytes {
        let header = RtpHeader {
            version: RTP_VERSION,
            marker,
            payload_type,
            sequence_number: self.next_sequence,
            timestamp,
            ssrc: self.ssrc,
            ..Default::default()
        };
        self.next_sequence = self.next_sequence.wrapping_add(1);
        self.counters.packets += 1;
        self.counters.octets += payload.len() as u64;
        if payload_type == self.payload_type {
            self.last_sent = Some((timestamp, now));
        }

        let mut out = BytesMut::zeroed(RTP_FIXED_HEADER_LEN + payload.len());
        header
            .marshal_to(&mut out[..RTP_FIXED_HEADER_LEN])
            .expect("a header without CSRCs or extension is exactly the 12 bytes reserved");
        out[RTP_FIXED_HEADER_LEN..].copy_from_slice(payload);
        out.freeze()
    }
}

/// `elapsed` in ticks of a `clock_rate` Hz clock, wrapping at 2^32 like RTP timestamps.
pub(crate) fn ticks(elapsed: Duration, clock_rate: u32) -> u32 {
    (elapsed.as_nanos() * u128::from(clock_rate) / 1_000_000_000) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::packet::parse_rtp;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    #[test]
    fn random_start_differs_by_seed() {
        let a = RtpSender::new(111, 48_000, &mut SmallRng::seed_from_u64(1));
        let b = RtpSender::new(111, 48_000, &mut SmallRng::seed_from_u64(2));
        let a2 = RtpSender::new(111, 48_000, &mut SmallRng::seed_from_u64(1));
        assert_ne!(a.ssrc(), b.ssrc());
        assert_ne!(
            (a.next_sequence(), a.next_timestamp()),
            (b.next_sequence(), b.next_timestamp())
        );
        assert_eq!(a.ssrc(), a2.ssrc());
    }

    #[test]
    fn opus_timestamps_advance_960_per_20ms() {
        let now = Instant::now();
        let mut s = RtpSender::with_start(0x1234_5678, 100, 5000, 111, 48_000);
        let p1 = parse_rtp(&s.audio_packet(now, &[1, 2, 3], 960)).unwrap();
        let p2 = parse_rtp(&s.audio_packet(now, &[4, 5], 960)).unwrap();
        assert_eq!(p1.header.ssrc, 0x1234_5678);
        assert_eq!(p1.header.payload_type, 111);
        assert_eq!(
            (p1.header.sequence_number, p1.header.timestamp),
            (100, 5000)
        );
        assert_eq!(
            (p2.header.sequence_number, p2.header.timestamp),
            (101, 5960)
        );
        assert!(
            p1.header.marker,
            "first packet of the stream starts a talkspurt"
        );
        assert!(!p2.header.marker);
        assert_eq!(p2.payload.as_ref(), &[4, 5]);
        assert_eq!(
            s.counters(),
            SenderCounters {
                packets: 2,
                octets: 5
            }
        );
    }

    /// A renegotiated codec continues the stream: same SSRC and numbering, the counts go on
    /// (else Sender Reports would stop until the new counts passed the old), a talkspurt starts.
    #[test]
    fn a_new_format_continues_the_stream_and_its_counts() {
        let now = Instant::now();
        let mut s = RtpSender::with_start(7, 10, 1000, 111, 48_000);
        s.audio_packet(now, &[1; 40], 960);
        s.audio_packet(now, &[1; 40], 960);
        s.change_format(0, 8_000);
        let p = parse_rtp(&s.audio_packet(now, &[2; 160], 160)).unwrap();
        assert_eq!(
            (
                p.header.ssrc,
                p.header.payload_type,
                p.header.sequence_number
            ),
            (7, 0, 12)
        );
        assert_eq!(p.header.timestamp, 1000 + 2 * 960);
        assert!(p.header.marker);
        assert_eq!((s.clock_rate(), s.payload_type()), (8_000, 0));
        assert_eq!(
            s.counters(),
            SenderCounters {
                packets: 3,
                octets: 240
            }
        );
    }

    #[test]
    fn marker_after_silence_and_timestamp_keeps_time() {
        let now = Instant::now();
        let mut s = RtpSender::with_start(1, 0, 0, 0, 8_000);
        s.audio_packet(now, &[0; 160], 160);
        s.audio_packet(now, &[0; 160], 160);
        s.skip(160);
        s.skip(160);
        let p = parse_rtp(&s.audio_packet(now, &[0; 160], 160)).unwrap();
        assert!(p.header.marker);
        assert_eq!(p.header.timestamp, 640);
        assert_eq!(
            p.header.sequence_number, 2,
            "skipped frames use no sequence numbers"
        );
    }

    #[test]
    fn sequence_and_timestamp_wrap() {
        let now = Instant::now();
        let mut s = RtpSender::with_start(1, 65_535, u32::MAX - 100, 0, 8_000);
        let a = parse_rtp(&s.audio_packet(now, &[0], 160)).unwrap();
        let b = parse_rtp(&s.audio_packet(now, &[0], 160)).unwrap();
        assert_eq!(a.header.sequence_number, 65_535);
        assert_eq!(b.header.sequence_number, 0);
        assert_eq!(b.header.timestamp, 59);
    }

    #[test]
    fn other_packets_share_sequence_but_not_the_audio_clock() {
        let now = Instant::now();
        let mut s = RtpSender::with_start(1, 10, 1000, 0, 8_000);
        s.audio_packet(now, &[0], 160);
        let ev = parse_rtp(&s.packet(now, 101, 1160, true, &[1, 0, 0, 0])).unwrap();
        assert_eq!(ev.header.sequence_number, 11);
        assert_eq!(ev.header.payload_type, 101);
        assert_eq!(s.next_timestamp(), 1160);
    }

    #[test]
    fn sender_info_extrapolates_rtp_time() {
        let t0 = Instant::now();
        let mut s = RtpSender::with_start(1, 0, 1000, 111, 48_000);
        assert_eq!(s.sender_info(t0), None);
        s.audio_packet(t0, &[0; 10], 960);
        let info = s.sender_info(t0 + Duration::from_millis(50)).unwrap();
        assert_eq!(info.rtp_time, 1000 + 2400);
        assert_eq!((info.packet_count, info.octet_count), (1, 10));
        // A telephone event 40 ms later, stamped with its start time, does not move the reference.
        s.packet(
            t0 + Duration::from_millis(40),
            101,
            1960,
            true,
            &[1, 0, 0, 0],
        );
        let info = s.sender_info(t0 + Duration::from_millis(50)).unwrap();
        assert_eq!(info.rtp_time, 1000 + 2400);
        assert_eq!((info.packet_count, info.octet_count), (2, 14));
    }
}
