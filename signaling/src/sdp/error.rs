//! What can be wrong with a session description on the wire.

use thiserror::Error;

use crate::call::Refusal;

/// Why a session description could not be parsed.
///
/// Each variant's `Display` text is short and starts with `Bad SDP:`: the reason phrase of the
/// error response to an INVITE whose body does not parse ([`SdpError::refusal`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SdpError {
    /// The body is empty or only blank lines.
    #[error("Bad SDP: empty")]
    Empty,
    /// The body is longer than [`MAX_SDP_LEN`](super::MAX_SDP_LEN).
    #[error("Bad SDP: too large")]
    TooLarge {
        /// The length of the offending input, in bytes.
        len: usize,
    },
    /// The first line is not `v=` (RFC 4566 §5).
    #[error("Bad SDP: v= line must come first")]
    VersionNotFirst,
    /// The `v=` line names a version other than 0.
    #[error("Bad SDP: unsupported version")]
    UnsupportedVersion,
    /// A line is not of the form `<letter>=<value>`, or carries a control character.
    #[error("Bad SDP: line {line} is malformed")]
    MalformedLine {
        /// The 1-based line number.
        line: usize,
    },
    /// A line the description must carry (`o=`, `s=`) is absent.
    #[error("Bad SDP: missing {0}= line")]
    MissingLine(char),
    /// A line that may appear once (`v=`, `o=`, `s=`) appears again.
    #[error("Bad SDP: duplicate {0}= line")]
    DuplicateLine(char),
    /// A known line has a value that does not follow its grammar; `reason` says how
    /// (`m= line has no port`, `o= line has a bad session version`, …).
    #[error("Bad SDP: {kind}= line {reason}")]
    BadField {
        /// The 1-based line number.
        line: usize,
        /// The line's type letter.
        kind: char,
        /// What is wrong, as a short phrase.
        reason: &'static str,
    },
    /// An `a=crypto` value does not follow RFC 4568 §9.1, or names a suite Callisto does not
    /// implement; `reason` says which.
    #[error("Bad SDP: crypto attribute {0}")]
    BadCrypto(&'static str),
}

impl SdpError {
    /// The status code a UAS answers a request whose body fails this way with: `400`
    /// (RFC 3261 §21.4.1, the body is malformed). A description that parses but cannot be
    /// accepted is a [`NegotiationError`](super::NegotiationError) instead (`488`).
    pub fn status_code(&self) -> u16 {
        400
    }

    /// The refusal of a request whose body fails this way: `400` with this error as the
    /// reason phrase and in a `Warning` (399).
    pub fn refusal(&self) -> Refusal {
        Refusal::new(self.status_code())
            .with_reason(self.to_string())
            .with_warning(399, self.to_string())
    }
}
