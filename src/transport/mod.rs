//! SIP transports on tokio: UDP, TCP, TLS and, as a client, WebSocket (RFC 7118).
//!
//! This is a thin driver. It owns sockets and connections and moves bytes; what the bytes mean is
//! the business of the sans-IO core in `callisto-signaling`. One [`Transports`] handle sends, and
//! one channel of [`TransportEvent`]s reports everything that arrives:
//!
//! ```text
//!   Transports::send(target, bytes) ──► UDP socket ─────────────────────────► peer
//!                                   ├─► connection (TCP/TLS, reused per target) ► peer
//!                                   └─► WebSocket (WS/WSS, reused per target) ──► peer
//!   peer ──► UDP receive task ──────────┐
//!   peer ──► connection task (StreamDeframer) ──► mpsc<TransportEvent> ──► the engine
//!   peer ──► WebSocket task (one message per frame) ──┘
//!   peer ──► TCP accept task ──► connection task
//! ```
//!
//! Each stream connection is one task that reads, writes (so writes are serialized), answers
//! keep-alive pings (RFC 5626 §3.5.1) and sends its own pings when idle. WebSocket connections
//! (`ws.rs`) are opened by us only (a client, like a browser), keep alive with WebSocket pings
//! and count as dropped when a pong does not come back in time.

mod connection;
mod tls;
mod udp;
mod ws;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

pub use callisto_signaling::transport::{Target, TransportKind};

use self::connection::{spawn_connection, ConnectionHandle, ConnectionSetup, ConnectionTable};
use self::tls::TlsConnector;

pub use self::ws::SIP_SUBPROTOCOL;

/// How many events may wait in the channel before readers pause.
const EVENT_QUEUE: usize = 1024;

/// Where to listen, which transports to run, and how to trust TLS servers.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// The local address. UDP and TCP bind the same port when they can (port 0 picks one).
    pub listen: SocketAddr,
    /// Run a UDP socket.
    pub enable_udp: bool,
    /// Listen for TCP connections (outgoing TCP and TLS work regardless).
    pub enable_tcp: bool,
    /// How TLS servers are verified.
    pub tls: TlsClientSettings,
    /// The largest message sent or accepted, in bytes.
    pub max_message_size: usize,
    /// When set, every stream connection idle this long sends a CRLFCRLF ping (RFC 5626).
    pub keepalive_interval: Option<Duration>,
    /// How long a CRLFCRLF ping may wait for its pong, on a connection whose peer answered one
    /// before, until the connection counts as dropped (RFC 5626 §4.4.1: 10 s).
    pub keepalive_pong_timeout: Duration,
    /// How long a TCP connect plus TLS and WebSocket handshakes may take.
    pub connect_timeout: Duration,
    /// When set, a WebSocket connection that has heard nothing for this long sends a WebSocket
    /// ping.
    pub ws_ping_interval: Option<Duration>,
    /// How long a WebSocket ping may wait for its pong before the connection counts as dropped.
    pub ws_pong_timeout: Duration,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            enable_udp: true,
            enable_tcp: true,
            tls: TlsClientSettings::default(),
            max_message_size: 64 * 1024,
            keepalive_interval: None,
            keepalive_pong_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            ws_ping_interval: None,
            ws_pong_timeout: Duration::from_secs(10),
        }
    }
}

/// Which certificate authorities a TLS server's certificate may chain to.
#[derive(Debug, Clone)]
pub struct TlsClientSettings {
    /// A PEM file of additional trusted CA certificates (a private PBX's CA, a test CA).
    pub extra_ca_file: Option<PathBuf>,
    /// Trust the operating system's roots. They are loaded when TLS is first used, not at start.
    pub use_system_roots: bool,
}

impl Default for TlsClientSettings {
    fn default() -> Self {
        TlsClientSettings {
            extra_ca_file: None,
            use_system_roots: true,
        }
    }
}

/// A message received from the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// One whole SIP message (a datagram, or a frame cut from a stream).
    pub bytes: Bytes,
    /// Who sent it, and over what; send responses back to this target.
    pub source: Target,
    /// The local address it arrived on.
    pub local: SocketAddr,
}

/// What the transports report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportEvent {
    /// A message arrived.
    Message(Incoming),
    /// A stream connection ended (EOF, I/O error, or a stream that could not be framed).
    ConnectionClosed {
        /// The connection's peer.
        target: Target,
        /// Why, in words.
        reason: String,
    },
    /// The peer answered our keep-alive ping (RFC 5626 §3.5.1): the flow is alive.
    KeepAlivePong {
        /// The connection's peer.
        target: Target,
    },
}

/// Why a transport operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// A socket operation failed.
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS handshake failed; the text says why in plain words.
    #[error("TLS failed with {target}: {reason}")]
    Tls {
        /// The server.
        target: Target,
        /// Why, e.g. "the server's certificate is not trusted (UnknownIssuer)".
        reason: String,
    },
    /// The trusted CA file could not be used.
    #[error("cannot use the CA file {path}: {reason}")]
    CaFile {
        /// The configured file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The WebSocket opening handshake failed: the server refused the upgrade, or did not
    /// accept the `sip` subprotocol (RFC 7118 §4.1).
    #[error("WebSocket with {target} failed: {reason}")]
    WebSocket {
        /// The server.
        target: Target,
        /// Why, in words.
        reason: String,
    },
    /// Connecting (TCP connect plus TLS and WebSocket handshakes) took too long.
    #[error("connecting to {target} timed out after {after:?}")]
    ConnectTimeout {
        /// The peer.
        target: Target,
        /// The configured limit.
        after: Duration,
    },
    /// The transport is not available (UDP when it is disabled).
    #[error("transport {0} is not supported here")]
    Unsupported(TransportKind),
    /// The message exceeds the configured maximum size.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The message's size.
        size: usize,
        /// The configured maximum.
        limit: usize,
    },
    /// The connection closed before the message could be handed to it.
    #[error("the connection to {0} is closed")]
    Closed(Target),
}

/// A cheap-to-clone handle to the running transports.
#[derive(Clone)]
pub struct Transports {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    config: TransportConfig,
    udp: Option<Arc<UdpSocket>>,
    tcp_local: Option<SocketAddr>,
    connections: Arc<ConnectionTable>,
    next_connection_id: AtomicU64,
    events: mpsc::Sender<TransportEvent>,
    tls: TlsConnector,
    /// The HTTP resource of WebSocket servers by target; `/` when absent.
    ws_paths: Mutex<HashMap<Target, String>>,
}

impl std::fmt::Debug for Transports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transports")
            .field("udp", &self.local_addr(TransportKind::Udp))
            .field("tcp", &self.local_addr(TransportKind::Tcp))
            .finish_non_exhaustive()
    }
}

impl Transports {
    /// Binds the configured sockets and starts their tasks. Must run inside a tokio runtime.
    pub async fn bind(
        config: TransportConfig,
    ) -> Result<(Transports, mpsc::Receiver<TransportEvent>), TransportError> {
        let (udp, listener) = bind_sockets(&config).await?;
        let tcp_local = match &listener {
            Some(listener) => Some(listener.local_addr()?),
            None => None,
        };
        let (events, receiver) = mpsc::channel(EVENT_QUEUE);
        let tls = TlsConnector::new(config.tls.clone());
        let inner = Arc::new(Inner {
            config,
            udp: udp.map(Arc::new),
            tcp_local,
            connections: Arc::new(Mutex::new(HashMap::new())),
            next_connection_id: AtomicU64::new(1),
            events,
            tls,
            ws_paths: Mutex::new(HashMap::new()),
        });
        if let Some(socket) = &inner.udp {
            tokio::spawn(udp::receive_loop(
                Arc::clone(socket),
                Arc::downgrade(&inner),
                inner.events.clone(),
                inner.config.max_message_size,
            ));
        }
        if let Some(listener) = listener {
            tokio::spawn(accept_loop(listener, Arc::downgrade(&inner)));
        }
        Ok((Transports { inner }, receiver))
    }

    /// The bound local address of a transport: UDP, or TCP (the listener). TLS and WebSocket
    /// have no listener here.
    pub fn local_addr(&self, kind: TransportKind) -> Option<SocketAddr> {
        match kind {
            TransportKind::Udp => self.inner.udp.as_ref()?.local_addr().ok(),
            TransportKind::Tcp => self.inner.tcp_local,
            _ => None,
        }
    }

    /// Sets the HTTP resource (`/`, `/ws`, …) WebSocket connections to `target` ask for.
    pub fn set_websocket_path(&self, target: Target, path: &str) {
        let mut paths = self
            .inner
            .ws_paths
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        paths.insert(target, path.to_owned());
    }

    /// Sends one message. UDP goes out of the bound socket; TCP, TLS, WS and WSS reuse an open
    /// connection to `target.addr` or open one. `server_name` is the name a TLS server's
    /// certificate must carry (and the SNI, and a WebSocket's Host); without it, the IP address
    /// is used.
    pub async fn send(
        &self,
        target: Target,
        server_name: Option<&str>,
        bytes: Bytes,
    ) -> Result<(), TransportError> {
        let limit = self.inner.config.max_message_size;
        if bytes.len() > limit {
            return Err(TransportError::TooLarge {
                size: bytes.len(),
                limit,
            });
        }
        match target.transport {
            TransportKind::Udp => {
                let socket = self
                    .inner
                    .udp
                    .as_ref()
                    .ok_or(TransportError::Unsupported(TransportKind::Udp))?;
                socket.send_to(&bytes, target.addr).await?;
                Ok(())
            }
            TransportKind::Tcp | TransportKind::Tls | TransportKind::Ws | TransportKind::Wss => {
                let handle = match self.inner.open_connection(target) {
                    Some(handle) => handle,
                    None => self.connect(target, server_name).await?,
                };
                handle
                    .send(bytes)
                    .await
                    .map_err(|_| TransportError::Closed(target))
            }
        }
    }

    /// Sends a UDP keep-alive (a datagram holding a double CRLF) to `target`.
    pub async fn send_keepalive(&self, target: Target) -> Result<(), TransportError> {
        let socket = self
            .inner
            .udp
            .as_ref()
            .ok_or(TransportError::Unsupported(TransportKind::Udp))?;
        socket.send_to(b"\r\n\r\n", target.addr).await?;
        Ok(())
    }

    /// Whether a stream connection to `target` is open.
    pub fn is_connected(&self, target: Target) -> bool {
        self.inner.open_connection(target).is_some()
    }

    async fn connect(
        &self,
        target: Target,
        server_name: Option<&str>,
    ) -> Result<ConnectionHandle, TransportError> {
        let timeout = self.inner.config.connect_timeout;
        let inner = &self.inner;
        let attempt = async {
            let tcp = TcpStream::connect(target.addr).await?;
            tcp.set_nodelay(true)?;
            let local = tcp.local_addr()?;
            let path = inner.ws_path(target);
            let handshake = ws::Handshake {
                target,
                server_name,
                path: &path,
                max_message_size: inner.config.max_message_size,
            };
            match target.transport {
                TransportKind::Tls => {
                    let stream = inner.tls.connect(target, server_name, tcp).await?;
                    Ok(inner.register(target, local, stream))
                }
                TransportKind::Ws => {
                    let socket = ws::handshake(tcp, handshake).await?;
                    Ok(inner.register_ws(target, local, socket))
                }
                TransportKind::Wss => {
                    let stream = inner.tls.connect(target, server_name, tcp).await?;
                    let socket = ws::handshake(stream, handshake).await?;
                    Ok(inner.register_ws(target, local, socket))
                }
                _ => Ok(inner.register(target, local, tcp)),
            }
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::ConnectTimeout {
                target,
                after: timeout,
            }),
        }
    }
}

impl Inner {
    fn open_connection(&self, target: Target) -> Option<ConnectionHandle> {
        let connections = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        connections
            .get(&target)
            .filter(|handle| !handle.is_closed())
            .cloned()
    }

    fn ws_path(&self, target: Target) -> String {
        let paths = self.ws_paths.lock().unwrap_or_else(|e| e.into_inner());
        paths
            .get(&target)
            .cloned()
            .unwrap_or_else(|| "/".to_owned())
    }

    /// Starts the task of a new WebSocket connection and records it as the one for `target`.
    fn register_ws<S>(
        &self,
        target: Target,
        local: SocketAddr,
        socket: tokio_tungstenite::WebSocketStream<S>,
    ) -> ConnectionHandle
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let id = self.next_connection_id.fetch_add(1, Ordering::Relaxed);
        let handle = ws::spawn(
            ws::WsSetup {
                id,
                target,
                local,
                max_message_size: self.config.max_message_size,
                ping_interval: self.config.ws_ping_interval,
                pong_timeout: self.config.ws_pong_timeout,
                events: self.events.clone(),
            },
            socket,
            Arc::downgrade(&self.connections),
        );
        let mut connections = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        connections.insert(target, handle.clone());
        handle
    }

    /// Starts the task of a new connection and records it as the one to use for `target`.
    fn register<S>(&self, target: Target, local: SocketAddr, stream: S) -> ConnectionHandle
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let id = self.next_connection_id.fetch_add(1, Ordering::Relaxed);
        let handle = spawn_connection(
            ConnectionSetup {
                id,
                target,
                local,
                max_message_size: self.config.max_message_size,
                keepalive_interval: self.config.keepalive_interval,
                pong_timeout: self.config.keepalive_pong_timeout,
                events: self.events.clone(),
            },
            stream,
            Arc::downgrade(&self.connections),
        );
        let mut connections = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        connections.insert(target, handle.clone());
        handle
    }
}

/// Binds UDP and the TCP listener, on the same port when the configured port is 0.
async fn bind_sockets(
    config: &TransportConfig,
) -> Result<(Option<UdpSocket>, Option<TcpListener>), TransportError> {
    const ATTEMPTS: usize = 5;
    match (config.enable_udp, config.enable_tcp) {
        (false, false) => Ok((None, None)),
        (true, false) => Ok((Some(UdpSocket::bind(config.listen).await?), None)),
        (false, true) => Ok((None, Some(TcpListener::bind(config.listen).await?))),
        (true, true) => {
            for _ in 0..ATTEMPTS {
                let udp = UdpSocket::bind(config.listen).await?;
                let udp_addr = udp.local_addr()?;
                match TcpListener::bind(udp_addr).await {
                    Ok(listener) => return Ok((Some(udp), Some(listener))),
                    Err(error) if config.listen.port() != 0 => return Err(error.into()),
                    Err(_) => continue,
                }
            }
            // The ports UDP picked were taken for TCP every time: let TCP pick its own.
            let udp = UdpSocket::bind(config.listen).await?;
            let listener = TcpListener::bind(config.listen).await?;
            Ok((Some(udp), Some(listener)))
        }
    }
}

async fn accept_loop(listener: TcpListener, inner: std::sync::Weak<Inner>) {
    loop {
        let accepted = listener.accept().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let local = match stream.local_addr() {
                    Ok(local) => local,
                    Err(_) => continue,
                };
                tracing::debug!(%peer, "accepted a TCP connection");
                inner.register(Target::new(TransportKind::Tcp, peer), local, stream);
            }
            Err(error) => {
                tracing::warn!(%error, "accepting a TCP connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
