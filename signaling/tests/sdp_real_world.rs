//! Descriptions from real devices and stacks: they parse, round-trip, classify, and get the
//! answer a careful softphone would give.

mod sdp_support;

use callisto_signaling::sdp::{
    offer_kind, parse, Direction, LocalMedia, NegotiationError, OfferKind, SrtpMasterKey,
    SrtpPolicy, SrtpSuite,
};
use sdp_support::*;

#[test]
fn every_sample_parses_and_round_trips() {
    for (name, text) in SAMPLES {
        let sdp = parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        // The samples are written in RFC order, so the writer gives back the same text.
        assert_eq!(sdp.to_string(), crlf(text), "{name}");
        assert_eq!(parse(sdp.to_string()).unwrap(), sdp, "{name}");
        assert_eq!(parse(crlf(text)).unwrap(), sdp, "{name}");
    }
}

#[test]
fn only_the_browser_offer_is_webrtc() {
    for (name, text) in SAMPLES {
        let expected = if name == "chrome_webrtc" {
            OfferKind::WebRtc
        } else {
            OfferKind::Classic
        };
        assert_eq!(offer_kind(&parse(text).unwrap()), expected, "{name}");
    }
}

#[test]
fn chrome_offer_reads_and_is_refused_by_the_classic_path() {
    let sdp = parse(CHROME_WEBRTC).unwrap();
    let audio = &sdp.media[0];
    assert_eq!(audio.mid(), Some("0"));
    assert_eq!(audio.ice_ufrag(), Some("Q2Zm"));
    assert_eq!(audio.candidates().count(), 2);
    assert_eq!(audio.fingerprint().unwrap().hash_function, "sha-256");
    assert_eq!(audio.fmtp(111), Some("minptime=10;useinbandfec=1"));
    assert_eq!(sdp.attribute_value("group"), Some("BUNDLE 0 1"));
    assert_eq!(sdp.media[2].formats, ["webrtc-datachannel"]);
    let err = answer_with(CHROME_WEBRTC, &policy(SrtpPolicy::Optional)).unwrap_err();
    assert_eq!(
        err,
        NegotiationError::UnsupportedProfile("UDP/TLS/RTP/SAVPF".into())
    );
    assert_eq!(
        (err.status_code(), err.to_string().as_str()),
        (488, "Unsupported media profile UDP/TLS/RTP/SAVPF")
    );
}

#[test]
fn baresip_best_effort_srtp_with_opus_and_video() {
    let (answer, audio) = answer_with(BARESIP, &policy(SrtpPolicy::Optional)).unwrap();
    let text = answer.to_string();
    assert_eq!(
        lines_with(&text, "m="),
        ["m=audio 40000 RTP/AVP 96", "m=video 0 RTP/AVP 97"]
    );
    assert_eq!(lines_with(&text, "a=rtpmap:"), ["a=rtpmap:96 opus/48000/2"]);
    assert_eq!(lines_with(&text, "a=fmtp:"), ["a=fmtp:96 useinbandfec=1"]);
    assert_eq!(lines_with(&text, "a=rtcp-mux"), ["a=rtcp-mux"]);
    let crypto = lines_with(&text, "a=crypto:");
    assert_eq!(crypto.len(), 1);
    assert!(crypto[0].starts_with("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
    assert!(
        !crypto[0].contains("0aWsmgFfrC73s0FnNjVRKhUR9B/jfREbJn8Dnuxd"),
        "our own key"
    );
    assert_eq!(lines_with(&text, "c="), ["c=IN IP4 192.0.2.100"]);

    assert_eq!(audio.remote_rtp, sock("192.168.1.20:10476"));
    assert!(audio.rtcp_mux);
    assert_eq!(audio.remote_rtcp, None);
    assert_eq!(
        (audio.codec.payload_type, audio.codec.name.as_str()),
        (96, "opus")
    );
    assert_eq!((audio.codec.clock_rate, audio.codec.channels), (48000, 2));
    assert_eq!(audio.codec.fmtp.as_deref(), Some("stereo=1;sprop-stereo=1"));
    // baresip offers telephone-event only at 8000 Hz: not usable with Opus.
    assert_eq!(audio.telephone_event, None);
    assert_eq!(audio.ptime_ms, 20);
    assert_eq!(audio.direction, Direction::SendRecv);
    let srtp = audio.srtp.unwrap();
    assert_eq!(srtp.suite, SrtpSuite::AesCm128HmacSha1_80);
    assert_eq!(
        srtp.remote,
        SrtpMasterKey::from_base64("0aWsmgFfrC73s0FnNjVRKhUR9B/jfREbJn8Dnuxd").unwrap()
    );
    assert!(crypto[0].ends_with(&srtp.local.to_base64()));

    // Without SRTP the same offer runs plain RTP and the answer carries no crypto.
    let (answer, audio) = answer_with(BARESIP, &policy(SrtpPolicy::Off)).unwrap();
    assert!(lines_with(&answer.to_string(), "a=crypto").is_empty());
    assert_eq!(audio.srtp, None);

    // With G.711 only, PCMU and its telephone-event are taken.
    let (answer, audio) = answer_with(BARESIP, &g711_policy(SrtpPolicy::Optional)).unwrap();
    assert_eq!(
        lines_with(&answer.to_string(), "m=audio"),
        ["m=audio 40000 RTP/AVP 0 101"]
    );
    assert_eq!(audio.codec.name, "PCMU");
    let event = audio.telephone_event.unwrap();
    assert_eq!((event.payload_type, event.clock_rate), (101, 8000));
}

#[test]
fn linphone_opus_with_wideband_telephone_event_and_separate_rtcp() {
    let (answer, audio) = answer_with(LINPHONE, &policy(SrtpPolicy::Optional)).unwrap();
    let text = answer.to_string();
    assert_eq!(
        lines_with(&text, "m="),
        ["m=audio 40000 RTP/AVP 96 101", "m=video 0 RTP/AVP 96 97"]
    );
    assert!(text.contains("a=rtpmap:101 telephone-event/48000\r\na=fmtp:101 0-16\r\n"));
    // Linphone does not multiplex: we announce where our RTCP is (the RTP port, demultiplexed).
    assert_eq!(lines_with(&text, "a=rtcp"), ["a=rtcp:40000"]);
    assert!(!audio.rtcp_mux);
    assert_eq!(audio.remote_rtcp, Some(sock("192.168.1.30:7079")));
    assert_eq!(audio.codec.payload_type, 96);
    assert_eq!(audio.telephone_event.unwrap().payload_type, 101);
    assert_eq!(audio.srtp, None);

    let separate = LocalMedia {
        rtcp_port: Some(40001),
        ..local()
    };
    let offer = parse(LINPHONE).unwrap();
    let (answer, _) = session(1)
        .answer(
            &offer,
            &separate,
            &policy(SrtpPolicy::Off),
            Direction::SendRecv,
            &mut rng(2),
        )
        .unwrap();
    assert_eq!(lines_with(&answer.to_string(), "a=rtcp"), ["a=rtcp:40001"]);
}

#[test]
fn asterisk_savp_offer_gets_an_srtp_answer_or_a_488() {
    for srtp in [SrtpPolicy::Optional, SrtpPolicy::Mandatory] {
        let (answer, audio) = answer_with(ASTERISK_SAVP, &policy(srtp)).unwrap();
        let text = answer.to_string();
        assert_eq!(lines_with(&text, "m="), ["m=audio 40000 RTP/SAVP 0 101"]);
        assert_eq!(lines_with(&text, "a=crypto:").len(), 1);
        assert_eq!(audio.codec.name, "PCMU");
        assert_eq!(audio.telephone_event.unwrap().payload_type, 101);
        assert_eq!(audio.remote_rtcp, Some(sock("203.0.113.10:12823")));
        assert_eq!(audio.srtp.unwrap().suite, SrtpSuite::AesCm128HmacSha1_80);
    }
    let err = answer_with(ASTERISK_SAVP, &policy(SrtpPolicy::Off)).unwrap_err();
    assert_eq!(
        (err.status_code(), err.to_string().as_str()),
        (488, "SRTP not supported")
    );
}

#[test]
fn asterisk_plain_offer_keeps_its_codec_order_and_numbers() {
    let (answer, audio) = answer_with(ASTERISK_PLAIN, &policy(SrtpPolicy::Optional)).unwrap();
    assert_eq!(
        lines_with(&answer.to_string(), "m="),
        ["m=audio 40000 RTP/AVP 8 101"]
    );
    assert_eq!(
        (audio.codec.payload_type, audio.codec.name.as_str()),
        (8, "PCMA")
    );
    assert_eq!(audio.srtp, None);
    let err = answer_with(ASTERISK_PLAIN, &policy(SrtpPolicy::Mandatory)).unwrap_err();
    assert_eq!(
        (err.status_code(), err.to_string().as_str()),
        (488, "SRTP required")
    );
}

#[test]
fn polycom_savp_with_key_lifetimes() {
    let (answer, audio) = answer_with(POLYCOM_VVX, &policy(SrtpPolicy::Optional)).unwrap();
    let text = answer.to_string();
    // G.722 and G.722.1 come first but are not ours: PCMU is the first common codec.
    assert_eq!(lines_with(&text, "m="), ["m=audio 40000 RTP/SAVP 0 127"]);
    assert_eq!(audio.telephone_event.unwrap().payload_type, 127);
    let crypto = lines_with(&text, "a=crypto:");
    assert!(crypto[0].starts_with("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
    assert_eq!(
        audio.srtp.unwrap().remote,
        SrtpMasterKey::from_base64("L1BSyf0VsZoYxYTQE2NWgZhhPww06EQJ73k4cJoV").unwrap()
    );
}

#[test]
fn yealink_best_effort_offer_gets_the_80_bit_suite_even_when_listed_second() {
    let (answer, audio) =
        answer_with(YEALINK_OPTIONAL_SRTP, &policy(SrtpPolicy::Optional)).unwrap();
    let text = answer.to_string();
    assert_eq!(lines_with(&text, "m="), ["m=audio 40000 RTP/AVP 0 101"]);
    let crypto = lines_with(&text, "a=crypto:");
    assert_eq!(crypto.len(), 1);
    assert!(crypto[0].starts_with("a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:"));
    assert_eq!(audio.srtp.unwrap().suite, SrtpSuite::AesCm128HmacSha1_80);
    // Mandatory accepts a best-effort offer that carries usable crypto.
    assert!(
        answer_with(YEALINK_OPTIONAL_SRTP, &policy(SrtpPolicy::Mandatory))
            .unwrap()
            .1
            .srtp
            .is_some()
    );
}

#[test]
fn cisco_phone_with_media_level_connection_and_opus_parameters() {
    let (answer, audio) = answer_with(CISCO_CP8841, &policy(SrtpPolicy::Optional)).unwrap();
    assert_eq!(
        lines_with(&answer.to_string(), "m="),
        ["m=audio 40000 RTP/AVP 114"]
    );
    assert_eq!(audio.remote_rtp, sock("192.168.1.60:29404"));
    assert_eq!(
        audio.codec.fmtp.as_deref(),
        Some("maxplaybackrate=16000;sprop-maxcapturerate=16000;maxaveragebitrate=64000;stereo=0;sprop-stereo=0;usedtx=0")
    );
    assert_eq!(audio.telephone_event, None);
    let (_, audio) = answer_with(CISCO_CP8841, &g711_policy(SrtpPolicy::Off)).unwrap();
    assert_eq!(
        (
            audio.codec.payload_type,
            audio.telephone_event.unwrap().payload_type
        ),
        (0, 101)
    );
}

#[test]
fn cisco_gateway_old_style_hold_is_answered_recvonly() {
    let (answer, audio) = answer_with(CISCO_GATEWAY_HOLD, &policy(SrtpPolicy::Optional)).unwrap();
    assert_eq!(
        lines_with(&answer.to_string(), "a=recvonly"),
        ["a=recvonly"]
    );
    assert_eq!(audio.direction, Direction::RecvOnly);
    assert!(!audio.direction.sends() && audio.direction.receives());
    assert_eq!(audio.remote_rtp, sock("0.0.0.0:17422"));
}

#[test]
fn snom_offer_with_an_mki_line_falls_back_to_a_usable_one() {
    let (answer, audio) = answer_with(SNOM_MKI, &policy(SrtpPolicy::Optional)).unwrap();
    let text = answer.to_string();
    assert_eq!(lines_with(&text, "m="), ["m=audio 40000 RTP/SAVP 8 101"]);
    assert!(
        lines_with(&text, "a=crypto:")[0].starts_with("a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:")
    );
    assert_eq!(audio.srtp.unwrap().suite, SrtpSuite::AesCm128HmacSha1_32);
}

#[test]
fn rfc_example_session_level_recvonly_is_mirrored() {
    let (answer, audio) = answer_with(RFC4566_EXAMPLE, &policy(SrtpPolicy::Optional)).unwrap();
    let text = answer.to_string();
    assert_eq!(
        lines_with(&text, "m="),
        ["m=audio 40000 RTP/AVP 0", "m=video 0 RTP/AVP 99"]
    );
    assert_eq!(lines_with(&text, "a=sendonly"), ["a=sendonly"]);
    assert_eq!(audio.direction, Direction::SendOnly);
    assert_eq!(audio.remote_rtp, sock("224.2.17.12:49170"));
}
