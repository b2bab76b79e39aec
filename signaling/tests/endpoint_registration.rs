//! The endpoint (transactions + registration) against a small registrar built on the same
//! transaction layer, over a simulated lossy network with a virtual clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use callisto_signaling::auth::Credentials;
use callisto_signaling::endpoint::{Endpoint, EndpointEvent, ALLOWED_METHODS};
use callisto_signaling::message::{self, HeaderAccess};
use callisto_signaling::registration::{RegistrationConfig, RegistrationEvent};
use callisto_signaling::sim::{NetworkConfig, SimClock, SimNetwork};
use callisto_signaling::transaction::{TimerConfig, TransactionEvent, TransactionLayer};
use callisto_signaling::transport::{Target, TransportKind};

fn udp(addr: &str) -> Target {
    Target::new(TransportKind::Udp, addr.parse::<SocketAddr>().unwrap())
}

/// A registrar that challenges unauthenticated REGISTERs once per Call-ID and grants 60 s.
struct Registrar {
    layer: TransactionLayer,
    registers: Vec<rsip::Request>,
    challenged: std::collections::HashSet<String>,
}

impl Registrar {
    fn new() -> Self {
        Registrar {
            layer: TransactionLayer::new(TimerConfig::default()),
            registers: Vec::new(),
            challenged: Default::default(),
        }
    }

    fn serve(&mut self, now: Instant) {
        while let Some(event) = self.layer.poll_event() {
            if let TransactionEvent::Request { key, request, .. } = event {
                self.registers.push(request.clone());
                let call_id = request.call_id().unwrap_or_default().to_string();
                let has_auth = request
                    .headers
                    .iter()
                    .any(|h| matches!(h, rsip::Header::Authorization(_)));
                let expires = request.expires().unwrap_or(3600);
                let mut response =
                    if !has_auth || !self.challenged.contains(&call_id) {
                        self.challenged.insert(call_id);
                        let mut r = message::response_to(&request, 401, "Unauthorized");
                        r.headers.push(rsip::headers::WwwAuthenticate::from(
                        "Digest realm=\"sim\", nonce=\"abc123\", qop=\"auth\", algorithm=MD5",
                    ).into());
                        r
                    } else {
                        let mut r = message::response_to(&request, 200, "OK");
                        let contact = request
                            .contacts()
                            .first()
                            .map(|c| c.uri.to_string())
                            .unwrap_or_default();
                        let granted = expires.min(60);
                        r.headers.push(
                            rsip::headers::Contact::from(format!("<{contact}>;expires={granted}"))
                                .into(),
                        );
                        r
                    };
                response
                    .headers
                    .retain(|h| !matches!(h, rsip::Header::ContentLength(_)));
                response
                    .headers
                    .push(rsip::headers::ContentLength::from("0").into());
                self.layer.respond(now, &key, response).unwrap();
            }
        }
    }
}

#[test]
fn registers_and_refreshes_through_a_lossy_network() {
    let client_addr = udp("127.0.0.1:5070");
    let server_addr = udp("127.0.0.1:5060");
    let mut clock = SimClock::new(Instant::now());
    let mut network = SimNetwork::new(
        NetworkConfig {
            loss: 0.2,
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(30),
            duplicate: 0.05,
            reorder: 0.1,
            reorder_delay: Duration::from_millis(40),
        },
        42,
    );
    let mut endpoint = Endpoint::new(TimerConfig::default());
    let mut registrar = Registrar::new();
    let mut config = RegistrationConfig::new(
        rsip::Uri::try_from("sip:alice@sim.test").unwrap(),
        rsip::Uri::try_from("sip:sim.test").unwrap(),
        client_addr.addr,
    );
    config.credentials = Some(Credentials::new("alice", "secret"));
    config.expires = 60;
    config.retry_base = Duration::from_secs(1);
    endpoint.add_registration(clock.now(), config, server_addr, 9);

    let mut registered_at = Vec::new();
    let end = clock.now() + Duration::from_secs(200);
    while clock.now() < end {
        let now = clock.now();
        while let Some(t) = endpoint.poll_transmit() {
            network.send(now, client_addr, t.target, t.bytes);
        }
        while let Some(t) = registrar.layer.poll_transmit() {
            network.send(now, server_addr, t.target, t.bytes);
        }
        while let Some(event) = endpoint.poll_event() {
            match event {
                EndpointEvent::Registration {
                    event: RegistrationEvent::Registered { expires, .. },
                    ..
                } => {
                    assert_eq!(expires, 60);
                    registered_at.push(now);
                }
                EndpointEvent::Registration {
                    event: RegistrationEvent::Failed { kind, reason, .. },
                    ..
                } => {
                    // Loss may cost an attempt, but never a final failure.
                    assert!(!kind.is_final(), "{kind:?}: {reason}");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let next = [
            endpoint.poll_timeout(),
            registrar.layer.poll_timeout(),
            network.next_delivery(),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(end);
        clock.advance_to(next.max(now));
        let now = clock.now();
        while let Some(d) = network.poll_deliver(now) {
            if d.to == server_addr {
                let msg = message::parse(&d.bytes).unwrap();
                registrar.layer.handle_message(now, msg, d.from);
                registrar.serve(now);
            } else {
                endpoint.handle_datagram(now, &d.bytes, d.from);
            }
        }
        endpoint.handle_timeout(now);
        registrar.layer.handle_timeout(now);
        registrar.serve(now);
    }
    // The first registration, then a refresh roughly every 51 s, each before the minute ran out.
    assert!(
        registered_at.len() >= 3,
        "{} registrations",
        registered_at.len()
    );
    for pair in registered_at.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap < Duration::from_secs(60), "binding lapsed: {gap:?}");
    }
    assert!(network.stats().dropped > 0, "the network did lose packets");
    // Every REGISTER of the registration shares one Call-ID.
    let call_ids: std::collections::HashSet<_> = registrar
        .registers
        .iter()
        .map(|r| r.call_id().unwrap_or_default().to_string())
        .collect();
    assert_eq!(call_ids.len(), 1);
}

#[test]
fn a_malformed_request_is_answered_400_naming_the_fault() {
    let now = Instant::now();
    let mut endpoint = Endpoint::new(TimerConfig::default());
    let request = "OPTIONS sip:alice@127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKbad1\r\n\
        From: <sip:bob@127.0.0.1>;tag=1\r\n\
        To: <sip:alice@127.0.0.1>\r\n\
        Call-ID: short-body\r\n\
        CSeq: 1 OPTIONS\r\n\
        Content-Length: 50\r\n\r\nv=0\r\n";
    endpoint.handle_datagram(now, request.as_bytes(), udp("127.0.0.1:5099"));
    let reply = endpoint.poll_transmit().expect("a 400 reply");
    let text = String::from_utf8_lossy(&reply.bytes).to_string();
    assert!(text.starts_with("SIP/2.0 400 "), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("content-length"),
        "the reason names the fault: {text}"
    );
    assert_eq!(reply.target, udp("127.0.0.1:5099"));
    assert!(matches!(
        endpoint.poll_event(),
        Some(EndpointEvent::Malformed { .. })
    ));
}

#[test]
fn options_is_answered_and_unknown_methods_get_501() {
    let now = Instant::now();
    let mut endpoint = Endpoint::new(TimerConfig::default());
    let source = udp("127.0.0.1:5099");
    for (method, expected) in [
        ("OPTIONS", "SIP/2.0 200 OK"),
        ("MESSAGE", "SIP/2.0 501 Not Implemented"),
    ] {
        let request = format!(
            "{method} sip:alice@127.0.0.1 SIP/2.0\r\n\
             v: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK{method}\r\n\
             f: <sip:bob@127.0.0.1>;tag=1\r\n\
             t: <sip:alice@127.0.0.1>\r\n\
             i: call-{method}\r\n\
             CSeq: 1 {method}\r\n\
             l: 0\r\n\r\n"
        );
        endpoint.handle_datagram(now, request.as_bytes(), source);
        let reply = endpoint.poll_transmit().expect("a reply");
        let text = String::from_utf8_lossy(&reply.bytes).to_string();
        assert!(text.starts_with(expected), "{text}");
        assert!(
            text.contains(&format!("Allow: {ALLOWED_METHODS}")),
            "{text}"
        );
    }
}
