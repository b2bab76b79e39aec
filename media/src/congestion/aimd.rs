//! The AIMD rate controller of the delay-based estimate (draft-ietf-rmcat-gcc-02 §5.5).
//!
//! Three states: *Increase* (the path is normal), *Hold* (the queue is draining) and
//! *Decrease* (over-use). Over-use sets the rate to β = 0.85 times the acknowledged bitrate —
//! what actually got through — at most once per round trip (clamped to 10–200 ms) unless the
//! acknowledged bitrate has fallen below half the rate. Increase is multiplicative (8 % per
//! second) while the link capacity is unknown, and additive (about one packet per response time,
//! RTT + 100 ms) near the capacity measured at the last over-use; a capacity estimate that the
//! acknowledged bitrate leaves (three deviations above, or below) is forgotten. An increase never
//! takes the rate above 1.5 × the acknowledged bitrate + 10 kbps.
//!
//! Until the first over-use the multiplicative increase is 50 % per second: Callisto sends no
//! bandwidth probes, and this start phase stands in for them so a call reaches a fast link's
//! rate within seconds rather than half a minute.

use std::time::{Duration, Instant};

/// Multiplicative decrease factor.
const BETA: f64 = 0.85;
/// Multiplicative increase per second once the start phase is over.
const INCREASE_PER_SECOND: f64 = 1.08;
/// Multiplicative increase per second in the start phase.
const START_INCREASE_PER_SECOND: f64 = 1.5;
/// Smoothing of the link capacity estimate.
const CAPACITY_ALPHA: f64 = 0.05;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RateState {
    Hold,
    Increase,
    Decrease,
}

/// The rate the receiver got at the last over-uses, in kbps, with its normalised deviation.
#[derive(Debug, Clone, Copy)]
struct LinkCapacity {
    estimate_kbps: f64,
    deviation: f64,
}

impl LinkCapacity {
    fn update(this: &mut Option<LinkCapacity>, sample_kbps: f64) {
        let (estimate, deviation) = match *this {
            None => (sample_kbps, 0.4),
            Some(c) => (
                (1.0 - CAPACITY_ALPHA) * c.estimate_kbps + CAPACITY_ALPHA * sample_kbps,
                c.deviation,
            ),
        };
        let error = estimate - sample_kbps;
        let deviation = ((1.0 - CAPACITY_ALPHA) * deviation
            + CAPACITY_ALPHA * error * error / estimate.max(1.0))
        .clamp(0.4, 2.5);
        *this = Some(LinkCapacity {
            estimate_kbps: estimate,
            deviation,
        });
    }

    fn spread_kbps(&self) -> f64 {
        3.0 * (self.deviation * self.estimate_kbps).sqrt()
    }
}

/// The delay-based rate.
#[derive(Debug)]
pub(crate) struct AimdRateControl {
    rate: f64,
    min: f64,
    max: f64,
    state: RateState,
    start_phase: bool,
    capacity: Option<LinkCapacity>,
    last_change: Option<Instant>,
    rtt: Duration,
}

impl AimdRateControl {
    pub(crate) fn new(start: f64, min: f64, max: f64) -> Self {
        AimdRateControl {
            rate: start.clamp(min, max),
            min,
            max,
            state: RateState::Hold,
            start_phase: true,
            capacity: None,
            last_change: None,
            rtt: Duration::from_millis(200),
        }
    }

    /// The current delay-based rate in bits per second.
    pub(crate) fn rate(&self) -> f64 {
        self.rate
    }

    /// Whether no over-use has been seen yet.
    #[cfg(test)]
    pub(crate) fn in_start_phase(&self) -> bool {
        self.start_phase
    }

    pub(crate) fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt;
    }

    /// Ends the start phase (the loss-based controller saw heavy loss).
    pub(crate) fn end_start_phase(&mut self) {
        self.start_phase = false;
    }

    /// Applies one verdict of the over-use detector with the acknowledged bitrate at `now`.
    pub(crate) fn update(
        &mut self,
        usage: super::BandwidthUsage,
        acked: Option<f64>,
        now: Instant,
    ) -> f64 {
        use super::BandwidthUsage::*;
        match usage {
            Overusing => {
                if self.state == RateState::Decrease || !self.may_reduce(acked, now) {
                    // Wait: the last reduction has not had time to show.
                    return self.rate;
                }
                self.state = RateState::Decrease;
            }
            Underusing => self.state = RateState::Hold,
            Normal => {
                if self.state != RateState::Increase {
                    self.state = RateState::Increase;
                    // Hold time does not count as time spent increasing.
                    self.last_change = Some(now);
                }
            }
        }
        match self.state {
            RateState::Hold => {}
            RateState::Increase => self.increase(acked, now),
            RateState::Decrease => {
                self.decrease(acked, now);
                self.state = RateState::Hold;
            }
        }
        self.rate
    }

    fn may_reduce(&self, acked: Option<f64>, now: Instant) -> bool {
        let wait = self
            .rtt
            .clamp(Duration::from_millis(10), Duration::from_millis(200));
        match self.last_change {
            None => true,
            Some(last) => {
                now.saturating_duration_since(last) >= wait
                    || acked.is_some_and(|a| a < 0.5 * self.rate)
            }
        }
    }

    fn increase(&mut self, acked: Option<f64>, now: Instant) {
        let elapsed = self
            .last_change
            .map_or(Duration::ZERO, |l| now.saturating_duration_since(l))
            .min(Duration::from_secs(1));
        if let (Some(a), Some(c)) = (acked, self.capacity) {
            if a / 1_000.0 > c.estimate_kbps + c.spread_kbps() {
                self.capacity = None;
            }
        }
        let increased = if self.capacity.is_some() {
            // About one packet per response time: a frame at 30 fps in 1200-byte packets.
            let frame_bits = self.rate / 30.0;
            let packets = (frame_bits / (1_200.0 * 8.0)).ceil().max(1.0);
            let packet_bits = frame_bits / packets;
            let response = self.rtt.as_secs_f64() + 0.1;
            let per_second = (packet_bits / response).max(4_000.0);
            self.rate + per_second * elapsed.as_secs_f64()
        } else {
            let factor = if self.start_phase {
                START_INCREASE_PER_SECOND
            } else {
                INCREASE_PER_SECOND
            };
            self.rate * factor.powf(elapsed.as_secs_f64())
        };
        let mut new = increased;
        if let Some(a) = acked {
            let ceiling = 1.5 * a + 10_000.0;
            if new > ceiling {
                new = self.rate.max(ceiling);
            }
        }
        self.rate = new.clamp(self.min, self.max);
        self.last_change = Some(now);
    }

    fn decrease(&mut self, acked: Option<f64>, now: Instant) {
        let through = acked.unwrap_or(self.rate);
        if let Some(c) = self.capacity {
            if through / 1_000.0 < c.estimate_kbps - c.spread_kbps() {
                self.capacity = None;
            }
        }
        LinkCapacity::update(&mut self.capacity, through / 1_000.0);
        self.rate = self.rate.min(BETA * through).clamp(self.min, self.max);
        self.start_phase = false;
        self.last_change = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::super::BandwidthUsage;
    use super::*;

    #[test]
    fn increases_while_normal_and_decreases_to_beta_times_acked_on_overuse() {
        let start = Instant::now();
        let mut aimd = AimdRateControl::new(300_000.0, 30_000.0, 5_000_000.0);
        let mut now = start;
        aimd.update(BandwidthUsage::Normal, None, now);
        for _ in 0..10 {
            now += Duration::from_millis(100);
            aimd.update(BandwidthUsage::Normal, None, now);
        }
        // One second of start-phase increase: × 1.5.
        assert!((aimd.rate() - 450_000.0).abs() < 1_000.0, "{}", aimd.rate());
        now += Duration::from_millis(200);
        let rate = aimd.update(BandwidthUsage::Overusing, Some(400_000.0), now);
        assert!((rate - 340_000.0).abs() < 1.0);
        assert!(!aimd.in_start_phase());
        // A second over-use within the RTT does not cut again.
        now += Duration::from_millis(50);
        assert_eq!(
            aimd.update(BandwidthUsage::Overusing, Some(300_000.0), now),
            rate
        );
        // Under-use holds.
        now += Duration::from_millis(300);
        assert_eq!(
            aimd.update(BandwidthUsage::Underusing, Some(300_000.0), now),
            rate
        );
        // Near the measured capacity, the increase is additive: tens of kbps per second.
        for _ in 0..10 {
            now += Duration::from_millis(100);
            aimd.update(BandwidthUsage::Normal, Some(340_000.0), now);
        }
        let gained = aimd.rate() - rate;
        assert!((10_000.0..60_000.0).contains(&gained), "{gained}");
    }

    #[test]
    fn never_exceeds_one_and_a_half_times_acked() {
        let start = Instant::now();
        let mut aimd = AimdRateControl::new(1_000_000.0, 30_000.0, 5_000_000.0);
        let mut now = start;
        for _ in 0..100 {
            now += Duration::from_millis(100);
            aimd.update(BandwidthUsage::Normal, Some(200_000.0), now);
        }
        assert_eq!(aimd.rate(), 1_000_000.0);
        let mut low = AimdRateControl::new(100_000.0, 30_000.0, 5_000_000.0);
        for _ in 0..100 {
            now += Duration::from_millis(100);
            low.update(BandwidthUsage::Normal, Some(100_000.0), now);
        }
        assert!((low.rate() - 160_000.0).abs() < 1.0, "{}", low.rate());
    }
}
