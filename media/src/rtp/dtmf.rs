//! DTMF as RTP telephone events (RFC 4733): the event payload, a sender and a receiver.
//!
//! # Sending
//! [`DtmfSender`] is sans-IO. Digits are queued with a duration; the caller, on every media tick,
//! drains [`DtmfSender::poll_packet`] (which builds packets through the stream's [`RtpSender`], so
//! events share its SSRC and sequence numbers) and, while [`DtmfSender::is_sending`] is true,
//! sends no voice but calls [`RtpSender::skip`] for each frame so the media clock keeps time.
//!
//! An event takes the current media time ([`RtpSender::next_timestamp`]) as its timestamp. Its
//! packets go out every `update_interval` (50 ms) from the start, each reporting the duration
//! elapsed so far — the first with the marker bit — and at the event's end three packets with the
//! E bit and the final duration, `end_spacing` (20 ms) apart. Durations are in the event's clock
//! rate, which is the voice codec's (8 000 with G.711, 48 000 with Opus). An event longer than the
//! 16-bit duration field (1.36 s at 48 kHz) is split into segments (§2.5.1.3): a segment that
//! reaches 0xFFFF is reported at 0xFFFF and the event continues with a timestamp 0xFFFF later,
//! without the marker. Queued digits are separated by `inter_digit_gap`, during which voice flows.
//!
//! # Receiving
//! [`DtmfReceiver`] turns telephone-event packets into one [`DtmfEvent::Began`] and one
//! [`DtmfEvent::Ended`] per event. An event is identified by its timestamp, so a lost first packet
//! (no marker seen) still begins it, repeated end packets and late updates are ignored, the next
//! segment of a long event continues it, and a duration field that wraps past 0xFFFF keeps adding
//! up. When an event's end packets are all lost, the next event ends it with the duration last
//! seen. Only the last event block of a packet is read (earlier blocks are RFC 4733 §2.5.1.5
//! redundancy for events already reported).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::packet::RtpPacket;
use super::sender::{ticks, RtpSender};

/// The largest value of the 16-bit duration field.
const MAX_SEGMENT: u32 = 0xffff;

/// A DTMF key (RFC 4733 §3.2 events 0–15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DtmfDigit {
    /// `0`
    D0 = 0,
    /// `1`
    D1 = 1,
    /// `2`
    D2 = 2,
    /// `3`
    D3 = 3,
    /// `4`
    D4 = 4,
    /// `5`
    D5 = 5,
    /// `6`
    D6 = 6,
    /// `7`
    D7 = 7,
    /// `8`
    D8 = 8,
    /// `9`
    D9 = 9,
    /// `*`
    Star = 10,
    /// `#`
    Pound = 11,
    /// `A`
    A = 12,
    /// `B`
    B = 13,
    /// `C`
    C = 14,
    /// `D`
    D = 15,
}

const DIGITS: [DtmfDigit; 16] = [
    DtmfDigit::D0,
    DtmfDigit::D1,
    DtmfDigit::D2,
    DtmfDigit::D3,
    DtmfDigit::D4,
    DtmfDigit::D5,
    DtmfDigit::D6,
    DtmfDigit::D7,
    DtmfDigit::D8,
    DtmfDigit::D9,
    DtmfDigit::Star,
    DtmfDigit::Pound,
    DtmfDigit::A,
    DtmfDigit::B,
    DtmfDigit::C,
    DtmfDigit::D,
];
const DIGIT_CHARS: &[u8; 16] = b"0123456789*#ABCD";

impl DtmfDigit {
    /// The key for `0`–`9`, `*`, `#`, `A`–`D` (letters in either case).
    pub fn from_char(c: char) -> Option<Self> {
        let upper = c.to_ascii_uppercase();
        DIGIT_CHARS
            .iter()
            .position(|&d| char::from(d) == upper)
            .map(|i| DIGITS[i])
    }

    /// The key's character.
    pub fn to_char(self) -> char {
        char::from(DIGIT_CHARS[self as usize])
    }

    /// The RFC 4733 event code.
    pub fn event_code(self) -> u8 {
        self as u8
    }

    /// The key for an RFC 4733 event code, if it is one of the 16 DTMF events.
    pub fn from_event_code(code: u8) -> Option<Self> {
        DIGITS.get(usize::from(code)).copied()
    }
}

/// Why DTMF input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DtmfError {
    /// A telephone-event payload shorter than one 4-byte block.
    #[error("telephone-event payload of {0} bytes")]
    TooShort(usize),
    /// A character that is not a DTMF key.
    #[error("{0:?} is not a DTMF key")]
    NotADigit(String),
    /// A dtmf-relay body without a Signal line.
    #[error("dtmf-relay body has no Signal")]
    MissingSignal,
    /// A dtmf-relay Duration that is not a number of milliseconds.
    #[error("dtmf-relay Duration {0:?} is not a number of milliseconds")]
    BadDuration(String),
}

/// One RFC 4733 event block (§2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// The event code (0–15 for DTMF).
    pub event: u8,
    /// The E bit: this is the event's final packet.
    pub end: bool,
    /// Power level in −dBm0 (0–63).
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// The last event block of a telephone-event payload.
    pub fn parse(payload: &[u8]) -> Result<Self, DtmfError> {
        if payload.len() < 4 {
            return Err(DtmfError::TooShort(payload.len()));
        }
        let start = (payload.len() / 4 - 1) * 4;
        let b = &payload[start..start + 4];
        Ok(TelephoneEvent {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3f,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// The 4-byte block.
    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3f),
            d[0],
            d[1],
        ]
    }
}

/// Settings of a [`DtmfSender`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfSenderConfig {
    /// The negotiated `telephone-event` payload type.
    pub payload_type: u8,
    /// Its clock rate: the voice codec's (8 000 for G.711, 48 000 for Opus).
    pub clock_rate: u32,
    /// Time between packets of an event.
    pub update_interval: Duration,
    /// How many times the final packet is sent.
    pub end_repetitions: u8,
    /// Time between the repetitions of the final packet.
    pub end_spacing: Duration,
    /// Silence between queued digits.
    pub inter_digit_gap: Duration,
    /// Power level in −dBm0.
    pub volume: u8,
}

impl DtmfSenderConfig {
    /// RFC 4733's customary timing for `payload_type` at `clock_rate`.
    pub fn new(payload_type: u8, clock_rate: u32) -> Self {
        DtmfSenderConfig {
            payload_type,
            clock_rate,
            update_interval: Duration::from_millis(50),
            end_repetitions: 3,
            end_spacing: Duration::from_millis(20),
            inter_digit_gap: Duration::from_millis(50),
            volume: 10,
        }
    }
}

/// A packet waiting to be built.
#[derive(Debug, Clone, Copy)]
struct Pending {
    timestamp: u32,
    marker: bool,
    event: TelephoneEvent,
}

/// The event being sent.
#[derive(Debug, Clone, Copy)]
struct Outgoing {
    digit: DtmfDigit,
    start: Instant,
    length: Duration,
    total: u32,
    segment_timestamp: u32,
    segment_offset: u32,
    updates_sent: u32,
    ends_sent: u8,
    next_end: Option<Instant>,
}

/// Sends queued digits as RFC 4733 events. See the module docs for the driving loop.
#[derive(Debug, Clone)]
pub struct DtmfSender {
    config: DtmfSenderConfig,
    queue: VecDeque<(DtmfDigit, Duration)>,
    queued_at: Option<Instant>,
    current: Option<Outgoing>,
    pending: VecDeque<Pending>,
    gap_until: Option<Instant>,
}

impl DtmfSender {
    /// A sender with `config` and nothing queued.
    pub fn new(config: DtmfSenderConfig) -> Self {
        DtmfSender {
            config: DtmfSenderConfig {
                update_interval: config.update_interval.max(Duration::from_millis(1)),
                ..config
            },
            queue: VecDeque::new(),
            queued_at: None,
            current: None,
            pending: VecDeque::new(),
            gap_until: None,
        }
    }

    /// Queues `digit` to be sent for `duration`.
    pub fn queue_digit(&mut self, now: Instant, digit: DtmfDigit, duration: Duration) {
        self.queue.push_back((digit, duration));
        self.queued_at.get_or_insert(now);
    }

    /// Queues every key of `digits` (`0`–`9`, `*`, `#`, `A`–`D`) for `duration` each; nothing is
    /// queued if any character is not a key.
    pub fn queue_digits(
        &mut self,
        now: Instant,
        digits: &str,
        duration: Duration,
    ) -> Result<(), DtmfError> {
        let keys = digits
            .chars()
            .map(|c| DtmfDigit::from_char(c).ok_or_else(|| DtmfError::NotADigit(c.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        for key in keys {
            self.queue_digit(now, key, duration);
        }
        Ok(())
    }

    /// Whether an event is in progress: voice must pause (and the media clock be advanced with
    /// [`RtpSender::skip`]).
    pub fn is_sending(&self) -> bool {
        self.current.is_some() || !self.pending.is_empty()
    }

    /// Digits waiting to start.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// When [`DtmfSender::poll_packet`] next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if let Some(out) = &self.current {
            return Some(match out.next_end {
                Some(t) => t,
                None => self.next_update(out).min(out.start + out.length),
            });
        }
        if self.queue.is_empty() {
            return None;
        }
        match (self.queued_at, self.gap_until) {
            (Some(q), Some(g)) => Some(q.max(g)),
            (q, g) => q.or(g),
        }
    }

    fn next_update(&self, out: &Outgoing) -> Instant {
        out.start + self.config.update_interval * (out.updates_sent + 1)
    }

    /// The next event packet due at `now`, built through `rtp` (same SSRC and sequence space).
    /// Call until it returns `None`.
    pub fn poll_packet(&mut self, now: Instant, rtp: &mut RtpSender) -> Option<Bytes> {
        if self.pending.is_empty() {
            self.advance(now, rtp);
        }
        let p = self.pending.pop_front()?;
        Some(rtp.packet(
            now,
            self.config.payload_type,
            p.timestamp,
            p.marker,
            &p.event.to_bytes(),
        ))
    }

    fn advance(&mut self, now: Instant, rtp: &RtpSender) {
        if self.current.is_none() {
            if self.gap_until.is_some_and(|g| now < g) {
                return;
            }
            let Some((digit, length)) = self.queue.pop_front() else {
                self.queued_at = None;
                return;
            };
            self.queued_at = if self.queue.is_empty() {
                None
            } else {
                Some(now)
            };
            self.current = Some(Outgoing {
                digit,
                start: now,
                length,
                total: ticks(length, self.config.clock_rate).max(1),
                segment_timestamp: rtp.next_timestamp(),
                segment_offset: 0,
                updates_sent: 0,
                ends_sent: 0,
                next_end: None,
            });
        }
        let Some(mut out) = self.current else { return };
        if let Some(next_end) = out.next_end {
            if now >= next_end {
                self.push_end(&mut out, now);
            }
        } else if now >= out.start + out.length {
            let total = out.total;
            self.roll_segments(&mut out, total);
            self.push_end(&mut out, now);
        } else if now >= self.next_update(&out) {
            let interval = self.config.update_interval;
            let k = ((now - out.start).as_nanos() / interval.as_nanos()) as u32;
            let elapsed = ticks(interval * k, self.config.clock_rate).min(out.total);
            self.roll_segments(&mut out, elapsed);
            let marker = out.updates_sent == 0;
            out.updates_sent = k;
            self.push(
                &out,
                marker,
                false,
                elapsed.saturating_sub(out.segment_offset),
            );
        }
        self.current = (out.ends_sent < self.config.end_repetitions.max(1)).then_some(out);
        if self.current.is_none() {
            self.gap_until = Some(now + self.config.inter_digit_gap);
            if !self.queue.is_empty() {
                self.queued_at = Some(now);
            }
        }
    }

    /// Closes full segments until `elapsed` fits in the current one (§2.5.1.3).
    fn roll_segments(&mut self, out: &mut Outgoing, elapsed: u32) {
        while elapsed.saturating_sub(out.segment_offset) > MAX_SEGMENT {
            let first = out.updates_sent == 0 && out.segment_offset == 0;
            self.push(out, first, false, MAX_SEGMENT);
            out.updates_sent = out.updates_sent.max(1);
            out.segment_offset += MAX_SEGMENT;
            out.segment_timestamp = out.segment_timestamp.wrapping_add(MAX_SEGMENT);
        }
    }

    fn push_end(&mut self, out: &mut Outgoing, now: Instant) {
        let marker = out.updates_sent == 0 && out.ends_sent == 0 && out.segment_offset == 0;
        self.push(
            out,
            marker,
            true,
            out.total.saturating_sub(out.segment_offset),
        );
        out.ends_sent += 1;
        out.next_end = Some(now + self.config.end_spacing);
    }

    fn push(&mut self, out: &Outgoing, marker: bool, end: bool, duration: u32) {
        self.pending.push_back(Pending {
            timestamp: out.segment_timestamp,
            marker,
            event: TelephoneEvent {
                event: out.digit.event_code(),
                end,
                volume: self.config.volume,
                duration: duration.min(MAX_SEGMENT) as u16,
            },
        });
    }
}

/// A digit event from a [`DtmfReceiver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfEvent {
    /// A key went down (reported once per event, on its first packet to arrive).
    Began {
        /// The key.
        digit: DtmfDigit,
        /// The event's RTP timestamp.
        timestamp: u32,
    },
    /// The key came up (on the first end packet, or when the next event began without one).
    Ended {
        /// The key.
        digit: DtmfDigit,
        /// The event's RTP timestamp.
        timestamp: u32,
        /// How long it was held.
        duration: Duration,
    },
}

/// Counters of a [`DtmfReceiver`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DtmfReceiverCounters {
    /// Event packets taken in.
    pub packets: u64,
    /// Packets that repeated an ended event or arrived after a newer one.
    pub stale: u64,
    /// Packets with events other than the 16 DTMF keys.
    pub unsupported: u64,
    /// Payloads too short to hold an event.
    pub malformed: u64,
}

/// The event being received.
#[derive(Debug, Clone, Copy)]
struct Incoming {
    digit: DtmfDigit,
    timestamp: u32,
    segment_timestamp: u32,
    /// Duration of completed segments and wraps of the duration field.
    accumulated: u64,
    last_duration: u16,
    ended: bool,
}

impl Incoming {
    fn total(&self) -> u64 {
        self.accumulated + u64::from(self.last_duration)
    }
}

/// Turns received telephone-event packets into digit events.
#[derive(Debug, Clone)]
pub struct DtmfReceiver {
    clock_rate: u32,
    current: Option<Incoming>,
    events: VecDeque<DtmfEvent>,
    counters: DtmfReceiverCounters,
}

impl DtmfReceiver {
    /// A receiver for events at `clock_rate`.
    pub fn new(clock_rate: u32) -> Self {
        DtmfReceiver {
            clock_rate,
            current: None,
            events: VecDeque::new(),
            counters: DtmfReceiverCounters::default(),
        }
    }

    /// Takes in a packet of the negotiated telephone-event payload type.
    pub fn handle_packet(&mut self, packet: &RtpPacket) -> Result<(), DtmfError> {
        self.counters.packets += 1;
        let ev = match TelephoneEvent::parse(&packet.payload) {
            Ok(ev) => ev,
            Err(e) => {
                self.counters.malformed += 1;
                return Err(e);
            }
        };
        let Some(digit) = DtmfDigit::from_event_code(ev.event) else {
            self.counters.unsupported += 1;
            return Ok(());
        };
        let ts = packet.header.timestamp;
        if let Some(cur) = self.current.as_mut() {
            let same_key = cur.digit == digit;
            if ts == cur.segment_timestamp && same_key {
                if cur.ended {
                    self.counters.stale += 1;
                    return Ok(());
                }
                if cur.last_duration > 0xc000 && ev.duration < 0x4000 {
                    // The sender let the 16-bit duration wrap instead of starting a segment.
                    cur.accumulated += 0x1_0000;
                    cur.last_duration = ev.duration;
                } else {
                    cur.last_duration = cur.last_duration.max(ev.duration);
                }
                if ev.end {
                    self.end_current();
                }
                return Ok(());
            }
            let ahead = ts.wrapping_sub(cur.segment_timestamp);
            if ahead >= 0x8000_0000 || (ts == cur.segment_timestamp && !same_key) {
                self.counters.stale += 1;
                return Ok(());
            }
            let continues = same_key
                && !cur.ended
                && !packet.header.marker
                && ahead <= MAX_SEGMENT + 1
                && u64::from(ahead) >= u64::from(cur.last_duration);
            if continues {
                cur.accumulated += u64::from(ahead);
                cur.segment_timestamp = ts;
                cur.last_duration = ev.duration;
                if ev.end {
                    self.end_current();
                }
                return Ok(());
            }
            if !cur.ended {
                self.end_current();
            }
        }
        self.current = Some(Incoming {
            digit,
            timestamp: ts,
            segment_timestamp: ts,
            accumulated: 0,
            last_duration: ev.duration,
            ended: false,
        });
        self.events.push_back(DtmfEvent::Began {
            digit,
            timestamp: ts,
        });
        if ev.end {
            self.end_current();
        }
        Ok(())
    }

    fn end_current(&mut self) {
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        cur.ended = true;
        let duration = if self.clock_rate == 0 {
            Duration::ZERO
        } else {
            Duration::from_nanos(cur.total() * 1_000_000_000 / u64::from(self.clock_rate))
        };
        self.events.push_back(DtmfEvent::Ended {
            digit: cur.digit,
            timestamp: cur.timestamp,
            duration,
        });
    }

    /// The packets that follow belong to a new stream (the peer's SSRC changed): an event still
    /// going ends here, and event timestamps are compared afresh — a new stream numbers its
    /// timestamps from a base of its own (RFC 3550 §8.2), so its events must not be taken for
    /// old ones of the last stream.
    pub fn new_stream(&mut self) {
        if self.current.as_ref().is_some_and(|cur| !cur.ended) {
            self.end_current();
        }
        self.current = None;
    }

    /// The next digit event.
    pub fn poll_event(&mut self) -> Option<DtmfEvent> {
        self.events.pop_front()
    }

    /// Counters.
    pub fn counters(&self) -> DtmfReceiverCounters {
        self.counters
    }
}

#[cfg(test)]
#[path = "dtmf_tests.rs"]
mod tests;
