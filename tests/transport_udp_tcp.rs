//! UDP and TCP transports on 127.0.0.1: round trips, framing across writes, connection reuse,
//! keep-alives and the size limit.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use callisto::transport::{
    Incoming, Target, TransportConfig, TransportError, TransportEvent, TransportKind, Transports,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

fn options(branch: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK{branch}\r\n\
         Call-ID: {branch}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: 11\r\n\
         \r\n\
         hello\r\nbody"
    )
    .into_bytes()
}

async fn start(config: TransportConfig) -> (Transports, mpsc::Receiver<TransportEvent>) {
    Transports::bind(config).await.expect("bind on 127.0.0.1")
}

async fn next_event(events: &mut mpsc::Receiver<TransportEvent>) -> TransportEvent {
    timeout(WAIT, events.recv())
        .await
        .expect("an event in time")
        .expect("the transports are running")
}

async fn next_message(events: &mut mpsc::Receiver<TransportEvent>) -> Incoming {
    match next_event(events).await {
        TransportEvent::Message(incoming) => incoming,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// Reads from a raw stream until `expected` bytes have arrived.
async fn read_exactly(stream: &mut TcpStream, expected: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; expected];
    timeout(WAIT, stream.read_exact(&mut bytes))
        .await
        .expect("bytes in time")
        .expect("read");
    bytes
}

fn tcp_target(transports: &Transports) -> Target {
    Target::new(
        TransportKind::Tcp,
        transports
            .local_addr(TransportKind::Tcp)
            .expect("TCP is on"),
    )
}

#[tokio::test]
async fn udp_round_trip_between_two_transports() {
    let (alice, mut alice_events) = start(TransportConfig::default()).await;
    let (bob, mut bob_events) = start(TransportConfig::default()).await;
    let bob_udp = bob.local_addr(TransportKind::Udp).expect("UDP is on");
    let alice_udp = alice.local_addr(TransportKind::Udp).expect("UDP is on");
    assert_eq!(
        alice_udp.port(),
        alice
            .local_addr(TransportKind::Tcp)
            .expect("TCP is on")
            .port(),
        "UDP and TCP share the port"
    );

    let request = Bytes::from(options("udp1"));
    alice
        .send(
            Target::new(TransportKind::Udp, bob_udp),
            None,
            request.clone(),
        )
        .await
        .expect("send");
    let incoming = next_message(&mut bob_events).await;
    assert_eq!(incoming.bytes, request);
    assert_eq!(incoming.source, Target::new(TransportKind::Udp, alice_udp));
    assert_eq!(incoming.local, bob_udp);

    let response = Bytes::from_static(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    bob.send(incoming.source, None, response.clone())
        .await
        .expect("reply");
    let reply = next_message(&mut alice_events).await;
    assert_eq!(reply.bytes, response);
    assert_eq!(reply.source, Target::new(TransportKind::Udp, bob_udp));

    // A keep-alive datagram is not a message.
    alice
        .send_keepalive(Target::new(TransportKind::Udp, bob_udp))
        .await
        .expect("keep-alive");
    alice
        .send(
            Target::new(TransportKind::Udp, bob_udp),
            None,
            request.clone(),
        )
        .await
        .expect("send");
    assert_eq!(next_message(&mut bob_events).await.bytes, request);
}

#[tokio::test]
async fn a_tcp_message_split_across_writes_arrives_whole_and_the_reply_reuses_the_connection() {
    let (server, mut events) = start(TransportConfig::default()).await;
    let mut client = TcpStream::connect(tcp_target(&server).addr)
        .await
        .expect("connect");
    let client_addr = client.local_addr().expect("address");
    let request = options("split");
    for piece in [&request[..7], &request[7..60], &request[60..]] {
        client.write_all(piece).await.expect("write");
        client.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let incoming = next_message(&mut events).await;
    assert_eq!(incoming.bytes, Bytes::from(request));
    assert_eq!(
        incoming.source,
        Target::new(TransportKind::Tcp, client_addr)
    );

    let response = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n";
    server
        .send(incoming.source, None, Bytes::from_static(response))
        .await
        .expect("reply on the accepted connection");
    assert_eq!(read_exactly(&mut client, response.len()).await, response);
}

#[tokio::test]
async fn two_messages_in_one_tcp_write_are_two_events() {
    let (server, mut events) = start(TransportConfig::default()).await;
    let mut client = TcpStream::connect(tcp_target(&server).addr)
        .await
        .expect("connect");
    let mut both = options("one");
    both.extend_from_slice(&options("two"));
    client.write_all(&both).await.expect("write");
    assert_eq!(
        next_message(&mut events).await.bytes,
        Bytes::from(options("one"))
    );
    assert_eq!(
        next_message(&mut events).await.bytes,
        Bytes::from(options("two"))
    );
}

#[tokio::test]
async fn sends_to_one_tcp_target_share_one_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let peer = Target::new(TransportKind::Tcp, listener.local_addr().expect("address"));
    let (client, _events) = start(TransportConfig::default()).await;

    client
        .send(peer, None, Bytes::from(options("first")))
        .await
        .expect("first send connects");
    let (mut accepted, _) = timeout(WAIT, listener.accept())
        .await
        .expect("a connection")
        .expect("accept");
    client
        .send(peer, None, Bytes::from(options("second")))
        .await
        .expect("second send");
    assert!(client.is_connected(peer));

    let mut expected = options("first");
    expected.extend_from_slice(&options("second"));
    assert_eq!(read_exactly(&mut accepted, expected.len()).await, expected);
    let second_connection = timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(second_connection.is_err(), "a second connection was opened");
}

#[tokio::test]
async fn tcp_between_two_transports_keeps_the_source_for_replies() {
    let (alice, mut alice_events) = start(TransportConfig::default()).await;
    let (bob, mut bob_events) = start(TransportConfig::default()).await;
    alice
        .send(tcp_target(&bob), None, Bytes::from(options("a1")))
        .await
        .expect("send");
    alice
        .send(tcp_target(&bob), None, Bytes::from(options("a2")))
        .await
        .expect("send");
    let first = next_message(&mut bob_events).await;
    let second = next_message(&mut bob_events).await;
    assert_eq!(first.source, second.source, "one connection");
    assert_eq!(second.bytes, Bytes::from(options("a2")));

    bob.send(first.source, None, Bytes::from(options("b1")))
        .await
        .expect("reply");
    let reply = next_message(&mut alice_events).await;
    assert_eq!(reply.bytes, Bytes::from(options("b1")));
    assert_eq!(reply.source, tcp_target(&bob));
}

#[tokio::test]
async fn a_keepalive_ping_is_answered_with_a_pong() {
    let (server, mut events) = start(TransportConfig::default()).await;
    let mut client = TcpStream::connect(tcp_target(&server).addr)
        .await
        .expect("connect");
    client.write_all(b"\r\n\r\n").await.expect("ping");
    assert_eq!(read_exactly(&mut client, 2).await, b"\r\n");
    // The connection still carries messages afterwards.
    client.write_all(&options("after")).await.expect("write");
    assert_eq!(
        next_message(&mut events).await.bytes,
        Bytes::from(options("after"))
    );
}

/// A client pinging every 100 ms (pongs due within `pong_timeout`) connected to a raw TCP
/// peer by a first request, which the peer has read: the client (keep it), its events, the
/// peer's target and its end of the connection.
async fn pinging_client(
    pong_timeout: Duration,
) -> (
    Transports,
    mpsc::Receiver<TransportEvent>,
    Target,
    TcpStream,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let peer = Target::new(TransportKind::Tcp, listener.local_addr().expect("address"));
    let config = TransportConfig {
        keepalive_interval: Some(Duration::from_millis(100)),
        keepalive_pong_timeout: pong_timeout,
        ..TransportConfig::default()
    };
    let (client, events) = start(config).await;
    let request = options("ka");
    client
        .send(peer, None, Bytes::from(request.clone()))
        .await
        .expect("send");
    let (mut accepted, _) = listener.accept().await.expect("accept");
    assert_eq!(read_exactly(&mut accepted, request.len()).await, request);
    (client, events, peer, accepted)
}

#[tokio::test]
async fn idle_connections_send_pings_and_report_pongs() {
    let (_client, mut events, peer, mut accepted) = pinging_client(Duration::from_secs(10)).await;
    assert_eq!(read_exactly(&mut accepted, 4).await, b"\r\n\r\n");
    accepted.write_all(b"\r\n").await.expect("pong");
    match next_event(&mut events).await {
        TransportEvent::KeepAlivePong { target } => assert_eq!(target, peer),
        other => panic!("expected a pong, got {other:?}"),
    }
}

/// RFC 5626 §4.4.1: a peer that answered a ping and then leaves one unanswered for the pong
/// timeout has lost the flow: the connection closes (and the registration above it registers
/// again). A peer that never answered a ping is not held to it.
#[tokio::test]
async fn a_ping_left_unanswered_by_a_peer_that_answered_before_closes_the_connection() {
    let (_client, mut events, peer, mut accepted) =
        pinging_client(Duration::from_millis(300)).await;
    // Pings that get no answer at all: the connection stays.
    assert_eq!(read_exactly(&mut accepted, 4).await, b"\r\n\r\n");
    assert_eq!(read_exactly(&mut accepted, 4).await, b"\r\n\r\n");
    assert_eq!(read_exactly(&mut accepted, 4).await, b"\r\n\r\n");
    accepted.write_all(b"\r\n").await.expect("pong");
    match next_event(&mut events).await {
        TransportEvent::KeepAlivePong { target } => assert_eq!(target, peer),
        other => panic!("expected a pong, got {other:?}"),
    }
    // The next ping goes unanswered, the socket open: the flow is taken for dead.
    assert_eq!(read_exactly(&mut accepted, 4).await, b"\r\n\r\n");
    let sent = std::time::Instant::now();
    match next_event(&mut events).await {
        TransportEvent::ConnectionClosed { target, reason } => {
            assert_eq!(target, peer);
            assert!(reason.contains("keep-alive"), "{reason}");
        }
        other => panic!("expected the connection to close, got {other:?}"),
    }
    assert!(
        sent.elapsed() >= Duration::from_millis(250),
        "{:?}",
        sent.elapsed()
    );
}

#[tokio::test]
async fn an_oversized_message_closes_the_connection() {
    let config = TransportConfig {
        max_message_size: 1024,
        ..TransportConfig::default()
    };
    let (server, mut events) = start(config).await;
    let mut client = TcpStream::connect(tcp_target(&server).addr)
        .await
        .expect("connect");
    let client_addr = client.local_addr().expect("address");
    client
        .write_all(b"MESSAGE sip:b@127.0.0.1 SIP/2.0\r\nContent-Length: 5000\r\n\r\n")
        .await
        .expect("write");
    match next_event(&mut events).await {
        TransportEvent::ConnectionClosed { target, reason } => {
            assert_eq!(target, Target::new(TransportKind::Tcp, client_addr));
            assert!(reason.contains("limit"), "{reason}");
        }
        other => panic!("expected the connection to close, got {other:?}"),
    }
    let mut rest = Vec::new();
    let read = timeout(WAIT, client.read_to_end(&mut rest))
        .await
        .expect("EOF in time");
    assert!(
        read.is_err() || rest.is_empty(),
        "the server closed the stream"
    );

    let too_big = Bytes::from(vec![b'x'; 2000]);
    let refused = server
        .send(Target::new(TransportKind::Tcp, client_addr), None, too_big)
        .await;
    assert!(matches!(
        refused,
        Err(TransportError::TooLarge {
            size: 2000,
            limit: 1024
        })
    ));
}

#[tokio::test]
async fn connecting_to_a_closed_port_is_an_error_not_a_hang() {
    let closed: SocketAddr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address")
    };
    let (client, _events) = start(TransportConfig::default()).await;
    let result = timeout(
        WAIT,
        client.send(
            Target::new(TransportKind::Tcp, closed),
            None,
            Bytes::from(options("x")),
        ),
    )
    .await
    .expect("no hang");
    assert!(matches!(result, Err(TransportError::Io(_))), "{result:?}");
    let ws = client
        .send(
            Target::new(TransportKind::Ws, closed),
            None,
            Bytes::from(options("x")),
        )
        .await;
    assert!(matches!(ws, Err(TransportError::Io(_))), "{ws:?}");
}
