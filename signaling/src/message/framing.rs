//! Stream framing for SIP over TCP/TLS (RFC 3261 §18.3) and keep-alives (RFC 5626 §3.5.1).
//!
//! A stream transport delivers bytes, not messages. [`StreamDeframer`] buffers what the socket
//! hands over ([`StreamDeframer::push`]) and cuts it into whole frames ([`StreamDeframer::next`]):
//!
//! - a SIP message: the start line and headers up to the empty line, plus exactly
//!   `Content-Length` bytes of body (the header is mandatory on a stream, RFC 3261 §18.3);
//! - a keep-alive ping, a double CRLF between messages, to be answered with a single CRLF;
//! - a keep-alive pong, a single CRLF, recognised only while a ping of ours is outstanding
//!   ([`StreamDeframer::expect_pong`]). Otherwise a lone CRLF is a leading empty line before a
//!   message and is skipped (RFC 3261 §7.5).
//!
//! Any [`FramingError`] means the stream can no longer be framed: the connection should be closed.

use bytes::{Buf, Bytes, BytesMut};

const CRLF: &[u8] = b"\r\n";
const DOUBLE_CRLF: &[u8] = b"\r\n\r\n";

/// One unit cut from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A whole SIP message: start line, headers, the empty line and the body.
    Message(Bytes),
    /// A double CRLF keep-alive ping (RFC 5626 §3.5.1); answer it with a single CRLF.
    KeepAlivePing,
    /// A single CRLF answering our ping (RFC 5626 §3.5.1).
    KeepAlivePong,
}

/// Why a stream cannot be framed any further.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// The message (headers, or headers plus the declared body) exceeds the configured limit.
    #[error("message of at least {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The size seen or declared so far.
        size: usize,
        /// The configured maximum message size.
        limit: usize,
    },
    /// A message on a stream carries no Content-Length header (RFC 3261 §18.3).
    #[error("message on a stream transport has no Content-Length header")]
    MissingContentLength,
    /// The Content-Length header is not a number, or two of them disagree.
    #[error("invalid Content-Length header: {0:?}")]
    InvalidContentLength(String),
    /// The bytes do not look like SIP at all (binary data, or a start line without `SIP/`).
    #[error("the stream does not carry SIP: {0}")]
    Garbage(String),
}

/// Cuts a byte stream into SIP messages and keep-alives. Sans-IO: feed it bytes, poll frames.
#[derive(Debug)]
pub struct StreamDeframer {
    buf: BytesMut,
    max_message_size: usize,
    /// How far the search for the end of the headers has already looked, so that a slowly
    /// arriving header section is not scanned again from its start on every push.
    scanned: usize,
    expecting_pong: bool,
    /// Bytes at the front of `buf` that arrived before our ping, which cannot answer it.
    before_ping: usize,
    failed: Option<FramingError>,
}

impl StreamDeframer {
    /// Creates a deframer that refuses messages longer than `max_message_size` bytes.
    pub fn new(max_message_size: usize) -> Self {
        StreamDeframer {
            buf: BytesMut::new(),
            max_message_size,
            scanned: 0,
            expecting_pong: false,
            before_ping: 0,
            failed: None,
        }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Notes that we have sent a ping, so that the next lone CRLF that arrives after it is its
    /// pong (a CRLF already buffered — half of the peer's own ping, or an empty line — is not).
    pub fn expect_pong(&mut self) {
        self.expecting_pong = true;
        self.before_ping = self.buf.len();
    }

    /// Drops `n` bytes from the front of the buffer.
    fn consume(&mut self, n: usize) {
        self.buf.advance(n);
        self.before_ping = self.before_ping.saturating_sub(n);
    }

    /// The number of bytes buffered and not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Returns the next complete frame, `Ok(None)` if more bytes are needed, or the error that
    /// ended framing (returned again on every later call).
    // Not an `Iterator`: "no frame yet" and "no frame ever" differ, and errors are terminal.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Frame>, FramingError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        match self.next_frame() {
            Ok(frame) => Ok(frame),
            Err(error) => {
                self.buf.clear();
                self.failed = Some(error.clone());
                Err(error)
            }
        }
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, FramingError> {
        loop {
            if self.buf.starts_with(DOUBLE_CRLF) {
                self.consume(DOUBLE_CRLF.len());
                return Ok(Some(Frame::KeepAlivePing));
            }
            if self.buf.starts_with(CRLF) {
                if self.expecting_pong && self.before_ping == 0 {
                    self.expecting_pong = false;
                    self.consume(CRLF.len());
                    return Ok(Some(Frame::KeepAlivePong));
                }
                // Either the first half of a ping or an empty line before a message: wait for
                // the bytes that tell them apart.
                match self.buf.get(2) {
                    None => return Ok(None),
                    Some(b'\r') if self.buf.len() == 3 => return Ok(None),
                    Some(_) => {
                        self.consume(CRLF.len());
                        continue;
                    }
                }
            }
            if self.buf.is_empty() || self.buf[..] == b"\r"[..] {
                return Ok(None);
            }
            return self.next_message();
        }
    }

    fn next_message(&mut self) -> Result<Option<Frame>, FramingError> {
        self.check_start_line()?;
        let Some(headers_end) = self.find_headers_end() else {
            if self.buf.len() > self.max_message_size {
                return Err(self.too_large(self.buf.len()));
            }
            return Ok(None);
        };
        let head = self.buf.get(..headers_end).unwrap_or_default();
        let body_len = content_length(head)?;
        let total = headers_end.saturating_add(body_len);
        if total > self.max_message_size {
            return Err(self.too_large(total));
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        self.scanned = 0;
        let message = self.buf.split_to(total).freeze();
        self.before_ping = self.before_ping.saturating_sub(total);
        Ok(Some(Frame::Message(message)))
    }

    /// Rejects a stream that is plainly not SIP (say a TLS handshake sent to a TCP port) as
    /// soon as possible, rather than buffering up to the size limit.
    fn check_start_line(&self) -> Result<(), FramingError> {
        let line_end = find(&self.buf, CRLF, 0);
        let line = match line_end {
            Some(end) => self.buf.get(..end).unwrap_or_default(),
            // A partial line may end in the CR of its CRLF.
            None => self.buf.strip_suffix(b"\r").unwrap_or(&self.buf[..]),
        };
        if let Some(byte) = line.iter().find(|b| !(b.is_ascii_graphic() || **b == b' ')) {
            return Err(FramingError::Garbage(format!(
                "byte 0x{byte:02x} in the start line"
            )));
        }
        if line_end.is_some() && !contains(line, b"SIP/") {
            let shown: String = String::from_utf8_lossy(line).chars().take(60).collect();
            return Err(FramingError::Garbage(format!("start line {shown:?}")));
        }
        Ok(())
    }

    /// Finds the end of the header section (just past the empty line), resuming the search
    /// where the previous call stopped.
    fn find_headers_end(&mut self) -> Option<usize> {
        let from = self.scanned.saturating_sub(DOUBLE_CRLF.len() - 1);
        match find(&self.buf, DOUBLE_CRLF, from) {
            Some(at) => Some(at + DOUBLE_CRLF.len()),
            None => {
                self.scanned = self.buf.len();
                None
            }
        }
    }

    fn too_large(&self, size: usize) -> FramingError {
        FramingError::TooLarge {
            size,
            limit: self.max_message_size,
        }
    }
}

/// Finds the Content-Length (or compact `l`) header in a header section and parses it.
fn content_length(head: &[u8]) -> Result<usize, FramingError> {
    let mut found: Option<usize> = None;
    // The first line is the start line; the section ends with an empty line.
    for line in head.split(|b| *b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let name = name.trim_ascii();
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = value.get(1..).unwrap_or_default().trim_ascii();
        let text = String::from_utf8_lossy(value);
        let parsed = text
            .parse::<usize>()
            .map_err(|_| FramingError::InvalidContentLength(text.to_string()))?;
        if found.is_some_and(|earlier| earlier != parsed) {
            return Err(FramingError::InvalidContentLength(format!(
                "two headers disagree: {} and {parsed}",
                found.unwrap_or_default()
            )));
        }
        found = Some(parsed);
    }
    found.ok_or(FramingError::MissingContentLength)
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|at| at + from)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle, 0).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\n\
To: <sip:bob@example.com>\r\n\
From: <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 314159 INVITE\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 14\r\n\
\r\n\
v=0\r\no=- 1 1\r\n";

    const OK: &[u8] = b"SIP/2.0 200 OK\r\nCall-ID: x\r\ncontent-LENGTH:0\r\n\r\n";

    fn drain(deframer: &mut StreamDeframer) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(frame) = deframer.next().expect("valid stream") {
            frames.push(frame);
        }
        frames
    }

    #[test]
    fn a_message_split_at_every_byte_boundary_comes_out_whole() {
        for split in 0..=INVITE.len() {
            let mut deframer = StreamDeframer::new(65536);
            let (a, b) = INVITE.split_at(split);
            deframer.push(a);
            let first = drain(&mut deframer);
            if split < INVITE.len() {
                assert!(first.is_empty(), "split at {split} produced {first:?}");
            }
            deframer.push(b);
            let mut all = first;
            all.extend(drain(&mut deframer));
            assert_eq!(
                all,
                vec![Frame::Message(Bytes::from_static(INVITE))],
                "split {split}"
            );
            assert_eq!(deframer.buffered(), 0);
        }
    }

    #[test]
    fn a_stream_fed_one_byte_at_a_time_yields_every_frame() {
        let mut stream = Vec::new();
        stream.extend_from_slice(b"\r\n");
        stream.extend_from_slice(INVITE);
        stream.extend_from_slice(b"\r\n\r\n");
        stream.extend_from_slice(OK);
        let mut deframer = StreamDeframer::new(65536);
        let mut frames = Vec::new();
        for byte in &stream {
            deframer.push(std::slice::from_ref(byte));
            frames.extend(drain(&mut deframer));
        }
        assert_eq!(
            frames,
            vec![
                Frame::Message(Bytes::from_static(INVITE)),
                Frame::KeepAlivePing,
                Frame::Message(Bytes::from_static(OK)),
            ]
        );
    }

    #[test]
    fn two_messages_in_one_push() {
        let mut deframer = StreamDeframer::new(65536);
        let mut both = INVITE.to_vec();
        both.extend_from_slice(OK);
        deframer.push(&both);
        assert_eq!(
            drain(&mut deframer),
            vec![
                Frame::Message(Bytes::from_static(INVITE)),
                Frame::Message(Bytes::from_static(OK)),
            ]
        );
    }

    #[test]
    fn the_body_is_exactly_content_length_bytes_even_if_it_contains_blank_lines() {
        let message = b"MESSAGE sip:b@x SIP/2.0\r\nl: 8\r\n\r\n\r\n\r\nab\r\n";
        let mut deframer = StreamDeframer::new(65536);
        deframer.push(message);
        deframer.push(OK);
        let frames = drain(&mut deframer);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0], Frame::Message(Bytes::from_static(message)));
        assert_eq!(frames[1], Frame::Message(Bytes::from_static(OK)));
    }

    #[test]
    fn leading_empty_lines_are_skipped() {
        let mut deframer = StreamDeframer::new(65536);
        deframer.push(b"\r\n");
        assert_eq!(drain(&mut deframer), vec![]);
        deframer.push(OK);
        assert_eq!(
            drain(&mut deframer),
            vec![Frame::Message(Bytes::from_static(OK))]
        );
    }

    #[test]
    fn a_double_crlf_is_a_ping_even_when_split() {
        let mut deframer = StreamDeframer::new(65536);
        deframer.push(b"\r\n");
        assert_eq!(drain(&mut deframer), vec![]);
        deframer.push(b"\r");
        assert_eq!(drain(&mut deframer), vec![]);
        deframer.push(b"\n");
        assert_eq!(drain(&mut deframer), vec![Frame::KeepAlivePing]);
        deframer.push(b"\r\n\r\n\r\n\r\n");
        assert_eq!(
            drain(&mut deframer),
            vec![Frame::KeepAlivePing, Frame::KeepAlivePing]
        );
    }

    #[test]
    fn a_single_crlf_is_a_pong_only_while_a_ping_is_outstanding() {
        let mut deframer = StreamDeframer::new(65536);
        deframer.expect_pong();
        deframer.push(b"\r\n");
        assert_eq!(drain(&mut deframer), vec![Frame::KeepAlivePong]);
        // No ping outstanding any more: a lone CRLF waits to be told apart.
        deframer.push(b"\r\n");
        assert_eq!(drain(&mut deframer), vec![]);
        deframer.push(OK);
        assert_eq!(
            drain(&mut deframer),
            vec![Frame::Message(Bytes::from_static(OK))]
        );
    }

    /// A CRLF that arrived before our ping (an empty line, or half of the peer's own ping)
    /// is not its pong: only one that comes after it is.
    #[test]
    fn a_crlf_buffered_before_our_ping_is_not_its_pong() {
        let mut deframer = StreamDeframer::new(65536);
        deframer.push(b"\r\n");
        assert_eq!(drain(&mut deframer), vec![]);
        deframer.expect_pong();
        deframer.push(b"\r\n");
        assert_eq!(drain(&mut deframer), vec![Frame::KeepAlivePing]);
        deframer.push(b"\r\n");
        assert_eq!(drain(&mut deframer), vec![Frame::KeepAlivePong]);
        // An empty line before a message, then our ping: the message comes, no pong.
        deframer.push(b"\r\n");
        deframer.expect_pong();
        deframer.push(OK);
        assert_eq!(
            drain(&mut deframer),
            vec![Frame::Message(Bytes::from_static(OK))]
        );
    }

    #[test]
    fn a_pong_followed_by_a_message_in_the_same_read() {
        let mut deframer = StreamDeframer::new(65536);
        deframer.expect_pong();
        let mut bytes = b"\r\n".to_vec();
        bytes.extend_from_slice(OK);
        deframer.push(&bytes);
        assert_eq!(
            drain(&mut deframer),
            vec![Frame::KeepAlivePong, Frame::Message(Bytes::from_static(OK))]
        );
    }

    #[test]
    fn a_declared_body_beyond_the_limit_is_refused_before_it_arrives() {
        let mut deframer = StreamDeframer::new(1024);
        deframer.push(b"MESSAGE sip:b@x SIP/2.0\r\nContent-Length: 5000\r\n\r\nabc");
        assert!(matches!(
            deframer.next(),
            Err(FramingError::TooLarge { limit: 1024, .. })
        ));
        // The error sticks: the connection is to be closed.
        deframer.push(OK);
        assert!(deframer.next().is_err());
    }

    #[test]
    fn endless_headers_are_refused_at_the_limit() {
        let mut deframer = StreamDeframer::new(256);
        deframer.push(b"MESSAGE sip:b@x SIP/2.0\r\n");
        for _ in 0..20 {
            deframer.push(b"X-Filler: aaaaaaaaaaaaaaaa\r\n");
        }
        assert!(matches!(
            deframer.next(),
            Err(FramingError::TooLarge { limit: 256, .. })
        ));
    }

    #[test]
    fn a_message_exactly_at_the_limit_is_accepted() {
        let mut deframer = StreamDeframer::new(INVITE.len());
        deframer.push(INVITE);
        assert_eq!(
            drain(&mut deframer),
            vec![Frame::Message(Bytes::from_static(INVITE))]
        );
    }

    #[test]
    fn missing_or_bad_content_length_is_an_error() {
        let mut deframer = StreamDeframer::new(65536);
        deframer.push(b"OPTIONS sip:b@x SIP/2.0\r\nCall-ID: 1\r\n\r\n");
        assert_eq!(deframer.next(), Err(FramingError::MissingContentLength));

        let mut deframer = StreamDeframer::new(65536);
        deframer.push(b"OPTIONS sip:b@x SIP/2.0\r\nContent-Length: -3\r\n\r\n");
        assert!(matches!(
            deframer.next(),
            Err(FramingError::InvalidContentLength(_))
        ));

        let mut deframer = StreamDeframer::new(65536);
        deframer.push(b"OPTIONS sip:b@x SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nab");
        assert!(matches!(
            deframer.next(),
            Err(FramingError::InvalidContentLength(_))
        ));
    }

    #[test]
    fn garbage_is_refused_early() {
        // A TLS ClientHello sent to a plain TCP port.
        let mut deframer = StreamDeframer::new(65536);
        deframer.push(&[0x16, 0x03, 0x01, 0x02, 0x00]);
        assert!(matches!(deframer.next(), Err(FramingError::Garbage(_))));

        let mut deframer = StreamDeframer::new(65536);
        deframer.push(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(matches!(deframer.next(), Err(FramingError::Garbage(_))));
    }
}
