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
    endpoint.add_registration(clock.now(), config, vec![server_addr], 9);

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

/// Runs `endpoint` against `registrar` at `live` over a perfect network until `until`. Requests
/// to any other address vanish (a dead server); with `busy`, the dead address answers `503`.
/// Returns the registration events with their times and the targets each REGISTER went to.
fn run_with_two_addresses(
    endpoint: &mut Endpoint,
    registrar: &mut Registrar,
    live: Target,
    busy: bool,
    start: Instant,
    until: Duration,
) -> (Vec<(Duration, RegistrationEvent)>, Vec<Target>) {
    let client = udp("127.0.0.1:5070");
    let mut clock = SimClock::new(start);
    let mut network = SimNetwork::new(NetworkConfig::perfect(), 7);
    let mut busy_server = TransactionLayer::new(TimerConfig::default());
    let mut events = Vec::new();
    let mut sent_to = Vec::new();
    let end = start + until;
    while clock.now() < end {
        let now = clock.now();
        while let Some(t) = endpoint.poll_transmit() {
            sent_to.push(t.target);
            network.send(now, client, t.target, t.bytes);
        }
        while let Some(t) = registrar.layer.poll_transmit() {
            network.send(now, live, t.target, t.bytes);
        }
        while let Some(t) = busy_server.poll_transmit() {
            network.send(now, t.target, client, t.bytes);
        }
        while let Some(EndpointEvent::Registration { event, .. }) = endpoint.poll_event() {
            events.push((now - start, event));
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
            if d.to == live {
                let msg = message::parse(&d.bytes).unwrap();
                registrar.layer.handle_message(now, msg, d.from);
                registrar.serve(now);
            } else if d.to == client {
                endpoint.handle_datagram(now, &d.bytes, d.from);
            } else if busy {
                busy_server.handle_message(now, message::parse(&d.bytes).unwrap(), d.from);
                while let Some(event) = busy_server.poll_event() {
                    if let TransactionEvent::Request { key, request, .. } = event {
                        let r = message::response_to(&request, 503, "Service Unavailable");
                        busy_server.respond(now, &key, r).unwrap();
                    }
                }
            }
        }
        endpoint.handle_timeout(now);
        registrar.layer.handle_timeout(now);
        registrar.serve(now);
    }
    (events, sent_to)
}

fn alice() -> RegistrationConfig {
    let mut config = RegistrationConfig::new(
        rsip::Uri::try_from("sip:alice@sim.test").unwrap(),
        rsip::Uri::try_from("sip:sim.test").unwrap(),
        udp("127.0.0.1:5070").addr,
    );
    config.credentials = Some(Credentials::new("alice", "secret"));
    config.expires = 60;
    config
}

#[test]
fn a_silent_first_address_gives_way_to_the_next_after_timer_f() {
    let dead = udp("127.0.0.1:5001");
    let live = udp("127.0.0.1:5002");
    let mut endpoint = Endpoint::new(TimerConfig::default());
    let mut registrar = Registrar::new();
    let start = Instant::now();
    endpoint.add_registration(start, alice(), vec![dead, live], 3);
    let (events, sent_to) = run_with_two_addresses(
        &mut endpoint,
        &mut registrar,
        live,
        false,
        start,
        Duration::from_secs(40),
    );
    let registered: Vec<_> = events
        .iter()
        .filter(|(_, e)| matches!(e, RegistrationEvent::Registered { .. }))
        .collect();
    assert_eq!(registered.len(), 1, "{events:?}");
    // Timer F (64*T1 = 32 s) ends the attempt at the dead address; the next one goes at once.
    let at = registered[0].0;
    assert!(
        at >= Duration::from_secs(32) && at < Duration::from_secs(33),
        "{at:?}"
    );
    assert!(
        events
            .iter()
            .all(|(_, e)| !matches!(e, RegistrationEvent::Failed { .. })),
        "failing over is not a failure: {events:?}"
    );
    assert_eq!(sent_to.first(), Some(&dead));
    assert_eq!(sent_to.last(), Some(&live));
    // The challenge from the second server is answered, not taken for a wrong password.
    assert_eq!(registrar.registers.len(), 2);
}

#[test]
fn a_503_moves_to_the_next_address_at_once() {
    let busy = udp("127.0.0.1:5001");
    let live = udp("127.0.0.1:5002");
    let mut endpoint = Endpoint::new(TimerConfig::default());
    let mut registrar = Registrar::new();
    let start = Instant::now();
    let id = endpoint.add_registration(start, alice(), vec![busy, live], 3);
    let (events, _) = run_with_two_addresses(
        &mut endpoint,
        &mut registrar,
        live,
        true,
        start,
        Duration::from_secs(5),
    );
    match events.as_slice() {
        [(at, RegistrationEvent::Registered { .. })] => {
            assert!(*at < Duration::from_millis(10), "{at:?}")
        }
        other => panic!("expected one registration, got {other:?}"),
    }
    assert_eq!(endpoint.registration_target(id), Some(live));
}

#[test]
fn when_every_address_fails_the_registration_backs_off_and_starts_over() {
    let first = udp("127.0.0.1:5001");
    let second = udp("127.0.0.1:5003");
    let live = udp("127.0.0.1:5002");
    let mut endpoint = Endpoint::new(TimerConfig::default());
    let mut registrar = Registrar::new();
    let start = Instant::now();
    let id = endpoint.add_registration(start, alice(), vec![first, second], 3);
    let (events, sent_to) = run_with_two_addresses(
        &mut endpoint,
        &mut registrar,
        live,
        false,
        start,
        Duration::from_secs(65),
    );
    // Both addresses time out (32 s each), then one failure is reported with a retry time.
    let failures: Vec<_> = events
        .iter()
        .filter(|(_, e)| matches!(e, RegistrationEvent::Failed { .. }))
        .collect();
    assert_eq!(failures.len(), 1, "{events:?}");
    assert!(failures[0].0 >= Duration::from_secs(64), "{failures:?}");
    assert!(matches!(
        failures[0].1,
        RegistrationEvent::Failed {
            retry_in: Some(_),
            ..
        }
    ));
    assert_eq!(sent_to.first(), Some(&first));
    assert!(sent_to.contains(&second));
    assert_eq!(endpoint.registration_target(id), Some(first));
}

/// Moves messages between the endpoint and the registrar over one WebSocket flow until both
/// are quiet; returns the registration events.
fn exchange_over_websocket(
    endpoint: &mut Endpoint,
    registrar: &mut Registrar,
    server: Target,
    client: Target,
    now: Instant,
) -> Vec<RegistrationEvent> {
    loop {
        let mut moved = false;
        while let Some(transmit) = endpoint.poll_transmit() {
            assert_eq!(transmit.target, server);
            let parsed = message::parse(&transmit.bytes).unwrap();
            registrar.layer.handle_message(now, parsed, client);
            registrar.serve(now);
            moved = true;
        }
        while let Some(transmit) = registrar.layer.poll_transmit() {
            assert_eq!(transmit.target, client, "answered over the connection");
            endpoint.handle_datagram(now, &transmit.bytes, server);
            moved = true;
        }
        if !moved {
            break;
        }
    }
    std::iter::from_fn(|| endpoint.poll_event())
        .filter_map(|event| match event {
            EndpointEvent::Registration { event, .. } => Some(event),
            _ => None,
        })
        .collect()
}

#[test]
fn a_dropped_websocket_registers_again_at_once_with_the_same_contact() {
    use callisto_signaling::registration::FailureKind;
    use callisto_signaling::transport::websocket_contact_host;
    let server = Target::new(TransportKind::Ws, "127.0.0.1:8080".parse().unwrap());
    let first_flow = Target::new(TransportKind::Ws, "127.0.0.1:40000".parse().unwrap());
    let second_flow = Target::new(TransportKind::Ws, "127.0.0.1:40001".parse().unwrap());
    let mut config = alice();
    config.transport = TransportKind::Ws;
    config.contact_host = Some(websocket_contact_host(9));
    let mut endpoint = Endpoint::new(TimerConfig::default());
    let mut registrar = Registrar::new();
    let t0 = Instant::now();
    endpoint.add_registration(t0, config, vec![server], 5);
    let events = exchange_over_websocket(&mut endpoint, &mut registrar, server, first_flow, t0);
    let [RegistrationEvent::Registered { contact, .. }] = events.as_slice() else {
        panic!("expected one registration, got {events:?}");
    };
    assert!(contact.ends_with(".invalid;transport=ws"), "{contact}");
    // Nothing to retransmit over a reliable flow: the next wake-up is the refresh at 85 %.
    assert_eq!(endpoint.poll_timeout(), Some(t0 + Duration::from_secs(51)));

    // The connection drops ten seconds later: the binding is registered again at once over
    // a new connection, with the same Contact, the same Call-ID and the next CSeq.
    let t1 = t0 + Duration::from_secs(10);
    endpoint.handle_flow_failure(t1, server, FailureKind::Unreachable, "closed by the peer");
    let again = exchange_over_websocket(&mut endpoint, &mut registrar, server, second_flow, t1);
    assert!(
        matches!(again.as_slice(), [RegistrationEvent::Registered { contact: c, .. }] if c == contact),
        "{again:?}"
    );
    let registers = &registrar.registers;
    assert_eq!(
        registers.len(),
        3,
        "challenge, credentials, re-registration"
    );
    let text: Vec<String> = registers.iter().map(|r| r.to_string()).collect();
    assert!(
        text.iter().all(|t| t.contains("Via: SIP/2.0/WS ")),
        "{text:?}"
    );
    let contact_of = |r: &rsip::Request| r.contacts().first().map(|c| c.uri.to_string());
    assert_eq!(contact_of(&registers[1]), contact_of(&registers[2]));
    assert_eq!(registers[1].call_id(), registers[2].call_id());
    let seq = |r: &rsip::Request| r.cseq().map(|c| c.seq);
    assert_eq!(seq(&registers[2]), seq(&registers[1]).map(|n| n + 1));
}
