//! The UDP sockets of one classic stream: RTP on an even port and RTCP on the next one
//! (RFC 3550 §11), the pair a peer without `rtcp-mux` (RFC 5761) or `a=rtcp` (RFC 3605)
//! assumes.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};

/// How many ephemeral ports are tried for a free even/odd pair before RTCP shares the RTP
/// socket.
const PAIR_ATTEMPTS: usize = 64;

/// A stream's sockets: `rtcp` is the RTP port + 1, or `None` when no such pair was free (the
/// stream then receives RTCP on its RTP socket only, which peers that honour `a=rtcp` or
/// multiplex reach). Both stay open for the whole call, whatever each exchange agrees about
/// multiplexing: every description we send names the RTCP port.
#[derive(Debug)]
pub struct StreamSockets {
    pub rtp: UdpSocket,
    pub rtcp: Option<UdpSocket>,
}

impl StreamSockets {
    /// Binds a pair on `ip`: an ephemeral even port for RTP and the odd one above it for RTCP.
    pub fn bind(ip: IpAddr) -> io::Result<StreamSockets> {
        for _ in 0..PAIR_ATTEMPTS {
            let rtp = UdpSocket::bind(SocketAddr::new(ip, 0))?;
            let port = rtp.local_addr()?.port();
            if port % 2 != 0 {
                continue;
            }
            // A port taken meanwhile by someone else just means: try another pair.
            if let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(ip, port + 1)) {
                return Ok(StreamSockets {
                    rtp,
                    rtcp: Some(rtcp),
                });
            }
        }
        tracing::info!(%ip, "no free RTP/RTCP port pair: RTCP shares the RTP port");
        Ok(StreamSockets {
            rtp: UdpSocket::bind(SocketAddr::new(ip, 0))?,
            rtcp: None,
        })
    }

    /// The RTP port.
    pub fn rtp_port(&self) -> io::Result<u16> {
        Ok(self.rtp.local_addr()?.port())
    }

    /// The separate RTCP port, if there is one.
    pub fn rtcp_port(&self) -> io::Result<Option<u16>> {
        self.rtcp
            .as_ref()
            .map(|s| Ok(s.local_addr()?.port()))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn rtp_is_even_and_rtcp_the_port_above() {
        let pairs: Vec<StreamSockets> = (0..8)
            .map(|_| StreamSockets::bind(LOOPBACK).unwrap())
            .collect();
        for pair in &pairs {
            let rtp = pair.rtp_port().unwrap();
            assert_eq!(rtp % 2, 0);
            assert_eq!(pair.rtcp_port().unwrap(), Some(rtp + 1));
        }
    }
}
