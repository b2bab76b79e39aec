//! Send-side bandwidth estimation for video: Google Congestion Control
//! (draft-ietf-rmcat-gcc-02), simplified, as a sans-IO core.
//!
//! ```text
//!  on_packet_sent(seq, size, now) ──► sent history ─┐
//!  on_transport_feedback(&[PacketFeedback], now) ───┴► inter-arrival groups ─► trendline ─►
//!        over-use detector ─► AIMD rate (delay-based) ─┐
//!        loss per ≥ 50 packets, ≥ 1 s ─► loss-based bound ┤
//!  on_receiver_report(fraction_lost, rtt, now) ────────────┤ (loss only without transport feedback)
//!  on_remb(bps, now) ─────────────────────────────── cap ──┤
//!                        target = min(…) clamped to [min_bps, max_bps]
//!                        ─► target_bitrate(), layer_advice(), poll_event()
//! ```
//!
//! # Contract
//! [`BitrateController`] never reads a clock: every input carries `now`. Feed it
//! 1. [`on_packet_sent`](BitrateController::on_packet_sent) for every packet that carries a
//!    transport-wide sequence number, when it leaves;
//! 2. [`on_transport_feedback`](BitrateController::on_transport_feedback) with each feedback
//!    report (use [`feedback_from_twcc`] for TWCC packets); reports about sequence numbers it never
//!    saw sent, or already took, are counted and ignored;
//! 3. [`on_receiver_report`](BitrateController::on_receiver_report) with each RTCP report block
//!    about our stream, and [`on_remb`](BitrateController::on_remb) with each REMB.
//!
//! After any input, [`target_bitrate`](BitrateController::target_bitrate) is the rate to give the
//! encoder (and pacer), [`layer_advice`](BitrateController::layer_advice) the frame size and rate
//! that suit it, and [`poll_event`](BitrateController::poll_event) yields a
//! [`CongestionEvent`] when either changed noticeably (the target by 5 % or 10 kbps). The
//! controller needs no timer: it only changes when told something.
//!
//! Without transport-wide feedback (a classic peer with RTCP only) the delay-based estimate is
//! idle and the target is the loss-based bound, capped by REMB when the peer sends it. With it,
//! receiver-report loss is ignored (the per-packet feedback tells the same, sooner) and only the
//! RTT is taken from the reports. A REMB caps the target until the next REMB replaces it.
//!
//! The receive side: [`TransportFeedbackBuilder`] records arrivals and emits TWCC packets.

mod aimd;
mod delay_based;
mod feedback;
mod layer_advice;
mod loss_based;
mod twcc_builder;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use delay_based::BandwidthUsage;
pub use feedback::{feedback_from_twcc, PacketFeedback};
pub use layer_advice::VideoLayerAdvice;
pub use twcc_builder::{FeedbackBuilderStats, TransportFeedbackBuilder, MAX_STATUSES};

use aimd::AimdRateControl;
use delay_based::DelayDetector;
use feedback::{AckedBitrate, SentHistory};
use layer_advice::LayerSelector;
use loss_based::LossBasedControl;

/// Packets a feedback-derived loss report covers at least.
const LOSS_WINDOW_PACKETS: u32 = 50;
/// Time a feedback-derived loss report covers at least.
const LOSS_WINDOW_TIME: Duration = Duration::from_secs(1);
/// Receiver-report loss is ignored while transport feedback arrived this recently.
const FEEDBACK_FRESH: Duration = Duration::from_secs(2);
/// Events kept before the oldest are dropped.
const MAX_EVENTS: usize = 64;

/// Settings of a [`BitrateController`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CongestionConfig {
    /// The target never goes below this (bits per second).
    pub min_bps: u64,
    /// The target never goes above this (bits per second).
    pub max_bps: u64,
    /// The target at the start of the call (bits per second).
    pub start_bps: u64,
    /// The largest frame width the encoder may produce.
    pub max_width: u32,
    /// The largest frame height the encoder may produce.
    pub max_height: u32,
    /// The highest frame rate the encoder may produce.
    pub max_fps: u32,
}

impl Default for CongestionConfig {
    /// 50 kbps – 2.5 Mbps, starting at 300 kbps, up to 1280×720 at 30 fps.
    fn default() -> Self {
        CongestionConfig {
            min_bps: 50_000,
            max_bps: 2_500_000,
            start_bps: 300_000,
            max_width: 1280,
            max_height: 720,
            max_fps: 30,
        }
    }
}

/// A noticeable change of the controller's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CongestionEvent {
    /// The target bitrate moved by at least 5 % or 10 kbps since the last such event.
    TargetChanged {
        /// The new target in bits per second.
        bps: u64,
    },
    /// The advised frame size or rate changed.
    LayerChanged(VideoLayerAdvice),
}

/// Counters of a [`BitrateController`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CongestionStats {
    /// Feedback reports taken.
    pub feedback_reports: u64,
    /// Packets reported received.
    pub acked: u64,
    /// Packets reported lost.
    pub lost: u64,
    /// Reports about sequence numbers never seen sent (or forgotten), or already reported.
    pub unknown: u64,
    /// Times the delay-based estimate decreased on over-use.
    pub overuse_decreases: u64,
    /// Times the loss-based bound decreased.
    pub loss_decreases: u64,
}

/// The send-side bitrate controller. See the [module documentation](self) for the contract.
#[derive(Debug)]
pub struct BitrateController {
    config: CongestionConfig,
    history: SentHistory,
    acked: AckedBitrate,
    detector: DelayDetector,
    aimd: AimdRateControl,
    loss: LossBasedControl,
    remb: Option<u64>,
    rtt: Duration,
    last_feedback: Option<Instant>,
    window_lost: u32,
    window_total: u32,
    window_start: Option<Instant>,
    target: u64,
    reported_target: u64,
    layers: LayerSelector,
    events: VecDeque<CongestionEvent>,
    stats: CongestionStats,
}

impl BitrateController {
    /// A controller starting at `config.start_bps` (clamped to `[min_bps, max_bps]`).
    pub fn new(config: CongestionConfig) -> Self {
        let max = config.max_bps.max(config.min_bps).max(1) as f64;
        let min = (config.min_bps.max(1) as f64).min(max);
        let start = (config.start_bps as f64).clamp(min, max);
        BitrateController {
            config,
            history: SentHistory::default(),
            acked: AckedBitrate::default(),
            detector: DelayDetector::default(),
            aimd: AimdRateControl::new(start, min, max),
            loss: LossBasedControl::new(start, min, max),
            remb: None,
            rtt: Duration::from_millis(200),
            last_feedback: None,
            window_lost: 0,
            window_total: 0,
            window_start: None,
            target: start as u64,
            reported_target: start as u64,
            layers: LayerSelector::new(config.max_width, config.max_height, config.max_fps, start),
            events: VecDeque::new(),
            stats: CongestionStats::default(),
        }
    }

    /// Records that the packet with transport-wide `sequence` and `size` bytes (RTP header and
    /// payload) left at `now`.
    pub fn on_packet_sent(&mut self, sequence: u16, size: usize, now: Instant) {
        self.history.on_sent(sequence, size, now);
    }

    /// Takes one transport-wide feedback report received at `now`.
    pub fn on_transport_feedback(&mut self, feedback: &[PacketFeedback], now: Instant) {
        self.stats.feedback_reports += 1;
        self.last_feedback = Some(now);
        let mut received = Vec::with_capacity(feedback.len());
        let mut lost = 0u32;
        for report in feedback {
            let Some((unwrapped, packet)) = self.history.get_mut(report.sequence) else {
                self.stats.unknown += 1;
                continue;
            };
            if packet.reported {
                self.stats.unknown += 1;
                continue;
            }
            packet.reported = true;
            match report.arrival {
                Some(arrival) => received.push((unwrapped, packet.sent, packet.size, arrival)),
                None => lost += 1,
            }
        }
        self.stats.lost += u64::from(lost);
        self.stats.acked += received.len() as u64;
        received.sort_unstable_by_key(|&(unwrapped, ..)| unwrapped);
        for &(_, sent, size, arrival) in &received {
            self.acked.on_acked(arrival, size);
            self.detector.on_packet(sent, arrival);
        }
        if !received.is_empty() {
            let before = self.aimd.rate();
            let rate = self
                .aimd
                .update(self.detector.usage(), self.acked.bitrate(), now);
            if rate < before {
                self.stats.overuse_decreases += 1;
            }
            self.loss.follow(rate);
        }
        self.window_lost += lost;
        self.window_total += lost + received.len() as u32;
        let start = *self.window_start.get_or_insert(now);
        if self.window_total >= LOSS_WINDOW_PACKETS
            && now.saturating_duration_since(start) >= LOSS_WINDOW_TIME
        {
            let fraction = f64::from(self.window_lost) / f64::from(self.window_total);
            self.window_lost = 0;
            self.window_total = 0;
            self.window_start = Some(now);
            self.on_loss(fraction, now);
        }
        self.update_target(now);
    }

    /// Takes an RTCP report block about our stream: the fraction lost (in 1/256) and, when the
    /// block carried an LSR, the round-trip time.
    pub fn on_receiver_report(&mut self, fraction_lost: u8, rtt: Option<Duration>, now: Instant) {
        if let Some(rtt) = rtt {
            self.rtt = rtt;
            self.aimd.set_rtt(rtt);
        }
        let feedback_fresh = self
            .last_feedback
            .is_some_and(|f| now.saturating_duration_since(f) < FEEDBACK_FRESH);
        if !feedback_fresh {
            self.on_loss(f64::from(fraction_lost) / 256.0, now);
        }
        self.update_target(now);
    }

    /// Takes a receiver estimated maximum bitrate: it caps the target until the next one.
    pub fn on_remb(&mut self, bps: u64, now: Instant) {
        self.remb = Some(bps);
        self.update_target(now);
    }

    /// The bitrate to encode and pace at, in bits per second.
    pub fn target_bitrate(&self) -> u64 {
        self.target
    }

    /// The frame size and rate that suit the target.
    pub fn layer_advice(&self) -> VideoLayerAdvice {
        self.layers.advice()
    }

    /// The next noticeable change, oldest first.
    pub fn poll_event(&mut self) -> Option<CongestionEvent> {
        self.events.pop_front()
    }

    /// The delay-based estimate in bits per second.
    pub fn delay_based_bitrate(&self) -> u64 {
        self.aimd.rate() as u64
    }

    /// The loss-based bound in bits per second.
    pub fn loss_based_bitrate(&self) -> u64 {
        self.loss.rate() as u64
    }

    /// The rate the receiver got our packets at, from transport feedback.
    pub fn acknowledged_bitrate(&self) -> Option<u64> {
        self.acked.bitrate().map(|b| b as u64)
    }

    /// The over-use detector's current verdict.
    pub fn bandwidth_usage(&self) -> BandwidthUsage {
        self.detector.usage()
    }

    /// The over-use detector's scaled delay trend and adaptive threshold, in ms.
    pub fn delay_trend(&self) -> (f64, f64) {
        self.detector.trend_and_threshold()
    }

    /// The last round-trip time reported (200 ms until one is).
    pub fn rtt(&self) -> Duration {
        self.rtt
    }

    /// What the controller took in so far.
    pub fn stats(&self) -> CongestionStats {
        self.stats
    }

    /// The configuration.
    pub fn config(&self) -> CongestionConfig {
        self.config
    }

    fn on_loss(&mut self, fraction: f64, now: Instant) {
        if self
            .loss
            .on_report(fraction, self.target as f64, self.rtt, now)
        {
            self.stats.loss_decreases += 1;
            self.aimd.end_start_phase();
        }
        if self.last_feedback.is_some() {
            self.loss.follow(self.aimd.rate());
        }
    }

    fn update_target(&mut self, now: Instant) {
        let mut target = self.loss.rate();
        if self.last_feedback.is_some() {
            target = target.min(self.aimd.rate());
        }
        if let Some(remb) = self.remb {
            target = target.min(remb as f64);
        }
        let max = self.config.max_bps.max(self.config.min_bps).max(1);
        let min = self.config.min_bps.max(1).min(max);
        self.target = (target as u64).clamp(min, max);
        let moved = self.target.abs_diff(self.reported_target);
        if moved >= 10_000 || moved as f64 >= 0.05 * self.reported_target as f64 {
            self.reported_target = self.target;
            self.push(CongestionEvent::TargetChanged { bps: self.target });
        }
        if self.layers.update(self.target as f64, now) {
            self.push(CongestionEvent::LayerChanged(self.layers.advice()));
        }
    }

    fn push(&mut self, event: CongestionEvent) {
        if self.events.len() == MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }
}

#[cfg(test)]
#[path = "controller_tests.rs"]
mod tests;
