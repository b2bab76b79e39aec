//! Offers Callisto cannot serve, sent straight to `callisto answer` from a raw UDP socket: each
//! is refused with the status RFC 3261/3264 asks for (400 for SDP that does not parse, 488 for
//! a description it cannot use — a WebRTC offer without a fingerprint, no common codec) and
//! says why in a `Warning` header (and a 400 in its reason phrase), the refusal is ACKed like
//! any final response, and Callisto goes on answering the next call. The same offers sent as
//! re-INVITEs in a call get the same refusals and leave the call as it was: its media flows on,
//! and the next re-offer and the BYE are served as usual.

mod support;

use std::error::Error;
use std::net::UdpSocket;
use std::path::Path;
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

/// The first final response arriving on `socket` within [`WAIT`] that `is_ours` picks, with
/// its status code and To tag.
fn await_final(
    socket: &UdpSocket,
    is_ours: impl Fn(&str) -> bool,
) -> Option<(String, u16, String)> {
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
        if !text.starts_with("SIP/2.0") || status < 200 || !is_ours(&text) {
            continue;
        }
        let tag = text
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("to:"))
            .and_then(|l| l.split(";tag=").nth(1))
            .map(|t| t.trim().to_owned())
            .unwrap_or_default();
        return Some((text, status, tag));
    }
    None
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
    let call_id = format!("Call-ID: bad-input-{n}");
    let (text, status, tag) = await_final(socket, |text| text.contains(&call_id))
        .ok_or_else(|| format!("no final response to INVITE {n}"))?;
    socket.send_to(ack(local, port, n, &tag).as_bytes(), ("127.0.0.1", port))?;
    let warning = text
        .lines()
        .find_map(|l| l.strip_prefix("Warning:"))
        .map(|v| v.trim().to_owned());
    let line = text.lines().next().unwrap_or_default().to_owned();
    Ok(Refused {
        status,
        line,
        warning,
    })
}

/// `callisto answer` (bob, for one call) in `dir`, its SIP port, and a socket to send it
/// hand-written requests from.
fn answering_bob(dir: &Path) -> Result<(Callisto, u16, UdpSocket), Box<dyn Error>> {
    let mut bob = Callisto::answer(dir, "127.0.0.1:0", &["--audio", "tone:440", "--count", "1"])?;
    let port = bob.listening_port(WAIT)?;
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    Ok((bob, port, socket))
}

#[test]
fn unusable_offers_are_refused_and_the_next_call_is_served() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (mut bob, port, socket) = answering_bob(dir.path())?;

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

/// An offer Callisto can serve: PCMU to `rtp_port`, `direction` as given.
fn pcmu_offer(rtp_port: u16, version: u32, direction: &str) -> String {
    format!(
        "v=0\r\n\
         o=- 7 {version} IN IP4 127.0.0.1\r\n\
         s=-\r\n\
         c=IN IP4 127.0.0.1\r\n\
         t=0 0\r\n\
         m=audio {rtp_port} RTP/AVP 0\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a={direction}\r\n"
    )
}

/// One side of a dialog with Callisto written by hand: what the 200 OK to the INVITE said.
struct Dialog {
    socket: UdpSocket,
    local: u16,
    port: u16,
    to_tag: String,
}

impl Dialog {
    /// A request of the dialog (`to_tag` empty: the initial INVITE) on branch `branch`.
    fn request(&self, method: &str, cseq: u32, branch: &str, body: &str) -> String {
        let (local, port) = (self.local, self.port);
        let to_tag = if self.to_tag.is_empty() {
            String::new()
        } else {
            format!(";tag={}", self.to_tag)
        };
        let content_type = if body.is_empty() {
            String::new()
        } else {
            "Content-Type: application/sdp\r\n".to_owned()
        };
        format!(
            "{method} sip:bob@127.0.0.1:{port} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK-{branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:mallory@127.0.0.1:{local}>;tag=reoffer\r\n\
             To: <sip:bob@127.0.0.1:{port}>{to_tag}\r\n\
             Call-ID: bad-reoffer\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:mallory@127.0.0.1:{local}>\r\n\
             {content_type}\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    /// Sends `method` (CSeq `cseq`) and returns the final response's status line and text,
    /// ACKing an INVITE's final response (a 2xx on a branch of its own, RFC 3261 §13.2.2.4).
    fn transact(&mut self, method: &str, cseq: u32, body: &str) -> Result<String, Box<dyn Error>> {
        let branch = format!("{method}-{cseq}");
        let request = self.request(method, cseq, &branch, body);
        self.socket
            .send_to(request.as_bytes(), ("127.0.0.1", self.port))?;
        let cseq_line = format!("CSeq: {cseq} {method}");
        let (text, status, tag) = await_final(&self.socket, |text| text.contains(&cseq_line))
            .ok_or_else(|| format!("no final response to {method} {cseq}"))?;
        if self.to_tag.is_empty() {
            self.to_tag = tag;
        }
        if method == "INVITE" {
            let ack_branch = if status < 300 {
                format!("ack-{cseq}")
            } else {
                branch
            };
            let ack = self.request("ACK", cseq, &ack_branch, "");
            self.socket
                .send_to(ack.as_bytes(), ("127.0.0.1", self.port))?;
        }
        Ok(text)
    }
}

/// Whether RTP reached `rtp` within a second.
fn rtp_arrives(rtp: &UdpSocket) -> bool {
    let mut buffer = [0u8; 2048];
    // What was queued before counts for nothing.
    let _ = rtp.set_nonblocking(true);
    while rtp.recv_from(&mut buffer).is_ok() {}
    let _ = rtp.set_nonblocking(false);
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        if rtp.recv_from(&mut buffer).is_ok() {
            return true;
        }
    }
    false
}

#[test]
fn an_unusable_re_offer_is_refused_and_the_call_goes_on_as_before() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (mut bob, port, socket) = answering_bob(dir.path())?;
    let rtp = UdpSocket::bind("127.0.0.1:0")?;
    rtp.set_read_timeout(Some(Duration::from_millis(20)))?;
    let rtp_port = rtp.local_addr()?.port();
    let mut dialog = Dialog {
        local: socket.local_addr()?.port(),
        socket,
        port,
        to_tag: String::new(),
    };
    let answer = dialog.transact("INVITE", 1, &pcmu_offer(rtp_port, 1, "sendrecv"))?;
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    bob.expect("answered", WAIT)?;
    assert!(rtp_arrives(&rtp), "no RTP once answered");

    for (cseq, sdp, line, warning) in [
        (
            2,
            GARBAGE,
            "SIP/2.0 400 Bad SDP: line 1 is malformed",
            "Warning: 399 callisto \"Bad SDP: line 1 is malformed\"",
        ),
        (
            3,
            NO_COMMON_CODEC,
            "SIP/2.0 488 Not Acceptable Here",
            "Warning: 305 callisto \"No common codec\"",
        ),
    ] {
        let refused = dialog.transact("INVITE", cseq, sdp)?;
        assert_eq!(refused.lines().next(), Some(line), "re-offer {cseq}");
        assert!(refused.contains(warning), "re-offer {cseq}: {refused}");
        // The refused offer changed nothing: the media flows on as agreed before.
        assert!(rtp_arrives(&rtp), "no RTP after re-offer {cseq}");
    }
    // The dialog and the offer/answer state are as before: the next re-offer (a hold) is
    // answered and taken, and the BYE ends the call normally.
    let hold = dialog.transact("INVITE", 4, &pcmu_offer(rtp_port, 2, "sendonly"))?;
    assert!(hold.starts_with("SIP/2.0 200"), "{hold}");
    assert!(hold.contains("a=recvonly"), "{hold}");
    let held = bob.expect("held", WAIT)?;
    assert_eq!(held["by"], "remote");
    let bye = dialog.transact("BYE", 5, "")?;
    assert!(bye.starts_with("SIP/2.0 200"), "{bye}");
    let ended = bob.expect("call_ended", WAIT)?;
    assert_eq!(ended["by"], "remote", "{ended}");
    assert!(bob.wait(WAIT)?.success(), "{}", bob.stderr());
    Ok(())
}
