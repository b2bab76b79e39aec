//! Several video m-lines on the classic path: a conference bridge that sends each participant
//! as an `m=video` of its own. The first is the call's own video; the further ones are
//! received on ports of their own, named by their labels, kept across the peer's later offers
//! and restated in ours.

mod sdp_support;

use callisto_signaling::sdp::{
    parse, Direction, LocalMedia, MediaKind, SdpSession, SessionDescription, SrtpPolicy,
    VideoPolicy, MAX_FURTHER_VIDEO,
};
use sdp_support::*;

/// Our spare video ports for further streams.
const SPARE: [u16; 3] = [40010, 40012, 40014];

fn spare() -> Vec<LocalMedia> {
    SPARE
        .iter()
        .map(|port| LocalMedia {
            rtp_port: *port,
            ..local()
        })
        .collect()
}

/// A bridge's offer: audio, then one video m-line per `(port, label, direction)`.
fn bridge_offer(version: u32, videos: &[(u16, &str, &str)]) -> SessionDescription {
    let mut text = format!(
        "v=0\r\no=bridge 7 {version} IN IP4 198.51.100.9\r\ns=conference\r\n\
         c=IN IP4 198.51.100.9\r\nt=0 0\r\n\
         m=audio 31000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    );
    for (port, label, direction) in videos {
        text.push_str(&format!(
            "m=video {port} RTP/AVP 99\r\na=rtpmap:99 H264/90000\r\n\
             a=fmtp:99 profile-level-id=42e01f;packetization-mode=1\r\n\
             a=label:{label}\r\na={direction}\r\n"
        ));
    }
    parse(&text).expect("bridge offer parses")
}

fn answer(session: &mut SdpSession, offer: &SessionDescription, ports: &[LocalMedia]) -> String {
    answer_as(session, offer, SrtpPolicy::Off, true, ports)
}

/// Our answer under `srtp`, with video (our socket, the default policy) when `video`.
fn answer_as(
    session: &mut SdpSession,
    offer: &SessionDescription,
    srtp: SrtpPolicy,
    video: bool,
    ports: &[LocalMedia],
) -> String {
    let (video_local, video_policy) = (video_local(), VideoPolicy::default());
    session
        .answer_with_streams(
            offer,
            &local(),
            &policy(srtp),
            video.then_some((&video_local, &video_policy)),
            ports,
            Direction::SendRecv,
            &mut rng(4),
        )
        .expect("answer")
        .0
        .to_string()
}

/// Each video m-line of `sdp` as (port, direction).
fn video_lines(sdp: &str) -> Vec<(u16, Option<Direction>)> {
    parse(sdp)
        .unwrap()
        .media
        .iter()
        .filter(|m| m.kind == MediaKind::Video)
        .map(|m| (m.port, m.direction()))
        .collect()
}

/// The further streams as (index, label, our port, remote port, direction).
fn further(session: &SdpSession) -> Vec<(usize, String, u16, u16, Direction)> {
    session
        .further_video()
        .iter()
        .map(|f| {
            (
                f.index,
                f.label.clone(),
                f.local.rtp_port,
                f.negotiated.remote_rtp.port(),
                f.negotiated.direction,
            )
        })
        .collect()
}

#[test]
fn a_bridges_further_streams_are_received_each_on_a_port_of_its_own() {
    let mut ours = session(1);
    let offer = bridge_offer(
        1,
        &[
            (32000, "host", "sendrecv"),
            (32002, "alice", "sendonly"),
            (32004, "bob", "sendrecv"),
        ],
    );
    let text = answer(&mut ours, &offer, &spare());
    assert_eq!(
        video_lines(&text),
        [
            (VIDEO_PORT, Some(Direction::SendRecv)),
            (SPARE[0], Some(Direction::RecvOnly)),
            (SPARE[1], Some(Direction::RecvOnly)),
        ]
    );
    assert_eq!(ours.video().unwrap().remote_rtp.port(), 32000);
    assert_eq!(
        further(&ours),
        [
            (2, "alice".into(), SPARE[0], 32002, Direction::RecvOnly),
            (3, "bob".into(), SPARE[1], 32004, Direction::RecvOnly),
        ]
    );
    assert!(ours.further_video().iter().all(|f| f.is_sent()));
}

#[test]
fn streams_without_a_port_or_a_codec_are_declined_and_the_rest_go_on() {
    let mut ours = session(1);
    let mut offer = bridge_offer(
        1,
        &[
            (32000, "host", "sendrecv"),
            (32002, "alice", "sendonly"),
            (32004, "bob", "sendonly"),
            (32006, "carol", "sendonly"),
        ],
    );
    // alice's stream is VP8 only: not ours to decode.
    let alice = &mut offer.media[2];
    alice.formats = vec!["100".into()];
    alice
        .attributes
        .retain(|a| a.name != "rtpmap" && a.name != "fmtp");
    alice
        .attributes
        .push(callisto_signaling::sdp::Attribute::value(
            "rtpmap",
            "100 VP8/90000",
        ));
    let text = answer(&mut ours, &offer, &spare()[..1]);
    assert_eq!(
        video_lines(&text),
        [
            (VIDEO_PORT, Some(Direction::SendRecv)),
            (0, None),
            (SPARE[0], Some(Direction::RecvOnly)),
            (0, None),
        ]
    );
    assert_eq!(
        further(&ours),
        [(3, "bob".into(), SPARE[0], 32004, Direction::RecvOnly)]
    );

    // Without a video policy (an audio-only answer) nothing further is taken.
    let mut audio_only = session(1);
    answer_as(&mut audio_only, &offer, SrtpPolicy::Off, false, &spare());
    assert!(audio_only.further_video().is_empty());
}

#[test]
fn a_later_offer_keeps_each_streams_port_ends_the_disabled_and_adds_the_new() {
    let mut ours = session(1);
    let first = bridge_offer(
        1,
        &[
            (32000, "host", "sendrecv"),
            (32002, "alice", "sendonly"),
            (32004, "bob", "sendonly"),
        ],
    );
    answer(&mut ours, &first, &spare());
    // alice leaves (port 0), bob stays, carol joins on a new m-line. The ports offered again
    // include alice's and bob's: carol gets neither (alice's stream only ends once this
    // exchange is over, and late packets of hers must not reach carol's).
    let second = bridge_offer(
        2,
        &[
            (32000, "host", "sendrecv"),
            (0, "alice", "sendonly"),
            (32004, "bob", "sendonly"),
            (32006, "carol", "sendonly"),
        ],
    );
    let text = answer(&mut ours, &second, &spare());
    assert_eq!(
        video_lines(&text),
        [
            (VIDEO_PORT, Some(Direction::SendRecv)),
            (0, None),
            (SPARE[1], Some(Direction::RecvOnly)),
            (SPARE[2], Some(Direction::RecvOnly)),
        ]
    );
    assert_eq!(
        further(&ours),
        [
            (3, "bob".into(), SPARE[1], 32004, Direction::RecvOnly),
            (4, "carol".into(), SPARE[2], 32006, Direction::RecvOnly),
        ]
    );

    // bob's stream paused (inactive) is still there, not sent.
    let third = bridge_offer(
        3,
        &[
            (32000, "host", "sendrecv"),
            (0, "alice", "sendonly"),
            (32004, "bob", "inactive"),
            (32006, "carol", "sendonly"),
        ],
    );
    answer(&mut ours, &third, &spare());
    let bob = &ours.further_video()[0];
    assert_eq!((bob.local.rtp_port, bob.is_sent()), (SPARE[1], false));
}

#[test]
fn our_hold_and_resume_restate_the_further_streams_in_their_slots() {
    let mut ours = session(1);
    let offer = bridge_offer(
        1,
        &[(32000, "host", "sendrecv"), (32002, "alice", "sendonly")],
    );
    answer(&mut ours, &offer, &spare());
    let reoffer = |ours: &mut SdpSession, direction| {
        ours.create_offer_with_video(
            &local(),
            &policy(SrtpPolicy::Off),
            Some((&video_local(), &VideoPolicy::default())),
            direction,
            &mut rng(5),
        )
        .unwrap()
    };
    let hold = reoffer(&mut ours, Direction::SendOnly);
    assert_eq!(
        video_lines(&hold.to_string()),
        [
            (VIDEO_PORT, Some(Direction::SendOnly)),
            (SPARE[0], Some(Direction::Inactive)),
        ]
    );
    // The bridge answers as a peer would (its own ports and payload types, mirrored
    // directions).
    let bridge_answer = |version, main: &str, further: &str| {
        bridge_offer(version, &[(32000, "host", main), (32002, "alice", further)])
    };
    ours.apply_answer(&bridge_answer(2, "recvonly", "inactive"))
        .unwrap();
    assert_eq!(
        further(&ours),
        [(2, "alice".into(), SPARE[0], 32002, Direction::Inactive)]
    );

    let resume = reoffer(&mut ours, Direction::SendRecv);
    assert_eq!(
        video_lines(&resume.to_string()),
        [
            (VIDEO_PORT, Some(Direction::SendRecv)),
            (SPARE[0], Some(Direction::RecvOnly)),
        ]
    );
    ours.apply_answer(&bridge_answer(3, "sendrecv", "sendonly"))
        .unwrap();
    assert_eq!(
        further(&ours),
        [(2, "alice".into(), SPARE[0], 32002, Direction::RecvOnly)]
    );

    // An answer that declines the further m-line ends that stream.
    reoffer(&mut ours, Direction::SendRecv);
    let mut declined = bridge_answer(4, "sendrecv", "sendonly");
    declined.media[2].port = 0;
    ours.apply_answer(&declined).unwrap();
    assert!(ours.further_video().is_empty());
}

#[test]
fn the_calls_own_video_comes_back_on_a_new_m_line_and_further_ones_stay_further() {
    let mut ours = session(1);
    let first = bridge_offer(
        1,
        &[(32000, "host", "sendrecv"), (32002, "alice", "sendonly")],
    );
    answer(&mut ours, &first, &spare());
    // The call's own video is removed, then offered again at the end.
    let removed = bridge_offer(2, &[(0, "host", "sendrecv"), (32002, "alice", "sendonly")]);
    let text = answer(&mut ours, &removed, &spare());
    assert_eq!(
        video_lines(&text),
        [(0, None), (SPARE[0], Some(Direction::RecvOnly))]
    );
    assert!(ours.video().is_none());
    let back = bridge_offer(
        3,
        &[
            (0, "host", "sendrecv"),
            (32002, "alice", "sendonly"),
            (32008, "host", "sendrecv"),
        ],
    );
    let text = answer(&mut ours, &back, &spare());
    assert_eq!(
        video_lines(&text),
        [
            (0, None),
            (SPARE[0], Some(Direction::RecvOnly)),
            (VIDEO_PORT, Some(Direction::SendRecv)),
        ]
    );
    assert_eq!(ours.video().unwrap().remote_rtp.port(), 32008);
    assert_eq!(
        further(&ours),
        [(2, "alice".into(), SPARE[0], 32002, Direction::RecvOnly)]
    );
}

#[test]
fn a_call_takes_a_bounded_number_of_further_streams() {
    let labels: Vec<String> = (0..12).map(|n| format!("p{n}")).collect();
    let mut videos = vec![(32000, "host", "sendrecv")];
    videos.extend(
        labels
            .iter()
            .enumerate()
            .map(|(n, label)| (32002 + 2 * n as u16, label.as_str(), "sendonly")),
    );
    let ports: Vec<LocalMedia> = (0..12)
        .map(|n| LocalMedia {
            rtp_port: 41000 + 2 * n,
            ..local()
        })
        .collect();
    let mut ours = session(1);
    let text = answer(&mut ours, &bridge_offer(1, &videos), &ports);
    let taken = video_lines(&text)
        .iter()
        .filter(|(port, _)| *port != 0)
        .count();
    assert_eq!(taken, 1 + MAX_FURTHER_VIDEO);
    assert_eq!(ours.further_video().len(), MAX_FURTHER_VIDEO);
    assert_eq!(ours.further_video()[0].label, "p0");
}

#[test]
fn further_streams_are_keyed_like_the_calls_own_under_sdes() {
    let key = |n: u8| {
        if n == 0 {
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"
        } else {
            "Hh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7"
        }
    };
    let mut text = bridge_offer(
        1,
        &[(32000, "host", "sendrecv"), (32002, "alice", "sendonly")],
    )
    .to_string()
    .replace("RTP/AVP", "RTP/SAVP");
    for (n, line) in ["m=audio", "m=video 32000", "m=video 32002"]
        .iter()
        .enumerate()
    {
        let at = text.find(line).unwrap();
        let end = at + text[at..].find("\r\n").unwrap() + 2;
        let crypto = format!(
            "a=crypto:{} AES_CM_128_HMAC_SHA1_80 inline:{}\r\n",
            n + 1,
            key((n % 2) as u8)
        );
        text.insert_str(end, &crypto);
    }
    let offer = parse(&text).unwrap();
    let mut ours = session(1);
    let answer = answer_as(&mut ours, &offer, SrtpPolicy::Mandatory, true, &spare());
    let crypto = lines_with(&answer, "a=crypto:");
    assert_eq!(crypto.len(), 3, "{answer}");
    assert!(crypto[2].starts_with("a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:"));
    let alice = &ours.further_video()[0];
    let srtp = alice
        .negotiated
        .srtp
        .as_ref()
        .expect("alice's stream is keyed");
    assert_eq!(srtp.remote, offer.media[2].crypto().next().unwrap().key);
    assert_eq!(alice.negotiated.direction, Direction::RecvOnly);
}
