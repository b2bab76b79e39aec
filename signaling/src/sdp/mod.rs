//! Session descriptions (RFC 4566) and the offer/answer model (RFC 3264) for audio calls.
//!
//! Sans-IO like the rest of the crate: text in, text out, and SRTP keys from a random source the
//! caller passes. Nothing here knows SIP; the engine takes the body of an INVITE, a reliable
//! provisional response, a 2xx or an ACK and hands it over.
//!
//! ```text
//!   body ──► parse ──► SessionDescription ──► offer_kind ─┬─ Classic ─► SdpSession::answer
//!                       (model, attributes)               └─ WebRtc ──► the WebRTC path
//!   body ◄── to_string ◄── SessionDescription ◄── SdpSession::{create_offer, answer}
//!                                                 SdpSession::apply_answer ──► NegotiatedAudio
//! ```
//!
//! - [`parse`] reads a description (tolerant of LF line ends, unknown lines and attributes;
//!   strict where a misreading would misroute media) and fails with an [`SdpError`] whose text
//!   is a reason phrase (`Bad SDP: m= line has no port`); `Display`/`to_string` writes CRLF lines
//!   in RFC 4566 order.
//! - [`SessionDescription`] and [`MediaDescription`] keep every line; attributes stay generic
//!   ([`Attribute`]) and are read through typed accessors (`rtpmap`, `fmtp`, `ptime`,
//!   `direction`, `rtcp`, `rtcp_mux`, `crypto`, `fingerprint`, `setup`, `ice_ufrag`, …) that the
//!   WebRTC path can use as well.
//! - [`CryptoAttribute`] and [`SrtpMasterKey`] are RFC 4568 SDES keying.
//! - [`SdpSession`] runs offer/answer for the classic audio path and yields a
//!   [`NegotiatedAudio`]; its failures are [`NegotiationError`]s that map to `488`. The rules and
//!   the SRTP policy table are in [`negotiation`].

mod attributes;
mod crypto;
mod error;
mod model;
pub mod negotiation;
mod parser;

#[cfg(test)]
mod crypto_tests;
#[cfg(test)]
mod parser_tests;

pub use attributes::{Direction, Fingerprint, RtcpAttribute, RtpMap, Setup};
pub use crypto::{CryptoAttribute, KeyLifetime, Mki, SrtpMasterKey, SrtpSuite};
pub use error::SdpError;
pub use model::{
    AddressType, Attribute, Bandwidth, Connection, MediaDescription, MediaKind, Origin, Protocol,
    SessionDescription, Timing,
};
pub use negotiation::{
    offer_kind, AudioCodec, AudioPolicy, ForwardedStream, FurtherVideo, LocalMedia,
    NegotiatedAudio, NegotiatedCodec, NegotiatedSrtp, NegotiatedVideo, NegotiationError, OfferKind,
    SdpSession, SrtpPolicy, TelephoneEvent, VideoPolicy, MAX_FURTHER_VIDEO,
};
pub use parser::{parse, MAX_SDP_LEN};
