//! The parse layer in front of `rsip`.
//!
//! `rsip` 0.4 tokenizes a message as `name: value` lines and stops there. RFC 3261 allows more
//! than it accepts, so [`parse`] does its own single pass over the header section and hands
//! `rsip` one clean `name`/`value` pair at a time:
//!
//! - leading CRLFs before the start line are skipped (RFC 3261 §7.5);
//! - folded header lines (continuations starting with SP or HTAB) are joined with one space;
//! - compact header names (`v`, `i`, `m`, …) are expanded to their full names;
//! - whitespace between a header name and its colon is allowed;
//! - comma-joined Via, Contact, Route and Record-Route values become one header per value
//!   (commas inside quoted strings and `<…>` do not separate, and `Contact: *` stays whole);
//! - the body is exactly Content-Length bytes: trailing bytes of a datagram are dropped, a body
//!   shorter than announced is an error.
//!
//! On the common path (no folding, no compact names, no lists) nothing is copied before the
//! header values themselves are stored in `rsip`'s headers.

use std::borrow::Cow;
use std::convert::TryInto;

use rsip::{Header, Headers, Request, Response, SipMessage, StatusCode};

use super::error::ParseError;

/// The largest message [`parse`] accepts, in bytes.
pub const MAX_MESSAGE_LEN: usize = 256 * 1024;

/// The largest header section [`parse`] accepts, in bytes.
pub const MAX_HEADER_SECTION_LEN: usize = 64 * 1024;

/// Parses one SIP message (a datagram, or one message cut from a stream).
///
/// Returns the `rsip` message with its headers normalised as described in the module docs, or
/// the fault that makes it unusable. Never panics on any input.
pub fn parse(bytes: &[u8]) -> Result<SipMessage, ParseError> {
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(ParseError::TooLarge { len: bytes.len() });
    }
    let split = split_message(bytes)?;
    let start_line = std::str::from_utf8(split.start_line).map_err(|_| ParseError::NotUtf8)?;
    let start = parse_start_line(start_line)?;

    let mut headers: Vec<Header> = Vec::with_capacity(16);
    let mut seen = Seen::default();
    for line in logical_lines(split.header_section) {
        let (name, value) = split_header_line(&line)?;
        let name = expand_compact(name);
        if is_list_header(name) && value.contains(',') {
            for item in split_list(value) {
                push_header(&mut headers, &mut seen, name, item)?;
            }
        } else {
            push_header(&mut headers, &mut seen, name, value)?;
        }
    }
    seen.check_required()?;
    let body = cut_body(split.rest, seen.content_length)?;

    match start {
        StartLine::Request { method, uri } => {
            if let Some(cseq_method) = seen.cseq_method.as_deref() {
                if cseq_method != method.to_string() {
                    return Err(ParseError::CSeqMethodMismatch);
                }
            }
            Ok(SipMessage::Request(Request {
                method,
                uri,
                version: rsip::Version::V2,
                headers: Headers::from(headers),
                body: body.to_vec(),
            }))
        }
        StartLine::Response { status_code } => Ok(SipMessage::Response(Response {
            status_code,
            version: rsip::Version::V2,
            headers: Headers::from(headers),
            body: body.to_vec(),
        })),
    }
}

/// A message cut into its three parts, before any interpretation.
pub(crate) struct SplitMessage<'a> {
    pub(crate) start_line: &'a [u8],
    /// Header lines, CRLF-separated, without the final empty line.
    pub(crate) header_section: &'a [u8],
    /// Everything after the empty line.
    pub(crate) rest: &'a [u8],
}

/// Skips leading CRLFs and finds the start line, the header section and the rest.
pub(crate) fn split_message(bytes: &[u8]) -> Result<SplitMessage<'_>, ParseError> {
    let mut bytes = bytes;
    while let Some(rest) = bytes.strip_prefix(b"\r\n") {
        bytes = rest;
    }
    if bytes.is_empty() {
        return Err(ParseError::Empty);
    }
    let line_end = find_crlf(bytes, 0).ok_or(ParseError::UnterminatedHeaders)?;
    let start_line = bytes.get(..line_end).ok_or(ParseError::BadStartLine)?;
    let after_start = line_end + 2;
    // The header section ends at the first empty line; with no headers at all, the empty line
    // follows the start line directly.
    let (header_section, rest) = if bytes.get(after_start..after_start + 2) == Some(b"\r\n") {
        (&[][..], bytes.get(after_start + 2..).unwrap_or(&[]))
    } else {
        let end = find_double_crlf(bytes, after_start).ok_or(ParseError::UnterminatedHeaders)?;
        (
            bytes.get(after_start..end).unwrap_or(&[]),
            bytes.get(end + 4..).unwrap_or(&[]),
        )
    };
    if header_section.len() > MAX_HEADER_SECTION_LEN {
        return Err(ParseError::TooLarge { len: bytes.len() });
    }
    Ok(SplitMessage {
        start_line,
        header_section,
        rest,
    })
}

fn find_crlf(bytes: &[u8], from: usize) -> Option<usize> {
    let tail = bytes.get(from..)?;
    let mut at = 0;
    while let Some(offset) = tail.get(at..)?.iter().position(|&b| b == b'\r') {
        let pos = at + offset;
        if tail.get(pos + 1) == Some(&b'\n') {
            return Some(from + pos);
        }
        at = pos + 1;
    }
    None
}

fn find_double_crlf(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let pos = find_crlf(bytes, at)?;
        if bytes.get(pos + 2..pos + 4) == Some(b"\r\n") {
            return Some(pos);
        }
        at = pos + 2;
    }
}

/// Iterates over the header lines of a header section with folded lines joined: borrowed
/// when a line has no continuation, owned when continuations were joined with one space.
pub(crate) fn logical_lines(section: &[u8]) -> impl Iterator<Item = Cow<'_, [u8]>> {
    let mut physical = section.split_crlf().peekable();
    std::iter::from_fn(move || {
        let first = physical.next()?;
        let mut joined: Cow<'_, [u8]> = Cow::Borrowed(first);
        while let Some(next) = physical.peek() {
            if !matches!(next.first(), Some(b' ' | b'\t')) {
                break;
            }
            let owned = joined.to_mut();
            while matches!(owned.last(), Some(b' ' | b'\t')) {
                owned.pop();
            }
            owned.push(b' ');
            owned.extend_from_slice(trim_bytes(next));
            physical.next();
        }
        Some(joined)
    })
}

trait SplitCrlf {
    fn split_crlf(&self) -> CrlfLines<'_>;
}

impl SplitCrlf for [u8] {
    fn split_crlf(&self) -> CrlfLines<'_> {
        CrlfLines { rest: Some(self) }
    }
}

struct CrlfLines<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Iterator for CrlfLines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        match find_crlf(rest, 0) {
            Some(pos) => {
                self.rest = rest.get(pos + 2..);
                rest.get(..pos)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

fn trim_bytes(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |p| p + 1);
    bytes.get(start..end).unwrap_or(&[])
}

/// Splits `name : value` (whitespace around the colon allowed), checking the name is a token
/// and the value is UTF-8 without control characters.
pub(crate) fn split_header_line(line: &[u8]) -> Result<(&str, &str), ParseError> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(|| ParseError::BadHeader {
            name: token_prefix(line),
        })?;
    let raw_name = trim_bytes(line.get(..colon).unwrap_or(&[]));
    let name = std::str::from_utf8(raw_name).map_err(|_| ParseError::NotUtf8)?;
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(ParseError::BadHeader {
            name: token_prefix(raw_name),
        });
    }
    let raw_value = trim_bytes(line.get(colon + 1..).unwrap_or(&[]));
    let value = std::str::from_utf8(raw_value).map_err(|_| ParseError::NotUtf8)?;
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(ParseError::BadHeader {
            name: name.to_owned(),
        });
    }
    Ok((name, value))
}

/// The leading token characters of a line (at most 32), safe to echo in a reason phrase.
fn token_prefix(line: &[u8]) -> String {
    line.iter()
        .take_while(|&&b| is_token_byte(b))
        .take(32)
        .map(|&b| char::from(b))
        .collect()
}

/// RFC 3261 §25.1 `token` characters.
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// Expands a compact header name (RFC 3261 §7.3.3 and the extensions that define one);
/// other names are returned unchanged.
pub fn expand_compact(name: &str) -> &str {
    let [letter] = name.as_bytes() else {
        return name;
    };
    match letter.to_ascii_lowercase() {
        b'a' => "Accept-Contact",      // RFC 3841
        b'b' => "Referred-By",         // RFC 3892
        b'c' => "Content-Type",        // RFC 3261
        b'd' => "Request-Disposition", // RFC 3841
        b'e' => "Content-Encoding",    // RFC 3261
        b'f' => "From",                // RFC 3261
        b'i' => "Call-ID",             // RFC 3261
        b'j' => "Reject-Contact",      // RFC 3841
        b'k' => "Supported",           // RFC 3261
        b'l' => "Content-Length",      // RFC 3261
        b'm' => "Contact",             // RFC 3261
        b'n' => "Identity-Info",       // RFC 4474
        b'o' => "Event",               // RFC 6665 (RFC 3265)
        b'r' => "Refer-To",            // RFC 3515
        b's' => "Subject",             // RFC 3261
        b't' => "To",                  // RFC 3261
        b'u' => "Allow-Events",        // RFC 6665 (RFC 3265)
        b'v' => "Via",                 // RFC 3261
        b'x' => "Session-Expires",     // RFC 4028
        b'y' => "Identity",            // RFC 8224 (RFC 4474)
        _ => name,
    }
}

/// Headers whose comma-separated values are split into one header per value.
fn is_list_header(name: &str) -> bool {
    ["Via", "Contact", "Route", "Record-Route"]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name))
}

/// Splits a header value at the commas that separate list elements: commas inside a quoted
/// string (with `\` escapes) or inside `<…>` do not count. Empty elements are skipped.
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    let bytes = value.as_bytes();
    let mut start = 0;
    let mut pos = 0;
    let mut done = false;
    std::iter::from_fn(move || loop {
        if done {
            return None;
        }
        let mut in_quotes = false;
        let mut in_angle = false;
        let mut escaped = false;
        while let Some(&b) = bytes.get(pos) {
            if in_quotes {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_quotes = false;
                }
            } else if in_angle {
                if b == b'>' {
                    in_angle = false;
                }
            } else if b == b'"' {
                in_quotes = true;
            } else if b == b'<' {
                in_angle = true;
            } else if b == b',' {
                break;
            }
            pos += 1;
        }
        let item = value.get(start..pos).unwrap_or("").trim();
        if pos >= bytes.len() {
            done = true;
        }
        pos += 1;
        start = pos;
        if !item.is_empty() {
            return Some(item);
        }
    })
}

enum StartLine {
    Request {
        method: rsip::Method,
        uri: rsip::Uri,
    },
    Response {
        status_code: StatusCode,
    },
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    if line.len() >= 4 && line.as_bytes()[..4].eq_ignore_ascii_case(b"SIP/") {
        let (version, rest) = line.split_once(' ').ok_or(ParseError::BadStartLine)?;
        check_version(version)?;
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::BadStartLine);
        }
        let code: u16 = code.parse().map_err(|_| ParseError::BadStartLine)?;
        if !(100..=699).contains(&code) {
            return Err(ParseError::BadStartLine);
        }
        // rsip keeps the reason phrase only for codes it does not know; Callisto keeps the
        // server's words for every code (they are what a user is shown when a request fails).
        let status_code = StatusCode::Other(code, reason.to_owned());
        return Ok(StartLine::Response { status_code });
    }
    let (method, rest) = line.split_once(' ').ok_or(ParseError::BadStartLine)?;
    let (uri, version) = rest.rsplit_once(' ').ok_or(ParseError::BadStartLine)?;
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(ParseError::BadStartLine);
    }
    if uri.is_empty() || uri.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(ParseError::BadStartLine);
    }
    if uri.bytes().any(|b| matches!(b, b'<' | b'>' | b'"')) {
        return Err(ParseError::BadRequestUri);
    }
    check_version(version)?;
    let method = parse_method(method)?;
    let uri = rsip::Uri::try_from(uri).map_err(|_| ParseError::BadRequestUri)?;
    Ok(StartLine::Request { method, uri })
}

fn check_version(version: &str) -> Result<(), ParseError> {
    let bytes = version.as_bytes();
    if bytes.len() < 4 || !bytes[..4].eq_ignore_ascii_case(b"SIP/") {
        return Err(ParseError::BadStartLine);
    }
    if version.get(4..) != Some("2.0") {
        return Err(ParseError::BadVersion);
    }
    Ok(())
}

/// Methods are case-sensitive (RFC 3261 §7.1); `rsip` knows a fixed set.
fn parse_method(token: &str) -> Result<rsip::Method, ParseError> {
    use rsip::Method::*;
    Ok(match token {
        "INVITE" => Invite,
        "ACK" => Ack,
        "BYE" => Bye,
        "CANCEL" => Cancel,
        "OPTIONS" => Options,
        "REGISTER" => Register,
        "PRACK" => PRack,
        "UPDATE" => Update,
        "INFO" => Info,
        "MESSAGE" => Message,
        "NOTIFY" => Notify,
        "SUBSCRIBE" => Subscribe,
        "REFER" => Refer,
        "PUBLISH" => Publish,
        other => return Err(ParseError::UnknownMethod(other.to_owned())),
    })
}

/// What the single pass noticed about the headers it has seen.
#[derive(Default)]
struct Seen {
    via: bool,
    from: bool,
    to: bool,
    call_id: bool,
    cseq: bool,
    cseq_method: Option<String>,
    content_length: Option<usize>,
}

impl Seen {
    fn check_required(&self) -> Result<(), ParseError> {
        for (present, name) in [
            (self.via, "Via"),
            (self.from, "From"),
            (self.to, "To"),
            (self.call_id, "Call-ID"),
            (self.cseq, "CSeq"),
        ] {
            if !present {
                return Err(ParseError::MissingHeader(name));
            }
        }
        Ok(())
    }
}

fn once(flag: &mut bool, name: &'static str) -> Result<(), ParseError> {
    if std::mem::replace(flag, true) {
        return Err(ParseError::DuplicateHeader(name));
    }
    Ok(())
}

fn push_header(
    headers: &mut Vec<Header>,
    seen: &mut Seen,
    name: &str,
    value: &str,
) -> Result<(), ParseError> {
    let bad = || ParseError::BadHeader {
        name: name.to_owned(),
    };
    if name.eq_ignore_ascii_case("Via") {
        if value.is_empty() {
            return Err(bad());
        }
        seen.via = true;
    } else if name.eq_ignore_ascii_case("From") {
        once(&mut seen.from, "From")?;
    } else if name.eq_ignore_ascii_case("To") {
        once(&mut seen.to, "To")?;
    } else if name.eq_ignore_ascii_case("Call-ID") {
        if value.is_empty() || value.contains(char::is_whitespace) {
            return Err(bad());
        }
        once(&mut seen.call_id, "Call-ID")?;
    } else if name.eq_ignore_ascii_case("CSeq") {
        once(&mut seen.cseq, "CSeq")?;
        let (number, method) = value.split_once([' ', '\t']).ok_or_else(bad)?;
        let method = method.trim();
        let number_ok = !number.is_empty()
            && number.len() <= 10
            && number.bytes().all(|b| b.is_ascii_digit())
            && number.parse::<u64>().is_ok_and(|n| n < 1 << 31);
        if !number_ok || method.is_empty() || !method.bytes().all(is_token_byte) {
            return Err(bad());
        }
        seen.cseq_method = Some(method.to_owned());
    } else if name.eq_ignore_ascii_case("Content-Length") {
        if value.is_empty() || value.len() > 9 || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let length: usize = value.parse().map_err(|_| bad())?;
        match seen.content_length {
            Some(previous) if previous != length => {
                return Err(ParseError::DuplicateHeader("Content-Length"))
            }
            _ => seen.content_length = Some(length),
        }
    }
    let header: Header = rsip::headers::header::Tokenizer {
        name: name.as_bytes(),
        value: value.as_bytes(),
    }
    .try_into()
    .map_err(|_| bad())?;
    headers.push(header);
    Ok(())
}

fn cut_body(rest: &[u8], content_length: Option<usize>) -> Result<&[u8], ParseError> {
    match content_length {
        None => Ok(rest),
        Some(declared) => rest
            .get(..declared)
            .ok_or(ParseError::ContentLengthMismatch {
                declared,
                actual: rest.len(),
            }),
    }
}
