//! Answering the peer's offer (RFC 3264 §6).

use rand::RngCore;

use super::audio_section::{disabled_section, AudioSection, RtcpLine};
use super::further_video::answer_further;
use super::negotiated::{NegotiatedAudio, NegotiatedCodec, NegotiatedSrtp, TelephoneEvent};
use super::policy::{AudioCodec, AudioPolicy, LocalMedia, SrtpPolicy};
use super::remote::{classic_profile, first_common_codec, telephone_event, RemoteEnd};
use super::session::{session_key, SdpSession};
use super::video_policy::VideoPolicy;
use super::video_section::answer_video;
use super::NegotiationError;
use crate::sdp::attributes::Direction;
use crate::sdp::crypto::{CryptoAttribute, SrtpSuite};
use crate::sdp::model::{MediaDescription, MediaKind, SessionDescription};

/// An offered audio m-line we can take.
struct Candidate<'a> {
    index: usize,
    media: &'a MediaDescription,
    payload_type: u8,
    codec: &'a AudioCodec,
    telephone_event: Option<u8>,
    /// The offered crypto line we accept, when the stream is encrypted.
    crypto: Option<CryptoAttribute>,
    remote: RemoteEnd,
}

impl SdpSession {
    /// Answers `offer` with the audio stream described in the [module docs](super): returns the
    /// answer to send and the negotiated stream.
    ///
    /// `direction` is what we want (`SendRecv`, or `SendOnly`/`Inactive` while we hold the
    /// call); the answer's direction is that narrowed by the mirror of the offer's. Fails with
    /// the reason for a `488` when no audio stream is acceptable — the error of the first
    /// offered audio stream —, and with [`NegotiationError::OfferPending`] (`491`) while our own
    /// offer waits for its answer. A failure changes nothing.
    pub fn answer(
        &mut self,
        offer: &SessionDescription,
        local: &LocalMedia,
        policy: &AudioPolicy,
        direction: Direction,
        rng: &mut impl RngCore,
    ) -> Result<(SessionDescription, NegotiatedAudio), NegotiationError> {
        self.answer_with_video(offer, local, policy, None, direction, rng)
    }

    /// Answers `offer` like [`answer`](Self::answer), and the call's video as well when
    /// `video` gives our video socket and policy (the rules are in the
    /// [module docs](super)): the video m-line of the session's earlier exchanges while it has
    /// a port, else the first video m-line with a port; every other video m-line, and that one
    /// when it is declined, is answered with port 0. The negotiated video stream is then
    /// [`video`](Self::video). Audio decides success: declined video never fails the answer.
    pub fn answer_with_video(
        &mut self,
        offer: &SessionDescription,
        local: &LocalMedia,
        policy: &AudioPolicy,
        video: Option<(&LocalMedia, &VideoPolicy)>,
        direction: Direction,
        rng: &mut impl RngCore,
    ) -> Result<(SessionDescription, NegotiatedAudio), NegotiationError> {
        self.answer_with_streams(offer, local, policy, video, &[], direction, rng)
    }

    /// Answers `offer` like [`answer_with_video`](Self::answer_with_video), and receives the
    /// peer's further video m-lines as well, each on a port of its own: one it sent before on
    /// the same port as then, a new one on the first of `further` that no stream uses (see
    /// [`FurtherVideo`](super::FurtherVideo)). The call's own video m-line is the one it was,
    /// else the first video m-line with a port. The further streams are then
    /// [`further_video`](Self::further_video); one left out (no port, no H.264 to decode, past
    /// the cap) is answered with port 0.
    #[allow(clippy::too_many_arguments)]
    pub fn answer_with_streams(
        &mut self,
        offer: &SessionDescription,
        local: &LocalMedia,
        policy: &AudioPolicy,
        video: Option<(&LocalMedia, &VideoPolicy)>,
        further: &[LocalMedia],
        direction: Direction,
        rng: &mut impl RngCore,
    ) -> Result<(SessionDescription, NegotiatedAudio), NegotiationError> {
        if self.awaiting_answer {
            return Err(NegotiationError::OfferPending);
        }
        let mut chosen: Option<Candidate<'_>> = None;
        let mut first_error = None;
        for (index, media) in offer.media.iter().enumerate() {
            if media.kind != MediaKind::Audio || media.port == 0 {
                continue;
            }
            match evaluate(offer, index, media, policy) {
                Ok(candidate) => {
                    let better = chosen
                        .as_ref()
                        .is_none_or(|c| c.crypto.is_none() && candidate.crypto.is_some());
                    if better {
                        chosen = Some(candidate);
                    }
                }
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        let Some(chosen) = chosen else {
            return Err(first_error.unwrap_or(NegotiationError::NoAudio));
        };

        let mut keys = self.keys.clone();
        let (crypto, srtp) = match &chosen.crypto {
            Some(offered) => {
                let local_key = session_key(&mut keys, offered.suite, rng);
                let line = CryptoAttribute::new(offered.tag, offered.suite, local_key.clone());
                let srtp = NegotiatedSrtp {
                    suite: offered.suite,
                    local: local_key,
                    remote: offered.key.clone(),
                };
                (vec![line], Some(srtp))
            }
            None => (Vec::new(), None),
        };
        let remote = &chosen.remote;
        let our_direction = remote.direction.reversed().intersect(direction);
        let rtcp = if remote.rtcp_mux {
            RtcpLine::Mux {
                fallback_port: None,
            }
        } else {
            RtcpLine::Port(local.rtcp_port.unwrap_or(local.rtp_port))
        };
        let clock_rate = chosen.codec.clock_rate;
        let section = AudioSection {
            port: local.rtp_port,
            protocol: chosen.media.protocol.clone(),
            codecs: vec![(chosen.payload_type, chosen.codec)],
            telephone_events: chosen
                .telephone_event
                .map(|pt| (pt, clock_rate))
                .into_iter()
                .collect(),
            ptime_ms: policy.ptime_ms,
            rtcp,
            crypto,
            direction: our_direction,
        };
        let audio = section.write();
        let mut video_keys = self.video_keys.clone();
        // The call's own video: its m-line while that has a port, else the first video
        // m-line with a port that is no further stream (video the peer adds again, or
        // afresh, at the end).
        let video_index = video.and_then(|_| {
            let live = |i: usize| {
                offer
                    .media
                    .get(i)
                    .is_some_and(|m| m.kind == MediaKind::Video && m.port != 0)
            };
            let further = |i: usize| self.further.iter().any(|f| f.index == i);
            self.video_index
                .filter(|own| live(*own))
                .or_else(|| (0..offer.media.len()).find(|i| live(*i) && !further(*i)))
        });
        let answered_video = match (video, video_index) {
            (Some((video_local, video_policy)), Some(index)) => answer_video(
                offer,
                &offer.media[index],
                video_local,
                video_policy,
                policy.srtp,
                &mut video_keys,
                direction,
                rng,
            ),
            _ => None,
        };
        let answered_further = match video {
            Some((_, video_policy)) => answer_further(
                offer,
                video_index,
                &self.further,
                &self.forwarding,
                further,
                video_policy,
                policy.srtp,
                &mut video_keys,
                direction,
                rng,
            ),
            None => Vec::new(),
        };
        let media = offer
            .media
            .iter()
            .enumerate()
            .map(|(i, m)| match &answered_video {
                _ if i == chosen.index => audio.clone(),
                Some((section, _)) if Some(i) == video_index => section.clone(),
                _ => answered_further
                    .iter()
                    .find(|(_, f)| f.index == i)
                    .map_or_else(|| disabled_section(m), |(section, _)| section.clone()),
            })
            .collect();

        let negotiated = NegotiatedAudio {
            remote_rtp: remote.rtp,
            remote_rtcp: if remote.rtcp_mux { None } else { remote.rtcp },
            rtcp_mux: remote.rtcp_mux,
            codec: NegotiatedCodec {
                payload_type: chosen.payload_type,
                receive_payload_type: chosen.payload_type,
                name: chosen.codec.name.clone(),
                clock_rate,
                channels: chosen.codec.channels,
                fmtp: chosen.media.fmtp(chosen.payload_type).map(str::to_owned),
            },
            telephone_event: chosen.telephone_event.map(|payload_type| TelephoneEvent {
                payload_type,
                receive_payload_type: payload_type,
                clock_rate,
            }),
            ptime_ms: remote.sending_ptime(policy.ptime_ms),
            direction: our_direction,
            srtp,
        };
        let sdp = self.stamp(local.address, media);
        self.keys = keys;
        self.audio_index = Some(chosen.index);
        self.video_keys = video_keys;
        if let Some(index) = video_index.or(self.video_index) {
            self.video_index = Some(index);
        }
        self.video = answered_video.map(|(_, negotiated)| negotiated);
        self.further = answered_further.into_iter().map(|(_, f)| f).collect();
        self.further_offer.clear();
        self.before_offer = None;
        self.video_offer = None;
        self.offer = None;
        Ok((sdp, negotiated))
    }
}

/// Whether we can take the offered audio m-line at `index`, and how.
fn evaluate<'a>(
    offer: &SessionDescription,
    index: usize,
    media: &'a MediaDescription,
    policy: &'a AudioPolicy,
) -> Result<Candidate<'a>, NegotiationError> {
    let dtls = media
        .protocol
        .as_str()
        .to_ascii_uppercase()
        .contains("TLS/");
    if dtls && media.fingerprint().or(offer.fingerprint()).is_none() {
        // Not a WebRTC offer either: nothing could key its DTLS-SRTP.
        return Err(NegotiationError::NoFingerprint);
    }
    classic_profile(&media.protocol)?;
    let crypto = choose_crypto(media, policy.srtp)?;
    let (payload_type, codec) =
        first_common_codec(media, &policy.codecs).ok_or(NegotiationError::NoCommonCodec)?;
    let telephone_event = if policy.telephone_event {
        telephone_event(media, codec.clock_rate)
    } else {
        None
    };
    let remote = RemoteEnd::read(offer, media)?;
    Ok(Candidate {
        index,
        media,
        payload_type,
        codec,
        telephone_event,
        crypto,
        remote,
    })
}

/// The offered crypto line we accept under `policy`: a usable `_80` line first, else a usable
/// `_32` one; `None` for a plain stream.
pub(super) fn choose_crypto(
    media: &MediaDescription,
    policy: SrtpPolicy,
) -> Result<Option<CryptoAttribute>, NegotiationError> {
    let secure = media.protocol.is_secure();
    if policy == SrtpPolicy::Off {
        return if secure {
            Err(NegotiationError::SrtpNotSupported)
        } else {
            Ok(None)
        };
    }
    let usable: Vec<CryptoAttribute> = media.crypto().filter(CryptoAttribute::is_usable).collect();
    let best = usable
        .iter()
        .find(|c| c.suite == SrtpSuite::AesCm128HmacSha1_80)
        .or(usable.first())
        .cloned();
    match (best, secure, policy) {
        (Some(crypto), _, _) => Ok(Some(crypto)),
        (None, true, _) => Err(NegotiationError::NoAcceptableCrypto),
        (None, false, SrtpPolicy::Mandatory) if media.has_attribute("crypto") => {
            Err(NegotiationError::NoAcceptableCrypto)
        }
        (None, false, SrtpPolicy::Mandatory) => Err(NegotiationError::SrtpRequired),
        (None, false, _) => Ok(None),
    }
}
