//! [`SdpSession`]: our side of one call's session, and the offers it makes.

use std::net::IpAddr;

use rand::{Rng, RngCore};

use super::audio_section::{disabled_section, AudioSection, RtcpLine};
use super::further_video::{offer_further, ForwardedStream, FurtherVideo, OfferedFurther};
use super::policy::{AudioCodec, AudioPolicy, LocalMedia, SrtpPolicy};
use super::video_policy::{NegotiatedVideo, VideoPolicy};
use super::video_section::{offer_video, OfferedVideo};
use super::NegotiationError;
use crate::sdp::attributes::{Direction, RtpMap};
use crate::sdp::crypto::{CryptoAttribute, SrtpMasterKey, SrtpSuite};
use crate::sdp::model::{
    Attribute, Connection, MediaDescription, Origin, Protocol, SessionDescription,
};

/// The payload type `telephone-event/8000` is offered with.
const TELEPHONE_EVENT_8000: u8 = 101;
/// The payload type `telephone-event/48000` is offered with.
const TELEPHONE_EVENT_48000: u8 = 110;

/// Our side of one call's session description, held by the caller for the whole call.
///
/// Methods:
/// - [`create_offer`](Self::create_offer) makes an offer (initial, re-offer, hold, resume) and
///   waits for its answer; [`apply_answer`](Self::apply_answer) takes that answer (and may take
///   answers from several forks, each against the same offer);
///   [`discard_offer`](Self::discard_offer) gives the offer up when its request failed.
/// - [`answer`](Self::answer) answers the peer's offer.
///
/// A failed call leaves the session as it was. `SdpSession` is `Clone` so that forked early
/// dialogs can each continue from the same offer.
#[derive(Debug, Clone)]
pub struct SdpSession {
    /// The `o=` line of the first description.
    pub(super) origin: Origin,
    /// The last description we sent: its `o=` line and m-line layout carry over.
    pub(super) last_sent: Option<SessionDescription>,
    /// The index of the audio m-line in `last_sent`.
    pub(super) audio_index: Option<usize>,
    /// Our SRTP master keys, one per suite, drawn on first use.
    pub(super) keys: Vec<(SrtpSuite, SrtpMasterKey)>,
    /// Our last offer, against which answers are checked.
    pub(super) offer: Option<OfferedAudio>,
    /// Whether that offer still waits for an answer.
    pub(super) awaiting_answer: bool,
    /// The index of the video m-line in `last_sent`, once the session has one.
    pub(super) video_index: Option<usize>,
    /// Our SRTP master keys for video, one per suite (distinct from audio's).
    pub(super) video_keys: Vec<(SrtpSuite, SrtpMasterKey)>,
    /// What our last offer proposed for video, if it offered video.
    pub(super) video_offer: Option<OfferedVideo>,
    /// The video stream of the latest completed exchange.
    pub(super) video: Option<NegotiatedVideo>,
    /// The peer's further video streams of the latest completed exchange.
    pub(super) further: Vec<FurtherVideo>,
    /// The further streams our last offer restated.
    pub(super) further_offer: Vec<OfferedFurther>,
    /// The streams we forward, each on a further m-line of its own (as the latest
    /// [`create_offer_with_streams`](Self::create_offer_with_streams) set them).
    pub(super) forwarding: Vec<ForwardedStream>,
    /// Session-level attributes every description we write carries.
    pub(super) announced: Vec<Attribute>,
    /// While an offer of ours is out: the description sent before it and the streams
    /// forwarded then, which a discarded offer brings back.
    pub(super) before_offer: Option<(Option<SessionDescription>, Vec<ForwardedStream>)>,
    /// The next description gets a new version whatever it says (the last one sent was
    /// given up).
    pub(super) bump_version: bool,
}

/// What our last offer proposed for audio.
#[derive(Debug, Clone)]
pub(super) struct OfferedAudio {
    /// The index of the audio m-line.
    pub index: usize,
    /// The number of m-lines in the offer.
    pub media_count: usize,
    /// The audio profile.
    pub protocol: Protocol,
    /// Payload types and codecs, in order.
    pub codecs: Vec<(u8, AudioCodec)>,
    /// `telephone-event` payload types and clock rates.
    pub telephone_events: Vec<(u8, u32)>,
    /// Our crypto lines (empty without SRTP).
    pub crypto: Vec<CryptoAttribute>,
    /// The direction we offered.
    pub direction: Direction,
    /// Whether we offered `a=rtcp-mux`.
    pub rtcp_mux: bool,
    /// The packet time we asked for.
    pub ptime_ms: u32,
}

impl SdpSession {
    /// A new session whose `o=` line names `address`, with a random `sess-id` below 2³¹ (some
    /// devices read it as a signed 32-bit number) and a first `sess-version` equal to it.
    pub fn new(address: IpAddr, rng: &mut impl RngCore) -> Self {
        let id: u64 = rng.gen_range(1..1 << 31);
        SdpSession::with_origin(Origin::new("-", id.to_string(), id, address))
    }

    /// A new session whose first description carries `origin` as is.
    pub fn with_origin(origin: Origin) -> Self {
        SdpSession {
            origin,
            last_sent: None,
            audio_index: None,
            keys: Vec::new(),
            offer: None,
            awaiting_answer: false,
            video_index: None,
            video_keys: Vec::new(),
            video_offer: None,
            video: None,
            further: Vec::new(),
            further_offer: Vec::new(),
            forwarding: Vec::new(),
            announced: Vec::new(),
            before_offer: None,
            bump_version: false,
        }
    }

    /// The video stream the latest completed offer/answer exchange agreed on
    /// ([`answer_with_video`](Self::answer_with_video) or
    /// [`apply_answer`](Self::apply_answer)); `None` when it has no video (declined, not
    /// offered, or no common H.264 format).
    pub fn video(&self) -> Option<&NegotiatedVideo> {
        self.video.as_ref()
    }

    /// The peer's further video streams as the latest completed exchange left them
    /// ([`answer_with_streams`](Self::answer_with_streams), or the answer to our offer that
    /// restated them); empty when the peer sends one video stream or none.
    pub fn further_video(&self) -> &[FurtherVideo] {
        &self.further
    }

    /// Adds a session-level attribute to every description we write from now on (what
    /// this end says of itself, such as an application's own capabilities).
    pub fn announce(&mut self, attribute: Attribute) {
        self.announced.push(attribute);
    }

    /// The `o=` line of the last description sent (of the first one, before any).
    pub fn origin(&self) -> &Origin {
        self.last_sent
            .as_ref()
            .map_or(&self.origin, |sdp| &sdp.origin)
    }

    /// Whether an offer we made still waits for its answer.
    pub fn is_awaiting_answer(&self) -> bool {
        self.awaiting_answer
    }

    /// Makes an offer with one audio stream (or, after a first exchange, the session's m-line
    /// layout with our audio stream in its slot and the other streams at port 0).
    ///
    /// `direction` is what we want: `SendRecv`, `SendOnly` to hold the peer (RFC 3264 §8.4),
    /// `Inactive`, `SendRecv` again to resume. SRTP keys come from `rng` the first time a suite
    /// is offered in this session. Fails with [`NegotiationError::OfferPending`] while an earlier
    /// offer waits for its answer, and with [`NegotiationError::NoLocalCodecs`] for an empty
    /// policy.
    pub fn create_offer(
        &mut self,
        local: &LocalMedia,
        policy: &AudioPolicy,
        direction: Direction,
        rng: &mut impl RngCore,
    ) -> Result<SessionDescription, NegotiationError> {
        self.create_offer_with_video(local, policy, None, direction, rng)
    }

    /// Makes an offer like [`create_offer`](Self::create_offer), with an H.264 video stream
    /// when `video` gives its socket and policy (see the [module docs](super)
    /// for what it says). The video m-line follows the audio one in a first offer, keeps its
    /// slot in later ones, and is added at the end of a session that had none; with `video`
    /// `None`, an existing video slot is disabled (port 0). The video stream's direction is
    /// `direction`, and it uses the audio stream's profile and SRTP policy with keys of its own.
    pub fn create_offer_with_video(
        &mut self,
        local: &LocalMedia,
        policy: &AudioPolicy,
        video: Option<(&LocalMedia, &VideoPolicy)>,
        direction: Direction,
        rng: &mut impl RngCore,
    ) -> Result<SessionDescription, NegotiationError> {
        self.offer(local, policy, video, None, direction, rng)
    }

    /// Makes an offer like [`create_offer_with_video`](Self::create_offer_with_video) that
    /// sends each of `forwarding` on a further video m-line of its own, `sendonly` and named
    /// by `a=label`: one forwarded before on the same port keeps its slot (under its new
    /// name), a new one is added at the end, and one no longer in `forwarding` is restated
    /// `inactive` (its port free for another). Later offers and answers keep `forwarding`
    /// (plain offers restate the streams the last exchange agreed, and add none) until the
    /// next call, or until this offer is discarded; the answer's view of them is in
    /// [`further_video`](Self::further_video) ([`FurtherVideo::forwarded`]). Without video
    /// there is nothing to forward.
    pub fn create_offer_with_streams(
        &mut self,
        local: &LocalMedia,
        policy: &AudioPolicy,
        video: Option<(&LocalMedia, &VideoPolicy)>,
        forwarding: &[ForwardedStream],
        direction: Direction,
        rng: &mut impl RngCore,
    ) -> Result<SessionDescription, NegotiationError> {
        self.offer(local, policy, video, Some(forwarding), direction, rng)
    }

    /// An offer; `forwarding` new streams to forward (added where they have no m-line yet),
    /// or `None` to restate those the session has.
    fn offer(
        &mut self,
        local: &LocalMedia,
        policy: &AudioPolicy,
        video: Option<(&LocalMedia, &VideoPolicy)>,
        forwarding: Option<&[ForwardedStream]>,
        direction: Direction,
        rng: &mut impl RngCore,
    ) -> Result<SessionDescription, NegotiationError> {
        if self.awaiting_answer {
            return Err(NegotiationError::OfferPending);
        }
        let agreed: Vec<RtpMap> = self
            .audio_index
            .and_then(|i| self.last_sent.as_ref()?.media.get(i))
            .map(|m| m.rtpmaps().collect())
            .unwrap_or_default();
        let PayloadPlan {
            codecs,
            telephone_events,
        } = assign_payload_types(policy, &agreed);
        if codecs.is_empty() {
            return Err(NegotiationError::NoLocalCodecs);
        }
        let established = self
            .audio_index
            .and_then(|i| self.last_sent.as_ref()?.media.get(i))
            .map(|m| &m.protocol);
        let protocol = offer_protocol(policy.srtp, established);
        let crypto = match policy.srtp {
            SrtpPolicy::Off => Vec::new(),
            SrtpPolicy::Optional | SrtpPolicy::Mandatory => [
                (1, SrtpSuite::AesCm128HmacSha1_80),
                (2, SrtpSuite::AesCm128HmacSha1_32),
            ]
            .into_iter()
            .map(|(tag, suite)| {
                CryptoAttribute::new(tag, suite, session_key(&mut self.keys, suite, rng))
            })
            .collect(),
        };
        let rtcp = RtcpLine::Mux {
            fallback_port: Some(local.rtcp_port.unwrap_or(local.rtp_port)),
        };
        let section = AudioSection {
            port: local.rtp_port,
            protocol: protocol.clone(),
            codecs: codecs.clone(),
            telephone_events: telephone_events.clone(),
            ptime_ms: policy.ptime_ms,
            rtcp,
            crypto: crypto.clone(),
            direction,
        };
        let audio = section.write();
        let (media, index) = match (self.audio_index, &self.last_sent) {
            (Some(index), Some(last)) if index < last.media.len() => {
                let media = last.media.iter().enumerate();
                let media = media
                    .map(|(i, m)| {
                        if i == index {
                            audio.clone()
                        } else {
                            disabled_section(m)
                        }
                    })
                    .collect();
                (media, index)
            }
            _ => (vec![audio], 0),
        };
        let mut media: Vec<MediaDescription> = media;
        let slot = self
            .video_index
            .filter(|i| *i < media.len() && *i != index)
            .unwrap_or(media.len());
        let mut video_keys = std::mem::take(&mut self.video_keys);
        let offered_video = video.and_then(|(video_local, video_policy)| {
            offer_video(
                slot,
                video_local,
                video_policy,
                protocol.clone(),
                policy.srtp,
                &mut video_keys,
                direction,
                rng,
            )
        });
        match &offered_video {
            Some((section, _)) if slot == media.len() => media.push(section.clone()),
            Some((section, _)) => media[slot] = section.clone(),
            None => {}
        }
        // The further streams keep their slots (our video's gone, they stay disabled); new
        // forwarded ones follow.
        let before = (self.last_sent.clone(), self.forwarding.clone());
        let add_new = forwarding.is_some();
        if let Some(forwarding) = forwarding {
            self.forwarding = forwarding.to_vec();
        }
        let next = media.len();
        let further = match video {
            Some((_, video_policy)) => offer_further(
                &self.further,
                &self.forwarding,
                add_new.then_some(next),
                video_policy,
                &protocol,
                policy.srtp,
                &mut video_keys,
                direction,
                rng,
            ),
            None => Vec::new(),
        };
        self.video_keys = video_keys;
        let mut restated = Vec::new();
        for (section, offered) in further {
            let at = offered.index();
            if at == media.len() {
                media.push(section);
                restated.push(offered);
            } else if at < media.len() && at != index && at != slot {
                media[at] = section;
                restated.push(offered);
            }
        }
        let media_count = media.len();
        let sdp = self.stamp(local.address, media);
        self.before_offer = Some(before);
        self.audio_index = Some(index);
        if slot < media_count {
            self.video_index = Some(slot);
        }
        self.video_offer = offered_video.map(|(_, offered)| offered);
        self.further_offer = restated;
        self.offer = Some(OfferedAudio {
            index,
            media_count,
            protocol,
            codecs: codecs.into_iter().map(|(pt, c)| (pt, c.clone())).collect(),
            telephone_events,
            crypto,
            direction,
            rtcp_mux: true,
            ptime_ms: policy.ptime_ms,
        });
        self.awaiting_answer = true;
        Ok(sdp)
    }

    /// Gives up our last offer (its request failed or was cancelled, or its answer was
    /// unusable), so that a new offer can be made: the session is as before it — its m-line
    /// layout and the streams forwarded then — but for the version of the next description,
    /// which still increases past it.
    pub fn discard_offer(&mut self) {
        self.awaiting_answer = false;
        let Some((before, forwarding)) = self.before_offer.take() else {
            return;
        };
        self.forwarding = forwarding;
        // (A first offer given up stays the last description sent: there was none before.)
        if let (Some(mut before), Some(discarded)) = (before, self.last_sent.as_ref()) {
            before.origin.session_version = discarded.origin.session_version;
            self.last_sent = Some(before);
            self.bump_version = true;
        }
    }

    /// Builds the next description we send: the session's `o=` line, with `sess-version`
    /// incremented when the content differs from the last one sent (RFC 3264 §8).
    pub(super) fn stamp(
        &mut self,
        address: IpAddr,
        media: Vec<MediaDescription>,
    ) -> SessionDescription {
        let mut sdp = SessionDescription::new(self.origin.clone(), "-");
        sdp.connection = Some(Connection::new(address));
        sdp.attributes = self.announced.clone();
        sdp.media = media;
        let bump = std::mem::take(&mut self.bump_version);
        if let Some(last) = &self.last_sent {
            sdp.origin = last.origin.clone();
            if sdp != *last || bump {
                sdp.origin.session_version = sdp.origin.session_version.wrapping_add(1);
            }
        }
        self.last_sent = Some(sdp.clone());
        sdp
    }
}

/// Our master key for `suite`, drawn from `rng` the first time.
pub(super) fn session_key(
    keys: &mut Vec<(SrtpSuite, SrtpMasterKey)>,
    suite: SrtpSuite,
    rng: &mut impl RngCore,
) -> SrtpMasterKey {
    if let Some((_, key)) = keys.iter().find(|(s, _)| *s == suite) {
        return key.clone();
    }
    let key = SrtpMasterKey::generate(rng);
    keys.push((suite, key.clone()));
    key
}

/// The profile of our audio offer: `RTP/SAVP` under `Mandatory`, `RTP/AVP` otherwise, keeping
/// a secure profile already established under `Optional` and the feedback variant of an
/// established `AVPF`/`SAVPF` stream.
fn offer_protocol(srtp: SrtpPolicy, established: Option<&Protocol>) -> Protocol {
    let established_secure = established.is_some_and(Protocol::is_secure);
    let secure = match srtp {
        SrtpPolicy::Off => false,
        SrtpPolicy::Optional => established_secure,
        SrtpPolicy::Mandatory => true,
    };
    let feedback = matches!(established, Some(Protocol::RtpAvpf | Protocol::RtpSavpf));
    match (secure, feedback) {
        (false, false) => Protocol::RtpAvp,
        (true, false) => Protocol::RtpSavp,
        (false, true) => Protocol::RtpAvpf,
        (true, true) => Protocol::RtpSavpf,
    }
}

/// The payload types of an offer.
struct PayloadPlan<'a> {
    /// Payload types and codecs, in the policy's order.
    codecs: Vec<(u8, &'a AudioCodec)>,
    /// `telephone-event` payload types and clock rates.
    telephone_events: Vec<(u8, u32)>,
}

/// Payload types for the policy's codecs (their own unless taken) and for `telephone-event`
/// at each of their clock rates (101 at 8000 Hz, 110 at 48000 Hz, else a free dynamic one).
/// A format the session already numbered (`agreed`: the rtpmaps of our last description,
/// which echo the peer's numbers when we answered) keeps its number, and a number agreed for
/// one format is never given to another: a dynamic payload type's mapping must not change for
/// the duration of the session (RFC 3264 §8.3.2).
fn assign_payload_types<'a>(policy: &'a AudioPolicy, agreed: &[RtpMap]) -> PayloadPlan<'a> {
    let mut used = [false; 128];
    for map in agreed {
        if let Some(slot) = used.get_mut(usize::from(map.payload_type)) {
            *slot = true;
        }
    }
    let mut take = |preferred: u8, name: &str, clock_rate: u32, channels: u16| -> Option<u8> {
        let same = |map: &&RtpMap| {
            map.encoding.eq_ignore_ascii_case(name)
                && map.clock_rate == clock_rate
                && map.channels.unwrap_or(1) == channels
        };
        if let Some(map) = agreed.iter().find(same) {
            return Some(map.payload_type);
        }
        let pt = if usize::from(preferred) < used.len() && !used[usize::from(preferred)] {
            preferred
        } else {
            (96..128).find(|pt| !used[usize::from(*pt)])?
        };
        used[usize::from(pt)] = true;
        Some(pt)
    };
    let mut codecs = Vec::new();
    for codec in &policy.codecs {
        if codecs.iter().any(|(_, c): &(u8, &AudioCodec)| *c == codec) {
            continue;
        }
        let (name, rate, channels) = (codec.name.as_str(), codec.clock_rate, codec.channels);
        if let Some(pt) = take(codec.payload_type, name, rate, channels) {
            codecs.push((pt, codec));
        }
    }
    let mut telephone_events: Vec<(u8, u32)> = Vec::new();
    if policy.telephone_event {
        for (_, codec) in &codecs {
            let rate = codec.clock_rate;
            if telephone_events.iter().any(|(_, r)| *r == rate) {
                continue;
            }
            let preferred = match rate {
                8000 => TELEPHONE_EVENT_8000,
                48000 => TELEPHONE_EVENT_48000,
                _ => 96,
            };
            if let Some(pt) = take(preferred, "telephone-event", rate, 1) {
                telephone_events.push((pt, rate));
            }
        }
    }
    PayloadPlan {
        codecs,
        telephone_events,
    }
}
