//! What can be wrong with a SIP message on the wire.

use thiserror::Error;

/// Why a SIP message could not be parsed.
///
/// Each variant's `Display` text is short and fit to be the reason phrase of the
/// `400 Bad Request` (RFC 3261 §8.2.6) sent back for a malformed request.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The message is empty or only blank lines.
    #[error("Empty Message")]
    Empty,
    /// The message is longer than Callisto accepts.
    #[error("Message Too Large")]
    TooLarge {
        /// The length of the offending input, in bytes.
        len: usize,
    },
    /// No empty line ends the header section.
    #[error("Missing End Of Headers")]
    UnterminatedHeaders,
    /// The request line or status line is malformed.
    #[error("Bad Start Line")]
    BadStartLine,
    /// The SIP version is not SIP/2.0.
    #[error("Unsupported SIP Version")]
    BadVersion,
    /// The request method is not one Callisto knows (it is answered with 501, not 400).
    #[error("Unsupported Method {0}")]
    UnknownMethod(String),
    /// The Request-URI could not be parsed.
    #[error("Bad Request-URI")]
    BadRequestUri,
    /// The header section is not UTF-8.
    #[error("Headers Not UTF-8")]
    NotUtf8,
    /// A header line is malformed (no colon, bad name, or a value that does not parse).
    #[error("Bad Header {name}")]
    BadHeader {
        /// The header's name, or the start of the offending line when it has none.
        name: String,
    },
    /// A header the message must carry is absent.
    #[error("Missing {0} Header")]
    MissingHeader(&'static str),
    /// A header that may appear once appears with several values.
    #[error("Multiple {0} Headers")]
    DuplicateHeader(&'static str),
    /// The CSeq method differs from the request method.
    #[error("CSeq Method Mismatch")]
    CSeqMethodMismatch,
    /// The body is shorter than Content-Length announces.
    #[error("Content-Length Mismatch")]
    ContentLengthMismatch {
        /// The Content-Length value.
        declared: usize,
        /// The number of body bytes present.
        actual: usize,
    },
}

impl ParseError {
    /// The status code a UAS answers a request failing this way with: 501 for an unknown
    /// method (RFC 3261 §8.2.1), 505 for a wrong version (§8.2.2), 513 when too large, else 400.
    pub fn status_code(&self) -> u16 {
        match self {
            ParseError::UnknownMethod(_) => 501,
            ParseError::BadVersion => 505,
            ParseError::TooLarge { .. } => 513,
            _ => 400,
        }
    }
}
