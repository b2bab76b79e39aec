//! Parser, writer and attribute accessor tests.

use std::net::{IpAddr, Ipv4Addr};

use super::*;

const RFC4566: &str = include_str!("../../tests/sdp_samples/rfc4566_example.sdp");

fn crlf(text: &str) -> String {
    text.replace('\n', "\r\n")
}

/// The error `parse` returns for `text`, which must fail.
fn error(text: &str) -> SdpError {
    parse(text).expect_err(text)
}

const MINIMAL: &str = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n";

#[test]
fn rfc4566_example_reads_every_field() {
    let sdp = parse(RFC4566).unwrap();
    assert_eq!(sdp.version, 0);
    assert_eq!(sdp.origin.username, "jdoe");
    assert_eq!(sdp.origin.session_id, "2890844526");
    assert_eq!(sdp.origin.session_version, 2890842807);
    assert_eq!(sdp.origin.net_type, "IN");
    assert_eq!(sdp.origin.address_type, AddressType::Ip4);
    assert_eq!(sdp.origin.address, "10.47.16.5");
    assert_eq!(sdp.session_name, "SDP Seminar");
    assert_eq!(
        sdp.information.as_deref(),
        Some("A Seminar on the session description protocol")
    );
    assert_eq!(
        sdp.uri.as_deref(),
        Some("http://www.example.com/seminars/sdp.pdf")
    );
    assert_eq!(sdp.emails, ["j.doe@example.com (Jane Doe)"]);
    let c = sdp.connection.as_ref().unwrap();
    assert_eq!(
        (c.address.as_str(), c.ttl, c.count),
        ("224.2.17.12", Some(127), None)
    );
    assert_eq!(sdp.timing.len(), 1);
    assert_eq!(
        (sdp.timing[0].start, sdp.timing[0].stop),
        (2873397496, 2873404696)
    );
    assert_eq!(sdp.direction(), Some(Direction::RecvOnly));
    assert_eq!(sdp.media.len(), 2);
    let audio = &sdp.media[0];
    assert_eq!(audio.kind, MediaKind::Audio);
    assert_eq!(audio.port, 49170);
    assert_eq!(audio.protocol, Protocol::RtpAvp);
    assert_eq!(audio.formats, ["0"]);
    // Static payload type 0 is PCMU without an rtpmap.
    let pcmu = audio.codec(0).unwrap();
    assert_eq!((pcmu.encoding.as_str(), pcmu.clock_rate), ("PCMU", 8000));
    // The session-level direction is the default of each media section.
    assert_eq!(sdp.direction_of(audio), Direction::RecvOnly);
    let video = &sdp.media[1];
    assert_eq!(video.kind, MediaKind::Video);
    let h263 = video.codec(99).unwrap();
    assert_eq!(
        (h263.encoding.as_str(), h263.clock_rate),
        ("h263-1998", 90000)
    );
}

#[test]
fn writes_crlf_in_rfc_order_and_round_trips() {
    let sdp = parse(RFC4566).unwrap();
    assert_eq!(sdp.to_string(), crlf(RFC4566));
    assert_eq!(parse(sdp.to_string()).unwrap(), sdp);
}

#[test]
fn lf_and_crlf_line_ends_read_the_same() {
    assert_eq!(parse(RFC4566).unwrap(), parse(crlf(RFC4566)).unwrap());
    assert_eq!(
        parse(RFC4566.as_bytes()).unwrap(),
        parse(crlf(RFC4566)).unwrap()
    );
}

#[test]
fn writer_puts_lines_in_rfc_order_whatever_the_input_order() {
    let text = "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\na=sendrecv\r\nt=0 0\r\nb=AS:64\r\n\
                c=IN IP4 192.0.2.1\r\nk=prompt\r\nm=audio 4000 RTP/AVP 0\r\na=ptime:20\r\n\
                b=TIAS:64000\r\nc=IN IP4 192.0.2.2\r\ni=voice\r\n";
    let sdp = parse(text).unwrap();
    assert_eq!(
        sdp.to_string(),
        "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nb=AS:64\r\nt=0 0\r\n\
         k=prompt\r\na=sendrecv\r\nm=audio 4000 RTP/AVP 0\r\ni=voice\r\nc=IN IP4 192.0.2.2\r\n\
         b=TIAS:64000\r\na=ptime:20\r\n"
    );
}

#[test]
fn tolerates_blank_lines_trailing_space_missing_timing_and_empty_session_name() {
    let sdp =
        parse("\n\nv=0\no=- 1 1 IN IP4 192.0.2.1  \ns=\n\nm=audio 4000 RTP/AVP 0 \t\n\n").unwrap();
    assert_eq!(sdp.session_name, "");
    // A missing `t=` reads as the `t=0 0` the writer gives back.
    assert_eq!(sdp.timing, [Timing::default()]);
    assert_eq!(sdp.media[0].formats, ["0"]);
    assert!(sdp.to_string().contains("\r\nt=0 0\r\n"));
}

#[test]
fn unknown_lines_are_ignored_and_unknown_attributes_kept_in_order() {
    let text = format!("{MINIMAL}y=0123456789\nf=v/2/25\na=X-nat:0\nm=audio 4000 RTP/AVP 0\na=x-custom\na=rtpmap:0 PCMU/8000\na=X-extension:some value: with colons\n");
    let sdp = parse(&text).unwrap();
    assert_eq!(sdp.attributes, [Attribute::value("X-nat", "0")]);
    let names: Vec<&str> = sdp.media[0]
        .attributes
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(names, ["x-custom", "rtpmap", "X-extension"]);
    assert_eq!(
        sdp.media[0].attribute_value("x-extension"),
        Some("some value: with colons")
    );
    assert!(sdp.media[0].has_attribute("X-CUSTOM"));
}

#[test]
fn bytes_that_are_not_utf8_are_replaced() {
    let mut bytes = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=Caf".to_vec();
    bytes.extend_from_slice(&[0xe9, b'\r', b'\n']);
    bytes.extend_from_slice(b"t=0 0\r\n");
    let sdp = parse(&bytes).unwrap();
    assert_eq!(sdp.session_name, "Caf\u{fffd}");
}

#[test]
fn errors_name_the_fault() {
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "Bad SDP: empty"),
        ("\r\n\r\n".into(), "Bad SDP: empty"),
        (
            "o=- 1 1 IN IP4 192.0.2.1\nv=0\ns=-\n".into(),
            "Bad SDP: v= line must come first",
        ),
        (
            "v=1\no=- 1 1 IN IP4 192.0.2.1\ns=-\n".into(),
            "Bad SDP: unsupported version",
        ),
        ("v=0\ns=-\nt=0 0\n".into(), "Bad SDP: missing o= line"),
        (
            "v=0\no=- 1 1 IN IP4 192.0.2.1\nt=0 0\n".into(),
            "Bad SDP: missing s= line",
        ),
        (
            format!("{MINIMAL}o=- 1 1 IN IP4 192.0.2.1\n"),
            "Bad SDP: duplicate o= line",
        ),
        (format!("{MINIMAL}s=again\n"), "Bad SDP: duplicate s= line"),
        (format!("{MINIMAL}v=0\n"), "Bad SDP: duplicate v= line"),
        (
            format!("{MINIMAL}m=audio\n"),
            "Bad SDP: m= line has no port",
        ),
        (
            format!("{MINIMAL}m=audio RTP/AVP 0\n"),
            "Bad SDP: m= line has a bad port",
        ),
        (
            format!("{MINIMAL}m=audio 65536 RTP/AVP 0\n"),
            "Bad SDP: m= line has a bad port",
        ),
        (
            format!("{MINIMAL}m=audio -1 RTP/AVP 0\n"),
            "Bad SDP: m= line has a bad port",
        ),
        (
            format!("{MINIMAL}m=audio 4000/x RTP/AVP 0\n"),
            "Bad SDP: m= line has a bad port count",
        ),
        (
            format!("{MINIMAL}m=audio 4000\n"),
            "Bad SDP: m= line has no transport protocol",
        ),
        (
            format!("{MINIMAL}m=audio 4000 RTP/AVP\n"),
            "Bad SDP: m= line has no formats",
        ),
        (
            format!("{MINIMAL}m=audio 4000 RTP/AVP 0 128\n"),
            "Bad SDP: m= line has a bad payload type",
        ),
        (
            format!("{MINIMAL}m=audio 4000 RTP/SAVP 0 PCMU\n"),
            "Bad SDP: m= line has a bad payload type",
        ),
        (
            format!("{MINIMAL}m=audio 4000 RTP/AVP 0\no=- 1 1 IN IP4 192.0.2.1\n"),
            "Bad SDP: o= line inside a media section",
        ),
        (
            "v=0\no=- 1 IN IP4 192.0.2.1\ns=-\n".into(),
            "Bad SDP: o= line does not have six fields",
        ),
        (
            "v=0\no=- 1 x IN IP4 192.0.2.1\ns=-\n".into(),
            "Bad SDP: o= line has a bad session version",
        ),
        (
            "v=0\no=- 1 -2 IN IP4 192.0.2.1\ns=-\n".into(),
            "Bad SDP: o= line has a bad session version",
        ),
        (
            "v=0\no=- 1;2 3 IN IP4 192.0.2.1\ns=-\n".into(),
            "Bad SDP: o= line has a bad session id",
        ),
        (
            format!("{MINIMAL}c=IN IP4\n"),
            "Bad SDP: c= line does not have three fields",
        ),
        (
            format!("{MINIMAL}m=audio 4000 RTP/AVP 0\nc=IN IP4 224.2.1.1/300\n"),
            "Bad SDP: c= line has a bad suffix",
        ),
        (
            format!("{MINIMAL}c=IN IP6 ff15::101/3/2\n"),
            "Bad SDP: c= line has a bad suffix",
        ),
        (format!("{MINIMAL}b=AS\n"), "Bad SDP: b= line has no colon"),
        (
            format!("{MINIMAL}b=AS:fast\n"),
            "Bad SDP: b= line has a bad value",
        ),
        (
            format!("{MINIMAL}t=0\n"),
            "Bad SDP: t= line does not have two fields",
        ),
        (
            format!("{MINIMAL}t=now 0\n"),
            "Bad SDP: t= line has a bad time",
        ),
        (format!("{MINIMAL}a=\n"), "Bad SDP: a= line has a bad name"),
        (
            format!("{MINIMAL}a=:value\n"),
            "Bad SDP: a= line has a bad name",
        ),
        (
            format!("{MINIMAL}a=bad name\n"),
            "Bad SDP: a= line has a bad name",
        ),
        (format!("{MINIMAL}hello\n"), "Bad SDP: line 6 is malformed"),
        (format!("{MINIMAL}A=x\n"), "Bad SDP: line 6 is malformed"),
        (format!("{MINIMAL}a=x\0y\n"), "Bad SDP: line 6 is malformed"),
        (format!("{MINIMAL}a=x\ry\n"), "Bad SDP: line 6 is malformed"),
    ];
    for (text, reason) in cases {
        let err = error(&text);
        assert_eq!(err.to_string(), reason, "{text:?}");
        // The 400 that refuses such a body says it, in its reason phrase and a Warning.
        let refusal = err.refusal();
        assert_eq!(refusal.code, 400);
        assert_eq!(refusal.reason.as_deref(), Some(reason));
        assert_eq!(refusal.warning, Some((399, reason.to_owned())));
    }
    assert_eq!(error("").status_code(), 400);
}

#[test]
fn structured_errors_carry_the_line() {
    assert_eq!(
        error(&format!("{MINIMAL}m=audio\n")),
        SdpError::BadField {
            line: 6,
            kind: 'm',
            reason: "has no port"
        }
    );
}

#[test]
fn rejects_bodies_over_the_limit() {
    let mut text = MINIMAL.to_owned();
    while text.len() <= MAX_SDP_LEN {
        text.push_str("a=filler:0123456789abcdef0123456789abcdef\n");
    }
    assert!(matches!(error(&text), SdpError::TooLarge { len } if len == text.len()));
}

#[test]
fn rejected_stream_may_lack_formats_and_non_rtp_formats_are_tokens() {
    let text = format!("{MINIMAL}m=video 0 RTP/AVP\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\nm=image 5000 udptl t38\n");
    let sdp = parse(&text).unwrap();
    assert!(sdp.media[0].formats.is_empty());
    assert_eq!(
        sdp.media[1].protocol,
        Protocol::Other("UDP/DTLS/SCTP".into())
    );
    assert_eq!(sdp.media[1].formats, ["webrtc-datachannel"]);
    assert_eq!(sdp.media[2].kind, MediaKind::Other("image".into()));
    assert_eq!(sdp.media[2].formats, ["t38"]);
    assert_eq!(parse(sdp.to_string()).unwrap(), sdp);
}

#[test]
fn protocols_and_kinds_read_case_insensitively_and_classify() {
    let text = format!("{MINIMAL}m=AUDIO 4000/2 rtp/savp 0\nm=video 4002 TCP/DTLS/RTP/SAVPF 96\n");
    let sdp = parse(&text).unwrap();
    let m = &sdp.media[0];
    assert_eq!((m.kind.clone(), m.port_count), (MediaKind::Audio, Some(2)));
    assert_eq!(m.protocol, Protocol::RtpSavp);
    assert!(m.protocol.is_rtp() && m.protocol.is_secure());
    let dtls = &sdp.media[1].protocol;
    assert!(dtls.is_rtp() && dtls.is_secure());
    assert!(!Protocol::RtpAvpf.is_secure());
    assert!(Protocol::UdpTlsRtpSavpf.is_secure());
    assert!(!Protocol::Other("udptl".into()).is_rtp());
    assert!(sdp.to_string().contains("m=audio 4000/2 RTP/SAVP 0\r\n"));
}

#[test]
fn connections_ipv6_multicast_and_hold() {
    let text = "v=0\no=- 1 1 IN IP6 2001:db8::1\ns=-\nc=IN IP6 2001:db8::2\nt=0 0\n\
        m=audio 4000 RTP/AVP 0\nc=IN IP4 233.252.0.1/127/3\nm=audio 4002 RTP/AVP 0\nc=IN IP4 0.0.0.0\n";
    let sdp = parse(text).unwrap();
    assert_eq!(sdp.origin.address_type, AddressType::Ip6);
    let session = sdp.connection.as_ref().unwrap();
    assert_eq!(session.ip(), Some("2001:db8::2".parse().unwrap()));
    let multicast = sdp.media[0].connection.as_ref().unwrap();
    assert_eq!((multicast.ttl, multicast.count), (Some(127), Some(3)));
    assert!(sdp.to_string().contains("c=IN IP4 233.252.0.1/127/3\r\n"));
    assert!(sdp.media[1].connection.as_ref().unwrap().is_hold_address());
    assert!(!session.is_hold_address());
    assert_eq!(sdp.connection_for(&sdp.media[0]), Some(multicast));
    let named = parse(format!(
        "{MINIMAL}m=audio 4000 RTP/AVP 0\nc=IN IP4 media.example.com\n"
    ))
    .unwrap();
    assert_eq!(named.media[0].connection.as_ref().unwrap().ip(), None);
    assert_eq!(
        Connection::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9))).to_string(),
        "c=IN IP4 192.0.2.9\r\n"
    );
}

#[test]
fn media_attribute_accessors() {
    let text = format!(
        "{MINIMAL}a=inactive\nm=audio 4000 RTP/AVP 96 0 8 101\n\
        a=rtpmap:96 opus/48000/2\na=rtpmap:broken\na=fmtp:96 useinbandfec=1; stereo=0\n\
        a=rtpmap:8 PCMA/8000/1\na=rtpmap:101 telephone-event/8000\na=fmtp:101 0-16\n\
        a=ptime:20.0\na=maxptime:60\na=rtcp:53020 IN IP4 198.51.100.7\na=rtcp-mux\n\
        a=mid:audio\na=sendonly\na=candidate:1 1 UDP 2130706431 192.0.2.1 4000 typ host\n"
    );
    let sdp = parse(&text).unwrap();
    let m = &sdp.media[0];
    assert_eq!(m.payload_types().collect::<Vec<_>>(), [96, 0, 8, 101]);
    let opus = m.rtpmap(96).unwrap();
    assert_eq!(
        opus,
        RtpMap {
            payload_type: 96,
            encoding: "opus".into(),
            clock_rate: 48000,
            channels: Some(2)
        }
    );
    assert_eq!(opus.to_string(), "96 opus/48000/2");
    assert_eq!(m.rtpmaps().count(), 3, "the broken rtpmap is skipped");
    assert_eq!(m.codec(0).unwrap().encoding, "PCMU");
    assert_eq!(m.codec(8).unwrap().channel_count(), 1);
    assert_eq!(m.fmtp(96), Some("useinbandfec=1; stereo=0"));
    assert_eq!(m.fmtp(101), Some("0-16"));
    assert_eq!(m.fmtp(0), None);
    assert_eq!((m.ptime(), m.maxptime()), (Some(20), Some(60)));
    let rtcp = m.rtcp().unwrap();
    assert_eq!(rtcp.port, 53020);
    assert_eq!(rtcp.ip(), Some("198.51.100.7".parse().unwrap()));
    assert!(m.rtcp_mux());
    assert_eq!(m.mid(), Some("audio"));
    assert_eq!(m.direction(), Some(Direction::SendOnly));
    assert_eq!(sdp.direction(), Some(Direction::Inactive));
    assert_eq!(sdp.direction_of(m), Direction::SendOnly);
    assert_eq!(m.candidates().count(), 1);
    assert_eq!(RtcpAttribute::parse("9").unwrap().address, None);
    assert_eq!(RtcpAttribute::parse("9 IN IP4"), None);
}

#[test]
fn dtls_and_ice_accessors_at_both_levels() {
    let text = format!("{MINIMAL}a=fingerprint:sha-256 AB:CD:EF\na=ice-ufrag:abcd\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\na=setup:actpass\na=ice-pwd: secret \na=fingerprint:sha-1 01:02\n");
    let sdp = parse(&text).unwrap();
    let fp = sdp.fingerprint().unwrap();
    assert_eq!(
        (fp.hash_function.as_str(), fp.value.as_str()),
        ("sha-256", "AB:CD:EF")
    );
    assert_eq!(sdp.ice_ufrag(), Some("abcd"));
    let m = &sdp.media[0];
    assert_eq!(m.fingerprint().unwrap().hash_function, "sha-1");
    assert_eq!(m.setup(), Some(Setup::ActPass));
    assert_eq!(Setup::ActPass.as_str(), "actpass");
    assert_eq!(m.ice_pwd(), Some("secret"));
    assert_eq!(m.ice_ufrag(), None);
}

#[test]
fn direction_algebra() {
    use Direction::*;
    for (d, reversed) in [
        (SendRecv, SendRecv),
        (SendOnly, RecvOnly),
        (RecvOnly, SendOnly),
        (Inactive, Inactive),
    ] {
        assert_eq!(d.reversed(), reversed);
        assert_eq!(Direction::from_name(d.as_str()), Some(d));
        assert_eq!(Direction::from_flags(d.sends(), d.receives()), d);
    }
    assert_eq!(SendRecv.intersect(SendOnly), SendOnly);
    assert_eq!(SendOnly.intersect(RecvOnly), Inactive);
    assert_eq!(Direction::default(), SendRecv);
    assert_eq!(Direction::from_name("SENDONLY"), Some(SendOnly));
    assert_eq!(Direction::from_name("sendrecvx"), None);
}

#[test]
fn static_payload_types_and_rtpmap_parsing() {
    assert_eq!(RtpMap::static_payload_type(0).unwrap().encoding, "PCMU");
    assert_eq!(RtpMap::static_payload_type(8).unwrap().encoding, "PCMA");
    assert_eq!(RtpMap::static_payload_type(9).unwrap().clock_rate, 8000);
    assert_eq!(RtpMap::static_payload_type(96), None);
    assert_eq!(RtpMap::static_payload_type(2), None);
    for bad in [
        "",
        "96",
        "96 opus",
        "96 opus/x",
        "128 opus/48000",
        "96 /48000",
        "96 opus/48000/2/1",
        "x opus/48000",
    ] {
        assert_eq!(RtpMap::parse(bad), None, "{bad:?}");
    }
    assert_eq!(RtpMap::parse("0 PCMU/8000").unwrap().channels, None);
}

#[test]
fn builds_a_description_from_parts() {
    let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let mut sdp = SessionDescription::new(Origin::new("-", "42", 7, ip), "-");
    sdp.connection = Some(Connection::new(ip));
    let mut m = MediaDescription::new(MediaKind::Audio, 4000, Protocol::RtpAvp, vec!["0".into()]);
    m.attributes.push(Attribute::flag("sendrecv"));
    sdp.media.push(m);
    assert_eq!(
        sdp.to_string(),
        "v=0\r\no=- 42 7 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
         m=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n"
    );
    assert_eq!(sdp.to_string().parse::<SessionDescription>().unwrap(), sdp);
}
