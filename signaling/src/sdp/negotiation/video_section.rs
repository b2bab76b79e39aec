//! The H.264 video m-line: writing ours, answering the peer's, checking the peer's answer
//! (the rules are in the [module docs](super)).

use rand::RngCore;

use super::answer::choose_crypto;
use super::apply_answer::answer_srtp;
use super::audio_section::RtcpLine;
use super::negotiated::NegotiatedSrtp;
use super::policy::{LocalMedia, SrtpPolicy};
use super::remote::{classic_profile, RemoteEnd};
use super::session::session_key;
use super::video_policy::{h264_fmtp, H264Format, NegotiatedVideo, VideoPolicy};
use crate::sdp::attributes::Direction;
use crate::sdp::crypto::{CryptoAttribute, SrtpMasterKey, SrtpSuite};
use crate::sdp::model::{Attribute, MediaDescription, MediaKind, Protocol, SessionDescription};

/// The encoding name and clock rate of H.264 (RFC 6184 §8.2.1).
const H264: &str = "H264";
/// The RTP clock of video.
const VIDEO_CLOCK_RATE: u32 = 90_000;

/// Everything our video m-line says.
pub(super) struct VideoSection {
    pub port: u16,
    pub protocol: Protocol,
    /// Payload types and their `a=fmtp` values, in order.
    pub formats: Vec<(u8, String)>,
    pub framerate: Option<u32>,
    pub rtcp: RtcpLine,
    pub crypto: Vec<CryptoAttribute>,
    pub direction: Direction,
    /// Whether the section has generic NACK feedback (`a=rtcp-fb:<pt> nack`): always in an
    /// offer, in an answer only when the offer had it (RFC 4585 §4.2).
    pub nack: bool,
}

impl VideoSection {
    /// The m-line and its attributes.
    pub fn write(&self) -> MediaDescription {
        let formats = self.formats.iter().map(|(pt, _)| pt.to_string()).collect();
        let mut m =
            MediaDescription::new(MediaKind::Video, self.port, self.protocol.clone(), formats);
        let a = &mut m.attributes;
        for (pt, fmtp) in &self.formats {
            a.push(Attribute::value(
                "rtpmap",
                format!("{pt} {H264}/{VIDEO_CLOCK_RATE}"),
            ));
            a.push(Attribute::value("fmtp", format!("{pt} {fmtp}")));
            if self.nack {
                a.push(Attribute::value("rtcp-fb", format!("{pt} nack")));
            }
            a.push(Attribute::value("rtcp-fb", format!("{pt} nack pli")));
            a.push(Attribute::value("rtcp-fb", format!("{pt} ccm fir")));
        }
        if let Some(fps) = self.framerate {
            a.push(Attribute::value("framerate", fps.to_string()));
        }
        match self.rtcp {
            RtcpLine::Mux { fallback_port } => {
                if let Some(port) = fallback_port {
                    a.push(Attribute::value("rtcp", port.to_string()));
                }
                a.push(Attribute::flag("rtcp-mux"));
            }
            RtcpLine::Port(port) => a.push(Attribute::value("rtcp", port.to_string())),
        }
        for crypto in &self.crypto {
            a.push(Attribute::value("crypto", crypto.to_string()));
        }
        a.push(Attribute::flag(self.direction.as_str()));
        m
    }
}

/// What our last offer proposed for video.
#[derive(Debug, Clone)]
pub(super) struct OfferedVideo {
    /// The index of the video m-line.
    pub index: usize,
    /// The video profile.
    pub protocol: Protocol,
    /// Payload types and their packetization modes.
    pub formats: Vec<(u8, u8)>,
    /// Our crypto lines (empty without SRTP).
    pub crypto: Vec<CryptoAttribute>,
    /// The direction we offered.
    pub direction: Direction,
    /// Whether we offered `a=rtcp-mux`.
    pub rtcp_mux: bool,
}

/// Our video m-line for an offer, and what it proposes.
#[allow(clippy::too_many_arguments)]
pub(super) fn offer_video(
    index: usize,
    local: &LocalMedia,
    policy: &VideoPolicy,
    protocol: Protocol,
    srtp: SrtpPolicy,
    keys: &mut Vec<(SrtpSuite, SrtpMasterKey)>,
    direction: Direction,
    rng: &mut impl RngCore,
) -> Option<(MediaDescription, OfferedVideo)> {
    let formats = policy.offered_formats();
    if formats.is_empty() {
        return None;
    }
    let crypto: Vec<CryptoAttribute> = match srtp {
        SrtpPolicy::Off => Vec::new(),
        SrtpPolicy::Optional | SrtpPolicy::Mandatory => [
            (1, SrtpSuite::AesCm128HmacSha1_80),
            (2, SrtpSuite::AesCm128HmacSha1_32),
        ]
        .into_iter()
        .map(|(tag, suite)| CryptoAttribute::new(tag, suite, session_key(keys, suite, rng)))
        .collect(),
    };
    let section = VideoSection {
        port: local.rtp_port,
        protocol: protocol.clone(),
        formats: formats
            .iter()
            .map(|(pt, mode)| (*pt, policy.fmtp(*mode)))
            .collect(),
        framerate: policy.framerate,
        rtcp: RtcpLine::Mux {
            fallback_port: Some(local.rtcp_port.unwrap_or(local.rtp_port)),
        },
        crypto: crypto.clone(),
        direction,
        nack: true,
    };
    let offered = OfferedVideo {
        index,
        protocol,
        formats,
        crypto,
        direction,
        rtcp_mux: true,
    };
    Some((section.write(), offered))
}

/// Whether `media` asks for generic NACK feedback for payload type `pt` (`a=rtcp-fb:<pt> nack`
/// or `a=rtcp-fb:* nack`, without a parameter: `nack pli` is another kind).
pub(super) fn has_generic_nack(media: &MediaDescription, pt: u8) -> bool {
    media.attributes_named("rtcp-fb").any(|a| {
        let mut words = a.value.as_deref().unwrap_or("").split_whitespace();
        let (format, kind, parameter) = (words.next(), words.next(), words.next());
        (format == Some("*") || format.and_then(|f| f.parse::<u8>().ok()) == Some(pt))
            && kind.is_some_and(|k| k.eq_ignore_ascii_case("nack"))
            && parameter.is_none()
    })
}

/// The first offered H.264 payload type we take, with its format.
fn first_h264(
    media: &MediaDescription,
    accept: impl Fn(&H264Format) -> bool,
) -> Option<(u8, H264Format)> {
    media.payload_types().find_map(|pt| {
        let map = media.rtpmap(pt)?;
        if !map.encoding.eq_ignore_ascii_case(H264) || map.clock_rate != VIDEO_CLOCK_RATE {
            return None;
        }
        let format = H264Format::parse(media.fmtp(pt))?;
        accept(&format).then_some((pt, format))
    })
}

/// Our answer to the offered video m-line `media`, and the negotiated stream; `None` when we
/// decline it (the caller answers it with port 0).
#[allow(clippy::too_many_arguments)]
pub(super) fn answer_video(
    offer: &SessionDescription,
    media: &MediaDescription,
    local: &LocalMedia,
    policy: &VideoPolicy,
    srtp: SrtpPolicy,
    keys: &mut Vec<(SrtpSuite, SrtpMasterKey)>,
    direction: Direction,
    rng: &mut impl RngCore,
) -> Option<(MediaDescription, NegotiatedVideo)> {
    classic_profile(&media.protocol).ok()?;
    let offered_crypto = choose_crypto(media, srtp).ok()?;
    let (payload_type, format) = policy.packetization_modes.iter().find_map(|mode| {
        first_h264(media, |f| {
            f.is_constrained_baseline_compatible() && f.packetization_mode == *mode
        })
    })?;
    let remote = RemoteEnd::read(offer, media).ok()?;
    let (crypto, negotiated_srtp) = match offered_crypto {
        Some(offered) => {
            let local_key = session_key(keys, offered.suite, rng);
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
    let our_level = policy.profile_level_id.to_be_bytes()[3];
    let answered_id =
        (format.profile_level_id & 0xff_ff_00) | u32::from(format.level().min(our_level));
    let our_direction = remote.direction.reversed().intersect(direction);
    let nack = has_generic_nack(media, payload_type);
    let section = VideoSection {
        port: local.rtp_port,
        protocol: media.protocol.clone(),
        formats: vec![(
            payload_type,
            h264_fmtp(answered_id, format.packetization_mode),
        )],
        framerate: policy.framerate,
        rtcp: if remote.rtcp_mux {
            RtcpLine::Mux {
                fallback_port: None,
            }
        } else {
            RtcpLine::Port(local.rtcp_port.unwrap_or(local.rtp_port))
        },
        crypto,
        direction: our_direction,
        nack,
    };
    let negotiated = NegotiatedVideo {
        remote_rtp: remote.rtp,
        remote_rtcp: if remote.rtcp_mux { None } else { remote.rtcp },
        rtcp_mux: remote.rtcp_mux,
        payload_type,
        packetization_mode: format.packetization_mode,
        profile_level_id: format.named_profile_level_id(),
        direction: our_direction,
        srtp: negotiated_srtp,
        nack,
    };
    Some((section.write(), negotiated))
}

/// The video stream the answer settles on, or `None` when it declines or breaks our video
/// offer.
pub(super) fn check_video_answer(
    offered: &OfferedVideo,
    answer: &SessionDescription,
) -> Option<NegotiatedVideo> {
    let media = answer.media.get(offered.index)?;
    if media.kind != MediaKind::Video || media.port == 0 {
        return None;
    }
    classic_profile(&media.protocol).ok()?;
    let srtp = answer_srtp(&offered.crypto, &offered.protocol, media).ok()?;
    let by_number = media.payload_types().find_map(|pt| {
        let (_, mode) = offered.formats.iter().find(|(offered, _)| *offered == pt)?;
        match media.rtpmap(pt) {
            Some(map) if !map.encoding.eq_ignore_ascii_case(H264) => None,
            _ => Some((pt, *mode, H264Format::parse(media.fmtp(pt)))),
        }
    });
    let (payload_type, packetization_mode, profile_level_id) = match by_number {
        Some((pt, mode, format)) => (
            pt,
            format.map_or(mode, |f| f.packetization_mode),
            format.and_then(|f| f.named_profile_level_id()),
        ),
        None => {
            let (pt, format) = first_h264(media, |f| {
                offered
                    .formats
                    .iter()
                    .any(|(_, mode)| *mode == f.packetization_mode)
            })?;
            (
                pt,
                format.packetization_mode,
                format.named_profile_level_id(),
            )
        }
    };
    if !offered
        .formats
        .iter()
        .any(|(_, mode)| *mode == packetization_mode)
    {
        return None;
    }
    let remote = RemoteEnd::read(answer, media).ok()?;
    let rtcp_mux = offered.rtcp_mux && remote.rtcp_mux;
    Some(NegotiatedVideo {
        remote_rtp: remote.rtp,
        remote_rtcp: if rtcp_mux { None } else { remote.rtcp },
        rtcp_mux,
        payload_type,
        packetization_mode,
        profile_level_id,
        direction: offered.direction.intersect(remote.direction.reversed()),
        srtp,
        // We offered it; the answer keeps it or not.
        nack: has_generic_nack(media, payload_type),
    })
}
