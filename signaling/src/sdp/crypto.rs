//! SDES keys: the `a=crypto` attribute (RFC 4568 §9.1).
//!
//! ```text
//! a=crypto:<tag> <crypto-suite> inline:<base64 key||salt>[|<lifetime>][|<MKI>:<length>] [<session-params>]
//! ```
//!
//! Callisto implements the two AES counter-mode suites of RFC 4568 §6.2, whose master key is
//! 16 bytes of key and 14 of salt. A value with another suite, or several `inline:` keys, does
//! not parse ([`SdpError::BadCrypto`]); the negotiation then treats the line as not offered.
//! Keys are drawn from a random source the caller passes in: this module never seeds anything
//! itself.

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine as _};
use rand::RngCore;

use super::error::SdpError;

/// Standard base64, writing padding, reading with or without it.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// An SRTP crypto suite Callisto implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpSuite {
    /// `AES_CM_128_HMAC_SHA1_80`: AES-128 counter mode, 80-bit authentication tag.
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32`: AES-128 counter mode, 32-bit RTP authentication tag.
    AesCm128HmacSha1_32,
}

impl SrtpSuite {
    /// The suite's name in SDP.
    pub fn as_str(self) -> &'static str {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// Reads a suite name (any case: some PBXs write it in lower case).
    pub fn from_name(name: &str) -> Option<Self> {
        [
            SrtpSuite::AesCm128HmacSha1_80,
            SrtpSuite::AesCm128HmacSha1_32,
        ]
        .into_iter()
        .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for SrtpSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An SRTP master key and master salt, as carried in one `inline:` key parameter.
///
/// Its `Debug` output hides the bytes: keys never reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpMasterKey {
    bytes: [u8; SrtpMasterKey::LEN],
}

impl SrtpMasterKey {
    /// Bytes of master key and salt together.
    pub const LEN: usize = Self::KEY_LEN + Self::SALT_LEN;
    /// Bytes of master key.
    pub const KEY_LEN: usize = 16;
    /// Bytes of master salt.
    pub const SALT_LEN: usize = 14;

    /// A fresh key and salt from `rng`, which must be a cryptographically secure generator in
    /// production (`rand::rngs::OsRng`, `rand::thread_rng()`).
    pub fn generate(rng: &mut impl RngCore) -> Self {
        let mut bytes = [0; Self::LEN];
        rng.fill_bytes(&mut bytes);
        SrtpMasterKey { bytes }
    }

    /// A key from its 30 bytes (16 of key, then 14 of salt).
    pub fn from_bytes(bytes: [u8; Self::LEN]) -> Self {
        SrtpMasterKey { bytes }
    }

    /// The 16-byte master key.
    pub fn key(&self) -> &[u8] {
        &self.bytes[..Self::KEY_LEN]
    }

    /// The 14-byte master salt.
    pub fn salt(&self) -> &[u8] {
        &self.bytes[Self::KEY_LEN..]
    }

    /// Key and salt together.
    pub fn as_bytes(&self) -> &[u8; Self::LEN] {
        &self.bytes
    }

    /// The base64 text of `inline:`.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.bytes)
    }

    /// Reads the base64 text of `inline:`; `None` unless it decodes to exactly 30 bytes.
    pub fn from_base64(text: &str) -> Option<Self> {
        let decoded = BASE64.decode(text).ok()?;
        Some(SrtpMasterKey {
            bytes: decoded.try_into().ok()?,
        })
    }
}

impl fmt::Debug for SrtpMasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SrtpMasterKey(..)")
    }
}

/// The lifetime of a master key, in packets (RFC 4568 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLifetime {
    /// Written `2^<n>`.
    PowerOfTwo(u8),
    /// Written as a decimal number.
    Packets(u64),
}

impl KeyLifetime {
    /// The lifetime in packets (saturating for `2^64` and above).
    pub fn packets(self) -> u64 {
        match self {
            KeyLifetime::PowerOfTwo(n) => 1u64.checked_shl(u32::from(n)).unwrap_or(u64::MAX),
            KeyLifetime::Packets(n) => n,
        }
    }
}

/// A master key identifier: its value and its length in bytes on the wire (RFC 4568 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mki {
    /// The MKI value.
    pub value: u64,
    /// Its length in each SRTP packet, 1 to 128 bytes.
    pub length: u8,
}

/// One `a=crypto` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoAttribute {
    /// The tag that identifies this line within its media section; the answer repeats the
    /// tag of the offered line it accepts.
    pub tag: u32,
    /// The crypto suite.
    pub suite: SrtpSuite,
    /// The master key and salt the writer sends with.
    pub key: SrtpMasterKey,
    /// The key lifetime, when given.
    pub lifetime: Option<KeyLifetime>,
    /// The master key identifier, when given.
    pub mki: Option<Mki>,
    /// The session parameters (`KDR=`, `UNENCRYPTED_SRTP`, `WSH=`, …), as written.
    pub session_params: Vec<String>,
}

impl CryptoAttribute {
    /// A line with no lifetime, MKI or session parameters.
    pub fn new(tag: u32, suite: SrtpSuite, key: SrtpMasterKey) -> Self {
        CryptoAttribute {
            tag,
            suite,
            key,
            lifetime: None,
            mki: None,
            session_params: Vec::new(),
        }
    }

    /// Reads an `a=crypto` value (the text after `a=crypto:`).
    pub fn parse(value: &str) -> Result<Self, SdpError> {
        let mut fields = value.split_whitespace();
        let tag = fields
            .next()
            .filter(|t| (1..=9).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse::<u32>().ok())
            .ok_or(SdpError::BadCrypto("has a bad tag"))?;
        let suite = fields
            .next()
            .ok_or(SdpError::BadCrypto("has no suite"))
            .and_then(|s| {
                SrtpSuite::from_name(s).ok_or(SdpError::BadCrypto("has an unsupported suite"))
            })?;
        let key_params = fields
            .next()
            .ok_or(SdpError::BadCrypto("has no key parameters"))?;
        if key_params.contains(';') {
            return Err(SdpError::BadCrypto("has several keys"));
        }
        let inline = key_params
            .get(..7)
            .filter(|method| method.eq_ignore_ascii_case("inline:"))
            .and_then(|_| key_params.get(7..))
            .ok_or(SdpError::BadCrypto("has no inline key"))?;
        let mut parts = inline.split('|');
        let key = parts
            .next()
            .and_then(SrtpMasterKey::from_base64)
            .ok_or(SdpError::BadCrypto("has a bad key"))?;
        let (mut lifetime, mut mki) = (None, None);
        for part in parts {
            if let Some((value, length)) = part.split_once(':') {
                if mki.is_some() {
                    return Err(SdpError::BadCrypto("has a bad MKI"));
                }
                mki = Some(parse_mki(value, length).ok_or(SdpError::BadCrypto("has a bad MKI"))?);
            } else {
                if lifetime.is_some() || mki.is_some() {
                    return Err(SdpError::BadCrypto("has a bad lifetime"));
                }
                lifetime =
                    Some(parse_lifetime(part).ok_or(SdpError::BadCrypto("has a bad lifetime"))?);
            }
        }
        Ok(CryptoAttribute {
            tag,
            suite,
            key,
            lifetime,
            mki,
            session_params: fields.map(str::to_owned).collect(),
        })
    }

    /// Whether Callisto's SRTP can run with this line: no MKI (packets would carry it) and no
    /// session parameter other than the window size hint `WSH=` or the default `KDR=0`.
    pub fn is_usable(&self) -> bool {
        self.mki.is_none()
            && self.session_params.iter().all(|p| {
                p.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("WSH="))
                    || p.eq_ignore_ascii_case("KDR=0")
            })
    }
}

/// The `a=crypto` value (without `a=crypto:`).
impl fmt::Display for CryptoAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} inline:{}",
            self.tag,
            self.suite,
            self.key.to_base64()
        )?;
        match self.lifetime {
            Some(KeyLifetime::PowerOfTwo(n)) => write!(f, "|2^{n}")?,
            Some(KeyLifetime::Packets(n)) => write!(f, "|{n}")?,
            None => {}
        }
        if let Some(mki) = self.mki {
            write!(f, "|{}:{}", mki.value, mki.length)?;
        }
        for param in &self.session_params {
            write!(f, " {param}")?;
        }
        Ok(())
    }
}

fn parse_lifetime(text: &str) -> Option<KeyLifetime> {
    match text.strip_prefix("2^") {
        Some(exp) => {
            let exp = exp.parse::<u8>().ok().filter(|e| *e <= 64)?;
            Some(KeyLifetime::PowerOfTwo(exp))
        }
        None => text.parse::<u64>().ok().map(KeyLifetime::Packets),
    }
}

fn parse_mki(value: &str, length: &str) -> Option<Mki> {
    let value = value.parse::<u64>().ok()?;
    let length = length
        .parse::<u8>()
        .ok()
        .filter(|l| (1..=128).contains(l))?;
    Some(Mki { value, length })
}
