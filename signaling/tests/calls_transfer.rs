//! Blind transfer with REFER (RFC 3515): bob, talking to alice, transfers her to carol.

mod call_support;

use std::time::Duration;

use call_support::{sdp, World};
use callisto_signaling::call::{CallError, CallEvent, CallId};

const OFFER: &str = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\n";
const ANSWER: &str = "v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\n";

fn three_party() -> World {
    let mut w = World::lan(51);
    w.add_ua("alice", 5061);
    w.add_ua("bob", 5062);
    w.add_ua("carol", 5063);
    w
}

/// `from` calls `to`, which answers; returns both ends.
fn connect(w: &mut World, from: usize, to: usize, nth_incoming: usize) -> (CallId, CallId) {
    let now = w.now();
    let target = w.uas[to].addr;
    let uri = format!("sip:{}@{}", w.uas[to].name, target.addr);
    let config = w.uas[from].call_config(&uri, target, OFFER);
    let caller = w.uas[from].endpoint.start_call(now, config);
    assert!(w.run_until(Duration::from_secs(2), |w| w.uas[to]
        .incoming(nth_incoming)
        .is_some()));
    let callee = w.uas[to].incoming(nth_incoming).unwrap();
    (caller, callee)
}

fn progress(w: &World, ua: usize, id: CallId) -> Vec<(u16, bool)> {
    w.uas[ua]
        .events_of(id)
        .into_iter()
        .filter_map(|e| match e {
            CallEvent::TransferProgress { code, finished, .. } => Some((code, finished)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_blind_transfer_reports_progress_until_the_new_call_is_answered() {
    let mut w = three_party();
    let (alice_bob, bob_alice) = connect(&mut w, 0, 1, 0);
    let now = w.now();
    w.uas[1]
        .endpoint
        .answer(now, bob_alice, Some(sdp(ANSWER)))
        .unwrap();
    assert!(w.run_until(Duration::from_secs(2), |w| w.uas[0]
        .is_established(alice_bob)));
    // Alice has no transfer to report on yet.
    let now = w.now();
    assert_eq!(
        w.uas[0]
            .endpoint
            .transfer_progress(now, alice_bob, 180, "Ringing"),
        Err(CallError::NoTransfer)
    );

    // Bob transfers alice to carol.
    let now = w.now();
    w.uas[1]
        .endpoint
        .transfer(now, bob_alice, "sip:carol@127.0.0.1:5063")
        .unwrap();
    assert_eq!(
        w.uas[1]
            .endpoint
            .transfer(now, bob_alice, "sip:carol@127.0.0.1:5063"),
        Err(CallError::TransferInProgress)
    );
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[0].has(
        alice_bob,
        |e| matches!(e, CallEvent::TransferRequested { .. })
    )));
    assert!(w.uas[0].has(alice_bob, |e| *e
        == CallEvent::TransferRequested {
            target: "sip:carol@127.0.0.1:5063".into(),
            referred_by: Some("sip:bob@127.0.0.1:5062".into()),
        }));
    assert!(
        w.run_until(Duration::from_secs(1), |w| progress(w, 1, bob_alice).len()
            == 2)
    );
    assert_eq!(progress(&w, 1, bob_alice), vec![(202, false), (100, false)]);

    // Alice's application calls carol and reports what happens.
    let (alice_carol, carol_alice) = connect(&mut w, 0, 2, 0);
    let now = w.now();
    w.uas[2].endpoint.ring(now, carol_alice).unwrap();
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[0]
        .has(alice_carol, |e| matches!(e, CallEvent::Ringing { .. }))));
    let now = w.now();
    w.uas[0]
        .endpoint
        .transfer_progress(now, alice_bob, 180, "Ringing")
        .unwrap();
    assert!(
        w.run_until(Duration::from_secs(1), |w| progress(w, 1, bob_alice).len()
            == 3)
    );
    let now = w.now();
    w.uas[2]
        .endpoint
        .answer(now, carol_alice, Some(sdp(ANSWER)))
        .unwrap();
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[0]
        .is_established(alice_carol)));
    let now = w.now();
    w.uas[0]
        .endpoint
        .transfer_progress(now, alice_bob, 200, "OK")
        .unwrap();
    assert!(
        w.run_until(Duration::from_secs(1), |w| progress(w, 1, bob_alice).len()
            == 4)
    );
    assert_eq!(
        progress(&w, 1, bob_alice),
        vec![(202, false), (100, false), (180, false), (200, true)]
    );
    // The subscription ended with the final NOTIFY.
    let last_notify = w.log.iter().rev().find(|s| s.is_request("NOTIFY")).unwrap();
    assert!(last_notify
        .text
        .contains("Subscription-State: terminated;reason=noresource"));
    assert!(last_notify.text.contains("message/sipfrag"));
    w.run_for(Duration::from_millis(100));
    assert_eq!(w.count(|s| s.is_response(200, "NOTIFY")), 3);

    // Bob hangs up; alice stays with carol.
    let now = w.now();
    w.uas[1].endpoint.hang_up(now, bob_alice).unwrap();
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[0].is_over(alice_bob)));
    assert!(!w.uas[0].is_over(alice_carol));
}

#[test]
fn a_failed_transfer_leaves_the_call_up() {
    let mut w = three_party();
    let (alice_bob, bob_alice) = connect(&mut w, 0, 1, 0);
    let now = w.now();
    w.uas[1]
        .endpoint
        .answer(now, bob_alice, Some(sdp(ANSWER)))
        .unwrap();
    assert!(w.run_until(Duration::from_secs(2), |w| w.uas[0]
        .is_established(alice_bob)));
    let now = w.now();
    w.uas[1]
        .endpoint
        .transfer(now, bob_alice, "sip:carol@127.0.0.1:5063")
        .unwrap();
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[0].has(
        alice_bob,
        |e| matches!(e, CallEvent::TransferRequested { .. })
    )));
    let (alice_carol, carol_alice) = connect(&mut w, 0, 2, 0);
    let now = w.now();
    w.uas[2].endpoint.reject(now, carol_alice, 486).unwrap();
    assert!(w.run_until(Duration::from_secs(1), |w| w.uas[0].is_over(alice_carol)));
    let now = w.now();
    w.uas[0]
        .endpoint
        .transfer_progress(now, alice_bob, 486, "Busy Here")
        .unwrap();
    assert!(
        w.run_until(Duration::from_secs(1), |w| progress(w, 1, bob_alice)
            .last()
            .is_some_and(|p| p.1))
    );
    assert_eq!(progress(&w, 1, bob_alice).last(), Some(&(486, true)));
    // The original call goes on; a new transfer may be tried.
    assert!(!w.uas[0].is_over(alice_bob) && !w.uas[1].is_over(bob_alice));
    let now = w.now();
    w.uas[1]
        .endpoint
        .transfer(now, bob_alice, "sip:dave@127.0.0.1:5064")
        .unwrap();
    assert!(
        w.run_until(Duration::from_secs(1), |w| w.uas[0].has(alice_bob, |e| *e
            == CallEvent::TransferRequested {
                target: "sip:dave@127.0.0.1:5064".into(),
                referred_by: Some("sip:bob@127.0.0.1:5062".into()),
            }))
    );
}
