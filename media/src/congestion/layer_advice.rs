//! Which frame size and rate suit a target bitrate.
//!
//! The ladder starts at the configured maximum resolution and halves both dimensions (rounded
//! down to even numbers) while the width stays at least 160; the last rung is repeated at half
//! the frame rate, the floor. A rung needs about 0.055 bits per pixel per frame (640×480 at
//! 30 fps: ~500 kbps; 320×240: ~130 kbps). The advice steps down as soon as the target falls
//! below what the current rung needs, and steps up one rung only when the target has reached
//! 1.25 times what the next rung needs and the last change is at least two seconds old — so a
//! target that wavers around a threshold does not make the encoder flap.

use std::time::{Duration, Instant};

/// Bits per pixel per frame a rung needs.
const BITS_PER_PIXEL: f64 = 0.055;
/// Headroom above a rung's need before stepping up to it.
const STEP_UP_MARGIN: f64 = 1.25;
/// Least time between a change and a step up.
const STEP_UP_HOLD: Duration = Duration::from_secs(2);

/// What the encoder should produce for the current target bitrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoLayerAdvice {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
}

impl VideoLayerAdvice {
    /// The bitrate this layer needs for acceptable quality, in bits per second.
    pub fn needed_bps(&self) -> f64 {
        f64::from(self.width) * f64::from(self.height) * f64::from(self.fps) * BITS_PER_PIXEL
    }
}

/// The ladder and the rung in use.
#[derive(Debug)]
pub(crate) struct LayerSelector {
    /// Largest first.
    rungs: Vec<VideoLayerAdvice>,
    current: usize,
    last_change: Option<Instant>,
}

impl LayerSelector {
    pub(crate) fn new(max_width: u32, max_height: u32, max_fps: u32, target: f64) -> Self {
        let fps = max_fps.max(1);
        let mut rung = VideoLayerAdvice {
            width: max_width.max(2) & !1,
            height: max_height.max(2) & !1,
            fps,
        };
        let mut rungs = vec![rung];
        while rung.width / 2 >= 160 && rung.height / 2 >= 2 {
            rung = VideoLayerAdvice {
                width: (rung.width / 2) & !1,
                height: (rung.height / 2) & !1,
                fps,
            };
            rungs.push(rung);
        }
        if fps >= 2 {
            rungs.push(VideoLayerAdvice {
                fps: fps / 2,
                ..rung
            });
        }
        let current = rungs
            .iter()
            .position(|r| r.needed_bps() <= target)
            .unwrap_or(rungs.len() - 1);
        LayerSelector {
            rungs,
            current,
            last_change: None,
        }
    }

    pub(crate) fn advice(&self) -> VideoLayerAdvice {
        self.rungs[self.current]
    }

    /// Moves along the ladder for `target`; returns true when the advice changed.
    pub(crate) fn update(&mut self, target: f64, now: Instant) -> bool {
        let before = self.current;
        while self.current + 1 < self.rungs.len() && target < self.rungs[self.current].needed_bps()
        {
            self.current += 1;
        }
        if self.current == before && self.current > 0 {
            let up = self.rungs[self.current - 1];
            let settled = self
                .last_change
                .is_none_or(|t| now.saturating_duration_since(t) >= STEP_UP_HOLD);
            if settled && target >= STEP_UP_MARGIN * up.needed_bps() {
                self.current -= 1;
            }
        }
        if self.current != before {
            self.last_change = Some(now);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(advice: VideoLayerAdvice) -> (u32, u32, u32) {
        (advice.width, advice.height, advice.fps)
    }

    #[test]
    fn the_ladder_halves_down_to_the_floor() {
        let selector = LayerSelector::new(640, 480, 30, 1_000_000.0);
        let rungs: Vec<_> = selector.rungs.iter().map(|&r| size(r)).collect();
        assert_eq!(
            rungs,
            vec![
                (640, 480, 30),
                (320, 240, 30),
                (160, 120, 30),
                (160, 120, 15)
            ]
        );
        assert_eq!(size(selector.advice()), (640, 480, 30));
        let low = LayerSelector::new(1280, 720, 30, 400_000.0);
        assert_eq!(size(low.advice()), (640, 360, 30));
        let floor = LayerSelector::new(640, 480, 30, 20_000.0);
        assert_eq!(size(floor.advice()), (160, 120, 15));
    }

    #[test]
    fn steps_down_at_once_and_up_with_hysteresis() {
        let start = Instant::now();
        let mut selector = LayerSelector::new(640, 480, 30, 600_000.0);
        assert_eq!(size(selector.advice()), (640, 480, 30));
        assert!(selector.update(450_000.0, start));
        assert_eq!(size(selector.advice()), (320, 240, 30));
        // Back just above 640x480's need: not enough margin, and too soon.
        let mut now = start;
        for _ in 0..100 {
            now += Duration::from_millis(100);
            assert!(!selector.update(560_000.0, now));
        }
        // With the margin, after the hold.
        assert!(selector.update(700_000.0, now));
        assert_eq!(size(selector.advice()), (640, 480, 30));
        // A fall to the floor passes every rung at once.
        assert!(selector.update(10_000.0, now));
        assert_eq!(size(selector.advice()), (160, 120, 15));
        // Steps up are one rung at a time, two seconds apart.
        assert!(!selector.update(2_000_000.0, now + Duration::from_secs(1)));
        assert!(selector.update(2_000_000.0, now + Duration::from_secs(2)));
        assert_eq!(size(selector.advice()), (160, 120, 30));
    }
}
