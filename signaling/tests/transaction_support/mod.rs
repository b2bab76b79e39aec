//! Shared builders for the transaction-layer integration tests.
#![allow(dead_code)]

use std::net::SocketAddr;

use callisto_signaling::transaction::{TransactionEvent, TransactionLayer, Transmit};
use callisto_signaling::transport::{Target, TransportKind};
use rsip::prelude::*;
use rsip::{Header, Request, Response, SipMessage};

pub const CLIENT_ADDR: &str = "127.0.0.1:5060";
pub const SERVER_ADDR: &str = "127.0.0.1:5070";

pub fn addr(text: &str) -> SocketAddr {
    text.parse()
        .unwrap_or_else(|_| panic!("bad test address {text}"))
}

pub fn udp(text: &str) -> Target {
    Target::new(TransportKind::Udp, addr(text))
}

pub fn tcp(text: &str) -> Target {
    Target::new(TransportKind::Tcp, addr(text))
}

/// A request from the client address with the given top Via branch.
pub fn request(method: &str, branch: &str, seq: u32, call_id: &str) -> Request {
    let text = format!(
        "{method} sip:bob@127.0.0.1:5070 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {CLIENT_ADDR};branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@127.0.0.1>;tag=alice-tag\r\n\
         To: <sip:bob@127.0.0.1>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {seq} {method}\r\n\
         Content-Length: 0\r\n\r\n"
    );
    Request::try_from(text.as_bytes()).unwrap_or_else(|e| panic!("test request: {e}"))
}

/// The UAS's response to a request: Via, From, Call-ID and CSeq copied, To tagged.
pub fn response_to(request: &Request, code: u16, to_tag: &str) -> Response {
    let mut headers = rsip::Headers::default();
    for header in request.headers.iter() {
        match header {
            Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_) => {
                headers.push(header.clone())
            }
            Header::To(to) => {
                let value = if code > 100 && !to.value().contains("tag=") {
                    format!("{};tag={to_tag}", to.value())
                } else {
                    to.value().to_owned()
                };
                headers.push(Header::To(rsip::headers::To::new(value)));
            }
            _ => {}
        }
    }
    headers.push(Header::ContentLength(Default::default()));
    Response {
        status_code: rsip::StatusCode::from(code),
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    }
}

pub fn parse(bytes: &[u8]) -> SipMessage {
    SipMessage::try_from(bytes).unwrap_or_else(|e| panic!("transmitted bytes do not parse: {e}"))
}

pub fn parse_request(transmit: &Transmit) -> Request {
    match parse(&transmit.bytes) {
        SipMessage::Request(request) => request,
        SipMessage::Response(_) => panic!("expected a request"),
    }
}

pub fn parse_response(transmit: &Transmit) -> Response {
    match parse(&transmit.bytes) {
        SipMessage::Response(response) => response,
        SipMessage::Request(_) => panic!("expected a response"),
    }
}

pub fn transmits(layer: &mut TransactionLayer) -> Vec<Transmit> {
    std::iter::from_fn(|| layer.poll_transmit()).collect()
}

pub fn events(layer: &mut TransactionLayer) -> Vec<TransactionEvent> {
    std::iter::from_fn(|| layer.poll_event()).collect()
}

pub fn status(response: &Response) -> u16 {
    response.status_code.code()
}

pub fn cseq_method(message: &Request) -> rsip::Method {
    match message.cseq_header().and_then(|c| c.typed()) {
        Ok(cseq) => cseq.method,
        Err(e) => panic!("no CSeq: {e}"),
    }
}
