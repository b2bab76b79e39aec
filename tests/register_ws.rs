//! `callisto register` over SIP over WebSocket (RFC 7118) against a real Kamailio on loopback:
//! WS and WSS with digest authentication, the `sip` subprotocol, a `.invalid` Contact with
//! `transport=ws`, recovery of the flow when the connection drops (through a forwarder the test
//! cuts, and across a registrar restart), and the unregister on shutdown.

mod support;

use std::error::Error;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::kamailio::{Kamailio, KamailioConfig};
use support::tcp_proxy::TcpProxy;

type TestResult = Result<(), Box<dyn Error>>;

const CALLISTO: &str = env!("CARGO_BIN_EXE_callisto");

/// Kamailio with a WS listener and a WSS listener (test PKI), user alice / secret.
fn kamailio(self_signed: bool) -> Result<Kamailio, Box<dyn Error>> {
    Ok(Kamailio::start(KamailioConfig {
        ws_port: Some(support::free_port()),
        wss_port: Some(support::free_port()),
        tls_port: None,
        tls_self_signed: self_signed,
        ..KamailioConfig::default()
    })?)
}

fn ws_port(kamailio: &Kamailio) -> u16 {
    kamailio.config().ws_port.unwrap_or_default()
}

/// `callisto register` with an isolated config file and data dir.
fn register_command(dir: &std::path::Path) -> Command {
    let mut command = Command::new(CALLISTO);
    command
        .arg("--config")
        .arg(dir.join("callisto.toml"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("register")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .env_remove("CALLISTO_LOG");
    command
}

fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !condition() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn events(lines: &[serde_json::Value]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l["event"].as_str().map(String::from))
        .collect()
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn register_once(registrar: &str, extra: &[&str]) -> Result<Output, Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    Ok(register_command(dir.path())
        .args(["--user", "sip:alice@127.0.0.1", "--password", "secret"])
        .args(["--registrar", registrar, "--once", "--json"])
        .args(extra)
        .output()?)
}

/// Checks a `--once` run: registered then unregistered, every REGISTER over `proto`, digest
/// answered, the saved Contact a `.invalid` host with `transport=ws`.
fn assert_registered_once(kamailio: &Kamailio, output: &Output, proto: &str) {
    assert_eq!(output.status.code(), Some(0), "{}", describe(output));
    let lines = json_lines(output);
    assert_eq!(
        events(&lines),
        vec!["registered", "unregistered"],
        "{}",
        describe(output)
    );
    let contact = lines[0]["contact"].as_str().unwrap_or("");
    assert!(
        contact.starts_with("sip:alice@") && contact.ends_with(".invalid;transport=ws"),
        "{contact}"
    );
    assert!(wait_until(Duration::from_secs(2), || {
        kamailio.saved().last().and_then(|s| s.expires.clone()) == Some("0".into())
    }));
    let registers = kamailio.registers();
    assert!(
        registers.len() >= 3,
        "challenge, credentials, unregister: {registers:?}"
    );
    assert!(registers.iter().all(|r| r.proto == proto), "{registers:?}");
    assert!(registers[0].authorization.is_none());
    assert!(registers[1].authorization.is_some(), "{registers:?}");
    let saved = kamailio.saved();
    let first = saved[0].contact.clone().unwrap_or_default();
    assert!(
        first.contains(".invalid;transport=ws>") && first.contains("+sip.instance="),
        "Kamailio saved {first}"
    );
    let bindings = kamailio.bindings();
    assert!(
        bindings[0].contact.ends_with(".invalid;transport=ws"),
        "{bindings:?}"
    );
}

#[test]
fn registers_over_ws_with_digest_and_unregisters() -> TestResult {
    let kamailio = kamailio(false)?;
    let registrar = format!("sip:127.0.0.1:{};transport=ws", ws_port(&kamailio));
    let output = register_once(&registrar, &[])?;
    assert_registered_once(&kamailio, &output, "ws");
    Ok(())
}

#[test]
fn registers_over_a_ws_url_with_its_path() -> TestResult {
    let kamailio = kamailio(false)?;
    let proxy = TcpProxy::start(SocketAddr::from(([127, 0, 0, 1], ws_port(&kamailio))))?;
    let registrar = format!("ws://127.0.0.1:{}/sip", proxy.addr().port());
    let output = register_once(&registrar, &[])?;
    assert_registered_once(&kamailio, &output, "ws");
    let request = proxy.client_head(0);
    assert!(request.starts_with("GET /sip HTTP/1.1\r\n"), "{request}");
    Ok(())
}

#[test]
fn registers_over_wss_trusting_the_test_ca() -> TestResult {
    let kamailio = kamailio(false)?;
    let port = kamailio.config().wss_port.ok_or("no WSS port")?;
    let ca = kamailio.ca_pem_path().ok_or("no CA")?.to_path_buf();
    let registrar = format!("sip:127.0.0.1:{port};transport=wss");
    let ca = ca.to_string_lossy().into_owned();
    let output = register_once(&registrar, &["--ca-file", &ca])?;
    assert_registered_once(&kamailio, &output, "wss");
    Ok(())
}

#[test]
fn refuses_a_wss_server_whose_certificate_is_not_trusted() -> TestResult {
    let kamailio = kamailio(true)?;
    let port = kamailio.config().wss_port.ok_or("no WSS port")?;
    let ca = kamailio
        .ca_pem_path()
        .ok_or("no CA")?
        .to_string_lossy()
        .into_owned();
    let registrar = format!("sip:127.0.0.1:{port};transport=wss");
    let output = register_once(&registrar, &["--ca-file", &ca])?;
    assert_eq!(output.status.code(), Some(4), "{}", describe(&output));
    let lines = json_lines(&output);
    assert_eq!(lines[0]["kind"], "insecure", "{}", describe(&output));
    assert!(
        kamailio.registers().is_empty(),
        "nothing sent to an untrusted server"
    );
    Ok(())
}

#[test]
fn the_sip_subprotocol_is_asked_for_and_granted() -> TestResult {
    let kamailio = kamailio(false)?;
    let proxy = TcpProxy::start(SocketAddr::from(([127, 0, 0, 1], ws_port(&kamailio))))?;
    let registrar = format!("sip:127.0.0.1:{};transport=ws", proxy.addr().port());
    let output = register_once(&registrar, &["--ws-path", "/sip-ws"])?;
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let request = proxy.client_head(0).to_ascii_lowercase();
    let response = proxy.server_head(0).to_ascii_lowercase();
    assert!(request.starts_with("get /sip-ws http/1.1\r\n"), "{request}");
    assert!(
        request.contains("\r\nsec-websocket-protocol: sip\r\n"),
        "{request}"
    );
    assert!(response.starts_with("http/1.1 101"), "{response}");
    assert!(
        response.contains("\r\nsec-websocket-protocol: sip\r\n"),
        "{response}"
    );
    Ok(())
}

/// A running `callisto register` whose JSON lines arrive on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<serde_json::Value>,
    _dir: tempfile::TempDir,
}

impl Running {
    fn start(registrar: &str, config: &str) -> Result<Running, Box<dyn Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("callisto.toml"), config)?;
        let mut child = register_command(dir.path())
            .args(["--user", "sip:alice@127.0.0.1", "--password", "secret"])
            .args(["--registrar", registrar, "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str(&line) {
                    if tx.send(value).is_err() {
                        break;
                    }
                }
            }
        });
        Ok(Running {
            child,
            lines: rx,
            _dir: dir,
        })
    }

    /// Waits for an event named `name`, skipping others.
    fn expect(&self, name: &str, timeout: Duration) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line["event"] == name => return line,
                Ok(_) => continue,
                Err(_) => panic!("no '{name}' event within {timeout:?}"),
            }
        }
    }

    fn terminate(&mut self) -> ExitStatus {
        // SIGTERM: the documented way to stop a registered session.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        self.child.wait().expect("callisto exits")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn a_dropped_websocket_is_reconnected_and_registered_again() -> TestResult {
    let kamailio = kamailio(false)?;
    let proxy = TcpProxy::start(SocketAddr::from(([127, 0, 0, 1], ws_port(&kamailio))))?;
    let registrar = format!("sip:127.0.0.1:{};transport=ws", proxy.addr().port());
    let mut running = Running::start(&registrar, "")?;
    let first = running.expect("registered", Duration::from_secs(5));
    assert!(kamailio.wait_for_saved(1, Duration::from_secs(2)));

    let dropped_at = Instant::now();
    proxy.drop_connections();
    // The binding has 300 s left: only the drop can make Callisto register again now.
    let again = running.expect("registered", Duration::from_secs(5));
    let recovered = dropped_at.elapsed();
    assert!(
        kamailio.wait_for_saved(2, Duration::from_secs(2)),
        "{:?}",
        kamailio.saved()
    );
    assert_eq!(proxy.accepted(), 2, "one new connection");
    assert_eq!(
        again["contact"], first["contact"],
        "the Contact survives the reconnection"
    );
    // The same Contact updated the binding instead of adding a second one: after each save
    // the AOR has exactly one binding, the same.
    assert!(wait_until(Duration::from_secs(2), || kamailio
        .bindings()
        .len()
        >= 2));
    let bindings = kamailio.bindings();
    assert_eq!(bindings.len(), 2, "{bindings:?}");
    assert_eq!(bindings[0].contact, bindings[1].contact, "{bindings:?}");
    eprintln!("registered again {recovered:?} after the drop");

    // On shutdown the binding is removed over the new connection.
    let status = running.terminate();
    assert_eq!(status.code(), Some(0));
    assert!(
        wait_until(Duration::from_secs(3), || {
            kamailio.saved().last().and_then(|s| s.expires.clone()) == Some("0".into())
        }),
        "{:?}",
        kamailio.saved()
    );
    let registers = kamailio.registers();
    assert!(registers.iter().all(|r| r.proto == "ws"), "{registers:?}");
    Ok(())
}

/// Sends an OPTIONS for alice to Kamailio over UDP and returns the status line of the answer.
fn options_for_alice(kamailio: &Kamailio) -> Result<String, Box<dyn Error>> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(Duration::from_secs(5)))?;
    let local = socket.local_addr()?;
    let port = kamailio.config().udp_port;
    let request = format!(
        "OPTIONS sip:alice@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-ws-options;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@127.0.0.1>;tag=probe\r\n\
         To: <sip:alice@127.0.0.1>\r\n\
         Call-ID: ws-options@127.0.0.1\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    socket.send_to(request.as_bytes(), ("127.0.0.1", port))?;
    let mut buffer = [0u8; 4096];
    loop {
        let len = socket.recv(&mut buffer)?;
        let reply = String::from_utf8_lossy(&buffer[..len]).into_owned();
        let status = reply.lines().next().unwrap_or_default().to_owned();
        // Skip a 100 Trying from the proxy.
        if !status.starts_with("SIP/2.0 1") {
            return Ok(status);
        }
    }
}

#[test]
fn requests_for_the_binding_reach_callisto_over_its_websocket() -> TestResult {
    let kamailio = kamailio(false)?;
    let registrar = format!("sip:127.0.0.1:{};transport=ws", ws_port(&kamailio));
    let mut running = Running::start(&registrar, "")?;
    running.expect("registered", Duration::from_secs(5));
    // The Contact names a .invalid host: only the registering connection reaches Callisto,
    // and the OPTIONS Kamailio relays there is answered.
    let status = options_for_alice(&kamailio)?;
    assert!(
        status.starts_with("SIP/2.0 200"),
        "{status}\n{}",
        kamailio.log_tail(20)
    );
    let relayed = |lines: &[String]| {
        lines.iter().any(|line| {
            line.contains("CALLISTO-REPLY|")
                && line.contains("|status=200|")
                && line.contains("|method=OPTIONS|")
                && line.contains("|origin=relay|")
        })
    };
    assert!(
        kamailio.wait_for(relayed, Duration::from_secs(2)),
        "Callisto's answer came back through the proxy:\n{}",
        kamailio.log_tail(20)
    );
    assert_eq!(running.terminate().code(), Some(0));
    Ok(())
}

#[test]
fn registers_again_after_the_websocket_registrar_restarts() -> TestResult {
    let mut kamailio = kamailio(false)?;
    let registrar = format!("sip:127.0.0.1:{};transport=ws", ws_port(&kamailio));
    let running = Running::start(&registrar, "")?;
    running.expect("registered", Duration::from_secs(5));
    kamailio.restart()?;
    assert!(
        kamailio.saved().is_empty(),
        "the restarted registrar starts empty"
    );
    // The connection died with the old process; Callisto reconnects (retrying with backoff
    // while the new process starts) and answers the new registrar's challenge.
    running.expect("registered", Duration::from_secs(15));
    assert!(kamailio.wait_for_saved(1, Duration::from_secs(2)));
    Ok(())
}
