//! Parsing and building SIP messages.
