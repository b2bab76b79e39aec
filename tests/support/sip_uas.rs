//! A scripted SIP user agent on one UDP socket, for checking how the proxy routes between
//! transports and for peers that misbehave or lack a feature: it registers with digest, calls
//! out (INVITE, ACK), answers one INVITE with the SDP a test writes (e.g. [`webrtc_audio_answer`],
//! which carries no media: no ICE candidates, so the offerer's ICE just waits), keeps the dialog
//! the RFC 3261 way (route set from Record-Route, remote target from Contact) and sends a BYE
//! along it; in a call it placed it sends any request in the dialog (INFO, BYE), and it answers
//! what it receives with the status (or, to a re-INVITE, the SDP) a test picks. Requests and replies are written by hand so a
//! test sees every header the proxy touched.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};

/// A received SIP message: its first line and raw text.
#[derive(Debug, Clone)]
pub struct SipMessage {
    /// The whole message as text.
    pub text: String,
    /// Where it came from.
    pub from: SocketAddr,
}

impl SipMessage {
    /// The start line (`INVITE sip:… SIP/2.0` or `SIP/2.0 200 OK`).
    pub fn start_line(&self) -> &str {
        self.text.lines().next().unwrap_or_default()
    }

    /// The request method, or `None` for a response.
    pub fn method(&self) -> Option<&str> {
        let first = self.start_line();
        (!first.starts_with("SIP/2.0")).then(|| first.split(' ').next().unwrap_or_default())
    }

    /// The response status, or `None` for a request.
    pub fn status(&self) -> Option<u16> {
        self.start_line()
            .strip_prefix("SIP/2.0 ")?
            .get(..3)?
            .parse()
            .ok()
    }

    /// Every value of header `name` (full name; comma-joined values are not split), in order.
    pub fn headers(&self, name: &str) -> Vec<&str> {
        self.text
            .split("\r\n\r\n")
            .next()
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter_map(|line| {
                let (header, value) = line.split_once(':')?;
                header
                    .trim()
                    .eq_ignore_ascii_case(name)
                    .then_some(value.trim())
            })
            .collect()
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers(name).into_iter().next()
    }

    /// The URI of the Contact header (inside `<>` when it has them); empty when there is none.
    pub fn contact_uri(&self) -> &str {
        let contact = self.header("Contact").unwrap_or_default();
        contact
            .split_once('<')
            .and_then(|(_, rest)| rest.split_once('>'))
            .map_or(contact, |(uri, _)| uri)
    }

    /// The body after the blank line.
    pub fn body(&self) -> &str {
        self.text
            .split_once("\r\n\r\n")
            .map(|(_, body)| body)
            .unwrap_or_default()
    }

    /// The port of the first `m=KIND` line of the SDP body.
    pub fn media_port(&self, kind: &str) -> Option<u16> {
        let prefix = format!("m={kind} ");
        self.body()
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|rest| rest.split(' ').next())
            .and_then(|port| port.parse().ok())
    }
}

/// The port a URI ends with (`sip:conference@127.0.0.1:5080` → 5080).
pub fn port_of(uri: &str) -> Option<u16> {
    uri.rsplit(':').next().and_then(|port| port.parse().ok())
}

/// The dialog a [`ScriptedUas`] accepted.
#[derive(Debug, Clone)]
pub struct AcceptedCall {
    /// The INVITE as it arrived.
    pub invite: SipMessage,
    /// Our To tag.
    pub local_tag: String,
}

/// The dialog a [`ScriptedUas`] set up by calling out.
#[derive(Debug, Clone)]
pub struct PlacedCall {
    /// The 2xx that answered the INVITE.
    pub answer: SipMessage,
}

/// The user agent. Every wait is bounded by the socket's read timeout.
pub struct ScriptedUas {
    socket: UdpSocket,
    proxy: SocketAddr,
    user: String,
    cseq: u32,
}

impl ScriptedUas {
    /// Binds a socket on 127.0.0.1 for `user`, whose proxy/registrar listens on UDP `proxy_port`.
    pub fn bind(user: &str, proxy_port: u16) -> io::Result<ScriptedUas> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        Ok(ScriptedUas {
            socket,
            proxy: SocketAddr::from(([127, 0, 0, 1], proxy_port)),
            user: user.to_owned(),
            cseq: 0,
        })
    }

    /// The port the agent's socket is bound to.
    pub fn local_port(&self) -> io::Result<u16> {
        Ok(self.socket.local_addr()?.port())
    }

    fn port(&self) -> u16 {
        self.socket.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    fn send(&self, text: &str, to: SocketAddr) -> io::Result<()> {
        self.socket.send_to(text.as_bytes(), to).map(|_| ())
    }

    /// The next message satisfying `wanted` within `timeout`; others are dropped.
    pub fn receive(
        &self,
        timeout: Duration,
        mut wanted: impl FnMut(&SipMessage) -> bool,
    ) -> io::Result<SipMessage> {
        let deadline = Instant::now() + timeout;
        let mut buffer = vec![0u8; 65_536];
        while Instant::now() < deadline {
            match self.socket.recv_from(&mut buffer) {
                Ok((len, from)) => {
                    let message = SipMessage {
                        text: String::from_utf8_lossy(&buffer[..len]).into_owned(),
                        from,
                    };
                    if wanted(&message) {
                        return Ok(message);
                    }
                }
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(error) => return Err(error),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no such SIP message in time",
        ))
    }

    /// Registers `<sip:user@127.0.0.1:port>` with `password` (MD5 digest, qop=auth).
    pub fn register(&mut self, password: &str, timeout: Duration) -> io::Result<()> {
        let uri = format!("sip:127.0.0.1:{}", self.proxy.port());
        let challenge = self.send_register(&uri, None, timeout)?;
        let header = challenge
            .header("WWW-Authenticate")
            .ok_or_else(|| io::Error::other(format!("no challenge: {}", challenge.text)))?;
        let authorization = digest_authorization(header, &self.user, password, "REGISTER", &uri)
            .ok_or_else(|| io::Error::other(format!("unusable challenge: {header}")))?;
        let reply = self.send_register(&uri, Some(&authorization), timeout)?;
        if reply.status() == Some(200) {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "REGISTER refused: {}",
                reply.text
            )))
        }
    }

    fn send_register(
        &mut self,
        uri: &str,
        authorization: Option<&str>,
        timeout: Duration,
    ) -> io::Result<SipMessage> {
        self.cseq += 1;
        let port = self.port();
        let user = &self.user;
        let cseq = self.cseq;
        let mut request = format!(
            "REGISTER {uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-uas-reg-{cseq};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@127.0.0.1>;tag=uas{port}\r\n\
             To: <sip:{user}@127.0.0.1>\r\n\
             Call-ID: uas-reg-{port}@127.0.0.1\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Contact: <sip:{user}@127.0.0.1:{port}>\r\n\
             Expires: 300\r\n"
        );
        if let Some(authorization) = authorization {
            request.push_str(&format!("Authorization: {authorization}\r\n"));
        }
        request.push_str("Content-Length: 0\r\n\r\n");
        self.send(&request, self.proxy)?;
        self.receive(timeout, |message| {
            message.status().is_some_and(|status| status >= 200)
                && message.header("CSeq") == Some(&format!("{cseq} REGISTER"))
        })
    }

    /// Waits for an INVITE, rings, answers it with `answer_sdp(offer)` and waits for the ACK,
    /// retransmitting the 200 (T1 doubling) until it comes.
    pub fn accept_call(
        &mut self,
        timeout: Duration,
        answer_sdp: impl FnOnce(&str) -> String,
    ) -> io::Result<AcceptedCall> {
        let invite = self.receive(timeout, |message| message.method() == Some("INVITE"))?;
        let local_tag = format!("uas-{}", self.port());
        let ringing = self.reply(&invite, "180 Ringing", &local_tag, None);
        self.send(&ringing, invite.from)?;
        let ok = self.reply(
            &invite,
            "200 OK",
            &local_tag,
            Some(&answer_sdp(invite.body())),
        );
        let call_id = invite.header("Call-ID").unwrap_or_default().to_owned();
        let mut wait = Duration::from_millis(500);
        let deadline = Instant::now() + timeout;
        loop {
            self.send(&ok, invite.from)?;
            match self.receive(wait, |message| {
                message.method() == Some("ACK") && message.header("Call-ID") == Some(&call_id)
            }) {
                Ok(_) => return Ok(AcceptedCall { invite, local_tag }),
                Err(_) if Instant::now() < deadline => {
                    wait = (wait * 2).min(Duration::from_secs(4))
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn reply(&self, request: &SipMessage, status: &str, tag: &str, sdp: Option<&str>) -> String {
        let mut reply = format!("SIP/2.0 {status}\r\n");
        for via in request.headers("Via") {
            reply.push_str(&format!("Via: {via}\r\n"));
        }
        for record_route in request.headers("Record-Route") {
            reply.push_str(&format!("Record-Route: {record_route}\r\n"));
        }
        let to = request.header("To").unwrap_or_default();
        let to = if to.contains(";tag=") {
            to.to_owned()
        } else {
            format!("{to};tag={tag}")
        };
        reply.push_str(&format!(
            "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n",
            request.header("From").unwrap_or_default(),
            request.header("Call-ID").unwrap_or_default(),
            request.header("CSeq").unwrap_or_default(),
        ));
        if request.method() == Some("INVITE") {
            reply.push_str(&format!(
                "Contact: <sip:{}@127.0.0.1:{}>\r\n",
                self.user,
                self.port()
            ));
        }
        match sdp {
            Some(sdp) => reply.push_str(&format!(
                "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
                sdp.len()
            )),
            None => reply.push_str("Content-Length: 0\r\n\r\n"),
        }
        reply
    }

    /// Sends a BYE in `call`'s dialog (Request-URI the caller's Contact, Route the
    /// Record-Route set in order) to the proxy, and waits for its final response.
    pub fn hang_up(&mut self, call: &AcceptedCall, timeout: Duration) -> io::Result<SipMessage> {
        let invite = &call.invite;
        let target = invite.contact_uri();
        let port = self.port();
        let mut bye = format!(
            "BYE {target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-uas-bye-{port};rport\r\n\
             Max-Forwards: 70\r\n"
        );
        for record_route in invite.headers("Record-Route") {
            bye.push_str(&format!("Route: {record_route}\r\n"));
        }
        bye.push_str(&format!(
            "From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
            format_args!(
                "{};tag={}",
                invite.header("To").unwrap_or_default(),
                call.local_tag
            ),
            invite.header("From").unwrap_or_default(),
            invite.header("Call-ID").unwrap_or_default(),
        ));
        self.send(&bye, self.proxy)?;
        self.receive(timeout, |message| {
            message.status().is_some_and(|status| status >= 200)
                && message.header("CSeq") == Some("1 BYE")
        })
    }

    /// Sends an INVITE for `uri` with `offer` straight to the proxy address (no
    /// authentication), retransmitting it (T1 doubling) until a response comes, and ACKs the
    /// 2xx once (Request-URI its Contact, sent to the same address, no route set: for a
    /// direct call). Any other final response is an error.
    pub fn place_call(
        &mut self,
        uri: &str,
        offer: &str,
        timeout: Duration,
    ) -> io::Result<PlacedCall> {
        self.cseq += 1;
        let (port, user, cseq) = (self.port(), self.user.clone(), self.cseq);
        let call_id = format!("uas-call-{port}-{cseq}@127.0.0.1");
        let invite = format!(
            "INVITE {uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-uas-inv-{cseq};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@127.0.0.1:{port}>;tag=uac{port}\r\n\
             To: <{uri}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} INVITE\r\n\
             Contact: <sip:{user}@127.0.0.1:{port}>\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{offer}",
            offer.len()
        );
        let deadline = Instant::now() + timeout;
        let mut wait = Duration::from_millis(500);
        let mut answered = false;
        let answer = loop {
            if !answered {
                self.send(&invite, self.proxy)?;
            }
            let reply = self.receive(wait, |message| {
                message.status().is_some() && message.header("Call-ID") == Some(&call_id)
            });
            match reply {
                Ok(reply) if reply.status().is_some_and(|status| status >= 200) => break reply,
                Ok(_) => answered = true,
                Err(_) if Instant::now() < deadline => {
                    wait = (wait * 2).min(Duration::from_secs(4))
                }
                Err(error) => return Err(error),
            }
        };
        if answer.status() != Some(200) {
            return Err(io::Error::other(format!(
                "INVITE refused: {}",
                answer.start_line()
            )));
        }
        self.ack(answer.contact_uri(), &answer, cseq)?;
        Ok(PlacedCall { answer })
    }

    /// Sends `method` (with `body` as `(content type, text)`) in the dialog of a call this
    /// agent placed: Request-URI the callee's Contact, From and To as the 2xx has them, the
    /// next CSeq, no route set (for a direct call, as [`ScriptedUas::place_call`]'s ACK); sent
    /// once to the proxy address, which is the callee itself. Waits for its final response.
    pub fn request_in_dialog(
        &mut self,
        call: &PlacedCall,
        method: &str,
        body: Option<(&str, &str)>,
        timeout: Duration,
    ) -> io::Result<SipMessage> {
        self.cseq += 1;
        let (port, cseq) = (self.port(), self.cseq);
        let answer = &call.answer;
        let target = answer.contact_uri();
        let (content_type, text) = body.unwrap_or(("", ""));
        let mut request = format!(
            "{method} {target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-uas-{cseq};rport\r\n\
             Max-Forwards: 70\r\n\
             From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n",
            answer.header("From").unwrap_or_default(),
            answer.header("To").unwrap_or_default(),
            answer.header("Call-ID").unwrap_or_default(),
        );
        if body.is_some() {
            request.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n{text}", text.len()));
        self.send(&request, self.proxy)?;
        let expected = format!("{cseq} {method}");
        self.receive(timeout, |message| {
            message.status().is_some_and(|status| status >= 200)
                && message.header("CSeq") == Some(&expected)
        })
    }

    /// Sends a re-INVITE with `offer` in the dialog of a call this agent placed, as
    /// [`ScriptedUas::request_in_dialog`] sends a request, and ACKs its 2xx; returns the
    /// final response.
    pub fn reinvite(
        &mut self,
        call: &PlacedCall,
        offer: &str,
        timeout: Duration,
    ) -> io::Result<SipMessage> {
        let reply =
            self.request_in_dialog(call, "INVITE", Some(("application/sdp", offer)), timeout)?;
        if reply
            .status()
            .is_some_and(|status| (200..300).contains(&status))
        {
            self.ack(call.answer.contact_uri(), &reply, self.cseq)?;
        }
        Ok(reply)
    }

    /// ACKs the 2xx `answer` to the INVITE numbered `cseq`: Request-URI `target`, From, To
    /// and Call-ID as the 2xx has them, sent once to the proxy address.
    fn ack(&self, target: &str, answer: &SipMessage, cseq: u32) -> io::Result<()> {
        let port = self.port();
        let ack = format!(
            "ACK {target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-uas-ack-{cseq};rport\r\n\
             Max-Forwards: 70\r\n\
             From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} ACK\r\n\
             Content-Length: 0\r\n\r\n",
            answer.header("From").unwrap_or_default(),
            answer.header("To").unwrap_or_default(),
            answer.header("Call-ID").unwrap_or_default(),
        );
        self.send(&ack, self.proxy)
    }

    /// Answers `request` (as received) with `status`, e.g. `"200 OK"`.
    pub fn respond(&self, request: &SipMessage, status: &str) -> io::Result<()> {
        let reply = self.reply(request, status, "", None);
        self.send(&reply, request.from)
    }

    /// Answers an in-dialog INVITE (as received) with 200 and `sdp` (the ACK that follows
    /// is the caller's to read or leave).
    pub fn answer_reinvite(&self, request: &SipMessage, sdp: &str) -> io::Result<()> {
        let reply = self.reply(request, "200 OK", "", Some(sdp));
        self.send(&reply, request.from)
    }

    /// Refuses `request` (as received) with `status` and a `Warning` header of `warning`
    /// (`code agent "text"`).
    pub fn refuse(&self, request: &SipMessage, status: &str, warning: &str) -> io::Result<()> {
        let reply = self.reply(request, status, "", None);
        let (status_line, rest) = reply.split_once("\r\n").unwrap_or((&reply, ""));
        let reply = format!("{status_line}\r\nWarning: {warning}\r\n{rest}");
        self.send(&reply, request.from)
    }

    /// Answers a BYE that arrives within `timeout` with 200 and returns it.
    pub fn accept_bye(&mut self, timeout: Duration) -> io::Result<SipMessage> {
        let bye = self.receive(timeout, |message| message.method() == Some("BYE"))?;
        let ok = self.reply(&bye, "200 OK", "", None);
        self.send(&ok, bye.from)?;
        Ok(bye)
    }
}

/// An RFC 2617 MD5 Authorization value (qop=auth) answering `challenge`.
pub fn digest_authorization(
    challenge: &str,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
) -> Option<String> {
    let param = |name: &str| -> Option<String> {
        challenge
            .strip_prefix("Digest")?
            .split(',')
            .find_map(|param| {
                let (key, value) = param.trim().split_once('=')?;
                (key.trim() == name).then(|| value.trim().trim_matches('"').to_owned())
            })
    };
    let hex = |input: String| -> String {
        Md5::digest(input.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    };
    let realm = param("realm")?;
    let nonce = param("nonce")?;
    let (cnonce, nc) = ("5e11a7c0", "00000001");
    let ha1 = hex(format!("{user}:{realm}:{password}"));
    let ha2 = hex(format!("{method}:{uri}"));
    let response = hex(format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
    Some(format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{response}\", algorithm=MD5, qop=auth, nc={nc}, cnonce=\"{cnonce}\""
    ))
}

/// A WebRTC answer (ICE, DTLS fingerprint, rtcp-mux, BUNDLE, Opus) to an audio-only browser
/// offer, naming the offer's `a=mid`. It has no candidates: the browser's ICE agent waits, and
/// no media flows; it exists so the SIP dialog can be set up and torn down.
pub fn webrtc_audio_answer(offer: &str) -> String {
    let mid = offer
        .lines()
        .find_map(|line| line.strip_prefix("a=mid:"))
        .unwrap_or("0")
        .trim();
    let fingerprint: Vec<String> = (0u8..32).map(|byte| format!("{byte:02X}")).collect();
    format!(
        "v=0\r\n\
         o=- 1 1 IN IP4 127.0.0.1\r\n\
         s=-\r\n\
         t=0 0\r\n\
         a=group:BUNDLE {mid}\r\n\
         m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
         c=IN IP4 0.0.0.0\r\n\
         a=mid:{mid}\r\n\
         a=ice-ufrag:scrp\r\n\
         a=ice-pwd:scriptedscriptedscripted\r\n\
         a=fingerprint:sha-256 {}\r\n\
         a=setup:active\r\n\
         a=rtcp-mux\r\n\
         a=sendrecv\r\n\
         a=rtpmap:111 opus/48000/2\r\n",
        fingerprint.join(":")
    )
}
