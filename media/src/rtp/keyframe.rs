//! Key frame policy: when the sender encodes one ([`KeyframeScheduler`]) and when the receiver
//! asks for one ([`KeyframeRequester`]).
//!
//! # Contract
//! Both are sans-IO and take `now`; each has a `poll_timeout` saying when it next wants to be
//! polled.
//!
//! Sender: feed picture loss indications ([`KeyframeScheduler::on_pli`]), full intra requests
//! ([`KeyframeScheduler::on_fir`], which drops repeats of the same request by its RFC 5104
//! sequence number per requester), local needs ([`KeyframeScheduler::request`]) and key frames the
//! encoder made on its own ([`KeyframeScheduler::on_keyframe_sent`]). Before encoding each frame,
//! [`KeyframeScheduler::poll_keyframe`] says whether it must be a key frame. Key frames made for
//! requests are at least `min_interval` (300 ms by default) or one RTT apart, whichever is
//! longer; a request inside that time is remembered and served when it ends. A stream starts
//! with a key frame, and `periodic` (10 s by default) after the last one another comes anyway,
//! as a safety net for receivers whose requests are lost. Key frames not made for a request
//! (the stream's first, the periodic ones, those the encoder made on its own with nothing
//! asked) hold none back: a receiver that missed the stream's first key frame (its first
//! packets came before it was ready for them, say) asks at once and is answered at once.
//!
//! Receiver: tell the [`KeyframeRequester`] about the stream ([`KeyframeRequester::on_packet`]),
//! decoded frames ([`KeyframeRequester::on_frame_decoded`]), decode errors and lost or damaged
//! access units ([`KeyframeRequester::on_decode_error`], [`KeyframeRequester::on_frame_lost`]),
//! and other needs such as the NACK generator giving up ([`KeyframeRequester::request`]).
//! [`KeyframeRequester::poll_request`] returns a PLI (or a FIR, when configured for peers that
//! only support FIR) to send. It asks at once, then again while no key frame arrives, backing off
//! from `retry_initial` (at least RTT + 100 ms) doubling to `retry_max`. A stream that has sent
//! packets for `startup_timeout` without a decodable frame is asked too. Every FIR carries a new
//! sequence number, retries included: a retry means the key frame was lost, not the request.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc_rtcp::payload_feedbacks::full_intra_request::{FirEntry, FullIntraRequest};
use rtc_rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;

use super::rtcp_packet::{build_compound, RtcpError};

/// Requesters whose FIR sequence numbers are remembered.
const MAX_FIR_REQUESTERS: usize = 64;

/// Settings of a [`KeyframeScheduler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyframeSchedulerConfig {
    /// Least time between two key frames made for requests (the RTT, if longer, applies
    /// instead).
    pub min_interval: Duration,
    /// A key frame at least this often, or never with `None`.
    pub periodic: Option<Duration>,
}

impl Default for KeyframeSchedulerConfig {
    /// Answers to requests 300 ms apart at least, a key frame every 10 s at least.
    fn default() -> Self {
        KeyframeSchedulerConfig {
            min_interval: Duration::from_millis(300),
            periodic: Some(Duration::from_secs(10)),
        }
    }
}

/// Counters of a [`KeyframeScheduler`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyframeSchedulerStats {
    /// Requests taken (PLI, new FIR, local).
    pub requests: u64,
    /// FIRs dropped as repeats of a request already taken.
    pub duplicate_firs: u64,
    /// Key frames asked of the encoder.
    pub keyframes: u64,
    /// Of those, key frames the periodic safety net asked for.
    pub periodic: u64,
}

/// The sender's key frame policy. See the [module documentation](self).
#[derive(Debug)]
pub struct KeyframeScheduler {
    config: KeyframeSchedulerConfig,
    start: Instant,
    rtt: Duration,
    last_keyframe: Option<Instant>,
    /// When the last key frame made while a request was pending (after the stream's first)
    /// went out.
    last_answer: Option<Instant>,
    /// A key frame is owed: the stream's first, or one asked for.
    pending: bool,
    fir_sequences: HashMap<u32, u8>,
    stats: KeyframeSchedulerStats,
}

impl KeyframeScheduler {
    /// A scheduler for a stream starting at `now`, whose first poll asks for a key frame.
    pub fn new(config: KeyframeSchedulerConfig, now: Instant) -> Self {
        KeyframeScheduler {
            config,
            start: now,
            rtt: Duration::ZERO,
            last_keyframe: None,
            last_answer: None,
            pending: true,
            fir_sequences: HashMap::new(),
            stats: KeyframeSchedulerStats::default(),
        }
    }

    /// Sets the round-trip time, which lengthens the least interval when it is longer.
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt;
    }

    /// A picture loss indication arrived.
    pub fn on_pli(&mut self, _now: Instant) {
        self.request_keyframe();
    }

    /// A full intra request from `requester_ssrc` with `sequence` arrived (its entry for our
    /// SSRC). Returns false when it repeats the requester's previous request and was dropped.
    pub fn on_fir(&mut self, requester_ssrc: u32, sequence: u8, _now: Instant) -> bool {
        if self.fir_sequences.get(&requester_ssrc) == Some(&sequence) {
            self.stats.duplicate_firs += 1;
            return false;
        }
        if self.fir_sequences.len() >= MAX_FIR_REQUESTERS
            && !self.fir_sequences.contains_key(&requester_ssrc)
        {
            self.fir_sequences.clear();
        }
        self.fir_sequences.insert(requester_ssrc, sequence);
        self.request_keyframe();
        true
    }

    /// Something local needs a key frame (a new participant, an encoder restart).
    pub fn request(&mut self, _now: Instant) {
        self.request_keyframe();
    }

    /// The encoder made a key frame on its own at `now`.
    pub fn on_keyframe_sent(&mut self, now: Instant) {
        // Once the stream has started, a key frame owed was asked for.
        if self.pending && self.last_keyframe.is_some() {
            self.last_answer = Some(now);
        }
        self.last_keyframe = Some(now);
        self.pending = false;
    }

    /// Whether the frame encoded at `now` must be a key frame. Returning true counts as the
    /// key frame being made.
    pub fn poll_keyframe(&mut self, now: Instant) -> bool {
        let due = self.poll_timeout().is_some_and(|at| at <= now);
        if !due {
            return false;
        }
        if !self.pending {
            self.stats.periodic += 1;
        }
        self.stats.keyframes += 1;
        self.on_keyframe_sent(now);
        true
    }

    /// When [`poll_keyframe`](Self::poll_keyframe) next returns true, if nothing else happens.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let Some(last) = self.last_keyframe else {
            // Nothing sent yet: the first frame is a key frame.
            return self.pending.then_some(self.start);
        };
        let spacing = self.config.min_interval.max(self.rtt);
        // A request waits out the spacing after the last one answered, not after the stream's
        // first key frame or a periodic one.
        let requested = self
            .pending
            .then(|| self.last_answer.map_or(last, |answered| answered + spacing));
        let periodic = self.config.periodic.map(|p| last + p.max(spacing));
        match (requested, periodic) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// What the scheduler did so far.
    pub fn stats(&self) -> KeyframeSchedulerStats {
        self.stats
    }

    fn request_keyframe(&mut self) {
        self.stats.requests += 1;
        self.pending = true;
    }
}

/// What the receiver asks the sender for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyframeRequest {
    /// A picture loss indication (RFC 4585 §6.3.1).
    Pli,
    /// A full intra request (RFC 5104 §4.3.1) with its command sequence number.
    Fir {
        /// The command sequence number.
        sequence: u8,
    },
}

impl KeyframeRequest {
    /// The RTCP packet from `sender_ssrc` (ours) about `media_ssrc` (the stream that needs the
    /// key frame), as bytes to put in a compound packet.
    pub fn build(&self, sender_ssrc: u32, media_ssrc: u32) -> Result<Bytes, RtcpError> {
        match *self {
            KeyframeRequest::Pli => build_compound(&[&PictureLossIndication {
                sender_ssrc,
                media_ssrc,
            }]),
            KeyframeRequest::Fir { sequence } => build_compound(&[&FullIntraRequest {
                sender_ssrc,
                // RFC 5104 §4.3.1.2: the media source field is unused and zero.
                media_ssrc: 0,
                fir: vec![FirEntry {
                    ssrc: media_ssrc,
                    sequence_number: sequence,
                }],
            }]),
        }
    }
}

/// Settings of a [`KeyframeRequester`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyframeRequesterConfig {
    /// First wait for the key frame before asking again (RTT + 100 ms if longer).
    pub retry_initial: Duration,
    /// Longest wait between requests.
    pub retry_max: Duration,
    /// A stream with no decodable frame this long after its first packet is asked for one.
    pub startup_timeout: Duration,
    /// Ask with FIR instead of PLI (for peers that negotiated only `ccm fir`).
    pub use_fir: bool,
}

impl Default for KeyframeRequesterConfig {
    /// Retries from 250 ms doubling to 2 s, 1 s start-up timeout, PLI.
    fn default() -> Self {
        KeyframeRequesterConfig {
            retry_initial: Duration::from_millis(250),
            retry_max: Duration::from_secs(2),
            startup_timeout: Duration::from_secs(1),
            use_fir: false,
        }
    }
}

/// Counters of a [`KeyframeRequester`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyframeRequesterStats {
    /// Requests sent (first tries and retries).
    pub requests: u64,
    /// Of those, retries.
    pub retries: u64,
    /// Key frames received.
    pub keyframes: u64,
}

/// The receiver's key frame requests. See the [module documentation](self).
#[derive(Debug)]
pub struct KeyframeRequester {
    config: KeyframeRequesterConfig,
    rtt: Duration,
    first_packet: Option<Instant>,
    decodable_seen: bool,
    /// A key frame is needed and none arrived yet.
    needed: bool,
    /// When to send the next request while needed.
    next_request: Option<Instant>,
    /// A request was sent since the key frame became needed.
    asked: bool,
    backoff: Duration,
    fir_sequence: u8,
    stats: KeyframeRequesterStats,
}

impl KeyframeRequester {
    /// A requester for a stream not yet started.
    pub fn new(config: KeyframeRequesterConfig) -> Self {
        KeyframeRequester {
            config,
            rtt: Duration::ZERO,
            first_packet: None,
            decodable_seen: false,
            needed: false,
            next_request: None,
            asked: false,
            backoff: config.retry_initial,
            fir_sequence: 0,
            stats: KeyframeRequesterStats::default(),
        }
    }

    /// Sets the round-trip time, which lengthens the first retry wait when it is longer.
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt;
    }

    /// A packet of the stream arrived (the first one starts the start-up timer).
    pub fn on_packet(&mut self, now: Instant) {
        if self.first_packet.is_none() {
            self.first_packet = Some(now);
        }
    }

    /// A frame was decoded; `keyframe` when it was a key frame, which ends any request.
    pub fn on_frame_decoded(&mut self, keyframe: bool, now: Instant) {
        self.on_packet(now);
        self.decodable_seen = true;
        if keyframe {
            self.stats.keyframes += 1;
            self.needed = false;
            self.next_request = None;
            self.backoff = self.initial_backoff();
        }
    }

    /// The decoder failed on a frame: the picture is broken until a key frame.
    pub fn on_decode_error(&mut self, now: Instant) {
        self.need(now);
    }

    /// An access unit was dropped or arrived damaged (lost packets that retransmission did
    /// not repair).
    pub fn on_frame_lost(&mut self, now: Instant) {
        self.need(now);
    }

    /// Something else needs a key frame (the NACK generator gave up, a stream restarted).
    pub fn request(&mut self, now: Instant) {
        self.need(now);
    }

    /// The request to send at `now`, if one is due.
    pub fn poll_request(&mut self, now: Instant) -> Option<KeyframeRequest> {
        self.check_startup(now);
        let due = self.next_request.filter(|&at| at <= now)?;
        if due <= now && self.asked {
            self.stats.retries += 1;
        }
        self.asked = true;
        self.stats.requests += 1;
        self.next_request = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(self.config.retry_max.max(self.initial_backoff()));
        if self.config.use_fir {
            self.fir_sequence = self.fir_sequence.wrapping_add(1);
            Some(KeyframeRequest::Fir {
                sequence: self.fir_sequence,
            })
        } else {
            Some(KeyframeRequest::Pli)
        }
    }

    /// When [`poll_request`](Self::poll_request) next has something to send.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let startup = match (self.first_packet, self.decodable_seen, self.needed) {
            (Some(first), false, false) => Some(first + self.config.startup_timeout),
            _ => None,
        };
        match (self.next_request, startup) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether a key frame is awaited.
    pub fn is_waiting(&self) -> bool {
        self.needed
    }

    /// What the requester did so far.
    pub fn stats(&self) -> KeyframeRequesterStats {
        self.stats
    }

    fn initial_backoff(&self) -> Duration {
        self.config
            .retry_initial
            .max(self.rtt + Duration::from_millis(100))
    }

    fn need(&mut self, now: Instant) {
        if self.needed {
            // Already asked: the retry timer covers it.
            return;
        }
        self.needed = true;
        self.asked = false;
        self.backoff = self.initial_backoff();
        self.next_request = Some(now);
    }

    fn check_startup(&mut self, now: Instant) {
        if let (Some(first), false) = (self.first_packet, self.decodable_seen) {
            if !self.needed && now.saturating_duration_since(first) >= self.config.startup_timeout {
                self.need(now);
            }
        }
    }
}

#[cfg(test)]
#[path = "keyframe_tests.rs"]
mod tests;
