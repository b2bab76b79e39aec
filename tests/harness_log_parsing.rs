//! Unit tests of the harness's log parsers (baresip events, Kamailio call markers, strace
//! lines), on lines captured from the real peers. No peer runs here.

mod support;

use std::time::{Duration, UNIX_EPOCH};

use support::baresip_events::{parse_event, AudioDirection, BaresipEvent};
use support::kamailio_calls::{parse_call_log_line, parse_reply_line, parse_request_line};
use support::measure::parse_strace_send;

#[test]
fn verified_lines_parse_into_events() {
    let cases = [
        (
            "call: SIP Progress: 180 Ringing (/)",
            BaresipEvent::Progress {
                status: 180,
                reason: "Ringing".into(),
            },
        ),
        (
            "sip:bob@127.0.0.1:16060: Incoming call from:  sip:alice@127.0.0.1:15060 - (press 'a' to accept)",
            BaresipEvent::Incoming {
                peer: "sip:alice@127.0.0.1:15060".into(),
            },
        ),
        (
            "\u{1b}[;mbob@127.0.0.1: Call established: sip:alice@127.0.0.1:15060",
            BaresipEvent::Established {
                peer: "sip:alice@127.0.0.1:15060".into(),
            },
        ),
        (
            "sip:bob@127.0.0.1:16060: session closed: 486 Rejected",
            BaresipEvent::Closed {
                peer: "sip:bob@127.0.0.1:16060".into(),
                reason: "486 Rejected".into(),
            },
        ),
        (
            "received event: '#' (end=1)",
            BaresipEvent::DtmfReceived {
                digit: '#',
                end: true,
            },
        ),
        (
            "audio: Set audio encoder: opus 48000Hz 2ch",
            BaresipEvent::Codec {
                direction: AudioDirection::Encode,
                name: "opus".into(),
                sample_rate: 48000,
                channels: 2,
            },
        ),
        (
            "sip:alice@127.0.0.1:15060: Call with sip:bob@127.0.0.1:16060 terminated (duration: 3 secs)",
            BaresipEvent::Terminated {
                peer: "sip:bob@127.0.0.1:16060".into(),
                duration: "3 secs".into(),
            },
        ),
    ];
    for (line, event) in cases {
        assert_eq!(parse_event(line), Some(event), "{line}");
    }
    assert_eq!(parse_event("aufile: end of file"), None);
    assert_eq!(parse_event("call: subscription closed: timeout"), None);
}

#[test]
fn request_and_reply_lines_parse() {
    let request = " 5(77) NOTICE: <script>: CALLISTO-CALL|ts=1700000000.000123|method=INVITE|ruri=sip:bob@127.0.0.1:5060|from=sip:alice@127.0.0.1|to=sip:bob@127.0.0.1|totag=<null>|callid=abc|cseq=2|src=127.0.0.1:4000|proto=udp|auth=yes|sdp_dir=sendonly|crypto=yes|m=m=audio 4000 RTP/SAVP 0 8 101";
    let parsed = parse_request_line(request).expect("a request line");
    assert_eq!(parsed.method, "INVITE");
    assert_eq!(parsed.to_tag, None);
    assert!(parsed.authorized);
    assert_eq!(
        parsed.at.duration_since(UNIX_EPOCH).ok(),
        Some(Duration::new(1_700_000_000, 123_000))
    );
    let sdp = parsed.sdp.expect("an SDP summary");
    assert_eq!(sdp.direction, "sendonly");
    assert!(sdp.crypto);
    assert_eq!(sdp.audio_protocol(), Some("RTP/SAVP"));
    assert_eq!(sdp.audio_payload_types(), vec![0, 8, 101]);

    let reply = "CALLISTO-REPLY|ts=1700000000.5|status=404|reason=Not Found|method=INVITE|callid=abc|cseq=2|src=127.0.0.1:4000|origin=local|sdp_dir=-|crypto=-|m=-";
    let parsed = parse_reply_line(reply).expect("a reply line");
    assert_eq!((parsed.status, parsed.local, parsed.sdp), (404, true, None));
    assert!(parse_call_log_line("CALLISTO-REG|method=REGISTER").is_none());
}

#[test]
fn strace_lines_give_the_datagram_and_its_kind() {
    let rtp = r#"4711  1700000000.250001 sendto(9, "\x80\x60\x12\x34\x00\x00\x00\xa0\x11\x22\x33\x44\x55\x66\x77\x88"..., 97, 0, {sa_family=AF_INET, sin_port=htons(4000), sin_addr=inet_addr("127.0.0.1")}, 16) = 97"#;
    let sent = parse_strace_send(rtp).expect("a send");
    assert!(sent.is_rtp());
    assert_eq!(sent.payload_type(), Some(96));
    assert_eq!(
        sent.at.duration_since(UNIX_EPOCH).ok(),
        Some(Duration::new(1_700_000_000, 250_001_000))
    );
    let rtcp = r#"1700000000.3 sendto(9, "\x81\xc8\x00\x0c", 52, 0, NULL, 0) = 52"#;
    assert!(!parse_strace_send(rtcp).expect("a send").is_rtp());
    let sip = r#"1700000000.3 sendto(5, "\x49\x4e\x56\x49", 900, 0, NULL, 0) = 900"#;
    assert!(!parse_strace_send(sip).expect("a send").is_rtp());
    assert!(parse_strace_send("1700000000.3 recvfrom(5, \"\\x80\\x00\", 2) = 2").is_none());
    assert!(parse_strace_send("strace: Process 4711 attached").is_none());
}
