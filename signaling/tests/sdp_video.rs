//! H.264 video offer/answer on the classic path: our offers, answers to baresip's real video
//! offer, answers checked, declines, SRTP and hold.

mod sdp_support;

use callisto_signaling::sdp::{
    parse, Direction, MediaKind, NegotiatedVideo, Protocol, SdpSession, SessionDescription,
    SrtpPolicy, VideoPolicy,
};
use sdp_support::*;

fn video() -> VideoPolicy {
    VideoPolicy::default()
}

/// Answers `offer` with audio and the default video policy.
fn answer_video(
    offer: &str,
    srtp: SrtpPolicy,
) -> (SessionDescription, Option<NegotiatedVideo>, SdpSession) {
    let offer = parse(offer).expect("offer parses");
    let mut session = session(1);
    let (answer, _) = session
        .answer_with_video(
            &offer,
            &local(),
            &policy(srtp),
            Some((&video_local(), &video())),
            Direction::SendRecv,
            &mut rng(2),
        )
        .expect("answer");
    let negotiated = session.video().cloned();
    (answer, negotiated, session)
}

fn our_offer(session: &mut SdpSession, srtp: SrtpPolicy, direction: Direction) -> String {
    session
        .create_offer_with_video(
            &local(),
            &policy(srtp),
            Some((&video_local(), &video())),
            direction,
            &mut rng(3),
        )
        .expect("offer")
        .to_string()
}

#[test]
fn our_offer_carries_h264_in_both_modes_with_feedback() {
    let text = our_offer(&mut session(1), SrtpPolicy::Off, Direction::SendRecv);
    let sdp = parse(&text).unwrap();
    assert_eq!(sdp.media.len(), 2);
    let v = &sdp.media[1];
    assert_eq!(v.kind, MediaKind::Video);
    assert_eq!((v.port, &v.protocol), (VIDEO_PORT, &Protocol::RtpAvp));
    assert_eq!(v.formats, ["96", "97"]);
    assert_eq!(
        lines_with(&text, "a=rtpmap:9"),
        ["a=rtpmap:96 H264/90000", "a=rtpmap:97 H264/90000"]
    );
    assert_eq!(
        v.fmtp(96),
        Some("profile-level-id=42e01f;packetization-mode=1")
    );
    assert_eq!(
        v.fmtp(97),
        Some("profile-level-id=42e01f;packetization-mode=0")
    );
    assert_eq!(
        lines_with(&text, "a=rtcp-fb:"),
        [
            "a=rtcp-fb:96 nack",
            "a=rtcp-fb:96 nack pli",
            "a=rtcp-fb:96 ccm fir",
            "a=rtcp-fb:97 nack",
            "a=rtcp-fb:97 nack pli",
            "a=rtcp-fb:97 ccm fir"
        ]
    );
    assert!(v.rtcp_mux());
    assert_eq!(v.direction(), Some(Direction::SendRecv));
    assert_eq!(v.crypto().count(), 0);
}

#[test]
fn baresip_video_offer_is_answered_with_mode_1_and_both_streams() {
    let (answer, negotiated, _) = answer_video(BARESIP_VIDEO, SrtpPolicy::Optional);
    let text = answer.to_string();
    assert_eq!(answer.media.len(), 2);
    assert_eq!(answer.media[0].port, OUR_PORT);
    let v = &answer.media[1];
    assert_eq!((v.kind.clone(), v.port), (MediaKind::Video, VIDEO_PORT));
    assert_eq!(v.formats, ["97"]);
    assert_eq!(
        v.fmtp(97),
        Some("profile-level-id=42e01f;packetization-mode=1")
    );
    // baresip 1.0 offers `nack pli` and `ccm fir` but no generic NACK: the answer adds none.
    assert_eq!(
        lines_with(&text, "a=rtcp-fb:97"),
        ["a=rtcp-fb:97 nack pli", "a=rtcp-fb:97 ccm fir"]
    );
    assert!(!negotiated.as_ref().expect("video").nack);
    assert!(!v.rtcp_mux(), "baresip did not offer rtcp-mux");
    assert_eq!(v.rtcp().map(|r| r.port), Some(VIDEO_PORT));
    let negotiated = negotiated.expect("video negotiated");
    assert_eq!(negotiated.payload_type, 97);
    assert_eq!(negotiated.packetization_mode, 1);
    assert_eq!(negotiated.profile_level_id, Some(0x42e01f));
    assert_eq!(negotiated.remote_rtp, sock("127.0.0.1:35316"));
    assert_eq!(negotiated.remote_rtcp, Some(sock("127.0.0.1:35317")));
    assert_eq!(negotiated.direction, Direction::SendRecv);
    assert!(negotiated.srtp.is_none());
}

#[test]
fn mode_0_only_policy_takes_baresips_mode_0_payload_type() {
    let offer = parse(BARESIP_VIDEO).unwrap();
    let policy_0 = VideoPolicy {
        packetization_modes: vec![0],
        ..video()
    };
    let mut s = session(1);
    let (answer, _) = s
        .answer_with_video(
            &offer,
            &local(),
            &policy(SrtpPolicy::Off),
            Some((&video_local(), &policy_0)),
            Direction::SendRecv,
            &mut rng(2),
        )
        .unwrap();
    assert_eq!(answer.media[1].formats, ["96"]);
    assert_eq!(s.video().unwrap().packetization_mode, 0);
}

#[test]
fn level_answered_is_the_lower_one() {
    let offer = offer_text(
        "RTP/AVP 0",
        "m=video 30002 RTP/AVP 100\r\na=rtpmap:100 H264/90000\r\n\
         a=fmtp:100 profile-level-id=42e028;packetization-mode=1\r\n",
    );
    let (answer, negotiated, _) = answer_video(&offer, SrtpPolicy::Off);
    assert_eq!(
        answer.media[1].fmtp(100),
        Some("profile-level-id=42e01f;packetization-mode=1")
    );
    assert_eq!(negotiated.unwrap().profile_level_id, Some(0x42e028));
    let low = offer.replace("42e028", "42e00d");
    let (answer, _, _) = answer_video(&low, SrtpPolicy::Off);
    assert_eq!(
        answer.media[1].fmtp(100),
        Some("profile-level-id=42e00d;packetization-mode=1")
    );
}

#[test]
fn video_without_a_common_codec_or_policy_is_declined_and_audio_goes_on() {
    let high = offer_text(
        "RTP/AVP 0",
        "m=video 30002 RTP/AVP 100 101\r\na=rtpmap:100 H264/90000\r\n\
         a=fmtp:100 profile-level-id=640028;packetization-mode=1\r\na=rtpmap:101 VP8/90000\r\n",
    );
    let (answer, negotiated, _) = answer_video(&high, SrtpPolicy::Off);
    assert_eq!(answer.media[0].port, OUR_PORT);
    assert_eq!(answer.media[1].port, 0);
    assert!(negotiated.is_none());

    let mode2 = high.replace("640028;packetization-mode=1", "42e01f;packetization-mode=2");
    assert!(answer_video(&mode2, SrtpPolicy::Off).1.is_none());

    let (answer, _) = answer_with(BARESIP_VIDEO, &policy(SrtpPolicy::Off)).unwrap();
    assert_eq!(answer.media[1].port, 0, "no video policy: declined");
}

#[test]
fn answer_to_our_offer_yields_video_and_a_decline_keeps_audio() {
    let mut ours = session(1);
    our_offer(&mut ours, SrtpPolicy::Off, Direction::SendRecv);
    let (answer, negotiated, _) = {
        let offer = our_offer(&mut session(1), SrtpPolicy::Off, Direction::SendRecv);
        answer_video(&offer, SrtpPolicy::Off)
    };
    ours.apply_answer(&answer).expect("audio");
    let v = ours.video().expect("video");
    let theirs = negotiated.expect("answerer's video");
    assert_eq!(theirs.payload_type, 96);
    assert_eq!((v.payload_type, v.packetization_mode), (96, 1));
    // Both take generic NACK: the answer keeps the offer's `a=rtcp-fb:96 nack`.
    assert!(theirs.nack && v.nack);
    assert!(answer.to_string().contains("a=rtcp-fb:96 nack\r\n"));
    assert!(v.rtcp_mux);
    assert_eq!(v.remote_rtp, sock("192.0.2.100:40002"));

    // The peer declines video: the call keeps its audio, and has no video.
    let mut ours = session(1);
    let offer = our_offer(&mut ours, SrtpPolicy::Off, Direction::SendRecv);
    let (declined, _) = answer_with(&offer, &policy(SrtpPolicy::Off)).unwrap();
    assert_eq!(declined.media[1].port, 0);
    ours.apply_answer(&declined)
        .expect("audio still negotiated");
    assert!(ours.video().is_none());
}

#[test]
fn baresip_style_answer_with_renumbered_mode_1_is_accepted() {
    let mut ours = session(1);
    our_offer(&mut ours, SrtpPolicy::Off, Direction::SendRecv);
    let answer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=audio 6000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n\
        m=video 6002 RTP/AVP 100\r\na=rtpmap:100 H264/90000\r\n\
        a=fmtp:100 packetization-mode=1;profile-level-id=42e01f\r\na=rtcp-fb:* nack pli\r\n";
    ours.apply_answer(&parse(answer).unwrap()).unwrap();
    let v = ours.video().expect("video by name");
    assert_eq!((v.payload_type, v.packetization_mode), (100, 1));
    assert!(!v.nack, "`* nack pli` asks for no generic NACK");
    assert_eq!(v.remote_rtcp, Some(sock("127.0.0.1:6003")));
}

#[test]
fn srtp_keys_video_separately_from_audio() {
    let mut caller = session(1);
    let offer = our_offer(&mut caller, SrtpPolicy::Mandatory, Direction::SendRecv);
    let parsed = parse(&offer).unwrap();
    assert_eq!(parsed.media[1].protocol, Protocol::RtpSavp);
    let audio_key = parsed.media[0].crypto().next().unwrap().key;
    let video_key = parsed.media[1].crypto().next().unwrap().key;
    assert_ne!(audio_key, video_key);

    let (answer, negotiated, _) = answer_video(&offer, SrtpPolicy::Mandatory);
    let srtp = negotiated.unwrap().srtp.expect("video SRTP");
    assert_eq!(srtp.remote, video_key);
    caller.apply_answer(&answer).unwrap();
    let ours = caller.video().unwrap().srtp.clone().unwrap();
    assert_eq!(ours.local, video_key);
    assert_eq!(ours.remote, srtp.local);
}

#[test]
fn hold_and_resume_apply_to_video_and_keep_the_layout() {
    let mut ours = session(1);
    let first = our_offer(&mut ours, SrtpPolicy::Off, Direction::SendRecv);
    let (answer, _, _) = answer_video(&first, SrtpPolicy::Off);
    ours.apply_answer(&answer).unwrap();

    let hold = parse(our_offer(&mut ours, SrtpPolicy::Off, Direction::SendOnly)).unwrap();
    assert_eq!(hold.media.len(), 2);
    assert_eq!(hold.media[1].direction(), Some(Direction::SendOnly));
    let (held_answer, peer_view, _) = answer_video(&hold.to_string(), SrtpPolicy::Off);
    assert_eq!(peer_view.unwrap().direction, Direction::RecvOnly);
    ours.apply_answer(&held_answer).unwrap();
    assert_eq!(ours.video().unwrap().direction, Direction::SendOnly);

    let resume = parse(our_offer(&mut ours, SrtpPolicy::Off, Direction::SendRecv)).unwrap();
    assert_eq!(resume.media[1].direction(), Some(Direction::SendRecv));
    assert!(resume.origin.session_version > hold.origin.session_version);

    // A re-offer without video disables the video slot but keeps it.
    let audio_only = ours_reoffer_without_video(&mut ours, &resume);
    assert_eq!(audio_only.media.len(), 2);
    assert_eq!(audio_only.media[1].port, 0);
}

fn ours_reoffer_without_video(
    ours: &mut SdpSession,
    pending: &SessionDescription,
) -> SessionDescription {
    let (answer, _, _) = answer_video(&pending.to_string(), SrtpPolicy::Off);
    ours.apply_answer(&answer).unwrap();
    ours.create_offer(
        &local(),
        &policy(SrtpPolicy::Off),
        Direction::SendRecv,
        &mut rng(4),
    )
    .unwrap()
}

#[test]
fn video_is_added_to_an_audio_only_session_at_the_end() {
    let mut ours = session(1);
    let offer = ours
        .create_offer(
            &local(),
            &policy(SrtpPolicy::Off),
            Direction::SendRecv,
            &mut rng(3),
        )
        .unwrap();
    let (answer, _) = answer_with(&offer.to_string(), &policy(SrtpPolicy::Off)).unwrap();
    ours.apply_answer(&answer).unwrap();
    assert!(ours.video().is_none());
    let upgraded = parse(our_offer(&mut ours, SrtpPolicy::Off, Direction::SendRecv)).unwrap();
    assert_eq!(upgraded.media.len(), 2);
    assert_eq!(upgraded.media[1].kind, MediaKind::Video);
}

/// An answer naming generic NACK for every format (`a=rtcp-fb:* nack`) takes it; one naming it
/// for another payload type does not.
#[test]
fn generic_nack_is_read_for_the_chosen_payload_type_or_all() {
    let answer_with_feedback = |feedback: &str| {
        let mut ours = session(1);
        our_offer(&mut ours, SrtpPolicy::Off, Direction::SendRecv);
        let answer = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 6000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n\
             m=video 6002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
             a=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\n{feedback}"
        );
        ours.apply_answer(&parse(&answer).unwrap()).unwrap();
        ours.video().expect("video").nack
    };
    assert!(answer_with_feedback("a=rtcp-fb:* nack\r\n"));
    assert!(answer_with_feedback("a=rtcp-fb:96 NACK\r\n"));
    assert!(!answer_with_feedback("a=rtcp-fb:97 nack\r\n"));
    assert!(!answer_with_feedback("a=rtcp-fb:96 nack pli\r\n"));
    assert!(!answer_with_feedback(""));
}
