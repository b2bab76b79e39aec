//! RFC 3261 §17 timers: retransmission schedules, timeouts and clean-up.

mod transaction_support;

use std::time::{Duration, Instant};

use callisto_signaling::transaction::{
    TimerConfig, TransactionEvent, TransactionLayer, TransactionState,
};
use rsip::prelude::*;
use rsip::SipMessage;
use transaction_support::*;

const MS: Duration = Duration::from_millis(1);

/// Runs the layer's timers until `until`, recording when each transmit happened.
fn run_timers(layer: &mut TransactionLayer, start: Instant, until: Instant) -> Vec<Duration> {
    let mut sent = Vec::new();
    while let Some(deadline) = layer.poll_timeout() {
        if deadline > until {
            break;
        }
        layer.handle_timeout(deadline);
        for _ in transmits(layer) {
            sent.push(deadline - start);
        }
    }
    sent
}

fn ms(values: &[u64]) -> Vec<Duration> {
    values.iter().map(|v| Duration::from_millis(*v)).collect()
}

#[test]
fn timer_a_doubles_without_a_cap_and_timer_b_fires_at_64_t1() {
    let start = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let key = layer
        .send_request(
            start,
            request("INVITE", "z9hG4bKa1", 1, "c1"),
            udp(SERVER_ADDR),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(transmits(&mut layer).len(), 1);
    assert_eq!(layer.state(&key), Some(TransactionState::Calling));
    let sent = run_timers(&mut layer, start, start + Duration::from_secs(31));
    // Retransmissions at 0.5, 1.5, 3.5, 7.5, 15.5 and 31.5 s: intervals 500, 1000, 2000, 4000,
    // 8000, 16000 ms — doubling past T2 for INVITE.
    assert_eq!(sent, ms(&[500, 1500, 3500, 7500, 15500]));
    assert!(events(&mut layer).is_empty());
    assert_eq!(layer.poll_timeout(), Some(start + 31500 * MS));
    layer.handle_timeout(start + 31500 * MS);
    assert_eq!(transmits(&mut layer).len(), 1);
    // Timer B: exactly 64 * T1.
    assert_eq!(layer.poll_timeout(), Some(start + Duration::from_secs(32)));
    layer.handle_timeout(start + Duration::from_secs(32) - MS);
    assert!(events(&mut layer).is_empty());
    layer.handle_timeout(start + Duration::from_secs(32));
    assert_eq!(
        events(&mut layer),
        vec![
            TransactionEvent::Timeout { key: key.clone() },
            TransactionEvent::Terminated { key }
        ]
    );
    assert_eq!(layer.len(), 0);
    assert_eq!(layer.poll_timeout(), None);
}

/// An OPTIONS over UDP under `config` that nobody answers: checks that Timer F ends it at
/// 64·T1 and not before, and returns the layer, the start, and when each retransmission went.
fn unanswered_options(config: TimerConfig) -> (TransactionLayer, Instant, Vec<Duration>) {
    let start = Instant::now();
    let timeout = start + config.t1 * 64;
    let mut layer = TransactionLayer::new(config);
    let key = layer
        .send_request(
            start,
            request("OPTIONS", "z9hG4bKe1", 1, "c1"),
            udp(SERVER_ADDR),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    transmits(&mut layer);
    let sent = run_timers(&mut layer, start, timeout - MS);
    assert!(events(&mut layer).is_empty(), "no timeout before 64·T1");
    assert_eq!(layer.poll_timeout(), Some(timeout));
    layer.handle_timeout(timeout);
    assert_eq!(
        events(&mut layer),
        vec![
            TransactionEvent::Timeout { key: key.clone() },
            TransactionEvent::Terminated { key }
        ]
    );
    assert!(layer.is_empty());
    (layer, start, sent)
}

#[test]
fn timer_e_is_capped_at_t2_and_timer_f_fires_at_64_t1() {
    let (_, _, sent) = unanswered_options(TimerConfig::default());
    // 500, 1000, 2000, 4000, then every 4000 ms (T2).
    assert_eq!(
        sent,
        ms(&[500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500])
    );
}

#[test]
fn configured_t1_t2_and_t4_set_the_timers() {
    let (mut layer, start, sent) = unanswered_options(TimerConfig {
        t1: 100 * MS,
        t2: 400 * MS,
        t4: Duration::from_secs(1),
    });
    // Timer E: T1, 2·T1, then every T2; Timer F: 64·T1.
    let expected: Vec<u64> = [100, 300]
        .into_iter()
        .chain((700..6_400).step_by(400))
        .collect();
    assert_eq!(sent, ms(&expected));
    // Timer K: a completed transaction is kept for T4, then ends.
    let now = start + 6_400 * MS;
    let options = request("OPTIONS", "z9hG4bKc2", 2, "c1");
    let key = layer
        .send_request(now, options.clone(), udp(SERVER_ADDR))
        .unwrap_or_else(|e| panic!("{e}"));
    transmits(&mut layer);
    layer.handle_message(
        now,
        SipMessage::Response(response_to(&options, 200, "t")),
        udp(SERVER_ADDR),
    );
    events(&mut layer);
    assert_eq!(layer.poll_timeout(), Some(now + Duration::from_secs(1)));
    layer.handle_timeout(now + Duration::from_secs(1) - MS);
    assert_eq!(layer.len(), 1, "kept until T4");
    layer.handle_timeout(now + Duration::from_secs(1));
    assert_eq!(
        events(&mut layer),
        vec![TransactionEvent::Terminated { key }]
    );
    assert!(layer.is_empty());
}

#[test]
fn timer_e_uses_t2_once_proceeding() {
    let start = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let options = request("OPTIONS", "z9hG4bKe2", 1, "c1");
    layer
        .send_request(start, options.clone(), udp(SERVER_ADDR))
        .unwrap_or_else(|e| panic!("{e}"));
    transmits(&mut layer);
    layer.handle_message(
        start + 100 * MS,
        SipMessage::Response(response_to(&options, 180, "t")),
        udp(SERVER_ADDR),
    );
    let sent = run_timers(&mut layer, start, start + Duration::from_secs(9));
    // The E interval after 500 ms would have been 1000 ms; in Proceeding it is T2.
    assert_eq!(sent, ms(&[500, 4500, 8500]));
}

#[test]
fn reliable_transports_never_retransmit_and_still_time_out() {
    let start = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let invite = layer
        .send_request(
            start,
            request("INVITE", "z9hG4bKt1", 1, "c1"),
            tcp(SERVER_ADDR),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let register = layer
        .send_request(
            start,
            request("REGISTER", "z9hG4bKt2", 1, "c2"),
            tcp(SERVER_ADDR),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(transmits(&mut layer).len(), 2);
    let sent = run_timers(&mut layer, start, start + Duration::from_secs(40));
    assert!(sent.is_empty(), "retransmitted on TCP: {sent:?}");
    let timeouts: Vec<_> = events(&mut layer)
        .into_iter()
        .filter(|e| matches!(e, TransactionEvent::Timeout { .. }))
        .collect();
    assert_eq!(
        timeouts,
        vec![
            TransactionEvent::Timeout { key: invite },
            TransactionEvent::Timeout { key: register }
        ]
    );
    assert!(layer.is_empty());
}

#[test]
fn websocket_transactions_never_retransmit_and_still_time_out() {
    use callisto_signaling::transport::{Target, TransportKind};
    let start = Instant::now();
    let mut layer = TransactionLayer::new(TimerConfig::default());
    let mut keys = Vec::new();
    for (index, kind) in [TransportKind::Ws, TransportKind::Wss]
        .into_iter()
        .enumerate()
    {
        let target = Target::new(kind, addr(SERVER_ADDR));
        for method in ["INVITE", "REGISTER"] {
            let branch = format!("z9hG4bKw{index}{method}");
            let call_id = format!("w{index}{method}");
            let key = layer
                .send_request(start, request(method, &branch, 1, &call_id), target)
                .unwrap_or_else(|e| panic!("{e}"));
            keys.push(key);
        }
    }
    assert_eq!(transmits(&mut layer).len(), 4);
    let sent = run_timers(&mut layer, start, start + Duration::from_secs(40));
    assert!(sent.is_empty(), "retransmitted on WebSocket: {sent:?}");
    let timeouts = events(&mut layer)
        .into_iter()
        .filter(|e| matches!(e, TransactionEvent::Timeout { .. }))
        .count();
    assert_eq!(timeouts, keys.len(), "Timers B and F still fire");
    assert!(layer.is_empty());
}

#[test]
fn reliable_transports_end_completed_transactions_at_once() {
    let start = Instant::now();
    let mut client = TransactionLayer::new(TimerConfig::default());
    let mut server = TransactionLayer::new(TimerConfig::default());
    let options = request("OPTIONS", "z9hG4bKt3", 1, "c1");
    client
        .send_request(start, options.clone(), tcp(SERVER_ADDR))
        .unwrap_or_else(|e| panic!("{e}"));
    server.handle_message(
        start,
        SipMessage::Request(options.clone()),
        tcp(CLIENT_ADDR),
    );
    let key = match events(&mut server).pop() {
        Some(TransactionEvent::Request { key, .. }) => key,
        other => panic!("expected a request, got {other:?}"),
    };
    server
        .respond(start, &key, response_to(&options, 200, "t"))
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = transmits(&mut server);
    assert_eq!(answer.len(), 1);
    assert_eq!(
        answer[0].target,
        tcp(CLIENT_ADDR),
        "TCP answers on the connection"
    );
    assert!(server.is_empty(), "Timer J is zero on TCP");
    client.handle_message(start, parse(&answer[0].bytes), tcp(SERVER_ADDR));
    assert!(client.is_empty(), "Timer K is zero on TCP");
    assert_eq!(client.poll_timeout(), None);
}

#[test]
fn timer_k_and_timer_j_clean_up_after_t4_and_64_t1() {
    let start = Instant::now();
    let mut client = TransactionLayer::new(TimerConfig::default());
    let mut server = TransactionLayer::new(TimerConfig::default());
    let register = request("REGISTER", "z9hG4bKk1", 1, "c1");
    client
        .send_request(start, register.clone(), udp(SERVER_ADDR))
        .unwrap_or_else(|e| panic!("{e}"));
    server.handle_message(
        start,
        SipMessage::Request(register.clone()),
        udp(CLIENT_ADDR),
    );
    let key = match events(&mut server).pop() {
        Some(TransactionEvent::Request { key, .. }) => key,
        other => panic!("expected a request, got {other:?}"),
    };
    server
        .respond(start, &key, response_to(&register, 200, "t"))
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = transmits(&mut server);
    client.handle_message(start, parse(&answer[0].bytes), udp(SERVER_ADDR));
    assert_eq!(client.len(), 1);
    assert_eq!(server.state(&key), Some(TransactionState::Completed));
    // Timer K = T4.
    assert_eq!(client.poll_timeout(), Some(start + Duration::from_secs(5)));
    client.handle_timeout(start + Duration::from_secs(5));
    assert_eq!(client.len(), 0);
    // Timer J = 64 * T1.
    assert_eq!(server.poll_timeout(), Some(start + Duration::from_secs(32)));
    server.handle_timeout(start + Duration::from_secs(32));
    assert_eq!(server.len(), 0);
    assert!(matches!(
        events(&mut server).as_slice(),
        [TransactionEvent::Terminated { .. }]
    ));
}

#[test]
fn server_invite_sends_100_trying_after_200_ms_unless_answered() {
    let start = Instant::now();
    let mut server = TransactionLayer::new(TimerConfig::default());
    let invite = request("INVITE", "z9hG4bKi1", 1, "c1");
    server.handle_message(start, SipMessage::Request(invite.clone()), udp(CLIENT_ADDR));
    assert_eq!(server.poll_timeout(), Some(start + 200 * MS));
    server.handle_timeout(start + 199 * MS);
    assert!(transmits(&mut server).is_empty());
    server.handle_timeout(start + 200 * MS);
    let sent = transmits(&mut server);
    assert_eq!(sent.len(), 1);
    let trying = parse_response(&sent[0]);
    assert_eq!(status(&trying), 100);
    assert_eq!(sent[0].target, udp(CLIENT_ADDR));
    // A retransmitted INVITE is answered with the 100.
    server.handle_message(
        start + 300 * MS,
        SipMessage::Request(invite),
        udp(CLIENT_ADDR),
    );
    let again = transmits(&mut server);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].bytes, sent[0].bytes);

    events(&mut server);
    // Answered within 200 ms: no automatic 100.
    let second = request("INVITE", "z9hG4bKi2", 1, "c2");
    server.handle_message(start, SipMessage::Request(second.clone()), udp(CLIENT_ADDR));
    let key = events(&mut server)
        .into_iter()
        .find_map(|e| match e {
            TransactionEvent::Request { key, .. } => Some(key),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no request event"));
    server
        .respond(start + 50 * MS, &key, response_to(&second, 180, "t"))
        .unwrap_or_else(|e| panic!("{e}"));
    transmits(&mut server);
    server.handle_timeout(start + 400 * MS);
    assert!(transmits(&mut server).is_empty());
}

#[test]
fn timers_g_h_and_i_for_a_rejected_invite() {
    let start = Instant::now();
    let mut server = TransactionLayer::new(TimerConfig::default());
    let invite = request("INVITE", "z9hG4bKg1", 1, "c1");
    server.handle_message(start, SipMessage::Request(invite.clone()), udp(CLIENT_ADDR));
    let key = events(&mut server)
        .into_iter()
        .find_map(|e| match e {
            TransactionEvent::Request { key, .. } => Some(key),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no request event"));
    server
        .respond(start, &key, response_to(&invite, 486, "t"))
        .unwrap_or_else(|e| panic!("{e}"));
    transmits(&mut server);
    // Timer G: 500, 1000, 2000, 4000, 4000 … (capped at T2) until H at 32 s.
    let sent = run_timers(&mut server, start, start + Duration::from_secs(32) - MS);
    assert_eq!(
        sent,
        ms(&[500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500])
    );
    server.handle_timeout(start + Duration::from_secs(32));
    assert_eq!(
        events(&mut server),
        vec![
            TransactionEvent::Timeout { key: key.clone() },
            TransactionEvent::Terminated { key }
        ]
    );

    // With the ACK: Confirmed, then Timer I (T4) ends it.
    let invite = request("INVITE", "z9hG4bKg2", 1, "c2");
    server.handle_message(start, SipMessage::Request(invite.clone()), udp(CLIENT_ADDR));
    let key = events(&mut server)
        .into_iter()
        .find_map(|e| match e {
            TransactionEvent::Request { key, .. } => Some(key),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no request event"));
    let rejection = response_to(&invite, 603, "t");
    server
        .respond(start, &key, rejection)
        .unwrap_or_else(|e| panic!("{e}"));
    transmits(&mut server);
    let mut ack = request("ACK", "z9hG4bKg2", 1, "c2");
    ack.headers.retain(|h| !matches!(h, rsip::Header::To(_)));
    ack.headers.push(rsip::Header::To(rsip::headers::To::new(
        "<sip:bob@127.0.0.1>;tag=t",
    )));
    server.handle_message(start + 600 * MS, SipMessage::Request(ack), udp(CLIENT_ADDR));
    assert_eq!(server.state(&key), Some(TransactionState::Confirmed));
    assert!(events(&mut server).is_empty(), "the ACK is absorbed");
    assert_eq!(server.poll_timeout(), Some(start + 5600 * MS));
    server.handle_timeout(start + 5600 * MS);
    assert!(transmits(&mut server).is_empty());
    assert_eq!(server.len(), 0);
}

#[test]
fn timer_d_keeps_a_rejected_client_invite_for_32_s() {
    let start = Instant::now();
    let mut client = TransactionLayer::new(TimerConfig::default());
    let invite = request("INVITE", "z9hG4bKd1", 1, "c1");
    client
        .send_request(start, invite.clone(), udp(SERVER_ADDR))
        .unwrap_or_else(|e| panic!("{e}"));
    transmits(&mut client);
    let busy = response_to(&invite, 486, "t");
    client.handle_message(
        start + 100 * MS,
        SipMessage::Response(busy.clone()),
        udp(SERVER_ADDR),
    );
    let ack = transmits(&mut client);
    assert_eq!(ack.len(), 1);
    assert_eq!(parse_request(&ack[0]).method, rsip::Method::Ack);
    // A retransmitted 486 gets the ACK again and is not reported twice.
    events(&mut client);
    client.handle_message(
        start + 1000 * MS,
        SipMessage::Response(busy),
        udp(SERVER_ADDR),
    );
    assert_eq!(transmits(&mut client), ack);
    assert!(events(&mut client).is_empty());
    assert_eq!(client.poll_timeout(), Some(start + 32100 * MS));
    client.handle_timeout(start + 32100 * MS);
    assert!(client.is_empty());
}
