//! Parsing and building SIP messages.
//!
//! [`parse`] turns bytes into an [`rsip::SipMessage`], accepting the RFC 3261 forms `rsip` misses
//! on its own (folding, compact names, comma-joined lists). [`bad_request`] answers a request
//! that failed to parse. The [`headers`] accessors read the values Callisto needs from any
//! message, tolerant of forms `rsip`'s typed headers reject, and [`response_to`] builds a
//! response to a request.

mod bad_request;
mod error;
pub mod framing;
pub mod headers;
mod parser;
mod response;

#[cfg(test)]
mod parser_tests;
#[cfg(test)]
mod torture_tests;

pub use bad_request::bad_request;
pub use error::ParseError;
pub use headers::{CSeq, HeaderAccess, NameAddr, Via};
pub use parser::{expand_compact, parse, split_list, MAX_HEADER_SECTION_LEN, MAX_MESSAGE_LEN};
pub use response::response_to;
