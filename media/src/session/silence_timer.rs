//! The media timeout both audio paths keep (sans-IO): when the peer has sent nothing valid for
//! the timeout, it fires once; media heard again re-arms it.

use std::time::{Duration, Instant};

/// Time since the peer was last heard, against a timeout.
#[derive(Debug, Clone)]
pub(crate) struct SilenceTimer {
    timeout: Duration,
    /// Last valid RTP or RTCP, or when listening (re)started.
    last_heard: Instant,
    /// Fired, and nothing heard since.
    fired: bool,
}

impl SilenceTimer {
    /// A timer that counts from `now`.
    pub(crate) fn new(timeout: Duration, now: Instant) -> Self {
        SilenceTimer {
            timeout,
            last_heard: now,
            fired: false,
        }
    }

    /// The peer was heard (or listening restarted) at `at`: the count starts again.
    pub(crate) fn heard(&mut self, at: Instant) {
        self.last_heard = at;
        self.fired = false;
    }

    /// When the timer fires, unless it already did.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        (!self.fired).then(|| self.last_heard + self.timeout)
    }

    /// Whether the timeout passed by `now` and has not been reported yet; it is reported once.
    pub(crate) fn fire(&mut self, now: Instant) -> bool {
        let due = self.deadline().is_some_and(|deadline| now >= deadline);
        self.fired |= due;
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_once_after_the_timeout_and_again_only_after_media_came_back() {
        let start = Instant::now();
        let s = Duration::from_secs;
        let mut timer = SilenceTimer::new(s(10), start);
        assert_eq!(timer.deadline(), Some(start + s(10)));
        assert!(!timer.fire(start + s(9)));
        timer.heard(start + s(5));
        assert!(!timer.fire(start + s(14)));
        assert!(timer.fire(start + s(15)));
        assert!(!timer.fire(start + s(40)), "reported once");
        assert_eq!(timer.deadline(), None);
        timer.heard(start + s(41));
        assert!(timer.fire(start + s(51)));
    }
}
