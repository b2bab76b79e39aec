//! The session description model (RFC 4566 §5) and its writer.
//!
//! The model keeps every field Callisto or a later reader may need, and attributes generically in
//! their order of appearance; typed views over attributes live in [`super::attributes`].
//! `Display` writes the description with CRLF line ends in the order RFC 4566 §5 fixes:
//! `v o s i u e p c b t r z k a`, then each media section `m i c b k a`.

use std::fmt::{self, Write as _};
use std::net::IpAddr;

/// A whole session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `v=`: the protocol version, always 0.
    pub version: u32,
    /// `o=`: who created the session and which version of it this is.
    pub origin: Origin,
    /// `s=`: the session name (often `-`; an empty value is accepted).
    pub session_name: String,
    /// `i=`: session information.
    pub information: Option<String>,
    /// `u=`: a URI describing the session.
    pub uri: Option<String>,
    /// `e=` lines: e-mail addresses.
    pub emails: Vec<String>,
    /// `p=` lines: phone numbers.
    pub phones: Vec<String>,
    /// `c=` at session level: the default connection of every media section.
    pub connection: Option<Connection>,
    /// `b=` lines at session level.
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` lines with their `r=` lines. Written as `t=0 0` when empty.
    pub timing: Vec<Timing>,
    /// `z=`: time zone adjustments, kept as text.
    pub time_zones: Option<String>,
    /// `k=`: an encryption key line (obsolete; kept as text).
    pub key: Option<String>,
    /// Session-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// The media sections, in order.
    pub media: Vec<MediaDescription>,
}

impl SessionDescription {
    /// A description with the given origin and session name, `t=0 0`, and nothing else.
    pub fn new(origin: Origin, session_name: impl Into<String>) -> Self {
        SessionDescription {
            version: 0,
            origin,
            session_name: session_name.into(),
            information: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: None,
            bandwidths: Vec::new(),
            timing: vec![Timing::default()],
            time_zones: None,
            key: None,
            attributes: Vec::new(),
            media: Vec::new(),
        }
    }

    /// The connection that applies to `media`: its own `c=` line, else the session's.
    pub fn connection_for<'a>(&'a self, media: &'a MediaDescription) -> Option<&'a Connection> {
        media.connection.as_ref().or(self.connection.as_ref())
    }
}

/// The `o=` line (RFC 4566 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The originator's login, or `-`.
    pub username: String,
    /// `sess-id`: a numeric string that stays the same for the whole session.
    pub session_id: String,
    /// `sess-version`: increases each time the description changes (RFC 3264 §8).
    pub session_version: u64,
    /// The network type, `IN`.
    pub net_type: String,
    /// The address type.
    pub address_type: AddressType,
    /// The address of the originating host (an IP literal or a name).
    pub address: String,
}

impl Origin {
    /// An origin `<username> <session_id> <session_version> IN IP4|IP6 <address>`.
    pub fn new(
        username: impl Into<String>,
        session_id: impl Into<String>,
        session_version: u64,
        address: IpAddr,
    ) -> Self {
        Origin {
            username: username.into(),
            session_id: session_id.into(),
            session_version,
            net_type: "IN".to_owned(),
            address_type: AddressType::of(address),
            address: address.to_string(),
        }
    }
}

/// The address type of `o=`, `c=` and `a=rtcp` addresses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AddressType {
    /// `IP4`.
    Ip4,
    /// `IP6`.
    Ip6,
    /// Any other token, kept as written.
    Other(String),
}

impl AddressType {
    /// The address type of an IP address.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => AddressType::Ip4,
            IpAddr::V6(_) => AddressType::Ip6,
        }
    }

    /// Reads an address type token (`IP4` and `IP6` in any case).
    pub fn from_token(token: &str) -> Self {
        if token.eq_ignore_ascii_case("IP4") {
            AddressType::Ip4
        } else if token.eq_ignore_ascii_case("IP6") {
            AddressType::Ip6
        } else {
            AddressType::Other(token.to_owned())
        }
    }

    /// The token as written in SDP.
    pub fn as_str(&self) -> &str {
        match self {
            AddressType::Ip4 => "IP4",
            AddressType::Ip6 => "IP6",
            AddressType::Other(token) => token,
        }
    }
}

/// A `c=` line (RFC 4566 §5.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The network type, `IN`.
    pub net_type: String,
    /// The address type.
    pub address_type: AddressType,
    /// The address without its `/ttl` and `/count` suffixes (an IP literal or a name).
    pub address: String,
    /// The multicast TTL (IPv4 multicast only).
    pub ttl: Option<u8>,
    /// The number of consecutive multicast addresses.
    pub count: Option<u32>,
}

impl Connection {
    /// A unicast connection to `ip`.
    pub fn new(ip: IpAddr) -> Self {
        Connection {
            net_type: "IN".to_owned(),
            address_type: AddressType::of(ip),
            address: ip.to_string(),
            ttl: None,
            count: None,
        }
    }

    /// The address as an IP, when it is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.parse().ok()
    }

    /// Whether this is the RFC 2543 hold address `0.0.0.0` (or its IPv6 form `::`): the sender
    /// of the description does not want to receive media (RFC 3264 §8.4).
    pub fn is_hold_address(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_unspecified())
    }
}

/// A `b=<type>:<kbps or bps>` line (RFC 4566 §5.8, RFC 3556, RFC 3890).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    /// The bandwidth type: `CT`, `AS`, `TIAS`, `RS`, `RR` or another token.
    pub kind: String,
    /// The value, in the unit of the type.
    pub value: u64,
}

/// A `t=` line and the `r=` lines that follow it (RFC 4566 §5.9–5.10).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timing {
    /// The start time (NTP seconds), 0 for an unbounded session.
    pub start: u64,
    /// The stop time (NTP seconds), 0 for an unbounded session.
    pub stop: u64,
    /// The `r=` lines, kept as text.
    pub repeats: Vec<String>,
}

/// An `a=` line: a name and, for value attributes, the text after the first colon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The attribute name (`rtpmap`, `sendrecv`, …).
    pub name: String,
    /// The value, `None` for property attributes such as `a=rtcp-mux`.
    pub value: Option<String>,
}

impl Attribute {
    /// A property attribute (`a=<name>`).
    pub fn flag(name: impl Into<String>) -> Self {
        Attribute {
            name: name.into(),
            value: None,
        }
    }

    /// A value attribute (`a=<name>:<value>`).
    pub fn value(name: impl Into<String>, value: impl Into<String>) -> Self {
        Attribute {
            name: name.into(),
            value: Some(value.into()),
        }
    }
}

/// The media type of an `m=` line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// `audio`.
    Audio,
    /// `video`.
    Video,
    /// `application` (data channels, BFCP, …).
    Application,
    /// Any other token (`text`, `message`, `image`, …), kept as written.
    Other(String),
}

impl MediaKind {
    /// Reads a media type token (the known ones in any case).
    pub fn from_token(token: &str) -> Self {
        if token.eq_ignore_ascii_case("audio") {
            MediaKind::Audio
        } else if token.eq_ignore_ascii_case("video") {
            MediaKind::Video
        } else if token.eq_ignore_ascii_case("application") {
            MediaKind::Application
        } else {
            MediaKind::Other(token.to_owned())
        }
    }

    /// The token as written in SDP.
    pub fn as_str(&self) -> &str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Application => "application",
            MediaKind::Other(token) => token,
        }
    }
}

/// The transport protocol of an `m=` line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `RTP/AVP` (RFC 3551): plain RTP.
    RtpAvp,
    /// `RTP/SAVP` (RFC 3711): SRTP, keyed by `a=crypto` in classic SIP.
    RtpSavp,
    /// `RTP/AVPF` (RFC 4585): plain RTP with RTCP feedback.
    RtpAvpf,
    /// `RTP/SAVPF` (RFC 5124): SRTP with RTCP feedback.
    RtpSavpf,
    /// `UDP/TLS/RTP/SAVPF` (RFC 5764): DTLS-SRTP with feedback, the WebRTC profile.
    UdpTlsRtpSavpf,
    /// Any other protocol (`UDP/DTLS/SCTP`, `udp`, `TCP/MSRP`, …), kept as written.
    Other(String),
}

impl Protocol {
    /// Reads a protocol token (the known ones in any case).
    pub fn from_token(token: &str) -> Self {
        const KNOWN: [(&str, Protocol); 5] = [
            ("RTP/AVP", Protocol::RtpAvp),
            ("RTP/SAVP", Protocol::RtpSavp),
            ("RTP/AVPF", Protocol::RtpAvpf),
            ("RTP/SAVPF", Protocol::RtpSavpf),
            ("UDP/TLS/RTP/SAVPF", Protocol::UdpTlsRtpSavpf),
        ];
        KNOWN
            .into_iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(token))
            .map_or_else(|| Protocol::Other(token.to_owned()), |(_, p)| p)
    }

    /// The token as written in SDP.
    pub fn as_str(&self) -> &str {
        match self {
            Protocol::RtpAvp => "RTP/AVP",
            Protocol::RtpSavp => "RTP/SAVP",
            Protocol::RtpAvpf => "RTP/AVPF",
            Protocol::RtpSavpf => "RTP/SAVPF",
            Protocol::UdpTlsRtpSavpf => "UDP/TLS/RTP/SAVPF",
            Protocol::Other(token) => token,
        }
    }

    /// Whether the formats of this protocol are RTP payload type numbers: every profile ending
    /// in `RTP/AVP`, `RTP/SAVP`, `RTP/AVPF` or `RTP/SAVPF`, including unknown ones such as
    /// `TCP/DTLS/RTP/SAVPF`.
    pub fn is_rtp(&self) -> bool {
        match self {
            Protocol::Other(token) => {
                let upper = token.to_ascii_uppercase();
                ["RTP/AVP", "RTP/SAVP", "RTP/AVPF", "RTP/SAVPF"]
                    .iter()
                    .any(|p| upper == *p || upper.ends_with(&format!("/{p}")))
            }
            _ => true,
        }
    }

    /// Whether the profile is secure RTP (`SAVP` or `SAVPF`, keyed by SDES or DTLS).
    pub fn is_secure(&self) -> bool {
        self.is_rtp() && self.as_str().to_ascii_uppercase().contains("/SAVP")
    }
}

/// An `m=` line and the lines of its section (RFC 4566 §5.14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// The media type.
    pub kind: MediaKind,
    /// The transport port; 0 means the stream is rejected or disabled (RFC 3264 §6).
    pub port: u16,
    /// The `/<number of ports>` suffix of the port.
    pub port_count: Option<u16>,
    /// The transport protocol.
    pub protocol: Protocol,
    /// The formats: RTP payload type numbers (checked to be 0–127) for RTP protocols, any
    /// tokens otherwise.
    pub formats: Vec<String>,
    /// `i=`: the media title.
    pub title: Option<String>,
    /// `c=`: the connection for this section; the first one when several are present.
    pub connection: Option<Connection>,
    /// `b=` lines of this section.
    pub bandwidths: Vec<Bandwidth>,
    /// `k=`: an encryption key line (obsolete; kept as text).
    pub key: Option<String>,
    /// `a=` lines of this section, in order.
    pub attributes: Vec<Attribute>,
}

impl MediaDescription {
    /// A media section with no connection, bandwidth or attributes.
    pub fn new(kind: MediaKind, port: u16, protocol: Protocol, formats: Vec<String>) -> Self {
        MediaDescription {
            kind,
            port,
            port_count: None,
            protocol,
            formats,
            title: None,
            connection: None,
            bandwidths: Vec::new(),
            key: None,
            attributes: Vec::new(),
        }
    }

    /// The formats as RTP payload types (those that are numbers below 128).
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok())
            .filter(|pt| *pt < 128)
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        write!(f, "v={}\r\n", self.version)?;
        write!(
            f,
            "o={} {} {} {} {} {}\r\n",
            o.username,
            o.session_id,
            o.session_version,
            o.net_type,
            o.address_type.as_str(),
            o.address
        )?;
        write!(f, "s={}\r\n", self.session_name)?;
        write_optional(f, 'i', self.information.as_deref())?;
        write_optional(f, 'u', self.uri.as_deref())?;
        for email in &self.emails {
            write!(f, "e={email}\r\n")?;
        }
        for phone in &self.phones {
            write!(f, "p={phone}\r\n")?;
        }
        if let Some(c) = &self.connection {
            write!(f, "{c}")?;
        }
        for b in &self.bandwidths {
            write!(f, "{b}")?;
        }
        if self.timing.is_empty() {
            f.write_str("t=0 0\r\n")?;
        }
        for t in &self.timing {
            write!(f, "t={} {}\r\n", t.start, t.stop)?;
            for r in &t.repeats {
                write!(f, "r={r}\r\n")?;
            }
        }
        write_optional(f, 'z', self.time_zones.as_deref())?;
        write_optional(f, 'k', self.key.as_deref())?;
        for a in &self.attributes {
            write!(f, "{a}")?;
        }
        for m in &self.media {
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

impl fmt::Display for MediaDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.kind.as_str(), self.port)?;
        if let Some(count) = self.port_count {
            write!(f, "/{count}")?;
        }
        write!(f, " {}", self.protocol.as_str())?;
        for format in &self.formats {
            f.write_char(' ')?;
            f.write_str(format)?;
        }
        f.write_str("\r\n")?;
        write_optional(f, 'i', self.title.as_deref())?;
        if let Some(c) = &self.connection {
            write!(f, "{c}")?;
        }
        for b in &self.bandwidths {
            write!(f, "{b}")?;
        }
        write_optional(f, 'k', self.key.as_deref())?;
        for a in &self.attributes {
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

/// Writes the whole `c=` line, CRLF included.
impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "c={} {} {}",
            self.net_type,
            self.address_type.as_str(),
            self.address
        )?;
        if let Some(ttl) = self.ttl {
            write!(f, "/{ttl}")?;
        }
        if let Some(count) = self.count {
            write!(f, "/{count}")?;
        }
        f.write_str("\r\n")
    }
}

/// Writes the whole `b=` line, CRLF included.
impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b={}:{}\r\n", self.kind, self.value)
    }
}

/// Writes the whole `a=` line, CRLF included.
impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "a={}:{}\r\n", self.name, value),
            None => write!(f, "a={}\r\n", self.name),
        }
    }
}

fn write_optional(f: &mut fmt::Formatter<'_>, kind: char, value: Option<&str>) -> fmt::Result {
    match value {
        Some(value) => write!(f, "{kind}={value}\r\n"),
        None => Ok(()),
    }
}
