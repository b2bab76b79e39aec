//! A WebRTC gateway that answers Callisto's offer in a reliable 183 (RFC 3262) and then sends
//! its 200 without a body, as RFC 3264 lets it (the answer was already given): `callisto call
//! --media webrtc` takes the answer from the 183, PRACKs it, and the call is established with
//! audio flowing both ways, where it hung up on the bodiless 200.
//!
//! The gateway is a `WebRtcSession` behind raw SIP over UDP on loopback.

mod support;

use std::error::Error;
use std::time::Duration;

use callisto_media::audio::{AudioFormat, MemorySink, ToneSource};
use callisto_media::webrtc::{WebRtcConfig, WebRtcMedia, WebRtcSession};
use support::callisto::Callisto;
use support::sip_uas::SipMessage;
use tokio::net::UdpSocket;

type TestResult = Result<(), Box<dyn Error>>;

const WAIT: Duration = Duration::from_secs(10);

/// The next request from Callisto with `method`, skipping anything else.
async fn next_request(socket: &UdpSocket, method: &str) -> Result<SipMessage, String> {
    let mut buffer = vec![0u8; 65_536];
    loop {
        let received = tokio::time::timeout(WAIT, socket.recv_from(&mut buffer)).await;
        let (len, from) = received
            .map_err(|_| format!("no {method} came"))?
            .map_err(|e| e.to_string())?;
        let message = SipMessage {
            text: String::from_utf8_lossy(&buffer[..len]).into_owned(),
            from,
        };
        if message.method() == Some(method) {
            return Ok(message);
        }
    }
}

/// A response to `request` with our tag, `extra` header lines (each ending in CRLF) and an
/// optional SDP body.
fn response(
    request: &SipMessage,
    status: &str,
    extra: &str,
    body: Option<&str>,
    port: u16,
) -> String {
    let mut text = format!("SIP/2.0 {status}\r\n{extra}");
    for name in ["Via", "From", "Call-ID", "CSeq"] {
        for value in request.headers(name) {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    let to = request.header("To").unwrap_or_default();
    let body = body.unwrap_or_default();
    let content_type = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    text.push_str(&format!(
        "To: {to};tag=gw1\r\nContact: <sip:gw@127.0.0.1:{port}>\r\n{content_type}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_in_a_reliable_183_then_a_bodiless_200_makes_the_call() -> TestResult {
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    let port = socket.local_addr()?.port();
    let dir = tempfile::tempdir()?;
    let uri = format!("sip:gw@127.0.0.1:{port}");
    let mut alice = Callisto::call(
        dir.path(),
        &uri,
        &[
            "--media",
            "webrtc",
            "--audio",
            "tone:440",
            "--video",
            "none",
            "--duration",
            "4",
        ],
    )?;
    let format = AudioFormat::MONO_48K;
    let heard = MemorySink::new(format);
    let samples = heard.shared();
    let media = WebRtcMedia {
        audio_source: Box::new(ToneSource::with_dbfs(format, 880.0, -12.0)),
        audio_sink: Box::new(heard),
        video: None,
    };
    let gateway = WebRtcSession::new(WebRtcConfig::loopback(), media).await?;

    let invite = next_request(&socket, "INVITE").await?;
    let to_alice = invite.from;
    let answer = gateway.accept_offer(invite.body()).await?;
    let progress = response(
        &invite,
        "183 Session Progress",
        "Require: 100rel\r\nRSeq: 1\r\n",
        Some(&answer),
        port,
    );
    socket.send_to(progress.as_bytes(), to_alice).await?;
    let prack = next_request(&socket, "PRACK").await?;
    assert_eq!(prack.header("RAck"), Some("1 1 INVITE"), "{}", prack.text);
    let prack_ok = response(&prack, "200 OK", "", None, port);
    socket.send_to(prack_ok.as_bytes(), to_alice).await?;
    let ok = response(&invite, "200 OK", "", None, port);
    socket.send_to(ok.as_bytes(), to_alice).await?;
    next_request(&socket, "ACK").await?;

    let answered = alice.expect("answered", WAIT)?;
    assert_eq!(answered["media"], "webrtc", "{answered}");
    gateway.wait_connected().await?;
    let bye = next_request(&socket, "BYE").await?;
    socket
        .send_to(
            response(&bye, "200 OK", "", None, port).as_bytes(),
            to_alice,
        )
        .await?;
    let ended = alice.expect("call_ended", WAIT)?;
    assert!(alice.wait(WAIT)?.success(), "{}", alice.stderr());
    let audio = &ended["audio"];
    assert!(
        audio["rx_packets"].as_u64().unwrap_or(0) >= 50,
        "alice heard the gateway: {ended}"
    );
    assert!(
        samples.samples().len() >= AudioFormat::MONO_48K.sample_rate as usize,
        "the gateway heard alice"
    );
    gateway.close().await;
    Ok(())
}
