//! SDES-SRTP (RFC 4568 keys, RFC 3711 protection) for the classic `RTP/SAVP` path.
//!
//! Each side of an SDES call announces its own master key and salt in `a=crypto` (30 bytes for the
//! AES-CM-128 suites). An [`SrtpSession`] holds `rtc-srtp` contexts built from them: ours
//! protects what we send, the peer's unprotects what we receive. Replay protection is on for
//! received SRTP (a 64-packet window per SSRC) and SRTCP (64 indices), and a packet only moves the
//! rollover counter or the replay window once its authentication tag has been verified.
//!
//! # Unauthenticated packets never touch receive state
//! `rtc-srtp` creates an SSRC's state — and starts its replay window at that packet's sequence
//! number or index — when it first sees the SSRC, before the tag is checked. A forged first packet
//! with a far-ahead sequence number would then make the genuine stream look replayed, and forged
//! SSRCs would each leave state behind. So the receive side keeps two contexts keyed alike: the
//! replay-protected `main` context only ever sees SSRCs that have authenticated; a packet from an
//! SSRC it does not know is first tried in a `probe` context without replay protection, and only
//! if its tag verifies there does it go on to `main`. The probe is rebuilt whenever it has seen
//! [`MAX_PROBED_SSRCS`] distinct SSRCs, so forgeries cannot grow it either.
//!
//! Every refusal is an [`SrtpError`] and counted in [`SrtpCounters`] by class (authentication
//! failed, replayed, too short, malformed header, unencrypted SRTCP). The RTP header is validated
//! by [`validate_rtp_header`] before `rtc-srtp` sees it, so no network input reaches a slice
//! index it has not been checked against. SRTCP packets with the E bit clear are refused:
//! Callisto never negotiates `UNENCRYPTED_SRTCP`, and the library would return such a packet
//! without checking its tag.

use std::collections::HashSet;
use std::fmt;

use bytes::{Bytes, BytesMut};
use rand::Rng;
use rtc_shared::error::Error as RtcError;
use rtc_srtp::context::Context;
use rtc_srtp::crypto::providers::RingProvider;
use rtc_srtp::crypto::RTCCryptoProvider;
use rtc_srtp::option::{
    srtcp_no_replay_protection, srtcp_replay_protection, srtp_no_replay_protection,
    srtp_replay_protection,
};
use rtc_srtp::protection_profile::ProtectionProfile;

use super::packet::{parse_header, validate_rtp_header, RtpHeader};

/// Replay window, in packets, for SRTP and SRTCP: a packet up to this far behind the newest
/// is still taken if it was not seen. Wide, so that a resend (NACK) of a packet lost early in
/// a keyframe's burst — hundreds of packets at several Mbps, plus a round trip — is not
/// refused as a replay.
pub const REPLAY_WINDOW: usize = 1_024;
/// Distinct unauthenticated SSRCs the probe context holds before it is rebuilt.
pub const MAX_PROBED_SSRCS: usize = 32;
/// Length of an AES-CM-128 master key.
pub const MASTER_KEY_LEN: usize = 16;
/// Length of an AES-CM master salt.
pub const MASTER_SALT_LEN: usize = 14;
/// Length of the SRTCP index field with its E bit.
const SRTCP_INDEX_LEN: usize = 4;
/// Length of the SRTCP authentication tag (80 bits for both suites, RFC 4568 §6.2).
const SRTCP_TAG_LEN: usize = 10;

/// The SDES crypto suites Callisto offers and accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpProfile {
    /// `AES_CM_128_HMAC_SHA1_80`: 80-bit tags on SRTP and SRTCP.
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32`: 32-bit tag on SRTP, 80-bit on SRTCP.
    AesCm128HmacSha1_32,
}

impl SrtpProfile {
    /// The suite for an `a=crypto` suite name, case-sensitively as RFC 4568 registers them.
    pub fn from_sdes_name(name: &str) -> Option<Self> {
        match name {
            "AES_CM_128_HMAC_SHA1_80" => Some(SrtpProfile::AesCm128HmacSha1_80),
            "AES_CM_128_HMAC_SHA1_32" => Some(SrtpProfile::AesCm128HmacSha1_32),
            _ => None,
        }
    }

    /// The suite's `a=crypto` name.
    pub fn sdes_name(self) -> &'static str {
        match self {
            SrtpProfile::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpProfile::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// Bytes an SRTP packet grows by when protected.
    pub fn rtp_overhead(self) -> usize {
        match self {
            SrtpProfile::AesCm128HmacSha1_80 => 10,
            SrtpProfile::AesCm128HmacSha1_32 => 4,
        }
    }

    /// Bytes an SRTCP packet grows by when protected (index and tag).
    pub fn rtcp_overhead(self) -> usize {
        SRTCP_INDEX_LEN + SRTCP_TAG_LEN
    }

    fn protection_profile(self) -> ProtectionProfile {
        match self {
            SrtpProfile::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            SrtpProfile::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        }
    }
}

/// A 16-byte master key and 14-byte master salt: the 30 bytes of an `a=crypto` `inline:` key
/// (after base64 decoding). Its `Debug` output never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKeyMaterial {
    bytes: [u8; MASTER_KEY_LEN + MASTER_SALT_LEN],
}

impl SrtpKeyMaterial {
    /// Key material from the 30 decoded bytes of an `inline:` key (key first, then salt).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SrtpError> {
        let bytes = bytes.try_into().map_err(|_| SrtpError::KeyLength {
            expected: MASTER_KEY_LEN + MASTER_SALT_LEN,
            got: bytes.len(),
        })?;
        Ok(SrtpKeyMaterial { bytes })
    }

    /// Fresh key material for our side of a call, from a cryptographically secure generator.
    pub fn generate<R: rand::CryptoRng + Rng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; MASTER_KEY_LEN + MASTER_SALT_LEN];
        rng.fill_bytes(&mut bytes);
        SrtpKeyMaterial { bytes }
    }

    /// The 30 bytes (key then salt), for base64-encoding into `a=crypto`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn key(&self) -> &[u8] {
        &self.bytes[..MASTER_KEY_LEN]
    }

    fn salt(&self) -> &[u8] {
        &self.bytes[MASTER_KEY_LEN..]
    }
}

impl fmt::Debug for SrtpKeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SrtpKeyMaterial(<redacted>)")
    }
}

/// Why a packet could not be protected or unprotected, or a session not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SrtpError {
    /// Key material of the wrong length.
    #[error("SRTP key material must be {expected} bytes, got {got}")]
    KeyLength {
        /// Bytes required.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// The authentication tag does not match: forged, corrupted, or keyed differently.
    #[error("SRTP/SRTCP authentication failed")]
    AuthenticationFailed,
    /// A packet already received (or too old for the replay window).
    #[error("replayed SRTP/SRTCP packet")]
    Replayed,
    /// Too short to hold a header and an authentication tag.
    #[error("SRTP/SRTCP packet too short")]
    TooShort,
    /// The clear-text header is not valid RTP or RTCP.
    #[error("malformed SRTP/SRTCP header")]
    MalformedHeader,
    /// An SRTCP packet with the E bit clear (unencrypted SRTCP is never negotiated).
    #[error("unencrypted SRTCP refused")]
    UnencryptedSrtcp,
    /// Any other failure reported by the SRTP library.
    #[error("SRTP failure: {0}")]
    Crypto(String),
}

/// Counts of an [`SrtpSession`]'s work and refusals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SrtpCounters {
    /// RTP packets protected.
    pub rtp_protected: u64,
    /// SRTP packets unprotected.
    pub rtp_unprotected: u64,
    /// RTCP packets protected.
    pub rtcp_protected: u64,
    /// SRTCP packets unprotected.
    pub rtcp_unprotected: u64,
    /// Packets refused for a bad authentication tag.
    pub auth_failed: u64,
    /// Packets refused as replays.
    pub replayed: u64,
    /// Packets refused as too short.
    pub too_short: u64,
    /// Packets refused for a malformed header, or unencrypted SRTCP.
    pub malformed: u64,
    /// Other failures.
    pub other: u64,
}

/// The two directions of an SDES-keyed call.
pub struct SrtpSession {
    profile: SrtpProfile,
    /// The key `outbound` protects with.
    local: SrtpKeyMaterial,
    outbound: Context,
    inbound: Inbound,
    counters: SrtpCounters,
}

/// The receive direction: the peer's key, in a replay-protected context for authenticated SSRCs
/// and a probe context for the rest (see the module docs).
struct Inbound {
    profile: SrtpProfile,
    key: SrtpKeyMaterial,
    main: Context,
    probe: Context,
    probed: Vec<u32>,
    rtp_ssrcs: HashSet<u32>,
    rtcp_ssrcs: HashSet<u32>,
}

impl Inbound {
    fn new(profile: SrtpProfile, key: &SrtpKeyMaterial) -> Result<Self, SrtpError> {
        Ok(Inbound {
            profile,
            key: key.clone(),
            main: context(profile, key, true)?,
            probe: context(profile, key, false)?,
            probed: Vec::new(),
            rtp_ssrcs: HashSet::new(),
            rtcp_ssrcs: HashSet::new(),
        })
    }

    /// Makes room in the probe for `ssrc`, rebuilding it when it holds too many SSRCs.
    fn probe_for(&mut self, ssrc: u32) -> Result<&mut Context, SrtpError> {
        if !self.probed.contains(&ssrc) {
            if self.probed.len() >= MAX_PROBED_SSRCS {
                self.probe = context(self.profile, &self.key, false)?;
                self.probed.clear();
            }
            self.probed.push(ssrc);
        }
        Ok(&mut self.probe)
    }

    fn decrypt_rtp(&mut self, packet: &[u8], header: &RtpHeader) -> Result<BytesMut, SrtpError> {
        let ssrc = header.ssrc;
        if !self.rtp_ssrcs.contains(&ssrc) {
            self.probe_for(ssrc)?
                .decrypt_rtp_with_header(packet, header)
                .map_err(classify)?;
            self.rtp_ssrcs.insert(ssrc);
        }
        self.main
            .decrypt_rtp_with_header(packet, header)
            .map_err(classify)
    }

    fn decrypt_rtcp(&mut self, packet: &[u8]) -> Result<BytesMut, SrtpError> {
        let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        if !self.rtcp_ssrcs.contains(&ssrc) {
            self.probe_for(ssrc)?
                .decrypt_rtcp(packet)
                .map_err(classify)?;
            self.rtcp_ssrcs.insert(ssrc);
        }
        self.main.decrypt_rtcp(packet).map_err(classify)
    }
}

/// A context for `key`, with or without replay protection.
fn context(
    profile: SrtpProfile,
    key: &SrtpKeyMaterial,
    replay_protection: bool,
) -> Result<Context, SrtpError> {
    let (srtp, srtcp) = if replay_protection {
        (
            srtp_replay_protection(REPLAY_WINDOW),
            srtcp_replay_protection(REPLAY_WINDOW),
        )
    } else {
        (srtp_no_replay_protection(), srtcp_no_replay_protection())
    };
    let crypto = RingProvider::new();
    Context::new(
        key.key(),
        key.salt(),
        profile.protection_profile(),
        Some(srtp),
        Some(srtcp),
        crypto.crypto(),
    )
    .map_err(|e| SrtpError::Crypto(e.to_string()))
}

impl fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpSession")
            .field("profile", &self.profile)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl SrtpSession {
    /// A session for the negotiated `profile`: `local` is the key we announced (it protects what
    /// we send), `remote` the key the peer announced (it unprotects what we receive).
    pub fn new(
        profile: SrtpProfile,
        local: &SrtpKeyMaterial,
        remote: &SrtpKeyMaterial,
    ) -> Result<Self, SrtpError> {
        Ok(SrtpSession {
            profile,
            local: local.clone(),
            outbound: context(profile, local, false)?,
            inbound: Inbound::new(profile, remote)?,
            counters: SrtpCounters::default(),
        })
    }

    /// Takes up renegotiated keys. Only a direction whose key (or the suite) changed gets a
    /// new context; the other keeps its own — rollover counter, SRTCP index, replay window —
    /// since a context lives as long as its key (RFC 3711 §3.3.1): restarting ours under the
    /// same key would number packets afresh, so a peer that kept its context could not
    /// authenticate them after a sequence wrap, and keystream would be used twice (§9.1).
    pub fn rekey(
        &mut self,
        profile: SrtpProfile,
        local: &SrtpKeyMaterial,
        remote: &SrtpKeyMaterial,
    ) -> Result<(), SrtpError> {
        let suite_changed = profile != self.profile;
        let outbound = (suite_changed || *local != self.local)
            .then(|| context(profile, local, false))
            .transpose()?;
        let inbound = (suite_changed || *remote != self.inbound.key)
            .then(|| Inbound::new(profile, remote))
            .transpose()?;
        if let Some(outbound) = outbound {
            self.outbound = outbound;
            self.local = local.clone();
        }
        if let Some(inbound) = inbound {
            self.inbound = inbound;
        }
        self.profile = profile;
        Ok(())
    }

    /// The negotiated suite.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// Counters.
    pub fn counters(&self) -> SrtpCounters {
        self.counters
    }

    /// Encrypts and authenticates an RTP packet we built.
    pub fn protect_rtp(&mut self, packet: &[u8]) -> Result<Bytes, SrtpError> {
        let result = checked_rtp_header(packet).and_then(|header| {
            self.outbound
                .encrypt_rtp_with_header(packet, &header)
                .map_err(classify)
        });
        self.tally(result, |c| &mut c.rtp_protected)
    }

    /// Authenticates, checks for replay and decrypts a received SRTP packet.
    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Result<Bytes, SrtpError> {
        let result =
            checked_rtp_header(packet).and_then(|header| self.inbound.decrypt_rtp(packet, &header));
        self.tally(result, |c| &mut c.rtp_unprotected)
    }

    /// Encrypts and authenticates a compound RTCP packet we built.
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<Bytes, SrtpError> {
        let result = check_rtcp_header(packet)
            .and_then(|()| self.outbound.encrypt_rtcp(packet).map_err(classify));
        self.tally(result, |c| &mut c.rtcp_protected)
    }

    /// Authenticates, checks for replay and decrypts a received SRTCP packet.
    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Result<Bytes, SrtpError> {
        let result = check_srtcp(packet).and_then(|()| self.inbound.decrypt_rtcp(packet));
        self.tally(result, |c| &mut c.rtcp_unprotected)
    }

    fn tally(
        &mut self,
        result: Result<BytesMut, SrtpError>,
        done: impl FnOnce(&mut SrtpCounters) -> &mut u64,
    ) -> Result<Bytes, SrtpError> {
        let c = &mut self.counters;
        match &result {
            Ok(_) => *done(c) += 1,
            Err(SrtpError::AuthenticationFailed) => c.auth_failed += 1,
            Err(SrtpError::Replayed) => c.replayed += 1,
            Err(SrtpError::TooShort) => c.too_short += 1,
            Err(SrtpError::MalformedHeader | SrtpError::UnencryptedSrtcp) => c.malformed += 1,
            Err(_) => c.other += 1,
        }
        result.map(BytesMut::freeze)
    }
}

/// Validates the clear RTP header and parses it as `rtc-srtp` will see it.
fn checked_rtp_header(packet: &[u8]) -> Result<RtpHeader, SrtpError> {
    let header_len = validate_rtp_header(packet).map_err(|e| match e {
        super::packet::RtpError::TooShort { .. } => SrtpError::TooShort,
        _ => SrtpError::MalformedHeader,
    })?;
    parse_header(packet, header_len).map_err(|_| SrtpError::MalformedHeader)
}

/// The first RTCP header: version 2 and at least header plus sender SSRC.
fn check_rtcp_header(packet: &[u8]) -> Result<(), SrtpError> {
    if packet.len() < 8 {
        return Err(SrtpError::TooShort);
    }
    if packet[0] >> 6 != 2 {
        return Err(SrtpError::MalformedHeader);
    }
    Ok(())
}

/// An SRTCP packet: a valid first header, room for index and tag, and the E bit set.
fn check_srtcp(packet: &[u8]) -> Result<(), SrtpError> {
    check_rtcp_header(packet)?;
    if packet.len() < 8 + SRTCP_INDEX_LEN + SRTCP_TAG_LEN {
        return Err(SrtpError::TooShort);
    }
    let e_byte = packet[packet.len() - SRTCP_TAG_LEN - SRTCP_INDEX_LEN];
    if e_byte & 0x80 == 0 {
        return Err(SrtpError::UnencryptedSrtcp);
    }
    Ok(())
}

fn classify(error: RtcError) -> SrtpError {
    match error {
        RtcError::RtpFailedToVerifyAuthTag | RtcError::RtcpFailedToVerifyAuthTag => {
            SrtpError::AuthenticationFailed
        }
        RtcError::SrtpSsrcDuplicated(..) | RtcError::SrtcpSsrcDuplicated(..) => SrtpError::Replayed,
        RtcError::ErrTooShortRtp
        | RtcError::ErrTooShortRtcp
        | RtcError::SrtpTooSmall(..)
        | RtcError::SrtcpTooSmall(..)
        | RtcError::PacketTooShort
        | RtcError::ErrHeaderSizeInsufficient
        | RtcError::ErrHeaderSizeInsufficientForExtension => SrtpError::TooShort,
        RtcError::BadVersion | RtcError::InvalidHeader => SrtpError::MalformedHeader,
        other => SrtpError::Crypto(other.to_string()),
    }
}

#[cfg(test)]
#[path = "srtp_tests.rs"]
mod tests;
