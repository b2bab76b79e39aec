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

    /// Whether the transport is a WebSocket (RFC 7118), over which a client reaches only the
    /// server it connected to.
    pub fn is_websocket(self) -> bool {
        matches!(self, TransportKind::Ws | TransportKind::Wss)
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

/// The host a WebSocket client puts in Via and Contact: a name under `.invalid` that cannot
/// resolve, since the client cannot be reached except over its own connection (RFC 7118 §5).
/// The same `seed` gives the same name, so a client that reconnects keeps its Contact URI and
/// its registration replaces the old binding instead of adding one.
pub fn websocket_contact_host(seed: u64) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    // splitmix64 spreads neighbouring seeds over the whole name.
    let mut x = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    let label: String = (0..12)
        .map(|i| char::from(ALPHABET[((x >> (i * 5)) & 31) as usize]))
        .collect();
    format!("{label}.invalid")
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
        assert!(TransportKind::Ws.is_reliable() && TransportKind::Wss.is_reliable());
        assert!(TransportKind::Wss.is_secure() && !TransportKind::Ws.is_secure());
        assert_eq!(TransportKind::Ws.default_port(), 80);
        assert_eq!(TransportKind::Wss.default_port(), 443);
        assert_eq!(TransportKind::parse("WSS"), Some(TransportKind::Wss));
    }

    #[test]
    fn websocket_contact_hosts_are_stable_per_seed_and_never_resolve() {
        let a = websocket_contact_host(1);
        assert_eq!(a, websocket_contact_host(1));
        assert_ne!(a, websocket_contact_host(2));
        assert!(a.ends_with(".invalid"), "{a}");
        let label = a.trim_end_matches(".invalid");
        assert_eq!(label.len(), 12);
        assert!(label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    }
}
