//! SIP over WebSocket (RFC 7118), the client side: the opening handshake and one task per
//! connection.
//!
//! - The handshake runs over a connected TCP stream (`ws`) or a TLS stream verified exactly as
//!   the TLS transport verifies (`wss`, see `tls.rs`). It asks for the `sip` subprotocol and
//!   fails, in words, when the server does not agree to it (RFC 7118 §4.1).
//! - One SIP message travels in one WebSocket message: text when it is UTF-8, else binary
//!   (RFC 7118 §5.1). Nothing is framed by Content-Length.
//! - Messages above the transport's `max_message_size` are dropped and counted; the connection
//!   stays up. Frames above four times that size end the connection, so a peer cannot make us
//!   buffer without bound.
//! - Keep-alive is the WebSocket ping: when nothing has been heard for the ping interval a ping
//!   goes out, and a pong must come back within the pong timeout, else the connection counts as
//!   dropped. Pings from the server are answered with pongs; a double-CRLF text message (an
//!   RFC 5626 ping some servers send) is answered with a CRLF.
//! - However the connection ends (close frame, error, missed pong), the task reports
//!   [`TransportEvent::ConnectionClosed`] with the reason, and the engine recovers the flow.

use std::net::{IpAddr, SocketAddr};
use std::sync::Weak;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::Utf8Bytes;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::connection::{forget_connection, ConnectionHandle, ConnectionTable, SHUTDOWN_GRACE};
use super::{Incoming, Target, TransportError, TransportEvent, TransportKind};

/// The WebSocket subprotocol of SIP (RFC 7118 §4.1).
pub const SIP_SUBPROTOCOL: &str = "sip";

/// How many times the SIP message limit a single frame may reach before the connection ends.
const HARD_LIMIT_FACTOR: usize = 4;

/// What the opening handshake needs besides the stream.
pub(super) struct Handshake<'a> {
    pub(super) target: Target,
    /// The server's name (Host header), or `None` for its IP address.
    pub(super) server_name: Option<&'a str>,
    /// The HTTP resource, e.g. `/` or `/ws`.
    pub(super) path: &'a str,
    pub(super) max_message_size: usize,
}

/// Runs the WebSocket opening handshake over a connected stream and checks that the server
/// speaks SIP.
pub(super) async fn handshake<S>(
    stream: S,
    setup: Handshake<'_>,
) -> Result<WebSocketStream<S>, TransportError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let target = setup.target;
    let failed = |reason: String| TransportError::WebSocket { target, reason };
    let url = request_url(target, setup.server_name, setup.path);
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|error| failed(format!("{url} is not a usable WebSocket address: {error}")))?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SIP_SUBPROTOCOL),
    );
    let hard_limit = setup.max_message_size.saturating_mul(HARD_LIMIT_FACTOR);
    let config = WebSocketConfig::default()
        .max_message_size(Some(hard_limit))
        .max_frame_size(Some(hard_limit));
    let (ws, response) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .map_err(|error| match error {
            WsError::Io(error) => TransportError::Io(error),
            WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(_)) => failed(format!(
                "the server at {url} did not accept the '{SIP_SUBPROTOCOL}' WebSocket subprotocol"
            )),
            WsError::Http(response) => failed(format!(
                "the server at {url} refused the WebSocket upgrade with HTTP {}",
                response.status()
            )),
            other => failed(other.to_string()),
        })?;
    let agreed = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|value| value.to_str().ok());
    if agreed != Some(SIP_SUBPROTOCOL) {
        return Err(failed(format!(
            "the server at {url} did not accept the '{SIP_SUBPROTOCOL}' WebSocket subprotocol"
        )));
    }
    tracing::debug!(%target, %url, "WebSocket connected");
    Ok(ws)
}

/// `ws://host[:port]/path`: the server's name (or IP address) and the port when it is not the
/// scheme's default.
fn request_url(target: Target, server_name: Option<&str>, path: &str) -> String {
    let scheme = if target.transport == TransportKind::Wss {
        "wss"
    } else {
        "ws"
    };
    let host = match server_name.map(|n| n.trim_start_matches('[').trim_end_matches(']')) {
        Some(name) => match name.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
            _ => name.to_owned(),
        },
        None => match target.addr {
            SocketAddr::V4(addr) => addr.ip().to_string(),
            SocketAddr::V6(addr) => format!("[{}]", addr.ip()),
        },
    };
    let default_port = if scheme == "wss" { 443 } else { 80 };
    let port = match target.addr.port() {
        port if port == default_port => String::new(),
        port => format!(":{port}"),
    };
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    format!("{scheme}://{host}{port}{path}")
}

/// Everything a WebSocket connection task needs besides its stream.
pub(super) struct WsSetup {
    pub(super) id: u64,
    pub(super) target: Target,
    pub(super) local: SocketAddr,
    pub(super) max_message_size: usize,
    pub(super) ping_interval: Option<Duration>,
    pub(super) pong_timeout: Duration,
    pub(super) events: mpsc::Sender<TransportEvent>,
}

/// Starts the task that drives an open WebSocket, and returns the handle to send on it.
pub(super) fn spawn<S>(
    setup: WsSetup,
    ws: WebSocketStream<S>,
    table: Weak<ConnectionTable>,
) -> ConnectionHandle
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (handle, outgoing) = ConnectionHandle::new(setup.id);
    tokio::spawn(run(setup, ws, outgoing, table));
    handle
}

async fn run<S>(
    setup: WsSetup,
    mut ws: WebSocketStream<S>,
    mut outgoing: mpsc::Receiver<Bytes>,
    table: Weak<ConnectionTable>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let reason = drive(&setup, &mut ws, &mut outgoing).await;
    tracing::info!(target = %setup.target, %reason, "WebSocket connection closed");
    forget_connection(&table, setup.target, setup.id);
    outgoing.close();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, ws.close(None)).await;
    let _ = setup
        .events
        .send(TransportEvent::ConnectionClosed {
            target: setup.target,
            reason,
        })
        .await;
}

/// Runs the connection until it ends, and returns why it ended.
async fn drive<S>(
    setup: &WsSetup,
    ws: &mut WebSocketStream<S>,
    outgoing: &mut mpsc::Receiver<Bytes>,
) -> String
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut last_heard = Instant::now();
    let mut pong_due: Option<Instant> = None;
    let mut dropped: u64 = 0;
    loop {
        let ping_at = setup
            .ping_interval
            .filter(|_| pong_due.is_none())
            .map(|interval| last_heard + interval);
        let far_future = Instant::now() + Duration::from_secs(86_400);
        tokio::select! {
            frame = ws.next() => {
                let message = match frame {
                    None => return "closed by the peer".to_owned(),
                    Some(Err(error)) => return describe_read_error(&error),
                    Some(Ok(message)) => message,
                };
                last_heard = Instant::now();
                let payload = match message {
                    Message::Text(text) => Bytes::from(text),
                    Message::Binary(bytes) => bytes,
                    Message::Ping(_) => {
                        // The pong is queued by the protocol layer; flushing sends it now.
                        if let Err(error) = ws.flush().await {
                            return format!("answering a WebSocket ping failed: {error}");
                        }
                        continue;
                    }
                    Message::Pong(_) => {
                        if pong_due.take().is_some() {
                            let pong = TransportEvent::KeepAlivePong { target: setup.target };
                            if setup.events.send(pong).await.is_err() {
                                return "nobody listens for transport events any more".to_owned();
                            }
                        }
                        continue;
                    }
                    Message::Close(frame) => return describe_close(frame.as_ref()),
                    Message::Frame(_) => continue,
                };
                if payload.len() > setup.max_message_size {
                    dropped += 1;
                    tracing::warn!(
                        target = %setup.target,
                        size = payload.len(),
                        limit = setup.max_message_size,
                        dropped,
                        "dropping an oversized WebSocket message"
                    );
                    continue;
                }
                if payload.iter().all(|b| matches!(b, b'\r' | b'\n')) {
                    if payload.as_ref() == b"\r\n\r\n" {
                        if let Err(error) = ws.send(Message::text("\r\n")).await {
                            return format!("answering a keep-alive failed: {error}");
                        }
                    }
                    continue;
                }
                let event = TransportEvent::Message(Incoming {
                    bytes: payload,
                    source: setup.target,
                    local: setup.local,
                });
                if setup.events.send(event).await.is_err() {
                    return "nobody listens for transport events any more".to_owned();
                }
            }
            message = outgoing.recv() => {
                let Some(bytes) = message else {
                    return "no longer used".to_owned();
                };
                if let Err(error) = ws.send(sip_message(bytes)).await {
                    return format!("write failed: {error}");
                }
            }
            () = tokio::time::sleep_until(ping_at.unwrap_or(far_future)), if ping_at.is_some() => {
                if let Err(error) = ws.send(Message::Ping(Bytes::from_static(b"callisto"))).await {
                    return format!("sending a WebSocket ping failed: {error}");
                }
                pong_due = Some(Instant::now() + setup.pong_timeout);
            }
            () = tokio::time::sleep_until(pong_due.unwrap_or(far_future)), if pong_due.is_some() => {
                return format!(
                    "no answer to a WebSocket ping within {:?}",
                    setup.pong_timeout
                );
            }
        }
    }
}

/// One SIP message as one WebSocket message: text when it is UTF-8 (RFC 7118 §5.1).
fn sip_message(bytes: Bytes) -> Message {
    match Utf8Bytes::try_from(bytes.clone()) {
        Ok(text) => Message::Text(text),
        Err(_) => Message::Binary(bytes),
    }
}

fn describe_close(frame: Option<&CloseFrame>) -> String {
    match frame {
        Some(frame) if frame.reason.is_empty() => {
            format!("closed by the peer (code {})", u16::from(frame.code))
        }
        Some(frame) => format!(
            "closed by the peer (code {}: {})",
            u16::from(frame.code),
            frame.reason
        ),
        None => "closed by the peer".to_owned(),
    }
}

fn describe_read_error(error: &WsError) -> String {
    match error {
        WsError::ConnectionClosed | WsError::AlreadyClosed => "closed by the peer".to_owned(),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            "the peer dropped the connection without a WebSocket close".to_owned()
        }
        WsError::Capacity(error) => format!("a WebSocket frame was too large ({error})"),
        other => format!("read failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(kind: TransportKind, addr: &str) -> Target {
        Target::new(kind, addr.parse().unwrap())
    }

    #[test]
    fn request_urls_name_the_server_and_omit_default_ports() {
        let ws = target(TransportKind::Ws, "127.0.0.1:8080");
        assert_eq!(request_url(ws, None, "/"), "ws://127.0.0.1:8080/");
        assert_eq!(request_url(ws, None, "sip"), "ws://127.0.0.1:8080/sip");
        let wss = target(TransportKind::Wss, "192.0.2.7:443");
        assert_eq!(
            request_url(wss, Some("pbx.example.org"), "/ws"),
            "wss://pbx.example.org/ws"
        );
        let v6 = target(TransportKind::Ws, "[::1]:80");
        assert_eq!(request_url(v6, None, "/"), "ws://[::1]/");
        assert_eq!(request_url(v6, Some("[::1]"), "/"), "ws://[::1]/");
    }

    #[test]
    fn utf8_messages_go_as_text_and_others_as_binary() {
        assert!(matches!(
            sip_message(Bytes::from_static(b"OPTIONS sip:a SIP/2.0\r\n\r\n")),
            Message::Text(_)
        ));
        assert!(matches!(
            sip_message(Bytes::from_static(b"MESSAGE sip:a SIP/2.0\r\n\r\n\xff\xfe")),
            Message::Binary(_)
        ));
    }
}
