//! The one place where the transaction layer reads and builds SIP headers.
//!
//! Everything here goes through `rsip` directly; when the crate's own message module grows the
//! accessors the transaction layer needs, only this file changes.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use rsip::common::uri::host_with_port::Host;
use rsip::common::uri::param::{OtherParamValue, Received};
use rsip::headers::typed;
use rsip::prelude::*;
use rsip::{Header, Headers, Method, Param, Request, Response};

use super::TransactionError;
use crate::transport::Target;

/// The parts of the top Via the transaction layer needs.
#[derive(Debug, Clone)]
pub(crate) struct TopVia {
    pub branch: Option<String>,
    /// `host[:port]` as written, for matching.
    pub sent_by: String,
    host: Host,
    port: Option<u16>,
    received: Option<IpAddr>,
    /// `None`: no rport; `Some(None)`: a bare `;rport`; `Some(Some(p))`: `;rport=p`.
    rport: Option<Option<u16>>,
    /// The whole header value, for the RFC 2543 fallback.
    pub raw: String,
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

/// Reads the top Via.
pub(crate) fn top_via(headers: &Headers) -> Result<TopVia, TransactionError> {
    let untyped = first_via(headers).ok_or(bad("Via"))?;
    let via: typed::Via = untyped.typed().map_err(|_| bad("Via"))?;
    let mut rport = None;
    let mut received = None;
    for param in &via.params {
        match param {
            Param::Received(value) => received = value.value().trim().parse::<IpAddr>().ok(),
            Param::Other(name, value) if name.value().eq_ignore_ascii_case("rport") => {
                rport = Some(
                    value
                        .as_ref()
                        .and_then(|v| v.value().trim().parse::<u16>().ok()),
                );
            }
            _ => {}
        }
    }
    let host_with_port = &via.uri.host_with_port;
    Ok(TopVia {
        branch: via.branch().map(|b| b.value().to_owned()),
        sent_by: host_with_port.to_string(),
        host: host_with_port.host.clone(),
        port: host_with_port.port.as_ref().map(|p| *p.value()),
        received,
        rport,
        raw: untyped.value().to_owned(),
    })
}

impl TopVia {
    /// Where responses to a request carrying this Via go (RFC 3261 §18.2.2, RFC 3581 §4).
    /// Reliable transports answer on the connection the request came in on.
    pub(crate) fn response_target(&self, source: Target) -> Target {
        if source.transport.is_reliable() {
            return source;
        }
        let sent_by_ip = match &self.host {
            Host::IpAddr(ip) => Some(*ip),
            Host::Domain(_) => None,
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
pub(crate) fn stamp_received(request: &mut Request, source: Target) {
    let Some(header) = request
        .headers
        .iter_mut()
        .find(|h| matches!(h, Header::Via(_)))
    else {
        return;
    };
    let Header::Via(untyped) = header else {
        return;
    };
    let Ok(mut via) = untyped.typed() else {
        return;
    };
    let source_ip = source.addr.ip().to_string();
    let host_is_source =
        matches!(&via.uri.host_with_port.host, Host::IpAddr(ip) if *ip == source.addr.ip());
    let mut changed = false;
    let mut has_received = false;
    for param in via.params.iter_mut() {
        match param {
            Param::Received(_) => has_received = true,
            Param::Other(name, value @ None) if name.value().eq_ignore_ascii_case("rport") => {
                *value = Some(OtherParamValue::new(source.addr.port().to_string()));
                changed = true;
            }
            _ => {}
        }
    }
    if !has_received && (!host_is_source || changed) {
        via.params.push(Param::Received(Received::new(source_ip)));
        changed = true;
    }
    if changed {
        *header = Header::Via(rsip::headers::Via::new(via.to_string()));
    }
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
    let typed = cseq.typed().map_err(|_| bad("CSeq"))?;
    Ok((typed.seq, typed.method))
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
    via: &TopVia,
    to_tag_override: Option<&str>,
) -> Result<String, TransactionError> {
    let (seq, _) = cseq(&request.headers)?;
    let call_id = call_id(&request.headers).ok_or(bad("Call-ID"))?;
    let to = match to_tag_override {
        Some(tag) => tag.to_owned(),
        None => to_tag(&request.headers).unwrap_or_default(),
    };
    let from = from_tag(&request.headers).unwrap_or_default();
    Ok(format!(
        "{}|{to}|{from}|{call_id}|{seq}|{}",
        request.uri, via.raw
    ))
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

/// Encodes a message once, for the first send and every retransmission.
pub(crate) fn encode_request(request: &Request) -> Bytes {
    Bytes::from(request.to_string())
}

/// Encodes a response.
pub(crate) fn encode_response(response: &Response) -> Bytes {
    Bytes::from(response.to_string())
}

/// Builds a bare `rport` parameter; used by tests of the response routing.
#[cfg(test)]
fn rport_param(value: Option<u16>) -> Param {
    Param::Other(
        rsip::common::uri::param::OtherParam::new("rport"),
        value.map(|v| OtherParamValue::new(v.to_string())),
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
        stamp_received(&mut request, source);
        let via = top_via(&request.headers)?;
        assert_eq!(via.received, Some(source.addr.ip()));
        assert_eq!(via.rport, Some(Some(40000)));
        assert_eq!(via.branch.as_deref(), Some("z9hG4bKa"));
        assert_eq!(rport_param(Some(40000)).to_string(), ";rport=40000");
        Ok(())
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
