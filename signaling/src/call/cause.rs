//! Why a call failed, in plain words.

use std::fmt;

/// The cause of a failed outgoing call, from the final response (or its absence).
///
/// `Display` gives the plain words a user is shown ("busy", "declined", …); [`FailureCause::name`]
/// a stable snake_case name for machine-readable output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureCause {
    /// 486 Busy Here, 600 Busy Everywhere.
    Busy,
    /// 603 Decline.
    Declined,
    /// 404 Not Found, 604 Does Not Exist Anywhere, 410 Gone.
    NotFound,
    /// 480 Temporarily Unavailable.
    Unavailable,
    /// 487 Request Terminated.
    Cancelled,
    /// 488 Not Acceptable Here, 606 Not Acceptable, 415 Unsupported Media Type.
    NotAcceptable,
    /// 408 Request Timeout, or no final answer before the INVITE transaction timed out.
    NoAnswer,
    /// 401/407 again after we answered a challenge, or a challenge we could not answer.
    AuthenticationFailed,
    /// 403 Forbidden.
    Forbidden,
    /// 484 Address Incomplete.
    AddressIncomplete,
    /// 3xx that could not be followed: no usable Contact, a loop, or too many redirections.
    Redirected,
    /// The connection to the next hop failed.
    Unreachable,
    /// A 5xx answer.
    ServerError,
    /// Any other 4xx or 6xx answer.
    Rejected,
}

impl FailureCause {
    /// The cause a final failure response stands for.
    pub fn from_status(code: u16) -> FailureCause {
        match code {
            486 | 600 => FailureCause::Busy,
            603 => FailureCause::Declined,
            404 | 410 | 604 => FailureCause::NotFound,
            480 => FailureCause::Unavailable,
            487 => FailureCause::Cancelled,
            415 | 488 | 606 => FailureCause::NotAcceptable,
            408 => FailureCause::NoAnswer,
            401 | 407 => FailureCause::AuthenticationFailed,
            403 => FailureCause::Forbidden,
            484 => FailureCause::AddressIncomplete,
            300..=399 => FailureCause::Redirected,
            500..=599 => FailureCause::ServerError,
            _ => FailureCause::Rejected,
        }
    }

    /// A stable snake_case name, as JSON output uses.
    pub fn name(self) -> &'static str {
        match self {
            FailureCause::Busy => "busy",
            FailureCause::Declined => "declined",
            FailureCause::NotFound => "not_found",
            FailureCause::Unavailable => "unavailable",
            FailureCause::Cancelled => "cancelled",
            FailureCause::NotAcceptable => "not_acceptable",
            FailureCause::NoAnswer => "no_answer",
            FailureCause::AuthenticationFailed => "authentication_failed",
            FailureCause::Forbidden => "forbidden",
            FailureCause::AddressIncomplete => "address_incomplete",
            FailureCause::Redirected => "redirected",
            FailureCause::Unreachable => "unreachable",
            FailureCause::ServerError => "server_error",
            FailureCause::Rejected => "rejected",
        }
    }
}

impl fmt::Display for FailureCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureCause::Busy => "busy",
            FailureCause::Declined => "declined",
            FailureCause::NotFound => "not found",
            FailureCause::Unavailable => "unavailable",
            FailureCause::Cancelled => "cancelled",
            FailureCause::NotAcceptable => "not acceptable",
            FailureCause::NoAnswer => "no answer from the network",
            FailureCause::AuthenticationFailed => "authentication failed",
            FailureCause::Forbidden => "forbidden",
            FailureCause::AddressIncomplete => "incomplete address",
            FailureCause::Redirected => "redirected where Callisto cannot follow",
            FailureCause::Unreachable => "unreachable",
            FailureCause::ServerError => "server error",
            FailureCause::Rejected => "rejected",
        })
    }
}

/// The standard reason phrase for the status codes Callisto sends.
pub(crate) fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        420 => "Bad Extension",
        422 => "Session Interval Too Small",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        other if other < 200 => "Session Progress",
        other if other < 300 => "OK",
        other if other < 400 => "Redirect",
        other if other < 500 => "Request Failure",
        other if other < 600 => "Server Failure",
        _ => "Global Failure",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_plain_words() {
        for (code, words) in [
            (486, "busy"),
            (600, "busy"),
            (603, "declined"),
            (404, "not found"),
            (604, "not found"),
            (480, "unavailable"),
            (487, "cancelled"),
            (488, "not acceptable"),
            (606, "not acceptable"),
            (408, "no answer from the network"),
            (503, "server error"),
            (499, "rejected"),
        ] {
            assert_eq!(FailureCause::from_status(code).to_string(), words, "{code}");
        }
        assert_eq!(FailureCause::NoAnswer.name(), "no_answer");
        assert_eq!(reason_phrase(491), "Request Pending");
        assert_eq!(reason_phrase(499), "Request Failure");
    }
}
