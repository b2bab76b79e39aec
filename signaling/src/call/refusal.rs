//! What a refusal tells the peer: the status code and, when known, why in words.

use rsip::prelude::UntypedHeader;
use rsip::Response;

/// A final response refusing an INVITE or a re-INVITE.
///
/// Beyond the status code it can say why: a reason phrase in place of the standard one (a
/// `400` for a body that does not parse names the fault there, as for a malformed request) and
/// a `Warning` header (RFC 3261 §20.43) with a warn-code — `304` media type not available,
/// `305` incompatible media format, `399` anything else — and a sentence. The other side's
/// user, or whoever reads its log, learns what was wrong instead of a bare `488`.
///
/// A bare code converts into a refusal with neither: `endpoint.reject(now, id, 486)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The status code, 300–699.
    pub code: u16,
    /// The reason phrase; `None`: the code's standard phrase.
    pub reason: Option<String>,
    /// The `Warning` header's warn-code (300–399) and text; `None`: no header.
    pub warning: Option<(u16, String)>,
}

impl Refusal {
    /// A refusal with `code`, the standard reason phrase and no warning.
    pub fn new(code: u16) -> Self {
        Refusal {
            code,
            reason: None,
            warning: None,
        }
    }

    /// The same with `reason` as the reason phrase (control characters become spaces).
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(one_line(&reason.into()));
        self
    }

    /// The same with a `Warning` header of `code` and `text`.
    pub fn with_warning(mut self, code: u16, text: impl Into<String>) -> Self {
        self.warning = Some((code, text.into()));
        self
    }

    /// The `Warning` header's value: `<code> callisto "<text>"`, the text a quoted string
    /// (RFC 3261 §25.1: quotes and backslashes escaped, control characters replaced). A
    /// warn-code outside 300–399 is sent as 399.
    pub fn warning_value(&self) -> Option<String> {
        let (code, text) = self.warning.as_ref()?;
        let code = if (300..=399).contains(code) {
            *code
        } else {
            399
        };
        let mut quoted = String::with_capacity(text.len() + 2);
        for c in one_line(text).chars() {
            if matches!(c, '"' | '\\') {
                quoted.push('\\');
            }
            quoted.push(c);
        }
        Some(format!("{code} callisto \"{quoted}\""))
    }

    /// Puts the reason phrase and the warning on `response`, a response with this code.
    pub(crate) fn apply(&self, response: &mut Response) {
        if let Some(reason) = &self.reason {
            response.status_code = rsip::StatusCode::Other(self.code, one_line(reason));
        }
        if let Some(value) = self.warning_value() {
            response
                .headers
                .push(rsip::headers::Warning::new(value).into());
        }
    }
}

impl From<u16> for Refusal {
    fn from(code: u16) -> Self {
        Refusal::new(code)
    }
}

/// The longest warning text shown, in characters; a longer one is cut with an ellipsis.
const MAX_WARNING_CHARS: usize = 200;

/// What a response's `Warning` header (RFC 3261 §20.43) says, in words: the warn-text of its
/// first warning-value, or the standard meaning of the warn-code when the text is empty.
/// `None` without a `Warning` that parses, or with an empty text and a code that means
/// nothing in particular (399 "miscellaneous warning", or an unregistered one). The text is
/// put on one line and cut at 200 characters: it is shown to a user.
pub(crate) fn warning_in_words(response: &Response) -> Option<String> {
    let (code, text) = response.headers.iter().find_map(|header| match header {
        rsip::Header::Warning(warning) => parse_warning(warning.value()),
        _ => None,
    })?;
    if text.is_empty() {
        return warn_code_meaning(code).map(str::to_owned);
    }
    if text.chars().count() > MAX_WARNING_CHARS {
        let cut: String = text.chars().take(MAX_WARNING_CHARS - 1).collect();
        return Some(format!("{}…", cut.trim_end()));
    }
    Some(text)
}

/// The warn-code and warn-text of the first warning-value of a `Warning` header:
/// `warn-code SP warn-agent SP warn-text`, the text a quoted string with `\` escapes.
fn parse_warning(value: &str) -> Option<(u16, String)> {
    let (code, rest) = value.trim_start().split_once(char::is_whitespace)?;
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let code: u16 = code.parse().ok()?;
    let (_agent, rest) = rest.trim_start().split_once(char::is_whitespace)?;
    let mut chars = rest.trim_start().strip_prefix('"')?.chars();
    let mut text = String::new();
    loop {
        match chars.next()? {
            '"' => break,
            '\\' => text.push(chars.next()?),
            c => text.push(c),
        }
    }
    Some((code, one_line(&text).trim().to_owned()))
}

/// What a warn-code stands for (RFC 3261 §20.43, RFC 5630 §3.2), for a warning without text.
fn warn_code_meaning(code: u16) -> Option<&'static str> {
    Some(match code {
        300 => "incompatible network protocol",
        301 => "incompatible network address formats",
        302 => "incompatible transport protocol",
        303 => "incompatible bandwidth units",
        304 => "media type not available",
        305 => "incompatible media format",
        306 => "attribute not understood",
        307 => "session description parameter not understood",
        330 => "multicast not available",
        331 => "unicast not available",
        370 => "insufficient bandwidth",
        380 => "SIPS not allowed",
        381 => "SIPS required",
        _ => return None,
    })
}

/// `text` on one line and in reading order: control characters, Unicode line and paragraph
/// separators and bidirectional formatting characters (which could make a peer's text read
/// differently from what it is) become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{61c}' => ' ',
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => ' ',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_code_says_nothing_more() {
        let refusal = Refusal::from(486);
        assert_eq!(refusal.code, 486);
        assert_eq!(refusal.reason, None);
        assert_eq!(refusal.warning_value(), None);
    }

    #[test]
    fn the_warning_is_a_quoted_string_on_one_line() {
        let refusal = Refusal::new(488).with_warning(305, "no \"common\" codec\\\r\nhere");
        assert_eq!(
            refusal.warning_value().as_deref(),
            Some("305 callisto \"no \\\"common\\\" codec\\\\  here\"")
        );
        let refusal = Refusal::new(400).with_reason("Bad SDP:\r\nline 3");
        assert_eq!(refusal.reason.as_deref(), Some("Bad SDP:  line 3"));
        // A code that is no warn-code is sent as 399.
        let refusal = Refusal::new(488).with_warning(1000, "odd");
        assert_eq!(
            refusal.warning_value().as_deref(),
            Some("399 callisto \"odd\"")
        );
    }

    #[test]
    fn a_reason_set_by_hand_still_goes_out_on_one_line() {
        let request: rsip::Request = "INVITE sip:bob@127.0.0.1 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n\
             From: <sip:alice@127.0.0.1>;tag=a\r\n\
             To: <sip:bob@127.0.0.1>\r\n\
             Call-ID: one-line\r\n\
             CSeq: 1 INVITE\r\n\
             Content-Length: 0\r\n\r\n"
            .try_into()
            .unwrap();
        let mut response = crate::message::response_to(&request, 400, "Bad Request");
        let refusal = Refusal {
            code: 400,
            reason: Some("Bad\r\nVia: injected".into()),
            warning: None,
        };
        refusal.apply(&mut response);
        let text = response.to_string();
        assert!(
            text.starts_with("SIP/2.0 400 Bad  Via: injected\r\n"),
            "{text}"
        );
        assert_eq!(text.matches("Via:").count(), 2, "{text}");
    }

    fn response_with(warnings: &[&str]) -> Response {
        let mut text = String::from(
            "SIP/2.0 488 Not Acceptable Here\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n\
             From: <sip:alice@127.0.0.1>;tag=a\r\n\
             To: <sip:bob@127.0.0.1>;tag=b\r\n\
             Call-ID: warned\r\n\
             CSeq: 1 INVITE\r\n",
        );
        for warning in warnings {
            text.push_str(&format!("Warning: {warning}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        Response::try_from(text.as_str()).unwrap()
    }

    #[test]
    fn a_peers_warning_is_read_back_in_words() {
        // Ours, through the wire: quotes and backslashes come back as they were.
        let refusal = Refusal::new(488).with_warning(305, "no \"common\" codec \\ here");
        let value = refusal.warning_value().unwrap();
        assert_eq!(
            warning_in_words(&response_with(&[&value])).as_deref(),
            Some("no \"common\" codec \\ here")
        );
        // RFC 3261's examples; of several warnings, the first.
        for (header, words) in [
            (
                "307 isi.edu \"Session parameter 'foo' not understood\"",
                Some("Session parameter 'foo' not understood"),
            ),
            (
                "301 isi.edu \"Incompatible network address type 'E.164'\"",
                Some("Incompatible network address type 'E.164'"),
            ),
            (
                "370 devnull \"Choose a bigger pipe\", 307 isi.edu \"x\"",
                Some("Choose a bigger pipe"),
            ),
            // No text: the warn-code's meaning, when it has one.
            (
                "305 pbx.example.org \"\"",
                Some("incompatible media format"),
            ),
            (
                "304 192.0.2.1:5060 \"  \"",
                Some("media type not available"),
            ),
            ("399 pbx \"\"", None),
            // Not a warning.
            ("hello", None),
            ("3055 pbx \"too long a code\"", None),
            ("305 pbx unquoted", None),
            ("305 pbx \"unterminated", None),
            ("+30 pbx \"a sign is no digit\"", None),
            // An IPv6 agent; text beyond ASCII; an escaped quote before a second value.
            ("399 [2001:db8::1]:5060 \"busy\"", Some("busy")),
            (
                "399 pbx \"Ligne occupée — réessayez\"",
                Some("Ligne occupée — réessayez"),
            ),
            (
                "399 pbx \"say \\\"hi\\\", then go\", 305 other \"x\"",
                Some("say \"hi\", then go"),
            ),
            // Line separators and bidirectional overrides do not reach the screen.
            ("399 pbx \"a\u{2028}b\u{202e}c\"", Some("a b c")),
        ] {
            assert_eq!(
                warning_in_words(&response_with(&[header])).as_deref(),
                words,
                "{header}"
            );
        }
        assert_eq!(warning_in_words(&response_with(&[])), None);
        // Two headers: the first.
        assert_eq!(
            warning_in_words(&response_with(&["302 a \"first\"", "399 b \"second\""])).as_deref(),
            Some("first")
        );
    }

    #[test]
    fn a_long_warning_is_cut_for_the_user() {
        let long = "x".repeat(1000);
        let words = warning_in_words(&response_with(&[&format!("399 pbx \"{long}\"")])).unwrap();
        assert_eq!(words.chars().count(), MAX_WARNING_CHARS);
        assert!(words.ends_with("x…"), "{words}");
        // Tabs and escaped control characters do not break the line.
        let words = warning_in_words(&response_with(&["399 pbx \"a\\\tb\""])).unwrap();
        assert_eq!(words, "a b");
    }
}
