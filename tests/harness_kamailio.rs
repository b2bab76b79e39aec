//! Self-test of the Kamailio/baresip harness, independent of Callisto's own SIP code: REGISTER
//! exchanges are written by hand over a raw UDP socket, TLS is checked with a plain rustls client.

mod support;

use std::error::Error;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use md5::Md5;
use sha2::{Digest, Sha256};

use support::baresip::{Baresip, BaresipConfig};
use support::kamailio::{DigestAlgorithm, Kamailio, KamailioConfig};
use support::kamailio_cfg::BINDING_MARKER;
use support::logged_child::live_group_members;
use support::pki::root_store_from_pem;

type TestResult = Result<(), Box<dyn Error>>;

const WAIT: Duration = Duration::from_secs(5);

/// A SIP user agent reduced to one UDP socket and hand-written requests.
struct RawUa {
    socket: UdpSocket,
    registrar: SocketAddr,
    user: String,
    call_id: String,
    cseq: u32,
}

/// A parsed response: status code and raw text.
struct Response {
    status: u16,
    text: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.text.lines().find_map(|line| {
            let (header, value) = line.split_once(':')?;
            header
                .trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }
}

impl RawUa {
    fn new(registrar_port: u16, user: &str) -> std::io::Result<RawUa> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(WAIT))?;
        Ok(RawUa {
            registrar: SocketAddr::from(([127, 0, 0, 1], registrar_port)),
            call_id: format!("raw-{}@127.0.0.1", socket.local_addr()?.port()),
            socket,
            user: user.to_owned(),
            cseq: 0,
        })
    }

    fn port(&self) -> u16 {
        self.socket.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    fn registrar_uri(&self) -> String {
        format!("sip:127.0.0.1:{}", self.registrar.port())
    }

    fn contact(&self) -> String {
        format!("<sip:{}@127.0.0.1:{}>", self.user, self.port())
    }

    /// Sends a REGISTER with the given Expires and optional Authorization, returns the reply.
    fn register(&mut self, expires: u32, authorization: Option<&str>) -> std::io::Result<Response> {
        self.cseq += 1;
        let mut request = format!(
            "REGISTER {uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-raw-{cseq};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@127.0.0.1>;tag=raw{port}\r\n\
             To: <sip:{user}@127.0.0.1>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Contact: {contact}\r\n\
             Expires: {expires}\r\n",
            uri = self.registrar_uri(),
            port = self.port(),
            cseq = self.cseq,
            user = self.user,
            call_id = self.call_id,
            contact = self.contact(),
        );
        if let Some(authorization) = authorization {
            request.push_str(&format!("Authorization: {authorization}\r\n"));
        }
        request.push_str("Content-Length: 0\r\n\r\n");
        self.socket.send_to(request.as_bytes(), self.registrar)?;
        self.receive()
    }

    fn receive(&self) -> std::io::Result<Response> {
        let mut buffer = [0u8; 8192];
        let (len, _) = self.socket.recv_from(&mut buffer)?;
        let text = String::from_utf8_lossy(&buffer[..len]).into_owned();
        let status = text
            .strip_prefix("SIP/2.0 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        Ok(Response { status, text })
    }

    /// REGISTER, answer the challenge, return the final response.
    fn register_with_auth(
        &mut self,
        password: &str,
        expires: u32,
    ) -> Result<Response, Box<dyn Error>> {
        let challenge = self.register(expires, None)?;
        assert_eq!(
            challenge.status, 401,
            "expected a challenge:\n{}",
            challenge.text
        );
        let header = challenge
            .header("WWW-Authenticate")
            .ok_or("401 without WWW-Authenticate")?;
        let authorization = authorization(header, &self.user, password, &self.registrar_uri())?;
        Ok(self.register(expires, Some(&authorization))?)
    }
}

/// The value of `name` in a `Digest a="b", c=d` challenge.
fn challenge_param(challenge: &str, name: &str) -> Option<String> {
    let params = challenge.strip_prefix("Digest")?;
    params.split(',').find_map(|param| {
        let (key, value) = param.trim().split_once('=')?;
        (key.trim() == name).then(|| value.trim().trim_matches('"').to_owned())
    })
}

fn hex_digest(algorithm: &str, input: &str) -> String {
    let bytes: Vec<u8> = if algorithm.eq_ignore_ascii_case("SHA-256") {
        Sha256::digest(input.as_bytes()).to_vec()
    } else {
        Md5::digest(input.as_bytes()).to_vec()
    };
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// An RFC 2617/8760 Authorization value (qop=auth) answering `challenge` for a REGISTER.
fn authorization(
    challenge: &str,
    user: &str,
    password: &str,
    uri: &str,
) -> Result<String, Box<dyn Error>> {
    let realm = challenge_param(challenge, "realm").ok_or("no realm")?;
    let nonce = challenge_param(challenge, "nonce").ok_or("no nonce")?;
    let qop = challenge_param(challenge, "qop").ok_or("no qop")?;
    assert_eq!(qop, "auth");
    let algorithm = challenge_param(challenge, "algorithm").unwrap_or_else(|| "MD5".to_owned());
    let cnonce = "0a4f113b";
    let nc = "00000001";
    let ha1 = hex_digest(&algorithm, &format!("{user}:{realm}:{password}"));
    let ha2 = hex_digest(&algorithm, &format!("REGISTER:{uri}"));
    let response = hex_digest(
        &algorithm,
        &format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}"),
    );
    Ok(format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{response}\", algorithm={algorithm}, qop={qop}, nc={nc}, cnonce=\"{cnonce}\""
    ))
}

/// The `expires` parameter of the Contact in a 200 OK to REGISTER.
fn granted_expires(response: &Response) -> Option<u32> {
    let contact = response.header("Contact")?;
    let (_, rest) = contact.split_once("expires=")?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[test]
fn register_is_challenged_then_accepted_with_clamped_expires() -> TestResult {
    let kamailio = Kamailio::start(KamailioConfig::default())?;
    let mut ua = RawUa::new(kamailio.config().udp_port, "alice")?;

    let ok = ua.register_with_auth("secret", 3600)?;
    assert_eq!(ok.status, 200, "expected 200 OK:\n{}", ok.text);
    let contact = ok.header("Contact").ok_or("200 OK without Contact")?;
    assert!(
        contact.contains(&format!("127.0.0.1:{}", ua.port())),
        "{contact}"
    );
    assert_eq!(granted_expires(&ok), Some(300), "max_expires clamps 3600");

    let ok = ua.register_with_auth("secret", 5)?;
    assert_eq!(ok.status, 200, "expected 200 OK:\n{}", ok.text);
    assert_eq!(granted_expires(&ok), Some(30), "min_expires raises 5");

    assert!(
        kamailio.wait_for_saved(2, WAIT),
        "{}",
        kamailio.log_tail(20)
    );
    let registers = kamailio.registers();
    assert_eq!(registers.len(), 4, "two challenged + two authorised");
    assert!(registers[0].authorization.is_none());
    assert!(registers[1]
        .authorization
        .as_deref()
        .is_some_and(|auth| auth.contains("username=\"alice\"")));
    assert_eq!(registers[0].expires.as_deref(), Some("3600"));
    assert_eq!(registers[0].proto, "udp");
    assert_eq!(registers[0].source, format!("127.0.0.1:{}", ua.port()));
    assert_eq!(registers[3].cseq, 4);
    // A save's binding line comes after its saved line, and the two saves may run in different
    // Kamailio workers: wait for both binding lines, and do not rely on their order.
    assert!(
        kamailio.wait_for(
            |lines| {
                lines
                    .iter()
                    .filter(|line| line.contains(BINDING_MARKER))
                    .count()
                    >= 2
            },
            WAIT
        ),
        "{}",
        kamailio.log_tail(20)
    );
    let bindings = kamailio.bindings();
    assert!(
        bindings
            .iter()
            .any(|binding| (29..=30).contains(&binding.expires_in)),
        "{bindings:?}"
    );
    Ok(())
}

#[test]
fn unregister_is_logged_with_expires_zero() -> TestResult {
    let kamailio = Kamailio::start(KamailioConfig::default())?;
    let mut ua = RawUa::new(kamailio.config().udp_port, "alice")?;
    assert_eq!(ua.register_with_auth("secret", 60)?.status, 200);
    let ok = ua.register_with_auth("secret", 0)?;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert!(
        ok.header("Contact").is_none(),
        "no binding left:\n{}",
        ok.text
    );
    assert!(kamailio.wait_for_saved(2, WAIT));
    let saved = kamailio.saved();
    assert_eq!(saved.len(), 2);
    assert_eq!(saved[1].expires.as_deref(), Some("0"));
    assert_eq!(saved[1].aor, "sip:alice@127.0.0.1");
    Ok(())
}

#[test]
fn wrong_password_and_unknown_user_are_challenged_again() -> TestResult {
    let kamailio = Kamailio::start(KamailioConfig::default())?;
    let mut ua = RawUa::new(kamailio.config().udp_port, "alice")?;
    assert_eq!(ua.register_with_auth("wrong", 60)?.status, 401);
    let mut mallory = RawUa::new(kamailio.config().udp_port, "mallory")?;
    assert_eq!(mallory.register_with_auth("secret", 60)?.status, 401);
    assert!(kamailio.saved().is_empty());
    Ok(())
}

#[test]
fn sha256_digest_is_offered_and_accepted() -> TestResult {
    let config = KamailioConfig {
        digest_algorithm: DigestAlgorithm::Sha256,
        users: vec![("bob".to_owned(), "hunter2".to_owned())],
        ..KamailioConfig::default()
    };
    let kamailio = Kamailio::start(config)?;
    let mut ua = RawUa::new(kamailio.config().udp_port, "bob")?;
    let challenge = ua.register(60, None)?;
    let header = challenge.header("WWW-Authenticate").ok_or("no challenge")?;
    assert_eq!(
        challenge_param(header, "algorithm").as_deref(),
        Some("SHA-256"),
        "{header}"
    );
    let authorization = authorization(header, "bob", "hunter2", &ua.registrar_uri())?;
    let ok = ua.register(60, Some(&authorization))?;
    assert_eq!(ok.status, 200, "{}", ok.text);
    Ok(())
}

#[test]
fn brief_expires_can_be_rejected_with_423() -> TestResult {
    let config = KamailioConfig {
        reject_brief_expires: true,
        ..KamailioConfig::default()
    };
    let kamailio = Kamailio::start(config)?;
    let mut ua = RawUa::new(kamailio.config().udp_port, "alice")?;
    let reply = ua.register_with_auth("secret", 5)?;
    assert_eq!(reply.status, 423, "{}", reply.text);
    assert_eq!(reply.header("Min-Expires"), Some("30"));
    Ok(())
}

/// Sends an OPTIONS for `sip:alice@…` from a second socket; Kamailio either relays it to
/// alice's contact (returns true once `ua` receives it) or answers 404 (returns false).
fn options_reaches_alice(kamailio: &Kamailio, ua: &RawUa) -> Result<bool, Box<dyn Error>> {
    let caller = UdpSocket::bind("127.0.0.1:0")?;
    caller.set_read_timeout(Some(WAIT))?;
    let port = caller.local_addr()?.port();
    let request = format!(
        "OPTIONS sip:alice@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-probe-{port};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@127.0.0.1>;tag=probe\r\n\
         To: <sip:alice@127.0.0.1>\r\n\
         Call-ID: probe-{port}@127.0.0.1\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    caller.send_to(
        request.as_bytes(),
        ("127.0.0.1", kamailio.config().udp_port),
    )?;
    ua.socket
        .set_read_timeout(Some(Duration::from_millis(500)))?;
    let relayed = ua.receive();
    ua.socket.set_read_timeout(Some(WAIT))?;
    if let Ok(relayed) = relayed {
        assert!(
            relayed.text.starts_with("OPTIONS sip:alice@127.0.0.1:"),
            "{}",
            relayed.text
        );
        // Answer, so Kamailio's transaction ends and sends no retransmissions to `ua`.
        let mut response = String::from("SIP/2.0 200 OK\r\n");
        for line in relayed.text.lines() {
            let name = line
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if ["via", "from", "to", "call-id", "cseq"].contains(&name.as_str()) {
                response.push_str(line);
                response.push_str("\r\n");
            }
        }
        response.push_str("Content-Length: 0\r\n\r\n");
        ua.socket.send_to(
            response.as_bytes(),
            ("127.0.0.1", kamailio.config().udp_port),
        )?;
        let mut buffer = [0u8; 4096];
        let (len, _) = caller.recv_from(&mut buffer)?;
        let reply = String::from_utf8_lossy(&buffer[..len]);
        assert!(reply.starts_with("SIP/2.0 200"), "{reply}");
        return Ok(true);
    }
    let mut buffer = [0u8; 4096];
    let (len, _) = caller.recv_from(&mut buffer)?;
    let reply = String::from_utf8_lossy(&buffer[..len]);
    assert!(reply.starts_with("SIP/2.0 404"), "{reply}");
    Ok(false)
}

#[test]
fn restart_clears_registrations_and_keeps_ports() -> TestResult {
    let mut kamailio = Kamailio::start(KamailioConfig::default())?;
    let mut ua = RawUa::new(kamailio.config().udp_port, "alice")?;
    assert!(
        !options_reaches_alice(&kamailio, &ua)?,
        "nobody registered yet"
    );
    assert_eq!(ua.register_with_auth("secret", 120)?.status, 200);
    assert!(
        options_reaches_alice(&kamailio, &ua)?,
        "relayed to the binding"
    );

    let old_pid = kamailio.pid().ok_or("not running")?;
    kamailio.restart()?;
    let new_pid = kamailio.pid().ok_or("not running after restart")?;
    assert_ne!(old_pid, new_pid);
    assert!(live_group_members(old_pid).is_empty(), "old run fully gone");
    assert!(kamailio.registers().is_empty(), "fresh log for the new run");
    assert!(!options_reaches_alice(&kamailio, &ua)?, "binding forgotten");
    assert_eq!(ua.register_with_auth("secret", 120)?.status, 200);
    assert!(kamailio
        .all_log_lines()
        .iter()
        .any(|line| line.contains("CALLISTO-SAVED|")));
    Ok(())
}

#[test]
fn stop_leaves_no_kamailio_process() -> TestResult {
    let mut kamailio = Kamailio::start(KamailioConfig::default())?;
    let pid = kamailio.pid().ok_or("not running")?;
    assert!(
        live_group_members(pid).len() > 1,
        "main process and workers"
    );
    kamailio.stop()?;
    assert!(live_group_members(pid).is_empty());
    assert!(kamailio.pid().is_none());
    Ok(())
}

#[test]
fn missing_binary_fails_with_a_clear_error() {
    let config = KamailioConfig {
        binary: Some(PathBuf::from("/nonexistent/kamailio")),
        ..KamailioConfig::default()
    };
    let error = Kamailio::start(config).err().map(|error| error.to_string());
    let message = error.unwrap_or_default();
    assert!(message.contains("kamailio: cannot start"), "{message}");
}

fn tls_client_config(ca_pem: &std::path::Path) -> Result<rustls::ClientConfig, Box<dyn Error>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(root_store_from_pem(ca_pem)?)
        .with_no_client_auth())
}

/// Connects with TLS, sends an OPTIONS and returns the response text.
fn options_over_tls(kamailio: &Kamailio) -> Result<String, Box<dyn Error>> {
    let port = kamailio.config().tls_port.ok_or("no TLS port")?;
    let ca = kamailio.ca_pem_path().ok_or("no CA")?;
    let server_name = rustls::pki_types::ServerName::try_from("127.0.0.1")?;
    let connection = rustls::ClientConnection::new(Arc::new(tls_client_config(ca)?), server_name)?;
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(WAIT))?;
    let local = tcp.local_addr()?;
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    let request = format!(
        "OPTIONS sip:127.0.0.1:{port};transport=tls SIP/2.0\r\n\
         Via: SIP/2.0/TLS {local};branch=z9hG4bK-tls-1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sips:probe@127.0.0.1>;tag=tls\r\n\
         To: <sips:127.0.0.1>\r\n\
         Call-ID: tls-probe@127.0.0.1\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    tls.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    let mut buffer = [0u8; 4096];
    while !response.windows(4).any(|window| window == b"\r\n\r\n") {
        let len = tls.read(&mut buffer)?;
        if len == 0 {
            break;
        }
        response.extend_from_slice(&buffer[..len]);
    }
    Ok(String::from_utf8_lossy(&response).into_owned())
}

#[test]
fn tls_listener_serves_a_client_trusting_the_test_ca() -> TestResult {
    let kamailio = Kamailio::start(KamailioConfig::default())?;
    let response = options_over_tls(&kamailio)?;
    assert!(response.starts_with("SIP/2.0 200 OK"), "{response}");
    Ok(())
}

#[test]
fn self_signed_server_certificate_is_rejected() -> TestResult {
    let config = KamailioConfig {
        tls_self_signed: true,
        ..KamailioConfig::default()
    };
    let kamailio = Kamailio::start(config)?;
    let error = options_over_tls(&kamailio)
        .err()
        .ok_or("handshake with an untrusted server succeeded")?;
    let message = error.to_string();
    assert!(
        message.contains("UnknownIssuer") || message.contains("invalid peer certificate"),
        "{message}"
    );
    Ok(())
}

#[test]
fn baresip_registers_and_the_time_is_measured() -> TestResult {
    let kamailio = Kamailio::start(KamailioConfig::default())?;
    let baresip = Baresip::start(BaresipConfig::registering(
        "alice",
        "secret",
        kamailio.config().udp_port,
        60,
    ))?;
    let to_ok = baresip.wait_for_registered(WAIT)?;
    assert!(
        kamailio.wait_for_saved(1, WAIT),
        "{}",
        kamailio.log_tail(20)
    );
    let saved_at = kamailio
        .first_seen(|line| line.contains("CALLISTO-SAVED|"))
        .ok_or("no save")?;
    let to_saved = saved_at.duration_since(baresip.started_at());
    let first_register_at = kamailio
        .first_seen(|line| line.contains("CALLISTO-REG|"))
        .ok_or("no REGISTER")?;
    let exchange = saved_at.duration_since(first_register_at);
    println!(
        "baresip REGISTER timing: start -> 200 OK {:.1} ms, start -> Kamailio save {:.1} ms, \
         first REGISTER -> save {:.1} ms",
        to_ok.as_secs_f64() * 1e3,
        to_saved.as_secs_f64() * 1e3,
        exchange.as_secs_f64() * 1e3
    );
    let registers = kamailio.registers();
    assert_eq!(registers.len(), 2, "challenge + authorised REGISTER");
    assert!(registers[1].authorization.is_some());
    assert!(to_ok < WAIT);
    Ok(())
}

#[test]
fn websocket_listener_accepts_the_sip_subprotocol() -> TestResult {
    let ws_port = support::free_port();
    let config = KamailioConfig {
        ws_port: Some(ws_port),
        ..KamailioConfig::default()
    };
    let kamailio = Kamailio::start(config)?;
    let mut stream = TcpStream::connect(("127.0.0.1", ws_port))?;
    stream.set_read_timeout(Some(WAIT))?;
    stream.write_all(
        b"GET / HTTP/1.1\r\n\
          Host: 127.0.0.1\r\n\
          Upgrade: websocket\r\n\
          Connection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
          Sec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Protocol: sip\r\n\r\n",
    )?;
    let mut buffer = [0u8; 2048];
    let len = stream.read(&mut buffer)?;
    let response = String::from_utf8_lossy(&buffer[..len]);
    assert!(response.starts_with("HTTP/1.1 101"), "{response}");
    // RFC 6455 example key → accept value.
    assert!(
        response.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "{response}"
    );
    drop(kamailio);
    Ok(())
}

#[test]
fn startup_failure_reports_the_kamailio_log() -> TestResult {
    // Occupy the UDP port so Kamailio cannot bind it and exits during startup.
    let squatter = UdpSocket::bind("127.0.0.1:0")?;
    let port = squatter.local_addr()?.port();
    let config = KamailioConfig {
        udp_port: port,
        tcp_port: support::free_port(),
        ..KamailioConfig::default()
    };
    let message = Kamailio::start(config)
        .err()
        .ok_or("kamailio started on a port in use")?
        .to_string();
    assert!(message.contains("exited during startup"), "{message}");
    assert!(message.contains("last output lines"), "{message}");
    assert!(
        message.contains("bind"),
        "the log tail names the cause: {message}"
    );
    // A failed start keeps its directory for inspection; this failure was on purpose.
    let log = message
        .split("full log: ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .map(PathBuf::from)
        .ok_or("the message names the log file")?;
    assert!(log.is_file(), "{}", log.display());
    std::fs::remove_dir_all(log.parent().ok_or("log without a directory")?)?;
    Ok(())
}
