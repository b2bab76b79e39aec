//! Building the requests and responses of a call: tags, Contact, Allow, bodies.

use rsip::prelude::UntypedHeader;
use rsip::{Header, Headers, Request, Response};

use super::cause::reason_phrase;
use super::Body;
use crate::message::{self, HeaderAccess};
use crate::transport::TransportKind;

/// The methods a call serves, as sent in `Allow`.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY, SUBSCRIBE";

/// The extensions a call supports, as sent in `Supported`.
pub const SUPPORTED: &str = "100rel, timer";

/// The extensions a UAS can honour when a request names them in `Require`: reliable
/// provisional responses, and session timers (a peer may require `timer` in its INVITE and in
/// its refreshes, RFC 4028 §7.1).
const REQUIRABLE: &[&str] = &["100rel", "timer"];

/// A response to `request` with the standard reason phrase. When the request's To has no tag
/// and `local_tag` is given, that tag is added (dialog-creating responses must carry the
/// dialog's tag, not one derived per request).
pub(crate) fn response(request: &Request, code: u16, local_tag: Option<&str>) -> Response {
    let mut response = message::response_to(request, code, reason_phrase(code));
    if let (Some(tag), None, true) = (local_tag, request.to_tag(), code > 100) {
        for header in response.headers.iter_mut() {
            if let Header::To(to) = header {
                let plain = request
                    .header_list()
                    .iter()
                    .find_map(|h| match h {
                        Header::To(v) => Some(v.value().to_owned()),
                        _ => None,
                    })
                    .unwrap_or_else(|| to.value().to_owned());
                *to = rsip::headers::To::new(format!("{plain};tag={tag}"));
            }
        }
    }
    response
}

/// Whether a NOTIFY ends its subscription (`Subscription-State: terminated`, RFC 6665 §8.2.3).
/// The header arrives untyped from the parser, and typed when we built it.
pub(crate) fn subscription_terminated(request: &Request) -> bool {
    request.subscription_state().is_some_and(|state| {
        let head = state.split(';').next().unwrap_or_default();
        head.trim().eq_ignore_ascii_case("terminated")
    })
}

/// The `reason` of a terminated `Subscription-State`, in lower case.
pub(crate) fn subscription_reason(request: &Request) -> Option<String> {
    let (_, params) = request.subscription_state()?.split_once(';')?;
    message::headers::params(params)
        .find(|(name, _)| name.eq_ignore_ascii_case("reason"))
        .and_then(|(_, value)| value.map(|v| v.trim().to_ascii_lowercase()))
}

/// A response that creates or confirms a dialog (18x, 2xx to INVITE): Record-Route copied
/// (RFC 3261 §12.1.1), our Contact (`contact` is the header value, `<uri>;params`), Allow and
/// Supported.
pub(crate) fn dialog_response(
    request: &Request,
    code: u16,
    local_tag: &str,
    contact: &str,
    user_agent: &str,
) -> Response {
    let mut response = response(request, code, Some(local_tag));
    let record_route: Vec<Header> = request
        .headers
        .iter()
        .filter(|h| matches!(h, Header::RecordRoute(_)))
        .cloned()
        .collect();
    // Vias first, then Record-Route in the request's order, then the rest.
    let (vias, rest): (Vec<Header>, Vec<Header>) = response
        .headers
        .iter()
        .filter(|h| !matches!(h, Header::ContentLength(_)))
        .cloned()
        .partition(|h| matches!(h, Header::Via(_)));
    let mut headers = vias;
    headers.extend(record_route);
    headers.extend(rest);
    headers.push(rsip::headers::Contact::new(contact).into());
    headers.push(rsip::headers::Allow::new(ALLOW).into());
    headers.push(rsip::headers::Supported::new(SUPPORTED).into());
    headers.push(rsip::headers::UserAgent::new(user_agent).into());
    headers.push(rsip::headers::ContentLength::new("0").into());
    response.headers = headers.into();
    response
}

/// Sets the body of a message: Content-Type and Content-Length replaced, bytes copied.
pub(crate) fn set_body(headers: &mut Headers, body_bytes: &mut Vec<u8>, body: Option<&Body>) {
    headers.retain(|h| !matches!(h, Header::ContentLength(_) | Header::ContentType(_)));
    match body {
        Some(body) => {
            headers.push(rsip::headers::ContentType::new(body.content_type.clone()).into());
            headers.push(rsip::headers::ContentLength::new(body.bytes.len().to_string()).into());
            *body_bytes = body.bytes.to_vec();
        }
        None => {
            headers.push(rsip::headers::ContentLength::new("0").into());
            body_bytes.clear();
        }
    }
}

/// The body of a message with its Content-Type, when it has one.
pub(crate) fn body_of(headers: &Headers, bytes: &[u8]) -> Option<Body> {
    if bytes.is_empty() {
        return None;
    }
    let content_type = headers
        .iter()
        .find_map(|h| match h {
            Header::ContentType(v) => Some(v.value().trim().to_owned()),
            _ => None,
        })
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    Some(Body {
        content_type,
        bytes: bytes::Bytes::copy_from_slice(bytes),
    })
}

/// A top Via value with `rport` (RFC 3581).
pub(crate) fn via(transport: TransportKind, sent_by: &str, branch: &str) -> String {
    format!(
        "SIP/2.0/{} {sent_by};branch={branch};rport",
        transport.via_token()
    )
}

/// 500 with a `Retry-After` of 0–10 s, for an offer that comes while another offer/answer
/// exchange of ours is unfinished (RFC 3261 §14.2, RFC 3311 §5.2).
pub(crate) fn retry_later(request: &Request, rng: &mut impl rand::Rng) -> Response {
    let mut response = response(request, 500, None);
    let seconds = rng.gen_range(0..=10u32);
    response
        .headers
        .push(rsip::headers::RetryAfter::new(seconds.to_string()).into());
    response
}

/// 420 naming the option tags of `request`'s `Require` that Callisto does not support, if any.
pub(crate) fn refuse_requirements(request: &Request) -> Option<Response> {
    let unsupported = unsupported_requirements(request);
    if unsupported.is_empty() {
        return None;
    }
    let mut response = response(request, 420, None);
    response
        .headers
        .push(rsip::headers::Unsupported::new(unsupported.join(", ")).into());
    Some(response)
}

/// The option tags of `Require` that Callisto does not support (answer 420 when non-empty).
pub(crate) fn unsupported_requirements(request: &Request) -> Vec<String> {
    request
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::Require(v) => Some(v.value().to_owned()),
            _ => None,
        })
        .flat_map(|v| {
            v.split(',')
                .map(|t| t.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|tag| !tag.is_empty() && !REQUIRABLE.iter().any(|r| r.eq_ignore_ascii_case(tag)))
        .collect()
}

/// Whether a comma-separated option header (Require, Supported) lists `tag`.
pub(crate) fn lists_option(headers: &Headers, name: &str, tag: &str) -> bool {
    headers
        .iter()
        .filter_map(|h| match (h, name) {
            (Header::Require(v), "Require") => Some(v.value()),
            (Header::Supported(v), "Supported") => Some(v.value()),
            (Header::Other(n, v), _) if n.eq_ignore_ascii_case(name) => Some(v.as_str()),
            _ => None,
        })
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(tag))
}

/// Whether a message's Allow header lists `method`.
pub(crate) fn allows(headers: &Headers, method: &str) -> bool {
    headers
        .iter()
        .filter_map(|h| match h {
            Header::Allow(v) => Some(v.value()),
            _ => None,
        })
        .flat_map(|v| v.split(','))
        .any(|m| m.trim().eq_ignore_ascii_case(method))
}

/// The reason phrase of a response as the peer wrote it.
pub(crate) fn reason_of(response: &Response) -> String {
    match &response.status_code {
        rsip::StatusCode::Other(_, reason) if !reason.is_empty() => reason.clone(),
        other => reason_phrase(other.code()).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite() -> Request {
        let text = "INVITE sip:bob@192.0.2.4 SIP/2.0\r\n\
            Via: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bKp1\r\n\
            Via: SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bKa1;rport\r\n\
            Record-Route: <sip:192.0.2.2;lr>\r\n\
            From: <sip:alice@example.org>;tag=a1\r\n\
            To: <sip:bob@example.org>\r\n\
            Call-ID: c1\r\n\
            CSeq: 1 INVITE\r\n\
            Require: 100rel, foo\r\n\
            Contact: <sip:alice@192.0.2.1:5070>\r\n\
            Content-Type: application/sdp\r\n\
            Content-Length: 4\r\n\r\nv=0\n";
        match message::parse(text.as_bytes()) {
            Ok(rsip::SipMessage::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dialog_responses_carry_the_tag_record_route_and_contact() {
        let request = invite();
        let mut ok = dialog_response(&request, 200, "b7", "<sip:bob@192.0.2.4:5080>", "t");
        assert_eq!(ok.to_tag(), Some("b7"));
        let text = ok.to_string();
        let rr = text.find("Record-Route").unwrap();
        assert!(rr > text.rfind("Via:").unwrap(), "{text}");
        assert!(text.contains("Contact: <sip:bob@192.0.2.4:5080>"));
        assert!(text.contains(&format!("Allow: {ALLOW}")));
        let body = Body::new("application/sdp", &b"v=0\r\n"[..]);
        set_body(&mut ok.headers, &mut ok.body, Some(&body));
        let parsed = match message::parse(ok.to_string().as_bytes()) {
            Ok(rsip::SipMessage::Response(r)) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(body_of(&parsed.headers, &parsed.body), Some(body));
    }

    #[test]
    fn a_tagged_to_is_kept_and_trying_has_no_tag() {
        let request = invite();
        assert_eq!(response(&request, 100, Some("b7")).to_tag(), None);
        assert_eq!(response(&request, 486, Some("b7")).to_tag(), Some("b7"));
        assert_eq!(
            body_of(&request.headers, &request.body).map(|b| b.content_type),
            Some("application/sdp".into())
        );
        assert_eq!(unsupported_requirements(&request), vec!["foo"]);
        assert!(lists_option(&request.headers, "Require", "FOO"));
    }
}

#[cfg(test)]
mod subscription_tests {
    use super::*;

    fn notify(state: &str) -> Request {
        let text = format!(
            "NOTIFY sip:alice@192.0.2.1:5070 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKn1\r\n\
             From: <sip:bob@example.org>;tag=b7\r\n\
             To: <sip:alice@example.org>;tag=a1\r\n\
             Call-ID: c1\r\n\
             CSeq: 2 NOTIFY\r\n\
             Event: refer\r\n\
             {state}\r\n\
             Content-Length: 0\r\n\r\n"
        );
        match message::parse(text.as_bytes()) {
            Ok(rsip::SipMessage::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_received_terminated_subscription_state_is_recognised_in_any_case() {
        assert!(subscription_terminated(&notify(
            "Subscription-State: terminated;reason=noresource"
        )));
        assert!(subscription_terminated(&notify(
            "subscription-state: Terminated"
        )));
        assert!(!subscription_terminated(&notify(
            "Subscription-State: active;expires=60"
        )));
        assert!(!subscription_terminated(&notify("X-Other: terminated")));
    }
}
