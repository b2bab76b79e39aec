//! RFC 3261 §17.1.3 / §17.2.3 matching: responses to client transactions, requests to server
//! transactions, retransmissions, ACK handling, strays and the RFC 2543 fallback.

mod transaction_support;

use std::time::{Duration, Instant};

use callisto_signaling::transaction::{
    Side, TimerConfig, TransactionError, TransactionEvent, TransactionKey, TransactionLayer,
    TransactionState,
};
use rsip::prelude::*;
use rsip::{Header, Method, Request, SipMessage};
use transaction_support::*;

const MS: Duration = Duration::from_millis(1);

fn new_request_key(layer: &mut TransactionLayer) -> TransactionKey {
    events(layer)
        .into_iter()
        .find_map(|e| match e {
            TransactionEvent::Request { key, .. } => Some(key),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no new request event"))
}

fn with_to_tag(mut request: Request, tag: &str) -> Request {
    request.headers.retain(|h| !matches!(h, Header::To(_)));
    request
        .headers
        .push(Header::To(rsip::headers::To::new(format!(
            "<sip:bob@127.0.0.1>;tag={tag}"
        ))));
    request
}

fn response_events(layer: &mut TransactionLayer) -> Vec<(TransactionKey, u16)> {
    events(layer)
        .into_iter()
        .filter_map(|e| match e {
            TransactionEvent::Response { key, response } => Some((key, status(&response))),
            _ => None,
        })
        .collect()
}

#[test]
fn responses_reach_the_right_one_of_concurrent_transactions() {
    let now = Instant::now();
    let mut client = TransactionLayer::new(TimerConfig::default());
    let first = request("OPTIONS", "z9hG4bKm1", 1, "c1");
    let second = request("OPTIONS", "z9hG4bKm2", 2, "c1");
    let invite = request("INVITE", "z9hG4bKm3", 1, "c3");
    let cancel = request("CANCEL", "z9hG4bKm3", 1, "c3");
    let k1 = client
        .send_request(now, first.clone(), udp(SERVER_ADDR))
        .unwrap_or_else(|e| panic!("{e}"));
    let k2 = client
        .send_request(now, second.clone(), udp(SERVER_ADDR))
        .unwrap_or_else(|e| panic!("{e}"));
    let ki = client
        .send_request(now, invite.clone(), udp(SERVER_ADDR))
        .unwrap_or_else(|e| panic!("{e}"));
    let kc = client
        .send_request(now, cancel.clone(), udp(SERVER_ADDR))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(client.len(), 4);
    assert_ne!(ki, kc, "CANCEL is its own transaction");
    assert_eq!(ki.branch(), kc.branch());
    assert_eq!(kc.method(), Method::Cancel);
    assert_eq!(k1.side(), Side::Client);

    client.handle_message(
        now,
        SipMessage::Response(response_to(&second, 404, "t")),
        udp(SERVER_ADDR),
    );
    client.handle_message(
        now,
        SipMessage::Response(response_to(&cancel, 200, "t")),
        udp(SERVER_ADDR),
    );
    client.handle_message(
        now,
        SipMessage::Response(response_to(&invite, 487, "t")),
        udp(SERVER_ADDR),
    );
    client.handle_message(
        now,
        SipMessage::Response(response_to(&first, 200, "t")),
        udp(SERVER_ADDR),
    );
    assert_eq!(
        response_events(&mut client),
        vec![
            (k2.clone(), 404),
            (kc.clone(), 200),
            (ki.clone(), 487),
            (k1.clone(), 200)
        ]
    );
    for key in [&k1, &k2, &kc, &ki] {
        assert_eq!(client.state(key), Some(TransactionState::Completed));
    }
}

#[test]
fn a_response_with_an_unknown_branch_is_stray() {
    let now = Instant::now();
    let mut client = TransactionLayer::new(TimerConfig::default());
    let sent = request("OPTIONS", "z9hG4bKs1", 1, "c1");
    client
        .send_request(now, sent, udp(SERVER_ADDR))
        .unwrap_or_else(|e| panic!("{e}"));
    let other = request("OPTIONS", "z9hG4bKnope", 1, "c1");
    client.handle_message(
        now,
        SipMessage::Response(response_to(&other, 200, "t")),
        udp(SERVER_ADDR),
    );
    // Same branch, wrong CSeq method: no match either.
    let wrong_method = request("INFO", "z9hG4bKs1", 1, "c1");
    client.handle_message(
        now,
        SipMessage::Response(response_to(&wrong_method, 200, "t")),
        udp(SERVER_ADDR),
    );
    let strays: Vec<_> = events(&mut client)
        .into_iter()
        .filter(|e| matches!(e, TransactionEvent::StrayResponse { source, .. } if *source == udp(SERVER_ADDR)))
        .collect();
    assert_eq!(strays.len(), 2);
    assert_eq!(client.len(), 1);
}

#[test]
fn retransmitted_requests_are_absorbed_and_answered_with_the_last_response() {
    let now = Instant::now();
    let mut server = TransactionLayer::new(TimerConfig::default());
    let register = request("REGISTER", "z9hG4bKr1", 1, "c1");
    server.handle_message(now, SipMessage::Request(register.clone()), udp(CLIENT_ADDR));
    let key = new_request_key(&mut server);
    assert_eq!(key.side(), Side::Server);
    // In Trying a retransmission is silently absorbed.
    server.handle_message(
        now + 500 * MS,
        SipMessage::Request(register.clone()),
        udp(CLIENT_ADDR),
    );
    assert!(events(&mut server).is_empty());
    assert!(transmits(&mut server).is_empty());
    server
        .respond(now, &key, response_to(&register, 100, "t"))
        .unwrap_or_else(|e| panic!("{e}"));
    let trying = transmits(&mut server);
    server.handle_message(
        now + 600 * MS,
        SipMessage::Request(register.clone()),
        udp(CLIENT_ADDR),
    );
    assert_eq!(transmits(&mut server), trying);
    server
        .respond(now, &key, response_to(&register, 200, "t"))
        .unwrap_or_else(|e| panic!("{e}"));
    let ok = transmits(&mut server);
    assert_eq!(status(&parse_response(&ok[0])), 200);
    for _ in 0..3 {
        server.handle_message(
            now + Duration::from_secs(2),
            SipMessage::Request(register.clone()),
            udp(CLIENT_ADDR),
        );
        assert_eq!(transmits(&mut server), ok);
    }
    assert!(
        events(&mut server).is_empty(),
        "retransmissions never reach the user"
    );
    assert_eq!(server.len(), 1);
    let late = server.respond(now, &key, response_to(&register, 500, "t"));
    assert!(matches!(
        late,
        Err(TransactionError::InvalidState { status: 500, .. })
    ));
}

#[test]
fn responses_go_to_received_and_rport() {
    let now = Instant::now();
    let mut server = TransactionLayer::new(TimerConfig::default());
    let mut options = request("OPTIONS", "z9hG4bKn1", 1, "c1");
    options.headers.retain(|h| !matches!(h, Header::Via(_)));
    options.headers.push(Header::Via(rsip::headers::Via::new(
        "SIP/2.0/UDP 10.0.0.7:5060;rport;branch=z9hG4bKn1",
    )));
    let nat = udp("127.0.0.1:40001");
    server.handle_message(now, SipMessage::Request(options), nat);
    let (key, delivered) = match events(&mut server).pop() {
        Some(TransactionEvent::Request { key, request, .. }) => (key, request),
        other => panic!("expected a request, got {other:?}"),
    };
    let via = delivered
        .via_header()
        .map(|v| v.value().to_owned())
        .unwrap_or_default();
    assert!(
        via.contains("rport=40001") && via.contains("received=127.0.0.1"),
        "{via}"
    );
    server
        .respond(now, &key, response_to(&delivered, 200, "t"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(transmits(&mut server)[0].target, nat);
}

#[test]
fn the_ack_for_a_non_2xx_is_built_and_absorbed() {
    let now = Instant::now();
    let mut client = TransactionLayer::new(TimerConfig::default());
    let mut server = TransactionLayer::new(TimerConfig::default());
    let mut invite = request("INVITE", "z9hG4bKack1", 5, "c1");
    invite.headers.push(Header::Route(rsip::headers::Route::new(
        "<sip:127.0.0.1:5070;lr>",
    )));
    client
        .send_request(now, invite, udp(SERVER_ADDR))
        .unwrap_or_else(|e| panic!("{e}"));
    let sent = transmits(&mut client);
    server.handle_message(now, parse(&sent[0].bytes), udp(CLIENT_ADDR));
    let (key, received) = match events(&mut server).pop() {
        Some(TransactionEvent::Request { key, request, .. }) => (key, request),
        other => panic!("expected a request, got {other:?}"),
    };
    server
        .respond(now, &key, response_to(&received, 486, "busy"))
        .unwrap_or_else(|e| panic!("{e}"));
    let busy = transmits(&mut server);
    client.handle_message(now, parse(&busy[0].bytes), udp(SERVER_ADDR));
    let ack_transmit = transmits(&mut client);
    assert_eq!(ack_transmit.len(), 1);
    let ack = parse_request(&ack_transmit[0]);
    let original = parse_request(&sent[0]);
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.uri, original.uri);
    assert_eq!(cseq_method(&ack), Method::Ack);
    assert_eq!(ack.cseq_header().and_then(|c| c.seq()).ok(), Some(5));
    assert_eq!(ack.via_header().ok(), original.via_header().ok());
    assert_eq!(ack.route_header(), original.route_header());
    assert_eq!(ack.from_header().ok(), original.from_header().ok());
    assert_eq!(ack.call_id_header().ok(), original.call_id_header().ok());
    assert_eq!(
        ack.to_header()
            .and_then(|t| t.tag())
            .ok()
            .flatten()
            .map(|t| t.to_string()),
        Some("busy".into())
    );

    server.handle_message(now, SipMessage::Request(ack), udp(CLIENT_ADDR));
    assert!(
        events(&mut server).is_empty(),
        "ACK for a non-2xx is absorbed"
    );
    assert_eq!(server.state(&key), Some(TransactionState::Confirmed));
}

#[test]
fn the_ack_for_a_2xx_and_late_2xx_retransmissions_are_stray() {
    let now = Instant::now();
    let mut client = TransactionLayer::new(TimerConfig::default());
    let mut server = TransactionLayer::new(TimerConfig::default());
    let invite = request("INVITE", "z9hG4bKok1", 1, "c1");
    client
        .send_request(now, invite.clone(), udp(SERVER_ADDR))
        .unwrap_or_else(|e| panic!("{e}"));
    server.handle_message(now, SipMessage::Request(invite.clone()), udp(CLIENT_ADDR));
    let key = new_request_key(&mut server);
    let ok = response_to(&invite, 200, "ok");
    server
        .respond(now, &key, ok.clone())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(server.len(), 0, "2xx ends the server INVITE transaction");
    assert!(events(&mut server).contains(&TransactionEvent::Terminated { key }));

    client.handle_message(now, SipMessage::Response(ok.clone()), udp(SERVER_ADDR));
    assert_eq!(client.len(), 0, "2xx ends the client INVITE transaction");
    assert!(
        transmits(&mut client).len() == 1,
        "only the INVITE; the 2xx ACK is the dialog's"
    );
    events(&mut client);
    client.handle_message(
        now + 500 * MS,
        SipMessage::Response(ok.clone()),
        udp(SERVER_ADDR),
    );
    assert_eq!(
        events(&mut client),
        vec![TransactionEvent::StrayResponse {
            response: ok,
            source: udp(SERVER_ADDR)
        }]
    );

    // The ACK for a 2xx has its own branch and reaches the dialog layer.
    let ack = with_to_tag(request("ACK", "z9hG4bKok1ack", 1, "c1"), "ok");
    server.handle_message(now, SipMessage::Request(ack.clone()), udp(CLIENT_ADDR));
    assert_eq!(
        events(&mut server),
        vec![TransactionEvent::StrayRequest {
            request: ack,
            source: udp(CLIENT_ADDR)
        }]
    );
    assert_eq!(server.len(), 0);
}

#[test]
fn branchless_rfc_2543_requests_match_by_their_fields() {
    let now = Instant::now();
    let mut server = TransactionLayer::new(TimerConfig::default());
    let strip_branch = |mut r: Request| {
        r.headers.retain(|h| !matches!(h, Header::Via(_)));
        r.headers.push(Header::Via(rsip::headers::Via::new(format!(
            "SIP/2.0/UDP {CLIENT_ADDR}"
        ))));
        r
    };
    let invite = strip_branch(request("INVITE", "x", 9, "legacy-call"));
    server.handle_message(now, SipMessage::Request(invite.clone()), udp(CLIENT_ADDR));
    let key = new_request_key(&mut server);
    assert_eq!(key.branch(), None);
    // A retransmission matches the same transaction.
    server.handle_message(now, SipMessage::Request(invite.clone()), udp(CLIENT_ADDR));
    assert!(events(&mut server).is_empty());
    assert_eq!(server.len(), 1);
    // Another CSeq is another transaction.
    let other = strip_branch(request("INVITE", "x", 10, "legacy-call"));
    server.handle_message(now, SipMessage::Request(other), udp(CLIENT_ADDR));
    let other_key = new_request_key(&mut server);
    assert_ne!(other_key, key);
    server
        .respond(now, &key, response_to(&invite, 480, "gone"))
        .unwrap_or_else(|e| panic!("{e}"));
    transmits(&mut server);
    // The ACK carries the To tag of our response and matches the INVITE transaction.
    let ack = with_to_tag(strip_branch(request("ACK", "x", 9, "legacy-call")), "gone");
    server.handle_message(now, SipMessage::Request(ack.clone()), udp(CLIENT_ADDR));
    assert!(events(&mut server).is_empty(), "legacy ACK absorbed");
    assert_eq!(server.state(&key), Some(TransactionState::Confirmed));
    // An ACK with a different To tag matches nothing.
    let foreign = with_to_tag(strip_branch(request("ACK", "x", 9, "legacy-call")), "else");
    server.handle_message(now, SipMessage::Request(foreign), udp(CLIENT_ADDR));
    assert!(matches!(
        events(&mut server).as_slice(),
        [TransactionEvent::StrayRequest { .. }]
    ));
}

#[test]
fn cancel_is_a_server_transaction_of_its_own() {
    let now = Instant::now();
    let mut server = TransactionLayer::new(TimerConfig::default());
    let invite = request("INVITE", "z9hG4bKc1", 1, "c1");
    server.handle_message(now, SipMessage::Request(invite), udp(CLIENT_ADDR));
    let invite_key = new_request_key(&mut server);
    let cancel = request("CANCEL", "z9hG4bKc1", 1, "c1");
    server.handle_message(now, SipMessage::Request(cancel), udp(CLIENT_ADDR));
    let cancel_key = new_request_key(&mut server);
    assert_ne!(cancel_key, invite_key);
    assert_eq!(cancel_key.with_method(Method::Invite), invite_key);
    assert_eq!(server.len(), 2);
}

#[test]
fn bad_requests_are_refused_or_dropped_without_panic() {
    let now = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let old = request("OPTIONS", "1234", 1, "c1");
    assert!(matches!(
        layer.send_request(now, old, udp(SERVER_ADDR)),
        Err(TransactionError::BadBranch { .. })
    ));
    let ack = request("ACK", "z9hG4bKa", 1, "c1");
    assert!(matches!(
        layer.send_request(now, ack, udp(SERVER_ADDR)),
        Err(TransactionError::InvalidMethod { .. })
    ));
    let twice = request("OPTIONS", "z9hG4bKdup", 1, "c1");
    assert!(layer
        .send_request(now, twice.clone(), udp(SERVER_ADDR))
        .is_ok());
    assert!(matches!(
        layer.send_request(now, twice.clone(), udp(SERVER_ADDR)),
        Err(TransactionError::Duplicate { .. })
    ));
    let key = layer.send_request(now, request("INFO", "z9hG4bKx", 1, "c1"), udp(SERVER_ADDR));
    let key = key.unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        layer.respond(now, &key, response_to(&twice, 200, "t")),
        Err(TransactionError::NotServer { .. })
    ));
    let mut no_via = request("OPTIONS", "z9hG4bKv", 1, "c1");
    no_via.headers.retain(|h| !matches!(h, Header::Via(_)));
    layer.handle_message(now, SipMessage::Request(no_via), udp(CLIENT_ADDR));
    assert!(events(&mut layer).is_empty());
    assert_eq!(layer.len(), 2);
    layer.handle_transport_error(now, &key);
    assert_eq!(
        events(&mut layer),
        vec![
            TransactionEvent::TransportError { key: key.clone() },
            TransactionEvent::Terminated { key }
        ]
    );
}
