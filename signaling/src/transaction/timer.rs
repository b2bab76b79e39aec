//! The named timers of RFC 3261 §17 and a per-transaction table of their deadlines.

use std::time::Instant;

/// One of the timers of RFC 3261 Table 4, plus the 200 ms provisional-response timer of §17.2.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// INVITE request retransmission.
    A,
    /// INVITE transaction timeout.
    B,
    /// Wait time for response retransmissions (client INVITE).
    D,
    /// Non-INVITE request retransmission.
    E,
    /// Non-INVITE transaction timeout.
    F,
    /// INVITE final response retransmission.
    G,
    /// Wait time for ACK receipt.
    H,
    /// Wait time for ACK retransmissions.
    I,
    /// Wait time for non-INVITE request retransmissions.
    J,
    /// Wait time for response retransmissions (client non-INVITE).
    K,
    /// Send 100 Trying if the user has not answered an INVITE within 200 ms.
    Trying,
}

const COUNT: usize = 11;

impl Timer {
    fn index(self) -> usize {
        self as usize
    }

    const ALL: [Timer; COUNT] = [
        Timer::A,
        Timer::B,
        Timer::D,
        Timer::E,
        Timer::F,
        Timer::G,
        Timer::H,
        Timer::I,
        Timer::J,
        Timer::K,
        Timer::Trying,
    ];
}

/// One deadline per named timer.
#[derive(Debug, Clone, Default)]
pub(crate) struct TimerTable {
    deadlines: [Option<Instant>; COUNT],
}

impl TimerTable {
    /// Arms (or re-arms) a timer.
    pub fn set(&mut self, timer: Timer, deadline: Instant) {
        if let Some(slot) = self.deadlines.get_mut(timer.index()) {
            *slot = Some(deadline);
        }
    }

    /// Disarms a timer.
    pub fn stop(&mut self, timer: Timer) {
        if let Some(slot) = self.deadlines.get_mut(timer.index()) {
            *slot = None;
        }
    }

    /// Disarms every timer.
    pub fn clear(&mut self) {
        self.deadlines = [None; COUNT];
    }

    /// The earliest armed deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Disarms and returns the earliest timer due at `now`, if any.
    pub fn take_expired(&mut self, now: Instant) -> Option<Timer> {
        let (index, _) = self
            .deadlines
            .iter()
            .enumerate()
            .filter_map(|(index, deadline)| deadline.map(|d| (index, d)))
            .filter(|(_, deadline)| *deadline <= now)
            .min_by_key(|(_, deadline)| *deadline)?;
        let timer = *Timer::ALL.get(index)?;
        self.stop(timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn expired_timers_come_out_earliest_first() {
        let start = Instant::now();
        let mut table = TimerTable::default();
        table.set(Timer::B, start + Duration::from_secs(32));
        table.set(Timer::A, start + Duration::from_millis(500));
        assert_eq!(
            table.next_deadline(),
            Some(start + Duration::from_millis(500))
        );
        assert_eq!(table.take_expired(start), None);
        let late = start + Duration::from_secs(40);
        assert_eq!(table.take_expired(late), Some(Timer::A));
        assert_eq!(table.take_expired(late), Some(Timer::B));
        assert_eq!(table.take_expired(late), None);
        table.set(Timer::K, late);
        table.clear();
        assert_eq!(table.next_deadline(), None);
    }
}
