//! Classic sessions on loopback, for the media tests and benches: sockets bound to 127.0.0.1,
//! and the settings every such session uses (RTP and RTCP on one socket, sending and receiving).
//! A crate that includes `mouth_to_ear.rs` includes this module at its root too.

use std::net::{SocketAddr, UdpSocket};

use callisto_media::session::{AudioStreamConfig, ClassicSessionConfig, MediaDirection, SrtpKeys};

/// A UDP socket on 127.0.0.1, on a port the kernel picks.
pub fn bind() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").expect("a loopback socket")
}

/// Where `socket` is bound.
pub fn addr(socket: &UdpSocket) -> SocketAddr {
    socket.local_addr().expect("a bound socket")
}

/// A session on `socket` sending `stream` to `remote` (SRTP with `srtp`), RTCP multiplexed,
/// sending and receiving, named `cname` in RTCP.
pub fn session_config(
    socket: UdpSocket,
    remote: SocketAddr,
    stream: AudioStreamConfig,
    srtp: Option<SrtpKeys>,
    cname: &str,
) -> ClassicSessionConfig {
    ClassicSessionConfig {
        rtp_socket: socket,
        rtcp_socket: None,
        remote_rtp: remote,
        remote_rtcp: None,
        stream,
        srtp,
        direction: MediaDirection::SENDRECV,
        cname: cname.to_owned(),
    }
}
