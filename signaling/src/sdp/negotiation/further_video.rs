//! Further video m-lines on the classic path: a peer that sends several video streams in one
//! call (a conference server or bridge showing each participant apart, a video phone that
//! shows slides beside the camera) offers an `m=video` section for each.
//!
//! The call's own stream, where our picture goes, is the session's video m-line (the first
//! video m-line with a port, until an offer removes it). Every further one that carries H.264
//! we can decode is answered receive-only — each on a port of its own, given by the caller,
//! up to [`MAX_FURTHER_VIDEO`] — and becomes a [`FurtherVideo`], named by the peer's
//! `a=label` (RFC 4574), else the stream id of its `a=msid`, else its `a=content` (RFC 4796).
//! A further m-line keeps its port for the rest of the call: later offers from the peer that
//! still send it are answered on the same port, and our own offers (hold, resume) restate it
//! in its slot, `recvonly` (or `inactive` while we hold the call). One that a later offer
//! disables, or an answer declines (port 0), ends; one not sent for now stays, paused.
//!
//! The other way round, a conference host sends a participant that takes several streams
//! each other participant's video on an m-line of its own ([`ForwardedStream`], offered by
//! [`SdpSession::create_offer_with_streams`](super::SdpSession::create_offer_with_streams)):
//! `sendonly`, named by `a=label`, on a port of its own (where the participant's RTCP, its
//! keyframe requests, comes back). A stream no longer forwarded keeps its m-line, `inactive`,
//! until another takes its port; later exchanges, ours or the peer's, restate each in its slot.

use rand::RngCore;

use super::policy::{LocalMedia, SrtpPolicy};
use super::video_policy::{NegotiatedVideo, VideoPolicy};
use super::video_section::{answer_video, check_video_answer, offer_video, OfferedVideo};
use crate::sdp::attributes::Direction;
use crate::sdp::crypto::{SrtpMasterKey, SrtpSuite};
use crate::sdp::model::{Attribute, MediaDescription, MediaKind, Protocol, SessionDescription};

/// The most further video streams a call takes; further m-lines beyond them are declined
/// (each costs a socket, threads and a decoder, and an offer is the peer's to write).
pub const MAX_FURTHER_VIDEO: usize = 8;

/// One further video stream of a classic call: one the peer sends and we only receive, or
/// ([`forwarded`](Self::forwarded)) one we send and the peer only receives.
#[derive(Debug, Clone, PartialEq)]
pub struct FurtherVideo {
    /// The index of its m-line in the session.
    pub index: usize,
    /// Its name: what the peer calls a stream it sends (empty when its m-line says
    /// nothing), ours for one we forward.
    pub label: String,
    /// Our port for it, as our SDP says (where we receive it, or its RTCP).
    pub local: LocalMedia,
    /// What the latest exchange agreed for it.
    pub negotiated: NegotiatedVideo,
    /// Whether it is a stream we send (a [`ForwardedStream`], named by us) rather than one
    /// the peer sends.
    pub forwarded: bool,
}

impl FurtherVideo {
    /// Whether the peer sends it (a stream on hold or inactive is still there, paused).
    pub fn is_sent(&self) -> bool {
        !self.forwarded && self.negotiated.direction.receives()
    }

    /// Whether it is a stream we forward and the latest exchange lets us send it.
    pub fn is_forwarding(&self) -> bool {
        self.forwarded && self.negotiated.direction.sends()
    }
}

/// A stream we send on a video m-line of its own (a conference host forwarding a
/// participant's video): what it is called and where its RTCP comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedStream {
    /// Its name (`a=label`): the participant it carries.
    pub label: String,
    /// Our port for it, which also tells it apart across exchanges.
    pub local: LocalMedia,
}

/// A further stream restated in our offer, against which the answer is checked.
#[derive(Debug, Clone)]
pub(super) struct OfferedFurther {
    offered: OfferedVideo,
    label: String,
    local: LocalMedia,
    forwarded: bool,
}

impl OfferedFurther {
    /// The index of its m-line.
    pub(super) fn index(&self) -> usize {
        self.offered.index
    }
}

/// What the peer calls the stream of `media`: `a=label`, else `a=msid`'s stream id, else
/// `a=content`; empty when none is there.
pub(super) fn stream_label(media: &MediaDescription) -> String {
    let msid = media
        .attribute_value("msid")
        .and_then(|value| value.split_whitespace().next());
    [
        media.attribute_value("label"),
        msid,
        media.attribute_value("content"),
    ]
    .into_iter()
    .flatten()
    .map(str::trim)
    .find(|value| !value.is_empty() && *value != "-")
    .unwrap_or_default()
    .to_owned()
}

/// The direction we want on further streams when we want `direction` on the call: we
/// receive them and never send.
fn further_direction(direction: Direction) -> Direction {
    direction.intersect(Direction::RecvOnly)
}

/// The direction we want on a stream we forward (`live`: still forwarded) when we want
/// `direction` on the call: we send it and never receive; a retired one is inactive.
fn forwarded_direction(direction: Direction, live: bool) -> Direction {
    if live {
        direction.intersect(Direction::SendOnly)
    } else {
        Direction::Inactive
    }
}

/// The name and direction of a further m-line of ours that `known` describes, as `forwarding`
/// (the streams we forward now) and `direction` (the call's) make them.
fn further_wish(
    known: &FurtherVideo,
    forwarding: &[ForwardedStream],
    direction: Direction,
) -> (String, Direction) {
    if !known.forwarded {
        return (known.label.clone(), further_direction(direction));
    }
    match forwarding.iter().find(|f| f.local == known.local) {
        Some(live) => (live.label.clone(), forwarded_direction(direction, true)),
        None => (known.label.clone(), forwarded_direction(direction, false)),
    }
}

/// What a stream we forward offers and accepts: `policy` in packetization mode 1 alone (a
/// forwarded stream's packets are its sender's, FU-A and STAP-A included: a peer that takes
/// mode 0 alone declines it).
fn forwarding_policy(policy: &VideoPolicy) -> VideoPolicy {
    VideoPolicy {
        packetization_modes: vec![1],
        ..policy.clone()
    }
}

/// `section` named `label` (`a=label`, RFC 4574) when it is a stream we forward.
fn labelled(mut section: MediaDescription, label: &str, forwarded: bool) -> MediaDescription {
    if forwarded && !label.is_empty() {
        section.attributes.push(Attribute::value("label", label));
    }
    section
}

/// The further video m-lines of `offer` we answer, and each one's stream: every video m-line
/// with a port but `own` (the call's own video), on the port `known` gave it before or else on
/// the first of `ports` no stream uses, up to [`MAX_FURTHER_VIDEO`]. An m-line without a port
/// to take, or without H.264 we can decode, is left out (the caller answers it with port 0).
/// One of ours that forwards a stream is answered as `forwarding` says (sent, or inactive).
#[allow(clippy::too_many_arguments)]
pub(super) fn answer_further(
    offer: &SessionDescription,
    own: Option<usize>,
    known: &[FurtherVideo],
    forwarding: &[ForwardedStream],
    ports: &[LocalMedia],
    policy: &VideoPolicy,
    srtp: SrtpPolicy,
    keys: &mut Vec<(SrtpSuite, SrtpMasterKey)>,
    direction: Direction,
    rng: &mut impl RngCore,
) -> Vec<(MediaDescription, FurtherVideo)> {
    let mut taken: Vec<LocalMedia> = Vec::new();
    let mut answered = Vec::new();
    for (index, media) in offer.media.iter().enumerate() {
        if media.kind != MediaKind::Video || media.port == 0 || own == Some(index) {
            continue;
        }
        if answered.len() == MAX_FURTHER_VIDEO {
            break;
        }
        let earlier = known.iter().find(|f| f.index == index);
        if let Some(ours) = earlier.filter(|f| f.forwarded) {
            let (label, wish) = further_wish(ours, forwarding, direction);
            let (local, policy) = (ours.local, forwarding_policy(policy));
            if let Some((section, negotiated)) =
                answer_video(offer, media, &local, &policy, srtp, keys, wish, rng)
            {
                taken.push(local);
                let stream = FurtherVideo {
                    index,
                    label: label.clone(),
                    local,
                    negotiated,
                    forwarded: true,
                };
                answered.push((labelled(section, &label, true), stream));
            }
            continue;
        }
        let earlier = earlier.map(|f| f.local);
        let fresh = || {
            ports
                .iter()
                .copied()
                .find(|port| !taken.contains(port) && !known.iter().any(|f| f.local == *port))
        };
        let Some(local) = earlier.or_else(fresh) else {
            continue;
        };
        let Some((section, negotiated)) = answer_video(
            offer,
            media,
            &local,
            policy,
            srtp,
            keys,
            further_direction(direction),
            rng,
        ) else {
            continue;
        };
        taken.push(local);
        let label = stream_label(media);
        answered.push((
            section,
            FurtherVideo {
                index,
                label,
                local,
                negotiated,
                forwarded: false,
            },
        ));
    }
    answered
}

/// Our offer's m-lines for the further streams of the latest exchange (each for its slot),
/// then — given `next`, the index of the first new m-line — for the streams of `forwarding`
/// that have none yet, and what they propose.
#[allow(clippy::too_many_arguments)]
pub(super) fn offer_further(
    known: &[FurtherVideo],
    forwarding: &[ForwardedStream],
    next: Option<usize>,
    policy: &VideoPolicy,
    protocol: &Protocol,
    srtp: SrtpPolicy,
    keys: &mut Vec<(SrtpSuite, SrtpMasterKey)>,
    direction: Direction,
    rng: &mut impl RngCore,
) -> Vec<(MediaDescription, OfferedFurther)> {
    let restated = known.iter().map(|further| {
        let (label, wish) = further_wish(further, forwarding, direction);
        (further.index, label, further.local, wish, further.forwarded)
    });
    let new = next.into_iter().flat_map(|next| {
        forwarding
            .iter()
            .filter(|stream| !known.iter().any(|k| k.forwarded && k.local == stream.local))
            .enumerate()
            .map(move |(i, stream)| {
                let wish = forwarded_direction(direction, true);
                (next + i, stream.label.clone(), stream.local, wish, true)
            })
    });
    let forwarding_policy = forwarding_policy(policy);
    restated
        .chain(new)
        .filter_map(|(index, label, local, wish, forwarded)| {
            let (section, offered) = offer_video(
                index,
                &local,
                if forwarded {
                    &forwarding_policy
                } else {
                    policy
                },
                protocol.clone(),
                srtp,
                keys,
                wish,
                rng,
            )?;
            let offered = OfferedFurther {
                offered,
                label: label.clone(),
                local,
                forwarded,
            };
            Some((labelled(section, &label, forwarded), offered))
        })
        .collect()
}

/// The further streams the peer's `answer` to our offer keeps.
pub(super) fn check_further_answer(
    offered: &[OfferedFurther],
    answer: &SessionDescription,
) -> Vec<FurtherVideo> {
    offered
        .iter()
        .filter_map(|further| {
            let negotiated = check_video_answer(&further.offered, answer)?;
            Some(FurtherVideo {
                index: further.offered.index,
                label: further.label.clone(),
                local: further.local,
                negotiated,
                forwarded: further.forwarded,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video_line(attributes: &[(&str, &str)]) -> MediaDescription {
        let mut media =
            MediaDescription::new(MediaKind::Video, 5000, Protocol::RtpAvp, vec!["96".into()]);
        media.attributes = attributes
            .iter()
            .map(|(name, value)| Attribute::value(*name, *value))
            .collect();
        media
    }

    #[test]
    fn a_stream_is_named_by_its_label_then_its_msid_then_its_content() {
        let all = video_line(&[("content", "slides"), ("msid", "bob v0"), ("label", "7")]);
        assert_eq!(stream_label(&all), "7");
        let msid = video_line(&[("content", "main"), ("msid", "bob v0")]);
        assert_eq!(stream_label(&msid), "bob");
        let dash = video_line(&[("msid", "- v0"), ("content", "slides")]);
        assert_eq!(stream_label(&dash), "slides");
        assert_eq!(stream_label(&video_line(&[])), "");
    }

    #[test]
    fn further_streams_are_received_only() {
        assert_eq!(further_direction(Direction::SendRecv), Direction::RecvOnly);
        assert_eq!(further_direction(Direction::SendOnly), Direction::Inactive);
        assert_eq!(further_direction(Direction::RecvOnly), Direction::RecvOnly);
    }

    #[test]
    fn forwarded_streams_are_sent_only_and_retired_ones_inactive() {
        assert_eq!(
            forwarded_direction(Direction::SendRecv, true),
            Direction::SendOnly
        );
        assert_eq!(
            forwarded_direction(Direction::RecvOnly, true),
            Direction::Inactive
        );
        assert_eq!(
            forwarded_direction(Direction::SendRecv, false),
            Direction::Inactive
        );
    }
}
