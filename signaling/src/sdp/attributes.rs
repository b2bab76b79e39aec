//! Typed views over `a=` lines.
//!
//! Attributes stay generic in the model ([`Attribute`]) so nothing is lost; the accessors here
//! read the ones Callisto acts on. Names compare ASCII-case-insensitively. An accessor that finds
//! a malformed value skips it, as RFC 4566 §5.13 asks of attributes a reader does not
//! understand: a broken `a=rtpmap` leaves its payload type unknown, a broken `a=crypto` is not
//! offered to the negotiation.

use std::fmt;
use std::net::IpAddr;

use super::crypto::CryptoAttribute;
use super::model::{AddressType, Attribute, MediaDescription, SessionDescription};

/// A stream direction (RFC 3264 §5.1, §6.1), from the point of view of whoever wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// `a=sendrecv`, the default.
    #[default]
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// The direction an attribute name stands for.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|d| d.as_str().eq_ignore_ascii_case(name))
    }

    /// The direction with the given send and receive abilities.
    pub fn from_flags(sends: bool, receives: bool) -> Self {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Whether media flows from the writer.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether media flows to the writer.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The same flow seen from the other side: `sendonly` ⇄ `recvonly`.
    pub fn reversed(self) -> Self {
        Direction::from_flags(self.receives(), self.sends())
    }

    /// The flow both directions allow.
    pub fn intersect(self, other: Direction) -> Self {
        Direction::from_flags(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]` (RFC 4566 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// The payload type number.
    pub payload_type: u8,
    /// The encoding name as written (`opus`, `PCMU`, `telephone-event`).
    pub encoding: String,
    /// The RTP clock rate in Hz.
    pub clock_rate: u32,
    /// The encoding parameters: the channel count for audio.
    pub channels: Option<u16>,
}

impl RtpMap {
    /// Reads an `a=rtpmap` value; `None` when malformed.
    pub fn parse(value: &str) -> Option<Self> {
        let (pt, rest) = value.trim().split_once(char::is_whitespace)?;
        let payload_type = pt.parse::<u8>().ok().filter(|pt| *pt < 128)?;
        let mut parts = rest.trim().split('/');
        let encoding = parts.next().filter(|e| !e.is_empty())?;
        let clock_rate = parts.next()?.trim().parse::<u32>().ok()?;
        let channels = parts
            .next()
            .map(|c| c.trim().parse::<u16>())
            .transpose()
            .ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(RtpMap {
            payload_type,
            encoding: encoding.to_owned(),
            clock_rate,
            channels,
        })
    }

    /// The static RTP/AVP audio and video payload types of RFC 3551 §6, which need no rtpmap.
    pub fn static_payload_type(payload_type: u8) -> Option<Self> {
        let (encoding, clock_rate, channels) = match payload_type {
            0 => ("PCMU", 8000, Some(1)),
            3 => ("GSM", 8000, Some(1)),
            4 => ("G723", 8000, Some(1)),
            5 => ("DVI4", 8000, Some(1)),
            6 => ("DVI4", 16000, Some(1)),
            7 => ("LPC", 8000, Some(1)),
            8 => ("PCMA", 8000, Some(1)),
            9 => ("G722", 8000, Some(1)),
            10 => ("L16", 44100, Some(2)),
            11 => ("L16", 44100, Some(1)),
            12 => ("QCELP", 8000, Some(1)),
            13 => ("CN", 8000, Some(1)),
            14 => ("MPA", 90000, None),
            15 => ("G728", 8000, Some(1)),
            16 => ("DVI4", 11025, Some(1)),
            17 => ("DVI4", 22050, Some(1)),
            18 => ("G729", 8000, Some(1)),
            25 => ("CelB", 90000, None),
            26 => ("JPEG", 90000, None),
            28 => ("nv", 90000, None),
            31 => ("H261", 90000, None),
            32 => ("MPV", 90000, None),
            33 => ("MP2T", 90000, None),
            34 => ("H263", 90000, None),
            _ => return None,
        };
        Some(RtpMap {
            payload_type,
            encoding: encoding.to_owned(),
            clock_rate,
            channels,
        })
    }

    /// The channel count (1 when the rtpmap does not say).
    pub fn channel_count(&self) -> u16 {
        self.channels.unwrap_or(1)
    }
}

/// The `a=rtpmap` value: `<payload type> <encoding>/<clock rate>[/<channels>]`.
impl fmt::Display for RtpMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}/{}",
            self.payload_type, self.encoding, self.clock_rate
        )?;
        if let Some(channels) = self.channels {
            write!(f, "/{channels}")?;
        }
        Ok(())
    }
}

/// `a=rtcp:<port> [<nettype> <addrtype> <address>]` (RFC 3605).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpAttribute {
    /// The port RTCP is received on.
    pub port: u16,
    /// The address type, when an address is given.
    pub address_type: Option<AddressType>,
    /// The address RTCP is received on, when it differs from the connection address.
    pub address: Option<String>,
}

impl RtcpAttribute {
    /// Reads an `a=rtcp` value; `None` when malformed.
    pub fn parse(value: &str) -> Option<Self> {
        let fields: Vec<&str> = value.split_whitespace().collect();
        match fields[..] {
            [port] => Some(RtcpAttribute {
                port: port.parse().ok()?,
                address_type: None,
                address: None,
            }),
            [port, _net_type, address_type, address] => Some(RtcpAttribute {
                port: port.parse().ok()?,
                address_type: Some(AddressType::from_token(address_type)),
                address: Some(address.to_owned()),
            }),
            _ => None,
        }
    }

    /// The address as an IP, when one is given and is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.as_deref()?.parse().ok()
    }
}

/// `a=fingerprint:<hash function> <hex bytes>` (RFC 8122), the DTLS certificate fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// The hash function (`sha-256`), as written.
    pub hash_function: String,
    /// The colon-separated hex bytes, as written.
    pub value: String,
}

impl Fingerprint {
    /// Reads an `a=fingerprint` value; `None` when malformed.
    pub fn parse(value: &str) -> Option<Self> {
        let (hash_function, value) = value.trim().split_once(char::is_whitespace)?;
        let value = value.trim();
        (!value.is_empty()).then(|| Fingerprint {
            hash_function: hash_function.to_owned(),
            value: value.to_owned(),
        })
    }
}

/// `a=setup` (RFC 4145 §4): which side opens the DTLS (or TCP) connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setup {
    /// `active`: this side connects.
    Active,
    /// `passive`: this side accepts.
    Passive,
    /// `actpass`: either; the answerer decides.
    ActPass,
    /// `holdconn`: not now.
    HoldConn,
}

impl Setup {
    /// Reads an `a=setup` value.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "active" => Some(Setup::Active),
            "passive" => Some(Setup::Passive),
            "actpass" => Some(Setup::ActPass),
            "holdconn" => Some(Setup::HoldConn),
            _ => None,
        }
    }

    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
            Setup::HoldConn => "holdconn",
        }
    }
}

/// Accessors valid at both session and media level.
macro_rules! common_attribute_accessors {
    ($ty:ty) => {
        impl $ty {
            /// The first attribute named `name`.
            pub fn attribute(&self, name: &str) -> Option<&Attribute> {
                self.attributes
                    .iter()
                    .find(|a| a.name.eq_ignore_ascii_case(name))
            }

            /// Every attribute named `name`, in order.
            pub fn attributes_named<'a>(
                &'a self,
                name: &'a str,
            ) -> impl Iterator<Item = &'a Attribute> + 'a {
                self.attributes
                    .iter()
                    .filter(move |a| a.name.eq_ignore_ascii_case(name))
            }

            /// The value of the first attribute named `name` that has one.
            pub fn attribute_value(&self, name: &str) -> Option<&str> {
                self.attributes
                    .iter()
                    .filter(|a| a.name.eq_ignore_ascii_case(name))
                    .find_map(|a| a.value.as_deref())
            }

            /// Whether an attribute named `name` is present.
            pub fn has_attribute(&self, name: &str) -> bool {
                self.attribute(name).is_some()
            }

            /// The direction attribute written at this level, if any (the first one).
            pub fn direction(&self) -> Option<Direction> {
                self.attributes
                    .iter()
                    .filter(|a| a.value.is_none())
                    .find_map(|a| Direction::from_name(&a.name))
            }

            /// `a=fingerprint` at this level.
            pub fn fingerprint(&self) -> Option<Fingerprint> {
                self.attributes_named("fingerprint")
                    .find_map(|a| Fingerprint::parse(a.value.as_deref()?))
            }

            /// `a=setup` at this level.
            pub fn setup(&self) -> Option<Setup> {
                self.attributes_named("setup")
                    .find_map(|a| Setup::parse(a.value.as_deref()?))
            }

            /// `a=ice-ufrag` at this level.
            pub fn ice_ufrag(&self) -> Option<&str> {
                self.attribute_value("ice-ufrag").map(str::trim)
            }

            /// `a=ice-pwd` at this level.
            pub fn ice_pwd(&self) -> Option<&str> {
                self.attribute_value("ice-pwd").map(str::trim)
            }
        }
    };
}

common_attribute_accessors!(SessionDescription);
common_attribute_accessors!(MediaDescription);

impl SessionDescription {
    /// The direction of `media`: its own attribute, else the session-level one, else
    /// `sendrecv` (RFC 4566 §6). The connection address is not considered here; see
    /// [`Connection::is_hold_address`](super::Connection::is_hold_address).
    pub fn direction_of(&self, media: &MediaDescription) -> Direction {
        media.direction().or(self.direction()).unwrap_or_default()
    }
}

impl MediaDescription {
    /// Every well-formed `a=rtpmap`, in order.
    pub fn rtpmaps(&self) -> impl Iterator<Item = RtpMap> + '_ {
        self.attributes_named("rtpmap")
            .filter_map(|a| RtpMap::parse(a.value.as_deref()?))
    }

    /// The `a=rtpmap` of `payload_type`.
    pub fn rtpmap(&self, payload_type: u8) -> Option<RtpMap> {
        self.rtpmaps().find(|m| m.payload_type == payload_type)
    }

    /// What `payload_type` stands for: its rtpmap, else the static assignment of RFC 3551
    /// (so `0` is PCMU/8000 and `8` PCMA/8000 without an rtpmap).
    pub fn codec(&self, payload_type: u8) -> Option<RtpMap> {
        self.rtpmap(payload_type)
            .or_else(|| RtpMap::static_payload_type(payload_type))
    }

    /// The format parameters of `payload_type` (the text after `a=fmtp:<pt> `).
    pub fn fmtp(&self, payload_type: u8) -> Option<&str> {
        self.attributes_named("fmtp").find_map(|a| {
            let (pt, params) = a.value.as_deref()?.trim().split_once(char::is_whitespace)?;
            (pt.parse::<u8>().ok()? == payload_type).then(|| params.trim())
        })
    }

    /// `a=ptime` in whole milliseconds (a fractional part is dropped).
    pub fn ptime(&self) -> Option<u32> {
        self.attribute_value("ptime").and_then(whole_milliseconds)
    }

    /// `a=maxptime` in whole milliseconds.
    pub fn maxptime(&self) -> Option<u32> {
        self.attribute_value("maxptime")
            .and_then(whole_milliseconds)
    }

    /// `a=rtcp` (RFC 3605).
    pub fn rtcp(&self) -> Option<RtcpAttribute> {
        self.attributes_named("rtcp")
            .find_map(|a| RtcpAttribute::parse(a.value.as_deref()?))
    }

    /// Whether `a=rtcp-mux` (RFC 5761) is present.
    pub fn rtcp_mux(&self) -> bool {
        self.has_attribute("rtcp-mux")
    }

    /// Every well-formed `a=crypto` with a suite Callisto implements, in order (RFC 4568).
    pub fn crypto(&self) -> impl Iterator<Item = CryptoAttribute> + '_ {
        self.attributes_named("crypto")
            .filter_map(|a| CryptoAttribute::parse(a.value.as_deref()?).ok())
    }

    /// `a=mid` (RFC 5888).
    pub fn mid(&self) -> Option<&str> {
        self.attribute_value("mid").map(str::trim)
    }

    /// The `a=candidate` values (RFC 8839), as text.
    pub fn candidates(&self) -> impl Iterator<Item = &str> + '_ {
        self.attributes_named("candidate")
            .filter_map(|a| a.value.as_deref())
    }
}

fn whole_milliseconds(value: &str) -> Option<u32> {
    let value = value.trim();
    let whole = value.split_once('.').map_or(value, |(whole, _)| whole);
    whole.parse().ok()
}
