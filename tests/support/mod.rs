//! Support code for integration tests that run real SIP peers on loopback.
//!
//! - [`kamailio`]: Kamailio as registrar/proxy with digest auth, in-memory users and locations,
//!   UDP/TCP/TLS (and optionally WebSocket) listeners, and parsed REGISTER log lines.
//! - [`kamailio_calls`]: the calls Kamailio proxied, with its timestamps
//!   ([`kamailio_calls::CallTimeline`]).
//! - [`baresip`]: baresip as a second user agent that registers to it; [`baresip_phone`] makes
//!   it a desk phone for calls (WAV source, recording, codecs, SRTP, console commands) and
//!   [`baresip_events`] parses its log into call events.
//! - [`browser`]: headless Chromium with JsSIP over Kamailio's WebSocket, a WebRTC softphone
//!   (`tests/browser/`), with its `getStats()` summaries.
//! - [`coturn`]: coturn as a TURN server on loopback (static user, relay ports in a known
//!   range, allocations read from its log).
//! - [`wav`]: tone generators and a WAV reader for media checks with `callisto_media::analysis`.
//! - [`measure`]: CPU, peak RSS, strace-timed packets and call setup times for benches.
//! - [`wire_capture`]: the UDP datagrams sent on `lo`, with kernel timestamps (a packet
//!   socket), for timing user agents without attaching to them.
//! - [`sip_uas`]: a scripted UDP user agent (hand-written SIP) for checking the proxy's routing
//!   between transports, e.g. a WebSocket browser calling a UDP phone.
//! - [`sip_registrar`]: a scripted UDP registrar that refuses (403, 404…) or grants every
//!   REGISTER, for answers Kamailio does not give, and can challenge every INVITE.
//! - [`pki`]: a throwaway test CA and server certificates.
//! - [`pulse`]: a private PulseAudio server with null sinks, for the sound device tests.
//! - [`dns_server`]: an authoritative DNS server with fixed records (SRV, A) for RFC 3263 tests.
//! - [`logged_child`]: a child process with captured output, stopped by PID.
//! - [`tcp_proxy`]: a loopback TCP forwarder a test can cut, to drop connections on purpose.
//! - [`packet_loss`]: random loss of one RTP payload type on loopback (nftables), in the
//!   test's network namespace only.
//! - [`video`]: the test pattern's stamps in a Y4M recording (frame counters, identities).
//! - [`video_call`]: a Callisto calling or answering through Kamailio with a tone and the test
//!   pattern, recording both.
//! - [`conference`]: tone levels and gaps in recordings, a room of participants, Kamailio with
//!   a user each — what the conference tests share.
//!
//! Every socket binds to 127.0.0.1. A missing peer is an error, so tests fail instead of
//! skipping. Include it from a test file with `mod support;`.

// Each test binary uses a different part of the harness.
#![allow(dead_code)]

pub mod baresip;
pub mod baresip_events;
pub mod baresip_phone;
pub mod browser;
pub mod callisto;
pub mod conference;
pub mod coturn;
pub mod dns_server;
pub mod kamailio;
pub mod kamailio_calls;
pub mod kamailio_cfg;
pub mod logged_child;
pub mod measure;
pub mod packet_loss;
pub mod pki;
pub mod pulse;
pub mod sip_registrar;
pub mod sip_uas;
pub mod tcp_proxy;
pub mod ui_rows;
pub mod video;
pub mod video_call;
pub mod wav;
pub mod wire_capture;
pub mod xvfb;

use std::collections::HashSet;
use std::net::{TcpListener, UdpSocket};
use std::sync::{Mutex, PoisonError};

/// Ports this test binary already handed out; never handed out twice, so tests running in
/// parallel threads do not collide.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// Where baresip takes its RTP ports: below the harness's ports.
pub const BARESIP_RTP_PORTS: (u16, u16) = (10_000, 19_999);
/// The lowest port the harness hands out. Handed-out ports lie between this and the kernel's
/// ephemeral range, so no socket bound to port 0 (Callisto's RTP, a browser's, a client
/// connection) and no baresip RTP port can take one between `free_port` and the bind of the
/// process it was meant for.
const FIRST_HANDED_OUT: u16 = 20_000;

/// The first port of the kernel's ephemeral range (`ip_local_port_range`).
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// A loopback port free for both UDP and TCP right now.
pub fn free_port() -> u16 {
    free_port_run(1)
}

/// The first of `count` consecutive loopback ports that are all free for both UDP and TCP
/// (baresip, for one, listens for TLS on its SIP port + 1).
///
/// # Panics
///
/// Panics if the loopback interface has no free ports at all (a broken test environment).
pub fn free_port_run(count: u16) -> u16 {
    let end = ephemeral_start().max(FIRST_HANDED_OUT + 1_000) - count;
    let span = u32::from(end - FIRST_HANDED_OUT);
    // Start somewhere else in every binary, so back-to-back runs do not reuse ports that
    // may still be in TIME_WAIT.
    let seed = std::process::id()
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    for i in 0..span {
        let first = FIRST_HANDED_OUT + ((seed.wrapping_add(i)) % span) as u16;
        if (first..first + count).all(port_is_free) && claim(first, count) {
            return first;
        }
    }
    panic!("no free loopback ports: is `lo` up? (ip link set lo up)");
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok() && UdpSocket::bind(("127.0.0.1", port)).is_ok()
}

fn claim(first: u16, count: u16) -> bool {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    if (first..first + count).any(|port| handed_out.contains(&port)) {
        return false;
    }
    handed_out.extend(first..first + count);
    true
}
