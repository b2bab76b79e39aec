//! The delay-based half of the estimate: how the one-way delay between us and the receiver
//! trends, and whether the path is over-used (draft-ietf-rmcat-gcc-02 §5, with the trendline
//! filter libwebrtc uses in place of the draft's Kalman filter).
//!
//! Packets are grouped by send time into bursts of at most 5 ms. For each pair of consecutive
//! groups the delay variation `d = (arrival difference) − (send difference)` is accumulated,
//! smoothed (α = 0.9), and a least-squares line is fitted through the last 20 (arrival time,
//! smoothed delay) points. Its slope, scaled by the number of samples (at most 60) and a gain
//! of 4, is compared with an adaptive threshold γ (initially 12.5 ms, moving towards |trend|
//! with k_up = 0.0087 or k_down = 0.039 per ms, clamped to 6–600): above γ for more than 10 ms
//! and two samples while still rising is over-use, below −γ is under-use, anything else normal.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Packets sent within this span form one group.
const BURST_SPAN: Duration = Duration::from_millis(5);
/// Points in the trendline's regression window.
const WINDOW: usize = 20;
/// Smoothing of the accumulated delay.
const SMOOTHING: f64 = 0.9;
/// Gain applied to the slope before it meets the threshold.
const THRESHOLD_GAIN: f64 = 4.0;
/// The slope is scaled by the number of samples, up to this many.
const MAX_DELTAS_SCALE: u32 = 60;
/// Threshold adaptation speeds (per ms).
const K_UP: f64 = 0.0087;
const K_DOWN: f64 = 0.039;
/// Over-use must last this long (ms of send time) before it is signalled.
const OVERUSE_TIME_MS: f64 = 10.0;
/// An arrival gap longer than this (a stall, a restart) resets the filter.
const MAX_ARRIVAL_GAP: Duration = Duration::from_secs(3);

/// What the delay trend says about the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BandwidthUsage {
    /// The delay is stable: the path has room.
    #[default]
    Normal,
    /// The delay grows: a queue is building at the bottleneck.
    Overusing,
    /// The delay shrinks: a queue is draining.
    Underusing,
}

#[derive(Debug, Clone, Copy)]
struct PacketGroup {
    first_send: Instant,
    last_send: Instant,
    last_arrival: Duration,
}

/// Inter-arrival grouping, trendline filter and over-use detector in one.
#[derive(Debug)]
pub(crate) struct DelayDetector {
    current: Option<PacketGroup>,
    previous: Option<PacketGroup>,
    first_arrival_ms: Option<f64>,
    accumulated_ms: f64,
    smoothed_ms: f64,
    points: VecDeque<(f64, f64)>,
    num_deltas: u32,
    slope: f64,
    previous_slope: f64,
    modified_trend: f64,
    threshold: f64,
    last_threshold_update_ms: Option<f64>,
    time_over_using_ms: Option<f64>,
    overuse_count: u32,
    usage: BandwidthUsage,
}

impl Default for DelayDetector {
    fn default() -> Self {
        DelayDetector {
            current: None,
            previous: None,
            first_arrival_ms: None,
            accumulated_ms: 0.0,
            smoothed_ms: 0.0,
            points: VecDeque::with_capacity(WINDOW + 1),
            num_deltas: 0,
            slope: 0.0,
            previous_slope: 0.0,
            modified_trend: 0.0,
            threshold: 12.5,
            last_threshold_update_ms: None,
            time_over_using_ms: None,
            overuse_count: 0,
            usage: BandwidthUsage::Normal,
        }
    }
}

impl DelayDetector {
    /// The current verdict.
    pub(crate) fn usage(&self) -> BandwidthUsage {
        self.usage
    }

    /// The scaled trend and the threshold it is compared with, in ms.
    pub(crate) fn trend_and_threshold(&self) -> (f64, f64) {
        (self.modified_trend, self.threshold)
    }

    /// Takes one received packet; packets must come in send order.
    pub(crate) fn on_packet(&mut self, sent: Instant, arrival: Duration) {
        let Some(current) = self.current.as_mut() else {
            self.current = Some(PacketGroup {
                first_send: sent,
                last_send: sent,
                last_arrival: arrival,
            });
            return;
        };
        if sent < current.first_send {
            return;
        }
        if sent.duration_since(current.first_send) <= BURST_SPAN {
            current.last_send = current.last_send.max(sent);
            current.last_arrival = current.last_arrival.max(arrival);
            return;
        }
        let finished = *current;
        self.current = Some(PacketGroup {
            first_send: sent,
            last_send: sent,
            last_arrival: arrival,
        });
        if let Some(previous) = self.previous.replace(finished) {
            self.on_group_delta(previous, finished);
        }
    }

    fn on_group_delta(&mut self, previous: PacketGroup, group: PacketGroup) {
        let send_delta_ms = ms(group.last_send.duration_since(previous.last_send));
        if group.last_arrival < previous.last_arrival {
            // Reordered across groups: no usable sample.
            return;
        }
        let arrival_gap = group.last_arrival - previous.last_arrival;
        if arrival_gap > MAX_ARRIVAL_GAP {
            *self = DelayDetector {
                previous: Some(group),
                current: self.current,
                ..DelayDetector::default()
            };
            return;
        }
        let arrival_ms = ms(group.last_arrival);
        let delta_ms = ms(arrival_gap) - send_delta_ms;
        self.num_deltas = (self.num_deltas + 1).min(1_000);
        self.accumulated_ms += delta_ms;
        self.smoothed_ms = SMOOTHING * self.smoothed_ms + (1.0 - SMOOTHING) * self.accumulated_ms;
        let first = *self.first_arrival_ms.get_or_insert(arrival_ms);
        self.points
            .push_back((arrival_ms - first, self.smoothed_ms));
        if self.points.len() > WINDOW {
            self.points.pop_front();
        }
        if self.points.len() == WINDOW {
            if let Some(slope) = linear_fit_slope(&self.points) {
                self.slope = slope;
            }
        }
        self.detect(send_delta_ms, arrival_ms);
    }

    fn detect(&mut self, send_delta_ms: f64, now_ms: f64) {
        let scale = f64::from(self.num_deltas.min(MAX_DELTAS_SCALE));
        let trend = scale * self.slope * THRESHOLD_GAIN;
        self.modified_trend = trend;
        if trend > self.threshold {
            let over = match self.time_over_using_ms {
                None => send_delta_ms / 2.0,
                Some(t) => t + send_delta_ms,
            };
            self.time_over_using_ms = Some(over);
            self.overuse_count += 1;
            if over > OVERUSE_TIME_MS && self.overuse_count > 1 && self.slope >= self.previous_slope
            {
                self.time_over_using_ms = Some(0.0);
                self.overuse_count = 0;
                self.usage = BandwidthUsage::Overusing;
            }
        } else if trend < -self.threshold {
            self.time_over_using_ms = None;
            self.overuse_count = 0;
            self.usage = BandwidthUsage::Underusing;
        } else {
            self.time_over_using_ms = None;
            self.overuse_count = 0;
            self.usage = BandwidthUsage::Normal;
        }
        self.previous_slope = self.slope;
        self.update_threshold(trend, now_ms);
    }

    fn update_threshold(&mut self, trend: f64, now_ms: f64) {
        let last = *self.last_threshold_update_ms.get_or_insert(now_ms);
        let magnitude = trend.abs();
        if magnitude > self.threshold + 15.0 {
            // A spike (a route change, a stall) must not drag the threshold along.
            self.last_threshold_update_ms = Some(now_ms);
            return;
        }
        let k = if magnitude < self.threshold {
            K_DOWN
        } else {
            K_UP
        };
        let dt = (now_ms - last).clamp(0.0, 100.0);
        self.threshold = (self.threshold + k * (magnitude - self.threshold) * dt).clamp(6.0, 600.0);
        self.last_threshold_update_ms = Some(now_ms);
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

/// Least-squares slope of y over x.
fn linear_fit_slope(points: &VecDeque<(f64, f64)>) -> Option<f64> {
    let n = points.len() as f64;
    let (sum_x, sum_y) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), &(x, y)| (sx + x, sy + y));
    let (mean_x, mean_y) = (sum_x / n, sum_y / n);
    let (mut num, mut den) = (0.0, 0.0);
    for &(x, y) in points {
        num += (x - mean_x) * (y - mean_y);
        den += (x - mean_x) * (x - mean_x);
    }
    (den > 0.0).then(|| num / den)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds packets sent every `gap`, whose one-way delay grows by `growth` per packet.
    fn run(gap_ms: u64, growth_us: u64, packets: u64) -> Vec<BandwidthUsage> {
        let start = Instant::now();
        let mut detector = DelayDetector::default();
        let mut verdicts = Vec::new();
        for i in 0..packets {
            let sent = start + Duration::from_millis(gap_ms * i);
            let arrival =
                Duration::from_millis(40 + gap_ms * i) + Duration::from_micros(growth_us * i);
            detector.on_packet(sent, arrival);
            verdicts.push(detector.usage());
        }
        verdicts
    }

    #[test]
    fn a_steady_delay_is_normal() {
        let verdicts = run(10, 0, 500);
        assert!(verdicts.iter().all(|&v| v == BandwidthUsage::Normal));
    }

    #[test]
    fn a_growing_delay_is_overuse_and_a_shrinking_one_underuse() {
        // One extra millisecond per 10 ms packet: a queue filling at 10 % over capacity.
        let verdicts = run(10, 1_000, 100);
        let first = verdicts
            .iter()
            .position(|&v| v == BandwidthUsage::Overusing);
        assert!(matches!(first, Some(i) if i < 40), "{first:?}");

        let start = Instant::now();
        let mut detector = DelayDetector::default();
        for i in 0..100u64 {
            let sent = start + Duration::from_millis(10 * i);
            let arrival = Duration::from_millis(400 + 10 * i) - Duration::from_micros(2_000 * i);
            detector.on_packet(sent, arrival);
        }
        assert_eq!(detector.usage(), BandwidthUsage::Underusing);
    }

    #[test]
    fn packets_within_five_ms_are_one_group() {
        let start = Instant::now();
        let mut detector = DelayDetector::default();
        // Bursts of three packets 1 ms apart every 20 ms, steady delay: no samples inside a
        // burst, and the verdict stays normal.
        for burst in 0..100u64 {
            for k in 0..3u64 {
                let sent = start + Duration::from_millis(20 * burst + k);
                detector.on_packet(sent, Duration::from_millis(30 + 20 * burst + 2 * k));
            }
        }
        assert_eq!(detector.usage(), BandwidthUsage::Normal);
        assert_eq!(detector.num_deltas, 98);
    }
}
