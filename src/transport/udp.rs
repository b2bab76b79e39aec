//! The UDP receive loop: one datagram is one message (RFC 3261 §18.1).

use std::sync::{Arc, Weak};

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::{Incoming, Inner, Target, TransportEvent, TransportKind};

/// The largest datagram UDP can carry.
const MAX_DATAGRAM: usize = 65_535;

/// Receives datagrams until the transports are dropped or nobody listens for events.
///
/// Keep-alive datagrams (only CR and LF) and datagrams beyond `max_message_size` are dropped.
pub(super) async fn receive_loop(
    socket: Arc<UdpSocket>,
    owner: Weak<Inner>,
    events: mpsc::Sender<TransportEvent>,
    max_message_size: usize,
) {
    let Ok(local) = socket.local_addr() else {
        return;
    };
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = socket.recv_from(&mut buffer).await;
        if owner.strong_count() == 0 {
            return;
        }
        let (count, peer) = match received {
            Ok(received) => received,
            Err(error) => {
                // ICMP errors for earlier sends surface here on some systems; keep receiving.
                tracing::debug!(%error, "UDP receive failed");
                continue;
            }
        };
        let datagram = buffer.get(..count).unwrap_or_default();
        if datagram.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            continue;
        }
        if count > max_message_size {
            tracing::debug!(%peer, count, "dropping an oversized datagram");
            continue;
        }
        let event = TransportEvent::Message(Incoming {
            bytes: Bytes::copy_from_slice(datagram),
            source: Target::new(TransportKind::Udp, peer),
            local,
        });
        if events.send(event).await.is_err() {
            return;
        }
    }
}
