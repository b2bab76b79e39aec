//! The WebSocket transport (RFC 7118) against a tokio-tungstenite server in the test, on
//! 127.0.0.1: the `sip` subprotocol, one SIP message per frame, the size limit, WebSocket
//! pings and pongs, and how a closed or silent connection is reported.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use callisto::transport::{
    Target, TransportConfig, TransportError, TransportEvent, TransportKind, Transports,
};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const WAIT: Duration = Duration::from_secs(5);
const REQUEST: &str = "OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\nCall-ID: ws1\r\n\r\n";
const RESPONSE: &str = "SIP/2.0 200 OK\r\nCall-ID: ws1\r\n\r\n";

/// What the server saw of the opening handshake.
#[derive(Debug, Default, Clone)]
struct Upgrade {
    path: String,
    host: String,
    protocol: String,
}

/// A server that accepts one WebSocket and answers the upgrade with `protocol` (none when
/// `None`). The handshake it saw lands in the returned slot.
async fn server(
    protocol: Option<&'static str>,
) -> (
    SocketAddr,
    Arc<Mutex<Upgrade>>,
    tokio::task::JoinHandle<Option<WebSocketStream<TcpStream>>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let seen = Arc::new(Mutex::new(Upgrade::default()));
    let slot = Arc::clone(&seen);
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.ok()?;
        // The error type is tungstenite's `ErrorResponse`, an HTTP response.
        #[allow(clippy::result_large_err)]
        let callback = move |request: &Request, mut response: Response| {
            let header = |name: &str| {
                request
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            *slot.lock().unwrap() = Upgrade {
                path: request.uri().path().to_owned(),
                host: header("Host"),
                protocol: header("Sec-WebSocket-Protocol"),
            };
            if let Some(protocol) = protocol {
                response
                    .headers_mut()
                    .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(protocol));
            }
            Ok(response)
        };
        tokio_tungstenite::accept_hdr_async(tcp, callback)
            .await
            .ok()
    });
    (addr, seen, task)
}

async fn client(config: TransportConfig) -> (Transports, mpsc::Receiver<TransportEvent>) {
    let config = TransportConfig {
        enable_udp: false,
        enable_tcp: false,
        ..config
    };
    Transports::bind(config).await.expect("transports")
}

async fn next_event(events: &mut mpsc::Receiver<TransportEvent>) -> TransportEvent {
    timeout(WAIT, events.recv())
        .await
        .expect("an event in time")
        .expect("the channel is open")
}

async fn next_text(ws: &mut WebSocketStream<TcpStream>) -> Message {
    loop {
        let message = timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("the stream is open")
            .expect("a valid frame");
        if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
            return message;
        }
    }
}

/// Connects a client to a `sip`-speaking server, and returns both ends.
async fn connected(
    config: TransportConfig,
) -> (
    Transports,
    mpsc::Receiver<TransportEvent>,
    Target,
    WebSocketStream<TcpStream>,
) {
    let (addr, _, task) = server(Some("sip")).await;
    let (transports, events) = client(config).await;
    let target = Target::new(TransportKind::Ws, addr);
    transports
        .send(target, None, Bytes::from_static(REQUEST.as_bytes()))
        .await
        .expect("sent");
    let mut ws = task.await.expect("server task").expect("upgraded");
    assert_eq!(next_text(&mut ws).await, Message::text(REQUEST));
    (transports, events, target, ws)
}

#[tokio::test]
async fn messages_travel_one_per_frame_over_the_sip_subprotocol() {
    let (addr, seen, task) = server(Some("sip")).await;
    let (transports, mut events) = client(TransportConfig::default()).await;
    let target = Target::new(TransportKind::Ws, addr);
    transports.set_websocket_path(target, "/sip");
    transports
        .send(target, None, Bytes::from_static(REQUEST.as_bytes()))
        .await
        .expect("sent");
    let mut ws = task.await.expect("server task").expect("upgraded");
    let upgrade = seen.lock().unwrap().clone();
    assert_eq!(upgrade.path, "/sip");
    assert_eq!(upgrade.protocol, "sip");
    assert_eq!(upgrade.host, addr.to_string());
    assert_eq!(next_text(&mut ws).await, Message::text(REQUEST));

    // Two messages in two frames, text and binary, are two events from the same source.
    ws.send(Message::text(RESPONSE)).await.expect("text");
    ws.send(Message::binary(RESPONSE.as_bytes().to_vec()))
        .await
        .expect("binary");
    for _ in 0..2 {
        match next_event(&mut events).await {
            TransportEvent::Message(incoming) => {
                assert_eq!(incoming.bytes, RESPONSE.as_bytes());
                assert_eq!(incoming.source, target);
            }
            other => panic!("expected a message, got {other:?}"),
        }
    }
    // An RFC 5626 double-CRLF ping is answered with a CRLF and is not a message.
    ws.send(Message::text("\r\n\r\n")).await.expect("ping");
    assert_eq!(next_text(&mut ws).await, Message::text("\r\n"));

    // The next request reuses the connection.
    assert!(transports.is_connected(target));
    transports
        .send(target, None, Bytes::from_static(REQUEST.as_bytes()))
        .await
        .expect("sent");
    assert_eq!(next_text(&mut ws).await, Message::text(REQUEST));
    assert!(events.try_recv().is_err(), "nothing else was reported");
}

#[tokio::test]
async fn a_server_that_does_not_agree_to_sip_is_a_clear_error() {
    for protocol in [None, Some("xmpp")] {
        let (addr, seen, _task) = server(protocol).await;
        let (transports, _events) = client(TransportConfig::default()).await;
        let target = Target::new(TransportKind::Ws, addr);
        let result = transports
            .send(target, None, Bytes::from_static(REQUEST.as_bytes()))
            .await;
        let Err(TransportError::WebSocket { reason, .. }) = &result else {
            panic!("expected a WebSocket error, got {result:?}");
        };
        assert!(
            reason.contains("did not accept the 'sip' WebSocket subprotocol"),
            "{reason}"
        );
        assert_eq!(seen.lock().unwrap().protocol, "sip", "it was asked for");
        assert!(!transports.is_connected(target));
    }
}

#[tokio::test]
async fn an_oversized_message_is_dropped_and_a_huge_frame_ends_the_connection() {
    let config = TransportConfig {
        max_message_size: 1024,
        ..TransportConfig::default()
    };
    let (transports, mut events, target, mut ws) = connected(config).await;
    let oversized = format!("{RESPONSE}{}", "x".repeat(2000));
    ws.send(Message::text(oversized)).await.expect("sent");
    ws.send(Message::text(RESPONSE)).await.expect("sent");
    match next_event(&mut events).await {
        TransportEvent::Message(incoming) => assert_eq!(incoming.bytes, RESPONSE.as_bytes()),
        other => panic!("the oversized message was not dropped: {other:?}"),
    }
    assert!(
        transports.is_connected(target),
        "a dropped message keeps the connection"
    );
    // Beyond four times the limit the frame is not even read: the connection ends.
    ws.send(Message::binary(vec![b'x'; 5000]))
        .await
        .expect("sent");
    match next_event(&mut events).await {
        TransportEvent::ConnectionClosed {
            target: closed,
            reason,
        } => {
            assert_eq!(closed, target);
            assert!(reason.contains("too large"), "{reason}");
        }
        other => panic!("expected the connection to close, got {other:?}"),
    }
    assert!(!transports.is_connected(target));
}

#[tokio::test]
async fn pings_that_get_pongs_keep_the_connection_and_server_pings_get_pongs() {
    let config = TransportConfig {
        ws_ping_interval: Some(Duration::from_millis(100)),
        ws_pong_timeout: Duration::from_millis(300),
        ..TransportConfig::default()
    };
    let (transports, mut events, target, mut ws) = connected(config).await;
    // Reading answers the client's pings; the server pings too and waits for its pong.
    ws.send(Message::Ping(Bytes::from_static(b"server")))
        .await
        .expect("ping");
    let server = tokio::spawn(async move {
        let mut pinged = 0;
        let mut ponged = false;
        // Each read first sends the pong of the ping before it: four pings read, three answered.
        let deadline = tokio::time::Instant::now() + WAIT;
        while pinged < 4 || !ponged {
            let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, ws.next()).await else {
                break;
            };
            match message {
                Message::Ping(_) => pinged += 1,
                Message::Pong(payload) => ponged |= payload.as_ref() == b"server",
                _ => {}
            }
        }
        (pinged, ponged, ws)
    });
    let mut pongs = 0;
    while pongs < 3 {
        match next_event(&mut events).await {
            TransportEvent::KeepAlivePong { target: from } => {
                assert_eq!(from, target);
                pongs += 1;
            }
            other => panic!("expected pongs only, got {other:?}"),
        }
    }
    assert!(transports.is_connected(target));
    let (pinged, ponged, _ws) = server.await.expect("server");
    assert!(pinged >= 4, "the client pinged {pinged} times");
    assert!(ponged, "the client answered the server's ping");
}

#[tokio::test]
async fn a_ping_without_a_pong_counts_as_a_dropped_connection() {
    let config = TransportConfig {
        ws_ping_interval: Some(Duration::from_millis(100)),
        ws_pong_timeout: Duration::from_millis(300),
        ..TransportConfig::default()
    };
    // The server holds the connection but never reads again, so it never answers a ping.
    let (transports, mut events, target, _silent) = connected(config).await;
    match next_event(&mut events).await {
        TransportEvent::ConnectionClosed {
            target: closed,
            reason,
        } => {
            assert_eq!(closed, target);
            assert!(reason.contains("no answer to a WebSocket ping"), "{reason}");
        }
        other => panic!("expected the connection to count as dropped, got {other:?}"),
    }
    assert!(!transports.is_connected(target));
}

#[tokio::test]
async fn a_close_frame_is_reported_with_its_code_and_reason() {
    let (transports, mut events, target, mut ws) = connected(TransportConfig::default()).await;
    ws.close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "restarting".into(),
    }))
    .await
    .expect("close");
    match next_event(&mut events).await {
        TransportEvent::ConnectionClosed {
            target: closed,
            reason,
        } => {
            assert_eq!(closed, target);
            assert!(
                reason.contains("1001") && reason.contains("restarting"),
                "{reason}"
            );
        }
        other => panic!("expected the close to be reported, got {other:?}"),
    }
    assert!(!transports.is_connected(target));
}
