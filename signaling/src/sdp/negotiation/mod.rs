//! The offer/answer model (RFC 3264) for Callisto's classic audio path.
//!
//! One [`SdpSession`] per call holds our side of the session across offers and answers: the
//! `o=` line whose version it increments, the m-line layout every later offer must keep
//! (RFC 3264 §8), our SRTP keys, and the offer awaiting an answer. The caller passes what it owns
//! — the [`LocalMedia`] sockets it bound, the account's [`AudioPolicy`], the direction it wants
//! (`SendOnly` to hold), and a random source — and gets back the description to send and, once
//! both sides are known, a [`NegotiatedAudio`] with everything the media session needs.
//!
//! ```text
//!  offerer:  create_offer ──► SDP in INVITE ······► answerer: offer_kind → answer ──► SDP in 200
//!            apply_answer ◄── SDP in 200 ◄········  (NegotiatedAudio)    (NegotiatedAudio)
//! ```
//!
//! # Rules
//!
//! - **Codec**: the answer takes the first payload type of the offer that our policy supports
//!   (the offerer's preference wins, RFC 3264 §6.1), keeps the offer's payload type number, and
//!   lists that one codec plus `telephone-event` at the same clock rate when both sides want it
//!   (8000 for G.711, 48000 for Opus; a `telephone-event` at another rate is not used).
//! - **Streams**: every offered m-line is answered in order; the one audio stream we take gets
//!   our port, every other one port 0 (RFC 3264 §6). With several audio m-lines, one that
//!   can run SRTP is preferred, then the first.
//! - **Direction**: the answer mirrors the offer (`sendonly` → `recvonly`, `recvonly` →
//!   `sendonly`, `inactive` → `inactive`), narrowed by the direction we ask for. A connection
//!   address of `0.0.0.0` (RFC 2543 hold) means its writer does not receive.
//! - **RTCP**: offers carry `a=rtcp-mux` and `a=rtcp:<port>` (RFC 5761 §5.1.1), the port where
//!   RTCP goes when the answer does not multiplex: `LocalMedia::rtcp_port` (the RTP port + 1,
//!   which peers that ignore `a=rtcp` assume), or the RTP port itself when it is `None` (the
//!   media session demultiplexes by packet type, RFC 5761 §4). The answer carries `a=rtcp-mux`
//!   only when the offer did, and otherwise `a=rtcp` the same way.
//! - **Versions**: each description we send keeps the `o=` line of the session and increments
//!   `sess-version` when its content differs from the previous one we sent; an unchanged
//!   description (a session refresh) keeps the version (RFC 3264 §8).
//!
//! # SRTP (SDES, RFC 4568)
//!
//! [`SrtpPolicy`] decides, the same way as baresip's `srtp` module, whose `mediaenc=srtp`
//! registers the `RTP/AVP` profile with `a=crypto` lines and `mediaenc=srtp-mand` the
//! `RTP/SAVP` profile:
//!
//! | policy      | offers                       | accepts in an offer                              |
//! |-------------|------------------------------|--------------------------------------------------|
//! | `Off`       | `RTP/AVP`, no crypto         | `RTP/AVP(F)` (crypto lines ignored)              |
//! | `Optional`  | `RTP/AVP` + `a=crypto`       | `RTP/AVP(F)` with or without crypto, `RTP/SAVP(F)` |
//! | `Mandatory` | `RTP/SAVP` + `a=crypto`      | `RTP/SAVP(F)`, `RTP/AVP(F)` with usable crypto   |
//!
//! `Optional` is "best-effort SRTP": a peer that knows SDES answers with a crypto line and both
//! sides encrypt; one that does not ignores the attribute and the call runs plain RTP. Offers
//! carry two lines, tag 1 `AES_CM_128_HMAC_SHA1_80` and tag 2 `AES_CM_128_HMAC_SHA1_32`, each with
//! its own key. An answer accepts one offered line, preferring `_80`, under the offer's tag and
//! suite, with our own key; lines with an MKI or session parameters our SRTP cannot honour are
//! not usable ([`CryptoAttribute::is_usable`](super::CryptoAttribute::is_usable)). Our keys are
//! drawn once per session and suite and reused in later offers and answers; the peer's key is
//! whatever its latest description says. `NegotiatedSrtp::local` keys what we send,
//! `NegotiatedSrtp::remote` what we receive.
//!
//! # Video (H.264, RFC 6184)
//!
//! With a [`VideoPolicy`], offers and answers carry a video stream too
//! ([`SdpSession::create_offer_with_video`], [`SdpSession::answer_with_video`]), and
//! [`SdpSession::video`] is the [`NegotiatedVideo`] of the latest exchange.
//! - **Offer**: one payload type per packetization mode of the policy (mode 1 first by
//!   default), each `H264/90000` with our `profile-level-id`, `a=rtcp-fb:<pt> nack`,
//!   `a=rtcp-fb:<pt> nack pli` and `a=rtcp-fb:<pt> ccm fir`; profile, RTCP, SRTP (with keys of its own) and direction as for
//!   audio. The video m-line follows the audio one and keeps its slot in re-offers.
//! - **Answer**: an offered `H264/90000` payload type whose profile is Constrained Baseline
//!   compatible (Baseline, or `constraint_set1` set) and whose packetization mode is one of
//!   ours — of the policy's first such mode, the offerer's first payload type (so an offer of
//!   modes 0 and 1 gets mode 1 by default: mode 0 limits every NAL unit to one packet); the
//!   answer keeps the offered payload type, profile and
//!   mode, names the lower of the offered level and ours, and keeps generic NACK feedback
//!   when the offer has it for that payload type (`NegotiatedVideo::nack`). No such payload type, no video
//!   policy, or SRTP that cannot be agreed: the video m-line gets port 0 and the call goes on
//!   with audio.
//! - **Answer check**: a video m-line answered with port 0, a payload type we did not offer or
//!   unusable crypto leaves the call without video; it never fails the audio stream.
//! - **Further streams**: the call's own video is the video m-line it was (else the first with
//!   a port); a peer that sends several video streams offers an m-line for each further one,
//!   which [`SdpSession::answer_with_streams`] answers receive-only on a port of its own and
//!   keeps across later exchanges ([`FurtherVideo`], `further_video.rs`); a conference host
//!   sends streams of its own on further m-lines the same way, `sendonly`
//!   ([`SdpSession::create_offer_with_streams`], [`ForwardedStream`]).
//!
//! `RTP/AVPF` and `RTP/SAVPF` offers without DTLS are answered in their own profile and run as
//! plain AVP media (feedback is optional for the receiver of feedback-capable offers). A
//! WebRTC offer (`UDP/TLS/RTP/SAVPF` with a fingerprint) is for the WebRTC path:
//! [`offer_kind`] tells them apart, and this module rejects its profile.

mod answer;
mod apply_answer;
mod audio_section;
mod further_video;
mod negotiated;
mod offer_kind;
mod policy;
mod remote;
mod session;
mod video_policy;
mod video_section;

use thiserror::Error;

use crate::call::Refusal;

pub use further_video::{ForwardedStream, FurtherVideo, MAX_FURTHER_VIDEO};
pub use negotiated::{NegotiatedAudio, NegotiatedCodec, NegotiatedSrtp, TelephoneEvent};
pub use offer_kind::{offer_kind, OfferKind};
pub use policy::{AudioCodec, AudioPolicy, LocalMedia, SrtpPolicy};
pub use session::SdpSession;
pub use video_policy::{NegotiatedVideo, VideoPolicy};

/// Why an offer or answer cannot be accepted.
///
/// The `Display` text is short and goes in the `Warning` of the `488 Not Acceptable Here`
/// ([`NegotiationError::refusal`]) that rejects an offer. When an *answer* we received fails,
/// no response is due: the engine acknowledges the 2xx and ends the call or re-offers.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// The description has no audio stream with a non-zero port.
    #[error("No audio stream")]
    NoAudio,
    /// No payload type of the audio stream is a codec of our policy.
    #[error("No common codec")]
    NoCommonCodec,
    /// Our policy requires SRTP and the peer offers or answers plain RTP.
    #[error("SRTP required")]
    SrtpRequired,
    /// The peer requires SRTP (`RTP/SAVP`) and our policy is `Off`.
    #[error("SRTP not supported")]
    SrtpNotSupported,
    /// SRTP is called for, but no `a=crypto` line has a suite and parameters we can use.
    #[error("No acceptable crypto suite")]
    NoAcceptableCrypto,
    /// The audio stream uses a transport profile the classic path does not run.
    #[error("Unsupported media profile {0}")]
    UnsupportedProfile(String),
    /// A DTLS-SRTP stream (`UDP/TLS/RTP/SAVPF`, …) without `a=fingerprint`: it cannot be keyed.
    #[error("DTLS-SRTP offered without a fingerprint")]
    NoFingerprint,
    /// The audio stream has no connection address, or one that is not an IP address.
    #[error("No connection address")]
    NoConnectionAddress,
    /// We have sent an offer and wait for its answer; a new offer must wait (RFC 3261 §14.2).
    #[error("Request Pending")]
    OfferPending,
    /// An answer arrived, but we have sent no offer.
    #[error("No offer sent")]
    NoOfferSent,
    /// The policy lists no codec, so there is nothing to offer.
    #[error("No local codecs")]
    NoLocalCodecs,
    /// The answer does not have one m-line per offered m-line.
    #[error("Answer has {answered} media lines for {offered} offered")]
    AnswerMediaCount {
        /// m-lines in our offer.
        offered: usize,
        /// m-lines in the answer.
        answered: usize,
    },
    /// The answer's m-line for our audio stream is not audio.
    #[error("Answer media lines do not match the offer")]
    AnswerMediaMismatch,
    /// The answer rejected our audio stream (port 0).
    #[error("Audio rejected")]
    AudioRejected,
    /// The answer's codec is not one we offered.
    #[error("Answer codec was not offered")]
    AnswerCodecNotOffered,
    /// The answer's crypto line does not carry a tag and suite we offered.
    #[error("Answer crypto was not offered")]
    AnswerCryptoNotOffered,
}

impl NegotiationError {
    /// The status code to reject an offer failing this way with: `491 Request Pending` for an
    /// offer that crosses ours, `500` when our own policy is empty, else `488 Not Acceptable
    /// Here` (RFC 3261 §21.4.26).
    pub fn status_code(&self) -> u16 {
        match self {
            NegotiationError::OfferPending => 491,
            NegotiationError::NoLocalCodecs => 500,
            _ => 488,
        }
    }

    /// The refusal of an offer failing this way: [`status_code`](Self::status_code) and, but
    /// for a crossing offer, a `Warning` naming the fault — `304` for no audio stream, `305`
    /// for no common codec, `302` for a transport profile or keying Callisto cannot serve,
    /// `399` otherwise.
    pub fn refusal(&self) -> Refusal {
        let refusal = Refusal::new(self.status_code());
        let warn_code = match self {
            NegotiationError::OfferPending => return refusal,
            NegotiationError::NoAudio => 304,
            NegotiationError::NoCommonCodec => 305,
            NegotiationError::SrtpRequired
            | NegotiationError::SrtpNotSupported
            | NegotiationError::NoAcceptableCrypto
            | NegotiationError::UnsupportedProfile(_)
            | NegotiationError::NoFingerprint => 302,
            _ => 399,
        };
        refusal.with_warning(warn_code, self.to_string())
    }
}
