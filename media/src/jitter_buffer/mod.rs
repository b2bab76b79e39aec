//! An adaptive audio jitter buffer: packets in at network time, frames out at playout time.
//!
//! The buffer is sans-IO: it never reads the clock. The network side calls
//! [`JitterBuffer::push`] with each received packet and the time it arrived; the playout clock
//! (the audio device, or a timer in headless runs) calls [`JitterBuffer::pop`] whenever it
//! needs the next piece of audio, and plays what it gets for [`Playout::samples`] before it
//! pops again ([`JitterBuffer::next_pop`] says when that is). The buffer only sees RTP
//! sequence numbers, timestamps, the marker bit and opaque payload bytes; decoding,
//! concealment and comfort noise are the caller's.
//!
//! ```text
//!  network ──push(packet, now)──► [ reorder · dedupe · measure ] ──pop(now)──► decoder
//!                                   Packet | Conceal { next } | Silence | Wait
//! ```
//!
//! # The contract
//!
//! - **Order.** Packets come out in sequence order (wrap-safe), each at most once. A
//!   duplicate, or a packet that arrives after its turn has passed, is dropped and counted.
//! - **Timeline.** The buffer keeps a playout position in media time. Each pop moves it by
//!   the media time it returned, so a packet plays a fixed time after its media time: the
//!   buffer's *delay*. A frame whose packet is missing when its turn comes is
//!   [`Playout::Conceal`]ed, with the following packet attached when it directly follows,
//!   for Opus in-band FEC (when the delay is below target the position stands still
//!   instead, giving the packet one more frame to arrive). A gap in the sender's timestamps
//!   with no sequence number missing is the sender's silence (DTX, VAD) and comes out as
//!   [`Playout::Silence`]; while nothing at all is buffered the buffer cannot tell a silence
//!   from a loss and conceals (counted as underruns), which decoders fade into silence.
//! - **Delay.** The target delay is the 95th percentile of recent relative transit delays
//!   (arrival time minus media time, relative to the fastest recent packet) plus one frame,
//!   clamped to `[min_delay, max_delay]`; it rises at once and falls back over seconds.
//!   On a clean network it sits at the minimum.
//! - **Start.** Playout waits for a second packet to confirm the stream (a lone stray must
//!   not play), then starts with whichever of the two has its turn nearer the target, so the
//!   delay starts within half a frame of it: a first packet overdue by that wait is
//!   dropped, unless it came slower than the second (jitter, which the deeper start suits).
//! - **Steering.** When the delay has stayed more than three quarters of a frame above the
//!   target for half a second, a packet is dropped: the one due if it is quiet
//!   ([`BufferedPacket::quiet`]), else the first quiet one within the next 1.5 s, else
//!   whatever is due then (at once when the excess passes three frames). When the delay falls
//!   half a frame below the target, a concealment frame is inserted — at once when the buffer
//!   is empty anyway or the packet due is quiet, after 100 ms otherwise. Silences are
//!   shortened or lengthened instead, for free. This absorbs sender clock drift and follows
//!   the target without oscillating. The delay does not stay above `max_delay`: past it,
//!   packets are dropped at once.
//! - **Discontinuities.** A packet whose sequence number or timestamp does not fit the stream
//!   (sender restart, new SSRC behind a relay, timestamp jump) is held back; if the next
//!   packet continues it, the new stream is spliced after the old one — the old audio plays
//!   out, the new stream follows at the current delay — otherwise it is discarded as stray.
//!   A talkspurt start (marker bit) that arrives late after a silence is played anyway, the
//!   silence absorbing the lateness. [`JitterBuffer::reset`] starts over explicitly (call it
//!   when the SSRC changes).
//!
//! All of this is deterministic given the inputs, so the tests in `media/tests/` run minutes
//! of audio over the seeded network of [`crate::netsim`] in seconds.

mod delay;
mod playout;
mod sequence;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::debug;

use delay::DelayEstimator;
use sequence::{Seen, SeenWindow, StreamMap, MAX_DROPOUT, MAX_MISORDER};

/// A packet whose transit differs from the stream's by more than this (microseconds) does
/// not belong to the stream's timeline.
const RESYNC_TOLERANCE_US: i64 = 1_000_000;
/// Until two packets in sequence have shown the packet duration, packets this many sequence
/// numbers apart may show it.
const FRAME_LEARNING_SPAN: i64 = 3;
/// Most packets the buffer holds; more than a second of the shortest frames past
/// `max_delay`, which consistent streams never reach.
const MAX_QUEUE: usize = 1024;

/// How a [`JitterBuffer`] is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterBufferConfig {
    /// RTP clock rate of the stream, in Hz (48 000 for Opus, 8 000 for G.711). At least 1000.
    pub clock_rate: u32,
    /// Packet duration assumed until the packets tell (their `samples`, or the timestamps of
    /// the first two in sequence), and the length of concealment and silence frames until
    /// then. 2.5 ms to 120 ms; 20 ms by default (set it from the SDP `ptime`).
    pub frame: Duration,
    /// Lowest target delay; 20 ms by default.
    pub min_delay: Duration,
    /// Highest target delay, and the most the buffer's delay may reach; 200 ms by default.
    pub max_delay: Duration,
}

impl JitterBufferConfig {
    /// The default setup for a stream at `clock_rate` Hz: 20 ms frames, 20–200 ms delay.
    pub fn new(clock_rate: u32) -> Self {
        JitterBufferConfig {
            clock_rate,
            frame: Duration::from_millis(20),
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
        }
    }

    /// The same setup with the assumed frame duration `frame`.
    pub fn with_frame(mut self, frame: Duration) -> Self {
        self.frame = frame;
        self
    }

    /// The same setup with target delays between `min` and `max`.
    pub fn with_delay_range(mut self, min: Duration, max: Duration) -> Self {
        self.min_delay = min;
        self.max_delay = max;
        self
    }

    /// The configuration clamped to workable values: clock rate ≥ 1000 Hz, frame 2.5–120 ms,
    /// `min_delay` ≤ `max_delay` ≤ 10 s.
    fn sanitized(self) -> Self {
        let frame = self
            .frame
            .clamp(Duration::from_micros(2_500), Duration::from_millis(120));
        let max_delay = self.max_delay.min(Duration::from_secs(10));
        JitterBufferConfig {
            clock_rate: self.clock_rate.max(1000),
            frame,
            min_delay: self.min_delay.min(max_delay),
            max_delay,
        }
    }
}

impl Default for JitterBufferConfig {
    /// Opus: 48 kHz, 20 ms frames, 20–200 ms delay.
    fn default() -> Self {
        JitterBufferConfig::new(48_000)
    }
}

/// One received RTP packet, as far as the buffer cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferedPacket {
    /// RTP sequence number.
    pub sequence: u16,
    /// RTP timestamp, in clock-rate units.
    pub timestamp: u32,
    /// RTP marker bit: for audio, the first packet of a talkspurt.
    pub marker: bool,
    /// The caller knows this packet is quiet (an RFC 6464 audio level well below speech, or
    /// its VAD bit clear): the buffer drops or stretches around quiet packets first when it
    /// changes its delay. `false` when unknown.
    pub quiet: bool,
    /// The packet's duration in samples, when the caller can tell from the payload (Opus:
    /// `opus_packet_get_nb_samples`). `None`: the buffer learns it from the timestamps,
    /// which only show a new packet size once the packet after it has arrived.
    pub samples: Option<u32>,
    /// The payload, untouched.
    pub payload: Bytes,
}

impl BufferedPacket {
    /// A packet that is not known to be quiet, of unknown duration.
    pub fn new(sequence: u16, timestamp: u32, marker: bool, payload: impl Into<Bytes>) -> Self {
        BufferedPacket {
            sequence,
            timestamp,
            marker,
            quiet: false,
            samples: None,
            payload: payload.into(),
        }
    }

    /// The same packet with its duration known to be `samples`.
    pub fn with_samples(mut self, samples: u32) -> Self {
        self.samples = Some(samples);
        self
    }

    /// The same packet, marked quiet or not.
    pub fn with_quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }
}

/// What to play next, and for how long.
///
/// Every variant carries `samples`: how much audio (at the clock rate) it stands for. Play
/// that much, then pop again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// Decode and play this packet. `samples` is its duration: [`BufferedPacket::samples`]
    /// when given, else as the timestamps tell it.
    Packet {
        /// The packet.
        packet: BufferedPacket,
        /// Its duration.
        samples: u32,
    },
    /// This frame's packet is missing (lost, or not here yet): conceal `samples` of audio
    /// with the decoder's packet-loss concealment. When `next` is present it is the packet
    /// that immediately follows the missing frame; a codec with in-band FEC (Opus) can
    /// rebuild the missing frame from it. `next` stays in the buffer and plays on its turn.
    Conceal {
        /// How much to conceal.
        samples: u32,
        /// The packet right after the missing frame, when it has arrived.
        next: Option<BufferedPacket>,
    },
    /// The sender sent nothing for this stretch (DTX or VAD silence): play silence or
    /// comfort noise.
    Silence {
        /// How much silence.
        samples: u32,
    },
    /// Nothing to play yet: no packet so far, or the first ones are still filling the buffer
    /// up to the target delay. Play silence.
    Wait {
        /// How much silence.
        samples: u32,
    },
}

impl Playout {
    /// How much audio this stands for, in clock-rate samples.
    pub fn samples(&self) -> u32 {
        match self {
            Playout::Packet { samples, .. }
            | Playout::Conceal { samples, .. }
            | Playout::Silence { samples }
            | Playout::Wait { samples } => *samples,
        }
    }
}

/// What the buffer did so far, and where its delay stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterBufferStats {
    /// Packets handed to [`JitterBuffer::push`].
    pub received: u64,
    /// Packets returned by [`JitterBuffer::pop`] as [`Playout::Packet`].
    pub played: u64,
    /// Packets that arrived after their turn (or too far behind to tell), dropped.
    pub late: u64,
    /// Packets received before, dropped.
    pub duplicate: u64,
    /// Sequence numbers whose turn passed without their packet (late arrivals included).
    pub lost: u64,
    /// [`Playout::Conceal`] frames returned, for any reason.
    pub concealed: u64,
    /// Of the concealed frames, those popped with nothing at all buffered: a stall, the
    /// end of a loss burst, or the start of a sender silence the buffer cannot yet see.
    pub underruns: u64,
    /// Frames (concealment or silence) added to raise the delay: the playout position
    /// stood still for them.
    pub inserted: u64,
    /// Packets dropped unplayed to lower the delay (clock drift, jitter that ended,
    /// catching up past `max_delay`, a first packet overdue at the start).
    pub dropped: u64,
    /// Frames of sender silence skipped to lower the delay.
    pub silence_skipped: u64,
    /// New streams spliced in, plus explicit [`JitterBuffer::reset`]s.
    pub resyncs: u64,
    /// Packets discarded without a turn: strays that matched no stream, packets flushed
    /// by a reset, packets over the buffer's capacity.
    pub discarded: u64,
    /// The delay the buffer aims for.
    pub target_delay: Duration,
    /// The buffer's current delay: how long the fastest recent packet waits between arrival
    /// and playout (others wait less by how much later they came). Add the network's
    /// one-way delay and the device latency for mouth-to-ear. Measured at the last pop.
    pub current_delay: Duration,
    /// Media time buffered ahead of the playout position.
    pub buffer_level: Duration,
    /// RFC 3550 interarrival jitter of the received packets.
    pub jitter: Duration,
}

/// A buffered packet with its mapped timestamp.
#[derive(Debug, Clone)]
struct Entry {
    ts: i64,
    /// Arrival time minus media time, microseconds.
    transit: i64,
    packet: BufferedPacket,
}

/// A packet that does not fit the current stream, waiting for a second one to confirm it.
#[derive(Debug, Clone)]
struct Candidate {
    packet: BufferedPacket,
    arrival: i64,
}

/// The adaptive jitter buffer. See the [module docs](self) for the contract.
///
/// Methods: [`push`](Self::push) (network input), [`pop`](Self::pop) (playout), and the
/// getters [`stats`](Self::stats), [`target_delay`](Self::target_delay),
/// [`current_delay`](Self::current_delay), [`next_pop`](Self::next_pop).
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    config: JitterBufferConfig,
    clock_rate: i64,
    min_delay_us: i64,
    max_delay_us: i64,
    /// Time zero of the microsecond clock; the first instant the buffer saw.
    epoch: Option<Instant>,
    /// The current stream's numbering; `None` before the first packet.
    stream: Option<StreamMap>,
    candidate: Option<Candidate>,
    seen: SeenWindow,
    /// Buffered packets by mapped sequence number.
    queue: BTreeMap<i64, Entry>,
    highest_seq: i64,
    /// Mapped timestamp of the packet with `highest_seq`.
    highest_ts: i64,
    /// The lowest sequence number that may still play.
    next_seq: i64,
    /// Mapped media time of the next frame to play; `None` until playout starts.
    play_ts: Option<i64>,
    /// Playout has started but its first packet has not played yet.
    prerolling: bool,
    /// Packets accepted since the stream started; playout waits a little for a second one,
    /// so that a stray packet arriving first does not play.
    stream_packets: u64,
    /// Mapped `(sequence, timestamp)` of the last packet played.
    last_played: Option<(i64, i64)>,
    /// Packet duration in samples, learned from the timestamps.
    frame_samples: i64,
    /// Whether two packets in sequence have shown the packet duration.
    frame_learned: bool,
    estimator: DelayEstimator,
    /// Delay at the last pop, microseconds.
    delay_us: i64,
    /// Since when the delay has been above the drop threshold / below the insert threshold.
    over_since: Option<i64>,
    under_since: Option<i64>,
    next_pop: Option<Instant>,
    stats: JitterBufferStats,
}

impl JitterBuffer {
    /// An empty buffer. Out-of-range configuration values are clamped (see
    /// [`JitterBufferConfig`]); [`config`](Self::config) returns what is in effect.
    pub fn new(config: JitterBufferConfig) -> Self {
        let config = config.sanitized();
        let clock_rate = i64::from(config.clock_rate);
        let frame_samples = (config.frame.as_micros() as i64 * clock_rate / 1_000_000).max(1);
        let min_delay_us = config.min_delay.as_micros() as i64;
        JitterBuffer {
            config,
            clock_rate,
            min_delay_us,
            max_delay_us: config.max_delay.as_micros() as i64,
            epoch: None,
            stream: None,
            candidate: None,
            seen: SeenWindow::new(),
            queue: BTreeMap::new(),
            highest_seq: 0,
            highest_ts: 0,
            next_seq: 0,
            play_ts: None,
            prerolling: false,
            stream_packets: 0,
            last_played: None,
            frame_samples,
            frame_learned: false,
            estimator: DelayEstimator::new(min_delay_us),
            delay_us: 0,
            over_since: None,
            under_since: None,
            next_pop: None,
            stats: JitterBufferStats::default(),
        }
    }

    /// The configuration in effect.
    pub fn config(&self) -> JitterBufferConfig {
        self.config
    }

    /// Takes a packet that arrived at `now`. Never fails: duplicates, late packets and
    /// strays are dropped and counted in [`stats`](Self::stats).
    pub fn push(&mut self, packet: BufferedPacket, now: Instant) {
        let arrival = self.micros(now);
        self.stats.received += 1;
        let Some(stream) = self.stream else {
            self.start_stream(packet, arrival);
            return;
        };
        let (seq, ts) = stream.map(packet.sequence, packet.timestamp);
        if !self.fits_stream(seq, ts, arrival) {
            self.consider_candidate(packet, arrival);
            return;
        }
        if self.candidate.take().is_some() {
            self.stats.discarded += 1;
        }
        self.accept(packet, seq, ts, arrival);
    }

    /// Accepts a packet of the current stream, mapping its numbers.
    fn push_mapped(&mut self, packet: BufferedPacket, arrival: i64) {
        if let Some(stream) = self.stream {
            let (seq, ts) = stream.map(packet.sequence, packet.timestamp);
            self.accept(packet, seq, ts, arrival);
        }
    }

    /// Forgets the stream: flushes buffered packets and starts over with the next packet,
    /// keeping the delay target learned so far (it describes the network). Call it when the
    /// RTP SSRC changes.
    pub fn reset(&mut self) {
        self.stats.discarded += self.queue.len() as u64;
        self.stats.resyncs += 1;
        self.queue.clear();
        self.stream = None;
        self.candidate = None;
        self.seen = SeenWindow::new();
        self.play_ts = None;
        self.prerolling = false;
        self.last_played = None;
        self.over_since = None;
        self.under_since = None;
        self.estimator.forget_transits();
    }

    /// Counters and the delay figures.
    pub fn stats(&self) -> JitterBufferStats {
        JitterBufferStats {
            target_delay: self.duration_us(self.estimator.target()),
            current_delay: self.current_delay(),
            buffer_level: self.buffer_level(),
            jitter: self.duration_us(self.estimator.jitter()),
            ..self.stats
        }
    }

    /// The delay the buffer aims for.
    pub fn target_delay(&self) -> Duration {
        self.duration_us(self.estimator.target())
    }

    /// The buffer's delay at the last pop (see [`JitterBufferStats::current_delay`]).
    pub fn current_delay(&self) -> Duration {
        self.duration_us(self.delay_us)
    }

    /// When the audio returned by the last pop ends: the time to pop again. `None` before
    /// the first pop.
    pub fn next_pop(&self) -> Option<Instant> {
        self.next_pop
    }

    /// How many packets are buffered.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no packet is buffered.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The first packet of the first stream, or of a stream after a reset.
    fn start_stream(&mut self, packet: BufferedPacket, arrival: i64) {
        let (seq, ts) = (i64::from(packet.sequence), i64::from(packet.timestamp));
        self.stream = Some(StreamMap::anchored(
            packet.sequence,
            packet.timestamp,
            seq,
            ts,
        ));
        self.highest_seq = seq;
        self.highest_ts = ts;
        self.next_seq = seq;
        self.stream_packets = 0;
        self.accept(packet, seq, ts, arrival);
    }

    /// Whether a packet with mapped numbers `seq`/`ts` arriving at `arrival` belongs to the
    /// current stream.
    fn fits_stream(&self, seq: i64, ts: i64, arrival: i64) -> bool {
        let ahead = seq - self.highest_seq;
        if !(-MAX_MISORDER..=MAX_DROPOUT).contains(&ahead) {
            return false;
        }
        match self.estimator.base() {
            Some(base) => (arrival - self.ts_us(ts) - base).abs() <= RESYNC_TOLERANCE_US,
            None => true,
        }
    }

    /// A packet that does not fit: hold it, or splice it in with the one held before.
    fn consider_candidate(&mut self, packet: BufferedPacket, arrival: i64) {
        match self.candidate.take() {
            Some(held) if self.continues(&held, &packet, arrival) => {
                self.splice(held, packet, arrival);
            }
            Some(_) => {
                self.stats.discarded += 1;
                self.candidate = Some(Candidate { packet, arrival });
            }
            None => self.candidate = Some(Candidate { packet, arrival }),
        }
    }

    /// Whether `packet`, arriving at `arrival`, continues the stream `held` started.
    fn continues(&self, held: &Candidate, packet: &BufferedPacket, arrival: i64) -> bool {
        let ahead = i64::from(packet.sequence.wrapping_sub(held.packet.sequence) as i16);
        let media = i64::from(packet.timestamp.wrapping_sub(held.packet.timestamp) as i32);
        ahead != 0
            && (-MAX_MISORDER..=MAX_DROPOUT).contains(&ahead)
            && (arrival - held.arrival - self.ts_us(media)).abs() <= RESYNC_TOLERANCE_US
    }

    /// Maps a confirmed new stream after the current one and accepts its first two packets.
    ///
    /// Sequence numbers continue the old numbering (from where the new stream's sequence
    /// numbers say, when they do continue it). The first packet's media time is where a
    /// packet arriving when it did on the fastest recent path belongs, but never before the
    /// end of the old stream's audio: the old audio plays out, the new follows at the
    /// current delay, and the transit history stays valid.
    ///
    /// Before anything has played, the old stream is not worth keeping (it may be a single
    /// stray that happened to come first): the buffer starts over with the new one.
    fn splice(&mut self, held: Candidate, confirming: BufferedPacket, arrival: i64) {
        let Some(stream) = self.stream else {
            return;
        };
        if self.last_played.is_none() {
            debug!(
                new_sequence = held.packet.sequence,
                "jitter buffer: stream replaced before playout"
            );
            self.reset();
            self.start_stream(held.packet, held.arrival);
            self.push_mapped(confirming, arrival);
            return;
        }
        let (old_seq, _) = stream.map(held.packet.sequence, held.packet.timestamp);
        let ahead = old_seq - self.highest_seq;
        let seq = if (1..=MAX_MISORDER).contains(&ahead) {
            old_seq
        } else {
            self.highest_seq + 1
        };
        let continuing = self.highest_ts + (seq - self.highest_seq) * self.frame_samples;
        let by_transit = match self.estimator.base() {
            Some(base) => self.ts_at(held.arrival - base),
            None => continuing,
        };
        let ts = by_transit.max(continuing);
        debug!(
            old_sequence = self.highest_seq,
            new_sequence = held.packet.sequence,
            new_timestamp = held.packet.timestamp,
            "jitter buffer: new stream spliced in"
        );
        self.stats.resyncs += 1;
        self.stream = Some(StreamMap::anchored(
            held.packet.sequence,
            held.packet.timestamp,
            seq,
            ts,
        ));
        self.accept(held.packet, seq, ts, held.arrival);
        self.push_mapped(confirming, arrival);
    }

    /// Files a packet of the current stream.
    fn accept(&mut self, packet: BufferedPacket, seq: i64, ts: i64, arrival: i64) {
        match self.seen.mark(seq) {
            Seen::New => {}
            Seen::Again => {
                self.stats.duplicate += 1;
                return;
            }
            Seen::TooOld => {
                self.stats.late += 1;
                return;
            }
        }
        let transit = arrival - self.ts_us(ts);
        self.estimator.observe(arrival, transit);
        self.stream_packets += 1;
        if let Some(stream) = self.stream.as_mut() {
            stream.accept(seq, ts);
        }
        if seq > self.highest_seq {
            self.highest_seq = seq;
            self.highest_ts = ts;
        }
        self.learn_frame(seq, ts, &packet);

        match self.play_ts {
            Some(play_ts) => {
                let behind = ts + self.frame_samples <= play_ts;
                if seq < self.next_seq {
                    self.stats.late += 1;
                    return;
                }
                if behind {
                    if !self.late_talkspurt_start(&packet, ts) {
                        self.stats.late += 1;
                        return;
                    }
                    // The silence before a talkspurt absorbs its lateness.
                    self.play_ts = Some(ts);
                }
            }
            None => self.next_seq = self.next_seq.min(seq),
        }
        if self.queue.len() >= MAX_QUEUE {
            self.stats.discarded += 1;
            return;
        }
        self.queue.insert(
            seq,
            Entry {
                ts,
                transit,
                packet,
            },
        );
    }

    /// Whether a late packet starts a talkspurt after a silence and may still play: it
    /// carries the marker bit, nothing is buffered before it, and playing it keeps the
    /// delay within `max_delay`.
    fn late_talkspurt_start(&self, packet: &BufferedPacket, ts: i64) -> bool {
        let Some(play_ts) = self.play_ts else {
            return false;
        };
        packet.marker
            && self.queue.is_empty()
            && self.delay_us + self.ts_us(play_ts - ts) <= self.max_delay_us
    }

    /// Learns the packet duration from the packet's own `samples` when the caller knows them,
    /// else from the timestamps of the nearest packets before and after `seq` (buffered or
    /// last played). Two packets in sequence tell it, unless the later one
    /// starts a talkspurt (its marker bit says silence may lie between them). Before the
    /// first such pair, packets up to [`FRAME_LEARNING_SPAN`] sequence numbers apart tell it
    /// too, so a loss right at the start does not leave the buffer guessing.
    fn learn_frame(&mut self, seq: i64, ts: i64, packet: &BufferedPacket) {
        if let Some(samples) = packet.samples {
            if self.plausible_frame(i64::from(samples)) {
                self.frame_samples = i64::from(samples);
                self.frame_learned = true;
                return;
            }
        }
        let marker = packet.marker;
        let buffered_before = self.queue.range(..seq).next_back().map(|(&s, e)| (s, e.ts));
        let before = match (buffered_before, self.last_played) {
            (Some(buffered), Some(played)) => Some(buffered.max(played)),
            (buffered, played) => buffered.or(played),
        };
        if let Some((before_seq, before_ts)) = before {
            self.consider_frame(seq - before_seq, ts - before_ts, marker);
        }
        if let Some((&after_seq, after)) = self.queue.range(seq + 1..).next() {
            let (media, marker) = (after.ts - ts, after.packet.marker);
            self.consider_frame(after_seq - seq, media, marker);
        }
    }

    /// Considers `media` samples spread over `packets` consecutive packets, the last of
    /// them carrying the marker bit `marker`.
    fn consider_frame(&mut self, packets: i64, media: i64, marker: bool) {
        let span = if self.frame_learned {
            1
        } else {
            FRAME_LEARNING_SPAN
        };
        if marker || !(1..=span).contains(&packets) || media % packets != 0 {
            return;
        }
        let samples = media / packets;
        if self.plausible_frame(samples) {
            self.frame_samples = samples;
            self.frame_learned = self.frame_learned || packets == 1;
        }
    }

    /// Whether `samples` is a packet duration audio codecs use: 2.5 ms to 120 ms.
    fn plausible_frame(&self, samples: i64) -> bool {
        (self.clock_rate / 400..=self.clock_rate * 120 / 1000).contains(&samples)
    }

    fn buffer_level(&self) -> Duration {
        let (Some(first), Some(last)) = (self.queue.values().next(), self.queue.values().last())
        else {
            return Duration::ZERO;
        };
        let from = self.play_ts.unwrap_or(first.ts);
        self.duration_us(self.ts_us(last.ts + self.frame_samples - from))
    }

    /// Microseconds since the epoch (the first instant seen).
    fn micros(&mut self, now: Instant) -> i64 {
        let epoch = *self.epoch.get_or_insert(now);
        i64::try_from(now.saturating_duration_since(epoch).as_micros()).unwrap_or(i64::MAX)
    }

    /// Media time `samples` in microseconds (floor).
    fn ts_us(&self, samples: i64) -> i64 {
        (i128::from(samples) * 1_000_000).div_euclid(i128::from(self.clock_rate)) as i64
    }

    /// Microseconds `micros` in media samples (floor).
    fn ts_at(&self, micros: i64) -> i64 {
        (i128::from(micros) * i128::from(self.clock_rate)).div_euclid(1_000_000) as i64
    }

    fn duration_us(&self, micros: i64) -> Duration {
        Duration::from_micros(u64::try_from(micros).unwrap_or(0))
    }
}
