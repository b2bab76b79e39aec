//! Building a response to a request (RFC 3261 §8.2.6).

use std::hash::{Hash, Hasher};

use rsip::headers::{ContentLength, To};
use rsip::prelude::UntypedHeader;
use rsip::{Header, Headers, Request, Response, StatusCode};

use super::headers::{HeaderAccess, NameAddr};

/// Builds a response to `request`: its Via headers in order, From, To, Call-ID and CSeq copied,
/// `Content-Length: 0`, and a To tag added when the request has none and `code` is above 100.
///
/// The status code is stored as `StatusCode::Other(code, reason)` so the reason phrase goes on
/// the wire as given; compare codes with `status_code.code()`. The added To tag is derived from
/// the request's Call-ID, From tag, CSeq and top branch, so a retransmitted request gets the
/// same tag.
pub fn response_to(request: &Request, code: u16, reason: &str) -> Response {
    let mut headers = Headers::default();
    for header in request.headers.iter() {
        match header {
            Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_) => {
                headers.push(header.clone())
            }
            Header::To(to) => {
                let has_tag = NameAddr::parse(to.value()).is_some_and(|a| a.tag().is_some());
                if has_tag || code <= 100 {
                    headers.push(header.clone());
                } else {
                    let tag = derived_tag(&[
                        request.call_id().unwrap_or(""),
                        request.from_tag().unwrap_or(""),
                        request.branch().unwrap_or(""),
                        &request.cseq().map(|c| c.seq).unwrap_or(0).to_string(),
                    ]);
                    headers.push(Header::To(To::new(format!("{};tag={tag}", to.value()))));
                }
            }
            _ => {}
        }
    }
    headers.push(Header::ContentLength(ContentLength::new("0")));
    Response {
        status_code: StatusCode::Other(code, reason.to_owned()),
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    }
}

/// A To tag computed from parts of a request, stable across retransmissions of that request.
pub(crate) fn derived_tag(parts: &[&str]) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for part in parts {
        part.hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}
