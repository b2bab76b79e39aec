//! A conference host's streams on the classic path: to a participant that takes several video
//! streams, the host sends each other participant's video on a further `m=video` of its own,
//! `sendonly` and named by `a=label`. Both ends are `SdpSession`s here: the host offers the
//! streams, the participant answers them as a bridge's further streams, and either side's
//! later offers (hold, resume, a participant leaving and another joining) keep each stream in
//! its slot.

mod sdp_support;

use callisto_signaling::sdp::{
    Direction, ForwardedStream, LocalMedia, MediaKind, SdpSession, SessionDescription, SrtpPolicy,
    VideoPolicy,
};
use sdp_support::*;

/// The host's ports for forwarded streams, and the participant's for further ones.
const HOST_PORTS: [u16; 3] = [41010, 41012, 41014];
const PARTICIPANT_PORTS: [u16; 3] = [42010, 42012, 42014];

fn at(port: u16) -> LocalMedia {
    LocalMedia {
        rtp_port: port,
        ..local()
    }
}

fn forward(streams: &[(&str, u16)]) -> Vec<ForwardedStream> {
    streams
        .iter()
        .map(|(label, port)| ForwardedStream {
            label: (*label).to_string(),
            local: at(*port),
        })
        .collect()
}

fn participant_ports() -> Vec<LocalMedia> {
    PARTICIPANT_PORTS.iter().map(|port| at(*port)).collect()
}

/// `side`'s answer to `offer`, wanting `direction`, with further ports for the participant.
fn answer(side: &mut SdpSession, offer: &SessionDescription, direction: Direction) -> String {
    let (video, video_policy) = (video_local(), VideoPolicy::default());
    side.answer_with_streams(
        offer,
        &local(),
        &policy(SrtpPolicy::Off),
        Some((&video, &video_policy)),
        &participant_ports(),
        direction,
        &mut rng(3),
    )
    .expect("answer")
    .0
    .to_string()
}

/// The host's offer forwarding `streams`.
fn host_offer(host: &mut SdpSession, streams: &[(&str, u16)]) -> SessionDescription {
    let (video, video_policy) = (video_local(), VideoPolicy::default());
    host.create_offer_with_streams(
        &local(),
        &policy(SrtpPolicy::Off),
        Some((&video, &video_policy)),
        &forward(streams),
        Direction::SendRecv,
        &mut rng(4),
    )
    .expect("offer")
}

/// A plain re-offer (hold, resume) from `side`.
fn reoffer(side: &mut SdpSession, direction: Direction) -> SessionDescription {
    let (video, video_policy) = (video_local(), VideoPolicy::default());
    side.create_offer_with_video(
        &local(),
        &policy(SrtpPolicy::Off),
        Some((&video, &video_policy)),
        direction,
        &mut rng(5),
    )
    .expect("re-offer")
}

fn parsed(text: &str) -> SessionDescription {
    callisto_signaling::sdp::parse(text).expect("our SDP parses")
}

/// Each video m-line of `sdp` as (port, direction, label).
fn video_lines(sdp: &SessionDescription) -> Vec<(u16, Option<Direction>, Option<String>)> {
    sdp.media
        .iter()
        .filter(|m| m.kind == MediaKind::Video)
        .map(|m| {
            let label = m.attribute_value("label").map(str::to_owned);
            (m.port, m.direction(), label)
        })
        .collect()
}

/// `side`'s further streams as (index, label, our port, forwarded, direction).
fn streams(side: &SdpSession) -> Vec<(usize, String, u16, bool, Direction)> {
    side.further_video()
        .iter()
        .map(|f| {
            let d = f.negotiated.direction;
            (f.index, f.label.clone(), f.local.rtp_port, f.forwarded, d)
        })
        .collect()
}

/// A participant's call with the host: the participant offered audio and video, the host
/// answered. Returns (host, participant).
fn established() -> (SdpSession, SdpSession) {
    let (mut host, mut participant) = (session(1), session(2));
    let offer = reoffer(&mut participant, Direction::SendRecv);
    let host_answer = answer(&mut host, &offer, Direction::SendRecv);
    participant.apply_answer(&parsed(&host_answer)).unwrap();
    (host, participant)
}

fn label(text: &str) -> Option<String> {
    Some(text.to_string())
}

#[test]
fn the_host_offers_each_forwarded_stream_sendonly_and_the_participant_receives_it() {
    let (mut host, mut participant) = established();
    let offer = host_offer(
        &mut host,
        &[("carol", HOST_PORTS[0]), ("dave", HOST_PORTS[1])],
    );
    assert_eq!(
        video_lines(&offer),
        [
            (VIDEO_PORT, Some(Direction::SendRecv), None),
            (HOST_PORTS[0], Some(Direction::SendOnly), label("carol")),
            (HOST_PORTS[1], Some(Direction::SendOnly), label("dave")),
        ]
    );
    // A forwarded stream's packets are its sender's, fragments included: mode 1 only.
    let modes: Vec<Vec<&str>> = offer.media[2..]
        .iter()
        .map(|m| {
            m.attributes_named("fmtp")
                .filter_map(|a| a.value.as_deref())
                .collect()
        })
        .collect();
    for fmtps in &modes {
        assert_eq!(fmtps.len(), 1, "{modes:?}");
        assert!(fmtps[0].contains("packetization-mode=1"), "{modes:?}");
    }
    let reply = answer(&mut participant, &offer, Direction::SendRecv);
    assert_eq!(
        streams(&participant),
        [
            (
                2,
                "carol".into(),
                PARTICIPANT_PORTS[0],
                false,
                Direction::RecvOnly
            ),
            (
                3,
                "dave".into(),
                PARTICIPANT_PORTS[1],
                false,
                Direction::RecvOnly
            ),
        ]
    );
    host.apply_answer(&parsed(&reply)).unwrap();
    assert_eq!(
        streams(&host),
        [
            (2, "carol".into(), HOST_PORTS[0], true, Direction::SendOnly),
            (3, "dave".into(), HOST_PORTS[1], true, Direction::SendOnly),
        ]
    );
    assert!(host
        .further_video()
        .iter()
        .all(|f| f.negotiated.packetization_mode == 1));
    let sending = |s: &SdpSession| s.further_video().iter().filter(|f| f.is_sent()).count();
    assert!(host.further_video().iter().all(|f| f.is_forwarding()));
    assert_eq!(
        sending(&host),
        0,
        "the host receives none of its own streams"
    );
    assert_eq!(sending(&participant), 2);
    // Where each stream goes: the participant's port for it.
    let remote: Vec<u16> = host
        .further_video()
        .iter()
        .map(|f| f.negotiated.remote_rtp.port())
        .collect();
    assert_eq!(remote, PARTICIPANT_PORTS[..2]);
}

#[test]
fn a_stream_no_longer_forwarded_turns_inactive_and_its_slot_takes_the_next() {
    let (mut host, mut participant) = established();
    let offer = host_offer(
        &mut host,
        &[("carol", HOST_PORTS[0]), ("dave", HOST_PORTS[1])],
    );
    let reply = answer(&mut participant, &offer, Direction::SendRecv);
    host.apply_answer(&parsed(&reply)).unwrap();

    // Carol leaves.
    let offer = host_offer(&mut host, &[("dave", HOST_PORTS[1])]);
    assert_eq!(
        video_lines(&offer)[1..],
        [
            (HOST_PORTS[0], Some(Direction::Inactive), label("carol")),
            (HOST_PORTS[1], Some(Direction::SendOnly), label("dave")),
        ]
    );
    let reply = answer(&mut participant, &offer, Direction::SendRecv);
    host.apply_answer(&parsed(&reply)).unwrap();
    let live: Vec<&str> = host
        .further_video()
        .iter()
        .filter(|f| f.is_forwarding())
        .map(|f| f.label.as_str())
        .collect();
    assert_eq!(live, ["dave"]);
    assert!(participant.further_video()[0].negotiated.direction == Direction::Inactive);

    // Erin joins: she takes carol's slot (same m-line, same ports), no m-line is added.
    let offer = host_offer(
        &mut host,
        &[("dave", HOST_PORTS[1]), ("erin", HOST_PORTS[0])],
    );
    assert_eq!(offer.media.len(), 4);
    assert_eq!(
        video_lines(&offer)[1..],
        [
            (HOST_PORTS[0], Some(Direction::SendOnly), label("erin")),
            (HOST_PORTS[1], Some(Direction::SendOnly), label("dave")),
        ]
    );
    let reply = answer(&mut participant, &offer, Direction::SendRecv);
    assert_eq!(
        streams(&participant),
        [
            (
                2,
                "erin".into(),
                PARTICIPANT_PORTS[0],
                false,
                Direction::RecvOnly
            ),
            (
                3,
                "dave".into(),
                PARTICIPANT_PORTS[1],
                false,
                Direction::RecvOnly
            ),
        ]
    );
    host.apply_answer(&parsed(&reply)).unwrap();
    assert_eq!(
        streams(&host),
        [
            (2, "erin".into(), HOST_PORTS[0], true, Direction::SendOnly),
            (3, "dave".into(), HOST_PORTS[1], true, Direction::SendOnly),
        ]
    );

    // A third stream while two are live goes at the end.
    let three = [
        ("dave", HOST_PORTS[1]),
        ("erin", HOST_PORTS[0]),
        ("frank", HOST_PORTS[2]),
    ];
    let offer = host_offer(&mut host, &three);
    assert_eq!(
        video_lines(&offer)[3],
        (HOST_PORTS[2], Some(Direction::SendOnly), label("frank"))
    );

    // A participant that declines frank's stream (port 0): the host's session forgets it.
    let mut reply = parsed(&answer(&mut participant, &offer, Direction::SendRecv));
    reply.media[4].port = 0;
    host.apply_answer(&reply).unwrap();
    let kept: Vec<&str> = host
        .further_video()
        .iter()
        .map(|f| f.label.as_str())
        .collect();
    assert_eq!(kept, ["erin", "dave"]);
}

#[test]
fn holds_from_either_side_keep_the_forwarded_streams_in_their_slots() {
    let (mut host, mut participant) = established();
    let offer = host_offer(
        &mut host,
        &[("carol", HOST_PORTS[0]), ("dave", HOST_PORTS[1])],
    );
    let reply = answer(&mut participant, &offer, Direction::SendRecv);
    host.apply_answer(&parsed(&reply)).unwrap();
    // Dave leaves: his stream is retired.
    let offer = host_offer(&mut host, &[("carol", HOST_PORTS[0])]);
    let reply = answer(&mut participant, &offer, Direction::SendRecv);
    host.apply_answer(&parsed(&reply)).unwrap();

    // The participant holds and resumes: the host answers each stream in its slot, the
    // retired one inactive whatever the participant asks.
    let hold = reoffer(&mut participant, Direction::SendOnly);
    let reply = parsed(&answer(&mut host, &hold, Direction::SendRecv));
    assert_eq!(
        video_lines(&reply),
        [
            (VIDEO_PORT, Some(Direction::RecvOnly), None),
            (HOST_PORTS[0], Some(Direction::Inactive), label("carol")),
            (HOST_PORTS[1], Some(Direction::Inactive), label("dave")),
        ]
    );
    participant.apply_answer(&reply).unwrap();
    let resume = reoffer(&mut participant, Direction::SendRecv);
    let reply = parsed(&answer(&mut host, &resume, Direction::SendRecv));
    assert_eq!(
        video_lines(&reply)[1..],
        [
            (HOST_PORTS[0], Some(Direction::SendOnly), label("carol")),
            (HOST_PORTS[1], Some(Direction::Inactive), label("dave")),
        ]
    );
    participant.apply_answer(&reply).unwrap();
    assert_eq!(
        streams(&participant)[0],
        (
            2,
            "carol".into(),
            PARTICIPANT_PORTS[0],
            false,
            Direction::RecvOnly
        )
    );

    // The host holds (inactive) and resumes with a plain re-offer: the live stream comes
    // back sendonly, the retired one stays inactive.
    let hold = reoffer(&mut host, Direction::Inactive);
    assert!(video_lines(&hold)
        .iter()
        .all(|(_, d, _)| *d == Some(Direction::Inactive)));
    let reply = answer(&mut participant, &hold, Direction::SendRecv);
    host.apply_answer(&parsed(&reply)).unwrap();
    let resume = reoffer(&mut host, Direction::SendRecv);
    assert_eq!(
        video_lines(&resume)[1..],
        [
            (HOST_PORTS[0], Some(Direction::SendOnly), label("carol")),
            (HOST_PORTS[1], Some(Direction::Inactive), label("dave")),
        ]
    );
    let reply = answer(&mut participant, &resume, Direction::SendRecv);
    host.apply_answer(&parsed(&reply)).unwrap();
    assert!(host.further_video()[0].is_forwarding());
    assert!(!host.further_video()[1].is_forwarding());
}

#[test]
fn refused_or_declined_streams_leave_no_trace_in_later_offers() {
    let (mut host, mut participant) = established();
    // The offer of carol's stream is refused (its request failed): given up, the session is
    // as it was before it.
    let refused = host_offer(&mut host, &[("carol", HOST_PORTS[0])]);
    assert_eq!(refused.media.len(), 3);
    host.discard_offer();
    let hold = reoffer(&mut host, Direction::SendOnly);
    assert_eq!(hold.media.len(), 2, "a plain offer adds no stream: {hold}");
    assert!(hold.origin.session_version > refused.origin.session_version);
    host.discard_offer();
    // Made again, it does not pile up m-lines.
    let again = host_offer(&mut host, &[("carol", HOST_PORTS[0])]);
    assert_eq!(again.media.len(), 3, "{again}");
    assert!(again.origin.session_version > hold.origin.session_version);
    // Declined (port 0): later plain offers keep its slot disabled and add nothing.
    let mut reply = parsed(&answer(&mut participant, &again, Direction::SendRecv));
    reply.media[2].port = 0;
    host.apply_answer(&reply).unwrap();
    assert!(host.further_video().is_empty());
    let resume = reoffer(&mut host, Direction::SendRecv);
    assert_eq!(resume.media.len(), 3, "{resume}");
    assert_eq!(resume.media[2].port, 0);
}
