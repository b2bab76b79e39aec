//! The one place where the transaction layer reads and builds SIP headers.
//!
//! Everything here goes through `rsip` directly; when the crate's own message module grows the
//! accessors the transaction layer needs, only this file changes.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use rsip::headers::typed;
use rsip::prelude::*;
use rsip::{Header, Headers, Method, Request, Response};

use super::TransactionError;
use crate::transport::Target;

/// The parts of the top Via the transaction layer needs.
#[derive(Debug, Clone)]
pub(crate) struct TopVia {
    pub branch: Option<String>,
    /// `host[:port]` as written, for matching.
    pub sent_by: String,
    host: ViaHost,
    port: Option<u16>,
    received: Option<IpAddr>,
    /// `None`: no rport; `Some(None)`: a bare `;rport`; `Some(Some(p))`: `;rport=p`.
    rport: Option<Option<u16>>,
}

fn first_via(headers: &Headers) -> Option<&rsip::headers::Via> {
    headers.iter().find_map(|header| match header {
        Header::Via(via) => Some(via),
        _ => None,
    })
}

const fn bad(header: &'static str) -> TransactionError {
    TransactionError::BadHeader { header }
}

/// Reads the top Via. The value is scanned by hand rather than through `rsip`'s typed Via:
/// this runs for every message, and only sent-by and four parameters matter here.
pub(crate) fn top_via(headers: &Headers) -> Result<TopVia, TransactionError> {
    let untyped = first_via(headers).ok_or(bad("Via"))?;
    let raw = untyped.value();
    // A header line may carry several comma-separated values; the first is the top one.
    let value = raw.split(',').next().unwrap_or_default().trim();
    let (protocol, rest) = value
        .split_once(|c: char| c.is_ascii_whitespace())
        .ok_or(bad("Via"))?;
    if !protocol.to_ascii_uppercase().starts_with("SIP/2.0/") {
        return Err(bad("Via"));
    }
    let mut parts = rest.split(';');
    let sent_by = parts.next().unwrap_or_default().trim();
    let (host, port) = split_host_port(sent_by).ok_or(bad("Via"))?;
    let mut via = TopVia {
        branch: None,
        sent_by: sent_by.to_owned(),
        host,
        port,
        received: None,
        rport: None,
    };
    for param in parts {
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim())),
            None => (param.trim(), None),
        };
        if name.eq_ignore_ascii_case("branch") {
            via.branch = value.map(str::to_owned);
        } else if name.eq_ignore_ascii_case("received") {
            via.received = value.and_then(|v| v.trim_matches(['[', ']']).parse().ok());
        } else if name.eq_ignore_ascii_case("rport") {
            via.rport = Some(value.and_then(|v| v.parse().ok()));
        }
    }
    Ok(via)
}

/// Splits `host[:port]`, with IPv6 references in brackets.
fn split_host_port(sent_by: &str) -> Option<(ViaHost, Option<u16>)> {
    let (host, port) = if let Some(rest) = sent_by.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let ip: IpAddr = host.parse().ok()?;
        let port = match after.trim().strip_prefix(':') {
            Some(port) => Some(port.trim().parse().ok()?),
            None if after.trim().is_empty() => None,
            None => return None,
        };
        return Some((ViaHost::Ip(ip), port));
    } else {
        match sent_by.rsplit_once(':') {
            Some((host, port)) => (host.trim(), Some(port.trim().parse().ok()?)),
            None => (sent_by, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let host = match host.parse::<IpAddr>() {
        Ok(ip) => ViaHost::Ip(ip),
        Err(_) => ViaHost::Name,
    };
    Some((host, port))
}

/// The host part of sent-by: an address, or a name this sans-IO layer cannot resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ViaHost {
    Ip(IpAddr),
    Name,
}

impl TopVia {
    /// Where responses to a request carrying this Via go (RFC 3261 §18.2.2, RFC 3581 §4).
    /// Reliable transports answer on the connection the request came in on.
    pub(crate) fn response_target(&self, source: Target) -> Target {
        if source.transport.is_reliable() {
            return source;
        }
        let sent_by_ip = match self.host {
            ViaHost::Ip(ip) => Some(ip),
            ViaHost::Name => None,
        };
        let ip = match (self.received, self.rport) {
            (Some(received), _) => received,
            (None, Some(_)) => source.addr.ip(),
            (None, None) => sent_by_ip.unwrap_or(source.addr.ip()),
        };
        let port = match self.rport {
            Some(Some(port)) => port,
            Some(None) => source.addr.port(),
            None => self.port.unwrap_or(source.transport.default_port()),
        };
        Target::new(source.transport, SocketAddr::new(ip, port))
    }
}

/// Adds `received` and fills a bare `rport` in the top Via of an incoming request
/// (RFC 3261 §18.2.1, RFC 3581 §4), so responses the user builds carry them.
pub(crate) fn stamp_received(request: &mut Request, via: &TopVia, source: Target) {
    let host_is_source = via.host == ViaHost::Ip(source.addr.ip());
    let bare_rport = via.rport == Some(None);
    if via.received.is_some() || (host_is_source && !bare_rport) {
        return;
    }
    let Some(Header::Via(untyped)) = request
        .headers
        .iter_mut()
        .find(|h| matches!(h, Header::Via(_)))
    else {
        return;
    };
    // Edit the text of the top value only; further comma-separated values stay as they are.
    let raw = untyped.value();
    let (top, others) = match raw.split_once(',') {
        Some((top, others)) => (top, Some(others)),
        None => (raw, None),
    };
    let mut stamped = String::with_capacity(raw.len() + 40);
    for (index, part) in top.trim_end().split(';').enumerate() {
        if index > 0 {
            stamped.push(';');
        }
        if part.trim().eq_ignore_ascii_case("rport") {
            stamped.push_str(&format!("rport={}", source.addr.port()));
        } else {
            stamped.push_str(part);
        }
    }
    stamped.push_str(&format!(";received={}", source.addr.ip()));
    if let Some(others) = others {
        stamped.push(',');
        stamped.push_str(others);
    }
    *untyped = rsip::headers::Via::new(stamped);
}

/// CSeq number and method.
pub(crate) fn cseq(headers: &Headers) -> Result<(u32, Method), TransactionError> {
    let cseq = headers
        .iter()
        .find_map(|header| match header {
            Header::CSeq(cseq) => Some(cseq),
            _ => None,
        })
        .ok_or(bad("CSeq"))?;
    let mut words = cseq.value().split_ascii_whitespace();
    let seq = words.next().and_then(|w| w.parse::<u32>().ok());
    let method = words.next().and_then(|w| w.parse::<Method>().ok());
    match (seq, method, words.next()) {
        (Some(seq), Some(method), None) => Ok((seq, method)),
        _ => Err(bad("CSeq")),
    }
}

fn call_id(headers: &Headers) -> Option<&str> {
    headers.iter().find_map(|header| match header {
        Header::CallId(call_id) => Some(call_id.value()),
        _ => None,
    })
}

fn from_tag(headers: &Headers) -> Option<String> {
    headers.iter().find_map(|header| match header {
        Header::From(from) => from.tag().ok().flatten().map(|t| t.value().to_owned()),
        _ => None,
    })
}

/// The To tag of a message, if it has one.
pub(crate) fn to_tag(headers: &Headers) -> Option<String> {
    headers.iter().find_map(|header| match header {
        Header::To(to) => to.tag().ok().flatten().map(|t| t.value().to_owned()),
        _ => None,
    })
}

/// The RFC 2543 matching fields of a request (§17.2.3): Request-URI, To tag (or the one
/// given), From tag, Call-ID, CSeq number and the top Via.
pub(crate) fn legacy_fields(
    request: &Request,
    to_tag_override: Option<&str>,
) -> Result<String, TransactionError> {
    let via = first_via(&request.headers).ok_or(bad("Via"))?.value();
    let (seq, _) = cseq(&request.headers)?;
    let call_id = call_id(&request.headers).ok_or(bad("Call-ID"))?;
    let to = match to_tag_override {
        Some(tag) => tag.to_owned(),
        None => to_tag(&request.headers).unwrap_or_default(),
    };
    let from = from_tag(&request.headers).unwrap_or_default();
    Ok(format!("{}|{to}|{from}|{call_id}|{seq}|{via}", request.uri))
}

/// The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): the INVITE's Request-URI, top
/// Via, Route set, From, Call-ID and CSeq number, with the response's To.
pub(crate) fn build_ack(invite: &Request, response: &Response) -> Request {
    let mut headers = Headers::default();
    if let Some(via) = first_via(&invite.headers) {
        headers.push(Header::Via(via.clone()));
    }
    for header in invite.headers.iter() {
        match header {
            Header::Route(_) | Header::From(_) | Header::CallId(_) => headers.push(header.clone()),
            _ => {}
        }
    }
    if let Some(to) = response.headers.iter().find(|h| matches!(h, Header::To(_))) {
        headers.push(to.clone());
    }
    let seq = cseq(&invite.headers).map(|(seq, _)| seq).unwrap_or(0);
    headers.push(Header::CSeq(typed::CSeq::from((seq, Method::Ack)).into()));
    headers.push(Header::MaxForwards(rsip::headers::MaxForwards::from(70)));
    headers.push(Header::ContentLength(
        rsip::headers::ContentLength::default(),
    ));
    Request {
        method: Method::Ack,
        uri: invite.uri.clone(),
        version: invite.version.clone(),
        headers,
        body: Vec::new(),
    }
}

/// A 100 Trying for a request (RFC 3261 §8.2.6.1): Via, From, To, Call-ID and CSeq copied.
pub(crate) fn build_trying(request: &Request) -> Response {
    let headers: Vec<Header> = request
        .headers
        .iter()
        .filter(|h| {
            matches!(
                h,
                Header::Via(_)
                    | Header::From(_)
                    | Header::To(_)
                    | Header::CallId(_)
                    | Header::CSeq(_)
            )
        })
        .cloned()
        .chain(std::iter::once(Header::ContentLength(
            rsip::headers::ContentLength::default(),
        )))
        .collect();
    Response {
        status_code: rsip::StatusCode::Trying,
        version: request.version.clone(),
        headers: headers.into(),
        body: Vec::new(),
    }
}

/// The status code as a number.
pub(crate) fn status(response: &Response) -> u16 {
    response.status_code.code()
}

/// Encodes a request once, for the first send and every retransmission: the start line and
/// headers written into one buffer, the body appended as raw bytes.
pub(crate) fn encode_request(request: &Request) -> Bytes {
    use std::fmt::Write;
    let mut text = String::with_capacity(512);
    let _ = write!(
        text,
        "{} {} {}\r\n",
        request.method, request.uri, request.version
    );
    encode_rest(text, &request.headers, &request.body)
}

/// Encodes a response; see [`encode_request`].
pub(crate) fn encode_response(response: &Response) -> Bytes {
    use std::fmt::Write;
    let mut text = String::with_capacity(512);
    let _ = write!(text, "{} {}\r\n", response.version, response.status_code);
    encode_rest(text, &response.headers, &response.body)
}

fn encode_rest(mut text: String, headers: &Headers, body: &[u8]) -> Bytes {
    use std::fmt::Write;
    for header in headers.iter() {
        let _ = write!(text, "{header}\r\n");
    }
    text.push_str("\r\n");
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    Bytes::from(bytes)
}

/// Builds a bare `rport` parameter; used by tests of the response routing.
#[cfg(test)]
fn rport_param(value: Option<u16>) -> rsip::Param {
    rsip::Param::Other(
        rsip::common::uri::param::OtherParam::new("rport"),
        value.map(|v| rsip::common::uri::param::OtherParamValue::new(v.to_string())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::TransportKind;

    fn request_with_via(via: &str) -> Request {
        let text = format!(
            "OPTIONS sip:b@example.com SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@example.com>;tag=f1\r\nTo: <sip:b@example.com>\r\nCall-ID: c1\r\nCSeq: 4 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        match Request::try_from(text.as_bytes()) {
            Ok(request) => request,
            Err(error) => panic!("test request does not parse: {error}"),
        }
    }

    fn udp(addr: &str) -> Target {
        Target::new(
            TransportKind::Udp,
            addr.parse().unwrap_or_else(|_| panic!("{addr}")),
        )
    }

    #[test]
    fn responses_follow_sent_by_received_and_rport() -> Result<(), TransactionError> {
        let source = udp("192.0.2.9:40000");
        let plain =
            top_via(&request_with_via("SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bKa").headers)?;
        assert_eq!(plain.response_target(source), udp("192.0.2.1:5070"));
        let received = top_via(
            &request_with_via("SIP/2.0/UDP host.example;branch=z9hG4bKa;received=192.0.2.7")
                .headers,
        )?;
        assert_eq!(received.response_target(source), udp("192.0.2.7:5060"));
        let rport = top_via(
            &request_with_via(
                "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa;received=192.0.2.7;rport=4000",
            )
            .headers,
        )?;
        assert_eq!(rport.rport, Some(Some(4000)));
        assert_eq!(rport.response_target(source), udp("192.0.2.7:4000"));
        let bare =
            top_via(&request_with_via("SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bKa").headers)?;
        assert_eq!(bare.response_target(source), source);
        let tcp = Target::new(TransportKind::Tcp, source.addr);
        assert_eq!(plain.response_target(tcp), tcp);
        Ok(())
    }

    #[test]
    fn stamping_adds_received_and_fills_rport() -> Result<(), TransactionError> {
        let source = udp("192.0.2.9:40000");
        let mut request = request_with_via("SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bKa");
        let before = top_via(&request.headers)?;
        stamp_received(&mut request, &before, source);
        let via = top_via(&request.headers)?;
        assert_eq!(via.received, Some(source.addr.ip()));
        assert_eq!(via.rport, Some(Some(40000)));
        assert_eq!(via.branch.as_deref(), Some("z9hG4bKa"));
        assert_eq!(rport_param(Some(40000)).to_string(), ";rport=40000");
        // Nothing to add when the request came from its sent-by.
        let mut direct = request_with_via("SIP/2.0/UDP 192.0.2.9:40000;branch=z9hG4bKb");
        let untouched = direct.clone();
        let via = top_via(&direct.headers)?;
        stamp_received(&mut direct, &via, source);
        assert_eq!(direct, untouched);
        Ok(())
    }

    #[test]
    fn malformed_vias_and_cseqs_are_errors() {
        for via in [
            "",
            "SIP/2.0/UDP",
            "HTTP/1.1 host",
            "SIP/2.0/UDP host:notaport",
            "SIP/2.0/UDP [::1",
            "SIP/2.0/UDP :5060",
        ] {
            let mut request = request_with_via("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa");
            request.headers.retain(|h| !matches!(h, Header::Via(_)));
            request
                .headers
                .push(Header::Via(rsip::headers::Via::new(via)));
            assert!(top_via(&request.headers).is_err(), "{via:?} accepted");
        }
        let v6 =
            request_with_via("SIP/2.0/TCP [2001:db8::1]:5070 ;branch=z9hG4bKa, SIP/2.0/UDP other");
        let via = top_via(&v6.headers);
        assert!(
            matches!(
                via,
                Ok(TopVia {
                    port: Some(5070),
                    ..
                })
            ),
            "{via:?}"
        );
        let mut request = request_with_via("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa");
        for value in ["", "x OPTIONS", "1", "1 OPTIONS extra"] {
            request.headers.retain(|h| !matches!(h, Header::CSeq(_)));
            request
                .headers
                .push(Header::CSeq(rsip::headers::CSeq::new(value)));
            assert!(cseq(&request.headers).is_err(), "{value:?} accepted");
        }
    }

    #[test]
    fn ack_copies_the_invite_and_takes_the_response_to() -> Result<(), TransactionError> {
        let text = "INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\nVia: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bKy\r\nRoute: <sip:proxy.example;lr>\r\nFrom: <sip:a@example.com>;tag=f1\r\nTo: <sip:b@example.com>\r\nCall-ID: c9\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n";
        let invite = Request::try_from(text.as_bytes()).map_err(|_| bad("test"))?;
        let response_text = "SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\nFrom: <sip:a@example.com>;tag=f1\r\nTo: <sip:b@example.com>;tag=t2\r\nCall-ID: c9\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n";
        let response = Response::try_from(response_text.as_bytes()).map_err(|_| bad("test"))?;
        let ack = build_ack(&invite, &response);
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.uri, invite.uri);
        assert_eq!(cseq(&ack.headers)?, (7, Method::Ack));
        assert_eq!(to_tag(&ack.headers).as_deref(), Some("t2"));
        assert_eq!(top_via(&ack.headers)?.branch.as_deref(), Some("z9hG4bKx"));
        assert_eq!(
            ack.headers
                .iter()
                .filter(|h| matches!(h, Header::Via(_)))
                .count(),
            1
        );
        assert_eq!(
            ack.headers
                .iter()
                .filter(|h| matches!(h, Header::Route(_)))
                .count(),
            1
        );
        Ok(())
    }
}
