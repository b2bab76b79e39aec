//! Telling a classic offer from a WebRTC one, so the engine can pick the media path.

use crate::sdp::model::{MediaDescription, SessionDescription};

/// Which media path an incoming offer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OfferKind {
    /// Plain or SDES-keyed RTP (`RTP/AVP`, `RTP/SAVP`, their feedback variants): desk phones,
    /// PBXs, SIP trunks. [`SdpSession::answer`](super::SdpSession::answer) handles it.
    Classic,
    /// DTLS-SRTP with ICE: a DTLS profile (`UDP/TLS/RTP/SAVPF`, `TCP/DTLS/RTP/SAVPF`, …) with
    /// `a=fingerprint`, or a legacy `RTP/SAVPF` offer with both a fingerprint and ICE
    /// credentials. The WebRTC path handles it.
    WebRtc,
}

/// Classifies an offer: [`OfferKind::WebRtc`] when any m-line (even a bundled one at port 0)
/// is DTLS-keyed as described there, [`OfferKind::Classic`] otherwise.
pub fn offer_kind(sdp: &SessionDescription) -> OfferKind {
    let fingerprint = |m: &MediaDescription| m.fingerprint().or(sdp.fingerprint()).is_some();
    let ice = |m: &MediaDescription| m.ice_ufrag().or(sdp.ice_ufrag()).is_some();
    let webrtc = sdp.media.iter().any(|m| {
        let protocol = m.protocol.as_str().to_ascii_uppercase();
        let dtls = protocol.contains("TLS/") || protocol.contains("DTLS/");
        (dtls && fingerprint(m)) || (m.protocol.is_secure() && fingerprint(m) && ice(m))
    });
    if webrtc {
        OfferKind::WebRtc
    } else {
        OfferKind::Classic
    }
}
