//! The loss-based bound (draft-ietf-rmcat-gcc-02 §6).
//!
//! Each loss report moves the bound As by the fraction lost p:
//! - p < 2 %: increase by 8 % per second since the previous report (at most one second's worth);
//! - 2 % ≤ p ≤ 10 %: hold;
//! - p > 10 %: As = min(As, target) × (1 − 0.5 p), at most once per RTT + 300 ms so one burst is
//!   not counted twice.
//!
//! While the last report was below 2 %, the bound does not hold the delay-based estimate back:
//! the controller lifts it to the delay-based rate (see [`LossBasedControl::follow`]). Before any
//! report it is the start bitrate, which is what an RTCP-only peer (no transport feedback) ramps
//! up from.

use std::time::{Duration, Instant};

/// Below this loss the bound increases.
const LOW_LOSS: f64 = 0.02;
/// Above this loss the bound decreases.
const HIGH_LOSS: f64 = 0.10;
/// Increase per second while loss is low.
const INCREASE_PER_SECOND: f64 = 1.08;

/// The loss-based bound.
#[derive(Debug)]
pub(crate) struct LossBasedControl {
    rate: f64,
    min: f64,
    max: f64,
    low_loss: bool,
    last_report: Option<Instant>,
    last_decrease: Option<Instant>,
}

impl LossBasedControl {
    pub(crate) fn new(start: f64, min: f64, max: f64) -> Self {
        LossBasedControl {
            rate: start.clamp(min, max),
            min,
            max,
            low_loss: true,
            last_report: None,
            last_decrease: None,
        }
    }

    /// The bound in bits per second.
    pub(crate) fn rate(&self) -> f64 {
        self.rate
    }

    /// Lifts the bound to `delay_based` while loss is low.
    pub(crate) fn follow(&mut self, delay_based: f64) {
        if self.low_loss {
            self.rate = self.rate.max(delay_based).clamp(self.min, self.max);
        }
    }

    /// Takes one loss report: `loss` in [0, 1], `target` the controller's current target.
    /// Returns true when it decreased the bound.
    pub(crate) fn on_report(
        &mut self,
        loss: f64,
        target: f64,
        rtt: Duration,
        now: Instant,
    ) -> bool {
        let elapsed = self
            .last_report
            .map_or(Duration::from_secs(1), |l| now.saturating_duration_since(l))
            .min(Duration::from_secs(1));
        self.last_report = Some(now);
        self.low_loss = loss < LOW_LOSS;
        if loss < LOW_LOSS {
            self.rate *= INCREASE_PER_SECOND.powf(elapsed.as_secs_f64());
        } else if loss > HIGH_LOSS {
            let wait = rtt + Duration::from_millis(300);
            if self
                .last_decrease
                .is_some_and(|d| now.saturating_duration_since(d) < wait)
            {
                return false;
            }
            self.rate = self.rate.min(target) * (1.0 - 0.5 * loss.min(1.0));
            self.last_decrease = Some(now);
            self.rate = self.rate.clamp(self.min, self.max);
            return true;
        }
        self.rate = self.rate.clamp(self.min, self.max);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increases_holds_and_decreases_by_loss() {
        let start = Instant::now();
        let rtt = Duration::from_millis(100);
        let mut loss = LossBasedControl::new(1_000_000.0, 50_000.0, 3_000_000.0);
        assert!(!loss.on_report(0.0, 1_000_000.0, rtt, start));
        assert!((loss.rate() - 1_080_000.0).abs() < 1.0);
        let t = start + Duration::from_millis(500);
        loss.on_report(0.05, 1_080_000.0, rtt, t);
        assert!((loss.rate() - 1_080_000.0).abs() < 1.0);
        // Following the delay-based rate stops while loss is not low.
        loss.follow(2_000_000.0);
        assert!((loss.rate() - 1_080_000.0).abs() < 1.0);
        let t = t + Duration::from_millis(500);
        assert!(loss.on_report(0.2, 900_000.0, rtt, t));
        assert!((loss.rate() - 810_000.0).abs() < 1.0);
        // Not again within RTT + 300 ms.
        assert!(!loss.on_report(0.5, 810_000.0, rtt, t + Duration::from_millis(200)));
        assert!(loss.on_report(0.5, 810_000.0, rtt, t + Duration::from_millis(400)));
        assert!((loss.rate() - 607_500.0).abs() < 1.0);
        loss.on_report(0.0, 607_500.0, rtt, t + Duration::from_millis(500));
        loss.follow(2_000_000.0);
        assert_eq!(loss.rate(), 2_000_000.0);
    }
}
