//! A loopback TCP forwarder that a test can cut: it relays every accepted connection to an
//! upstream port byte for byte (so a WebSocket handshake passes through untouched), keeps the
//! first bytes each side sent, and [`TcpProxy::drop_connections`] shuts every relayed
//! connection down at once while the listener keeps accepting new ones. That is a server-side
//! drop as the client sees it, without stopping the server.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

/// How many leading bytes of each direction are kept for inspection.
const KEPT: usize = 4096;

#[derive(Default)]
struct Shared {
    open: Mutex<Vec<TcpStream>>,
    /// The first bytes of each accepted connection: (client → upstream, upstream → client).
    heads: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
    stopped: AtomicBool,
}

/// A running forwarder; dropping it stops accepting and closes every connection.
pub struct TcpProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl TcpProxy {
    /// Listens on a free loopback port and relays to `upstream`.
    pub fn start(upstream: SocketAddr) -> io::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let accepting = Arc::clone(&shared);
        thread::spawn(move || accept_loop(listener, upstream, accepting));
        Ok(TcpProxy { addr, shared })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections were accepted so far.
    pub fn accepted(&self) -> usize {
        lock(&self.shared.heads).len()
    }

    /// The first bytes the client sent on connection `index`, as text.
    pub fn client_head(&self, index: usize) -> String {
        let heads = lock(&self.shared.heads);
        heads
            .get(index)
            .map(|(client, _)| String::from_utf8_lossy(client).into_owned())
            .unwrap_or_default()
    }

    /// The first bytes the upstream server sent on connection `index`, as text.
    pub fn server_head(&self, index: usize) -> String {
        let heads = lock(&self.shared.heads);
        heads
            .get(index)
            .map(|(_, server)| String::from_utf8_lossy(server).into_owned())
            .unwrap_or_default()
    }

    /// Shuts down every relayed connection (both sides); new connections are still accepted.
    pub fn drop_connections(&self) {
        for stream in lock(&self.shared.open).drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.drop_connections();
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn accept_loop(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let Ok(server) = TcpStream::connect(upstream) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let index = {
            let mut heads = lock(&shared.heads);
            heads.push((Vec::new(), Vec::new()));
            heads.len() - 1
        };
        let clones = (|| -> io::Result<_> {
            Ok((
                client.try_clone()?,
                server.try_clone()?,
                client.try_clone()?,
                server.try_clone()?,
            ))
        })();
        let Ok((client_kept, server_kept, client_writer, server_reader)) = clones else {
            continue;
        };
        lock(&shared.open).extend([client_kept, server_kept]);
        let up = Arc::clone(&shared);
        thread::spawn(move || relay(client, server, &up, index, true));
        let down = Arc::clone(&shared);
        thread::spawn(move || relay(server_reader, client_writer, &down, index, false));
    }
}

/// Copies `from` to `to` until either side ends, keeping the first bytes.
fn relay(mut from: TcpStream, mut to: TcpStream, shared: &Shared, index: usize, upstream: bool) {
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let count = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(count) => count,
        };
        let chunk = &buffer[..count];
        {
            let mut heads = lock(&shared.heads);
            if let Some((client, server)) = heads.get_mut(index) {
                let kept = if upstream { client } else { server };
                let room = KEPT.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..room.min(count)]);
            }
        }
        if to.write_all(chunk).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
