//! Parsing a session description (RFC 4566 §5).
//!
//! Tolerant where real devices deviate harmlessly: LF-only line ends, blank lines, trailing
//! whitespace, bytes that are not UTF-8 (replaced), unknown line types (ignored), lines out of
//! the RFC's order within a level, an empty `s=`, a missing `t=` (read as `t=0 0`). Strict where a wrong reading
//! would send media to the wrong place or misread a codec: `v=0` first, exactly one `o=` and `s=`
//! with their full syntax, the syntax of `c=`, `b=`, `t=` and `m=` lines, numeric ports, and RTP
//! payload types between 0 and 127. Attribute values are not checked here; the typed accessors
//! in [`super::attributes`] read them and skip malformed ones.

use std::str::FromStr;

use super::error::SdpError;
use super::model::{
    AddressType, Attribute, Bandwidth, Connection, MediaDescription, MediaKind, Origin, Protocol,
    SessionDescription, Timing,
};

/// The longest body [`parse`] accepts, in bytes: ample for a WebRTC offer with many candidates.
pub const MAX_SDP_LEN: usize = 64 * 1024;

/// Parses a session description from text or bytes.
pub fn parse(input: impl AsRef<[u8]>) -> Result<SessionDescription, SdpError> {
    let bytes = input.as_ref();
    if bytes.len() > MAX_SDP_LEN {
        return Err(SdpError::TooLarge { len: bytes.len() });
    }
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text
        .split('\n')
        .enumerate()
        .map(|(i, line)| (i + 1, line.strip_suffix('\r').unwrap_or(line).trim_end()))
        .filter(|(_, line)| !line.is_empty());

    let Some((first_no, first)) = lines.next() else {
        return Err(SdpError::Empty);
    };
    let (kind, value) = split_line(first_no, first)?;
    if kind != 'v' {
        return Err(SdpError::VersionNotFirst);
    }
    if value.trim() != "0" {
        return Err(SdpError::UnsupportedVersion);
    }

    let mut builder = Builder::default();
    for (line_no, line) in lines {
        let (kind, value) = split_line(line_no, line)?;
        builder.line(line_no, kind, value)?;
    }
    builder.finish()
}

impl FromStr for SessionDescription {
    type Err = SdpError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// Splits `<letter>=<value>`; rejects lines of another shape and embedded control characters.
fn split_line(line_no: usize, line: &str) -> Result<(char, &str), SdpError> {
    let malformed = SdpError::MalformedLine { line: line_no };
    let mut chars = line.chars();
    let kind = chars.next().ok_or_else(|| malformed.clone())?;
    if !kind.is_ascii_lowercase() || chars.next() != Some('=') {
        return Err(malformed);
    }
    if line.chars().any(|c| c == '\0' || c == '\r') {
        return Err(malformed);
    }
    Ok((kind, &line[2..]))
}

/// Collects lines into the description, one level (session or media) at a time.
#[derive(Default)]
struct Builder {
    origin: Option<Origin>,
    session_name: Option<String>,
    information: Option<String>,
    uri: Option<String>,
    emails: Vec<String>,
    phones: Vec<String>,
    connection: Option<Connection>,
    bandwidths: Vec<Bandwidth>,
    timing: Vec<Timing>,
    time_zones: Option<String>,
    key: Option<String>,
    attributes: Vec<Attribute>,
    media: Vec<MediaDescription>,
}

impl Builder {
    fn line(&mut self, line_no: usize, kind: char, value: &str) -> Result<(), SdpError> {
        match kind {
            'v' => Err(SdpError::DuplicateLine('v')),
            'o' if self.media.is_empty() => {
                if self.origin.is_some() {
                    return Err(SdpError::DuplicateLine('o'));
                }
                self.origin = Some(parse_origin(line_no, value)?);
                Ok(())
            }
            's' if self.media.is_empty() => {
                if self.session_name.is_some() {
                    return Err(SdpError::DuplicateLine('s'));
                }
                self.session_name = Some(value.to_owned());
                Ok(())
            }
            'o' | 's' => Err(SdpError::BadField {
                line: line_no,
                kind,
                reason: "inside a media section",
            }),
            't' => {
                self.timing.push(parse_timing(line_no, value)?);
                Ok(())
            }
            'r' => {
                if let Some(timing) = self.timing.last_mut() {
                    timing.repeats.push(value.to_owned());
                }
                Ok(())
            }
            'z' => set_once(&mut self.time_zones, value),
            'u' => set_once(&mut self.uri, value),
            'e' => {
                self.emails.push(value.to_owned());
                Ok(())
            }
            'p' => {
                self.phones.push(value.to_owned());
                Ok(())
            }
            'm' => {
                self.media.push(parse_media(line_no, value)?);
                Ok(())
            }
            'i' | 'c' | 'b' | 'k' | 'a' => self.level_line(line_no, kind, value),
            // Unknown types (`f=`, `y=` from some cameras and MCUs): ignored.
            _ => Ok(()),
        }
    }

    /// A line that belongs to the current level: the last media section, or the session.
    fn level_line(&mut self, line_no: usize, kind: char, value: &str) -> Result<(), SdpError> {
        let (information, connection, bandwidths, key, attributes) = match self.media.last_mut() {
            Some(m) => (
                &mut m.title,
                &mut m.connection,
                &mut m.bandwidths,
                &mut m.key,
                &mut m.attributes,
            ),
            None => (
                &mut self.information,
                &mut self.connection,
                &mut self.bandwidths,
                &mut self.key,
                &mut self.attributes,
            ),
        };
        match kind {
            'i' => set_once(information, value),
            'k' => set_once(key, value),
            'c' => {
                let parsed = parse_connection(line_no, value)?;
                if connection.is_none() {
                    *connection = Some(parsed);
                }
                Ok(())
            }
            'b' => {
                bandwidths.push(parse_bandwidth(line_no, value)?);
                Ok(())
            }
            _ => {
                attributes.push(parse_attribute(line_no, value)?);
                Ok(())
            }
        }
    }

    fn finish(mut self) -> Result<SessionDescription, SdpError> {
        if self.timing.is_empty() {
            // What the writer will write: an unbounded session.
            self.timing.push(Timing::default());
        }
        Ok(SessionDescription {
            version: 0,
            origin: self.origin.ok_or(SdpError::MissingLine('o'))?,
            session_name: self.session_name.ok_or(SdpError::MissingLine('s'))?,
            information: self.information,
            uri: self.uri,
            emails: self.emails,
            phones: self.phones,
            connection: self.connection,
            bandwidths: self.bandwidths,
            timing: self.timing,
            time_zones: self.time_zones,
            key: self.key,
            attributes: self.attributes,
            media: self.media,
        })
    }
}

/// Keeps the first value of a line that should appear once; later ones are ignored.
fn set_once(slot: &mut Option<String>, value: &str) -> Result<(), SdpError> {
    if slot.is_none() {
        *slot = Some(value.to_owned());
    }
    Ok(())
}

fn bad(line: usize, kind: char, reason: &'static str) -> SdpError {
    SdpError::BadField { line, kind, reason }
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`.
fn parse_origin(line_no: usize, value: &str) -> Result<Origin, SdpError> {
    let fields: Vec<&str> = value.split_whitespace().collect();
    let [username, session_id, version, net_type, address_type, address] = fields[..] else {
        return Err(bad(line_no, 'o', "does not have six fields"));
    };
    let session_version = version
        .parse::<u64>()
        .map_err(|_| bad(line_no, 'o', "has a bad session version"))?;
    if !session_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(bad(line_no, 'o', "has a bad session id"));
    }
    Ok(Origin {
        username: username.to_owned(),
        session_id: session_id.to_owned(),
        session_version,
        net_type: net_type.to_owned(),
        address_type: AddressType::from_token(address_type),
        address: address.to_owned(),
    })
}

/// `c=<nettype> <addrtype> <connection-address>` with `/ttl` and `/count` suffixes.
fn parse_connection(line_no: usize, value: &str) -> Result<Connection, SdpError> {
    let fields: Vec<&str> = value.split_whitespace().collect();
    let [net_type, address_type, address] = fields[..] else {
        return Err(bad(line_no, 'c', "does not have three fields"));
    };
    let address_type = AddressType::from_token(address_type);
    let mut parts = address.split('/');
    let host = parts.next().unwrap_or_default();
    if host.is_empty() {
        return Err(bad(line_no, 'c', "has no address"));
    }
    let suffixes: Vec<&str> = parts.collect();
    let number = |s: &str| {
        s.parse::<u32>()
            .map_err(|_| bad(line_no, 'c', "has a bad suffix"))
    };
    let (ttl, count) = match (&address_type, &suffixes[..]) {
        (_, []) => (None, None),
        (AddressType::Ip4, [ttl]) => (Some(number(ttl)?), None),
        (AddressType::Ip4, [ttl, count]) => (Some(number(ttl)?), Some(number(count)?)),
        (_, [count]) => (None, Some(number(count)?)),
        _ => return Err(bad(line_no, 'c', "has a bad suffix")),
    };
    let ttl = ttl
        .map(u8::try_from)
        .transpose()
        .map_err(|_| bad(line_no, 'c', "has a bad suffix"))?;
    Ok(Connection {
        net_type: net_type.to_owned(),
        address_type,
        address: host.to_owned(),
        ttl,
        count,
    })
}

/// `b=<bwtype>:<bandwidth>`.
fn parse_bandwidth(line_no: usize, value: &str) -> Result<Bandwidth, SdpError> {
    let (kind, amount) = value
        .split_once(':')
        .ok_or_else(|| bad(line_no, 'b', "has no colon"))?;
    let kind = kind.trim();
    if kind.is_empty() || kind.contains(char::is_whitespace) {
        return Err(bad(line_no, 'b', "has a bad type"));
    }
    let value = amount
        .trim()
        .parse::<u64>()
        .map_err(|_| bad(line_no, 'b', "has a bad value"))?;
    Ok(Bandwidth {
        kind: kind.to_owned(),
        value,
    })
}

/// `t=<start-time> <stop-time>`.
fn parse_timing(line_no: usize, value: &str) -> Result<Timing, SdpError> {
    let fields: Vec<&str> = value.split_whitespace().collect();
    let [start, stop] = fields[..] else {
        return Err(bad(line_no, 't', "does not have two fields"));
    };
    let time = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| bad(line_no, 't', "has a bad time"))
    };
    Ok(Timing {
        start: time(start)?,
        stop: time(stop)?,
        repeats: Vec::new(),
    })
}

/// `m=<media> <port>[/<number of ports>] <proto> <fmt> ...`.
fn parse_media(line_no: usize, value: &str) -> Result<MediaDescription, SdpError> {
    let mut fields = value.split_whitespace();
    let kind = fields
        .next()
        .ok_or_else(|| bad(line_no, 'm', "has no media type"))?;
    let port_field = fields
        .next()
        .ok_or_else(|| bad(line_no, 'm', "has no port"))?;
    let (port, port_count) = match port_field.split_once('/') {
        Some((port, count)) => (port, Some(count)),
        None => (port_field, None),
    };
    let port = port
        .parse::<u16>()
        .map_err(|_| bad(line_no, 'm', "has a bad port"))?;
    let port_count = port_count
        .map(str::parse::<u16>)
        .transpose()
        .map_err(|_| bad(line_no, 'm', "has a bad port count"))?;
    let protocol = Protocol::from_token(
        fields
            .next()
            .ok_or_else(|| bad(line_no, 'm', "has no transport protocol"))?,
    );
    let formats: Vec<String> = fields.map(str::to_owned).collect();
    // RFC 3264 §6 keeps formats on a rejected stream, but some stacks drop them: tolerated on
    // port 0 only.
    if formats.is_empty() && port != 0 {
        return Err(bad(line_no, 'm', "has no formats"));
    }
    if protocol.is_rtp()
        && !formats
            .iter()
            .all(|f| f.parse::<u8>().is_ok_and(|pt| pt < 128))
    {
        return Err(bad(line_no, 'm', "has a bad payload type"));
    }
    Ok(MediaDescription {
        kind: MediaKind::from_token(kind),
        port,
        port_count,
        protocol,
        formats,
        title: None,
        connection: None,
        bandwidths: Vec::new(),
        key: None,
        attributes: Vec::new(),
    })
}

/// `a=<name>` or `a=<name>:<value>`; the name is a token (RFC 4566 §9 `att-field`).
fn parse_attribute(line_no: usize, value: &str) -> Result<Attribute, SdpError> {
    let (name, value) = match value.split_once(':') {
        Some((name, value)) => (name, Some(value.to_owned())),
        None => (value, None),
    };
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(bad(line_no, 'a', "has a bad name"));
    }
    Ok(Attribute {
        name: name.to_owned(),
        value,
    })
}

/// RFC 4566 §9 `token-char`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`{|}~".contains(&b)
}
