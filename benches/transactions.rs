//! Complete non-INVITE transactions through two in-memory transaction layers.
//!
//! Each iteration: the client layer sends a REGISTER over a reliable transport, the server layer
//! parses and receives it, the server's user answers 200, the client layer parses the response
//! and reports it, and both transactions terminate. A second group does the same over UDP and
//! lets Timers J and K expire.

use std::time::{Duration, Instant};

use callisto_signaling::transaction::{TimerConfig, TransactionEvent, TransactionLayer};
use callisto_signaling::transport::{Target, TransportKind};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rsip::prelude::*;
use rsip::{Header, Request, Response, SipMessage};

fn target(transport: TransportKind, port: u16) -> Target {
    Target::new(
        transport,
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
    )
}

fn template(transport: TransportKind) -> Request {
    let text = format!(
        "REGISTER sip:registrar.example.com SIP/2.0\r\n\
         Via: SIP/2.0/{transport} 127.0.0.1:5060;branch=z9hG4bKtemplate\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@example.com>;tag=8a7f3\r\n\
         To: <sip:alice@example.com>\r\n\
         Call-ID: 3f2a9c1e@127.0.0.1\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:alice@127.0.0.1:5060>\r\n\
         Expires: 3600\r\n\
         Content-Length: 0\r\n\r\n"
    );
    match Request::try_from(text.as_bytes()) {
        Ok(request) => request,
        Err(error) => panic!("template does not parse: {error}"),
    }
}

fn ok_for(request: &Request) -> Response {
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
        .chain(std::iter::once(Header::ContentLength(Default::default())))
        .collect();
    Response {
        status_code: rsip::StatusCode::OK,
        version: rsip::Version::V2,
        headers: headers.into(),
        body: Vec::new(),
    }
}

struct Pair {
    client: TransactionLayer,
    server: TransactionLayer,
    template: Request,
    transport: TransportKind,
    counter: u64,
}

impl Pair {
    fn new(transport: TransportKind) -> Self {
        Pair {
            client: TransactionLayer::new(TimerConfig::default()),
            server: TransactionLayer::new(TimerConfig::default()),
            template: template(transport),
            transport,
            counter: 0,
        }
    }

    /// One complete transaction; returns the final status the client saw.
    fn transaction(&mut self, now: Instant) -> u16 {
        let client_at = target(self.transport, 5060);
        let server_at = target(self.transport, 5070);
        self.counter += 1;
        let mut request = self.template.clone();
        for header in request.headers.iter_mut() {
            if let Header::Via(via) = header {
                *via = rsip::headers::Via::new(format!(
                    "SIP/2.0/{} 127.0.0.1:5060;branch=z9hG4bK{:016x}",
                    self.transport, self.counter
                ));
                break;
            }
        }
        if self.client.send_request(now, request, server_at).is_err() {
            return 0;
        }
        while let Some(transmit) = self.client.poll_transmit() {
            if let Ok(message) = SipMessage::try_from(transmit.bytes.as_ref()) {
                self.server.handle_message(now, message, client_at);
            }
        }
        while let Some(event) = self.server.poll_event() {
            if let TransactionEvent::Request { key, request, .. } = event {
                let _ = self.server.respond(now, &key, ok_for(&request));
            }
        }
        while let Some(transmit) = self.server.poll_transmit() {
            if let Ok(message) = SipMessage::try_from(transmit.bytes.as_ref()) {
                self.client.handle_message(now, message, server_at);
            }
        }
        let mut status = 0;
        while let Some(event) = self.client.poll_event() {
            if let TransactionEvent::Response { response, .. } = event {
                status = response.status_code.code();
            }
        }
        status
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("non_invite_transaction");
    group.throughput(Throughput::Elements(1));

    group.bench_function("tcp_complete", |b| {
        let mut pair = Pair::new(TransportKind::Tcp);
        let now = Instant::now();
        b.iter(|| {
            let status = pair.transaction(now);
            assert_eq!(status, 200);
            assert!(pair.client.is_empty() && pair.server.is_empty());
        });
    });

    group.bench_function("udp_complete_with_timers_j_k", |b| {
        let mut pair = Pair::new(TransportKind::Udp);
        let mut now = Instant::now();
        b.iter(|| {
            let status = pair.transaction(now);
            assert_eq!(status, 200);
            // Step virtual time so Timers K (5 s) and J (32 s) of earlier transactions fire.
            now += Duration::from_millis(100);
            pair.client.handle_timeout(now);
            pair.server.handle_timeout(now);
            while pair.client.poll_event().is_some() {}
            while pair.server.poll_event().is_some() {}
        });
        assert!(pair.server.len() <= 321, "Timer J is not cleaning up");
    });
    group.finish();

    // For reference: the share of each transaction spent parsing its two messages with rsip.
    let mut parse = c.benchmark_group("rsip_parse");
    parse.throughput(Throughput::Elements(1));
    let request = template(TransportKind::Tcp);
    let request_bytes = request.to_string().into_bytes();
    let response_bytes = ok_for(&request).to_string().into_bytes();
    parse.bench_function("register_and_200", |b| {
        b.iter(|| {
            let request = SipMessage::try_from(request_bytes.as_slice());
            let response = SipMessage::try_from(response_bytes.as_slice());
            assert!(request.is_ok() && response.is_ok());
        });
    });
    parse.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
