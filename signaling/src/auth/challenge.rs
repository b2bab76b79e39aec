//! Parsing WWW-Authenticate / Proxy-Authenticate digest challenges.

use std::fmt;

use super::AuthError;

/// A digest algorithm (RFC 7616 §3.3, RFC 8760).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Algorithm {
    /// `MD5`, also the default when a challenge names none.
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256`.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256`.
    Sha512_256,
    /// `SHA-512-256-sess`.
    Sha512_256Sess,
    /// Any other token, kept as written; never used to answer.
    Other(String),
}

impl Algorithm {
    /// Parses an algorithm token, case-insensitively.
    pub fn parse(token: &str) -> Algorithm {
        match token.to_ascii_uppercase().as_str() {
            "MD5" => Algorithm::Md5,
            "MD5-SESS" => Algorithm::Md5Sess,
            "SHA-256" => Algorithm::Sha256,
            "SHA-256-SESS" => Algorithm::Sha256Sess,
            "SHA-512-256" => Algorithm::Sha512_256,
            "SHA-512-256-SESS" => Algorithm::Sha512_256Sess,
            _ => Algorithm::Other(token.to_owned()),
        }
    }

    /// The token as sent in an Authorization header.
    pub fn token(&self) -> &str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
            Algorithm::Other(token) => token,
        }
    }

    /// Whether Callisto can answer with this algorithm.
    pub fn is_supported(&self) -> bool {
        !matches!(self, Algorithm::Other(_))
    }

    /// Whether this is a `-sess` variant (A1 includes the nonces).
    pub fn is_session(&self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// Preference order for [`choose`]: higher is stronger, 0 is unusable.
    fn strength(&self) -> u8 {
        match self {
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => 3,
            Algorithm::Sha256 | Algorithm::Sha256Sess => 2,
            Algorithm::Md5 | Algorithm::Md5Sess => 1,
            Algorithm::Other(_) => 0,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.token())
    }
}

/// A quality-of-protection value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Qop {
    /// `auth`.
    Auth,
    /// `auth-int`: the body is part of the digest.
    AuthInt,
    /// Any other token.
    Other(String),
}

impl Qop {
    fn parse(token: &str) -> Qop {
        if token.eq_ignore_ascii_case("auth") {
            Qop::Auth
        } else if token.eq_ignore_ascii_case("auth-int") {
            Qop::AuthInt
        } else {
            Qop::Other(token.to_owned())
        }
    }
}

/// A digest challenge from a WWW-Authenticate or Proxy-Authenticate header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The protection realm.
    pub realm: String,
    /// The server nonce.
    pub nonce: String,
    /// The opaque value to echo back, if any.
    pub opaque: Option<String>,
    /// The algorithm; MD5 when the challenge names none.
    pub algorithm: Algorithm,
    /// Whether the challenge named an algorithm (echoed back the same way).
    pub algorithm_given: bool,
    /// The qop values offered; empty for an RFC 2069 challenge.
    pub qop: Vec<Qop>,
    /// Whether the previous nonce was merely stale (retry without asking the user).
    pub stale: bool,
    /// The `domain` parameter, raw.
    pub domain: Option<String>,
}

impl Challenge {
    /// Parses a header value such as
    /// `Digest realm="atlanta.com", nonce="84a4cc6f", qop="auth,auth-int", algorithm=MD5`.
    ///
    /// Parameters may come in any order with any whitespace; unknown ones are ignored; quoted
    /// and unquoted forms are both accepted. An unknown algorithm parses (as
    /// [`Algorithm::Other`]) so that [`choose`] can skip it.
    pub fn parse(value: &str) -> Result<Challenge, AuthError> {
        let value = value.trim();
        let scheme_end = value.find(char::is_whitespace).unwrap_or(value.len());
        let (scheme, rest) = value.split_at(scheme_end);
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(AuthError::NotDigest(scheme.to_owned()));
        }
        let mut realm = None;
        let mut nonce = None;
        let mut challenge = Challenge {
            realm: String::new(),
            nonce: String::new(),
            opaque: None,
            algorithm: Algorithm::Md5,
            algorithm_given: false,
            qop: Vec::new(),
            stale: false,
            domain: None,
        };
        for (name, value) in auth_params(rest)? {
            match name.to_ascii_lowercase().as_str() {
                "realm" => realm = Some(value),
                "nonce" => nonce = Some(value),
                "opaque" => challenge.opaque = Some(value),
                "algorithm" => {
                    challenge.algorithm = Algorithm::parse(value.trim());
                    challenge.algorithm_given = true;
                }
                "qop" => {
                    challenge.qop = value
                        .split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(Qop::parse)
                        .collect()
                }
                "stale" => challenge.stale = value.trim().eq_ignore_ascii_case("true"),
                "domain" => challenge.domain = Some(value),
                _ => {}
            }
        }
        challenge.realm = realm.ok_or(AuthError::MissingParam("realm"))?;
        challenge.nonce = nonce.ok_or(AuthError::MissingParam("nonce"))?;
        Ok(challenge)
    }

    /// The qop Callisto answers with: `auth` when offered, else `auth-int` when offered, else
    /// none for an RFC 2069 challenge. `Err` when only unknown qop values are offered.
    pub fn chosen_qop(&self) -> Result<Option<Qop>, AuthError> {
        if self.qop.is_empty() {
            Ok(None)
        } else if self.qop.contains(&Qop::Auth) {
            Ok(Some(Qop::Auth))
        } else if self.qop.contains(&Qop::AuthInt) {
            Ok(Some(Qop::AuthInt))
        } else {
            Err(AuthError::UnsupportedQop)
        }
    }

    /// Whether Callisto can answer this challenge.
    pub fn is_supported(&self) -> bool {
        self.algorithm.is_supported() && self.chosen_qop().is_ok()
    }
}

/// Picks the challenge to answer among those of one response: the strongest supported
/// algorithm (SHA-512-256, then SHA-256, then MD5, as RFC 8760 §2.4 prefers SHA-2 over MD5),
/// the first listed among equals. Challenges Callisto cannot answer are skipped.
pub fn choose(challenges: &[Challenge]) -> Option<&Challenge> {
    let mut best: Option<&Challenge> = None;
    for challenge in challenges.iter().filter(|c| c.is_supported()) {
        if best.is_none_or(|b| challenge.algorithm.strength() > b.algorithm.strength()) {
            best = Some(challenge);
        }
    }
    best
}

/// Splits `name=value, name="quoted, value", …` into pairs, unescaping quoted strings.
fn auth_params(text: &str) -> Result<Vec<(String, String)>, AuthError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() || c == ',' {
                break;
            }
            name.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') || name.is_empty() {
            return Err(AuthError::Malformed);
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(AuthError::Malformed),
                    Some('"') => break,
                    Some('\\') => value.push(chars.next().ok_or(AuthError::Malformed)?),
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' || c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((name, value));
    }
}
