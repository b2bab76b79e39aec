//! Times and durations in the words and figures the window shows.

use std::time::{Duration, SystemTime};

/// A running call's clock: `m:ss`, or `h:mm:ss` past an hour.
pub fn clock(elapsed: Duration) -> String {
    let secs = elapsed.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// A span in the largest whole unit that fits: `45 s`, `12 min`, `1 h 5 min`.
pub fn duration_words(span: Duration) -> String {
    let secs = span.as_secs();
    if secs < 60 {
        format!("{secs} s")
    } else if secs < 3600 {
        format!("{} min", secs / 60)
    } else if secs % 3600 / 60 == 0 {
        format!("{} h", secs / 3600)
    } else {
        format!("{} h {} min", secs / 3600, secs % 3600 / 60)
    }
}

/// When something happened, in local time: `14:05` today, `Mon 21 Nov 14:05` otherwise.
pub fn when(at: SystemTime, now: SystemTime) -> String {
    use chrono::{DateTime, Local};
    let at: DateTime<Local> = at.into();
    let now: DateTime<Local> = now.into();
    if at.date_naive() == now.date_naive() {
        at.format("%H:%M").to_string()
    } else {
        at.format("%a %-d %b %H:%M").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_show_minutes_then_hours() {
        assert_eq!(clock(Duration::from_secs(0)), "0:00");
        assert_eq!(clock(Duration::from_secs(83)), "1:23");
        assert_eq!(clock(Duration::from_secs(3600 + 62)), "1:01:02");
    }

    #[test]
    fn spans_use_the_largest_unit() {
        assert_eq!(duration_words(Duration::from_secs(45)), "45 s");
        assert_eq!(duration_words(Duration::from_secs(600)), "10 min");
        assert_eq!(duration_words(Duration::from_secs(3600)), "1 h");
        assert_eq!(duration_words(Duration::from_secs(3900)), "1 h 5 min");
    }

    #[test]
    fn today_shows_only_the_time() {
        let now = SystemTime::now();
        let today = when(now, now);
        assert_eq!(today.len(), 5, "{today}");
        let last_week = when(now - Duration::from_secs(7 * 86_400), now);
        assert!(last_week.len() > 5, "{last_week}");
    }
}
