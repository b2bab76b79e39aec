//! Session timers (RFC 4028), when the peer asks for them.
//!
//! Callisto never asks for a session timer itself, but honours one: `Session-Expires` in a 2xx
//! to our INVITE, or in an INVITE we answer, starts the timer; so does every refresh (a
//! re-INVITE or UPDATE answered 2xx, either way) that carries the header, and a refresh
//! without it stops the timer (§7.2, §9).
//!
//! - The refresher sends a refresh at half the interval (§7.2, §10): an UPDATE without body
//!   when the peer allows UPDATE, else a re-INVITE with our last session description.
//! - The other side ends the session with a BYE when no refresh came by the interval minus
//!   min(32 s, interval / 3) (§10).
//! - An INVITE asking for less than [`MIN_SE`] seconds is refused with 422 and `Min-SE`.

use std::time::{Duration, Instant};

use rsip::prelude::UntypedHeader;
use rsip::{Header, Headers, Request, Response};

use super::compose;

/// The smallest session interval Callisto accepts, in seconds (RFC 4028 §4).
pub(crate) const MIN_SE: u32 = 90;

/// The longest interval the timer runs for, in seconds (a week); longer values are honoured
/// as a week, which only makes us refresh or check sooner than asked.
const MAX_TIMER_SECONDS: u32 = 7 * 24 * 3600;

/// Which end of a refresh transaction refreshes the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refresher {
    /// The sender of the INVITE or UPDATE.
    Uac,
    /// Its recipient.
    Uas,
}

/// A Session-Expires value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionExpires {
    pub seconds: u32,
    pub refresher: Option<Refresher>,
}

impl SessionExpires {
    /// The Session-Expires header of a message (full or compact `x` name), if it parses.
    pub fn read(headers: &Headers) -> Option<SessionExpires> {
        let value = headers.iter().find_map(|h| match h {
            Header::Other(name, value) if name.eq_ignore_ascii_case("Session-Expires") => {
                Some(value.as_str())
            }
            _ => None,
        })?;
        let mut parts = value.split(';');
        let seconds = parts.next()?.trim().parse().ok()?;
        let refresher = parts.find_map(|p| {
            let (name, value) = p.split_once('=')?;
            if !name.trim().eq_ignore_ascii_case("refresher") {
                return None;
            }
            match value.trim().to_ascii_lowercase().as_str() {
                "uac" => Some(Refresher::Uac),
                "uas" => Some(Refresher::Uas),
                _ => None,
            }
        });
        Some(SessionExpires { seconds, refresher })
    }

    /// The header, with the refresher named.
    pub fn header(seconds: u32, refresher: Refresher) -> Header {
        let who = match refresher {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        };
        Header::Other(
            "Session-Expires".into(),
            format!("{seconds};refresher={who}"),
        )
    }
}

/// The running timer of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionTimer {
    pub seconds: u32,
    /// We send the refreshes.
    pub we_refresh: bool,
    /// When to refresh (refresher) or give up (the other side).
    pub deadline: Instant,
    /// A refresh of ours is out; the deadline is now the session's expiry.
    pub refreshing: bool,
}

impl SessionTimer {
    /// A timer of `seconds` (taken as at least [`MIN_SE`] and at most a week), restarted at
    /// `now`.
    pub fn start(now: Instant, seconds: u32, we_refresh: bool) -> SessionTimer {
        let seconds = seconds.clamp(MIN_SE, MAX_TIMER_SECONDS);
        let interval = Duration::from_secs(u64::from(seconds));
        let deadline = if we_refresh {
            now + interval / 2
        } else {
            now + expiry_margin(interval)
        };
        SessionTimer {
            seconds,
            we_refresh,
            deadline,
            refreshing: false,
        }
    }

    /// Our refresh went out at `now`: wait for its answer until the session would expire. A
    /// refresh sent again (after a 491 or a Retry-After) leaves that time where it is: the
    /// session expires counted from the last refresh that succeeded.
    pub fn refresh_sent(&mut self, now: Instant) {
        if self.refreshing {
            return;
        }
        let interval = Duration::from_secs(u64::from(self.seconds));
        self.refreshing = true;
        self.deadline = now + expiry_margin(interval) - interval / 2;
    }

    /// The Session-Expires header for a request we send while the timer runs.
    pub fn header_for_request(&self) -> Header {
        let refresher = if self.we_refresh {
            Refresher::Uac
        } else {
            Refresher::Uas
        };
        SessionExpires::header(self.seconds, refresher)
    }
}

/// Our 2xx to an INVITE, re-INVITE or UPDATE that carries Session-Expires: the header is
/// echoed with the refresher the request named (else the requester when it supports timers,
/// else us), `Require: timer` is added when the requester refreshes, and the timer that starts
/// is returned. `None` when the request has no Session-Expires (no timer, §9).
pub(crate) fn answer_timer(
    request: &Request,
    response: &mut Response,
    now: Instant,
) -> Option<SessionTimer> {
    let se = SessionExpires::read(&request.headers)?;
    let refresher = se.refresher.unwrap_or(
        if compose::lists_option(&request.headers, "Supported", "timer") {
            Refresher::Uac
        } else {
            Refresher::Uas
        },
    );
    response
        .headers
        .push(SessionExpires::header(se.seconds, refresher));
    if refresher == Refresher::Uac {
        response
            .headers
            .push(Header::Require(rsip::headers::Require::new("timer")));
    }
    Some(SessionTimer::start(
        now,
        se.seconds,
        refresher == Refresher::Uas,
    ))
}

/// The timer a 2xx to our INVITE, re-INVITE or UPDATE starts: we were the UAC of that
/// transaction, so we refresh unless it names the UAS.
pub(crate) fn uac_timer(response: &Response, now: Instant) -> Option<SessionTimer> {
    let se = SessionExpires::read(&response.headers)?;
    Some(SessionTimer::start(
        now,
        se.seconds,
        se.refresher != Some(Refresher::Uas),
    ))
}

/// Interval − min(32 s, interval / 3) (RFC 4028 §10).
fn expiry_margin(interval: Duration) -> Duration {
    interval - (interval / 3).min(Duration::from_secs(32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> Headers {
        let mut headers = Headers::default();
        headers.push(Header::Other("Session-Expires".into(), value.into()));
        headers
    }

    #[test]
    fn session_expires_parses_with_and_without_refresher() {
        assert_eq!(
            SessionExpires::read(&headers("1800;refresher=uas")),
            Some(SessionExpires {
                seconds: 1800,
                refresher: Some(Refresher::Uas)
            })
        );
        assert_eq!(
            SessionExpires::read(&headers(" 90 ")),
            Some(SessionExpires {
                seconds: 90,
                refresher: None
            })
        );
        assert_eq!(SessionExpires::read(&headers("soon")), None);
        assert_eq!(
            SessionExpires::header(120, Refresher::Uac).to_string(),
            "Session-Expires: 120;refresher=uac"
        );
    }

    #[test]
    fn refreshers_act_at_half_time_and_the_other_side_before_expiry() {
        let now = Instant::now();
        let refresher = SessionTimer::start(now, 1800, true);
        assert_eq!(refresher.deadline - now, Duration::from_secs(900));
        let waiter = SessionTimer::start(now, 1800, false);
        assert_eq!(waiter.deadline - now, Duration::from_secs(1768));
        let short = SessionTimer::start(now, 90, false);
        assert_eq!(short.deadline - now, Duration::from_secs(60));
        // A peer's zero is no reason to refresh in a loop.
        let zero = SessionTimer::start(now, 0, true);
        assert_eq!(zero.deadline - now, Duration::from_secs(45));
        let mut sent = refresher;
        sent.refresh_sent(now + Duration::from_secs(900));
        assert_eq!(sent.deadline - now, Duration::from_secs(1768));
    }
}
