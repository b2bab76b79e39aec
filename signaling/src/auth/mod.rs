//! HTTP digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 8760).
//!
//! Sans-IO: the caller passes the challenge text it received and the client nonce it drew, and
//! gets back the `Authorization`/`Proxy-Authorization` value to send.
//!
//! ```text
//!   401/407 ──► Challenge::parse (each WWW-/Proxy-Authenticate) ──► choose ──► DigestSession
//!                                                                                  │
//!   retried request ◄── Authorization value ◄── DigestSession::authorization ◄─────┘
//! ```

mod challenge;
mod digest;

#[cfg(test)]
mod tests;

use std::fmt;

use thiserror::Error;

pub use challenge::{choose, Algorithm, Challenge, Qop};
pub use digest::DigestSession;

/// Why a challenge cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The challenge is not for the Digest scheme.
    #[error("unsupported authentication scheme {0}")]
    NotDigest(String),
    /// A required parameter (realm, nonce) is absent.
    #[error("challenge lacks the {0} parameter")]
    MissingParam(&'static str),
    /// The challenge text does not follow the auth-param grammar.
    #[error("malformed challenge")]
    Malformed,
    /// The challenge asks for a digest algorithm Callisto does not implement.
    #[error("unsupported digest algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// The challenge offers only quality-of-protection values Callisto does not implement.
    #[error("no supported qop offered")]
    UnsupportedQop,
}

/// A username and password for digest authentication. Its `Debug` output hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The username (the digest `username` parameter).
    pub username: String,
    /// The password.
    pub password: String,
}

impl Credentials {
    /// Credentials from a username and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}
