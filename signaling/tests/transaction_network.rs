//! A client and a server transaction layer talking over a lossy, reordering simulated network.

mod transaction_support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use callisto_signaling::sim::{NetworkConfig, SimClock, SimNetwork};
use callisto_signaling::transaction::{
    new_branch, TimerConfig, TransactionEvent, TransactionKey, TransactionLayer,
};
use callisto_signaling::transport::Target;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use rsip::Method;
use transaction_support::*;

#[derive(Debug, Default)]
struct Outcome {
    finals: HashMap<TransactionKey, u16>,
    client_timeouts: usize,
    server_timeouts: usize,
    strays: usize,
    requests_seen: usize,
}

fn flush(layer: &mut TransactionLayer, net: &mut SimNetwork, now: Instant, from: Target) {
    while let Some(transmit) = layer.poll_transmit() {
        net.send(now, from, transmit.target, transmit.bytes);
    }
}

fn run(seed: u64, transactions: usize, network: NetworkConfig) -> (Outcome, SimNetwork) {
    let start = Instant::now();
    let mut clock = SimClock::new(start);
    let mut net = SimNetwork::new(network, seed);
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed);
    let client_at = udp(CLIENT_ADDR);
    let server_at = udp(SERVER_ADDR);
    let mut client = TransactionLayer::new(TimerConfig::default());
    let mut server = TransactionLayer::new(TimerConfig::default());
    let mut outcome = Outcome::default();
    let mut started = 0usize;
    let spacing = Duration::from_millis(10);
    let deadline = start + Duration::from_secs(600);

    while clock.now() < deadline {
        let now = clock.now();
        // Start new transactions on schedule: every third is an INVITE that gets rejected.
        while started < transactions && start + spacing * started as u32 <= now {
            let method = if started.is_multiple_of(3) {
                "INVITE"
            } else {
                "REGISTER"
            };
            let branch = new_branch(&mut rng);
            let request = request(
                method,
                &branch,
                started as u32 + 1,
                &format!("call-{started}"),
            );
            match client.send_request(now, request, server_at) {
                Ok(_) => started += 1,
                Err(error) => panic!("send_request failed: {error}"),
            }
        }
        while let Some(datagram) = net.poll_deliver(now) {
            let message = parse(&datagram.bytes);
            if datagram.to == server_at {
                server.handle_message(now, message, datagram.from);
            } else {
                client.handle_message(now, message, datagram.from);
            }
        }
        client.handle_timeout(now);
        server.handle_timeout(now);
        while let Some(event) = server.poll_event() {
            match event {
                TransactionEvent::Request { key, request, .. } => {
                    outcome.requests_seen += 1;
                    let code = if request.method == Method::Invite {
                        486
                    } else {
                        200
                    };
                    if request.method == Method::Invite {
                        let ringing = response_to(&request, 180, "uas");
                        server
                            .respond(now, &key, ringing)
                            .unwrap_or_else(|e| panic!("{e}"));
                    }
                    server
                        .respond(now, &key, response_to(&request, code, "uas"))
                        .unwrap_or_else(|e| panic!("{e}"));
                }
                TransactionEvent::Timeout { .. } => outcome.server_timeouts += 1,
                TransactionEvent::StrayRequest { .. } => outcome.strays += 1,
                _ => {}
            }
        }
        while let Some(event) = client.poll_event() {
            match event {
                TransactionEvent::Response { key, response } if status(&response) >= 200 => {
                    let previous = outcome.finals.insert(key, status(&response));
                    assert!(previous.is_none(), "a final response was reported twice");
                }
                TransactionEvent::Timeout { .. } => outcome.client_timeouts += 1,
                TransactionEvent::StrayResponse { .. } => outcome.strays += 1,
                _ => {}
            }
        }
        flush(&mut client, &mut net, now, client_at);
        flush(&mut server, &mut net, now, server_at);

        if started == transactions && client.is_empty() && server.is_empty() && net.in_flight() == 0
        {
            break;
        }
        let next_start = (started < transactions).then(|| start + spacing * started as u32);
        let next = [
            client.poll_timeout(),
            server.poll_timeout(),
            net.next_delivery(),
            next_start,
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            Some(next) => clock.advance_to(next.max(now)),
            None => break,
        }
        if clock.now() == now && next.is_some_and(|n| n <= now) {
            // Everything due at `now` was handled above; nothing can be due again.
            clock.advance(Duration::from_micros(1));
        }
    }
    assert!(
        client.is_empty() && server.is_empty(),
        "transactions left behind"
    );
    (outcome, net)
}

/// At 30 % loss each way, a transaction can legitimately run out of retransmissions before
/// 64 × T1 (the odds are about 1e-3 per transaction; roughly one seed in eight sees a single
/// Timer F or H among 200). The seed is fixed, so this run is exact and repeatable: with it,
/// every transaction must complete, no retransmission may leak to the user, and both layers
/// must end empty.
#[test]
fn two_hundred_transactions_complete_over_30_percent_loss() {
    let (outcome, net) = run(2024, 200, NetworkConfig::lossy(0.3));
    let stats = net.stats();
    assert!(stats.dropped > 100, "the network was not lossy: {stats:?}");
    assert!(stats.reordered > 10 && stats.duplicated > 5, "{stats:?}");
    assert_eq!(outcome.client_timeouts, 0);
    assert_eq!(outcome.server_timeouts, 0, "an ACK never arrived");
    assert_eq!(
        outcome.requests_seen, 200,
        "a retransmission leaked to the user"
    );
    assert_eq!(outcome.finals.len(), 200);
    let rejected = outcome.finals.values().filter(|code| **code == 486).count();
    assert_eq!(rejected, 67);
    assert!(outcome
        .finals
        .values()
        .all(|code| *code == 200 || *code == 486));
}

#[test]
fn a_perfect_network_needs_no_retransmissions() {
    let (outcome, net) = run(1, 50, NetworkConfig::perfect());
    assert_eq!(outcome.finals.len(), 50);
    assert_eq!(outcome.strays, 0);
    // One request and one final per transaction, plus 180 and ACK for each of 17 INVITEs.
    assert_eq!(net.stats().sent, 50 * 2 + 17 * 2);
}
