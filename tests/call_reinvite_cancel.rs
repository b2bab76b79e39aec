//! A WebRTC peer that cancels its own re-INVITE (RFC 3261 §9) while Callisto's session is
//! still making the answer: `callisto answer` answers the re-INVITE 487 and does not report
//! the hold it asked for. Its session had already taken the offer in (it answered the hold
//! `recvonly` and stopped sending), so Callisto offers the call again as it wants it — again
//! each time the peer refuses that offer (here twice), which Callisto reports once, with the
//! refusal's Warning — and audio flows both ways once the peer answers. Holds asked for on
//! Callisto's side that the peer refuses are reported each time.
//!
//! The peer is a `WebRtcSession` behind raw SIP over UDP on loopback. Whether the CANCEL
//! arrives before the answer is a race the peer usually wins; when Callisto's 200 comes
//! first, the peer takes its hold back and tries again.

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
const CALL_ID: &str = "reinvite-cancel-1";
/// How many times the peer tries to cancel its re-INVITE before Callisto answers it (here
/// about one try in four loses the race).
const ATTEMPTS: u32 = 20;

/// Callisto's tag in a message's To header.
fn to_tag(message: &SipMessage) -> String {
    let to = message.header("To").unwrap_or_default();
    to.split(";tag=")
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The SIP side of the peer: one dialog with Callisto at `port`.
struct Peer {
    socket: UdpSocket,
    local: u16,
    port: u16,
    /// Callisto's tag, once it answered.
    to_tag: String,
}

impl Peer {
    /// A request of ours in the dialog (or the INVITE that opens it, before Callisto's tag).
    fn request(&self, method: &str, cseq: u32, branch: &str, body: Option<&str>) -> String {
        let (local, port) = (self.local, self.port);
        let tag = if self.to_tag.is_empty() {
            String::new()
        } else {
            format!(";tag={}", self.to_tag)
        };
        let body_headers = body.map_or(String::new(), |_| {
            "Content-Type: application/sdp\r\n".to_owned()
        });
        let body = body.unwrap_or_default();
        format!(
            "{method} sip:bob@127.0.0.1:{port} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK-{branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:peer@127.0.0.1:{local}>;tag=peer1\r\n\
             To: <sip:bob@127.0.0.1:{port}>{tag}\r\n\
             Call-ID: {CALL_ID}\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:peer@127.0.0.1:{local}>\r\n\
             {body_headers}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    async fn send(&self, text: &str) -> std::io::Result<()> {
        self.socket
            .send_to(text.as_bytes(), ("127.0.0.1", self.port))
            .await
            .map(|_| ())
    }

    /// The next message from Callisto, or `None` after `WAIT`.
    async fn next(&self) -> Option<SipMessage> {
        let mut buffer = vec![0u8; 65_536];
        let received = tokio::time::timeout(WAIT, self.socket.recv_from(&mut buffer)).await;
        let (len, from) = received.ok()?.ok()?;
        let text = String::from_utf8_lossy(&buffer[..len]).into_owned();
        Some(SipMessage { text, from })
    }

    /// The final responses to our requests with CSeq `cseq`, by method, in `methods`' order;
    /// `Err` when one does not come.
    async fn finals(&self, cseq: u32, methods: &[&str]) -> Result<Vec<SipMessage>, String> {
        let mut found: Vec<Option<SipMessage>> = methods.iter().map(|_| None).collect();
        while found.iter().any(Option::is_none) {
            let message = self
                .next()
                .await
                .ok_or(format!("no answer to CSeq {cseq}"))?;
            if message.status().is_none_or(|s| s < 200) {
                continue;
            }
            let cseq_text = message.header("CSeq").unwrap_or_default();
            if let Some(i) = methods
                .iter()
                .position(|m| cseq_text == format!("{cseq} {m}"))
            {
                found[i] = Some(message);
            }
        }
        Ok(found.into_iter().flatten().collect())
    }

    /// A re-INVITE with `offer` answered 200: its answer, once ACKed.
    async fn reinvite(&self, cseq: u32, offer: &str) -> Result<String, String> {
        let branch = format!("re{cseq}");
        let invite = self.request("INVITE", cseq, &branch, Some(offer));
        self.send(&invite).await.map_err(|e| e.to_string())?;
        let ok = self.finals(cseq, &["INVITE"]).await?.remove(0);
        let ack = self.request("ACK", cseq, &format!("ack{cseq}"), None);
        self.send(&ack).await.map_err(|e| e.to_string())?;
        match ok.status() {
            Some(200) => Ok(ok.body().to_owned()),
            other => Err(format!("re-INVITE {cseq} answered {other:?}")),
        }
    }

    /// Answers Callisto's request `request` with 200 and `body`.
    async fn ok(&self, request: &SipMessage, body: &str) -> std::io::Result<()> {
        self.respond(request, "200 OK", "", body).await
    }

    /// Answers Callisto's request `request` with `status`, the header lines `headers` (each
    /// ending in CRLF) and `body`.
    async fn respond(
        &self,
        request: &SipMessage,
        status: &str,
        headers: &str,
        body: &str,
    ) -> std::io::Result<()> {
        let mut response = format!("SIP/2.0 {status}\r\n{headers}");
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            for value in request.headers(name) {
                response.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        response.push_str(&format!(
            "Contact: <sip:peer@127.0.0.1:{}>\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{body}",
            self.local,
            body.len()
        ));
        self.send(&response).await
    }
}

/// Audio packets `session` receives over the next 400 ms.
async fn receiving(session: &WebRtcSession) -> u64 {
    let received = |s: &WebRtcSession| s.stats().audio.map_or(0, |a| a.rx_packets);
    let before = received(session);
    tokio::time::sleep(Duration::from_millis(400)).await;
    received(session) - before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_invite_the_peer_cancels_is_undone_and_the_call_goes_on_both_ways() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut bob = Callisto::answer(
        dir.path(),
        "127.0.0.1:0",
        &["--audio", "tone:440", "--video", "none", "--count", "1"],
    )?;
    let port = bob.listening_port(WAIT)?;
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    let mut peer = Peer {
        local: socket.local_addr()?.port(),
        socket,
        port,
        to_tag: String::new(),
    };
    let format = AudioFormat::MONO_48K;
    let media = WebRtcMedia {
        audio_source: Box::new(ToneSource::with_dbfs(format, 880.0, -12.0)),
        audio_sink: Box::new(MemorySink::new(format)),
        video: None,
    };
    let session = WebRtcSession::new(WebRtcConfig::loopback(), media).await?;

    // The call: our offer, Callisto's answer, ICE and DTLS.
    let offer = session.create_offer().await?;
    peer.send(&peer.request("INVITE", 1, "inv1", Some(&offer)))
        .await?;
    let ok = peer.finals(1, &["INVITE"]).await?.remove(0);
    assert_eq!(ok.status(), Some(200), "{}", ok.text);
    peer.to_tag = to_tag(&ok);
    peer.send(&peer.request("ACK", 1, "ack1", None)).await?;
    session.apply_answer(ok.body()).await?;
    session.wait_connected().await?;

    // The hold is cancelled at once, without waiting for a provisional response as RFC 3261
    // §9.1 asks of a peer: Callisto answers 100 Trying only after 200 ms, and this stands in
    // for an answer that takes that long. Until the CANCEL wins the race, the hold that went
    // through is taken back and the peer tries again.
    let mut cseq = 2;
    let mut lost = 0;
    loop {
        if lost == ATTEMPTS {
            return Err(
                format!("Callisto answered {ATTEMPTS} re-INVITEs before their CANCEL").into(),
            );
        }
        let hold = session.hold_offer(true).await?;
        let branch = format!("re{cseq}");
        peer.send(&peer.request("INVITE", cseq, &branch, Some(&hold)))
            .await?;
        peer.send(&peer.request("CANCEL", cseq, &branch, None))
            .await?;
        let finals = peer.finals(cseq, &["INVITE", "CANCEL"]).await?;
        if finals[0].status() == Some(487) {
            assert_eq!(finals[1].status(), Some(200), "{}", finals[1].text);
            // The ACK for a non-2xx final response is the INVITE's (same branch).
            peer.send(&peer.request("ACK", cseq, &branch, None)).await?;
            session.cancel_reoffer().await?;
            cseq += 1;
            break;
        }
        // Callisto's answer came first: the hold is the call's, and is taken back.
        lost += 1;
        peer.send(&peer.request("ACK", cseq, &format!("ack{cseq}"), None))
            .await?;
        session.apply_reanswer(finals[0].body()).await?;
        let resume = session.hold_offer(false).await?;
        let answer = peer.reinvite(cseq + 1, &resume).await?;
        session.apply_reanswer(&answer).await?;
        cseq += 2;
    }

    // Callisto offers the call as it wants it: both ways. The first two such offers are
    // refused; Callisto makes it again about 2 s after each.
    let refusal = "488 Not Acceptable Here";
    let why = "Warning: 304 peer \"no two-way audio just now\"\r\n";
    let mut refused: Vec<String> = Vec::new();
    let mut refused_at = None;
    let mut waits = Vec::new();
    let restated = loop {
        let message = peer.next().await.ok_or("no offer from Callisto")?;
        if message.method() != Some("INVITE") {
            continue;
        }
        let cseq = message.header("CSeq").unwrap_or_default().to_owned();
        if !refused.contains(&cseq) {
            if let Some(at) = refused_at {
                waits.push(std::time::Instant::now().duration_since(at));
            }
            if refused.len() == 2 {
                break message;
            }
            refused.push(cseq);
            refused_at = Some(std::time::Instant::now());
        }
        // The offer, or a retransmission of one refused already.
        peer.respond(&message, refusal, why, "").await?;
    };
    // Not at once: a refusal that passes (the peer busy) is given time to.
    assert!(
        waits.len() == 2 && waits.iter().all(|w| *w >= Duration::from_millis(1500)),
        "{waits:?}"
    );
    assert!(
        restated.body().contains("a=sendrecv") && !restated.body().contains("a=recvonly"),
        "{}",
        restated.text
    );
    let answer = session.accept_reoffer(restated.body()).await?;
    peer.ok(&restated, &answer).await?;
    // Callisto's INVITE may come again before our 200 reaches it: only the ACK ends it.
    loop {
        let message = peer.next().await.ok_or("no ACK")?;
        if message.method() == Some("ACK") {
            break;
        }
        assert!(message.method() == Some("INVITE"), "{}", message.text);
        peer.ok(&message, &answer).await?;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let heard = receiving(&session).await;
    assert!(heard >= 10, "{heard} packets from Callisto in 400 ms");

    // A hold asked for on Callisto's side and refused is reported each time, the same
    // refusal or not.
    for _ in 0..2 {
        bob.control("hold")?;
        let hold = loop {
            let message = peer.next().await.ok_or("no hold offer from Callisto")?;
            if message.method() == Some("INVITE") {
                break message;
            }
        };
        assert!(hold.body().contains("a=sendonly"), "{}", hold.text);
        peer.respond(&hold, refusal, why, "").await?;
        // Until Callisto's ACK, a retransmission of the INVITE is refused again.
        loop {
            let message = peer.next().await.ok_or("no ACK for the refusal")?;
            match message.method() {
                Some("ACK") => break,
                Some("INVITE") => peer.respond(&message, refusal, why, "").await?,
                _ => {}
            }
        }
    }

    peer.send(&peer.request("BYE", cseq, &format!("bye{cseq}"), None))
        .await?;
    let bye = peer.finals(cseq, &["BYE"]).await?.remove(0);
    assert_eq!(bye.status(), Some(200), "{}", bye.text);
    session.close().await;

    let ended = bob.expect("call_ended", WAIT)?;
    assert!(
        ended["audio"]["rx_packets"].as_u64().unwrap_or(0) > 0,
        "{ended}"
    );
    // Only the holds that went through were reported, and the refusals with their words: the
    // restated offer's once (the same offer of Callisto's own refused again is not news),
    // each refused hold.
    assert_eq!(bob.seen("held").len(), lost as usize, "{}", bob.stderr());
    let refusals = bob.seen("change_refused");
    assert_eq!(refusals.len(), 3, "{refusals:?}");
    assert!(
        refusals
            .iter()
            .all(|r| r["code"] == 488 && r["warning"] == "no two-way audio just now"),
        "{refusals:?}"
    );
    assert!(bob.wait(WAIT)?.success(), "{}", bob.stderr());
    Ok(())
}
