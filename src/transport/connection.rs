//! One TCP or TLS connection: a single task that reads, writes and keeps the flow alive.
//!
//! Reading, writing and keep-alives share one `select!` loop, so writes are serialized without a
//! lock and the task always knows whether a ping of its own is outstanding (which is what tells
//! a pong from an empty line, see [`StreamDeframer::expect_pong`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use callisto_signaling::message::framing::{Frame, StreamDeframer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Incoming, Target, TransportEvent};

/// Messages queued for one connection before senders wait.
const OUTGOING_QUEUE: usize = 64;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;
/// How long a closing connection may take to say goodbye (TLS close_notify, FIN).
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// The open connections by peer, shared by the send path and the connection tasks.
pub(crate) type ConnectionTable = Mutex<HashMap<Target, ConnectionHandle>>;

/// The send side of a connection task.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionHandle {
    id: u64,
    outgoing: mpsc::Sender<Bytes>,
}

impl ConnectionHandle {
    /// A handle for connection `id`, and the receiving end its task reads messages from.
    pub(crate) fn new(id: u64) -> (ConnectionHandle, mpsc::Receiver<Bytes>) {
        let (outgoing, receiver) = mpsc::channel(OUTGOING_QUEUE);
        (ConnectionHandle { id, outgoing }, receiver)
    }

    /// Whether the connection's task has ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.outgoing.is_closed()
    }

    /// Queues one message for writing; fails when the connection is gone.
    pub(crate) async fn send(&self, bytes: Bytes) -> Result<(), mpsc::error::SendError<Bytes>> {
        self.outgoing.send(bytes).await
    }
}

/// Everything a connection task needs besides its stream.
pub(crate) struct ConnectionSetup {
    pub(crate) id: u64,
    pub(crate) target: Target,
    pub(crate) local: SocketAddr,
    pub(crate) max_message_size: usize,
    pub(crate) keepalive_interval: Option<Duration>,
    /// How long a ping may wait for its pong once the peer has answered one.
    pub(crate) pong_timeout: Duration,
    pub(crate) events: mpsc::Sender<TransportEvent>,
}

/// Starts the task that drives `stream`, and returns the handle to send on it.
pub(crate) fn spawn_connection<S>(
    setup: ConnectionSetup,
    stream: S,
    table: Weak<ConnectionTable>,
) -> ConnectionHandle
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (handle, receiver) = ConnectionHandle::new(setup.id);
    tokio::spawn(run(setup, stream, receiver, table));
    handle
}

async fn run<S>(
    setup: ConnectionSetup,
    mut stream: S,
    mut outgoing: mpsc::Receiver<Bytes>,
    table: Weak<ConnectionTable>,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin,
{
    let reason = drive(&setup, &mut stream, &mut outgoing).await;
    tracing::debug!(target = %setup.target, %reason, "connection closed");
    forget_connection(&table, setup.target, setup.id);
    outgoing.close();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, stream.shutdown()).await;
    let _ = setup
        .events
        .send(TransportEvent::ConnectionClosed {
            target: setup.target,
            reason,
        })
        .await;
}

/// Removes connection `id` from the table, unless a newer connection to `target` replaced it.
pub(crate) fn forget_connection(table: &Weak<ConnectionTable>, target: Target, id: u64) {
    if let Some(table) = table.upgrade() {
        let mut table = table.lock().unwrap_or_else(|e| e.into_inner());
        if table.get(&target).is_some_and(|handle| handle.id == id) {
            table.remove(&target);
        }
    }
}

/// Runs the connection until it ends, and returns why it ended.
async fn drive<S>(
    setup: &ConnectionSetup,
    stream: &mut S,
    outgoing: &mut mpsc::Receiver<Bytes>,
) -> String
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut deframer = StreamDeframer::new(setup.max_message_size);
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut last_sent = Instant::now();
    // RFC 5626 §4.4.1: a flow whose ping gets no pong in time has failed. Only a peer that
    // answered a ping before is held to it — a registrar without outbound support may never
    // answer, and its connection is not dropped for that.
    let mut answers_pings = false;
    let mut pong_due: Option<Instant> = None;
    loop {
        let ping_due = setup
            .keepalive_interval
            .filter(|_| pong_due.is_none())
            .map(|interval| last_sent + interval);
        let far_future = Instant::now() + Duration::from_secs(86_400);
        tokio::select! {
            read = stream.read(&mut chunk) => {
                let count = match read {
                    Ok(0) => return "closed by the peer".to_owned(),
                    Ok(count) => count,
                    Err(error) => return format!("read failed: {error}"),
                };
                deframer.push(chunk.get(..count).unwrap_or_default());
                loop {
                    let frame = match deframer.next() {
                        Ok(Some(frame)) => frame,
                        Ok(None) => break,
                        Err(error) => return format!("cannot frame the stream: {error}"),
                    };
                    let event = match frame {
                        Frame::Message(bytes) => TransportEvent::Message(Incoming {
                            bytes,
                            source: setup.target,
                            local: setup.local,
                        }),
                        Frame::KeepAlivePing => {
                            if let Err(error) = write(stream, b"\r\n").await {
                                return format!("answering a keep-alive failed: {error}");
                            }
                            last_sent = Instant::now();
                            continue;
                        }
                        Frame::KeepAlivePong => {
                            answers_pings = true;
                            pong_due = None;
                            TransportEvent::KeepAlivePong {
                                target: setup.target,
                            }
                        }
                    };
                    if setup.events.send(event).await.is_err() {
                        return "nobody listens for transport events any more".to_owned();
                    }
                }
            }
            message = outgoing.recv() => {
                let Some(bytes) = message else {
                    return "no longer used".to_owned();
                };
                if let Err(error) = write(stream, &bytes).await {
                    return format!("write failed: {error}");
                }
                last_sent = Instant::now();
            }
            () = tokio::time::sleep_until(ping_due.unwrap_or(far_future)), if ping_due.is_some() => {
                if let Err(error) = write(stream, b"\r\n\r\n").await {
                    return format!("sending a keep-alive failed: {error}");
                }
                deframer.expect_pong();
                last_sent = Instant::now();
                if answers_pings {
                    pong_due = Some(last_sent + setup.pong_timeout);
                }
            }
            () = tokio::time::sleep_until(pong_due.unwrap_or(far_future)), if pong_due.is_some() => {
                return format!(
                    "no answer to a keep-alive in {} s",
                    setup.pong_timeout.as_secs_f64()
                );
            }
        }
    }
}

async fn write<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}
