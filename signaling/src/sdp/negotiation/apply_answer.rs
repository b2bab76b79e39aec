//! Taking the answer to our offer (RFC 3264 §7), checking that it answers what we offered.

use super::further_video::check_further_answer;
use super::negotiated::{NegotiatedAudio, NegotiatedCodec, NegotiatedSrtp, TelephoneEvent};
use super::policy::AudioCodec;
use super::remote::{classic_profile, telephone_event, RemoteEnd};
use super::session::{OfferedAudio, SdpSession};
use super::video_section::check_video_answer;
use super::NegotiationError;
use crate::sdp::crypto::CryptoAttribute;
use crate::sdp::model::{MediaDescription, MediaKind, Protocol, SessionDescription};

impl SdpSession {
    /// Takes `answer` as the answer to our last offer and returns the negotiated stream.
    ///
    /// The answer must have one m-line per offered m-line; our audio m-line must be audio with a
    /// non-zero port, in an RTP profile, name a codec we offered (by payload type, or by name
    /// when the peer renumbered it), and — when SRTP is in play — carry a crypto line with a tag
    /// and suite we offered. `a=rtcp-mux` counts only if we offered it. Tolerated: an answer that
    /// switches between `RTP/AVP` and `RTP/SAVP` as long as its crypto matches.
    ///
    /// The exchange is over after this call, whatever its result: a new offer may follow. The
    /// offer is kept, so an answer from another fork (or the same answer repeated in a 2xx after
    /// a reliable 18x) is checked against it too. Fails with [`NegotiationError::NoOfferSent`]
    /// when this session has made no offer since its last answer.
    pub fn apply_answer(
        &mut self,
        answer: &SessionDescription,
    ) -> Result<NegotiatedAudio, NegotiationError> {
        let offer = self.offer.as_ref().ok_or(NegotiationError::NoOfferSent)?;
        let result = check_answer(offer, answer);
        self.awaiting_answer = false;
        if result.is_ok() {
            self.before_offer = None;
            self.video = self
                .video_offer
                .as_ref()
                .and_then(|offered| check_video_answer(offered, answer));
            self.further = check_further_answer(&self.further_offer, answer);
        }
        result
    }
}

fn check_answer(
    offer: &OfferedAudio,
    answer: &SessionDescription,
) -> Result<NegotiatedAudio, NegotiationError> {
    if answer.media.len() != offer.media_count {
        return Err(NegotiationError::AnswerMediaCount {
            offered: offer.media_count,
            answered: answer.media.len(),
        });
    }
    let media = answer
        .media
        .get(offer.index)
        .ok_or(NegotiationError::AnswerMediaMismatch)?;
    if media.kind != MediaKind::Audio {
        return Err(NegotiationError::AnswerMediaMismatch);
    }
    if media.port == 0 {
        return Err(NegotiationError::AudioRejected);
    }
    classic_profile(&media.protocol)?;
    let srtp = answer_srtp(&offer.crypto, &offer.protocol, media)?;
    let (payload_type, offered_payload_type, codec) = answered_codec(offer, media)?;
    let clock_rate = codec.clock_rate;
    let telephone_event = offer
        .telephone_events
        .iter()
        .find(|(_, rate)| *rate == clock_rate)
        .and_then(|(offered, _)| {
            telephone_event(media, clock_rate).map(|payload_type| TelephoneEvent {
                payload_type,
                receive_payload_type: *offered,
                clock_rate,
            })
        });
    let remote = RemoteEnd::read(answer, media)?;
    let rtcp_mux = offer.rtcp_mux && remote.rtcp_mux;
    Ok(NegotiatedAudio {
        remote_rtp: remote.rtp,
        remote_rtcp: if rtcp_mux { None } else { remote.rtcp },
        rtcp_mux,
        codec: NegotiatedCodec {
            payload_type,
            receive_payload_type: offered_payload_type,
            name: codec.name.clone(),
            clock_rate,
            channels: codec.channels,
            fmtp: media.fmtp(payload_type).map(str::to_owned),
        },
        telephone_event,
        ptime_ms: remote.sending_ptime(offer.ptime_ms),
        direction: offer.direction.intersect(remote.direction.reversed()),
        srtp,
    })
}

/// The SRTP parameters the answer settles on.
pub(super) fn answer_srtp(
    offered_crypto: &[CryptoAttribute],
    offered_protocol: &Protocol,
    media: &MediaDescription,
) -> Result<Option<NegotiatedSrtp>, NegotiationError> {
    let secure = media.protocol.is_secure();
    if offered_crypto.is_empty() {
        return if secure {
            Err(NegotiationError::SrtpNotSupported)
        } else {
            Ok(None)
        };
    }
    let Some(value) = media
        .attributes_named("crypto")
        .find_map(|a| a.value.as_deref())
    else {
        return if offered_protocol.is_secure() {
            Err(NegotiationError::SrtpRequired)
        } else if secure {
            Err(NegotiationError::NoAcceptableCrypto)
        } else {
            Ok(None)
        };
    };
    let answered =
        CryptoAttribute::parse(value).map_err(|_| NegotiationError::NoAcceptableCrypto)?;
    if !answered.is_usable() {
        return Err(NegotiationError::NoAcceptableCrypto);
    }
    let ours = offered_crypto
        .iter()
        .find(|c| c.tag == answered.tag && c.suite == answered.suite)
        .ok_or(NegotiationError::AnswerCryptoNotOffered)?;
    Ok(Some(NegotiatedSrtp {
        suite: ours.suite,
        local: ours.key.clone(),
        remote: answered.key,
    }))
}

/// The codec of the answer: its first payload type that we offered under that number (and
/// that its rtpmap, if any, does not contradict), else its first format that names one of our
/// offered codecs under another number. Returns the answer's number, our offer's and the codec.
fn answered_codec<'a>(
    offer: &'a OfferedAudio,
    media: &MediaDescription,
) -> Result<(u8, u8, &'a AudioCodec), NegotiationError> {
    let by_number = media.payload_types().find_map(|pt| {
        let (_, codec) = offer.codecs.iter().find(|(offered, _)| *offered == pt)?;
        match media.rtpmap(pt) {
            Some(map) if !codec.matches(&map) => None,
            _ => Some((pt, pt, codec)),
        }
    });
    let by_name = || {
        media.payload_types().find_map(|pt| {
            let map = media.codec(pt)?;
            offer
                .codecs
                .iter()
                .find(|(_, codec)| codec.matches(&map))
                .map(|(offered, codec)| (pt, *offered, codec))
        })
    };
    by_number
        .or_else(by_name)
        .ok_or(NegotiationError::AnswerCodecNotOffered)
}
