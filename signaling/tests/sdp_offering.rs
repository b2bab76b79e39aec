//! Making offers and taking answers (RFC 3264 §5, §7, §8): content, validation, versions,
//! hold and resume, the m-line layout of re-offers, pending offers and forks.

mod sdp_support;

use callisto_signaling::sdp::{
    parse, AudioCodec, AudioPolicy, Direction, LocalMedia, NegotiatedAudio, NegotiationError,
    SdpSession, SessionDescription, SrtpPolicy, SrtpSuite,
};
use sdp_support::*;

/// The peer's sockets in two-session tests.
fn peer_local() -> LocalMedia {
    LocalMedia {
        address: ip("198.51.100.1"),
        rtp_port: 30000,
        rtcp_port: None,
    }
}

fn offer(ours: &mut SdpSession, policy: &AudioPolicy, direction: Direction) -> SessionDescription {
    ours.create_offer(&local(), policy, direction, &mut rng(11))
        .expect("offer")
}

/// `peer` answers `offer` (through text, as on the wire) wanting `direction`.
fn peer_answers(
    peer: &mut SdpSession,
    offer: &SessionDescription,
    policy: &AudioPolicy,
    direction: Direction,
) -> (SessionDescription, NegotiatedAudio) {
    let offer = parse(offer.to_string()).expect("our offer parses");
    peer.answer(&offer, &peer_local(), policy, direction, &mut rng(12))
        .expect("answer")
}

/// Our offer under the default policy, and the text of an answer to it built from `answer`.
fn apply_text(srtp: SrtpPolicy, answer: &str) -> Result<NegotiatedAudio, NegotiationError> {
    let mut ours = session(1);
    offer(&mut ours, &policy(srtp), Direction::SendRecv);
    ours.apply_answer(&parse(answer).expect("answer parses"))
}

#[test]
fn offer_follows_the_policy() {
    let mut ours = session(1);
    let sdp = offer(
        &mut ours,
        &policy(SrtpPolicy::Optional),
        Direction::SendRecv,
    );
    let text = sdp.to_string();
    assert!(text.starts_with("v=0\r\no=- "));
    assert_eq!(lines_with(&text, "s="), ["s=-"]);
    assert_eq!(lines_with(&text, "c="), ["c=IN IP4 192.0.2.100"]);
    assert_eq!(lines_with(&text, "t="), ["t=0 0"]);
    assert_eq!(
        lines_with(&text, "m="),
        ["m=audio 40000 RTP/AVP 111 0 8 110 101"]
    );
    assert_eq!(
        lines_with(&text, "a=rtpmap:"),
        [
            "a=rtpmap:111 opus/48000/2",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:110 telephone-event/48000",
            "a=rtpmap:101 telephone-event/8000"
        ]
    );
    assert_eq!(
        lines_with(&text, "a=fmtp:"),
        [
            "a=fmtp:111 useinbandfec=1",
            "a=fmtp:110 0-16",
            "a=fmtp:101 0-16"
        ]
    );
    assert_eq!(lines_with(&text, "a=ptime:"), ["a=ptime:20"]);
    // Multiplexed RTCP, with the RTP port as the fallback for peers without RFC 5761.
    assert_eq!(lines_with(&text, "a=rtcp"), ["a=rtcp:40000", "a=rtcp-mux"]);
    let audio = &sdp.media[0];
    let crypto: Vec<_> = audio.crypto().collect();
    assert_eq!(
        crypto.iter().map(|c| (c.tag, c.suite)).collect::<Vec<_>>(),
        [
            (1, SrtpSuite::AesCm128HmacSha1_80),
            (2, SrtpSuite::AesCm128HmacSha1_32)
        ]
    );
    assert_ne!(crypto[0].key, crypto[1].key);
    assert!(crypto.iter().all(|c| c.is_usable()));
    assert_eq!(audio.direction(), Some(Direction::SendRecv));
    assert_eq!(parse(&text).unwrap(), sdp);
}

#[test]
fn offer_profile_per_srtp_policy_rtcp_port_and_address_family() {
    let mut ours = session(1);
    let sdp = offer(
        &mut ours,
        &policy(SrtpPolicy::Mandatory),
        Direction::SendRecv,
    );
    assert_eq!(sdp.media[0].protocol.as_str(), "RTP/SAVP");
    assert_eq!(sdp.media[0].crypto().count(), 2);

    let mut ours = session(1);
    let sdp = offer(
        &mut ours,
        &g711_policy(SrtpPolicy::Off),
        Direction::SendRecv,
    );
    let text = sdp.to_string();
    assert_eq!(lines_with(&text, "m="), ["m=audio 40000 RTP/AVP 0 8 101"]);
    assert!(lines_with(&text, "a=crypto").is_empty());

    let separate = LocalMedia {
        address: ip("2001:db8::5"),
        rtp_port: 40000,
        rtcp_port: Some(40001),
    };
    let sdp = session(1)
        .create_offer(
            &separate,
            &policy(SrtpPolicy::Off),
            Direction::SendRecv,
            &mut rng(3),
        )
        .unwrap();
    let text = sdp.to_string();
    assert_eq!(lines_with(&text, "a=rtcp"), ["a=rtcp:40001", "a=rtcp-mux"]);
    assert_eq!(lines_with(&text, "c="), ["c=IN IP6 2001:db8::5"]);
}

#[test]
fn offer_payload_types_avoid_collisions() {
    let custom = AudioCodec {
        payload_type: 101,
        ..AudioCodec::opus()
    };
    let clash = AudioPolicy {
        codecs: vec![custom, AudioCodec::pcmu(), AudioCodec::pcmu()],
        ..policy(SrtpPolicy::Off)
    };
    let sdp = offer(&mut session(1), &clash, Direction::SendRecv);
    // The duplicate PCMU is offered once; telephone-event/8000 moves off the taken 101.
    assert_eq!(sdp.media[0].formats, ["101", "0", "110", "96"]);
    assert_eq!(sdp.media[0].rtpmap(96).unwrap().encoding, "telephone-event");

    let empty = AudioPolicy {
        codecs: Vec::new(),
        ..AudioPolicy::default()
    };
    let err = session(1)
        .create_offer(&local(), &empty, Direction::SendRecv, &mut rng(1))
        .unwrap_err();
    assert_eq!(
        (err.status_code(), err),
        (500, NegotiationError::NoLocalCodecs)
    );
}

#[test]
fn two_callisto_sessions_agree() {
    let p = policy(SrtpPolicy::Optional);
    let mut ours = session(1);
    let mut peer = session(2);
    let offer = offer(&mut ours, &p, Direction::SendRecv);
    let (answer, theirs) = peer_answers(&mut peer, &offer, &p, Direction::SendRecv);
    let mine = ours
        .apply_answer(&parse(answer.to_string()).unwrap())
        .unwrap();

    assert_eq!(mine.remote_rtp, sock("198.51.100.1:30000"));
    assert_eq!(theirs.remote_rtp, sock("192.0.2.100:40000"));
    assert!(mine.rtcp_mux && theirs.rtcp_mux);
    assert_eq!(mine.codec, theirs.codec.clone());
    assert_eq!(
        (mine.codec.payload_type, mine.codec.name.as_str()),
        (111, "opus")
    );
    assert_eq!(mine.codec.fmtp.as_deref(), Some("useinbandfec=1"));
    assert_eq!(mine.telephone_event, theirs.telephone_event);
    assert_eq!(mine.telephone_event.unwrap().payload_type, 110);
    assert_eq!(
        (mine.direction, theirs.direction),
        (Direction::SendRecv, Direction::SendRecv)
    );
    let (a, b) = (mine.srtp.unwrap(), theirs.srtp.unwrap());
    assert_eq!(a.suite, SrtpSuite::AesCm128HmacSha1_80);
    assert_eq!((&a.local, &a.remote), (&b.remote, &b.local));
    assert!(!ours.is_awaiting_answer());
}

#[test]
fn best_effort_offer_answered_without_crypto_runs_plain_and_mandatory_refuses() {
    let mut peer = session(2);
    let mut ours = session(1);
    let sent = offer(
        &mut ours,
        &policy(SrtpPolicy::Optional),
        Direction::SendRecv,
    );
    let (answer, _) = peer_answers(
        &mut peer,
        &sent,
        &policy(SrtpPolicy::Off),
        Direction::SendRecv,
    );
    assert_eq!(ours.apply_answer(&answer).unwrap().srtp, None);

    let plain = offer_text("RTP/AVP 0", "");
    let err = apply_text(SrtpPolicy::Mandatory, &plain.replace("RTP/AVP", "RTP/SAVP")).unwrap_err();
    assert_eq!(err, NegotiationError::SrtpRequired);
    assert_eq!(
        apply_text(SrtpPolicy::Mandatory, &plain).unwrap_err(),
        NegotiationError::SrtpRequired
    );
    assert_eq!(
        apply_text(SrtpPolicy::Off, &plain.replace("RTP/AVP", "RTP/SAVP")).unwrap_err(),
        NegotiationError::SrtpNotSupported
    );
}

#[test]
fn answers_that_do_not_answer_our_offer_are_refused() {
    let key = "0aWsmgFfrC73s0FnNjVRKhUR9B/jfREbJn8Dnuxd";
    let good = offer_text("RTP/AVP 0", "");
    assert!(apply_text(SrtpPolicy::Off, &good).is_ok());
    let cases: Vec<(String, NegotiationError)> = vec![
        (
            format!("{good}m=video 0 RTP/AVP 96\r\n"),
            NegotiationError::AnswerMediaCount {
                offered: 1,
                answered: 2,
            },
        ),
        (
            good.replace("m=audio", "m=video"),
            NegotiationError::AnswerMediaMismatch,
        ),
        (good.replace("30000", "0"), NegotiationError::AudioRejected),
        (
            good.replace("RTP/AVP 0", "RTP/AVP 18"),
            NegotiationError::AnswerCodecNotOffered,
        ),
        (
            good.replace("RTP/AVP 0", "RTP/AVP 111") + "a=rtpmap:111 G722/8000\r\n",
            NegotiationError::AnswerCodecNotOffered,
        ),
        (
            good.replace("RTP/AVP", "UDP/TLS/RTP/SAVPF"),
            NegotiationError::UnsupportedProfile("UDP/TLS/RTP/SAVPF".into()),
        ),
        (
            good.replace("c=IN IP4 198.51.100.1\r\n", ""),
            NegotiationError::NoConnectionAddress,
        ),
    ];
    for (answer, error) in cases {
        assert_eq!(
            apply_text(SrtpPolicy::Off, &answer).unwrap_err(),
            error,
            "{answer}"
        );
    }
    // Crypto must answer one of our lines: tag and suite as offered.
    let crypto = |line: &str| format!("{good}a=crypto:{line}\r\n");
    let cases = [
        (
            crypto(&format!("9 AES_CM_128_HMAC_SHA1_80 inline:{key}")),
            NegotiationError::AnswerCryptoNotOffered,
        ),
        (
            crypto(&format!("1 AES_CM_128_HMAC_SHA1_32 inline:{key}")),
            NegotiationError::AnswerCryptoNotOffered,
        ),
        (
            crypto(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}|1:4")),
            NegotiationError::NoAcceptableCrypto,
        ),
        (
            crypto("1 AES_CM_128_HMAC_SHA1_80 inline:short"),
            NegotiationError::NoAcceptableCrypto,
        ),
    ];
    for (answer, error) in cases {
        assert_eq!(
            apply_text(SrtpPolicy::Optional, &answer).unwrap_err(),
            error,
            "{answer}"
        );
    }
    let srtp = apply_text(
        SrtpPolicy::Optional,
        &crypto(&format!("2 AES_CM_128_HMAC_SHA1_32 inline:{key}")),
    )
    .unwrap()
    .srtp
    .unwrap();
    assert_eq!(
        (srtp.suite, srtp.remote.to_base64().as_str()),
        (SrtpSuite::AesCm128HmacSha1_32, key)
    );
    // An answer switching to RTP/SAVP with matching crypto is tolerated.
    let savp =
        crypto(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}")).replace("RTP/AVP", "RTP/SAVP");
    assert!(apply_text(SrtpPolicy::Optional, &savp)
        .unwrap()
        .srtp
        .is_some());
}

#[test]
fn answer_details_codec_numbers_rtcp_and_ptime() {
    // A peer that renumbered Opus: matched by name, its number used to send with, ours (111,
    // and 110 for telephone-event/48000) the one it sends with (RFC 3264 §5.1, §6.1).
    let renumbered = offer_text(
        "RTP/AVP 96 101",
        "a=rtpmap:96 opus/48000/2\r\na=fmtp:96 stereo=0\r\na=rtpmap:101 telephone-event/48000\r\n",
    );
    let audio = apply_text(SrtpPolicy::Off, &renumbered).unwrap();
    assert_eq!(
        (audio.codec.payload_type, audio.codec.name.as_str()),
        (96, "opus")
    );
    assert_eq!(audio.codec.receive_payload_type, 111);
    assert_eq!(audio.codec.fmtp.as_deref(), Some("stereo=0"));
    let events = audio.telephone_event.unwrap();
    assert_eq!(
        (events.payload_type, events.receive_payload_type),
        (101, 110)
    );
    // An answer with our numbers: the same both ways.
    let same = offer_text("RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000\r\n");
    let audio = apply_text(SrtpPolicy::Off, &same).unwrap();
    assert_eq!(
        (audio.codec.payload_type, audio.codec.receive_payload_type),
        (0, 0)
    );
    let events = audio.telephone_event.unwrap();
    assert_eq!(
        (events.payload_type, events.receive_payload_type),
        (101, 101)
    );
    // A telephone-event at another rate than the codec's is not used.
    let wrong_rate = offer_text("RTP/AVP 0 110", "a=rtpmap:110 telephone-event/48000\r\n");
    assert_eq!(
        apply_text(SrtpPolicy::Off, &wrong_rate)
            .unwrap()
            .telephone_event,
        None
    );
    // An answer that multiplexes RTCP has no RTCP address of its own.
    let mux = offer_text("RTP/AVP 0", "a=rtcp-mux\r\na=ptime:30\r\n");
    let audio = apply_text(SrtpPolicy::Off, &mux).unwrap();
    assert_eq!(
        (audio.rtcp_mux, audio.remote_rtcp, audio.ptime_ms),
        (true, None, 30)
    );
    // With a separate RTCP port, multiplexing is still offered and taken when answered; an
    // answer without it sends RTCP to the port above its RTP one.
    let separate = LocalMedia {
        rtcp_port: Some(40001),
        ..local()
    };
    for (answer, expected) in [
        (mux.clone(), (true, None)),
        (
            offer_text("RTP/AVP 0", ""),
            (false, Some(sock("198.51.100.1:30001"))),
        ),
    ] {
        let mut ours = session(1);
        ours.create_offer(
            &separate,
            &policy(SrtpPolicy::Off),
            Direction::SendRecv,
            &mut rng(1),
        )
        .unwrap();
        let audio = ours.apply_answer(&parse(&answer).unwrap()).unwrap();
        assert_eq!((audio.rtcp_mux, audio.remote_rtcp), expected);
    }
}

#[test]
fn apply_answer_needs_an_offer() {
    let answer = parse(offer_text("RTP/AVP 0", "")).unwrap();
    assert_eq!(
        session(1).apply_answer(&answer).unwrap_err(),
        NegotiationError::NoOfferSent
    );
    // Once we have answered the peer's offer, there is no offer of ours to apply an answer to.
    let mut ours = session(1);
    offer(&mut ours, &policy(SrtpPolicy::Off), Direction::SendRecv);
    ours.apply_answer(&answer).unwrap();
    ours.answer(
        &answer,
        &local(),
        &policy(SrtpPolicy::Off),
        Direction::SendRecv,
        &mut rng(1),
    )
    .unwrap();
    assert_eq!(
        ours.apply_answer(&answer).unwrap_err(),
        NegotiationError::NoOfferSent
    );
}

#[test]
fn versions_increase_only_when_the_description_changes() {
    let p = policy(SrtpPolicy::Optional);
    let mut ours = session(1);
    let mut peer = session(2);
    let v0 = ours.origin().session_version;
    let first = offer(&mut ours, &p, Direction::SendRecv);
    assert_eq!(first.origin.session_version, v0);
    let (answer, _) = peer_answers(&mut peer, &first, &p, Direction::SendRecv);
    ours.apply_answer(&answer).unwrap();

    // Hold: a changed description, version + 1; same keys, same o= otherwise.
    let hold = offer(&mut ours, &p, Direction::SendOnly);
    assert_eq!(hold.origin.session_version, v0 + 1);
    assert_eq!(
        hold.media[0].crypto().next().unwrap().key,
        first.media[0].crypto().next().unwrap().key
    );
    let (held_answer, _) = peer_answers(&mut peer, &hold, &p, Direction::SendRecv);
    assert_eq!(
        held_answer.origin.session_version,
        answer.origin.session_version + 1
    );
    ours.apply_answer(&held_answer).unwrap();

    // A session refresh with the same content keeps the version (RFC 3264 §8).
    let refresh = offer(&mut ours, &p, Direction::SendOnly);
    assert_eq!(refresh.origin.session_version, v0 + 1);
    let (refresh_answer, _) = peer_answers(&mut peer, &refresh, &p, Direction::SendRecv);
    assert_eq!(
        refresh_answer.origin.session_version,
        held_answer.origin.session_version
    );
    ours.apply_answer(&refresh_answer).unwrap();

    // Resume: changed again.
    let resume = offer(&mut ours, &p, Direction::SendRecv);
    assert_eq!(resume.origin.session_version, v0 + 2);
    for sdp in [&hold, &refresh, &resume] {
        assert_eq!(
            (
                &sdp.origin.username,
                &sdp.origin.session_id,
                &sdp.origin.address
            ),
            (
                &first.origin.username,
                &first.origin.session_id,
                &first.origin.address
            )
        );
    }
    assert_eq!(ours.origin(), &resume.origin);
}

#[test]
fn hold_and_resume_from_either_side() {
    let p = policy(SrtpPolicy::Off);
    let mut ours = session(1);
    let mut peer = session(2);
    let sent = offer(&mut ours, &p, Direction::SendRecv);
    let (answer, _) = peer_answers(&mut peer, &sent, &p, Direction::SendRecv);
    ours.apply_answer(&answer).unwrap();

    // We hold (music on hold flows from us).
    let sent = offer(&mut ours, &p, Direction::SendOnly);
    let (answer, theirs) = peer_answers(&mut peer, &sent, &p, Direction::SendRecv);
    let mine = ours.apply_answer(&answer).unwrap();
    assert_eq!(
        (mine.direction, theirs.direction),
        (Direction::SendOnly, Direction::RecvOnly)
    );

    // We hold with inactive.
    let sent = offer(&mut ours, &p, Direction::Inactive);
    let (answer, theirs) = peer_answers(&mut peer, &sent, &p, Direction::SendRecv);
    assert_eq!(
        (
            ours.apply_answer(&answer).unwrap().direction,
            theirs.direction
        ),
        (Direction::Inactive, Direction::Inactive)
    );

    // The peer holds us while we are not holding.
    let offer_from_peer = peer
        .create_offer(&peer_local(), &p, Direction::SendOnly, &mut rng(5))
        .unwrap();
    let (our_answer, mine) = ours
        .answer(
            &parse(offer_from_peer.to_string()).unwrap(),
            &local(),
            &p,
            Direction::SendRecv,
            &mut rng(6),
        )
        .unwrap();
    assert_eq!(mine.direction, Direction::RecvOnly);
    assert_eq!(
        peer.apply_answer(&our_answer).unwrap().direction,
        Direction::SendOnly
    );

    // Resume from the peer.
    let resume = peer
        .create_offer(&peer_local(), &p, Direction::SendRecv, &mut rng(5))
        .unwrap();
    let (our_answer, mine) = ours
        .answer(&resume, &local(), &p, Direction::SendRecv, &mut rng(6))
        .unwrap();
    assert_eq!(mine.direction, Direction::SendRecv);
    assert_eq!(
        peer.apply_answer(&our_answer).unwrap().direction,
        Direction::SendRecv
    );
}

/// A re-offer keeps every payload type number the session agreed on for its format, and never
/// gives one to another format (RFC 3264 §8.3.2): after answering Linphone, whose offer numbers
/// telephone-event/48000 101 (the number we use for telephone-event/8000) and opus 96, our hold
/// keeps 96 for opus and 101 for telephone-event/48000, and numbers telephone-event/8000 anew.
#[test]
fn a_re_offer_keeps_the_numbers_the_session_agreed_on() {
    let p = policy(SrtpPolicy::Off);
    let mut ours = session(1);
    let (answer, _) = ours
        .answer(
            &parse(LINPHONE).unwrap(),
            &local(),
            &p,
            Direction::SendRecv,
            &mut rng(2),
        )
        .unwrap();
    let answered = answer.media[0].rtpmaps().collect::<Vec<_>>();
    assert!(
        answered
            .iter()
            .any(|m| m.payload_type == 101 && m.clock_rate == 48_000),
        "{answered:?}"
    );
    let hold = offer(&mut ours, &p, Direction::SendOnly);
    for map in hold.media[0].rtpmaps() {
        if let Some(before) = answered.iter().find(|m| m.payload_type == map.payload_type) {
            assert!(
                before.encoding.eq_ignore_ascii_case(&map.encoding)
                    && before.clock_rate == map.clock_rate,
                "{} was {before:?} and is now {map:?}",
                map.payload_type
            );
        }
    }
    let number = |name: &str, rate: u32| {
        hold.media[0]
            .rtpmaps()
            .find(|m| m.encoding.eq_ignore_ascii_case(name) && m.clock_rate == rate)
            .map(|m| m.payload_type)
    };
    assert_eq!(number("opus", 48_000), Some(96));
    assert_eq!(number("telephone-event", 48_000), Some(101));
    let te8000 = number("telephone-event", 8_000).expect("telephone-event/8000 offered");
    assert!(te8000 != 101 && te8000 != 96, "{te8000}");
}

#[test]
fn re_offers_keep_the_layout_and_profile_of_the_session() {
    // We answered baresip's audio+video offer: our re-offer keeps two m-lines, video at port 0,
    // and baresip's number for opus.
    let p = policy(SrtpPolicy::Optional);
    let mut ours = session(1);
    let (answer, _) = ours
        .answer(
            &parse(BARESIP).unwrap(),
            &local(),
            &p,
            Direction::SendRecv,
            &mut rng(2),
        )
        .unwrap();
    let answered_key = answer.media[0].crypto().next().unwrap().key;
    let hold = offer(&mut ours, &p, Direction::SendOnly);
    assert_eq!(
        lines_with(&hold.to_string(), "m="),
        [
            "m=audio 40000 RTP/AVP 96 0 8 110 101",
            "m=video 0 RTP/AVP 97"
        ]
    );
    assert_eq!(
        hold.media[0].crypto().next().unwrap().key,
        answered_key,
        "our key is reused"
    );
    // An answer with one m-line no longer answers this offer.
    let short = parse(offer_text("RTP/AVP 0", "")).unwrap();
    assert_eq!(
        ours.clone().apply_answer(&short).unwrap_err(),
        NegotiationError::AnswerMediaCount {
            offered: 2,
            answered: 1
        }
    );

    // After answering Asterisk's RTP/SAVP offer, a best-effort re-offer stays RTP/SAVP.
    let mut ours = session(1);
    ours.answer(
        &parse(ASTERISK_SAVP).unwrap(),
        &local(),
        &p,
        Direction::SendRecv,
        &mut rng(2),
    )
    .unwrap();
    assert_eq!(
        offer(&mut ours, &p, Direction::SendOnly).media[0]
            .protocol
            .as_str(),
        "RTP/SAVP"
    );
    // After answering a feedback profile, the re-offer keeps it.
    let mut ours = session(1);
    let avpf = parse(offer_text("RTP/AVPF 0", "")).unwrap();
    ours.answer(&avpf, &local(), &p, Direction::SendRecv, &mut rng(2))
        .unwrap();
    assert_eq!(
        offer(&mut ours, &p, Direction::SendRecv).media[0]
            .protocol
            .as_str(),
        "RTP/AVPF"
    );
}

#[test]
fn one_offer_at_a_time() {
    let p = policy(SrtpPolicy::Off);
    let mut ours = session(1);
    let first = offer(&mut ours, &p, Direction::SendRecv);
    assert!(ours.is_awaiting_answer());
    let err = ours
        .create_offer(&local(), &p, Direction::SendOnly, &mut rng(1))
        .unwrap_err();
    assert_eq!(
        (err.clone(), err.status_code(), err.to_string()),
        (
            NegotiationError::OfferPending,
            491,
            "Request Pending".to_owned()
        )
    );
    let crossing = parse(offer_text("RTP/AVP 0", "")).unwrap();
    assert_eq!(
        ours.answer(&crossing, &local(), &p, Direction::SendRecv, &mut rng(1))
            .unwrap_err(),
        NegotiationError::OfferPending
    );
    // The request failed: the offer is given up, and the next one still gets a new version.
    ours.discard_offer();
    let next = offer(&mut ours, &p, Direction::SendOnly);
    assert_eq!(
        next.origin.session_version,
        first.origin.session_version + 1
    );
}

#[test]
fn answers_from_forks_and_repeated_answers_are_each_checked_against_the_offer() {
    let p = policy(SrtpPolicy::Optional);
    let mut ours = session(1);
    let sent = offer(&mut ours, &p, Direction::SendRecv);
    let mut fork = ours.clone();
    let (first_answer, _) = peer_answers(&mut session(2), &sent, &p, Direction::SendRecv);
    let (second_answer, _) = peer_answers(
        &mut session(3),
        &sent,
        &g711_policy(SrtpPolicy::Off),
        Direction::SendRecv,
    );
    let early = ours.apply_answer(&first_answer).unwrap();
    // The same answer again in the 2xx after a reliable 18x.
    assert_eq!(ours.apply_answer(&first_answer).unwrap(), early);
    let other = fork.apply_answer(&second_answer).unwrap();
    assert_eq!(
        (early.codec.name.as_str(), other.codec.name.as_str()),
        ("opus", "PCMU")
    );
    assert!(early.srtp.is_some() && other.srtp.is_none());
}

#[test]
fn a_delayed_offer_is_made_by_the_answerer_of_an_empty_invite() {
    // INVITE without a body: we offer in the 200, the answer comes in the ACK.
    let p = policy(SrtpPolicy::Optional);
    let mut ours = session(1);
    let sent = offer(&mut ours, &p, Direction::SendRecv);
    let (ack_body, _) = peer_answers(&mut session(2), &sent, &p, Direction::SendRecv);
    assert_eq!(
        ours.apply_answer(&ack_body).unwrap().remote_rtp,
        sock("198.51.100.1:30000")
    );
}
