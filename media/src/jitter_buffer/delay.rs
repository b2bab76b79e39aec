//! The jitter buffer's delay estimate: how long packets must wait so that few arrive too late.
//!
//! Each packet's *transit* is its arrival time minus its media time (timestamp / clock rate),
//! both in microseconds. Transit is the one-way delay plus an unknown constant, so only
//! differences matter. The *base* is the smallest transit of the last two seconds (at least
//! the last 32 packets, so a silence does not empty it): the packet that came fastest. A
//! packet's *relative delay* is its transit minus the base when it arrived, computed at
//! arrival like WebRTC NetEq's `DelayManager`, so that a slow clock drift between sender and
//! receiver moves the base but not the relative delays.
//!
//! The target delay is the 95th percentile of the relative delays of the last five seconds,
//! plus one frame (the playout step), clamped to the configured range. It rises at once when
//! the percentile rises and falls back exponentially (time constant four seconds) when it
//! falls, so one calm moment inside a jittery period does not shrink the buffer.

use std::collections::VecDeque;

/// How long a transit stays a candidate for the base.
const BASE_WINDOW_US: i64 = 2_000_000;
/// The base always covers at least this many packets, whatever their age.
const BASE_MIN_PACKETS: usize = 32;
/// How long a relative delay counts towards the percentile.
const QUANTILE_WINDOW_US: i64 = 5_000_000;
/// The percentile of relative delays the target covers.
const QUANTILE: f64 = 0.95;
/// Time constant of the target's fall.
const FALL_TIME_CONSTANT_US: f64 = 4_000_000.0;
/// A falling target this close to where it is heading gets there.
const SNAP_US: i64 = 500;
/// Upper bound on remembered packets, whatever their arrival times.
const MAX_SAMPLES: usize = 2048;

/// Transit statistics and the target delay derived from them.
#[derive(Debug, Clone)]
pub(crate) struct DelayEstimator {
    /// `(arrival, transit)` of recent packets, in microseconds.
    transits: VecDeque<(i64, i64)>,
    /// `(arrival, relative delay)` of recent packets, in microseconds.
    relative: VecDeque<(i64, i64)>,
    /// Smallest transit in `transits`; kept when they are cleared.
    base: Option<i64>,
    /// Percentile of `relative`, recomputed lazily.
    quantile: Option<i64>,
    quantile_stale: bool,
    scratch: Vec<i64>,
    target: i64,
    last_update: Option<i64>,
    /// RFC 3550 interarrival jitter, in microseconds.
    jitter: f64,
    last_transit: Option<i64>,
}

impl DelayEstimator {
    /// An estimator whose target starts at `initial_target` microseconds.
    pub(crate) fn new(initial_target: i64) -> Self {
        DelayEstimator {
            transits: VecDeque::new(),
            relative: VecDeque::new(),
            base: None,
            quantile: None,
            quantile_stale: false,
            scratch: Vec::new(),
            target: initial_target,
            last_update: None,
            jitter: 0.0,
            last_transit: None,
        }
    }

    /// Records a packet that arrived at `arrival` with transit `transit` (microseconds).
    pub(crate) fn observe(&mut self, arrival: i64, transit: i64) {
        if let Some(last) = self.last_transit {
            let difference = (transit - last).unsigned_abs() as f64;
            self.jitter += (difference - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);

        self.transits.push_back((arrival, transit));
        while self.transits.len() > MAX_SAMPLES
            || (self.transits.len() > BASE_MIN_PACKETS
                && self
                    .transits
                    .front()
                    .is_some_and(|&(at, _)| at < arrival - BASE_WINDOW_US))
        {
            self.transits.pop_front();
        }
        let base = self
            .transits
            .iter()
            .map(|&(_, transit)| transit)
            .min()
            .unwrap_or(transit);
        self.base = Some(base);

        self.relative.push_back((arrival, transit - base));
        while self.relative.len() > MAX_SAMPLES
            || self
                .relative
                .front()
                .is_some_and(|&(at, _)| at < arrival - QUANTILE_WINDOW_US)
        {
            self.relative.pop_front();
        }
        self.quantile_stale = true;
    }

    /// The smallest recent transit, in microseconds; `None` before the first packet.
    pub(crate) fn base(&self) -> Option<i64> {
        self.base
    }

    /// Moves the target towards what the recent relative delays call for, at time `now`,
    /// with a playout step of `frame` and the configured bounds (all in microseconds).
    /// Returns the new target.
    pub(crate) fn update_target(&mut self, now: i64, frame: i64, min: i64, max: i64) -> i64 {
        let elapsed = self.last_update.map_or(0, |last| (now - last).max(0));
        self.last_update = Some(now);
        if self.quantile_stale {
            self.quantile = self.compute_quantile();
            self.quantile_stale = false;
        }
        if let Some(quantile) = self.quantile {
            let wanted = (quantile + frame).clamp(min, max);
            if wanted >= self.target {
                self.target = wanted;
            } else {
                let fall = 1.0 - (-(elapsed as f64) / FALL_TIME_CONSTANT_US).exp();
                let step = ((self.target - wanted) as f64 * fall).round() as i64;
                self.target -= step;
                if self.target - wanted < SNAP_US {
                    self.target = wanted;
                }
            }
        }
        self.target = self.target.clamp(min, max);
        self.target
    }

    /// The current target delay, in microseconds.
    pub(crate) fn target(&self) -> i64 {
        self.target
    }

    /// RFC 3550 interarrival jitter, in microseconds.
    pub(crate) fn jitter(&self) -> i64 {
        self.jitter.round() as i64
    }

    /// Forgets the transits (a new timeline follows) but keeps the target and the jitter,
    /// which describe the network rather than the stream.
    pub(crate) fn forget_transits(&mut self) {
        self.transits.clear();
        self.relative.clear();
        self.base = None;
        self.quantile = None;
        self.quantile_stale = false;
        self.last_transit = None;
    }

    fn compute_quantile(&mut self) -> Option<i64> {
        if self.relative.is_empty() {
            return None;
        }
        self.scratch.clear();
        self.scratch
            .extend(self.relative.iter().map(|&(_, relative)| relative));
        let last = self.scratch.len() - 1;
        let index = ((last as f64) * QUANTILE).round() as usize;
        let (_, value, _) = self.scratch.select_nth_unstable(index.min(last));
        Some(*value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: i64 = 20_000;
    const MIN: i64 = 20_000;
    const MAX: i64 = 200_000;

    #[test]
    fn a_steady_stream_keeps_the_target_at_one_frame() {
        let mut estimator = DelayEstimator::new(MIN);
        for i in 0..500 {
            let arrival = i * FRAME;
            estimator.observe(arrival, 35_000);
            estimator.update_target(arrival, FRAME, MIN, MAX);
        }
        assert_eq!(estimator.target(), FRAME);
        assert_eq!(estimator.base(), Some(35_000));
        assert_eq!(estimator.jitter(), 0);
    }

    #[test]
    fn the_target_covers_the_95th_percentile_and_rises_at_once() {
        let mut estimator = DelayEstimator::new(MIN);
        for i in 0..250 {
            // Every tenth packet is 60 ms late: more than 5 %, so the target covers it.
            let extra = if i % 10 == 0 { 60_000 } else { 0 };
            estimator.observe(i * FRAME, extra);
        }
        let target = estimator.update_target(250 * FRAME, FRAME, MIN, MAX);
        assert_eq!(target, 60_000 + FRAME);
        assert!(estimator.jitter() > 5_000);
    }

    #[test]
    fn the_target_falls_slowly_after_jitter_ends() {
        let mut estimator = DelayEstimator::new(MIN);
        let mut now = 0;
        for i in 0..250 {
            now = i * FRAME;
            estimator.observe(now, if i % 5 == 0 { 100_000 } else { 0 });
            estimator.update_target(now, FRAME, MIN, MAX);
        }
        let high = estimator.target();
        assert_eq!(high, 120_000);
        let mut after_two_seconds = 0;
        for i in 1..=1_000 {
            now += FRAME;
            estimator.observe(now, 0);
            let target = estimator.update_target(now, FRAME, MIN, MAX);
            if i == 100 {
                // The five-second window still holds the jittery packets.
                after_two_seconds = target;
            }
        }
        assert_eq!(after_two_seconds, high);
        assert!(estimator.target() < 30_000, "target {}", estimator.target());
    }

    #[test]
    fn the_target_stays_within_bounds() {
        let mut estimator = DelayEstimator::new(MIN);
        for i in 0..100 {
            estimator.observe(i * FRAME, if i % 2 == 0 { 900_000 } else { 0 });
        }
        assert_eq!(estimator.update_target(100 * FRAME, FRAME, MIN, MAX), MAX);
        estimator.forget_transits();
        assert_eq!(estimator.base(), None);
        assert_eq!(estimator.target(), MAX);
    }
}
