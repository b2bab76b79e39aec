//! Stream framing for SIP over TCP/TLS (RFC 3261 §18.3) and keep-alives (RFC 5626 §3.5.1).
