//! Digest authentication.
