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

/// `text` on one line: control characters become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
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
}
