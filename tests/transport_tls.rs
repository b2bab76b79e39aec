//! The TLS transport against a local tokio-rustls server with certificates from a test CA.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use callisto::transport::{
    Target, TlsClientSettings, TransportConfig, TransportError, TransportEvent, TransportKind,
    Transports,
};
use callisto_signaling::message::framing::{Frame, StreamDeframer};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);
const REQUEST: &[u8] =
    b"OPTIONS sips:bob@localhost SIP/2.0\r\nCall-ID: tls1\r\nContent-Length: 0\r\n\r\n";
const RESPONSE: &[u8] = b"SIP/2.0 200 OK\r\nCall-ID: tls1\r\nContent-Length: 0\r\n\r\n";

struct Pki {
    ca_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// A CA and a server certificate for `localhost` and 127.0.0.1 signed by it.
fn ca_signed() -> Pki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Callisto Test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let server_key = KeyPair::generate().expect("server key");
    let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("server params");
    let server = params
        .signed_by(&server_key, &ca, &ca_key)
        .expect("server certificate");
    Pki {
        ca_pem: ca.pem(),
        chain: vec![server.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
    }
}

/// A self-signed server certificate for `localhost`.
fn self_signed() -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    (
        vec![certified.cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der())),
    )
}

/// A TLS server's side of the handshake with `chain` and `key`.
fn acceptor(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> tokio_rustls::TlsAcceptor {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server certificate");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// Serves one TLS connection: reads one SIP message, answers with `RESPONSE`, returns the
/// request it read.
async fn serve_once(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> (SocketAddr, tokio::task::JoinHandle<Option<Bytes>>) {
    let acceptor = acceptor(chain, key);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.ok()?;
        let mut tls = acceptor.accept(tcp).await.ok()?;
        let mut deframer = StreamDeframer::new(65536);
        let mut chunk = [0u8; 4096];
        let request = loop {
            if let Ok(Some(Frame::Message(message))) = deframer.next() {
                break message;
            }
            let count = tls.read(&mut chunk).await.ok()?;
            if count == 0 {
                return None;
            }
            deframer.push(&chunk[..count]);
        };
        tls.write_all(RESPONSE).await.ok()?;
        tls.flush().await.ok()?;
        // Hold the connection open until the client has read the answer.
        let _ = timeout(Duration::from_secs(2), tls.read(&mut chunk)).await;
        Some(request)
    });
    (addr, task)
}

/// Sends `REQUEST` to `target` (named `localhost`) and returns the next transport event.
async fn send_and_hear(
    client: &Transports,
    events: &mut tokio::sync::mpsc::Receiver<TransportEvent>,
    target: Target,
) -> Option<TransportEvent> {
    client
        .send(target, Some("localhost"), Bytes::from_static(REQUEST))
        .await
        .expect("TLS connect and send");
    timeout(WAIT, events.recv())
        .await
        .expect("an event in time")
}

fn client_config(ca_file: Option<std::path::PathBuf>) -> TransportConfig {
    TransportConfig {
        enable_tcp: false,
        tls: TlsClientSettings {
            extra_ca_file: ca_file,
            use_system_roots: false,
        },
        ..TransportConfig::default()
    }
}

#[tokio::test]
async fn a_client_trusting_the_ca_talks_to_the_server() {
    let pki = ca_signed();
    let mut ca_file = tempfile::NamedTempFile::new().expect("temp file");
    ca_file.write_all(pki.ca_pem.as_bytes()).expect("write CA");
    let (addr, server) = serve_once(pki.chain, pki.key).await;
    let (client, mut events) = Transports::bind(client_config(Some(ca_file.path().to_owned())))
        .await
        .expect("bind");
    let target = Target::new(TransportKind::Tls, addr);

    match send_and_hear(&client, &mut events, target).await {
        Some(TransportEvent::Message(incoming)) => {
            assert_eq!(incoming.bytes, Bytes::from_static(RESPONSE));
            assert_eq!(incoming.source, target);
        }
        other => panic!("expected the response, got {other:?}"),
    }
    let request = timeout(WAIT, server)
        .await
        .expect("server done")
        .expect("join");
    assert_eq!(request, Some(Bytes::from_static(REQUEST)));
}

/// RFC 5626 §4.4.1 over TLS as over TCP: an idle connection sends a double-CRLF ping, and the
/// single-CRLF pong is reported.
#[tokio::test]
async fn an_idle_connection_sends_pings_and_reports_pongs() {
    let pki = ca_signed();
    let mut ca_file = tempfile::NamedTempFile::new().expect("temp file");
    ca_file.write_all(pki.ca_pem.as_bytes()).expect("write CA");
    let acceptor = acceptor(pki.chain, pki.key);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let target = Target::new(TransportKind::Tls, listener.local_addr().expect("address"));
    let config = TransportConfig {
        keepalive_interval: Some(Duration::from_millis(100)),
        ..client_config(Some(ca_file.path().to_owned()))
    };
    // The server reads the request and the ping, then answers the ping.
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut tls = acceptor.accept(tcp).await.expect("handshake");
        let mut received = vec![0u8; REQUEST.len() + 4];
        tls.read_exact(&mut received).await.expect("read");
        tls.write_all(b"\r\n").await.expect("pong");
        tls.flush().await.expect("flush");
        // Open until the client's next ping or its close.
        let _ = timeout(Duration::from_secs(2), tls.read(&mut [0u8; 64])).await;
        received
    });
    let (client, mut events) = Transports::bind(config).await.expect("bind");
    match send_and_hear(&client, &mut events, target).await {
        Some(TransportEvent::KeepAlivePong { target: from }) => assert_eq!(from, target),
        other => panic!("expected a pong, got {other:?}"),
    }
    // Closing the connection lets the server finish.
    drop((client, events));
    let received = timeout(WAIT, server)
        .await
        .expect("server done")
        .expect("join");
    assert_eq!(&received[..REQUEST.len()], REQUEST);
    assert_eq!(&received[REQUEST.len()..], b"\r\n\r\n", "the ping");
}

/// The system's trust store: a CA it holds is trusted with no CA file of our own (the store
/// is read as the platform says: on Linux `SSL_CERT_FILE` names it first, which this test
/// points at the test CA; the other tests here do not read the system store).
#[tokio::test]
async fn a_ca_in_the_systems_trust_store_is_trusted() {
    let pki = ca_signed();
    let mut ca_file = tempfile::NamedTempFile::new().expect("temp file");
    ca_file.write_all(pki.ca_pem.as_bytes()).expect("write CA");
    std::env::set_var("SSL_CERT_FILE", ca_file.path());
    let (addr, _server) = serve_once(pki.chain, pki.key).await;
    let mut config = client_config(None);
    config.tls.use_system_roots = true;
    let (client, _events) = Transports::bind(config).await.expect("bind");
    client
        .send(
            Target::new(TransportKind::Tls, addr),
            Some("localhost"),
            Bytes::from_static(REQUEST),
        )
        .await
        .expect("the CA from the system's store is trusted");
}

#[tokio::test]
async fn the_ip_address_is_verified_when_no_name_is_given() {
    let pki = ca_signed();
    let mut ca_file = tempfile::NamedTempFile::new().expect("temp file");
    ca_file.write_all(pki.ca_pem.as_bytes()).expect("write CA");
    let (addr, _server) = serve_once(pki.chain, pki.key).await;
    let (client, _events) = Transports::bind(client_config(Some(ca_file.path().to_owned())))
        .await
        .expect("bind");
    client
        .send(
            Target::new(TransportKind::Tls, addr),
            None,
            Bytes::from_static(REQUEST),
        )
        .await
        .expect("the certificate names 127.0.0.1");
}

#[tokio::test]
async fn a_self_signed_server_certificate_is_refused_in_plain_words() {
    let pki = ca_signed();
    let mut ca_file = tempfile::NamedTempFile::new().expect("temp file");
    ca_file.write_all(pki.ca_pem.as_bytes()).expect("write CA");
    let (chain, key) = self_signed();
    let (addr, _server) = serve_once(chain, key).await;
    let (client, _events) = Transports::bind(client_config(Some(ca_file.path().to_owned())))
        .await
        .expect("bind");
    let result = client
        .send(
            Target::new(TransportKind::Tls, addr),
            Some("localhost"),
            Bytes::from_static(REQUEST),
        )
        .await;
    match result {
        Err(error @ TransportError::Tls { .. }) => {
            let text = error.to_string();
            assert!(
                text.contains("the server's certificate is not trusted (UnknownIssuer)"),
                "{text}"
            );
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let pki = ca_signed();
    let mut ca_file = tempfile::NamedTempFile::new().expect("temp file");
    ca_file.write_all(pki.ca_pem.as_bytes()).expect("write CA");
    let (addr, _server) = serve_once(pki.chain, pki.key).await;
    let (client, _events) = Transports::bind(client_config(Some(ca_file.path().to_owned())))
        .await
        .expect("bind");
    let result = client
        .send(
            Target::new(TransportKind::Tls, addr),
            Some("pbx.example.com"),
            Bytes::from_static(REQUEST),
        )
        .await;
    match result {
        Err(TransportError::Tls { reason, .. }) => {
            assert!(reason.contains("NotValidForName"), "{reason}")
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unusable_ca_file_is_reported() {
    let mut ca_file = tempfile::NamedTempFile::new().expect("temp file");
    ca_file.write_all(b"not a certificate").expect("write");
    let (chain, key) = self_signed();
    let (addr, _server) = serve_once(chain, key).await;
    let (client, _events) = Transports::bind(client_config(Some(ca_file.path().to_owned())))
        .await
        .expect("bind");
    let result = client
        .send(
            Target::new(TransportKind::Tls, addr),
            Some("localhost"),
            Bytes::from_static(REQUEST),
        )
        .await;
    assert!(
        matches!(result, Err(TransportError::CaFile { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_the_handshake_times_out() {
    // Accepts TCP connections (the kernel does) but never speaks TLS.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let config = TransportConfig {
        connect_timeout: Duration::from_millis(300),
        ..client_config(None)
    };
    let (client, _events) = Transports::bind(config).await.expect("bind");
    let target = Target::new(TransportKind::Tls, addr);
    let started = std::time::Instant::now();
    let result = client
        .send(target, Some("localhost"), Bytes::from_static(REQUEST))
        .await;
    assert!(
        matches!(result, Err(TransportError::ConnectTimeout { target: t, .. }) if t == target),
        "{result:?}"
    );
    assert!(started.elapsed() < WAIT);
    assert!(!client.is_connected(target));
    drop(listener);
}
