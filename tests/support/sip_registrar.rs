//! A scripted registrar on one UDP socket: it answers every REGISTER with what the test says
//! (a refusal Kamailio would not give, or a plain `200 OK`), can challenge every INVITE sent
//! through it, and keeps what it answered.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use super::sip_uas::SipMessage;

/// What the registrar answers a request with: a status line such as `403 Forbidden` and extra
/// header lines; `None` leaves the request unanswered.
type Answer = Box<dyn Fn(&SipMessage) -> Option<(String, Vec<String>)> + Send>;

/// The registrar; it stops when dropped.
pub struct ScriptedRegistrar {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<SipMessage>>>,
    running: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ScriptedRegistrar {
    /// Answers every REGISTER with `status` (`403 Forbidden`) and no other header.
    pub fn refusing(status: &str) -> io::Result<ScriptedRegistrar> {
        let status = status.to_owned();
        Self::start(Box::new(move |request| {
            is_register(request).then(|| (status.clone(), Vec::new()))
        }))
    }

    /// Answers every REGISTER with `200 OK`, granting its Contact `expires` seconds (0 for a
    /// REGISTER that asks for 0).
    pub fn granting(expires: u32) -> io::Result<ScriptedRegistrar> {
        Self::start(Box::new(move |request| {
            is_register(request).then(|| grant(request, expires))
        }))
    }

    /// As [`ScriptedRegistrar::granting`], and answers every INVITE sent through it with a
    /// `401` digest challenge that no password meets: the registrar of an account whose
    /// password is good for registering and refused for calls.
    pub fn granting_and_challenging_calls(expires: u32) -> io::Result<ScriptedRegistrar> {
        Self::start(Box::new(move |request| match request.method() {
            Some("REGISTER") => Some(grant(request, expires)),
            Some("INVITE") => Some((
                "401 Unauthorized".to_owned(),
                vec![format!(
                    "WWW-Authenticate: Digest realm=\"callisto-test\", nonce=\"n{}\", qop=\"auth\"",
                    request.header("CSeq").unwrap_or_default().replace(' ', "-")
                )],
            )),
            _ => None,
        }))
    }

    fn start(answer: Answer) -> io::Result<ScriptedRegistrar> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        let addr = socket.local_addr()?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let running = Arc::new(AtomicBool::new(true));
        let thread = {
            let (received, running) = (received.clone(), running.clone());
            std::thread::spawn(move || {
                let mut buffer = vec![0u8; 65_536];
                while running.load(Ordering::Acquire) {
                    let Ok((len, from)) = socket.recv_from(&mut buffer) else {
                        continue;
                    };
                    let request = SipMessage {
                        text: String::from_utf8_lossy(&buffer[..len]).into_owned(),
                        from,
                    };
                    let Some((status, extra)) = answer(&request) else {
                        continue;
                    };
                    let response = reply(&request, &status, &extra);
                    // Kept before it is answered: a client that exits on the answer finds it.
                    received
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(request);
                    let _ = socket.send_to(response.as_bytes(), from);
                }
            })
        };
        Ok(ScriptedRegistrar {
            addr,
            received,
            running,
            thread: Some(thread),
        })
    }

    /// `sip:127.0.0.1:PORT`, for `--registrar`.
    pub fn uri(&self) -> String {
        format!("sip:127.0.0.1:{}", self.addr.port())
    }

    /// The REGISTERs answered so far.
    pub fn registers(&self) -> Vec<SipMessage> {
        self.answered("REGISTER")
    }

    /// The requests of `method` answered so far.
    pub fn answered(&self, method: &str) -> Vec<SipMessage> {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|request| request.method() == Some(method))
            .cloned()
            .collect()
    }
}

impl Drop for ScriptedRegistrar {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn is_register(request: &SipMessage) -> bool {
    request.method() == Some("REGISTER")
}

/// `200 OK` for a REGISTER: its Contact as sent, with `expires` instead of the expiry it asked
/// for (0 when it asks for 0).
fn grant(request: &SipMessage, expires: u32) -> (String, Vec<String>) {
    let contact: Vec<&str> = request
        .header("Contact")
        .unwrap_or_default()
        .split(';')
        .filter(|p| !p.trim().to_ascii_lowercase().starts_with("expires="))
        .collect();
    let granted = if asks_for_removal(request) {
        0
    } else {
        expires
    };
    (
        "200 OK".to_owned(),
        vec![format!("Contact: {};expires={granted}", contact.join(";"))],
    )
}

/// Whether a REGISTER asks to remove its binding (`Expires: 0`; Callisto sends the header in
/// every REGISTER).
pub fn asks_for_removal(request: &SipMessage) -> bool {
    request.header("Expires") == Some("0")
}

/// A response to `request`: its Via lines (as sent: no `received` or `rport` value, so the
/// client sees no NAT), From, To with a tag, Call-ID and CSeq, then `extra`.
fn reply(request: &SipMessage, status: &str, extra: &[String]) -> String {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for via in request.headers("Via") {
        out.push_str(&format!("Via: {via}\r\n"));
    }
    for name in ["From", "Call-ID", "CSeq"] {
        let value = request.header(name).unwrap_or_default();
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!(
        "To: {};tag=scripted\r\n",
        request.header("To").unwrap_or_default()
    ));
    for line in extra {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}
