//! Answering offers (RFC 3264 §6): codec choice, streams, direction, RTCP, SRTP, failures.

mod sdp_support;

use callisto_signaling::call::Refusal;
use callisto_signaling::sdp::{
    parse, AudioCodec, AudioPolicy, Direction, NegotiationError, SrtpPolicy, SrtpSuite,
};
use sdp_support::*;

const KEY_A: &str = "0aWsmgFfrC73s0FnNjVRKhUR9B/jfREbJn8Dnuxd";
const KEY_B: &str = "arnx6499M4j0+dWG9m6Z/VQIDfLERvDlhmiwnAih";

fn opus_pcmu_offer(extra: &str) -> String {
    offer_text(
        "RTP/AVP 0 96 101",
        &format!("a=rtpmap:96 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\n{extra}"),
    )
}

#[test]
fn the_offerers_codec_order_wins() {
    let (answer, audio) = answer_with(&opus_pcmu_offer(""), &policy(SrtpPolicy::Off)).unwrap();
    // Our policy prefers Opus, but the offer lists PCMU first.
    assert_eq!(audio.codec.name, "PCMU");
    assert_eq!(
        lines_with(&answer.to_string(), "m="),
        ["m=audio 40000 RTP/AVP 0 101"]
    );
}

#[test]
fn the_offered_payload_type_number_is_kept() {
    let offer = offer_text(
        "RTP/AVP 98",
        "a=rtpmap:98 OPUS/48000/2\r\na=fmtp:98 maxplaybackrate=24000\r\n",
    );
    let (answer, audio) = answer_with(&offer, &policy(SrtpPolicy::Off)).unwrap();
    let text = answer.to_string();
    assert_eq!(lines_with(&text, "m="), ["m=audio 40000 RTP/AVP 98"]);
    assert_eq!(lines_with(&text, "a=rtpmap"), ["a=rtpmap:98 opus/48000/2"]);
    assert_eq!(lines_with(&text, "a=fmtp"), ["a=fmtp:98 useinbandfec=1"]);
    assert_eq!(audio.codec.payload_type, 98);
    assert_eq!(audio.codec.fmtp.as_deref(), Some("maxplaybackrate=24000"));
}

#[test]
fn codecs_are_matched_by_name_rate_and_channels() {
    // PCMU at the wrong rate, stereo PCMA and an unmapped dynamic type are not ours.
    let offer = offer_text(
        "RTP/AVP 97 96 99 8",
        "a=rtpmap:97 PCMU/16000\r\na=rtpmap:96 PCMA/8000/2\r\na=rtpmap:8 PCMA/8000\r\n",
    );
    let (_, audio) = answer_with(&offer, &policy(SrtpPolicy::Off)).unwrap();
    assert_eq!(
        (audio.codec.payload_type, audio.codec.name.as_str()),
        (8, "PCMA")
    );
    // Opus written without its channel count is still Opus.
    let offer = offer_text("RTP/AVP 100", "a=rtpmap:100 opus/48000\r\n");
    let (_, audio) = answer_with(&offer, &policy(SrtpPolicy::Off)).unwrap();
    assert_eq!((audio.codec.payload_type, audio.codec.channels), (100, 2));
}

#[test]
fn telephone_event_only_at_the_codec_rate_and_only_when_wanted() {
    let both = "a=rtpmap:96 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\na=rtpmap:102 telephone-event/48000\r\n";
    let (answer, audio) = answer_with(
        &offer_text("RTP/AVP 96 0 101 102", both),
        &policy(SrtpPolicy::Off),
    )
    .unwrap();
    assert_eq!(
        lines_with(&answer.to_string(), "m="),
        ["m=audio 40000 RTP/AVP 96 102"]
    );
    let event = audio.telephone_event.unwrap();
    assert_eq!((event.payload_type, event.clock_rate), (102, 48000));

    let (_, audio) = answer_with(
        &offer_text("RTP/AVP 0 96 101 102", both),
        &policy(SrtpPolicy::Off),
    )
    .unwrap();
    assert_eq!(audio.telephone_event.unwrap().payload_type, 101);

    let no_events = AudioPolicy {
        telephone_event: false,
        ..policy(SrtpPolicy::Off)
    };
    let (answer, audio) = answer_with(&offer_text("RTP/AVP 0 101", both), &no_events).unwrap();
    assert_eq!(audio.telephone_event, None);
    assert!(lines_with(&answer.to_string(), "a=rtpmap:101").is_empty());
    assert_eq!(
        lines_with(&answer.to_string(), "m="),
        ["m=audio 40000 RTP/AVP 0"]
    );
}

#[test]
fn direction_is_mirrored_and_narrowed_by_ours() {
    let offer_in = |dir: &str| opus_pcmu_offer(&format!("a={dir}\r\n"));
    let cases = [
        ("sendrecv", Direction::SendRecv, Direction::SendRecv),
        ("sendonly", Direction::SendRecv, Direction::RecvOnly),
        ("recvonly", Direction::SendRecv, Direction::SendOnly),
        ("inactive", Direction::SendRecv, Direction::Inactive),
        ("sendrecv", Direction::SendOnly, Direction::SendOnly),
        ("sendonly", Direction::SendOnly, Direction::Inactive),
        ("sendrecv", Direction::Inactive, Direction::Inactive),
    ];
    for (offered, ours, expected) in cases {
        let offer = parse(offer_in(offered)).unwrap();
        let (answer, audio) = session(1)
            .answer(
                &offer,
                &local(),
                &policy(SrtpPolicy::Off),
                ours,
                &mut rng(2),
            )
            .unwrap();
        assert_eq!(audio.direction, expected, "{offered} / {ours}");
        assert_eq!(
            answer.media[0].direction(),
            Some(expected),
            "{offered} / {ours}"
        );
    }
    // A session-level attribute applies when the m-line has none.
    let offer = offer_text("RTP/AVP 0", "").replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n");
    assert_eq!(
        answer_with(&offer, &policy(SrtpPolicy::Off))
            .unwrap()
            .1
            .direction,
        Direction::RecvOnly
    );
}

#[test]
fn old_style_hold_address_means_the_offerer_does_not_receive() {
    let hold = |dir: &str| {
        offer_text("RTP/AVP 0", &format!("a={dir}\r\n"))
            .replace("c=IN IP4 198.51.100.1", "c=IN IP4 0.0.0.0")
    };
    for (offered, expected) in [
        ("sendrecv", Direction::RecvOnly),
        ("recvonly", Direction::Inactive),
        ("sendonly", Direction::RecvOnly),
        ("inactive", Direction::Inactive),
    ] {
        let (_, audio) = answer_with(&hold(offered), &policy(SrtpPolicy::Off)).unwrap();
        assert_eq!(audio.direction, expected, "{offered}");
    }
}

#[test]
fn every_m_line_is_answered_in_order_and_only_audio_is_taken() {
    let offer =
        "v=0\r\no=peer 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n\
        m=video 30002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
        m=audio 30000 RTP/AVP 0\r\n\
        m=image 30004 udptl t38\r\n\
        m=audio 0 RTP/AVP 8\r\n\
        m=text 30006 RTP/AVP 98\r\na=rtpmap:98 t140/1000\r\n";
    let (answer, audio) = answer_with(offer, &policy(SrtpPolicy::Off)).unwrap();
    assert_eq!(
        lines_with(&answer.to_string(), "m="),
        [
            "m=video 0 RTP/AVP 96",
            "m=audio 40000 RTP/AVP 0",
            "m=image 0 udptl t38",
            "m=audio 0 RTP/AVP 8",
            "m=text 0 RTP/AVP 98"
        ]
    );
    assert_eq!(audio.remote_rtp, sock("198.51.100.1:30000"));
    // Declined streams carry no attributes.
    assert!(answer
        .media
        .iter()
        .filter(|m| m.port == 0)
        .all(|m| m.attributes.is_empty()));
}

#[test]
fn with_two_audio_streams_one_that_can_run_srtp_is_preferred() {
    let offer = format!(
        "v=0\r\no=peer 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n\
         m=audio 30000 RTP/AVP 0\r\nm=audio 30010 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}\r\n"
    );
    let (answer, audio) = answer_with(&offer, &policy(SrtpPolicy::Optional)).unwrap();
    assert_eq!(
        lines_with(&answer.to_string(), "m="),
        ["m=audio 0 RTP/AVP 0", "m=audio 40000 RTP/SAVP 0"]
    );
    assert_eq!(audio.remote_rtp.port(), 30010);
    assert!(audio.srtp.is_some());
    let (answer, audio) = answer_with(&offer, &policy(SrtpPolicy::Off)).unwrap();
    assert_eq!(
        lines_with(&answer.to_string(), "m="),
        ["m=audio 40000 RTP/AVP 0", "m=audio 0 RTP/SAVP 0"]
    );
    assert_eq!(audio.srtp, None);
}

#[test]
fn rtcp_mux_only_when_offered_and_rtcp_addresses() {
    let (answer, audio) =
        answer_with(&opus_pcmu_offer("a=rtcp-mux\r\n"), &policy(SrtpPolicy::Off)).unwrap();
    assert_eq!(lines_with(&answer.to_string(), "a=rtcp"), ["a=rtcp-mux"]);
    assert_eq!((audio.rtcp_mux, audio.remote_rtcp), (true, None));

    let (answer, audio) = answer_with(&opus_pcmu_offer(""), &policy(SrtpPolicy::Off)).unwrap();
    assert_eq!(lines_with(&answer.to_string(), "a=rtcp"), ["a=rtcp:40000"]);
    assert_eq!(
        (audio.rtcp_mux, audio.remote_rtcp),
        (false, Some(sock("198.51.100.1:30001")))
    );

    let (_, audio) = answer_with(
        &opus_pcmu_offer("a=rtcp:31000\r\n"),
        &policy(SrtpPolicy::Off),
    )
    .unwrap();
    assert_eq!(audio.remote_rtcp, Some(sock("198.51.100.1:31000")));
    let (_, audio) = answer_with(
        &opus_pcmu_offer("a=rtcp:31000 IN IP4 203.0.113.9\r\n"),
        &policy(SrtpPolicy::Off),
    )
    .unwrap();
    assert_eq!(audio.remote_rtcp, Some(sock("203.0.113.9:31000")));
}

#[test]
fn packet_time_follows_the_peer_within_reason() {
    let ptime = |extra: &str| {
        answer_with(&opus_pcmu_offer(extra), &policy(SrtpPolicy::Off))
            .unwrap()
            .1
            .ptime_ms
    };
    assert_eq!(ptime(""), 20);
    assert_eq!(ptime("a=ptime:30\r\n"), 30);
    assert_eq!(ptime("a=ptime:0\r\n"), 20);
    assert_eq!(ptime("a=ptime:1000\r\n"), 20);
    assert_eq!(ptime("a=ptime:40\r\na=maxptime:30\r\n"), 30);
    assert_eq!(ptime("a=maxptime:10\r\n"), 10);
}

/// Whether a stream runs SRTP, or why the offer is refused.
type Outcome = Result<bool, NegotiationError>;

/// The SRTP decision table of the module docs: (offer, policy) → SRTP used, or the error.
#[test]
fn srtp_policy_table() {
    let avp = offer_text("RTP/AVP 0", "");
    let avp_crypto = offer_text(
        "RTP/AVP 0",
        &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}\r\n"),
    );
    let savp = offer_text(
        "RTP/SAVP 0",
        &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}\r\n"),
    );
    let savp_unusable = offer_text("RTP/SAVP 0", &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}|1:4\r\na=crypto:2 AEAD_AES_256_GCM inline:{KEY_B}\r\n"));
    let savp_none = offer_text("RTP/SAVP 0", "");
    let avp_unusable = offer_text(
        "RTP/AVP 0",
        &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A} UNENCRYPTED_SRTP\r\n"),
    );
    let savpf = offer_text(
        "RTP/SAVPF 0",
        &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}\r\n"),
    );
    use NegotiationError::*;
    use SrtpPolicy::*;
    let plain = Ok(false);
    let srtp = Ok(true);
    let table: [(&str, &String, [Outcome; 3]); 7] = [
        (
            "AVP",
            &avp,
            [plain.clone(), plain.clone(), Err(SrtpRequired)],
        ),
        (
            "AVP+crypto",
            &avp_crypto,
            [plain.clone(), srtp.clone(), srtp.clone()],
        ),
        (
            "SAVP",
            &savp,
            [Err(SrtpNotSupported), srtp.clone(), srtp.clone()],
        ),
        (
            "SAVP unusable",
            &savp_unusable,
            [
                Err(SrtpNotSupported),
                Err(NoAcceptableCrypto),
                Err(NoAcceptableCrypto),
            ],
        ),
        (
            "SAVP no crypto",
            &savp_none,
            [
                Err(SrtpNotSupported),
                Err(NoAcceptableCrypto),
                Err(NoAcceptableCrypto),
            ],
        ),
        (
            "AVP unusable",
            &avp_unusable,
            [plain.clone(), plain.clone(), Err(NoAcceptableCrypto)],
        ),
        ("SAVPF", &savpf, [Err(SrtpNotSupported), srtp.clone(), srtp]),
    ];
    for (name, offer, expected) in table {
        for (srtp_policy, expected) in [Off, Optional, Mandatory].into_iter().zip(expected) {
            let result = answer_with(offer, &policy(srtp_policy));
            let got = result
                .as_ref()
                .map(|(_, audio)| audio.srtp.is_some())
                .map_err(Clone::clone);
            assert_eq!(got, expected, "{name} under {srtp_policy:?}");
            if let Ok((answer, audio)) = result {
                let text = answer.to_string();
                let crypto = lines_with(&text, "a=crypto:");
                assert_eq!(
                    crypto.len(),
                    usize::from(audio.srtp.is_some()),
                    "{name} under {srtp_policy:?}"
                );
                // The answer keeps the offer's profile.
                assert_eq!(
                    answer.media[0].protocol,
                    parse(offer).unwrap().media[0].protocol
                );
            }
            if let Err(err) = got {
                assert_eq!(err.status_code(), 488);
            }
        }
    }
}

#[test]
fn srtp_answer_repeats_the_tag_and_suite_with_our_own_fresh_key() {
    let offer = offer_text(
        "RTP/SAVP 0",
        &format!("a=crypto:5 AES_CM_128_HMAC_SHA1_32 inline:{KEY_A}\r\na=crypto:9 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B}|2^31\r\n"),
    );
    let (answer, audio) = answer_with(&offer, &policy(SrtpPolicy::Optional)).unwrap();
    let srtp = audio.srtp.unwrap();
    assert_eq!(srtp.suite, SrtpSuite::AesCm128HmacSha1_80);
    assert_eq!(srtp.remote.to_base64(), KEY_B);
    assert_ne!(srtp.local, srtp.remote);
    let text = answer.to_string();
    assert_eq!(
        lines_with(&text, "a=crypto:"),
        [format!(
            "a=crypto:9 AES_CM_128_HMAC_SHA1_80 inline:{}",
            srtp.local.to_base64()
        )]
    );
    // Another session draws another key.
    let other = parse(&offer).unwrap();
    let (_, again) = session(1)
        .answer(
            &other,
            &local(),
            &policy(SrtpPolicy::Optional),
            Direction::SendRecv,
            &mut rng(3),
        )
        .unwrap();
    assert_ne!(again.srtp.unwrap().local, srtp.local);
}

#[test]
fn failures_name_the_reason_for_a_488() {
    let cases: [(String, NegotiationError, &str, u16); 8] = [
        (
            offer_text("RTP/AVP 18 9", ""),
            NegotiationError::NoCommonCodec,
            "No common codec",
            305,
        ),
        (
            offer_text("RTP/AVP 96", ""),
            NegotiationError::NoCommonCodec,
            "No common codec",
            305,
        ),
        (
            offer_text("RTP/AVP 0", "").replace("m=audio", "m=video"),
            NegotiationError::NoAudio,
            "No audio stream",
            304,
        ),
        (
            offer_text("RTP/AVP 0", "").replace("30000", "0"),
            NegotiationError::NoAudio,
            "No audio stream",
            304,
        ),
        (
            offer_text("RTP/AVP 0", "").replace("c=IN IP4 198.51.100.1\r\n", ""),
            NegotiationError::NoConnectionAddress,
            "No connection address",
            399,
        ),
        (
            offer_text("RTP/AVP 0", "")
                .replace("c=IN IP4 198.51.100.1", "c=IN IP4 pbx.example.com"),
            NegotiationError::NoConnectionAddress,
            "No connection address",
            399,
        ),
        (
            offer_text("RTP/AVP 0", "").replace("RTP/AVP", "udptl"),
            NegotiationError::UnsupportedProfile("udptl".into()),
            "Unsupported media profile udptl",
            302,
        ),
        (
            offer_text("RTP/AVP 0", "").replace("RTP/AVP", "UDP/TLS/RTP/SAVPF"),
            NegotiationError::NoFingerprint,
            "DTLS-SRTP offered without a fingerprint",
            302,
        ),
    ];
    for (offer, error, reason, warn_code) in cases {
        let err = answer_with(&offer, &policy(SrtpPolicy::Optional)).unwrap_err();
        assert_eq!(err, error, "{offer}");
        assert_eq!((err.status_code(), err.to_string().as_str()), (488, reason));
        // The refusal tells the peer: a Warning with the RFC 3261 warn-code for the fault.
        let refusal = err.refusal();
        assert_eq!(refusal.code, 488);
        assert_eq!(refusal.reason, None, "the standard phrase");
        assert_eq!(refusal.warning, Some((warn_code, reason.to_owned())));
    }
    // A crossing offer is only asked to wait; keying we cannot serve is a transport
    // mismatch; an empty policy of our own is our fault.
    assert_eq!(NegotiationError::OfferPending.refusal(), Refusal::new(491));
    for error in [
        NegotiationError::SrtpRequired,
        NegotiationError::SrtpNotSupported,
        NegotiationError::NoAcceptableCrypto,
    ] {
        assert_eq!(error.refusal().warning.map(|w| w.0), Some(302), "{error}");
    }
    let ours = NegotiationError::NoLocalCodecs.refusal();
    assert_eq!((ours.code, ours.warning.map(|w| w.0)), (500, Some(399)));
    // An audio stream over a transport we do not run names it.
    let err = answer_with(
        &offer_text("RTP/AVP 0", "")
            .replace("m=audio 30000 RTP/AVP 0", "m=audio 30000 TCP/RTP/AVP 0"),
        &policy(SrtpPolicy::Off),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "Unsupported media profile TCP/RTP/AVP");
    // With several audio streams, the first one's reason is given.
    let offer = offer_text("RTP/AVP 18", "m=audio 30010 RTP/SAVP 0\r\n");
    assert_eq!(
        answer_with(&offer, &policy(SrtpPolicy::Off)).unwrap_err(),
        NegotiationError::NoCommonCodec
    );
}

#[test]
fn a_failed_answer_changes_nothing() {
    let mut ours = session(1);
    let version = ours.origin().session_version;
    let bad = parse(offer_text("RTP/AVP 18", "")).unwrap();
    let good = parse(offer_text("RTP/AVP 0", "")).unwrap();
    let p = policy(SrtpPolicy::Optional);
    assert!(ours
        .answer(&bad, &local(), &p, Direction::SendRecv, &mut rng(2))
        .is_err());
    let (answer, _) = ours
        .answer(&good, &local(), &p, Direction::SendRecv, &mut rng(2))
        .unwrap();
    assert_eq!(answer.origin.session_version, version);
}

#[test]
fn an_empty_policy_accepts_nothing() {
    let empty = AudioPolicy {
        codecs: Vec::new(),
        ..AudioPolicy::default()
    };
    assert_eq!(
        answer_with(&opus_pcmu_offer(""), &empty).unwrap_err(),
        NegotiationError::NoCommonCodec
    );
    let only_pcma = AudioPolicy {
        codecs: vec![AudioCodec::pcma()],
        ..AudioPolicy::default()
    };
    assert_eq!(
        answer_with(&opus_pcmu_offer(""), &only_pcma).unwrap_err(),
        NegotiationError::NoCommonCodec
    );
}
