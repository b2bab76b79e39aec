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

use rand::RngCore;

use super::policy::{LocalMedia, SrtpPolicy};
use super::video_policy::{NegotiatedVideo, VideoPolicy};
use super::video_section::{answer_video, check_video_answer, offer_video, OfferedVideo};
use crate::sdp::attributes::Direction;
use crate::sdp::crypto::{SrtpMasterKey, SrtpSuite};
use crate::sdp::model::{MediaDescription, MediaKind, Protocol, SessionDescription};

/// The most further video streams a call takes; further m-lines beyond them are declined
/// (each costs a socket, threads and a decoder, and an offer is the peer's to write).
pub const MAX_FURTHER_VIDEO: usize = 8;

/// One further video stream of a classic call: the peer sends it, we only receive it.
#[derive(Debug, Clone, PartialEq)]
pub struct FurtherVideo {
    /// The index of its m-line in the session.
    pub index: usize,
    /// What the peer calls it (empty when its m-line says nothing).
    pub label: String,
    /// Where we receive it, as our SDP says.
    pub local: LocalMedia,
    /// What the latest exchange agreed for it.
    pub negotiated: NegotiatedVideo,
}

impl FurtherVideo {
    /// Whether the peer sends it (a stream on hold or inactive is still there, paused).
    pub fn is_sent(&self) -> bool {
        self.negotiated.direction.receives()
    }
}

/// A further stream restated in our offer, against which the answer is checked.
#[derive(Debug, Clone)]
pub(super) struct OfferedFurther {
    offered: OfferedVideo,
    label: String,
    local: LocalMedia,
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

/// The further video m-lines of `offer` we answer, and each one's stream: every video m-line
/// with a port but `own` (the call's own video), on the port `known` gave it before or else on
/// the first of `ports` no stream uses, up to [`MAX_FURTHER_VIDEO`]. An m-line without a port
/// to take, or without H.264 we can decode, is left out (the caller answers it with port 0).
#[allow(clippy::too_many_arguments)]
pub(super) fn answer_further(
    offer: &SessionDescription,
    own: Option<usize>,
    known: &[FurtherVideo],
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
        let earlier = known.iter().find(|f| f.index == index).map(|f| f.local);
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
            },
        ));
    }
    answered
}

/// Our offer's m-lines for the further streams of the latest exchange (each for its slot),
/// and what they propose.
pub(super) fn offer_further(
    known: &[FurtherVideo],
    policy: &VideoPolicy,
    protocol: &Protocol,
    srtp: SrtpPolicy,
    keys: &mut Vec<(SrtpSuite, SrtpMasterKey)>,
    direction: Direction,
    rng: &mut impl RngCore,
) -> Vec<(MediaDescription, OfferedFurther)> {
    known
        .iter()
        .filter_map(|further| {
            let (section, offered) = offer_video(
                further.index,
                &further.local,
                policy,
                protocol.clone(),
                srtp,
                keys,
                further_direction(direction),
                rng,
            )?;
            let offered = OfferedFurther {
                offered,
                label: further.label.clone(),
                local: further.local,
            };
            Some((section, offered))
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
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::model::Attribute;

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
}
