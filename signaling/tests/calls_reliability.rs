//! The end-to-end reliability of INVITE sessions: the 2xx retransmitted until its ACK (and
//! each retransmission ACKed again), a call without ACK ended with BYE, and whole calls over a
//! lossy network that drops, duplicates and reorders.

mod call_support;

use std::time::Duration;

use call_support::{sdp, World};
use callisto_signaling::call::CallEvent;
use callisto_signaling::sim::NetworkConfig;

const OFFER: &str = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\n";
const ANSWER: &str = "v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\n";

/// Alice calls bob; bob answers at once. Returns (alice's call, bob's call).
fn call_and_answer(
    w: &mut World,
) -> (
    callisto_signaling::call::CallId,
    callisto_signaling::call::CallId,
) {
    let now = w.now();
    let config = w.uas[0].call_config("sip:bob@127.0.0.1:5062", w.uas[1].addr, OFFER);
    let alice_call = w.uas[0].endpoint.start_call(now, config);
    assert!(w.run_until(Duration::from_secs(40), |w| w.uas[1].incoming(0).is_some()));
    let bob_call = w.uas[1].incoming(0).unwrap();
    let now = w.now();
    w.uas[1]
        .endpoint
        .answer(now, bob_call, Some(sdp(ANSWER)))
        .unwrap();
    (alice_call, bob_call)
}

#[test]
fn the_2xx_is_retransmitted_until_the_ack_and_every_copy_is_acked() {
    let mut w = World::lan(3);
    w.add_ua("alice", 5061);
    w.add_ua("bob", 5062);
    // The first two ACKs are lost.
    let mut acks = 0;
    w.drop_rule = Some(Box::new(move |s| {
        if s.is_request("ACK") {
            acks += 1;
            acks <= 2
        } else {
            false
        }
    }));
    let (alice_call, bob_call) = call_and_answer(&mut w);
    assert!(w.run_until(Duration::from_secs(5), |w| w.uas[1]
        .is_established(bob_call)));
    assert!(w.uas[0].is_established(alice_call));
    let oks: Vec<_> = w
        .log
        .iter()
        .filter(|s| s.is_response(200, "INVITE"))
        .map(|s| s.at)
        .collect();
    assert_eq!(oks.len(), 3, "the first 200 and two retransmissions");
    // Retransmitted after T1, then 2 × T1.
    assert_eq!(oks[1] - oks[0], Duration::from_millis(500));
    assert_eq!(oks[2] - oks[1], Duration::from_millis(1000));
    assert_eq!(w.count(|s| s.is_request("ACK")), 3, "one ACK per 2xx");
    // Alice reported the answer once, however many 2xx came.
    assert_eq!(
        w.uas[0]
            .events_of(alice_call)
            .iter()
            .filter(|e| matches!(e, CallEvent::Answered { .. }))
            .count(),
        1
    );
    w.run_for(Duration::from_secs(10));
    assert_eq!(
        w.count(|s| s.is_response(200, "INVITE")),
        3,
        "no more after the ACK"
    );
}

#[test]
fn without_an_ack_the_callee_gives_up_after_64_t1_and_sends_bye() {
    let mut w = World::lan(4);
    w.add_ua("alice", 5061);
    w.add_ua("bob", 5062);
    w.drop_rule = Some(Box::new(|s| s.is_request("ACK")));
    let (alice_call, bob_call) = call_and_answer(&mut w);
    let answered_at = w.now();
    assert!(w.run_until(Duration::from_secs(40), |w| w.uas[1].is_over(bob_call)));
    let gave_up = w.now() - answered_at;
    assert!(
        gave_up >= Duration::from_secs(32) && gave_up < Duration::from_secs(33),
        "{gave_up:?}"
    );
    assert_eq!(
        w.uas[1].events_of(bob_call).last(),
        Some(&CallEvent::Ended {
            by_remote: true,
            reason: "no ACK came for our answer".into()
        })
    );
    assert!(!w.uas[1].is_established(bob_call));
    let oks: Vec<_> = w
        .log
        .iter()
        .filter(|s| s.is_response(200, "INVITE"))
        .map(|s| s.at)
        .collect();
    // 0, 0.5, 1.5, 3.5, 7.5, then every T2 = 4 s up to 31.5 s.
    assert_eq!(oks.len(), 11, "{oks:?}");
    assert!(oks
        .windows(2)
        .all(|p| p[1] - p[0] <= Duration::from_secs(4)));
    // Alice took each 2xx as answered and gets the BYE.
    assert!(w.run_until(Duration::from_secs(2), |w| w.uas[0].is_over(alice_call)));
    assert!(w.uas[0].has(alice_call, |e| matches!(
        e,
        CallEvent::Ended {
            by_remote: true,
            ..
        }
    )));
}

#[test]
fn whole_calls_survive_loss_duplication_and_reordering() {
    let mut dropped = 0;
    let mut duplicated = 0;
    for seed in 1..=40 {
        let mut w = World::new(NetworkConfig::lossy(0.3), seed);
        w.add_ua("alice", 5061);
        w.add_ua("bob", 5062);
        let now = w.now();
        let config = w.uas[0].call_config("sip:bob@127.0.0.1:5062", w.uas[1].addr, OFFER);
        let alice_call = w.uas[0].endpoint.start_call(now, config);
        assert!(
            w.run_until(Duration::from_secs(30), |w| w.uas[1].incoming(0).is_some()),
            "seed {seed}: no INVITE"
        );
        let bob_call = w.uas[1].incoming(0).unwrap();
        let now = w.now();
        w.uas[1].endpoint.ring(now, bob_call).unwrap();
        w.run_for(Duration::from_millis(300));
        let now = w.now();
        w.uas[1]
            .endpoint
            .answer(now, bob_call, Some(sdp(ANSWER)))
            .unwrap();
        assert!(
            w.run_until(Duration::from_secs(32), |w| w.uas[0]
                .is_established(alice_call)
                && w.uas[1].is_established(bob_call)),
            "seed {seed}: not established: {:?} / {:?}",
            w.uas[0].events_of(alice_call),
            w.uas[1].events_of(bob_call)
        );
        // Hold: a re-INVITE with a new offer, answered.
        let now = w.now();
        w.uas[0]
            .endpoint
            .reinvite(now, alice_call, sdp("hold"))
            .unwrap();
        assert!(
            w.run_until(Duration::from_secs(32), |w| w.uas[1]
                .has(bob_call, |e| matches!(e, CallEvent::ReOffer { .. }))),
            "seed {seed}: no re-offer"
        );
        let now = w.now();
        w.uas[1]
            .endpoint
            .answer_reoffer(now, bob_call, Some(sdp("held")))
            .unwrap();
        assert!(
            w.run_until(Duration::from_secs(32), |w| w.uas[0]
                .has(alice_call, |e| matches!(e, CallEvent::ReAnswer { .. }))),
            "seed {seed}: no re-answer"
        );
        let now = w.now();
        w.uas[1].endpoint.hang_up(now, bob_call).unwrap();
        assert!(
            w.run_until(Duration::from_secs(40), |w| w.uas[0].is_over(alice_call)),
            "seed {seed}: BYE never arrived"
        );
        for (ua, id) in [(&w.uas[0], alice_call), (&w.uas[1], bob_call)] {
            let ends = ua
                .events_of(id)
                .iter()
                .filter(|e| matches!(e, CallEvent::Ended { .. } | CallEvent::Failed { .. }))
                .count();
            assert_eq!(ends, 1, "seed {seed}: {:?}", ua.events_of(id));
            assert_eq!(
                ua.events_of(id)
                    .iter()
                    .filter(|e| matches!(e, CallEvent::Established { .. }))
                    .count(),
                1,
                "seed {seed}"
            );
        }
        w.run_for(Duration::from_secs(70));
        assert_eq!(w.uas[0].endpoint.calls().count(), 0, "seed {seed}");
        assert_eq!(w.uas[1].endpoint.calls().count(), 0, "seed {seed}");
        dropped += w.net.stats().dropped;
        duplicated += w.net.stats().duplicated;
    }
    assert!(dropped > 100, "the network did lose packets: {dropped}");
    assert!(duplicated > 0);
}
