//! Transport vocabulary shared by the sans-IO core and the driver.

use std::fmt;
use std::net::SocketAddr;

/// A SIP transport protocol, as named in a Via header and a `transport=` URI parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    Udp,
    Tcp,
    Tls,
    Ws,
    Wss,
}

impl TransportKind {
    /// Reliable transports need no retransmissions by the transaction layer (RFC 3261 §17.1.1.2).
    pub fn is_reliable(self) -> bool {
        !matches!(self, TransportKind::Udp)
    }

    /// Whether the transport is secured (TLS or WSS), which `sips:` URIs require.
    pub fn is_secure(self) -> bool {
        matches!(self, TransportKind::Tls | TransportKind::Wss)
    }

    /// The token used in a Via header's sent-protocol (`SIP/2.0/UDP`).
    pub fn via_token(self) -> &'static str {
        match self {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
            TransportKind::Tls => "TLS",
            TransportKind::Ws => "WS",
            TransportKind::Wss => "WSS",
        }
    }

    /// The value of a `transport=` URI parameter.
    pub fn uri_param(self) -> &'static str {
        match self {
            TransportKind::Udp => "udp",
            TransportKind::Tcp => "tcp",
            TransportKind::Tls => "tls",
            TransportKind::Ws => "ws",
            TransportKind::Wss => "wss",
        }
    }

    /// Parses a Via token or a URI parameter value, case-insensitively.
    pub fn parse(token: &str) -> Option<Self> {
        match token.to_ascii_lowercase().as_str() {
            "udp" => Some(TransportKind::Udp),
            "tcp" => Some(TransportKind::Tcp),
            "tls" => Some(TransportKind::Tls),
            "ws" => Some(TransportKind::Ws),
            "wss" => Some(TransportKind::Wss),
            _ => None,
        }
    }

    /// The default port for the transport (RFC 3261 §19.1.2, RFC 7118).
    pub fn default_port(self) -> u16 {
        match self {
            TransportKind::Udp | TransportKind::Tcp => 5060,
            TransportKind::Tls => 5061,
            TransportKind::Ws => 80,
            TransportKind::Wss => 443,
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.via_token())
    }
}

/// Where a message goes to or came from: a transport and a socket address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    pub transport: TransportKind,
    pub addr: SocketAddr,
}

impl Target {
    pub fn new(transport: TransportKind, addr: SocketAddr) -> Self {
        Target { transport, addr }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport.uri_param(), self.addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_tokens() {
        for kind in [
            TransportKind::Udp,
            TransportKind::Tcp,
            TransportKind::Tls,
            TransportKind::Ws,
            TransportKind::Wss,
        ] {
            assert_eq!(TransportKind::parse(kind.via_token()), Some(kind));
            assert_eq!(TransportKind::parse(kind.uri_param()), Some(kind));
        }
        assert_eq!(TransportKind::parse("sctp"), None);
        assert!(!TransportKind::Udp.is_reliable());
        assert!(TransportKind::Tcp.is_reliable());
        assert!(TransportKind::Tls.is_secure());
    }
}
