//! Computing digest responses (RFC 7616 §3.4, RFC 2617 §3.2.2, RFC 2069).

use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};

use super::challenge::{Algorithm, Challenge, Qop};
use super::{AuthError, Credentials};

/// Answers one challenge, possibly many times: it counts the uses of the nonce (`nc`).
#[derive(Debug, Clone)]
pub struct DigestSession {
    challenge: Challenge,
    qop: Option<Qop>,
    nonce_count: u32,
}

impl DigestSession {
    /// A session for `challenge`; `Err` when its algorithm or qop is not supported.
    pub fn new(challenge: Challenge) -> Result<Self, AuthError> {
        if !challenge.algorithm.is_supported() {
            return Err(AuthError::UnsupportedAlgorithm(
                challenge.algorithm.token().to_owned(),
            ));
        }
        let qop = challenge.chosen_qop()?;
        Ok(DigestSession {
            challenge,
            qop,
            nonce_count: 0,
        })
    }

    /// Replaces the challenge (after a new 401/407, e.g. a stale nonce). The nonce count
    /// restarts when the nonce changed.
    pub fn update(&mut self, challenge: Challenge) -> Result<(), AuthError> {
        let nonce_count = if challenge.nonce == self.challenge.nonce {
            self.nonce_count
        } else {
            0
        };
        *self = DigestSession::new(challenge)?;
        self.nonce_count = nonce_count;
        Ok(())
    }

    /// The challenge being answered.
    pub fn challenge(&self) -> &Challenge {
        &self.challenge
    }

    /// How many times the current nonce has been used.
    pub fn nonce_count(&self) -> u32 {
        self.nonce_count
    }

    /// The Authorization / Proxy-Authorization value for a request without a body (or when
    /// `qop=auth`): the body only matters for `auth-int`.
    pub fn authorization(
        &mut self,
        creds: &Credentials,
        method: &str,
        digest_uri: &str,
        cnonce: &str,
    ) -> String {
        self.authorization_with_body(creds, method, digest_uri, cnonce, &[])
    }

    /// The Authorization / Proxy-Authorization value, with `body` hashed when `qop=auth-int`.
    /// Each call uses the next nonce count.
    pub fn authorization_with_body(
        &mut self,
        creds: &Credentials,
        method: &str,
        digest_uri: &str,
        cnonce: &str,
        body: &[u8],
    ) -> String {
        self.nonce_count = self.nonce_count.wrapping_add(1);
        let nc = format!("{:08x}", self.nonce_count);
        let c = &self.challenge;
        let response = compute_response(
            &c.algorithm,
            creds,
            &c.realm,
            &c.nonce,
            method,
            digest_uri,
            self.qop.as_ref().map(|q| (q, nc.as_str(), cnonce)),
            body,
        );
        let mut out = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\"",
            quote(&creds.username),
            quote(&c.realm),
            quote(&c.nonce),
            quote(digest_uri),
            response
        );
        if c.algorithm_given || self.qop.is_some() {
            out.push_str(", algorithm=");
            out.push_str(c.algorithm.token());
        }
        if self.qop.is_some() {
            out.push_str(&format!(", cnonce=\"{}\"", quote(cnonce)));
        }
        if let Some(opaque) = &c.opaque {
            out.push_str(&format!(", opaque=\"{}\"", quote(opaque)));
        }
        match &self.qop {
            Some(Qop::AuthInt) => out.push_str(&format!(", qop=auth-int, nc={nc}")),
            Some(_) => out.push_str(&format!(", qop=auth, nc={nc}")),
            None => {}
        }
        out
    }
}

/// The `response` value: `KD(H(A1), nonce:nc:cnonce:qop:H(A2))`, or `KD(H(A1), nonce:H(A2))`
/// without qop (RFC 7616 §3.4.1, RFC 2069).
#[allow(clippy::too_many_arguments)]
pub(crate) fn compute_response(
    algorithm: &Algorithm,
    creds: &Credentials,
    realm: &str,
    nonce: &str,
    method: &str,
    digest_uri: &str,
    qop: Option<(&Qop, &str, &str)>,
    body: &[u8],
) -> String {
    let h = |data: &str| hash_hex(algorithm, data.as_bytes());
    let mut ha1 = h(&format!("{}:{realm}:{}", creds.username, creds.password));
    if algorithm.is_session() {
        let cnonce = qop.map_or("", |(_, _, cnonce)| cnonce);
        ha1 = h(&format!("{ha1}:{nonce}:{cnonce}"));
    }
    let ha2 = match qop {
        Some((Qop::AuthInt, _, _)) => h(&format!(
            "{method}:{digest_uri}:{}",
            hash_hex(algorithm, body)
        )),
        _ => h(&format!("{method}:{digest_uri}")),
    };
    match qop {
        Some((qop, nc, cnonce)) => {
            let qop = if *qop == Qop::AuthInt {
                "auth-int"
            } else {
                "auth"
            };
            h(&format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}"))
        }
        None => h(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

fn hash_hex(algorithm: &Algorithm, data: &[u8]) -> String {
    match algorithm {
        Algorithm::Sha256 | Algorithm::Sha256Sess => hex(&Sha256::digest(data)),
        Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => hex(&Sha512_256::digest(data)),
        _ => hex(&Md5::digest(data)),
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Escapes `"` and `\` for a quoted-string.
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
