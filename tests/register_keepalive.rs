//! A registered UDP account keeps its NAT binding open with double-CRLF keep-alives
//! (RFC 5626 §4.4.2), checked against a minimal registrar written in the test.

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CALLISTO: &str = env!("CARGO_BIN_EXE_callisto");

fn header<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .unwrap_or("")
}

#[test]
fn udp_registrations_send_double_crlf_keepalives() {
    let registrar = UdpSocket::bind("127.0.0.1:0").unwrap();
    registrar
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = registrar.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("callisto.toml"),
        "[transport]\nkeepalive_secs = 1\n",
    )
    .unwrap();
    let mut child = Command::new(CALLISTO)
        .arg("--config")
        .arg(dir.path().join("callisto.toml"))
        .args([
            "register",
            "--user",
            "sip:carol@127.0.0.1",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--registrar", &format!("sip:127.0.0.1:{port}"), "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(6);
    let (mut registers, mut keepalives) = (0, 0);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline && keepalives < 2 {
        let Ok((len, from)) = registrar.recv_from(&mut buf) else {
            continue;
        };
        let text = String::from_utf8_lossy(&buf[..len]).to_string();
        if text == "\r\n\r\n" {
            keepalives += 1;
            continue;
        }
        assert!(text.starts_with("REGISTER "), "{text}");
        registers += 1;
        let contact = header(&text, "Contact");
        let uri = &contact[..contact.find('>').map_or(contact.len(), |i| i + 1)];
        let reply = format!(
            "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=t1\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: {uri};expires=300\r\nContent-Length: 0\r\n\r\n",
            header(&text, "Via"),
            header(&text, "From"),
            header(&text, "To"),
            header(&text, "Call-ID"),
            header(&text, "CSeq"),
        );
        registrar.send_to(reply.as_bytes(), from).unwrap();
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(registers, 1, "registered once, no refresh needed yet");
    assert!(keepalives >= 2, "keep-alives seen: {keepalives}");
}
