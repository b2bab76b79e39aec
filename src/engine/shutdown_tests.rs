//! The engine when the application drops its handle without asking it to stop: it stops, but
//! first finishes what it owes the network — here the CANCEL of a call it placed, which waits
//! for the callee's first provisional response (RFC 3261 §9.1) — so it must go on reading the
//! network and its timers while its command channel is closed.

use std::net::UdpSocket;
use std::time::Duration;

use callisto_signaling::transaction::TimerConfig;
use callisto_signaling::transport::{Target, TransportKind};

use super::{start, Command, EngineConfig, MediaOptions, OutgoingCall};
use crate::transport::TransportConfig;

/// The header lines of `message` named `name` (no compact forms: the engine sends full names).
fn headers<'a>(message: &'a str, name: &str) -> Vec<&'a str> {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    message
        .lines()
        .filter(|line| line.to_ascii_lowercase().starts_with(&prefix))
        .collect()
}

/// A `code` response to `invite`, with a To tag.
fn response(invite: &str, code: u16, reason: &str) -> String {
    let mut text = format!("SIP/2.0 {code} {reason}\r\n");
    for name in ["Via", "From", "Call-ID", "CSeq"] {
        for line in headers(invite, name) {
            text.push_str(line);
            text.push_str("\r\n");
        }
    }
    let to = headers(invite, "To")[0];
    text.push_str(&format!("{to};tag=callee\r\nContent-Length: 0\r\n\r\n"));
    text
}

fn receive(socket: &UdpSocket) -> (String, std::net::SocketAddr) {
    let mut buffer = [0; 4096];
    let (len, from) = socket
        .recv_from(&mut buffer)
        .expect("a SIP message in time");
    (String::from_utf8_lossy(&buffer[..len]).into_owned(), from)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_handle_still_sends_the_cancel_it_owes() {
    let callee = UdpSocket::bind("127.0.0.1:0").unwrap();
    callee
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let engine = start(EngineConfig {
        transport: TransportConfig::default(),
        timers: TimerConfig::default(),
        shutdown_grace: Duration::from_secs(10),
    })
    .await
    .unwrap();
    let local_sip = engine.local_udp.unwrap();
    let callee_addr = callee.local_addr().unwrap();
    let to: rsip::Uri = format!("sip:bob@{callee_addr}")
        .as_str()
        .try_into()
        .unwrap();
    let call = OutgoingCall {
        from: "sip:alice@127.0.0.1".try_into().unwrap(),
        to,
        target: Target::new(TransportKind::Udp, callee_addr),
        local_sip,
        credentials: None,
        contact_host: None,
        media: MediaOptions::default(),
    };
    let key = engine.new_call_key();
    engine
        .commands
        .send(Command::Call {
            key,
            account: None,
            call: Box::new(call),
        })
        .unwrap();
    let (invite, engine_addr) = receive(&callee);
    assert!(invite.starts_with("INVITE "), "{invite}");

    // The application goes away: the call is hung up, and its CANCEL waits for a provisional.
    drop(engine);
    tokio::time::sleep(Duration::from_millis(300)).await;
    callee
        .send_to(response(&invite, 180, "Ringing").as_bytes(), engine_addr)
        .unwrap();
    let cancel = loop {
        let (message, _) = receive(&callee);
        if !message.starts_with("INVITE ") {
            break message;
        }
    };
    assert!(cancel.starts_with("CANCEL "), "{cancel}");
}
