//! Parsing and building SIP messages.

pub mod framing;
