//! Offers Callisto cannot serve, sent straight to `callisto answer` from a raw UDP socket: each
//! is refused with the status RFC 3261/3264 asks for (400 for SDP that does not parse, 488 for
//! a description it cannot use — a WebRTC offer without a fingerprint, no common codec) and
//! says why in a `Warning` header (and a 400 in its reason phrase), the refusal is ACKed like
//! any final response, and Callisto goes on answering the next call.

mod support;

use std::error::Error;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use support::callisto::Callisto;

type TestResult = Result<(), Box<dyn Error>>;

const WAIT: Duration = Duration::from_secs(5);

/// A WebRTC offer without `a=fingerprint`: DTLS-SRTP cannot be keyed.
const WEBRTC_WITHOUT_FINGERPRINT: &str = "v=0\r\n\
o=- 1 1 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
c=IN IP4 127.0.0.1\r\n\
a=mid:0\r\n\
a=ice-ufrag:abcd\r\n\
a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
a=setup:actpass\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n";

/// A classic offer with only a codec Callisto does not have.
const NO_COMMON_CODEC: &str = "v=0\r\n\
o=- 1 1 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 40002 RTP/AVP 18\r\n\
a=rtpmap:18 G729/8000\r\n";

/// Not SDP at all.
const GARBAGE: &str = "this is not a session description\r\n";

/// An INVITE from `local` to Callisto at `port` with `sdp`, branch and Call-ID from `n`.
fn invite(local: u16, port: u16, n: u32, sdp: &str) -> String {
    format!(
        "INVITE sip:bob@127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK-bad-{n};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:mallory@127.0.0.1:{local}>;tag=m{n}\r\n\
         To: <sip:bob@127.0.0.1:{port}>\r\n\
         Call-ID: bad-input-{n}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:mallory@127.0.0.1:{local}>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// The ACK for a non-2xx final response: same branch, the response's To tag.
fn ack(local: u16, port: u16, n: u32, to_tag: &str) -> String {
    format!(
        "ACK sip:bob@127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK-bad-{n};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:mallory@127.0.0.1:{local}>;tag=m{n}\r\n\
         To: <sip:bob@127.0.0.1:{port}>;tag={to_tag}\r\n\
         Call-ID: bad-input-{n}\r\n\
         CSeq: 1 ACK\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// A final response as received.
struct Refused {
    status: u16,
    /// The status line.
    line: String,
    /// The `Warning` header's value, if any.
    warning: Option<String>,
}

/// Sends the INVITE and waits for its final response, which it ACKs.
fn final_response(
    socket: &UdpSocket,
    port: u16,
    n: u32,
    sdp: &str,
) -> Result<Refused, Box<dyn Error>> {
    let local = socket.local_addr()?.port();
    socket.send_to(invite(local, port, n, sdp).as_bytes(), ("127.0.0.1", port))?;
    let deadline = Instant::now() + WAIT;
    let mut buffer = [0u8; 8192];
    while Instant::now() < deadline {
        let Ok((len, _)) = socket.recv_from(&mut buffer) else {
            continue;
        };
        let text = String::from_utf8_lossy(&buffer[..len]).into_owned();
        let status: u16 = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if !text.contains(&format!("Call-ID: bad-input-{n}")) || status < 200 {
            continue;
        }
        let tag = text
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("to:"))
            .and_then(|l| l.split(";tag=").nth(1))
            .map(|t| t.trim().to_owned())
            .unwrap_or_default();
        socket.send_to(ack(local, port, n, &tag).as_bytes(), ("127.0.0.1", port))?;
        let warning = text
            .lines()
            .find_map(|l| l.strip_prefix("Warning:"))
            .map(|v| v.trim().to_owned());
        let line = text.lines().next().unwrap_or_default().to_owned();
        return Ok(Refused {
            status,
            line,
            warning,
        });
    }
    Err(format!("no final response to INVITE {n}").into())
}

#[test]
fn unusable_offers_are_refused_and_the_next_call_is_served() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut bob = Callisto::answer(
        dir.path(),
        "127.0.0.1:0",
        &["--audio", "tone:440", "--count", "1"],
    )?;
    let port = bob.listening_port(WAIT)?;
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;

    for (n, sdp, status, line, warning) in [
        (
            1,
            WEBRTC_WITHOUT_FINGERPRINT,
            488,
            "SIP/2.0 488 Not Acceptable Here",
            "302 callisto \"DTLS-SRTP offered without a fingerprint\"",
        ),
        (
            2,
            NO_COMMON_CODEC,
            488,
            "SIP/2.0 488 Not Acceptable Here",
            "305 callisto \"No common codec\"",
        ),
        (
            3,
            GARBAGE,
            400,
            "SIP/2.0 400 Bad SDP: line 1 is malformed",
            "399 callisto \"Bad SDP: line 1 is malformed\"",
        ),
    ] {
        let refused = final_response(&socket, port, n, sdp)?;
        assert_eq!(refused.status, status, "offer {n}\n{}", bob.stderr());
        assert_eq!(refused.line, line, "offer {n}");
        assert_eq!(refused.warning.as_deref(), Some(warning), "offer {n}");
    }
    // None of them became a call.
    let events = bob.events(Duration::from_millis(300));
    assert!(
        events.iter().all(|e| e["event"] == "listening"),
        "{events:?}"
    );
    // The next, proper call is answered as usual.
    let uri = format!("sip:bob@127.0.0.1:{port}");
    let mut alice = Callisto::call(dir.path(), &uri, &["--duration", "1"])?;
    alice.expect("answered", WAIT)?;
    assert!(alice.wait(WAIT)?.success(), "{}", alice.stderr());
    assert!(bob.wait(WAIT)?.success(), "{}", bob.stderr());
    Ok(())
}
