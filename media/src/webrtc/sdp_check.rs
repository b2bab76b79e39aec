//! The checks a remote description passes before it reaches the peer connection: it parses,
//! and it describes DTLS-keyed ICE media (a fingerprint, ICE credentials, a DTLS profile on
//! every active m-line). What fails is refused with [`WebRtcError::BadSdp`] naming the fault,
//! which the engine answers with 488.

use std::io::Cursor;

use rtc::sdp::description::media::MediaDescription;
use rtc::sdp::description::session::SessionDescription;

use super::WebRtcError;
use crate::video::h264::{H264Level, ProfileLevelId};

/// What the checks learnt about a valid remote description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpFacts {
    /// The peer's certificate fingerprint (`sha-256 AB:CD:…`), from the first m-line that has
    /// one, else the session level.
    pub fingerprint: String,
    /// Whether an active (non-zero port or bundled) audio m-line is present.
    pub audio: bool,
    /// Whether an active video m-line is present.
    pub video: bool,
}

/// Checks a remote SDP (offer or answer) as described in the module docs.
pub fn check_remote_sdp(sdp: &str) -> Result<SdpFacts, WebRtcError> {
    let bad = |why: &str| WebRtcError::BadSdp(why.to_owned());
    if !sdp.trim_start().starts_with("v=") {
        return Err(bad("does not start with v="));
    }
    let parsed = SessionDescription::unmarshal(&mut Cursor::new(sdp.as_bytes()))
        .map_err(|e| WebRtcError::BadSdp(e.to_string()))?;
    if parsed.media_descriptions.is_empty() {
        return Err(bad("no m= line"));
    }
    let session_fingerprint = parsed.attribute("fingerprint").cloned();
    let session_ufrag = parsed.attribute("ice-ufrag").is_some();
    // RFC 8843 §7.1.3, §10.1: in answers and later offers the transport attributes of a
    // BUNDLE group are in its tagged m-section only.
    let bundled: Vec<&str> = parsed
        .attributes
        .iter()
        .filter(|a| a.key == "group")
        .filter_map(|a| a.value.as_deref()?.strip_prefix("BUNDLE "))
        .flat_map(str::split_whitespace)
        .collect();
    let in_bundle = |media: &MediaDescription| {
        media
            .attribute("mid")
            .flatten()
            .is_some_and(|mid| bundled.contains(&mid))
    };
    let bundle_ufrag = parsed
        .media_descriptions
        .iter()
        .any(|m| in_bundle(m) && m.attribute("ice-ufrag").is_some());
    let mut fingerprint = None;
    let (mut audio, mut video) = (false, false);
    for media in &parsed.media_descriptions {
        let name = &media.media_name;
        let bundled_only = media.attribute("bundle-only").is_some();
        if name.port.value == 0 && !bundled_only {
            continue;
        }
        let proto = name.protos.join("/");
        let dtls = name.protos.iter().any(|p| p == "TLS" || p == "DTLS");
        if !dtls {
            return Err(WebRtcError::BadSdp(format!(
                "m={} uses {proto}, not UDP/TLS/RTP/SAVPF",
                name.media
            )));
        }
        let ufrag = session_ufrag || (bundle_ufrag && in_bundle(media));
        if media.attribute("ice-ufrag").is_none() && !ufrag {
            return Err(bad("no a=ice-ufrag"));
        }
        if fingerprint.is_none() {
            fingerprint = media.attribute("fingerprint").flatten().map(str::to_owned);
        }
        match name.media.as_str() {
            "audio" => audio = true,
            "video" => video = true,
            _ => {}
        }
    }
    if !audio && !video {
        return Err(bad("no active audio or video m= line"));
    }
    let fingerprint = fingerprint
        .or(session_fingerprint)
        .ok_or_else(|| bad("no a=fingerprint"))?;
    let mut parts = fingerprint.split_whitespace();
    let valid = matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(_), Some(hex), None)
            if hex.split(':').all(|b| b.len() == 2 && b.chars().all(|c| c.is_ascii_hexdigit()))
    );
    if !valid {
        return Err(bad("malformed a=fingerprint"));
    }
    Ok(SdpFacts {
        fingerprint,
        audio,
        video,
    })
}

/// The session-level attribute with which a Callisto says that it shows every video stream
/// a peer sends it, each as a tile of its own ([`WebRtcVideoMedia::more_streams`]): a
/// conference host then forwards each participant's video to it as a stream of its own
/// instead of the mosaic. A private attribute (RFC 4566 §5.13 lets a peer ignore it): a
/// browser page that shows one track says nothing and gets the mosaic.
///
/// [`WebRtcVideoMedia::more_streams`]: super::WebRtcVideoMedia::more_streams
pub const MULTISTREAM_ATTRIBUTE: &str = "x-callisto-multistream";

/// `sdp` with [`MULTISTREAM_ATTRIBUTE`] at the session level (before the first m-line), once.
pub fn announce_multistream(sdp: &str) -> String {
    if takes_several_streams(sdp) {
        return sdp.to_owned();
    }
    let end = if sdp.contains("\r\n") { "\r\n" } else { "\n" };
    let line = format!("a={MULTISTREAM_ATTRIBUTE}{end}");
    match sdp.find("\nm=") {
        Some(at) => format!("{}{line}{}", &sdp[..=at], &sdp[at + 1..]),
        None if sdp.is_empty() || sdp.ends_with('\n') => format!("{sdp}{line}"),
        None => format!("{sdp}{end}{line}"),
    }
}

/// Whether a description's writer takes several video streams: its session level carries
/// [`MULTISTREAM_ATTRIBUTE`], or it receives on more than one video m-line in use (a peer
/// that offers or accepts several `m=video` sections, as a conference client does).
pub fn takes_several_streams(sdp: &str) -> bool {
    let announced = sdp
        .lines()
        .take_while(|line| !line.starts_with("m="))
        .any(|line| line.trim_end() == format!("a={MULTISTREAM_ATTRIBUTE}"));
    // Video sections in use on which the writer receives (a send-only second one is a
    // screen share or slides, not a wish for more streams).
    let mut receiving = 0;
    for section in sdp.split("\nm=").skip(1) {
        let in_use = section.strip_prefix("video ").is_some_and(|rest| {
            rest.split_whitespace()
                .next()
                .is_some_and(|port| port != "0")
        });
        let sends_only = section
            .lines()
            .any(|line| matches!(line.trim_end(), "a=sendonly" | "a=inactive"));
        if in_use && !sends_only {
            receiving += 1;
        }
    }
    announced || receiving > 1
}

/// Whether a conference can forward other participants' pictures to a description's writer:
/// it takes several video streams ([`takes_several_streams`]) and has H.264 in packetization
/// mode 1 in a video section in use. Forwarded pictures stay as their senders cut them, in NAL
/// units larger than a packet, which mode 0 cannot carry; such a writer is sent the mosaic,
/// encoded for mode 0.
pub fn takes_forwarded_streams(sdp: &str) -> bool {
    takes_several_streams(sdp) && sdp.split("\nm=").skip(1).any(has_h264_mode_1)
}

/// The payload types of a video m-line in use (not port 0) — `m_line` without its `m=` — or
/// `None` for any other media line.
fn video_formats(m_line: &str) -> Option<impl Iterator<Item = u8> + '_> {
    let mut fields = m_line.split_whitespace();
    if fields.next() != Some("video") || matches!(fields.next(), Some("0") | None) {
        return None;
    }
    Some(fields.skip(1).filter_map(|format| format.parse().ok()))
}

/// The payload types of every video m-line in use in `sdp`.
pub(super) fn video_formats_in_use(sdp: &str) -> impl Iterator<Item = u8> + '_ {
    sdp.lines()
        .filter_map(|line| line.strip_prefix("m="))
        .filter_map(video_formats)
        .flatten()
}

/// Whether an SDP media section (from its m-line's media name on) is video in use with an
/// H.264 format in packetization mode 1.
fn has_h264_mode_1(section: &str) -> bool {
    let mut lines = section.lines();
    if lines.next().and_then(video_formats).is_none() {
        return false;
    }
    let attributes: Vec<&str> = lines.map(str::trim_end).collect();
    let h264: Vec<&str> = attributes
        .iter()
        .filter_map(|line| line.strip_prefix("a=rtpmap:"))
        .filter_map(|rest| rest.split_once(' '))
        .filter(|(_, encoding)| encoding.to_ascii_uppercase().starts_with("H264/"))
        .map(|(pt, _)| pt)
        .collect();
    attributes
        .iter()
        .filter_map(|line| line.strip_prefix("a=fmtp:"))
        .filter_map(|rest| rest.split_once(' '))
        .any(|(pt, params)| {
            h264.contains(&pt)
                && params
                    .split(';')
                    .any(|param| param.trim().eq_ignore_ascii_case("packetization-mode=1"))
        })
}

/// Whether a description's writer sends audio: its first audio m-line in use is `sendrecv`
/// or `sendonly` (by its own attribute, else the session's, else the default). A writer on
/// hold (`recvonly`, `inactive`) or without audio sends none; SDP that does not parse is
/// taken to send.
pub(crate) fn sends_audio(sdp: &str) -> bool {
    audio_direction(sdp).is_none_or(|d| matches!(d, Some("sendrecv" | "sendonly")))
}

/// Whether a description's writer receives audio (`sendrecv` or `recvonly`), as
/// [`sends_audio`] reads it.
pub(crate) fn receives_audio(sdp: &str) -> bool {
    audio_direction(sdp).is_none_or(|d| matches!(d, Some("sendrecv" | "recvonly")))
}

/// The direction of a description's first audio m-line in use: `Some(None)` without one,
/// `None` for SDP that does not parse.
/// The first `a=setup` value of `sdp` (RFC 4145: `active`, `passive`, `actpass`).
pub(super) fn dtls_setup(sdp: &str) -> Option<&str> {
    sdp.lines()
        .find_map(|line| line.trim_end().strip_prefix("a=setup:"))
}

/// Our DTLS role after the first exchange, as SDP names it: the other of the one the peer's
/// `answer` names for itself when we offered, the one our `answer` names when we answered.
pub(super) fn settled_dtls_role(answer: &str, we_offered: bool) -> Option<&'static str> {
    match (dtls_setup(answer)?, we_offered) {
        ("active", true) | ("passive", false) => Some("passive"),
        ("passive", true) | ("active", false) => Some("active"),
        _ => None,
    }
}

/// `sdp` with every `a=setup` line naming `role`.
pub(super) fn with_dtls_setup(sdp: &str, role: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        if line.starts_with("a=setup:") {
            let end = &line[line.trim_end().len()..];
            out.push_str("a=setup:");
            out.push_str(role);
            out.push_str(end);
        } else {
            out.push_str(line);
        }
    }
    out
}

fn audio_direction(sdp: &str) -> Option<Option<&'static str>> {
    let parsed = parse(sdp)?;
    let audio = parsed
        .media_descriptions
        .iter()
        .find(|m| m.media_name.media == "audio" && m.media_name.port.value != 0);
    Some(audio.map(|audio| direction(&parsed, audio)))
}

/// Each m-line's `a=mid` with the direction its writer gave it (`a=sendrecv` when none, the
/// session-level one when only that is given). Empty for SDP that does not parse.
pub(crate) fn media_directions(sdp: &str) -> Vec<(String, &'static str)> {
    let Some(parsed) = parse(sdp) else {
        return Vec::new();
    };
    parsed
        .media_descriptions
        .iter()
        .filter_map(|media| {
            let mid = media.attribute("mid").flatten()?.to_owned();
            Some((mid, direction(&parsed, media)))
        })
        .collect()
}

/// The direction attributes of SDP (RFC 4566 section 6).
const DIRECTIONS: [&str; 4] = ["sendrecv", "sendonly", "recvonly", "inactive"];

/// The direction the writer gave `media` of `parsed`: its own attribute, else the session's
/// (a flag without a value, so looked up by name), else `sendrecv`.
fn direction(parsed: &SessionDescription, media: &MediaDescription) -> &'static str {
    DIRECTIONS
        .into_iter()
        .find(|d| media.attribute(d).is_some())
        .or_else(|| DIRECTIONS.into_iter().find(|d| parsed.has_attribute(d)))
        .unwrap_or("sendrecv")
}

/// `sdp` parsed, or `None`.
fn parse(sdp: &str) -> Option<SessionDescription> {
    SessionDescription::unmarshal(&mut Cursor::new(sdp.as_bytes())).ok()
}

/// The video tracks a description says its writer sends: the (stream id, track id) of every
/// video m-line with a port (or bundled) whose direction is `sendrecv` (the default) or
/// `sendonly`, named by `a=msid` or `a=ssrc:N msid:` (see [`track_ids`]). `None` when no
/// video m-line names a track either way (or it does not parse): then it cannot tell which
/// tracks ended.
pub(crate) fn sent_video_tracks(sdp: &str) -> Option<Vec<(String, String)>> {
    let (sections, labelled) = video_sections(sdp)?;
    labelled.then(|| sections.into_iter().flatten().collect())
}

/// The track a description's writer sends on its first video m-line in use — the call's own
/// video, which the other m-lines' further streams (a conference's participants) come
/// after: its (stream id, track id), as [`track_ids`] reads them. `None` when that m-line
/// names none, or the writer does not send on it.
pub(crate) fn first_video_track(sdp: &str) -> Option<(String, String)> {
    // Empty names (an SSRC before any msid) name no track the library would open.
    video_sections(sdp)?
        .0
        .into_iter()
        .next()
        .flatten()
        .filter(|(_, track)| !track.is_empty())
}

/// A track's names: (stream id, track id).
type TrackIds = (String, String);

/// Every video m-line in use (with a port, or bundled), in order, with the (stream id, track
/// id) of its track ([`track_ids`]) when the writer sends on it; and whether any video m-line
/// names a track (`a=msid` or `a=ssrc:N msid:`) at all. `None` for SDP that does not parse.
fn video_sections(sdp: &str) -> Option<(Vec<Option<TrackIds>>, bool)> {
    let parsed = parse(sdp)?;
    let labelled = parsed
        .media_descriptions
        .iter()
        .filter(|media| media.media_name.media == "video")
        .flat_map(|media| &media.attributes)
        .any(|a| {
            let value = a.value.as_deref().unwrap_or_default();
            match a.key.as_str() {
                "msid" => msid_ids(value).is_some(),
                "ssrc" => ssrc_msid_ids(value).is_some(),
                _ => false,
            }
        });
    let sections = parsed
        .media_descriptions
        .iter()
        .filter(|media| media.media_name.media == "video")
        .filter(|media| {
            media.media_name.port.value != 0 || media.attribute("bundle-only").is_some()
        })
        .map(|media| {
            if matches!(direction(&parsed, media), "recvonly" | "inactive") {
                return None;
            }
            track_ids(media)
        })
        .collect();
    Some((sections, labelled))
}

/// The (stream id, track id) of a video m-line's track, read as the library reads them (so
/// that they match the ids of the remote track it opens): attributes in order, `a=msid` and
/// each `a=ssrc:N msid:S T` name the track from there on; each SSRC (not a repair flow of an
/// `a=ssrc-group`) takes the names current at its last `a=ssrc` line (empty before any), and
/// the SSRC that appeared last gives the track; without `a=ssrc` lines, the m-line's
/// `a=msid`. An `a=msid` of a stream id alone is passed over, as the library does.
fn track_ids(media: &MediaDescription) -> Option<TrackIds> {
    let repairs: Vec<u32> = media
        .attributes
        .iter()
        .filter(|a| a.key == "ssrc-group")
        .filter_map(
            |a| match a.value.as_deref()?.split(' ').collect::<Vec<_>>()[..] {
                ["FID" | "FEC-FR", _, repair] => repair.parse().ok(),
                _ => None,
            },
        )
        .collect();
    let mut current: Option<TrackIds> = None;
    // Each SSRC's track, in order of first appearance: the library gives its remote track
    // to each in turn, so the last one's names stand.
    let mut tracks: Vec<(u32, TrackIds)> = Vec::new();
    for attribute in &media.attributes {
        let Some(value) = attribute.value.as_deref() else {
            continue;
        };
        match attribute.key.as_str() {
            "msid" => {
                if let Some(ids) = msid_ids(value) {
                    current = Some(ids);
                }
            }
            "ssrc" => {
                let Some(ssrc) = value.split(' ').next().and_then(|s| s.parse::<u32>().ok()) else {
                    continue;
                };
                if repairs.contains(&ssrc) {
                    continue;
                }
                if let Some(ids) = ssrc_msid_ids(value) {
                    current = Some(ids);
                }
                let ids = current.clone().unwrap_or_default();
                match tracks.iter_mut().find(|(known, _)| *known == ssrc) {
                    Some((_, known)) => *known = ids,
                    None => tracks.push((ssrc, ids)),
                }
            }
            _ => {}
        }
    }
    match tracks.pop() {
        Some((_, ids)) => Some(ids),
        None => current,
    }
}

/// The H.264 level the writer of `sdp` decodes on its first video m-line in use (the call's
/// own video), from the `profile-level-id` of `payload_type`. With
/// `level-asymmetry-allowed=1` (RFC 6184 §8.1) that is the most it takes; without, the
/// answer's level holds both ways — ours (3.1) names everything we send (1280x720 at 30 fps),
/// so the peer's, as far as it is lower, is again the cap. `None` when it names none (RFC 6184
/// would read level 1, but phones that leave the parameter out decode more; the classic path
/// reads it the same way), or one Callisto does not know: then nothing is capped.
pub(super) fn peer_video_level(sdp: &str, payload_type: u8) -> Option<H264Level> {
    let parsed = SessionDescription::unmarshal(&mut Cursor::new(sdp.as_bytes())).ok()?;
    let video = parsed.media_descriptions.iter().find(|m| {
        m.media_name.media == "video"
            && (m.media_name.port.value != 0 || m.attribute("bundle-only").is_some())
    })?;
    let prefix = format!("{payload_type} ");
    let parameters = video
        .attributes
        .iter()
        .filter(|a| a.key == "fmtp")
        .find_map(|a| a.value.as_deref()?.strip_prefix(prefix.as_str()))?;
    let id = parameters
        .split(';')
        .find_map(|p| p.trim().strip_prefix("profile-level-id="))?;
    match id.parse::<ProfileLevelId>() {
        Ok(id) => Some(id.level),
        Err(error) => {
            tracing::debug!(%error, "the peer's profile-level-id is not used");
            None
        }
    }
}

/// The (stream id, track id) of an `a=msid` value, as the library reads it: exactly two
/// fields split by single spaces (a stream id alone names no track there).
fn msid_ids(value: &str) -> Option<TrackIds> {
    match value.split(' ').collect::<Vec<_>>()[..] {
        [stream, track] => Some((stream.to_owned(), track.to_owned())),
        _ => None,
    }
}

/// The (stream id, track id) of an `a=ssrc:N msid:S T` value (the attribute's value `N
/// msid:S T`), as the library reads it.
fn ssrc_msid_ids(value: &str) -> Option<TrackIds> {
    match value.split(' ').collect::<Vec<_>>()[..] {
        [_, msid, track] => {
            let stream = msid.strip_prefix("msid:")?;
            Some((stream.to_owned(), track.to_owned()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        a=group:BUNDLE 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
        a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n\
        a=fingerprint:sha-256 AB:CD:EF\r\na=setup:actpass\r\na=rtcp-mux\r\n\
        a=rtpmap:111 opus/48000/2\r\n";

    #[test]
    fn a_webrtc_offer_passes() {
        let facts = check_remote_sdp(OFFER).unwrap();
        assert_eq!(facts.fingerprint, "sha-256 AB:CD:EF");
        assert!(facts.audio && !facts.video);
    }

    #[test]
    fn the_peer_s_level_is_read_from_its_first_video_section() {
        let video = |port: u16, fmtp: &str| {
            format!(
                "m=video {port} UDP/TLS/RTP/SAVPF 102 125\r\na=mid:1\r\n\
                 a=rtpmap:102 H264/90000\r\na=rtpmap:125 H264/90000\r\n{fmtp}"
            )
        };
        let low = "a=fmtp:102 packetization-mode=0;profile-level-id=42e01f\r\n\
                   a=fmtp:125 level-asymmetry-allowed=1;packetization-mode=1;\
                   profile-level-id=42e00c\r\n";
        let sdp = format!("{OFFER}{}", video(9, low));
        assert_eq!(peer_video_level(&sdp, 125), Some(H264Level::L1_2));
        assert_eq!(peer_video_level(&sdp, 102), Some(H264Level::L3_1));
        assert_eq!(peer_video_level(&sdp, 96), None, "no such payload type");
        // A declined section is passed over for the next one in use.
        let two = format!(
            "{OFFER}{}{}",
            video(0, low),
            video(9, "a=fmtp:125 profile-level-id=42e01e\r\n")
        );
        assert_eq!(peer_video_level(&two, 125), Some(H264Level::L3));
        for unusable in [
            "a=fmtp:125 packetization-mode=1\r\n",
            "a=fmtp:125 profile-level-id=zz\r\n",
            "a=fmtp:125 profile-level-id=ff00ff\r\n",
        ] {
            let sdp = format!("{OFFER}{}", video(9, unusable));
            assert_eq!(peer_video_level(&sdp, 125), None, "{unusable}");
        }
        assert_eq!(peer_video_level("not sdp", 125), None);
    }

    /// A BUNDLE answer puts the transport attributes in the tagged m-section only (RFC 8843
    /// §7.1.3): the others are fine without their own; a section outside the group is not.
    #[test]
    fn sections_of_a_bundle_share_its_ice_credentials() {
        let video = "m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=mid:1\r\na=rtpmap:102 H264/90000\r\n";
        let bundled = format!("{OFFER}{video}").replace("BUNDLE 0", "BUNDLE 0 1");
        let facts = check_remote_sdp(&bundled).unwrap();
        assert!(facts.audio && facts.video);
        let err = check_remote_sdp(&format!("{OFFER}{video}")).unwrap_err();
        assert!(err.to_string().contains("ice-ufrag"), "{err}");
    }

    #[test]
    fn garbage_is_refused() {
        for garbage in ["", "hello", "v=0\r\nthis is not sdp", "\u{0}\u{1}\u{2}"] {
            assert!(matches!(
                check_remote_sdp(garbage),
                Err(WebRtcError::BadSdp(_))
            ));
        }
    }

    #[test]
    fn a_classic_offer_is_refused() {
        let classic = OFFER.replace("UDP/TLS/RTP/SAVPF", "RTP/AVP");
        let err = check_remote_sdp(&classic).unwrap_err();
        assert!(err.to_string().contains("RTP/AVP"), "{err}");
    }

    #[test]
    fn a_missing_or_malformed_fingerprint_is_refused() {
        let none = OFFER.replace("a=fingerprint:sha-256 AB:CD:EF\r\n", "");
        assert!(check_remote_sdp(&none)
            .unwrap_err()
            .to_string()
            .contains("fingerprint"));
        let bad = OFFER.replace("AB:CD:EF", "not-hex");
        assert!(check_remote_sdp(&bad)
            .unwrap_err()
            .to_string()
            .contains("malformed"));
    }

    #[test]
    fn the_video_tracks_the_writer_still_sends_are_read_from_msid() {
        let video = |port: u16, direction: &str, msid: &str| {
            format!(
                "m=video {port} UDP/TLS/RTP/SAVPF 125\r\nc=IN IP4 0.0.0.0\r\na=mid:v{msid}\r\n\
                 a=rtpmap:125 H264/90000\r\n{direction}a=msid:{msid} {msid}-video\r\n"
            )
        };
        let sdp = format!(
            "{OFFER}{}{}{}{}{}",
            video(9, "a=sendrecv\r\n", "alice"),
            video(9, "a=sendonly\r\n", "bob"),
            video(9, "a=inactive\r\n", "carol"),
            video(0, "a=sendonly\r\n", "dave"),
            video(9, "", "erin"),
        );
        let tracks = sent_video_tracks(&sdp).expect("labelled tracks");
        let names: Vec<&str> = tracks.iter().map(|(stream, _)| stream.as_str()).collect();
        assert_eq!(names, ["alice", "bob", "erin"]);
        assert_eq!(tracks[1].1, "bob-video");
        assert_eq!(sent_video_tracks("garbage"), None);
        assert_eq!(sent_video_tracks(OFFER), None, "no video track named");
        // The call's own track is the first video m-line's, in use and sent on.
        assert_eq!(
            first_video_track(&sdp),
            Some(("alice".to_owned(), "alice-video".to_owned()))
        );
        let refused_first = format!("{OFFER}{}{}", video(0, "", "dave"), video(9, "", "erin"));
        assert_eq!(first_video_track(&refused_first).unwrap().0, "erin");
        let receive_only_first = format!(
            "{OFFER}{}{}",
            video(9, "a=recvonly\r\n", "dave"),
            video(9, "", "erin")
        );
        assert_eq!(first_video_track(&receive_only_first), None);
        let stream_only = format!("{OFFER}{}", video(9, "", "erin")).replace(" erin-video", "");
        assert_eq!(first_video_track(&stream_only), None);
        // A stream id alone names nothing, so a description with no other name cannot tell
        // which tracks ended.
        assert_eq!(sent_video_tracks(&stream_only), None);
        // Tracks named only by their SSRCs' msid are followed like those of `a=msid`.
        let by_ssrc = sdp.replace("a=msid:", "a=ssrc:7 msid:");
        assert_eq!(sent_video_tracks(&by_ssrc), Some(tracks));
        assert_eq!(first_video_track(&by_ssrc).unwrap().1, "alice-video");
        // Fields split by one space each, as the library reads them.
        let doubled = sdp.replace(" alice-video", "  alice-video");
        assert_eq!(first_video_track(&doubled), None);
        assert_eq!(first_video_track(OFFER), None);
    }

    #[test]
    fn a_tracks_ids_are_read_as_the_library_names_the_track() {
        let first = |attributes: &str| {
            let sdp = format!(
                "{OFFER}m=video 9 UDP/TLS/RTP/SAVPF 125\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n\
                 a=rtpmap:125 H264/90000\r\n{attributes}"
            );
            first_video_track(&sdp).map(|(stream, track)| format!("{stream} {track}"))
        };
        let first = |attributes: &str| first(attributes).unwrap_or_default();
        assert_eq!(first("a=msid:s t\r\n"), "s t");
        // An SSRC's own msid names its track, before or after the m-line's.
        assert_eq!(first("a=msid:s t\r\na=ssrc:1 msid:u v\r\n"), "u v");
        assert_eq!(first("a=ssrc:1 msid:u v\r\na=msid:s t\r\n"), "u v");
        assert_eq!(
            first("a=msid:s t\r\na=ssrc:1 cname:c\r\na=ssrc:1 msid:u v\r\n"),
            "u v"
        );
        // An SSRC line without one takes the names read so far.
        assert_eq!(first("a=msid:s t\r\na=ssrc:1 cname:c\r\n"), "s t");
        // A repair flow's lines name nothing.
        assert_eq!(
            first(
                "a=msid:s t\r\na=ssrc-group:FID 1 2\r\na=ssrc:1 cname:c\r\n\
                 a=ssrc:2 msid:r x\r\n"
            ),
            "s t"
        );
        // A group of other than two SSRCs is no repair group; an SSRC that is no number is
        // passed over.
        assert_eq!(
            first(
                "a=msid:s t\r\na=ssrc-group:FID 1 2 3\r\na=ssrc:1 cname:c\r\n\
                 a=ssrc:2 msid:r x\r\n"
            ),
            "r x"
        );
        assert_eq!(first("a=msid:s t\r\na=ssrc:x msid:u v\r\n"), "s t");
        // Of several SSRCs, the one that appeared last names the track; an SSRC named before
        // any msid has empty names.
        assert_eq!(
            first("a=ssrc:1 msid:u v\r\na=ssrc:3 msid:w x\r\na=ssrc:1 cname:c\r\n"),
            "w x"
        );
        let unnamed = format!(
            "{OFFER}m=video 9 UDP/TLS/RTP/SAVPF 125\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n\
             a=ssrc:1 cname:c\r\na=msid:s t\r\n"
        );
        assert_eq!(
            sent_video_tracks(&unnamed),
            Some(vec![(String::new(), String::new())])
        );
    }

    #[test]
    fn a_multistream_peer_says_so_at_the_session_level_once() {
        assert!(!takes_several_streams(OFFER));
        let announced = announce_multistream(OFFER);
        assert!(takes_several_streams(&announced));
        assert!(check_remote_sdp(&announced).is_ok());
        assert_eq!(announce_multistream(&announced), announced);
        let first_media = announced.find("m=").unwrap();
        assert!(announced[..first_media].ends_with("a=x-callisto-multistream\r\n"));
        // Line ends are the description's own; a last line without one gets one first.
        let bare = "v=0\ns=-\nm=audio 9 RTP/AVP 0\n";
        assert_eq!(
            announce_multistream(bare),
            "v=0\ns=-\na=x-callisto-multistream\nm=audio 9 RTP/AVP 0\n"
        );
        assert_eq!(
            announce_multistream("v=0\r\ns=-"),
            "v=0\r\ns=-\r\na=x-callisto-multistream\r\n"
        );
        // Two video m-lines in use say the same; one in use and one refused do not.
        let video =
            |port: u16| format!("m=video {port} UDP/TLS/RTP/SAVPF 125\r\na=mid:v{port}\r\n");
        assert!(takes_several_streams(&format!(
            "{OFFER}{}{}",
            video(9),
            video(10)
        )));
        assert!(!takes_several_streams(&format!(
            "{OFFER}{}{}",
            video(9),
            video(0)
        )));
        let slides = format!("{}a=sendonly\r\n", video(10));
        assert!(!takes_several_streams(&format!(
            "{OFFER}{}{slides}",
            video(9)
        )));
        // The same line inside a media section says nothing about the session.
        let in_media = format!("{OFFER}a=x-callisto-multistream\r\n");
        assert!(!takes_several_streams(&in_media));
    }

    #[test]
    fn forwarded_streams_go_only_to_a_multistream_writer_with_h264_in_mode_1() {
        let video = |port: u16, fmtp: &str| {
            format!(
                "m=video {port} UDP/TLS/RTP/SAVPF 125 96\r\na=rtpmap:125 h264/90000\r\n\
                 a=fmtp:125 {fmtp}\r\na=rtpmap:96 VP8/90000\r\na=fmtp:96 packetization-mode=1\r\n"
            )
        };
        let mode_1 = "profile-level-id=42e01f; packetization-mode=1";
        let mode_0 = "profile-level-id=42e01f;packetization-mode=0";
        let with = |section: String| announce_multistream(&format!("{OFFER}{section}"));
        assert!(takes_forwarded_streams(&with(video(9, mode_1))));
        // Mode 0 only (or no mode, which is 0), H.264 refused, or no multistream: no.
        assert!(!takes_forwarded_streams(&with(video(9, mode_0))));
        assert!(!takes_forwarded_streams(&with(video(
            9,
            "profile-level-id=42e01f"
        ))));
        assert!(!takes_forwarded_streams(&with(video(0, mode_1))));
        assert!(!takes_forwarded_streams(&format!(
            "{OFFER}{}",
            video(9, mode_1)
        )));
        // Two video sections in use, one with mode 1, say yes without the attribute.
        assert!(takes_forwarded_streams(&format!(
            "{OFFER}{}{}",
            video(9, mode_0),
            video(10, mode_1)
        )));
    }

    #[test]
    fn whether_the_writer_sends_or_receives_audio_is_read_from_its_audio_direction() {
        assert!(sends_audio(OFFER), "sendrecv by default");
        for (direction, sends, receives) in [
            ("sendrecv", true, true),
            ("sendonly", true, false),
            ("recvonly", false, true),
            ("inactive", false, false),
        ] {
            let media = format!("{OFFER}a={direction}\r\n");
            assert_eq!(sends_audio(&media), sends, "{direction}");
            assert_eq!(receives_audio(&media), receives, "{direction}");
            // The session level, when the m-line says nothing.
            let at = OFFER.find("m=").unwrap();
            let session = format!("{}a={direction}\r\n{}", &OFFER[..at], &OFFER[at..]);
            assert_eq!(sends_audio(&session), sends, "session {direction}");
        }
        assert!(!sends_audio(&OFFER.replace("m=audio 9", "m=audio 0")));
        assert!(sends_audio("garbage"), "unreadable SDP keeps the timeout");
        assert!(receives_audio("garbage"));
    }

    #[test]
    fn each_m_lines_direction_is_read_by_its_mid() {
        let sdp = format!(
            "{OFFER}a=sendonly\r\n\
             m=video 9 UDP/TLS/RTP/SAVPF 125\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n\
             a=rtpmap:125 H264/90000\r\n\
             m=video 9 UDP/TLS/RTP/SAVPF 125\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\n\
             a=rtpmap:125 H264/90000\r\na=inactive\r\n"
        );
        assert_eq!(
            media_directions(&sdp),
            [
                ("0".to_string(), "sendonly"),
                ("1".to_string(), "sendrecv"),
                ("2".to_string(), "inactive")
            ]
        );
        assert!(media_directions("garbage").is_empty());
        // A direction at the session level holds for every m-line without its own.
        let at = sdp.find("m=").unwrap();
        let session = format!("{}a=recvonly\r\n{}", &sdp[..at], &sdp[at..]);
        assert_eq!(
            media_directions(&session),
            [
                ("0".to_string(), "sendonly"),
                ("1".to_string(), "recvonly"),
                ("2".to_string(), "inactive")
            ]
        );
    }
}
